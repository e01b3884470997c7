"""torch.ao.nn.quantized.EmbeddingBag: bags of rows of a quint8 weight-only quantized table, what
``gt.ao.quantization.quantize_dynamic(model, {gt.nn.EmbeddingBag}, dtype=gt.quint8)`` puts in place
of ``nn.EmbeddingBag``: its table quantized as the ``Embedding``'s (one float scale and zero point
a row), each bag's sum as torch's ``quantized::embedding_bag_byte`` (fbgemm's ``EmbeddingSpMDM``)
computes it, bit for bit: row after row, ``buf = fma(scale * w, q, buf + bias * w)`` in float32
(``w`` the per-sample weight or 1; the fma replayed in float64, where ``scale * q`` is exact).
A quint4x2 table (``dtype=gt.quint4x2``, ``float_qparams_weight_only_qconfig_4bit``) sums as torch's
``quantized::embedding_bag_4bit`` does: the same steps with each row's scale and bias rounded to float16.

As torch 2.13's, it sums whatever the float module's ``mode`` was (torch passes mode 0 to its
kernel: a ``"mean"`` bag is summed) and drops ``padding_idx``; ``max_norm`` is not applied.
"""

from gt import autograd, dtypes
from gt.ao.nn.quantized.embedding import Embedding, quantized_weight_of
from gt.tensor import creation, functions


class EmbeddingBag(Embedding):
    """Sums of rows of a quint8 (or quint4x2) table: ``indices`` 1-d with ``offsets`` (the start of each bag; with
    ``include_last_offset`` one more, the end), or 2-d (one bag a row) -> float32 (bags, embedding_dim);
    ``per_sample_weights`` (float32, one per index) weigh each row."""

    _version = 1

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="sum", sparse=False, _weight=None, include_last_offset=False, dtype=dtypes.quint8):
        super().__init__(num_embeddings, embedding_dim, _weight=_weight, dtype=dtype)
        self.mode, self.pruned_weights, self.include_last_offset = mode, False, include_last_offset

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The quantized form of the float ``nn.EmbeddingBag`` ``mod``, or of the QAT one (its weight quantized now)."""
        weight = quantized_weight_of(mod, "EmbeddingBag")
        return cls(mod.num_embeddings, mod.embedding_dim, mode=mod.mode, include_last_offset=mod.include_last_offset,
                   _weight=weight, dtype=weight.dtype)

    def _bags(self, indices, offsets):
        """(flat indices, start of each bag, end of each bag) as Python-checked int64 tensors."""
        if offsets is None:
            if indices.ndim != 2:
                raise ValueError(f"offsets has to be a 1D Tensor but got null (indices of shape "
                                 f"{tuple(indices.shape)}: 2-d indices need no offsets)")
            # torch's quantized kernels read 2-d indices as offsets 0, length, ...: with include_last_offset
            # the last row ends the bags instead of making one
            offsets, indices = creation.arange(indices.shape[0]) * indices.shape[1], indices.reshape(-1)
        elif indices.ndim != 1:
            raise ValueError("if input is 2D, then offsets has to be None, got indices of shape "
                             f"{tuple(indices.shape)}")
        elif offsets.dtype not in (dtypes.int32, dtypes.int64):
            raise RuntimeError(f"Expect 32 or 64 bit offsets, but found {dtypes.torch_type_name(offsets.dtype.name)} "
                               "instead.")
        flat, offsets = indices.long(), offsets.long()
        if self.include_last_offset:
            if self.dtype == dtypes.quint4x2 and (not offsets.numel() or int(offsets[-1]) != flat.shape[0]):
                raise RuntimeError("Yout input seems to be incorrect: the last offset value should be the size of "
                                   "the indices tensor, but it appears not.")      # torch's 4-bit kernel's words
            return flat, offsets[:-1], offsets[1:]
        return flat, offsets, functions.cat([offsets[1:], creation.tensor([flat.shape[0]])])

    def forward(self, indices, offsets=None, per_sample_weights=None, compressed_indices_mapping=None):
        if compressed_indices_mapping is not None:
            raise NotImplementedError("quantized EmbeddingBag: gt has no pruned weights (compressed_indices_mapping)")
        if indices.dtype not in (dtypes.int32, dtypes.int64):
            raise RuntimeError(f"Expect 32 or 64 bit indices, but found {dtypes.torch_type_name(indices.dtype.name)} "
                               "instead.")
        with autograd.no_grad():
            flat, starts, ends = self._bags(indices, offsets)
            lengths = (ends - starts).clamp(min=0)
            scale, bias = (v.float().reshape(-1) for v in self._rows)
            weights = None if per_sample_weights is None else per_sample_weights.detach().float().reshape(-1)
            buf = creation.zeros((starts.shape[0], self.embedding_dim), dtype=dtypes.float32)
            longest = int(lengths.max()) if lengths.numel() else 0
            # position by position in every bag at once: fbgemm adds a bag's rows in order, one rounding each
            for j in range(longest):
                live = j < lengths
                at = (starts + j).where(live, 0).clamp(max=max(flat.shape[0] - 1, 0))
                rows = flat[at]
                s, b = scale[rows], bias[rows]
                if weights is not None:
                    s, b = s * weights[at], b * weights[at]
                step = self._qweight._q_int[rows].double() * s.double().reshape(-1, 1) + \
                    (buf + b.reshape(-1, 1)).double()
                buf = step.float().where(live.reshape(-1, 1), buf)
            return buf

    def extra_repr(self):
        return (f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}, dtype={self.dtype!r}, "
                f"qscheme={self._qweight.qscheme()!r}")

    def __repr__(self):
        return f"QuantizedEmbeddingBag({self.extra_repr()})"
