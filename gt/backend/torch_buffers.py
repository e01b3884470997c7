"""The torch engine's optional fast paths: recycled CPU buffers for large gradients, the fused
updates (``add_`` with alpha, ``addmm_``), in-place ``exp_`` and the thread count (the policy
lives in gt/backend/threads.py). A mixin of ``TorchEngine``, which owns ``_pool`` and ``_threads``.
"""

import math
import sys

import torch


class TorchBuffers:
    # ---- buffers and fused updates -------------------------------------------------------------
    # On GPUs torch's caching allocator hands freed blocks back out. On the CPU it does not: a
    # large gradient is unmapped when freed and page-faults in afresh each step (about 4 ms for
    # the default model's 41 MB embedding gradient), so CPU buffers go through the same pool as
    # the numpy engine's recycled arrays (NumpyEngine.recycle). Smaller ones too, from 16 KiB: weight
    # gradients are made late in the backward, at the top of glibc's heap, and freed together by
    # zero_grad(); freed, they leave a free block at the top large enough for glibc to give back
    # to the kernel, and the next backward faults it in again. Parked, the top stays in use: the
    # small decoder of benchmarks/small_decoder.py (D 128, weight gradients of 64-256 KiB) went
    # from 5,800-12,900 page faults a step to none, and its step from 1.07-1.10x PyTorch's to
    # 0.99-1.01x, with glibc's default settings (2-core Xeon). The numpy engine keeps the
    # memory of all its large arrays (gt/backend/numpy_block_cache.py), activations included;
    # torch allocates its tensors' memory itself, so here only what gt hands back is kept.
    POOL_MIN_BYTES = 1 << 14
    POOL_MAX_BYTES = 1 << 30          # never keep more than this parked
    POOL_PER_KEY = 64                 # tensors of one shape and dtype
    POOL_SPARES = 2                   # of those, from recycle_spare (see there)
    # A weight gradient of a few rows (the default model's embedding at batch 2 x 4: (256, 8) @
    # (8, 40000)) is written in blocks of about this many bytes of the output: see _blocks_pay.
    BLOCK_BYTES = 4 << 20

    def element_strides(self, arr):    # torch's own, on any device (no host copy)
        return tuple(arr.stride())

    def data_address(self, arr):
        return arr.data_ptr()

    def recycle(self, arr, _count=False):
        """Park a CPU tensor for reuse if the caller's one local variable is its only reference:
        no other Python reference, and no view, numpy array or tensor sharing its storage."""
        refs = sys.getrefcount(arr)
        if _count:
            return refs
        return refs == self._sole_refs and self._park(arr, None)

    def recycle_spare(self, arr):
        """``recycle`` for a gradient the backward walk has finished with: parked only where
        ``empty_reused`` has asked for that shape and dtype, and fewer than ``POOL_SPARES`` wait
        there, so that activations' gradients nobody asks for are freed as before."""
        return sys.getrefcount(arr) == self._sole_refs and self._park(arr, self.POOL_SPARES)

    def _park(self, arr, limit):
        # the size first: most gradients of a small model are below it (biases, norms), and
        # ``device.type`` builds a device object (half a microsecond; ``is_cpu`` is a flag)
        if (type(arr) is not torch.Tensor
                or (nbytes := arr.numel() * arr.element_size()) < self.POOL_MIN_BYTES or not arr.is_cpu
                or arr._base is not None or not arr.is_contiguous() or arr.storage_offset() or not _sole_storage(arr)):
            return False
        key = (tuple(arr.shape), arr.dtype)
        if limit is None:
            parked, limit = self._pool.setdefault(key, []), self.POOL_PER_KEY
        elif (parked := self._pool.get(key)) is None:
            return False
        if len(parked) >= limit or self._pool_bytes + nbytes > self.POOL_MAX_BYTES:
            return False
        parked.append(arr)
        self._pool_bytes += nbytes
        return True

    def empty_reused(self, shape, dtype):
        native = dtype if isinstance(dtype, torch.dtype) else self.native_dtype(dtype)
        if self.device == "cpu":
            # a miss leaves the key behind: the shapes asked for, which recycle_spare parks
            parked = self._pool.setdefault((tuple(shape), native), [])
            if parked:
                arr = parked.pop()
                self._pool_bytes -= arr.numel() * arr.element_size()
                return arr
        return torch.empty(tuple(shape), dtype=native, device=self.device)

    def clear_pool(self):
        self._pool.clear()
        self._pool_bytes = 0

    def matmul_reused(self, a, b):
        """``a @ b`` for 2-D ``a`` and ``b``, into a recycled CPU buffer when one is parked; a big
        product of few inner rows block by block (``_blocks_pay``)."""
        if a.dtype != b.dtype or not a.is_cpu or a.shape[0] * b.shape[1] * a.element_size() < self.POOL_MIN_BYTES:
            return self.matmul(a, b)
        self._threads.tick()
        out = self.empty_reused((a.shape[0], b.shape[1]), a.dtype)
        if a.dim() == b.dim() == 2 and _blocks_pay(a, b):
            rows = max(1, self.BLOCK_BYTES // (b.shape[1] * b.element_size()))
            for i in range(0, a.shape[0], rows):
                torch.mm(a[i:i + rows], b, out=out[i:i + rows])
            return out
        return torch.matmul(a, b, out=out)

    def matmul_shaped(self, a, b, shape):
        if (a.dtype != b.dtype or not a.is_cpu or self.device != "cpu"
                or math.prod(shape) * a.element_size() < self.POOL_MIN_BYTES):
            return self.matmul(a, b).reshape(shape)
        self._threads.tick()
        out = self.empty_reused(shape, a.dtype)
        # the buffer itself is returned (no view of it): the walk can park it again after use
        torch.matmul(a, b, out=out.view(a.shape[0], b.shape[1]))
        return out

    def add_scaled_(self, target, value, alpha):
        """``target += alpha * value`` in place, one fused kernel."""
        if (isinstance(value, torch.Tensor) and isinstance(alpha, (int, float)) and value.dtype == target.dtype
                and (not target.is_floating_point() or abs(alpha) <= torch.finfo(target.dtype).max)):
            return target.add_(value, alpha=alpha)
        # an alpha beyond the dtype's range (a diverging --lr 1e308) is refused by add_; as in
        # numpy, the product overflows to inf instead, which the caller sees as a non-finite loss
        target += value * alpha
        return target

    def add_scaled_foreach_(self, targets, values, alpha):
        """``add_scaled_`` for several pairs in one multi-tensor call (``torch._foreach_add_``, as
        ``torch.optim.SGD(foreach=True)``): on the CPU it runs ``add_`` pair by pair in C++, the
        same bits as one call each, without a Python round trip per parameter (one ``add_`` each
        took the Pixel Transformer's 70 parameters 3.9 ms a step in cProfile, 1.6 of them in the
        kernels, on a 2-core EPYC)."""
        if (isinstance(alpha, (int, float)) and targets
                and all(v.dtype == t.dtype and abs(alpha) <= _FLOAT_MAX.get(t.dtype, -1.0)
                        for t, v in zip(targets, values))):
            torch._foreach_add_(targets, values, alpha=alpha)
            return
        super().add_scaled_foreach_(targets, values, alpha)

    # ---- threads and fused products ----------------------------------------------------------------
    def get_num_threads(self):
        return torch.get_num_threads()

    def set_num_threads(self, n):
        self._threads.set_fixed(n)

    def set_warn_always(self, flag):
        torch.set_warn_always(flag)

    def set_flush_denormal(self, flag):
        return torch.set_flush_denormal(flag)

    def exp_(self, x):
        return x.exp_() if x.is_floating_point() else torch.exp(x)

    def addmm_(self, target, a, b, alpha):
        """``target += alpha * (a @ b)`` in one kernel (``Tensor.addmm_``)."""
        if (isinstance(alpha, (int, float)) and a.dtype == b.dtype == target.dtype
                and abs(alpha) <= torch.finfo(target.dtype).max):
            self._threads.tick()
            return target.addmm_(a, b, alpha=alpha)
        return self.add_scaled_(target, self.matmul(a, b), alpha)


# the largest finite value of each floating dtype of gt (a torch.finfo is made per call): a
# dtype not listed is no float (-1 is below any abs(alpha))
_FLOAT_MAX = {d: torch.finfo(d).max for d in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}


def _blocks_pay(a, b):
    """Whether ``a @ b`` is faster in row blocks of the output: few inner rows, a right side that
    stays in the cache for every block, and an output larger than the caches.

    MKL first zeroes the whole output, then adds the product into it: for an inner size of 8
    that is three passes over memory for one pass of arithmetic. Block by block, each block is
    zeroed and summed into while it is still in the cache. On a 2-core AMD EPYC (torch 2.13,
    MKL 2024.2, caches flushed between calls) (256, k) @ (k, 40000) took 4.1 ms instead of
    6.2-6.5 at k = 4, 5.4-5.7 instead of 7.2-8.3 at k = 8, 6.6-7.1 instead of 7.4-8.3 at
    k = 16, and was slower at k = 32 (10.1-10.3 against 9.3 ms: the right side no longer stays
    in the cache), so blocks are used up to k = 16 with a right side of at most 3 MiB. The
    default model's seed step (2 x 4) was 0.8 ms less in the median of 40 paired rounds (blocks
    faster in 30) and 1.4 ms less with freed memory retained (31 of 40), A/B in one process.
    Each output element is the same length-k dot product either way (the same bits here, for
    k = 1 to 17)."""
    k, item = a.shape[1], a.element_size()
    return (k <= 16 and a.device.type == "cpu" and a.is_floating_point()
            and k * b.shape[1] * item <= 3 << 20 and a.shape[0] * b.shape[1] * item >= 8 << 20)


def _sole_storage(arr):
    """Whether no other tensor (a view) or numpy array shares ``arr``'s memory. The storage
    object made to ask holds one use itself; without torch's counter, assume it is shared."""
    count = getattr(torch._C, "_storage_Use_Count", None)
    if count is None:
        return False
    return count(arr.untyped_storage()._cdata) == 2
