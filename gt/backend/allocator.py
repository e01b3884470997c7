"""Keep the pages of freed arrays: glibc's malloc tuned for a training loop's large temporaries.

A step allocates and frees the same large arrays every time (activations, their gradients,
attention scores: a few MB each). glibc gives blocks above its mmap threshold a fresh mapping
and unmaps them when freed, and trims the top of the heap when much of it is free, so those
arrays fault their pages in again on every step, at about 1 ms per 10 MB: a quarter of the small
decoder's step in the benchmarks (benchmarks/small_decoder.py: 190 ms against 158 ms with the
settings below on the numpy engine, 132 against 108 ms on the torch engine, on a 2-core Xeon).
PyTorch's CPU tuning guide makes the same point and suggests jemalloc or tcmalloc; glibc's own
``mallopt`` does it without a preloaded library.

The settings: blocks up to 32 MiB (glibc's largest mmap threshold) come from the heap, and the
heap is trimmed only when more than 1 GiB of it is free. Peak memory is unchanged; resident
memory stays at the peak instead of shrinking between steps. Larger arrays (the default
model's 41 MB embedding gradient) are reused through the engines' own buffer pool.

A user who sets any of glibc's ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_TOP_PAD_`` or ``GLIBC_TUNABLES`` has chosen the allocator's behaviour: gt then changes
nothing. Elsewhere than glibc (macOS, musl) nothing is changed either.
"""

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3     # glibc's malloc.h
_SETTINGS = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))
_USER_CHOICES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")
_done = []


def keep_freed_memory():
    """Tune glibc's malloc as above, once per process. Returns a short description of what was
    done (for ``GT_VERBOSE``)."""
    if _done:
        return _done[0]
    _done.append(_tune())
    return _done[0]


def _tune():
    if not sys.platform.startswith("linux"):
        return "left as it is (not Linux)"
    chosen = [name for name in _USER_CHOICES if name in os.environ]
    if chosen:
        return f"left as {chosen[0]} sets it"
    try:
        libc = ctypes.CDLL(None)
        mallopt, version = libc.mallopt, libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return "left as it is (not glibc)"
    version.restype = ctypes.c_char_p
    if not all(mallopt(param, value) == 1 for param, value in _SETTINGS):
        return "left as it is (mallopt refused)"
    return f"glibc {version().decode()}: freed blocks up to 32 MiB stay mapped for reuse"
