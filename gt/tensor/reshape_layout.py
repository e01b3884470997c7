"""Where a reshape of a tensor sharded over the mesh, run block by block (gt/tensor/rules.py
``reshape``), must differ from each block's own reshape for the whole to be torch's: blocks of
one element along the sharded axis tell no step along it, so a block's reshape may be a view
where torch's of the whole copies, and numpy gives the view's dims of one element steps of its own."""

from gt.backend import B
from gt.ops._shapes import view_strides
from gt.sharding.layout import logical_strides


def torch_steps(d, out, largs):
    """A block's reshape that is a view, with torch's strides (``computeStride``): numpy gives a
    dim of one element a step of its own, and a block of one row along the sharded axis then lost
    that axis' step (``h.t().unsqueeze(0)`` of a tensor one row per device no longer lay in one
    buffer, and its ``contiguous()`` was itself where torch's copies)."""
    block = largs[0]
    if not B.numel(out) or B.memory_owner(out) is not B.memory_owner(block):
        return out
    want = view_strides(tuple(block.shape), B.element_strides(block), tuple(out.shape))
    if want is None or want == B.element_strides(out) or B.storage_size(out) is None:
        return out
    return B.strided_view(out, tuple(out.shape), want, B.element_offset(out))


def torch_copies(x, shape):
    """Whether torch's reshape of ``x`` into ``shape`` is a copy where each device's of its block
    may be a view: a block of one element along the sharded axis tells no step along it
    (``x[:, :-1].flatten()`` of a (3, 4, 2) tensor over 3 devices); where the blocks lie in one
    buffer, its strides tell, and each block is then copied first, so that the result is
    memory of its own as torch's (it followed later changes of ``x``, silently)."""
    strides = logical_strides(x._placed)
    return strides is not None and view_strides(x.shape, strides, shape) is None
