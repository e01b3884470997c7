"""``gt.linalg``: torch.linalg's functions, with its names, arguments and results.

    >>> import gt
    >>> A = gt.tensor([[4.0, 1.0], [1.0, 3.0]])
    >>> gt.linalg.det(A).item()
    11.0
    >>> gt.linalg.solve(A, gt.tensor([1.0, 2.0])).tolist()     # A x = b
    [0.09090909361839294, 0.6363636255264282]

Matrices are the last two axes of a float32 or float64 tensor; leading axes are batch axes.
Gradients are torch's (gt/ops/linalg_ops.py for the factorizations; the norms, ``pinv``,
``matrix_power``, ``multi_dot`` are composed from differentiable ops). A matrix LAPACK cannot
handle raises ``gt.linalg.LinAlgError`` (a RuntimeError, as torch.linalg.LinAlgError).

Where gt differs from torch: no complex tensors (so no ``eig``, ``eigvals``); ``multi_dot``
multiplies left to right (torch picks the cheapest order: the same values up to rounding);
``pinv`` and ``matrix_rank`` take ``atol``/``rtol`` as numbers, not tensors; ``lstsq`` solves
through the pseudo-inverse whatever the ``driver``; the norms have no ``dtype=`` argument;
``pinv``'s gradient is torch's only for full-rank inputs; bad dtypes and shapes raise TypeError and ValueError (torch:
RuntimeError). Not in gt: ``lu``, ``lu_factor``, ``ldl_factor``, ``householder_product``, ``matrix_exp``,
``tensorinv``, ``tensorsolve``, ``cond``, ``vander``, ``solve_triangular``, ``cholesky_ex``,
``inv_ex``, ``solve_ex``.
"""

import collections
import math

from gt import dtypes
from gt.backend.engine_linalg import LinAlgError
from gt.tensor.functions import stack
from gt.tensor.linalg_methods import (cholesky, det, eigh, eigvalsh, inv, matrix_input, matrix_power, pinv, qr,
                                      slogdet, solve, svd, svdvals, _cutoff)
from gt.tensor.creation import zeros
from gt.autograd import function, no_grad

# torch.return_types.linalg_lstsq
LstsqResult = collections.namedtuple("lstsq", ["solution", "residuals", "rank", "singular_values"])

__all__ = ["LinAlgError", "cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "lstsq", "matrix_norm",
           "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet", "solve", "svd", "svdvals",
           "vecdot", "vector_norm"]


def _float_input(x, name):
    if not isinstance(x, function.Tensor):
        raise TypeError(f"{name}(): argument 'x' must be a tensor, not {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name}: expected a floating point tensor as input, got {x.dtype.name}")
    return x


def vector_norm(x, ord=2, dim=None, keepdim=False):
    """The vector ``ord``-norm of ``x`` over ``dim`` (None: every element): ``sum(|x|**ord) **
    (1 / ord)`` for any real ord, ``max |x|`` for inf, ``min |x|`` for -inf, the count of nonzeros
    for 0 (no gradient). The 2-norm's gradient is 0 where the norm is 0 (torch's)."""
    x = _float_input(x, "linalg.vector_norm")
    if isinstance(ord, bool) or not isinstance(ord, (int, float)):
        raise TypeError(f"linalg.vector_norm: ord must be a number, got {type(ord).__name__} ({ord!r})")
    dim = tuple(range(x.ndim)) if dim is None else dim
    if ord == 2:
        return x.norm(2, dim, keepdim)
    if ord == math.inf:
        return x.abs().amax(dim, keepdim)
    if ord == -math.inf:
        return x.abs().amin(dim, keepdim)
    if ord == 0:
        return (x != 0).to(x.dtype).sum(dim=dim, keepdim=keepdim).detach()
    if ord == 1:
        return x.abs().sum(dim=dim, keepdim=keepdim)
    return (x.abs() ** ord).sum(dim=dim, keepdim=keepdim) ** (1.0 / ord)


def _matrix_dims(A, dim, name):
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise ValueError(f"{name}: dim must be a 2-tuple of ints, got {dim!r}")
    d0, d1 = (d % A.ndim if -A.ndim <= d < A.ndim else None for d in dim)
    if d0 is None or d1 is None or d0 == d1:
        raise ValueError(f"{name}: dims {tuple(dim)} are not two different dims of a {A.ndim}-dim tensor")
    return d0, d1


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False):
    """The matrix ``ord``-norm of A over the two ``dim`` axes: ``'fro'`` (Frobenius), ``'nuc'`` (sum
    of singular values), 2 / -2 (largest / smallest singular value), 1 / -1 (max / min column sum
    of ``|A|``), inf / -inf (max / min row sum)."""
    A = _float_input(A, "linalg.matrix_norm")
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
        out = s.sum(dim=-1) if ord == "nuc" else (s.amax(-1) if ord == 2 else s.amin(-1))
    else:
        sum_dim, pick = (-2, -1) if ord in (1, -1) else (-1, -2)
        sums = M.abs().sum(dim=sum_dim, keepdim=True)
        out = (sums.amax(pick) if ord > 0 else sums.amin(pick)).squeeze(-1)
    if keepdim:
        for d in sorted((d0, d1)):
            out = out.unsqueeze(d)
    return out


def norm(A, ord=None, dim=None, keepdim=False):
    """torch.linalg.norm: a vector norm when ``dim`` is an int (or ``dim`` is None and A is 1-D, or
    ord is None), a matrix norm when ``dim`` is a 2-tuple (or ``dim`` is None and A is 2-D); with
    ``ord=None`` and ``dim=None`` the 2-norm of every element."""
    A = _float_input(A, "linalg.norm")
    if dim is None and ord is not None and A.ndim not in (1, 2):
        raise ValueError(f"linalg.norm: if dim is not specified but ord is, the input must be 1D or 2D, got "
                         f"shape {A.shape}")
    if isinstance(dim, int) or (dim is None and (ord is None or A.ndim == 1)) or \
            (isinstance(dim, (tuple, list)) and len(dim) == 1):
        if isinstance(ord, str):
            raise ValueError(f"linalg.norm: order {ord!r} is a matrix norm, but a vector norm was asked for")
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim)
    return matrix_norm(A, "fro" if ord is None else ord, (-2, -1) if dim is None else dim, keepdim)


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False):
    """The number of singular values (``hermitian``: |eigenvalues|) of A (..., m, n) above
    ``max(atol, rtol * largest)`` (``pinv``'s defaults), as int64 (...). No gradient."""
    A = matrix_input(A, "linalg.matrix_rank", square=bool(hermitian))
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
    out = tensors[0]
    for t in tensors[1:]:
        out = out @ t
    return out


def vecdot(x, y, *, dim=-1):
    """The dot products of ``x`` and ``y`` (broadcast) along ``dim``: ``(x * y).sum(dim)``, shape the
    broadcast shape without ``dim``."""
    if x.shape[dim] != y.shape[dim] and 1 not in (x.shape[dim], y.shape[dim]):
        raise ValueError(f"linalg.vecdot: x and y must have the same size along dim {dim}, got {x.shape[dim]} "
                         f"and {y.shape[dim]}")
    return (x * y).sum(dim=dim)


def cross(input, other, *, dim=-1):
    """The cross products of the 3-vectors of ``input`` and ``other`` (broadcast) along ``dim``."""
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
    A = matrix_input(A, "linalg.lstsq")
    rhs = B                 # torch's argument name
    driver = "gelsy" if driver is None else driver
    if driver not in ("gels", "gelsy", "gelsd", "gelss"):
        raise ValueError(f"linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, gelss), got "
                         f"{driver!r}")
    if not isinstance(rhs, function.Tensor) or rhs.dtype != A.dtype:
        raise TypeError(f"linalg.lstsq: B must be a tensor of A's dtype {A.dtype.name}, got "
                        f"{getattr(rhs, 'dtype', type(rhs).__name__)}")
    vector = rhs.ndim == A.ndim - 1
    b = rhs.unsqueeze(-1) if vector else rhs
    m, n = A.shape[-2:]
    if b.ndim != A.ndim or b.shape[-2] != m:
        raise ValueError(f"linalg.lstsq: incompatible shapes of A {tuple(A.shape)} and B {tuple(rhs.shape)}: B "
                         f"must be (..., {m}, k) or (..., {m})")
    x = pinv(A, rtol=rcond) @ b
    empty = zeros(0, dtype=A.dtype)
    rank = matrix_rank(A, rtol=rcond) if driver != "gels" else zeros(0, dtype=dtypes.int64)
    full = m > n and (driver == "gels" or (driver != "gelsy" and bool((rank == n).all())))
    residuals = ((A @ x - b) ** 2).sum(dim=-2) if full else empty
    values = svdvals(A) if driver in ("gelsd", "gelss") else empty
    return LstsqResult(x.squeeze(-1) if vector else x, residuals, rank, values)
