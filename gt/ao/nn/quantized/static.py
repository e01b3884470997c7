"""torch.ao.nn.quantized's statically quantized modules, what ``gt.ao.quantization.convert`` puts
in a calibrated model: ``Quantize``/``DeQuantize`` (float <-> quint8), ``Linear`` and ``Conv1d/2d/3d``
(quint8 in and out, qint8 weights per tensor or per channel, a float bias), and their ReLU-fused
forms in gt/ao/nn/intrinsic/quantized. Their outputs equal torch's fbgemm kernels' bit for bit
(gt/ao/nn/quantized/static_kernels.py); state dict keys and reprs are torch's.
"""

import numpy as np

from gt import dtypes
from gt.dtypes import round_float32
from gt.ao.nn.quantized import dynamic, dynamic_products, static_kernels
from gt.nn import state, state_dict_hooks
from gt.nn.module import Module
from gt.tensor import creation
from gt.tensor.quantize_functions import quantize_per_channel, quantize_per_tensor
from gt.tensor.quantized import (QuantizedTensor, as_quantized, per_channel_affine, per_channel_symmetric,
                                 per_tensor_affine)


def quantize_weight(weight, observer):
    """torch's ``_quantize_weight``: the float weight quantized with the parameters its (already
    run) ``observer`` chose: per tensor, or per channel along the observer's ``ch_axis``."""
    scale, zero_point = observer.calculate_qparams()
    w = weight.detach().float()
    if observer.dtype != dtypes.qint8:
        raise RuntimeError(f"gt's static quantized modules take qint8 weights, got an observer of {observer.dtype!r}")
    if observer.qscheme in (per_channel_affine, per_channel_symmetric):
        q = quantize_per_channel(w, scale.double(), zero_point.long(), observer.ch_axis, dtypes.qint8)
    else:
        q = quantize_per_tensor(w, float(scale), int(zero_point), dtypes.qint8)
    return dynamic_products.clamped_to_observer(q, observer)


def output_qparams(mod):
    """(scale, zero_point) of a float module's output, from the observer ``prepare`` gave it."""
    observer = getattr(mod, "activation_post_process", None)
    if observer is None:
        raise AssertionError(f"{type(mod).__name__} has no activation_post_process: run gt.ao.quantization.prepare "
                             "and calibrate before convert")
    scale, zero_point = observer.calculate_qparams()
    if observer.dtype != dtypes.quint8:
        raise RuntimeError(f"gt's static quantized modules output quint8, got an observer of {observer.dtype!r}")
    return float(scale), int(zero_point)


def _scalars(destination, prefix, scale, zero_point):
    destination[prefix + "scale"] = np.array(scale, np.float32)      # torch's torch.tensor(float) and (int)
    destination[prefix + "zero_point"] = np.array(zero_point, np.int64)


def _read_scalars(module, state_dict, prefix, missing_keys):
    for name, kind in (("scale", float), ("zero_point", int)):
        if prefix + name in state_dict:
            value = state_dict[prefix + name]
            setattr(module, name, kind(value.item() if hasattr(value, "item") else value))
        else:
            missing_keys.append(prefix + name)


class Quantize(Module):
    """float32 -> quint8/qint8 per tensor with a fixed ``scale``/``zero_point`` (what a
    ``QuantStub`` becomes); ``scale`` and ``zero_point`` are 1-element buffers, as torch's."""

    def __init__(self, scale, zero_point, dtype, factory_kwargs=None):
        super().__init__()
        self.register_buffer("scale", creation.tensor([float(scale)], dtype=dtypes.float32))
        self.register_buffer("zero_point", creation.tensor([int(zero_point)], dtype=dtypes.int64))
        self.dtype = dtypes.to_dtype(dtype)

    def forward(self, x):
        return quantize_per_tensor(x, float(self.scale), int(self.zero_point), self.dtype)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        observer = mod.activation_post_process
        scale, zero_point = observer.calculate_qparams()
        return cls(float(scale), int(zero_point), observer.dtype)

    def extra_repr(self):
        return f"scale={self.scale}, zero_point={self.zero_point}, dtype={self.dtype!r}"


class DeQuantize(Module):
    """quantized -> float32 (what a ``DeQuantStub`` becomes)."""

    def forward(self, x):
        return x.dequantize()

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        return cls()


class _FromFloat:
    """``from_float`` and ``set_weight_bias`` of the static modules with a weight (Linear, Conv2d):
    the output's parameters from the float module's observer, the float module inside a fused one
    (``_FLOAT_FUSED``), its weight quantized by the qconfig's weight observer, into an empty module
    of the same shape (``_like``)."""

    _FLOAT_FUSED = ()       # the float fused types from_float unwraps (intrinsic's LinearReLU)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        scale, zero_point = output_qparams(mod)
        if hasattr(mod, "weight_fake_quant"):       # a QAT layer (gt.ao.nn.qat): its trained fake quantizer
            observer, (weight, bias) = mod.weight_fake_quant, mod.weight_bias_to_quantize()
        else:
            if isinstance(mod, cls._FLOAT_FUSED):
                mod = mod[0]
            observer, weight, bias = mod.qconfig.weight(), mod.weight, mod.bias
        observer(weight)        # torch's: the weight observed once more (a moving average moves)
        new = cls._like(mod)
        new.set_weight_bias(quantize_weight(weight, observer), bias)
        new.scale, new.zero_point = scale, zero_point
        return new

    def set_weight_bias(self, w, b):
        self._qweight, self._bias = packed_weight(as_quantized(w)), (None if b is None else b.detach().float().clone())


def packed_weight(w):
    """``w`` as fbgemm's packing keeps it and ``weight()`` gives it back: its scales rounded to float32."""
    if w.qscheme() == per_tensor_affine:
        return QuantizedTensor._make(w._q_int, w.dtype, w.qscheme(), round_float32(w.q_scale()), w.q_zero_point())
    return QuantizedTensor._make(w._q_int, w.dtype, w.qscheme(), w.q_per_channel_scales().float().double(),
                                 w.q_per_channel_zero_points(), w.q_per_channel_axis())


class Linear(_FromFloat, dynamic.Linear):
    """``y_q = requantize(x_q @ w_q.T + bias)``: (..., in_features) quint8 -> (..., out_features)
    quint8 of scale ``scale`` and zero point ``zero_point`` (fbgemm's arithmetic); ``weight()`` is
    the qint8 weight (per tensor or per channel), ``bias()`` the float bias."""

    _version = 3
    _FUSED_RELU = False

    def __init__(self, in_features, out_features, bias_=True, dtype=dtypes.qint8):
        super().__init__(in_features, out_features, bias_, dtype)
        self.scale, self.zero_point = 1.0, 0

    @classmethod
    def _like(cls, mod):
        return cls(mod.in_features, mod.out_features, mod.bias is not None)

    def forward(self, x):
        return static_kernels.linear(x, self._qweight, self._bias, self.scale, self.zero_point, self._FUSED_RELU)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        _scalars(destination, prefix, self.scale, self.zero_point)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        _read_scalars(self, state_dict, prefix, [])
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _packed_problem(self, packed, dtype):
        if isinstance(packed, (tuple, list)) and len(packed) == 2:
            weight = as_quantized(packed[0])
            if getattr(weight, "is_quantized", False) and weight.qscheme() == per_channel_affine:
                packed = (quantize_per_tensor(creation.zeros(tuple(weight.shape)), 1.0, 0, dtypes.qint8), packed[1])
        return super()._packed_problem(packed, dtype)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, scale={self.scale}, "
                f"zero_point={self.zero_point}, qscheme={self._qweight.qscheme()!r}")

    def __repr__(self):
        return f"Quantized{type(self).__name__}({self.extra_repr()})"


class _ConvNd(_FromFloat, Module):
    """A ``_DIMS``-d convolution on quint8 activations: (N, in_channels, *spatial) -> (N,
    out_channels, *spatial') quint8 of ``scale``/``zero_point``, qint8 weight (per tensor or per
    channel), float bias; zero padding only (torch's other padding modes are not implemented here)."""

    _version = 1        # torch's quantized convolutions' (its Linear's is 3)
    _FUSED_RELU = False
    _DIMS = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        if padding_mode != "zeros":
            raise NotImplementedError(f"quantized {type(self).__name__}: gt supports padding_mode='zeros', got "
                                      f"{padding_mode!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        dims = self._DIMS
        self.kernel_size, self.stride = _ntuple(kernel_size, dims), _ntuple(stride, dims)
        self.padding, self.dilation = _ntuple(padding, dims), _ntuple(dilation, dims)
        self.output_padding, self.transposed = (0,) * dims, False
        self.padding_mode = padding_mode
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self._qweight = quantize_per_tensor(creation.zeros(shape), 1.0, 0, dtypes.qint8)
        self._bias = creation.zeros((out_channels,), dtype=dtypes.float32) if bias else None
        self.scale, self.zero_point = 1.0, 0

    @classmethod
    def _like(cls, mod):
        return cls(mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding, mod.dilation,
                   mod.groups, mod.bias is not None, mod.padding_mode)

    def weight(self):
        return self._qweight

    def bias(self):
        return self._bias

    def forward(self, x):
        return static_kernels.conv(x, self._qweight, self._bias, self.stride, self.padding, self.dilation,
                                     self.groups, self.scale, self.zero_point, self._FUSED_RELU)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight"] = self._qweight if keep_vars else self._qweight.clone()
        destination[prefix + "bias"] = None if self._bias is None else \
            state.saved_value(self._bias, keep_vars)
        _scalars(destination, prefix, self.scale, self.zero_point)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        own = ("weight", "bias", "scale", "zero_point")
        super()._load_from_state_dict({k: v for k, v in state_dict.items() if k[len(prefix):] not in own},
                                      prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        missing_keys.extend(prefix + k for k in ("weight", "bias") if prefix + k not in state_dict)
        weight = as_quantized(state_dict.get(prefix + "weight"))
        if weight is not None and tuple(getattr(weight, "shape", ())) != tuple(self._qweight.shape):
            error_msgs.append(f"{prefix}weight: expected a qint8 quantized weight of shape "
                              f"{tuple(self._qweight.shape)}, got {tuple(getattr(weight, 'shape', ()))}")
            return
        _read_scalars(self, state_dict, prefix, missing_keys)
        if weight is not None:
            bias = state_dict.get(prefix + "bias")
            bias = None if bias is None else creation.tensor(np.asarray(bias.detach().numpy() if hasattr(
                bias, "detach") else bias), dtype=dtypes.float32)
            state_dict_hooks.queue([(_Weights(self), (weight, bias), None)], local_metadata, error_msgs)

    # the arguments torch's repr names only where they differ from their defaults, in its order
    _REPR_DEFAULTS = (("padding", 0), ("dilation", 1))

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"scale={self.scale}, zero_point={self.zero_point}")
        for name, default in self._REPR_DEFAULTS:
            if getattr(self, name) != (default,) * self._DIMS:
                s += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self._bias is None:
            s += ", bias=False"
        return s

    def __repr__(self):
        return f"Quantized{type(self).__name__}({self.extra_repr()})"


def _ntuple(value, dims):
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * dims


class Conv1d(_ConvNd):
    """A quantized 1-d convolution: (N, in_channels, L) quint8 -> (N, out_channels, L') quint8."""

    _DIMS = 1


class Conv2d(_ConvNd):
    """A quantized 2-d convolution: (N, in_channels, H, W) quint8 -> (N, out_channels, H', W') quint8."""

    _DIMS = 2


class Conv3d(_ConvNd):
    """A quantized 3-d convolution: (N, in_channels, D, H, W) quint8 -> (N, out_channels, D', H', W') quint8."""

    _DIMS = 3


class _Weights:
    """Where a checked (weight, bias) of a state dict goes (gt/nn/state.py's ``write``)."""

    def __init__(self, module):
        self.module = module

    def set_extra_state(self, value):
        self.module.set_weight_bias(value[0].clone(), value[1])
