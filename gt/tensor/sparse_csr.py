"""Compressed sparse tensors (torch's ``torch.sparse_csr``, ``sparse_csc``, ``sparse_bsr`` and
``sparse_bsc`` layouts): ``SparseCompressedBase``, the storage and methods all four share (torch's
one ``SparseCsrTensorImpl``), and the CSR class, with its conversion from COO and torch's repr.
``gt.sparse_csr_tensor`` and ``Tensor.to_sparse_csr`` are in gt/tensor/sparse_csr_make.py; the
CSC/BSR/BSC class (``SparseCompressedTensor``) in gt/tensor/sparse_compressed.py.

A compressed tensor of shape (*batch, nrows, ncols) holds ``compressed`` (*batch, ncompressed + 1)
and ``plain`` (*batch, nnz) indices, int64 or int32 as given, and ``values`` (*batch, nnz, *block).
A CSR tensor's are ``crow_indices`` and ``col_indices``: per batch the entries of row ``r`` are
``crow[r]:crow[r + 1]``, their columns sorted and distinct. No dense (hybrid) dims. It is a
``SparseTensor`` (gt/tensor/sparse_coo.py) whose ``_sp_indices`` are the stored elements as int64
COO indices (ndim, every stored element) in storage order (CSR's sorted row-major: coalesced), and
whose ``_sp_values`` are the flat values: the COO machinery (to_dense, the products, the leaf's
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
from gt.tensor.sparse_csr_ops import CSR_SUPPORTED, CompressedValueOps, CsrOps
from gt.tensor.tensor_repr import _add_suffixes

sparse_csr = Layout("sparse_csr")


class SparseCompressedBase(CompressedValueOps, SparseTensor):
    """What the compressed layouts (CSR, CSC, BSR, BSC) share: their storage (``layout``, the
    compressed and plain index tensors, the blocksize of BSR/BSC or None) and the methods that
    read it alike. ``SparseCsrTensor`` and ``SparseCompressedTensor`` add each layout's ops."""

    __slots__ = ("_cp_layout", "_cp_comp", "_cp_plain", "_cp_block")
    layout = property(lambda self: self._cp_layout,
                      doc="``gt.sparse_csr``, ``gt.sparse_csc``, ``gt.sparse_bsr`` or ``gt.sparse_bsc``.")
    is_sparse = property(lambda self: False, doc="False: torch's ``is_sparse`` means the COO layout.")
    is_sparse_csr = property(lambda self: False, doc="False: torch's ``is_sparse_csr`` means the CSR layout.")
    __hash__ = SparseTensor.__hash__

    @classmethod
    def _from_parts(cls, layout, comp, plain, indices, values, shape, block=None):
        out = cls._make(indices, values, shape, layout == sparse_csr)     # CSR's elements are row-major
        out._cp_layout, out._cp_comp, out._cp_plain, out._cp_block = layout, comp, plain, block
        return out

    def _new(self, indices, values, shape, coalesced):
        """This layout (and blocksize) of COO entries: the COO ops' results; this pattern reused when it is."""
        if indices is self._sp_indices and tuple(shape) == self.shape:
            return self._with_values(values)
        return self._from_coo(SparseTensor._make(indices, values, shape, coalesced))

    def _with_values(self, values):
        """This pattern with other flat values (every stored element, in storage order)."""
        return type(self)._from_parts(self._cp_layout, self._cp_comp, self._cp_plain, self._sp_indices, values,
                                      self.shape, self._cp_block)

    def _coo(self):
        """The stored elements as a COO tensor sharing the values (torch's ``to_sparse_coo``: coalesced
        for CSR only)."""
        return SparseTensor._make(self._sp_indices, self._sp_values, self.shape, self._sp_coalesced)

    def _sizes(self):
        return self.shape

    def _make_leaf(self):
        """A leaf: its values a leaf whose gradient becomes this tensor's ``.grad`` (its layout and pattern)."""
        values = self._sp_values.detach()
        values._set_requires_grad(True)
        self._sp_values, self._sp_leaf = values, True
        fold_grad_into(values, self, lambda sp, g: sp._with_values(g.detach()))

    def _names(self):
        """The names of the compressed and the plain indices (torch's repr)."""
        return "crow_indices", "col_indices"

    # ---- what torch reads -----------------------------------------------------------------
    def values(self):
        """(*batch, nnz, *block) values (differentiable: a view of the values that carry the graph)."""
        return self._sp_values.reshape(tuple(self._cp_plain.shape) + (self._cp_block or ()))

    def _nnz(self):
        return self._cp_plain.shape[-1]

    def sparse_dim(self):
        return 2

    def dense_dim(self):
        return 0

    def detach(self):
        return self._with_values(self._sp_values.detach())

    def clone(self, *, memory_format=None):
        return type(self)._from_parts(self._cp_layout, self._cp_comp.clone(), self._cp_plain.clone(),
                                      self._sp_indices, self._sp_values.clone(), self.shape, self._cp_block)

    def zero_(self):
        """No entries left (nnz becomes 0), in place, as torch's."""
        batch = self.shape[:-2]
        self._cp_comp = creation.zeros(batch + (self._cp_comp.shape[-1],), dtype=self._cp_comp.dtype)
        self._cp_plain = creation.zeros(batch + (0,), dtype=self._cp_plain.dtype)
        self._sp_indices = creation.zeros((self.ndim, 0), dtype=dtypes.int64)
        self._sp_values = creation.zeros((0,), dtype=self.dtype)
        return self

    def to_sparse_coo(self):
        """The stored elements as a sparse COO tensor (differentiable; coalesced for CSR, torch's)."""
        return self._coo()

    def __repr__(self):
        return compressed_repr(self)

    __str__ = __repr__


def layout_names(cls):
    """The attributes a compressed class defines itself (its ops, ``SparseCompressedBase``'s and
    ``CompressedValueOps``'s): what ``refuse_the_rest`` leaves to it."""
    mro = cls.__mro__
    return set().union(*(vars(k) for k in mro[:mro.index(SparseTensor)]))


def _refusal(op):
    return (f"{op}: not supported on a sparse CSR tensor: gt's sparse CSR tensors support only "
            f"{', '.join(CSR_SUPPORTED)}; call .to_dense() first")


class SparseCsrTensor(CsrOps, SparseCompressedBase):
    """A sparse CSR tensor (torch's ``layout=torch.sparse_csr``); made by ``gt.sparse_csr_tensor``,
    ``Tensor.to_sparse_csr()`` or ``to_sparse(layout=gt.sparse_csr)``."""

    __slots__ = ()
    is_sparse_csr = property(lambda self: True, doc="True: a sparse CSR tensor.")
    _kind = "CSR"
    _refusal = staticmethod(_refusal)

    def _from_coo(self, coo):
        """The CSR tensor of a COO result of an op on this one, its index dtype kept."""
        return csr_from_coo(coo, self._cp_comp.dtype)

    def _of_layout(self, coo):
        """The CSR form of a COO result, with int64 indices whatever this tensor's (torch's for
        ``*`` and ``@`` of two CSR tensors)."""
        return csr_from_coo(coo)

    def crow_indices(self):
        """(*batch, nrows + 1) compressed row indices, int64 or int32."""
        return self._cp_comp

    def col_indices(self):
        """(*batch, nnz) column indices, sorted and distinct in each row."""
        return self._cp_plain

    def to_sparse_csr(self, dense_dim=None):
        """Itself (torch's)."""
        if dense_dim:
            raise RuntimeError(f"to_sparse_csr: dense_dim={dense_dim}: gt's CSR tensors have no dense dims")
        return self


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
    return SparseCsrTensor._from_parts(sparse_csr, crow, col, idx, c._sp_values, shape)


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


def compressed_repr(s):
    """torch's repr of a compressed tensor (its ``_str_intern`` for the compressed layouts)."""
    (first, second), comp, plain = s._names(), s._cp_comp, s._cp_plain
    text = (f"tensor({first}={_part(comp, 8 + len(first))},\n       {second}={_part(plain, 8 + len(second))},\n"
            f"       values={_part(s.values(), 14)}")
    suffixes = [f"size={s.shape}", f"nnz={s._nnz()}"]
    if s.dtype not in (dtypes.default_float, dtypes.int64, dtypes.bool_, dtypes.complex64):
        suffixes.append(f"dtype={s.dtype}")
    suffixes.append(f"layout={s.layout}")
    if s.requires_grad:
        suffixes.append("requires_grad=True" if s.is_leaf else f"grad_fn=<{type(s.grad_fn).__name__}>")
    return _add_suffixes(text, suffixes, 7)
