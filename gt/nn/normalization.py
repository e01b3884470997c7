"""``LayerNorm`` over the trailing axes, with a learnable scale and shift."""

from gt import dtypes
from gt.errors import ShapeError
from gt.nn import functional as F
from gt.nn.module import Module
from gt.nn.parameter import Parameter
from gt.ops import linalg
from gt.tensor import Tensor, ones, zeros


class LayerNorm(Module):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last ``len(normalized_shape)``
    axes (biased variance, as PyTorch). ``weight`` starts at ones and ``bias`` at zeros,
    both of shape ``normalized_shape``.

        >>> ln = nn.LayerNorm(256)
        >>> ln(gt.randn(8, 10, 256)).shape
        (8, 10, 256)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None):
        super().__init__()
        self.normalized_shape = F._normalized_shape(normalized_shape)
        if not eps >= 0:       # torch takes 0 (no guard against a zero variance) too
            raise ValueError(f"LayerNorm: eps must be non-negative, got {eps!r}")
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = dtypes.default_float if dtype is None else dtype
        if elementwise_affine:
            self.weight = Parameter(ones(*self.normalized_shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        if elementwise_affine and bias:
            self.bias = Parameter(zeros(*self.normalized_shape, dtype=dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        # F.layer_norm's checks, once, with this layer in the message (a module call is on every
        # step of every model: it goes to the op directly rather than through the function)
        if type(x) is not Tensor and getattr(x, "is_nested", False):    # gt.nested: F.layer_norm's nested form
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        if not isinstance(x, Tensor):
            x = F._tensor(x, "LayerNorm")
        shape = self.normalized_shape
        xs = x.shape
        if xs[len(xs) - len(shape):] != shape or len(xs) < len(shape):
            raise ShapeError(f"LayerNorm({self.extra_repr()}): input of shape {x.shape} does not end in "
                             f"normalized_shape {self.normalized_shape}")
        dtype = x.dtype
        if not dtype.is_floating_point:
            raise TypeError(f"LayerNorm: expected a floating point input, got {dtype!r}")
        weight, bias = self.weight, self.bias
        F._check_affine("LayerNorm", shape, weight, bias, dtype)
        if dtype in dtypes.HALVES:
            # torch's kernel (mixed dtypes too, autocast or not): computed in float32, answered in the input's dtype
            return F.layer_norm_in_float32(x, weight, bias, len(shape), self.eps)
        return linalg.LayerNorm.apply(x, weight, bias, len(shape), self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")
