"""The products of torch's dynamically quantized layers (gt/ao/nn/quantized/dynamic.py's ``Linear``,
dynamic_rnn.py's recurrent layers): fbgemm's ``linear_dynamic`` with ``reduce_range`` (qint8 weights)
and its float16-weight form ``linear_dynamic_fp16``.

qint8: each call quantizes its input to quint8 with scale and zero point chosen from the input's min
and max (torch's ``ChooseQuantizationParams`` with ``reduce_range=True``: 7 bits, as fbgemm's x86
kernels), multiplies the integers exactly and rescales: ``float(float(acc) * (x_scale * w_scale) +
bias)``, where fbgemm accumulates in int32, rounds the sum to float32 and adds with one rounding (an
fma): torch's bits.
"""

import math

from gt import autograd, dtypes
from gt.dtypes import round_float32
from gt.ao.nn.quantized import fbgemm_pairs
from gt.ops import quantized_linear
from gt.tensor import quantize_math
from gt.tensor.quantize_math import choose_qparams
from gt.tensor.quantize_functions import quantize_per_channel, quantize_per_tensor
from gt.tensor.quantized import QuantizedTensor, per_channel_affine, per_channel_symmetric, per_tensor_affine

# the quantized input's clamp: fbgemm's Quantize clamps to quint8's 255, though reduce_range maps the
# input's [min, max] onto 7 bits, [0, 127]; rounding takes max to 128 where the zero point rounded up
# by a half (min == -max: x = [-1, 1] gives 128, which a clamp to 127 made 127, 3% off torch's
# outputs). A finite input never passes 128 (127.5 and a float32 rounding), so 128 clamps as 255
# does, and keeps the exact blocks of the integer product (gt/backend/engine_quantized.py) long
_X_MAX = 128
_FP16_MAX = 65504.0


def quantize_weight(weight):
    """``weight`` (float) as torch's default dynamic weight observer quantizes it: qint8 per
    tensor, symmetric (``MinMaxObserver(qscheme=per_tensor_symmetric)``)."""
    with autograd.no_grad():
        w = weight.detach().float()
        top = max(-min(float(w.min()), 0.0), max(float(w.max()), 0.0)) if w.numel() else 0.0
    scale = max(round_float32(round_float32(top) / 127.5), 2.0 ** -23)    # float32 eps floor, torch's
    return quantize_per_tensor(w, scale, 0, dtypes.qint8)


def weight_observer(mod):
    """torch's dynamic ``from_float``: (the maker of ``mod``'s qconfig's weight observer, the dtype
    it asks for); the maker None where the qconfig has none: ``default_dynamic_qconfig``'s, which
    ``quantize_weight`` replays, qint8."""
    if not hasattr(mod, "qconfig"):
        raise AssertionError("Input float module must have qconfig defined")
    make = None if mod.qconfig is None else mod.qconfig.weight
    return make, dtypes.qint8 if make is None else make().dtype


def observed_weight(weight, make):
    """``weight`` as torch's dynamic layers keep it, observed by a new observer of ``make``
    (``weight_observer``'s): float16 values (``half_weight``) for a float16 observer, else qint8
    with the parameters the observer chooses (torch's ``_quantize_weight``), per tensor or per output
    channel, scales rounded to float32 as fbgemm packs them."""
    if make is None:
        return quantize_weight(weight)
    observer = make()
    if observer.dtype == dtypes.float16:
        return half_weight(weight)
    with autograd.no_grad():
        w = weight.detach().float()
        observer(w)
        scale, zero_point = observer.calculate_qparams()
    if observer.qscheme in (per_channel_affine, per_channel_symmetric):
        q = quantize_per_channel(w, scale.double(), zero_point.long(), observer.ch_axis, dtypes.qint8)
    else:
        q = quantize_per_tensor(w, float(scale), int(zero_point), dtypes.qint8)
    return packed_qint8(clamped_to_observer(q, observer))


def clamped_to_observer(q, observer):
    """The qint8 weight ``q``, quantized with ``observer``'s parameters, its integers clamped to the
    observer's ``quant_min``..``quant_max`` where that is narrower than qint8's, as torch's
    ``_clamp_weights`` does: a symmetric observer with ``reduce_range`` ([-64, 63]) puts the largest
    value at 63.5 steps, which rounds to 64, inside qint8's own range."""
    observer = getattr(observer, "activation_post_process", observer)     # a fake quantizer's observer
    low, high = observer.quant_min, observer.quant_max
    if low <= -128 and high >= 127:
        return q
    ints = q._q_int.clamp(low, high)
    if q.qscheme() in (per_channel_affine, per_channel_symmetric):
        return QuantizedTensor._make(ints, q.dtype, q.qscheme(), q.q_per_channel_scales(), q.q_per_channel_zero_points(),
                                     q.q_per_channel_axis())
    return QuantizedTensor._make(ints, q.dtype, q.qscheme(), q.q_scale(), q.q_zero_point())


def packed_qint8(q):
    """The qint8 weight ``q`` as fbgemm packs it (its scales rounded to float32), where gt's product
    takes it: per tensor, or per output channel (axis 0); else NotImplementedError."""
    if q.qscheme() == per_tensor_affine:
        return QuantizedTensor._make(q._q_int, q.dtype, q.qscheme(), round_float32(q.q_scale()), q.q_zero_point())
    if q.qscheme() != per_channel_affine or q.q_per_channel_axis() != 0:
        raise NotImplementedError(f"dynamic quantization: gt's products take qint8 weights quantized per tensor or per "
                                  f"output channel (axis 0), got {q.qscheme()!r}")
    return QuantizedTensor._make(q._q_int, q.dtype, q.qscheme(), q.q_per_channel_scales().float().double(),
                                 q.q_per_channel_zero_points(), 0)


def _centered(qweight):
    """The weight's integers less their zero points (fbgemm's row offsets, exact): the int8 ones held
    where the zero points are 0 (a symmetric observer's), else int16 (of magnitude at most 255)."""
    if qweight.qscheme() == per_tensor_affine:
        zero_point = qweight.q_zero_point()
        return qweight._q_int if zero_point == 0 else qweight._q_int.short() - zero_point
    zero_points = qweight.q_per_channel_zero_points()
    if not bool((zero_points != 0).any()):
        return qweight._q_int
    return qweight._q_int.short() - zero_points.short().reshape(-1, 1)


def half_weight(weight):
    """``weight`` as fbgemm's ``linear_prepack_fp16`` keeps it: float16 (saturated at its largest
    finite value, as fbgemm clips), handed back as float32."""
    with autograd.no_grad():
        return weight.detach().float().clamp(-_FP16_MAX, _FP16_MAX).half().float()


def linear_dynamic(x, qweight, bias, tracked=True, reduce_range=True):
    """fbgemm's dynamically quantized product: ``x`` (..., in) float32, ``qweight`` (out, in) qint8
    per tensor or per output channel, ``bias`` (out,) float32 or None -> (..., out) float32.
    ``reduce_range`` False: ``x`` quantized to 8 bits, not 7 (torch's version-1 recurrent layers, its
    Linear loaded from a state dict of version 2 or 3), its integer sums as this CPU's fbgemm kernel
    gives them: exact with AVX-512 VNNI, pairs of products saturated in 16 bits without (fbgemm_pairs.py),
    whether or not ``x`` requires grad. ``tracked`` (torch's layers): the output requires grad where
    ``x`` does, and backward passes nothing back through it, with torch's warning. A bias that requires
    grad gets none (torch's op reads it from its packed params, not as an autograd input)."""
    if x.shape[-1] != qweight.shape[1]:       # fbgemm's check
        raise RuntimeError(f"The number of rows in the packB should be equal to K: {x.shape[-1]}")
    if bias is not None and bias.requires_grad:
        bias = bias.detach()
    with autograd.set_grad_enabled(tracked and autograd.is_grad_enabled()):
        x = x if tracked else x.detach()
        with autograd.no_grad():
            low, high = (float(x.min()), float(x.max())) if x.numel() else (0.0, 0.0)
        if not math.isfinite(low + high):
            with autograd.no_grad():
                out = _non_finite(x.detach(), qweight, bias, reduce_range)
            return _recorded(x, out)
        scale, zero_point = choose_qparams(low, high, reduce_range=reduce_range)
        out_scale = _out_scale(scale, qweight)
        weight = _centered(qweight)
        # the library's kernel (per tensor, zero point 0, reduce_range) where no device holds a part of the input
        whole = qweight.q_scale() if reduce_range and x.placement.is_replicate() and weight is qweight._q_int and \
            qweight.qscheme() == per_tensor_affine else None
        op = quantized_linear.QuantizedLinearUntracked if tracked else quantized_linear.QuantizedLinear
        qmax = _X_MAX if reduce_range else 255
        if qmax == 255:
            with autograd.no_grad():
                out = _saturated(x.detach(), qweight, weight, bias, quantize_math.inverse_scale(scale), zero_point,
                                 out_scale)
            if out is not None:
                return _recorded(x, out)
        return op.apply(x, weight, bias, quantize_math.inverse_scale(scale), zero_point, qmax, out_scale, whole)


def _recorded(x, out):
    """``out``, computed apart from autograd from ``x``, recorded as torch records its op: where ``x``
    requires grad (grad mode on, a tracked call), the output requires grad and backward passes
    nothing back through it, with torch's warning; else ``out`` itself."""
    if x.requires_grad and autograd.is_grad_enabled():
        return quantized_linear.ComputedLinearUntracked.apply(x, out)
    return out


def _saturated(x, qweight, weight, bias, inverse, zero_point, out_scale):
    """The 8-bit input's product as fbgemm's kernels without AVX-512 VNNI give it (fbgemm_pairs.py),
    or None where it is the exact one."""
    if not fbgemm_pairs.SATURATES:     # the exact sums: no quantization pass to spend
        return None
    q = (x.double() * inverse + float(zero_point)).float().round().clamp(0, 255)
    off = fbgemm_pairs.saturation(q, qweight._q_int.float())
    if off is None:
        return None
    acc = quantized_linear.QuantizedLinear.apply(x, weight, None, inverse, zero_point, 255, 1.0)
    out = (acc.double() + off).float().double() * out_scale
    return (out if bias is None else out + bias.double()).float()


def _out_scale(scale, qweight):
    """fbgemm's float32 product of the input's and the weight's scales (``ReQuantizeForFloat``): a
    number per tensor, a float64 (out,) tensor of float32 values per output channel."""
    if qweight.qscheme() == per_tensor_affine:
        return round_float32(round_float32(scale) * qweight.q_scale())
    return (qweight.q_per_channel_scales().float() * round_float32(scale)).double()


def linear_dynamic_fp16(x, weight, bias):
    """fbgemm's float16-weight product: ``x`` (..., in) float32 times ``weight`` (out, in), float32
    holding float16 values, plus ``bias``, summed in float32 (fbgemm's order differs: float32
    rounding apart); the output requires grad where ``x`` does, passing nothing back (torch's)."""
    if x.shape[-1] != weight.shape[1]:        # fbgemm's check, in torch's words
        raise RuntimeError("Expected input.size(input.dim() - 1) == packed_weight_fp16.numRows() to be true, but got "
                           "false.  (Could this error message be improved?  If so, please report an enhancement "
                           "request to PyTorch.)")
    return quantized_linear.HalfLinearUntracked.apply(x, weight, bias)


def _non_finite(x, qweight, bias, reduce_range=True):
    """The output for an input holding NaN or infinities, as fbgemm's arithmetic gives it: NaN
    skipped by its min and max (``fbgemm_min_max``), a NaN integer (NaN, or inf times a zero
    inverse scale) clamped to 255, and where an infinite value made the zero point int32's least,
    the int32 products less ``zero_point * sum(weight row)`` wrapped, their sign times an
    infinite scale (inf, -inf, or NaN at 0): a finite input's path stays as it was."""
    scale, zero_point = choose_qparams(*quantize_math.fbgemm_min_max(x), reduce_range=reduce_range)
    out_scale = _out_scale(scale, qweight)
    inv = quantize_math.inverse_scale(scale)
    q = (x.double() * inv + float(zero_point)).float().round().clamp(0, 255).nan_to_num(255.0)
    weight = _centered(qweight)
    # a NaN's 255 is an 8-bit input: fbgemm's kernels without AVX-512 VNNI saturate its pairs of products
    off = fbgemm_pairs.saturation(q, qweight._q_int.float())
    if zero_point != -2 ** 31 and off is None:     # exact in float32: gt's product as for finite ones
        return quantized_linear.QuantizedLinear.apply(q - zero_point, weight, bias, 1.0, zero_point, 255, out_scale)
    if zero_point != -2 ** 31:
        raw = quantized_linear.QuantizedLinear.apply(q - zero_point, weight, None, 1.0, zero_point, 255, 1.0)
        out = (raw.double() + off) * out_scale
        return (out if bias is None else out + bias.double()).float()
    total = quantized_linear.QuantizedLinear.apply(q, weight, None, 1.0, 0, 255, 1.0)
    total = total if off is None else total.double() + off
    # int32's least times an odd row sum wraps to itself; the sum less it wraps to the other sign
    odd = (weight.long().sum(1) % 2) == 1
    raw = total.where(~odd, (total < 0).float() * 2 - 1)
    out = raw.double() * out_scale
    return (out if bias is None else out + bias.double()).float()
