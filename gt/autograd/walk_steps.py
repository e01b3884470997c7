"""What the two backward walkers share: the plain walk on engine arrays (gt/autograd/backward.py)
and the recorded walk on tensors (gt/autograd/graph_walk.py, ``create_graph=True``). Both take
their nodes from ``backward.topological_order``; each gives the steps here what differs between
them as a ``Walker``: how a tensor's hooks run on a gradient, how a captured gradient is kept,
and how a ``retain_grad()`` tensor takes one.
"""

from collections import namedtuple

FREED = (
    "trying to backward through a graph a second time (its saved values were freed by the first "
    "backward); call backward(retain_graph=True) the first time if you need to"
)

Walker = namedtuple("Walker", "run_hooks keep retain")
Walker.__doc__ = """A walker's ways with a gradient ``g`` of ``node``: ``run_hooks(node, g)`` returns ``g``
after the node's tensor hooks, ``keep(node, g)`` the value ``gt.autograd.grad`` returns for it,
and ``retain(node, g)`` gives a ``retain_grad()`` tensor its share."""


def on_paths(order, capture):
    """The ids of the nodes of ``order`` whose op leads to a tensor of ``capture``: the only ops
    ``gt.autograd.grad`` runs (and frees). A freed op (whose inputs are dropped) is counted in, so
    that the walk raises torch's "second time" error there."""
    useful, runs = set(capture), set()
    for node in order:     # inputs before outputs
        ctx = node._ctx
        if ctx is not None and (ctx.released or any(id(p) in useful for p in ctx.inputs)):
            runs.add(id(node))
            useful.add(id(node))
    return runs


def before_op(node, g, hooked, runs, capture, got, walker):
    """``g``, the gradient reaching ``node``, after its tensor hooks where it has some
    (``hooked``), with what ``gt.autograd.grad`` captures put in ``got`` ({id: kept gradient};
    ``capture``: the ids it asks for, ``runs``: ``on_paths``'s, None in a backward). None where
    the node's op does not run: the walk goes on to the next node."""
    key = id(node)
    if hooked:
        if runs is not None and key in capture and key in runs:
            got[key] = walker.keep(node, g)   # torch's: a tensor whose op runs on is captured before its hooks
        g = walker.run_hooks(node, g)
    if runs is not None:
        if key in capture and key not in got:
            got[key] = walker.keep(node, g)   # kept apart: g may flow on, or a hook keep it
        if key not in runs:
            if node._retains_grad and node._ctx is not None and key in capture:   # as torch's retain hook
                walker.retain(node, g)
            return None
    return g
