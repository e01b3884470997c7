"""The families torch makes ExponentialFamily subclasses are ones in gt (float64, beside torch):
their natural parameters and log normalizers, ExponentialFamily.entropy (the Bregman form) and the
Bregman KL fallback with their parameter gradients, and the KL dispatch between two exponential
families without a closed form."""

import numpy as np
import pytest

import gt
import gt.distributions as D
from gt.distributions.exp_family import _kl_expfamily_expfamily
from helpers import torch_or_skip

RNG = np.random.default_rng(0)


def _pos(*shape):
    return RNG.uniform(0.5, 2.0, shape)


FAMILIES = {"Normal": [RNG.standard_normal(3), _pos(3)], "Exponential": [_pos(3)], "Gamma": [_pos(3), _pos(3)],
            "Chi2": [2 * _pos(3)], "Beta": [_pos(3), _pos(3)], "Dirichlet": [_pos(2, 3)],
            "Bernoulli": [RNG.uniform(0.1, 0.9, 3)], "Poisson": [_pos(3)],
            "ContinuousBernoulli": [np.array([0.2, 0.4995, 0.8])]}
NOT_FAMILIES = ["Binomial", "Categorical", "Geometric", "Laplace", "Uniform", "StudentT", "MultivariateNormal",
                "LogNormal", "Cauchy"]


def _lib(lib):
    torch = torch_or_skip()
    if lib == "gt":
        return gt, D, D.ExponentialFamily, _kl_expfamily_expfamily
    from torch.distributions.kl import _kl_expfamily_expfamily as torch_kl
    return torch, torch.distributions, torch.distributions.ExponentialFamily, torch_kl


def _pair(lib, name):
    """p and q of the family and the leaves of their parameters (q's moved off p's)."""
    m, M, _, _ = _lib(lib)
    params = FAMILIES[name]
    leaves = [m.tensor(v, dtype=m.float64, requires_grad=True) for v in params + [0.7 * v + 0.1 for v in params]]
    return getattr(M, name)(*leaves[:len(params)]), getattr(M, name)(*leaves[len(params):]), leaves


def _value_and_grads(lib, name, quantity):
    m, M, EF, kl = _lib(lib)
    p, q, leaves = _pair(lib, name)
    try:
        out = {"entropy": lambda: EF.entropy(p), "kl": lambda: kl(p, q), "dispatch": lambda: M.kl_divergence(p, q),
               "normalizer": lambda: p._log_normalizer(*p._natural_params)}[quantity]()
    except NotImplementedError as e:
        return "NotImplementedError", str(e)
    got = m.autograd.grad(out.sum(), leaves, allow_unused=True)
    return out.detach().numpy(), [None if g is None else g.numpy() for g in got]


def test_the_families_are_exponential_families_where_torchs_are():
    torch = torch_or_skip()
    for name in list(FAMILIES) + NOT_FAMILIES:
        want = issubclass(getattr(torch.distributions, name), torch.distributions.ExponentialFamily)
        assert issubclass(getattr(D, name), D.ExponentialFamily) == want, name
        assert want == (name in FAMILIES), name


# ContinuousBernoulli was an exponential family before: only its entropy (no _mean_carrier_measure) was not torch's
BREGMAN = [(name, q) for name in FAMILIES for q in ("entropy", "kl", "dispatch", "normalizer")
           if name != "ContinuousBernoulli" or q == "entropy"]


@pytest.mark.parametrize("name, quantity", BREGMAN)
def test_bregman_entropy_and_kl_are_torchs(name, quantity):
    (g, g_grads), (t, t_grads) = (_value_and_grads(lib, name, quantity) for lib in ("gt", "torch"))
    if isinstance(t, str):  # torch's family has no _mean_carrier_measure: no Bregman entropy
        assert (g, g_grads) == (t, t_grads), name
        return
    assert g.shape == t.shape
    np.testing.assert_allclose(g, t, rtol=1e-10, atol=1e-12)
    # the closed-form KLs' gradients hold trigamma, torch's about 1e-10 relative off scipy's
    rtol = 1e-8 if quantity == "dispatch" and name in ("Gamma", "Chi2", "Beta", "Dirichlet") else 1e-10
    for a, b in zip(g_grads, t_grads):
        assert (a is None) == (b is None), (name, quantity)  # p's natural parameters detached, as torch's
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_bregman_forms_agree_with_the_closed_forms(name):
    p, q, _ = _pair("gt", name)
    try:
        entropy = D.ExponentialFamily.entropy(p)
    except NotImplementedError:
        assert name in ("Beta", "Dirichlet", "Poisson")
    else:
        np.testing.assert_allclose(entropy.detach().numpy(), p.entropy().detach().numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(_kl_expfamily_expfamily(p, q).detach().numpy(),
                               D.kl_divergence(p, q).detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("p_name, q_name", [("Normal", "Poisson"), ("Bernoulli", "Gamma"), ("Beta", "Dirichlet"),
                                            ("Exponential", "Poisson")])
def test_kl_between_two_exponential_families_without_a_closed_form_is_torchs_error(p_name, q_name):
    messages = []
    for lib in ("gt", "torch"):
        p, q = _pair(lib, p_name)[0], _pair(lib, q_name)[1]
        with pytest.raises(NotImplementedError) as info:
            _lib(lib)[1].kl_divergence(p, q)
        messages.append(str(info.value))
    assert " ".join(messages[0].split()) == " ".join(messages[1].split())  # torch's holds a run of spaces
    assert "different exponential families" in messages[0]
