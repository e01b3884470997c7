"""torch.ao.nn.intrinsic.qat: the fused layers quantization-aware training trains: ``LinearReLU``,
``ConvReLU2d``/``ConvReLU3d`` (the QAT Linear/Conv2d/Conv3d with their ReLU) and ``ConvBn2d``/``ConvBnReLU2d`` (a Conv2d
trained with its BatchNorm folded into the fake-quantized weight, torch's approximate folding)."""

from gt.ao.nn.intrinsic.qat.modules import ConvBn2d, ConvBnReLU2d, ConvReLU2d, ConvReLU3d, LinearReLU, \
    freeze_bn_stats, update_bn_stats

__all__ = ["ConvBn2d", "ConvBnReLU2d", "ConvReLU2d", "ConvReLU3d", "LinearReLU", "freeze_bn_stats",
           "update_bn_stats"]
