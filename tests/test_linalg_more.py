"""The rest of torch.linalg in gt: LU (lu_factor, lu_factor_ex, lu, lu_solve, lu_unpack), triangular
solves, the _ex variants, Cholesky solves, matrix_exp, cond, tensorinv/tensorsolve and
householder_product, beside torch 2.13: values, dtypes, shapes, gradients (torch autograd and
finite differences in float64), singular inputs, batches and a sharded batch."""

import math

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import check_grad, compare_with_torch, randn, torch_or_skip


def _well(*shape, seed=0):
    """Well-conditioned square matrices: random plus a multiple of the identity."""
    a = randn(*shape, seed=seed)
    return a + 3 * np.eye(shape[-1])


def _spd(*shape, seed=0):
    a = randn(*shape, seed=seed)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


def _tri(*shape, upper, seed=0):
    a = randn(*shape, seed=seed) * 0.5 + 2 * np.eye(shape[-1])
    return np.triu(a) if upper else np.tril(a)


# ---- matrix_exp --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape,scale", [((3, 3), 0.3), ((2, 4, 4), 1.0), ((2, 1, 3, 3), 4.0), ((1, 1), 2.0)])
def test_matrix_exp_values_and_gradients_beside_torch(dtype, shape, scale):
    torch = torch_or_skip()
    compare_with_torch(gt.linalg.matrix_exp, torch.linalg.matrix_exp, randn(*shape, seed=1, scale=scale),
                       dtype=dtype, rtol=1e-4 if dtype == "float32" else 1e-7)


def test_matrix_exp_spellings_and_finite_differences():
    torch = torch_or_skip()
    a = randn(3, 3, seed=2)
    compare_with_torch(lambda t: t.matrix_exp(), None, a)
    compare_with_torch(lambda t: gt.matrix_exp(t), torch.matrix_exp, a)
    check_grad(gt.linalg.matrix_exp, randn(2, 3, 3, seed=3, scale=0.7))
    # exp of a diagonal is the exp of its entries; exp(0) = I; exp of a nilpotent is 1 + N
    d = gt.linalg.matrix_exp(gt.tensor(np.diag([0.5, -1.0, 2.0])))
    np.testing.assert_allclose(d.numpy(), np.diag(np.exp([0.5, -1.0, 2.0])), rtol=1e-14)
    np.testing.assert_array_equal(gt.matrix_exp(gt.zeros(2, 2)).numpy(), np.eye(2))
    np.testing.assert_allclose(gt.matrix_exp(gt.tensor([[0.0, 3.0], [0.0, 0.0]])).numpy(), [[1, 3], [0, 1]])
    assert gt.matrix_exp(gt.zeros(2, 0, 0)).shape == (2, 0, 0)


@pytest.mark.first_pass
def test_matrix_exp_refuses_what_torch_refuses():
    with pytest.raises(ValueError, match="square"):
        gt.linalg.matrix_exp(gt.zeros(2, 3))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        gt.linalg.matrix_exp(gt.zeros(3))
    with pytest.raises(RuntimeError, match="Expected a floating point or complex tensor as input. Got Long"):
        gt.linalg.matrix_exp(gt.zeros(2, 2, dtype=gt.int64))


# ---- LU ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3), (5, 3), (3, 5), (2, 2, 4, 2)])
def test_lu_factor_values_pivots_and_info_beside_torch(shape):
    torch = torch_or_skip()
    a = randn(*shape, seed=4)
    ours, theirs = gt.linalg.lu_factor_ex(gt.tensor(a)), torch.linalg.lu_factor_ex(torch.tensor(a))
    assert type(ours).__name__ == "linalg_lu_factor_ex" and ours._fields == ("LU", "pivots", "info")
    np.testing.assert_allclose(ours.LU.numpy(), theirs.LU.numpy(), rtol=1e-12, atol=1e-14)
    assert ours.pivots.dtype == gt.int32 and ours.info.dtype == gt.int32
    np.testing.assert_array_equal(ours.pivots.numpy(), theirs.pivots.numpy())
    np.testing.assert_array_equal(ours.info.numpy(), theirs.info.numpy())
    lu, piv = gt.linalg.lu_factor(gt.tensor(a, dtype=gt.float32))
    assert lu.dtype == gt.float32 and lu.shape == shape
    np.testing.assert_array_equal(piv.numpy(), theirs.pivots.numpy())


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (4, 2), (2, 4)])
def test_lu_gradients_beside_torch(shape):
    torch = torch_or_skip()
    a = randn(*shape, seed=5)
    compare_with_torch(lambda t: tuple(gt.linalg.lu(t)), lambda t: tuple(torch.linalg.lu(t)), a)
    compare_with_torch(lambda t: gt.linalg.lu_factor(t).LU, lambda t: torch.linalg.lu_factor(t).LU, a)


def test_lu_gradients_against_finite_differences():
    check_grad(lambda t: gt.linalg.lu(t)[1:], randn(3, 3, seed=6))
    check_grad(lambda t: gt.linalg.lu(t)[1:], randn(2, 4, seed=7))
    check_grad(lambda t: gt.linalg.lu(t)[1:], randn(4, 2, seed=8))


def test_lu_unpack_and_reconstruction():
    torch = torch_or_skip()
    for shape in [(4, 4), (2, 5, 3), (3, 5)]:
        a = randn(*shape, seed=9)
        ours = gt.lu_unpack(*gt.linalg.lu_factor(gt.tensor(a)))
        theirs = torch.lu_unpack(*torch.linalg.lu_factor(torch.tensor(a)))
        assert type(ours).__name__ == "lu_unpack"
        for o, t in zip(ours, theirs):
            assert o.shape == tuple(t.shape) and o.dtype == gt.float64
            np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-12, atol=1e-14)
        p, low, up = (x.numpy() for x in ours)
        np.testing.assert_allclose(p @ low @ up, a, atol=1e-12)
    lu, piv = gt.linalg.lu_factor(gt.tensor(randn(3, 3)))
    p, low, up = gt.lu_unpack(lu, piv, unpack_data=False)
    assert p.shape == (3, 3) and low.numel() == 0 and up.numel() == 0
    assert gt.lu_unpack(lu, piv, unpack_pivots=False).P.numel() == 0


def test_singular_lu_reports_info_and_lu_factor_raises():
    torch = torch_or_skip()
    a = np.stack([np.eye(2), [[1.0, 2.0], [2.0, 4.0]]])
    ours, theirs = gt.linalg.lu_factor_ex(gt.tensor(a)), torch.linalg.lu_factor_ex(torch.tensor(a))
    np.testing.assert_array_equal(ours.info.numpy(), [0, 2])
    np.testing.assert_array_equal(ours.info.numpy(), theirs.info.numpy())
    np.testing.assert_array_equal(ours.LU.numpy(), theirs.LU.numpy())
    with pytest.raises(gt.linalg.LinAlgError, match=r"\(Batch element 1\): U\[2,2\] is zero"):
        gt.linalg.lu_factor(gt.tensor(a))
    with pytest.raises(RuntimeError, match="U\\[2,2\\] is zero"):
        gt.linalg.lu_factor_ex(gt.tensor(a[1]), check_errors=True)
    p, low, up = gt.linalg.lu(gt.tensor(a[1]))          # lu never raises
    np.testing.assert_allclose((p @ low @ up).numpy(), a[1])
    infos = gt.lu(gt.tensor(a), get_infos=True)[2]
    np.testing.assert_array_equal(infos.numpy(), [0, 2])
    assert len(gt.lu(gt.tensor(a))) == 2            # torch.lu factors a singular matrix without an error


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
def test_lu_solve_values_and_gradients_beside_torch(left, adjoint):
    torch = torch_or_skip()
    a = _well(2, 3, 3, seed=10)
    b = randn(2, 3, 2, seed=11) if left else randn(2, 2, 3, seed=11)

    def run(lib):
        def fn(x, y):
            lu, piv = lib.linalg.lu_factor(x)
            return lib.linalg.lu_solve(lu, piv, y, left=left, adjoint=adjoint)
        return fn
    compare_with_torch(run(gt), run(torch), a, b)
    check_grad(run(gt), a, b)


def test_lu_solve_broadcasts_and_legacy_spellings():
    torch = torch_or_skip()
    a, b = _well(3, 3, seed=12), randn(4, 3, 2, seed=13)
    lu, piv = torch.linalg.lu_factor(torch.tensor(a))
    want = torch.linalg.lu_solve(lu, piv, torch.tensor(b)).numpy()
    glu, gpiv = gt.linalg.lu_factor(gt.tensor(a))
    np.testing.assert_allclose(gt.linalg.lu_solve(glu, gpiv, gt.tensor(b)).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(gt.lu_solve(gt.tensor(b), glu, gpiv).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(gt.tensor(b).lu_solve(glu, gpiv).numpy(), want, rtol=1e-12)
    got_lu, got_piv = gt.tensor(a).lu()
    np.testing.assert_allclose(got_lu.numpy(), lu.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(got_piv.numpy(), piv.numpy())


@pytest.mark.first_pass
def test_lu_refuses_bad_input():
    lu, piv = gt.linalg.lu_factor(gt.eye(3, dtype=gt.float64))
    with pytest.raises(TypeError, match="int32"):
        gt.linalg.lu_solve(lu, piv.to(gt.int64), gt.zeros(3, 1, dtype=gt.float64))
    with pytest.raises(RuntimeError, match="same dtype"):     # torch's error type
        gt.linalg.lu_solve(lu, piv, gt.zeros(3, 1))
    with pytest.raises(ValueError, match="incompatible shapes"):
        gt.linalg.lu_solve(lu, piv, gt.zeros(2, 1, dtype=gt.float64))
    with pytest.raises(ValueError, match="square"):
        gt.linalg.lu_solve(gt.zeros(2, 3), piv, gt.zeros(2, 1))
    with pytest.raises(RuntimeError, match="without pivoting"):
        gt.linalg.lu_factor(gt.eye(3), pivot=False)
    with pytest.raises(TypeError, match="int32"):
        gt.lu_unpack(lu, piv.to(gt.int64))


# ---- triangular solves -------------------------------------------------------------------------
@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular_beside_torch(upper, left, unit):
    torch = torch_or_skip()
    a = randn(2, 3, 3, seed=14) * 0.5 + 2 * np.eye(3)        # both triangles filled: only one is read
    b = randn(2, 3, 4, seed=15) if left else randn(2, 4, 3, seed=15)
    compare_with_torch(lambda x, y: gt.linalg.solve_triangular(x, y, upper=upper, left=left, unitriangular=unit),
                       lambda x, y: torch.linalg.solve_triangular(x, y, upper=upper, left=left, unitriangular=unit),
                       a, b)
    compare_with_torch(lambda x, y: gt.linalg.solve_triangular(x, y, upper=upper, left=left, unitriangular=unit),
                       lambda x, y: torch.linalg.solve_triangular(x, y, upper=upper, left=left, unitriangular=unit),
                       a, b, dtype="float32")


def test_solve_triangular_finite_differences_broadcasting_and_zero_diagonal():
    torch = torch_or_skip()
    check_grad(lambda x, y: gt.linalg.solve_triangular(x, y, upper=False), _tri(3, 3, upper=False, seed=16),
               randn(2, 3, 2, seed=17))
    a, b = _tri(3, 3, upper=True, seed=18), randn(2, 3, 2, seed=19)   # A broadcast over B's batch
    compare_with_torch(lambda x, y: gt.linalg.solve_triangular(x, y, upper=True),
                       lambda x, y: torch.linalg.solve_triangular(x, y, upper=True), a, b)
    z = gt.linalg.solve_triangular(gt.tensor([[0.0, 1.0], [0.0, 1.0]]), gt.eye(2), upper=True)
    want = torch.linalg.solve_triangular(torch.tensor([[0.0, 1.0], [0.0, 1.0]]), torch.eye(2), upper=True)
    np.testing.assert_array_equal(z.numpy(), want.numpy())           # inf/-inf, no error


@pytest.mark.parametrize("upper,transpose,unit", [(True, False, False), (False, True, False), (True, True, True)])
def test_triangular_solve_legacy_beside_torch(upper, transpose, unit):
    torch = torch_or_skip()
    import warnings
    a, b = _tri(3, 3, upper=upper, seed=20), randn(3, 2, seed=21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare_with_torch(lambda y, x: tuple(gt.triangular_solve(y, x, upper, transpose, unit)),
                           lambda y, x: tuple(torch.triangular_solve(y, x, upper, transpose, unit)), b, a)
    out = gt.tensor(b).triangular_solve(gt.tensor(a), upper, transpose, unit)
    assert type(out).__name__ == "triangular_solve" and out._fields == ("solution", "cloned_coefficient")


@pytest.mark.first_pass
def test_solve_triangular_refuses_bad_input():
    with pytest.raises(TypeError, match="upper"):
        gt.linalg.solve_triangular(gt.eye(2), gt.eye(2))              # upper is required, as torch
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        gt.linalg.solve_triangular(gt.eye(2), gt.ones(2), upper=True)
    with pytest.raises(ValueError, match="incompatible shapes"):
        gt.linalg.solve_triangular(gt.eye(2), gt.ones(3, 1), upper=True)
    # two dtypes: torch's kernel casts B into A's dtype (tests/test_strictness_leftovers_parity.py)
    assert gt.linalg.solve_triangular(gt.eye(2), gt.ones(2, 1, dtype=gt.float64), upper=True).dtype == gt.float32


# ---- the _ex variants --------------------------------------------------------------------------
def test_cholesky_ex_inv_ex_solve_ex_beside_torch():
    torch = torch_or_skip()
    s = _spd(2, 3, 3, seed=22)
    compare_with_torch(lambda x: tuple(gt.linalg.cholesky_ex(x)), lambda x: tuple(torch.linalg.cholesky_ex(x)), s)
    compare_with_torch(lambda x: gt.linalg.cholesky_ex(x, upper=True).L,
                       lambda x: torch.linalg.cholesky_ex(x, upper=True).L, s)
    a, b = _well(2, 3, 3, seed=23), randn(2, 3, seed=24)
    compare_with_torch(lambda x: tuple(gt.linalg.inv_ex(x)), lambda x: tuple(torch.linalg.inv_ex(x)), a)
    compare_with_torch(lambda x, y: tuple(gt.linalg.solve_ex(x, y)), lambda x, y: tuple(torch.linalg.solve_ex(x, y)),
                       a, b)
    compare_with_torch(lambda x, y: gt.linalg.solve_ex(x, y, left=False).result,
                       lambda x, y: torch.linalg.solve_ex(x, y, left=False).result, a, randn(2, 4, 3, seed=25))
    assert type(gt.linalg.inv_ex(gt.eye(2))).__name__ == "linalg_inv_ex"


def test_the_ex_variants_report_failures_in_info():
    torch = torch_or_skip()
    s = _spd(3, 3, 3, seed=26)
    s[1, 2, 2] = -5.0
    s[2, 0, 0] = -1.0
    got, want = gt.linalg.cholesky_ex(gt.tensor(s)), torch.linalg.cholesky_ex(torch.tensor(s))
    np.testing.assert_array_equal(got.info.numpy(), want.info.numpy())
    np.testing.assert_array_equal(got.info.numpy(), [0, 3, 1])
    np.testing.assert_allclose(got.L.numpy()[0], want.L.numpy()[0], rtol=1e-12)
    with pytest.raises(gt.linalg.LinAlgError, match=r"Batch element 1.*order 3"):
        gt.linalg.cholesky_ex(gt.tensor(s), check_errors=True)
    a = np.stack([_well(3, 3, seed=27), [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]]])
    inv, info = gt.linalg.inv_ex(gt.tensor(a))
    np.testing.assert_array_equal(info.numpy(), torch.linalg.inv_ex(torch.tensor(a)).info.numpy())
    np.testing.assert_allclose(inv.numpy()[0], np.linalg.inv(a[0]), rtol=1e-12)
    assert np.isnan(inv.numpy()[1]).all()
    x, info = gt.linalg.solve_ex(gt.tensor(a), gt.tensor(randn(2, 3, seed=28)))
    assert info.tolist() == [0, 3] and np.isnan(x.numpy()[1]).all() and np.isfinite(x.numpy()[0]).all()
    with pytest.raises(gt.linalg.LinAlgError, match="singular"):
        gt.linalg.inv_ex(gt.tensor(a), check_errors=True)
    with pytest.raises(RuntimeError, match="singular"):
        gt.linalg.solve_ex(gt.tensor(a), gt.tensor(randn(2, 3)), check_errors=True)


# ---- Cholesky solves ---------------------------------------------------------------------------
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_and_inverse_beside_torch(upper):
    torch = torch_or_skip()
    factor = _tri(2, 3, 3, upper=upper, seed=29)
    b = randn(2, 3, 2, seed=30)
    compare_with_torch(lambda y, f: gt.cholesky_solve(y, f, upper), lambda y, f: torch.cholesky_solve(y, f, upper),
                       b, factor)
    compare_with_torch(lambda f: gt.cholesky_inverse(f, upper), lambda f: torch.cholesky_inverse(f, upper),
                       factor[0])
    compare_with_torch(lambda y, f: y.cholesky_solve(f, upper), None, b, factor, dtype="float32")
    compare_with_torch(lambda f: f.cholesky_inverse(upper), None, factor)
    # the factor's gradient is torch's full matrix; through triu/tril only the read triangle moves
    check_grad(lambda y, f: gt.cholesky_solve(y, f.triu() if upper else f.tril(), upper), b[:, :, :1], factor)


def _second_derivatives(lib, fn, arrays, seed=45):
    """The gradient of sum(w * g) w.r.t. the inputs and v, g the gradient of fn's output along v."""
    rng = np.random.default_rng(seed)
    xs = [lib.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*xs)
    v = lib.tensor(rng.standard_normal(tuple(y.shape)), requires_grad=True)
    g = lib.autograd.grad(y, xs, v, create_graph=True)
    inner = sum((gi * lib.tensor(rng.standard_normal(tuple(gi.shape)))).sum() for gi in g)
    return [r.detach().numpy() for r in lib.autograd.grad(inner, xs + [v])]


@pytest.mark.parametrize("name,upper,unit", [("solve_triangular", False, False), ("solve_triangular", True, True),
                                             ("solve_triangular_right", True, False), ("cholesky_solve", False, False),
                                             ("cholesky_solve", True, False), ("cholesky_inverse", True, False),
                                             ("cholesky_ex", False, False), ("cholesky_ex", True, False),
                                             ("matrix_exp", False, False)])
def test_solves_cholesky_ex_and_matrix_exp_differentiate_twice_beside_torch(name, upper, unit):
    torch = torch_or_skip()
    a, b = randn(2, 3, 3, seed=46) * 0.5 + 2 * np.eye(3), randn(2, 3, 2, seed=47)
    fns = {"solve_triangular": lambda m, lib: lambda x, y: m.solve_triangular(x, y, upper=upper, unitriangular=unit),
           "solve_triangular_right": lambda m, lib: lambda x, y: m.solve_triangular(x, y.mT, upper=upper, left=False),
           "cholesky_solve": lambda m, lib: lambda x, y: lib.cholesky_solve(y, x, upper),
           "cholesky_inverse": lambda m, lib: lambda x: lib.cholesky_inverse(x, upper),
           "cholesky_ex": lambda m, lib: lambda x: m.cholesky_ex(x @ x.mT, upper=upper).L,
           "matrix_exp": lambda m, lib: lambda x: m.matrix_exp(x * 0.4)}
    arrays = [a] if name in ("cholesky_inverse", "cholesky_ex", "matrix_exp") else [a, b]
    want = _second_derivatives(torch, fns[name](torch.linalg, torch), arrays)
    got = _second_derivatives(gt, fns[name](gt.linalg, gt), arrays)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11)


# ---- cond, tensorinv, tensorsolve, householder_product, matmul ----------------------------------
@pytest.mark.parametrize("p", [None, 2, -2, "fro", "nuc", math.inf, -math.inf, 1, -1])
def test_cond_beside_torch(p):
    torch = torch_or_skip()
    a = _well(2, 3, 3, seed=31)
    # torch 2.13 cannot differentiate cond for the norms through inv (an in-place write in its
    # backward): beside torch the values, beside finite differences the gradients
    spectral = p in (None, 2, -2)
    compare_with_torch(lambda x: gt.linalg.cond(x, p), lambda x: torch.linalg.cond(x, p), a, grad=spectral)
    check_grad(lambda x: gt.linalg.cond(x, p), a[0])
    if p in (None, 2, -2):
        compare_with_torch(lambda x: gt.linalg.cond(x, p), lambda x: torch.linalg.cond(x, p), randn(3, 5, seed=32))


def test_cond_of_singular_matrices_and_bad_orders():
    torch = torch_or_skip()
    a = np.stack([_well(2, 2, seed=33), [[1.0, 2.0], [2.0, 4.0]]])
    for p in ("fro", 1, math.inf):
        got, want = gt.linalg.cond(gt.tensor(a), p).numpy(), torch.linalg.cond(torch.tensor(a), p).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert got[1] == math.inf
    with pytest.raises(RuntimeError, match="invalid norm type"):
        gt.linalg.cond(gt.tensor(a), 3)
    with pytest.raises(RuntimeError, match="square"):
        gt.linalg.cond(gt.zeros(2, 3), "fro")


def test_tensorinv_and_tensorsolve_beside_torch():
    torch = torch_or_skip()
    sq = randn(6, 6, seed=35) + 3 * np.eye(6)
    compare_with_torch(lambda x: gt.linalg.tensorinv(x, 1), lambda x: torch.linalg.tensorinv(x, 1), sq)
    compare_with_torch(lambda x: gt.linalg.tensorinv(x, 2), lambda x: torch.linalg.tensorinv(x, 2),
                       sq.reshape(2, 3, 3, 2))
    compare_with_torch(lambda x, y: gt.linalg.tensorsolve(x, y), lambda x, y: torch.linalg.tensorsolve(x, y),
                       sq.reshape(2, 3, 6), randn(2, 3, seed=36))
    compare_with_torch(lambda x, y: gt.linalg.tensorsolve(x, y, dims=(0,)),
                       lambda x, y: torch.linalg.tensorsolve(x, y, dims=(0,)), sq.reshape(2, 3, 6).transpose(2, 0, 1),
                       randn(2, 3, seed=37))
    with pytest.raises(ValueError, match="prod"):
        gt.linalg.tensorinv(gt.zeros(2, 3), 1)
    with pytest.raises(ValueError, match="strictly positive"):
        gt.linalg.tensorinv(gt.zeros(2, 2), 0)


@pytest.mark.parametrize("shape,k", [((4, 4), 4), ((5, 3), 3), ((2, 5, 3), 2)])
def test_householder_product_beside_torch(shape, k):
    torch = torch_or_skip()
    a = randn(*shape, seed=38)
    tau = np.random.default_rng(39).uniform(0.5, 1.5, shape[:-2] + (k,))
    compare_with_torch(gt.linalg.householder_product, torch.linalg.householder_product, a, tau)
    # with geqrf's reflectors it is the Q of the QR decomposition
    ref, t = torch.geqrf(torch.tensor(a))
    q = gt.linalg.householder_product(gt.tensor(ref.numpy()), gt.tensor(t.numpy()))
    np.testing.assert_allclose(q.numpy(), torch.linalg.householder_product(ref, t).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("a_shape,tau_shape", [((2, 3), (2,)), ((2, 3), (4,)), ((4, 2, 3), (4, 2)), ((3, 2), (3,)),
                                                ((3, 2), (1, 2, 2)), ((2, 3, 2), (2,)), ((2, 3, 2), (3, 2))])
def test_householder_product_refuses_shapes_with_torchs_error(a_shape, tau_shape):
    # a wide A (or tau too long, of other dims or batch) was a ValueError only; torch raises
    # RuntimeError: gt's is both (a shape error, README "Errors"), with torch's words
    torch = torch_or_skip()
    with pytest.raises(RuntimeError) as want:
        torch.linalg.householder_product(torch.ones(a_shape), torch.ones(tau_shape))
    for fn in (gt.linalg.householder_product, gt.orgqr):
        with pytest.raises(RuntimeError) as got:
            fn(gt.ones(a_shape), gt.ones(tau_shape))
        assert isinstance(got.value, ValueError)
        assert str(want.value).replace("torch.", "") in str(got.value)
    with pytest.raises(IndexError):
        gt.linalg.householder_product(gt.ones(3, 2), gt.tensor(1.0))


@pytest.mark.parametrize("data,n", [([1, 2, 3], None), ([[0.5, 2.0], [1.0, -3.0]], None), ([2.0, -1.5], 4),
                                    (np.zeros((2, 0, 3)), None)])
def test_vander_beside_torch(data, n):
    torch = torch_or_skip()
    arr = np.asarray(data)
    if arr.dtype.kind == "f" and arr.size:
        compare_with_torch(lambda x: gt.linalg.vander(x, N=n), lambda x: torch.linalg.vander(x, N=n), arr)
        check_grad(lambda x: gt.linalg.vander(x, N=n), arr)
    got, want = gt.linalg.vander(gt.tensor(arr), N=n), torch.linalg.vander(torch.tensor(arr), N=n)
    assert got.dtype.name == str(want.dtype).split(".")[-1] and got.shape == tuple(want.shape)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.first_pass
def test_vander_refuses_what_torch_refuses():
    with pytest.raises(ValueError, match="greater than 1"):
        gt.linalg.vander(gt.tensor([1.0, 2.0]), N=1)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        gt.linalg.vander(gt.tensor(1.0))
    with pytest.raises(TypeError, match="bool"):
        gt.linalg.vander(gt.tensor([True, False]))


def test_matmul_alias_and_names():
    torch = torch_or_skip()
    compare_with_torch(gt.linalg.matmul, torch.linalg.matmul, randn(2, 3, 4, seed=40), randn(4, 2, seed=41))
    for name in ["matrix_exp", "lu", "lu_factor", "lu_factor_ex", "lu_solve", "solve_triangular", "cholesky_ex",
                 "inv_ex", "solve_ex", "cond", "tensorinv", "tensorsolve", "householder_product", "matmul", "vander"]:
        assert name in gt.linalg.__all__ and callable(getattr(gt.linalg, name)), name
    for name in ["matrix_exp", "lu", "lu_solve", "lu_unpack", "triangular_solve", "cholesky_solve",
                 "cholesky_inverse"]:
        assert callable(getattr(gt, name)) and hasattr(torch, name), name


# ---- a sharded batch ---------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["matrix_exp", "lu", "lu_solve", "solve_triangular", "cholesky_solve", "inv_ex"])
def test_a_sharded_batch_gives_the_unsharded_answer(op):
    a, b = _well(4, 3, 3, seed=42), randn(4, 3, 2, seed=43)
    fns = {
        "matrix_exp": lambda x, y: gt.linalg.matrix_exp(x * 0.3),
        "lu": lambda x, y: gt.linalg.lu(x).U,
        "lu_solve": lambda x, y: gt.linalg.lu_solve(*gt.linalg.lu_factor(x), y, adjoint=True),
        "solve_triangular": lambda x, y: gt.linalg.solve_triangular(x, y, upper=True),
        "cholesky_solve": lambda x, y: gt.cholesky_solve(y, x.tril()),
        "inv_ex": lambda x, y: gt.linalg.inv_ex(x).inverse,
    }

    def run(n):
        with use_mesh(n):
            x, y = gt.tensor(a, requires_grad=True), gt.tensor(b, requires_grad=True)
            xs, ys = (x.shard(0), y.shard(0)) if n > 1 else (x, y)
            out = fns[op](xs, ys)
            (out * out).sum().backward()
            return out.numpy(), x.grad.numpy(), (y.grad.numpy() if y.grad is not None else None)

    for want, got in zip(run(1), run(2)):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_non_contiguous_and_float32_inputs():
    torch = torch_or_skip()
    a, b = _well(2, 3, 3, seed=44), randn(2, 2, 3, seed=45)
    compare_with_torch(lambda x: gt.linalg.matrix_exp(x.mT * 0.5), lambda x: torch.linalg.matrix_exp(x.mT * 0.5), a,
                       dtype="float32")
    compare_with_torch(lambda x, y: gt.linalg.solve_triangular(x.mT, y.mT, upper=True),
                       lambda x, y: torch.linalg.solve_triangular(x.mT, y.mT, upper=True), a, b)
    compare_with_torch(lambda x: tuple(gt.linalg.lu(x.mT)), lambda x: tuple(torch.linalg.lu(x.mT)), a,
                       dtype="float32")
    compare_with_torch(lambda x, y: gt.linalg.lu_solve(*gt.linalg.lu_factor(x), y.mT),
                       lambda x, y: torch.linalg.lu_solve(*torch.linalg.lu_factor(x), y.mT), a, b, dtype="float32")
