"""``nn.MultiheadAttention``: torch's module of that name, with its parameter names and shapes,
its initialisation, its (L, N, E) layout and its masks, so that a state dict moves between
torch and gt unchanged. (gt's own ``nn.MultiHeadAttention``, batch first with separate q/k/v
``Linear`` layers, is another module: gt/nn/attention.py.)"""

import math

from gt import dtypes
from gt.nn import functional as F
from gt.nn import init
from gt.nn.inputs import as_tensor
from gt.nn.linear import Linear
from gt.nn.module import Module
from gt.nn.padding import pad
from gt.nn.parameter import Parameter
from gt.tensor import cat, empty


class MultiheadAttention(Module):
    """Attention of ``query`` over ``key``/``value`` with ``num_heads`` heads, as
    ``torch.nn.MultiheadAttention``: ``forward(query, key, value)`` ->
    ``(attn_output, attn_weights or None)``.

    Shapes (E = ``embed_dim``, L queries, S keys, N the batch): query (L, N, E), key (S, N,
    ``kdim``), value (S, N, ``vdim``) -> output (L, N, E); with ``batch_first=True`` the batch comes
    first, (N, L, E); unbatched inputs are (L, E), (S, kdim), (S, vdim) -> (L, E).

    Parameters, under torch's names: ``in_proj_weight`` (3E, E) when kdim == vdim == E, else
    ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim) and ``v_proj_weight`` (E, vdim);
    ``in_proj_bias`` (3E,) and ``out_proj`` (a ``Linear(E, E)``) with ``bias=True``; ``bias_k`` and
    ``bias_v`` (1, 1, E) with ``add_bias_kv=True`` (a learnt key/value appended to every
    sequence). ``add_zero_attn=True`` appends a zero key and value after the projection. As
    torch: the in-projections are ``xavier_uniform_``, the biases zeros, ``bias_k``/``bias_v``
    ``xavier_normal_``, ``out_proj.weight`` ``Linear``'s default.

        >>> mha = nn.MultiheadAttention(64, num_heads=4)
        >>> x = gt.randn(10, 2, 64)                                  # (L, N, E)
        >>> out, weights = mha(x, x, x)
        >>> out.shape, weights.shape                                 # weights averaged over heads
        ((10, 2, 64), (2, 10, 10))

    Where gt differs from torch: shape and dtype errors are ValueError/TypeError where torch
    raises AssertionError; there is no ``device`` argument, no warning for a bool mask paired
    with a float one, and no separate inference kernel (torch's "fast path" of eval mode gives
    the same values, except that a query whose keys are all masked gets zeros there and NaN in
    torch's other paths; gt gives NaN with ``need_weights=True`` and zeros without, as torch's
    training-mode paths do).
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, dtype=None):
        super().__init__()
        for name, n in (("embed_dim", embed_dim), ("num_heads", num_heads), ("kdim", kdim), ("vdim", vdim)):
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
                raise ValueError(f"MultiheadAttention: {name} must be a positive int, got {n!r}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim must be divisible by num_heads, got embed_dim="
                             f"{embed_dim} and num_heads={num_heads}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"MultiheadAttention: dropout has to be between 0 and 1, got {dropout!r}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first, self.add_zero_attn = dropout, bool(batch_first), bool(add_zero_attn)
        dtype = dtypes.default_float if dtype is None else dtype

        def weight(*shape):
            return Parameter(empty(*shape, dtype=dtype))
        # registration order is torch's, so state_dict() lists the keys in torch's order
        names = ("q_proj_weight", "k_proj_weight", "v_proj_weight")
        if self._qkv_same_embed_dim:
            self.in_proj_weight = weight(3 * embed_dim, embed_dim)
            for name in names:
                self.register_parameter(name, None)
        else:
            for name, cols in zip(names, (embed_dim, self.kdim, self.vdim)):
                setattr(self, name, weight(embed_dim, cols))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = weight(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if add_bias_kv:
            self.bias_k, self.bias_v = weight(1, 1, embed_dim), weight(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self):
        """torch's initialisation (the name is torch's too)."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        for b in (self.bias_k, self.bias_v):
            if b is not None:
                init.xavier_normal_(b)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        """-> ``(attn_output, attn_weights)``; ``attn_weights`` (N, L, S) averaged over the heads,
        (N, num_heads, L, S) with ``average_attn_weights=False``, None with ``need_weights=False``
        (then the attention runs as one fused op, ``F.scaled_dot_product_attention``).

        ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or (N * num_heads, L, S): a bool mask
        is True where a query may NOT attend (the opposite of ``F.scaled_dot_product_attention``'s
        bool masks, as in torch), a float mask is added to the scores. ``is_causal=True`` is
        torch's hint that ``attn_mask`` (required) is the causal mask: without a
        ``key_padding_mask`` and with ``need_weights=False`` the causal attention is computed
        instead of reading the mask. Weights are those after dropout, as torch's.
        """
        same_kv, self_attn = key is value, query is key and key is value
        query, key, value = (as_tensor(t, "MultiheadAttention", n)
                             for t, n in ((query, "query"), (key, "key"), (value, "value")))
        batched = self._check_ranks(query, key, value, key_padding_mask, attn_mask)
        if self.batch_first and batched:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        elif not batched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = as_tensor(key_padding_mask, "MultiheadAttention", "key_padding_mask").unsqueeze(0)
        L, N, _ = query.shape
        S = key.shape[0]
        self._check_sizes(query, key, value)
        key_padding_mask = self._as_float_mask(key_padding_mask, "key_padding_mask", query.dtype)
        if is_causal and attn_mask is None:
            raise RuntimeError("MultiheadAttention: need attn_mask if specifying the is_causal hint (pass the "
                               "causal mask, e.g. a bool (L, S) mask that is True above the diagonal)")
        sdpa_causal = bool(is_causal) and key_padding_mask is None and not need_weights
        attn_mask = None if sdpa_causal else self._attn_mask(attn_mask, query.dtype, L, S, N)
        q, k, v = self._project(query, key, value, self_attn, same_kv)      # (L, N, E), (S, N, E) x 2
        if self.bias_k is not None:
            # one learnt key and value more for every sequence, which every query may attend to
            k = cat([k, self.bias_k.expand(1, N, self.embed_dim)], dim=0)
            v = cat([v, self.bias_v.expand(1, N, self.embed_dim)], dim=0)
            attn_mask, key_padding_mask = (None if m is None else pad(m, (0, 1)) for m in (attn_mask, key_padding_mask))
        q, k, v = (self._heads(t) for t in (q, k, v))                        # (N, H, L or S, hd)
        if self.add_zero_attn:
            zeros = k.new_zeros(k.shape[:2] + (1, self.head_dim))
            k, v = cat([k, zeros], dim=2), cat([v, zeros], dim=2)
            attn_mask, key_padding_mask = (None if m is None else pad(m, (0, 1)) for m in (attn_mask, key_padding_mask))
        mask = self._merged(attn_mask, key_padding_mask, N, L, k.shape[2])
        p = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q * math.sqrt(1.0 / self.head_dim)) @ k.transpose(-2, -1)   # (N, H, L, S)
            weights = (scores if mask is None else scores + mask).softmax(-1)
            weights = F.dropout(weights, p) if p > 0 else weights
            out = weights @ v                                                  # (N, H, L, hd)
            weights = weights.mean(1) if average_attn_weights else weights
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=sdpa_causal)
            weights = None
        out = out.permute(2, 0, 1, 3).reshape(L, N, self.embed_dim)           # (L, N, H * hd)
        # torch applies out_proj's weights directly (not out_proj's forward): hooks on it do not run
        out = F.linear(out, self.out_proj.weight, self.out_proj.bias)
        if not batched:
            return out.squeeze(1), None if weights is None else weights.squeeze(0)
        return (out.transpose(0, 1) if self.batch_first else out), weights

    def _check_ranks(self, query, key, value, key_padding_mask, attn_mask):
        """True for batched (3-D) inputs, False for unbatched (2-D) ones; else a ValueError."""
        if query.ndim not in (2, 3):
            raise ValueError(f"MultiheadAttention: query should be unbatched 2-D (L, E) or batched 3-D, got a "
                             f"{query.ndim}-D query of shape {query.shape}")
        batched, what = query.ndim == 3, "batched (3-D)" if query.ndim == 3 else "unbatched (2-D)"
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"MultiheadAttention: for {what} query, expected key and value to be {query.ndim}-D, "
                             f"got {key.ndim}-D and {value.ndim}-D tensors")
        kpm_shape = None if key_padding_mask is None else as_tensor(key_padding_mask, "MultiheadAttention").shape
        if kpm_shape is not None and len(kpm_shape) != query.ndim - 1:
            raise ValueError(f"MultiheadAttention: for {what} query, expected key_padding_mask to be None or "
                             f"{query.ndim - 1}-D, got shape {kpm_shape}")
        if attn_mask is not None:
            shape = as_tensor(attn_mask, "MultiheadAttention").shape
            if len(shape) not in (2, 3):
                raise ValueError(f"MultiheadAttention: for {what} query, expected attn_mask to be None, 2-D or 3-D, "
                                 f"got shape {shape}")
            expected = (self.num_heads, query.shape[0], key.shape[0])
            if not batched and len(shape) == 3 and shape != expected:
                raise ValueError(f"MultiheadAttention: expected a 3-D attn_mask of shape (num_heads, L, S) = "
                                 f"{expected} for unbatched query, got {shape}")
        return batched

    def _check_sizes(self, query, key, value):
        E, (S, Nk, Ek), (Sv, Nv, Ev) = query.shape[2], key.shape, value.shape
        if (E, Ek, Ev) != (self.embed_dim, self.kdim, self.vdim):
            raise ValueError(f"MultiheadAttention(embed_dim={self.embed_dim}, kdim={self.kdim}, vdim={self.vdim}): "
                             f"query, key and value end in {E}, {Ek} and {Ev} features")
        if (S, Nk) != (Sv, Nv) or Nk != query.shape[1]:
            raise ValueError(f"MultiheadAttention: query, key and value must agree in batch size and key and value "
                             f"in length, got shapes {query.shape}, {key.shape}, {value.shape} (seq-first layout)")

    @staticmethod
    def _as_float_mask(mask, name, dtype):
        """torch's canonical mask: a bool one as 0 / -inf in ``dtype``, a float one in ``dtype``."""
        if mask is None:
            return None
        mask = as_tensor(mask, "MultiheadAttention", name)
        if mask.dtype == dtypes.bool_:
            return mask.new_zeros(mask.shape, dtype=dtype).masked_fill(mask, float("-inf"))
        if not mask.dtype.is_floating_point:
            raise TypeError(f"MultiheadAttention: only bool and floating types of {name} are supported, "
                            f"got {mask.dtype!r}")
        return mask if mask.dtype == dtype else mask.to(dtype)

    def _attn_mask(self, attn_mask, dtype, L, S, N):
        mask = self._as_float_mask(attn_mask, "attn_mask", dtype)
        if mask is not None:
            want = (L, S) if mask.ndim == 2 else (N * self.num_heads, L, S)
            if mask.shape != want:
                raise RuntimeError(f"MultiheadAttention: the shape of the {mask.ndim}D attn_mask is {mask.shape}, "
                                   f"but should be {want}")
        return mask

    def _project(self, query, key, value, self_attn, same_kv):
        """The in-projections q (L, N, E), k and v (S, N, E): one product for self-attention (the
        three weights are the rows of ``in_proj_weight``), two when key is value."""
        E, b = self.embed_dim, self.in_proj_bias

        def part(t, lo, hi):
            return None if t is None else t[lo:hi]
        if not self._qkv_same_embed_dim:
            xs, ws = (query, key, value), (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
            return tuple(F.linear(xs[i], ws[i], part(b, i * E, (i + 1) * E)) for i in range(3))
        w = self.in_proj_weight
        if self_attn:
            qkv = F.linear(query, w, b)                                         # (L, N, 3E)
            return qkv[..., :E], qkv[..., E:2 * E], qkv[..., 2 * E:]
        q = F.linear(query, w[:E], part(b, 0, E))
        if same_kv:
            kv = F.linear(key, w[E:], part(b, E, 3 * E))                        # (S, N, 2E)
            return q, kv[..., :E], kv[..., E:]
        return q, F.linear(key, w[E:2 * E], part(b, E, 2 * E)), F.linear(value, w[2 * E:], part(b, 2 * E, 3 * E))

    def _heads(self, t):
        """(T, N, E) -> (N, H, T, hd): the heads split off and the batch first."""
        T, N, _ = t.shape
        return t.reshape(T, N, self.num_heads, self.head_dim).permute(1, 2, 0, 3)

    def _merged(self, attn_mask, key_padding_mask, N, L, S):
        """One float mask that broadcasts to the scores (N, H, L, S), or None."""
        if key_padding_mask is not None and key_padding_mask.shape != (N, S):
            raise ValueError(f"MultiheadAttention: expected key_padding_mask of shape (N, S) = ({N}, {S}), got "
                             f"{key_padding_mask.shape}")
        if attn_mask is not None and attn_mask.ndim == 3:
            attn_mask = attn_mask.reshape(N, self.num_heads, L, S)              # (N * H, L, S) -> (N, H, L, S)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.reshape(N, 1, 1, S)
            return key_padding_mask if attn_mask is None else attn_mask + key_padding_mask
        return attn_mask

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}")
