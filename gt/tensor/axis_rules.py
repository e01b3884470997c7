"""Propagation rules of ops along the sharded axis itself, added to rules.py's table (in front of
its rules, which they fall back to) when this module is imported (by dispatch.py). None of them
joins the tensor on one device:

- max/min over the sharded axis with a gradient (``amax``, ``max()``, ``max(axis)``, the
  inf-norms): each device reduces its block; the per-device winners (n values per output
  element) are gathered and reduced once more; each device counts its ties with that result and
  the counts are summed (an all-reduce of the output's size). ``BlockExtremum`` then sends each
  block its share of the gradient, split among all the ties as on one device. ``argmax``/
  ``argmin`` along the axis (``sharded_arg``, and so ``max(dim)``'s indices): each device's
  first winner, its value and global position gathered, the first best taken (the first NaN).
- ``cat`` along the sharded axis: the result is cut along that axis, device d holding as many
  rows as it held of the inputs (the sum of its blocks); the parts of the inputs already on the
  device whose range they fall in stay there, only the rest moves (``all_to_all``).
- an integer array on the sharded axis (``x[idx]``, ``index_select``, ``gather`` and
  ``max(dim)``'s values): each device looks up the positions in its block (-0.0 elsewhere,
  ``BlockTake``) and the results are summed once (an all-reduce of the output's size), when
  that moves less than the tensor: n times the output's size at most the input's.
- float16/bfloat16 sums and means over the sharded axis: each device adds up its block in
  float32, the shares are summed in float32 and rounded once, as one device does.
- a ``Partial`` value times (or over) a replicated tensor stays partial only where that tensor
  is finite (and non-zero, dividing): ``0 * inf`` in one share would be NaN in the sum.
"""

from gt import autograd, dtypes
from gt.backend import B
from gt.ops import block_ops, reductions
from gt.ops import elementwise as ew
from gt.ops import shape as sh
from gt.ops._shapes import numel
from gt.sharding import collectives as C
from gt.sharding.mesh import get_mesh
from gt.sharding.placement import Partial, Replicate, Shard, even_sizes, offsets
from gt.tensor import rules
from gt.tensor.rules import REP, Plan, _expand_index, _is_tensor, _reduce_args, _shard_axis, _sizes

_EXTREMA = (reductions.Max, reductions.Min, reductions.NormMax, reductions.NormMin)


# ---- max / min ---------------------------------------------------------------------------------
def extremum(cls, args, kwargs):
    """max/min over the sharded axis with a gradient: per-device reductions, then the small
    collectives of the winners and their tie counts (module docstring)."""
    x, axes, keepdims = _reduce_args(args, kwargs)
    a = _shard_axis(x)
    if a is None or (axes is not None and a not in axes) or not (x.requires_grad and autograd.is_grad_enabled()):
        return rules.reduction(cls, args, kwargs)
    out = rules.gathered_extremum(cls, x, axes, True)
    if out is None:
        return None  # every block is empty: the gathered op raises
    shards = x._placed.shards
    probe = block_ops.BlockExtremum()
    probe.axis, probe.nan_grad = axes, cls.nan_grad
    hits = [probe.hits(s, o) for s, o in zip(shards, C.replicas(out, len(shards)))]
    counts = [B.sum(h, axis=axes, keepdims=True) for h in hits]
    count = B.astype(C.all_reduce([c if B.is_array(c) else B.asarray(c) for c in counts]), x.dtype)
    wrap = rules.Tensor._wrap
    return block_ops.BlockExtremum.apply(x, wrap(out), wrap(count), like=cls, axis=axes, keepdims=keepdims,
                                         hits=tuple(hits))


def block_extremum(cls, args, kwargs):
    """Each device's block, with its own ties (``hits``, found by ``extremum``) for the backward."""
    x, hits = args[0], kwargs.get("hits")

    def local(d, largs, kw):
        return largs, (dict(kw, hits=hits[d]) if hits else kw)
    return Plan([(x.placement, _sizes(x)), REP, REP], Replicate(), local)


def sharded_arg(fn, placed, axis, keep):
    """``fn`` (B.argmax or B.argmin) along ``axis``, the axis ``placed`` is cut along, as an engine
    array on the home device: each device's first winner and its value, then those n
    candidates per output element gathered and the first best taken (the lowest position among
    ties, the first NaN, as on one device). None when every block is empty."""
    values, positions = [], []
    for s, start in zip(placed.shards, offsets(placed.sizes)):
        if s.shape[axis]:
            i = fn(s, axis=axis, keepdims=True)
            values.append(B.take_along_axis(s, i, axis))
            positions.append(i + start)
    if not values:
        return None
    best = fn(C.all_gather(values, axis), axis=axis, keepdims=True)
    index = B.take_along_axis(C.all_gather(positions, axis), best, axis)
    return index if keep else B.reshape(index, tuple(n for i, n in enumerate(index.shape) if i != axis))


# ---- cat -----------------------------------------------------------------------------------------
def cat(cls, args, kwargs):
    """``cat`` along the sharded axis: device d gets the sum of its blocks of the inputs (an even
    split for a replicated or partial input), covering the output's range in order; each input
    is re-cut to the parts of that range it fills (module docstring)."""
    axis = kwargs.get("axis", 0)
    tensors = [t for t in args if _is_tensor(t)]
    if len(tensors) != len(args) or not any(t.placement == Shard(axis) for t in tensors) \
            or any(isinstance(t.placement, Shard) and t.placement.axis != axis for t in tensors):
        return rules.cat(cls, args, kwargs)
    n = get_mesh().size
    held = [_sizes(t) if isinstance(t.placement, Shard) else even_sizes(t.shape[axis], n) for t in tensors]
    out_sizes = [sum(col) for col in zip(*held)]
    bounds = offsets(out_sizes) + [sum(out_sizes)]
    targets, start = [], 0
    for t in tensors:
        stop = start + t.shape[axis]
        targets.append((Shard(axis), [max(0, min(stop, hi) - max(start, lo)) for lo, hi in zip(bounds, bounds[1:])]))
        start = stop
    return Plan(targets, Shard(axis))


# ---- integer arrays on the sharded axis ----------------------------------------------------------
def getitem(cls, args, kwargs):
    """``x[index]`` with an integer array on the sharded axis: per-device lookups summed once
    (``BlockTake``) where that moves less than gathering ``x``; anything else: rules.getitem."""
    x, index = args[0], args[1]
    found = _positions_on_shard_axis(x, index)
    if found is None:
        return rules.getitem(cls, args, kwargs)
    parts, where = found
    a, total = _shard_axis(x), x.shape[_shard_axis(x)]
    positions = parts[where]
    low, high = int(B.min(positions)), int(B.max(positions))
    if low < -total or high >= total:
        return rules.getitem(cls, args, kwargs)   # out of range: the gathered op raises torch's error
    if low < 0:
        positions = B.where(positions < 0, positions + total, positions)
    if get_mesh().size * _lookup_size(parts, x.shape) > numel(x.shape):
        return rules.getitem(cls, args, kwargs)   # more lookups than rows: gathering x moves less
    parts = list(parts)
    parts[where] = positions
    return block_ops.BlockTake.apply(x, tuple(parts), where, a, 0, total).replicate()


def _positions_on_shard_axis(x, index):
    """(the index as one entry per axis, where the sharded axis's entry is) when that entry is
    a non-empty integer array of a numeric tensor cut along the axis, and no entry is boolean."""
    a = _shard_axis(x)
    if a is None or x.dtype == dtypes.bool_:
        return None
    parts = _expand_index(index, x.ndim)
    if parts is None or any(isinstance(p, bool) or (B.is_array(p) and B.is_bool(p)) for p in parts):
        return None
    dims = [i for i, p in enumerate(parts) if p is not None]
    where = dims[a] if a < len(dims) else None
    if where is None or not B.is_array(parts[where]) or not B.numel(parts[where]):
        return None
    return parts, where


def _lookup_size(parts, shape):
    """The number of elements ``x[parts]`` has (integer arrays broadcast together)."""
    arrays = [tuple(p.shape) for p in parts if B.is_array(p)]
    size = numel(rules._broadcast(arrays))
    dims = [p for p in parts if p is not None]
    for p, n in zip(dims, shape):
        if isinstance(p, slice):
            size *= len(range(*p.indices(n)))
    return size


def block_take(cls, args, kwargs):
    x, index, where, axis = args[:4]
    if x.placement != Shard(axis):
        return None
    starts, n = offsets(_sizes(x)), get_mesh().size
    copies = [C.replicas(p, n) if B.is_array(p) else [p] * n for p in index]   # the positions on each device

    def local(d, largs, kw):
        return [largs[0], tuple(c[d] for c in copies), where, axis, starts[d], largs[5]], kw
    return Plan([(x.placement, _sizes(x))] + [None] * 5, Partial(), local)


# ---- float16 sums, partial values scaled ---------------------------------------------------------
def half_sum(cls, args, kwargs):
    """A float16/bfloat16 sum or mean over the sharded axis: added up in float32 on each device,
    the shares summed in float32 and rounded once (torch's CPU kernel adds halves in float32)."""
    x, axes, keepdims = _reduce_args(args, kwargs)
    a = _shard_axis(x)
    if x.dtype not in dtypes.HALVES or a is None or (axes is not None and a not in axes):
        return rules.reduction(cls, args, kwargs)
    count = numel(x.shape) if axes is None else numel(x.shape[r] for r in axes)
    total = reductions.Sum.apply(x.to(dtypes.float32), axes, keepdims)
    if cls is reductions.Mean:
        if not count:
            return None
        total = total.replicate() / count
    return total.to(x.dtype)


def scaled_partial(cls, args, kwargs):
    """Mul/Div: a partial operand times (over) a replicated tensor is scaled share by share
    (rules._keeps_partial) only where that tensor is finite, and non-zero for a divisor: else
    the partial operand is summed first."""
    if any(_is_tensor(t) and t.placement.is_partial() for t in args) and rules._keeps_partial(cls, args):
        other = next((t for t in args if _is_tensor(t) and t.placement.is_replicate()), None)
        if other is not None:
            r = other._array
            ok = B.isfinite(r) if cls is ew.Mul else B.isfinite(r) & (r != 0)
            if not bool(B.all(ok)):
                return rules.broadcast_plan(args)
    return rules.elementwise(cls, args, kwargs)


rules.RULES.update({cls: extremum for cls in _EXTREMA})
rules.RULES.update({
    block_ops.BlockExtremum: block_extremum, block_ops.BlockTake: block_take, sh.Cat: cat, sh.GetItem: getitem,
    reductions.Sum: half_sum, reductions.Mean: half_sum, ew.Mul: scaled_partial, ew.Div: scaled_partial,
})
