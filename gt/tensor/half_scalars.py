"""torch's CPU kernels for a float16 or bfloat16 tensor times, over or floor-divided by a scalar
(a Python number, or a 0-d tensor beside a tensor with dims): they compute in float32 with the
scalar's own value and round once. Rounding the scalar to the tensor's dtype first, as the
promotion does for every other op, gives an ulp more or less in some 20-50% of the elements
(``x_half * gt.tensor(0.3)``), and floor quotients one less at the boundaries
(``-29.703 // 0.3`` is -100)."""

import struct

from gt import dtypes
from gt.autograd import function
from gt.backend import B
from gt.tensor.exact_values import needs_grad, with_grad

HALVES = (dtypes.float16, dtypes.bfloat16)


def is_half_scalar_pair(a, b):
    """Whether ``a`` is a float16/bfloat16 tensor that keeps its dtype beside ``b``, a real number or
    a 0-d tensor of another real dtype whose value the promotion would round."""
    Tensor = function.Tensor
    if not isinstance(a, Tensor) or a.dtype not in HALVES:
        return False
    if type(b) is float or type(b) is int:
        return True
    return isinstance(b, Tensor) and b.ndim == 0 and a.ndim > 0 and b.dtype is not a.dtype and \
        not b.dtype.is_complex and b.dtype is not dtypes.bool_


def in_float32(op, a, b, promoted):
    """``op(a, b)`` computed in float32 with ``b``'s own value, rounded once to ``a``'s dtype;
    the gradient is that of ``promoted()`` (the op in the tensor's dtype, as torch's backward)."""
    Tensor = function.Tensor
    with function.no_grad():
        value = op(a.to(dtypes.float32), b.to(dtypes.float32) if isinstance(b, Tensor) else b).to(a.dtype)
    return with_grad(value, promoted()) if needs_grad(a, b) else value


def float32_update(fn):
    """The in-place ``fn`` (``a *= v``, ``a /= v``) done as torch's kernel does it for a float16 or
    bfloat16 ``a`` and a scalar ``v`` (``scalar_value``): in float32, rounded once into ``a``."""
    def update(a, v):
        wide = B.astype(a, dtypes.float32)
        fn(wide, v)
        a[...] = wide
    return update


def scalar_value(b):
    """``b`` (a number or a 0-d tensor, ``is_half_scalar_pair``'s) as a Python number, unrounded."""
    return b if type(b) is float or type(b) is int else b.item()


def half_rounded(x):
    """The float ``x`` rounded to float16 (inf beyond its range), as torch casts a number to it."""
    try:
        return struct.unpack("e", struct.pack("e", x))[0]
    except OverflowError:
        return x * float("inf")
