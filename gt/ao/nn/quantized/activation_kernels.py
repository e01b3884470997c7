"""The arithmetic of torch 2.13's quantized elementwise activations on quint8 (``quantized::relu6``,
``hardswish``, ``leaky_relu``, ``elu``, ``sigmoid``; ``tanh`` and ``hardsigmoid``), replayed with gt's
dense ops and found by testing against ``torch.ops.quantized`` on many random inputs, exact .5 ties included.

torch runs them through ``cpu_kernel_vec``: the first ``n // 64 * 64`` values (flat order; 64 with
its AVX-512 and AVX2 kernels alike, measured) take the vectorised path, the rest its scalar one,
and the two round differently:

- vectorised: ``x = fma(q, s, -zp * s)`` (``Vectorized::dequantize``), the activation in float32,
  then ``rint(y * inv) + zp_out`` with the kernel's own ``inv`` (``float(1 / out_scale)`` computed
  in double for hardswish, elu and sigmoid; ``1.0f / out_scale`` for leaky_relu);
- scalar: ``x = (q - zp) * s`` (``dequantize_val``), the activation, then ``rint(y * (1.0f /
  out_scale) + zp_out)`` (``quantize_val``: the zero point added before rounding).

The fma is replayed in float64 (``q * s`` is exact there); ``exp`` as float64 rounded to float32
(torch's SLEEF and libm ``expf`` agreed with it on every input tried). Each path's output of the 256
quint8 levels is computed once, a table the input's integers index. A tensor of more than 32,768
values is split by torch among its threads, each part with its own scalar tail; gt follows the
one-thread layout.
"""

import warnings

from gt import autograd, dtypes
from gt.ao.nn.quantized.static_kernels import VECTOR, check_input
from gt.dtypes import round_float32
from gt.tensor import creation, functions
from gt.tensor import quantized
from gt.tensor.quantized import QuantizedTensor, per_tensor_affine


def _levels(x, fma):
    """The float32 value of each of the 256 quint8 levels of ``x``, dequantized with an fma (torch's
    ``Vectorized::dequantize``) or as ``(q - zp) * s``."""
    s, zp = round_float32(x.q_scale()), x.q_zero_point()
    q = creation.arange(256, dtype=dtypes.float32)
    if fma:
        return (q.double() * s + round_float32(s * -zp)).float()
    return (q - float(zp)) * s


def _requantized(x, activation, scale, zero_point, inv_in_double=True, fma=True):
    """``activation`` (float32 -> float32, given the path: ``activation(v, vector)``) of quint8 ``x``,
    requantized to ``scale``/``zero_point``: a table of the 256 levels' outputs for each path, looked
    up by torch's vectorised head and its scalar tail. ``fma``: the vectorised path dequantizes with
    an fma (all but sigmoid)."""
    inv_scalar = round_float32(1.0 / round_float32(scale))
    inv_vector = round_float32(1.0 / scale) if inv_in_double else inv_scalar
    vector = (activation(_levels(x, fma), True) * inv_vector).round() + float(zero_point)
    scalar = (activation(_levels(x, False), False) * inv_scalar + float(zero_point)).round()
    tables = [t.clamp(0.0, 255.0).to(dtypes.uint8) for t in (vector, scalar)]
    flat = x._q_int.reshape(-1).long()
    head = flat.shape[0] // VECTOR * VECTOR
    q = functions.cat([tables[0][flat[:head]], tables[1][flat[head:]]]).reshape(tuple(x.shape))
    return QuantizedTensor._make(q, dtypes.quint8, per_tensor_affine, float(scale), int(zero_point))


def quantize_scalar(value, scale, zero_point):
    """torch's ``quantize_val`` of one float into quint8: ``rint(value * (1.0f / scale) + zp)``."""
    y = round_float32(round_float32(value) * round_float32(1.0 / round_float32(scale)))
    return int(min(255, max(0, round(round_float32(y + zero_point)))))


def relu6(x, inplace=False):
    """``quantized::relu6``: the integers clamped to [zp, q(6)]; the input's scale and zero point
    (``inplace``: ``x``'s own integers clamped, ``x`` returned, as torch's)."""
    check_input(x, "quantized::relu6")
    zp = x.q_zero_point()
    six = quantize_scalar(6.0, x.q_scale(), zp)
    with autograd.no_grad():
        if inplace:
            x._q_int.clamp_(zp, max(zp, six))
            return x
        q = x._q_int.clamp(zp, max(zp, six))
    return QuantizedTensor._make(q, dtypes.quint8, per_tensor_affine, x.q_scale(), zp)


def hardswish(x, scale, zero_point):
    """``quantized::hardswish``: ``x * min(max(x + 3, 0), 6) / 6`` requantized."""
    check_input(x, "quantized::hardswish")
    with autograd.no_grad():
        return _requantized(x, lambda v, vector: v * (v + 3.0).clamp(0.0, 6.0) / 6.0, scale, zero_point)


def leaky_relu(x, negative_slope, scale, zero_point, inplace=False):
    """``quantized::leaky_relu``: ``x`` where positive, ``x * negative_slope`` elsewhere (a new
    tensor: torch warns that ``inplace`` is not supported, and so does gt)."""
    check_input(x, "quantized::leaky_relu")
    if inplace:
        warnings.warn("inplace=True is not supported for quantized::leaky_relu yet", stacklevel=3)
    slope = round_float32(negative_slope)
    with autograd.no_grad():
        return _requantized(x, lambda v, vector: v.where(v > 0.0, v * slope), scale, zero_point, inv_in_double=False)


def _exp(v):
    return v.double().exp().float()


def elu(x, scale, zero_point, alpha):
    """``quantized::elu``: ``x`` where positive, ``(exp(x) - 1) * alpha`` elsewhere."""
    check_input(x, "quantized::elu")
    alpha = round_float32(alpha)
    with autograd.no_grad():
        return _requantized(x, lambda v, vector: v.where(v > 0.0, (_exp(v) - 1.0) * alpha), scale, zero_point)


def _sigmoid(v, vector):
    e = _exp(-v)
    return 1.0 / (e + 1.0) if vector else (1.0 / (e.double() + 1.0)).float()


def sigmoid(x, scale, zero_point):
    """``quantized::sigmoid``: ``1 / (1 + exp(-x))``, in float32 on the vectorised path and with a
    double ``1 + e`` on the scalar one."""
    check_input(x, "quantized::sigmoid")
    with autograd.no_grad():     # its vectorised path dequantizes as (q - zp) * s too
        return _requantized(x, _sigmoid, scale, zero_point, fma=False)


def tanh(x):
    """torch's quantized tanh of quint8 ``x``: its fixed output scale 2/256 and zero point 128."""
    check_input(x, "quantized::tanh")
    with autograd.no_grad():     # float64 tanh rounded: torch's SLEEF tanhf agreed on all levels of 3,000 scales
        return _requantized(x, lambda v, vector: v.double().tanh().float(), 2.0 / 256.0, 128)


def hardsigmoid(x):
    """torch's quantized hardsigmoid of quint8 ``x``: ``min(max(x + 3, 0), 6) / 6`` with its fixed output
    scale 1/256 and zero point 0."""
    check_input(x, "quantized::hardsigmoid")
    with autograd.no_grad():
        return _requantized(x, lambda v, vector: (v + 3.0).clamp(0.0, 6.0) / 6.0, 1.0 / 256.0, 0)


# torch.sigmoid / tanh / hardsigmoid of a quint8 tensor: these kernels with torch's fixed output parameters
quantized.QUANTIZED_KERNELS.update(sigmoid=lambda x: sigmoid(x, 1.0 / 256.0, 0), tanh=tanh, hardsigmoid=hardsigmoid)
