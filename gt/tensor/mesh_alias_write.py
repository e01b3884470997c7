"""An in-place change of an alias of a tensor sharded over the mesh: a view of the same shape and
layout (``x.view(x.shape)``), which is what forward AD's ``make_dual`` and ``unpack_dual`` return
for a sharded tensor in the graph (gt/autograd/forward_ad.py), as torch's view of their input.

gt writes through a view by replaying its view ops (gt/tensor/inplace_grad.py, ``WriteView``),
which it cannot do for a view made over the mesh (each device's op on its own block). An alias
covers the whole of the tensor it views, element for element, so there is nothing to replay: the
alias's new values are the new values of that tensor (the root), whose history becomes the change
itself, and each alias becomes a new alias of the changed tensor above it, as torch regenerates a
view's ``grad_fn`` after a change (``AsStridedBackward0`` over ``CopySlices``). Ops recorded before
the change read the versions of before (gt/autograd/rebind.py). Nothing here runs unless an
in-place change meets a view over the mesh; the other views over the mesh are written by
gt/tensor/mesh_view_write.py (outside forward AD), and the rest refused (``refusal``).
"""

from gt.autograd import forward_ad, function, mesh_views, rebind, views
from gt.autograd.function import new_epoch
from gt.ops import shape as shape_ops
from gt.tensor import inplace_grad, inplace_values, mesh_view_write
from gt.tensor import dispatch


def _above(q):
    """The tensor ``q`` aliases over the mesh (the same shape, placement and blocks), or None."""
    ctx = q._ctx
    if type(ctx) is not dispatch.ShardedNode or ctx.cls is not shape_ops.Reshape or ctx.released or not ctx.inputs:
        return None
    base, p = ctx.inputs[0], q._placed
    bp = getattr(base, "_placed", None)
    if p is None or bp is None or p.shape != bp.shape or p.placement != bp.placement or \
            [s.shape for s in p.shards] != [s.shape for s in bp.shards]:
        return None
    return base


def aliases(t):
    """``([t, the tensor t aliases, ...], root)`` where ``t`` is an alias over the mesh (of an alias...)
    of ``root``, a tensor that is no view; None otherwise (gt refuses the change)."""
    chain, q = [], t
    while (base := _above(q)) is not None:
        if inplace_grad.view_base(q) is not base:
            return None
        chain.append(q)
        q = base
    if not chain or inplace_grad.view_base(q) is not None:
        return None
    return chain, q


def writable(t, dual):
    """Whether an in-place change of ``t``, a view gt cannot replay on one device, is written here:
    an alias over the mesh (``aliases``) or, without forward AD, a view over the mesh that
    gt/tensor/mesh_view_write.py writes through."""
    return aliases(t) is not None or not dual and mesh_view_write.chain(t) is not None


def _follow(chain, root):
    """Make each alias of ``chain`` taken before a change of the tensor above it an alias of that
    tensor as it is now (the alias shows its new values), as torch regenerates a view's history;
    the ops recorded before read its version of before."""
    above = root
    for a in reversed(chain):
        if rebind.version_at(above, a._ctx.epoch) is not above:
            a_old = inplace_grad._old_version(a)
            with forward_ad.hidden():
                a._ctx = above.view(above.shape)._ctx
            rebind.changed(a, a_old, new_epoch())
            rebind.resolve(a_old._ctx)
        above = a


def rebase(t, compute, values, reads_self, saves_result, dual):
    """``inplace_grad.rebase`` of ``t``, an alias over the mesh (``aliases``) or a view over the mesh
    (``writable``); returns ``t``."""
    ig = inplace_grad
    if aliases(t) is None:
        return mesh_view_write.rebase(t, compute, values, reads_self, saves_result)
    chain, root = aliases(t)
    _follow(chain, root)
    old = ig._old_version(t)
    if dual:
        forward_ad.carry(old, t)
    new = inplace_values.new_values(t, old, compute, values, reads_self)
    t._update(ig._assign, new._value, check=False)       # the root's memory, the aliases' too
    if saves_result:
        ig.result_saved(t, new)
    olds = [old] + [ig._old_version(a) for a in chain[1:]] + [ig._old_version(root)]
    root._ctx, root._requires_grad = new._ctx, new._requires_grad
    if new._ctx is not None:
        ig._written.add(new._ctx)
    epoch = new_epoch()
    rebind.changed(root, olds[-1], epoch)
    above = root
    with forward_ad.hidden():        # a new alias over the mesh, not forward AD's gathered view
        for a, a_old in reversed(list(zip(chain, olds))):
            a._ctx, a._requires_grad = above.view(above.shape)._ctx, True
            rebind.changed(a, a_old, epoch)
            above = a
    for a_old in olds[:-1]:     # the aliases' ops of before read the versions above of before: no cycle
        rebind.resolve(a_old._ctx)
    inplace_values.read_before(values, ig.Tensor)
    views.wake(*chain, root)
    if dual:
        forward_ad.written(t, new)
    return t


def refuse_unrecorded_view(t):
    """Before a value that requires grad is written into ``t`` (the caller's write is recorded), where
    ``t`` is a view over the mesh taken unrecorded (gt/autograd/mesh_views.py keeps it): torch gives
    the tensor it views the change as its history. gt records the chain of view ops up to that tensor
    (``mesh_views.attach``), so that gt/tensor/mesh_view_write.py writes through them, where each is
    an op that writer replays (indexing, reshape/view, permute/transpose, and the diagonal, made of
    those) and no forward AD level is entered; it refuses the others (it would write the values
    alone, the gradient silently lost). A view taken under ``no_grad`` (or a view of one) gets
    torch's own error, and one of a leaf that requires grad torch's error for a change of such a view."""
    if t._requires_grad or t._placed is None or t._ctx is not None or getattr(t, "_mesh_base", None) is None:
        return
    if mesh_views.taken_under_no_grad(t):
        raise RuntimeError(views.NO_GRAD_WRITE)
    chain = mesh_views.unrecorded_chain(t)
    root = chain[-1][1]
    if root._requires_grad and root._ctx is None:
        raise RuntimeError(f"{inplace_grad.VIEW_OF_LEAF} ({inplace_grad.HINT})")
    other = next((cls for _, _, cls in chain if cls not in mesh_view_write._VIEW_OPS), None)
    if not root._requires_grad and function.dual_hook is None and other is None:
        mesh_views.attach(chain)
        return
    why = ("inside a forward AD level (gt.autograd.forward_ad.dual_level)" if function.dual_hook is not None else
           f"made by {other.__name__}, an op gt cannot write through over the mesh (indexing, reshape, view, "
           "permute, transpose and diagonal it can)" if other is not None else "whose tensor changed since")
    raise RuntimeError(
        "an in-place change: a value that requires grad written into a view over the mesh of a sharded tensor "
        f"that does not require grad, {why}; gt cannot give that tensor the change as its history (torch does): "
        "write into the tensor itself (base[index] = value), or make it require grad before taking the view")


def refusal(what, q):
    """The error for an in-place change of ``q``, a view gt cannot write through; it names the op of
    the first view that is no alias over the mesh (``make_dual`` of a slice names the slice)."""
    while (up := _above(q)) is not None and inplace_grad.view_base(up) is not None:
        q = up
    ctx = q._ctx
    return RuntimeError(
        f"{what}: this tensor is a view of another tensor in the graph (made by {ctx!r}), and gt writes in place "
        "only through views made by indexing, reshape, view, permute, transpose or diagonal (over the mesh: outside "
        "forward AD, and within it through an alias (make_dual, unpack_dual, x.view(x.shape)) of a whole tensor "
        "that is no view; torch would rewrite the other tensor's graph): write into that tensor instead "
        "(base[index] = base[index] + value), or change a copy (v = v.clone())")
