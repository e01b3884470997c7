"""torch.ao.nn.intrinsic.quantized: ``LinearReLU``, ``ConvReLU1d/2d/3d`` and ``BNReLU2d/3d``, the
quantized Linear, convolutions and batch norms with the ReLU inside the requantization (outputs
clamped below at the zero point), what ``convert`` makes of the float fused modules; ``dynamic.LinearReLU``
(``quantize_dynamic``'s)."""

from gt.ao.nn import intrinsic
from gt.ao.nn.intrinsic.quantized import dynamic
from gt.ao.nn.quantized import normalization, static


class LinearReLU(static.Linear):
    """A quantized ``Linear`` whose outputs are clamped at its zero point (torch's ``quantized::linear_relu``)."""

    _FUSED_RELU, _FLOAT_FUSED = True, (intrinsic.LinearReLU,)


class ConvReLU2d(static.Conv2d):
    """A quantized ``Conv2d`` whose outputs are clamped at its zero point (torch's ``quantized::conv2d_relu``)."""

    _FUSED_RELU, _FLOAT_FUSED = True, (intrinsic.ConvReLU2d,)


class ConvReLU1d(static.Conv1d):
    """A quantized ``Conv1d`` whose outputs are clamped at its zero point (torch's ``quantized::conv1d_relu``)."""

    _FUSED_RELU, _FLOAT_FUSED = True, (intrinsic.ConvReLU1d,)


class ConvReLU3d(static.Conv3d):
    """A quantized ``Conv3d`` whose outputs are clamped at its zero point (torch's ``quantized::conv3d_relu``)."""

    _FUSED_RELU, _FLOAT_FUSED = True, (intrinsic.ConvReLU3d,)


class BNReLU2d(normalization.BatchNorm2d):
    """A quantized ``BatchNorm2d`` whose outputs are clamped at its zero point (``quantized::batch_norm2d_relu``)."""

    _FUSED_RELU, _FLOAT_FUSED = True, (intrinsic.BNReLU2d,)


class BNReLU3d(normalization.BatchNorm3d):
    """A quantized ``BatchNorm3d`` whose outputs are clamped at its zero point (``quantized::batch_norm3d_relu``)."""

    _FUSED_RELU, _FLOAT_FUSED = True, (intrinsic.BNReLU3d,)


__all__ = ["BNReLU2d", "BNReLU3d", "ConvReLU1d", "ConvReLU2d", "ConvReLU3d", "LinearReLU", "dynamic"]
