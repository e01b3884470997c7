"""``SWALR``: the learning-rate schedule of stochastic weight averaging (torch's
``torch.optim.swa_utils.SWALR``; the package face makes it importable as ``gt.optim.swa_utils.SWALR``,
beside ``AveragedModel`` and ``update_bn``, which are modules and live in gt/nn/swa_utils.py)."""

import math

from gt.optim.lr_scheduler_base import _Chainable, _check_optimizer, _format_param


class SWALR(_Chainable):
    """Anneals each group's lr from its current value to ``swa_lr`` in ``anneal_epochs`` steps
    (``anneal_strategy``: ``"cos"`` or ``"linear"``), then holds it at ``swa_lr``.

    ``swa_lr``: one value for every group, or a list with one per group (stored as
    ``group["swa_lr"]``). Computed as torch's (each step works back from the group's current lr
    to the lr the annealing started from), so every value equals torch's to the bit, and an lr set
    by another schedule before carries on from there.

        >>> swa_sched = gt.optim.swa_utils.SWALR(opt, swa_lr=0.05, anneal_epochs=5)
        >>> for epoch in range(n):
        ...     train_one_epoch(); swa_model.update_parameters(model); swa_sched.step()
    """

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        _check_optimizer("SWALR", optimizer)
        swa_lrs = _format_param("SWALR", "swa_lr", optimizer, swa_lr)
        for value, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = value
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy!r}")
        self._set_anneal_func(anneal_strategy)
        if isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be an int equal or greater than 0, got {anneal_epochs!r}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def _set_anneal_func(self, anneal_strategy):
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal

    def get_lr(self):
        """The lrs of the step ``step()`` moves to, from the groups' current lrs (call inside ``step()``)."""
        self._warn_outside_step()
        step = self._step_count - 1          # 0 in the step the constructor makes
        if self.anneal_epochs == 0:
            step = max(1, step)
        groups = self.optimizer.param_groups
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev_lrs = [self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha) for group in groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [group["swa_lr"] * alpha + lr * (1 - alpha) for group, lr in zip(groups, prev_lrs)]

    def state_dict(self):
        """Everything but the optimizer and the annealing function (torch's keys)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict):
        """Restore ``state_dict()``'s values, and the annealing function they name."""
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
