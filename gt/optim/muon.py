"""Muon: momentum SGD whose update of a matrix is orthogonalised by a Newton-Schulz iteration
(torch.optim.Muon)."""

import math

from gt.tensor import zeros_like
from gt.optim.optimizer import _is_number
from gt.optim.options import TorchOptimizer, check, check_numbers

EPS = 1e-7
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)    # torch's (Keller Jordan's quintic iteration)
NS_STEPS = 5
ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


class Muon(TorchOptimizer):
    """torch's Muon, for 2-D parameters, one step of a parameter ``p`` with gradient ``g``:

    - ``buf = lerp(buf, g, 1 - momentum)``; the update ``u = lerp(g, buf, momentum)`` with
      ``nesterov`` (the default), ``buf`` without;
    - ``O = NS(u)``: ``X = u / max(||u||, eps)`` (transposed when taller than wide), then
      ``ns_steps`` times ``A = X X^T``, ``X = a X + (b A + c A A) X``;
    - ``p *= 1 - lr * weight_decay`` (decoupled); ``p -= lr' * O`` with ``lr' = lr *
      sqrt(max(1, rows / cols))`` (``adjust_lr_fn=None`` or ``"original"``), ``lr * 0.2 *
      sqrt(max(rows, cols))`` (``"match_rms_adamw"``).

    State as torch's: ``momentum_buffer``. Differs: torch runs the iteration in bfloat16, gt in
    the parameter's dtype (float32: the updates agree with torch's to bfloat16's precision, about
    1e-2 relative, and with torch's iteration run in float32 to rounding).

        >>> opt = gt.optim.Muon([layer.weight for layer in blocks], lr=0.02)
    """

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=NS_COEFFICIENTS, eps=EPS, ns_steps=NS_STEPS, adjust_lr_fn=None):
        name = type(self).__name__
        check_numbers(name, lr=lr, weight_decay=weight_decay, momentum=momentum, eps=eps)
        check(0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
        check(0.0 <= momentum, f"momentum should be >= 0 but is: {momentum}")
        check(0.0 <= weight_decay, f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn not in ADJUST_LR_FNS:
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        _check_newton_schulz(ns_coefficients, ns_steps)
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=tuple(ns_coefficients), eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon only supports 2D parameters whereas we found a parameter with size: "
                                     f"{tuple(p.shape)}")

    def _check_group(self, group):
        if not isinstance(group.get("nesterov", True), bool):
            raise TypeError(f"Muon: nesterov must be True or False, got {group['nesterov']!r}")
        super()._check_group({k: v for k, v in group.items() if k not in ("ns_coefficients", "adjust_lr_fn")})

    def _init_state(self, p, state, group):
        state["momentum_buffer"] = zeros_like(p)

    def _update(self, p, grad, state, group):
        lr, momentum = group["lr"], group["momentum"]
        buf = state["momentum_buffer"]
        buf.lerp_(grad, 1 - momentum)
        update = grad.lerp(buf, momentum) if group["nesterov"] else buf
        update = zeropower_via_newtonschulz(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
        p.mul_(1 - lr * group["weight_decay"])
        p.add_(update, alpha=-adjusted_lr(lr, group["adjust_lr_fn"], p.shape))


def zeropower_via_newtonschulz(grad, ns_coefficients=NS_COEFFICIENTS, ns_steps=NS_STEPS, eps=EPS):
    """torch's orthogonalisation of a 2-D ``grad`` (something like U S' V^T of its SVD U S V^T,
    S' near 1) by ``ns_steps`` quintic Newton-Schulz steps, in ``grad``'s dtype."""
    _check_newton_schulz(ns_coefficients, ns_steps)
    if grad.ndim != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    a, b, c = ns_coefficients
    x = grad.T if grad.shape[0] > grad.shape[1] else grad
    x = x / x.norm().clamp(min=eps)                 # the spectral norm at most 1
    for _ in range(ns_steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if grad.shape[0] > grad.shape[1] else x


def adjusted_lr(lr, adjust_lr_fn, shape):
    """Muon's learning rate for a parameter of ``shape`` (rows, cols)."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


def _check_newton_schulz(ns_coefficients, ns_steps):
    if not isinstance(ns_steps, int) or isinstance(ns_steps, bool) or ns_steps < 0:
        raise TypeError(f"Muon: ns_steps must be a non-negative int, got {ns_steps!r}")
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if not isinstance(ns_coefficients, (tuple, list)) or len(ns_coefficients) != 3 \
            or not all(_is_number(v) for v in ns_coefficients):
        raise ValueError(f"Coefficients must be a tuple of exactly 3 values, got {ns_coefficients!r}")
