"""torch.ao.nn.intrinsic.qat: the fused layers quantization-aware training trains: ``LinearReLU``,
``ConvReLU1d/2d/3d`` (the QAT Linear/convolution with their ReLU), ``ConvBn1d/2d/3d``/``ConvBnReLU1d/2d/3d``
(a convolution trained with its BatchNorm folded into the fake-quantized weight, torch's approximate
folding) and ``LinearBn1d`` (the same for a Linear and its BatchNorm1d)."""

from gt.ao.nn.intrinsic.qat.linear_fused import LinearBn1d
from gt.ao.nn.intrinsic.qat.modules import (ConvBn1d, ConvBn2d, ConvBn3d, ConvBnReLU1d, ConvBnReLU2d, ConvBnReLU3d,
                                            ConvReLU1d, ConvReLU2d, ConvReLU3d, LinearReLU, freeze_bn_stats,
                                            update_bn_stats)

__all__ = ["ConvBn1d", "ConvBn2d", "ConvBn3d", "ConvBnReLU1d", "ConvBnReLU2d", "ConvBnReLU3d", "ConvReLU1d",
           "ConvReLU2d", "ConvReLU3d", "LinearBn1d", "LinearReLU", "freeze_bn_stats", "update_bn_stats"]
