"""Making sparse CSR tensors (gt/tensor/sparse_csr.py): ``gt.sparse_csr_tensor`` with torch's
invariant checks and messages, ``Tensor.to_sparse_csr()`` of a dense or a COO tensor, and the
refusal of every op a CSR tensor does not support (``to_sparse(layout=...)`` and the transposes
are in gt/tensor/sparse_compressed_make.py).

torch 2.13 checks the invariants only with ``check_invariants=True``; gt always checks them (a
tensor that breaks them gives wrong answers in every op), at the cost of one pass over the indices.
"""

from gt import autograd, dtypes
from gt.ops._shapes import numel
from gt.tensor import creation
from gt.tensor.core import Tensor
from gt.tensor.functions import stack
from gt.tensor.sparse_coo import SparseTensor, refuse_on_mesh, refuse_the_rest
from gt.tensor.sparse_csr import SparseCsrTensor, csr_from_coo, layout_names, sparse_csr
from gt.tensor.sparse_csr_ops import CSR_SUPPORTED
from gt.tensor.sparse_make import to_sparse as _dense_to_sparse


def _index(value, name):
    t = value if isinstance(value, Tensor) else creation.tensor(value, dtype=dtypes.int64)
    if t.is_sparse or t.is_sparse_csr:
        raise TypeError(f"sparse_csr_tensor: {name} must be a dense tensor")
    return t.detach()


def _invalid(condition):
    raise RuntimeError(f"`{condition}` is not satisfied.")


def _check_shapes(crow, col, vals, size):
    """torch's shape checks of (crow_indices, col_indices, values, size); the size, inferred without one."""
    if crow.dtype != col.dtype or crow.dtype not in (dtypes.int32, dtypes.int64):
        raise RuntimeError(f"crow_indices and col_indices must have the same dtype, bot got {crow.dtype} and "
                           f"{col.dtype}, respectively (int64 or int32)")
    if crow.ndim != col.ndim:
        raise RuntimeError(f"crow_indices and col_indices dimensionalities must be equal but got {crow.ndim} and "
                           f"{col.ndim}, respectively")
    if crow.ndim < 1 or vals.ndim != col.ndim:
        raise NotImplementedError(f"sparse_csr_tensor: values of shape {tuple(vals.shape)} with col_indices of "
                                  f"shape {tuple(col.shape)}: gt's CSR tensors have no dense (hybrid) dims")
    batch = tuple(crow.shape[:-1])
    if tuple(col.shape[:-1]) != batch or tuple(vals.shape[:-1]) != batch:
        raise RuntimeError(f"all batch dimensions of crow_indices {tuple(crow.shape)}, col_indices "
                           f"{tuple(col.shape)} and values {tuple(vals.shape)} must be equal")
    if size is None:
        ncols = int(col.max().item()) + 1 if col.numel() else 0
        return batch + (crow.shape[-1] - 1, ncols)
    size = tuple(int(n) for n in size)
    if len(size) != len(batch) + 2:
        raise RuntimeError(f"tensor dimensionality must be sum of batch, base, and dense dimensionalities "
                           f"(={len(batch)} + 2 + 0) but got {len(size)}")
    if crow.shape[-1] != size[-2] + 1:
        raise RuntimeError(f"crow_indices.shape[-1] must be equal to the number of rows + 1 (={size[-2] + 1}), "
                           f"but got {crow.shape[-1]}")
    if col.shape[-1] != vals.shape[-1]:
        raise RuntimeError(f"col_indices.shape[-1] must be equal to nnz (={vals.shape[-1]}) as defined by "
                           f"values.shape[0], but got {col.shape[-1]}")
    return size


_SORTED = ("col_indices[..., crow_indices[..., i - 1]:crow_indices[..., i]] for all i = 1, ..., nrows are sorted "
           "and distinct along the last dimension values")


def _checked_indices(crow, col, size):
    """torch's invariants (``_validate_compressed_sparse_indices``'s messages), then the int64 COO
    indices (ndim, batches * nnz) of the entries, row-major."""
    batch, (nrows, ncols) = size[:-2], size[-2:]
    nb, nnz = numel(batch), col.shape[-1]
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
    rows = creation.arange(nrows, dtype=dtypes.int64).repeat(nb).repeat_interleave(counts.reshape(-1))
    keys = (rows * max(ncols, 1)).reshape(col.shape) + col
    if nnz > 1 and bool((keys[..., 1:] <= keys[..., :-1]).any().item()):
        _invalid(_SORTED)
    parts, flat = [], creation.arange(nb, dtype=dtypes.int64).repeat_interleave(nnz)
    for n in reversed(batch):
        parts.insert(0, flat % n)
        flat = flat // n
    return stack(parts + [rows, col.reshape(-1)], 0)


def sparse_csr_tensor(crow_indices, col_indices, values, size=None, *, dtype=None, device=None,
                      pin_memory=False, requires_grad=False, check_invariants=None):
    """A sparse CSR tensor, torch's ``torch.sparse_csr_tensor``: ``crow_indices`` (*batch, nrows + 1)
    and ``col_indices`` (*batch, nnz) of one integer dtype (int64 or int32, kept), ``values``
    (*batch, nnz). Without ``size`` the rows come from ``crow_indices`` and the columns are the
    largest column + 1. The invariants are always checked (``check_invariants`` is accepted).
    With ``requires_grad=True`` it is a leaf whose ``.grad`` is CSR; values that require grad
    carry their graph into it."""
    refuse_on_mesh("CSR")
    crow, col = _index(crow_indices, "crow_indices"), _index(col_indices, "col_indices")
    vals = values if isinstance(values, Tensor) else creation.tensor(values, dtype=dtype)
    if dtype is not None and vals.dtype != dtype:
        vals = vals.to(dtype)
    size = _check_shapes(crow, col, vals, size)
    with autograd.no_grad():
        idx = _checked_indices(crow, col, size)
    out = SparseCsrTensor._from_parts(sparse_csr, crow, col, idx, vals.reshape(-1), size)
    if requires_grad:
        if vals.requires_grad:
            raise RuntimeError("sparse_csr_tensor: requires_grad=True with values that already require grad "
                               "(a non-leaf): pass values.detach()")
        if not (vals.dtype.is_floating_point or vals.dtype.is_complex):
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        out.requires_grad_(True)
    return out


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


def _message(op):
    return (f"{op}: not supported on a sparse CSR tensor: gt's sparse CSR tensors support only "
            f"{', '.join(CSR_SUPPORTED)}; call .to_dense() first")


SparseCsrTensor._refusal = staticmethod(_message)
refuse_the_rest(SparseCsrTensor, SparseTensor, layout_names(SparseCsrTensor) | set(CSR_SUPPORTED)
                | {"numel", "__len__"}, _message)
