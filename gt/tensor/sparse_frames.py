"""The order in which a sparse leaf's gradient lists its entries, as torch's does after transposes.

torch's sparse gradient of a leaf reached through ``to_dense()``/``sum`` is the output's gradient
masked by the output's own pattern (sorted in the output's dims), then carried back through each
op, a transpose permuting the index rows and keeping the order: so the leaf's coalesced positions
come listed sorted in the dims of the tensor masked (``(s * 2).t().to_dense()``: by column). A
sparse tensor whose entries come from the leaf ``s`` carries a frame, ``(cell, order)``: ``cell``
is ``s``'s and ``order`` says which of ``s``'s sparse dims each of its own dims is (transposes
change it). ``to_dense`` and ``sum`` record the order on the values they read (``Reorder``): when
a gradient passes there, the order reaches the cell for the rest of that backward, and the leaf
(its values' stand-in, or the dense one of a sum's pattern: gt/tensor/sparse_autograd.py's
``listed``/``resorted``) lists its gradient in it. A product (``@``) records none: torch's lists
the operand's entries as they are.
"""

from gt import autograd
from gt.autograd import Function, call_after_backward


class _Cell:
    """The order a leaf's gradient is listed in during one backward (None: the leaf's own)."""

    __slots__ = ("order",)

    def __init__(self):
        self.order = None

    def clear(self):
        self.order = None


class Reorder(Function):
    """``values`` themselves; the backward notes ``order`` in ``cell`` until the backward ends (the
    leaf lists its gradient sorted in those dims)."""

    def forward(self, values, cell, order):
        self.cell, self.order = cell, order
        return values

    def backward(self, g):
        self.cell.order = self.order
        call_after_backward(self.cell.clear)
        return g, None, None

    backward_graph = backward


def leaf_frame(s):
    """A new frame for the leaf ``s``: its own cell, its dims in order."""
    s._sp_frame = (_Cell(), tuple(range(s.sparse_dim())))
    return s._sp_frame


def frame_of(s):
    """The frame of the sparse ``s``: its leaf's cell and the order of that leaf's dims, or None."""
    return getattr(s, "_sp_frame", None)


def pass_frame(out, operands):
    """``out`` in the frame of its sparse operands where they share one leaf's (``s * 2``, ``s + s``)."""
    frames = {id(f[0]): f for f in (frame_of(p) for p in operands if getattr(p, "is_sparse", False)) if f}
    if len(frames) == 1 and autograd.is_grad_enabled():
        out._sp_frame = next(iter(frames.values()))


def transposed(s, out, dim0, dim1):
    """``out``, the transpose of ``s``, in ``s``'s frame with the two dims swapped."""
    frame = frame_of(s)
    if frame is not None and autograd.is_grad_enabled():
        cell, order = frame
        order = list(order)
        order[dim0], order[dim1] = order[dim1], order[dim0]
        out._sp_frame = (cell, tuple(order))
    return out


def noted(s, values):
    """``values`` (``s``'s, read by ``to_dense`` or ``sum``) with the order of ``s``'s frame noted
    on the way back (the leaf's own too: a transposed leaf's stand-in lists in another by default)."""
    frame = getattr(s, "_sp_frame", None)
    if frame is None or not values.requires_grad:
        return values
    return Reorder.apply(values, frame[0], frame[1])


def noted_order(sp, order):
    """The order a ``to_dense``/``sum`` on the way noted for the leaf ``sp``'s gradient in this
    backward, else ``order``."""
    frame = frame_of(sp)
    seen = None if frame is None else frame[0].order
    return order if seen is None else seen
