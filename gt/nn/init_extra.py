"""More of ``torch.nn.init``: ``orthogonal_``, ``trunc_normal_``, ``sparse_``, ``eye_`` and ``dirac_``, in place
and outside the tape. Random draws come from gt's generator (``gt.manual_seed``)."""

import math
import warnings

from gt import autograd
from gt.backend import B
from gt.tensor import Tensor, arange, eye, randn, where, zeros
from gt.tensor import tensor as tensor_of


def _target(tensor, fn, complex_ok=False):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{fn}: expected a gt.Tensor or nn.Parameter, got {type(tensor).__name__}")
    if not (tensor.dtype.is_floating_point or complex_ok and tensor.dtype.is_complex):
        raise TypeError(f"{fn}: expected a floating point tensor, got {tensor.dtype!r}")
    return tensor


def _any_dtype(tensor, fn):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{fn}: expected a gt.Tensor or nn.Parameter, got {type(tensor).__name__}")
    return tensor


def _fill(tensor, values):
    with autograd.no_grad():
        tensor.copy_(values)
    return tensor


def orthogonal_(tensor, gain=1.0, generator=None):
    """Fill with a (semi-)orthogonal matrix times ``gain`` (Saxe et al., 2013), as torch's: the Q
    of the QR decomposition of a normal matrix (rows = shape[0], cols = the rest flattened), its
    signs fixed so that R's diagonal is positive. Rows (or columns, whichever are fewer) are
    orthonormal: Q^T Q = I for a tall matrix, Q Q^T = I for a wide one.

        >>> w = nn.init.orthogonal_(gt.empty(4, 3))       # (w.T @ w) is the 3x3 identity
    """
    _target(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, got shape "
                         f"{tensor.shape}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = randn(rows, cols, dtype=tensor.dtype, generator=generator)
    tall = flat if rows >= cols else flat.transpose(0, 1)                 # (max, min)
    q, r = (Tensor._wrap(m) for m in B.qr(tall._data))                    # (max, min), (min, min)
    signs = (r * eye(r.shape[0], dtype=r.dtype)).sum(0).sign()           # diag(r): R's diagonal made positive
    q = q * signs
    q = q if rows >= cols else q.transpose(0, 1)
    return _fill(tensor, q.reshape(tensor.shape) * gain)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with N(mean, std**2) samples truncated to [a, b], by torch's rejection sampling: normal
    draws redrawn where outside [a, b] when the interval holds over 0.3 of the mass, else uniform
    draws on [a, b] accepted with the density's ratio to its peak there. (An inverse CDF loses the
    far tails to rounding: every value at one bound.)

        >>> w = nn.init.trunc_normal_(gt.empty(3, 5), std=0.02, a=-0.04, b=0.04)
    """
    _target(tensor, "trunc_normal_")
    if not a <= b:
        raise ValueError(f"trunc_normal_: expected a < b (or a == b), got a={a!r}, b={b!r}")
    if not std > 0:              # torch: a ZeroDivisionError at 0, values of no meaning below
        raise ValueError(f"trunc_normal_: std must be positive, got {std!r}")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)

    def cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    mass = cdf((b - mean) / std) - cdf((a - mean) / std)
    with autograd.no_grad():
        values = (_by_redraw if mass > 0.3 else _by_acceptance)(tensor, mean, std, a, b, generator)
    return _fill(tensor, values)


def _by_redraw(tensor, mean, std, a, b, generator):
    # the bounds rounded to the tensor's dtype, so that the test agrees with the values it can hold
    lo, hi = (tensor_of(v, dtype=tensor.dtype).item() for v in (a, b))
    result = zeros(*tensor.shape, dtype=tensor.dtype).normal_(mean, std, generator=generator)
    while True:
        outside = (result < lo) | (result > hi)
        if not bool(outside.any()):
            return result
        result = where(outside, zeros(*tensor.shape, dtype=tensor.dtype).normal_(mean, std, generator=generator),
                       result)


def _by_acceptance(tensor, mean, std, a, b, generator):
    log_peak = -0.5 * ((max(a, min(mean, b)) - mean) / std) ** 2

    def draw():
        x = zeros(*tensor.shape, dtype=tensor.dtype).uniform_(a, b, generator=generator)
        log_pdf = ((x - mean) / std) ** 2 * -0.5 - log_peak
        return x, zeros(*tensor.shape, dtype=tensor.dtype).uniform_(generator=generator).log() > log_pdf

    result, pending = draw()
    while bool(pending.any()):
        x, rejected = draw()
        result = where(pending, x, result)
        pending = pending & rejected
    return result


def sparse_(tensor, sparsity, std=0.01, generator=None):
    """Fill a 2-D tensor with N(0, std**2) samples, then zero ``ceil(sparsity * rows)`` entries of
    each column, at rows drawn without replacement (Martens, 2010), as torch's.

        >>> w = nn.init.sparse_(gt.empty(10, 4), sparsity=0.3)     # 3 zeros in every column
    """
    _target(tensor, "sparse_", complex_ok=True)
    if tensor.ndim != 2:
        raise ValueError(f"sparse_: only tensors with 2 dimensions are supported, got shape {tensor.shape}")
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparse_: sparsity must be a fraction in [0, 1], got {sparsity!r}")
    rows, cols = tensor.shape
    values = randn(rows, cols, dtype=tensor.dtype, generator=generator) * std
    # each column's rows in a random order; a row is zeroed where its place in that order is early
    place = randn(rows, cols, generator=generator).argsort(dim=0).argsort(dim=0)
    return _fill(tensor, values * (place >= math.ceil(sparsity * rows)))


def eye_(tensor):
    """Fill the 2-D ``tensor`` with the identity (ones on the main diagonal of a rectangle too).

        >>> nn.init.eye_(gt.empty(2, 3))
    """
    _any_dtype(tensor, "eye_")
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only tensors with 2 dimensions are supported, got shape {tensor.shape}")
    rows, cols = tensor.shape
    return _fill(tensor, (arange(rows).unsqueeze(1) == arange(cols)).to(tensor.dtype))


def dirac_(tensor, groups=1):
    """Fill a conv weight (out, in, *kernel) with the Dirac delta, as torch's: output channel
    ``g * out_per_group + d`` copies input channel ``d`` (for d < min(out_per_group, in)) at the
    kernel's centre (index k // 2 on each axis), so a convolution with it is the identity.

        >>> nn.init.dirac_(gt.empty(4, 2, 3, 3), groups=2)
    """
    _any_dtype(tensor, "dirac_")
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: only tensors with 3, 4, or 5 dimensions are supported, got shape {tensor.shape}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or tensor.shape[0] % groups:
        raise ValueError(f"dirac_: dim 0 ({tensor.shape[0]}) must be divisible by groups, got groups={groups!r}")
    out, cin, kernel = tensor.shape[0], tensor.shape[1], tensor.shape[2:]
    per_group = out // groups
    hit = (arange(out) % per_group).unsqueeze(1) == arange(cin)        # (out, in): channel d -> d per group
    for k in kernel:                                                    # (out, in, ..., k): the centre only
        hit = hit.unsqueeze(-1) & (arange(k) == k // 2)
    return _fill(tensor, hit.to(tensor.dtype))
