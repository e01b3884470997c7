"""torch.ao.nn.quantized: the quantized modules (``dynamic.Linear``, the weight-only ``Embedding``)."""

from gt.ao.nn.quantized import dynamic
from gt.ao.nn.quantized.embedding import Embedding

__all__ = ["dynamic", "Embedding"]
