"""Shared memory for the numpy engine (``Tensor.share_memory_``): an array moved into a POSIX
shared-memory segment that other processes map by name.

The segment is an ``mmap`` (``_Segment``) that every array on it keeps alive (numpy holds the
buffer), so it is unmapped when the last array, view or copy sent to a child is gone. Its name is
unlinked by the process that created it when that process drops its last array of it (or at its
exit), never by a child, which holds only a mapping (a forked child's copy of the creator's object
checks the pid). The creator registers the name with multiprocessing's resource tracker, as
``multiprocessing.shared_memory`` does, so a crash leaks nothing; children attach untracked, so
the tracker warns of nothing. A child attaches only while the creator still holds the tensor, as
with torch's sharing: keep a shared tensor alive until the processes it was sent to received it.
"""

import atexit
import mmap
import os
import secrets
import weakref

import numpy as np

try:
    import _posixshmem
except ImportError:      # Windows: named file mappings, which gt does not use
    _posixshmem = None

_CREATED = {}                                # this process's segment names -> its pid, unlinked at exit
_EXIT_HOOKED = [None]                        # the pid whose multiprocessing exit unlinks its segments
_ATTACHED = weakref.WeakValueDictionary()    # name -> segment mapped here (one mapping per segment)
_TRACKING = []                               # multiprocessing's resource_tracker and util, once imported


def _tracking():
    """multiprocessing's resource_tracker and util, imported at the first ``share_memory_``, not
    with the engine: multiprocessing (sockets, pickling) is a tenth of a first tensor's start-up,
    and few programs share memory. Kept here, as the exit hooks that use them run when imports may
    no longer work."""
    if not _TRACKING:
        from multiprocessing import resource_tracker, util
        _TRACKING[:] = resource_tracker, util
    return _TRACKING


class _Segment(mmap.mmap):
    """One mapped shared-memory segment; ``creator``: the pid that unlinks its name."""

    def __del__(self):
        if getattr(self, "creator", None) == os.getpid():
            _unlink(self.name)


def _unlink(name):
    if _CREATED.pop(name, None) == os.getpid():
        try:
            _posixshmem.shm_unlink(name)
        except FileNotFoundError:
            pass
        _TRACKING[0].unregister(name, "shared_memory")     # set: the name was created here


@atexit.register
def _unlink_all():
    for name, pid in list(_CREATED.items()):
        if pid == os.getpid():
            _unlink(name)


def _map(name, size, create):
    flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = _posixshmem.shm_open(name, flags, mode=0o600)
    try:
        if create:
            os.ftruncate(fd, size)
        seg = _Segment(fd, size)
    finally:
        os.close(fd)
    seg.name, seg.creator = name, (os.getpid() if create else None)
    seg.address = np.frombuffer(seg, np.uint8, count=1).ctypes.data
    return seg


def _segment_of(arr):
    """The segment ``arr``'s memory lies in, or None (the chain of bases, through memoryviews)."""
    base = arr
    while True:
        if isinstance(base, np.ndarray):
            base = base.base
        elif isinstance(base, memoryview):
            base = base.obj
        else:
            return base if isinstance(base, _Segment) else None


def _attach(name, size, offset, shape, strides, dtype):
    """The array a child (or the parent) gets for a shared array sent to it: the same memory."""
    seg = _ATTACHED.get(name)
    if seg is None:
        seg = _ATTACHED[name] = _map(name, size, create=False)
    return np.ndarray(shape, dtype=dtype, buffer=seg, offset=offset, strides=strides)


class _SharedRef:
    """Stands for a shared array in a pickle sent to another process: unpickled, it maps the
    segment by name (no copy of the values)."""

    def __init__(self, arr, seg):
        self.args = (seg.name, len(seg), arr.ctypes.data - seg.address, arr.shape, arr.strides, arr.dtype.str)

    def __reduce__(self):
        return _attach, self.args


class NumpyShared:
    """The engine's side of ``share_memory_``/``is_shared`` and of sending shared arrays."""

    def share_memory(self, arr):
        """``arr`` if it is in shared memory already, else a copy of it in a new segment."""
        if _segment_of(arr) is not None:
            return arr
        if _posixshmem is None:
            raise NotImplementedError("share_memory_: the numpy engine's shared memory needs POSIX shared memory "
                                      "(Linux, macOS); use the torch engine (GT_BACKEND=torch) here")
        resource_tracker, util = _tracking()
        name = "/gt_" + secrets.token_hex(8)
        seg = _map(name, max(arr.nbytes, 1), create=True)
        if _EXIT_HOOKED[0] != os.getpid():
            # a child started by multiprocessing ends without atexit: unlink its segments on its way out
            util.Finalize(None, _unlink_all, exitpriority=0)
            _EXIT_HOOKED[0] = os.getpid()
        _CREATED[name] = os.getpid()
        _ATTACHED[name] = seg
        resource_tracker.register(name, "shared_memory")
        order = "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C"   # a transposed one stays so
        shared = np.ndarray(arr.shape, dtype=arr.dtype, buffer=seg, order=order)
        shared[...] = arr
        return shared

    def is_shared(self, arr):
        return _segment_of(arr) is not None

    def shared_reduce(self, arr):
        """What to pickle for ``arr`` when it goes to another process: a by-name stand-in where it
        is in shared memory, None (its values) otherwise."""
        seg = _segment_of(arr)
        return None if seg is None else _SharedRef(arr, seg)

    def set_sharing_strategy(self, name):
        """Nothing to set: every shared array is sent by its segment's name."""
