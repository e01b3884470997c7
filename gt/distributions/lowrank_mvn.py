"""LowRankMultivariateNormal: N(loc, W W^T + diag(D)) with ``cov_factor`` W ``(..., n, m)`` and
``cov_diag`` D ``(..., n)``, scored through the m x m capacitance matrix I + W^T D^-1 W (Woodbury and
the matrix determinant lemma), and its KL divergences with itself and MultivariateNormal."""

import math

from gt.tensor.creation import randn
from gt.tensor.construct_functions import broadcast_shapes, broadcast_tensors
from gt.tensor.linalg_base import eye_like
from gt.tensor.linalg_factor import solve_triangular
from gt.tensor.linalg_methods import cholesky
from gt.distributions import constraints
from gt.distributions.distribution import Distribution, as_shape, lazy_property
from gt.distributions.kl import register_kl
from gt.distributions.multivariate import MultivariateNormal, batch_mahalanobis

__all__ = ["LowRankMultivariateNormal"]


def _capacitance_tril(W, D):
    """The lower Cholesky factor of I + W^T D^-1 W."""
    K = (W.mT / D.unsqueeze(-2)) @ W
    return cholesky(K + eye_like(K, K.shape[-1]))


def _lowrank_logdet(W, D, cap_tril):
    """log det(W W^T + diag(D)) by the matrix determinant lemma."""
    return 2 * cap_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) + D.log().sum(-1)


def _lowrank_mahalanobis(W, D, x, cap_tril):
    """x^T (W W^T + diag(D))^-1 x by the Woodbury identity."""
    Wt_Dinv_x = ((W.mT / D.unsqueeze(-2)) @ x.unsqueeze(-1)).squeeze(-1)
    return (x.pow(2) / D).sum(-1) - batch_mahalanobis(cap_tril, Wt_Dinv_x)


def _trace_XXT(X):
    return X.pow(2).sum((-2, -1))


class LowRankMultivariateNormal(Distribution):
    """N(loc, cov_factor cov_factor^T + diag(cov_diag)): ``loc`` ``(..., n)``, ``cov_factor``
    ``(..., n, m)``, ``cov_diag`` ``(..., n)``; event_shape ``(n,)``. Costs O(n m^2), not O(n^3)."""

    arg_constraints = {"loc": constraints.real_vector, "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        n = loc.shape[-1]
        if cov_factor.dim() < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional leading batch dimensions")
        if cov_factor.shape[-2] != n:
            raise ValueError(f"cov_factor must be a batch of matrices with shape {n} x m, got "
                             f"{tuple(cov_factor.shape)}")
        if tuple(cov_diag.shape[-1:]) != (n,):
            raise ValueError(f"cov_diag must be a batch of vectors with shape {(n,)}, got {tuple(cov_diag.shape)}")
        try:
            loc_, self.cov_factor, diag_ = broadcast_tensors(loc.unsqueeze(-1), cov_factor, cov_diag.unsqueeze(-1))
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"Incompatible batch shapes: loc {tuple(loc.shape)}, cov_factor "
                             f"{tuple(cov_factor.shape)}, cov_diag {tuple(cov_diag.shape)}") from e
        self.loc, self.cov_diag = loc_[..., 0], diag_[..., 0]
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        super().__init__(tuple(self.loc.shape[:-1]), (n,), validate_args=validate_args)
        # after validation, so a negative cov_diag is reported as such rather than as a failed factorization
        self._capacitance_tril = _capacitance_tril(cov_factor, cov_diag)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LowRankMultivariateNormal, _instance)
        batch_shape = as_shape(batch_shape, "batch_shape")
        loc_shape = batch_shape + self._event_shape
        new.loc = self.loc.expand(loc_shape)
        new.cov_diag = self.cov_diag.expand(loc_shape)
        new.cov_factor = self.cov_factor.expand(loc_shape + tuple(self.cov_factor.shape[-1:]))
        new._unbroadcasted_cov_factor = self._unbroadcasted_cov_factor
        new._unbroadcasted_cov_diag = self._unbroadcasted_cov_diag
        new._capacitance_tril = self._capacitance_tril
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _matrix_shape(self):
        return self._batch_shape + self._event_shape + self._event_shape

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @lazy_property
    def variance(self):
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return (W.pow(2).sum(-1) + D).expand(self._batch_shape + self._event_shape)

    @lazy_property
    def scale_tril(self):
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        d_sqrt = D.sqrt().unsqueeze(-1)
        Dinvsqrt_W = W / d_sqrt
        K = Dinvsqrt_W @ Dinvsqrt_W.mT
        return (d_sqrt * cholesky(K + eye_like(K, K.shape[-1]))).expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self):
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return (W @ W.mT + D.diag_embed()).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self):
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        A = solve_triangular(self._capacitance_tril, W.mT / D.unsqueeze(-2), upper=False)
        return (D.reciprocal().diag_embed() - A.mT @ A).expand(self._matrix_shape())

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        W = self._unbroadcasted_cov_factor
        eps_W = randn(shape[:-1] + tuple(W.shape[-1:]), dtype=self.loc.dtype)
        eps_D = randn(shape, dtype=self.loc.dtype)
        return self.loc + (W @ eps_W.unsqueeze(-1)).squeeze(-1) + self._unbroadcasted_cov_diag.sqrt() * eps_D

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        W, D = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        M = _lowrank_mahalanobis(W, D, value - self.loc, self._capacitance_tril)
        log_det = _lowrank_logdet(W, D, self._capacitance_tril)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + log_det + M)

    def entropy(self):
        log_det = _lowrank_logdet(self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag,
                                  self._capacitance_tril)
        H = 0.5 * (self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + log_det)
        return H.expand(self._batch_shape)


def _check_events(p, q):
    if tuple(p.event_shape) != tuple(q.event_shape):
        raise ValueError("KL-divergence between two (Low Rank) Multivariate Normals with different event shapes "
                         f"cannot be computed: {tuple(p.event_shape)} and {tuple(q.event_shape)}")


def _q_terms(p, q):
    """log det(q) and q's Mahalanobis distance of p's mean, and A with q's precision D^-1 - A^T A."""
    Wq, Dq = q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag
    log_det = _lowrank_logdet(Wq, Dq, q._capacitance_tril)
    maha = _lowrank_mahalanobis(Wq, Dq, q.loc - p.loc, q._capacitance_tril)
    A = solve_triangular(q._capacitance_tril, Wq.mT / Dq.unsqueeze(-2), upper=False)
    return log_det, maha, A


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _kl_lowrank_lowrank(p, q):
    _check_events(p, q)
    Wp, Dp, Dq = p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag, q._unbroadcasted_cov_diag
    log_det_q, maha, A = _q_terms(p, q)
    term1 = log_det_q - _lowrank_logdet(Wp, Dp, p._capacitance_tril)
    term2 = ((Dp / Dq).sum(-1) + _trace_XXT(Wp * Dq.rsqrt().unsqueeze(-1))
             - _trace_XXT(A * Dp.sqrt().unsqueeze(-2)) - _trace_XXT(A @ Wp))
    return 0.5 * (term1 + term2 + maha - p.event_shape[0])


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_mvn_lowrank(p, q):
    _check_events(p, q)
    L = p._unbroadcasted_scale_tril
    log_det_q, maha, A = _q_terms(p, q)
    term1 = log_det_q - 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    term2 = _trace_XXT(L * q._unbroadcasted_cov_diag.rsqrt().unsqueeze(-1)) - _trace_XXT(A @ L)
    return 0.5 * (term1 + term2 + maha - p.event_shape[0])


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _kl_lowrank_mvn(p, q):
    _check_events(p, q)
    Wp, Dp, Lq = p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag, q._unbroadcasted_scale_tril
    term1 = 2 * Lq.diagonal(dim1=-2, dim2=-1).log().sum(-1) - _lowrank_logdet(Wp, Dp, p._capacitance_tril)
    term3 = batch_mahalanobis(Lq, q.loc - p.loc)
    batch = broadcast_shapes(tuple(Lq.shape[:-2]), tuple(Wp.shape[:-2]), tuple(Dp.shape[:-1]))
    n = p.event_shape[0]
    Lq = Lq.expand(batch + (n, n))
    term21 = _trace_XXT(solve_triangular(Lq, Wp.expand(batch + tuple(Wp.shape[-2:])), upper=False))
    term22 = _trace_XXT(solve_triangular(Lq, Dp.sqrt().diag_embed().expand(batch + (n, n)), upper=False))
    return 0.5 * (term1 + term21 + term22 + term3 - n)
