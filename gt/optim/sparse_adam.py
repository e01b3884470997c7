"""``optim.SparseAdam`` and SGD's step on a sparse COO gradient (``nn.Embedding(sparse=True)``),
torch's arithmetic: only the rows the gradient holds are read and written (Adagrad's sparse step,
in gt/optim/adagrad.py, starts from the same ``sparse_rows``)."""

import math

from gt import autograd
from gt.optim.optimizer import Optimizer
from gt.optim.options import check
from gt.tensor import creation
from gt.tensor.sparse_autograd import add_rows_, add_sparse_
from gt.tensor.sparse_methods import linear_positions


def sgd_sparse_update(p, grad, state, group):
    """torch's SGD on a sparse gradient: the momentum buffer is sparse too; weight decay refused."""
    if group["weight_decay"] != 0:
        raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead. (SGD: "
                           "weight_decay needs a dense gradient; torch refuses it with a sparse one too)")
    if group.get("maximize", False):
        grad = -grad
    momentum = group["momentum"]
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is not None and not buf.is_sparse:    # loaded from a state dict (saved dense)
            buf.mul_(momentum)
            add_sparse_(buf, grad, 1 - group["dampening"])
            step = grad.to_dense() + buf * momentum if group["nesterov"] else buf
            p.add_(step, alpha=-group["lr"])
            return
        buf = grad.clone() if buf is None else buf * momentum + grad * (1 - group["dampening"])
        state["momentum_buffer"] = buf
        grad = grad + buf * momentum if group["nesterov"] else buf
    add_sparse_(p, grad, -group["lr"])


class SparseAdam(Optimizer):
    """torch's ``optim.SparseAdam``: Adam's moments updated only at the rows a sparse gradient holds
    (``nn.Embedding(sparse=True)``); a dense gradient is refused with torch's error.

        >>> opt = gt.optim.SparseAdam(emb.parameters(), lr=1e-3)
    """

    _sparse_grads = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        check(0.0 < lr, f"Invalid learning rate: {lr}")
        check(0.0 < eps, f"Invalid epsilon value: {eps}")
        check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, maximize=maximize))
        for what, test in (("Sparse", "SparseAdam requires dense parameter tensors"),
                           ("Complex", "SparseAdam does not support complex parameters")):
            at = [[g, i] for g, group in enumerate(self.param_groups) for i, p in enumerate(group["params"])
                  if (p.is_sparse if what == "Sparse" else p.is_complex())]
            if at:
                raise ValueError(f"{what} params at indices {at}: {test}")

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["exp_avg"] = creation.zeros(p.shape, dtype=p.dtype)
        state["exp_avg_sq"] = creation.zeros(p.shape, dtype=p.dtype)

    def _update(self, p, grad, state, group):
        if not grad.is_sparse:
            raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead")
        with autograd.no_grad():
            _sparse_adam_step(p, grad, state, group)


def sparse_rows(p, grad):
    """``(sd, at, values, flat)`` of the sparse gradient ``grad`` of ``p``, coalesced first (the
    sparse steps are not linear in the gradient): ``p`` viewed as ``flat`` (the rows of its first
    ``sd`` dims, then its dense dims) gets ``values`` at its rows ``at``."""
    grad = grad.coalesce()
    sd = grad.sparse_dim()
    sizes = p.shape[:sd]
    return sd, linear_positions(grad._sp_indices, sizes), grad._sp_values, (math.prod(sizes),) + tuple(p.shape[sd:])


def _sparse_adam_step(p, grad, state, group):
    """torch's ``_single_tensor_sparse_adam`` arithmetic, on the rows of the coalesced gradient."""
    state["step"] += 1
    sd, at, g, flat = sparse_rows(p, grad)
    if group["maximize"]:
        g = -g
    beta1, beta2 = group["betas"]
    old_avg, old_sq = state["exp_avg"].view(flat)[at], state["exp_avg_sq"].view(flat)[at]
    avg_update = (g - old_avg) * (1 - beta1)
    add_rows_(state["exp_avg"], sd, at, avg_update)
    sq_update = (g * g - old_sq) * (1 - beta2)
    add_rows_(state["exp_avg_sq"], sd, at, sq_update)
    numer = avg_update + old_avg
    denom = (sq_update + old_sq).sqrt() + group["eps"]
    step = state["step"]
    step_size = group["lr"] * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
    add_rows_(p, sd, at, -step_size * (numer / denom))
