"""Adagrad: each coordinate's step shrinks with the sum of its squared gradients."""

from gt.tensor import full_like
from gt.tensor.sparse_autograd import add_rows_
from gt.optim.options import TorchOptimizer, check, check_numbers
from gt.optim.sparse_adam import sparse_rows


class Adagrad(TorchOptimizer):
    """torch's Adagrad: ``sum += g**2``, ``p -= clr * g / (sqrt(sum) + eps)`` with
    ``clr = lr / (1 + (step - 1) * lr_decay)``.

    ``sum`` starts at ``initial_accumulator_value``; as in torch, every parameter's state
    (``step``, ``sum``) is made when the optimizer is built, so ``state_dict()`` lists them all.
    ``weight_decay`` adds ``weight_decay * p`` to the gradient; ``maximize`` ascends. A sparse
    gradient (``Embedding(sparse=True)``) updates only its rows, as torch's (weight decay then
    refused). ``differentiable`` is accepted only at
    False (``foreach`` and ``fused`` take any value: torch's kernel choices, the same arithmetic).

        >>> opt = gt.optim.Adagrad(model.parameters(), lr=1e-2)
    """

    _sparse_grads = True

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        check_numbers(type(self).__name__, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                      initial_accumulator_value=initial_accumulator_value, eps=eps)
        check(0.0 <= lr, f"Invalid learning rate: {lr}")
        check(0.0 <= lr_decay, f"Invalid lr_decay value: {lr_decay}")
        check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check(0.0 <= initial_accumulator_value, f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:  # torch makes the state here, not at the first step
            for p in group["params"]:
                self._state_of(p, group)

    def _init_state(self, p, state, group):
        state["step"] = 0
        # the constructor's value, never a group's own (torch's reads self.defaults)
        state["sum"] = full_like(p, self.defaults["initial_accumulator_value"])

    def _update(self, p, grad, state, group):
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        if grad.is_sparse:
            return _sparse_step(p, -grad if group["maximize"] else grad, state, group, clr)
        grad = self._decayed(p, grad, group)
        state_sum = state["sum"]
        state_sum.addcmul_(grad, grad, value=1)
        std = state_sum.sqrt().add_(group["eps"])
        p.addcdiv_(grad, std, value=-clr)


def _sparse_step(p, grad, state, group, clr):
    """torch's Adagrad on a sparse gradient (coalesced first: the update is not linear): the sum
    of squares and the parameter change only at the rows the gradient holds."""
    if group["weight_decay"] != 0:
        raise RuntimeError("weight_decay option is not compatible with sparse gradients")
    sd, at, g, flat = sparse_rows(p, grad)
    add_rows_(state["sum"], sd, at, g * g)
    std = state["sum"].view(flat)[at].sqrt() + group["eps"]
    add_rows_(p, sd, at, g / std * -clr)
