"""Utilities around gt tensors, named as in ``torch.utils``: ``gt.utils.data`` (datasets,
samplers, ``DataLoader``) and ``gt.utils.checkpoint`` (activation checkpointing).

This layer sits beside gt/optim: it sees gt tensors (gt/tensor and below), never modules.
"""

from gt.utils import checkpoint, data

__all__ = ["checkpoint", "data"]
