"""The other compressed sparse layouts of torch: CSC (``gt.sparse_csc``), BSR (``gt.sparse_bsr``)
and BSC (``gt.sparse_bsc``), beside CSR (gt/tensor/sparse_csr.py, where their common storage and
methods are: ``SparseCompressedBase``); their transposes (CSR <-> CSC, BSR <-> BSC, torch's
``t()``/``transpose``/``mT``) and conversions from COO. Making them is in
gt/tensor/sparse_compressed_make.py, their ops in gt/tensor/sparse_compressed_ops.py.

Rows are compressed (``crow_indices``/``col_indices``) in CSR/BSR, columns (``ccol_indices``/
``row_indices``) in CSC/BSC; BSR/BSC store (bh, bw) blocks, ``values`` (*batch, nnz, bh, bw), the
block at block row ``r`` and block column ``c`` covering rows ``r * bh:(r + 1) * bh`` and columns
``c * bw:(c + 1) * bw``. The ``_sp_indices`` (ndim, every stored element) and flat ``_sp_values``
list the elements in storage order (blocks element by element, zeros kept): torch's
``to_sparse_coo()`` of these layouts, uncoalesced.
"""

from gt import autograd, dtypes
from gt.ops._shapes import numel
from gt.tensor import creation
from gt.tensor.compat_methods import Layout
from gt.tensor.functions import stack
from gt.tensor.index_methods import searchsorted
from gt.tensor.sparse_autograd import dense_source
from gt.tensor.sparse_coo import SparseTensor, refuse_on_mesh
from gt.tensor.sparse_compressed_ops import COMPRESSED_SUPPORTED, CompressedOps
from gt.tensor.sparse_csr import SparseCompressedBase, SparseCsrTensor, csr_from_coo, sparse_csr

sparse_csc, sparse_bsr, sparse_bsc = Layout("sparse_csc"), Layout("sparse_bsr"), Layout("sparse_bsc")
COLUMN = {sparse_csc: True, sparse_bsc: True, sparse_bsr: False, sparse_csr: False}
BLOCKED = {sparse_bsr: True, sparse_bsc: True, sparse_csc: False, sparse_csr: False}
TRANSPOSED = {sparse_csr: sparse_csc, sparse_csc: sparse_csr, sparse_bsr: sparse_bsc, sparse_bsc: sparse_bsr}
NAMES = {layout: ("ccol_indices", "row_indices") if COLUMN[layout] else ("crow_indices", "col_indices")
         for layout in COLUMN}           # the compressed and the plain indices' (torch's)


def _refusal(op):
    return (f"{op}: not supported on a sparse CSC/BSR/BSC tensor: gt's support only "
            f"{', '.join(COMPRESSED_SUPPORTED)}; call .to_dense() first")


class SparseCompressedTensor(CompressedOps, SparseCompressedBase):
    """A sparse CSC, BSR or BSC tensor (its ``layout``); made by ``gt.sparse_csc_tensor``,
    ``gt.sparse_bsr_tensor``, ``gt.sparse_bsc_tensor``, ``Tensor.to_sparse_csc()``,
    ``to_sparse_bsr(blocksize)``, ``to_sparse_bsc(blocksize)`` or a transpose."""

    __slots__ = ()
    _kind = "compressed"
    _refusal = staticmethod(_refusal)

    def _from_coo(self, coo):
        """This layout (and blocksize) of a COO result of an op on this tensor."""
        return compressed_from_coo(coo, self._cp_layout, self._cp_block)

    def _names(self):
        return NAMES[self._cp_layout]

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


def _torch_name(layout):
    return {sparse_csr: "SparseCsr", sparse_csc: "SparseCsc", sparse_bsr: "SparseBsr", sparse_bsc: "SparseBsc"}[layout]


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
    comp, plain, block = s._cp_comp, s._cp_plain, s._cp_block
    new = TRANSPOSED[s.layout]
    shape = s.shape[:-2] + (s.shape[-1], s.shape[-2])
    values = s._sp_values.reshape(-1)       # a recorded view: the transpose is no leaf (torch's TBackward)
    if block is not None:
        values = s.values().transpose(-2, -1).reshape(-1)
        block = block[::-1]
    with autograd.no_grad():
        idx = element_indices(new, comp, plain, shape, block)
    out = (SparseCsrTensor if new == sparse_csr else SparseCompressedTensor)._from_parts(new, comp, plain, idx, values,
                                                                                      shape, block)
    if _carries(s):   # a leaf's (or to_sparse's) dense gradient through products, torch's
        out._sp_dense = _transposed_source(s, -2, -1)
    return out


def batch_transposed(s, d0, d1):
    """Two batch dims of the compressed tensor ``s`` swapped (its layout kept, torch's); differentiable."""
    comp, plain = s._cp_comp.transpose(d0, d1).contiguous(), s._cp_plain.transpose(d0, d1).contiguous()
    values = s.values().transpose(d0, d1).reshape(-1)
    shape = list(s.shape)
    shape[d0], shape[d1] = shape[d1], shape[d0]
    with autograd.no_grad():
        idx = element_indices(s.layout, comp, plain, tuple(shape), s._cp_block)
    out = type(s)._from_parts(s.layout, comp, plain, idx, values, tuple(shape), s._cp_block)
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
        elements = element_indices(sparse_bsr, bcsr._cp_comp, bcsr._cp_plain, shape, block)
    return SparseCompressedTensor._from_parts(sparse_bsr, bcsr._cp_comp, bcsr._cp_plain, elements, flat, shape, block)


def _linear(idx, sizes):
    flat = idx[0] * 0
    for d, n in enumerate(sizes):
        flat = flat * n + idx[d]
    return flat

