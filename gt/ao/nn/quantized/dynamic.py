"""torch.ao.nn.quantized.dynamic: ``Linear``, the dynamically quantized linear layer that
``gt.ao.quantization.quantize_dynamic`` puts in place of ``nn.Linear``.

Its weight is held as a qint8 quantized tensor (one byte an element: a quarter of float32's
memory), quantized once as torch's default weight observer does (symmetric, per tensor, scale
``max|w| / 127.5``, zero point 0). Each call quantizes its input to quint8 with scale and zero
point chosen from the input's min and max (torch's ``ChooseQuantizationParams`` with
``reduce_range=True``: 7 bits, as fbgemm's x86 kernels), multiplies the integers exactly and
rescales: ``float(float(acc) * (x_scale * w_scale) + bias)``, where fbgemm accumulates in int32,
rounds the sum to float32 and adds with one rounding (an fma). The outputs equal torch's bit for bit.
The product runs as exact float32 gemms over blocks (gt/backend/engine_quantized.py); on the
torch engine's CPU, for an input not cut over devices, as fbgemm's own kernel, which reads a
packed copy of the weight kept beside it (about 2.3 bytes an element there; gt/backend/torch_quantized.py).

Its state dict is torch's: ``scale`` and ``zero_point`` (the output's, 1.0 and 0: unused by the
dynamic form), ``_packed_params.dtype`` (``gt.qint8``) and ``_packed_params._packed_params``, the
pair (qint8 weight, float bias or None); so it saves, loads and reads torch's checkpoints.
"""

import math

import numpy as np

from gt import autograd, dtypes
from gt.dtypes import round_float32
from gt.nn import state, state_dict_hooks
from gt.nn.module import Module
from gt.ops import quantized_linear
from gt.tensor import Tensor, creation, quantize_math
from gt.tensor.quantize_math import choose_qparams
from gt.tensor.quantize_functions import quantize_per_tensor
from gt.tensor.quantized import as_quantized, per_tensor_affine

# the quantized input's clamp: fbgemm's Quantize clamps to quint8's 255, though reduce_range maps the
# input's [min, max] onto 7 bits, [0, 127]; rounding takes max to 128 where the zero point rounded up
# by a half (min == -max: x = [-1, 1] gives 128, which a clamp to 127 made 127, 3% off torch's
# outputs). A finite input never passes 128 (127.5 and a float32 rounding), so 128 clamps as 255
# does, and keeps the exact blocks of the integer product (gt/backend/engine_quantized.py) long
_X_MAX = 128
_PACKED = "_packed_params._packed_params"
_OWN = ("scale", "zero_point", "_packed_params.dtype", _PACKED)     # torch's keys (its LinearPackedParams child)


def quantize_weight(weight):
    """``weight`` (float) as torch's default dynamic weight observer quantizes it: qint8 per
    tensor, symmetric (``MinMaxObserver(qscheme=per_tensor_symmetric)``)."""
    with autograd.no_grad():
        w = weight.detach().float()
        top = max(-min(float(w.min()), 0.0), max(float(w.max()), 0.0)) if w.numel() else 0.0
    scale = max(round_float32(round_float32(top) / 127.5), 2.0 ** -23)    # float32 eps floor, torch's
    return quantize_per_tensor(w, scale, 0, dtypes.qint8)


class Linear(Module):
    """``y = dequantize(quantize(x) @ qweight.T) + bias`` (torch's dynamically quantized Linear):
    (..., in_features) float32 -> (..., out_features) float32. ``weight()`` is the qint8 weight,
    ``bias()`` the float bias. The output carries no gradient (torch has no backward here)."""

    _version = 4                                 # torch's: the state dict of _packed_params (below)
    _inner_versions = {"_packed_params": 3}      # torch's LinearPackedParams, whose entries gt holds here

    def __init__(self, in_features, out_features, bias_=True, dtype=dtypes.qint8):
        super().__init__()
        if dtypes.to_dtype(dtype) != dtypes.qint8:
            raise NotImplementedError(f"dynamic quantized Linear: gt supports dtype gt.qint8, got {dtype!r} (torch's "
                                      "float16 form is not implemented)")
        self.in_features, self.out_features = in_features, out_features
        self._qweight = quantize_weight(_zeros(out_features, in_features))
        self._bias = _zeros(out_features) if bias_ else None

    @classmethod
    def from_float(cls, mod):
        """The dynamically quantized form of the float ``nn.Linear`` ``mod`` (its weight quantized now)."""
        new = cls(mod.in_features, mod.out_features, mod.bias is not None)
        new._qweight = quantize_weight(mod.weight)
        if mod.bias is not None:
            new._bias = mod.bias.detach().float().clone()
        return new

    def weight(self):
        return self._qweight

    def bias(self):
        return self._bias

    def forward(self, x):
        if x.dtype != dtypes.float32:
            raise RuntimeError(f"expected scalar type Float but found {dtypes.torch_type_name(x.dtype.name)}")
        if x.ndim < 2:     # fbgemm's check (torch's dynamic Linear takes no 1-d input)
            raise RuntimeError(f"The dimension of input tensor should be larger than or equal to 2 (got shape "
                               f"{tuple(x.shape)})")
        with autograd.no_grad():
            x = x.detach()
            low, high = (float(x.min()), float(x.max())) if x.numel() else (0.0, 0.0)
            if not math.isfinite(low + high):
                return self._non_finite(x)
            scale, zero_point = choose_qparams(low, high)
            out_scale = round_float32(round_float32(scale) * self._qweight.q_scale())     # fbgemm's float scales
            whole = self._qweight.q_scale() if x.placement.is_replicate() else None   # not cut over devices
            return quantized_linear.QuantizedLinear.apply(x, self._qweight._q_int, self._bias,
                                                          quantize_math.inverse_scale(scale), zero_point, _X_MAX,
                                                          out_scale, whole)

    def _non_finite(self, x):
        """The output for an input holding NaN or infinities, as fbgemm's arithmetic gives it: NaN
        skipped by its min and max (``fbgemm_min_max``), a NaN integer (NaN, or inf times a zero
        inverse scale) clamped to 255, and where an infinite value made the zero point int32's least,
        the int32 products less ``zero_point * sum(weight row)`` wrapped, their sign times an
        infinite scale (inf, -inf, or NaN at 0): a finite input's path stays as it was."""
        scale, zero_point = choose_qparams(*quantize_math.fbgemm_min_max(x))
        out_scale = round_float32(round_float32(scale) * self._qweight.q_scale())
        inv = quantize_math.inverse_scale(scale)
        q = (x.double() * inv + float(zero_point)).float().round().clamp(0, 255).nan_to_num(255.0)
        weight = self._qweight._q_int
        if zero_point != -2 ** 31:     # the centered integers are exact in float32: gt's product as for finite ones
            return quantized_linear.QuantizedLinear.apply(q - zero_point, weight, self._bias, 1.0, zero_point, 255,
                                                          out_scale)
        total = quantized_linear.QuantizedLinear.apply(q, weight, None, 1.0, 0, 255, 1.0)
        # int32's least times an odd row sum wraps to itself; the sum less it wraps to the other sign
        odd = (weight.long().sum(1) % 2) == 1
        raw = total.where(~odd, (total < 0).float() * 2 - 1)
        out = raw.double() * out_scale
        return (out if self._bias is None else out + self._bias.double()).float()

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        # as gt's state dicts hold tensors: numpy arrays (torch's are 0-d float32 and int64 tensors)
        destination[prefix + "scale"] = np.array(1.0, np.float32)
        destination[prefix + "zero_point"] = np.array(0, np.int64)
        destination[prefix + "_packed_params.dtype"] = dtypes.qint8
        bias = None if self._bias is None else state.saved_value(self._bias, keep_vars)
        destination[prefix + _PACKED] = (self._qweight if keep_vars else self._qweight.clone(), bias)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        super()._load_from_state_dict({k: v for k, v in state_dict.items() if k[len(prefix):] not in _OWN},
                                      prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        missing_keys.extend(prefix + k for k in _OWN if prefix + k not in state_dict)
        if prefix + _PACKED not in state_dict:
            return
        problem = self._packed_problem(state_dict[prefix + _PACKED], state_dict.get(prefix + "_packed_params.dtype"))
        if problem:
            error_msgs.append(f"{prefix + _PACKED}: {problem}")
        else:
            state_dict_hooks.queue([(_Packed(self), state_dict[prefix + _PACKED], None)], local_metadata, error_msgs)

    def _packed_problem(self, packed, dtype):
        """Why ``packed`` (a state dict's (weight, bias)) cannot load here, or None."""
        if dtype is not None and dtypes.to_dtype(dtype) != dtypes.qint8:
            return f"gt's dynamic quantized Linear loads qint8 weights, got dtype {dtype!r}"
        if not isinstance(packed, (tuple, list)) or len(packed) != 2:
            return "expected the pair (weight, bias)"
        weight, bias = as_quantized(packed[0]), packed[1]
        if not getattr(weight, "is_quantized", False) or weight.dtype != dtypes.qint8 or \
                tuple(weight.shape) != (self.out_features, self.in_features):
            return (f"expected a qint8 quantized weight of shape {(self.out_features, self.in_features)}, got "
                    f"{getattr(weight, 'dtype', type(weight).__name__)} of shape {tuple(getattr(weight, 'shape', ()))}")
        if weight.qscheme() != per_tensor_affine:
            return f"gt's dynamic quantized Linear loads weights quantized per tensor, got {weight.qscheme()!r}"
        if bias is not None and tuple(bias.shape) != (self.out_features,):
            return f"expected a bias of shape {(self.out_features,)} or None, got shape {tuple(bias.shape)}"
        return None

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, dtype={self._qweight.dtype!r}, "
                f"qscheme={self._qweight.qscheme()!r}")

    def __repr__(self):
        return f"DynamicQuantizedLinear({self.extra_repr()})"


def _zeros(*shape):
    return creation.zeros(shape, dtype=dtypes.float32)


class _Packed:
    """Where a checked (weight, bias) of a state dict goes (gt/nn/state.py's ``write``)."""

    def __init__(self, module):
        self.module = module

    def set_extra_state(self, packed):
        weight, bias = as_quantized(packed[0]), packed[1]
        self.module._qweight = weight.clone()
        if bias is not None:
            bias = (bias.detach().float().clone() if isinstance(bias, Tensor)
                    else creation.tensor(bias, dtype=dtypes.float32))
        self.module._bias = bias
