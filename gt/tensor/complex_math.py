"""torch's answers for complex input where gt's real kernels have none: ``logaddexp`` (used by
``logcumsumexp`` too), composed of differentiable ops (``exp``, ``log``...), so gradients follow
torch's convention for complex numbers (gt/ops/complex_ops.py)."""

import math

from gt.autograd import function
from gt.backend import B
from gt.tensor.arithmetic import _operand, where
from gt.tensor.promotion import result_dtype


def complex_logaddexp(a, b):
    """``log(exp(a) + exp(b))`` where ``a`` or ``b`` is complex (broadcast; a number or a tensor),
    shifted by the larger real part (not differentiated) so that neither exponential overflows."""
    a, b = _operand(a, "logaddexp"), _operand(b, "logaddexp")
    dtype = result_dtype(a, b)
    a, b = (x.to(dtype) if isinstance(x, function.Tensor) else function.Tensor._wrap(B.full((), x, dtype))
            for x in (a, b))
    ra, rb = a.detach().real, b.detach().real
    shift = where(ra >= rb, ra, rb)
    shift = where(shift.abs() == math.inf, 0.0, shift)     # an infinite shift would give inf - inf
    return ((a - shift).exp() + (b - shift).exp()).log() + shift
