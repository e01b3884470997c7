"""A callable ``map_location`` of ``gt.load``, called as torch calls it: once for each storage of
the file, with the storage read (bytes, as torch's ``UntypedStorage``) and the location it was
saved from (``"cpu"``, ``"cuda:0"``). What it returns is the storage the tensors are made from:
the one it was given (``lambda storage, loc: storage``, ``storage.cpu()``), another made from it
(``storage.clone()``), or None for the storage as read, as torch's. gt makes its tensors on its
current engine and device, so a storage cannot be moved elsewhere here (``storage.cuda()``):
that raises, naming the way that works.
"""

import numpy as np

from gt import dtypes
from gt.devices import device
from gt.serialization.storages import Loaded

_CPU = device("cpu")


class UntypedStorage:
    """A storage as a callable ``map_location`` sees it: torch's ``UntypedStorage`` (its bytes, on
    the CPU) with the methods such callables use."""

    def __init__(self, loaded):
        self._loaded = loaded

    @property
    def device(self):
        return _CPU

    is_cuda = is_sparse = is_meta = False
    dtype = dtypes.uint8        # torch's: an untyped storage is bytes

    def _bytes(self):
        return self._loaded.flat.view(np.uint8)

    def nbytes(self):
        return int(self._loaded.flat.nbytes)

    size = nbytes

    def __len__(self):
        return self.nbytes()

    def element_size(self):
        return 1

    def tolist(self):
        return self._bytes().tolist()

    def untyped(self):
        return self

    def cpu(self):
        """Itself: it is on the CPU already (torch's answer for a CPU storage)."""
        return self

    def clone(self):
        """A copy of its bytes: the tensors are made from the copy."""
        return UntypedStorage(Loaded(self._loaded.flat.copy(), self._loaded.dtype))

    def to(self, *, device, non_blocking=False):
        """Itself for the CPU (torch's keyword-only signature); another device raises (module docstring)."""
        if str(device) != "cpu":
            _refuse(f"to(device={device!r})")
        return self

    def cuda(self, device=None, non_blocking=False):
        _refuse("cuda()")

    def __repr__(self):
        return f"gt.UntypedStorage (bytes of {self._loaded.dtype}) [size {self.nbytes()}] on cpu"


def _refuse(call):
    raise RuntimeError(f"gt.load: map_location's storage.{call}: gt makes the loaded tensors on its current engine "
                       "and device, so a storage cannot be moved while loading; load with map_location=None (or "
                       "'cpu', or a callable returning the storage it is given), then move the tensors with "
                       "tensor.to(device)")


def placer(map_location):
    """``place(loaded, location)`` for ``gt.load``'s reader: ``map_location(storage, location)``'s
    storage (a ``storages.Loaded``), once for each storage of the file."""
    def place(loaded, location):
        given = UntypedStorage(loaded)
        got = map_location(given, location)
        if got is None or got is given:
            return loaded
        if isinstance(got, UntypedStorage):
            return got._loaded
        raise TypeError(f"gt.load: map_location must return a storage (the one it is given, storage.cpu(), "
                        f"storage.clone()) or None, got {type(got).__name__} for location {location!r}")
    return place
