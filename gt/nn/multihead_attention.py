"""``nn.MultiheadAttention``: torch's module of that name, with its parameter names and shapes,
its initialisation, its (L, N, E) layout and its masks, so that a state dict moves between
torch and gt unchanged. (gt's own ``nn.MultiHeadAttention``, batch first with separate q/k/v
``Linear`` layers, is another module: gt/nn/attention/__init__.py.)"""

from gt import dtypes
from gt.nn import init
from gt.nn.linear import Linear
from gt.nn.module import Module
from gt.nn.multihead_attention_functional import AttentionComputation
from gt.nn.nested_attention import fast_path, is_nested, refuse_module
from gt.nn.parameter import Parameter
from gt.tensor import empty


class MultiheadAttention(AttentionComputation, Module):
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
    the same values, except that a query whose keys are all masked gets NaN there (torch 2.13,
    under ``no_grad``); gt gives NaN with ``need_weights=True`` and zeros without, as torch's
    paths with autograd do).
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
        instead of reading the mask. Weights are those after dropout, as torch's. (The computation:
        gt/nn/multihead_attention_functional.py, shared with ``F.multi_head_attention_forward``.)
        """
        if is_nested(query) or is_nested(key) or is_nested(value):     # torch's fast path only, else its error
            refuse_module(self, query, key, value, key_padding_mask, attn_mask)
            return fast_path(self, query, need_weights, average_attn_weights)
        return self._attend(query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights,
                            is_causal)

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}")
