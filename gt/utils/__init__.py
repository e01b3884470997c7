"""Utilities around gt tensors, named as in ``torch.utils``: ``gt.utils.data`` (datasets,
samplers, ``DataLoader``).

This layer sits beside gt/optim: it sees gt tensors (gt/tensor and below), never modules.
"""

from gt.utils import data

__all__ = ["data"]
