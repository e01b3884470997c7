"""The engine primitives of ``gt.linalg`` (torch.linalg): the factorizations and solves that
numpy and torch compute with LAPACK (declared here, inherited by ``Engine``; gt/backend/engine.py's
conventions hold; the QR decomposition is ``qr`` in gt/backend/engine_math.py). The numpy engine
calls ``np.linalg`` (gt/backend/numpy_linalg.py; the LU factorization, triangular solve and
matrix exponential, which np.linalg lacks, in gt/backend/numpy_factor.py), the torch engine
``torch.linalg`` (gt/backend/torch_linalg.py).

Every primitive takes float32 or float64 arrays whose last two axes are the matrices (any leading
batch axes) and returns arrays in that dtype. Where LAPACK fails (a singular matrix for ``inv``
and ``solve``, a matrix that is not positive-definite for ``cholesky``, no convergence) the engine
raises ``LinAlgError`` (a RuntimeError, as torch.linalg.LinAlgError) with a message that says so.
"""

import abc


class LinAlgError(RuntimeError):
    """A linear algebra routine failed on its input (a singular matrix, a matrix that is not
    positive-definite, no convergence): torch.linalg.LinAlgError's twin."""


class LinalgPrimitives(abc.ABC):
    @abc.abstractmethod
    def det(self, x):
        """The determinants of the square matrices ``x`` (..., n, n): shape (...)."""
        raise NotImplementedError

    @abc.abstractmethod
    def slogdet(self, x):
        """``(sign, logabsdet)`` of the square matrices ``x`` (..., n, n), both of shape (...):
        sign 0 and logabsdet -inf for a singular matrix."""
        raise NotImplementedError

    @abc.abstractmethod
    def inv(self, x):
        """The inverses of the square matrices ``x`` (..., n, n); LinAlgError saying "singular"
        where one has no inverse."""
        raise NotImplementedError

    @abc.abstractmethod
    def solve(self, a, b):
        """X with ``a @ X = b`` for ``a`` (..., n, n) and ``b`` (..., n, k) of the same batch shape;
        LinAlgError saying "singular" where an ``a`` has no inverse."""
        raise NotImplementedError

    @abc.abstractmethod
    def cholesky(self, x):
        """The lower-triangular L with ``L @ L.T = x`` for the symmetric positive-definite ``x``
        (..., n, n), read from its lower triangle; LinAlgError saying "not positive-definite"
        otherwise."""
        raise NotImplementedError

    @abc.abstractmethod
    def eigh(self, x, lower):
        """``(eigenvalues (..., n) ascending, eigenvectors (..., n, n) as columns)`` of the
        symmetric ``x`` (..., n, n), read from its lower triangle (``lower``) or its upper one."""
        raise NotImplementedError

    @abc.abstractmethod
    def svd(self, x, full_matrices, compute_uv):
        """The singular value decomposition of ``x`` (..., m, n), k = min(m, n): ``(u, s, vh)``
        with u (..., m, k) (m, m if ``full_matrices``), s (..., k) descending, vh (..., k, n)
        (n, n if ``full_matrices``); only ``s`` when not ``compute_uv``."""
        raise NotImplementedError

    # LU, triangular solves, the matrix exponential (gt/linalg.py's lu_factor, solve_triangular...)
    @abc.abstractmethod
    def lu_factor(self, x):
        """The LU factorization with partial pivoting of ``x`` (..., m, n), k = min(m, n), as LAPACK's
        getrf: ``(lu (..., m, n), pivots (..., k) int32 1-based, info (...) int32)``, L below the
        diagonal of ``lu`` (unit diagonal not stored), U on and above it; row i was swapped with row
        ``pivots[i] - 1``; info is 0, or i + 1 where U[i, i] is the first exact zero. Never raises."""
        raise NotImplementedError

    @abc.abstractmethod
    def solve_triangular(self, a, b, upper, unitriangular):
        """X with ``a @ X = b`` for the triangular ``a`` (..., n, n) (only its ``upper`` or lower
        triangle is read, and not its diagonal when ``unitriangular``: ones) and ``b`` (..., n, k)
        of the same batch shape. A zero on the diagonal gives inf/NaN (LAPACK's trsm), no error."""
        raise NotImplementedError

    @abc.abstractmethod
    def matrix_exp(self, x):
        """The matrix exponential of the square matrices ``x`` (..., n, n)."""
        raise NotImplementedError

    @abc.abstractmethod
    def cholesky_ex(self, x):
        """``(L, info)``: ``cholesky`` without the error: info (...) int32 is 0, or i + 1 where the
        leading minor of order i + 1 is not positive-definite (L is then unspecified there)."""
        raise NotImplementedError

    @abc.abstractmethod
    def geqrf(self, x):
        """LAPACK's geqrf of ``x`` (..., m, n) (float or complex), k = min(m, n): ``(a, tau)``, R on and
        above the diagonal of a (..., m, n), the Householder vectors below it (their unit first entry
        not stored), tau (..., k) their scales, ``H_i = I - tau_i v_i v_i^H`` and ``x = H_1 ... H_k R``."""
        raise NotImplementedError
