"""How many threads the engine's math library may use: all free cores, and one when the
machine is busy.

A multithreaded BLAS splits each product between its threads and waits for the slowest. On a
machine where other processes keep the cores busy, one of those threads is always waiting for
a core, and every product waits with it: on 2 cores beside two busy processes, a training
step with OpenBLAS's two threads measured 7x slower than the same step with one thread
(PyTorch's OpenMP pool collapses the same way). So by default (``GT_NUM_THREADS`` unset or
``auto``) the engine adapts: at most every ``INTERVAL`` seconds, at a BLAS call, it reads how
many threads of *other* processes are runnable right now (Linux: ``/proc/loadavg`` counts all
runnable threads, ``/proc/self/task/*/stat`` says which of them are ours) and gives the
library the cores left free, at least one, at most what it had at start (so
``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` still cap it). It takes the median of the last
``WINDOW`` readings: a thread that runs for an instant (a system daemon, a ``ps``) is ignored
(the smallest of the readings put the BLAS on one thread for 0.3 s at each such blip, a good
part of a small model's step), while two readings of lasting load switch within 0.2 s.

``gt.set_num_threads(n)`` (or ``GT_NUM_THREADS=n``) fixes the count instead, as
``torch.set_num_threads`` does; ``gt.set_num_threads("auto")`` returns to adapting. Without
``/proc`` (not Linux) the count stays what the library chose.
"""

import collections
import os
import time

INTERVAL = 0.1        # seconds between two readings of the machine's load
WINDOW = 3            # readings whose median free-core count decides


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                      # not Linux
        return os.cpu_count() or 1


def runnable_others():
    """Threads of other processes that are running or ready to run now (None without /proc)."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        ours = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    stat = f.read()
            except OSError:                     # the thread ended meanwhile
                continue
            ours += stat[stat.rindex(")") + 2] == "R"
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - max(ours, 1))      # our reading thread runs, whatever /proc said


class ThreadPolicy:
    """Keeps an engine's thread count right for the machine's load (see the module docstring).

    ``get()`` and ``set(n)`` read and set the library's thread count; ``others()`` counts the
    runnable threads of other processes (``runnable_others``; replaceable in tests)."""

    def __init__(self, get, set, others=runnable_others, cores=None, fixed=None):
        self._get, self._set, self._others = get, set, others
        self.cores = cores or _usable_cores()
        self.start = max(1, min(get(), self.cores))   # the cap: what the library chose at start
        self.current = get()
        self.fixed = None
        self._free = collections.deque(maxlen=WINDOW)
        self._next = 0.0
        if fixed is not None:
            self.set_fixed(fixed)

    @classmethod
    def from_setting(cls, get, set, setting):
        """The policy a ``GT_NUM_THREADS`` value asks for (``gt.config.num_threads``): ``"auto"``
        adapts, an int fixes that count, None keeps the library's own count fixed."""
        if setting == "auto":
            return cls(get, set)
        return cls(get, set, fixed=get() if setting is None else setting)

    def set_fixed(self, n):
        """Fix the count at ``n`` (an int >= 1), or ``"auto"`` to adapt again."""
        if n == "auto":
            self.fixed, self._next = None, 0.0
            self._free.clear()
            return
        self.fixed = n
        # the library's own count, not the last one set here: a direct ``torch.set_num_threads``
        # (or threadpoolctl) since would otherwise make an equal ``n`` look like nothing to do
        self.current = self._get()
        self._apply(n)

    def tick(self):
        """Called at each BLAS call: re-decide when ``INTERVAL`` has passed since the last time."""
        if self.fixed is not None:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + INTERVAL
        others = self._others()
        if others is None:
            self.fixed = self.current   # nothing to read: keep the library's choice for good
            return
        self._free.append(self.cores - others)
        free = sorted(self._free)[(len(self._free) - 1) // 2]   # the median (the lower one of two)
        self._apply(max(1, min(self.start, free)))

    def _apply(self, n):
        if n != self.current:
            self._set(n)
            self.current = n
