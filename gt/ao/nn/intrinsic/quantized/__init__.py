"""torch.ao.nn.intrinsic.quantized: ``LinearReLU`` and ``ConvReLU2d``, the quantized Linear and
Conv2d with the ReLU inside the requantization (outputs clamped below at the zero point), what
``convert`` makes of the float fused modules."""

from gt.ao.nn import intrinsic
from gt.ao.nn.quantized import static


class LinearReLU(static.Linear):
    """A quantized ``Linear`` whose outputs are clamped at its zero point (torch's ``quantized::linear_relu``)."""

    _FUSED_RELU = True
    _FLOAT_FUSED = (intrinsic.LinearReLU,)


class ConvReLU2d(static.Conv2d):
    """A quantized ``Conv2d`` whose outputs are clamped at its zero point (torch's ``quantized::conv2d_relu``)."""

    _FUSED_RELU = True
    _FLOAT_FUSED = (intrinsic.ConvReLU2d,)


__all__ = ["ConvReLU2d", "LinearReLU"]
