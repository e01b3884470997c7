"""ExponentialFamily: densities exp(<t(x), theta> - F(theta) + k(x)) given by their natural
parameters theta and log normalizer F; entropy and the same-family KL divergence come from F's
gradient (Bregman divergences: Nielsen and Nock, "Entropies and cross-entropies of exponential
families"), taken by gt's autograd with ``create_graph`` so that they are differentiable too. The
families torch makes exponential families are ones here too (Normal, Exponential, Gamma, Chi2, Beta,
Dirichlet, Bernoulli, Poisson, ContinuousBernoulli, Wishart); kl.py registers the Bregman KL for any
two of one family (this module imports no family, so the families can derive from it)."""

from gt.autograd import enable_grad
from gt.autograd.gradients import grad
from gt.tensor.construct_functions import broadcast_shapes
from gt.distributions.distribution import Distribution, sum_rightmost

__all__ = ["ExponentialFamily"]


class ExponentialFamily(Distribution):
    """A base for exponential families: a subclass gives ``_natural_params`` (a tuple of tensors),
    ``_log_normalizer(*natural_params)`` and, for ``entropy``, ``_mean_carrier_measure``."""

    @property
    def _natural_params(self):
        raise NotImplementedError

    def _log_normalizer(self, *natural_params):
        raise NotImplementedError

    @property
    def _mean_carrier_measure(self):
        raise NotImplementedError

    def entropy(self):
        """F(theta) - <theta, grad F(theta)> - E[k(x)]."""
        result = -self._mean_carrier_measure
        with enable_grad():
            nparams = [p.detach().requires_grad_() for p in self._natural_params]
            lg_normal = self._log_normalizer(*nparams)
            gradients = grad(lg_normal.sum(), nparams, create_graph=True)
        result = result + lg_normal
        for n, g in zip(nparams, gradients):
            result = result - (n * g).reshape(self._batch_shape + (-1,)).sum(-1)
        return result


def _kl_expfamily_expfamily(p, q):
    """F(theta_q) - F(theta_p) - <theta_q - theta_p, grad F(theta_p)>, for p and q of one family."""
    if type(p) is not type(q):
        raise NotImplementedError("The cross KL-divergence between different exponential families cannot be "
                                  "computed using Bregman divergences")
    with enable_grad():
        p_nparams = [n.detach().requires_grad_() for n in p._natural_params]
        lg_normal = p._log_normalizer(*p_nparams)
        gradients = grad(lg_normal.sum(), p_nparams, create_graph=True)
    result = q._log_normalizer(*q._natural_params) - lg_normal
    batch_dims = len(broadcast_shapes(p.batch_shape, q.batch_shape))
    for pn, qn, g in zip(p_nparams, q._natural_params, gradients):
        term = (qn - pn) * g
        # each parameter over its own event dims (torch sums event_shape's, wrong for Wishart's
        # batch-shaped df term under a batch)
        result = result - sum_rightmost(term, max(term.dim() - batch_dims, 0))
    return result
