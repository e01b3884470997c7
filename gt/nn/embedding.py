"""``Embedding``: a lookup table of learnable vectors, indexed by integer ids."""

from gt import dtypes
from gt.nn import functional as F
from gt.nn.embedding_options import check_weight, init_padding_row_, lookup_options
from gt.nn.module import Module
from gt.nn.parameter import Parameter
from gt.tensor import randn


class Embedding(Module):
    """``weight[ids]``: integer ids of any shape (...) -> (..., embedding_dim), with torch's
    options (``padding_idx``, ``max_norm``, ``norm_type``, ``scale_grad_by_freq``; see
    ``F.embedding``). ``sparse=True`` makes ``weight.grad`` a sparse COO tensor, as torch's.

    ``weight`` (num_embeddings, embedding_dim) starts as N(0, 1) samples, as in PyTorch, with the
    ``padding_idx`` row zero; ``_weight`` gives it instead, ``_freeze=True`` keeps it fixed.
    Ids outside ``[0, num_embeddings)`` raise IndexError.

        >>> emb = nn.Embedding(10, 4, padding_idx=0)
        >>> emb(gt.tensor([[1, 2, 3]])).shape
        (1, 3, 4)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None):
        super().__init__()
        if isinstance(padding_idx, dtypes.DType):       # gt's earlier positional form: Embedding(n, d, dtype)
            padding_idx, dtype = None, padding_idx
        for name, n in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                raise ValueError(f"Embedding: {name} must be a positive int, got {n!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = lookup_options(num_embeddings, padding_idx, max_norm, norm_type, "Embedding")
        self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse = max_norm, norm_type, scale_grad_by_freq, sparse
        if _weight is None:
            dtype = dtypes.default_float if dtype is None else dtype
            self.weight = Parameter(randn(num_embeddings, embedding_dim, dtype=dtype), requires_grad=not _freeze)
            init_padding_row_(self.weight, self.padding_idx)
        else:
            weight = check_weight(_weight, num_embeddings, embedding_dim, "Embedding")
            self.weight = Parameter(weight.detach(), requires_grad=not _freeze)
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """New N(0, 1) values, the padding row zero (torch's)."""
        from gt.nn import init

        init.normal_(self.weight)
        init_padding_row_(self.weight, self.padding_idx)

    def forward(self, ids):
        return F.embedding(ids, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse:
            s += ", sparse=True"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding whose table is ``embeddings`` (num_embeddings, embedding_dim), fixed unless
        ``freeze=False`` (torch's)."""
        if getattr(embeddings, "ndim", None) != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D (num_embeddings, embedding_dim), got "
                             f"shape {tuple(getattr(embeddings, 'shape', ()))}")
        rows, cols = embeddings.shape
        return cls(rows, cols, _weight=embeddings, _freeze=freeze, padding_idx=padding_idx, max_norm=max_norm,
                   norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)
