"""The numpy engine's calls into its BLAS: products (each one lets the thread policy look at
the machine's load), the fused updates (``add_scaled_``: axpy; ``addmm_``: gemm with beta) and
the thread count (gt/backend/blas.py, gt/backend/threads.py); and the fast scatter-add of rows.
A mixin of ``NumpyEngine``, which owns ``_blas``, ``_threads``, ``_scratch`` and the buffer pool.
"""

import math
import sys

import numpy as np

from gt import config
from gt.backend import blas
from gt.backend.engine_quantized import QUANTIZE_BLOCK
from gt.backend.threads import ThreadPolicy


class NumpyBlas:
    # ---- fused in-place updates ------------------------------------------------------------
    UPDATE_CHUNK = 1 << 18            # elements per block: the 1 MiB scratch stays in cache

    def add_scaled_(self, target, value, alpha):
        """``target += alpha * value`` in place, without a full-size temporary. Large float
        arrays go to the BLAS's ``axpy`` (every thread of the library, one fused multiply-add
        per element, as torch's ``add_(value, alpha=)``). Otherwise, block by block through a
        small scratch buffer, so the update reads ``value`` and reads and writes ``target`` once
        each (``target += value * alpha`` also writes and re-reads a fresh temporary as large as
        ``target``, faulting in its pages); there the product is rounded to target's dtype
        first, exactly as in that expression. Anything but two C-contiguous arrays of one shape
        and dtype takes the plain expression."""
        if (type(target) is not np.ndarray or type(value) is not np.ndarray or not isinstance(alpha, (int, float))
                or target.shape != value.shape or target.dtype != value.dtype
                or not target.flags.c_contiguous or not value.flags.c_contiguous
                or target.size < 2 * self.UPDATE_CHUNK or np.may_share_memory(target, value)):
            target += value * alpha
            return target
        lib = self._library()
        if (lib is not None and target.dtype.kind == "f" and abs(alpha) <= np.finfo(target.dtype).max
                and lib.axpy(alpha, value, target)):
            return target
        t, v = target.reshape(-1), value.reshape(-1)
        n, chunk = t.size, self.UPDATE_CHUNK
        scratch = self._scratch.get(t.dtype)
        if scratch is None or scratch.size != chunk:  # kept: a fresh 1 MiB would fault in each time
            scratch = self._scratch[t.dtype] = np.empty(chunk, t.dtype)
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            b = scratch[:e - s]
            np.multiply(v[s:e], alpha, out=b)
            np.add(t[s:e], b, out=t[s:e])
        return target

    # elements per block of adam_step_ and sgd_step_: the blocks stay in the cache (L2 or L3),
    # and each of the dozen numpy calls a block costs ~1.5 us, so smaller blocks lose: on a
    # 2-core EPYC (1 MiB L2) a 10.24M float32 Adam step took 17-19 ms (best of 15) in blocks of
    # 256K and 512K, 18-19 of 128K, 20 of 64K, 21-22 of 32K, 27 of 16K; 48-55 ms whole-array
    ADAM_CHUNK = 1 << 18

    def adam_step_(self, param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
                   decoupled, maximize=False, max_exp_avg_sq=None):
        """``FastPaths.adam_step_`` to the same bits, maximize and amsgrad included: the same
        operations in the same order on each element, run block by block, so all of them happen
        on ``ADAM_CHUNK`` elements of each array while they sit in the cache (the whole-array
        version streams the weight's size through memory some twenty times), the intermediates
        in two scratch blocks kept per dtype (2 MiB for float32, ``_adam_scratch``) instead of
        five temporaries of the weight's size, each faulted in anew. The first moment's scaled
        addition is the BLAS axpy block by block where ``add_scaled_`` would take it for the
        whole array (one fused multiply-add per element either way). Anything but C-contiguous
        arrays of one shape and dtype that share no memory, or numbers not all Python's, takes
        the default."""
        arrays = (param, grad, exp_avg, exp_avg_sq) + (() if max_exp_avg_sq is None else (max_exp_avg_sq,))
        if not _blockable(arrays, (lr, beta1, beta2, eps, weight_decay)):
            return super().adam_step_(*arrays[:4], step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize,
                                      max_exp_avg_sq)
        lib = self._blocks_blas(param, grad, 1 - beta1)
        chunk, scratch = self.ADAM_CHUNK, self._adam_scratch(param.dtype)
        numbers = (math.sqrt(1 - beta2 ** step), -lr / (1 - beta1 ** step), lr, beta1, beta2, eps, weight_decay)
        flat = tuple(a.reshape(-1) for a in arrays) + (None,) * (5 - len(arrays))
        for s in range(0, param.size, chunk):
            blocks = tuple(None if a is None else a[s:s + chunk] for a in flat)
            _adam_block(blocks, scratch, lib, numbers, decoupled, maximize)
        return param

    def sgd_step_(self, param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov,
                  maximize):
        """``FastPaths.sgd_step_`` to the same bits, block by block as ``adam_step_`` (weight
        decay and Nesterov each made two temporaries of the weight's size there); each scaled
        addition is the BLAS axpy block by block where ``add_scaled_`` would take it for the
        whole array. Anything ``adam_step_`` would not take in blocks takes the default."""
        arrays = (param, grad) if momentum_buffer is None else (param, grad, momentum_buffer)
        numbers = (lr, momentum, dampening, weight_decay)
        if not _blockable(arrays, numbers):
            return super().sgd_step_(param, grad, momentum_buffer, *numbers, nesterov, maximize)
        lib = self._blocks_blas(param, grad)
        axpy = None if lib is None else lib.axpy
        scratch = self._adam_scratch(param.dtype)
        flat = tuple(a.reshape(-1) for a in arrays) + (None,) * (3 - len(arrays))
        chunk = self.ADAM_CHUNK
        for s in range(0, param.size, chunk):
            blocks = tuple(None if a is None else a[s:s + chunk] for a in flat)
            _sgd_block(blocks, scratch, axpy, numbers, nesterov, maximize)
        return param

    def _blocks_blas(self, param, grad, alpha=1.0):
        """The BLAS library whose axpy ``adam_step_`` and ``sgd_step_`` take block by block where
        ``add_scaled_`` would take it for the whole array (``alpha``: a scale known before the
        blocks), else None. Their arrays are alike (``_blockable``), so one pair is asked."""
        if param.size < 2 * self.UPDATE_CHUNK or param.dtype.kind != "f" or not abs(alpha) <= np.finfo(param.dtype).max:
            return None
        lib = self._library()         # a call on no elements asks whether it has the dtype's kernel
        return lib if lib is not None and lib.axpy(alpha, grad[:0], param[:0], 0) else None

    def _adam_scratch(self, dtype):
        """The two scratch rows of ``ADAM_CHUNK`` elements of ``dtype`` the blocked updates write
        their intermediates into; kept: fresh blocks would fault their pages in at each step."""
        scratch = self._scratch.get(("adam", dtype))
        if scratch is None or scratch.shape[1] != self.ADAM_CHUNK:
            scratch = self._scratch[("adam", dtype)] = np.empty((2, self.ADAM_CHUNK), dtype)
        return scratch

    def addmm_(self, target, a, b, alpha):
        """``target += alpha * (a @ b)``: one BLAS gemm with ``beta=1`` writing into ``target``
        where the library and the dtypes allow it (operands in layouts the kernel cannot read
        copied first, so the bits do not depend on the layout), else the product then ``add_scaled_``."""
        lib = self._library()
        if (lib is not None and type(target) is np.ndarray and isinstance(alpha, (int, float))
                and target.dtype.kind == "f" and abs(alpha) <= np.finfo(target.dtype).max
                and _with_copies(lib.gemm_, target, a, b, alpha, 1.0)):
            return target
        return self.add_scaled_(target, np.matmul(a, b), alpha)

    # ---- threads ---------------------------------------------------------------------------
    def _library(self):
        """The BLAS library gt calls (None where it can call none), found once; its ThreadPolicy
        starts then: MKL where ``GT_BLAS`` picks it (gt/backend/mkl.py), else numpy's own."""
        if self._blas is None:
            own = blas.find()
            if own:
                done = own.spin()
                if done and config.verbose():
                    print(f"gt numpy engine: {done}", file=sys.stderr)
            self._blas = _products_library() or own or False
            setter = self._blas.set_num_threads if self._blas else None
            if self._blas and own and self._blas is not own:
                # numpy's own library still runs the products MKL is not handed (attention's
                # stacked views): the kernels' halves wait for its threads as before, and the
                # thread policy sets both libraries' counts (a busy machine would stall either)
                self._blas.brief_spin = own.brief_spin
                setter = _both(self._blas.set_num_threads, own.set_num_threads)
            if self._blas:
                self._threads = ThreadPolicy.from_setting(self._blas.get_num_threads, setter, config.num_threads())
        if self._threads is not None:
            self._threads.tick()
        return self._blas or None

    def get_num_threads(self):
        lib = self._library()
        return lib.get_num_threads() if lib is not None else 1

    def set_num_threads(self, n):
        if self._library() is not None:
            self._threads.set_fixed(n)

    def set_warn_always(self, flag):
        """numpy has no warn-once warnings of its own: nothing to hand on."""

    def set_flush_denormal(self, flag):
        """numpy cannot set the CPU's flush-to-zero flag: subnormals are kept, so only ``False`` holds."""
        return not flag

    def quantize_centered(self, x, inverse, zero_point, qmax):
        """``FastPaths.quantize_centered`` (gt/backend/engine_quantized.py) with numpy's ``out=``:
        one float64 buffer for every block and no array made per step: 8 rows of 40,000 in 0.33
        against 0.49 ms (the same bits; 128 rows: the same time, memory-bound)."""
        flat = x.reshape(-1)
        out = np.empty(flat.shape, np.float32)
        buf = np.empty(min(QUANTIZE_BLOCK, flat.size), np.float64)
        for i in range(0, flat.size, QUANTIZE_BLOCK):
            part, wide = out[i:i + QUANTIZE_BLOCK], buf[:min(QUANTIZE_BLOCK, flat.size - i)]
            np.multiply(flat[i:i + QUANTIZE_BLOCK], inverse, out=wide, dtype=np.float64)
            wide += zero_point
            part[...] = wide                    # the fma's one rounding to float32
            np.rint(part, out=part)
            np.clip(part, 0, qmax, out=part)
            part -= zero_point
        return out.reshape(x.shape)

    def matmul_reused(self, a, b):
        """``a @ b`` for 2-D ``a`` and ``b``: every product's result is in the block cache here."""
        return self.matmul(a, b)

    def matmul(self, a, b):
        lib = self._library()    # the thread policy looks at the machine's load before a BLAS product
        # a product of arrays into the engine's block cache (numpy_engine.py); numpy's own call
        # for vectors, and for shapes that do not match (numpy's error)
        if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim >= 2 and b.ndim >= 2:
            try:
                shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
            except ValueError:
                return np.matmul(a, b)
            if a.shape[-1] != b.shape[-2]:
                return np.matmul(a, b)
            return self.product_into(a, b, self.blocks.empty(shape, np.result_type(a, b)), lib)
        return np.matmul(a, b)

    def product_into(self, a, b, out, lib=None):
        """``np.matmul(a, b, out=out)`` for arrays of two or more axes whose shapes fit ``out``:
        in the library gt picked for products (MKL: ``GT_BLAS``) where it takes the layouts and
        dtypes, else numpy's. ``lib``: ``self._library()`` when the caller has it already."""
        lib = lib or self._blas
        if (lib and lib.products and a.dtype == b.dtype == out.dtype and out.flags.c_contiguous
                and out.size and a.shape[-1] and _library_product(lib, a, b, out)):
            return out
        return np.matmul(a, b, out=out)

    def linear(self, x, weight, bias):
        """A Linear layer's ``x @ W.T + b`` (see ``FastPaths.linear``). When the weight is
        row-major and the flattened input has fewer rows than the weight has outputs, the product
        is asked for as ``(W @ x.T).T``: the same BLAS call with its two sides swapped, which
        OpenBLAS runs much faster for few rows (measured on a 2-core Xeon, numpy 2.4.6 / OpenBLAS
        0.3.31 with its SkylakeX kernels: 8 x 40,000 x 256 in 1.7 ms against 2.9 ms,
        128 x 40,000 x 256 in 9.9 against 10.9 ms, 128 x 256 x 1024 in 0.20 against 0.24 ms;
        slower for tall inputs, which keep the usual call) and to the same bits (each output is
        the same dot product). On a 2-core AMD EPYC with OpenBLAS's Haswell kernels the swapped
        call took 0.77-0.88 of the time for 8 and 128 rows into 256-1024 outputs (128 x 40,000 x
        256: 22.8 against 26.2 ms; 8 rows of 40,000: the same), with other bits there: the
        kernels sum in another order (1e-7 relative). On a 2-core AMD EPYC where OpenBLAS loads
        its SkylakeX kernels (AVX-512), the same bits; ``B.linear`` in alternated rounds, rows of
        40,000 into 256: 8 rows 3.0-3.2 against 3.6-3.8 ms, 32 rows 5.7 against 7.7, 64 rows 9.3
        against 12.2, 128 rows 16.4-17.4 against 16.2-22.1 (the same on a quiet machine, the
        usual call up to 1.27x slower on a busy one), 192 rows 26.0 against 30.5; 8 rows of 256
        or 1024 into 256-1024 outputs 0.44-0.49 of the time; 512 rows, taller than wide, 1.13x
        (the usual call kept). Only where it was measured: those three (``_swap_few_rows``), and
        at most 256 rows into at most 1024 outputs. The swapped result is column-major and is copied
        row-major, as torch's result is (its ``view(-1)`` must succeed), so the swap is taken only
        where it pays with the copy (Xeon, 2026-12-06, alternated: up to 32 rows 0.35-0.75 of the
        usual call's time for 128-40,000 inputs, 128 rows 0.86-0.92 for 4,096-40,000 inputs, but
        1.4-1.9x for 128-256 rows of 128-256 inputs): up to 32 rows, or inputs of 2,048 and more. A wide head's logits beyond the measured sizes
        stay row-major: numpy's ``argmax`` over the last axis of a column-major (1000, 12,000)
        result copies it across the cache, 77 ms against 4.5 ms row-major."""
        lib = self._library()
        x2 = x.reshape(math.prod(x.shape[:-1]), x.shape[-1])   # not -1: an empty last axis has no -1
        dtype = np.result_type(x2, weight)   # the output in the engine's block cache (numpy_engine.py)
        rows, shape = x2.shape[0], x.shape[:-1] + (weight.shape[0],)
        if (rows < weight.shape[0] and rows <= 256 and weight.shape[0] <= 1024 and (rows <= 32 or x2.shape[1] >= 2048)
                and weight.ndim == 2 and weight.flags.c_contiguous
                and not weight.flags.f_contiguous and x.dtype == weight.dtype and self._swap_few_rows(lib)):
            swapped = np.matmul(weight, x2.T, out=self.blocks.empty((weight.shape[0], rows), dtype)).T
            # torch's result is row-major (a column-major one's view(-1) would raise where torch's succeeds)
            out = self.blocks.empty(swapped.shape, dtype)
            np.copyto(out, swapped)
        else:
            out = self.product_into(x2, weight.T, self.blocks.empty((rows, weight.shape[0]), dtype), lib)
        if bias is not None:
            out += bias
        return out if out.shape == shape else out.reshape(shape)

    def _swap_few_rows(self, lib):
        """Whether ``linear`` may swap the product's sides: decided once, by the CPU's vendor
        and the kernels OpenBLAS loaded for it (SkylakeX kernels on Intel and on AMD, Haswell's on AMD)."""
        if self._swap is None:
            from gt.backend import _cpu_flags    # the package's reading of /proc/cpuinfo

            self._swap = lib is not None and (lib.architecture, _cpu_flags()[1]) in (
                ("SkylakeX", "GenuineIntel"), ("SkylakeX", "AuthenticAMD"), ("Haswell", "AuthenticAMD"))
        return self._swap


def _both(first, second):
    """One thread-count setter for two libraries (the policy governs every library gt calls)."""
    def set_num_threads(n):
        first(n)
        second(n)
    return set_num_threads


def _with_copies(kernel, c, a, b, *numbers):
    """``kernel(c, a, b, *numbers)`` (``Blas.gemm_``/``gemm_batched_``), and again on contiguous
    copies of ``a`` and ``b`` where it declined a layout it cannot read in place, so the bits do
    not depend on the layout; False where it declines anyway (dtypes, shapes, overlap)."""
    if kernel(c, a, b, *numbers):
        return True
    if a.dtype != c.dtype or b.dtype != c.dtype or (a.flags.c_contiguous and b.flags.c_contiguous):
        return False
    return kernel(c, np.ascontiguousarray(a), np.ascontiguousarray(b), *numbers)


def _library_product(lib, a, b, out):
    """``out[...] = a @ b`` in ``lib`` (MKL), ``out`` C-contiguous and not empty; False where the
    library lacks the dtype's kernels. A stack of rows times one matrix is one product of all the
    rows (the same bits per row in MKL's reproducible mode), a stack of matrices one strided batch
    product; operands in layouts the kernel cannot read are copied first, as torch does, so the
    bits do not depend on the layout (numpy's fallback would compute them in its own BLAS)."""
    if b.ndim == 2:
        a2, out2 = a.reshape(-1, a.shape[-1]), out.reshape(-1, out.shape[-1])
        return _with_copies(lib.gemm_, out2, a2, b, 1.0, 0.0)
    batch = out.shape[:-2]
    a3 = np.broadcast_to(a, batch + a.shape[-2:]).reshape((-1,) + a.shape[-2:])   # views where the strides allow
    b3 = np.broadcast_to(b, batch + b.shape[-2:]).reshape((-1,) + b.shape[-2:])
    out3 = out.reshape((-1,) + out.shape[-2:])
    return _with_copies(lib.gemm_batched_, out3, a3, b3)


def _products_library():
    """MKL's ``Blas`` where ``GT_BLAS=mkl`` asks for it (gt/backend/mkl.py), else None; an error
    naming why where it cannot be loaded. Not the default: measured on a 2-core Xeon (Sapphire
    Rapids), alternated processes without torch, MKL took the Pixel Transformer's forward at
    16 x 8 from 20.2 to 16.3 ms and its training step from 50.5 to 45.8 ms, but the small decoder's
    step from 146 to 155 ms (its attention's stacked products stay in OpenBLAS, whose threads and
    MKL's then both wait on the two cores)."""
    if config.blas_name() != "mkl":
        return None
    from gt.backend import _cpu_flags, mkl    # the package's reading of /proc/cpuinfo

    lib, said = mkl.load("avx512f" in _cpu_flags()[0])
    if lib is None:
        raise config.EnvironmentVariableError(f"GT_BLAS=mkl, but {said}")
    if config.verbose():
        print(f"gt numpy engine: {said}", file=sys.stderr)
    return lib


def _blockable(arrays, numbers):
    """Whether ``adam_step_`` or ``sgd_step_`` may run block by block: C-contiguous, writeable ndarrays of one
    shape and dtype, no two sharing memory (arrays owning theirs cannot, unless one is another:
    the bounds are asked only where one is a view), and Python's numbers (numpy's scalars or
    arrays would type the arithmetic otherwise)."""
    first = arrays[0]
    for a in arrays:
        if (type(a) is not np.ndarray or a.shape != first.shape or a.dtype != first.dtype
                or not a.flags.c_contiguous or not a.flags.writeable):
            return False
    if any(a.base is not None for a in arrays) or len({id(a) for a in arrays}) < len(arrays):
        if any(np.may_share_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:]):
            return False
    return all(type(x) in (int, float) for x in numbers)


def _adam_block(arrays, scratch, lib, numbers, decoupled, maximize):
    """One block of ``adam_step_``: ``FastPaths.adam_step_``'s operations, in its order, on
    blocks of the arrays (amsgrad's maximum or None last); intermediates in the scratch rows ``t``, ``d``."""
    p, g, m, v, v_max = arrays
    bc2_sqrt, step_size, lr, beta1, beta2, eps, weight_decay = numbers
    t, d = scratch[0, :p.size], scratch[1, :p.size]
    if maximize:
        g = np.negative(g, out=d)
    if weight_decay != 0:
        if decoupled:
            np.multiply(p, 1 - lr * weight_decay, out=p)
        else:
            g = np.add(g, np.multiply(weight_decay, p, out=t), out=d)
    np.multiply(m, beta1, out=m)
    if lib is not None:
        lib.axpy(1 - beta1, g, m, 0)
    else:
        np.add(m, np.multiply(g, 1 - beta1, out=t), out=m)
    np.multiply(v, beta2, out=v)
    np.multiply(g, g, out=t)
    np.multiply(t, 1 - beta2, out=t)
    np.add(v, t, out=v)
    if v_max is not None:
        v = np.maximum(v_max, v, out=v_max)
    np.sqrt(v, out=t)
    np.divide(t, bc2_sqrt, out=t)
    np.add(t, eps, out=t)
    np.divide(m, t, out=t)
    np.multiply(t, step_size, out=t)
    np.add(p, t, out=p)


def _sgd_block(arrays, scratch, axpy, numbers, nesterov, maximize):
    """One block of ``sgd_step_``: ``FastPaths.sgd_step_``'s operations, in its order, on blocks
    of the parameter, its gradient and its momentum buffer (or None); intermediates in ``t``, ``d``."""
    p, g, buf = arrays
    lr, momentum, dampening, weight_decay = numbers
    t, d = scratch[0, :p.size], scratch[1, :p.size]
    if maximize:
        g = np.negative(g, out=d)
    if weight_decay != 0:
        g = np.add(g, np.multiply(weight_decay, p, out=t), out=d)
    if buf is not None:
        np.multiply(buf, momentum, out=buf)
        _add_block(buf, g, 1 - dampening, axpy, t)
        g = np.add(g, np.multiply(momentum, buf, out=t), out=t) if nesterov else buf
    _add_block(p, g, -lr, axpy, t)


def _add_block(target, value, alpha, axpy, t):
    """Tensor.add_ on a block: a plain addition for alpha 1, else ``add_scaled_``'s arithmetic
    (``axpy`` where it would take the BLAS's; the product rounded into ``t`` first otherwise,
    which may be ``value`` itself)."""
    if alpha == 1:
        np.add(target, value, out=target)
    elif axpy is None or abs(alpha) > np.finfo(target.dtype).max or not axpy(alpha, value, target, 0):
        np.add(target, np.multiply(value, alpha, out=t), out=target)


def add_rows(target, index, values):
    """``np.add.at(target, index, values)`` for rows of ``target`` picked by one integer array
    (an embedding's or a gather's gradient), several times faster: the indices sorted (stably,
    so equal ones keep their order), each run of equal ones summed with one ``reduceat``, then
    one fancy-indexed add of distinct rows. The sums may round differently from one-by-one
    adds (a few ulps of the largest)."""
    flat = index.reshape(-1)
    flat = np.where(flat < 0, flat + target.shape[0], flat)    # -1 and n-1 are one row
    rows = values.reshape((flat.size,) + target.shape[1:])
    if flat.size == 0:
        return target
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    target[ordered[starts]] += np.add.reduceat(rows[order], starts, axis=0)
    return target
