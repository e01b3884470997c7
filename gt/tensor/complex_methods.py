"""Tensor methods of complex numbers: ``real`` and ``imag`` (writable views), ``conj()``,
``angle()``, ``cfloat()``/``cdouble()``, and torch's answers for a real tensor (``real`` is the
tensor itself, ``imag`` torch's error, ``conj()`` itself, ``angle()`` 0 or pi).

Where gt differs from torch: ``conj()`` of a complex tensor is a new tensor, not torch's lazy
conjugate view (so ``is_conj()`` is always False and writing into it leaves the original as it was).

Mixed into ``gt.Tensor`` through CompatMethods (gt/tensor/compat_methods.py).
"""

import math

from gt import dtypes
from gt.ops import complex_ops as cx
from gt.tensor import complex_rules  # noqa: F401  (adds the complex and Fourier ops' placement rules)


class ComplexMethods:
    __slots__ = ()

    @property
    def real(self):
        """The real part: a view of a complex tensor's memory (writes change it), the tensor
        itself for a real one (torch's answer)."""
        return cx.Real.apply(self) if self.dtype.is_complex else self

    @real.setter
    def real(self, value):
        self.real.copy_(value)

    @property
    def imag(self):
        """The imaginary part of a complex tensor, a view of its memory; RuntimeError for a real
        one, as torch."""
        if not self.dtype.is_complex:
            raise RuntimeError(f"imag is not implemented for tensors with non-complex dtypes (got {self.dtype!r}).")
        return cx.Imag.apply(self)

    @imag.setter
    def imag(self, value):
        self.imag.copy_(value)

    def conj(self):
        """The complex conjugate (a new tensor: gt has no lazy conjugate views); the tensor
        itself when real, as torch."""
        return cx.Conj.apply(self) if self.dtype.is_complex else self

    def conj_physical(self):
        """The complex conjugate, materialised (differentiable); a real tensor itself, as torch's."""
        return cx.Conj.apply(self) if self.dtype.is_complex else self

    def resolve_conj(self):
        """The tensor itself: gt's conjugates are never lazy."""
        return self

    resolve_neg = resolve_conj

    def is_conj(self):
        """False: gt's ``conj()`` materialises the conjugate (torch's is a lazy view)."""
        return False

    def is_neg(self):
        """False: gt has no lazily negated views."""
        return False

    def angle(self):
        """The argument of each element in radians: ``atan2(imag, real)`` for complex (a real
        result), pi where a real value is negative, 0 elsewhere, NaN kept (torch's; a zero
        gradient for real inputs)."""
        if self.dtype.is_complex:
            return cx.Angle.apply(self)
        x = self if self.dtype.is_floating_point else self.to(dtypes.default_float)
        values = ((x < 0).to(x.dtype) * math.pi).masked_fill(x != x, math.nan)
        # zeros that stay on the graph (x * 0 would be NaN at +-inf), so the result requires grad where x does
        return values + x.masked_fill(x.new_ones(x.shape, dtype=dtypes.bool_), 0.0)

    def __complex__(self):
        """A one-element tensor as a Python complex (``complex(t)``), as torch's."""
        return complex(self.item())

    def cfloat(self, memory_format=None):
        """This tensor as ``gt.complex64``."""
        return self.to(dtypes.complex64)

    def cdouble(self, memory_format=None):
        """This tensor as ``gt.complex128``."""
        return self.to(dtypes.complex128)
