"""Keeping freed memory in the process instead of returning it to the system, and refetching
it page by page at the next step.

A training step allocates its activations and gradients afresh and frees them at the end. With
glibc's default malloc, freed memory at the top of the heap is handed back to the kernel once
more than a threshold (at most 64 MiB, adjusted as the process runs) lies free there, and
blocks above another threshold get their own mapping that is unmapped on free. The next step
then touches every page again: one page fault, and a zeroed 4 KiB page, per page. A small
model's step trips this every time. Measured on a 2-core Xeon, the small decoder of
benchmarks/small_decoder.py (0.87M parameters, batch 64 x 49, AdamW), one process each:

=================  ==========================  ============================
engine             glibc defaults              ``retain_freed_memory()``
=================  ==========================  ============================
numpy              259-261 ms, 28,000 faults   213-215 ms, none
torch              156 ms, 37,500 faults       118-122 ms, none
=================  ==========================  ============================

and the same peak memory (maxrss 221-222 MiB, 480-512 MiB). ``retain_freed_memory`` sets
glibc's two thresholds (``mallopt``): blocks up to 32 MiB come from the heap, and up to
``limit`` bytes of free memory stay at its top. The setting is the process's, not gt's: every
library's allocations in the process keep their freed memory too, and the process's resident
size does not shrink after a peak until it exits. So gt never makes it on its own; the project's
training commands (``python train.py``, ``lpm ppt``, ``lpm caption``) call it, as an application
chooses its allocator (PyTorch's CPU tuning guide suggests swapping in jemalloc or tcmalloc for
the same reason).
"""

import ctypes
import os

M_TRIM_THRESHOLD = -1      # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
DEFAULT_LIMIT = 256 << 20
MAX_LIMIT = 2 ** 31 - 1    # mallopt takes an int

_applied = None            # the limit in force, once set


def retain_freed_memory(limit=DEFAULT_LIMIT):
    """Keep up to ``limit`` bytes (default 256 MiB) of freed memory in the process, so that the
    next training step reuses it instead of faulting in fresh pages (see the module docstring;
    process-wide). Returns True where it took effect (Linux with glibc), False elsewhere, where
    nothing changes. Calling it again with another limit changes the limit."""
    global _applied
    if isinstance(limit, bool) or not isinstance(limit, int) or not MMAP_THRESHOLD <= limit <= MAX_LIMIT:
        raise ValueError(f"retain_freed_memory(limit): expected a number of bytes from {MMAP_THRESHOLD} "
                         f"(32 MiB) to {MAX_LIMIT} (2 GiB - 1), got {limit!r}")
    if _applied == limit:
        return True
    mallopt = _mallopt()
    if mallopt is None:
        return False
    # both or neither: glibc returns 1 on success
    if not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, limit)):
        return False
    _applied = limit
    return True


def retained_limit():
    """The limit set by ``retain_freed_memory`` in this process, or None (glibc's defaults)."""
    return _applied


def _mallopt():
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return None
    except (AttributeError, ValueError, OSError):    # not glibc (macOS, Windows, musl)
        return None
    try:
        # the process's own symbols, libc's among them: ctypes.util.find_library would run
        # `ldconfig -p` and import subprocess, tempfile and shutil, some 10 ms of start-up
        fn = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        from ctypes import util
        try:
            fn = ctypes.CDLL(util.find_library("c") or "libc.so.6").mallopt
        except (OSError, AttributeError):
            return None
    fn.argtypes, fn.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return fn
