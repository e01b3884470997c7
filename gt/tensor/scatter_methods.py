"""torch's writes at integer positions and masks, with torch's values, dtypes and gradients:
``scatter``, ``scatter_add``, ``scatter_reduce``, ``index_add``, ``index_copy``, ``index_fill``,
``masked_scatter``, ``masked_select``, and the in-place forms (``scatter_`` ...).

Index tensors are int64 (int32 is taken too, as torch takes it for most of these) and every
index is checked: one out of range is an IndexError naming it and the size, as torch's
(``index_fill`` alone takes negative indices, counting from the end, as torch's does). With
repeated positions, ``scatter`` and ``index_copy`` keep one of the values (which one is not
specified, as in torch); ``scatter_add``, ``scatter_reduce`` and ``index_add`` reduce them all.
The in-place forms are recorded on the tape as torch records them (gt/tensor/inplace_grad.py):
``y = x * 2; y.index_add_(0, i, z)`` sends gradients to ``x`` and ``z``; on a leaf that requires
grad they raise torch's error while gradients are recorded.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import warnings

from gt import amp, autograd, dtypes
from gt.backend import B
from gt.errors import DtypeError, ShapeError
from gt.ops import scatter as scatter_ops
from gt.ops._shapes import broadcast_shape, normalize_axis
from gt.tensor import checks, inplace_grad, overlap_writes
from gt.tensor._args import _scalar
from gt.tensor.int_scalars import checked_scalar
from gt.tensor.arithmetic import _operand, where
from gt.tensor.complex_checks import is_complex_operand, refuse_complex
from gt.tensor.shape import _named

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")
# the in-place ops torch refuses to run from a source that lies in the written tensor's memory at
# all (its assert_no_overlap); masked_scatter_ and index_fill_ it lets run
_EXPANDED_WRITES = ("index_fill_", "index_put_")    # written into an expanded tensor, as torch (warning)
_REFUSE_OVERLAP = ("scatter_", "scatter_add_", "scatter_reduce_", "index_add_", "index_copy_", "index_put_")


def _describe(value):
    return f"a {value.dtype.name} tensor of shape {value.shape}" if isinstance(value, Tensor) else repr(value)


def index_tensor(index, op, vector=False):
    """``index`` as an int64 tensor (no gradient); TypeError naming it when it is not integers,
    ValueError when ``vector`` and it has more than one dim."""
    index = _operand(index, op)
    if not isinstance(index, Tensor) or index.dtype not in (dtypes.int64, dtypes.int32):
        raise DtypeError(f"{op}: index must be an int64 tensor, got {_describe(index)}")
    if vector and index.ndim > 1:
        raise ValueError(f"{op}: index must be a 1-D tensor (or 0-d), got shape {index.shape}")
    return index.detach().to(dtypes.int64)


def check_range(index, size, dim, op, negative=False, error=IndexError):
    """``error`` naming the first index outside ``[0, size)`` (``negative``: ``[-size, size)``),
    raised at once on the CPU and at the next read of values on a GPU (gt/tensor/checks.py);
    torch raises RuntimeError for the scatters, either for ``index_add``, IndexError for the others.
    Returns the indices to compute with (``checks.within``)."""
    return checks.require_within(index, -size if negative else 0, size - 1, error,
                                 lambda bad: f"{op}: index {bad} is out of bounds for dimension {dim} with size {size}")


def _same_dtype(x, other, name, op):
    if other.dtype != x.dtype:
        raise DtypeError(f"{op}: {name} has dtype {other.dtype.name} but the tensor has {x.dtype.name}; "
                        f"they must match (convert one with .to())")


def _fill_value(x, value):
    """A Python number written into ``x`` (``scatter``'s value, ``fill_diagonal_``, ``index_add``'s
    alpha) as its dtype stores it: torch's checked conversion (uint8 takes -1 as 255, refuses 300
    and -1.5; a complex number into a real dtype only with a zero imaginary part), then its cast
    (7.9 into int64 is 7)."""
    value = checked_scalar(_scalar(value), x.dtype, "the written value")
    if x.dtype == dtypes.bool_:
        return bool(value)
    return value if x.dtype.differentiable else int(value)


class ScatterMethods:
    __slots__ = ()

    def _as_1d(self, op, dim, *args, **kwargs):
        """``op`` on this 0-d tensor seen as 1-D (torch treats it as one element), back to 0-d."""
        normalize_axis(dim, 0, op)
        parts = [a.reshape(-1) if isinstance(a, Tensor) else a for a in args]
        return getattr(self.reshape(1), op)(0, *parts, **kwargs).reshape(())

    def _scatter_args(self, dim, index, src, op):
        """``(dim, index, src)`` checked as torch checks a scatter's arguments."""
        dim = normalize_axis(dim, self.ndim, op)
        index = index_tensor(index, op)
        if index.ndim == 0 and self.ndim == 1:
            index = index.reshape(1)      # as a 0-d src below
        if isinstance(src, Tensor) and src.ndim == 0:
            src = src.reshape(1)          # torch reads a 0-d src as 1-D of one element (a 1-D tensor's alone)
        if index.ndim != self.ndim:
            raise ShapeError(f"{op}: index must have the tensor's number of dims ({self.ndim}), got shape {index.shape}")
        if isinstance(src, Tensor):
            if src.ndim != self.ndim:
                raise ValueError(f"{op}: src must have the tensor's number of dims ({self.ndim}), got shape {src.shape}")
            _same_dtype(self, src, "src", op)
        src_shape = src.shape if isinstance(src, Tensor) else index.shape
        if any(i > s or (a != dim and i > n) for a, (i, s, n) in enumerate(zip(index.shape, src_shape, self.shape))):
            raise ShapeError(f"{op}: index of shape {index.shape} must be no larger than src {src_shape} and, "
                             f"apart from dim {dim}, no larger than the tensor {self.shape}")
        index = check_range(index, self.shape[dim] if self.ndim else 1, dim, op, error=RuntimeError)
        return dim, index, src

    def scatter(self, dim, index, src=None, value=None, *, reduce=None):
        """A copy with ``src[i][j]`` written at ``[index[i][j]][j]`` for ``dim=0`` (and so on along
        other dims), or the number ``value`` at every indexed position; differentiable in this
        tensor and ``src``. ``index`` (int64, this tensor's number of dims) may be smaller than
        ``src`` and, off ``dim``, than this tensor.

            >>> gt.zeros(2, 3).scatter(1, gt.tensor([[2], [0]]), 1.0).tolist()
            [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
        """
        if (src is None) == (value is None):
            raise TypeError("scatter: give src (a tensor or a number) or value, one of them")
        src = _operand(value if src is None else src, "scatter")
        index = _operand(index, "scatter")
        if isinstance(src, Tensor) and src.ndim == 0 and value is not None and getattr(index, "ndim", 0) > 0:
            src = src.item()                  # torch takes a 0-d value= as the number to write
        if reduce is not None:
            return self._scatter_reduced(dim, index, src, reduce)
        if self.ndim == 0:
            return self._as_1d("scatter", dim, index, src)
        dim, index, src = self._scatter_args(dim, index, src, "scatter")
        return scatter_ops.Scatter.apply(self, index, src if isinstance(src, Tensor) else _fill_value(self, src),
                                         dim=dim)

    def _scatter_reduced(self, dim, index, src, reduce):
        """torch's deprecated ``scatter(..., reduce="add" | "multiply")``: ``scatter_reduce`` with
        ``"sum"`` or ``"prod"``, the tensor's own values included (a number: at every position of
        ``index``). gt differentiates it (torch's backward raises "not implemented")."""
        if reduce not in ("add", "multiply"):
            raise RuntimeError("reduce argument must be either add or multiply.")
        if isinstance(src, Tensor):
            warnings.warn("The reduce argument of torch.scatter with Tensor src is deprecated and will be removed in "
                          "a future PyTorch release. Use torch.scatter_reduce instead for more reduction options.",
                          UserWarning, stacklevel=3)
        else:
            index = index_tensor(index, "scatter")
            src = self.new_full(tuple(index.shape), _fill_value(self, src))
        return self.scatter_reduce(dim, index, src, "sum" if reduce == "add" else "prod")

    def scatter_add(self, dim, index, src):
        """A copy with every ``src[i][j]`` added at ``[index[i][j]][j]`` for ``dim=0``, repeated
        positions summing up; differentiable in this tensor and ``src``.

            >>> gt.zeros(3).scatter_add(0, gt.tensor([0, 2, 0]), gt.tensor([1.0, 2.0, 3.0])).tolist()
            [4.0, 0.0, 2.0]
        """
        return self.scatter_reduce(dim, index, src, "sum")

    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        """A copy with every ``src[i][j]`` reduced into ``[index[i][j]][j]`` (``dim=0``) by
        ``reduce``: ``"sum"``, ``"prod"``, ``"mean"``, ``"amax"`` or ``"amin"``; with
        ``include_self=False`` the positions that receive values forget their own. Integer
        means round down, as torch's. Differentiable (a product with torch's gradient, zero factors
        included, but not twice); a max or a min splits its gradient evenly among
        the tied values, and, as torch, counts the tensor's own value among them even where
        ``include_self=False`` leaves it out.

            >>> gt.tensor([0.0, 5.0]).scatter_reduce(0, gt.tensor([0, 0, 1]), gt.tensor([1.0, 3.0, 2.0]), "amax").tolist()
            [3.0, 5.0]
        """
        if reduce not in REDUCTIONS:
            raise ValueError(f"scatter_reduce: reduce must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduce!r}")
        if not isinstance(include_self, bool):
            raise TypeError(f"scatter_reduce: include_self must be True or False, got {include_self!r}")
        op = "scatter_add" if reduce == "sum" and include_self else "scatter_reduce"
        if reduce in ("amax", "amin"):  # complex numbers have no order
            refuse_complex(self, f"scatter_gather_tensor_cpu_reduce_{reduce}")
        src = _operand(src, op)
        if not isinstance(src, Tensor):
            raise TypeError(f"{op}: src must be a tensor, got {src!r}")
        if self.ndim == 0:
            return self._as_1d("scatter_reduce", dim, index, src, reduce, include_self=include_self)
        dim, index, src = self._scatter_args(dim, index, src, op)
        if reduce == "mean" and self.dtype == dtypes.bool_:
            raise TypeError("scatter_reduce: reduce='mean' of bool tensors is not defined (as in torch); "
                            "convert them to a number dtype first")
        return scatter_ops.ScatterReduce.apply(self, index, src, dim=dim, reduce=reduce, include_self=include_self)

    def _index_args(self, dim, index, source, op):
        """``(dim, index, source)`` of the ``index_*`` ops checked as torch checks them."""
        dim = normalize_axis(dim, self.ndim, op)
        index = index_tensor(index, op, vector=True).reshape(-1)
        source = _operand(source, op)
        if not isinstance(source, Tensor):
            raise TypeError(f"{op}: source must be a tensor, got {source!r}")
        _same_dtype(self, source, "source", op)
        if source.ndim == 0:
            source = _scalar_source(self, dim, index.shape[0], source, op)
        want = self.shape[:dim] + (index.shape[0],) + self.shape[dim + 1:]
        if source.shape != want:
            raise ShapeError(f"{op}: source of shape {source.shape} must have the tensor's shape {self.shape} with "
                             f"dim {dim} of size {index.shape[0]} (the number of indices), that is {want}")
        error = checks.IndexOutOfRangeError if op == "index_add" else IndexError
        index = check_range(index, self.shape[dim], dim, op, error=error)
        return dim, index, source

    def index_add(self, dim, index, source, *, alpha=1):
        """A copy with ``alpha * source`` added at the positions ``index`` (1-D) along ``dim``:
        ``out[:, index[i]] += alpha * source[:, i]`` for ``dim=1``, repeated positions adding
        up; differentiable in this tensor and ``source``. On integer tensors ``alpha`` is cut
        to an int, as torch's.

            >>> gt.zeros(2, 3).index_add(1, gt.tensor([0, 0]), gt.ones(2, 2)).tolist()
            [[2.0, 0.0, 0.0], [2.0, 0.0, 0.0]]
        """
        if self.ndim == 0:
            return self._as_1d("index_add", dim, index, _operand(source, "index_add"), alpha=alpha)
        dim, index, source = self._index_args(dim, index, source, "index_add")
        alpha = _fill_value(self, alpha)
        return scatter_ops.IndexAdd.apply(self, index, source, dim=dim, alpha=alpha)

    def index_copy(self, dim, index, source):
        """A copy with the slices of ``source`` written at the positions ``index`` (1-D) along
        ``dim``: ``out[:, index[i]] = source[:, i]`` for ``dim=1``; differentiable in this
        tensor and ``source``. Under autocast a float32 and an autocast-dtype operand meet in
        float32 (torch.autocast's promotion); otherwise their dtypes must match."""
        wide = amp.promote_dtype(self, source)
        if wide is not None:
            self, source = self.to(wide), source.to(wide)
        return self._index_copy(dim, index, source)

    def _index_copy(self, dim, index, source):
        if self.ndim == 0:
            return self._as_1d("index_copy", dim, index, _operand(source, "index_copy"))
        dim, index, source = self._index_args(dim, index, source, "index_copy")
        return scatter_ops.IndexCopy.apply(self, index, source, dim=dim)

    def index_fill(self, dim, index, value):
        """A copy with ``value`` (a number, or a 0-d tensor: differentiable in it too) at the
        positions ``index`` (1-D; negative ones count from the end) along ``dim``.

            >>> gt.zeros(2, 3).index_fill(1, gt.tensor([0, -1]), 7.0).tolist()
            [[7.0, 0.0, 7.0], [7.0, 0.0, 7.0]]
        """
        dim = normalize_axis(dim, self.ndim, "index_fill")
        index = index_tensor(index, "index_fill", vector=True).reshape(-1)
        if isinstance(value, Tensor) and value.ndim != 0:
            raise ValueError(f"index_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        if is_complex_operand(value) and not self.dtype.is_complex:
            raise RuntimeError(f"index_fill_(): Converting complex Scalar to non-complex type is not supported "
                               f"(value {value!r} for a {self.dtype.name} tensor)")
        size = self.shape[dim] if self.ndim else 1
        index = check_range(index, size, dim, "index_fill", negative=True)
        hit = B.zeros((size,), dtypes.bool_)
        B.setitem(hit, index._data, True)
        shape = tuple(size if a == dim else 1 for a in range(self.ndim))
        return self.masked_fill(Tensor._wrap(B.reshape(hit, shape)), value)

    def masked_select(self, mask):
        """The elements where the bool ``mask`` is True (both broadcast to one shape), as a 1-D
        tensor in row-major order; differentiable.

            >>> gt.tensor([[1.0, 2.0], [3.0, 4.0]]).masked_select(gt.tensor([True, False])).tolist()
            [1.0, 3.0]
        """
        x, mask = self._masked(mask, "masked_select")
        return _named(x[mask], self, "MaskedSelectBackward0")

    def masked_scatter(self, mask, source):
        """A copy with the elements of ``source``, in row-major order, written where the bool
        ``mask`` is True (this tensor and ``mask`` broadcast to one shape; ``source`` needs at
        least as many elements as ``mask`` has True values); differentiable in both tensors.

            >>> gt.zeros(4).masked_scatter(gt.tensor([True, False, True, False]), gt.tensor([1.0, 2.0])).tolist()
            [1.0, 0.0, 2.0, 0.0]
        """
        x, mask = self._masked(mask, "masked_scatter")
        source = _operand(source, "masked_scatter")
        if not isinstance(source, Tensor):
            raise TypeError(f"masked_scatter: source must be a tensor, got {source!r}")
        _same_dtype(self, source, "source", "masked_scatter")
        count = int(mask.sum().item())
        if source.numel() < count:
            raise ValueError(f"masked_scatter: source has {source.numel()} elements, fewer than the {count} True "
                             "values of the mask")
        if count == 0 and not (source.requires_grad and source.numel()):
            return x.clone()              # (else the general path: source's gradient is zeros, as torch's)
        # the k-th True value of the mask takes source's k-th element
        order = (mask.reshape(-1).to(dtypes.int64).cumsum(0) - 1).clamp(min=0).reshape(mask.shape)
        return where(mask, source.reshape(-1)[order], x)

    def _masked(self, mask, op):
        mask = _operand(mask, op)
        if not isinstance(mask, Tensor) or mask.dtype != dtypes.bool_:
            raise TypeError(f"{op}: mask must be a bool tensor, got {_describe(mask)}")
        shape = broadcast_shape(op, self.shape, mask.shape)
        return self.expand(*shape), mask.expand(*shape)

    # ---- in place: on the tape as torch records them (gt/tensor/inplace_grad.py) -----------
    def _written(self, op, compute, values, reads_self=False, in_place=None, memory=None):
        """``self <- compute(self, *values)`` in place: recorded on the tape where ``self`` or a
        tensor of ``values`` requires grad (``reads_self``: ``compute``'s backward reads the old
        values of ``self``, so it gets a copy), a plain write otherwise: ``in_place()`` where given
        and this tensor is one contiguous array, else a copy of the result back. ``memory(mem, pos)``:
        the op made on the memory, where this tensor's elements share it (overlap_writes.in_memory)."""
        inplace_grad.check_captured(self, op, values)
        if op in _REFUSE_OVERLAP:      # torch's: a source in this tensor's memory at all
            inplace_grad.refuse_shared_input(self, values, any_overlap=True)
        if autograd.is_grad_enabled():
            if self.requires_grad and self.is_leaf:
                self._check_inplace(op)       # torch's refusal, naming the method
            if inplace_grad.records(self, values):
                if op in _EXPANDED_WRITES:
                    overlap_writes.refuse_recorded(self, op[:-1])     # torch's warning first
                return inplace_grad.rebase(self, op, compute, *values, reads_self=reads_self)
        if in_place is not None and self._placed is None and self.ndim and B.is_contiguous(self._array):
            return in_place()
        new = compute(self, *values)
        if memory is not None and (overlap_writes.overlapping(self) or op in _EXPANDED_WRITES
                                   and overlap_writes.expanded(self, op[:-1])):    # windows, or torch's deprecated
            return overlap_writes.in_memory(self, memory)       # (``new``: the op's checks, made)
        return self.copy_(new)

    def _index_add_here(self, dim, index, source, alpha):
        """``index_add_`` not recorded, into this tensor's own array: index_add's checks, then the
        engine's scatter-add in place (index_add and a copy back pass over the whole tensor twice:
        512 rows added into a (50000, 64) table took 6-9 ms instead of 0.2-0.7, on either engine)."""
        dim, index, source = self._index_args(dim, index, source, "index_add")
        alpha = _fill_value(self, alpha)
        index = index._data if isinstance(index, Tensor) else index
        B.index_add(self._array, index if dim == 0 else (slice(None),) * dim + (index,),
                    source._data if alpha == 1 else source._data * alpha)     # as IndexAdd's forward
        if not B.counts_inplace_ops:      # the torch engine's index_add counted it
            self._bump_version()
        return self

    def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
        values = [v for v in (src, value) if isinstance(v, Tensor)]

        def memory(mem, pos):
            at = pos.gather(dim, index).reshape(-1)
            if isinstance(src, Tensor):
                return mem.scatter_(0, at, _sub(src, index).reshape(-1), reduce=reduce)
            return mem.scatter_(0, at, value=value if src is None else src, reduce=reduce)

        if len(values) == 1 and src is None:
            return self._written("scatter_", lambda x, v: x.scatter(dim, index, value=v, reduce=reduce), values,
                                 memory=memory)
        if values:
            return self._written("scatter_", lambda x, s: x.scatter(dim, index, s, value, reduce=reduce), values,
                                 reads_self=reduce is not None, memory=memory)
        return self._written("scatter_", lambda x: x.scatter(dim, index, src, value, reduce=reduce), (),
                             reads_self=reduce is not None, memory=memory)

    def scatter_add_(self, dim, index, src):
        return self._written("scatter_add_", lambda x, s: x.scatter_add(dim, index, s), (src,), reads_self=True,
                             memory=lambda mem, pos: mem.scatter_add_(0, pos.gather(dim, index).reshape(-1),
                                                                      _sub(src, index).reshape(-1)))

    def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
        return self._written("scatter_reduce_", lambda x, s: x.scatter_reduce(dim, index, s, reduce,
                                                                             include_self=include_self),
                             (src,), reads_self=True,
                             memory=lambda mem, pos: mem.scatter_reduce_(0, pos.gather(dim, index).reshape(-1),
                                                                         _sub(src, index).reshape(-1), reduce,
                                                                         include_self=include_self))

    def index_add_(self, dim, index, source, *, alpha=1):
        return self._written("index_add_", lambda x, s: x.index_add(dim, index, s, alpha=alpha), (source,),
                             in_place=lambda: self._index_add_here(dim, index, source, alpha),
                             memory=lambda mem, pos: mem.index_add_(0, _picked(pos, dim, index),
                                                                    source.reshape(-1), alpha=alpha))

    def index_copy_(self, dim, index, source):
        return self._written("index_copy_", lambda x, s: x._index_copy(dim, index, s), (source,),
                             memory=lambda mem, pos: mem.index_put_((_picked(pos, dim, index),), source.reshape(-1)))

    def index_fill_(self, dim, index, value):
        return self._written("index_fill_", lambda x, v: x.index_fill(dim, index, v), (value,),
                             memory=lambda mem, pos: mem.index_fill_(0, _picked(pos, dim, index), value))

    def masked_scatter_(self, mask, source):
        def memory(mem, pos):
            at = pos[_operand(mask, "masked_scatter_").expand(*pos.shape)]
            mem.index_put_((at,), source.reshape(-1)[:at.numel()])

        return self._written("masked_scatter_", lambda x, s: x.masked_scatter(mask, s), (source,), memory=memory)


def _sub(src, index):
    """The part of ``src`` a scatter reads: its leading ``index.shape`` block (torch's)."""
    index = index_tensor(index, "scatter")
    return src[tuple(slice(0, n) for n in index.shape)] if src.ndim else src.expand(*index.shape)


def _picked(pos, dim, index):
    """The memory positions of the slices ``index`` along ``dim`` (an index op's targets), 1-D, in
    the order of its ``source``'s elements."""
    index = index_tensor(index, "index", vector=True).reshape(-1)
    return pos.index_select(dim, index).reshape(-1) if pos.ndim else pos.reshape(-1)


def _scalar_source(t, dim, n, source, op):
    """torch's rules for a 0-d ``source`` of ``index_add``/``index_copy`` into ``t`` at ``n`` indices along
    ``dim``: ``index_copy`` takes it at one index of a 1-d tensor (as one element) and raises IndexError
    for another count; ``index_add`` refuses it along a dim past 0 (RuntimeError) and at a count other
    than one (IndexError); what passes goes on to the shape check."""
    if op == "index_copy":
        if n != 1:
            raise IndexError(f"index_copy_(): When source is scalar, index should have one element (got {n})")
        return source.reshape(1) if t.ndim == 1 else source
    if dim > 0:
        raise RuntimeError(f"index_add_(): Indexing dim {dim} is out of bounds of the source tensor with dim 0")
    if n != 1:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    return source
