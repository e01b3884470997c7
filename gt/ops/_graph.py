"""Small tools for the ops' ``backward_graph``: the gradient written with recorded ops on tensors,
so that it can be differentiated again (gt/autograd/graph_walk.py). Masks and counts that a
gradient only multiplies by are constants here (their derivative is zero where it exists)."""

from gt.autograd import function
from gt.autograd.backward import topological_order
from gt.autograd.graph_walk import walk_graph
from gt.backend import B


def const(value):
    """An engine array as a tensor outside the graph."""
    return function.Tensor._wrap(value)


def mask_like(g, mask):
    """The boolean (or numeric) array ``mask`` as a constant tensor in ``g``'s dtype."""
    return const(B.astype(B.asarray(mask), g.dtype))


def expand_back(g, in_shape, axis, keepdims):
    """The gradient of a reduction over ``axis`` (None or a tuple): ``g`` broadcast back to the
    input's shape."""
    if not keepdims:
        kept = tuple(1 if axis is None or i in axis else n for i, n in enumerate(in_shape))
        g = g.reshape(kept)
    return g.expand(tuple(in_shape))


def grads_of(out, inputs, g):
    """The recorded gradients of ``out`` with respect to ``inputs`` (tensors, or None and
    constants, which get None) for the upstream gradient ``g``: for an op whose
    ``backward_graph`` writes its forward again with recorded ops and differentiates that."""
    targets = {id(t) for t in inputs if getattr(t, "requires_grad", False)}
    got = walk_graph(topological_order(out), {id(out): g}, True, targets)
    return tuple(got.get(id(t)) if id(t) in targets else None for t in inputs)
