"""torch.ao.nn.quantized.Embedding: a weight-only quantized embedding table, what
``gt.ao.quantization.quantize_dynamic(model, {gt.nn.Embedding}, dtype=gt.quint8)`` puts in place of
``nn.Embedding``.

With ``dtype=gt.quint4x2`` (``float_qparams_weight_only_qconfig_4bit``) the table is 4-bit: ``scale =
(max - min) / 15`` a row, and a lookup is torch's ``quantized::embedding_4bit`` (fbgemm's): the packed
row keeps its scale and bias as float16, so ``fma(q, half(scale), half(bias))``. (torch 2.13's
``convert`` of an ``nn.Embedding`` with that qconfig makes a module that says quint8 over a 4-bit
table and fails at lookup; gt's is a working quint4x2 one.)

Its weight is quint8 per row with float scales and zero points (``gt.per_channel_affine_float_qparams``,
one byte an element plus two float32 per row), quantized as torch's ``float_qparams_weight_only_qconfig``
observer does: ``scale = (max - min) / 255`` per row (1 where not above float32's eps), ``zero_point =
-min / scale``. A lookup gives torch's ``quantized::embedding_byte`` rows bit for bit: ``fma(q, scale,
bias)`` with ``bias = -(zero_point * scale)`` rounded to float32 (its packed row's float bias); the fma
is replayed in float64 (``q * scale`` is exact there).

Its state dict is torch's: ``_packed_params.dtype`` (``gt.quint8``) and ``_packed_params._packed_weight``
(the quantized weight), so it saves, loads and reads torch's checkpoints and state dicts.
"""

import numpy as np

from gt import autograd, dtypes
from gt.nn import state_dict_hooks
from gt.nn.module import Module
from gt.tensor import creation
from gt.tensor.quantize_functions import quantize_per_channel
from gt.tensor.quantized import as_quantized, per_channel_affine_float_qparams

_OWN = ("_packed_params.dtype", "_packed_params._packed_weight")     # torch's keys (its EmbeddingPackedParams)
_EPS = float(np.finfo(np.float32).eps)
_DTYPES = (dtypes.quint8, dtypes.quint4x2)


def quantize_weight(weight):
    """``weight`` (rows, dim) float as torch's ``default_float_qparams_observer`` quantizes it:
    quint8, each row with its own float scale and zero point (float32 arithmetic, as torch's)."""
    with autograd.no_grad():
        w = weight.detach().float()
        low, high = w.amin(1), w.amax(1)
        scale = (high - low) / 255.0
        scale = scale.where(scale > _EPS, 1.0)
        return quantize_per_channel(w, scale, -1 * low / scale, 0, dtypes.quint8)


def check_qconfig(mod, name="Embedding"):
    """torch's ``from_float`` check: a float module whose ``qconfig`` (``convert``'s) observes its
    weight other than per row with float qparams is refused (``name``: the quantized class's)."""
    weight = getattr(getattr(mod, "qconfig", None), "weight", None)
    if weight is not None and weight().qscheme != per_channel_affine_float_qparams:
        raise AssertionError(f"{name} quantization is only supported with float_qparams_weight_only_qconfig.")


def quantized_weight_of(mod, name="Embedding"):
    """The quint8 (or quint4x2) table ``convert`` makes of ``mod``'s weight: a QAT module's through
    its weight fake quantizer (run on the weight once more, then its observer's parameters: torch's),
    a float one's through its qconfig's weight observer (quint8's as ``quantize_weight``)."""
    check_qconfig(mod, name)
    fake = getattr(mod, "weight_fake_quant", None)
    if fake is None:
        weight = getattr(getattr(mod, "qconfig", None), "weight", None)
        fake = None if weight is None else weight()
        if fake is None or fake.dtype == dtypes.quint8:
            return quantize_weight(mod.weight)
    if fake.dtype not in _DTYPES:
        raise AssertionError(f"The only supported dtype for nnq.{name} is torch.quint8 and "
                             f"torch.quint4x2, got {fake.dtype!r}")
    with autograd.no_grad():
        fake(mod.weight)
        scale, zero_point = fake.calculate_qparams()
        return quantize_per_channel(mod.weight.detach().float(), scale.float(), zero_point.float(), fake.ch_axis,
                                    fake.dtype)


class Embedding(Module):
    """Rows of a quint8 (or quint4x2) weight-only quantized table: ``indices`` (any shape, int32/int64) ->
    float32 (*indices.shape, embedding_dim), torch's ``QuantizedEmbedding``. ``weight()`` is the
    quantized table; no gradient (torch has none)."""

    _version = 1
    _inner_versions = {"_packed_params": 1}      # torch's EmbeddingPackedParams, whose entries gt holds here

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, dtype=dtypes.quint8):
        super().__init__()
        dtype = dtypes.to_dtype(dtype)
        if dtype not in _DTYPES:
            raise NotImplementedError(f"Unsupported dtype on quantized embedding! Supports quint8 and quint4x2. Got "
                                      f"dtype: {dtype!r}")
        if dtype == dtypes.quint4x2 and embedding_dim % 2:
            raise NotImplementedError(f"quantized {type(self).__name__}: gt's quint4x2 tables have an even "
                                      f"embedding_dim, got {embedding_dim} (torch's 4-bit lookups return "
                                      "embedding_dim + 1 columns, its packed rows' padding)")
        self.num_embeddings, self.embedding_dim, self.dtype = num_embeddings, embedding_dim, dtype
        if _weight is None:
            _weight = quantize_per_channel(creation.zeros((num_embeddings, embedding_dim)),
                                           creation.ones(num_embeddings), creation.zeros(num_embeddings), 0, dtype)
        elif list(_weight.shape) != [num_embeddings, embedding_dim]:
            raise AssertionError(f"Shape of weight does not match num_embeddings and embedding_dim: expected "
                                 f"{[num_embeddings, embedding_dim]}, got {list(_weight.shape)}")
        self.set_weight(_weight)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The quantized form of the float ``nn.Embedding`` ``mod``, or of the QAT one (its weight quantized now)."""
        weight = quantized_weight_of(mod)
        return cls(mod.num_embeddings, mod.embedding_dim, _weight=weight, dtype=weight.dtype)

    def set_weight(self, w):
        """Takes ``w``, a float-qparams quantized (num_embeddings, embedding_dim) tensor of the module's
        dtype (gt's or torch's)."""
        w = as_quantized(w)
        if getattr(w, "dtype", None) != self.dtype or w.qscheme() != per_channel_affine_float_qparams or w.ndim != 2:
            raise RuntimeError(f"quantized {type(self).__name__}: expected a 2-d {self.dtype} weight quantized per "
                               f"channel with float qparams, got {getattr(w, 'dtype', type(w).__name__)}")
        self._qweight = w
        scales, zero_points = w.q_per_channel_scales(), w.q_per_channel_zero_points()
        # the packed row's float bias: -(zero_point * scale), each product rounded to float32 (torch's prepack);
        # a 4-bit row keeps both as float16
        bias = -(zero_points * scales)
        if self.dtype == dtypes.quint4x2:
            scales, bias = scales.to(dtypes.float16), bias.to(dtypes.float16)
        self._rows = (scales.double().reshape(-1, 1), bias.double().reshape(-1, 1))

    def weight(self):
        return self._qweight

    def forward(self, indices):
        if indices.dtype not in (dtypes.int32, dtypes.int64):
            raise RuntimeError(f"Expect 32 or 64 bit indices, but found {dtypes.torch_type_name(indices.dtype.name)} "
                               "instead.")
        with autograd.no_grad():
            flat = indices.reshape(-1)
            scale, bias = self._rows
            out = self._qweight._q_int[flat].double() * scale[flat] + bias[flat]
            return out.float().reshape(tuple(indices.shape) + (self.embedding_dim,))

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + _OWN[0]] = self.dtype
        destination[prefix + _OWN[1]] = self._qweight if keep_vars else self._qweight.clone()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        super()._load_from_state_dict({k: v for k, v in state_dict.items() if k[len(prefix):] not in _OWN},
                                      prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        missing_keys.extend(prefix + k for k in _OWN if prefix + k not in state_dict)
        if prefix + _OWN[1] not in state_dict:
            return
        weight = as_quantized(state_dict[prefix + _OWN[1]])
        if tuple(getattr(weight, "shape", ())) != (self.num_embeddings, self.embedding_dim):
            error_msgs.append(f"{prefix + _OWN[1]}: expected a quantized weight of shape "
                              f"{(self.num_embeddings, self.embedding_dim)}, got {tuple(getattr(weight, 'shape', ()))}")
        else:
            state_dict_hooks.queue([(_Packed(self), weight, None)], local_metadata, error_msgs)

    def extra_repr(self):
        return (f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}, dtype={self.dtype!r}, "
                f"qscheme={self._qweight.qscheme()!r}")

    def __repr__(self):
        return f"QuantizedEmbedding({self.extra_repr()})"


class _Packed:
    """Where a checked weight of a state dict goes (gt/nn/state.py's ``write``)."""

    def __init__(self, module):
        self.module = module

    def set_extra_state(self, weight):
        if weight.dtype in _DTYPES:     # torch's load takes the state dict's dtype
            self.module.dtype = weight.dtype
        self.module.set_weight(weight.clone())
