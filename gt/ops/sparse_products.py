"""The products of a sparse matrix given by its entries (int64 ``rows``/``cols`` tensors, no
gradient, and ``values``) by a dense or a sparse matrix, on the engine's sparse kernels
(gt/backend/engine_sparse.py) rather than gathers and scatters: ``SparseDenseMM`` (sparse @
dense, the dense result; ``dense @ sparse`` is its transpose), ``SourceDenseMM`` (the same
product where the sparse operand's gradient is dense, carried by a dense copy of it: torch's
gradient of a sparse leaf through ``@``/``mm``) and ``SparseSparseValues`` (the values of a sparse
@ sparse product on its pattern, the pattern computed by the caller).

Arguments arrive checked by the tensor layer (gt/tensor/sparse_autograd.py,
gt/tensor/sparse_spgemm.py): 2-D operands of one float dtype (``FAST``), sizes matching, indices
in range; the entries may repeat a position (repeats add up). ``create_graph`` records the
gradients as gt ops (gathers, and these ops on the transposed entries), so they have gradients
of their own.
"""

from gt import dtypes
from gt.autograd import Function
from gt.backend import B

FAST = (dtypes.float32, dtypes.float64)     # the dtypes whose products the engines' sparse kernels run


class SparseDenseMM(Function):
    """``S @ dense`` (n, p) of the sparse ``S`` of ``shape`` (n, k) with entries ``values`` at
    (``rows``, ``cols``) and ``dense`` (k, p). Gradients: the values' ``grad @ dense^T`` at the
    entries (the sampled product), the dense operand's ``S^T @ grad``."""

    def forward(self, values, dense, rows, cols, shape):
        self.shape = shape
        self.save(values, dense, rows, cols)
        return B.sparse_dense_mm(rows, cols, values, shape, dense, False)

    def backward(self, g):
        values, dense, rows, cols = self.saved
        need = self.needs_input_grad
        gv = B.sampled_dense_dense(rows, cols, g, dense) if need[0] else None
        gd = B.sparse_dense_mm(rows, cols, values, self.shape, g, True) if need[1] else None
        return gv, gd, None, None, None

    def backward_graph(self, g):
        values, dense, rows, cols = self.inputs[:4]
        need = self.needs_input_grad
        gv = (g[rows] * dense[cols]).sum(1) if need[0] else None
        gd = SparseDenseMM.apply(values, g, cols, rows, self.shape[::-1]) if need[1] else None
        return gv, gd, None, None, None


class SourceDenseMM(Function):
    """``source @ dense`` where ``source`` (n, k) is dense and equal to the sparse matrix of the
    entries (``values`` at ``rows``/``cols``, no gradient): the product runs on the entries, and
    ``source`` gets the dense gradient ``grad @ dense^T`` (torch's for a sparse leaf), ``dense``
    the sparse ``S^T @ grad``."""

    def forward(self, source, dense, values, rows, cols):
        self.shape = tuple(source.shape)
        self.save(values, dense, rows, cols)
        return B.sparse_dense_mm(rows, cols, values, self.shape, dense, False)

    def backward(self, g):
        values, dense, rows, cols = self.saved
        need = self.needs_input_grad
        gs = B.matmul(g, B.transpose(dense, (1, 0))) if need[0] else None
        gd = B.sparse_dense_mm(rows, cols, values, self.shape, g, True) if need[1] else None
        return gs, gd, None, None, None

    def backward_graph(self, g):
        source, dense = self.inputs[:2]
        need = self.needs_input_grad
        return (g @ dense.t() if need[0] else None, source.t() @ g if need[1] else None, None, None, None)


class SparseSparseValues(Function):
    """The values of ``a @ b`` on its pattern (``rows``/``cols``; ``values``, computed by the caller
    without a gradient, are the result), for ``a`` (n, k) and ``b`` (k, p) given by their values
    and coalesced entries. Gradients: ``a``'s ``G @ b^T`` at its entries, ``b``'s ``a^T @ G`` at its
    entries, ``G`` the sparse gradient on the pattern."""

    def forward(self, a_values, b_values, a_idx, b_idx, idx, shapes, values):
        self.shapes = shapes
        self.save(a_values, b_values, a_idx, b_idx, idx)
        return values

    def backward(self, g):
        av, bv, a_idx, b_idx, idx = self.saved
        (n, k), (_, p) = self.shapes
        ga, gb = B.sparse_sparse_mm_grads((a_idx[0], a_idx[1], av, (n, k)), (b_idx[0], b_idx[1], bv, (k, p)),
                                          idx[0], idx[1], g, self.needs_input_grad[:2])
        return ga, gb, None, None, None, None, None

    def backward_graph(self, g):
        av, bv, a_idx, b_idx, idx = self.inputs[:5]
        (n, k), (_, p) = self.shapes
        need = self.needs_input_grad
        dense = g.new_zeros((n, p)).index_put((idx[0], idx[1]), g, accumulate=True)      # recorded: n x p
        ga = gb = None
        if need[0]:
            b = bv.new_zeros((k, p)).index_put((b_idx[0], b_idx[1]), bv, accumulate=True)
            ga = (dense @ b.t())[a_idx[0], a_idx[1]]
        if need[1]:
            a = av.new_zeros((n, k)).index_put((a_idx[0], a_idx[1]), av, accumulate=True)
            gb = (a.t() @ dense)[b_idx[0], b_idx[1]]
        return ga, gb, None, None, None, None, None


class NoSparseBackward(Function):
    """The values of a sparse result whose backward torch 2.13 lacks (``sqrt``, ``sin``, ``index_select``,
    ...): passed on unchanged, and the backward raises ``error(message)``, torch's error type, so a
    program that relies on torch's gradient fails in gt as in torch instead of getting one torch never gives."""

    def forward(self, values, error, message):
        self.error, self.message = error, message
        return values

    def backward(self, g):
        raise self.error(self.message)

    def backward_graph(self, g):
        raise self.error(self.message)
