"""``Embedding``: a lookup table of learnable vectors, indexed by integer ids."""

from gt import dtypes
from gt.nn import functional as F
from gt.nn.module import Module
from gt.nn.parameter import Parameter
from gt.tensor import randn


class Embedding(Module):
    """``weight[ids]``: integer ids of any shape (...) -> (..., embedding_dim).

    ``weight`` (num_embeddings, embedding_dim) starts as N(0, 1) samples, as in PyTorch.
    Ids outside ``[0, num_embeddings)`` raise IndexError.

        >>> emb = nn.Embedding(10, 4)
        >>> emb(gt.tensor([[1, 2, 3]])).shape
        (1, 3, 4)
    """

    def __init__(self, num_embeddings, embedding_dim, dtype=None):
        super().__init__()
        for name, n in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                raise ValueError(f"Embedding: {name} must be a positive int, got {n!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        dtype = dtypes.default_float if dtype is None else dtype
        self.weight = Parameter(randn(num_embeddings, embedding_dim, dtype=dtype))

    def forward(self, ids):
        return F.embedding(ids, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"
