"""What runs on a leaf when its gradient is complete: torch's post-accumulate-grad hooks, and
plain gradient descent fused into the product that makes the gradient.

``register_post_accumulate_grad_hook(leaf, hook)`` (``Tensor.register_post_accumulate_grad_hook``):
during ``backward()``, once every contribution to ``leaf``'s gradient has been summed into
``leaf.grad``, ``hook(leaf)`` runs. This is how an optimizer steps inside the backward (torch's
"optimizer in backward"): each parameter is updated as soon as its gradient is ready and the
gradient is dropped, so no parameter's gradient outlives its update.

It is safe to change a leaf in place from its hook: the walk visits a leaf after every op that
depends on it (reversed topological order), so nothing left in this backward reads it. It is
not safe when the graph is kept (``retain_graph=True``) for another backward, which would see
the new values: as with torch's hooks, the caller's to avoid.

``register_fused_update(leaf, alpha)``: for plain gradient descent (``leaf += alpha() * grad``,
no momentum, no weight decay), an op whose gradient for that input is one product (a Linear's
weight gradient ``dY^T X``) may write the update straight into the leaf with one gemm
(``B.addmm_``): no gradient buffer is written or read at all. A backward does this for a leaf
only when it is used by exactly one op of the graph (so that product is its whole gradient),
is not spread over the mesh, and has no other hook; everywhere else the leaf's hook applies
the same update once the gradient is complete. ``alpha()`` is asked at each backward (the
learning rate may change) and returns None when fusing is not allowed now.
"""

import weakref

from gt.autograd import grad_hooks

# id(leaf) -> [hooks] and id(leaf) -> alpha(). Keyed by id (a tensor's == is elementwise, so it
# cannot key a WeakKeyDictionary); a weak reference drops a dead leaf's entries.
_hooks = {}
_fused = {}
_refs = {}


def _forget(key, tables=(_hooks, _fused, _refs)):
    for table in tables:
        table.pop(key, None)


def _track(leaf):
    key = id(leaf)
    if key not in _refs:
        _refs[key] = weakref.ref(leaf, lambda _, key=key, forget=_forget: forget(key))
    return key


class RemovableHandle:
    """What ``register_post_accumulate_grad_hook`` returns: ``handle.remove()`` unregisters."""

    def __init__(self, leaf, hook):
        self._leaf, self._hook = weakref.ref(leaf), hook

    def remove(self):
        leaf = self._leaf()
        hooks = _hooks.get(id(leaf)) if leaf is not None else None
        if hooks and self._hook in hooks:
            hooks.remove(self._hook)
            if not hooks:
                _forget(id(leaf))


def register_post_accumulate_grad_hook(leaf, hook):
    """Run ``hook(leaf)`` each time a backward has finished accumulating ``leaf.grad``."""
    if not callable(hook):
        raise TypeError(f"register_post_accumulate_grad_hook expects a callable, got {hook!r}")
    if leaf._ctx is not None:
        raise RuntimeError("post-accumulate-grad hooks can only be registered on leaf tensors (no grad_fn)")
    if not leaf.requires_grad:
        raise RuntimeError("cannot register a post-accumulate-grad hook on a tensor that does not require grad")
    _hooks.setdefault(_track(leaf), []).append(hook)
    return RemovableHandle(leaf, hook)


def register_fused_update(leaf, alpha):
    """Allow ``leaf += alpha() * grad`` to be fused into the op that makes the gradient (see the
    module docstring); the leaf must already have the hook that applies the same update."""
    _fused[_track(leaf)] = alpha


def active():
    return bool(_hooks)


def table():
    """The registry of post-accumulate hooks (``id(leaf) in table()``); empty when none exists."""
    return _hooks


def after_accumulate(leaf):
    """Run ``leaf``'s hooks, if any (called by the walk right after ``leaf.grad`` is complete)."""
    hooks = _hooks.get(id(leaf))
    if hooks:
        for hook in list(hooks):
            hook(leaf)


def fused_plan(order):
    """``{id(op): {input index: (alpha, leaf array)}}`` for this backward: each fusable input of
    an op that is a leaf registered for a fused update, used by that op only (once), unsharded,
    with no ``.grad`` to add to and no hook of its own beside the update's."""
    if not _fused:
        return None
    uses, where = {}, {}
    for node in order:
        ctx = node._ctx
        if ctx is None or ctx.released:
            continue
        for i, parent in enumerate(ctx.inputs):
            key = id(parent)
            if key in _fused and _refs[key]() is parent:
                uses[key] = uses.get(key, 0) + 1
                where[key] = (ctx, i, parent)
    plan = {}
    for key, (ctx, i, leaf) in where.items():
        if (uses[key] != 1 or i not in getattr(ctx, "fusable", ()) or leaf._placed is not None
                or leaf.grad is not None or len(_hooks.get(key, ())) != 1
                or key in grad_hooks.table()):   # a tensor hook must see the gradient
            continue
        alpha = _fused[key]()
        if alpha is not None:
            plan.setdefault(id(ctx), {})[i] = (alpha, leaf._array)
    return plan
