"""Ops along one axis: the values a sort or top-k picked (``TakeAlongAxis``), and running sums
(``Cumsum``). ``axis`` arrives as a non-negative int (gt/ops/_shapes.normalize_axis); the
positions a sort chooses are computed without a gradient (``B.argsort``) and passed in as an
int64 tensor, so sort, argsort and topk share this one differentiable op."""

from gt.autograd import Function
from gt.backend import B


class TakeAlongAxis(Function):
    """``x`` gathered at ``indices`` along ``axis``; indices distinct along the axis (a sort's or
    top-k's), so the backward puts each gradient back at the one position it came from."""
    complex_graph = True

    def forward(self, x, indices, axis):
        self.in_shape, self.dtype, self.axis = tuple(x.shape), B.dtype_of(x), axis
        self.save(indices)
        # a sort's values in its indices' layout (torch's: the input's); a top-k's are row-major as its indices
        return B.dense_like(B.take_along_axis(x, indices, axis), indices)

    def backward(self, g):
        (indices,) = self.saved
        full = B.zeros(self.in_shape, self.dtype)
        return (B.put_along_axis(full, indices, g, self.axis), None)

    def backward_graph(self, g):
        return PutAlongAxis.apply(g, self.inputs[1], self.in_shape, self.axis), None


class PutAlongAxis(Function):
    """``g`` put at ``indices`` along ``axis`` into zeros of ``shape``: ``TakeAlongAxis``'s
    gradient as an op of its own (what ``create_graph=True`` records); its gradient is the take."""
    complex_graph = True

    def forward(self, g, indices, shape, axis):
        self.axis = axis
        return B.put_along_axis(B.zeros(tuple(shape), B.dtype_of(g)), indices, g, axis)

    def backward(self, gg):
        return B.take_along_axis(gg, self.inputs[1]._array, self.axis), None

    def backward_graph(self, gg):
        return TakeAlongAxis.apply(gg, self.inputs[1], self.axis), None


class Cumsum(Function):
    """Running sums along ``axis``. Each input adds to every sum from its position on, so its
    gradient is the sum of the output gradients from there to the end: a reversed cumsum."""
    complex_graph = True

    def forward(self, x, axis):
        self.axis = axis
        return B.cumsum(x, axis)

    def backward(self, g):
        flip = (slice(None),) * self.axis + (slice(None, None, -1),)
        return (B.getitem(B.cumsum(B.getitem(g, flip), self.axis), flip),)

    def backward_graph(self, g):
        return (Cumsum.apply(g.flip(self.axis), self.axis).flip(self.axis),)
