"""The sparse products of the numpy engine (mixed into ``NumpyEngine``; the interface is
gt/backend/engine_sparse.py): scipy.sparse's CSR kernels, imported at the first call (scipy is an
optional dependency: without it, the same sums through numpy's gathers and ``np.add.at``).

scipy builds its CSR matrix from the entries in one pass (repeats added up, int32 indices where
they fit). Its sparse @ sparse drops the positions whose products cancel to exact zero, while
torch keeps the symbolic pattern: the pattern comes from the product of the two patterns with
every value 1 (sums of positive terms never cancel), and the values are placed into it.
The gradients of a sparse @ sparse product's values walk the pairs of entries that meet (as many as
the product's terms) and sum them with ``np.bincount`` (in float64). Measured (n = 2000, 0.5% dense,
float64, one core): CSR @ dense (2000 x 64) 0.8 ms, its transpose 0.8 ms, CSR @ CSR 2.5 ms and
1.1 ms for the pattern (4.0 ms in all for gt's CSR @ CSR, its result built from scipy's arrays).
"""

import numpy as np

# entries per step of the sampled product: its two (chunk, p) gathers stay in cache (n = 2000, 0.5%
# dense, 64 columns, float64: 2.3 ms in steps of 2048 with np.take, 18 ms in one fancy-index step)
_CHUNK = 2048
_TABLE_MAX = 1 << 23     # the most positions (n * p) a lookup table of a product's entries covers: 32 MB


def _scipy():
    try:
        import scipy.sparse as sp
    except ImportError:          # optional dependency
        return None
    return sp


def _csr(sp, rows, cols, values, shape):
    return sp.csr_matrix((values, (rows, cols)), shape=shape)


def _csc(sp, rows, cols, values, shape):
    return sp.csc_matrix((values, (rows, cols)), shape=shape)


class NumpySparse:
    def sparse_dense_mm(self, rows, cols, values, shape, dense, transpose):
        sp = _scipy()
        if sp is None:
            if transpose:
                rows, cols, shape = cols, rows, shape[::-1]
            out = np.zeros((shape[0], dense.shape[1]), values.dtype)
            np.add.at(out, rows, values[:, None] * dense[cols])
            return out
        m = _csr(sp, rows, cols, values, shape)
        out = (m.T if transpose else m) @ dense
        return np.ascontiguousarray(out, dtype=values.dtype)

    def sampled_dense_dense(self, rows, cols, a, b):
        out = np.empty(rows.shape[0], np.result_type(a, b))
        for s in range(0, rows.shape[0], _CHUNK):
            e = s + _CHUNK
            np.einsum("ij,ij->i", np.take(a, rows[s:e], axis=0), np.take(b, cols[s:e], axis=0), out=out[s:e])
        return out

    def sparse_sparse_mm(self, a, b):
        sp = _scipy()
        if sp is None:
            return _pairs_product(self, a, b)
        (ar, ac, av, ashape), (br, bc, bv, bshape) = a, b
        # CSC operands give a CSC product, whose conversion to CSR sorts each row (a counting sort)
        prod = (_csc(sp, ar, ac, av, ashape) @ _csc(sp, br, bc, bv, bshape)).tocsr()
        ones = _csr(sp, ar, ac, np.ones(ar.shape[0], bool), ashape) @ _csr(sp, br, bc, np.ones(br.shape[0], bool),
                                                                         bshape)
        crow, rows, cols, values = _on_pattern(prod, ones, bshape[1])
        return rows, cols, values

    def sparse_csr_mm(self, a, b):
        sp = _scipy()
        (acrow, acol, av, ashape), (bcrow, bcol, bv, bshape) = a, b
        if sp is None:
            rows, cols, values = _pairs_product(self, (_rows(acrow), acol, av, ashape),
                                                (_rows(bcrow), bcol, bv, bshape))
            return np.searchsorted(rows, np.arange(ashape[0] + 1)), np.stack([rows, cols]), values
        ma, mb = sp.csr_matrix((av, acol, acrow), shape=ashape), sp.csr_matrix((bv, bcol, bcrow), shape=bshape)
        prod = (ma.tocsc() @ mb.tocsc()).tocsr()        # the transposes sort each row, as above
        ones = (sp.csr_matrix((np.ones(av.shape[0], bool), acol, acrow), shape=ashape) @
                sp.csr_matrix((np.ones(bv.shape[0], bool), bcol, bcrow), shape=bshape))
        crow, rows, cols, values = _on_pattern(prod, ones, bshape[1])
        return crow, np.stack([rows, cols]), values

    def sparse_sparse_mm_grads(self, a, b, rows, cols, g, needs):
        (ar, ac, av, _), (br, bc, bv, bshape) = a, b
        p = bshape[1]
        pa, pb = self.sparse_pairs(ac, br)
        gp = g[_positions(rows * p + cols, ar[pa] * p + bc[pb], a[3][0] * p)]
        ga = np.bincount(pa, gp * bv[pb], av.shape[0]).astype(av.dtype, copy=False) if needs[0] else None
        gb = np.bincount(pb, gp * av[pa], bv.shape[0]).astype(bv.dtype, copy=False) if needs[1] else None
        return ga, gb

    def sparse_pairs(self, ac, br):
        start = np.searchsorted(br, ac)
        counts = np.searchsorted(br, ac, side="right") - start
        pa = np.repeat(np.arange(ac.shape[0], dtype=np.int64), counts)
        pb = np.arange(pa.shape[0], dtype=np.int64) + np.repeat(start - (np.cumsum(counts) - counts), counts)
        return pa, pb


def _rows(crow):
    """int64 (nnz,): the row of each entry of a CSR matrix with row pointers ``crow``."""
    return np.repeat(np.arange(crow.shape[0] - 1, dtype=np.int64), np.diff(crow))


def _on_pattern(prod, ones, p):
    """int64 ``(crow, rows, cols)`` and the values of the product ``prod`` (CSR, sorted rows) on
    the symbolic pattern ``ones`` (the product of the two patterns: scipy drops the positions whose
    terms cancel to exact zero, torch keeps them)."""
    rows, cols = _entries(prod)
    if ones.nnz == prod.nnz:         # nothing cancelled
        return prod.indptr.astype(np.int64), rows, cols, prod.data
    ones = _sorted(ones)
    pattern_rows, pattern_cols = _entries(ones)
    values = np.zeros(pattern_cols.shape[0], prod.dtype)
    values[np.searchsorted(pattern_rows * p + pattern_cols, rows * p + cols)] = prod.data
    return ones.indptr.astype(np.int64), pattern_rows, pattern_cols, values


def _positions(keys, wanted, size):
    """The positions in the sorted distinct ``keys`` (< ``size``) of the ``wanted`` keys, all present:
    through a table of every key where it is small (1.6 vs 8.6 ms for 200k keys among 200k)."""
    if size > _TABLE_MAX:
        return np.searchsorted(keys, wanted)
    table = np.empty(size, np.int32)
    table[keys] = np.arange(keys.shape[0], dtype=np.int32)
    return table[wanted]


def _sorted(m):
    """The CSR matrix ``m`` with each row's columns sorted: two counting-sort transposes, 4-5x
    faster than scipy's ``sort_indices`` (a comparison sort of each row) on a product's rows."""
    return m.tocsc().tocsr()


def _entries(m):
    """int64 (rows, cols) of the CSR matrix ``m``'s entries, in its order."""
    return np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)), m.indices.astype(np.int64)


def _pairs_product(engine, a, b):
    """``sparse_sparse_mm`` through numpy alone: every pair of entries that meets, summed by position."""
    (ar, ac, av, _), (br, bc, bv, bshape) = a, b
    order = np.argsort(br, kind="stable")
    br, bc, bv = br[order], bc[order], bv[order]
    pa, pb = engine.sparse_pairs(ac, br)
    p = max(bshape[1], 1)
    keys, inverse = np.unique(ar[pa] * p + bc[pb], return_inverse=True)
    values = np.zeros(keys.shape[0], av.dtype)
    np.add.at(values, inverse.reshape(-1), av[pa] * bv[pb])
    return (keys // p).astype(np.int64), (keys % p).astype(np.int64), values
