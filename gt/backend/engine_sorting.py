"""The engine primitives of sorting, scans and sampling: a part of the Engine interface
(gt/backend/engine.py), kept in its own file. ``Engine`` inherits these declarations; an engine
defines each one (the numpy engine in gt/backend/numpy_sorting.py, the torch engine in
gt/backend/torch_sorting.py).

Callers (gt/tensor/sorting.py) check every argument first (axes normalized, ``k`` in range), so
these primitives raise nothing a user should see, except ``multinomial``'s checks of the values.
"""

import abc


class SortingPrimitives(abc.ABC):
    __slots__ = ()

    @abc.abstractmethod
    def argsort(self, x, axis, descending=False):
        """int64 positions that sort ``x`` along the int ``axis``, always stably: equal values keep
        the order of their positions (first position first), descending sorts included; NaN sorts
        as the largest value, as in torch."""
        raise NotImplementedError

    @abc.abstractmethod
    def topk_indices(self, x, k, axis, largest=True):
        """The first ``k`` positions of ``argsort(x, axis, descending=largest)`` (int64, in that
        order, ``k`` along ``axis``): the same ties as the full sort, without sorting the whole
        axis where ``k`` is small."""
        raise NotImplementedError

    @abc.abstractmethod
    def cumsum(self, x, axis):
        """Running sums of ``x`` along the int ``axis``; floats keep their dtype, bools and
        integers sum in int64 (torch's rule)."""
        raise NotImplementedError

    def dense_like(self, out, x):
        """``out`` (an array of ``x``'s shape) in the layout of torch's sort of ``x`` (its values
        and indices): ``x``'s strides where ``x`` is dense, else dense in the order of dims
        ``x``'s strides give. The torch engine's own results have it already."""
        return out

    @abc.abstractmethod
    def take_along_axis(self, x, indices, axis):
        """``x`` gathered at the int64 ``indices`` along ``axis`` (numpy's take_along_axis,
        torch's gather): ``indices`` has ``x``'s number of axes."""
        raise NotImplementedError

    @abc.abstractmethod
    def put_along_axis(self, target, indices, values, axis):
        """``target`` written in place at ``indices`` along ``axis`` with ``values`` (an array of
        ``indices``' shape or a Python number); the inverse of ``take_along_axis`` for indices
        that are distinct along the axis. Returns ``target``."""
        raise NotImplementedError

    @abc.abstractmethod
    def multinomial(self, probs, num_samples, replacement):
        """int64 ``(rows, num_samples)`` category indices drawn from the engine's random generator,
        each row of the 2-D float ``probs`` a distribution up to scale (rows need not sum to 1);
        without ``replacement`` a row's indices are distinct. ValueError, naming the value, for
        a probability that is negative, inf or nan, a row summing to 0, or more draws without
        replacement than a row has categories of non-zero probability."""
        raise NotImplementedError
