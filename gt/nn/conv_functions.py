"""Convolution, pooling and batch norm functions of ``gt.nn.functional`` (``F.conv2d``,
``F.max_pool2d``, ``F.batch_norm``, ...), with torch's names, arguments and checks. Inputs are
(N, C, *size) with 1 or 2 spatial axes (3 for ``conv3d`` and the 3-d pools of
gt/nn/pooling_functions.py), or unbatched (C, *size) as torch. The ops themselves are
gt/ops/conv.py, gt/ops/pool_indices.py and gt/ops/batch_norm.py."""

import math

from gt import amp, autograd, dtypes
from gt.errors import ShapeError
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.norm_functions import channel_vectors, check_stats_pair, half_stays_half, refuse_unbatched_stats
from gt.nn import quantized_pooling
from gt.nn.pool_indices import max_with_indices
from gt.ops import batch_norm as bn_ops
from gt.ops import conv as conv_ops
from gt.tensor import Tensor, arange, where
from gt.tensor.complex_checks import cpp_name


def _ints(value, nd, fn, name, low, expand_one=False):
    """``value`` (an int, or a sequence of ``nd`` ints) as a tuple of ``nd`` ints, each >= ``low``.
    ``expand_one``: a sequence of one int stands for all ``nd`` (torch's convolutions and pools)."""
    try:
        out = (value.__index__(),) * nd if not isinstance(value, bool) and hasattr(value, "__index__") else tuple(value)
    except TypeError:
        out = ()
    if expand_one and len(out) == 1:
        out *= nd
    if (len(out) != nd or any(isinstance(v, bool) or not hasattr(v, "__index__") for v in out)
            or any(v < low for v in out)):
        raise ValueError(f"{fn}: {name} must be an int or a tuple of {nd} ints, each at least {low}, "
                         f"got {value!r}")
    return tuple(v.__index__() for v in out)


def _spatial_input(fn, x, nd):
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{fn}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
                         f"got input of shape {x.shape}")


# ---- convolution ------------------------------------------------------------------------------
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution (cross-correlation, as torch): input (N, C, L) or (C, L), weight
    (out_channels, C / groups, k), bias (out_channels,) -> (N, out_channels, L_out).
    ``padding``: an int, a 1-tuple, ``"valid"`` (none) or ``"same"`` (output length = input
    length; stride 1 only). See ``conv2d``."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as torch): input (N, C, H, W) or unbatched (C, H, W),
    weight (out_channels, C / groups, kH, kW), bias (out_channels,) or None ->
    (N, out_channels, H_out, W_out), ``H_out = (H + 2 * pad - dilation * (kH - 1) - 1) // stride + 1``.
    ``stride``, ``padding``, ``dilation``: an int or a pair; ``padding`` also ``"valid"`` (none)
    or ``"same"`` (output size = input size, stride 1 only; an odd total puts the extra row
    and column after, as torch). ``groups`` splits the channels into independent convolutions.

        >>> F.conv2d(gt.randn(8, 3, 28, 28), gt.randn(16, 3, 3, 3), padding=1).shape
        (8, 16, 28, 28)
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution: input (N, C, D, H, W) or (C, D, H, W), weight (out_channels, C / groups,
    kD, kH, kW). See ``conv2d``."""
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


# torch's CPU kernels that refuse bool input first, by function (conv1d/conv2d: slow_conv2d_cpu)
_BOOL_KERNELS = {"conv3d": "compute_columns3d", "conv_transpose1d": "slow_conv_transpose2d_out_cpu",
                 "conv_transpose2d": "slow_conv_transpose2d_out_cpu",
                 "conv_transpose3d": "slow_conv_transpose3d_out_cpu"}


def _refuse_dtypes(fn, x, weight, bias):
    """torch's RuntimeError for a ``weight`` or ``bias`` of another dtype than ``x``: a convolution
    checks the bias first, in its own words; a transposed one, weight then bias, as scalar types."""
    first = ("weight", "bias") if fn.startswith("conv_transpose") else ("bias", "weight")
    for name in first:
        t = weight if name == "weight" else bias
        if t is None or t.dtype is x.dtype:
            continue
        if name == "bias" and not fn.startswith("conv_transpose"):
            raise RuntimeError(f"Input type ({cpp_name(x.dtype)}) and bias type ({cpp_name(t.dtype)}) should be the "
                               "same")
        raise RuntimeError(f"expected scalar type {dtypes.torch_type_name(x.dtype.name)} but found "
                           f"{dtypes.torch_type_name(t.dtype.name)}")


def _operands(fn, nd, input, weight, bias, groups, weight_layout):
    """``(x, weight, bias)`` as tensors, checked: a (C, *spatial) or (N, C, *spatial) input, an
    ``nd + 2``-D weight laid out as ``weight_layout`` says, one dtype, not bool, groups >= 1.
    Shared by the convolutions and the transposed ones (gt/nn/conv_transpose_functions.py)."""
    x, weight = _tensor(input, fn), _tensor(weight, fn, "weight")
    bias = None if bias is None else _tensor(bias, fn, "bias")
    _spatial_input(fn, x, nd)
    if weight.ndim != nd + 2:
        raise ValueError(f"{fn}: weight must be {nd + 2}-D {weight_layout}, got shape {weight.shape}")
    # autocast casts float32 operands to its dtype first, so those may meet operands already in it
    # (asked only under autocast: reading the three dtypes costs about 0.6 us a call)
    casts = amp.is_autocast_enabled() and amp.cast_dtype_of(
        x.dtype, weight.dtype, None if bias is None else bias.dtype) is not None
    dtype = x.dtype
    if (weight.dtype is not dtype or (bias is not None and bias.dtype is not dtype)) and not casts:
        _refuse_dtypes(fn, x, weight, bias)
    if dtype is dtypes.bool_:
        raise NotImplementedError(f"\"{_BOOL_KERNELS.get(fn, 'slow_conv2d_cpu')}\" not implemented for 'Bool'")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{fn}: groups must be a positive int, got {groups!r}")
    return x, weight, bias


def _conv(fn, nd, input, weight, bias, stride, padding, dilation, groups):
    if type(input) is not Tensor and getattr(input, "is_nested", False):    # gt.nested's: the convolution of its values
        return type(input).__gt_function__(globals()[fn], (input, weight, bias, stride, padding, dilation, groups), {})
    x, weight, bias = _operands(fn, nd, input, weight, bias, groups, "(out_channels, in_channels / groups, *kernel)")
    stride, dilation = _ints(stride, nd, fn, "stride", 1, True), _ints(dilation, nd, fn, "dilation", 1, True)
    kernel = weight.shape[2:]
    pads = _conv_padding(fn, padding, nd, kernel, stride, dilation)
    batched, given = x.ndim == nd + 2, x.shape
    if not batched:
        x = x.unsqueeze(0)
    c, o = x.shape[1], weight.shape[0]
    if o % groups:
        raise ValueError(f"{fn}: weight of shape {weight.shape} has {o} output channels, not divisible by "
                         f"groups={groups}")
    if weight.shape[1] * groups != c:
        raise ShapeError(f"{fn}: given groups={groups}, weight of shape {weight.shape} expects an input with "
                         f"{weight.shape[1] * groups} channels, but the input of shape {given} has "
                         f"{c} channels")
    if bias is not None and bias.shape != (o,):
        raise ShapeError(f"{fn}: bias must have shape ({o},), got {bias.shape}")
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads))
    reach = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(r > n for r, n in zip(reach, padded)):
        raise ShapeError(f"{fn}: the kernel (size {kernel}, dilation {dilation}: it spans {reach}) can't be larger "
                         f"than the padded input (size {padded}; input of shape {given})")
    out = conv_ops.Conv.apply(x, weight, bias, stride=stride, padding=pads, dilation=dilation, groups=groups)
    return out if batched else out.squeeze(0)


def _conv_padding(fn, padding, nd, kernel, stride, dilation):
    """``padding`` as one (before, after) pair per spatial axis."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{fn}: padding='same' is not supported for strided convolutions "
                                 f"(stride={stride})")
            totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ValueError(f"{fn}: invalid padding string {padding!r}, should be one of 'valid', 'same'")
    return tuple((p, p) for p in _ints(padding, nd, fn, "padding", 0, True))


# ---- pooling ----------------------------------------------------------------------------------
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The largest value of each window: (N, C, L) or (C, L) -> (..., L_out). See ``max_pool2d``."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The largest value of each (kH, kW) window: (N, C, H, W) or (C, H, W) -> (..., H_out, W_out),
    ``H_out = (H + 2 * padding - dilation * (kH - 1) - 1) // stride + 1`` (rounded up with
    ``ceil_mode``, except that no window may start in the right padding, as torch).
    ``stride`` defaults to ``kernel_size``; ``padding`` (at most
    half the kernel, whatever the dilation, as torch) counts as -inf. The gradient goes to the first largest value of each
    window, as torch's CPU kernel. ``return_indices=True`` returns ``(values, indices)``, the
    indices int64 flat positions within each input plane, as torch's (for ``F.max_unpool2d``).

        >>> F.max_pool2d(gt.randn(8, 16, 28, 28), 2).shape
        (8, 16, 14, 14)
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _max_pool(fn, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    if getattr(input, "is_quantized", False) and not return_indices:
        # torch's quantized max pooling: the largest integer of each window, the input's parameters
        ints = _max_pool(fn, nd, input.int_repr().float(), kernel_size, stride, padding, dilation, ceil_mode, False)
        return input._like(ints.to(input.int_repr().dtype))
    x = _tensor(input, fn)
    if x.dtype == dtypes.bool_:
        raise TypeError(f"{fn}: bool input is not supported")
    if x.dtype.is_complex:          # complex numbers have no order (torch has no complex max pooling)
        raise TypeError(f"{fn}: expected a real input, got {x.dtype!r}")
    kernel, stride, pads, dilation, out = _pool_geometry(fn, nd, x, kernel_size, stride, padding, dilation, ceil_mode)
    if return_indices:
        return max_with_indices(x, nd, ("regular", kernel, stride, tuple(lo for lo, _ in pads), dilation, out))
    return conv_ops.MaxPool.apply(x, kernel=kernel, stride=stride, padding=pads, dilation=dilation,
                                  ceil_mode=bool(ceil_mode))


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """The mean of each window: (N, C, L) or (C, L) -> (..., L_out). See ``avg_pool2d``."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """The mean of each (kH, kW) window: (N, C, H, W) or (C, H, W) -> (..., H_out, W_out), sizes
    as ``max_pool2d``'s. ``padding`` (at most half the kernel) counts as zeros, and in the divisor
    where ``count_include_pad`` (the window clipped to the padded input; without it, to the input).
    ``divisor_override`` divides every window's sum by that number instead. Float input only
    (torch also averages integers, rounding toward zero)."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _avg_pool(fn, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x = _tensor(input, fn)
    if x.dtype == dtypes.bool_ or x.dtype in dtypes.SMALL_INTS:   # torch averages int32/int64 only
        raise NotImplementedError(f"{fn}: not implemented for {x.dtype!r} inputs (as torch); cast them, e.g. "
                                  "x.float()")
    if x.dtype.is_complex:
        raise TypeError(f"{fn}: expected a real input, got {x.dtype!r}")
    kernel, stride, pads, _, _ = _pool_geometry(fn, nd, x, kernel_size, stride, padding, 1, ceil_mode)
    if nd == 3 and any(n < k for n, k in zip(x.shape[-3:], kernel)):      # torch's 3-d rule: padding not counted
        raise ValueError(f"{fn}: input of shape {x.shape} is smaller than kernel_size={kernel}")
    if divisor_override is not None and (isinstance(divisor_override, bool) or not isinstance(divisor_override, int)
                                         or divisor_override == 0):
        raise ValueError(f"{fn}: divisor_override must be a non-zero int, got {divisor_override!r}")
    kw = dict(kernel=kernel, stride=stride, padding=pads, count_include_pad=bool(count_include_pad))
    if not x.dtype.is_floating_point:
        return _int_avg_pool(x, kw, divisor_override)
    return conv_ops.AvgPool.apply(x, divisor_override=divisor_override, **kw)


def _int_avg_pool(x, kw, divisor_override):
    """torch's integer average pool: each window's sum divided by its divisor, truncated toward zero,
    in the input's dtype. Sums and divisors are exact in float64 (below 2**52), so the float pool's
    own division in float64 gives the quotient to truncate."""
    return conv_ops.AvgPool.apply(x.to(dtypes.float64), divisor_override=divisor_override, **kw).trunc().to(x.dtype)


def _pool_geometry(fn, nd, x, kernel_size, stride, padding, dilation, ceil_mode):
    """``(kernel, stride, pads, dilation, out)`` of a pooling: ``pads`` one (before, after) pair per
    axis (after includes what ``ceil_mode``'s last window needs), ``out`` the output size."""
    _spatial_input(fn, x, nd)
    kernel = _ints(kernel_size, nd, fn, "kernel_size", 1, True)
    empty = isinstance(stride, (tuple, list)) and len(stride) == 0          # torch's default too
    stride = kernel if stride is None or empty else _ints(stride, nd, fn, "stride", 1, True)
    pad, dilation = _ints(padding, nd, fn, "padding", 0, True), _ints(dilation, nd, fn, "dilation", 1, True)
    size, pads, out = x.shape[x.ndim - nd:], [], []
    for n, k, s, p, d in zip(size, kernel, stride, pad, dilation):
        if p > k // 2:                      # torch's rule: half the kernel, whatever the dilation
            raise ShapeError(f"{fn}: padding should be at most half of the kernel size, got padding={pad} and "
                             f"kernel_size={kernel}")
        span = d * (k - 1) + 1
        o = (n + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= n + p:    # torch's rule: no window starts in the right padding
            o -= 1
        if o < 1:
            raise ShapeError(f"{fn}: input of shape {x.shape} is too small for kernel_size={kernel}, stride={stride}, "
                             f"padding={pad}, dilation={dilation}: the output size would be {o}")
        pads.append((p, max(p, (o - 1) * s + span - n - p)))
        out.append(o)
    return kernel, stride, tuple(pads), dilation, tuple(out)


def adaptive_avg_pool1d(input, output_size):
    """The mean over ``output_size`` windows covering the last axis: (N, C, L) or (C, L) ->
    (..., output_size); window i spans [floor(i L / out), ceil((i + 1) L / out)), as torch."""
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """The mean over an ``output_size`` grid of windows covering the input: (N, C, H, W) or
    (C, H, W) -> (..., oH, oW); row window i spans [floor(i H / oH), ceil((i + 1) H / oH)) (so
    windows may overlap where oH does not divide H), as torch. ``output_size``: an int, a pair,
    or a pair with None (that axis keeps its size).

        >>> F.adaptive_avg_pool2d(gt.randn(8, 64, 7, 7), 1).shape
        (8, 64, 1, 1)
    """
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


def _adaptive_avg_pool(fn, nd, input, output_size):
    if getattr(input, "is_quantized", False):
        return quantized_pooling.adaptive_avg_pool(fn, nd, input, output_size, _adaptive_avg_pool)
    x = _tensor(input, fn)
    _spatial_input(fn, x, nd)
    if not x.dtype.is_floating_point:
        raise TypeError(f"{fn}: expected a floating point input, got {x.dtype!r}")
    size, out = x.shape[x.ndim - nd:], _adaptive_size(fn, nd, x, output_size)
    if 0 in out:
        return empty_pool(x, nd, out)
    if all(n % o == 0 for n, o in zip(size, out)):
        kernel = tuple(n // o for n, o in zip(size, out))
        return conv_ops.AvgPool.apply(x, kernel=kernel, stride=kernel, padding=((0, 0),) * nd)
    # windows of different sizes: the mean as a product with an averaging matrix per axis
    # (row i holds 1 / (window size) over window i), x (..., H, W) -> P_H @ x @ P_W^T
    with amp.exact():           # in x's dtype under autocast too: torch's pooling is no product
        return _adaptive_products(x, nd, size, out)


def _adaptive_products(x, nd, size, out):
    """``_adaptive_avg_pool``'s windows of different sizes: the products with averaging matrices."""
    y = x
    if nd == 3:                                    # (..., D, H, W) -> (..., W, H, D) @ P_D^T, and back
        y = (y.transpose(-3, -1) @ _averaging(size[0], out[0], x.dtype).transpose(0, 1)).transpose(-3, -1)
    if nd >= 2:
        y = _averaging(size[-2], out[-2], x.dtype) @ y
    y = y @ _averaging(size[-1], out[-1], x.dtype).transpose(0, 1)
    if not y.isfinite().all().item():
        # an inf or NaN in x: the products with the matrices' zeros (0 * inf is NaN) spread it to
        # every window; the windows gathered keep it in its own (slower: only here)
        y = x
        for axis, (n, o) in enumerate(zip(size, out), start=x.ndim - nd):
            y = _adaptive_axis_mean(y, axis, n, o)
    return y


def empty_pool(x, nd, out):
    """The empty result (..., *out) of an adaptive pooling to a size with a 0 in it (torch's
    forward allows it), still on the tape of x (its gradient: zeros)."""
    return x.narrow(x.ndim - nd + out.index(0), 0, 0).reshape(tuple(x.shape[:x.ndim - nd]) + tuple(out))


def _adaptive_size(fn, nd, x, output_size):
    """``output_size`` of an adaptive pooling of x (..., *size) as ``nd`` ints >= 0 (0: an empty
    result, as torch's forward), a None keeping that axis's size."""
    size = x.shape[x.ndim - nd:]
    given = (output_size,) * nd if output_size is None or hasattr(output_size, "__index__") else output_size
    if isinstance(given, (tuple, list)) and len(given) == nd:     # None: that axis keeps its size
        given = tuple(n if o is None else o for n, o in zip(size, given))
    try:
        out = _ints(given, nd, fn, "output_size", 0)
    except ValueError:
        raise ValueError(f"{fn}: output_size must be an int or a tuple of {nd} ints (or None), each at least 0, "
                         f"got {output_size!r}") from None
    return out


def _averaging(n, o, dtype):
    """(o, n): row i is 1 / (its window's size) over adaptive window i of an axis of length n."""
    i, j = arange(o).unsqueeze(1), arange(n).unsqueeze(0)
    start, end = (i * n) // o, ((i + 1) * n + o - 1) // o
    return ((j >= start) & (j < end)).to(dtype) / (end - start).to(dtype)


def _adaptive_axis_mean(x, axis, n, o):
    """The mean over each adaptive window [floor(i n / o), ceil((i + 1) n / o)) of ``axis``: the
    windows gathered padded to the longest and the padding left out by a select, not a product
    with zeros, so that an inf or NaN stays in its own windows."""
    i, k = arange(o).unsqueeze(1), arange(min(n, -(-n // o) + 1)).unsqueeze(0)
    start, end = (i * n) // o, ((i + 1) * n + o - 1) // o                   # (o, 1)
    at = start + k                                                            # (o, K)
    after = (1,) * (x.ndim - 1 - axis)
    taps = x.index_select(axis, at.clamp(max=n - 1).reshape(-1))
    taps = taps.reshape(*x.shape[:axis], o, at.shape[1], *x.shape[axis + 1:])
    total = where((at < end).reshape(o, at.shape[1], *after), taps, 0.0).sum(dim=axis + 1)
    return total / (end - start).to(x.dtype).reshape(o, *after)


# ---- batch norm -------------------------------------------------------------------------------
def _check_stats_and_eps(fn, running_mean, running_var, training, eps):
    """torch's ValueErrors: one running statistic without the other, and an ``eps`` that would
    divide by zero (or take a root of a negative) while training."""
    check_stats_pair(running_mean, running_var)
    if training and not eps > 0:
        raise ValueError(f"{fn} eps must be positive during training, but got {eps}")
    if eps < 0:
        raise ValueError(f"{fn} eps must be non-negative, but got {eps}")


@half_stays_half
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise each channel (axis 1) of input (N, C, *rest) over every other axis:
    ``(x - mean) / sqrt(var + eps) * weight + bias``, ``weight``/``bias``/running stats (C,).

    ``training``: mean and (biased) variance of this batch, and ``running_mean``/``running_var``
    (where given) move toward them in place, ``running = (1 - momentum) * running + momentum *
    batch`` with the batch's unbiased variance, as torch. Otherwise the running statistics are used.
    """
    fn = "batch_norm"
    x = _tensor(input, fn)
    if x.ndim < 2:
        raise ValueError(f"{fn}: expected an input (N, C, ...) with at least 2 dims, got shape {x.shape}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{fn}: expected a floating point input, got {x.dtype!r}")
    c = x.shape[1]
    if training and x.shape[0] * math.prod(x.shape[2:]) == 1:      # torch's first check, whatever C is
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
    running_mean, running_var, weight, bias = channel_vectors(fn, c, x, running_mean=running_mean,
                                                              running_var=running_var, weight=weight, bias=bias)
    _check_stats_and_eps(fn, running_mean, running_var, training, eps)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(f"{fn}: running_mean and running_var must be given when not training")
        return bn_ops.BatchNorm.apply(x, weight, bias, running_mean, running_var, eps=eps, training=False)
    if running_mean is not None:
        refuse_unbatched_stats(running_mean, running_var)
    n = x.numel() // c if c else 0
    if n == 0:       # an empty batch: an empty result, zero gradients, the statistics untouched (torch's)
        shape = (1, c) + (1,) * (x.ndim - 2)
        out = x if weight is None else x * weight.reshape(shape)
        return out if bias is None else out + bias.reshape(shape)
    axes = (0,) + tuple(range(2, x.ndim))
    with autograd.no_grad():
        mean = x.mean(dim=axes)
        var = x._plain_var(axes)      # torch's kernel: float32 statistics (no float64 rerun)
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(mean * momentum)
        if running_var is not None:
            running_var.mul_(1 - momentum).add_(var * (momentum * n / (n - 1)))
    return bn_ops.BatchNorm.apply(x, weight, bias, mean, var, eps=eps, training=True)
