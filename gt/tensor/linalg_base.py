"""The input check and the identity shared by gt's linear algebra in the tensor layer
(gt/tensor/linalg_methods.py, gt/tensor/linalg_factor.py)."""

from gt import dtypes
from gt.autograd import function
from gt.backend import B


_COMPLEX = (dtypes.complex64, dtypes.complex128)


class ShapeError(ValueError, RuntimeError):
    """A matrix shape a linear-algebra function refuses: gt's ValueError for shapes (README,
    "Errors") and torch's RuntimeError, so code written against either catches it."""


def matrix_input(a, name, square=False, complex_ok=False):
    """``a`` checked: a float32/float64 tensor (or complex64/complex128 where ``complex_ok``: the ops
    whose complex gradients are torch's) of at least 2 dims (square matrices if ``square``)."""
    if not isinstance(a, function.Tensor):
        raise TypeError(f"{name}(): argument 'A' must be a tensor, not {type(a).__name__}")
    if a.dtype not in (dtypes.float32, dtypes.float64) and not (complex_ok and a.dtype in _COMPLEX):
        raise TypeError(f"{name}: expected a float32 or float64 tensor as input, got {a.dtype.name}"
                        + ("" if a.dtype not in _COMPLEX else " (gt computes this one on real matrices only)"))
    if a.ndim < 2:
        raise ValueError(f"{name}: the input tensor A must have at least 2 dimensions, got shape {a.shape}")
    if square and a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name}: A must be batches of square matrices, but they are "
                         f"{a.shape[-2]} by {a.shape[-1]} matrices")
    return a


def eye_like(a, n, m=None):
    """The (n, m) identity (m defaults to n) in ``a``'s dtype (a constant)."""
    m = n if m is None else m
    rows = B.reshape(B.arange(0, n, 1, dtypes.int64), (n, 1))
    return function.Tensor._wrap(B.astype(rows == B.reshape(B.arange(0, m, 1, dtypes.int64), (1, m)), a.dtype))
