"""torch.ao.nn.quantized's activations on quint8 tensors (any shape): ``ReLU6`` (the input's scale
and zero point), ``Hardswish``, ``ELU``, ``LeakyReLU`` and ``Sigmoid`` (requantized to the output
``scale``/``zero_point`` a calibration observed), and ``Dropout`` (the identity). Their integers
are torch's bit for bit (gt/ao/nn/quantized/activation_kernels.py); reprs and state dict keys
are torch's (``Hardswish`` and ``LeakyReLU`` keep ``scale``/``zero_point`` as 0-d buffers, the
others as plain attributes)."""

from gt import dtypes
from gt.ao.nn.quantized import activation_kernels as K
from gt.ao.nn.quantized.static import output_qparams
from gt.nn import ELU as _ELU, Dropout as _Dropout, Hardswish as _Hardswish, LeakyReLU as _LeakyReLU, ReLU
from gt.nn import Sigmoid as _Sigmoid
from gt.tensor import creation


class QuantizedRepr:
    """torch's ``_get_name`` of the quantized modules: ``Quantized`` before the class name."""

    def __repr__(self):
        return f"Quantized{type(self).__name__}({self.extra_repr()})"


def register_qparams(module, scale, zero_point, one_element=False):
    """``scale``/``zero_point`` as torch's 0-d float32/int64 buffers (1-element ones where torch
    keeps the observer's tensors, ``one_element``)."""
    scale, zero_point = float(scale), int(zero_point)
    if one_element:
        scale, zero_point = [scale], [zero_point]
    module.register_buffer("scale", creation.tensor(scale, dtype=dtypes.float32))
    module.register_buffer("zero_point", creation.tensor(zero_point, dtype=dtypes.int64))


class ReLU6(QuantizedRepr, ReLU):
    """``min(max(x, 0), 6)`` on the integers: clamped to [zero_point, q(6)], the input's parameters kept."""

    def __init__(self, inplace=False):
        super().__init__(inplace)

    def forward(self, input):
        return K.relu6(input, self.inplace)

    @staticmethod
    def from_float(mod, use_precomputed_fake_quant=False):
        return ReLU6(mod.inplace)


class Hardswish(QuantizedRepr, _Hardswish):
    """``x * relu6(x + 3) / 6`` requantized to ``scale``/``zero_point`` (0-d buffers)."""

    def __init__(self, scale, zero_point, device=None, dtype=None):
        super().__init__()
        register_qparams(self, scale, zero_point)

    def forward(self, input):
        return K.hardswish(input, float(self.scale), int(self.zero_point))

    @staticmethod
    def from_float(mod, use_precomputed_fake_quant=False):
        return Hardswish(*output_qparams(mod))


class ELU(QuantizedRepr, _ELU):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere, requantized to ``scale``/``zero_point``."""

    def __init__(self, scale, zero_point, alpha=1.0):
        super().__init__(alpha)
        self.scale, self.zero_point = scale, zero_point

    def forward(self, input):
        return K.elu(input, self.scale, self.zero_point, self.alpha)

    @staticmethod
    def from_float(mod, use_precomputed_fake_quant=False):
        return ELU(*output_qparams(mod), mod.alpha)


class LeakyReLU(QuantizedRepr, _LeakyReLU):
    """``x`` where positive, ``negative_slope * x`` elsewhere, requantized to ``scale``/``zero_point``
    (0-d buffers)."""

    def __init__(self, scale, zero_point, negative_slope=1e-2, inplace=False, device=None, dtype=None):
        super().__init__(negative_slope, inplace)
        register_qparams(self, scale, zero_point)

    def forward(self, input):
        return K.leaky_relu(input, self.negative_slope, float(self.scale), int(self.zero_point), self.inplace)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        return cls(*output_qparams(mod), mod.negative_slope, mod.inplace)


class Sigmoid(_Sigmoid):
    """``1 / (1 + exp(-x))`` requantized to ``output_scale``/``output_zero_point`` (torch's
    ``convert`` leaves ``nn.Sigmoid`` float: this one is built by hand or with ``from_float``)."""

    def __init__(self, output_scale, output_zero_point):
        super().__init__()
        self.output_scale, self.output_zero_point = output_scale, output_zero_point

    def forward(self, input):
        return K.sigmoid(input, self.output_scale, self.output_zero_point)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        return cls(*output_qparams(mod))


class Dropout(QuantizedRepr, _Dropout):
    """The identity on quantized tensors (torch's: in training mode too)."""

    def forward(self, input):
        return input

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        return cls(mod.p, mod.inplace)
