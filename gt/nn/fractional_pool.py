"""Fractional max pooling (Graham, "Fractional Max-Pooling", 2014): ``F.fractional_max_pool2d/3d``,
their ``*_with_indices`` forms and ``nn.FractionalMaxPool2d/3d``, with torch's arguments.

Each (sample, channel) plane is pooled over windows of ``kernel_size`` whose starts step
pseudo-randomly from 0 to ``in - k``: with u the plane's sample for that axis (in [0, 1)) and
alpha = (in - k) / (out - 1), start_i = int((i + u) * alpha) - int(u * alpha) for i < out - 1
and start_{out-1} = in - k, computed in the input's dtype as torch's CPU kernel does, so the same
``_random_samples`` give torch's output and indices exactly. Indices are int64 flat positions in
each input plane (what ``max_unpool2d/3d`` read back); the values are the input read back at them
with ``gather``, so the gradient goes to the maxima torch picks (the first largest value in window
order; a window holding NaN: its last NaN).

Where gt differs from torch: errors are ValueError/TypeError (torch: RuntimeError) with the same
words; ``F.fractional_max_pool2d`` also takes a plain number as ``output_ratio`` (torch's calls
``len`` on it); ``kernel_size`` below 1 and negative ``output_size`` are refused (torch's function
pools empty windows to -inf, or fails creating the output); samples so far outside [0, 1) that a
window would leave the input are refused (torch's kernel reads past the plane)."""

import math

from gt import autograd, dtypes
from gt.nn import conv_functions as CF
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.module import Module
from gt.tensor import arange, cat, checks, full, rand, where

_AXES = {2: ("height", "width"), 3: ("time", "height", "width")}


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """The largest value of each (kH, kW) window of a pseudo-random grid: (N, C, H, W) or (C, H, W)
    -> (..., oH, oW), and with ``return_indices`` also the int64 flat positions of the maxima in
    each H*W plane. ``output_size`` (an int or a pair) or ``output_ratio`` (a float or a pair:
    oH = int(H * ratio)) sets the grid; ``oH + kH - 1 <= H`` must hold. ``_random_samples``
    (N, C, 2) in the input's dtype ((1, C, 2) for an unbatched input; extra rows are ignored, as
    torch's; index 0 steers the width, 1 the height) fix the grid; drawn with ``gt.rand`` when
    None, so ``gt.manual_seed`` repeats them.

        >>> F.fractional_max_pool2d(gt.randn(2, 3, 10, 10), 3, output_size=(5, 4)).shape
        (2, 3, 5, 4)
    """
    return _pool("fractional_max_pool2d", 2, input, kernel_size, output_size, output_ratio, return_indices,
                 _random_samples)


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """``fractional_max_pool2d`` over (N, C, T, H, W) or (C, T, H, W) -> (..., oT, oH, oW), with
    ``_random_samples`` (N, C, 3) (index 0 steers time, 1 height, 2 width, as torch's) and indices
    flat in each T*H*W plane. As torch's, it asks ``oT + kT <= T`` (one less than the 2-d form
    allows, though the windows would fit), and so on for H and W.

        >>> F.fractional_max_pool3d(gt.randn(2, 3, 8, 8, 8), 2, output_ratio=0.5).shape
        (2, 3, 4, 4, 4)
    """
    return _pool("fractional_max_pool3d", 3, input, kernel_size, output_size, output_ratio, return_indices,
                 _random_samples)


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """``fractional_max_pool2d(..., return_indices=True)``: ``(values, indices)`` whatever
    ``return_indices`` says (torch's)."""
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True, _random_samples)


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """``fractional_max_pool3d(..., return_indices=True)``: ``(values, indices)``."""
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True, _random_samples)


def _pool(fn, nd, input, kernel_size, output_size, output_ratio, return_indices, samples):
    x = _tensor(input, fn)
    CF._spatial_input(fn, x, nd)
    if not x.dtype.is_floating_point:
        raise TypeError(f"{fn}: expected a floating point input, got {x.dtype!r}")
    if any(n == 0 for n in x.shape[1:]):        # torch's check: every axis but the first
        raise ValueError(f"{fn}: expected input to have non-zero size for non-batch dimensions, got input of "
                         f"shape {x.shape}")
    size = x.shape[x.ndim - nd:]
    kernel = CF._ints(kernel_size, nd, fn, "kernel_size", 1)
    out = _output_size(fn, nd, size, output_size, output_ratio)
    room = 1 if nd == 2 else 0          # torch's 3-d kernel asks one more than its 2-d kernel
    for name, n, k, o in zip(_AXES[nd], size, kernel, out):
        if o + k - room > n:
            raise ValueError(f"{fn}(): pool {name} {k} too large relative to input {name} {n} (output {name} "
                             f"{o} needs output + kernel {'- 1 <=' if room else '<='} input)")
    batch, channels = (x.shape[0] if x.ndim == nd + 2 else 1), x.shape[x.ndim - nd - 1]
    u = _samples(fn, nd, x, batch, channels, samples)                                    # (N, C, nd)
    order = (1, 0) if nd == 2 else (0, 1, 2)           # torch's 2-d kernel reads (width, height)
    starts = [_starts(u[:, :, j], n, o, k) for j, n, o, k in zip(order, size, out, kernel)]
    if samples is not None:
        _check_starts(fn, starts, size, kernel)
    table = _window_table(starts, size, kernel)                                          # (N, C, Q, K)
    plane = x.reshape(batch, channels, math.prod(size))                                 # (N, C, H*W)
    q = math.prod(out)
    with autograd.no_grad():
        vals = plane.gather(-1, table.reshape(batch, channels, q * table.shape[-1])).reshape(*table.shape)
        indices = table.gather(-1, _first_max(vals)).reshape(batch, channels, q)         # (N, C, Q)
    values = plane.gather(-1, indices)
    lead = x.shape[:x.ndim - nd]
    values, indices = values.reshape(*lead, *out), indices.reshape(*lead, *out)
    return (values, indices) if return_indices else values


def _output_size(fn, nd, size, output_size, output_ratio):
    """``output_size`` as ``nd`` ints >= 0, or ``int(n * ratio)`` of each input size ``n``."""
    if output_size is None and output_ratio is None:
        raise ValueError(f"{fn} requires specifying either an output_size or an output_ratio")
    if output_size is not None:
        return CF._ints(output_size, nd, fn, "output_size", 0)
    ratio = (output_ratio,) * nd if isinstance(output_ratio, (int, float)) else output_ratio
    try:
        ratio = tuple(float(r) for r in ratio)
    except (TypeError, ValueError):
        ratio = ()
    if len(ratio) != nd or any(not r >= 0 for r in ratio):
        raise ValueError(f"{fn}: output_ratio must be a number or a tuple of {nd} numbers in (0, 1), "
                         f"got {output_ratio!r}")
    return tuple(int(n * r) for n, r in zip(size, ratio))


def _samples(fn, nd, x, batch, channels, samples):
    """(N, C, nd) samples in x's dtype: the first N rows of ``samples`` (checked as torch), or new ones."""
    if samples is None:
        return rand(batch, channels, nd, dtype=x.dtype)
    u = _tensor(samples, fn, "_random_samples")
    if u.dtype != x.dtype:
        raise TypeError(f"{fn}: expected _random_samples to have the same dtype as input ({x.dtype!r}), got "
                        f"{u.dtype!r}")
    if u.ndim != 3:
        raise ValueError(f"{fn}: expected _random_samples to have 3 dimensions (N, C, {nd}), got shape {u.shape}")
    if u.shape[0] < batch:
        raise ValueError(f"{fn}: expected _random_samples.size(0) no less than the input batch size {batch}, "
                         f"got shape {u.shape}")
    if u.shape[1] != channels:
        raise ValueError(f"{fn}: expected _random_samples.size(1) equal to the input channel size {channels}, "
                         f"got shape {u.shape}")
    if u.shape[2] != nd:
        raise ValueError(f"{fn}: expected _random_samples.size(2) equal to {nd}, got {u.shape[2]}")
    return u if u.shape[0] == batch else u[:batch]


def _starts(u, n, o, k):
    """(N, C, o) int64 window starts along an axis of length n from its samples u (N, C):
    torch's ``generate_intervals``, in u's dtype (truncation toward zero, as its int cast)."""
    last = full((*u.shape, min(o, 1)), n - k, dtype=dtypes.int64)
    if o <= 1:
        return last
    # 1-element, not 0-d: a 0-d float16 quotient comes out float32 on the numpy engine
    alpha = full((1,), n - k, dtype=u.dtype) / full((1,), o - 1, dtype=u.dtype)
    u = u.unsqueeze(-1)                                                                   # (N, C, 1)
    start = ((arange(o - 1).to(u.dtype) + u) * alpha).to(dtypes.int64) - (u * alpha).to(dtypes.int64)
    return cat([start, last], -1)


def _check_starts(fn, starts, size, kernel):
    """Samples far outside [0, 1) can round a window out of the input (torch's kernel then reads
    past the plane): refuse them."""
    for s, n, k in zip(starts, size, kernel):
        if s.numel():
            def message(s=s, n=n, k=k):
                return (f"{fn}: _random_samples put a pooling window outside the input (expected samples in "
                        f"[0, 1), got window starts from {int(s.min().item())} to {int(s.max().item())}, "
                        f"valid: 0 to {n - k})")
            checks.require((s.min() >= 0) & (s.max() <= n - k), ValueError, message)


def _window_table(starts, size, kernel):
    """(N, C, Q, K) int64 flat positions in the (*size) plane of every window's elements, in
    row-major window order (torch's scan order), Q = prod(out), K = prod(kernel)."""
    nd = len(size)
    lead = starts[0].shape[:2]
    table = None
    for i, (s, n, k) in enumerate(zip(starts, size, kernel)):
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = s.shape[-1], k
        at = (s.reshape(*lead, *shape[:nd], *([1] * nd))
              + arange(k).reshape(*([1] * (2 + nd)), *shape[nd:])) * math.prod(size[i + 1:])
        table = at if table is None else table + at
    out = table.shape[2:2 + nd]
    return table.reshape(*lead, math.prod(out), math.prod(kernel))


def _first_max(vals):
    """(..., Q, 1) int64: the window position of each row's first largest value, or of its last
    NaN where it has one (torch's kernel keeps ``val > maxval || isnan(val)``)."""
    nan = vals.isnan()
    first = vals.masked_fill(nan, -math.inf).argmax(-1, keepdim=True)
    last = (vals.shape[-1] - 1) - nan.flip([-1]).to(dtypes.int32).argmax(-1, keepdim=True)
    return where(nan.any(-1, keepdim=True), last, first)


class FractionalMaxPool2d(Module):
    """Fractional max pooling (see ``F.fractional_max_pool2d``): (N, C, H, W) or (C, H, W) ->
    (..., oH, oW). Exactly one of ``output_size`` and ``output_ratio`` (each in (0, 1)) is given.
    ``_random_samples`` (N, C, 2), when given, is a buffer (in the state dict, as torch's) and fixes
    the windows; otherwise each call draws new ones. ``kernel_size`` etc. are kept as tuples, as torch.

        >>> nn.FractionalMaxPool2d(3, output_ratio=0.5)(gt.randn(2, 3, 10, 10)).shape
        (2, 3, 5, 5)
    """

    _nd, _name = 2, "FractionalMaxPool2d"

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices=False, _random_samples=None):
        super().__init__()
        nd = self._nd
        if any(isinstance(k, (int, float)) and k <= 0 for k in _tuple(kernel_size, nd)):
            raise ValueError(f"kernel_size must be greater than 0, but got {kernel_size}")
        self.kernel_size = _tuple(kernel_size, nd)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = _tuple(output_size, nd) if output_size is not None else None
        self.output_ratio = _tuple(output_ratio, nd) if output_ratio is not None else None
        if output_size is None and output_ratio is None:
            raise ValueError(f"{self._name} requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input):
        function = fractional_max_pool2d if self._nd == 2 else fractional_max_pool3d
        return function(input, self.kernel_size, self.output_size, self.output_ratio, self.return_indices,
                        _random_samples=self._random_samples)


class FractionalMaxPool3d(FractionalMaxPool2d):
    """``FractionalMaxPool2d`` over (N, C, T, H, W) or (C, T, H, W) -> (..., oT, oH, oW), with
    ``_random_samples`` (N, C, 3) (see ``F.fractional_max_pool3d``).

        >>> nn.FractionalMaxPool3d(2, output_size=(4, 3, 3))(gt.randn(2, 3, 8, 6, 6)).shape
        (2, 3, 4, 3, 3)
    """

    _nd, _name = 3, "FractionalMaxPool3d"


def _tuple(value, nd):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * nd
