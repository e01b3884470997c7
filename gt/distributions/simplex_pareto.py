"""LogisticNormal (a Normal carried onto the simplex by stick breaking) and GeneralizedPareto
(torch.distributions' definitions)."""

import math

from gt.tensor.arithmetic import where
from gt.tensor.creation import rand
from gt.distributions import constraints
from gt.distributions.continuous import Normal
from gt.distributions.distribution import Distribution, broadcast_all
from gt.distributions.transformed import TransformedDistribution
from gt.distributions.transforms_more import StickBreakingTransform

__all__ = ["GeneralizedPareto", "LogisticNormal"]


class LogisticNormal(TransformedDistribution):
    """X on the (K + 1)-simplex with log(X / (1 - X.cumsum(-1)))[..., :-1] ~ Normal(loc, scale):
    ``loc``, ``scale`` ``(..., K)``, event_shape ``(K + 1,)``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        base_dist = Normal(loc, scale, validate_args=validate_args)
        if not base_dist.batch_shape:
            base_dist = base_dist.expand((1,))
        super().__init__(base_dist, StickBreakingTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return super().expand(batch_shape, self._get_checked_instance(LogisticNormal, _instance))

    @property
    def loc(self):
        return self.base_dist.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.base_dist.scale


def _near_zero(c):
    return c.abs() <= 1e-8  # torch.isclose(c, 0) at its default tolerances


class GeneralizedPareto(Distribution):
    """The generalized Pareto distribution of ``loc``, ``scale`` > 0 and ``concentration`` xi:
    survival (1 + xi z)**(-1 / xi) for z = (x - loc) / scale (exp(-z) at xi = 0)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "concentration": constraints.real}
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args=None):
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        super().__init__(tuple(self.loc.shape), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        negative = self.concentration < 0
        upper = where(negative, self.loc - self.scale / where(negative, self.concentration, -1.0), float("inf"))
        return constraints.interval(self.loc, upper)

    def _safe(self):
        zero = _near_zero(self.concentration)
        return zero, where(zero, 1.0, self.concentration)

    def rsample(self, sample_shape=()):
        return self.icdf(rand(self._extended_shape(sample_shape), dtype=self.loc.dtype))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        zero, safe = self._safe()
        y = 1 / safe + 1
        nonzero = where(y == 0, y * z.new_ones(()), y * (safe * z).log1p())
        return -self.scale.log() - where(zero, z, nonzero)

    def log_survival_function(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        zero, safe = self._safe()
        return where(zero, -z, -(safe * z).log1p() / safe)

    def log_cdf(self, value):
        return (-self.log_survival_function(value).exp()).log1p()

    def cdf(self, value):
        return self.log_cdf(value).exp()

    def icdf(self, value):
        zero, safe = self._safe()
        logu = (-value).log1p()
        return where(zero, self.loc - self.scale * logu, self.loc + self.scale / safe * (-safe * logu).expm1())

    @property
    def mean(self):
        valid = self.concentration < 1
        safe = where(valid, self.concentration, 0.5)
        return where(valid, self.loc + self.scale / (1 - safe), math.nan)

    @property
    def variance(self):
        valid = self.concentration < 0.5
        safe = where(valid, self.concentration, 0.25)
        return where(valid, self.scale.pow(2) / ((1 - safe).pow(2) * (1 - 2 * safe)), math.nan)

    @property
    def mode(self):
        return self.loc

    def entropy(self):
        return (self.scale.log() + self.concentration + 1).expand(self._batch_shape)
