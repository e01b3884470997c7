"""Convolution and pooling over the trailing spatial axes of (N, C, *size) arrays (1, 2 or 3 of
them), each one op with its backward. Arguments arrive checked and normalised by gt/nn/conv_functions.py:
``stride`` and ``dilation`` one int per spatial axis, ``padding`` one ``(before, after)`` pair per
spatial axis (``padding="same"`` and ``ceil_mode`` may pad one side more).

The composed path is im2col: the padded input's sliding windows (``B.windows``, a strided view)
are copied once into columns, and one batched product per group of channels makes the output.
The input's gradient puts the columns' gradients back where the windows read them
(``B.fold_windows``, one strided scatter-add per kernel offset). An engine with its own
convolution kernel (``B.conv_fused``: torch's) runs that instead, forward and backward.

One op rather than a composition of gt ops (a slice of the padded input per kernel offset,
stacked, then a product: each slice's backward a scatter into zeros as large as the input): a
small CNN's training step (batch 32, 1x28x28 -> 16 -> 32 channels, 3x3, max pools) took
23.5-25.6 ms with the op and 27.7-35.4 ms composed, numpy engine, one thread of a 2-core CPU."""

import copy
import itertools
import math

from gt import amp, dtypes
from gt.autograd import Function
from gt.backend import B
from gt.backend.engine_defaults import FastPaths
from gt.ops._shapes import numel

# what a max pool pads with: below every value of the dtype
_LOWEST = {dtypes.to_dtype(name): low for name, (low, _) in dtypes.INT_RANGES.items()}


def pad_constant(x, pads, value):
    """``x`` (..., *size) with ``value`` added around its last ``len(pads)`` axes, ``pads`` one
    ``(before, after)`` pair per axis: a new array (``x`` itself where nothing is added)."""
    if not any(lo or hi for lo, hi in pads):
        return x
    lead = x.ndim - len(pads)
    shape = tuple(x.shape[:lead]) + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[lead:], pads))
    out = B.full(shape, value, B.dtype_of(x))
    B.setitem(out, _inner(lead, tuple(x.shape[lead:]), pads), x)
    return out


def _inner(lead, size, pads):
    """The index of the unpadded part of a padded array."""
    return (slice(None),) * lead + tuple(slice(lo, lo + n) for n, (lo, _) in zip(size, pads))


def _unpad(x, size, pads):
    """The part of a padded (..., *padded size) array that is the unpadded (..., *size) one (a view)."""
    return B.getitem(x, _inner(x.ndim - len(pads), size, pads)) if any(lo or hi for lo, hi in pads) else x


def _window_axes_last(nd, lead=2):
    """The permutation of (lead..., *kernel, *out) that puts the kernel axes last, or back."""
    return tuple(range(lead)) + tuple(range(lead + nd, lead + 2 * nd)) + tuple(range(lead, lead + nd))


class Conv(Function):
    """Cross-correlation (torch's convolution) of x (N, C, *size) with weight (O, C / groups,
    *kernel), plus bias (O,) -> (N, O, *out). The composed path saves the columns (the input
    once per kernel offset) for the weight's gradient."""
    complex_graph = True
    torch_saves = (0, 1)        # (the input for the weight's gradient, the weight for the input's: not the bias)

    def forward(self, x, weight, bias=None, stride=(1,), padding=((0, 0),), dilation=(1,), groups=1):
        self.geometry = (tuple(x.shape[2:]), stride, padding, dilation, groups)
        symmetric = all(lo == hi for lo, hi in padding)
        # torch's kernels pad both sides alike: an uneven "same" padding is added here first
        xk = x if symmetric else pad_constant(x, padding, 0)
        kernel_pad = tuple(lo for lo, _ in padding) if symmetric else (0,) * len(stride)
        self.low = amp.cast_dtype(x, weight) if engine_kernel() else None
        if self.low is not None:
            return self._forward_low(xk, weight, bias, kernel_pad)
        out = B.conv_fused(xk, weight, bias, stride, kernel_pad, dilation, groups)
        self.fused = out is not None
        if self.fused:
            self.kernel_pad = kernel_pad
            self.save(xk, weight, bias is not None)
            return out
        xp = pad_constant(x, padding, 0) if symmetric else xk
        nd, (n, c), o = len(stride), x.shape[:2], weight.shape[0]
        win = B.windows(xp, tuple(weight.shape[2:]), stride, dilation)           # (N, C, *out, *kernel)
        out_size = tuple(win.shape[2:2 + nd])
        self.padded = tuple(xp.shape[2:])
        # im2col, the one copy: (N, C, *kernel, *out) -> (N, groups, C/groups * K, L)
        k = c // groups * numel(weight.shape[2:])
        cols = B.reshape(B.transpose(win, _window_axes_last(nd)), (n, groups, k, numel(out_size)))
        y = B.matmul(B.reshape(weight, (groups, o // groups, k)), cols)          # (N, groups, O/groups, L)
        y = B.reshape(y, (n, o) + out_size)
        if bias is not None:
            y += B.reshape(bias, (o,) + (1,) * nd)
        self.save(cols, weight, bias is not None)
        return y

    def _forward_low(self, xk, weight, bias, kernel_pad):
        """Under autocast: x and the weight rounded once to ``self.low`` and kept for the backward,
        the engine's kernel in that dtype (torch.autocast's values), its result handed on in the
        inputs' wider dtype (gt.amp), the bias added there."""
        _, stride, _, dilation, groups = self.geometry
        self.fused, self.kernel_pad = True, kernel_pad
        self.dtypes = B.dtype_of(xk), B.dtype_of(weight)
        xl, wl = B.astype(xk, self.low), B.astype(weight, self.low)
        self.save(xl, wl, bias is not None)
        out = B.conv_fused(xl, wl, None, stride, kernel_pad, dilation, groups)
        out = B.astype(out, dtypes.float32 if dtypes.float32 in self.dtypes else self.low)
        return out if bias is None else _add_channels(out, bias)

    def tangent(self, tx, tw, tb=None, *_):
        """Forward AD (gt/autograd/forward_ad.py): bilinear in x and the weight, ``conv(x', w) +
        conv(x, w') + b'`` (a tangent None: none)."""
        x, weight = (t._array for t in self.inputs[:2])
        args = self.geometry[1:]
        y = B.zeros(self.out_shape, B.dtype_of(next(t for t in (tx, tw, tb) if t is not None)))
        y = y if tx is None else y + Conv().forward(tx, weight, None, *args)
        y = y if tw is None else y + Conv().forward(x, tw, None, *args)
        return y if tb is None else _add_channels(y, tb)

    def backward(self, g):
        size, stride, padding, dilation, groups = self.geometry
        nx, nw = self.needs_input_grad[:2]
        if self.fused:
            xk, weight, has_bias = self.saved
            xk, weight = B.conj(xk), B.conj(weight)     # torch's convention for complex operands (complex_ops.py)
            needs = (nx, nw, has_bias and self.needs_input_grad[2])
            gx, gw, gb = _kernel_grads(g, xk, weight, self.geometry, self.kernel_pad, needs, self.low,
                                       getattr(self, "dtypes", None))
            if gx is not None and tuple(xk.shape[2:]) != size:    # x was padded here, not by the kernel
                gx = _unpad(gx, size, padding)
            return gx, gw, gb
        cols, weight, has_bias = self.saved
        cols, weight = B.conj(cols), B.conj(weight)     # torch's convention for complex operands
        nd, n, o = len(stride), g.shape[0], g.shape[1]
        out_size = tuple(g.shape[2:])
        g2 = B.reshape(g, (n, groups, o // groups, numel(out_size)))                # (N, groups, O/groups, L)
        gw = gb = gx = None
        if nw:
            gw = B.reshape(B.sum(B.matmul(g2, _swap(cols)), axis=0), tuple(weight.shape))
        if has_bias and self.needs_input_grad[2]:
            gb = B.sum(g, axis=(0,) + tuple(range(2, g.ndim)))
        if nx:
            w2 = B.reshape(weight, (groups, o // groups, cols.shape[2]))
            gcols = B.matmul(_swap(w2), g2)                                     # (N, groups, C/g * K, L)
            kernel = tuple(weight.shape[2:])
            gcols = B.reshape(gcols, (n, weight.shape[1] * groups) + kernel + out_size)
            gcols = B.transpose(gcols, _window_axes_last(nd))                     # (N, C, *out, *kernel)
            gx = _unpad(B.fold_windows(gcols, self.padded, stride, dilation), size, padding)
        return gx, gw, gb


    def backward_graph(self, g):
        x, weight = self.inputs[:2]
        nx, nw = self.needs_input_grad[:2]
        nb = len(self.inputs) > 2 and self.inputs[2] is not None and self.needs_input_grad[2]
        gx = ConvInputGrad.apply(g, weight, x.shape, self.geometry) if nx else None
        gw = ConvWeightGrad.apply(x, g, weight.shape, self.geometry) if nw else None
        return gx, gw, (g.sum(dim=(0,) + tuple(range(2, g.ndim))) if nb else None)


def engine_kernel():
    """Whether the engine has its own convolution kernel (``B.conv_fused``: torch's)."""
    return getattr(B.conv_fused_backward, "__func__", None) is not FastPaths.conv_fused_backward


def _add_channels(y, bias):
    """``y`` (N, O, *out) plus ``bias`` (O,) on its channels, in ``y``'s dtype."""
    return y + B.astype(B.reshape(bias, (bias.shape[0],) + (1,) * (y.ndim - 2)), B.dtype_of(y))


def _kernel_grads(g, xk, weight, geometry, kernel_pad, needs, low, kinds):
    """The engine kernel's (input, weight, bias) gradients; under autocast (``low``) from the
    rounded copies the forward kept and ``g`` rounded once, each gradient back in its input's
    dtype (``kinds``), the bias's summed from ``g`` as it came (as Linear's under autocast)."""
    _, stride, _, dilation, groups = geometry
    if low is None:
        return B.conv_fused_backward(g, xk, weight, stride, kernel_pad, dilation, groups, needs)
    gl = B.astype(g, low)
    gx, gw, _ = B.conv_fused_backward(gl, xk, weight, stride, kernel_pad, dilation, groups, needs[:2] + (False,))
    gx, gw = (None if a is None else B.astype(a, kind) for a, kind in ((gx, kinds[0]), (gw, kinds[1])))
    return gx, gw, (B.sum(g, axis=(0,) + tuple(range(2, g.ndim))) if needs[2] else None)


def _conv(x, weight, geometry):
    """Conv's forward on arrays, no bias."""
    _, stride, padding, dilation, groups = geometry
    return Conv().forward(x, weight, None, stride, padding, dilation, groups)


def _conv_grads(x, weight, g, geometry, needs):
    """Conv's (input, weight) gradients for ``g`` from its own backward (after its forward)."""
    ctx = Conv()
    ctx.needs_input_grad = needs + (False,)
    _, stride, padding, dilation, groups = geometry
    ctx.forward(x, weight, None, stride, padding, dilation, groups)
    return ctx.backward(g)[:2]


class ConvInputGrad(Function):
    """Conv's gradient in its input, ``g`` (N, O, *out) -> (N, C, *size), as an op of its own:
    what ``create_graph=True`` records for a convolution. Linear in ``g`` (its adjoint is the
    convolution) and in ``weight`` (whose gradient is a ``ConvWeightGrad``)."""
    complex_graph = True

    def forward(self, g, weight, x_shape, geometry):
        self.x_shape, self.geometry = tuple(x_shape), geometry
        self.save(g, weight)
        return _conv_grads(B.zeros(self.x_shape, B.dtype_of(g)), weight, g, geometry, (True, False))[0]

    def backward(self, gg):
        g, weight = self.saved
        ng, nw = self.needs_input_grad[:2]
        return ((_conv(gg, weight, self.geometry) if ng else None),
                (_conv_grads(gg, B.zeros(tuple(weight.shape), B.dtype_of(g)), g, self.geometry, (False, True))[1]
                 if nw else None))

    def backward_graph(self, gg):
        g, weight = self.inputs[:2]
        ng, nw = self.needs_input_grad[:2]
        return ((Conv.apply(gg, weight, None, *self.geometry[1:]) if ng else None),
                (ConvWeightGrad.apply(gg, g, weight.shape, self.geometry) if nw else None))


class ConvWeightGrad(Function):
    """Conv's gradient in its weight, from ``x`` (N, C, *size) and ``g`` (N, O, *out) -> the
    weight's shape, as an op of its own (see ``ConvInputGrad``)."""
    complex_graph = True

    def forward(self, x, g, w_shape, geometry):
        self.w_shape, self.geometry = tuple(w_shape), geometry
        self.save(x, g)
        return _conv_grads(x, B.zeros(self.w_shape, B.dtype_of(g)), g, geometry, (False, True))[1]

    def backward(self, gw):
        x, g = self.saved
        nx, ng = self.needs_input_grad[:2]
        gx = _conv_grads(B.zeros(tuple(x.shape), B.dtype_of(x)), gw, g, self.geometry, (True, False))[0] if nx else None
        return gx, (_conv(x, gw, self.geometry) if ng else None)

    def backward_graph(self, gw):
        x, g = self.inputs[:2]
        nx, ng = self.needs_input_grad[:2]
        return ((ConvInputGrad.apply(g, gw, x.shape, self.geometry) if nx else None),
                (Conv.apply(x, gw, None, *self.geometry[1:]) if ng else None))


def _swap(x):
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return B.transpose(x, axes)


class MaxPool(Function):
    """The largest value of each window of x (..., *size), padded with the dtype's lowest value
    -> (..., *out). The gradient goes to the first largest value of each window in row-major
    order (torch's CPU kernel: a strict ``>``; the first inside the input where the padding
    ties), or to its last NaN where it has any (that kernel takes every NaN it meets).
    ``ceil_mode`` only tells an engine kernel how the padding after was found (the composed path
    reads it from ``padding``)."""

    grad_reads_input = True     # its recorded gradient requires grad, as torch's (gt/autograd/graph_walk.py)

    def forward(self, x, kernel=(1,), stride=(1,), padding=((0, 0),), dilation=(1,), ceil_mode=False):
        nd, dtype = len(kernel), B.dtype_of(x)
        self.geometry = (tuple(x.shape[x.ndim - nd:]), kernel, stride, padding, dilation, ceil_mode)
        fused = B.max_pool_fused(x, kernel, stride, tuple(lo for lo, _ in padding), dilation, ceil_mode)
        self.fused = fused is not None
        if self.fused:
            out, state = fused
            self.save(x, state)
            self.pooled = tuple(out.shape)
            return out
        lowest = _LOWEST.get(dtype, -math.inf)
        xp = pad_constant(x, padding, lowest)
        win = B.windows(xp, kernel, stride, dilation)                                # (..., *out, *kernel)
        # one strided view per kernel offset: the maximum and the first offset that holds it come
        # from K passes over the output, without copying the windows (an argmax along a short
        # last axis of the copy took 4x as long)
        offsets = list(itertools.product(*(range(k) for k in kernel)))
        views = [B.getitem(win, (Ellipsis,) + offset) for offset in offsets]
        out = B.copy(views[0]) if len(views) == 1 else views[0]
        for view in views[1:]:
            out = B.maximum(out, view)                                             # NaN wins, as torch
        # a window whose values inside the input are all the lowest one ties with its padding:
        # torch takes the first value inside the input
        edge = any(lo or hi for lo, hi in padding) and B.any(out == lowest)
        idx = None
        for k in reversed(range(len(views))):
            hit = views[k] == out
            if edge:
                hit = hit & _inside(offsets[k], tuple(out.shape[out.ndim - nd:]), self.geometry)
            idx = B.where(hit, k, 0 if idx is None else idx)                      # (..., *out) int64
        idx = B.reshape(idx, tuple(out.shape) + (1,))
        if dtype.is_floating_point and not B.all(out == out):
            idx = _last_nan(B.reshape(win, tuple(out.shape) + (len(views),)), idx)
        self.padded, self.dtype, self.pooled = tuple(xp.shape[xp.ndim - nd:]), dtype, tuple(out.shape)
        self.save(idx)
        return out

    def backward(self, g):
        size, kernel, stride, padding, dilation, ceil_mode = self.geometry
        if self.fused:
            x, state = self.saved
            pads = tuple(lo for lo, _ in padding)
            return (B.max_pool_fused_backward(g, x, state, kernel, stride, pads, dilation, ceil_mode),)
        (idx,) = self.saved
        cols = B.zeros(tuple(idx.shape[:-1]) + (numel(kernel),), self.dtype)
        B.put_along_axis(cols, idx, B.reshape(g, tuple(g.shape) + (1,)), -1)
        cols = B.reshape(cols, tuple(g.shape) + tuple(kernel))
        return (_unpad(B.fold_windows(cols, self.padded, stride, dilation), size, padding),)

    def backward_graph(self, g):
        return (PoolRoute.apply(g, self),)

    def adjoint(self, gg):
        """The transpose of the backward: ``gg`` (..., *size) read where each window's maximum
        was -> (..., *out)."""
        size, kernel, stride, padding, dilation, _ = self.geometry
        nd = len(kernel)
        lead = tuple(gg.shape[:gg.ndim - nd])
        if self.fused:
            state = self.saved[1]
            picked = B.take_along_axis(B.reshape(gg, lead + (-1,)), B.reshape(state, lead + (-1,)), -1)
        else:
            (idx,) = self.saved
            win = B.windows(pad_constant(gg, padding, 0), kernel, stride, dilation)
            picked = B.take_along_axis(B.reshape(win, tuple(idx.shape[:-1]) + (numel(kernel),)), idx, -1)
        return B.reshape(picked, self.pooled)


class PoolRoute(Function):
    """A pooling's gradient in its input, ``g`` (..., *out) -> (..., *size), as an op of its own:
    what ``create_graph=True`` records for a pooling. Linear in ``g``; its own gradient is the
    pooling's ``adjoint`` (the average again, or the values where the maxima were)."""

    def forward(self, g, pool):
        # a copy: the pooling's own record may be freed by a later backward before this one runs
        self.pool = copy.copy(pool)
        return pool.backward(g)[0]

    def backward(self, gg):
        return self.pool.adjoint(gg), None

    def backward_graph(self, gg):
        return PoolAdjoint.apply(gg, self.pool), None


class PoolAdjoint(Function):
    """A pooling's ``adjoint`` as an op (the gradient of ``PoolRoute``); its gradient is ``PoolRoute``."""

    def forward(self, gg, pool):
        self.pool = copy.copy(pool)
        return pool.adjoint(gg)

    def backward(self, h):
        return self.pool.backward(h)[0], None

    def backward_graph(self, h):
        return PoolRoute.apply(h, self.pool), None


def _inside(offset, out, geometry):
    """A bool array broadcasting to (*out): where the windows read inside the input (not its
    padding) at kernel ``offset``."""
    size, _, stride, padding, dilation, _ = geometry
    inside = None
    for i, (k, o, n, s, (lo, _), d) in enumerate(zip(offset, out, size, stride, padding, dilation)):
        at = B.arange(0, o, 1, dtypes.int64) * s + (k * d - lo)           # the input position read
        axis = B.reshape((at >= 0) & (at < n), (o,) + (1,) * (len(out) - 1 - i))
        inside = axis if inside is None else inside & axis
    return inside


def _last_nan(flat, idx):
    """``idx`` with the position of the last NaN of each row of ``flat`` where the row has one
    (torch's kernel takes every NaN it meets, so its last one wins)."""
    nan = B.astype(B.logical_not(flat == flat), dtypes.int32)
    k = flat.shape[-1]
    last = (k - 1) - B.argmax(B.getitem(nan, (Ellipsis, slice(None, None, -1))), axis=-1, keepdims=True)
    return B.where(B.take_along_axis(nan, last, -1) == 1, last, idx)


class AvgPool(Function):
    """The mean of each window of x (..., *size) zero-padded -> (..., *out): each window's sum
    over ``divisor_override``, or over the number of values torch counts in it
    (``_averaged_counts``: with or without ``count_include_pad``)."""

    grad_reads_input = True     # its recorded gradient requires grad, as torch's (gt/autograd/graph_walk.py)

    def forward(self, x, kernel=(1,), stride=(1,), padding=((0, 0),), count_include_pad=True, divisor_override=None):
        nd = len(kernel)
        self.args = (kernel, stride, padding, count_include_pad, divisor_override)
        xp = pad_constant(x, padding, 0)
        win = B.windows(xp, kernel, stride, (1,) * nd)                              # (..., *out, *kernel)
        size = tuple(x.shape[x.ndim - nd:])
        self.geometry = (size, tuple(xp.shape[xp.ndim - nd:]), kernel, stride, padding)
        if divisor_override is not None:
            self.divisor = divisor_override
        elif not any(lo or hi for lo, hi in padding):
            self.divisor = numel(kernel)                      # every window lies inside the input
        else:
            out = tuple(win.shape[win.ndim - 2 * nd:win.ndim - nd])
            self.divisor = _averaged_counts(size, out, kernel, stride, [lo for lo, _ in padding], count_include_pad,
                                          B.dtype_of(x))
        return B.sum(win, axis=tuple(range(win.ndim - nd, win.ndim))) / self.divisor

    def backward(self, g):
        size, padded, kernel, stride, padding = self.geometry
        share = B.reshape(g / self.divisor, tuple(g.shape) + (1,) * len(kernel))
        cols = B.broadcast_to(share, tuple(g.shape) + tuple(kernel))
        return (_unpad(B.fold_windows(cols, padded, stride, (1,) * len(kernel)), size, padding),)

    def backward_graph(self, g):
        return (PoolRoute.apply(g, self),)

    def adjoint(self, gg):
        """The transpose of the backward (the pooling is linear): the same average of ``gg``."""
        return AvgPool().forward(gg, *self.args)


def _averaged_counts(size, out, kernel, stride, pads, count_include_pad, dtype):
    """How many values each window of ``AvgPool`` averages, as torch counts them: along each
    axis the window [o * stride - pad, + kernel) clipped to the padded input (the user's
    ``pad`` on both sides, not ``ceil_mode``'s extra) or, without ``count_include_pad``, to the
    input itself; the product over the axes. An array broadcasting to (*out)."""
    total = None
    for i, (n, o, k, s, p) in enumerate(zip(size, out, kernel, stride, pads)):
        start = B.arange(0, o, 1, dtypes.int64) * s - p
        end = B.minimum(start + k, n + p)
        count = end - start if count_include_pad else B.minimum(end, n) - B.maximum(start, 0)
        count = B.reshape(B.astype(count, dtype), (o,) + (1,) * (len(size) - 1 - i))
        total = count if total is None else total * count
    return total
