"""Transposed convolution over the trailing spatial axes of (N, C_in, *size) arrays (1, 2 or 3
of them): the adjoint of a convolution's input gradient, built from the same primitives as
gt/ops/conv.py. Its forward is a convolution's input gradient (columns from one batched product,
put back where a convolution's windows read them: ``B.fold_windows``), its input gradient is a
convolution (``B.windows`` of the zero-padded output gradient, one batched product) and its
weight gradient is a convolution's weight gradient with the input and output swapped. An engine
with its own convolution kernel (``B.conv_fused``: torch's) runs those three as that kernel's
backward, forward and backward (float32 and float64, every ``output_padding`` below its stride).
Arguments arrive checked and normalised by gt/nn/conv_transpose_functions.py: ``stride``,
``padding``, ``output_padding`` and ``dilation`` one int per spatial axis."""

from gt import amp, dtypes
from gt.autograd import Function
from gt.backend import B
from gt.ops._shapes import numel
from gt.ops.conv import Conv, ConvWeightGrad, _add_channels, _swap, _unpad, _window_axes_last, engine_kernel, pad_constant
from gt.ops.linalg import _mm


class ConvTranspose(Function):
    """Transposed convolution of x (N, C_in, *size) with weight (C_in, C_out / groups, *kernel),
    plus bias (C_out,) -> (N, C_out, *out), ``out = (size - 1) * stride - 2 * padding +
    dilation * (kernel - 1) + output_padding + 1``. Saves x and the weight."""
    complex_graph = True

    def forward(self, x, weight, bias=None, stride=(1,), padding=(0,), output_padding=(0,), dilation=(1,),
                groups=1):
        nd, n, c = len(stride), x.shape[0], x.shape[1]
        size, kernel = tuple(x.shape[2:]), tuple(weight.shape[2:])
        out = tuple((s - 1) * st - 2 * p + d * (k - 1) + op + 1
                    for s, st, p, d, k, op in zip(size, stride, padding, dilation, kernel, output_padding))
        pads = tuple((p, p) for p in padding)
        padded = tuple(o + 2 * p for o, p in zip(out, padding))
        self.geometry = (size, out, stride, pads, dilation, groups)
        self.output_padding = output_padding
        o = weight.shape[1] * groups
        self.low, self.dtypes = amp.cast_dtype(x, weight), (B.dtype_of(x), B.dtype_of(weight))
        self.fused = _fused(x, stride, output_padding, any_float=self.low is not None)
        if self.fused:
            if self.low is not None:    # autocast: x and the weight rounded once, kept for the backward
                x, weight = B.astype(x, self.low), B.astype(weight, self.low)
            # the engine's convolution kernel run backward: only the shape of its input is read
            zeros = B.broadcast_to(B.zeros((), B.dtype_of(x)), (n, o) + out)
            y, _, _ = B.conv_fused_backward(x, zeros, weight, stride, padding, dilation, groups, (True, False, False))
            if self.low is not None:    # handed on in the inputs' wider dtype (gt.amp)
                y = B.astype(y, self._wide())
            if bias is not None:
                y = _add_channels(y, bias)
            self.save(x, weight, bias is not None)
            return y
        k = weight.shape[1] * numel(kernel)                                        # C_out / groups * K
        w2 = B.reshape(weight, (groups, c // groups, k))
        x2 = B.reshape(x, (n, groups, c // groups, numel(size)))
        cols = _mm(_swap(w2), x2, self.low, result=self._wide())                     # (N, groups, C_out/g * K, L)
        cols = B.transpose(B.reshape(cols, (n, o) + kernel + size), _window_axes_last(nd))   # (N, C_out, *size, *K)
        y = _unpad(B.fold_windows(cols, padded, stride, dilation), out, pads)
        if bias is not None:
            y = _add_channels(y, bias)
        self.save(x, weight, bias is not None)
        return y

    def backward(self, g):
        size, out, stride, pads, dilation, groups = self.geometry
        x, weight, has_bias = self.saved
        x, weight = B.conj(x), B.conj(weight)           # torch's convention for complex operands (complex_ops.py)
        nd, n, c = len(stride), g.shape[0], x.shape[1]
        kernel = tuple(weight.shape[2:])
        if self.fused:
            padding = tuple(lo for lo, _ in pads)
            needs = self.needs_input_grad
            gb = B.sum(g, axis=(0,) + tuple(range(2, g.ndim))) if has_bias and needs[2] else None
            if self.low is not None:    # autocast: the upstream gradient rounded once for both products
                g = B.astype(g, self.low)
            gx = B.conv_fused(g, weight, None, stride, padding, dilation, groups) if needs[0] else None
            gw = (B.conv_fused_backward(x, g, weight, stride, padding, dilation, groups, (False, True, False))[1]
                  if needs[1] else None)
            if self.low is not None:
                gx, gw = (None if a is None else B.astype(a, kind) for a, kind in zip((gx, gw), self.dtypes))
            return gx, gw, gb
        k = weight.shape[1] * numel(kernel)
        win = B.windows(pad_constant(g, pads, 0), kernel, stride, dilation)         # (N, C_out, *out', *K)
        # out' exceeds size where output_padding >= stride (allowed below dilation): those windows
        # read only the output padding, which no input value reached
        win = B.getitem(win, (slice(None), slice(None)) + tuple(slice(0, s) for s in size))
        cols = B.reshape(B.transpose(win, _window_axes_last(nd)), (n, groups, k, numel(size)))
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = _mm(B.reshape(weight, (groups, c // groups, k)), cols, self.low, result=self.dtypes[0])  # (N, groups, C_in/g, L)
            gx = B.reshape(gx, (n, c) + size)
        if self.needs_input_grad[1]:
            x2 = B.reshape(x, (n, groups, c // groups, numel(size)))
            gw = B.reshape(B.sum(_mm(x2, _swap(cols), self.low, result=self.dtypes[1]), axis=0), tuple(weight.shape))
        if has_bias and self.needs_input_grad[2]:
            gb = B.sum(g, axis=(0,) + tuple(range(2, g.ndim)))
        return gx, gw, gb

    def tangent(self, tx, tw, tb=None, *_):
        """Forward AD (gt/autograd/forward_ad.py), also where no gradient is recorded (an output
        padding at its stride): bilinear in x and the weight, ``conv_t(x', w) + conv_t(x, w') + b'``
        (a tangent None: none)."""
        _, _, stride, pads, dilation, groups = self.geometry
        x, weight, _ = self.saved
        args = (stride, tuple(lo for lo, _ in pads), self.output_padding, dilation, groups)
        y = B.zeros(self.out_shape, B.dtype_of(next(t for t in (tx, tw, tb) if t is not None)))
        y = y if tx is None else y + ConvTranspose().forward(tx, weight, None, *args)
        y = y if tw is None else y + ConvTranspose().forward(x, tw, None, *args)
        return y if tb is None else _add_channels(y, tb)

    def _wide(self):
        """The dtype a product under autocast is handed on in: the inputs' wider one (gt.amp)."""
        return dtypes.float32 if dtypes.float32 in self.dtypes else self.low

    @property
    def records_graph(self):
        """Whether ``backward_graph`` can record the gradient: every output padding below its
        stride (then a convolution of the output has the input's size)."""
        return all(op < s for op, s in zip(self.output_padding, self.geometry[2]))

    def backward_graph(self, g):
        # the transposed convolution is the input gradient of the convolution from its output's
        # size to its input's: its gradients are that convolution and its weight gradient
        size, out, stride, pads, dilation, groups = self.geometry
        x, weight = self.inputs[:2]
        nx, nw = self.needs_input_grad[:2]
        nb = len(self.inputs) > 2 and self.inputs[2] is not None and self.needs_input_grad[2]
        # torch's convention for complex operands: both conjugated (ConvWeightGrad conjugates its first
        # operand, here g)
        gx = Conv.apply(g, weight.conj(), None, stride, pads, dilation, groups) if nx else None
        gw = ConvWeightGrad.apply(g, x, weight.shape, (out, stride, pads, dilation, groups)).conj() if nw else None
        return gx, gw, (g.sum(dim=(0,) + tuple(range(2, g.ndim))) if nb else None)


def _fused(x, stride, output_padding, any_float=False):
    """Whether the engine's own convolution kernel runs it: an engine that has one (torch's), float32
    or float64 values (or any float: ``any_float``, for autocast's casts), and every ``output_padding``
    below its stride (so that a convolution of the output has the input's size, which the kernel's
    backward needs)."""
    if any(op >= s for op, s in zip(output_padding, stride)):
        return False
    if not (any_float or B.dtype_of(x) in (dtypes.float32, dtypes.float64)):
        return False
    return engine_kernel()
