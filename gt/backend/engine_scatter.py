"""The engine primitives of einsum, scatters and index searches: a part of the Engine interface
(gt/backend/engine.py), kept in its own file. ``Engine`` inherits these declarations; an engine
defines each one (the numpy engine in gt/backend/numpy_scatter.py, the torch engine in
gt/backend/torch_scatter.py).

Callers (gt/ops/einsum.py, gt/ops/scatter.py, gt/tensor/index_methods.py) check every argument
first: the equations arrive normalized, index values in range, shapes matching. So these
primitives hold no checks of their own and raise nothing a user should see.
"""

import abc


class ScatterPrimitives(abc.ABC):
    __slots__ = ()

    @abc.abstractmethod
    def einsum(self, equation, *operands):
        """The Einstein sum of ``operands`` (arrays of one dtype) as ``equation`` says, in its
        normal form: letters only, one subscript per axis, an explicit ``->`` output, no
        ``...`` and no spaces (``"ij,jk->ik"``, ``"ii->i"``). A size-1 axis broadcasts against
        the same letter's size in another operand. The result has the operands' dtype (callers
        widen integers first where torch sums them in int64) and may be a view of an operand."""
        raise NotImplementedError

    @abc.abstractmethod
    def scatter_reduce_(self, target, dim, index, src, reduce):
        """``target`` reduced in place with ``src`` at ``index`` along the int ``dim``, as torch's
        ``scatter_reduce_(dim, index, src, reduce, include_self=True)``: for ``dim=0``,
        ``target[index[i][j]][j] = reduce(target[index[i][j]][j], src[i][j])``, every element of
        ``index`` taken once, repeated positions all reduced into one place. ``index`` is int64
        with ``target``'s number of axes, its sizes no larger than ``target``'s off ``dim``, its
        values in ``[0, target.shape[dim])``; ``src`` has ``index``'s shape and ``target``'s
        dtype. ``reduce`` is ``"sum"``, ``"prod"``, ``"amax"`` or ``"amin"`` (NaN wins a max or
        a min, as in torch). Returns ``target``."""
        raise NotImplementedError

    @abc.abstractmethod
    def nonzero(self, x):
        """int64 ``(count, x.ndim)``: the positions of the non-zero elements of ``x`` (NaN is
        non-zero), one row each, in row-major order (a 0-d ``x``: ``(1, 0)`` or ``(0, 0)``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def unique(self, x, return_inverse, return_counts, dim=None):
        """``(values, inverse, counts)`` of the flattened ``x``: its distinct values sorted
        ascending (each NaN distinct from every other, as in torch), then, where asked for,
        int64 ``inverse`` of ``x``'s shape (each element's position in ``values``) and int64
        ``counts`` (how often each value occurs); None where not asked for. With ``dim`` (a
        non-negative axis): the distinct slices along it, in lexicographic order, ``inverse``
        and ``counts`` of length ``x.shape[dim]``."""
        raise NotImplementedError

    @abc.abstractmethod
    def searchsorted(self, sorted_sequence, values, right):
        """int64 positions at which ``values`` would be inserted into ``sorted_sequence`` (sorted
        ascending along its last axis) to keep it sorted: the first such position, or with
        ``right`` the last. A 1-D ``sorted_sequence`` serves ``values`` of any shape; an N-D one
        serves ``values`` with its leading ``N-1`` sizes, row by row. The result has ``values``'
        shape."""
        raise NotImplementedError
