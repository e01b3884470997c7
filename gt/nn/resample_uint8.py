"""``F.interpolate`` of uint8 images in the 'bilinear' and 'bicubic' modes (``antialias`` or not)
and 'lanczos' (antialias), with torch's CPU values to the bit: its uint8 kernels (UpSampleKernel.cpp,
``_compute_index_ranges_int16_weights``, and their AVX2 twins, which compute the same) resize the
last axis, round to uint8, then the other axis, each through int16 fixed-point weights.

Per axis: each output position's weights are computed in float64 (the filter, as the antialiased
float kernels' for ``antialias=True``; ``guard_index_and_lambda``'s neighbours, the taps outside
the axis folded onto its ends, for ``antialias=False``), scaled by ``2**precision`` (the largest
precision that keeps the largest weight below 2**15) and rounded to ints; an output value is
``(2**(precision - 1) + sum(pixel * weight)) >> precision``, clamped to 0..255. An axis that keeps
its size is not resized (torch's kernels skip it, whatever the scale)."""

import math
import struct

from gt import dtypes
from gt.tensor import tensor

MODES = ("bilinear", "bicubic", "lanczos")
_INTERP_SIZE = {"bilinear": 2, "bicubic": 4, "lanczos": 6}


def _linear(x):
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def _cubic(a):
    def weight(x):                      # torch's cubic_convolution1/2 (UpSample.h), in float64
        x = abs(x)
        if x < 1.0:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        if x < 2.0:
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return 0.0
    return weight


def _sinc(x):
    if x == 0.0:
        return 1.0
    x *= math.pi
    return math.sin(x) / x


def _lanczos(x):
    x = abs(x)
    return _sinc(x) * _sinc(x / 3.0) if x < 3.0 else 0.0


def _filter(mode, antialias):
    if mode == "bilinear":
        return _linear
    if mode == "bicubic":
        return _cubic(-0.5 if antialias else -0.75)      # Keys' A with antialias (Pillow's), OpenCV's without
    return _lanczos


def _floorf(value):
    """C's ``floorf`` of a double: rounded to float32 first (torch's ``guard_index_and_lambda``)."""
    return math.floor(struct.unpack("f", struct.pack("f", value))[0])


def _antialiased(i, n, scale, size, fn):
    """(first index, weights) of output position ``i`` (``_compute_indices_min_size_weights_aa``)."""
    support = size * 0.5 * scale if scale >= 1.0 else size * 0.5
    taps = int(math.ceil(support)) * 2 + 1
    center = scale * (i + 0.5)
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    first = max(int(center - support + 0.5), 0)
    count = min(max(min(int(center + support + 0.5), n) - first, 0), taps)
    w = [fn((j + first - center + 0.5) * invscale) for j in range(count)]
    total = 0.0
    for v in w:                      # summed in order, as the C++ loop
        total += v
    if total != 0.0:
        w = [v / total for v in w]
    return first, w, max(w, default=0.0) if total != 0.0 else 0.0


def _plain(i, n, scale, size, fn, align_corners):
    """(first index, weights, running maximum) of output position ``i`` without antialiasing
    (``_compute_indices_min_size_weights``: taps beyond the axis add onto its end weights)."""
    real = scale * i if align_corners else scale * (i + 0.5) - 0.5
    if not align_corners and size == 2 and real < 0:
        real = 0.0
    index = min(_floorf(real), n - 1)
    lam = min(max(real - index, 0.0), 1.0)
    support = int(size * 0.5)
    lowest = index - support + 1
    first = max(lowest, 0)
    count = min(max(min(index + support + 1, n) - first, 0), size)
    w, top, slot = [0.0] * size, 0.0, 0
    for j in range(size):
        if lowest + j <= 0:
            slot = 0
        elif lowest + j >= n - 1:
            slot = count - 1
        w[slot] += fn(float(j + 1 - support) - lam)
        top = max(top, w[slot])
        slot += 1
    return first, w[:count], top


def axis_weights(n, o, scale_factor, align_corners, mode, antialias):
    """(firsts, int weights per output position, precision) for resizing an axis of ``n`` to ``o``."""
    if align_corners:
        scale = (n - 1) / (o - 1) if o > 1 else 0.0
    else:
        scale = 1.0 / scale_factor if scale_factor is not None and scale_factor > 0 else n / o
    size, fn = _INTERP_SIZE[mode], _filter(mode, antialias)
    rows = [_antialiased(i, n, scale, size, fn) if antialias else _plain(i, n, scale, size, fn, align_corners)
            for i in range(o)]
    top = max(r[2] for r in rows)
    precision = 0
    while precision < 22 and int(0.5 + top * (1 << (precision + 1))) < 1 << 15:
        precision += 1
    unit = 1 << precision
    ints = [[int(v * unit - 0.5) if v * unit < 0 else int(v * unit + 0.5) for v in r[1]] for r in rows]
    return [r[0] for r in rows], ints, precision


def _resize_axis(x, axis, o, scale_factor, align_corners, mode, antialias):
    """``x`` (uint8) resized along ``axis`` to ``o``, rounded to uint8 as torch's kernels."""
    n = x.shape[axis]
    firsts, ints, precision = axis_weights(n, o, scale_factor, align_corners, mode, antialias)
    taps = max(1, max(len(w) for w in ints))
    index = tensor([[min(f + k, n - 1) for k in range(taps)] for f in firsts], dtype=dtypes.int64)
    weight = tensor([w + [0] * (taps - len(w)) for w in ints], dtype=dtypes.int64)
    last = x.movedim(axis, -1)
    picked = last.index_select(-1, index.reshape(-1)).reshape(*last.shape[:-1], o, taps).to(dtypes.int64)
    total = (picked * weight).sum(-1) + (1 << (precision - 1))
    return (total // (1 << precision)).clamp(0, 255).to(dtypes.uint8).movedim(-1, axis)


def resize(x, out, scales, align_corners, mode, antialias):
    """(N, C, H, W) uint8 -> (N, C, *out): the last axis first, then H, as torch's uint8 kernels."""
    y = x
    for axis in (3, 2):
        if out[axis - 2] != x.shape[axis]:
            y = _resize_axis(y, axis, out[axis - 2], scales[axis - 2], align_corners, mode, antialias)
    return x.clone() if y is x else y
