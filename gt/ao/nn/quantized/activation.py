"""torch.ao.nn.quantized's activations on quint8 and qint8 tensors (any shape): ``ReLU6`` (the input's
scale and zero point), ``Hardswish``, ``ELU``, ``LeakyReLU``, ``Sigmoid``, ``PReLU`` (a quantized weight)
and ``Softmax`` (requantized to the output ``scale``/``zero_point`` a calibration observed), and ``Dropout``
(the identity). Their integers are torch's bit for bit (gt/ao/nn/quantized/activation_kernels.py,
softmax_kernels.py); reprs and state dict keys are torch's (``Hardswish`` and ``LeakyReLU`` keep
``scale``/``zero_point`` as 0-d buffers, the others as plain attributes; ``PReLU``'s weight is a plain
attribute too)."""

import warnings

from gt import dtypes
from gt.ao.nn.quantized import activation_kernels as K, softmax_kernels
from gt.ao.nn.quantized.static import output_qparams
from gt.nn import ELU as _ELU, Dropout as _Dropout, Hardswish as _Hardswish, LeakyReLU as _LeakyReLU, ReLU
from gt.nn import Sigmoid as _Sigmoid, Softmax as _Softmax
from gt.nn.inputs import implicit_softmax_dim
from gt.nn.module import Module
from gt.tensor import creation
from gt.tensor.quantize_functions import quantize_per_tensor


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


class PReLU(QuantizedRepr, Module):
    """``x`` where positive, ``weight * x`` elsewhere, requantized to ``scale``/``zero_point``: ``weight``
    a quint8 tensor of ``num_parameters`` slopes (one, or one per channel, dim 1 of the input), a plain
    attribute as torch's (so not in the state dict). ``from_float`` quantizes the float module's weight
    with its qconfig's weight observer (torch warns when that observer is not quint8's and quantizes to
    quint8 anyway: a qint8 symmetric observer's zero point 0 turns negative slopes into 0, as torch's)."""

    def __init__(self, output_scale, output_zero_point, num_parameters=1):
        super().__init__()
        self.num_parameters = num_parameters
        self.scale, self.zero_point = output_scale, output_zero_point
        # torch's placeholder: random slopes quantized with scale 1 (set_weight gives the real ones)
        self.set_weight(quantize_per_tensor(creation.randn(num_parameters), 1.0, 0, dtypes.quint8))

    def set_weight(self, w):
        self.weight = w

    def forward(self, input):
        return K.prelu(input, self.weight, self.scale, self.zero_point)

    def extra_repr(self):
        return ""

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        qprelu = cls(*output_qparams(mod), mod.num_parameters)
        float_wt = mod.weight.detach().float()
        observer = mod.qconfig.weight()
        observer(float_wt)
        if observer.dtype != dtypes.quint8:
            warnings.warn(f"PReLU's weight observer should have dtype quint8 but got {observer.dtype}", stacklevel=2)
        wt_scale, wt_zp = observer.calculate_qparams()
        qprelu.set_weight(quantize_per_tensor(float_wt, float(wt_scale), int(wt_zp), dtypes.quint8))
        return qprelu


class Softmax(QuantizedRepr, _Softmax):
    """Softmax along ``dim`` of a quantized tensor, quantized to ``scale``/``zero_point`` (torch's
    ``convert`` leaves ``nn.Softmax`` float: this one is built by hand, or by ``convert`` with a mapping
    naming it, e.g. after ``prepare_qat`` gave the Softmax its fixed-parameter fake quantizer)."""

    def __init__(self, dim=None, scale=1.0, zero_point=0):
        super().__init__(dim)
        self.scale, self.zero_point = scale, zero_point

    def forward(self, input):
        dim = self.dim
        if dim is None:
            dim = implicit_softmax_dim("softmax", input.dim(), 4)
        return softmax_kernels.softmax(input, dim, self.scale, self.zero_point)

    @staticmethod
    def from_float(mod, use_precomputed_fake_quant=False):
        scale, zero_point = mod.activation_post_process.calculate_qparams()
        return Softmax(mod.dim, float(scale), int(zero_point))
