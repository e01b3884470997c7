"""Writes into memory an operand or the written tensor itself lies in twice: the engine questions
behind gt/tensor/overlap_writes.py and the operand copies that give every engine one answer.
Inherited by ``FastPaths`` (gt/backend/engine_defaults.py)."""

import math

import numpy as np


class OverlapPaths:
    keeps_empty_strides = True     # an array of no elements keeps its strides (numpy's new ones have none)
    warns_expanded_puts = False    # the engine's setitem gives torch's warning for an expanded target itself

    def expand(self, x, shape):
        """torch's ``expand`` (the ``Expand`` op): a view of ``x`` broadcast to ``shape`` with torch's
        strides (``expand_strides``), writable where ``x`` is: torch writes into an expanded tensor
        where no two of the written elements share memory (``write_refusal`` refuses the rest). The
        default: ``broadcast_to`` (the torch engine's is torch's ``expand``)."""
        return self.broadcast_to(x, shape)

    def with_strides(self, arr, strides):
        """``arr`` seen with the element ``strides`` where they differ from its own only where no
        element's place changes (an axis of size 1, an array of no elements): torch's strides of a
        view (``unsqueeze``, ``x[None]``) that the engine's own op lays out otherwise. The
        default: ``arr`` itself."""
        return arr

    def may_share(self, a, b):
        """``memory_overlap``'s first question: whether ``a`` and ``b`` may lie in one memory at all."""
        return (self.is_view(a) or self.is_view(b)) and self.same_memory(a, b)

    def fill(self, arr, value):
        """Write the number (or 0-d array) ``value`` into every element of ``arr``, in place, also
        where its elements share memory (torch's ``fill_``, which allows that, where its copies do not)."""
        arr[...] = value

    def write_operands(self, arr, values):
        """For an elementwise write into ``arr`` from ``values`` (numbers or arrays): None where
        ``arr``'s own elements share memory (``overlaps_itself``: the write goes round by round,
        gt/tensor/overlap_writes.py), else the values as ``read_before_write`` gives them. One
        call for both questions, asked on every in-place op: engines answer the common cases at once."""
        return None if self.overlaps_itself(arr) else self.read_before_write(arr, values)

    def read_before_write(self, arr, values):
        """The operands of an elementwise write into ``arr`` (numbers or arrays), each as it is before
        the write: one that lies in ``arr``'s memory in another layout (torch lets those through
        where its overlap check cannot tell: gaps or repeats) is copied first, so that every engine
        gives one answer (torch's kernels read it as they write, in their own order; numpy's
        assignment too)."""
        for i, v in enumerate(values):
            if self.is_array(v) and v is not arr and (self.is_view(v) or self.is_view(arr)) \
                    and self.memory_owner(v) is self.memory_owner(arr) and not _same_layout(self, arr, v):
                values = [*values[:i], self.copy(v), *values[i + 1:]]
        return values

    def overlaps_itself(self, arr):
        """Whether two elements of ``arr`` lie in one memory location through strides that are not
        0 (the windows of ``as_strided``/``unfold``; an axis of stride 0 is ``write_refusal``'s):
        in-place writes there go element by element (gt/tensor/overlap_writes.py). Engines answer
        contiguous arrays first; this default checks the layout, then the positions."""
        shape, strides = tuple(arr.shape), self.element_strides(arr)
        extent = 0
        for n, s in sorted((p for p in zip(shape, strides) if p[0] > 1), key=lambda p: p[1]):
            if s <= 0:
                return False
            if s <= extent:            # torch's cheap test failed: count the positions
                break
            extent += (n - 1) * s
        else:
            return False
        pos = 0
        for axis, (n, s) in enumerate(zip(shape, strides)):
            pos = np.add.outer(pos, np.arange(n, dtype=np.int64) * s) if axis else np.arange(n, dtype=np.int64) * s
        return np.unique(pos).size != math.prod(shape)


def _same_layout(engine, a, b):
    return (engine.data_address(a) == engine.data_address(b) and tuple(a.shape) == tuple(b.shape)
            and engine.element_strides(a) == engine.element_strides(b))


def expand_strides(shape, strides, target):
    """torch's strides (in elements) of a tensor of ``shape`` and ``strides`` expanded to ``target``
    (its ``inferExpandGeometry``): an axis of size 1 made another size steps 0, a new leading axis
    steps over the axes after it (0 over a 0-d tensor's), the others keep theirs."""
    out, below, lead = [0] * len(target), 0, len(target) - len(shape)
    for i in range(len(target) - 1, -1, -1):
        size, step = (shape[i - lead], strides[i - lead]) if i >= lead else (1, below)
        if size != target[i]:
            size, step = target[i], 0
        out[i], below = step, size * step
    return tuple(out)
