"""Datasets, samplers and ``DataLoader`` for gt tensors, with ``torch.utils.data``'s names and
semantics (torch 2.13), so a PyTorch training loop's data code runs unchanged:

    >>> from gt.utils.data import DataLoader, TensorDataset
    >>> ds = TensorDataset(gt.arange(10).reshape(5, 2), gt.arange(5))
    >>> [y.tolist() for _, y in DataLoader(ds, batch_size=2)]
    [[0, 1], [2, 3], [4]]

Where gt differs from torch:

- Randomness comes from gt's default generator (``gt.manual_seed``) or a ``gt.Generator`` given
  as ``generator=``: the same seed gives the same shuffles and splits, but not torch's
  permutations.
- ``num_workers > 0`` loads in worker processes as torch's (gt/utils/data/workers.py);
  ``pin_memory=True`` is refused (gt has no pinned host memory).
"""

from gt.utils.data.collate import default_collate, default_convert
from gt.utils.data.dataloader import DataLoader, get_worker_info
from gt.utils.data.distributed import DistributedSampler
from gt.utils.data.dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset,
                                   TensorDataset, random_split)
from gt.utils.data.sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                                   WeightedRandomSampler)

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "StackDataset", "Subset", "ConcatDataset", "ChainDataset",
           "random_split", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler", "DistributedSampler", "default_collate", "default_convert", "DataLoader", "get_worker_info"]
