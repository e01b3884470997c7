"""``DataLoader``: batches of a dataset, in the calling process or in worker processes
(``num_workers > 0``; the machinery is in ``gt.utils.data.workers``)."""

import itertools
import multiprocessing
import os
import warnings

from gt.utils.data.collate import default_collate, default_convert
from gt.tensor import randint
from gt.utils.data.dataset import IterableDataset
from gt.utils.data.sampler import (BatchSampler, RandomSampler, SequentialSampler, check_bool, check_generator,
                                   check_positive_int)
from gt.utils.data.workers import MultiProcessIter, WorkerInfo, get_worker_info

__all__ = ["DataLoader", "get_worker_info", "WorkerInfo"]


def _check_process_options(num_workers, timeout, prefetch_factor, pin_memory, persistent_workers,
                           pin_memory_device, multiprocessing_context):
    """Worker and memory options, with torch's checks and messages; gt has no pinned memory."""
    if num_workers < 0:
        raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
    if timeout < 0:
        raise ValueError("timeout option should be non-negative")
    if num_workers > 0:
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
    elif prefetch_factor is not None:
        raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                         "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
    if persistent_workers and num_workers == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")
    if multiprocessing_context is not None and num_workers == 0:
        raise ValueError("multiprocessing_context can only be used with multi-process loading (num_workers > 0), "
                         f"but got num_workers={num_workers}")
    if isinstance(multiprocessing_context, str) and \
            multiprocessing_context not in multiprocessing.get_all_start_methods():
        raise ValueError("multiprocessing_context option should specify a valid start method in "
                         f"{multiprocessing.get_all_start_methods()!r}, but got "
                         f"multiprocessing_context={multiprocessing_context!r}")
    if not isinstance(multiprocessing_context, (type(None), str, multiprocessing.context.BaseContext)):
        raise TypeError("multiprocessing_context option should be a valid context object or a string specifying "
                        f"the start method, but got multiprocessing_context={multiprocessing_context!r}")
    if pin_memory or pin_memory_device:
        raise NotImplementedError(f"DataLoader: pin_memory={pin_memory!r}, pin_memory_device={pin_memory_device!r} "
                                  "is not supported; gt has no pinned host memory (use pin_memory=False)")


def _check_sampling_options(iterable, batch_size, shuffle, sampler, batch_sampler, drop_last):
    """torch's checks of how batches are formed, with torch's messages."""
    if iterable:
        if shuffle not in {False, None}:
            raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                             f"but got shuffle={shuffle}")
        if sampler is not None:
            raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, "
                             f"but got sampler={sampler}")
        if batch_sampler is not None:
            raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                             f"but got batch_sampler={batch_sampler}")
    if sampler is not None and shuffle:
        raise ValueError("sampler option is mutually exclusive with shuffle")
    if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
        raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last")
    if batch_sampler is None and batch_size is None and drop_last:
        raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
    if batch_sampler is None and batch_size is not None:
        check_positive_int(batch_size, "batch_size")
        check_bool(drop_last, "drop_last")


_FIXED = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")


class DataLoader:
    """Iterate over ``dataset`` in batches, as ``torch.utils.data.DataLoader`` does.

    A map-style dataset is read in the order of ``sampler`` (default: in order, or a fresh random
    permutation per epoch with ``shuffle=True``), ``batch_size`` indices at a time (the last,
    shorter batch dropped with ``drop_last``), or in the lists ``batch_sampler`` yields; each list
    of samples goes through ``collate_fn`` (default ``default_collate``: tensors of shape ``S``
    give one ``(batch_size, *S)`` tensor). An ``IterableDataset`` is batched in its own order.
    ``batch_size=None`` turns batching off: each sample goes through ``collate_fn`` (default
    ``default_convert``) alone. ``len(loader)`` is the number of batches.

    ``num_workers > 0`` loads in that many worker processes, as torch does (context
    ``multiprocessing_context`` or the platform's default): index lists go to the workers
    round-robin, ``prefetch_factor`` (default 2) per worker in flight; batches come back in sampler
    order (``in_order=False``: as they are ready) and equal the single-process batches. Worker
    ``i`` seeds gt's default generator and ``random`` with ``base_seed + i`` (``base_seed`` drawn
    from ``generator`` or gt's default generator per epoch, also without workers, as torch) and
    numpy with torch's hash of the two; ``worker_init_fn(i)`` runs next; ``get_worker_info()``
    tells the worker its id. ``persistent_workers`` keeps the processes between epochs; ``timeout``
    (seconds) bounds the wait for one batch. An ``IterableDataset`` is iterated whole by every
    worker (split it with ``get_worker_info()``). A worker's exception is raised again here with
    its worker id and traceback.

    Where gt differs from torch: ``pin_memory=True`` is refused (gt has no pinned host memory).
    Shuffling draws from ``generator`` (a ``gt.Generator``) or gt's default generator
    (``gt.manual_seed``): reproducible, but not torch's order.

        >>> loader = DataLoader(TensorDataset(gt.arange(10)), batch_size=4, shuffle=True)
        >>> [b[0].shape for b in loader], len(loader)
        ([(4,), (4,), (2,)], 3)
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        _check_process_options(num_workers, timeout, prefetch_factor, pin_memory, persistent_workers,
                               pin_memory_device, multiprocessing_context)
        check_generator(generator, "DataLoader")
        self._iterable = isinstance(dataset, IterableDataset)
        _check_sampling_options(self._iterable, batch_size, shuffle, sampler, batch_sampler, drop_last)
        if batch_sampler is not None:
            batch_size, drop_last = None, False
        if sampler is None and not self._iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self.worker_init_fn, self.multiprocessing_context = worker_init_fn, multiprocessing_context
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        self.prefetch_factor, self.persistent_workers, self.in_order = prefetch_factor, persistent_workers, in_order
        self._workers = None    # the persistent workers' MultiProcessIter
        self.pin_memory_device = pin_memory_device
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._IterableDataset_len_called = None    # torch's name: the stream's len at len(loader)
        self._initialized = True
        self.check_worker_number_rationality()

    def check_worker_number_rationality(self):
        """torch's warning when ``num_workers`` is more than the CPUs this process may use."""
        if not self.num_workers:
            return
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if cpus is None or self.num_workers > cpus:
            suggestion = ("DataLoader is not able to compute a suggested max number of worker in current system."
                          if cpus is None else
                          f"Our suggested max number of worker in current system is {cpus}"
                          f"{'' if hasattr(os, 'sched_getaffinity') else ' (`cpuset` is not taken into account)'}, "
                          "which is smaller than what this DataLoader is going to create.")
            warnings.warn(f"This DataLoader will create {self.num_workers} worker processes in total. {suggestion} "
                          "Please be aware that excessive worker creation might get DataLoader running slow or even "
                          "freeze, lower the worker number to avoid potential slowness/freeze if necessary.",
                          stacklevel=2)

    def __setattr__(self, name, value):
        # the samplers were built from these: changing one later would leave them out of step
        if getattr(self, "_initialized", False) and name in _FIXED:
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None or (self._iterable and self.batch_size is not None)

    def __iter__(self):
        batches = self._epoch()
        reported = self._IterableDataset_len_called if self._iterable else None
        return batches if reported is None else _warn_past_length(batches, self.dataset, reported, self.num_workers)

    def _epoch(self):
        if self.num_workers > 0 and self.persistent_workers and self._workers is not None:
            self._workers.reset()   # as torch: the workers keep their seeds, no new base seed drawn
            return self._workers
        # as torch, each epoch draws the workers' base seed (also without workers, so that a
        # shuffled order does not depend on num_workers)
        base_seed = randint(0, 2 ** 63 - 1, (), generator=self.generator).item()
        if self.num_workers > 0:
            self.check_worker_number_rationality()
            workers = MultiProcessIter(self, base_seed)
            if self.persistent_workers:
                self._workers = workers
            return workers
        if self._iterable:
            return self._iter_stream()
        if self.batch_sampler is None:
            return (self.collate_fn(self.dataset[i]) for i in self.sampler)
        return (self.collate_fn(self._fetch(indices)) for indices in self.batch_sampler)

    def _fetch(self, indices):
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__(indices)
        return [self.dataset[i] for i in indices]

    def _iter_stream(self):
        samples = iter(self.dataset)
        if self.batch_size is None:
            yield from (self.collate_fn(s) for s in samples)
            return
        batch = list(itertools.islice(samples, self.batch_size))
        while batch and (len(batch) == self.batch_size or not self.drop_last):
            yield self.collate_fn(batch)
            batch = list(itertools.islice(samples, self.batch_size))

    def __len__(self):
        if not self._iterable:
            return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)
        length = len(self.dataset)  # TypeError, as in torch, for a stream without __len__
        self._IterableDataset_len_called = length
        if self.batch_size is None:
            return length
        if self.drop_last:
            return length // self.batch_size
        return -(-length // self.batch_size)


def _warn_past_length(batches, dataset, reported, num_workers):
    """The batches, with torch's warning for each one past the stream's ``len`` as read by
    ``len(loader)`` (torch compares the count of batches with the count of samples)."""
    for count, batch in enumerate(batches, 1):
        if count > reported:
            msg = (f"Length of IterableDataset {dataset} was reported to be {reported}(when accessing "
                   f"len(dataloader)), but {count} samples have been fetched. ")
            if num_workers > 0:
                msg += ("For multiprocessing data-loading, this could be caused by not properly configuring the "
                        "IterableDataset replica at each worker. Please see "
                        "https://pytorch.org/docs/stable/data.html#torch.utils.data.IterableDataset for examples.")
            warnings.warn(msg, stacklevel=2)
        yield batch
