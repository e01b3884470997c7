"""The numpy engine's ``gt.linalg`` primitives (gt/backend/engine_linalg.py): ``np.linalg``, with
its errors turned into ``LinAlgError`` messages that say what failed and results in the input's
dtype."""

import numpy as np

from gt.backend import numpy_factor
from gt.backend.engine_linalg import LinAlgError


def _same(x, *results):
    """``results`` in ``x``'s precision: complex ones (or all, for a real ``x``) in its dtype, real
    ones of a complex ``x`` (singular values, eigenvalues of eigh) in the dtype of its parts."""
    real = x.real.dtype if x.dtype.kind == "c" else x.dtype
    out = tuple(r.astype(x.dtype if r.dtype.kind == "c" else real, copy=False) for r in results)
    return out if len(out) > 1 else out[0]


def _singular(name, fn, *args):
    try:
        return fn(*args)
    except np.linalg.LinAlgError as e:
        raise LinAlgError(f"linalg.{name}: the input matrix is singular, it has no inverse ({e})") from None


class NumpyLinalg:
    def det(self, x):
        return _same(x, np.asarray(np.linalg.det(x)))

    def slogdet(self, x):
        sign, logabsdet = np.linalg.slogdet(x)
        return _same(x, np.asarray(sign), np.asarray(logabsdet))

    def inv(self, x):
        return _same(x, _singular("inv", np.linalg.inv, x))

    def solve(self, a, b):
        return _same(a, _singular("solve", np.linalg.solve, a, b))

    def cholesky(self, x):
        try:
            return _same(x, np.linalg.cholesky(x))
        except np.linalg.LinAlgError:
            raise LinAlgError("linalg.cholesky: the factorization could not be completed because the input "
                              "is not positive-definite") from None

    def eigh(self, x, lower):
        w, v = np.linalg.eigh(x, UPLO="L" if lower else "U")
        return _same(x, w, v)

    def svd(self, x, full_matrices, compute_uv):
        if not compute_uv:
            return _same(x, np.linalg.svd(x, compute_uv=False))
        u, s, vh = np.linalg.svd(x, full_matrices=full_matrices)
        return _same(x, u, s, vh)

    def lu_factor(self, x):
        return numpy_factor.lu_factor(x)

    def solve_triangular(self, a, b, upper, unitriangular):
        return numpy_factor.solve_triangular(a, b, upper, unitriangular)

    def matrix_exp(self, x):
        return numpy_factor.matrix_exp(x)

    def cholesky_ex(self, x):
        return numpy_factor.cholesky_ex(x)

    def geqrf(self, x):
        # numpy's 'raw' mode is LAPACK's geqrf output in Fortran order: the reflectors transposed
        h, tau = np.linalg.qr(x, mode="raw")
        return _same(x, np.ascontiguousarray(np.swapaxes(h, -1, -2)), tau)
