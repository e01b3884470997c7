"""torch's division with a rounding mode (``div(..., rounding_mode="trunc" | "floor")``), shared
by ``Tensor.div``/``div_`` and ``gt.div``/``gt.divide``."""

from gt.tensor.arithmetic import _promote_ints, _refuse_bools


ROUNDING_MODES = (None, "trunc", "floor")


def rounded_quotient(a, b, mode):
    """``a / b`` (a tensor, and a tensor or a number) rounded toward zero (``"trunc"``) or down
    (``"floor"``): torch's ``div(..., rounding_mode=)``. Integers stay exact (no round trip
    through float); both bool is torch's NotImplementedError."""
    if mode not in ROUNDING_MODES:
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found {mode!r}")
    _refuse_bools(a, b, f"div_{mode}_cpu")
    if mode == "floor":
        return a // b
    if a.dtype.is_floating_point or isinstance(b, float) or (isinstance(b, type(a)) and b.dtype.is_floating_point):
        return (a / b).trunc()
    a, b = _promote_ints(a, b)
    q = a.abs() // abs(b)
    negative = (a < 0) != (b < 0)
    return q.masked_fill(negative, 0) - q.masked_fill(~negative, 0)
