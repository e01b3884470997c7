"""Ops on one block of a longer axis, given what the whole axis decided: the max/min over the
axis (``BlockExtremum``), a lookup by positions along it (``BlockTake``) and the values a top-k
over it picked (``BlockTakeAlong``). Run on each block
of a tensor cut along that axis, they give the whole op's gradient block by block, so the
tensor is never joined in one place (gt/tensor/axis_rules.py runs them on the mesh). On the
whole axis (one block starting at 0) each is the plain op.
"""

from gt import dtypes
from gt.autograd import Function
from gt.backend import B
from gt.ops._graph import mask_like
from gt.ops.reductions import _Extremum
from gt.ops.shape import AddAtIndex
from gt.ops.sorting import PutAlongAxis


class BlockExtremum(_Extremum):
    """``like``'s max/min (an ``_Extremum`` class: Max, Min, NormMax, NormMin) over ``axis`` of a
    tensor of which ``x`` is one block: ``out`` (the extremum, reduced axes kept) and ``count``
    (how many elements of the whole tensor hold it, per slice, in x's dtype) come in computed.
    Returns ``out``; the gradient goes to this block's elements that hold it, split among all
    the ties of the whole tensor, by ``like``'s rules (NaN, the inf-norms). ``hits``: those
    elements, where the caller found them already (to count the ties), kept for the backward."""

    hit = None

    @property
    def _torch_name(self):
        name = self.like._torch_name      # a string, or a property reading ``axis``
        return name.fget(self) if isinstance(name, property) else name

    def forward(self, x, out, count, like, axis, keepdims, hits=None):
        self.like, self.nan_grad, self.count = like, like.nan_grad, count
        self.hit = hits if B.is_array(hits) else None     # (every device's, when run on the whole tensor)
        self.axis, self.keepdims = axis, keepdims
        self.save(x, out)
        return out if keepdims else B.reshape(out, tuple(n for i, n in enumerate(x.shape)
                                                         if axis is not None and i not in axis))

    def hits(self, x, out):
        """This block's elements holding the extremum (``_Extremum._hits`` without its count)."""
        if self.hit is not None:
            return self.hit
        hit = x == out
        if self.axis is None and self.nan_grad:
            hit = B.where(out != out, x != x, hit)
        return hit

    def _hits(self, x, out):
        return self.hits(x, out), self.count


class BlockTake(Function):
    """``x[index]`` for an index whose entry ``where`` is an integer array of positions along
    ``axis`` of a tensor ``total`` long, of which ``x`` is the block starting at ``start``: where
    a position falls in this block its value, elsewhere -0.0 (0 for integers), so that the sum
    of every block's result is the whole lookup, exactly (``-0.0 + v`` is ``v``, ``-0.0``
    included). The positions are non-negative. The gradient is scattered into this block."""

    def forward(self, x, index, where, axis, start, total):
        n = x.shape[axis]
        positions = index[where]
        whole = tuple(total if i == axis else s for i, s in enumerate(x.shape))
        along = B.arange(0, total, 1, dtypes.int64)
        mine = (along >= start) & (along < start + n)
        own = B.getitem(B.broadcast_to(B.reshape(mine, tuple(total if i == axis else 1 for i in range(x.ndim))),
                                       whole), index)
        fill = -0.0 if B.dtype_of(x).is_floating_point else 0
        self.in_shape, self.dtype, self.own = tuple(x.shape), B.dtype_of(x), own
        if n == 0:
            self.local = None
            return B.full(tuple(own.shape), fill, B.dtype_of(x))
        local = list(index)
        local[where] = B.clip(positions - start, 0, n - 1)
        self.local = tuple(local)
        return B.where(own, B.getitem(x, self.local), fill)

    def backward(self, g):
        full = B.zeros(self.in_shape, self.dtype)
        if self.local is None:
            return (full, None, None, None, None, None)
        return (B.index_add(full, self.local, B.where(self.own, g, 0)),) + (None,) * 5

    def backward_graph(self, g):
        if self.local is None:
            return (mask_like(g, B.zeros(self.in_shape, self.dtype)),) + (None,) * 5
        grad = AddAtIndex.apply(g * mask_like(g, self.own), self.in_shape, self.dtype, self.local)
        return (grad,) + (None,) * 5


class BlockTakeAlong(Function):
    """``take_along_axis(x, indices, axis)`` of a tensor of which ``x`` is the block starting at
    ``start``, for positions distinct along the axis (a top-k's): the values ``out`` come in
    computed (picked from the devices' candidates), and the backward puts each gradient at its
    position where that falls in this block (a spare row past the block takes the others)."""

    def forward(self, x, out, indices, axis, start=0):
        n = x.shape[axis]
        self.in_shape, self.dtype, self.axis = tuple(x.shape), B.dtype_of(x), axis
        local = indices - start
        self.local = B.where((local >= 0) & (local < n), local, n)
        return out

    def backward(self, g):
        shape = list(self.in_shape)
        shape[self.axis] += 1
        full = B.put_along_axis(B.zeros(tuple(shape), self.dtype), self.local, g, self.axis)
        return (B.getitem(full, (slice(None),) * self.axis + (slice(0, self.in_shape[self.axis]),)), None, None)

    def backward_graph(self, g):
        return PutAlongAxis.apply(g, self.inputs[2], self.in_shape, self.axis), None, None
