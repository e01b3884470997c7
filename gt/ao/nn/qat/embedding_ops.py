"""torch.ao.nn.qat's ``Embedding`` and ``EmbeddingBag``: the float lookups whose forward reads the
table through the qconfig's weight fake quantizer (``weight_fake_quant``; torch's
``default_embedding_qat_qconfig``: each row's own float scale and zero point, quint8), so that the
table trains with the rounding of the weight-only quantized ``gt.ao.nn.quantized.Embedding`` /
``EmbeddingBag`` that ``convert`` (with ``get_embedding_static_quant_module_mappings()``) makes
of it."""

from gt.ao.nn.qat.modules import check_float
from gt.nn import functional as F
from gt.nn.embedding import Embedding as FloatEmbedding
from gt.nn.embedding_bag import EmbeddingBag as FloatEmbeddingBag, embedding_bag
from gt.nn.parameter import Parameter
from gt.tensor.quantized import per_channel_affine_float_qparams


def _weight_fake_quant(qconfig, what):
    """The qconfig's weight fake quantizer, after torch's checks (a float-qparams one only)."""
    if not qconfig:
        raise AssertionError("qconfig must be provided for QAT module")
    qscheme = qconfig.weight().qscheme
    if qscheme != per_channel_affine_float_qparams:
        raise AssertionError(f"{what} weights requires a qscheme of gt.per_channel_affine_float_qparams Got "
                             f"{qscheme}")
    return qconfig.weight()


class Embedding(FloatEmbedding):
    """``weight_fake_quant(weight)[indices]``: indices (any shape, int) -> (*indices.shape, embedding_dim)."""

    _FLOAT_MODULE = FloatEmbedding

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, device=None, dtype=None, qconfig=None):
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                         _weight, device=device, dtype=dtype)
        self.weight_fake_quant = _weight_fake_quant(qconfig, "Embedding")
        self.qconfig = qconfig

    def forward(self, input):
        return F.embedding(input, self.weight_fake_quant(self.weight), self.padding_idx, self.max_norm,
                           self.norm_type, self.scale_grad_by_freq, self.sparse)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT form of the float ``nn.Embedding`` ``mod`` with its qconfig, holding its weight."""
        check_float(cls, mod)
        _weight_fake_quant(mod.qconfig, "Embedding")
        new = cls(mod.num_embeddings, mod.embedding_dim, mod.padding_idx, mod.max_norm, mod.norm_type,
                  mod.scale_grad_by_freq, mod.sparse, qconfig=mod.qconfig)
        new.weight = mod.weight
        return new

    def to_float(self):
        """A float ``nn.Embedding`` holding this layer's (unquantized) weight, in its mode."""
        new = FloatEmbedding(self.num_embeddings, self.embedding_dim, self.padding_idx, self.max_norm, self.norm_type,
                             self.scale_grad_by_freq, self.sparse)
        new.weight = Parameter(self.weight.detach())
        return new.train(self.training)


class EmbeddingBag(FloatEmbeddingBag):
    """``embedding_bag(input, weight_fake_quant(weight), offsets, ...)``: bags of rows of the fake-quantized
    table reduced by ``mode`` -> (bags, embedding_dim)."""

    _FLOAT_MODULE = FloatEmbeddingBag

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None, qconfig=None,
                 device=None, dtype=None):
        super().__init__(num_embeddings, embedding_dim, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                         _weight, include_last_offset, padding_idx, dtype=dtype)
        self.weight_fake_quant = _weight_fake_quant(qconfig, "Embedding Bag")
        self.qconfig = qconfig

    def forward(self, input, offsets=None, per_sample_weights=None):
        return embedding_bag(input, self.weight_fake_quant(self.weight), offsets, self.max_norm, self.norm_type,
                             False, self.mode, False, per_sample_weights, self.include_last_offset, self.padding_idx)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT form of the float ``nn.EmbeddingBag`` ``mod`` with its qconfig, holding its weight."""
        check_float(cls, mod)
        _weight_fake_quant(mod.qconfig, "Embedding Bag")
        new = cls(mod.num_embeddings, mod.embedding_dim, mod.max_norm, mod.norm_type, mod.scale_grad_by_freq,
                  mod.mode, mod.sparse, None, mod.include_last_offset, mod.padding_idx, qconfig=mod.qconfig)
        new.weight = mod.weight
        return new

    def to_float(self):
        """A float ``nn.EmbeddingBag`` holding this layer's (unquantized) weight, in its mode."""
        new = FloatEmbeddingBag(self.num_embeddings, self.embedding_dim, self.max_norm, self.norm_type,
                                self.scale_grad_by_freq, self.mode, self.sparse, None, self.include_last_offset,
                                self.padding_idx)
        new.weight = Parameter(self.weight.detach())
        return new.train(self.training)
