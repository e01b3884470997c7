"""The math of sparse COO tensors (gt/tensor/sparse_coo.py holds the class): every result is built
from differentiable dense gt ops on the tensor's ``values`` and int64 ``indices``, so gradients
reach the values (and any dense operand) through the ordinary tape on both engines.

A COO tensor means the dense tensor ``sum_k values[k] at indices[:, k]`` (duplicates add up), so
the derivative of any function of it with respect to ``values[k]`` depends only on
``indices[:, k]``; gt/tensor/sparse_grad.py relies on that to give a sparse leaf torch's gradient.
"""

from gt import autograd
from gt.ops._shapes import numel
from gt.tensor import creation
from gt.tensor.core import Tensor
from gt.tensor.functions import cat, stack
from gt.tensor.promotion import promote_types
from gt.tensor.sparse_frames import noted


def _strides(sizes):
    """Row-major strides of ``sizes`` as Python ints."""
    out, step = [], 1
    for s in reversed(sizes):
        out.append(step)
        step *= s
    return out[::-1]


def linear_positions(indices, sizes):
    """(nnz,) int64 row-major positions of the sparse ``indices`` (sparse_dim, nnz) in ``sizes``."""
    if not sizes:
        return creation.zeros(indices.shape[1], dtype="int64")
    strides = creation.tensor(_strides(sizes), dtype="int64")
    return (indices * strides.unsqueeze(1)).sum(0)


def unravel(positions, sizes):
    """The (len(sizes), n) int64 indices of row-major ``positions`` in ``sizes``."""
    if not sizes or 0 in sizes:     # no positions where a size is 0 (whose strides would divide by 0)
        return creation.zeros((len(sizes), positions.shape[0]), dtype="int64")
    rows = [(positions // st) % sz for st, sz in zip(_strides(sizes), sizes)]
    return stack(rows, 0)


def coalesced_parts(indices, values, sizes):
    """(unique sorted indices, the inverse map (nnz,)) of ``indices`` in ``sizes``."""
    lin = linear_positions(indices, sizes)
    unique, inverse = lin.unique(sorted=True, return_inverse=True)
    return unravel(unique, sizes), unique, inverse


class SparseMethods:
    """The ops a sparse COO tensor supports (each named in ``SUPPORTED`` of sparse_coo.py)."""

    __slots__ = ()

    def _sizes(self):
        return self.shape[:self.sparse_dim()]

    def coalesce(self):
        """Duplicate indices summed, indices sorted row-major (torch's ``coalesce``)."""
        if self._sp_coalesced:
            return self
        idx, _, inverse = coalesced_parts(self._sp_indices, self._sp_values, self._sizes())
        vals = self._sp_values
        zeros = creation.zeros((idx.shape[1],) + tuple(vals.shape[1:]), dtype=vals.dtype)
        return self._new(idx, zeros.index_add(0, inverse, vals), self.shape, True)

    def to_dense(self, dtype=None, *, masked_grad=None):
        """The dense tensor (differentiable: the gradient reaches the values)."""
        vals = noted(self, self._sp_values)     # (torch's gradient: masked in this tensor's dims)
        sizes = self._sizes()
        flat = creation.zeros((numel(sizes),) + tuple(vals.shape[1:]), dtype=vals.dtype)
        out = flat.index_add(0, linear_positions(self._sp_indices, sizes), vals).reshape(self.shape)
        return out if dtype is None else out.to(dtype)

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        """Itself when already sparse COO with this sparse_dim (torch's)."""
        if sparse_dim is not None and sparse_dim != self.sparse_dim():
            raise RuntimeError(f"to_sparse: conversion from sparse COO with sparse_dim={self.sparse_dim()} to "
                               f"sparse_dim={sparse_dim} is not supported")
        return self

    def t(self):
        """The transpose of a 2-D sparse tensor (sparse_dim 2)."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 sparse and 0 dense dimensions, but got "
                               f"{self.sparse_dim()} sparse and {self.dense_dim()} dense dimensions")
        return self.transpose(0, 1) if self.ndim == 2 else self

    def transpose(self, dim0, dim1):
        """Two sparse dims swapped (torch refuses swapping a sparse with a dense dim, as gt)."""
        nd, sd = self.ndim, self.sparse_dim()
        d0, d1 = [d + nd if isinstance(d, int) and -nd <= d < 0 else d for d in (dim0, dim1)]
        if not (isinstance(d0, int) and isinstance(d1, int) and 0 <= d0 < nd and 0 <= d1 < nd):
            raise IndexError(f"transpose: dims ({dim0}, {dim1}) out of range for a {nd}-D tensor")
        if d0 == d1:
            return self
        if d0 >= sd or d1 >= sd:
            raise RuntimeError("transpose(): can only transpose sparse dimensions with each other or dense "
                               f"dimensions with each other, got dims {dim0} and {dim1} with sparse_dim={sd}")
        order = list(range(sd))
        order[d0], order[d1] = order[d1], order[d0]
        idx = self._sp_indices[order]
        shape = list(self.shape)
        shape[d0], shape[d1] = shape[d1], shape[d0]
        values = self._sp_values if autograd.is_grad_enabled() else self._sp_values.detach()   # no_grad: no graph
        return self._new(idx, values, tuple(shape), False)

    def __add__(self, other):
        return self.add(other)

    def __radd__(self, other):
        """dense + sparse: a dense sum (torch's; sparse + dense is refused, as torch's)."""
        if isinstance(other, Tensor) and not other.is_sparse:
            return other + self.to_dense()
        return self.add(other)

    def add(self, other, *, alpha=1):
        """sparse + sparse of one shape, torch's: the two entry lists merged in their order (equal
        heads added into one entry; coalesced when both are) where both value arrays are
        contiguous, else this one's entries and then the other's, side by side (uncoalesced)."""
        if not getattr(other, "is_sparse", False):
            raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead. (gt: sparse "
                               "tensors add only to sparse tensors; call .to_dense() first)")
        if other.shape != self.shape or other.sparse_dim() != self.sparse_dim():
            raise RuntimeError(f"add: sparse tensors of shapes {self.shape} (sparse_dim {self.sparse_dim()}) and "
                               f"{other.shape} (sparse_dim {other.sparse_dim()}) cannot be added")
        vals = other._sp_values if alpha == 1 else other._sp_values * alpha
        dtype = promote_types(self.dtype, vals.dtype)
        if not (self._sp_values.is_contiguous() and other._sp_values.is_contiguous()):
            return self._new(cat([self._sp_indices, other._sp_indices], 1),
                             cat([self._sp_values.to(dtype), vals.to(dtype)], 0), self.shape, False)
        sizes = self._sizes()
        mine, theirs = linear_positions(self._sp_indices, sizes), linear_positions(other._sp_indices, sizes)
        slots_a, slots_b, n = _merge_slots(mine.tolist(), theirs.tolist())
        slots_a = creation.tensor(slots_a, dtype="int64")
        slots_b = creation.tensor(slots_b, dtype="int64")
        idx = creation.zeros((self.sparse_dim(), n), dtype="int64")
        idx = idx.index_copy(1, slots_a, self._sp_indices).index_copy(1, slots_b, other._sp_indices)
        out = creation.zeros((n,) + tuple(vals.shape[1:]), dtype=dtype)
        out = out.index_add(0, slots_a, self._sp_values.to(dtype)).index_add(0, slots_b, vals.to(dtype))
        return self._new(idx, out, self.shape, self._sp_coalesced and other._sp_coalesced)

    def __sub__(self, other):
        return self.add(other, alpha=-1)

    def sub(self, other, *, alpha=1):
        return self.add(other, alpha=-alpha)

    def __truediv__(self, other):
        return self.div(other)

    def div(self, other):
        """sparse / a Python number or a 0-d tensor."""
        _scalar_only("div", "divide", other)
        return self._new(self._sp_indices, self._sp_values / other, self.shape, self._sp_coalesced)

    def __neg__(self):
        return self.neg()

    def neg(self):
        return self._new(self._sp_indices, -self._sp_values, self.shape, self._sp_coalesced)

    negative = neg

    def sum(self, dim=None, keepdim=False, dtype=None):
        """The sum of every entry (a dense 0-d tensor) or over ``dim`` (``gt.sparse.sum``'s rules)."""
        if keepdim:
            raise RuntimeError("sum: keepdim=True is not supported on sparse tensors (torch's)")
        if dim is None:
            vals = noted(self, self._sp_values)
            return (vals if dtype is None else vals.to(dtype)).sum()
        return sparse_sum(self, dim, dtype)


def _merge_slots(a, b):
    """torch's CPU sparse add: walk both position lists at once, the smaller head first, equal heads
    into one entry. Returns each entry's slot in the result, for ``a`` and ``b``, and the count."""
    slots_a, slots_b = [0] * len(a), [0] * len(b)
    i = j = n = 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            slots_a[i] = n
            if a[i] == b[j]:
                slots_b[j] = n
                j += 1
            i += 1
        else:
            slots_b[j] = n
            j += 1
        n += 1
    for k in range(i, len(a)):
        slots_a[k], n = n, n + 1
    for k in range(j, len(b)):
        slots_b[k], n = n, n + 1
    return slots_a, slots_b, n


def sparse_sum(s, dim, dtype=None):
    """``gt.sparse.sum(s, dim)``: over sparse dims the entries of equal remaining indices add up (a
    sparse result while a sparse dim remains, else dense, as torch's); over dense dims the values."""
    nd, sd = s.ndim, s.sparse_dim()
    dims = [dim] if isinstance(dim, int) else list(dim)
    dims = sorted({d + nd if -nd <= d < 0 else d for d in dims})
    if any(not 0 <= d < nd for d in dims):
        raise IndexError(f"sparse.sum: dim {dim} out of range for a {nd}-D tensor")
    vals = noted(s, s._sp_values)
    vals = vals if dtype is None else vals.to(dtype)
    dense_dims = [d - sd + 1 for d in dims if d >= sd]
    if dense_dims:
        vals = vals.sum(dense_dims)
    keep = [d for d in range(sd) if d not in dims]
    if len(keep) == sd:
        shape = tuple(n for d, n in enumerate(s.shape) if d not in dims)
        return s._new(s._sp_indices, vals, shape, s._sp_coalesced)
    if not keep:
        return vals.sum(0)
    sizes = tuple(s.shape[d] for d in keep)
    idx, _, inverse = coalesced_parts(s._sp_indices[keep], vals, sizes)
    summed = creation.zeros((idx.shape[1],) + tuple(vals.shape[1:]), dtype=vals.dtype).index_add(0, inverse, vals)
    shape = sizes + tuple(n for d, n in enumerate(s.shape) if d >= sd and d not in dims)
    return s._new(idx, summed, shape, True)


def _scalar_only(op, verb, other):
    """gt's sparse tensors scale their values only: refuse anything but a number or a 0-d dense tensor."""
    if isinstance(other, Tensor) and (other.is_sparse or other.ndim != 0):
        raise NotImplementedError(f"{op}: gt's sparse tensors {verb} only by a number or a 0-d dense tensor (got a "
                                  f"{'sparse' if other.is_sparse else 'dense'} tensor of shape {other.shape}); call "
                                  ".to_dense() first")
