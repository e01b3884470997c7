"""Python ints beside integer tensors, as torch casts them: wrapped into the tensor's dtype
(``x_uint8 + 300`` adds 44), checked where torch checks (an exponent that does not fit)."""

from gt import dtypes


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
    """A Python int beside an int32/int16/int8/uint8 tensor, wrapped into its dtype as torch casts
    it (``x_int32 * 2**31`` is ``x * -2**31``, ``x_uint8 + 300`` is ``x + 44``); numpy's engine
    raised OverflowError."""
    t, n = (a, b) if type(b) is int else (b, a)   # the callers pass one tensor and one int
    if 0 <= n <= 127:               # every integer dtype holds it: nothing to decide (the common case)
        return a, b
    low, high = dtypes.INT_RANGES.get(t.dtype.name, (None, None))
    if low is None or t.dtype is dtypes.int64 or low <= n <= high:
        return a, b
    if not -2 ** 63 <= n < 2 ** 64:       # torch converts through a 64-bit integer, and refuses beyond it
        raise OverflowError(f"int too big to convert: {n} is outside [-2**63, 2**64)")
    n = dtypes.wrap_int(n, t.dtype)
    return (t, n) if t is a else (n, t)
