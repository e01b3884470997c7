"""A row ``x[i]`` of a tensor ``x`` sharded along the dim ``i`` indexes follows later in-place changes of
``x`` (``x.mul_(2)``, ``x[3] = v``, ``x[2:5].zero_()``, an optimizer's step, a change through another
``x[3]``), as torch's view does.

gt makes such a row as a copy of its owner's row gathered to one device (gt/tensor/rules.py,
``getitem``); a change of the row is written back into ``x`` (gt/tensor/mesh_row_write.py). This
module is the other way: ``keep`` holds each live row (a weak reference) with the versions of
``x``'s blocks when its values were taken, and ``refresh``, called after an in-place change of a
sharded tensor (``_update``'s write into the blocks, item assignment, ``bump_versions``), copies the
new values of each row whose ``x`` changed into the row's own memory (its views see them) and counts a
change of the row (torch's view shares its base's version counter: a backward that saved the row
then raises). Where the change was made with gradients recorded, the row then gets torch's new
history, ``x[i]`` of the changed ``x`` (``follow``, run by gt/autograd/views.py's ``wake`` once the
change is recorded, as for the other views of ``x``). The other copies gt gathers to one device for
torch's views of a sharded tensor (a reshape or diagonal across the blocks, ``unfold``, ``as_strided``)
follow the same way (``keep_copy``: their op run again on the changed tensor). An in-place change of
``x``'s shape while such a copy lives is refused: the copy could not follow the new layout.

Nothing here runs while no such row is alive: a write on one device does not come here, and one over
the mesh pays one test of an empty dict.
"""

import weakref

from gt.autograd import function, rebind, views
from gt.backend import B
from gt.sharding import layout
from gt.sharding.placement import Shard, offsets
from gt.tensor import inplace_grad

# id(row) -> [weak reference to the row, x, index, where, versions of x's blocks the row's values are of, x's shape,
# whether it was taken under no_grad]; for another copy (``keep_copy``), what makes it again instead of the index and
# None for where
rows = {}
_back = set()       # ids of rows being written back into their x (mesh_row_write.written): their values are x's
_pending = {}       # id(row) -> weak reference to a row refreshed while gradients are recorded (``follow``)

_NEW_SHAPE = ("an in-place change of shape ({}; t_, transpose_, squeeze_, resize_, set_...) of a tensor x sharded "
              "over the mesh while a row x[i] (or a reshape, diagonal, unfold, as_strided) taken before is alive: gt "
              "made it as a copy gathered to one device, which follows later changes of x but cannot follow its new "
              "layout (torch's view would); take it after the change of shape, or a copy of it on purpose "
              "(x[i].clone()), or drop it first")


def keep(row, x, index, where):
    """Make ``row``, ``x[index]`` gathered from the block that holds ``index[where]`` (an int on the
    sharded dim), follow later in-place changes of ``x``."""
    key = id(row)
    rows[key] = [weakref.ref(row, lambda _, k=key: rows.pop(k, None)), x, index, where, _versions(x), x.shape,
                 not function.is_grad_enabled()]


def refuse_new_shape(t, op):
    """Refuse ``op``, an in-place change of ``t``'s shape or memory, while a copy kept here of ``t``
    lives, before anything changes (``refresh`` finds the new shape only after it is made; a square
    ``t_()`` keeps the shape, and the row would take the transposed tensor's row, silently)."""
    for entry in list(rows.values()):
        if entry[1] is t and entry[0]() is not None:
            raise RuntimeError(_NEW_SHAPE.format(op))


def keep_copy(out, x, remake):
    """The same for ``out``, another copy gt gathers to one device for torch's view of the sharded
    ``x`` (a reshape or diagonal across the blocks, ``unfold``, ``as_strided``); ``remake()`` makes it
    again from ``x`` (recorded while gradients are)."""
    if x._placed is None:
        return
    if out._array is not None:
        _drop_copies_in(B.memory_owner(out._array))
    key = id(out)
    rows[key] = [weakref.ref(out, lambda _, k=key: rows.pop(k, None)), x, remake, None, _versions(x), x.shape,
                 not function.is_grad_enabled()]


def _drop_copies_in(owner):
    """Stop following the copies that lie in ``owner``'s memory: copies gt made on the way to a copy
    that views that memory (diagonal's flattened planes), which follows by itself; followed both,
    each change would be counted twice on their shared version."""
    for key, entry in list(rows.items()):
        kept = entry[0]()
        if kept is not None and kept._array is not None and B.memory_owner(kept._array) is owner:
            del rows[key]


def _versions(x):
    """The versions of ``x``'s memory now (each block's: a write into one block may leave the
    greatest as it was)."""
    p = x._placed
    return B.version_of(x._array) if p is None else tuple([B.version_of(s) for s in p.shards])


def _changes(now, was):
    """How many changes of ``x`` to count on its row: as many as ``x._version`` grew by (torch's view
    shares its base's counter), at least one (a write into a block below the greatest version)."""
    return max(1, _greatest(now) - _greatest(was))


def _greatest(versions):
    return max(versions) if type(versions) is tuple else versions


def owner(x, index, where):
    """``(block, index into it)`` of the one block of ``x`` that holds ``x[index]``, or None where
    ``x`` is no longer sharded along that dim."""
    p = x._placed
    dim = sum(1 for part in index[:where] if part is not None)     # (None: a new axis, no dim of x)
    if p is None or not isinstance(p.placement, Shard) or p.placement.axis != dim:
        return None
    i = index[where]
    for shard, off, n in zip(p.shards, offsets(p.sizes), p.sizes):
        if off <= i < off + n:
            return shard, index[:where] + (i - off,) + index[where + 1:]
    return None


def refresh():
    """After an in-place change of a sharded tensor: each live row whose tensor changed since its
    values were taken gets the new values, in its own memory, and counts a change."""
    for entry in list(rows.values()):
        row = entry[0]()
        if row is None:
            continue
        x, index, where, was, shape, _ = entry[1:]
        now = _versions(x)
        if now == was:
            continue
        entry[4] = now
        if x.shape != shape:
            rows.pop(id(row), None)
            raise RuntimeError(_NEW_SHAPE.format(f"{tuple(shape)} to {tuple(x.shape)}"))
        if id(row) in _back:
            continue
        B.setitem(row._array, Ellipsis, _values(x, index, where))
        for _ in range(_changes(now, was) - bool(B.counts_inplace_ops)):     # (torch's engine counted the write)
            B.bump_version(row._array)
        if function.is_grad_enabled():
            _pending[id(row)] = entry[0]
            views.rows_follow = follow


def _values(x, index, where):
    """The values of ``x[index]`` now, or of ``index()`` (``keep_copy``'s remake) where ``where`` is None."""
    if where is None:
        with function.no_grad():
            new = index()
        return new._array if new._placed is None else layout.materialize(new._placed)
    found = owner(x, index, where)
    p = x._placed
    return B.getitem(*found) if found is not None else B.getitem(x._array if p is None else layout.materialize(p),
                                                                 index)


def written_back(row):
    """``row`` is being written back into its tensor: its values are the tensor's, nothing to
    refresh; returns a callable to run once the write is made (the versions taken as its own)."""
    _back.add(id(row))

    def done():
        _back.discard(id(row))
        entry = rows.get(id(row))
        if entry is not None and entry[0]() is row:
            entry[4] = _versions(entry[1])
    return done


def follow():
    """Run by ``views.wake`` after a recorded in-place change: each row refreshed since, whose tensor
    now requires grad, becomes ``x[i]`` of the changed tensor (torch rebases a view's ``grad_fn``);
    what was recorded before reads the row's version of before (gt/autograd/rebind.py)."""
    views.rows_follow = None
    pending = [ref() for ref in _pending.values()]
    _pending.clear()
    for row in pending:
        entry = None if row is None else rows.get(id(row))
        if entry is None or entry[0]() is not row or not entry[1]._requires_grad:
            continue
        if entry[6]:          # taken under no_grad: torch refuses to differentiate through it from now on
            views._refuse(row)
            continue
        old = inplace_grad._old_version(row)
        # recorded, of the changed x; another copy through a clone: its op's output is another tensor than
        # this one, which rebind must not take for a view of that op's input (memory it does not share)
        fresh = entry[1][entry[2]] if entry[3] is not None else entry[2]().clone()
        row._ctx, row._requires_grad = fresh._ctx, True
        fresh._ctx.row_before = old       # (rebind holds it weakly) what the ops recorded before read, kept
        if old._ctx is not None:          # and the other way: a view of the row taken before finds it from there
            old._ctx.row_after = row
        rebind.changed(row, old, function.new_epoch())
        views.wake(row)       # the row's unrecorded views follow it
