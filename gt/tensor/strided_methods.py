"""torch's strided reads: ``Tensor.as_strided`` (the top-level forms and ``as_strided_scatter``
are in strided_functions.py), also the view ``Tensor.unfold`` makes.

``x.as_strided(size, stride, storage_offset)`` reads the memory ``x`` lies in (its storage: the
tensor that owns it, for a view) as a tensor of ``size`` whose element ``i`` is at
``storage_offset + sum(i_k * stride_k)``, as torch's. The storage offset defaults to ``x``'s own.

On one device the result is a view, as torch's (``B.strided_view``: numpy's array over the
owner's buffer, torch's ``as_strided``): writes through it change ``x``, and it shares ``x``'s
version counter. It may read memory of ``x``'s base outside ``x``, as torch's; its backward
(gt/ops/shape.py's ``AsStrided``) adds the gradient to the elements of ``x`` each element is
(overlapping windows add up) and drops what lies outside ``x``, as torch's. An in-place change
of such a view in the graph is written through (gt/tensor/inplace_grad.py) where the view reads
each of ``x``'s elements at most once and nothing outside ``x``; otherwise it is refused.

Sharded, bfloat16 and GPU tensors, whose storage gt does not track, give a differentiable copy
gathered from their row-major copy (storage offset 0), as ``stride()`` and ``storage_offset()``
describe them: writing into it does not change ``x``. So does ``as_strided`` inside ``vmap``
(``VMAP_DEPTH``).
"""

import math

import numpy as np

from gt import autograd, dtypes
from gt.autograd import forward_ad, forward_copies, inference_saved
from gt.backend import B
from gt.ops import shape as shape_ops
from gt.tensor import inplace_grad, mesh_row_follow


# gt's vmap (gt/func/vmap.py) runs func on slices of the mapped inputs, counting here while it
# does: torch's as_strided there counts storage positions from each element's start, which a
# view of the shared memory cannot, so inside it as_strided gathers from the element itself
# (reads outside it refused by name) as it did before views
VMAP_DEPTH = [0]


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


def tracked(t):
    """Whether gt tracks ``t``'s storage (its offset and strides in the memory it lies in)."""
    return t._placed is None and t.dtype != dtypes.bfloat16 and t.is_cpu


def copy_not_view(out, fn, src=None, remake=None):
    """``out``, ``fn``'s copy of ``src`` standing for torch's view (of a tensor whose storage gt does not
    track), marked so that an in-place change of it is refused rather than silently leaving the tensor as
    it was; under forward AD, while it lives, so is a change of a sharded dual ``src``'s memory
    (gt/autograd/forward_copies.py: the copy would keep the values and the tangent of before). ``remake()``
    makes it again from a sharded ``src``: it then follows later changes of ``src`` (gt/tensor/mesh_row_follow.py)."""
    if src is not None and src._placed is not None and forward_ad.entered() and forward_ad.tangent_of(src) is not None:
        forward_copies.note(out, src, fn)
    inplace_grad.mark_copy_of_shard_row(out, (
        f"{fn} of a sharded, bfloat16 or GPU tensor, which gt makes as a copy (it does not track their storage) "
        f"rather than a view, so changing it in place would leave the tensor unchanged; write into the tensor "
        f"instead, or change a copy made on purpose ({fn}(...).clone())"))
    if remake is not None and src._placed is not None:
        mesh_row_follow.keep_copy(out, src, remake)
    return out


def _storage(t):
    """(positions of ``t``'s elements in row-major order, the storage's size, ``t``'s offset)."""
    if not tracked(t):
        n = t.numel()
        return np.arange(n, dtype=np.int64), n, 0
    offset = t.storage_offset()
    owner = B.to_numpy(B.memory_owner(t._array))
    return _positions(t.shape, t.stride(), offset), owner.nbytes // max(owner.itemsize, 1), offset


def _bounds(size, stride, offset, extent, fn):
    if all(size):
        needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
        if needed > extent:
            raise RuntimeError(f"{fn}: sizes {list(size)}, strides {list(stride)}, storage offset {offset} require "
                               f"a storage of {needed} elements, out of bounds for the storage of {extent} elements")


def _lookup(mine, wanted):
    """For each of ``wanted`` (storage positions), whether it is one of ``mine`` (a tensor's, in
    row-major order), and the index of the first such element: ``(hit, index)``."""
    order = np.argsort(mine, kind="stable")
    ranked = mine[order]
    at = np.minimum(np.searchsorted(ranked, wanted), max(ranked.size - 1, 0))
    if ranked.size == 0:
        return np.zeros(wanted.shape, dtype=bool), at
    return ranked[at] == wanted, order[at]


def _distinct(shape, stride):
    """Whether a layout's elements surely lie at distinct positions (torch's cheap test: each
    stride, smallest first, passes the extent of the dims below it)."""
    extent = 0
    for n, s in sorted((p for p in zip(shape, stride) if p[0] > 1), key=lambda p: p[1]):
        if s <= extent:
            return False
        extent += (n - 1) * s
    return True


def flat_index(t, size, stride, storage_offset, fn):
    """For each element of ``t.as_strided(size, stride, storage_offset)``, the row-major index of
    the element of ``t`` at its storage position (the first such element where ``t`` overlaps
    itself, as an expanded tensor does: they hold the same value)."""
    size, stride = geometry(size, stride, storage_offset, fn)
    mine, extent, own_offset = _storage(t)
    offset = own_offset if storage_offset is None else int(storage_offset)
    _bounds(size, stride, offset, extent, fn)
    hit, index = _lookup(mine, _positions(size, stride, offset))
    if not hit.all():
        raise NotImplementedError(
            f"{fn}: sizes {list(size)}, strides {list(stride)}, storage offset {offset} reach memory that is not part "
            f"of this tensor of shape {list(t.shape)} (only of the tensor it is a view of). gt's {fn} gathers from the "
            "tensor itself: call it on the tensor that owns the memory")
    return index, size


class Layout:
    """What ``AsStrided`` (gt/ops/shape.py) needs of a view ``x.as_strided(size, stride,
    offset)``: its geometry, ``x``'s, and (worked out on the first ask: a backward, an in-place
    change) which of ``x``'s elements each element of the view is."""

    __slots__ = ("array", "size", "stride", "offset", "in_shape", "in_stride", "in_offset", "dtype", "name",
                 "_index", "_shared")

    def __init__(self, t, size, stride, offset, own, name):
        self.array, self.size, self.stride, self.offset, self.name = t._array, size, stride, offset, name
        self.in_shape, self.in_stride, self.in_offset = tuple(t.shape), t.stride(), own
        self.dtype, self._index, self._shared = B.dtype_of(t._array), None, False

    def index(self):
        """``(picked, index)``: the view's flat positions that are elements of ``x`` (None: all of
        them) and the flat index in ``x`` of each, as engine arrays."""
        if self._index is None:
            hit, index = _lookup(_positions(self.in_shape, self.in_stride, self.in_offset),
                                 _positions(self.size, self.stride, self.offset))
            whole = bool(hit.all())
            self._index = (None if whole else B.asarray(np.flatnonzero(hit)),
                           B.asarray(index if whole else index[hit]))
        return self._index

    def shared(self):
        """None where no two of ``x``'s elements share memory (the usual case), else ``(first,
        scale)``: for each element of ``x`` the flat index of the first element at its position
        and 1 / how many are there. torch's backward divides a position's gradient among the
        elements of ``x`` there (an expanded ``x``), where ``index()`` names only the first."""
        if self._shared is False:
            self._shared = None
            if not _distinct(self.in_shape, self.in_stride):
                mine = _positions(self.in_shape, self.in_stride, self.in_offset)
                _, first, inverse, count = np.unique(mine, return_index=True, return_inverse=True, return_counts=True)
                if count.max(initial=1) > 1:
                    self._shared = (B.asarray(first[inverse]), B.astype(B.asarray(1.0 / count[inverse]), self.dtype))
        return self._shared

    def fits(self, arr):
        """Whether the view can be taken of ``arr`` too (another array of ``x``'s shape: forward
        AD's tangent): laid out as ``x`` in memory holding every position the view reads."""
        if tuple(arr.shape) != self.in_shape or B.element_strides(arr) != self.in_stride:
            return False
        extent = B.storage_size(arr)
        start = (B.data_address(arr) - B.data_address(B.memory_owner(arr))) // B.dtype_of(arr).itemsize
        if extent is None or start != self.in_offset:
            return False
        return not all(self.size) or self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) < extent

    def write_refusal(self):
        """Why an in-place change of the view cannot be written through to ``x`` in the graph, or
        None: it must read only ``x``'s elements, each at most once (a gradient of it has one place)."""
        picked, index = self.index()
        if picked is not None:
            return "reach memory outside the tensor they view (of its base)"
        if np.unique(B.to_numpy(index)).size != math.prod(self.size):
            return "overlap (windows sharing elements)"
        return None


def strided_view(t, size, stride, offset=None, name="AsStridedBackward0"):
    """``t.as_strided(size, stride, offset)`` as a view (``size``, ``stride``: checked tuples;
    ``offset``: an int, None for ``t``'s own), or None where gt does not track ``t``'s storage
    (the caller copies)."""
    if not tracked(t):
        return None
    extent = B.storage_size(t._array)
    if extent is None:
        return None
    own = t.storage_offset()
    offset = own if offset is None else int(offset)
    _bounds(size, stride, offset, extent, "as_strided")
    return shape_ops.AsStrided.apply(t, Layout(t, size, stride, offset, own, name))


# gt.func.vmap's counts of in-place shape changes (by memory owner) while it runs func: it tells an
# undone t_() of an unmapped input (its geometry as before, its version counted twice) from a write
SHAPE_WATCHERS = []


def watch_shape_change(arrays):
    """Count a change of shape of ``arrays``' memory for ``SHAPE_WATCHERS``."""
    for a in arrays:
        for watcher in SHAPE_WATCHERS:
            watcher[id(B.memory_owner(a))] += 1

class StridedMethods:
    __slots__ = ()

    @property
    def _base(self):
        """The tensor whose memory this view lies in, the first up the chain of views that is no
        view itself (torch's ``Tensor._base``), or None for a tensor that is no view of one gt
        knows (a view made by an op, recorded or not; not one made over the mesh)."""
        t = self
        while True:
            link = getattr(t, "_view", None)     # an unrecorded view (gt/autograd/views.py)
            up = link[0] if link is not None and t._ctx is None else inplace_grad.view_base(t)
            if up is None:
                return None if t is self else t
            t = up

    def as_strided(self, size, stride, storage_offset=None):
        """A view of ``size`` whose element ``i`` is the one at storage position ``storage_offset +
        sum(i_k * stride_k)`` of the memory this tensor lies in (torch's ``as_strided``; the
        offset defaults to this tensor's ``storage_offset()``). A differentiable copy for sharded,
        bfloat16 and GPU tensors (module docstring)."""
        checked, steps = geometry(size, stride, storage_offset, "as_strided")
        view = None if VMAP_DEPTH[0] else strided_view(self, checked, steps, storage_offset)
        if view is not None:
            return view
        index, size = flat_index(self, size, stride, storage_offset, "as_strided")
        flat = self.reshape(-1)
        out = flat[type(self)._wrap(B.asarray(index))].reshape(size)
        if tracked(self):       # (inside vmap)
            return out
        return copy_not_view(out, "as_strided", self, lambda: self.as_strided(size, stride, storage_offset))

    def as_strided_(self, size, stride, storage_offset=None):
        """This tensor made ``as_strided(size, stride, storage_offset)`` in place (torch's
        ``as_strided_``): a view of the same memory where gt tracks it, else (sharded, bfloat16,
        GPU) those elements copied, with row-major strides. On a tensor of the graph it is recorded
        as torch records it (the gradient of ``as_strided`` of the values of before); a leaf that
        requires grad is refused, as torch's."""
        if inference_saved.made[0]:     # (torch refuses an inference tensor's, outside inference mode)
            inference_saved.refuse_inplace(self)
        inplace_grad.check_captured(self, "as_strided_", shape=True)
        if mesh_row_follow.rows:      # a copy acting as a view of this sharded tensor lives
            mesh_row_follow.refuse_new_shape(self, "as_strided_")
        if self.requires_grad and autograd.is_grad_enabled():
            return self._reshaped_("as_strided_", lambda x: x.as_strided(size, stride, storage_offset))
        old = self._array
        self._array, self._placed = self.as_strided(size, stride, storage_offset)._data, None
        if old is not None:    # an in-place change for torch: ops that saved the old memory refuse backward
            B.bump_version(old)
            if SHAPE_WATCHERS:
                watch_shape_change([old])
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
