"""torch's order statistics and histograms as tensor methods: ``median``, ``nanmedian``, ``mode``,
``kthvalue``, ``quantile``, ``nanquantile``, ``msort``, ``histc``, ``histogram``, and
``logcumsumexp``, ``dist``, ``renorm``, ``aminmax``. Built from gt's stable sort, ``gather`` and
``where``, so the gradients come from those ops: ``median``/``kthvalue``/``mode`` with a ``dim``
send the gradient to the element whose index they return, ``median()`` and ``nanmedian()`` of the
whole tensor share it evenly among the elements equal to the median (torch's rule), ``quantile``
splits it between the two elements it interpolates.

Ties: torch picks an index by its selection algorithm; gt takes the element at the chosen rank of
a stable sort (equal values in the order of their positions), which is torch's answer in every case
tests/test_stats_utils.py checks. ``mode`` returns the smallest of the most frequent values and the
last position holding it, as torch. NaN is the largest value; ``median``/``quantile`` of a slice
holding NaN are NaN (the index that of its first NaN), the ``nan`` forms skip NaN; ``mode`` of a
slice whose most frequent value is NaN may return another NaN's index than torch's; the gradient
of ``nanquantile`` for a tensor ``q`` gets nothing from slices of only NaN (torch's gets NaN).

``logcumsumexp`` is a scan of ``log2(n)`` stable ``logaddexp`` steps along the dim (``n log n`` work). ``histc`` and
``histogram`` place an element within rounding of a bin edge by gt's float arithmetic (torch's may differ by one bin).
Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import collections
import math

from gt import amp, autograd, dtypes
from gt.backend import B, torch_ranges
from gt.ops import shape as shape_ops
from gt.ops._shapes import normalize_axes, normalize_axis
from gt.tensor import axis_scans, checks, complex_checks, shape as _shape
from gt.tensor.arithmetic import _operand, where
from gt.tensor.index_methods import searchsorted
from gt.tensor.quick_select import kth_position
from gt.tensor.std_sort import replay_mode_ties

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

# torch.return_types.*: tuples that unpack as (values, indices) and name both
MedianResult = collections.namedtuple("median", ["values", "indices"])
NanmedianResult = collections.namedtuple("nanmedian", ["values", "indices"])
ModeResult = collections.namedtuple("mode", ["values", "indices"])
KthvalueResult = collections.namedtuple("kthvalue", ["values", "indices"])
AminmaxResult = collections.namedtuple("aminmax", ["min", "max"])
HistogramResult = collections.namedtuple("histogram", ["hist", "bin_edges"])

_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _last(x, dim, op):
    """``x`` with ``dim`` moved last (a 0-d tensor as shape ``(1,)``), and that dim's index."""
    if x.ndim == 0:
        normalize_axis(dim, 0, op)
        return x.reshape(1), 0
    axis = normalize_axis(dim, x.ndim, op)
    return x.movedim(axis, -1), axis


def _finish(values, indices, x, axis, keepdim, result):
    """The (values, indices) along the last dim (size 1) put back where ``axis`` was in ``x``."""
    name = result.__name__.title() + ("Backward1" if "median" in result.__name__ else "Backward0")   # torch's node
    if x.ndim == 0:
        return result(_shape._named(values.reshape(()), x, name), indices.reshape(()))
    values, indices = values.movedim(-1, axis), indices.movedim(-1, axis)
    if not keepdim:
        values, indices = values.squeeze(axis), indices.squeeze(axis)
    return result(_shape._named(values, x, name), indices)


def _runs(ordered):
    """For each entry of the sorted rows ``ordered`` (NaN last): how many entries of its row equal
    it, and the position after its last copy. Each NaN is a value of its own (NaN != NaN, as torch's
    mode counts); a binary search must not meet one, so NaN is searched as inf and taken off inf's count."""
    if not ordered.dtype.is_floating_point:
        ordered = ordered.to(dtypes.int64) if ordered.dtype == dtypes.bool_ else ordered    # (no bool search, as torch)
        first, after = searchsorted(ordered, ordered), searchsorted(ordered, ordered, right=True)
        return after - first, after
    nan = ordered.isnan()
    filled = where(nan, math.inf, ordered)
    first, after = searchsorted(filled, filled), searchsorted(filled, filled, right=True)
    after = after - (ordered == math.inf).to(dtypes.int64) * nan.to(dtypes.int64).sum(-1, keepdim=True)
    return where(nan, 1, after - first), after


def _first_nan(xm):
    """Per slice (last dim): whether it holds NaN, and the position of its first NaN."""
    nan = xm.isnan()
    return nan.any(-1, keepdim=True), nan.to(dtypes.int64).argmax(-1, keepdim=True)


def _even_share(x, value):
    """``value`` (0-d, detached) with its gradient shared evenly among the elements of ``x`` equal
    to it (torch's backward of ``median()`` of a whole tensor); the value itself is unchanged.
    A NaN median shares it among the NaN elements, as torch's ``evenly_distribute_backward``."""
    if not x.requires_grad and not autograd.forward_ad.dual_values(x, ()):     # nor a tangent to carry
        return value
    ties = (x.detach() == value) | (x.detach().isnan() & value.isnan())
    if bool(value.isinf()):          # x - x.detach() is NaN there: the sum of equal infinities instead
        return where(ties, x, 0.0).sum() / ties.sum().to(x.dtype)
    with B.quiet_float_errors():
        share = where(ties, x - x.detach(), 0.0)        # 0 off the ties, NaN elements included
    return value + share.sum() / ties.sum().clamp_min(1).to(x.dtype)


def _rank_pick(xm, rank):
    """The position (last dim, shape ``(..., 1)``) of the element of rank ``rank`` (int64 tensor
    ``(..., 1)`` or an int) in a stable ascending sort of each slice."""
    order = xm.detach().argsort(-1, stable=True)
    if isinstance(rank, int):
        return order[..., rank:rank + 1]
    return order.gather(-1, rank)


def _quickselect_ties(xm, pos, k):
    """``pos`` (the stable rank-``k`` positions) with each slice whose k-th value is tied moved
    to the copy torch's quickselect reports (gt/tensor/quick_select.py)."""
    x = xm.detach()
    picked = x.gather(-1, pos)
    same = (x == picked) | (x.isnan() & picked.isnan()) if x.dtype.is_floating_point else x == picked
    tied = (same.to(dtypes.int64).sum(-1) > 1).reshape(-1)
    if not bool(tied.any()):
        return pos
    flat = pos.reshape(-1).tolist()
    rows = x.reshape(-1, x.shape[-1])[tied].tolist()
    for r, values in zip(tied.nonzero().reshape(-1).tolist(), rows):
        flat[r] = kth_position(values, k)
    return pos.new_tensor(flat).reshape(pos.shape)


def _no_bools(x, op):
    if x.dtype == dtypes.bool_:
        raise NotImplementedError(f"{op}: not implemented for 'Bool' (torch's error); cast the tensor first")


def _quantile_q(q, x, op):
    """``q`` as a 1-D tensor of x's dtype (values in [0, 1]) and whether it was a scalar."""
    if isinstance(q, Tensor):
        if q.ndim > 1:
            raise ValueError(f"{op}: q must be a number, a 0-d or a 1-D tensor, got shape {q.shape}")
        if q.dtype != x.dtype:
            raise TypeError(f"{op}: q must have the input's dtype {x.dtype!r}, got {q.dtype!r}")
        scalar, q = q.ndim == 0, q.reshape(-1)            # torch differentiates in q too
    elif isinstance(q, (int, float)) and not isinstance(q, bool):
        scalar, q = True, Tensor._wrap(B.asarray([float(q)], dtype=x.dtype))
    else:
        raise TypeError(f"{op}: q must be a float or a tensor, got {q!r}")
    if q.numel() and not bool(((q >= 0) & (q <= 1)).all()):
        raise ValueError(f"{op}: q values must be in the range [0, 1], got {q.tolist()}")
    return q, scalar


class StatsMethods:
    __slots__ = ()

    # ---- median, kthvalue, mode ----------------------------------------------------------------
    def _median(self, dim, keepdim, skip_nan, result):
        op = result.__name__
        _no_bools(self, op)
        if dim is None:
            flat = self.reshape(-1)
            if flat.numel() == 0 and self.dtype.is_floating_point:
                return flat.sum() * math.nan        # NaN on the tape, as torch's (a zero-size gradient)
            if flat.numel() == 0:                   # an integer tensor: its lowest value, as torch's
                return Tensor._wrap(B.full((), -2 ** (31 if self.dtype == dtypes.int32 else 63), self.dtype))
            picked = flat._median(0, False, skip_nan, result).values
            picked = _even_share(flat, picked.detach()) if self.dtype.is_floating_point else picked
            return _shape._named(picked, self, op.title() + "Backward0")      # MedianBackward0
        xm, axis = _last(self, dim, op)
        if xm.shape[-1] == 0:
            raise IndexError(f"{op}: cannot take the median of an empty dim {dim} (shape {self.shape})")
        if skip_nan and self.dtype.is_floating_point:
            count = (~xm.detach().isnan()).to(dtypes.int64).sum(-1, keepdim=True)
            pos = _rank_pick(xm, ((count - 1) // 2).clamp_min(0))
        else:
            pos = _rank_pick(xm, (xm.shape[-1] - 1) // 2)
            if self.dtype.is_floating_point:
                has_nan, first = _first_nan(xm.detach())
                pos = where(has_nan, first, pos)
        return _finish(xm.gather(-1, pos), pos, self, axis, keepdim, result)

    def median(self, dim=None, keepdim=False):
        """The median: the lower of the two middle values for an even count (torch's rule).
        ``dim=None``: a 0-d tensor (NaN for an empty tensor); with ``dim``: ``(values, indices)``.

            >>> gt.tensor([3.0, 1.0, 2.0, 4.0]).median().item()
            2.0
        """
        return self._median(dim, keepdim, False, MedianResult)

    def nanmedian(self, dim=None, keepdim=False):
        """``median`` ignoring NaN (a slice of only NaN gives NaN)."""
        return self._median(dim, keepdim, True, NanmedianResult)

    def kthvalue(self, k, dim=-1, keepdim=False):
        """``(values, indices)`` of the ``k``-th smallest element (``k`` from 1) along ``dim``; of
        tied values, the one torch's CPU quickselect reports."""
        if self.ndim:                     # torch's 0-d shortcut takes a bool too
            _no_bools(self, "kthvalue")
        xm, axis = _last(self, dim, "kthvalue")
        n = xm.shape[-1]
        if isinstance(k, bool) or not hasattr(k, "__index__"):
            raise TypeError(f"kthvalue(): argument 'k' must be int, not {type(k).__name__}")
        if not 1 <= int(k) <= n:    # torch: IndexError for an empty dim, else RuntimeError (gt's: both)
            raise (IndexError if n == 0 else checks.IndexOutOfRangeError)(
                f"kthvalue(): selected number k out of range for dimension {axis}: k must be in [1, {n}], got {k!r}")
        pos = _quickselect_ties(xm, _rank_pick(xm, int(k) - 1), int(k) - 1)
        return _finish(xm.gather(-1, pos), pos, self, axis, keepdim, KthvalueResult)

    def mode(self, dim=-1, keepdim=False):
        """``(values, indices)``: the most frequent value along ``dim`` (the smallest of them on a
        tie) and the position torch's CPU kernel reports (the last one holding it in its sort)."""
        xm, axis = _last(self, dim, "mode")
        if xm.shape[-1] == 0:
            raise IndexError(f"mode: cannot take the mode of an empty dim {dim} (shape {self.shape})")
        order = xm.detach().argsort(-1, stable=True)
        ordered = xm.detach().gather(-1, order).contiguous()
        if xm.numel() == 0:        # no slice to look at (shape (0, n)): empty values and indices
            pos = Tensor._wrap(B.zeros(xm.shape[:-1] + (1,), dtypes.int64))
            return _finish(xm.gather(-1, pos), pos, self, axis, keepdim, ModeResult)
        counts, after = _runs(ordered)
        best = counts.argmax(-1, keepdim=True)                    # the first (smallest) most frequent value
        pos = order.gather(-1, after.gather(-1, best) - 1)        # its last position (stable sort)
        pos = replay_mode_ties(xm.detach(), pos, counts)           # or where torch's std::sort decides
        return _finish(xm.gather(-1, pos), pos, self, axis, keepdim, ModeResult)

    # ---- quantiles -----------------------------------------------------------------------------
    def _quantile(self, q, dim, keepdim, interpolation, skip_nan):
        op = "nanquantile" if skip_nan else "quantile"
        if self.dtype not in (dtypes.float32, dtypes.float64):     # torch refuses halves too
            raise TypeError(f"{op}: input tensor must be float32 or float64, got {self.dtype!r}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"{op}: interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
        q, scalar = _quantile_q(q, self, op)
        if self.numel() == 0:
            raise ValueError(f"{op}: input tensor must be non-empty, got shape {self.shape}")
        x = self.reshape(-1) if dim is None else self
        xm, axis = _last(x, 0 if dim is None else dim, op)
        order = xm.detach().argsort(-1, stable=True)
        ordered = xm.gather(-1, order)                                   # NaN last
        if skip_nan:
            count = (~xm.detach().isnan()).sum(-1, keepdim=True).to(self.dtype)
        else:
            count = Tensor._wrap(B.full((), float(xm.shape[-1]), self.dtype))
        # a slice of only NaN takes its first element (NaN), with no gradient for q from it
        pos = where(count > 0, q * (count - 1), 0.0)                         # (..., Q)
        if not skip_nan:     # a slice holding NaN: its last sorted element (a NaN), as torch
            pos = where(xm.detach().isnan().any(-1, keepdim=True), float(xm.shape[-1] - 1), pos)
        out = _interpolate(ordered, pos, interpolation)
        out = out.movedim(-1, 0)                                           # (Q, ...)
        if keepdim:
            out = out.reshape((q.numel(),) + (1,) * self.ndim) if dim is None or self.ndim == 0 else \
                out.unsqueeze(axis + 1)
        return out.squeeze(0) if scalar else out

    @amp.runs_in_float32      # torch.autocast's fp32 list
    def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        """The ``q``-th quantiles (``q`` a float or a 0-d/1-D tensor in [0, 1]) over ``dim`` (None:
        every element); a 1-D ``q`` adds a leading dim of its length. A slice holding NaN gives NaN.

            >>> gt.tensor([1.0, 2.0, 3.0, 4.0]).quantile(0.5).item()
            2.5
        """
        return self._quantile(q, dim, keepdim, interpolation, False)

    @amp.runs_in_float32      # torch.autocast's fp32 list
    def nanquantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        """``quantile`` ignoring NaN (a slice of only NaN gives NaN)."""
        return self._quantile(q, dim, keepdim, interpolation, True)

    def msort(self):
        """This tensor sorted along dim 0 (the values of ``sort(dim=0)``)."""
        return self.sort(0).values

    # ---- histograms (no gradient, as torch) ------------------------------------------------------
    def histc(self, bins=100, min=0, max=0):
        """Counts of the elements in ``bins`` equal bins over ``[min, max]`` (``min == max``: the
        data's range), in this tensor's float dtype; elements outside are ignored."""
        if not self.dtype.is_floating_point:
            raise TypeError(f"histc: expected a float tensor, got {self.dtype!r}")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins <= 0:
            raise ValueError(f"histc: bins must be a positive int, got {bins!r}")
        lo, hi = float(min), float(max)
        if lo > hi:
            raise ValueError(f"histc: max must be larger than min, got min={min!r}, max={max!r}")
        x = self.detach().reshape(-1)
        if lo == hi and x.numel():
            lo, hi = float(x.min()), float(x.max())
        if lo == hi:
            lo, hi = lo - 1, hi + 1
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"histc: range of [{lo}, {hi}] is not finite")
        # torch's arithmetic: the bounds in the input's dtype (its edges' first and last), and
        # (x - lo) * bins / (hi - lo) in that dtype, so a value near an edge falls where torch puts it
        lo, hi = x.new_tensor(lo), x.new_tensor(hi)
        pos = ((x - lo) * bins / (hi - lo)).floor().clamp(0, bins - 1).to(dtypes.int64)
        inside = (x >= lo) & (x <= hi)
        return _counts(where(inside, pos, bins), None, bins).to(self.dtype)

    def histogram(self, bins=100, *, range=None, weight=None, density=False):
        """``(hist, bin_edges)``: ``bins`` equal bins over ``range`` (default: the data's) or the
        1-D ascending edges ``bins``; ``weight`` weighs each element, ``density`` normalises to a
        density (integral 1). The last bin includes its right edge, as torch."""
        if isinstance(bins, bool) or not isinstance(bins, (int, Tensor)):    # torch's order: its argument parser,
            raise TypeError(f"histogram(): argument 'bins' must be int or Tensor, not {type(bins).__name__}")
        if not isinstance(bins, Tensor) and bins <= 0:                      # its count of bins, then the dtype
            raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
        if not self.dtype.is_floating_point:
            raise NotImplementedError(f"\"histogramdd\" not implemented for '{dtypes.torch_type_name(self.dtype.name)}'")
        x = self.detach().reshape(-1)
        edges = _histogram_edges(x, bins, range, self.dtype)
        n = edges.shape[0] - 1
        pos, inside = _bins_of(x, edges)
        if weight is not None:
            weight = _operand(weight, "histogram")
            if not isinstance(weight, Tensor) or weight.shape != self.shape:
                raise ValueError(f"histogram: weight must have the input's shape {self.shape}, got "
                                 f"{getattr(weight, 'shape', weight)!r}")
            weight = weight.detach().reshape(-1).to(self.dtype)
        hist = _counts(where(inside, pos, n), weight, n).to(self.dtype)
        if density:
            hist = hist / (hist.sum() * (edges[1:] - edges[:-1]))
        return HistogramResult(hist, edges)

    # ---- running and pairwise reductions ---------------------------------------------------------
    def logcumsumexp(self, dim):
        """``log(cumsum(exp(x)))`` along ``dim``, without overflow or underflow; differentiable.

            >>> gt.tensor([0.0, 0.0]).logcumsumexp(0).tolist()       # [log 1, log 2]
            [0.0, 0.6931471824645996]
        """
        if not self.dtype.differentiable:
            raise TypeError(f"logcumsumexp: expected a float tensor (or a complex one), got {self.dtype!r} (torch "
                            "refuses integers too)")
        if self.dtype in dtypes.HALVES:   # torch's CPU kernel computes halves in float32, rounded once
            return _shape._named(self.float().logcumsumexp(dim).to(self.dtype), self, "LogcumsumexpBackward0")
        # along the sharded axis: block after block (axis_scans.py); complex input by the scan below
        if self._placed is not None and self.ndim and not self.dtype.is_complex:
            found = axis_scans.logcumsumexp(self, normalize_axis(dim, self.ndim, "logcumsumexp"))
            if found is not None:
                return _shape._named(found, self, "LogcumsumexpBackward0")
        xm, axis = _last(self, dim, "logcumsumexp")
        n, out, step = xm.shape[-1], xm, 1
        # an inclusive scan by doubling steps (log2(n) logaddexp's): out[i] gathers x[i - 2 * step + 1 .. i]
        while step < n:
            pad = Tensor._wrap(B.full(xm.shape[:-1] + (step,), -math.inf, xm.dtype))
            out = out.logaddexp(shape_ops.Cat.apply(pad, out[..., :n - step], axis=xm.ndim - 1))
            step *= 2
        return _shape._named(out.movedim(-1, axis).contiguous() if self.ndim else out[0], self, "LogcumsumexpBackward0")

    def dist(self, other, p=2):
        """The ``p``-norm of ``self - other`` (broadcast, a float or complex difference) over every element."""
        diff = self - _operand(other, "dist")
        if not diff.dtype.differentiable:
            raise RuntimeError(f"norm(): input dtype should be either floating point or complex. Got "
                               f"{dtypes.torch_type_name(diff.dtype.name)} instead (dist of two integer tensors).")
        return _shape._named(diff.norm(p), self, "DistBackward0")      # p=0: the count, with torch's zero gradient

    def renorm(self, p, dim, maxnorm):
        """Each slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` scaled down to norm
        ``maxnorm`` (torch divides by ``norm + 1e-7``); differentiable."""
        if not self.dtype.differentiable:
            raise TypeError(f"renorm: expected a float tensor (or a complex one), got {self.dtype!r}")
        if self.ndim < 2:
            raise ValueError(f"renorm: expected a tensor of at least 2 dims, got shape {self.shape}")
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not p > 0:
            raise ValueError(f"renorm: p must be a positive number, got {p!r}")
        if not isinstance(maxnorm, (int, float)) or maxnorm < 0:
            raise ValueError(f"renorm: maxnorm must be a non-negative number, got {maxnorm!r}")
        return _shape._named(self * self._renorm_factor(p, dim, maxnorm), self, "RenormBackward0")

    def _renorm_factor(self, p, dim, maxnorm):
        # each slice's scale (1 where its norm is within maxnorm), computed from the values as they are
        axis = normalize_axis(dim, self.ndim, "renorm")
        norms = self.norm(p, tuple(i for i in range(self.ndim) if i != axis), keepdim=True)
        return where(norms > maxnorm, maxnorm / (norms + 1e-7), 1.0)

    def aminmax(self, *, dim=None, keepdim=False):
        """``(min, max)`` over ``dim`` (None: every element), as ``amin`` and ``amax``."""
        if self.numel() == 0 and (dim is None or self.shape[normalize_axis(dim, self.ndim, "aminmax")] == 0):
            raise ValueError(f"aminmax: cannot reduce an empty tensor of shape {self.shape} (no identity)")
        complex_checks.refuse_complex_extremum(self, "aminmax", dim is not None)     # (no order)
        if dim is None:
            normalize_axes(None, self.ndim, "aminmax")
            dim = tuple(range(self.ndim)) if keepdim else None
        low, high = (self.amin(), self.amax()) if dim is None else (self.amin(dim, keepdim), self.amax(dim, keepdim))
        return AminmaxResult(*(_shape._named(t, self, "AminmaxBackward0") for t in (low, high)))


def _interpolate(ordered, pos, how):
    """Values at fractional positions ``pos`` (..., Q) of the sorted slices ``ordered`` (..., n)."""
    n = ordered.shape[-1]
    batch = ordered.shape[:-1]
    pos = pos.expand(batch + (pos.shape[-1],)) if batch else pos.reshape(-1)
    lower, upper = pos.floor(), pos.ceil()
    if how == "lower":
        return ordered.gather(-1, lower.to(dtypes.int64).clamp_max(n - 1))
    if how == "higher":
        return ordered.gather(-1, upper.to(dtypes.int64).clamp_max(n - 1))
    if how == "nearest":
        return ordered.gather(-1, pos.round().to(dtypes.int64).clamp_max(n - 1))
    low = ordered.gather(-1, lower.to(dtypes.int64).clamp_max(n - 1))
    high = ordered.gather(-1, upper.to(dtypes.int64).clamp_max(n - 1))
    # torch's lerp, from the nearer end: its last bits, and its infinities (-inf to 0 at 0.6 is
    # -inf; NaN for midpoint between two infinities)
    weight = 0.5 if how == "midpoint" else pos - lower
    with B.quiet_float_errors():          # inf - inf is NaN silently, as in torch
        diff = high - low
        if ordered.dtype == dtypes.float32:   # torch's one fused multiply-add: exact in float64, one rounding
            w = weight if isinstance(weight, float) else weight.to(dtypes.float64)
            low, high, diff = low.to(dtypes.float64), high.to(dtypes.float64), diff.to(dtypes.float64)
            return where(w < 0.5, low + w * diff, high + (w - 1) * diff).to(dtypes.float32)
        return where(weight < 0.5, low + weight * diff, high - diff * (1 - weight))


def _counts(pos, weight, bins):
    """Counts (or summed weights) of the int64 bin positions ``pos``; position ``bins`` collects
    the elements outside every bin and is dropped."""
    if weight is not None:
        weight = where(pos == bins, 0.0, weight)
    return pos.bincount(weight, minlength=bins + 1)[:bins]


def _bins_of(x, edges):
    """``(bin, inside)`` of each value of the 1-D ``x`` among the ascending ``edges``: torch's
    rule, the last bin holding its right edge; ``inside`` False for a value outside the edges."""
    pos = where(x == edges[-1], edges.shape[0] - 2, searchsorted(edges, x, right=True) - 1)
    return pos, (x >= edges[0]) & (x <= edges[-1])


def _histogram_edges(x, bins, range, dtype):
    """The bin edges of ``histogram``: the given 1-D tensor, or ``bins + 1`` equal steps."""
    if isinstance(bins, Tensor):
        if bins.ndim != 1 or bins.shape[0] < 2:
            raise ValueError(f"histogram: bins must be a 1-D tensor of at least 2 edges, got shape {bins.shape}")
        if range is not None:
            raise ValueError("histogram: give range only with an int number of bins, not with bin edges")
        return bins.detach().to(dtype)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins <= 0:
        raise ValueError(f"histogram: bins must be a positive int or a 1-D tensor of edges, got {bins!r}")
    if range is not None:
        if len(range) != 2 or not float(range[0]) <= float(range[1]):
            raise ValueError(f"histogram: range must be (min, max) with min <= max, got {range!r}")
        lo, hi = float(range[0]), float(range[1])
    else:
        lo, hi = (float(x.min()), float(x.max())) if x.numel() else (0.0, 1.0)     # torch's range of no data
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"histogram: range of [{lo}, {hi}] is not finite")
    # torch's edges are its linspace in the input's dtype: the same bits (torch_ranges.py), so an
    # element on an edge falls in the same bin
    return Tensor._wrap(B.astype(B.asarray(torch_ranges.linspace(lo, hi, bins + 1, dtype.name)), dtype))
