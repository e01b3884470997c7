"""Stateless layer functions and losses: ``from gt.nn import functional as F``.

Each takes gt tensors (numpy arrays and lists are accepted where a tensor is read)
and returns a gt tensor recorded on the tape. The losses live in gt/nn/loss_functions.py.
"""

import math

from gt import dtypes
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.inputs import check_range as _check_range
from gt.nn.inputs import class_indices as _class_indices
from gt.nn.class_losses import cross_entropy, nll_loss  # noqa: F401
from gt.nn.linear_cross_entropy import linear_cross_entropy  # noqa: F401
from gt.nn.embedding_options import gradient_scale, lookup_options, renorm_
from gt.nn.loss_functions import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                                  huber_loss, kl_div, l1_loss, mse_loss, smooth_l1_loss)
from gt.nn.conv_functions import (adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d, avg_pool2d,  # noqa: F401
                                  batch_norm, conv1d, conv2d, conv3d, max_pool1d, max_pool2d)
from gt.nn.conv_transpose_functions import conv_transpose1d, conv_transpose2d, conv_transpose3d  # noqa: F401
from gt.nn.pooling_functions import (adaptive_avg_pool3d, adaptive_max_pool1d,  # noqa: F401
                                     adaptive_max_pool1d_with_indices, adaptive_max_pool2d,
                                     adaptive_max_pool2d_with_indices, adaptive_max_pool3d,
                                     adaptive_max_pool3d_with_indices, avg_pool3d, max_pool1d_with_indices,
                                     max_pool2d_with_indices, max_pool3d, max_pool3d_with_indices, max_unpool1d,
                                     max_unpool2d, max_unpool3d)
from gt.nn.fractional_pool import (fractional_max_pool2d, fractional_max_pool2d_with_indices,  # noqa: F401
                                    fractional_max_pool3d, fractional_max_pool3d_with_indices)
from gt.nn.padding import pad  # noqa: F401  (F.pad, torch's padding modes)
from gt.nn.loss_functions_extra import (cosine_embedding_loss, gaussian_nll_loss, hinge_embedding_loss,  # noqa: F401
                                        margin_ranking_loss, multi_margin_loss, multilabel_soft_margin_loss,
                                        pairwise_distance, poisson_nll_loss, soft_margin_loss, triplet_margin_loss)
from gt.nn.dropout_functions import alpha_dropout, dropout1d, dropout2d, dropout3d  # noqa: F401
from gt.nn.norm_functions import group_norm, instance_norm, local_response_norm, rms_norm  # noqa: F401
from gt.nn.fold import fold, pixel_shuffle, pixel_unshuffle, unfold  # noqa: F401
from gt.nn.extra_functions2 import bilinear, ctc_loss, embedding_bag, lp_pool1d, lp_pool2d, lp_pool3d  # noqa: F401
from gt.nn.resample import interpolate, upsample, upsample_bilinear, upsample_nearest  # noqa: F401
from gt.nn.activation_functions import (celu, celu_, elu, elu_, glu, hardshrink, hardsigmoid, hardswish,  # noqa: F401
                                       hardtanh, hardtanh_, leaky_relu, leaky_relu_, logsigmoid, mish, prelu, relu,
                                       relu6, relu_, rrelu, rrelu_, selu, selu_, silu, softmin, softshrink, softsign,
                                       tanhshrink, threshold, threshold_)
from gt.nn.grid_sample import affine_grid, grid_sample  # noqa: F401
from gt.nn.small_functions import (channel_shuffle, feature_alpha_dropout, gumbel_softmax,  # noqa: F401
                                   multilabel_margin_loss, pdist, triplet_margin_with_distance_loss)
from gt.ops import attention, linalg
from gt.ops import shape as shape_ops
from gt.ops._shapes import broadcast_shape
from gt.tensor import arange, rand, where


# ---- activations ------------------------------------------------------------------------
def gelu(x, approximate="none"):
    """x * Phi(x) (exact normal CDF), or its tanh approximation with ``approximate='tanh'``."""
    return _tensor(x, "gelu").gelu(approximate=approximate)


def sigmoid(x):
    return _tensor(x, "sigmoid").sigmoid()


def tanh(x):
    return _tensor(x, "tanh").tanh()


def softplus(x, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold`` (torch's),
    as ``max(z, 0) + log(1 + exp(-|z|))``: no overflow for large inputs."""
    z = _tensor(x, "softplus") * beta
    # where(), not clamp/abs: the slope at z == 0 is then 1 - 1/2 = 1/2, as torch's (clamp's 1 + abs's 0 gave 1)
    return where(z > threshold, z, where(z < 0, 0.0, z) + where(z < 0, z, -z).exp().log1p()) / beta


def softmax(x, axis=None, _stacklevel=3, dtype=None, *, dim=None):
    """exp(x) / sum(exp(x)) along ``axis`` (``dim`` for torch users; default -1), computed stably;
    in ``dtype`` when given (torch's; ``_stacklevel`` is accepted and unused)."""
    return _tensor(x, "softmax").softmax(axis, dtype, dim=dim)


def log_softmax(x, axis=None, _stacklevel=3, dtype=None, *, dim=None):
    """log(softmax(x)) along ``axis`` (default -1), without forming softmax (stable for large
    logits); in ``dtype`` when given."""
    return _tensor(x, "log_softmax").log_softmax(axis, dtype, dim=dim)


def normalize(x, p=2.0, dim=1, eps=1e-12):
    """``x`` divided by its ``p``-norm along ``dim`` (at least ``eps``), as torch's."""
    x = _tensor(x, "normalize")
    return x / x.norm(p, dim=dim, keepdim=True).clamp_min(eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """The cosine of the angle between ``x1`` and ``x2`` along ``dim`` (broadcasting), each norm at
    least ``eps``, as torch's."""
    x1, x2 = _tensor(x1, "cosine_similarity"), _tensor(x2, "cosine_similarity", "x2")
    return (x1 * x2).sum(dim) / (x1.norm(dim=dim).clamp_min(eps) * x2.norm(dim=dim).clamp_min(eps))


# ---- layers -----------------------------------------------------------------------------
def linear(x, weight, bias=None):
    """``x @ weight.T + bias``: x (..., in), weight (out, in), bias (out,) -> (..., out)."""
    x, weight = _tensor(x, "linear"), _tensor(weight, "linear", "weight")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} has {x.shape[-1] if x.ndim else 'no'} features in its "
                         f"last dim, but weight of shape {weight.shape} expects {weight.shape[1]}")
    if bias is not None:
        bias = _tensor(bias, "linear", "bias")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return linalg.Linear.apply(x, weight, bias)


def _normalized_shape(normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or any(not isinstance(s, int) or isinstance(s, bool) or s <= 0 for s in shape):
        raise ValueError(f"normalized_shape must be a positive int or a non-empty tuple of them, "
                         f"got {normalized_shape!r}")
    return shape


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing ``normalized_shape`` axes (biased variance, as torch), then
    scale by ``weight`` and shift by ``bias`` (both of shape ``normalized_shape``)."""
    x, shape = _tensor(x, "layer_norm"), _normalized_shape(normalized_shape)
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"layer_norm: expected input with trailing shape {shape}, got input of shape {x.shape}")
    _check_affine("layer_norm", shape, weight, bias)
    return linalg.LayerNorm.apply(x, weight, bias, n_axes=len(shape), eps=eps)


def _check_affine(fn, shape, weight, bias):
    """ValueError unless ``weight`` and ``bias`` (each a tensor or None) have shape ``shape``."""
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ValueError(f"{fn}: {name} must have shape {shape}, got {t.shape}")


def dropout(x, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), so the expected
    value is unchanged; the identity when not ``training`` or ``p == 0``. Masks come from gt's
    random generator (``gt.manual_seed`` makes them reproducible). ``inplace=True`` writes the
    result into ``x`` (recorded on the tape as torch's; no memory is saved)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
    x = _tensor(x, "dropout")
    if not training or p == 0:
        return x
    if p == 1:
        return x.mul_(0) if inplace else x * 0
    dtype = x.dtype if x.dtype.is_floating_point else dtypes.default_float
    keep = (rand(*x.shape, dtype=dtype) >= p).to(dtype) * (1.0 / (1.0 - p))
    return x.mul_(keep) if inplace else x * keep


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """``softmax(query @ key^T * scale + mask) @ value`` as torch's function of that name:
    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); leading axes
    broadcast. One fused op, forward and backward (L and S may differ).

    ``attn_mask`` broadcasts to (..., L, S): a bool mask is True where a query MAY attend
    (torch's convention here; ``nn.MultiHeadAttention``'s bool masks are the other way round,
    as torch's), a float mask is added to the scores (and gets a gradient). ``is_causal=True``
    lets query i see keys j <= i (torch's ``tril`` of the (L, S) matrix, top-left aligned).
    ``scale`` defaults to 1/sqrt(E). A query whose keys are all masked gets zeros, as in torch.
    ``dropout_p`` drops attention weights on every call (as torch's function; pass 0 to evaluate).

        >>> q, kv = gt.randn(2, 4, 10, 16), gt.randn(2, 4, 7, 16)     # (B, heads, L/S, E)
        >>> F.scaled_dot_product_attention(q, kv, kv).shape
        (2, 4, 10, 16)
    """
    fn = "scaled_dot_product_attention"
    q, k, v = (_tensor(t, fn, name) for t, name in ((query, "query"), (key, "key"), (value, "value")))
    if min(q.ndim, k.ndim, v.ndim) < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{fn}: expected query (..., L, E), key (..., S, E), value (..., S, Ev), got "
                         f"{q.shape}, {k.shape}, {v.shape}")
    lead = broadcast_shape(fn, broadcast_shape(fn, q.shape[:-2], k.shape[:-2]), v.shape[:-2])
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, (int, float)) or not 0 <= dropout_p <= 1:
        raise ValueError(f"{fn}: dropout_p has to be between 0 and 1, got {dropout_p!r}")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    L, S = q.shape[-2], k.shape[-2]
    mask = None
    if is_causal and attn_mask is not None:
        raise ValueError(f"{fn}: pass attn_mask or is_causal=True, not both (as torch)")
    if attn_mask is not None:
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
        elif mask.dtype.is_floating_point:
            mask = mask if mask.dtype == q.dtype else mask.to(q.dtype)
        else:
            raise TypeError(f"{fn}: attn_mask must be bool (True = may attend) or float (added), got {mask.dtype!r}")
        while mask.ndim < 2:
            mask = mask.unsqueeze(0)
    if dropout_p == 0:
        return attention.ScaledDotProductAttention.apply(q, k, v, mask, scale=float(scale),
                                                         causal=0 if is_causal else None)
    # dropout needs the weights themselves: the same computation from separate ops
    scores = (q @ k.transpose(-2, -1)) * float(scale)                  # (..., L, S)
    if is_causal:
        scores = scores.masked_fill(arange(L).unsqueeze(1) < arange(S).unsqueeze(0), float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == dtypes.bool_ else scores + mask
    return dropout(scores.softmax(-1), dropout_p) @ v


def embedding(indices, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``indices`` (any shape) ->
    (*indices.shape, dim). The gradient adds up into the rows that were picked, as torch's:
    none into ``padding_idx``'s row; divided by each id's count in ``indices`` with
    ``scale_grad_by_freq``. ``max_norm``: the picked rows whose ``norm_type``-norm exceeds it are
    first scaled down to it in ``weight`` itself (in place, outside the graph), as torch's.
    ``sparse=True`` raises NotImplementedError (gt has no sparse gradients)."""
    idx = _class_indices(indices, "embedding", "indices")
    n = weight.shape[0]
    idx = _check_range(idx, n, "embedding", "index", f"an embedding table of {n} rows", IndexError)
    padding_idx = lookup_options(n, padding_idx, max_norm, norm_type, sparse, "embedding")
    if max_norm is not None:
        renorm_(weight, idx, max_norm, norm_type)
    rows = shape_ops.Embedding.apply(weight, idx)
    if padding_idx is None and not scale_grad_by_freq:
        return rows
    return shape_ops.ScaleGradient.apply(rows, gradient_scale(idx, padding_idx, scale_grad_by_freq, rows.dtype))


def one_hot(indices, num_classes=-1, dtype=dtypes.float32):
    """(..., ) integer classes -> (..., num_classes) float32 one-hot rows (no gradient).
    ``num_classes=-1`` means max(indices) + 1."""
    idx = _class_indices(indices, "one_hot", "indices")
    if num_classes == -1:
        num_classes = int(idx.max().item()) + 1 if idx.numel() else 0
    _check_range(idx, num_classes, "one_hot", "class", f"num_classes={num_classes}", ValueError)
    return (idx.unsqueeze(-1) == arange(num_classes)).to(dtype)
