"""Learning-rate schedules: each sets ``group['lr']`` from the group's initial lr and the epoch count.

Like torch: creating a scheduler records ``initial_lr`` in each group and applies epoch 0;
call ``scheduler.step()`` once per epoch (or per step), after ``optimizer.step()``.
Closed forms: the lr depends only on the epoch count, never on the lr of the step before.
torch's other schedules (MultiStepLR, OneCycleLR, ReduceLROnPlateau, SequentialLR, ...), in torch's
chainable forms, are defined in lr_schedulers_extra.py and re-exported here.
"""

import math

from gt.optim.lr_scheduler_base import LRScheduler
from gt.optim.optimizer import Optimizer


class StepLR(LRScheduler):
    """``lr = initial_lr * gamma ** (epoch // step_size)``.

        >>> sched = gt.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if not isinstance(step_size, int) or isinstance(step_size, bool) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, epoch, index):
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``.

        >>> sched = gt.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if not isinstance(T_max, int) or isinstance(T_max, bool) or T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, epoch, index):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LambdaLR(LRScheduler):
    """``lr = initial_lr * lr_lambda(epoch)``; one function, or a list with one per group.

        >>> sched = gt.optim.lr_scheduler.LambdaLR(opt, lambda epoch: min(1.0, (epoch + 1) / 100))
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 0
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"LambdaLR: expected {n} lr_lambdas (one per param group), got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        if not all(callable(f) for f in self.lr_lambdas):
            raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch, got {lr_lambda!r}")
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, epoch, index):
        return base_lr * self.lr_lambdas[index](epoch)


from gt.optim.lr_schedulers_extra import *  # noqa: E402,F401,F403  (torch's other schedules)
