"""The math functions of the torch engine (mixed into ``TorchEngine``): the primitives of
gt/backend/engine_math.py, each torch's own function of that name (torch.special's for the
error functions), so values are torch's bit for bit."""

import contextlib

import torch

from gt.backend.engine_math import BINARY, UNARY, unknown

_SPECIAL = ("erf", "erfc", "erfinv")
_FUNCTIONS = {name: getattr(torch.special if name in _SPECIAL else torch, name) for name in UNARY + BINARY}


class TorchMath:
    def elementwise_math(self, name, x, y=None):
        fn = _FUNCTIONS.get(name)
        if fn is None:
            raise unknown(name)
        return fn(x) if y is None else fn(x, y)

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

    def cumprod(self, x, axis):
        return torch.cumprod(x, dim=axis, dtype=None if x.is_floating_point() or x.is_complex() else torch.int64)

    def qr(self, x, complete=False):
        return tuple(torch.linalg.qr(x, mode="complete" if complete else "reduced"))

    def quiet_float_errors(self):
        return contextlib.nullcontext()         # torch never warns about inf and NaN
