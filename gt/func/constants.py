"""What a ``no_grad`` (``set_grad_enabled(False)``, a ``no_grad``-decorated function) makes inside a
forward transform's function (``jvp``, ``jacfwd``, ``linearize``), also inside a reverse transform
nested in one: torch's forward mode ignores grad mode, so its tangents flow through, while torch's
reverse levels (and the caller's graph) do not record it. gt computes both modes on one tape: such
ops are recorded and their results marked (gt/autograd/grad_mode.py, gt/autograd/levels.py), and
the reverse walks see the marked results as constants: hidden for a reverse transform's walk, cut
from the graph once the outermost forward transform has its tangents."""

import contextlib

from gt.autograd import levels
from gt.autograd.backward import topological_order
from gt.autograd.grad_mode import mode
from gt.tensor import Tensor


def _marked(outputs):
    """The marked tensors, with their ops, in the graph of ``outputs`` (none searched before one was made)."""
    outputs = [o for o in outputs if isinstance(o, Tensor) and o.requires_grad]
    if not levels._forward_only_made[0] or not outputs:
        return []
    return [t for t in topological_order(outputs[0], outputs[1:])
            if t._ctx is not None and getattr(t, "_forward_only", False)]


@contextlib.contextmanager
def constants_cut(outputs):
    """A reverse transform's walk from ``outputs``: the marked tensors' ops hidden for it. The recorded
    gradients (create_graph) keep them as tensors, whose ops the forward transform walks after."""
    hidden = _marked(outputs)
    for t in hidden:
        t._ctx, t._forward_only = None, t._ctx
    try:
        yield
    finally:
        for t in hidden:
            t._ctx, t._forward_only = t._forward_only, True


def cut_forward_only(outputs):
    """After the outermost forward transform computed its tangents (its results connected to the
    caller's graph): the marked tensors in their graph become constants that require no grad, as
    torch's no_grad made them, so the caller's backward does not differentiate through them."""
    if mode.forwards:       # an outer forward transform walks them still
        return
    for t in _marked(outputs):
        t._ctx, t._requires_grad = None, False
