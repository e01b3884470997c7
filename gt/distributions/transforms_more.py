"""More transforms (torch.distributions.transforms): AbsTransform, SoftmaxTransform,
StickBreakingTransform (real vectors of length K onto the (K + 1)-simplex), LowerCholeskyTransform
and ReshapeTransform."""

import math

from gt.tensor.creation import ones
from gt.tensor.functions import cat
from gt.tensor.runtime import finfo
from gt.distributions import constraints
from gt.distributions.transforms import ParameterFree, Transform, _softplus

__all__ = ["AbsTransform", "LowerCholeskyTransform", "ReshapeTransform", "SoftmaxTransform",
           "StickBreakingTransform"]


class AbsTransform(ParameterFree):
    """y = |x| (not bijective: its inverse gives the nonnegative root)."""

    domain = constraints.real
    codomain = constraints.positive

    def _call(self, x):
        return x.abs()

    def _inverse(self, y):
        return y


class SoftmaxTransform(ParameterFree):
    """y = softmax(x) over the last dim (not bijective: its inverse gives log(y), one of many)."""

    domain = constraints.real_vector
    codomain = constraints.simplex

    def _call(self, x):
        probs = (x - x.amax(-1, keepdim=True)).exp()
        return probs / probs.sum(-1, keepdim=True)

    def _inverse(self, y):
        return y.log()

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return shape

    def inverse_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return shape


def _offset_log(n, like):
    """log(n, n - 1, ..., 1): the shift that maps x = 0 to the simplex's centre."""
    return (n + 1 - ones(n, dtype=like.dtype).cumsum(-1)).log()


def _pad_last(x, before):
    one = ones(tuple(x.shape[:-1]) + (1,), dtype=x.dtype)
    return cat([one, x] if before else [x, one], dim=-1)


class StickBreakingTransform(ParameterFree):
    """Real vectors of length K onto the K + 1 simplex by stick breaking: bijective, and x = 0
    maps to the uniform point."""

    domain = constraints.real_vector
    codomain = constraints.simplex
    bijective = True

    def _call(self, x):
        fi = finfo(x.dtype)
        z = (x - _offset_log(x.shape[-1], x)).sigmoid().clamp(min=fi.tiny, max=1 - fi.eps)
        z_cumprod = (1 - z).cumprod(-1)
        return _pad_last(z, before=False) * _pad_last(z_cumprod, before=True)

    def _inverse(self, y):
        y_crop = y[..., :-1]
        offset = (y.shape[-1] - ones(y_crop.shape[-1], dtype=y.dtype).cumsum(-1)).log()
        sf = (1 - y_crop.cumsum(-1)).clamp(min=finfo(y.dtype).tiny)
        return y_crop.log() - sf.log() + offset

    def log_abs_det_jacobian(self, x, y):
        x = x - _offset_log(x.shape[-1], x)
        log_sigmoid = -_softplus(-x)
        return (-x + log_sigmoid + y[..., :-1].log()).sum(-1)

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return tuple(shape[:-1]) + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return tuple(shape[:-1]) + (shape[-1] - 1,)


class LowerCholeskyTransform(ParameterFree):
    """Square matrices onto lower-triangular ones with a positive diagonal: the strict lower
    triangle is kept, the diagonal exponentiated (not bijective: the upper triangle is dropped)."""

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.lower_cholesky

    def _call(self, x):
        return x.tril(-1) + x.diagonal(dim1=-2, dim2=-1).exp().diag_embed()

    def _inverse(self, y):
        return y.tril(-1) + y.diagonal(dim1=-2, dim2=-1).log().diag_embed()


class ReshapeTransform(Transform):
    """Reshapes the rightmost dims from ``in_shape`` to ``out_shape`` (same number of elements)."""

    bijective = True

    def __init__(self, in_shape, out_shape, cache_size=0):
        self.in_shape = tuple(int(s) for s in in_shape)
        self.out_shape = tuple(int(s) for s in out_shape)
        if math.prod(self.in_shape) != math.prod(self.out_shape):
            raise ValueError(f"in_shape {self.in_shape}, out_shape {self.out_shape} have different numbers of "
                             "elements")
        super().__init__(cache_size=cache_size)

    @property
    def domain(self):
        return constraints.independent(constraints.real, len(self.in_shape))

    @property
    def codomain(self):
        return constraints.independent(constraints.real, len(self.out_shape))

    def with_cache(self, cache_size=1):
        if self._cache_size == cache_size:
            return self
        return ReshapeTransform(self.in_shape, self.out_shape, cache_size=cache_size)

    def __eq__(self, other):
        return (isinstance(other, ReshapeTransform) and self.in_shape == other.in_shape
                and self.out_shape == other.out_shape)

    __hash__ = object.__hash__

    def _call(self, x):
        return x.reshape(tuple(x.shape[:x.dim() - len(self.in_shape)]) + self.out_shape)

    def _inverse(self, y):
        return y.reshape(tuple(y.shape[:y.dim() - len(self.out_shape)]) + self.in_shape)

    def log_abs_det_jacobian(self, x, y):
        return x.new_zeros(tuple(x.shape[:x.dim() - len(self.in_shape)]))

    def forward_shape(self, shape):
        return self._move(shape, self.in_shape, self.out_shape)

    def inverse_shape(self, shape):
        return self._move(shape, self.out_shape, self.in_shape)

    @staticmethod
    def _move(shape, src, dst):
        shape = tuple(shape)
        if len(shape) < len(src):
            raise ValueError("Too few dimensions on input")
        cut = len(shape) - len(src)
        if shape[cut:] != src:
            raise ValueError(f"Shape mismatch: expected {shape[cut:]} but got {src}")
        return shape[:cut] + dst


class SoftplusTransform(ParameterFree):
    """y = log(1 + exp(x)), onto the positive numbers (torch's)."""

    domain = constraints.real
    codomain = constraints.positive
    bijective = True
    sign = +1

    def _call(self, x):
        return _softplus(x)

    def _inverse(self, y):
        return (-(-y).expm1()).log() + y

    def log_abs_det_jacobian(self, x, y):
        return -_softplus(-x)
