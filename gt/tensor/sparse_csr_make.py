"""Making compressed sparse tensors from their parts: ``gt.sparse_csr_tensor``,
``gt.sparse_csc_tensor``, ``gt.sparse_bsr_tensor`` and ``gt.sparse_bsc_tensor`` with torch's
invariant checks and messages (gt/tensor/sparse_csr.py, sparse_compressed.py), and
``Tensor.to_sparse_csr()`` of a dense or a COO tensor (the other conversions, ``to_sparse(layout=...)``,
the transposes and the refusals are in gt/tensor/sparse_compressed_make.py).

torch 2.13 checks the invariants only with ``check_invariants=True``; gt always checks them (a
tensor that breaks them gives wrong answers in every op), at the cost of one pass over the indices.
"""

from gt import autograd, dtypes
from gt.tensor import creation
from gt.tensor.core import Tensor
from gt.tensor.sparse_compressed import (BLOCKED, COLUMN, NAMES, SparseCompressedTensor, element_indices, sparse_bsc,
                                         sparse_bsr, sparse_csc)
from gt.tensor.sparse_coo import SparseTensor, refuse_on_mesh
from gt.tensor.sparse_csr import SparseCsrTensor, csr_from_coo, sparse_csr
from gt.tensor.sparse_make import to_sparse as _dense_to_sparse


def _index(value, name, fn):
    t = value if isinstance(value, Tensor) else creation.tensor(value, dtype=dtypes.int64)
    if t.is_sparse or t.is_sparse_csr:
        raise TypeError(f"{fn}: {name} must be a dense tensor")
    return t.detach()


def _invalid(condition):
    raise RuntimeError(f"`{condition}` is not satisfied.")


def _renamed(message):
    """CSR's invariant messages in a column-compressed layout's names (torch's)."""
    for a, b in (("crow_indices", "\0"), ("col_indices", "row_indices"), ("\0", "ccol_indices"), ("ncols", "\1"),
                 ("nrows", "ncols"), ("\1", "nrows"), ("number of rows", "number of columns")):
        message = message.replace(a, b)
    return message


def _size(layout, comp, plain, vals, size):
    """torch's shape checks of the parts; the size (inferred without one) and the blocksize or None."""
    column, blocked, names = COLUMN[layout], BLOCKED[layout], NAMES[layout]
    if comp.dtype != plain.dtype or comp.dtype not in (dtypes.int32, dtypes.int64):
        raise RuntimeError(f"{names[0]} and {names[1]} must have the same dtype, bot got {comp.dtype} and "
                           f"{plain.dtype}, respectively (int64 or int32)")
    if comp.ndim != plain.ndim:
        raise RuntimeError(f"{names[0]} and {names[1]} dimensionalities must be equal but got {comp.ndim} and "
                           f"{plain.ndim}, respectively")
    if comp.ndim < 1:
        raise RuntimeError(f"{names[0]} must have dimensionality >= 1 but got 0 (a 0-d tensor)")
    extra = 2 if blocked else 0
    if vals.ndim < plain.ndim + extra:
        raise RuntimeError(f"values must have dimensionality > sum of batch and block dimensionalities "
                           f"(={plain.ndim - 1} + {extra}) but got {vals.ndim}")
    if vals.ndim > plain.ndim + extra:
        raise NotImplementedError(f"values of shape {tuple(vals.shape)}: gt's compressed sparse tensors have no "
                                  "dense (hybrid) dims")
    batch = tuple(comp.shape[:-1])
    if tuple(plain.shape[:-1]) != batch or tuple(vals.shape[:len(batch)]) != batch:
        raise RuntimeError(f"all batch dimensions of {names[0]} {tuple(comp.shape)}, {names[1]} "
                           f"{tuple(plain.shape)} and values {tuple(vals.shape)} must be equal")
    block = tuple(vals.shape[-2:]) if blocked else None
    bh, bw = block or (1, 1)
    if size is None:
        nplain = int(plain.max().item()) + 1 if plain.numel() else 0
        grid = (comp.shape[-1] - 1, nplain)
        return batch + ((grid[1] * bh, grid[0] * bw) if column else (grid[0] * bh, grid[1] * bw)), block
    size = tuple(int(n) for n in size)
    if len(size) != len(batch) + 2:
        raise RuntimeError(f"tensor dimensionality must be sum of batch, base, and dense dimensionalities "
                           f"(={len(batch)} + 2 + 0) but got {len(size)}")
    for d, b in ((0, bh), (1, bw)):
        if size[len(batch) + d] % b:
            raise RuntimeError(f"tensor shape[{len(batch) + d}] (={size[len(batch) + d]}) must be divisible with "
                               f"blocksize[{d}] (={b}) as defined by values shape")
    ncomp = size[-1] // bw if column else size[-2] // bh
    if comp.shape[-1] != ncomp + 1:
        raise RuntimeError(f"{names[0]}.shape[-1] must be equal to the number of {'columns' if column else 'rows'}"
                           f" + 1 (={ncomp + 1}), but got {comp.shape[-1]}")
    if plain.shape[-1] != vals.shape[len(batch)]:
        raise RuntimeError(f"{names[1]}.shape[-1] must be equal to nnz (={vals.shape[len(batch)]}) as defined by "
                           f"values.shape[0], but got {plain.shape[-1]}")
    return size, block


_SORTED = ("col_indices[..., crow_indices[..., i - 1]:crow_indices[..., i]] for all i = 1, ..., nrows are sorted "
           "and distinct along the last dimension values")


def _checked_indices(crow, col, size):
    """torch's invariants (``_validate_compressed_sparse_indices``'s messages) of CSR indices over
    ``size`` (a grid of blocks for BSR; a transposed one for CSC/BSC), then the int64 COO indices
    (ndim, batches * nnz) of the entries, row-major."""
    ncols, nnz = size[-1], col.shape[-1]
    if crow.numel() and bool((crow[..., 0] != 0).any().item()):
        _invalid("crow_indices[..., 0] == 0")
    if crow.numel() and bool((crow[..., -1] != nnz).any().item()):
        _invalid("crow_indices[..., -1] == nnz")
    counts = (crow[..., 1:] - crow[..., :-1]).to(dtypes.int64)
    if counts.numel() and bool((counts < 0).any().item()):
        _invalid(_SORTED)           # torch's message for rows out of order
    col = col.to(dtypes.int64)
    if nnz and bool(((col < 0) | (col >= ncols)).any().item()):
        _invalid("0 <= col_indices < ncols")
    idx = element_indices(sparse_csr, crow, col, size, None)
    keys = (idx[-2] * max(ncols, 1)).reshape(col.shape) + col
    if nnz > 1 and bool((keys[..., 1:] <= keys[..., :-1]).any().item()):
        _invalid(_SORTED)
    return idx


def _make(layout, comp, plain, values, size, dtype, requires_grad):
    """The ``layout`` tensor of these parts, torch's checks run (``sparse_*_tensor``'s)."""
    refuse_on_mesh(str(layout)[13:].upper())
    fn = f"sparse_{str(layout)[13:]}_tensor"
    names = NAMES[layout]
    comp, plain = _index(comp, names[0], fn), _index(plain, names[1], fn)
    vals = values if isinstance(values, Tensor) else creation.tensor(values, dtype=dtype)
    if dtype is not None and vals.dtype != dtype:
        vals = vals.to(dtype)
    size, block = _size(layout, comp, plain, vals, size)
    bh, bw = block or (1, 1)
    grid = size[:-2] + ((size[-1] // bw, size[-2] // bh) if COLUMN[layout] else (size[-2] // bh, size[-1] // bw))
    with autograd.no_grad():
        try:
            idx = _checked_indices(comp, plain, grid)
        except RuntimeError as exc:
            raise RuntimeError(_renamed(str(exc)) if COLUMN[layout] else str(exc)) from None
        if layout != sparse_csr:              # the elements of the blocks, or CSC's in column order
            idx = element_indices(layout, comp, plain, size, block)
    cls = SparseCsrTensor if layout == sparse_csr else SparseCompressedTensor
    out = cls._from_parts(layout, comp, plain, idx, vals.reshape(-1), size, block)
    if requires_grad:
        if vals.requires_grad:
            raise RuntimeError(f"{fn}: requires_grad=True with values that already require grad (a non-leaf): "
                               "pass values.detach()")
        if not (vals.dtype.is_floating_point or vals.dtype.is_complex):
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        out._set_requires_grad(True)
    return out


def sparse_csr_tensor(crow_indices, col_indices, values, size=None, *, dtype=None, device=None,
                      pin_memory=False, requires_grad=False, check_invariants=None):
    """A sparse CSR tensor, torch's ``torch.sparse_csr_tensor``: ``crow_indices`` (*batch, nrows + 1)
    and ``col_indices`` (*batch, nnz) of one integer dtype (int64 or int32, kept), ``values``
    (*batch, nnz). Without ``size`` the rows come from ``crow_indices`` and the columns are the
    largest column + 1. The invariants are always checked (``check_invariants`` is accepted).
    With ``requires_grad=True`` it is a leaf whose ``.grad`` is CSR; values that require grad
    carry their graph into it."""
    return _make(sparse_csr, crow_indices, col_indices, values, size, dtype, requires_grad)


def sparse_csc_tensor(ccol_indices, row_indices, values, size=None, *, dtype=None, device=None, pin_memory=False,
                      requires_grad=False, check_invariants=None):
    """A sparse CSC tensor, torch's ``torch.sparse_csc_tensor``: ``ccol_indices`` (*batch, ncols + 1)
    and ``row_indices`` (*batch, nnz) of one integer dtype (kept), ``values`` (*batch, nnz); without
    ``size``, the columns from ``ccol_indices`` and the rows the largest row + 1."""
    return _make(sparse_csc, ccol_indices, row_indices, values, size, dtype, requires_grad)


def sparse_bsr_tensor(crow_indices, col_indices, values, size=None, *, dtype=None, device=None, pin_memory=False,
                      requires_grad=False, check_invariants=None):
    """A sparse BSR tensor, torch's ``torch.sparse_bsr_tensor``: ``crow_indices`` (*batch, nrows / bh
    + 1), ``col_indices`` (*batch, nnz) block columns, ``values`` (*batch, nnz, bh, bw) blocks."""
    return _make(sparse_bsr, crow_indices, col_indices, values, size, dtype, requires_grad)


def sparse_bsc_tensor(ccol_indices, row_indices, values, size=None, *, dtype=None, device=None, pin_memory=False,
                      requires_grad=False, check_invariants=None):
    """A sparse BSC tensor, torch's ``torch.sparse_bsc_tensor``: ``ccol_indices`` (*batch, ncols / bw
    + 1), ``row_indices`` (*batch, nnz) block rows, ``values`` (*batch, nnz, bh, bw) blocks."""
    return _make(sparse_bsc, ccol_indices, row_indices, values, size, dtype, requires_grad)


def to_sparse_csr(self, dense_dim=None):
    """This dense tensor (2-D, or batched: the leading dims) as a CSR tensor of its nonzeros, each
    batch holding as many (torch's rule); a 2-D COO tensor's entries as CSR. Differentiable."""
    if dense_dim:
        raise NotImplementedError(f"to_sparse_csr: dense_dim={dense_dim} (hybrid CSR) is not supported by gt")
    if self.ndim < 2:
        raise RuntimeError(f"to_sparse_csr: expected a 2-D or batched (3-D or more) tensor, got {self.ndim}-D")
    coo = self if self.is_sparse else _dense_to_sparse(self)
    if self.is_sparse and self.sparse_dim() != 2:
        raise RuntimeError(f"coo_to_sparse_csr: conversion from Sparse to SparseCsr for input tensors with "
                           f"sparse_dim()!=2 is not supported (got sparse_dim {self.sparse_dim()})")
    out = csr_from_coo(coo)
    out._sp_dense = coo._sp_dense          # a dense tensor's: torch's ToSparseCsrBackward
    return out


Tensor.to_sparse_csr = to_sparse_csr
SparseTensor.to_sparse_csr = to_sparse_csr

