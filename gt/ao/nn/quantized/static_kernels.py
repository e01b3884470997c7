"""The arithmetic of torch 2.13's statically quantized CPU kernels, replayed with gt's dense ops
(both engines, sharded or not), found by testing against ``torch.ops.quantized`` on many random
inputs, exact .5 ties included.

- Linear, Conv1d/2d/3d and ConvTranspose1d/2d/3d (fbgemm, the ``fbgemm`` engine; ``x86``'s Linear and
  Conv2d are fbgemm's too; its ConvTranspose with a symmetric weight and no output padding runs oneDNN on an
  AVX-512 VNNI CPU, whose values torch 2.13 gets wrong (tens of output scales off the float result;
  gt follows fbgemm)): the int32
  sum ``acc = sum((x_q - x_zp) * (w_q - w_zp))`` (exact here: float32 gemms over blocks short enough
  that no partial sum reaches 2**24, added in float64; a convolution too long for one block runs
  in float64; on a CPU without AVX-512 VNNI less what fbgemm's int16 saturation of pairs of products
  takes off, fbgemm_pairs.py), then
  fbgemm's ``requantizeOutputProcessing`` with a float bias, all in float32:
  ``ats = x_scale * w_scale[c]``, ``m = ats / out_scale``, ``y = (float(acc) + bias[c] / ats) * m``,
  ``q = rint(y) + out_zp`` clamped to [0, 255] ([out_zp, 255] with a fused ReLU).
- ``quantized::mul``: ``rint(float((a_q - a_zp) * (b_q - b_zp)) * m) + zp`` with ``m = a_scale *
  b_scale * (1 / scale)`` in float32.
- ``quantized::add`` (and ``add_relu``): ``c = (a_q - a_zp) * a_scale + (b_q - b_zp) * b_scale`` in
  float32; ``rint(c * (1 / scale)) + zp`` over the vectorised part (the first ``n // 64 * 64``
  values, with torch's AVX-512 and AVX2 kernels alike), ``rint(c * (1 / scale) + zp)``
  (fbgemm's LEGACY rounding) over the rest: the two differ on exact .5 ties with an odd zero point.
  In torch the order is the memory's: a channels-last tensor (a quantized convolution's output)
  has another tail, which gt (whose quantized tensors keep no memory format) does not follow.
- ``quantized::cat``: dequantize, concatenate, quantize per tensor.
"""

import math

from gt import autograd, dtypes
from gt.ao.nn.quantized import fbgemm_pairs
from gt.dtypes import round_float32
from gt.nn import functional as F
from gt.tensor import creation, functions
from gt.tensor.quantize_functions import quantize_per_tensor
from gt.tensor.quantized import QuantizedTensor, per_tensor_affine


# quint8 values torch's qadd loop takes a step, measured on torch 2.13 with its AVX-512 and (by
# ATEN_CPU_CAPABILITY=avx2) its AVX2 kernels alike: its scalar tail starts after the last whole step
VECTOR = 64
EXACT = 2 ** 24     # integers below it are exact in float32: BLAS's float32 products are exact in blocks


def check_input(x, name):
    """``x`` must be a quint8 tensor quantized per tensor (torch's quantized kernels' activations)."""
    if not isinstance(x, QuantizedTensor):
        raise RuntimeError(f"{name}: expected a quantized input (quint8, per tensor), got a float tensor of dtype "
                           f"{getattr(x, 'dtype', type(x).__name__)!r}; put a QuantStub (gt.ao.nn.quantized.Quantize)"
                           " before it")
    if x.dtype != dtypes.quint8 or x.qscheme() != per_tensor_affine:
        raise RuntimeError(f"{name}: expected a quint8 input quantized per tensor, got {x.dtype!r}, "
                           f"{x.qscheme()!r}")


def _centered(q):
    """A quantized tensor's integers less its zero point(s), as exact float32."""
    ints = q._q_int.float()
    if q.qscheme() == per_tensor_affine:
        return ints - float(q.q_zero_point())
    shape = [1] * q.ndim
    shape[q.q_per_channel_axis()] = -1
    return ints - q.q_per_channel_zero_points().float().reshape(shape)


def _bound(q):
    """The largest magnitude of ``q``'s centered integers."""
    low, high = dtypes.QUANTIZED_RANGES[q.dtype.name]
    if q.qscheme() == per_tensor_affine:
        zero_points = [q.q_zero_point()]
    else:
        zero_points = q.q_per_channel_zero_points()
        zero_points = [int(zero_points.min()), int(zero_points.max())] if zero_points.numel() else [0]
    return max(max(z - low, high - z) for z in zero_points)


def _block(x, w):
    """How many products a float32 sum may take and stay exact: every partial sum below 2**24."""
    return max(1, EXACT // max(1, _bound(x) * _bound(w)))


def _weight_scales(w, channels):
    """The weight's scales as fbgemm keeps them: float32, one per output channel."""
    if w.qscheme() == per_tensor_affine:
        return creation.full((channels,), round_float32(w.q_scale()), dtype=dtypes.float32)
    return w.q_per_channel_scales().float()


def requantize(acc, x_scale, w, bias, scale, zero_point, relu, channel_shape):
    """fbgemm's float requantization of the exact int32 sums ``acc`` (float64, output channels along
    ``channel_shape``'s -1) -> the output's quint8 quantized tensor."""
    channels = acc.shape[channel_shape.index(-1) - len(channel_shape)]
    ats = _weight_scales(w, channels) * round_float32(x_scale)
    mult = (ats / round_float32(scale)).reshape(channel_shape)
    y = acc.float()
    if bias is not None:
        y = y + (bias.detach().float() / ats).reshape(channel_shape)
    q = (y * mult).round() + float(zero_point)
    q = q.clamp(float(zero_point) if relu else 0.0, 255.0).to(dtypes.uint8)
    return QuantizedTensor._make(q, dtypes.quint8, per_tensor_affine, float(scale), int(zero_point))


def linear(x, w, bias, scale, zero_point, relu=False):
    """torch's ``quantized::linear`` (``linear_relu``): ``x`` (..., in) quint8, ``w`` (out, in) qint8
    (per tensor or per channel), ``bias`` (out,) float or None -> (..., out) quint8 of ``scale``/``zero_point``."""
    check_input(x, "quantized::linear")
    with autograd.no_grad():
        xc, wc = _centered(x), _centered(w).t()
        k, block = xc.shape[-1], _block(x, w)
        if k <= block:     # one float32 gemm, exact (the usual case: 514 products of 255 by 128)
            acc = xc.matmul(wc)
        else:              # exact float32 blocks, added in float64
            acc = sum(xc[..., i:i + block].matmul(wc[i:i + block]).double() for i in range(0, k, block))
        off = fbgemm_pairs.saturation(x._q_int.float(), w._q_int.float())
        acc = acc if off is None else acc.double() + off
        return requantize(acc, x.q_scale(), w, bias, scale, zero_point, relu, (-1,))


# torch's quantized Conv1d/2d/3d ask for these input shapes, in these words
_CONV_SHAPES = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
_CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def conv(x, w, bias, stride, padding, dilation, groups, scale, zero_point, relu=False):
    """torch's ``quantized::conv1d``/``conv2d``/``conv3d`` (and their ``_relu``), fbgemm's arithmetic:
    ``x`` (N, C, *spatial) quint8, ``w`` (O, C/groups, *kernel) qint8 -> (N, O, *spatial') quint8;
    zero padding pads with the input's zero point (a 0 once centered)."""
    dims = w.ndim - 2
    # every output sums C/groups * prod(kernel) products: one filter's elements
    def run(xc, wc):
        acc = _CONVS[dims](xc, wc, None, stride, padding, dilation, groups)
        off = fbgemm_pairs.conv_saturation(x._q_int.float(), w._q_int.float(), _tuple(stride, dims),
                                           _tuple(padding, dims), _tuple(dilation, dims), groups, x.q_zero_point())
        return acc if off is None else acc.double() + off
    return _exact_conv(x, w, f"quantized::conv{dims}d", math.prod(w.shape[1:]), bias, scale, zero_point, relu, run)


def _tuple(value, dims):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def _exact_conv(x, w, name, products, bias, scale, zero_point, relu, run):
    """The shared steps of the quantized convolutions: checks, the centred integers (in float64 where
    ``products`` terms a sum are too many for float32's exact sums), ``run(xc, wc)`` and the requantization."""
    dims = w.ndim - 2
    check_input(x, name)
    if x.ndim != dims + 2:
        raise ValueError(f"Input shape must be `{_CONV_SHAPES[dims]}`!, got {tuple(x.shape)}")     # torch's words
    with autograd.no_grad():
        xc, wc = _centered(x), _centered(w)
        if products > _block(x, w):
            xc, wc = xc.double(), wc.double()
        return requantize(run(xc, wc), x.q_scale(), w, bias, scale, zero_point, relu, (1, -1) + (1,) * dims)


_CONV_TRANSPOSES = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def conv_transpose(x, w, bias, stride, padding, output_padding, dilation, groups, scale, zero_point):
    """torch's ``quantized::conv_transpose1d``/``2d``/``3d`` (fbgemm's transposed ``fbgemmConv``): ``x``
    (N, C, *spatial) quint8, ``w`` (C, O/groups, *kernel) qint8 per tensor -> (N, O, *spatial') quint8;
    the exact int32 sums requantized as a convolution's."""
    dims = w.ndim - 2
    # an output sums at most C/groups * prod(kernel) products
    products = math.prod(w.shape[1:]) * groups

    def run(xc, wc):
        acc = _CONV_TRANSPOSES[dims](xc, wc, None, stride, padding, output_padding, groups, dilation)
        off = fbgemm_pairs.conv_transpose_saturation(
            x._q_int.float(), w._q_int.float(), _tuple(stride, dims), _tuple(padding, dims),
            _tuple(output_padding, dims), _tuple(dilation, dims), groups, x.q_zero_point())
        return acc if off is None else acc.double() + off
    return _exact_conv(x, w, f"quantized::conv_transpose{dims}d", products, bias, scale, zero_point, False, run)


def _dequantized(q):
    """(q - zp) * scale in float32 (torch's scalar ``dequantize_val``)."""
    return (q._q_int.float() - float(q.q_zero_point())) * round_float32(q.q_scale())


def add(a, b, scale, zero_point, relu=False):
    """torch's ``quantized::add`` (``add_relu``) of two quint8 tensors of one shape (see the module's
    docstring for its two roundings)."""
    for t in (a, b):
        check_input(t, "quantized::add")
    if tuple(a.shape) != tuple(b.shape):
        raise RuntimeError(f"quantized::add: gt adds quantized tensors of one shape, got {tuple(a.shape)} and "
                           f"{tuple(b.shape)}")
    with autograd.no_grad():
        c = _dequantized(a) + _dequantized(b)
        if relu:
            c = c.clamp(min=0.0)
        y = (c * round_float32(1.0 / round_float32(scale))).reshape(-1)
        head = y.shape[0] // VECTOR * VECTOR
        q = F.pad(y[:head].round() + float(zero_point), (0, y.shape[0] - head))
        if head < y.shape[0]:
            tail = (y[head:] + float(zero_point)).round()
            q = q + F.pad(tail, (head, 0))
        q = q.clamp(0.0, 255.0).to(dtypes.uint8).reshape(tuple(a.shape))
    return QuantizedTensor._make(q, dtypes.quint8, per_tensor_affine, float(scale), int(zero_point))


def mul(a, b, scale, zero_point, relu=False):
    """torch's ``quantized::mul`` (``mul_relu``) of two quint8 tensors of one shape."""
    for t in (a, b):
        check_input(t, "quantized::mul")
    with autograd.no_grad():
        mult = round_float32(round_float32(round_float32(a.q_scale()) * round_float32(b.q_scale()))
                             * round_float32(1.0 / round_float32(scale)))
        prod = (a._q_int.int() - a.q_zero_point()) * (b._q_int.int() - b.q_zero_point())
        q = (prod.float() * mult).round() + float(zero_point)
        q = q.clamp(float(zero_point) if relu else 0.0, 255.0).to(dtypes.uint8)
    return QuantizedTensor._make(q, dtypes.quint8, per_tensor_affine, float(scale), int(zero_point))


def cat(tensors, scale, zero_point, dim=0):
    """torch's ``quantized::cat``: the values dequantized, joined along ``dim`` and quantized with
    ``scale``/``zero_point``."""
    for t in tensors:
        check_input(t, "quantized::cat")
    with autograd.no_grad():
        joined = functions.cat([t.dequantize() for t in tensors], dim=dim)
        return quantize_per_tensor(joined, float(scale), int(zero_point), dtypes.quint8)
