"""``gt.special``: torch.special's functions, with its names and arguments.

    >>> import gt
    >>> gt.special.gammaln(gt.tensor([1.0, 3.0])).tolist()      # log Gamma: log 1, log 2
    [0.0, 0.6931471824645996]

Every function takes a tensor (or an array; a Python number is refused, as torch does) and
keeps its shape, the binary ones (``zeta``, ``gammainc``, ``gammaincc``, ``xlog1py``, ``xlogy``)
the broadcast shape of both. Integer and bool inputs become float32, as in torch. Gradients are
torch's (gt/ops/special_functions.py); like torch, ``zeta``, ``gammainc`` and ``gammaincc`` have
none in their first argument (the backward raises NotImplementedError) and the Bessel and Airy
functions none at all (their results are outside the graph).

On the numpy engine the gamma, Bessel and normal-distribution functions come from scipy.special,
imported at the first call (``pip install scipy``: the ``special`` extra); on the torch engine
from torch.special. The orthogonal polynomial families (``chebyshev_polynomial_t`` and the
others, ``hermite_polynomial_h``, ``laguerre_polynomial_l``, ``legendre_polynomial_p``) follow
torch's own recurrences on both engines (gt/ops/special_polynomials.py). Where gt differs from
torch: see gt/tensor/special_methods.py.
"""

from gt.tensor.special_methods import polygamma, special_binary as _binary, special_unary as _unary
from gt.tensor.special_methods import special_polynomial as _polynomial
from gt.tensor.special_methods import tensor_input as _tensor
from gt.tensor.math_methods import xlogy

__all__ = ["airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "chebyshev_polynomial_t",
           "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w", "hermite_polynomial_h",
           "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p", "shifted_chebyshev_polynomial_t",
           "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w",
           "digamma", "entr", "erf", "erfc", "erfcx",
           "erfinv", "exp2", "expit", "expm1", "gammainc", "gammaincc", "gammaln", "i0", "i0e", "i1", "i1e", "log1p",
           "log_ndtr", "log_softmax", "logit", "logsumexp", "modified_bessel_i0", "modified_bessel_i1",
           "modified_bessel_k0", "modified_bessel_k1", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "round",
           "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "sinc", "softmax", "spherical_bessel_j0",
           "xlog1py", "xlogy", "zeta"]


def _unary_function(name, doc, engine_name=None):
    def fn(input):
        return _unary(engine_name or name, input)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc + " Elementwise; the output has the input's shape."
    return fn


def _method_function(name, doc, method=None):
    method = method or name

    def fn(input):
        return getattr(_tensor(input, name), method)()

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc + f" Elementwise (``x.{method}()``); the output has the input's shape."
    return fn


gammaln = _unary_function("gammaln", "``log |Gamma(x)|``: inf at 0, -1, -2, ...", "lgamma")
digamma = _unary_function("digamma", "The derivative of ``gammaln``: -inf at 0, NaN at -1, -2, ...")
psi = digamma
i0 = _unary_function("i0", "The modified Bessel function of the first kind of order 0.")
i0e = _unary_function("i0e", "``exp(-|x|) i0(x)``, without overflow.")
i1 = _unary_function("i1", "The modified Bessel function of the first kind of order 1.")
i1e = _unary_function("i1e", "``exp(-|x|) i1(x)``, without overflow.")
erfcx = _unary_function("erfcx", "The scaled complementary error function ``exp(x**2) erfc(x)``, without overflow.")
ndtr = _unary_function("ndtr", "The standard normal CDF: the area under the N(0, 1) density left of x.")
ndtri = _unary_function("ndtri", "The inverse of ``ndtr``: -inf at 0, inf at 1, NaN outside [0, 1].")
log_ndtr = _unary_function("log_ndtr", "``log(ndtr(x))``, accurate far in the left tail (no underflow to -inf).")
entr = _unary_function("entr", "``-x log(x)``: 0 at 0, -inf for x < 0.")
airy_ai = _unary_function("airy_ai", "Airy's function Ai (no gradient, as torch).")
bessel_j0 = _unary_function("bessel_j0", "The Bessel function of the first kind of order 0 (no gradient, as torch).")
bessel_j1 = _unary_function("bessel_j1", "The Bessel function of the first kind of order 1 (no gradient, as torch).")
bessel_y0 = _unary_function("bessel_y0", "The Bessel function of the second kind of order 0 (no gradient, as torch).")
bessel_y1 = _unary_function("bessel_y1", "The Bessel function of the second kind of order 1 (no gradient, as torch).")
modified_bessel_i0 = _unary_function("modified_bessel_i0", "``i0`` without a gradient (torch's).")
modified_bessel_i1 = _unary_function("modified_bessel_i1", "``i1`` without a gradient (torch's).")
modified_bessel_k0 = _unary_function("modified_bessel_k0", "The modified Bessel function of the second kind of "
                                                           "order 0 (no gradient, as torch).")
modified_bessel_k1 = _unary_function("modified_bessel_k1", "The modified Bessel function of the second kind of "
                                                           "order 1 (no gradient, as torch).")
scaled_modified_bessel_k0 = _unary_function("scaled_modified_bessel_k0", "``exp(x) k0(x)`` (no gradient, as torch).")
scaled_modified_bessel_k1 = _unary_function("scaled_modified_bessel_k1", "``exp(x) k1(x)`` (no gradient, as torch).")
spherical_bessel_j0 = _unary_function("spherical_bessel_j0", "``sin(x) / x``, 1 at 0 (no gradient, as torch).")

erf = _method_function("erf", "The error function.")
erfc = _method_function("erfc", "``1 - erf(x)``, without its cancellation for large x.")
erfinv = _method_function("erfinv", "The inverse of erf: +-inf at +-1, NaN outside [-1, 1].")
exp2 = _method_function("exp2", "``2 ** x``.")
expm1 = _method_function("expm1", "``exp(x) - 1``, exact for small x.")
log1p = _method_function("log1p", "``log(1 + x)``, exact for small x.")
expit = _method_function("expit", "The logistic sigmoid ``1 / (1 + exp(-x))``.", "sigmoid")
sinc = _method_function("sinc", "``sin(pi x) / (pi x)``, 1 at 0.")


def _polynomial_function(name, doc):
    def fn(x, n):
        return _polynomial(name, x, n)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (doc + " ``x`` and ``n`` are tensors or numbers (not both numbers); ``n`` is truncated "
                  "toward zero, a negative (or NaN) ``n`` gives 0. Shapes broadcast; integer inputs give float32. "
                  "No gradient, as torch.")
    return fn


chebyshev_polynomial_t = _polynomial_function(
    "chebyshev_polynomial_t", "Chebyshev's polynomial of the first kind ``T_n(x)`` (``cos(n acos x)`` on [-1, 1]).")
chebyshev_polynomial_u = _polynomial_function(
    "chebyshev_polynomial_u", "Chebyshev's polynomial of the second kind ``U_n(x)``.")
chebyshev_polynomial_v = _polynomial_function(
    "chebyshev_polynomial_v", "Chebyshev's polynomial of the third kind ``V_n(x)``.")
chebyshev_polynomial_w = _polynomial_function(
    "chebyshev_polynomial_w", "Chebyshev's polynomial of the fourth kind ``W_n(x)``.")
shifted_chebyshev_polynomial_t = _polynomial_function(
    "shifted_chebyshev_polynomial_t", "``T_n(2x - 1)``: Chebyshev's first kind on [0, 1].")
shifted_chebyshev_polynomial_u = _polynomial_function(
    "shifted_chebyshev_polynomial_u", "``U_n(2x - 1)``: Chebyshev's second kind on [0, 1].")
shifted_chebyshev_polynomial_v = _polynomial_function(
    "shifted_chebyshev_polynomial_v", "``V_n(2x - 1)``: Chebyshev's third kind on [0, 1].")
shifted_chebyshev_polynomial_w = _polynomial_function(
    "shifted_chebyshev_polynomial_w", "``W_n(2x - 1)``: Chebyshev's fourth kind on [0, 1].")
hermite_polynomial_h = _polynomial_function(
    "hermite_polynomial_h", "The physicists' Hermite polynomial ``H_n(x)`` (NaN past n = 128 in float32, 512 in "
                            "float64, as torch).")
hermite_polynomial_he = _polynomial_function(
    "hermite_polynomial_he", "The probabilists' Hermite polynomial ``He_n(x)`` (NaN past n = 128 in float32, 512 in "
                             "float64, as torch).")
laguerre_polynomial_l = _polynomial_function("laguerre_polynomial_l", "Laguerre's polynomial ``L_n(x)``.")
legendre_polynomial_p = _polynomial_function("legendre_polynomial_p", "Legendre's polynomial ``P_n(x)``.")


def zeta(input, other):
    """Hurwitz's zeta function ``sum over k >= 0 of (k + other) ** -input`` (Riemann's at other = 1);
    inf at input = 1, NaN below. No gradient in ``input`` (as torch); in ``other``:
    ``-input * zeta(input + 1, other)``. Shapes broadcast; either may be a number."""
    return _binary("zeta", input, other)


def gammainc(input, other):
    """The regularized lower incomplete gamma function ``P(input, other)``, input > 0, other >= 0. No
    gradient in ``input`` (as torch). Shapes broadcast; either may be a number (torch: tensors)."""
    return _binary("gammainc", input, other)


def gammaincc(input, other):
    """The regularized upper incomplete gamma function ``Q(input, other) = 1 - P(input, other)``. No
    gradient in ``input`` (as torch). Shapes broadcast; either may be a number (torch: tensors)."""
    return _binary("gammaincc", input, other)


def xlog1py(input, other):
    """``input * log1p(other)``, 0 where ``input`` is 0 unless ``other`` is NaN (torch's rule).
    Shapes broadcast; either may be a number."""
    return _binary("xlog1py", input, other)


def multigammaln(input, p):
    """The log of the multivariate gamma function of dimension ``p``: ``x.mvlgamma(p)``."""
    return _tensor(input, "multigammaln").mvlgamma(p)


def logit(input, eps=None):
    """``log(p / (1 - p))`` with ``p`` clamped to ``[eps, 1 - eps]`` when ``eps`` is given: ``x.logit(eps)``."""
    return _tensor(input, "logit").logit(eps)


def round(input, *, decimals=0):  # noqa: A001
    """Round to the nearest integer, halves to even (or to ``decimals`` places): ``x.round(decimals)``."""
    return _tensor(input, "round").round(decimals)


def softmax(input, dim, *, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim``, cast to ``dtype`` first when given."""
    x = _tensor(input, "softmax")
    return (x if dtype is None else x.to(dtype)).softmax(dim=dim)


def log_softmax(input, dim, *, dtype=None):
    """``log(softmax(x))`` along ``dim``, computed stably, cast to ``dtype`` first when given."""
    x = _tensor(input, "log_softmax")
    return (x if dtype is None else x.to(dtype)).log_softmax(dim=dim)


def logsumexp(input, dim, keepdim=False):
    """``log(sum(exp(x)))`` over ``dim`` (an int or a tuple), without overflow."""
    return _tensor(input, "logsumexp").logsumexp(dim, keepdim)

