"""Stochastic weight averaging and EMA of a model's weights: torch's ``torch.optim.swa_utils``.

``AveragedModel`` (a running average of a model, itself a Module), ``update_bn`` (BatchNorm
statistics recomputed over a loader), ``SWALR`` (the lr schedule, defined in gt/optim/swa_lr.py)
and the averaging functions. The modules cannot live in gt.optim, which sees tensors, never modules;
the package face (gt/__init__.py) makes this module importable by torch's path as
``gt.optim.swa_utils``.

    >>> swa_model = gt.optim.swa_utils.AveragedModel(model)
    >>> ema_model = gt.optim.swa_utils.AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))
    >>> swa_model.update_parameters(model)                        # after each epoch (or step)
    >>> gt.optim.swa_utils.update_bn(loader, swa_model)           # at the end

Where gt differs from torch: gt computes on the tensors' own place, so ``device`` may only name
where the model already is (torch moves the copy there). torch on CPU averages each tensor by
``avg + (model - avg) / (n + 1)``, and so does gt (torch's GPU path uses a fused lerp, equal up to
rounding). ``get_swa_multi_avg_fn`` on integer tensors averages with truncation here, where torch
raises (an integer ``addcdiv``).
"""

import copy

from gt import autograd, dtypes
from gt.backend import B
from gt.nn.batchnorm import _BatchNorm
from gt.nn.module import Module
from gt.nn.norms import _InstanceNorm
from gt.optim.swa_lr import SWALR
from gt.tensor import Tensor

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn",
           "get_ema_avg_fn", "get_swa_avg_fn"]


def _check_decay(decay):
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay <= 1.0:
        raise ValueError(f"Invalid decay value {decay!r} provided. Please provide a value in [0,1] range.")


def get_ema_multi_avg_fn(decay=0.999):
    """An in-place ``multi_avg_fn(averaged_list, current_list, num_averaged)`` for an exponential
    moving average: ``ema = decay * ema + (1 - decay) * current``, by ``lerp_`` as torch's (its CPU
    kernel's bits).

        >>> ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.99))
    """
    _check_decay(decay)

    @autograd.no_grad()
    def ema_update(ema_param_list, current_param_list, _):
        if ema_param_list[0].dtype.is_floating_point:
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                p_ema.lerp_(p_model, 1 - decay)
        else:
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                p_ema.copy_(p_ema * decay + p_model * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn():
    """An in-place ``multi_avg_fn(averaged_list, current_list, num_averaged)`` for the equally
    weighted average: ``avg += (current - avg) / (num_averaged + 1)``. A tensor ``num_averaged``
    gives a float32 weight, as torch's (so float64 tensors see a float32-rounded weight there)."""

    @autograd.no_grad()
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        if averaged_param_list[0].dtype.is_floating_point:
            weight = 1 / (num_averaged + 1)
            weight = weight.item() if isinstance(weight, Tensor) else weight
            for p_avg, p_model in zip(averaged_param_list, current_param_list):
                p_avg.lerp_(p_model, weight)
        else:
            for p_avg, p_model in zip(averaged_param_list, current_param_list):
                p_avg.copy_(p_avg + (p_model - p_avg) / (num_averaged + 1))

    return swa_update


def get_ema_avg_fn(decay=0.999):
    """An ``avg_fn(averaged, current, num_averaged) -> new averaged`` for an exponential moving
    average: ``decay * averaged + (1 - decay) * current``."""
    _check_decay(decay)

    @autograd.no_grad()
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn():
    """An ``avg_fn(averaged, current, num_averaged) -> new averaged`` for the equally weighted
    average: ``averaged + (current - averaged) / (num_averaged + 1)``."""

    @autograd.no_grad()
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


def _check_device(device, where, tensors):
    """gt cannot move a model: ``device`` may only name the place its tensors already are."""
    if device is None:
        return
    here = {t.device for t in tensors} or {"cpu"}
    name = str(device)
    if not any(d == name or d.split(":")[0] == name for d in here):
        raise NotImplementedError(f"{where}: device={name!r}, but the tensors are on {sorted(here)} and gt does "
                                  "not move them; pass device=None (gt computes where the tensors are)")


def _by_dtype(pairs):
    """(averaged, current) pairs grouped by the averaged tensor's dtype, in first-seen order (torch's
    groups by device and dtype; gt has one device)."""
    groups = {}
    for pair in pairs:
        groups.setdefault(pair[0].dtype, []).append(pair)
    return list(groups.values())


class AveragedModel(Module):
    """A copy of ``model`` whose parameters are the running average of ``model``'s over the calls
    of ``update_parameters(model)`` (stochastic weight averaging; EMA with ``get_ema_multi_avg_fn``).

    ``avg_fn(averaged, current, num_averaged) -> tensor`` or ``multi_avg_fn(averaged_list,
    current_list, num_averaged)`` (in place; at most one of the two) replaces the default equal
    average. ``use_buffers=True`` averages the buffers too; otherwise they are copied from
    ``model``. The first update copies ``model``'s values. ``forward`` is the copy's. The state
    dict holds ``n_averaged`` (an int64 count) and the copy's entries under ``module.``, as
    torch's, so either loads the other's.

        >>> swa_model = AveragedModel(model)
        >>> swa_model.update_parameters(model); swa_model(x).shape == model(x).shape
        True
    """

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel: expected model to be a gt.nn.Module, got {type(model).__name__}")
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        _check_device(device, "AveragedModel", list(model.parameters()) + list(model.buffers()))
        self.module = copy.deepcopy(model)
        self.register_buffer("n_averaged", Tensor._wrap(B.zeros((), dtypes.int64)))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model):
        """Fold ``model``'s current parameters (and buffers, with ``use_buffers``) into the average."""
        if self.use_buffers:
            mine = list(self.module.parameters()) + list(self.module.buffers())
            theirs = list(model.parameters()) + list(model.buffers())
        else:
            mine, theirs = list(self.parameters()), list(model.parameters())
        pairs = [(a, m.detach()) for a, m in zip(mine, theirs)]
        if not self.use_buffers:
            own, other = list(self.module.buffers()), list(model.buffers())
            if len(own) != len(other):
                raise ValueError(f"AveragedModel.update_parameters: the model has {len(other)} buffers, the "
                                 f"averaged copy {len(own)}: pass the model this AveragedModel was made from")
        with autograd.no_grad():
            if int(self.n_averaged.item()) == 0:
                for p_avg, p_model in pairs:
                    p_avg.copy_(p_model)
            elif self.multi_avg_fn is not None:
                for group in _by_dtype(pairs):
                    self.multi_avg_fn([a for a, _ in group], [m for _, m in group], self.n_averaged)
            else:
                avg_fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
                for p_avg, p_model in pairs:
                    p_avg.copy_(avg_fn(p_avg.detach(), p_model, self.n_averaged))
            if not self.use_buffers:
                for b_swa, b_model in zip(own, other):
                    b_swa.copy_(b_model.detach())
            self.n_averaged.add_(1)


def update_bn(loader, model, device=None):
    """Recompute the running statistics of every BatchNorm layer of ``model`` by one pass over
    ``loader`` (a batch is a tensor, or a list/tuple whose first element is the input), as a
    cumulative average (momentum None during the pass), in training mode without recording
    gradients. Each layer's momentum and the model's mode are restored afterwards. A model
    without BatchNorm layers is left as it is (the loader is not read).

        >>> gt.optim.swa_utils.update_bn(train_loader, swa_model)
    """
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and not isinstance(m, _InstanceNorm)]
    if not layers:
        return
    momenta = [m.momentum for m in layers]
    was_training = model.training
    with autograd.no_grad():
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None
        model.train()
        try:
            for batch in loader:
                if isinstance(batch, (list, tuple)):
                    batch = batch[0]
                if device is not None:
                    _check_device(device, "update_bn", [batch])
                model(batch)
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum
            model.train(was_training)
