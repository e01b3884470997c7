"""Ops on complex tensors: their parts (``real``, ``imag``: views), ``conj``, ``angle``, the
real views (``view_as_real``, ``view_as_complex``) and ``complex(re, im)``.

Gradients follow torch's convention for complex numbers: a tensor's gradient is
``dL/dx + i dL/dy`` for ``z = x + i y`` (the conjugate Wirtinger derivative, doubled), so a
holomorphic ``f`` passes ``g * conj(f'(z))`` back, and a real input keeps the real part of
what reaches it (gt/autograd/function.py ``fit_grad``).

Each op's ``backward_graph`` (``create_graph=True``) writes its gradient with these ops and real
ones only, so it is marked ``complex_graph``: the recorded walk (gt/autograd/graph_walk.py) takes
complex tensors through ops so marked, and refuses them elsewhere.
"""

from gt.autograd import Function
from gt.backend import B
from gt.ops._graph import const
from gt.ops.elementwise import Where


def _complex_of(g, dtype):
    """The real array ``g`` as the complex ``dtype`` (imaginary parts 0)."""
    return B.astype(g, dtype)


def _zeros(g):
    """Constant zeros of the real tensor ``g``'s shape and dtype."""
    return const(B.zeros(tuple(g.shape), g.dtype))


class Real(Function):
    makes_view = True
    complex_graph = True

    def forward(self, z):
        self.dtype = B.dtype_of(z)
        return B.real(z)

    def backward(self, g):
        return (_complex_of(g, self.dtype),)

    def backward_graph(self, g):
        return (Complex.apply(g, _zeros(g)),)


class Imag(Function):
    makes_view = True
    complex_graph = True

    def forward(self, z):
        self.dtype = B.dtype_of(z)
        return B.imag(z)

    def backward(self, g):
        return (B.make_complex(B.zeros(tuple(g.shape), B.dtype_of(g)), g),)

    def backward_graph(self, g):
        return (Complex.apply(_zeros(g), g),)


class Conj(Function):
    _torch_name = "ConjBackward0"
    complex_graph = True

    def forward(self, z):
        return B.conj(z)

    def backward(self, g):
        return (B.conj(g),)

    def backward_graph(self, g):
        return (Conj.apply(g),)


class ViewAsReal(Function):
    makes_view = True
    complex_graph = True

    def forward(self, z):
        return B.view_as_real(z)

    def backward(self, g):
        return (B.view_as_complex(B.ascontiguous(g)),)

    def backward_graph(self, g):
        return (ViewAsComplex.apply(g.contiguous()),)


class ViewAsComplex(Function):
    makes_view = True
    complex_graph = True

    def forward(self, x):
        out = B.view_as_complex(x)
        if out is None:
            raise RuntimeError(f"view_as_complex: tensor must have a last dimension of size 2 with stride 1 "
                               f"(got shape {tuple(x.shape)}); call .contiguous() first")
        return out

    def backward(self, g):
        return (B.view_as_real(g),)

    def backward_graph(self, g):
        return (ViewAsReal.apply(g),)


class Complex(Function):
    """``re + 1j * im``; the gradients are the real and imaginary parts of ``g``."""

    complex_graph = True

    def forward(self, re, im):
        return B.make_complex(re, im)

    def backward(self, g):
        na, nb = self.needs_input_grad
        return (B.copy(B.real(g)) if na else None), (B.copy(B.imag(g)) if nb else None)

    def backward_graph(self, g):
        na, nb = self.needs_input_grad
        return (Real.apply(g) if na else None), (Imag.apply(g) if nb else None)


class Angle(Function):
    """The argument of complex ``z``; gradient ``g * i z / |z|**2`` (0 at 0), torch's."""

    complex_graph = True

    def forward(self, z):
        self.save(z)
        return B.angle(z)

    def backward(self, g):
        (z,) = self.saved
        with B.quiet_float_errors():
            size = B.abs(z)
            return (B.where(size == 0, 0, g * (z * 1j) / (size * size)),)

    def backward_graph(self, g):
        # i z g / |z|^2 from z's parts, so the recorded gradient has real ops and Complex only; at
        # z = 0 it is 0 and so is its derivative (torch's formula gives NaN there)
        z = self.inputs[0]
        re, im = Real.apply(z), Imag.apply(z)
        zero = const(B.abs(self.saved[0]) == 0)
        scale = g / Where.apply(zero, 1.0, re * re + im * im)
        return (Complex.apply(Where.apply(zero, 0.0, -im * scale), Where.apply(zero, 0.0, re * scale)),)
