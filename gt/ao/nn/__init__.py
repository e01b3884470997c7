"""torch.ao.nn: quantized modules (``gt.ao.nn.quantized``, ``gt.ao.nn.intrinsic``: fused float modules
and their quantized forms)."""

from gt.ao.nn import intrinsic, qat, quantized

__all__ = ["intrinsic", "qat", "quantized"]
