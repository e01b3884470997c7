"""The gamma family: Gamma, Beta, Dirichlet and StudentT, with gamma draws made by Marsaglia and
Tsang's rejection method, vectorised over the whole tensor (one pass per round of rejection).

Their draws are reparameterized implicitly (``rsample``): a gamma draw x of concentration a moves
with a as the quantile of its CDF level does, dx/da = -(dP(a, x)/da) / p(x; a), with P the
regularized lower incomplete gamma function. gt takes dP/da by a central difference of P in a
(about 1e-9 relative); torch by series and rational approximations (up to about 1e-4 relative).
Beta and Dirichlet draws are normalized gamma draws and differentiate through that normalization
(a valid pathwise gradient, not torch's per-draw formula: both are unbiased)."""

import math

from gt.autograd import Function, no_grad
from gt.tensor.arithmetic import where
from gt.tensor.creation import ones_like, rand_like, randn, randn_like, zeros_like
from gt.tensor.functions import stack
from gt.tensor.runtime import finfo
from gt.tensor.toplevel_functions import as_tensor
from gt.distributions import constraints
from gt.distributions.distribution import Distribution, broadcast_all
from gt.distributions.exp_family import ExponentialFamily

__all__ = ["Gamma", "Beta", "Dirichlet", "StudentT", "standard_gamma"]


def standard_gamma(alpha):
    """Gamma(alpha, 1) draws shaped as ``alpha`` (outside the graph), at least the dtype's tiny."""
    with no_grad():
        # NaN, infinite or negative alphas (validation off) would never be accepted: NaN draws
        valid = (alpha >= 0) & (alpha < float("inf"))
        alpha = where(valid, alpha.detach(), 1.0)
        boost = alpha < 1
        a = where(boost, alpha + 1, alpha)  # alpha < 1: draw Gamma(alpha + 1), then scale by U**(1/alpha)
        d = a - 1.0 / 3
        c = (9 * d).rsqrt()
        out = zeros_like(a)
        todo = ones_like(a).bool()
        while bool(todo.any()):
            x = randn_like(a)
            v = (1 + c * x) ** 3
            u = rand_like(a)
            ok = (v > 0) & (u.log() < 0.5 * x * x + d - d * v + d * v.clamp(min=finfo(a.dtype).tiny).log())
            out = where(todo & ok, d * v, out)
            todo = todo & ~ok
        out = where(boost, out * rand_like(a).pow(alpha.clamp(min=finfo(a.dtype).tiny).reciprocal()), out)
        return where(valid, out.clamp(min=finfo(a.dtype).tiny), float("nan"))


def standard_gamma_grad(alpha, x):
    """dx/d alpha of Gamma(alpha, 1) draws ``x`` held at their CDF level (outside the graph)."""
    with no_grad():
        a, xx = alpha.detach().double(), x.detach().double()
        h = a * 1e-5  # truncation ~(h / a)**2, rounding ~eps * a / h: both near 1e-10 relative
        dP = ((a + h).igamma(xx) - (a - h).igamma(xx)) / (2 * h)
        log_pdf = (a - 1) * xx.log() - xx - a.lgamma()
        grad = where(dP == 0, 0.0, -dP * (-log_pdf).clamp(max=700).exp())
        return grad.to(alpha.dtype)


class _StandardGamma(Function):
    @staticmethod
    def forward(ctx, alpha):
        x = standard_gamma(alpha)
        ctx.save_for_backward(alpha, x)
        return x

    @staticmethod
    def backward(ctx, grad):
        alpha, x = ctx.saved_tensors
        return grad * standard_gamma_grad(alpha, x)


def standard_gamma_rsample(alpha):
    """Gamma(alpha, 1) draws shaped as ``alpha`` whose gradient reaches ``alpha`` (implicitly)."""
    return _StandardGamma.apply(alpha) if alpha.requires_grad else standard_gamma(alpha)


class Gamma(ExponentialFamily):
    """rate**c x**(c - 1) exp(-rate x) / Gamma(c), for ``concentration`` c and ``rate``."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(tuple(self.concentration.shape), validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        x = standard_gamma_rsample(self.concentration.expand(shape)) / self.rate.expand(shape)
        return x.clamp(min=finfo(x.dtype).tiny)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_tensor(value, dtype=self.rate.dtype)  # torch's: a float64 value under float32 parameters
        c, r = self.concentration, self.rate
        return c.xlogy(r) + (c - 1).xlogy(value) - r * value - c.lgamma()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self.concentration.igamma(self.rate * value)

    def entropy(self):
        c = self.concentration
        return c - self.rate.log() + c.lgamma() + (1.0 - c) * c.digamma()

    @property
    def _natural_params(self):
        return self.concentration - 1, -self.rate

    def _log_normalizer(self, x, y):
        return (x + 1).lgamma() + (x + 1) * (-y.reciprocal()).log()


class Dirichlet(ExponentialFamily):
    """On the simplex: density prod(x_i**(c_i - 1)) / B(c); ``concentration`` ``(..., K)`` gives
    batch_shape ``(...)`` and event_shape ``(K,)``."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if concentration.dim() < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        shape = tuple(concentration.shape)
        super().__init__(shape[:-1], shape[-1:], validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self):
        c = self.concentration
        concm1 = (c - 1).clamp(min=0)
        total = concm1.sum(-1, keepdim=True)
        mode = concm1 / where(total == 0, 1.0, total)
        # every c_i < 1: the density is unbounded at every vertex; torch answers the first one
        vertex = (c.new_tensor(list(range(c.shape[-1]))) == 0).type_as(c)
        return where((c < 1).all(-1, keepdim=True), vertex, mode)

    @property
    def variance(self):
        c = self.concentration
        c0 = c.sum(-1, keepdim=True)
        return c * (c0 - c) / (c0.pow(2) * (c0 + 1))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        g = standard_gamma_rsample(self.concentration.expand(shape))
        return (g / g.sum(-1, keepdim=True)).clamp(min=finfo(g.dtype).tiny, max=1 - finfo(g.dtype).eps)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        return (c - 1).xlogy(value).sum(-1) + c.sum(-1).lgamma() - c.lgamma().sum(-1)

    def entropy(self):
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(-1)
        return c.lgamma().sum(-1) - a0.lgamma() - (k - a0) * a0.digamma() - ((c - 1.0) * c.digamma()).sum(-1)

    @property
    def _natural_params(self):
        return (self.concentration,)

    def _log_normalizer(self, x):
        return x.lgamma().sum(-1) - x.sum(-1).lgamma()


class Beta(ExponentialFamily):
    """x**(c1 - 1) (1 - x)**(c0 - 1) / B(c1, c0) on [0, 1] (a two-category Dirichlet)."""

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        c1, c0 = broadcast_all(concentration1, concentration0)
        self._dirichlet = Dirichlet(stack([c1, c0], -1), validate_args=validate_args)
        super().__init__(self._dirichlet._batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Beta, _instance)
        new._dirichlet = self._dirichlet.expand(batch_shape)
        Distribution.__init__(new, new._dirichlet.batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def concentration1(self):
        return self._dirichlet.concentration[..., 0]

    @property
    def concentration0(self):
        return self._dirichlet.concentration[..., 1]

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        return self._dirichlet.mode[..., 0]

    @property
    def variance(self):
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=()):
        return self._dirichlet.rsample(sample_shape)[..., 0]

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._dirichlet.log_prob(stack([value, 1.0 - value], -1))

    def entropy(self):
        return self._dirichlet.entropy()

    @property
    def _natural_params(self):
        return self.concentration1, self.concentration0

    def _log_normalizer(self, x, y):
        return x.lgamma() + y.lgamma() - (x + y).lgamma()


class StudentT(Distribution):
    """Student's t with ``df`` degrees of freedom, moved by ``loc`` and scaled by ``scale``."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        super().__init__(tuple(self.df.shape), validate_args=validate_args)

    @property
    def mean(self):
        return where(self.df <= 1, float("nan"), self.loc)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        df = self.df
        finite = self.scale.pow(2) * df / where(df > 2, df - 2, 1.0)
        return where(df > 2, finite, where(df > 1, float("inf"), float("nan")))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        df = self.df.expand(shape)
        chi2 = 2 * standard_gamma_rsample(0.5 * df)
        y = randn(shape, dtype=df.dtype) * (df / chi2).sqrt()
        return self.loc + self.scale * y

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        df = self.df
        y = (value - self.loc) / self.scale
        z = (self.scale.log() + 0.5 * df.log() + 0.5 * math.log(math.pi) + (0.5 * df).lgamma()
             - (0.5 * (df + 1)).lgamma())
        return -0.5 * (df + 1.0) * (y.pow(2) / df).log1p() - z

    def entropy(self):
        df = self.df
        lbeta = (0.5 * df).lgamma() + math.lgamma(0.5) - (0.5 * (df + 1)).lgamma()
        return (self.scale.log() + 0.5 * (df + 1) * ((0.5 * (df + 1)).digamma() - (0.5 * df).digamma())
                + 0.5 * df.log() + lbeta)
