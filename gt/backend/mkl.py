"""Intel's MKL as the numpy engine's BLAS for products, where the ``mkl`` package is installed.

Why: numpy's PyPI wheels bring OpenBLAS, whose single-precision kernels on Intel CPUs with
AVX-512 are well behind MKL's (the Pixel Transformer's embedding product, 128 x 40,000 x 256,
took 12.3 ms in numpy against 8.1 ms in MKL on a 2-core Xeon, Sapphire Rapids, two threads
each), and numpy cannot be pointed at another BLAS. Intel publishes MKL on PyPI (``pip
install mkl``, or ``pip install 'lpm[mkl]'``); its ``libmkl_rt`` is loaded here with ctypes and
the engine hands it its float32/float64 products (gt/backend/numpy_blas.py). Arrays stay numpy's.

``GT_BLAS=mkl`` asks for it (gt/config.py); numpy's own BLAS stays the default, because it was
not faster everywhere (gt/backend/numpy_blas.py, ``_products_library``, has the figures).

Beside torch: torch's CPU wheel carries its own copy of MKL inside libtorch and exports its
symbols, so in a process that loads both, the two copies resolve some of each other's functions:
their thread counts become one (``torch.set_num_threads`` sets this one's, and this one's setting
can be lost), measured with torch imported before and after. The products stay right (the test
suite passed with it), but gt's thread policy may no longer govern them. Where torch is
installed, ``GT_BACKEND=auto`` picks the torch engine on Intel CPUs with AVX-512 (MKL's kernels).

Two settings make MKL's results as reproducible as OpenBLAS's, which gt's bit-for-bit promises
rely on (resumed runs equal uninterrupted ones, a sharded product equals the whole one):

- strict conditional numerical reproducibility (``mkl_cbwr_set(AVX2 or AVX512 | STRICT)``):
  without it MKL splits long sums between threads, so a product's bits depend on how many
  threads ran it (the thread policy changes that count with the machine's load) and on how
  many rows it has (a shard's rows against the whole batch's). Strict mode gives one result
  for any thread count and row split (checked on the model's shapes; tests/test_mkl_blas.py).
  A user's own ``MKL_CBWR`` is left as it is.
- the GNU OpenMP threading layer where ``libgomp`` can be loaded: the runtime torch uses, so a
  process with both has one OpenMP thread pool, not two competing for the cores (Intel's own
  ``libiomp5`` from the ``intel-openmp`` package otherwise).
"""

import ctypes
import re
import ctypes.util
import os
import sys

from gt.backend import blas

_NAMES = ("libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so")
_LAYER_INTEL, _LAYER_GNU = 0, 3                        # MKL_THREADING_INTEL, MKL_THREADING_GNU
_CBWR_AVX2, _CBWR_AVX512, _CBWR_STRICT = 10, 12, 0x10000
_CBWR_SUCCESS = 0


def _candidates():
    """Where ``pip install mkl`` puts the library (the environment's ``lib``), then the loader's path."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(sys.executable)))):
        for name in _NAMES:
            path = os.path.join(prefix, "lib", name)
            if os.path.exists(path):
                yield path
    found = ctypes.util.find_library("mkl_rt")
    if found:
        yield found


def _gomp_loadable():
    """Whether GNU's OpenMP runtime is (or can be) loaded: torch's copy or the system's."""
    try:
        ctypes.CDLL("libgomp.so.1", mode=ctypes.RTLD_GLOBAL)
        return True
    except OSError:
        return False


def load(avx512):
    """(``blas.Blas`` over MKL's ``libmkl_rt``, a sentence saying what was set up) or (None, why
    not). ``avx512``: whether the CPU has AVX-512 (the reproducible code branch to fix)."""
    path = next(_candidates(), None)
    if path is None:
        return None, "the mkl package is not installed (pip install mkl)"
    try:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    except OSError as exc:
        return None, f"{path} could not be loaded ({exc})"
    needed = ("MKL_Set_Threading_Layer", "MKL_CBWR_Set", "MKL_Get_Max_Threads", "MKL_Set_Num_Threads")
    if any(getattr(lib, name, None) is None for name in needed):
        return None, f"{path} lacks MKL's service functions"
    layer = _LAYER_GNU if _gomp_loadable() else _LAYER_INTEL
    lib.MKL_Set_Threading_Layer(layer)                   # before the first MKL call, or it has no effect
    if "MKL_CBWR" not in os.environ:
        branch = (_CBWR_AVX512 if avx512 else _CBWR_AVX2) | _CBWR_STRICT
        if lib.MKL_CBWR_Set(branch) != _CBWR_SUCCESS:
            return None, "MKL refused its reproducible mode on this CPU"
    found = blas.symbols_of(lib)
    if found is None:
        return None, f"{path} lacks the CBLAS kernels"
    controller = _Controller(lib, path)
    # MKL's own count, set explicitly: left unset, MKL follows OpenMP's, which torch.set_num_threads
    # changes behind the thread policy's back (one OpenMP runtime serves both)
    controller.set_num_threads(controller.get_num_threads())
    library = blas.Blas(controller, *found, products=True)
    layer_name = "GNU OpenMP" if layer == _LAYER_GNU else "Intel OpenMP"
    return library, (f"products in MKL ({path}; {layer_name} threads, {controller.get_num_threads()} of them; "
                     "strict reproducible mode)")


class _Controller:
    """What ``blas.Blas`` asks of a library's thread pool, for MKL (threadpoolctl's role for numpy's)."""

    internal_api = "mkl"
    threading_layer = "openmp"
    architecture = None

    def __init__(self, lib, path):
        self.dynlib = lib
        self.filepath = path
        lib.MKL_Get_Max_Threads.restype = ctypes.c_int
        version = ctypes.create_string_buffer(256)
        getter = getattr(lib, "MKL_Get_Version_String", None)
        if getter is not None:
            getter(version, len(version))
        # "Intel(R) oneAPI Math Kernel Library Version 2026.2-Product Build 20260915 for ..."
        found = re.search(r"Version ([0-9][0-9.]*)", version.value.decode(errors="replace"))
        self.version = found.group(1).rstrip(".") if found else None

    def get_num_threads(self):
        return self.dynlib.MKL_Get_Max_Threads()

    def set_num_threads(self, n):
        self.dynlib.MKL_Set_Num_Threads(int(n))
