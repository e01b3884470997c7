"""Stateless layer functions and losses: ``from gt.nn import functional as F``.

Each takes gt tensors (numpy arrays and lists are accepted where a tensor is read)
and returns a gt tensor recorded on the tape. The losses live in gt/nn/loss_functions.py.
"""


from gt import autograd, dtypes
from gt.autograd.sparse_grad import mark
from gt.errors import ShapeError
from gt.tensor.construct_functions import broadcast_tensors
from gt.tensor.promotion import promote_types
from gt.tensor.complex_checks import refuse_complex_parameter
from gt.tensor.out_argument import write as write_out
from gt.nn.mixed_dtypes import check_norm_dtypes
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.inputs import check_range as _check_range
from gt.nn.inputs import implicit_softmax_dim
from gt.nn.inputs import in_float32, nested_elementwise
from gt.nn.inputs import class_indices as _class_indices
from gt.nn.class_losses import cross_entropy, nll_loss  # noqa: F401
from gt.nn.linear_cross_entropy import linear_cross_entropy  # noqa: F401
from gt.nn.core_functions import dropout, linear, scaled_dot_product_attention  # noqa: F401
from gt.nn.multihead_attention_functional import multi_head_attention_forward  # noqa: F401
from gt.nn.embedding_options import gradient_scale, lookup_options, renorm_
from gt.tensor.sparse_make import sparse_embedding
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
from gt.nn.norm_functions import group_norm, half_stays_half, instance_norm, local_response_norm, rms_norm  # noqa: F401
from gt.nn.fold import fold, pixel_shuffle, pixel_unshuffle, unfold  # noqa: F401
from gt.nn.extra_functions2 import bilinear, ctc_loss, embedding_bag, lp_pool1d, lp_pool2d, lp_pool3d  # noqa: F401
from gt.nn.resample import interpolate, upsample, upsample_bilinear, upsample_nearest  # noqa: F401
from gt.nn.activation_functions import (celu, celu_, elu, elu_, glu, hardshrink, hardsigmoid, hardswish,  # noqa: F401
                                       hardtanh, hardtanh_, leaky_relu, leaky_relu_, logsigmoid, mish, prelu, relu,
                                       relu6, relu_, rrelu, rrelu_, selu, selu_, silu, softmin, softshrink, softsign,
                                       tanhshrink, threshold, threshold_)
from gt.nn.grid_sample import affine_grid, grid_sample  # noqa: F401
from gt.nn import grad  # noqa: F401  (torch.nn.functional.grad is torch.nn.grad)
from gt.nn.small_functions import (channel_shuffle, feature_alpha_dropout, gumbel_softmax,  # noqa: F401
                                   multilabel_margin_loss, pdist, triplet_margin_with_distance_loss)
from gt.ops import attention, linalg
from gt.ops import shape as shape_ops
from gt.ops._shapes import broadcast_shape
from gt.tensor import Tensor, arange, where

native_channel_shuffle = channel_shuffle     # torch's kernel-level name of the same shuffle


# ---- activations ------------------------------------------------------------------------
def gelu(x, approximate="none"):
    """x * Phi(x) (exact normal CDF), or its tanh approximation with ``approximate='tanh'``."""
    return _tensor(x, "gelu").gelu(approximate=approximate)


def sigmoid(input):
    return _tensor(input, "sigmoid").sigmoid()


def tanh(input):
    return _tensor(input, "tanh").tanh()


@nested_elementwise
def softplus(x, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold`` (torch's),
    as ``max(z, 0) + log(1 + exp(-|z|))``: no overflow for large inputs."""
    def fn(x):
        z = x * beta
        # where(), not clamp/abs: the slope at z == 0 is then 1 - 1/2 = 1/2, as torch's (clamp's 1 + abs's 0 gave 1)
        # x itself above the threshold, not z / beta: z overflows to inf where x is huge
        return where(z > threshold, x, (where(z < 0, 0.0, z) + where(z < 0, z, -z).exp().log1p()) / beta)
    return mark(in_float32(fn)(_tensor(x, "softplus")), ("refuse", "softplus_backward"))


def softmax(input, axis=None, _stacklevel=3, dtype=None, *, dim=None):
    """exp(x) / sum(exp(x)) along ``axis`` (``dim`` for torch users), computed stably; in ``dtype``
    when given. Neither given: torch's implicit (deprecated) dim, with its warning: 0 for 0-, 1-
    and 3-d inputs, else 1 (pass ``dim=-1`` for the last axis)."""
    x = _tensor(input, "softmax")
    if axis is None and dim is None:
        dim = implicit_softmax_dim("softmax", x.ndim, _stacklevel)
    return x.softmax(axis, dtype, dim=dim)


def log_softmax(input, axis=None, _stacklevel=3, dtype=None, *, dim=None):
    """log(softmax(x)) along ``axis`` (``dim``), without forming softmax (stable for large logits);
    in ``dtype`` when given. Neither given: torch's implicit dim, as ``softmax``."""
    x = _tensor(input, "log_softmax")
    if axis is None and dim is None:
        dim = implicit_softmax_dim("log_softmax", x.ndim, _stacklevel)
    return x.log_softmax(axis, dtype, dim=dim)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``input`` divided by its ``p``-norm along ``dim`` (at least ``eps``), as torch's; written
    into ``out`` too when given (torch's rules: gt/tensor/out_argument.py)."""
    x = _tensor(input, "normalize")
    if not x.dtype.differentiable:
        raise TypeError(f"normalize: expected a floating point or complex input, got {x.dtype!r}")
    if out is not None and autograd.is_grad_enabled() and (x.requires_grad or getattr(out, "requires_grad", False)):
        # torch's normalize divides with out=, which refuses to be recorded; writing the values
        # alone would leave ``out`` without the gradient the caller asked for
        raise RuntimeError("div(): functions with out=... arguments don't support automatic differentiation, but one "
                           "of the arguments requires grad.")
    result = x / x.norm(p, dim=dim, keepdim=True).clamp_min(eps)
    return result if out is None else write_out(result, out, "normalize")


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """The cosine of the angle between ``x1`` and ``x2`` along ``dim`` (broadcasting), each norm at
    least ``eps``, as torch's."""
    x1, x2 = _tensor(x1, "cosine_similarity"), _tensor(x2, "cosine_similarity", "x2")
    if x1.dtype.is_complex or x2.dtype.is_complex:      # torch's check (its norms would take complex input)
        raise RuntimeError(f"cosine_similarity: expected common dtype to be floating point, yet common dtype is "
                           f"{dtypes.torch_type_name(promote_types(x1.dtype, x2.dtype).name)}")
    if x1.shape != x2.shape:        # torch broadcasts first: each norm runs over the broadcast dim
        x1, x2 = broadcast_tensors(x1, x2)
    # torch's order: each normalized, then their products summed (the quotient of the sum by the
    # norms' product was an ulp away in most rows, and 5% off near 0 in float16)
    n1, n2 = (x.norm(dim=dim, keepdim=True).clamp_min(eps) for x in (x1, x2))
    return ((x1 / n1) * (x2 / n2)).sum(dim)


# ---- layers -----------------------------------------------------------------------------
def _normalized_shape(normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or any(not isinstance(s, int) or isinstance(s, bool) or s <= 0 for s in shape):
        raise ValueError(f"normalized_shape must be a positive int or a non-empty tuple of them, "
                         f"got {normalized_shape!r}")
    return shape


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing ``normalized_shape`` axes (biased variance, as torch), then
    scale by ``weight`` and shift by ``bias`` (both of shape ``normalized_shape``)."""
    if type(input) is not Tensor and getattr(input, "is_nested", False):    # gt.nested's form
        return type(input).__gt_function__(layer_norm, (input, normalized_shape, weight, bias, eps), {})
    x, shape = _tensor(input, "layer_norm"), _normalized_shape(normalized_shape)
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ShapeError(f"layer_norm: expected input with trailing shape {shape}, got input of shape {x.shape}")
    dtype = x.dtype
    if not dtype.is_floating_point:
        raise TypeError(f"layer_norm: expected a floating point input, got {dtype!r}")
    _check_affine("layer_norm", shape, weight, bias, dtype)
    if dtype in dtypes.HALVES:       # autocast or not: torch 2.13's autocast leaves layer_norm alone
        return layer_norm_in_float32(x, weight, bias, len(shape), eps)
    return linalg.LayerNorm.apply(x, weight, bias, n_axes=len(shape), eps=eps)


def layer_norm_in_float32(x, weight, bias, n_axes, eps):
    """A float16/bfloat16 layer norm as torch's CPU kernel: computed in float32, rounded once to
    the input's dtype (gt's composition in the half dtype rounded every step)."""
    return in_float32(lambda x, w, b: linalg.LayerNorm.apply(x, w, b, n_axes=n_axes, eps=eps))(x, weight, bias)


def _check_affine(fn, shape, weight, bias, dtype):
    """ValueError unless ``weight`` and ``bias`` (each a tensor or None) have shape ``shape``;
    torch's RuntimeError where one is complex (the input, of ``dtype``, is real) or of a dtype
    torch's kernel refuses beside the input's. Runs on every LayerNorm call: the common case is
    two tests, without a loop."""
    if weight is not None and (weight.shape != shape or weight.dtype is not dtype):
        _refuse_affine(fn, shape, weight, bias, dtype)
    elif bias is not None and (bias.shape != shape or bias.dtype is not dtype):
        _refuse_affine(fn, shape, weight, bias, dtype)


def _refuse_affine(fn, shape, weight, bias, dtype):
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ValueError(f"{fn}: {name} must have shape {shape}, got {t.shape}")
        if t is not None and t.dtype.is_complex:
            refuse_complex_parameter(dtype, t, name)
    check_norm_dtypes(dtype, weight, bias)     # a half input with float32 weights passes (torch's mixed kernel)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``indices`` (any shape) ->
    (*indices.shape, dim). The gradient adds up into the rows that were picked, as torch's:
    none into ``padding_idx``'s row; divided by each id's count in ``indices`` with
    ``scale_grad_by_freq``. ``max_norm``: the picked rows whose ``norm_type``-norm exceeds it are
    first scaled down to it in ``weight`` itself (in place, outside the graph), as torch's.
    ``sparse=True``: ``weight.grad`` is a sparse COO tensor (the ids as indices, uncoalesced, the
    padding row's entries left out), torch's; ``scale_grad_by_freq`` is then refused by the backward."""
    if type(input) is not Tensor and getattr(input, "is_nested", False):    # gt.nested's: on the ids' values
        return type(input).__gt_function__(embedding, (input, weight, padding_idx, max_norm, norm_type,
                                                       scale_grad_by_freq, sparse), {})
    idx = _class_indices(input, "embedding", "indices", small=())
    if weight.ndim != 2:
        raise ValueError(f"embedding: 'weight' must be 2-D (num_embeddings, embedding_dim), got shape {weight.shape}")
    n = weight.shape[0]
    idx = _check_range(idx, n, "embedding", "index", f"an embedding table of {n} rows", IndexError)
    padding_idx = lookup_options(n, padding_idx, max_norm, norm_type, "embedding")
    if max_norm is not None:
        renorm_(weight, idx, max_norm, norm_type)
    if sparse and weight.requires_grad and autograd.is_grad_enabled():
        return sparse_embedding(weight, idx, padding_idx, scale_grad_by_freq)   # the padding left out there
    rows = shape_ops.Embedding.apply(weight, idx)
    if padding_idx is None and not scale_grad_by_freq:
        return rows
    return shape_ops.ScaleGradient.apply(rows, gradient_scale(idx, padding_idx, scale_grad_by_freq, rows.dtype))


def one_hot(indices, num_classes=-1, dtype=dtypes.float32):
    """(..., ) integer classes -> (..., num_classes) float32 one-hot rows (no gradient).
    ``num_classes=-1`` means max(indices) + 1."""
    idx = _class_indices(indices, "one_hot", "indices", small=())
    if idx.numel() == 0 and num_classes <= 0:
        raise ValueError("one_hot: Can not infer total number of classes from empty tensor.")
    if num_classes == -1:
        num_classes = int(idx.max().item()) + 1 if idx.numel() else 0
    _check_range(idx, num_classes, "one_hot", "class", f"num_classes={num_classes}", ValueError)
    return (idx.unsqueeze(-1) == arange(num_classes)).to(dtype)
