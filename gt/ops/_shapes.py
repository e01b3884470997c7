"""Shape checks shared by ops: they raise clear errors before any compute."""


def broadcast_shape(op, a, b):
    """The numpy broadcast of shapes ``a`` and ``b``, or ValueError naming ``op`` and both shapes."""
    a, b = tuple(a), tuple(b)
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and x != 1 and y != 1:
            raise ValueError(f"{op}: shapes {a} and {b} cannot be broadcast together (dim -{i}: {x} vs {y})")
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


def normalize_axis(axis, ndim, op):
    """One axis as a non-negative int; negative axes count from the end."""
    if isinstance(axis, bool) or not hasattr(axis, "__index__"):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    axis = axis.__index__()  # numpy integers too
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise IndexError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimension(s)")
    return axis % max(ndim, 1)


def normalize_axes(axis, ndim, op):
    """``None`` (all axes) or a sorted tuple of distinct non-negative axes."""
    if axis is None:
        return None
    axes = (axis,) if hasattr(axis, "__index__") else tuple(axis)
    out = tuple(sorted(normalize_axis(a, ndim, op) for a in axes))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return out


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n
