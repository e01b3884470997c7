"""torch.linalg's factorizations and solves on tensors (``gt.linalg``'s core), and torch's older
Tensor methods built on them: ``det``, ``slogdet``, ``logdet``, ``inverse``, ``pinverse``,
``cholesky``, ``qr``, ``svd``, ``matrix_power`` (``gt.det``... are these methods as functions).

Matrices are the last two axes; leading axes are batch axes (broadcast between ``A`` and ``B`` in
``solve``). Inputs are float32, float64, complex64 or complex128 tensors (conjugate transposes in
the complex gradients, torch's); others are refused with a TypeError, a wrong shape with a
ValueError, and a matrix LAPACK cannot handle (singular for ``inv``/``solve``, not
positive-definite for ``cholesky``) with ``gt.linalg.LinAlgError`` (a RuntimeError, as torch's).
Gradients are torch's formulas (gt/ops/linalg_ops.py and linalg_spectral.py); ``pinv`` and
``matrix_power`` are composed from differentiable pieces.
"""

import collections
import math

from gt import autograd, dtypes
from gt.autograd import function
from gt.backend import B
from gt.ops import linalg_ops as ops
from gt.ops import linalg_pinv, linalg_spectral
from gt.ops._shapes import broadcast_shape, normalize_axis
from gt.tensor.arithmetic import where
from gt.tensor import linalg_factor
from gt.tensor import householder
from gt.tensor.linalg_base import eye_like, matrix_input

# torch.return_types.linalg_slogdet / linalg_qr / linalg_eigh / linalg_svd / svd
SlogdetResult = collections.namedtuple("slogdet", ["sign", "logabsdet"])
QrResult = collections.namedtuple("qr", ["Q", "R"])
EighResult = collections.namedtuple("eigh", ["eigenvalues", "eigenvectors"])
SvdResult = collections.namedtuple("svd", ["U", "S", "Vh"])
SvdOldResult = collections.namedtuple("svd", ["U", "S", "V"])


def _part(packed, start, shape):
    """The part of a packed result (gt/ops/linalg_ops.py) at ``start`` with the matrix ``shape``."""
    n = 1
    for d in shape:
        n *= d
    return packed[..., start:start + n].reshape(tuple(packed.shape[:-1]) + tuple(shape)), start + n


def det(A):
    """The determinant of A (..., n, n): shape (...). Its gradient ``g det(A) inv(A)^T`` needs an
    invertible A (LinAlgError at a singular one, where torch's gradient is finite)."""
    return ops.Det.apply(matrix_input(A, "linalg.det", True, True))


def slogdet(A):
    """``(sign, logabsdet)`` of A (..., n, n), both (...): ``det = sign * exp(logabsdet)`` without
    overflow; sign 0 and logabsdet -inf for a singular A. A real A's sign (-1, 0 or 1) has no
    gradient; a complex A's sign is complex (``det / |det|``, with torch's gradient) and its
    logabsdet real."""
    A = matrix_input(A, "linalg.slogdet", True, True)
    if A.dtype.is_complex:
        packed = ops.ComplexSlogdet.apply(A)
        return SlogdetResult(packed[..., 0], packed[..., 1].real)
    return SlogdetResult(ops.SlogdetSign.apply(A), ops.LogAbsDet.apply(A))


def logdet(A):
    """``log(det(A))`` for A (..., n, n): NaN where det < 0, -inf where A is singular (torch's); a
    complex A's principal log ``log(sign) + logabsdet``, ``-inf+nanj`` where A is singular (torch's:
    the phase of 0 is undefined)."""
    sign, logabsdet = slogdet(A)
    if sign.dtype.is_complex:
        return where(sign == 0, complex(-math.inf, math.nan), sign.log() + logabsdet)
    return where(sign < 0, float("nan"), logabsdet)


def inv(A):
    """The inverse of A (..., n, n); LinAlgError ("singular") where A has none."""
    return ops.Inv.apply(matrix_input(A, "linalg.inv", True, True))


def solve(A, B, *, left=True):
    """X with ``A @ X = B`` (``left=False``: ``X @ A = B``, B (..., k, n)) for A (..., n, n) and
    B (..., n, k), or a vector B (n,) / (..., n) when its shape is A's without the last axis (torch's
    rule; not with ``left=False``, as torch); batch axes broadcast. LinAlgError ("singular") where A has no inverse."""
    A = matrix_input(A, "linalg.solve", True, True)
    rhs = B                 # torch's argument name; the engine is not used here
    if not isinstance(rhs, function.Tensor):
        raise TypeError(f"linalg.solve(): argument 'B' must be a tensor, not {type(rhs).__name__}")
    if rhs.dtype is not A.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
                           f"{dtypes.torch_type_name(A.dtype.name)} and B of type "
                           f"{dtypes.torch_type_name(rhs.dtype.name)} instead")
    vector = rhs.ndim == 1 or (rhs.ndim == A.ndim - 1 and rhs.shape == A.shape[:-1])
    if vector and not left:
        raise ValueError("linalg.solve: vector broadcasting of the left hand side is not supported for left=False "
                         f"(B of shape {tuple(rhs.shape)} for A of shape {tuple(A.shape)}); give B as (..., 1, n)")
    if not left:
        A = A.mT
    b = rhs.unsqueeze(-1) if vector else (rhs if left else rhs.mT)
    if b.ndim < 2 or b.shape[-2] != A.shape[-1]:
        raise ValueError(f"linalg.solve: incompatible shapes of A {tuple(A.shape)} and B {tuple(rhs.shape)}")
    batch = broadcast_shape("linalg.solve", A.shape[:-2], b.shape[:-2])
    A = A if tuple(A.shape[:-2]) == batch else A.expand(batch + tuple(A.shape[-2:]))
    b = b if tuple(b.shape[:-2]) == batch else b.expand(batch + tuple(b.shape[-2:]))
    x = ops.Solve.apply(A, b)
    return x.squeeze(-1) if vector else (x if left else x.mT)


def cholesky(A, *, upper=False):
    """L (..., n, n), lower triangular, with ``A = L @ L.mH`` for a symmetric (Hermitian)
    positive-definite A (its lower triangle is read; ``upper=True``: U = L.mH, from its upper
    triangle, as torch's). LinAlgError ("not positive-definite") otherwise."""
    return ops.Cholesky.apply(matrix_input(A, "linalg.cholesky", True, True), bool(upper))


def qr(A, mode="reduced"):
    """``(Q, R)`` with ``A = Q @ R`` for A (..., m, n), k = min(m, n): ``mode='reduced'`` Q (..., m, k),
    R (..., k, n); ``'complete'`` Q (..., m, m), R (..., m, n); ``'r'`` an empty Q and the reduced R
    (no gradient, as torch). Gradients as torch (none for ``'complete'`` with m > n, as torch)."""
    A = matrix_input(A, "linalg.qr", complex_ok=True)
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
                         "'r', or 'complete'")
    m, n = A.shape[-2:]
    k = m if mode == "complete" else min(m, n)
    packed = linalg_spectral.Qr.apply(A, mode == "complete", mode == "r")
    q, start = _part(packed, 0, (m, k))
    r, _ = _part(packed, start, (k, n))
    if mode == "r":
        q = function.Tensor._wrap(B.zeros((0,), A.dtype))
    return QrResult(q, r)


def eigh(A, UPLO="L"):
    """``(eigenvalues (..., n) ascending, eigenvectors (..., n, n) as columns)`` of the symmetric
    (Hermitian) A, read from its lower (``UPLO='L'``) or upper (``'U'``) triangle; the eigenvalues
    are real. The gradient is torch's: inf or NaN where eigenvalues repeat and the eigenvectors are
    used; for complex A a RuntimeError where the loss depends on the eigenvectors' phases."""
    A = matrix_input(A, "linalg.eigh", True, True)
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    n = A.shape[-1]
    packed = linalg_spectral.Eigh.apply(A, UPLO == "L")
    w, start = _part(packed, 0, (n,))
    w = w.real if w.dtype.is_complex else w         # packed beside complex vectors; real, as torch's
    return EighResult(w, _part(packed, start, (n, n))[0])


def eigvalsh(A, UPLO="L"):
    """The eigenvalues (..., n), ascending, of the symmetric A (``eigh``'s first result)."""
    return eigh(A, UPLO).eigenvalues


def _check_driver(A, driver, fn):
    """torch's ``driver=``: cuSOLVER's choice, so on the CPU only None (its error otherwise); a GPU
    engine computes the same decomposition whichever is named."""
    if driver is None:
        return
    if not A.is_cuda:
        raise RuntimeError(f"{fn}: keyword argument `driver=` is only supported on CUDA inputs with cuSOLVER backend.")
    if driver not in ("gesvd", "gesvdj", "gesvda"):
        raise RuntimeError(f"{fn}: driver must be None, 'gesvd', 'gesvdj' or 'gesvda', got {driver!r}")


def svd(A, full_matrices=True, *, driver=None):
    """``(U, S, Vh)`` with ``A = U @ diag(S) @ Vh`` for A (..., m, n), k = min(m, n): S (..., k)
    descending; U (..., m, k), Vh (..., k, n), or (m, m) and (n, n) with ``full_matrices`` (the
    default, as torch). Gradients as torch (NaN or inf where singular values repeat and U or Vh
    are used). ``driver``: see ``_check_driver``."""
    A = matrix_input(A, "linalg.svd", complex_ok=True)
    _check_driver(A, driver, "linalg.svd")
    m, n = A.shape[-2:]
    k = min(m, n)
    mu, vn = (m, n) if full_matrices else (k, k)
    packed = linalg_spectral.Svd.apply(A, bool(full_matrices))
    u, start = _part(packed, 0, (m, mu))
    s, start = _part(packed, start, (k,))
    s = s.real if s.dtype.is_complex else s         # packed beside complex U and Vh; real, as torch's
    return SvdResult(u, s, _part(packed, start, (vn, n))[0])


def svdvals(A, *, driver=None):
    """The singular values (..., k), descending, of A (..., m, n); gradient ``U diag(gS) Vh``."""
    return svd(matrix_input(A, "linalg.svdvals", complex_ok=True), full_matrices=False, driver=driver).S


def nuclear_norm(x, dim, keepdim):
    """torch's ``norm(p="nuc")``: the sum of the singular values over two dims (a matrix's own
    where ``dim`` is None)."""
    dims = (0, 1) if dim is None and x.ndim == 2 else dim
    if not isinstance(dims, (tuple, list)) or len(dims) != 2:
        raise RuntimeError(f"norm: p='nuc' needs a matrix (a 2-D tensor, or dim a 2-tuple), got dim={dim!r} for "
                           f"a tensor of shape {x.shape}")
    d0, d1 = (normalize_axis(d, x.ndim, "norm") for d in dims)
    out = svdvals(x.movedim((d0, d1), (-2, -1))).sum(-1)
    for d in sorted((d0, d1)) if keepdim else ():
        out = out.unsqueeze(d)
    return out


def _cutoff(top, m, n, atol, rtol, dtype):
    """``max(atol, rtol * top)``; ``atol``/``rtol`` numbers or tensors that broadcast over the batch
    (torch's: one tolerance per matrix), ``rtol`` eps * max(m, n) by default, 0 where ``atol`` > 0."""
    if rtol is None:
        default = (2.220446049250313e-16 if dtype == dtypes.float64 else 1.1920928955078125e-07) * max(m, n)
        if isinstance(atol, function.Tensor):
            rtol = where(atol > 0, 0.0, default)
        else:
            rtol = 0.0 if atol is not None and atol > 0 else default
    if not isinstance(atol, function.Tensor) and not isinstance(rtol, function.Tensor):
        return (top * rtol).clamp_min(0.0 if atol is None else float(atol))
    per_matrix = [t.unsqueeze(-1) if isinstance(t, function.Tensor) else t for t in (rtol, atol)]
    cut = top * per_matrix[0]
    return cut if atol is None else where(cut > per_matrix[1], cut, per_matrix[1])


def _legacy_tolerance(fn, value, name, atol, rtol):
    """torch's older positional tolerance (``pinv``'s ``rcond``, ``matrix_rank``'s ``tol``): a
    number or a tensor (one tolerance per matrix), never with ``atol``/``rtol``."""
    if atol is not None or rtol is not None:
        raise TypeError(f"{fn}(): pass {name} or atol/rtol, not both (got {name}={value!r}, atol={atol!r}, "
                        f"rtol={rtol!r})")
    return value if isinstance(value, function.Tensor) and value.numel() != 1 else float(value)


def pinv(A, rcond=None, hermitian=False, *, atol=None, rtol=None):
    """The Moore-Penrose pseudo-inverse (..., n, m) of A (..., m, n), through the SVD: singular values
    at or below ``max(atol, rtol * largest)`` count as 0; ``rtol`` defaults to eps * max(m, n) when
    neither is given, to 0 when ``atol`` > 0 (torch's). The gradient is torch's formula (no SVD in it:
    finite at repeated singular values, and torch's for a rank-deficient A too).
    ``hermitian=True`` asks for a square A and reads only its lower triangle, as torch (the upper
    one is taken to mirror it; the gradient is torch's, for all of A), through the SVD too. ``atol`` and
    ``rtol``: numbers, or tensors broadcast over the batch. ``rcond`` (torch's older form,
    positional): ``rtol=rcond``."""
    if rcond is not None:
        atol, rtol = 0.0, _legacy_tolerance("linalg.pinv", rcond, "rcond", atol, rtol)
    A = matrix_input(A, "linalg.pinv", square=bool(hermitian), complex_ok=True)
    fw = autograd.forward_ad
    tangent = fw.tangent_of(A) if fw.entered() else None
    if tangent is None:
        return _pinv(A, hermitian, atol, rtol)
    with fw.hidden():       # torch's pinv_jvp: finite where singular values repeat or vanish (the SVD's is not)
        out = _pinv(A, hermitian, atol, rtol)
        fw.set_tangent(out, _pinv_jvp(A, out, tangent.to(A.dtype)))
    return out


def _pinv_jvp(A, pinv_a, dA):
    """torch's pinv_jvp (the products of the smaller size), recorded where gradients are."""
    dah, ph = dA.mH, pinv_a.mH
    if A.shape[-2] <= A.shape[-1]:
        k = ph @ dah
        return pinv_a @ (k - k.mH - k @ (A @ pinv_a)) + (dah - pinv_a @ (A @ dah)) @ (ph @ pinv_a)
    k = pinv_a @ dA
    return (k.mH - k - (pinv_a @ A) @ k.mH) @ pinv_a + (pinv_a @ ph) @ (dah - (dah @ A) @ pinv_a)


def _pinv(A, hermitian, atol, rtol):
    """``pinv``'s values through the SVD, its gradient torch's formula (gt/ops/linalg_pinv.py)."""
    if hermitian:       # torch's values; its gradient flows to A whole, as its backward formula does
        # the lower triangle mirrored (conjugated: eigh reads only the real part of a complex diagonal)
        low = A.tril() if not A.dtype.is_complex else A.tril(-1) + A.diagonal(0, -2, -1).real.diag_embed()
        A = A + (low + A.tril(-1).mH - A).detach()
    with autograd.no_grad():
        values = _pinv_values(A.detach(), atol, rtol)
    if not (A.requires_grad and function.is_grad_enabled()):
        return values
    return linalg_pinv.Pinv.apply(A, values, lambda a: _pinv(a, False, atol, rtol))


def _pinv_values(A, atol, rtol):
    m, n = A.shape[-2:]
    u, s, vh = svd(A, full_matrices=False)
    keep = s > _cutoff(s[..., :1], m, n, atol, rtol, A.dtype)
    inverse = where(keep, 1.0 / where(keep, s, 1.0), 0.0)
    return vh.mH @ (inverse.unsqueeze(-1) * u.mH)


_INTEGER_DTYPES = (dtypes.int32, dtypes.int64)


def matrix_power(A, n):
    """A (..., m, m) to the integer power ``n`` by repeated squaring; ``n < 0`` inverts A first
    (LinAlgError if singular), ``n == 0`` gives the identity (a zero gradient, as torch's).
    Integer matrices take ``n >= 0`` (torch's products of integers)."""
    if isinstance(A, function.Tensor) and A.dtype in _INTEGER_DTYPES and A.ndim >= 2:
        if isinstance(n, int) and n < 0:
            raise TypeError(f"linalg.matrix_power: a negative power inverts A, which needs a float32 or "
                            f"float64 tensor, got {A.dtype.name}")
    else:
        A = matrix_input(A, "linalg.matrix_power", True, True)
    if A.shape[-1] != A.shape[-2]:
        matrix_input(A.to(dtypes.float64), "linalg.matrix_power", True)     # torch's shape error
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"linalg.matrix_power: n must be an int, got {type(n).__name__} ({n!r})")
    if n == 0:
        eye = eye_like(A, A.shape[-1]).expand(tuple(A.shape))
        # where() keeps the identity's values and gives A the zero gradient torch's has
        return where(eye == eye, eye, A) if A.requires_grad else eye
    base, result = (inv(A) if n < 0 else A), None
    n = abs(n)
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    return result


class LinalgMethods:
    def det(self):
        """``gt.linalg.det(self)``."""
        return det(self)

    def slogdet(self):
        """``gt.linalg.slogdet(self)``: ``(sign, logabsdet)``."""
        return slogdet(self)

    def logdet(self):
        """``log(det(self))``: NaN where det < 0 (torch's)."""
        return logdet(self)

    def inverse(self):
        """``gt.linalg.inv(self)``."""
        return inv(self)

    def pinverse(self, rcond=1e-15):
        """``gt.linalg.pinv(self, rtol=rcond)`` (torch's older spelling)."""
        return pinv(self, rtol=rcond)

    def cholesky(self, upper=False):
        """``gt.linalg.cholesky(self, upper=upper)``."""
        return cholesky(self, upper=upper)

    def qr(self, some=True):
        """``gt.linalg.qr(self, 'reduced' if some else 'complete')`` (torch.qr's convention)."""
        return qr(self, "reduced" if some else "complete")

    def svd(self, some=True, compute_uv=True):
        """``(U, S, V)`` with ``self = U @ diag(S) @ V.mT`` (torch.svd's old convention: V, not Vh;
        ``some=False``: full U and V). ``compute_uv=False``: U and V zero-filled (m, m) and (n, n)."""
        u, s, vh = svd(self, full_matrices=not some)
        if compute_uv:
            return SvdOldResult(u, s, vh.mT)
        m, n = self.shape[-2:]
        wrap, batch = function.Tensor._wrap, tuple(self.shape[:-2])
        return SvdOldResult(wrap(B.zeros(batch + (m, m), self.dtype)), s, wrap(B.zeros(batch + (n, n), self.dtype)))

    def matrix_power(self, n):
        """``gt.linalg.matrix_power(self, n)``."""
        return matrix_power(self, n)

    def matrix_exp(self):
        """``gt.linalg.matrix_exp(self)``."""
        return linalg_factor.matrix_exp(self)

    def lu(self, pivot=True, get_infos=False):
        """``gt.lu(self, pivot, get_infos)``: ``(A_LU, pivots[, infos])``."""
        return linalg_factor.lu_legacy(self, pivot, get_infos)

    def lu_solve(self, LU_data, LU_pivots):
        """``gt.linalg.lu_solve(LU_data, LU_pivots, self)``."""
        return linalg_factor.lu_solve(LU_data, LU_pivots, self)

    def triangular_solve(self, A, upper=True, transpose=False, unitriangular=False):
        """``gt.triangular_solve(self, A, ...)``: ``(solution, cloned_coefficient)``."""
        return linalg_factor.triangular_solve(self, A, upper, transpose, unitriangular)

    def cholesky_solve(self, input2, upper=False):
        """``gt.cholesky_solve(self, input2, upper)``: X with ``A @ X = self``, A's factor ``input2``."""
        return linalg_factor.cholesky_solve(self, input2, upper)

    def cholesky_inverse(self, upper=False):
        """``gt.cholesky_inverse(self, upper)``."""
        return linalg_factor.cholesky_inverse(self, upper)

    def geqrf(self):
        """``gt.geqrf(self)``: ``(a, tau)``, LAPACK's compact QR factorization (no gradient, torch's)."""
        return householder.geqrf(self)

    def orgqr(self, input2):
        """``gt.orgqr(self, input2)``: ``gt.linalg.householder_product(self, input2)``."""
        return householder.householder_product(self, input2)

    def ormqr(self, input2, input3, left=True, transpose=False):
        """``gt.ormqr(self, input2, input3, left, transpose)``: Q of the compact form (self, tau
        ``input2``) applied to ``input3``."""
        return householder.ormqr(self, input2, input3, left, transpose)
