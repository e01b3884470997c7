"""gt.distributions beside torch.distributions on the same parameters (float64): log_prob, cdf,
icdf, entropy, mean, mode, variance, stddev and kl_divergence, with their gradients with respect
to the parameters, for every family, TransformedDistribution and its transforms, the relaxed
(Gumbel-softmax) families, MixtureSameFamily and Multinomial; rsample's gradients (finite
differences through a fixed seed, the ``loc + scale * eps`` identity, the implicit gamma gradient
against the quantile's derivative, unbiased mean gradients); sample shapes, dtypes, supports and
moments; validate_args errors; expand; sharded batches of parameters.

Gradients through digamma (Gamma, Beta, Dirichlet, StudentT entropies and KLs) meet torch's
polygamma(1, x), which is about 5e-10 off relative (tests/test_special.py): compared at 1e-8.
"""

import importlib

import numpy as np
import pytest

import gt
import gt.distributions as D
from gt.distributions import relaxed
from gt.sharding.mesh import use_mesh
from helpers import check_grad, torch_or_skip

RNG = np.random.default_rng(0)


def _u(*shape, low=0.5, high=2.0):
    return RNG.uniform(low, high, shape)


def _n(*shape):
    return RNG.standard_normal(shape)


def _tril(n, batch=()):
    a = RNG.standard_normal(batch + (n, n)) * 0.3
    return np.tril(a, -1) + np.eye(n) * RNG.uniform(0.7, 1.5, batch + (n,))[..., None]


def _spd(n, batch=()):
    L = _tril(n, batch)
    return L @ np.swapaxes(L, -1, -2)


def _simplex(*shape):
    x = _u(*shape)
    return x / x.sum(-1, keepdims=True)


def _onehot(idx, k):
    return np.eye(k)[idx]


BINOMIAL_N = np.array([3.0, 5.0, 5.0, 10.0])
# name: (constructor class name, params, the value log_prob/cdf see, the quantities compared)
CASES = {
    "normal": ("Normal", {"loc": _n(2, 3), "scale": _u(3)}, _n(4, 2, 3),
               ["log_prob", "cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev"]),
    "lognormal": ("LogNormal", {"loc": _n(2, 3) * 0.5, "scale": _u(3)}, _u(2, 3, low=0.1, high=3),
                  ["log_prob", "cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev"]),
    "uniform": ("Uniform", {"low": np.array([-1.0, 0.0, 0.5]), "high": np.array([[0.5, 2.0, 3.0]])},
                np.array([[-0.5, 1.0, 2.9], [0.0, 0.1, 0.6]]),
                ["log_prob", "cdf", "icdf", "entropy", "mean", "variance", "stddev"]),
    "exponential": ("Exponential", {"rate": _u(4)}, _u(3, 4, low=0.0, high=3.0),
                    ["log_prob", "cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev"]),
    "laplace": ("Laplace", {"loc": _n(2, 3), "scale": _u(2, 3)}, _n(2, 3),
                ["log_prob", "cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev"]),
    "gumbel": ("Gumbel", {"loc": _n(3), "scale": _u(3)}, _n(2, 3),
               ["log_prob", "cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev"]),
    "gamma": ("Gamma", {"concentration": _u(2, 3, low=0.3, high=3.0), "rate": _u(3)}, _u(2, 3, low=0.1, high=4),
              ["log_prob", "entropy", "mean", "mode", "variance", "stddev"]),
    "beta": ("Beta", {"concentration1": _u(4, low=0.3, high=3.0), "concentration0": _u(4, low=1.2, high=3.0)},
             _u(2, 4, low=0.05, high=0.95), ["log_prob", "entropy", "mean", "mode", "variance", "stddev"]),
    "dirichlet": ("Dirichlet", {"concentration": _u(2, 4, low=1.1, high=3.0)}, _simplex(3, 2, 4),
                  ["log_prob", "entropy", "mean", "mode", "variance", "stddev"]),
    "dirichlet_small": ("Dirichlet", {"concentration": np.array([[0.2, 0.5, 0.9], [0.5, 1.5, 3.0]])},
                        _simplex(2, 3), ["log_prob", "entropy", "mean", "mode", "variance"]),
    "cauchy": ("Cauchy", {"loc": _n(2, 3), "scale": _u(3)}, _n(2, 3) * 3,
               ["log_prob", "cdf", "icdf", "entropy", "mean", "mode", "variance"]),
    "halfnormal": ("HalfNormal", {"scale": _u(3)}, _u(2, 3, low=0.0, high=3.0),
                   ["log_prob", "cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev"]),
    "chi2": ("Chi2", {"df": _u(4, low=0.5, high=6.0)}, _u(4, low=0.1, high=5.0),
             ["log_prob", "entropy", "mean", "mode", "variance"]),  # cdf: torch has no gradient in df
    "geometric_probs": ("Geometric", {"probs": np.array([0.1, 0.5, 0.9, 1.0])}, np.array([[0.0, 3.0, 1.0, 0.0]]),
                        ["log_prob", "mean", "mode", "variance"]),
    "geometric_logits": ("Geometric", {"logits": _n(4)}, np.array([0.0, 3.0, 1.0, 7.0]),
                         ["log_prob", "entropy", "mean", "mode", "variance"]),
    "negbinomial_probs": ("NegativeBinomial", {"total_count": np.array([3.0, 0.5, 7.0]), "probs": _u(3, low=0.1,
                                                                                                        high=0.9)},
                          np.array([[0.0, 2.0, 5.0], [1.0, 0.0, 12.0]]), ["log_prob", "mean", "mode", "variance"]),
    "negbinomial_logits": ("NegativeBinomial", {"total_count": np.array(4.0), "logits": _n(3)},
                           np.array([0.0, 2.0, 9.0]), ["log_prob", "mean", "variance"]),
    "weibull": ("Weibull", {"scale": _u(3), "concentration": _u(2, 3, low=0.5, high=3.0)}, _u(2, 3, low=0.1, high=3),
                ["log_prob", "cdf", "icdf", "entropy", "mean", "mode", "variance"]),
    "pareto": ("Pareto", {"scale": _u(3), "alpha": np.array([2.5, 3.5, 4.0])}, _u(3, low=2.0, high=5.0),
               ["log_prob", "cdf", "icdf", "entropy", "mean", "mode", "variance"]),
    "studentt": ("StudentT", {"df": np.array([0.8, 1.5, 2.5, 7.0]), "loc": _n(4), "scale": _u(4)}, _n(3, 4),
                 ["log_prob", "entropy", "mean", "mode", "variance"]),
    "poisson": ("Poisson", {"rate": _u(4, low=0.5, high=6)}, np.array([[0.0, 1.0, 4.0, 7.0]]),
                ["log_prob", "mean", "mode", "variance", "stddev"]),
    "binomial_probs": ("Binomial", {"total_count": BINOMIAL_N, "probs": _u(4, low=0.1, high=0.9)},
                       np.array([0.0, 2.0, 5.0, 4.0]), ["log_prob", "mean", "mode", "variance", "stddev"]),
    "binomial_logits": ("Binomial", {"total_count": np.array(4.0), "logits": _n(3)},
                        np.array([[0.0, 2.0, 4.0]]), ["log_prob", "entropy", "mean", "variance"]),
    "bernoulli_probs": ("Bernoulli", {"probs": _u(2, 3, low=0.05, high=0.95)}, np.array([[0.0, 1.0, 1.0]]),
                        ["log_prob", "entropy", "mean", "mode", "variance", "stddev"]),
    "bernoulli_logits": ("Bernoulli", {"logits": _n(4) * 2}, np.array([0.0, 1.0, 1.0, 0.0]),
                         ["log_prob", "entropy", "mean", "mode", "variance"]),
    "categorical_probs": ("Categorical", {"probs": _u(2, 4)}, np.array([[0, 3], [2, 1], [1, 1]]),
                          ["log_prob", "entropy", "mean", "mode", "variance"]),
    "categorical_logits": ("Categorical", {"logits": _n(3, 5)}, np.array([4, 0, 2]),
                           ["log_prob", "entropy", "mode"]),
    "onehot": ("OneHotCategorical", {"logits": _n(2, 4)}, _onehot(np.array([[0, 3], [2, 2]]), 4),
               ["log_prob", "entropy", "mean", "mode", "variance"]),
    "mvn_tril": ("MultivariateNormal", {"loc": _n(2, 3), "scale_tril": _tril(3)}, _n(4, 2, 3),
                 ["log_prob", "entropy", "mean", "mode", "variance", "stddev"]),
    "mvn_cov": ("MultivariateNormal", {"loc": _n(3), "covariance_matrix": _spd(3, (2,))}, _n(2, 3),
                ["log_prob", "entropy", "variance", "scale_tril", "precision_matrix"]),
    "mvn_prec": ("MultivariateNormal", {"loc": _n(2, 3), "precision_matrix": _spd(3)}, _n(2, 3),
                 ["log_prob", "entropy", "variance", "scale_tril", "covariance_matrix"]),
}
DIGAMMA = {"chi2", "gamma", "beta", "dirichlet", "dirichlet_small", "studentt", "binomial_logits"}
# what a quantity's value needs from the value argument; the others are properties or entropy()
VALUE_FNS = {"log_prob", "cdf", "icdf"}
CONSTANT = {"total_count"}  # parameters that are counts: constants, not differentiated


def _torch():
    return torch_or_skip()


def _params(lib, params):
    torch = _torch()
    out = {}
    for k, v in params.items():
        if lib is gt:
            out[k] = gt.tensor(v, dtype=gt.float64, requires_grad=k not in CONSTANT)
        else:
            out[k] = torch.tensor(v, dtype=torch.float64, requires_grad=k not in CONSTANT)
    return out


def _value(lib, value, quantity, cls):
    torch = _torch()
    if quantity == "icdf":
        value = 1 / (1 + np.exp(-value))  # probabilities in (0, 1)
    if cls == "Uniform" and quantity == "icdf":
        value = np.array([[0.1, 0.5, 0.9]])
    if value.dtype.kind == "i":
        return gt.tensor(value) if lib is gt else torch.tensor(value)
    return gt.tensor(value, dtype=gt.float64) if lib is gt else torch.tensor(value, dtype=torch.float64)


def _quantity(dist, lib, quantity, value, cls):
    if quantity in VALUE_FNS:
        return getattr(dist, quantity)(_value(lib, value, quantity, cls))
    if quantity == "entropy":
        return dist.entropy()
    return getattr(dist, quantity)


def _compare(g_out, t_out, g_params, t_params, rtol, grad_rtol, what):
    torch = _torch()
    g_np, t_np = g_out.detach().numpy(), t_out.detach().numpy()
    assert tuple(g_out.shape) == tuple(t_out.shape), (what, g_out.shape, t_out.shape)
    assert str(g_out.dtype).split(".")[-1] == str(t_out.dtype).split(".")[-1], (what, g_out.dtype, t_out.dtype)
    np.testing.assert_allclose(g_np, t_np, rtol=rtol, atol=1e-12, err_msg=what)
    if not t_out.dtype.is_floating_point or not t_out.requires_grad:
        return
    up = np.random.default_rng(1).standard_normal(t_np.shape)
    finite = np.isfinite(t_np)
    t_up = torch.tensor(np.where(finite, up, 0.0))
    t_names = [k for k, v in t_params.items() if v.requires_grad]
    t_kept = torch.where(torch.tensor(finite), t_out, 0.0)  # the infinite entries (KL's) have no gradient
    t_grads = torch.autograd.grad((t_kept * t_up).sum(), [t_params[k] for k in t_names], allow_unused=True)
    if not g_out.requires_grad:
        assert all(t is None or not t.abs().sum() for t in t_grads), what
        return
    (gt.where(gt.tensor(finite), g_out, 0.0) * gt.tensor(np.where(finite, up, 0.0))).sum().backward()
    for k, t_grad in zip(t_names, t_grads):
        g_grad = g_params[k].grad
        want = np.zeros(t_params[k].shape) if t_grad is None else t_grad.numpy()
        got = np.zeros(t_params[k].shape) if g_grad is None else g_grad.numpy()
        np.testing.assert_allclose(got, want, rtol=grad_rtol, atol=1e-10, err_msg=f"{what}: d/d{k}")


@pytest.mark.parametrize("case", list(CASES))
def test_values_and_gradients_are_torchs(case):
    torch = _torch()
    cls, params, value, quantities = CASES[case]
    grad_rtol = 1e-8 if case in DIGAMMA else 1e-10
    for q in quantities:
        g_params, t_params = _params(gt, params), _params(torch, params)
        g_dist = getattr(D, cls)(**g_params)
        t_dist = getattr(torch.distributions, cls)(**t_params)
        assert tuple(g_dist.batch_shape) == tuple(t_dist.batch_shape), case
        assert tuple(g_dist.event_shape) == tuple(t_dist.event_shape), case
        with np.errstate(all="ignore"):
            _compare(_quantity(g_dist, gt, q, value, cls), _quantity(t_dist, torch, q, value, cls),
                     g_params, t_params, 1e-10, grad_rtol, f"{case}.{q}")


FLOAT32 = [  # float32 by default (numbers), integer values, 0-d and empty batches
    lambda M, T: M.Poisson(T([1.5, 2.0])).log_prob(T([1, 2])),
    lambda M, T: M.Binomial(T([5, 6]), probs=T([0.3, 0.4])).log_prob(T([1, 2])),
    lambda M, T: M.Normal(0.0, 1.0).log_prob(T(0.5)),
    lambda M, T: M.Normal(T([]), 1.0).log_prob(T([])),
    lambda M, T: M.Bernoulli(logits=T([0.3, -2.0])).log_prob(T([1.0, 1.0])),
    lambda M, T: M.Gamma(2.0, 3.0).cdf(T([0.5, 2.0])),
    lambda M, T: M.Chi2(T([3.0, 0.5])).cdf(T([0.5, 2.0])),
    lambda M, T: M.Pareto(1.0, T([0.5, 1.5, 3.0])).mean,  # inf where alpha <= 1
    lambda M, T: M.Pareto(1.0, T([0.5, 1.5, 3.0])).variance,
    lambda M, T: M.Geometric(logits=T([0.5, -3.0])).entropy(),
    lambda M, T: M.Beta(2.0, 3.0).log_prob(T(0.3)),
    lambda M, T: M.Normal(T([0.0]), T([1.0])).log_prob(T([[1.0], [2.0]])),
    lambda M, T: M.MultivariateNormal(T([0.0, 0.0]), T([[1.0, 0.5], [0.5, 1.0]])).log_prob(T([[0.3, 0.0]])),
    lambda M, T: M.Categorical(T([0.2, 0.8])).enumerate_support(),
    lambda M, T: M.Bernoulli(T([0.2, 0.8])).enumerate_support(),
    lambda M, T: M.Binomial(3, T([0.2, 0.8])).entropy(),
    lambda M, T: M.OneHotCategorical(T([0.2, 0.8])).enumerate_support(),
    lambda M, T: M.Laplace(1.0, 2.0).icdf(T([0.1, 0.5, 0.9])),
    lambda M, T: M.Uniform(0.0, 2.0, validate_args=False).log_prob(T([0.5, 2.5])),
    lambda M, T: M.Dirichlet(T([[0.2, 0.5], [0.9, 0.1], [2.0, 3.0]])).mode,
]


@pytest.mark.parametrize("i", range(len(FLOAT32)))
def test_float32_integer_and_empty_cases_are_torchs(i):
    torch = _torch()
    with np.errstate(divide="ignore"):  # Pareto's infinite moments
        got = FLOAT32[i](D, gt.tensor)
    want = FLOAT32[i](torch.distributions, torch.tensor)
    assert tuple(got.shape) == tuple(want.shape) and str(got.dtype)[3:] == str(want.dtype)[6:], (got, want)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


KL_CASES = {
    "normal": ("Normal", {"loc": _n(2, 3), "scale": _u(3)}, {"loc": _n(3), "scale": _u(2, 3)}),
    "lognormal": ("LogNormal", {"loc": _n(3), "scale": _u(3)}, {"loc": _n(3), "scale": _u(3)}),
    "bernoulli": ("Bernoulli", {"probs": np.array([0.0, 0.3, 1.0, 0.6])}, {"probs": np.array([0.2, 0.0, 0.5, 1.0])}),
    "bernoulli_logits": ("Bernoulli", {"logits": _n(4)}, {"logits": _n(4)}),
    "categorical": ("Categorical", {"probs": np.array([[0.2, 0.0, 0.8], [0.3, 0.3, 0.4]])},
                    {"probs": np.array([[0.1, 0.5, 0.4], [0.0, 0.5, 0.5]])}),
    "categorical_logits": ("Categorical", {"logits": _n(2, 4)}, {"logits": _n(4)}),
    "onehot": ("OneHotCategorical", {"logits": _n(2, 4)}, {"logits": _n(2, 4)}),
    "uniform": ("Uniform", {"low": np.array([0.0, 0.0, -1.0]), "high": np.array([1.0, 2.0, 1.0])},
                {"low": np.array([-1.0, 0.5, -2.0]), "high": np.array([2.0, 3.0, 3.0])}),
    "exponential": ("Exponential", {"rate": _u(3)}, {"rate": _u(2, 3)}),
    "gamma": ("Gamma", {"concentration": _u(3), "rate": _u(3)}, {"concentration": _u(3), "rate": _u(3)}),
    "beta": ("Beta", {"concentration1": _u(3), "concentration0": _u(3)},
             {"concentration1": _u(3), "concentration0": _u(3)}),
    "dirichlet": ("Dirichlet", {"concentration": _u(2, 4)}, {"concentration": _u(4)}),
    "laplace": ("Laplace", {"loc": _n(3), "scale": _u(3)}, {"loc": _n(3), "scale": _u(3)}),
    "gumbel": ("Gumbel", {"loc": _n(3), "scale": _u(3)}, {"loc": _n(3), "scale": _u(3)}),
    "poisson": ("Poisson", {"rate": _u(4)}, {"rate": _u(4)}),
    "halfnormal": ("HalfNormal", {"scale": _u(3)}, {"scale": _u(2, 3)}),
    "pareto": ("Pareto", {"scale": np.array([1.0, 2.0, 0.5]), "alpha": _u(3)},
               {"scale": np.array([0.8, 1.0, 1.0]), "alpha": _u(3)}),
    "binomial": ("Binomial", {"total_count": np.array([5.0, 6.0]), "probs": _u(2, low=0.1, high=0.9)},
                 {"total_count": np.array([5.0, 4.0]), "probs": _u(2, low=0.1, high=0.9)}),
    "mvn": ("MultivariateNormal", {"loc": _n(2, 3), "scale_tril": _tril(3, (2,))},
            {"loc": _n(3), "covariance_matrix": _spd(3)}),
}


@pytest.mark.parametrize("case", list(KL_CASES))
def test_kl_divergence_is_torchs(case):
    torch = _torch()
    cls, p_params, q_params = KL_CASES[case]
    grad_rtol = 1e-8 if case in ("gamma", "beta", "dirichlet") else 1e-10
    params = {**{"p_" + k: v for k, v in p_params.items()}, **{"q_" + k: v for k, v in q_params.items()}}
    global CONSTANT
    CONSTANT = {"p_total_count", "q_total_count", "total_count"}
    try:
        g_params, t_params = _params(gt, params), _params(torch, params)
    finally:
        CONSTANT = {"total_count"}

    def build(lib_dists, ps, prefix):
        return getattr(lib_dists, cls)(**{k[2:]: v for k, v in ps.items() if k.startswith(prefix)})

    g = D.kl_divergence(build(D, g_params, "p_"), build(D, g_params, "q_"))
    t = torch.distributions.kl_divergence(build(torch.distributions, t_params, "p_"),
                                          build(torch.distributions, t_params, "q_"))
    _compare(g, t, g_params, t_params, 1e-10, grad_rtol, f"kl {case}")


CROSS_KL = [  # (p's class, p's params, q's class, q's params): torch's cross-family closed forms
    ("Geometric", {"probs": _u(3, low=0.1, high=0.9)}, "Geometric", {"probs": _u(3, low=0.1, high=0.9)}),
    ("Cauchy", {"loc": _n(3), "scale": _u(3)}, "Cauchy", {"loc": _n(3), "scale": _u(3)}),
    ("Bernoulli", {"probs": _u(3, low=0.1, high=0.9)}, "Poisson", {"rate": _u(3)}),
    ("Exponential", {"rate": _u(3)}, "Gamma", {"concentration": _u(3), "rate": _u(3)}),
    ("Gamma", {"concentration": _u(3), "rate": _u(3)}, "Exponential", {"rate": _u(3)}),
    ("Exponential", {"rate": _u(3)}, "Normal", {"loc": _n(3), "scale": _u(3)}),
    ("Exponential", {"rate": _u(3)}, "Gumbel", {"loc": _n(3), "scale": _u(3)}),
    ("Gamma", {"concentration": _u(3), "rate": _u(3)}, "Normal", {"loc": _n(3), "scale": _u(3)}),
    ("Beta", {"concentration1": _u(3), "concentration0": _u(3)}, "Normal", {"loc": _n(3), "scale": _u(3)}),
    ("Gumbel", {"loc": _n(3), "scale": _u(3)}, "Normal", {"loc": _n(3), "scale": _u(3)}),
    ("Laplace", {"loc": _n(3), "scale": _u(3)}, "Normal", {"loc": _n(3), "scale": _u(3)}),
    ("Normal", {"loc": _n(3), "scale": _u(3)}, "Gumbel", {"loc": _n(3), "scale": _u(3)}),
    ("Normal", {"loc": _n(3), "scale": _u(3)}, "Laplace", {"loc": _n(3), "scale": _u(3)}),
    ("Uniform", {"low": _n(3) - 2, "high": _n(3) + 2}, "Normal", {"loc": _n(3), "scale": _u(3)}),
    ("Uniform", {"low": _n(3) - 2, "high": _n(3) + 2}, "Gumbel", {"loc": _n(3), "scale": _u(3)}),
    ("Normal", {"loc": _n(3), "scale": _u(3)}, "Gamma", {"concentration": _u(3), "rate": _u(3)}),
    ("Poisson", {"rate": _u(3)}, "Binomial", {"total_count": np.array([3.0, 4.0, 5.0]), "probs": _u(3, low=0.1,
                                                                                                  high=0.9)}),
]


@pytest.mark.parametrize("i", range(len(CROSS_KL)))
def test_cross_family_kl_is_torchs(i):
    torch = _torch()
    p_cls, p_params, q_cls, q_params = CROSS_KL[i]
    params = {**{"p_" + k: v for k, v in p_params.items()}, **{"q_" + k: v for k, v in q_params.items()}}
    global CONSTANT
    CONSTANT = {"q_total_count"}
    try:
        g_params, t_params = _params(gt, params), _params(torch, params)
    finally:
        CONSTANT = {"total_count"}

    def build(lib, ps):
        p = getattr(lib, p_cls)(**{k[2:]: v for k, v in ps.items() if k.startswith("p_")})
        return p, getattr(lib, q_cls)(**{k[2:]: v for k, v in ps.items() if k.startswith("q_")})

    grad_rtol = 1e-8 if "Gamma" in (p_cls, q_cls) or "Beta" in (p_cls, q_cls) else 1e-10
    _compare(D.kl_divergence(*build(D, g_params)), torch.distributions.kl_divergence(*build(torch.distributions,
                                                                                           t_params)),
             g_params, t_params, 1e-10, grad_rtol, f"kl {p_cls} {q_cls}")


def test_kl_independent_and_dispatch():
    torch = _torch()
    loc, scale = _n(2, 3), _u(2, 3)
    p = D.Independent(D.Normal(gt.tensor(loc), gt.tensor(scale)), 1)
    q = D.Independent(D.Normal(gt.tensor(loc * 0.5), 1.5), 1)
    tp = torch.distributions.Independent(torch.distributions.Normal(torch.tensor(loc), torch.tensor(scale)), 1)
    tq = torch.distributions.Independent(torch.distributions.Normal(torch.tensor(loc * 0.5), 1.5), 1)
    np.testing.assert_allclose(D.kl_divergence(p, q).numpy(), torch.distributions.kl_divergence(tp, tq).numpy(),
                               rtol=1e-10)
    for M in (D, torch.distributions):  # both exponential families: the Bregman fallback refuses
        with pytest.raises(NotImplementedError, match="different exponential families"):
            M.kl_divergence(M.Normal(0.0, 1.0), M.Poisson(1.0))
        with pytest.raises(NotImplementedError, match="No KL"):
            M.kl_divergence(M.Laplace(0.0, 1.0), M.Poisson(1.0))

    class MyNormal(D.Normal):
        pass

    # a subclass finds its parent's pair, until a pair of its own is registered
    assert float(D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0))) == pytest.approx(0.5, rel=1e-12)

    @D.register_kl(MyNormal, D.Normal)
    def _mine(p, q):
        return p.loc * 0 + 42.0

    assert float(D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0))) == 42.0
    assert float(D.kl_divergence(D.Normal(0.0, 1.0), MyNormal(1.0, 1.0))) == pytest.approx(0.5, rel=1e-12)
    with pytest.raises(TypeError, match="Distribution subclass"):
        D.register_kl(int, D.Normal)
    # transformed distributions: the base's KL when the transforms are the same, else none
    for M, T in [(D, gt.tensor), (torch.distributions, torch.tensor)]:
        a, b = M.Weibull(T([1.0, 2.0]), T([1.5, 2.0])), M.Weibull(T([1.0, 2.0]), T([1.5, 2.0]))
        assert M.kl_divergence(a, b).tolist() == [0.0, 0.0]
        with pytest.raises(NotImplementedError):
            M.kl_divergence(a, M.Weibull(T([1.0, 3.0]), T([1.5, 2.0])))


def test_independent_is_torchs():
    torch = _torch()
    loc, scale, x = _n(2, 3, 4), _u(3, 4), _n(5, 2, 3, 4)
    g = D.Independent(D.Normal(gt.tensor(loc, requires_grad=True), gt.tensor(scale)), 2)
    t = torch.distributions.Independent(torch.distributions.Normal(torch.tensor(loc), torch.tensor(scale)), 2)
    assert g.batch_shape == (2,) and g.event_shape == (3, 4) and g.has_rsample
    np.testing.assert_allclose(g.log_prob(gt.tensor(x)).numpy(), t.log_prob(torch.tensor(x)).numpy(), rtol=1e-10)
    np.testing.assert_allclose(g.entropy().numpy(), t.entropy().numpy(), rtol=1e-10)
    assert repr(g.support) == repr(t.support) == "IndependentConstraint(Real(), 2)"
    assert g.expand((5, 2)).sample().shape == (5, 2, 3, 4)
    with pytest.raises(ValueError, match="reinterpreted_batch_ndims <= len"):
        D.Independent(D.Normal(gt.zeros(3), 1.0), 2)


# ---- reparameterized draws ------------------------------------------------------------------
RSAMPLE = {
    "Normal": [_n(3), _u(3)], "LogNormal": [_n(3) * 0.3, _u(3)], "Uniform": [_n(3), _n(3) + 3.0],
    "Exponential": [_u(3)], "Laplace": [_n(3), _u(3)], "Gumbel": [_n(3), _u(3)], "Cauchy": [_n(3), _u(3)],
    "HalfNormal": [_u(3)],
}


@pytest.mark.parametrize("cls", list(RSAMPLE))
def test_rsample_gradients_match_finite_differences_under_a_seed(cls):
    def draw(*params):
        gt.manual_seed(3)
        return getattr(D, cls)(*params, validate_args=False).rsample((4,))

    check_grad(draw, *RSAMPLE[cls], rtol=1e-5)


def test_rsample_mvn_gradients_and_normal_identity():
    loc, L = _n(2, 3), _tril(3)

    def draw(loc, L):
        gt.manual_seed(5)
        return D.MultivariateNormal(loc, scale_tril=L.tril(), validate_args=False).rsample((2,))

    check_grad(draw, loc, L, rtol=1e-5)
    gt.manual_seed(7)
    eps = gt.randn((5, 3), dtype=gt.float64)
    m, s = gt.tensor(_n(3), requires_grad=True), gt.tensor(_u(3), requires_grad=True)
    gt.manual_seed(7)
    x = D.Normal(m, s).rsample((5,))
    np.testing.assert_allclose(x.detach().numpy(), (m + s * eps).detach().numpy(), rtol=1e-14)
    x.sum().backward()
    np.testing.assert_allclose(m.grad.numpy(), np.full(3, 5.0))
    np.testing.assert_allclose(s.grad.numpy(), eps.numpy().sum(0), rtol=1e-12)
    assert not D.Normal(m, s).sample((2,)).requires_grad


@pytest.mark.first_pass
@pytest.mark.parametrize("cls", ["Poisson", "Bernoulli", "Categorical", "Binomial", "OneHotCategorical"])
def test_no_rsample_where_torch_has_none(cls):
    d = getattr(D, cls)(probs=gt.ones(2) * 0.5) if cls != "Poisson" else D.Poisson(gt.ones(2))
    assert d.has_rsample is False
    with pytest.raises(NotImplementedError, match="rsample"):
        d.rsample()


def test_implicit_gamma_gradient_is_the_quantiles_derivative():
    torch = _torch()
    special = pytest.importorskip("scipy.special")
    from gt.distributions.gamma import standard_gamma_grad
    a = np.array([0.05, 0.3, 1.0, 2.5, 10.0, 100.0, 0.3, 5.0])
    x = np.array([1e-3, 0.2, 1.0, 3.0, 8.0, 110.0, 2.0, 0.5])
    got = standard_gamma_grad(gt.tensor(a), gt.tensor(x)).numpy()
    u, h = special.gammainc(a, x), 1e-6 * a
    exact = (special.gammaincinv(a + h, u) - special.gammaincinv(a - h, u)) / (2 * h)
    np.testing.assert_allclose(got, exact, rtol=1e-7)
    # torch's rational approximation is within 1e-4 of it
    np.testing.assert_allclose(got, torch._standard_gamma_grad(torch.tensor(a), torch.tensor(x)).numpy(), rtol=2e-4)


def test_gamma_rsample_gradients():
    from gt.distributions.gamma import standard_gamma_grad
    conc = gt.tensor([0.4, 3.0], dtype=gt.float64, requires_grad=True)
    rate = gt.tensor([2.0, 0.5], dtype=gt.float64, requires_grad=True)
    gt.manual_seed(2)
    x = D.Gamma(conc, rate).rsample((8000,))
    x.sum().backward()
    xs = x.detach()
    want = (standard_gamma_grad(conc.detach().expand(8000, 2), xs * rate.detach()) / rate.detach()).sum(0)
    np.testing.assert_allclose(conc.grad.numpy(), want.numpy(), rtol=1e-10)
    np.testing.assert_allclose(rate.grad.numpy(), (-xs / rate.detach()).sum(0).numpy(), rtol=1e-10)
    # unbiased: the mean gradient is d E[x] / d conc = 1 / rate
    np.testing.assert_allclose(conc.grad.numpy() / 8000, [0.5, 2.0], rtol=0.03)


@pytest.mark.parametrize("cls", ["Beta", "Dirichlet", "StudentT"])
def test_rsample_mean_gradients_are_unbiased(cls):
    n = 8000
    values = {"Beta": [[0.5, 2.0], [1.5, 3.0]], "Dirichlet": [[0.7, 2.0, 3.0]], "StudentT": [[4.0, 9.0], [1.0, -1.0]]}
    params = [gt.tensor(v, dtype=gt.float64, requires_grad=True) for v in values[cls]]
    gt.manual_seed(8)
    x = getattr(D, cls)(*params).rsample((n,))
    w = gt.tensor(np.random.default_rng(0).standard_normal(tuple(x.shape[1:])))
    (x.mean(0) * w).sum().backward()
    sample_grads = [p.grad.numpy() for p in params]
    for p in params:
        p.grad = None
    (getattr(D, cls)(*params).mean * w).sum().backward()  # E[x]'s gradient, analytically
    for got, p in zip(sample_grads, params):
        want = np.zeros(p.shape) if p.grad is None else p.grad.numpy()  # StudentT's mean is loc: none for df
        np.testing.assert_allclose(got, want, atol=0.01 * np.abs(want).max() + 0.002)


# ---- draws ------------------------------------------------------------------------------------
def _make(cls, params):
    return getattr(D, cls)(**{k: gt.tensor(v, dtype=gt.float64) for k, v in params.items()})


@pytest.mark.parametrize("case", list(CASES))
def test_sample_shapes_dtypes_and_support(case):
    torch = _torch()
    cls, params, _, _ = CASES[case]
    d = _make(cls, params)
    t = getattr(torch.distributions, cls)(**{k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()})
    gt.manual_seed(0)
    for shape in [(), (5,), (2, 3)]:
        x, tx = d.sample(shape), t.sample(shape)
        assert tuple(x.shape) == tuple(tx.shape), (case, shape)
        assert str(x.dtype).split(".")[-1] == str(tx.dtype).split(".")[-1], (case, x.dtype, tx.dtype)
        assert bool(d.support.check(x).all()), case
        assert not x.requires_grad
        assert np.isfinite(d.log_prob(x).numpy()).all(), case


MOMENTS = {
    "Normal": {"loc": np.array([0.0, 3.0]), "scale": np.array([1.0, 0.5])},
    "LogNormal": {"loc": np.array([0.0, 0.5]), "scale": np.array([0.3, 0.5])},
    "Uniform": {"low": np.array([0.0, -2.0]), "high": np.array([1.0, 5.0])},
    "Exponential": {"rate": np.array([0.5, 3.0])},
    "Laplace": {"loc": np.array([1.0, -1.0]), "scale": np.array([0.5, 2.0])},
    "Gumbel": {"loc": np.array([1.0, -1.0]), "scale": np.array([0.5, 2.0])},
    "Gamma": {"concentration": np.array([0.3, 1.0, 7.5]), "rate": np.array([1.0, 2.0, 0.5])},
    "Beta": {"concentration1": np.array([0.5, 2.0]), "concentration0": np.array([0.7, 5.0])},
    "Dirichlet": {"concentration": np.array([[0.5, 1.0, 3.0], [2.0, 2.0, 2.0]])},
    "StudentT": {"df": np.array([5.0, 9.0]), "loc": np.array([1.0, 0.0]), "scale": np.array([2.0, 0.5])},
    "HalfNormal": {"scale": np.array([0.5, 2.0])}, "Chi2": {"df": np.array([1.0, 6.0])},
    "Geometric": {"probs": np.array([0.2, 0.7])},
    "NegativeBinomial": {"total_count": np.array([3.0, 10.0]), "probs": np.array([0.3, 0.6])},
    "Weibull": {"scale": np.array([1.0, 2.0]), "concentration": np.array([1.5, 4.0])},
    "Pareto": {"scale": np.array([1.0, 2.0]), "alpha": np.array([5.0, 6.0])},
    "Poisson": {"rate": np.array([0.7, 4.0, 14.0])}, "Bernoulli": {"probs": np.array([0.1, 0.7])},
    "Binomial": {"total_count": np.array([10.0, 50.0]), "probs": np.array([0.3, 0.8])},
    "Categorical": {"probs": np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])},
    "OneHotCategorical": {"probs": np.array([0.1, 0.2, 0.7])},
    "MultivariateNormal": {"loc": np.array([1.0, -1.0]), "covariance_matrix": np.array([[2.0, 0.6], [0.6, 1.0]])},
}


@pytest.mark.parametrize("cls", list(MOMENTS))
def test_sample_moments(cls):
    d = _make(cls, MOMENTS[cls])
    gt.manual_seed(11)
    slow = cls in ("Poisson", "Binomial", "Gamma", "Beta", "Dirichlet")  # rejection samplers: fewer draws
    n = 6000 if slow else 20000
    x = d.sample((n,)).numpy().astype(np.float64)
    if cls == "Categorical":
        probs = MOMENTS[cls]["probs"]
        freq = np.stack([(x == k).mean(0) for k in range(3)], -1)
        np.testing.assert_allclose(freq, probs / probs.sum(-1, keepdims=True), atol=0.015)
        return
    mean, var = d.mean.numpy(), d.variance.numpy()
    # the sample mean within 5 standard errors; the variance within 10 % (15 % for fewer draws)
    np.testing.assert_allclose(x.mean(0), mean, atol=5 * np.sqrt(var.max() / n) + 1e-12)
    np.testing.assert_allclose(x.var(0), var, rtol=0.15 if slow else 0.1)
    if cls == "MultivariateNormal":
        np.testing.assert_allclose(np.cov(x.T), MOMENTS[cls]["covariance_matrix"], atol=0.06)


def test_draws_repeat_under_a_seed():
    d = D.Gamma(gt.tensor([0.5, 2.0]), 1.0)
    gt.manual_seed(4)
    a = d.sample((3,))
    gt.manual_seed(4)
    assert np.array_equal(a.numpy(), d.sample((3,)).numpy())
    assert D.Normal(0.0, 1.0).sample().dtype == gt.float32 and D.Normal(0.0, 1.0).sample().shape == ()
    # concentrations a gamma draw cannot have (validation off) give NaN draws, not an endless rejection loop
    x = D.Gamma(gt.tensor([float("nan"), float("inf"), -2.0, 0.0, 0.5]), 1.0, validate_args=False).sample()
    assert np.isnan(x.numpy()[:3]).all() and (x.numpy()[3:] > 0).all()


# ---- validation -------------------------------------------------------------------------------
def test_validate_args_errors_are_torchs():
    torch = _torch()
    cases = [
        (lambda M, T: M.Normal(T([0.0]), T([-1.0])), "Expected parameter scale"),
        (lambda M, T: M.Bernoulli(probs=T([1.5])), "Expected parameter probs"),
        (lambda M, T: M.Categorical(probs=T([0.5, -0.1])), "Expected parameter probs"),
        (lambda M, T: M.Normal(T([float("nan")]), T([1.0])), "Expected parameter loc"),
        (lambda M, T: M.Uniform(T([1.0]), T([0.0])), r"parameter low .* LessThan\(upper_bound="),
        (lambda M, T: M.Bernoulli(probs=T([0.5]), logits=T([0.0])), "Either `probs` or `logits`"),
        (lambda M, T: M.Categorical(), "Either `probs` or `logits`"),
        (lambda M, T: M.Categorical(probs=T(0.5)), "at least one-dimensional"),
        (lambda M, T: M.Dirichlet(T(0.5)), "at least one-dimensional"),
        (lambda M, T: M.MultivariateNormal(T([0.0, 0.0])), "Exactly one of covariance_matrix"),
        (lambda M, T: M.MultivariateNormal(T([0.0]), scale_tril=T([1.0])), "at least two-dimensional"),
        (lambda M, T: M.MultivariateNormal(T([0.0, 0.0]), covariance_matrix=T([[1.0, 2.0], [2.0, 1.0]])),
         "Expected parameter covariance_matrix"),
        (lambda M, T: M.Normal(T([0.0]), T([1.0])).log_prob([0.5]), "must be a Tensor"),
        (lambda M, T: M.Exponential(T([1.0])).log_prob(T([-1.0])), "to be within the support"),
        (lambda M, T: M.Poisson(T([1.0])).log_prob(T([1.5])), "to be within the support"),
        (lambda M, T: M.Categorical(probs=T([0.5, 0.5])).log_prob(T([2.0])), "to be within the support"),
        (lambda M, T: M.Dirichlet(T([1.0, 1.0])).log_prob(T([1.0, 1.0, 0.0])), "right-most size of value"),
        (lambda M, T: M.Geometric(T([0.0, 0.5])), "to be positive"),
        (lambda M, T: M.HalfNormal(T([1.0])).log_prob(T([-1.0])), "to be within the support"),
        (lambda M, T: M.Chi2(T([-1.0])), "Expected parameter"),
        (lambda M, T: M.Normal(T([0.0, 1.0]), T([1.0, 1.0])).log_prob(T([0.0, 1.0, 2.0])), "not broadcastable"),
    ]
    for build, match in cases:
        with pytest.raises(ValueError, match=match):
            build(torch.distributions, torch.tensor)
        with pytest.raises(ValueError, match=match):
            build(D, gt.tensor)
    # off: nothing checked
    assert np.isnan(D.Normal(gt.tensor([0.0]), gt.tensor([-1.0]), validate_args=False).log_prob(
        gt.tensor([0.0])).numpy()).all()
    D.Distribution.set_default_validate_args(False)
    try:
        D.Exponential(gt.tensor([-1.0]))
    finally:
        D.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        D.Exponential(gt.tensor([-1.0]))


def test_constraints_and_attributes_are_torchs():
    torch = _torch()
    C, TC = D.constraints, torch.distributions.constraints
    for name in ["real", "positive", "nonnegative", "unit_interval", "boolean", "simplex", "nonnegative_integer",
                 "lower_cholesky", "positive_definite", "real_vector", "one_hot"]:
        assert repr(getattr(C, name)) == repr(getattr(TC, name)), name
        assert getattr(C, name).event_dim == getattr(TC, name).event_dim, name
        assert getattr(C, name).is_discrete == getattr(TC, name).is_discrete, name
    x = np.array([[-1.0, 0.0, 0.5, 1.0, 2.0, np.nan]])
    for name in ["real", "positive", "nonnegative", "unit_interval", "boolean", "nonnegative_integer"]:
        assert getattr(C, name).check(gt.tensor(x)).tolist() == getattr(TC, name).check(torch.tensor(x)).tolist()
    assert repr(C.interval(0.0, 2.0)) == repr(TC.interval(0.0, 2.0))
    assert repr(C.greater_than(1.5)) == repr(TC.greater_than(1.5))
    assert C.is_dependent(D.Uniform.support) and C.is_dependent(D.Categorical.support)
    with pytest.raises(ValueError, match="dependent constraint"):
        C.dependent.check(gt.zeros(1))
    for cls in ["Normal", "Gamma", "Beta", "Bernoulli", "Categorical", "Poisson", "Binomial", "MultivariateNormal",
                "Dirichlet", "Exponential", "Laplace", "StudentT", "LogNormal", "Gumbel", "Cauchy", "HalfNormal",
                "Chi2", "Geometric", "OneHotCategorical", "NegativeBinomial", "Weibull", "Pareto", "Multinomial"]:
        g, t = getattr(D, cls), getattr(torch.distributions, cls)
        assert set(g.arg_constraints) == set(t.arg_constraints), cls
        assert {k: repr(v) for k, v in g.arg_constraints.items()} == {k: repr(v) for k, v in t.arg_constraints.items()}
    assert [type(c).__name__[1:] for c in D.Uniform(0.0, 1.0).arg_constraints.values()] == ["LessThan", "GreaterThan"]
    for cls in ["Normal", "Uniform", "Exponential", "Laplace", "Gumbel", "LogNormal", "MultivariateNormal", "Gamma",
                "Beta", "Dirichlet", "StudentT", "Cauchy", "HalfNormal", "Chi2"]:
        t_flag = getattr(torch.distributions, cls).has_rsample  # a property where torch builds it by transforms
        assert getattr(D, cls).has_rsample is True and (t_flag is True or isinstance(t_flag, property)), cls
    m = D.Bernoulli(logits=gt.tensor([0.0, 2.0]))
    assert "probs" not in m.__dict__ and np.allclose(m.probs.numpy(), [0.5, 1 / (1 + np.exp(-2.0))])
    assert repr(D.Normal(gt.tensor([0.0, 1.0]), 1.0)) == "Normal(loc: (2,), scale: (2,))"


@pytest.mark.parametrize("case", ["normal", "gamma", "dirichlet", "categorical_logits", "onehot", "mvn_tril",
                                  "binomial_probs", "beta", "bernoulli_logits", "studentt", "lognormal", "chi2",
                                  "halfnormal", "uniform", "geometric_logits", "weibull", "pareto",
                                  "negbinomial_probs", "cauchy"])
def test_expand(case):
    cls, params, value, _ = CASES[case]
    d = _make(cls, params)
    big = d.expand((5,) + d.batch_shape)
    assert big.batch_shape == (5,) + d.batch_shape and big.event_shape == d.event_shape
    assert type(big) is type(d) and big._validate_args == d._validate_args
    gt.manual_seed(0)
    v = d.sample()
    lp = d.log_prob(v).numpy()
    np.testing.assert_allclose(big.log_prob(v).numpy(), np.broadcast_to(lp, (5,) + lp.shape), rtol=1e-12)
    np.testing.assert_allclose(big.mean.numpy(), np.broadcast_to(d.mean.numpy(), (5,) + d.mean.shape))
    assert tuple(big.sample((2,)).shape) == (2, 5) + d.batch_shape + d.event_shape


@pytest.mark.parametrize("n", [2, 4])
def test_sharded_batch_of_parameters_gives_the_unsharded_answer(n):
    loc, scale, x = _n(8, 3), _u(8, 3), _n(8, 3)
    conc, simplex = _u(8, 3), _simplex(8, 3)

    def run(shard):
        ps = [gt.tensor(a, dtype=gt.float64, requires_grad=True) for a in (loc, scale, conc)]
        used = [p.shard(0) for p in ps] if shard else ps
        p = D.Normal(used[0], used[1])
        v = gt.tensor(x, dtype=gt.float64)
        out = (p.log_prob(v.shard(0) if shard else v).sum() + D.kl_divergence(p, D.Normal(0.0, 1.0)).sum()
               + D.Gamma(used[2], used[1]).entropy().sum() + D.Dirichlet(used[2]).log_prob(
                   gt.tensor(simplex)).sum())
        out.backward()
        return [float(out)] + [q.grad.numpy() for q in ps]

    with use_mesh(1):
        want = run(False)
    with use_mesh(n):
        got = run(True)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# ---- transforms ----------------------------------------------------------------------------------
def _transformed(M, T, which, m, s):
    base = M.Normal(m, s)
    if which == "tanh":
        return M.TransformedDistribution(base, [M.TanhTransform(cache_size=1)])
    if which == "exp":
        return M.TransformedDistribution(base, M.ExpTransform())
    if which == "sigmoid_affine":
        return M.TransformedDistribution(base, [M.SigmoidTransform(), M.AffineTransform(T(1.0, dtype=m.dtype),
                                                                                          T(-2.0, dtype=m.dtype))])
    if which == "power":
        return M.TransformedDistribution(base, [M.ExpTransform(), M.PowerTransform(T(0.5, dtype=m.dtype))])
    if which == "inverse_exp":
        return M.TransformedDistribution(M.Exponential(s), [M.ExpTransform().inv, M.AffineTransform(m, 2.0)])
    # an affine map over a vector event: Normal's batch dim becomes an event dim
    return M.TransformedDistribution(base, [M.AffineTransform(m * 0 + 0.5, s, event_dim=1)])


@pytest.mark.parametrize("which", ["tanh", "exp", "sigmoid_affine", "power", "inverse_exp", "affine_event"])
def test_transformed_distribution_is_torchs(which):
    torch = _torch()
    m, s = _n(3), _u(3)
    t_dist = _transformed(torch.distributions, torch.tensor, which, torch.tensor(m), torch.tensor(s))
    torch.manual_seed(0)
    x = t_dist.sample((4,)).numpy()
    u = np.array([0.1, 0.5, 0.9])
    for q in ["log_prob", "cdf", "icdf"]:
        if which == "affine_event" and q != "log_prob":
            continue
        params = {"m": m, "s": s}
        g_params, t_params = _params(gt, params), _params(torch, params)
        g = _transformed(D, gt.tensor, which, g_params["m"], g_params["s"])
        t = _transformed(torch.distributions, torch.tensor, which, t_params["m"], t_params["s"])
        assert g.batch_shape == tuple(t.batch_shape) and g.event_shape == tuple(t.event_shape), which
        assert repr(g.support) == repr(t.support) and g.has_rsample == t.has_rsample
        v = u if q == "icdf" else x
        _compare(getattr(g, q)(gt.tensor(v)), getattr(t, q)(torch.tensor(v)), g_params, t_params, 1e-10, 1e-10,
                 f"{which}.{q}")


def test_tanh_normal_rsample_and_cache():
    def draw(m, s):
        gt.manual_seed(1)
        d = D.TransformedDistribution(D.Normal(m, s, validate_args=False), [D.TanhTransform()], validate_args=False)
        return d.rsample((3,))

    check_grad(draw, _n(2), _u(2), rtol=1e-5)
    t = D.TanhTransform(cache_size=1)
    x = gt.tensor([30.0, -0.5], dtype=gt.float64)
    y = t(x)
    assert t.inv(y) is x  # the cached pair: no atanh of +-1
    assert D.TanhTransform().inv(y).numpy()[0] == np.inf
    d = D.TransformedDistribution(D.Normal(gt.zeros(2, dtype=gt.float64), 1.0), [t])
    gt.manual_seed(0)
    a = d.rsample((5,))
    assert bool(d.support.check(a).all()) and np.isfinite(d.log_prob(a).numpy()).all()
    assert d.expand((4, 2)).sample().shape == (4, 2)


@pytest.mark.first_pass
def test_transform_errors_and_attributes():
    torch = _torch()
    with pytest.raises(ValueError, match="transforms must be a Transform"):
        D.TransformedDistribution(D.Normal(0.0, 1.0), [1])
    with pytest.raises(ValueError, match="transforms must be a Transform or list"):
        D.TransformedDistribution(D.Normal(0.0, 1.0), (D.ExpTransform(),))
    with pytest.raises(ValueError, match="cache_size"):
        D.ExpTransform(cache_size=2)
    for name in ["ExpTransform", "SigmoidTransform", "TanhTransform"]:
        g, t = getattr(D, name)(), getattr(torch.distributions, name)()
        assert repr(g.domain) == repr(t.domain) and repr(g.codomain) == repr(t.codomain), name
        assert g.sign == t.sign and g.bijective == t.bijective and g.event_dim == t.event_dim
        assert repr(g.inv.domain) == repr(t.inv.domain) and g.inv.inv is g
        assert g == getattr(D, name)() and g.inv == getattr(D, name)().inv
    assert D.AffineTransform(0.0, -2.0).sign == -1
    assert D.AffineTransform(0.0, 1.0, event_dim=1).event_dim == 1


@pytest.mark.parametrize("n", [2, 4])
def test_sharded_parameters_sample_and_score(n):
    data = _u(8, 3)
    with use_mesh(n):
        p = gt.tensor(data).shard(0)
        for d in [D.Categorical(p), D.Gamma(p, 1.0), D.Dirichlet(p), D.Beta(p, p), D.Poisson(p),
                  D.Binomial(5, probs=p / 3), D.OneHotCategorical(p), D.StudentT(p), D.Bernoulli(p / 3),
                  D.MultivariateNormal(p, scale_tril=gt.eye(3, dtype=gt.float64)), D.LogNormal(p, p),
                  D.Laplace(p, p), D.Uniform(p, p + 1), D.Exponential(p), D.Gumbel(p, p), D.Geometric(p / 3)]:
            x = d.sample((2,))
            assert tuple(x.shape) == (2,) + d.batch_shape + d.event_shape, type(d).__name__
            assert bool(d.support.check(x).all()) and np.isfinite(d.log_prob(x).numpy()).all(), type(d).__name__


# ---- relaxed (Gumbel-softmax) ----------------------------------------------------------------------
RELAXED = {"RelaxedBernoulli": ("relaxed_bernoulli", _n(2, 3)), "RelaxedOneHotCategorical": ("relaxed_categorical",
                                                                                             _n(2, 3)),
           "LogitRelaxedBernoulli": ("relaxed_bernoulli", _n(3)), "ExpRelaxedCategorical": ("relaxed_categorical",
                                                                                             _n(3))}


@pytest.mark.parametrize("name", list(RELAXED))
@pytest.mark.parametrize("by", ["logits", "probs"])
def test_relaxed_distributions_are_torchs(name, by):
    torch = _torch()
    module, logits = RELAXED[name]
    t_cls = getattr(importlib.import_module(f"torch.distributions.{module}"), name)
    param = logits if by == "logits" else (1 / (1 + np.exp(-logits)) if "Bernoulli" in name else
                                           np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    params = {"temperature": np.array(0.7), by: param}
    g_params, t_params = _params(gt, params), _params(torch, params)
    g, t = getattr(relaxed, name)(**g_params), t_cls(**t_params)
    assert g.batch_shape == tuple(t.batch_shape) and g.event_shape == tuple(t.event_shape)
    assert repr(g.support) == repr(t.support) and g.has_rsample == t.has_rsample
    torch.manual_seed(0)
    x = t.sample((4,))
    _compare(g.log_prob(gt.tensor(x.numpy())), t.log_prob(x), g_params, t_params, 1e-10, 1e-9, f"{name}.log_prob")

    def draw(temperature, p):
        gt.manual_seed(2)
        return getattr(relaxed, name)(temperature, **{by: p}, validate_args=False).rsample((2,))

    check_grad(draw, np.array(0.7), param, rtol=1e-5)
    gt.manual_seed(0)
    y = g.expand((5,) + g.batch_shape).sample()
    assert tuple(y.shape) == (5,) + g.batch_shape + g.event_shape and bool(g.support.check(y).all())


# ---- mixtures and multinomials --------------------------------------------------------------------
BUILT = {  # name: (builder(module, params), params, value, quantities)
    "gmm": (lambda M, p: M.MixtureSameFamily(M.Categorical(logits=p["w"]), M.Normal(p["m"], p["s"])),
            {"w": _n(2, 3), "m": _n(2, 3), "s": _u(2, 3)}, _n(4, 2), ["log_prob", "cdf", "mean", "variance"]),
    "gmm_shared_weights": (lambda M, p: M.MixtureSameFamily(M.Categorical(probs=p["w"]), M.Normal(p["m"], p["s"])),
                           {"w": _u(3), "m": _n(2, 3), "s": _u(2, 3)}, _n(4, 2), ["log_prob", "mean", "variance"]),
    "mixture_of_vectors": (lambda M, p: M.MixtureSameFamily(M.Categorical(logits=p["w"]),
                                                            M.Independent(M.Normal(p["m"], p["s"]), 1)),
                           {"w": _n(2, 3), "m": _n(2, 3, 4), "s": _u(2, 3, 4)}, _n(5, 2, 4),
                           ["log_prob", "mean", "variance"]),
    "multinomial": (lambda M, p: M.Multinomial(5, probs=p["p"]), {"p": _u(2, 3)},
                    np.array([[1.0, 2.0, 2.0], [0.0, 5.0, 0.0]]), ["log_prob", "mean", "variance", "entropy"]),
    "multinomial_logits": (lambda M, p: M.Multinomial(3, logits=p["l"]), {"l": _n(4)},
                           np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 3.0]]), ["log_prob", "mean", "entropy"]),
}


@pytest.mark.parametrize("case", list(BUILT))
def test_mixtures_and_multinomials_are_torchs(case):
    torch = _torch()
    build, params, value, quantities = BUILT[case]
    for q in quantities:
        g_params, t_params = _params(gt, params), _params(torch, params)
        g, t = build(D, g_params), build(torch.distributions, t_params)
        assert g.batch_shape == tuple(t.batch_shape) and g.event_shape == tuple(t.event_shape)
        # torch's Multinomial entropy takes lgamma of an int64 total_count: float32 precision there
        rtol = 1e-7 if q == "entropy" else 1e-10
        _compare(_quantity(g, gt, q, value, ""), _quantity(t, torch, q, value, ""), g_params, t_params, rtol, 1e-7,
                 f"{case}.{q}")
        gt.manual_seed(0)
        x = g.sample((3,))
        # (torch's MixtureSameFamily.sample fails where the weights are shared by a batch; gt broadcasts them)
        assert tuple(x.shape) == (3,) + g.batch_shape + g.event_shape and np.isfinite(g.log_prob(x).numpy()).all()
    assert tuple(g.expand((4,) + g.batch_shape).sample().shape) == (4,) + g.batch_shape + g.event_shape


def test_mixture_and_multinomial_draws():
    gt.manual_seed(3)
    counts = D.Multinomial(10, probs=gt.tensor([0.2, 0.3, 0.5], dtype=gt.float64)).sample((4000,)).numpy()
    assert (counts.sum(-1) == 10).all()
    np.testing.assert_allclose(counts.mean(0), [2.0, 3.0, 5.0], atol=0.1)
    f64 = {"dtype": gt.float64}
    gmm = D.MixtureSameFamily(D.Categorical(gt.tensor([0.3, 0.7], **f64)),
                              D.Normal(gt.tensor([-2.0, 3.0], **f64), gt.tensor([0.5, 1.0], **f64)))
    x = gmm.sample((20000,)).numpy()
    assert abs(x.mean() - float(gmm.mean)) < 0.06 and abs(x.var() / float(gmm.variance) - 1) < 0.05
    assert abs((x < 0).mean() - 0.3) < 0.015


def test_mixture_and_multinomial_errors():
    torch = _torch()
    for M, T in [(D, gt.tensor), (torch.distributions, torch.tensor)]:
        with pytest.raises(ValueError, match="needs to be an  instance"):
            M.MixtureSameFamily(M.Normal(T([0.0]), T([1.0])), M.Normal(T([0.0]), T([1.0])))
        with pytest.raises(ValueError, match="does not equal"):
            M.MixtureSameFamily(M.Categorical(T([0.5, 0.5])), M.Normal(T([0.0, 1.0, 2.0]), T([1.0, 1.0, 1.0])))
        with pytest.raises(ValueError, match="is not compatible"):
            M.MixtureSameFamily(M.Categorical(T([[0.5, 0.5]] * 2)), M.Normal(T([[0.0, 1.0]] * 3), 1.0))
        with pytest.raises(NotImplementedError, match="inhomogeneous total_count"):
            M.Multinomial(T([3, 4]), T([0.5, 0.5]))
        with pytest.raises(ValueError, match="to be within the support"):
            M.Multinomial(2, T([0.5, 0.5])).log_prob(T([2.0, 1.0]))
