"""Stateless layer functions and losses: ``from gt.nn import functional as F``.

Each takes gt tensors (numpy arrays and lists are accepted where a tensor is read)
and returns a gt tensor recorded on the tape.
"""

import math

from gt import dtypes
from gt.autograd import is_grad_enabled
from gt.backend import B
from gt.ops import activations, attention, linalg
from gt.ops import shape as shape_ops
from gt.ops._shapes import broadcast_shape
from gt.tensor import Tensor, arange, checks, rand, where

_REDUCTIONS = ("mean", "sum", "none")


def _tensor(x, fn, what="input"):
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor._wrap(B.asarray(x))
    except TypeError as exc:
        raise TypeError(f"{fn}: {what} must be a gt.Tensor or array-like, got {type(x).__name__}: {exc}") from None


def _reduce(loss, reduction, fn):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


# ---- activations ------------------------------------------------------------------------
def relu(x):
    """max(x, 0), elementwise."""
    return _tensor(x, "relu").relu()


def gelu(x, approximate="none"):
    """x * Phi(x) (exact normal CDF), or its tanh approximation with ``approximate='tanh'``."""
    return _tensor(x, "gelu").gelu(approximate=approximate)


def sigmoid(x):
    return _tensor(x, "sigmoid").sigmoid()


def tanh(x):
    return _tensor(x, "tanh").tanh()


def silu(x):
    """``x * sigmoid(x)`` (swish), elementwise."""
    x = _tensor(x, "silu")
    return x * x.sigmoid()


def leaky_relu(x, negative_slope=0.01):
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
    x = _tensor(x, "leaky_relu")
    return where(x > 0, x, x * negative_slope)


def elu(x, alpha=1.0):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere (the exponential of the
    negative part only, so large inputs do not overflow where they are not used)."""
    x = _tensor(x, "elu")
    return where(x > 0, x, (x.clamp(max=0.0).exp() - 1) * alpha)


def softplus(x, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold`` (torch's),
    as ``max(z, 0) + log(1 + exp(-|z|))``: no overflow for large inputs."""
    z = _tensor(x, "softplus") * beta
    return where(z > threshold, z, z.clamp(min=0.0) + ((-z.abs()).exp() + 1).log()) / beta


def softmax(x, axis=None, *, dim=None):
    """exp(x) / sum(exp(x)) along ``axis`` (``dim`` for torch users; default -1), computed stably."""
    return _tensor(x, "softmax").softmax(axis, dim=dim)


def log_softmax(x, axis=None, *, dim=None):
    """log(softmax(x)) along ``axis`` (default -1), without forming softmax (stable for large logits)."""
    return _tensor(x, "log_softmax").log_softmax(axis, dim=dim)


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


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), so the expected
    value is unchanged; the identity when not ``training`` or ``p == 0``. Masks come from gt's
    random generator (``gt.manual_seed`` makes them reproducible)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
    x = _tensor(x, "dropout")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    dtype = x.dtype if x.dtype.is_floating_point else dtypes.default_float
    keep = (rand(*x.shape, dtype=dtype) >= p).to(dtype) * (1.0 / (1.0 - p))
    return x * keep


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


def embedding(indices, weight):
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``indices`` (any shape) ->
    (*indices.shape, dim). The gradient adds up into the rows that were picked."""
    idx = _class_indices(indices, "embedding", "indices")
    n = weight.shape[0]
    _check_range(idx, n, "embedding", "index", f"an embedding table of {n} rows", IndexError)
    return shape_ops.Embedding.apply(weight, idx)


def one_hot(indices, num_classes=-1, dtype=dtypes.float32):
    """(..., ) integer classes -> (..., num_classes) float32 one-hot rows (no gradient).
    ``num_classes=-1`` means max(indices) + 1."""
    idx = _class_indices(indices, "one_hot", "indices")
    if num_classes == -1:
        num_classes = int(idx.max().item()) + 1 if idx.numel() else 0
    _check_range(idx, num_classes, "one_hot", "class", f"num_classes={num_classes}", ValueError)
    return (idx.unsqueeze(-1) == arange(num_classes)).to(dtype)


# ---- losses -------------------------------------------------------------------------------
def _class_indices(indices, fn, what):
    idx = _tensor(indices, fn, what)
    if idx.dtype.is_floating_point or idx.dtype == dtypes.bool_:
        raise TypeError(f"{fn}: {what} must be integer class indices (int64/int32), got {idx.dtype!r}"
                        + ("; class probabilities are not supported" if fn in ("cross_entropy", "nll_loss") else ""))
    return idx


def _check_range(idx, n, fn, what, limit, exc):
    if idx.numel() == 0:
        return
    lo, hi = idx.min(), idx.max()

    def message():
        bad = int(lo.item()) if lo.item() < 0 else int(hi.item())
        return f"{fn}: {what} {bad} is out of range for {limit} (valid: 0..{n - 1})"

    checks.require((lo >= 0) & (hi < n), exc, message)   # on a GPU, at the next host read


def nll_loss(log_probs, target, reduction="mean"):
    """Negative log-likelihood: ``-log_probs[i, target[i]]`` for log_probs (N, C), target (N,) ints."""
    log_probs = _tensor(log_probs, "nll_loss")
    target = _class_indices(target, "nll_loss", "target")
    return _pick_class(log_probs, target, reduction, "nll_loss")


def cross_entropy(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Softmax cross-entropy, as torch's: logits (N, C) or (N, C, d1, ...) float, target (N,) or
    (N, d1, ...) integer classes in [0, C).

    Targets equal to ``ignore_index`` add nothing (their loss is 0 with ``reduction='none'``)
    and ``'mean'`` averages over the other targets only (NaN when every target is ignored, as
    in torch). ``label_smoothing`` = e mixes the one-hot target with the uniform distribution:
    the loss is ``(1 - e) * nll + e * mean over classes of -log p``. ``reduction='sum'`` adds,
    ``'none'`` gives (N, d1, ...).

        >>> F.cross_entropy(gt.zeros(2, 4), [0, 3]).item()   # log(4)
        1.3862943649291992
        >>> F.cross_entropy(gt.zeros(3, 4), [0, -100, 3], label_smoothing=0.1).item()
        1.3862943649291992
    """
    fn = "cross_entropy"
    logits = _tensor(logits, fn, "logits")
    target = _class_indices(target, fn, "target")
    if not logits.dtype.is_floating_point:
        raise TypeError(f"{fn}: logits must be floating point, got {logits.dtype!r}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"{fn}: ignore_index must be an int, got {ignore_index!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
            or not 0 <= label_smoothing <= 1:
        raise ValueError(f"{fn}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing!r}")
    if logits.ndim < 2:
        raise ValueError(f"{fn}: logits must have shape (N, C) or (N, C, d1, ...), got {logits.shape}")
    c = logits.shape[1]
    expected = (logits.shape[0],) + logits.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{fn}: target must have shape {expected} for logits of shape {logits.shape} "
                         f"((N, C) or (N, C, d1, ...)), got {target.shape}")
    if logits.ndim > 2:
        logits = logits.permute(0, *range(2, logits.ndim), 1)          # (N, d1, ..., C): classes last
    ignored = _check_targets(target, c, ignore_index, fn)
    if ignored is False and label_smoothing == 0 and logits.ndim == 2:   # every target counts:
        return _reduce(activations.SoftmaxCrossEntropy.apply(logits, target), reduction, fn)   # one op
    log_probs = logits.log_softmax(-1)
    keep = target != ignore_index                                               # (N, d1, ...)
    hit = (target.unsqueeze(-1) == arange(c)) & keep.unsqueeze(-1)               # an ignored row picks nothing
    nll = -where(hit, log_probs, 0.0).sum(-1)                                     # (N, d1, ...)
    loss = nll
    if label_smoothing:
        smooth = where(keep, -log_probs.sum(-1), 0.0)
        loss = nll * (1.0 - label_smoothing) + smooth * (label_smoothing / c)
    if reduction != "mean":
        return _reduce(loss, reduction, fn)
    count = keep.sum().to(loss.dtype)
    # NaN when every target is ignored (torch's 0 / 0), without dividing by zero: no warning,
    # and a zero gradient, as torch's
    return where(count > 0, loss.sum() / count.maximum(1.0), float("nan"))


def _check_targets(target, c, ignore_index, fn):
    """Raise IndexError for a target outside [0, C) other than ``ignore_index``. Returns whether
    some target is ``ignore_index``, or None where knowing would make the host wait for a GPU
    (the check itself is then queued, see gt.tensor.checks)."""
    if target.numel() == 0:
        return False

    def wrong():
        return ((target < 0) | (target >= c)) & (target != ignore_index)

    def message():
        return (f"{fn}: target {int(target[wrong()][0].item())} is out of range for {c} classes "
                f"(valid: 0..{c - 1}); ignore_index is {ignore_index}")

    if checks.deferred():
        checks.require(wrong().to(dtypes.int64).sum() == 0, IndexError, message)   # a tensor: nothing read now
        return None
    lo, hi = int(target.min().item()), int(target.max().item())
    if 0 <= lo and hi < c:      # every target is a class: ignored only if ignore_index is one too
        return bool((target == ignore_index).any()) if 0 <= ignore_index < c else False
    if not lo <= ignore_index <= hi or bool(wrong().any()):
        raise IndexError(message())
    return True


def _pick_class(log_probs, target, reduction, fn):
    if log_probs.ndim != 2:
        raise ValueError(f"{fn}: expected input of shape (N, C), got {log_probs.shape}")
    n, c = log_probs.shape
    if target.shape != (n,):
        raise ValueError(f"{fn}: target must have shape ({n},) for input of shape {log_probs.shape}, "
                         f"got {target.shape}")
    _check_range(target, c, fn, "target", f"{c} classes", IndexError)
    # (N,): each row's entry at its target class. A mask and a row sum rather than an index
    # gather: it stays local when the batch is sharded over the mesh (rows are never gathered),
    # the backward is the same scatter, and where() keeps a -inf elsewhere in the row out of it.
    hit = target.unsqueeze(-1) == arange(c)
    picked = where(hit, log_probs, 0.0).sum(-1)
    return _reduce(-picked, reduction, fn)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error ``(input - target) ** 2``. The shapes must match exactly: a
    mismatch is an error, not a silent broadcast (torch only warns)."""
    input, target = _tensor(input, "mse_loss"), _tensor(target, "mse_loss", "target")
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target.shape} differ; "
                         "reshape one of them (broadcasting here is almost always a bug)")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def _same_shape(input, target, fn):
    if input.shape != target.shape:
        raise ValueError(f"{fn}: target shape {target.shape} differs from input shape {input.shape}; "
                         "they must match (as in torch)")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{fn}: input must be floating point, got {input.dtype!r}")


def _float_like(t, like):
    """Targets (0/1 ints, bools) and weights (a float64 numpy array) in the input's float dtype,
    so they never widen a float32 loss."""
    return t if t.dtype == like.dtype else t.to(like.dtype)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """``-w * [y * log(x) + (1 - y) * log(1 - x)]`` for probabilities ``input`` x in [0, 1] and
    targets y of the same shape; each log is clamped at -100 as in torch, so x = 0 or 1 gives a
    finite loss. ``weight`` broadcasts against the input. For logits, use
    ``binary_cross_entropy_with_logits`` (stable, and faster).

        >>> F.binary_cross_entropy(gt.tensor([0.5]), gt.tensor([1.0])).item()   # log(2)
        0.6931471824645996
    """
    input = _tensor(input, "binary_cross_entropy")
    target = _float_like(_tensor(target, "binary_cross_entropy", "target"), input)
    _same_shape(input, target, "binary_cross_entropy")
    if input.numel():
        checks.require((input.min() >= 0) & (input.max() <= 1), ValueError, lambda: (
            "binary_cross_entropy: input must be probabilities in [0, 1], got values from "
            f"{input.min().item():g} to {input.max().item():g}; for logits use binary_cross_entropy_with_logits"))
    loss = activations.BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * _float_like(_tensor(weight, "binary_cross_entropy", "weight"), input)
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy of ``sigmoid(input)`` against ``target``, computed from the logits
    without forming the sigmoid (no overflow for large logits). ``weight`` broadcasts against the
    input; ``pos_weight`` (e.g. (C,) for (N, C) logits) weighs the positive term, as in torch.

        >>> F.binary_cross_entropy_with_logits(gt.zeros(2), gt.tensor([0.0, 1.0])).item()   # log(2)
        0.6931471824645996
    """
    input = _tensor(input, "binary_cross_entropy_with_logits")
    target = _float_like(_tensor(target, "binary_cross_entropy_with_logits", "target"), input)
    _same_shape(input, target, "binary_cross_entropy_with_logits")
    if pos_weight is not None:
        pos_weight = _float_like(_tensor(pos_weight, "binary_cross_entropy_with_logits", "pos_weight"), input)
        if pos_weight.requires_grad and is_grad_enabled():
            raise ValueError("binary_cross_entropy_with_logits: pos_weight cannot require grad (it is a constant, "
                             "as in torch); pass pos_weight.detach()")
    loss = activations.BinaryCrossEntropyWithLogits.apply(input, target, pos_weight)
    if weight is not None:
        loss = loss * _float_like(_tensor(weight, "binary_cross_entropy_with_logits", "weight"), input)
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error; the shapes must match exactly, as in ``mse_loss``."""
    input, target = _tensor(input, "l1_loss"), _tensor(target, "l1_loss", "target")
    if input.shape != target.shape:
        raise ValueError(f"l1_loss: input shape {input.shape} and target shape {target.shape} differ")
    return _reduce((input - target).abs(), reduction, "l1_loss")
