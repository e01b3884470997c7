"""The dynamically quantized Linear's op (gt/ao/nn/quantized/dynamic.py): no gradient, as torch's
``quantized::linear_dynamic`` has none, so it lives apart from the differentiable ops of linalg.py
(each of which the gradient suite covers)."""

import math
import warnings

from gt import dtypes
from gt.autograd import Function
from gt.backend import B


class QuantizedLinear(Function):
    """A dynamically quantized Linear (gt/ao) as fbgemm computes it: ``x`` (..., in) float32 is
    quantized with ``inverse`` (1/scale as float32), ``zero_point`` and the largest integer
    ``qmax``; its integers less the zero point times ``weight`` (out, in) int8 (or int16: integers
    less their zero points), summed exactly, times ``scale`` (the input's and the weight's scales'
    float32 product: a number, or an (out,) tensor per output channel), plus ``bias`` (out,)
    float32 or None -> float32 (..., out), rounded once (``B.quantized_linear``). The quantization
    parameters are the whole input's: a batch shard stays local (Linear's sharding rule).
    ``weight_scale`` (the weight's own scale), given where each device sees the whole input,
    lets the engine run its library's kernel (fbgemm's, on the torch engine's CPU), which
    chooses the same parameters itself."""

    def forward(self, x, weight, bias, inverse, zero_point, qmax, scale, weight_scale=None):
        if weight_scale is not None:
            out = B.quantized_linear_packed(x, weight, weight_scale, bias)
            if out is not None:
                return out
        xc = B.quantize_centered(x, inverse, zero_point, qmax)
        # an int16 weight holds integers less nonzero zero points (up to 255: twice int8's bound)
        wide = 1 if B.dtype_of(weight) == dtypes.int8 else 2
        return B.quantized_linear(xc, weight, scale, bias, max(zero_point, qmax - zero_point) * wide)

    def backward(self, g):
        raise RuntimeError("a dynamically quantized Linear has no gradient (torch's neither)")


_NO_AUTOGRAD = ("{}: an autograd kernel was not registered to the Autograd key(s) but we are trying to backprop "
                "through it. This may lead to silently incorrect behavior.")


class QuantizedLinearUntracked(QuantizedLinear):
    """``QuantizedLinear`` as torch's dynamically quantized recurrent layers record it: an input
    that requires grad gives an output that requires grad, and backward passes nothing back
    through it, with torch's warning (its op has no autograd kernel)."""

    def backward(self, g):
        warnings.warn(_NO_AUTOGRAD.format("quantized::linear_dynamic"))
        return (None,) * 8

    backward_graph = backward      # nothing to record (inside gt.func's transforms too)


class ComputedLinearUntracked(Function):
    """A dynamically quantized Linear's output ``out`` computed apart (fbgemm's saturated sums of
    8-bit inputs, gt/ao/nn/quantized/fbgemm_pairs.py; an input holding NaN or infinities), recorded
    from ``x`` as ``QuantizedLinearUntracked`` records the product: backward passes nothing back,
    with torch's warning."""

    def forward(self, x, out):
        return out

    def backward(self, g):
        warnings.warn(_NO_AUTOGRAD.format("quantized::linear_dynamic"))
        return None, None

    backward_graph = backward


class HalfLinearUntracked(Function):
    """fbgemm's float16-weight product (``quantized::linear_dynamic_fp16``): ``x`` (..., in) float32
    times ``weight`` (out, in), float32 holding float16 values, plus ``bias``, summed in float32;
    recorded as torch records it: nothing passes back to ``x`` (torch's warning), while ``bias``,
    which torch adds apart from its product, gets the sum of the gradient's rows."""

    def forward(self, x, weight, bias):
        return B.linear(x, weight, bias)

    def backward(self, g):
        if self.needs_input_grad[0]:
            warnings.warn(_NO_AUTOGRAD.format("quantized::linear_dynamic_fp16"))
        if len(self.needs_input_grad) < 3 or not self.needs_input_grad[2]:
            return None, None, None
        return None, None, B.sum(B.reshape(g, (math.prod(g.shape[:-1]), g.shape[-1])), axis=0)

    def backward_graph(self, g):
        """``backward`` recorded (gt.func's transforms, ``create_graph=True``): the bias's sum is linear in g."""
        if self.needs_input_grad[0]:
            warnings.warn(_NO_AUTOGRAD.format("quantized::linear_dynamic_fp16"))
        if len(self.needs_input_grad) < 3 or not self.needs_input_grad[2]:
            return None, None, None
        return None, None, g.reshape(-1, g.shape[-1]).sum(0)
