"""Pooling layers: ``MaxPool1d/2d``, ``AvgPool1d/2d``, ``AdaptiveAvgPool1d/2d``, with torch's
arguments and attributes (kept as given, as torch's; checked when called)."""

from gt.nn import conv_functions as CF
from gt.nn.module import Module


class MaxPool2d(Module):
    """The largest value of each window (see ``F.max_pool2d``): (N, C, H, W) or (C, H, W).

        >>> nn.MaxPool2d(2)(gt.randn(8, 16, 28, 28)).shape
        (8, 16, 14, 14)
    """

    _function = staticmethod(CF.max_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, x):
        return self._function(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                              self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(MaxPool2d):
    """The largest value of each window (see ``F.max_pool1d``): (N, C, L) or (C, L)."""

    _function = staticmethod(CF.max_pool1d)


class AvgPool2d(Module):
    """The mean of each window (see ``F.avg_pool2d``): (N, C, H, W) or (C, H, W)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        return CF.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                             self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def _single(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


class AvgPool1d(Module):
    """The mean of each window (see ``F.avg_pool1d``): (N, C, L) or (C, L)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size = _single(kernel_size)         # torch's AvgPool1d keeps 1-tuples
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding, self.ceil_mode, self.count_include_pad = _single(padding), ceil_mode, count_include_pad

    def forward(self, x):
        return CF.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """The mean over an ``output_size`` grid of windows covering the input (see
    ``F.adaptive_avg_pool2d``): (N, C, H, W) or (C, H, W) -> (..., *output_size).

        >>> nn.AdaptiveAvgPool2d((1, 1))(gt.randn(8, 64, 7, 7)).shape
        (8, 64, 1, 1)
    """

    _function = staticmethod(CF.adaptive_avg_pool2d)

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return self._function(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    """The mean over ``output_size`` windows covering the last axis: (N, C, L) or (C, L)."""

    _function = staticmethod(CF.adaptive_avg_pool1d)
