"""torch.linalg's LU factorization, triangular and Cholesky solves and matrix exponential on
tensors (``gt.linalg.lu_factor``, ``lu``, ``lu_solve``, ``solve_triangular``, ``matrix_exp``...), and
torch's older top-level spellings (``gt.lu_unpack``, ``gt.triangular_solve``, ``gt.cholesky_solve``,
``gt.cholesky_inverse``, ``gt.lu``, ``gt.lu_solve``).

Matrices are the last two axes of float32, float64, complex64 or complex128 tensors; leading axes
are batch axes, broadcast between the two operands of a solve. Gradients are torch's
(gt/ops/linalg_factor_ops.py); those of ``lu``/``lu_factor`` for square, wide and tall inputs.
Pivots are int32 and 1-based, as LAPACK's and torch's.
"""

import collections

from gt import dtypes
from gt.autograd import function
from gt.backend import B as engine
from gt.backend.engine_linalg import LinAlgError
from gt.errors import DtypeError, ShapeError
from gt.ops import linalg_factor_ops as ops
from gt.ops._shapes import broadcast_shape
from gt.tensor.linalg_base import eye_like, matrix_input

# torch.return_types's names
LuFactorResult = collections.namedtuple("linalg_lu_factor", ["LU", "pivots"])
LuFactorExResult = collections.namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
LuResult = collections.namedtuple("linalg_lu", ["P", "L", "U"])
LuUnpackResult = collections.namedtuple("lu_unpack", ["P", "L", "U"])
TriangularSolveResult = collections.namedtuple("triangular_solve", ["solution", "cloned_coefficient"])


def _part(packed, start, shape):
    n = 1
    for d in shape:
        n *= d
    return packed[..., start:start + n].reshape(tuple(packed.shape[:-1]) + tuple(shape)), start + n


def _same_dtype(a, b, name, a_name="A", b_name="B"):
    if not isinstance(b, function.Tensor):
        raise TypeError(f"{name}(): argument '{b_name}' must be a tensor, not {type(b).__name__}")
    if b.dtype is a.dtype:
        return
    words = [dtypes.torch_type_name(t.dtype.name) for t in (a, b)]
    if name in ("cholesky_solve", "triangular_solve"):      # torch's words name B and L/A as b and A, b first
        raise RuntimeError(f"Expected b and A to have the same dtype, but found b of type {words[1]} and A of type "
                           f"{words[0]} instead.")
    raise RuntimeError(f"{name}: Expected {a_name} and {b_name} to have the same dtype, but found {a_name} of type "
                       f"{words[0]} and {b_name} of type {words[1]} instead")


def _broadcast(a, b, name):
    """``a`` and ``b`` expanded to their common batch shape (their last two axes kept)."""
    batch = broadcast_shape(name, tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    a = a if tuple(a.shape[:-2]) == batch else a.expand(batch + tuple(a.shape[-2:]))
    b = b if tuple(b.shape[:-2]) == batch else b.expand(batch + tuple(b.shape[-2:]))
    return a, b


def _info_error(info, name, message):
    """LinAlgError naming the first failing matrix (torch's "(Batch element i): ...") if any info > 0."""
    if not bool((info != 0).any()):
        return
    flat = info.reshape(-1).tolist()
    first = next(i for i, v in enumerate(flat) if v)
    where = f"(Batch element {first}): " if info.ndim else ""
    raise LinAlgError(f"{name}: {where}{message(flat[first])}")


def lu_factor_ex(A, *, pivot=True, check_errors=False):
    """``(LU, pivots, info)`` of A (..., m, n), k = min(m, n): L (unit diagonal, not stored) below
    the diagonal of LU, U on and above it, ``A = P @ L @ U`` with P from ``pivots`` (..., k) int32
    (1-based row swaps); info (...) int32 is 0, or i + 1 where U[i, i] is the first exact zero.
    ``check_errors=True`` raises LinAlgError then. Gradient through LU (torch's)."""
    A = matrix_input(A, "linalg.lu_factor_ex", complex_ok=True)
    if not pivot:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the CPU (as torch's)")
    m, n = A.shape[-2:]
    k = min(m, n)
    packed = ops.LuFactor.apply(A)
    lu, start = _part(packed, 0, (m, n))
    pivots, start = _part(packed, start, (k,))
    info, pivots = (t.detach().real if t.dtype.is_complex else t.detach() for t in (packed[..., start], pivots))
    info = info.to(dtypes.int32)
    if check_errors:
        _info_error(info, "linalg.lu_factor_ex", lambda i: f"U[{i},{i}] is zero")
    return LuFactorExResult(lu, pivots.to(dtypes.int32), info)


def lu_factor(A, *, pivot=True):
    """``(LU, pivots)`` of ``lu_factor_ex``; LinAlgError where a U has a zero on its diagonal (it
    could not be used in ``lu_solve``), as torch's."""
    lu, pivots, info = lu_factor_ex(matrix_input(A, "linalg.lu_factor", complex_ok=True), pivot=pivot)
    _info_error(info, "linalg.lu_factor", lambda i: f"U[{i},{i}] is zero and using it on lu_solve would result in "
                "a division by zero. If you still want to perform the factorization, consider calling "
                "linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")
    return LuFactorResult(lu, pivots)


def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True):
    """``(P (..., m, m), L (..., m, k), U (..., k, n))`` from ``lu_factor``'s result: ``A = P @ L @ U``.
    ``unpack_data=False``: L and U empty; ``unpack_pivots=False``: P empty. L and U carry LU's
    gradient. LU of any dtype, as torch's (it only copies and masks): integers, bools and half too."""
    lu = LU_data
    if not isinstance(lu, function.Tensor):
        matrix_input(lu, "lu_unpack")           # its TypeError
    if lu.ndim < 2:
        raise ShapeError(f"torch.lu_unpack: Expected tensor with 2 or more dimensions. Got size: {list(lu.shape)} "
                         "instead")
    if not isinstance(LU_pivots, function.Tensor) or LU_pivots.dtype != dtypes.int32:
        raise DtypeError(f"lu_unpack: LU_pivots is expected to be a tensor of int32 dtype, got "
                         f"{getattr(LU_pivots, 'dtype', type(LU_pivots).__name__)}")
    m, n = lu.shape[-2:]
    k = min(m, n)
    if tuple(LU_pivots.shape) != tuple(lu.shape[:-2]) + (k,):
        raise ShapeError(f"lu_unpack: LU_pivots of shape {tuple(LU_pivots.shape)} do not fit LU_data of shape "
                         f"{tuple(lu.shape)}: expected {tuple(lu.shape[:-2]) + (k,)}")
    empty = function.Tensor._wrap(engine.zeros((0,), lu.dtype))
    if unpack_data:
        low = lu[..., :, :k].tril(-1)
        low = low.logical_or(eye_like(lu, m, k)) if lu.dtype is dtypes.bool_ else low + eye_like(lu, m, k)
        up = lu[..., :k, :].triu()
    else:
        low = up = empty
    p = ops.Permutation.apply(LU_pivots, m, lu.dtype) if unpack_pivots else empty
    return LuUnpackResult(p, low, up)


def lu(A, *, pivot=True):
    """``(P, L, U)`` with ``A = P @ L @ U`` for A (..., m, n): P (..., m, m) a permutation, L (..., m, k)
    unit lower triangular, U (..., k, n) upper triangular. Never raises for a singular A. Gradients
    as torch's (square, wide and tall)."""
    lu_data, pivots, _ = lu_factor_ex(matrix_input(A, "linalg.lu", complex_ok=True), pivot=pivot)
    return LuResult(*lu_unpack(lu_data, pivots))


def lu_solve(LU, pivots, B, *, left=True, adjoint=False):
    """X with ``A @ X = B`` for the A whose ``lu_factor`` is ``(LU, pivots)`` (``adjoint``: ``A.mH @ X
    = B``; ``left=False``: ``X @ A = B``, or ``X @ A.mH = B``). B is (..., n, k) (``left=False``:
    (..., k, n)); batch axes broadcast. Gradients for LU and B (torch's)."""
    lu = matrix_input(LU, "linalg.lu_solve", True, True)
    _same_dtype(lu, B, "linalg.lu_solve", "LU", "B")
    if not isinstance(pivots, function.Tensor) or pivots.dtype != dtypes.int32:
        raise TypeError(f"linalg.lu_solve: pivots must be an int32 tensor, got "
                        f"{getattr(pivots, 'dtype', type(pivots).__name__)}")
    n = lu.shape[-1]
    if tuple(pivots.shape) != tuple(lu.shape[:-1]):
        raise ValueError(f"linalg.lu_solve: pivots of shape {tuple(pivots.shape)} do not fit LU of shape "
                         f"{tuple(lu.shape)}")
    rhs = B
    if rhs.ndim < 2 or rhs.shape[-2 if left else -1] != n:
        want = f"(..., {n}, k)" if left else f"(..., k, {n})"
        raise ValueError(f"linalg.lu_solve: incompatible shapes of LU {tuple(lu.shape)} and B {tuple(rhs.shape)}: "
                         f"expected B of shape {want}")
    b = rhs if left else rhs.mH      # X A = B: A^H X^H = B^H
    lu_b, b = _broadcast(lu, b, "linalg.lu_solve")
    if tuple(pivots.shape[:-1]) != tuple(lu_b.shape[:-2]):
        pivots = pivots.expand(tuple(lu_b.shape[:-1]))
    x = ops.LuSolve.apply(lu_b, pivots, b, adjoint if left else not adjoint)
    return x if left else x.mH


def solve_triangular(A, B, *, upper, left=True, unitriangular=False):
    """X with ``A @ X = B`` (``left=False``: ``X @ A = B``) for the triangular A (..., n, n): only its
    ``upper`` (or lower) triangle is read, and its diagonal is taken as ones when ``unitriangular``.
    B is (..., n, k) (``left=False``: (..., k, n)); batch axes broadcast. A zero on A's diagonal
    gives inf/NaN (no error, as torch). Gradients as torch's (A's on the triangle read)."""
    A = matrix_input(A, "linalg.solve_triangular", True, True)
    if not isinstance(B, function.Tensor):
        raise TypeError(f"linalg.solve_triangular(): argument 'B' must be a tensor, not {type(B).__name__}")
    # torch's kernel casts B into A's dtype (a complex B loses its imaginary part, with the cast's warning);
    # the cast is recorded, so B's gradient comes back in B's dtype, as torch's
    rhs = B
    if rhs.dtype is not A.dtype:
        rhs = rhs.to(A.dtype)
    if rhs.ndim < 2:
        raise ValueError(f"linalg.solve_triangular: the input tensor B must have at least 2 dimensions, got "
                         f"shape {tuple(rhs.shape)}")
    n = A.shape[-1]
    if rhs.shape[-2 if left else -1] != n:
        raise ValueError(f"linalg.solve_triangular: incompatible shapes of A {tuple(A.shape)} and B "
                         f"{tuple(rhs.shape)}")
    upper, unitriangular = bool(upper), bool(unitriangular)
    if left:
        a, b = _broadcast(A, rhs, "linalg.solve_triangular")
        return ops.SolveTriangular.apply(a, b, upper, unitriangular)
    a, b = _broadcast(A.mT, rhs.mT, "linalg.solve_triangular")        # X A = B: A^T X^T = B^T
    return ops.SolveTriangular.apply(a, b, not upper, unitriangular).mT


def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False):
    """torch.triangular_solve (deprecated in torch for ``linalg.solve_triangular``, whose arguments
    are the other way round): ``(solution, cloned_coefficient)``, X with ``A @ X = b`` (``transpose``:
    ``A.mT @ X = b``) and a copy of A."""
    A = matrix_input(A, "triangular_solve", True, True)
    _same_dtype(A, b, "triangular_solve")
    if transpose:
        x = solve_triangular(A.mT, b, upper=not upper, unitriangular=unitriangular)
    else:
        x = solve_triangular(A, b, upper=upper, unitriangular=unitriangular)
    return TriangularSolveResult(x, A.clone())


def cholesky_solve(B, L, upper=False):
    """X with ``A @ X = B`` for ``A = L @ L.mH`` (``upper``: ``A = U.mH @ U``) given its Cholesky
    factor L (..., n, n) (one triangle read) and B (..., n, k); batch axes broadcast. Gradients
    as torch's (L's a full matrix)."""
    L = matrix_input(L, "cholesky_solve", True, True)
    _same_dtype(L, B, "cholesky_solve", "L", "B")
    rhs = B                 # torch's argument name
    if rhs.ndim < 2 or rhs.shape[-2] != L.shape[-1]:
        raise ValueError(f"cholesky_solve: incompatible shapes of B {tuple(rhs.shape)} and L {tuple(L.shape)}")
    b, factor = _broadcast(rhs, L, "cholesky_solve")
    return ops.CholeskySolve.apply(b, factor, bool(upper))


def cholesky_inverse(L, upper=False):
    """The inverse (..., n, n) of ``A = L @ L.mH`` (``upper``: ``U.mH @ U``) from its Cholesky factor."""
    L = matrix_input(L, "cholesky_inverse", True, True)
    n = L.shape[-1]
    return cholesky_solve(eye_like(L, n).expand(tuple(L.shape)), L, upper)


def matrix_exp(A):
    """The matrix exponential ``sum_k A**k / k!`` of A (..., n, n). Its gradient is torch's: the
    top-right block of ``matrix_exp([[A.mT, G], [0, A.mT]])``."""
    if isinstance(A, function.Tensor) and A.dtype in dtypes.HALVES:
        # torch computes these (its CPU kernel's float16 values are wrong from 2 x 2 on: -2.1e4 for
        # exp([[.1, .2], [.3, .4]])); gt's are float32's, rounded once, gradients too
        return matrix_exp(A.to(dtypes.float32)).to(A.dtype)
    return ops.MatrixExp.apply(matrix_input(A, "linalg.matrix_exp", True, True))


def lu_legacy(A, pivot=True, get_infos=False):
    """torch.lu (``Tensor.lu``): ``(A_LU, pivots)`` of ``linalg.lu_factor_ex``, with ``infos`` too when
    ``get_infos``. A singular A is factored without an error, as torch's."""
    lu_data, pivots, info = lu_factor_ex(matrix_input(A, "lu", complex_ok=True), pivot=pivot)
    return (lu_data, pivots, info) if get_infos else (lu_data, pivots)


def lu_solve_legacy(b, LU_data, LU_pivots):
    """torch.lu_solve (``Tensor.lu_solve``): ``linalg.lu_solve(LU_data, LU_pivots, b)``."""
    return lu_solve(LU_data, LU_pivots, b)
