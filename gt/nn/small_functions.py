"""torch's ``F.channel_shuffle``, ``F.feature_alpha_dropout``, ``F.gumbel_softmax``, ``F.pdist``,
``F.multilabel_margin_loss`` and ``F.triplet_margin_with_distance_loss``, composed from
differentiable tensor ops (autograd, sharding and both engines come with them).

Random draws (``feature_alpha_dropout``, ``gumbel_softmax``) come from gt's generator:
``gt.manual_seed`` makes them reproducible, not equal to torch's draws for the same seed.
"""

import math

from gt import amp, autograd, dtypes
from gt.nn.dropout_functions import _check, alpha_map, refuse_complex_mask, scaled
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.loss_functions import _reduce
from gt.nn.loss_functions_extra import _float_input, _like, pairwise_distance
from gt.tensor import Tensor, arange, rand, where
from gt.tensor.construct_functions import triu_indices
from gt.tensor.runtime import finfo


def channel_shuffle(input, groups):
    """Interleave the channels of (N, C, *) in ``groups`` groups (ShuffleNet's shuffle): channel
    ``g * (C / groups) + i`` moves to ``i * groups + g``. ``C`` must be divisible by ``groups``.

        >>> F.channel_shuffle(gt.arange(4.0).reshape(1, 4, 1), 2).flatten().tolist()
        [0.0, 2.0, 1.0, 3.0]
    """
    x = _tensor(input, "channel_shuffle")
    if x.ndim <= 2:
        raise RuntimeError(f"channel_shuffle expects input with > 2 dims, but got input with sizes {list(x.shape)}")
    if isinstance(groups, bool) or not hasattr(groups, "__index__"):
        raise TypeError(f"channel_shuffle: groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    n, c = x.shape[0], x.shape[1]
    if c % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    rest = tuple(x.shape[2:])
    return x.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """``alpha_dropout`` of whole channels: one draw per (sample, channel) of (N, C, *), broadcast
    over the trailing axes (a 2-D input is (N, C): one draw per element, as torch); a dropped channel takes
    SELU's negative saturation value, then all is rescaled to keep zero mean and unit variance.
    ``training`` defaults to False, as torch's; the identity when not training.

        >>> F.feature_alpha_dropout(gt.randn(4, 8, 3), 0.2, training=True).shape
        (4, 8, 3)
    """
    fn = "feature_alpha_dropout"
    _check(fn, p, inplace)
    x = _tensor(input, fn)
    if not training or p == 0 or x.numel() == 0:
        return x
    if x.ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    if p == 1:
        return scaled(x, 0, inplace)
    refuse_complex_mask(x)
    dtype = x.dtype if x.dtype.is_floating_point else dtypes.default_float
    keep = (rand(*x.shape[:2], *([1] * (x.ndim - 2)), dtype=dtype) >= p).to(dtype)     # (N, C, 1, ..., 1)
    return alpha_map(x, keep, p, inplace)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """A sample of the Gumbel-softmax (concrete) distribution: ``softmax((logits + g) / tau)``
    along ``dim`` with ``g`` standard Gumbel noise. ``hard=True`` returns the one-hot of its
    argmax in the forward pass and the soft sample's gradient (straight-through). ``eps`` is
    unused (torch's deprecated argument). Any shape; the output has the logits' shape.

        >>> F.gumbel_softmax(gt.zeros(2, 5), hard=True).sum(-1).tolist()
        [1.0, 1.0]
    """
    x = _float_input(logits, "gumbel_softmax", "logits")
    # Exp(1) = -log(U), U in (0, 1]; the clamp keeps log(0) (probability 2**-24) out
    exponential = -(1 - rand(*x.shape, dtype=x.dtype)).clamp(min=finfo(x.dtype).tiny).log()
    gumbels = -exponential.log()
    y_soft = ((x + gumbels) / tau).softmax(dim)
    if not hard:
        return y_soft
    with autograd.no_grad():
        index = y_soft.argmax(dim, keepdim=True)
        y_hard = (y_soft * 0).scatter(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def pdist(input, p=2):
    """The ``p``-norm distances between the rows of (N, M): ``(N (N - 1) / 2,)``, the pairs
    ``i < j`` in row-major order (the upper triangle of ``cdist(x, x)``). ``p >= 0`` or inf; p = 0
    counts the differing coordinates. The gradient is torch's: 0 where a distance is 0.

        >>> F.pdist(gt.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])).tolist()
        [5.0, 0.0, 5.0]
    """
    x = _tensor(input, "pdist")
    if x.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {x.ndim}D")
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"pdist only supports floating-point dtypes, got {x.dtype!r}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p >= 0:
        raise RuntimeError(f"pdist only supports non-negative p values, got {p!r}")
    rows, cols = triu_indices(x.shape[0], x.shape[0], 1)
    diff = x[rows] - x[cols]                                   # (pairs, M)
    a = diff.abs()
    if p == 0:
        count = (diff != 0).to(x.dtype).sum(-1)
        # the count, in the graph with a zero gradient (torch's)
        return where(count == count, count, a.sum(-1))
    if p == 1:
        return a.sum(-1)
    if p == math.inf:
        with autograd.no_grad():
            top = a.amax(-1, keepdim=True)
            ties = (a == top) & (top > 0)
        chosen = where(ties, a, 0.0).sum(-1)
        # the max's value; its gradient goes whole to every element that reaches it (torch's)
        return chosen - chosen.detach() + top.squeeze(-1)
    nonzero = a != 0
    if p == 2:
        s = (diff * diff).sum(-1)
    else:
        s = where(nonzero, where(nonzero, a, 1.0) ** p, 0.0).sum(-1)
    positive = s > 0
    safe = where(positive, s, 1.0)
    root = safe.sqrt() if p == 2 else safe ** (1.0 / p)
    return where(positive, root, 0.0)


@amp.runs_in_float32      # torch.autocast's fp32 list
def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """The multi-label hinge loss: for each sample, ``sum over targets j and non-targets i of
    max(0, 1 - (x[j] - x[i])) / C``. input (C,) or (N, C) floats; target the same shape, int64
    class indices, the sample's targets being those before its first -1 (the rest is ignored).

        >>> F.multilabel_margin_loss(gt.tensor([0.1, 0.2, 0.4, 0.8]), gt.tensor([3, 0, -1, 1])).item()
        0.85
    """
    fn = "multilabel_margin_loss"
    if size_average is not None or reduce is not None:       # torch's reading of the deprecated pair
        reduction = "none" if reduce is False else "sum" if size_average is False else "mean"
    x = _float_input(input, fn)
    y = _tensor(target, fn, "target")
    if x.ndim > 2 or (x.ndim == 2 and x.shape[1] == 0) or (x.ndim == 1 and x.shape[0] == 0):
        raise RuntimeError(f"{fn}: expected a non-empty vector or matrix with optional 0-dim batch size, but got: "
                           f"{list(x.shape)}")
    if y.dtype != dtypes.int64:
        raise RuntimeError(f"{fn}: expected target of scalar type Long (int64) but found {y.dtype!r}")
    if y.shape != x.shape:
        raise RuntimeError(f"{fn}: inconsistent target size: {list(y.shape)} for input of size: {list(x.shape)}")
    shape = x.shape[:-1] if x.ndim else ()
    x2, y2 = x.reshape(-1, x.shape[-1] if x.ndim else 1), y.reshape(-1, y.shape[-1] if y.ndim else 1)
    c = x2.shape[1]
    if y2.numel():
        with autograd.no_grad():
            ok = bool(((y2 >= -1) & (y2 < c)).all())
        if not ok:
            raise RuntimeError(f"{fn}: target values must be class indices in [0, {c}) or -1 (the end of a "
                               f"sample's targets); got values outside [-1, {c})")
    with autograd.no_grad():
        valid = (y2 >= 0).to(dtypes.int64).cumprod(1) > 0                  # (N, C): before the first -1
        classes = y2.clamp(min=0)
        hit = (classes.unsqueeze(-1) == arange(c)) & valid.unsqueeze(-1)   # (N, j, i): target j is class i
        is_target = hit.any(1)                                            # (N, C)
        pair = valid.unsqueeze(-1) & (~is_target).unsqueeze(1)            # (N, j, i)
    x_target = x2.gather(1, classes)                                      # (N, j)
    margins = 1 - x_target.unsqueeze(-1) + x2.unsqueeze(1)                # (N, j, i)
    loss = where(pair & (margins > 0), margins, 0.0).sum((1, 2)) / c     # torch's kernel: no slope at 0 or NaN
    loss = loss.reshape(shape)
    if reduction == "mean" and loss.numel() == 0:
        return loss.sum()                     # 0 for an empty batch (torch's kernel leaves it uninitialized)
    return _reduce(loss, reduction, fn)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean"):
    """``max(0, margin + d(anchor, positive) - d(anchor, negative))`` for any distance function
    ``d`` of two tensors (default ``pairwise_distance``); ``swap`` uses ``min(d(a, n), d(p, n))``
    as the negative distance. anchor, positive, negative: (N, D) or (D,), or anything ``d`` takes.

        >>> F.triplet_margin_with_distance_loss(gt.zeros(1, 2), gt.zeros(1, 2), gt.ones(1, 2) * 3).item()
        0.0
    """
    fn = "triplet_margin_with_distance_loss"
    if not margin > 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    a = _tensor(anchor, fn, "anchor")
    pos, neg = _tensor(positive, fn, "positive"), _tensor(negative, fn, "negative")
    if not a.ndim == pos.ndim == neg.ndim:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {a.ndim}D, positive {pos.ndim}D, and negative {neg.ndim}D "
                           f"inputs")
    distance = pairwise_distance if distance_function is None else distance_function
    d_pos, d_neg = distance(a, pos), distance(a, neg)
    if swap:
        d_neg = d_neg.minimum(distance(pos, neg))
    if not isinstance(d_pos, Tensor):
        d_pos = _like(d_pos, d_neg, fn, "distance")
    return _reduce((margin + d_pos - d_neg).clamp(min=0.0), reduction, fn)
