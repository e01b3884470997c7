"""``DataLoader``'s worker processes (torch's multi-process loading).

The loading process sends each worker, round-robin, the index lists of the batch sampler (at most
``prefetch_factor`` per worker in flight); a worker fetches and collates them and sends the batch
back through one shared result queue (gt tensors pickle, numpy or torch arrays inside). Batches
are yielded in sampler order (``in_order=True``) or as they arrive. An ``IterableDataset`` is
iterated by every worker on its own copy; the user splits the stream with ``get_worker_info()``.
"""

import collections.abc
import itertools
import multiprocessing
import multiprocessing.queues
import os
import queue
import random
import sys
import time
import traceback
from dataclasses import dataclass

from gt.sharding import get_mesh
from gt.tensor import Tensor, manual_seed
from gt.utils.data.collate import rebuild

_POLL = 0.1     # seconds between checks that the workers (or, in a worker, the loading process) live

_worker_info = None


@dataclass(frozen=True)
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker: ``id`` in ``[0, num_workers)``, the
    worker's ``seed`` (``base_seed + id``) and its copy of ``dataset``."""
    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info():
    """The ``WorkerInfo`` of the loader worker process this runs in, or None in the main process."""
    return _worker_info


class _ExceptionWrapper:
    """An exception raised in a worker, carried to the loading process with its traceback text."""

    def __init__(self, exc_type, text, where):
        self.exc_type, self.text, self.where = exc_type, text, where

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.text}"
        try:
            error = self.exc_type(msg)
        except Exception:   # an exception class whose constructor wants other arguments
            error = RuntimeError(msg)
        try:
            raise error
        finally:
            del error   # no cycle between the exception and this frame: the iterator is freed at once


class _StreamEnd:
    """A worker's ``IterableDataset`` copy is exhausted."""

    def __init__(self, worker_id):
        self.worker_id = worker_id


def _numpy_seed(base_seed, worker_id):
    """torch's seed for numpy's legacy global generator in a worker: four 32-bit words hashed
    from ``base_seed`` and ``worker_id`` (torch's ``_generate_state``, so numpy draws match torch's)."""
    mask = 0xFFFFFFFF
    const_a = [0x43B0D7E5]

    def hash_(value):
        value = (value ^ const_a[0]) & mask
        const_a[0] = (const_a[0] * 0x931E8875) & mask
        value = (value * const_a[0]) & mask
        return (value ^ (value >> 16)) & mask

    def mix(x, y):
        result = ((0xCA01F9DD * x) & mask) - ((0x4973F715 * y) & mask) & mask
        result &= mask
        return (result ^ (result >> 16)) & mask

    pool = [hash_(v) for v in (worker_id, base_seed & mask, base_seed >> 32, 0)]
    for src in range(4):
        for dst in range(4):
            if src != dst:
                pool[dst] = mix(pool[dst], hash_(pool[src]))
    const_b, state = 0x8B51F9DD, []
    for value in pool:
        value = (value ^ const_b) & mask
        const_b = (const_b * 0x58F38DED) & mask
        value = (value * const_b) & mask
        state.append((value ^ (value >> 16)) & mask)
    return state


def _worker_loop(spec, worker_id, base_seed, index_queue, result_queue, stop, parent_pid):
    global _worker_info
    seed = base_seed + worker_id
    random.seed(seed)
    manual_seed(seed)   # gt's default generator, as torch seeds its own
    try:
        import numpy
        numpy.random.seed(_numpy_seed(base_seed, worker_id))
    except ImportError:
        pass
    result_queue.cancel_join_thread()   # exiting must not wait for results nobody will read
    _worker_info = WorkerInfo(worker_id, spec["num_workers"], seed, spec["dataset"])
    where = f"in DataLoader worker process {worker_id}"
    try:
        if spec["worker_init_fn"] is not None:
            spec["worker_init_fn"](worker_id)
        init_error = None
    except Exception:
        init_error = _ExceptionWrapper(sys.exc_info()[0], traceback.format_exc(), where)
    stream, ended = None, False
    while True:
        try:
            task = index_queue.get(timeout=_POLL)
        except queue.Empty:
            if stop.is_set() or os.getppid() != parent_pid:
                return      # the loader shut down, or its process is gone: nobody reads the results
            continue
        if task is None:
            return
        epoch, idx, indices = task
        if isinstance(indices, str):    # "reset": a new epoch of persistent workers over a stream
            stream, ended = None, False
            continue
        if init_error is not None:
            result_queue.put((epoch, idx, worker_id, init_error))
            continue
        if ended:
            continue
        try:
            if spec["iterable"]:
                if stream is None:
                    stream = iter(spec["dataset"])
                data = _next_stream_batch(stream, spec)
                if data is None:
                    ended = True
                    data = _StreamEnd(worker_id)
            else:
                data = _fetch(spec, indices)
            if spec["cuda"]:
                data = _sendable(data)
        except Exception:
            data = _ExceptionWrapper(sys.exc_info()[0], traceback.format_exc(), where)
        result_queue.put((epoch, idx, worker_id, data))
        del data


class _ResultQueue(multiprocessing.queues.Queue):
    """The workers' result queue. multiprocessing pickles what is put in a background thread of
    the worker, where a batch that does not pickle was printed and dropped, and the loading
    process waited for it for ever (as torch's loader does): here it becomes that batch's error,
    raised by the loader with the worker's traceback."""

    def _on_queue_feeder_error(self, e, obj):
        epoch, idx, worker_id, data = obj
        if isinstance(data, _ExceptionWrapper) and data.exc_type is RuntimeError:
            return super()._on_queue_feeder_error(e, obj)     # even the plain report failed: print it
        text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        if isinstance(data, _ExceptionWrapper):    # the worker's own error does not pickle (a local class)
            exc_type, text, where = RuntimeError, data.text, data.where
        else:
            exc_type, where = type(e), f"in DataLoader worker process {worker_id} sending a batch (batches must pickle)"
        self.put((epoch, idx, worker_id, _ExceptionWrapper(exc_type, text, where)))


def _sendable(data):
    """``data`` with its CUDA tensors copied: a spawned worker's dataset arrives by CUDA IPC, and
    torch will not send a tensor it received from another process back (its slices included, as
    a sample without collation is); a copy made here is the worker's own. Containers as the
    collation rebuilds them (``collate.rebuild``); anything else as it is."""
    if isinstance(data, Tensor):
        return data.detach().clone() if data.is_cuda else data
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, collections.abc.Mapping):
        return rebuild(data, {key: _sendable(data[key]) for key in data})
    if isinstance(data, tuple):
        items = [_sendable(v) for v in data]
        return type(data)(*items) if hasattr(data, "_fields") else type(data)(items)
    if isinstance(data, collections.abc.Sequence):
        return rebuild(data, [_sendable(v) for v in data])
    return data


def _fetch(spec, indices):
    dataset, collate = spec["dataset"], spec["collate_fn"]
    if not spec["auto_collation"]:
        return collate(dataset[indices[0]])
    if callable(getattr(dataset, "__getitems__", None)):
        return collate(dataset.__getitems__(indices))
    return collate([dataset[i] for i in indices])


def _next_stream_batch(stream, spec):
    """The next collated batch (or sample, with batching off) of a worker's stream; None at its end."""
    batch_size, collate = spec["batch_size"], spec["collate_fn"]
    if batch_size is None:
        try:
            return (collate(next(stream)),)
        except StopIteration:
            return None
    batch = list(itertools.islice(stream, batch_size))
    if not batch or (spec["drop_last"] and len(batch) < batch_size):
        return None
    return (collate(batch),)


class _Settings:
    def __init__(self, loader):
        for name in ("_iterable", "batch_sampler", "sampler", "persistent_workers", "in_order", "timeout",
                     "prefetch_factor"):
            setattr(self, name, getattr(loader, name))


class MultiProcessIter:
    """An epoch (or, with ``persistent_workers``, every epoch) of a loader's worker processes."""

    def __init__(self, loader, base_seed):
        # the loader's settings, not the loader: it holds the persistent workers, and a cycle
        # would keep them alive until a garbage collection
        self._loader = _Settings(loader)
        if loader.prefetch_factor <= 0:     # no batch would ever be asked for: an empty epoch
            raise AssertionError("prefetch_factor must be greater than 0 for MultiProcessingDataLoaderIter")
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = multiprocessing.get_context()
        elif isinstance(ctx, str):
            ctx = multiprocessing.get_context(ctx)
        n = loader.num_workers
        kind = get_mesh().kind
        if kind != "cpu" and ctx.get_start_method() == "fork":
            # a forked child cannot use CUDA, and gt's tensors (the dataset's, each batch's) are there
            raise RuntimeError(f"DataLoader(num_workers={n}): gt computes on {kind} here, and CUDA cannot be used "
                               "in a forked worker process; pass multiprocessing_context='spawn' (each worker then "
                               "gets a pickled copy of the dataset), or num_workers=0")
        spec = dict(dataset=loader.dataset, num_workers=n, worker_init_fn=loader.worker_init_fn,
                    iterable=loader._iterable, batch_size=loader.batch_size, drop_last=loader.drop_last,
                    collate_fn=loader.collate_fn, auto_collation=loader._auto_collation, cuda=kind == "cuda")
        self._result_queue = _ResultQueue(ctx=ctx)
        # the stop signal that needs no queue: a queue in a garbage cycle may be closed before
        # the iterator's __del__ runs, and the None sent through it would never arrive
        self._stop = ctx.Event()
        self._index_queues, self._workers, self._shutdown = [], [], False
        try:
            for worker_id in range(n):
                index_queue = ctx.Queue()
                index_queue.cancel_join_thread()
                self._index_queues.append(index_queue)
                worker = ctx.Process(target=_worker_loop, daemon=True,
                                     args=(spec, worker_id, base_seed, index_queue, self._result_queue, self._stop,
                                           os.getpid()))
                worker.start()   # with 'spawn', an unpicklable dataset or function fails here
                self._workers.append(worker)
        except BaseException:
            self.shutdown()
            raise
        self._epoch = -1
        self.reset()

    def reset(self):
        """Start an epoch: a fresh pass of the batch sampler (or of each worker's stream)."""
        loader = self._loader
        self._epoch += 1
        if loader._iterable:
            self._tasks = itertools.repeat(None)
            if self._epoch > 0:
                for index_queue in self._index_queues:
                    index_queue.put((self._epoch, -1, "reset"))
        else:
            self._tasks = iter(loader.batch_sampler if loader.batch_sampler is not None else loader.sampler)
            if loader.batch_sampler is None:
                self._tasks = ([i] for i in self._tasks)
        self._active = list(range(len(self._workers)))
        self._next_worker = itertools.cycle(range(len(self._workers)))
        self._send_idx = self._rcvd_idx = 0
        self._owner, self._done = {}, {}    # task idx -> worker id; received, not yet yielded
        for _ in range(self._loader.prefetch_factor * len(self._workers)):
            self._send()

    def _send(self):
        if not self._active:
            return
        try:
            indices = next(self._tasks)
        except StopIteration:
            return
        worker_id = next(w for w in self._next_worker if w in self._active)
        self._index_queues[worker_id].put((self._epoch, self._send_idx, indices))
        self._owner[self._send_idx] = worker_id
        self._send_idx += 1

    def __iter__(self):
        return self

    def __next__(self):
        try:
            while True:
                if self._loader.in_order:
                    while (self._rcvd_idx < self._send_idx and self._rcvd_idx not in self._owner
                           and self._rcvd_idx not in self._done):
                        self._rcvd_idx += 1     # a task that a worker whose stream ended dropped
                    ready = self._rcvd_idx if self._rcvd_idx in self._done else None
                    finished = self._rcvd_idx >= self._send_idx
                else:
                    ready = next(iter(self._done), None)
                    finished = not self._done and not self._owner
                if ready is not None:
                    data = self._done.pop(ready)
                    self._rcvd_idx += self._loader.in_order
                    self._send()
                    break
                if finished:
                    if not self._loader.persistent_workers:
                        self.shutdown()
                    raise StopIteration
                idx, worker_id, data = self._get()
                if isinstance(data, _StreamEnd):
                    self._active.remove(worker_id)
                    self._owner = {i: w for i, w in self._owner.items() if w != worker_id}
                    continue
                self._owner.pop(idx, None)
                self._done[idx] = data
        except StopIteration:
            raise
        except BaseException:   # a dead worker, a timeout, an interrupt: the epoch cannot go on
            self.shutdown()
            raise
        # a worker's exception leaves the others working: as in torch, the next batch may follow
        return self._unwrap(data)

    def _unwrap(self, data):
        if isinstance(data, _ExceptionWrapper):
            data.reraise()
        return data[0] if self._loader._iterable else data

    def _get(self):
        """The next result of this epoch, watching the workers and ``timeout``."""
        timeout = self._loader.timeout
        start = time.monotonic()
        while True:
            wait = _POLL if timeout <= 0 else max(0.0, min(_POLL, start + timeout - time.monotonic()))
            try:
                epoch, idx, worker_id, data = self._result_queue.get(timeout=wait)
            except queue.Empty:
                dead = [w.pid for w in self._workers if not w.is_alive()]
                if dead:
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(map(str, dead))}) "
                                       "exited unexpectedly") from None
                if timeout > 0 and time.monotonic() - start >= timeout:
                    raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None
                continue
            if epoch == self._epoch:
                return idx, worker_id, data

    def shutdown(self):
        """Stop the workers and wait for them; safe to call twice."""
        if self._shutdown:
            return
        self._shutdown = True
        self._stop.set()
        for index_queue in self._index_queues:
            try:
                index_queue.put(None)
            except (OSError, ValueError):
                pass
        for worker in self._workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        for q in self._index_queues + [self._result_queue]:
            q.cancel_join_thread()
            q.close()

    def __del__(self):
        if hasattr(self, "_shutdown"):
            self.shutdown()
