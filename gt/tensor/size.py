"""``gt.Size``: torch.Size, a tuple of ints with ``numel()``, for code that builds or compares shapes
(``gt.Size([2, 3])``, ``x.shape == gt.Size([2, 3])``, ``x.view(gt.Size(...))``).

gt's ``x.shape`` and ``x.size()`` stay plain tuples (they are read on every op; a tuple subclass
there would cost each of them an allocation), so ``isinstance(x.shape, gt.Size)`` is False where
torch's is True; they compare equal to a Size of the same ints.
"""

import operator

from gt.ops._shapes import numel


class Size(tuple):
    """An immutable shape: a tuple of ints (torch.Size). Slices, ``+`` and ``*`` give Sizes."""

    __slots__ = ()

    def __new__(cls, sizes=()):
        items = []
        for i, d in enumerate(sizes):           # a non-iterable raises TypeError here, as torch's
            try:
                items.append(operator.index(d))
            except TypeError:
                raise TypeError(f"gt.Size() takes an iterable of 'int' (item {i} is '{type(d).__name__}')") from None
        return super().__new__(cls, items)

    def numel(self):
        """The number of elements of a tensor of this shape (1 for ``Size([])``)."""
        return numel(self)

    def __getitem__(self, index):
        item = super().__getitem__(index)
        return Size(item) if isinstance(index, slice) else item

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def __mul__(self, times):
        return Size(tuple(self) * times)

    __rmul__ = __mul__

    def __repr__(self):
        return f"gt.Size({list(self)})"

    def __reduce__(self):
        return Size, (tuple(self),)
