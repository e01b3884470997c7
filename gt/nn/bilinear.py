"""``Bilinear`` and ``F.bilinear``: ``y_k = x1 @ weight[k] @ x2 + bias_k``, torch's layout and init."""

import math

from gt import dtypes
from gt.errors import ShapeError
from gt.nn import init
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.module import Module
from gt.nn.parameter import Parameter
from gt.tensor import empty
from gt.tensor.product_dtypes import check_bilinear


def bilinear(input1, input2, weight, bias=None):
    """``y[..., k] = sum_ij input1[..., i] * weight[k, i, j] * input2[..., j] + bias[k]``:
    input1 (..., in1), input2 (..., in2) with the same leading shape, weight (out, in1, in2),
    bias (out,) -> (..., out), as torch's.

        >>> F.bilinear(gt.randn(5, 3), gt.randn(5, 4), gt.randn(2, 3, 4)).shape
        (5, 2)
    """
    x1, x2 = _tensor(input1, "bilinear", "input1"), _tensor(input2, "bilinear", "input2")
    weight = _tensor(weight, "bilinear", "weight")
    if weight.ndim != 3:
        raise ValueError(f"bilinear: weight must be 3-D (out_features, in1_features, in2_features), "
                         f"got shape {weight.shape}")
    out, in1, in2 = weight.shape
    if x1.ndim == 0 or x2.ndim == 0 or x1.shape[:-1] != x2.shape[:-1]:
        raise ValueError(f"bilinear: input1 {x1.shape} and input2 {x2.shape} must have the same leading "
                         f"shape (..., in1) and (..., in2)")
    if x1.shape[-1] != in1 or x2.shape[-1] != in2:
        raise ValueError(f"bilinear: input1 {x1.shape} and input2 {x2.shape} must end in in1_features={in1} "
                         f"and in2_features={in2} (weight {weight.shape})")
    if bias is not None:
        bias = _tensor(bias, "bilinear", "bias")
        if bias.shape != (out,):
            raise ShapeError(f"bilinear: bias must have shape ({out},), got {bias.shape}")
    check_bilinear(x1, x2, weight, bias)
    # one matmul: (..., in1) @ (in1, out * in2) -> (..., out, in2), then contract in2 with x2
    w = weight.permute(1, 0, 2).reshape(in1, out * in2)
    terms = (x1 @ w).reshape(*x1.shape[:-1], out, in2) * x2.unsqueeze(-2)
    y = terms.sum(-1)                                                                  # (..., out)
    if y.dtype != terms.dtype:      # an integer sum widens to int64: torch's stays in (and wraps in) the inputs' dtype
        y = y.to(terms.dtype)
    return y if bias is None else y + bias


class Bilinear(Module):
    """``y = x1 @ weight @ x2 + bias``: (..., in1_features), (..., in2_features) -> (..., out_features).

    ``weight`` (out_features, in1_features, in2_features) and ``bias`` (out_features,) start as
    U(-1/sqrt(in1_features), 1/sqrt(in1_features)), as torch's, so torch state dicts load as they are.

        >>> m = nn.Bilinear(20, 30, 40)
        >>> m(gt.randn(128, 20), gt.randn(128, 30)).shape
        (128, 40)
    """

    def __init__(self, in1_features, in2_features, out_features, bias=True, dtype=None):
        super().__init__()
        for name, n in (("in1_features", in1_features), ("in2_features", in2_features),
                        ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"Bilinear: {name} must be a non-negative int, got {n!r}")
        if in1_features == 0:
            raise ValueError(f"in1_features must be > 0, but got (in1_features={in1_features})")
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        dtype = dtypes.default_float if dtype is None else dtype
        self.weight = Parameter(empty(out_features, in1_features, in2_features, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.in1_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
