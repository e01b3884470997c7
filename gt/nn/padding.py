"""Padding: ``F.pad`` (torch's ``pad`` tuple: last dim first, negative pads crop) and the layers
``ZeroPad{1,2,3}d``, ``ConstantPad{1,2,3}d``, ``ReflectionPad{1,2,3}d``, ``ReplicationPad{1,2,3}d``
and ``CircularPad{1,2,3}d`` around it. The op itself, forward and backward: gt/ops/padding.py.
"""

import operator

from gt import dtypes
from gt.errors import ShapeError
from gt.nn.inputs import as_tensor
from gt.nn.module import Module
from gt.ops import padding as padding_ops
from gt.tensor.int_scalars import checked_scalar

MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    """``input`` padded (or cropped, where a pad is negative) as torch's ``F.pad``.

    ``pad`` lists (left, right) pairs from the last dim backwards: ``(1, 2)`` adds 1 element
    before and 2 after the last dim, ``(1, 1, 0, 3)`` also adds 3 at the end of dim -2. Its
    length is even and at most ``2 * input.ndim``. Modes:

    - ``"constant"``: ``value`` (default 0; cast to the input's dtype, as torch's);
    - ``"reflect"``: the mirror image without the edge (``[0, 1, 2]`` padded (2, 1) is
      ``[2, 1, 0, 1, 2, 1]``); each pad must be smaller than the dim;
    - ``"replicate"``: the edge value repeated (the dim must not be empty);
    - ``"circular"``: wrapped round (``[0, 1, 2]`` padded (1, 2) is ``[2, 0, 1, 2, 0, 1]``); each
      pad at most the dim's length (after cropping, as torch's).

    Shapes: (*, n_k, ..., n_1) -> (*, n_k + l_k + r_k, ..., n_1 + l_1 + r_1). Differentiable
    (one op). Always a new tensor, never a view of ``input`` (as torch's).
    Where gt differs from torch: torch pads only the last 1-3 dims of a 2-D to 5-D input in the
    non-constant modes (``reflect`` of a 1-D tensor is its NotImplementedError); gt pads any
    number of trailing dims in every mode, of inputs of any number of dims.

        >>> F.pad(gt.arange(3.0), (2, 1), mode="reflect").tolist()
        [2.0, 1.0, 0.0, 1.0, 2.0, 1.0]
        >>> F.pad(gt.zeros(1, 3, 8, 8), (1, 1, 1, 1)).shape            # (N, C, H, W)
        (1, 3, 10, 10)
    """
    x = as_tensor(input, "pad")
    pads = _pads(pad, x.ndim)
    if mode not in MODES:
        raise NotImplementedError(f"pad: unrecognised padding mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode != "constant" and value is not None:
        raise ValueError(f"pad: padding mode {mode!r} doesn't take a value argument (got value={value!r}); "
                         "only mode='constant' does")
    if mode in ("reflect", "replicate") and pads and all(x.shape[d] + lo + hi < 1 for d, lo, hi in pads):
        raise ShapeError(f"pad: input of shape {x.shape} is too small: {mode} padding by {tuple(pad)} leaves no "
                         "element in any padded dim")      # torch's check: one empty dim among several is fine
    pads = tuple((dim, left, right) for dim, left, right in pads if left or right)
    if not pads:
        return x.clone()   # torch returns a new tensor even where nothing changes
    for dim, left, right in pads:
        _check_dim(x.shape, dim, left, right, mode)
    if value is not None and type(value) in (int, float) and x.dtype.name in dtypes.INT_RANGES:
        # torch takes the value as a float and casts it checked: uint8 refuses -1 (as -1.0) and 300
        value = checked_scalar(float(value), x.dtype, "pad's value")
    return padding_ops.Pad.apply(x, pads=pads, mode=mode, value=0 if value is None else value)


def _pads(pad, ndim):
    """``pad`` as ``((dim, left, right), ...)``, last dim first; errors name what is wrong."""
    try:
        pad = [operator.index(p) for p in pad]
    except TypeError:
        raise TypeError(f"pad: expected a tuple of ints (left, right, ...), got {pad!r}") from None
    if len(pad) % 2:
        raise ShapeError(f"pad: padding length must be divisible by 2 (one (left, right) pair per dim), got {pad}")
    if len(pad) > 2 * ndim:
        raise ShapeError(f"pad: padding length {len(pad)} is more than two times the {ndim} dimension(s) of "
                         "the input")
    return [(ndim - 1 - i, pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]


def _check_dim(shape, dim, left, right, mode):
    """The sizes torch accepts for padding dim ``dim`` of an input of ``shape`` by (left, right)."""
    n = shape[dim]
    kept = n - max(-left, 0) - max(-right, 0)   # constant and circular crop first, the others pad first
    if (kept if mode in ("constant", "circular") else n + left + right) < 0:
        raise ShapeError(f"pad: the negative pads ({left}, {right}) remove more than the {n} element(s) of dim "
                         f"{dim} (input shape {shape})")
    if mode == "reflect" and max(left, right) >= n:
        raise ShapeError(f"pad: reflect padding ({left}, {right}) must be less than the size {n} of dim {dim} "
                         f"(input shape {shape})")
    if mode == "replicate" and n == 0 and max(left, right) > 0:
        raise ShapeError(f"pad: replicate padding needs a non-empty dim {dim} to repeat, got input shape {shape}")
    if mode == "circular" and max(left, right) > kept:
        # (where torch's own check lets this through, it returns uninitialised memory)
        raise ShapeError(f"pad: circular padding ({left}, {right}) wraps round the {kept} element(s) of dim {dim} "
                         f"more than once; each pad must be at most {kept}")


# ---- layers ---------------------------------------------------------------------------------
class _PadNd(Module):
    """``F.pad(x, self.padding, mode)`` with ``padding`` an int (every side) or a tuple of
    ``2 * dims`` ints (left, right, top, bottom, front, back), as torch's padding layers."""

    mode, dims = "constant", 1

    def __init__(self, padding):
        super().__init__()
        n = 2 * self.dims
        if isinstance(padding, bool):
            raise TypeError(f"{type(self).__name__}: padding must be an int or a tuple of {n} ints, got {padding!r}")
        try:
            padding = (operator.index(padding),) * n
        except TypeError:
            padding = tuple(padding) if isinstance(padding, (tuple, list)) else padding
        if not isinstance(padding, tuple) or len(padding) != n or not all(
                isinstance(p, int) and not isinstance(p, bool) for p in padding):
            raise TypeError(f"{type(self).__name__}: padding must be an int or a tuple of {n} ints, got {padding!r}")
        self.padding = padding

    def forward(self, x):
        return pad(x, self.padding, self.mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, x):
        return pad(x, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dim with ``value``: (*, W) -> (*, W + left + right)."""


class ConstantPad2d(_ConstantPadNd):
    """Pads the last two dims with ``value``: (*, H, W) -> (*, H + top + bottom, W + left + right)."""
    dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pads the last three dims with ``value``: (*, D, H, W) -> (*, D + front + back, H + ..., W + ...)."""
    dims = 3


class ZeroPad1d(ConstantPad1d):
    """Pads the last dim with zeros: (*, W) -> (*, W + left + right)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pads the last two dims with zeros: (*, H, W) -> (*, H + top + bottom, W + left + right).

        >>> nn.ZeroPad2d((1, 1, 2, 0))(gt.ones(1, 1, 3, 3)).shape
        (1, 1, 5, 5)
    """

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """Pads the last three dims with zeros."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Mirrors the last dim at its edges (without repeating them): (*, W) -> (*, W + left + right)."""
    mode = "reflect"


class ReflectionPad2d(_PadNd):
    """Mirrors the last two dims at their edges."""
    mode, dims = "reflect", 2


class ReflectionPad3d(_PadNd):
    """Mirrors the last three dims at their edges."""
    mode, dims = "reflect", 3


class ReplicationPad1d(_PadNd):
    """Repeats the edge values of the last dim: (*, W) -> (*, W + left + right)."""
    mode = "replicate"


class ReplicationPad2d(_PadNd):
    """Repeats the edge values of the last two dims."""
    mode, dims = "replicate", 2


class ReplicationPad3d(_PadNd):
    """Repeats the edge values of the last three dims."""
    mode, dims = "replicate", 3


class CircularPad1d(_PadNd):
    """Wraps the last dim round: (*, W) -> (*, W + left + right)."""
    mode = "circular"


class CircularPad2d(_PadNd):
    """Wraps the last two dims round."""
    mode, dims = "circular", 2


class CircularPad3d(_PadNd):
    """Wraps the last three dims round."""
    mode, dims = "circular", 3
