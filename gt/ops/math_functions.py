"""torch's elementwise math functions, ``prod`` and ``cumprod``, each with torch's gradient.

The values come from one engine primitive, ``B.elementwise_math(name, ...)`` (its fixed set of
names: gt/backend/engine_math.py), so one op class serves every unary function and one every
binary one; each function's derivative sits in a table beside the forward that uses it. The
derivatives are torch's formulas, written where torch's lose accuracy to be exact instead:
``1 / sqrt((1 - x) (1 + x))`` for asin (``1 - x*x`` cancels near 1), a series for sinc's near 0.

Outside a function's domain the value and gradient are NaN and at its poles inf, as torch's,
and never a numpy warning: forward and backward run inside ``B.quiet_float_errors()``.
"""

import math

from gt.autograd import Function
from gt.backend import B
from gt.ops._graph import const, expand_back, mask_like, result
from gt.ops.elementwise import Where
from gt.ops.shape import Cat
from gt.ops.sorting import Cumsum

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_HALF_SQRT_PI = 0.5 * math.sqrt(math.pi)


def _f(name, x):
    return B.elementwise_math(name, x)


# d/du sin(u) / u = sum over k >= 1 of (-1)**k 2k u**(2k - 1) / (2k + 1)!: ten terms reach float64's
# precision for |u| < 1 (the next is below 1e-20 of the sum)
_SINC_SERIES = tuple((-1) ** k * 2 * k / math.factorial(2 * k + 1) for k in range(10, 0, -1))


def _sinc_derivative(x, y):
    """d/dx sin(pi x) / (pi x) = pi (u cos u - sin u) / u**2 at u = pi x, 0 at 0 (torch's). The
    difference cancels for small u (torch's float32 gradient is 0.3% off at x = 0.01), so below
    |u| = 1 the Taylor series, and from there the formula (a few units of rounding off)."""
    u = x * math.pi
    u2 = u * u
    series = _SINC_SERIES[0]
    for c in _SINC_SERIES[1:]:
        series = series * u2 + c
    small = B.abs(u) < 1
    safe = B.where(small, 1, u)                  # no 0 / 0 where the series is used
    formula = (safe * _f("cos", safe) - _f("sin", safe)) / (safe * safe)
    return B.where(small, series * u, formula) * math.pi


# name -> dy/dx from the input x and the output y, torch's derivative of each function
_DERIVATIVES = {
    "sin": lambda x, y: _f("cos", x),
    "cos": lambda x, y: -_f("sin", x),
    "tan": lambda x, y: 1 + y * y,
    "asin": lambda x, y: 1 / B.sqrt((1 - x) * (1 + x)),
    "acos": lambda x, y: -1 / B.sqrt((1 - x) * (1 + x)),
    "atan": lambda x, y: 1 / (1 + x * x),
    "sinh": lambda x, y: _f("cosh", x),
    "cosh": lambda x, y: _f("sinh", x),
    "asinh": lambda x, y: 1 / B.sqrt(x * x + 1),
    "acosh": lambda x, y: 1 / B.sqrt((x - 1) * (x + 1) + 0.0),     # + 0.0: -0 at x = -1 is +0 (inf, as torch)
    "atanh": lambda x, y: 1 / ((1 - x) * (1 + x)),
    "log1p": lambda x, y: 1 / (1 + x),
    "expm1": lambda x, y: y + 1,
    "exp2": lambda x, y: y * math.log(2.0),
    "log2": lambda x, y: 1 / (x * math.log(2.0)),
    "log10": lambda x, y: 1 / (x * math.log(10.0)),
    "erf": lambda x, y: _TWO_OVER_SQRT_PI * B.exp(-x * x),
    "erfc": lambda x, y: -_TWO_OVER_SQRT_PI * B.exp(-x * x),
    "erfinv": lambda x, y: _HALF_SQRT_PI * B.exp(_f("erfinv", x) ** 2),   # from x, as torch (it saves x)
    "sinc": _sinc_derivative,
}


def _m(name, x):
    return MathFunction.apply(x, name)


def _sinc_derivative_graph(x):
    """``_sinc_derivative`` with recorded ops: the same series below |u| = 1, the formula above."""
    u = x * math.pi
    u2 = u * u
    series = _SINC_SERIES[0]
    for c in _SINC_SERIES[1:]:
        series = series * u2 + c
    small = const(B.abs(x._array) * math.pi < 1)
    safe = Where.apply(small, 1.0, u)
    formula = (safe * _m("cos", safe) - _m("sin", safe)) / (safe * safe)
    return Where.apply(small, series * u, formula) * math.pi


# name -> f'(x) written with recorded ops on the tensor x, for create_graph=True; for the functions
# whose derivative reads the result (``reads`` "y") a function of the result y, as torch's
_GRAPH_DERIVATIVES = {
    "sin": lambda x: _m("cos", x),
    "cos": lambda x: -_m("sin", x),
    "tan": lambda y: 1 + y * y,
    "asin": lambda x: 1 / ((1 - x) * (1 + x)).sqrt(),
    "acos": lambda x: -1 / ((1 - x) * (1 + x)).sqrt(),
    "atan": lambda x: 1 / (1 + x * x),
    "sinh": lambda x: _m("cosh", x),
    "cosh": lambda x: _m("sinh", x),
    "asinh": lambda x: 1 / (x * x + 1).sqrt(),
    "acosh": lambda x: 1 / ((x - 1) * (x + 1)).sqrt(),
    "atanh": lambda x: 1 / ((1 - x) * (1 + x)),
    "log1p": lambda x: 1 / (1 + x),
    "expm1": lambda y: y + 1,
    "exp2": lambda y: y * math.log(2.0),
    "log2": lambda x: 1 / (x * math.log(2.0)),
    "log10": lambda x: 1 / (x * math.log(10.0)),
    "erf": lambda x: _TWO_OVER_SQRT_PI * (-x * x).exp(),
    "erfc": lambda x: -_TWO_OVER_SQRT_PI * (-x * x).exp(),
    "erfinv": lambda x: _HALF_SQRT_PI * (_m("erfinv", x) ** 2).exp(),
    "sinc": _sinc_derivative_graph,
}


class MathFunction(Function):
    """``y = f(x)`` elementwise for ``f`` the function ``name`` of ``_DERIVATIVES``; the gradient
    is ``g * f'(x)``. A subclass computes another family with its own tables (``_values``,
    ``_tables``: gt/ops/special_functions.py).

    Only what the derivative reads is saved, as torch saves it (``reads``: ``"y"`` the output,
    ``"xy"`` both, else the input), so that an in-place change of the other is no error."""
    complex_graph = "holomorphic"

    reads = {"tan": "y", "expm1": "y", "exp2": "y"}
    # torch's node of each function: ``log1p`` -> Log1PBackward0, ``log_ndtr`` -> LogNdtrBackward0
    _torch_name = property(lambda self: self.fn.title().replace("_", "") + "Backward0")

    def _values(self, name, x):
        return B.elementwise_math(name, x)

    def _tables(self):
        """``(derivatives on arrays, recorded derivatives on tensors)``, by function name."""
        return _DERIVATIVES, _GRAPH_DERIVATIVES

    def forward(self, x, name):
        self.fn = name
        with B.quiet_float_errors():
            y = self._values(name, x)
        reads = self.reads.get(name, "x")
        self.save(x if reads != "y" else None, y if reads != "x" else None)
        return y

    def backward(self, g):
        x, y = self.saved
        with B.quiet_float_errors():
            return g * B.conj(self._tables()[0][self.fn](x, y)), None

    @property
    def records_graph(self):
        """Whether ``backward_graph`` can record this function's gradient."""
        return self.fn in self._tables()[1]

    def backward_graph(self, g):
        # the result as torch's formula reads it (x may have changed in place since the forward)
        of = result(self, self.saved[1]) if self.reads.get(self.fn) == "y" else self.inputs[0]
        with B.quiet_float_errors():
            return g * self._tables()[1][self.fn](of), None


class Logit(Function):
    """``log(z / (1 - z))`` with ``z`` the input clamped to ``[eps, 1 - eps]`` (None: not
    clamped). The gradient is torch's: ``1 / (x (1 - x))`` inside the bounds and 0 outside
    with ``eps``; without it, NaN outside [0, 1]."""

    def forward(self, x, eps=None):
        self.eps = eps
        self.save(x)
        with B.quiet_float_errors():
            return B.elementwise_math("logit", x if eps is None else B.clip(x, eps, 1 - eps))

    def backward(self, g):
        (x,) = self.saved
        lo, hi = (0, 1) if self.eps is None else (self.eps, 1 - self.eps)
        with B.quiet_float_errors():
            outside = (x < lo) | (x > hi)                # (NaN is neither: its gradient is NaN)
            return (B.where(outside, math.nan if self.eps is None else 0, g / (x * (1 - x))),)

    def backward_graph(self, g):
        (x,) = self.saved
        lo, hi = (0, 1) if self.eps is None else (self.eps, 1 - self.eps)
        with B.quiet_float_errors():
            outside = (x < lo) | (x > hi)
            inside = const(B.logical_not(outside))
            safe = Where.apply(inside, self.inputs[0], 0.5)      # no 0 in the denominator outside
            scale = B.where(outside, math.nan if self.eps is None else 0.0, 1.0)
            return (g * mask_like(g, scale) / (safe * (1 - safe)),)


def _atan2_grads(g, a, b, out):
    # (b / h) / h: no overflow or underflow of a*a + b*b (where torch's gradient turns to 0)
    h = B.elementwise_math("hypot", a, b)
    h = B.where(h == 0, 1, h)        # the origin, where a = b = 0: gradients 0, as torch's
    return g * ((b / h) / h), g * (-(a / h) / h)


def _xlogy_grads(g, a, b, out):
    # d/dx x log(y) = log(y), taken as 0 where x is 0 and y <= 0 (torch's choice); d/dy = x / y
    dx = B.where((a == 0) & (b <= 0), 0, B.elementwise_math("xlogy", g, b))
    return dx, g * a / b


# name -> (gradient of a, gradient of b) from the output gradient g, the inputs and the output
_BINARY_GRADIENTS = {
    "atan2": _atan2_grads,
    "hypot": lambda g, a, b, out: (None if a is None else g * a / out, None if b is None else g * b / out),
    "logaddexp": lambda g, a, b, out: (g * B.sigmoid(a - b), g * B.sigmoid(b - a)),
    "xlogy": _xlogy_grads,
}


class BinaryMathFunction(Function):
    """``out = f(a, b)`` elementwise (broadcasting) for ``f`` the function ``name`` of
    ``_BINARY_GRADIENTS``; gradients in both inputs."""

    def forward(self, a, b, name):
        self.fn = name
        with B.quiet_float_errors():
            out = B.elementwise_math(name, a, b)
        # what torch's formulas read, so an in-place change of the rest after the forward is accepted:
        # hypot each input for its own gradient and the result; the others both inputs, no result
        if name == "hypot":
            na, nb = self.needs_input_grad[:2]
            self.save(a if na else None, b if nb else None, out)
        else:
            self.save(a, b, None)
        return out

    def backward(self, g):
        a, b, out = self.saved
        with B.quiet_float_errors():
            ga, gb = _BINARY_GRADIENTS[self.fn](g, a, b, out)
        na, nb = self.needs_input_grad[:2]
        return (ga if na else None), (gb if nb else None), None

    @property
    def records_graph(self):
        """Whether ``backward_graph`` can record this function's gradients."""
        return self.fn in _BINARY_GRAPH

    def backward_graph(self, g):
        a, b = self.inputs[:2]
        with B.quiet_float_errors():
            ga, gb = _BINARY_GRAPH[self.fn](g, a, b, BinaryMathFunction.apply(a, b, self.fn))
        na, nb = self.needs_input_grad[:2]
        return (ga if na else None), (gb if nb else None), None


def _arr(v):
    """The engine array of a tensor input (a Python number as it is)."""
    return getattr(v, "_array", v)


def _atan2_graph(g, a, b, out):
    h = BinaryMathFunction.apply(a, b, "hypot")
    h = h + mask_like(g, B.asarray((_arr(a) == 0) & (_arr(b) == 0)))   # the origin: gradients 0
    return g * ((b / h) / h), g * (-(a / h) / h)


# name -> (gradient of a, gradient of b) with recorded ops, for create_graph=True (xlogy's
# special case at a == 0, b <= 0 is a constant mask)
_BINARY_GRAPH = {
    "atan2": _atan2_graph,
    "hypot": lambda g, a, b, out: (g * a / out, g * b / out),
    "logaddexp": lambda g, a, b, out: (g * (a - b).sigmoid(), g * (b - a).sigmoid()),
    "xlogy": lambda g, a, b, out: (g * b.log() * mask_like(g, B.asarray(~((_arr(a) == 0) & (_arr(b) <= 0)))),
                                   g * a / b),
}


def _reversed(x, axis):
    return B.getitem(x, (slice(None),) * axis + (slice(None, None, -1),))


def _shifted(x, axis, ones_first):
    """``x`` moved one step along ``axis``, a 1 entering at the start (``ones_first``) or the end:
    inclusive running products made exclusive."""
    n = x.shape[axis]
    head = (slice(None),) * axis
    one = B.ones(tuple(x.shape[:axis]) + (1,) + tuple(x.shape[axis + 1:]), B.dtype_of(x))
    if ones_first:
        return B.concatenate([one, B.getitem(x, head + (slice(0, n - 1),))], axis)
    return B.concatenate([B.getitem(x, head + (slice(1, n),)), one], axis)


class Prod(Function):
    """The product over ``axis`` (None or a sorted tuple, gt.ops._shapes.normalize_axes). The
    gradient of each element is the product of the others, made from running products from both
    ends (no division: exact with any number of zeros, as torch's)."""
    complex_graph = "holomorphic"
    _torch_name = property(lambda self: "ProdBackward0" if self.axis is None else "ProdBackward1")

    def forward(self, x, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims
        with B.quiet_float_errors():             # overflow to inf, as torch, silently
            out = B.prod(x, axis=axis, keepdims=True)
        self.save(x, out)      # the result for its version only: torch saves it, so changing it in place raises
        if keepdims:
            return out
        return B.reshape(out, tuple(n for i, n in enumerate(x.shape) if axis is not None and i not in axis))

    def backward(self, g):
        x = self.saved[0]
        shape = tuple(x.shape)
        axes = tuple(range(len(shape))) if self.axis is None else self.axis
        kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
        g = B.reshape(g, kept)
        if 0 in shape:
            return (B.zeros(shape, B.dtype_of(x)),)
        # the reduced axes last and joined into one of length n: (..., n)
        rest = tuple(i for i in range(len(shape)) if i not in axes)
        order = rest + axes
        flat = B.reshape(B.transpose(x, order), tuple(shape[i] for i in rest) + (-1,))
        last = len(rest)
        with B.quiet_float_errors():
            before = _shifted(B.cumprod(flat, last), last, True)                       # x[0] ... x[i-1]
            after = _reversed(_shifted(B.cumprod(_reversed(flat, last), last), last, True), last)  # x[i+1] ...
            others = B.reshape(before * after, tuple(shape[i] for i in order))
        inverse = tuple(order.index(i) for i in range(len(shape)))
        return (g * B.conj(B.transpose(others, inverse)),)

    def backward_graph(self, g):
        x = self.inputs[0]
        shape = tuple(x.shape)
        if 0 in shape:
            return (const(B.zeros(shape, B.dtype_of(self.saved[0]))),)
        g = expand_back(g, shape, self.axis, self.keepdims)
        if not B.any(self.saved[0] == 0):    # the product over each factor: the cheaper form
            return (g * (Prod.apply(x, self.axis, True) / x),)
        # with a zero: the products of the factors before and after each one, as the backward does
        axes = tuple(range(len(shape))) if self.axis is None else self.axis
        rest = tuple(i for i in range(len(shape)) if i not in axes)
        order = rest + axes
        flat = x.permute(order).reshape(tuple(shape[i] for i in rest) + (-1,))
        before = _exclusive_cumprod(flat)
        after = _exclusive_cumprod(flat.flip(-1)).flip(-1)
        others = (before * after).reshape(tuple(shape[i] for i in order))
        return (g * others.permute(tuple(order.index(i) for i in range(len(shape)))),)


def _exclusive_cumprod(x):
    """Recorded running products along the last axis of the entries before each one (1 first)."""
    n = x.shape[-1]
    one = const(B.ones(tuple(x.shape[:-1]) + (1,), B.dtype_of(x._data)))
    return Cat.apply(one, x[..., :n - 1].cumprod(-1), axis=x.ndim - 1)


class Cumprod(Function):
    """Running products along ``axis``. Before the first zero of a slice the gradient is torch's
    ``reversed_cumsum(g * out) / x``; at the first zero it is the product of the entries before
    it times the sum of ``g * (running product after it)`` up to the second zero; after the first
    zero it is 0 (every product there holds that zero and the element itself)."""
    complex_graph = "holomorphic"

    def forward(self, x, axis):
        self.axis = axis
        with B.quiet_float_errors():
            out = B.cumprod(x, axis)
        self.save(x, out)
        return out

    def backward(self, g):
        x, out = self.saved
        ax = self.axis
        if x.shape[ax] <= 1:
            return (g,)
        if B.dtype_of(x).is_complex:     # the conjugate derivative (torch's convention): of conjugated factors
            x, out = B.conj(x), B.conj(out)
        zeros_so_far = B.cumsum(x == 0, ax)
        before = zeros_so_far == 0
        with B.quiet_float_errors():
            kept = B.where(before, g * out, 0)
            grad = B.where(before, _reversed(B.cumsum(_reversed(kept, ax), ax), ax) / B.where(before, x, 1), 0)
            if B.all(before):
                return (grad,)
            first = (x == 0) & (zeros_so_far == 1)
            between = (zeros_so_far == 1) & B.logical_not(first)
            after_zero = B.cumprod(B.where(between, x, 1), ax)        # x[z+1] ... x[j] for j up to the 2nd zero
            total = B.sum(B.where(zeros_so_far == 1, g * after_zero, 0), axis=ax, keepdims=True)
            head = B.prod(B.where(before, x, 1), axis=ax, keepdims=True)    # x[0] ... x[z-1]
            return (B.where(first, total * head, grad),)

    def backward_graph(self, g):
        x, ax = self.inputs[0], self.axis
        if not B.any(self.saved[0] == 0):
            # torch's reversed_cumsum(g * out) / x, recorded
            return (Cumsum.apply((g * Cumprod.apply(x, ax)).flip(ax), ax).flip(ax) / x,)
        # with a zero, no division: d out_j / d x_i = prod(x_k, k <= j, k != i) for j >= i, that is
        # (the entries before i) * (the entries from i + 1 to j), the latter as an (n, n) table per
        # slice (memory n^2 along the axis, only for inputs holding a zero)
        xm, gm = x.movedim(ax, -1), g.movedim(ax, -1)
        n = xm.shape[-1]
        dtype = B.dtype_of(self.saved[0])
        index = B.arange(0, n, 1, "int64")
        i, j = B.reshape(index, (n, 1)), B.reshape(index, (1, n))
        spans = Where.apply(j > i, xm.unsqueeze(-2).expand(tuple(xm.shape[:-1]) + (n, n)),
                            1.0).cumprod(-1)                            # prod(x_k, i < k <= j) for j > i
        upper = const(B.astype(j >= i, dtype))
        tail = ((spans * upper) * gm.unsqueeze(-2)).sum(-1)            # sum_j g_j prod(x_k, i < k <= j)
        return ((_exclusive_cumprod(xm) * tail).movedim(-1, ax),)
