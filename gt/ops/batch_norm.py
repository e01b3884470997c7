"""Batch normalisation over every axis but the channels (axis 1) of x (N, C, *rest): one op,
forward and backward side by side. The statistics arrive as inputs (gt/nn/conv_functions.py
computes the batch's, or passes the running ones), so the running averages are updated outside
the op and the op itself has no state."""

from gt.autograd import Function
from gt.backend import B


class BatchNorm(Function):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` per channel: ``mean`` and ``var`` (C,)
    (the biased variance), ``weight`` and ``bias`` (C,) or None. With ``training`` the
    statistics are the batch's own, and the input's gradient goes through them too (torch's
    train-mode gradient); otherwise they are constants (running averages)."""

    def forward(self, x, weight, bias, mean, var, eps=1e-5, training=True):
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)                 # a channel's values broadcast
        self.axes = (0,) + tuple(range(2, x.ndim))
        rstd = 1.0 / B.sqrt(B.reshape(var, shape) + eps)
        xhat = (x - B.reshape(mean, shape)) * rstd
        out = xhat
        if weight is not None:
            out = out * B.reshape(weight, shape)
        if bias is not None:
            out = out + B.reshape(bias, shape)
        self.shape, self.training, self.eps = shape, training, eps
        self.save(xhat, rstd, weight)
        return out

    def backward(self, g):
        xhat, rstd, weight = self.saved
        nx, nw, nb = self.needs_input_grad[:3]
        gw = B.sum(g * xhat, axis=self.axes) if nw else None
        gb = B.sum(g, axis=self.axes) if nb else None
        gx = None
        if nx:
            gxhat = g * B.reshape(weight, self.shape) if weight is not None else g
            if self.training:     # mean and var are functions of x: their share of the gradient
                gxhat = gxhat - B.mean(gxhat, axis=self.axes, keepdims=True) - xhat * B.mean(
                    gxhat * xhat, axis=self.axes, keepdims=True)
            gx = gxhat * rstd
        return gx, gw, gb, None, None

    def backward_graph(self, g):
        x, weight, bias, mean, var = self.inputs[:5]
        nx, nw, nb = self.needs_input_grad[:3]
        axes, shape = self.axes, self.shape
        if self.training:        # the batch's statistics, recorded as functions of x
            xc = x - x.mean(dim=axes, keepdim=True)
            var = (xc * xc).mean(dim=axes, keepdim=True)
        else:                    # running averages: constants
            xc = x - mean.detach().reshape(shape)
            var = var.detach().reshape(shape)
        rstd = 1.0 / (var + self.eps).sqrt()
        xhat = xc * rstd
        gw = (g * xhat).sum(dim=axes) if nw and weight is not None else None
        gb = g.sum(dim=axes) if nb and bias is not None else None
        gx = None
        if nx:
            gxhat = g * weight.reshape(shape) if weight is not None else g
            if self.training:
                gxhat = gxhat - gxhat.mean(dim=axes, keepdim=True) - xhat * (gxhat * xhat).mean(dim=axes, keepdim=True)
            gx = gxhat * rstd
        return gx, gw, gb, None, None
