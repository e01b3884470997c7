"""Adadelta: steps scaled by the ratio of running RMS of past updates to that of the gradients."""

from gt.tensor import zeros_like
from gt.optim.options import TorchOptimizer, check, check_numbers


class Adadelta(TorchOptimizer):
    """torch's Adadelta: ``v = rho * v + (1 - rho) * g**2``,
    ``delta = sqrt(u + eps) / sqrt(v + eps) * g``, ``u = rho * u + (1 - rho) * delta**2``,
    ``p -= lr * delta``.

    State as torch's: ``step``, ``square_avg`` (``v``), ``acc_delta`` (``u``). ``weight_decay``
    adds ``weight_decay * p`` to the gradient; ``maximize`` ascends. ``capturable``,
    ``differentiable`` are accepted only at False (``foreach`` takes any value: torch's kernel
    choices, the same arithmetic).

        >>> opt = gt.optim.Adadelta(model.parameters())   # lr=1.0, rho=0.9, eps=1e-6
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        check_numbers(type(self).__name__, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 <= rho <= 1.0, f"Invalid rho value: {rho}")
        check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize, capturable=capturable,
                        foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["square_avg"] = zeros_like(p)
        state["acc_delta"] = zeros_like(p)

    def _update(self, p, grad, state, group):
        rho, eps = group["rho"], group["eps"]
        state["step"] += 1
        grad = self._decayed(p, grad, group)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        std = (square_avg + eps).sqrt_()
        delta = (acc_delta + eps).sqrt_()
        delta.div_(std).mul_(grad)
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        p.add_(delta, alpha=-group["lr"])
