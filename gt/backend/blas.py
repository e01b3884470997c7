"""numpy's own BLAS library, called directly for the two things numpy cannot ask it for.

numpy links a BLAS (OpenBLAS in the PyPI wheels, MKL or another in some distributions) but
exposes only the product ``a @ b``. Two kernels of that same library matter to training:

- ``axpy`` (``y += alpha * x``): the SGD update. numpy's ``y += alpha * x`` runs on one core;
  the BLAS kernel uses every thread of the BLAS pool on large vectors and one fused
  multiply-add per element (one rounding, as torch's ``add_(x, alpha=)``).
- ``gemm`` with ``beta`` (``C = alpha * A @ B + beta * C``, in place): plain gradient descent
  fused into the backward writes ``W -= lr * dY^T X`` into the weight, with no gradient
  buffer at all.

A third setting matters when numpy's BLAS is OpenBLAS built with its own threads (numpy's PyPI
wheels): how long its idle threads spin waiting for the next product before they sleep
(``spin``, below).

The library is the one numpy already loaded (found with threadpoolctl, a well-kept library
that also sets its thread count), so there is one thread pool, not two. ``find()`` returns
None where the library or its symbols cannot be found (no threadpoolctl, a BLAS whose symbol
names are unknown, no ``/proc``-style loader information): callers then take numpy's path,
which gives the same results up to rounding.
"""

import ctypes
import itertools
import os
import threading

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_PREFIXES = ("", "scipy_")
_SUFFIXES = ("", "64_", "_64")
_KERNELS = {np.dtype(np.float32): ("cblas_saxpy", "cblas_sgemm", ctypes.c_float),
            np.dtype(np.float64): ("cblas_daxpy", "cblas_dgemm", ctypes.c_double)}
_MIN_AXPY = 1 << 16        # below this the ctypes call costs more than numpy's own loop
SPIN_LOG2 = 20             # OpenBLAS's idle threads spin 2**20 cycles (about 0.4 ms), then sleep
_SPIN_SETTINGS = ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")   # OpenBLAS's own, the user's to set


class Blas:
    """The kernels of one loaded BLAS library (see the module docstring)."""

    def __init__(self, controller, symbols, int_type, products=False):
        self.controller = controller          # threadpoolctl's handle: thread count, version
        self._symbols = symbols                # dtype -> (axpy, gemm, scalar ctype, strided batch gemm or None)
        self._int = int_type
        # whether the engine hands this library its products (``gemm``), not only the fused updates:
        # a library other than numpy's own (gt/backend/mkl.py)
        self.products = products
        self.name = f"{controller.internal_api} {controller.version or ''}".strip()
        self.architecture = getattr(controller, "architecture", None)   # OpenBLAS's kernel set, e.g. "SkylakeX"
        self.brief_spin = False   # whether the library's idle threads are known to sleep soon (``spin``)

    # ---- threads -----------------------------------------------------------------------------
    def get_num_threads(self):
        return self.controller.get_num_threads()

    def set_num_threads(self, n):
        self.controller.set_num_threads(int(n))

    def spin(self, log2=SPIN_LOG2):
        """Let OpenBLAS's idle threads spin ``2**log2`` cycles before they sleep, instead of its
        default ``2**28`` (about 0.1 s). Returns what was done, in words, or None when nothing was.

        Why: after each product, OpenBLAS's helper threads spin on their cores for 0.1 s waiting
        for the next one. Through a step of a small model (benchmarks/small_decoder.py) they never
        sleep, so the other core is never free: a kernel run in two halves at once
        (numpy_halves.py) was slower than whole. With ``2**20`` cycles the decoder's step took
        144-150 ms against 154-165 ms (2-core AMD EPYC, OpenBLAS 0.3.31, alternated in one
        process), and the Pixel Transformer's steps and forward, back-to-back products that
        spinning serves, took the same time (2**18 and shorter made them 1-6% slower).

        OpenBLAS reads the setting from ``OPENBLAS_THREAD_TIMEOUT`` when it starts its threads,
        so this sets the variable, has the library read its environment again, puts the
        environment back as it was, and restarts the library's threads (they start again at the
        next product). Nothing is done when the user set ``OPENBLAS_THREAD_TIMEOUT`` or
        ``GOTO_THREAD_TIMEOUT`` (their choice stands), when the library is not OpenBLAS with
        its own threads or lacks the functions, or when another Python thread runs (it could be
        inside a product while the threads restart).

        ``brief_spin`` says afterwards whether the threads are known to sleep within ``2**log2``
        cycles (set here, or by the user's own ``OPENBLAS_THREAD_TIMEOUT``): kernels run in two
        halves only then."""
        lib = self.controller.dynlib
        functions = [getattr(lib, f, None) for f in ("openblas_read_env", "blas_thread_shutdown_", "openblas_thread_timeout")]
        if self.controller.internal_api != "openblas" or getattr(self.controller, "threading_layer", None) != "pthreads":
            return None
        if any(name in os.environ for name in _SPIN_SETTINGS):
            self.brief_spin = _timeout_at_most(log2)
            return None
        if None in functions or threading.active_count() > 1:
            return None
        read_env, restart, current = functions
        os.environ[_SPIN_SETTINGS[0]] = str(log2)
        try:
            read_env()
        finally:
            del os.environ[_SPIN_SETTINGS[0]]
        restart()
        self.brief_spin = current() == log2
        return f"OpenBLAS's idle threads spin 2**{current()} cycles before they sleep (its default: 2**28)"

    # ---- kernels -----------------------------------------------------------------------------
    def axpy(self, alpha, x, y, min_size=_MIN_AXPY):
        """``y += alpha * x`` in place; False (nothing done) unless ``x`` and ``y`` are
        C-contiguous arrays of one shape and a dtype the library has, and at least ``min_size``
        elements (0: any size, for a caller that wants the kernel's rounding on every block)."""
        kernels = self._symbols.get(y.dtype)
        if (kernels is None or x.dtype != y.dtype or x.shape != y.shape or y.size < min_size
                or not (x.flags.c_contiguous and y.flags.c_contiguous and y.flags.writeable)):
            return False
        axpy = kernels[0]
        axpy(y.size, alpha, x.ctypes.data, 1, y.ctypes.data, 1)
        return True

    def gemm_(self, c, a, b, alpha, beta=1.0):
        """``c = alpha * a @ b + beta * c`` in place for 2-D arrays; False (nothing done) when a
        layout or dtype does not fit the kernel (the caller then computes it with numpy)."""
        kernels = self._symbols.get(c.dtype)
        if kernels is None or a.dtype != c.dtype or b.dtype != c.dtype or not c.flags.writeable:
            return False
        (m, k), (k2, n) = a.shape, b.shape
        if c.shape != (m, n) or k != k2 or 0 in (m, n, k):
            return False
        if c.strides[1] != c.itemsize:                      # c column-major: c^T = b^T a^T
            if c.strides[0] != c.itemsize:
                return False
            return self.gemm_(c.T, b.T, a.T, alpha, beta)
        la, lb = _operand(a), _operand(b)
        if la is None or lb is None or np.may_share_memory(c, a) or np.may_share_memory(c, b):
            return False
        gemm = kernels[1]
        gemm(_ROW_MAJOR, la[0], lb[0], m, n, k, alpha, a.ctypes.data, la[1],
             b.ctypes.data, lb[1], beta, c.ctypes.data, c.strides[0] // c.itemsize)
        return True

    def gemm_batched_(self, c, a, b):
        """``c[i] = a[i] @ b[i]`` for 3-D arrays in one call of the library's strided batch gemm
        (a batch stride of 0 repeats one matrix); False (nothing done) when the library has no
        such kernel or a layout or dtype does not fit it."""
        kernels = self._symbols.get(c.dtype)
        if kernels is None or kernels[3] is None or a.dtype != c.dtype or b.dtype != c.dtype or not c.flags.writeable:
            return False
        (batch, m, k), (batch_b, k2, n) = a.shape, b.shape
        if c.shape != (batch, m, n) or batch_b != batch or k != k2 or 0 in (batch, m, n, k):
            return False
        size = c.itemsize
        if c.strides[2] != size or c.strides[1] < n * size or c.strides[0] < m * c.strides[1] or c.strides[1] % size:
            return False
        la, lb = _operand(a[0]), _operand(b[0])
        if (la is None or lb is None or any(x.strides[0] % size or x.strides[0] < 0 for x in (a, b, c))
                or np.may_share_memory(c, a) or np.may_share_memory(c, b)):
            return False
        kernels[3](_ROW_MAJOR, la[0], lb[0], m, n, k, 1.0, a.ctypes.data, la[1], a.strides[0] // size,
                   b.ctypes.data, lb[1], b.strides[0] // size, 0.0, c.ctypes.data, c.strides[1] // size,
                   c.strides[0] // size, batch)
        return True


def _timeout_at_most(log2):
    """Whether the user's OpenBLAS timeout (``OPENBLAS_THREAD_TIMEOUT``, as OpenBLAS reads it:
    at least 4) is at most ``log2``; False when unset or not a number."""
    try:
        return max(4, int(os.environ.get(_SPIN_SETTINGS[0], ""))) <= log2
    except ValueError:
        return False


def _operand(x):
    """(transpose flag, leading dimension) of a 2-D operand as a row-major BLAS matrix, or None
    when the kernel cannot read it in place: neither axis of unit stride, rows running backwards
    (a flipped view), or rows closer than a row's length (a broadcast row of stride 0, which a
    leading dimension cannot say: the kernel would read past the array)."""
    size = x.itemsize
    rows, cols = x.shape
    if min(x.strides) < 0 or any(s % size for s in x.strides):
        return None
    if x.strides[1] == size or cols == 1:
        ld = x.strides[0] // size if rows > 1 else cols
        return (_NO_TRANS, max(ld, 1)) if ld >= cols else None
    if x.strides[0] == size or rows == 1:
        ld = x.strides[1] // size if cols > 1 else rows
        return (_TRANS, max(ld, 1)) if ld >= rows else None
    return None


def find():
    """The ``Blas`` of the library numpy uses, or None (see the module docstring)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    np.ones((2, 2)) @ np.ones((2, 2))          # the library is loaded lazily by some builds
    try:
        controllers = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    except Exception:                          # threadpoolctl could not inspect this process
        return None
    for controller in controllers:
        found = _symbols(controller)
        if found is not None:
            return Blas(controller, *found)
    return None


def _symbols(controller):
    lib = getattr(controller, "dynlib", None)
    return None if lib is None else symbols_of(lib)


def symbols_of(lib):
    """({dtype: (axpy, gemm, scalar ctype, strided batch gemm or None)}, integer ctype) of a
    loaded CBLAS library, with their argument types set, or None where it lacks them."""
    for prefix, suffix in itertools.product(_PREFIXES, _SUFFIXES):
        # 64-bit integer arguments for the ILP64 builds (numpy's wheels: scipy_openblas64_)
        n = ctypes.c_int64 if suffix else ctypes.c_int
        table = {}
        for dtype, (axpy, gemm, scalar) in _KERNELS.items():
            f, g = (getattr(lib, f"{prefix}{name}{suffix}", None) for name in (axpy, gemm))
            if f is None or g is None:
                break
            ptr, enum = ctypes.c_void_p, ctypes.c_int
            f.argtypes = [n, scalar, ptr, n, ptr, n]
            g.argtypes = [enum, enum, enum, n, n, n, scalar, ptr, n, ptr, n, scalar, ptr, n]
            f.restype = g.restype = None
            batched = getattr(lib, f"{prefix}{gemm}_batch_strided{suffix}", None)
            if batched is not None:
                batched.argtypes = [enum, enum, enum, n, n, n, scalar, ptr, n, n, ptr, n, n, scalar, ptr, n, n, n]
                batched.restype = None
            table[dtype] = (f, g, scalar, batched)
        else:
            return table, n
    return None
