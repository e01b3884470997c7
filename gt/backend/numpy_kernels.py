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

A mixin of ``NumpyEngine``, which owns ``_ones``. Each method answers None where its kernel does
not apply (another dtype, mismatched shapes, an empty array), and the ops layer then composes
the op.
"""

import math

import numpy as np

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))   # the dtypes of the kernels (and of numpy's BLAS)


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


class NumpyKernels:
    def _ones_vector(self, n, dtype):
        """A read-only vector of ``n`` ones (a view of one kept per dtype, grown as needed)."""
        ones = self._ones.get(dtype)
        if ones is None or ones.size < n:
            ones = np.ones(max(n, 1024), dtype)
            ones.flags.writeable = False
            self._ones[dtype] = ones
        return ones[:n]

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
        out = np.multiply(xhat, xhat, out=self.blocks.empty(rows.shape, rows.dtype))   # squares, then the output
        var = out @ ones
        var /= d
        var += eps
        rstd = np.sqrt(var, out=var)
        np.divide(1.0, rstd, out=rstd)
        xhat *= rstd[:, None]
        if weight is not None:
            np.multiply(xhat, weight.reshape(-1), out=out)
        else:
            np.copyto(out, xhat)                       # never the saved xhat itself: the caller owns out
        if bias is not None:
            out += bias.reshape(-1)
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
            gx = np.multiply(g, w, out=self.blocks.empty(g.shape, g.dtype))
            gx -= m1[:, None]
            np.multiply(xhat, m2[:, None], out=gxhat)
            gx -= gxhat
            gx *= rstd[:, None]
            gx = gx.reshape(shape)
        self.recycle(gxhat)
        return gx, gw, gb

    # ---- attention -----------------------------------------------------------------------------
    def attention_fused(self, q, k, v, scale, causal):
        if (not _floating(q, k, v) or not q.ndim == k.ndim == v.ndim >= 3 or 0 in q.shape or 0 in k.shape
                or not q.shape[:-2] == k.shape[:-2] == v.shape[:-2] or q.shape[-1] != k.shape[-1]
                or v.shape[-2] != k.shape[-2] or 0 in v.shape):
            return None
        n_q, n_k = q.shape[-2], k.shape[-2]
        # the scores, then the weights, in place
        w = np.matmul(q, np.swapaxes(k, -1, -2), out=self.blocks.empty(q.shape[:-1] + (n_k,), np.result_type(q, k)))
        w *= scale
        blocked = None
        if causal and n_k > 1:                         # key j after query i (torch's is_causal: tril)
            blocked = np.arange(n_q)[:, None] < np.arange(n_k)[None, :]
            self.masked_fill_(w, blocked, -np.inf)
        w -= w.max(axis=-1, keepdims=True)
        self.exp_(w)
        w /= (w @ self._ones_vector(n_k, w.dtype))[..., None]
        if q.ndim == 4:
            # (B, H, L, Ev) as a view of a (B, L, H, Ev) array: merging the heads back is free
            b, h = q.shape[:2]
            out = self.blocks.empty((b, n_q, h, v.shape[-1]), w.dtype).transpose(0, 2, 1, 3)
            np.matmul(w, v, out=out)
        else:
            out = np.matmul(w, v)
        return out, (w, blocked)

    def attention_fused_backward(self, grad, q, k, v, state, scale, causal, packed=False):
        w, blocked = state
        into = (None,) * 3
        if packed:
            # the three gradients are written where the packed input has q, k and v: no stacking
            b, h, n, e = q.shape
            whole = self.blocks.empty((b, n, 3, h, e), w.dtype)
            into = tuple(whole[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        # two temporaries as large as the weights, parked after use
        gw = np.matmul(grad, np.swapaxes(v, -1, -2), out=self.empty_reused(w.shape, w.dtype))   # d/d(weights)
        gv = np.matmul(np.swapaxes(w, -1, -2), grad, out=into[2])
        t = np.multiply(gw, w, out=self.empty_reused(w.shape, w.dtype))
        gw -= (t @ self._ones_vector(w.shape[-1], w.dtype))[..., None]   # through the softmax:
        gw *= w                                                          # w * (gw - sum(gw * w))
        self.recycle(t)
        if blocked is not None:
            self.masked_fill_(gw, blocked, 0.0)
        gw *= scale
        gq = np.matmul(gw, k, out=into[0])
        gk = np.matmul(np.swapaxes(gw, -1, -2), q, out=into[1])
        self.recycle(gw)
        return whole.reshape(b, n, 3 * h * e) if packed else (gq, gk, gv)
