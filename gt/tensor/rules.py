"""Propagation rules: for each op of gt/ops, how sharded inputs map to a sharded output.

A rule gets the op's arguments (tensors carry their placement) and returns a ``Plan`` (the
layout each tensor input must have, the output placement, and how to turn global arguments
into per-device ones), a finished result computed from other ops, or None: no local rule, so
the inputs are gathered and the op runs unsharded (always correct).

The rules, in short: elementwise ops keep the shard (inputs that broadcast along it are used
whole); matmul and linear keep a shard of a batch or row axis, and a contraction over the
sharded axis gives ``Partial``; reductions over other axes keep the shard, a sum or mean over it
gives ``Partial``; sorts' gathers and cumsum along another axis keep the shard; reshape, permute,
expand and indexing follow the sharded axis; a few linear ops (add, scale, reshape, permute, sum)
keep ``Partial`` inputs partial, everything else sums them first.
"""

from gt import autograd
from gt.backend import B
from gt.ops import activations as act
from gt.ops import elementwise as ew
from gt.ops import lerp, linalg, reductions
from gt.ops import math_functions as mf
from gt.ops import shape as sh
from gt.ops import sorting
from gt.ops._shapes import broadcast_shapes as _broadcast, numel
from gt.sharding import collectives as C
from gt.sharding.layout import sizes_of
from gt.sharding.placement import Partial, Replicate, Shard, offsets
from gt.tensor import inplace_grad, mesh_row_follow, reshape_layout

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py once the class exists

REP = (Replicate(), None)
PART = (Partial(), None)


class Plan:
    """A rule's answer: ``targets[i]`` is ``(placement, sizes)`` for tensor input i (None for
    non-tensors), ``out`` the output placement, ``local(d, args, kwargs)`` rewrites the op's
    arguments for device d (global shapes and indices become local ones); ``after(d, out, args)``,
    where given, the result of device d as it is kept (a view's strides mended)."""

    __slots__ = ("targets", "out", "local", "after")

    def __init__(self, targets, out, local=None, after=None):
        self.targets, self.out, self.local, self.after = targets, out, local, after


def _is_tensor(x):
    return isinstance(x, Tensor)


def _shard_axis(t):
    p = t.placement
    return p.axis if isinstance(p, Shard) else None


def _sizes(t):
    return sizes_of(t._value)


def plan_for(cls, args, kwargs):
    rule = RULES.get(cls)
    return None if rule is None else rule(cls, args, kwargs)


# ---- elementwise ------------------------------------------------------------------------
def _keeps_partial(cls, args):
    """Whether ``cls`` on these arguments is linear in its partial inputs, so it may run on each
    device's share and stay partial: sum of shares in, sum of shares out."""
    tensors = [a for a in args if _is_tensor(a)]
    partial = [a.placement.is_partial() for a in tensors]
    if cls in (ew.Add, ew.Sub):
        return all(partial) and len(tensors) == len(args)  # a constant would be added once per device
    if cls in (ew.Neg, sh.Contiguous, sh.Clone):
        return True
    if cls in (ew.Mul, ew.Div) and any(not _is_tensor(a) and not (a * 0 == 0 and (a or cls is ew.Mul)) for a in args):
        return False   # a share times inf (or over 0) is not its part of the result: 0 * inf is NaN
    if cls is ew.Mul:
        return sum(partial) == 1 and all(a.placement.is_replicate() or a.placement.is_partial() for a in tensors)
    if cls is ew.Div:
        return _is_tensor(args[0]) and args[0].placement.is_partial() and sum(partial) == 1 \
            and not (_is_tensor(args[1]) and not args[1].placement.is_replicate())
    return False


def elementwise(cls, args, kwargs, skip=()):
    """Broadcasting ops: the output is sharded where a sharded input spans the output's axis;
    other inputs are cut the same way along that axis, or used whole where they broadcast.
    ``skip``: output axes that must not be sharded (a softmax's axis)."""
    if any(B.is_array(a) and a.ndim > 0 for a in args):
        return None  # raw arrays (e.g. clip bounds) broadcast against the whole tensor
    tensors = [a for a in args if _is_tensor(a)]
    if any(t.placement.is_partial() for t in tensors):
        if _keeps_partial(cls, args):
            return Plan([(PART if t.placement.is_partial() else REP) if _is_tensor(t) else None for t in args],
                        Partial())
        # otherwise partial inputs are summed first (to_locals does it) and act as replicated
    return broadcast_plan(args, skip=skip)


def broadcast_plan(args, core=0, skip=()):
    """The plan of an op that broadcasts its tensor inputs against each other over all but their
    last ``core`` axes (0: every axis, as elementwise ops; 2: the leading axes of attention's
    (..., L, E) inputs): the output is sharded where a sharded input spans one of the output's
    broadcast axes (``skip``: output axes that must not be); the other inputs are cut the same
    way, or used whole where they broadcast along it. None where no input is so sharded."""
    tensors = [a for a in args if _is_tensor(a)]
    # checked: the per-device blocks of shapes that do not broadcast might ((6,) and (4,) over 4: (2,) and (1,))
    out_shape = _broadcast([t.shape[:t.ndim - core] for t in tensors], "broadcast", skip)
    nd = len(out_shape)
    axis = sizes = None
    for t in tensors:
        a = _shard_axis(t)
        if a is None or a >= t.ndim - core:
            continue
        k = a + nd - (t.ndim - core)
        if t.shape[a] == out_shape[k] and k not in skip:
            axis, sizes = k, _sizes(t)
            break
    if axis is None:
        return None
    targets = []
    for x in args:
        if not _is_tensor(x):
            targets.append(None)
            continue
        j = axis - (nd - (x.ndim - core))
        if j < 0 or (x.shape[j] == 1 and out_shape[axis] != 1):
            targets.append(REP)
        else:
            targets.append((Shard(j), sizes))
    return Plan(targets, Shard(axis))


def softmax_like(cls, args, kwargs):
    axis = args[1] if len(args) > 1 else kwargs.get("axis")
    return elementwise(cls, args, kwargs, skip=(axis,))


def along_axis(cls, args, kwargs):
    """Sorts' gathers and running sums (called with ``axis=``): a shard of another axis stays."""
    return elementwise(cls, args, kwargs, skip=(kwargs["axis"],))


# ---- reductions -------------------------------------------------------------------------
def _reduce_args(args, kwargs):
    x = args[0]
    axis = args[1] if len(args) > 1 else kwargs.get("axis")
    keepdims = args[2] if len(args) > 2 else kwargs.get("keepdims", False)
    return x, axis, keepdims


def _kept_axis(a, axes, keepdims):
    return a if keepdims else a - sum(1 for r in axes if r < a)


def reduction(cls, args, kwargs):
    x, axes, keepdims = _reduce_args(args, kwargs)
    if x.placement.is_partial():
        return Plan([PART] + [None] * (len(args) - 1), Partial()) if cls in (reductions.Sum, reductions.Mean) else None
    a = _shard_axis(x)
    if axes is not None and a not in axes:
        return Plan([(Shard(a), _sizes(x))] + [None] * (len(args) - 1), Shard(_kept_axis(a, axes, keepdims)))
    if cls is reductions.Sum:
        return Plan([(Shard(a), _sizes(x))] + [None] * (len(args) - 1), Partial())
    if cls is reductions.Mean:
        count = numel(x.shape) if axes is None else numel(x.shape[r] for r in axes)
        return reductions.Sum.apply(x, axes, keepdims) * (1.0 / count) if count else None
    if not (x.requires_grad and autograd.is_grad_enabled()):     # max/min, nothing to differentiate
        out = gathered_extremum(cls, x, axes, keepdims)
        return None if out is None else Tensor._wrap(out)
    return None  # max/min over the sharded axis with a gradient: axis_rules.extremum runs it before this


def off_shard_reduction(cls, args, kwargs):
    """prod: over other axes the shard stays; over the sharded axis the input is gathered."""
    x, axes, _ = _reduce_args(args, kwargs)
    a = _shard_axis(x)
    return None if a is None or axes is None or a in axes else reduction(cls, args, kwargs)


def gathered_extremum(cls, x, axes, keepdims):
    """max/min (``cls``) of ``x`` over ``axes`` (its sharded axis among them) as an engine array: each
    device reduces its block, then only those small results are gathered and reduced once more.
    None when every block is empty (the gathered op raises numpy's error)."""
    reduce = B.max if issubclass(cls, reductions.Max) else B.min   # the inf-norms' NormMax too
    p = x._placed
    a = p.placement.axis
    blocks = [reduce(s, axis=axes, keepdims=True) for s in p.shards if s.shape[a]]
    if not blocks:
        return None
    blocks = [b if B.is_array(b) else B.asarray(b) for b in blocks]
    return reduce(C.all_gather(blocks, a), axis=axes, keepdims=keepdims)


# ---- layout -----------------------------------------------------------------------------
def reshape(cls, args, kwargs):
    x, shape = args[0], tuple(args[1])
    if x.placement.is_partial():
        return Plan([PART, None], Partial())
    if numel(x.shape) == 0:     # no elements: the sizes below cannot tell the axes apart; gather
        return None
    a, sizes = _shard_axis(x), _sizes(x)
    before = numel(x.shape[:a])
    inner = numel(x.shape[a + 1:])
    for k in range(len(shape)):
        if numel(shape[:k]) != before:
            continue
        rest = numel(shape[k + 1:])
        if rest == 0:
            continue
        new_sizes = [s * inner // rest for s in sizes]
        if all(s * inner == n * rest for s, n in zip(sizes, new_sizes)):
            # blocks of more rows decide as the whole does: the sharded dim joins only inner ones
            one_row = 1 in sizes
            copy = one_row and reshape_layout.torch_copies(x, shape)

            def local(d, largs, kw, k=k, new_sizes=new_sizes):
                block = sh.row_major_copy(largs[0]) if copy else largs[0]
                return [block, shape[:k] + (new_sizes[d],) + shape[k + 1:]], kw
            return Plan([(Shard(a), sizes), None], Shard(k), local, reshape_layout.torch_steps if one_row else None)
    return None


def permute(cls, args, kwargs):
    x, axes = args[0], tuple(args[1])
    if x.placement.is_partial():
        return Plan([PART, None], Partial())
    a = _shard_axis(x)
    return Plan([(Shard(a), _sizes(x)), None], Shard(axes.index(a)))


def expand(cls, args, kwargs):
    x, shape = args[0], tuple(args[1])
    if x.placement.is_partial():
        return Plan([PART, None], Partial())
    a, sizes = _shard_axis(x), _sizes(x)
    k = a + len(shape) - x.ndim
    if x.shape[a] != shape[k]:
        return None

    def local(d, largs, kw):
        return [largs[0], shape[:k] + (sizes[d],) + shape[k + 1:]], kw
    return Plan([(Shard(a), sizes), None], Shard(k), local)


def cat(cls, args, kwargs):
    axis = kwargs.get("axis", 0)
    return _stacked(args, kwargs, lambda a: a if a != axis else None, lambda a: a)


def stack(cls, args, kwargs):
    axis = kwargs.get("axis", 0)
    return _stacked(args, kwargs, lambda a: a, lambda a: a if a < axis else a + 1)


def _stacked(args, kwargs, allowed, out_axis):
    """cat/stack: local when every input is cut the same way along an axis that is not joined."""
    lead = next((t for t in args if _is_tensor(t) and isinstance(t.placement, Shard)), None)
    if lead is None or any(_is_tensor(t) and t.placement.is_partial() for t in args):
        return None
    a, sizes = lead.placement.axis, _sizes(lead)
    if allowed(a) is None:
        return None
    return Plan([(Shard(a), sizes) if _is_tensor(t) else None for t in args], Shard(out_axis(a)))


def getitem(cls, args, kwargs):
    x, index = args[0], args[1]
    if x.placement.is_partial():
        return Plan([PART, None], Partial())
    parts = _expand_index(index, x.ndim)
    if parts is None:
        return None
    a, sizes = _shard_axis(x), _sizes(x)
    arrays = [p for p in parts if B.is_array(p)]
    if len(arrays) > 1 or (arrays and any(_is_int(p) for p in parts)):
        return None  # numpy's rules for several advanced indices move axes around: gather
    # the sharded axis's position in the output, and the axis it indexes
    pos, dim = 0, 0
    entry = where = None
    for i, p in enumerate(parts):
        if p is None:
            pos += 1
            continue
        if dim == a:
            entry, where = p, i
            break
        if isinstance(p, slice):
            pos += 1
        elif B.is_array(p):
            pos += 1 if B.is_bool(p) else p.ndim
            dim += p.ndim - 1 if B.is_bool(p) else 0
        dim += 1
    if _is_int(entry) and not arrays and -x.shape[a] <= entry < x.shape[a]:
        # one position of the sharded axis: its owner keeps a 1-long slice, only that piece is
        # gathered (not the whole tensor), and the axis is then dropped
        i = entry % x.shape[a]
        sliced = list(parts)
        sliced[where] = slice(i, i + 1)
        piece = sh.GetItem.apply(x, tuple(sliced)).replicate()
        row = sh.GetItem.apply(piece, (slice(None),) * pos + (0,))
        index = (*parts[:where], i, *parts[where + 1:])
        inplace_grad.mark_copy_of_shard_row(row, (x, index, where))     # a change of the row is written back
        mesh_row_follow.keep(row, x, index, where)         # and a change of x refreshes the row
        return row
    if not isinstance(entry, slice):
        return None  # an integer array on the sharded axis: gathered
    start, stop, step = entry.indices(x.shape[a])
    if step < 0:
        return None
    locals_, out_sizes = [], []
    for off, n in zip(offsets(sizes), sizes):
        # global positions start, start+step, ... below stop that fall in [off, off+n)
        first = start if start >= off else start + -(-(off - start) // step) * step
        last = min(stop, off + n)
        count = max(0, -(-(last - first) // step)) if first < last else 0
        lo = first - off
        locals_.append(slice(lo, lo + count * step if count else lo, step) if count else slice(0, 0))
        out_sizes.append(count)

    def local(d, largs, kw):
        idx = list(parts)
        idx[where] = locals_[d]
        return [largs[0], tuple(idx)], kw
    return Plan([(Shard(a), sizes), None], Shard(pos), local)


def _is_int(p):
    return isinstance(p, int) and not isinstance(p, bool)


def _expand_index(index, ndim):
    """The index as one entry per axis (plus None for new axes), Ellipsis filled with slices;
    None when it holds something this rule does not follow (booleans, arrays of bools over
    several axes)."""
    parts = list(index) if isinstance(index, tuple) else [index]
    used = 0
    for p in parts:
        if p is None or p is Ellipsis:
            continue
        if isinstance(p, bool):
            return None
        if B.is_array(p) and B.is_bool(p):
            if p.ndim != 1:
                return None
            used += 1
        else:
            used += 1
    ellipses = [i for i, p in enumerate(parts) if p is Ellipsis]
    if len(ellipses) > 1:
        return None
    fill = [slice(None)] * (ndim - used)
    if ellipses:
        i = ellipses[0]
        parts = parts[:i] + fill + parts[i + 1:]
    else:
        parts = parts + fill
    return parts


# ---- linear algebra ---------------------------------------------------------------------
def matmul(cls, args, kwargs):
    a, b = args
    if a.ndim < 2 or b.ndim < 2:
        return None
    pa, pb = a.placement, b.placement
    if pa.is_partial() or pb.is_partial():
        if pa.is_partial() and pb.is_replicate():
            return Plan([PART, REP], Partial())
        if pb.is_partial() and pa.is_replicate():
            return Plan([REP, PART], Partial())
        return None
    nd = max(a.ndim, b.ndim)
    out_batch = _broadcast([a.shape[:-2], b.shape[:-2]])
    # the first sharded operand decides
    if isinstance(pa, Shard):
        ax, sizes = pa.axis, _sizes(a)
        if ax == a.ndim - 1:  # contraction axis: b must be cut the same way along its rows
            if 0 in sizes and a.ndim > 2 and b.ndim == 2:
                # A device with an empty contraction block would run Matmul.backward on a
                # (..., 0) @ (0, m) product, whose x@W fast path reshapes to (-1, 0) and fails
                # (gt/ops/linalg.py): gather instead (only when the axis is shorter than the mesh).
                return None
            return Plan([(pa, sizes), (Shard(b.ndim - 2), sizes)], Partial())
        if ax == a.ndim - 2:  # rows
            return Plan([(pa, sizes), REP], Shard(nd - 2))
        return _batch_plan(a, b, ax, sizes, nd, out_batch, first=True)
    ax, sizes = pb.axis, _sizes(b)
    if ax == b.ndim - 1:  # columns
        return Plan([REP, (pb, sizes)], Shard(nd - 1))
    if ax == b.ndim - 2:
        if 0 in sizes and a.ndim > 2 and b.ndim == 2:
            return None  # an empty contraction block: see above
        return Plan([(Shard(a.ndim - 1), sizes), (pb, sizes)], Partial())
    return _batch_plan(b, a, ax, sizes, nd, out_batch, first=False)


def _batch_plan(s, other, ax, sizes, nd, out_batch, first):
    """A shard of a batch axis of ``s``: ``other`` is cut the same way along its matching axis,
    or used whole where it has none or broadcasts."""
    k = ax + nd - s.ndim
    if s.shape[ax] != out_batch[k]:
        return None  # a size-1 axis that broadcasts
    j = k - (nd - other.ndim)
    if j < 0 or other.shape[j] == 1:
        t_other = REP
    else:
        t_other = (Shard(j), sizes)
    targets = [(Shard(ax), sizes), t_other] if first else [t_other, (Shard(ax), sizes)]
    return Plan(targets, Shard(k))


def linear(cls, args, kwargs):
    x = args[0]
    a = _shard_axis(x)
    if x.placement.is_partial() or a is None or a == x.ndim - 1:
        return None
    if any(_is_tensor(t) and not t.placement.is_replicate() for t in args[1:]):
        return None
    return Plan([(Shard(a), _sizes(x))] + [REP if _is_tensor(t) else None for t in args[1:]], Shard(a))


def layer_norm(cls, args, kwargs):
    x = args[0]
    n_axes = args[3] if len(args) > 3 else kwargs.get("n_axes", 1)
    a = _shard_axis(x)
    if x.placement.is_partial() or a is None or a >= x.ndim - n_axes:
        return None
    if any(_is_tensor(t) and not t.placement.is_replicate() for t in args[1:3]):
        return None
    return Plan([(Shard(a), _sizes(x))] + [REP if _is_tensor(t) else None for t in args[1:]], Shard(a))


RULES = {cls: elementwise for cls in (
    ew.Add, ew.Sub, ew.Mul, ew.Div, ew.FloorDivide, ew.Pow, ew.Neg, ew.Abs, ew.Exp, ew.Log, ew.Sqrt, ew.Maximum,
    ew.Minimum, ew.Clip, ew.Where, ew.Cast, lerp.Lerp, act.Relu, act.Sigmoid, act.Tanh, act.Gelu,
    act.BinaryCrossEntropy, act.BinaryCrossEntropyWithLogits, mf.MathFunction, mf.BinaryMathFunction, mf.Logit,
    sh.Contiguous, sh.Clone)}
RULES.update({
    act.Softmax: softmax_like, act.LogSoftmax: softmax_like,
    sorting.TakeAlongAxis: along_axis, sorting.Cumsum: along_axis, mf.Cumprod: along_axis, mf.Prod: off_shard_reduction,
    reductions.Sum: reduction, reductions.Mean: reduction, reductions.Max: reduction, reductions.Min: reduction,
    sh.Reshape: reshape, sh.Permute: permute, sh.Expand: expand, sh.GetItem: getitem,
    sh.Cat: cat, sh.Stack: stack,
    linalg.Matmul: matmul, linalg.Linear: linear, linalg.LinearRelu: linear, linalg.LayerNorm: layer_norm,
})
# the rules of the fused attention ops and the embedding lookup: model_rules.py (it adds them here)
