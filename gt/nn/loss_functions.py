"""The loss functions of ``gt.nn.functional`` (``F.cross_entropy``, ``F.mse_loss``, ...): each
takes gt tensors (numpy arrays and lists where a tensor is read) and ``reduction`` ``"mean"``,
``"sum"`` or ``"none"``, as torch's."""

from gt import dtypes
from gt.autograd import is_grad_enabled
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.inputs import check_range as _check_range
from gt.nn.inputs import class_indices as _class_indices
from gt.ops import activations
from gt.tensor import arange, checks, where

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss, reduction, fn):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


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


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """``0.5 * d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta`` (d = input - target;
    ``beta=0``: the L1 loss), as torch's. The shapes must match exactly."""
    d = _difference(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta!r}")
    if beta == 0:
        return _reduce(d.abs(), reduction, "smooth_l1_loss")
    a = d.abs()
    return _reduce(where(a < beta, d * d * (0.5 / beta), a - 0.5 * beta), reduction, "smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0):
    """``0.5 * d**2`` where ``|d| < delta``, else ``delta * (|d| - 0.5 * delta)``, as torch's."""
    d = _difference(input, target, "huber_loss")
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta!r}")
    a = d.abs()
    return _reduce(where(a < delta, d * d * 0.5, (a - 0.5 * delta) * delta), reduction, "huber_loss")


def _difference(input, target, fn):
    input, target = _tensor(input, fn), _tensor(target, fn, "target")
    if input.shape != target.shape:
        raise ValueError(f"{fn}: input shape {input.shape} and target shape {target.shape} differ")
    return input - target


def kl_div(input, target, reduction="mean", log_target=False):
    """The KL divergence of ``target`` from the distribution whose log-probabilities are ``input``:
    ``target * (log(target) - input)`` elementwise (0 where the target is 0), or with
    ``log_target=True`` ``exp(target) * (target - input)``. ``reduction``: ``"mean"`` over every
    element (torch's default), ``"batchmean"`` (the sum over the batch size: the divergence),
    ``"sum"`` or ``"none"``."""
    input, target = _tensor(input, "kl_div"), _tensor(target, "kl_div", "target")
    if input.shape != target.shape:
        raise ValueError(f"kl_div: input shape {input.shape} and target shape {target.shape} differ")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        positive = target > 0
        loss = where(positive, target * (where(positive, target, 1.0).log() - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")
