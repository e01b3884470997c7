"""Shape checks shared by ops: they raise clear errors before any compute."""

from gt.errors import ShapeError


def broadcast_shape(op, a, b, error=None):
    """The numpy broadcast of shapes ``a`` and ``b``, or a ShapeError (gt's ValueError, torch's
    RuntimeError) naming ``op`` and both shapes.
    ``error(a, b, dim)`` (optional) makes the exception instead, for torch's own wording: ``a``
    and ``b`` padded with leading 1s to one length, ``dim`` the first clash counted from the front."""
    a, b = tuple(a), tuple(b)
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    for i, (x, y) in enumerate(zip(pa, pb)):
        if x != y and x != 1 and y != 1:
            if error is not None:
                raise error(pa, pb, i)
            raise ShapeError(f"{op}: shapes {a} and {b} cannot be broadcast together (dim {i - n}: {x} vs {y})")
    return tuple(y if x == 1 else x for x, y in zip(pa, pb))


def broadcast_shapes(shapes, op=None, skip=()):
    """The broadcast of several ``shapes``. With ``op``: a ShapeError naming it where two do not
    broadcast, but for the output axes in ``skip`` (a gather's index beside its input differs in
    size there). Without: the last size other than 1 along each axis, unchecked."""
    nd = max((len(s) for s in shapes), default=0)
    out = [1] * nd
    for s in shapes:
        for i, n in enumerate(s):
            j = i + nd - len(s)
            if n != 1:
                if op is not None and out[j] not in (1, n) and j not in skip and j - nd not in skip:
                    raise ShapeError(f"{op}: shapes {' and '.join(map(str, shapes))} cannot be broadcast together "
                                     f"(dim {j - nd}: {out[j]} vs {n})")
                out[j] = n
    return tuple(out)


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
    if len(set(out)) != len(out):      # gt's ValueError, torch's RuntimeError
        twice = next(a for a in out if out.count(a) > 1)
        raise ShapeError(f"{op}: repeated axis in {axis!r} (dim {twice} appears multiple times in the list of dims)")
    return out


def reduction_axes(axis, ndim, op):
    """``normalize_axes`` for torch's reductions (``sum``, ``mean``, ``var``, ``norm``...), which
    read an empty tuple of dims as every dim, where numpy's reduce over none."""
    axes = normalize_axes(axis, ndim, op)
    return None if axes == () else axes


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def row_major_strides(shape):
    """The strides, in elements, of ``shape`` laid out row-major, as torch gives them (an axis of
    size 0 counts as 1)."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.insert(0, step)
        step *= max(n, 1)
    return tuple(strides)


def is_row_major(shape, strides):
    """torch's ``is_contiguous`` of ``strides``: ``row_major_strides`` along every dim of more than
    one element (dims of one element step anywhere); no elements: True."""
    return 0 in tuple(shape) or all(n == 1 or s == r for n, s, r in zip(shape, strides, row_major_strides(shape)))


def view_strides(shape, strides, target):
    """The strides of ``target`` as a view of memory laid out as ``shape``/``strides``, or None
    where no view can give it (an axis of ``target`` would span memory chunks of ``shape`` that
    are not evenly spaced): torch's ``computeStride``, which decides when ``view`` refuses."""
    empty = not shape or numel(shape) == 0
    if empty and tuple(shape) == tuple(target):
        return tuple(strides)
    result = [0] * len(target)
    if empty:                   # any view: torch's row-major strides (all 1 from a 0-d tensor)
        step = 1
        for d in range(len(target) - 1, -1, -1):
            result[d] = step
            step *= max(target[d], 1) if shape else 1
        return tuple(result)
    view_d, chunk_stride = len(target) - 1, strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * chunk_stride):
            while view_d >= 0 and (view_numel < tensor_numel or target[view_d] == 1):
                result[view_d] = view_numel * chunk_stride
                view_numel *= target[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk_stride, tensor_numel, view_numel = strides[d - 1], 1, 1
    return tuple(result) if view_d == -1 else None
