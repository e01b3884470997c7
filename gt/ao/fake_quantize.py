"""torch.ao.quantization.fake_quantize: the modules quantization-aware training puts on weights and
activations. Each watches its input with an observer and returns it quantized and dequantized again
(``gt.fake_quantize_per_tensor_affine``/``_per_channel_affine``: torch's values to the bit, the
straight-through gradient), so the float model trains with the rounding it will meet once converted.

``FakeQuantize`` takes its scale and zero point from the observer's ``calculate_qparams``;
``FusedMovingAvgObsFakeQuantize`` (what ``get_default_qat_qconfig`` gives in torch 2.x) is torch's
fused kernel: it averages the observer's min and max itself and picks the parameters with fbgemm's
``ChooseQuantizationParams``, which for symmetric schemes differ from the observer's (convert still
asks the observer). Buffers, state dict keys and reprs are torch's.
"""

import math

from gt import autograd, dtypes
from gt.ao import histogram_observer, observer as obs
from gt.dtypes import round_float32
from gt.nn.module import Module
from gt.tensor import creation
from gt.tensor.quantize_functions import fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine
from gt.tensor.quantized import (per_channel_affine, per_channel_affine_float_qparams, per_channel_symmetric,
                                 per_tensor_affine, per_tensor_symmetric)

_PER_CHANNEL = (per_channel_symmetric, per_channel_affine, per_channel_affine_float_qparams)
_PER_TENSOR = (per_tensor_symmetric, per_tensor_affine)
_SMALL_SCALE = round_float32(6.1e-5)


class FakeQuantizeBase(Module):
    """torch's base: the ``fake_quant_enabled``/``observer_enabled`` switches (1-element uint8
    buffers, so that they travel with the state dict) and their methods."""

    with_args = classmethod(obs._with_args)
    _SWITCH = dtypes.uint8

    def __init__(self):
        super().__init__()
        self.register_buffer("fake_quant_enabled", creation.tensor([1], dtype=self._SWITCH))
        self.register_buffer("observer_enabled", creation.tensor([1], dtype=self._SWITCH))

    def enable_fake_quant(self, enabled=True):
        self.fake_quant_enabled = creation.tensor([1 if enabled else 0], dtype=self.fake_quant_enabled.dtype)

    def disable_fake_quant(self):
        self.enable_fake_quant(False)

    def enable_observer(self, enabled=True):
        self.observer_enabled = creation.tensor([1 if enabled else 0], dtype=self.observer_enabled.dtype)

    def disable_observer(self):
        self.enable_observer(False)


class FakeQuantize(FakeQuantizeBase):
    """``x_out = (clamp(round(x / scale) + zero_point, quant_min, quant_max) - zero_point) * scale``
    (any shape; per channel along ``ch_axis``), with ``scale``/``zero_point`` (float32/int32 buffers,
    (1,) or (channels,)) updated from ``observer(**observer_kwargs)`` (``activation_post_process``)
    at each call while ``observer_enabled``; the identity while fake quantization is disabled."""

    def __init__(self, observer=obs.MovingAverageMinMaxObserver, quant_min=None, quant_max=None, is_dynamic=False,
                 **observer_kwargs):
        super().__init__()
        if quant_min is not None and quant_max is not None:
            if quant_min > quant_max:
                raise AssertionError("quant_min must be less than or equal to quant_max")
            dtype = observer_kwargs.get("dtype", dtypes.quint8)
            dtype = getattr(getattr(observer, "p", None), "keywords", {}).get("dtype", dtype)
            low, high = dtypes.QUANTIZED_RANGES.get(dtypes.to_dtype(dtype).name, (quant_min, quant_max))
            if low > quant_min:
                raise AssertionError("quant_min out of bound")
            if quant_max > high:
                raise AssertionError("quant_max out of bound")
            observer_kwargs.update({"quant_min": quant_min, "quant_max": quant_max})
        observer_kwargs["is_dynamic"] = is_dynamic
        self.activation_post_process = observer(**observer_kwargs)
        post = self.activation_post_process
        self.quant_min, self.quant_max, self.is_dynamic = post.quant_min, post.quant_max, post.is_dynamic
        zero_point_dtype = dtypes.float32 if post.qscheme == per_channel_affine_float_qparams else dtypes.int32
        self.register_buffer("scale", creation.tensor([1.0], dtype=dtypes.float32))
        self.register_buffer("zero_point", creation.tensor([0], dtype=zero_point_dtype))
        self.dtype, self.qscheme = post.dtype, post.qscheme
        self.ch_axis = getattr(post, "ch_axis", -1)
        if self.qscheme not in _PER_CHANNEL + _PER_TENSOR:
            raise AssertionError("Only per channel and per tensor quantization are supported in fake quantize got "
                                 f"qscheme: {self.qscheme}")
        self.is_per_channel = self.qscheme in _PER_CHANNEL

    def calculate_qparams(self):
        return self.activation_post_process.calculate_qparams()

    def forward(self, X):
        if int(self.observer_enabled[0]) == 1:
            self.activation_post_process(X.detach())
            scale, zero_point = self.calculate_qparams()
            self.scale = scale.float().clone().replicate()     # module state: whole on every device
            self.zero_point = zero_point.to(self.zero_point.dtype).replicate()
        if int(self.fake_quant_enabled[0]) == 1:
            return self._fake_quantize(X)
        return X

    def _fake_quantize(self, X):
        post = self.activation_post_process
        if self.is_per_channel:
            return fake_quantize_per_channel_affine(X, self.scale, self.zero_point, self.ch_axis, post.quant_min,
                                                    post.quant_max)
        return fake_quantize_per_tensor_affine(X, self.scale, self.zero_point, post.quant_min, post.quant_max)

    def extra_repr(self):
        post = self.activation_post_process
        return (f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled={self.observer_enabled}, "
                f"quant_min={post.quant_min}, quant_max={post.quant_max}, dtype={self.dtype!r}, "
                f"qscheme={self.qscheme!r}, ch_axis={self.ch_axis}, scale={self.scale}, zero_point={self.zero_point}")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        obs.resize_to_saved(self, state_dict, prefix, ("scale", "zero_point"))      # per channel: (channels,)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class FixedQParamsFakeQuantize(FakeQuantize):
    """``FakeQuantize`` with a ``FixedQParamsObserver``: ``scale``/``zero_point`` are the
    observer's own fixed buffers (the same tensors, as torch's), per tensor only."""

    def __init__(self, observer):
        super().__init__(observer=observer)
        if type(self.activation_post_process) is not obs.FixedQParamsObserver:
            raise AssertionError(f"{type(self).__name__}'s observer must be a FixedQParamsObserver")
        self._observer_ctr = observer
        self.scale, self.zero_point = self.activation_post_process.scale, self.activation_post_process.zero_point
        if self.qscheme not in _PER_TENSOR:
            raise AssertionError(f"Only per tensor quantization is supported FixedQParamsFakeQuantize module, got "
                                 f"qscheme:{self.qscheme}")

    def calculate_qparams(self):
        return self.scale, self.zero_point

    def forward(self, X):
        # the observer's parameters never change: FakeQuantize's copy of them is skipped
        return self._fake_quantize(X) if int(self.fake_quant_enabled[0]) == 1 else X

    def extra_repr(self):
        post = self.activation_post_process
        return (f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled={self.observer_enabled}, "
                f"scale={self.scale}, zero_point={self.zero_point}, dtype={self.dtype!r}, "
                f"quant_min={post.quant_min}, quant_max={post.quant_max}, qscheme={self.qscheme!r}")


class FusedMovingAvgObsFakeQuantize(FakeQuantize):
    """torch's fused observer and fake quantizer (``torch.fused_moving_avg_obs_fake_quant``): the
    observer's ``min_val``/``max_val`` averaged here (``min += averaging_constant * (min(x) - min)``,
    per channel along axis 0 for the per-channel observer), then, while fake quantization is
    enabled, ``scale``/``zero_point`` chosen from them by fbgemm's ``ChooseQuantizationParams``
    and ``x`` fake-quantized; disabled, ``x`` passes through and the parameters stay."""

    _SWITCH = dtypes.int64

    def __init__(self, observer=obs.MovingAverageMinMaxObserver, quant_min=0, quant_max=255, **observer_kwargs):
        super().__init__(observer, quant_min, quant_max, **observer_kwargs)
        if not isinstance(self.activation_post_process,
                          (obs.MovingAverageMinMaxObserver, obs.MovingAveragePerChannelMinMaxObserver)):
            raise AssertionError("Fused observer+fake_quant module only works with MovingAverageMinMaxObserver")
        self.is_symmetric_quant = self.qscheme in (per_tensor_symmetric, per_channel_symmetric)

    def extra_repr(self):
        post = self.activation_post_process
        return (f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled={self.observer_enabled}, "
                f"scale={self.scale}, zero_point={self.zero_point}, dtype={self.dtype!r}, "
                f"quant_min={post.quant_min}, quant_max={post.quant_max}, qscheme={self.qscheme!r}, "
                f"reduce_range={post.reduce_range}")

    def forward(self, X):
        if X.dtype != dtypes.float32:
            raise RuntimeError(f"fused_moving_avg_obs_fake_quant: gt takes float32 input, got {X.dtype!r}")
        if self.is_per_channel and self.ch_axis != 0:
            raise RuntimeError("Per-channel FakeQuant in fused_moving_avg_obs_fake_quant is only supported on "
                               "axis == 0")
        if int(self.observer_enabled[0]):
            self._average(X)
        if not int(self.fake_quant_enabled[0]):
            return X.clone()
        post = self.activation_post_process
        pairs = [fbgemm_qparams(lo, hi, post.quant_min, post.quant_max, self.is_symmetric_quant)
                 for lo, hi in zip(post.min_val.reshape(-1).tolist(), post.max_val.reshape(-1).tolist())]
        self.scale = creation.tensor([s for s, _ in pairs], dtype=dtypes.float32).replicate()
        self.zero_point = creation.tensor([z for _, z in pairs], dtype=dtypes.int32).replicate()
        return self._fake_quantize(X)

    def _average(self, X):
        """The running min and max (float32, as the C++ kernel's) moved toward this batch's."""
        post = self.activation_post_process
        with autograd.no_grad():
            x = X.detach()
            if self.is_per_channel:
                x = x.reshape(x.shape[0], -1)
                low, high = x.amin(1).replicate(), x.amax(1).replicate()     # module state: on every device
                if post.min_val.numel() == 0:     # torch resizes the parameters too (new entries unset: 1, 0)
                    post.min_val, post.max_val = low, high
                    self.scale = creation.ones(low.shape[0], dtype=dtypes.float32).replicate()
                    self.zero_point = creation.zeros(low.shape[0], dtype=dtypes.int32).replicate()
                    return
            else:
                low, high = x.min(), x.max()
            # torch's: an infinite running value (none seen yet) takes this batch's; as ``low + c * 0``
            c = post.averaging_constant
            old_low, old_high = post.min_val.where(~post.min_val.isinf(), low), post.max_val.where(
                ~post.max_val.isinf(), high)
            post.min_val, post.max_val = old_low + c * (low - old_low), old_high + c * (high - old_high)


def fbgemm_qparams(low, high, qmin, qmax, symmetric):
    """(scale, zero_point) of fbgemm's ``ChooseQuantizationParams`` for the float32 range [low, high]
    (Python floats) with ``preserve_sparsity=symmetric``: a float32 scale from float64 arithmetic,
    the zero point nudged to an integer in [qmin, qmax] (the middle one when symmetric)."""
    f = round_float32
    if low < 0 < high and symmetric:
        sym_min, sym_max = -((qmax - qmin) // 2 + 1), (qmax - qmin) // 2
        widest = max(abs(f(low / sym_min)), abs(f(high / sym_max)))        # float32 quotients
        low, high = f(widest * sym_min), f(widest * sym_max)
    low, high = min(low, 0.0), max(high, 0.0)
    scale = f((high - low) / (qmax - qmin))
    if scale == 0 or math.isinf(f(1.0 / scale)):
        scale = f(0.1)
    if scale < _SMALL_SCALE:
        tiny, scale = scale, _SMALL_SCALE
        if low == 0:
            high = f(_SMALL_SCALE * (qmax - qmin))
        elif high == 0:
            low = f(-_SMALL_SCALE * (qmax - qmin))
        else:
            amplifier = f(_SMALL_SCALE / tiny)
            low, high = f(low * amplifier), f(high * amplifier)
    from_min, from_max = qmin - low / scale, qmax - high / scale
    # fbgemm's choice: the pair whose terms are smaller in magnitude
    initial = from_min if abs(qmin) + abs(low / scale) < abs(qmax) + abs(high / scale) else from_max
    if low < 0 < high and symmetric:
        initial = (qmin + qmax) / 2
    zero_point = qmin if initial < qmin else qmax if initial > qmax else round(initial)
    return scale, int(zero_point)


def _switch(name):
    def apply(mod):
        if isinstance(mod, FakeQuantizeBase):
            getattr(mod, name)()
    apply.__name__ = name
    apply.__doc__ = f"``model.apply(gt.ao.quantization.{name})``: ``{name}()`` on every fake quantizer."
    return apply


disable_fake_quant, enable_fake_quant = _switch("disable_fake_quant"), _switch("enable_fake_quant")
disable_observer, enable_observer = _switch("disable_observer"), _switch("enable_observer")

default_fake_quant = FakeQuantize.with_args(observer=obs.MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                            dtype=dtypes.quint8, qscheme=per_tensor_affine, reduce_range=True)
default_weight_fake_quant = FakeQuantize.with_args(observer=obs.MovingAverageMinMaxObserver, quant_min=-128,
                                                   quant_max=127, dtype=dtypes.qint8, qscheme=per_tensor_symmetric,
                                                   reduce_range=False)
default_per_channel_weight_fake_quant = FakeQuantize.with_args(
    observer=obs.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127, dtype=dtypes.qint8,
    qscheme=per_channel_symmetric, reduce_range=False, ch_axis=0)
default_histogram_fake_quant = FakeQuantize.with_args(observer=histogram_observer.HistogramObserver, quant_min=0,
                                                      quant_max=255, dtype=dtypes.quint8, qscheme=per_tensor_affine,
                                                      reduce_range=True)
default_dynamic_fake_quant = FakeQuantize.with_args(observer=obs.MovingAverageMinMaxObserver, quant_min=0,
                                                    quant_max=255, is_dynamic=True, dtype=dtypes.quint8,
                                                    averaging_constant=1)
default_fixed_qparams_range_neg1to1_fake_quant = FixedQParamsFakeQuantize.with_args(
    observer=obs.default_fixed_qparams_range_neg1to1_observer)
default_fixed_qparams_range_0to1_fake_quant = FixedQParamsFakeQuantize.with_args(
    observer=obs.default_fixed_qparams_range_0to1_observer)
default_symmetric_fixed_qparams_fake_quant = default_fixed_qparams_range_neg1to1_fake_quant
default_affine_fixed_qparams_fake_quant = default_fixed_qparams_range_0to1_fake_quant
# embeddings: each row's own float scale and zero point, from this step's weight alone
default_embedding_fake_quant = FakeQuantize.with_args(
    observer=obs.MovingAveragePerChannelMinMaxObserver, qscheme=per_channel_affine_float_qparams, dtype=dtypes.quint8,
    quant_min=0, quant_max=255, ch_axis=0, averaging_constant=1)
default_embedding_fake_quant_4bit = FakeQuantize.with_args(
    observer=obs.MovingAveragePerChannelMinMaxObserver, qscheme=per_channel_affine_float_qparams, ch_axis=0,
    dtype=dtypes.quint4x2, averaging_constant=1)
default_fused_act_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=obs.MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=dtypes.quint8)
default_fused_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=obs.MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=dtypes.qint8,
    qscheme=per_tensor_symmetric)
default_fused_per_channel_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=obs.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127, dtype=dtypes.qint8,
    qscheme=per_channel_symmetric)
