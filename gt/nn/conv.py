"""``Conv1d``, ``Conv2d`` and ``Conv3d``: learnable convolutions with PyTorch's parameters
(``weight`` (out_channels, in_channels / groups, *kernel_size), ``bias`` (out_channels,)), their
initialisation and their attributes, so state dicts move between gt and torch as they are."""

import math

from gt import dtypes
from gt.nn import conv_functions as CF
from gt.nn import init
from gt.nn.module import Module
from gt.nn.padding import pad
from gt.nn.parameter import Parameter
from gt.tensor import empty

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """The parts every convolution layer shares; subclasses set ``_nd`` and ``_function``."""

    _nd, _function = 2, staticmethod(CF.conv2d)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        for what, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
                raise ValueError(f"{name}: {what} must be a positive int, got {n!r}")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                             f"divisible by groups ({groups})")
        self.kernel_size = CF._ints(kernel_size, nd, name, "kernel_size", 1)
        self.stride = CF._ints(stride, nd, name, "stride", 1)
        self.dilation = CF._ints(dilation, nd, name, "dilation", 1)
        if isinstance(padding, str):
            CF._conv_padding(name, padding, nd, self.kernel_size, self.stride, self.dilation)   # checks it
            self.padding = padding
        else:
            self.padding = CF._ints(padding, nd, name, "padding", 0)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {list(_PADDING_MODES)}, but got "
                             f"padding_mode={padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.padding_mode = padding_mode
        dtype = dtypes.default_float if dtype is None else dtype
        self.weight = Parameter(empty(out_channels, in_channels // groups, *self.kernel_size, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # torch's: kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the
        # bias from the same range; fan_in = in_channels / groups * prod(kernel_size)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        if self.padding_mode == "zeros":
            return self._function(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        # torch's way: the input padded first by F.pad in that mode, then a convolution without padding
        x = pad(CF._tensor(x, type(self).__name__), self._reversed_padding(), mode=self.padding_mode)
        return self._function(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def _reversed_padding(self):
        """The padding as F.pad's tuple: (before, after) pairs from the last axis back."""
        if isinstance(self.padding, str):
            pairs = CF._conv_padding(type(self).__name__, self.padding, self._nd, self.kernel_size, self.stride,
                                     self.dilation)
        else:
            pairs = [(p, p) for p in self.padding]
        return tuple(v for pair in reversed(pairs) for v in pair)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution: (N, in_channels, L) or (in_channels, L) -> (N, out_channels, L_out).
    Arguments and parameters as torch's (see ``Conv2d``).

        >>> nn.Conv1d(4, 8, kernel_size=3, padding="same")(gt.randn(2, 4, 50)).shape
        (2, 8, 50)
    """

    _nd, _function = 1, staticmethod(CF.conv1d)


class Conv2d(_ConvNd):
    """2-D convolution: (N, in_channels, H, W) or (in_channels, H, W) -> (N, out_channels, H_out, W_out)
    (see ``F.conv2d`` for the sizes). ``weight`` (out_channels, in_channels / groups, kH, kW) and
    ``bias`` (out_channels,) start as torch's (kaiming_uniform_ with a = sqrt(5): U(-b, b),
    b = 1 / sqrt(fan_in)). ``padding``: an int, a pair, ``"valid"`` or ``"same"``;
    ``padding_mode``: ``"zeros"``, or ``"reflect"``, ``"replicate"``, ``"circular"`` (the input
    padded by ``F.pad`` in that mode first, as torch).

        >>> conv = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        >>> conv(gt.randn(32, 1, 28, 28)).shape
        (32, 16, 28, 28)
    """

    _nd, _function = 2, staticmethod(CF.conv2d)


class Conv3d(_ConvNd):
    """3-D convolution: (N, in_channels, D, H, W) or unbatched -> (N, out_channels, D_out, H_out, W_out).
    See ``Conv2d``."""

    _nd, _function = 3, staticmethod(CF.conv3d)
