"""torch 2.13's ``F.linear_cross_entropy`` and ``nn.LinearCrossEntropyOptions`` (the module,
``nn.LinearCrossEntropyLoss``, is in linear_cross_entropy_loss.py): the cross-entropy of
``linear(input, linear_weight, linear_bias)``, optionally a chunk of rows at a time so the
(N, C) logits of a large vocabulary are never held whole.

Without ``options`` it is ``cross_entropy(linear(...))`` exactly (every option of
``cross_entropy``, higher-order gradients). With ``options`` the chunked op
(gt/ops/linear_cross_entropy.py) runs where torch's does (integer targets, no label smoothing,
no K-dimensional weight, reduction 'mean', 'sum' or 'none'); elsewhere it warns and falls
back, as torch. gt computes in the inputs' dtype: ``acc_policy`` and ``acc_dtype`` are checked
as torch checks them and change nothing (their effect in torch is on float16/bfloat16 inputs).
Where every target is ignored the mean is NaN with zero gradients on both paths (torch's chunked
path gives NaN gradients there, its reference path zeros), and the chunked gradients are kept
rather than consumed, so a second backward (``retain_graph=True``) works whatever
``allow_retain_graph`` says.

(N, 256) inputs, 32,000 classes, N = 2048, 2-core EPYC, forward and backward: the reference
path 1.08 s and 950 MiB peak; chunked, torch's default chunk of 16 rows, 1.66 s and 216 MiB;
``batch_chunk_size=256`` 0.63 s and 275 MiB (torch: 0.85 s / 1091 MiB, 1.95 s / 445 MiB,
0.66 s / 477 MiB).
"""

import dataclasses
import math
import warnings

from gt import dtypes
from gt.nn.class_losses import _check_targets, cross_entropy
from gt.nn.inputs import as_tensor
from gt.ops import linalg
from gt.ops.linear_cross_entropy import ChunkedLinearCrossEntropy

_POLICIES = ("auto", "accurate", "balanced", "compact")
_ACC_DTYPES = ("float16", "bfloat16", "float32", "float64")


@dataclasses.dataclass(frozen=True)
class LinearCrossEntropyOptions:
    """How the chunked ``linear_cross_entropy`` cuts the batch (torch's fields and checks).

    - ``batch_chunk_size``: rows per chunk (a positive int; None: from ``chunking_method``, or
      one chunk).
    - ``chunking_method``: ``"auto"`` (torch's pick for float32: ``"aspect_ratio:2"``),
      ``"aspect_ratio"`` (chunk logits as large as the input: the next power of two of
      ``ceil(N / ceil(C / in_features))``), ``"aspect_ratio:K"`` (that divided by K) or None.
    - ``acc_policy``, ``acc_dtype``, ``allow_retain_graph``: accepted and checked; see the
      module docstring.
    """

    allow_retain_graph: bool = False
    batch_chunk_size: int = None
    chunking_method: str = "auto"
    acc_policy: str = "auto"
    acc_dtype: object = None

    def __post_init__(self):
        if self.acc_policy not in _POLICIES:
            raise ValueError(f"invalid acc_policy: {self.acc_policy!r}; expected one of {_POLICIES}")
        if self.chunking_method is not None and self.chunking_method != "auto":
            name, sep, factor = str(self.chunking_method).partition(":")
            factor = factor if sep else "1"
            if not (name == "aspect_ratio" and factor.isdigit() and int(factor) > 0):
                raise ValueError(f"invalid chunking_method: {self.chunking_method!r}; expected 'auto', "
                                 "'aspect_ratio', 'aspect_ratio:N' (N >= 1) or None")
        size = self.batch_chunk_size
        if not (size is None or (isinstance(size, int) and not isinstance(size, bool) and size > 0)):
            raise ValueError(f"batch_chunk_size must be positive int or None, got {size!r}")
        if self.acc_dtype is not None and getattr(self.acc_dtype, "name", None) not in _ACC_DTYPES:
            raise ValueError(f"acc_dtype must be one of None, gt.float16, gt.bfloat16, gt.float32, gt.float64, "
                             f"got {self.acc_dtype!r}")

    def chunk_rows(self, num_batches, in_features, num_classes):
        """The rows per chunk for this call (torch's ``_adjust``): ValueError where an explicit
        ``batch_chunk_size`` and a ``chunking_method`` other than "auto" disagree."""
        method = self.chunking_method
        if method == "auto":
            method = None if self.batch_chunk_size is not None else "aspect_ratio:2"
        rows = num_batches if self.batch_chunk_size is None else min(self.batch_chunk_size, num_batches)
        if method is not None:
            factor = int(method.split(":", 1)[1]) if ":" in method else 1
            target = -(-num_batches // -(-num_classes // in_features))
            rows = min((1 << (target - 1).bit_length()) // factor, num_batches)
            if self.batch_chunk_size is not None and self.batch_chunk_size != rows:
                raise ValueError(f"batch_chunk_size (={self.batch_chunk_size}) and chunking_method ('{method}') give "
                                 f"different chunk sizes ({self.batch_chunk_size} vs {rows}); pass only one.")
        return max(1, rows)


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                         ignore_index=None, label_smoothing=0.0, options=None):
    """``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``, as torch's.

    input (N, in) or (in,); linear_weight (C, in), or (C, d1, ..., dK, in) for a K-dimensional
    loss (then input (N, in) and target (N, d1, ..., dK)); linear_bias of linear_weight's shape
    without its last axis; target class indices (N,) or probabilities of the logits' shape.
    ``ignore_index`` None means -100 for class indices. ``options`` (a
    ``LinearCrossEntropyOptions``): the chunked computation (module docstring)."""
    x, w = as_tensor(input, "linear_cross_entropy"), as_tensor(linear_weight, "linear_cross_entropy")
    target = as_tensor(target, "linear_cross_entropy")
    if x.ndim not in (1, 2):
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {x.ndim}")
    if w.ndim < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {w.ndim}")
    batches, in_features = tuple(x.shape[:-1]), x.shape[-1]
    if in_features != w.shape[-1]:
        raise RuntimeError("expected equal input and linear_weight last dimensions (in_features), "
                           f"got {x.shape[-1]} and {w.shape[-1]}, respectively")
    num_classes, out_features = w.shape[0], tuple(w.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (num_classes, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(num_classes, *out_features)}, got {tuple(linear_bias.shape)}")
    if out_features and not batches:
        raise RuntimeError(f"K-dimensional loss defined by linear_weight shape {tuple(w.shape)} requires batched "
                           f"input, (N, {in_features}), got unbatched input with shape {tuple(x.shape)}")
    logits_shape = (*batches, num_classes, *out_features)
    probabilities = tuple(target.shape) == logits_shape
    if probabilities and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    if options is not None:
        if not isinstance(options, LinearCrossEntropyOptions):
            raise TypeError(f"linear_cross_entropy: options must be a LinearCrossEntropyOptions or None, "
                            f"got {type(options).__name__}")
        if (not out_features and reduction in ("mean", "sum", "none") and label_smoothing == 0.0
                and target.dtype == dtypes.int64 and not probabilities):
            return _chunked(x, w, target, linear_bias, weight, reduction, ignore_index, options)
        warnings.warn("linear_cross_entropy: ``options`` ignored; chunked path needs reduction in "
                      "{'mean','sum','none'}, label_smoothing == 0, target.dtype == int64, out_features == (). "
                      f"Got reduction={reduction!r}, label_smoothing={label_smoothing}, target.dtype={target.dtype}, "
                      f"out_features={out_features}.", stacklevel=2)
    flat_w = w.reshape(math.prod(out_features, start=num_classes), in_features) if out_features else w
    flat_b = linear_bias.reshape(-1) if out_features and linear_bias is not None else linear_bias
    logits = linalg.Linear.apply(x, flat_w, flat_b).reshape(logits_shape)
    return cross_entropy(logits, target, weight=weight, reduction=reduction, ignore_index=ignore_index,
                         label_smoothing=label_smoothing)


def _chunked(x, w, target, bias, weight, reduction, ignore_index, options):
    if tuple(target.shape) != tuple(x.shape[:-1]):
        raise ValueError(f"linear_cross_entropy: target of shape {tuple(target.shape)} for input of shape "
                         f"{tuple(x.shape)}: expected {tuple(x.shape[:-1])}")
    if weight is not None:
        weight = as_tensor(weight, "linear_cross_entropy")
        if tuple(weight.shape) != (w.shape[0],):
            raise RuntimeError(f"expected weight shape to be {(w.shape[0],)}, got {tuple(weight.shape)}")
        weight = weight.to(x.dtype)
    batched = x.ndim == 2
    x2, t2 = (x, target) if batched else (x.reshape(1, -1), target.reshape(1))
    c = w.shape[0]
    _check_targets(t2, c, ignore_index, "linear_cross_entropy")     # queued on a GPU, as cross_entropy's
    rows = options.chunk_rows(x2.shape[0], x2.shape[1], c)
    out = ChunkedLinearCrossEntropy.apply(x2, w, bias, t2, weight, reduction=reduction, ignore_index=ignore_index,
                                          chunk=rows)
    return out if batched or reduction != "none" else out.reshape(())
