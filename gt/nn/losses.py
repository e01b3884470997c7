"""Loss modules, for code that prefers ``criterion = nn.CrossEntropyLoss()``."""

from gt.nn import functional as F
from gt.nn.module import Module


class CrossEntropyLoss(Module):
    """``F.cross_entropy(logits (N, C) or (N, C, d1, ...), target)`` as a module, with the same
    options (``reduction``, ``ignore_index``, ``label_smoothing``).

        >>> criterion = nn.CrossEntropyLoss(ignore_index=0, label_smoothing=0.1)
        >>> criterion(gt.zeros(3, 5), [0, 2, 4]).item()   # log(5), averaged over the 2 kept targets
        1.6094378232955933
    """

    def __init__(self, reduction="mean", ignore_index=-100, label_smoothing=0.0):
        super().__init__()
        self.reduction, self.ignore_index, self.label_smoothing = reduction, ignore_index, label_smoothing

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, reduction=self.reduction, ignore_index=self.ignore_index,
                               label_smoothing=self.label_smoothing)


class _Loss(Module):
    """A loss function of (input, target) with only ``reduction`` to set, as a module."""

    function = None

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return type(self).function(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """``F.mse_loss(input, target)`` as a module (shapes must match exactly)."""

    function = staticmethod(F.mse_loss)


class BCELoss(Module):
    """``F.binary_cross_entropy(probabilities, target)`` as a module."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__()
        self.weight, self.reduction = weight, reduction

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(Module):
    """``F.binary_cross_entropy_with_logits(logits, target)`` as a module."""

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__()
        self.weight, self.reduction, self.pos_weight = weight, reduction, pos_weight

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class L1Loss(_Loss):
    """``F.l1_loss(input, target)`` as a module (shapes must match exactly)."""

    function = staticmethod(F.l1_loss)


class NLLLoss(_Loss):
    """``F.nll_loss(log_probs (N, C), target (N,))`` as a module."""

    function = staticmethod(F.nll_loss)
