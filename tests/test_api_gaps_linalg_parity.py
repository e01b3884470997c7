"""torch's control flow (``gt.cond``, ``gt.while_loop``), randomized low-rank decompositions
(``svd_lowrank``, ``pca_lowrank``), ``lobpcg`` and ``segment_reduce``, beside torch 2.13."""

import numpy as np
import pytest

import gt
from helpers import assert_close_as_torch, randn_pair

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _torch_validation_restored():
    """torch.cond/while_loop compile through dynamo, which turns torch.distributions' argument
    validation off for the whole process; later tests compare gt's validation errors with torch's."""
    before = torch.distributions.Distribution._validate_args
    yield
    torch.distributions.Distribution.set_default_validate_args(before)


# ---- control flow ---------------------------------------------------------------------------------
def test_cond_runs_the_branch_and_its_gradient():
    for pred in (True, False):
        x, tx = randn_pair(3, seed=8)
        g = gt.cond(pred, lambda a, b: (a * b).sin(), lambda a, b: a.cos() + b, (x, 2.0))
        t = torch.cond(pred, lambda a, b: (a * b).sin(), lambda a, b: a.cos() + b, (tx, 2.0))
        assert_close_as_torch(g, t)
        g.sum().backward()
        t.sum().backward()
        assert_close_as_torch(x.grad, tx.grad)
    x = gt.tensor([1.0, -2.0], requires_grad=True)
    out = gt.cond(x.sum() > 0, lambda a: (a * 2,), lambda a: (a * 3,), [x])
    assert isinstance(out, tuple)
    np.testing.assert_array_equal(out[0].numpy(), [3.0, -6.0])
    assert float(gt.cond(gt.tensor([0]), lambda: gt.ones(()), lambda: gt.zeros(()))) == 0.0
    with pytest.raises(RuntimeError, match="single-element tensor"):
        gt.cond(gt.tensor([True, False]), lambda a: a, lambda a: a, (x,))
    with pytest.raises(RuntimeError, match="Expected pred to be bool or single-element tensor"):
        torch.cond(torch.tensor([True, False]), lambda a: a, lambda a: a, (torch.ones(2),))
    with pytest.raises(RuntimeError, match="tuple or list"):
        gt.cond(True, lambda a: a, lambda a: a, x)
    with pytest.raises(RuntimeError, match="callable"):
        gt.cond(True, 3, lambda a: a, (x,))


def test_while_loop_matches_torch():
    assert gt.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x * 2), (0, gt.ones(2)))[0] == 3
    x, tx = randn_pair(2, seed=9)
    g = gt.while_loop(lambda i, a: i.sum() < 3, lambda i, a: (i + 1, a.sin() * 2), (gt.zeros(()), x))
    t = torch.while_loop(lambda i, a: i.sum() < 3, lambda i, a: (i + 1, a.sin() * 2),
                         (torch.zeros((), dtype=torch.float32), tx))
    assert isinstance(g, tuple) and float(g[0]) == float(t[0].detach()) == 3.0
    assert_close_as_torch(g[1], t[1])
    g[1].sum().backward()
    t[1].sum().backward()
    assert_close_as_torch(x.grad, tx.grad)
    none = gt.while_loop(lambda i, a: i < 0, lambda i, a: (i + 1, a), (0, gt.ones(2)))
    assert none[0] == 0 and isinstance(none, tuple)
    with pytest.raises(RuntimeError, match="same number of outputs"):
        gt.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1,), (0, gt.ones(2)))
    with pytest.raises(RuntimeError, match="same metadata"):
        gt.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, gt.ones(3)), (0, gt.ones(2)))
    with pytest.raises(RuntimeError, match="same metadata"):
        gt.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a.double()), (0, gt.ones(2)))
    with pytest.raises(RuntimeError, match="single-element tensor"):
        gt.while_loop(lambda i, a: a > 0, lambda i, a: (i + 1, a), (0, gt.ones(2)))


# ---- randomized low-rank decompositions -----------------------------------------------------------
def _low_rank(m, n, r, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, r)) @ rng.standard_normal((r, n))


@pytest.mark.parametrize("shape", [(8, 5), (5, 8), (3, 7, 6)])
def test_svd_lowrank_exact_where_q_reaches_the_rank(shape):
    a = _low_rank(shape[-2], shape[-1], 3, 0) if len(shape) == 2 else np.stack(
        [_low_rank(shape[-2], shape[-1], 3, i) for i in range(shape[0])])
    gt.manual_seed(0)
    U, S, V = gt.svd_lowrank(gt.tensor(a), q=4)
    tU, tS, tV = torch.svd_lowrank(torch.tensor(a), q=4)
    assert (U.shape, S.shape, V.shape) == (tuple(tU.shape), tuple(tS.shape), tuple(tV.shape))
    assert_close_as_torch(S[..., :3], tS[..., :3], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose((U * S.unsqueeze(-2)) @ V.mT, a, atol=1e-10)
    np.testing.assert_allclose(U.mT @ U, np.broadcast_to(np.eye(4), U.mT.shape[:-2] + (4, 4)), atol=1e-10)


def test_svd_lowrank_gradient_and_mean_argument():
    a = np.random.default_rng(3).standard_normal((6, 4))
    x, tx = gt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    gt.svd_lowrank(x, q=4)[1].sum().backward()        # q = rank: the nuclear norm, exactly
    torch.svd_lowrank(tx, q=4)[1].sum().backward()
    assert_close_as_torch(x.grad, tx.grad, rtol=1e-8, atol=1e-10)
    M = np.random.default_rng(4).standard_normal((1, 4))
    S = gt.svd_lowrank(gt.tensor(a + M), q=4, M=gt.tensor(M))[1]
    assert_close_as_torch(S, torch.linalg.svdvals(torch.tensor(a)), rtol=1e-10)
    with pytest.raises(ValueError, match="niter"):
        gt.svd_lowrank(gt.tensor(a), niter=-1)


def test_pca_lowrank_matches_torch():
    a = _low_rank(20, 6, 3, 5) + 2.0
    gt.manual_seed(0)
    U, S, V = gt.pca_lowrank(gt.tensor(a))
    tU, tS, tV = torch.pca_lowrank(torch.tensor(a))
    assert (U.shape, S.shape, V.shape) == ((20, 6), (6,), (6, 6)) == (tuple(tU.shape), tuple(tS.shape),
                                                                      tuple(tV.shape))
    assert_close_as_torch(S[:3], tS[:3], rtol=1e-10)
    top = V[:, :3].numpy()                          # the same principal subspace as torch's
    np.testing.assert_allclose(top @ top.T, tV[:, :3].numpy() @ tV[:, :3].numpy().T, atol=1e-10)
    S2 = gt.pca_lowrank(gt.tensor(a), q=5, center=False)[1]      # a has rank 4
    assert_close_as_torch(S2[:4], torch.linalg.svdvals(torch.tensor(a))[:4], rtol=1e-10)
    with pytest.raises(ValueError, match="not greater than min"):
        gt.pca_lowrank(gt.tensor(a), q=7)
    with pytest.raises(ValueError, match="matrix"):
        gt.pca_lowrank(gt.ones(3))


# ---- lobpcg ---------------------------------------------------------------------------------------
def _spd(m, seed, batch=()):
    a = np.random.default_rng(seed).standard_normal(batch + (m, m))
    return a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(m)


@pytest.mark.parametrize("largest", [True, False])
def test_lobpcg_eigenpairs_match_torch(largest):
    a = _spd(12, 0)
    gt.manual_seed(0)
    E, X = gt.lobpcg(gt.tensor(a), k=3, largest=largest)
    tE, tX = torch.lobpcg(torch.tensor(a), k=3, largest=largest)
    assert_close_as_torch(E, tE, rtol=1e-7)
    overlap = np.abs(X.numpy().T @ tX.numpy())                 # the same vectors, up to sign
    np.testing.assert_allclose(overlap, np.eye(3), atol=1e-6)
    b = _spd(12, 1) + 12 * np.eye(12)
    E, X = gt.lobpcg(gt.tensor(a), k=2, B=gt.tensor(b), largest=largest)
    tE = torch.lobpcg(torch.tensor(a), k=2, B=torch.tensor(b), largest=largest)[0]
    assert_close_as_torch(E, tE, rtol=1e-7)
    np.testing.assert_allclose(X.numpy().T @ b @ X.numpy(), np.eye(2), atol=1e-8)   # B-orthonormal


def test_lobpcg_batches_start_preconditioner_and_errors():
    a = _spd(15, 2, (2, 3)).astype(np.float32)
    E, X = gt.lobpcg(gt.tensor(a), k=2)
    tE, tX = torch.lobpcg(torch.tensor(a), k=2)
    assert (E.shape, X.shape, E.dtype) == (tuple(tE.shape), tuple(tX.shape), gt.float32)
    assert_close_as_torch(E, tE, rtol=1e-4)
    one = gt.tensor(a[0, 0])
    E, X = gt.lobpcg(one, X=gt.randn(15, 3), k=2, iK=gt.tensor(np.diag(1 / np.diag(a[0, 0]))), niter=-1)
    assert_close_as_torch(E, torch.linalg.eigvalsh(torch.tensor(a[0, 0])).flip(0)[:2], rtol=1e-4)
    with pytest.raises(ValueError, match="smaller than 3 x"):
        gt.lobpcg(gt.tensor(_spd(12, 0)), k=5)
    with pytest.raises(ValueError, match="smaller than 3 x"):
        torch.lobpcg(torch.tensor(_spd(12, 0)), k=5)
    with pytest.raises(ValueError, match="square"):
        gt.lobpcg(gt.ones(12, 5))
    with pytest.raises(NotImplementedError, match="tracker"):
        gt.lobpcg(one, k=1, tracker=print)


def test_lobpcg_gradients_match_torch():
    a = _spd(12, 3)
    x, tx = gt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    E, X = gt.lobpcg(x, k=2)
    tE, tX = torch.lobpcg(tx, k=2)
    up = np.random.default_rng(4).standard_normal((12, 2))
    (E.sum() + ((X * gt.tensor(up)).sum(0) ** 2).sum()).backward()       # a sign-invariant loss
    (tE.sum() + ((tX * torch.tensor(up)).sum(0) ** 2).sum()).backward()
    assert_close_as_torch(x.grad, tx.grad, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="B != I"):
        gt.lobpcg(x, k=2, B=gt.tensor(np.eye(12)))


# ---- segment_reduce -------------------------------------------------------------------------------
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "max", "min", "amax", "amin"])
@pytest.mark.parametrize("initial", [None, 1.0])
def test_segment_reduce_matches_torch(reduce, initial):
    data = np.array([[1.0, 2], [3, 3], [5, -6], [3, 0], [9, 10], [0, 2]])
    for form in ("lengths", "offsets"):
        idx = np.array([2, 0, 3, 1]) if form == "lengths" else np.array([0, 2, 2, 5, 6])
        x, tx = gt.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        g = gt.segment_reduce(x, reduce, initial=initial, **{form: gt.tensor(idx)})
        t = torch.segment_reduce(tx, reduce, initial=initial, **{form: torch.tensor(idx)})
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-12)
        up = np.abs(np.cos(np.arange(6.0))).reshape(3, 2) + 0.1     # positive: see the next test for ties
        (g[[0, 2, 3]] * gt.tensor(up)).sum().backward()                # the empty segment's inf/NaN left out
        (t[[0, 2, 3]] * torch.tensor(up)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_segment_reduce_axis_batches_ties_and_errors():
    data = np.random.default_rng(0).integers(-2, 3, (2, 5, 3)).astype(np.float64)
    lengths = np.array([[2, 0, 3], [1, 4, 0]])
    x, tx = gt.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    g = gt.segment_reduce(x, "max", lengths=gt.tensor(lengths), axis=1)
    t = torch.segment_reduce(tx, "max", lengths=torch.tensor(lengths), axis=1)
    np.testing.assert_array_equal(g.detach().numpy(), t.detach().numpy())
    (g[[0, 0, 1, 1], [0, 2, 0, 1]] * 1.5).sum().backward()             # the non-empty segments
    (t[[0, 0, 1, 1], [0, 2, 0, 1]] * 1.5).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    # a tie takes an even share of any gradient in gt; torch 2.13 splits positive ones only
    v = gt.tensor([1.0, 3.0, 3.0], requires_grad=True)
    (gt.segment_reduce(v, "max", lengths=gt.tensor([3])) * -2).sum().backward()
    assert v.grad.numpy().tolist() == [0.0, -1.0, -1.0]
    np.testing.assert_array_equal(
        gt.segment_reduce(gt.tensor(data[0]), "sum", lengths=gt.tensor([2, 2]), unsafe=True).numpy(),
        torch.segment_reduce(torch.tensor(data[0]), "sum", lengths=torch.tensor([2, 2]), unsafe=True).numpy())
    d, L = gt.ones(5, 2), gt.tensor([2, 3])
    for kwargs, err, match in ((dict(lengths=gt.tensor([2, 2])), RuntimeError, "sum to data.size"),
                               (dict(), RuntimeError, "Either lengths or offsets"),
                               (dict(lengths=L, indices=L), RuntimeError, "indices based reduction"),
                               (dict(lengths=gt.tensor([2, -1, 4])), RuntimeError, "negative"),
                               (dict(lengths=L.float()), NotImplementedError, "int32 or int64"),
                               (dict(lengths=L, axis=1), RuntimeError, "last dimension of lengths")):
        with pytest.raises(err, match=match):
            gt.segment_reduce(d, "sum", **kwargs)
    with pytest.raises(RuntimeError, match="reduce argument must be"):
        gt.segment_reduce(d, "foo", lengths=L)
    with pytest.raises(RuntimeError, match="reduce argument must be"):
        torch.segment_reduce(torch.ones(5, 2), "foo", lengths=torch.tensor([2, 3]))


def test_segment_reduce_axis_must_be_an_int_as_torch():
    for mod in (gt, torch):
        with pytest.raises(TypeError, match="axis"):
            mod.segment_reduce(mod.ones(3), "sum", lengths=mod.tensor([1, 2]), axis="a")
