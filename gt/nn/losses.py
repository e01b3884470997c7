"""Loss modules, for code that prefers ``criterion = nn.CrossEntropyLoss()``."""

import warnings

from gt.nn import functional as F
from gt.nn.inputs import as_tensor
from gt.nn.loss_functions import _legacy_reduction
from gt.nn.module import Module


class CrossEntropyLoss(Module):
    """``F.cross_entropy(logits (N, C) or (N, C, d1, ...), target)`` as a module, with the same
    options (``weight``, ``ignore_index``, ``reduction``, ``label_smoothing``; torch's order).
    ``weight`` is a buffer (in the state dict, as torch's). gt's positional form
    ``CrossEntropyLoss("sum")`` is read as ``reduction=``.

        >>> criterion = nn.CrossEntropyLoss(ignore_index=0, label_smoothing=0.1)
        >>> criterion(gt.zeros(3, 5), [0, 2, 4]).item()   # log(5), averaged over the 2 kept targets
        1.6094378232955933
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        super().__init__()
        weight, reduction = _weight_and_reduction(weight, size_average, reduce, reduction, "CrossEntropyLoss")
        self.register_buffer("weight", weight)
        self.reduction, self.ignore_index, self.label_smoothing = reduction, ignore_index, label_smoothing

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, weight=self.weight, reduction=self.reduction,
                               ignore_index=self.ignore_index, label_smoothing=self.label_smoothing)


class NLLLoss(Module):
    """``F.nll_loss(log_probs (N, C) or (N, C, d1, ...), target)`` as a module (``weight`` a buffer)."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__()
        weight, reduction = _weight_and_reduction(weight, size_average, reduce, reduction, "NLLLoss")
        self.register_buffer("weight", weight)
        self.reduction, self.ignore_index = reduction, ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class NLLLoss2d(NLLLoss):
    """torch's deprecated name for ``NLLLoss`` (which takes (N, C, H, W) inputs itself): the same
    loss, with torch's FutureWarning on construction."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        warnings.warn("`NLLLoss2d` has been deprecated. Please use `NLLLoss` instead as a drop-in replacement and "
                      "see https://pytorch.org/docs/main/nn.html#torch.nn.NLLLoss for more details.", FutureWarning,
                      stacklevel=2)
        super().__init__(weight, size_average, ignore_index, reduce, reduction)


def _optional_tensor(value, name, what):
    return None if value is None else as_tensor(value, name, what)


def _weight_and_reduction(weight, size_average, reduce, reduction, name):
    """A class loss module's ``weight`` (a tensor or None) and reduction; a string as the first
    argument is gt's positional ``reduction``."""
    if isinstance(weight, str):
        weight, reduction = None, weight
    return (None if weight is None else as_tensor(weight, name, "weight"),
            _legacy_reduction(size_average, reduce, reduction))


class _Loss(Module):
    """A loss function of (input, target) with only ``reduction`` to set, as a module."""

    function = None

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = _reduction_of(size_average, reduce, reduction)

    def forward(self, input, target):
        return type(self).function(input, target, reduction=self.reduction)


def _reduction_of(size_average, reduce, reduction):
    """torch's order of the arguments (``size_average``, ``reduce``, ``reduction``), where gt's
    own took ``reduction`` first: a string in ``size_average``'s place is the reduction."""
    if isinstance(size_average, str):
        size_average, reduction = None, size_average
    return _legacy_reduction(size_average, reduce, reduction)


class MSELoss(_Loss):
    """``F.mse_loss(input, target)`` as a module (shapes must match exactly)."""

    function = staticmethod(F.mse_loss)


class BCELoss(Module):
    """``F.binary_cross_entropy(probabilities, target)`` as a module (``weight`` a buffer, as torch's)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.register_buffer("weight", _optional_tensor(weight, "BCELoss", "weight"))
        self.reduction = _reduction_of(size_average, reduce, reduction)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(Module):
    """``F.binary_cross_entropy_with_logits(logits, target)`` as a module (``weight`` and
    ``pos_weight`` buffers: in the state dict and moved by ``.to()``, as torch's)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        super().__init__()
        if isinstance(size_average, str) and reduce is not None and not isinstance(reduce, bool):
            reduce, pos_weight = None, reduce         # gt's own order: (weight, reduction, pos_weight)
        self.register_buffer("weight", _optional_tensor(weight, "BCEWithLogitsLoss", "weight"))
        self.register_buffer("pos_weight", _optional_tensor(pos_weight, "BCEWithLogitsLoss", "pos_weight"))
        self.reduction = _reduction_of(size_average, reduce, reduction)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class L1Loss(_Loss):
    """``F.l1_loss(input, target)`` as a module (shapes must match exactly)."""

    function = staticmethod(F.l1_loss)
