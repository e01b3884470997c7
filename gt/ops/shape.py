"""Layout ops: reshape, permute, expand, indexing, concatenation. Forwards return views
where the engine can (reshape of contiguous data, permute, expand)."""

import math

from gt.autograd import Function, function
from gt.backend import B


class Reshape(Function):
    complex_graph = True
    makes_view = mesh_view = True
    _torch_name = "ViewBackward0"       # torch's reshape of contiguous data is a view

    def forward(self, x, shape):
        self.in_shape = tuple(x.shape)
        return B.reshape(x, shape)

    def backward(self, g):
        return (B.reshape(g, self.in_shape),)

    def backward_graph(self, g):
        return (Reshape.apply(g, self.in_shape),)


class Permute(Function):
    complex_graph = True
    makes_view = mesh_view = True

    def forward(self, x, axes):
        self.inverse = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
        return B.transpose(x, axes)

    def backward(self, g):
        return (B.transpose(g, self.inverse),)

    def backward_graph(self, g):
        return (Permute.apply(g, self.inverse),)


class Diagonal(Function):
    """``x.diagonal(offset, dim1, dim2)``, a view as torch's (writes through it change ``x``)."""
    complex_graph = True

    makes_view = True

    def forward(self, x, offset, dim1, dim2):
        self.in_shape, self.dtype, self.args = tuple(x.shape), B.dtype_of(x), (offset, dim1, dim2)
        return B.diagonal_view(x, offset, dim1, dim2)

    def backward(self, g):
        return (_on_diagonal(g, self.in_shape, self.dtype, self.args),)

    def backward_graph(self, g):
        return (DiagonalEmbed.apply(g, self.in_shape, self.dtype, self.args),)


class DiagonalEmbed(Function):
    """``g`` on the diagonal of zeros of ``shape``: the gradient of ``Diagonal``, recorded."""
    complex_graph = True

    def forward(self, g, shape, dtype, args):
        self.args = args
        return _on_diagonal(g, shape, dtype, args)

    def backward(self, h):
        return (B.diagonal_view(h, *self.args),)

    def backward_graph(self, h):
        return (Diagonal.apply(h, *self.args),)


def _on_diagonal(g, shape, dtype, args):
    full = B.zeros(shape, dtype)
    B.diagonal_view(full, *args)[...] = g
    return full


class AsStrided(Function):
    """``x.as_strided(size, stride, offset)`` (and ``unfold``): a view of the memory ``x`` lies in,
    as torch's. ``layout`` (gt/tensor/strided_methods.py) says which of ``x``'s elements each
    element of the view is: ``index()`` gives ``(picked, index)``, the view's flat positions that
    are elements of ``x`` (None: all) and their flat indices in ``x``. The backward adds the
    gradient there (overlapping windows add up); memory outside ``x`` gets none, as in torch."""
    complex_graph = True

    makes_view = True

    def forward(self, x, layout):
        self.layout, self._torch_name = layout, layout.name
        if x is layout.array or layout.fits(x):
            return B.strided_view(x, layout.size, layout.stride, layout.offset)
        return self.replay(x)     # another array of x's shape (forward AD's tangent) laid out otherwise

    def replay(self, a):
        """The view's values gathered from ``a`` (an array or a tensor of ``x``'s shape); memory
        outside ``x`` reads as zeros."""
        layout = self.layout
        picked, index = layout.index()
        if not B.is_array(a):        # a tensor: a recorded gradient (create_graph=True)
            flat = GetItem.apply(Reshape.apply(a, (-1,)), index)
            if picked is not None:
                flat = AddAtIndex.apply(flat, (math.prod(layout.size),), layout.dtype, picked)
            return Reshape.apply(flat, layout.size)
        flat = B.getitem(B.reshape(a, (-1,)), index)
        if picked is not None:
            flat = B.index_add(B.zeros((math.prod(layout.size),), B.dtype_of(a)), picked, flat)
        return B.reshape(flat, layout.size)

    def backward(self, g):
        layout = self.layout
        picked, index = layout.index()
        flat = B.reshape(g, (-1,))
        if picked is not None:
            flat = B.getitem(flat, picked)
        full = B.index_add(B.zeros((math.prod(layout.in_shape),), layout.dtype), index, flat)
        shared = layout.shared()
        if shared is not None:
            full = B.getitem(full, shared[0]) * shared[1]
        return (B.reshape(full, layout.in_shape),)

    def backward_graph(self, g):
        layout = self.layout
        picked, index = layout.index()
        flat = Reshape.apply(g, (-1,))
        if picked is not None:
            flat = GetItem.apply(flat, picked)
        full = AddAtIndex.apply(flat, (math.prod(layout.in_shape),), layout.dtype, index)
        shared = layout.shared()
        if shared is not None:
            full = GetItem.apply(full, shared[0]) * function.Tensor._wrap(shared[1])
        return (Reshape.apply(full, layout.in_shape),)


class Expand(Function):
    complex_graph = True
    makes_view = mesh_view = True

    def forward(self, x, shape):
        return B.expand(x, shape)

    def backward(self, g):
        return (g,)  # the engine sums it back to the input's shape

    def backward_graph(self, g):
        return (g,)


class GetItem(Function):
    """``x[index]``; the backward scatters (adds, for repeated indices) into zeros."""
    complex_graph = True

    makes_view = mesh_view = True       # a view of x unless an index array is in it (function.note_view tells)

    @property
    def _torch_name(self):
        return _index_node_name(self.index)

    def forward(self, x, index):
        self.in_shape, self.index = tuple(x.shape), index
        self.dtype = B.dtype_of(x)
        return B.getitem(x, index)

    def backward(self, g):
        full = B.zeros(self.in_shape, self.dtype)
        return (B.index_add(full, self.index, g),)

    def backward_graph(self, g):
        return (AddAtIndex.apply(g, self.in_shape, self.dtype, self.index),)


def _index_node_name(index):
    """torch's node for ``x[index]``: the last view it applies (select, slice, unsqueeze), an
    alias when none, ``IndexBackward0`` once an index array is in it."""
    if not isinstance(index, tuple):
        return "SliceBackward0" if isinstance(index, slice) else _index_node_name((index,))
    name = "AliasBackward0"
    for item in index:
        if isinstance(item, bool) or not isinstance(item, (int, slice, type(None), type(Ellipsis))):
            return "IndexBackward0"
        if isinstance(item, int):
            name = "SelectBackward0"
        elif item is None:
            name = "UnsqueezeBackward0"
        elif isinstance(item, slice) and item != slice(None):
            name = "SliceBackward0"
    return name


class AddAtIndex(Function):
    """``g`` added at ``index`` into zeros of ``shape``: the backward of indexing, as an op of its
    own so that a recorded gradient of ``x[index]`` can be differentiated again; its own
    gradient is indexing."""
    complex_graph = True

    def forward(self, g, shape, dtype, index):
        self.index = index
        return B.index_add(B.zeros(shape, dtype), index, g)

    def backward(self, gg):
        return (B.getitem(gg, self.index),)

    def backward_graph(self, gg):
        return (GetItem.apply(gg, self.index),)


class Embedding(Function):
    """``weight[indices]``: rows of a table (V, D) picked by integer indices of any shape ->
    (*indices.shape, D). The indices are an input of the op (not a constant inside an index
    expression), so indices sharded over the mesh pick their rows on each device. The backward
    scatters (adds, for repeated indices) into zeros, as GetItem's."""
    complex_graph = True
    torch_saves = (1,)      # the indices

    def forward(self, weight, indices):
        self.in_shape, self.dtype, self.indices = tuple(weight.shape), B.dtype_of(weight), indices
        return B.getitem(weight, indices)

    def backward(self, g):
        return B.index_add(B.zeros(self.in_shape, self.dtype), self.indices, g), None

    def backward_graph(self, g):
        return AddAtIndex.apply(g, self.in_shape, self.dtype, self.indices), None


class ScaleGradient(Function):
    """``x`` itself (a view), whose gradient is multiplied by ``scale`` (broadcast to x): an
    embedding's padding rows (scale 0) and torch's ``scale_grad_by_freq`` (1 / the id's count)."""
    complex_graph = True

    def forward(self, x, scale):
        self.scale = scale
        return B.reshape(x, tuple(x.shape))

    def backward(self, g):
        return B.multiply(g, self.scale), None

    def backward_graph(self, g):
        return g * self.inputs[1], None


def row_major_copy(x):
    """A copy of the array ``x`` laid out row-major, also where the engine takes ``x`` as row-major
    already (a block over the mesh, row-major but for a dim of one element, of a whole that is not:
    the engines' ``ascontiguous`` return it as it is)."""
    out = B.ascontiguous(x)
    if out is x:
        out = B.empty(tuple(x.shape), B.dtype_of(x))
        B.setitem(out, Ellipsis, x)
    return out


class Contiguous(Function):
    """``x`` with its elements laid out row-major (a copy; ``Tensor.contiguous`` asks only for a
    tensor that is not): the gradient passes through unchanged."""
    complex_graph = True

    _torch_name = "CloneBackward0"

    def forward(self, x):
        return row_major_copy(x)

    def backward(self, g):
        return (g,)

    def backward_graph(self, g):
        return (g,)


class Clone(Contiguous):
    """A copy of ``x`` (``Tensor.clone`` where it is recorded): every element as it is, the sign of
    a zero too (``x + 0`` turns -0.0 into 0.0); the gradient passes through unchanged."""
    complex_graph = True

    def forward(self, x):
        return B.clone(x)


class Cat(Function):
    complex_graph = True

    def forward(self, *xs, axis=0):
        self.axis = axis
        self.offsets = []
        total = 0
        for x in xs[:-1]:
            total += x.shape[axis]
            self.offsets.append(total)
        return B.concatenate(xs, axis)

    def backward(self, g):
        return tuple(B.split(g, self.offsets, self.axis))

    def backward_graph(self, g):
        bounds = [0, *self.offsets, g.shape[self.axis]]
        return tuple(GetItem.apply(g, _along(self.axis, slice(s, e))) for s, e in zip(bounds, bounds[1:]))


class Stack(Function):
    complex_graph = True

    def forward(self, *xs, axis=0):
        self.axis = axis
        return B.stack(xs, axis)

    def backward(self, g):
        n = g.shape[self.axis]
        parts = B.split(g, list(range(1, n)), self.axis)
        shape = tuple(s for i, s in enumerate(g.shape) if i != self.axis)
        return tuple(B.reshape(p, shape) for p in parts)

    def backward_graph(self, g):
        return tuple(GetItem.apply(g, _along(self.axis, i)) for i in range(g.shape[self.axis]))


def _along(axis, key):
    """An index that applies ``key`` along ``axis`` (negative counts from the end)."""
    return (slice(None),) * axis + (key,) if axis >= 0 else (Ellipsis, key) + (slice(None),) * (-axis - 1)
