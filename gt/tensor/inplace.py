"""In-place updates of a tensor's values: outside the tape (``w -= lr * w.grad`` under
``gt.no_grad()``), and, while gradients are recorded, on tensors of the graph as torch records
them (``y[0] = z``, ``y.add_(1)``: gt/tensor/inplace_grad.py).

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import math
from operator import iadd as _iadd, imul as _imul, isub as _isub, itruediv as _idiv

from gt import autograd, dtypes, errors
from gt.autograd import function, inference_saved
from gt.autograd.grad_mode import mode as _mode
from gt.backend import B
from gt.ops._shapes import broadcast_shape
from gt.sharding import layout
from gt.sharding.placement import Shard
from gt.tensor import inplace_grad, mesh_row_follow, mesh_row_write, overlap_writes
from gt.tensor._args import _fill, _scalar
from gt.tensor.bool_int_refusals import refuse_bool_subtraction
from gt.tensor.half_scalars import float32_update, fused_update, is_half_scalar_pair, scalar_value
from gt.tensor.int_scalars import checked_alpha, checked_scalar, wrap_scalar
from gt.tensor.wide_uints import refuse, refuse_indexed_write
from gt.tensor.index_order import torch_index, torch_order
from gt.tensor.promotion import result_dtype
from gt.tensor.rounded_division import rounded_quotient
from gt.tensor.shape import _index, index_error_text, out_of_range
from gt.tensor.strided_methods import SHAPE_WATCHERS, watch_shape_change

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py


class InplaceMethods:
    __slots__ = ()

    def _check_inplace(self, what):
        """For an in-place method that is not recorded on the tape: refuse a tensor that requires
        grad while gradients are recorded (a leaf with torch's error)."""
        if autograd.is_grad_enabled() and self.requires_grad:
            if self.is_leaf:
                raise RuntimeError(f"{inplace_grad.LEAF} ({what}: {inplace_grad.HINT})")
            raise RuntimeError(f"{what} is not recorded on the tape, so it cannot change a tensor that requires grad "
                               f"while gradients are recorded: {inplace_grad.HINT}")

    def _inplace_value(self, other, op):
        value = _scalar(other)
        if isinstance(value, Tensor):
            if value.ndim == 0 and value.dtype is not self.dtype:
                # computed in torch's result dtype: a float64 0-d value does not widen a float16
                # tensor's sum (numpy would add in float64 and round once more)
                cast = result_dtype(self, value)
                value = value if cast == value.dtype else value.detach().to(cast)
            own = self.dtype
            if own is dtypes.uint8 and value.dtype.is_signed and not value.dtype.differentiable \
                    and op in ("add_", "mul_", "+=", "-=", "*="):
                # numpy will not write signed ints into uint8 in place; these wrap alike in either dtype
                value = value.detach().to(dtypes.uint8)
            elif not own.differentiable and own in dtypes.WIDE_UINTS and op in _ADDS:
                refuse("add_stub", self)        # torch has no add kernel for uint16/32/64
            value = value._value if self._placed is not None else value._data
        elif not isinstance(value, (int, float, bool)):
            value = B.asarray(value)
        elif type(value) is int and self.dtype.name in dtypes.INT_RANGES:
            if op in _ADDS and self.dtype in dtypes.WIDE_UINTS:
                refuse("add_stub", self)
            value = wrap_scalar(self, value)[1]     # torch casts it to the tensor's dtype, wrapping (uint8 += 300)
        if not isinstance(value, (int, float, bool)):
            out = broadcast_shape(op, self.shape, layout.shape_of(value))
            if out != self.shape:
                raise errors.ShapeError(f"{op}: a value of shape {layout.shape_of(value)} cannot be written into "
                                 f"shape {self.shape}")
        return value

    def _update(self, fn, *values, check=True, uniform=False, name=None):
        """``fn(array, *values)`` updates the array in place; on a sharded tensor it runs on each
        shard with the matching pieces of the values (a partial tensor is summed first).
        ``check=False``: skip refusing a copy gt makes of a view over the mesh (``v[...] += w`` writes back).
        ``uniform``: one value written everywhere (``refuse_overlap``). ``name``: torch's op
        (``add_``), an event of the profiler while it records."""
        rec = function.profiling
        if rec is not None and name is not None and rec.records_call():
            return rec.call("aten::" + name, False, InplaceMethods._update, (self, fn, *values),
                            {"check": check, "uniform": uniform})
        if inference_saved.made[0]:
            inference_saved.refuse_inplace(self)
        if inplace_grad.copies_of_shard_rows and (back := mesh_row_write.refuse(self, "an in-place change", check)):
            return mesh_row_write.written(back, InplaceMethods._update, self, fn, *values, uniform=uniform)  # x[i]
        if _mode.level:      # inside a gt.func transform (under its no_grad: recorded() did not ask)
            inplace_grad.refuse_captured(self, name, values)
        inplace_grad.refuse_overlap(self, uniform)
        try:
            return self._apply_update(fn, values)
        except TypeError as exc:
            if not hasattr(exc, "from_") or not hasattr(exc, "to"):    # not numpy's refused cast
                raise
            # numpy's casting error, in torch's words and type (the torch engine raises torch's own);
            # numpy's float64 from a Python float or an integer division is torch's default float
            result = exc.from_.name
            if result == "float64" and not any(
                    (v.dtype if isinstance(v, layout.Placed) else B.dtype_of(v)) == dtypes.float64
                    for v in values if B.is_array(v) or isinstance(v, layout.Placed)):     # sharded values too
                result = dtypes.default_float.name
            raise RuntimeError(f"result type {dtypes.torch_type_name(result)} can't be cast to the desired "
                               f"output type {dtypes.torch_type_name(exc.to.name)}") from None

    def _apply_update(self, fn, values):
        p = self._placed
        if p is None or not isinstance(p.placement, Shard):
            arr = self._array if p is None else layout.whole_in_place(p)    # (a partial sum: its aliases see the change)
            if arr is None:         # shares that may be other values' too: one array of its own
                self._data = arr = layout.materialize(p)
            values = [layout.materialize(v) if isinstance(v, layout.Placed) else v for v in values]
            read = B.write_operands(arr, values)     # each as it was before the write
            if read is None:        # windows sharing memory: element by element, as torch's kernels
                overlap_writes.update(arr, fn, values)
            else:
                fn(arr, *read)
            if not B.counts_inplace_ops:
                B.bump_version(arr)
            return self
        pieces = [layout.cut_like(v, p) for v in values]
        for d, shard in enumerate(p.shards):
            fn(shard, *[piece[d] for piece in pieces])
        if not B.counts_inplace_ops:
            self._bump_version()
        elif mesh_row_follow.rows:      # (else bump_versions did it) rows x[i] copied from these blocks follow
            mesh_row_follow.refresh()
        return self

    @property
    def _version(self):
        """How many times this tensor's values (or those of a tensor it is a view of) were changed
        in place, as torch's ``Tensor._version``; a backward that saved them checks it."""
        p = self._placed
        return B.version_of(self._array) if p is None else max(B.version_of(s) for s in _distinct_memory(p.shards))

    def _bump_version(self):
        """Count an in-place change of this tensor's values made without ``_update`` (an
        optimizer's fused kernels): a backward that saved them before then raises
        (gt/autograd/versions.py)."""
        bump_versions([self])

    def _iop(self, other, op, name):
        # a copy gt makes of an index over the mesh is not refused here: ``v[i] += w`` is Python's
        # ``t = v[i]; t += w; v[i] = t``, which writes the result back (a row x[i] is written back anyway)
        if inplace_grad.copies_of_shard_rows:
            mesh_row_write.refuse_iop(self, name)
        inplace_grad.refuse_shared_input(self, (other,))
        if inplace_grad.recorded(self, (other,), check=False, op=_IOP_EVENTS[name]):
            return inplace_grad.rebase(self, f"`{name}`", op, other, reads_self=name in ("*=", "/="), same_shape=True)
        if name in ("*=", "/=") and is_half_scalar_pair(self, other):      # torch's float32 kernel
            return self._update(float32_update(_IOPS[name]), scalar_value(other), check=False, name=_IOP_EVENTS[name])
        return self._update(_IOPS[name], self._inplace_value(other, name), check=False, name=_IOP_EVENTS[name])

    def __iadd__(self, other):
        return self._iop(other, Tensor.__add__, "+=")

    def __isub__(self, other):
        return self._iop(other, Tensor.__sub__, "-=")

    def __imul__(self, other):
        return self._iop(other, Tensor.__mul__, "*=")

    def __itruediv__(self, other):
        return self._iop(other, Tensor.__truediv__, "/=")

    def add_(self, other, alpha=1):
        """``self += alpha * other``, in place. The optimizers' updates all come through here: a
        scaled addition takes the engine's fused path (``B.add_scaled_``: no temporary as large
        as the tensor), where the multiply and the add may be fused with one rounding (as torch's
        ``add_(alpha=)``; BLAS axpy on large numpy arrays)."""
        if type(alpha) in _CHECKED_ALPHAS or not self.dtype.differentiable and \
                (type(alpha) is not int or self.dtype is dtypes.bool_):     # (a float tensor's float alpha: no check)
            alpha = checked_alpha(self, other, alpha, "add_")
            if type(alpha) is bool:         # a bool result: ``self | (other & alpha)``, as torch's
                other, alpha = (other * alpha if isinstance(other, Tensor) else other and alpha), 1
        inplace_grad.refuse_shared_input(self, (other,))
        if inplace_grad.recorded(self, (other,), op="add_"):
            add = (lambda x, o: x + o) if alpha == 1 else (lambda x, o: x + o * alpha)
            return inplace_grad.rebase(self, "add_", add, other, same_shape=True)
        if type(other) is int and type(alpha) is int and self.dtype.name in dtypes.INT_RANGES:
            other, alpha = other * alpha, 1      # one product, wrapped into the dtype as torch's (uint8 sub_(-1))
        elif type(alpha) is int and self.dtype in dtypes.SMALL_INTS:
            alpha = checked_scalar(alpha, self.dtype, "alpha")    # uint8's sub_ (alpha -1) multiplies by 255
        value = self._inplace_value(other, "add_")
        if alpha == 1:
            return self._update(_iadd, value, name="add_")
        return self._update(lambda a, v: B.add_scaled_(a, v, alpha), value, name="add_")

    def sub_(self, other, alpha=1):
        refuse_bool_subtraction(self, other)
        if type(alpha) in _CHECKED_ALPHAS or type(alpha) is float and not self.dtype.differentiable:
            alpha = checked_alpha(self, other, alpha, "sub_")
        if _mode.level:     # torch's name in a transform's refusal, before add_'s (a flag read elsewhere)
            inplace_grad.refuse_captured(self, "sub_", (other,))
        rec = function.profiling
        if rec is not None and rec.records_call():          # torch's event, not add_'s
            return rec.call("aten::sub_", False, InplaceMethods.add_, (self, other, -alpha), {})
        return self.add_(other, alpha=-alpha)

    def mul_(self, other):
        inplace_grad.refuse_shared_input(self, (other,))
        if inplace_grad.recorded(self, (other,), op="mul_"):
            return inplace_grad.rebase(self, "mul_", lambda x, o: x * o, other, reads_self=True, same_shape=True)
        if is_half_scalar_pair(self, other):        # torch's float32 kernel
            return self._update(float32_update(_imul), scalar_value(other), name="mul_")
        return self._update(_imul, self._inplace_value(other, "mul_"), name="mul_")

    def div_(self, other, *, rounding_mode=None):
        if rounding_mode is not None:       # the rounded quotient (zero gradients), written back
            value = rounded_quotient(self, other, rounding_mode)
            if value.dtype.is_floating_point and not self.dtype.is_floating_point:
                raise RuntimeError(f"result type {value.dtype.name} can't be cast to the desired output type "
                                   f"{self.dtype.name}")
            if overlap_writes.overlapping(self):     # windows: element by element, as torch
                return overlap_writes.recompute(
                    self, lambda x, o: rounded_quotient(x, o, rounding_mode).to(self.dtype), (other,), {})
            return self.copy_(value)
        inplace_grad.refuse_shared_input(self, (other,))
        if inplace_grad.recorded(self, (other,), op="div_"):
            return inplace_grad.rebase(self, "div_", lambda x, o: x / o, other, reads_self=True, same_shape=True)
        if is_half_scalar_pair(self, other):        # torch's float32 kernel
            return self._update(float32_update(_idiv), scalar_value(other), name="div_")
        return self._update(_idiv, self._inplace_value(other, "div_"), name="div_")

    def addcmul_(self, tensor1, tensor2, value=1):
        """``self += value * tensor1 * tensor2``, in place."""
        t1, t2 = tensor1, tensor2
        if type(value) is int and self.dtype.name in dtypes.INT_RANGES:
            # torch's checked cast into an integer tensor's dtype (uint8 refuses 300); a float16
            # tensor's value is checked in float32, its computing dtype, which every int64 fits
            value = checked_scalar(value, self.dtype, "addcmul_'s value")
        inplace_grad.refuse_shared_input(self, (t1, t2))
        if inplace_grad.recorded(self, (t1, t2), op="addcmul_"):
            return inplace_grad.rebase(self, "addcmul_", lambda x, a, b: x + a * b * value, t1, t2, same_shape=True)
        return self._update(fused_update(lambda x, y: x * y * value, lambda x, y: value * x * y),
                            self._inplace_value(t1, "addcmul_"), self._inplace_value(t2, "addcmul_"), name="addcmul_")

    def addcdiv_(self, tensor1, tensor2, value=1):
        """``self += value * tensor1 / tensor2``, in place."""
        t1, t2 = tensor1, tensor2
        inplace_grad.refuse_shared_input(self, (t1, t2))
        if inplace_grad.recorded(self, (t1, t2), op="addcdiv_"):
            return inplace_grad.rebase(self, "addcdiv_", lambda x, a, b: x + a / b * value, t1, t2, same_shape=True)
        return self._update(fused_update(lambda x, y: x / y * value, lambda x, y: value * (x / y)),
                            self._inplace_value(t1, "addcdiv_"), self._inplace_value(t2, "addcdiv_"), name="addcdiv_")

    def copy_(self, src, non_blocking=False):
        """``src``'s values written into this tensor (broadcast to its shape, cast to its dtype).
        ``non_blocking`` is torch's (accepted: gt's copies are synchronous already)."""
        inplace_grad.refuse_shared_input(self, (src,))
        if inplace_grad.recorded(self, (src,), op="copy_"):
            return inplace_grad.assign(self, Ellipsis, src, "copy_")
        return self._update(_assign, self._inplace_value(src, "copy_"), name="copy_")

    def fill_(self, value):
        if isinstance(value, Tensor) and value.ndim != 0:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} "
                               "dimensions.")
        if not isinstance(value, Tensor):
            value = checked_scalar(_fill(value), self.dtype, "fill_'s value")   # one the dtype cannot hold raises
        if inplace_grad.recorded(self, (value,), op="fill_"):
            return inplace_grad.assign(self, Ellipsis, value, "fill_")
        if type(value) is int and value >= 2 ** 63:     # uint64's top half: the engine's setitem takes it
            return self._update(_assign_wide, value, uniform=True, name="fill_")
        return self._update(B.fill, value._data if isinstance(value, Tensor) else value, uniform=True, name="fill_")

    def zero_(self):
        """Set every element to 0, in place (e.g. ``param.grad.zero_()``)."""
        rec = function.profiling
        if rec is not None and rec.records_call():          # torch's event, not fill_'s
            return rec.call("aten::zero_", False, InplaceMethods.fill_, (self, 0), {})
        return self.fill_(0)

    def __setitem__(self, index, value):
        if inference_saved.made[0]:       # (torch writes through a view: a detach() alias refused too)
            inference_saved.refuse_inplace(self, alias=False)
        if inplace_grad.copies_of_shard_rows and (back := mesh_row_write.refuse(self, "item assignment")):
            return mesh_row_write.written(back, InplaceMethods.__setitem__, self, index, value)    # x[i] of a sharded x
        _refuse_byte_mask_fill(index, value)
        fill = isinstance(value, Tensor) and _masked_fill(index, value)
        index = torch_index(_index(index), self.shape)   # lists and tensors as engine arrays, once
        expanded = inplace_grad.refuse_overlap(self, uniform=True, index=index)
        if self.dtype in dtypes.WIDE_UINTS:
            refuse_indexed_write(self, index, value)
        if isinstance(value, Tensor) and value.dtype is not self.dtype:
            _check_index_put_dtype(self, index, value)
        if isinstance(value, Tensor) and not fill:  # torch's index_put_ refuses any overlap, a view's copy a partial one
            advanced = any(B.is_array(p) for p in (index if isinstance(index, tuple) else (index,)))
            inplace_grad.refuse_shared_input(self, (value,), Ellipsis if advanced else index, advanced)
        split = torch_order(index)
        if split is not None:
            return _set_in_torch_order(self, index, split, value)
        if expanded and not B.warns_expanded_puts:
            overlap_writes.put_into_expanded(self, index, value)      # torch's warning, where its index_put_ gives it
        kind = type(value)
        fits = _FITS.get(self.dtype) if kind is float or kind is int else None
        if fits is None or not fits[0] <= value <= fits[1]:     # (the common number needs no more)
            value = _scalar(value)                  # a number to torch's check too: np.float64(1e39) raises
            kind = type(value)
            top = 64 if self.dtype is dtypes.uint64 else 63
            if kind is int and not -2 ** 63 <= value < 2 ** top:
                # torch reads the int as an int64 (gt's uint64 takes its top half too); the torch
                # engine would write 2**63 into an int64 tensor as -2**63
                raise ValueError(f"Overflow when unpacking long long: {value} is outside [-2**63, 2**{top})")
            if kind is complex and not self.dtype.is_complex or kind in (int, float, complex) and \
                    self.dtype in _CHECKED_WRITES and (kind is not int or -2 ** 63 <= value < 2 ** 63):
                # torch's checked fill: a non-zero imaginary part refused, uint8 takes -1 as 255, refuses
                # -1.5, float32 refuses 1e39 (ints beyond int64: the engine's error, as torch's own)
                value = checked_scalar(value, self.dtype, "the assigned value")
        op = _put_op(index) if _mode.level else None     # (only a transform's refusal names it)
        if inplace_grad.recorded(self, (value,), op=op):
            if expanded or self._placed is not None:    # torch's warning (if not given above), gt's refusals
                overlap_writes.refuse_recorded(self, "index_put", warned=expanded and not B.warns_expanded_puts)
            inplace_grad.assign(self, index, value)
            return
        inplace_grad.check_captured(self, op, (value,))     # (under no_grad: recorded() did not ask)
        if isinstance(value, Tensor):
            value = value._data
        if self._placed is not None:
            return mesh_row_write.put(self, index, value)       # into the blocks, which views share
        self._setitem(self._array, index, value)
        if not B.counts_inplace_ops:
            B.bump_version(self._array)

    def _setitem(self, arr, index, value):
        if B.is_array(value):      # as it is before the write, where it lies in this memory
            value = B.read_before_write(arr, (value,))[0]
        try:
            B.setitem(arr, _index(index), value)
        except IndexError as exc:
            raise IndexError(index_error_text(exc, self.shape)) from None


def bump_versions(tensors):
    """Count an in-place change of each of ``tensors`` (``_bump_version``), in one engine call."""
    arrays = []
    for t in tensors:
        p = t._placed
        if p is None:
            arrays.append(t._array)
        else:
            arrays.extend(_distinct_memory(p.shards))   # shards may be views of one buffer: one change
    B.bump_versions(arrays)
    if mesh_row_follow.rows:      # rows x[i] copied from a sharded tensor's blocks follow their change
        mesh_row_follow.refresh()


def bump_shape_versions(tensors):
    """``bump_versions`` for an in-place change of shape (t_, squeeze_, resize_, ...), which torch
    counts as a change too (an op that saved the tensor then refuses backward)."""
    bump_versions(tensors)
    if SHAPE_WATCHERS:
        watch_shape_change([a for t in tensors for a in _memories(t)])


def shape_changes(t, watcher):
    """How many in-place shape changes of ``t``'s memory ``watcher`` counted."""
    return max((watcher[id(B.memory_owner(a))] for a in _memories(t)), default=0)


def _memories(t):
    return [t._array] if t._placed is None else _distinct_memory(t._placed.shards)


def _distinct_memory(arrays):
    """``arrays`` with one of each group that shares a memory owner (the shards of one buffer)."""
    owners = {id(B.memory_owner(a)): a for a in arrays}
    return list(owners.values())


def _assign(a, v):
    a[...] = v


def _assign_wide(a, v):
    B.setitem(a, Ellipsis, v)


def _check_index_put_dtype(t, index, value):
    """torch's error for a value of another dtype written through index arrays (its ``index_put_``);
    a 0-d integer index is an integer, and one boolean mask with a one-element value is a fill."""
    arrays = [p for p in (index if isinstance(index, tuple) else (index,)) if B.is_array(p) and (p.ndim or B.is_bool(p))]
    if not arrays or (value.numel() == 1 and len(arrays) == 1 and arrays[0].ndim and B.is_bool(arrays[0])):
        return
    raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                       f"{dtypes.torch_type_name(t.dtype.name)} for the destination and "
                       f"{dtypes.torch_type_name(value.dtype.name)} for the source.")


# the dtypes whose item assignment checks a Python number as torch does; float16 and bfloat16
# take an overflowing number as inf there (torch's fill_ and full refuse it)
_CHECKED_WRITES = dtypes.SMALL_INTS | dtypes.WIDE_UINTS | {dtypes.int32, dtypes.int64, dtypes.float32, dtypes.complex64}
_ADDS = frozenset(("add_", "+=", "-="))
_CHECKED_ALPHAS = frozenset((bool, complex))     # alphas torch checks whatever the tensor's dtype
# the Python ints and floats that torch's checked fill writes into these dtypes as they are
# (checked_scalar returns them unchanged): item assignment tests them inline before calling it
_FITS = {dtypes.float32: (-dtypes.FLOAT_MAX["float32"], dtypes.FLOAT_MAX["float32"]),
         dtypes.float64: (-math.inf, math.inf), dtypes.int32: dtypes.INT_RANGES["int32"],
         dtypes.int64: dtypes.INT_RANGES["int64"]}
_IOPS = {"+=": _iadd, "-=": _isub, "*=": _imul, "/=": _idiv}
_IOP_EVENTS = {"+=": "add_", "-=": "sub_", "*=": "mul_", "/=": "div_"}     # torch's ops of the operators


def _put_op(index):
    """torch's op of ``t[index] = value`` (``index`` in engine terms): ``index_put_`` for an index
    tensor (a 0-d integer one reads as an int), else ``copy_`` into the view a basic index picks."""
    return "index_put_" if any(B.is_array(p) and (p.ndim or B.dtype_of(p) is dtypes.bool_)
                               for p in (index if isinstance(index, tuple) else (index,))) else "copy_"


def _set_in_torch_order(t, index, split, value):
    """``t[index] = value`` for integers with index arrays, torch's order (index_order.py): the block
    the integers pick is written in a copy and put back, so no engine needs to return it as a view."""
    block = t[split[0]]
    if t._placed is None and B.write_refusal(block._array) == "overlap":
        block[split[1]] = value         # an expanded block: torch writes into it (with its warning)
        return
    block = block.clone()
    try:
        block[split[1]] = value
    except IndexError as exc:
        raise IndexError(out_of_range(index, t.shape) or str(exc)) from None
    t[split[0]] = block


def _masked_fill(index, value):
    """torch's ``x[mask] = v`` with one bool mask (ints, slices beside it) and a one-element ``v`` is
    ``masked_fill_(mask, v.item())``: ``v`` is read first, with no overlap check (its canDispatchToMaskedFill)."""
    parts = [p for p in (index if isinstance(index, tuple) else (index,)) if isinstance(p, (Tensor, list))]
    return value.numel() == 1 and len(parts) == 1 and isinstance(parts[0], Tensor) and \
        parts[0].dtype is dtypes.bool_ and parts[0].ndim > 0


def _refuse_byte_mask_fill(index, value):
    """torch writes a number (or a 0-d tensor) through ``masked_fill_``, which refuses a uint8
    mask; a tensor of values goes through ``index_put_``, which reads it as a mask (shape.py)."""
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(p, Tensor) and p.dtype is dtypes.uint8 for p in parts) and \
            (not isinstance(value, Tensor) or value.ndim == 0):
        raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with dtype unsigned char "
                           "(gt.uint8): index with a bool mask, e.g. x[mask.bool()] = value")
