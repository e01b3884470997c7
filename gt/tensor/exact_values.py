"""Values computed exactly on each device's arrays, with a gradient taken from a simpler
expression (``ExactValue``): what ``fmod``, ``copysign``, ``nextafter`` (bitwise_methods.py) and
``%`` (rounded_division.py) share."""

from gt.autograd import forward_ad, function
from gt.backend import B
from gt.ops import bitwise_kernels as bk
from gt.ops.exact_value import ExactValue
from gt.tensor.dispatch import map_local


def needs_grad(*xs):
    """Whether a gradient is being recorded for one of ``xs`` (tensors and numbers)."""
    Tensor = function.Tensor
    return function.is_grad_enabled() and any(isinstance(x, Tensor) and x.requires_grad for x in xs) or \
        forward_ad.dual_values(None, xs)     # or a tangent flows (gt/autograd/forward_ad.py)


def local(fn, args):
    """``fn`` of the arrays of ``args`` (tensors and Python numbers), per device where one is sharded."""
    Tensor = function.Tensor
    if all(x._placed is None for x in args if isinstance(x, Tensor)):
        arrays = [x._array if isinstance(x, Tensor) else x for x in args]
        return Tensor._wrap(B.iterator_layout(bk.arr(fn(*arrays)), *arrays))
    return map_local(fn, args)


def with_grad(value, expr, *zero_grad_inputs):
    """``value``, with ``expr``'s gradient where one is being recorded."""
    if expr is None:
        return value
    return ExactValue.apply(expr, value, *zero_grad_inputs)
