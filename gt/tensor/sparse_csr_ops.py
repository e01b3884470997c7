"""The ops of the compressed sparse tensors (gt/tensor/sparse_csr.py): ``CompressedValueOps``, those
every compressed layout runs alike on its stored values (the zero-keeping elementwise ops, the pattern
kept; ``mul_`` by a number; dtype conversions), and ``CsrOps``, those torch 2.13 runs on the CSR layout
only: ``mul`` by a number, a dense tensor of the same shape or a CSR tensor (torch's intersection),
``add`` of two CSR tensors (the union of the patterns) or of a dense one (dense), ``sum`` (all, or
over one dim with ``keepdim=True``), and the products with dense (either side) and CSR tensors.
Each is built on the COO machinery (gt/tensor/sparse_coo.py and beside it) through the entries'
COO form, so gradients reach the values through the ordinary tape. The CSC/BSR/BSC ops are in
gt/tensor/sparse_compressed_ops.py.
"""

from gt.dtypes import DType
from gt.tensor.core import Tensor
from gt.tensor.functions import cat
from gt import autograd
from gt.tensor.sparse_autograd import dense_source, dense_sparse_mm, pattern_leaf, sparse_mm
from gt.tensor.sparse_methods import sparse_sum

# torch 2.13's zero-keeping elementwise ops on CSR (it refuses square, exp, cos, sigmoid, nan_to_num...)
CSR_ELEMENTWISE = ("abs", "sqrt", "sin", "sinh", "tan", "tanh", "asin", "asinh", "atan", "atanh", "expm1", "log1p",
                   "relu", "sign", "sgn", "floor", "ceil", "round", "trunc", "frac", "erf", "erfinv", "deg2rad",
                   "rad2deg", "signbit", "isnan", "isinf", "isposinf", "isneginf", "neg", "negative", "positive",
                   "angle", "conj_physical")

CSR_SUPPORTED = ("crow_indices", "col_indices", "values", "_nnz", "sparse_dim", "dense_dim", "to_dense",
                 "to_sparse", "to_sparse_coo", "to_sparse_csr", "mm", "matmul", "@ (either side, or CSR @ CSR/CSC)",
                 "t", "transpose", "mT", "adjoint", "to_sparse_csc", "to_sparse_bsr", "to_sparse_bsc",
                 "add", "+", "mul", "* (by a number, a dense tensor of its shape or a CSR tensor)", "mul_", "sum",
                 *CSR_ELEMENTWISE, "to", "float", "double", "int", "long", "size", "shape", "dtype", "layout",
                 "requires_grad_", "detach", "clone", "zero_", "backward through values")


def _values_op(name):
    def op(self, *args, **kwargs):
        return self._with_values(getattr(self._sp_values, name)(*args, **kwargs))

    op.__name__ = name
    op.__doc__ = f"``{name}`` of the stored values (it keeps zeros: the pattern is kept), torch's."
    return op


def _check_matrix(fn, s):
    if s.ndim != 2:
        raise RuntimeError(f"{fn}: a batched sparse CSR tensor (shape {s.shape}) has no product in torch 2.13: "
                           "multiply each batch's matrix")


def _csr_of_csc(other):
    """A CSC operand of a product with CSR as CSR (torch's CSR @ CSC is CSR); any other as it is."""
    return other.to_sparse_csr() if str(getattr(other, "layout", "")) == "torch.sparse_csc" else other


class CompressedValueOps:
    """The ops every compressed layout runs on its stored values alike (and ``+`` through ``add``)."""

    __slots__ = ()

    def mul_(self, other):
        """The values scaled in place by a number."""
        self._sp_values.mul_(other)
        return self

    def __add__(self, other):
        return self.add(other)

    def __radd__(self, other):
        return self.add(other)

    def to(self, *args, **kwargs):
        """Another dtype (the values converted); a device or ``copy=`` is accepted on the CPU."""
        dtype = kwargs.get("dtype") or next((a for a in args if isinstance(a, (DType, str)) and
                                             not str(a).startswith("cpu")), None)
        return self if dtype is None else self._with_values(self._sp_values.to(dtype))

    def float(self):
        return self.to("float32")

    def double(self):
        return self.to("float64")

    def int(self):
        return self.to("int32")

    def long(self):
        return self.to("int64")


for _name in CSR_ELEMENTWISE:
    setattr(CompressedValueOps, _name, _values_op(_name))
CompressedValueOps.__neg__, CompressedValueOps.__abs__, CompressedValueOps.__pos__ = (
    CompressedValueOps.neg, CompressedValueOps.abs, CompressedValueOps.positive)


class CsrOps:
    """The ops a sparse CSR tensor supports (``CSR_SUPPORTED``) beside ``CompressedValueOps``."""

    __slots__ = ()

    def _from(self, coo):
        """The CSR tensor of a COO op's result on this tensor's entries."""
        return self._new(coo._sp_indices, coo._sp_values, coo.shape, True)

    def mul(self, other):
        """``self * other``: by a number or 0-d tensor (the values scaled), a dense tensor of this
        shape (its entries at the stored positions) or a CSR tensor (the common positions)."""
        if getattr(other, "is_sparse_csr", False):
            return self._of_layout(self._coo().mul(other._coo()))
        if isinstance(other, Tensor) and (other.is_sparse or other.ndim and tuple(other.shape) != self.shape):
            raise RuntimeError(f"sparse_mask(): operands have incompatible sizes; self has size "
                               f"{list(other.shape)} but mask has size {list(self.shape)} (or: a COO operand)")
        if isinstance(other, Tensor) and other.ndim:
            return self._with_values(self._sp_values * other[tuple(self._sp_indices)])
        return self._with_values(self._sp_values * other)

    __mul__ = __rmul__ = multiply = mul

    def add(self, other, *, alpha=1):
        """CSR + CSR of one shape and dtype: CSR on the union of the patterns (a leaf's gradient on
        that union too, torch's); CSR + dense: dense (a leaf's gradient dense, torch's)."""
        if isinstance(other, Tensor) and not other.is_sparse and not other.is_sparse_csr:
            source = dense_source(self)        # torch's dense gradient for a leaf
            return (self.to_dense() if source is None else source) + (other if alpha == 1 else other * alpha)
        if not getattr(other, "is_sparse_csr", False):
            raise RuntimeError(f"add: a sparse CSR tensor adds a CSR or a dense tensor, got "
                               f"{getattr(other, 'layout', type(other).__name__)}")
        if other.shape != self.shape:
            raise RuntimeError(f"torch.add: Expected input tensors to have the same shape, but got tensor `self` "
                               f"with shape {list(self.shape)} and tensor `other` with shape {list(other.shape)}")
        if other.dtype != self.dtype:
            raise RuntimeError(f"add: expected scalar type {self.dtype} but found {other.dtype}")
        union = self._coo().add(other._coo(), alpha=alpha)
        if not (autograd.is_grad_enabled() and (self._sp_leaf or other._sp_leaf)):
            return self._from(union)
        idx = union._sp_indices       # a leaf's gradient is torch's: the sum's, on the union of the patterns
        mine = pattern_leaf(self, lambda: idx) if self._sp_leaf else self.to_dense()
        theirs = pattern_leaf(other, lambda: idx) if other._sp_leaf else other.to_dense()
        return self._from(union._new(idx, (mine + theirs * alpha)[tuple(idx)], self.shape, True))

    def sum(self, dim=None, keepdim=False, dtype=None):
        """All the entries (dense 0-d; torch's dense gradient for a leaf or a tensor made by
        ``to_sparse_csr``), or over ``dim`` of a matrix with ``keepdim=True`` (CSR, torch's; it
        refuses ``keepdim=False``)."""
        if dim is None:
            source = dense_source(self)
            return (self._sp_values if source is None else source).sum(dtype=dtype)
        if not keepdim:
            raise RuntimeError("reduction operations on CSR tensors with keepdim=False is unsupported")
        if self.ndim != 2 or not isinstance(dim, int) or not -2 <= dim < 2:
            raise RuntimeError(f"sum: gt sums a CSR matrix over one dim (0 or 1), got dim={dim} for shape "
                               f"{self.shape}")
        d = dim % 2
        line = sparse_sum(self._coo(), d, dtype)
        zeros = line._sp_indices * 0
        idx = cat([zeros, line._sp_indices] if d == 0 else [line._sp_indices, zeros], 0)
        shape = (1, self.shape[1]) if d == 0 else (self.shape[0], 1)
        return self._new(idx, line._sp_values, shape, True)

    # ---- products -------------------------------------------------------------------------
    def mm(self, mat2):
        _check_matrix("mm", self)
        return sparse_mm("mm", self, _csr_of_csc(mat2), True)

    def matmul(self, other):
        _check_matrix("matmul", self)
        return sparse_mm("matmul", self, _csr_of_csc(other), True)

    __matmul__ = matmul

    def __rmatmul__(self, other):
        _check_matrix("matmul", self)
        return dense_sparse_mm("matmul", other, self, True)

