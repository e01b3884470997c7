"""torch's remaining activation layers (ReLU6, Hardtanh, SELU, GLU, PReLU, RReLU, ...): thin modules
over gt/nn/activation_functions.py with torch's arguments, defaults and ``repr``.

Layers that take ``inplace=True`` write their result into the input (recorded on the tape, as torch's).
"""

import warnings

from gt import dtypes
from gt.nn import activation_functions as A
from gt.nn.module import Module
from gt.nn.parameter import Parameter
from gt.tensor import full


def _inplace_str(inplace, first=False):
    """torch's ``extra_repr`` tail for ``inplace``: shown only when True."""
    if not inplace:
        return ""
    return "inplace=True" if first else ", inplace=True"


class Hardtanh(Module):
    """``x`` clamped to ``[min_val, max_val]`` (gradient 0 at the bounds, as torch). Input any shape.

    torch asserts ``max_val > min_val``; gt raises ValueError (equal bounds are refused too, as torch)."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False, min_value=None, max_value=None):
        super().__init__()
        if min_value is not None:                 # torch's deprecated names, with its warning
            warnings.warn("keyword argument `min_value` is deprecated and renamed to `min_val`", FutureWarning, stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("keyword argument `max_value` is deprecated and renamed to `max_val`", FutureWarning, stacklevel=2)
            max_val = max_value
        if not max_val > min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x):
        return A.hardtanh(x, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace_str(self.inplace)}"


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)``."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return _inplace_str(self.inplace, first=True)


class _Elementwise(Module):
    """A parameterless activation ``fn(x, inplace)``; shows ``inplace=True`` when set, as torch."""

    fn = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return type(self).fn(x, inplace=self.inplace)

    def extra_repr(self):
        return _inplace_str(self.inplace, first=True)


class Hardsigmoid(_Elementwise):
    """``relu6(x + 3) / 6``."""
    fn = A.hardsigmoid

    def extra_repr(self):
        return ""             # torch's repr shows no ``inplace`` for this layer


class Hardswish(_Elementwise):
    """``x * relu6(x + 3) / 6``."""
    fn = A.hardswish

    def extra_repr(self):
        return ""             # torch's repr shows no ``inplace`` for this layer


class Mish(_Elementwise):
    """``x * tanh(softplus(x))``."""
    fn = A.mish


class SELU(_Elementwise):
    """``scale * elu(x, alpha)`` with torch's self-normalising constants."""
    fn = A.selu


class CELU(Module):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``; ``alpha`` must not be 0."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        if alpha == 0:
            raise ValueError("CELU: alpha cannot be 0")
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x):
        return A.celu(x, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}{_inplace_str(self.inplace)}"


class Threshold(Module):
    """``x`` where ``x > threshold``, else ``value``."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, x):
        return A.threshold(x, self.threshold, self.value, self.inplace)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}{_inplace_str(self.inplace)}"


class GLU(Module):
    """``a * sigmoid(b)`` of the two halves of the input along ``dim``: (..., 2n, ...) -> (..., n, ...)."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return A.glu(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmin(Module):
    """``softmax(-x)`` along ``dim`` (``None``: torch's implicit dim, with its warning)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return A.softmin(x, self.dim, _stacklevel=5)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSigmoid(Module):
    """``log(sigmoid(x))``, computed stably (finite for any finite input)."""

    def forward(self, x):
        return A.logsigmoid(x)


class Softsign(Module):
    """``x / (1 + |x|)``."""

    def forward(self, x):
        return A.softsign(x)


class Tanhshrink(Module):
    """``x - tanh(x)``."""

    def forward(self, x):
        return A.tanhshrink(x)


class Softshrink(Module):
    """``x -+ lambd`` outside ``[-lambd, lambd]``, 0 inside; ``lambd >= 0``."""

    def __init__(self, lambd=0.5):
        super().__init__()
        A._lambd(lambd, "Softshrink")
        self.lambd = lambd

    def forward(self, x):
        return A.softshrink(x, self.lambd)

    def extra_repr(self):
        return str(self.lambd)


class Hardshrink(Module):
    """``x`` outside ``[-lambd, lambd]``, 0 inside."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return A.hardshrink(x, self.lambd)

    def extra_repr(self):
        return str(self.lambd)


class PReLU(Module):
    """``x`` where positive, ``weight * x`` elsewhere, with a learnable ``weight`` of shape
    ``(num_parameters,)`` filled with ``init``: one slope shared by all, or one per channel (dim 1 of
    the input, so ``num_parameters`` must then equal ``input.shape[1]``). torch's parameter name and
    shape, so torch's state dict loads as is. ``device`` is accepted for torch's signature and not used
    (parameters live where gt puts them). As in torch, ``prelu.num_parameters`` is the int given, so
    on a PReLU ``Module.num_parameters()`` is reached as ``nn.Module.num_parameters(prelu)``."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) or num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters must be a positive int, got {num_parameters!r}")
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(full((num_parameters,), float(init),
                                     dtype=dtypes.default_float if dtype is None else dtype))

    def forward(self, x):
        return A.prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"

    def __repr__(self):
        # ``num_parameters`` is torch's int attribute here, hiding ``Module.num_parameters()``
        return f"PReLU({self.extra_repr()})  # {Module.num_parameters(self):,} parameters"


class RReLU(Module):
    """Randomized leaky ReLU: in training, a slope drawn from ``U(lower, upper)`` for each
    non-positive element (gt's generator, so not torch's draws); in eval, ``(lower + upper) / 2``."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        if lower > upper:
            raise ValueError(f"RReLU: lower bound should be less than or equal to the upper bound, got "
                             f"lower={lower}, upper={upper}")
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, x):
        return A.rrelu(x, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}{_inplace_str(self.inplace)}"
