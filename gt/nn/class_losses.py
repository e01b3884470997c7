"""The class losses of ``gt.nn.functional``: ``F.cross_entropy`` and ``F.nll_loss``, as torch's.

Both take (N, C) or (N, C, d1, ...) inputs and integer class targets (N,) or (N, d1, ...), a
class ``weight`` (C,), ``ignore_index`` and ``reduction``; ``cross_entropy`` also takes
``label_smoothing`` and class-probability targets of the input's shape. torch's rules:

- the loss of a target ``y`` is ``-weight[y] * log_prob[y]``; a target equal to ``ignore_index``
  adds nothing (0 with ``reduction='none'``);
- ``'mean'`` divides the sum by the summed weights of the kept targets (their count without a
  weight): NaN when that is 0, as torch's 0 / 0 (the gradient is then 0; torch's is NaN when
  every weight is 0, and 0 when every target is ignored);
- ``label_smoothing`` = e mixes each one-hot target with the uniform distribution: the loss is
  ``(1 - e) * nll + e / C * smooth``, ``smooth = -sum_c weight[c] * log_prob[c]``, averaged by
  the same weights as the nll;
- class probabilities ``p`` (a float target of the input's shape): ``-sum_c weight[c] * p[c] *
  log_prob[c]`` (smoothed as above first), and ``'mean'`` divides by N * d1 * ...

The class is picked with a mask and a sum over the classes rather than an index gather: it stays
local when the batch is sharded over the mesh, the backward is the same scatter, and ``where``
keeps a -inf elsewhere in the row out of it. gt's own positional form, a reduction string as the
third argument (``F.cross_entropy(logits, target, "sum")``), is read as ``reduction=``.
"""

from gt import amp, dtypes
from gt.autograd import inference_saved
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.inputs import class_indices as _class_indices
from gt.nn.loss_dtypes import refuse_class_input
from gt.nn.loss_functions import _REDUCTIONS, _legacy_reduction, _reduce, promoted
from gt.ops import activations
from gt.tensor import Tensor, arange, checks, where


@amp.runs_in_float32      # torch.autocast's fp32 list
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of ``logits`` (N, C) or (N, C, d1, ...) against integer classes
    (N,) or (N, d1, ...), or class probabilities of the logits' shape (see the module docstring);
    unbatched, as torch: logits (C,) and a 0-d class (or (C,) probabilities).

        >>> F.cross_entropy(gt.zeros(2, 4), [0, 3]).item()   # log(4)
        1.3862943649291992
        >>> F.cross_entropy(gt.zeros(3, 4), [0, -100, 3], label_smoothing=0.1).item()
        1.3862943649291992
    """
    fn, logits = "cross_entropy", input
    weight, reduction = _options(weight, size_average, reduce, reduction, ignore_index, fn)
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
            or not 0 <= label_smoothing <= 1:
        raise ValueError(f"{fn}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing!r}")
    logits = _tensor(logits, fn, "logits")
    if not logits.dtype.is_floating_point:
        refuse_class_input("log_softmax_lastdim_kernel_impl" if logits.ndim <= 2 else "log_softmax_kernel_impl",
                           logits)
    logits = promoted(logits, target)      # float64 class probabilities: a float64 loss, as torch
    target = _tensor(target, fn, "target")
    if logits.ndim == 1:     # torch's unbatched form: (C,) logits, a 0-d or (1,) class, or (C,) probabilities
        target = target.reshape(1) if target.shape == (1,) and not target.dtype.is_floating_point else \
            target.unsqueeze(0)
        out = cross_entropy(logits.unsqueeze(0), target, weight, ignore_index=ignore_index,
                            reduction=reduction, label_smoothing=label_smoothing)
        return out.reshape(()) if reduction == "none" else out
    c, w = _classes(logits, weight, fn)
    if target.dtype.is_floating_point:
        return _probabilities(logits, target, w, ignore_index, label_smoothing, reduction, fn)
    _check_weight_dtype(weight, logits, fn)
    target = _indices(_class_indices(target, fn, "target", _target_dtypes(logits)), logits, fn)
    logits = _classes_last(logits)
    ignored = _check_targets(target, c, ignore_index, fn)
    if w is None and label_smoothing == 0 and logits.ndim == 2:
        if ignored is False:               # every target counts: one op
            return _reduce(activations.SoftmaxCrossEntropy.apply(logits, target), reduction, fn)
        if ignored is None:                # not known without a host read (a GPU): the op masks them
            op = activations.SoftmaxCrossEntropy
            if reduction == "mean" and logits._placed is None:   # and takes the mean over the kept rows itself
                return op.apply(logits, target, ignore_index=ignore_index, mean=True)
            loss = op.apply(logits, target, ignore_index=ignore_index)    # per row: stays sharded
            return _reduce(loss, reduction, fn) if reduction != "mean" else _mean_kept(loss, target != ignore_index)
    return _nll(logits.log_softmax(-1), target, w, ignore_index, label_smoothing, reduction)


@amp.runs_in_float32      # torch.autocast's fp32 list
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood ``-weight[y] * log_probs[..., y]`` for log-probabilities (N, C) or
    (N, C, d1, ...) and integer classes (N,) or (N, d1, ...) (see the module docstring)."""
    fn = "nll_loss"
    weight, reduction = _options(weight, size_average, reduce, reduction, ignore_index, fn)
    log_probs = _tensor(input, fn)
    if not log_probs.dtype.is_floating_point:
        # torch checks the target's dtype first
        _class_indices(target, fn, "target", _target_dtypes(log_probs))
        refuse_class_input("nll_loss_out_frame" if log_probs.ndim <= 2 else "nll_loss2d_forward_out_frame", log_probs)
    if log_probs.ndim == 1:  # torch's unbatched form: (C,) and a 0-d (or (1,)) class
        target = _tensor(target, fn, "target")
        target = target.reshape(1) if target.shape == (1,) else target.unsqueeze(0)
        out = nll_loss(log_probs.unsqueeze(0), target, weight,
                       ignore_index=ignore_index, reduction=reduction)
        return out.reshape(()) if reduction == "none" else out
    if inference_saved.made[0]:     # (torch's kernel saves its target and weight)
        inference_saved.refuse_operands(log_probs, target, weight)
    c, w = _classes(log_probs, weight, fn)
    _check_weight_dtype(weight, log_probs, fn)
    target = _indices(_class_indices(target, fn, "target", _target_dtypes(log_probs)), log_probs, fn)
    _check_targets(target, c, ignore_index, fn)
    return _nll(_classes_last(log_probs), target, w, ignore_index, 0.0, reduction)


def _options(weight, size_average, reduce, reduction, ignore_index, fn):
    if isinstance(weight, str):            # gt's positional form: (input, target, "sum")
        weight, reduction = None, weight
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"{fn}: ignore_index must be an int, got {ignore_index!r}")
    return weight, reduction


def _classes(x, weight, fn):
    """The class count C of an (N, C, ...) input, and ``weight`` as a (C,) tensor of its dtype (or None)."""
    if x.ndim < 2:
        raise ValueError(f"{fn}: input must have shape (C,), (N, C) or (N, C, d1, ...), got {x.shape}")
    c = x.shape[1]
    if weight is None:
        return c, None
    w = _tensor(weight, fn, "weight")
    if w.shape != (c,):
        raise ValueError(f"{fn}: weight must have one value per class, shape ({c},), got {w.shape}")
    return c, w.to(x.dtype)


def _check_weight_dtype(weight, x, fn):
    """torch's class-index kernels take a weight tensor of the input's dtype only (probability
    targets promote instead)."""
    if isinstance(weight, Tensor) and weight.dtype != x.dtype:
        raise RuntimeError(f"{fn}: expected scalar type {x.dtype} (the input's) but found {weight.dtype} "
                           "(the weight's)")


def _target_dtypes(x):
    """The small integer target dtypes torch's kernels take beside input ``x``: uint8 for (N, C)
    (``nll_loss``'s), none for (N, C, d1, ...) (``nll_loss2d``'s); int8/int16 never."""
    return (dtypes.uint8,) if x.ndim <= 2 else ()


def _indices(target, x, fn):
    expected = (x.shape[0],) + tuple(x.shape[2:])
    if target.shape == x.shape and fn == "cross_entropy":      # torch reads it as class probabilities
        raise RuntimeError(f"Expected floating point type for target with class probabilities, got "
                           f"{dtypes.torch_type_name(target.dtype.name)}")
    if target.shape != expected:
        raise ValueError(f"{fn}: target must have shape {expected} for input of shape {x.shape} "
                         f"((N, C) or (N, C, d1, ...)), got {target.shape}")
    return target


def _classes_last(x):
    """(N, C, d1, ...) -> (N, d1, ..., C)."""
    return x.permute(0, *range(2, x.ndim), 1) if x.ndim > 2 else x


def _nll(log_probs, target, w, ignore_index, smoothing, reduction):
    """The loss of classes-last ``log_probs`` (N, d1, ..., C) at integer ``target`` (N, d1, ...)."""
    c = log_probs.shape[-1]
    keep = target != ignore_index                                               # (N, d1, ...)
    hit = (target.unsqueeze(-1) == arange(c)) & keep.unsqueeze(-1)               # an ignored row picks nothing
    weighted = log_probs if w is None else log_probs * w
    loss = -where(hit, weighted, 0.0).sum(-1)                                     # (N, d1, ...)
    if smoothing:
        smooth = where(keep, -weighted.sum(-1), 0.0)
        loss = loss * (1.0 - smoothing) + smooth * (smoothing / c)
    if reduction != "mean":
        return _reduce(loss, reduction, "nll")
    return _mean_kept(loss, keep if w is None else None, None if w is None else where(hit, w, 0.0).sum())


def _mean_kept(loss, keep, total=None):
    """The sum of ``loss`` over the count of ``keep`` (or over ``total``, the kept targets'
    weights): NaN when nothing counts (torch's 0 / 0), without dividing by zero: no warning, and
    a zero gradient, as torch's."""
    if total is None:
        total = keep.sum().to(loss.dtype)
    return where(total != 0, loss.sum() / where(total != 0, total, 1.0), float("nan"))


def _probabilities(logits, target, w, ignore_index, smoothing, reduction, fn):
    if ignore_index >= 0:
        raise ValueError(f"{fn}: ignore_index is not supported for floating point target (class probabilities); "
                         f"got ignore_index={ignore_index}")
    if target.shape != logits.shape:
        _refuse_probabilities(logits, target, fn)
    log_probs = logits.log_softmax(1)
    p = target.to(logits.dtype)
    if smoothing:
        p = p * (1.0 - smoothing) + smoothing / logits.shape[1]
    if w is not None:
        p = p * w.reshape((1, -1) + (1,) * (logits.ndim - 2))
    loss = -(p * log_probs).sum(1)                                                # (N, d1, ...)
    return _reduce(loss, reduction, fn)


def _refuse_probabilities(logits, target, fn):
    """torch's errors for float targets not of the logits' shape: another batch size (its
    ValueError), or read as class indices (a RuntimeError: the float dtype, or the shape)."""
    hint = f" ({fn}: class probabilities must have the logits' shape {logits.shape}, got {target.shape})"
    if target.ndim == logits.ndim and target.shape[0] != logits.shape[0]:
        raise ValueError(f"Expected input batch_size ({logits.shape[0]}) to match target batch_size "
                         f"({target.shape[0]}).")
    if target.ndim == logits.ndim - 1:
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got "
                           f"{dtypes.torch_type_name(target.dtype.name)}" + hint)
    raise RuntimeError("0D or 1D target tensor expected, multi-target not supported" + hint)


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
