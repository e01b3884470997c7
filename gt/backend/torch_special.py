"""The special functions of the torch engine (mixed into ``TorchEngine``): the primitives of
gt/backend/engine_special.py, each torch.special's function of that name (``torch.lgamma`` for
``lgamma``), so values are torch's bit for bit; float16 and bfloat16 compute in float32 and
round once (torch has no CPU kernel of some of them in those dtypes)."""

import torch

from gt.backend.engine_special import SPECIAL_BINARY, SPECIAL_UNARY, unknown_special

_FUNCTIONS = {name: torch.lgamma if name == "lgamma" else getattr(torch.special, name)
              for name in SPECIAL_UNARY + SPECIAL_BINARY}
_LOW = (torch.float16, torch.bfloat16)


class TorchSpecial:
    def special_math(self, name, x, y=None):
        fn = _FUNCTIONS.get(name)
        if fn is None:
            raise unknown_special(name)
        dtype = x.dtype
        if dtype in _LOW:
            x, y = x.float(), (None if y is None else y.float())
        out = fn(x) if y is None else fn(x, y)
        return out.to(dtype) if dtype in _LOW else out

    def polygamma(self, n, x):
        if x.dtype in _LOW:
            return torch.special.polygamma(n, x.float()).to(x.dtype)
        return torch.special.polygamma(n, x)

    def cumulative_extreme(self, x, axis, largest):
        return tuple(torch.cummax(x, dim=axis) if largest else torch.cummin(x, dim=axis))
