"""The ops of a sparse CSC, BSR or BSC tensor (gt/tensor/sparse_compressed.py) that torch 2.13 runs
on these layouts on the CPU, beside those every compressed layout shares (``CompressedValueOps`` in
gt/tensor/sparse_csr_ops.py: the zero-keeping elementwise ops, ``mul_``, dtype conversions):
``mul`` by a number, ``add`` of a tensor of the same layout and pattern (torch's kernels refuse
other patterns) or, for CSC, of a dense one (dense), ``sum()``, and the products with dense tensors
torch has kernels for: CSC either side, BSR on the left, BSC on the right; CSC @ CSC is CSR.
Gradients reach the values through the ordinary tape; a leaf gets torch's dense gradient through
products and ``sum()``.
"""

from gt.tensor.core import Tensor
from gt.tensor.sparse_autograd import dense_source, dense_sparse_mm, sparse_mm
from gt.tensor.sparse_coo import SparseTensor
from gt.tensor.sparse_csr_ops import CSR_ELEMENTWISE

COMPRESSED_SUPPORTED = ("ccol_indices and row_indices (CSC/BSC)", "crow_indices and col_indices (BSR)", "values",
                        "_nnz", "sparse_dim", "dense_dim", "to_dense", "to_sparse", "to_sparse_coo",
                        "to_sparse_csr and to_sparse_csc (CSC)", "to_sparse_bsr", "to_sparse_bsc", "t", "transpose",
                        "mT", "adjoint", "mm", "matmul", "@ (CSC either side, BSR @ dense, dense @ BSC, CSC @ CSC)",
                        "add", "+ (the same pattern; CSC + dense)", "mul", "* (by a number)", "mul_", "sum()",
                        *CSR_ELEMENTWISE, "to", "float", "double", "int", "long", "size", "shape", "dtype",
                        "layout", "requires_grad_", "detach", "clone", "zero_", "backward through values")


def _name(s):
    return {"sparse_csc": "SparseCsc", "sparse_bsr": "SparseBsr", "sparse_bsc": "SparseBsc"}[str(s.layout)[6:]]


def _matrix(fn, s):
    if s.ndim != 2:
        raise RuntimeError(f"{fn}: a batched {_name(s)} tensor (shape {s.shape}) has no product in torch 2.13 "
                           f"(Sparse {_name(s)[6:].upper()} tensors do not have strides): multiply each batch's matrix")
    if s._cp_block is not None and s._cp_block[0] != s._cp_block[1]:
        raise RuntimeError(f"{fn}: MKL Sparse doesn't support matrices with non-square blocks (torch 2.13's CPU "
                           f"products; blocksize {s._cp_block})")


class CompressedOps:
    """The ops a sparse CSC/BSR/BSC tensor supports (``COMPRESSED_SUPPORTED``) beside ``CompressedValueOps``."""

    __slots__ = ()

    def mul(self, other):
        """``self * number`` (or a 0-d tensor): the values scaled; torch refuses tensors here."""
        if isinstance(other, Tensor) and other.ndim:
            raise RuntimeError(f"mul: a sparse {_name(self)[6:].upper()} tensor multiplies a number only in torch "
                               f"2.13 (got a tensor of layout {other.layout}): convert it (to_sparse_csr())")
        return self._with_values(self._sp_values * other)

    __mul__ = __rmul__ = multiply = mul

    def add(self, other, *, alpha=1):
        """A tensor of this layout and pattern: the values added (this layout); CSC + dense: dense
        (a leaf's gradient dense, torch's). torch's kernels refuse other operands here."""
        if isinstance(other, Tensor) and not isinstance(other, SparseTensor) and str(self.layout) == "torch.sparse_csc":
            source = dense_source(self)
            return (self.to_dense() if source is None else source) + (other if alpha == 1 else other * alpha)
        if getattr(other, "layout", None) != self.layout or other.shape != self.shape or not _same_pattern(self, other):
            raise RuntimeError(f"add: a sparse {_name(self)[6:].upper()} tensor adds a tensor of its layout and "
                               f"pattern only in torch 2.13 (got {getattr(other, 'layout', type(other).__name__)}"
                               f"{'' if not hasattr(other, 'shape') else f' of shape {tuple(other.shape)}'})")
        if other.dtype != self.dtype:
            raise RuntimeError(f"add: expected scalar type {self.dtype} but found {other.dtype}")
        return self._with_values(self._sp_values + (other._sp_values if alpha == 1 else other._sp_values * alpha))

    def sum(self, dim=None, keepdim=False, dtype=None):
        """All the entries (dense 0-d; torch's dense gradient for a leaf); torch sums over dims only on CSR."""
        if dim is not None:
            raise RuntimeError(f"Currently the only compressed sparse format supported for sum.dim_IntList is CSR, "
                               f"but got layout {_name(self)}")
        source = dense_source(self)
        return (self._sp_values if source is None else source).sum(dtype=dtype)

    # ---- products -------------------------------------------------------------------------
    def _check_left(self, fn):
        """torch's refusals of ``self @ dense`` (read by ``sparse_mm``, ``gt.sparse.mm`` too)."""
        _matrix(fn, self)
        if str(self.layout) == "torch.sparse_bsc":
            raise RuntimeError(f"{fn}: computation on CPU is not implemented for Strided + SparseBsc @ Strided "
                               "(torch 2.13): use dense @ BSC, or to_sparse_bsr()")

    def _check_right(self, fn):
        """torch's refusals of ``dense @ self`` (read by ``dense_sparse_mm``)."""
        _matrix(fn, self)
        if str(self.layout) == "torch.sparse_bsr":
            raise RuntimeError(f"{fn}: computation on CPU is not implemented for Strided + Strided @ SparseBsr "
                               "(torch 2.13): use BSR @ dense, or to_sparse_bsc()")

    def _product(self, fn, other):
        _matrix(fn, self)
        if isinstance(other, SparseTensor):
            if str(self.layout) != "torch.sparse_csc" or str(other.layout) not in ("torch.sparse_csc",
                                                                                   "torch.sparse_csr"):
                raise RuntimeError(f"{fn}: {self.layout} @ {other.layout} has no kernel in torch 2.13 (CSC @ CSC/CSR "
                                   "has: CSR); convert the operands (to_sparse_csr())")
            return self.to_sparse_csr() @ other.to_sparse_csr()
        return sparse_mm(fn, self, other, True)

    def mm(self, mat2):
        return self._product("mm", mat2)

    def matmul(self, other):
        return self._product("matmul", other)

    __matmul__ = matmul

    def __rmatmul__(self, other):
        return dense_sparse_mm("matmul", other, self, True)


def _same_pattern(a, b):
    """Whether two tensors of one compressed layout store the same positions (same blocksize too)."""
    if a._cp_block != b._cp_block or a._cp_plain.shape != b._cp_plain.shape:
        return False
    return a is b or bool((a._cp_comp == b._cp_comp).all().item()) and bool((a._cp_plain == b._cp_plain).all().item())

