"""Shape methods of a tensor: reshape, permute, expand, split, indexing (the ops of gt/ops/shape.py).

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import functools
import numbers
import operator
import warnings

from gt import dtypes
from gt.tensor._args import _pick, _varargs
from gt.autograd import inference_saved
from gt.backend import B
from gt.tensor import checks
from gt.tensor.index_order import torch_index, torch_order
from gt.tensor.linalg_base import ShapeError
from gt.ops import shape as shape_ops
from gt.ops._shapes import normalize_axes, normalize_axis, numel, view_strides
from gt.sharding.layout import logical_strides

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py


def _restride(out, strides):
    """``out`` (a view of no elements just made) given torch's ``strides``, where gt keeps them."""
    if out._placed is None and B.element_strides(out._array) != strides:
        out._array = B.with_strides(out._array, strides)


def _named(out, source, torch_name):
    """``out`` with its node named as torch names the op that made it (``grad_fn.name()``,
    ``repr``), where one gt op stands for several of torch's."""
    ctx = out._ctx
    if out is source or ctx is None:
        return out
    if hasattr(ctx, "__dict__"):       # beside a class's name that reads the inputs (a property)
        ctx.__dict__["_torch_name"] = torch_name
    elif hasattr(type(ctx), "_torch_name"):     # a sharded op's node or a layout change: a slot
        ctx._torch_name = torch_name
    return out


def torch_node_name(torch_name):
    """Decorator for an op gt composes of others: the node of its result (of each tensor of a
    tuple result, as torch's one node gives ``values`` and ``indices``) named ``torch_name``, the
    node torch records for the op. The first argument is the op's input (a result that is that
    input itself keeps its node)."""
    def decorate(fn):
        @functools.wraps(fn)
        def named(source, *args, **kwargs):
            out = fn(source, *args, **kwargs)
            if isinstance(out, tuple):
                for part in out:
                    if isinstance(part, Tensor):
                        _named(part, source, torch_name)
                return out
            return _named(out, source, torch_name)
        return named
    return decorate


def expand_error(shape, target, sizes=None):
    """torch's error for ``shape`` that does not expand to ``target`` (the last axis that
    differs, as torch's check runs from the end; ``sizes``: as asked, -1s kept), or None."""
    lead = len(target) - len(shape)
    for i in reversed(range(len(shape))):
        if shape[i] != 1 and shape[i] != target[i + lead]:
            return ShapeError(f"The expanded size of the tensor ({(sizes or target)[i + lead]}) must match the existing "
                              f"size ({shape[i]}) at non-singleton dimension {i + lead}.  Target sizes: "
                              f"{list(sizes or target)}.  Tensor sizes: {list(shape)}")
    return None


class ShapeMethods:
    __slots__ = ()

    def reshape(self, *sizes, shape=None):
        """A tensor with the same data in a new shape (a view where possible); one entry may be -1.
        The shape as several ints, one tuple, or ``shape=`` (torch's keyword)."""
        target = _infer_shape("reshape", self.shape, _shape_args(sizes if shape is None else (shape,)))
        # the same shape too: a new tensor (a view, on the tape), never ``self``, as torch's
        return shape_ops.Reshape.apply(self, target)

    def view(self, *sizes, size=None, dtype=None):
        """``view(*shape)``: this tensor's memory in a new shape (torch's keyword ``size=`` too); torch's
        RuntimeError where its strides cannot give that shape (torch's ``computeStride``: only dims
        lying next to each other in memory join), where ``reshape`` would copy. A sharded tensor's
        view is a copy, refused where one device's would be. ``view(dtype)``: the same
        memory read as ``dtype``, bit for bit (float32 <-> int32, float64 <-> int64); into a
        dtype of another width the last dim scales (float32 (2, 4) as float16 is (2, 8)) and
        must be contiguous. The result shares memory with this tensor and records no gradient,
        as torch's."""
        if dtype is None and len(sizes) == 1 and isinstance(sizes[0], dtypes.DType):
            dtype, sizes = sizes[0], ()
        if dtype is None:
            if self._placed is not None or not B.is_contiguous(self._array):
                # reshape would copy where no view exists, and writes through the "view" would then
                # not reach this tensor: refused as torch's. A sharded tensor's view is a copy
                # either way, but is refused where one device's would be, by its logical strides
                target = _infer_shape("view", self.shape, _shape_args(sizes if size is None else (size,)))
                strides = self.stride() if self._placed is None else logical_strides(self._placed)
                if strides is not None and view_strides(self.shape, strides, target) is None:
                    raise RuntimeError(f"view size is not compatible with input tensor's size and stride (at least "
                                       f"one dimension spans across two contiguous subspaces): shape "
                                       f"{tuple(self.shape)}, strides {tuple(strides)}, view {target}. Use "
                                       ".reshape(...) instead.")
            return self.reshape(*sizes, shape=size)
        if sizes or size is not None:
            raise TypeError("view(): pass either a shape or a dtype, not both")
        return self._view_as_dtype(dtypes.to_dtype(dtype))   # bitwise_methods.py: bits read anew

    def view_as(self, other):
        """``view(other.shape)``: refused where no view of this tensor's memory has that shape."""
        return self.view(other.shape)

    def reshape_as(self, other):
        """``reshape(other.shape)`` (a view where possible, else a copy)."""
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s = normalize_axis(start_dim, self.ndim, "flatten")
        e = normalize_axis(end_dim, self.ndim, "flatten")
        if s > e:
            raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
        if s == e:
            return self                  # nothing to join: torch's flatten gives the tensor itself
        # the joined size, not -1, which a tensor of 0 elements cannot infer: (0, 3, 4) -> (0, 12)
        return self.reshape(self.shape[:s] + (numel(self.shape[s:e + 1]),) + self.shape[e + 1:])

    def permute(self, *axes, dims=None):
        axes = _shape_args(axes if dims is None else (dims,))
        if sorted(normalize_axis(a, self.ndim, "permute") for a in axes) != list(range(self.ndim)):
            raise ShapeError(f"permute: {axes} is not a permutation of the {self.ndim} axes of shape {self.shape}")
        axes = tuple(normalize_axis(a, self.ndim, "permute") for a in axes)
        return shape_ops.Permute.apply(self, axes)

    def transpose(self, dim0=-2, dim1=-1):
        """Swap axes ``dim0`` and ``dim1`` (with no arguments: the last two)."""
        a, b = dim0, dim1
        if self.ndim < 2 and (a, b) == (-2, -1):
            return self
        if self.ndim == 0:      # torch takes dims 0 and -1 of a 0-d tensor (as of a 1-d one)
            normalize_axis(a, 1, "transpose"), normalize_axis(b, 1, "transpose")
            return self
        axes = list(range(self.ndim))
        a, b = normalize_axis(a, self.ndim, "transpose"), normalize_axis(b, self.ndim, "transpose")
        axes[a], axes[b] = axes[b], axes[a]
        return _named(shape_ops.Permute.apply(self, tuple(axes)), self, "TransposeBackward0")

    def unsqueeze(self, axis=None, *, dim=None):
        axis = _pick(axis, dim)
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise TypeError(f"unsqueeze: axis must be an int, got {axis!r}")
        if not -self.ndim - 1 <= axis <= self.ndim:
            raise IndexError(f"unsqueeze: axis {axis} is out of range for a tensor with {self.ndim} dimension(s)")
        axis = axis % (self.ndim + 1)
        out = _named(self.reshape(self.shape[:axis] + (1,) + self.shape[axis:]), self, "UnsqueezeBackward0")
        if 0 in self.shape:     # reshape lays an empty tensor out row-major; torch's unsqueeze keeps its strides
            st = self.stride()
            _restride(out, st[:axis] + (self.shape[axis] * st[axis] if axis < self.ndim else 1,) + st[axis:])
        return out

    def squeeze(self, *dims, axis=None, dim=None):
        """Drop size-1 axes (all of them, or only those given: ``squeeze(0)``, ``squeeze((0, 2))``,
        ``squeeze(0, 2)``; an axis of another size is left as is, like torch)."""
        given = _varargs(dims, "squeeze")
        axes = normalize_axes(_pick(_pick(given, axis, "dims"), dim), self.ndim, "squeeze")
        kept = [i for i, n in enumerate(self.shape) if n != 1 or (axes is not None and i not in axes)]
        # torch's nodes: SqueezeBackward0 for all dims, 1 for one dim, 2 for a tuple of dims
        form = 0 if axes is None else 2 if isinstance(_pick(_pick(given, axis, "dims"), dim), (tuple, list)) else 1
        out = _named(self.reshape(tuple(self.shape[i] for i in kept)), self, f"SqueezeBackward{form}")
        if 0 in self.shape and out is not self:     # (unsqueeze's reason)
            st = self.stride()
            _restride(out, tuple(st[i] for i in kept))
        return out

    def expand(self, *sizes, size=None):
        """Broadcast to a larger shape without copying; -1 keeps an axis's size (``size=``: torch's keyword)."""
        sizes = _shape_args(sizes if size is None else (size,))
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ShapeError(f"expand(torch.{dtypes.torch_type_name(self.dtype.name)}Tensor{{{list(self.shape)}}}, "
                             f"size={list(sizes)}): the number of sizes provided ({len(sizes)}) must be greater or "
                             f"equal to the number of dimensions in the tensor ({self.ndim})")
        if any(s < 0 for s in sizes[:lead]):
            raise ShapeError(f"The expanded size of the tensor (-1) isn't allowed in a leading, non-existing "
                             f"dimension {next(i for i, s in enumerate(sizes) if s < 0)}")
        target = tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
        if (error := expand_error(self.shape, target, sizes)) is not None:
            raise error
        if target == self.shape:         # a new, writable view (never ``self``), as torch's
            return _named(shape_ops.Reshape.apply(self, target), self, "ExpandBackward0")
        return shape_ops.Expand.apply(self, target)

    def expand_as(self, other):
        return self.expand(*other.shape)

    def split(self, split_size, axis=None, *, dim=None):
        """Pieces of ``split_size`` along ``axis`` (the last may be smaller), or of the sizes in a list."""
        if not self.ndim:       # torch's error (normalize_axis would take a 0-d tensor's dim 0)
            raise ShapeError("split expects at least a 1-dimensional tensor")
        axis = normalize_axis(_pick(axis, dim, default=0), self.ndim, "split")
        n = self.shape[axis]
        if isinstance(split_size, int):
            if split_size < 0 or (split_size == 0 and n):
                raise ShapeError(f"split: split_size must be positive (0 only for an empty dim), got {split_size}")
            sizes = [min(split_size, n - s) for s in range(0, n, split_size)] if n else [0]    # torch: one empty piece
        else:
            sizes = list(split_size)
            if sum(sizes) != n:
                raise ShapeError(f"split: sizes {sizes} add up to {sum(sizes)}, but axis {axis} has size {n}")
        return self._pieces(sizes, axis, "SplitBackward0" if isinstance(split_size, int) else "SplitWithSizesBackward0")

    def _pieces(self, sizes, axis, torch_name):
        """Slices of ``sizes`` along ``axis``, their nodes named as torch's op that made them
        (``SplitBackward0``; gt slices each piece apart)."""
        out, start = [], 0
        for size in sizes:
            index = (slice(None),) * axis + (slice(start, start + size),)
            out.append(_named(self[index], self, torch_name))
            start += size
        return tuple(out)

    def chunk(self, chunks, axis=None, *, dim=None):
        """Split into ``chunks`` pieces of ``ceil(size / chunks)`` (fewer if the axis is short), like torch."""
        if chunks <= 0:
            raise ShapeError(f"chunk: chunks must be positive, got {chunks}")
        if not self.ndim:
            raise ShapeError("chunk expects at least a 1-dimensional tensor")
        axis = normalize_axis(_pick(axis, dim, default=0), self.ndim, "chunk")
        n = self.shape[axis]
        return self.split(max(-(-n // chunks), 1) if n else [0] * chunks, axis)    # torch: `chunks` empty pieces

    def __getitem__(self, index):
        if inference_saved.made[0]:     # (false until an inference tensor is made)
            inference_saved.refuse_index(self, index)
        index = torch_index(_index(index), self.shape)
        split = torch_order(index)
        if split is not None:            # integers with index arrays: torch's order (index_order.py)
            try:
                return self[split[0]][split[1]]
            except IndexError as exc:    # said of this tensor's axes, not of the block's
                raise IndexError(out_of_range(index, self.shape) or str(exc)) from None
        if checks.deferred():
            index = _guard_arrays(index, self.shape)
        try:
            return shape_ops.GetItem.apply(self, index)
        except IndexError as exc:
            raise IndexError(index_error_text(exc, self.shape)) from None


def _index(index):
    """Tensors and lists inside an index become engine arrays (gathers and boolean masks)."""
    if isinstance(index, list) and _sequence_as_tuple(index):
        warnings.warn("Using a non-tuple sequence for multidimensional indexing is deprecated (torch's "
                      "warning too); use x[tuple(seq)] instead of x[seq]", UserWarning, stacklevel=3)
        index = tuple(index)
    if isinstance(index, tuple):
        return tuple(_index_part(p) for p in index)
    return _index_part(index)


def _sequence_as_tuple(index):
    """torch's legacy rule (numpy's of old): a list index shorter than 32 that holds a sequence, a
    tensor, a slice, ``...`` or None is a tuple of indices, ``x[[[0, 1], [2, 3]]]`` is ``x[[0, 1], [2, 3]]``."""
    return len(index) < 32 and any(
        p is None or p is Ellipsis or isinstance(p, (Tensor, list, tuple, slice, range)) or B.is_array(p)
        or (hasattr(p, "__array__") and hasattr(p, "__len__")) for p in index)


def _guard_arrays(index, shape):
    """On a GPU: each integer index array checked against its axis as torch's CPU kernels do
    (queued until the next host read, gt/tensor/checks.py) and clamped into range, so that a bad
    index never reaches CUDA's kernel (whose device-side assert would lose the GPU for good)."""
    parts = index if isinstance(index, tuple) else (index,)
    out, axis = [], 0
    for p in parts:
        if p is Ellipsis:
            axis += len(shape) - sum(map(_axes_taken, parts))
        elif B.is_array(p) and not B.is_bool(p) and axis < len(shape) and B.numel(p):
            p = _guarded(Tensor._wrap(p), axis, shape)._data
        axis += _axes_taken(p)
        out.append(p)
    return tuple(out) if isinstance(index, tuple) else out[0]


def out_of_range(index, shape):
    """The IndexError text for the first index array of ``index`` holding a value outside its
    axis of ``shape``, or None."""
    parts = index if isinstance(index, tuple) else (index,)
    axis = 0
    for p in parts:
        if p is Ellipsis:
            axis += len(shape) - sum(map(_axes_taken, parts))
            continue
        if B.is_array(p) and not B.is_bool(p) and axis < len(shape) and B.numel(p):
            n, low, high = shape[axis], int(p.min()), int(p.max())
            if high >= n or low < -n:
                bad = high if high >= n else low
                return index_error_text(f"index {bad} is out of bounds for dimension {axis} with size {n}", shape)
        axis += _axes_taken(p)
    return None


def _axes_taken(part):
    """The axes of the indexed tensor that one part of an index walks past: none for ``None`` and
    ``...`` (counted apart), a boolean mask's own, one for anything else."""
    if part is None or part is Ellipsis:
        return 0
    return len(part.shape) if B.is_array(part) and B.is_bool(part) else 1


def index_error_text(exc, shape):
    """An engine's IndexError in torch's words ("dimension", numpy says "axis"), with the shape."""
    return f"{str(exc).replace(' for axis ', ' for dimension ', 1)} (tensor of shape {shape})"


def _guarded(idx, axis, shape):
    n = shape[axis]
    return checks.require_within(idx, -n, n - 1, IndexError, lambda bad: index_error_text(
        f"index {bad} is out of bounds for dimension {axis} with size {n}", shape))


def _index_part(part):
    if isinstance(part, Tensor):
        return _small_int_index(part._data) if part.ndim else _zero_d(part._data)
    if isinstance(part, slice) and part.step is not None and part.step < 0:
        raise ValueError("step must be greater than zero")   # torch's words; flip() reverses
    if isinstance(part, list):
        arr = B.asarray(part) if part else B.zeros((0,), dtypes.int64)  # [] selects nothing, as numpy
        if B.dtype_of(arr).is_floating_point and not B.numel(arr):     # [[], []] too: positions, not floats
            return B.zeros(tuple(arr.shape), dtypes.int64)
        return arr
    if hasattr(part, "__array__") and not B.is_array(part):     # (numpy's scalars too; Python's ints never)
        if isinstance(part, numbers.Integral):
            return operator.index(part)        # np.int64(3) is 3: a view, as torch's (a gathered copy before)
        if type(part).__name__ == "bool" and type(part).__module__ == "numpy":
            raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
                             "valid indices (got numpy.bool)")   # torch's words: neither an int nor a mask
        part = B.asarray(part)   # a numpy index array on the torch engine
    if B.is_array(part):
        return _small_int_index(part) if len(part.shape) else _zero_d(part)
    return part


def _zero_d(arr):
    """A 0-d index, read as torch reads it: of an integer dtype (other than uint8), the integer it
    holds, so ``x[t]`` is a view as ``x[3]`` is (a gathered copy before: writes into it, and changes
    of ``x`` after it, went unseen); a uint8 or bool one, a mask; any other, the engine's error."""
    dtype = B.dtype_of(arr)
    if dtype is dtypes.bool_ or dtype is dtypes.uint8 or dtype.is_floating_point or dtype.is_complex:
        return _small_int_index(arr)
    return int(arr)


def _small_int_index(arr):
    """torch's reading of a uint8 index: a mask (non-zero selects), with its deprecation warning;
    int8 and int16 indices are its IndexError. numpy would take all three as positions."""
    dtype = B.dtype_of(arr)
    if dtype is not dtypes.uint8 and dtype is not dtypes.int8 and dtype is not dtypes.int16:
        return arr
    if dtype == dtypes.uint8:
        warnings.warn("indexing with dtype gt.uint8 is now deprecated, please use a dtype gt.bool instead.",
                      UserWarning, stacklevel=4)
        return arr != 0
    raise IndexError(f"tensors used as indices must be long, int, byte or bool tensors, got {dtype!r}")


def _shape_args(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    shape = tuple(args)
    for s in shape:
        if isinstance(s, bool) or not hasattr(s, "__index__"):
            raise TypeError(f"shape entries must be ints, got {s!r} in {shape}")
    return tuple(s.__index__() for s in shape)  # numpy integers (np.prod(...)) become plain ints


def _infer_shape(op, current, target):
    total = numel(current)
    if target.count(-1) > 1:
        raise ShapeError(f"{op}: only one dimension can be -1, got {target}")
    if any(s < -1 for s in target):
        raise ShapeError(f"{op}: invalid shape {target}")
    if -1 in target:
        known = numel(s for s in target if s != -1)
        if known == 0 == total:      # torch's RuntimeError too (ShapeError is both)
            raise ShapeError(f"{op}: cannot reshape tensor of {total} elements into shape {list(target)} because the "
                             f"unspecified dimension size -1 can be any value and is ambiguous")
        if known == 0 or total % known:
            raise ShapeError(f"{op}: shape '{list(target)}' is invalid for input of size {total} (cannot reshape "
                             f"tensor of shape {current} into {target})")
        target = tuple(total // known if s == -1 else s for s in target)
    if numel(target) != total:
        raise ShapeError(
            f"{op}: cannot reshape tensor of shape {current} ({total} elements) into {target} ({numel(target)} elements)"
        )
    return target
