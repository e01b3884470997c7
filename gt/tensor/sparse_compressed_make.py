"""Converting to the sparse CSC, BSR and BSC layouts (gt/tensor/sparse_compressed.py; made from
their parts by gt/tensor/sparse_csr_make.py, with CSR): ``Tensor.to_sparse_csc()``,
``to_sparse_bsr(blocksize)``, ``to_sparse_bsc(blocksize)`` and ``to_sparse(layout=...,
blocksize=...)`` of dense, COO and compressed tensors with torch's rules (a block layout converts
only to a block layout of its blocksize), the transposes of every compressed layout (``t``,
``transpose``, ``mT``, ``adjoint``), and the refusal of everything else.
"""

from gt.tensor.compat_methods import Layout, strided
from gt.tensor.core import Tensor
from gt.tensor.sparse_compressed import (BLOCKED, SparseCompressedTensor, batch_transposed, compressed_from_coo,
                                         sparse_bsc, sparse_bsr, sparse_csc, transposed)
from gt.tensor.sparse_coo import SparseTensor, refuse_the_rest, sparse_coo
from gt.tensor.sparse_csr import SparseCompressedBase, SparseCsrTensor, layout_names, sparse_csr
from gt.tensor.sparse_make import to_sparse as _dense_to_sparse

_LAYOUTS = (sparse_coo, sparse_csr, sparse_csc, sparse_bsr, sparse_bsc)


def _blocksize(fn, blocksize, shape):
    bs = tuple(int(b) for b in blocksize)
    if len(bs) != 2 or min(bs) < 1:
        raise RuntimeError(f"{fn}: blocksize must be two positive ints, got {blocksize}")
    if shape[-2] % bs[0] or shape[-1] % bs[1]:
        raise RuntimeError(f"{fn}: tensor sparse size ({shape[-2]},{shape[-1]}) must be divisible by given "
                           f"blocksize ({bs[0]},{bs[1]})")
    return bs


# one converter for every (source, target) pair of layouts: torch's table of what converts to what
def _convert(self, layout, blocksize, fn):
    """``self`` (dense, COO or compressed) in ``layout`` (CSC, BSR or BSC; blocks of ``blocksize``)."""
    if BLOCKED[layout] and blocksize is None:
        raise TypeError(f'{fn}() missing 1 required positional arguments: "blocksize"')
    if not BLOCKED[layout] and blocksize is not None:
        raise RuntimeError(f"{fn}: conversion to {layout} with blocksize argument given is not supported")
    if self.ndim < 2:
        raise RuntimeError(f"{fn}: expected a 2-D or batched (3-D or more) tensor, got {self.ndim}-D")
    bs = None if blocksize is None else _blocksize(fn, blocksize, self.shape)
    if not isinstance(self, SparseTensor):
        coo = _dense_to_sparse(self)
        out = compressed_from_coo(coo, layout, bs)
        out._sp_dense = coo._sp_dense          # the dense tensor's gradient through products, torch's
        return out
    if self.layout == sparse_coo:
        if self.sparse_dim() != 2 or self.dense_dim():
            raise RuntimeError(f"{fn}: conversion from Sparse to {layout} for input tensors with sparse_dim()!=2 "
                               f"(or dense dims) is not supported (got sparse_dim {self.sparse_dim()})")
        return compressed_from_coo(self, layout, bs)
    own = self._cp_block
    if own is not None and not BLOCKED[layout]:
        raise RuntimeError(f"{fn}: expected SparseCsr or SparseCsc layout but got {self.layout}")
    if own is not None and bs != own:
        raise RuntimeError(f"{fn}: conversion from {self.layout} to {layout} with blocksize changed from "
                           f"{list(own)} to {list(bs)} is not supported")
    if self.layout == layout:
        return self
    return compressed_from_coo(self._coo(), layout, bs)


def to_sparse_csc(self, dense_dim=None):
    """This tensor (dense, COO, CSR or CSC: 2-D or batched) as a sparse CSC tensor; differentiable."""
    _hybrid("to_sparse_csc", dense_dim)
    return _convert(self, sparse_csc, None, "to_sparse_csc")


def to_sparse_bsr(self, blocksize, dense_dim=None):
    """This tensor (dense, COO, CSR, CSC, or BSR/BSC of this blocksize) as a sparse BSR tensor of
    ``blocksize`` (bh, bw) blocks (every block that holds an entry); differentiable."""
    _hybrid("to_sparse_bsr", dense_dim)
    return _convert(self, sparse_bsr, blocksize, "to_sparse_bsr")


def to_sparse_bsc(self, blocksize, dense_dim=None):
    """This tensor as a sparse BSC tensor of ``blocksize`` (bh, bw) blocks (``to_sparse_bsr``'s rules)."""
    _hybrid("to_sparse_bsc", dense_dim)
    return _convert(self, sparse_bsc, blocksize, "to_sparse_bsc")


def _hybrid(fn, dense_dim):
    if dense_dim:
        raise NotImplementedError(f"{fn}: dense_dim={dense_dim} (hybrid compressed tensors) is not supported by gt")


def _compressed_to_csr(self, dense_dim=None):
    _hybrid("to_sparse_csr", dense_dim)
    if self._cp_block is not None:
        raise RuntimeError(f"sparse_compressed_to_sparse_csr: expected SparseCsr or SparseCsc layout but got "
                           f"{self.layout}")
    return compressed_from_coo(self._coo(), sparse_csr)


def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
    """``Tensor.to_sparse``: COO (torch's default), or ``layout`` (sparse_csr, sparse_csc, sparse_bsr or
    sparse_bsc, the last two with ``blocksize``)."""
    if layout is not None and not isinstance(layout, Layout):
        raise TypeError(f"to_sparse(): argument 'layout' must be torch.layout, not {type(layout).__name__}")
    if layout == strided:
        return self.to_dense() if isinstance(self, SparseTensor) else self
    if layout is not None and layout not in _LAYOUTS:
        raise RuntimeError(f"to_sparse: layout={layout} is not a sparse layout (sparse_coo, sparse_csr, sparse_csc, "
                           "sparse_bsr, sparse_bsc)")
    if layout is None or layout == sparse_coo:
        if blocksize is not None:
            raise RuntimeError("to_sparse: blocksize= goes with layout=gt.sparse_bsr or gt.sparse_bsc")
        if isinstance(self, SparseTensor) and self.layout != sparse_coo:
            return self._coo().to_sparse(sparse_dim)
        return _coo_to_sparse(self, sparse_dim) if self.is_sparse else _dense_to_sparse(self, sparse_dim)
    if sparse_dim is not None:
        raise RuntimeError(f"to_sparse: sparse_dim= does not go with layout={layout}")
    method = {sparse_csr: "to_sparse_csr", sparse_csc: "to_sparse_csc", sparse_bsr: "to_sparse_bsr",
              sparse_bsc: "to_sparse_bsc"}[layout]
    if layout in (sparse_csr, sparse_csc):
        if blocksize is not None:
            raise RuntimeError(f"to_sparse: conversion to {layout} with blocksize argument given is not supported")
        return getattr(self, method)(dense_dim)
    if blocksize is None:
        raise RuntimeError(f"to_sparse: conversion to {layout} without blocksize argument given is not supported")
    return getattr(self, method)(blocksize, dense_dim)


def t(self):
    """The transpose of a compressed matrix: CSR <-> CSC, BSR <-> BSC (torch's)."""
    if self.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
    return transposed(self)


def transpose(self, dim0, dim1):
    """Two dims swapped: the last two (the sparse ones) give the transposed layout, two batch dims
    this layout (torch's)."""
    nd = self.ndim
    for d in (dim0, dim1):
        if not -nd <= d < nd:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {d})")
    d0, d1 = dim0 % nd, dim1 % nd
    if d0 == d1:
        return self
    kinds = ["Sparse" if d >= nd - 2 else "Batch" for d in (d0, d1)]
    if kinds == ["Sparse", "Sparse"]:
        return transposed(self)
    if kinds[0] != kinds[1]:
        raise RuntimeError(f"transpose(): can only transpose dimensions of the same type (Batch, Sparse, Dense), got "
                           f"{d0}({kinds[0]}) and {d1}({kinds[1]})")
    return batch_transposed(self, d0, d1)


def adjoint(self):
    """The conjugate transpose of the last two dims."""
    out = transposed(self)
    return out.conj_physical() if self.is_complex() else out


_coo_to_sparse = SparseTensor.to_sparse
for _cls in (Tensor, SparseTensor):
    _cls.to_sparse = to_sparse
    _cls.to_sparse_csc, _cls.to_sparse_bsr, _cls.to_sparse_bsc = to_sparse_csc, to_sparse_bsr, to_sparse_bsc
SparseCompressedTensor.to_sparse_csr = _compressed_to_csr
_B = SparseCompressedBase
_B.t, _B.transpose, _B.swapaxes, _B.swapdims, _B.adjoint = t, transpose, transpose, transpose, adjoint
_B.mT = property(lambda self: transposed(self), doc="The transpose of the last two dims (torch's).")
for _cls in (SparseCsrTensor, SparseCompressedTensor):         # last: every method of theirs is set by now
    refuse_the_rest(_cls, SparseTensor, layout_names(_cls) | {"numel", "__len__", "__deepcopy__", "to_dense",
                                                              "to_sparse", "to_sparse_csc", "to_sparse_bsr",
                                                              "to_sparse_bsc"}, _cls._refusal)
