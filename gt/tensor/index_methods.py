"""Positions and counts of values, as torch computes them: ``nonzero`` (``argwhere``, and
``gt.where(cond)``), ``unique``, ``unique_consecutive``, ``bincount``, ``gt.searchsorted``,
``gt.bucketize``; and ``gt.einsum``. All but ``einsum`` give integers and record no gradient
(torch has none either; its ``bincount`` raises in the backward, gt's records nothing).

Where gt differs from torch:

- ``unique`` always sorts (``sorted=False`` gives the sorted values, as torch does on the
  CPU). ``unique``/``unique_consecutive`` along a ``dim`` whose slices are empty (another dim
  of size 0) give one empty slice, all of them being equal; torch raises there.
- ``searchsorted`` where the sorted sequence holds NaN: the numpy engine puts a value before
  the first NaN, where torch goes past it (NaN values themselves land at the end in both).
- ``einsum`` of bool operands, and of int32/int16/int8/uint8 ones: the result's dtype is torch's (int64 where
  torch sums a subscript that only one operand has, else the operands' own), but bool operands
  that torch cannot contract (its matrix product has no bool kernel) are refused with a
  TypeError, and a few mixes torch refuses (bool operands of which one is summed alone) gt
  computes in int64.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import collections

from gt import dtypes
from gt.backend import B
from gt.ops import einsum as einsum_ops
from gt.ops._shapes import numel
from gt.tensor._args import _alias
from gt.tensor.arithmetic import _operand
from gt.tensor.complex_checks import refuse_complex
from gt.tensor.promotion import result_dtype
from gt.tensor.number_first import NUMBERS, refuse_number, tensors_only
from gt.tensor.scatter_methods import index_tensor
from gt.tensor.shape import _named
from gt.tensor.wide_uints import refuse, refuse_einsum

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py


def _flag(value, name, op):
    if not isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r}")
    return value


def _results(values, extra):
    """torch's return: the values alone, or a tuple with the extras asked for."""
    extra = [Tensor._wrap(e) for e in extra if e is not None]
    return (values, *extra) if extra else values


class IndexMethods:
    __slots__ = ()

    def nonzero(self, *, as_tuple=False):
        """int64 ``(count, ndim)``: the position of each non-zero element (NaN counts), one per
        row in row-major order; ``as_tuple=True``: one 1-D tensor per dim instead.

            >>> gt.tensor([[0.0, 1.5], [2.0, 0.0]]).nonzero().tolist()
            [[0, 1], [1, 0]]
        """
        if _flag(as_tuple, "as_tuple", "nonzero"):
            if self.ndim == 0:
                return (Tensor._wrap(B.nonzero(B.reshape(self._data, (1,))))[:, 0],)
            found = Tensor._wrap(B.nonzero(self._data))
            return tuple(found[:, a] for a in range(self.ndim))
        return Tensor._wrap(B.nonzero(self._data))

    def argwhere(self):
        """``nonzero()``: int64 ``(count, ndim)`` positions of the non-zero elements."""
        return self.nonzero()

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        """The distinct values of the flattened tensor, sorted (each NaN its own value, as in
        torch); with ``return_inverse`` also each element's position among them (int64, this
        tensor's shape), with ``return_counts`` how often each occurs (int64). With ``dim``: the
        distinct slices along ``dim`` in lexicographic order, and ``inverse``/``counts`` of
        length ``shape[dim]``.

            >>> values, counts = gt.tensor([3, 1, 3]).unique(return_counts=True)
            >>> values.tolist(), counts.tolist()
            ([1, 3], [1, 2])
        """
        _flag(sorted, "sorted", "unique")
        refuse_complex(self, "unique")
        axis = self._unique_dim(dim, "unique")
        values, inverse, counts = B.unique(self._data, _flag(return_inverse, "return_inverse", "unique"),
                                           _flag(return_counts, "return_counts", "unique"), axis)
        return _results(Tensor._wrap(values), (inverse, counts))

    def unique_consecutive(self, return_inverse=False, return_counts=False, dim=None):
        """The flattened tensor with each run of equal neighbours kept once (NaNs never equal);
        ``return_inverse`` and ``return_counts`` as in ``unique``. With ``dim``: runs of equal
        slices along ``dim``.

            >>> gt.tensor([1, 1, 2, 1]).unique_consecutive().tolist()
            [1, 2, 1]
        """
        refuse_complex(self, "unique")
        axis = self._unique_dim(dim, "unique_consecutive")
        _flag(return_inverse, "return_inverse", "unique_consecutive")
        _flag(return_counts, "return_counts", "unique_consecutive")
        # the slices along the axis as rows (the flattened tensor: one value a row)
        moved = B.reshape(self._data, (-1, 1)) if axis is None else B.transpose(
            self._data, (axis,) + tuple(a for a in range(self.ndim) if a != axis))
        rows = B.reshape(moved, (moved.shape[0], numel(moved.shape[1:])))   # (-1 is ambiguous when empty)
        n = rows.shape[0]
        starts = B.ones((n,), dtypes.bool_)
        if n > 1:
            differs = B.getitem(rows, slice(1, None)) != B.getitem(rows, slice(0, n - 1))
            B.setitem(starts, slice(1, None), B.sum(differs, axis=1) > 0)   # any element of the slice differs
        shape = tuple(self.shape) if axis is None else (n,)
        inverse = B.reshape(B.cumsum(starts, 0) - 1, shape) if return_inverse else None
        counts = None
        if return_counts:
            first = B.reshape(B.nonzero(starts), (-1,))
            ends = B.concatenate([B.getitem(first, slice(1, None)), B.full((1,), n, dtypes.int64)], 0)
            counts = ends - first
        kept = B.getitem(moved, starts)
        if axis is not None:
            back = list(range(1, self.ndim))
            back.insert(axis, 0)
            kept = B.transpose(kept, tuple(back))
        else:
            kept = B.reshape(kept, (-1,))
        return _results(Tensor._wrap(kept), (inverse, counts))

    def _unique_dim(self, dim, op):
        """``dim`` as a non-negative axis, or None (the flattened tensor)."""
        if dim is None:
            return None
        if isinstance(dim, bool) or not isinstance(dim, int) or not -max(self.ndim, 1) <= dim < max(self.ndim, 1):
            raise IndexError(f"{op}: dim must be an int in [-{max(self.ndim, 1)}, {max(self.ndim, 1) - 1}] for a "
                             f"tensor of shape {self.shape}, got {dim!r}")
        if self.ndim == 0:
            raise IndexError(f"{op}: a 0-d tensor has no dim {dim}; use dim=None")
        empty = [a for a, n in enumerate(self.shape) if n == 0]       # torch's refusals of empty slices
        if len(empty) > 1:
            raise RuntimeError("Number of zero sized dimensions is more than one, so unique cannot be applied ")
        if empty and empty[0] != dim % self.ndim:
            raise RuntimeError("There are 0 sized dimensions, and they aren't selected, so unique cannot be applied")
        return dim % self.ndim

    def bincount(self, weights=None, minlength=0):
        """How often each int ``0, 1, ..., max`` occurs in this 1-D tensor of non-negative ints
        (int64, at least ``minlength`` long); with ``weights`` (1-D, one per element) their sums
        instead, float32 for float32 weights and float64 for any other (as torch).

            >>> gt.tensor([0, 1, 1, 3]).bincount().tolist()
            [1, 2, 0, 1]
        """
        if self.dtype.is_floating_point or self.dtype.is_complex or self.dtype == dtypes.bool_ or self.ndim != 1:
            raise TypeError(f"bincount: expected a 1-D tensor of non-negative ints, got a {self.dtype.name} tensor "
                            f"of shape {self.shape}")
        if isinstance(minlength, bool) or not isinstance(minlength, int) or minlength < 0:
            raise ValueError(f"bincount: minlength must be a non-negative int, got {minlength!r}")
        lowest, highest = (int(self.min().item()), int(self.max().item())) if self.numel() else (0, -1)
        if lowest < 0:
            raise ValueError(f"bincount: expected non-negative ints, got {lowest}")
        if weights is None:
            dtype, values = dtypes.int64, B.ones((self.numel(),), dtypes.int64)
        else:
            weights = _operand(weights, "bincount")
            if not isinstance(weights, Tensor) or weights.shape != self.shape:
                raise ValueError(f"bincount: weights must be 1-D with one value per element {self.shape}, got "
                                 f"{getattr(weights, 'shape', weights)!r}")
            dtype = dtypes.float32 if weights.dtype == dtypes.float32 else dtypes.float64   # halves too: torch's
            if not self.numel():      # torch answers an empty input with int64 zeros, weights or not
                dtype = dtypes.int64
            values = B.astype(weights._data, dtype)
        out = B.zeros((max(minlength, highest + 1),), dtype)
        return Tensor._wrap(B.scatter_reduce_(out, 0, self.to(dtypes.int64)._data, values, "sum"))


def searchsorted(sorted_sequence, values=None, *, out_int32=False, right=False, side=None, sorter=None, input=None):
    """int64 positions where ``values`` would go into ``sorted_sequence`` (sorted along its last
    dim) to keep it sorted: the first such place, or the last with ``right=True`` (or
    ``side="right"``). A 1-D sequence serves ``values`` of any shape (a number gives a 0-d
    result); an N-D one needs ``values`` with the same leading ``N-1`` sizes. ``sorter``
    (int64, the sequence's shape) sorts an unsorted sequence first; ``out_int32``: int32.
    ``input=`` is torch's keyword for ``values``.

        >>> gt.searchsorted(gt.tensor([1.0, 3.0, 5.0]), gt.tensor([3.0, 6.0])).tolist()
        [1, 3]
    """
    values = _alias(values, input, "searchsorted", "values", "input", required=True)   # input=: torch's name
    if side not in (None, "left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    if side == "left" and right:
        raise ValueError(f"searchsorted: side={side!r} and right={right!r} contradict each other; give one of them")
    tensors_only("searchsorted", ("sorted_sequence", sorted_sequence))      # values may be a number
    seq, values = _operand(sorted_sequence, "searchsorted"), _operand(values, "searchsorted")
    if not isinstance(seq, Tensor) or seq.ndim == 0:
        raise ValueError(f"searchsorted: sorted_sequence must be a tensor of at least 1 dim, got {seq!r}")
    values = values if isinstance(values, Tensor) else Tensor._wrap(B.asarray(values))
    refuse_complex(seq, "searchsorted_out_cpu")
    refuse_complex(values, "searchsorted_out_cpu")
    if seq.dtype == dtypes.bool_ and values.dtype == dtypes.bool_:     # (a bool with any other dtype promotes)
        raise NotImplementedError("\"searchsorted_out_cpu\" not implemented for 'Bool' (cast the sequence and the "
                                  "values with .long() first)")
    if seq.ndim > 1 and seq.shape[:-1] != values.shape[:-1]:
        raise ValueError(f"searchsorted: sorted_sequence must be 1-D or share all but the last dim with values, "
                         f"got shapes {seq.shape} and {values.shape}")
    if sorter is not None:
        sorter = index_tensor(sorter, "searchsorted")
        if sorter.shape != seq.shape:           # a shorter sorter would search part of the sequence
            raise ValueError(f"searchsorted: boundary and sorter must have the same size, got shapes {seq.shape} "
                             f"and {sorter.shape}")
        seq = seq.gather(-1, sorter)
    seq, values = seq.detach(), values.detach()
    refuse("searchsorted_out_cpu", seq, values)      # (int64 would misorder uint64 from 2**63 up)
    common = _search_dtype(seq.dtype, values.dtype)
    found = B.searchsorted(B.astype(seq._data, common), B.astype(values._data, common), bool(right or side == "right"))
    out = Tensor._wrap(found)
    return out.to(dtypes.int32) if out_int32 else out


def _search_dtype(a, b):
    """One dtype in which to compare the sequence and the values: a float where either is one
    (the wider float where both are), else int64."""
    floats = [d for d in (a, b) if d.is_floating_point]
    if not floats:
        return dtypes.int64
    return dtypes.float64 if dtypes.float64 in floats else floats[0]


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """For each element of ``input``, the index of its bucket among the 1-D ascending
    ``boundaries``: ``searchsorted(boundaries, input, right=right)``.

        >>> gt.bucketize(gt.tensor([0.5, 2.0, 9.0]), gt.tensor([1.0, 2.0, 3.0])).tolist()
        [0, 1, 3]
    """
    if isinstance(boundaries, NUMBERS):                 # input may be a number, as torch's
        refuse_number("bucketize", "boundaries", 2, boundaries)
    boundaries = _operand(boundaries, "bucketize")
    if not isinstance(boundaries, Tensor) or boundaries.ndim != 1:
        raise ValueError(f"bucketize: boundaries must be a 1-D tensor, got shape {getattr(boundaries, 'shape', ())}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def einsum(*args):
    """The Einstein sum of tensors, as torch's ``einsum(equation, *operands)``: subscripts per
    operand, ``->`` and the output's (without it: the subscripts seen once, in alphabetical
    order), ``...`` for the remaining dims (broadcast), a subscript repeated in one operand
    for its diagonal. Operands as a list are taken too, and torch's sublist form
    (``einsum(a, [0, 1], b, [1, 2], [0, 2])``). Operands of two dtypes are refused where a
    shared subscript is summed (torch's matrix product) and promoted elsewhere, as torch's;
    differentiable in each float operand.

        >>> a, b = gt.ones(2, 3), gt.ones(3, 4)
        >>> gt.einsum("ij,jk->ik", a, b).shape, gt.einsum("ii", gt.eye(3)).item()
        ((2, 4), 3.0)
    """
    if not args:
        raise TypeError("einsum(): expected an equation and at least one operand")
    if isinstance(args[0], str):
        equation, operands = args[0], args[1:]
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = tuple(operands[0])
    else:
        equation, operands = _sublist_equation(args)
    if not operands:
        raise ValueError(f"einsum(): expected at least one operand (equation {equation!r})")
    tensors = [_operand(o, "einsum") for o in operands]
    for k, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum(): operand {k} must be a tensor, got {t!r} (equation {equation!r})")
    spec = einsum_ops.parse(equation, [t.shape for t in tensors])
    if any(t.dtype is not tensors[0].dtype for t in tensors):
        tensors = _mixed_dtypes(tensors, spec)
    out = einsum_ops.Einsum.apply(*_einsum_dtype(tensors, spec, equation), spec=spec)
    return _named(out, None, _einsum_node_name(spec))


def _einsum_node_name(spec):
    """The node torch's einsum ends in: a sum (one operand) or a view of its batched product
    (several) where a subscript is summed, else the permute or the product that lays out the output."""
    summed = set("".join(spec.inputs)) - set(spec.output)
    if len(spec.inputs) == 1:
        return "SumBackward1" if summed else "PermuteBackward0"
    return "ViewBackward0" if summed else "MulBackward0"


def _mixed_dtypes(tensors, spec):
    """Operands of more than one dtype, as torch's einsum takes them: a subscript shared by two
    operands and summed is torch's ``bmm``, which keeps one dtype (its RuntimeError); without one,
    its products are elementwise and promote (the operands cast to the promoted dtype)."""
    seen = collections.Counter(c for letters in spec.inputs for c in set(letters))
    if any(n > 1 and c not in spec.output for c, n in seen.items()):
        other = next(t for t in tensors if t.dtype is not tensors[0].dtype)
        raise RuntimeError(f"expected scalar type {dtypes.torch_type_name(tensors[0].dtype.name)} but found "
                           f"{dtypes.torch_type_name(other.dtype.name)}")
    dtype = result_dtype(*tensors)
    return [t if t.dtype is dtype else t.to(dtype) for t in tensors]


def _einsum_dtype(tensors, spec, equation):
    """The operands in the dtype torch computes in: its own, except that bool, int32, int16, int8
    and uint8 operands are widened to int64 where a subscript is summed within one operand alone (torch sums it
    with ``sum``, which widens them)."""
    dtype = tensors[0].dtype
    if dtype not in (dtypes.bool_, dtypes.int32) and dtype not in dtypes.SMALL_INTS:
        return refuse_einsum(tensors, spec) or tensors
    seen = collections.Counter(c for letters in spec.inputs for c in set(letters))
    if any(seen[c] == 1 and c not in spec.output for c in seen):
        return [t.to(dtypes.int64) for t in tensors]
    if dtype == dtypes.bool_ and any(n > 1 and c not in spec.output for c, n in seen.items()):
        raise NotImplementedError(f"\"bmm\" not implemented for 'Bool' (einsum {equation!r} of bool operands "
                                  "sums over a shared subscript; convert them with .long())")
    return tensors


def _sublist_equation(args):
    """torch's sublist form ``(op, [0, 1], op, [1, 2], [0, 2])`` as an equation and operands:
    subscript ints 0-25 are a-z, 26-51 A-Z, ``...`` is Ellipsis."""
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

    def term(sublist):
        if not isinstance(sublist, (list, tuple)):
            raise TypeError(f"einsum(): expected a list of subscripts after each operand, got {sublist!r}")
        out = []
        for s in sublist:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 52:
                out.append(letters[s])
            else:
                raise ValueError(f"einsum(): subscripts in a sublist must be ints in [0, 52) or ..., got {s!r}")
        return "".join(out)

    operands, inputs = args[0:len(args) - len(args) % 2:2], args[1::2][:len(args) // 2]
    equation = ",".join(term(s) for s in inputs) + ("->" + term(args[-1]) if len(args) % 2 else "")
    return equation, operands
