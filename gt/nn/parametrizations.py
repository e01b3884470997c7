"""torch's ``torch.nn.utils.parametrizations``: ``weight_norm``, ``spectral_norm`` and
``orthogonal``, each a parametrization registered with gt/nn/parametrize.py, so the state dict
has torch's keys (``parametrizations.weight.original0`` / ``original1``, ``...original``,
``parametrizations.weight.0._u`` / ``_v``) and a torch state dict loads as it is.

    >>> m = parametrizations.weight_norm(nn.Linear(20, 40))
    >>> m.parametrizations.weight.original0.shape, m.parametrizations.weight.original1.shape
    ((40, 1), (40, 20))

Where gt differs from torch: no complex tensors; the orthogonal maps are built from gt's
differentiable ops: ``"matrix_exp"`` is a degree-18 Taylor polynomial with scaling and squaring
(torch's ``matrix_exp`` picks its degree from the norm: the values agree to rounding, not
bitwise), ``"cayley"`` uses ``gt.linalg.solve`` as torch does, and ``"householder"`` applies
the k reflections one after another (torch's ``householder_product``; with
``use_trivialization=False`` an assigned matrix is read back through ``gt.geqrf``, as torch's).
Random draws (spectral norm's first ``u`` and ``v``, the columns that complete a non-square
orthogonal base) come from gt's generator, not torch's.
"""

import math

from gt import autograd, dtypes
from gt.backend import B
from gt.nn import parametrize
from gt.nn.conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from gt.nn.module import Module
from gt.tensor import Tensor, cat, eye, randn, stack, zeros
from gt.tensor.arithmetic import where
from gt.tensor.householder import geqrf
from gt.tensor.linalg_methods import solve

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]

_EPS = {dtypes.float16: 2.0 ** -10, dtypes.bfloat16: 2.0 ** -7, dtypes.float32: 2.0 ** -23, dtypes.float64: 2.0 ** -52}


def _normalize(x, eps):
    return x / x.norm(2, dim=0, keepdim=True).clamp_min(eps)


# ---- orthogonal ------------------------------------------------------------------------------
def _diagonal(X):
    """The diagonal of each (n, k) matrix of X (n >= k): (..., k)."""
    k = X.shape[-1]
    return (X[..., :k, :] * eye(k, dtype=X.dtype)).sum(-1)


def _is_orthogonal(Q):
    n, k = Q.shape[-2], Q.shape[-1]
    atol = 10.0 * n * _EPS.get(Q.dtype, 2.0 ** -23)
    diff = ((Q.mT @ Q) - eye(k, dtype=Q.dtype)).abs()
    return bool((diff <= atol + 1e-5 * eye(k, dtype=Q.dtype)).all())


def _make_orthogonal(A):
    """The Q of A = QR (A tall, (..., n, k)) with R's diagonal made non-negative, as torch's."""
    n, k = A.shape[-2], A.shape[-1]
    flat = A.reshape(-1, n, k)._data
    pairs = [B.qr(flat[i]) for i in range(flat.shape[0])]   # one LAPACK call per matrix of the batch
    Q = stack([Tensor._wrap(q) for q, _ in pairs]).reshape(*A.shape[:-2], n, k)
    R = stack([Tensor._wrap(r) for _, r in pairs]).reshape(*A.shape[:-2], k, k)
    return Q * _diagonal(R).sgn().unsqueeze(-2)


def _matrix_exp(A):
    """exp(A) for square matrices A (..., n, n): Taylor to degree 18 of A / 2**s, squared s times,
    with s such that the scaled 1-norm is at most 1/2 (the truncation error is then below float64's
    rounding). Built from matmuls, so its gradient is the exact one of this polynomial."""
    n = A.shape[-1]
    with autograd.no_grad():
        norm = float(A.abs().sum(-2).amax()) if A.numel() else 0.0
    s = max(0, math.ceil(math.log2(norm / 0.5))) if norm > 0.5 else 0
    X = A / (2.0 ** s)
    I = eye(n, dtype=A.dtype)
    P = I + X / 18.0
    for j in range(17, 0, -1):   # Horner: I + X/j (I + X/(j+1) (...))
        P = I + (X @ P) / float(j)
    for _ in range(s):
        P = P @ P
    return P


def _householder_product(V, tau):
    """torch's ``householder_product``: H_1 ... H_k applied to the first k columns of the identity,
    H_i = I - tau_i v_i v_i^T, with v_i the i-th column of V (..., n, k) below the diagonal and 1
    on it."""
    n, k = V.shape[-2], V.shape[-1]
    V = V.tril(-1) + eye(n, k, dtype=V.dtype)
    Q = eye(n, k, dtype=V.dtype).expand(*V.shape)
    for i in range(k - 1, -1, -1):   # k reflections, each a rank-one update of the whole batch
        v = V[..., :, i:i + 1]                                            # (..., n, 1)
        Q = Q - tau[..., i:i + 1].unsqueeze(-1) * (v @ (v.mT @ Q))
    return Q


class _Orthogonal(Module):
    """The parametrization of ``orthogonal``: X (..., n, k) -> a matrix with orthonormal columns
    (rows, when n < k)."""

    def __init__(self, weight, orthogonal_map, *, use_trivialization=True):
        super().__init__()
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X):
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            X = X.tril()
            if n != k:
                X = cat([X, zeros(n, n - k, dtype=X.dtype).expand(*X.shape[:-2], -1, -1)], dim=-1)
            A = X - X.mT                                                  # skew-symmetric (..., n, n)
            if self.orthogonal_map == "matrix_exp":
                Q = _matrix_exp(A)
            else:
                I = eye(n, dtype=A.dtype)
                Q = solve(I - 0.5 * A, I + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(-1)
            tau = 2.0 / (1.0 + (A * A).sum(-2))
            Q = _householder_product(A, tau)
            with autograd.no_grad():
                signs = _diagonal(X).trunc()   # torch's ``.int()``: the diagonal's integer part
            Q = Q * signs.unsqueeze(-2)
        if "base" in self._buffers:
            Q = self.base @ Q
        return Q.mT if transposed else Q

    def right_inverse(self, Q):
        with autograd.no_grad():
            return self._right_inverse(Q)

    def _right_inverse(self, Q):
        if Q.shape != self.shape:
            raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. "
                             f"Got a tensor of shape {Q.shape}.")
        Q_init = Q
        n, k = Q.shape[-2], Q.shape[-1]
        if n < k:
            Q = Q.mT
            n, k = k, n
        if "base" not in self._buffers and self.orthogonal_map == "householder":
            A, tau = geqrf(Q)           # the reflectors whose product is Q; the diagonal keeps R's signs
            signs = A.diagonal(dim1=-2, dim2=-1).sign()
            A.diagonal(dim1=-2, dim2=-1).copy_(where(tau == 0, -signs, signs))
            return A.mT if Q_init.shape[-2] < Q_init.shape[-1] else A
        if "base" not in self._buffers:
            raise NotImplementedError("It is not possible to assign to the matrix exponential "
                                      "or the Cayley parametrizations when use_trivialization=False.")
        if n == k:
            Q = Q.clone() if _is_orthogonal(Q) else _make_orthogonal(Q)
        else:
            N = randn(*(Q.shape[:-2] + (n, n - k)), dtype=Q.dtype)
            Q = _make_orthogonal(cat([Q, N], dim=-1))
        self.base = Q
        n0, k0 = Q_init.shape[-2], Q_init.shape[-1]
        return zeros(*Q_init.shape, dtype=Q_init.dtype) - eye(n0, k0, dtype=Q_init.dtype)


def orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True):
    """Parametrize ``module.<name>`` (..., n, k) to a matrix with orthonormal columns (rows when
    n < k), as torch's ``orthogonal``. ``orthogonal_map``: ``"matrix_exp"`` (the default for
    square matrices), ``"cayley"`` or ``"householder"`` (the default otherwise). With
    ``use_trivialization=True`` (the default) the map is composed with a fixed orthogonal ``base``
    buffer, initialised from the current weight (made orthogonal by a QR decomposition when it is
    not) and reset on each assignment ``module.<name> = Q``.

        >>> m = orthogonal(nn.Linear(4, 4))
        >>> (m.weight.mT @ m.weight)                       # the identity, up to rounding
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in ("matrix_exp", "cayley", "householder"):
        raise ValueError('orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
                         f"Got: {orthogonal_map}")
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module


# ---- weight norm -----------------------------------------------------------------------------
def _norm_except_dim(v, dim):
    """torch's ``norm_except_dim(v, 2, dim)``: the 2-norm over every axis but ``dim``, keeping
    them as size 1; dim=-1 is the norm of the whole tensor (0-d)."""
    if dim == -1:
        return v.norm()
    if not -v.ndim <= dim < v.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-v.ndim}, {v.ndim - 1}], but got {dim})")
    dim = dim % v.ndim
    return v.norm(2, dim=tuple(d for d in range(v.ndim) if d != dim), keepdim=True)


class _WeightNorm(Module):
    """The parametrization of ``weight_norm``: (g, v) -> g * v / ||v|| (norms over all axes but
    ``dim``)."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return weight_v * (weight_g / _norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight):
        return _norm_except_dim(weight, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    """Weight normalisation (Salimans and Kingma, 2016) of ``module.<name>``, as torch's
    parametrization: ``weight = g * v / ||v||``, with ``g`` in
    ``parametrizations.<name>.original0`` (the norms, size 1 on every axis but ``dim``) and ``v``
    in ``original1`` (the weight's shape). ``dim=None`` (or -1, as torch) takes one norm of the
    whole tensor. A state dict with the older ``<name>_g`` / ``<name>_v`` keys loads too.

        >>> m = weight_norm(nn.Linear(20, 40), name="weight")
    """
    _weight_norm = _WeightNorm(dim)
    parametrize.register_parametrization(module, name, _weight_norm, unsafe=True)

    def _weight_norm_compat_hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
                                 unexpected_keys, error_msgs):
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module.register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


# ---- spectral norm ---------------------------------------------------------------------------
class _SpectralNorm(Module):
    """The parametrization of ``spectral_norm``: W -> W / sigma, sigma estimated by power
    iteration with the buffers ``_u`` (rows) and ``_v`` (columns of W as a matrix)."""

    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] "
                             f"but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            with autograd.no_grad():
                weight_mat = self._reshape_weight_to_matrix(weight)
                h, w = weight_mat.shape
                self.register_buffer("_u", _normalize(randn(h, dtype=weight.dtype), self.eps))
                self.register_buffer("_v", _normalize(randn(w, dtype=weight.dtype), self.eps))
                self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.flatten(1)                                      # (shape[dim], rest)

    def _power_method(self, weight_mat, n_power_iterations):
        # in place into the buffers (torch's ``out=``), so the state dict holds the same tensors
        with autograd.no_grad():
            for _ in range(n_power_iterations):
                self._u.copy_(_normalize(weight_mat @ self._v, self.eps))
                self._v.copy_(_normalize(weight_mat.mT @ self._u, self.eps))

    def forward(self, weight):
        if weight.ndim == 1:
            return _normalize(weight, self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = (u * (weight_mat @ v)).sum()
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Spectral normalisation (Miyato et al., 2018) of ``module.<name>``, as torch's
    parametrization: ``weight = W / sigma(W)``, ``sigma`` the largest singular value of W seen as
    a matrix (``shape[dim]`` rows), estimated by ``n_power_iterations`` steps of power iteration
    at each read in training mode (the vectors kept in the buffers ``_u`` and ``_v``), none in
    eval mode. ``dim``: 1 for ConvTranspose layers, else 0, by default.

        >>> m = spectral_norm(nn.Linear(20, 40))
        >>> m.parametrizations.weight.original.shape, m.parametrizations.weight[0]._u.shape
        ((40, 20), (40,))
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
