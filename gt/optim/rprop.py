"""Rprop: per-coordinate step sizes that grow while the gradient keeps its sign and shrink when it flips."""

from gt.tensor import full_like, where, zeros_like
from gt.optim.options import TorchOptimizer, check, check_numbers, check_pair


class Rprop(TorchOptimizer):
    """torch's Rprop: where ``g * prev > 0`` the step size grows by ``etas[1]``, where it is
    ``< 0`` it shrinks by ``etas[0]`` (and that coordinate's gradient counts as 0: no step, and
    no sign change next time); step sizes are clamped to ``step_sizes = (min, max)`` and start
    at ``lr``; ``p -= sign(g) * step_size``.

    State as torch's: ``step``, ``prev``, ``step_size``. ``maximize`` ascends.
    ``capturable``, ``differentiable`` are accepted only at False (``foreach`` takes any value:
    torch's kernel choices, the same arithmetic). Full-batch gradients only, as in torch: the
    method assumes the sign of the gradient means something.

        >>> opt = gt.optim.Rprop(model.parameters(), lr=1e-2)
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False, differentiable=False):
        check_numbers(type(self).__name__, lr=lr)
        check_pair("etas", etas)
        check_pair("step_sizes", step_sizes)
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 < etas[0] < 1.0 < etas[1], f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["prev"] = zeros_like(p)
        state["step_size"] = full_like(p, group["lr"])

    def _update(self, p, grad, state, group):
        (etaminus, etaplus), (step_size_min, step_size_max) = group["etas"], group["step_sizes"]
        grad = self._direction(grad, group)
        state["step"] += 1
        prev, step_size = state["prev"], state["step_size"]
        sign = (grad * prev).sign()
        flipped = sign < 0
        # torch's three masked writes: > 0 -> etaplus, < 0 -> etaminus, == 0 -> 1 (nan stays nan)
        factor = where(sign > 0, etaplus, where(flipped, etaminus, where(sign == 0, 1.0, sign)))
        step_size.mul_(factor).clamp_(step_size_min, step_size_max)
        grad = where(flipped, 0.0, grad)
        p.addcmul_(grad.sign(), step_size, value=-1)
        prev.copy_(grad)
