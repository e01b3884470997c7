"""Adam and AdamW (decoupled weight decay), with torch's bias-corrected update."""

import math

from gt.autograd import profiler_record
from gt.backend import B
from gt.tensor import Tensor, zeros_like
from gt.optim.optimizer import Optimizer, _whole
from gt.optim.options import refuse_unimplemented_in


class Adam(Optimizer):
    """Adam: running means of the gradient (``exp_avg``) and its square (``exp_avg_sq``).

    ``p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)`` with ``bc = 1 - beta ** step`` counted per
    parameter; ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2, as torch's Adam).
    ``amsgrad=True`` divides by the running maximum of ``v`` (state ``max_exp_avg_sq``);
    ``maximize=True`` ascends. Both are in the engine's step (``B.adam_step_``; on the torch
    engine its array arithmetic, not torch's fused kernel).
    ``decoupled_weight_decay=True`` makes it AdamW; as in torch it is a group's option (saved in
    ``param_groups``; a group may set its own).

        >>> opt = gt.optim.Adam(params, lr=1e-3)
        >>> loss.backward(); opt.step(); opt.zero_grad()

    ``in_backward=True``: each parameter is updated inside ``loss.backward()`` as soon as its
    gradient is complete (see ``gt.optim.SGD``).
    """

    decoupled_weight_decay = False

    # amsgrad is torch's sixth positional argument, so code written for torch means what it says;
    # in_backward (gt's, sixth until 2026-12-05) is keyword-only
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 in_backward=False, maximize=False, foreach=None, capturable=False, differentiable=False,
                 fused=None, decoupled_weight_decay=False):
        _check_tensor_hyperparameters(lr, betas, foreach, capturable)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay or self.decoupled_weight_decay),
                         in_backward)

    def load_state_dict(self, state_dict):
        """``Optimizer.load_state_dict``; AdamW's groups stay decoupled whatever was saved (torch's)."""
        super().load_state_dict(state_dict)
        if type(self).decoupled_weight_decay:
            for group in self.param_groups:
                group["decoupled_weight_decay"] = True

    def _decoupled(self, group):
        # a group saved before gt kept the key: the class's own kind
        return group.get("decoupled_weight_decay", self.decoupled_weight_decay)

    def _event(self, group):
        """The profiler's event of the engine's Adam step: torch's fused kernel's, which does the
        same arithmetic (``Adam(fused=True)``)."""
        return "aten::_fused_adamw_" if self._decoupled(group) else "aten::_fused_adam_"

    def _check_group(self, group):
        super()._check_group(group)
        refuse_unimplemented_in(type(self).__name__, group)
        for key in ("amsgrad", "maximize", "decoupled_weight_decay"):
            if not isinstance(group.get(key, False), bool):
                raise TypeError(f"{type(self).__name__}: {key} must be True or False, got {group[key]!r}")

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)
        if group.get("amsgrad", False):
            state["max_exp_avg_sq"] = zeros_like(p)

    def _update_group(self, params, group):
        # Parameters held whole (not spread over the mesh) at the same step count: one engine call
        # for all of them (B.adam_steps_: torch's multi-tensor fused kernel launches once, where
        # one call per parameter cost a small model 70 launches a step); the rest one by one.
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        amsgrad, maximize = group.get("amsgrad", False), group.get("maximize", False)
        by_step = {}
        for p in params:
            state, grad = self._state_of(p, group), p.grad
            moments = _moments(state, amsgrad)
            if _whole(p, grad, *moments):
                state["step"] += 1
                by_step.setdefault(state["step"], []).append((p._array, grad._array) + tuple(t._array for t in moments))
            else:
                self._update(p, grad, state, group)
        steps_ = B.adam_steps_ if profiler_record.active is None else profiler_record.timed(self._event(group),
                                                                                            B.adam_steps_)
        for step, arrays in by_step.items():
            columns = [list(a) for a in zip(*arrays)]
            steps_(*columns[:4], step, lr, beta1, beta2, eps, weight_decay, self._decoupled(group), maximize,
                   columns[4] if amsgrad else None)

    def _update(self, p, grad, state, group):
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        state["step"] += 1
        step = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        moments = _moments(state, group.get("amsgrad", False))
        if _whole(p, grad, *moments):
            # whole arrays: one engine call (B.adam_step_: the arithmetic below, or a fused kernel)
            step_ = B.adam_step_ if profiler_record.active is None else profiler_record.timed(self._event(group),
                                                                                          B.adam_step_)
            step_(p._array, grad._array, m._array, v._array, step, lr, beta1, beta2, eps, weight_decay,
                  self._decoupled(group), group.get("maximize", False),
                  moments[2]._array if len(moments) == 3 else None)
            return
        if group.get("maximize", False):
            grad = -grad
        if weight_decay != 0:
            if self._decoupled(group):
                p.mul_(1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * p  # a new tensor: p.grad itself is left as backward made it
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        if group.get("amsgrad", False):
            max_v = state["max_exp_avg_sq"]
            v = max_v.copy_(max_v.maximum(v))
        denom = v.sqrt().div_(math.sqrt(bias_correction2)).add_(eps)  # one temporary, then in place
        p.addcdiv_(m, denom, value=-lr / bias_correction1)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before the Adam step.

        >>> opt = gt.optim.AdamW(params, lr=3e-4, weight_decay=0.1)
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 in_backward=False, maximize=False, foreach=None, capturable=False, differentiable=False,
                 fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, in_backward=in_backward,
                         amsgrad=amsgrad, maximize=maximize, foreach=foreach, capturable=capturable,
                         differentiable=differentiable, fused=fused)


def _moments(state, amsgrad):
    """The state tensors the step updates: ``exp_avg``, ``exp_avg_sq`` and with amsgrad
    ``max_exp_avg_sq`` (a KeyError, as torch's, where amsgrad was switched on after the first step)."""
    moments = (state["exp_avg"], state["exp_avg_sq"])
    return moments + (state["max_exp_avg_sq"],) if amsgrad else moments


def _check_tensor_hyperparameters(lr, betas, foreach, capturable):
    """torch's constructor checks of tensor ``lr``/``betas`` (ValueError): betas both floats or
    both tensors, and no tensor among them with ``foreach=True`` unless ``capturable``."""
    if isinstance(lr, Tensor) and foreach and not capturable:
        raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        return                          # the group check's TypeError names what is wrong
    if any(isinstance(b, Tensor) and b.numel() != 1 for b in betas):
        return                          # the group check's "must be 1-element"
    kinds = {isinstance(b, Tensor) for b in betas}
    if kinds == {True, False} or (kinds == {False} and not all(isinstance(b, float) for b in betas)):
        raise ValueError("betas must be either both floats or both Tensors")
    for i, beta in enumerate(betas):
        if isinstance(beta, Tensor) and foreach and not capturable:
            raise ValueError(f"betas[{i}] as a Tensor is not supported for capturable=False and foreach=True")
