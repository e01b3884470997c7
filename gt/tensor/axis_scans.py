"""Top-k and running scans along the sharded axis, without joining the tensor on one device
(axis_rules.py has the max/min, cat and lookup rules). The methods (sorting.py, special_methods.py,
stats_methods.py) call in here; the ``Cumsum``/``Cumprod`` rules join rules.py's table on import.

- ``topk``: each device takes the top ``k`` of its block, the ``p * k``
  candidates and their global positions are gathered and the top ``k`` of them taken, with the
  same stable rule (equal values: the first position first; NaN the largest), so values and
  indices are one device's; the gradient goes back to the block holding each pick
  (``BlockTakeAlong``). Used where the candidates (values and positions) are fewer than the
  axis's elements: ``2 * sum(min(k, block)) < n``; else, and for ``sort``/``msort``, the tensor
  is gathered once (values and indices from the one copy: ``gathered_pick``).
- ``cumsum``, ``cumprod``, ``cummax``, ``cummin``: each device scans its block starting from the
  previous block's last running value (a carry of one row, ``send``), in the accumulator one
  device uses (float64 for float32, as torch's CPU kernels and the numpy engine; int64 for
  integers), so every value is one device's bit for bit: adding the carry afterwards would round
  twice. The output stays cut as the input. Backwards are the reverse chain (cumsum: a reversed
  running sum carried from the last device; cumprod without zeros: the same over ``g * out``,
  over ``x``; cummax/cummin: each gradient added at its index in one device's order, the sum
  of a target that runs across blocks carried on and written back to its block). The carries
  run device after device; a GPU's own cumsum is a parallel scan, so there the bits are its own.
  Left to the gathered op: float16/bfloat16 (their float32 accumulator has no engine scan), and
  ``cumprod`` with a gradient and a zero on the axis (its backward needs the whole axis).
- ``logcumsumexp``: the same chain, within a few ulps of one device, not its bits (``logcumsumexp``).
"""

import math

from gt import autograd, dtypes
from gt.backend import B
from gt.ops import block_ops
from gt.ops import math_functions as mf
from gt.ops import sorting
from gt.ops.shape import AddAtIndex
from gt.sharding import collectives as C
from gt.sharding import layout
from gt.sharding.layout import Placed
from gt.sharding.placement import Replicate, Shard, offsets
from gt.tensor import dispatch, rules
from gt.tensor.arithmetic import where
from gt.tensor.rules import REP, Plan, _sizes

# the dtype one device's running sums and products accumulate in
_ACC = {dtypes.float32: dtypes.float64, dtypes.float64: dtypes.float64, dtypes.int64: dtypes.int64,
        dtypes.int32: dtypes.int64, dtypes.bool_: dtypes.int64, **{d: dtypes.int64 for d in dtypes.SMALL_INTS}}


def _along(x, axis):
    """``x``'s blocks (a ``Placed``) when ``x`` is cut along ``axis``, else None."""
    p = x._placed
    return p if p is not None and p.placement == Shard(axis) else None


def _rows(a, axis, start, stop):
    return B.getitem(a, (slice(None),) * axis + (slice(start, stop),))


def _flip(a, axis):
    return B.getitem(a, (slice(None),) * axis + (slice(None, None, -1),))


def _recording(x):
    return x.requires_grad and autograd.is_grad_enabled() and x.dtype.is_floating_point


# ---- top-k ---------------------------------------------------------------------------------------
def topk(x, k, axis, largest):
    """``(values, indices)`` of ``x.topk(k, axis, largest)`` (sorted) from the devices' own top k
    (module docstring); None where ``x`` is not cut along ``axis`` or gathering it moves less."""
    placed = _along(x, axis)
    if placed is None or not k:
        return None
    if 2 * sum(min(k, s) for s in placed.sizes) >= x.shape[axis]:
        return gathered_pick(x, axis, lambda a: B.topk_indices(a, k, axis, largest))
    values, positions = [], []
    for d, (s, start) in enumerate(zip(placed.shards, offsets(placed.sizes))):
        if s.shape[axis]:
            with dispatch.on_device(d):
                i = B.topk_indices(s, min(k, s.shape[axis]), axis, largest)
                values.append(B.take_along_axis(s, i, axis))
                positions.append(i + start)
    candidates = C.all_gather(values, axis)     # in device order: equal values stay in position order
    best = B.topk_indices(candidates, k, axis, largest)
    wrap = rules.Tensor._wrap
    out, indices = wrap(B.take_along_axis(candidates, best, axis)), wrap(B.take_along_axis(
        C.all_gather(positions, axis), best, axis))
    if _recording(x):
        out = block_ops.BlockTakeAlong.apply(x, out, indices, axis=axis)
    return out, indices


def gathered_pick(x, axis, choose):
    """``(values, indices)`` of a sort along the sharded axis (``choose(whole) -> positions``,
    distinct along the axis), or None where ``x`` is not cut along it: ``x`` gathered once, the
    values taken from that copy (not gathered a second time for them), the gradient put back
    block by block (``BlockTakeAlong``). A sort is a permutation of the axis: for data in random
    order a distributed (sample) sort would move (p - 1) / p of the elements as well."""
    placed = _along(x, axis)
    if placed is None:
        return None
    whole = layout.materialize(placed)
    index = choose(whole)
    wrap = rules.Tensor._wrap
    # the values in the positions' layout (a sort's: the gathered input's, as one device's)
    out, indices = wrap(B.dense_like(B.take_along_axis(whole, index, axis), index)), wrap(index)
    if _recording(x):
        out = block_ops.BlockTakeAlong.apply(x, out, indices, axis=axis)
    return out, indices


def block_take_along(cls, args, kwargs):
    """The rule of ``BlockTakeAlong``: each device's op sees its own block of ``x`` and where it
    starts; the picked values and positions are the same on every device."""
    x, axis = args[0], kwargs["axis"]
    if x.placement != Shard(axis):
        return None
    starts = offsets(_sizes(x))

    def local(d, largs, kw):
        return largs, dict(kw, start=starts[d])
    return Plan([(x.placement, _sizes(x)), REP, REP], Replicate(), local)


# ---- running scans -------------------------------------------------------------------------------
def _chain(blocks, axis, step, reverse=False):
    """``step(d, block, carry) -> (result, carry)`` device after device (the last first with
    ``reverse``), each carry (a tuple of rows) sent to the next device holding rows; an empty
    block gets ``step`` with no carry and passes the carry on."""
    outs, carry = [None] * len(blocks), None
    for d in (reversed(range(len(blocks))) if reverse else range(len(blocks))):
        with dispatch.on_device(d):
            if not blocks[d].shape[axis]:
                outs[d] = step(d, blocks[d], None)[0]
                continue
            if carry is not None:
                carry = tuple(C.send(c, d) for c in carry)
            outs[d], carry = step(d, blocks[d], carry)
    return outs


def _scan(fn, blocks, axis, acc, dtype, reverse=False):
    """``fn`` (B.cumsum, B.cumprod) over the blocks as over one axis (reversed: from the end),
    each block's scan continuing the carry in the accumulator ``acc``, results cast to ``dtype``."""
    def step(d, block, carry):
        a = B.astype(block, acc)
        if reverse:
            a = _flip(a, axis)
        if carry is not None:
            a = B.concatenate([carry[0], a], axis)
        with B.quiet_float_errors():
            r = fn(a, axis)
        if carry is not None:
            r = _rows(r, axis, 1, None)
        n = r.shape[axis]
        out = B.astype(r, dtype)
        return (_flip(out, axis) if reverse else out), ((_rows(r, axis, n - 1, n),) if n else carry)
    return _chain(blocks, axis, step, reverse)


class ScanNode(dispatch.ShardedNode):
    """The tape entry of a scan along the sharded axis: its backward (``reverse``: the upstream
    gradient's blocks in, the input gradient's blocks out) runs the carries across the devices,
    which a per-device backward cannot; ``graph``: the recorded gradient, when not the op's own."""

    __slots__ = ("reverse", "graph")

    def backward(self, g):
        for ctx in self.ctxs:
            autograd.check_saved_versions(ctx, share=True)
        x = self.inputs[0]
        return (Placed(self.reverse(layout.to_locals(g, self.out, self.out_sizes)), self.out, x.shape),)

    def backward_graph(self, g):
        return super().backward_graph(g) if self.graph is None else self.graph(g)


def _record(result, x, cls, axis, reverse, saved=(), graph=None):
    """``result`` (cut as ``x``) recorded as a ``ScanNode`` of ``cls`` over ``x``; ``saved``: per
    device, the arrays whose in-place change the backward must refuse."""
    node, placed = ScanNode(), x._placed
    node.ctxs = []
    for d, block in enumerate(placed.shards):
        ctx = cls()
        ctx.needs_input_grad = (True,)
        ctx.save(*(s[d] for s in saved))
        node.ctxs.append(ctx)
        autograd.ops_run[d] += 1
    node.cls, node.inputs, node.kwargs, node.out = cls, (x,), {"axis": axis}, Shard(axis)
    node.targets, node.released, node.out_shape = [(Shard(axis), placed.sizes)], False, result.shape
    node.out_sizes, node.reverse, node.graph = list(placed.sizes), reverse, graph
    node.in_shapes = [[tuple(s.shape)] for s in placed.shards]
    node.in_dtypes = [[x.dtype]] * len(placed.shards)
    result._requires_grad = True
    result._ctx = node
    autograd.put_on_tape(node, result)
    return result


def running(cls, args, kwargs):
    """``Cumsum``/``Cumprod`` along the sharded axis: the chained block scans (module docstring)."""
    x, axis = args[0], kwargs["axis"]
    placed, acc = _along(x, axis), _ACC.get(x.dtype)
    if placed is None or acc is None:
        return rules.along_axis(cls, args, kwargs)
    fn = B.cumsum if cls is sorting.Cumsum else B.cumprod
    record = _recording(x)
    if record and cls is mf.Cumprod and any(bool(B.any(s == 0)) for s in placed.shards):
        return None          # the gradient past a zero needs the whole axis: gathered
    dtype = x.dtype if x.dtype.is_floating_point else dtypes.int64
    outs = _scan(fn, placed.shards, axis, acc, dtype)
    result = rules.Tensor._from_value(Placed(outs, Shard(axis), x.shape))
    if not record:
        return result
    if cls is sorting.Cumsum:
        return _record(result, x, cls, axis, lambda gs: _scan(B.cumsum, gs, axis, acc, dtype, reverse=True))
    if x.shape[axis] <= 1:   # one element: its gradient is g itself
        return _record(result, x, cls, axis, lambda gs: [B.astype(g, dtype) for g in gs])
    shards = placed.shards

    def reverse(gs):         # one device's reversed cumsum of g * out, over x (no zeros)
        with B.quiet_float_errors():
            kept = [g * o for g, o in zip(gs, outs)]
            return [s / x_ for s, x_ in zip(_scan(B.cumsum, kept, axis, acc, dtype, reverse=True), shards)]
    return _record(result, x, cls, axis, reverse, saved=(shards, outs))


# ---- cummax / cummin -----------------------------------------------------------------------------
def cumulative_extreme(x, axis, largest):
    """``(values, indices)`` of ``cummax`` (``largest``) or ``cummin`` along the sharded axis, or
    None where ``x`` is not cut along it: each block's running extreme starts from the last value
    and index before it (the carry, put in front of the block), so ties and NaN follow one
    device's rules (the last index of equal values; a NaN stays)."""
    placed = _along(x, axis)
    if placed is None:
        return None
    starts = offsets(placed.sizes)

    def step(d, block, carry):
        n = block.shape[axis]
        if carry is None:
            i = B.cumulative_extreme(block, axis, largest)[1]
            v, i = B.take_along_axis(block, i, axis), i + starts[d]
            return (v, i), ((_rows(v, axis, n - 1, n), _rows(i, axis, n - 1, n)) if n else None)
        i = _rows(B.cumulative_extreme(B.concatenate([carry[0], block], axis), axis, largest)[1], axis, 1, None)
        # the values are x's own elements at the indices (a running max of 0.0 may be held by a -0.0)
        v = B.where(i == 0, carry[0], B.take_along_axis(block, B.clip(i - 1, 0, n - 1), axis))
        i = B.where(i == 0, carry[1], i - 1 + starts[d])    # position 0: the carry's own
        return (v, i), (_rows(v, axis, n - 1, n), _rows(i, axis, n - 1, n))
    pairs = _chain(placed.shards, axis, step)
    wrap = rules.Tensor._from_value
    values = wrap(Placed([p[0] for p in pairs], Shard(axis), x.shape))
    indices = wrap(Placed([p[1] for p in pairs], Shard(axis), x.shape))
    if _recording(x):
        index = [p[1] for p in pairs]
        _record(values, x, sorting.TakeAlongAxis, axis, lambda gs: _extreme_grads(gs, index, placed.sizes, axis),
                saved=(index,), graph=lambda g: (AddAtIndex.apply(g, x.shape, x.dtype, _whole(indices._data, axis)),))
    return values, indices


def _whole(index, axis):
    """The index tuple of ``x.gather(axis, index)``: the positions on ``axis``, aranges elsewhere
    (the tuple one device's gather adds its gradient at, in the same order)."""
    parts = []
    for a, n in enumerate(index.shape):
        shape = tuple(n if b == a else 1 for b in range(index.ndim))
        parts.append(index if a == axis else B.reshape(B.arange(0, n, 1, dtypes.int64), shape))
    return tuple(parts)


def _extreme_grads(gs, index, sizes, axis):
    """cummax/cummin's input gradient: each ``g`` added at its index in position order, as one
    device's scatter-add. A target the running index carries past its block keeps summing on the
    later devices (row 0 of their work array starts from its sum so far) and the sum is written
    back to its block."""
    starts, dtype = offsets(sizes), B.dtype_of(gs[0])
    works, carry = [None] * len(gs), None
    for d, (g, i) in enumerate(zip(gs, index)):
        n = sizes[d]
        with dispatch.on_device(d):
            work = B.zeros(tuple(n + 1 if a == axis else s for a, s in enumerate(g.shape)), dtype)
            if n and carry is not None:
                carry = tuple(C.send(c, d) for c in carry)
                work = B.concatenate([carry[1], _rows(work, axis, 1, None)], axis)
            if n:
                work = B.index_add(work, _whole(B.where(i < starts[d], 0, i - starts[d] + 1), axis), g)
                if carry is not None:
                    _write_back(works, carry[0], _rows(work, axis, 0, 1), starts, sizes, axis)
                last = _rows(i, axis, n - 1, n)
                carry = (last, B.take_along_axis(work, B.where(last < starts[d], 0, last - starts[d] + 1), axis))
            works[d] = work
    return [_rows(w, axis, 1, None) for w in works]


def _write_back(works, target, total, starts, sizes, axis):
    """``total`` (a row: the sums so far of the carried targets, at positions ``target``) put
    into the work arrays of the earlier devices whose blocks hold those positions."""
    for e, work in enumerate(works):
        if work is None or not sizes[e]:
            continue
        local = target - starts[e]
        mine = (local >= 0) & (local < sizes[e])
        if bool(B.any(mine)):
            works[e] = B.put_along_axis(work, B.where(mine, local + 1, 0), C.send(total, e), axis)


# ---- logcumsumexp --------------------------------------------------------------------------------
_LOWEST = {dtypes.float32: -3.4028234663852886e38, dtypes.float64: -1.7976931348623157e308}


def _log_scan(a, axis):
    """One device's logcumsumexp (stats_methods.py) on an engine array: doubling steps of
    logaddexp, ``out[i]`` taking in ``out[i - step]``."""
    n, out, step = a.shape[axis], a, 1
    while step < n:
        pad = B.full(tuple(step if i == axis else s for i, s in enumerate(a.shape)), -math.inf, B.dtype_of(a))
        out = B.elementwise_math("logaddexp", out, B.concatenate([pad, _rows(out, axis, 0, n - step)], axis))
        step *= 2
    return out


def logcumsumexp(x, axis):
    """``x.logcumsumexp(axis)`` along the sharded axis (float32/float64), or None: each block's
    doubling scan starts from the carry (the running value before it). Not one device's bits: its
    doubling steps pair each element with partners counted from the start of the whole axis
    (copying them would move up to the axis's length per device); within a few ulps. The backward
    is torch's: two reversed logcumsumexps (of the positive and negative gradients over ``exp(out)``),
    chained the same way from the last device."""
    placed = _along(x, axis)
    if placed is None or x.dtype not in _LOWEST or x.shape[axis] <= 1:
        return None      # one element: the identity (a NaN's gradient is g), gathered
    dtype, shards = x.dtype, placed.shards
    outs = [B.ascontiguous(o) for o in _scan(_log_scan, shards, axis, dtype, dtype)]     # torch's: row-major
    result = rules.Tensor._from_value(Placed(outs, Shard(axis), x.shape))
    if not _recording(x):
        return result

    def reverse(gs):         # in float64: the difference of the two exps cancels where g changes sign
        wide = dtypes.float64
        with B.quiet_float_errors():
            logs = [B.log(B.abs(B.astype(g, wide))) - B.astype(o, wide) for g, o in zip(gs, outs)]
            parts = [_scan(_log_scan, [B.where(cmp(g), lg, _LOWEST[wide]) for g, lg in zip(gs, logs)], axis, wide,
                           wide, reverse=True) for cmp in (lambda g: g > 0, lambda g: g < 0)]
            return [B.astype(B.exp(p + s) - B.exp(q + s), dtype)
                    for p, q, s in zip(*parts, (B.astype(s, wide) for s in shards))]

    def graph(g):
        lag, lowest = g.abs().log(), _LOWEST[dtype]
        rev = [(where(c, lag, lowest) - result).flip(axis).logcumsumexp(axis).flip(axis) for c in (g > 0, g < 0)]
        return ((rev[0] + x).exp() - (rev[1] + x).exp(),)
    return _record(result, x, sorting.Cumsum, axis, reverse, saved=(shards, outs), graph=graph)


rules.RULES.update({sorting.Cumsum: running, mf.Cumprod: running, block_ops.BlockTakeAlong: block_take_along})
