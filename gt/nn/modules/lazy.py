"""torch's ``torch.nn.modules.lazy``: ``LazyModuleMixin``, the base of modules whose parameters
take their shape from the first input (gt/nn/lazy.py).

    >>> from gt.nn.modules.lazy import LazyModuleMixin
"""

from gt.nn.lazy import LazyModuleMixin  # noqa: F401

__all__ = ["LazyModuleMixin"]
