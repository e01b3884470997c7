"""The rest of torch's pooling layers: ``MaxPool3d``, ``AvgPool3d``, ``AdaptiveAvgPool3d``,
``AdaptiveMaxPool1d/2d/3d`` and ``MaxUnpool1d/2d/3d``, with torch's arguments and attributes
(see gt/nn/pooling_functions.py for what they compute)."""

from gt.nn import pooling_functions as PF
from gt.nn.module import Module
from gt.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d


class MaxPool3d(MaxPool2d):
    """The largest value of each window (see ``F.max_pool3d``): (N, C, D, H, W) or (C, D, H, W).

        >>> nn.MaxPool3d(2)(gt.randn(2, 4, 8, 8, 8)).shape
        (2, 4, 4, 4, 4)
    """

    _function = staticmethod(PF.max_pool3d)


class AvgPool3d(AvgPool2d):
    """The mean of each window (see ``F.avg_pool3d``): (N, C, D, H, W) or (C, D, H, W)."""

    def forward(self, x):
        return PF.avg_pool3d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                             self.divisor_override)


class AdaptiveAvgPool3d(AdaptiveAvgPool2d):
    """The mean over an ``output_size`` grid of windows (see ``F.adaptive_avg_pool3d``):
    (N, C, D, H, W) or (C, D, H, W) -> (..., *output_size)."""

    _function = staticmethod(PF.adaptive_avg_pool3d)


class AdaptiveMaxPool2d(Module):
    """The largest value of each window of an ``output_size`` grid (see ``F.adaptive_max_pool2d``):
    (N, C, H, W) or (C, H, W) -> (..., *output_size), and the indices with ``return_indices``.

        >>> nn.AdaptiveMaxPool2d((1, 1))(gt.randn(8, 64, 7, 7)).shape
        (8, 64, 1, 1)
    """

    _function = staticmethod(PF.adaptive_max_pool2d)

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        return self._function(x, self.output_size, self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(AdaptiveMaxPool2d):
    """``AdaptiveMaxPool2d`` over the last axis: (N, C, L) or (C, L) -> (..., output_size)."""

    _function = staticmethod(PF.adaptive_max_pool1d)


class AdaptiveMaxPool3d(AdaptiveMaxPool2d):
    """``AdaptiveMaxPool2d`` over (N, C, D, H, W) or (C, D, H, W) -> (..., *output_size)."""

    _function = staticmethod(PF.adaptive_max_pool3d)


def _tuple(value, nd):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * nd


class MaxUnpool2d(Module):
    """The inverse of ``MaxPool2d`` (see ``F.max_unpool2d``): ``forward(input, indices,
    output_size=None)``, (N, C, H, W) -> (N, C, H_out, W_out), zeros where no maximum came from.
    ``kernel_size``, ``stride`` (default ``kernel_size``), ``padding`` kept as tuples, as torch.

        >>> pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
        >>> unpool(*pool(gt.randn(1, 1, 4, 4))).shape
        (1, 1, 4, 4)
    """

    _nd, _function = 2, staticmethod(PF.max_unpool2d)

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _tuple(kernel_size, self._nd)
        self.stride = _tuple(stride if stride is not None else kernel_size, self._nd)
        self.padding = _tuple(padding, self._nd)

    def forward(self, input, indices, output_size=None):
        return self._function(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(MaxUnpool2d):
    """The inverse of ``MaxPool1d``: (N, C, L) -> (N, C, L_out). See ``MaxUnpool2d``."""

    _nd, _function = 1, staticmethod(PF.max_unpool1d)


class MaxUnpool3d(MaxUnpool2d):
    """The inverse of ``MaxPool3d``: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out). See ``MaxUnpool2d``."""

    _nd, _function = 3, staticmethod(PF.max_unpool3d)
