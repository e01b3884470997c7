"""``DataLoader``: batches of a dataset, in the calling process (torch's single-process path)."""

import itertools

from gt.utils.data.collate import default_collate, default_convert
from gt.utils.data.dataset import IterableDataset
from gt.utils.data.sampler import (BatchSampler, RandomSampler, SequentialSampler, check_bool, check_generator,
                                   check_positive_int)


def _check_process_options(num_workers, timeout, prefetch_factor, pin_memory, persistent_workers,
                           pin_memory_device, multiprocessing_context):
    """Worker and memory options: gt loads in the calling process, so each must be at the value
    that asks for nothing more (torch's own checks first, with torch's messages)."""
    if num_workers < 0:
        raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
    if num_workers > 0:
        raise NotImplementedError(f"DataLoader: num_workers={num_workers} is not supported; gt loads batches in "
                                  "the calling process (use num_workers=0)")
    if timeout < 0:
        raise ValueError("timeout option should be non-negative")
    if prefetch_factor is not None:
        raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                         "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
    if persistent_workers:
        raise ValueError("persistent_workers option needs num_workers > 0")
    if multiprocessing_context is not None:
        raise ValueError("multiprocessing_context can only be used with multi-process loading (num_workers > 0), "
                         f"but got num_workers={num_workers}")
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


def get_worker_info():
    """Information on the loader worker process this runs in: always None in gt, whose loading
    runs in the calling process (torch gives None there too)."""
    return None


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

    Where gt differs from torch: loading runs in the calling process: ``num_workers`` must be 0
    (NotImplementedError otherwise), ``pin_memory``, ``persistent_workers``, ``prefetch_factor``
    and ``multiprocessing_context`` stay at their defaults (``pin_memory=True`` is refused: gt
    has no pinned host memory), while ``timeout``, ``worker_init_fn`` and ``in_order`` are
    accepted and, as in torch without workers, unused. Shuffling draws from ``generator`` (a
    ``gt.Generator``) or gt's default generator (``gt.manual_seed``): reproducible, but not torch's
    order.

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
        self.prefetch_factor, self.persistent_workers, self.in_order = prefetch_factor, persistent_workers, in_order
        self.pin_memory_device = pin_memory_device
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._initialized = True

    def __setattr__(self, name, value):
        # the samplers were built from these: changing one later would leave them out of step
        if getattr(self, "_initialized", False) and name in _FIXED:
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None or (self._iterable and self.batch_size is not None)

    def __iter__(self):
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
        if self.batch_size is None:
            return length
        if self.drop_last:
            return length // self.batch_size
        return -(-length // self.batch_size)
