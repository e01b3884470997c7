"""Adaptive average pooling of a quantized tensor (torch's ``quantized::adaptive_avg_pool2d``,
what ``nn.AdaptiveAvgPool2d`` runs on a quint8 input): the output keeps the input's scale and zero
point, and each window's integer sum less ``zero_point * size`` is scaled by ``1 / size`` and the
zero point added in float32, rounded half to even once: torch's kernel on a channels-last input
(what its quantized convolutions output), equal on 300 random inputs, exact .5 ties included. On a
contiguous (N, C, H, W) input torch scales in float64 instead, which differs on a tie whose float32
product rounds below it (1 value in about 12,000 of those inputs)."""

from gt import autograd, dtypes
from gt.tensor import creation


def _window_sizes(n, o):
    """The lengths of torch's adaptive windows along an axis of length ``n`` split ``o`` ways."""
    return [-(-(i + 1) * n // o) - (i * n) // o for i in range(o)]


def adaptive_avg_pool(fn, nd, q, output_size, float_pool):
    """``q`` (a per-tensor quantized (N, C, *spatial) or (C, *spatial) tensor) pooled by
    ``float_pool`` (the dense adaptive average pooling) on its integers."""
    if q.qscheme().name != "per_tensor_affine":
        raise RuntimeError(f"{fn}: gt pools quantized tensors quantized per tensor, got {q.qscheme()!r}")
    ints = q.int_repr()
    with autograd.no_grad():
        means = float_pool(fn, nd, ints.double(), output_size)
        out = tuple(means.shape[-nd:])
        size = creation.ones((1,) * nd, dtype=dtypes.float64)
        for axis, (n, o) in enumerate(zip(ints.shape[-nd:], out)):
            shape = [1] * nd
            shape[axis] = o
            size = size * creation.tensor(_window_sizes(n, o), dtype=dtypes.float64).reshape(shape)
        zero_point = q.q_zero_point()
        acc = (means * size).round() - zero_point * size        # the exact integer sums, centered
        y = (acc.float() * (1.0 / size).float() + float(zero_point)).round()
        low, high = dtypes.QUANTIZED_RANGES[q.dtype.name]
        return q._like(y.clamp(low, high).to(ints.dtype))
