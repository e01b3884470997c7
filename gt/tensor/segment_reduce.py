"""torch's ``segment_reduce``: a reduction over consecutive runs (segments) of one axis.

Each element's segment is found from the running sum of ``lengths`` (``searchsorted``), and the
reduction is one ``scatter_add``/``scatter_reduce`` into a (..., segments, ...) result, so the
work is vectorised and differentiable. torch's conventions are kept: an empty segment gives
``initial`` when given, else 0 (sum), 1 (prod), NaN (mean), -inf (max), inf (min); ``initial``
joins every segment's reduction, and a mean divides by the segment's own length; the gradient of
max/min is shared evenly between the elements equal to the result (none where ``initial`` is
larger). torch 2.13's CPU backward splits a tie only where the incoming gradient is positive
(a negative one reaches every tied element whole); gt splits every tie evenly.
"""

from gt import dtypes
from gt.tensor.core import Tensor
from gt.tensor.creation import arange, full, zeros
from gt.tensor.arithmetic import where
from gt.tensor.functions import cat
from gt.tensor.index_methods import searchsorted

__all__ = ["segment_reduce"]

_REDUCES = {"sum": "sum", "prod": "prod", "mean": "mean", "max": "amax", "amax": "amax", "min": "amin",
            "amin": "amin"}
_EMPTY = {"sum": 0.0, "prod": 1.0, "mean": float("nan"), "amax": float("-inf"), "amin": float("inf")}


def _lengths(data, lengths, offsets, axis):
    """The (*data.shape[:axis], segments) int64 lengths, checked as torch checks them."""
    if lengths is None and offsets is None:
        raise RuntimeError("segment_reduce(): Either lengths or offsets must be defined.")
    given = lengths if lengths is not None else offsets
    if not isinstance(given, Tensor):
        raise TypeError(f"segment_reduce(): lengths/offsets must be a Tensor, not {type(given).__name__}")
    if given.dtype.is_floating_point or given.dtype == dtypes.bool_:
        raise NotImplementedError(f"segment_reduce(): lengths/offsets must be int32 or int64, got {given.dtype}")
    if given.ndim != axis + 1:
        raise RuntimeError(f"segment_reduce(): Expected axis to be the last dimension of lengths but got {axis}.")
    if tuple(given.shape[:-1]) != tuple(data.shape[:axis]):
        raise RuntimeError(f"segment_reduce(): lengths/offsets of shape {list(given.shape)} must match data's "
                           f"leading dims {list(data.shape[:axis])}")
    lengths = given.long() if lengths is not None else given.long()[..., 1:] - given.long()[..., :-1]
    if bool((lengths < 0).any()):
        raise RuntimeError("lengths contains negative value!")
    return lengths


def segment_reduce(data, reduce, *, lengths=None, indices=None, offsets=None, axis=0, unsafe=False, initial=None):
    """Reduce ``data`` over the segments of dim ``axis`` that ``lengths`` (the sizes of
    consecutive runs, shaped (*data.shape[:axis], segments)) or ``offsets`` (their starts and
    the end, one more) give. ``reduce``: "sum", "prod", "mean", "max"/"amax" or "min"/"amin".
    The result has ``segments`` in place of dim ``axis``. Unless ``unsafe``, every row of
    lengths must add up to ``data.shape[axis]`` (with ``unsafe``, elements past the last segment
    are left out). ``indices`` is refused, as in torch."""
    if reduce not in _REDUCES:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    if indices is not None:
        raise RuntimeError("segment_reduce(): indices based reduction is not supported yet.")
    if not isinstance(data, Tensor) or data.ndim == 0:
        raise RuntimeError("segment_reduce(): data must be a tensor of at least 1 dim")
    if not data.dtype.is_floating_point:
        raise NotImplementedError(f"segment_reduce(): data must be floating point, got {data.dtype} (as torch's "
                                  "CPU kernel)")
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"segment_reduce(): argument 'axis' must be int, not {type(axis).__name__}")
    axis = axis + data.ndim if axis < 0 else axis
    lengths = _lengths(data, lengths, offsets, axis)
    size, segments = data.shape[axis], lengths.shape[-1]
    ends = lengths.cumsum(-1)
    if not unsafe and not bool((ends[..., -1:] == size).all() if segments else size == 0):
        raise RuntimeError("segment_reduce(): Expected all rows of lengths along axis to sum to "
                           "data.size(lengths.dim()-1) when !unsafe.")
    # each element's segment, (*lead, size, *rest): past the last segment -> the extra slot `segments`
    ids = searchsorted(ends, arange(size).expand(*lengths.shape[:-1], size).contiguous(), right=True)
    ids = ids.reshape(*ids.shape, *(1,) * (data.ndim - axis - 1)).expand(*data.shape)
    out_shape = (*data.shape[:axis], segments + 1, *data.shape[axis + 1:])
    counts = lengths.reshape(*lengths.shape, *(1,) * (data.ndim - axis - 1)).to(data.dtype)
    return _reduced(data, _REDUCES[reduce], ids, axis, out_shape, counts, initial)[_keep(axis, segments)]


def _keep(axis, segments):
    return (slice(None),) * axis + (slice(0, segments),)


def _reduced(data, op, ids, axis, out_shape, counts, initial):
    """The (*lead, segments + 1, *rest) reduction; the last slot gathers what no segment holds."""
    if op in ("sum", "mean"):
        total = zeros(*out_shape, dtype=data.dtype).scatter_add(axis, ids, data)
        total = total if initial is None else total + initial
        if op == "sum":
            return total
        extra = list(counts.shape)
        extra[axis] = 1
        counts = cat([counts, full(extra, 1.0, dtype=data.dtype)], axis)      # the extra slot: any count
        empty = float("nan") if initial is None else float(initial)
        return where(counts == 0, full((), empty, dtype=data.dtype), total / counts.clamp_min(1.0))
    start = _EMPTY[op] if initial is None else float(initial)
    result = full(out_shape, start, dtype=data.dtype).scatter_reduce(axis, ids, data, op, include_self=True)
    if op == "prod":
        return result
    # max/min: the gradient split evenly between the elements equal to the result, none
    # to ``initial``: the value stays ``result`` exactly, the graph carries (data - data) / ties
    hit = (data == result.detach().gather(axis, ids)).to(data.dtype)
    ties = zeros(*out_shape, dtype=data.dtype).scatter_add(axis, ids, hit)
    share = hit / ties.gather(axis, ids).clamp_min(1.0)
    return result.detach() + zeros(*out_shape, dtype=data.dtype).scatter_add(axis, ids, (data - data.detach()) * share)
