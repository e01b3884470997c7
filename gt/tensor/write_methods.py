"""torch's remaining tensor methods that write: ``index_put(_)``, ``index_reduce(_)``, the
``*_scatter`` functions, ``fill_diagonal_``, ``nonzero_static``, the in-place shape changes
(``squeeze_``, ``unsqueeze_``, ``t_``, ``transpose_``, ``swapaxes_``, ``swapdims_``: recorded on
the tape, so ops recorded before read the old shape), ``apply_``/``map_``, ``new_empty_strided``,
``resize_``/``resize_as_`` and ``renorm_``; beside torch in tests/test_remaining_methods.py.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import copy
import warnings

from gt import autograd, dtypes
from gt.autograd import inference_saved, rebind
from gt.autograd.function import new_epoch
from gt.backend import B
from gt.ops._shapes import normalize_axis, numel, row_major_strides
from gt.ops.exact_value import FirstOrderOnly
from gt.tensor import inplace_grad, mesh_row_follow, overlap_writes
from gt.tensor.arithmetic import where
from gt.tensor.complex_checks import refuse_complex
from gt.tensor.construct_methods import _arange
from gt.tensor.device_methods import accepts_device
from gt.tensor.extra_methods import _sizes
from gt.tensor.index_order import mask_misfit
from gt.tensor.inplace import bump_shape_versions
from gt.tensor.scatter_methods import _fill_value, check_range, index_tensor

from gt.tensor.remaining_methods import (_assign, _broadcast, _cat, _int,
                                            _positions, _tensor_operand)

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

INDEX_REDUCTIONS = ("prod", "mean", "amax", "amin")


def _check_mask(mask, axis, shape):
    """torch's test of a mask that covers ``shape[axis:]``, dim by dim, with torch's message; a mask
    running past the last dim gets the message of too many indices (torch's names a dim out of range)."""
    for j, n in enumerate(mask.shape):
        if axis + j >= len(shape):
            raise IndexError(f"too many indices for tensor of dimension {len(shape)} (got {axis + mask.ndim})")
        if n != shape[axis + j]:
            raise mask_misfit(mask.shape, j, shape, axis + j)


class WriteMethods:
    __slots__ = ()

    # ---- writes ------------------------------------------------------------------------------------
    def _flat_index(self, indices, op):
        """``indices`` (a tuple or list of int64/int32/bool tensors for the leading dims) as one
        int64 tensor of positions into ``self`` seen as ``(prod(leading), *rest)``, and ``rest``."""
        if not isinstance(indices, (tuple, list)):
            raise TypeError(f"{op}(): argument 'indices' must be tuple of Tensors, not {type(indices).__name__}")
        if not indices:
            raise IndexError(f"{op}: expected at least one index tensor")
        parts = []
        for k, index in enumerate(indices):
            if not isinstance(index, Tensor):
                raise TypeError(f"expected Tensor as element {k} in argument 0, but got {type(index).__name__}")
            if index.dtype == dtypes.uint8:     # torch's byte mask, deprecated: read as a bool one
                warnings.warn("indexing with dtype gt.uint8 is now deprecated, please use a dtype gt.bool instead.",
                              UserWarning, stacklevel=3)
                index = index != 0
            if index.dtype == dtypes.bool_:
                if index.ndim == 0:
                    raise IndexError(f"{op}: a 0-d bool index is not taken by gt; index with a bool mask of 1 or "
                                     "more dims")
                _check_mask(index, len(parts), self.shape)
                parts.extend(index.nonzero(as_tuple=True))   # a mask covers as many dims as it has
            elif index.dtype in (dtypes.int64, dtypes.int32):
                parts.append(index.detach().to(dtypes.int64))
            else:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        if len(parts) > self.ndim:
            raise IndexError(f"too many indices for tensor of dimension {self.ndim} (got {len(parts)})")
        shape = ()
        for p in parts:
            shape = _broadcast(shape, p.shape, op)
        flat = None
        for axis, p in enumerate(parts):
            n = self.shape[axis]
            p = check_range(p, n, axis, op, negative=True)
            p = (p + n) % n if n else p
            flat = p if flat is None else flat * n + p
        return flat.expand(*shape).reshape(-1), shape, self.shape[len(parts):]

    def index_put(self, indices, values, accumulate=False):
        """A copy with ``values`` (broadcast) written at ``self[indices]`` (``indices``: a tuple of
        int or bool tensors for the leading dims; negative positions count from the end), or
        added there with ``accumulate=True`` (repeated positions then add up). Differentiable in
        this tensor and ``values``."""
        values = _tensor_operand(values, "index_put", "values")
        if values.dtype != self.dtype:
            raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                               f"{dtypes.torch_type_name(self.dtype.name)} for the destination and {dtypes.torch_type_name(values.dtype.name)} for "
                               "the source.")
        flat, shape, rest = self._flat_index(indices, "index_put")
        lead = numel(self.shape[:self.ndim - len(rest)])
        target = shape + rest
        try:
            fits = values.ndim <= len(target) and _broadcast(target, values.shape, "index_put") == target
        except IndexError:
            fits = False
        if not fits:
            raise RuntimeError(f"shape mismatch: value tensor of shape {list(values.shape)} cannot be broadcast to "
                               f"indexing result of shape {list(target)}")
        src = values.expand(*target).reshape((numel(shape),) + rest)     # (-1 is ambiguous where rest holds a 0)
        base = self.reshape((lead,) + rest)
        out = base.index_add(0, flat, src) if accumulate else base.index_copy(0, flat, src)
        return out.reshape(self.shape)

    def index_put_(self, indices, values, accumulate=False):
        """``index_put`` in place (recorded on the tape as torch records it)."""
        def memory(mem, pos):       # (an expanded tensor: torch's warnings)
            overlap_writes.masked_fill_warning([B.asarray(getattr(i, "_data", i)) for i in indices if i is not None],
                                               values, accumulate, self._array)
            at = pos[tuple(indices)]
            value = values if isinstance(values, Tensor) else Tensor._wrap(B.asarray(values, dtype=self.dtype))
            mem.index_put_((at.reshape(-1),), value.expand(*at.shape).reshape(-1), accumulate)

        return self._written("index_put_", lambda x, v: x.index_put(indices, v, accumulate), (values,),
                             reads_self=False, memory=memory)

    def index_reduce(self, dim, index, source, reduce, *, include_self=True):
        """A copy with each slice ``source[..., i, ...]`` (along ``dim``) reduced into the slice at
        ``index[i]`` by ``reduce``: ``"prod"``, ``"mean"``, ``"amax"`` or ``"amin"``; with
        ``include_self=False`` the slices that receive values forget their own. Integer means
        round down (floor), as torch's. Differentiable in both tensors (``amax``/``amin``: ties share
        the gradient evenly, as in ``scatter_reduce``; ``prod``: zeros handled as torch does)."""
        if reduce not in INDEX_REDUCTIONS:
            raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got "
                               f"{reduce}.")
        refuse_complex(self, "index_func_")     # torch has no complex index_reduce
        source = _tensor_operand(source, "index_reduce", "source")
        if source.dtype != self.dtype:
            raise RuntimeError(f"index_reduce_(): self ({dtypes.torch_type_name(self.dtype.name)}) and source "
                               f"({dtypes.torch_type_name(source.dtype.name)}) must have the same scalar type")
        if self.ndim == 0:
            return self.reshape(1).index_reduce(dim, index, source.reshape(-1), reduce,
                                                include_self=include_self).reshape(())
        dim = normalize_axis(dim, self.ndim, "index_reduce")
        index = index_tensor(index, "index_reduce", vector=True).reshape(-1)
        want = self.shape[:dim] + (index.shape[0],) + self.shape[dim + 1:]
        if source.shape != want:
            raise RuntimeError(f"index_reduce(): source of shape {source.shape} must have the tensor's shape "
                               f"{self.shape} with dim {dim} of size {index.shape[0]} (the number of indices), "
                               f"that is {want}")
        n = self.shape[dim]
        if index.numel() and (bool((index < 0).any()) or bool((index >= n).any())):
            raise IndexError("index out of range in self")
        if reduce == "prod" and autograd.is_grad_enabled() and (self.requires_grad or source.requires_grad):
            return self._index_prod(dim, index, source, include_self)
        spread = index.reshape((1,) * dim + (-1,) + (1,) * (self.ndim - dim - 1)).expand(*source.shape)
        return self.scatter_reduce(dim, Tensor._wrap(B.copy(spread._data)), source, reduce, include_self=include_self)

    def _index_prod(self, dim, index, source, include_self):
        """``index_reduce(..., "prod")`` with torch's gradient: each factor's is the product of the
        other factors of its slot (zeros counted apart, so that a single zero gets the product of
        the rest, and two or more give 0). The values are computed without the tape; the terms
        ``(t - t.detach()) * others`` add 0 to them and carry those gradients."""
        with autograd.no_grad():
            x, s = self.detach(), source.detach()
            s_nz = where(s == 0, 1.0, s)
            if include_self:
                x_nz, zeros = where(x == 0, 1.0, x), (x == 0).to(x.dtype)
            else:
                x_nz, zeros = x * 0 + 1, x * 0
            nz = x_nz.index_reduce(dim, index, s_nz, "prod")          # the product of the non-zero factors
            zeros = zeros.index_add(dim, index, (s == 0).to(s.dtype))  # how many factors are 0
            result = x.index_reduce(dim, index, s, "prod", include_self=include_self)
            zs, nzs = zeros.index_select(dim, index), nz.index_select(dim, index)
            others_s = where(zs == 0, nzs / s_nz, where((zs == 1) & (s == 0), nzs, 0.0))
            if include_self:
                others_x = where(zeros == 0, nz / x_nz, where((zeros == 1) & (x == 0), nz, 0.0))
            else:   # a slot that receives values forgets its own: its own value gets no gradient
                received = (x * 0).index_add(dim, index, s * 0 + 1)
                others_x = where(received > 0, 0.0, 1.0).to(x.dtype)    # two numbers meet in float32
        out = (self - x) * others_x + result
        # the factors' products are constants here: a second derivative would be wrong, so it is refused
        return FirstOrderOnly.apply(out.index_add(dim, index, (source - s) * others_s), 'index_reduce(..., "prod")')

    def index_reduce_(self, dim, index, source, reduce, *, include_self=True):
        """``index_reduce`` in place (recorded on the tape as torch records it)."""
        return self._written("index_reduce_", lambda x, s: x.index_reduce(dim, index, s, reduce,
                                                                           include_self=include_self),
                             (source,), reads_self=True)

    def _scatter_into(self, positions, src, op):
        """A copy with ``src`` written at the flat ``positions`` (int64, ``src``'s shape)."""
        src = _tensor_operand(src, op, "src")
        if src.shape != positions.shape:
            raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                               f"{list(src.shape)}, slice size = {list(positions.shape)}")
        if src.dtype != self.dtype:
            src = src.to(self.dtype)
        flat = self.reshape(-1)
        return flat.index_copy(0, positions.reshape(-1), src.reshape(-1)).reshape(self.shape)

    def _scatter_along(self, dim, positions, src, op):
        """A copy with ``src`` written at the 1-D ``positions`` (Python ints) along ``dim``."""
        src = _tensor_operand(src, op, "src")
        want = self.shape[:dim] + (len(positions),) + self.shape[dim + 1:]
        if src.shape != want:
            raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                               f"{list(src.shape)}, slice size = {list(want)}")
        if src.dtype != self.dtype:
            src = src.to(self.dtype)
        index = Tensor._wrap(B.asarray(list(positions), dtype=dtypes.int64) if positions else
                             B.zeros((0,), dtypes.int64))
        return self.index_copy(dim, index, src)

    def select_scatter(self, src, dim, index):
        """A copy with ``src`` written at ``self.select(dim, index)`` (``src`` of that slice's
        shape); differentiable in this tensor and ``src``."""
        if self.ndim == 0:
            raise IndexError("select() cannot be applied to a 0-dim tensor.")
        dim = normalize_axis(dim, self.ndim, "select_scatter")
        n, index = self.shape[dim], _int(index, "select_scatter", "index")
        if not -n <= index < n:
            raise IndexError(f"select(): index {index} out of range for tensor of size {list(self.shape)} at "
                             f"dimension {dim}")
        src = _tensor_operand(src, "select_scatter", "src")
        if src.shape != self.shape[:dim] + self.shape[dim + 1:]:
            raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                               f"{list(src.shape)}, slice size = {list(self.shape[:dim] + self.shape[dim + 1:])}")
        return self._scatter_along(dim, [index % n], src.unsqueeze(dim), "select_scatter")

    def slice_scatter(self, src, dim=0, start=None, end=None, step=1):
        """A copy with ``src`` written at ``self[start:end:step]`` along ``dim`` (``src`` of that
        slice's shape); differentiable in this tensor and ``src``."""
        if self.ndim == 0:
            raise IndexError("slice() cannot be applied to a 0-dim tensor.")
        dim = normalize_axis(dim, self.ndim, "slice_scatter")
        if _int(step, "slice_scatter", "step") <= 0:
            raise RuntimeError("slice step must be positive")
        positions = range(*slice(start, end, step).indices(self.shape[dim]))
        return self._scatter_along(dim, positions, src, "slice_scatter")

    def diagonal_scatter(self, src, offset=0, dim1=0, dim2=1):
        """A copy with ``src`` written at ``self.diagonal(offset, dim1, dim2)`` (``src`` of that
        diagonal's shape); differentiable in this tensor and ``src``."""
        positions = _positions(self).diagonal(offset, dim1, dim2)
        return self._scatter_into(positions, src, "diagonal_scatter")

    def fill_diagonal_(self, fill_value, wrap=False):
        """Write ``fill_value`` on the main diagonal, in place: ``[i, i]`` of a matrix (with
        ``wrap=True`` a tall matrix starts again every ``cols + 1`` rows, as torch's), ``[i, i,
        ..., i]`` of a tensor whose dims are all equal."""
        if self.ndim < 2:
            raise RuntimeError("dimensions must larger than 1")
        if self.ndim > 2 and len(set(self.shape)) != 1:
            raise RuntimeError("all dimensions of input must be of equal length")
        rows, cols = self.shape[0], self.shape[1]
        if self.ndim == 2:
            end = rows * cols if wrap else min(rows, cols) * cols
            step = cols + 1
        else:
            step = sum(cols ** k for k in range(self.ndim))
            end = numel(self.shape)
        count = -(-end // step) if end else 0
        positions = _arange(count, step)
        mask = Tensor._wrap(B.zeros((numel(self.shape),), dtypes.bool_))
        if count:
            mask = mask.index_fill(0, positions, True)
        mask = mask.reshape(self.shape)
        value = _fill_value(self, fill_value)
        return self._written("fill_diagonal_", lambda x: where(mask, value, x), ())

    def nonzero_static(self, *, size, fill_value=-1):
        """``nonzero()`` with exactly ``size`` rows: cut to the first ``size``, or padded with
        rows of ``fill_value``. int64 ``(size, ndim)``."""
        size = _int(size, "nonzero_static", "size")
        if size < 0:
            raise RuntimeError("nonzero_static: 'size' must be an non-negative integer")
        fill_value = _int(fill_value, "nonzero_static", "fill_value")
        found = self.nonzero()[:size]
        if found.shape[0] == size:
            return found
        pad = Tensor._wrap(B.full((size - found.shape[0], self.ndim), fill_value, dtypes.int64))
        return _cat([found, pad], 0)

    # ---- in-place shape changes ----------------------------------------------------------------
    def _reshaped_(self, op, change):
        """This tensor becomes ``change(self)`` (a view of its memory in a new shape), in place.
        While gradients are recorded on a tensor of the graph, the view op is recorded from the
        tensor's values of before, which become the input of the ops recorded so far."""
        if inference_saved.made[0]:     # (torch refuses an inference tensor's, outside inference mode)
            inference_saved.refuse_inplace(self)
        inplace_grad.check_captured(self, op, shape=True)
        if mesh_row_follow.rows:      # a copy acting as a view of this sharded tensor lives
            mesh_row_follow.refuse_new_shape(self, op)
        if autograd.is_grad_enabled() and self._requires_grad:
            if self._ctx is None:
                raise RuntimeError(f"{inplace_grad.LEAF} ({op}: {inplace_grad.HINT})")
            inplace_grad.refuse_view_of_leaf(self, op)
            if inplace_grad.view_base(self) is not None:
                # a view stays a view of its base (writes into it reach the base), through a copy
                # of its view op: ``old`` stands for its values of before, for the ops recorded so far
                mid = Tensor._from_value(self._value, requires_grad=True)
                mid._ctx = copy.copy(self._ctx)
                old = inplace_grad._old_version(self)
                new = change(mid)
                new._ctx.previous = old      # rebind holds versions weakly: the op of the change keeps it
            else:
                # this tensor's own memory seen anew, no view of ``old`` (which stands for it)
                old = inplace_grad._old_version(self)
                new = change(old)
                inplace_grad._written.add(new._ctx)
            self._array, self._placed = new._array, new._placed
            self._ctx = new._ctx
            rebind.changed(self, old, new_epoch())
            bump_shape_versions([self])
            return self
        with autograd.no_grad():
            new = change(self)
        self._array, self._placed = new._array, new._placed
        bump_shape_versions([self])
        return self

    def squeeze_(self, dim=None):
        """``squeeze(dim)`` in place: this tensor loses its size-1 dims (or ``dim``, if of size 1)."""
        return self._reshaped_("squeeze_", lambda x: x.squeeze(dim))

    def unsqueeze_(self, dim):
        """``unsqueeze(dim)`` in place: this tensor gains a size-1 dim at ``dim``."""
        if not -self.ndim - 1 <= _int(dim, "unsqueeze_", "dim") <= self.ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-self.ndim - 1}, {self.ndim}], "
                             f"but got {dim})")
        return self._reshaped_("unsqueeze_", lambda x: x.unsqueeze(dim))

    def t_(self):
        """``t()`` in place: a matrix becomes its transpose (a tensor of at most 2 dims)."""
        if self.ndim > 2:
            raise RuntimeError(f"t_() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self._reshaped_("t_", lambda x: x.t())

    def transpose_(self, dim0, dim1):
        """``transpose(dim0, dim1)`` in place."""
        normalize_axis(dim0, self.ndim, "transpose_")
        normalize_axis(dim1, self.ndim, "transpose_")
        return self._reshaped_("transpose_", lambda x: x.transpose(dim0, dim1))

    def swapaxes_(self, axis0, axis1):
        """``transpose_(axis0, axis1)``."""
        return self.transpose_(axis0, axis1)

    def swapdims_(self, dim0, dim1):
        """``transpose_(dim0, dim1)``."""
        return self.transpose_(dim0, dim1)

    # ---- per-element Python callables, memory -------------------------------------------------
    def _refuse_python_map(self, op):
        if self.requires_grad:
            raise RuntimeError(f"Can't call {op}() on Variable that requires grad. Use var.detach().{op}() instead.")
        if not self.is_cpu:
            raise RuntimeError(f"{op} is only implemented on CPU tensors")

    def apply_(self, callable):
        """Replace each element ``v`` by ``callable(v)``, in place: one Python call per element,
        slow as torch's (CPU tensors only, as torch's; not on tensors that require grad)."""
        self._refuse_python_map("apply_")
        values = [callable(v) for v in self.reshape(-1).tolist()]
        new = B.reshape(B.asarray(values, dtype=self.dtype) if values else B.zeros((0,), self.dtype), self.shape)
        return self._update(_assign, new)

    def map_(self, tensor, callable):
        """Replace each element ``a`` by ``callable(a, b)``, ``b`` the element of ``tensor``
        (broadcast to this shape), in place: one Python call per element, slow as torch's."""
        self._refuse_python_map("map_")
        other = _tensor_operand(tensor, "map_", "tensor")
        other._refuse_python_map("map_")     # torch refuses an operand that requires grad too
        if other.dtype != self.dtype:
            raise TypeError(f"map_: expected a tensor of dtype {self.dtype.name} for 'tensor' (this tensor's), got "
                            f"{other.dtype.name}")
        other = other.expand(*self.shape)
        values = [callable(a, b) for a, b in zip(self.reshape(-1).tolist(), other.reshape(-1).tolist())]
        new = B.reshape(B.asarray(values, dtype=self.dtype) if values else B.zeros((0,), self.dtype), self.shape)
        return self._update(_assign, new)

    @accepts_device
    def new_empty_strided(self, size, stride, *, dtype=None, requires_grad=False):
        """A new tensor of ``size`` with unspecified values (this tensor's dtype unless given).
        gt lays every new tensor out row-major, so ``stride`` is checked but ``stride()`` of the
        result is the row-major one."""
        size, stride = tuple(size), tuple(stride)
        if len(size) != len(stride):
            raise RuntimeError(f"dimensionality of sizes ({len(size)}) must match dimensionality of strides "
                               f"({len(stride)})")
        _sizes((stride,), "new_empty_strided")
        dtype = dtypes.to_dtype(dtype) if dtype is not None else self.dtype
        out = Tensor._wrap(B.empty(_sizes((size,), "new_empty_strided"), dtype))
        return out._set_requires_grad(True) if requires_grad else out

    def resize_(self, *sizes, memory_format=None):
        """This tensor takes the shape ``sizes``, in place, row-major over its memory from its first
        element, as torch's: a view of a larger memory (a slice, a transposed or expanded view) then
        reads that memory in its order, and stays a view of it while it fits; more elements than
        the memory holds add elements whose values are unspecified (gt writes zeros, in new memory
        that the other views do not follow). Refused on a tensor that requires grad, as torch's."""
        size = _sizes(sizes, "resize_")
        if inference_saved.made[0]:     # (torch refuses an inference tensor's, outside inference mode)
            inference_saved.refuse_inplace(self)
        inplace_grad.check_captured(self, "resize_", shape=True)
        if mesh_row_follow.rows:      # a copy acting as a view of this sharded tensor lives
            mesh_row_follow.refuse_new_shape(self, "resize_")
        if self.requires_grad:
            raise RuntimeError("cannot resize variables that require grad")
        n, have = numel(size), self.numel()
        if size == self.shape:
            return self
        arr = self._array
        extent = B.storage_size(arr) if self._placed is None and have else None
        if extent is not None:
            offset = self.storage_offset()
            flat = B.strided_view(arr, (min(n, extent - offset),), (1,), offset)
            if n <= extent - offset:      # the memory holds it: a view of it, as torch's
                self._array = B.strided_view(arr, size, row_major_strides(size), offset)
                bump_shape_versions([self])
                return self
            have = extent - offset
        else:
            flat = B.reshape(self._data, (have,))
        if n <= have:
            arr = B.reshape(B.getitem(flat, slice(0, n)), size)
        else:
            arr = B.reshape(B.concatenate([flat, B.zeros((n - have,), self.dtype)], 0), size)
        self._array, self._placed = arr, None
        bump_shape_versions([self])       # on every engine: no engine op wrote in place (torch's engine counts its own)
        return self

    def resize_as_(self, the_template, memory_format=None):
        """``resize_(the_template.shape)``."""
        return self.resize_(_tensor_operand(the_template, "resize_as_", "the_template").shape)

    def renorm_(self, p, dim, maxnorm):
        """``renorm(p, dim, maxnorm)`` in place (recorded on the tape as torch records it)."""
        if overlap_writes.overlapping(self) and not (autograd.is_grad_enabled() and self.requires_grad):
            # windows sharing memory: torch's kernel takes the norms first, then multiplies element by element
            self.renorm(p, dim, maxnorm)        # its checks
            with autograd.no_grad():
                return self.mul_(self._renorm_factor(p, dim, maxnorm))
        return self._written("renorm_", lambda x: x.renorm(p, dim, maxnorm), (), reads_self=True)

