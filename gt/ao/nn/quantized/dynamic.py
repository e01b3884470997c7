"""torch.ao.nn.quantized.dynamic: ``Linear``, the dynamically quantized linear layer that
``gt.ao.quantization.quantize_dynamic`` puts in place of ``nn.Linear``, and the recurrent ``LSTM``,
``GRU``, ``LSTMCell``, ``GRUCell``, ``RNNCell`` (gt/ao/nn/quantized/dynamic_rnn.py, dynamic_rnn_cells.py).

Its weight is held as a qint8 quantized tensor (one byte an element: a quarter of float32's
memory), quantized once as torch's default weight observer does (symmetric, per tensor, scale
``max|w| / 127.5``, zero point 0). Each call (gt/ao/nn/quantized/dynamic_products.py) quantizes
its input to quint8 with scale and zero point chosen from the input's min and max (torch's ``ChooseQuantizationParams`` with
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

import numpy as np

from gt import dtypes
from gt.ao.nn.quantized.dynamic_products import linear_dynamic, quantize_weight
from gt.ao.nn.quantized.dynamic_rnn import GRU, LSTM, PackedParameter, RNNBase
from gt.ao.nn.quantized.dynamic_rnn_cells import GRUCell, LSTMCell, RNNCell, RNNCellBase
from gt.nn import state, state_dict_hooks
from gt.nn.module import Module
from gt.tensor import Tensor, creation
from gt.tensor.quantized import as_quantized, per_tensor_affine

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "Linear", "PackedParameter", "RNNBase", "RNNCell", "RNNCellBase",
           "quantize_weight"]

_PACKED = "_packed_params._packed_params"
_OWN = ("scale", "zero_point", "_packed_params.dtype", _PACKED)     # torch's keys (its LinearPackedParams child)


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
        return linear_dynamic(x, self._qweight, self._bias)

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
