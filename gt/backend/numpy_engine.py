"""The numpy engine: gt's default array engine, on the CPU.

Arrays are plain ``numpy.ndarray``. Every primitive the ops layer needs is a
method here; ops also use Python operators (``+ - * / ** @``, comparisons,
in-place ``+=``) on engine arrays, which numpy and torch arrays both support.
"""

import math

import numpy as np

from gt import dtypes

_NATIVE = {
    dtypes.float32: np.float32,
    dtypes.float64: np.float64,
    dtypes.int64: np.int64,
    dtypes.int32: np.int32,
    dtypes.bool_: np.bool_,
    dtypes.float16: np.float16,
}
_FROM_NATIVE = {np.dtype(v): k for k, v in _NATIVE.items()}


class NumpyEngine:
    name = "numpy"
    device = "cpu"

    def __init__(self):
        self.rng = np.random.default_rng()

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
            raise TypeError(f"unsupported array dtype {arr.dtype}: expected float32, float64, int64, int32 or bool") from None

    def is_array(self, value):
        return isinstance(value, np.ndarray)

    def asarray(self, data, dtype=None, copy=False):
        """Engine array from Python data, a numpy array, or anything exposing ``__array__``/``.numpy()``.

        Python floats become float32 (gt's default), ints int64, bools bool. numpy
        arrays keep their dtype (float16 and other int widths are widened).
        """
        if hasattr(data, "detach") and hasattr(data, "numpy") and not isinstance(data, np.ndarray):
            data = data.detach().cpu().numpy()  # a torch tensor
        from_python = not isinstance(data, (np.ndarray, np.generic))
        try:
            arr = np.array(data, copy=True) if copy else np.asarray(data)
        except ValueError as exc:
            raise TypeError(f"cannot make a tensor from {_describe(data)}: ragged nested sequences "
                            f"(rows of different lengths) or non-numeric data ({exc})") from None
        if arr.dtype == object:
            raise TypeError(f"cannot make a tensor from {_describe(data)}: ragged or non-numeric data (objects)")
        if arr.dtype.kind in "US":
            raise TypeError(f"cannot make a tensor from {_describe(data)}: strings (numpy dtype {arr.dtype}) "
                            "are not numbers")
        if arr.dtype.kind not in "biuf":
            raise TypeError(
                f"cannot make a tensor from {_describe(data)} (numpy dtype {arr.dtype}): expected numbers or booleans"
            )
        if dtype is not None:
            native = self.native_dtype(dtype)
            if arr.dtype != native:
                arr = arr.astype(native)
        elif from_python and arr.dtype.kind == "f":
            arr = arr.astype(self.native_dtype(dtypes.default_float))
        elif arr.dtype.kind == "u" or (arr.dtype.kind == "i" and arr.dtype != np.int32):
            arr = arr.astype(np.int64, copy=False)
        elif arr.dtype == np.float16:
            arr = arr.astype(np.float32)
        return arr

    def to_numpy(self, arr):
        return arr

    def astype(self, arr, dtype):
        native = self.native_dtype(dtype)
        return arr if arr.dtype == native else arr.astype(native)

    def is_view(self, arr):
        return arr.base is not None

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
        return arr.copy()

    def format(self, arr):
        return np.array2string(arr, separator=", ", precision=4, threshold=200, edgeitems=3,
                               prefix="tensor(")

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
        return np.empty(shape, self.native_dtype(dtype))

    def arange(self, start, stop, step, dtype):
        return np.arange(start, stop, step, dtype=self.native_dtype(dtype))

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
        return self.rng.random(shape).astype(native)

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
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    where = staticmethod(np.where)
    isfinite = staticmethod(np.isfinite)
    logical_not = staticmethod(np.logical_not)

    def clip(self, x, low, high):
        return np.clip(x, low, high)

    def sigmoid(self, x):
        # exp of a non-positive argument only, so large |x| never overflows
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)

    def erf(self, x):
        return _erf(x)

    # ---- reductions ----------------------------------------------------------------
    def sum(self, x, axis=None, keepdims=False):
        return np.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return np.mean(x, axis=axis, keepdims=keepdims)

    def max(self, x, axis=None, keepdims=False):
        return np.max(x, axis=axis, keepdims=keepdims)

    def min(self, x, axis=None, keepdims=False):
        return np.min(x, axis=axis, keepdims=keepdims)

    def argmax(self, x, axis=None, keepdims=False):
        return np.argmax(x, axis=axis, keepdims=keepdims)

    def argmin(self, x, axis=None, keepdims=False):
        return np.argmin(x, axis=axis, keepdims=keepdims)

    def all(self, x):
        return bool(np.all(x))

    def any(self, x):
        return bool(np.any(x))

    # ---- linear algebra and layout -------------------------------------------------
    matmul = staticmethod(np.matmul)

    def reshape(self, x, shape):
        # the same array when nothing changes: a fresh gradient stays a non-view a leaf can own
        return x if isinstance(x, np.ndarray) and x.shape == tuple(shape) else np.reshape(x, shape)

    def transpose(self, x, axes):
        return np.transpose(x, axes)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def concatenate(self, arrays, axis):
        return np.concatenate(arrays, axis=axis)

    def stack(self, arrays, axis):
        return np.stack(arrays, axis=axis)

    def split(self, x, indices, axis):
        return np.split(x, indices, axis=axis)

    def ascontiguous(self, x):
        return np.ascontiguousarray(x)

    # ---- indexing ------------------------------------------------------------------
    def index_add(self, target, index, values):
        """``target[index] += values`` where repeated integer indices add up (a scatter-add)."""
        if _has_int_array(index):
            np.add.at(target, index, values)
        else:
            target[index] += values
        return target


def _has_int_array(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, np.ndarray) and p.dtype.kind in "iu" for p in parts)


def _describe(data):
    text = repr(data)
    return f"{type(data).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _erf(x):
    """erf to float64 precision, vectorised: a positive-term series for |x| <= 2.5 and
    the continued fraction of erfc beyond (numpy has no erf of its own)."""
    xd = np.asarray(x, dtype=np.float64)
    ax = np.abs(xd)
    out = np.empty_like(xd)
    small = ax <= 2.5
    if small.any():
        s = xd[small]
        s2 = 2.0 * s * s
        term = s.copy()
        total = s.copy()
        for n in range(1, 70):  # terms fall below 1e-17 of the sum well before n = 70 for |x| <= 2.5
            term *= s2 / (2 * n + 1)
            total += term
        out[small] = _TWO_OVER_SQRT_PI * np.exp(-s * s) * total
    large = ~small
    if large.any():
        a = ax[large]
        frac = a.copy()
        for k in range(60, 0, -1):
            frac = a + (k / 2.0) / frac
        erfc = np.exp(-a * a) / math.sqrt(math.pi) / frac
        out[large] = np.sign(xd[large]) * (1.0 - erfc)
    return out.astype(x.dtype, copy=False)
