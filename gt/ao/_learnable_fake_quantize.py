"""torch.ao.quantization._learnable_fake_quantize: ``_LearnableFakeQuantize``, the fake quantizer
whose scale and zero point are parameters trained with the model (LSQ), through torch's
``_fake_quantize_learnable_per_tensor_affine``/``_per_channel_affine`` gradients
(gt/tensor/quantize_learnable.py). Its observer estimates them while ``static_enabled``; once
``enable_param_learning()`` is called, the optimizer moves them instead."""

import math

from gt import autograd, dtypes
from gt.ao import fake_quantize as fq, observer as obs
from gt.nn.parameter import Parameter
from gt.tensor import creation
from gt.tensor.quantize_learnable import (_fake_quantize_learnable_per_channel_affine,
                                          _fake_quantize_learnable_per_tensor_affine)
from gt.tensor.quantized import per_channel_affine, per_channel_symmetric, per_tensor_symmetric

__all__ = []


class _LearnableFakeQuantize(fq.FakeQuantizeBase):
    """``x`` (float32, any shape) -> ``x`` fake-quantized with the parameters ``scale`` and
    ``zero_point`` (float32 (1,), or (channel_len,) along the observer's ``ch_axis``). Buffers
    ``static_enabled`` (the observer sets the parameters at each call), ``learning_enabled`` and
    ``fake_quant_enabled``; ``use_grad_scaling``: the parameters' gradients times
    ``1 / sqrt(x.numel() * quant_max)``."""

    def __init__(self, observer, quant_min=0, quant_max=255, scale=1.0, zero_point=0.0, channel_len=-1,
                 use_grad_scaling=False, **observer_kwargs):
        super().__init__()
        if quant_min >= quant_max:
            raise AssertionError("quant_min must be strictly less than quant_max.")
        self.quant_min, self.quant_max, self.use_grad_scaling = quant_min, quant_max, use_grad_scaling
        observer_kwargs.update({"quant_min": quant_min, "quant_max": quant_max})
        if channel_len != -1 and not (isinstance(channel_len, int) and channel_len > 0):
            raise AssertionError("Channel size must be a positive integer.")
        count = 1 if channel_len == -1 else channel_len
        self.scale = Parameter(creation.tensor([float(scale)] * count, dtype=dtypes.float32))
        self.zero_point = Parameter(creation.tensor([float(zero_point)] * count, dtype=dtypes.float32))
        self.activation_post_process = observer(**observer_kwargs)
        post = self.activation_post_process
        low, high = dtypes.QUANTIZED_RANGES.get(post.dtype.name, (quant_min, quant_max))
        if low > quant_min:
            raise AssertionError("quant_min out of bound")
        if quant_max > high:
            raise AssertionError("quant_max out of bound")
        self.dtype, self.qscheme, self.ch_axis = post.dtype, post.qscheme, getattr(post, "ch_axis", -1)
        self.register_buffer("fake_quant_enabled", creation.tensor([1], dtype=dtypes.uint8))
        self.register_buffer("static_enabled", creation.tensor([1], dtype=dtypes.uint8))
        self.register_buffer("learning_enabled", creation.tensor([0], dtype=dtypes.uint8))
        self.bitwidth = int(math.log2(quant_max - quant_min + 1))
        self.register_buffer("eps", creation.tensor([obs.EPS], dtype=dtypes.float32))

    def enable_param_learning(self):
        """The parameters learned (and fake quantization on), the observer's estimates off."""
        self.toggle_qparam_learning(True).toggle_fake_quant(True).toggle_observer_update(False)
        return self

    def enable_static_estimate(self):
        """The observer's estimates at each call (and fake quantization on), no learning."""
        self.toggle_qparam_learning(False).toggle_fake_quant(True).toggle_observer_update(True)

    def enable_static_observation(self):
        """The observer watches, the parameters stay, ``x`` passes through unchanged."""
        self.toggle_qparam_learning(False).toggle_fake_quant(False).toggle_observer_update(True)

    def toggle_observer_update(self, enabled=True):
        self.static_enabled = creation.tensor([int(enabled)], dtype=dtypes.uint8)
        return self

    def enable_observer(self, enabled=True):
        self.toggle_observer_update(enabled)

    def toggle_qparam_learning(self, enabled=True):
        self.learning_enabled = creation.tensor([int(enabled)], dtype=dtypes.uint8)
        self.scale.requires_grad = self.zero_point.requires_grad = enabled
        return self

    def toggle_fake_quant(self, enabled=True):
        self.fake_quant_enabled = creation.tensor([int(enabled)], dtype=dtypes.uint8)
        return self

    def observe_quant_params(self):
        print(f"_LearnableFakeQuantize Scale: {self.scale.detach()}")
        print(f"_LearnableFakeQuantize Zero Point: {self.zero_point.detach()}")

    def _clamp_scale(self):
        with autograd.no_grad():
            self.scale.clamp_(min=float(self.eps[0]))

    def calculate_qparams(self):
        """(scale float32, zero_point int64): the scale at least ``eps``, the zero point rounded and clamped."""
        self._clamp_scale()
        return self.scale.detach(), self.zero_point.detach().round().clamp(self.quant_min, self.quant_max).long()

    def forward(self, X):
        if int(self.static_enabled[0]) == 1:
            self.activation_post_process(X.detach())
            scale, zero_point = self.activation_post_process.calculate_qparams()
            with autograd.no_grad():
                self.scale.copy_(scale)
                self.zero_point.copy_(zero_point)
        else:
            self._clamp_scale()
        if int(self.fake_quant_enabled[0]) != 1:
            return X
        if self.qscheme in (per_channel_symmetric, per_tensor_symmetric):
            with autograd.no_grad():
                self.zero_point.zero_()
        grad_factor = 1.0 / (X.numel() * self.quant_max) ** 0.5 if self.use_grad_scaling else 1.0
        if self.qscheme in (per_channel_symmetric, per_channel_affine):
            return _fake_quantize_learnable_per_channel_affine(X, self.scale, self.zero_point, self.ch_axis,
                                                               self.quant_min, self.quant_max, grad_factor)
        return _fake_quantize_learnable_per_tensor_affine(X, self.scale, self.zero_point, self.quant_min,
                                                          self.quant_max, grad_factor)
