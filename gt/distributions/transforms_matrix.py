"""Transforms onto matrices (torch.distributions.transforms): CorrCholeskyTransform (real vectors of
length D(D-1)/2 onto Cholesky factors of D x D correlation matrices) and PositiveDefiniteTransform
(square matrices onto positive-definite ones), with torch.distributions.utils' ``tril_matrix_to_vec``
and ``vec_to_tril_matrix`` (the lower triangle, row by row)."""

import math

from gt.tensor.construct_functions import tril_indices
from gt.tensor.creation import arange, ones, zeros
from gt.tensor.functions import cat
from gt.tensor.linalg_base import eye_like
from gt.tensor.linalg_methods import cholesky
from gt.tensor.runtime import finfo
from gt.distributions import constraints
from gt.distributions.transforms import ParameterFree, Transform, _softplus
from gt.distributions.transforms_more import LowerCholeskyTransform

__all__ = ["CorrCholeskyTransform", "PositiveDefiniteTransform", "tril_matrix_to_vec", "vec_to_tril_matrix"]


def tril_matrix_to_vec(mat, diag=0):
    """The elements of ``mat`` ``(..., D, D)`` on and below its ``diag``-th diagonal, row by row."""
    n = mat.shape[-1]
    if diag < -n or diag >= n:
        raise ValueError(f"diag ({diag}) provided is outside [{-n}, {n - 1}].")
    rows, cols = tril_indices(n, n, diag)
    return mat[..., rows, cols]


def vec_to_tril_matrix(vec, diag=0):
    """The ``(..., D, D)`` matrix whose lower triangle (on and below the ``diag``-th diagonal), read
    row by row, is ``vec`` ``(..., N)``; zeros elsewhere."""
    # the positive root of D**2 + (1 + 2 diag) D - |diag| (diag + 1) - 2 N = 0
    n = (-(1 + 2 * diag) + ((1 + 2 * diag) ** 2 + 8 * vec.shape[-1] + 4 * abs(diag) * (diag + 1)) ** 0.5) / 2
    if abs(round(n) - n) > finfo(vec.dtype).eps:  # torch checks one side, then fails in its index write
        raise ValueError(f"The size of last dimension is {vec.shape[-1]} which cannot be expressed as the lower "
                         "triangular part of a square D x D matrix.")
    n = round(n)
    rows, cols = tril_indices(n, n, diag)
    # a gather from [0, vec...]: every place off the triangle reads the leading zero, so the
    # gradient reaches vec by the gather's own backward
    where_from = zeros(n * n, dtype=rows.dtype)
    where_from[rows * n + cols] = arange(1, rows.shape[0] + 1, dtype=rows.dtype)
    padded = cat([vec.new_zeros(tuple(vec.shape[:-1]) + (1,)), vec], dim=-1)
    return padded[..., where_from].reshape(tuple(vec.shape[:-1]) + (n, n))


def _pad_one_before(x):
    return cat([ones(tuple(x.shape[:-1]) + (1,), dtype=x.dtype), x], dim=-1)


class CorrCholeskyTransform(Transform):
    """Real vectors of length D(D-1)/2 onto lower Cholesky factors of D x D correlation matrices
    (rows of unit length, positive diagonal): each row of the strict lower triangle, filled row by
    row, goes through tanh and a signed stick breaking. Bijective."""

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky
    bijective = True

    def _call(self, x):
        eps = finfo(x.dtype).eps
        r = vec_to_tril_matrix(x.tanh().clamp(min=-1 + eps, max=1 - eps), diag=-1)
        # y = sign(r) sqrt(z (1 - z) cumprod) = r sqrt((1 - z) cumprod), z = r**2, shifted one column
        z1m_cumprod_sqrt = (1 - r.pow(2)).sqrt().cumprod(-1)
        return (r + eye_like(r, r.shape[-1])) * _pad_one_before(z1m_cumprod_sqrt[..., :-1])

    def _inverse(self, y):
        y_cumsum = 1 - (y * y).cumsum(-1)
        y_cumsum_shifted = _pad_one_before(y_cumsum[..., :-1])
        t = tril_matrix_to_vec(y, diag=-1) / tril_matrix_to_vec(y_cumsum_shifted, diag=-1).sqrt()
        return (t.log1p() - (-t).log1p()) / 2  # atanh

    def log_abs_det_jacobian(self, x, y):
        """log |det J| of ``x`` onto the strict lower triangle of ``y`` (the diagonal follows from it)."""
        y1m_cumsum = 1 - (y * y).cumsum(-1)
        # diag=-2 reads the cumulative sums one column before each element, without a shift
        stick_breaking_logdet = 0.5 * tril_matrix_to_vec(y1m_cumsum, diag=-2).log().sum(-1)
        tanh_logdet = -2 * (x + _softplus(-2 * x) - math.log(2.0)).sum(-1)
        return stick_breaking_logdet + tanh_logdet

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        n = shape[-1]
        d = round((0.25 + 2 * n) ** 0.5 + 0.5)
        if d * (d - 1) // 2 != n:
            raise ValueError("Input is not a flattened lower-diagonal number")
        return tuple(shape[:-1]) + (d, d)

    def inverse_shape(self, shape):
        if len(shape) < 2:
            raise ValueError("Too few dimensions on input")
        if shape[-2] != shape[-1]:
            raise ValueError("Input is not square")
        d = shape[-1]
        return tuple(shape[:-2]) + (d * (d - 1) // 2,)


class PositiveDefiniteTransform(ParameterFree):
    """Square matrices onto positive-definite ones: L L^T of their LowerCholeskyTransform (not
    bijective: the upper triangle is dropped; no log |det J|, as torch's)."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.positive_definite

    def _call(self, x):
        L = LowerCholeskyTransform()(x)
        return L @ L.mT

    def _inverse(self, y):
        return LowerCholeskyTransform().inv(cholesky(y))
