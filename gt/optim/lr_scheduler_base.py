"""The base class of gt's learning-rate schedules, and of torch's chainable ones.

``LRScheduler`` holds the closed forms' machinery (lr_scheduler.py: StepLR, CosineAnnealingLR,
LambdaLR); ``_Chainable`` adds torch's chainable stepping for the schedules of
lr_schedulers_extra.py and lr_schedulers_cyclic.py.
"""

import warnings

from gt.optim.optimizer import Optimizer

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being deprecated where possible. "
    "Please use `scheduler.step()` to step the scheduler. During the deprecation, if epoch is different "
    "from None, the closed form is used instead of the new chainable form, where available.")


def _check_optimizer(name, optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{name} needs a gt.optim.Optimizer, got {type(optimizer).__name__}")


def _format_param(sched, name, optimizer, param):
    """One value per param group: ``param`` itself if a list/tuple of the right length, else repeated."""
    n = len(optimizer.param_groups)
    if isinstance(param, (list, tuple)):
        if len(param) != n:
            raise ValueError(f"{sched}: {name} must have the same length as optimizer.param_groups. "
                             f"{name} has {len(param)} values, param_groups has {n}.")
        return list(param)
    return [param] * n


class LRScheduler:
    """Base class: subclasses write ``_lr(base_lr, epoch, group_index)`` (a closed form), or override
    ``get_lr()`` (one lr per group, as torch's subclasses do)."""

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs a gt.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"param group {i} has no 'initial_lr': resuming at last_epoch={last_epoch} needs "
                               "the optimizer state of the run that created the scheduler")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def _lr(self, base_lr, epoch, index):
        raise NotImplementedError

    def get_lr(self):
        """The learning rates of the current epoch, one per parameter group."""
        return [self._lr(base, self.last_epoch, i) for i, base in enumerate(self.base_lrs)]

    def step(self):
        """Advance one epoch and set every group's lr."""
        self.last_epoch += 1
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self):
        """The learning rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer (and functions, which do not pickle reliably)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


class _LRScheduler(LRScheduler):
    """torch's old name of ``LRScheduler`` (a subclass, as in torch, so its ``__name__`` differs)."""


class _Chainable(LRScheduler):
    """Base of torch's chainable schedules: ``get_lr()`` reads the groups' current lrs.

    ``_is_initial`` is true during the step the constructor makes (torch's ``_initial_step``);
    ``_step_count`` counts steps, as torch's.
    """

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(type(self).__name__, optimizer)
        self._in_step = False
        self._step_count = 0
        self._is_initial = True
        try:
            super().__init__(optimizer, last_epoch)
        finally:
            self._is_initial = False

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def _current(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def _warn_outside_step(self):
        # the chainable get_lr() computes the NEXT lr from the current one: read get_last_lr() instead
        if not self._in_step:
            warnings.warn("To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
                          UserWarning, stacklevel=3)

    def step(self, epoch=None):
        """Advance one epoch and set every group's lr (``epoch``: deprecated, as in torch)."""
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch=None):
        self._in_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                values = self._get_closed_form_lr() if hasattr(self, "_get_closed_form_lr") else self.get_lr()
        finally:
            self._in_step = False
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = self._current()
