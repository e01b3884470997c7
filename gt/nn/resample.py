"""Resizing images, with torch's names, arguments and index arithmetic: ``F.interpolate`` (and
the older ``F.upsample``, ``F.upsample_nearest``, ``F.upsample_bilinear``).

Each spatial axis is resized on its own (the modes are separable): 'nearest' modes gather one
source index per output position; 'linear' modes gather two neighbours and add them weighted,
'bicubic' four; 'area' is adaptive average pooling. The source positions are computed as torch's CPU kernels
compute them, in the input's float type ('nearest': float32), so the same inputs pick the same
pixels. Gradients come from the gathers and products."""

import math

from gt import dtypes
from gt.nn import antialias as aa, resample_uint8
from gt.nn.conv_functions import adaptive_avg_pool1d, adaptive_avg_pool2d
from gt.nn.inputs import as_tensor as _tensor
from gt.tensor import arange, tensor

MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area", "bicubic", "lanczos")
_LINEAR = {"linear": 3, "bilinear": 4, "trilinear": 5, "bicubic": 4, "lanczos": 4}
_CUBIC_A = -0.75                 # torch's (and OpenCV's) cubic convolution coefficient


def _per_axis(fn, name, value, nd):
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * nd
    if len(values) != nd:
        raise ValueError(f"{fn}: input with {nd} spatial dims needs {name} with {nd} values, got {value!r}")
    return values


def _output_size(x, size, scale_factor, recompute_scale_factor, mode):
    """The output's spatial size and the scales torch's kernels use (None: in / out)."""
    nd, spatial = x.ndim - 2, tuple(x.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size or scale_factor, got "
                         + ("both" if size is not None else "neither"))
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an explicit size")
        out = _per_axis("interpolate", "size", size, nd)
        if any(isinstance(o, bool) or not hasattr(o, "__index__") for o in out):
            raise TypeError(f"interpolate: size must be an int or a tuple of {nd} ints, got {size!r}")
        out, scales = tuple(o.__index__() for o in out), (None,) * nd
    else:
        scales = _per_axis("interpolate", "scale_factor", scale_factor, nd)
        if any(isinstance(s, bool) or not isinstance(s, (int, float)) or not s > 0 for s in scales):
            raise ValueError(f"interpolate: scale_factor must be a positive number or a tuple of {nd}, "
                             f"got {scale_factor!r}")
        out = tuple(math.floor(n * float(s)) for n, s in zip(spatial, scales))
        if recompute_scale_factor or mode == "area":     # torch: the kernels see only the sizes
            scales = (None,) * nd
    if any(n < 1 for n in spatial) or any(o < (0 if mode == "area" else 1) for o in out):   # area: torch's pools
        raise ValueError(f"interpolate: input and output sizes should be greater than 0, got input of spatial "
                         f"size {spatial} and output size {out}")
    if x.shape[1] == 0 and mode != "area":     # torch's upsample kernels allow an empty batch only
        raise ValueError(f"interpolate: non-empty {x.ndim}D data tensor expected but got a tensor with sizes "
                         f"{list(x.shape)}")
    return out, scales


def _rank_check(x, mode):
    if mode not in MODES:
        raise ValueError(f"interpolate: mode must be one of {', '.join(repr(m) for m in MODES)}, got {mode!r}")
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"interpolate: expected a 3-D, 4-D or 5-D input (N, C, *spatial), got input of "
                         f"shape {x.shape}")
    needs = _LINEAR.get(mode)
    if needs is not None and x.ndim != needs:
        raise NotImplementedError(f"interpolate: got {x.ndim}-D input, but mode {mode!r} needs {needs}-D input "
                                  f"(N, C, {', '.join('DHW'[3 - (needs - 2):])})")


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize input (N, C, *spatial), 1 to 3 spatial axes, to ``size`` or to
    ``floor(spatial * scale_factor)``, as torch's ``F.interpolate``.

    ``mode``: 'nearest' (source index ``floor(i * scale)``, torch's legacy rule), 'nearest-exact'
    (``floor((i + 0.5) * scale)``, as Pillow), 'linear' (3-D input), 'bilinear' (4-D),
    'trilinear' (5-D), 'bicubic' (4-D; torch's cubic convolution, A = -0.75, border pixels
    repeated, so values may overshoot the input's range as torch's), 'area' (adaptive average
    pooling). ``scale`` is ``1 / scale_factor`` when a scale factor is given (unless
    ``recompute_scale_factor=True``), else ``in / out``. ``align_corners`` (linear and bicubic
    modes only, default False): True maps the corner pixels' centres onto each other, False
    their outer edges. ``antialias=True`` ('bilinear', 'bicubic' and 'lanczos', 4-D input; 'lanczos'
    needs it): every input pixel under the filter stretched by the scale counts, as torch's
    (and Pillow's) anti-aliased resizing (gt/nn/antialias.py).

    uint8 images in every mode torch takes them in (gt/nn/resample_uint8.py). Where gt differs from
    torch: other integer inputs raise TypeError (torch: NotImplementedError); where torch 2.13's backward takes a
    shortcut its forward does not (3-D/5-D 'nearest' with a scale factor that keeps or doubles a
    size, 'bicubic' with one that keeps every size, ``antialias=True`` with one that keeps a
    size), gt's gradient is that of its output; with ``antialias=True`` and an output one pixel
    wide torch 2.13's kernel gives every output row the first row's values, gt the resized rows.
    'nearest' modes: where a source position lands on a whole number, torch's 4-D kernels (and its
    float32 last axis) sometimes round it the other way than gt, so a rare output pixel differs.

        >>> F.interpolate(gt.randn(1, 3, 8, 8), scale_factor=2, mode="bilinear").shape
        (1, 3, 16, 16)
    """
    x = _tensor(input, "interpolate")
    if antialias and not (mode in aa.MODES and x.ndim == 4):
        raise ValueError("interpolate: antialias=True is restricted to the bilinear, bicubic and lanczos modes and "
                         f"needs a 4-D input, got mode {mode!r} and input of shape {x.shape}")
    _rank_check(x, mode)
    if mode == "lanczos" and (align_corners or not antialias):
        raise ValueError("interpolate: mode 'lanczos' needs antialias=True and does not take align_corners=True")
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ValueError(f"interpolate: align_corners can only be set with the interpolating modes "
                             f"(linear, bilinear, bicubic, trilinear), not with mode {mode!r}")
    else:
        align_corners = bool(align_corners)
    filtered_bytes = _check_dtype(x, mode)
    out, scales = _output_size(x, size, scale_factor, recompute_scale_factor, mode)
    if mode == "area":
        return _area(x, out)
    if filtered_bytes:
        return resample_uint8.resize(x, out, scales, align_corners, mode, antialias)
    if antialias:
        return aa.resize(x, out, scales, align_corners, mode)
    original = x
    for axis, (o, s) in enumerate(zip(out, scales), start=2):
        if mode in _LINEAR and mode != "bicubic" and o == x.shape[axis]:
            continue     # torch's linear kernels leave an axis that keeps its size, whatever the scale
        if mode.startswith("nearest"):
            x = x.index_select(axis, _nearest_index(x.shape[axis], o, s, mode, x))
        elif mode == "bicubic":
            x = _cubic(x, axis, o, s, align_corners)
        else:
            x = _linear(x, axis, o, s, align_corners)
    return x.clone() if x is original else x          # a new tensor, as torch


def _check_dtype(x, mode):
    """Whether ``x`` is a uint8 image in a filtering mode (torch's fixed-point uint8 kernels);
    floats pass, uint8 in the nearest modes too, other dtypes raise."""
    if x.dtype.is_floating_point or (x.dtype == dtypes.uint8 and mode.startswith("nearest")):
        return False
    if x.dtype == dtypes.uint8 and mode in resample_uint8.MODES:
        return True
    raise TypeError(f"interpolate: expected a floating point input, got {x.dtype!r} (uint8 images only in the "
                    f"nearest, bilinear, bicubic and lanczos modes, as torch)")


def _nearest_index(n, o, scale, mode, x):
    """(o,) int64: the source index of each output position (torch's ``nearest_idx``, in float32)
    along an axis of ``x``. 4-D 'nearest': copy where o == n and take i // 2 where o == 2 n whatever
    the scale factor, as torch 2.13's CPU forward does for 4-D 'nearest' only (its backward does it
    for every rank, so for such scale factors torch's gradient is not the gradient of its 3-D/5-D
    output; gt's is). 3-D/5-D: torch's ``compute_indices_weights`` in the input's float type
    (float64 for a float64 input; 'nearest-exact' rounds ``(i + 0.5) * scale - 0.5`` to it), the
    position rounded to float32 before the floor (``floorf``); torch's backward takes float32
    positions there, so its gradient of a float64 input is not that of its output (gt's is)."""
    exact = mode == "nearest-exact"
    if mode == "nearest" and x.ndim == 4 and o in (n, 2 * n):
        return arange(o) // (o // n)
    wide = x.dtype == dtypes.float64
    if x.ndim != 4 and (wide or exact):
        ratio = 1.0 / scale if scale is not None else n / o
        ratio = ratio if wide else float(tensor(ratio, dtype=dtypes.float32).item())
        i = arange(o, dtype=dtypes.float64)
        if exact:
            i = (i + 0.5) * ratio - 0.5
            i = (i if wide else i.to(dtypes.float32).to(dtypes.float64)).clamp(min=0.0) + 0.5
        pos = i if exact else i * ratio
        return pos.to(dtypes.float32).floor().to(dtypes.int64).clamp(max=n - 1)
    ratio = tensor(1.0 / scale if scale is not None else n / o, dtype=dtypes.float32)
    if exact:       # torch: (i + 0.5) in double times the float32 scale, then rounded to float32
        pos = ((arange(o, dtype=dtypes.float64) + 0.5) * ratio.to(dtypes.float64)).to(dtypes.float32)
    else:
        pos = arange(o, dtype=dtypes.float32) * ratio
    return pos.floor().to(dtypes.int64).clamp(max=n - 1)


def _source(n, o, scale, align_corners, dtype, cubic):
    """(o,) int64 ``i0`` and (o,) ``t`` in [0, 1]: each output position's source position
    ``i0 + t`` on an axis of ``n`` (torch's ``area_pixel_compute_source_index`` and
    ``guard_index_and_lambda``, in the input's dtype; clamped at 0 except for cubic)."""
    if align_corners:
        ratio = (n - 1) / (o - 1) if o > 1 else 0.0
    else:
        ratio = 1.0 / scale if scale is not None else n / o
    ratio = tensor(ratio, dtype=dtype)
    i = arange(o, dtype=dtype)
    pos = i * ratio if align_corners else (i + 0.5) * ratio - 0.5
    if not (align_corners or cubic):
        pos = pos.clamp(min=0.0)
    i0 = pos.floor().clamp(max=n - 1)
    return i0.to(dtypes.int64), (pos - i0).clamp(0.0, 1.0)


def _taps(x, axis, n, i0, weights):
    """sum_k x[..., clamp(i0 + k), ...] * weights[k] along ``axis`` (indices clamped to the axis:
    border pixels repeat), each weight (o,) broadcast along the axes after ``axis``."""
    shape = (i0.shape[0],) + (1,) * (x.ndim - 1 - axis)
    out = None
    for k, w in enumerate(weights):
        term = x.index_select(axis, (i0 + k).clamp(0, n - 1)) * w.reshape(*shape)
        out = term if out is None else out + term
    return out


def _linear(x, axis, o, scale, align_corners):
    """``x`` resized along ``axis`` to ``o``: the two neighbours of each source position, weighted."""
    n = x.shape[axis]
    i0, t = _source(n, o, scale, align_corners, x.dtype, cubic=False)
    return _taps(x, axis, n, i0, (1.0 - t, t))


def _cubic(x, axis, o, scale, align_corners):
    """``x`` resized along ``axis`` to ``o``: the four neighbours i0 - 1 .. i0 + 2 of each source
    position weighted by the cubic convolution kernel (torch's ``get_cubic_upsample_coefficients``)."""
    n, a = x.shape[axis], _CUBIC_A
    i0, t = _source(n, o, scale, align_corners, x.dtype, cubic=True)

    def near(d):                     # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):                      # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return _taps(x, axis, n, i0 - 1, (far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)))


def _area(x, out):
    """Adaptive average pooling to ``out``; 3 spatial axes as a 2-D pool over (H, W) then a 1-D
    pool over D (the mean over a box is the mean of the means over its slices)."""
    if x.ndim == 3:
        return adaptive_avg_pool1d(x, out)
    if x.ndim == 4:
        return adaptive_avg_pool2d(x, out)
    n, c, d, h, w = x.shape
    y = adaptive_avg_pool2d(x.reshape(n, c * d, h, w), out[1:])                   # (N, C * D, oH, oW)
    y = y.reshape(n, c, d, out[1] * out[2]).transpose(2, 3)                        # (N, C, oH * oW, D)
    y = adaptive_avg_pool1d(y.reshape(n, c * out[1] * out[2], d), out[0])         # (N, C * oH * oW, oD)
    return y.reshape(n, c, out[1] * out[2], out[0]).transpose(2, 3).reshape(n, c, *out)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """``interpolate`` under its older name (deprecated in torch, kept for old code)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """``interpolate(input, size, scale_factor, mode='nearest')``."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """``interpolate(input, size, scale_factor, mode='bilinear', align_corners=True)`` (4-D input)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
