"""The numpy engine's LU factorization, triangular solve, Cholesky with an info result and matrix
exponential (gt/backend/engine_linalg.py), in numpy alone: np.linalg has none of them. Each loops
in Python over the columns (or rows) of the matrices, never over their elements or the batch:
every step is one vectorised update of all the matrices at once."""

import numpy as np


def lu_factor(x):
    """LAPACK getrf's ``(lu, pivots, info)`` by Gaussian elimination with partial pivoting (the
    first largest |entry| of each column is the pivot, as LAPACK's idamax; for complex entries
    |Re| + |Im|, as its izamax)."""
    a = np.array(x, copy=True)
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    pivots = np.empty(batch + (k,), np.int32)
    info = np.zeros(batch, np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j in range(k):
            column = a[..., j:, j]
            size = np.abs(column.real) + np.abs(column.imag) if a.dtype.kind == "c" else np.abs(column)
            p = j + np.argmax(size, axis=-1)
            pivots[..., j] = p + 1
            rows = np.broadcast_to(p[..., None, None], batch + (1, n))
            row_p = np.take_along_axis(a, rows, axis=-2)
            row_j = a[..., j:j + 1, :].copy()
            np.put_along_axis(a, rows, row_j, axis=-2)
            a[..., j:j + 1, :] = row_p
            pivot = a[..., j, j]
            zero = pivot == 0
            info = np.where((info == 0) & zero, j + 1, info).astype(np.int32)
            # a zero pivot has a zero column below it (it is the largest): nothing to eliminate
            low = np.where(zero[..., None], 0, a[..., j + 1:, j] / np.where(zero, 1, pivot)[..., None])
            a[..., j + 1:, j] = low
            a[..., j + 1:, j + 1:] -= low[..., :, None] * a[..., j:j + 1, j + 1:]
    return a, pivots, info


def solve_triangular(a, b, upper, unitriangular):
    """Forward (lower) or back (upper) substitution, one row of X at a time for all columns."""
    n = a.shape[-1]
    x = np.empty(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + tuple(b.shape[-2:]),
                 np.result_type(a.dtype, b.dtype))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i in (range(n - 1, -1, -1) if upper else range(n)):
            done = slice(i + 1, n) if upper else slice(0, i)
            row = b[..., i, :] - (a[..., i:i + 1, done] @ x[..., done, :])[..., 0, :]
            x[..., i, :] = row if unitriangular else row / a[..., i, i, None]
    return x


def cholesky_ex(x):
    """``(L, info)``: np.linalg.cholesky where every matrix is positive-definite; otherwise the
    column-by-column factorization, whose first non-positive pivot gives each matrix's info."""
    try:
        return np.linalg.cholesky(x), np.zeros(x.shape[:-2], np.int32)
    except np.linalg.LinAlgError:
        pass
    n = x.shape[-1]
    low = np.zeros_like(x)
    info = np.zeros(x.shape[:-2], np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j in range(n):
            d = x[..., j, j].real - np.sum(np.abs(low[..., j, :j]) ** 2, axis=-1)     # L L^H for complex x
            bad = ~(d > 0)
            info = np.where((info == 0) & bad, j + 1, info).astype(np.int32)
            root = np.sqrt(np.where(bad, 1, d))
            low[..., j, j] = root
            done = (low[..., j + 1:, :j] @ low[..., j, :j, None].conj())[..., 0]
            low[..., j + 1:, j] = (x[..., j + 1:, j] - done) / \
                root[..., None]
    good = info == 0
    if np.any(good):
        low[good] = np.linalg.cholesky(x[good])
    return low, info


# Higham (2005), "The scaling and squaring method for the matrix exponential revisited": the
# degree-13 Pade approximant and the 1-norm bound under which it needs no scaling
_PADE13 = (64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800., 129060195264000.,
           10559470521600., 670442572800., 33522128640., 1323241920., 40840800., 960960., 16380., 182., 1.)
_THETA13 = 5.371920351148152


def matrix_exp(x):
    """exp(x) by scaling and squaring with the degree-13 Pade approximant, in float64 (rounded once
    to float32 for float32 input; complex in complex128); each matrix is scaled by its own power of two."""
    a = np.asarray(x, np.complex128 if x.dtype.kind == "c" else np.float64)
    n = a.shape[-1]
    if a.size == 0:
        return np.array(x, copy=True)
    norm = np.abs(a).sum(axis=-2).max(axis=-1)
    with np.errstate(divide="ignore"):
        s = np.maximum(0, np.ceil(np.log2(norm / _THETA13))).astype(np.int64)
    s = np.where(np.isfinite(norm), s, 0)
    a = a / (2.0 ** s)[..., None, None]
    b = _PADE13
    eye = np.eye(n)
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2 + b[1] * eye)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + b[0] * eye
    r = np.linalg.solve(v - u, v + u)
    for step in range(int(s.max(initial=0))):
        r = np.where((step < s)[..., None, None], r @ r, r)
    return r.astype(x.dtype, copy=False)
