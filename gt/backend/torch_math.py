"""The math functions of the torch engine (mixed into ``TorchEngine``): the primitives of
gt/backend/engine_math.py, each torch's own function of that name (torch.special's for the
error functions), so values are torch's bit for bit."""

import contextlib

import torch

from gt.backend.dim_order import iterator_strides
from gt.backend.engine_math import BINARY, UNARY, unknown

_SPECIAL = ("erf", "erfc", "erfinv")
_FUNCTIONS = {name: getattr(torch.special if name in _SPECIAL else torch, name) for name in UNARY + BINARY}


class TorchMath:
    def elementwise_math(self, name, x, y=None):
        fn = _FUNCTIONS.get(name)
        if fn is None:
            raise unknown(name)
        return fn(x) if y is None else fn(x, y)

    def iterator_layout(self, out, *operands):
        # torch's own elementwise kernels lay their results out so already; gt's compositions of
        # them (bit kernels, lerp's where) may not
        if type(out) is not torch.Tensor or out.ndim < 2 or out.numel() < 2:
            return out
        tensors = [a for a in operands if type(a) is torch.Tensor and a.ndim]
        if all(t.is_contiguous() for t in tensors):
            return out
        want = iterator_strides(tuple(out.shape), [(tuple(t.shape), t.stride()) for t in tensors])
        if all(n == 1 or h == w for n, h, w in zip(out.shape, out.stride(), want)):
            return out
        return torch.empty_strided(tuple(out.shape), want, dtype=out.dtype, device=out.device).copy_(out)

    def prod(self, x, axis=None, keepdims=False):
        dtype = None if x.is_floating_point() or x.is_complex() else torch.int64
        if axis is None:
            out = torch.prod(x, dtype=dtype)
            return out.reshape((1,) * x.ndim) if keepdims else out
        axes = sorted({a % max(x.ndim, 1) for a in ((axis,) if isinstance(axis, int) else axis)})
        out = x if dtype is None else x.to(dtype)
        for a in axes:                       # torch.prod takes one dim at a time
            out = torch.prod(out, dim=a, keepdim=True)
        return out if keepdims else out.reshape([n for i, n in enumerate(out.shape) if i not in axes])

    def norm2(self, x, axis):
        # torch's own kernel, to its bits: torch's vectorized sqrt is an ulp off its norm's on CPUs
        # without AVX-512 (sqrt(8.5) in float32 on an AMD EPYC), so sqrt(sum(x * x)) was not torch's norm
        return torch.linalg.vector_norm(x, 2, dim=axis, keepdim=True)

    def cumprod(self, x, axis):
        return torch.cumprod(x, dim=axis, dtype=None if x.is_floating_point() or x.is_complex() else torch.int64)

    def qr(self, x, complete=False):
        return tuple(torch.linalg.qr(x, mode="complete" if complete else "reduced"))

    def power(self, a, b):
        return a ** b                           # torch's integer rules already

    def rsqrt(self, x):
        # torch's own kernel: 1 / sqrt(x) in two ops is an ulp off it on CPUs without AVX-512
        return torch.rsqrt(x)

    def quiet_float_errors(self):
        return contextlib.nullcontext()         # torch never warns about inf and NaN

    def maximum(self, a, b):
        if not isinstance(b, torch.Tensor):
            return torch.clamp(a, min=b)
        if not isinstance(a, torch.Tensor):
            return torch.clamp(b, min=a)
        return torch.maximum(a, b)

    def minimum(self, a, b):
        if not isinstance(b, torch.Tensor):
            return torch.clamp(a, max=b)
        if not isinstance(a, torch.Tensor):
            return torch.clamp(b, max=a)
        return torch.minimum(a, b)

    def where(self, cond, x, y):
        if not isinstance(x, torch.Tensor) and not isinstance(y, torch.Tensor):
            # two Python numbers: numpy's result dtype (a float anywhere gives gt's default float)
            dtype = torch.float32 if isinstance(x, float) or isinstance(y, float) else \
                torch.bool if isinstance(x, bool) and isinstance(y, bool) else torch.int64
            x = torch.full((), x, dtype=dtype, device=cond.device)
        # a scalar made on the GPU meeting tensors on the CPU (created there with device="cpu"):
        # torch takes CPU scalars beside GPU tensors, not the other way round
        x, y = (v.to(cond.device) if isinstance(v, torch.Tensor) and v.ndim == 0 and v.device != cond.device else v
                for v in (x, y))
        return torch.where(cond, x, y)

    def clip(self, x, low, high):
        return torch.clamp(x, low, high)
