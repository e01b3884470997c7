"""torch.ao.nn.quantized: the dynamically quantized modules (``dynamic.Linear``)."""

from gt.ao.nn.quantized import dynamic

__all__ = ["dynamic"]
