"""ASGD: stochastic gradient descent with a decaying step and a running average of the iterates."""

from gt.tensor import zeros_like
from gt.optim.options import TorchOptimizer, check, check_numbers, float32


class ASGD(TorchOptimizer):
    """torch's averaged SGD: ``p *= 1 - lambd * eta``, ``p -= eta * g``, then the average
    ``ax`` follows ``p`` (``ax += mu * (p - ax)``; a copy while ``mu == 1``), with
    ``eta = lr / (1 + lambd * lr * step) ** alpha`` and ``mu = 1 / max(1, step - t0)``.

    State as torch's: ``step``, ``eta``, ``mu`` (floats rounded to float32 as torch's float32 0-d
    tensors are; gt stores Python floats), ``ax``: the averaged parameters, read with
    ``opt.state[p]['ax']``. ``weight_decay`` adds ``weight_decay * p`` to the gradient;
    ``maximize`` ascends. ``differentiable``, ``capturable`` are accepted only at
    False (``foreach`` takes any value: torch's kernel choices, the same arithmetic).

        >>> opt = gt.optim.ASGD(model.parameters(), lr=1e-2, t0=100)
    """

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        check_numbers(type(self).__name__, lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay)
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["eta"] = float32(group["lr"])
        state["mu"] = 1.0
        state["ax"] = zeros_like(p)

    def _update(self, p, grad, state, group):
        lr, lambd = group["lr"], group["lambd"]
        grad = self._decayed(p, grad, group)
        state["step"] += 1
        eta, ax = state["eta"], state["ax"]
        p.mul_(1 - lambd * eta)
        p.add_(grad, alpha=-eta)
        if state["mu"] != 1:
            ax.add_((p - ax).mul_(state["mu"]))
        else:
            ax.copy_(p)
        step = state["step"]
        state["eta"] = float32(lr / ((1 + lambd * lr * step) ** group["alpha"]))
        state["mu"] = float32(1 / max(1, step - group["t0"]))
