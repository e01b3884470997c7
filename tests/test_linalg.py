"""gt.linalg and torch's top-level linear algebra beside torch: values, dtypes and gradients on
small well-conditioned batched matrices, finite differences for a few, and the errors."""

import math

import numpy as np
import pytest

import gt
from helpers import check_grad, compare_with_torch, randn, torch_or_skip

TOL = {"float64": dict(rtol=1e-10, atol=1e-10), "float32": dict(rtol=2e-5, atol=2e-5)}
DTYPES = ["float64", "float32"]


def general(*shape, seed=0):
    """Square matrices (..., n, n) kept far from singular: random plus n on the diagonal."""
    a = randn(*shape, seed=seed)
    return a + shape[-1] * np.eye(shape[-1])


def spd(*shape, seed=0):
    x = randn(*shape, seed=seed)
    return x @ np.swapaxes(x, -1, -2) + shape[-1] * np.eye(shape[-1])


def symmetric(*shape, seed=0):
    """Symmetric matrices with eigenvalues well apart (1, 3, 5, ...), rotated at random."""
    q, _ = np.linalg.qr(randn(*shape, seed=seed))
    w = 2.0 * np.arange(shape[-1]) + 1.0
    return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)


def both(fn, *arrays, dtype="float64", grad=True):
    """``fn(lib, *tensors)`` with gt and with torch, compared to TOL[dtype]."""
    torch = torch_or_skip()
    return compare_with_torch(lambda *t: fn(gt, *t), lambda *t: fn(torch, *t), *arrays, dtype=dtype, grad=grad,
                              **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_square_functions(dtype):
    a = general(2, 3, 3, seed=1)
    a[1] = -a[1]                                   # a negative determinant: logdet NaN, slogdet sign -1
    both(lambda L, x: (L.linalg.det(x), L.linalg.inv(x), *L.linalg.slogdet(x), L.linalg.matrix_power(x, 3),
                       L.linalg.matrix_power(x, -2)), a, dtype=dtype)
    both(lambda L, x: (L.logdet(x), L.linalg.matrix_power(x, 0)), a, dtype=dtype, grad=False)
    both(lambda L, x: L.logdet(x), a[0], dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_solve(dtype):
    a = general(2, 3, 3, seed=2)
    both(lambda L, x, b: L.linalg.solve(x, b), a, randn(2, 3, 2, seed=3), dtype=dtype)
    both(lambda L, x, b: L.linalg.solve(x, b, left=False), a, randn(2, 2, 3, seed=3), dtype=dtype)
    both(lambda L, x, b: L.linalg.solve(x, b), a, randn(2, 3, seed=4), dtype=dtype)      # (..., n): a vector
    both(lambda L, x, b: L.linalg.solve(x, b), a[0], randn(3, seed=4), dtype=dtype)      # (n,)
    both(lambda L, x, b: L.linalg.solve(x, b), a, randn(3, 2, seed=5), dtype=dtype)      # B's batch broadcast


@pytest.mark.filterwarnings("ignore:torch.cholesky is deprecated")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cholesky(dtype):
    both(lambda L, x: (L.linalg.cholesky(x), L.linalg.cholesky(x, upper=True)), spd(2, 3, 3, seed=6), dtype=dtype)
    both(lambda L, x: L.cholesky(x, True), spd(4, 4, seed=7), dtype=dtype)


@pytest.mark.filterwarnings("ignore:torch.qr is deprecated")
@pytest.mark.parametrize("dtype", DTYPES)
def test_qr(dtype):
    both(lambda L, x: tuple(L.linalg.qr(x)), randn(2, 4, 3, seed=8), dtype=dtype)
    both(lambda L, x: tuple(L.linalg.qr(x)), randn(2, 3, 4, seed=8), dtype=dtype)      # wide
    both(lambda L, x: (*L.linalg.qr(x, mode="complete"), *L.qr(x)), randn(2, 3, 3, seed=8), dtype=dtype)


def test_qr_modes_without_gradient():
    torch = torch_or_skip()
    a = randn(2, 4, 3, seed=9)
    q, r = gt.linalg.qr(gt.tensor(a), mode="complete")
    tq, tr = torch.linalg.qr(torch.tensor(a), mode="complete")
    assert q.shape == tuple(tq.shape) == (2, 4, 4) and r.shape == tuple(tr.shape) == (2, 4, 3)
    np.testing.assert_allclose((q @ r).numpy(), a, atol=1e-12)
    x = gt.tensor(a, requires_grad=True)
    q, r = gt.linalg.qr(x, mode="r")
    assert q.shape == tuple(torch.linalg.qr(torch.tensor(a), mode="r").Q.shape) == (0,)
    np.testing.assert_allclose(np.abs(r.numpy()), np.abs(tr.numpy()[..., :3, :]), atol=1e-12)
    with pytest.raises(RuntimeError, match="mode='r'"):
        r.sum().backward()


def _eigh_invariants(L, x, uplo="L"):
    w, v = L.linalg.eigh(x, UPLO=uplo)
    return w, v * v, v @ (L.exp(w / 4).unsqueeze(-1) * v.mT)    # |V|^2 and V f(w) V^T: free of the signs


@pytest.mark.parametrize("dtype", DTYPES)
def test_eigh(dtype):
    a = symmetric(2, 4, 4, seed=10)
    both(_eigh_invariants, a, dtype=dtype)
    lower_only = np.tril(a) + np.triu(randn(4, 4, seed=11), 1)    # UPLO='L' reads the lower triangle only
    both(_eigh_invariants, lower_only, dtype=dtype)
    both(lambda L, x: _eigh_invariants(L, x, "U"), np.swapaxes(lower_only, -1, -2), dtype=dtype)
    both(lambda L, x: L.linalg.eigvalsh(x), a, dtype=dtype)


def _svd_invariants(L, x, full):
    u, s, vh = L.linalg.svd(x, full_matrices=full)
    k = s.shape[-1]
    return s, u * u, vh * vh, (u[..., :k] * s.unsqueeze(-2)) @ vh[..., :k, :]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 3), (2, 4, 3), (3, 4)])
def test_svd(dtype, shape):
    both(lambda L, x: (*_svd_invariants(L, x, False), *_svd_invariants(L, x, True)), randn(*shape, seed=12),
         dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_svd_old_convention_and_svdvals(dtype):
    a = randn(2, 4, 3, seed=13)
    both(lambda L, x: L.linalg.svdvals(x), a, dtype=dtype)

    def old(L, x):
        u, s, v = L.svd(x)
        return s, (u * s.unsqueeze(-2)) @ v.mT, v * v
    both(old, a, dtype=dtype)
    u, s, v = gt.svd(gt.tensor(a), some=False)
    assert u.shape == (2, 4, 4) and v.shape == (2, 3, 3)
    u, s, v = gt.tensor(a).svd(compute_uv=False)
    assert u.shape == (2, 4, 4) and v.shape == (2, 3, 3) and not u.numpy().any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_pinv(dtype):
    both(lambda L, x: L.linalg.pinv(x), randn(2, 4, 3, seed=14), dtype=dtype)
    both(lambda L, x: L.pinverse(x), randn(3, 4, seed=15), dtype=dtype)
    both(lambda L, x: L.linalg.pinv(x, hermitian=True), symmetric(3, 3, seed=16), dtype=dtype)
    rank1 = np.outer(randn(4, seed=17), randn(3, seed=18))          # cut-off singular values give 0
    both(lambda L, x: L.linalg.pinv(x), rank1, dtype=dtype, grad=False)


MATRIX_ORDS = ["fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2]
VECTOR_ORDS = [2, 1, 3, 0.5, -1, math.inf, -math.inf]


@pytest.mark.parametrize("dtype", DTYPES)
def test_matrix_norm(dtype):
    a = randn(2, 3, 4, seed=19)
    both(lambda L, x: [L.linalg.matrix_norm(x, ord=o) for o in MATRIX_ORDS], a, dtype=dtype)
    both(lambda L, x: [L.linalg.matrix_norm(x, o, dim=(0, 2), keepdim=True) for o in MATRIX_ORDS], a, dtype=dtype)
    both(lambda L, x: [L.linalg.norm(x[0], ord=o) for o in MATRIX_ORDS], a, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vector_norm(dtype):
    a = randn(2, 3, 4, seed=20)
    both(lambda L, x: [L.linalg.vector_norm(x, ord=o) for o in VECTOR_ORDS], a, dtype=dtype)
    both(lambda L, x: [L.linalg.vector_norm(x, o, dim=(0, -1), keepdim=True) for o in VECTOR_ORDS], a, dtype=dtype)
    both(lambda L, x: [L.linalg.norm(x, o, dim=1) for o in VECTOR_ORDS], a, dtype=dtype)
    both(lambda L, x: L.linalg.vector_norm(x, 0, dim=1), a, dtype=dtype, grad=False)   # counts: no gradient


def test_norm_defaults_and_zero_gradient():
    a = randn(2, 3, 4, seed=21)
    both(lambda L, x: L.linalg.norm(x), a)
    both(lambda L, x: L.linalg.norm(x, dim=(0, 1)), a)
    both(lambda L, x: L.linalg.vector_norm(x * 0), a)                # the 2-norm's gradient at 0 is 0


def test_matrix_rank_multi_dot_vecdot_cross_diagonal():
    torch = torch_or_skip()
    a = np.stack([randn(4, 3, seed=22), np.outer(randn(4, seed=23), randn(3, seed=24))])
    for kw in ({}, {"atol": 1.0}, {"rtol": 0.5}):
        ours, theirs = gt.linalg.matrix_rank(gt.tensor(a), **kw), torch.linalg.matrix_rank(torch.tensor(a), **kw)
        assert ours.dtype == gt.int64 and ours.tolist() == theirs.tolist()
    s = symmetric(3, 3, seed=25)
    assert gt.linalg.matrix_rank(gt.tensor(s), hermitian=True).item() == 3
    both(lambda L, x, y, z: L.linalg.multi_dot([x, y, z]), randn(3, seed=26), randn(3, 4, seed=27),
         randn(4, 2, seed=28))
    both(lambda L, x, y: L.linalg.vecdot(x, y, dim=0), randn(3, 2, seed=29), randn(3, 1, seed=30))
    both(lambda L, x, y: L.linalg.cross(x, y), randn(2, 3, seed=31), randn(1, 3, seed=32))
    both(lambda L, x, y: L.linalg.cross(x, y, dim=0), randn(3, 2, seed=33), randn(3, 2, seed=34))
    both(lambda L, x: L.linalg.diagonal(x, offset=1), randn(2, 3, 4, seed=35))


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstsq(dtype):
    torch = torch_or_skip()
    a, b = randn(2, 4, 3, seed=45), randn(2, 4, 2, seed=46)
    both(lambda L, x, y: L.linalg.lstsq(x, y).solution, a, b, dtype=dtype)
    both(lambda L, x, y: tuple(L.linalg.lstsq(x, y, driver="gelsd"))[:2], a, b, dtype=dtype)
    both(lambda L, x, y: tuple(L.linalg.lstsq(x, y, driver="gels"))[:2], a[0], b[0, :, 0], dtype=dtype)
    deficient = a.copy()
    deficient[0, :, 2] = deficient[0, :, 1]
    for driver in ("gelsy", "gelsd", "gelss", "gels"):
        x = deficient if driver != "gels" else a
        ours = gt.linalg.lstsq(gt.tensor(x), gt.tensor(b), driver=driver)
        theirs = torch.linalg.lstsq(torch.tensor(x), torch.tensor(b), driver=driver)
        for k, (o, t) in enumerate(zip(ours, theirs)):
            assert o.shape == tuple(t.shape) and o.dtype.name == str(t.dtype).split(".")[-1], (driver, k)
            if k or driver != "gelsy":      # gelsy's basic solution of a rank-deficient A is not pinv's
                np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-9, atol=1e-10)


def test_repeated_values_without_vectors():
    # torch differentiates eigvalsh and svdvals without the 1 / (λi - λj) terms: finite at ties
    both(lambda L, x: L.linalg.eigvalsh(x), np.diag([1.0, 1.0, 2.0]))
    both(lambda L, x: L.linalg.svdvals(x), np.eye(4, 3))
    both(lambda L, x: L.linalg.matrix_norm(x, "nuc"), np.eye(3, 4))


def test_empty_matrices():
    torch = torch_or_skip()
    for name, shape in (("svdvals", (2, 0, 3)), ("eigvalsh", (2, 0, 0)), ("cholesky", (0, 0)), ("pinv", (0, 3)),
                        ("matrix_rank", (0, 3))):
        ours = getattr(gt.linalg, name)(gt.zeros(*shape, dtype=gt.float64))
        theirs = getattr(torch.linalg, name)(torch.zeros(shape, dtype=torch.float64))
        assert ours.shape == tuple(theirs.shape), name
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    q, r = gt.linalg.qr(gt.zeros(2, 3, 0, dtype=gt.float64))
    assert q.shape == (2, 3, 0) and r.shape == (2, 0, 0)
    for name in ("svd", "eigh", "qr"):                    # an empty batch: packed results and gradients
        x = gt.zeros(0, 3, 3, dtype=gt.float64, requires_grad=True)
        parts = getattr(gt.linalg, name)(x)
        assert [p.shape for p in parts] == [tuple(p.shape) for p in getattr(torch.linalg, name)(torch.zeros(0, 3, 3))]
        sum(p.sum() for p in parts).backward()
        assert x.grad.shape == (0, 3, 3)


def test_finite_differences():
    a = general(3, 3, seed=36)
    check_grad(lambda x: gt.linalg.det(x), a)
    check_grad(lambda x: gt.linalg.inv(x), a)
    check_grad(lambda x, b: gt.linalg.solve(x, b), a, randn(3, 1, seed=37))
    # torch's gradient is the symmetric one: differentiate through a symmetric input
    check_grad(lambda x: gt.linalg.cholesky((x + x.mT) / 2), spd(3, 3, seed=38))
    check_grad(lambda x: gt.linalg.svdvals(x), randn(3, 2, seed=39))
    check_grad(lambda x: gt.linalg.qr(x).R, randn(3, 2, seed=40))
    check_grad(lambda x: tuple(gt.linalg.qr(x)), randn(2, 3, seed=41))


def test_second_order_gradient():
    torch = torch_or_skip()
    a = general(3, 3, seed=41)
    x = gt.tensor(a, requires_grad=True)
    b = randn(3, 2, seed=44)

    def first(L, x):
        return (L.linalg.inv(x) * L.linalg.det(x)).sum() + L.linalg.solve(x, L.tensor(b)).sum()
    (g,) = gt.autograd.grad(first(gt, x), x, create_graph=True)
    (g.square().sum() + gt.linalg.slogdet(x).logabsdet).backward()
    t = torch.tensor(a, requires_grad=True)
    (tg,) = torch.autograd.grad(first(torch, t), t, create_graph=True)
    (tg.square().sum() + torch.linalg.slogdet(t).logabsdet).backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10)
    for upper in (False, True):
        c = spd(3, 3, seed=45)
        x, t = gt.tensor(c, requires_grad=True), torch.tensor(c, requires_grad=True)
        (g,) = gt.autograd.grad((gt.linalg.cholesky(x, upper=upper) ** 2).sum(), x, create_graph=True)
        (tg,) = torch.autograd.grad((torch.linalg.cholesky(t, upper=upper) ** 2).sum(), t, create_graph=True)
        (g ** 3).sum().backward()
        (tg ** 3).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:torch.cholesky is deprecated")
def test_methods_and_top_level_aliases():
    torch = torch_or_skip()
    a = general(2, 3, 3, seed=42)
    g, t = gt.tensor(a), torch.tensor(a)
    for name in ("det", "inverse", "logdet", "pinverse"):
        np.testing.assert_allclose(getattr(g, name)().numpy(), getattr(t, name)().numpy(), rtol=1e-10)
        np.testing.assert_allclose(getattr(gt, name)(g).numpy(), getattr(torch, name)(t).numpy(), rtol=1e-10)
    np.testing.assert_allclose(g.matrix_power(2).numpy(), t.matrix_power(2).numpy(), rtol=1e-10)
    np.testing.assert_allclose(gt.matrix_power(g, -1).numpy(), torch.matrix_power(t, -1).numpy(), rtol=1e-10)
    assert g.slogdet().sign.tolist() == gt.slogdet(g).sign.tolist() == t.slogdet().sign.tolist()
    np.testing.assert_allclose(gt.slogdet(g).logabsdet.numpy(), t.slogdet().logabsdet.numpy(), rtol=1e-10)
    c = spd(3, 3)
    np.testing.assert_allclose(gt.cholesky(gt.tensor(c)).numpy(), torch.cholesky(torch.tensor(c)).numpy(), rtol=1e-10)
    np.testing.assert_allclose(gt.tensor(c).cholesky(upper=True).numpy(), torch.tensor(c).cholesky(upper=True).numpy(),
                               rtol=1e-10)
    q, r = g.qr()
    np.testing.assert_allclose((q @ r).numpy(), a, rtol=1e-10)
    u, s, v = g.svd()
    np.testing.assert_allclose(s.numpy(), t.svd().S.numpy(), rtol=1e-10)
    np.testing.assert_allclose((u @ (s.unsqueeze(-1) * v.mT)).numpy(), a, rtol=1e-10)


def test_edge_cases():
    torch = torch_or_skip()
    for shape in ((0, 3, 3), (2, 0, 0)):
        for name in ("det", "inv"):
            ours = getattr(gt.linalg, name)(gt.zeros(*shape, dtype=gt.float64))
            theirs = getattr(torch.linalg, name)(torch.zeros(*shape, dtype=torch.float64))
            assert ours.shape == tuple(theirs.shape)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert gt.linalg.det(gt.tensor([[1.0, 2.0], [2.0, 4.0]])).item() == 0.0
    sign, logabsdet = gt.linalg.slogdet(gt.tensor([[1.0, 2.0], [2.0, 4.0]]))
    assert sign.item() == 0.0 and logabsdet.item() == -math.inf
    assert gt.linalg.det(gt.randn(2, 2)).dtype == gt.float32


def test_sharded_batch():
    a = general(4, 3, 3, seed=43)
    x = gt.from_numpy(a)                       # Shard(0) over GT_DEVICES=4
    np.testing.assert_allclose(gt.linalg.det(x).numpy(), np.linalg.det(a), rtol=1e-10)
    np.testing.assert_allclose(gt.linalg.inv(x).numpy(), np.linalg.inv(a), rtol=1e-10)
    np.testing.assert_allclose(gt.linalg.svdvals(x).numpy(), np.linalg.svd(a, compute_uv=False), rtol=1e-10)
    w = gt.tensor(np.eye(3), requires_grad=True)
    gt.linalg.det(x @ w).sum().backward()
    # d/dW sum det(A W) at W = I: sum over the batch of A^T (det(A) inv(A)^T)
    expected = sum(m.T @ (np.linalg.det(m) * np.linalg.inv(m).T) for m in a)
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-9, atol=1e-10)


def test_errors():
    singular = gt.tensor([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(gt.linalg.LinAlgError, match="singular"):
        gt.linalg.inv(singular)
    with pytest.raises(RuntimeError, match="singular"):
        gt.linalg.solve(singular, gt.ones(2))
    with pytest.raises(gt.linalg.LinAlgError, match="not positive-definite"):
        gt.linalg.cholesky(gt.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="square matrices, but they are 2 by 3"):
        gt.linalg.det(gt.zeros(2, 3))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        gt.linalg.svd(gt.zeros(3))
    with pytest.raises(RuntimeError, match="Expected a floating point or complex tensor as input. Got Long"):
        gt.linalg.inv(gt.tensor([[1, 0], [0, 1]]))
    with pytest.raises(TypeError, match="must be a tensor"):
        gt.linalg.det([[1.0]])
    with pytest.raises(ValueError, match="unrecognized mode 'full'"):
        gt.linalg.qr(gt.zeros(2, 2), mode="full")
    with pytest.raises(ValueError, match="UPLO must be 'L' or 'U'"):
        gt.linalg.eigh(gt.eye(2), UPLO="X")
    with pytest.raises(ValueError, match="incompatible shapes"):
        gt.linalg.solve(gt.eye(3), gt.ones(2, 2))
    with pytest.raises(ValueError, match="not supported for left=False"):
        gt.linalg.solve(gt.eye(2), gt.ones(2), left=False)
    with pytest.raises(RuntimeError, match="same dtype"):     # torch's error type
        gt.linalg.solve(gt.eye(2), gt.ones(2, dtype=gt.float64))
    with pytest.raises(TypeError, match="n must be an int"):
        gt.linalg.matrix_power(gt.eye(2), 1.5)
    with pytest.raises(ValueError, match="order 3 not supported"):
        gt.linalg.matrix_norm(gt.eye(2), ord=3)
    with pytest.raises(ValueError, match="must be 1D or 2D"):
        gt.linalg.norm(gt.zeros(2, 2, 2), ord=2)
    with pytest.raises(ValueError, match="`driver` should be one of"):
        gt.linalg.lstsq(gt.eye(2), gt.eye(2), driver="gelsx")
    with pytest.raises(ValueError, match="must be \\(..., 3, k\\)"):
        gt.linalg.lstsq(gt.zeros(3, 2), gt.zeros(2, 2))
    with pytest.raises(ValueError, match="at least 2 tensors"):
        gt.linalg.multi_dot([gt.eye(2)])
    with pytest.raises(ValueError, match="must have length 3"):
        gt.linalg.cross(gt.zeros(2), gt.zeros(2))


def test_qr_complete_of_a_tall_matrix_refuses_a_backward_as_torch():
    for L in (gt, torch_or_skip()):       # torch's type and words: RuntimeError, in the backward
        q, r = L.linalg.qr(L.randn(3, 2, dtype=L.float64, requires_grad=True), mode="complete")
        assert tuple(q.shape) == (3, 3) and tuple(r.shape) == (3, 2)
        with pytest.raises(RuntimeError, match=r"^The QR decomposition is not differentiable when mode='complete' "
                                               r"and nrows > ncols\.$"):
            (q.sum() + r.sum()).backward()
