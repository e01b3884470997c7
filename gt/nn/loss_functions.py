"""The loss functions of ``gt.nn.functional`` (``F.cross_entropy``, ``F.mse_loss``, ...): each
takes gt tensors (numpy arrays and lists where a tensor is read) and ``reduction`` ``"mean"``,
``"sum"`` or ``"none"``, as torch's."""

import functools
import inspect
import warnings

from gt import amp, dtypes
from gt.errors import ShapeError
from gt.autograd import inference_saved, is_grad_enabled
from gt.nn import loss_dtypes
from gt.nn.inputs import as_tensor as _tensor
from gt.ops import activations
from gt.tensor import Tensor, checks, where
from gt.tensor.complex_checks import refuse_complex
from gt.tensor.promotion import promote_types

_REDUCTIONS = ("mean", "sum", "none")


def _legacy_reduction(size_average, reduce, reduction):
    """torch's reading of the deprecated pair: ``reduce=False`` -> 'none', else
    ``size_average=False`` -> 'sum', else 'mean'; with torch's warning when either is given."""
    if size_average is None and reduce is None:
        return reduction
    out = "none" if reduce is False else "sum" if size_average is False else "mean"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{out}' instead.",
                  UserWarning, stacklevel=3)
    return out


def accepts_legacy_reduction(fn):
    """``fn`` taking torch's deprecated ``size_average`` and ``reduce`` keywords as well: read as
    torch reads them (``_legacy_reduction``, with its warning) into ``reduction``. Keyword-only
    here, so that gt's positional ``reduction`` keeps its place."""
    @functools.wraps(fn)
    def call(*args, size_average=None, reduce=None, **kwargs):
        if size_average is not None or reduce is not None:
            kwargs["reduction"] = _legacy_reduction(size_average, reduce, kwargs.get("reduction", "mean"))
        return fn(*args, **kwargs)
    signature = inspect.signature(fn)
    legacy = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in ("size_average", "reduce")]
    call.__signature__ = signature.replace(parameters=list(signature.parameters.values()) + legacy)
    return call


def _weighted(loss, weight, input, reduction, fn, mean_over_weights=True):
    """torch 2.13's elementwise ``weight`` of ``mse_loss``, ``l1_loss`` and ``huber_loss``: of the
    input's shape; ``"mean"`` is the weighted sum over the weights' sum (over the element count
    for ``huber_loss``, as torch's)."""
    weight = _tensor(weight, fn, "weight")
    if weight.shape != input.shape:
        raise ValueError(f"{fn}: Weights and input must have the same size: weight {weight.shape}, input {input.shape}")
    loss = loss * (weight if weight.dtype == loss.dtype or weight.dtype.is_floating_point else weight.to(loss.dtype))
    if reduction == "mean" and mean_over_weights:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction, fn)


def _reduce(loss, reduction, fn):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def mse_loss(input, target, reduction="mean", weight=None):
    """Mean squared error ``(input - target) ** 2``. A target of another shape broadcasts
    against the input with torch's warning (it is almost always a bug)."""
    input, target = _tensor(input, "mse_loss"), _tensor(target, "mse_loss", "target")
    _warn_if_broadcast(input, target, "mse_loss")
    if inference_saved.made[0]:     # (torch's kernel saves both)
        inference_saved.refuse_operands(input, target)
    input, target = _elementwise_operands("mse_cpu", input, target)
    diff = input - target
    refuse_complex(diff, "mse_cpu")
    if weight is not None:
        return _weighted(diff * diff, weight, input, reduction, "mse_loss")
    return _reduce(diff * diff, reduction, "mse_loss")


def _elementwise_operands(kernel, input, target):
    """``input`` and ``target`` as torch's mse/smooth_l1 kernels take them: an integer result
    refused, a bool operand beside a float one cast to it (gt's subtraction would refuse it)."""
    if input.dtype is target.dtype and input.dtype.is_floating_point:
        return input, target
    dtype = loss_dtypes.elementwise_dtype(kernel, input, target)
    return (input if input.dtype is not dtypes.bool_ else input.to(dtype),
            target if target.dtype is not dtypes.bool_ else target.to(dtype))


def _warn_if_broadcast(input, target, fn):
    """torch's warning where the elementwise losses (mse, l1, smooth_l1, huber) broadcast a target
    of another shape against the input; shapes that do not broadcast are refused."""
    if input.shape != target.shape:
        if not all(a == b or 1 in (a, b) for a, b in zip(reversed(input.shape), reversed(target.shape))):
            raise ShapeError(f"{fn}: input shape {input.shape} and target shape {target.shape} differ and do not "
                             "broadcast against each other")
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", UserWarning, stacklevel=4)


def _same_shape(input, target, fn, check_dtype=True):
    if input.shape != target.shape:
        raise ValueError(f"{fn}: target shape {target.shape} differs from input shape {input.shape}; "
                         "they must match (as in torch)")
    if check_dtype and not input.dtype.is_floating_point:
        raise TypeError(f"{fn}: input must be floating point, got {input.dtype!r}")


def promoted(input, target):
    """``input`` in the wider float dtype of the two where ``target`` is a floating gt tensor
    (torch promotes a loss's input and float target: float32 logits and float64 targets give a
    float64 loss); differentiable, so the input's gradient comes back in its own dtype. A numpy
    array or list target does not widen the loss (gt's rule, as ``_float_like``)."""
    if isinstance(target, Tensor) and target.dtype != input.dtype and target.dtype.is_floating_point:
        wide = promote_types(input.dtype, target.dtype)
        return input if wide == input.dtype else input.to(wide)
    return input


def _float_like(t, like):
    """Targets (0/1 ints, bools) and weights (a float64 numpy array) in the input's float dtype,
    so they never widen a float32 loss."""
    return t if t.dtype == like.dtype else t.to(like.dtype)


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """``-w * [y * log(x) + (1 - y) * log(1 - x)]`` for probabilities ``input`` x in [0, 1] and
    targets y of the same shape; each log is clamped at -100 as in torch, so x = 0 or 1 gives a
    finite loss. ``weight`` broadcasts against the input. For logits, use
    ``binary_cross_entropy_with_logits`` (stable, and faster).

        >>> F.binary_cross_entropy(gt.tensor([0.5]), gt.tensor([1.0])).item()   # log(2)
        0.6931471824645996
    """
    input = _tensor(input, "binary_cross_entropy")
    given = target
    target = _tensor(target, "binary_cross_entropy", "target")
    _same_shape(input, target, "binary_cross_entropy", check_dtype=False)
    if isinstance(given, Tensor) and (given.dtype is not input.dtype or not input.dtype.is_floating_point):
        loss_dtypes.check_bce(input, given)     # a list or numpy target is made the input's dtype (gt's rule)
    target = _float_like(target, input)
    if input.numel():
        checks.require((input.min() >= 0) & (input.max() <= 1), ValueError, lambda: (
            "binary_cross_entropy: input must be probabilities in [0, 1], got values from "
            f"{input.min().item():g} to {input.max().item():g}; for logits use binary_cross_entropy_with_logits"))
    loss = activations.BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = _times_weight(loss, _float_like(_tensor(weight, "binary_cross_entropy", "weight"), input),
                             "binary_cross_entropy", "weight")
    return _reduce(loss, reduction, "binary_cross_entropy")


def _broadcasts_to(small, shape):
    """Whether an array of shape ``small`` broadcasts to ``shape`` without widening it."""
    return len(small) <= len(shape) and all(a in (1, b) for a, b in zip(reversed(small), reversed(shape)))


def _times_weight(loss, weight, fn, what):
    """``loss * weight`` where ``weight`` broadcasts to the loss's shape; one that would widen the
    loss is refused, as torch's in-place product refuses it."""
    if not _broadcasts_to(weight.shape, loss.shape):
        raise ValueError(f"{fn}: {what} of shape {weight.shape} does not broadcast to the input's shape {loss.shape}")
    return loss * weight


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy of ``sigmoid(input)`` against ``target``, computed from the logits
    without forming the sigmoid (no overflow for large logits). ``weight`` broadcasts against the
    input; ``pos_weight`` (e.g. (C,) for (N, C) logits) weighs the positive term, as in torch.

        >>> F.binary_cross_entropy_with_logits(gt.zeros(2), gt.tensor([0.0, 1.0])).item()   # log(2)
        0.6931471824645996
    """
    input = _tensor(input, "binary_cross_entropy_with_logits")
    if not input.dtype.is_floating_point or (isinstance(target, Tensor) and not target.dtype.is_floating_point) \
            or (isinstance(pos_weight, Tensor) and pos_weight.dtype is dtypes.bool_):
        loss_dtypes.check_bce_logits(input, target if isinstance(target, Tensor) else None,
                                     pos_weight if isinstance(pos_weight, Tensor) else None)
    # torch writes the loss into ``1 - target``: a float target's dtype, also where it is the narrower one
    narrow = target.dtype if isinstance(target, Tensor) and target.dtype.is_floating_point else None
    input = promoted(input, target)
    target = _float_like(_tensor(target, "binary_cross_entropy_with_logits", "target"), input)
    _same_shape(input, target, "binary_cross_entropy_with_logits")
    if pos_weight is not None:
        pos_weight = _float_like(_tensor(pos_weight, "binary_cross_entropy_with_logits", "pos_weight"), input)
        if pos_weight.requires_grad and is_grad_enabled():
            raise ValueError("binary_cross_entropy_with_logits: pos_weight cannot require grad (it is a constant, "
                             "as in torch); pass pos_weight.detach()")
        if not _broadcasts_to(pos_weight.shape, input.shape):
            raise ValueError(f"binary_cross_entropy_with_logits: pos_weight of shape {pos_weight.shape} does not "
                             f"broadcast to the input's shape {input.shape}")
    loss = activations.BinaryCrossEntropyWithLogits.apply(input, target, pos_weight)
    if weight is not None:
        loss = _times_weight(loss, _float_like(_tensor(weight, "binary_cross_entropy_with_logits", "weight"), input),
                             "binary_cross_entropy_with_logits", "weight")
    if narrow is not None and loss.dtype != narrow:
        loss = loss.to(narrow)
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def l1_loss(input, target, reduction="mean", weight=None):
    """Mean absolute error; a target of another shape broadcasts with torch's warning, as in ``mse_loss``."""
    input, target = _tensor(input, "l1_loss"), _tensor(target, "l1_loss", "target")
    _warn_if_broadcast(input, target, "l1_loss")
    if reduction == "mean" and weight is None and not (input.dtype.is_floating_point or target.dtype.is_floating_point
                                                       or input.dtype.is_complex or target.dtype.is_complex):
        if dtypes.bool_ not in (input.dtype, target.dtype):
            loss_dtypes.refuse_integer_mean(promote_types(input.dtype, target.dtype))
    if weight is not None:
        return _weighted((input - target).abs(), weight, input, reduction, "l1_loss")
    return _reduce((input - target).abs(), reduction, "l1_loss")


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """``0.5 * d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta`` (d = input - target;
    ``beta=0``: the L1 loss), as torch's; a target of another shape broadcasts with torch's warning."""
    d = _difference(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta!r}")
    if beta == 0:
        return _reduce(d.abs(), reduction, "smooth_l1_loss")
    a = d.abs()
    c = where(a >= beta, 0.0, d)  # an infinite d squared would put 0 * inf = nan in the gradient (a nan d keeps it)
    return _reduce(where(a < beta, c * c * (0.5 / beta), a - 0.5 * beta), reduction, "smooth_l1_loss")


@amp.runs_in_float32      # torch.autocast's fp32 list
def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 * d**2`` where ``|d| < delta``, else ``delta * (|d| - 0.5 * delta)``, as torch's."""
    input = _tensor(input, "huber_loss")
    d = _difference(input, target, "huber_loss")
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta!r}")
    a = d.abs()
    c = where(a >= delta, 0.0, d)  # an infinite d squared would put 0 * inf = nan in the gradient (a nan d keeps it)
    loss = where(a < delta, c * c * 0.5, (a - 0.5 * delta) * delta)
    if weight is not None:
        return _weighted(loss, weight, input, reduction, "huber_loss", mean_over_weights=False)
    return _reduce(loss, reduction, "huber_loss")


def _difference(input, target, fn):
    input, target = _tensor(input, fn), _tensor(target, fn, "target")
    _warn_if_broadcast(input, target, fn)
    refuse_complex(input, fn.replace("_loss", "_cpu"))
    refuse_complex(target, fn.replace("_loss", "_cpu"))
    if inference_saved.made[0]:     # (torch's kernels save both)
        inference_saved.refuse_operands(input, target)
    if fn == "huber_loss":
        if not (input.dtype.is_floating_point and target.dtype.is_floating_point):
            loss_dtypes.check_huber(input, target)
        target = _float_like(target, input)      # torch's huber_loss is in the input's dtype
    else:
        input, target = _elementwise_operands("smooth_l1_cpu", input, target)
    return input - target


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def kl_div(input, target, reduction="mean", log_target=False):
    """The KL divergence of ``target`` from the distribution whose log-probabilities are ``input``:
    ``target * (log(target) - input)`` elementwise (0 where the target is 0), or with
    ``log_target=True`` ``exp(target) * (target - input)`` (the two broadcast, silently as torch's).
    ``reduction``: ``"mean"`` over every element (torch's default, with its warning), ``"batchmean"``
    (the sum over the batch size: the divergence), ``"sum"`` or ``"none"``."""
    input, target = _tensor(input, "kl_div"), _tensor(target, "kl_div", "target")
    if not (input.dtype.is_floating_point and target.dtype.is_floating_point):
        loss_dtypes.check_kl_div(input, target)
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=3)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        nonzero = target != 0          # torch's xlogy: 0 at a zero target, NaN at a negative one
        loss = where(nonzero, target * (where(nonzero, target, 1.0).log() - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")
