"""Channel-wise dropout layers (``nn.Dropout1d``, ``nn.Dropout2d``, ``nn.Dropout3d``) and
``nn.AlphaDropout``: random in training mode, the identity after ``eval()``."""

from gt.nn import functional as F
from gt.nn.module import Module


class _DropoutNd(Module):
    function = None

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: dropout probability has to be between 0 and 1, but got {p!r}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return type(self).function(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_DropoutNd):
    """Zero whole channels of (N, C, L) or (C, L) with probability ``p`` while training, scaling
    the kept ones by 1/(1-p).

        >>> nn.Dropout1d(0.2)(gt.randn(4, 8, 16)).shape
        (4, 8, 16)
    """

    function = staticmethod(F.dropout1d)


class Dropout2d(_DropoutNd):
    """Zero whole channels of (N, C, H, W) with probability ``p`` while training (3-D inputs are
    read as (N, C, L), as torch does).

        >>> nn.Dropout2d(0.2)(gt.randn(4, 8, 5, 5)).shape
        (4, 8, 5, 5)
    """

    function = staticmethod(F.dropout2d)


class Dropout3d(_DropoutNd):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) with probability ``p`` while training.

        >>> nn.Dropout3d(0.2)(gt.randn(2, 4, 3, 3, 3)).shape
        (2, 4, 3, 3, 3)
    """

    function = staticmethod(F.dropout3d)


class AlphaDropout(_DropoutNd):
    """``F.alpha_dropout`` while training (keeps SELU's zero mean and unit variance); the identity
    after ``eval()``.

        >>> nn.AlphaDropout(0.1)(gt.randn(3, 4)).shape
        (3, 4)
    """

    function = staticmethod(F.alpha_dropout)
