"""Activation checkpointing, torch's ``torch.utils.checkpoint``: ``checkpoint(fn, *args)`` keeps
none of ``fn``'s intermediate values for the backward; the backward runs ``fn`` again (with the
random state of the forward, so dropout draws the same masks) and differentiates that. Memory for
one segment's activations is traded for a second forward of it.

How: the forward runs in grad mode, and the tensors the segment reads from outside (its tensor
arguments, the parameters and any other tensor it captured that requires grad) are found by
walking its graph back to them; the graph is then dropped, and one recorded node (a custom
``gt.autograd.Function``) stands for the segment, with those tensors as its inputs. So the
parameters of a module called inside get their gradients in both of torch's variants, and
gradients flow out of the segment exactly as without checkpointing.

Differs from torch: ``use_reentrant=True`` and ``False`` differ here only where torch's do for
the caller: with ``True``, when no tensor argument requires grad, nothing is recorded (torch's
warning: gradients will be None); ``context_fn`` is refused unless it is None; the forward keeps a
segment's activations until the segment ends (torch's non-reentrant forward drops each as it is
made), which is the same peak for a chain of segments. Second derivatives (``create_graph=True``)
go through a ``use_reentrant=False`` checkpoint as through the plain segment, as torch's do; through
a ``use_reentrant=True`` one they raise before any gradient changes (torch's ``.grad()`` raises
there, and its ``backward(create_graph=True)`` gives a gradient without a graph).
"""

import warnings

from gt import autograd
from gt.autograd.function import new_epoch
from gt.autograd.gradients import grad as _grad     # (not the user's: see gt/autograd/gradients.py)
from gt.tensor.core import Tensor
from gt.tensor.creation import get_rng_state, set_rng_state

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointError"]


class CheckpointError(RuntimeError):
    """The backward's second run of a segment made values unlike the first (torch's class)."""


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default", debug=False,
               preserve_rng_state=True, **kwargs):
    """``function(*args, **kwargs)``, its intermediate values recomputed in the backward instead of
    kept. Returns what ``function`` returns (a tensor, or a tuple with tensors).

        >>> y = checkpoint(block, x, use_reentrant=False)
    """
    if use_reentrant is None:
        warnings.warn("gt.utils.checkpoint: the use_reentrant parameter should be passed explicitly (as torch asks); "
                      "use_reentrant=False is recommended, and the default, True, is used", UserWarning, stacklevel=2)
        use_reentrant = True
    if determinism_check not in ("default", "none"):
        raise ValueError(f"determinism_check should be 'default' or 'none', got {determinism_check!r}")
    if use_reentrant:
        if kwargs:
            raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
        if context_fn is not None or debug:
            raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
    elif context_fn is not None:
        raise NotImplementedError("gt.utils.checkpoint: context_fn (torch's selective checkpointing) is not supported")
    needs = any(isinstance(a, Tensor) and a.requires_grad for a in args)
    if use_reentrant and not needs:
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", UserWarning, stacklevel=2)
    if not autograd.is_grad_enabled() or (use_reentrant and not needs):
        with autograd.no_grad():
            return function(*args, **kwargs)
    segment = _Segment(function, args, kwargs, preserve_rng_state, determinism_check == "default")
    segment.reentrant = use_reentrant
    return segment.run()


# torch's reentrant checkpoint runs a plain backward of its own: nothing it gives can be differentiated again
_REENTRANT = ("gt.utils.checkpoint: a checkpoint with use_reentrant=True cannot be differentiated twice (torch's "
              "supports only .backward() there: its .grad() raises and backward(create_graph=True) gives a gradient "
              "without a graph); pass use_reentrant=False for second derivatives")


class _Segment:
    reentrant = False

    def __init__(self, function, args, kwargs, preserve_rng_state, check):
        self.function, self.args, self.kwargs, self.check = function, args, kwargs, check
        self.rng = get_rng_state() if preserve_rng_state else None

    def run(self):
        start = new_epoch()          # ops recorded from here on belong to the segment
        out = self.function(*self.args, **self.kwargs)
        outs = out if isinstance(out, tuple) else (out,)
        self.single = not isinstance(out, tuple)
        self.boundary = _boundary(outs, self.args, start)
        self.meta = [(o.shape, o.dtype) if isinstance(o, Tensor) else None for o in outs]
        self.values = tuple(Tensor._from_value(o._value) if isinstance(o, Tensor) else o for o in outs)
        if not self.boundary:
            return out if self.single else self.values
        result = _Checkpoint.apply(self, *self.boundary)
        return result[0] if self.single else result

    def recompute_grads(self, grads):
        """The gradients of the segment's inputs (``boundary``) for the outputs' ``grads``."""
        create_graph = autograd.is_grad_enabled()    # the walk of backward(create_graph=True) runs in grad mode
        # new tensor objects for the arguments, so that the walk below stops at them; under create_graph
        # still joined to the originals, so that the gradient can be differentiated again
        fresh = {id(a): (a.view_as(a) if create_graph and a.requires_grad
                         else a.detach()._set_requires_grad(a.requires_grad))
                 for a in self.args if isinstance(a, Tensor)}
        args = tuple(fresh.get(id(a), a) if isinstance(a, Tensor) else a for a in self.args)
        cut = [(t, t._ctx) for t in self.boundary if id(t) not in fresh and t._ctx is not None]
        for t, _ in cut:             # a captured computed tensor ends the recomputed graph, as an argument does
            t._ctx = None
        saved = get_rng_state() if self.rng is not None else None
        try:
            if self.rng is not None:
                set_rng_state(self.rng)
            with autograd.enable_grad():
                out = self.function(*args, **self.kwargs)
                outs = out if isinstance(out, tuple) else (out,)
                self._check(outs)
                pairs = [(o, g) for o, g in zip(outs, grads)
                         if isinstance(o, Tensor) and o.requires_grad and g is not None]
                inputs = [fresh.get(id(t), t) for t in self.boundary]
                if not pairs:
                    return [None] * len(inputs)
                return _grad([o for o, _ in pairs], inputs, [g for _, g in pairs], allow_unused=True,
                             create_graph=create_graph)
        finally:
            for t, ctx in cut:
                t._ctx = ctx
            if saved is not None:
                set_rng_state(saved)

    def _check(self, outs):
        if not self.check:
            return
        now = [(o.shape, o.dtype) if isinstance(o, Tensor) else None for o in outs]
        if now != self.meta:
            raise CheckpointError("gt.utils.checkpoint: recomputed values have different metadata than during the "
                                  f"forward pass: {self.meta} then, {now} now (the function must compute the same "
                                  "shapes and dtypes each time it runs)")


def _boundary(outs, args, start):
    """The tensors requiring grad that the segment read from outside: its tensor arguments and
    what it captured (parameters, other tensors), found by walking back from the outputs through
    the ops recorded since epoch ``start``."""
    arg_ids = {id(a) for a in args if isinstance(a, Tensor)}
    found, seen = {}, set()
    stack = [o for o in outs if isinstance(o, Tensor) and o.requires_grad]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        ctx = t._ctx
        if id(t) in arg_ids or ctx is None or getattr(ctx, "epoch", start) < start:
            found[id(t)] = t
            continue
        stack.extend(p for p in ctx.inputs if isinstance(p, Tensor) and p.requires_grad)
    ordered = [a for a in args if isinstance(a, Tensor) and id(a) in found]
    return ordered + [t for k, t in found.items() if k not in arg_ids]


class _Checkpoint(autograd.Function):
    @staticmethod
    def forward(ctx, segment, *boundary):
        ctx.segment = segment
        if segment.reentrant:
            ctx.graph_refusal = _REENTRANT       # create_graph=True refuses it (gt/autograd/graph_walk.py)
        # the recomputation reads the arguments again: one changed in place since raises, as torch's
        ctx.save_for_backward(*(a for a in segment.args if isinstance(a, Tensor)))
        for v in segment.values:
            if isinstance(v, Tensor) and not v.dtype.is_floating_point:
                ctx.mark_non_differentiable(v)
        return segment.values

    @staticmethod
    def backward(ctx, *grads):
        return (None, *ctx.segment.recompute_grads(grads))


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Run ``functions`` (an ``nn.Sequential`` or a list of callables) one after another on
    ``input``, in ``segments`` checkpointed chunks; the last chunk runs normally, as in torch."""
    if use_reentrant is None:
        warnings.warn("gt.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should be passed "
                      "explicitly; the default, True, is used", UserWarning, stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    fns = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if not isinstance(segments, int) or segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be a positive int, got {segments!r}")
    size = len(fns) // segments
    if size == 0:           # torch: range() with a zero step
        raise ValueError(f"checkpoint_sequential: {segments} segments for {len(fns)} functions; "
                         "segments must be at most the number of functions")
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        chunk = fns[start:end + 1]
        input = checkpoint(lambda x, chunk=chunk: _run(chunk, x), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve)
    return _run(fns[end + 1:], input)


def _run(fns, x):
    for fn in fns:
        x = fn(x)
    return x
