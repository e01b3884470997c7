"""Who owns a gradient array: the one place that decides when a buffer may be handed on
without a copy, and when a dropped one goes back to the engine for reuse.

A backward pass holds the gradients still flowing (``PendingGrads``). A leaf may keep the array
it is handed as its ``.grad`` without a copy only when no pending entry still holds it and it is
no view (of another gradient, or a broadcast): users change ``.grad`` in place (``zero_()``,
``+=``), which must not change another leaf's gradient. ``zero_grads`` hands a dropped gradient
that nobody else holds back to the engine (``B.recycle``), which gives the buffer out again for
the next gradient of that shape (``B.empty_reused``, ``B.matmul_reused``): large fresh
allocations page-fault. A sharded gradient (``Placed``) says with ``owned`` whether its first
share is a fresh buffer that a reduction may reuse.
"""

import weakref

from gt.autograd import function, sparse_grad
from gt.autograd.deferred import LowRank, materialized
from gt.autograd.sparse_grad import SparseGrad, SparseSeen
from gt.backend import B
from gt.sharding import layout
from gt.sharding.layout import Placed


class PendingGrads:
    """The gradients of one backward pass not yet consumed: ``{id(node): array}``, and how many
    entries hold each array (by id; every entry is counted in and out, so an id reused by a new
    array starts from zero)."""

    def __init__(self, root, seed):
        self._grads = {id(root): seed}
        self._held = {id(seed): 1}   # a plain dict: a Counter's __delitem__ is a Python call

    def pop(self, node):
        """The summed gradient of ``node`` (None if none reached it), no longer held here."""
        g = self._grads.pop(id(node), None)
        if g is not None:
            self._release(g)
        return g

    def add(self, node, g):
        """Add ``g`` to ``node``'s gradient, out of place: the sum it replaces may be a view that
        other entries share."""
        key = id(node)
        prev = self._grads.get(key)
        if prev is not None:
            self._release(prev)
            if type(g) is SparseGrad and type(prev) is SparseGrad:
                g = prev.plus(g)        # torch's sparse sum: sparse
            else:                       # dense + sparse (a tied table) is dense, as gt's dense + sparse tensor
                g = layout.add(materialized(prev), materialized(g))
        self._grads[key] = g
        held, key = self._held, id(g)
        held[key] = held.get(key, 0) + 1

    def to_leaf(self, node, g):
        """Accumulate ``g`` into the leaf's ``.grad``, without a copy when nothing else holds it."""
        accumulate(node, g, shared=id(g) in self._held)

    def _release(self, arr):
        key = id(arr)
        held = self._held
        n = held[key] - 1
        if n > 0:
            held[key] = n
        else:
            del held[key]


def accumulate(node, g, shared=True):
    """Add ``g`` into ``node.grad``; ``shared`` (the default: copy) says whether someone else
    still holds ``g``. The leaf owns its ``.grad`` array afterwards. A ``LowRank`` gradient
    (gt/autograd/deferred.py) is kept as it is by a leaf with no gradient yet."""
    if type(g) is LowRank:
        if node._grad_value is None and node._grad_factors is None:
            node._grad_factors = g
            return
        g, shared = g.materialize(), False
    elif type(g) is SparseGrad:
        sparse_grad.accumulate(node, g.tensor)
        return
    if node._placed is not None or isinstance(g, Placed):
        _accumulate_placed(node, g, shared)
    elif node.grad is None:
        owned = not shared and B.is_array(g) and not B.is_view(g)
        node._grad = function.Tensor._wrap(g if owned else B.copy(g), requires_grad=False)   # unchecked: ours
    else:
        grad = node.grad
        if SparseSeen.made and grad.is_sparse:    # a sparse .grad (Embedding(sparse=True)) + dense: dense, as torch's
            sparse_grad.accumulate(node, function.Tensor._wrap(g))
        else:
            grad._data += g  # the leaf owns its .grad array, so in place is safe


def detached(node, g):
    """``g`` as a gradient of ``node`` that nobody else holds, as ``accumulate`` would make
    ``node.grad`` of it (``gt.autograd.grad``'s results): a new engine array in the node's
    shape, or, for a tensor spread over the mesh, a ``Placed`` in its placement."""
    if type(g) is SparseGrad:
        return g     # torch's autograd.grad hands the sparse gradient itself back
    g = materialized(g)
    if isinstance(g, Placed):
        g = Placed(g.shards, g.placement, g.shape, owned=False)   # the walk may still read its shares
    if node._placed is None:
        return B.copy(layout.materialize(g))
    value = layout.convert(g, node.placement, node._placed.sizes)
    shards = [B.copy(s) for s in (value.shards if isinstance(value, Placed) else [value])]
    return Placed(shards, node.placement, node.shape)


def _accumulate_placed(node, g, shared):
    """``accumulate`` where the leaf or its gradient is spread over the mesh: the gradient takes
    the leaf's placement. A replicated parameter's partial gradient is all-reduced here, once
    per backward, after every contribution has been summed."""
    Tensor = function.Tensor
    if node._placed is None:  # replicated leaf
        if isinstance(g, Placed):
            if shared:
                g = Placed(g.shards, g.placement, g.shape, owned=False)
            arr = layout.materialize(g)  # a fresh array, or the first share that we own
        else:
            arr = B.copy(g)
        if node.grad is None:
            node.grad = Tensor._wrap(arr, requires_grad=False)
        else:
            node.grad._data += arr
        return
    value = layout.convert(g, node.placement, node._placed.sizes)
    shards = [B.copy(s) for s in (value.shards if isinstance(value, Placed) else [value])]
    if node.grad is None:
        node.grad = Tensor._from_value(Placed(shards, node.placement, node.shape))
    else:
        for mine, extra in zip(node.grad._placed.shards, shards):
            mine += extra


def zero_grads(params, set_to_none=True):
    """Clear the ``.grad`` of each tensor in ``params``: drop it (``set_to_none``) or fill it with
    zeros. Shared by ``Module.zero_grad`` and ``Optimizer.zero_grad``. A dropped gradient that
    nobody else holds (no reference to the tensor, its array or a view of it) goes back to the
    engine (``B.recycle``). ``p.grad`` is None afterwards either way, as in torch. A gradient
    still held as factors is dropped without being made (zeros in its place when not
    ``set_to_none``)."""
    for p in params:
        if p._grad_factors is not None:
            p._grad_factors = None
            if not set_to_none:
                p.grad = function.Tensor._wrap(B.zeros(p.shape, p.dtype), requires_grad=False)
            continue
        g = p.grad
        if g is None:
            continue
        if not set_to_none:
            if g._ctx is not None or g._requires_grad:   # torch's: a create_graph gradient leaves the graph first
                g._ctx, g._requires_grad = None, False
            g.zero_()
            continue
        p.grad = None
        if g._placed is None and not (SparseSeen.made and g.is_sparse):
            arr = g._array
            alive = weakref.ref(g)
            del g
            if alive() is None:  # the tensor is gone: only `arr` here and whoever holds the array remain
                B.recycle(arr)
