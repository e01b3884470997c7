"""The three functions under torch's attention layers, in a module of their own so that the layers
built from them (gt/nn/multihead_attention_functional.py) and ``gt.nn.functional``, which
re-exports all four, import one way: ``linear``, ``dropout`` and ``scaled_dot_product_attention``."""

import math

from gt import dtypes
from gt.errors import ShapeError
from gt.nn.dropout_functions import refuse_complex_mask
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.mixed_dtypes import check_attention_dtypes, refuse_attention_mask
from gt.ops import attention, linalg
from gt.ops._shapes import broadcast_shape
from gt.tensor import Tensor, arange, rand
from gt.tensor.product_dtypes import autocast_casts, check_added_product, refuse_matmul
from gt.tensor.wide_uints import refuse


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``: x (..., in), weight (out, in) or (in,), bias (out,) or () -> (..., out)
    or (...,) for a 1-d weight (torch's). An integer or bool ``x`` is read in the weight's dtype,
    as gt's ``x @ w.T`` (torch raises: gt's rule for products of ints and floats)."""
    if type(x) is not Tensor and getattr(x, "is_nested", False):    # gt.nested's form (its class's)
        return type(x).__gt_function__(linear, (x, weight, bias), {})
    x, weight = _tensor(x, "linear"), _tensor(weight, "linear", "weight")
    if weight.ndim == 1:   # torch: a vector weight gives one output per row, without the axis
        b = None if bias is None else _tensor(bias, "linear", "bias").reshape(1)
        return linear(x, weight.reshape(1, -1), b).squeeze(-1)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    bias = None if bias is None else _tensor(bias, "linear", "bias")
    x = floating_input(x, weight, bias)
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input of shape {x.shape} has {x.shape[-1] if x.ndim else 'no'} features in its "
                         f"last dim, but weight of shape {weight.shape} expects {weight.shape[1]}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return linalg.Linear.apply(x, weight, bias)


def floating_input(x, weight, bias=None):
    """``x`` as it is, or torch's RuntimeError where ``x``, ``weight`` and ``bias`` (a tensor or
    None) are not of one dtype (torch's products keep one dtype: cast with ``.to(weight.dtype)``),
    but under an autocast block, which casts float32 to its dtype first."""
    w_dtype = weight.dtype        # each dtype read once: this check runs on every Linear call
    dtype = x.dtype
    if dtype is w_dtype and (bias is None or bias.dtype is w_dtype):    # the usual call: nothing more to check
        if not dtype.differentiable:
            if dtype is dtypes.bool_:
                raise NotImplementedError("\"addmm_impl_cpu_\" not implemented for 'Bool'")
            refuse("addmm_impl_cpu_", x)     # uint16/32/64: torch has no product kernel for them
        return x
    if not autocast_casts(x, weight, bias):
        _refuse_linear(x, weight, bias)
    return x


def _refuse_linear(x, weight, bias):
    # torch's addmm (with a bias) or matmul (without): its messages
    if bias is None:
        refuse_matmul(x, weight)        # (the dims of x @ weight.T: its kernel names the message)
    check_added_product("addmm", bias, x, weight)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), so the expected
    value is unchanged; the identity when not ``training`` or ``p == 0``. Masks come from gt's
    random generator (``gt.manual_seed`` makes them reproducible). ``inplace=True`` writes the
    result into ``input`` (recorded on the tape as torch's; no memory is saved)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
    if type(input) is not Tensor and getattr(input, "is_nested", False):
        return type(input).__gt_function__(dropout, (input, p, training, inplace), {})
    x = _tensor(input, "dropout")
    if not training or p == 0:
        return x
    if p == 1:
        return x.mul_(0) if inplace else x * 0
    refuse_complex_mask(x)
    dtype = x.dtype if x.dtype.is_floating_point else dtypes.default_float
    keep = (rand(*x.shape, dtype=dtype) >= p).to(dtype) * (1.0 / (1.0 - p))
    return x.mul_(keep) if inplace else x * keep


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """``softmax(query @ key^T * scale + mask) @ value`` as torch's function of that name:
    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); leading axes
    broadcast. One fused op, forward and backward (L and S may differ).

    ``attn_mask`` broadcasts to (..., L, S): a bool mask is True where a query MAY attend
    (torch's convention here; ``nn.MultiHeadAttention``'s bool masks are the other way round,
    as torch's), a float mask is added to the scores (and gets a gradient). ``is_causal=True``
    lets query i see keys j <= i (torch's ``tril`` of the (L, S) matrix, top-left aligned); with
    a mask too, both apply (torch 2.13's CPU rule). ``scale`` defaults to 1/sqrt(E). A query whose
    keys are all masked gets zeros, as in torch. ``dropout_p`` drops attention weights on every
    call (as torch's function; pass 0 to evaluate). ``enable_gqa=True``: key and value may have
    fewer heads (dim -3) than the query, a divisor of its count; each is repeated to it
    (grouped-query attention, torch's ``repeat_interleave``).

        >>> q, kv = gt.randn(2, 4, 10, 16), gt.randn(2, 4, 7, 16)     # (B, heads, L/S, E)
        >>> F.scaled_dot_product_attention(q, kv, kv).shape
        (2, 4, 10, 16)
    """
    fn = "scaled_dot_product_attention"
    if type(query) is not Tensor and getattr(query, "is_nested", False):     # gt.nested's, per sequence
        return type(query).__gt_function__(scaled_dot_product_attention, (query, key, value),
                                           dict(attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                                                scale=scale, enable_gqa=enable_gqa))
    q, k, v = (_tensor(t, fn, name) for t, name in ((query, "query"), (key, "key"), (value, "value")))
    dtype = q.dtype
    if k.dtype is not dtype or v.dtype is not dtype:
        check_attention_dtypes(q, k, v)
    if min(q.ndim, k.ndim, v.ndim) < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{fn}: expected query (..., L, E), key (..., S, E), value (..., S, Ev), got "
                         f"{q.shape}, {k.shape}, {v.shape}")
    if enable_gqa:
        if min(q.ndim, k.ndim, v.ndim) < 3:     # torch's error too: there is no heads axis (dim -3)
            raise IndexError(f"{fn}: enable_gqa=True needs a heads axis (dim -3) in query, key and value, got "
                             f"{q.shape}, {k.shape}, {v.shape}")
        k, v = _grouped(q, k, fn), _grouped(q, v, fn)
    lead = broadcast_shape(fn, broadcast_shape(fn, q.shape[:-2], k.shape[:-2]), v.shape[:-2])
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, (int, float)) or not 0 <= dropout_p <= 1:
        raise ValueError(f"{fn}: dropout_p has to be between 0 and 1, got {dropout_p!r}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    L, S = q.shape[-2], k.shape[-2]
    mask = None if attn_mask is None else _attention_mask(attn_mask, dtype, lead, L, S, fn)
    if dtype.is_complex:
        return _complex_attention(q, k, v, lead)
    # no keys (S == 0): the composed ops' empty softmax gives torch's zeros (the op's row maximum has none)
    if dropout_p == 0 and S:    # a mask with is_causal: the op applies both (torch 2.13 on the CPU does)
        return attention.ScaledDotProductAttention.apply(q, k, v, mask, scale=float(scale),
                                                         causal=0 if is_causal else None)
    # dropout needs the weights themselves: the same computation from separate ops (p = 0 here when S == 0)
    scores = (q @ k.transpose(-2, -1)) * float(scale)                  # (..., L, S)
    if is_causal:
        scores = scores.masked_fill(arange(L).unsqueeze(1) < arange(S).unsqueeze(0), float("-inf"))
    if mask is None:
        return dropout(scores.softmax(-1), dropout_p) @ v
    scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == dtypes.bool_ else scores + mask
    # a query whose keys are all masked: zero weights and gradients (torch's), not softmax's NaN
    dead = (scores == float("-inf")).all(-1, keepdim=True)
    weights = scores.masked_fill(dead, 0.0).softmax(-1).masked_fill(dead, 0.0)
    return dropout(weights, dropout_p) @ v


def _complex_attention(q, k, v, lead):
    """torch's answer for complex query, key and value: its softmax has no complex kernel
    (NotImplementedError); with no score to normalise, the empty product (zeros where no key is)."""
    if q.shape[-2] * k.shape[-2] * math.prod(lead):
        raise NotImplementedError(f"\"softmax_lastdim_kernel_impl\" not implemented for "
                                  f"'{dtypes.torch_type_name(q.dtype.name)}'")
    return (q @ k.transpose(-2, -1)) @ v


def _grouped(q, kv, fn):
    """Key or value (..., H_kv, S, E) with each head repeated to the query's H heads (torch's
    grouped-query attention); differentiable (the repeats' gradients are summed back)."""
    h, h_kv = q.shape[-3], kv.shape[-3]
    if h_kv == h:
        return kv
    if h_kv == 0 or h % h_kv:
        raise RuntimeError(f"{fn}: Number of heads in key and value must divide the number of heads in query "
                           f"(query {h}, key/value {h_kv})")
    return kv.repeat_interleave(h // h_kv, dim=-3)


def _attention_mask(attn_mask, dtype, lead, L, S, fn):
    """``attn_mask`` checked against the scores (..., L, S) and given the fused op's meaning: a
    bool mask True where blocked (the user's True = may attend, inverted), a float one in ``dtype``;
    at least 2-d."""
    mask = _tensor(attn_mask, fn, "attn_mask")
    try:
        ok = broadcast_shape(fn, mask.shape, lead + (L, S)) == lead + (L, S)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fn}: attn_mask of shape {mask.shape} does not broadcast to the scores "
                         f"(..., L, S) = {lead + (L, S)}")
    if mask.dtype == dtypes.bool_:
        mask = ~mask                                   # the op takes True = blocked
    elif mask.dtype is not dtype:       # torch's rule: bool, float32 or the query's dtype
        if mask.dtype is not dtypes.float32:
            refuse_attention_mask(mask.dtype, dtype)
        mask = mask.to(dtype)
    while mask.ndim < 2:
        mask = mask.unsqueeze(0)
    return mask
