"""Samplers: iterables of dataset indices (``torch.utils.data``'s samplers).

Random samplers draw from gt's one random generator: ``gt.manual_seed(s)`` makes their orders
reproducible, but they are not torch's orders for the same seed (gt's generator is not torch's).
"""

import itertools
import typing

from gt import dtypes
from gt.tensor import generator as generator_module
from gt.tensor import randint, randperm, tensor


def check_generator(generator, who):
    """``generator`` must be None (gt's default generator, ``gt.manual_seed``) or a ``gt.Generator``."""
    generator_module.check(generator, who)


def check_positive_int(value, name, error=ValueError):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise error(f"{name} should be a positive integer value, but got {name}={value!r}")


def check_bool(value, name, error=ValueError):
    if not isinstance(value, bool):
        raise error(f"{name} should be a boolean value, but got {name}={value!r}")


T_co = typing.TypeVar("T_co", covariant=True)


class Sampler(typing.Generic[T_co]):
    """Base class of samplers: subclasses give ``__iter__`` (indices) and, usually, ``__len__``.
    Generic like torch's (``class Lengths(Sampler[int])``)."""

    def __init__(self, data_source=None):
        pass  # torch ignores data_source here too (it is deprecated there)

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


class SequentialSampler(Sampler):
    """Indices ``0, 1, ..., len(data_source) - 1`` in order."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """Indices of ``data_source`` in a random order: a fresh permutation on each ``iter``, or,
    with ``replacement=True``, ``num_samples`` independent uniform draws.

    ``num_samples`` (default ``len(data_source)``) longer than the data without replacement
    chains whole permutations, as torch does. Draws come from gt's generator (``gt.manual_seed``),
    or from ``generator`` (a ``gt.Generator``), so orders are reproducible in gt but differ from torch's.

        >>> gt.manual_seed(0); sorted(RandomSampler(range(4)))
        [0, 1, 2, 3]
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        check_bool(replacement, "replacement", TypeError)
        check_positive_int(self.num_samples, "num_samples")
        check_generator(generator, "RandomSampler")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        if self.replacement:
            yield from randint(0, n, (self.num_samples,), generator=self.generator).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from randperm(n, generator=self.generator).tolist()
        yield from randperm(n, generator=self.generator).tolist()[:self.num_samples % n]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order (a fresh permutation on each ``iter``)."""

    def __init__(self, indices, generator=None):
        check_generator(generator, "SubsetRandomSampler")
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        for i in randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices of ``[0, len(weights))`` drawn with probabilities proportional to
    ``weights`` (a 1-D sequence or tensor, need not sum to 1), with or without ``replacement``."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        check_positive_int(num_samples, "num_samples")
        check_bool(replacement, "replacement")
        check_generator(generator, "WeightedRandomSampler")
        weights = tensor(weights, dtype=dtypes.float64)
        if weights.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(weights.shape)}")
        self.weights = weights
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        yield from self.weights.multinomial(self.num_samples, self.replacement, generator=self.generator).tolist()

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices taken in order from ``sampler``; the last, shorter batch
    is kept unless ``drop_last``.

        >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler, batch_size, drop_last):
        check_positive_int(batch_size, "batch_size")
        check_bool(drop_last, "drop_last")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        indices = iter(self.sampler)
        batch = list(itertools.islice(indices, self.batch_size))
        while batch and (len(batch) == self.batch_size or not self.drop_last):
            yield batch
            batch = list(itertools.islice(indices, self.batch_size))

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
