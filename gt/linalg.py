"""``gt.linalg``: torch.linalg's functions, with its names, arguments and results.

    >>> import gt
    >>> A = gt.tensor([[4.0, 1.0], [1.0, 3.0]])
    >>> gt.linalg.det(A).item()
    11.0
    >>> gt.linalg.solve(A, gt.tensor([1.0, 2.0])).tolist()     # A x = b
    [0.09090909361839294, 0.6363636255264282]

Matrices are the last two axes of a float32, float64, complex64 or complex128 tensor; leading axes are
batch axes (complex gradients with conjugate transposes, torch's).
Gradients are torch's (gt/ops/linalg_ops.py and gt/ops/linalg_factor_ops.py for the
factorizations, solves and ``matrix_exp``; the norms, ``pinv``, ``matrix_power``, ``multi_dot``,
``cond``, ``householder_product``, ``vander`` are composed from differentiable ops). A matrix LAPACK cannot
handle raises ``gt.linalg.LinAlgError`` (a RuntimeError, as torch.linalg.LinAlgError).

Where gt differs from torch: ``eig``/``eigvals`` have no gradient; ``multi_dot``
multiplies left to right (torch picks the cheapest order: the same values up to rounding);
``pinv`` and ``matrix_rank`` take ``atol``/``rtol`` as numbers, not tensors; ``lstsq`` solves
through the pseudo-inverse whatever the ``driver``; the norms have no ``dtype=`` argument;
``pinv``'s gradient is torch's only for full-rank inputs; bad dtypes and shapes raise TypeError and ValueError (torch:
RuntimeError); ``inv_ex``/``solve_ex`` give NaN for a singular matrix (torch: unspecified values).
Not in gt: ``ldl_factor``, ``ldl_solve``.
"""

import collections
import math

from gt import dtypes
from gt.backend.engine_linalg import LinAlgError
from gt.tensor.functions import cat, stack
from gt.tensor.linalg_methods import (cholesky, det, eigh, eigvalsh, inv, matrix_input, matrix_power, pinv, qr,
                                      slogdet, solve, svd, svdvals, _cutoff, _legacy_tolerance)
from gt.tensor.creation import zeros
from gt.tensor import out_argument
from gt.tensor._args import norm_input
from gt.tensor.arithmetic import where
from gt.tensor.linalg_base import eye_like
from gt.tensor.shape import torch_node_name
from gt.tensor.householder import householder_product
from gt.tensor.linalg_factor import (lu, lu_factor, lu_factor_ex, lu_solve, matrix_exp, solve_triangular,
                                     _info_error)
from gt.ops.linalg_factor_ops import CholeskyEx
from gt.tensor.complex_functions import linalg_eig as eig, linalg_eigvals as eigvals
from gt.tensor.product_dtypes import autocast_casts, check_multi_dot
from gt.autograd import function, no_grad

# torch.return_types.linalg_lstsq
LstsqResult = collections.namedtuple("lstsq", ["solution", "residuals", "rank", "singular_values"])

__all__ = ["LinAlgError", "cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "lstsq", "matrix_norm",
           "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet", "solve", "svd", "svdvals",
           "vecdot", "vector_norm"]


def _float_input(x, name):
    if not isinstance(x, function.Tensor):
        raise TypeError(f"{name}(): argument 'x' must be a tensor, not {type(x).__name__}")
    if not x.dtype.differentiable:
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. Got "     # torch's
                           f"{dtypes.torch_type_name(x.dtype.name)} (cast it with .float())")
    return x


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The vector ``ord``-norm of ``x`` over ``dim`` (None: every element): ``sum(|x|**ord) **
    (1 / ord)`` for any real ord, ``max |x|`` for inf, ``min |x|`` for -inf, the count of nonzeros
    for 0 (a zero gradient). The 2-norm's gradient is 0 where the norm is 0 (torch's). ``dtype``:
    ``x`` is cast to it first, as torch's."""
    x = norm_input(_float_input(x, "linalg.vector_norm"), dtype)
    if isinstance(ord, bool) or not isinstance(ord, (int, float)):
        raise TypeError(f"linalg.vector_norm: ord must be a number, got {type(ord).__name__} ({ord!r})")
    if x.dtype in dtypes.HALVES and abs(ord) != math.inf:
        # summed in float32 and rounded back, as torch does (powers of half values overflow)
        return vector_norm(x.to(dtypes.float32), ord, dim, keepdim).to(x.dtype)
    dim = tuple(range(x.ndim)) if dim is None else dim
    if ord < 0 and ord != -math.inf:
        _refuse_empty_negative(x, ord, dim)
    if ord == 2:
        return x.norm(2, dim, keepdim)
    if ord == math.inf or ord == -math.inf:
        return x.norm(ord, dim, keepdim)
    if ord == 0:
        return x.norm(0, dim, keepdim)
    if ord == 1:
        return x.abs().sum(dim=dim, keepdim=keepdim)
    return x.norm(ord, dim, keepdim)      # torch's gradient at zeros (0, where the composed ops give NaN)


def _refuse_empty_negative(x, ord, dim):
    """torch's RuntimeError for a negative order over an empty dim (1 / 0 ** -p has no identity)."""
    for d in (dim,) if isinstance(dim, int) else dim:
        if -x.ndim <= d < x.ndim and x.shape[d] == 0:
            raise RuntimeError(f"linalg.vector_norm cannot compute the {ord} norm on the dimension {d % x.ndim} "
                               f"because this dimension is empty and the operation does not have an identity")


def _matrix_dims(A, dim, name):
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise ValueError(f"{name}: dim must be a 2-tuple of ints, got {dim!r}")
    d0, d1 = (d % A.ndim if -A.ndim <= d < A.ndim else None for d in dim)
    if d0 is None or d1 is None or d0 == d1:
        raise ValueError(f"{name}: dims {tuple(dim)} are not two different dims of a {A.ndim}-dim tensor")
    return d0, d1


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """The matrix ``ord``-norm of A over the two ``dim`` axes: ``'fro'`` (Frobenius), ``'nuc'`` (sum
    of singular values), 2 / -2 (largest / smallest singular value), 1 / -1 (max / min column sum
    of ``|A|``), inf / -inf (max / min row sum). ``dtype``: A is cast to it first, as torch's."""
    A = norm_input(_float_input(A, "linalg.matrix_norm"), dtype)
    if A.ndim < 2:
        raise ValueError(f"linalg.matrix_norm: the input tensor A must have at least 2 dimensions, got shape {A.shape}")
    d0, d1 = _matrix_dims(A, dim, "linalg.matrix_norm")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord not in ("nuc", 2, -2, 1, -1, math.inf, -math.inf) or isinstance(ord, bool):
        raise ValueError(f"linalg.matrix_norm: order {ord!r} not supported; expected 'fro', 'nuc', inf, -inf, "
                         "1, -1, 2 or -2")
    M = A.movedim((d0, d1), (-2, -1))
    if ord in ("nuc", 2, -2):
        s = svdvals(M)
        # the largest of no values is 0 for a norm (torch's); the smallest of none still raises
        out = s.sum(dim=-1) if ord == "nuc" or (ord == 2 and s.shape[-1] == 0) else \
            (s.amax(-1) if ord == 2 else s.amin(-1))
    else:
        sum_dim, pick = (-2, -1) if ord in (1, -1) else (-1, -2)
        sums = M.abs().sum(dim=sum_dim, keepdim=True)
        if ord > 0 and sums.shape[pick] == 0:
            out = sums.sum(dim=pick).squeeze(-1)
        else:
            out = (sums.amax(pick) if ord > 0 else sums.amin(pick)).squeeze(-1)
    if keepdim:
        for d in sorted((d0, d1)):
            out = out.unsqueeze(d)
    return out


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm: a vector norm when ``dim`` is an int (or ``dim`` is None and A is 1-D, or
    ord is None), a matrix norm when ``dim`` is a 2-tuple (or ``dim`` is None and A is 2-D); with
    ``ord=None`` and ``dim=None`` the 2-norm of every element. ``dtype``: A is cast to it first."""
    A = norm_input(_float_input(A, "linalg.norm"), dtype)
    if dim is None and ord is not None and A.ndim not in (1, 2):
        raise ValueError(f"linalg.norm: if dim is not specified but ord is, the input must be 1D or 2D, got "
                         f"shape {A.shape}")
    if isinstance(dim, int) or (dim is None and (ord is None or A.ndim == 1)) or \
            (isinstance(dim, (tuple, list)) and len(dim) == 1):
        if isinstance(ord, str):
            raise ValueError(f"linalg.norm: order {ord!r} is a matrix norm, but a vector norm was asked for")
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim)
    return matrix_norm(A, "fro" if ord is None else ord, (-2, -1) if dim is None else dim, keepdim)


def matrix_rank(A, tol=None, hermitian=False, *, atol=None, rtol=None):
    """The number of singular values (``hermitian``: |eigenvalues|) of A (..., m, n) above
    ``max(atol, rtol * largest)`` (``pinv``'s defaults), as int64 (...). No gradient. ``tol``
    (torch's older form, positional): ``atol=tol, rtol=0``."""
    if tol is not None:
        atol, rtol = _legacy_tolerance("linalg.matrix_rank", tol, "tol", atol, rtol), 0.0
    A = matrix_input(A, "linalg.matrix_rank", square=bool(hermitian), complex_ok=True)
    with no_grad():
        s = eigvalsh(A).abs() if hermitian else svdvals(A)
        top = s.amax(-1, keepdim=True) if s.shape[-1] else s.sum(dim=-1, keepdim=True)
        return (s > _cutoff(top, *A.shape[-2:], atol, rtol, A.dtype)).sum(dim=-1).to(dtypes.int64)


def multi_dot(tensors):
    """The product of ``tensors`` (a list of at least 2; the first may be 1-D (n,), the last 1-D
    (n,), the others 2-D). gt multiplies left to right (torch chooses the cheapest order)."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise ValueError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    for i, t in enumerate(tensors):
        allowed = (1, 2) if i in (0, len(tensors) - 1) else (2,)
        if t.ndim not in allowed:
            raise ValueError(f"multi_dot(): tensor {i} must be {' or '.join(f'{d}D' for d in allowed)} but got "
                             f"{t.ndim}D")
    check_multi_dot(tensors)
    out = tensors[0]
    for t in tensors[1:]:
        out = out @ t
    return out


def vecdot(x, y, *, dim=-1):
    """The dot products of ``x`` and ``y`` (broadcast) along ``dim``: ``(x.conj() * y).sum(dim)`` (torch's:
    a complex ``x`` is conjugated), shape the broadcast shape without ``dim``. Tensors of two dtypes
    raise RuntimeError, as torch's (cast one with ``.to()``), but under autocast."""
    if not x.dtype.differentiable:      # (y's dtype is checked by being x's)
        raise RuntimeError("linalg.vecdot: Expected a floating point or complex tensor as input. Got "
                           f"{dtypes.torch_type_name(x.dtype.name)}")
    if x.dtype is not y.dtype and not autocast_casts(x, y):
        raise RuntimeError(f"linalg.vecdot: Expected x and y to have the same dtype, but found x of type "
                           f"{dtypes.torch_type_name(x.dtype.name)} and y of type "
                           f"{dtypes.torch_type_name(y.dtype.name)} instead")
    if x.shape[dim] != y.shape[dim] and 1 not in (x.shape[dim], y.shape[dim]):
        raise ValueError(f"linalg.vecdot: x and y must have the same size along dim {dim}, got {x.shape[dim]} "
                         f"and {y.shape[dim]}")
    return (x.conj() * y).sum(dim=dim)


@torch_node_name("LinalgCrossBackward0")
def cross(input, other, *, dim=-1):
    """The cross products of the 3-vectors of ``input`` and ``other`` (broadcast) along ``dim``; a
    real and a complex tensor raise RuntimeError, as torch's."""
    if input.dtype is not other.dtype:
        raise RuntimeError(f"expected scalar type {dtypes.torch_type_name(input.dtype.name)} but found "
                           f"{dtypes.torch_type_name(other.dtype.name)}")
    if input.ndim != other.ndim:
        raise ValueError(f"linalg.cross: inputs must have the same number of dimensions, got {input.ndim} and "
                         f"{other.ndim}")
    if input.shape[dim] != 3 or other.shape[dim] != 3:
        raise ValueError(f"linalg.cross: inputs dimension {dim} must have length 3, got {input.shape[dim]} "
                         f"and {other.shape[dim]}")
    a0, a1, a2 = input.unbind(dim)
    b0, b1, b2 = other.unbind(dim)
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], dim=dim % input.ndim)


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """The diagonals of A along ``dim1`` and ``dim2`` (a view; ``A.diagonal(offset, dim1, dim2)``)."""
    return A.diagonal(offset, dim1, dim2)


def lstsq(A, B, rcond=None, *, driver=None):
    """The least-squares solution X of ``A @ X = B`` for A (..., m, n) and B (..., m, k) (or (..., m)
    when B has one dim fewer than A), torch's ``(solution, residuals, rank, singular_values)``: the
    squared residuals (..., k) for m > n (``'gels'``, or ``'gelsd'``/``'gelss'`` when every A has full
    rank), the rank (``'gelsy'``, the default, ``'gelsd'``, ``'gelss'``) and the singular values
    (``'gelsd'``, ``'gelss'``); the others are empty, as torch. gt computes X as ``pinv(A) @ B``
    for every driver (singular values at or below ``rcond`` times the largest count as 0; default
    eps * max(m, n)): torch's X for a full-rank A and for ``'gelsd'``/``'gelss'``, the minimum-norm
    X where ``'gelsy'`` gives a basic one for a rank-deficient A. Gradients through ``pinv``."""
    A = matrix_input(A, "linalg.lstsq", complex_ok=True)
    rhs = B                 # torch's argument name
    driver = "gelsy" if driver is None else driver
    if driver not in ("gels", "gelsy", "gelsd", "gelss"):
        raise ValueError(f"linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, gelss), got "
                         f"{driver!r}")
    if not isinstance(rhs, function.Tensor):
        raise TypeError(f"linalg.lstsq: B must be a tensor of A's dtype {A.dtype.name}, got {type(rhs).__name__}")
    if rhs.dtype is not A.dtype:
        raise RuntimeError(f"torch.linalg.lstsq: Expected input and other to have the same dtype, but got input's "
                           f"dtype {dtypes.torch_type_name(A.dtype.name)} and other's dtype "
                           f"{dtypes.torch_type_name(rhs.dtype.name)}")
    vector = rhs.ndim == A.ndim - 1
    b = rhs.unsqueeze(-1) if vector else rhs
    m, n = A.shape[-2:]
    if b.ndim != A.ndim or b.shape[-2] != m:
        raise ValueError(f"linalg.lstsq: incompatible shapes of A {tuple(A.shape)} and B {tuple(rhs.shape)}: B "
                         f"must be (..., {m}, k) or (..., {m})")
    x = pinv(A, rtol=rcond) @ b
    empty = zeros(0, dtype=dtypes.REAL_OF.get(A.dtype.name, A.dtype))      # real, as torch's
    rank = matrix_rank(A, rtol=rcond) if driver != "gels" else zeros(0, dtype=dtypes.int64)
    full = m > n and (driver == "gels" or (driver != "gelsy" and bool((rank == n).all())))
    r = A @ x - b
    residuals = ((r.abs() if r.dtype.is_complex else r) ** 2).sum(dim=-2) if full else empty
    values = svdvals(A) if driver in ("gelsd", "gelss") else empty
    return LstsqResult(x.squeeze(-1) if vector else x, residuals, rank, values)


# ---- the rest of torch.linalg: LU, triangular solves, the _ex variants, cond, tensor solves ----------------
CholeskyExResult = collections.namedtuple("linalg_cholesky_ex", ["L", "info"])
InvExResult = collections.namedtuple("linalg_inv_ex", ["inverse", "info"])
SolveExResult = collections.namedtuple("linalg_solve_ex", ["result", "info"])


def cholesky_ex(A, *, upper=False, check_errors=False):
    """``(L, info)``: ``cholesky`` without the error: info (...) int32 is 0, or i + 1 where the
    leading minor of order i + 1 of that matrix is not positive-definite (its L is then
    unspecified, as torch's; ``upper=True`` reads A's upper triangle, as torch's). ``check_errors=True``
    raises LinAlgError instead. Cholesky's gradient."""
    A = matrix_input(A, "linalg.cholesky_ex", True, True)
    n = A.shape[-1]
    packed = CholeskyEx.apply(A, bool(upper))
    low = packed[..., :n * n].reshape(tuple(A.shape))
    info = packed[..., n * n].detach()
    info = (info.real if info.dtype.is_complex else info).to(dtypes.int32)
    if check_errors:
        _info_error(info, "linalg.cholesky_ex", lambda i: "The factorization could not be completed because the "
                    f"input is not positive-definite (the leading minor of order {i} is not positive-definite).")
    return CholeskyExResult(low, info)


def _singular_info(A):
    """LAPACK getrf's info of each matrix of A (int32, no gradient): i + 1 where U[i, i] is 0."""
    return lu_factor_ex(A.detach()).info


def inv_ex(A, *, check_errors=False):
    """``(inverse, info)``: ``inv`` without the error: info (...) int32 is 0, or i + 1 where U[i, i]
    of A's LU is zero (A singular; its inverse is NaN here, ``nan+nanj`` if complex: torch's LAPACK
    gives these, its docs leave them unspecified). ``check_errors=True`` raises LinAlgError instead.
    ``inv``'s gradient."""
    A = matrix_input(A, "linalg.inv_ex", True, True)
    info = _singular_info(A)
    if check_errors:
        _info_error(info, "linalg.inv_ex", lambda i: f"The diagonal element {i} is zero, the inversion could not "
                    "be completed because the input matrix is singular.")
    bad = (info != 0).unsqueeze(-1).unsqueeze(-1)
    if not bool(bad.any()):
        return InvExResult(inv(A), info)
    eye = eye_like(A, A.shape[-1])
    return InvExResult(where(bad, _nan(A), inv(where(bad, eye, A))), info)


def solve_ex(A, B, *, left=True, check_errors=False):
    """``(result, info)``: ``solve`` without the error: info (...) int32 (A's batch shape) is 0, or
    i + 1 where U[i, i] of A's LU is zero (A singular; its result is NaN here, unspecified in
    torch). ``check_errors=True`` raises LinAlgError instead. ``solve``'s gradient."""
    A = matrix_input(A, "linalg.solve_ex", True, True)
    info = _singular_info(A)
    if check_errors:
        _info_error(info, "linalg.solve_ex", lambda i: f"The solver failed because the input matrix is singular "
                    f"(U[{i},{i}] is zero).")
    bad = info != 0
    if not bool(bad.any()):
        return SolveExResult(solve(A, B, left=left), info)
    bad_m = bad.unsqueeze(-1).unsqueeze(-1)
    x = solve(where(bad_m, eye_like(A, A.shape[-1]), A), B, left=left)
    vector = x.ndim == A.ndim - 1 or x.ndim == 1
    mask = bad.unsqueeze(-1) if vector else bad_m
    return SolveExResult(where(mask, _nan(x), x), info)


def _nan(t):
    """NaN in ``t``'s kind: ``nan+nanj`` for a complex ``t`` (torch's singular results), else ``nan``."""
    return complex(math.nan, math.nan) if t.dtype.is_complex else math.nan


def cond(A, p=None):
    """The condition number of A in the matrix norm ``p``: ``norm(A, p) * norm(inv(A), p)``; for
    ``p`` None, 2 or -2 the ratio of the largest to the smallest singular value (its inverse for -2),
    for any A (..., m, n); 'fro', 'nuc', inf, -inf, 1, -1 need square A and give inf where A is
    singular (as torch). Gradients through the SVD or ``inv``."""
    A = matrix_input(A, "linalg.cond", complex_ok=True)
    empty = A.shape[-1] == 0 or A.shape[-2] == 0          # torch's cond of an empty matrix: 0
    if p is None or (p in (2, -2) and not isinstance(p, bool)):
        if empty:
            return A.sum(dim=(-2, -1))
        s = svdvals(A)
        big, small = s[..., 0], s[..., -1]
        return small / big if p == -2 else big / small
    if isinstance(p, bool) or p not in ("fro", "nuc", math.inf, -math.inf, 1, -1):
        raise RuntimeError(f"linalg.cond got an invalid norm type: {p!r} (expected None, 2, -2, 'fro', 'nuc', "
                           "inf, -inf, 1 or -1)")
    if empty and not isinstance(p, str):        # torch answers before its square check, 'fro'/'nuc' after
        return A.sum(dim=(-2, -1))
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.cond(ord={p}): A must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")
    if empty:
        return A.sum(dim=(-2, -1))
    inverse, info = inv_ex(A)
    bad = info != 0
    if bool(bad.any()):
        inverse = where(bad.unsqueeze(-1).unsqueeze(-1), 0.0, inverse)
    out = matrix_norm(A, p) * matrix_norm(inverse, p)
    return where(bad, math.inf, out) if bool(bad.any()) else out


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def tensorinv(A, ind=2):
    """The tensor X with ``tensordot(X, A, ind)`` the identity: A reshaped to the square matrix
    (prod(A.shape[:ind]), prod(A.shape[ind:])), inverted, reshaped to A.shape[ind:] + A.shape[:ind]."""
    A = _float_input(A, "linalg.tensorinv")
    if isinstance(ind, bool) or not isinstance(ind, int) or ind <= 0:
        raise ValueError(f"linalg.tensorinv: expected a strictly positive integer for 'ind', but got {ind!r}")
    rows, cols = _prod(A.shape[:ind]), _prod(A.shape[ind:])
    if rows != cols:
        raise ValueError(f"linalg.tensorinv: expected self to satisfy the requirement prod(self.shape[ind:]) == "
                         f"prod(self.shape[:ind]), but got {cols} != {rows} (shape {tuple(A.shape)}, ind={ind})")
    return inv(A.reshape(rows, cols)).reshape(tuple(A.shape[ind:]) + tuple(A.shape[:ind]))


def tensorsolve(A, B, dims=None):
    """The tensor X with ``tensordot(A, X, X.ndim) == B``: X has A's shape after B's dims; ``dims``
    (axes of A) are moved to the end of A first."""
    A = _float_input(A, "linalg.tensorsolve")
    rhs = B                 # torch's argument name
    if dims is not None:
        dims = [d % A.ndim for d in dims]
        A = A.movedim(tuple(dims), tuple(range(A.ndim - len(dims), A.ndim)))
    out_shape = tuple(A.shape[rhs.ndim:])
    rows, cols = _prod(rhs.shape), _prod(out_shape)
    # torch asks only for matching sizes: A's leading dims are read in B's order, whatever their shape
    if _prod(A.shape[:rhs.ndim]) != rows or rows != cols:
        raise ValueError(f"linalg.tensorsolve: expected self to satisfy the requirement "
                         f"prod(result.shape) == prod(other.shape), got A of shape {tuple(A.shape)} (dims moved "
                         f"last) and B of shape {tuple(rhs.shape)}")
    return solve(A.reshape(rows, cols), rhs.reshape(rows)).reshape(out_shape)


def vander(x, *, N=None):
    """The Vandermonde matrices (..., n, N) of the vectors x (..., n): column j holds ``x ** j``
    (increasing powers, torch.linalg's order; ``N`` defaults to n and must be at least 2).
    Integer inputs give int64 (torch's). Gradient through a cumulative product."""
    if not isinstance(x, function.Tensor):
        raise TypeError(f"linalg.vander(): argument 'x' must be a tensor, not {type(x).__name__}")
    if x.dtype == dtypes.bool_:
        raise TypeError("linalg.vander supports floating point and integer tensors, but got bool")
    if x.ndim == 0:
        raise ValueError("linalg.vander: x must have at least 1 dimension, got a 0-d tensor")
    N = x.shape[-1] if N is None else N
    if isinstance(N, bool) or not isinstance(N, int) or N <= 1:
        raise ValueError(f"linalg.vander: N must be greater than 1, got {N!r}")
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        x = x.to(dtypes.int64)    # torch's int64 powers (uint16/32/64 too, which have no product kernel)
    column = x.unsqueeze(-1)
    ones = (column * 0 + 1).detach()
    return cat([ones, column.expand(tuple(x.shape) + (N - 1,))], dim=-1).cumprod(-1)


def matmul(input, other):
    """``input @ other`` (torch.linalg.matmul, an alias of torch.matmul)."""
    return input @ other


__all__ += ["cholesky_ex", "cond", "householder_product", "inv_ex", "lu", "lu_factor", "lu_factor_ex", "lu_solve",
            "matmul", "matrix_exp", "solve_ex", "eig", "eigvals", "solve_triangular", "tensorinv", "tensorsolve", "vander"]

# torch's out= keyword on every public function here (gt/tensor/out_argument.py), as gt's own
_public = {name: globals()[name] for name in __all__}
out_argument.accept_out(_public, prefix="linalg.")
globals().update(_public)
