"""The arithmetic of torch 2.13's quantized elementwise activations on quint8 and qint8 (``quantized::relu6``,
``hardswish``, ``leaky_relu``, ``elu``, ``sigmoid``; ``tanh`` and ``hardsigmoid``), replayed with gt's
dense ops and found by testing against ``torch.ops.quantized`` on many random inputs, exact .5 ties included.

torch runs them through ``cpu_kernel_vec``: the first ``n // 64 * 64`` values (flat order; 64 with
its AVX-512 and AVX2 kernels alike, measured) take the vectorised path, the rest its scalar one,
and the two round differently:

- vectorised: ``x = fma(q, s, -zp * s)`` (``Vectorized::dequantize``), the activation in float32,
  then ``rint(y * inv) + zp_out`` with the kernel's own ``inv`` (``float(1 / out_scale)`` computed
  in double for hardswish and sigmoid; ``1.0 / (float)out_scale`` for elu and leaky_relu);
- scalar: ``x = (q - zp) * s`` (``dequantize_val``), the activation, then ``rint(y * (1.0f /
  out_scale) + zp_out)`` (``quantize_val``: the zero point added before rounding).

The fma is replayed in float64 (``q * s`` is exact there); ``exp`` as torch computes it on each path
(SLEEF's vectorised ``expf``, glibc's scalar one: gt/ao/nn/quantized/softmax_kernels.py; both differ from
a correctly rounded exp on some inputs); elu's ``expm1`` and tanh as float64 rounded to float32 (no
difference from torch's in millions of random values, both dtypes). Each path's output of the 256
levels (quint8 or qint8) is computed once, a table the input's integers index. A tensor of more than 32,768
values is split by torch among its threads, each part with its own scalar tail; gt follows the
one-thread layout. ``quantized::prelu`` is integer arithmetic and one float32 rounding, the same on
both paths.
"""

import warnings

from gt import autograd, dtypes
from gt.ao.nn.quantized import softmax_kernels
from gt.ao.nn.quantized.static_kernels import VECTOR, check_input
from gt.dtypes import round_float32
from gt.tensor.quantize_math import inverse_scale
from gt.tensor import creation, functions
from gt.tensor import quantized
from gt.tensor.quantized import QuantizedTensor, per_tensor_affine


def _levels(x, fma):
    """The float32 value of each level of ``x``'s dtype (256 of them), dequantized with an fma
    (torch's ``Vectorized::dequantize``) or as ``(q - zp) * s``."""
    s, zp = round_float32(x.q_scale()), x.q_zero_point()
    low, high = dtypes.QUANTIZED_RANGES[x.dtype.name]
    q = creation.arange(low, high + 1, dtype=dtypes.float32)
    if fma:
        return (q.double() * s + round_float32(s * -zp)).float()
    return (q - float(zp)) * s


# the two tables of each (kernel and its constants, input dtype and parameters, output parameters) met,
# as numpy arrays: a model calls each activation with the same parameters every time
_TABLES = {}
_TABLES_KEPT = 256


def _tables(x, activation, scale, zero_point, key, inv_in_double, fma):
    full = (key, x.dtype.name, round_float32(x.q_scale()), x.q_zero_point(), float(scale), int(zero_point),
            inv_in_double, fma)
    tables = _TABLES.get(full)
    if tables is None:
        low, high = dtypes.QUANTIZED_RANGES[x.dtype.name]
        inv_scalar = round_float32(1.0 / round_float32(scale))
        inv_vector = round_float32(1.0 / scale) if inv_in_double else inv_scalar
        vector = (activation(_levels(x, fma), True) * inv_vector).round() + float(zero_point)
        scalar = (activation(_levels(x, False), False) * inv_scalar + float(zero_point)).round()
        # rolled so that an integer indexes its own level (a qint8 one's negative index wraps onto it)
        tables = [t.clamp(float(low), float(high)).to(dtypes.QUANTIZED_INT[x.dtype]).roll(low).numpy()
                  for t in (vector, scalar)]
        if len(_TABLES) >= _TABLES_KEPT:
            _TABLES.clear()
        _TABLES[full] = tables
    return [creation.tensor(t) for t in tables]


def _requantized(x, activation, scale, zero_point, key, inv_in_double=True, fma=True):
    """``activation`` (float32 -> float32, given the path: ``activation(v, vector)``) of quint8 or
    qint8 ``x``, requantized to ``scale``/``zero_point`` in ``x``'s dtype: a table of the 256 levels'
    outputs for each path, looked up by torch's vectorised head and its scalar tail. ``key``: names the
    activation and its constants (the tables are kept). ``fma``: the vectorised path dequantizes with an
    fma (all but sigmoid)."""
    tables = _tables(x, activation, scale, zero_point, key, inv_in_double, fma)
    flat = x._q_int.reshape(-1).long()
    head = flat.shape[0] // VECTOR * VECTOR
    q = functions.cat([tables[0][flat[:head]], tables[1][flat[head:]]]).reshape(tuple(x.shape))
    return QuantizedTensor._make(q, x.dtype, per_tensor_affine, float(scale), int(zero_point))


def quantize_scalar(value, scale, zero_point, dtype=dtypes.quint8):
    """torch's ``quantize_val`` of one float into ``dtype``: ``rint(value * (1.0f / scale) + zp)``."""
    low, high = dtypes.QUANTIZED_RANGES[dtype.name]
    y = round_float32(round_float32(value) * round_float32(1.0 / round_float32(scale)))
    return int(min(high, max(low, round(round_float32(y + zero_point)))))


def _check_8bit(x, name):
    """``x`` must be a quint8 or qint8 tensor quantized per tensor (the kernels with fixed output
    parameters take both, as torch's)."""
    if not isinstance(x, QuantizedTensor) or x.dtype == dtypes.quint8:
        check_input(x, name)
    elif x.dtype != dtypes.qint8 or x.qscheme() != per_tensor_affine:
        raise RuntimeError(f"{name}: expected a quint8 or qint8 input quantized per tensor, got {x.dtype!r}, "
                           f"{x.qscheme()!r}")


# torch's fixed output (scale, zero point) of sigmoid, tanh and hardsigmoid for each dtype
_FIXED = {"sigmoid": {"quint8": (1.0 / 256.0, 0), "qint8": (1.0 / 256.0, -128)},
          "tanh": {"quint8": (2.0 / 256.0, 128), "qint8": (2.0 / 256.0, 0)},
          "hardsigmoid": {"quint8": (1.0 / 256.0, 0), "qint8": (1.0 / 256.0, -128)}}


def relu6(x, inplace=False):
    """``quantized::relu6``: the integers clamped to [zp, q(6)]; the input's scale and zero point
    (``inplace``: ``x``'s own integers clamped, ``x`` returned, as torch's)."""
    _check_8bit(x, "quantized::relu6")
    zp = x.q_zero_point()
    six = quantize_scalar(6.0, x.q_scale(), zp, x.dtype)
    with autograd.no_grad():
        if inplace:
            x._q_int.clamp_(zp, max(zp, six))
            return x
        q = x._q_int.clamp(zp, max(zp, six))
    return QuantizedTensor._make(q, x.dtype, per_tensor_affine, x.q_scale(), zp)


def hardswish(x, scale, zero_point):
    """``quantized::hardswish``: ``x * min(max(x + 3, 0), 6) / 6`` requantized."""
    _check_8bit(x, "quantized::hardswish")
    with autograd.no_grad():
        return _requantized(x, lambda v, vector: v * (v + 3.0).clamp(0.0, 6.0) / 6.0, scale, zero_point,
                            ("hardswish",))


def leaky_relu(x, negative_slope, scale, zero_point, inplace=False):
    """``quantized::leaky_relu``: ``x`` where positive, ``x * negative_slope`` elsewhere (a new
    tensor: torch warns that ``inplace`` is not supported, and so does gt)."""
    _check_8bit(x, "quantized::leaky_relu")
    if inplace:
        warnings.warn("inplace=True is not supported for quantized::leaky_relu yet", stacklevel=3)
    slope = round_float32(negative_slope)
    with autograd.no_grad():
        return _requantized(x, lambda v, vector: v.where(v > 0.0, v * slope), scale, zero_point, ("leaky_relu", slope),
                            inv_in_double=False)


def _exp(v, vector):
    """torch's ``exp`` on each path: SLEEF's vectorised ``expf``, glibc's scalar ``std::exp``."""
    return softmax_kernels.sleef_expf(v) if vector else softmax_kernels.glibc_expf(v)


def elu(x, scale, zero_point, alpha):
    """``quantized::elu``: ``x`` where positive, ``expm1(x) * alpha`` elsewhere, as torch's kernel
    (``exp(x) - 1`` loses bits near 0 and moved integers at ties)."""
    _check_8bit(x, "quantized::elu")
    alpha = round_float32(alpha)
    with autograd.no_grad():
        return _requantized(x, lambda v, vector: v.where(v > 0.0, v.double().expm1().float() * alpha), scale,
                            zero_point, ("elu", alpha), inv_in_double=False)


def _sigmoid(v, vector):
    e = _exp(-v, vector)
    return 1.0 / (e + 1.0) if vector else (1.0 / (e.double() + 1.0)).float()


def sigmoid(x, scale=None, zero_point=None):
    """``quantized::sigmoid``: ``1 / (1 + exp(-x))``, in float32 on the vectorised path and with a
    double ``1 + e`` on the scalar one; without ``scale``/``zero_point``, torch's fixed ones for
    ``x``'s dtype (``torch.sigmoid``: 1/256 and 0 for quint8, -128 for qint8)."""
    _check_8bit(x, "quantized::sigmoid")
    if scale is None:
        scale, zero_point = _FIXED["sigmoid"][x.dtype.name]
    with autograd.no_grad():     # its vectorised path dequantizes as (q - zp) * s too
        return _requantized(x, _sigmoid, scale, zero_point, ("sigmoid",), fma=False)


def tanh(x):
    """torch's quantized tanh of quint8/qint8 ``x``: its fixed output scale 2/256 and zero point (128
    for quint8, 0 for qint8)."""
    _check_8bit(x, "quantized::tanh")
    with autograd.no_grad():     # float64 tanh rounded: torch's SLEEF tanhf agreed on all levels of 3,000 scales
        return _requantized(x, lambda v, vector: v.double().tanh().float(), *_FIXED["tanh"][x.dtype.name], ("tanh",))


def hardsigmoid(x):
    """torch's quantized hardsigmoid of quint8/qint8 ``x``: ``min(max(x + 3, 0), 6) / 6`` with its fixed
    output scale 1/256 and zero point (0 for quint8, -128 for qint8)."""
    _check_8bit(x, "quantized::hardsigmoid")
    with autograd.no_grad():
        return _requantized(x, lambda v, vector: (v + 3.0).clamp(0.0, 6.0) / 6.0,
                            *_FIXED["hardsigmoid"][x.dtype.name], ("hardsigmoid",))


# torch.sigmoid / tanh / hardsigmoid of a quint8 or qint8 tensor: these kernels with torch's fixed output parameters
quantized.QUANTIZED_KERNELS.update(sigmoid=sigmoid, tanh=tanh, hardsigmoid=hardsigmoid)


def prelu(x, weight, scale, zero_point):
    """``quantized::prelu``: ``x`` where above its zero point, ``weight * x`` below, requantized: ``x``
    (N, C, ...) or (L,) quint8/qint8, ``weight`` (C,) (or one value) of the same dtype, per tensor. The
    integers ``(max(q, zp) - zp) * (q(1) - w_zp) + (min(q, zp) - zp) * (w_q - w_zp)`` (``q(1)``: 1.0 in
    the weight's parameters, clamped), times ``x_scale * w_scale * (1 / scale)`` in float32, rounded, plus
    ``zero_point``: the same on torch's vectorised and scalar paths."""
    _check_8bit(x, "quantized::prelu")
    if x.ndim == 0:
        raise RuntimeError("qprelu: zero-dim input tensor is not allowed.")
    if not isinstance(weight, QuantizedTensor) or weight.dtype != x.dtype:
        raise RuntimeError(f"quantized::prelu: expected a {x.dtype} weight (the input's dtype), got "
                           f"{getattr(weight, 'dtype', type(weight).__name__)!r}")
    low, high = dtypes.QUANTIZED_RANGES[x.dtype.name]
    x_zp, w_zp, w_scale = x.q_zero_point(), weight.q_zero_point(), round_float32(weight.q_scale())
    one = quantize_scalar(1.0, w_scale, w_zp, x.dtype) - w_zp
    multiplier = round_float32(round_float32(round_float32(x.q_scale()) * w_scale) * inverse_scale(scale))
    with autograd.no_grad():
        q = x._q_int.int()
        w = weight._q_int.int().reshape((-1,) if x.ndim == 1 else (1, -1) + (1,) * (x.ndim - 2)) - w_zp
        acc = (q.clamp(min=x_zp) - x_zp) * one + (q.clamp(max=x_zp) - x_zp) * w
        out = ((acc.float() * multiplier).round() + float(zero_point)).clamp(float(low), float(high))
        return QuantizedTensor._make(out.to(dtypes.QUANTIZED_INT[x.dtype]), x.dtype, per_tensor_affine, float(scale),
                                     int(zero_point))

