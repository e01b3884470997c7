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


def check_channels(name, in_channels, out_channels, groups):
    """Positive channel counts and groups, both counts divisible by groups (every conv layer's check)."""
    for what, n in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"{name}: {what} must be a positive int, got {n!r}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                         f"divisible by groups ({groups})")


def add_parameters(module, weight_shape, out_channels, bias, dtype):
    """``module.weight`` of ``weight_shape`` and ``module.bias`` (out_channels,) or None, initialised."""
    dtype = dtypes.default_float if dtype is None else dtype
    module.weight = Parameter(empty(*weight_shape, dtype=dtype))
    if bias:
        module.bias = Parameter(empty(out_channels, dtype=dtype))
    else:
        module.register_parameter("bias", None)
    module.reset_parameters()


def init_parameters(module):
    """torch's (_ConvNd's, for convolutions and transposed ones alike): kaiming_uniform_(a=sqrt(5)),
    i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias from the same range; fan_in read off the
    weight as for any tensor (in_channels / groups * prod(kernel) for a convolution, out_channels /
    groups * prod(kernel) for a transposed one)."""
    init.kaiming_uniform_(module.weight, a=math.sqrt(5))
    if module.bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(module.weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(module.bias, -bound, bound)


def conv_repr(m):
    """torch's ``extra_repr`` of a convolution or a transposed one: what differs from the defaults."""
    s = f"{m.in_channels}, {m.out_channels}, kernel_size={m.kernel_size}, stride={m.stride}"
    if m.padding != (0,) * m._nd:
        s += f", padding={m.padding}"
    if m.dilation != (1,) * m._nd:
        s += f", dilation={m.dilation}"
    if getattr(m, "output_padding", (0,) * m._nd) != (0,) * m._nd:
        s += f", output_padding={m.output_padding}"
    if m.groups != 1:
        s += f", groups={m.groups}"
    if m.bias is None:
        s += ", bias=False"
    if m.padding_mode != "zeros":
        s += f", padding_mode={m.padding_mode}"
    return s


class _ConvNd(Module):
    """The parts every convolution layer shares; subclasses set ``_nd`` and ``_function``."""

    _nd, _function = 2, staticmethod(CF.conv2d)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        check_channels(name, in_channels, out_channels, groups)
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
        add_parameters(self, (out_channels, in_channels // groups, *self.kernel_size), out_channels, bias, dtype)

    def reset_parameters(self):
        init_parameters(self)

    def forward(self, x):
        return self._conv_forward(x, self.weight, self.bias)

    def _conv_forward(self, x, weight, bias):
        """This layer's convolution of ``x`` with ``weight`` and ``bias`` (torch's: what
        quantization-aware training calls with a fake-quantized weight)."""
        if self.padding_mode == "zeros":
            return self._function(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)
        # torch's way: the input padded first by F.pad in that mode, then a convolution without padding
        x = pad(CF._tensor(x, type(self).__name__), self._reversed_padding(), mode=self.padding_mode)
        return self._function(x, weight, bias, self.stride, 0, self.dilation, self.groups)

    def _reversed_padding(self):
        """The padding as F.pad's tuple: (before, after) pairs from the last axis back."""
        if isinstance(self.padding, str):
            pairs = CF._conv_padding(type(self).__name__, self.padding, self._nd, self.kernel_size, self.stride,
                                     self.dilation)
        else:
            pairs = [(p, p) for p in self.padding]
        return tuple(v for pair in reversed(pairs) for v in pair)

    def extra_repr(self):
        return conv_repr(self)


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
