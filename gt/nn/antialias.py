"""``F.interpolate(..., antialias=True)``: torch's anti-aliased 'bilinear', 'bicubic' and
'lanczos' resizing of (N, C, H, W) input (its ``_upsample_*_aa`` CPU kernels, as Pillow resizes).

Each output position takes every input position within the filter's support of its centre,
weighted by the filter (stretched by the scale when shrinking, so that every input pixel counts),
the weights of each output position normalised to sum to 1. Separable: one (out, in) weight
matrix per axis, applied as a product (the matrices depend only on the sizes; for an axis of n
pixels the product costs n per output value, where torch's loop costs the support)."""

import math

from gt import amp, dtypes
from gt.tensor import arange, where

MODES = ("bilinear", "bicubic", "lanczos")
# the filter's half-width at scale 1
_SUPPORT = {"bilinear": 1.0, "bicubic": 2.0, "lanczos": 3.0}
_AA_CUBIC_A = -0.5               # torch's anti-aliased bicubic uses Keys' A (its plain bicubic: -0.75)


def _filter(mode, d):
    """The filter's weight at distances ``d`` >= 0 (a float64 tensor)."""
    if mode == "bilinear":
        return (1.0 - d).clamp(min=0.0)
    if mode == "bicubic":
        a = _AA_CUBIC_A
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        return where(d < 1.0, near, where(d < 2.0, far, d * 0.0))
    # Lanczos-3: sinc(d) * sinc(d / 3), 1 at 0
    safe = where(d == 0.0, d + 1.0, d)
    pd = safe * math.pi
    value = (pd.sin() / pd) * ((pd / 3.0).sin() / (pd / 3.0))
    return where(d == 0.0, d + 1.0, where(d < 3.0, value, d * 0.0))


def weights(n, o, scale, align_corners, mode, dtype):
    """(o, n): row i holds the normalised weights of output position i along an axis of n
    (torch's ``_compute_index_ranges_weights`` with antialias; ``scale`` as the plain modes')."""
    if align_corners:
        ratio = (n - 1) / (o - 1) if o > 1 else 0.0
    else:
        ratio = 1.0 / scale if scale is not None else n / o
    stretch = ratio if ratio >= 1.0 else 1.0
    support = _SUPPORT[mode] * stretch
    center = ((arange(o, dtype=dtypes.float64) + 0.5) * ratio).unsqueeze(1)          # (o, 1)
    first = (center - support + 0.5).floor().clamp(min=0.0)
    end = (center + support + 0.5).floor().clamp(max=float(n))
    j = arange(n, dtype=dtypes.float64).unsqueeze(0)                                  # (1, n)
    w = _filter(mode, ((j - center + 0.5) / stretch).abs()) * ((j >= first) & (j < end)).to(dtypes.float64)
    total = w.sum(dim=1, keepdim=True)
    w = where(total != 0.0, w / where(total != 0.0, total, total + 1.0), w)
    return w.to(dtype)


def resize(x, out, scales, align_corners, mode):
    """(N, C, H, W) -> (N, C, *out), each axis through its weight matrix; an axis that keeps its
    size is left as it is, whatever the scale (torch's kernels skip it)."""
    with amp.exact():           # in x's dtype under autocast too: torch's resizing is no product
        return _resize_axes(x, out, scales, align_corners, mode)


def _resize_axes(x, out, scales, align_corners, mode):
    """``resize``'s products, one weight matrix per axis that changes size."""
    (h, w), (oh, ow) = x.shape[2:], out
    y = x if oh == h else weights(h, oh, scales[0], align_corners, mode, x.dtype) @ x             # (oH, H) @
    if ow != w:
        y = y @ weights(w, ow, scales[1], align_corners, mode, x.dtype).transpose(0, 1)           # @ (W, oW)
    return x.clone() if y is x else y
