"""Python numbers beside tensors, as torch casts them: an int beside an integer tensor wrapped into
its dtype (``x_uint8 + 300`` adds 44, ``x_uint8 & -1`` is ``x & 255``); a number written into a
tensor (fills, item assignment, ``scatter``'s value, ``alpha``, clamp bounds, ``pad``'s value)
through torch's checked conversion (``checked_scalar``: ``x_uint8.fill_(300)`` raises); an
exponent that does not fit refused."""

import math

from gt import dtypes
from gt.tensor import promotion
from gt.tensor._args import _scalar

# the finite floats each float dtype holds (torch's check refuses a finite number beyond them;
# inf and NaN pass; complex64: each part as float32); integer dtypes: dtypes.INT_RANGES, with
# dtypes.written_int_range's unsigned rule
_FLOAT_LIMITS = {**{n: dtypes.FLOAT_MAX[n] for n in ("float16", "bfloat16", "float32")},
                 "complex64": dtypes.FLOAT_MAX["float32"]}


def checked_scalar(value, dtype, what="value"):
    """The Python number ``value`` as torch's checked conversion (c10's ``checked_convert``) takes
    it into ``dtype`` (a DType or its name), where it is written into a tensor: an int outside the
    dtype's range raises RuntimeError, except that an unsigned dtype takes negative ints down to
    -max, wrapped (-1 into uint8 is 255); a float outside an integer dtype's range, NaN or inf
    raises (uint8 refuses -1.0); a finite float beyond float16/float32 raises; a complex number
    into a real dtype only with a zero imaginary part (its real part is returned). ``what`` names
    the value in the error. Anything else (bools, tensors, arrays) is returned as it is."""
    kind = type(value)
    if kind not in (int, float, complex):
        value = _scalar(value)                  # numpy's numbers are numbers to torch's check too
        kind = type(value)
    if kind is bool or kind not in (int, float, complex):
        return value
    name = dtype if isinstance(dtype, str) else dtype.name
    if kind is complex:
        if name.startswith("complex"):
            limit = _FLOAT_LIMITS.get(name)
            parts = (value.real, value.imag)
            if limit is not None and any(math.isfinite(p) and not -limit <= p <= limit for p in parts):
                _refuse(value, name, what, f"the largest finite value of each part is {limit!r}")
            return value
        if name == "bool":      # c10's overflows<bool> is always false: any non-zero complex is True
            return value != 0
        if value.imag != 0:
            _refuse(value, name, what, "only a zero imaginary part fits a real dtype")
        value = value.real
        kind = float
    if name in dtypes.INT_RANGES:
        low, high = dtypes.written_int_range(name) if kind is int else dtypes.INT_RANGES[name]
        if not low <= value <= high:          # NaN fails every comparison, so it is refused too
            _refuse(value, name, what, f"it holds {dtypes.INT_RANGES[name][0]}..{high}")
        return value % (high + 1) if kind is int and value < 0 and dtypes.INT_RANGES[name][0] == 0 else value
    limit = _FLOAT_LIMITS.get(name)
    if limit is not None and not -limit <= value <= limit and (kind is int or math.isfinite(value)):
        _refuse(value, name, what, f"its largest finite value is {limit!r}")
    return value


def _refuse(value, name, what, why):
    raise RuntimeError(f"value cannot be converted to type {name} without overflow: {what} {value!r} does not "
                       f"fit {name} ({why})")


def wrapped_int(n, dtype):
    """The Python int ``n`` as an integer (or bool) ``dtype`` holds it beside a tensor, wrapped as
    torch casts it (``x_int32 & 2**40`` is ``x & 0``, ``x_uint8 & -1`` is ``x & 255``, ``x_int64 +
    2**63`` adds -2**63); torch converts through a 64-bit integer, so beyond [-2**63, 2**64)
    OverflowError, as torch's."""
    if dtype is dtypes.bool_:
        return bool(n)
    if not -2 ** 63 <= n < 2 ** 64:
        raise OverflowError(f"int too big to convert: {n} is outside [-2**63, 2**64)")
    if dtype is dtypes.int64:
        return n - 2 ** 64 if n >= 2 ** 63 else n
    return dtypes.wrap_int(n, dtype) if dtype.name in dtypes.INT_RANGES else n


def refuse_uint64_promotion(a, b):
    """torch's error for a bool tensor beside a Python int from 2**63 up: torch reads that int as
    uint64, which it does not promote (gt would wrap it into the int64 result)."""
    for t, n in ((a, b), (b, a)):
        if type(n) is int and n >= 2 ** 63 and getattr(t, "dtype", None) is dtypes.bool_:
            raise RuntimeError(f"Promotion for uint16, uint32, uint64 types is not supported, attempted to promote "
                               f"Bool and UInt64: the int {n} beside a bool tensor does not fit int64")


def int_wrapped(a, b):
    """``wrap_scalar`` where one of ``a``, ``b`` is a Python int (``x_uint8 // 300`` divides by 44)."""
    return wrap_scalar(a, b) if type(a) is int or type(b) is int else (a, b)


def _check_exponent(t, n):
    """torch casts an int exponent to an integer tensor's dtype with its overflow check (``x_uint8
    ** 300`` raises); a negative one meets the engine's refusal of negative integer powers."""
    low, high = dtypes.INT_RANGES.get(t.dtype.name, (None, None))
    if low is not None and t.dtype is not dtypes.int64 and n > high:
        raise RuntimeError(f"value cannot be converted to type {t.dtype.name}_t without overflow: the exponent "
                           f"{n} does not fit {t.dtype!r}")


def wrap_scalar(a, b):
    """A Python int beside an integer tensor, wrapped into its dtype as torch casts it (``x_int32 *
    2**31`` is ``x * -2**31``, ``x_uint8 + 300`` is ``x + 44``, ``x_int64 + 2**63`` adds -2**63);
    numpy's engine raised OverflowError."""
    t, n = (a, b) if type(b) is int else (b, a)   # the callers pass one tensor and one int
    if 0 <= n <= 127:               # every integer dtype holds it: nothing to decide (the common case)
        return a, b
    low, high = dtypes.INT_RANGES.get(t.dtype.name, (None, None))
    if low is None or low <= n <= high:
        return a, b
    n = wrapped_int(n, t.dtype)
    return (t, n) if t is a else (n, t)


def checked_alpha(x, other, alpha, fn):
    """``alpha`` of ``x + alpha * other`` (add, sub, their in-place forms) as torch checks it: a
    bool alpha only where the result is bool (``x_float.add_(y, alpha=True)`` raises, as torch's),
    and where the result is bool, alpha read as a bool (``b.add(b, alpha=2)`` is ``b | b``) and a
    float or complex one refused. Returns the alpha to use; only called for a bool alpha or a bool
    ``x``, or one that is not an int (a float one refused for an integer result, a complex one for
    a real result, as torch's)."""
    result = promotion.result_dtype(x, other, fn=fn)
    if result is not dtypes.bool_:
        if type(alpha) is bool:
            raise RuntimeError(f"{fn}: Boolean alpha only supported for Boolean results (got alpha={alpha!r} for a "
                               f"{result!r} result; pass alpha={int(alpha)})")
        if isinstance(alpha, complex) and not result.is_complex:
            raise RuntimeError(f"{fn}: for non-complex input tensors, argument alpha must not be a complex number "
                               f"(got alpha={alpha!r} for a {result!r} result)")
        if isinstance(alpha, float) and not result.differentiable:
            raise RuntimeError(f"{fn}: for integral input tensors, argument alpha must not be a floating point number "
                               f"(got alpha={alpha!r} for a {result!r} result)")
        return alpha
    if isinstance(alpha, (float, complex)):
        raise RuntimeError(f"{fn}: for integral input tensors, argument alpha must not be a floating point number "
                           f"(got alpha={alpha!r} for a bool result)")
    return bool(alpha) if isinstance(alpha, int) else alpha
