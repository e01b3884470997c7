"""Writes at integer positions, with their gradients (torch's formulas): ``scatter``,
``scatter_reduce`` (``scatter_add`` is its sum), ``index_add`` and ``index_copy``.

Arguments arrive checked by the tensor layer (gt/tensor/scatter_methods.py): ``dim`` a
non-negative int, ``index`` int64 and in range, shapes fitting, one dtype. For the scatters,
``index`` has the tensor's number of axes and may be smaller than the tensor off ``dim`` and
smaller than ``src`` everywhere: only the part of ``src`` it covers is read (``_covered``),
and only the part of the tensor it reaches is written (``_reached``).
"""

from gt.autograd import Function
from gt.backend import B
from gt.ops._graph import const, mask_like
from gt.ops.elementwise import Where
from gt.ops.shape import AddAtIndex, GetItem

# what an element is set to before the scattered values are reduced into it (include_self=False)
_START = {"sum": 0, "mean": 0, "prod": 1}


def _covered(src, index):
    """The part of ``src`` that ``index`` covers: its leading ``index.shape`` (a view)."""
    return B.getitem(src, tuple(slice(0, n) for n in index.shape))


def _reached(target, index, dim):
    """The part of ``target`` that ``index`` reaches: all of ``dim``, ``index``'s sizes off it (a view)."""
    return B.getitem(target, tuple(slice(None) if a == dim else slice(0, n) for a, n in enumerate(index.shape)))


def _along_axis(index, dim):
    """``take_along_axis(·, index, dim)`` as an advanced index: ``index`` on ``dim``, the positions
    themselves on every other axis. A recorded ``GetItem`` of it adds repeated positions up in
    its gradient (``TakeAlongAxis`` assumes them distinct)."""
    return tuple(index if a == dim else B.reshape(B.arange(0, n, 1, "int64"), (n,) + (1,) * (index.ndim - a - 1))
                 for a, n in enumerate(index.shape))


def _taken_graph(gd, index_tensor, dim, src_shape):
    """The recorded gradient of ``src``: ``gd`` read back at ``index`` along ``dim``, in zeros of
    ``src``'s shape where ``index`` covers less."""
    taken = GetItem.apply(gd, _along_axis(index_tensor._array, dim))
    if tuple(taken.shape) == tuple(src_shape):
        return taken
    return AddAtIndex.apply(taken, src_shape, gd.dtype, tuple(slice(0, n) for n in taken.shape))


def _padded(part, shape, dtype):
    """``part`` (the gradient of the covered part of ``src``) in a zero array of ``shape``."""
    if tuple(part.shape) == tuple(shape):
        return part
    full = B.zeros(tuple(shape), dtype)
    B.setitem(full, tuple(slice(0, n) for n in part.shape), part)
    return full


class Scatter(Function):
    """``x`` with ``src`` (an array, or a Python number for every position) written at
    ``index`` along ``dim``; the gradient of ``x`` is zero where it was overwritten, that of
    ``src`` is the output gradient read back at ``index`` (torch's ``scatter``)."""
    complex_graph = True

    def forward(self, x, index, src, dim):
        self.dim, self.src_shape = dim, tuple(src.shape) if B.is_array(src) else None
        self.save(index)
        out = B.copy(x)
        B.put_along_axis(_reached(out, index, dim), index,
                         src if self.src_shape is None else _covered(src, index), dim)
        return out

    def backward(self, g):
        (index,) = self.saved
        gx = gsrc = None
        if self.needs_input_grad[0]:
            gx = B.copy(g)
            B.put_along_axis(_reached(gx, index, self.dim), index, 0, self.dim)
        if self.src_shape is not None and self.needs_input_grad[2]:
            taken = B.take_along_axis(_reached(g, index, self.dim), index, self.dim)
            gsrc = _padded(taken, self.src_shape, B.dtype_of(g))
        return gx, None, gsrc

    def backward_graph(self, g):
        (index,) = self.saved
        gx = gsrc = None
        if self.needs_input_grad[0]:
            kept = B.ones(tuple(g.shape), g.dtype)
            B.put_along_axis(_reached(kept, index, self.dim), index, 0, self.dim)
            gx = g * mask_like(g, kept)
        if self.src_shape is not None and self.needs_input_grad[2]:
            gsrc = _taken_graph(g, self.inputs[1], self.dim, self.src_shape)
        return gx, None, gsrc


class ScatterReduce(Function):
    """``x`` with each element of ``src`` reduced into it at ``index`` along ``dim``: ``reduce``
    is ``"sum"``, ``"mean"``, ``"amax"``, ``"amin"`` or ``"prod"``; ``include_self=False``
    leaves the old values of the positions that receive some value out of their reduction."""
    complex_graph = "holomorphic"

    def forward(self, x, index, src, dim, reduce, include_self):
        self.dim, self.reduce, self.include_self = dim, reduce, include_self
        self.src_shape, dtype = tuple(src.shape), B.dtype_of(x)
        src = _covered(src, index)
        out = B.copy(x)
        reached = _reached(out, index, dim)
        if not include_self:
            B.put_along_axis(reached, index, _START[reduce] if reduce in _START else src, dim)
        B.scatter_reduce_(reached, dim, index, src, "sum" if reduce == "mean" else reduce)
        counts = None
        if reduce == "mean":
            counts = B.full(tuple(x.shape), 1 if include_self else 0, dtype)
            B.scatter_reduce_(_reached(counts, index, dim), dim, index, B.ones(tuple(index.shape), dtype), "sum")
            counts = counts + (counts == 0)          # a position nothing reached keeps its value
            out = out / counts if dtype.is_floating_point or dtype.is_complex else out // counts  # ints: floor (torch)
        if reduce == "sum" and include_self:    # torch's scatter_add: the index alone, for src's gradient
            self.save(index if self.needs_input_grad[2] else None, None, None, None, None)
        else:
            self.save(index, x, src, out, counts)
        self.dtype = dtype
        return out

    def backward(self, g):
        index, x, src, out, counts = self.saved
        dim, dtype = self.dim, B.dtype_of(g)
        if self.reduce == "prod":
            # conj: torch's convention for complex factors (gt/ops/complex_ops.py)
            gx, gsrc = _prod_grads(g, index, B.conj(x), B.conj(src), B.conj(out), dim, self.include_self)
            return gx, None, _padded(gsrc, self.src_shape, dtype)
        if self.reduce == "sum":
            gx = gd = g
        elif self.reduce == "mean":
            gx = gd = g / counts
        else:
            # ties share the gradient evenly; as torch, the old value counts among the ties even
            # where include_self=False left it out (its own gradient is then zeroed below)
            self_won = B.astype(x == out, dtype)
            src_won = B.astype(src == B.take_along_axis(_reached(out, index, dim), index, dim), dtype)
            winners = B.copy(self_won)
            B.scatter_reduce_(_reached(winners, index, dim), dim, index, src_won, "sum")
            gd = g / winners
            gx = self_won * gd
        if index is None:                   # scatter_add whose src needs no gradient
            return gx, None, None
        gsrc = B.take_along_axis(_reached(gd, index, dim), index, dim)
        if self.reduce in ("amax", "amin"):
            gsrc = src_won * gsrc
        if not self.include_self:
            gx = B.copy(gx)
            B.put_along_axis(_reached(gx, index, dim), index, 0, dim)
        return gx, None, _padded(gsrc, self.src_shape, dtype)

    def backward_graph(self, g):
        if self.reduce == "prod":
            return _prod_grads_graph(self, g)
        # every factor the gradient is multiplied by is a constant: the backward's of ones
        index, _, src = self.saved[:3]
        ones = B.ones(tuple(g.shape), self.dtype)
        scale, _, _ = ScatterReduce.backward(self, ones)     # d(out)/d(x) per position, as a mask
        gx = g * mask_like(g, scale)
        share = B.ones(tuple(g.shape), self.dtype)
        if self.reduce == "mean":
            share = share / self.saved[4]
        elif self.reduce in ("amax", "amin"):
            x, out = self.saved[1], self.saved[3]
            winners = B.astype(x == out, B.dtype_of(src))
            src_won = B.astype(src == B.take_along_axis(_reached(out, index, self.dim), index, self.dim),
                               B.dtype_of(src))
            B.scatter_reduce_(_reached(winners, index, self.dim), self.dim, index, src_won, "sum")
            share = share / winners
        gsrc = _taken_graph(g * mask_like(g, share), self.inputs[1], self.dim, self.src_shape)
        if self.reduce in ("amax", "amin"):
            covered = B.zeros(self.src_shape, B.dtype_of(src))
            B.setitem(covered, tuple(slice(0, n) for n in src_won.shape), src_won)
            gsrc = gsrc * mask_like(g, covered)
        return gx, None, gsrc


def _prod_into(x, index, src, dim, include_self):
    """A copy of ``x`` with ``src`` multiplied in at ``index`` along ``dim`` (``scatter_reduce`` prod)."""
    out = B.copy(x)
    reached = _reached(out, index, dim)
    if not include_self:
        B.put_along_axis(reached, index, 1, dim)
    B.scatter_reduce_(reached, dim, index, src, "prod")
    return out


def _prod_grads(g, index, x, src, out, dim, include_self):
    """torch's gradients of a scatter_reduce product: each factor's is the product of the others,
    computed without dividing by a zero factor (the zeros are replaced by 1 and the product taken
    again), so one zero among the factors still gives the others' product as its own gradient."""
    dtype = B.dtype_of(g)

    def taken(a):
        return B.take_along_axis(_reached(a, index, dim), index, dim)

    kept = B.where(x == 0, 1, x)
    gx = g * _prod_into(kept, index, src, dim, include_self) / kept
    if not include_self:
        B.put_along_axis(_reached(gx, index, dim), index, 0, dim)
    src_zero = src == 0
    zeros = B.zeros(tuple(x.shape), dtype)
    B.scatter_reduce_(_reached(zeros, index, dim), dim, index, B.astype(src_zero, dtype), "sum")
    single = src_zero & (taken(zeros) == 1)            # the only zero among its position's factors
    others = _prod_into(x, index, B.where(single, 1, src), dim, include_self)
    gsrc = B.where(single, taken(g * others), taken(g * out) / B.where(src_zero, 1, src))
    return gx, gsrc


class _DelayedError(Function):
    """``x`` itself, whose gradient raises (torch's ``DelayedError``): the recorded gradient of a
    product is right to first order only where two zeros or more meet at one position."""

    def forward(self, x):
        return x

    def backward(self, g):
        raise RuntimeError("scatter_reduce(): Double backward is unsupported for src when >1 zeros in src are "
                           "scattered to the same position in self")

    def backward_graph(self, g):
        return self.backward(g)


def _prod_grads_graph(op, g):
    """``_prod_grads`` recorded (torch's formulas, of recorded products). As torch, whose second
    derivative refuses it, a position receiving two zeros or more is right to first order only."""
    index, x, src = op.saved[:3]
    dim, include_self = op.dim, op.include_self
    where = _along_axis(index, dim)
    x_t, index_t, src_t = op.inputs
    if tuple(src_t.shape) != tuple(index.shape):
        src_t = GetItem.apply(src_t, tuple(slice(0, n) for n in index.shape))

    def product(base, factors):
        return ScatterReduce.apply(base, index_t, factors, dim=dim, reduce="prod", include_self=include_self)

    kept = Where.apply(const(x == 0), 1.0, x_t)
    gx = g * product(kept, src_t) / kept
    if not include_self:
        received = B.ones(tuple(g.shape), g.dtype)
        B.put_along_axis(_reached(received, index, dim), index, 0, dim)
        gx = gx * mask_like(g, received)
    src_zero = src == 0
    zeros = B.zeros(tuple(x.shape), B.dtype_of(x))
    B.scatter_reduce_(_reached(zeros, index, dim), dim, index, B.astype(src_zero, B.dtype_of(x)), "sum")
    zeros = B.take_along_axis(_reached(zeros, index, dim), index, dim)
    single = const(src_zero & (zeros == 1))
    others = product(x_t, Where.apply(single, 1.0, src_t))
    gsrc = Where.apply(single, GetItem.apply(g * others, where),
                       GetItem.apply(g * product(x_t, src_t), where) / Where.apply(const(src_zero), 1.0, src_t))
    if bool(B.any(zeros > 1)):
        gsrc = _DelayedError.apply(gsrc)
    if tuple(gsrc.shape) != tuple(op.src_shape):
        gsrc = AddAtIndex.apply(gsrc, op.src_shape, g.dtype, tuple(slice(0, n) for n in gsrc.shape))
    return gx, None, gsrc


class IndexAdd(Function):
    """``x`` plus ``alpha * source`` added at the positions ``index`` (1-D) along ``dim``,
    repeated positions adding up (torch's ``index_add``)."""
    complex_graph = True

    def forward(self, x, index, source, dim, alpha):
        self.where, self.alpha = _along(dim, index), alpha
        out = B.copy(x)
        return B.index_add(out, self.where, source if alpha == 1 else source * alpha)

    def backward(self, g):
        picked = B.getitem(g, self.where) if self.needs_input_grad[2] else None
        return g, None, picked if picked is None or self.alpha == 1 else picked * self.alpha

    def backward_graph(self, g):
        picked = GetItem.apply(g, self.where) if self.needs_input_grad[2] else None
        return g, None, picked if picked is None or self.alpha == 1 else picked * self.alpha


class IndexCopy(Function):
    """``x`` with the slices ``source`` written at the positions ``index`` (1-D, distinct) along
    ``dim`` (torch's ``index_copy``)."""
    complex_graph = True

    def forward(self, x, index, source, dim):
        self.where = _along(dim, index)
        out = B.copy(x)
        B.setitem(out, self.where, source)
        return out

    def backward(self, g):
        gx = None
        if self.needs_input_grad[0]:
            gx = B.copy(g)
            B.setitem(gx, self.where, 0)
        return gx, None, B.getitem(g, self.where) if self.needs_input_grad[2] else None

    def backward_graph(self, g):
        kept = B.ones(tuple(g.shape), g.dtype)
        B.setitem(kept, self.where, 0)
        return g * mask_like(g, kept), None, GetItem.apply(g, self.where) if self.needs_input_grad[2] else None


def _along(dim, index):
    """The engine index that picks the positions ``index`` along ``dim`` (dim 0: the array
    itself, the engines' fast path for rows)."""
    return index if dim == 0 else (slice(None),) * dim + (index,)
