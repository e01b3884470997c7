"""The tape walk: ``Tensor.backward()`` visits the recorded graph in reverse topological order,
runs each op's ``backward``, sums the gradients that meet, fills the leaves' ``.grad`` and frees
the graph. Whose array becomes a ``.grad`` is decided in gt/autograd/buffers.py.
"""

from operator import attrgetter

from gt.autograd import (anomaly, deferred, function, grad_hooks, hooks, node_hooks, rebind, release, sparse_grad,
                         versions, walk_steps)
from gt.autograd.buffers import PendingGrads, accumulate, detached
from gt.autograd.function import Function, fit_grad, tape
from gt.autograd.sparse_grad import SparseGrad
from gt.autograd.graph_walk import walk_graph
from gt.backend import B
from gt.sharding import layout
from gt.sharding.layout import Placed

_after_backward = []   # callbacks for the end of the next backward() (gt.distributed's gradient sync)


def backward_one(root, grad=None, retain_graph=None, create_graph=False):
    """Accumulate d(root)/d(leaf) into every leaf's ``.grad``. See ``Tensor.backward`` (and
    gt/autograd/gradients.py's ``backward`` for several roots or ``inputs=``)."""
    if retain_graph is None:
        retain_graph = create_graph
    if create_graph:
        seed = _seed(root, grad)   # checked; a gradient tensor given is used itself (it may have a graph)
        if isinstance(grad, function.Tensor):
            start = grad if grad.dtype == root.dtype else grad.to(root.dtype)
        else:
            start = function.Tensor._wrap(seed)
        walk_graph(topological_order(root), {id(root): start}, retain_graph)
    else:
        pending = PendingGrads(root, _seed(root, grad))
        walk(topological_order(root), pending, retain_graph)
    finish()


def finish():
    """The end of a backward: the tape is cleared and the ``call_after_backward`` callbacks run."""
    tape.clear()
    callbacks = list(_after_backward)
    _after_backward.clear()
    for fn in callbacks:
        fn()


@release.clears_stand_ins
def walk(order, pending, retain_graph, capture=None):
    """Run the backward of the ops of ``order`` (``topological_order``), outputs first, from the
    gradients in ``pending``, freeing each op walked unless ``retain_graph``. Without ``capture``,
    fill the leaves' ``.grad`` (``backward``). With ``capture`` (a set of tensor ids: the inputs of
    ``gt.autograd.grad``), return ``{id: gradient}`` of those reached instead, touching no leaf's
    ``.grad`` and running only the ops on a path to one of them, as torch does."""
    # leaves with post-accumulate hooks (an optimizer stepping in the backward: gt/autograd/hooks.py)
    with_hooks = capture is None and hooks.active()
    fused = hooks.fused_plan(order) if with_hooks else None
    tensor_hooks = grad_hooks.table()   # Tensor.register_hook's (gt/autograd/grad_hooks.py)
    runs = None if capture is None else walk_steps.on_paths(order, capture)
    got, timed = {}, function.profiling    # the profiler recording now, read once per walk
    for node in reversed(order):
        g = pending.pop(node)
        if g is None:
            continue
        hooked = tensor_hooks and id(node) in tensor_hooks
        if hooked or runs is not None:
            g = walk_steps.before_op(node, g, hooked, runs, capture, got, _ARRAYS)
            if g is None:
                continue    # off the paths to gt.autograd.grad's inputs
        ctx = node._ctx
        if ctx is None:     # a leaf (gt.autograd.grad's walk runs ops only: runs holds no leaf)
            if hooked:
                accumulate(node, g)   # a copy: a hook may keep the gradient it saw
            else:
                pending.to_leaf(node, g)
            if with_hooks:
                hooks.after_accumulate(node)
            continue
        if node._retains_grad:
            _retain(node, g)
        if ctx.released:
            raise RuntimeError(walk_steps.FREED)
        if fused and id(ctx) in fused:
            ctx.fused = fused[id(ctx)]     # read (and dropped) by the op's backward
        # grad_fn.register_hook/prehook; the flag first: reading an unset slot raises inside (0.2 us)
        own = getattr(ctx, "_node_hooks", None) if node_hooks.registered else None
        if own is not None:
            g = node_hooks.run_pre(own, g, _as_tensor, _as_value)
        grads = _checked_grads(ctx, g) if timed is None else timed.node(ctx, _checked_grads, g)
        if own is not None:
            grads = node_hooks.run_post(own, ctx.inputs, grads, g, _as_tensor, _as_value, function.Tensor)
        for parent, parent_grad in grads:
            pending.add(parent, parent_grad)
        # read by its op and held by nobody else now: the engine may keep the buffer for the
        # next array of its shape (the torch engine's input gradients of Linear layers and
        # packed attention gradients, made in parked buffers: no fresh pages each layer)
        B.recycle_spare(g)
        if not retain_graph:
            release.free(ctx)
    return got


def _checked_grads(ctx, g):
    return _input_grads(ctx, g) if not anomaly.enabled else anomaly.checked(ctx, _input_grads, ctx, g)


def _as_tensor(value):
    return value.tensor if type(value) is SparseGrad else function.Tensor._from_value(value)


def _as_value(t):
    if isinstance(t, function.Tensor):
        return SparseGrad(t) if t.is_sparse else t._value
    return t


def call_after_backward(fn):
    """Run ``fn()`` once, when the next ``backward()`` has filled every ``.grad`` (registering the
    same callable twice before then runs it once)."""
    if fn not in _after_backward:
        _after_backward.append(fn)


def _retain(node, g):
    """Give a ``retain_grad()`` tensor its gradient: a copy of ``g`` (which flows on into the op's
    backward), added to an earlier one out of place, as torch's: a ``.grad`` someone holds from a
    backward before keeps its values."""
    prior = node._grad_value
    node._grad_value = None
    accumulate(node, g)
    if prior is not None:
        node._grad = prior + node._grad_value


_ARRAYS = walk_steps.Walker(grad_hooks.run, detached, _retain)   # this walk's gradients: engine arrays


def _seed(root, grad):
    """The gradient the walk starts from: ones for a scalar, else ``grad`` checked and copied."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward() called on a tensor that does not require grad and has no grad_fn: "
            "create the inputs with requires_grad=True, and do not compute it under gt.no_grad()"
        )
    if root._ctx is not None and root._ctx.released:
        raise RuntimeError(walk_steps.FREED)
    if grad is None:
        if root.dtype.is_complex:
            raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {root.dtype!r}: "
                               f"backward a real loss (z.abs().sum(), z.real.sum()) or pass backward(grad)")
        if root.numel() != 1:
            raise RuntimeError(
                f"backward() without a gradient is only defined for scalar outputs; this tensor has shape "
                f"{root.shape}: call .sum() or .mean() first, or pass backward(grad) with that shape"
            )
        return _beside(B.ones(root.shape, root.dtype), root)
    seed = grad._data if isinstance(grad, function.Tensor) else _beside(B.asarray(grad, dtype=root.dtype), root)
    if tuple(seed.shape) != root.shape:
        raise ValueError(f"backward(grad): grad has shape {tuple(seed.shape)} but the tensor has shape {root.shape}")
    # A copy in the root's dtype: the caller keeps theirs; ours may end up as a leaf's .grad.
    return B.astype(seed, root.dtype) if B.dtype_of(seed) != root.dtype else B.copy(seed)


def _beside(seed, root):
    """``seed`` (made on gt's home device) on the device of an unsharded ``root``: a graph computed
    on the CPU of a GPU machine (tensors made with device="cpu") starts its walk there."""
    if root._placed is None:
        where = B.device_of(root._array)
        if B.device_of(seed) != where:
            return B.to_device(seed, where)
    return seed


def _input_grads(ctx, g):
    """``(input, its gradient)`` for each input of ``ctx`` that requires grad and gets one, in the
    input's shape and dtype. An op run over the mesh, or a gradient spread over it, goes through
    the tensor layer's sharded backward; when that declines, the gradient is gathered first."""
    grads = None
    if not isinstance(ctx, Function) or isinstance(g, Placed) or type(g) is SparseGrad:    # 15 ns, a tuple's 38
        if type(g) is SparseGrad:       # passed on sparse where torch's backward of the op takes one
            versions.check(ctx)
            sparse = sparse_grad.through(ctx, g) if isinstance(ctx, Function) else None
            if sparse is not None:
                return sparse
            g = g.materialize()
        if not isinstance(ctx, Function) or isinstance(g, Placed):
            grads = function._backward_placed(ctx, g, ctx.inputs)  # sharded: already in shape and dtype
            if grads is None:
                g = layout.materialize(g)
    fitted = grads is not None
    if not fitted:
        versions.check(ctx)
        deferred.plain = True      # this op's own backward on plain arrays may defer a weight gradient
        try:
            grads = ctx.backward(g)
        finally:
            deferred.plain = False
        if not isinstance(grads, tuple):
            grads = (grads,)
    out = []
    for parent, pg in zip(ctx.inputs, grads):
        if pg is None or not getattr(parent, "requires_grad", False):
            continue
        if not fitted:
            # most gradients already match their input: compare the engine's own shape and dtype
            # (fit_grad's gt-level comparison is several Python calls, at every input of every op)
            arr = parent._array
            if arr is None or pg.shape != arr.shape or pg.dtype != arr.dtype:
                pg = fit_grad(pg, parent.shape, parent.dtype)
        out.append((parent, pg))
    return out


def topological_order(root, others=()):
    """Nodes reachable from ``root`` (and ``others``) through recorded ops, inputs before outputs.
    Where hooks can see it (tensor, node or post-accumulate hooks exist), in torch's order: the
    walk (last to first) runs the computed tensors by the sequence number of their op, the latest
    first (torch's engine runs the ready node of the highest number, and every node's inputs are
    older than it), and each leaf as soon as its last reader has run (torch's ``AccumulateGrad``
    runs first once ready), so that hooks on independent branches run in torch's order. Without
    hooks on this graph's nodes the search's own order is kept (the sort costs about 0.3 us a node)."""
    ranks = {} if grad_hooks.table() or hooks.active() or node_hooks.registered else None
    order = _search((root, *others), ranks)
    if ranks is not None and _sees_hooks(order):
        rank = ranks.get
        order.sort(key=lambda n: n._ctx.seq if n._ctx is not None else rank(id(n), _LAST))
    return order


def _sees_hooks(order):
    """Whether a hook on one of ``order``'s nodes (a tensor's, a leaf's post-accumulate, a
    node's) can see the walk's order. Hooks elsewhere must not choose it: the order is the order
    a gradient's contributions are summed in, so it sets their last bits, and another model's
    hooks (an optimizer stepping in the backward) live on until Python's collector frees them:
    the same seed gave other bits after other work."""
    # set and map in C: a Python loop over the nodes cost more than the sort it spares
    ids = set(map(id, order))
    if not ids.isdisjoint(grad_hooks.table()) or not ids.isdisjoint(hooks.table()):
        return True
    nodes = node_hooks.table()
    return bool(nodes) and not set(map(id, map(_CTX, order))).isdisjoint(nodes)


def _search(roots, ranks):
    """Iterative depth-first search from ``roots``: the nodes, inputs before outputs. ``ranks``
    (a dict, or None): filled with each leaf's place in torch's order, just below the number of
    the oldest op that reads it, its first input first."""
    Tensor = function.Tensor
    order, seen = [], set()
    stack = [(r, False) for r in reversed(roots)]
    changed = rebind.active()   # tensors changed in place: each op reads the versions of its time
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        key = id(node)
        if key in seen:
            continue
        seen.add(key)
        stack.append((node, True))
        ctx = node._ctx
        if ctx is not None:                # a freed op too: the walk raises there, before its inputs
            if ctx.released is None:       # walked and freed before, saving nothing: its stand-ins
                release.resolve(ctx)
            if changed and not ctx.released:
                rebind.resolve(ctx)
            if ranks is not None:
                _rank_leaves(ctx, ranks, Tensor)
            for parent in ctx.inputs:
                if isinstance(parent, Tensor) and parent._requires_grad and id(parent) not in seen:
                    stack.append((parent, False))
    return order


def _rank_leaves(ctx, ranks, Tensor):
    seq = ctx.seq - 0.5
    for i, parent in enumerate(ctx.inputs):
        if isinstance(parent, Tensor) and parent._requires_grad and parent._ctx is None:
            key, rank = id(parent), seq - i * 1e-6
            if ranks.get(key, rank) >= rank:
                ranks[key] = rank


_LAST = float("inf")     # a root that is a leaf: first
_CTX = attrgetter("_ctx")
