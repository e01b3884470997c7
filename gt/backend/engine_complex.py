"""The complex-number primitives of the Engine interface: parts and views of complex arrays, and
the discrete Fourier transforms (``gt.fft``).

Complex arrays are the engines' own (numpy's and torch's complex64/complex128). A real array
passed where a complex one is read is its own real part; ``conj`` of a real array is the array
itself (no copy: the gradient formulas call it on every operand).
"""

import abc


class ComplexPrimitives(abc.ABC):
    @abc.abstractmethod
    def conj(self, x):
        """The complex conjugate of ``x`` (an array or a Python number), ``x`` itself when real."""
        raise NotImplementedError

    @abc.abstractmethod
    def real(self, x):
        """The real part of the complex array ``x``, a writable view of its memory."""
        raise NotImplementedError

    @abc.abstractmethod
    def imag(self, x):
        """The imaginary part of the complex array ``x``, a writable view of its memory."""
        raise NotImplementedError

    @abc.abstractmethod
    def view_as_real(self, x):
        """The complex array ``x`` as a real view of shape ``x.shape + (2,)`` (real, imaginary)."""
        raise NotImplementedError

    @abc.abstractmethod
    def view_as_complex(self, x):
        """The real array ``x`` (last axis of 2, contiguous) as a complex view of ``x.shape[:-1]``,
        or None where its memory cannot be read so."""
        raise NotImplementedError

    @abc.abstractmethod
    def make_complex(self, re, im):
        """``re + 1j * im`` (broadcast) in the complex dtype of their real dtype."""
        raise NotImplementedError

    @abc.abstractmethod
    def angle(self, x):
        """The argument of each complex element, in the real dtype of its parts."""
        raise NotImplementedError

    @abc.abstractmethod
    def eig(self, x):
        """``(eigenvalues (..., n), eigenvectors (..., n, n) as columns)`` of the square matrices
        ``x``, both complex (complex64 for float32/complex64 input), as LAPACK's geev gives them."""
        raise NotImplementedError

    @abc.abstractmethod
    def fft(self, kind, x, sizes, axes, norm):
        """The transform ``kind`` (``"fft"``, ``"ifft"``, ``"rfft"``, ``"irfft"``, ``"hfft"``,
        ``"ihfft"``, or one of ``"fftn"``, ``"ifftn"``, ``"rfftn"``, ``"irfftn"``) of ``x`` over
        ``axes`` (a tuple; one axis for the 1-D kinds) with output lengths ``sizes`` (a tuple of
        ints or None each), ``norm`` one of "backward", "ortho", "forward". Float32 (complex64)
        input gives complex64 (float32 for irfft/hfft), float64 complex128."""
        raise NotImplementedError
