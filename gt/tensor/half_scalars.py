"""torch's CPU kernels for a float16 or bfloat16 tensor times, over or floor-divided by a scalar
(a Python number, or a 0-d tensor beside a tensor with dims): they compute in float32 with the
scalar's own value and round once. Rounding the scalar to the tensor's dtype first, as the
promotion does for every other op, gives an ulp more or less in 2-55% of the elements, by the
scalar (21% for ``x_half * gt.tensor(0.3)``), and floor quotients one less at the boundaries
(``-29.703 // 0.3`` is -100)."""

import struct

from gt import dtypes
from gt.autograd import function
from gt.backend import B
from gt.tensor.exact_values import needs_grad, with_grad

_FLOAT16, _BFLOAT16 = dtypes.HALVES


def _is_half(dt):
    return dt is _FLOAT16 or dt is _BFLOAT16      # (``is``: ``in`` would call DType.__eq__, 0.4 us)


def is_half_scalar_pair(a, b):
    """Whether ``a`` is a float16/bfloat16 tensor that keeps its dtype beside ``b``, a real number or
    a 0-d tensor of another real dtype whose value the promotion would round."""
    Tensor = function.Tensor
    if not isinstance(a, Tensor):
        return False
    if not _is_half(a.dtype):
        return False
    if type(b) is float or type(b) is int:
        return True
    return isinstance(b, Tensor) and b.ndim == 0 and a.ndim > 0 and b.dtype is not a.dtype and \
        not b.dtype.is_complex and b.dtype is not dtypes.bool_


def in_float32(fn, operands, promoted):
    """``fn(*operands)`` computed in float32 (a number with its own value) and rounded once to the
    first operand's float16/bfloat16 dtype, as torch's kernels for a scalar operand and its fused
    ``addcmul``/``addcdiv`` (its opmath); the gradient is that of ``promoted()`` (the op in the
    tensors' dtype, as torch's backward)."""
    Tensor = function.Tensor
    with function.no_grad():
        value = fn(*(x.to(dtypes.float32) if isinstance(x, Tensor) else x for x in operands)).to(operands[0].dtype)
    return with_grad(value, promoted()) if needs_grad(*operands) else value


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


def is_half_triple(a, b, c):
    """Whether three tensors share one float16/bfloat16 dtype (torch's fused ops compute those in float32)."""
    dt = a.dtype
    return _is_half(dt) and b.dtype is dt and c.dtype is dt


def fused_update(fn, half_fn):
    """The in-place ``a += fn(x, y)`` on engine arrays; where ``a`` is a float16/bfloat16 array,
    ``a += half_fn(x, y)`` in float32 with one rounding (``in_float32``'s rule for
    ``addcmul_``/``addcdiv_``, in torch's order of operations)."""
    def update(a, x, y):
        if not _is_half(B.dtype_of(a)):
            a += fn(x, y)       # (the order the optimizers' engine kernels match to the bit)
            return
        f32 = dtypes.float32
        wide = B.astype(a, f32)
        wide += half_fn(B.astype(x, f32) if B.is_array(x) else x, B.astype(y, f32) if B.is_array(y) else y)
        a[...] = wide
    return update
