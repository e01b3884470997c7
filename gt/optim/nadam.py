"""NAdam: Adam with Nesterov momentum and a momentum schedule."""

from gt.tensor import zeros_like
from gt.optim.options import TorchOptimizer, check, check_betas, check_numbers, float32


class NAdam(TorchOptimizer):
    """torch's NAdam: Adam whose step mixes the gradient and the running mean with the
    momentum schedule ``mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``.

    State as torch's: ``step``, ``mu_product`` (the product of the ``mu_t``, a float rounded to
    float32 at each step as torch's float32 0-d tensor is; gt stores it as a Python float),
    ``exp_avg``, ``exp_avg_sq``. ``weight_decay`` is L2 (added to the gradient), or with
    ``decoupled_weight_decay=True`` a decay ``p *= 1 - lr * weight_decay`` (NAdamW);
    ``maximize`` ascends. ``capturable``, ``differentiable`` are accepted only at
    False (``foreach`` takes any value: torch's kernel choices, the same arithmetic).

        >>> opt = gt.optim.NAdam(model.parameters(), lr=2e-3)
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        check_numbers(type(self).__name__, lr=lr, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay)
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        check_betas(betas)
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check(0.0 <= momentum_decay, f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["mu_product"] = 1.0
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)

    def _update(self, p, grad, state, group):
        lr, (beta1, beta2) = group["lr"], group["betas"]
        grad = self._decayed(p, grad, group)
        state["step"] += 1
        step = state["step"]
        bias_correction2 = 1 - beta2 ** step
        momentum_decay = group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        # torch's float32 ``mu_product *= mu``: mu is cast to float32, the product rounded to float32
        mu_product = state["mu_product"] = float32(state["mu_product"] * float32(mu))
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (exp_avg_sq / bias_correction2).sqrt_().add_(group["eps"])
        mu_product_next = mu_product * mu_next
        p.addcdiv_(grad, denom, value=-lr * (1.0 - mu) / (1.0 - mu_product))
        p.addcdiv_(exp_avg, denom, value=(-lr * mu_next) / (1.0 - mu_product_next))
