"""torch's ``_fake_quantize_learnable_per_tensor_affine`` / ``_per_channel_affine``: fake quantization
whose scale and zero point are learned (LSQ, ``_LearnableFakeQuantize``). The values are those of
``fake_quantize_per_tensor_affine``/``_per_channel_affine`` with the zero point rounded and clamped;
the gradients are torch's kernel's, element by element in float32 in its order of operations, then
summed (per channel: over every axis but the channel's):

- ``x``: ``dY`` where ``q = round(zp + x / scale)`` lies in [quant_min, quant_max], else 0;
- ``scale``: ``dY * (fq(x) - x) / scale`` inside the range, ``dY * (quant_min - zp)`` below it and
  ``dY * (quant_max - zp)`` above it;
- ``zero_point``: 0 inside the range, ``-dY * scale`` outside it;

the last two times ``grad_factor``. Per tensor the backward takes the zero point as
``trunc(clamp(zp + 0.5))``, the forward as ``round(zp)`` (torch's ``_get_zero_point_from_tensor``);
per channel both take ``clamp(round(zp))``.
"""

from gt import autograd, dtypes
from gt.autograd import Function
from gt.backend import B
from gt.dtypes import round_float32
from gt.tensor import creation, quantize_math, rules
from gt.tensor.quantize_functions import fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine


class LearnableFakeQuantize(Function):
    """The node: ``out`` as given; the gradients of ``x``, ``scale`` and ``zero_point`` (laid to
    broadcast against ``x``) from the per-element terms the forward found (the walk sums them to
    the parameters' shapes)."""

    def forward(self, x, scale, zero_point, out, mask, scale_term, scale_factor, zero_point_term, grad_factor=1.0):
        self.terms, self.grad_factor = (mask, scale_term, scale_factor, zero_point_term), grad_factor
        return B.copy(out)

    def backward(self, g):
        mask, scale_term, scale_factor, zero_point_term = self.terms
        dx = B.multiply(g, B.astype(mask, B.dtype_of(g)))
        # torch's order: ((dY * term) * factor) * grad_factor, each product rounded to float32; + 0.0:
        # torch's sum over the elements starts at +0.0, so a -0.0 term (dY * 0) never shows
        dscale = B.add(B.multiply(B.multiply(B.multiply(g, scale_term), scale_factor), self.grad_factor), 0.0)
        dzero_point = B.add(B.multiply(B.multiply(g, zero_point_term), self.grad_factor), 0.0)
        return dx, dscale, dzero_point, None, None, None, None, None


rules.RULES[LearnableFakeQuantize] = rules.elementwise


def _terms(x, scale, inv, zero_point, quant_min, quant_max):
    """(mask, scale term, scale factor, zero point term) of torch's backward kernel in float32:
    ``scale``/``inv``/``zero_point`` float32 tensors laid along the channel axis (or 0-d)."""
    with autograd.no_grad():
        q = (x * inv + zero_point).round()      # torch's: float zp + x * inv_scale, then nearbyint
        below, above = q < quant_min, q > quant_max
        inside = ~(below | above)
        # fq(x) - x as torch's compiled kernel has it: one fused multiply-add, rounded once (float64's
        # product is exact, its sum too but for rounding far below float32's)
        error = ((q.clamp(quant_min, quant_max) - zero_point).double() * scale.double() - x.double()).float()
        outside_term = (quant_min - zero_point).where(below, quant_max - zero_point)
        return inside, error.where(inside, outside_term), inv.where(inside, 1.0), (-scale).where(~inside, 0.0)


def _apply(input, scale, zero_point, out, terms, grad_factor):
    if not ((input.requires_grad or scale.requires_grad or zero_point.requires_grad) and autograd.is_grad_enabled()):
        return out
    return LearnableFakeQuantize.apply(input, scale, zero_point, out, *terms,
                                       grad_factor=round_float32(float(grad_factor)))


def _check(input, scale, zero_point, quant_min, quant_max):
    if input.dtype != dtypes.float32:
        raise RuntimeError(f"_fake_quantize_learnable: gt takes a float32 input, got {input.dtype!r}")
    if scale.dtype != dtypes.float32 or zero_point.dtype != dtypes.float32:
        raise RuntimeError(f"_fake_quantize_learnable: scale and zero_point must be float32 tensors, got "
                           f"{scale.dtype!r} and {zero_point.dtype!r}")
    if quant_min > quant_max:
        raise RuntimeError("`quant_min` should be less than or equal to `quant_max`.")


def _f32(value):
    return creation.tensor(value, dtype=dtypes.float32)


def _fake_quantize_learnable_per_tensor_affine(input, scale, zero_point, quant_min, quant_max, grad_factor=1.0):
    """``input`` (float32, any shape) fake-quantized with the learnable ``scale`` and
    ``zero_point`` (float32 (1,) tensors): a tensor of ``input``'s shape whose backward gives
    ``input``, ``scale`` and ``zero_point`` torch's gradients (see the module docstring)."""
    _check(input, scale, zero_point, quant_min, quant_max)
    scale_value = round_float32(float(scale.reshape(-1)[0].item()))
    zp = float(zero_point.reshape(-1)[0].item())
    forward_zp = int(min(max(float(round(zp)), quant_min), quant_max))        # round: half to even, as nearbyint
    backward_zp = int(min(max(round_float32(zp + 0.5), quant_min), quant_max))
    x = input.detach()
    out = fake_quantize_per_tensor_affine(x, scale_value, forward_zp, quant_min, quant_max)
    terms = _terms(x, _f32(scale_value), _f32(quantize_math.inverse_scale(scale_value)), _f32(backward_zp),
                   quant_min, quant_max)
    return _apply(input, scale, zero_point, out, terms, grad_factor)


def _fake_quantize_learnable_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max,
                                                grad_factor=1.0):
    """``_fake_quantize_learnable_per_tensor_affine`` with ``scale[c]``/``zero_point[c]`` (float32
    (channels,)) for the slices ``c`` along ``axis``; the gradients summed per channel."""
    _check(input, scale, zero_point, quant_min, quant_max)
    x = input.detach()
    with autograd.no_grad():
        rounded = zero_point.detach().round().clamp(quant_min, quant_max)
        out = fake_quantize_per_channel_affine(x, scale.detach(), rounded.int(), axis, quant_min, quant_max)
        shape = quantize_math.channel_shape(input.ndim, axis)
        s = scale.detach().reshape(shape)
        terms = _terms(x, s, 1.0 / s, rounded.reshape(shape), quant_min, quant_max)
    return _apply(input, scale.reshape(shape), zero_point.reshape(shape), out, terms, grad_factor)
