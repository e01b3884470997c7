"""The rest of torch's pooling functions (``F.max_pool3d``, ``F.avg_pool3d``,
``F.adaptive_avg_pool3d``, ``F.adaptive_max_pool1d/2d/3d``, ``F.max_unpool1d/2d/3d`` and the
``*_with_indices`` forms), on the checks and ops of gt/nn/conv_functions.py. Indices are int64
flat positions within each input plane, as torch's: what ``max_unpool`` reads back."""

import math

from gt import amp, dtypes
from gt.nn import conv_functions as CF
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.pool_indices import max_with_indices
from gt.tensor import zeros


@amp.runs_in_float32      # torch.autocast's fp32 list
def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The largest value of each (kD, kH, kW) window: (N, C, D, H, W) or (C, D, H, W) ->
    (..., D_out, H_out, W_out). See ``max_pool2d``.

        >>> F.max_pool3d(gt.randn(2, 4, 8, 8, 8), 2).shape
        (2, 4, 4, 4, 4)
    """
    return CF._max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """``max_pool1d(..., return_indices=True)``: ``(values, indices)`` whatever ``return_indices``
    says (torch's)."""
    return CF.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """``max_pool2d(..., return_indices=True)``: ``(values, indices)``, both (N, C, H_out, W_out)."""
    return CF.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """``max_pool3d(..., return_indices=True)``: ``(values, indices)``."""
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


@amp.runs_in_float32      # torch.autocast's fp32 list
def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """The mean of each (kD, kH, kW) window: (N, C, D, H, W) or (C, D, H, W) -> (..., D_out,
    H_out, W_out). See ``avg_pool2d`` (float input only)."""
    return CF._avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override)


@amp.runs_in_float32      # torch.autocast's fp32 list
def adaptive_avg_pool3d(input, output_size):
    """The mean over an ``output_size`` (oD, oH, oW) grid of windows covering the input:
    (N, C, D, H, W) or (C, D, H, W) -> (..., oD, oH, oW). See ``adaptive_avg_pool2d``."""
    return CF._adaptive_avg_pool("adaptive_avg_pool3d", 3, input, output_size)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """The largest value of each of ``output_size`` windows covering the last axis: (N, C, L) or
    (C, L) -> (..., output_size). See ``adaptive_max_pool2d``."""
    return _adaptive_max_pool("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """The largest value of each window of an ``output_size`` grid covering the input: (N, C, H, W)
    or (C, H, W) -> (..., oH, oW); row window i spans [floor(i H / oH), ceil((i + 1) H / oH)), as
    torch. ``output_size``: an int, a pair, or a pair with None (that axis keeps its size).
    ``return_indices=True`` also returns the int64 flat positions of the maxima in each input
    plane. Ties: the first largest value, NaN: the last one (torch's CPU kernel).

        >>> F.adaptive_max_pool2d(gt.randn(8, 64, 7, 7), 1).shape
        (8, 64, 1, 1)
    """
    return _adaptive_max_pool("adaptive_max_pool2d", 2, input, output_size, return_indices)


@amp.runs_in_float32      # torch.autocast's fp32 list
def adaptive_max_pool3d(input, output_size, return_indices=False):
    """``adaptive_max_pool2d`` over (N, C, D, H, W) or (C, D, H, W) -> (..., oD, oH, oW)."""
    return _adaptive_max_pool("adaptive_max_pool3d", 3, input, output_size, return_indices)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    """``adaptive_max_pool1d(..., return_indices=True)``: ``(values, indices)``."""
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    """``adaptive_max_pool2d(..., return_indices=True)``: ``(values, indices)``."""
    return adaptive_max_pool2d(input, output_size, True)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False):
    """``adaptive_max_pool3d(..., return_indices=True)``: ``(values, indices)``."""
    return adaptive_max_pool3d(input, output_size, True)


def _adaptive_max_pool(fn, nd, input, output_size, return_indices):
    x = _tensor(input, fn)
    CF._spatial_input(fn, x, nd)
    if not x.dtype.is_floating_point:
        raise TypeError(f"{fn}: expected a floating point input, got {x.dtype!r}")
    if any(n == 0 for n in x.shape[x.ndim - nd:]):
        raise ValueError(f"{fn}: expected input with non-zero spatial sizes, got input of shape {x.shape}")
    out = CF._adaptive_size(fn, nd, x, output_size)
    if 0 in out:
        values = CF.empty_pool(x, nd, out)
        return (values, values.detach().to(dtypes.int64)) if return_indices else values
    values, indices = max_with_indices(x, nd, ("adaptive", out))
    return (values, indices) if return_indices else values


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The inverse of ``max_pool1d``: (N, C, L) values written at their ``indices`` (from
    ``max_pool1d(..., return_indices=True)``) into zeros (N, C, L_out). See ``max_unpool2d``."""
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The inverse of ``max_pool2d``: input (N, C, H, W) or (C, H, W) written at its int64
    ``indices`` (flat positions in each output plane, as ``max_pool2d(..., return_indices=True)``
    gives them) into zeros (..., H_out, W_out), ``H_out = (H - 1) * stride - 2 * padding +
    kernel_size`` unless ``output_size`` (the last 2 sizes count; each within ``stride`` of that
    default, as torch) says otherwise. The gradient of input is the output's read back at ``indices``.

        >>> y, i = F.max_pool2d(gt.randn(1, 1, 4, 4), 2, return_indices=True)
        >>> F.max_unpool2d(y, i, 2).shape
        (1, 1, 4, 4)
    """
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The inverse of ``max_pool3d``: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out). See ``max_unpool2d``."""
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)


def _max_unpool(fn, nd, input, indices, kernel_size, stride, padding, output_size):
    x, idx = _tensor(input, fn), _tensor(indices, fn, "indices")
    CF._spatial_input(fn, x, nd)
    if not x.dtype.is_floating_point:                              # torch has no integer unpooling either
        raise TypeError(f"{fn}: expected a floating point input, got {x.dtype!r}")
    if idx.dtype != dtypes.int64:
        raise TypeError(f"{fn}: indices must be int64 (as max_pool returns them), got {idx.dtype!r}")
    if idx.shape != x.shape:
        raise ValueError(f"{fn}: indices of shape {idx.shape} must have the input's shape {x.shape}")
    kernel = CF._ints(kernel_size, nd, fn, "kernel_size", 1)
    empty = isinstance(stride, (tuple, list)) and len(stride) == 0
    stride = kernel if stride is None or empty else CF._ints(stride, nd, fn, "stride", 1)
    pad = CF._ints(padding, nd, fn, "padding", 0)
    out = _unpool_size(fn, x.shape[x.ndim - nd:], kernel, stride, pad, output_size)
    plane = math.prod(out)
    if idx.numel() and (int(idx.min().item()) < 0 or int(idx.max().item()) >= plane):
        bad = int(idx.min().item()) if int(idx.min().item()) < 0 else int(idx.max().item())
        raise ValueError(f"{fn}: found an invalid max index {bad} (output planes are of size "
                         f"{'x'.join(map(str, out))}: indices must lie in [0, {plane}))")
    lead = tuple(x.shape[:x.ndim - nd])
    flat = zeros(*lead, plane, dtype=x.dtype)
    src = (*lead, math.prod(x.shape[x.ndim - nd:]))
    return flat.scatter(-1, idx.reshape(*src), x.reshape(*src)).reshape(*lead, *out)


def _unpool_size(fn, size, kernel, stride, pad, output_size):
    """The output's spatial size: torch's default, or ``output_size``'s last sizes, checked."""
    default = tuple((n - 1) * s - 2 * p + k for n, s, p, k in zip(size, stride, pad, kernel))
    if output_size is None:
        if any(o < 0 for o in default):
            raise ValueError(f"{fn}: the output size {default} (from the input size {tuple(size)}, kernel_size="
                             f"{kernel}, stride={stride}, padding={pad}) must not be negative")
        return default
    nd = len(size)
    given = tuple(output_size)
    if len(given) == nd + 2:
        given = given[2:]
    if len(given) != nd or any(isinstance(v, bool) or not hasattr(v, "__index__") for v in given):
        raise ValueError(f"{fn}: output_size must have {nd} or {nd + 2} ints, got {output_size!r}")
    for d, (o, n, s) in enumerate(zip(given, default, stride)):
        if not n - s < o < n + s:
            raise ValueError(f"{fn}: invalid output_size {output_size!r} (dim {d} must be between {n - s + 1} "
                             f"and {n + s - 1})")
    return tuple(int(v) for v in given)
