"""The arithmetic of torch 2.13's quantized elementwise activations on quint8 (``quantized::relu6``,
``hardswish``, ``leaky_relu``, ``elu``, ``sigmoid``), replayed with gt's dense ops and found by
testing against ``torch.ops.quantized`` on many random inputs, exact .5 ties included.

torch runs them through ``cpu_kernel_vec``: the first ``n // 64 * 64`` values (flat order; 64 with
its AVX-512 and AVX2 kernels alike, measured) take the vectorised path, the rest its scalar one,
and the two round differently:

- vectorised: ``x = fma(q, s, -zp * s)`` (``Vectorized::dequantize``), the activation in float32,
  then ``rint(y * inv) + zp_out`` with the kernel's own ``inv`` (``float(1 / out_scale)`` computed
  in double for hardswish, elu and sigmoid; ``1.0f / out_scale`` for leaky_relu);
- scalar: ``x = (q - zp) * s`` (``dequantize_val``), the activation, then ``rint(y * (1.0f /
  out_scale) + zp_out)`` (``quantize_val``: the zero point added before rounding).

The fma is replayed in float64 (``q * s`` is exact there); ``exp`` as float64 rounded to float32
(torch's SLEEF and libm ``expf`` agreed with it on every input tried). A tensor of more than 32,768
values is split by torch among its threads, each part with its own scalar tail; gt follows the
one-thread layout.
"""

from gt import autograd, dtypes
from gt.ao.nn.quantized.static_kernels import VECTOR, check_input
from gt.dtypes import round_float32
from gt.tensor import creation
from gt.tensor.quantized import QuantizedTensor, per_tensor_affine


def _head(x):
    """True where torch's vectorised loop takes the value, False in its scalar tail."""
    n = x.numel()
    return (creation.arange(n) < n // VECTOR * VECTOR).reshape(tuple(x.shape))


def _dequantized(x, head):
    """``x``'s float32 values as the vectorised (fma) and scalar paths compute them."""
    s, zp = round_float32(x.q_scale()), x.q_zero_point()
    q = x._q_int.float()
    scalar = (q - float(zp)) * s
    vector = (q.double() * s + round_float32(s * -zp)).float()
    return vector.where(head, scalar)


def _quantized(y, head, scale, zero_point, inv_in_double=True):
    """float32 ``y`` -> quint8 of ``scale``/``zero_point``, each value rounded as its path does."""
    inv_vector = round_float32(1.0 / scale) if inv_in_double else round_float32(1.0 / round_float32(scale))
    inv_scalar = round_float32(1.0 / round_float32(scale))
    vector = (y * inv_vector).round() + float(zero_point)
    scalar = (y * inv_scalar + float(zero_point)).round()
    q = vector.where(head, scalar).clamp(0.0, 255.0).to(dtypes.uint8)
    return QuantizedTensor._make(q, dtypes.quint8, per_tensor_affine, float(scale), int(zero_point))


def quantize_scalar(value, scale, zero_point):
    """torch's ``quantize_val`` of one float into quint8: ``rint(value * (1.0f / scale) + zp)``."""
    y = round_float32(round_float32(value) * round_float32(1.0 / round_float32(scale)))
    return int(min(255, max(0, round(round_float32(y + zero_point)))))


def relu6(x):
    """``quantized::relu6``: the integers clamped to [zp, q(6)]; the input's scale and zero point."""
    check_input(x, "quantized::relu6")
    zp = x.q_zero_point()
    six = quantize_scalar(6.0, x.q_scale(), zp)
    with autograd.no_grad():
        q = x._q_int.clamp(zp, max(zp, six))
    return QuantizedTensor._make(q, dtypes.quint8, per_tensor_affine, x.q_scale(), zp)


def hardswish(x, scale, zero_point):
    """``quantized::hardswish``: ``x * min(max(x + 3, 0), 6) / 6`` requantized."""
    check_input(x, "quantized::hardswish")
    with autograd.no_grad():
        head = _head(x)
        v = _dequantized(x, head)
        return _quantized(v * (v + 3.0).clamp(0.0, 6.0) / 6.0, head, scale, zero_point)


def leaky_relu(x, negative_slope, scale, zero_point):
    """``quantized::leaky_relu``: ``x`` where positive, ``x * negative_slope`` elsewhere."""
    check_input(x, "quantized::leaky_relu")
    with autograd.no_grad():
        head = _head(x)
        v = _dequantized(x, head)
        y = v.where(v > 0.0, v * round_float32(negative_slope))
        return _quantized(y, head, scale, zero_point, inv_in_double=False)


def _exp(v):
    return v.double().exp().float()


def elu(x, scale, zero_point, alpha):
    """``quantized::elu``: ``x`` where positive, ``(exp(x) - 1) * alpha`` elsewhere."""
    check_input(x, "quantized::elu")
    with autograd.no_grad():
        head = _head(x)
        v = _dequantized(x, head)
        y = v.where(v > 0.0, (_exp(v) - 1.0) * round_float32(alpha))
        return _quantized(y, head, scale, zero_point)


def sigmoid(x, scale, zero_point):
    """``quantized::sigmoid``: ``1 / (1 + exp(-x))``, in float32 on the vectorised path and with a
    double ``1 + e`` on the scalar one; both dequantize as ``(q - zp) * s`` here."""
    check_input(x, "quantized::sigmoid")
    with autograd.no_grad():
        head = _head(x)
        s = round_float32(x.q_scale())
        v = (x._q_int.float() - float(x.q_zero_point())) * s
        e = _exp(-v)
        y = (1.0 / (e + 1.0)).where(head, (1.0 / (e.double() + 1.0)).float())
        return _quantized(y, head, scale, zero_point)
