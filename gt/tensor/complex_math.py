"""torch's answers for complex input where gt's real kernels have none: ``logaddexp`` (used by
``logcumsumexp`` too), composed of differentiable ops (``exp``, ``log``...), so gradients follow
torch's convention for complex numbers (gt/ops/complex_ops.py)."""

import math

from gt.autograd import function
from gt.backend import B
from gt.tensor.arithmetic import _operand, where
from gt.tensor.promotion import result_dtype


def complex_logaddexp(a, b):
    """``log(exp(a) + exp(b))`` where ``a`` or ``b`` is complex (broadcast; a number or a tensor), as
    torch computes it: ``log1p(exp(lo - hi)) + hi``, ``hi`` the one with the larger real part (``a``
    on a tie), so the imaginary part is ``hi``'s plus an angle in [-pi/2, pi/2], not the principal
    one of a log (they differ by 2 pi k once an imaginary part is past pi). Both real parts -inf:
    ``lo``; both +inf: ``log(exp(a) + exp(b))`` (torch's cases)."""
    a, b = _operand(a, "logaddexp"), _operand(b, "logaddexp")
    dtype = result_dtype(a, b)
    a, b = (x.to(dtype) if isinstance(x, function.Tensor) else function.Tensor._wrap(B.full((), x, dtype))
            for x in (a, b))
    ra, rb = a.detach().real, b.detach().real
    b_larger = ra < rb
    hi, lo = where(b_larger, b, a), where(b_larger, a, b)
    out = (lo - hi).exp().log1p() + hi
    same_inf = (ra == rb) & (ra.abs() == math.inf)      # lo - hi would be NaN
    if not bool(same_inf.any()):
        return out
    both_plus = (a.exp() + b.exp()).log()
    return where(same_inf, where(ra < 0, lo, both_plus), out)
