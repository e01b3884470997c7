"""What a ``no_grad`` (``set_grad_enabled(False)``, a ``no_grad``-decorated function) makes inside a
forward transform's function (``jvp``, ``jacfwd``, ``linearize``), also inside a reverse transform
nested in one: torch's forward mode ignores grad mode, so its tangents flow through, while torch's
reverse levels (and the caller's graph) do not record it. gt computes both modes on one tape: such
ops are recorded and their results marked (gt/autograd/grad_mode.py, gt/autograd/levels.py), and
the reverse walks see the marked results as constants: hidden for a reverse transform's walk, cut
from the graph once the outermost forward transform has its tangents. ``HiddenOps`` sets ops aside
for a while (here, and for ``linearize``'s constants: gt/func/forward.py)."""

import contextlib

from gt.autograd import levels
from gt.autograd.backward import topological_order
from gt.autograd.grad_mode import mode
from gt.tensor import Tensor


class HiddenOps:
    """``(tensor, ctx)`` pairs whose ops are set aside: while hidden, each tensor shows no op (a walk
    stops at it, as at a constant), and its op comes back as it was when shown again."""

    def __init__(self, pairs):
        self.pairs = list(pairs)

    def hide(self):
        for t, _ in self.pairs:
            t._ctx = None

    def show(self):
        for t, ctx in self.pairs:
            t._ctx = ctx

    @contextlib.contextmanager
    def hidden(self):
        """The ops hidden inside the block, shown after it."""
        self.hide()
        try:
            yield self
        finally:
            self.show()

    @contextlib.contextmanager
    def shown(self):
        """The ops shown inside the block, hidden after it."""
        self.show()
        try:
            yield self
        finally:
            self.hide()


def _marked(outputs):
    """The marked tensors, with their ops, in the graph of ``outputs`` (none searched before one was made)."""
    outputs = [o for o in outputs if isinstance(o, Tensor) and o.requires_grad]
    if not levels._forward_only_made[0] or not outputs:
        return []
    return [t for t in topological_order(outputs[0], outputs[1:])
            if t._ctx is not None and getattr(t, "_forward_only", False)]


def constants_cut(outputs):
    """A reverse transform's walk from ``outputs`` (a context manager): the marked tensors' ops hidden
    for it. The recorded gradients (create_graph) keep them as tensors, whose ops the forward
    transform walks after."""
    return HiddenOps((t, t._ctx) for t in _marked(outputs)).hidden()


def cut_forward_only(outputs):
    """After the outermost forward transform computed its tangents (its results connected to the
    caller's graph): the marked tensors in their graph become constants that require no grad, as
    torch's no_grad made them, so the caller's backward does not differentiate through them."""
    if mode.forwards:       # an outer forward transform walks them still
        return
    for t in _marked(outputs):
        t._ctx, t._requires_grad = None, False
