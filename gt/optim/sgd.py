"""Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay."""

from gt.backend import B
from gt.optim.optimizer import Optimizer
from gt.tensor import Tensor


class SGD(Optimizer):
    """``p -= lr * g`` (plain gradient descent when ``momentum=0``), with torch's semantics.

    With momentum: ``buf = momentum * buf + (1 - dampening) * g`` (``buf`` starts as the first
    gradient), then ``p -= lr * buf`` (Nesterov: ``p -= lr * (g + momentum * buf)``).
    ``weight_decay`` adds ``weight_decay * p`` to the gradient first.

        >>> opt = gt.optim.SGD(params, lr=0.1, momentum=0.9)
        >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov)
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening == 0, got "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}")

    def _update(self, p, grad, state, group):
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        buf = state.get("momentum_buffer")
        if p._placed is None and grad._placed is None and (buf is None or buf._placed is None):
            self._update_arrays(p, grad, buf, state, group)
            return
        if weight_decay != 0:
            grad = grad + weight_decay * p  # a new tensor: p.grad itself is left as backward made it
        if momentum != 0:
            # The buffer is made on first use (not in _init_state) so momentum can be switched on later.
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.add_(grad, alpha=-group["lr"])

    @staticmethod
    def _update_arrays(p, grad, buf, state, group):
        """``_update`` on whole engine arrays, each step as the tensor code above computes it (the
        same operations in the same order, so the same values), with the scaled additions fused
        (``B.add_scaled_``): no temporary as large as the parameter, which for a big weight is
        a fresh allocation whose pages fault in every step."""
        momentum, weight_decay, dampening = group["momentum"], group["weight_decay"], group["dampening"]
        g = grad._array
        if weight_decay != 0:
            g = g + weight_decay * p._array
        if momentum != 0:
            if buf is None:
                buf = state["momentum_buffer"] = Tensor._wrap(B.copy(g))
            else:
                b = buf._array
                b *= momentum
                if dampening == 0:
                    b += g  # add_(g, alpha=1) adds g itself
                else:
                    B.add_scaled_(b, g, 1 - dampening)
            g = g + momentum * buf._array if group["nesterov"] else buf._array
        B.add_scaled_(p._array, g, -group["lr"])
