"""The other compressed sparse layouts of torch: CSC (``gt.sparse_csc``), BSR (``gt.sparse_bsr``)
and BSC (``gt.sparse_bsc``), beside CSR (gt/tensor/sparse_csr.py); their transposes (CSR <-> CSC,
BSR <-> BSC, torch's ``t()``/``transpose``/``mT``) and conversions from COO. Making them is in
gt/tensor/sparse_compressed_make.py, their ops in gt/tensor/sparse_compressed_ops.py.

A tensor of shape (*batch, nrows, ncols) holds ``compressed`` (*batch, ncompressed + 1) and
``plain`` (*batch, nnz) indices, int64 or int32 as given, and ``values`` (*batch, nnz, *block):
rows are compressed (``crow_indices``/``col_indices``) in CSR/BSR, columns (``ccol_indices``/
``row_indices``) in CSC/BSC; BSR/BSC store (bh, bw) blocks, the block at block row ``r`` and block
column ``c`` covering rows ``r * bh:(r + 1) * bh`` and columns ``c * bw:(c + 1) * bw``. As a CSR
tensor, it is a ``SparseTensor`` whose ``_sp_indices`` (ndim, every stored element) and flat
``_sp_values`` list the elements in storage order (blocks element by element, zeros kept): torch's
``to_sparse_coo()`` of these layouts, uncoalesced. The COO machinery (``to_dense``, the products
with dense tensors, the gradient hooks) runs on them unchanged.
"""

from gt import autograd, dtypes
from gt.ops._shapes import numel
from gt.tensor import creation
from gt.tensor.compat_methods import Layout
from gt.tensor.functions import stack
from gt.tensor.index_methods import searchsorted
from gt.tensor.sparse_autograd import dense_source, fold_grad_into
from gt.tensor.sparse_coo import SparseTensor, refuse_on_mesh
from gt.tensor.sparse_compressed_ops import CompressedOps
from gt.tensor.sparse_csr import SparseCsrTensor, csr_from_coo, csr_repr, sparse_csr

sparse_csc, sparse_bsr, sparse_bsc = Layout("sparse_csc"), Layout("sparse_bsr"), Layout("sparse_bsc")
COLUMN = {sparse_csc: True, sparse_bsc: True, sparse_bsr: False, sparse_csr: False}
BLOCKED = {sparse_bsr: True, sparse_bsc: True, sparse_csc: False, sparse_csr: False}
TRANSPOSED = {sparse_csr: sparse_csc, sparse_csc: sparse_csr, sparse_bsr: sparse_bsc, sparse_bsc: sparse_bsr}


class SparseCompressedTensor(CompressedOps, SparseTensor):
    """A sparse CSC, BSR or BSC tensor (its ``layout``); made by ``gt.sparse_csc_tensor``,
    ``gt.sparse_bsr_tensor``, ``gt.sparse_bsc_tensor``, ``Tensor.to_sparse_csc()``,
    ``to_sparse_bsr(blocksize)``, ``to_sparse_bsc(blocksize)`` or a transpose."""

    __slots__ = ("_cp_layout", "_cp_comp", "_cp_plain", "_cp_block")
    layout = property(lambda self: self._cp_layout)
    is_sparse = property(lambda self: False, doc="False: torch's ``is_sparse`` means the COO layout.")
    is_sparse_csr = property(lambda self: False, doc="False: torch's ``is_sparse_csr`` means the CSR layout.")
    __hash__ = SparseTensor.__hash__
    _kind = "compressed"

    @classmethod
    def _from_parts(cls, layout, comp, plain, indices, values, shape, block=None):
        out = cls._make(indices, values, shape, False)
        out._cp_layout, out._cp_comp, out._cp_plain, out._cp_block = layout, comp, plain, block
        return out

    def _new(self, indices, values, shape, coalesced):
        """This layout (and blocksize) of COO entries: the COO ops' results; this pattern reused when it is."""
        if indices is self._sp_indices and tuple(shape) == self.shape:
            return self._with_values(values)
        return compressed_from_coo(SparseTensor._make(indices, values, shape, coalesced), self._cp_layout,
                                   self._cp_block)

    def _with_values(self, values):
        """This pattern with other flat values (every stored element, in storage order)."""
        return SparseCompressedTensor._from_parts(self._cp_layout, self._cp_comp, self._cp_plain, self._sp_indices,
                                                  values, self.shape, self._cp_block)

    def _coo(self):
        """The stored elements as an uncoalesced COO tensor sharing the values (torch's ``to_sparse_coo``)."""
        return SparseTensor._make(self._sp_indices, self._sp_values, self.shape, False)

    def _sizes(self):
        return self.shape

    def _make_leaf(self):
        """A leaf: its values a leaf whose gradient becomes this tensor's ``.grad`` (its layout and pattern)."""
        values = self._sp_values.detach()
        values.requires_grad_(True)
        self._sp_values, self._sp_leaf = values, True
        fold_grad_into(values, self, lambda sp, g: sp._with_values(g.detach()))

    def _names(self):
        return ("ccol_indices", "row_indices") if COLUMN[self._cp_layout] else ("crow_indices", "col_indices")

    def _refuse(self, wanted):
        raise RuntimeError(f"{wanted} expected sparse {'row' if COLUMN[self._cp_layout] else 'column'} compressed "
                           f"tensor layout but got {_torch_name(self._cp_layout)}")

    # ---- what torch reads -----------------------------------------------------------------
    def crow_indices(self):
        """(*batch, nrows / bh + 1) compressed rows (BSR); torch's error for CSC/BSC."""
        return self._refuse("crow_indices") if COLUMN[self._cp_layout] else self._cp_comp

    def col_indices(self):
        """(*batch, nnz) block columns (BSR); torch's error for CSC/BSC."""
        return self._refuse("col_indices") if COLUMN[self._cp_layout] else self._cp_plain

    def ccol_indices(self):
        """(*batch, ncols / bw + 1) compressed columns (CSC/BSC); torch's error for BSR."""
        return self._cp_comp if COLUMN[self._cp_layout] else self._refuse("ccol_indices")

    def row_indices(self):
        """(*batch, nnz) (block) rows of the entries (CSC/BSC); torch's error for BSR."""
        return self._cp_plain if COLUMN[self._cp_layout] else self._refuse("row_indices")

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
        return SparseCompressedTensor._from_parts(self._cp_layout, self._cp_comp.clone(), self._cp_plain.clone(),
                                                  self._sp_indices, self._sp_values.clone(), self.shape,
                                                  self._cp_block)

    def __deepcopy__(self, memo):
        out = self.detach().clone()
        if self.requires_grad and self.is_leaf:
            out.requires_grad_(True)
        memo[id(self)] = out
        return out

    def zero_(self):
        """No entries left (nnz becomes 0), in place, as torch's."""
        batch = self.shape[:-2]
        self._cp_comp = creation.zeros(batch + (self._cp_comp.shape[-1],), dtype=self._cp_comp.dtype)
        self._cp_plain = creation.zeros(batch + (0,), dtype=self._cp_plain.dtype)
        self._sp_indices = creation.zeros((self.ndim, 0), dtype=dtypes.int64)
        self._sp_values = creation.zeros((0,), dtype=self.dtype)
        return self

    def __repr__(self):
        return compressed_repr(self)

    __str__ = __repr__


def _torch_name(layout):
    return {sparse_csr: "SparseCsr", sparse_csc: "SparseCsc", sparse_bsr: "SparseBsr", sparse_bsc: "SparseBsc"}[layout]


def parts(s):
    """(layout, compressed, plain, blocksize or None) of a compressed tensor, CSR included."""
    if s.layout == sparse_csr:
        return sparse_csr, s._csr_crow, s._csr_col, None
    return s._cp_layout, s._cp_comp, s._cp_plain, s._cp_block


def element_indices(layout, comp, plain, shape, block):
    """(ndim, elements) int64 indices of every stored element, in storage order (blocks element by
    element, row-major within each block), of compressed indices that hold torch's invariants."""
    batch = tuple(shape[:-2])
    nb, nnz, ncomp = numel(batch), plain.shape[-1], comp.shape[-1] - 1
    counts = (comp[..., 1:] - comp[..., :-1]).to(dtypes.int64).reshape(-1)
    c = creation.arange(ncomp, dtype=dtypes.int64).repeat(nb).repeat_interleave(counts)
    p = plain.reshape(-1).to(dtypes.int64)
    rows, cols = (p, c) if COLUMN[layout] else (c, p)
    per = 1
    if block is not None:
        bh, bw = block
        per = bh * bw
        rows = ((rows * bh).unsqueeze(1) + creation.arange(bh, dtype=dtypes.int64).repeat_interleave(bw)).reshape(-1)
        cols = ((cols * bw).unsqueeze(1) + creation.arange(bw, dtype=dtypes.int64).repeat(bh)).reshape(-1)
    out, flat = [], creation.arange(nb, dtype=dtypes.int64).repeat_interleave(nnz * per)
    for n in reversed(batch):
        out.insert(0, flat % n)
        flat = flat // n
    return stack(out + [rows, cols], 0)


def transposed(s, index_dtype=None):
    """The transpose of the last two dims of the compressed tensor ``s``: CSR <-> CSC, BSR <-> BSC
    on the same index tensors (torch's), the blocks themselves transposed; differentiable."""
    layout, comp, plain, block = parts(s)
    new = TRANSPOSED[layout]
    shape = s.shape[:-2] + (s.shape[-1], s.shape[-2])
    values = s._sp_values.reshape(-1)       # a recorded view: the transpose is no leaf (torch's TBackward)
    if block is not None:
        values = s.values().transpose(-2, -1).reshape(-1)
        block = block[::-1]
    with autograd.no_grad():
        idx = element_indices(new, comp, plain, shape, block)
    if new == sparse_csr:
        out = SparseCsrTensor._from_parts(comp, plain, idx, values, shape)
    else:
        out = SparseCompressedTensor._from_parts(new, comp, plain, idx, values, shape, block)
    if _carries(s):   # a leaf's (or to_sparse's) dense gradient through products, torch's
        out._sp_dense = _transposed_source(s, -2, -1)
    return out


def batch_transposed(s, d0, d1):
    """Two batch dims of the compressed tensor ``s`` swapped (its layout kept, torch's); differentiable."""
    layout, comp, plain, block = parts(s)
    comp, plain = comp.transpose(d0, d1).contiguous(), plain.transpose(d0, d1).contiguous()
    values = s.values().transpose(d0, d1).reshape(-1)
    shape = list(s.shape)
    shape[d0], shape[d1] = shape[d1], shape[d0]
    with autograd.no_grad():
        idx = element_indices(layout, comp, plain, tuple(shape), block)
    if layout == sparse_csr:
        out = SparseCsrTensor._from_parts(comp, plain, idx, values, tuple(shape))
    else:
        out = SparseCompressedTensor._from_parts(layout, comp, plain, idx, values, tuple(shape), block)
    if _carries(s):
        out._sp_dense = _transposed_source(s, d0, d1)
    return out


def _carries(s):
    """Whether a transpose of ``s`` made now carries its dense gradient: not one made under no_grad
    (whose later products would pass a gradient to the leaf, where torch's pass none)."""
    return (s._sp_leaf or s._sp_dense is not None) and autograd.is_grad_enabled()


def _transposed_source(s, d0, d1):
    """The dense source of ``s`` with dims ``d0``, ``d1`` swapped, made when a product asks for it (a
    leaf's is a dense copy: none is made for a transpose that meets no product)."""
    def source():
        src = dense_source(s)
        return None if src is None else src.transpose(d0, d1)

    return source


def compressed_from_coo(coo, layout, blocksize=None):
    """The ``layout`` tensor of the COO tensor ``coo`` (no dense dims; batch dims before the last two,
    each batch holding as many entries (blocks), torch's rule); BSR/BSC in ``blocksize`` blocks,
    each block holding every element it covers (zeros where ``coo`` has none). Differentiable."""
    refuse_on_mesh(_torch_name(layout)[6:].upper())
    if COLUMN[layout]:
        t = compressed_from_coo(coo.transpose(coo.ndim - 2, coo.ndim - 1), TRANSPOSED[layout],
                                None if blocksize is None else tuple(blocksize)[::-1])
        return transposed(t)
    if layout == sparse_csr:
        return csr_from_coo(coo)
    bh, bw = blocksize
    c = coo.coalesce()
    idx, shape = c._sp_indices, c.shape
    with autograd.no_grad():
        lead = [idx[d] for d in range(coo.ndim - 2)]
        blocks = stack(lead + [idx[-2] // bh, idx[-1] // bw], 0)
        grid = shape[:-2] + (shape[-2] // bh, shape[-1] // bw)
        pattern = SparseTensor._make(blocks, creation.ones((blocks.shape[1],)), grid, False).coalesce()
        bcsr = csr_from_coo(pattern)
        keys = _linear(pattern._sp_indices, grid)
        which = searchsorted(keys, _linear(blocks, grid))
        at = (which * bh + idx[-2] % bh) * bw + idx[-1] % bw
    flat = creation.zeros((pattern._nnz() * bh * bw,), dtype=c.dtype).index_add(0, at, c._sp_values)
    block = (bh, bw)
    with autograd.no_grad():
        elements = element_indices(sparse_bsr, bcsr._csr_crow, bcsr._csr_col, shape, block)
    return SparseCompressedTensor._from_parts(sparse_bsr, bcsr._csr_crow, bcsr._csr_col, elements, flat, shape,
                                              block)


def _linear(idx, sizes):
    flat = idx[0] * 0
    for d, n in enumerate(sizes):
        flat = flat * n + idx[d]
    return flat


def compressed_repr(s):
    """torch's repr of a CSC, BSR or BSC tensor (CSR's, with its names)."""
    return csr_repr(s, s._names() + (s._cp_comp, s._cp_plain), s._cp_layout)
