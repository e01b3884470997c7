"""The torch engine: gt's arrays are ``torch.Tensor`` (on the CPU or on CUDA GPUs).

The primitives of the ``Engine`` interface (gt/backend/engine.py) with numpy's semantics where
the two libraries differ (``axis``/``keepdims``, ``split`` at indices, scatter-add with repeated
indices, dtype promotion in ``matmul``), so ops above this layer run unchanged. torch's own autograd is never used: gt
records its own tape, and these tensors never require grad.

Arrays are created on the *current device* (``on_device``): the sharding layer runs each
device's share of an op inside ``with B.on_device("cuda:i")``, so a buffer an op allocates lands
next to that device's inputs, and every op is queued on that GPU's stream without waiting for
the host.

Random numbers come from the same host generator as the numpy engine (numpy's PCG64), then move
to the device: one seed gives the same weights and data on every engine and device, and
checkpoints carry one RNG state format. Draws are made at initialisation and for data; a
training step of the default model draws none.
"""

import contextlib

import numpy as np
import torch

from gt import config, dtypes
from gt.backend.engine import Engine
from gt.backend.numpy_engine import NumpyEngine
from gt.backend.threads import ThreadPolicy
from gt.backend.torch_buffers import TorchBuffers
from gt.backend.torch_kernels import TorchKernels
from gt.backend.torch_math import TorchMath
from gt.backend.torch_indexing import TorchIndexing
from gt.backend.torch_scatter import TorchScatter
from gt.backend.torch_sorting import TorchSorting
from gt.backend.torch_special import TorchSpecial
from gt.backend.torch_linalg import TorchLinalg
from gt.backend.torch_windows import TorchWindows
from gt.backend.torch_complex import TorchComplex
from gt.backend.torch_shared import TorchShared
from gt.backend.torch_sparse import TorchSparse
from gt.backend.torch_versions import TorchVersions

_NATIVE = {
    dtypes.float32: torch.float32,
    dtypes.float64: torch.float64,
    dtypes.int64: torch.int64,
    dtypes.int32: torch.int32,
    dtypes.int16: torch.int16, dtypes.int8: torch.int8, dtypes.uint8: torch.uint8,
    dtypes.uint16: torch.uint16, dtypes.uint32: torch.uint32, dtypes.uint64: torch.uint64,
    dtypes.bool_: torch.bool,
    dtypes.float16: torch.float16,
    dtypes.complex64: torch.complex64, dtypes.complex128: torch.complex128,
    dtypes.bfloat16: torch.bfloat16,
}
_FROM_NATIVE = {v: k for k, v in _NATIVE.items()}


def _dim(axis):
    return tuple(axis) if isinstance(axis, list) else axis


class TorchEngine(TorchKernels, TorchBuffers, TorchIndexing, TorchSorting, TorchWindows, TorchScatter, TorchMath,
                  TorchSpecial, TorchLinalg, TorchComplex, TorchShared, TorchSparse, TorchVersions, Engine):
    name = "torch"
    supports_bfloat16 = True

    def __init__(self, device=None, home=None):
        self._device = None if device is None else str(device)
        self._home = home                 # () -> the device the first array goes to (the mesh's home)
        self._host = NumpyEngine()        # parsing of Python data, and the random generator
        self._pool = {}                   # (shape, dtype) -> CPU tensors nobody else holds
        self._pool_bytes = 0
        probe = torch.empty(0)
        self._sole_refs = self.recycle(probe, _count=True)
        # torch's intra-op pool collapses on a busy machine as OpenBLAS's does (gt/backend/threads.py),
        # so the count adapts here too unless GT_NUM_THREADS fixes it: beside two busy processes
        # the small decoder's step (benchmarks/small_decoder.py) took 11.9x its quiet time with
        # torch's fixed two threads and 2.5x adapting, on a 2-core Xeon
        self._threads = ThreadPolicy.from_setting(torch.get_num_threads, torch.set_num_threads,
                                                  config.num_threads())

    # ---- version counters (gt/autograd/versions.py): torch's own ---------------------------------
    # torch counts in-place changes per storage (views share the count) and its in-place ops bump
    # it; gt bumps it too where it writes without such an op (the fused optimizer kernels do not)
    counts_inplace_ops = True

    def memory_owner(self, arr):
        # torch points a view's ``_base`` at the tensor that owns the storage (never at a view)
        base = arr._base
        return arr if base is None else base

    def version_of(self, arr):
        return arr._version

    def is_view_of(self, arr, of):
        base = arr._base
        return base is not None and (base is of or base is of._base)

    def untracked_alias(self, arr):
        return arr.data        # torch's own: the same storage, a version counter of its own

    def versions_of(self, values):
        # a list made into a tuple: a generator costs more than its few values (every op saving)
        return tuple([v._version if isinstance(v, torch.Tensor) else None for v in values])

    def changed_since(self, values, token):
        for i, (value, was) in enumerate(zip(values, token)):
            if was is not None and value._version != was:
                return i, value._version, was
        return None

    def bump_version(self, arr):
        torch.autograd.graph.increment_version(arr)

    def bump_versions(self, arrays):
        torch.autograd.graph.increment_version(list(arrays))

    # ---- devices -----------------------------------------------------------------------
    @property
    def device(self):
        """Where new arrays go: the mesh's home device (``cuda:0`` on a GPU machine), or the
        device of the op share running now. The first ask fixes the mesh, so that even the very
        first array is made where the mesh will want it."""
        if self._device is None:
            self._device = "cpu" if self._home is None else str(self._home())
        return self._device

    @device.setter
    def device(self, value):
        self._device = str(value)

    @contextlib.contextmanager
    def on_device(self, device):
        """New arrays inside the block are made on ``device`` (e.g. ``"cuda:1"``)."""
        prev, self.device = self.device, str(device)
        try:
            yield
        finally:
            self.device = prev

    def to_device(self, arr, device):
        """``arr`` on ``device``: the same array when it is there already. Queued without a host
        sync (``non_blocking``) to a GPU; to the CPU the copy is waited for, since the host may read
        it next (a non-blocking copy from a GPU lands in pinned memory some time later)."""
        device = torch.device(device)
        return arr if arr.device == device else arr.to(device, non_blocking=device.type != "cpu")

    def device_of(self, arr):
        return str(arr.device)

    @staticmethod
    def cuda_device_count():
        return torch.cuda.device_count() if torch.cuda.is_available() else 0

    # ---- dtypes and conversion -------------------------------------------------------------
    def native_dtype(self, dtype):
        dtype = dtypes.to_dtype(dtype)
        if dtype not in _NATIVE:
            raise TypeError(f"dtype {dtype!r} is not supported by the torch engine")
        return _NATIVE[dtype]

    def dtype_of(self, arr):
        try:
            return _FROM_NATIVE[arr.dtype]
        except (KeyError, AttributeError):
            raise TypeError(f"unsupported array dtype {getattr(arr, 'dtype', type(arr).__name__)}: "
                            "expected a floating, complex, integer or bool one") from None

    def is_array(self, value):
        return isinstance(value, torch.Tensor)

    def numel(self, arr):
        return arr.numel()

    def asarray(self, data, dtype=None, copy=False):
        """Engine array from Python data, a numpy array, a torch tensor, or anything numpy reads.

        The same dtype rules as the numpy engine (Python floats become float32, ints int64).
        A numpy array or CPU tensor of the right dtype is shared, not copied, on the CPU.
        """
        if isinstance(data, torch.Tensor):
            arr = data.detach()
            if arr.dtype not in _FROM_NATIVE:
                arr = arr.to(torch.int64 if not arr.is_floating_point() else torch.float32)
            if dtype is not None:
                arr = arr.to(self.native_dtype(dtype))
            arr = self.to_device(arr, self.device)
            return arr.clone() if copy and arr.data_ptr() == data.data_ptr() else arr
        if dtype == dtypes.bfloat16:      # numpy has none: through float32, as torch converts to it
            return self.from_numpy(self._host.asarray(data, dtype=dtypes.float32, copy=copy)).to(torch.bfloat16)
        host = self._host.asarray(data, dtype=dtype, copy=copy)
        return self.from_numpy(host)

    def from_numpy(self, host):
        if not host.flags.writeable or any(s < 0 for s in host.strides):
            host = host.copy()            # torch shares only writeable arrays with positive strides
        arr = torch.from_numpy(host)
        return arr if self.device == "cpu" else arr.to(self.device)

    def to_numpy(self, arr):
        if arr.dtype == torch.bfloat16:
            arr = arr.to(torch.float32)
        return arr.detach().cpu().numpy()

    def as_torch(self, arr):
        """The array as a torch tensor (itself): what torch.distributed sends."""
        return arr

    def astype(self, arr, dtype):
        native = self.native_dtype(dtype)
        return arr if arr.dtype == native else arr.to(native)

    def is_view(self, arr):
        return arr._base is not None

    def join_views(self, arrays, axis):
        """One view over consecutive blocks that lie next to each other in one storage (the
        shards of one CPU array, cut along ``axis``), or None when they do not."""
        first = arrays[0]
        if first.numel() == 0 or first.device.type != "cpu":
            return None
        storage = first.untyped_storage().data_ptr()
        step = first.stride(axis) * first.element_size()
        start, offset = first.data_ptr(), 0
        for a in arrays:
            if a.numel():
                if (a.stride() != first.stride() or a.untyped_storage().data_ptr() != storage
                        or a.data_ptr() != start + offset * step or a.dtype != first.dtype):
                    return None
            if a.shape[:axis] != first.shape[:axis] or a.shape[axis + 1:] != first.shape[axis + 1:]:
                return None
            offset += a.shape[axis]
        shape = tuple(first.shape[:axis]) + (offset,) + tuple(first.shape[axis + 1:])
        return first.as_strided(shape, first.stride(), first.storage_offset())

    def is_contiguous(self, arr):
        return arr.is_contiguous()

    def copy(self, arr):
        return arr.clone()

    def format(self, arr):
        return self._host.format(self.to_numpy(arr))

    def item(self, arr):
        return arr.item()

    def tolist(self, arr):
        return arr.tolist()

    # ---- creation and randomness -------------------------------------------------------------
    def zeros(self, shape, dtype):
        return torch.zeros(shape, dtype=self.native_dtype(dtype), device=self.device)

    def ones(self, shape, dtype):
        return torch.ones(shape, dtype=self.native_dtype(dtype), device=self.device)

    def full(self, shape, value, dtype):
        return torch.full(shape, value, dtype=self.native_dtype(dtype), device=self.device)

    def empty(self, shape, dtype):
        return torch.empty(shape, dtype=self.native_dtype(dtype), device=self.device)

    def arange(self, start, stop, step, dtype):
        return torch.arange(start, stop, step, dtype=self.native_dtype(dtype), device=self.device)

    def _drawn(self, host, dtype):
        return self.from_numpy(host) if dtype is None else self.astype(self.from_numpy(host), dtype)

    def manual_seed(self, seed):
        self._host.manual_seed(seed)

    def randn(self, shape, dtype):
        return self._drawn(self._host.randn(shape, _host_float(dtype)), dtype)

    def rand(self, shape, dtype):
        host = _host_float(dtype)
        if host != dtypes.to_dtype(dtype):   # halves: on their own grid, as torch's (rounding could give 1.0)
            scale = 2.0 ** (11 if dtypes.to_dtype(dtype) == dtypes.float16 else 8)
            return self._drawn(np.floor(self._host.rand(shape, host) * scale) / scale, dtype)
        return self._drawn(self._host.rand(shape, host), dtype)

    def uniform(self, shape, low, high, dtype):
        return self._drawn(self._host.uniform(shape, low, high, _host_float(dtype)), dtype)

    def randint(self, low, high, shape):
        return self._drawn(self._host.randint(low, high, shape), None)

    def permutation(self, n):
        return self._drawn(np.asarray(self._host.permutation(n), dtype=np.int64), None)

    def get_rng_state(self):
        return self._host.get_rng_state()

    def set_rng_state(self, state):
        self._host.set_rng_state(state)

    # ---- elementwise ---------------------------------------------------------------------------
    exp = staticmethod(torch.exp)
    log = staticmethod(torch.log)
    sqrt = staticmethod(torch.sqrt)
    tanh = staticmethod(torch.tanh)
    abs = staticmethod(torch.abs)
    sign = staticmethod(torch.sign)
    floor = staticmethod(torch.floor)
    ceil = staticmethod(torch.ceil)
    trunc = staticmethod(torch.trunc)
    round = staticmethod(torch.round)
    isfinite = staticmethod(torch.isfinite)
    logical_not = staticmethod(torch.logical_not)
    sigmoid = staticmethod(torch.sigmoid)

    def erf(self, x):
        return torch.special.erf(x)

    def relu(self, x):
        return torch.relu(x)

    def relu_(self, x):
        return x.relu_()

    def masked_fill_(self, x, mask, value):
        if x.is_floating_point() and torch.broadcast_shapes(x.shape, mask.shape) == x.shape:
            return x.masked_fill_(mask, value)
        return self.where(mask, value, x)

    def relu_backward(self, grad, out):
        # the kernel of torch.relu's own backward, one pass, no mask or cast; into a parked buffer
        # where one is (LinearRelu hands its gradient back after use: no fresh pages each layer)
        if grad.shape == out.shape and grad.dtype == out.dtype and grad.device.type == "cpu":
            return torch.ops.aten.threshold_backward.grad_input(
                grad, out, 0, grad_input=self.empty_reused(grad.shape, grad.dtype))
        return torch.ops.aten.threshold_backward(grad, out, 0)

    def gelu_with_grad(self, x):
        # torch's own kernels: the values and gradients of torch.nn.functional.gelu, bit for bit
        return torch.nn.functional.gelu(x), torch.ops.aten.gelu_backward(torch.ones_like(x), x)

    def _tensor(self, value, like):
        if isinstance(value, torch.Tensor):
            return value
        if isinstance(value, (int, float, bool)):   # filled on the device: no copy from the host
            return torch.full((), value, dtype=like.dtype, device=like.device)
        return torch.as_tensor(value, device=like.device)

    # ---- reductions ------------------------------------------------------------------------------
    def sum(self, x, axis=None, keepdims=False):
        if axis is None and not keepdims:
            return torch.sum(x)
        return torch.sum(x, dim=_dim(axis), keepdim=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        if not (x.is_floating_point() or x.is_complex()):
            x = x.to(torch.float64)       # numpy's mean of integers is float64
        if axis is None and not keepdims:
            return torch.mean(x)
        return torch.mean(x, dim=_dim(axis), keepdim=keepdims)

    def _extreme(self, fn, x, axis, keepdims, name):
        if _reduces_empty(x, axis):
            raise ValueError(f"zero-size array to reduction operation {name} which has no identity")
        if axis is None:
            out = fn(x)
            return out.reshape((1,) * x.ndim) if keepdims else out
        return fn(x, dim=_dim(axis), keepdim=keepdims)

    def max(self, x, axis=None, keepdims=False):
        return self._extreme(torch.amax, x, axis, keepdims, "maximum")

    def min(self, x, axis=None, keepdims=False):
        return self._extreme(torch.amin, x, axis, keepdims, "minimum")

    def _arg(self, fn, x, axis, keepdims):
        if _reduces_empty(x, axis):
            raise ValueError("attempt to get argmax/argmin of an empty sequence")
        if axis is None:
            out = fn(x)
            return out.reshape((1,) * x.ndim) if keepdims else out
        return fn(x, dim=axis, keepdim=keepdims)

    def argmax(self, x, axis=None, keepdims=False):
        return self._arg(torch.argmax, x, axis, keepdims)

    def argmin(self, x, axis=None, keepdims=False):
        return self._arg(torch.argmin, x, axis, keepdims)

    def all(self, x):
        return bool(torch.all(x))

    def any(self, x):
        return bool(torch.any(x))

    # ---- linear algebra and layout ---------------------------------------------------------------
    def matmul(self, a, b):
        self._threads.tick()
        if a.dtype != b.dtype:            # numpy promotes; torch's matmul insists on one dtype
            common = torch.promote_types(a.dtype, b.dtype)
            a, b = a.to(common), b.to(common)
        if a.is_cuda and not a.is_floating_point():    # CUDA has no integer gemm: exact on the CPU
            return torch.matmul(a.cpu(), b.cpu()).to(a.device)
        return torch.matmul(a, b)

    def matmul_lowp(self, a, b, dtype, result=None):
        """``a @ b`` with both inputs rounded to ``dtype`` (bfloat16), accumulated in float32 by
        the kernel, the result in the gt dtype ``result`` (default: the inputs' float dtype; see
        gt.amp). Inputs already in ``dtype`` are used as they are."""
        low = self.native_dtype(dtype)
        # a rounded input as it is: even a cast to its own dtype is a call (microseconds on a GPU's host)
        out = torch.matmul(a if a.dtype == low else a.to(low), b if b.dtype == low else b.to(low))
        return out.to(torch.promote_types(a.dtype, b.dtype) if result is None else self.native_dtype(result))

    def reshape(self, x, shape):
        return x if tuple(x.shape) == tuple(shape) else torch.reshape(x, tuple(shape))

    def transpose(self, x, axes):
        return x.permute(tuple(axes))

    def broadcast_to(self, x, shape):
        return torch.broadcast_to(x, tuple(shape))

    def concatenate(self, arrays, axis):
        return torch.cat(list(arrays), dim=axis)

    def stack(self, arrays, axis):
        return torch.stack(list(arrays), dim=axis)

    def split(self, x, indices, axis):
        if isinstance(indices, int):
            if x.shape[axis] % indices:
                raise ValueError("array split does not result in an equal division")
            return list(torch.tensor_split(x, indices, dim=axis))
        return list(torch.tensor_split(x, list(indices), dim=axis))

    def ascontiguous(self, x):
        return x.contiguous()


def _reduces_empty(x, axis):
    if axis is None or x.ndim == 0:     # torch takes dim 0 or -1 of a 0-d tensor as its one element
        return x.numel() == 0
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return any(x.shape[a] == 0 for a in axes)


def _host_float(dtype):
    """The host dtype to draw in: a float the numpy engine can hold (bfloat16 is drawn in float32).
    float16 is drawn in float64, as the numpy engine draws it, so both engines give the same halves."""
    dtype = dtypes.to_dtype(dtype)
    if dtype == dtypes.float16:
        return dtypes.float64
    return dtypes.float32 if dtype == dtypes.bfloat16 else dtype
