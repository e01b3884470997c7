"""Max pooling that also says where each maximum came from (``return_indices=True``, the
adaptive max pools): the positions from gt/ops/pool_indices.py, the values read back there with
``gather``, so that the gradient follows the indices (torch's routing, ties included)."""

import math

from gt import dtypes
from gt.ops import pool_indices as pool_ops
from gt.tensor import arange, where


def max_with_indices(x, nd, windows):
    """``(values, indices)``, both (..., *out), of the windows that ``windows`` describes (see
    ``WindowArgmax``) over the last ``nd`` axes of x (..., *size); indices int64 flat positions
    within each (*size) plane."""
    indices = pool_ops.WindowArgmax.apply(x, windows=windows)
    lead = x.shape[:x.ndim - nd]
    plane = x.reshape(*lead, math.prod(x.shape[x.ndim - nd:]))                   # (..., prod(size))
    flat = indices.reshape(*lead, math.prod(indices.shape[x.ndim - nd:]))       # (..., prod(out))
    values = plane.gather(-1, flat).reshape(*indices.shape)
    empty = _padding_only(tuple(x.shape[x.ndim - nd:]), windows)
    if empty is not None:          # what max_pool gives there (its index points into the input)
        lowest = -math.inf if x.dtype.is_floating_point else -2 ** 63 if x.dtype == dtypes.int64 else -2 ** 31
        values = where(empty, lowest, values)
    return values, indices


def _padding_only(size, windows):
    """A bool tensor broadcasting to (*out): the max pooling windows that read only padding (a
    dilated window straddling a short axis), or None where there are none (checked first on the
    few windows that start in the padding before)."""
    kind, *geometry = windows
    if kind != "regular":
        return None
    kernel, stride, pads, dilation, out = geometry
    empty = None
    for i, (n, k, s, lo, d, o) in enumerate(zip(size, kernel, stride, pads, dilation, out)):
        firsts = [(start, start + (-start + d - 1) // d * d) for start in range(-lo, 0, s)]
        if not any(first >= n or first > start + (k - 1) * d for start, first in firsts):
            continue
        at = arange(o).unsqueeze(1) * s - lo + arange(k).unsqueeze(0) * d                    # (o, k)
        axis = ((at >= 0) & (at < n)).any(dim=1).logical_not().reshape(o, *(1,) * (len(size) - 1 - i))
        empty = axis if empty is None else empty | axis
    return empty
