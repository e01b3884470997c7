"""torch.ao.nn.quantized.dynamic: ``Linear``, the dynamically quantized linear layer that
``gt.ao.quantization.quantize_dynamic`` puts in place of ``nn.Linear``, and the recurrent ``LSTM``,
``GRU``, ``LSTMCell``, ``GRUCell``, ``RNNCell`` (gt/ao/nn/quantized/dynamic_rnn.py, dynamic_rnn_cells.py).

Its weight is held as a qint8 quantized tensor (one byte an element: a quarter of float32's
memory), quantized once as torch's default weight observer does (symmetric, per tensor, scale
``max|w| / 127.5``, zero point 0), or as its qconfig's weight observer does (per output channel:
``per_channel_dynamic_qconfig``; float16 values: ``float16_dynamic_qconfig``). Each call
(gt/ao/nn/quantized/dynamic_products.py) quantizes its input to quint8 with scale and zero point
chosen from the input's min and max (torch's ``ChooseQuantizationParams`` with ``reduce_range=True``:
7 bits, as fbgemm's x86 kernels; 8 bits after loading a state dict of version 2 or 3, as torch's,
whose 8-bit sums fbgemm saturates on CPUs without AVX-512 VNNI), multiplies the integers exactly and
rescales: ``float(float(acc) * (x_scale * w_scale) + bias)``, where fbgemm accumulates in int32,
rounds the sum to float32 and adds with one rounding (an fma). The outputs equal torch's bit for bit.
The product runs as exact float32 gemms over blocks (gt/backend/engine_quantized.py); on the
torch engine's CPU, for an input not cut over devices, as fbgemm's own kernel, which reads a
packed copy of the weight kept beside it (about 2.3 bytes an element there; gt/backend/torch_quantized.py).

Its state dict is torch's: ``scale`` and ``zero_point`` (the output's, 1.0 and 0: unused by the
dynamic form), ``_packed_params.dtype`` (``gt.qint8`` or ``gt.float16``) and
``_packed_params._packed_params``, the pair (qint8 weight or float weight, float bias or None); so it
saves, loads and reads torch's checkpoints.
"""

import numpy as np

from gt import dtypes
from gt.ao.nn.qat import dynamic as qat_dynamic
from gt.ao.nn.quantized.dynamic_products import (half_weight, linear_dynamic, linear_dynamic_fp16, observed_weight,
                                                 packed_qint8, quantize_weight, weight_observer)
from gt.ao.nn.quantized.dynamic_rnn import GRU, LSTM, PackedParameter, RNNBase
from gt.ao.nn.quantized.dynamic_rnn_cells import GRUCell, LSTMCell, RNNCell, RNNCellBase
from gt.nn import state, state_dict_hooks
from gt.nn.module import Module
from gt.tensor import Tensor, creation
from gt.nn.linear import Linear as FloatLinear
from gt.tensor.quantized import as_quantized

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "Linear", "PackedParameter", "RNNBase", "RNNCell", "RNNCellBase",
           "quantize_weight"]

_PACKED = "_packed_params._packed_params"
_OWN = ("scale", "zero_point", "_packed_params.dtype", _PACKED)     # torch's keys (its LinearPackedParams child)


class Linear(Module):
    """``y = dequantize(quantize(x) @ qweight.T) + bias`` (torch's dynamically quantized Linear):
    (..., in_features) float32 -> (..., out_features) float32. ``weight()`` is the qint8 weight (per
    tensor, or per output channel from ``per_channel_dynamic_qconfig``), or with ``dtype=gt.float16``
    the float32 weight holding float16 values (fbgemm's ``linear_dynamic_fp16``); ``bias()`` the
    float bias. As torch's, the output requires grad where the input does, and backward passes
    nothing back through it (torch's warning: its op has no autograd kernel); ``bias()`` requires grad
    as the float layer's bias did (torch's packed params keep that tensor), and only the float16 form
    passes it a gradient, the sum of the output's (torch's add)."""

    _version = 4                                 # torch's: the state dict of _packed_params (below)
    _inner_versions = {"_packed_params": 3}      # torch's LinearPackedParams, whose entries gt holds here
    _versioned_range = True                      # torch's LinearReLU quantizes to 7 bits whatever its version

    def __init__(self, in_features, out_features, bias_=True, dtype=dtypes.qint8):
        super().__init__()
        dtype = dtypes.to_dtype(dtype)
        if dtype not in (dtypes.qint8, dtypes.float16):
            raise RuntimeError("Unsupported dtype specified for dynamic quantized Linear!")
        self.in_features, self.out_features, self._dtype = in_features, out_features, dtype
        zeros = _zeros(out_features, in_features)
        self._qweight = quantize_weight(zeros) if dtype == dtypes.qint8 else zeros
        self._bias = _zeros(out_features) if bias_ else None
        # torch's: a state dict of version 2 or 3 loaded makes the layer quantize its input to 8 bits
        # (``linear_dynamic`` without ``reduce_range``), as those versions computed
        self.version = self._version

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The dynamically quantized form of the float ``nn.Linear`` ``mod`` (or of the trained
        ``gt.ao.nn.qat.dynamic.Linear``), its weight quantized now by a new
        ``mod.qconfig``'s weight observer (torch's: qint8, per tensor or per channel, or float16;
        ``default_dynamic_qconfig``'s where the qconfig is None)."""
        if type(mod) not in (FloatLinear, qat_dynamic.Linear):     # (MultiheadAttention's out_proj is a Linear in gt)
            raise AssertionError(f"nn.quantized.dynamic.Linear.from_float only works for one of['Linear', "
                                 f"'NonDynamicallyQuantizableLinear', 'LinearReLU', 'Linear'], got {type(mod)}")
        make, dtype = weight_observer(mod)
        if dtype not in (dtypes.qint8, dtypes.float16):
            raise AssertionError(f"The only supported dtypes for dynamic quantized linear are qint8 and float16, got: "
                                 f"{dtype!r}")
        new = cls(mod.in_features, mod.out_features, mod.bias is not None, dtype)
        new._qweight = observed_weight(mod.weight, make)
        if mod.bias is not None:
            # torch's packed params keep the float layer's bias tensor: it requires grad as that did (qint8's
            # op passes it no gradient; the float16 form's add trains it). The private setter: torch's C++ sets
            # the flag without requires_grad_, which a gt.func transform refuses
            new._bias = mod.bias.detach().float().clone()._set_requires_grad(mod.bias.requires_grad)
        return new

    def weight(self):
        return self._qweight

    def bias(self):
        return self._bias

    def forward(self, x):
        if x.dtype != dtypes.float32:
            raise RuntimeError(f"expected scalar type Float but found {dtypes.torch_type_name(x.dtype.name)}")
        if x.ndim < 2 and self._dtype == dtypes.float16:       # fbgemm's checks: no 1-d input
            raise RuntimeError(f"Expected input.dim() >= 2 to be true, but got false. (got shape {tuple(x.shape)})")
        if x.ndim < 2:
            raise RuntimeError(f"The dimension of input tensor should be larger than or equal to 2 (got shape "
                               f"{tuple(x.shape)})")
        if self._dtype == dtypes.float16:
            return linear_dynamic_fp16(x, self._qweight, self._bias)
        # (a module pickled before gt kept ``version`` has none: its own version's 7 bits)
        version = getattr(self, "version", self._version)
        return linear_dynamic(x, self._qweight, self._bias,
                              reduce_range=not self._versioned_range or version >= self._version)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        # as gt's state dicts hold tensors: numpy arrays (torch's are 0-d float32 and int64 tensors)
        destination[prefix + "scale"] = np.array(1.0, np.float32)
        destination[prefix + "zero_point"] = np.array(0, np.int64)
        destination[prefix + "_packed_params.dtype"] = self._dtype
        bias = None if self._bias is None else state.saved_value(self._bias, keep_vars)
        weight = self._qweight if keep_vars else \
            self._qweight.clone() if self._dtype == dtypes.qint8 else state.saved_value(self._qweight, keep_vars)
        destination[prefix + _PACKED] = (weight, bias)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # torch's takes the state dict's version; where it has none torch reads version 1's keys (and raises
        # on these): gt keeps computing as its own version
        version = local_metadata.get("version")
        self.version = self._version if version is None else version
        super()._load_from_state_dict({k: v for k, v in state_dict.items() if k[len(prefix):] not in _OWN},
                                      prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        missing_keys.extend(prefix + k for k in _OWN if prefix + k not in state_dict)
        if prefix + _PACKED not in state_dict:
            return
        # as torch's, the state dict's dtype becomes the module's (a float16 one loads into a qint8 module)
        dtype = state_dict.get(prefix + "_packed_params.dtype")
        dtype = self._dtype if dtype is None else dtypes.to_dtype(dtype)
        problem = self._packed_problem(state_dict[prefix + _PACKED], dtype)
        if problem:
            error_msgs.append(f"{prefix + _PACKED}: {problem}")
        else:
            state_dict_hooks.queue([(_Packed(self, dtype), state_dict[prefix + _PACKED], None)], local_metadata,
                                   error_msgs)

    def _packed_problem(self, packed, dtype):
        """Why ``packed`` (a state dict's (weight, bias) of ``dtype``) cannot load here, or None."""
        if dtype not in (dtypes.qint8, dtypes.float16):
            return f"the only dtypes of a dynamic quantized Linear are qint8 and float16, got {dtype!r}"
        if not isinstance(packed, (tuple, list)) or len(packed) != 2:
            return "expected the pair (weight, bias)"
        weight, bias = as_quantized(packed[0]), packed[1]
        if dtype == dtypes.float16:
            if getattr(weight, "is_quantized", False) or tuple(getattr(weight, "shape", ())) != (
                    self.out_features, self.in_features):
                return f"expected a float weight of shape {(self.out_features, self.in_features)}"
            return _bias_problem(bias, self.out_features)
        if not getattr(weight, "is_quantized", False) or weight.dtype != dtypes.qint8 or \
                tuple(weight.shape) != (self.out_features, self.in_features):
            return (f"expected a qint8 quantized weight of shape {(self.out_features, self.in_features)}, got "
                    f"{getattr(weight, 'dtype', type(weight).__name__)} of shape {tuple(getattr(weight, 'shape', ()))}")
        try:
            packed_qint8(weight)
        except NotImplementedError as e:
            return str(e)
        return _bias_problem(bias, self.out_features)

    def extra_repr(self):
        text = f"in_features={self.in_features}, out_features={self.out_features}, dtype={self._dtype!r}"
        return text + (f", qscheme={self._qweight.qscheme()!r}" if self._dtype == dtypes.qint8 else "")

    def __repr__(self):
        return f"DynamicQuantizedLinear({self.extra_repr()})"


def _bias_problem(bias, out_features):
    if bias is not None and tuple(bias.shape) != (out_features,):
        return f"expected a bias of shape {(out_features,)} or None, got shape {tuple(bias.shape)}"
    return None


def _zeros(*shape):
    return creation.zeros(shape, dtype=dtypes.float32)


class _Packed:
    """Where a checked (weight, bias) of a state dict goes (gt/nn/state.py's ``write``)."""

    def __init__(self, module, dtype):
        self.module, self.dtype = module, dtype

    def set_extra_state(self, packed):
        weight, bias = as_quantized(packed[0]), packed[1]
        self.module._dtype = self.dtype
        if self.dtype == dtypes.float16:
            weight = weight if isinstance(weight, Tensor) else creation.tensor(weight, dtype=dtypes.float32)
            self.module._qweight = half_weight(weight)
        else:
            self.module._qweight = packed_qint8(weight).clone()
        if bias is not None:
            # torch's load keeps the state dict's bias tensor, and its flag (gt's own state dicts hold arrays)
            wanted = bool(getattr(bias, "requires_grad", False))
            bias = (bias.detach().float().clone() if isinstance(bias, Tensor)
                    else creation.tensor(bias, dtype=dtypes.float32))._set_requires_grad(wanted)
        self.module._bias = bias
