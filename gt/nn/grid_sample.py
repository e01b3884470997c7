"""Sampling a batch of images at arbitrary points: ``F.grid_sample`` and ``F.affine_grid``, as torch's.

``grid_sample`` is composed from gt's differentiable tensor ops: for every output point the
2, 4 or 8 (bilinear, trilinear), 1 (nearest) or 16 (bicubic) neighbouring pixels are read with
one integer gather over the whole output, and weighted by the fractional parts of the source
coordinates. The gather's backward scatter-adds into the input's gradient; the grid's gradient
flows through the weights (``c - floor(c)``, where ``floor`` has a zero slope) and through the
padding's clipping and reflection (``where``: zero slope on and beyond the borders, as torch's
kernels, which count a border as out of range). Both engines and sharded batches come for free.

Non-finite grids follow torch's CPU kernels, which differ between 4-D and 5-D inputs: the 4-D
(vectorised) kernel clamps a NaN coordinate to 0 under border/reflection padding and lets a
NaN weight make the output NaN under zero padding; the 5-D kernel clamps NaN to the far border
(``min(size - 1, max(x, 0))``) and skips any out-of-range neighbour, NaN weight included.
"""

import itertools

from gt import amp, dtypes
from gt.nn.inputs import as_tensor as _tensor
from gt.autograd import no_grad
from gt.tensor import arange, linspace, ones, stack, where

__all__ = ["grid_sample", "affine_grid"]

_MODES = ("bilinear", "nearest", "bicubic")
_PADDINGS = ("zeros", "border", "reflection")
_CUBIC_A = -0.75          # torch's (and OpenCV's) bicubic convolution constant


# ---- coordinates ------------------------------------------------------------------------------
def _unnormalize(coord, size, align_corners, kernel_5d):
    """[-1, 1] to pixel units: -1 and 1 are the centres of the corner pixels (``align_corners``)
    or their outer edges. torch's 4-D (vectorised) kernel computes ``(c + 1) * size / 2 - 0.5``
    as one fused multiply-add, rounded once, and its 5-D kernel in two roundings; so does this
    (the value; the slope is the same), because a coordinate one rounding off an integer (the
    pixel centres of an identity ``affine_grid``) lands in the neighbouring cell, where the
    grid's gradient is another one."""
    if align_corners or kernel_5d:
        return (coord + 1.0) * ((size - 1) / 2) if align_corners else (coord + 1.0) * (size / 2) - 0.5
    shifted = coord + 1.0
    plain = shifted * (size / 2) - 0.5
    with no_grad():
        exact = _multiply_add(shifted.detach(), size / 2, -0.5)
        step = exact - plain.detach()            # 0, or the one rounding between them (exact)
        step = where(step.isfinite(), step, 0.0)  # inf and NaN coordinates stay as computed
    return plain + step


def _multiply_add(a, b, c):
    """``a * b + c`` rounded once (``b``, ``c`` numbers): float32 through float64, where the
    product is exact; float64 by Dekker's exact product and sum; non-finite values as computed."""
    if a.dtype != dtypes.float64:
        return (a.double() * b + c).to(a.dtype)
    p = a * b
    hi = a * 134217729.0                          # Veltkamp's split of a (b splits exactly: a small number)
    ah = hi - (hi - a)
    err = (ah * b - p) + (a - ah) * b
    total = p + c
    back = total - p
    low = (p - (total - back)) + (c - back)
    fused = total + (low + err)
    return where(fused.isfinite(), fused, total)


def _clip(coord, size, kernel_5d):
    """``coord`` clamped to [0, size - 1]; the slope is 0 on the borders themselves (torch's).
    NaN goes to 0 (4-D kernel) or to ``size - 1`` (``kernel_5d``: the 5-D kernel)."""
    hi = float(size - 1)
    if kernel_5d:
        coord = where(coord < hi, coord, hi)
        return where(coord > 0, coord, 0.0)
    coord = where(coord > 0, coord, 0.0)
    return where(coord < hi, coord, hi)


def _reflect(coord, size, align_corners):
    """``coord`` reflected off the image's borders (the corner pixels' centres, or their outer
    edges) until it lands inside."""
    low, twice_span = (0.0, 2.0 * (size - 1)) if align_corners else (-0.5, 2.0 * size)
    if twice_span == 0:
        return where(coord.isfinite(), coord, 0.0) * 0.0      # a one-pixel axis: always 0
    dist = (coord - low).abs()
    extra = dist - (dist / twice_span).trunc() * twice_span
    return where(extra > twice_span - extra, twice_span - extra, extra) + low


def _reflect_5d(coord, size, align_corners):
    """``_reflect`` as the 5-D kernel computes it: an exact ``fmod`` and the parity of the number
    of flips, which that kernel holds in a C int (past 2**31 it wraps to an even number)."""
    low, span = (0.0, float(size - 1)) if align_corners else (-0.5, float(size))
    if span == 0:
        return where(coord.isfinite(), coord, 0.0) * 0.0
    dist = where(coord < low, low - coord, coord - low)
    extra = dist.fmod(span)
    flips = (dist / span).floor().detach()
    odd = ((flips - 2.0 * (flips / 2.0).floor()) == 1.0) & (flips < 2.0 ** 31)
    return where(odd, span - extra, extra) + low


def _pad(coord, size, padding_mode, align_corners, kernel_5d):
    if padding_mode == "border":
        return _clip(coord, size, kernel_5d)
    if padding_mode == "reflection":
        reflect = _reflect_5d if kernel_5d else _reflect
        return _clip(reflect(coord, size, align_corners), size, kernel_5d)
    return coord


def _cubic_weights(t):
    """The four cubic-convolution weights of the neighbours at -1, 0, 1, 2 for fraction ``t``."""
    a = _CUBIC_A

    def near(x):           # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):            # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _taps(coord, size, mode, padding_mode, align_corners, kernel_5d, keep_grid):
    """One axis's neighbours: a list of (position, weight); positions are float tensors (constants,
    possibly NaN or out of range), weights tensors on the grid's tape (None: no weighting)."""
    c = _unnormalize(coord, size, align_corners, kernel_5d)
    if mode == "bicubic":
        # torch pads each neighbour's integer position, not the source coordinate
        c0 = c.floor()
        t = c - c0
        base = c0.detach()
        positions = [_pad(base + (j - 1.0), size, padding_mode, align_corners, kernel_5d) for j in range(4)]
        return list(zip(positions, _cubic_weights(t)))
    c = _pad(c, size, padding_mode, align_corners, kernel_5d)
    if mode == "nearest":
        # no slope to the grid, but torch still gives the grid a (zero) gradient
        weight = where(c.isfinite(), c * 0.0, 0.0) + 1.0 if keep_grid else None
        return [(c.round().detach(), weight)]
    c0 = c.floor()
    frac = c - c0
    c0 = c0.detach()
    return [(c0, 1.0 - frac), (c0 + 1.0, frac)]


# ---- grid_sample --------------------------------------------------------------------------------
def _check(input, grid, mode, padding_mode):
    if mode not in _MODES:
        raise ValueError("nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in _PADDINGS:
        raise ValueError("nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    sizes = f"input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}"
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        raise RuntimeError(f"grid_sample: expected 4-D or 5-D input and grid with the same number of dims, "
                           f"but got {sizes}")
    if grid.shape[0] != input.shape[0]:
        raise RuntimeError(f"grid_sample: expected grid and input to have the same batch size, but got {sizes}")
    if grid.shape[-1] != input.ndim - 2:
        raise RuntimeError(f"grid_sample: expected grid to have size {input.ndim - 2} in its last dimension, "
                           f"but got grid with sizes {list(grid.shape)}")
    for axis in range(2, input.ndim):
        if input.shape[axis] == 0:
            raise RuntimeError(f"grid_sample: expected input to have non-empty spatial dimensions, but input has "
                               f"sizes {list(input.shape)} with dimension {axis} being empty")
    if mode == "bicubic" and input.ndim == 5:
        raise RuntimeError("grid_sample: bicubic interpolation only supports 4-D input")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"grid_sample: input must be floating point, got {input.dtype}")
    if grid.dtype != input.dtype:
        raise RuntimeError(f"grid_sample: expected input and grid to have the same dtype, but input has "
                           f"{input.dtype} and grid has {grid.dtype}")


@amp.runs_in_float32      # torch.autocast's fp32 list
def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample ``input`` at the points of ``grid`` (torch's ``F.grid_sample``).

    ``input`` (N, C, H, W) with ``grid`` (N, Ho, Wo, 2) gives (N, C, Ho, Wo); ``input``
    (N, C, D, H, W) with ``grid`` (N, Do, Ho, Wo, 3) gives (N, C, Do, Ho, Wo). ``grid[..., 0]``
    is x (along W), ``grid[..., 1]`` y (along H), ``grid[..., 2]`` z (along D), normalised to
    [-1, 1]. ``mode``: 'bilinear' (trilinear in 5-D), 'nearest' (halves round to even) or
    'bicubic' (4-D only); ``padding_mode``: 'zeros', 'border' or 'reflection' for points
    outside the image; ``align_corners`` (default False, without torch's warning): whether
    -1 and 1 are the centres of the corner pixels rather than their outer edges.
    Differentiable in ``input`` and ``grid`` (the grid's gradient is zero for 'nearest').
    """
    input = _tensor(input, "grid_sample")
    grid = _tensor(grid, "grid_sample", "grid")
    _check(input, grid, mode, padding_mode)
    align_corners = bool(align_corners)
    nd = input.ndim - 2
    n, c = input.shape[:2]
    spatial = input.shape[2:]
    out_spatial = grid.shape[1:-1]
    five_d = nd == 3

    # axis k of the grid's last dim samples input axis -1 - k (x: W, y: H, z: D)
    axes = []
    keep_grid = grid.requires_grad
    for k in range(nd):
        size = spatial[nd - 1 - k]
        axes.append(_taps(grid[..., k], size, mode, padding_mode, align_corners, five_d, keep_grid))

    points = 1
    for s in spatial:
        points *= s
    strides = [1] * nd                      # element strides of x, y, z in a flattened image
    for k in range(1, nd):
        strides[k] = strides[k - 1] * spatial[nd - k]
    batch = (arange(0, n, 1, dtype=dtypes.int64) * points).reshape(n, *([1] * nd))

    indices, weights, valids = _neighbours(axes, spatial, strides, batch)
    table = input.permute(0, *range(2, input.ndim), 1).reshape(n * points, c)    # one row per pixel
    values = table[stack(indices)]                           # (K, N, *out, C)
    valid = stack(valids).unsqueeze(-1)
    if weights[0] is None:
        out = where(valid, values, 0.0).sum(0)
    else:
        weight = stack(weights).unsqueeze(-1)
        if five_d:
            out = where(valid, weight * values, 0.0).sum(0)   # the 5-D kernel skips such neighbours
        else:
            out = (weight * where(valid, values, 0.0)).sum(0)
    return out.permute(0, nd + 1, *range(1, nd + 1)).reshape(n, c, *out_spatial)


def _neighbours(axes, spatial, strides, batch):
    """For each combination of one tap per axis: the flat pixel index (0 where outside), its
    weight (None for nearest) and whether it lies inside the image."""
    nd = len(spatial)
    indices, weights, valids = [], [], []
    for combo in itertools.product(*axes):
        valid, flat, weight = None, batch, None
        for k, (pos, w) in enumerate(combo):
            size = spatial[nd - 1 - k]
            inside = (pos >= 0) & (pos <= size - 1)          # False for NaN
            valid = inside if valid is None else valid & inside
            flat = flat + where(inside, pos, 0.0).long() * strides[k]
            if w is not None:
                weight = w if weight is None else weight * w
        indices.append(where(valid, flat, 0))
        valids.append(valid)
        weights.append(weight)
    return indices, weights, valids


# ---- affine_grid ------------------------------------------------------------------------------
def _base_axis(steps, align_corners, dtype):
    """The sampling positions of one output axis in [-1, 1] (torch's linspace_from_neg_one)."""
    if steps <= 1:
        return linspace(0.0, 0.0, 1, dtype=dtype)
    line = linspace(-1.0, 1.0, steps, dtype=dtype)
    return line if align_corners else line * (steps - 1) / steps


def affine_grid(theta, size, align_corners=None):
    """The sampling grid of a batch of affine maps, for ``grid_sample`` (torch's ``F.affine_grid``).

    ``theta`` (N, 2, 3) with ``size`` (N, C, H, W) gives a grid (N, H, W, 2); ``theta`` (N, 3, 4)
    with ``size`` (N, C, D, H, W) gives (N, D, H, W, 3): each output pixel's normalised position
    (x, y[, z], 1) multiplied by ``theta``. ``align_corners`` as in ``grid_sample`` (default
    False, without torch's warning). Differentiable in ``theta``.
    """
    theta = _tensor(theta, "affine_grid", "theta")
    if not theta.dtype.is_floating_point:
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    size = tuple(int(s) for s in size)
    align_corners = bool(align_corners)
    if len(size) == 4:
        if theta.ndim != 3 or theta.shape[-2] != 2 or theta.shape[-1] != 3:
            raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {size}. "
                             f"Got {theta.shape}.")
    elif len(size) == 5:
        if theta.ndim != 3 or theta.shape[-2] != 3 or theta.shape[-1] != 4:
            raise ValueError(f"Expected a batch of 3D affine matrices of shape Nx3x4 for size {size}. "
                             f"Got {theta.shape}.")
    else:
        raise NotImplementedError("affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    spatial = size[2:]
    if not (align_corners and min(spatial) == 1) and min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    if theta.shape[0] != size[0]:
        raise RuntimeError(f"affine_grid: theta holds {theta.shape[0]} matrices but size asks for a batch of "
                           f"{size[0]}")
    nd = len(spatial)
    full = tuple(spatial)
    columns = []
    for k in range(nd):                     # x along the last axis, then y, then z
        axis = nd - 1 - k
        line = _base_axis(spatial[axis], align_corners, theta.dtype)
        shape = [1] * nd
        shape[axis] = spatial[axis]
        columns.append(line.reshape(*shape).expand(*full))
    columns.append(ones(*full, dtype=theta.dtype))
    points = 1
    for s in spatial:
        points *= s
    base = stack(columns, -1).reshape(points, nd + 1)
    return (base @ theta.transpose(1, 2)).reshape(size[0], *spatial, nd)
