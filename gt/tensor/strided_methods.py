"""torch's strided reads: ``Tensor.as_strided`` (the top-level forms and ``as_strided_scatter``
are in strided_functions.py).

``x.as_strided(size, stride, storage_offset)`` reads the memory ``x`` lies in (its storage: the
tensor that owns it, for a view) as a tensor of ``size`` whose element ``i`` is at
``storage_offset + sum(i_k * stride_k)``, as torch's. The storage offset defaults to ``x``'s own.

gt gives a copy where torch gives a view, as it does for ``unfold``: the result is gathered from
``x`` through the storage positions of ``x``'s own elements, so it is differentiable (overlapping
windows add up in the backward) and runs on every engine. The price is that every position read
must be one of ``x``'s elements (a view cannot read what lies in its storage outside it; that is
refused by name). Sharded, bfloat16 and GPU tensors, whose storage gt does not track, are read as
their row-major copy (storage offset 0), as ``stride()`` and ``storage_offset()`` describe them.
"""

import numpy as np

from gt import dtypes
from gt.backend import B


def geometry(size, stride, storage_offset, fn):
    """``size`` and ``stride`` as tuples of ints, checked as torch checks them."""
    size = tuple(int(n) for n in size)
    stride = tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(f"{fn}: mismatch in length of strides and shape: size {list(size)}, stride {list(stride)}")
    if any(n < 0 for n in size):
        raise RuntimeError(f"{fn}: sizes must be non-negative, got size {list(size)}")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"{fn}: Negative strides are not supported at the moment, got strides: {list(stride)}")
    if storage_offset is not None and int(storage_offset) < 0:
        raise RuntimeError(f"{fn}: invalid storage offset {int(storage_offset)}")
    return size, stride


def _positions(size, stride, offset):
    """The storage position of each element of a (size, stride, offset) layout, row-major, int64."""
    pos = np.full(size, offset, dtype=np.int64)
    for axis, (n, s) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[axis] = n
        pos += (np.arange(n, dtype=np.int64) * s).reshape(shape)
    return pos.reshape(-1)


def _storage(t):
    """(positions of ``t``'s elements in row-major order, the storage's size, ``t``'s offset)."""
    if t._placed is not None or t.dtype == dtypes.bfloat16 or not t.is_cpu:
        n = t.numel()
        return np.arange(n, dtype=np.int64), n, 0
    offset = t.storage_offset()
    owner = B.to_numpy(B.memory_owner(t._array))
    return _positions(t.shape, t.stride(), offset), owner.nbytes // max(owner.itemsize, 1), offset


def flat_index(t, size, stride, storage_offset, fn):
    """For each element of ``t.as_strided(size, stride, storage_offset)``, the row-major index of
    the element of ``t`` at its storage position (the first such element where ``t`` overlaps
    itself, as an expanded tensor does: they hold the same value)."""
    size, stride = geometry(size, stride, storage_offset, fn)
    mine, extent, own_offset = _storage(t)
    offset = own_offset if storage_offset is None else int(storage_offset)
    wanted = _positions(size, stride, offset)
    if wanted.size:
        needed = int(wanted.max()) + 1
        if needed > extent:
            raise RuntimeError(f"{fn}: sizes {list(size)}, strides {list(stride)}, storage offset {offset} require "
                               f"a storage of {needed} elements, out of bounds for the storage of {extent} elements")
    order = np.argsort(mine, kind="stable")
    ranked = mine[order]
    at = np.minimum(np.searchsorted(ranked, wanted), max(ranked.size - 1, 0))
    if wanted.size and (ranked.size == 0 or not np.array_equal(ranked[at], wanted)):
        raise NotImplementedError(
            f"{fn}: sizes {list(size)}, strides {list(stride)}, storage offset {offset} read memory that is not part "
            f"of this tensor of shape {list(t.shape)} (only of the tensor it is a view of). gt's as_strided gathers from "
            "the tensor itself: call it on the tensor that owns the memory")
    return order[at], size


class StridedMethods:
    __slots__ = ()

    def as_strided(self, size, stride, storage_offset=None):
        """A tensor of ``size`` whose element ``i`` is the one at storage position
        ``storage_offset + sum(i_k * stride_k)`` of the memory this tensor lies in (torch's
        ``as_strided``; the offset defaults to this tensor's ``storage_offset()``). A differentiable
        copy, not a view (module docstring)."""
        index, size = flat_index(self, size, stride, storage_offset, "as_strided")
        flat = self.reshape(-1)
        return flat[type(self)._wrap(B.asarray(index))].reshape(size)

    def as_strided_(self, size, stride, storage_offset=None):
        """``as_strided(size, stride, storage_offset)`` taken by this tensor in place (torch's
        ``as_strided_``): it now holds those elements in ``size``. gt's result is a copy, so the
        tensor no longer shares memory with its base, and its ``stride()`` is the row-major one.
        Refused on a tensor that requires grad (as ``resize_``)."""
        if self.requires_grad:
            raise RuntimeError("as_strided_: gt cannot change the shape of a tensor that requires grad in place; "
                               "use the out-of-place as_strided")
        old = self._array
        self._array, self._placed = self.as_strided(size, stride, storage_offset)._data, None
        if old is not None:    # an in-place change for torch: ops that saved the old memory refuse backward
            B.bump_version(old)
        return self

    def as_strided_scatter(self, src, size, stride, storage_offset=None):
        """A copy of this tensor with ``src`` written where ``as_strided(size, stride,
        storage_offset)`` reads (positions in this tensor's storage, as torch's). Differentiable in
        both."""
        index, size = flat_index(self, size, stride, storage_offset, "as_strided_scatter")
        if not isinstance(src, type(self)) or tuple(src.shape) != size:
            got = list(src.shape) if isinstance(src, type(self)) else type(src).__name__
            raise RuntimeError(f"as_strided_scatter: expected src to have a size equal to the slice of self. "
                               f"src size = {got}, slice size = {list(size)}")
        out = self.reshape(-1).clone()
        out[type(self)._wrap(B.asarray(index))] = src.reshape(-1)
        return out.reshape(self.shape)
