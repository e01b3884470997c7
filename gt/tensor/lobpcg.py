"""torch's ``lobpcg``: a few extreme eigenpairs of a symmetric (generalized) eigenproblem
``A x = lambda B x`` by the locally optimal block preconditioned conjugate gradient method.

The iteration is Knyazev's LOBPCG with the robust basis of torch's default ``method="ortho"``:
each step's search space ``[X, W, P]`` (W the preconditioned residuals, P the previous step's
direction) is B-orthonormalised, ``W`` and ``P`` against ``X`` first, by an eigendecomposition
of its Gram matrix that drops the directions it cannot resolve (Duersch's SVQB), so a singular
block never breaks a Cholesky. Rayleigh-Ritz on that space gives the next ``X``. It stops when
the first ``k`` residuals ``|A x - lambda B x| / ((|A| + |lambda| |B|) |x|)`` are under ``tol``
or after ``niter`` steps, as torch's. It runs without recording; the results are then tied to
``A`` by their first-order derivatives, as torch's backward gives them (``B`` None): the
eigenvalues' ``x x^T`` and the eigenvectors' ``-(A - lambda I)^+ (I - x x^T) dA x``, with ``A``
symmetrised first. The start ``X`` is drawn from gt's generator, so eigenvectors agree with
torch's up to sign (and rotation within repeated eigenvalues).
"""

from gt import dtypes
from gt.autograd import is_grad_enabled, no_grad
from gt.tensor.core import Tensor
from gt.tensor.creation import eye, randn
from gt.tensor.functions import cat, stack
from gt.tensor.linalg_methods import eigh, pinv

__all__ = ["lobpcg"]

_FEPS = {"float32": 1.2e-07, "float64": 2.23e-16}


def _orthonormal(V, Bmul, X, drop):
    """A B-orthonormal basis of the part of span(V) B-orthogonal to the B-orthonormal ``X``."""
    for _ in range(2):                       # twice: one pass loses orthogonality to rounding
        if X is not None and V.shape[-1]:
            V = V - X @ (X.mT @ Bmul(V))
        if not V.shape[-1]:
            return V
        G = V.mT @ Bmul(V)
        lam, U = eigh((G + G.mT) * 0.5)
        top = float(lam.abs().max())
        keep = [i for i, v in enumerate(lam.tolist()) if v > drop * top]
        if not keep:
            return V[:, :0]
        V = (V @ U[:, keep]) / lam[keep].sqrt()
    return V


def _ritz(Z, A, n, largest):
    """Rayleigh-Ritz on the B-orthonormal basis ``Z``: the ``n`` extreme Ritz values and the
    coefficients of their vectors (largest first when ``largest``, else smallest first)."""
    H = Z.mT @ A @ Z
    theta, C = eigh((H + H.mT) * 0.5)
    size = theta.shape[0]
    pick = list(range(size - 1, size - 1 - n, -1)) if largest else list(range(n))
    return theta[pick], C[:, pick]


def _solve(A, Bm, X, iK, k, niter, tol, largest):
    """The LOBPCG iteration for one matrix: (E (n,), X (m, n)). ``Bm`` is torch's ``B`` (in gt's
    code ``B.`` names the engine)."""
    n = X.shape[-1]
    Bmul = (lambda V: V) if Bm is None else (lambda V: Bm @ V)
    drop = 10 * A.shape[-1] * _FEPS[A.dtype.name]
    a_norm = float(A.norm())
    b_norm = 1.0 if Bm is None else float(Bm.norm())
    X = _orthonormal(X, Bmul, None, drop)
    if X.shape[-1] < n:
        raise RuntimeError(f"lobpcg: the initial X has rank {X.shape[-1]} < n={n}; give X full column rank")
    E, C = _ritz(X, A, n, largest)
    X, P, step = X @ C, None, 0
    while niter < 0 or step < niter:
        R = A @ X - Bmul(X) * E
        rerr = R.norm(dim=0) / ((a_norm + E.abs() * b_norm) * X.norm(dim=0))
        if bool((rerr[:k] < tol).all()):
            break
        W = R if iK is None else iK @ R
        Q = _orthonormal(W if P is None else cat([W, P], 1), Bmul, X, drop)
        if not Q.shape[-1]:
            break
        E, C = _ritz(cat([X, Q], 1), A, n, largest)
        X, P, step = X @ C[:n] + Q @ C[n:], Q @ C[n:], step + 1
    return E, X


def _tied(A, E, X):
    """``(E, X)`` with the first-order derivatives of exact eigenpairs with respect to ``A``."""
    As = (A + A.mT) * 0.5
    Ad = As.detach()
    values = (X * (As @ X)).sum(dim=-2)            # x^T A x = lambda, with dlambda = x^T dA x
    change = (As - Ad) @ X                          # zero in value: carries dA x
    shift = eye(A.shape[-1], dtype=A.dtype)
    scale = float(Ad.abs().max()) or 1.0
    columns = []
    for i in range(X.shape[-1]):
        x, d = X[..., i:i + 1], change[..., i:i + 1]
        # (A - lambda I)^+ on the complement of x: x's own eigenvalue moved off zero, so the
        # solve stays well conditioned however closely lambda was converged
        lam = E[..., i:i + 1].unsqueeze(-1)
        resolvent = pinv(Ad - lam * shift + scale * (x @ x.mT), hermitian=True)
        y = resolvent @ (d - x @ (x.mT @ d))
        columns.append(x - (y - x @ (x.mT @ y)))
    return values, cat(columns, -1)


def _check(A, B, X, iK, k, n):
    if not isinstance(A, Tensor) or A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"lobpcg: A must be a square matrix or a batch of them (*, m, m), got "
                         f"{list(A.shape) if isinstance(A, Tensor) else type(A).__name__}")
    for name, T in (("B", B), ("iK", iK)):
        if T is not None and (not isinstance(T, Tensor) or tuple(T.shape[-2:]) != tuple(A.shape[-2:])):
            raise ValueError(f"lobpcg: {name} must be a tensor of A's shape {list(A.shape)}")
    m = A.shape[-1]
    if X is not None and (not isinstance(X, Tensor) or X.ndim < 2 or X.shape[-2] != m):
        raise ValueError(f"lobpcg: X must be a tensor (*, {m}, n), got "
                         f"{list(X.shape) if isinstance(X, Tensor) else type(X).__name__}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise ValueError(f"lobpcg: k must be an int with 1 <= k <= n={n}, got {k!r}")
    if m < 3 * n:
        raise ValueError(f"LOBPCG algorithm is not applicable when the number of A rows (={m}) is smaller than 3 x "
                         f"the number of requested eigenpairs (={n})")


def lobpcg(A, k=None, B=None, X=None, n=None, iK=None, niter=None, tol=None, largest=None, method=None, tracker=None,
           ortho_iparams=None, ortho_fparams=None, ortho_bparams=None):
    """The ``k`` largest (``largest=False``: smallest) eigenvalues ``E`` (*, k) and eigenvectors
    ``X`` (*, m, k) of the symmetric positive definite problem ``A x = lambda B x`` (``B`` None:
    the identity), torch's ``torch.lobpcg`` (module docstring). ``X``: a start (*, m, n); else
    ``n`` (default ``k``) random columns. ``iK``: a preconditioner (*, m, m). ``niter``: at most
    this many steps (default 1000, -1 until convergence); ``tol``: the residual tolerance (default
    sqrt of the dtype's eps). ``method`` "ortho" (default) or "basic" run the same robust
    iteration here; ``tracker`` and the ``ortho_*`` tuning dicts of torch's are not supported.
    Gradients flow to ``A`` (for E and X) when ``B`` is None, as torch's."""
    if tracker is not None or ortho_iparams or ortho_fparams or ortho_bparams:
        raise NotImplementedError("lobpcg: tracker and ortho_iparams/ortho_fparams/ortho_bparams are not supported "
                                  "by gt; leave them None")
    if method not in (None, "ortho", "basic"):
        raise ValueError(f"lobpcg: method must be 'ortho' or 'basic', got {method!r}")
    k = (1 if X is None else X.shape[-1]) if k is None else k
    n = (k if n is None else n) if X is None else X.shape[-1]
    _check(A, B, X, iK, k, n)
    Bm = B     # gt's code keeps ``B.`` for the engine
    grad = is_grad_enabled() and (A.requires_grad or (Bm is not None and Bm.requires_grad))
    if grad and B is not None:
        raise ValueError("lobpcg.backward does not support backward with B != I yet.")
    dtype = A.dtype if A.dtype.is_floating_point and A.dtype.name in _FEPS else dtypes.float32
    A = A.to(dtype)
    tol = _FEPS[dtype.name] ** 0.5 if tol is None else tol
    niter = 1000 if niter is None else niter
    largest = True if largest is None else largest
    m, batch = A.shape[-1], tuple(A.shape[:-2])
    with no_grad():
        flat = A.detach().reshape(-1, m, m)
        Bs = None if Bm is None else Bm.detach().to(dtype).reshape(-1, m, m)
        Ks = None if iK is None else iK.detach().to(dtype).reshape(-1, m, m)
        Xs = None if X is None else X.detach().to(dtype).reshape(-1, m, n)
        pairs = [_solve(flat[i], None if Bs is None else Bs[i], randn(m, n, dtype=dtype) if Xs is None else Xs[i],
                        None if Ks is None else Ks[i], k, niter, tol, largest) for i in range(flat.shape[0])]
        E = stack([e[:k] for e, _ in pairs]).reshape(*batch, k)
        V = stack([x[:, :k] for _, x in pairs]).reshape(*batch, m, k)
    return _tied(A, E, V) if grad else (E, V)
