"""Adamax: Adam with the infinity norm of past gradients in place of their RMS."""

from gt.tensor import zeros_like
from gt.optim.options import TorchOptimizer, check, check_betas, check_numbers


class Adamax(TorchOptimizer):
    """torch's Adamax: ``m = lerp(m, g, 1 - beta1)``, ``u = max(beta2 * u, |g| + eps)``,
    ``p -= lr / (1 - beta1**step) * m / u``.

    State as torch's: ``step``, ``exp_avg`` (``m``), ``exp_inf`` (``u``). ``weight_decay`` adds
    ``weight_decay * p`` to the gradient; ``maximize`` ascends. ``differentiable``,
    ``capturable`` are accepted only at False (``foreach`` takes any value: torch's kernel
    choices, the same arithmetic).

        >>> opt = gt.optim.Adamax(model.parameters(), lr=2e-3)
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        check_numbers(type(self).__name__, lr=lr, eps=eps, weight_decay=weight_decay)
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        check_betas(betas)
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["exp_avg"] = zeros_like(p)
        state["exp_inf"] = zeros_like(p)

    def _update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        grad = self._decayed(p, grad, group)
        state["step"] += 1
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_inf.mul_(beta2)
        exp_inf.copy_(exp_inf.maximum(grad.abs().add_(group["eps"])))
        clr = group["lr"] / (1 - beta1 ** state["step"])
        p.addcdiv_(exp_avg, exp_inf, value=-clr)
