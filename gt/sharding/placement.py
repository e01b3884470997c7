"""Placements: how a tensor's values are laid out over the devices of the mesh.

``Shard(axis)``: split along ``axis``, device ``d`` holding a contiguous block (uneven
splits allowed, a device may hold an empty block); ``Replicate()``: every device holds the
whole tensor; ``Partial()``: every device holds a tensor of the full shape and the value is
their sum (what a sum over a sharded axis leaves before its all-reduce).
"""


class Placement:
    __slots__ = ()

    def is_shard(self, axis=None):
        return False

    def is_replicate(self):
        return False

    def is_partial(self):
        return False

    def __eq__(self, other):
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self):
        return hash((type(self).__name__, self._key()))

    def _key(self):
        return ()


class Shard(Placement):
    """Split along ``axis`` (a non-negative axis of the tensor)."""

    __slots__ = ("axis",)

    def __init__(self, axis):
        if isinstance(axis, bool) or not isinstance(axis, int) or axis < 0:
            raise ValueError(f"Shard(axis): axis must be a non-negative int, got {axis!r}")
        self.axis = axis

    def is_shard(self, axis=None):
        return axis is None or axis == self.axis

    def _key(self):
        return (self.axis,)

    def __repr__(self):
        return f"Shard({self.axis})"


class Replicate(Placement):
    """A full copy on every device."""

    __slots__ = ()

    def is_replicate(self):
        return True

    def __repr__(self):
        return "Replicate()"


class Partial(Placement):
    """Per-device tensors of the full shape whose sum is the value."""

    __slots__ = ()

    def is_partial(self):
        return True

    def __repr__(self):
        return "Partial()"


def even_sizes(n, parts):
    """Block sizes of ``n`` items over ``parts`` devices, the first ``n % parts`` one larger
    (numpy.array_split's rule): 5 over 4 is [2, 1, 1, 1], 2 over 4 is [1, 1, 0, 0]."""
    base, extra = divmod(n, parts)
    return [base + (1 if d < extra else 0) for d in range(parts)]


def offsets(sizes):
    """Start of each block: [2, 1, 1, 1] -> [0, 2, 3, 4]."""
    out, total = [], 0
    for s in sizes:
        out.append(total)
        total += s
    return out
