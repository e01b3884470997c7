"""torch's randomized low-rank decompositions: ``gt.svd_lowrank`` and ``gt.pca_lowrank``.

The algorithm is torch's, step for step (Halko, Martinsson and Tropp 2009, algorithms 4.4 and
5.1): a Gaussian sketch ``R`` of the row space, ``niter`` rounds of subspace iteration with QR
re-orthonormalisation, then the SVD of the small projected matrix. Everything is gt's
differentiable ``linalg.qr``/``linalg.svd``/matmul, so gradients flow as through torch's. The
sketch comes from gt's generator, not torch's, so bases agree with torch's only as subspaces;
where ``q`` reaches the rank of ``A`` the results are exact (``U @ diag(S) @ V.mT == A``).
"""

from gt import dtypes
from gt.tensor.core import Tensor
from gt.tensor.creation import randn
from gt.tensor.linalg_methods import qr, svd

__all__ = ["svd_lowrank", "pca_lowrank"]


def _matrix(A, fn):
    if not isinstance(A, Tensor):
        raise TypeError(f"{fn}(): argument 'A' must be Tensor, not {type(A).__name__}")
    if A.ndim < 2:
        raise ValueError(f"{fn}: A must be a matrix or a batch of matrices (*, m, n), got shape {list(A.shape)}")
    return A if A.dtype.is_floating_point or A.dtype.is_complex else A.to(dtypes.default_float)


def _count(value, fn, name, default):
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{fn}: {name}(={value!r}) must be non-negative integer")
    return value


def _approximate_basis(A, q, niter, M):
    """An orthonormal (*, m, q) basis of the range of ``A - M`` (torch's ``get_approximate_basis``)."""
    R = randn(A.shape[-1], q, dtype=A.dtype)
    X = A @ R if M is None else A @ R - M @ R
    Q = qr(X).Q
    for _ in range(niter):
        X = A.mH @ Q if M is None else A.mH @ Q - M.mH @ Q
        Q = qr(X).Q
        X = A @ Q if M is None else A @ Q - M @ Q
        Q = qr(X).Q
    return Q


def _svd_lowrank(A, q, niter, M):
    m, n = A.shape[-2:]
    if M is not None:
        M = M.broadcast_to(A.shape)
    if m < n:                       # the algorithm assumes a tall A
        A = A.mH
        M = None if M is None else M.mH
    Q = _approximate_basis(A, q, niter, M)
    Bm = Q.mH @ A if M is None else Q.mH @ A - Q.mH @ M
    U, S, Vh = svd(Bm, full_matrices=False)
    U, V = Q @ U, Vh.mH
    return (V, S, U) if m < n else (U, S, V)


def svd_lowrank(A, q=6, niter=2, M=None):
    """``(U, S, V)``, an approximate rank-``q`` SVD of ``A - M`` (A (*, m, n); ``M`` broadcast to
    it, None for zero): U (*, m, q), S (*, q) descending, V (*, n, q), ``A - M ~ U diag(S) V^T``
    (torch's ``torch.svd_lowrank``; q is capped by min(m, n) as there). ``niter`` subspace
    iterations sharpen it (default 2). Random: ``gt.manual_seed`` makes it reproducible."""
    A = _matrix(A, "svd_lowrank")
    q, niter = _count(q, "svd_lowrank", "q", 6), _count(niter, "svd_lowrank", "niter", 2)
    if M is not None and not isinstance(M, Tensor):
        raise TypeError(f"svd_lowrank(): argument 'M' must be Tensor or None, not {type(M).__name__}")
    return _svd_lowrank(A, q, niter, None if M is None else M.to(A.dtype))


def pca_lowrank(A, q=None, center=True, niter=2):
    """``(U, S, V)``, the principal components of the rows of ``A`` (*, m, n): ``svd_lowrank`` of
    ``A`` with its column means subtracted (``center=True``); ``q`` defaults to min(6, m, n) and
    may not exceed min(m, n). ``V[..., :k]`` are the first k principal directions and
    ``S ** 2 / (m - 1)`` their variances (torch's ``torch.pca_lowrank``)."""
    A = _matrix(A, "pca_lowrank")
    m, n = A.shape[-2:]
    if q is None:
        q = min(6, m, n)
    elif isinstance(q, bool) or not isinstance(q, int) or not 0 <= q <= min(m, n):
        raise ValueError(f"q(={q!r}) must be non-negative integer and not greater than min(m, n)={min(m, n)}")
    niter = _count(niter, "pca_lowrank", "niter", 2)
    if not isinstance(center, bool):
        raise TypeError(f"pca_lowrank: center must be True or False, got {center!r}")
    if center:
        A = A - A.mean(dim=-2, keepdim=True)
    return _svd_lowrank(A, q, niter, None)
