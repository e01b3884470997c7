"""Weight initialisation, in place and outside the tape, with ``torch.nn.init`` semantics.

Every draw comes from gt's random generator, so ``gt.manual_seed`` makes it reproducible.

    >>> w = nn.Parameter(gt.empty(256, 128))
    >>> nn.init.xavier_uniform_(w)          # U(-a, a), a = sqrt(6 / (128 + 256))
"""

import functools
import math
import warnings

from gt import autograd
from gt.tensor import Tensor, rand, randn


def _fill(tensor, values):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: expected a gt.Tensor or nn.Parameter, got {type(tensor).__name__}")
    with autograd.no_grad():
        tensor.copy_(values)
    return tensor


def _floating(tensor, fn, complex_ok=False):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{fn}: expected a gt.Tensor or nn.Parameter, got {type(tensor).__name__}")
    if not (tensor.dtype.is_floating_point or complex_ok and tensor.dtype.is_complex):
        raise TypeError(f"{fn}: expected a floating point tensor, got {tensor.dtype!r}")
    return tensor.dtype


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with samples of U(a, b) (from ``generator``, a ``gt.Generator``, or gt's default one); a
    complex tensor's real and imaginary parts each so (torch's)."""
    dtype = _floating(tensor, "uniform_", complex_ok=True)
    if not a <= b:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
    if dtype.is_complex:
        with autograd.no_grad():
            return tensor.uniform_(a, b, generator=generator)
    return _fill(tensor, rand(*tensor.shape, dtype=dtype, generator=generator) * (b - a) + a)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with samples of N(mean, std**2) (from ``generator``, or gt's default one); a complex
    tensor's parts each from N(mean, std**2 / 2) (torch's)."""
    dtype = _floating(tensor, "normal_", complex_ok=True)
    if not std >= 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    if dtype.is_complex:
        with autograd.no_grad():
            return tensor.normal_(mean, std, generator=generator)
    return _fill(tensor, randn(*tensor.shape, dtype=dtype, generator=generator) * std + mean)


def constant_(tensor, val):
    return _fill(tensor, val)


def zeros_(tensor):
    return _fill(tensor, 0)


def ones_(tensor):
    return _fill(tensor, 1)


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (torch's table): relu sqrt(2), tanh 5/3, ..."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d", "sigmoid"):
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    """For a weight of shape (out, in, *kernel): fan_in = in * prod(kernel), fan_out = out * prod(kernel)."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    mode = mode.lower()          # torch takes 'FAN_IN' too
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _no_elements(tensor):
    """torch's kaiming inits leave a zero-element tensor as it is, with a warning, whatever its rank."""
    if isinstance(tensor, Tensor) and 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-bound, bound) with bound = gain * sqrt(3 / fan) (He et al., 2015).

    ``a=math.sqrt(5)`` gives bound = 1 / sqrt(fan_in): PyTorch's default for Linear weights.
    """
    if _no_elements(tensor):
        return tensor
    fan = _fan(tensor, mode)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan) if fan else 0.0
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std**2) with std = gain / sqrt(fan)."""
    if _no_elements(tensor):
        return tensor
    fan = _fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0
    return normal_(tensor, 0.0, std, generator)


from gt.nn.init_extra import dirac_, eye_, orthogonal_, sparse_, trunc_normal_  # noqa: E402, F401


def deprecated_alias(fn, module="nn.init"):
    """torch's deprecated name without the trailing underscore: the same function, with torch's
    FutureWarning."""
    old = fn.__name__[:-1]

    @functools.wraps(fn)
    def alias(*args, **kwargs):
        warnings.warn(f"`{module}.{old}` is now deprecated in favor of `{module}.{fn.__name__}`.", FutureWarning,
                      stacklevel=2)
        return fn(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old
    return alias


uniform, normal, constant, xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal, orthogonal, eye, dirac = (
    deprecated_alias(f) for f in (uniform_, normal_, constant_, xavier_uniform_, xavier_normal_, kaiming_uniform_,
                             kaiming_normal_, orthogonal_, eye_, dirac_))
