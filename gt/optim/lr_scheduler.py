"""Learning-rate schedules: StepLR, CosineAnnealingLR, LambdaLR, and torch's others re-exported.

Like torch 2.13: creating a scheduler records ``initial_lr`` in each group and applies epoch 0;
call ``scheduler.step()`` once per epoch (or per step), after ``optimizer.step()``.
StepLR and CosineAnnealingLR are torch's chainable forms: each step updates the lr the group has
now (``group['lr'] * gamma``), so an lr changed by hand carries on from its new value, several
schedulers compose (``ChainedScheduler``, ``SequentialLR``), and every value equals torch's bit
for bit. ``step(epoch)`` (deprecated in torch, and warned about the same way) uses the closed form.
torch's other schedules (MultiStepLR, OneCycleLR, ReduceLROnPlateau, SequentialLR, ...) are
defined in lr_schedulers_extra.py and re-exported here.
"""

import math
import numbers

from gt.optim.lr_scheduler_base import _Chainable, _check_optimizer, _lambdas, _LambdaState

__all__ = ["LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
           "SequentialLR", "CosineAnnealingLR", "ChainedScheduler", "ReduceLROnPlateau", "CyclicLR",
           "CosineAnnealingWarmRestarts", "OneCycleLR", "PolynomialLR", "LRScheduler"]   # torch's


def _positive_number(sched, name, value):
    # torch takes any positive number (a float T_max such as steps / 2 is common); zero, negatives,
    # nan and inf give torch a ZeroDivisionError or a meaningless schedule: refused here
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 < value < math.inf:
        raise ValueError(f"{sched}: {name} must be a positive number, got {value!r}")


class StepLR(_Chainable):
    """Multiplies the lr by ``gamma`` every ``step_size`` epochs:
    ``lr = initial_lr * gamma ** (epoch // step_size)`` when nothing else changes it.

        >>> sched = gt.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)

    Differs from torch: a ``step_size`` that is not a positive number is refused here (torch fails
    later, dividing by it, or steps on a meaningless schedule).
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _positive_number("StepLR", "step_size", step_size)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The lrs of the epoch ``step()`` moves to, from the groups' current lrs (call inside ``step()``)."""
        self._warn_outside_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class CosineAnnealingLR(_Chainable):
    """Cosine from ``initial_lr`` down to ``eta_min`` in ``T_max`` epochs (and back up, if stepped on):
    ``lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`` when nothing else
    changes it, computed as torch does, by the ratio of this epoch's cosine term to the last one's.

        >>> sched = gt.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)

    Differs from torch: a ``T_max`` that is not a positive number is refused here.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        _positive_number("CosineAnnealingLR", "T_max", T_max)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The lrs of the epoch ``step()`` moves to, from the groups' current lrs (call inside ``step()``)."""
        self._warn_outside_step()
        epoch, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current()
        if self._step_count == 1 and epoch > 0:
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(epoch * math.pi / t_max)) / 2
                    for base_lr in self.base_lrs]
        if (epoch - 1 - t_max) % (2 * t_max) == 0:
            # the cosine term of the last epoch was 0: the ratio below would divide by it
            return [group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups)]
        return [(1 + math.cos(math.pi * epoch / t_max)) / (1 + math.cos(math.pi * (epoch - 1) / t_max))
                * (group["lr"] - eta_min) + eta_min for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class LambdaLR(_LambdaState, _Chainable):
    """``lr = initial_lr * lr_lambda(epoch)``; one function, or a list with one per group.

        >>> sched = gt.optim.lr_scheduler.LambdaLR(opt, lambda epoch: min(1.0, (epoch + 1) / 100))

    ``state_dict()`` holds, as torch's, ``'lr_lambdas'``: None for a function, the ``__dict__`` of a
    callable object (restored into the scheduler's own objects by ``load_state_dict``).
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer("LambdaLR", optimizer)
        self.lr_lambdas = _lambdas("LambdaLR", optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """``initial_lr * lr_lambda(last_epoch)`` for each group (call inside ``step()``)."""
        self._warn_outside_step()
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]


from gt.optim.lr_schedulers_extra import *  # noqa: E402,F401,F403  (torch's other schedules)
