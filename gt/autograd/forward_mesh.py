"""Forward AD on tensors sharded over the mesh (gt/autograd/forward_ad.py computes an op's tangent on
the home device): the op's tensors gathered there, and the saved values' versions followed back to
the sharded tensors they were gathered from.

A view op of one dual tensor (indexing, reshape, permute, expand) is not gathered: its result is a
view over the mesh, as torch's view (an in-place change of the dual tensor, or of the view, shows in
the other; gt/tensor/mesh_alias_write.py writes through an alias over the mesh); as_strided and
unfold are copies, guarded by gt/autograd/forward_copies.py. Every other op runs on gathered copies,
and an op that saves a copy for its backward checks the versions of the sharded tensor's blocks
instead (an in-place change of that tensor before the backward raises torch's error, which the
copy, never written, would not see).
"""

from gt.autograd import function
from gt.autograd.grad_mode import is_grad_enabled
from gt.backend import B


class _Alias(function.Function):
    """``x`` itself: what a stand-in of an op's tangent computation becomes, to pass its gradients on;
    over the mesh, a recorded gather (no rule over the mesh: it runs on the gathered input)."""

    def forward(self, x):
        return x

    def backward(self, g):
        return (g,)

    def backward_graph(self, g):
        return (g,)


def alias(a):
    """``a`` itself, recorded as an op of its own (``_Alias``; gathered where ``a`` is sharded)."""
    return _Alias.apply(a)


def gathers(cls, args, tangents):
    """Whether the op ``cls`` of ``args`` (``tangents``: theirs) runs gathered on the home device:
    some tensor is sharded, and it is no view op of one dual tensor that is a view over the mesh there
    (``mesh_view``: indexing, reshape, permute, expand; as_strided's strides over the mesh are not torch's)."""
    if not any(isinstance(a, function.Tensor) and a._placed is not None for a in (*args, *tangents)):
        return False
    return not (cls.mesh_view and tangents[0] is not None and all(t is None for t in tangents[1:]))


def gathered(values, tangents, set_tangent):
    """``values`` with each tensor sharded over the mesh gathered on the home device; one that requires
    grad, in grad mode, by ``_Alias``. Each gets its gathered tangent of ``tangents`` (``set_tangent``:
    an op's recorded gradient reads it)."""
    out = []
    for i, a in enumerate(values):
        if isinstance(a, function.Tensor) and a._placed is not None:
            a = _Alias.apply(a) if a._requires_grad and is_grad_enabled() else function.Tensor._wrap(a._data)
            if tangents is not None and tangents[i] is not None:
                set_tangent(a, tangents[i])
        out.append(a)
    return out


def watched(out, args, sources):
    """``out``, whose op ran on ``args``, gathered from ``sources``: where the op saved a gathered copy,
    it checks the versions of the source's blocks before its backward (gt/autograd/versions.py)."""
    ctx = out._ctx
    if ctx is None or getattr(ctx, "saved_versions", None) is None or getattr(ctx, "written", None) is not None:
        return out       # (saved nothing, packed by saved-tensor hooks, or an in-place op's own check)
    kept = {id(s) for s in ctx.saved or () if B.is_array(s)}
    shards = tuple(s for g, a in zip(args, sources) if g is not a and isinstance(g, function.Tensor) and
                   g._placed is None and id(g._array) in kept for s in a._placed.shards)
    if shards:
        ctx.written = (shards, B.versions_of(shards))
    return out
