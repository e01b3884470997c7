"""Channel-wise dropout (``F.dropout1d``, ``F.dropout2d``, ``F.dropout3d``) and ``F.alpha_dropout``,
as torch's: random in training only (masks from gt's generator, so ``gt.manual_seed`` makes them
reproducible), the identity otherwise. ``inplace=True`` writes the result into the input (the same
draws and values as without it; recorded on the tape as torch's)."""

import math

from gt import dtypes
from gt.nn.inputs import as_tensor as _tensor
from gt.tensor import rand
from gt.tensor.complex_checks import refuse_complex

# SELU's alpha * scale: where alpha_dropout sends a dropped value, before the affine correction
_SELU_ALPHA = 1.7580993408473766


def _check(fn, p, inplace=False):
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"{fn}: dropout probability has to be between 0 and 1, but got {p!r}")


def scaled(x, keep, inplace):
    """``x * keep`` (``keep`` broadcast to x), into ``x`` where ``inplace``."""
    return x.mul_(keep) if inplace else x * keep


def alpha_map(x, keep, p, inplace):
    """alpha dropout's affine map of ``x`` for the mask ``keep`` (1 kept, 0 dropped; broadcast to
    x), term for term as torch's: ``x * (keep * a) + ((keep - 1) * alpha * a + alpha * a * p)``;
    into ``x`` where ``inplace``."""
    a = 1.0 / math.sqrt((_SELU_ALPHA ** 2 * p + 1) * (1 - p))
    shift = (keep - 1) * (_SELU_ALPHA * a) + _SELU_ALPHA * a * p
    return x.mul_(keep * a).add_(shift) if inplace else x * (keep * a) + shift


def refuse_complex_mask(x):
    """torch's NotImplementedError for a complex ``x`` where dropout draws a mask (training,
    0 < p < 1, elements to drop): its CPU bernoulli has no complex kernel."""
    if x.dtype.is_complex and x.numel():
        refuse_complex(x, "bernoulli_scalar_cpu_")


def _feature_dropout(x, p, training, fn, ranks, what, inplace=False):
    """Zero whole channels: one draw per (sample, channel), broadcast over the trailing axes.
    ``ranks``: (unbatched rank, batched rank); an unbatched input's channel axis is axis 0."""
    x = _tensor(x, fn)
    if x.ndim not in ranks:
        raise ValueError(f"{fn}: expected a {ranks[0]}-D (unbatched) or {ranks[1]}-D (batched) input, got "
                         f"{x.ndim}-D input of shape {x.shape}; {fn} zeroes whole channels of {what}")
    if inplace and x.ndim == ranks[0] and fn != "dropout2d":
        # torch's: an unbatched input gains its batch axis in place and loses it after (two versions);
        # the draws are the same (one per channel, in order)
        _feature_dropout(x.unsqueeze_(0), p, training, fn, ranks, what, inplace)
        return x.squeeze_(0)
    if not training or p == 0:
        return x
    dtype = x.dtype if x.dtype.is_floating_point else dtypes.default_float
    lead = 1 if x.ndim == ranks[0] else 2                       # (C, ...) or (N, C, ...)
    noise = x.shape[:lead] + (1,) * (x.ndim - lead)             # (N, C, 1, ..., 1)
    if p == 1:
        return scaled(x, 0, inplace)
    refuse_complex_mask(x)
    keep = (rand(*noise, dtype=dtype) >= p).to(dtype) * (1.0 / (1.0 - p))
    return scaled(x, keep, inplace)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero each channel of (N, C, L) or (C, L) with probability ``p`` and scale the kept ones by
    1/(1-p); the identity when not ``training``.

        >>> F.dropout1d(gt.ones(2, 3, 4), 0.5).shape
        (2, 3, 4)
    """
    _check("dropout1d", p, inplace)
    return _feature_dropout(input, p, training, "dropout1d", (2, 3), "inputs (N, C, L) or (C, L)", inplace)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero each channel of (N, C, H, W) with probability ``p`` and scale the kept ones by 1/(1-p).
    A 3-D input is read as (N, C, L), as torch does (with a warning there); torch only warns for
    other ranks, gt raises ValueError.

        >>> F.dropout2d(gt.ones(2, 3, 4, 4), 0.5).shape
        (2, 3, 4, 4)
    """
    _check("dropout2d", p, inplace)
    x = _tensor(input, "dropout2d")
    if x.ndim == 3:
        return _feature_dropout(x, p, training, "dropout2d", (2, 3), "", inplace)
    return _feature_dropout(x, p, training, "dropout2d", (3, 4), "inputs (N, C, H, W)", inplace)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Zero each channel of (N, C, D, H, W) or (C, D, H, W) with probability ``p`` and scale the
    kept ones by 1/(1-p).

        >>> F.dropout3d(gt.ones(2, 3, 2, 2, 2), 0.5).shape
        (2, 3, 2, 2, 2)
    """
    _check("dropout3d", p, inplace)
    return _feature_dropout(input, p, training, "dropout3d", (4, 5), "inputs (N, C, D, H, W) or (C, D, H, W)",
                            inplace)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks: each element is set, with probability ``p``, to SELU's negative
    saturation value, then everything is rescaled so that zero mean and unit variance are kept:
    kept ``a * x + a * alpha * p``, dropped ``-a * alpha * (1 - p)``, ``a = 1 / sqrt((alpha**2 * p
    + 1) * (1 - p))``. ``training`` defaults to False, as torch's.

        >>> F.alpha_dropout(gt.randn(1000), 0.2, training=True).std()   # about 1
    """
    _check("alpha_dropout", p, inplace)
    x = _tensor(input, "alpha_dropout")
    if not training or p == 0:
        return x
    if p == 1:
        return scaled(x, 0, inplace)
    refuse_complex_mask(x)
    dtype = x.dtype if x.dtype.is_floating_point else dtypes.default_float
    return alpha_map(x, (rand(*x.shape, dtype=dtype) >= p).to(dtype), p, inplace)
