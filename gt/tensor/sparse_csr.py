"""Sparse CSR tensors (torch's ``torch.sparse_csr`` layout): the class, its conversions to and
from COO, and torch's repr. ``gt.sparse_csr_tensor`` and ``Tensor.to_sparse_csr`` are in
gt/tensor/sparse_csr_make.py.

A CSR tensor of shape (*batch, nrows, ncols) holds ``crow_indices`` (*batch, nrows + 1) and
``col_indices`` (*batch, nnz), int64 or int32 as given, and ``values`` (*batch, nnz): per batch
the entries of row ``r`` are ``crow[r]:crow[r + 1]``, their columns sorted and distinct. No dense
(hybrid) dims. It is a ``SparseTensor`` (gt/tensor/sparse_coo.py) whose ``_sp_indices`` are the
same entries as int64 COO indices (ndim, batches * nnz), sorted row-major (coalesced), and whose
``_sp_values`` are the flat values: the COO machinery (to_dense, the products, the leaf's
gradient hook) runs on them unchanged, and an op that changes the pattern goes through a COO
tensor sharing the values (``_coo()``) and back (``csr_from_coo``), so gradients reach the values
through the ordinary tape. A CSR leaf's ``.grad`` is CSR on its own pattern, except after
``@``/``mm``/``matmul``/``addmm``/``sum()`` (dense, as torch's). Every op not in ``CSR_SUPPORTED``
raises NotImplementedError (a RuntimeError, as torch's refusals) naming it.
"""

import re

from gt import autograd, dtypes
from gt.ops._shapes import numel
from gt.tensor import creation
from gt.tensor.compat_methods import Layout
from gt.tensor.index_methods import searchsorted
from gt.tensor.sparse_autograd import fold_grad_into
from gt.tensor.sparse_coo import SparseTensor, refuse_on_mesh
from gt.tensor.sparse_csr_ops import CsrOps
from gt.tensor.tensor_repr import _add_suffixes

sparse_csr = Layout("sparse_csr")


class SparseCsrTensor(CsrOps, SparseTensor):
    """A sparse CSR tensor (torch's ``layout=torch.sparse_csr``); made by ``gt.sparse_csr_tensor``,
    ``Tensor.to_sparse_csr()`` or ``to_sparse(layout=gt.sparse_csr)``."""

    __slots__ = ("_csr_crow", "_csr_col")
    layout = property(lambda self: sparse_csr, doc="``gt.sparse_csr``.")
    is_sparse = property(lambda self: False, doc="False: torch's ``is_sparse`` means the COO layout.")
    is_sparse_csr = property(lambda self: True, doc="True: a sparse CSR tensor.")
    __hash__ = SparseTensor.__hash__
    _kind = "CSR"

    @classmethod
    def _from_parts(cls, crow, col, indices, values, shape):
        out = cls._make(indices, values, shape, True)
        out._csr_crow, out._csr_col = crow, col
        return out

    def _new(self, indices, values, shape, coalesced):
        """The CSR tensor of these COO entries (the COO ops' results); this pattern reused when it is."""
        if indices is self._sp_indices and tuple(shape) == self.shape:
            return SparseCsrTensor._from_parts(self._csr_crow, self._csr_col, indices, values, shape)
        coo = SparseTensor._make(indices, values, shape, coalesced)
        return csr_from_coo(coo, self._csr_crow.dtype)

    def _with_values(self, values):
        """This pattern with other flat values (nnz of every batch,)."""
        return SparseCsrTensor._from_parts(self._csr_crow, self._csr_col, self._sp_indices, values, self.shape)

    def _coo(self):
        """The same entries as a coalesced COO tensor sharing the values (differentiable)."""
        return SparseTensor._make(self._sp_indices, self._sp_values, self.shape, True)

    def _of_layout(self, coo):
        """The CSR form of a COO result, with int64 indices whatever this tensor's (torch's for
        ``*`` and ``@`` of two CSR tensors)."""
        return csr_from_coo(coo)

    def _sizes(self):
        return self.shape

    def _make_leaf(self):
        """A leaf: its values a leaf whose gradient becomes this tensor's CSR ``.grad`` (its own pattern)."""
        values = self._sp_values.detach()
        values.requires_grad_(True)
        self._sp_values, self._sp_leaf = values, True
        fold_grad_into(values, self, lambda sp, g: sp._with_values(g.detach()))

    # ---- what torch reads -----------------------------------------------------------------
    def crow_indices(self):
        """(*batch, nrows + 1) compressed row indices, int64 or int32."""
        return self._csr_crow

    def col_indices(self):
        """(*batch, nnz) column indices, sorted and distinct in each row."""
        return self._csr_col

    def values(self):
        """(*batch, nnz) values (differentiable: a view of the values that carry the graph)."""
        return self._sp_values.reshape(tuple(self._csr_col.shape))

    def _nnz(self):
        return self._csr_col.shape[-1]

    def sparse_dim(self):
        return 2

    def dense_dim(self):
        return 0

    def detach(self):
        return self._with_values(self._sp_values.detach())

    def clone(self, *, memory_format=None):
        return SparseCsrTensor._from_parts(self._csr_crow.clone(), self._csr_col.clone(), self._sp_indices,
                                           self._sp_values.clone(), self.shape)

    def __deepcopy__(self, memo):
        out = self.detach().clone()
        if self.requires_grad and self.is_leaf:
            out.requires_grad_(True)
        memo[id(self)] = out
        return out

    def zero_(self):
        """No entries left (nnz becomes 0), in place, as torch's."""
        batch, nrows = self.shape[:-2], self.shape[-2]
        self._csr_crow = creation.zeros(batch + (nrows + 1,), dtype=self._csr_crow.dtype)
        self._csr_col = creation.zeros(batch + (0,), dtype=self._csr_col.dtype)
        self._sp_indices = creation.zeros((self.ndim, 0), dtype=dtypes.int64)
        self._sp_values = creation.zeros((0,), dtype=self.dtype)
        return self

    def to_sparse_coo(self):
        """The same entries as a coalesced sparse COO tensor (differentiable)."""
        return self._coo()

    def to_sparse_csr(self, dense_dim=None):
        """Itself (torch's)."""
        if dense_dim:
            raise RuntimeError(f"to_sparse_csr: dense_dim={dense_dim}: gt's CSR tensors have no dense dims")
        return self

    def __repr__(self):
        return csr_repr(self)

    __str__ = __repr__


def csr_from_coo(coo, index_dtype=dtypes.int64):
    """The CSR tensor of the COO tensor ``coo`` (no dense dims; its leading dims beyond the last two
    are batch dims, each holding the same number of entries, torch's rule), its values kept in
    the graph. Coalesced first."""
    refuse_on_mesh("CSR")
    if coo.dense_dim():
        raise NotImplementedError(f"to_sparse_csr: a sparse COO tensor with dense dims (dense_dim "
                                  f"{coo.dense_dim()}) has no CSR form in gt (hybrid CSR is not supported)")
    if coo.ndim < 2:
        raise RuntimeError(f"to_sparse_csr: expected a 2-D or batched (3-D or more) tensor, got {coo.ndim}-D")
    c = coo.coalesce()
    shape = c.shape
    batch, nrows = shape[:-2], shape[-2]
    nb, idx = numel(batch), c._sp_indices
    total = idx.shape[1]
    with autograd.no_grad():
        which = _batch_of(idx, batch)
        if batch and total and bool((which.bincount(minlength=nb) != total // nb).any().item()):
            raise RuntimeError("Expect the same number of specified elements per batch.")
        nnz = total // nb if nb else 0
        firsts = creation.arange(nb, dtype=dtypes.int64).unsqueeze(1)
        starts = firsts * nrows + creation.arange(nrows + 1, dtype=dtypes.int64)
        crow = searchsorted(which * nrows + idx[-2], starts.reshape(-1)).reshape(nb, nrows + 1) - firsts * nnz
        crow = crow.reshape(batch + (nrows + 1,)).to(index_dtype)
        col = idx[-1].reshape(batch + (nnz,)).to(index_dtype)
    return SparseCsrTensor._from_parts(crow, col, idx, c._sp_values, shape)


def _batch_of(idx, batch):
    """The flat batch number of each entry (row-major over the batch dims; 0 without any)."""
    if not batch:
        return creation.zeros((idx.shape[1],), dtype=dtypes.int64)
    flat = idx[0]
    for d in range(1, len(batch)):
        flat = flat * batch[d] + idx[d]
    return flat


_DTYPE_SUFFIX = re.compile(r",\s*dtype=[\w.]+\)$")


def _part(t, indent):
    """torch's text of one member tensor inside the CSR repr: no dtype, ``size=`` when empty."""
    if t.numel() == 0:
        return f"tensor([], size={tuple(t.shape)})"
    text = _DTYPE_SUFFIX.sub(")", repr(t.detach())).replace("\n", "\n" + " " * indent)
    return text.replace(" " * indent + "\n", "\n")          # torch's blank lines between blocks stay empty


def csr_repr(s, parts=None, layout=sparse_csr):
    """torch's repr of a CSR tensor (its ``_str_intern`` for the compressed layouts); of another
    compressed ``layout`` with ``parts`` (its two index names and tensors)."""
    first, second, comp, plain = parts or ("crow_indices", "col_indices", s._csr_crow, s._csr_col)
    text = (f"tensor({first}={_part(comp, 8 + len(first))},\n       {second}={_part(plain, 8 + len(second))},\n"
            f"       values={_part(s.values(), 14)}")
    suffixes = [f"size={s.shape}", f"nnz={s._nnz()}"]
    if s.dtype not in (dtypes.default_float, dtypes.int64, dtypes.bool_, dtypes.complex64):
        suffixes.append(f"dtype={s.dtype}")
    suffixes.append(f"layout={layout}")
    if s.requires_grad:
        suffixes.append("requires_grad=True" if s.is_leaf else f"grad_fn=<{type(s.grad_fn).__name__}>")
    return _add_suffixes(text, suffixes, 7)
