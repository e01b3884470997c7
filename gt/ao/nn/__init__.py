"""torch.ao.nn: quantized modules (``gt.ao.nn.quantized.dynamic.Linear``)."""

from gt.ao.nn import quantized

__all__ = ["quantized"]
