"""``ExactValue``: a result whose value is computed exactly outside the graph (``fmod``,
``copysign``, ``frexp``'s mantissa, ``nextafter``) and whose gradient is that of a simpler
expression with the same derivative. The expression alone would round differently (``a - b *
trunc(a / b)`` is not ``fmod``'s exact remainder); the exact value alone would have no gradient."""

from gt.autograd import Function
from gt.autograd.function import OpName
from gt.backend import B
from gt.ops._graph import const


class ExactValue(Function):
    """``apply(expr, value, *zero_grad_inputs)``: ``value``'s values, ``expr``'s gradient (the
    upstream gradient passes to ``expr`` unchanged); ``value`` gets none, and each of
    ``zero_grad_inputs`` a gradient of zeros, as torch defines for the inputs a function's value
    depends on only piecewise constantly (``copysign``'s ``other``, ``nextafter``'s ``other``)."""

    def forward(self, expr, value, *zero_grad_inputs):
        self.save(tuple(B.dtype_of(z) if B.is_array(z) else None for z in zero_grad_inputs))
        return value

    def _zeros(self, g, wrap):
        needs = self.needs_input_grad[2:]
        return tuple(wrap(B.zeros(tuple(g.shape), dt)) if need and dt is not None else None
                     for need, dt in zip(needs, self.saved[0]))

    def backward(self, g):
        return (g if self.needs_input_grad[0] else None, None) + self._zeros(g, lambda z: z)

    def backward_graph(self, g):
        return (g if self.needs_input_grad[0] else None, None) + self._zeros(g, const)


class FirstOrderOnly(Function):
    """``x`` itself, for a result whose recorded gradient is right to first order only (its
    terms treat some factors as constants: ``index_reduce(..., "prod")``). A second derivative
    through it (``create_graph=True``) is refused by name rather than computed wrong."""

    records_graph = False

    def __init__(self, what="this op"):
        self.what = what

    @property
    def name(self):
        return OpName(self.what, type(self).__name__ + "Backward0")

    def forward(self, x, what):
        self.what = what
        return x

    def backward(self, g):
        return (g, None)

    def backward_graph(self, g):      # never called: records_graph is False
        raise NotImplementedError(self.what)


class NoDerivative(Function):
    """``x`` itself, recorded with a backward that raises as torch's ``NotImplemented`` node does:
    the ``out=`` of a torch composite whose out-variant has no derivative (``softmax``, the
    ``*_copy`` views) carries a grad_fn, and a backward through it fails naming the aten op."""

    @property
    def name(self):
        return OpName("NotImplemented", "torch::autograd::NotImplemented")     # torch's name()

    def forward(self, x, aten):
        self.aten = aten
        return x

    def backward(self, g):
        raise RuntimeError(f"derivative for {self.aten} is not implemented")

    backward_graph = backward
