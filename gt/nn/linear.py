"""``Linear`` (weight stored (out, in), as PyTorch), ``Identity``, ``Flatten`` and ``Unflatten``."""

import math

from gt import dtypes
from gt.nn import init
from gt.nn.core_functions import floating_input, linear
from gt.nn.functional import _tensor
from gt.nn.module import Module
from gt.nn.parameter import Parameter
from gt.ops import linalg
from gt.tensor import Tensor, empty


class Linear(Module):
    """``y = x @ weight.T + bias``: (..., in_features) -> (..., out_features).

    ``weight`` has shape (out_features, in_features) and ``bias`` (out_features,), both
    drawn from U(-1/sqrt(in_features), 1/sqrt(in_features)) as in PyTorch, so state dicts
    move between gt and torch without reshuffling.

        >>> fc = nn.Linear(40000, 256)
        >>> fc(gt.randn(8, 40000)).shape
        (8, 256)
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {n!r}")
        self.in_features, self.out_features = in_features, out_features
        dtype = dtypes.default_float if dtype is None else dtype
        self.weight = Parameter(empty(out_features, in_features, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # kaiming_uniform_(a=sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        weight = self.weight      # read once: a parametrized weight is computed at each read
        bias = self.bias
        if type(x) is not Tensor and getattr(x, "is_nested", False):    # gt.nested: F.linear's nested form
            return linear(x, weight, bias)
        return linalg.Linear.apply(floating_input(self._checked(x), weight, bias), weight, bias)

    def _checked(self, x):
        """``x`` as a tensor whose last axis is ``in_features``; ValueError naming the shape if not."""
        if not isinstance(x, Tensor):
            x = _tensor(x, "Linear")
        shape = x.shape
        if not shape or shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.extra_repr()}): input of shape {x.shape} does not end in "
                             f"in_features={self.in_features} (expected shape (..., {self.in_features}))")
        return x

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input unchanged (a placeholder where a layer is optional)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Axes ``start_dim`` to ``end_dim`` merged into one (torch's defaults: all but the batch axis)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Axis ``dim`` split into ``unflattened_size`` (its product must be the axis' length)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        dim = self.dim % x.ndim if -x.ndim <= self.dim < x.ndim else self.dim
        if not 0 <= dim < x.ndim:
            raise IndexError(f"Unflatten: dim {self.dim} is out of range for a tensor of {x.ndim} dims")
        sizes = list(self.unflattened_size)
        if -1 not in sizes and math.prod(sizes) != x.shape[dim]:
            raise ValueError(f"Unflatten: sizes {self.unflattened_size} do not multiply to the length "
                             f"{x.shape[dim]} of dim {self.dim} (shape {x.shape})")
        return x.reshape(x.shape[:dim] + tuple(sizes) + x.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
