"""The product of two sparse matrices (COO x COO, CSR x CSR), torch's: a sparse result of the
first operand's layout, coalesced, on the symbolic pattern (every position some pair of stored
entries reaches, even where their products cancel to zero).

A sparse leaf operand gets torch's gradient: sparse on the symbolic pattern of ``grad @ b^T``
(or ``a^T @ grad``), which holds positions the leaf does not store.

Float32 and float64 products run on the engine's sparse kernel (``B.sparse_sparse_mm``, and
``B.sparse_csr_mm`` for CSR operands, whose CSR result is built from the kernel's arrays: scipy's
or torch's), their values' gradients through ``SparseSparseValues`` (gt/ops/sparse_products.py).
Other dtypes, and a leaf's dense stand-in, take the gt ops: each stored entry ``(i, k)`` of ``a``
meets the entries of ``b``'s row ``k`` (``b`` coalesced: its rows are sorted, so a row is one
range found by ``searchsorted``); the products of all the pairs are summed by output position.
Either way the gradient with respect to each operand's values (an operand built from values that
require grad) is the product's gradient times the other operand at the stored positions, as torch's.
"""

from gt import autograd, dtypes
from gt.backend import B
from gt.ops.sparse_products import FAST, SparseSparseValues
from gt.tensor import creation
from gt.tensor.functions import stack
from gt.tensor.sparse_autograd import pattern_leaf
from gt.tensor.core import Tensor


def _check(fn, a, b):
    """torch's checks of a sparse (n, k) by sparse (k, p) product."""
    if a.layout != b.layout:
        raise RuntimeError(f"{fn}: computation on CPU is not implemented for {a.layout} @ {b.layout}: convert "
                           "one operand (to_sparse_coo()/to_sparse_csr())")
    for name, s in (("mat1", a), ("mat2", b)):
        if s.ndim != 2 or s.dense_dim() != 0:
            raise RuntimeError(f"{fn}: {name} must be a 2-D sparse matrix (no batch or dense dims), got shape "
                               f"{s.shape} with dense_dim {s.dense_dim()}")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"{fn}: mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
                           f"{b.shape[0]}x{b.shape[1]})")
    if a.dtype != b.dtype:
        raise RuntimeError(f"{fn}: mat1 dtype {a.dtype} does not match mat2 dtype {b.dtype}")


def _pairs(ai_k, bk):
    """(entry of a, entry of b) of every pair whose inner index meets (``bk`` sorted), as two int64
    tensors: the engine's walk (``B.sparse_pairs``)."""
    pa, pb = B.sparse_pairs(ai_k._array, bk._array)
    return Tensor._wrap(pa), Tensor._wrap(pb)


def _pattern(left, right, p):
    """(indices (2, m), pairs of entries (pa, pb), inverse (pairs,)) of the symbolic product of the
    coalesced patterns ``left`` (2, *) and ``right`` (2, *) with ``p`` columns."""
    with autograd.no_grad():
        pa, pb = _pairs(left[1], right[0])
        unique, inverse = (left[0][pa] * p + right[1][pb]).unique(sorted=True, return_inverse=True)
        idx = stack([unique // p, unique % p], 0) if p else creation.zeros((2, 0), dtype=dtypes.int64)
    return idx, pa, pb, inverse


def sparse_sparse_mm(fn, a, b, own=False):
    """``a @ b`` of two 2-D sparse tensors of one layout: sparse (n, p), coalesced, ``a``'s layout.
    A sparse leaf gets torch's gradient: sparse on the pattern of ``grad @ b^T`` (``a^T @ grad``
    for ``b``), not only on its own entries (a dense copy of the leaf carries it: n x k memory);
    with ``own`` (``gt.sparse.mm``) on its own entries only, as torch.sparse.mm's (its sparse_mask)."""
    _check(fn, a, b)
    leaf = autograd.is_grad_enabled() and (a._sp_leaf or b._sp_leaf)
    if a.dtype in FAST and not leaf and a.is_sparse_csr:
        return _csr_kernel_product(a, b)
    ca, cb = a._coo().coalesce(), b._coo().coalesce()
    p = b.shape[1]
    if a.dtype in FAST and not leaf:
        return a._of_layout(ca._new(*_kernel_product(ca, cb), (a.shape[0], p), True))
    idx, pa, pb, inverse = _pattern(ca._sp_indices, cb._sp_indices, p)
    if leaf:
        with autograd.no_grad():
            at, bt = ca.t().coalesce()._sp_indices, cb.t().coalesce()._sp_indices
        pattern_a = (lambda: ca._sp_indices) if own else (lambda: _pattern(idx, bt, a.shape[1])[0])
        pattern_b = (lambda: cb._sp_indices) if own else (lambda: _pattern(at, idx, p)[0])
        da = pattern_leaf(a, pattern_a) if a._sp_leaf else ca.to_dense()
        db = pattern_leaf(b, pattern_b) if b._sp_leaf else cb.to_dense()
        return a._of_layout(ca._new(idx, (da @ db)[idx[0], idx[1]], (a.shape[0], p), True))
    terms = ca._sp_values[pa] * cb._sp_values[pb]
    vals = creation.zeros((idx.shape[1],), dtype=terms.dtype).index_add(0, inverse, terms)
    return a._of_layout(ca._new(idx, vals, (a.shape[0], p), True))


def _csr_kernel_product(a, b):
    """``a @ b`` of two CSR matrices on the engine's CSR kernel, the CSR result built from its
    arrays (int64 indices, torch's); values that require grad get theirs through ``SparseSparseValues``."""
    av, bv = a._sp_values, b._sp_values
    arrays = [(s._cp_comp._array, s._cp_plain._array, s._sp_values._array, s.shape) for s in (a, b)]
    crow, idx, vals = (Tensor._wrap(x) for x in B.sparse_csr_mm(*arrays))
    cols = idx[1]
    if autograd.is_grad_enabled() and (av.requires_grad or bv.requires_grad):
        vals = SparseSparseValues.apply(av, bv, a._sp_indices, b._sp_indices, idx, (tuple(a.shape), tuple(b.shape)),
                                        vals._array)
    return type(a)._from_parts(a.layout, crow, cols, idx, vals, (a.shape[0], b.shape[1]))


def _kernel_product(ca, cb):
    """(indices, values) of ``ca @ cb`` (coalesced COO, float) on the engine's sparse kernel; values
    that require grad get theirs through ``SparseSparseValues``."""
    ai, bi = ca._sp_indices, cb._sp_indices
    av, bv = ca._sp_values, cb._sp_values
    rows, cols, vals = B.sparse_sparse_mm((ai[0]._array, ai[1]._array, av._array, ca.shape),
                                          (bi[0]._array, bi[1]._array, bv._array, cb.shape))
    idx = Tensor._wrap(B.stack([rows, cols], 0))
    if not (autograd.is_grad_enabled() and (av.requires_grad or bv.requires_grad)):
        return idx, Tensor._wrap(vals)
    return idx, SparseSparseValues.apply(av, bv, ai, bi, idx, (tuple(ca.shape), tuple(cb.shape)), vals)
