"""Utilities around gt tensors, named as in ``torch.utils``: ``gt.utils.data`` (datasets,
samplers, ``DataLoader``), ``gt.utils.checkpoint`` (activation checkpointing), ``gt.utils.benchmark``
(``Timer``, ``Measurement``, ``Compare``) and ``gt.utils.hooks`` (``RemovableHandle``).

This layer sits beside gt/optim: it sees gt tensors (gt/tensor and below), never modules.
"""

import importlib

__all__ = ["benchmark", "checkpoint", "data", "hooks"]


def __getattr__(name):
    # each loads on first use (the import sets gt.utils.<name> itself): gt.nn imports gt.utils.hooks
    # for every module hook's handle, and `import gt` must not pay for DataLoader and Timer with it
    if name in __all__:
        return importlib.import_module(f"gt.utils.{name}")
    raise AttributeError(f"module 'gt.utils' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
