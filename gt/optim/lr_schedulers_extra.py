"""torch's other learning-rate schedules, in torch's chainable form.

As StepLR and CosineAnnealingLR (``lr_scheduler.py``), most of these multiply the lr the group
has now (``group['lr'] * gamma``), as torch's do: several of them then compose
(``ChainedScheduler``, ``SequentialLR``), and every value equals torch's bit for bit, where a
closed form would differ in the last digits. ``step(epoch)`` (deprecated in torch, and warned about the
same way) uses the closed form where torch has one.

    >>> warmup = gt.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5)
    >>> decay = gt.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    >>> sched = gt.optim.lr_scheduler.SequentialLR(opt, [warmup, decay], milestones=[5])
"""

from bisect import bisect_right
from collections import Counter

from gt.optim.lr_scheduler_base import (LRScheduler, _Chainable, _check_optimizer, _lambdas, _LambdaState,
                                       _LRScheduler)
from gt.optim.lr_scheduler_plateau import ReduceLROnPlateau
from gt.optim.lr_schedulers_cyclic import CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR

__all__ = ["LRScheduler", "_LRScheduler", "MultiplicativeLR", "MultiStepLR", "ConstantLR", "LinearLR",
           "ExponentialLR", "PolynomialLR", "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau",
           "CyclicLR", "OneCycleLR", "CosineAnnealingWarmRestarts"]


class MultiplicativeLR(_LambdaState, _Chainable):
    """Each epoch multiplies the lr by ``lr_lambda(epoch)`` (one function, or one per group).

        >>> sched = gt.optim.lr_scheduler.MultiplicativeLR(opt, lambda epoch: 0.95)
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer("MultiplicativeLR", optimizer)
        self.lr_lambdas = _lambdas("MultiplicativeLR", optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:
            return self._current()
        return [group["lr"] * fn(self.last_epoch) for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups)]


class MultiStepLR(_Chainable):
    """Multiplies the lr by ``gamma`` at each milestone (a milestone listed twice: by ``gamma ** 2``).

        >>> sched = gt.optim.lr_scheduler.MultiStepLR(opt, milestones=[30, 80], gamma=0.1)
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        try:
            self.milestones = Counter(milestones)
        except TypeError:
            raise TypeError(f"MultiStepLR: milestones must be an iterable of epoch numbers, got {milestones!r}") from None
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch not in self.milestones:
            return self._current()
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch] for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch) for base_lr in self.base_lrs]


class ConstantLR(_Chainable):
    """``lr = initial_lr * factor`` for the first ``total_iters`` epochs, then ``initial_lr``.

        >>> sched = gt.optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=4)
    """

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if factor > 1.0 or factor < 0:
            raise ValueError(f"ConstantLR: multiplicative factor expected to be between 0 and 1, got {factor!r}")
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return self._current()
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for base_lr in self.base_lrs]


class LinearLR(_Chainable):
    """The factor on ``initial_lr`` goes linearly from ``start_factor`` to ``end_factor`` in ``total_iters`` epochs.

        >>> sched = gt.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=10)
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("LinearLR: starting multiplicative factor expected to be greater than 0 and less or "
                             f"equal to 1, got {start_factor!r}")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError(f"LinearLR: ending multiplicative factor expected to be between 0 and 1, got {end_factor!r}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current()
        delta = self.end_factor - self.start_factor
        factor = 1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta)
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters) for base_lr in self.base_lrs]


class ExponentialLR(_Chainable):
    """Multiplies the lr by ``gamma`` every epoch.

        >>> sched = gt.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    """

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:
            return self._current()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class PolynomialLR(_Chainable):
    """``lr = initial_lr * (1 - min(epoch, total_iters) / total_iters) ** power``.

        >>> sched = gt.optim.lr_scheduler.PolynomialLR(opt, total_iters=4, power=2.0)
    """

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current()
        n = self.total_iters
        decay = ((1.0 - self.last_epoch / n) / (1.0 - (self.last_epoch - 1) / n)) ** self.power
        return [group["lr"] * decay for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
                for base_lr in self.base_lrs]


def _check_schedulers(name, optimizer, schedulers, what="scheduler"):
    if len(schedulers) < 1:
        raise ValueError(f"{name} expects at least one {what}, but got no scheduler.")
    for i, sched in enumerate(schedulers):
        if not hasattr(sched, "optimizer"):
            raise TypeError(f"{name} at index {i} should have `optimizer` as its attribute, got {type(sched).__name__}")
        if isinstance(sched, ReduceLROnPlateau):
            raise ValueError(f"{name} does not support `ReduceLROnPlateau` scheduler as it requires additional kwargs "
                             f"to be specified when calling `step`, but got one at index {i} in the given schedulers "
                             "sequence.")
        if sched.optimizer is not optimizer:
            raise ValueError(f"{name} expects all schedulers to belong to the same optimizer, but got scheduler "
                             f"{type(sched).__name__} at index {i} with a different optimizer.")


def _nested_state(sched):
    state = {k: v for k, v in sched.__dict__.items() if k not in ("optimizer", "_schedulers")}
    state["_schedulers"] = [s.state_dict() for s in sched._schedulers]
    return state


def _load_nested_state(sched, state_dict):
    state = dict(state_dict)
    saved = state.pop("_schedulers")
    sched.__dict__.update(state)
    for s, s_state in zip(sched._schedulers, saved):
        s.load_state_dict(s_state)


class SequentialLR(LRScheduler):
    """Runs ``schedulers[i]`` from epoch ``milestones[i - 1]`` on; each starts afresh (its epoch 0) there.

        >>> sched = gt.optim.lr_scheduler.SequentialLR(
        ...     opt, [LinearLR(opt, 0.1, total_iters=5), CosineAnnealingLR(opt, T_max=95)], milestones=[5])
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_optimizer("SequentialLR", optimizer)
        _check_schedulers("SequentialLR", optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError("SequentialLR expects number of schedulers provided to be one more than the number of "
                             f"milestone points, but got number of schedulers {len(schedulers)} and the number of "
                             f"milestones to be equal to {len(milestones)}")
        self._schedulers, self._milestones = schedulers, milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self.recursive_undo()   # the schedulers' constructors each stepped once: take that back
        first = self._schedulers[bisect_right(self._milestones, 0)]
        _initial_step(first)
        self._last_lr = first.get_last_lr()

    def recursive_undo(self, sched=None):
        """Take one epoch back from every scheduler (nested ones too)."""
        scheds = self if sched is None else sched
        if hasattr(scheds, "_schedulers"):
            for s in scheds._schedulers:
                self.recursive_undo(s)
        elif hasattr(scheds, "last_epoch"):
            scheds.last_epoch -= 1

    def step(self):
        """Advance one epoch: the scheduler whose turn it is steps (or restarts, at its milestone)."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        sched = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            _restart(sched)
        else:
            sched.step()
        self._last_lr = sched.get_last_lr()

    def state_dict(self):
        """Its own state and each scheduler's, under ``'_schedulers'``."""
        return _nested_state(self)

    def load_state_dict(self, state_dict):
        _load_nested_state(self, state_dict)


def _initial_step(sched):
    if isinstance(sched, LRScheduler):
        sched._initial_step()
    else:
        sched.step()


def _restart(sched):
    """torch's ``_update_lr(0)``: epoch 0 in the closed form where there is one."""
    if isinstance(sched, LRScheduler) and not hasattr(sched, "_schedulers"):
        sched._update_lr(0)
    else:   # a nested SequentialLR/ChainedScheduler (torch's raises there): start it again from epoch -1
        sched.last_epoch = -1
        sched.step()


class ChainedScheduler(LRScheduler):
    """Steps every scheduler in turn at each ``step()``: their (chainable) factors multiply.

        >>> sched = gt.optim.lr_scheduler.ChainedScheduler([ConstantLR(opt, 0.1, 2), ExponentialLR(opt, 0.9)])
    """

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if len(schedulers) < 1:
            raise ValueError("ChainedScheduler expects at least one scheduler to be chained, but got no scheduler.")
        optimizer = optimizer or getattr(schedulers[0], "optimizer", None)
        _check_optimizer("ChainedScheduler", optimizer)
        _check_schedulers("ChainedScheduler", optimizer, schedulers)
        self._schedulers, self.optimizer = schedulers, optimizer
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self):
        """Step every scheduler, in order."""
        for sched in self._schedulers:
            sched.step()
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """Its own state and each scheduler's, under ``'_schedulers'``."""
        return _nested_state(self)

    def load_state_dict(self, state_dict):
        _load_nested_state(self, state_dict)

