"""The arithmetic of torch 2.13's affine quantization on the CPU, replayed with gt's dense ops
(so both engines and the mesh give torch's integers to the bit).

torch's x86 kernels differ by path, and each is followed here:

- per tensor, quint8/qint8 (fbgemm's vectorised ``Quantize``, LEGACY): ``fma(x, 1/scale, zp)``
  rounded once to float32, then rounded half to even and clamped; NaN becomes the dtype's max.
- per tensor, qint32, and per channel (every dtype): ``x * (1/scale)`` in float32, plus ``zp``
  in float32, rounded half to even, clamped; NaN becomes the dtype's min.
- ``1/scale`` is float32's: ``1.0f / (float)scale``.
- dequantize per tensor: ``float(q - zp) * (float)scale`` in float32, ``q - zp`` in int32; per channel:
  ``float(q) - float(zp)`` in float32, times ``scale`` in float64, rounded to float32.

The fma is computed in float64: ``x * (1/scale)`` is exact there (24 + 24 bits) and adding an
integer zero point is exact unless the product is far below it, where a double rounding could
move a value lying within 2**-53 of a float32 midpoint (one input in about 2**30).
"""

import math

from gt import autograd, dtypes
from gt.tensor import creation
from gt.dtypes import round_float32

_SMALL_SCALE = round_float32(6.1e-5)     # fbgemm's SMALL_SCALE_THRESHOLD (a float)


def choose_qparams(low, high, qmin=0, qmax=255, reduce_range=True):
    """(scale, zero_point) torch's ``quant_utils::ChooseQuantizationParams`` picks for values in
    [low, high] (Python floats: a float32 tensor's min and max), without preserve_sparsity or a
    power-of-two scale; the scale is a float64 (torch's: computed in float64, used as float32 by
    the kernels that quantize with it)."""
    if not low <= high:          # a NaN among the values (torch's check)
        raise RuntimeError("In ChooseQuantizationParams, min should be less than or equal to max")
    if reduce_range:
        qmin, qmax = qmin // 2, qmax // 2
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / (qmax - qmin)
    if round_float32(scale) == 0 or math.isinf(round_float32(1.0 / round_float32(scale))):
        scale = 0.1       # torch's: a scale whose reciprocal overflows float32
    if scale < _SMALL_SCALE:
        tiny, scale = round_float32(scale), _SMALL_SCALE
        if low == 0:
            high = round_float32(_SMALL_SCALE * (qmax - qmin))
        elif high == 0:
            low = round_float32(-_SMALL_SCALE * (qmax - qmin))
        else:
            amplifier = round_float32(_SMALL_SCALE / tiny)
            low, high = round_float32(low * amplifier), round_float32(high * amplifier)
    from_min, from_max = qmin - low / scale, qmax - high / scale
    # the pair whose terms are smaller gives the smaller rounding error (torch's choice)
    initial = from_min if abs(qmin) - abs(low / scale) < abs(qmax) - abs(high / scale) else from_max
    # NaN (an infinite value: scale inf) becomes int32's least, as the C++ conversion on x86
    zero_point = qmin if initial < qmin else qmax if initial > qmax else round(initial) if initial == initial \
        else -2 ** 31
    return scale, int(zero_point)


def inverse_scale(scale):
    """``1.0f / (float)scale`` as a Python float (float32's quotient: float64's, rounded once,
    is float32's correctly rounded one); 1/0 is inf as in C."""
    s = round_float32(scale)
    if s == 0:
        return math.copysign(math.inf, s)
    return round_float32(1.0 / s)


def channel_shape(ndim, axis):
    """The shape that lays a per-channel vector along ``axis`` of an ``ndim``-d tensor."""
    shape = [1] * ndim
    shape[axis] = -1
    return tuple(shape)


def _finish(v, dtype, nan_to):
    """``v`` (float, rounded) clamped into ``dtype``'s range, NaN at ``nan_to``, as its integer type."""
    low, high = dtypes.QUANTIZED_RANGES[dtype.name]
    v = v.double().clamp(low, high)
    return v.nan_to_num(nan=float(nan_to)).to(dtypes.QUANTIZED_INT[dtype])


def quantize_tensor(x, scale, zero_point, dtype):
    """The integers (``int_repr``) of float32 tensor ``x`` quantized with one ``scale`` and
    ``zero_point`` (Python numbers) into the quantized ``dtype``."""
    low, high = dtypes.QUANTIZED_RANGES[dtype.name]
    inv = inverse_scale(scale)
    with autograd.no_grad():
        if dtype == dtypes.qint32:
            return _finish((x * inv + float(zero_point)).round(), dtype, low)
        return _finish((x.double() * inv + float(zero_point)).float().round(), dtype, high)


def quantize_channels(x, scales, zero_points, axis, dtype):
    """The integers of float32 tensor ``x`` quantized with ``scales[c]``/``zero_points[c]``
    (1-d float64/int64 tensors) along ``axis``."""
    # NaN: torch converts it to int32 (INT_MIN) and keeps the low byte for an 8-bit dtype: 0
    nan_to = dtypes.QUANTIZED_RANGES["qint32"][0] if dtype == dtypes.qint32 else 0
    shape = channel_shape(x.ndim, axis)
    with autograd.no_grad():
        inv = (1.0 / scales.float()).reshape(shape)
        return _finish((x * inv + zero_points.float().reshape(shape)).round(), dtype, nan_to)


def quantize_channels_float_qparams(x, scales, zero_points, axis, dtype):
    """The integers of float32 ``x`` quantized with float32 ``scales``/``zero_points`` along ``axis``
    (torch's per_channel_affine_float_qparams): ``lrintf(x * inv + zp)`` in float32, ``inv`` 1 where
    the scale is 0, the C long kept as an int32 (wrapping; out of long's range or NaN: 0), clamped."""
    shape = channel_shape(x.ndim, axis)
    with autograd.no_grad():
        scale = scales.float().where(scales.float() != 0, 1.0)
        r = (x * (1.0 / scale).reshape(shape) + zero_points.float().reshape(shape)).round().double()
        r = r.where(r.abs() < 2.0 ** 63, 0.0).remainder(2.0 ** 32)
        low, high = dtypes.QUANTIZED_RANGES[dtype.name]
        r = (r - (r >= 2.0 ** 31).double() * 2.0 ** 32).clamp(low, high)
        return r.to(dtypes.QUANTIZED_INT[dtype])


def dequantize_tensor(q, scale, zero_point):
    """float32 values of the integers ``q`` (a tensor) for one ``scale`` and ``zero_point``."""
    with autograd.no_grad():      # q - zp in int32, wrapping as torch's does (qint32's extremes)
        return (q.int() - int(zero_point)).float() * round_float32(scale)


def dequantize_channels(q, scales, zero_points, axis):
    """float32 values of the integers ``q`` with per-channel ``scales``/``zero_points`` along ``axis``."""
    shape = channel_shape(q.ndim, axis)
    with autograd.no_grad():
        diff = q.float() - zero_points.float().reshape(shape)
        return (diff.double() * scales.double().reshape(shape)).float()


def fbgemm_min_max(x):
    """(min, max) of float32 ``x`` as fbgemm's ``FindMinMax`` finds them (Python floats), for an
    input holding NaN or infinities (a finite one's are its min and max): 8 lanes fold over the
    first ``numel // 8 * 8`` values with AVX's min/max, which return their second operand where
    either is NaN (a lane whose value is NaN restarts at its next one; one NaN at its end is
    skipped), then ``std::min``/``std::max`` fold the lanes and the rest onto ``x[0]``, skipping
    NaN unless ``x[0]`` is NaN (then both are NaN, and ChooseQuantizationParams raises)."""
    with autograd.no_grad():
        flat = x.detach().reshape(-1)
        n = flat.shape[0]
        first = float(flat[0])
        parts = [flat[n // 8 * 8 if n >= 8 else 0:]]
        if n >= 8:
            lanes = flat[:n // 8 * 8].reshape(-1, 8)
            rows = creation.arange(lanes.shape[0]).reshape(-1, 1)
            last_nan = rows.where(lanes.isnan(), -1).amax(0)
            after = rows > last_nan
            kept = last_nan != lanes.shape[0] - 1
            parts += [lanes.where(after, math.inf).amin(0)[kept], lanes.where(after, -math.inf).amax(0)[kept]]
        values = [p[~p.isnan()] for p in parts]
        low = min([first] + [float(v.min()) for v in values if v.numel()])
        high = max([first] + [float(v.max()) for v in values if v.numel()])
    return (first, first) if first != first else (low, high)


def quantize_sub_byte(x, scale, zero_point, dtype):
    """The integers of float32 ``x`` quantized per tensor into quint4x2 (torch's sub-byte kernel):
    ``nearbyint(x * (1/scale))`` in float32 kept as an int64 (1/0 taken as 1; NaN or a value past
    int64's range is int64's minimum), plus ``zero_point``, clamped."""
    low, high = dtypes.QUANTIZED_RANGES[dtype.name]
    inv = 1.0 if round_float32(scale) == 0 else inverse_scale(scale)
    with autograd.no_grad():
        r = (x * inv).round().double()
        r = r.where(r.abs() < 2.0 ** 63, -2.0 ** 63)
        return (r + float(zero_point)).clamp(low, high).to(dtypes.QUANTIZED_INT[dtype])


def pack_nibbles(ints):
    """torch's ``int_repr`` of a quint4x2 tensor of 4-bit ``ints`` (uint8): flattened, two a byte,
    the first in the low half -> uint8 (ceil(numel / 2),)."""
    with autograd.no_grad():
        n = ints.numel()
        padded = creation.zeros(((n + 1) // 2 * 2,), dtype=dtypes.int32)
        padded[:n] = ints.reshape(-1).int()
        weights = creation.tensor([[1, 16]], dtype=dtypes.int32)
        return (padded.reshape(-1, 2) * weights).sum(1).to(dtypes.uint8)


def unpack_nibbles(packed, shape):
    """The 4-bit integers (uint8 of ``shape``) of torch's packed quint4x2 bytes ``packed``."""
    with autograd.no_grad():
        n = math.prod(shape)
        divisors = creation.tensor([[1, 16]], dtype=dtypes.int32)
        nibbles = (packed.reshape(-1, 1).int() // divisors) % 16
        return nibbles.reshape(-1)[:n].reshape(tuple(shape)).to(dtypes.uint8)
