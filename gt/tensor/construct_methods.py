"""torch's shape methods that gt composes from its own differentiable ops: ``tensor_split``,
``diagonal``, ``unfold`` (sliding windows), ``repeat_interleave``, ``select``, ``diff``, ``kron``,
``inner``, ``sum_to_size``, ``nelement``, ``ndimension``. Values, dtypes and gradients are torch's
(tests/test_construct_functions.py runs each beside torch); the gradients come from the ops
they are built of (slicing, indexing, reshape, cat, sum).

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import functools

from gt import dtypes
from gt.backend import B
from gt.ops import shape as shape_ops
from gt.ops._shapes import normalize_axis, numel
from gt.tensor.arithmetic import _operand
from gt.tensor import inplace_grad, mesh_row_follow
from gt.tensor.index_methods import searchsorted
from gt.tensor.promotion import promote_types
from gt.tensor.shape import _named
from gt.tensor.strided_methods import copy_not_view, strided_view, tracked

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py


def _along(dim, key):
    """An index that applies ``key`` to axis ``dim`` and takes every other axis whole."""
    return (slice(None),) * dim + (key,)


def _arange(n, step=1):
    """``0, step, 2 * step, ...`` (``n`` of them), int64: positions to index with."""
    return Tensor._wrap(B.arange(0, n * step, step, dtypes.int64)) if n else Tensor._wrap(B.zeros((0,), dtypes.int64))


def _own_memory(out, maybe_view=True):
    """``out`` in memory of its own: torch's flip, roll, repeat, diag... always copy, where slicing
    or reshaping here can hand back a view of the input (or the input itself) that a write through
    the result would change. ``maybe_view=False``: a row-major ``out`` is known to be a copy."""
    if not out.is_contiguous():
        return out.contiguous()
    # an empty result of reshaping a broadcast stays numpy's read-only view of it: torch's is writable
    return out.clone() if maybe_view or not out.numel() else out


def promoted(tensors):
    """The tensors in one dtype, torch's promotion of them all (the widest; floats over ints;
    float16 with bfloat16 gives float32)."""
    target = functools.reduce(promote_types, (t.dtype for t in tensors))
    return [t if t.dtype == target else t.to(target) for t in tensors]


def _tensor(value, name):
    value = _operand(value, name)
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}(): argument 'other' must be a tensor, not {type(value).__name__} ({value!r})")
    return value


def _int_tensor(value, name):
    value = _operand(value, name)
    if not isinstance(value, Tensor) or value.dtype.is_floating_point or value.dtype == dtypes.bool_:
        raise RuntimeError(f"{name}: expected an integer tensor, got {getattr(value, 'dtype', value)!r}")
    return value


class ConstructMethods:
    __slots__ = ()

    def nelement(self):
        """The number of elements (torch's older name for ``numel``)."""
        return numel(self.shape)

    def ndimension(self):
        """The number of dims (torch's older name for ``dim``)."""
        return self.ndim

    def select(self, dim, index):
        """The slice at position ``index`` of axis ``dim``, that axis removed: ``x[:, index]`` for
        ``dim=1``. A view, as torch's; negative ``dim`` and ``index`` count from the end."""
        if self.ndim == 0:
            raise IndexError("select() cannot be applied to a 0-dim tensor.")
        dim = normalize_axis(dim, self.ndim, "select")
        n = self.shape[dim]
        if not -n <= index < n:
            raise IndexError(f"select(): index {index} out of range for tensor of size {list(self.shape)} "
                             f"at dimension {dim}")
        return self[_along(dim, index % n)]

    def tensor_split(self, indices_or_sections, dim=0):
        """Views of this tensor split along ``dim``: into ``n`` parts when given an int (the first
        ``size % n`` one element longer, as ``numpy.array_split``), or at the positions of a list
        of indices (``[2, 5]``: ``x[:2], x[2:5], x[5:]``, clamped like slices). A 0-d integer tensor
        counts as ``n``, a 1-d one as indices."""
        if self.ndim == 0:
            raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
        dim = normalize_axis(dim, self.ndim, "tensor_split")
        if isinstance(indices_or_sections, bool):       # not read as 1 section: torch's TypeError
            raise TypeError(f"tensor_split(): indices_or_sections must be an int, a sequence of ints or a tensor, "
                            f"not bool ({indices_or_sections!r})")
        if isinstance(indices_or_sections, Tensor):
            if indices_or_sections.dtype.is_floating_point or indices_or_sections.ndim > 1:
                raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
                                   f"one-dimensional integer tensor, but got shape {indices_or_sections.shape} and "
                                   f"dtype {indices_or_sections.dtype!r}")
            indices_or_sections = indices_or_sections.tolist()
        n = self.shape[dim]
        if hasattr(indices_or_sections, "__index__"):    # an int (numpy's too): the number of parts
            indices_or_sections = int(indices_or_sections)
            if indices_or_sections <= 0:
                raise RuntimeError(f"number of sections must be larger than 0, got {indices_or_sections}")
            q, r = divmod(n, indices_or_sections)
            sizes = [q + 1] * r + [q] * (indices_or_sections - r)
            ends = [sum(sizes[:i + 1]) for i in range(len(sizes))]
            bounds = list(zip([0] + ends[:-1], ends))
        else:
            cuts = [int(i) for i in indices_or_sections]
            bounds = list(zip([0] + cuts, cuts + [None]))
        return tuple(self[_along(dim, slice(a, b))] for a, b in bounds)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        """The diagonal of the planes spanned by ``dim1`` and ``dim2`` (above it for ``offset > 0``,
        below for ``offset < 0``), as a new last axis with those two removed, as torch's.

        A view, as torch's (``x.diagonal().fill_(0)`` changes ``x``); of a sharded tensor, a copy
        (a strided slice of the flattened planes)."""
        if self.ndim < 2:
            raise RuntimeError(f"diagonal(): expected a tensor of at least 2 dims, got {self.ndim}")
        d1 = normalize_axis(dim1, self.ndim, "diagonal")
        d2 = normalize_axis(dim2, self.ndim, "diagonal")
        if d1 == d2:
            raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        if self._placed is None:
            return shape_ops.Diagonal.apply(self, offset, d1, d2)
        x = self.movedim((d1, d2), (-2, -1))
        n, m = x.shape[-2:]
        if offset >= 0:
            k, start = max(0, min(n, m - offset)), offset
        else:
            k, start = max(0, min(n + offset, m)), -offset * m
        flat = x.reshape(*x.shape[:-2], n * m)      # batch, n * m
        out = flat[..., 0:0] if k == 0 else flat[..., start:start + (k - 1) * (m + 1) + 1:m + 1]
        if flat._placed is None:     # gathered to one device: a change of it in place would not reach this tensor
            inplace_grad.mark_copy_of_shard_row(out, (
                "a diagonal of a tensor sharded over the mesh across its blocks, which gt makes as a copy gathered to "
                "one device, so changing it in place would leave that tensor unchanged; write into that tensor "
                "instead (x.diagonal_scatter(...) or x[index] = new values), or change a copy made on purpose "
                "(d.clone())"))
            mesh_row_follow.keep_copy(out, self, lambda: self.diagonal(offset, dim1, dim2))     # follows changes
        return _named(out, self, "DiagonalBackward0")

    def unfold(self, dimension, size, step):
        """Every window of ``size`` elements along ``dimension``, ``step`` apart: that axis becomes
        the window count ``(n - size) // step + 1`` and a new last axis of ``size`` is added
        (torch's ``Tensor.unfold``). A strided view, as torch's (gt/tensor/strided_methods.py);
        a differentiable copy of the windows for sharded, bfloat16 and GPU tensors. Overlapping
        windows add up in the backward."""
        x = self.reshape(1) if self.ndim == 0 else self
        dim = normalize_axis(dimension, x.ndim, "unfold")
        n = x.shape[dim]
        if size > n or size < 0:
            raise RuntimeError(f"maximum size for tensor at dimension {dim} is {n} but size is {size}")
        if step <= 0:
            raise RuntimeError(f"step is {step} but must be > 0")
        count = (n - size) // step + 1
        if self._placed is None:
            shape, strides = list(x.shape), list(x.stride())
            shape[dim], strides[dim] = count, strides[dim] * step
            if self.ndim == 0:            # torch's: (size,), no axis of windows
                shape, strides = [], []
            view = strided_view(self, (*shape, size), (*strides, x.stride(dim)), name="UnfoldBackward0")
            if view is not None:
                return view
        starts = _arange(count, step).reshape(count, 1)
        index = starts + _arange(size).reshape(1, size)   # count, size
        windows = x.movedim(dim, -1)[..., index]                          # ..., count, size
        out = windows.movedim(-2, dim)
        out = _named(out.reshape(size) if self.ndim == 0 else out, self, "UnfoldBackward0")
        return out if tracked(self) else copy_not_view(out, "unfold", self, lambda: self.unfold(dimension, size, step))

    def repeat_interleave(self, repeats=None, dim=None, *, output_size=None):
        """Each element repeated ``repeats`` times in place (``[1, 2]`` -> ``[1, 1, 2, 2]``), along
        ``dim`` or over the flattened tensor when ``dim`` is None. ``repeats`` is an int or a
        tensor with one count per element of ``dim``; ``output_size``, if given, must be the total.
        Differentiable (the repeats' gradients add up)."""
        x = self.reshape(-1) if dim is None else self
        dim = 0 if dim is None else normalize_axis(dim, x.ndim, "repeat_interleave")
        n = x.shape[dim]
        if isinstance(repeats, Tensor) and repeats.numel() == 1 and repeats.ndim <= 1:
            repeats = _int_tensor(repeats, "repeat_interleave").item()
        if isinstance(repeats, int):
            if repeats < 0:
                raise RuntimeError("Repeats must be non-negative")
            total = n * repeats
            _check_output_size(output_size, total)
            shape = list(x.shape)
            wide = x.unsqueeze(dim + 1).expand(*shape[:dim + 1], repeats, *shape[dim + 1:])
            return _own_memory(wide.reshape(*shape[:dim], total, *shape[dim + 1:]), repeats == 1)
        repeats = _int_tensor(repeats, "repeat_interleave")
        if repeats.ndim != 1 or repeats.shape[0] != n:
            raise RuntimeError(f"repeats must have the same size as input along dim, but got repeats.size(0) = "
                               f"{repeats.shape[0] if repeats.ndim else repeats.numel()} and input.size({dim}) = {n}")
        if n and bool((repeats < 0).any()):
            raise RuntimeError("repeats can not be negative")
        ends = repeats.cumsum(0)
        total = int(ends[-1].item()) if n else 0
        _check_output_size(output_size, total)
        # output position j takes the element whose block [end[i-1], end[i]) holds j
        index = searchsorted(ends, _arange(total), right=True)
        return x.index_select(dim, index)

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        """The ``n``-th forward difference ``x[i+1] - x[i]`` along ``dim``, after joining ``prepend``
        and ``append`` (tensors shaped like this one off ``dim``) at its ends. Booleans give
        ``x[i+1] != x[i]`` as in torch; integers stay integers."""
        if self.ndim == 0:
            raise RuntimeError("diff expects input to be at least one-dimensional")
        if n < 0:
            raise RuntimeError(f"order must be non-negative but got {n}")
        dim = normalize_axis(dim, self.ndim, "diff")
        parts = promoted([_operand(p, "diff") for p in (prepend, self, append) if p is not None])
        if any(not isinstance(p, Tensor) or p.ndim != self.ndim for p in parts):
            raise RuntimeError("diff expects prepend or append to be the same dimension as input")
        if n == 0:      # torch ignores prepend/append when there is nothing to difference
            return self.clone()
        x = parts[0] if len(parts) == 1 else shape_ops.Cat.apply(*parts, axis=dim)
        for _ in range(n):
            length = max(x.shape[dim] - 1, 0)
            later, earlier = x[_along(dim, slice(1, 1 + length))], x[_along(dim, slice(0, length))]
            x = later != earlier if x.dtype == dtypes.bool_ else later - earlier
        return x

    def kron(self, other):
        """The Kronecker product: block ``(i, j, ...)`` of the result is ``self[i, j, ...] * other``;
        the shorter shape is padded with leading 1s; the result's shape is the product of the two."""
        other = _tensor(other, "kron")
        nd = max(self.ndim, other.ndim)
        sa, sb = (1,) * (nd - self.ndim) + self.shape, (1,) * (nd - other.ndim) + other.shape
        # interleave the axes: self as (a0, 1, a1, 1, ...), other as (1, b0, 1, b1, ...)
        wide = self.reshape(*[v for n in sa for v in (n, 1)]) * other.reshape(*[v for n in sb for v in (1, n)])
        return wide.reshape(*[x * y for x, y in zip(sa, sb)])

    def inner(self, other):
        """The sum of products over the last dim of each (``self * other`` when one is 0-d): shape
        ``self.shape[:-1] + other.shape[:-1]``; one matmul of the two flattened to matrices."""
        other = _tensor(other, "inner")
        if self.ndim == 0 or other.ndim == 0:
            return self * other
        if self.shape[-1] != other.shape[-1]:
            raise RuntimeError(f"inner() the last dimension must match on both input tensors but got shapes "
                               f"{list(self.shape)} and {list(other.shape)}")
        if self.dtype is not other.dtype:       # torch's tensordot: a product keeps one dtype
            raise RuntimeError(f"both inputs should have same dtype (inner of {self.dtype} and {other.dtype})")
        a, b = promoted([self, other])
        n = a.shape[-1]
        return (a.reshape(-1, n) @ b.reshape(-1, n).T).reshape(*a.shape[:-1], *b.shape[:-1])

    def sum_to_size(self, *size):
        """This tensor summed down to ``size``, which it must be expandable from (each of its
        trailing dims equal or 1): the gradient of ``expand`` in reverse, as torch's."""
        if len(size) == 1 and not isinstance(size[0], int):
            size = tuple(size[0])
        size = tuple(int(s) for s in size)
        if not size:                # torch sums everything for an empty size (a bool tensor gives int64)
            return self.sum()
        lead = self.ndim - len(size)
        if lead < 0 or any(s != 1 and s != n for s, n in zip(size, self.shape[lead:])):
            raise RuntimeError(f"size {{{list(size)}}} is not expandable to size {{{list(self.shape)}}}.")
        out = self.sum(tuple(range(lead))) if lead else self
        dims = tuple(i for i, (s, n) in enumerate(zip(size, out.shape)) if s == 1 and n != 1)
        return out.sum(dims, keepdim=True) if dims else out


def _check_output_size(output_size, total):
    if output_size is not None and output_size != total:
        raise RuntimeError(f"repeat_interleave: Invalid output_size, expected {total} but got {output_size}")
