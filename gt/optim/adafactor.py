"""Adafactor: Adam-like steps whose second moments of a matrix are kept as a row and a column factor."""

from gt.backend import B
from gt.tensor import Tensor, zeros, zeros_like
from gt.tensor.runtime import finfo
from gt.optim.optimizer import _is_number
from gt.optim.options import TorchOptimizer, check, check_numbers

# torch's Adafactor has a foreach form (the same arithmetic over lists); gt's step is always one
# parameter at a time, so any foreach value is accepted and gives the same answer.
_ANY_FOREACH = ("foreach",)


class Adafactor(TorchOptimizer):
    """torch's Adafactor (Shazeer & Stern, 2018, without momentum), step ``t`` counted per parameter:

    - ``beta2_t = 1 - t ** beta2_decay``; ``rho_t = min(lr, 1 / sqrt(t))``;
      ``alpha = max(eps[1], rms(p)) * rho_t`` (``rms``: root mean square, taken before weight decay);
    - ``weight_decay``: ``p *= 1 - lr * weight_decay`` (decoupled);
    - a parameter of >= 2 dims, shape ``(..., R, C)``: ``row_var`` ``(..., R, 1)`` and ``col_var``
      ``(..., 1, C)`` follow the means of ``g ** 2`` over the last and the next-to-last dim
      (``var = lerp(var, mean, 1 - beta2_t)``); the estimate is
      ``row_var * col_var / max(mean(row_var over R), eps[0])``; a parameter of 0 or 1 dims keeps
      the whole ``variance``, shaped like it;
    - ``u = g / sqrt(max(estimate, eps[0] ** 2))``; ``p -= alpha / max(1, rms(u) / d) * u``.

    ``eps[0] = None`` is ``finfo(dtype).eps`` of the group's first parameter with a gradient (as
    torch). ``maximize`` ascends. State as torch's: ``step``, and ``row_var`` and ``col_var``, or
    ``variance``; ``state_dict()`` has torch's layout and torch's state dicts load. Unlike torch,
    an empty parameter is left alone (torch divides by its size, 0, and fails).

        >>> opt = gt.optim.Adafactor(model.parameters(), lr=1e-2)
        >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 foreach=None, maximize=False):
        name = type(self).__name__
        check_numbers(name, lr=lr, beta2_decay=beta2_decay, d=d, weight_decay=weight_decay)
        _check_eps(eps)
        check(0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
        check(0.0 >= beta2_decay, f"beta2_decay should be <= 0 but is: {beta2_decay}")
        check(eps[0] is None or 0.0 <= eps[0], f"epsilon1 should be >= 0 but is: {eps[0]}")
        check(0.0 <= eps[1], f"epsilon2 should be >= 0 but is: {eps[1]}")
        check(1.0 <= d, f"Clipping threshold d should be >= 1 but is: {d}")
        check(0.0 <= weight_decay, f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        # eps is a pair here (the base class wants a number) and foreach changes nothing: both are
        # checked apart from the rest
        super()._check_group({k: v for k, v in group.items() if k not in ("eps",) + _ANY_FOREACH})
        if "eps" in group:
            _check_eps(group["eps"])
        if group.get("foreach") not in (None, True, False):
            raise TypeError(f"Adafactor: foreach must be None, True or False, got {group['foreach']!r}")

    def _init_state(self, p, state, group):
        state["step"] = 0
        if p.ndim > 1:
            state["row_var"] = zeros(p.shape[:-1] + (1,), dtype=p.dtype)
            state["col_var"] = zeros(p.shape[:-2] + (1,) + p.shape[-1:], dtype=p.dtype)
        else:
            state["variance"] = zeros_like(p)

    def _update_group(self, params, group):
        # torch fills a missing eps[0] once per group, from its first parameter with a gradient
        eps1 = group["eps"][0]
        if eps1 is None and params:
            eps1 = finfo(params[0].dtype).eps
        for p in params:
            self._step_param(p, p.grad, self._state_of(p, group), group, eps1)

    def _update(self, p, grad, state, group):
        eps1 = group["eps"][0]
        self._step_param(p, grad, state, group, finfo(p.dtype).eps if eps1 is None else eps1)

    def _step_param(self, p, grad, state, group, eps1):
        lr, d, weight_decay, eps2 = group["lr"], group["d"], group["weight_decay"], group["eps"][1]
        grad = self._direction(grad, group)
        state["step"] += 1
        step = float(state["step"])
        if p.numel() == 0:
            return
        one_minus_beta2_t = step ** group["beta2_decay"]
        rho_t = min(lr, 1 / step ** 0.5)
        alpha = max(eps2, p.norm().item() / p.numel() ** 0.5) * rho_t
        if weight_decay != 0:
            p.mul_(1 - lr * weight_decay)
        if grad.ndim > 1:
            row_var, col_var = state["row_var"], state["col_var"]
            # the mean squares as torch's: the norm squared over the count, rounded three times where
            # a mean rounds once; gt's norm, not a root of a sum: torch's vectorized sqrt is an ulp off
            # the norm's on CPUs without AVX-512 (sqrt(8.5) in float32 on an AMD EPYC)
            row_var.lerp_(grad.norm(dim=-1, keepdim=True).square_().div_(grad.shape[-1]), one_minus_beta2_t)
            col_var.lerp_(grad.norm(dim=-2, keepdim=True).square_().div_(grad.shape[-2]), one_minus_beta2_t)
            # (..., R, 1) @ (..., 1, C) is a product of one term: the broadcast product is the same
            var_estimate = (row_var * col_var) / row_var.mean(-2, keepdim=True).clamp(min=eps1)
        else:
            variance = state["variance"]
            variance.lerp_(grad * grad, one_minus_beta2_t)
            var_estimate = variance
        update = var_estimate.clamp(min=eps1 * eps1).rsqrt() * grad
        denom = max(1.0, update.norm().item() / (update.numel() ** 0.5 * d))
        p.add_(update, alpha=-alpha / denom)

    def load_state_dict(self, state_dict):
        """``Optimizer.load_state_dict``, with the factored ``row_var`` and ``col_var`` (not shaped
        like their parameters) checked against their own shapes."""
        try:
            saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
            by_index = {}
            for saved, group in zip(saved_groups, self.param_groups, strict=True):
                by_index.update(zip(saved["params"], group["params"], strict=True))
            factors = {int(k): {n: v for n, v in s.items() if n in ("row_var", "col_var")}
                       for k, s in saved_state.items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            return super().load_state_dict(state_dict)   # its error says what is wrong
        loaded = {}
        for index, entries in factors.items():
            p = by_index.get(index)
            if p is None or not entries:
                continue
            for name, value in entries.items():
                loaded.setdefault(index, {})[name] = _factor(value, p, index, name)
        rest = {k: {n: v for n, v in s.items() if n not in ("row_var", "col_var")}
                for k, s in saved_state.items()}
        super().load_state_dict(dict(state_dict, state=rest))
        for index, entries in loaded.items():
            self.state[by_index[index]].update(entries)


def _check_eps(eps):
    if (not isinstance(eps, (tuple, list)) or len(eps) != 2 or not (eps[0] is None or _is_number(eps[0]))
            or not _is_number(eps[1])):
        raise TypeError(f"Adafactor: eps must be a pair (epsilon1 or None, epsilon2) of numbers, got {eps!r}")


def _factor(value, p, index, name):
    if not hasattr(value, "shape"):
        raise ValueError(f"loaded state '{name}' of parameter {index} must be an array, got {type(value).__name__}")
    if p.ndim < 2:
        raise ValueError(f"loaded state '{name}' of parameter {index}: a parameter of shape {p.shape} keeps "
                         "'variance', not factors")
    want = p.shape[:-1] + (1,) if name == "row_var" else p.shape[:-2] + (1,) + p.shape[-1:]
    shape = tuple(value.shape)
    if shape != want:
        raise ValueError(f"loaded state '{name}' of parameter {index} has shape {shape}; a parameter of shape "
                         f"{p.shape} needs {want}")
    data = value._data if isinstance(value, Tensor) else value
    return Tensor._wrap(B.asarray(data, dtype=p.dtype, copy=True))

