"""The sparse products of the torch engine (mixed into ``TorchEngine``; the interface is
gt/backend/engine_sparse.py): torch's CSR kernels where the entries come sorted by row (a CSR
tensor's, a coalesced COO tensor's), its COO ones otherwise (torch sorts them itself); the
sampled product is ``torch.sparse.sampled_addmm``; the gradients of a sparse @ sparse product's
values walk the pairs of entries that meet. Measured (n = 2000, 0.5% dense, 64 columns,
float64, one thread): CSR @ dense 0.7 ms, COO @ dense 1.0 ms, the sampled product 0.9 ms (a
gather of both operands' rows: 20 ms), CSR @ CSR 5.6 ms of CPU (torch's kernel 1.3 ms, its unsorted
rows sorted after)."""

import contextlib
import warnings

import torch


_TABLE_MAX = 1 << 22     # the most positions (n * p) a lookup table of a product's entries covers: 32 MB


@contextlib.contextmanager
def _quiet():
    """torch warns once that its CSR layout is in beta, and that sparse invariant checks are off:
    neither concerns a gt user."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _sorted(rows):
    return rows.shape[0] < 2 or bool((rows[1:] >= rows[:-1]).all())


class TorchSparse:
    def sparse_dense_mm(self, rows, cols, values, shape, dense, transpose):
        if transpose:
            rows, cols, shape = cols, rows, shape[::-1]
        with _quiet():
            if _sorted(rows):
                crow = torch._convert_indices_from_coo_to_csr(rows, shape[0])
                s = torch.sparse_csr_tensor(crow, cols, values, tuple(shape), check_invariants=False)
                return s @ dense
            s = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, tuple(shape), check_invariants=False)
            return torch.sparse.mm(s, dense)

    def sampled_dense_dense(self, rows, cols, a, b):
        order = None
        if not _sorted(rows):
            order = torch.argsort(rows, stable=True)
            rows, cols = rows[order], cols[order]
        with _quiet():
            crow = torch._convert_indices_from_coo_to_csr(rows, a.shape[0])
            zeros = torch.zeros(rows.shape[0], dtype=a.dtype, device=a.device)
            s = torch.sparse_csr_tensor(crow, cols, zeros, (a.shape[0], b.shape[0]), check_invariants=False)
            out = torch.sparse.sampled_addmm(s, a, b.t(), beta=0.0).values()
        if order is None:
            return out
        return torch.empty_like(out).index_copy_(0, order, out)

    def sparse_sparse_mm(self, a, b):
        (ar, ac, av, ashape), (br, bc, bv, bshape) = a, b
        with _quiet():
            # COO entries may repeat and come in any order: torch's COO kernel takes them (coalesced, 5 ms at
            # n = 2000, 0.5%); CSR operands take sparse_csr_mm (its kernel, then a sort of each row's columns)
            sa = torch.sparse_coo_tensor(torch.stack([ar, ac]), av, tuple(ashape), check_invariants=False)
            sb = torch.sparse_coo_tensor(torch.stack([br, bc]), bv, tuple(bshape), check_invariants=False)
            out = torch.sparse.mm(sa.coalesce(), sb.coalesce()).coalesce()
        idx = out.indices()
        return idx[0], idx[1], out.values()

    def sparse_csr_mm(self, a, b):
        (acrow, acol, av, ashape), (bcrow, bcol, bv, bshape) = a, b
        n, p = ashape[0], bshape[1]
        with _quiet():
            sa = torch.sparse_csr_tensor(acrow, acol, av, tuple(ashape), check_invariants=False)
            sb = torch.sparse_csr_tensor(bcrow, bcol, bv, tuple(bshape), check_invariants=False)
            out = sa @ sb          # symbolic pattern, each row's columns in the order first met
        crow, col, values = out.crow_indices(), out.col_indices(), out.values()
        # int32 keys sort twice as fast (2.2 against 4.9 ms for 200k) where every position fits (5.4
        # against 7 ms of CPU for the whole product at n = 2000, 0.5% dense)
        small = torch.int32 if n * p < 2 ** 31 else torch.int64
        rows = torch.repeat_interleave(torch.arange(n, dtype=small, device=crow.device), crow.diff().to(small),
                                       output_size=col.shape[0])
        keys, order = torch.sort(rows * p + col.to(small), stable=True)
        idx = torch.empty((2, col.shape[0]), dtype=torch.int64, device=col.device)
        idx[0] = rows
        torch.sub(keys, rows * p, out=idx[1])
        return crow.long(), idx, values[order]

    def sparse_pairs(self, ac, br):
        start = torch.searchsorted(br, ac)
        counts = torch.searchsorted(br, ac, right=True) - start
        pa = torch.repeat_interleave(torch.arange(ac.shape[0], device=ac.device), counts)
        pb = torch.arange(pa.shape[0], device=pa.device) + torch.repeat_interleave(start - (counts.cumsum(0) - counts),
                                                                                   counts)
        return pa, pb

    def sparse_sparse_mm_grads(self, a, b, rows, cols, g, needs):
        (ar, ac, av, _), (br, bc, bv, bshape) = a, b
        p = bshape[1]
        pa, pb = self.sparse_pairs(ac, br)
        keys, wanted = rows * p + cols, ar[pa] * p + bc[pb]
        if a[3][0] * p <= _TABLE_MAX:          # a table of every key: 4x faster than the search
            table = torch.empty(a[3][0] * p, dtype=torch.int64, device=keys.device)
            table[keys] = torch.arange(keys.shape[0], device=keys.device)
            gp = g[table[wanted]]
        else:
            gp = g[torch.searchsorted(keys, wanted)]
        ga = torch.zeros_like(av).index_add_(0, pa, gp * bv[pb]) if needs[0] else None
        gb = torch.zeros_like(bv).index_add_(0, pb, gp * av[pa]) if needs[1] else None
        return ga, gb
