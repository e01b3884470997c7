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


class NumpyWindows:
    def memory_owner(self, arr):
        return memory_owner(arr)

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
        shape, step = tuple(shape), x.itemsize
        strides = tuple(s * step for s in expand_strides(x.shape, [s // step for s in x.strides], shape))
        if x.flags.c_contiguous:        # (the common case: numpy checks the bounds against x's buffer)
            return np.ndarray(shape, x.dtype, buffer=x, strides=strides)
        owner = memory_owner(x)
        if owner is x.base and _buffer(owner) is owner:    # a view of one array: is_view_of sees it
            offset = x.__array_interface__["data"][0] - owner.__array_interface__["data"][0]
            return np.ndarray(shape, x.dtype, buffer=owner, offset=offset, strides=strides)
        return as_strided(x, shape, strides, writeable=x.flags.writeable)

    def storage_size(self, arr):
        owner = self.memory_owner(arr)
        return owner.nbytes // arr.itemsize if _buffer(owner) is not None else None

    def strided_view(self, arr, size, stride, offset):
        # over the owner's buffer: the view's ``base`` is the owner, so is_view_of and the
        # version counters (memory_owner) see it as every other view of that memory
        step = arr.itemsize
        return np.ndarray(size, arr.dtype, buffer=_buffer(self.memory_owner(arr)), offset=offset * step,
                          strides=tuple(s * step for s in stride))
