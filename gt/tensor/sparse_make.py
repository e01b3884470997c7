"""Making sparse COO tensors: ``gt.sparse_coo_tensor``, ``Tensor.to_sparse()``, ``to_dense()`` of a
dense tensor, ``gt.sparse.mm``/``addmm``/``sum``, and ``F.embedding(..., sparse=True)``'s op, whose weight
gradient is sparse (torch's: the looked-up ids as indices, uncoalesced)."""

from gt import autograd, dtypes
from gt.ops.shape import Embedding
from gt.ops.sparse_products import NoSparseBackward
from gt.autograd import sparse_grad
from gt.autograd.sparse_grad import SparseGrad
from gt.sharding.mesh import get_mesh
from gt.tensor import creation
from gt.tensor.core import Tensor
from gt.tensor.sparse_autograd import dense_sparse_mm, sparse_mm
from gt.tensor.sparse_coo import SparseTensor, sparse_coo
from gt.tensor.sparse_elementwise import sparse_softmax
from gt.tensor.sparse_frames import noted
from gt.tensor.sparse_methods import sparse_sum
from gt.tensor.sparse_pass_on import pass_on


def _as_tensor(value, dtype=None):
    if isinstance(value, Tensor):
        if value.is_sparse:
            raise TypeError("sparse_coo_tensor: indices and values must be dense tensors")
        return value if dtype is None else value.to(dtype)
    return creation.tensor(value, dtype=dtype)


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None, pin_memory=False,
                      requires_grad=False, check_invariants=None, is_coalesced=None):
    """A sparse COO tensor of ``values`` (nnz, *dense dims) at ``indices`` (sparse_dim, nnz), torch's
    ``torch.sparse_coo_tensor``. Without ``size`` each sparse size is the largest index + 1 and
    the dense sizes are the values'. Duplicates are kept (uncoalesced) unless
    ``is_coalesced=True`` says there are none. Indices are always checked against ``size``
    (``check_invariants`` is accepted). With ``requires_grad=True`` it is a leaf whose ``.grad``
    is sparse; values that require grad carry their graph into it."""
    idx = _as_tensor(indices)
    if idx.dtype.is_floating_point or idx.dtype == dtypes.bool_ or idx.ndim != 2:
        raise RuntimeError(f"sparse_coo_tensor: indices must be an int64 tensor of shape (sparse_dim, nnz), got "
                           f"{idx.dtype} of shape {tuple(idx.shape)}")
    idx = idx.to(dtypes.int64).detach()
    vals = _as_tensor(values, dtype)
    if vals.ndim == 0:
        raise RuntimeError("sparse_coo_tensor: values must be at least 1-D (nnz, *dense dims), got a 0-d tensor")
    sd, nnz = idx.shape
    if vals.shape[0] != nnz:
        raise RuntimeError(f"indices and values must have same nnz, but got nnz from indices: {nnz}, nnz from "
                           f"values: {vals.shape[0]}")
    size = _checked_size(idx, vals, size)
    if device is not None and str(device) != str(vals.device):
        vals, idx = vals.to(device), idx.to(device)
    out = SparseTensor._make(idx, vals, size, bool(is_coalesced) or nnz <= 1)
    if requires_grad:
        if vals.requires_grad:
            raise RuntimeError("sparse_coo_tensor: requires_grad=True with values that already require grad "
                               "(a non-leaf): pass values.detach()")
        out._set_requires_grad(True)
    return out


def import_sparse(value, dtype):
    """A sparse COO state value loaded into an optimizer (SGD's momentum buffer of a sparse gradient,
    gt's or torch's tensor) as a gt sparse tensor of ``dtype`` with its own copy of the entries."""
    indices, values = value._indices(), value._values().detach()
    if isinstance(value, Tensor):
        indices, values = indices.clone(), values.to(dtype, copy=True)
    else:                   # torch's: its entries through numpy
        indices, values = indices.numpy().copy(), values.numpy().copy()
    return sparse_coo_tensor(indices, values, tuple(value.shape), dtype=dtype, is_coalesced=value.is_coalesced())


def _checked_size(idx, vals, size):
    sd, nnz = idx.shape
    seen = [int(m) + 1 for m in idx.amax(1).tolist()] if nnz else [0] * sd
    if nnz and int(idx.amin().item()) < 0:
        d = [int(m) for m in idx.amin(1).tolist()]
        bad = next(i for i, m in enumerate(d) if m < 0)
        raise RuntimeError(f"found negative index {d[bad]} for dim {bad}")
    if size is None:
        return tuple(seen) + tuple(vals.shape[1:])
    size = tuple(int(n) for n in size)
    if len(size) != sd + vals.ndim - 1:
        raise RuntimeError(f"number of dimensions must be sparse_dim ({sd}) + dense_dim ({vals.ndim - 1}), but "
                           f"got {len(size)}")
    for d in range(sd):
        if seen[d] > size[d]:
            raise RuntimeError(f"size is inconsistent with indices: for dim {d}, size is {size[d]} but found index "
                               f"{seen[d] - 1}")
    if tuple(vals.shape[1:]) != size[sd:]:
        raise RuntimeError(f"values has incorrect size, expected {[nnz, *size[sd:]]}, got {list(vals.shape)}")
    return size


def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
    """This dense tensor as a coalesced sparse COO tensor of its nonzeros (differentiable); with
    ``sparse_dim`` the first ``sparse_dim`` dims are sparse and the rest dense (torch's)."""
    if layout is not None and layout != sparse_coo:
        raise NotImplementedError(f"to_sparse: only layout=gt.sparse_coo is supported by gt, got {layout}")
    if blocksize is not None or dense_dim is not None:
        raise NotImplementedError("to_sparse: blocksize= and dense_dim= (CSR/BSR layouts) are not supported by gt")
    nd = self.ndim
    sd = nd if sparse_dim is None else sparse_dim
    if not isinstance(sd, int) or not 0 <= sd <= nd or (sparse_dim is not None and sd == 0 and nd > 0):
        raise RuntimeError(f"sparse_dim argument must be in [1, {nd}] range, but {sparse_dim} is given")
    with autograd.no_grad():
        mask = self != 0
        if sd < nd:
            mask = mask.reshape(tuple(self.shape[:sd]) + (-1,)).any(-1)
        idx = mask.nonzero().t().contiguous() if sd else creation.zeros((0, 1), dtype=dtypes.int64)
    vals = self[tuple(idx[d] for d in range(sd))] if sd else self.unsqueeze(0)
    out = SparseTensor._make(idx, vals, self.shape, True)
    if self.requires_grad and autograd.is_grad_enabled():
        out._sp_dense = self        # torch's ToSparseBackward: products hand this tensor a dense gradient
    return out


def dense_to_dense(self, dtype=None, *, masked_grad=None):
    """A dense tensor's ``to_dense()``: itself (torch's)."""
    return self if dtype is None else self.to(dtype)


Tensor.to_sparse = to_sparse
Tensor.to_sparse_coo = to_sparse
Tensor.to_dense = dense_to_dense


def _need_sparse(fn, s):
    if not getattr(s, "_is_sparse_layout", False):
        raise TypeError(f"{fn}: the first operand must be a sparse tensor, got "
                        f"{'a dense tensor' if isinstance(s, Tensor) else type(s).__name__}")


def _sparse(t):
    return getattr(t, "is_sparse", False) or getattr(t, "is_sparse_csr", False)


def mm(mat1, mat2, reduce="sum"):
    """``gt.sparse.mm``: sparse (n, k) @ dense (k, p) or dense (n, k) @ sparse (k, p) -> dense, or
    sparse @ sparse of one layout (COO or CSR) -> sparse of that layout; a sparse leaf's gradient
    is sparse on its stored indices (torch's ``sparse_mask``)."""
    if reduce != "sum":
        raise NotImplementedError(f"sparse.mm: reduce={reduce!r} is not supported by gt (only 'sum')")
    if _sparse(mat2) and not _sparse(mat1):
        return dense_sparse_mm("sparse.mm", mat1, mat2, False)
    _need_sparse("sparse.mm", mat1)
    return sparse_mm("sparse.mm", mat1, mat2, False)


def softmax(input, dim, dtype=None):
    """``gt.sparse.softmax``: the softmax of the stored entries along ``dim`` (the unstored count as
    minus infinity), a sparse tensor on the coalesced indices, as torch's."""
    _need_sparse("sparse.softmax", input)
    return sparse_softmax(input, dim, dtype)


def log_softmax(input, dim, dtype=None):
    """``gt.sparse.log_softmax``: ``softmax``'s logarithm on the stored entries."""
    _need_sparse("sparse.log_softmax", input)
    return sparse_softmax(input, dim, dtype, log=True)


def sparse_mask(self, mask):
    """A dense tensor's entries at the positions ``mask`` (sparse COO) stores, as a sparse tensor
    with ``mask``'s indices (torch's ``Tensor.sparse_mask``; differentiable in ``self``)."""
    if not getattr(mask, "is_sparse", False):
        raise RuntimeError("sparse_mask: expected mask to be a sparse COO tensor")
    if self.is_sparse:
        raise NotImplementedError("sparse_mask: gt takes a dense tensor to mask; call .to_dense() first")
    if tuple(self.shape) != mask.shape:
        raise RuntimeError(f"sparse_mask(): operands have incompatible sizes; self has size {list(self.shape)} "
                           f"but mask has size {list(mask.shape)}")
    idx = mask._sp_indices
    vals = self[tuple(idx[d] for d in range(mask.sparse_dim()))] if mask.sparse_dim() else self.unsqueeze(0)
    return SparseTensor._make(idx, vals, mask.shape, mask._sp_coalesced)


Tensor.sparse_mask = sparse_mask


def addmm(mat, mat1, mat2, *, beta=1.0, alpha=1.0):
    """``gt.sparse.addmm``: ``beta * mat + alpha * (mat1 @ mat2)``, ``mat1`` sparse."""
    _need_sparse("sparse.addmm", mat1)
    prod = sparse_mm("sparse.addmm", mat1, mat2, False)
    return mat * beta + prod * alpha


def sum(input, dim=None, dtype=None):  # noqa: A001 (torch.sparse.sum's name)
    """``gt.sparse.sum``: all entries (dense 0-d) or over ``dim`` (sparse while a sparse dim remains)."""
    _need_sparse("sparse.sum", input)
    if input.layout != sparse_coo:
        raise RuntimeError(f"sparse.sum: expected a sparse COO tensor, got {input.layout} (torch refuses it too): "
                           "use .sum() or .to_sparse_coo()")
    if dim is None:         # sparse on the stored entries, torch's (Tensor.sum gives a leaf a dense one)
        return noted(input, input._sp_values).sum(dtype=dtype)
    out = sparse_sum(input, dim, dtype)
    if getattr(out, "is_sparse", False) and out.requires_grad and autograd.is_grad_enabled():
        out._sp_dense = _dense_grad_refused(out)
    return out


def _dense_grad_refused(out):
    """The dense source of a sparse ``gt.sparse.sum(s, dim)`` result: torch's backward of it takes a
    sparse gradient only, so a dense one (``.sum()``, ``+ dense``, a product) raises torch's error;
    a sparse one reaches ``out``'s values."""
    def source(pattern=None):
        dense = out.to_dense()
        if pattern is not None:
            return dense
        return NoSparseBackward.apply(dense, RuntimeError, "_sparse_sum_backward_cpu: expected grad_ Tensor to be "
                                      "sparse, but got dense (gt.sparse.sum over a dim takes a sparse gradient: "
                                      "use gt.sparse.sum(out) or out.to_dense() before a dense op)")

    source.takes_pattern = True
    return source


class SparseEmbedding(Embedding):
    """``weight[indices]`` with ``sparse=True`` (``F.embedding``), torch's ``EmbeddingBackward0``:
    a leaf ``weight`` gets a sparse COO gradient, the looked-up ids (int64, in their order:
    uncoalesced) as its indices and the output's gradient rows as its values, the entries of
    ``padding_idx`` left out; a computed weight gets it sparse too, passed on sparse through the ops
    whose torch backward takes it (gt/tensor/sparse_pass_on.py), torch's error through those whose
    backward refuses it, dense through the others; under ``create_graph`` too. With
    ``scale_grad_by_freq`` the backward raises torch's error."""

    _torch_name = "EmbeddingBackward0"

    def forward(self, weight, indices, padding_idx=None, by_freq=False):
        self.padding_idx, self.by_freq = padding_idx, by_freq
        return super().forward(weight, indices)

    def backward(self, g):
        # the walk's gradient stays sparse for a computed weight too (torch's); g records nothing
        return SparseGrad(self._sparse_grad(Tensor._wrap(g)), self.seq), None

    def backward_graph(self, g):
        # sparse for a computed weight too: the walk passes it on where torch's backward does
        return self._sparse_grad(g), None

    def _sparse_grad(self, g):
        if self.by_freq:
            raise RuntimeError("embedding_backward: scale_grad_by_freq not supported with sparse gradients "
                               "(sparse=True, scale_grad_by_freq=True): drop one of them")
        with autograd.no_grad():
            ids = Tensor._wrap(self.indices).reshape(-1).to(dtypes.int64, copy=True)
        rows = g.reshape(-1, self.in_shape[1])
        if self.padding_idx is not None:
            with autograd.no_grad():
                keep = ids != self.padding_idx
                ids = ids[keep]
            rows = rows[keep]
        return SparseTensor._make(ids.unsqueeze(0), rows, self.in_shape, False)


def sparse_embedding(weight, idx, padding_idx, scale_grad_by_freq):
    """``F.embedding(..., sparse=True)`` of a weight that requires grad (``SparseEmbedding``)."""
    if get_mesh().size > 1:
        raise NotImplementedError(f"embedding: sparse=True (sparse gradients) is not supported on a mesh of "
                                  f"{get_mesh().size} devices (GT_DEVICES/GT_AUTO_SHARD): use sparse=False there")
    return SparseEmbedding.apply(weight, idx, padding_idx, scale_grad_by_freq)


# the walk passes a computed embedding weight's sparse gradient on through the ops that take one
sparse_grad.pass_on = pass_on
