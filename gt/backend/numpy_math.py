"""The math functions of the numpy engine (mixed into ``NumpyEngine``): the primitives of
gt/backend/engine_math.py on numpy arrays, and ``erfc`` and ``erfinv``, which numpy lacks.

``erfc`` and ``erfinv`` compute in float64 and round to the input's dtype once. ``erfc`` is
``1 - erf`` below 1 (there above 0.15, so the subtraction keeps float64's precision) and
Laplace's continued fraction of erfc from 1 on, where ``1 - erf`` would lose it (2e-12 of the
value at 2.5, all of it past 6): within 2e-15 of the exact value, relative, everywhere. ``erfinv``
starts from Giles' single-precision approximation ("Approximating the erfinv function", GPU
Computing Gems, 2011) and refines it on ``erf(y) = x`` up to 0.5 and on ``erfc(y) = 1 - x``
above (where ``1 - x`` is exact): within 2e-15 of the exact value, relative, everywhere.
"""

import math

import numpy as np

from gt.backend.engine_math import unknown
from gt.backend.numpy_gelu import erf as _erf
from gt.backend.numpy_layouts import row_major, torch_layout

_SQRT_PI = math.sqrt(math.pi)


def _erfc64(x):
    """erfc of the float64 array ``x``, relative error below 2e-15 (module docstring)."""
    out = np.empty_like(x)
    near = ~(x >= 1.0)                       # NaN too: 1 - erf(NaN) is NaN
    out[near] = 1.0 - _erf(x[near])
    mid = (x >= 1.0) & (x < 2.0)
    out[mid] = _erfc_fraction(x[mid], 200)   # the fraction converges slowly near 1 ...
    far = x >= 2.0
    out[far] = _erfc_fraction(np.minimum(x[far], 40.0), 60)   # ... fast from 2 (erfc(40) is 0 already)
    return out


def _erfc_fraction(a, terms):
    """erfc(a) for a >= 1 from Laplace's continued fraction, ``terms`` deep."""
    frac = a.copy()
    for k in range(terms, 0, -1):
        frac = a + (k / 2.0) / frac
    # exp(-a*a) with a*a split exactly: a = hi + lo, hi with 24 bits, so hi*hi is exact in float64
    hi = a.astype(np.float32).astype(np.float64)
    lo = a - hi
    return np.exp(-hi * hi) * np.exp(-lo * (2.0 * hi + lo)) / _SQRT_PI / frac


def erfc(x):
    """The complementary error function ``1 - erf(x)``, without its cancellation for large x."""
    with np.errstate(all="ignore"):
        return np.asarray(_erfc64(np.asarray(x, dtype=np.float64))).astype(np.result_type(x), copy=False)


# Giles' coefficients, highest degree first: the central range (w < 5) and the tails
_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
            -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
         -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _horner(coeffs, w):
    p = np.full_like(w, coeffs[0])
    for c in coeffs[1:]:
        p = p * w + c
    return p


def erfinv(x):
    """The inverse of erf on [-1, 1] (+-inf at +-1, NaN outside), to float64 precision."""
    xd = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        a = np.abs(xd)
        inside = a < 1
        w = -np.log((1.0 - a) * (1.0 + a))
        y = np.where(w < 5.0, _horner(_CENTRAL, w - 2.5), _horner(_TAIL, np.sqrt(w) - 3.0)) * a
        y = np.where(inside, y, np.where(a == 1, np.inf, np.nan))
        low = a <= 0.5
        y[low] = _solve_erf(y[low], a[low])
        high = inside & ~low
        y[high] = _solve_erfc(y[high], a[high])
        return np.asarray(np.copysign(y, xd)).astype(np.result_type(x), copy=False)


def _solve_erf(y, a):
    """y with erf(y) = a (0 <= a <= 0.5) from Giles' y: two Halley steps, each tripling the digits."""
    for _ in range(2):
        f = _erf(y) - a
        y = y - f / ((2.0 / _SQRT_PI) * np.exp(-y * y) + y * f)
    return y


def _solve_erfc(y, a):
    """y with erfc(y) = 1 - a (0.5 < a < 1; 1 - a is exact there) from Giles' y: Newton steps on
    log(erfc(y)), nearly quadratic in y, so they converge fast even where Giles' y is a few percent
    off (a within 1e-10 of 1, beyond the float32 range it was made for): four steps reach float64's
    precision everywhere."""
    target = np.log1p(-a)
    for _ in range(4):
        c = _erfc64(y)
        y = y + (np.log(c) - target) * c / ((2.0 / _SQRT_PI) * np.exp(-y * y))
    return y


def _xlogy(x, y):
    out = np.where(x == 0, np.zeros((), np.result_type(x, y)), x * np.log(y))
    return np.where(np.isnan(y), y, out)


def _logit(x):
    return np.log(x / (1 - x))


def _logit_of_half(x):
    # torch's float16 kernel rounds 1 - x and the quotient to float16 before its log
    half = np.float16
    return np.log((x / (1 - x).astype(half).astype(np.float32)).astype(half).astype(np.float32))


def _sinc(x):
    # not np.sinc: it puts 1e-20 for 0, which is 0 in float16 (and then 0 / 0)
    px = np.pi * x
    return np.where(x == 0, np.ones((), np.result_type(x)), np.sin(px) / px)


_FUNCTIONS = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
    "log1p": np.log1p, "expm1": np.expm1, "exp2": np.exp2, "log2": np.log2, "log10": np.log10,
    "erf": _erf, "erfc": erfc, "erfinv": erfinv,
    "sinc": _sinc, "logit": _logit,
    "atan2": np.arctan2, "hypot": np.hypot, "logaddexp": np.logaddexp, "xlogy": _xlogy,
}


def _integral(v):
    """An integer or bool array, or a Python int (bool included)."""
    return v.dtype.kind in "biu" if isinstance(v, np.ndarray) else isinstance(v, int)


def _bools(v):
    return isinstance(v, np.ndarray) and v.dtype == np.bool_


def _as_int(bools, other):
    """A bool array as the integers torch computes its power in: the other operand's integer
    dtype, int64 beside a Python int; left alone beside floats (their dtype wins anyway)."""
    if isinstance(other, np.ndarray):
        return bools.astype(other.dtype) if other.dtype.kind in "iu" else bools
    return bools if isinstance(other, float) else bools.astype(np.int64)


class NumpyMath:
    iterator_layout = staticmethod(torch_layout)     # (a call less: it runs after every elementwise op)

    def elementwise_math(self, name, x, y=None):
        fn = _FUNCTIONS.get(name)
        if fn is None:
            raise unknown(name)
        dtype = np.result_type(x) if y is None else np.result_type(x, y)
        if dtype == np.float16:           # computed in float32 and rounded once, as torch does
            x, y = x.astype(np.float32), (None if y is None else y.astype(np.float32))
            fn = _logit_of_half if name == "logit" else fn
        with np.errstate(all="ignore"):
            out = fn(x) if y is None else torch_layout(fn(x, y), x, y)
        # a ufunc gives a numpy scalar for 0-d inputs: keep an array, in the inputs' dtype
        return np.asarray(out).astype(dtype, copy=False)

    def maximum(self, a, b):        # torch's layout where a's and b's differ (numpy's is row-major)
        return torch_layout(np.maximum(a, b), a, b)

    def minimum(self, a, b):
        return torch_layout(np.minimum(a, b), a, b)

    def where(self, cond, x, y):      # torch's: the condition's layout first
        return torch_layout(np.where(cond, x, y), cond, x, y)

    def prod(self, x, axis=None, keepdims=False):
        integral = x.dtype.kind in "biu"
        return row_major(np.asarray(np.prod(x, axis=axis, keepdims=keepdims, dtype=np.int64 if integral else x.dtype)))

    def cumprod(self, x, axis):
        if x.dtype == np.float16:     # torch accumulates half in float32
            return row_major(np.cumprod(x, axis=axis, dtype=np.float32).astype(np.float16))
        if x.dtype == np.float32:     # and float32 in float64, as torch's CPU kernel
            return row_major(np.cumprod(x, axis=axis, dtype=np.float64).astype(np.float32))
        integral = x.dtype.kind in "biu"
        return row_major(np.cumprod(x, axis=axis, dtype=np.int64 if integral else x.dtype))

    def qr(self, x, complete=False):
        q, r = np.linalg.qr(x, mode="complete" if complete else "reduced")
        return q.astype(x.dtype, copy=False), r.astype(x.dtype, copy=False)

    def power(self, a, b):
        a_bool, b_bool = _bools(a), _bools(b)
        if a_bool or b_bool:
            # numpy's bool powers are int8 (not a gt dtype); torch's are int64, or bool for a bool
            # to the power True or False, and none for two bool arrays
            if (a_bool or type(a) is bool) and b_bool:      # (b an array: ``True ** mask`` too)
                raise NotImplementedError("\"pow\" not implemented for 'Bool': torch has no power of two bools either; "
                                          "convert one first, e.g. x.int() ** y")
            if a_bool and isinstance(b, bool):
                return np.power(a, b).astype(bool)
            a, b = (_as_int(a, b) if a_bool else a), (_as_int(b, a) if b_bool else b)
        if _integral(a) and _integral(b):
            if isinstance(b, np.ndarray):
                if b.size and b.min() < 0:       # numpy refuses these; torch computes them
                    negative = b < 0
                    out = np.power(a, np.where(negative, 0, b))
                    odd = (b % 2).astype(bool)
                    inverse = np.where(np.equal(a, 1), 1, np.where(np.equal(a, -1), np.where(odd, -1, 1), 0))
                    return np.where(negative, inverse, out).astype(out.dtype, copy=False)
            elif b < 0:
                raise RuntimeError(f"Integers to negative integer powers are not allowed (got the exponent {b} "
                                   f"for an integer tensor); use a float tensor, e.g. x.float() ** {b}")
        if type(a) is not np.ndarray and type(b) is np.ndarray:
            return row_major(a ** b)        # torch's number ** tensor is row-major (its pow_Scalar)
        return torch_layout(a ** b, a, b)

    def rsqrt(self, x):
        if x.dtype == np.float16:       # in float32, rounded once, as torch's kernel (720 of 3000 were apart)
            return (1.0 / np.sqrt(x.astype(np.float32))).astype(np.float16)
        return 1.0 / np.sqrt(x)

    def quiet_float_errors(self):
        return np.errstate(all="ignore")
