"""The numpy engine's cache of large memory blocks: an array's memory comes back here when the
array and every view of it are gone, and the next array of that size gets it with its pages
already mapped.

Why: a training step allocates its activations and gradients afresh and frees them at the end.
With glibc's default malloc, freed memory at the top of the heap goes back to the kernel once
more than a threshold lies free there, and the next step touches every page again: a page fault
and a zeroed 4 KiB page each. The small decoder of benchmarks/small_decoder.py (0.87M
parameters, batch 64 x 49) faulted about 30,000 times a step that way on a 2-core AMD EPYC,
and took 285-298 ms a step against 199-208 ms with glibc told to keep its freed memory
(``MALLOC_TRIM_THRESHOLD_``, process-wide, gt/backend/memory.py). This cache gets the same for
gt's own arrays only: every other library in the process keeps glibc's behaviour (PyTorch's
CUDA caching allocator is the same idea, for gt on the CPU).

How: an array the engine hands out (``empty``) is a view of a block, a plain ``uint8`` array
from this cache, made through a ``memoryview``, so that numpy's views of it keep *it* alive
rather than the block (numpy collapses a view's base chain only through arrays). A weak
reference on that array returns the block to its size class's free list when the last view of
it dies. Sizes are rounded up to 1, 1.25, 1.5 or 1.75 times a power of two (at most a quarter
unused), so shapes that differ slightly share blocks. At most ``max_free_bytes`` (default
1 GiB) of free blocks are kept; ``clear()`` frees them all. Arrays under ``min_bytes``
(256 KiB) are plain ``np.empty``: malloc's free lists serve those without faults, and the
cache's cost (about 2 us an array) would not pay.

The contents of a block handed out again are whatever its last array held (as ``np.empty``).
Safe under threads that share the engine (the GIL makes each list operation atomic; a race
costs at most a fresh block).
"""

import weakref

import numpy as np

MIN_BYTES = 1 << 18
# the memoryview formats of the dtypes gt uses (others are plain np.empty)
_FORMATS = {np.dtype(t): np.dtype(t).char for t in (np.float32, np.float64, np.int64, np.int32, np.bool_)}
MAX_FREE_BYTES = 1 << 30


def size_class(nbytes):
    """``nbytes`` rounded up to 1, 1.25, 1.5 or 1.75 times a power of two (for nbytes >= 8)."""
    step = 1 << max((nbytes - 1).bit_length() - 3, 0)
    return -(-nbytes // step) * step


def floor_class(nbytes):
    """The largest size class that is at most ``nbytes``: a block of ``nbytes`` serves it."""
    step = 1 << max(nbytes.bit_length() - 3, 0)
    return nbytes // step * step


class BlockCache:
    """Large arrays whose memory returns to free lists, by size class, when they die."""

    def __init__(self, min_bytes=MIN_BYTES, max_free_bytes=MAX_FREE_BYTES):
        self.min_bytes = min_bytes
        self.max_free_bytes = max_free_bytes
        self._free = {}        # size class -> [uint8 blocks of at least that many bytes]
        self._free_bytes = 0
        self._live = {}        # id(array) -> a weak reference to it, until the array dies
        self.hits = 0          # arrays served from a free block (for tests and benchmarks)
        self.misses = 0        # arrays that needed a fresh block

    def empty(self, shape, dtype):
        """An uninitialised array of ``shape`` (a tuple) and numpy ``dtype``, C order."""
        n = 1
        for s in shape:
            n *= s
        nbytes = n * dtype.itemsize
        fmt = _FORMATS.get(dtype)
        if nbytes < self.min_bytes or fmt is None:
            return np.empty(shape, dtype)
        size = size_class(nbytes)
        try:
            block = self._free[size].pop()
        except (KeyError, IndexError):
            block = np.empty(size, np.uint8)
            self.misses += 1
        else:
            self._free_bytes -= block.nbytes
            self.hits += 1
        # through a memoryview cast to the shape: the array's base is the memoryview, not the block
        arr = np.asarray(memoryview(block)[:nbytes].cast(fmt, shape))
        key = id(arr)
        self._live[key] = weakref.ref(arr, lambda r, b=block, k=key: self._back(k, b))
        return arr

    def owns(self, arr):
        """Whether ``arr`` is an array this cache handed out (not a view of one)."""
        return type(arr.base) is memoryview and id(arr) in self._live

    def adopt(self, arr):
        """Take the memory of ``arr``, a large C-contiguous array that owns its memory and that
        the caller holds the only reference to, as a free block. The caller must drop ``arr``."""
        block = arr.reshape(-1).view(np.uint8)
        return self._keep(block)

    def _back(self, key, block):
        self._live.pop(key, None)
        self._keep(block)

    def _keep(self, block):
        if self._free_bytes + block.nbytes > self.max_free_bytes:
            return False        # dropped: malloc gets it back
        self._free.setdefault(floor_class(block.nbytes), []).append(block)
        self._free_bytes += block.nbytes
        return True

    def holds(self, nbytes):
        """Whether a free block would serve an array of ``nbytes`` now."""
        return bool(self._free.get(size_class(nbytes)))

    @property
    def free_bytes(self):
        """Bytes held in free blocks, ready for the next arrays."""
        return self._free_bytes

    def clear(self):
        """Free every free block (arrays still alive keep theirs, and return them later)."""
        self._free = {}
        self._free_bytes = 0
