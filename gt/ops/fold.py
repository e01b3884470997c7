"""im2col and col2im (torch's ``unfold`` and ``fold``), each the other's backward. Both reuse
the convolution's window primitives (gt/ops/conv.py): ``B.windows`` (a strided view of the
padded input) and its adjoint ``B.fold_windows`` (one strided scatter-add per kernel offset).
Arguments arrive checked and normalised by gt/nn/fold.py: ``kernel``, ``stride``, ``dilation``
one int per spatial axis, ``padding`` one ``(before, after)`` pair per spatial axis."""

from gt.autograd import Function
from gt.backend import B
from gt.ops._shapes import numel
from gt.ops.conv import _unpad, _window_axes_last, pad_constant


def _columns(x, kernel, stride, padding, dilation):
    """x (N, C, *size) -> (N, C * prod(kernel), L): the padded input's windows, one column per
    window position (row-major over the output grid), rows ordered (channel, *kernel offset)."""
    nd, (n, c) = len(kernel), x.shape[:2]
    win = B.windows(pad_constant(x, padding, 0), kernel, stride, dilation)         # (N, C, *out, *kernel)
    out = tuple(win.shape[2:2 + nd])
    shape = (n, c * numel(kernel), numel(out))
    if 0 in shape:     # the reshape would be a view of the windows, which numpy makes read-only
        return B.zeros(shape, B.dtype_of(x))
    return B.reshape(B.transpose(win, _window_axes_last(nd)), shape)


def _image(cols, size, kernel, out, stride, padding, dilation):
    """The adjoint of ``_columns``: cols (N, C * prod(kernel), L) added back into (N, C, *size)
    where the windows read them (overlaps add up)."""
    nd, n = len(kernel), cols.shape[0]
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, padding))
    c = cols.shape[1] // numel(kernel)
    win = B.reshape(cols, (n, c) + tuple(kernel) + tuple(out))                      # (N, C, *kernel, *out)
    win = B.transpose(win, _window_axes_last(nd))                                    # (N, C, *out, *kernel)
    return _unpad(B.fold_windows(win, padded, stride, dilation), size, padding)


class Unfold(Function):
    """x (N, C, *size) -> (N, C * prod(kernel), L), L = prod(out): every sliding window of the
    zero-padded input as a column (one copy)."""
    complex_graph = True

    def forward(self, x, kernel=(1,), stride=(1,), padding=((0, 0),), dilation=(1,), out=(1,)):
        self.geometry = (tuple(x.shape[2:]), kernel, out, stride, padding, dilation)
        return _columns(x, kernel, stride, padding, dilation)

    def backward(self, g):
        return (_image(g, *self.geometry),)

    def backward_graph(self, g):
        size, kernel, out, stride, padding, dilation = self.geometry
        return (Fold.apply(g, size=size, kernel=kernel, out=out, stride=stride, padding=padding, dilation=dilation),)


class Fold(Function):
    """cols (N, C * prod(kernel), L) -> (N, C, *size): each column added back into the window
    it describes (overlaps add up), then the padding cut off; ``out`` is the window grid."""
    complex_graph = True

    def forward(self, cols, size=(1,), kernel=(1,), out=(1,), stride=(1,), padding=((0, 0),), dilation=(1,)):
        self.geometry = (kernel, stride, padding, dilation)
        self.out = out
        return _image(cols, size, kernel, out, stride, padding, dilation)

    def backward(self, g):
        return (_columns(g, *self.geometry),)

    def backward_graph(self, g):
        kernel, stride, padding, dilation = self.geometry
        return (Unfold.apply(g, kernel=kernel, stride=stride, padding=padding, dilation=dilation, out=self.out),)
