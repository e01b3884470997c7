"""LKJCholesky beside torch.distributions (float64): log_prob and its gradients, draws' shapes
(torch's), support and marginals (gt's draws: the onion method with the paper's Beta parameters);
the corr_cholesky, square, symmetric, positive_semidefinite and positive_definite constraints;
CorrCholeskyTransform and PositiveDefiniteTransform (forward, inverse, log |det J| and their
gradients); biject_to/transform_to for the new constraints; tril_matrix_to_vec/vec_to_tril_matrix."""

import numpy as np
import pytest

import gt
import gt.distributions as D
from helpers import torch_or_skip

RNG = np.random.default_rng(0)


def _lib(lib):
    torch = torch_or_skip()
    if lib == "gt":
        return gt, D, lambda v, grad=False: gt.tensor(v, dtype=gt.float64, requires_grad=grad)
    return torch, torch.distributions, lambda v, grad=False: torch.tensor(v, dtype=torch.float64, requires_grad=grad)


def _grad(lib, out, leaves):
    m = _lib(lib)[0]
    got = m.autograd.grad(out, leaves, allow_unused=True)
    return [np.zeros(leaf.shape) if g is None else g.numpy() for leaf, g in zip(leaves, got)]


def _corr_cholesky(batch, d):
    """Cholesky factors of random correlation matrices."""
    A = RNG.standard_normal(batch + (d, d + 2))
    L = np.linalg.cholesky(A @ np.swapaxes(A, -1, -2))
    return L / np.linalg.norm(L, axis=-1, keepdims=True)


LKJ = {"dim2": (2, 0.7), "dim3_batch": (3, np.array([0.5, 1.0, 3.0])), "dim5_grid": (5, np.array([[0.3], [2.5]]))}


@pytest.mark.parametrize("case", list(LKJ))
def test_lkj_log_prob_and_gradients_are_torchs(case):
    dim, conc = LKJ[case]
    value = _corr_cholesky((4,) + np.shape(conc), dim)
    got = []
    for lib in ("gt", "torch"):
        _, M, t = _lib(lib)
        c, v = t(conc, True), t(value, True)
        d = M.LKJCholesky(dim, c)
        lp = d.log_prob(v)
        up = t(np.random.default_rng(1).standard_normal(tuple(lp.shape)))
        got.append((lp.detach().numpy(), _grad(lib, (lp * up).sum(), [c, v]), tuple(d.batch_shape),
                    tuple(d.event_shape)))
    (g, g_grads, *g_shapes), (t, t_grads, *t_shapes) = got
    assert g.shape == t.shape and g_shapes == t_shapes
    np.testing.assert_allclose(g, t, rtol=1e-10, atol=1e-12)
    for a, b in zip(g_grads, t_grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("sample_shape", [(), (4,), (2, 3)])
def test_lkj_draws_have_torchs_shape_and_are_correlation_factors(sample_shape):
    torch = torch_or_skip()
    for dim, conc in LKJ.values():
        g = D.LKJCholesky(dim, gt.tensor(conc, dtype=gt.float64)).sample(sample_shape)
        t = torch.distributions.LKJCholesky(dim, torch.tensor(conc, dtype=torch.float64)).sample(sample_shape)
        assert tuple(g.shape) == tuple(t.shape) and g.dtype == gt.float64
        assert bool(D.constraints.corr_cholesky.check(g).all())
    assert D.LKJCholesky(3, 0.5).sample().dtype == gt.float32 and not D.LKJCholesky(3).has_rsample


@pytest.mark.parametrize("dim", [3, 5])
def test_lkj_correlations_have_the_lkj_marginal_at_every_position(dim):
    # each correlation of an LKJ(eta) matrix is 2 Beta(b, b) - 1, b = eta - 1 + dim / 2: variance
    # 1 / (2 eta + dim - 1) at every position (torch's draws miss this below their second row)
    gt.manual_seed(0)
    eta = np.array([0.5, 2.0])
    L = D.LKJCholesky(dim, gt.tensor(eta, dtype=gt.float64)).sample((20000,)).numpy()
    C = L @ np.swapaxes(L, -1, -2)
    rows, cols = np.tril_indices(dim, -1)
    var = C.var(0)[:, rows, cols]
    np.testing.assert_allclose(var, np.broadcast_to(1 / (2 * eta + dim - 1), (len(rows), 2)).T, rtol=0.05)
    np.testing.assert_allclose(np.diagonal(C, axis1=-2, axis2=-1), 1.0, atol=1e-12)
    assert np.abs(C.mean(0)[:, rows, cols]).max() < 0.02


def test_lkj_expands():
    d = D.LKJCholesky(3, gt.tensor([0.5, 2.0], dtype=gt.float64))
    big = d.expand((4, 2))
    v = gt.tensor(_corr_cholesky((), 3))
    assert tuple(big.batch_shape) == (4, 2) and tuple(big.sample((5,)).shape) == (5, 4, 2, 3, 3)
    np.testing.assert_allclose(big.log_prob(v).numpy(), np.broadcast_to(d.log_prob(v).numpy(), (4, 2)), rtol=1e-12)


# ---- constraints -------------------------------------------------------------------------------
MATRICES = {"not_square": np.ones((2, 2, 3)), "semidefinite": np.array([[1.0, 1.0], [1.0, 1.0]]),
            "identity": np.eye(3), "not_symmetric": np.array([[1.0, 2.0], [0.0, 1.0]]), "negative": -np.eye(2),
            "batch": np.stack([np.eye(2), -np.eye(2), [[2.0, 0.0], [0.6, 0.8]]]),
            "corr_factor": _corr_cholesky((2,), 4), "nan": np.full((2, 2), np.nan)}


@pytest.mark.parametrize("name", ["corr_cholesky", "square", "symmetric", "positive_semidefinite",
                                  "positive_definite"])
def test_matrix_constraints_are_torchs(name):
    torch = torch_or_skip()
    g_c, t_c = getattr(D.constraints, name), getattr(torch.distributions.constraints, name)
    assert repr(g_c) == repr(t_c) and g_c.event_dim == t_c.event_dim == 2 and not g_c.is_discrete
    for case, m in MATRICES.items():
        got = g_c.check(gt.tensor(m)).numpy()
        want = t_c.check(torch.tensor(m)).numpy()
        if case == "batch" and name.startswith("positive_"):
            # torch answers the symmetry test alone once one matrix is not symmetric, passing -I
            assert want.tolist() == [True, True, False]
            want = np.array([True, False, False])
        assert got.shape == want.shape and np.array_equal(got, want), (name, case, got, want)


@pytest.mark.parametrize("name", ["square", "symmetric", "positive_semidefinite", "positive_definite"])
def test_matrix_constraints_of_empty_batches_and_matrices_are_torchs(name):
    """An empty batch of square matrices answers an empty check (it raised a reshape error); an
    empty batch of non-square ones raises in the symmetric family, as torch's (its square check
    passes vacuously, then the matrix meets its transpose)."""
    torch = torch_or_skip()
    g_c, t_c = getattr(D.constraints, name), getattr(torch.distributions.constraints, name)
    for shape in [(0, 3, 3), (2, 0, 3, 3), (3, 0, 0), (0, 0), (2, 0, 3), (2, 3)]:
        got, want = g_c.check(gt.zeros(shape)).numpy(), t_c.check(torch.zeros(shape)).numpy()
        assert got.dtype == np.bool_ and got.shape == want.shape and np.array_equal(got, want), (shape, got, want)
    if name != "square":
        with pytest.raises(RuntimeError):
            t_c.check(torch.zeros(0, 2, 3))
        with pytest.raises(ValueError, match="cannot be broadcast"):
            g_c.check(gt.zeros(0, 2, 3))


# ---- transforms --------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 3, 6, 10])
def test_corr_cholesky_transform_is_torchs(n):
    x = RNG.standard_normal((2, 3, n)) * 1.5
    d = round((0.25 + 2 * n) ** 0.5 + 0.5)
    up = RNG.standard_normal((2, 3, d, d))
    got = []
    for lib in ("gt", "torch"):
        _, M, t = _lib(lib)
        tr = M.transforms.CorrCholeskyTransform()
        xl = t(x, True)
        y = tr(xl)
        ladj = tr.log_abs_det_jacobian(xl, y)
        back = tr.inv(y)
        total = (y * t(up)).sum() + ladj.sum() + (back * 0.3).sum()
        got.append([y.detach().numpy(), ladj.detach().numpy(), back.detach().numpy()] + _grad(lib, total, [xl]))
    for a, b in zip(*got):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[0][2], x, rtol=1e-9)
    assert bool(D.constraints.corr_cholesky.check(gt.tensor(got[0][0])).all())


def test_corr_cholesky_log_det_is_the_finite_difference_jacobian_s():
    x = RNG.standard_normal(6)
    tr = D.transforms.CorrCholeskyTransform()
    rows, cols = np.tril_indices(4, -1)

    def lower(v):
        return tr(gt.tensor(v)).numpy()[rows, cols]

    h = 1e-6
    J = np.stack([(lower(x + h * e) - lower(x - h * e)) / (2 * h) for e in np.eye(6)], axis=1)
    want = np.log(abs(np.linalg.det(J)))
    got = tr.log_abs_det_jacobian(gt.tensor(x), tr(gt.tensor(x))).item()
    np.testing.assert_allclose(got, want, rtol=1e-7)


def test_corr_cholesky_transform_shapes_and_errors():
    torch = torch_or_skip()
    for lib in ("gt", "torch"):
        tr = _lib(lib)[1].transforms.CorrCholeskyTransform()
        assert tuple(tr.forward_shape((2, 6))) == (2, 4, 4) and tuple(tr.inverse_shape((2, 4, 4))) == (2, 6)
        assert tr.bijective and tr.domain.event_dim == 1 and tr.codomain.event_dim == 2
        assert repr(tr) == "CorrCholeskyTransform()" and tr != type(tr)()  # equal only to itself, as torch's
    tr = D.transforms.CorrCholeskyTransform()
    with pytest.raises(ValueError, match="Input is not a flattened lower-diagonal number"):
        tr.forward_shape((4,))
    with pytest.raises(ValueError, match="Input is not square"):
        tr.inverse_shape((3, 4))
    with pytest.raises(ValueError, match="Too few dimensions on input"):
        tr.inverse_shape((3,))
    with pytest.raises(ValueError, match="The size of last dimension is 4 which cannot be expressed"):
        tr(gt.ones(4))  # torch: a RuntimeError from its index write
    with pytest.raises(RuntimeError):
        torch.distributions.transforms.CorrCholeskyTransform()(torch.ones(4))


def test_positive_definite_transform_is_torchs():
    x = RNG.standard_normal((2, 3, 3))
    up = RNG.standard_normal((2, 3, 3))
    got = []
    for lib in ("gt", "torch"):
        _, M, t = _lib(lib)
        tr = M.transforms.PositiveDefiniteTransform()
        xl = t(x, True)
        y = tr(xl)
        back = tr.inv(y)
        got.append([y.detach().numpy(), back.detach().numpy()] + _grad(lib, (y * t(up)).sum() + back.pow(2).sum(),
                                                                       [xl]))
        assert not tr.bijective and tr == M.transforms.PositiveDefiniteTransform()
        assert repr(tr.codomain) == "PositiveDefinite()" and tr.domain.event_dim == 2
        with pytest.raises(NotImplementedError):
            tr.log_abs_det_jacobian(xl, y)
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert bool(D.constraints.positive_definite.check(gt.tensor(got[0][0])).all())
    np.testing.assert_allclose(got[0][1], np.tril(x, -1) + np.eye(3) * np.diagonal(x, axis1=-2, axis2=-1)[..., None, :],
                               rtol=1e-10)


@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
@pytest.mark.parametrize("name", ["corr_cholesky", "positive_definite", "positive_semidefinite"])
def test_biject_to_and_transform_to_of_matrix_constraints_are_torchs(registry, name):
    torch = torch_or_skip()
    g_reg, t_reg = getattr(D, registry), getattr(torch.distributions, registry)
    g_c, t_c = getattr(D.constraints, name), getattr(torch.distributions.constraints, name)
    try:
        t_t = t_reg(t_c)
    except NotImplementedError as e:
        with pytest.raises(NotImplementedError, match=str(e)):
            g_reg(g_c)
        return
    g_t = g_reg(g_c)
    assert type(g_t).__name__ == type(t_t).__name__
    x = RNG.standard_normal((2, 6) if name == "corr_cholesky" else (2, 4, 4))
    g_y = g_t(gt.tensor(x))
    np.testing.assert_allclose(g_y.numpy(), t_t(torch.tensor(x)).numpy(), rtol=1e-12)
    assert bool(g_c.check(g_y).all())


@pytest.mark.parametrize("n, diag", [(6, -1), (10, 0), (3, -2), (1, 0)])
def test_tril_vector_conversions_are_torchs(n, diag):
    torch = torch_or_skip()
    from torch.distributions.utils import tril_matrix_to_vec, vec_to_tril_matrix
    v = RNG.standard_normal((2, n))
    g_m = D.utils.vec_to_tril_matrix(gt.tensor(v, requires_grad=True), diag)
    t_m = vec_to_tril_matrix(torch.tensor(v), diag)
    np.testing.assert_array_equal(g_m.detach().numpy(), t_m.numpy())
    np.testing.assert_array_equal(D.utils.tril_matrix_to_vec(g_m, diag).detach().numpy(),
                                  tril_matrix_to_vec(t_m, diag).numpy())
    g_v = gt.tensor(v, requires_grad=True)
    (D.utils.vec_to_tril_matrix(g_v, diag) * 2).sum().backward()
    np.testing.assert_array_equal(g_v.grad.numpy(), np.full(v.shape, 2.0))


def test_tril_vector_conversion_errors():
    with pytest.raises(ValueError, match=r"diag \(3\) provided is outside \[-3, 2\]."):
        D.utils.tril_matrix_to_vec(gt.eye(3), diag=3)
    for n in (4, 5):  # torch: 5 its ValueError, 4 a RuntimeError from its index write
        with pytest.raises(ValueError, match=f"The size of last dimension is {n} which cannot be expressed"):
            D.utils.vec_to_tril_matrix(gt.ones(n))
