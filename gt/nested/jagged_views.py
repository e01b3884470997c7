"""A jagged nested tensor's views of its dims after the ragged one (``nt[..., i]``, ``select``,
``narrow``, ``split``, ``unflatten``, ``flatten``), ``masked_fill``, the in-place ops
(``mul_``, ``add_``, ``zero_``, ``copy_``...) and the ``*_like`` creation functions, each on its
``values`` as gt ops, as torch 2.13's (the batch and ragged dims refused with torch's errors).
Installed on ``NestedTensor`` by ``install()``."""

from gt.nested.jagged_ops import _dims, _operand
from gt.nested.jagged_tensor import NestedBase, NestedTensor
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
    d = _inner(self, dim, "select")
    return self._like(self._nt_values.select(d - 1, index), _shifted(self, d, 1))


def narrow(self, dim, start, length):
    """``length`` entries from ``start`` along a dim that is not the batch or ragged dim (a view)."""
    d = _inner(self, dim, "narrow")
    return self._like(self._nt_values.narrow(d - 1, start, length))


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


def _inplace(name):
    def method(self, *args, **kwargs):
        args = [_operand(self, a, name.strip("_")) if isinstance(a, NestedBase) or i == 0 else a
                for i, a in enumerate(args)]
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


INPLACE = ("add_", "sub_", "mul_", "div_", "copy_", "zero_", "fill_", "clamp_", "masked_fill_", "pow_", "neg_",
           "exp_", "sqrt_", "relu_", "sigmoid_", "tanh_")


def install():
    """The methods above on ``NestedTensor``."""
    methods = {name: _inplace(name) for name in INPLACE}
    methods.update(__getitem__=getitem, select=select, narrow=narrow, split=split, unflatten=unflatten,
                   flatten=flatten, masked_fill=masked_fill, _map_values=like)
    for name, method in methods.items():
        setattr(NestedTensor, name, method)
