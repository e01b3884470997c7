"""The numpy engine's complex primitives (engine_complex.py): numpy's complex arrays, and the
Fourier transforms by scipy.fft where it is installed (float32 in float32), else numpy.fft
(computed in float64, then cast back to the input's precision)."""

import numpy as np

_fft_lib = None    # scipy.fft or numpy.fft, chosen at the first transform


def _fft_module():
    """scipy.fft where installed (float32 natively, and faster), else numpy.fft. Imported at the
    first transform, not with the engine: scipy.fft brings scipy.special, numpy.testing and more,
    which would double the cost of ``import gt`` and a first tensor."""
    global _fft_lib
    if _fft_lib is None:
        try:
            import scipy.fft as lib
        except ImportError:       # pragma: no cover - numpy's own
            lib = np.fft
        _fft_lib = lib
    return _fft_lib

_ONE_D = {"fft", "ifft", "rfft", "irfft", "hfft", "ihfft"}
_REAL_OUT = {"irfft", "hfft", "irfftn"}


class NumpyComplex:
    def conj(self, x):
        if isinstance(x, complex):
            return x.conjugate()
        return x.conj() if getattr(x, "dtype", None) is not None and x.dtype.kind == "c" else x

    def real(self, x):
        return x.real

    def imag(self, x):
        return x.imag

    def view_as_real(self, x):
        # a numpy scalar (a 0-d result's gradient may be one) has no memory to view: its ``real`` is a
        # copy, and strides past it read what lies beyond (the imaginary part came back 0)
        x = np.asarray(x)
        part = x.real
        return np.lib.stride_tricks.as_strided(part, shape=x.shape + (2,), strides=x.strides + (part.itemsize,),
                                               writeable=x.flags.writeable)

    def view_as_complex(self, x):
        if x.ndim == 0 or x.shape[-1] != 2 or x.strides[-1] != x.itemsize:
            return None
        return x.view(np.complex64 if x.dtype == np.float32 else np.complex128)[..., 0]

    def make_complex(self, re, im):
        re, im = np.asarray(re), np.asarray(im)
        out = np.empty(np.broadcast_shapes(re.shape, im.shape),
                       np.complex64 if np.result_type(re, im) == np.float32 else np.complex128)
        out.real, out.imag = re, im
        return out

    def angle(self, x):
        return np.asarray(np.angle(x))

    def eig(self, x):
        w, v = np.linalg.eig(x)
        dtype = np.complex64 if x.dtype in (np.float32, np.complex64) else np.complex128
        return w.astype(dtype), v.astype(dtype)    # numpy gives real results where they are

    def fft(self, kind, x, sizes, axes, norm):
        single = x.dtype in (np.float32, np.complex64, np.float16)
        lib = _fft_module()
        if kind in _ONE_D:
            out = getattr(lib, kind)(x, n=sizes[0], axis=axes[0], norm=norm)
        else:
            s = None if all(n is None for n in sizes) else [x.shape[a] if n is None else n
                                                                for a, n in zip(axes, sizes)]
            out = getattr(lib, kind)(x, s=s, axes=axes, norm=norm)
        if kind in _REAL_OUT or kind == "hfft":
            return np.ascontiguousarray(out, np.float32 if single else np.float64)
        return np.ascontiguousarray(out, np.complex64 if single else np.complex128)
