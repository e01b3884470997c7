"""gt.distributions: torch.distributions' core families, ``kl_divergence`` and ``constraints``.

    >>> from gt.distributions import Normal, kl_divergence
    >>> p = Normal(gt.zeros(3), gt.ones(3))
    >>> x = p.rsample((10,))           # (10, 3), reparameterized: gradients reach loc and scale
    >>> p.log_prob(x).shape
    (10, 3)
    >>> kl_divergence(p, Normal(1.0, 2.0)).shape
    (3,)

Parameters broadcast together (numbers become tensors of the default dtype); ``validate_args``
(default on, as ``__debug__``; ``Distribution.set_default_validate_args``) checks parameters at
construction and values in ``log_prob``/``cdf``, raising torch's ValueError messages. Draws come
from gt's generator (``gt.manual_seed``): they repeat under a seed but are not torch's values.
"""

from gt.distributions import constraints
from gt.distributions.distribution import Distribution
from gt.distributions.continuous import Exponential, Gumbel, Laplace, LogNormal, Normal, Uniform
from gt.distributions.discrete import Bernoulli, Binomial, Categorical, OneHotCategorical, Poisson
from gt.distributions.gamma import Beta, Dirichlet, Gamma, StudentT
from gt.distributions.multivariate import Independent, MultivariateNormal
from gt.distributions.kl import kl_divergence, register_kl
from gt.distributions.extra import Cauchy, Chi2, Geometric, HalfNormal
from gt.distributions.mixture import MixtureSameFamily, Multinomial
from gt.distributions.more import NegativeBinomial, Pareto, Weibull
from gt.distributions.relaxed import RelaxedBernoulli, RelaxedOneHotCategorical
from gt.distributions import utils
from gt.distributions import transforms
from gt.distributions.transforms import (AffineTransform, ComposeTransform, ExpTransform, PowerTransform,
                                         SigmoidTransform, TanhTransform, Transform)
from gt.distributions.transformed import TransformedDistribution
from gt.distributions.exp_family import ExponentialFamily
from gt.distributions.continuous_bernoulli import ContinuousBernoulli
from gt.distributions.lowrank_mvn import LowRankMultivariateNormal
from gt.distributions.von_mises import VonMises
from gt.distributions.transforms_joint import (CatTransform, CumulativeDistributionTransform,
                                               IndependentTransform, StackTransform)
from gt.distributions.simplex_pareto import GeneralizedPareto, LogisticNormal
from gt.distributions.constraint_registry import biject_to, transform_to
from gt.distributions.positive import FisherSnedecor, HalfCauchy, InverseGamma, Kumaraswamy
from gt.distributions.transforms_more import (AbsTransform, LowerCholeskyTransform, ReshapeTransform,
                                              SoftmaxTransform, SoftplusTransform, StickBreakingTransform)
from gt.distributions.discrete import OneHotCategoricalStraightThrough
from gt.distributions.lkj_cholesky import LKJCholesky
from gt.distributions.wishart import Wishart
from gt.distributions.transforms_matrix import CorrCholeskyTransform, PositiveDefiniteTransform
from gt.distributions import kl_pairs, kl_more  # register the cross-family KLs into kl_divergence

del kl_pairs, kl_more
# torch.distributions.transforms.<Name> spellings for the transforms defined in other modules
for _t in (AbsTransform, CatTransform, CorrCholeskyTransform, CumulativeDistributionTransform, IndependentTransform,
           LowerCholeskyTransform, PositiveDefiniteTransform, ReshapeTransform, SoftmaxTransform, SoftplusTransform,
           StackTransform, StickBreakingTransform):
    setattr(transforms, _t.__name__, _t)
del _t

__all__ = ["AffineTransform", "Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Chi2", "ComposeTransform",
           "Dirichlet", "Distribution", "ExpTransform", "Exponential", "Gamma", "Geometric", "Gumbel", "HalfNormal",
           "Independent", "Laplace", "LogNormal", "MixtureSameFamily", "Multinomial", "MultivariateNormal",
           "NegativeBinomial", "Normal", "OneHotCategorical", "Pareto", "Poisson", "PowerTransform",
           "RelaxedBernoulli", "RelaxedOneHotCategorical", "SigmoidTransform", "StudentT", "TanhTransform",
           "Transform", "TransformedDistribution", "Uniform", "Weibull", "constraints", "kl_divergence",
           "register_kl", "transforms", "utils"]
__all__ += ["AbsTransform", "CatTransform", "ContinuousBernoulli", "CumulativeDistributionTransform",
            "ExponentialFamily", "FisherSnedecor", "GeneralizedPareto", "HalfCauchy", "IndependentTransform",
            "InverseGamma", "Kumaraswamy", "LogisticNormal", "LowRankMultivariateNormal", "LowerCholeskyTransform",
            "ReshapeTransform", "SoftmaxTransform", "StackTransform", "StickBreakingTransform", "VonMises", "biject_to",
            "transform_to", "OneHotCategoricalStraightThrough", "SoftplusTransform"]
__all__ += ["CorrCholeskyTransform", "LKJCholesky", "PositiveDefiniteTransform", "Wishart"]
