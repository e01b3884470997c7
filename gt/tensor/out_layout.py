"""The layout torch's ``out=`` takes when it is resized: the result's dense order of dims over
out's memory (TensorIterator's resize). For a result sharded over the mesh whose blocks hold one
row each along the sharded axis, no block tells where that axis lies among the others (a dim of
size 1 has no meaningful stride): the order then comes from the call's operands, where their
layout on one device is known and decides it, as TensorIterator's does."""

from gt.backend import B
from gt.backend.dim_order import innermost_first, is_dense, iterator_strides
from gt.sharding.layout import logical_strides
from gt.tensor.core import Tensor


# torch's functions whose out= is TensorIterator's output (checked in torch 2.13: a permuted first
# operand's layout is out's), so that their operands' layouts decide where a result's blocks cannot
POINTWISE = frozenset("""
abs absolute acos arccos acosh arccosh add addcdiv addcmul angle asin arcsin asinh arcsinh atan arctan atan2 arctan2
atanh arctanh bitwise_and bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift bitwise_xor ceil clamp
clamp_max clamp_min clip copysign cos cosh deg2rad digamma div divide eq erf erfc erfinv exp exp2 expm1 fix
float_power floor floor_divide fmax fmin fmod frac gcd ge greater greater_equal gt heaviside hypot i0 igamma igammac
lcm ldexp le less less_equal lerp lgamma log log10 log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or
logical_xor logit lt maximum minimum mul multiply nan_to_num ne neg negative nextafter not_equal polygamma pow
rad2deg reciprocal remainder round rsqrt sgn sigmoid sign signbit sin sinc sinh sqrt square sub subtract tan tanh
true_divide trunc where xlogy""".split())


def take_layout(out, result, operands=(), name=None):
    """Lay the resized ``out`` out in ``result``'s dense order over its memory, as torch's
    TensorIterator resizes an output to the strides it computed (``torch.sub(x.t(), y, out=e)``
    of an empty ``e`` is transposed); its other ops' results are row-major, as is ``out`` then.
    ``operands``: the call's arguments, read where the result's blocks leave the order open;
    ``name``: the function's (``POINTWISE`` ones' operands decide even where blocks look row-major)."""
    if out._placed is not None or result.numel() < 2:
        return
    stride = result.stride() if result._placed is None else logical_strides(result._placed)
    if stride is None:      # sharded blocks of their own: their order of dims (as all_gather joins them)
        axis = result._placed.placement.axis
        block = next((b for b in result._placed.shards if b.shape[axis] > 1 and B.numel(b)), None)
        if block is None:
            stride = _from_operands(result, operands, name in POINTWISE)
            if stride is None:
                return      # neither a block nor the operands tell where the axis lies: row-major
        else:
            stride = _dense(result.shape, innermost_first(tuple(block.shape), [B.element_strides(block)]))
    if stride != out.stride() and is_dense(result.shape, stride):
        out.as_strided_(result.shape, stride)


def _dense(shape, order):
    stride, step = [0] * len(shape), 1
    for d in order:
        stride[d], step = step, step * shape[d]
    return tuple(stride)


def _from_operands(result, operands, pointwise):
    """The strides TensorIterator gives ``result`` (sharded, one row per block) from the tensor
    ``operands`` of its shape or broadcasting to it, or None unless they are exact: the operands'
    one-device strides are known up to the first one whose strides order every pair of dims (a
    later one decides nothing), and the result's blocks order the dims other than the sharded one
    as those strides do; unless ``pointwise``, in an order that is not row-major (an op whose
    results are row-major whatever its inputs, a scan, leaves its blocks row-major: those keep it)."""
    shape, axis = tuple(result.shape), result._placed.placement.axis
    block = next((b for b in result._placed.shards if B.numel(b)), None)
    known, exact = [], True
    for t in operands:
        if not isinstance(t, Tensor) or t.ndim == 0:
            continue
        if t.ndim > len(shape) or any(n not in (1, m) for n, m in zip(t.shape[::-1], shape[::-1])):
            return None         # not an operand TensorIterator broadcasts to the result
        strides = t.stride() if t._placed is None else logical_strides(t._placed)
        if strides is None:
            exact = False       # unknown: it decides what the ones before leave open
            break
        known.append((tuple(t.shape), tuple(strides)))
        if _orders_all(shape, known[-1]):
            break
    if block is None or not known or not (exact or _orders_all(shape, known[-1])):
        return None
    want = iterator_strides(shape, known)
    others = [d for d in innermost_first(shape, [want]) if d != axis and shape[d] > 1]
    seen = [d for d in innermost_first(tuple(block.shape), [B.element_strides(block)])
            if d != axis and shape[d] > 1]
    # the blocks must agree; row-major ones may be an op's that is row-major whatever its inputs
    if seen != others or (not pointwise and seen == sorted(seen, reverse=True)):
        return None
    return want


def _orders_all(shape, operand):
    # the operand's strides order every pair of the result's dims of more than one element (a dim
    # it broadcasts along orders nothing)
    a_shape, strides = operand
    steps = [s for i, (n, s) in enumerate(zip(a_shape, strides)) if n > 1]
    return len(steps) == sum(n > 1 for n in shape) and 0 not in steps and len(set(steps)) == len(steps)
