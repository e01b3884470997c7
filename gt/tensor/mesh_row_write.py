"""An in-place change of ``x[i]`` where ``x`` is sharded over the mesh along the dim ``i`` indexes
(``h[3].mul_(2)``, ``h[-1].copy_(y)``, ``h[3][1:3].add_(1)``, ``h[3][0] = 5``), as torch changes ``x``.

gt makes such an ``x[i]`` as a copy of its owner's row gathered to one device (gt/tensor/rules.py,
``getitem``), not a view of ``x``. The change is made on that copy as on any tensor on one device
(its views see it, a recorded one goes on the tape as usual), then the row is written back,
``x[i] = row``: recorded where gradients are and ``x`` or the row requires grad (``x`` takes the
change as its history, as torch's ``CopySlices``), else straight into the owner's block, which the
views of ``x`` share. The other copies gt makes of a view over the mesh (a diagonal or reshape across
the blocks, ``unfold``, ``as_strided``: ``inplace_grad.mark_copy_of_shard_row`` with their words)
are refused, a change of them would leave their tensor as it was.

The other way, a change of ``x`` reaching the row, is gt/tensor/mesh_row_follow.py's. A change made
through a row's ``detach()``/``.data`` alias is written back unrecorded (autograd sees no change
through an alias), and ``row_memory`` names the memory of ``x`` a row stands for, which torch's
overlap refusals compare (gt/tensor/mesh_overlap.py).

Nothing here runs unless a copy of a sharded tensor's row is alive (``copies_of_shard_rows`` holds
one): an op on one device pays one test of an empty dict, as it did before.
"""

import weakref

from gt.autograd.function import is_grad_enabled, no_grad
from gt.backend import B
from gt.sharding import layout
from gt.sharding.placement import Shard
from gt.tensor import inplace_grad, mesh_row_follow

_ROW = ("x[i] of a tensor x sharded along that dim, a copy of one device's row rather than a view, so changing it "
        "in place would leave x unchanged; write into x instead (x[i] = new values), or change a copy made on "
        "purpose (x[i].clone())")

_busy = set()    # ids of rows being changed (``written``): their write back comes after
_untracked = {}  # id -> weakref: ``detach()``/``.data`` aliases of rows, whose changes autograd does not see


def refuse(t, what, check=True):
    """For an in-place change of ``t``: where ``t`` is a row ``x[i]`` of a sharded ``x`` (or a view
    of one), ``(row, x, index, where)`` to write it back with (None while that row is being written);
    raise where ``check`` and it is (a view of) another copy ``mark_copy_of_shard_row`` marked."""
    found = _marked(t)
    if found is None:
        return None
    copy, why = found
    if type(why) is tuple:
        return None if id(copy) in _busy else (copy, *why)
    if check:
        raise RuntimeError(f"{what}: this tensor is " + (why or _ROW))
    return None


def refuse_iop(t, op):
    """``t += w`` (``op``) where ``t`` is (a view of) a copy gt gathered for a view no index makes (a reshape
    or diagonal across the blocks, ``unfold``, ``as_strided``): refused as ``add_`` is. Python writes
    ``v[i] += w`` back by item assignment, which a copy made by an index gets; these have none, and the
    change would be lost, silently."""
    found = _marked(t)
    if found is not None and type(found[1]) is str:     # (not a row's tuple, not an index's ItemCopy)
        raise RuntimeError(f"`{op}`: this tensor is " + found[1])


def _marked(t):
    """``(copy, why)`` for the copy ``mark_copy_of_shard_row`` marked that ``t`` is, or is a view of; else None."""
    table = inplace_grad.copies_of_shard_rows
    while t is not None:
        ref, why = table.get(id(t), (None, None))
        if ref is not None and ref() is t:
            return t, why
        if t._placed is not None:     # a copy is on one device, and so are its views
            return None
        link = getattr(t, "_view", None)          # a view taken without recording (gt/autograd/views.py)
        t = link[0] if link is not None and t._ctx is None else inplace_grad.view_base(t)
    return None


def row_memory(t):
    """Where ``t`` is a row ``x[i]`` of a sharded ``x`` that gt gathered to one device (or a
    ``detach()``/``.data`` alias of one, or a view of one where the row lies row-major in its block),
    the memory of ``x`` it stands for (a view of the row in the block that holds it), for torch's
    overlap refusals (gt/tensor/mesh_overlap.py); else None."""
    found = _marked(t) if inplace_grad.copies_of_shard_rows else None
    if found is None or type(found[1]) is not tuple:
        return None
    copy, why = found
    owned = mesh_row_follow.owner(*why)
    if owned is None:
        return None
    row = B.getitem(*owned)
    if t is copy:
        return row
    # a view of the copy: the same elements of the row, where both lie alike in their memory
    if not (B.is_contiguous(row) and B.is_contiguous(copy._array)) or B.storage_size(row) is None \
            or B.memory_owner(t._array) is not B.memory_owner(copy._array) or not B.numel(t._array):
        return None
    at = B.element_offset(t._array) - B.element_offset(copy._array)
    return B.strided_view(row, tuple(t.shape), B.element_strides(t._array), B.element_offset(row) + at)


def alias(t, of):
    """``t``, a ``detach()``/``.data`` alias of ``of``: where ``of`` is a row ``x[i]`` of a sharded ``x`` (or
    another copy marked), ``t`` is marked alike, so that its in-place changes reach ``x`` as torch's (they
    changed the copy alone, silently)."""
    ref, why = inplace_grad.copies_of_shard_rows.get(id(of), (None, None))
    if ref is not None and ref() is of:
        inplace_grad.mark_copy_of_shard_row(t, why)
        key = id(t)
        _untracked[key] = weakref.ref(t, lambda _, k=key: _untracked.pop(k, None))
    return t


def written(back, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, an in-place change of the row of ``back`` (``refuse``) or of a view
    of it, then the row written back into the sharded tensor it was taken from; returns ``fn``'s."""
    row, x, index, where = back
    if is_grad_enabled():
        _refuse_view_of_leaf(x)
    _busy.add(id(row))
    try:
        out = fn(*args, **kwargs)
    finally:
        _busy.discard(id(row))
    done = mesh_row_follow.written_back(row)     # (the other rows of x follow the write)
    tracked = _untracked.get(id(row), lambda: None)() is not row   # a change through an alias is no history of x
    try:
        if tracked and is_grad_enabled() and (x._requires_grad or row._requires_grad):
            x[index] = row              # recorded: x's history becomes the change (IndexPut over the mesh)
        else:
            _write_plain(x, index, where, row)
    finally:
        done()
    return out


def _refuse_view_of_leaf(x):
    """torch's error for ``leaf[i].mul_(2)``: the row is a view of a leaf that requires grad."""
    root = x
    while (up := inplace_grad.view_base(root)) is not None:
        root = up
    if root._ctx is None and root._requires_grad:
        raise RuntimeError(f"{inplace_grad.VIEW_OF_LEAF} ({inplace_grad.HINT})")


def _write_plain(x, index, where, row):
    """``x[index] = row`` unrecorded, into the block of the device that holds that row (``index[where]``,
    an int, indexes the sharded dim): views of ``x`` taken before share the blocks and see it (an item
    assignment of a sharded tensor writes it whole into new memory)."""
    found = mesh_row_follow.owner(x, index, where)
    if found is None:       # x changed since (no longer sharded along that dim)
        with no_grad():
            x[index] = row
        return
    before = x._version
    B.setitem(*found, row._array)
    while x._version <= before:     # (torch's engine counted the write into that block, which may not be the latest)
        x._bump_version()
    if mesh_row_follow.rows:        # the other rows of x follow (bump_versions did it where it ran)
        mesh_row_follow.refresh()


def put(t, index, value):
    """An unrecorded item assignment of ``t``, a tensor over the mesh (``value``: a number or an engine
    array): written whole (item assignment on a sharded tensor is rare), then cut into the blocks that
    views of ``t`` share; the rows ``t[i]`` gathered from them follow (gt/tensor/mesh_row_follow.py)."""
    placement, sizes, before = t.placement, t._placed.sizes, t._version
    sharded = isinstance(placement, Shard)
    in_place = None if sharded else layout.whole_in_place(t._placed)    # (a partial sum: its aliases see it)
    whole = t._data if in_place is None else in_place
    t._setitem(whole, index, value)
    if sharded:
        for block, piece in zip(t._placed.shards, layout.shard(whole, placement.axis, sizes).shards):
            B.setitem(block, Ellipsis, piece)
    elif in_place is None:
        t._data = whole
    while t._version <= before:   # the values may lie in new memory: its count goes on from ours
        t._bump_version()
    if mesh_row_follow.rows:      # (torch's engine counted the writes into the blocks: no bump_versions)
        mesh_row_follow.refresh()
