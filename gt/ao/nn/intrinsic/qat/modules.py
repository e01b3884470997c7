"""torch.ao.nn.intrinsic.qat's modules: ``LinearReLU`` and ``ConvReLU1d/2d/3d`` (the QAT layer, then a
ReLU), and ``ConvBn1d/2d/3d``/``ConvBnReLU1d/2d/3d``: a convolution trained with its BatchNorm folded into the
weight before fake quantization (torch's ``_forward_approximate``: ``w * gamma / sqrt(running_var +
eps)`` fake-quantized, the conv's output divided by that factor again, then the BatchNorm itself,
which in training updates its statistics)."""

from gt.ao.nn import intrinsic
from gt.ao.nn.qat import modules as qat
from gt.nn import (BatchNorm1d, BatchNorm2d, BatchNorm3d, Conv1d as FloatConv1d, Conv2d as FloatConv2d,
                   Conv3d as FloatConv3d)
from gt.nn.activation_functions import relu
from gt.nn.core_functions import linear
from gt.nn.utils_extra import fuse_conv_bn_weights
from gt.tensor import zeros


class LinearReLU(qat.Linear):
    """``relu(x @ weight_fake_quant(weight).T + bias)``; from the float fused ``LinearReLU``."""

    _FLOAT_MODULE = intrinsic.LinearReLU

    def forward(self, input):
        return relu(linear(self._checked(input), self.weight_fake_quant(self.weight), self.bias))


class ConvReLU2d(qat.Conv2d):
    """``relu(conv2d(x, weight_fake_quant(weight), bias))``; from the float fused ``ConvReLU2d``."""

    _FLOAT_MODULE = intrinsic.ConvReLU2d

    def forward(self, input):
        return relu(self._conv_forward(input, self.weight_fake_quant(self.weight), self.bias))


class ConvReLU3d(qat.Conv3d):
    """``relu(conv3d(x, weight_fake_quant(weight), bias))``; from the float fused ``ConvReLU3d``."""

    _FLOAT_MODULE = intrinsic.ConvReLU3d

    def forward(self, input):
        return relu(self._conv_forward(input, self.weight_fake_quant(self.weight), self.bias))


class ConvReLU1d(qat.Conv1d):
    """``relu(conv1d(x, weight_fake_quant(weight), bias))``; from the float fused ``ConvReLU1d`` (torch's
    class; its default QAT mapping leaves ``ConvReLU1d`` float)."""

    _FLOAT_MODULE = intrinsic.ConvReLU1d

    def forward(self, input):
        return relu(self._conv_forward(input, self.weight_fake_quant(self.weight), self.bias))


class BnFolded:
    """What the QAT layers with a folded BatchNorm (``ConvBnNd``, ``LinearBn1d``) share, as torch's:
    the BatchNorm ``bn``, the weight's fake quantizer, and freezing the BatchNorm's statistics."""

    def _with_bn(self, bn_class, features, eps, momentum, freeze_bn, qconfig):
        self.qconfig = qat._qconfig(qconfig)
        self.freeze_bn = freeze_bn if self.training else True
        self.bn = bn_class(features, eps, momentum, True, True)
        self.weight_fake_quant = qconfig.weight()
        if self.training and not freeze_bn:
            self.update_bn_stats()
        else:
            self.freeze_bn_stats()

    def update_bn_stats(self):
        self.freeze_bn = False
        self.bn.training = True
        return self

    def freeze_bn_stats(self):
        self.freeze_bn = True
        self.bn.training = False
        return self

    def reset_running_stats(self):
        self.bn.reset_running_stats()

    def train(self, mode=True):
        """torch's: the BatchNorm follows ``mode`` only while its statistics are not frozen."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        self.training = mode
        if not self.freeze_bn:
            for module in self.children():
                module.train(mode)
        return self


class _ConvBnNd(BnFolded):
    """A convolution (``weight``, optional ``bias``; mixed into ``nn.Conv1d/2d/3d``) and its
    BatchNorm (``bn``) trained together: ``bn(conv(x, fq(w * s)) / s + bias)`` with ``s =
    bn.weight / sqrt(bn.running_var + bn.eps)`` per output channel, (N, C, *spatial) -> (N,
    out_channels, *spatial'). ``freeze_bn_stats()`` keeps the BatchNorm in eval mode (its running
    statistics fixed) whatever ``train()`` says."""

    _RELU = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=None,
                 padding_mode="zeros", eps=1e-05, momentum=0.1, freeze_bn=False, qconfig=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bool(bias),
                         padding_mode)
        self._with_bn(self._BN, out_channels, eps, momentum, freeze_bn, qconfig)

    def _scale_factor(self):
        return self.bn.weight / (self.bn.running_var + self.bn.eps).sqrt()

    def forward(self, input):
        factor, ones = self._scale_factor(), (1,) * (self.weight.ndim - 2)
        scaled_weight = self.weight_fake_quant(self.weight * factor.reshape(-1, 1, *ones))
        zero_bias = zeros(self.out_channels, dtype=input.dtype)       # the conv's own bias is added after
        out = self._conv_forward(input, scaled_weight, zero_bias) / factor.reshape(1, -1, *ones)
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1, *ones)
        out = self.bn(out)
        return relu(out) if self._RELU else out

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT form of the float fused ``ConvBnNd`` (``ConvBnReLUNd``), sharing its conv's
        parameters and its BatchNorm's parameters and running statistics."""
        qat.check_float(cls, mod)
        conv, bn = mod[0], mod[1]
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                  conv.groups, conv.bias is not None, conv.padding_mode, bn.eps, bn.momentum, False, mod.qconfig)
        new.weight, new.bias = conv.weight, conv.bias
        share_bn(new.bn, bn)
        return new

    def weight_bias_to_quantize(self):
        """The BatchNorm folded into the conv with its running statistics (what ``convert`` quantizes)."""
        bn = self.bn
        return fuse_conv_bn_weights(self.weight, self.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
                                    bn.bias)


def share_bn(new, bn):
    """``new`` (a QAT layer's BatchNorm) holding ``bn``'s parameters and running statistics."""
    new.weight, new.bias = bn.weight, bn.bias
    new.running_mean, new.running_var = bn.running_mean, bn.running_var
    new.num_batches_tracked = bn.num_batches_tracked


class ConvBn1d(_ConvBnNd, FloatConv1d):
    """``_ConvBnNd`` of a ``Conv1d`` and ``BatchNorm1d``: (N, C, L) -> (N, out_channels, L')."""

    _FLOAT_MODULE, _BN = intrinsic.ConvBn1d, BatchNorm1d


class ConvBnReLU1d(ConvBn1d):
    """``relu`` of ``ConvBn1d``'s output; from the float fused ``ConvBnReLU1d``."""

    _FLOAT_MODULE, _RELU = intrinsic.ConvBnReLU1d, True


class ConvBn2d(_ConvBnNd, FloatConv2d):
    """``_ConvBnNd`` of a ``Conv2d`` and ``BatchNorm2d``: (N, C, H, W) -> (N, out_channels, H', W')."""

    _FLOAT_MODULE, _BN = intrinsic.ConvBn2d, BatchNorm2d


class ConvBnReLU2d(ConvBn2d):
    """``relu`` of ``ConvBn2d``'s output; from the float fused ``ConvBnReLU2d``."""

    _FLOAT_MODULE, _RELU = intrinsic.ConvBnReLU2d, True


class ConvBn3d(_ConvBnNd, FloatConv3d):
    """``_ConvBnNd`` of a ``Conv3d`` and ``BatchNorm3d``: (N, C, D, H, W) -> (N, out_channels, D', H', W')."""

    _FLOAT_MODULE, _BN = intrinsic.ConvBn3d, BatchNorm3d


class ConvBnReLU3d(ConvBn3d):
    """``relu`` of ``ConvBn3d``'s output; from the float fused ``ConvBnReLU3d``."""

    _FLOAT_MODULE, _RELU = intrinsic.ConvBnReLU3d, True


def update_bn_stats(mod):
    """``model.apply(update_bn_stats)``: the BatchNorms of the ConvBn layers update their statistics again."""
    if isinstance(mod, _ConvBnNd):
        mod.update_bn_stats()


def freeze_bn_stats(mod):
    """``model.apply(freeze_bn_stats)``: the BatchNorms of the ConvBn layers keep their running statistics."""
    if isinstance(mod, _ConvBnNd):
        mod.freeze_bn_stats()
