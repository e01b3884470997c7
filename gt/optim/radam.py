"""RAdam: Adam with its early steps' variance rectified."""

from gt.tensor import zeros_like
from gt.optim.options import TorchOptimizer, check, check_betas, check_numbers


class RAdam(TorchOptimizer):
    """torch's RAdam: Adam's running means, with the adaptive step switched on only once the
    length of the approximated simple moving average ``rho_t`` passes 5, and rectified by
    ``r_t``; before that, ``p -= lr * m / (1 - beta1**step)`` (momentum SGD).

    State as torch's: ``step``, ``exp_avg``, ``exp_avg_sq``. ``weight_decay`` is L2, or with
    ``decoupled_weight_decay=True`` a decay ``p *= 1 - lr * weight_decay`` (RAdamW);
    ``maximize`` ascends. ``capturable``, ``differentiable`` are accepted only at
    False (``foreach`` takes any value: torch's kernel choices, the same arithmetic).

        >>> opt = gt.optim.RAdam(model.parameters(), lr=1e-3)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        check_numbers(type(self).__name__, lr=lr, eps=eps, weight_decay=weight_decay)
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        check_betas(betas)
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)

    def _update(self, p, grad, state, group):
        lr, (beta1, beta2) = group["lr"], group["betas"]
        grad = self._decayed(p, grad, group)
        state["step"] += 1
        step = state["step"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        bias_corrected_exp_avg = exp_avg / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive_lr = (bias_correction2 ** 0.5) / exp_avg_sq.sqrt().add_(group["eps"])
            p.add_(bias_corrected_exp_avg * lr * adaptive_lr * rect, alpha=-1.0)
        else:
            p.add_(bias_corrected_exp_avg * lr, alpha=-1.0)
