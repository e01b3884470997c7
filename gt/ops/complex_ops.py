"""Ops on complex tensors: their parts (``real``, ``imag``: views), ``conj``, ``angle``, the
real views (``view_as_real``, ``view_as_complex``) and ``complex(re, im)``.

Gradients follow torch's convention for complex numbers: a tensor's gradient is
``dL/dx + i dL/dy`` for ``z = x + i y`` (the conjugate Wirtinger derivative, doubled), so a
holomorphic ``f`` passes ``g * conj(f'(z))`` back, and a real input keeps the real part of
what reaches it (gt/autograd/function.py ``fit_grad``).
"""

from gt.autograd import Function
from gt.backend import B


def _complex_of(g, dtype):
    """The real array ``g`` as the complex ``dtype`` (imaginary parts 0)."""
    return B.astype(g, dtype)


class Real(Function):
    makes_view = True

    def forward(self, z):
        self.dtype = B.dtype_of(z)
        return B.real(z)

    def backward(self, g):
        return (_complex_of(g, self.dtype),)


class Imag(Function):
    makes_view = True

    def forward(self, z):
        self.dtype = B.dtype_of(z)
        return B.imag(z)

    def backward(self, g):
        return (B.make_complex(B.zeros(tuple(g.shape), B.dtype_of(g)), g),)


class Conj(Function):
    _torch_name = "ConjBackward0"

    def forward(self, z):
        return B.conj(z)

    def backward(self, g):
        return (B.conj(g),)


class ViewAsReal(Function):
    makes_view = True

    def forward(self, z):
        return B.view_as_real(z)

    def backward(self, g):
        return (B.view_as_complex(B.ascontiguous(g)),)


class ViewAsComplex(Function):
    makes_view = True

    def forward(self, x):
        out = B.view_as_complex(x)
        if out is None:
            raise RuntimeError(f"view_as_complex: tensor must have a last dimension of size 2 with stride 1 "
                               f"(got shape {tuple(x.shape)}); call .contiguous() first")
        return out

    def backward(self, g):
        return (B.view_as_real(g),)


class Complex(Function):
    """``re + 1j * im``; the gradients are the real and imaginary parts of ``g``."""

    def forward(self, re, im):
        return B.make_complex(re, im)

    def backward(self, g):
        na, nb = self.needs_input_grad
        return (B.copy(B.real(g)) if na else None), (B.copy(B.imag(g)) if nb else None)


class Angle(Function):
    """The argument of complex ``z``; gradient ``g * i z / |z|**2`` (0 at 0), torch's."""

    def forward(self, z):
        self.save(z)
        return B.angle(z)

    def backward(self, g):
        (z,) = self.saved
        with B.quiet_float_errors():
            size = B.abs(z)
            return (B.where(size == 0, 0, g * (z * 1j) / (size * size)),)
