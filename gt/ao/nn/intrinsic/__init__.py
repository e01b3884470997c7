"""torch.ao.nn.intrinsic: the float fused modules ``fuse_modules`` makes (``LinearReLU``,
``ConvReLU1d/2d/3d``, ``BNReLU2d/3d``: a layer and its ReLU kept together, so that ``convert``
quantizes them as one kernel; ``fuse_modules_qat``'s ``ConvBn1d/2d/3d``, ``ConvBnReLU1d/2d/3d`` and
``LinearBn1d``), their QAT forms in ``gt.ao.nn.intrinsic.qat`` and quantized ones in
``gt.ao.nn.intrinsic.quantized``."""

from gt.nn.containers import Sequential


class _FusedModule(Sequential):
    """torch's ``_FusedModule``: a Sequential of the layers fused."""


class LinearReLU(_FusedModule):
    """``relu(linear(x))``: a ``Linear`` followed by a ``ReLU``, fused for quantization."""

    def __init__(self, linear, relu):
        super().__init__(linear, relu)


class ConvReLU2d(_FusedModule):
    """``relu(conv(x))``: a ``Conv2d`` followed by a ``ReLU``, fused for quantization."""

    def __init__(self, conv, relu):
        super().__init__(conv, relu)


class ConvReLU1d(_FusedModule):
    """``relu(conv(x))``: a ``Conv1d`` followed by a ``ReLU``, fused for quantization (Sequential's
    ``(conv, relu)``)."""


class ConvReLU3d(_FusedModule):
    """``relu(conv(x))``: a ``Conv3d`` followed by a ``ReLU``, fused for quantization (Sequential's
    ``(conv, relu)``)."""


class BNReLU2d(_FusedModule):
    """``relu(batch_norm(x))``: a ``BatchNorm2d`` followed by a ``ReLU``, fused for quantization
    (Sequential's ``(batch_norm, relu)``)."""


class BNReLU3d(_FusedModule):
    """``relu(batch_norm(x))``: a ``BatchNorm3d`` followed by a ``ReLU``, fused for quantization
    (Sequential's ``(batch_norm, relu)``)."""


class ConvBn2d(_FusedModule):
    """``bn(conv(x))``: a ``Conv2d`` and its ``BatchNorm2d``, kept apart for quantization-aware
    training (``fuse_modules_qat``; eval-mode fusion folds them into one Conv2d instead)."""

    def __init__(self, conv, bn):
        super().__init__(conv, bn)


class ConvBnReLU2d(_FusedModule):
    """``relu(bn(conv(x)))``, kept apart for quantization-aware training as ``ConvBn2d``."""

    def __init__(self, conv, bn, relu):
        super().__init__(conv, bn, relu)


class ConvBn1d(_FusedModule):
    """``bn(conv(x))``: a ``Conv1d`` and its ``BatchNorm1d``, kept apart for quantization-aware training."""

    def __init__(self, conv, bn):
        super().__init__(conv, bn)


class ConvBnReLU1d(_FusedModule):
    """``relu(bn(conv(x)))`` of a ``Conv1d``, kept apart for quantization-aware training."""

    def __init__(self, conv, bn, relu):
        super().__init__(conv, bn, relu)


class ConvBn3d(_FusedModule):
    """``bn(conv(x))``: a ``Conv3d`` and its ``BatchNorm3d``, kept apart for quantization-aware training."""

    def __init__(self, conv, bn):
        super().__init__(conv, bn)


class ConvBnReLU3d(_FusedModule):
    """``relu(bn(conv(x)))`` of a ``Conv3d``, kept apart for quantization-aware training."""

    def __init__(self, conv, bn, relu):
        super().__init__(conv, bn, relu)


class LinearBn1d(_FusedModule):
    """``bn(linear(x))``: a ``Linear`` and its ``BatchNorm1d``, kept apart for quantization-aware
    training (``fuse_modules_qat``; eval-mode fusion folds them into one Linear instead)."""

    def __init__(self, linear, bn):
        super().__init__(linear, bn)


from gt.ao.nn.intrinsic import qat, quantized  # noqa: E402  (their modules name the float ones above)

__all__ = ["BNReLU2d", "BNReLU3d", "ConvBn1d", "ConvBn2d", "ConvBn3d", "ConvBnReLU1d", "ConvBnReLU2d", "ConvBnReLU3d",
           "ConvReLU1d", "ConvReLU2d", "ConvReLU3d", "LinearBn1d", "LinearReLU", "qat", "quantized"]
