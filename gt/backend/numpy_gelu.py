"""The error function and the exact (erf-based) GELU with its derivative, on numpy arrays.

``erf`` is precise to float64 (a series and a continued fraction); GELU takes it for every dtype
but float32, which has a fast path of its own: a few numpy ufunc passes, described below.

numpy has no erf. scipy.special has one, but scipy is not a dependency of gt, and its float32
``erf`` and ``ndtr`` run scalar code: 45 ms for 1.6M values on the project's 2-core VM, twice
the 21 ms of the passes below for GELU and its derivative together. So the normal CDF is written
here, once, accurate to float32 rounding:

    Phi(-a) = phi(a) * M(a)                        (a = |x|, phi the standard normal density)
    M(a) (a + 2) ~= poly9((a - 3.5) / (a + 3.5))   (M, Mills' ratio, is smooth on [0, inf))

The polynomial's float32 coefficients are a least-squares fit to M(a) (a + 2) on a in [0, 14.5]
(beyond, Phi(-a) is below float32's smallest value), with relative error 1.2e-8 (0.2 of a
float32 unit in the last place); Phi(x) = 1 - Phi(-x) for x > 0. Computing the small tail
Phi(-a) directly, rather than 1 + erf(x / sqrt 2), keeps its relative accuracy for negative x,
where 1 + erf cancels (torch's float32 GELU is 0 for x below about -5.6). ``exp(-a*a/2)`` is
corrected for the rounding of ``a*a`` to float32, which would otherwise cost up to 50 units in
the last place near the underflow.
"""

import math

import numpy as np

_F = np.float32
_INV_SQRT_2PI = _F(0.3989422804014327)
_INV_SQRT_2PI_64 = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_C, _K = _F(3.5), _F(2.0)
_CLIP = _F(20.0)              # exp(-200) is 0 in float32: Phi(-a) underflows well before
CHUNK = 32768                 # values per chunk: 128 KiB for each of the few temporaries (fewer
                              # chunks cost less call overhead; measured flat from 32768 to 131072)
_CLIP_ROW = np.full(CHUNK, _CLIP)
# highest degree first (Horner)
_COEFFS = tuple(_F(c) for c in (
    0.00035482322, 0.00060090906, -0.0025933373, -0.0027720302, 0.022107897, -0.028053237,
    -0.05913599, 0.3174445, -0.71401876, 1.4661227))


def gelu_with_grad(x):
    """GELU ``x * Phi(x)`` and its derivative ``Phi(x) + x * phi(x)``, elementwise: float32 on the fast
    path below, every other dtype through the float64-precise ``erf``."""
    if x.dtype == np.float32:
        return _gelu_with_grad32(x)
    if x.dtype == np.float16:    # torch computes halves in float32, rounded once (1 + erf cancels in float16)
        out, grad = _gelu_with_grad32(x.astype(np.float32))
        return out.astype(np.float16), grad.astype(np.float16)
    cdf = 0.5 * (1 + erf(x * _INV_SQRT2))
    return x * cdf, cdf + x * (_INV_SQRT_2PI_64 * np.exp(-0.5 * x * x))


def _gelu_with_grad32(x):
    """``(x * Phi(x), Phi(x) + x * phi(x))`` for a float32 array ``x``: GELU and its derivative.

    NaN stays NaN; +inf gives (inf, nan) and -inf (nan, nan), as torch's gelu and its gradient do.
    """
    flat = np.ascontiguousarray(x).reshape(-1)
    out, grad = np.empty_like(flat), np.empty_like(flat)
    # About 40 passes over the values: run on chunks small enough to stay in the CPU's cache
    # between passes, in scratch arrays made once (fresh temporaries per pass cost page faults).
    n = min(CHUNK, flat.size)
    scratch = (np.empty((5, n), np.float32), np.empty(n, np.float64))
    for start in range(0, flat.size, CHUNK):
        part = slice(start, start + CHUNK)
        _gelu_chunk(flat[part], out[part], grad[part], scratch)
    return out.reshape(np.shape(x)), grad.reshape(np.shape(x))


def _gelu_chunk(x, out, grad, scratch):
    k = x.size
    (a, e, q, m, positive), y64 = scratch[0][:, :k], scratch[1][:k]
    np.abs(x, out=a)
    np.minimum(a, _CLIP_ROW[:k], out=a)               # NaN propagates (an array: faster than a scalar)
    # e = exp(-a*a/2), the rounding of a*a/2 to float32 corrected to first order: a float32 has
    # 24 bits, so -a*a/2 is exact in float64, and r, what float32 drops, gives exp(-y) (1 - r).
    np.copyto(y64, a)
    y64 *= y64
    y64 *= -0.5                                       # -a*a/2, exact
    np.copyto(q, y64, casting="same_kind")            # -y = fl32(-a*a/2)
    y64 -= q                                          # -r, a fraction of y's last place
    np.exp(q, out=e)
    np.copyto(m, y64, casting="same_kind")
    m *= e
    e += m                                            # exp(-y) (1 - r)
    # Mills' ratio: m = M(a) (a + 2) by Horner in q = (a - 3.5) / (a + 3.5)
    np.subtract(a, _C, out=q)
    np.add(a, _C, out=m)
    q /= m
    np.multiply(q, _COEFFS[0], out=m)
    m += _COEFFS[1]
    for c in _COEFFS[2:]:
        m *= q
        m += c
    e *= _INV_SQRT_2PI                                # phi(a)
    m *= e
    a += _K
    m /= a                                            # Phi(-|x|)
    # Phi(x) = 1 - Phi(-x) on the positive side, as arithmetic: a masked ufunc or np.where costs
    # more here than all the passes above together. Both ways round once, as 1 - p would.
    np.greater(x, 0, out=positive)                    # 1.0 where x > 0, else 0.0
    np.multiply(positive, _F(-2), out=a)
    a += _F(1)
    m *= a                                            # -p where x > 0, p elsewhere
    m += positive                                     # Phi(x)
    np.multiply(x, m, out=out)
    np.multiply(e, x, out=grad)
    grad += m                                         # the derivative: Phi(x) + x phi(x)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def erf(x):
    """erf to float64 precision, vectorised: a positive-term series for |x| <= 2.5 and
    the continued fraction of erfc beyond (numpy has no erf of its own)."""
    xd = np.asarray(x, dtype=np.float64)
    ax = np.abs(xd)
    out = np.empty_like(xd)
    small = ax <= 2.5
    if small.any():
        s = xd[small]
        s2 = 2.0 * s * s
        term = s.copy()
        total = s.copy()
        for n in range(1, 70):  # terms fall below 1e-17 of the sum well before n = 70 for |x| <= 2.5
            term *= s2 / (2 * n + 1)
            total += term
        out[small] = _TWO_OVER_SQRT_PI * np.exp(-s * s) * total
    large = ~small
    if large.any():
        a = ax[large]
        frac = a.copy()
        for k in range(60, 0, -1):
            frac = a + (k / 2.0) / frac
        erfc = np.exp(-a * a) / math.sqrt(math.pi) / frac
        out[large] = np.sign(xd[large]) * (1.0 - erfc)
    return out.astype(x.dtype, copy=False)
