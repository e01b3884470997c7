"""torch.ao.nn.qat's ``Linear`` and ``Conv1d/2d/3d``: the float layers whose forward uses
``weight_fake_quant(weight)`` (the qconfig's weight fake quantizer, torch's straight-through
gradient), made from a float layer by ``from_float`` (sharing its parameters) as ``prepare_qat``
does, and turned back into one by ``to_float``."""

from gt.nn import Conv1d as FloatConv1d, Conv2d as FloatConv2d, Conv3d as FloatConv3d, Linear as FloatLinear
from gt.nn.core_functions import linear
from gt.nn.parameter import Parameter


def check_float(cls, mod):
    """torch's checks that ``mod`` is the float module ``cls`` converts, with a qconfig."""
    if type(mod) is not cls._FLOAT_MODULE:
        raise AssertionError(f"qat.{cls.__name__}.from_float only works for {cls._FLOAT_MODULE.__name__}, got "
                             f"{type(mod).__name__}")
    if not hasattr(mod, "qconfig"):
        raise AssertionError("Input float module must have qconfig defined")
    if not mod.qconfig:
        raise AssertionError("Input float module must have a valid qconfig")


def _qconfig(qconfig):
    if not qconfig:
        raise AssertionError("qconfig must be provided for QAT module")
    return qconfig


class Linear(FloatLinear):
    """``y = x @ weight_fake_quant(weight).T + bias``: (..., in_features) -> (..., out_features)."""

    _FLOAT_MODULE = FloatLinear

    def __init__(self, in_features, out_features, bias=True, qconfig=None, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, dtype)
        self.qconfig = _qconfig(qconfig)
        self.weight_fake_quant = qconfig.weight(factory_kwargs={"device": device, "dtype": dtype})

    def forward(self, input):
        return linear(self._checked(input), self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT form of ``mod`` (a float ``Linear``, or the fused ``LinearReLU`` for the fused
        class) with its qconfig, sharing its weight and bias."""
        check_float(cls, mod)
        if mod.__class__ is not FloatLinear:        # a fused float module: its Linear first
            mod = mod[0]
        qat = cls(mod.in_features, mod.out_features, bias=mod.bias is not None, qconfig=mod.qconfig)
        qat.weight, qat.bias = mod.weight, mod.bias
        return qat

    def to_float(self):
        """A float ``nn.Linear`` holding this layer's (unquantized) weight and bias."""
        new = FloatLinear(self.in_features, self.out_features, self.bias is not None)
        _copy_parameters(new, self)
        return new

    def weight_bias_to_quantize(self):
        """What ``convert`` quantizes: the weight and bias as they are (BN-folding layers fold first)."""
        return self.weight, self.bias


class _ConvNd:
    """The QAT convolution (mixed into ``nn.Conv1d/2d/3d``): ``conv(x, weight_fake_quant(weight),
    bias)``, (N, in_channels, *spatial) -> (N, out_channels, *spatial')."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", qconfig=None, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, dtype)
        self.qconfig = _qconfig(qconfig)
        self.weight_fake_quant = qconfig.weight(factory_kwargs={"device": device, "dtype": dtype})

    def forward(self, input):
        return self._conv_forward(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT form of ``mod`` (the float convolution, or the fused ``ConvReLU2d`` for the fused
        class) with its qconfig, sharing its weight and bias."""
        check_float(cls, mod)
        if mod.__class__ is not cls._FLOAT_CONV:
            mod = mod[0]
        qat = cls(mod.in_channels, mod.out_channels, mod.kernel_size, stride=mod.stride, padding=mod.padding,
                  dilation=mod.dilation, groups=mod.groups, bias=mod.bias is not None, padding_mode=mod.padding_mode,
                  qconfig=mod.qconfig)
        qat.weight, qat.bias = mod.weight, mod.bias
        return qat

    def to_float(self):
        """A float convolution holding this layer's (unquantized) weight and bias."""
        new = self._FLOAT_CONV(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                               self.dilation, self.groups, self.bias is not None, self.padding_mode)
        _copy_parameters(new, self)
        return new

    def weight_bias_to_quantize(self):
        return self.weight, self.bias


class Conv1d(_ConvNd, FloatConv1d):
    """The QAT ``Conv1d`` (torch's; its default QAT mapping leaves ``nn.Conv1d`` float)."""

    _FLOAT_MODULE = _FLOAT_CONV = FloatConv1d


class Conv2d(_ConvNd, FloatConv2d):
    """The QAT ``Conv2d``: (N, in_channels, H, W) -> (N, out_channels, H', W')."""

    _FLOAT_MODULE = _FLOAT_CONV = FloatConv2d


class Conv3d(_ConvNd, FloatConv3d):
    """The QAT ``Conv3d``: (N, in_channels, D, H, W) -> (N, out_channels, D', H', W')."""

    _FLOAT_MODULE = _FLOAT_CONV = FloatConv3d


def _copy_parameters(new, qat):
    """torch's: the float layer holds the QAT layer's tensors (detached, not copied), in its mode."""
    new.weight = Parameter(qat.weight.detach())
    if qat.bias is not None:
        new.bias = Parameter(qat.bias.detach())
    new.train(qat.training)
