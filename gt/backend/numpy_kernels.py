"""The numpy engine's fused kernels: layer norm and attention as one engine call each.

The arithmetic is the composed ops' (gt/ops/linalg.py ``LayerNorm``, gt/ops/attention.py), with
what numpy does slowly done another way:

- Sums along a row (a mean over the features, the softmax's total) are BLAS products with a
  vector of ones (gemv) instead of ``np.sum(axis=-1)``: on a 2-core EPYC (OpenBLAS 0.3.31) the
  row sums of a (3136, 128) array took 0.045 ms against 0.17, those of the small decoder's
  (64, 4, 49, 49) attention weights 0.11 ms against 0.45. Column sums (a layer norm's weight
  and bias gradients) likewise: 0.04 ms against 0.12.
- Means that the composed backward takes of products made for them are products of arrays it
  has anyway (``mean(g * w) = g @ w / D``), so those temporaries are never made.
- Attention writes its output straight into the (B, L, H, E) layout that the heads are merged
  back into (a (B, L, H * E) view of it), not a (B, H, L, E) array copied afterwards; with
  ``packed=True`` its backward writes the three gradients where the packed (B, L, 3, H, E)
  input has q, k and v, instead of the op stacking three arrays.
- The attention softmax shifts each row by its first score, not its maximum (gt's
  ``_softmax_rows``: the maximum along short rows was the slowest step), applies the causal mask
  with ``np.fmin`` against a cached +-inf array, and copies ``k``/``v`` transposed before the
  batched products that read them so (``_times_transposed``); the backward needs no mask (blocked
  weights are exactly 0). On the decoder's (64, 4, 49, 32) heads the forward took 1.91-1.96 ms
  against 2.68-3.05 and the backward 2.43-2.56 against 3.01-3.42 (2-core EPYC, numpy 2.4.6,
  OpenBLAS 0.3.31 SkylakeX kernels, one process each, alternated); the same weights to float
  rounding, and a causal row's output still depends on that row's keys alone, to the bit.
- Ops between an (n, d) array and a vector along its columns (a layer norm's weight and bias)
  run on the vector tiled (``_per_column``), so numpy calls its inner loop a few times instead
  of once per row: the same bits, forward 0.39-0.40 ms against 0.45, backward 0.51 against
  0.56-0.57 on (3136, 128). A vector along the rows (the mean, ``rstd``) is broadcast as
  ``values[:, None]``: once faster alone with the vector repeated into a whole (n, d) array, but
  inside the decoder's step (cold caches) that array's extra pass cost more than it saved: the
  9 layer norms of a step took 6.1 ms forward and 10.1 ms backward against 7.0 and 11.8 with
  repeats (thread time on one core, A/B in one process on a busy 2-core EPYC); the same bits.
- The backwards' temporaries as large as their inputs go back to the engine's buffer pool
  (``recycle``): freed to glibc instead, they made the heap shrink and grow again within a
  step, and with glibc's default settings the small decoder's step faulted in more pages
  with the kernels than without them.

The sums add in another order than numpy's pairwise ``np.sum``: values agree with the composed
ops to float rounding (1e-7 relative in float32), as the torch engine's kernels do. Measured on
the benchmarks' small decoder (benchmarks/small_decoder.py; 2-core AMD EPYC, A/B in one
process, blocks of 5 steps, freed memory retained): 193-206 ms a step against 202-214 ms
composed in five runs, and 3.5-4.6 ms less again with the packed gradient; with glibc's
defaults, one process each, 218-219 ms against 220-242 ms.

A mixin of ``NumpyEngine``, which owns ``_ones`` and ``_limits``. Each method answers None where its kernel does
not apply (another dtype, mismatched shapes, an empty array), and the ops layer then composes
the op.
"""

import math

import numpy as np

from gt.backend.numpy_halves import Halves
from gt.backend.numpy_layouts import row_major, torch_layout
from gt.backend.numpy_ties import keep_x

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))   # the dtypes of the kernels (and of numpy's BLAS)
ZERO_ROW = 1 << 14     # elements of the row of zeros that ReLU takes its maximum against
SPLIT_MIN = 1 << 17    # attention weights (elements) from which a kernel runs in two halves at once
_HALVES = Halves()     # the process's helper thread for them, started on first use


def _floating(*arrays):
    """Whether every array that is not None is an ndarray of one float dtype (float32 or float64)."""
    dtype = None
    for a in arrays:
        if a is None:
            continue
        if type(a) is not np.ndarray or a.dtype not in FLOATS or (dtype is not None and a.dtype != dtype):
            return False
        dtype = a.dtype
    return dtype is not None


def _per_column(a, values):
    """``a`` (n, d) as (n / k, k * d) and ``values`` (d,) tiled k times: an op
    between them runs n / k inner loops of k * d elements instead of n of d (k the largest
    divisor of n with k * d <= 8192 and k <= 256). On the decoder's (3136, 128), k = 64: a product
    with the weight took 0.056 ms against 0.094. The same values either way."""
    n, d = a.shape
    k = next(j for j in range(max(1, min(n, 8192 // max(d, 1), 256)), 0, -1) if n % j == 0)
    tiled = np.empty((k, d), values.dtype)     # np.tile's values, without its Python (2 us a call)
    tiled[...] = values
    return a.reshape(n // k, k * d), tiled.reshape(k * d)


def _corrected_two_pass(xhat, shift, var, eps):
    """The corrected two-pass algorithm of a layer norm's rows: ``xhat`` (n, d) is x less the rounded
    mean, ``shift`` (n,) xhat's own mean (what that rounding left), ``var`` (n,) the mean of xhat's
    squares. Makes ``var`` the variance plus ``eps`` and takes ``shift`` off the rows where
    1/sqrt(var + eps) scales it past the dtype's resolution: where a row's values (nearly) agree (a
    row of equal float32 values gave 1e-4 for torch's 0). Elsewhere the correction is below the
    rounding, and the pass over the rows is skipped."""
    var -= shift * shift
    np.maximum(var, 0, out=var)
    var += eps
    off = np.flatnonzero(np.abs(shift) > np.sqrt(var) * np.finfo(xhat.dtype).eps)
    if 4 * off.size > len(shift):
        xhat -= shift[:, None]
    elif off.size:
        xhat[off] -= shift[off, None]


def _times_columns(a, values, out):
    """``a * values`` (values along the columns of the (n, d) ``a``) into the contiguous ``out``."""
    wide, tiled = _per_column(a, values)
    np.multiply(wide, tiled, out=out.reshape(wide.shape))


class NumpyKernels:
    def swap_last(self, x):
        return x.swapaxes(-1, -2)      # a fifth of np.transpose's time, and no axes list to build

    def _ones_vector(self, n, dtype):
        """A read-only vector of ``n`` ones (a view of one kept per dtype, grown as needed)."""
        return self._constant_vector(1, n, dtype)

    def _constant_vector(self, value, n, dtype):
        """A read-only vector of ``n`` times ``value`` (a view of one kept per value and dtype)."""
        key = (value, np.dtype(dtype))
        kept = self._ones.get(key)
        if kept is None or kept.size < n:
            kept = np.full(max(n, 1024), value, dtype)
            kept.flags.writeable = False
            self._ones[key] = kept
        return kept[:n]

    def _times_transposed(self, a, b, out):
        """``a @ b^T`` over the last two axes into ``out``, with ``b^T`` copied into contiguous
        memory first: numpy's batched product of small matrices ran 0.71-0.74 ms with the
        transposed view and 0.54-0.58 with the copy (0.14 of it) on the decoder's (64, 4, 49, 32)."""
        bt = self.blocks.empty(b.shape[:-2] + (b.shape[-1], b.shape[-2]), b.dtype)
        np.copyto(bt, np.swapaxes(b, -1, -2))
        return np.matmul(a, bt, out=out)

    def _causal_limits(self, n_q, n_k, dtype):
        """A read-only (n_q, n_k) array: -inf where query i may not see key j > i, +inf elsewhere."""
        key = (n_q, n_k, np.dtype(dtype).str)
        limits = self._limits.get(key)
        if limits is None:
            limits = np.where(np.arange(n_q)[:, None] < np.arange(n_k)[None, :], -np.inf, np.inf).astype(dtype)
            limits.flags.writeable = False
            self._limits[key] = limits
        return limits

    def _softmax_rows(self, w):
        """The softmax of each row of the scores ``w`` (..., n_k), in place. Each row's first score
        (key 0, which every query sees, causal or not) is subtracted before exp instead of the row's
        maximum: the same weights to float rounding, without a reduction along short rows (0.53
        of the small decoder's 0.9 ms a layer). Then exp(0) = 1 keeps every sum at least 1, and
        only a row with a score 88 above its first overflows: such rows, and non-finite ones, are
        done again the usual way, from a copy of the scores. Each row's result depends on that row
        alone, so a causal query's output never depends on later keys, to the bit."""
        n_k = w.shape[-1]
        scores = self.blocks.empty(w.shape, w.dtype)
        np.copyto(scores, w)
        with np.errstate(over="ignore", invalid="ignore"):   # an overflow here is what sends a row back
            w -= w[..., :1].copy()
            self.exp_(w)
            sums = w @ self._ones_vector(n_k, w.dtype)
            redo = ~np.isfinite(sums)
            if redo.any():
                rows = scores[redo]
                top = rows.max(axis=-1, keepdims=True)
                top[top == -np.inf] = 0.0        # every score -inf (an infinite query): zeros, as torch's
                rows -= top
                np.exp(rows, out=rows)
                w[redo] = rows
                total = rows @ self._ones_vector(n_k, w.dtype)
                total[total == 0] = 1.0
                sums[redo] = total
            self.recycle(scores)
            w /= sums[..., None]

    # ---- ReLU ----------------------------------------------------------------------------------
    def relu(self, x):
        # out= keeps a 0-d input an array (a ufunc alone returns a numpy scalar for it); a permuted
        # x: torch's result keeps its layout (numpy_layouts.py)
        if x.flags.c_contiguous:
            return self._max_zero(x, self.blocks.empty(x.shape, x.dtype))
        return torch_layout(self._max_zero(x, np.empty_like(x)), x)

    def relu_(self, x):
        return self._max_zero(x, x)

    def _max_zero(self, x, out):
        """``max(x, 0)`` into ``out``. numpy's ``maximum`` with a scalar runs a loop several times
        slower than with an array: large float arrays are taken as rows of ``ZERO_ROW`` elements
        against one read-only row of zeros, the same values (NaN and -0.0 included). On the
        decoder's (3136, 512): 0.24 ms against 0.59 (2-core EPYC, numpy 2.4.6). ``keep_x``: -0.0 stays
        -0.0, as torch's relu (numpy's maximum gives 0.0 with its arguments in the other order)."""
        if x.dtype in FLOATS and x.size >= ZERO_ROW and x.flags.c_contiguous and out.flags.c_contiguous:
            flat, dst = x.reshape(-1), out.reshape(-1)
            n = flat.size // ZERO_ROW * ZERO_ROW
            zeros = self._constant_vector(0, ZERO_ROW, x.dtype)
            keep_x(np.maximum, flat[:n].reshape(-1, ZERO_ROW), zeros, out=dst[:n].reshape(-1, ZERO_ROW))
            keep_x(np.maximum, flat[n:], zeros[:flat.size - n], out=dst[n:])
            return out
        return keep_x(np.maximum, x, x.dtype.type(0), out=out)

    def relu_backward(self, grad, out):
        if (type(grad) is np.ndarray and type(out) is np.ndarray and grad.shape == out.shape
                and grad.dtype == out.dtype and grad.dtype in FLOATS):
            # ``out`` is ReLU's output (positive, +-0 or NaN), so torch's "not <= 0" (a NaN output
            # passes its gradient on) is "!= 0": one comparison into a float mask, then the product
            # in place, into a parked buffer where there is one (LinearRelu hands its gradient back
            # after use). 0.41 ms against 0.59 with a bool mask on (3136, 512); the same bits.
            mask = np.not_equal(out, 0, out=self.empty_reused(out.shape, out.dtype), casting="unsafe")
            return np.multiply(grad, mask, out=mask)
        passes = np.logical_not(np.less_equal(out, 0))     # torch's rule, for any other input
        return np.multiply(grad, passes, out=np.empty_like(grad))

    # ---- layer norm ----------------------------------------------------------------------------
    def layer_norm_fused(self, x, weight, bias, n_axes, eps):
        if not _floating(x, weight, bias) or x.size == 0 or not 1 <= n_axes <= x.ndim:
            return None
        shape = x.shape[x.ndim - n_axes:]
        if any(p is not None and p.shape != shape for p in (weight, bias)):
            return None
        d = math.prod(shape)
        rows = x.reshape(-1, d)                        # a copy only where x is strided
        ones = self._ones_vector(d, x.dtype)
        mean = rows @ ones
        mean /= d
        # both from the engine's block cache (numpy_engine.py): freed at the step's end, they come
        # back with their pages mapped instead of faulting in afresh at the next step
        xhat = np.subtract(rows, mean[:, None], out=self.blocks.empty(rows.shape, rows.dtype))
        shift = xhat @ ones
        shift /= d
        out = np.multiply(xhat, xhat, out=self.blocks.empty(rows.shape, rows.dtype))   # squares, then the output
        var = out @ ones
        var /= d
        _corrected_two_pass(xhat, shift, var, eps)
        rstd = np.sqrt(var, out=var)
        np.divide(1.0, rstd, out=rstd)
        xhat *= rstd[:, None]
        if weight is not None:
            _times_columns(xhat, weight.reshape(-1), out)
        else:
            np.copyto(out, xhat)                       # never the saved xhat itself: the caller owns out
        if bias is not None:
            wide, b = _per_column(out, bias.reshape(-1))
            wide += b
        return out.reshape(x.shape), (xhat, rstd, x.shape)   # xhat, not x, is what the backward reads

    def layer_norm_fused_backward(self, grad, weight, bias, state, n_axes, needs):
        xhat, rstd, shape = state
        nx, nw, nb = needs
        n, d = xhat.shape
        g = np.asarray(grad, dtype=xhat.dtype).reshape(n, d)
        gxhat = np.multiply(g, xhat, out=self.empty_reused((n, d), xhat.dtype))   # a temporary: parked after
        ones = self._ones_vector(n, xhat.dtype)
        gw = (ones @ gxhat).reshape(weight.shape) if nw else None
        gb = (ones @ g).reshape(bias.shape) if nb else None
        gx = None
        if nx:
            # d/dx of (x - mean) * rstd: rstd * (gy - mean(gy) - xhat * mean(gy * xhat)), gy = g * w
            w = weight.reshape(-1) if weight is not None else self._ones_vector(d, xhat.dtype)
            wd = w / d
            m1 = g @ wd                                # mean(g * w) along each row
            m2 = gxhat @ wd                            # mean(g * w * xhat)
            gx = self.blocks.empty(g.shape, g.dtype)
            _times_columns(g, w, gx)
            gx -= m1[:, None]
            np.multiply(xhat, m2[:, None], out=gxhat)
            gx -= gxhat
            gx *= rstd[:, None]
            gx = gx.reshape(shape)
        self.recycle(gxhat)
        return gx, gw, gb

    # ---- attention -----------------------------------------------------------------------------
    def _over_batch(self, part, n, size):
        """``part(lo, hi)`` over ``range(n)`` (a batch axis), in two halves at once where the
        kernel is large (``size`` elements of attention weights), the thread policy gives the
        engine more than one core and the BLAS's idle threads are known to sleep soon (blas.py,
        ``Blas.spin``: while they spin, the helper thread fights them for the core and the
        halves were slower than whole); whole otherwise. Either way each batch item is computed
        by the same calls, to the same bits."""
        lib = self._library()                          # the policy reads the machine's load
        if (n >= 2 and size >= SPLIT_MIN and lib is not None and lib.brief_spin
                and self._threads.current >= 2):
            _HALVES.run(part, n)
        else:
            part(0, n)

    def attention_fused(self, q, k, v, scale, causal):
        if (not _floating(q, k, v) or not q.ndim == k.ndim == v.ndim >= 3 or 0 in q.shape or 0 in k.shape
                or not q.shape[:-2] == k.shape[:-2] == v.shape[:-2] or q.shape[-1] != k.shape[-1]
                or v.shape[-2] != k.shape[-2] or 0 in v.shape):
            return None
        n_q, n_k = q.shape[-2], k.shape[-2]
        w = self.blocks.empty(q.shape[:-1] + (n_k,), q.dtype)     # the scores, then the weights
        if q.ndim == 4:
            # (B, H, L, Ev) as a view of a (B, L, H, Ev) array: merging the heads back is free
            b, h = q.shape[:2]
            out = self.blocks.empty((b, n_q, h, v.shape[-1]), q.dtype).transpose(0, 2, 1, 3)
        else:
            out = self.blocks.empty(q.shape[:-1] + (v.shape[-1],), q.dtype)
        limits = self._causal_limits(n_q, n_k, q.dtype) if causal and n_k > 1 else None

        def part(lo, hi):
            ws = self._times_transposed(q[lo:hi], k[lo:hi], w[lo:hi])
            ws *= scale
            if limits is not None:                     # key j after query i (torch's is_causal: tril)
                # -inf where blocked, the score elsewhere, NaN and inf alike: fmin against +-inf gives
                # masked_fill's values in 0.1 ms where np.copyto(where=) took 0.24 (the decoder's shape)
                np.fmin(ws, limits, out=ws)
            self._softmax_rows(ws)
            np.matmul(ws, v[lo:hi], out=out[lo:hi])

        self._over_batch(part, q.shape[0], w.size)
        return out, w

    def attention_fused_backward(self, grad, q, k, v, state, scale, causal, packed=False, split_ok=False):
        w = state      # packed: written in place, whatever split_ok says (no copy to save)
        if packed:
            # the three gradients are written where the packed input has q, k and v: no stacking
            b, h, n, e = q.shape
            whole = self.blocks.empty((b, n, 3, h, e), w.dtype)
            into = tuple(whole[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        else:
            into = tuple(self.blocks.empty(t.shape, w.dtype) for t in (q, k, v))

        def part(lo, hi):
            ws, g = w[lo:hi], grad[lo:hi]
            # two temporaries as large as these weights, parked after use
            gw = self._times_transposed(g, v[lo:hi], self.empty_reused(ws.shape, ws.dtype))   # d/d(weights)
            np.matmul(np.swapaxes(ws, -1, -2), g, out=into[2][lo:hi])
            t = np.multiply(gw, ws, out=self.empty_reused(ws.shape, ws.dtype))
            gw -= (t @ self._ones_vector(ws.shape[-1], ws.dtype))[..., None]   # through the softmax:
            gw *= ws                                                           # w * (gw - sum(gw * w))
            self.recycle(t)
            # no mask needed: a blocked weight is exactly 0, so gw is +-0 there (and where the upstream
            # gradient or a value is not finite, t made the whole row NaN first, as masking did not undo)
            gw *= scale
            np.matmul(gw, k[lo:hi], out=into[0][lo:hi])
            np.matmul(np.swapaxes(gw, -1, -2), q[lo:hi], out=into[1][lo:hi])
            self.recycle(gw)

        self._over_batch(part, w.shape[0], w.size)
        return whole.reshape(b, n, 3 * h * e) if packed else into


def array_sum(x, axis=None, keepdims=False):
    """``np.sum`` (row-major, as torch's), with float16 added up in float32 and rounded once, as torch's CPU sum does
    (numpy's sum over a non-last axis rounds to float16 after every row), and uint8 in int64."""
    if x.dtype == np.float16:
        return row_major(np.sum(x, axis=axis, keepdims=keepdims, dtype=np.float32).astype(np.float16))
    if x.dtype.kind == "u":       # numpy sums uint8 in uint64, which gt has not; torch's sum is int64
        return row_major(np.sum(x, axis=axis, keepdims=keepdims, dtype=np.int64))
    if type(x) is np.ndarray:      # what np.sum calls for an array, without its wrapper (1 us)
        return row_major(np.add.reduce(x, axis, None, None, keepdims=keepdims))
    return row_major(np.sum(x, axis=axis, keepdims=keepdims))
