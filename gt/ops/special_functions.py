"""torch.special's functions that gt computes with the engine's ``special_math`` and
``polygamma`` primitives (gt/backend/engine_special.py), each with torch's gradient.

As gt/ops/math_functions.py: one op class serves every unary function and one every binary one,
each function's derivative in a table beside the forward that uses it. The derivatives are
torch's (gt's derivatives.yaml twin): ``lgamma' = digamma``, ``digamma' = polygamma(1)``,
``i0' = i1``, ``i0e' = i1e - sign(x) i0e``, ``erfcx' = 2 x erfcx - 2 / sqrt(pi)``, the normal
pdf for ``ndtr``, ``pdf / ndtr`` as ``exp(-x**2 / 2 - log_ndtr)`` for ``log_ndtr`` (no 0 / 0
far in the left tail). Where torch has no derivative (``zeta`` and the incomplete gamma
functions in their first argument) the backward raises torch's NotImplementedError; the Bessel
functions have none in torch either (gt/tensor/special_methods.py runs them outside the graph).
"""

import math

from gt.autograd import Function
from gt.backend import B
from gt.ops._graph import const, mask_like
from gt.ops.elementwise import Where
from gt.ops.math_functions import MathFunction

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _s(name, x):
    return B.special_math(name, x)


# each float dtype's machine epsilon: below it, i1(x) / x rounds badly (x subnormal: 1 / x overflows)
_EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23, "float64": 2.0 ** -52}


def _tiny(x):
    """Where |x| <= eps (NaN too): torch's mask, where i1' and i1e' are their limit 1/2 at 0."""
    return ~(B.abs(x) > _EPS.get(B.dtype_of(x).name, 2.0 ** -52))


def _i1_derivative(x, y):
    # i0(x) - i1(x) / x, and its limit 1/2 where |x| <= eps and at NaN (torch's)
    zero = _tiny(x)
    return B.where(zero, 0.5, _s("i0", x) - y / B.where(zero, 1, x))


def _i1e_derivative(x, y):
    # i0e(x) - i1e(x) (sign(x) + 1 / x), and 1/2 where |x| <= eps and at NaN (torch's)
    zero = _tiny(x)
    return B.where(zero, 0.5, _s("i0e", x) - y * (B.sign(x) + 1 / B.where(zero, 1, x)))


# name -> dy/dx from the input x and the output y (the functions without one are not differentiable)
_DERIVATIVES = {
    "lgamma": lambda x, y: _s("digamma", x),
    "digamma": lambda x, y: B.polygamma(1, x),
    "i0": lambda x, y: _s("i1", x),
    "i0e": lambda x, y: _s("i1e", x) - B.sign(x) * y,
    "i1": _i1_derivative,
    "i1e": _i1e_derivative,
    "erfcx": lambda x, y: 2 * x * y - _TWO_OVER_SQRT_PI,
    "ndtr": lambda x, y: B.exp(-0.5 * x * x) / _SQRT_2PI,
    "ndtri": lambda x, y: _SQRT_2PI * B.exp(0.5 * y * y),
    "log_ndtr": lambda x, y: B.exp(-0.5 * x * x - y) / _SQRT_2PI,
    "entr": lambda x, y: -(B.log(x) + 1),
}
DIFFERENTIABLE = tuple(_DERIVATIVES)


def _r(name, x):
    return SpecialFunction.apply(x, name)


def _i1_graph(x, scaled):
    # i0 - i1 / x (i1e: i0e - i1e (sign(x) + 1 / x)), 1/2 at 0, with the masks as constants
    zero = const(_tiny(x._array))
    safe = Where.apply(zero, 1.0, x)
    if scaled:
        rest = _r("i0e", x) - _r("i1e", x) * (mask_like(x, B.sign(x._array)) + 1 / safe)
    else:
        rest = _r("i0", x) - _r("i1", x) / safe
    return Where.apply(zero, 0.5, rest)


# name -> f'(x) written with recorded ops on the tensor x, for create_graph=True
_GRAPH_DERIVATIVES = {
    "i1": lambda x: _i1_graph(x, False),
    "i1e": lambda x: _i1_graph(x, True),
    "lgamma": lambda x: _r("digamma", x),
    "digamma": lambda x: Polygamma.apply(x, 1),
    "i0": lambda x: _r("i1", x),
    "i0e": lambda x: _r("i1e", x) - mask_like(x, B.sign(x._array)) * _r("i0e", x),
    "erfcx": lambda x: 2 * x * _r("erfcx", x) - _TWO_OVER_SQRT_PI,
    "ndtr": lambda x: (-0.5 * x * x).exp() / _SQRT_2PI,
    "ndtri": lambda y: _SQRT_2PI * (0.5 * y * y).exp(),       # of the result y (MathFunction.backward_graph)
    "log_ndtr": lambda x: (-0.5 * x * x - _r("log_ndtr", x)).exp() / _SQRT_2PI,
    "entr": lambda x: -(x.log() + 1),
}


class SpecialFunction(MathFunction):
    """``y = f(x)`` elementwise for ``f`` the function ``name`` of the engine's ``SPECIAL_UNARY``;
    the gradient is ``g * f'(x)`` (``_DERIVATIVES``)."""

    reads = {"ndtri": "y", "i0e": "xy", "i1": "xy", "i1e": "xy", "erfcx": "xy", "log_ndtr": "xy"}
    # torch's aten ops of ``torch.special`` name their nodes Special...; these three are older
    _torch_name = property(lambda self: ("" if self.fn in ("lgamma", "digamma", "i0") else "Special")
                           + self.fn.title().replace("_", "") + "Backward0")

    def _values(self, name, x):
        return B.special_math(name, x)

    def _tables(self):
        return _DERIVATIVES, _GRAPH_DERIVATIVES


class Polygamma(Function):
    """``polygamma(n, x)``, the n-th derivative of digamma; its gradient is ``polygamma(n + 1, x)``."""

    def forward(self, x, n):
        self.n = n
        self.save(x)
        with B.quiet_float_errors():
            return B.polygamma(n, x)

    def backward(self, g):
        with B.quiet_float_errors():
            return g * B.polygamma(self.n + 1, self.saved[0]), None

    def backward_graph(self, g):
        return g * Polygamma.apply(self.inputs[0], self.n + 1), None


def _not_implemented(what):
    return NotImplementedError(f"the derivative for '{what}' is not implemented (as in torch): detach that "
                               f"argument, or give it requires_grad=False")


def _xlog1py_grads(g, a, b):
    # d/dx x log1p(y) = log1p(y), taken as 0 where x is 0 and y <= -1 (torch's choice); d/dy = x / (1 + y)
    return B.where((a == 0) & (b <= -1), 0, B.special_math("xlog1py", g, b)), g * a / (b + 1)


def _zeta_grads(g, a, b):
    return None, g * -a * B.special_math("zeta", a + 1, b)


def _gammainc_grads(g, a, b, sign=1):
    # d/dx of the regularized incomplete gamma: x**(a - 1) exp(-x) / Gamma(a), in logs
    return None, g * (sign * B.exp((a - 1) * B.log(b) - b - B.special_math("lgamma", a)))


# name -> (torch's name of the first argument's missing derivative or None, gradients function)
_BINARY_GRADIENTS = {
    "xlog1py": (None, _xlog1py_grads),
    "zeta": ("zeta", _zeta_grads),
    "gammainc": ("igamma: input", _gammainc_grads),
    "gammaincc": ("igammac: input", lambda g, a, b: _gammainc_grads(g, a, b, -1)),
}


class SpecialBinary(Function):
    """``out = f(a, b)`` elementwise (broadcasting) for ``f`` the function ``name`` of the engine's
    ``SPECIAL_BINARY``; the gradients are torch's, a NotImplementedError where torch has none."""

    def forward(self, a, b, name):
        self.fn = name
        with B.quiet_float_errors():
            out = B.iterator_layout(B.special_math(name, a, b), a, b)
        self.save(a, b)
        return out

    def backward(self, g):
        a, b = self.saved
        na, nb = self.needs_input_grad[:2]
        missing, grads = _BINARY_GRADIENTS[self.fn]
        if na and missing is not None:
            raise _not_implemented(missing)
        with B.quiet_float_errors():
            ga, gb = grads(g, a, b)
        return (ga if na else None), (gb if nb else None), None

    def backward_graph(self, g):
        a, b = self.inputs[:2]
        na, nb = self.needs_input_grad[:2]
        missing = _BINARY_GRADIENTS[self.fn][0]
        if na and missing is not None:
            raise _not_implemented(missing)
        with B.quiet_float_errors():
            ga, gb = _BINARY_GRAPH[self.fn](g, a, b)
        return (ga if na else None), (gb if nb else None), None


def _gammainc_graph(g, a, b, sign=1):
    return None, g * (sign * ((a - 1) * b.log() - b - SpecialFunction.apply(a, "lgamma")).exp())


def _xlog1py_graph(g, a, b):
    keep = mask_like(g, B.logical_not((a._array == 0) & (b._array <= -1)))
    return SpecialBinary.apply(g, b, "xlog1py") * keep, g * a / (b + 1)


# name -> (gradient of a, gradient of b) with recorded ops, for create_graph=True
_BINARY_GRAPH = {
    "xlog1py": _xlog1py_graph,
    "zeta": lambda g, a, b: (None, g * -a * SpecialBinary.apply(a + 1, b, "zeta")),
    "gammainc": _gammainc_graph,
    "gammaincc": lambda g, a, b: _gammainc_graph(g, a, b, -1),
}


class CumulativeExtremeIndex(Function):
    """The int64 indices of ``cummax`` (``largest``) or ``cummin`` along ``axis`` (the engine's
    ``cumulative_extreme``: torch's tie and NaN rules). Indices have no gradient: the values are
    gathered at them (gt/tensor/special_methods.py), which routes each gradient to its index."""

    def forward(self, x, axis, largest):
        return B.cumulative_extreme(x, axis, largest)[1]

    def backward(self, g):
        return None, None, None
