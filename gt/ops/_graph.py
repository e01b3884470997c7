"""Small tools for the ops' ``backward_graph``: the gradient written with recorded ops on tensors,
so that it can be differentiated again (gt/autograd/graph_walk.py). Masks and counts that a
gradient only multiplies by are constants here (their derivative is zero where it exists)."""

import copy

from gt.autograd import function, graph_walk
from gt.autograd.backward import topological_order
from gt.autograd.graph_walk import walk_graph
from gt.backend import B
from gt.ops.shape import Reshape


def const(value):
    """An engine array as a tensor outside the graph."""
    return function.Tensor._wrap(value)


def mask_like(g, mask):
    """The boolean (or numeric) array ``mask`` as a constant tensor in ``g``'s dtype."""
    return const(B.astype(B.asarray(mask), g.dtype))


def result(ctx, value):
    """The result of the recorded op ``ctx`` (``value``, the array it saved) as a tensor for its
    ``backward_graph``: torch's formulas of exp, sqrt, sigmoid, tanh, softmax... read the saved
    result, whose ``grad_fn`` is the op itself, and not the input, so an input changed in place
    after the forward is no error (the result changed is one: ``save`` checks its version). In
    the walk of ``ctx``'s output that is the output itself (gradients through it meet there, as
    in torch's engine); elsewhere (an op run again gathered from the mesh) a copy of ``ctx``
    recorded with ``value`` as its output."""
    node = graph_walk.walking
    if node is not None and node._ctx is ctx:
        # values unpacked by saved-tensor hooks, or an output whose ``.data`` was replaced: those
        # values, the gradient still to the output
        return node if node._array is value else _Through.apply(node, value)
    return recorded(ctx, value)


def recorded(ctx, value):
    """``value`` as the output of a copy of the op ``ctx`` (its inputs, saved values and
    backward), recorded anew where gradients are."""
    out = const(value)
    if function.is_grad_enabled() and True in ctx.needs_input_grad:
        op = copy.copy(ctx)
        for slot in ("_node_hooks", "_next", "_metadata"):     # the original node's, not this one's
            if hasattr(op, slot):
                delattr(op, slot)
        op.released, op.out_shape = False, out.shape
        out._requires_grad, out._ctx = True, op
        function.put_on_tape(op, out)
    return out


class _Through(function.Function):
    """``value`` with the gradient passed to ``node`` as it is (``result``'s values unpacked by a hook)."""

    complex_graph = True

    def forward(self, node, value):
        return value

    def backward(self, g):
        return g, None

    def backward_graph(self, g):
        return g, None


def expand_back(g, in_shape, axis, keepdims):
    """The gradient of a reduction over ``axis`` (None or a tuple): ``g`` broadcast back to the
    input's shape."""
    if not keepdims:
        kept = tuple(1 if axis is None or i in axis else n for i, n in enumerate(in_shape))
        g = g.reshape(kept)
    return g.expand(tuple(in_shape))


def partials(forward, inputs, g):
    """The recorded gradients of ``forward(*inputs)`` with respect to each of ``inputs`` on its
    own (the op's partial derivatives, what ``backward_graph`` returns) for the upstream gradient
    ``g``. The forward runs on a recorded alias of each input: walking to the inputs themselves
    would sum the paths through one another where they are one tensor (self-attention's
    q = k = v, each then getting the total) or one is made from another (k = x * 0.5 beside
    q = x), and the caller sums those again."""
    aliases = tuple(Reshape.apply(t, tuple(t.shape)) if getattr(t, "requires_grad", False) else t for t in inputs)
    return grads_of(forward(*aliases), aliases, g)


def grads_of(out, inputs, g):
    """The recorded gradients of ``out`` with respect to ``inputs`` (tensors, or None and
    constants, which get None) for the upstream gradient ``g``: for an op whose
    ``backward_graph`` writes its forward again with recorded ops and differentiates that."""
    targets = {id(t) for t in inputs if getattr(t, "requires_grad", False)}
    got = walk_graph(topological_order(out), {id(out): g}, True, targets)
    return tuple(got.get(id(t)) if id(t) in targets else None for t in inputs)
