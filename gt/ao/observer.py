"""torch.ao.quantization.observer: the modules that watch a tensor during calibration and then
choose its quantization parameters (``calculate_qparams() -> (scales, zero_points)``).

``MinMaxObserver`` (per tensor), ``MovingAverageMinMaxObserver``, ``PerChannelMinMaxObserver``,
``MovingAveragePerChannelMinMaxObserver``, ``PlaceholderObserver`` and ``FixedQParamsObserver``;
``HistogramObserver`` is in
gt/ao/histogram_observer.py. The running statistics are float32 buffers (``min_val``, ``max_val``,
``eps``: torch's state dict keys) and every step is torch's float32 tensor arithmetic, so the scales
and zero points equal torch's bit for bit.
"""

import functools

import numpy as np

from gt import autograd, dtypes
from gt.nn.module import Module
from gt.tensor import creation
from gt.tensor.quantized import (per_channel_affine, per_channel_affine_float_qparams, per_channel_symmetric,
                                 per_tensor_affine, per_tensor_symmetric)

EPS = float(np.finfo(np.float32).eps)
_PER_TENSOR = (per_tensor_affine, per_tensor_symmetric)
_PER_CHANNEL = (per_channel_affine, per_channel_symmetric, per_channel_affine_float_qparams)


class _PartialWrapper:
    """What ``Observer.with_args(...)`` returns: a constructor with some arguments fixed (torch's)."""

    def __init__(self, p):
        self.p = p

    def __call__(self, *args, **kwargs):
        return self.p(*args, **kwargs)

    def __repr__(self):
        return self.p.__repr__()

    def with_args(self, **kwargs):
        return _PartialWrapper(functools.partial(self.p, **kwargs))


def _with_args(cls_or_self, **kwargs):
    return _PartialWrapper(functools.partial(cls_or_self, **kwargs))


def calculate_qmin_qmax(quant_min, quant_max, has_customized_qrange, dtype, reduce_range):
    """torch's ``calculate_qmin_qmax``: the integer range an observer maps onto; ``reduce_range``
    halves a user's range too (``quant_min=0, quant_max=255, reduce_range=True``: [0, 127])."""
    if has_customized_qrange:
        return (quant_min // 2, quant_max // 2) if reduce_range else (quant_min, quant_max)
    if dtype in (dtypes.qint8, dtypes.int8):
        return (-64, 63) if reduce_range else (-128, 127)
    if dtype in (dtypes.quint8, dtypes.uint8):
        return (0, 127) if reduce_range else (0, 255)
    if dtype == dtypes.qint32:
        return -(2 ** 31), 2 ** 31 - 1
    return 0, 15       # quint4x2


class ObserverBase(Module):
    """torch's ``ObserverBase``: a module with a ``dtype`` that passes its input through."""

    with_args = classmethod(_with_args)

    def __init__(self, dtype=dtypes.quint8, is_dynamic=False):
        super().__init__()
        self.dtype = dtypes.to_dtype(dtype)
        self.is_dynamic = is_dynamic


class UniformQuantizationObserverBase(ObserverBase):
    """torch's base of the min/max observers: ``qscheme``, the integer range ``[quant_min,
    quant_max]`` (``reduce_range``: one bit less, for fbgemm's x86 kernels) and ``_calculate_qparams``."""

    _version = 3

    def __init__(self, dtype=dtypes.quint8, qscheme=per_tensor_affine, reduce_range=False, quant_min=None,
                 quant_max=None, factory_kwargs=None, eps=EPS, is_dynamic=False, **kwargs):
        super().__init__(dtype, is_dynamic)
        if qscheme not in _PER_TENSOR + _PER_CHANNEL:
            raise AssertionError("Default Observer only works for per_tensor_affine, per_tensor_symmetric, "
                                 "per_channel_affine, per_channel_symmetric and per_channel_float_qparams "
                                 "quantization scheme")
        if self.dtype not in (dtypes.qint8, dtypes.quint8, dtypes.quint4x2, dtypes.qint32, dtypes.int8, dtypes.uint8):
            raise AssertionError(f"Default Observer only works for qint8, quint8, quint4x2 and qint32, got "
                                 f"{self.dtype!r}")
        self.qscheme, self.reduce_range = qscheme, reduce_range
        self.register_buffer("eps", creation.tensor([eps], dtype=dtypes.float32))
        self.has_customized_qrange = quant_min is not None and quant_max is not None
        if self.has_customized_qrange and not quant_min <= 0 <= quant_max:
            raise AssertionError("Used-specified quantization range must include 0.")
        if self.has_customized_qrange and quant_min >= quant_max:
            raise AssertionError("qmin must be strictly less than qmax for user-specified quantization range.")
        self.quant_min, self.quant_max = calculate_qmin_qmax(quant_min, quant_max, self.has_customized_qrange,
                                                             self.dtype, reduce_range)

    def _calculate_qparams(self, min_val, max_val):
        """(scale float32, zero_point int64; float32 for float qparams) 1-d tensors from the float32
        ``min_val``/``max_val`` (0-d or per channel), torch's float32 arithmetic step by step."""
        if not _valid(min_val, max_val):
            return creation.tensor([1.0]), creation.tensor([0])
        qmin, qmax = self.quant_min, self.quant_max
        with autograd.no_grad():
            min_neg, max_pos = min_val.clamp(max=0.0), max_val.clamp(min=0.0)
            zero_point = creation.zeros(tuple(min_neg.shape), dtype=dtypes.int64)
            if self.qscheme in (per_tensor_symmetric, per_channel_symmetric):
                max_pos = (-min_neg).maximum(max_pos)
                scale = (max_pos / (float(qmax - qmin) / 2)).maximum(self.eps)
                if self.dtype in (dtypes.quint8, dtypes.uint8):
                    zero_point = zero_point + ((qmin + qmax) // 2 if self.has_customized_qrange else 128)
            elif self.qscheme == per_channel_affine_float_qparams:
                scale = (max_val - min_val) / float(qmax - qmin)
                scale = scale.where(scale > self.eps, 1.0)
                zero_point = -1 * min_val / scale
            else:
                scale = ((max_pos - min_neg) / float(qmax - qmin)).maximum(self.eps)
                zero_point = (qmin - (min_neg / scale).round().int()).clamp(qmin, qmax)     # int32, as torch's
        return scale.reshape(-1), zero_point.reshape(-1)

    def reset_min_max_vals(self):
        raise NotImplementedError("Cannot reset min/max values in the given observer.")


def _valid(min_val, max_val):
    """torch's ``check_min_max_valid``: False (and qparams 1.0, 0) before any observation."""
    if min_val.numel() == 0 or max_val.numel() == 0:
        return False
    if min_val.ndim == 0 and float(min_val) == float("inf") and float(max_val) == float("-inf"):
        return False
    if not bool((min_val <= max_val).all()):
        raise AssertionError(f"min {min_val} should be less than max {max_val}")
    return True


def _observed(x):
    return x.detach().float()


class _MinMaxReadout:
    """What the min/max observers (per tensor and per channel) read out of their ``min_val`` and
    ``max_val`` buffers: the parameters, and the repr's line."""

    def calculate_qparams(self):
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class MinMaxObserver(_MinMaxReadout, UniformQuantizationObserverBase):
    """The running min and max of every tensor seen (0-d float32 buffers ``min_val``/``max_val``),
    per tensor: ``scale = (max(max, 0) - min(min, 0)) / (quant_max - quant_min)``, ``zero_point =
    quant_min - round(min / scale)``; symmetric: ``scale = max(-min, max) / ((quant_max - quant_min) / 2)``."""

    def __init__(self, dtype=dtypes.quint8, qscheme=per_tensor_affine, reduce_range=False, quant_min=None,
                 quant_max=None, factory_kwargs=None, eps=EPS, is_dynamic=False, **kwargs):
        if qscheme not in _PER_TENSOR:
            raise NotImplementedError("MinMaxObserver's qscheme only support torch.per_tensor_symmetric and "
                                      "torch.per_tensor_affine.")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic)
        self.register_buffer("min_val", creation.tensor(float("inf")))
        self.register_buffer("max_val", creation.tensor(float("-inf")))
        if qscheme == per_tensor_symmetric and reduce_range and self.dtype == dtypes.quint8:
            raise NotImplementedError("Cannot reduce range for symmetric quantization for quint8")

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        with autograd.no_grad():
            x = _observed(x_orig)
            self.min_val = x.min().minimum(self.min_val)
            self.max_val = x.max().maximum(self.max_val)
        return x_orig

    def reset_min_max_vals(self):
        self.min_val, self.max_val = creation.tensor(float("inf")), creation.tensor(float("-inf"))


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Per tensor, with the min and max averaged: ``min += averaging_constant * (min(x) - min)``."""

    def __init__(self, averaging_constant=0.01, dtype=dtypes.quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, eps=EPS, is_dynamic=False, **kwargs):
        self.averaging_constant = averaging_constant
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, None, eps, is_dynamic)
        self.averaging_constant = averaging_constant

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        with autograd.no_grad():
            x = _observed(x_orig)
            low, high = x.min(), x.max()
            if float(self.min_val) == float("inf") and float(self.max_val) == float("-inf"):
                self.min_val, self.max_val = low, high
            else:
                self.min_val = self.min_val + self.averaging_constant * (low - self.min_val)
                self.max_val = self.max_val + self.averaging_constant * (high - self.max_val)
        return x_orig


class PerChannelMinMaxObserver(_MinMaxReadout, UniformQuantizationObserverBase):
    """The running min and max of each slice along ``ch_axis`` (1-d buffers): one scale and zero
    point per channel (``per_channel_affine``/``_symmetric``, or float ones for embeddings)."""

    def __init__(self, ch_axis=0, dtype=dtypes.quint8, qscheme=per_channel_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=EPS, is_dynamic=False, **kwargs):
        if qscheme not in _PER_CHANNEL:
            raise NotImplementedError("PerChannelMinMaxObserver's qscheme only support torch.per_channel_symmetric, "
                                      "torch.per_channel_affine and torch.per_channel_affine_float_qparams.")
        if is_dynamic:
            raise NotImplementedError("PerChannelMinMaxObserver doesn't support dynamic quantization")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic)
        self.ch_axis = ch_axis
        self.register_buffer("min_val", creation.tensor([], dtype=dtypes.float32))
        self.register_buffer("max_val", creation.tensor([], dtype=dtypes.float32))
        if qscheme == per_channel_symmetric and reduce_range and self.dtype == dtypes.quint8:
            raise NotImplementedError("Cannot reduce range for symmetric quantization for quint8")

    def _channel_min_max(self, x_orig):
        y = _observed(x_orig).movedim(self.ch_axis, 0)
        y = y.reshape(y.shape[0], -1)
        return y.amin(1).replicate(), y.amax(1).replicate()     # module state: whole on every device

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        with autograd.no_grad():
            low, high = self._channel_min_max(x_orig)
            if self.min_val.numel():
                low, high = low.minimum(self.min_val), high.maximum(self.max_val)
            self.min_val, self.max_val = low, high
        return x_orig

    def reset_min_max_vals(self):
        self.min_val = creation.tensor([], dtype=dtypes.float32)
        self.max_val = creation.tensor([], dtype=dtypes.float32)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        resize_to_saved(self, state_dict, prefix, ("min_val", "max_val"))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


def resize_to_saved(module, state_dict, prefix, names):
    """torch's ``resize_`` before a load: the buffers ``names`` of ``module`` take the shapes saved
    in ``state_dict`` (per-channel statistics saved (channels,) load into a fresh module's (0,))."""
    for name in names:
        value = state_dict.get(prefix + name)
        if value is not None and getattr(module, name) is not None:
            setattr(module, name, creation.zeros(tuple(value.shape), dtype=getattr(module, name).dtype))


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """Per channel, with each channel's min and max averaged as ``MovingAverageMinMaxObserver``'s."""

    def __init__(self, averaging_constant=0.01, ch_axis=0, dtype=dtypes.quint8, qscheme=per_channel_affine,
                 reduce_range=False, quant_min=None, quant_max=None, eps=EPS, is_dynamic=False, **kwargs):
        super().__init__(ch_axis, dtype, qscheme, reduce_range, quant_min, quant_max, None, eps, is_dynamic)
        self.averaging_constant = averaging_constant

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        with autograd.no_grad():
            low, high = self._channel_min_max(x_orig)
            if self.min_val.numel():
                low = self.min_val + self.averaging_constant * (low - self.min_val)
                high = self.max_val + self.averaging_constant * (high - self.max_val)
            self.min_val, self.max_val = low, high
        return x_orig


class NoopObserver(ObserverBase):
    """Observes nothing: carries a ``dtype`` (torch's; the activation of the embeddings' QAT qconfig)."""

    def __init__(self, dtype=dtypes.float16, custom_op_name=""):
        super().__init__(dtype, False)
        self.custom_op = custom_op_name

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise Exception("calculate_qparams should not be called for NoopObserver")  # noqa: TRY002 (torch's)


class PlaceholderObserver(ObserverBase):
    """Observes nothing: carries the ``dtype`` (and ``is_dynamic``) a qconfig asks for (torch's)."""

    def __init__(self, dtype=dtypes.float32, custom_op_name="", compute_dtype=None, quant_min=None, quant_max=None,
                 qscheme=None, eps=None, is_dynamic=False):
        super().__init__(dtype, is_dynamic)
        self.qscheme = per_tensor_affine if qscheme is None else qscheme
        self.quant_min, self.quant_max, self.eps = quant_min, quant_max, eps

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise Exception("calculate_qparams should not be called for PlaceholderObserver")  # noqa: TRY002 (torch's)


class FixedQParamsObserver(ObserverBase):
    """Observes nothing: its ``calculate_qparams`` is the fixed ``scale`` (float32 (1,)) and
    ``zero_point`` (int32 (1,)) it was made with, per tensor (torch's; the outputs of sigmoid,
    tanh, hardsigmoid and softmax, whose range is known, take these in quantization-aware training)."""

    def __init__(self, scale, zero_point, dtype=dtypes.quint8, qscheme=per_tensor_affine, quant_min=0, quant_max=255,
                 is_dynamic=False, **kwargs):
        if is_dynamic:
            raise NotImplementedError("FixedQParamsObserver doesn't support dynamic quantization")
        super().__init__(dtype, is_dynamic)
        self.quant_min, self.quant_max, self.qscheme = quant_min, quant_max, qscheme
        self.register_buffer("scale", creation.tensor([scale], dtype=dtypes.float32))
        self.register_buffer("zero_point", creation.tensor([zero_point], dtype=dtypes.int32))

    def forward(self, X):
        return X

    def calculate_qparams(self):
        return self.scale, self.zero_point


# the output ranges [-1, 1] (tanh) and [0, 1] (sigmoid, hardsigmoid, softmax) on 256 steps (torch's)
default_fixed_qparams_range_neg1to1_observer = FixedQParamsObserver.with_args(
    scale=2.0 / 256.0, zero_point=128, dtype=dtypes.quint8, quant_min=0, quant_max=255)
default_fixed_qparams_range_0to1_observer = FixedQParamsObserver.with_args(
    scale=1.0 / 256.0, zero_point=0, dtype=dtypes.quint8, quant_min=0, quant_max=255)
default_symmetric_fixed_qparams_observer = default_fixed_qparams_range_neg1to1_observer
default_affine_fixed_qparams_observer = default_fixed_qparams_range_0to1_observer
