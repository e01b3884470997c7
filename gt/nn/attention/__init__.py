"""Multi-head attention with separate q/k/v/out projections: self-attention, cross-attention
over another sequence, and step-by-step decoding with a ``KVCache``."""

import math

from gt import amp, dtypes
from gt.backend import B
from gt.nn import functional as F
from gt.nn.hooks import has_hooks
from gt.nn.kv_cache import KVCache
from gt.nn.linear import Linear
from gt.nn.module import Module
from gt.ops import attention, linalg
from gt.ops.self_attention import PackedSelfAttention
from gt.ops._shapes import broadcast_shape
from gt.tensor import Tensor, arange, cat, where


class MultiHeadAttention(Module):
    """Attention of a sequence x (B, L, D) over itself, or over ``context`` (B, S, D):
    -> (B, L, D), D = ``embed_dim``. Queries come from x, keys and values from ``context``
    when it is given (cross-attention), else from x.

    ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj`` are ``Linear(D, D)`` layers (their
    names are the state-dict keys). Each of the ``num_heads`` heads attends with
    ``softmax(q @ k.T / sqrt(D / num_heads))``. ``causal=True`` (self-attention only) stops
    position i from attending to any j > i.

    The masks in ``forward`` follow ``torch.nn.MultiheadAttention`` (batch_first=True):
    ``attn_mask`` is a bool mask where True means "may NOT attend", or a float mask added to
    the scores, of shape (L, S) or anything that broadcasts to (B, num_heads, L, S);
    ``key_padding_mask`` (B, S) is True at padding keys (or float, added). Note that
    ``F.scaled_dot_product_attention`` reads a bool mask the other way round (True = takes
    part), as torch's does.

        >>> attn = nn.MultiHeadAttention(64, num_heads=4, causal=True)
        >>> attn(gt.randn(2, 10, 64)).shape
        (2, 10, 64)
        >>> cross = nn.MultiHeadAttention(64, num_heads=4)
        >>> cross(gt.randn(2, 10, 64), context=gt.randn(2, 7, 64)).shape
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

    def forward(self, x, context=None, attn_mask=None, key_padding_mask=None, need_weights=False, cache=None):
        """x (B, L, D) [, context (B, S, D)] -> out (B, L, D); with ``need_weights=True``,
        (out, weights (B, H, L, S)) where ``weights`` are the attention probabilities that were
        used (after dropout). With a ``KVCache``, the keys and values of earlier calls are
        reused: self-attention appends the new positions' keys and values to the cached ones
        (x holds only the new positions), cross-attention projects ``context`` once."""
        x = self._checked(x, "input")
        Bsz, L, D = x.shape
        if context is not None:
            context = self._checked(context, "context")
            if context.shape[0] != Bsz:
                raise ValueError(f"MultiHeadAttention: context has batch size {context.shape[0]}, "
                                 f"the input {Bsz}; they must match")
            if self.causal:
                raise ValueError("MultiHeadAttention: causal=True masks self-attention; cross-attention over "
                                 "a context has no order to mask (use a module with causal=False)")
        H, hd = self.num_heads, self.head_dim
        fused = not need_weights and (self.dropout == 0 or not self.training)
        projs = self._packed_projections(Bsz * L) if fused and context is None and cache is None else None
        if (projs is not None and x.dtype.is_floating_point and x.dtype == projs[0].weight.dtype
                and not amp.is_autocast_enabled()):
            return self.out_proj(self._projected_attention(x, projs, attn_mask, key_padding_mask))
        packed = self._packed_weights(projs)
        if packed is not None:
            # One product for q, k and v, (B, L, 3D), from the three weights stacked: one gemm
            # three times as wide beats three (3136 x 128 rows into 384: 1.21 against 1.39 ms on
            # a 2-core Xeon), and x's gradient is one gemm (1.08 ms) where three and two sums of
            # (B, L, D) took 1.36. The same weights and state dict; values to float rounding.
            qkv = linalg.Linear.apply(x, *packed)
            S, dtype = L, qkv.dtype
        else:
            q = self.q_proj(x)                                       # (B, L, D)
            k, v = self._keys_values(x, context, cache)             # (B, S, D) each
            S, dtype = k.shape[1], q.dtype
        offset = S - L if self.causal else None   # the new queries are the last L of the S positions
        mask = self._mask(attn_mask, key_padding_mask, (Bsz, H, L, S), offset, dtype)
        if fused:
            # The same computation as below as one op (one tape entry instead of a dozen).
            inputs = (q, k, v) if packed is None else (qkv, None, None)
            out = attention.Attention.apply(*inputs, mask, num_heads=H, scale=1.0 / math.sqrt(hd), causal=offset,
                                            packed=packed is not None)
            return self.out_proj(out)
        q = q.reshape(Bsz, L, H, hd).permute(0, 2, 1, 3)  # (B, H, L, hd)
        k = k.reshape(Bsz, S, H, hd).permute(0, 2, 1, 3)  # (B, H, S, hd)
        v = v.reshape(Bsz, S, H, hd).permute(0, 2, 1, 3)  # (B, H, S, hd)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))     # (B, H, L, S)
        if offset is not None and offset < S - 1:
            i = arange(offset, offset + L)
            scores = scores.masked_fill(i.unsqueeze(1) < arange(S).unsqueeze(0), float("-inf"))
        if mask is not None and mask.dtype == dtypes.bool_:
            scores = scores.masked_fill(mask, float("-inf"))  # exp(-inf) = 0: no weight, no gradient
        elif mask is not None:
            scores = scores + mask
        weights = F.dropout(scores.softmax(-1), self.dropout, self.training)  # (B, H, L, S)
        out = (weights @ v).permute(0, 2, 1, 3).reshape(Bsz, L, D)  # (B, H, L, hd) -> (B, L, H*hd)
        out = self.out_proj(out)
        return (out, weights) if need_weights else out

    def _projected_attention(self, x, projs, attn_mask, key_padding_mask):
        """Self-attention of x (B, L, D) before the output projection, with the q, k and v
        projections in the same op, whose backward reads the three gradients before (or instead
        of) packing them (gt/ops/self_attention.py)."""
        Bsz, L, _ = x.shape
        offset = 0 if self.causal else None
        mask = self._mask(attn_mask, key_padding_mask, (Bsz, self.num_heads, L, L), offset, x.dtype)
        params = [p.weight for p in projs] + [p.bias for p in projs]
        return PackedSelfAttention.apply(x, *params, mask, num_heads=self.num_heads,
                                         scale=1.0 / math.sqrt(self.head_dim), causal=offset)

    PACK_ROWS = 8   # rows per embed_dim from which q, k and v come from one packed product

    def _packed_projections(self, rows):
        """``(q_proj, k_proj, v_proj)`` when q, k and v may come from one packed product; else
        None. They may when the three are plain ``Linear`` layers (``_plain_projections``) and
        ``rows`` (batch x length) is at least ``PACK_ROWS`` x D. Packing copies the three (D, D)
        weights each call, and their gradients back out of the packed one: it pays only where
        the products are many times larger (the seed step of benchmarks/bench_train.py, 8 rows
        of D 256, took 25.2-25.7 ms unpacked and 26.5-28.3 ms packed; the small decoder's 3136
        rows of D 128 gain)."""
        return None if rows < self.PACK_ROWS * self.embed_dim else self._plain_projections()

    @staticmethod
    def _packed_weights(projs):
        """The projections' weights stacked (3D, D) and biases (3D,) or None, for one packed
        product (autocast, or an input that is not real floating point); None without ``projs``."""
        if projs is None:
            return None
        weight = cat([p.weight for p in projs], axis=0)
        bias = None if projs[0].bias is None else cat([p.bias for p in projs], axis=0)
        return weight, bias

    def _plain_projections(self):
        """``(q_proj, k_proj, v_proj)`` when the three are plain ``Linear`` layers (not a subclass
        that changes what they compute) alike in bias and dtype, so one stacked product may
        stand for them; else None."""
        projs = (self.q_proj, self.k_proj, self.v_proj)
        if not all(type(p) is Linear for p in projs) or len({(p.bias is None, p.weight.dtype) for p in projs}) != 1:
            return None
        if has_hooks(*projs):
            return None   # a packed product skips their __call__, and so their forward hooks
        return projs

    def _checked(self, x, what):
        x = F._tensor(x, "MultiHeadAttention", what)
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiHeadAttention(embed_dim={self.embed_dim}): expected {what} of shape "
                             f"(batch, seq, {self.embed_dim}), got {x.shape}")
        return x

    def _keys_values(self, x, context, cache):
        """Projected keys and values (B, S, D): of x (appended to the cached ones) or of context
        (projected once per context while a cache holds them)."""
        if cache is not None and not isinstance(cache, KVCache):
            raise TypeError(f"MultiHeadAttention: cache must be a gt.nn.KVCache, got {type(cache).__name__}")
        if cache is None:
            src = x if context is None else context
            return self.k_proj(src), self.v_proj(src)
        if context is not None:
            return cache._cross_kv(self, context)
        return cache._append(self, self.k_proj(x), self.v_proj(x))

    def _mask(self, attn_mask, key_padding_mask, scores_shape, offset, dtype):
        """One mask for the fused op, checked against scores_shape (B, H, L, S): bool (True =
        blocked) or float (added, in ``dtype``), or None. A bool and a float mask are joined as
        torch does: the bool one becomes -inf."""
        Bsz, _, L, S = scores_shape
        masks = []
        if attn_mask is not None:
            masks.append(self._as_mask(attn_mask, "attn_mask", scores_shape, f"(L, S) = ({L}, {S})"))
        if key_padding_mask is not None:
            pad = self._as_mask(key_padding_mask, "key_padding_mask", (Bsz, S), f"(batch, S) = ({Bsz}, {S})")
            if pad.shape != (Bsz, S):
                raise ValueError(f"MultiHeadAttention: key_padding_mask must have shape (batch, S) = ({Bsz}, {S}), "
                                 f"got {pad.shape}")
            masks.append(pad.reshape(Bsz, 1, 1, S))  # (B, 1, 1, S): the same keys for every head and query
        if not masks:
            return None
        if all(m.dtype == dtypes.bool_ for m in masks):
            mask = masks[0] if len(masks) == 1 else masks[0] | masks[1]
            self._check_some_key(mask, L, S, offset)
            return mask
        mask = None
        for m in masks:
            m = where(m, float("-inf"), 0.0) if m.dtype == dtypes.bool_ else m
            m = m if m.dtype == dtype else m.to(dtype)     # a float64 numpy mask must not widen float32 scores
            mask = m if mask is None else mask + m
        return mask

    @staticmethod
    def _as_mask(mask, name, shape, hint):
        mask = mask if isinstance(mask, Tensor) else Tensor._wrap(B.asarray(mask))
        shape_ok = mask.ndim <= len(shape)
        if shape_ok:
            try:
                shape_ok = broadcast_shape(name, mask.shape, shape) == shape
            except ValueError:
                shape_ok = False
        if not shape_ok:
            raise ValueError(f"MultiHeadAttention: {name} of shape {mask.shape} does not broadcast to "
                             f"{shape}; use {hint}")
        if mask.dtype != dtypes.bool_ and not mask.dtype.is_floating_point:
            raise TypeError(f"MultiHeadAttention: {name} must be bool (True = may not attend) or float "
                            f"(added to the scores), got {mask.dtype!r}")
        return mask

    @staticmethod
    def _check_some_key(blocked, L, S, offset):
        if offset is not None and offset < S - 1:
            i = arange(offset, offset + L)
            blocked = blocked | (i.unsqueeze(1) < arange(S).unsqueeze(0))
        if ((~blocked).sum(-1) == 0).any():
            # softmax over an empty set of keys is 0/0: refuse instead of returning NaN
            raise ValueError("MultiHeadAttention: the attention mask blocks every key for some query; "
                             "each query must be allowed to attend to at least one position")

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"causal={self.causal}")
