"""The ``gt.`` function forms of the methods in stats_methods.py and fused_methods.py
(``gt.median(x, dim)`` is ``x.median(dim)``, ``gt.addmm(input, mat1, mat2, beta=..., alpha=...)``
is ``input.addmm(mat1, mat2, ...)``), with torch's argument order; and ``histogramdd``, which
torch has as a function only."""

import collections
import math

from gt.tensor.core import Tensor
from gt.tensor.functions import _method
from gt.tensor.stats_methods import _bins_of, _counts, _histogram_edges
from gt.tensor.arithmetic import where

_STATS = ("median", "nanmedian", "mode", "kthvalue", "quantile", "nanquantile", "msort", "histc", "histogram",
          "logcumsumexp", "dist", "renorm", "aminmax")
_FUSED = ("addcmul", "addcdiv", "addmm", "addmv", "addr", "baddbmm", "addbmm", "heaviside")

for _name in _STATS + _FUSED:
    globals()[_name] = _method(_name)


HistogramddResult = collections.namedtuple("histogramdd", ["hist", "bin_edges"])


def histogramdd(input, bins, *, range=None, weight=None, density=False):
    """The histogram of the points ``input`` (..., D), each dim binned on its own: ``bins`` is an
    int (that many equal bins in every dim), D ints, or D 1-D tensors of ascending edges; ``range``
    (only with counts of bins) is ``[min_0, max_0, ..., min_{D-1}, max_{D-1}]`` (default: the
    data's range in each dim); ``weight`` (...) weighs each point; ``density`` normalises to a
    density (integral 1). Returns ``(hist (bins_0, ..., bins_{D-1}), bin_edges)``, ``bin_edges``
    a tuple of D tensors. The last bin of a dim includes its right edge, as torch; a point outside
    any dim's edges is not counted. No gradient, as torch.

        >>> h = gt.histogramdd(gt.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]]), bins=2)
        >>> h.hist.tolist()
        [[1.0, 0.0], [1.0, 1.0]]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"histogramdd: expected a tensor of points, got {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"histogramdd: expected a float tensor, got {input.dtype!r}")
    if input.ndim < 2:
        raise ValueError(f"histogramdd: expected points of at least 2 dims (..., D), got shape {input.shape}")
    d = input.shape[-1]
    per_dim = _bins_per_dim(bins, d)
    ranges = _ranges_per_dim(range, d, per_dim)
    if weight is not None:
        if not isinstance(weight, Tensor) or weight.shape != input.shape[:-1]:
            raise ValueError(f"histogramdd: weight must have the points' shape {input.shape[:-1]} (the input's "
                             f"without its last dim), got {getattr(weight, 'shape', weight)!r}")
        weight = weight.detach().reshape(-1).to(input.dtype)
    if d == 0:      # points of no coordinates: torch's 0-d zero (NaN as a density: 0 / 0) and no edges
        return HistogramddResult(input.new_full((), math.nan if density else 0.0), ())
    x = input.detach().reshape(-1, d)
    edges, flat, inside, sizes = [], None, None, []
    for i, (b, r) in enumerate(zip(per_dim, ranges)):
        col = x[:, i]
        e = _histogram_edges(col, b, r, input.dtype)
        n = e.shape[0] - 1
        pos, ok = _bins_of(col, e)
        flat = pos if flat is None else flat * n + pos
        inside = ok if inside is None else inside & ok
        edges.append(e)
        sizes.append(n)
    total = math.prod(sizes)
    hist = _counts(where(inside, flat, total), weight, total).to(input.dtype).reshape(tuple(sizes))
    if density:
        volume = hist.new_ones(())
        for i, e in enumerate(edges):
            volume = volume * (e[1:] - e[:-1]).reshape((-1,) + (1,) * (d - 1 - i))
        hist = hist / (hist.sum() * volume)
    return HistogramddResult(hist, tuple(edges))


def _bins_per_dim(bins, d):
    """``bins`` of ``histogramdd`` as one entry (an int or a 1-D tensor of edges) per dim."""
    if isinstance(bins, int) and not isinstance(bins, bool):
        return [bins] * d
    if isinstance(bins, Tensor) or not isinstance(bins, (list, tuple)):
        raise TypeError(f"histogramdd: bins must be an int, a sequence of {d} ints or a sequence of {d} 1-D "
                        f"tensors of edges, got {type(bins).__name__}")
    if len(bins) != d:
        raise ValueError(f"histogramdd: bins must give one entry for each of the points' {d} dims, got {len(bins)}")
    kinds = {isinstance(b, Tensor) for b in bins}
    if len(kinds) > 1:
        raise TypeError("histogramdd: bins must be all ints or all tensors of edges, not a mix")
    return list(bins)


def _ranges_per_dim(range, d, per_dim):
    """``range`` of ``histogramdd`` as one ``(min, max)`` or None per dim."""
    if range is None:
        return [None] * d
    if any(isinstance(b, Tensor) for b in per_dim):
        raise ValueError("histogramdd: give range only with counts of bins, not with bin edges")
    values = list(range)
    if len(values) != 2 * d:
        raise ValueError(f"histogramdd: range must hold a min and a max for each of the points' {d} dims "
                         f"({2 * d} numbers), got {len(values)}")
    return list(zip(values[0::2], values[1::2]))
