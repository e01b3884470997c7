"""torch's refusals of operands numpy computes with: an integer division or remainder by zero (numpy
gives 0), two bool operands of a kernel torch has no bool version of (numpy computes in int8) or
an operand in uint16/32/64 where torch has no kernel, and a subtraction with a bool. Asked by the
operators (arithmetic.py, inplace.py, number_first.py), ``%`` (extra_methods.py) and the rounding
divisions (rounded_division.py).
"""

from gt import dtypes
from gt.tensor.wide_uints import refuse

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py


def _refuse_integer_zero(a, b, op):
    """torch raises for an integer division by zero, where numpy gives 0."""
    if a.dtype.is_floating_point or (isinstance(b, Tensor) and b.dtype.is_floating_point) or isinstance(b, float):
        return
    if 0 in a.shape or (isinstance(b, Tensor) and 0 in b.shape):
        return      # no element is divided: torch's empty result
    if (bool((b == 0).any()) if isinstance(b, Tensor) else b == 0):
        raise RuntimeError(f"ZeroDivisionError: integer {op} by zero (a divisor is 0, as torch refuses too); divide "
                           "floating point values to get inf and NaN instead")


def _refuse_bools(a, b, kernel):
    """torch's NotImplementedError for two bool operands (numpy: int8) or an op in uint16/32/64 (no torch kernel)."""
    refuse(kernel, a, b)
    if a.dtype == dtypes.bool_ and (b.dtype == dtypes.bool_ if isinstance(b, Tensor) else isinstance(b, bool)):
        raise NotImplementedError(f"\"{kernel}\" not implemented for 'Bool': convert the operands with .long() first")


def _is_bool(x):
    return type(x) is bool or getattr(x, "dtype", None) is dtypes.bool_


def refuse_bool_subtraction(a, b):
    """torch's RuntimeError for a subtraction with a bool tensor or Python bool (numpy's differ); None otherwise."""
    if not (_is_bool(a) or _is_bool(b)):
        return
    if _is_bool(a) and _is_bool(b):
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                           "`logical_xor()` operator instead.")
    raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to "
                       "invert a mask, use the `~` or `logical_not()` operator instead.")
