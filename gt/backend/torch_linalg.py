"""The torch engine's ``gt.linalg`` primitives (gt/backend/engine_linalg.py): ``torch.linalg``,
with its errors turned into gt's ``LinAlgError``."""

import torch

from gt.backend.engine_linalg import LinAlgError


def _singular(name, fn, *args):
    try:
        return fn(*args)
    except torch.linalg.LinAlgError as e:
        raise LinAlgError(f"linalg.{name}: the input matrix is singular, it has no inverse ({e})") from None


class TorchLinalg:
    def det(self, x):
        return torch.linalg.det(x)

    def slogdet(self, x):
        return tuple(torch.linalg.slogdet(x))

    def inv(self, x):
        return _singular("inv", torch.linalg.inv, x)

    def solve(self, a, b):
        return _singular("solve", torch.linalg.solve, a, b)

    def cholesky(self, x):
        try:
            return torch.linalg.cholesky(x)
        except torch.linalg.LinAlgError:
            raise LinAlgError("linalg.cholesky: the factorization could not be completed because the input "
                              "is not positive-definite") from None

    def eigh(self, x, lower):
        return tuple(torch.linalg.eigh(x, UPLO="L" if lower else "U"))

    def svd(self, x, full_matrices, compute_uv):
        if not compute_uv:
            return torch.linalg.svdvals(x)
        return tuple(torch.linalg.svd(x, full_matrices=full_matrices))

    def lu_factor(self, x):
        return tuple(torch.linalg.lu_factor_ex(x))

    def solve_triangular(self, a, b, upper, unitriangular):
        return torch.linalg.solve_triangular(a, b, upper=upper, unitriangular=unitriangular)

    def matrix_exp(self, x):
        return torch.linalg.matrix_exp(x)

    def cholesky_ex(self, x):
        return tuple(torch.linalg.cholesky_ex(x))

    def geqrf(self, x):
        return tuple(torch.geqrf(x))
