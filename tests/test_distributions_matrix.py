"""Distributions over matrices beside torch.distributions (float64): Wishart (its three
parametrizations) and LKJCholesky: log_prob, entropy, moments and their parameter gradients; the
exponential-family entropy and KL of Wishart; draws' shapes, supports and moments (draws are gt's);
errors under validate_args. The corr_cholesky, square, positive_semidefinite and positive_definite
constraints, CorrCholeskyTransform, PositiveDefiniteTransform and their biject_to/transform_to
registrations, torch.distributions.utils' tril_matrix_to_vec/vec_to_tril_matrix."""

import warnings

import numpy as np
import pytest

import gt
import gt.distributions as D
from gt.sharding.mesh import use_mesh
from helpers import check_grad, torch_or_skip

RNG = np.random.default_rng(0)


def _spd(*batch, p=3):
    A = RNG.standard_normal(batch + (p, p))
    return A @ np.swapaxes(A, -1, -2) + p * np.eye(p)


def _lib(lib):
    torch = torch_or_skip()
    if lib == "gt":
        return gt, D, lambda v, grad=False: gt.tensor(v, dtype=gt.float64, requires_grad=grad)
    return torch, torch.distributions, lambda v, grad=False: torch.tensor(v, dtype=torch.float64, requires_grad=grad)


def _grads(lib, out, leaves, up):
    """Gradients of sum(out * up) (non-finite entries left out) for each leaf, zeros where none."""
    m, _, t = _lib(lib)
    finite = np.isfinite(out.detach().numpy())
    kept = m.where(t(finite) > 0, out, 0.0) * t(np.where(finite, up, 0.0))
    got = m.autograd.grad(kept.sum(), leaves, allow_unused=True) if out.requires_grad else [None] * len(leaves)
    return [np.zeros(leaf.shape) if g is None else g.numpy() for leaf, g in zip(leaves, got)]


def _wishart(lib, kind, df, mat):
    m, M, t = _lib(lib)
    leaves = [t(df, True), t(mat, True)]
    given = m.linalg.cholesky(leaves[1]) if kind == "scale_tril" else leaves[1]
    return M.Wishart(leaves[0], **{kind: given}), leaves


WISHART = {"single": (np.array(4.5), _spd()), "df_batch": (np.array([3.5, 6.0]), _spd(2)),
           "broadcast": (np.array([[3.0], [7.0]]), _spd(3)), "near_p_minus_1": (np.array(2.1), _spd(2, 1))}
W_QUANTITIES = ["log_prob", "entropy", "mean", "mode", "variance", "covariance_matrix", "precision_matrix",
                "scale_tril"]


@pytest.mark.filterwarnings("ignore:Low df values detected")
@pytest.mark.parametrize("kind", ["covariance_matrix", "precision_matrix", "scale_tril"])
@pytest.mark.parametrize("case", list(WISHART))
def test_wishart_values_and_gradients_are_torchs(kind, case):
    df, mat = WISHART[case]
    value = _spd(4, *np.broadcast_shapes(mat.shape[:-2], df.shape))
    for q in W_QUANTITIES:
        outs = []
        for lib in ("gt", "torch"):
            d, leaves = _wishart(lib, kind, df, mat)
            out = d.log_prob(_lib(lib)[2](value)) if q == "log_prob" else d.entropy() if q == "entropy" \
                else getattr(d, q)
            up = np.random.default_rng(1).standard_normal(tuple(out.shape))
            outs.append((out.detach().numpy(), _grads(lib, out, leaves, up), tuple(d.batch_shape)))
        (g, g_grads, g_batch), (t, t_grads, t_batch) = outs
        assert g.shape == t.shape and g_batch == t_batch, (case, q)
        np.testing.assert_allclose(g, t, rtol=1e-10, atol=1e-12, err_msg=f"{kind} {case} {q}")
        # entropy's df gradient holds trigamma, torch's about 3e-10 relative off scipy's (gt's is scipy's)
        rtol = 1e-8 if q == "entropy" else 1e-10
        for a, b in zip(g_grads, t_grads):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-10, err_msg=f"{kind} {case} {q} gradient")


def test_wishart_mode_is_nan_where_df_is_at_most_p_plus_1():
    W = D.Wishart(gt.tensor([3.5, 4.0, 4.5], dtype=gt.float64), covariance_matrix=gt.eye(3, dtype=gt.float64))
    mode = W.mode.numpy()
    assert np.isnan(mode[:2]).all() and np.allclose(mode[2], 0.5 * np.eye(3))


def test_wishart_exponential_family_entropy_and_kl_are_torchs():
    torch = torch_or_skip()
    for lib in ("gt", "torch"):
        _, M, t = _lib(lib)
        p = M.Wishart(t(4.5), covariance_matrix=t(_spd()))
        ef = (D.ExponentialFamily if lib == "gt" else torch.distributions.ExponentialFamily).entropy(p)
        np.testing.assert_allclose(ef.detach().numpy(), p.entropy().detach().numpy(), rtol=1e-10)
    dfs, mats = (4.5, 6.0), (_spd(), _spd())
    got = []
    for lib in ("gt", "torch"):
        _, M, t = _lib(lib)
        leaves = [t(dfs[0], True), t(mats[0], True), t(dfs[1], True), t(mats[1], True)]
        p, q = (M.Wishart(leaves[i], covariance_matrix=leaves[i + 1]) for i in (0, 2))
        kl = M.kl_divergence(p, q)
        got.append((kl.detach().numpy(), _grads(lib, kl, leaves, np.ones(()))))
    np.testing.assert_allclose(got[0][0], got[1][0], rtol=1e-10)
    for a, b in zip(got[0][1], got[1][1]):  # p's parameters detached, as torch's
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_wishart_batched_kl_is_each_element_s():
    # torch sums every term over len(event_shape) = 2 dims, which for the batch-shaped df term
    # sums over the batch: its batched Wishart KL is wrong (negative here); gt's is per element
    torch = torch_or_skip()
    df_p, df_q, cov_p, cov_q = np.array([3.5, 6.0]), np.array([5.0, 4.0]), _spd(2), _spd(2)
    g = D.kl_divergence(D.Wishart(gt.tensor(df_p), covariance_matrix=gt.tensor(cov_p)),
                        D.Wishart(gt.tensor(df_q), covariance_matrix=gt.tensor(cov_q))).numpy()
    TW = torch.distributions.Wishart
    want = [torch.distributions.kl_divergence(TW(torch.tensor(df_p[i]), covariance_matrix=torch.tensor(cov_p[i])),
                                              TW(torch.tensor(df_q[i]), covariance_matrix=torch.tensor(cov_q[i])))
            for i in range(2)]
    np.testing.assert_allclose(g, np.array([w.item() for w in want]), rtol=1e-10)
    assert (g > 0).all()


@pytest.mark.parametrize("sample_shape", [(), (5,), (2, 3)])
def test_wishart_draws_have_torchs_shape_and_are_positive_definite(sample_shape):
    torch = torch_or_skip()
    for df, mat in [(4.0, _spd()), (np.array([3.0, 5.0]), _spd(1))]:
        g = D.Wishart(gt.tensor(df), covariance_matrix=gt.tensor(mat))
        t = torch.distributions.Wishart(torch.tensor(df), covariance_matrix=torch.tensor(mat))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's "Singular sample detected." on every draw
            want = tuple(t.rsample(sample_shape).shape)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # gt warns only for a singular draw
            x = g.rsample(sample_shape)
        assert tuple(x.shape) == want and x.dtype == gt.float64
        assert bool(D.constraints.positive_definite.check(x).all())


def test_wishart_draws_have_its_mean_and_variance():
    gt.manual_seed(0)
    S = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 0.5]])
    for kind, mat in (("covariance_matrix", S), ("precision_matrix", np.linalg.inv(S)),
                      ("scale_tril", np.linalg.cholesky(S))):
        W = D.Wishart(gt.tensor([4.0, 7.5], dtype=gt.float64), **{kind: gt.tensor(mat)})
        x = W.sample((20000,)).numpy()
        mean, var = W.mean.numpy(), W.variance.numpy()
        assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / len(x))), kind
        np.testing.assert_allclose(x.var(0), var, rtol=0.1)


def test_wishart_rsample_gradients():
    def draw(cov):  # Sigma enters pathwise: a finite difference under one seed
        gt.manual_seed(3)
        return D.Wishart(gt.tensor([4.0, 6.0], dtype=gt.float64), covariance_matrix=(cov + cov.mT) / 2,
                         validate_args=False).rsample((3,))

    check_grad(draw, _spd(), rtol=1e-6)
    # df moves the Chi2 draws implicitly: the mean of the draws' gradient is the mean's gradient
    gt.manual_seed(0)
    S = gt.tensor(_spd())
    df = gt.tensor([4.0, 6.0], dtype=gt.float64, requires_grad=True)
    up = gt.tensor(RNG.standard_normal((3, 3)))
    (D.Wishart(df, covariance_matrix=S).rsample((20000,)) * up).mean(0).sum().backward()
    np.testing.assert_allclose(df.grad.numpy(), np.full(2, (S * up).sum().item()), rtol=0.05)


def test_wishart_singular_draws_are_drawn_again(monkeypatch):
    W = D.Wishart(gt.tensor([3.0, 4.0], dtype=gt.float64), covariance_matrix=gt.eye(2, dtype=gt.float64))
    singular, good = gt.zeros(2, 2, 2, dtype=gt.float64), gt.eye(2, dtype=gt.float64).expand(2, 2, 2) * 2
    calls = []

    def bartlett(sample_shape):
        calls.append(sample_shape)
        return singular if len(calls) < 3 else good

    monkeypatch.setattr(W, "_bartlett_sampling", bartlett)
    with pytest.warns(UserWarning, match="Singular sample detected."):
        x = W.rsample()
    assert len(calls) == 3 and np.array_equal(x.numpy(), good.numpy())
    calls.clear()
    with pytest.warns(UserWarning, match="Singular sample detected."):
        x = W.rsample(max_try_correction=1)  # one more try only: the singular draw stays
    assert len(calls) == 2 and np.array_equal(x.numpy(), singular.numpy())


def _torch_message(message):
    return message.replace("torch.Size([", "(").replace("])", ")").replace("torch.float64", "gt.float64")


W_ERRORS = {
    "none": (AssertionError, lambda M, t: M.Wishart(t(3.0))),
    "two": (AssertionError, lambda M, t: M.Wishart(t(3.0), covariance_matrix=t(np.eye(2)), scale_tril=t(np.eye(2)))),
    "one_dim": (ValueError, lambda M, t: M.Wishart(t(3.0), covariance_matrix=t(np.ones(2)))),
    "low_df": (ValueError, lambda M, t: M.Wishart(0.5, covariance_matrix=t(np.eye(2)))),
    "low_df_tensor": (ValueError, lambda M, t: M.Wishart(t([0.5, 3.0]), covariance_matrix=t(np.eye(2)))),
    "cov": (ValueError, lambda M, t: M.Wishart(t(3.0), covariance_matrix=t([[1.0, 2.0], [2.0, 1.0]]))),
    "precision": (ValueError, lambda M, t: M.Wishart(t(3.0), precision_matrix=t([[1.0, 2.0], [0.0, 1.0]]))),
    "scale_tril": (ValueError, lambda M, t: M.Wishart(t(3.0), scale_tril=t([[1.0, 2.0], [0.0, 1.0]]))),
    "df_nan": (ValueError, lambda M, t: M.Wishart(t(float("nan")), covariance_matrix=t(np.eye(2)))),
    "value": (ValueError, lambda M, t: M.Wishart(t(3.0), covariance_matrix=t(np.eye(2))).log_prob(t(-np.eye(2)))),
    "lkj_dim": (ValueError, lambda M, t: M.LKJCholesky(1, 1.0)),
    "lkj_value": (ValueError, lambda M, t: M.LKJCholesky(2, 1.0).log_prob(t([[1.0, 0.0], [0.5, 0.5]]))),
    "lkj_upper": (ValueError, lambda M, t: M.LKJCholesky(2, 1.0).log_prob(t([[1.0, 0.1], [0.6, 0.8]]))),
}


@pytest.mark.parametrize("case", list(W_ERRORS))
def test_errors_are_torchs(case):
    exc, make = W_ERRORS[case]
    messages = []
    for lib in ("torch", "gt"):
        _, M, t = _lib(lib)
        with use_mesh(1), pytest.raises(exc) as info:    # the messages print one device's tensors
            make(M, t)
        messages.append(str(info.value))
    assert messages[1] == _torch_message(messages[0])


def test_lkj_concentration_error_names_the_lkj_distribution():
    # torch's names the Dirichlet inside its Beta draws (whose parameters differ from gt's)
    with pytest.raises(ValueError, match=r"Expected parameter concentration \(Tensor of shape \(2,\)\) of distribution "
                                         r"LKJCholesky\(concentration: \(2,\)\) to satisfy the constraint "
                                         r"GreaterThan\(lower_bound=0.0\)"):
        D.LKJCholesky(3, gt.tensor([1.0, -1.0]))
    assert tuple(D.LKJCholesky(3, gt.tensor([1.0, -1.0]), validate_args=False).batch_shape) == (2,)


def test_wishart_warns_for_low_df_and_expands():
    with pytest.warns(UserWarning, match="Low df values detected"):
        D.Wishart(gt.tensor(2.5), covariance_matrix=gt.eye(3))
    W = D.Wishart(gt.tensor([4.0, 5.0], dtype=gt.float64), precision_matrix=gt.tensor(_spd()))
    big = W.expand((3, 2))
    v = gt.tensor(_spd())
    assert tuple(big.batch_shape) == (3, 2) and tuple(big.event_shape) == (3, 3)
    np.testing.assert_allclose(big.log_prob(v).numpy(), np.broadcast_to(W.log_prob(v).numpy(), (3, 2)), rtol=1e-12)
    np.testing.assert_allclose(big.precision_matrix.numpy(), np.broadcast_to(W.precision_matrix.numpy(),
                                                                             (3, 2, 3, 3)), rtol=1e-12)
    assert tuple(big.rsample((4,)).shape) == (4, 3, 2, 3, 3)
