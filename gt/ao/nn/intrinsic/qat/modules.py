"""torch.ao.nn.intrinsic.qat's modules: ``LinearReLU`` and ``ConvReLU2d/3d`` (the QAT layer, then a
ReLU), and ``ConvBn2d``/``ConvBnReLU2d``: a Conv2d trained with its BatchNorm2d folded into the
weight before fake quantization (torch's ``_forward_approximate``: ``w * gamma / sqrt(running_var +
eps)`` fake-quantized, the conv's output divided by that factor again, then the BatchNorm itself,
which in training updates its statistics)."""

from gt.ao.nn import intrinsic
from gt.ao.nn.qat import modules as qat
from gt.nn import BatchNorm2d, Conv2d as FloatConv2d
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


class ConvBn2d(FloatConv2d):
    """A Conv2d (``weight``, optional ``bias``) and its BatchNorm2d (``bn``) trained together:
    ``bn(conv(x, fq(w * s)) / s + bias)`` with ``s = bn.weight / sqrt(bn.running_var + bn.eps)`` per
    output channel (N, C, H, W) -> (N, out_channels, H', W'). ``freeze_bn_stats()`` keeps the
    BatchNorm in eval mode (its running statistics fixed) whatever ``train()`` says."""

    _FLOAT_MODULE = intrinsic.ConvBn2d
    _RELU = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=None,
                 padding_mode="zeros", eps=1e-05, momentum=0.1, freeze_bn=False, qconfig=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bool(bias),
                         padding_mode)
        self.qconfig = qat._qconfig(qconfig)
        self.freeze_bn = freeze_bn if self.training else True
        self.bn = BatchNorm2d(out_channels, eps, momentum, True, True)
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

    def _scale_factor(self):
        return self.bn.weight / (self.bn.running_var + self.bn.eps).sqrt()

    def forward(self, input):
        factor = self._scale_factor()
        scaled_weight = self.weight_fake_quant(self.weight * factor.reshape(-1, 1, 1, 1))
        zero_bias = zeros(self.out_channels, dtype=input.dtype)       # the conv's own bias is added after
        out = self._conv_forward(input, scaled_weight, zero_bias) / factor.reshape(1, -1, 1, 1)
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1, 1, 1)
        out = self.bn(out)
        return relu(out) if self._RELU else out

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT form of the float fused ``ConvBn2d`` (``ConvBnReLU2d``), sharing its conv's
        parameters and its BatchNorm's parameters and running statistics."""
        qat.check_float(cls, mod)
        conv, bn = mod[0], mod[1]
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                  conv.groups, conv.bias is not None, conv.padding_mode, bn.eps, bn.momentum, False, mod.qconfig)
        new.weight, new.bias = conv.weight, conv.bias
        new.bn.weight, new.bn.bias = bn.weight, bn.bias
        new.bn.running_mean, new.bn.running_var = bn.running_mean, bn.running_var
        new.bn.num_batches_tracked = bn.num_batches_tracked
        return new

    def weight_bias_to_quantize(self):
        """The BatchNorm folded into the conv with its running statistics (what ``convert`` quantizes)."""
        bn = self.bn
        return fuse_conv_bn_weights(self.weight, self.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
                                    bn.bias)


class ConvBnReLU2d(ConvBn2d):
    """``relu`` of ``ConvBn2d``'s output; from the float fused ``ConvBnReLU2d``."""

    _FLOAT_MODULE = intrinsic.ConvBnReLU2d
    _RELU = True


def update_bn_stats(mod):
    """``model.apply(update_bn_stats)``: the BatchNorms of the ConvBn layers update their statistics again."""
    if isinstance(mod, ConvBn2d):
        mod.update_bn_stats()


def freeze_bn_stats(mod):
    """``model.apply(freeze_bn_stats)``: the BatchNorms of the ConvBn layers keep their running statistics."""
    if isinstance(mod, ConvBn2d):
        mod.freeze_bn_stats()
