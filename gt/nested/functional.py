"""``gt.nn.functional`` on jagged nested tensors: ``linear``, ``layer_norm``, ``dropout`` on the
values, and ``scaled_dot_product_attention`` on (B, H, j, D) inputs computed per sequence (no
padding, no cost for it). The nn functions hand a nested input here: they call
``type(x).__gt_function__(fn, args, kwargs)`` where ``x.is_nested`` (torch's
``__torch_function__`` protocol in small), so nn needs no import of this layer above it."""

import math

from gt.nn import functional as F
from gt.nested.jagged_tensor import NestedBase, NestedTensor, shape_text
from gt.nested import strided
from gt.nested.jagged_views import cat as _cat, stack as _stack, where as _jagged_where
from gt.ops.jagged_attention import JaggedAttention
from gt.tensor import cat


def _contiguous_input(fn, x, signature):
    """torch's "jt" check: no holes and the ragged dim at 1 (values that are a transposed view pass)."""
    if not isinstance(x, NestedTensor) or x._nt_lengths is not None or x._nt_ragged != 1:
        raise ValueError(f"NestedTensor {fn}_default({signature}): expected input to be a contiguous jagged "
                         "layout NestedTensor")


def linear(input, weight, bias=None):
    """``F.linear`` of every row of ``values`` (B, j, ..., in) -> (B, j, ..., out)."""
    _contiguous_input("linear", input, "input: jt, weight: t, bias: t?")
    return input._like(F.linear(input._nt_values, weight, bias), transposed=False)


def _trailing(fn, input, normalized_shape):
    """``normalized_shape`` as a tuple: dims after the ragged one (torch's error otherwise)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if len(shape) >= input.dim() - input._nt_ragged:
        raise RuntimeError(f"{fn}(): normalizing over ragged dim not supported for nested tensors "
                           f"(normalized_shape={list(shape)}, input of size {shape_text(input)})")
    return shape


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """``F.layer_norm`` over trailing dims after the ragged dim."""
    shape = _trailing("layer_norm", input, normalized_shape)
    return input._like(F.layer_norm(input._nt_values, shape, weight, bias, eps), transposed=False)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``F.rms_norm`` over trailing dims after the ragged dim."""
    shape = _trailing("rms_norm", input, normalized_shape)
    return input._like(F.rms_norm(input._nt_values, shape, weight, eps), transposed=False)


def dropout(input, p=0.5, training=True, inplace=False):
    """``F.dropout`` of ``values``."""
    return input._like(F.dropout(input._nt_values, p, training, inplace))


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """Attention of (B, H, j, D) jagged query, key and value (the ragged dim after the heads, as
    ``nt.view(B, -1, H, D).transpose(1, 2)`` gives), each sequence's queries over its own keys:
    one dense attention per sequence, so padding costs nothing. Key and value may have other
    lengths than the query (cross-attention); the output has the query's structure.
    ``is_causal=True`` masks each sequence's keys after its query (the dense rule, per sequence:
    torch 2.13 has it on CUDA, not on the CPU). Masks raise, as torch's. (B, j, H, D) inputs on
    the same offsets (not transposed) are torch's too: each row's H entries attend to each other."""
    fn = "scaled_dot_product_attention"
    if attn_mask is not None:
        raise ValueError("Masks are not yet supported!")
    if not all(isinstance(t, NestedTensor) for t in (query, key, value)):
        flags = [getattr(t, "is_nested", False) for t in (query, key, value)]
        raise ValueError(f"Expected query, key, and value to be nested tensors, but got query.is_nested: {flags[0]}, "
                         f"key.is_nested: {flags[1]}, and value.is_nested: {flags[2]} instead.")
    if _ragged_batch(query, key, value):    # (B, j, H, D): torch's math attends over dim 2 in each row
        out = F.scaled_dot_product_attention(query._nt_values, key._nt_values, value._nt_values, dropout_p=dropout_p,
                                             is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)
        return query._like(out, transposed=False)
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.dim() != 4 or t._nt_ragged != 2 or t._nt_lengths is not None:
            raise RuntimeError(f"{fn}: No viable backend for scaled_dot_product_attention was found: a nested "
                               f"{name} must be (B, H, j, D) with the ragged dim after the heads "
                               f"(nt.view(B, -1, H, D).transpose(1, 2)) and no holes, got {shape_text(t)}")
    if not query.shape[0] == key.shape[0] == value.shape[0] or key._nt_jint is not value._nt_jint:
        raise RuntimeError(f"{fn}: query, key and value must have the same batch size and key and value the same "
                           f"ragged structure, got {shape_text(query)}, {shape_text(key)}, "
                           f"{shape_text(value)}")
    query._require_packed()     # the output is packed, on the query's offsets
    q_lengths, k_lengths = query._host()[1], key._host()[1]
    if not dropout_p and not enable_gqa and min(k_lengths, default=0) > 0 and key._is_packed():
        out = JaggedAttention.apply(query._nt_values, key._nt_values, value._nt_values, q_lengths=tuple(q_lengths),
                                    k_lengths=tuple(k_lengths), causal=0 if is_causal else None,
                                    scale=float(1.0 / math.sqrt(query.shape[-1]) if scale is None else scale))
        return query._like(out, transposed=True)     # torch's layout: transposed back, it is contiguous
    parts = []     # dropout, grouped-query heads, sequences without keys: the dense function per sequence
    for q, k, v in zip(query.unbind(), key.unbind(), value.unbind()):
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=is_causal, scale=scale,
                                             enable_gqa=enable_gqa)
        parts.append(out.transpose(0, 1))
    # stored (total, H, D) as torch's: transposed back to (B, j, H, D) it is contiguous, for the linear after
    return query._like(cat(parts, 0).transpose(0, 1), transposed=True)


def _ragged_batch(query, key, value):
    """Query, key and value 4-D on the same offsets with the ragged dim at 1 (torch's (B, j, H, D)
    before the ``transpose(1, 2)``): each of their rows is a batch entry of a dense attention."""
    return all(t.dim() == 4 and t._nt_ragged == 1 and t._nt_jint is query._nt_jint for t in (query, key, value))


def embedding(input, weight, *args):
    """``F.embedding`` of nested ids (B, j, ...): a nested tensor (B, j, ..., dim) on their offsets."""
    return input._like(F.embedding(input._nt_values, weight, *args), transposed=False)


def silu(input, inplace=False):
    """``F.silu`` of ``values``."""
    return input._like(F.silu(input._nt_values, inplace))


_CONVOLUTION = ("input: jt, weight: t, bias: t?, stride: any, padding: any, dilation: any, transposed: any, "
                "output_padding: any, groups: any")


def _convolution(name):
    """``F.<name>`` (a convolution or transposed one) of ``values``: each row of the ragged dim an
    input of the batch, (B, j, C, *size) -> (B, j, C_out, *size_out), as torch 2.13's."""
    def handler(input, weight, *args):
        _contiguous_input("convolution", input, _CONVOLUTION)
        values = input._nt_values
        if values.ndim != getattr(weight, "ndim", values.ndim):     # torch's: no unbatched form
            raise RuntimeError(f"Expected {weight.ndim}-dimensional input for {weight.ndim}-dimensional weight "
                               f"{list(weight.shape)}, but got {values.ndim}-dimensional input of size "
                               f"{list(values.shape)} instead")
        return input._like(getattr(F, name)(values, weight, *args), transposed=False)

    handler.__name__ = name
    return handler


def where(condition, input, other):
    """``gt.where`` with a nested tensor among its arguments, as torch 2.13's: the jagged layout's
    where any of them is jagged (its condition must be, ValueError otherwise), else the strided one's."""
    if any(isinstance(x, NestedTensor) for x in (condition, input, other)):
        if not isinstance(condition, NestedTensor):
            raise ValueError("NestedTensor where_self(condition: jt_all, self: any, other: any): expected condition "
                             "to be a jagged layout NestedTensor")
        return _jagged_where(condition, input, other)
    return strided.where(condition, input, other)


def _per_tensor(fn):
    """``fn`` on each tensor of a strided nested tensor (its first argument)."""
    def call(input, *args, **kwargs):
        return input._map(lambda part: fn(part, *args, **kwargs))
    return call


def _strided_layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    if weight is None or bias is None:
        raise ValueError("NestedTensor layer_norm requires weight and bias")
    return input._map(lambda part: F.layer_norm(part, normalized_shape, weight, bias, eps))


HANDLERS = {"embedding": embedding, "linear": linear, "layer_norm": layer_norm, "rms_norm": rms_norm,
            "dropout": dropout, "silu": silu, "scaled_dot_product_attention": scaled_dot_product_attention,
            "where": where,
            "cat": _cat, "stack": _stack,
            **{name: _convolution(name) for name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d",
                                                     "conv_transpose2d", "conv_transpose3d")}}
STRIDED = {"linear": _per_tensor(F.linear), "layer_norm": _strided_layer_norm, "dropout": _per_tensor(F.dropout),
           "silu": _per_tensor(F.silu), "where": where}


def gt_function(cls, func, args, kwargs):
    """The nested form of the nn function ``func`` (NotImplementedError naming it where there is none)."""
    handler = (HANDLERS if cls is NestedTensor else STRIDED).get(func.__name__)
    if handler is None and cls is NestedTensor and getattr(func, "nested_elementwise", False):   # on the values
        return args[0]._like(func.__wrapped__(args[0]._nt_values, *args[1:], **kwargs))
    if handler is None:
        raise NotImplementedError(f"aten.{func.__name__}.default: not supported on a {cls.__name__} in gt "
                                  f"(layout {args[0].layout})")
    return handler(*args, **kwargs)


NestedBase.__gt_function__ = classmethod(gt_function)
