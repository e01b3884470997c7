"""Datasets: map-style (``Dataset``: ``ds[i]``, ``len(ds)``) and iterable (``IterableDataset``),
with torch's ``TensorDataset``, ``Subset``, ``ConcatDataset`` and ``random_split``."""

import bisect
import itertools
import math
import typing
import warnings

from gt.tensor import Tensor, randperm
from gt.utils.data.sampler import check_generator


T_co = typing.TypeVar("T_co", covariant=True)


class Dataset(typing.Generic[T_co]):
    """A map from keys (usually ``0 .. len - 1``) to samples: subclasses give ``__getitem__`` and,
    for the default samplers of ``DataLoader``, ``__len__``. ``a + b`` concatenates. Generic like
    torch's (``class Images(Dataset[Tensor])``)."""

    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co], typing.Iterable[T_co]):
    """A stream of samples: subclasses give ``__iter__`` (abstract, as torch's: a class without it
    cannot be instantiated). ``DataLoader`` batches it in order (no sampler, no shuffle)."""

    def __add__(self, other):
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples ``(t[i] for t in tensors)`` of tensors of the same length ``N`` along dim 0.

        >>> ds = TensorDataset(gt.zeros(4, 3), gt.arange(4))
        >>> len(ds), ds[1][0].shape, ds[1][1].item()
        (4, (3,), 1)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor) or t.ndim == 0:
                what = f"0-d tensor {t!r}" if isinstance(t, Tensor) else type(t).__name__
                raise TypeError(f"TensorDataset: argument {i} must be a gt.Tensor with at least one "
                                f"dimension, got {what}")
        if any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            raise AssertionError("Size mismatch between tensors")  # torch's error and message
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class StackDataset(Dataset):
    """Samples of several datasets of one length side by side: ``StackDataset(a, b)[i]`` is
    ``(a[i], b[i])``, ``StackDataset(x=a, y=b)[i]`` is ``{"x": a[i], "y": b[i]}``."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("Supported either ``tuple``- (via ``args``) or``dict``- (via ``kwargs``) like "
                             "input/output, but both types are given.")  # torch's message, word for word
        if not args and not kwargs:
            raise ValueError("At least one dataset should be passed")
        self.datasets = args or kwargs
        parts = list(args or kwargs.values())
        self._length = len(parts[0])
        if any(len(d) != self._length for d in parts):
            raise ValueError("Size mismatch between datasets")

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __getitems__(self, indices):
        """The samples at ``indices``, each part read in one batch where its dataset has
        ``__getitems__`` (torch's batched fetch)."""
        named = isinstance(self.datasets, dict)
        columns = {}
        for key, d in (self.datasets.items() if named else enumerate(self.datasets)):
            if not callable(getattr(d, "__getitems__", None)):
                columns[key] = [d[i] for i in indices]
                continue
            columns[key] = d.__getitems__(indices)
            if len(columns[key]) != len(indices):
                raise ValueError(f"Nested dataset's output size mismatch. Expected {len(indices)}, "
                                 f"got {len(columns[key])}")
        if named:
            return [{k: c[j] for k, c in columns.items()} for j in range(len(indices))]
        return [tuple(c[j] for c in columns.values()) for j in range(len(indices))]

    def __len__(self):
        return self._length


class ChainDataset(IterableDataset):
    """Iterable datasets one after another (``a + b`` of two ``IterableDataset``s)."""

    def __init__(self, datasets):
        self.datasets = datasets

    def _checked(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")  # torch's error
            yield d

    def __iter__(self):
        for d in self._checked():
            yield from d

    def __len__(self):
        return sum(len(d) for d in self._checked())


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order: ``Subset(ds, idx)[i]`` is
    ``ds[idx[i]]``."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices):
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """The samples of several map-style datasets one after another; ``cumulative_sizes[k]`` is
    the total length of the first ``k + 1`` datasets."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")  # torch's error
        if any(isinstance(d, IterableDataset) for d in self.datasets):
            raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx += len(self)
        if idx >= len(self):
            raise IndexError(f"index {idx} is out of range for a ConcatDataset of length {len(self)}")
        k = bisect.bisect_right(self.cumulative_sizes, idx)
        return self.datasets[k][idx - (self.cumulative_sizes[k - 1] if k else 0)]


def _fraction_lengths(n, fractions):
    """Split lengths of ``n`` items for fractions summing to 1: floors, then the remainder handed
    out one by one from the first split (torch's rule)."""
    for i, frac in enumerate(fractions):
        if frac < 0 or frac > 1:
            raise ValueError(f"Fraction at index {i} is not between 0 and 1")
    lengths = [math.floor(n * frac) for frac in fractions]
    for i in range(n - sum(lengths)):
        lengths[i % len(lengths)] += 1
    for i, length in enumerate(lengths):
        if length == 0:
            warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                          stacklevel=3)
    return lengths


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping ``Subset``s of the given ``lengths`` (ints summing to
    ``len(dataset)``, or fractions summing to 1), over one random permutation.

    The permutation comes from ``generator`` (a ``gt.Generator``) or gt's default generator
    (``gt.manual_seed``), so a split is reproducible in gt but is not torch's split for the same
    seed.

        >>> gt.manual_seed(0); train, val = random_split(range(10), [0.8, 0.2])
        >>> len(train), len(val)
        (8, 2)
    """
    check_generator(generator, "random_split")
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        lengths = _fraction_lengths(len(dataset), lengths)
    if sum(lengths) != len(dataset):
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    indices = randperm(sum(lengths), generator=generator).tolist()
    return [Subset(dataset, indices[end - length:end])
            for end, length in zip(itertools.accumulate(lengths), lengths)]
