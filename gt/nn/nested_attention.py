"""torch 2.13's multi-head attention on nested tensors (gt.nested): the module
(``nn.MultiheadAttention``, and the transformer layers through it) takes a nested input on its
inference fast path only (self-attention of a strided nested tensor, no grad, no masks...: each
sequence on its own) and otherwise asserts, naming the first reason that path was not taken (a
jagged tensor never takes it: it "has_torch_function"); ``F.multi_head_attention_forward`` fails
where its first dense-only step meets the nested tensor. (``F.scaled_dot_product_attention`` takes (B, H, j, D)
jagged tensors: gt/ops/jagged_attention.py.)"""

from gt import amp, autograd
from gt.nn.padding import pad
from gt.tensor import Tensor, cat
from gt.tensor.compat_methods import strided


def is_nested(x):
    return type(x) is not Tensor and getattr(x, "is_nested", False)


def slow_path_reason(attn, query, key, value, key_padding_mask=None, attn_mask=None, self_attention=None):
    """torch's ``why_not_fast_path`` of ``MultiheadAttention.forward`` (its order of checks), or
    None where a nested input takes the fast path (a strided one, in inference); ``self_attention``:
    False for a cross-attention whose query is made inside the caller (a decoder's)."""
    masks = (attn_mask, key_padding_mask)
    why = ("floating-point masks are not supported for fast path."
           if any(m is not None and m.dtype.is_floating_point for m in masks) else "")
    bias, weight = attn.in_proj_bias, attn.in_proj_weight
    same = (query is key and key is value) if self_attention is None else self_attention
    checks = ((query.dim() != 3, f"input not batched; expected query.dim() of 3 but got {query.dim()}"),
              (not same, "non-self attention was used (query, key, and value are not the same Tensor)"),
              (bias is not None and query.dtype != bias.dtype,
               f"dtypes of query ({query.dtype}) and self.in_proj_bias ({getattr(bias, 'dtype', None)}) don't match"),
              (weight is None, "in_proj_weight was None"),
              (weight is not None and query.dtype != weight.dtype,
               f"dtypes of query ({query.dtype}) and self.in_proj_weight ({getattr(weight, 'dtype', None)}) "
               "don't match"),
              (attn.training, "training is enabled"),
              (attn.num_heads % 2 != 0, "self.num_heads is not even"),
              (not attn.batch_first, "batch_first was not True"),
              (attn.bias_k is not None, "self.bias_k was not None"),
              (attn.bias_v is not None, "self.bias_v was not None"),
              (attn.add_zero_attn, "add_zero_attn was enabled"),
              (not attn._qkv_same_embed_dim, "_qkv_same_embed_dim was not True"),
              (is_nested(query) and any(m is not None for m in masks),
               "supplying both src_key_padding_mask and src_mask at the same time" + " " * 34
               + "is not supported with NestedTensor input"),     # torch's spaces (a continued string)
              (amp.is_autocast_enabled(), "autocast is enabled"))
    for failed, reason in checks:
        if failed:
            return reason
    if why:
        return why
    if any(is_nested(t) and t.layout != strided for t in (query, key, value)):
        return "some Tensor argument has_torch_function"       # torch's jagged tensors are a tensor subclass
    params = (query, key, value, weight, bias, attn.out_proj.weight, attn.out_proj.bias)
    if autograd.is_grad_enabled() and any(p is not None and p.requires_grad for p in params):
        return ("grad is enabled and at least one of query or the input/output projection weights or biases "
                "requires_grad")
    return None


def refuse_module(attn, query, key, value, key_padding_mask=None, attn_mask=None, self_attention=None):
    """torch's AssertionError for ``attn(query, key, value)`` (a ``MultiheadAttention``) where one
    of them is nested and its fast path is not taken, naming why; returns where it is taken."""
    why = slow_path_reason(attn, query, key, value, key_padding_mask, attn_mask, self_attention)
    if why is not None:
        raise AssertionError("MultiheadAttention does not support NestedTensor outside of its fast path. The fast "
                             f"path was not hit because {why}")


def per_sequence(nested, fn):
    """A strided nested tensor of ``fn`` of each of its tensors (S, E) given as a batch of one
    (1, S, E), the batch dim dropped: torch's fused inference of a layer on a nested input, whose
    sequences never meet."""
    return nested._map_values(lambda part: fn(part.unsqueeze(0))[0])


def fast_path(attn, query, need_weights, average_attn_weights):
    """``attn(query, query, query)`` on a strided nested ``query`` in inference, as torch's fused
    kernel: the output nested, the weights (if asked for) a dense (B, L, L) (or (B, heads, L, L))
    tensor of each sequence's, zero beyond its length (L the longest)."""
    weights = []

    def one(x):
        out, w = attn._attend(x, x, x, None, need_weights, None, average_attn_weights)
        weights.append(w)
        return out

    out = per_sequence(query, one)
    if not need_weights:
        return out, None
    longest = max(w.shape[-1] for w in weights)
    return out, cat([pad(w, (0, longest - w.shape[-1], 0, longest - w.shape[-1])) for w in weights])


def refuse_functional(query, key, value, num_heads, separate):
    """Raise the error torch 2.13's ``F.multi_head_attention_forward`` meets first where one of
    ``query``/``key``/``value`` (batched, L/S first) is nested: key and value of other shapes
    (its assertion), the packed in-projection (``unsqueeze(0)``), or the split into heads
    (``view``); ``separate``: ``use_separate_proj_weight``."""
    k_shape, v_shape = (tuple(key.shape), tuple(value.shape)) if not separate else \
        (tuple(key.shape[:2]), tuple(value.shape[:2]))
    if k_shape != v_shape:
        if separate:
            raise AssertionError(f"key's sequence and batch dims {_dims(k_shape)} do not match value's "
                                 f"{_dims(v_shape)}")
        raise AssertionError(f"key shape {_dims(k_shape)} does not match value shape {_dims(v_shape)}")
    packed = not separate and ((query is key and key is value and is_nested(query)) or
                               (key is value and is_nested(key)))
    if packed:
        raise RuntimeError("unsqueeze(): not supported for NestedTensor on dim=0")
    batch = query.shape[1]
    heads = f"{num_heads}*{batch}" if is_nested(query) else str(num_heads * batch)
    head_dim = query.shape[-1] // num_heads
    for t in (query, key, value):
        if is_nested(t):
            raise RuntimeError(f"view(): cannot view shape {_dims(t.shape)} as [{t.shape[0]}, {heads}, {head_dim}]")


def _dims(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"
