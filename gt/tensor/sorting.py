"""Sorting, running sums and sampling of a tensor: ``sort``, ``argsort``, ``topk``, ``cumsum``,
``multinomial``, with torch's signatures and results.

Ties: every sort is stable, ``stable=False`` included (torch leaves that order unspecified; gt
fixes it): equal values keep the order of their positions, first position first, in ascending
and descending sorts alike; ``topk`` keeps the first positions among equal values, and its
values always come sorted (what ``sorted=True`` asks; with ``sorted=False`` torch promises no
order, so this one is as good). NaN counts as the largest value, as in torch.

Sharding: along an axis that is not the sharded one, each device sorts, sums or samples its own
block (no collective; ``multinomial`` draws the blocks in order, so the samples are those of
one device); along the sharded axis, ``topk`` and ``cumsum`` run per device too (axis_scans.py),
``sort`` gathers the tensor once, the others gather it first.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import collections

from gt.backend import B
from gt.errors import ShapeError
from gt.ops import sorting as sorting_ops
from gt.ops._shapes import normalize_axis
from gt.sharding.layout import Placed
from gt.sharding.placement import Shard
from gt.tensor import axis_scans, dispatch, wide_uints
from gt.tensor import generator as generator_module
from gt.tensor.shape import torch_node_name

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

# torch.return_types.sort / .topk: tuples that unpack as (values, indices) and name both
SortResult = collections.namedtuple("sort", ["values", "indices"])
TopkResult = collections.namedtuple("topk", ["values", "indices"])


def _blockwise(x, fn, axis):
    """``fn`` (engine arrays in and out, working along ``axis``) on each device's block when
    ``x`` is sharded along another axis, else on the whole (gathered) array."""
    p = x._placed
    if p is None or not isinstance(p.placement, Shard) or p.placement.axis == axis:
        return Tensor._wrap(fn(x._data))
    outs = []
    for d, block in enumerate(p.shards):
        with dispatch.on_device(d):
            outs.append(fn(block))
    a = p.placement.axis
    shape = list(outs[0].shape)
    shape[a] = x.shape[a]
    return Tensor._from_value(Placed(outs, Shard(a), tuple(shape)))


def _flag(value, name, op):
    if not isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r}")
    return value


def _ordered(t, name):
    if t.dtype.is_complex:    # torch's error: complex numbers have no order
        raise RuntimeError(f"{name} does not support complex dtypes on CPU: sort .abs() or .real")


class SortingMethods:
    __slots__ = ()

    def argsort(self, dim=-1, descending=False, stable=False):
        """int64 positions that sort this tensor along ``dim`` (stable: see the module docstring).

            >>> gt.tensor([3.0, 1.0, 2.0]).argsort().tolist()
            [1, 2, 0]
        """
        _flag(stable, "stable", "argsort")
        descending = _flag(descending, "descending", "argsort")
        _ordered(self, "sort")
        if self.ndim == 0:
            normalize_axis(dim, 0, "argsort")
            return self.reshape(1).argsort(0).reshape(())
        axis = normalize_axis(dim, self.ndim, "argsort")
        return _blockwise(self, lambda a: B.dense_like(B.argsort(a, axis, descending), a), axis)

    @torch_node_name("SortBackward0")
    def sort(self, dim=-1, descending=False, stable=False):
        """``(values, indices)`` of this tensor sorted along ``dim``; differentiable in the values
        (each gradient goes back to the position its value came from).

            >>> values, indices = gt.tensor([3.0, 1.0, 2.0]).sort(descending=True)
            >>> values.tolist(), indices.tolist()
            ([3.0, 2.0, 1.0], [0, 2, 1])
        """
        if self.ndim == 0:
            values, indices = self.reshape(1).sort(normalize_axis(dim, 0, "sort"), descending, stable)
            return SortResult(values.reshape(()), indices.reshape(()))
        if self._placed is not None:     # sharded: the checks only here, so one device pays nothing more
            axis = normalize_axis(dim, self.ndim, "argsort")     # argsort's checks and messages first
            _flag(stable, "stable", "argsort")
            descending = _flag(descending, "descending", "argsort")
            _ordered(self, "sort")
            found = axis_scans.gathered_pick(self, axis, lambda a: B.dense_like(B.argsort(a, axis, descending), a))
            if found is not None:
                return SortResult(*found)
        indices = self.argsort(dim, descending, stable)
        axis = normalize_axis(dim, self.ndim, "sort")
        return SortResult(sorting_ops.TakeAlongAxis.apply(self, indices, axis=axis), indices)

    @torch_node_name("TopkBackward0")
    def topk(self, k, dim=-1, largest=True, sorted=True):
        """The ``k`` largest (``largest=False``: smallest) values along ``dim`` and their int64
        positions, as ``(values, indices)``; differentiable in the values.

            >>> gt.tensor([1.0, 5.0, 3.0, 5.0]).topk(2).indices.tolist()   # ties: first position first
            [1, 3]
        """
        _ordered(self, "topk")
        _flag(sorted, "sorted", "topk")
        largest = _flag(largest, "largest", "topk")
        n = self.shape[normalize_axis(dim, self.ndim, "topk")] if self.ndim else 1
        if isinstance(k, bool) or not hasattr(k, "__index__") or not 0 <= k.__index__() <= n:
            raise ShapeError(f"topk: k must be an int in [0, {n}] (the size of dim {dim}), got {k!r}")
        if self.ndim == 0:
            values, indices = self.reshape(1).topk(1, 0, largest)     # k=0 too: torch gives the element
            return TopkResult(values.reshape(()), indices.reshape(()))
        axis = normalize_axis(dim, self.ndim, "topk")
        k = k.__index__()
        if self._placed is not None:     # along the sharded axis: each device's top k
            found = axis_scans.topk(self, k, axis, largest)
            if found is not None:
                return TopkResult(*found)
        indices = _blockwise(self, lambda a: B.topk_indices(a, k, axis, largest), axis)
        return TopkResult(sorting_ops.TakeAlongAxis.apply(self, indices, axis=axis), indices)

    def cumsum(self, dim=None, *, axis=None, dtype=None):
        """Running sums along ``dim`` (required, as in torch; numpy's ``axis`` works too);
        differentiable. Bools and integers sum in int64; ``dtype`` casts the input first.

            >>> gt.tensor([1, 2, 3]).cumsum(0).tolist()
            [1, 3, 6]
        """
        if dim is None and axis is None:
            raise TypeError("cumsum: dim is required (the axis to sum along), e.g. x.cumsum(dim=-1)")
        if dim is not None and axis is not None and dim != axis:
            raise TypeError(f"cumsum: pass axis or dim, not both (got axis={axis!r}, dim={dim!r})")
        wide_uints.refuse_target("cumsum_out_cpu", dtype)
        x = self if dtype is None else self.to(dtype)
        dim = axis if dim is None else dim
        if x.ndim == 0:
            normalize_axis(dim, 0, "cumsum")
            out = x.reshape(1).cumsum(0).reshape(())
        else:
            out = sorting_ops.Cumsum.apply(x, axis=normalize_axis(dim, x.ndim, "cumsum"))
        # integers sum in int64, but torch's ``dtype=int32`` result is int32
        return out if dtype is None or out.dtype == x.dtype else out.to(x.dtype)

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        """int64 indices of categories drawn from this tensor of probabilities: ``(V,)`` gives
        ``(num_samples,)``, ``(B, V)`` gives ``(B, num_samples)``. Rows need not sum to 1 (they are
        weights, as in torch); draws come from ``generator`` (a ``gt.Generator``) or gt's default one
        (``gt.manual_seed``).

            >>> gt.manual_seed(0); gt.tensor([0.0, 1.0, 0.0]).multinomial(2, replacement=True).tolist()
            [1, 1]
        """
        generator_module.check(generator, "multinomial")
        if not self.dtype.is_floating_point:
            raise TypeError(f"multinomial: probabilities must be a float tensor, got {self.dtype!r}")
        if self.ndim not in (1, 2) or self.shape[-1] == 0:
            raise ValueError(f"multinomial: probabilities must be 1-D (V,) or 2-D (B, V) with V >= 1, "
                             f"got shape {self.shape}")
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"multinomial: num_samples must be a positive int, got {num_samples!r}")
        replacement = _flag(replacement, "replacement", "multinomial")
        if self.ndim == 1:
            return self.reshape(1, -1).multinomial(num_samples, replacement, generator=generator).reshape(num_samples)
        with generator_module.drawing(generator, "multinomial"):
            return _blockwise(self.detach(), lambda a: B.multinomial(a, num_samples, replacement), 1)

