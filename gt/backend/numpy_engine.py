"""The numpy engine: gt's default array engine, on the CPU. Arrays are plain ``numpy.ndarray``. Every primitive of the ``Engine`` interface (engine.py) is a
method here, the optional fast paths included: a cache of large arrays' memory (numpy_block_cache.py),
a blocked fused update, and fused layer norm and attention kernels (numpy_kernels.py).
"""

import contextlib
import sys

import numpy as np

from gt import dtypes
from gt.backend.engine import Engine
from gt.backend.numpy_blas import NumpyBlas, add_rows
from gt.backend.numpy_block_cache import BlockCache
from gt.backend.numpy_gelu import erf as _erf, gelu_with_grad as _gelu_with_grad
from gt.backend.numpy_kernels import FLOATS, NumpyKernels, array_sum
from gt.backend.numpy_layouts import row_major, torch_layout
from gt.backend.numpy_math import NumpyMath
from gt.backend.numpy_scatter import NumpyScatter
from gt.backend.numpy_sorting import NumpySorting
from gt.backend.numpy_special import NumpySpecial
from gt.backend.numpy_linalg import NumpyLinalg
from gt.backend.numpy_complex import NumpyComplex
from gt.backend.numpy_windows import NumpyWindows, stepped, torch_view
from gt.backend.print_options import format_array
from gt.backend import numpy_python_data as python_data, numpy_shared, numpy_sparse, numpy_ties, torch_ranges

_NATIVE = {
    dtypes.float32: np.float32,
    dtypes.float64: np.float64,
    dtypes.int64: np.int64,
    dtypes.int32: np.int32, dtypes.int16: np.int16, dtypes.int8: np.int8, dtypes.uint8: np.uint8,
    dtypes.uint16: np.uint16, dtypes.uint32: np.uint32, dtypes.uint64: np.uint64, dtypes.bool_: np.bool_,
    dtypes.float16: np.float16, dtypes.complex64: np.complex64, dtypes.complex128: np.complex128,
}
_FROM_NATIVE = {np.dtype(v): k for k, v in _NATIVE.items()}


class NumpyEngine(NumpyKernels, NumpyBlas, NumpySorting, NumpyWindows, NumpyScatter, NumpyMath, NumpySpecial,
                  NumpyLinalg, NumpyComplex, numpy_sparse.NumpySparse, numpy_shared.NumpyShared, Engine):
    name = "numpy"
    device = "cpu"

    def __init__(self):
        self.rng = np.random.default_rng()
        self.blocks = BlockCache()   # large arrays' memory, kept for the next ones (numpy_block_cache.py)
        self._scratch = {}       # dtype -> the block buffer of add_scaled_
        self._blas = None        # numpy's BLAS library (gt/backend/blas.py), found on first use
        self._swap = None        # whether a Linear product may swap its sides (NumpyBlas.linear)
        self._threads = None     # its ThreadPolicy
        self._ones, self._limits = {}, {}   # NumpyKernels': constant vectors (gemv's ones, ReLU's zeros), causal limits
        probe = np.empty(0)      # held by this one local only: what recycle() sees for a sole owner
        self._sole_refs = self.recycle(probe, _count=True)

    # ---- dtypes and conversion -------------------------------------------------
    def native_dtype(self, dtype):
        dtype = dtypes.to_dtype(dtype)
        if dtype not in _NATIVE:
            raise TypeError(f"dtype {dtype!r} is not supported by the numpy engine")
        return _NATIVE[dtype]

    def dtype_of(self, arr):
        try:
            return _FROM_NATIVE[arr.dtype]
        except KeyError:
            raise TypeError(f"unsupported array dtype {arr.dtype}: expected one of gt's (uint8 ... complex128)") from None

    def is_array(self, value):
        return isinstance(value, np.ndarray)

    def numel(self, arr):
        return arr.size

    # ---- devices: the host is the only one --------------------------------------------
    supports_bfloat16 = False

    @contextlib.contextmanager
    def on_device(self, device):
        yield

    def to_device(self, arr, device):
        return arr

    # ---- version counters (gt/autograd/versions.py) ------------------------------------------
    def untracked_alias(self, arr):
        # a memoryview ends the chain of bases memory_owner follows (its own count); size-1 axes keep their steps
        alias = np.asarray(memoryview(arr))
        return alias if alias.strides == arr.strides else np.lib.stride_tricks.as_strided(alias, strides=arr.strides)

    def device_of(self, arr):
        return "cpu"

    @staticmethod
    def cuda_device_count():
        return 0

    def as_torch(self, arr):
        """The array as a torch tensor sharing its memory (what torch.distributed sends)."""
        import torch

        return torch.from_numpy(arr)

    def asarray(self, data, dtype=None, copy=False):
        """Engine array from Python data, a numpy array, or anything exposing ``__array__``/``.numpy()``.

        Python floats become float32 (gt's default), ints int64, bools bool. numpy arrays keep
        their dtype (float16, int16, int8, uint8, uint16/32/64 too, as torch's).
        """
        if hasattr(data, "detach") and hasattr(data, "numpy") and not isinstance(data, np.ndarray):
            data = data.detach().cpu().numpy()  # a torch tensor
        from_python = not isinstance(data, (np.ndarray, np.generic))
        try:
            arr = np.array(data, copy=True) if copy else np.asarray(data)
        except ValueError as exc:
            raise TypeError(f"cannot make a tensor from {_describe(data)}: ragged nested sequences "
                            f"(rows of different lengths) or non-numeric data ({exc})") from None
        if from_python:
            arr = python_data.checked(data, arr, dtype)
        if arr.dtype == object:
            raise TypeError(f"cannot make a tensor from {_describe(data)}: ragged or non-numeric data (objects)")
        if arr.dtype.kind in "US":
            raise TypeError(f"cannot make a tensor from {_describe(data)}: strings (numpy dtype {arr.dtype}) "
                            "are not numbers")
        if arr.dtype.kind not in "biufc":
            raise TypeError(
                f"cannot make a tensor from {_describe(data)} (numpy dtype {arr.dtype}): expected numbers or booleans"
            )
        if dtype is not None:
            native = self.native_dtype(dtype)
            if arr.dtype != native:
                arr = python_data.cast(arr, native)
        elif from_python and arr.dtype.kind in "fc":
            arr = python_data.cast(arr, self.native_dtype(python_data.default_of(arr)))
        elif arr.dtype.kind in "ui" and arr.dtype not in _FROM_NATIVE:   # the other byte order ('>i4')
            arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
        return arr

    def to_numpy(self, arr):
        return arr

    def astype(self, arr, dtype):
        native = self.native_dtype(dtype)
        return arr if arr.dtype == native else arr.astype(native)

    def is_view(self, arr):
        # an array of the block cache is a view of its block's memoryview, and owns it all the same
        base = arr.base
        return base is not None and not (type(base) is memoryview and self.blocks.owns(arr))

    def join_views(self, arrays, axis):
        """One view over consecutive blocks that already lie next to each other in memory (the
        shards of one array, cut along ``axis``), or None when they do not."""
        first = arrays[0]
        base = first.base if first.base is not None else first
        step = first.strides[axis]
        start = first.__array_interface__["data"][0]
        offset = 0
        for a in arrays:
            if a.size:
                if (a.strides != first.strides or (a.base if a.base is not None else a) is not base
                        or a.__array_interface__["data"][0] != start + offset * step):
                    return None
            if a.shape[:axis] != first.shape[:axis] or a.shape[axis + 1:] != first.shape[axis + 1:]:
                return None
            offset += a.shape[axis]
        if not first.size:
            return None
        shape = first.shape[:axis] + (offset,) + first.shape[axis + 1:]
        return np.lib.stride_tricks.as_strided(first, shape=shape, strides=first.strides,
                                               writeable=first.flags.writeable)

    def is_contiguous(self, arr):
        return arr.flags.c_contiguous

    def copy(self, arr):
        # a 0-d result of numpy math is often a numpy scalar, whose copy could not be written into
        return arr.copy() if isinstance(arr, np.ndarray) else np.array(arr)

    def clone(self, arr):
        # the axes keep the order of their strides, dense (a transposed tensor's clone is transposed),
        # but an expanded one's: row-major, as torch's; an empty one's keeps its strides, as torch's
        if not isinstance(arr, np.ndarray) or arr.flags.c_contiguous or 0 in arr.strides:
            return self.copy(arr) if not isinstance(arr, np.ndarray) or arr.size else \
                self.with_strides(self.copy(arr), self.element_strides(stepped(arr)))
        return arr.copy(order="K")

    def format(self, arr):
        return format_array(arr)   # gt.set_printoptions sets the layout (print_options.py)

    def item(self, arr):
        return arr.item()

    def tolist(self, arr):
        return arr.tolist()

    # ---- creation and randomness -----------------------------------------------
    def zeros(self, shape, dtype):
        return np.zeros(shape, self.native_dtype(dtype))

    def ones(self, shape, dtype):
        return np.ones(shape, self.native_dtype(dtype))

    def full(self, shape, value, dtype):
        return np.full(shape, value, self.native_dtype(dtype))

    def empty(self, shape, dtype):
        return self.blocks.empty(tuple(shape), np.dtype(self.native_dtype(dtype)))

    def arange(self, start, stop, step, dtype):   # torch's values to the bit (torch_ranges.py)
        return torch_ranges.arange(start, stop, step, self.native_dtype(dtype), self.get_num_threads())

    def manual_seed(self, seed):
        self.rng = np.random.default_rng(seed)

    def randn(self, shape, dtype):
        native = self.native_dtype(dtype)
        if native in (np.float32, np.float64):
            return self.rng.standard_normal(shape, dtype=native)
        return self.rng.standard_normal(shape).astype(native)

    def rand(self, shape, dtype):
        native = self.native_dtype(dtype)
        if native in (np.float32, np.float64):
            return self.rng.random(shape, dtype=native)
        # on the dtype's own grid, as torch draws halves: rounding could otherwise give 1.0
        scale = 2.0 ** (np.finfo(native).nmant + 1)
        return (np.floor(self.rng.random(shape) * scale) / scale).astype(native)

    def uniform(self, shape, low, high, dtype):
        return (self.rng.random(shape, dtype=np.float64) * (high - low) + low).astype(self.native_dtype(dtype))

    def randint(self, low, high, shape):
        return self.rng.integers(low, high, size=shape, dtype=np.int64)

    def permutation(self, n):
        return self.rng.permutation(n)

    # ---- elementwise -------------------------------------------------------------
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    tanh = staticmethod(np.tanh)
    abs = staticmethod(np.abs)
    sign = staticmethod(np.sign)
    floor = staticmethod(np.floor)
    ceil = staticmethod(np.ceil)
    trunc = staticmethod(np.trunc)
    round = staticmethod(np.round)
    isfinite = staticmethod(np.isfinite)
    logical_not = staticmethod(np.logical_not)

    def clip(self, x, low, high):
        return torch_layout(numpy_ties.clip(x, low, high), x, low, high)     # torch's signed zeros at a zero bound

    def sigmoid(self, x):
        y = x.astype(np.float32) if x.dtype == np.float16 else x    # float16 in float32, as torch's
        e = np.exp(-np.abs(y))      # of a non-positive argument only: large |x| never overflows
        return np.where(y >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)

    def erf(self, x):
        return _erf(x)

    def exp_(self, x):
        if type(x) is np.ndarray and x.dtype.kind == "f" and x.flags.writeable:
            return np.exp(x, out=x)
        return np.exp(x)

    def masked_fill_(self, x, mask, value):
        if (type(x) is np.ndarray and x.dtype.kind == "f" and x.flags.writeable
                and np.broadcast_shapes(x.shape, mask.shape) == x.shape):
            np.copyto(x, value, where=mask)    # one pass; np.where would write a second (x.shape) array
            return x
        return self.where(mask, value, x)

    def gelu_with_grad(self, x):
        return _gelu_with_grad(x)

    # ---- reductions ----------------------------------------------------------------
    # Column sums of a big float matrix (a Linear's bias gradient, summed over the rows of a
    # batch) as a BLAS product with a vector of ones, as the layer norm kernel sums: on a 2-core
    # EPYC (OpenBLAS 0.3.31, caches flushed) (3136, 512) took 0.27 ms against np.sum's 0.58,
    # (3136, 384) 0.20 against 0.38, (3136, 128) 0.16 against 0.19; numpy adds the rows one
    # after another along axis 0 (no pairwise sum there), and the product was as close to the
    # float64 sums (8e-7 relative against 1e-6 to 2e-6).
    COLUMN_SUM_MIN = 1 << 14

    def sum(self, x, axis=None, keepdims=False):
        if (axis == 0 and not keepdims and type(x) is np.ndarray and x.ndim == 2 and x.dtype in FLOATS
                and x.size >= self.COLUMN_SUM_MIN and x.shape[0] > 1 and (x.flags.c_contiguous or x.flags.f_contiguous)):
            return self._ones_vector(x.shape[0], x.dtype) @ x
        return array_sum(x, axis, keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return row_major(np.mean(x, axis=axis, keepdims=keepdims))

    def max(self, x, axis=None, keepdims=False):
        return row_major(np.max(x, axis=axis, keepdims=keepdims))

    def min(self, x, axis=None, keepdims=False):
        return row_major(np.min(x, axis=axis, keepdims=keepdims))

    def argmax(self, x, axis=None, keepdims=False):
        return row_major(np.argmax(x, axis=axis, keepdims=keepdims))

    def argmin(self, x, axis=None, keepdims=False):
        return row_major(np.argmin(x, axis=axis, keepdims=keepdims))

    def all(self, x):
        return bool(np.all(x))

    def any(self, x):
        return bool(np.any(x))

    # ---- reusable memory for large arrays ----------------------------------------------
    # Arrays of 256 KiB and more that the engine makes itself (``empty``, ``empty_reused``, the
    # products, the fused kernels' outputs) come from ``self.blocks`` (numpy_block_cache.py):
    # their memory goes back there when they die, and the next array gets it with its pages
    # mapped, instead of malloc giving it back to the kernel and the next step faulting it in.
    # ``recycle`` adds what numpy itself allocated: an array nobody else holds joins the free
    # blocks. Contents of reused memory are undefined (like ``empty``).

    def recycle(self, arr, _count=False):
        """Give ``arr``'s memory to the block cache if the caller's one local variable is its only
        reference (no other tensor, view or user holds it) and it is large; True if it was taken
        (or, for an array of the cache, will come back when the caller drops it). The caller must
        not use ``arr`` afterwards."""
        refs = sys.getrefcount(arr)
        if _count:
            return refs
        if (refs != self._sole_refs or type(arr) is not np.ndarray or arr.nbytes < self.blocks.min_bytes
                or not arr.flags.c_contiguous or not arr.flags.writeable):
            return False
        if arr.base is None:
            return self.blocks.adopt(arr)
        return self.blocks.owns(arr)

    def empty_reused(self, shape, dtype):
        """An uninitialised array of ``shape``, in memory the block cache kept when there is some."""
        native = dtype if isinstance(dtype, np.dtype) else np.dtype(self.native_dtype(dtype))
        return self.blocks.empty(tuple(shape), native)

    def clear_pool(self):
        """Free the block cache's free memory."""
        self.blocks.clear()

    def add(self, a, b):
        return self._into_block(np.add, a, b)

    def subtract(self, a, b):
        return self._into_block(np.subtract, a, b)

    def multiply(self, a, b):
        return self._into_block(np.multiply, a, b)

    def _into_block(self, ufunc, a, b):
        # two arrays, one of them large: the result in the block cache (finding its shape and
        # dtype costs a few us, paid back only there); anything else as the operator does it
        if type(a) is np.ndarray and type(b) is np.ndarray and max(a.nbytes, b.nbytes) >= self.blocks.min_bytes \
                and a.flags.c_contiguous and b.flags.c_contiguous:     # (else in torch's layout, below)
            try:
                shape = a.shape if a.shape == b.shape else np.broadcast_shapes(a.shape, b.shape)
            except ValueError:
                return ufunc(a, b)       # numpy's own error
            dtype = a.dtype if a.dtype == b.dtype else np.result_type(a, b)
            return ufunc(a, b, out=self.blocks.empty(shape, dtype))
        if ufunc is np.multiply and ((type(b) is float and getattr(a, "dtype", None) == np.float16) or
                                     (type(a) is float and getattr(b, "dtype", None) == np.float16)):
            return python_data.half_with_float(ufunc, a, b)     # torch's product, not add's rounding
        out = ufunc(a, b)     # torch's layout: row-major after a row-major a of out's shape, else torch_layout's
        return out if type(a) is np.ndarray and a.flags.c_contiguous and a.shape == out.shape else torch_layout(out, a, b)

    # ---- linear algebra and layout -------------------------------------------------
    def reshape(self, x, shape):
        # the same array when nothing changes (a fresh gradient stays a non-view a leaf can own); else
        # an array's own method: np.reshape's call without its wrapper (np.transpose's too, below)
        return (x if x.shape == tuple(shape) else x.reshape(shape)) if isinstance(x, np.ndarray) else np.reshape(x, shape)

    def transpose(self, x, axes):       # (an array of no elements: stepped, as torch's)
        return (x.transpose(axes) if x.size else stepped(x).transpose(axes)) if isinstance(x, np.ndarray) \
            else np.transpose(x, axes)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def concatenate(self, arrays, axis):
        return row_major(np.concatenate(arrays, axis=axis))

    def stack(self, arrays, axis):
        return row_major(np.stack(arrays, axis=axis))

    def split(self, x, indices, axis):
        return np.split(x, indices, axis=axis)

    def ascontiguous(self, x):     # (a 0-d array stays 0-d)
        return x if type(x) is np.ndarray and x.flags.c_contiguous else np.ascontiguousarray(x)

    # ---- indexing ------------------------------------------------------------------
    def is_bool(self, arr):
        return arr.dtype == np.bool_

    def getitem(self, x, index):
        out = x[index]
        if isinstance(out, np.ndarray):     # (torch's strides of a new axis, torch's start of an empty slice)
            return out if out.size and 0 not in out.strides else torch_view(x, index, out)
        # one element: numpy's scalar is a copy, torch's x[i] a 0-d view (written through): an Ellipsis keeps one
        index = index if isinstance(index, tuple) else (index,)
        return x[index if any(i is Ellipsis for i in index) else index + (Ellipsis,)]

    def index_add(self, target, index, values):
        """``target[index] += values`` where repeated integer indices add up (a scatter-add)."""
        # bool targets skip add_rows: its reduceat sums bools into int64, which cannot go back
        if isinstance(index, np.ndarray) and index.dtype.kind in "iu" and target.ndim >= 1 \
                and values.shape == index.shape + target.shape[1:] and target.dtype != np.bool_:
            return add_rows(target, index, values)
        if _has_int_array(index):
            np.add.at(target, index, values)
        else:
            target[index] += values
        return target

    # ---- random generator state (checkpoints) -----------------------------------------
    def get_rng_state(self):
        """The generator's state as a JSON-serialisable dict (numpy's ``bit_generator.state``)."""
        return self.rng.bit_generator.state

    def set_rng_state(self, state):
        """Continue from a state ``get_rng_state`` returned; a fresh generator, so nothing else
        holding the old one sees its draws change."""
        name = state.get("bit_generator") if isinstance(state, dict) else None
        bit_generator = getattr(np.random, name, None) if isinstance(name, str) else None
        if not (isinstance(bit_generator, type) and issubclass(bit_generator, np.random.BitGenerator)):
            raise ValueError(f"set_rng_state: expected a dict with a numpy 'bit_generator' name (e.g. 'PCG64'), "
                             f"got {_describe(state)}")
        bg = bit_generator()
        try:
            bg.state = state      # numpy checks the rest of the dict
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"set_rng_state: not a valid {name} state ({exc}): {_describe(state)}") from None
        self.rng = np.random.Generator(bg)


def _has_int_array(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, np.ndarray) and p.dtype.kind in "iu" for p in parts)


def _describe(data):
    text = repr(data)
    return f"{type(data).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"

