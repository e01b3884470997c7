"""torch.multiprocessing's basics for gt tensors: Python's ``multiprocessing`` (``Process``,
``Queue``, ``get_context``, ``set_start_method``...: every name of it), with gt tensors sent
between processes as torch sends its tensors, and torch's ``spawn``/``start_processes``.

A tensor in shared memory (``Tensor.share_memory_``, ``Module.share_memory``) goes to another
process, through a ``Queue`` or as a ``Process`` argument, as a handle on the same memory, under
'fork' and 'spawn' alike: writes on either side are seen by the other (Hogwild-style training).
Keep it alive in the sender until the receiver has it. Any other tensor goes as a pickle goes: on
the numpy engine its values are copied (the receiver's writes stay its own); on the torch engine
torch's reductions move its storage into shared memory on the way, as torch.multiprocessing does.
A tensor sharded over the mesh is gathered and copied. ``.grad`` and graphs do not travel, as
with pickle.

Example (Hogwild)::

    model.share_memory()
    workers = [gt.multiprocessing.Process(target=train, args=(model,)) for _ in range(2)]
"""

import multiprocessing
import signal
import sys
import traceback
import warnings
from multiprocessing import *  # noqa: F401,F403  (torch.multiprocessing re-exports all of it)
from multiprocessing import connection
from multiprocessing.reduction import ForkingPickler

from gt.backend import B
from gt.nn.parameter import Parameter
from gt.tensor import Tensor

__all__ = ["spawn", "start_processes", "ProcessContext", "ProcessException", "ProcessRaisedException",
           "ProcessExitedException", "set_sharing_strategy", "get_sharing_strategy", "get_all_sharing_strategies",
           *multiprocessing.__all__]

_STRATEGIES = ("file_descriptor", "file_system")
_strategy = ["file_descriptor"]


def _reduce_tensor(t):
    """How multiprocessing's pickler sends a gt tensor: its own pickle (values, dtype,
    ``requires_grad``), with a shared array replaced by a handle on its memory. A computed tensor
    that requires grad is refused, as torch refuses it: its graph cannot cross processes."""
    if t.requires_grad and not t.is_leaf:
        raise RuntimeError("Cowardly refusing to serialize non-leaf tensor which requires_grad, since autograd does "
                           "not support crossing process boundaries.  If you just want to transfer the data, call "
                           "detach() on the tensor before serializing (e.g., putting it on the queue).")
    reduced = t.__reduce_ex__(4)
    ref = None if t._placed is not None else B.shared_reduce(t._array)
    if ref is None:
        return reduced
    attributes, slots = reduced[2]
    return reduced[:2] + ((attributes, dict(slots, _array=ref)),) + reduced[3:]


for _cls in (Tensor, Parameter):   # the pickler's table goes by exact class, as torch registers its own
    ForkingPickler.register(_cls, _reduce_tensor)
del _cls


def get_all_sharing_strategies():
    """torch's sharing strategies on Linux: ``{'file_descriptor', 'file_system'}``."""
    return set(_STRATEGIES)


def get_sharing_strategy():
    """The strategy shared CPU tensors are sent with (torch's default: 'file_descriptor')."""
    return _strategy[0]


def set_sharing_strategy(new_strategy):
    """torch's ``set_sharing_strategy``: passed on to torch on the torch engine; the numpy engine
    sends every shared array by its segment's name whichever is chosen."""
    if new_strategy not in _STRATEGIES:
        raise AssertionError(f"set_sharing_strategy: new_strategy must be one of {_STRATEGIES}, got "
                             f"{new_strategy!r}")
    B.set_sharing_strategy(new_strategy)
    _strategy[0] = new_strategy


class ProcessException(Exception):
    """A process started by ``spawn`` failed (torch's)."""

    def __init__(self, msg, error_index, pid):
        super().__init__(msg)
        self.msg, self.error_index, self.pid = msg, error_index, pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid)


class ProcessRaisedException(ProcessException):
    """A process started by ``spawn`` raised: the message holds its traceback."""

    def __init__(self, msg, error_index, error_pid):
        super().__init__(msg, error_index, error_pid)


class ProcessExitedException(ProcessException):
    """A process started by ``spawn`` exited with a non-zero code or was killed by a signal."""

    def __init__(self, msg, error_index, error_pid, exit_code, signal_name=None):
        super().__init__(msg, error_index, error_pid)
        self.exit_code, self.signal_name = exit_code, signal_name

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid, self.exit_code, self.signal_name)


def _wrap(fn, i, args, error_queue):
    try:
        fn(i, *args)
    except KeyboardInterrupt:
        pass
    except Exception:  # noqa: BLE001  (any failure goes to the parent, with its traceback)
        error_queue.put(traceback.format_exc())
        sys.exit(1)


class ProcessContext:
    """The processes ``spawn(..., join=False)`` started; ``join()`` waits for them (torch's)."""

    def __init__(self, processes, error_queues):
        self.processes, self.error_queues = processes, error_queues
        self.sentinels = {p.sentinel: i for i, p in enumerate(processes)}

    def pids(self):
        return [int(p.pid) for p in self.processes]

    def join(self, timeout=None):
        """Wait (up to ``timeout`` seconds) for the processes: True once all ended well, False while
        some run. Where one failed, the others are terminated and ``ProcessRaisedException`` (it
        raised: its traceback) or ``ProcessExitedException`` (its exit code or signal) is raised."""
        if not self.sentinels:
            return True
        ready = connection.wait(list(self.sentinels), timeout=timeout)
        failed = None
        for sentinel in ready:
            i = self.sentinels.pop(sentinel)
            self.processes[i].join()
            if self.processes[i].exitcode != 0 and failed is None:
                failed = i
        if failed is None:
            return not self.sentinels
        for p in self.processes:
            if p.is_alive():
                p.terminate()
            p.join()
        self._raise(failed)

    def _raise(self, i):
        process, queue = self.processes[i], self.error_queues[i]
        if queue.empty():
            code = process.exitcode
            if code < 0:
                name = signal.Signals(-code).name
                raise ProcessExitedException(f"process {i} terminated with signal {name}", i, process.pid, code,
                                             name)
            raise ProcessExitedException(f"process {i} terminated with exit code {code}", i, process.pid, code)
        msg = f"\n\n-- Process {i} terminated with the following error:\n" + queue.get()
        raise ProcessRaisedException(msg, i, process.pid)


def start_processes(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """torch's ``start_processes``: ``fn(i, *args)`` in ``nprocs`` new processes (``i`` = 0..nprocs-1)
    started with ``start_method``. ``join=True`` waits for all and raises as ``ProcessContext.join``;
    else returns the ``ProcessContext``."""
    if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"start_processes: nprocs must be a positive int, got {nprocs!r}")
    ctx = multiprocessing.get_context(start_method)
    processes, queues = [], []
    for i in range(nprocs):
        queue = ctx.SimpleQueue()
        process = ctx.Process(target=_wrap, args=(fn, i, args, queue), daemon=daemon)
        process.start()
        processes.append(process)
        queues.append(queue)
    context = ProcessContext(processes, queues)
    if not join:
        return context
    while not context.join():
        pass
    return None


def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """torch's ``spawn``: ``start_processes`` with the 'spawn' start method (``fn`` must be
    importable by the children: defined at the top level of a module)."""
    if start_method != "spawn":
        warnings.warn(f"This method only supports start_method=spawn (got: {start_method}).\nTo use a different "
                      "start_method use:\n\t\t gt.multiprocessing.start_processes(...)", FutureWarning, stacklevel=2)
    return start_processes(fn, args, nprocs, join, daemon, start_method)
