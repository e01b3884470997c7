"""torch's top-level forms of ``nn.functional`` functions: ``gt.conv2d``, ``gt.layer_norm``,
``gt.batch_norm``, ``gt.embedding``, ``gt.kl_div``, ``gt.max_pool1d_with_indices``, ...

These keep the signatures of torch's top level, which differ from ``nn.functional``'s in places:
``reduction`` is an int (0 none, 1 mean, 2 sum; the names are accepted too) whose default is 0:
torch's schema says mean, but its Python argument parser reads that default as 0, so
``torch.kl_div(x, y)`` gives the elementwise loss, and so does ``gt.kl_div(x, y)``; ``dropout`` takes
``train`` with no default, ``batch_norm``/``instance_norm`` take ``weight, bias`` before the
running statistics, ``embedding`` takes ``weight`` first, and the pools' ``stride=()`` means the
kernel size. Each calls the ``nn.functional`` function, so values, gradients and sharding are its.
"""

from gt.nn import functional as F
from gt.nn.functional import (adaptive_avg_pool1d, bilinear, conv1d, conv2d, conv3d, conv_transpose1d,  # noqa: F401
                              conv_transpose2d, conv_transpose3d, cosine_similarity, pixel_shuffle, pixel_unshuffle)
from gt.tensor import where
from gt.tensor.core import Tensor
from gt.tensor.number_first import tensors_only

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "dropout",
           "alpha_dropout", "feature_alpha_dropout", "pdist", "channel_shuffle", "layer_norm", "native_layer_norm",
           "group_norm", "instance_norm", "batch_norm", "rms_norm", "embedding", "pixel_shuffle", "pixel_unshuffle",
           "selu", "celu", "prelu", "rrelu",
           "threshold", "hardshrink", "selu_", "celu_", "rrelu_", "threshold_", "cosine_similarity",
           "pairwise_distance", "kl_div", "binary_cross_entropy_with_logits", "avg_pool1d", "max_pool1d",
           "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "adaptive_avg_pool1d", "adaptive_max_pool1d",
           "bilinear", "ctc_loss", "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss",
           "triplet_margin_loss", "poisson_nll_loss", "constant_pad_nd"]

_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _reduction(value, fn):
    """torch's top-level int reduction (its ``Reduction`` enum) as ``nn.functional``'s name."""
    if isinstance(value, str) and value in _REDUCTIONS.values():
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value in _REDUCTIONS:
        return _REDUCTIONS[value]
    raise ValueError(f"{fn}: reduction must be 0 (none), 1 (mean) or 2 (sum), got {value!r}")


def _stride(stride):
    """torch's top-level pools take ``stride=[]`` for "the kernel size"; nn.functional takes None."""
    return None if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else stride


# ---- dropout and activations ----------------------------------------------------------------------
def dropout(input, p, train):
    """``nn.functional.dropout(input, p, training=train)``: ``p`` and ``train`` have no default here."""
    return F.dropout(input, p, training=train)


def alpha_dropout(input, p, train):
    """``nn.functional.alpha_dropout(input, p, training=train)`` (keeps SELU's mean and variance)."""
    return F.alpha_dropout(input, p, training=train)


def feature_alpha_dropout(input, p, train):
    """``nn.functional.feature_alpha_dropout(input, p, training=train)``: whole channels dropped."""
    return F.feature_alpha_dropout(input, p, training=train)


def pdist(input, p=2):
    """The ``p``-norm distances between the rows of ``input`` (N, M): the upper triangle of
    ``cdist(input, input)`` as an (N * (N - 1) / 2,) vector."""
    return F.pdist(input, p)


def channel_shuffle(input, groups):
    """Regroup the channels (dim 1) of ``input`` (N, C, ...) as (groups, C / groups) transposed."""
    return F.channel_shuffle(input, groups)


def selu(input):
    """SELU: ``scale * (max(0, x) + min(0, alpha * (exp(x) - 1)))``."""
    tensors_only("selu", ("input", input))
    return F.selu(input)


def celu(input, alpha=1.0):
    """CELU: ``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    tensors_only("celu", ("input", input))
    return F.celu(input, alpha)


def prelu(input, weight):
    """``max(0, x) + weight * min(0, x)``; ``weight`` has one element or one per channel (dim 1)."""
    return F.prelu(input, weight)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    """Leaky ReLU with a random slope in ``[lower, upper]`` when ``training``, else their mean.
    Slopes come from gt's generator (``gt.manual_seed``); ``generator`` must be None."""
    if generator is not None:
        raise TypeError("rrelu: gt has no per-call generators; pass generator=None and seed with gt.manual_seed")
    return F.rrelu(input, lower, upper, training)


def threshold(input, threshold, value):
    """``input`` where it is greater than ``threshold``, ``value`` elsewhere."""
    return F.threshold(input, threshold, value)


def hardshrink(input, lambd=0.5):
    """``input`` where ``|input| > lambd``, 0 elsewhere."""
    tensors_only("hardshrink", ("input", input))
    return F.hardshrink(input, lambd)


def celu_(input, alpha=1.0):
    """``celu`` in place: ``input`` changed and returned."""
    tensors_only("celu_", ("input", input))
    return F.celu_(input, alpha)


def selu_(input):
    """``selu`` in place: ``input`` changed and returned."""
    tensors_only("selu_", ("input", input))
    return F.selu_(input)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    """``rrelu`` in place: ``input`` changed and returned."""
    if generator is not None:
        raise TypeError("rrelu_: gt has no per-call generators; pass generator=None and seed with gt.manual_seed")
    return F.rrelu_(input, lower, upper, training)


def threshold_(input, threshold, value):
    """``threshold`` in place: ``input`` changed and returned."""
    return F.threshold_(input, threshold, value)


# ---- normalisation and lookup -----------------------------------------------------------------------
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    """``nn.functional.layer_norm``; ``cudnn_enable`` is torch's and changes nothing."""
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def native_layer_norm(input, normalized_shape, weight, bias, eps):
    """``(layer_norm(input), mean, rstd)``: the mean and ``1 / sqrt(var + eps)`` (biased variance)
    over the trailing ``normalized_shape`` dims, kept as size-1 dims (input's shape elsewhere).
    Gradients flow through the first output only: torch's backward of this op ignores the
    gradients of ``mean`` and ``rstd``, so they are returned detached."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    out = F.layer_norm(input, normalized_shape, weight, bias, eps)
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    x = input.detach()
    mean = x.mean(dim=dims, keepdim=True)
    rstd = (x._plain_var(dims, keepdim=True) + eps).rsqrt()       # float32 statistics, as torch's kernel
    return out, mean, rstd


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    """``nn.functional.group_norm``; ``cudnn_enabled`` changes nothing."""
    return F.group_norm(input, num_groups, weight, bias, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, cudnn_enabled):
    """``nn.functional.instance_norm`` with torch's top-level order (every argument required)."""
    return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled):
    """``nn.functional.batch_norm`` with torch's top-level order (every argument required). In
    training the running statistics, when given, are updated in place."""
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``nn.functional.rms_norm``: ``input / sqrt(mean(input**2) + eps) * weight`` over the
    trailing ``normalized_shape`` dims (``eps=None``: the dtype's machine epsilon)."""
    return F.rms_norm(input, normalized_shape, weight, eps)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` picked by ``indices`` (note torch's top-level order: ``weight`` first).
    The row ``padding_idx`` (when not negative, as torch's top level spells "none") is looked up
    as any other but gets no gradient. ``scale_grad_by_freq`` and ``sparse`` are not supported."""
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse gradients are not supported in gt")
    out = F.embedding(indices, weight)
    if padding_idx is not None and padding_idx >= 0 and out.requires_grad:
        # the padding row's lookups are cut from the graph, so that row gets no gradient
        keep = (indices == padding_idx).unsqueeze(-1)
        out = where(keep, out.detach(), out)
    return out


# ---- losses -------------------------------------------------------------------------------------------
def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``nn.functional.pairwise_distance``: ``||x1 - x2 + eps||_p`` over the last dim, of two tensors
    (a Python number is refused, as torch's top level refuses it)."""
    tensors_only("pairwise_distance", ("x1", x1), ("x2", x2))
    return F.pairwise_distance(x1, x2, p, eps, keepdim)


def kl_div(input, target, reduction=0, *, log_target=False):
    """``nn.functional.kl_div`` with an int ``reduction`` (default 0: elementwise); 1 (mean) averages
    over every element (without the warning of ``F.kl_div``'s 'mean': torch's top level gives none)."""
    tensors_only("kl_div", ("input", input), ("target", target))
    reduction = _reduction(reduction, "kl_div")
    loss = F.kl_div(input, target, reduction="none" if reduction == "mean" else reduction, log_target=log_target)
    return loss.mean() if reduction == "mean" else loss


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=0):
    """``nn.functional.binary_cross_entropy_with_logits`` with an int ``reduction``."""
    tensors_only("binary_cross_entropy_with_logits", ("input", input), ("target", target))
    return F.binary_cross_entropy_with_logits(input, target, weight=weight, pos_weight=pos_weight,
                                              reduction=_reduction(reduction, "binary_cross_entropy_with_logits"))


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=0, zero_infinity=False):
    """``nn.functional.ctc_loss`` with an int ``reduction``."""
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=blank,
                      reduction=_reduction(reduction, "ctc_loss"), zero_infinity=zero_infinity)


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=0):
    """``max(0, -target * (input1 - input2) + margin)``, reduced."""
    tensors_only("margin_ranking_loss", ("input1", input1), ("input2", input2), ("target", target))
    return F.margin_ranking_loss(input1, input2, target, margin, _reduction(reduction, "margin_ranking_loss"))


def hinge_embedding_loss(input, target, margin=1.0, reduction=0):
    """``input`` where ``target`` is 1, ``max(0, margin - input)`` where it is -1, reduced."""
    tensors_only("hinge_embedding_loss", ("input", input), ("target", target))
    return F.hinge_embedding_loss(input, target, margin, _reduction(reduction, "hinge_embedding_loss"))


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=0):
    """``1 - cos`` where ``target`` is 1, ``max(0, cos - margin)`` where it is -1, reduced."""
    return F.cosine_embedding_loss(input1, input2, target, margin, _reduction(reduction, "cosine_embedding_loss"))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction=0):
    """``max(d(a, p) - d(a, n) + margin, 0)`` with the ``p``-norm distance, reduced."""
    tensors_only("triplet_margin_loss", ("anchor", anchor), ("positive", positive), ("negative", negative))
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                 _reduction(reduction, "triplet_margin_loss"))


def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    """``nn.functional.poisson_nll_loss`` with torch's top-level signature (every argument required)."""
    return F.poisson_nll_loss(input, target, log_input, full, eps, _reduction(reduction, "poisson_nll_loss"))


# ---- pooling and padding ------------------------------------------------------------------------------
def avg_pool1d(input, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True):
    """``nn.functional.avg_pool1d``; ``stride=()`` is the kernel size."""
    return F.avg_pool1d(input, kernel_size, _stride(stride), padding, ceil_mode, count_include_pad)


def max_pool1d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """``nn.functional.max_pool1d`` (the values only); ``stride=()`` is the kernel size."""
    return F.max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """``nn.functional.max_pool2d`` (the values only); ``stride=()`` is the kernel size."""
    return F.max_pool2d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool3d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """``nn.functional.max_pool3d`` (the values only); ``stride=()`` is the kernel size."""
    return F.max_pool3d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool1d_with_indices(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """``(values, indices)`` of ``max_pool1d``: int64 positions of each maximum along the last dim."""
    return tuple(F.max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode,
                              return_indices=True))


def adaptive_max_pool1d(input, output_size):
    """``(values, indices)``: torch's top-level form always gives both."""
    return tuple(F.adaptive_max_pool1d(input, output_size, return_indices=True))


def constant_pad_nd(input, pad, value=0):
    """``nn.functional.pad(input, pad, value=value)``: ``pad`` lists (before, after) per dim from
    the last dim back; negative sizes crop."""
    if not isinstance(input, Tensor):
        raise TypeError(f"constant_pad_nd(): argument 'input' must be a Tensor, not {type(input).__name__}")
    return F.pad(input, tuple(pad), mode="constant", value=value)
