"""The numpy engine's sliding windows (convolution and pooling, gt/ops/conv.py): a strided view
of the input instead of the default's copy of one slice per kernel offset. Mixed into
``NumpyEngine``; ``fold_windows`` and the convolution kernels keep the defaults
(gt/backend/engine_defaults.py): the ops compose them from ``windows`` and ``matmul``."""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from gt.backend.engine_overlaps import expand_strides


def memory_owner(arr):
    """The ndarray whose memory ``arr`` lies in. numpy points a view's ``base`` at the array that
    owns the memory, except through a strided view (as_strided: B.windows, im2col's columns), whose
    base is a plain object holding the array in its own ``base``: follow the chain to the last array."""
    owner, base = arr, arr.base
    while base is not None:
        if isinstance(base, np.ndarray):
            owner = base
        base = getattr(base, "base", None)
    return owner


def _buffer(owner):
    """``owner``'s memory as an array numpy hands a buffer out of (C- or F-ordered): itself, or, where
    its elements fill the memory in another order of axes (a clone of a permuted tensor), its axes put
    in the order of their strides; None where they do not fill it."""
    if owner.flags.c_contiguous or owner.flags.f_contiguous:
        return owner
    ordered = owner.transpose(np.argsort([-s for s in owner.strides], kind="stable"))
    return ordered if ordered.flags.c_contiguous else None


def _view(x, shape, strides):
    """A view of ``x``'s memory from its first element in ``shape`` and byte ``strides``, writable
    where ``x`` is, whose ``base`` is ``x`` or its owner (so that is_view_of sees it)."""
    if x.flags.c_contiguous:        # (the common case: numpy checks the bounds against x's buffer)
        return np.ndarray(shape, x.dtype, buffer=x, strides=strides)
    owner = memory_owner(x)
    if (owner is x or owner is x.base) and _buffer(owner) is owner:
        offset = _address(x) - _address(owner)
        if 0 <= offset <= owner.nbytes:
            return np.ndarray(shape, x.dtype, buffer=owner, offset=offset, strides=strides)
    return as_strided(x, shape, strides, writeable=x.flags.writeable)


def row_major(shape):
    """Row-major element strides of ``shape`` (torch's, an axis of no elements counted as one)."""
    out, step = [], 1
    for n in reversed(shape):
        out.append(step)
        step *= max(n, 1)
    return tuple(reversed(out))


def stepped(x):
    """``x``, or where it is a new array of no elements (numpy keeps no steps for those) ``x`` with
    torch's row-major steps, so that views of it (a transpose, an expand) step as torch's."""
    if x.size or not x.ndim or any(x.strides):
        return x
    return _view(x, x.shape, tuple(s * x.itemsize for s in row_major(x.shape)))


def torch_view(x, index, out):
    """``out`` (numpy's ``x[index]``: an array of no elements, or one with a step of 0) as torch lays
    out ``x[index]`` for a basic index: a new axis (None) steps over the input axis after it (its
    ``unsqueeze``), and an empty slice starts where torch's does (numpy's does not move). ``out``
    itself for other indexes, or where it already is torch's."""
    items = index if type(index) is tuple else (index,)
    strides = x.strides                         # (bytes throughout)
    if not x.size and not any(strides):         # numpy's new arrays of no elements keep no steps
        strides = tuple(s * x.itemsize for s in row_major(x.shape))
    shape, size, at, offset, d = x.shape, [], [], 0, 0
    free = x.ndim - sum(1 for i in items if i is not None and i is not Ellipsis)
    for i in items:
        if i is None:
            size.append(1)
            at.append(shape[d] * strides[d] if d < x.ndim else x.itemsize)
        elif i is Ellipsis:
            size += shape[d:d + free]
            at += strides[d:d + free]
            d += free
        elif type(i) is int:
            offset += (i + shape[d] if i < 0 else i) * strides[d]
            d += 1
        elif type(i) is slice:
            begin, stop, by = i.indices(shape[d])
            size.append(len(range(begin, stop, by)))
            at.append(strides[d] * by)
            offset += begin * strides[d]
            d += 1
        else:                                   # an index array or mask: numpy's copy is torch's
            return out
    size += shape[d:]
    at = tuple(at) + strides[d:]
    if tuple(size) != out.shape or (at == out.strides and (out.size or offset == _address(out) - _address(x))):
        return out
    if out.size and out.flags.c_contiguous:
        # (x[None] of a contiguous x: numpy's start and other steps are torch's already, so a view of
        # out itself, without the owner's address arithmetic below: the engine's getitem 5.1 -> 2 us)
        return np.ndarray(out.shape, out.dtype, buffer=out, strides=at)
    owner = memory_owner(x)
    begin = _address(x) - _address(owner) + offset
    if _buffer(owner) is not owner or begin < 0:
        return out
    if begin > owner.nbytes:        # torch's start past the memory's end (x[5:5, 2] of 4 rows): no elements
        return _past_end(owner, begin, out.shape, at, x.dtype)
    return np.ndarray(out.shape, x.dtype, buffer=owner, offset=begin, strides=at)


class _At:
    """An array interface at an address of gt's choosing, keeping the memory's owner (as numpy's
    ``as_strided``): ``memory_owner`` finds it through ``base``."""

    def __init__(self, interface, base):
        self.__array_interface__, self.base = interface, base


def _past_end(owner, begin, shape, strides, dtype):
    """An array of no elements starting ``begin`` bytes into ``owner``'s memory, past its end, where
    numpy's buffer protocol stops (an empty array reads nothing there)."""
    interface = {"data": (_address(owner) + begin, not owner.flags.writeable), "shape": shape, "strides": strides,
                 "typestr": dtype.str, "version": 3}
    out = np.asarray(_At(interface, owner))
    return out if out.dtype == dtype else out.view(dtype)


def _address(arr):
    return arr.__array_interface__["data"][0]


class NumpyWindows:
    keeps_empty_strides = False     # numpy's new arrays of no elements keep no steps (gt/tensor/info_methods.py)

    def memory_owner(self, arr):
        return memory_owner(arr)

    def same_memory(self, a, b):
        """Whether the two arrays may lie in one memory (``memory_overlap``'s first question): a
        ``Tensor.data`` alias starts a chain of bases of its own, so owners alone miss it."""
        return np.may_share_memory(a, b)           # their bounds only: a few comparisons

    def windows(self, x, kernel, stride, dilation):
        lead = x.ndim - len(kernel)
        size, steps = x.shape[lead:], x.strides[lead:]
        out = tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(size, kernel, stride, dilation))
        strides = (x.strides[:lead] + tuple(t * s for t, s in zip(steps, stride))
                   + tuple(t * d for t, d in zip(steps, dilation)))
        return as_strided(x, x.shape[:lead] + out + tuple(kernel), strides, writeable=False)

    def diagonal_view(self, x, offset, dim1, dim2):
        out = x.diagonal(offset, dim1, dim2)
        if x.flags.writeable:        # numpy's diagonal is read-only; torch's writes through to x
            out.flags.writeable = True
        return out

    def write_refusal(self, arr):
        flags = arr.flags          # row-major and writeable, as nearly every tensor written in place
        return None if flags.c_contiguous and flags.writeable else super().write_refusal(arr)

    def write_operands(self, arr, values):
        # the common cases at once: a row-major arr, and numbers or arrays that own their memory
        if not arr.flags.c_contiguous and self.overlaps_itself(arr):
            return None
        for v in values:            # (read_before_write's test, inline: this runs on every in-place op)
            if type(v) is np.ndarray and (v.base is not None or arr.base is not None) and v is not arr:
                return super().read_before_write(arr, values)
        return values

    def read_before_write(self, arr, values):
        for v in values:
            if type(v) is np.ndarray and (v.base is not None or arr.base is not None) and v is not arr:
                return super().read_before_write(arr, values)
        return values

    def overlaps_itself(self, arr):
        return not arr.flags.c_contiguous and super().overlaps_itself(arr)

    def expand(self, x, shape):
        # numpy's broadcast_to is read-only and steps 0 over a new axis; torch's expand is writable
        # (write_refusal refuses writes where elements share memory) and keeps torch's strides
        shape, step, x = tuple(shape), x.itemsize, stepped(x)
        return _view(x, shape, tuple(s * step for s in expand_strides(x.shape, [s // step for s in x.strides], shape)))

    def with_strides(self, arr, strides):
        step = arr.itemsize
        return _view(arr, arr.shape, tuple(s * step for s in strides))

    def element_offset(self, arr):
        # an array of no elements too: numpy's new ones own their memory, getitem's views start as torch's
        return (_address(arr) - _address(self.memory_owner(arr))) // arr.itemsize

    def storage_size(self, arr):
        owner = self.memory_owner(arr)
        return owner.nbytes // arr.itemsize if _buffer(owner) is not None else None

    def strided_view(self, arr, size, stride, offset):
        # over the owner's buffer: the view's ``base`` is the owner, so is_view_of and the
        # version counters (memory_owner) see it as every other view of that memory
        step = arr.itemsize
        return np.ndarray(size, arr.dtype, buffer=_buffer(self.memory_owner(arr)), offset=offset * step,
                          strides=tuple(s * step for s in stride))
