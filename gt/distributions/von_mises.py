"""VonMises: the circular distribution exp(kappa cos(x - loc)) / (2 pi I0(kappa)), scored with
torch's polynomial approximation of log I0 (Abramowitz and Stegun 9.8.1-9.8.4, about 1e-7 relative)
so that values agree with torch's; drawn by Best and Fisher's rejection method (1979)."""

import math

from gt.autograd import no_grad
from gt.tensor.arithmetic import where
from gt.tensor.creation import rand, zeros
from gt.distributions import constraints
from gt.distributions.distribution import Distribution, broadcast_all, lazy_property

__all__ = ["VonMises"]

_I0_SMALL = [1.0, 3.5156229, 3.0899424, 1.2067492, 0.2659732, 0.360768e-1, 0.45813e-2]
_I0_LARGE = [0.39894228, 0.1328592e-1, 0.225319e-2, -0.157565e-2, 0.916281e-2, -0.2057706e-1, 0.2635537e-1,
             -0.1647633e-1, 0.392377e-2]
_I1_SMALL = [0.5, 0.87890594, 0.51498869, 0.15084934, 0.2658733e-1, 0.301532e-2, 0.32411e-3]
_I1_LARGE = [0.39894228, -0.3988024e-1, -0.362018e-2, 0.163801e-2, -0.1031555e-1, 0.2282967e-1, -0.2895312e-1,
             0.1787654e-1, -0.420059e-2]


def _eval_poly(y, coef):
    result = coef[-1]
    for c in reversed(coef[:-1]):
        result = c + y * result
    return result


def _log_modified_bessel_fn(x, order=0):
    """log I_order(x) for x > 0 and order 0 or 1."""
    if order not in (0, 1):
        raise ValueError(f"order must be 0 or 1, got {order}")
    small = _eval_poly((x / 3.75).pow(2), _I1_SMALL if order else _I0_SMALL)
    if order == 1:
        small = x.abs() * small
    large = x - 0.5 * x.log() + _eval_poly(3.75 / x, _I1_LARGE if order else _I0_LARGE).log()
    return where(x < 3.75, small.log(), large)


class VonMises(Distribution):
    """A circular distribution of angles (radians; ``loc`` and values are read modulo 2 pi) with
    ``concentration`` kappa > 0. ``mean`` and ``variance`` are the circular ones."""

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None):
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(tuple(self.loc.shape), validate_args=validate_args)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return (self.concentration * (value - self.loc).cos() - math.log(2 * math.pi)
                - _log_modified_bessel_fn(self.concentration, order=0))

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @lazy_property
    def variance(self):
        k = self.concentration
        return 1 - (_log_modified_bessel_fn(k, order=1) - _log_modified_bessel_fn(k, order=0)).exp()

    def _proposal_r(self, kappa):
        tau = 1 + (1 + 4 * kappa.pow(2)).sqrt()
        rho = (tau - (2 * tau).sqrt()) / (2 * kappa)
        # a second order expansion near 0, where rho's formula cancels
        return where(kappa < 1e-5, 1 / kappa + kappa, (1 + rho.pow(2)) / (2 * rho))

    def sample(self, sample_shape=()):
        """Draws in (-pi, pi], made in float64 (float32 rounding stalls the rejection for tiny
        concentrations), returned in ``loc``'s dtype."""
        shape = self._extended_shape(sample_shape)
        with no_grad():
            loc, kappa = self.loc.detach().double(), self.concentration.detach().double()
            r = self._proposal_r(kappa)
            x = zeros(shape, dtype=loc.dtype)
            done = zeros(shape, dtype=loc.dtype).bool()
            while not bool(done.all()):
                u1, u2, u3 = (rand(shape, dtype=loc.dtype) for _ in range(3))
                z = (math.pi * u1).cos()
                f = (1 + r * z) / (r + z)
                c = kappa * (r - f)
                accept = ~done & (((c * (2 - c) - u2) > 0) | ((c / u2).log() + 1 - c >= 0))
                x = where(accept, (u3 - 0.5).sign() * f.clamp(-1.0, 1.0).acos(), x)
                done = done | accept
            return ((x + math.pi + loc) % (2 * math.pi) - math.pi).to(self.loc.dtype)
