"""Multi-head self-attention with separate q/k/v/out projections."""

import math

from gt import dtypes
from gt.backend import B
from gt.nn import functional as F
from gt.nn.linear import Linear
from gt.nn.module import Module
from gt.ops import linalg
from gt.ops._shapes import broadcast_shape
from gt.tensor import Tensor, arange


class MultiHeadAttention(Module):
    """Self-attention over a sequence: x (B, T, D) -> (B, T, D), D = ``embed_dim``.

    ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj`` are ``Linear(D, D)`` layers (their
    names are the state-dict keys). Each of the ``num_heads`` heads attends with
    ``softmax(q @ k.T / sqrt(D / num_heads))``. ``causal=True`` stops position i from
    attending to any j > i.

    ``attn_mask`` (optional, in ``forward``) follows ``torch.nn.MultiheadAttention``: a bool
    mask where True means "may NOT attend", or a float mask added to the scores; shape
    (T, T) or anything that broadcasts to (B, num_heads, T, T).

        >>> attn = nn.MultiHeadAttention(64, num_heads=4, causal=True)
        >>> attn(gt.randn(2, 10, 64)).shape
        (2, 10, 64)
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, causal=False, dtype=None):
        super().__init__()
        for name, n in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                raise ValueError(f"MultiHeadAttention: {name} must be a positive int, got {n!r}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim ({embed_dim}) must be divisible by "
                             f"num_heads ({num_heads})")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"MultiHeadAttention: dropout has to be between 0 and 1, got {dropout!r}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.causal = dropout, bool(causal)
        self.q_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self.k_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self.v_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)

    def forward(self, x, attn_mask=None, need_weights=False):
        """x (B, T, D) -> out (B, T, D); with ``need_weights=True``, (out, weights (B, H, T, T))
        where ``weights`` are the attention probabilities that were used (after dropout)."""
        x = F._tensor(x, "MultiHeadAttention")
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiHeadAttention(embed_dim={self.embed_dim}): expected input of shape "
                             f"(batch, seq, {self.embed_dim}), got {x.shape}")
        Bsz, T, D = x.shape
        H, hd = self.num_heads, self.head_dim
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)       # (B, T, D) each
        if attn_mask is None and not need_weights and (self.dropout == 0 or not self.training):
            # The same computation as below as one op (one tape entry instead of a dozen).
            out = linalg.Attention.apply(q, k, v, num_heads=H, scale=1.0 / math.sqrt(hd), causal=self.causal)
            return self.out_proj(out)
        q = q.reshape(Bsz, T, H, hd).permute(0, 2, 1, 3)  # (B, H, T, hd)
        k = k.reshape(Bsz, T, H, hd).permute(0, 2, 1, 3)  # (B, H, T, hd)
        v = v.reshape(Bsz, T, H, hd).permute(0, 2, 1, 3)  # (B, H, T, hd)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))     # (B, H, T, T)

        blocked, additive = self._masks(attn_mask, (Bsz, H, T, T))
        if blocked is not None:
            scores = scores.masked_fill(blocked, float("-inf"))  # exp(-inf) = 0: no weight, no gradient
        if additive is not None:
            scores = scores + additive
        weights = F.dropout(scores.softmax(-1), self.dropout, self.training)  # (B, H, T, T)
        out = (weights @ v).permute(0, 2, 1, 3).reshape(Bsz, T, D)  # (B, H, T, hd) -> (B, T, H*hd)
        out = self.out_proj(out)
        return (out, weights) if need_weights else out

    def _masks(self, attn_mask, scores_shape):
        """(bool mask of blocked pairs or None, float mask to add or None), checked against scores_shape."""
        T = scores_shape[-1]
        blocked = additive = None
        if self.causal:
            i = arange(T)
            blocked = i.unsqueeze(1) < i.unsqueeze(0)  # (T, T): True where key j is after query i
        if attn_mask is not None:
            mask = attn_mask if isinstance(attn_mask, Tensor) else Tensor._wrap(B.asarray(attn_mask))
            shape_ok = mask.ndim <= 4
            if shape_ok:
                try:
                    shape_ok = broadcast_shape("attn_mask", mask.shape, scores_shape) == scores_shape
                except ValueError:
                    shape_ok = False
            if not shape_ok:
                raise ValueError(f"MultiHeadAttention: attn_mask of shape {mask.shape} does not broadcast to the "
                                 f"attention scores (batch, heads, T, T) = {scores_shape}; use (T, T) = ({T}, {T})")
            if mask.dtype == dtypes.bool_:
                blocked = mask if blocked is None else (mask | blocked)
            elif mask.dtype.is_floating_point:
                additive = mask
            else:
                raise TypeError(f"MultiHeadAttention: attn_mask must be bool (True = may not attend) or float "
                                f"(added to the scores), got {mask.dtype!r}")
        if blocked is not None and (((~blocked).sum(-1)) == 0).any():
            # softmax over an empty set of keys is 0/0: refuse instead of returning NaN
            raise ValueError("MultiHeadAttention: the attention mask blocks every key for some query; "
                             "each query must be allowed to attend to at least one position")
        return blocked, additive

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"causal={self.causal}")
