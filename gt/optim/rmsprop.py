"""RMSprop: the gradient divided by a running root mean square of its recent values."""

from gt.tensor import zeros_like
from gt.optim.options import TorchOptimizer, check, check_numbers


class RMSprop(TorchOptimizer):
    """torch's RMSprop: ``v = alpha * v + (1 - alpha) * g**2``, ``p -= lr * g / (sqrt(v) + eps)``.

    ``centered=True`` divides by the running variance instead (``v - mean(g)**2``, ``grad_avg``);
    ``momentum > 0`` keeps a buffer ``buf = momentum * buf + g / (sqrt(v) + eps)`` and steps
    ``p -= lr * buf``; ``weight_decay`` adds ``weight_decay * p`` to the gradient; ``maximize``
    ascends. State as torch's: ``step``, ``square_avg``, ``momentum_buffer``, ``grad_avg``.
    ``capturable``, ``differentiable`` are accepted only at False
    (``foreach`` takes any value: torch's kernel choices, the same arithmetic).

        >>> opt = gt.optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.9)
        >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        check_numbers(type(self).__name__, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        check(0.0 <= momentum, f"Invalid momentum value: {momentum}")
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check(0.0 <= alpha, f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered, weight_decay=weight_decay,
                        capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["square_avg"] = zeros_like(p)
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_like(p)
        if group["centered"]:
            state["grad_avg"] = zeros_like(p)

    def _update(self, p, grad, state, group):
        # torch's order of operations (torch/optim/rmsprop.py, _single_tensor_rmsprop)
        grad = self._decayed(p, grad, group)
        alpha, eps, momentum = group["alpha"], group["eps"], group["momentum"]
        state["step"] += 1
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg.lerp_(grad, 1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg.add_(eps)
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf.mul_(momentum).addcdiv_(grad, avg)
            p.add_(buf, alpha=-group["lr"])
        else:
            p.addcdiv_(grad, avg, value=-group["lr"])
