"""torch's refusal of an in-place write that reads memory it writes (``x[1:].add_(x[:-1])``,
``p.mul_(p.t())``, ``x[1:] = x[:-1]``, an index op whose source lies in the written tensor) where
the written tensor or a value is spread over the mesh (gt/tensor/shared_input.py's
``refuse_shared_input`` asks here; on one device it compares the two arrays itself).

Both sides are compared as one array each where their blocks lie next to each other in one buffer
(data from ``from_numpy`` and its views: ``join_views``), which is the comparison one device makes;
otherwise block by block, where the same layout of the same memory counts as one only for the
same device's blocks of two tensors laid out alike (the op pairs those elements); any other
meeting of their memory is a partial overlap. A value that is a row ``x[i]`` gt gathered along the
sharded dim (or a view of one, where the row lies row-major in its block) is compared as the memory
of ``x``'s block it stands for (``h.copy_(h[2])``, ``x[1:].mul_(x[1])`` are refused as torch's); other
gathered copies (a reshape across the blocks, a written row) share no memory with their tensor and
are not seen here (MISSING.md).
"""

from gt.autograd.function import no_grad
from gt.backend import B
from gt.sharding.placement import Shard

row_memory = None   # gt/tensor/mesh_row_write.py's, bound by gt/tensor/core.py (it imports this module's importers)


def refuse(t, tensors, index, any_overlap, shared):
    """Raise RuntimeError(``shared``) where one of ``tensors`` lies in part of the memory written
    (``t``, or ``t[index]`` for a basic index; ``any_overlap``: an index or scatter op, which
    refuses any overlap), before anything is written; None otherwise."""
    if not tensors:
        return
    target = t if index is Ellipsis else _basic_view(t, index)
    if target is None:
        return
    whole = _joined(target)
    for v in tensors:
        if v._placed is not None and v._placed is target._placed:     # itself (or an alias): one layout
            if any_overlap:
                raise RuntimeError(shared)
            continue
        row = row_memory(v) if v._placed is None and row_memory is not None else None
        if row is not None:     # a gathered row: its memory in x's block is what torch's view reads
            for a in [whole] if whole is not None else _blocks(target):
                how = B.memory_overlap(a, row)
                if how is not None and (any_overlap or how == "partial"):
                    raise RuntimeError(shared)
            continue
        other = _joined(v)
        written, read = ([whole], [other]) if whole is not None and other is not None else (_blocks(target), _blocks(v))
        aligned = len(written) == len(read) and (len(read) == 1 or _alike(target, v))
        for d, a in enumerate(written):
            for e, b in enumerate(read):
                how = B.memory_overlap(a, b)
                if how is not None and (any_overlap or how == "partial" or d != e or not aligned):
                    raise RuntimeError(shared)


def _basic_view(t, index):
    """``t[index]`` (slices only) as the tensor the write goes into, or None where it is not known
    here (an int along the sharded dim gives a gathered copy, whose memory is not ``t``'s)."""
    if t._placed is None:
        return _Plain(B.getitem(t._array, index))
    parts = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(p, slice) or p is Ellipsis or p is None for p in parts):
        return None
    with no_grad():
        return t[index]


class _Plain:
    """An engine array standing for a tensor on one device (``_joined``' argument)."""
    __slots__ = ("_array",)
    _placed = None

    def __init__(self, arr):
        self._array = arr


def _joined(t):
    """``t`` as one array: on one device, or where its blocks join into one view; else None."""
    p = t._placed
    if p is None:
        return t._array
    return B.join_views(p.shards, p.placement.axis) if isinstance(p.placement, Shard) else None


def _blocks(t):
    return [t._array] if t._placed is None else list(t._placed.shards)


def _alike(a, b):
    pa, pb = a._placed, b._placed
    return pa is not None and pb is not None and pa.placement == pb.placement and pa.sizes == pb.sizes
