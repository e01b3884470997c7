"""The special functions of the numpy engine (mixed into ``NumpyEngine``): the primitives of
gt/backend/engine_special.py, from scipy.special (imported at the first call: scipy is an
optional dependency, ``pip install scipy`` or the ``special`` extra), and ``cummax``/``cummin``
from numpy's running ``maximum``/``minimum``.

Every function computes in float64 and rounds once to the input's dtype (scipy's float32 loops
compute in float64 too). scipy and torch both follow Cephes for most of these: they agree to a
few units of float64's rounding, except where the module docstring of tests/test_special.py
says otherwise (``polygamma(1, x)``, the Bessel functions of the first and second kind).
"""

import numpy as np

from gt.backend.engine_special import SPECIAL_BINARY, SPECIAL_UNARY, unknown_special
from gt.backend.numpy_layouts import row_major

# gt's name -> scipy.special's (a callable: a function of the module scipy.special)
_SCIPY_NAMES = {
    "lgamma": "gammaln", "digamma": "psi", "i0": "i0", "i0e": "i0e", "i1": "i1", "i1e": "i1e", "erfcx": "erfcx",
    "ndtr": "ndtr", "ndtri": "ndtri", "log_ndtr": "log_ndtr", "entr": "entr",
    "airy_ai": lambda sc: _airy_ai(sc),
    "bessel_j0": "j0", "bessel_j1": "j1", "bessel_y0": "y0", "bessel_y1": "y1", "modified_bessel_i0": "i0",
    "modified_bessel_i1": "i1", "modified_bessel_k0": "k0", "modified_bessel_k1": "k1",
    "scaled_modified_bessel_k0": "k0e", "scaled_modified_bessel_k1": "k1e",
    "spherical_bessel_j0": lambda sc: lambda x: sc.spherical_jn(0, x),
    "zeta": "zeta", "gammainc": "gammainc", "gammaincc": "gammaincc", "xlog1py": "xlog1py",
}

_scipy_special = None    # scipy.special, once imported


def _scipy(name):
    """scipy.special, imported at the first call; a clear ImportError naming ``name`` without it."""
    global _scipy_special
    if _scipy_special is None:
        try:
            import scipy.special as sc       # optional dependency: imported only when a function needs it
        except ImportError:
            raise ImportError(f"{name}: the numpy engine computes this special function with scipy, which is not "
                              f"installed; pip install scipy (or the 'special' extra: pip install 'lpm[special]'), "
                              f"or use the torch engine (GT_BACKEND=torch)") from None
        _scipy_special = sc
    return _scipy_special


def _function(name):
    if name not in SPECIAL_UNARY + SPECIAL_BINARY:
        raise unknown_special(name)
    sc = _scipy(name)
    found = _SCIPY_NAMES[name]
    return getattr(sc, found) if isinstance(found, str) else found(sc)


def _in_float64(fn, dtype, *arrays):
    with np.errstate(all="ignore"):
        out = fn(*(np.asarray(a, dtype=np.float64) for a in arrays))
    return np.asarray(out).astype(dtype, copy=False)


def _trigamma(sc):
    # scipy's polygamma(1, x) sums |x| terms for x < 0 (minutes at -1e9); torch reflects below 1/2:
    # pi**2 / sin(pi x)**2 - trigamma(1 - x). The poles (and -inf) stay inf, scipy's value there.
    def fn(x):
        low = x < 0.5
        reflected = np.pi ** 2 / np.sin(np.pi * x) ** 2 - sc.polygamma(1, np.where(low, 1 - x, 1.0))
        out = np.where(low, reflected, sc.polygamma(1, np.where(low, 1.0, x)))
        return np.where(low & (x == np.floor(x)), np.inf, out)
    return fn


def _airy_ai(sc):
    # scipy's airy is NaN for finite |x| from about 1e6 up; torch's (Cephes') is 0 above 103.9 and,
    # far below 0, the asymptotic sin term (the next, 5/72 / zeta of it, kept: below 1e-9 there)
    def fn(x):
        out = sc.airy(x)[0]
        lost = (out != out) & np.isfinite(x)
        if not lost.any():
            return out
        root = np.sqrt(np.abs(x))
        zeta = 2.0 * np.abs(x) * root / 3.0
        t = zeta + 0.25 * np.pi
        far = 0.5641895835477563 / np.sqrt(root) * (np.sin(t) - np.cos(t) * (5.0 / 72.0) / zeta)
        return np.where(lost, np.where(x > 0, 0.0, far), out)
    return fn


def _lgamma(gammaln):
    # below 1e-300 in magnitude scipy's gammaln overflows (inf, from 1 / x); there lgamma(x) is
    # -log|x| to float64's precision, torch's value
    def fn(x):
        tiny = (np.abs(x) < 1e-300) & (x != 0)
        out = np.where(x == -np.inf, np.inf, gammaln(x))
        return np.where(tiny, -np.log(np.abs(np.where(tiny, x, 1.0))), out) if tiny.any() else out
    return fn


class NumpySpecial:
    def special_math(self, name, x, y=None):
        fn = _function(name)
        if y is None:
            if name == "lgamma":        # scipy's gammaln(-inf) is -inf; C's lgamma (and torch's) is inf
                fn = _lgamma(fn)
            return _in_float64(fn, np.result_type(x), x)
        return _in_float64(fn, np.result_type(x, y), x, y)

    def polygamma(self, n, x):
        sc = _scipy("polygamma")
        fn = sc.psi if n == 0 else _trigamma(sc) if n == 1 else lambda v: sc.polygamma(n, v)
        return _in_float64(fn, np.result_type(x), x)

    def cumulative_extreme(self, x, axis, largest):
        running = np.maximum if largest else np.minimum
        values = row_major(running.accumulate(x, axis=axis))     # torch's layout (numpy_layouts.py)
        # each index is the last position at or before it where x equals the running extreme (a
        # new extreme, or a tie of it) or is NaN: the running maximum of those positions
        record = (x == values) | (x != x)
        positions = np.arange(x.shape[axis], dtype=np.int64).reshape((-1,) + (1,) * (x.ndim - axis - 1))
        return values, row_major(np.maximum.accumulate(np.where(record, positions, 0), axis=axis))
