"""The engine primitives of torch.special's functions that numpy lacks (gamma and Bessel
families, the normal distribution's functions) and of ``cummax``/``cummin`` (declared here,
inherited by ``Engine``; gt/backend/engine.py's conventions hold).

As ``elementwise_math`` (gt/backend/engine_math.py), one primitive, ``special_math(name, x,
y=None)``, serves the whole fixed set of names below: the torch engine calls
``torch.special``'s function of that name, the numpy engine scipy.special's (scipy is imported
at the first call; without it the call raises an ImportError naming the function and
``pip install scipy``). Each function computes in its input's dtype (float16 and bfloat16 in
float32, rounded once), gives NaN outside its domain and inf at its poles, and never warns.
"""

import abc

SPECIAL_UNARY = ("lgamma", "digamma", "i0", "i0e", "i1", "i1e", "erfcx", "ndtr", "ndtri", "log_ndtr", "entr",
                 "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0",
                 "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0",
                 "scaled_modified_bessel_k1", "spherical_bessel_j0")
"""The unary functions of ``special_math``, torch.special's of these names (``lgamma`` is
``gammaln``): ``log |Gamma(x)|``, its derivative ``digamma``, the modified Bessel functions
``i0``, ``i1`` and their scaled forms ``i0e = exp(-|x|) i0``, ``i1e``; ``erfcx = exp(x**2)
erfc(x)``; the standard normal CDF ``ndtr``, its inverse ``ndtri`` and ``log_ndtr = log(ndtr)``
without underflow; ``entr = -x log x`` (0 at 0, -inf below); Airy's Ai and the Bessel functions
of the first and second kind, the modified ones of the second kind (``k0``, ``k1`` and their
``exp(x)``-scaled forms) and the spherical ``j0 = sin(x) / x``."""

SPECIAL_BINARY = ("zeta", "gammainc", "gammaincc", "xlog1py")
"""The binary functions of ``special_math`` (inputs broadcast): Hurwitz's ``zeta(x, q)`` (sum over
k >= 0 of ``(k + q) ** -x``), the regularized lower and upper incomplete gamma functions
``gammainc(a, x)`` and ``gammaincc(a, x)``, and ``xlog1py(x, y) = x log1p(y)``, 0 where x is 0
unless y is NaN."""


class SpecialPrimitives(abc.ABC):
    @abc.abstractmethod
    def special_math(self, name, x, y=None):
        """The function ``name`` of ``SPECIAL_UNARY`` on the float array ``x``, or of
        ``SPECIAL_BINARY`` on the float arrays ``x`` and ``y`` (same dtype; they broadcast), in
        that dtype (module docstring). ValueError naming an unknown ``name``."""
        raise NotImplementedError

    @abc.abstractmethod
    def polygamma(self, n, x):
        """The ``n``-th derivative (an int >= 0) of digamma on the float array ``x``, in its dtype:
        ``polygamma(0, x)`` is ``digamma(x)``; inf at the poles (0, -1, ...) for odd n >= 1."""
        raise NotImplementedError

    @abc.abstractmethod
    def cumulative_extreme(self, x, axis, largest):
        """``(values, indices)``: the running maximum (``largest``) or minimum of ``x`` along the
        int ``axis``, in ``x``'s dtype, and the int64 index along ``axis`` where each was taken: the
        LAST index of equal values, a NaN counting as larger (and smaller) than every number and
        staying once met, at its latest index (torch's ``cummax``/``cummin``)."""
        raise NotImplementedError


def unknown_special(name):
    """The error of ``special_math`` for a name outside ``SPECIAL_UNARY`` and ``SPECIAL_BINARY``."""
    return ValueError(f"special_math: unknown function {name!r}; expected one of {SPECIAL_UNARY + SPECIAL_BINARY}")
