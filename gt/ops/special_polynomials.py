"""torch.special's orthogonal polynomials ``P_n(x)``: Chebyshev's of the four kinds (T, U, V, W) on
[-1, 1] and shifted to [0, 1], Hermite's physicists' ``H`` and probabilists' ``He``, Laguerre's
``L`` and Legendre's ``P``.

Each is torch's algorithm (ATen's ``*_polynomial_*_forward``), run on whole arrays: ``n`` is
truncated toward zero (NaN, +-inf and values past int64 count as negative); negative ``n``
gives 0; the closed form at the special points (x = +-1, or x = 0 and 1 for the shifted
ones, x = 0 for Laguerre); Chebyshev's trigonometric form ``cos(n acos x)`` (and the
like) inside (-1, 1) past a small n (6, 8 or 4, as torch); otherwise the three-term recurrence,
in the inputs' dtype, step by step as torch, with the fused multiply-add its kernels compile to
(float32 computes each step in float64 and rounds once, so it rounds as torch's; the acos, cos
and sin of the trigonometric forms are correctly rounded, as the C library's), stopping where it
reaches NaN (overflow past inf: for |x| > 1 and large n the value is NaN, as torch's). Hermite's
are NaN past n = 128 in float32 and 512 in float64 (torch's limits).

The recurrence runs once per step over the elements that still need it, so its cost grows
with the largest such ``n`` (torch's loop too, but in C: an n of a million takes seconds here).
torch gives these functions no gradient; gt/special.py computes them outside the graph.
"""

from gt import dtypes
from gt.autograd import Function
from gt.backend import B
from gt.ops._shapes import broadcast_shape

_INT64_LIMIT = 2.0 ** 63


def _truncated_order(n):
    """torch's ``static_cast<int64_t>(n)``, kept as floats of n's dtype: NaN, infinities and values
    past int64 (which x86 turns into INT64_MIN) become -1: every rule then treats them as negative."""
    ok = B.isfinite(n) & (B.abs(n) < _INT64_LIMIT)
    return B.where(ok, B.trunc(B.where(ok, n, 0)), -1)


def _odd(n):
    return (n % 2) != 0


def _recurrence(p, q, step, n, first, last, todo):
    """The three-term recurrence for k = first .. n + last (``last`` 0 or -1) on the elements where
    ``todo`` holds: ``step(k, p, q)`` gives ``(a, c, d)`` and the next term is ``(a q - c) / d``
    (``d`` None: no division), ``a q - c`` rounded once, as the fused multiply-add torch's kernels
    compile to (float32: computed in float64, then rounded). Each element stops once its q is NaN
    (torch's loop condition). Returns the final q (the last term)."""
    if not bool(B.any(todo)):
        return q
    dtype = B.dtype_of(q)
    wide = dtypes.float64 if dtype == dtypes.float32 else None
    stop = float(B.max(B.where(todo, n, 0))) + last
    k = first
    while k <= stop:
        active = todo & (k <= n + last) & (q == q)
        if not bool(B.any(active)):
            break
        a, c, d = step(k, p, q)
        if wide is None:
            r = a * q - c
        else:
            r = B.astype(B.astype(a, wide) * B.astype(q, wide) - B.astype(c, wide), dtype)
        if d is not None:
            r = r / d
        p, q = B.where(active, q, p), B.where(active, r, q)
        k += 1
    return q


def _trig(name, v):
    """``acos``, ``cos`` or ``sin`` of ``v`` correctly rounded in its dtype, as the C library's
    ``acosf`` torch calls (numpy's float32 ones can be a unit off, which n * acos(x) multiplies):
    float32 is computed in float64 and rounded."""
    if B.dtype_of(v) != dtypes.float32:
        return B.elementwise_math(name, v)
    return B.astype(B.elementwise_math(name, B.astype(v, dtypes.float64)), dtypes.float32)


def _chebyshev(kind, x, n, shifted):
    t = x + x - 1 if shifted else x     # the shifted polynomials are the plain ones at 2x - 1
    one = B.full((), 1.0, B.dtype_of(x))
    two_t = t + t
    q0 = {"t": t, "u": two_t, "v": two_t - 1, "w": two_t + 1}[kind]
    # the trigonometric form's threshold (torch's; the shifted W uses 4, the plain U, V and W 8)
    trig_from = {"t": 6, "u": 8, "v": 8, "w": 8}[kind] if not shifted else {"t": 6, "u": 6, "v": 6, "w": 4}[kind]
    if shifted:
        at_hi, at_lo = x == 1, x == 0
    else:
        at_hi, at_lo = x == 1, x == -1
    ends = at_hi | at_lo
    inside = (n > trig_from) & (B.abs(t) < 1)
    todo = (n >= 2) & B.logical_not(ends) & B.logical_not(inside)
    out = _recurrence(one, q0, lambda k, p, q: (two_t, p, None), n, 2, 0, todo)
    out = B.where(n == 1, q0, out)
    out = B.where(n == 0, one, out)
    sign = B.where(_odd(n), -one, one)                      # (-1)**n
    theta = _trig("acos", t)
    if kind == "t":
        trig = _trig("cos", n * theta)
        end_lo, end_hi = sign, one
    elif kind == "u":
        s = _trig("sin", theta)
        a = (n + 1) * theta
        trig = B.where(s != 0, _trig("sin", a) / s, (n + 1) * _trig("cos", a) / t)
        end_lo, end_hi = sign * (n + 1), n + 1
    elif kind == "v":
        half = theta / 2
        trig = B.where(_trig("sin", half) != 1,
                       _trig("cos", (n + 0.5) * theta) / _trig("cos", half),
                       sign * (n + n + 1))
        end_lo, end_hi = sign * (n + n + 1), one
    else:
        half = theta / 2
        fallback = B.where(t > 0, n + n + 1, sign) if not shifted else sign
        trig = B.where(_trig("cos", half) != 1,
                       _trig("sin", (n + 0.5) * theta) / _trig("sin", half), fallback)
        end_lo, end_hi = sign, n + n + 1
    out = B.where(inside, trig, out)
    out = B.where(ends, B.where(at_hi, end_hi, end_lo), out)
    return out


def _hermite(physicists, x, n):
    one = B.full((), 1.0, B.dtype_of(x))
    nan = B.full((), float("nan"), B.dtype_of(x))
    limit = 512 if B.dtype_of(x) == dtypes.float64 else 128
    q0 = x + x if physicists else x
    todo = (n >= 2) & (n <= limit)
    if physicists:       # torch's k runs over 2, 4, ..., 2n - 2: here j = k / 2
        out = _recurrence(one, q0, lambda j, p, q: (x + x, (j + j) * p, None), n, 1, -1, todo)
    else:
        out = _recurrence(one, q0, lambda k, p, q: (x, k * p, None), n, 1, -1, todo)
    out = B.where(n > limit, nan, out)
    out = B.where(n == 1, q0, out)
    return B.where(n == 0, one, out)


def _laguerre(x, n):
    one = B.full((), 1.0, B.dtype_of(x))
    q0 = 1 - x
    todo = (n >= 2) & (x != 0)
    out = _recurrence(one, q0, lambda k, p, q: ((k + k) + (1 - x), k * p, k + 1), n, 1, -1, todo)
    out = B.where(n == 1, q0, out)
    out = B.where(n == 0, one, out)
    return B.where(x == 0, one, out)


def _legendre(x, n):
    one = B.full((), 1.0, B.dtype_of(x))
    ends = B.abs(x) == 1
    todo = (n >= 2) & B.logical_not(ends)
    out = _recurrence(one, x, lambda k, p, q: ((k + k + 1) * x, k * p, k + 1), n, 1, -1, todo)
    out = B.where(n == 1, x, out)
    out = B.where(n == 0, one, out)
    return B.where(ends, B.where((x > 0) | B.logical_not(_odd(n)), one, -one), out)


def _evaluate(name, x, n):
    if name == "hermite_polynomial_h":
        return _hermite(True, x, n)
    if name == "hermite_polynomial_he":
        return _hermite(False, x, n)
    if name == "laguerre_polynomial_l":
        return _laguerre(x, n)
    if name == "legendre_polynomial_p":
        return _legendre(x, n)
    shifted = name.startswith("shifted_")
    return _chebyshev(name[-1], x, n, shifted)


NAMES = ("chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
         "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
         "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
         "legendre_polynomial_p")


class OrthogonalPolynomial(Function):
    """``P_n(x)`` elementwise (x and n float arrays of one dtype, broadcast) for the polynomial
    family ``name`` of ``NAMES``. No gradient (torch's): callers apply it under ``no_grad``."""

    def forward(self, x, n, name):
        shape = broadcast_shape(name, x.shape, n.shape)
        given = x, n
        x, n = B.broadcast_to(x, shape), B.broadcast_to(n, shape)
        with B.quiet_float_errors():
            n = _truncated_order(n)
            out = B.where(n < 0, 0, _evaluate(name, x, n))
        return B.iterator_layout(B.astype(out, B.dtype_of(x)), *given)      # torch's kernel's layout

    def backward(self, g):
        raise RuntimeError("the orthogonal polynomials have no derivative (as in torch)")
