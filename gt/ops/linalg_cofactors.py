"""The matrix of cofactors as a differentiable op: det's gradient at singular matrices.

``det``'s gradient is ``g cof(A)`` (``cof(A) = det(A) inv(A)^T`` where A is invertible). Through
``inv`` its second derivative fails at an exactly singular A; ``Cofactors`` computes cof(A) and
its derivative through the SVD without any division, so both hold at every A, singular ones
(rank n-1 and below) included.
"""

from gt.autograd import Function
from gt import dtypes
from gt.backend import B


def _t(x):
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return B.transpose(x, axes)


def _eye(n, dtype):
    index = B.arange(0, n, 1, dtypes.int64)
    return B.astype(B.reshape(index, (n, 1)) == B.reshape(index, (1, n)), dtype)


def _products(s):
    """``(one, two)`` from singular values ``s`` (..., n): ``one[i]`` the product of all but s_i,
    ``two[i, j]`` of all but s_i and s_j (0 on the diagonal); products from both ends, no
    quotients, so zeros among ``s`` are exact."""
    n = s.shape[-1]
    eye = _eye(n, B.dtype_of(s))
    rows = B.where(eye > 0, 1.0, s[..., None, :])       # row i: s with s_i set to 1
    two = _others(rows) * (1 - eye)
    return _others(s), two


def _others(x):
    """Along the last axis of ``x``, the product of all the other elements (from both ends)."""
    ones = B.ones(tuple(x.shape[:-1]) + (1,), B.dtype_of(x))
    rev = (Ellipsis, slice(None, None, -1))
    before = B.cumprod(B.concatenate([ones, x[..., :-1]], -1), -1)
    after = B.getitem(B.cumprod(B.getitem(B.concatenate([x[..., 1:], ones], -1), rev), -1), rev)
    return before * after


def cofactors(a):
    """The cofactors of ``a`` through A = U diag(s) Vh: ``det(U) det(Vh) U diag(one) Vh`` (torch's
    singular branch of det's backward)."""
    u, s, vh = B.svd(a, False, True)
    sign = B.conj(B.det(u) * B.det(vh))
    return B.reshape(sign, tuple(sign.shape) + (1, 1)) * B.matmul(u * _products(s)[0][..., None, :], vh)


class Cofactors(Function):
    """``cof(A)`` of real square matrices (..., n, n). Its gradient: with A = U S Vh and
    ``H = det(U) det(Vh) Vh G^T U``, ``U (diag(P h) - H * P) Vh`` where ``h = diag(H)`` and
    ``P[i, j]`` the product of the singular values but s_i and s_j: the derivative of adj(S) along
    F is ``diag(P diag(F)) - F * P`` (adj is multiplicative and U, Vh orthogonal), so no division
    (torch differentiates its SVD there, NaN where two singular values are 0)."""

    def forward(self, a):
        self.save(a)
        return cofactors(a)

    def backward(self, g):
        u, s, vh = B.svd(self.saved[0], False, True)
        sign = B.det(u) * B.det(vh)
        h = B.reshape(sign, tuple(sign.shape) + (1, 1)) * B.matmul(B.matmul(vh, _t(g)), u)
        two = _products(s)[1]
        diagonal = B.matmul(two, B.diagonal_view(h, 0, -2, -1)[..., None])[..., 0]
        inner = -h * two + _eye(s.shape[-1], B.dtype_of(s)) * diagonal[..., None, :]
        return (B.matmul(B.matmul(u, inner), vh),)
