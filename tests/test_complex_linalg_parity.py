"""Complex linear algebra beside torch, continued from tests/test_complex_ops_more_parity.py:
``cholesky``, ``eigh``/``eigvalsh``, ``slogdet``/``logdet``, ``solve_triangular``, the LU functions,
``lstsq``, ``matrix_power``, ``cond``, ``matrix_rank``, ``inv_ex``/``solve_ex`` of complex64 and
complex128 matrices with torch's values and gradients (``z.grad = dL/dx + i dL/dy``), checked
against torch autograd and finite differences; complex ``normal_``/``uniform_``/``pairwise_distance``;
and torch's refusals of a real and a complex tensor in ``linalg.vecdot``/``cross`` and of complex
dropout masks."""

import warnings

import numpy as np
import pytest

import gt
from test_complex_ops_more_parity import (_against_finite_differences, _close, _data,  # (skips without torch)
                                          _values_and_gradients_as_torch)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:torch.triangular_solve is deprecated")


def _hpd(n, dtype, seed=0):
    """A Hermitian positive-definite matrix (n, n)."""
    a = _data((n, n), np.complex128, seed)
    return (a @ a.conj().T + n * np.eye(n)).astype(dtype)


def _eigh_product(m, z):
    w, v = m.linalg.eigh(z)         # a loss that does not depend on the vectors' phases
    return v @ w.to(v.dtype).diag_embed() @ v.mH + (v.abs() ** 2).sum() + w.sum()


def _lu_solve(left, adjoint):
    return lambda m, a, b: m.linalg.lu_solve(*m.linalg.lu_factor(a), b, left=left, adjoint=adjoint)


HPD, TRI = "hpd", "tri"          # shapes standing for a Hermitian positive-definite / well-conditioned matrix
COMPUTED = {
    "cholesky": (lambda m, z: m.linalg.cholesky(z), [HPD]),
    "cholesky_upper": (lambda m, z: m.linalg.cholesky(z, upper=True), [HPD]),
    "cholesky_ex": (lambda m, z: m.linalg.cholesky_ex(z).L, [HPD]),
    "eigvalsh": (lambda m, z: m.linalg.eigvalsh(z), [HPD]),
    "eigvalsh_upper": (lambda m, z: m.linalg.eigvalsh(z, UPLO="U"), [(3, 3)]),
    "eigh": (_eigh_product, [HPD]),
    "slogdet": (lambda m, z: (lambda s, la: s * la)(*m.linalg.slogdet(z)), [(2, 3, 3)]),
    "logabsdet": (lambda m, z: m.linalg.slogdet(z).logabsdet, [(2, 3, 3)]),
    "logdet": (lambda m, z: m.logdet(z), [(3, 3)]),
    "solve_triangular": (lambda m, a, b: m.linalg.solve_triangular(a, b, upper=True), [TRI, (3, 2)]),
    "solve_triangular_right_unit": (lambda m, a, b: m.linalg.solve_triangular(
        a, b, upper=False, left=False, unitriangular=True), [(3, 3), (2, 3)]),
    "lu_factor": (lambda m, z: m.linalg.lu_factor(z).LU, [(2, 3, 3)]),
    "lu_wide": (lambda m, z: (lambda p, lo, up: lo.sum() + up)(*m.linalg.lu(z)), [(3, 4)]),
    "lu_tall": (lambda m, z: (lambda p, lo, up: lo + up.sum())(*m.linalg.lu(z)), [(4, 3)]),
    "lu_solve": (_lu_solve(True, False), [(3, 3), (3, 2)]),
    "lu_solve_adjoint": (_lu_solve(True, True), [(3, 3), (3, 2)]),
    "lu_solve_right": (_lu_solve(False, False), [(3, 3), (2, 3)]),
    "lu_solve_right_adjoint": (_lu_solve(False, True), [(3, 3), (2, 3)]),
    "cholesky_solve": (lambda m, b, f: m.cholesky_solve(b, m.linalg.cholesky(f)), [(3, 2), HPD]),
    "cholesky_solve_upper": (lambda m, b, f: m.cholesky_solve(b, f.triu() + 3 * m.eye(3), upper=True), [(3, 2), (3, 3)]),
    "cholesky_inverse": (lambda m, f: m.cholesky_inverse(m.linalg.cholesky(f), upper=False), [HPD]),
    "cholesky_inverse_upper": (lambda m, f: m.cholesky_inverse(f.triu(1) + 3 * m.eye(3, dtype=f.dtype), upper=True),
                               [(3, 3)]),
    "triangular_solve_transpose": (lambda m, b, a: m.triangular_solve(b, a, transpose=True).solution, [(3, 2), TRI]),
    "lstsq": (lambda m, a, b: m.linalg.lstsq(a, b).solution, [(4, 3), (4, 2)]),
    "lstsq_residuals": (lambda m, a, b: m.linalg.lstsq(a, b, driver="gelsd").residuals, [(4, 3), (4, 2)]),
    "inv_ex": (lambda m, z: m.linalg.inv_ex(z).inverse, [(3, 3)]),
    "solve_ex": (lambda m, a, b: m.linalg.solve_ex(a, b).result, [(3, 3), (3, 2)]),
    "matrix_power": (lambda m, z: m.linalg.matrix_power(z, 3), [(2, 3, 3)]),
    "matrix_power_negative": (lambda m, z: z.matrix_power(-2), [(3, 3)]),
    "cond": (lambda m, z: m.linalg.cond(z), [(2, 3, 3)]),
}


def _arrays(shapes, dtype):
    out = []
    for seed, s in enumerate(shapes, 1):
        a = _hpd(3, dtype, seed) if s == HPD else _data((3, 3) if s == TRI else s, dtype, seed)
        out.append(a + 3 * np.eye(3, dtype=dtype) if s == TRI else a)
    return out


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("name", sorted(COMPUTED))
def test_complex_linalg_values_and_gradients_as_torch(name, dtype):
    fn, shapes = COMPUTED[name]
    _values_and_gradients_as_torch(fn, _arrays(shapes, dtype), dtype, tol64=5e-4)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_linalg_values_without_gradients_as_torch(dtype):
    """Real results (eigenvalues, ranks, condition numbers, lstsq's extras) and the LU pivots; torch's
    own backward of ``cond(A, 'fro')`` fails (an in-place write in its graph), so values only."""
    a, h = _data((2, 3, 3), dtype, 3), _hpd(3, dtype, 4)
    for fn in (lambda m, x: m.linalg.cond(x, "fro"), lambda m, x: m.linalg.cond(x, float("inf")),
               lambda m, x: m.linalg.matrix_rank(x), lambda m, x: m.linalg.lu_factor(x).pivots,
               lambda m, x: m.linalg.lstsq(x[0], x[1], driver="gelsd").singular_values,
               lambda m, x: m.linalg.lstsq(x[0], x[1]).rank, lambda m, x: m.linalg.slogdet(x).sign):
        _close(fn(gt, gt.tensor(a)), fn(torch, torch.tensor(a)), 1e-5)
    for fn in (lambda m, x: m.linalg.matrix_rank(x, hermitian=True), lambda m, x: m.linalg.cholesky_ex(x).info):
        _close(fn(gt, gt.tensor(h)), fn(torch, torch.tensor(h)), 0)
    assert gt.linalg.cholesky_ex(gt.tensor(a[0])).info.item() == torch.linalg.cholesky_ex(torch.tensor(a[0])).info
    with pytest.raises(RuntimeError, match="positive-definite"):
        gt.linalg.cholesky(gt.tensor(a[0]))


def test_complex_gradients_against_finite_differences():
    """torch's convention without torch: ``z.grad = dL/dx + i dL/dy`` through cholesky, eigh,
    slogdet's complex sign, the triangular and LU solves."""
    a0 = _data((3, 3), np.complex128, 5) + 2 * np.eye(3)
    b = gt.tensor(_data((3, 2), np.complex128, 6))

    def loss(z):
        h = z @ z.mH + gt.eye(3, dtype=gt.complex128)
        sign, logabsdet = gt.linalg.slogdet(z)
        w, v = gt.linalg.eigh(h)
        return ((sign * (0.3 - 1j)).real + logabsdet + (gt.linalg.cholesky(h) * (1 + 2j)).real.sum() + w[0]
                + (v.abs() ** 3).sum() + gt.linalg.solve_triangular(z, b, upper=True).abs().sum()
                + gt.linalg.lu_solve(*gt.linalg.lu_factor(z), b, adjoint=True).real.sum())

    _against_finite_differences(loss, a0)


@pytest.mark.parametrize("dtype", ["float64", "complex64", "complex128"])
@pytest.mark.parametrize("fn", [lambda m, z: m.linalg.cholesky(z, upper=True),
                                lambda m, z: m.linalg.cholesky_ex(z, upper=True).L])
def test_cholesky_upper_reads_the_upper_triangle_as_torch(fn, dtype):
    """torch's ``upper=True`` factors the matrix its upper triangle stands for (LAPACK's uplo='U'):
    here the lower one is junk, not positive-definite."""
    a = np.stack([_hpd(3, np.complex128, seed) for seed in (1, 2)])
    a = (a.real if dtype == "float64" else a).astype(dtype)       # Re of a Hermitian p.d. matrix: symmetric p.d.
    a[:, [1, 2, 2], [0, 0, 1]] = 99 - 7j if a.dtype.kind == "c" else 99
    _values_and_gradients_as_torch(fn, [a], dtype, tol64=5e-4)


def test_eigh_gradient_refused_where_the_loss_depends_on_the_phases():
    """torch's gauge check: complex eigenvectors are defined up to e^{i phi} each."""
    h = _hpd(3, np.complex128, 2)
    for m in (torch, gt):
        z = m.tensor(h, requires_grad=True)
        with pytest.raises(RuntimeError, match="e\\^\\{i phi\\}"):
            m.linalg.eigh(z).eigenvectors.real.sum().backward()


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_normal_and_uniform_fill_complex_tensors_as_torch(dtype):
    """torch's: ``uniform_(a, b)`` draws both parts in [a, b); ``normal_(mean, std)`` each part from
    N(mean, std^2 / 2)."""
    gt.manual_seed(0)
    u = gt.zeros(100_000, dtype=getattr(gt, dtype)).uniform_(2, 5)
    n = gt.zeros(100_000, dtype=getattr(gt, dtype)).normal_(1, 2)
    assert u.dtype == n.dtype == getattr(gt, dtype)
    for part in (u.real.numpy(), u.imag.numpy()):
        assert 2 <= part.min() and part.max() < 5 and abs(part.mean() - 3.5) < 0.02
    for part in (n.real.numpy(), n.imag.numpy()):
        assert abs(part.mean() - 1) < 0.03 and abs(part.var() - 2) < 0.05
    with pytest.raises(RuntimeError, match="range"):
        gt.zeros(3, dtype=gt.complex64).uniform_(5, 2)


@pytest.mark.parametrize("p", [2.0, 3.0, float("inf")])
def test_pairwise_distance_of_complex_inputs_as_torch(p):
    z, w = _data((3, 4), np.complex64, 1), _data((3, 4), np.complex64, 2)
    outs = []
    for m in (gt, torch):
        a = m.tensor(z, requires_grad=True)
        y = m.nn.functional.pairwise_distance(a, m.tensor(w), p=p) + m.nn.functional.pairwise_distance(
            m.tensor(w.real), a)
        (y * m.tensor([1.0, 2.0, 3.0])).sum().backward()
        outs.append((y, a.grad))
    for ours, theirs in zip(*outs):
        _close(ours, theirs, 1e-4)


REFUSED = {
    "vecdot": lambda m, r, c: m.linalg.vecdot(r, c), "vecdot_complex_first": lambda m, r, c: m.linalg.vecdot(c, r),
    "cross": lambda m, r, c: m.linalg.cross(r, c), "cross_complex_first": lambda m, r, c: m.linalg.cross(c, r),
    "dropout": lambda m, r, c: m.nn.functional.dropout(c, 0.5), "Dropout": lambda m, r, c: m.nn.Dropout(0.2)(c),
    "dropout1d": lambda m, r, c: m.nn.functional.dropout1d(c, 0.5),
    "dropout2d": lambda m, r, c: m.nn.functional.dropout2d(c[None, None], 0.5),
    "alpha_dropout": lambda m, r, c: m.nn.functional.alpha_dropout(c, 0.5, True),
    "feature_alpha_dropout": lambda m, r, c: m.nn.functional.feature_alpha_dropout(c, 0.5, True),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_as_torch(name):
    real, cplx = np.ones((3, 3), np.float32), _data((3, 3), np.complex64)
    with pytest.raises((RuntimeError, NotImplementedError)) as theirs:
        REFUSED[name](torch, torch.tensor(real), torch.tensor(cplx))
    with pytest.raises(theirs.type, match="dtype|scalar type|not implemented"):
        REFUSED[name](gt, gt.tensor(real), gt.tensor(cplx))


def test_what_torch_still_computes():
    """Dropout of complex input where no mask is drawn, and same-kind vecdot/cross."""
    c = _data((3, 3), np.complex64)
    for fn in (lambda m, x: m.nn.functional.dropout(x, 0.5, training=False), lambda m, x: m.nn.functional.dropout(
            x, 1.0), lambda m, x: m.nn.functional.dropout(x[:0], 0.5), lambda m, x: m.nn.functional.dropout(x, 0.0),
               lambda m, x: m.linalg.vecdot(x, x), lambda m, x: m.linalg.cross(x, x * 1j)):
        _close(fn(gt, gt.tensor(c)), fn(torch, torch.tensor(c)), 1e-6)


SINGULAR = np.array([[1 + 1j, 2 + 2j], [1 + 1j, 2 + 2j]])


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_singular_complex_matrices_give_torchs_nans(dtype):
    """A singular complex matrix: ``inv_ex``/``solve_ex`` give ``nan+nanj`` (gt gave ``nan+0j``) and
    ``logdet`` gives ``-inf+nanj`` (gt gave ``-inf+0j``: the phase of 0 is undefined), as torch's."""
    a = SINGULAR.astype(dtype)
    fns = (lambda m, x: m.linalg.inv_ex(x).inverse, lambda m, x: m.linalg.solve_ex(x, m.ones_like(x[:, :1])).result,
           lambda m, x: m.logdet(x), lambda m, x: m.linalg.slogdet(x).sign)
    for fn in fns:
        _close(fn(gt, gt.tensor(a)), fn(torch, torch.tensor(a)), 0)
    assert np.isnan(gt.logdet(gt.tensor(a)).numpy().imag) and gt.logdet(gt.tensor(a)).real.item() == -np.inf


@pytest.mark.parametrize("dtype, fn", [(d, f) for d in ("float64", "complex64", "complex128")
                                       for f in ("logabsdet", "sign", "logdet") if (d, f) != ("float64", "sign")])
def test_slogdet_gradient_at_a_singular_matrix_is_not_finite_as_torch(dtype, fn):
    """torch's slogdet/logdet backward gives the singular matrices of a batch non-finite gradients
    (NaN for complex; its real ±inf signs come from its LU's rounding: gt gives NaN there) and the
    others their gradients; gt raised LinAlgError for the whole batch."""
    a = np.stack([SINGULAR, [[2, 1 - 1j], [1, 3 + 1j]]])
    a = (a.real if dtype == "float64" else a).astype(dtype)
    grads = []
    for m in (gt, torch):
        x = m.tensor(a, requires_grad=True)
        sign, logabsdet = m.linalg.slogdet(x)
        y = {"logabsdet": logabsdet, "sign": sign.imag if sign.is_complex() else sign, "logdet": m.logdet(x)}[fn]
        m.autograd.backward((y.real if y.is_complex() else y).sum())
        grads.append(x.grad.numpy())
    ours, theirs = grads
    assert not np.isfinite(ours[0]).any() and not np.isfinite(theirs[0]).any()
    if "complex" in dtype:
        np.testing.assert_array_equal(np.isnan(ours[0]), np.isnan(theirs[0]))
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)


def test_deprecated_lu_of_a_complex_matrix_as_torch():
    a = _data((3, 3), np.complex128, 2)
    with warnings.catch_warnings():     # torch warns of the deprecation once per process only
        warnings.simplefilter("ignore")
        want = torch.lu(torch.tensor(a), get_infos=True)
    for ours, theirs in zip(gt.lu(gt.tensor(a), get_infos=True), want):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
