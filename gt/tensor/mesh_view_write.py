"""An in-place change through a view over the mesh of a tensor in the graph (``h[2:5].mul_(2)``,
``h.t()[0].zero_()``, ``h.view(-1).add_(1)`` where ``h`` is sharded), as torch records it.

On one device gt replays the view ops on plain arrays (gt/tensor/inplace_grad.py, ``WriteView``);
a view made over the mesh is one op per device, each on its own block, which that cannot replay.
Here the change is recorded out of place on the whole tensor at the top of the views (the root),
from ops that run over the mesh and have gradients: the view ops again from the root's version of
before down to the changed view, the change itself, and its way back up, level by level (item
assignment for an index, the inverse permute or reshape). The result is written into the root's
memory (the views see it, their version counters too), becomes the root's history, and each view
becomes its view op again on the changed tensor above it, as torch regenerates a view's
``grad_fn`` after a change of its base. Ops recorded before the change read the versions of
before (gt/autograd/rebind.py). Nothing here runs unless an in-place change meets a view over the
mesh, which gt otherwise refuses. Under forward AD only an alias of a whole tensor is written
(gt/tensor/mesh_alias_write.py); a view that gt makes over the mesh as a copy gathered to one
device is refused (gt/tensor/dispatch.py); ``x[i]`` along the sharded dim, a copy too, is written
back into ``x`` (gt/tensor/mesh_row_write.py).
"""

from gt.autograd import rebind, views
from gt.autograd.function import new_epoch
from gt.ops import shape as shape_ops
from gt.ops.inplace import IndexPut
from gt.tensor import dispatch, inplace_grad, inplace_values

# (a diagonal of a sharded tensor is made of these: gt/tensor/construct_methods.py)
_VIEW_OPS = (shape_ops.GetItem, shape_ops.Reshape, shape_ops.Permute)


def chain(t):
    """``([t, the view t is a view of, ...], root)`` where each is made from the next by a view op
    over the mesh that gt can write through, up to ``root``, a tensor that is no view; else None."""
    links, q = [], t
    while (base := inplace_grad.view_base(q)) is not None:
        ctx = q._ctx
        if type(ctx) is not dispatch.ShardedNode or ctx.cls not in _VIEW_OPS or ctx.inputs[0] is not base:
            return None
        links.append(q)
        q = base
    return (links, q) if links else None


def _replay(node, base):
    """``node``'s view op again, on ``base`` (recorded)."""
    return node.cls.apply(base, *node.inputs[1:], **node.kwargs)


def _embed(node, above, v):
    """``above`` (a version of the tensor ``node``'s view was made from) with that view's region
    holding ``v``, recorded out of place."""
    cls = node.cls
    if cls is shape_ops.Reshape:
        return shape_ops.Reshape.apply(v, tuple(above.shape))
    if cls is shape_ops.Permute:
        axes = tuple(node.inputs[1])
        return shape_ops.Permute.apply(v, tuple(sorted(range(len(axes)), key=axes.__getitem__)))
    return IndexPut.apply(above.clone(), v, node.inputs[1])


def rebase(t, compute, values, reads_self, saves_result):
    """``inplace_grad.rebase`` of ``t``, a view over the mesh (``chain``); returns ``t``."""
    ig = inplace_grad
    links, root = chain(t)
    nodes = [q._ctx for q in links]
    olds = [ig._old_version(q) for q in links]
    old_root = ig._old_version(root)
    levels = [old_root]             # the root's version of before, then each view of it down to t's
    for node in reversed(nodes):
        levels.append(_replay(node, levels[-1]))
    new = inplace_values.new_values(t, levels[-1], compute, values, reads_self)
    whole = new
    for node, above in zip(nodes, reversed(levels[:-1])):
        whole = _embed(node, above, whole)
    root._update(ig._assign, whole._value, check=False)     # the views' memory too
    if saves_result:
        ig.result_saved(t, new)
    root._ctx, root._requires_grad = whole._ctx, True
    ig._written.add(whole._ctx)
    epoch = new_epoch()
    rebind.changed(root, old_root, epoch)
    above = root
    for q, node, old in reversed(list(zip(links, nodes, olds))):
        q._ctx, q._requires_grad = _replay(node, above)._ctx, True
        q._ctx.previous = old       # rebind holds versions weakly: the view's op keeps the one before it
        rebind.changed(q, old, epoch)
        above = q
    for old in olds:        # their ops read the versions above of before: no cycle through the changed root
        rebind.resolve(old._ctx)
    inplace_values.read_before(values, ig.Tensor)
    views.wake(*links, root)
    return t
