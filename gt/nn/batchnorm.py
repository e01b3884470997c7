"""``BatchNorm1d``, ``BatchNorm2d`` and ``BatchNorm3d``: per-channel normalisation with batch statistics while
training and running averages when evaluating, with torch's parameters and buffers (``weight``,
``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``), so state dicts move
between gt and torch as they are."""

from gt import autograd, dtypes
from gt.backend import B
from gt.nn import conv_functions as CF
from gt.nn.module import Module
from gt.nn.norm_functions import refuse_unbatched_stats
from gt.nn.parameter import Parameter
from gt.tensor import Tensor


def _buffer(shape, dtype, fill):
    """A new buffer: replicated on a mesh (as a parameter), not sharded as data would be."""
    return Tensor._wrap(B.full(shape, fill, dtype))


class _BatchNorm(Module):
    """What both layers share; subclasses check the input's number of dims."""

    _version = 2    # torch's: version 2 added num_batches_tracked

    def _optional_state(self, version):
        """The entries a state dict of an older ``version`` (None: a dict without torch's metadata) may
        lack: torch keeps the module's own ``num_batches_tracked`` then."""
        return ("num_batches_tracked",) if (version is None or version < 2) and self.track_running_stats else ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None, *,
                 bias=True):
        super().__init__()
        name = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(f"{name}: num_features must be a positive int, got {num_features!r}")
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, (int, float))):
            raise ValueError(f"{name}: momentum must be a number or None (a cumulative average), got {momentum!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = dtypes.default_float if dtype is None else dtypes.to_dtype(dtype)
        if affine:
            self.weight = Parameter(_buffer((num_features,), dtype, 1))
            if bias:
                self.bias = Parameter(_buffer((num_features,), dtype, 0))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", _buffer((num_features,), dtype, 0))
            self.register_buffer("running_var", _buffer((num_features,), dtype, 1))
            self.register_buffer("num_batches_tracked", _buffer((), dtypes.int64, 0))
        else:
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(buffer, None)

    def reset_running_stats(self):
        if self.track_running_stats:
            with autograd.no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            with autograd.no_grad():
                self.weight.fill_(1)
                if self.bias is not None:
                    self.bias.zero_()

    def _check_input_dim(self, x):
        raise NotImplementedError

    def forward(self, x):
        x = CF._tensor(x, type(self).__name__)
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            # inside vmap torch counts the batch (a number, not batched) and then refuses the statistics
            # as batch_norm does; gt's vmap refuses the count (it would count once per element): first this
            refuse_unbatched_stats(self.running_mean, self.running_var)
            with autograd.no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:       # a cumulative average: batch k weighs 1/k
                factor = 1.0 / float(self.num_batches_tracked.item())
        # batch statistics while training, and always when no running ones are kept
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return CF.batch_norm(x, self.running_mean if keep else None, self.running_var if keep else None,
                             self.weight, self.bias, use_batch, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, per channel C: ``(x - mean) / sqrt(var + eps)
    * weight + bias``, mean and (biased) variance over N (and L) while training; the running
    averages (``momentum`` 0.1, or None for a cumulative average; unbiased variance, as torch)
    in ``eval()``. ``weight`` starts at ones, ``bias`` at zeros (``affine=False``: neither;
    ``bias=False``: no bias). ``track_running_stats=False``: no running statistics (the batch's
    are used in ``eval()`` too).

        >>> bn = nn.BatchNorm1d(16)
        >>> bn(gt.randn(8, 16)).shape
        (8, 16)
    """

    def _check_input_dim(self, x):
        if x.ndim not in (2, 3):
            raise ValueError(f"{type(self).__name__}: expected 2D or 3D input (got {x.ndim}D input of shape {x.shape})")


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, per channel C (statistics over N, H and W). See
    ``BatchNorm1d``.

        >>> nn.BatchNorm2d(16)(gt.randn(8, 16, 28, 28)).shape
        (8, 16, 28, 28)
    """

    def _check_input_dim(self, x):
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__}: expected 4D input (got {x.ndim}D input of shape {x.shape})")


class BatchNorm3d(_BatchNorm):
    """Batch norm over (N, C, D, H, W) inputs, per channel C (statistics over N, D, H and W). See
    ``BatchNorm1d``.

        >>> nn.BatchNorm3d(4)(gt.randn(2, 4, 3, 8, 8)).shape
        (2, 4, 3, 8, 8)
    """

    def _check_input_dim(self, x):
        if x.ndim != 5:
            raise ValueError(f"{type(self).__name__}: expected 5D input (got {x.ndim}D input of shape {x.shape})")
