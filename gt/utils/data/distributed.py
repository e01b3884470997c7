"""``DistributedSampler``: each process of a data-parallel run reads its own share of a dataset
(``torch.utils.data.distributed.DistributedSampler``'s arguments and arithmetic).

Every process must draw the same order, so the shuffle is seeded by ``seed + epoch`` alone (a
generator of its own, not gt's global one): call ``set_epoch(epoch)`` at the start of each epoch,
as with torch, for a new order. The order is Python's ``random.Random(seed + epoch).shuffle``, so
it is the same on every process and every machine, but not torch's permutation.

Without ``num_replicas`` and ``rank`` they come from the environment ``torchrun`` sets
(``WORLD_SIZE``, ``RANK``), which is also what ``gt.distributed.init()`` reads; torch asks its
initialised process group instead.
"""

import math
import os
import random

from gt import dtypes
from gt.utils.data.sampler import Sampler, check_bool


def _from_env(name, value):
    if value is not None:
        return value
    raw = os.environ.get(name)
    if raw is None:
        raise RuntimeError(f"DistributedSampler: {name.lower().replace('world_size', 'num_replicas')} was not given "
                           f"and {name} is not set: pass num_replicas= and rank=, or start the processes with torchrun")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"DistributedSampler: environment variable {name}={raw!r} is not an integer") from None


def _as_int(value):
    """``value`` as a Python int where it is an integer (numpy's too, which torch takes), else
    ``value`` itself, for the checks to name."""
    n = dtypes.as_index(value)
    return value if n is None else n


class DistributedSampler(Sampler):
    """Indices of ``dataset`` for process ``rank`` of ``num_replicas``: every ``num_replicas``-th
    index of one order, starting at ``rank``. Without ``drop_last`` the order is padded by
    repeating its start so that every process gets ``ceil(len / num_replicas)`` indices; with
    it, the tail that does not divide evenly is dropped.

        >>> sampler = DistributedSampler(ds, num_replicas=2, rank=0, shuffle=False)
        >>> list(sampler)        # of 5 items: 0, 2, 4 (rank 1 gets 1, 3, 0)
        [0, 2, 4]
        >>> loader = DataLoader(ds, batch_size=8, sampler=sampler)
        >>> for epoch in range(epochs):
        ...     sampler.set_epoch(epoch)
        ...     for batch in loader: ...
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        num_replicas = _as_int(_from_env("WORLD_SIZE", num_replicas))
        rank = _as_int(_from_env("RANK", rank))
        seed = _as_int(seed)
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas should be a positive integer, got {num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        check_bool(shuffle, "shuffle", TypeError)
        check_bool(drop_last, "drop_last", TypeError)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"DistributedSampler: seed should be an int, got {seed!r}")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.epoch, self.shuffle, self.seed, self.drop_last = 0, shuffle, seed, drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        indices = list(range(len(self.dataset)))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(indices)
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """The epoch whose order the next ``iter`` draws (every process must set the same)."""
        self.epoch = epoch
