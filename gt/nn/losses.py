"""Loss modules, for code that prefers ``criterion = nn.CrossEntropyLoss()``."""

from gt.nn import functional as F
from gt.nn.module import Module


class CrossEntropyLoss(Module):
    """``F.cross_entropy(logits (N, C), target (N,) ints)`` as a module."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, reduction=self.reduction)


class MSELoss(Module):
    """``F.mse_loss(input, target)`` as a module (shapes must match exactly)."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)
