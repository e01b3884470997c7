"""torch's construction and layout functions that gt composes from its own ops: the stacks
(``hstack``, ``vstack``, ``dstack``, ``column_stack``), ``atleast_1d/2d/3d``, ``meshgrid``,
``broadcast_tensors``/``broadcast_shapes``, ``tril_indices``, ``logspace``, and the function
forms of the methods in construct_methods.py and diagonal_methods.py (``gt.diag``, ``gt.take``,
``gt.rot90``, ``gt.isclose``, ``gt.tensor_split``...). Products of several tensors (``kron``,
``tensordot``, ``cdist``...) are in product_functions.py. Each is built from differentiable ops (cat, reshape, indexing,
where...), so its gradients are those ops' (tests/test_construct_functions.py: beside torch).
"""

import warnings

from gt import dtypes
from gt.backend import torch_ranges
from gt.tensor.arithmetic import _operand
from gt.tensor.construct_methods import promoted
from gt.tensor.core import Tensor
from gt.tensor.creation import arange, range_dtype, tensor
from gt.tensor.device_methods import accepts_device
from gt.tensor.functions import _method, cat

# the function forms of the methods in construct_methods.py (gt.select(x, 0, 1) is x.select(0, 1))
tensor_split = _method("tensor_split")
diagonal = _method("diagonal")
select = _method("select")
diff = _method("diff")
# and of those in diagonal_methods.py
take, take_along_dim, diag, diag_embed, diagflat, trace, fliplr, flipud, rot90, isclose = (
    _method(name) for name in ("take", "take_along_dim", "diag", "diag_embed", "diagflat", "trace", "fliplr",
                               "flipud", "rot90", "isclose"))


def _input(x, name):
    x = _operand(x, name)
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): expected a tensor, got {type(x).__name__} ({x!r})")
    return x


def _sequence(tensors, name):
    """The tensors of ``f(a, b)`` or ``f([a, b])``, as a list of gt tensors."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tensors[0]
    return [_input(t, name) for t in tensors]


# ---- at least n dims, and the stacks built on them -----------------------------------------------
def _atleast(tensors, name, shape_of):
    single = len(tensors) == 1 and isinstance(tensors[0], Tensor)
    out = tuple(t if t.ndim >= len(shape_of(t.shape)) else t.reshape(shape_of(t.shape))
                for t in _sequence(tensors, name))
    return out[0] if single else out


def atleast_1d(*tensors):
    """Each tensor with at least 1 dim (a 0-d one becomes shape ``(1,)``); one tensor in, one out,
    else a tuple."""
    return _atleast(tensors, "atleast_1d", lambda s: s if len(s) >= 1 else (1,))


def atleast_2d(*tensors):
    """Each tensor with at least 2 dims: ``()`` -> ``(1, 1)``, ``(n,)`` -> ``(1, n)``."""
    return _atleast(tensors, "atleast_2d", lambda s: s if len(s) >= 2 else (1,) * (2 - len(s)) + s)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dims: ``()`` -> ``(1, 1, 1)``, ``(n,)`` -> ``(1, n, 1)``,
    ``(m, n)`` -> ``(m, n, 1)``, as torch's (and numpy's)."""
    return _atleast(tensors, "atleast_3d", lambda s: {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(len(s), s))


def _listed(tensors, name):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}(): argument 'tensors' must be a tuple or list of tensors, not "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise RuntimeError(f"{name} expects a non-empty TensorList")
    return promoted([_input(t, name) for t in tensors])


def hstack(tensors):
    """The tensors joined column-wise: along dim 1, or dim 0 when all are 1-D (0-d count as 1-D)."""
    tensors = [atleast_1d(t) for t in _listed(tensors, "hstack")]
    return cat(tensors, dim=0 if all(t.ndim == 1 for t in tensors) else 1)


def vstack(tensors):
    """The tensors joined row-wise along dim 0, each first made at least 2-D (``(n,)`` -> ``(1, n)``)."""
    return cat([atleast_2d(t) for t in _listed(tensors, "vstack")], dim=0)


row_stack = vstack


def dstack(tensors):
    """The tensors joined depth-wise along dim 2, each first made at least 3-D."""
    return cat([atleast_3d(t) for t in _listed(tensors, "dstack")], dim=2)


def column_stack(tensors):
    """The tensors side by side as columns: 0-d and 1-D ones become ``(n, 1)`` columns, then all
    are joined along dim 1."""
    tensors = _listed(tensors, "column_stack")
    return cat([t.reshape(t.numel(), 1) if t.ndim <= 1 else t for t in tensors], dim=1)


# ---- grids and broadcasting -------------------------------------------------------------------
def meshgrid(*tensors, indexing=None):
    """Coordinate grids from 1-D tensors: with ``indexing='ij'`` output ``i`` varies along dim ``i``;
    ``'xy'`` swaps the first two dims (numpy's default). Views of the inputs (expanded). Without
    ``indexing`` it is ``'ij'``, with torch's warning."""
    if indexing is None:
        warnings.warn("gt.meshgrid: in an upcoming release, it will be required to pass the indexing argument.",
                      UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
    tensors = _sequence(tensors, "meshgrid")
    if any(t.dtype != tensors[0].dtype for t in tensors):
        raise RuntimeError(f"meshgrid expects all tensors to have the same dtype, got {[t.dtype for t in tensors]}")
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got a tensor of "
                               f"shape {t.shape}")
    swap = indexing == "xy" and len(tensors) >= 2
    order = [1, 0] + list(range(2, len(tensors))) if swap else list(range(len(tensors)))
    shape = [tensors[i].numel() for i in order]
    out = []
    for i, t in enumerate(tensors):
        at = order.index(i)
        view = [1] * len(shape)
        view[at] = shape[at]
        out.append(t.reshape(view).expand(*shape))
    return tuple(out)


def broadcast_shapes(*shapes):
    """The shape that tensors of ``shapes`` broadcast to (a tuple; torch returns a ``Size``)."""
    shapes = [(s,) if isinstance(s, int) else tuple(s) for s in shapes]
    out = [1] * max((len(s) for s in shapes), default=0)
    for k, s in enumerate(shapes):
        for i, n in enumerate(s, len(out) - len(s)):
            if n != out[i] and n != 1 and out[i] != 1:
                raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape: shape {s} "
                                   f"(argument {k}) does not broadcast against {tuple(out)}")
            out[i] = n if out[i] == 1 else out[i]
    return tuple(out)


def broadcast_tensors(*tensors):
    """The tensors expanded to their common broadcast shape (views)."""
    tensors = _sequence(tensors, "broadcast_tensors")
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(t.expand(*shape) for t in tensors)


def _triangle_indices(row, col, offset, dtype, keep, name):
    for what, n in (("row", row), ("col", col)):
        if n < 0:
            raise RuntimeError(f"{what} must be non-negative, got {n}")
    if dtype not in (dtypes.int64, dtypes.int32):
        raise RuntimeError(f"{name}: expected an integer dtype (int64 or int32), got {dtype!r}")
    gap = arange(col).reshape(1, col) - arange(row).reshape(row, 1)     # row, col: column - row
    return keep(gap, offset).nonzero().T.to(dtype)


@accepts_device
def tril_indices(row, col, offset=0, *, dtype=dtypes.int64):
    """The ``(2, N)`` row and column positions of the lower triangle (``j - i <= offset``) of a
    ``row x col`` matrix, in row-major order."""
    return _triangle_indices(row, col, offset, dtype, lambda gap, k: gap <= k, "tril_indices")


@accepts_device
def triu_indices(row, col, offset=0, *, dtype=dtypes.int64):
    """The ``(2, N)`` positions of the upper triangle (``j - i >= offset``), row-major."""
    return _triangle_indices(row, col, offset, dtype, lambda gap, k: gap >= k, "triu_indices")


@accepts_device
def logspace(start, end, steps, base=10.0, *, dtype=None, requires_grad=False):
    """``steps`` values ``base ** t`` for ``t`` evenly spaced from ``start`` to ``end`` (float32 by
    default): torch's CPU values to the bit (gt/backend/torch_ranges.py)."""
    if isinstance(steps, (bool, float)) or (isinstance(steps, Tensor) and steps.dtype.is_floating_point):
        raise TypeError(f"logspace(): argument 'steps' must be int, not {type(steps).__name__} ({steps!r})")
    if steps < 0:
        raise RuntimeError(f"number of steps must be non-negative, got {steps}")
    dtype = range_dtype(dtype, (start, end), "logspace")
    values = torch_ranges.logspace(start, end, int(steps), float(base), dtype.name)
    return tensor(values, dtype=dtype, requires_grad=requires_grad)
