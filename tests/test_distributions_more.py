"""HalfCauchy, InverseGamma, FisherSnedecor, Kumaraswamy and ContinuousBernoulli beside
torch.distributions (float64): log_prob, cdf, icdf, entropy and moments with their parameter
gradients; draws' shapes, supports and moments under a seed; rsample gradients by finite
differences; the Abs, Softmax, StickBreaking, LowerCholesky and Reshape transforms; errors;
sharded parameters."""

import numpy as np
import pytest

import gt
import gt.distributions as D
from gt.sharding.mesh import use_mesh
from helpers import check_grad, torch_or_skip

RNG = np.random.default_rng(0)


def _u(*shape, low=0.5, high=2.0):
    return RNG.uniform(low, high, shape)


ALL = ["log_prob", "cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev"]
CB_PROBS = np.array([0.1, 0.4995, 0.7, 0.95])  # 0.4995: inside lims, the Taylor branch
CASES = {
    "halfcauchy": ("HalfCauchy", {"scale": _u(3)}, _u(2, 3, low=0.0, high=3.0), ALL),
    "inversegamma": ("InverseGamma", {"concentration": np.array([0.5, 1.5, 3.0]), "rate": _u(3)},
                     _u(2, 3, low=0.1, high=3.0), ["log_prob", "entropy", "mean", "mode", "variance"]),
    "fisher": ("FisherSnedecor", {"df1": np.array([1.0, 3.0, 5.0]), "df2": np.array([1.5, 3.0, 6.0])},
               _u(2, 3, low=0.1, high=3.0), ["log_prob", "mean", "mode", "variance"]),
    "kumaraswamy": ("Kumaraswamy", {"concentration1": _u(3, high=3.0), "concentration0": _u(2, 3, high=3.0)},
                    _u(2, 3, low=0.05, high=0.95), ["log_prob", "entropy", "mean", "mode", "variance"]),
    "cbern_probs": ("ContinuousBernoulli", {"probs": CB_PROBS}, _u(2, 4, low=0.0, high=1.0),
                    ["log_prob", "cdf", "icdf", "entropy", "mean", "variance", "stddev"]),
    "cbern_logits": ("ContinuousBernoulli", {"logits": RNG.standard_normal(4)}, _u(2, 4, low=0.0, high=1.0),
                     ["log_prob", "cdf", "icdf", "entropy", "mean", "variance"]),
}
DIGAMMA = {"inversegamma", "kumaraswamy"}


def _build(lib, cls, params):
    torch = torch_or_skip()
    if lib is gt:
        ps = {k: gt.tensor(v, dtype=gt.float64, requires_grad=True) for k, v in params.items()}
        return getattr(D, cls)(**ps), ps
    ps = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    return getattr(torch.distributions, cls)(**ps), ps


def _quantity(lib, dist, q, value):
    torch = torch_or_skip()
    if q in ("log_prob", "cdf", "icdf"):
        if q == "icdf":
            value = np.clip(value, 0.02, 0.98)
        arg = gt.tensor(value, dtype=gt.float64) if lib is gt else torch.tensor(value, dtype=torch.float64)
        return getattr(dist, q)(arg)
    return dist.entropy() if q == "entropy" else getattr(dist, q)


@pytest.mark.parametrize("case", list(CASES))
def test_values_and_gradients_are_torchs(case):
    torch = torch_or_skip()
    cls, params, value, quantities = CASES[case]
    grad_rtol = 1e-8 if case in DIGAMMA else 1e-10
    for q in quantities:
        g_dist, g_ps = _build(gt, cls, params)
        t_dist, t_ps = _build(torch, cls, params)
        assert tuple(g_dist.batch_shape) == tuple(t_dist.batch_shape)
        g_out, t_out = _quantity(gt, g_dist, q, value), _quantity(torch, t_dist, q, value)
        t_np = t_out.detach().numpy()
        assert tuple(g_out.shape) == t_np.shape and g_out.dtype == gt.float64, (case, q)
        np.testing.assert_allclose(g_out.detach().numpy(), t_np, rtol=1e-10, atol=1e-12, err_msg=f"{case}.{q}")
        finite = np.isfinite(t_np)
        if not t_out.requires_grad or not finite.any():
            continue
        up = np.where(finite, np.random.default_rng(1).standard_normal(t_np.shape), 0.0)
        t_kept = torch.where(torch.tensor(finite), t_out, 0.0)
        t_grads = torch.autograd.grad((t_kept * torch.tensor(up)).sum(), list(t_ps.values()), allow_unused=True)
        (gt.where(gt.tensor(finite), g_out, 0.0) * gt.tensor(up)).sum().backward()
        for (k, g_p), t_g in zip(g_ps.items(), t_grads):
            want = np.zeros(g_p.shape) if t_g is None else t_g.numpy()
            got = np.zeros(g_p.shape) if g_p.grad is None else g_p.grad.numpy()
            np.testing.assert_allclose(got, want, rtol=grad_rtol, atol=1e-10, err_msg=f"{case}.{q} d/d{k}")


SAMPLES = {
    "HalfCauchy": {"scale": np.array([0.5, 2.0])},
    "InverseGamma": {"concentration": np.array([5.0, 8.0]), "rate": np.array([1.0, 3.0])},
    "FisherSnedecor": {"df1": np.array([4.0, 10.0]), "df2": np.array([12.0, 20.0])},
    "Kumaraswamy": {"concentration1": np.array([0.7, 3.0]), "concentration0": np.array([2.0, 0.8])},
    "ContinuousBernoulli": {"probs": np.array([0.2, 0.5, 0.9])},
}


@pytest.mark.parametrize("cls", list(SAMPLES))
def test_samples_have_torchs_shape_support_and_moments(cls):
    gt.manual_seed(0)
    params = {k: gt.tensor(v, dtype=gt.float64) for k, v in SAMPLES[cls].items()}
    d = getattr(D, cls)(**params)
    x = d.sample((4000,))
    assert tuple(x.shape) == (4000,) + tuple(d.batch_shape) and x.dtype == gt.float64
    assert bool(d.support.check(x).all())
    assert tuple(d.sample().shape) == tuple(d.batch_shape)
    xs = x.numpy()
    if cls == "HalfCauchy":  # no mean: compare the median, scale
        np.testing.assert_allclose(np.median(xs, 0), SAMPLES[cls]["scale"], rtol=0.1)
        return
    mean, sd = d.mean.numpy(), d.stddev.numpy()
    assert np.all(np.abs(xs.mean(0) - mean) < 5 * sd / np.sqrt(len(xs))), (xs.mean(0), mean)
    np.testing.assert_allclose(xs.std(0), sd, rtol=0.15)


# the gamma-based families move with concentration implicitly (not pathwise under a fixed seed):
# only their rate is checked here, the rest by the mean's gradient below
RSAMPLE = {"HalfCauchy": [_u(3)], "InverseGamma": [_u(3)], "Kumaraswamy": [_u(3), _u(3)],
           "ContinuousBernoulli": [np.array([0.2, 0.4995, 0.8])]}


@pytest.mark.parametrize("cls", list(RSAMPLE))
def test_rsample_gradients_match_finite_differences_under_a_seed(cls):
    def draw(*params):
        gt.manual_seed(3)
        if cls == "InverseGamma":
            params = (gt.tensor([2.5, 3.0, 4.0], dtype=gt.float64),) + params
        return getattr(D, cls)(*params, validate_args=False).rsample((4,))

    check_grad(draw, *RSAMPLE[cls], rtol=1e-5)


@pytest.mark.parametrize("cls", ["InverseGamma", "FisherSnedecor"])
def test_rsample_mean_gradient_is_the_mean_s_gradient(cls):
    gt.manual_seed(0)
    a = gt.tensor([6.0, 10.0], dtype=gt.float64, requires_grad=True)
    b = gt.tensor([5.0, 20.0], dtype=gt.float64, requires_grad=True)
    getattr(D, cls)(a, b).rsample((20000,)).mean(0).sum().backward()
    got = np.concatenate([a.grad.numpy(), b.grad.numpy()])
    a2 = gt.tensor([6.0, 10.0], dtype=gt.float64, requires_grad=True)
    b2 = gt.tensor([5.0, 20.0], dtype=gt.float64, requires_grad=True)
    getattr(D, cls)(a2, b2).mean.sum().backward()
    want = np.concatenate([np.zeros(2) if p.grad is None else p.grad.numpy() for p in (a2, b2)])
    np.testing.assert_allclose(got, want, rtol=0.1, atol=0.01)


def test_log_prob_outside_the_support_and_validation_errors():
    with pytest.raises(ValueError, match="scale"):
        D.HalfCauchy(gt.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="concentration"):
        D.InverseGamma(gt.tensor([0.0]), 1.0)
    with pytest.raises(ValueError, match="df2"):
        D.FisherSnedecor(1.0, gt.tensor([-2.0]))
    with pytest.raises(ValueError, match="concentration0"):
        D.Kumaraswamy(1.0, gt.tensor([-2.0]))
    with pytest.raises(ValueError, match="probs"):
        D.ContinuousBernoulli(probs=gt.tensor([1.5]), validate_args=True)
    with pytest.raises(ValueError, match="not both"):
        D.ContinuousBernoulli(probs=0.3, logits=0.1)
    with pytest.raises(ValueError, match="support"):
        D.Kumaraswamy(2.0, 2.0).log_prob(gt.tensor(1.5))
    d = D.HalfCauchy(gt.tensor([1.0, 2.0]), validate_args=False)
    assert np.isneginf(d.log_prob(gt.tensor([-1.0, -0.5])).numpy()).all()


def test_expand_keeps_values():
    for d in [D.HalfCauchy(gt.tensor([1.0, 2.0])), D.InverseGamma(gt.tensor([3.0, 4.0]), 2.0),
              D.FisherSnedecor(gt.tensor([3.0, 5.0]), 7.0), D.Kumaraswamy(gt.tensor([2.0, 3.0]), 1.5),
              D.ContinuousBernoulli(gt.tensor([0.2, 0.7]))]:
        big = d.expand((3, 2))
        assert tuple(big.batch_shape) == (3, 2) and type(big) is type(d)
        v = gt.tensor([0.3, 0.6])
        np.testing.assert_allclose(big.log_prob(v).numpy(), np.broadcast_to(d.log_prob(v).numpy(), (3, 2)),
                                   rtol=1e-12)
        assert tuple(big.sample((4,)).shape) == (4, 3, 2)


# ---- transforms ----------------------------------------------------------------------------------
X = RNG.standard_normal((2, 3))


@pytest.mark.parametrize("name", ["AbsTransform", "SoftmaxTransform", "StickBreakingTransform"])
def test_transforms_are_torchs(name):
    torch = torch_or_skip()
    g_x = gt.tensor(X, dtype=gt.float64, requires_grad=True)
    t_x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    g_t, t_t = getattr(D, name)(), getattr(torch.distributions.transforms, name)()
    g_y, t_y = g_t(g_x), t_t(t_x)
    np.testing.assert_allclose(g_y.detach().numpy(), t_y.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g_t.inv(g_y).detach().numpy(), t_t.inv(t_y).detach().numpy(), rtol=1e-10)
    assert g_t.forward_shape((5, 3)) == tuple(t_t.forward_shape((5, 3)))
    assert g_t.inverse_shape((5, 3)) == tuple(t_t.inverse_shape((5, 3)))
    assert g_t.domain.event_dim == t_t.domain.event_dim and g_t.codomain.event_dim == t_t.codomain.event_dim
    assert g_t.bijective == t_t.bijective and g_t == getattr(D, name)() and g_t != D.ExpTransform()
    g_out, t_out = g_y, t_y
    if name == "StickBreakingTransform":
        g_out, t_out = g_t.log_abs_det_jacobian(g_x, g_y), t_t.log_abs_det_jacobian(t_x, t_y)
        np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-12)
        assert bool(D.constraints.simplex.check(g_y).all())
    up = np.random.default_rng(2).standard_normal(tuple(g_out.shape))
    (g_out * gt.tensor(up)).sum().backward()
    t_grad, = torch.autograd.grad((t_out * torch.tensor(up)).sum(), t_x)
    np.testing.assert_allclose(g_x.grad.numpy(), t_grad.numpy(), rtol=1e-10, atol=1e-12)


def test_stick_breaking_jacobian_is_the_log_det_of_the_finite_difference_jacobian():
    t = D.StickBreakingTransform()
    x = X[0]

    def f(v):
        return t(gt.tensor(v, dtype=gt.float64)).numpy()[:-1]  # the free K coordinates

    h = 1e-6
    jac = np.stack([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(3)], axis=1)
    y = t(gt.tensor(x, dtype=gt.float64))
    np.testing.assert_allclose(float(t.log_abs_det_jacobian(gt.tensor(x, dtype=gt.float64), y)),
                               np.log(abs(np.linalg.det(jac))), rtol=1e-6)


def test_stick_breaking_transformed_dirichlet_like_distribution_scores_like_torch():
    torch = torch_or_skip()
    loc, scale = RNG.standard_normal(3), _u(3)
    g = D.TransformedDistribution(D.Normal(gt.tensor(loc), gt.tensor(scale)), D.StickBreakingTransform())
    t = torch.distributions.TransformedDistribution(torch.distributions.Normal(torch.tensor(loc), torch.tensor(scale)),
                                                    torch.distributions.transforms.StickBreakingTransform())
    assert tuple(g.event_shape) == tuple(t.event_shape) == (4,)
    y = np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    np.testing.assert_allclose(g.log_prob(gt.tensor(y)).numpy(), t.log_prob(torch.tensor(y)).numpy(), rtol=1e-10)


def test_lower_cholesky_and_reshape_transforms_are_torchs():
    torch = torch_or_skip()
    m = RNG.standard_normal((2, 3, 3))
    g, t = D.LowerCholeskyTransform(), torch.distributions.transforms.LowerCholeskyTransform()
    gy, ty = g(gt.tensor(m)), t(torch.tensor(m))
    np.testing.assert_allclose(gy.numpy(), ty.numpy(), rtol=1e-12)
    np.testing.assert_allclose(g.inv(gy).numpy(), t.inv(ty).numpy(), rtol=1e-12)
    assert bool(D.constraints.lower_cholesky.check(gy).all())
    r = D.ReshapeTransform((3, 3), (9,))
    tr = torch.distributions.transforms.ReshapeTransform((3, 3), (9,))
    np.testing.assert_array_equal(r(gt.tensor(m)).numpy(), tr(torch.tensor(m)).numpy())
    np.testing.assert_array_equal(r.inv(r(gt.tensor(m))).numpy(), m)
    assert r.forward_shape((5, 3, 3)) == (5, 9) and r.inverse_shape((5, 9)) == (5, 3, 3)
    assert tuple(r.log_abs_det_jacobian(gt.tensor(m), r(gt.tensor(m))).shape) == (2,)
    assert r.domain.event_dim == 2 and r.codomain.event_dim == 1


@pytest.mark.first_pass
def test_transform_shape_errors():
    with pytest.raises(ValueError, match="different numbers of elements"):
        D.ReshapeTransform((2, 3), (5,))
    with pytest.raises(ValueError, match="Shape mismatch"):
        D.ReshapeTransform((2, 3), (6,)).forward_shape((3, 2))
    with pytest.raises(ValueError, match="Too few dimensions"):
        D.StickBreakingTransform().forward_shape(())
    with pytest.raises(ValueError, match="Too few dimensions"):
        D.SoftmaxTransform().inverse_shape(())


@pytest.mark.parametrize("n", [2, 4])
def test_sharded_parameters_give_the_unsharded_answer(n):
    a, b, x = _u(8, 3, low=2.5, high=4.0), _u(8, 3), _u(8, 3, low=0.1, high=0.9)

    def run(shard):
        ps = [gt.tensor(v, dtype=gt.float64, requires_grad=True) for v in (a, b)]
        used = [p.shard(0) for p in ps] if shard else ps
        v = gt.tensor(x, dtype=gt.float64)
        v = v.shard(0) if shard else v
        out = (D.HalfCauchy(used[1]).log_prob(v).sum() + D.InverseGamma(used[0], used[1]).entropy().sum()
               + D.FisherSnedecor(used[0], used[1]).log_prob(v).sum()
               + D.Kumaraswamy(used[0], used[1]).log_prob(v).sum()
               + D.ContinuousBernoulli(logits=used[1]).log_prob(v).sum()
               + D.GeneralizedPareto(v, used[1], used[0] - 3.0).log_prob(v + used[1]).sum()
               + D.LowRankMultivariateNormal(v, used[1].unsqueeze(-1), used[0]).log_prob(v * 2).sum())
        out.backward()
        return [float(out)] + [q.grad.numpy() for q in ps]

    with use_mesh(1):
        want = run(False)
    with use_mesh(n):
        got = run(True)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)


# ---- LowRankMultivariateNormal ---------------------------------------------------------------------
LR = {"loc": RNG.standard_normal((2, 3)), "cov_factor": RNG.standard_normal((3, 2)) * 0.5,
      "cov_diag": _u(2, 3)}
LR2 = {"loc": RNG.standard_normal(3), "cov_factor": RNG.standard_normal((2, 3, 1)), "cov_diag": _u(3)}
TRIL = np.tril(RNG.standard_normal((3, 3)) * 0.3, -1) + np.diag(_u(3, low=0.7, high=1.5))


def _lib_tensor(lib, a):
    torch = torch_or_skip()
    if lib is gt:
        return gt.tensor(a, dtype=gt.float64, requires_grad=True)
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("q", ["log_prob", "entropy", "mean", "variance", "scale_tril", "covariance_matrix",
                               "precision_matrix"])
def test_low_rank_mvn_is_torchs(q):
    torch = torch_or_skip()
    x = np.random.default_rng(5).standard_normal((4, 2, 3))
    outs = []
    for lib, M in ((gt, D), (torch, torch.distributions)):
        ps = [_lib_tensor(lib, LR[k]) for k in ("loc", "cov_factor", "cov_diag")]
        d = M.LowRankMultivariateNormal(*ps)
        assert tuple(d.batch_shape) == (2,) and tuple(d.event_shape) == (3,)
        if q == "log_prob":
            out = d.log_prob(gt.tensor(x) if lib is gt else torch.tensor(x))
        else:
            out = d.entropy() if q == "entropy" else getattr(d, q)
        outs.append((out, ps))
    (g, g_ps), (t, t_ps) = outs
    np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
    up = np.random.default_rng(1).standard_normal(tuple(t.shape))
    (g * gt.tensor(up)).sum().backward()
    t_grads = torch.autograd.grad((t * torch.tensor(up)).sum(), t_ps, allow_unused=True)
    for g_p, t_g in zip(g_ps, t_grads):
        want = np.zeros(g_p.shape) if t_g is None else t_g.numpy()
        got = np.zeros(g_p.shape) if g_p.grad is None else g_p.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pair", ["lowrank_lowrank", "mvn_lowrank", "lowrank_mvn"])
def test_low_rank_mvn_kl_pairs_are_torchs(pair):
    torch = torch_or_skip()
    outs = []
    for lib, M in ((gt, D), (torch, torch.distributions)):
        ps = [_lib_tensor(lib, a) for a in (LR["loc"], LR2["cov_factor"], LR["cov_diag"], LR2["loc"],
                                            LR["cov_factor"], LR2["cov_diag"], TRIL)]
        lr_p = M.LowRankMultivariateNormal(ps[0], ps[1], ps[2])
        lr_q = M.LowRankMultivariateNormal(ps[3], ps[4], ps[5])
        mvn = M.MultivariateNormal(ps[3], scale_tril=ps[6])
        p, q = {"lowrank_lowrank": (lr_p, lr_q), "mvn_lowrank": (mvn, lr_p), "lowrank_mvn": (lr_p, mvn)}[pair]
        outs.append((M.kl_divergence(p, q), ps))
    (g, g_ps), (t, t_ps) = outs
    assert tuple(g.shape) == tuple(t.shape) == (2,)
    np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-10)
    g.sum().backward()
    t_grads = torch.autograd.grad(t.sum(), t_ps, allow_unused=True)
    for g_p, t_g in zip(g_ps, t_grads):
        want = np.zeros(g_p.shape) if t_g is None else t_g.numpy()
        got = np.zeros(g_p.shape) if g_p.grad is None else g_p.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_low_rank_mvn_matches_the_dense_mvn_and_samples_its_covariance():
    loc, W, Dg = (gt.tensor(LR[k], dtype=gt.float64) for k in ("loc", "cov_factor", "cov_diag"))
    lr = D.LowRankMultivariateNormal(loc, W, Dg)
    dense = D.MultivariateNormal(loc, covariance_matrix=lr.covariance_matrix)
    x = gt.tensor(np.random.default_rng(6).standard_normal((5, 2, 3)))
    np.testing.assert_allclose(lr.log_prob(x).numpy(), dense.log_prob(x).numpy(), rtol=1e-10)
    np.testing.assert_allclose(float(D.kl_divergence(lr, dense).abs().max()), 0.0, atol=1e-10)
    gt.manual_seed(0)
    s = lr.sample((4000,))
    assert tuple(s.shape) == (4000, 2, 3)
    cov = np.einsum("sbi,sbj->bij", s.numpy() - LR["loc"], s.numpy() - LR["loc"]) / 4000
    np.testing.assert_allclose(cov, lr.covariance_matrix.numpy(), atol=0.25)
    big = lr.expand((4, 2))
    assert tuple(big.batch_shape) == (4, 2) and tuple(big.sample((3,)).shape) == (3, 4, 2, 3)


@pytest.mark.first_pass
def test_low_rank_mvn_errors():
    loc, W, Dg = gt.zeros(3), gt.ones(3, 2), gt.ones(3)
    with pytest.raises(ValueError, match="loc must be at least one-dimensional"):
        D.LowRankMultivariateNormal(gt.tensor(0.0), W, Dg)
    with pytest.raises(ValueError, match="cov_factor must be at least two-dimensional"):
        D.LowRankMultivariateNormal(loc, gt.ones(3), Dg)
    with pytest.raises(ValueError, match="cov_factor must be a batch of matrices with shape 3 x m"):
        D.LowRankMultivariateNormal(loc, gt.ones(4, 2), Dg)
    with pytest.raises(ValueError, match="cov_diag must be a batch of vectors"):
        D.LowRankMultivariateNormal(loc, W, gt.ones(2))
    with pytest.raises(ValueError, match="cov_diag"):
        D.LowRankMultivariateNormal(loc, W, -gt.ones(3))
    with pytest.raises(ValueError, match="different event shapes"):
        D.kl_divergence(D.LowRankMultivariateNormal(loc, W, Dg),
                        D.LowRankMultivariateNormal(gt.zeros(2), gt.ones(2, 1), gt.ones(2)))


# ---- ContinuousBernoulli's KL pairs ----------------------------------------------------------------
CB_Q = np.array([0.3, 0.8, 0.5002, 0.05])
CB_KL = {
    "cb_cb": lambda M, t: (M.ContinuousBernoulli(t(CB_PROBS)), M.ContinuousBernoulli(t(CB_Q)), [0, 1]),
    "cb_exponential": lambda M, t: (M.ContinuousBernoulli(t(CB_PROBS)), M.Exponential(t(CB_Q + 1)), [0, 1]),
    "cb_normal": lambda M, t: (M.ContinuousBernoulli(t(CB_PROBS)), M.Normal(t(CB_Q), t(CB_Q + 1)), [0, 1]),
    "cb_uniform": lambda M, t: (M.ContinuousBernoulli(t(CB_PROBS)), M.Uniform(t(np.array([-1.0, 0.1, -0.5, -0.1])),
                                                                             t(np.array([2.0, 3.0, 0.9, 1.5]))), [0]),
    "uniform_cb": lambda M, t: (M.Uniform(t(np.array([0.1, 0.0, 0.2, 0.3])), t(np.array([0.5, 0.9, 1.0, 0.6]))),
                                M.ContinuousBernoulli(t(CB_Q)), [1]),
    "beta_cb": lambda M, t: (M.Beta(t(CB_Q + 1), t(CB_PROBS + 1)), M.ContinuousBernoulli(t(CB_Q)), [0, 1]),
}


@pytest.mark.parametrize("case", list(CB_KL))
def test_continuous_bernoulli_kl_pairs_are_torchs(case):
    torch = torch_or_skip()
    g_leaves, t_leaves = [], []

    def g_t(v):
        g_leaves.append(gt.tensor(v, dtype=gt.float64, requires_grad=True))
        return g_leaves[-1]

    def t_t(v):
        t_leaves.append(torch.tensor(v, dtype=torch.float64, requires_grad=True))
        return t_leaves[-1]

    gp, gq, _ = CB_KL[case](D, g_t)
    tp, tq, _ = CB_KL[case](torch.distributions, t_t)
    g, t = D.kl_divergence(gp, gq), torch.distributions.kl_divergence(tp, tq)
    t_np = t.detach().numpy()
    assert tuple(g.shape) == t_np.shape
    np.testing.assert_allclose(g.detach().numpy(), t_np, rtol=1e-10)
    finite = np.isfinite(t_np)
    gt.where(gt.tensor(finite), g, 0.0).sum().backward()
    t_grads = torch.autograd.grad(torch.where(torch.tensor(finite), t, 0.0).sum(), t_leaves, allow_unused=True)
    for g_p, t_g in zip(g_leaves, t_grads):
        want = np.zeros(g_p.shape) if t_g is None else t_g.numpy()
        got = np.zeros(g_p.shape) if g_p.grad is None else g_p.grad.numpy()
        # Beta's entropy differentiates through digamma: torch's polygamma is ~5e-10 off
        np.testing.assert_allclose(got, want, rtol=1e-8 if case == "beta_cb" else 1e-10, atol=1e-10)


# ---- VonMises --------------------------------------------------------------------------------------
VM_KAPPA = np.array([0.3, 2.0, 3.74, 3.76, 10.0])  # both sides of the Bessel approximation's 3.75 split
VM_LOC = np.array([0.1, -1.0, 2.0, 3.0, 0.0])


@pytest.mark.parametrize("q", ["log_prob", "mean", "mode", "variance"])
def test_von_mises_is_torchs(q):
    torch = torch_or_skip()
    x = np.linspace(-7.0, 7.0, 10).reshape(2, 5)
    outs = []
    for lib, M in ((gt, D), (torch, torch.distributions)):
        ps = [_lib_tensor(lib, VM_LOC), _lib_tensor(lib, VM_KAPPA)]
        d = M.VonMises(*ps)
        out = d.log_prob(gt.tensor(x) if lib is gt else torch.tensor(x)) if q == "log_prob" else getattr(d, q)
        outs.append((out, ps))
    (g, g_ps), (t, t_ps) = outs
    assert tuple(g.shape) == tuple(t.shape)
    np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-14)
    g.sum().backward()
    t_grads = torch.autograd.grad(t.sum(), t_ps, allow_unused=True)
    for g_p, t_g in zip(g_ps, t_grads):
        want = np.zeros(g_p.shape) if t_g is None else t_g.numpy()
        got = np.zeros(g_p.shape) if g_p.grad is None else g_p.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_von_mises_samples_have_the_circular_moments(dtype):
    gt.manual_seed(0)
    dt = getattr(gt, dtype)
    d = D.VonMises(gt.tensor(VM_LOC, dtype=dt), gt.tensor(np.r_[VM_KAPPA[:4], 1e-6], dtype=dt))
    s = d.sample((8000,))
    assert tuple(s.shape) == (8000, 5) and s.dtype == dt and not d.has_rsample
    xs = s.numpy().astype(np.float64)
    assert xs.min() >= -np.pi - 1e-6 and xs.max() <= np.pi + 1e-6
    C, S = np.cos(xs).mean(0), np.sin(xs).mean(0)
    with np.errstate(over="ignore"):  # the unused large-kappa branch overflows in float32 at 1e-6
        variance = d.variance.numpy()
    np.testing.assert_allclose(1 - np.hypot(C, S), variance, atol=0.03)
    err = np.angle(np.exp(1j * (np.arctan2(S, C) - VM_LOC)))
    assert np.all(np.abs(err[:4]) < 0.06), err


def test_von_mises_errors_and_expand():
    with pytest.raises(ValueError, match="concentration"):
        D.VonMises(0.0, gt.tensor([-1.0]))
    d = D.VonMises(gt.tensor([0.0, 1.0]), 2.0).expand((3, 2))
    assert tuple(d.batch_shape) == (3, 2) and tuple(d.sample((4,)).shape) == (4, 3, 2)
    with pytest.raises(NotImplementedError):
        d.rsample()


# ---- ExponentialFamily's Bregman entropy and KL -------------------------------------------------------
def _natural_normal(base):
    """Normal written as an exponential family: theta = (mu / s**2, -1 / (2 s**2))."""

    class NaturalNormal(base):
        arg_constraints = {}

        def __init__(self, loc, scale):
            self.loc, self.scale = loc, scale
            super().__init__(tuple(loc.shape), validate_args=False)

        @property
        def _natural_params(self):
            return (self.loc / self.scale.pow(2), -0.5 * self.scale.pow(-2))

        def _log_normalizer(self, x, y):
            return -0.25 * x.pow(2) / y + 0.5 * (-np.pi / y).log()

        @property
        def _mean_carrier_measure(self):
            return 0

    return NaturalNormal


def test_exponential_family_entropy_and_kl_are_torchs_and_the_normal_s():
    torch = torch_or_skip()
    a, b, c, d = RNG.standard_normal(3), _u(3), RNG.standard_normal(3), _u(3)
    g_leaves = [gt.tensor(v, dtype=gt.float64, requires_grad=True) for v in (a, b, c, d)]
    t_leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a, b, c, d)]
    G, T = _natural_normal(D.ExponentialFamily), _natural_normal(torch.distributions.ExponentialFamily)
    gp, gq = G(*g_leaves[:2]), G(*g_leaves[2:])
    tp, tq = T(*t_leaves[:2]), T(*t_leaves[2:])
    g_out = [gp.entropy(), D.kl_divergence(gp, gq)]
    t_out = [tp.entropy(), torch.distributions.kl_divergence(tp, tq)]
    normal = [D.Normal(gt.tensor(a), gt.tensor(b)).entropy(),
            D.kl_divergence(D.Normal(gt.tensor(a), gt.tensor(b)), D.Normal(gt.tensor(c), gt.tensor(d)))]
    for g, t, w in zip(g_out, t_out, normal):
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(g.detach().numpy(), w.numpy(), rtol=1e-10)
    (g_out[0].sum() + g_out[1].sum()).backward()
    # as torch's, p's parameters are detached: only q's receive gradients
    t_grads = torch.autograd.grad(t_out[0].sum() + t_out[1].sum(), t_leaves, allow_unused=True)
    assert t_grads[0] is None and t_grads[2] is not None
    for g_p, t_g in zip(g_leaves, t_grads):
        want = np.zeros(g_p.shape) if t_g is None else t_g.numpy()
        got = np.zeros(g_p.shape) if g_p.grad is None else g_p.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    with gt.no_grad():  # the Bregman terms take their own gradients even so
        np.testing.assert_allclose(gp.entropy().numpy(), normal[0].numpy(), rtol=1e-10)


@pytest.mark.first_pass
def test_exponential_family_cross_family_kl_is_not_implemented():
    G = _natural_normal(D.ExponentialFamily)

    class Other(G):
        pass

    one = gt.ones(2, dtype=gt.float64)
    with pytest.raises(NotImplementedError, match="different exponential families"):
        D.kl_divergence(G(one, one), Other(one, one))
    assert isinstance(D.ContinuousBernoulli(0.3), D.ExponentialFamily)


def test_continuous_bernoulli_log_normalizer_is_torchs():
    torch = torch_or_skip()
    x = np.array([-3.0, -0.2, -0.0005, 0.0005, 0.4, 2.0])
    g = D.ContinuousBernoulli(0.3)._log_normalizer(gt.tensor(x))
    t = torch.distributions.ContinuousBernoulli(0.3)._log_normalizer(torch.tensor(x))
    np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-12)


# ---- transforms made of transforms ---------------------------------------------------------------
def _joint(M):
    return {
        "independent": M.IndependentTransform(M.ExpTransform(), 1),
        "cat_batch": M.CatTransform([M.ExpTransform(), M.AffineTransform(1.0, 2.0), M.SigmoidTransform()], dim=1,
                                    lengths=[2, 2, 1]),
        "cat_event": M.CatTransform([M.ExpTransform(), M.IndependentTransform(M.AffineTransform(0.0, 2.0), 1)],
                                    dim=1, lengths=[3, 2]),
        "cat_rows": M.CatTransform([M.ExpTransform(), M.IndependentTransform(M.AffineTransform(0.0, 2.0), 1)]),
        "stack": M.StackTransform([M.ExpTransform(), M.TanhTransform()], dim=0),
        "stack_neg": M.StackTransform([M.ExpTransform(), M.AffineTransform(0.0, 3.0)], dim=-2),
        "cdf": M.CumulativeDistributionTransform(M.Normal(0.0, 1.0)),
    }


@pytest.mark.parametrize("case", list(_joint(D)))
def test_joint_transforms_are_torchs(case):
    torch = torch_or_skip()
    tt = torch.distributions.transforms
    T = type("T", (), {**{k: getattr(tt, k) for k in dir(tt) if k.endswith("Transform")},
                       "Normal": torch.distributions.Normal})
    g_t, t_t = _joint(D)[case], _joint(T)[case]
    x = RNG.standard_normal((2, 5))
    g_x = gt.tensor(x, dtype=gt.float64, requires_grad=True)
    t_x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    g_y, t_y = g_t(g_x), t_t(t_x)
    np.testing.assert_allclose(g_y.detach().numpy(), t_y.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(g_t.inv(g_y).detach().numpy(), t_t.inv(t_y).detach().numpy(), rtol=1e-10)
    g_j, t_j = g_t.log_abs_det_jacobian(g_x, g_y), t_t.log_abs_det_jacobian(t_x, t_y)
    np.testing.assert_allclose(g_j.detach().numpy(), t_j.detach().numpy(), rtol=1e-12)
    assert (g_t.domain.event_dim, g_t.codomain.event_dim, g_t.bijective) == \
        (t_t.domain.event_dim, t_t.codomain.event_dim, t_t.bijective)
    if case not in ("cat_event", "cat_rows"):  # torch's cat constraint cannot join mixed event dims either
        np.testing.assert_array_equal(g_t.codomain.check(g_y).numpy(), t_t.codomain.check(t_y).numpy())
    (g_y.sum() + g_j.sum()).backward()
    (t_grad,) = torch.autograd.grad(t_y.sum() + t_j.sum(), t_x)
    np.testing.assert_allclose(g_x.grad.numpy(), t_grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.first_pass
def test_joint_transform_errors_and_names():
    with pytest.raises(AssertionError, match="must equal length 5"):
        D.CatTransform([D.ExpTransform()], dim=1, lengths=[5])(gt.ones(2, 3))
    with pytest.raises(AssertionError, match="must equal len\\(transforms\\) 2"):
        D.StackTransform([D.ExpTransform()] * 2)(gt.ones(3, 2))
    with pytest.raises(AssertionError, match="lengths \\(1\\) must match transforms \\(2\\)"):
        D.CatTransform([D.ExpTransform()] * 2, lengths=[3])
    with pytest.raises(AssertionError, match="Transform instances"):
        D.StackTransform([D.ExpTransform(), 3])
    with pytest.raises(ValueError, match="Too few dimensions"):
        D.IndependentTransform(D.ExpTransform(), 2)(gt.ones(3))
    assert D.transforms.StickBreakingTransform is D.StickBreakingTransform
    assert repr(D.IndependentTransform(D.ExpTransform(), 1)) == "IndependentTransform(ExpTransform(), 1)"
    t = D.IndependentTransform(D.ExpTransform(), 1, cache_size=1)
    x = gt.ones(2)
    assert t.inv(t(x)) is x


# ---- LogisticNormal and GeneralizedPareto -------------------------------------------------------
def test_logistic_normal_is_torchs():
    torch = torch_or_skip()
    loc, scale = RNG.standard_normal((2, 3)), _u(3)
    y = np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    outs = []
    for lib, M in ((gt, D), (torch, torch.distributions)):
        ps = [_lib_tensor(lib, loc), _lib_tensor(lib, scale)]
        d = M.LogisticNormal(*ps)
        assert tuple(d.batch_shape) == (2,) and tuple(d.event_shape) == (4,)
        outs.append((d.log_prob(gt.tensor(y) if lib is gt else torch.tensor(y)), ps))
    (g, g_ps), (t, t_ps) = outs
    np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-10)
    g.sum().backward()
    for g_p, t_g in zip(g_ps, torch.autograd.grad(t.sum(), t_ps)):
        np.testing.assert_allclose(g_p.grad.numpy(), t_g.numpy(), rtol=1e-10, atol=1e-12)
    gt.manual_seed(0)
    d = D.LogisticNormal(gt.tensor(loc), gt.tensor(scale))
    s = d.sample((3,))
    assert tuple(s.shape) == (3, 2, 4) and bool(D.constraints.simplex.check(s).all())
    assert tuple(D.LogisticNormal(0.0, 1.0).event_shape) == (2,)


GP = {"loc": RNG.standard_normal(4), "scale": _u(4), "concentration": np.array([-0.3, 0.0, 0.2, 0.7])}


@pytest.mark.parametrize("q", ["log_prob", "cdf", "log_survival_function", "icdf", "mean", "variance", "mode",
                               "entropy"])
def test_generalized_pareto_is_torchs(q):
    torch = torch_or_skip()
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch's log_prob compares with a default-dtype zero
    try:
        outs = []
        x = np.array([[0.1, 0.5, 1.0, 2.0]]) + GP["loc"] if q != "icdf" else np.array([[0.05, 0.3, 0.6, 0.95]])
        for lib, M in ((gt, D), (torch, torch.distributions)):
            ps = [_lib_tensor(lib, GP[k]) for k in ("loc", "scale", "concentration")]
            d = M.GeneralizedPareto(*ps)
            if q in ("log_prob", "cdf", "log_survival_function", "icdf"):
                out = getattr(d, q)(gt.tensor(x) if lib is gt else torch.tensor(x))
            else:
                out = d.entropy() if q == "entropy" else getattr(d, q)
            outs.append((out, ps))
        (g, g_ps), (t, t_ps) = outs
        t_np = t.detach().numpy()
        np.testing.assert_allclose(g.detach().numpy(), t_np, rtol=1e-10, atol=1e-12)
        finite = np.isfinite(t_np)
        gt.where(gt.tensor(finite), g, 0.0).sum().backward()
        t_grads = torch.autograd.grad(torch.where(torch.tensor(finite), t, 0.0).sum(), t_ps, allow_unused=True)
    finally:
        torch.set_default_dtype(default)
    for g_p, t_g in zip(g_ps, t_grads):
        want = np.zeros(g_p.shape) if t_g is None else t_g.numpy()
        got = np.zeros(g_p.shape) if g_p.grad is None else g_p.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_generalized_pareto_samples_and_support():
    gt.manual_seed(0)
    d = D.GeneralizedPareto(gt.tensor([0.0, 1.0]), gt.tensor([1.0, 2.0]), gt.tensor([-0.25, 0.1]))
    s = d.sample((6000,))
    assert tuple(s.shape) == (6000, 2) and bool(d.support.check(s).all())
    np.testing.assert_allclose(s.numpy().mean(0), d.mean.numpy(), rtol=0.05)
    assert float(d.support.upper_bound[0]) == 4.0
    with pytest.raises(ValueError, match="scale"):
        D.GeneralizedPareto(0.0, gt.tensor([-1.0]), 0.1)


# ---- biject_to / transform_to -------------------------------------------------------------------------
def _constraint_cases(C):
    return {"real": C.real, "positive": C.positive, "nonnegative": C.nonnegative, "greater_than": C.greater_than(2.0),
            "less_than": C.less_than(1.0), "unit_interval": C.unit_interval, "interval": C.interval(1.0, 3.0),
            "half_open": C.half_open_interval(0.0, 2.0), "simplex": C.simplex, "real_vector": C.real_vector,
            "independent_positive": C.independent(C.positive, 1), "lower_cholesky": C.lower_cholesky}


@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
@pytest.mark.parametrize("case", list(_constraint_cases(D.constraints)))
def test_biject_to_and_transform_to_are_torchs(registry, case):
    torch = torch_or_skip()
    g_c, t_c = _constraint_cases(D.constraints)[case], _constraint_cases(torch.distributions.constraints)[case]
    g_reg, t_reg = getattr(D, registry), getattr(torch.distributions, registry)
    try:
        t_t = t_reg(t_c)
    except NotImplementedError:
        with pytest.raises(NotImplementedError, match="Cannot transform"):
            g_reg(g_c)
        return
    g_t = g_reg(g_c)
    assert repr(g_t) == repr(t_t)
    x = RNG.standard_normal((2, 3, 3) if case == "lower_cholesky" else (2, 3))
    g_y, t_y = g_t(gt.tensor(x)), t_t(torch.tensor(x))
    np.testing.assert_allclose(g_y.numpy(), t_y.numpy(), rtol=1e-12)
    assert bool(g_c.check(g_y).all())
    if t_t.bijective:
        np.testing.assert_allclose(g_t.inv(g_y).numpy(), x, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(g_t.log_abs_det_jacobian(gt.tensor(x), g_y).numpy(),
                                   t_t.log_abs_det_jacobian(torch.tensor(x), t_y).numpy(), rtol=1e-12)


@pytest.mark.first_pass
def test_constraint_registry_registration_and_errors():
    with pytest.raises(NotImplementedError, match="Cannot transform _Boolean constraints"):
        D.biject_to(D.constraints.boolean)
    with pytest.raises(TypeError, match="Constraint subclass or instance"):
        D.biject_to.register(int, lambda c: D.ExpTransform())
    reg = D.constraint_registry.ConstraintRegistry()

    @reg.register(D.constraints.positive)
    def _(constraint):
        return D.ExpTransform()

    assert isinstance(reg(D.constraints.greater_than(3.0)), D.ExpTransform)
    cat_c = D.transforms_joint.cat_constraint([D.constraints.positive, D.constraints.unit_interval], dim=0)
    t = D.biject_to(cat_c)
    y = t(gt.tensor([-1.0, 2.0]))
    assert isinstance(t, D.CatTransform) and bool(cat_c.check(y).all())


@pytest.mark.parametrize("pair", ["cb_pareto", "exponential", "gamma", "gumbel", "laplace", "normal", "pareto"])
def test_continuous_bernoulli_infinite_kl_pairs_are_torchs(pair):
    torch = torch_or_skip()

    def build(M, t):
        cb = M.ContinuousBernoulli(t([0.2, 0.7]))
        return {"cb_pareto": (cb, M.Pareto(t([1.0, 2.0]), t([2.0, 3.0]))),
                "exponential": (M.Exponential(t([1.0, 2.0])), cb),
                "gamma": (M.Gamma(t([1.0, 2.0]), 1.0), cb), "gumbel": (M.Gumbel(t([0.0, 1.0]), 1.0), cb),
                "laplace": (M.Laplace(t([0.0, 1.0]), 1.0), cb), "normal": (M.Normal(t([0.0, 1.0]), 1.0), cb),
                "pareto": (M.Pareto(t([1.0, 2.0]), 2.0), cb)}[pair]

    g = D.kl_divergence(*build(D, lambda v: gt.tensor(v, dtype=gt.float64)))
    t = torch.distributions.kl_divergence(*build(torch.distributions, lambda v: torch.tensor(v, dtype=torch.float64)))
    assert tuple(g.shape) == tuple(t.shape) and g.dtype == gt.float64
    assert np.isposinf(g.numpy()).all() and np.isposinf(t.numpy()).all()
