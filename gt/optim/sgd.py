"""Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay."""

import weakref

from gt import autograd
from gt.autograd import deferred, profiler_record
from gt.backend import B
from gt.optim.optimizer import Optimizer, _whole
from gt.optim.options import refuse_unimplemented_in
from gt.optim.sparse_adam import sgd_sparse_update

# the profiler's event of B.sgd_step_ (one parameter's whole update): torch's fused SGD kernel,
# which does the same arithmetic (for all parameters in one call)
FUSED = "aten::_fused_sgd_"


class SGD(Optimizer):
    """``p -= lr * g`` (plain gradient descent when ``momentum=0``), with torch's semantics.

    With momentum: ``buf = momentum * buf + (1 - dampening) * g`` (``buf`` starts as the first
    gradient), then ``p -= lr * buf`` (Nesterov: ``p -= lr * (g + momentum * buf)``).
    ``weight_decay`` adds ``weight_decay * p`` to the gradient first; ``maximize=True`` ascends
    (the gradient's negative is used, as torch's). Plain gradient descent applies
    a big weight gradient of few rows that the backward left as its two factors
    (gt/autograd/deferred.py) as one gemm into the weight, without making the gradient.

        >>> opt = gt.optim.SGD(params, lr=0.1, momentum=0.9)
        >>> loss.backward(); opt.step(); opt.zero_grad()

    ``in_backward=True`` (torch's "optimizer in backward"): ``loss.backward()`` itself updates
    each parameter as soon as its gradient is complete and then drops that gradient, so
    ``p.grad`` stays None and ``step()``/``zero_grad()`` change nothing. For plain gradient
    descent (no momentum, no weight decay) a Linear weight used once in the graph is updated
    by the very product that would have made its gradient (``W -= lr * dY^T X``, one gemm),
    so its gradient is never written to memory. Not for code that reads or clips ``p.grad``,
    accumulates gradients over several backwards, or backwards twice through one graph.

        >>> opt = gt.optim.SGD(model.parameters(), lr=0.1, in_backward=True)
        >>> loss.backward()          # the parameters are updated here
    """

    _sparse_grads = True      # a sparse COO gradient (Embedding(sparse=True)) without weight decay, torch's

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 in_backward=False, *, maximize=False, foreach=None, differentiable=False, fused=None):
        # the constructor's options only, as torch: a group may keep nesterov with its momentum off
        if nesterov and (not momentum > 0 or dampening != 0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening == 0, got "
                             f"momentum={momentum!r}, dampening={dampening!r}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults, in_backward)

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        if not self.in_backward:
            # the backward may then leave a bigger weight gradient as factors (gt/autograd/deferred.py)
            group, optimizer = self.param_groups[-1], weakref.ref(self)
            for p in group["params"]:
                deferred.expect_plain_steps(p, _plain_now(optimizer, group))

    def _fused_alpha(self, key, optimizer):
        def alpha():  # asked at each backward: a scheduler may have changed lr, or momentum been set
            opt = optimizer()
            group = opt._group_of.get(key) if opt is not None else None
            if group is None or not _plain(group):
                return None
            return -group["lr"]

        return alpha

    def _check_group(self, group):
        super()._check_group(group)
        if not isinstance(group.get("maximize", False), bool):
            raise TypeError(f"SGD: maximize must be True or False, got {group['maximize']!r}")
        refuse_unimplemented_in("SGD", group)

    def _update_group(self, params, group):
        # Plain gradient descent on parameters held whole: one engine call for all of them
        # (B.add_scaled_foreach_, torch's multi-tensor add_ on the torch engine), the same
        # update as p.add_(grad, alpha=-lr) one by one, except a gradient still held as factors,
        # which is applied by one gemm; anything else one by one.
        if not _plain(group):
            return super()._update_group(params, group)
        targets, values = [], []
        for p in params:
            factors = p._grad_factors
            if factors is not None and p._placed is None:
                # a gradient held as its two factors (gt/autograd/deferred.py): the update is one
                # gemm into the weight, and the gradient is never written
                self._state_of(p, group)
                add_to = factors.add_to if profiler_record.active is None else \
                    profiler_record.timed("aten::addmm_", factors.add_to)
                add_to(p._array, -group["lr"])
                continue
            grad = p.grad
            if _whole(p, grad) and not grad.is_sparse:
                target, value = p._array, grad._array
                if value.shape == target.shape and value.dtype == target.dtype:
                    self._state_of(p, group)    # as one by one: every updated parameter has its entry
                    targets.append(target)
                    values.append(value)
                    continue
            self._update_one(p, group)
        if targets and profiler_record.active is None:
            B.add_scaled_foreach_(targets, values, -group["lr"])
        elif targets:       # torch's events: its step's add_ per parameter (the same bits as the foreach call)
            add = profiler_record.timed("aten::add_", B.add_scaled_)
            for target, value in zip(targets, values):
                add(target, value, -group["lr"])

    def _step_one(self, p):
        # in_backward, plain gradient descent on a whole parameter (its biases and norms: ~44 of
        # the default model's, one hook each): the engine call _update would make, with the same
        # arguments, without its checks and the no_grad scope (no tensor arithmetic runs here).
        # Measured 12.5 -> 6 us per parameter on the torch engine.
        group = self._group_of[id(p)]
        grad = p.grad
        if _plain(group) and not grad.is_sparse and _engine_takes(p, grad, None):
            self._state_of(p, group)
            # plain: torch's add_ while profiling
            step_ = B.sgd_step_ if profiler_record.active is None else profiler_record.timed("aten::add_", B.sgd_step_)
            step_(p._array, grad._array, None, group["lr"], group["momentum"], group["dampening"],
                  group["weight_decay"], group["nesterov"], False)
            p._bump_version()
            autograd.zero_grads([p])
            return
        super()._step_one(p)

    def _update(self, p, grad, state, group):
        if grad.is_sparse:
            return sgd_sparse_update(p, grad, state, group)
        momentum = group["momentum"]
        buf = state.get("momentum_buffer") if momentum != 0 else None
        if (momentum == 0 or buf is not None) and _engine_takes(p, grad, buf):
            # whole arrays: one engine call (B.sgd_step_: the arithmetic below without the
            # tensors' dispatch; on the numpy engine in cache-sized blocks, no temporaries)
            step_ = B.sgd_step_ if profiler_record.active is None else profiler_record.timed(FUSED, B.sgd_step_)
            step_(p._array, grad._array, None if buf is None else buf._array, group["lr"], momentum,
                  group["dampening"], group["weight_decay"], group["nesterov"], group.get("maximize", False))
            return
        if group.get("maximize", False):  # .get: a group saved before gt had maximize
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p  # a new tensor: p.grad itself is left as backward made it
        if momentum != 0:
            # The buffer is made on first use (not in _init_state) so momentum can be switched on later.
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.add_(grad, alpha=-group["lr"])  # Tensor.add_: the engine's fused scaled addition


def _engine_takes(p, grad, buf):
    """Whether ``B.sgd_step_`` may update ``p``: whole arrays (none spread over the mesh), the
    gradient and the momentum buffer (or None) of the parameter's shape and dtype."""
    tensors = (p, grad) if buf is None else (p, grad, buf)
    return _whole(*tensors) and all(t.shape == p.shape and t.dtype == p.dtype for t in tensors[1:])


def _plain(group):
    """Whether ``group`` is plain gradient descent (no momentum, no weight decay, not maximize)."""
    return group["momentum"] == 0 and group["weight_decay"] == 0 and not group.get("maximize", False)


def _plain_now(optimizer, group):
    """Whether ``group`` of ``optimizer`` (held weakly) is plain gradient descent now."""
    return lambda: optimizer() is not None and _plain(group)
