"""In-place writes into a tensor whose elements share memory (the windows of ``as_strided`` or
``unfold``), as torch's CPU kernels make them: element by element in row-major order, each element
reading the memory as the elements before it left it. So ``x.as_strided((3, 3), (1, 1)).add_(1)``
adds 1 to ``x[2]`` three times, ``mul_(2)`` doubles it three times, ``exp_()`` takes its exp three
times, ``v.add_(v)`` doubles it three times, and ``copy_(src)`` leaves there the last of the values
written to it.

torch does not define this order (its kernels may reorder dims and vectorise); for ops that only
read the element they write (``add_``, ``mul_``, ``exp_``, ``clamp_``...) every order gives the
same values, up to the rounding order of sums of several tensor values written into one place.
gt writes in rounds, on both engines: round ``k`` writes every memory location's ``k``-th element
(row-major), all at once: row-major element-by-element order, as each location's writes come in
its elements' order and no element reads another location of the written memory. An operand that
lies in the written memory in another layout (which torch lets through where it cannot tell the
overlap: ``w.mul_(x.as_strided((3, 3), (1, 1), 1))``) is read as it was before the write, where
torch's element-by-element kernel reads what the elements before wrote.

Writes that are no elementwise op (``index_add_``, ``scatter_``, ``index_put_``, ``put_``...) go
through ``in_memory``: the op made on the memory itself at the positions it picks, so each of its
writes reads what the writes before left, and the elements it does not write keep their memory
(a copy of a result computed out of place wrote every element, the untouched ones with values of
before the write, over what other elements had written there).

Tensors whose elements lie apart (every ordinary tensor) take one cheap test and the usual path.
"""

import os
import sys
import warnings

import numpy as np

from gt import dtypes
from gt.backend import B
from gt.tensor.strided_methods import _positions


def overlapping(t):
    """Whether ``t`` (a gt tensor) is on one device and two of its elements share memory through
    strides that are not 0 (the engine's ``overlaps_itself``)."""
    return t._placed is None and B.overlaps_itself(t._array)


_DEPRECATED = ("Use of {}_ on expanded tensors is deprecated. Please clone() the tensor before performing this "
               "operation. This also applies to advanced indexing e.g. tensor[{}] = {}")
_EXAMPLE = {"masked_fill": ("mask", "scalar"), "index_fill": ("mask", "scalar"), "index_put": ("indices", "tensor")}


def expanded(t, op, arr=None):
    """Whether ``t`` (or the engine array ``arr``, a view of its one array) has elements that share
    memory through a stride 0 (an ``expand``ed tensor). torch still writes ``masked_fill_``,
    ``index_fill_`` and ``index_put_`` (``op``, without the ``_``) there, with its deprecation
    warning, given here where the answer is yes; its other writes refuse such a tensor."""
    if arr is None:
        if t._placed is not None:
            return _refuse_on_mesh(t, op)
        arr = t._array
    if B.write_refusal(arr) != "overlap":
        return False
    _warn(op)
    return True


def refuse_recorded(t, op, warned=False):
    """Before autograd records ``op`` (``masked_fill``, ``index_fill``, ``index_put``) into ``t``:
    where ``t`` is expanded, torch's deprecation warning, then torch's error where ``t`` itself is
    in the graph (the write's recording raises it), and gt's where only the written values are
    (torch writes them and differentiates through the shared memory; gt does not record that).
    Other ops: nothing. ``warned``: the caller gave the warning."""
    if op not in _EXAMPLE:
        return
    if t._placed is not None:
        return _refuse_on_mesh(t, op)
    if B.write_refusal(t._array) != "overlap":
        return
    if not warned:
        _warn(op)
    if not t.requires_grad:
        raise RuntimeError(f"gt cannot record {op}_ into an expanded tensor (elements sharing memory) from values "
                           "that require grad, which torch 2.13 writes with its deprecation warning: clone() the "
                           "tensor first")


def _refuse_on_mesh(t, op):
    """False for a tensor on a mesh whose shards' elements lie apart; for an expanded one, torch's
    warning and gt's refusal (gt writes these deprecated writes into one device's memory only)."""
    if not any(B.write_refusal(a) == "overlap" for a in t._placed.shards):
        return False
    _warn(op)
    raise RuntimeError(f"gt writes {op}_ into an expanded tensor (elements sharing memory) on one device only, "
                       f"not into one sharded over a mesh of {len(t._placed.shards)} devices, which torch 2.13 "
                       "writes with its deprecation warning: clone() the tensor first")


_GT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep     # gt/, not a sibling such as gtts/


def _warn(op):
    """torch's deprecation warning, pointed at the caller's line (the first frame outside gt)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_GT):
        frame, level = frame.f_back, level + 1
    warnings.warn(_DEPRECATED.format(op, *_EXAMPLE[op]), UserWarning, stacklevel=level)


def put_into_expanded(t, index, value, accumulate=False):
    """torch's warnings for ``t[index] = value`` (``index`` in engine terms, with index arrays: an
    ``index_put_``) where the view its other parts pick is expanded: ``index_put_``'s, and
    ``masked_fill_``'s too where torch hands the write to it (one bool mask and one value)."""
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [p for p in parts if B.is_array(p)]
    if t._placed is not None or not arrays:
        return
    view = []
    for p in parts:     # each index array as the axes it covers (a 0-d mask: a new one)
        if B.is_array(p):
            masks = B.dtype_of(p) is dtypes.bool_
            view += [None] if masks and not len(p.shape) else [slice(None)] * (len(p.shape) if masks else 1)
        else:
            view.append(p)
    if expanded(t, "index_put", B.getitem(t._array, tuple(view))):
        masked_fill_warning(arrays, value, accumulate)


def masked_fill_warning(arrays, value, accumulate=False, arr=None):
    """torch's ``masked_fill_`` warning too, after ``index_put_``'s, where its ``index_put_`` into an
    expanded tensor (``arr``, where not known to be one) hands the write to ``masked_fill_``: one
    index, a bool mask, one value."""
    if not accumulate and len(arrays) == 1 and B.dtype_of(arrays[0]) is dtypes.bool_ and _numel(value) == 1 \
            and (arr is None or B.write_refusal(arr) == "overlap"):
        _warn("masked_fill")


def _numel(value):
    return int(np.prod(getattr(value, "shape", ())))       # (a number: 1)


class Rounds:
    """The rounds of a write into ``arr`` (whose elements share memory): for each, the row-major
    indices of its elements and their positions in ``mem`` (the memory ``arr`` spans, 1-D)."""

    def __init__(self, arr):
        shape, stride = tuple(arr.shape), B.element_strides(arr)
        pos = _positions(shape, stride, 0)
        n = pos.size
        order = np.argsort(pos, kind="stable")
        first = np.ones(n, dtype=bool)
        first[1:] = pos[order][1:] != pos[order][:-1]
        rank = np.empty(n, dtype=np.int64)   # each element's place among the elements at its location
        rank[order] = np.arange(n) - np.maximum.accumulate(np.where(first, np.arange(n), 0))
        by_rank = np.argsort(rank, kind="stable")
        ends = np.cumsum(np.bincount(rank))
        owner = B.memory_owner(arr)
        start = (B.data_address(arr) - B.data_address(owner)) // B.dtype_of(arr).itemsize
        # written through an alias that counts no versions: the write is one change, counted once
        self.mem = B.untracked_alias(B.strided_view(arr, (int(pos.max()) + 1,), (1,), start))
        self.shape = shape
        self.rounds = [(B.asarray(idx), B.asarray(pos[idx])) for idx in np.split(by_rank, ends[:-1])]

    def picked(self, value, idx):
        """The elements ``idx`` of the engine array ``value`` broadcast to the written shape, read now."""
        return B.getitem(B.reshape(B.broadcast_to(value, self.shape), (-1,)), idx)


def update(arr, fn, values):
    """``fn(arr, *values)`` (an elementwise update in place; values are numbers or engine arrays
    that broadcast to ``arr``) made round by round (module docstring)."""
    plan = Rounds(arr)
    values = B.read_before_write(arr, values)     # an operand in arr's memory in another layout: as it was
    for idx, at in plan.rounds:
        cur = B.getitem(plan.mem, at)
        fn(cur, *[plan.picked(v, idx) if B.is_array(v) else v for v in values])
        B.setitem(plan.mem, at, cur)
    if B.counts_inplace_ops:           # as fn's own write into arr would have been (else the caller counts)
        B.bump_version(arr)


def recompute(t, compute, args, kwargs):
    """``t``'s elements replaced by ``compute(x, *args, **kwargs)`` (an elementwise op of gt tensors
    that gives ``x``'s dtype) round by round, each round reading the memory the rounds before left."""
    plan = Rounds(t._array)
    wrap = type(t)._wrap

    def as_read(v):           # an operand in t's memory in another layout: as it was before the write
        if not isinstance(v, type(t)) or v._placed is not None:
            return v
        return wrap(B.read_before_write(t._array, (v._data,))[0])

    args, kwargs = [as_read(a) for a in args], {k: as_read(v) for k, v in kwargs.items()}

    def pick(v, idx):
        if not isinstance(v, type(t)) or v.ndim == 0:
            return v
        return wrap(plan.picked(v._data, idx))

    for idx, at in plan.rounds:
        cur = wrap(B.getitem(plan.mem, at))
        new = compute(cur, *[pick(a, idx) for a in args], **{k: pick(v, idx) for k, v in kwargs.items()})
        B.setitem(plan.mem, at, new._data)
    B.bump_version(t._array)
    return t


def in_memory(t, write):
    """``t`` (whose elements share memory) after ``write(mem, pos)``, an op that is no elementwise
    one: ``mem`` is the memory ``t`` spans (a 1-D tensor), ``pos`` each element's position in it (an
    int64 tensor of ``t``'s shape); ``write`` makes the op in place on ``mem`` at the positions it
    picks from ``pos`` (``t.index_add_(d, i, s)``: ``mem.index_add_(0, pos.index_select(d, i).
    reshape(-1), s.reshape(-1))``). The caller has checked the op's arguments."""
    arr = t._array
    pos = _positions(tuple(arr.shape), B.element_strides(arr), 0)
    owner = B.memory_owner(arr)
    start = (B.data_address(arr) - B.data_address(owner)) // B.dtype_of(arr).itemsize
    wrap = type(t)._wrap
    # written through an alias that counts no versions: the write is one change, counted once
    write(wrap(B.untracked_alias(B.strided_view(arr, (int(pos.max()) + 1,), (1,), start))),
          wrap(B.asarray(pos.reshape(arr.shape))))
    B.bump_version(arr)
    return t


def _independent_runs(pos):
    """Where runs of consecutive lines (rows of ``pos``, their memory positions) start such that
    no two lines of a run share a position: each run can be written at once."""
    lines, n = pos.shape
    flat, line_of = pos.reshape(-1), np.repeat(np.arange(lines), n)
    order = np.lexsort((line_of, flat))
    same = flat[order][1:] == flat[order][:-1]
    prev = np.full(flat.size, -1)
    prev[order[1:][same]] = line_of[order[:-1][same]]     # the latest earlier line at each element's place
    prev_line = np.full(lines, -1)
    np.maximum.at(prev_line, line_of, prev)
    starts = [0]
    for line in np.flatnonzero(prev_line >= 0):     # a scalar pass over the lines that meet an earlier one
        if prev_line[line] >= starts[-1]:
            starts.append(int(line))
    return starts + [lines]


def along_lines(t, dim, scan):
    """``t``'s lines along ``dim`` replaced by ``scan(lines)`` (a scan over the last axis of a
    (k, n) tensor: cumsum, cumprod) as torch's kernel makes it where ``t``'s elements share memory:
    line after line in the row-major order of the other axes, each element reading the memory as
    the elements before it left it (a line's own elements lie apart). Lines that share no memory
    go at once."""
    arr = t._array
    shape = tuple(arr.shape)
    pos = np.moveaxis(_positions(shape, B.element_strides(arr), 0).reshape(shape), dim, -1).reshape(-1, shape[dim])
    owner = B.memory_owner(arr)
    start = (B.data_address(arr) - B.data_address(owner)) // B.dtype_of(arr).itemsize
    mem = B.untracked_alias(B.strided_view(arr, (int(pos.max()) + 1,), (1,), start))
    runs = _independent_runs(pos)
    for a, b in zip(runs[:-1], runs[1:]):
        at = B.asarray(pos[a:b].reshape(-1))
        new = scan(type(t)._wrap(B.reshape(B.getitem(mem, at), (b - a, shape[dim]))))
        B.setitem(mem, at, B.reshape(new._data, (-1,)))
    B.bump_version(arr)
    return t
