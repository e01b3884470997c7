"""torch.ao.nn.quantized's normalizations on quint8 tensors: ``BatchNorm2d``/``BatchNorm3d`` (the
float module's running statistics and affine parameters), ``LayerNorm``, ``GroupNorm`` and
``InstanceNorm1d``/``2d``/``3d`` (statistics of the input's integers), each requantized to the
output ``scale``/``zero_point`` a calibration observed (0-d buffers, as torch's). Their integers
are torch's bit for bit (gt/ao/nn/quantized/norm_kernels.py); reprs and state dict keys are torch's."""

from gt.ao.nn.quantized import norm_kernels as K
from gt.ao.nn.quantized.activation import QuantizedRepr, register_qparams
from gt.ao.nn.quantized.static import output_qparams
from gt.nn import BatchNorm2d as _BatchNorm2d, BatchNorm3d as _BatchNorm3d, GroupNorm as _GroupNorm
from gt.nn import InstanceNorm1d as _InstanceNorm1d, InstanceNorm2d as _InstanceNorm2d
from gt.nn import InstanceNorm3d as _InstanceNorm3d, LayerNorm as _LayerNorm


class _BatchNorm(QuantizedRepr):
    """The running statistics' normalization ``(x - mean) / sqrt(var + eps) * weight + bias`` of
    (N, C, ...) quint8 input, requantized to ``scale``/``zero_point``."""

    _DIMS = None
    _FUSED_RELU = False
    _FLOAT_FUSED = ()       # the float fused types from_float unwraps (intrinsic's BNReLU2d)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, True, True)
        register_qparams(self, 1.0, 0)

    def forward(self, input):
        if input.ndim != self._DIMS:      # torch's kernel's words
            raise RuntimeError(f"Expecting the input tensor of rank {self._DIMS}.")
        return K.batch_norm(input, self.weight, self.bias, self.running_mean, self.running_var, self.eps,
                            float(self.scale), int(self.zero_point), self._FUSED_RELU)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        scale, zero_point = output_qparams(mod)
        if isinstance(mod, cls._FLOAT_FUSED):
            mod = mod[0]
        new = cls(mod.num_features, mod.eps)
        new.weight, new.bias = mod.weight, mod.bias
        new.running_mean, new.running_var = mod.running_mean, mod.running_var
        register_qparams(new, scale, zero_point, one_element=True)     # torch keeps the observer's tensors
        return new


class BatchNorm2d(_BatchNorm, _BatchNorm2d):
    """Quantized batch norm of (N, C, H, W) quint8 input."""

    _DIMS = 4


class BatchNorm3d(_BatchNorm, _BatchNorm3d):
    """Quantized batch norm of (N, C, D, H, W) quint8 input."""

    _DIMS = 5


class _Affine(QuantizedRepr):
    """What the statistics' normalizations share: the float module's ``weight``/``bias`` (or None)
    and the output's ``scale``/``zero_point`` buffers."""

    def _keep(self, weight, bias, scale, zero_point):
        self.weight, self.bias = weight, bias
        register_qparams(self, scale, zero_point)

    def _affine_out(self):
        """(weight, bias, eps, scale, zero_point): the kernels' last arguments."""
        return self.weight, self.bias, self.eps, float(self.scale), int(self.zero_point)


class LayerNorm(_Affine, _LayerNorm):
    """Layer norm of (..., *normalized_shape) quint8 input over its last dims, requantized to
    ``scale``/``zero_point``; ``weight``/``bias`` the float module's (or None)."""

    def __init__(self, normalized_shape, weight, bias, scale, zero_point, eps=1e-5, elementwise_affine=True,
                 device=None, dtype=None):
        super().__init__(normalized_shape, eps=eps, elementwise_affine=elementwise_affine)
        self._keep(weight, bias, scale, zero_point)

    def forward(self, input):
        return K.layer_norm(input, self.normalized_shape, *self._affine_out())

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        return cls(mod.normalized_shape, mod.weight, mod.bias, *output_qparams(mod), mod.eps, mod.elementwise_affine)


class GroupNorm(_Affine, _GroupNorm):
    """Group norm of (N, C, ...) quint8 input, requantized to ``scale``/``zero_point``."""

    def __init__(self, num_groups, num_channels, weight, bias, scale, zero_point, eps=1e-5, affine=True,
                 device=None, dtype=None):
        super().__init__(num_groups, num_channels, eps, affine)
        self._keep(weight, bias, scale, zero_point)

    def forward(self, input):
        return K.group_norm(input, self.num_groups, *self._affine_out())

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        return cls(mod.num_groups, mod.num_channels, mod.weight, mod.bias, *output_qparams(mod), mod.eps, mod.affine)


class _InstanceNorm(_Affine):
    """Instance norm of (N, C, ...) quint8 input (each sample's channel over its positions),
    requantized to ``scale``/``zero_point``."""

    def __init__(self, num_features, weight, bias, scale, zero_point, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None):
        super().__init__(num_features, eps, 0.1, affine, track_running_stats)
        # torch's from_float passes ``affine`` where ``momentum`` goes (a bool there), and keeps it; so does gt
        self.momentum = momentum
        self._keep(weight, bias, scale, zero_point)

    def forward(self, input):
        return K.instance_norm(input, *self._affine_out())

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        return cls(mod.num_features, mod.weight, mod.bias, *output_qparams(mod), mod.eps, mod.affine)


class InstanceNorm1d(_InstanceNorm, _InstanceNorm1d):
    """Quantized instance norm of (N, C, L) quint8 input."""


class InstanceNorm2d(_InstanceNorm, _InstanceNorm2d):
    """Quantized instance norm of (N, C, H, W) quint8 input."""


class InstanceNorm3d(_InstanceNorm, _InstanceNorm3d):
    """Quantized instance norm of (N, C, D, H, W) quint8 input."""
