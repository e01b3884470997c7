"""torch's quantization functions: ``gt.quantize_per_tensor``, ``gt.quantize_per_channel``,
``gt.dequantize``, and the float ``gt.fake_quantize_per_tensor_affine``/``_per_channel_affine``
that quantization-aware training differentiates (torch's straight-through gradient: the
incoming gradient where the rounded value lies within [quant_min, quant_max], 0 elsewhere).

Every value is torch 2.13's to the bit (gt/tensor/quantize_math.py says how torch's CPU kernels
round). A dense tensor's ``int_repr``/``q_scale``/... raise torch's NotImplementedError, and its
``dequantize()`` is itself as float32, as torch's.
"""

from gt import autograd, dtypes
from gt.autograd import Function
from gt.backend import B
from gt.dtypes import round_float32
from gt.ops._graph import mask_like
from gt.tensor import quantize_math, rules
from gt.tensor.core import Tensor
from gt.tensor.quantized import (QuantizedTensor, per_channel_affine, per_channel_affine_float_qparams,
                                 per_tensor_affine)

_MADE = (dtypes.quint8, dtypes.qint8, dtypes.qint32, dtypes.quint4x2)


def _check_dtype(dtype, fn):
    dtype = dtypes.to_dtype(dtype)
    if dtype not in _MADE:
        raise RuntimeError(f"ScalarType {dtypes.torch_type_name(dtype.name)} is not supported in new_qtensor.")
    return dtype


def _check_zero_point(zero_point, dtype, kernel):
    low, high = dtypes.QUANTIZED_RANGES[dtype.name]
    if zero_point > high:
        raise RuntimeError(f"{kernel} zero_point {zero_point} is above upper bound.")
    if zero_point < low:
        raise RuntimeError(f"{kernel} zero_point {zero_point} is below lower bound.")


def _number(value, kind, name):
    """A scale or zero point given as a number or a one-element tensor, as a Python number."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise RuntimeError(f"a Tensor with {value.numel()} elements cannot be converted to Scalar")
        return kind(value.item())
    if kind is int and not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"quantize_per_tensor: {name} must be an int or a tensor, got {type(value).__name__}")
    return kind(value)


def quantize_per_tensor(input, scale, zero_point, dtype):
    """``input`` (float32, any shape) quantized with one ``scale`` and ``zero_point`` (numbers or
    one-element tensors) into ``dtype`` (``gt.quint8``, ``gt.qint8``, ``gt.qint32`` or ``gt.quint4x2``:
    4 bits, [0, 15], ``int_repr()`` packing two a byte as torch's): ``clamp(round_half_even(x / scale)
    + zero_point)``, torch's integers to the bit. A list of tensors, with 1-d ``scale``/``zero_point``
    tensors, gives a tuple of quantized tensors, as torch's.

        >>> gt.quantize_per_tensor(gt.tensor([0.26, 1.5]), 0.1, 10, gt.quint8).int_repr().tolist()
        [13, 25]
    """
    if isinstance(input, (list, tuple)):
        return tuple(quantize_per_tensor(x, scale[i], zero_point[i], dtype) for i, x in enumerate(input))
    dtype = _check_dtype(dtype, "quantize_per_tensor")
    if isinstance(scale, Tensor) or isinstance(zero_point, Tensor):
        scale, zero_point = _number(scale, float, "scale"), _number(zero_point, int, "zero_point")
    else:
        scale, zero_point = float(scale), _number(zero_point, int, "zero_point")
    if input.dtype != dtypes.float32:
        raise RuntimeError(f"Quantize only works on Float Tensor, got {dtypes.torch_type_name(input.dtype.name)}")
    _check_zero_point(zero_point, dtype, "quantize_tensor_per_tensor_affine")
    quantize = quantize_math.quantize_sub_byte if dtype == dtypes.quint4x2 else quantize_math.quantize_tensor
    ints = quantize(input.detach(), scale, zero_point, dtype)
    return QuantizedTensor._make(ints, dtype, per_tensor_affine, scale, zero_point)


def quantize_per_tensor_dynamic(input, dtype, reduce_range):
    """``input`` (float32) quantized per tensor into ``dtype`` (``gt.quint8`` or ``gt.qint8``) with
    the scale and zero point torch chooses from its min and max (``ChooseQuantizationParams``;
    ``reduce_range``: a 7-bit range, as fbgemm's kernels want); ``gt.float16`` casts instead."""
    dtype = dtypes.to_dtype(dtype)
    if dtype == dtypes.float16:
        return input.contiguous().to(dtypes.float16)
    if dtype not in (dtypes.quint8, dtypes.qint8):
        raise RuntimeError(f"dtype {dtypes.torch_type_name(dtype.name)}not supported")    # torch's words
    with autograd.no_grad():
        low, high = (float(input.min()), float(input.max())) if input.numel() else (0.0, 0.0)
    qmin, qmax = dtypes.QUANTIZED_RANGES[dtype.name]
    scale, zero_point = quantize_math.choose_qparams(low, high, qmin, qmax, reduce_range)
    return quantize_per_tensor(input, scale, zero_point, dtype)


def quantize_per_channel(input, scales, zero_points, axis, dtype):
    """``input`` (float32) quantized with ``scales[c]``/``zero_points[c]`` (1-d tensors of the
    length of ``input``'s dim ``axis``) for the slices ``c`` along ``axis``, torch's integers to the
    bit; ``q_per_channel_scales()`` are float64, as torch's. Float zero points give torch's
    ``per_channel_affine_float_qparams`` (its quantized embeddings' weights): float32 scales and
    zero points, ``rint(x * (1/scale) + zero_point)``, dequantized ``(q - zero_point) * scale``; the only
    per-channel kind torch makes of ``gt.quint4x2`` (its 4-bit embeddings' weights)."""
    dtype = _check_dtype(dtype, "quantize_per_channel")
    for name, value in (("scales", scales), ("zero_points", zero_points)):
        if not isinstance(value, Tensor):
            raise TypeError(f"quantize_per_channel(): argument '{name}' must be Tensor, not {type(value).__name__}")
    if input.dtype != dtypes.float32:
        raise RuntimeError("quantize_tensor_per_channel_affine expects a Float Tensor, got "
                           f"{dtypes.torch_type_name(input.dtype.name)}")
    if not 0 <= axis < input.ndim:
        raise RuntimeError(f"Channel axis out of range in per channel affine quantization. Got: {axis}Expected: "
                           f"[0, {input.ndim})")
    if scales.numel() != zero_points.numel():
        raise RuntimeError("number of elements in scales and zero_points must match")
    if scales.numel() != input.shape[axis]:
        raise RuntimeError(f"length of scales must equal to channel, expected {input.shape[axis]} got, "
                           f"{scales.numel()}")
    if zero_points.dtype.is_floating_point:     # torch's float qparams (quantized embeddings): float32 both
        scales, zero_points = (v.detach().reshape(-1).float().clone() for v in (scales, zero_points))
        ints = quantize_math.quantize_channels_float_qparams(input.detach(), scales, zero_points, axis, dtype)
        return QuantizedTensor._make(ints, dtype, per_channel_affine_float_qparams, scales, zero_points, axis)
    if dtype == dtypes.quint4x2:       # torch's integer-zero-point kernel has no 4-bit case
        raise RuntimeError("\"quantize_tensor_per_channel_affine\" not implemented for 'QUInt4x2'")
    scales = scales.detach().reshape(-1).double().clone()
    zero_points = zero_points.detach().reshape(-1).long().clone()
    if zero_points.numel():
        for zp in (int(zero_points.max().item()), int(zero_points.min().item())):
            _check_zero_point(zp, dtype, "quantize_tensor_per_channel_affine")
    ints = quantize_math.quantize_channels(input.detach(), scales, zero_points, axis, dtype)
    return QuantizedTensor._make(ints, dtype, per_channel_affine, scales, zero_points, axis)


def dequantize(tensor):
    """``tensor.dequantize()``; of a list of quantized tensors, a tuple of their float32 values."""
    if isinstance(tensor, (list, tuple)):
        return tuple(t.dequantize() for t in tensor)
    return tensor.dequantize()


def _dense_refusal(name, op):
    def refuse(self, *args, **kwargs):
        backend = "CUDA" if getattr(self.device, "type", "cpu") == "cuda" else "CPU"
        raise NotImplementedError(f"Could not run 'aten::{op}' with arguments from the '{backend}' backend: "
                                  f"{name} needs a quantized tensor (gt.quantize_per_tensor, gt.quantize_per_channel)")
    refuse.__name__ = name
    refuse.__doc__ = f"torch's ``{name}`` of a quantized tensor; a dense tensor raises torch's NotImplementedError."
    return refuse


def _dense_dequantize(self):
    """A dense tensor's ``dequantize()``: itself as float32 (torch's ``self.to(torch.float)``)."""
    return self.to(dtypes.float32)


Tensor.dequantize = _dense_dequantize
for _name, _op in (("int_repr", "int_repr"), ("q_scale", "q_scale"),
                   ("q_zero_point", "q_zero_point"), ("q_per_channel_scales", "q_per_channel_scales"),
                   ("q_per_channel_zero_points", "q_per_channel_zero_points"),
                   ("q_per_channel_axis", "q_per_channel_axis"), ("qscheme", "qscheme")):
    setattr(Tensor, _name, _dense_refusal(_name, _op))


# ---- fake quantization (quantization-aware training) --------------------------------------------
def _fake(x, inv, zero_point, scale, quant_min, quant_max, finite_only=False, exact_zero_point=None,
          float_zero_point=False):
    """(values, mask) of torch's fake quantization of ``x`` (float32/64): ``inv``/``scale`` and
    ``zero_point`` are numbers or tensors laid along the channel axis. ``zp + round(x * inv)`` is
    in ``x``'s precision (float32: a large zero point rounds, as torch's); the clamped integer
    minus the zero point (``exact_zero_point``: float64, where ``zero_point`` is rounded) is
    exact; ``finite_only``: a non-finite value goes to ``quant_min`` (torch's per-channel kernel
    casts it to int64), else NaN does and infinities clamp. ``float_zero_point``: torch's kernel
    for a float zero point, ``round(x * inv + zp)`` with one rounding to float32 before the
    integer (its compiled fused multiply-add)."""
    work = x if x.dtype in (dtypes.float32, dtypes.float64) else x.float()
    with autograd.no_grad():
        if float_zero_point:
            v = (work.double() * inv.double() + zero_point.double()).to(work.dtype).round().double()
        else:
            v = ((work * inv).round() + zero_point).double()
        mask = (v >= quant_min) & (v <= quant_max)
        if finite_only:
            v = v.where(v.isfinite(), float(quant_min))
        exact = zero_point if exact_zero_point is None else exact_zero_point
        k = v.clamp(quant_min, quant_max).nan_to_num(nan=float(quant_min)) - exact
        # torch's per-channel kernel multiplies in float64 (std::fmin's double times the scale), its
        # per-tensor one in float32
        out = k * scale.double() if finite_only else k.float() * scale
    return out.to(x.dtype), mask


class StraightThrough(Function):
    """Fake quantization's node: its values ``out`` as given, and the incoming gradient times
    ``mask`` for ``x`` (torch's straight-through estimator, ``dY * mask``); none for the others."""

    def forward(self, x, out, mask):
        self.mask = mask
        return B.copy(out)

    def backward(self, g):
        return B.multiply(g, B.astype(self.mask, B.dtype_of(g))), None, None

    def backward_graph(self, g):
        # torch's records ``dY * mask`` too: a second derivative through it w.r.t. ``dY`` is the
        # mask, w.r.t. ``x`` none (the mask is piecewise constant)
        return g * mask_like(g, self.mask), None, None


rules.RULES[StraightThrough] = rules.elementwise       # each device's share on its own


def _straight_through(x, out, mask):
    return StraightThrough.apply(x, out, mask) if x.requires_grad and autograd.is_grad_enabled() else out


def _check_range(zero_point, quant_min, quant_max, check_zero_point=True):
    if quant_min > quant_max:
        raise RuntimeError("`quant_min` should be less than or equal to `quant_max`.")
    if check_zero_point and not quant_min <= zero_point <= quant_max:
        raise RuntimeError("`zero_point` must be between `quant_min` and `quant_max`.")


def fake_quantize_per_tensor_affine(input, scale, zero_point, quant_min, quant_max):
    """``input`` quantized to the integers [quant_min, quant_max] with ``scale``/``zero_point``
    (numbers, or one-element float32/int32 tensors) and dequantized again: a tensor of
    ``input``'s dtype and shape, torch's values to the bit. Its gradient is the incoming one
    where ``round(x / scale) + zero_point`` lies in [quant_min, quant_max], else 0 (torch's
    straight-through estimator); ``scale`` and ``zero_point`` get none."""
    scale = round_float32(float(scale.item()) if isinstance(scale, Tensor) else float(scale))
    zero_point = int(zero_point.item()) if isinstance(zero_point, Tensor) else int(zero_point)
    _check_range(zero_point, quant_min, quant_max)
    out, mask = _fake(input.detach(), quantize_math.inverse_scale(scale), float(zero_point), scale,
                      quant_min, quant_max)
    return _straight_through(input, out, mask)


def fake_quantize_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max):
    """``fake_quantize_per_tensor_affine`` with ``scale[c]`` (float32, (channels,)) and
    ``zero_point[c]`` (int32, or float32 as embeddings' float qparams: ``round(x / scale + zp)``)
    for the slices ``c`` along ``axis``; the same gradient."""
    if scale.dtype != dtypes.float32:
        raise RuntimeError(f"Scale must be Float or BFloat16, found {dtypes.torch_type_name(scale.dtype.name)}")
    if zero_point.dtype not in (dtypes.int32, dtypes.float32):
        raise RuntimeError(f"Zero-point must be Int32, Float or Half, found "
                           f"{dtypes.torch_type_name(zero_point.dtype.name)}"
                           + (" (gt takes Int32 and Float)" if zero_point.dtype.is_floating_point else ""))
    if not 0 <= axis < input.ndim:
        raise RuntimeError("`axis` must be between 0 and number of dimensions of input")
    if scale.ndim != 1 or zero_point.ndim != 1 or scale.numel() != zero_point.numel() or \
            scale.numel() != input.shape[axis]:
        raise RuntimeError("dimensions of scale and zero-point are not consistent with input tensor")
    _check_range(0, quant_min, quant_max, check_zero_point=False)
    # torch checks an integer zero point only (a float one, -min / scale, may lie anywhere)
    if zero_point.numel() and zero_point.dtype == dtypes.int32 and \
            (int(zero_point.min().item()) < quant_min or int(zero_point.max().item()) > quant_max):
        raise RuntimeError("`zero_point` must be between `quant_min` and `quant_max`.")
    shape = quantize_math.channel_shape(input.ndim, axis)
    with autograd.no_grad():
        scale = scale.detach().reshape(shape)
        inv, zp = 1.0 / scale, zero_point.detach().reshape(shape)
    work_dtype = input.dtype if input.dtype == dtypes.float64 else dtypes.float32
    out, mask = _fake(input.detach(), inv.to(work_dtype), zp.to(work_dtype), scale, quant_min, quant_max,
                      finite_only=True, exact_zero_point=zp.double(),
                      float_zero_point=zero_point.dtype.is_floating_point)
    return _straight_through(input, out, mask)
