"""A jagged nested tensor's views of its dims after the ragged one (``nt[..., i]``, ``select``,
``narrow``, ``split``, ``unflatten``, ``flatten``, ``permute``, ``expand``), ``cat``/``stack``
of one structure, ``where``/``masked_fill``, the in-place ops (``mul_``, ``add_``, ``zero_``,
``copy_``...), ``bmm`` and the ``*_like`` creation functions, each on its ``values`` as gt ops, as
torch 2.13's (the batch and ragged dims refused with torch's errors). Installed on
``NestedTensor`` by ``install()``."""

from gt.nested.jagged_ops import _dims, _operand, view_transposed
from gt.nested.jagged_tensor import NestedBase, NestedTensor, shape_text
from gt.tensor import cat as _cat
from gt.tensor import stack as _stack
from gt.tensor import where as _where


def _inner(self, dim, name):
    """``dim`` as a dim of ``values`` (a dim after the batch dim that is not the ragged one)."""
    d = _dims(self, dim, name)[0]
    if d == 0:
        raise RuntimeError(f"{name}(): not supported for NestedTensor on dim=0")
    if d == self._nt_ragged:
        raise RuntimeError(f"{name}(): not supported for NestedTensor on ragged dim")
    return d


def _shifted(self, d, removed):
    """The ragged dim after ``removed`` dims (negative: added) go before it at dim ``d``."""
    return self._nt_ragged - removed if d < self._nt_ragged else self._nt_ragged


def getitem(self, index):
    """``nt[i]`` (the i-th tensor), ``nt[i, ...]`` (indexing it), or ``nt[..., idx]`` with ints,
    slices and None on the dims after the ragged dim (a nested tensor on the same offsets)."""
    items = index if isinstance(index, tuple) else (index,)
    first = items[0] if items else None
    if isinstance(first, int) and not isinstance(first, bool):
        part = self.unbind()[first]
        return part if len(items) == 1 else part[items[1:]]
    rest = items[1:]
    if first is Ellipsis and all(i is None or isinstance(i, slice) or (isinstance(i, int) and not isinstance(i, bool))
                                 for i in rest):
        if sum(i is not None for i in rest) <= self.dim() - 1 - self._nt_ragged:
            return self._like(self._nt_values[(Ellipsis, *rest)])
    raise RuntimeError(f"slice(): not supported for NestedTensor on dim=0 (gt indexes a jagged NestedTensor by an int, "
                       f"or by ... then ints, slices and None after its ragged dim; got {index!r})")


def select(self, dim, index):
    """The ``index``-th tensor (``dim=0``) or the dim ``dim`` after the ragged one at ``index``."""
    if _dims(self, dim, "select")[0] == 0:
        return self.unbind()[index]
    if self._nt_lengths is not None:
        raise ValueError("select(): not yet supported on dim != 0 for non-contiguous nested tensor with holes")
    d = _inner(self, dim, "select")
    values = self._nt_values.select(d - 1, index)
    return self._like(values, _shifted(self, d, 1), view_transposed(self, values))


def narrow(self, dim, start, length):
    """``length`` entries from ``start`` along a dim that is not the batch or ragged dim (a view)."""
    d = _inner(self, dim, "narrow")
    values = self._nt_values.narrow(d - 1, start, length)
    return self._like(values, transposed=view_transposed(self, values))


def split(self, split_size_or_sections, dim=0):
    """Pieces along a dim that is not the batch or ragged dim, nested tensors on the same offsets."""
    d = _inner(self, dim, "split")
    return tuple(self._like(v) for v in self._nt_values.split(split_size_or_sections, d - 1))


def unflatten(self, dim, sizes):
    """The dim ``dim`` (not the batch or ragged dim) made into ``sizes``."""
    d = _inner(self, dim, "unflatten")
    return self._like(self._nt_values.unflatten(d - 1, sizes), _shifted(self, d, 1 - len(tuple(sizes))))


def flatten(self, start_dim=0, end_dim=-1):
    """Dims ``start_dim``..``end_dim`` made one; none of them the batch or ragged dim."""
    s, e = (_dims(self, d, "flatten")[0] for d in (start_dim, end_dim))
    if s == e:
        return self
    if s == 0:
        raise RuntimeError("flatten(): not supported for NestedTensor on dim=0")
    if s <= self._nt_ragged <= e:
        raise RuntimeError("flatten(): not supported for NestedTensor on ragged dim")
    return self._like(self._nt_values.flatten(s - 1, e - 1), _shifted(self, e, e - s))


def masked_fill(self, mask, value):
    """``value`` where ``mask`` (a nested tensor of the same structure, or a dense one that
    broadcasts as a binary op's operand) is True."""
    return self._like(self._nt_values.masked_fill(_operand(self, mask, "masked_fill"), value))


def where(condition, input, other):
    """``gt.where`` with a nested tensor among its arguments: the others as that one's operands."""
    ref = next(x for x in (input, other, condition) if isinstance(x, NestedTensor))
    cond, a, b = (_operand(ref, x, "where") for x in (condition, input, other))
    return ref._like(_where(cond, a, b))


def _same_structure(tensors, name):
    ref = tensors[0]
    for t in tensors:
        if not isinstance(t, NestedTensor) or t._nt_jint is not ref._nt_jint or t._nt_ragged != ref._nt_ragged \
                or t.dim() != ref.dim():
            raise RuntimeError(f"{name}(): expected all nested tensors to have the same nested structure, got "
                               f"{shape_text(ref)} and {shape_text(t) if isinstance(t, NestedBase) else t.shape}")
    return ref


def cat(tensors, dim=0):
    """``gt.cat`` of nested tensors of one structure along a dim after the ragged one."""
    ref = _same_structure(tensors, "cat")
    d = _inner(ref, dim, "cat")
    return ref._like(_cat([t._nt_values for t in tensors], d - 1), transposed=False)


def stack(tensors, dim=0):
    """``gt.stack`` of nested tensors of one structure, the new dim after the ragged one."""
    ref = _same_structure(tensors, "stack")
    nd = ref.dim() + 1
    if not -nd <= dim < nd:
        raise IndexError(f"stack(): Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got "
                         f"{dim})")
    d = dim % nd
    if d == 0:
        raise RuntimeError("stack(): not supported for NestedTensor on dim=0")
    if d <= ref._nt_ragged:
        raise RuntimeError("stack(): not supported for NestedTensor on ragged dim")
    return ref._like(_stack([t._nt_values for t in tensors], d - 1), transposed=False)


def _inplace(name):
    def method(self, *args, **kwargs):
        args = [_operand(self, a, name.strip("_")) if isinstance(a, NestedBase) or i == 0 else a
                for i, a in enumerate(args)]
        kwargs = {k: _operand(self, a, name.strip("_")) if isinstance(a, NestedBase) else a for k, a in kwargs.items()}
        getattr(self._nt_values, name)(*args, **kwargs)
        return self

    method.__name__ = name
    method.__doc__ = f"``{name}`` of ``values`` in place (an operand: as a binary op's); itself."
    return method


def like(self, make):
    """A new nested tensor of this structure whose values are ``make(values)`` (the ``*_like``
    creation functions): a leaf where they require grad."""
    values = make(self._nt_values)
    out = self._like(values)
    out._nt_leaf = values.requires_grad
    return out


def permute(self, *dims):
    """The dims reordered, the batch dim staying first (the ragged dim may move), as torch's."""
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    nd = self.dim()
    if len(dims) != nd:
        raise RuntimeError(f"permute(): number of dims don't match in permute: {len(dims)} given for {nd} dims")
    order = [_dims(self, d, "permute")[0] for d in dims]
    if order[0] != 0:
        raise ValueError("Permute is not supported on the batch dimension for jagged NT")
    values = self._nt_values.permute(*(d - 1 for d in order[1:]))
    return self._like(values, order.index(self._nt_ragged), not values.is_contiguous())


def expand(self, *sizes):
    """Dims of size 1 after the ragged one broadcast to ``sizes`` (the batch and ragged dims: -1 or
    their own sizes), a view, as torch's."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    own = self.shape
    if len(sizes) != len(own) or any(s not in (-1, o) for s, o in zip(sizes[:self._nt_ragged + 1], own)):
        raise RuntimeError(f"expand(): cannot expand {shape_text(self)} to {list(sizes)}: the batch and ragged dims "
                           "must stay (-1 or their sizes)")
    r = self._nt_ragged
    values = self._nt_values.expand(*sizes[1:r], -1, *sizes[r + 1:])
    return self._like(values, transposed=not values.is_contiguous())


def bmm(self, other):
    """``self @ other`` for a 3-d nested ``self`` and a 3-d ``other`` (torch's ``bmm``)."""
    if self.dim() != 3 or getattr(other, "ndim", 0) != 3:
        raise ValueError(f"bmm(): self and mat2 must be 3D, got {shape_text(self)} and "
                         f"{shape_text(other) if isinstance(other, NestedBase) else getattr(other, 'shape', other)}")
    return self @ other


def type_as(self, other):
    """Itself in ``other``'s dtype."""
    return self.to(other.dtype)


def is_same_size(self, other):
    """Whether ``other`` is a nested tensor of this one's sizes (its nested int included)."""
    return isinstance(other, NestedBase) and other.layout == self.layout and other.shape == self.shape


def expand_as(self, other):
    """Itself, where ``other`` has its sizes (torch 2.13's only nested form)."""
    if not is_same_size(self, other):
        raise RuntimeError(f"expand_as(): cannot expand {shape_text(self)} as "
                           f"{shape_text(other) if isinstance(other, NestedBase) else tuple(other.shape)}")
    return self


INPLACE = ("add_", "sub_", "mul_", "div_", "copy_", "zero_", "fill_", "clamp_", "masked_fill_", "pow_", "neg_",
           "exp_", "sqrt_", "relu_", "sigmoid_", "tanh_")


def install():
    """The methods above on ``NestedTensor``."""
    methods = {name: _inplace(name) for name in INPLACE}
    methods.update(__getitem__=getitem, select=select, narrow=narrow, split=split, unflatten=unflatten,
                   flatten=flatten, masked_fill=masked_fill, _map_values=like, type_as=type_as,
                   is_same_size=is_same_size, expand_as=expand_as, permute=permute, expand=expand, bmm=bmm)
    for name, method in methods.items():
        setattr(NestedTensor, name, method)
