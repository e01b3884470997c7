"""``gt.testing``: torch.testing's ``assert_close`` and ``make_tensor`` for gt tensors.

    >>> gt.testing.assert_close(model(x), expected)            # float32: rtol 1.3e-6, atol 1e-5
    >>> x = gt.testing.make_tensor(2, 3, dtype=gt.float32, device="cpu", low=-1, high=1)

``assert_close`` compares tensors, Python/numpy numbers, booleans, None, and sequences and
mappings of them (recursively), with torch's default tolerances per dtype, its checks (shape,
device, dtype, stride) and its messages: an ``AssertionError`` naming the count of mismatched
elements, the greatest absolute and relative differences and their indices, and the item of a
nested input where the failure occurred. A tensor against anything but a tensor is a TypeError,
as in torch.
"""

import cmath
import math
import warnings
from collections import abc

import numpy as np

from gt import dtypes
from gt.tensor import creation
from gt.tensor.core import Tensor
from gt.tensor.promotion import promote_types
from gt.tensor.runtime import finfo

__all__ = ["assert_close", "make_tensor"]

# torch.testing's default (rtol, atol) per dtype; integers and bool compare exactly
_TOLERANCES = {dtypes.float16: (1e-3, 1e-5), dtypes.bfloat16: (1.6e-2, 1e-5), dtypes.float32: (1.3e-6, 1e-5),
               dtypes.float64: (1e-7, 1e-7)}


class _Mismatch(Exception):
    """A failed comparison: the exception type torch raises and its message."""

    def __init__(self, type_, msg, item=()):
        super().__init__(msg)
        self.type, self.msg, self.item = type_, msg, item

    def to_error(self, msg):
        text = self.msg
        if callable(msg):
            text = msg(text)
        elif msg is not None:
            text = msg
        elif self.item:
            text += "\n\nThe failure occurred for item " + "".join(f"[{i!r}]" for i in self.item)
        return self.type(text)


def _default_tols(*dts):
    rtols, atols = zip(*(_TOLERANCES.get(d, (0.0, 0.0)) for d in dts))
    return max(rtols), max(atols)


def _mismatch_msg(identifier, extra, abs_diff, abs_idx, rel_diff, rel_idx, rtol, atol):
    equality = rtol == 0 and atol == 0

    def diff_msg(kind, diff, idx, tol):
        text = f"{kind.title()} difference: {diff}" if idx is None else f"Greatest {kind} difference: {diff} at index {idx}"
        return text + ("" if equality else f" (up to {tol} allowed)") + "\n"

    text = f"{identifier} are not {'equal' if equality else 'close'}!\n\n{extra.strip()}\n"
    text += diff_msg("absolute", abs_diff, abs_idx, atol) + diff_msg("relative", rel_diff, rel_idx, rtol)
    return text.strip()


def _scalar_msg(actual, expected, rtol, atol):
    abs_diff = abs(actual - expected)
    rel_diff = float("inf") if expected == 0 else abs_diff / abs(expected)
    return _mismatch_msg("Scalars", f"Expected {expected} but got {actual}.", abs_diff, None, rel_diff, None,
                         rtol, atol)


def _is_number(x):
    return isinstance(x, (int, float, complex, np.number)) and not isinstance(x, (bool, np.bool_))


def _compare_numbers(actual, expected, rtol, atol, equal_nan, check_dtype):
    a = actual.item() if isinstance(actual, np.generic) else actual
    e = expected.item() if isinstance(expected, np.generic) else expected
    if check_dtype and type(a) is not type(e):
        raise _Mismatch(AssertionError, f"The (d)types do not match: {type(a)} != {type(e)}.")
    if rtol is None:
        kind = {int: (0.0, 0.0), float: (1e-7, 1e-7), complex: (1e-7, 1e-7)}
        rtol, atol = (max(x, y) for x, y in zip(kind[type(a)], kind[type(e)]))
    if a == e or (equal_nan and cmath.isnan(a) and cmath.isnan(e)):
        return
    abs_diff = abs(a - e)
    if cmath.isfinite(abs_diff) and abs_diff <= atol + rtol * abs(e):
        return
    raise _Mismatch(AssertionError, _scalar_msg(a, e, rtol, atol))


def _host(t, dtype):
    """``t``'s values as a numpy array in ``dtype`` (bfloat16: in float32, numpy has none)."""
    t = t.detach()
    if t.dtype != dtype:
        t = t.to(dtype)
    if dtype == dtypes.bfloat16:
        t = t.to(dtypes.float32)
    return np.asarray(t.numpy())


def _compare_tensors(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, check_stride):
    if actual.shape != expected.shape:
        raise _Mismatch(AssertionError,
                        f"The values for attribute 'shape' do not match: {actual.shape} != {expected.shape}.")
    if check_device and actual.device != expected.device:
        raise _Mismatch(AssertionError,
                        f"The values for attribute 'device' do not match: {actual.device} != {expected.device}.")
    if check_dtype and actual.dtype != expected.dtype:
        raise _Mismatch(AssertionError,
                        f"The values for attribute 'dtype' do not match: {actual.dtype} != {expected.dtype}.")
    if check_stride and actual.stride() != expected.stride():
        raise _Mismatch(AssertionError,
                        f"The values for attribute 'stride()' do not match: {actual.stride()} != {expected.stride()}.")
    if rtol is None:
        rtol, atol = _default_tols(actual.dtype, expected.dtype)
    dtype = promote_types(actual.dtype, expected.dtype)
    a, e = _host(actual, dtype), _host(expected, dtype)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        matches = a == e
        if dtype.is_floating_point:
            if equal_nan:
                matches |= np.isnan(a) & np.isnan(e)
            # torch.isclose, in the values' own dtype
            error = np.abs(a - e)
            allowed = a.dtype.type(atol) + np.abs(a.dtype.type(rtol) * e)
            matches |= np.isfinite(error) & (error <= allowed)
        elif rtol != 0 or atol != 0:
            error = np.abs(a.astype(np.float64) - e.astype(np.float64))
            matches |= error <= atol + rtol * np.abs(e.astype(np.float64))
        if matches.all():
            return
        if a.ndim == 0:
            raise _Mismatch(AssertionError, _scalar_msg(a.item(), e.item(), rtol, atol))
        total, mismatched = matches.size, int(matches.size - matches.sum())
        extra = f"Mismatched elements: {mismatched} / {total} ({mismatched / total:.1%})"
        a, e, m = a.ravel(), e.ravel(), matches.ravel()
        if not dtype.is_floating_point:
            a, e = a.astype(np.int64), e.astype(np.int64)
        abs_diff = np.abs(a - e)
        abs_diff[m] = 0
        # an integer difference over its expected value is a default-dtype float in torch
        rel_diff = (abs_diff / np.abs(e)).astype(a.dtype if dtype.is_floating_point else np.float32)
        rel_diff[m] = 0
    ia, ir = int(np.argmax(abs_diff)), int(np.argmax(rel_diff))
    raise _Mismatch(AssertionError, _mismatch_msg(
        "Tensor-likes", extra, abs_diff[ia].item(), tuple(int(i) for i in np.unravel_index(ia, actual.shape)),
        rel_diff[ir].item(), tuple(int(i) for i in np.unravel_index(ir, actual.shape)), rtol, atol))


def _compare(actual, expected, item, opts):
    try:
        _compare_leaf(actual, expected, item, opts)
    except _Mismatch as err:
        if not err.item:
            err.item = item
        raise


def _compare_leaf(actual, expected, item, opts):
    if actual is None or expected is None:
        if actual is None and expected is None:
            return
        raise _Mismatch(AssertionError, f"None mismatch: {actual} is not {expected}")
    if isinstance(actual, (bool, np.bool_)) and isinstance(expected, (bool, np.bool_)):
        if bool(actual) != bool(expected):
            raise _Mismatch(AssertionError, f"Booleans mismatch: {actual} is not {expected}")
        return
    if _is_number(actual) and _is_number(expected):
        _compare_numbers(actual, expected, opts["rtol"], opts["atol"], opts["equal_nan"], opts["check_dtype"])
        return
    if isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray):
        # torch compares two numpy arrays as tensors (a tensor beside an array is a TypeError)
        actual, expected = creation.from_numpy(np.ascontiguousarray(actual)), creation.from_numpy(
            np.ascontiguousarray(expected))
    if isinstance(actual, Tensor) and isinstance(expected, Tensor):
        if not opts["allow_subclasses"] and type(actual) is not type(expected):
            raise _Mismatch(TypeError, f"No comparison pair was able to handle inputs of type {type(actual)} "
                                       f"and {type(expected)}.")
        _compare_tensors(actual, expected, opts["rtol"], opts["atol"], opts["equal_nan"], opts["check_device"],
                         opts["check_dtype"], opts["check_stride"])
        return
    if (isinstance(actual, abc.Sequence) and isinstance(expected, abc.Sequence)
            and not isinstance(actual, (str, bytes)) and not isinstance(expected, (str, bytes))):
        if len(actual) != len(expected):
            raise _Mismatch(AssertionError,
                            f"The length of the sequences mismatch: {len(actual)} != {len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            _compare(a, e, item + (i,), opts)
        return
    if isinstance(actual, abc.Mapping) and isinstance(expected, abc.Mapping):
        keys_a, keys_e = set(actual.keys()), set(expected.keys())
        if keys_a != keys_e:
            missing, additional = keys_e - keys_a, keys_a - keys_e
            lines = ["The keys of the mappings do not match:"]
            if missing:
                lines.append(f"Missing keys in the actual mapping: {sorted(missing, key=repr)}")
            if additional:
                lines.append(f"Additional keys in the actual mapping: {sorted(additional, key=repr)}")
            raise _Mismatch(AssertionError, "\n".join(lines))
        keys = list(actual.keys())
        try:
            keys = sorted(keys)
        except TypeError:
            pass
        for k in keys:
            _compare(actual[k], expected[k], item + (k,), opts)
        return
    raise _Mismatch(TypeError, f"No comparison pair was able to handle inputs of type {type(actual)} "
                               f"and {type(expected)}.")


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None, equal_nan=False,
                 check_device=True, check_dtype=True, check_layout=True, check_stride=False, msg=None):
    """Raise an ``AssertionError`` unless ``actual`` and ``expected`` are close (torch.testing.assert_close).

    Tensors (of equal shape, and by default device and dtype) are close where
    ``|actual - expected| <= atol + rtol * |expected|`` elementwise (and equal infinities; NaNs
    only with ``equal_nan``). ``rtol``/``atol`` default per dtype (float16 1e-3/1e-5, bfloat16
    1.6e-2/1e-5, float32 1.3e-6/1e-5, float64 1e-7/1e-7, integers and bool exact; the larger of
    the two inputs' when their dtypes differ and ``check_dtype=False``) and must be given together
    (ValueError). Numbers, booleans, None, sequences and mappings are compared recursively.
    ``msg`` (a string, or a callable taking the generated message) replaces the message.
    ``check_layout`` is accepted for torch's signature: gt tensors are all strided.
    """
    if (rtol is None) != (atol is None):
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, "
                         f"but got no {'rtol' if rtol is None else 'atol'}.")
    opts = dict(allow_subclasses=allow_subclasses, rtol=rtol, atol=atol, equal_nan=equal_nan,
                check_device=check_device, check_dtype=check_dtype, check_stride=check_stride)
    try:
        _compare(actual, expected, (), opts)
    except _Mismatch as err:
        raise err.to_error(msg) from None


def _bounds(low, high, lowest, highest, default_low, default_high, dtype, is_float):
    """torch's ``modify_low_high``: the defaults, its checks, and the bounds clamped to the dtype's range."""
    low = default_low if low is None else low
    high = default_high if high is None else high
    if math.isnan(low) or math.isnan(high):
        raise ValueError(f"`low` and `high` cannot be NaN, but got low={low} and high={high}")
    elif low == high and is_float:
        warnings.warn("Passing `low==high` to `gt.testing.make_tensor` for floating types is deprecated "
                      "(torch 2.1). Use `gt.full(...)` instead.", FutureWarning, stacklevel=3)
    elif low >= high:
        raise ValueError(f"`low` must be less than `high`, but got {low} >= {high}")
    elif high < lowest or low >= highest:
        raise ValueError(f"The value interval specified by `low` and `high` is [{low}, {high}), "
                         f"but {dtype} only supports [{lowest}, {highest})")
    low, high = min(max(low, lowest), highest), min(max(high, lowest), highest)
    if not is_float:
        return math.ceil(low), math.ceil(high)
    return low, high


def make_tensor(*shape, dtype, device, low=None, high=None, requires_grad=False, noncontiguous=False,
                exclude_zero=False, memory_format=None):
    """A tensor of ``shape`` with values drawn uniformly from ``[low, high)`` (torch.testing.make_tensor).

    Defaults: bool ``[0, 2)``, integers ``[-9, 10)``, floats ``[-9, 9)``; ``low``/``high`` are
    clamped to the dtype's finite range (rounded up to integers for integer dtypes).
    ``noncontiguous=True`` returns a strided view (every second element of a twice-as-wide last
    dimension) when the tensor has more than one element; ``exclude_zero=True`` replaces zeros
    by 1 (bool, integers) or ``finfo(dtype).tiny``. ``requires_grad`` only for floating dtypes
    (ValueError otherwise). ``memory_format`` must be None: gt tensors are row-major.
    """
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    shape = tuple(shape)
    dtype = dtypes.to_dtype(dtype)
    if noncontiguous and memory_format is not None:
        raise ValueError(f"The parameters `noncontiguous` and `memory_format` are mutually exclusive, "
                         f"but got noncontiguous={noncontiguous!r} and memory_format={memory_format!r}")
    if memory_format is not None:
        raise ValueError(f"make_tensor: gt tensors are row-major; memory_format must be None, got {memory_format!r}")
    is_float = dtype.is_floating_point
    if requires_grad and not is_float:
        raise ValueError(f"`requires_grad=True` is not supported for boolean and integral dtypes, "
                         f"but got dtype={dtype}")

    numel = 1
    for n in shape:
        numel *= n
    noncontiguous = noncontiguous and numel > 1
    if noncontiguous:
        shape = (*shape[:-1], 2 * shape[-1])
    if dtype == dtypes.bool_:
        low, high = _bounds(low, high, 0, 2, 0, 2, dtype, is_float)
        result = creation.randint(low, high, shape, dtype=dtype, device=device)
    elif not is_float:
        info = np.iinfo(dtype.name)
        low, high = _bounds(low, high, int(info.min), int(info.max) + (1 if dtype != dtypes.int64 else 0),
                            -9, 10, dtype, is_float)
        result = creation.randint(low, high, shape, dtype=dtype, device=device)
    else:
        fi = finfo(dtype)
        low, high = _bounds(low, high, fi.min, fi.max, -9, 9, dtype, is_float)
        result = creation.empty(shape, dtype=dtype, device=device)
        if high - low >= fi.max:    # the width itself would overflow: draw half of it, then double
            result.uniform_(low / 2, high / 2).mul_(2)
        else:
            result.uniform_(low, high)
    if exclude_zero:
        result = result.masked_fill(result == 0, True if dtype == dtypes.bool_ else 1 if not is_float else finfo(dtype).tiny)
    if noncontiguous:
        result = result[..., 1::2]
    if is_float:
        result._set_requires_grad(requires_grad)
    return result
