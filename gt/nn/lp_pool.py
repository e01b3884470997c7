"""Power-average pooling, torch's ``LPPool1d/2d/3d`` and ``F.lp_pool1d/2d/3d``: on each window,
``(sum x**p) ** (1/p)``, computed as torch does from ``avg_pool`` of ``x**p`` times the kernel size."""

import math

from gt.nn import conv_functions as CF
from gt.nn import pooling_functions as PF
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.module import Module

_AVG = {1: CF.avg_pool1d, 2: CF.avg_pool2d, 3: PF.avg_pool3d}
_MAX = {1: CF.max_pool1d, 2: CF.max_pool2d, 3: PF.max_pool3d}


def _lp_pool(nd, input, norm_type, kernel_size, stride, ceil_mode):
    fn = f"lp_pool{nd}d"
    x = _tensor(input, fn)
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or norm_type == 0 \
            or math.isnan(norm_type):
        raise ValueError(f"{fn}: norm_type must be a non-zero number (or +-inf), got {norm_type!r}")
    sizes = (kernel_size,) * nd if isinstance(kernel_size, int) else tuple(kernel_size)
    if len(sizes) != nd:           # avg_pool would take one size for all; torch's lp_pool refuses it
        raise ValueError(f"{fn}: kernel_size must be an int or a tuple of {nd} ints, got {kernel_size!r}")
    if math.isinf(norm_type):                       # max pooling of |x| (or -max of -|x|), as torch
        sign = 1 if norm_type > 0 else -1
        return sign * _MAX[nd](sign * x.abs(), kernel_size, stride, 0, 1, ceil_mode)
    out = _AVG[nd](x.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    # torch's sign(out) * relu(|out|): negative window sums (odd p) become 0 before the root
    return (out.sign() * out.abs().relu() * math.prod(sizes)).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """``(sum over each window of x**norm_type) ** (1/norm_type)``: (N, C, L) or (C, L) -> (..., L_out),
    L_out as ``avg_pool1d``'s (no padding; ``stride`` defaults to ``kernel_size``). ``norm_type=inf``
    is max pooling of ``|x|``. Window sums below 0 (odd ``norm_type``) give 0, as torch's.

        >>> F.lp_pool1d(gt.randn(2, 3, 8), 2, 3, stride=2).shape
        (2, 3, 3)
    """
    return _lp_pool(1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """``lp_pool1d`` over (kH, kW) windows: (N, C, H, W) or (C, H, W) -> (..., H_out, W_out)."""
    return _lp_pool(2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """``lp_pool1d`` over (kD, kH, kW) windows: (N, C, D, H, W) or (C, D, H, W) -> (..., D_out, H_out, W_out)."""
    return _lp_pool(3, input, norm_type, kernel_size, stride, ceil_mode)


class LPPool1d(Module):
    """Power-average pooling (see ``F.lp_pool1d``): (N, C, L) or (C, L).

        >>> nn.LPPool1d(2, 3, stride=2)(gt.randn(20, 16, 50)).shape
        (20, 16, 24)
    """

    _nd = 1

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type, self.kernel_size, self.stride, self.ceil_mode = norm_type, kernel_size, stride, ceil_mode

    def forward(self, input):
        return _lp_pool(self._nd, input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool2d(LPPool1d):
    """Power-average pooling over (kH, kW) windows (see ``F.lp_pool2d``): (N, C, H, W) or (C, H, W)."""

    _nd = 2


class LPPool3d(LPPool1d):
    """Power-average pooling over (kD, kH, kW) windows (see ``F.lp_pool3d``): (N, C, D, H, W) or (C, D, H, W)."""

    _nd = 3
