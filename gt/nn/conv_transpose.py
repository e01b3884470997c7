"""``ConvTranspose1d``, ``ConvTranspose2d`` and ``ConvTranspose3d``: learnable transposed
convolutions with PyTorch's parameters (``weight`` (in_channels, out_channels / groups,
*kernel_size), ``bias`` (out_channels,)), initialisation and attributes, so state dicts move
between gt and torch as they are."""

from gt.nn import conv_transpose_functions as CTF
from gt.nn.conv import add_parameters, check_channels, conv_repr, init_parameters
from gt.nn.conv_functions import _ints
from gt.nn.inputs import as_tensor
from gt.nn.module import Module


class _ConvTransposeNd(Module):
    """The parts every transposed convolution layer shares; subclasses set ``_nd`` and ``_function``."""

    _nd, _function = 2, staticmethod(CTF.conv_transpose2d)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", dtype=None):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        check_channels(name, in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(f'{name}: only "zeros" padding mode is supported, got padding_mode={padding_mode!r}')
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding must be an int or a tuple of {nd} ints, got {padding!r} (string "
                             f"padding is not supported for transposed convolutions, as torch)")
        self.kernel_size = _ints(kernel_size, nd, name, "kernel_size", 1)
        self.stride = _ints(stride, nd, name, "stride", 1)
        self.padding = _ints(padding, nd, name, "padding", 0)
        self.output_padding = _ints(output_padding, nd, name, "output_padding", 0)
        self.dilation = _ints(dilation, nd, name, "dilation", 1)
        if any(op >= s and op >= d for op, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(f"{name}: output padding must be smaller than either stride or dilation, got "
                             f"output_padding={self.output_padding}, stride={self.stride}, dilation={self.dilation}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.padding_mode = padding_mode
        add_parameters(self, (in_channels, out_channels // groups, *self.kernel_size), out_channels, bias, dtype)

    def reset_parameters(self):
        init_parameters(self)

    def forward(self, input, output_size=None):
        """``output_size`` (the output's spatial size, optionally with its leading N and C) picks
        the ``output_padding`` that gives it, as torch; None uses ``self.output_padding``."""
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding(as_tensor(input, type(self).__name__), output_size)
        return self._function(input, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                              self.dilation)

    def _output_padding(self, x, output_size):
        name, nd = type(self).__name__, self._nd
        size = tuple(output_size)
        if len(size) in (nd + 1, nd + 2) and len(size) == x.ndim:
            size = size[len(size) - nd:]
        if len(size) != nd:
            raise ValueError(f"{name}: output_size must have {nd} or {nd + 2} elements, got {len(size)} "
                             f"({output_size!r})")
        pads = []
        for i, (n, s, p, d, k, want) in enumerate(zip(x.shape[x.ndim - nd:], self.stride, self.padding, self.dilation,
                                                       self.kernel_size, size)):
            low = (n - 1) * s - 2 * p + d * (k - 1) + 1
            if not low <= want <= low + s - 1:
                raise ValueError(f"{name}: requested an output size of {tuple(size)}, but valid sizes for dim {i} "
                                 f"range from {low} to {low + s - 1} (for an input of shape {x.shape})")
            pads.append(want - low)
        return tuple(pads)

    def extra_repr(self):
        return conv_repr(self)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution: (N, in_channels, L) or (in_channels, L) -> (N, out_channels, L_out).
    See ``ConvTranspose2d``."""

    _nd, _function = 1, staticmethod(CTF.conv_transpose1d)


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution: (N, in_channels, H, W) or (in_channels, H, W) ->
    (N, out_channels, H_out, W_out) (see ``F.conv_transpose2d`` for the sizes). ``weight``
    (in_channels, out_channels / groups, kH, kW) and ``bias`` (out_channels,) start as torch's
    (kaiming_uniform_ with a = sqrt(5), fan_in = out_channels / groups * kH * kW as torch reads it
    off this weight). Only ``padding_mode="zeros"``, as torch. ``forward(input, output_size)``
    picks the ``output_padding`` that gives ``output_size``.

        >>> up = nn.ConvTranspose2d(16, 8, kernel_size=2, stride=2)
        >>> up(gt.randn(4, 16, 7, 7)).shape
        (4, 8, 14, 14)
    """

    _nd, _function = 2, staticmethod(CTF.conv_transpose2d)


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution: (N, in_channels, D, H, W) or unbatched. See ``ConvTranspose2d``."""

    _nd, _function = 3, staticmethod(CTF.conv_transpose3d)
