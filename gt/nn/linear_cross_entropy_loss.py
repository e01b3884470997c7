"""``nn.LinearCrossEntropyLoss`` (torch 2.13): ``F.linear_cross_entropy`` with a ``Linear`` of its
own (gt/nn/linear_cross_entropy.py has the function and its options)."""

import math

from gt.nn.linear import Linear
from gt.nn.linear_cross_entropy import linear_cross_entropy
from gt.nn.module import Module


class LinearCrossEntropyLoss(Module):
    """``F.linear_cross_entropy`` with its own ``Linear``: ``self.linear`` has
    ``in_features`` inputs and ``num_classes * prod(out_features)`` outputs (torch's flat
    storage: the same state-dict keys and shapes as torch's module), reshaped to
    ``(num_classes, *out_features, in_features)`` in ``forward(input, target)``. ``weight`` (C,)
    is a buffer, as in ``CrossEntropyLoss``."""

    def __init__(self, in_features, num_classes, *, out_features=(), bias=False, device=None, dtype=None,
                 reduction="mean", weight=None, ignore_index=None, label_smoothing=0.0, options=None):
        super().__init__()
        if weight is not None and tuple(weight.shape) != (num_classes,):
            raise RuntimeError(f"expected weight shape to be {(num_classes,)}, got {tuple(weight.shape)}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise RuntimeError(f"expected label_smoothing to be in range [0, 1], got {label_smoothing}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{reduction!r} is not a valid value for reduction: expected 'mean', 'sum' or 'none'")
        self.register_buffer("weight", weight)
        self.num_classes, self.out_features = num_classes, tuple(out_features)
        self.reduction, self.ignore_index, self.label_smoothing = reduction, ignore_index, label_smoothing
        self.linear = Linear(in_features, math.prod(self.out_features, start=num_classes), bias=bias, dtype=dtype)
        if device is not None:
            self.linear.to(device)
        self.options = options

    def forward(self, input, target):
        w = self.linear.weight.reshape(self.num_classes, *self.out_features, self.linear.in_features)
        b = self.linear.bias
        b = None if b is None else b.reshape(self.num_classes, *self.out_features)
        return linear_cross_entropy(input, w, target, linear_bias=b, weight=self.weight, reduction=self.reduction,
                                    ignore_index=self.ignore_index, label_smoothing=self.label_smoothing,
                                    options=self.options)

    def extra_repr(self):
        return (f"in_features={self.linear.in_features}, num_classes={self.num_classes}, "
                f"out_features={self.out_features}, bias={self.linear.bias is not None}, reduction={self.reduction}, "
                f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}, options={self.options}")
