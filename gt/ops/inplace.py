"""The ops behind writes into a tensor in the graph while gradients are recorded (gt/tensor/
inplace_grad.py records them): item assignment, ``copy_``, ``fill_`` and ``zero_`` (``IndexPut``),
and any in-place change of a view, seen from the tensor it is a view of (``WriteView``)."""

from gt.autograd import Function, unbroadcast
from gt.backend import B
from gt.ops._graph import mask_like
from gt.ops.shape import GetItem


class IndexPut(Function):
    """``x[index] = value``, written into ``x``'s own memory, which is also the result (torch's
    ``CopySlices``): the backward gives ``x`` the gradient with zeros at the written positions,
    and ``value`` the gradient at those positions summed back to its shape (the positions an
    integer index repeats each send theirs, as torch's ``index_put_``). ``value`` is a number or
    an array that broadcasts to ``x[index]``; ``index`` anything ``B.setitem`` takes (``...``:
    every position)."""
    complex_graph = True

    def forward(self, x, value, index):
        self.index = index
        self.value_shape = tuple(value.shape) if B.is_array(value) else None
        if self.value_shape is not None and B.dtype_of(value) != B.dtype_of(x):
            value = B.astype(value, B.dtype_of(x))   # torch writes in the target's dtype
        B.setitem(x, index, value)
        return x

    def backward(self, g):
        needs_x, needs_value = self.needs_input_grad[:2]
        gx = gv = None
        if needs_x:
            gx = B.copy(g)
            B.setitem(gx, self.index, 0)
        if needs_value:
            gv = B.getitem(g, self.index)
            shape = self.value_shape
            if len(shape) > gv.ndim:   # numpy lets a value have extra leading axes of size 1
                gv = B.reshape(gv, (1,) * (len(shape) - gv.ndim) + tuple(gv.shape))
            gv = unbroadcast(gv, shape)
        return gx, gv

    def backward_graph(self, g):
        needs_x, needs_value = self.needs_input_grad[:2]
        gx = gv = None
        if needs_x:
            kept = B.ones(tuple(g.shape), g.dtype)
            B.setitem(kept, self.index, 0)
            gx = g * mask_like(g, kept)
        if needs_value:
            gv = GetItem.apply(g, self.index)      # summed back to the value's shape by the walk
        return gx, gv


class WriteView(Function):
    """A tensor after an in-place change of one of its views, written through that view (torch's
    ``CopySlices``): ``base``'s own memory, returned. ``view`` holds the view's new values;
    ``replay(a)`` takes the view of an array of the base's shape, ``embed(h)`` puts an array of
    the view's shape back where the view lies, zeros elsewhere (the view ops' own backwards). The
    backward gives ``base`` the gradient with zeros where the view lies, and ``view`` the
    gradient there. A view never covers one position twice (an expanded tensor is refused before)."""
    complex_graph = True

    def forward(self, base, view, replay, embed):
        self.replay, self.embed = replay, embed
        return base

    def backward(self, g):
        gv = self.replay(g)
        gb = g - self.embed(gv) if self.needs_input_grad[0] else None
        return gb, (gv if self.needs_input_grad[1] else None)

    def backward_graph(self, g):
        # replay takes a tensor too (the view ops recorded); the base's share is g masked where the
        # view lies, and that mask is exact because a view covers each position at most once
        needs_base, needs_view = self.needs_input_grad[:2]
        gb = None
        if needs_base:
            covered = self.embed(self.replay(B.ones(tuple(g.shape), g.dtype)))
            gb = g * mask_like(g, covered == 0)
        return gb, (self.replay(g) if needs_view else None)
