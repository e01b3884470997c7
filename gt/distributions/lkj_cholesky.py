"""LKJCholesky (Lewandowski, Kurowicka and Joe, 2009): a distribution over lower Cholesky factors
L of D x D correlation matrices, with density of L L^T proportional to det(L L^T)**(eta - 1),
drawn by the onion method vectorised as torch's (a Beta draw per row for its squared length, a
uniform direction on the sphere of the row's strict lower part), with the paper's Beta parameters."""

import math
import numbers

from gt.autograd import no_grad
from gt.tensor.arithmetic import where
from gt.tensor.creation import arange, randn
from gt.tensor.functions import cat
from gt.tensor.runtime import finfo
from gt.distributions import constraints
from gt.distributions.distribution import Distribution, as_shape, broadcast_all
from gt.distributions.gamma import Beta

__all__ = ["LKJCholesky"]


class LKJCholesky(Distribution):
    """Lower Cholesky factors of ``dim`` x ``dim`` correlation matrices M, with density of M
    proportional to det(M)**(concentration - 1) (uniform over correlation matrices at 1).

        >>> L = LKJCholesky(3, 0.5).sample()   # (3, 3); L @ L.mT is a correlation matrix

    ``concentration`` (a number or tensor, > 0) gives the batch_shape; event_shape is
    ``(dim, dim)``. No ``rsample``, as torch's.
    """

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim, concentration=1.0, validate_args=None):
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"Expected dim to be an integer greater than or equal to 2. Found dim={dim!r}.")
        if dim < 2:
            raise ValueError(f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}.")
        self.dim = int(dim)
        (self.concentration,) = broadcast_all(concentration)
        # Beta draws for every row's squared length at once (section 3.2 of the paper): row k of
        # the factor (k >= 1) takes Beta(k / 2, eta + (D - 2) / 2 - (k - 1) / 2); row 0's is a
        # placeholder that the draw never reads. torch's first concentration is k - 1/2, right for
        # k = 1 only: its rows below the second are too short, so that its correlations are not
        # exchangeable (the variance of L L^T's (3, 2) entry is not the (1, 0) entry's)
        marginal_conc = self.concentration + 0.5 * (self.dim - 2)
        offset = arange(self.dim - 1, dtype=self.concentration.dtype)
        offset = cat([offset.new_zeros((1,)), offset])
        # unchecked: a bad concentration is reported as this distribution's below, where torch's
        # error names the Beta's inner Dirichlet
        self._beta = Beta(0.5 * (offset + 1), marginal_conc.unsqueeze(-1) - 0.5 * offset, validate_args=False)
        super().__init__(tuple(self.concentration.shape), (self.dim, self.dim), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LKJCholesky, _instance)
        batch_shape = as_shape(batch_shape, "batch_shape")
        new.dim = self.dim
        new.concentration = self.concentration.expand(batch_shape)
        new._beta = self._beta.expand(batch_shape + (self.dim,))
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=()):
        """Factors of shape ``sample_shape + batch_shape + (dim, dim)`` (outside the graph)."""
        with no_grad():
            y = self._beta.sample(sample_shape).unsqueeze(-1)
            u_normal = randn(self._extended_shape(sample_shape), dtype=y.dtype).tril(-1)
            norm = u_normal.norm(dim=-1, keepdim=True)
            # the first row is all zeros: a zero direction instead of torch's 0/0 then overwritten
            u_hypersphere = u_normal / where(norm == 0, 1.0, norm)
            w = y.sqrt() * u_hypersphere
            diag = (1 - w.pow(2).sum(-1)).clamp(min=finfo(w.dtype).tiny).sqrt()
            return w + diag.diag_embed()

    def log_prob(self, value):
        """log density at the Cholesky factor ``value`` (Stan's LKJ Cholesky density)."""
        if self._validate_args:
            self._validate_sample(value)
        # p(L) is proportional to prod_i L_ii**(2 (eta - 1) + D - i), i = 2..D: det(M)**(eta - 1)
        # and the Jacobian of L -> L L^T
        diag_elems = value.diagonal(dim1=-1, dim2=-2)[..., 1:]
        order = arange(2, self.dim + 1, dtype=self.concentration.dtype)
        order = 2 * (self.concentration - 1).unsqueeze(-1) + self.dim - order
        unnormalized_log_pdf = (order * diag_elems.log()).sum(-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        # the paper's pi constant D (D - 1) / 4 log(pi) less the multivariate gamma's (D - 1)(D - 2) / 4
        normalize_term = 0.5 * dm1 * math.log(math.pi) + (alpha - 0.5).mvlgamma(dm1) - alpha.lgamma() * dm1
        return unnormalized_log_pdf - normalize_term
