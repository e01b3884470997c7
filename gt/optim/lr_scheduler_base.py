"""The base class of gt's learning-rate schedules: torch's ``LRScheduler``, with its chainable stepping.

``get_lr()`` may read the groups' current lrs, so the values are torch's to the bit and schedules
compose; ``step(epoch)`` (deprecated) takes ``_get_closed_form_lr()`` where a schedule has one. A
subclass written for torch (``get_lr``, ``_get_closed_form_lr``, ``_step_count``, ``_is_initial``,
``_get_lr_called_within_step``) works unchanged.
"""

import types
import warnings

from gt.optim.optimizer import Optimizer

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being deprecated where possible. "
    "Please use `scheduler.step()` to step the scheduler. During the deprecation, if epoch is different "
    "from None, the closed form is used instead of the new chainable form, where available.")

# torch's text: its users filter warnings by it
STEP_ORDER_WARNING = (
    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. In PyTorch 1.1.0 and later, you should "
    "call them in the opposite order: `optimizer.step()` before `lr_scheduler.step()`.  Failure to do this will "
    "result in PyTorch skipping the first value of the learning rate schedule. See more details at "
    "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate")


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


def _lambdas(name, optimizer, lr_lambda):
    n = len(optimizer.param_groups)
    if isinstance(lr_lambda, (list, tuple)):
        if len(lr_lambda) != n:
            raise ValueError(f"{name}: expected {n} lr_lambdas (one per param group), got {len(lr_lambda)}")
        lambdas = list(lr_lambda)
    else:
        lambdas = [lr_lambda] * n
    for fn in lambdas:
        if not callable(fn):
            raise TypeError(f"{name}: lr_lambda should be a function, but got {type(fn).__name__}")
    return lambdas


class LRScheduler:
    """Base class, torch's: a subclass overrides ``get_lr()`` (one lr per group; it may read the
    groups' current lrs, torch's chainable form) and optionally ``_get_closed_form_lr()`` (used by the
    deprecated ``step(epoch)``). gt's older hook still works: ``_lr(base_lr, epoch, group_index)``, a
    closed form, is what the default ``get_lr()`` calls.

    ``_is_initial`` is true during the step the constructor makes (torch's ``_initial_step``);
    ``_step_count`` counts steps and ``_get_lr_called_within_step`` is true inside ``step()``, as
    torch's (the three are in ``state_dict()`` under torch's names).
    """

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(type(self).__name__, optimizer)
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"param group {i} has no 'initial_lr': resuming at last_epoch={last_epoch} needs "
                               "the optimizer state of the run that created the scheduler")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._get_lr_called_within_step = False
        self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def _lr(self, base_lr, epoch, index):
        raise NotImplementedError(f"{type(self).__name__} must override get_lr() (or _lr())")

    def get_lr(self):
        """The learning rates of the epoch ``step()`` moves to, one per parameter group."""
        if type(self)._lr is LRScheduler._lr:
            raise NotImplementedError(f"{type(self).__name__} must override get_lr()")
        return [self._lr(base, self.last_epoch, i) for i, base in enumerate(self.base_lrs)]

    def _current(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def _warn_outside_step(self):
        # the chainable get_lr() computes the NEXT lr from the current one: read get_last_lr() instead
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
                          UserWarning, stacklevel=3)

    def step(self, epoch=None):
        """Advance one epoch and set every group's lr (``epoch``: deprecated, as in torch)."""
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(STEP_ORDER_WARNING, UserWarning, stacklevel=2)
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch=None):
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                values = self._get_closed_form_lr() if hasattr(self, "_get_closed_form_lr") else self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        self._set_lrs(values)

    def _set_lrs(self, values):
        values, groups = list(values), self.optimizer.param_groups
        if len(values) != len(groups):
            # torch's strict zip raises here too: a group added after the scheduler has no schedule
            raise ValueError(f"{type(self).__name__} computed {len(values)} learning rates for {len(groups)} "
                             "param groups (a group added to the optimizer after the scheduler was made?)")
        for group, lr in zip(groups, values):
            group["lr"] = lr
        self._last_lr = self._current()

    def get_last_lr(self):
        """The learning rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer, as torch's."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore ``state_dict()``'s values (torch's keys; an older gt's ``_in_step`` is dropped)."""
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "_in_step"})


class _LRScheduler(LRScheduler):
    """torch's old name of ``LRScheduler`` (a subclass, as in torch, so its ``__name__`` differs)."""


class _Chainable(LRScheduler):
    """gt's schedules in torch's chainable form (every one of lr_scheduler.py, lr_schedulers_extra.py,
    lr_schedulers_cyclic.py and swa_lr.py): ``get_lr()`` reads the groups' current lrs."""


class _LambdaState:
    """torch's ``state_dict()`` of a schedule of functions (LambdaLR, MultiplicativeLR): ``'lr_lambdas'``
    holds None for a function, a callable object's ``__dict__`` (functions do not pickle reliably)."""

    def state_dict(self):
        """Everything but the optimizer; functions as None, callable objects as their ``__dict__``."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        """Restore ``state_dict()`` (also one saved by an older gt, without ``'lr_lambdas'``)."""
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", None) or []
        super().load_state_dict(state)
        for fn, attrs in zip(self.lr_lambdas, saved):
            if attrs is not None:
                fn.__dict__.update(attrs)
