"""The sparse-product primitives of the Engine interface: a sparse matrix, given by its entries
(``rows``, ``cols``: int64 (nnz,), ``values`` (nnz,), ``shape`` (n, k)), times a dense one, its
transpose times a dense one, the sampled dense product (a sparse product's gradient for its
values), the product of two sparse matrices (COO entries, or CSR arrays to a CSR result) and the
pairs of entries two sparse operands multiply. The numpy engine's are in
gt/backend/numpy_sparse.py (scipy.sparse, numpy where scipy is not installed), the torch
engine's in gt/backend/torch_sparse.py (torch's sparse CSR/COO kernels).

Callers (gt/ops/sparse_products.py) check every argument first: indices in range, 2-D dense
operands of the values' dtype (float32 or float64) and matching sizes. The entries may repeat a
position and come in any order (an uncoalesced COO tensor): repeats add up.
"""

import abc


class SparsePrimitives(abc.ABC):
    __slots__ = ()

    @abc.abstractmethod
    def sparse_dense_mm(self, rows, cols, values, shape, dense, transpose):
        """The dense ``S @ dense`` (n, p) of the sparse ``S`` (``shape`` (n, k)) and ``dense`` (k, p);
        with ``transpose``, ``S^T @ dense`` (k, p) for ``dense`` (n, p) (the dense operand's gradient)."""
        raise NotImplementedError

    @abc.abstractmethod
    def sampled_dense_dense(self, rows, cols, a, b):
        """(nnz,): ``sum_j a[rows[e], j] * b[cols[e], j]`` for each entry ``e`` (``a`` (n, p), ``b``
        (k, p)): ``a @ b^T`` at the entries, the gradient of ``S @ b``'s values for ``a`` = grad."""
        raise NotImplementedError

    @abc.abstractmethod
    def sparse_sparse_mm(self, a, b):
        """The product of the sparse ``a`` (n, k) and ``b`` (k, p), each ``(rows, cols, values,
        shape)``: ``(rows, cols, values)`` of the result, int64 indices sorted row-major, one entry
        per position of the symbolic pattern (every position some pair of entries reaches, kept
        where their products cancel to zero, as torch's)."""
        raise NotImplementedError

    @abc.abstractmethod
    def sparse_sparse_mm_grads(self, a, b, rows, cols, g, needs):
        """The gradients ``(ga, gb)`` of the values of ``a`` and ``b`` (coalesced: distinct positions
        sorted row-major) for the gradient ``g`` of their product's values on its pattern (``rows``,
        ``cols``, as ``sparse_sparse_mm`` gave it): ``ga = (G @ b^T)`` at ``a``'s entries, ``gb = (a^T
        @ G)`` at ``b``'s; one walk over the pairs of entries that meet. None where ``needs`` (two
        bools) says no."""
        raise NotImplementedError

    @abc.abstractmethod
    def sparse_csr_mm(self, a, b):
        """The product of the CSR matrices ``a`` (n, k) and ``b`` (k, p), each ``(crow, col, values,
        shape)`` (int32 or int64 indices, each row's columns sorted and distinct): ``(crow, indices,
        values)`` of the CSR result, int64, each row's columns sorted, on the symbolic pattern as
        ``sparse_sparse_mm``'s; ``indices`` (2, nnz) holds each entry's row and column."""
        raise NotImplementedError

    @abc.abstractmethod
    def sparse_pairs(self, ac, br):
        """``(pa, pb)``, int64: every pair (entry of ``a``, entry of ``b``) whose inner index meets,
        ``a``'s entry column ``ac`` equal to ``b``'s entry row ``br`` (``br`` sorted), ``a``'s entries
        in order and, for each, ``b``'s in order: the terms of a sparse @ sparse product."""
        raise NotImplementedError
