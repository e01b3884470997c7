"""The arithmetic of torch 2.13's quantized normalizations on quint8 (``quantized::batch_norm2d``/
``3d``, ``layer_norm``, ``group_norm``, ``instance_norm``), replayed with gt's dense ops and found by
testing against ``torch.ops.quantized`` on many random inputs, exact .5 ties included.

- batch norm: per channel ``alpha = float(inv_sigma * weight * (in_scale / out_scale))`` and ``beta
  = float((bias - mean * inv_sigma * weight) / out_scale)`` with ``inv_sigma = float(1 / sqrt(var +
  eps))`` (float32 sums and products, double divisions), then ``rint(fma(alpha, q - zp, beta)) +
  zp_out`` (the fma replayed in float64, where ``alpha * (q - zp)`` is exact).
- layer/group/instance norm: each normalized group's exact integer sums ``S = sum(q)``, ``Q =
  sum(q * q)``; ``m = float(S) / n``, ``mean = m - zp``, ``var = max(fma(-m, m, float(Q) / n), 0)``
  and ``k = x_scale / sqrt(var * x_scale * x_scale + eps)``, all in float32; ``y = ((q - zp) -
  mean) * k * gamma + beta`` (layer norm) or ``(q - zp) * g[c] + (beta[c] - mean * g[c])`` with
  ``g[c] = k * gamma[c]`` (group and instance norm), then ``rint(y * (1.0f / out_scale)) + zp_out``,
  except layer norm's scalar tail (the last ``n % 32`` values of each row),
  rounded ``rint(y * (1.0f / out_scale) + zp_out)``.

These are torch's AVX2 and AVX-512 kernels (alike here); its build without SIMD
(``ATEN_CPU_CAPABILITY=default``) rounds a few group and instance norm ties otherwise.
"""

import math

from gt import autograd, dtypes
from gt.ao.nn.quantized.static_kernels import check_input
from gt.dtypes import round_float32
from gt.tensor import creation
from gt.tensor.quantized import QuantizedTensor, per_tensor_affine

# quint8 values torch's layer norm takes a vectorised step (8 floats times 4, AVX-512 and AVX2 alike)
NORM_VECTOR = 32


def _output(q, scale, zero_point, low=0.0):
    q = q.clamp(low, 255.0).to(dtypes.uint8)
    return QuantizedTensor._make(q, dtypes.quint8, per_tensor_affine, float(scale), int(zero_point))


def _per_channel(t, ndim):
    return t.detach().float().reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm(x, weight, bias, mean, var, eps, scale, zero_point, relu=False):
    """torch's ``quantized::batch_norm2d``/``3d``: ``x`` (N, C, ...) quint8 -> the same shape quint8
    of ``scale``/``zero_point``; ``weight``, ``bias``, ``mean``, ``var`` (C,) float."""
    check_input(x, "quantized::batch_norm")
    with autograd.no_grad():
        inv_sigma = (1.0 / (var.detach().float() + round_float32(eps)).sqrt().double()).float()
        w_sigma = inv_sigma * weight.detach().float()
        alpha = (w_sigma.double() * (x.q_scale() / scale)).float()
        beta = ((bias.detach().float() - mean.detach().float() * inv_sigma * weight.detach().float()).double()
                / scale).float()
        centered = x._q_int.double() - float(x.q_zero_point())
        y = (_per_channel(alpha, x.ndim).double() * centered + _per_channel(beta, x.ndim).double()).float()
        return _output(y.round() + float(zero_point), scale, zero_point, float(zero_point) if relu else 0.0)


def _statistics(rows, x):
    """``rows - zp`` (float32), and each row's ``mean`` and ``var`` ((R, 1)) of ``rows``, (R, n) uint8
    integers of ``x``, in units of its scale."""
    n, zp = rows.shape[-1], float(x.q_zero_point())
    ints = rows.long()
    m = ints.sum(-1, keepdim=True).float() / float(n)
    mean_square = ints.mul(ints).sum(-1, keepdim=True).float() / float(n)
    var = (mean_square.double() - m.double() * m.double()).float().clamp(min=0.0)     # an fma: m * m exact
    return rows.float() - zp, m - zp, var


def _factor(var, x, eps):
    """``x_scale / sqrt(var * x_scale**2 + eps)``: 1 / the standard deviation, in units of the scale."""
    xs = round_float32(x.q_scale())
    return xs / (var * xs * xs + round_float32(eps)).sqrt()


def layer_norm(x, normalized_shape, weight, bias, eps, scale, zero_point):
    """torch's ``quantized::layer_norm``: ``x`` (..., *normalized_shape) quint8 -> the same shape
    quint8 of ``scale``/``zero_point``; ``weight``/``bias`` of ``normalized_shape`` or None."""
    check_input(x, "quantized::layer_norm")
    shape = tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape [*, "
                           f"{', '.join(map(str, shape))}], but got input of size{list(x.shape)}")
    n = math.prod(shape)
    with autograd.no_grad():
        centered, mean, var = _statistics(x._q_int.reshape(-1, n), x)
        y = (centered - mean) * _factor(var, x, eps)
        if weight is not None:
            y = y * weight.detach().float().reshape(-1)
        if bias is not None:
            y = y + bias.detach().float().reshape(-1)
        y = y * round_float32(1.0 / round_float32(scale))
        head = creation.arange(n) < n // NORM_VECTOR * NORM_VECTOR
        q = (y.round() + float(zero_point)).where(head, (y + float(zero_point)).round())
        return _output(q.reshape(tuple(x.shape)), scale, zero_point)


def group_norm(x, num_groups, weight, bias, eps, scale, zero_point):
    """torch's ``quantized::group_norm``: ``x`` (N, C, ...) quint8 normalized over each of
    ``num_groups`` channel groups -> the same shape quint8; ``weight``/``bias`` (C,) or None."""
    check_input(x, "quantized::group_norm")
    batch, channels = x.shape[0], x.shape[1]
    if channels % num_groups:
        raise RuntimeError(f"Expected channels to be divisible by groups: input of shape {list(x.shape)}, "
                           f"num_groups={num_groups}")
    with autograd.no_grad():
        centered, mean, var = _statistics(x._q_int.reshape(batch * num_groups, -1), x)
        factor = _factor(var, x, eps).reshape(batch, num_groups, 1)
        gamma = creation.ones((channels,)) if weight is None else weight.detach().float()
        per_channel = (factor * gamma.reshape(num_groups, -1)).reshape(batch, channels, 1)
        mean = mean.reshape(batch, num_groups, 1).expand(batch, num_groups, channels // num_groups)
        shift = -(mean.reshape(batch, channels, 1) * per_channel)
        if bias is not None:
            shift = bias.detach().float().reshape(1, channels, 1) + shift
        y = centered.reshape(batch, channels, -1) * per_channel + shift
        q = (y * round_float32(1.0 / round_float32(scale))).round() + float(zero_point)
        return _output(q.reshape(tuple(x.shape)), scale, zero_point)


def instance_norm(x, weight, bias, eps, scale, zero_point):
    """torch's ``quantized::instance_norm``: a group norm of one channel a group."""
    check_input(x, "quantized::instance_norm")
    return group_norm(x, x.shape[1], weight, bias, eps, scale, zero_point)
