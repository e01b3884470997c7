"""The storages of one ``gt.save``/``gt.load``, shared between its tensors as torch shares them.

torch writes each storage once and every tensor as a view of it (its offset, size and strides):
``torch.save({"a": x, "v": x[1:3]})`` holds ``x``'s memory once, a view saved alone holds its
whole storage, and the loaded ``v`` lies in the loaded ``a``'s memory (a write to one shows in the
other). gt does the same with the memory gt tensors and numpy arrays lie in: tensors of one
memory owner (gt/backend's ``memory_owner``) are views of one record on writing, and the tensors
of one record are views of one array on reading (``mmap=True``: of the file, copy-on-write, as
torch's default ``MAP_PRIVATE``). Tensors gt cannot place in a storage (sharded ones, a numpy
array with negative strides, memory that is no contiguous block) are written as copies of their
own, each its own storage, as before.
"""

import numpy as np

from gt import dtypes
from gt.backend import B, numpy_windows
from gt.tensor import Tensor

MIXED = "Cannot save multiple tensors or storages that view the same data as different types"   # torch's


class Storage:
    """One record of the archive: a storage's bytes (a 1-D little-endian numpy array, or bytes),
    torch's storage class and its length (elements; bytes for an untyped storage)."""

    def __init__(self, data, storage, numel):
        self.data, self.storage, self.numel = data, storage, numel


def _little(arr):
    return np.asarray(arr, dtype=arr.dtype.newbyteorder("<"))


def _address(a):
    return a.__array_interface__["data"][0]


def _tensor_storage(t):
    """``(whole, offset, stride)`` for a gt tensor on one device: its storage as a 1-D numpy array of
    its dtype (bfloat16 as its bits, uint16), from the memory owner's start; or None."""
    if t._placed is not None:
        return None
    arr = t._array
    extent = B.storage_size(arr)
    if extent is None:
        return None
    stride = B.element_strides(arr)
    owner = B.memory_owner(arr)
    gap = B.data_address(arr) - B.data_address(owner)
    if any(s < 0 for s in stride) or gap < 0 or gap % t.element_size():
        return None
    whole = B.strided_view(arr, (extent,), (1,), 0)
    if t.dtype == dtypes.bfloat16:
        whole = whole.view(B.native_dtype(dtypes.int16))
    whole = B.to_numpy(whole)
    return (whole.view(np.uint16) if t.dtype == dtypes.bfloat16 else whole), gap // t.element_size(), stride


def _array_storage(a):
    """``(whole, offset, stride)`` for a numpy array of a tensor dtype (as ``_tensor_storage``), or None."""
    owner = numpy_windows.memory_owner(a)
    size = a.itemsize
    if not (owner.flags.c_contiguous or owner.flags.f_contiguous) or owner.nbytes % size or not a.dtype.isnative:
        return None
    gap = _address(a) - _address(owner)
    if gap < 0 or gap % size or any(s < 0 or s % size for s in a.strides):
        return None
    whole = owner.ravel(order="K").view(np.uint8).view(a.dtype)
    return whole, gap // size, tuple(s // size for s in a.strides)


class Written:
    """The storages of one save, found by the address and length of the memory they hold."""

    def __init__(self):
        self.storages, self.dtypes = {}, {}

    def place(self, obj, dtype, make):
        """``(storage, offset, stride)`` for ``obj`` (a gt tensor or a numpy array of ``dtype``, a name),
        or None where it is written as a copy; ``make(whole)`` builds the ``Storage`` of a storage
        first seen. torch's error where one memory is saved as two dtypes."""
        found = _tensor_storage(obj) if isinstance(obj, Tensor) else _array_storage(obj)
        if found is None:
            return None
        whole, offset, stride = found
        if whole.nbytes == 0:
            return make(_little(whole)), offset, stride
        start = _address(whole)
        if self.dtypes.setdefault(start, dtype) != dtype:
            raise RuntimeError(MIXED)
        key = (start, whole.nbytes)
        if key not in self.storages:
            self.storages[key] = make(_little(whole))
        return self.storages[key], offset, stride


class Loaded:
    """One storage read from an archive (a 1-D numpy array of ``dtype``'s bytes, little-endian) and
    the engine array every tensor of it views, made at the first."""

    def __init__(self, flat, dtype):
        self.flat, self.dtype, self._engine, self._as = flat, dtype, None, {}

    def retyped(self, name, kind):
        """An untyped storage's bytes as the numpy dtype ``kind`` (gt's ``name``): one for all its tensors."""
        if name not in self._as:
            flat = self.flat[:len(self.flat) - len(self.flat) % kind.itemsize]
            self._as[name] = Loaded(flat.view(kind), name)
        return self._as[name]

    def engine(self):
        if self._engine is None:
            flat = self.flat
            if not flat.dtype.isnative:
                flat = flat.astype(flat.dtype.newbyteorder("="))
            if self.dtype == "bfloat16":        # its bits, read as bfloat16 (the torch engine's)
                native = B.native_dtype(dtypes.bfloat16)
                self._engine = B.asarray(flat.view(np.int16)).view(native)
            else:
                self._engine = B.asarray(flat, dtype=_gt_dtype(self.dtype))
        return self._engine

    def tensor(self, offset, size, stride, requires_grad):
        """The tensor of ``size`` and ``stride`` at ``offset`` (elements) of this storage: a view of it."""
        size, stride = tuple(int(n) for n in size), tuple(int(s) for s in stride)
        if len(size) != len(stride) or any(n < 0 for n in size) or any(s < 0 for s in stride) or offset < 0:
            raise RuntimeError(f"gt.load: a tensor of size {list(size)} and stride {list(stride)} at offset {offset} "
                               "is no view gt can make (negative or mismatched values)")
        end = offset + (sum((n - 1) * s for n, s in zip(size, stride)) + 1 if 0 not in size else 0)
        if end > len(self.flat):
            raise RuntimeError(f"gt.load: a tensor of size {list(size)} and stride {list(stride)} at offset {offset} "
                               f"reaches past its storage of {len(self.flat)} elements")
        return Tensor._wrap(B.strided_view(self.engine(), size, stride, offset))._set_requires_grad(requires_grad)


def _gt_dtype(name):
    try:
        return dtypes.to_dtype(name)
    except (TypeError, ValueError):
        return None          # a dtype gt lacks: gt's rule for such arrays (the engine widens it)
