"""torch's remaining loss functions (``F.poisson_nll_loss``, ``F.margin_ranking_loss``, ...) and
``F.pairwise_distance``, composed from differentiable tensor ops so gradients come for free.

Each loss takes ``reduction`` ``"mean"``, ``"sum"`` or ``"none"``, as torch's."""

import math

from gt import amp, dtypes
from gt.autograd import no_grad
from gt.nn import loss_dtypes
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.inputs import check_range as _check_range
from gt.nn.loss_functions import _REDUCTIONS, _broadcasts_to, _reduce, accepts_legacy_reduction, promoted
from gt.tensor import Tensor, arange, full_like, where
from gt.tensor.runtime import get_default_dtype


def _float_input(x, fn, what="input"):
    x = _tensor(x, fn, what)
    if not x.dtype.is_floating_point:
        if not x.dtype.is_complex:
            loss_dtypes.refuse_float_input(fn, x)
        raise TypeError(f"{fn}: {what} must be floating point, got {x.dtype!r}")
    return x


def _numeric_input(x, fn, what="input", bools=False):
    """``x`` as a float tensor: integer inputs in the default float dtype, as torch's compositions
    reach it (their first Python-float step promotes); bools only where ``bools`` (elsewhere torch's
    subtraction refuses them, with its error)."""
    x = _tensor(x, fn, what)
    if x.dtype.is_floating_point:
        return x
    if x.dtype == dtypes.bool_ and not bools:
        raise RuntimeError(f"{fn}: {what} is bool; subtraction, the `-` operator, with a bool tensor is not "
                           "supported (as torch)")
    if x.dtype.is_complex:
        raise TypeError(f"{fn}: {what} must be real, got {x.dtype!r}")
    return x.to(get_default_dtype())


def _like(t, like, fn, what):
    """``t`` (tensor, array or number) as a tensor in ``like``'s float dtype."""
    t = _tensor(t, fn, what)
    return t if t.dtype == like.dtype else t.to(like.dtype)


def _broadcastable(a, b, fn, into_input=False):
    """Refuse a target that does not broadcast against the input (torch broadcasts it silently);
    ``into_input``: nor one that widens the input's shape (torch's loss has the input's shape)."""
    if into_input:
        ok = _broadcasts_to(b.shape, a.shape)
    else:
        ok = all(x == y or 1 in (x, y) for x, y in zip(reversed(a.shape), reversed(b.shape)))
    if not ok:
        raise ValueError(f"{fn}: target shape {b.shape} differs from input shape {a.shape}; they must match "
                         f"or the target must broadcast {'to' if into_input else 'against'} the input")


def _softplus(z):
    """``log(1 + exp(z))`` as ``max(z, 0) + log1p(exp(-|z|))``: no overflow for large ``z``. The max is
    written ``(z + |z|) / 2`` so that the slope at ``z = 0`` is sigmoid(0) = 1/2 (a clamp's would be 1)."""
    a = z.abs()
    return (z + a) * 0.5 + (-a).exp().log1p()


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
    """Poisson negative log-likelihood of ``target`` counts: ``exp(input) - target * input`` for
    log-rates (``log_input=True``), else ``input - target * log(input + eps)``. ``full`` adds
    Stirling's term ``t log t - t + 0.5 log(2 pi t)`` where ``t > 1``. input, target: any shapes that
    broadcast, as torch's; an integer input, or a bool one with ``log_input`` (torch's dtypes).

        >>> F.poisson_nll_loss(gt.zeros(3), gt.ones(3)).item()   # exp(0) - 1 * 0
        1.0
    """
    fn = "poisson_nll_loss"
    # a bool input only where torch's first subtraction has a float side: exp(input) - target * input
    bools = log_input and not (isinstance(target, Tensor) and target.dtype is dtypes.bool_)
    if full:        # torch's Stirling term subtracts the target
        loss_dtypes.refuse_bool_operand(fn, "target", target)
    x = _numeric_input(input, fn, bools=bools)
    input = promoted(x, target)
    target = _like(target, input, fn, "target")
    _broadcastable(input, target, fn)
    # torch's exp is of the input in its own dtype (an integer's or a bool's in the default float dtype)
    loss = x.exp() - target * input if log_input else input - target * (input + eps).log()
    if full:
        big = target > 1
        t = where(big, target, 1.0)                     # log of 1 where the term is dropped: no NaN
        loss = loss + where(big, t * t.log() - t + 0.5 * (t * (2 * math.pi)).log(), 0.0)
    return _reduce(loss, reduction, fn)


def _gaussian_var(var, input, dtype, fn):
    """``var`` as a tensor that broadcasts against ``input`` in torch's accepted shapes: a tensor in
    its own dtype (torch takes its log there), a number or an array in ``dtype``."""
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError(f"{fn}: var has negative entry/entries (got {var!r})")
        return _tensor(float(var), fn, "var").to(dtype).expand(*input.shape)
    var = var if isinstance(var, Tensor) else _tensor(var, fn, "var").to(dtype)
    if var.numel() and bool((var < 0).any()):
        raise ValueError(f"{fn}: var has negative entry/entries (min {var.min().item():g})")
    if var.shape == input.shape:
        return var
    if var.shape == input.shape[:-1]:                   # one variance per row: homoscedastic
        return var.unsqueeze(-1)
    if var.ndim == input.ndim and sum(v for i, v in zip(input.shape, var.shape) if i != v) == 1:
        return var                                      # one axis of size 1 that broadcasts
    raise ValueError(f"{fn}: var is of incorrect size: {var.shape} for input {input.shape} (expected "
                     f"{input.shape}, {input.shape[:-1]}, or the input's shape with one axis of size 1)")


def _gaussian_input(x, target, fn):
    """``input`` of ``gaussian_nll_loss``: integers pass (torch subtracts the target, then divides by
    the float var), bools are refused by torch's subtraction, in its words."""
    if x.dtype is dtypes.bool_:
        raise RuntimeError(loss_dtypes.bool_subtraction(isinstance(target, Tensor) and target.dtype is dtypes.bool_))
    loss_dtypes.refuse_bool_operand("gaussian_nll_loss", "target", target)
    return x


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Gaussian negative log-likelihood ``0.5 * (log(var) + (input - target)**2 / var)`` (plus
    ``0.5 * log(2 pi)`` with ``full``), as torch's. ``var``: the input's shape, that shape without
    its last axis, that shape with one axis of size 1, or a non-negative float. var is clamped at
    ``eps`` for the value only: its gradient passes through the clamp, as in torch. An integer
    input (and target) gives a loss in the var's float dtype, as torch's; they subtract in their
    own dtype (uint8 wraps, as torch's).

        >>> F.gaussian_nll_loss(gt.zeros(2), gt.zeros(2), gt.ones(2)).item()
        0.0
    """
    fn = "gaussian_nll_loss"
    input = _tensor(input, fn)
    if input.dtype.is_complex:
        input = _float_input(input, fn)
    # torch's order of refusals: var's entries and shape, the reduction, var's in-place clamp (an
    # integer var), then the subtraction (a bool operand)
    dtype = input.dtype if input.dtype.is_floating_point else get_default_dtype()
    var = _gaussian_var(var, input, dtype, fn)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{fn}: {reduction!r} is not a valid value for reduction ('mean', 'sum' or 'none')")
    if not (var.dtype.is_floating_point or var.dtype.is_complex):
        loss_dtypes.refuse_int_var(var)
    input = _gaussian_input(input, target, fn)
    # each step in torch's dtypes (an integer input and target subtract as integers); a number or
    # an array var or target in the input's float dtype (torch's ``var * ones_like(input)``)
    target = target if isinstance(target, Tensor) else _tensor(target, fn, "target").to(dtype)
    with no_grad():
        lift = var.clamp(min=eps) - var                 # torch clamps in place under no_grad
    var = var + lift
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, fn)


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """``max(0, -target * (input1 - input2) + margin)``, target +1 (input1 should rank higher) or
    -1; the three broadcast against each other, as in torch.

        >>> F.margin_ranking_loss(gt.tensor([1.0]), gt.tensor([0.0]), gt.tensor([1.0])).item()
        0.0
    """
    fn = "margin_ranking_loss"
    loss_dtypes.refuse_bool_operand(fn, "target", target)
    x1 = promoted(promoted(_numeric_input(input1, fn, "input1"), input2), target)   # torch's dtype
    x2, y = _like(input2, x1, fn, "input2"), _like(target, x1, fn, "target")
    if not x1.ndim == x2.ndim == y.ndim:
        raise ValueError(f"{fn}: input1, input2 and target must have the same number of dimensions, got "
                         f"{x1.shape}, {x2.shape} and {y.shape}")
    return _reduce((-y * (x1 - x2) + margin).clamp(min=0.0), reduction, fn)


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def hinge_embedding_loss(input, target, margin=1.0, reduction="mean"):
    """``input`` where target is 1 and ``max(0, margin - input)`` where it is -1 (torch's formula:
    other target values get both terms). input and target broadcast. An integer input gives an
    integer loss (``reduction='sum'``: int64; ``'mean'`` is refused), as torch's.

        >>> F.hinge_embedding_loss(gt.tensor([0.3, 0.3]), gt.tensor([1, -1])).item()   # (0.3 + 0.7) / 2
        0.5
    """
    fn = "hinge_embedding_loss"
    if reduction not in _REDUCTIONS:        # torch's Python check, before any arithmetic
        raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    x = _tensor(input, fn)
    if x.dtype.is_floating_point or x.dtype is dtypes.bool_ or x.dtype.is_complex:
        x = _float_input(x, fn)       # torch refuses a bool (its subtraction)
        y = _like(target, x, fn, "target")
        return _reduce(where(y != 1, (margin - x).clamp(min=0.0), 0.0) + where(y != -1, x, 0.0), reduction, fn)
    # integers stay integers, as torch's: its ``margin - input`` fills the margin into the input's
    # dtype (truncated, or its overflow error), and the target is compared in its own dtype; the
    # mean of integers is refused after that fill, as torch's reduction refuses it
    y, zero = _tensor(target, fn, "target"), x.new_zeros(())
    loss = where(y != 1, (full_like(x, margin) - x).clamp(min=0), zero) + where(y != -1, x, zero)
    if reduction == "mean":         # (gt's mean of int64 computes; torch's loss refuses it)
        loss_dtypes.refuse_integer_mean(loss.dtype)
    return _reduce(loss, reduction, fn)


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """``1 - cos(x1, x2)`` where target is 1, ``max(0, cos(x1, x2) - margin)`` where it is -1;
    input1, input2 (N, D) with target (N,), or (D,) with a 0-d target. cos uses torch's
    ``sqrt((|x1|^2 + 1e-12) * (|x2|^2 + 1e-12))`` denominator.

        >>> F.cosine_embedding_loss(gt.ones(1, 3), gt.ones(1, 3), gt.tensor([1])).item()
        0.0
    """
    fn = "cosine_embedding_loss"
    x1 = promoted(_numeric_input(input1, fn, "input1", True), input2)      # a float64 input2: a float64 loss
    x2, y = _like(input2, x1, fn, "input2"), _like(target, x1, fn, "target")
    if not x1.ndim == x2.ndim == y.ndim + 1 or x1.ndim not in (1, 2) or \
            y.shape not in ((), (1,), x1.shape[:1], x2.shape[:1]):       # sizes of 1 broadcast, as torch's
        raise ValueError(f"{fn}: expected input1 and input2 of one shape (N, D) with target (N,), or (D,) "
                         f"with a 0-d target; got {x1.shape}, {x2.shape} and {y.shape}")
    d = x1.ndim - 1
    cos = (x1 * x2).sum(d) / (((x1 * x1).sum(d) + 1e-12) * ((x2 * x2).sum(d) + 1e-12)).sqrt()
    loss = where(y == 1, 1 - cos, 0.0) + where(y == -1, (cos - margin).clamp(min=0.0), 0.0)
    return _reduce(loss, reduction, fn)


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def soft_margin_loss(input, target, reduction="mean"):
    """``log(1 + exp(-target * input))``, target +1 or -1 of the input's shape (or one that broadcasts to it).
    Computed stably: where torch's ``log1p(exp(.))`` overflows to inf, gt gives the finite value.

        >>> F.soft_margin_loss(gt.zeros(2), gt.tensor([1.0, -1.0])).item()   # log(2)
        0.6931471824645996
    """
    fn = "soft_margin_loss"
    x = _float_input(input, fn)
    y = _like(target, x, fn, "target")
    _broadcastable(x, y, fn, into_input=True)
    return _reduce(_softplus(-y * x), reduction, fn)


@accepts_legacy_reduction
def multilabel_soft_margin_loss(input, target, weight=None, reduction="mean"):
    """The mean over the C classes of ``-[y log sigmoid(x) + (1 - y) log sigmoid(-x)]`` (times
    ``weight`` (C,) if given): input (N, C) or (C,) (or (N, ..., C): the mean over the last axis), target 0
    or 1 of its shape (or one that broadcasts against it, as torch's) -> (N,) or ().

        >>> F.multilabel_soft_margin_loss(gt.zeros(1, 2), gt.tensor([[1, 0]])).item()   # log(2)
        0.6931471824645996
    """
    fn = "multilabel_soft_margin_loss"
    x = promoted(promoted(_float_input(input, fn), target), weight)
    loss_dtypes.refuse_bool_operand(fn, "target", target)
    y = _like(target, x, fn, "target")
    _broadcastable(x, y, fn)
    if x.ndim == 0:
        raise ValueError(f"{fn}: expected input of shape (N, C), (C,) or (N, ..., C), got {x.shape}")
    loss = y * _softplus(-x) + (1 - y) * _softplus(x)
    if weight is not None:
        loss = loss * _like(weight, x, fn, "weight")
    total = loss.sum(x.ndim - 1)               # torch's class axis: the input's last
    c = x.shape[-1]
    return _reduce(total / c if c else total * float("nan"), reduction, fn)     # no classes: 0 / 0, as torch


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """The multi-class hinge loss: for each row, ``sum over j != y of w[y] * max(0, margin -
    x[y] + x[j]) ** p / C``; input (N, C) or (C,), target (N,) or 0-d class indices, p 1 or 2.

        >>> F.multi_margin_loss(gt.tensor([[0.1, 0.2, 0.4]]), gt.tensor([2])).item()   # (0.7 + 0.8) / 3
        0.5
    """
    fn = "multi_margin_loss"
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"{fn}: only p == 1 and p == 2 are supported, got {p!r}")
    x = _float_input(input, fn)
    y = _tensor(target, fn, "target")
    loss_dtypes.check_class_target(y)
    if x.ndim == 1 and y.shape == (1,):       # torch reads (C,) with a (1,) target as a batch of one
        x = x.unsqueeze(0)
    if y.dtype.is_floating_point or x.ndim not in (1, 2) or y.shape != x.shape[:-1]:
        raise ValueError(f"{fn}: expected input (N, C) with integer target (N,), or (C,) with a 0-d target; "
                         f"got {x.shape} and {y.shape} ({y.dtype!r})")
    c = x.shape[-1]
    _check_range(y, c, fn, "target", f"{c} classes", IndexError)       # on a GPU: at the next host read
    hit = y.unsqueeze(-1) == arange(c)                   # (N, C): the target's column
    x_y = where(hit, x, 0.0).sum(-1, keepdims=True)      # (N, 1)
    z = margin - x_y + x
    term = where(z > 0, z, 0.0)                           # torch's kernel test: a NaN term counts as 0
    term = term if p == 1 else term * term
    if weight is not None:
        w = _like(weight, x, fn, "weight")
        if w.shape != (c,):
            raise ValueError(f"{fn}: weight must have shape ({c},), got {w.shape}")
        term = term * where(hit, w, 0.0).sum(-1, keepdims=True)
    return _reduce(where(hit, 0.0, term).sum(-1) / c, reduction, fn)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``||x1 - x2 + eps||_p`` over the last axis (x1 and x2 broadcast), as torch's: (N, D) and
    (N, D) -> (N,). ``p`` is any number: 0 counts the nonzero differences, a negative ``p`` and
    ``-inf`` are torch's norms of those orders (``-inf``: the smallest ``|x1 - x2 + eps|``). A
    complex x1 or x2 gives the real norms of the complex differences (promoted as ``x1 - x2``).

        >>> F.pairwise_distance(gt.zeros(2, 3), gt.ones(2, 3)).shape
        (2,)
    """
    fn = "pairwise_distance"
    if any(getattr(x, "dtype", dtypes.float32).is_complex for x in (x1, x2)):
        a, b = _tensor(x1, fn, "x1"), _tensor(x2, fn, "x2")
    else:
        a = promoted(_numeric_input(x1, fn, "x1"), x2)         # an int or float32 x1 with a float64 x2: float64
        b = _like(x2, a, fn, "x2")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or p != p:
        raise ValueError(f"{fn}: p must be a number (any sign, or +-inf), got {p!r}")
    diff = a - b + eps
    if diff.ndim == 0:
        raise ValueError(f"{fn}: expected x1 and x2 with at least one dimension, got {a.shape} and {b.shape}")
    return diff.norm(p, dim=-1, keepdim=keepdim)


@accepts_legacy_reduction
@amp.runs_in_float32      # torch.autocast's fp32 list
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"):
    """``max(0, margin + d(anchor, positive) - d(anchor, negative))`` with ``d`` the
    ``pairwise_distance`` of order ``p``; ``swap`` uses ``min(d(a, n), d(p, n))`` as the negative
    distance. All three (N, D) or (D,) (or of more axes, as torch's: distances over the last one).

        >>> F.triplet_margin_loss(gt.zeros(1, 2), gt.zeros(1, 2), gt.ones(1, 2) * 3).item()
        0.0
    """
    fn = "triplet_margin_loss"
    if any(getattr(x, "dtype", dtypes.float32).is_complex for x in (anchor, positive, negative)):
        a = promoted(promoted(_tensor(anchor, fn, "anchor"), positive), negative)   # real distances, as torch's
    else:
        a = promoted(promoted(_numeric_input(anchor, fn, "anchor"), positive), negative)
    loss_dtypes.refuse_bool_operand(fn, "positive", positive)
    loss_dtypes.refuse_bool_operand(fn, "negative", negative)
    pos, neg = _like(positive, a, fn, "positive"), _like(negative, a, fn, "negative")
    if not a.ndim == pos.ndim == neg.ndim or a.ndim == 0:
        raise ValueError(f"{fn}: anchor, positive and negative must have one number of dimensions ((N, D) or "
                         f"(D,), or more: distances over the last axis), got {a.shape}, {pos.shape} and {neg.shape}")
    if not margin > 0:
        raise ValueError(f"{fn}: margin must be greater than 0, got {margin!r}")
    d_pos, d_neg = pairwise_distance(a, pos, p, eps), pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = d_neg.minimum(pairwise_distance(pos, neg, p, eps))
    return _reduce((margin + d_pos - d_neg).clamp(min=0.0), reduction, fn)
