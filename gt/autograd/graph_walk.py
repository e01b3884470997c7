"""The walk of ``backward(create_graph=True)`` and ``gt.autograd.grad(..., create_graph=True)``:
the gradients are themselves recorded, so they can be differentiated again (higher-order
gradients: a gradient penalty, a Hessian-vector product, the derivatives a physics-informed
loss takes of its inputs).

The ordinary walk (gt/autograd/backward.py) runs each op's ``backward`` on engine arrays, which
records nothing. This one runs each op's ``backward_graph(g)`` instead: the same gradient written
with gt's differentiable ops on tensors (``g`` is a tensor; the op reads its inputs as tensors,
``self.inputs``), in grad mode, so every gradient it returns carries its own graph. An op that
has no ``backward_graph`` yet stops the walk with an error that names it; no gradient is then
changed.

Semantics are torch's: a leaf's ``.grad`` becomes a tensor with a ``grad_fn`` (accumulated out
of place, ``grad + g``), the graph walked is kept unless ``retain_graph=False`` is given, tensor
hooks see (and may replace) the recorded gradient, and ``retain_grad()`` tensors keep theirs.
"""

from gt.autograd import anomaly, function, grad_hooks, hooks, inference_saved, node_hooks, release, versions
from gt.autograd import sparse_grad, walk_steps
from gt.autograd.sparse_grad import SparseSeen
from gt.backend import B

# The tensor whose op's ``backward_graph`` runs now: a recorded gradient that reads the op's result
# takes it from here (gt/ops/_graph.py ``result``), so the second derivative reaches the same node, as
# torch's saved result (unpacked with the node as its grad_fn) does
walking = None


@release.clears_stand_ins
def walk_graph(order, seeds, retain_graph, capture=None):
    """Run ``backward_graph`` of the ops of ``order`` (inputs before outputs, as
    ``topological_order`` gives) from ``seeds`` ({id(node): gradient tensor}). Without
    ``capture``, accumulate into the leaves' ``.grad``; with it (a set of tensor ids), return
    ``{id: gradient tensor}`` for those reached and touch no ``.grad``."""
    global walking
    outer = walking         # a walk inside an op's backward_graph (``grads_of``) gives it back
    inference_saved.graph_walks[0] += 1
    try:
        return _walk(order, seeds, retain_graph, capture)
    finally:
        walking = outer
        inference_saved.graph_walks[0] -= 1


def _walk(order, seeds, retain_graph, capture):
    global walking
    runs = None if capture is None else walk_steps.on_paths(order, capture)
    _check_supported(order, runs)
    pending = dict(seeds)
    tensor_hooks = grad_hooks.table()
    with_hooks = capture is None and hooks.active()
    got, timed = {}, function.profiling    # the profiler recording now, read once per walk
    with function.enable_grad():
        for node in reversed(order):
            g = pending.pop(id(node), None)
            if g is None:
                continue
            hooked = tensor_hooks and id(node) in tensor_hooks
            if hooked or runs is not None:
                g = walk_steps.before_op(node, g, hooked, runs, capture, got, _TENSORS)
                if g is None:
                    continue    # off the paths to gt.autograd.grad's inputs
            ctx = node._ctx
            if ctx is None:    # torch's copy: g may be a view, or another leaf's, that a plain backward adds into
                node.grad = g.clone() if node.grad is None else node.grad + g
                if with_hooks:
                    hooks.after_accumulate(node)     # an optimizer stepping in the backward
                continue
            if node._retains_grad:
                _retain(node, g)
            if isinstance(ctx, function.Function):
                versions.check_graph(ctx)
            own = getattr(ctx, "_node_hooks", None)     # grad_fn.register_hook/prehook
            if own is not None:
                g = node_hooks.run_pre(own, g, _same, _same)
            walking = node
            pairs = None
            if SparseSeen.made and type(g) is not function.Tensor and g.is_sparse:    # (false until one is made)
                pairs = sparse_grad.through_graph(ctx, g) if isinstance(ctx, function.Function) else None
                g = g if pairs is not None else g.to_dense()     # where torch's backward densifies it
            if pairs is None:
                grads = _graph_grads(ctx, g) if timed is None else timed.node(ctx, _graph_grads, g)
                if not isinstance(grads, tuple):
                    grads = (grads,)
                pairs = [(p, pg) for p, pg in zip(ctx.inputs, grads)
                         if pg is not None and getattr(p, "requires_grad", False)]
                tie = getattr(ctx, "grad_reads_input", False) or getattr(
                    ctx.ctxs[0] if getattr(ctx, "ctxs", None) else ctx, "grad_reads_input", False)
                if tie:
                    pairs = [(p, pg if pg.requires_grad else _Linked.apply(pg, p, again=tie == "again"))
                             for p, pg in pairs]
            if own is not None:
                pairs = node_hooks.run_post(own, ctx.inputs, pairs, g, _same, _same, function.Tensor)
            for parent, pg in pairs:
                pg = fit(pg, parent.shape, parent.dtype)
                prev = pending.get(id(parent))
                pending[id(parent)] = pg if prev is None else prev + pg if not SparseSeen.made else _sum(prev, pg)
            if not retain_graph:
                release.free(ctx)
    return got


def _sum(a, b):
    """Two recorded gradients of one tensor added as torch's engine adds them: a sparse one and a
    dense one give a dense one (``dense + sparse``: torch refuses the sum the other way round)."""
    return b + a if a.is_sparse and not b.is_sparse else a + b


def _graph_grads(ctx, g):
    op = ctx.ctxs[0] if getattr(ctx, "ctxs", None) else ctx
    if g.dtype.is_complex and getattr(op, "complex_graph", None) == "holomorphic":
        # torch's gradient of a holomorphic f is g * conj(f'); the recorded formula, written for real
        # tensors with transposes and no conjugates, gives g * f' (bilinear ops alike): so it runs on
        # conj(g) and its results are conjugated (the identity for real-linear ops)
        grads = _run_graph(ctx, g.conj())
        grads = grads if isinstance(grads, tuple) else (grads,)
        return tuple(x.conj() if getattr(getattr(x, "dtype", None), "is_complex", False) else x for x in grads)
    return _run_graph(ctx, g)


def _run_graph(ctx, g):
    return ctx.backward_graph(g) if not anomaly.enabled else anomaly.checked(ctx, ctx.backward_graph, g)


class _Linked(function.Function):
    """``a`` itself, tied to ``x`` with a zero derivative: the recorded gradient of an op whose
    gradient is piecewise constant in its input (``relu``, ``abs``, max pooling, marked
    ``grad_reads_input``). torch's backward of such an op reads the input, so the gradient it
    records requires grad and differentiates again to zeros; without the tie gt's would be a
    constant, and a second ``gt.autograd.grad`` of it would raise instead. ``again``: the zeros it
    gives ``x`` are tied too (torch's relu ties its gradient to its output, so every order does)."""

    complex_graph = True

    def forward(self, a, x, again=False):
        self.again = again
        return a

    def backward(self, g):
        x = self.inputs[1]
        return g, B.zeros(x.shape, x.dtype)

    def backward_graph(self, g):
        x = self.inputs[1]
        zeros = function.Tensor._wrap(B.zeros(x.shape, x.dtype))
        return g, (_Linked.apply(zeros, x, again=True) if self.again else zeros)


def _check_supported(order, runs):
    """Refuse before any work when an op on the way has no recorded backward (or was freed)."""
    for node in order:
        ctx = node._ctx
        if ctx is None or (runs is not None and id(node) not in runs):
            continue
        if getattr(ctx, "released", False):
            raise RuntimeError(walk_steps.FREED)
        # an op run over the mesh: one device's share says (gt/tensor/dispatch.py)
        op = ctx.ctxs[0] if getattr(ctx, "ctxs", None) else ctx
        refusal = getattr(op, "graph_refusal", None)     # what torch refuses to differentiate twice
        if refusal is not None:
            raise RuntimeError(f"{refusal}; no gradient was changed")
        if getattr(op, "backward_graph", None) is None or not getattr(op, "records_graph", True):
            label = getattr(ctx, "name", type(ctx).__name__) + (f" ({op.fn})" if hasattr(op, "fn") else "")
            raise NotImplementedError(
                f"create_graph=True: the backward of {label} (in the graph of this tensor) cannot be recorded in gt "
                "yet, so its gradient cannot be differentiated again (MISSING.md lists the ops that can); no "
                "gradient was changed")
        # ``complex_graph``: True for an op whose recorded gradient is written for complex tensors too,
        # "holomorphic" for one whose real formula gives torch's through conjugates (``_graph_grads``)
        if getattr(op, "complex_graph", False):
            continue
        if node.dtype.is_complex or any(getattr(getattr(p, "dtype", None), "is_complex", False)
                                        for p in getattr(ctx, "inputs", ())):
            raise NotImplementedError(f"create_graph=True through complex tensors ({ctx!r}) is not supported in gt: "
                                      "its recorded gradient is written for real ones (MISSING.md lists the ops "
                                      "that record theirs for complex tensors); no gradient was changed")


def _run_hooks(node, g):
    return grad_hooks.applied(grad_hooks.hooks_of(node), g)     # recorded: this walk builds a graph


def fit(g, shape, dtype):
    """The recorded gradient ``g`` summed back to ``shape`` (undoing broadcasting) and cast to
    ``dtype``, as its input."""
    shape = tuple(shape)
    if g.shape != shape:
        lead = g.ndim - len(shape)
        if lead > 0:
            g = g.sum(dim=tuple(range(lead)))
        ones = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
        if ones:
            g = g.sum(dim=ones, keepdim=True)
        if g.shape != shape:
            g = g.reshape(shape)
    if g.dtype != dtype:
        # a real input's gradient is the real part of a complex one (torch's; ``to`` would warn)
        g = (g.real if g.dtype.is_complex and not dtype.is_complex else g).to(dtype)
    return g


def _same(value):
    """The recorded walk's gradients are tensors already: hooks get and give them as they are."""
    return value


def _kept(node, g):
    return g     # gt.autograd.grad's result: the recorded gradient itself


def _retain(node, g):
    node.grad = g if node.grad is None else node.grad + g    # out of place: an earlier .grad keeps its values


_TENSORS = walk_steps.Walker(_run_hooks, _kept, _retain)   # this walk's gradients: recorded tensors
