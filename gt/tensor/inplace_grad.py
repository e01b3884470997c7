"""In-place changes recorded on the tape, as torch records them: ``y[0] = z``, ``y.add_(1)``,
``y *= w``, ``y.copy_(z)``... on a tensor that requires grad, or with a value that does, while
gradients are recorded (gt/tensor/inplace.py sends them here; under ``no_grad`` they stay plain
writes).

``rebase(t, what, compute, *values)`` computes the new values out of place, as recorded ops, from
``old``: a new tensor that takes over ``t``'s ``grad_fn`` and stands for its values before the
change. The result is written into ``t``'s own memory (views, aliases and version counters see
the change: a backward that saved the old values raises, as in torch) and its op becomes ``t``'s
``grad_fn``. Ops recorded before the change send their gradients to ``old`` and views of ``t``
taken before it follow ``t`` (gt/autograd/rebind.py). Item assignment, ``copy_`` and ``fill_``
write straight into ``t`` (``IndexPut``: no copy of ``t``); arithmetic that reads ``t`` again in
its backward (``mul_``, ``div_``) computes from a copy, as torch saves ``self`` for those.

An in-place change of a view of a tensor in the graph (``y[1].add_(1)``, ``y[i] += z``) changes
that tensor too, as in torch: the view's new values are written through to it (``WriteView``)
and the view becomes its view ops applied to the changed tensor. Views made by indexing,
``reshape``/``view``, ``permute``/``transpose``, ``diagonal``, ``as_strided``/``unfold`` are
written through; where gt cannot follow torch, it refuses with an error instead of giving a
wrong gradient: a view made by another op (an expanded tensor; views over the mesh: gt/tensor/
mesh_alias_write.py, mesh_view_write.py, and forward AD's), an ``as_strided`` view whose elements
overlap or reach memory outside the tensor it views; over the mesh, a value that requires grad
written into an unrecorded view (mesh_alias_write.py); and, in the backward, an op that read such
a view taken before a value requiring grad was written into its tensor (gt/autograd/rebind.py).

Mixed into nothing: functions of tensors. ``Tensor`` below is bound by gt/tensor/core.py.
"""

import copy
import weakref

import numpy as np

from gt.autograd import forward_ad, grad_hooks, levels, rebind, views
from gt.autograd.function import is_grad_enabled, new_epoch, no_grad_views, sequence
from gt.autograd.grad_mode import mode
from gt.backend import B
from gt.errors import ShapeError
from gt.ops._shapes import broadcast_shape
from gt.ops import shape as shape_ops
from gt.ops.inplace import IndexPut, WriteView
from gt.tensor import inplace_values
from gt.tensor.shared_input import SHARED, refuse_shared_input  # noqa: F401  (their callers name them here)
from gt.sharding import layout
from gt.tensor._args import _scalar
from gt.tensor.shape import index_error_text

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py
mesh_alias = None  # gt/tensor/mesh_alias_write.py, bound by gt/tensor/core.py (it imports this module)
mesh_row = None  # gt/tensor/mesh_row_write.py, bound by gt/tensor/core.py (it imports this module)

# The ops that made a tensor by a recorded in-place change: their output shares its input's
# memory because it *is* that memory, written; it is no view.
_written = weakref.WeakSet()

LEAF = "a leaf Variable that requires grad is being used in an in-place operation."
VIEW_OF_LEAF = "a view of a leaf Variable that requires grad is being used in an in-place operation."
HINT = ("change it under no_grad, as an optimizer does: `with gt.no_grad(): param -= lr * param.grad`, or change a "
        "copy (x = x.clone())")


# Copies that gt makes of (a view of) a tensor sharded over the mesh, not views of it: id -> (weak reference, the
# words of the refusal of a change of one, or for ``x[i]`` what gt/tensor/mesh_row_write.py writes it back with).
copies_of_shard_rows = {}


class ItemCopy(str):
    """The ``why`` of a copy an index made (``x[::3]`` across the blocks): ``x[i] += w`` writes it back."""


def mark_copy_of_shard_row(t, why=None):
    key = id(t)
    copies_of_shard_rows[key] = weakref.ref(t, lambda _, k=key, table=copies_of_shard_rows: table.pop(k, None)), why


def recorded(t, values, check=True, op=None):
    """``records`` while gradients are recorded; under ``no_grad``, whether a tangent of forward AD
    changes with the values (gt/autograd/forward_ad.py), else a plain write. ``op``: torch's name
    of the in-place op (``add_``), for ``refuse_captured``'s error."""
    if mode.level:
        refuse_captured(t, op, values)
    if is_grad_enabled():
        return records(t, values, check)
    return forward_ad.dual_write(t, values) and t.dtype.differentiable


def records(t, values, check=True):
    """Whether an in-place change of ``t`` by ``values`` goes on the tape while gradients are
    recorded (the caller asks ``is_grad_enabled()`` first: an optimizer's step under ``no_grad``
    pays that one call); raises torch's error for a leaf that requires grad. ``check=False``:
    ``v[i] += w`` (Python writes the result back with ``v[i] = ...``), allowed on a copy gt makes of a view
    over the mesh (gt/tensor/mesh_row_write.py)."""
    if check and copies_of_shard_rows:
        mesh_row.refuse(t, "an in-place change")      # (a row x[i] is written back: ``rebase``)
    if t._requires_grad:
        if t._ctx is None:
            raise RuntimeError(f"{LEAF} ({HINT})")
        if type(t._ctx) is views.NoGradView:
            raise RuntimeError(views.NO_GRAD_WRITE)
        return True
    with_grad = any(isinstance(v, Tensor) and v._requires_grad for v in values)
    if no_grad_views and getattr(t, "_view", None) is not None:     # an unrecorded view (gt/autograd/views.py)
        views.refuse_write(t, with_grad)
    # a value that requires grad written into an integer tensor is a plain write, as torch's (no gradient);
    # a dual tensor's tangent changes with it (gt/autograd/forward_ad.py)
    return with_grad and t.dtype.is_floating_point or forward_ad.dual_write(t, values) and t.dtype.differentiable


CAPTURED = ("During a grad (vjp, jvp, grad, etc) transform, the function provided attempted to call in-place "
            "operation ({}) that would mutate a captured Tensor. This is not supported; please rewrite the function "
            "being transformed to explicitly accept the mutated Tensor(s) as inputs.")


def refuse_captured(t, op=None, values=(), shape=False):
    """torch's error for an in-place change of ``t`` inside the function of a ``gt.func`` transform
    (asked while ``mode.level`` is set) where ``t`` is captured: neither one of the tensors the
    function was called with nor made at this level or a deeper one (gt/autograd/levels.py), nor a
    view of such a tensor (a view of a captured tensor is captured too, as torch's). ``vmap``
    (``level_refusal``) refuses a mapped slice written (batched) and a tensor captured for a
    derivative transform around it; gt makes the others once, as torch's (``levels.made_once``)."""
    inputs, level, outer, written = mode.level_inputs, mode.level, mode.derivative, t
    while id(t) not in inputs:
        link = getattr(t, "_view", None)     # an unrecorded view (gt/autograd/views.py)
        up = link[0] if link is not None and t._ctx is None else view_base(t)
        if outer is not None and id(t) in outer[1]:
            outer = None        # an input of the derivative transform around this vmap
        if up is None:
            stamp = getattr(t, "_level", 0)
            if stamp >= level:
                return
            refusal = mode.level_refusal
            if refusal is None or outer is not None and stamp < outer[0]:
                raise RuntimeError(CAPTURED.format(f"aten::{op}" if op else "an in-place op"))
            if any(isinstance(v, Tensor) and _in_inputs(v, inputs) for v in values):
                raise RuntimeError(refusal(written, op, t))     # a mapped slice or a view of one: batched
            made = any(isinstance(v, Tensor) and getattr(v, "_level", 0) >= level for v in values)
            levels.made_once(t, rebind.current_epoch(), made, op)
            return
        t = up


def _in_inputs(v, inputs):
    """Whether ``v`` is one of the level's ``inputs`` or a view of one."""
    while v is not None and id(v) not in inputs:
        link = getattr(v, "_view", None)
        v = link[0] if link is not None and v._ctx is None else view_base(v)
    return v is not None


def check_captured(t, op, values=(), shape=False):
    """``refuse_captured`` inside a transform's function, nothing outside (one question)."""
    if mode.level:
        refuse_captured(t, op, values, shape)


_NO_INDEX = object()     # refuse_overlap's default: no item assignment (None is an index)


def refuse_overlap(t, uniform=False, index=_NO_INDEX):
    """torch's error for a write into a tensor whose elements share memory (an ``expand``ed one),
    before anything is written. ``uniform``: a write of one value everywhere the elements are
    (``fill_``), which torch allows; where the engine cannot make it (a read-only array), says so.
    ``index``: an item assignment ``t[index] = ...`` (engine terms), which torch refuses where the
    elements it writes through a view (a basic index) share memory, and allows at index arrays.
    Returns whether ``t`` is one array whose elements share memory (and the write goes on)."""
    p = t._placed
    if p is None:                      # the common case, on every optimizer update: one engine call
        one = B.write_refusal(t._array)
        if one is None:
            return
        why = {one}
    else:
        why = {B.write_refusal(a) for a in p.shards} - {None}
    if "read-only view" in why:
        raise RuntimeError("gt's numpy engine cannot write into this tensor: its memory is read-only (an array numpy "
                           "marked read-only, such as one of numpy's broadcast views), where torch writes through: "
                           "write into the tensor it views, or into a clone()")
    if "read-only" in why and uniform:
        raise RuntimeError("this tensor's elements share memory that is read-only (one of numpy's broadcast views) "
                           "and gt's numpy engine cannot write into it (torch writes the value into the shared "
                           "memory): write into the tensor it views, or into a clone()")
    if why and not uniform or index is not _NO_INDEX and _basic(index) and (
            B.write_refusal(B.getitem(t._array, index)) == "overlap" if p is None
            else "overlap" in why and _written_view_overlaps(p, index)):
        raise RuntimeError("unsupported operation: more than one element of the written-to tensor refers to a "
                           "single memory location. Please clone() the tensor before performing the operation.")
    return p is None and "overlap" in why


def _written_view_overlaps(p, index):
    """Whether ``t[index]`` of a sharded tensor whose blocks share memory along some dims (an
    expanded tensor: ``p.shards``) keeps such a dim of more than one element: the index is applied
    to a stand-in of the whole's shape, expanded along the same dims as the blocks."""
    block = p.shards[0]
    kept = [1 if step == 0 and n > 1 else size for n, step, size in zip(block.shape, B.element_strides(block),
                                                                       p.shape)]
    written = np.broadcast_to(np.empty(kept, dtype=np.int8), p.shape)[index]
    return any(n > 1 and step == 0 for n, step in zip(written.shape, written.strides))


def _basic(index):
    return not any(B.is_array(p) for p in (index if isinstance(index, tuple) else (index,)))


def rebase(t, what, compute, *values, reads_self=False, same_shape=False, saves_result=False):
    """Record ``t <- compute(old, *values)`` in place (see the module docstring); returns ``t``.
    ``reads_self``: the backward of ``compute`` reads ``old``'s values, so it gets a copy.
    ``same_shape``: each value must broadcast to ``t``'s shape (arithmetic; an item assignment's
    value is checked by the write). ``saves_result``: see ``result_saved``."""
    if copies_of_shard_rows and (back := mesh_row.refuse(t, what, False)) is not None:     # x[i] of a sharded x
        return mesh_row.written(back, rebase, t, what, compute, *values, reads_self=reads_self,
                                same_shape=same_shape, saves_result=saves_result)
    refuse_overlap(t)
    dual = forward_ad.dual_write(t, values)
    if dual and (not is_grad_enabled() or not t._requires_grad and
                 not any(isinstance(v, Tensor) and v._requires_grad for v in values)):
        return _dual_write(t, compute, values, reads_self)
    if t._ctx is None and getattr(t, "_view", None) is not None:
        views.attach(t)       # a view of a tensor that requires no grad: written through, as torch's
    _check(t, what, values, same_shape)
    chain = _view_chain(t, what, dual)
    if chain is None:         # an alias or a view over the mesh (gt/tensor/mesh_alias_write.py, mesh_view_write.py)
        return mesh_alias.rebase(t, compute, values, reads_self, saves_result, dual)
    old = _old_version(t)
    if dual:
        forward_ad.carry(old, t)
    new = inplace_values.new_values(t, old, compute, values, reads_self)
    if t._placed is None and new._placed is None and new._array is t._array:
        if not B.counts_inplace_ops:      # written in place by the op (IndexPut)
            B.bump_version(t._array)
    else:
        t._update(_assign, new._value, check=False)
    if saves_result:
        result_saved(t, new)
    if chain:
        _write_through(new, chain, old)
        # the views of those, unrecorded, follow (gt/autograd/views.py)
        views.wake(*[view for view, _, _ in chain], chain[-1][1])
    else:
        if new._ctx is not None:
            _written.add(new._ctx)
        t._ctx, t._requires_grad = new._ctx, new._requires_grad
        rebind.changed(t, old, new_epoch())
        views.wake(t)
    _follow(values, what)
    inplace_values.read_before(values, Tensor)
    if dual:
        forward_ad.written(t, new)
    return t


def _follow(values, what):
    """A value that is a view of the tensor just changed (``y[5] = s`` with ``s = y[0]``) stays a live view
    of it, as torch's: it is made to follow the change now (a later ``s.mul_(3)`` is a change of ``y``'s
    new version; ``read_before`` alone pointed ``s`` at ``y``'s old one, losing their gradient), and the
    op of the change reads its version of before (``rebind.resolve`` at the walk)."""
    for v in values:
        if isinstance(v, Tensor) and v._ctx is not None and view_base(v) is not None:
            try:
                _view_chain(v, what)
            except RuntimeError:
                pass         # a view gt cannot replay: it keeps reading its version of before


def _dual_write(t, compute, values, reads_self):
    """``rebase`` of a tensor in no graph where a tangent is involved: the new values computed with
    their tangent, written into ``t``, and ``t``'s tangent updated (gt/autograd/forward_ad.py)."""
    new = inplace_values.new_values(t, t, compute, values, reads_self)
    if t._placed is None and new._placed is None and new._array is t._array:
        if not B.counts_inplace_ops:      # written in place by the op (IndexPut)
            B.bump_version(t._array)
    else:
        t._update(_assign, new._value, check=False)
    forward_ad.written(t, new)
    return t


def result_saved(t, value):
    """Say that ``value`` (the recorded new values of an in-place op, now written into ``t``) is what
    torch's backward of that op reads from ``t`` (``exp_``, ``relu_``, ``sigmoid_``...: its result): a
    later in-place change of ``t`` then raises torch's error in the backward. gt computed from its
    own copy, but would otherwise give a gradient where torch refuses."""
    ctx = value._ctx
    if ctx is not None and t._placed is None and value._placed is None:
        ctx.written = ((t._array,), B.versions_of((t._array,)))


def _old_version(t):
    """A new tensor standing for ``t``'s values before a change (the same memory, ``t``'s
    ``grad_fn`` and hooks): what the ops recorded so far read."""
    old = Tensor._from_value(t._value)
    old._ctx, old._requires_grad = t._ctx, t._requires_grad
    grad_hooks.move(t, old)              # torch's hooks stay with the values they were registered on
    return old


def _write_through(new, chain, old_view):
    """The view at the bottom of ``chain`` (``(view, the tensor it is a view of, its replay)``
    from the view up) holds ``new``'s values: record the change of the tensor at the top
    (``WriteView``) and make every view of the chain a view of the changed tensor (torch
    regenerates them the same way). ``old_view``: the changed view's version of before."""
    links = [link for _, _, link in reversed(chain)]   # from the top down

    def replay(a):
        for forward, _ in links:
            a = forward(a)
        return a

    def embed(h):
        for _, backward in reversed(links):
            h = backward(h)
        return h

    top = chain[-1][1]
    old = _old_version(top)
    out = WriteView.apply(old, new, replay, embed)
    top._ctx, top._requires_grad = out._ctx, True
    _written.add(out._ctx)
    epoch = new_epoch()
    rebind.changed(top, old, epoch)
    _reattach(chain, epoch, old_view)


def _reattach(chain, epoch, old_view=None):
    """Make each view of ``chain`` read the current version of the tensor above it from ``epoch``
    on (its view op again, stamped ``epoch``); ops recorded before read the versions of before
    (``old_view``: the bottom view's, when already taken)."""
    olds = []
    for i, (view, _, _) in enumerate(chain):
        old = old_view if i == 0 and old_view is not None else _old_version(view)
        view._ctx = copy.copy(old._ctx)
        view._ctx.epoch = epoch
        view._ctx.previous = old     # rebind holds versions weakly: this op keeps the one before it
        view._requires_grad = True
        rebind.changed(view, old, epoch)
        olds.append(old)
    for view, _, _ in reversed(chain):    # numbered from the top down: each after what it views
        view._ctx.seq = next(sequence)
    for old in olds:                 # their ops read the tensors above as they were: no cycle through them
        rebind.resolve(old._ctx)


def _view_chain(t, what, dual=False):
    """``[(view, the tensor it is a view of, (replay, embed)), ...]`` from ``t`` up to a tensor that is
    no view; empty when ``t`` is none, None for a view over the mesh (gt/tensor/mesh_alias_write.py). A view
    taken before a change of what it views is first made to follow it. Raises where gt cannot."""
    chain, q = [], t
    while (base := view_base(q)) is not None:
        link = _link(q._ctx)
        if link is None and type(q._ctx) is shape_ops.AsStrided:
            raise RuntimeError(
                f"{what}: this tensor is an as_strided/unfold view of a tensor in the graph whose elements "
                f"{q._ctx.layout.write_refusal()}: gt cannot record this change (torch writes it through "
                "as_strided_scatter); write into that tensor instead, or change a copy (v = v.clone())")
        if link is None:
            if mesh_alias.writable(t, dual):
                return None
            raise mesh_alias.refusal(what, q)
        chain.append((q, base, link))
        q = base
    if any(rebind.version_at(above, view._ctx.epoch) is not above for view, above, _ in chain):
        _reattach(chain, new_epoch())
    return chain


def _link(ctx):
    """``(forward, backward)`` of a view op on plain arrays, or None where gt cannot replay it (an
    expanded tensor, which repeats positions; a view made over the mesh)."""
    kind = type(ctx)
    if kind not in (shape_ops.GetItem, shape_ops.Reshape, shape_ops.Permute, shape_ops.Diagonal,
                    shape_ops.AsStrided) or kind is shape_ops.AsStrided and ctx.layout.write_refusal():
        return None
    ctx = copy.copy(ctx)
    ctx.inputs = ()      # replaying it needs no tensor: no cycle through the changed tensor's op
    ctx.__dict__.pop("previous", None)
    if kind is shape_ops.AsStrided:
        return ctx.replay, lambda h: ctx.backward(h)[0]
    # forward takes an engine array, or a tensor for a recorded gradient (create_graph=True)
    if kind is shape_ops.GetItem:
        def forward(a):
            return shape_ops.GetItem.apply(a, ctx.index) if isinstance(a, Tensor) else B.getitem(a, ctx.index)
    elif kind is shape_ops.Reshape:
        def forward(a):
            return shape_ops.Reshape.apply(a, ctx.out_shape) if isinstance(a, Tensor) else B.reshape(a, ctx.out_shape)
    elif kind is shape_ops.Diagonal:
        def forward(a):
            return shape_ops.Diagonal.apply(a, *ctx.args) if isinstance(a, Tensor) else B.diagonal_view(a, *ctx.args)
    else:
        axes = tuple(sorted(range(len(ctx.inverse)), key=ctx.inverse.__getitem__))   # Permute's own

        def forward(a):
            return shape_ops.Permute.apply(a, axes) if isinstance(a, Tensor) else B.transpose(a, axes)
    return forward, lambda h: ctx.backward(h)[0]


def assign(t, index, value, what="item assignment"):
    """``t[index] = value`` recorded on the tape (``index`` already in engine terms)."""
    if not isinstance(value, Tensor):
        value = _scalar(value)
        if not isinstance(value, (int, float, bool)):
            value = B.asarray(value)
    try:
        return rebase(t, what, lambda x, v: IndexPut.apply(x, v, index), value, same_shape=index is Ellipsis)
    except IndexError as exc:
        raise IndexError(index_error_text(exc, t.shape)) from None


def view_base(t):
    """The input of ``t``'s op that ``t`` is a view of (shares memory with), or None."""
    ctx = t._ctx
    if ctx is None or ctx.released or ctx in _written:
        return None
    mine = _memory(t)
    for p in ctx.inputs:
        if isinstance(p, Tensor) and p is not t and not mine.isdisjoint(_memory(p)):
            return p
    return None


def _memory(t):
    p = t._placed
    return {id(B.memory_owner(a)) for a in ((t._array,) if p is None else p.shards)}


def refuse_view_of_leaf(t, what=None):
    """Refuse an in-place change of ``t`` where it is a view of a leaf that requires grad, as torch's."""
    root = t
    while (up := view_base(root)) is not None:
        root = up
    if root is not t and root._ctx is None and root._requires_grad:
        raise RuntimeError(f"{VIEW_OF_LEAF} ({what + ': ' if what else ''}{HINT})")


def _check(t, what, values, same_shape):
    if not (t.dtype.is_floating_point or t.dtype.is_complex):
        raise RuntimeError(f"{what}: a value that requires grad cannot be written into a tensor of dtype {t.dtype!r}: "
                           "only floating point tensors carry gradients")
    refuse_view_of_leaf(t)
    mesh_alias.refuse_unrecorded_view(t)
    if same_shape:
        for v in values:
            shape = layout.shape_of(v._value if isinstance(v, Tensor) else v) if not isinstance(v, (int, float)) else ()
            if broadcast_shape(what, t.shape, shape) != t.shape:
                raise ShapeError(f"{what}: a value of shape {shape} cannot be written into shape {t.shape}")


def _assign(a, v):
    a[...] = v
