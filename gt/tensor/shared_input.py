"""torch's refusal of an in-place write from a tensor that lies in part of the written memory
(``x[1:].add_(x[:-1])``, ``x[1:] = x[:-1]``), before anything is written: on one device here,
over the mesh in gt/tensor/mesh_overlap.py. ``Tensor`` is bound by gt/tensor/core.py."""

from gt.backend import B
from gt.tensor import mesh_overlap

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py


SHARED = ("unsupported operation: some elements of the input tensor and the written-to tensor refer to a single "
          "memory location. Please clone() the tensor before performing the operation.")


def refuse_shared_input(t, values, index=Ellipsis, any_overlap=False):
    """torch's error, before anything is written, for an in-place write into ``t`` (at ``index``:
    a basic index, a view) from a tensor of ``values`` that lies in part of the same memory
    (``x[1:].add_(x[:-1])``, ``x[1:] = x[:-1]``): an elementwise op refuses a partial overlap (the
    same layout of the same memory is fine), an index or scatter op (``any_overlap``) any.
    torch compares only layouts without gaps or repeats (gt/backend/engine_defaults.py)."""
    if t._placed is not None:
        return mesh_overlap.refuse(t, [v for v in values if isinstance(v, Tensor)], index, any_overlap, SHARED)
    arr = None
    for v in values:
        if isinstance(v, Tensor):
            if v._placed is not None:       # (a value over the mesh: compared there)
                mesh_overlap.refuse(t, (v,), index, any_overlap, SHARED)
                continue
            if arr is None:
                arr = t._array if index is Ellipsis else B.getitem(t._array, index)
            how = B.memory_overlap(arr, v._array)
            if how == "partial" or (how is not None and any_overlap):
                raise RuntimeError(SHARED)
