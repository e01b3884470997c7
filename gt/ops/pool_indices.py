"""Where the maximum of each pooling window lies: int64 flat positions within each input plane
(torch's ``return_indices`` layout, what ``max_unpool`` reads back). The pooled values and their
gradient come from the tensor layer's ``gather`` at these positions (gt/nn/pool_indices.py), so
the gradient goes exactly where the indices point, as torch's.

A window along one axis is a row of a (out, K) table of input positions with a mask of those
that are inside the input (not padding, not past an adaptive window's end); the tables of the
axes combine into one (Q, K) table of flat positions, Q the output plane's size and K the
window's. Ties go to the first largest value in row-major window order and a window holding NaN
to its last NaN: torch's CPU kernels (``val > maxval || isnan(val)``)."""

import math

from gt import dtypes
from gt.autograd import Function
from gt.backend import B


def _regular_axis(n, o, k, s, d, lo):
    """(positions, inside) of a strided, dilated, padded window axis: each (o, k)."""
    at = (B.reshape(B.arange(0, o, 1, dtypes.int64) * s - lo, (o, 1))
          + B.reshape(B.arange(0, k, 1, dtypes.int64) * d, (1, k)))
    return at, (at >= 0) & (at < n)


def _adaptive_axis(n, o):
    """(positions, inside) of adaptive windows: window i spans [floor(i n / o), ceil((i + 1) n / o))."""
    i = B.arange(0, o, 1, dtypes.int64)
    start, end = (i * n) // o, ((i + 1) * n + o - 1) // o
    k = max(-(-((j + 1) * n) // o) - (j * n) // o for j in range(o))     # the widest window
    at = B.reshape(start, (o, 1)) + B.reshape(B.arange(0, k, 1, dtypes.int64), (1, k))
    return at, at < B.reshape(end, (o, 1))


def _plane_table(size, axes):
    """Flat positions (Q, K) (clipped into the plane) and their mask (Q, K) of the windows whose
    per-axis tables are ``axes``: position (o1, .., on; k1, .., kn) -> sum of at_i * plane stride_i."""
    nd = len(size)
    flat = inside = None
    for i, ((at, ok), n) in enumerate(zip(axes, size)):
        o, k = at.shape
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = o, k
        step = math.prod(size[i + 1:])
        part = B.reshape(B.clip(at, 0, n - 1) * step, tuple(shape))
        ok = B.reshape(ok, tuple(shape))
        flat = part if flat is None else flat + part
        inside = ok if inside is None else inside & ok
    out, kernel = flat.shape[:nd], flat.shape[nd:]
    q, k = math.prod(out), math.prod(kernel)
    return B.reshape(flat, (q, k)), B.reshape(inside, (q, k)), tuple(out)


class WindowArgmax(Function):
    """x (..., *size) -> int64 (..., *out): the flat position in its (*size) plane of each
    window's maximum. ``windows`` is ``("regular", kernel, stride, pads_before, dilation, out)``
    (max pooling, geometry already checked) or ``("adaptive", out)``. No gradient (an int result)."""

    def forward(self, x, windows=None):
        kind, *geometry = windows
        nd = len(geometry[-1])
        size = tuple(x.shape[x.ndim - nd:])
        if kind == "regular":
            kernel, stride, pads, dilation, out = geometry
            axes = [_regular_axis(n, o, k, s, d, lo)
                    for n, k, s, lo, d, o in zip(size, kernel, stride, pads, dilation, out)]
        else:
            axes = [_adaptive_axis(n, o) for n, o in zip(size, geometry[0])]
        table, inside, out = _plane_table(size, axes)
        lead = tuple(x.shape[:x.ndim - nd])
        flat = B.reshape(x, lead + (math.prod(size),))
        vals = B.getitem(flat, (Ellipsis, table))                                    # (..., Q, K) copy
        k = _first_max(vals, inside, B.dtype_of(x))
        table = B.broadcast_to(table, tuple(vals.shape))
        return B.reshape(B.take_along_axis(table, k, -1), lead + out)


def _first_max(vals, inside, dtype):
    """(..., Q, 1) int64: the window position of the first largest value inside the input of each
    row of ``vals`` (..., Q, K), or of its last NaN where it has one."""
    lowest = -math.inf if dtype.is_floating_point else dtypes.INT_RANGES.get(dtype.name, (0,))[0]
    masked = B.where(inside, vals, lowest)
    # the largest value (an argmax: a max reduction warns on NaN), then its first position inside
    best = B.take_along_axis(masked, B.argmax(masked, axis=-1, keepdims=True), -1)
    k = B.argmax(B.astype((vals == best) & inside, dtypes.int32), axis=-1, keepdims=True)
    if not dtype.is_floating_point:
        return k
    nan = B.astype(B.logical_not(vals == vals) & inside, dtypes.int32)
    last = (vals.shape[-1] - 1) - B.argmax(B.getitem(nan, (Ellipsis, slice(None, None, -1))), axis=-1, keepdims=True)
    return B.where(B.take_along_axis(nan, last, -1) == 1, last, k)
