"""Two halves of one kernel at once: the caller's thread runs the first, a helper thread the
second.

numpy runs each call on one core, and releases the GIL inside it. A kernel made of a few long
numpy calls over a batch (the attention of benchmarks/small_decoder.py: batched products and
softmax passes of a few hundred microseconds each over 64 x 4 heads of 49 x 49 weights) can
therefore run its two halves of the batch on two cores. Each batch item is computed by the
same numpy calls on the same rows either way, so the results are the same to the bit.

Short calls do not pay: each handing-over of the GIL between the two threads costs tens of
microseconds, and a layer norm of (3136, 128), fifteen calls of 10-40 us, took 0.50 ms in two
halves against 0.40 ms whole (2-core AMD EPYC, numpy 2.4.6); ReLU's two long passes over
(3136, 512) gained alone but not in a training step. Callers split only kernels whose calls are
long (attention), only when the engine's thread policy gives them more than one core
(gt/backend/threads.py: not on a busy machine, not under ``gt.set_num_threads(1)``), and only
when the BLAS's idle threads sleep soon (gt/backend/blas.py, ``Blas.spin``): while OpenBLAS's
spin on the other core, the helper fights them for it.

One helper thread, started on first use, idle (blocked on a queue) between kernels. A split
asked for while one is running (another thread of the program using gt at the same time), or
from the helper itself, runs both halves in the caller. After ``os.fork`` the child starts its
own helper when it first needs one.
"""

import os
import queue
import threading
import weakref


class Halves:
    """Runs ``fn(lo, hi)`` over two halves of ``range(n)`` at once (see the module docstring)."""

    def __init__(self):
        self._reset()
        if hasattr(os, "register_at_fork"):                   # a forked child has no helper thread
            os.register_at_fork(after_in_child=_resetter(weakref.ref(self)))

    def _reset(self):
        self._todo = queue.SimpleQueue()
        self._busy = threading.Lock()
        self._thread = None

    def run(self, fn, n):
        """``fn(0, n // 2)`` here and ``fn(n // 2, n)`` on the helper, both finished on return.
        An exception from either half is raised here (the caller's own where both raise)."""
        half = n // 2
        if not self._busy.acquire(blocking=False):
            fn(0, half)
            fn(half, n)
            return
        try:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="gt-halves", daemon=True)
                self._thread.start()
            done = queue.SimpleQueue()        # this call's own: an interrupted wait leaves no stale answer
            self._todo.put((fn, half, n, done))
            try:
                fn(0, half)
            finally:
                error = done.get()            # wait for the helper's half whatever happened to ours
            if error is not None:
                raise error
        finally:
            self._busy.release()

    def _serve(self):
        while True:
            fn, lo, hi, done = self._todo.get()
            try:
                fn(lo, hi)
            except BaseException as e:       # handed to the caller, which raises it
                done.put(e)
            else:
                done.put(None)


def _resetter(ref):
    """A fork handler that resets the Halves behind ``ref`` while it lives (the handler cannot be
    unregistered, so it must not keep the object alive)."""
    def reset():
        halves = ref()
        if halves is not None:
            halves._reset()
    return reset
