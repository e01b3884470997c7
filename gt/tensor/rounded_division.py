"""torch's division with a rounding mode (``div(..., rounding_mode="trunc" | "floor")``), shared
by ``Tensor.div``/``div_`` and ``gt.div``/``gt.divide``, ``//`` (``floor_divide``), and the
remainder of floor division (``%``, ``remainder``) as torch's kernel computes it."""

from gt import autograd, dtypes
from gt.backend import B
from gt.ops import bitwise_kernels as bk
from gt.ops import elementwise as ew
from gt.ops.exact_value import NoDerivative
from gt.ops._shapes import broadcast_shape
from gt.tensor.arithmetic import _operand, _promote_ints
from gt.tensor.bool_int_refusals import _refuse_bools, _refuse_integer_zero
from gt.tensor.complex_checks import refuse_complex_pair
from gt.tensor.half_scalars import in_float32, is_half_scalar_pair
from gt.tensor.int_scalars import int_wrapped
from gt.tensor.promotion import result_dtype
from gt.tensor.exact_values import local, needs_grad, with_grad
from gt.tensor.shape import _named


ROUNDING_MODES = (None, "trunc", "floor")


def rounded_quotient(a, b, mode):
    """``a / b`` (a tensor, and a tensor or a number) rounded toward zero (``"trunc"``) or down
    (``"floor"``): torch's ``div(..., rounding_mode=)``. Integers stay exact (no round trip
    through float); both bool is torch's NotImplementedError."""
    if mode not in ROUNDING_MODES:
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found {mode!r}")
    _refuse_bools(a, b, f"div_{mode}_cpu")
    if mode == "floor":
        return _named(floor_quotient(a, b), a, "DivBackward2")
    if a.dtype.is_floating_point or isinstance(b, float) or (isinstance(b, type(a)) and b.dtype.is_floating_point):
        if not needs_grad(a, b):
            return _truncated(a, b)
        with autograd.no_grad():
            value = _truncated(a, b)
        # zero gradients for both, as torch's: through a / b they were 0 / b and 0 * a / b**2, NaN at b = 0 or inf
        return _named(with_grad(value, value, a, b), value, "DivBackward2")
    # a Python int wraps into the integer dtype first, as torch casts it (``x_uint8 / -3`` divides by 253)
    a, b = int_wrapped(*_promote_ints(a, b))
    # a bool takes the other operand's integer dtype (int64 beside a number), as torch promotes;
    # the engines have no abs of bools
    other_tensor = isinstance(b, type(a))
    if a.dtype == dtypes.bool_:
        a = a.to(b.dtype if other_tensor and b.dtype != dtypes.bool_ else dtypes.int64)
    if other_tensor and b.dtype == dtypes.bool_:
        b = b.to(a.dtype)
    elif isinstance(b, bool):
        b = int(b)
    q = a.abs() // abs(b)
    negative = (a < 0) != (b < 0)
    return q.masked_fill(negative, 0) - q.masked_fill(~negative, 0)


def _truncated(a, b):
    """``(a / b).trunc()``. In float16 and bfloat16 with a divisor of one element (a number, a 0-d
    tensor, a tensor of shape (1,)...), truncated before the quotient is rounded, in float32 with the
    divisor's own value, as torch's kernel for a scalar divisor does (``7 / -1.4004`` is -4.9986:
    -4, where the float16 quotient -5.0 gives -5); two tensors of many elements divide in the
    dtype first, as torch's other kernel."""
    if not isinstance(b, type(a)) or b.numel() == 1:
        dt = result_dtype(a, b)
        if dt in dtypes.HALVES:     # (the quotient in its own dtype is not computed first: it would be dropped)
            return (a.to(dtypes.float32) / (b.to(dtypes.float32) if isinstance(b, type(a)) else b)).trunc().to(dt)
    return (a / b).trunc()


def floor_quotient(a, other):
    """``floor(a / other)`` (``a`` a tensor, ``other`` a tensor or a number) as torch's kernel
    computes it (exact where ``(a / b).floor()`` is not: ``1 // 0.1`` is 9), with zero gradients
    (``div(rounding_mode="floor")``'s)."""
    refuse_complex_pair(a, other, "div_floor_cpu")
    other = _operand(other, "//")
    if isinstance(other, type(a)):      # torch's RuntimeError (numpy's would be a ValueError)
        broadcast_shape("floor_divide", a.shape, other.shape)
    if is_half_scalar_pair(a, other):       # torch's float32 kernel
        return in_float32(floor_quotient, (a, other), lambda: _floor_quotient(a, other))
    return _floor_quotient(a, other)


def _floor_quotient(a, other):
    a, b = int_wrapped(*_promote_ints(a, other))
    _refuse_bools(a, b, "div_floor_cpu")
    _refuse_integer_zero(a, b, "//")
    return ew.FloorDivide.apply(a, b)


def floor_divide(a, other):
    """torch's ``floor_divide`` (``a // other``): ``floor_quotient``'s values. torch defines no
    derivative for it: a result from inputs that require grad requires grad too, and a backward
    through it raises torch's RuntimeError."""
    return no_derivative(floor_quotient(a, other), "aten::floor_divide")


def no_derivative(out, aten):
    """``out``, whose backward raises "derivative for ``aten`` is not implemented" where it
    requires grad (torch's ``NotImplemented`` node)."""
    return NoDerivative.apply(out, aten) if out.requires_grad else out


def float_remainder(a, b):
    """``a % b`` for a float result (``a`` a tensor, ``b`` a tensor or a number, promoted): torch's
    kernel, ``fmod`` (exact) plus ``b`` where the signs differ, so a zero keeps ``a``'s sign (numpy's
    gives ``b``'s). ``a - b * floor(a / b)`` was off in the last bits. Gradients 1 and
    ``-(a // b)``, as torch's."""
    value = local(_remainder_arrays, (a, b))
    if not needs_grad(a, b):
        return value
    with autograd.no_grad():
        quotient = floor_quotient(a, b)
    with B.quiet_float_errors():       # only its gradient is read: inf * 0 there is no one's concern
        expr = a - b * quotient
    return with_grad(value, expr)


def _remainder_arrays(x, y):
    mod = bk.fmod_float_arrays(x, y)
    with B.quiet_float_errors():
        flip = (mod != 0) & ((y < 0) != (mod < 0))
        return B.where(flip, mod + y, mod)
