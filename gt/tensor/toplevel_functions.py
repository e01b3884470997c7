"""torch's top-level functions that gt has as tensor methods, or that are about dtypes and making
tensors: ``gt.all``, ``gt.clone``, ``gt.divide(..., rounding_mode=)``, ``gt.isin``,
``gt.result_type``, ``gt.as_tensor``, ``gt.range``, ... (global settings such as
``gt.set_printoptions`` are in global_settings.py; the in-place, complex and ``*_copy`` forms in
copy_functions.py)

Each takes torch's arguments (names, defaults, keyword-only markers) and gives torch's values and
dtypes; most are thin forms of a differentiable tensor method, so gradients, sharding and both
engines come from that method.
"""

import builtins
import warnings

from gt import dtypes
from gt.backend import B
from gt.tensor.device_methods import moved, parse_device
from gt.tensor.arithmetic import _operand
from gt.tensor.number_first import wrapped_number
from gt.tensor.rounded_division import ROUNDING_MODES
from gt.tensor.core import Tensor
from gt.tensor.creation import arange, from_numpy, full, tensor
from gt.tensor.functions import cat
from gt.tensor.index_methods import searchsorted
from gt.tensor.dtype_functions import result_type
from gt.tensor.toplevel_checks import _check_no_bool, _tensor_arg
from gt.tensor.int_scalars import checked_alpha
from gt.tensor.nested_operands import is_nested
from gt.tensor.wide_uints import ordered_keys, refuse_isin

__all__ = ["all", "any", "clone", "detach", "t", "masked_fill", "multiply", "divide", "div", "subtract", "rsub", "concat",
           "isin", "as_tensor", "asarray", "scalar_tensor", "range", "unravel_index", "fill"]


# ---- reductions and copies ----------------------------------------------------------------------
def _as_bool_tensor(value):
    return value if isinstance(value, Tensor) else Tensor._wrap(B.asarray(bool(value), dtype=dtypes.bool_))


def all(input, dim=None, keepdim=False):  # noqa: A001
    """Whether every element is non-zero: a 0-d bool tensor, or a bool tensor over ``dim`` (an int
    or a tuple of ints; ``keepdim`` keeps the reduced dims as size 1), as ``Tensor.all``."""
    return _as_bool_tensor(_tensor_arg(input, "all").all(dim=dim, keepdim=keepdim))


def any(input, dim=None, keepdim=False):  # noqa: A001
    """Whether some element is non-zero: a 0-d bool tensor, or a bool tensor over ``dim``."""
    return _as_bool_tensor(_tensor_arg(input, "any").any(dim=dim, keepdim=keepdim))


def clone(input, *, memory_format=None):
    """A copy of ``input`` (differentiable: the gradient flows back to ``input``). gt tensors have
    no strides, so ``memory_format`` (torch's ``preserve_format``, ``contiguous_format``,
    ``channels_last`` for 4-D, ``channels_last_3d`` for 5-D; names or torch's objects) changes
    nothing in the values; it is checked as torch checks it."""
    return _tensor_arg(input, "clone").clone(memory_format=memory_format)


def detach(input):
    """``input``'s values (shared memory), cut from the autograd graph."""
    return _tensor_arg(input, "detach").detach()


def t(input):
    """The transpose of a tensor of at most 2 dims (0-d and 1-d tensors are returned as they are)."""
    x = _tensor_arg(input, "t")
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but input has shape {x.shape} "
                           f"({x.ndim}D); use transpose(dim0, dim1) or .mT")
    return x.t()


def masked_fill(input, mask, value):
    """``value`` where the bool ``mask`` (broadcast to ``input``) is True, ``input`` elsewhere."""
    x = _tensor_arg(input, "masked_fill")
    if not isinstance(mask, Tensor) or mask.dtype != dtypes.bool_:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise RuntimeError(f"masked_fill only supports boolean masks, but got mask of {got}")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, got shape {value.shape}")
    return x.masked_fill(mask, value)


def fill(input, value):
    """A new tensor shaped and typed as ``input``, every element ``value`` (a number or a 0-d
    tensor, which then gets the gradient: the sum of the upstream gradient)."""
    x = _tensor_arg(input, "fill")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"fill only supports a 0-dimensional value tensor, got shape {value.shape}")
        return value.to(x.dtype).expand(*x.shape).clone()
    return full(x.shape, value, dtype=x.dtype)


# ---- arithmetic ----------------------------------------------------------------------------------
def multiply(input, other):
    """``input * other`` (torch's ``mul``): broadcasting and torch's dtype promotion."""
    a, b = _operand(input, "multiply"), _operand(other, "multiply")
    if not isinstance(a, Tensor):
        if is_nested(b):
            return b._number_first("multiply", a)       # gt.nested's rule for a number on the left
        a = wrapped_number(a, b)
    return a * b


def subtract(input, other, *, alpha=1):
    """``input - alpha * other``."""
    a, b = _operand(input, "subtract"), _operand(other, "subtract")
    if not isinstance(a, Tensor) and is_nested(b):
        return b._number_first("subtract", a, alpha=alpha)      # gt.nested's rule for a number on the left
    _check_no_bool(a, b)
    a = a if isinstance(a, Tensor) else wrapped_number(a, b)
    if type(alpha) is not int:       # (a bool one raises: with no bool operand the result is never bool)
        alpha = checked_alpha(a, b, alpha, "subtract")
    return a - (b if alpha == 1 else b * alpha)


def rsub(input, other, *, alpha=1):
    """``other - alpha * input`` (subtraction with the operands the other way round)."""
    x = _tensor_arg(input, "rsub")
    other = _operand(other, "rsub")
    if is_nested(other) or (is_nested(x) and isinstance(other, Tensor)):
        raise NotImplementedError("aten.rsub.Tensor")       # torch 2.13's nested tensors: rsub of a number only
    _check_no_bool(x, other)
    if type(alpha) is not int:       # (a bool one raises: with no bool operand the result is never bool)
        alpha = checked_alpha(x, other, alpha, "rsub")
    return other - (x if alpha == 1 else x * alpha)


def divide(input, other, *, rounding_mode=None):
    """``input / other``. ``rounding_mode=None``: true division (integers give the default float
    dtype); ``"trunc"``: rounded toward zero; ``"floor"``: rounded down (Python's ``//``). With a
    rounding mode, integer inputs keep their integer dtype and the gradient is zero, as in torch.
    (``out=`` as every top-level function takes it: gt/tensor/out_argument.py.)"""
    if rounding_mode not in ROUNDING_MODES:
        raise RuntimeError(f"divide expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"{rounding_mode!r}")
    a, b = _operand(input, "divide"), _operand(other, "divide")
    if not isinstance(a, Tensor):
        if is_nested(b):
            return b._number_first("divide", a, rounding_mode=rounding_mode)   # gt.nested's rule
        a = wrapped_number(a, b)
    return a.div(b, rounding_mode=rounding_mode)


div = divide      # torch.div takes a number first too: gt.div(7, t, rounding_mode="floor")


def concat(tensors, dim=0):
    """``gt.cat``: join tensors along an existing dim."""
    return cat(tensors, dim=dim)


# ---- isin -----------------------------------------------------------------------------------------
def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """A bool tensor shaped as ``elements``: whether each element is in ``test_elements`` (either
    may be a number; the other must then be a tensor). Values compare after torch's dtype
    promotion (NaN matches nothing); ``invert=True`` gives the opposite. Sorting the test values
    once and binary-searching each element keeps it ``O((n + m) log m)``. ``assume_unique`` is
    accepted for torch's signature; the answer does not depend on it."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError(f"isin(): expected 'elements' or 'test_elements' to be a tensor, got "
                        f"{type(elements).__name__} and {type(test_elements).__name__}")
    refuse_isin(elements, test_elements)
    for x in (elements, test_elements):     # in torch's order; a Python number as its 0-d tensor (complex128)
        dt = x.dtype if isinstance(x, Tensor) else dtypes.bool_ if isinstance(x, bool) else \
            dtypes.complex128 if isinstance(x, complex) else None
        if dt is not None and (dt == dtypes.bool_ or dt.is_complex):
            raise RuntimeError(f"Unsupported input type encountered for isin(): {dtypes.torch_type_name(dt.name)} "
                               "(torch has no isin for bool or complex tensors; compare with == instead)")
    dtype = result_type(elements, test_elements)
    elements = elements if isinstance(elements, Tensor) else scalar_tensor(elements, dtype=dtype)
    test = test_elements if isinstance(test_elements, Tensor) else scalar_tensor(test_elements, dtype=dtype)
    elements, test = (ordered_keys(t.detach().to(dtype)) for t in (elements, test.reshape(-1)))
    n = test.shape[0]
    if n == 0 or elements.numel() == 0:
        found = full(elements.shape, False, dtype=dtypes.bool_)
    else:
        ordered = test.sort().values
        at = searchsorted(ordered, elements.reshape(-1)).clamp(max=n - 1)
        found = (ordered[at] == elements.reshape(-1)).reshape(elements.shape)
    return ~found if invert else found


def _tensor_isin(self, test_elements, *, assume_unique=False, invert=False):
    return isin(self, test_elements, assume_unique=assume_unique, invert=invert)


_tensor_isin.__name__ = "isin"
_tensor_isin.__doc__ = "``gt.isin(self, test_elements, ...)``."
Tensor.isin = _tensor_isin


# ---- making tensors -------------------------------------------------------------------------------
def scalar_tensor(s, *, dtype=None, device=None, requires_grad=False):
    """A 0-d tensor holding the number ``s``, of the default float dtype unless ``dtype`` says."""
    dev = parse_device(device, "scalar_tensor")
    if isinstance(s, Tensor):
        s = s.item()
    if not isinstance(s, (bool, int, float)):
        raise TypeError(f"scalar_tensor(): argument 's' must be a number, not {type(s).__name__}")
    dtype = dtypes.default_float if dtype is None else dtypes.to_dtype(dtype)
    return moved(full((), s, dtype=dtype, requires_grad=requires_grad), dev, "scalar_tensor(device)")


def _is_numpy(obj):
    return type(obj).__module__ == "numpy" and hasattr(obj, "dtype") and hasattr(obj, "shape")


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor, sharing memory where it can: a tensor of that dtype is returned as
    it is (the same object, still on the graph); a numpy array of that dtype shares its memory
    (``gt.from_numpy``; on one device and the numpy engine); anything else is copied. On
    another ``device`` than the data's, a copy there (as torch's)."""
    dev = parse_device(device, "as_tensor")
    dtype = None if dtype is None else dtypes.to_dtype(dtype)
    if isinstance(data, Tensor):
        out = data if dtype is None or dtype == data.dtype else data.to(dtype)
    elif _is_numpy(data) and data.ndim and (dtype is None or dtype == data.dtype):
        out = from_numpy(data)
    else:
        out = tensor(data, dtype=dtype)
    return moved(out, dev, "as_tensor(device)")


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    """``obj`` as a tensor, by torch's rules for ``copy``: ``None`` shares memory when it can (a
    tensor, or a numpy array, of the asked dtype) and copies otherwise; ``True`` always copies;
    ``False`` never copies, and raises ValueError where it would have to (another dtype, a list).
    A shared tensor comes back detached when ``requires_grad=True`` asks for a new leaf."""
    dev = parse_device(device, "asarray")
    dtype = None if dtype is None else dtypes.to_dtype(dtype)
    same = dtype is None or (isinstance(obj, Tensor) or _is_numpy(obj)) and dtype == obj.dtype
    shareable = (isinstance(obj, Tensor) or _is_numpy(obj) and obj.ndim) and same
    if copy is False and not shareable:
        if isinstance(obj, Tensor) or _is_numpy(obj):
            raise ValueError(f"asarray: can't alias {type(obj).__name__} with dtype {obj.dtype} into dtype "
                             f"{dtype!r} with copy=False")
        raise ValueError(f"asarray: can't alias {type(obj).__name__} into a tensor with copy=False (only "
                         f"tensors and numpy arrays share memory)")
    if copy or not shareable:
        src = obj.detach() if isinstance(obj, Tensor) else obj
        out = tensor(src, dtype=dtype)
    elif isinstance(obj, Tensor):
        out = obj
    else:
        out = from_numpy(obj)
    there = moved(out, dev, "asarray(device)")
    if there is not out and copy is False:
        raise ValueError(f"asarray: can't alias {type(obj).__name__} on {out.device} onto device {str(dev)!r} "
                         "with copy=False")
    out = there
    if requires_grad:
        out = (out.detach() if out is obj else out)._set_requires_grad(True)
    return out


def range(start, end, step=1, *, dtype=None, device=None, requires_grad=False):  # noqa: A001
    """torch's deprecated range: ``start, start + step, ..., end`` with ``end`` included, of the
    default float dtype unless ``dtype`` says (even for integer arguments). Warns, as torch does;
    ``gt.arange`` (end excluded) is the one to use."""
    dev = parse_device(device, "range")
    warnings.warn("gt.range is deprecated (as torch.range is) because its behavior is inconsistent with Python's "
                  "range builtin. Instead, use gt.arange, which produces values in [start, end).", UserWarning,
                  stacklevel=2)
    if step == 0:
        raise RuntimeError("range: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"range: upper bound and lower bound inconsistent with step sign (start={start}, "
                           f"end={end}, step={step})")
    dtype = dtypes.default_float if dtype is None else dtypes.to_dtype(dtype)
    n = int((end - start) / step) + 1
    if dtype.is_floating_point:   # start + i * step in float64, then rounded once, as torch accumulates
        values = arange(n, dtype=dtypes.float64) * float(step) + float(start)
    else:
        values = arange(n, dtype=dtypes.int64) * int(step) + int(start)
    values = moved(values.to(dtype), dev, "range(device)")
    return values._set_requires_grad(True) if requires_grad else values


def unravel_index(indices, shape):
    """The coordinates of flat ``indices`` in a tensor of ``shape``: a tuple of int64 tensors, one per
    dim of ``shape``, each shaped as ``indices``. Out-of-range indices wrap as torch's do (floor
    division and remainder, so -1 is the last element)."""
    if isinstance(indices, Tensor):
        if indices.dtype.is_floating_point or indices.dtype == dtypes.bool_:
            raise TypeError(f"unravel_index: expected 'indices' to be integer dtype, but got {indices.dtype!r}")
    elif isinstance(indices, int) and not isinstance(indices, bool):
        indices = tensor(indices)
    else:
        raise TypeError(f"unravel_index: expected 'indices' to be an integer tensor or an int, got "
                        f"{type(indices).__name__}")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if not builtins.all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise TypeError(f"unravel_index: expected 'shape' to be an int or a sequence of ints, got {shape!r}")
    if builtins.any(s < 0 for s in shape):
        raise ValueError(f"unravel_index: 'shape' cannot have negative values, but got {shape}")
    if 0 in shape and indices.numel():
        raise RuntimeError(f"unravel_index: ZeroDivisionError: shape {shape} has a zero size, so no index is in it")
    rest, coords = indices.to(dtypes.int64), []
    for size in reversed(shape):
        if size == 0:        # only with no indices at all: empty coordinates
            coords.append(rest)
            continue
        coords.append(rest.remainder(size))
        rest = rest // size
    return tuple(reversed(coords))
