"""The computation of torch's multi-head attention, shared by ``nn.MultiheadAttention`` (its
parameters) and ``F.multi_head_attention_forward`` (torch's functional form: the weights passed
in, the (L, N, E) layout, ``static_k``/``static_v``)."""

import math
import types

from gt import dtypes
from gt.nn.core_functions import dropout, linear, scaled_dot_product_attention
from gt.nn.inputs import as_tensor
from gt.nn.nested_attention import is_nested, refuse_functional
from gt.nn.padding import pad
from gt.tensor import cat


class AttentionComputation:
    """The forward of torch's multi-head attention over the attributes of its module:
    ``embed_dim``, ``num_heads``, ``head_dim``, ``kdim``, ``vdim``, ``batch_first``, ``dropout``,
    ``training``, ``add_zero_attn``, ``_qkv_same_embed_dim``, the in-projection weights and bias,
    ``bias_k``/``bias_v`` and ``out_proj`` (``weight``, ``bias``)."""

    def _attend(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False, static_k=None, static_v=None):
        """``nn.MultiheadAttention.forward`` (its docstring says what each argument does), and
        ``static_k``/``static_v`` (N * num_heads, S, head_dim) in place of the projected keys/values."""
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
            if static_k is not None or static_v is not None:
                raise ValueError("multi_head_attention_forward: bias_k/bias_v cannot be added to static_k/static_v")
            # one learnt key and value more for every sequence, which every query may attend to
            k = cat([k, self.bias_k.expand(1, N, self.embed_dim)], dim=0)
            v = cat([v, self.bias_v.expand(1, N, self.embed_dim)], dim=0)
            attn_mask, key_padding_mask = (None if m is None else pad(m, (0, 1)) for m in (attn_mask, key_padding_mask))
        q, k, v = (self._heads(t) for t in (q, k, v))                        # (N, H, L or S, hd)
        k, v = self._static(k, static_k, "static_k", N), self._static(v, static_v, "static_v", N)
        if self.add_zero_attn:
            zeros = k.new_zeros(k.shape[:2] + (1, self.head_dim))
            k, v = cat([k, zeros], dim=2), cat([v, zeros], dim=2)
            attn_mask, key_padding_mask = (None if m is None else pad(m, (0, 1)) for m in (attn_mask, key_padding_mask))
        mask = self._merged(attn_mask, key_padding_mask, N, L, k.shape[2])
        p = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q * math.sqrt(1.0 / self.head_dim)) @ k.transpose(-2, -1)   # (N, H, L, S)
            weights = (scores if mask is None else scores + mask).softmax(-1)
            weights = dropout(weights, p) if p > 0 else weights
            out = weights @ v                                                  # (N, H, L, hd)
            weights = weights.mean(1) if average_attn_weights else weights
        else:
            out = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=sdpa_causal)
            weights = None
        out = out.permute(2, 0, 1, 3).reshape(L, N, self.embed_dim)           # (L, N, H * hd)
        # torch applies out_proj's weights directly (not out_proj's forward): hooks on it do not run
        out = linear(out, self.out_proj.weight, self.out_proj.bias)
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
            return tuple(linear(xs[i], ws[i], part(b, i * E, (i + 1) * E)) for i in range(3))
        w = self.in_proj_weight
        if self_attn:
            qkv = linear(query, w, b)                                         # (L, N, 3E)
            return qkv[..., :E], qkv[..., E:2 * E], qkv[..., 2 * E:]
        q = linear(query, w[:E], part(b, 0, E))
        if same_kv:
            kv = linear(key, w[E:], part(b, E, 3 * E))                        # (S, N, 2E)
            return q, kv[..., :E], kv[..., E:]
        return q, linear(key, w[E:2 * E], part(b, E, 2 * E)), linear(value, w[2 * E:], part(b, 2 * E, 3 * E))

    def _static(self, t, static, name, N):
        """``static`` (N * num_heads, S, head_dim), torch's precomputed keys or values, as (N, H, S,
        hd) in place of the projected ``t``; ``t`` itself when None."""
        if static is None:
            return t
        static = as_tensor(static, "multi_head_attention_forward", name)
        if static.ndim != 3 or static.shape[0] != N * self.num_heads or static.shape[2] != self.head_dim:
            raise ValueError(f"multi_head_attention_forward: expected {name} of shape (N * num_heads, S, head_dim) = "
                             f"({N * self.num_heads}, S, {self.head_dim}), got {static.shape}")
        return static.reshape(N, self.num_heads, static.shape[1], self.head_dim)

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


class _Weights(AttentionComputation):
    """The attributes ``AttentionComputation`` reads, from ``multi_head_attention_forward``'s arguments."""

    def __init__(self, embed_dim, num_heads, kdim, vdim, weights, in_proj_bias, bias_kv, add_zero_attn, dropout_p,
                 out_proj, training):
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim, self.vdim, self.batch_first = kdim, vdim, False
        self._qkv_same_embed_dim = weights[0] is not None
        self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight = weights
        self.in_proj_bias, (self.bias_k, self.bias_v) = in_proj_bias, bias_kv
        self.add_zero_attn, self.dropout, self.training = bool(add_zero_attn), float(dropout_p), bool(training)
        self.out_proj = types.SimpleNamespace(weight=out_proj[0], bias=out_proj[1])


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """torch's functional multi-head attention: query (L, N, E), key (S, N, kdim), value (S, N, vdim)
    (or unbatched (L, E), ...) -> ``(attn_output (L, N, E), attn_weights or None)``, with the
    weights passed in: ``in_proj_weight`` (3E, E), or with ``use_separate_proj_weight=True``
    ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``; ``static_k``/``static_v`` (N * num_heads,
    S, E / num_heads) replace the projected keys/values. Masks, dropout (when ``training``) and
    the weights returned as ``nn.MultiheadAttention``'s, which computes the same way.
    """
    if is_nested(query) or is_nested(key) or is_nested(value):
        refuse_functional(query, key, value, num_heads, use_separate_proj_weight)     # torch's first failing step
    query = as_tensor(query, "multi_head_attention_forward", "query")
    if query.shape[-1] != embed_dim_to_check:
        raise ValueError(f"multi_head_attention_forward: was expecting embedding dimension of {embed_dim_to_check}, "
                         f"but got {query.shape[-1]}")
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads <= 0 or \
            embed_dim_to_check % num_heads:
        raise ValueError(f"multi_head_attention_forward: embed_dim {embed_dim_to_check} is not divisible by "
                         f"num_heads {num_heads!r}")
    separate = (q_proj_weight, k_proj_weight, v_proj_weight)
    if use_separate_proj_weight and any(w is None for w in separate):
        raise ValueError("multi_head_attention_forward: use_separate_proj_weight is True but q_proj_weight, "
                         "k_proj_weight or v_proj_weight is None")
    if not use_separate_proj_weight and in_proj_weight is None:
        raise ValueError("multi_head_attention_forward: use_separate_proj_weight is False but in_proj_weight is None")
    weights = (None, *separate) if use_separate_proj_weight else (in_proj_weight, None, None, None)
    kdim = as_tensor(key, "multi_head_attention_forward", "key").shape[-1]
    vdim = as_tensor(value, "multi_head_attention_forward", "value").shape[-1]
    parts = _Weights(embed_dim_to_check, num_heads, kdim, vdim, weights, in_proj_bias, (bias_k, bias_v),
                     add_zero_attn, dropout_p, (out_proj_weight, out_proj_bias), training)
    return parts._attend(query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights,
                         is_causal, static_k, static_v)
