"""torch's strided nested tensor (``gt.nested.nested_tensor``'s default layout): B tensors of one
rank whose sizes may differ in any dims, held as the list of them. Each op torch 2.13 supports on
this layout runs once per tensor (a Python loop over the batch: the jagged layout is the fast one,
computing on one dense tensor); the others raise NotImplementedError naming the op, as torch's
"Could not run 'aten::exp' with arguments from the 'NestedTensorCPU' backend"."""

from gt.dtypes import torch_type_name
from gt.nested.jagged_ops import TENSOR_OTHER, tensor_other
from gt.nested.jagged_tensor import NestedBase
from gt.nn import functional as F
from gt.tensor import Tensor, cat, stack
from gt.tensor import where as _where
from gt.tensor.compat_methods import strided
from gt.tensor.number_first import call_number_first

UNARY = ("sin", "cos", "tanh", "relu", "neg", "abs", "sqrt", "logical_not", "float", "double", "half", "isnan",
         "__neg__", "__abs__", "detach", "clone", "to", "gelu", "cpu", "sgn", "isinf", "bool", "int", "long")
# torch 2.13's in-place ops on this layout (sub_, div_, exp_, clamp_... it refuses)
INPLACE = ("add_", "mul_", "neg_", "abs_", "relu_", "tanh_", "zero_", "fill_", "copy_", "normal_")
AUGMENTED = {"__iadd__": "add_", "__imul__": "mul_"}
# gt.<name>(number, nt): torch's op name where it refuses
_NUMBER_FIRST = {"add": None, "sub": None, "subtract": None, "mul": None, "multiply": None, "div": None, "divide": None,
                 "true_divide": None, "remainder": "remainder.Scalar_Tensor", "floor_divide": "floor_divide",
                 "pow": "pow.Scalar", "float_power": "pow.Scalar"}
# torch 2.13's binary ops on this layout: the arithmetic with a nested tensor of the same sizes, a 0-d
# tensor or a number; eq with a 0-d tensor or a number; gt/ge with a number (lt, le, ne refused)
ARITHMETIC = ("add", "sub", "mul", "div", "true_divide", "divide", "multiply", "subtract", "__add__", "__sub__",
              "__mul__", "__truediv__", "__radd__", "__rmul__")
ORDER = {"gt": "gt", "ge": "ge", "greater": "gt", "greater_equal": "ge", "__gt__": "gt", "__ge__": "ge"}
BINARY = (*ARITHMETIC, *ORDER, "eq", "__eq__", "masked_fill")
_EQ_NESTED = "eq does not support nested tensor as other value."
_NOT_NESTED = "Expected both self and other to be nested, but got a {} self and {} other"


def _no_sizes(why):
    return RuntimeError(f"Internal error: NestedTensorImpl doesn't support sizes ({why})")


def refuse_mixed(self, args):
    """torch's error for a strided and a jagged nested tensor in one op (the jagged one's op runs
    and asks the strided one for its sizes), before the op's own checks or refusal."""
    for x in args:
        if isinstance(x, NestedBase) and type(x) is not type(self):
            raise _no_sizes("a strided and a jagged nested tensor in one op, as torch 2.13: make them one layout, "
                            "e.g. gt.nested.nested_tensor(list(nt.unbind()), layout=gt.jagged)")


def _irregular(dim):
    return RuntimeError(f"Given dimension {dim} is irregular and does not have a size.")


class StridedNestedTensor(NestedBase):
    """A strided nested tensor (torch's default nested layout); made by ``gt.nested.nested_tensor``
    or ``as_nested_tensor`` without ``layout=gt.jagged``."""

    __slots__ = ("_nt_parts", "_nt_leaf", "_nt_retains", "_nt_layout")
    layout = property(lambda self: strided, doc="``gt.strided``.")

    @classmethod
    def _make(cls, parts, leaf=False):
        t = object.__new__(cls)
        t._nt_parts, t._nt_leaf, t._nt_retains, t._nt_layout = tuple(parts), leaf, False, None
        t._ctx = t._grad_value = t._grad_factors = None
        t._retains_grad, t._requires_grad = False, False
        return t

    def _map(self, fn, keep_layout=False):
        """``fn`` of each tensor; ``keep_layout``: torch's result keeps this one's strides and offsets
        (``clone``, a binary op with a number), else it is packed."""
        out = StridedNestedTensor._make([fn(p) for p in self._nt_parts])
        return out._keep(self) if keep_layout else out

    def _keep(self, other):
        """Itself with ``other``'s strides and offsets (a result of ``other``'s sizes)."""
        self._nt_layout = other._nt_layout
        return self

    dtype = property(lambda self: self._nt_parts[0].dtype)
    device = property(lambda self: self._nt_parts[0].device)
    is_cuda = property(lambda self: self._nt_parts[0].is_cuda)

    def _nt_size(self):
        """Sizes with None where the tensors differ."""
        shapes = [p.shape for p in self._nt_parts]
        return (len(shapes), *(s[0] if len(set(s)) == 1 else None for s in zip(*shapes)))

    def dim(self):
        return self._nt_parts[0].ndim + 1

    ndim = property(dim)

    @property
    def shape(self):
        raise _no_sizes("a strided nested tensor has no shape: use size(i) for its regular dims, or layout=gt.jagged")

    def __len__(self):
        return len(self._nt_parts)

    def size(self, dim=None):
        """The sizes (a dim whose size differs between the tensors raises, as torch's)."""
        if dim is None:
            return self.shape
        size = self._nt_size()
        if not -len(size) <= dim < len(size):
            raise IndexError(f"Dimension out of range (expected to be in range of [{-len(size)}, {len(size) - 1}], "
                             f"but got {dim})")
        if size[dim] is None:
            raise _irregular(dim % len(size))
        return size[dim]

    def numel(self):
        """The elements of all its tensors."""
        return sum(p.numel() for p in self._nt_parts)

    nelement = numel

    def values(self):
        """The tensors' elements, flattened one after the other (torch's buffer; differentiable)."""
        return cat([p.reshape(-1) for p in self._nt_parts])

    def __getitem__(self, index):
        """``nt[i]``: the i-th tensor; ``nt[i, ...]``: indexing it."""
        if isinstance(index, int) and not isinstance(index, bool):
            return self._nt_parts[index]
        if isinstance(index, tuple) and index and isinstance(index[0], int) and not isinstance(index[0], bool):
            return self._nt_parts[index[0]][index[1:]]
        raise RuntimeError("Internal error: NestedTensorImpl doesn't support sizes (a strided nested tensor takes "
                           "an int index only)")

    requires_grad = property(lambda self: any(p.requires_grad for p in self._nt_parts),
                             lambda self, value: self._set_requires_grad(value))
    is_leaf = property(lambda self: self._nt_leaf or not self.requires_grad)
    grad_fn = property(lambda self: None if self._nt_leaf else self._nt_parts[0].grad_fn)

    @property
    def grad(self):
        """The gradient of a nested leaf (or one that ``retain_grad()``): a strided nested tensor."""
        grads = [p.grad for p in self._nt_parts] if self._nt_leaf or self.retains_grad else [None]
        return None if any(g is None for g in grads) else StridedNestedTensor._make(grads)

    retains_grad = property(lambda self: self._nt_retains)

    def retain_grad(self):
        """Keep the gradient of this computed nested tensor in ``.grad`` (its tensors')."""
        if not self._nt_leaf:
            for p in self._nt_parts:
                p.retain_grad()
            self._nt_retains = True

    def _map_values(self, make):
        """A new nested tensor of ``make`` of each tensor (the ``*_like`` creation functions)."""
        return self._map(make)

    def _autograd_tensors(self):
        """The dense tensors its gradient is taken through (gt.autograd.grad, backward(inputs=))."""
        return self._nt_parts

    def _from_autograd_grads(self, grads):
        """The nested gradient of the gradients of ``_autograd_tensors()``."""
        return StridedNestedTensor._make(grads)

    def _set_requires_grad(self, requires_grad=True):
        """A leaf: its tensors become leaves that require grad (or not)."""
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables.")
        if self.is_leaf:
            self._nt_parts = tuple(p.detach()._set_requires_grad(requires_grad) for p in self._nt_parts)
            self._nt_leaf = requires_grad
        return self

    def softmax(self, axis=None, dtype=None, *, dim=None):
        """``softmax`` of each tensor along ``dim`` (not 0)."""
        dim = axis if dim is None else dim
        if dim % self.dim() == 0:
            raise RuntimeError("Cannot apply softmax across nested dimension 0")
        return self._map(lambda p: p.softmax(_inner(self, dim), dtype))

    def sum(self, dim=None, keepdim=False, *, dtype=None):
        """The sum over the last dim with ``keepdim=True`` (torch 2.13's only form)."""
        if dim is None or (dim if isinstance(dim, int) else -1) % self.dim() != self.dim() - 1:
            raise RuntimeError(f"NestedTensor can only be reduced across the last dimension for now got dimension "
                               f"{dim} instead.")
        if not keepdim:
            raise RuntimeError("NestedTensor always requires keepdim=True for now.")
        if not self.is_contiguous():
            raise RuntimeError("NestedTensor does not support reductions when the input is noncontiguous for now.")
        return self._map(lambda p: p.sum(-1, keepdim=True, dtype=dtype))

    def view(self, *shape):
        """Each tensor viewed as ``shape[1:]`` (``shape[0]``: the batch size)."""
        return _view(self, shape, "view")

    def reshape(self, *shape):
        """Each tensor reshaped to ``shape[1:]`` (``shape[0]``: the batch size)."""
        return _view(self, shape, "reshape")

    def chunk(self, chunks, dim=0):
        """``chunks`` nested tensors along the last dim."""
        if dim % self.dim() != self.dim() - 1:
            raise RuntimeError("Chunk for nested tensors is currently only supported for the last dimension.")
        if not self.is_contiguous():
            raise RuntimeError("chunk expects `self` to be contiguous.")
        if len({p.shape[-1] for p in self._nt_parts}) > 1:
            raise RuntimeError("Expected all tensors in nested tensor to have the same trailing dimension, instead "
                               f"last dimension equals: {[p.shape[-1] for p in self._nt_parts]}")
        pieces = [p.chunk(chunks, -1) for p in self._nt_parts]
        strides, offsets = self._layout()
        out, start = [], 0
        for group in zip(*pieces):      # views: torch's strides, each piece's offset further along the last dim
            piece = StridedNestedTensor._make(group)
            piece._nt_layout = (strides, tuple(o + start * s[-1] for o, s in zip(offsets, strides)))
            out.append(piece)
            start += group[0].shape[-1]
        return tuple(out)

    def __matmul__(self, other):
        """Each tensor times the other nested tensor's tensor of the same index."""
        if not isinstance(other, StridedNestedTensor):
            raise RuntimeError("Expected both to be nested, but got a nested self and non-nested other")
        return StridedNestedTensor._make([a @ b for a, b in zip(self._nt_parts, _same_batch(self, other))])

    matmul = bmm = __matmul__

    def __repr__(self):
        body = ",\n".join("  " + repr(p).replace("\n", "\n  ") for p in self._nt_parts)
        tail = ", requires_grad=True" if self._nt_leaf else ""
        return f"nested_tensor([\n{body}\n]{tail})"

    __str__ = __repr__


def _inner(self, dim):
    return dim % self.dim() - 1


def _same_batch(self, other):
    if len(other._nt_parts) != len(self._nt_parts):
        raise RuntimeError(f"Expected both nested tensors to have the same batch size, got {len(self._nt_parts)} "
                           f"and {len(other._nt_parts)}")
    return other._nt_parts


def _view(self, shape, name):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
    if not shape or shape[0] != len(self._nt_parts):
        raise RuntimeError(f"{name}: For now nested view cannot change or infer the implicit batch dimension")
    return self._map(lambda p: getattr(p, name)(shape[1:]))


def _require_contiguous(self):
    """torch's refusal of a pointwise op (or an in-place one) on a non-contiguous strided nested
    tensor (``transpose``, ``select``... give one: gt/nested/strided_views.py)."""
    if not self.is_contiguous():
        raise RuntimeError("NestedTensor must be contiguous to get buffer.")


def _unary(name):
    def method(self, *args, **kwargs):
        if name in ("clone", "detach"):
            return self._map(lambda p: getattr(p, name)(*args, **kwargs), keep_layout=True)
        parts = [getattr(p, name)(*args, **kwargs) for p in self._nt_parts]
        if all(a is b for a, b in zip(parts, self._nt_parts)):     # ``float()`` of float32, ``cpu()``: itself
            return self
        _require_contiguous(self)
        return StridedNestedTensor._make(parts)

    method.__name__ = name
    method.__doc__ = f"``{name}`` of each tensor."
    return method


def _binary(name):
    def method(self, other, *args, **kwargs):
        refuse_mixed(self, (other,))
        if name == "masked_fill" and isinstance(other, StridedNestedTensor):
            return StridedNestedTensor._make([p.masked_fill(m, *args, **kwargs) for p, m in
                                              zip(self._nt_parts, _same_batch(self, other))])._keep(self)
        if name in ORDER and (isinstance(other, Tensor) or kwargs):
            raise NotImplementedError(_refusal(ORDER[name] + ".Tensor"))
        if kwargs.get("rounding_mode") is not None:
            raise NotImplementedError(_refusal("div.Tensor_mode"))
        if isinstance(other, StridedNestedTensor):
            if name in ("eq", "__eq__"):
                raise RuntimeError(_EQ_NESTED)
            parts = _same_batch(self, other)
            if any(a.shape != b.shape for a, b in zip(self._nt_parts, parts)):
                raise RuntimeError(f"{name}: the nested tensors' sizes differ")
            return StridedNestedTensor._make([getattr(a, name)(b, *args, **kwargs)
                                              for a, b in zip(self._nt_parts, parts)])
        if isinstance(other, Tensor) and other.ndim and name != "masked_fill":
            raise RuntimeError(_NOT_NESTED.format(*(("non-nested", "nested") if name.startswith("__r") else
                                                    ("nested", "non-nested"))))
        return self._map(lambda p: getattr(p, name)(other, *args, **kwargs), keep_layout=True)

    method.__name__ = name
    method.__doc__ = (f"``{name}`` with a nested tensor of the same sizes (tensor by tensor), a 0-d tensor or a "
                      "number, as torch 2.13's.")
    return method


def _refusal(op):
    return NotImplementedError(f"Could not run 'aten::{op}' with arguments from the 'NestedTensorCPU' backend (a "
                               "strided nested tensor in gt; layout=gt.jagged supports more ops)")


def _reflected_dense(name, refused):
    """``x - nt``, ``x / nt`` of a 0-d tensor ``x`` (torch computes them; a number it refuses, as
    ``aten::rsub`` and ``aten::reciprocal``)."""
    def method(self, other):
        if not isinstance(other, Tensor):
            raise _refusal(refused)
        if other.ndim:
            raise RuntimeError(_NOT_NESTED.format("non-nested", "nested"))
        return self._map(lambda p: getattr(p, name)(other), keep_layout=True)

    method.__name__ = name
    method.__doc__ = f"``{name}`` with a 0-d tensor on the left, as torch 2.13's."
    return method


def _reflected(self, op, other, *args, **kwargs):
    """A dense tensor on the left of a binary op (``gt.eq(x, nt)``, ``x > nt``): refused, as torch's
    (``isclose`` asks its dtypes to match first, then ``eq``'s error)."""
    name = op if isinstance(op, str) else op.__name__
    if not isinstance(other, Tensor) and (name in TENSOR_OTHER or name in ("fmod", "copysign")):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(other).__name__}")
    if name == "isclose":
        _same_dtype(other, self)
    if name in ("eq", "isclose"):
        raise RuntimeError(_EQ_NESTED)
    raise _refusal(name)


def _same_dtype(a, b):
    if a.dtype is not b.dtype:
        raise RuntimeError(f"{torch_type_name(a.dtype.name)} did not match {torch_type_name(b.dtype.name)}")


def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Refused as torch 2.13 refuses it on this layout, with its errors: a number (TypeError), another
    dtype, a nested ``other`` (``eq``'s error), a dense one (its "not nested" error, or a 0-d one's
    missing ``ne.Scalar``)."""
    refuse_mixed(self, (other,))
    tensor_other("isclose", (other,))
    _same_dtype(self, other)
    if isinstance(other, StridedNestedTensor):
        raise RuntimeError(_EQ_NESTED)
    if other.ndim:
        raise RuntimeError(_NOT_NESTED.format("nested", "non-nested"))
    raise _refusal("ne.Scalar")


def where(condition, input, other):
    """``gt.where`` of this layout, torch 2.13's one form: a nested ``condition`` and ``other`` of the
    same sizes and a dense (or number) ``input``, tensor by tensor; its errors otherwise."""
    for x, must, what in ((condition, True, "condition"), (other, True, "other"), (input, False, "self")):
        if isinstance(x, StridedNestedTensor) is not must:
            raise RuntimeError(f"{what} must {'' if must else 'not '}be nested")
    parts = _same_batch(condition, other)
    return StridedNestedTensor._make([_where(c, input, o) for c, o in zip(condition._nt_parts, parts)])


def _inplace(name):
    def method(self, *args, **kwargs):
        _require_contiguous(self)
        if args and isinstance(args[0], StridedNestedTensor):       # tensor by tensor
            for p, other in zip(self._nt_parts, _same_batch(self, args[0])):
                getattr(p, name)(other, *args[1:], **kwargs)
        elif args and isinstance(args[0], Tensor):
            raise RuntimeError("Expected both self and other to be nested, but got a nested self and non-nested other")
        else:
            for p in self._nt_parts:
                getattr(p, name)(*args, **kwargs)
        return self

    method.__name__ = name
    method.__doc__ = f"``{name}`` of each tensor in place (with a number, or a nested tensor's tensors); itself."
    return method


def _number_first(self, name, number, rounding_mode=None, alpha=1):
    """``gt.<name>(number, self)``, as torch 2.13's strided layout: the arithmetic per tensor, the
    rest (and a rounding mode) refused."""
    if name not in _NUMBER_FIRST:
        raise TypeError(f"gt.{name}(): argument 'input' must be a tensor or an array, not {type(number).__name__} "
                        f"({number!r}); use gt.tensor({number!r})")
    op = _NUMBER_FIRST[name] or ("div.Tensor_mode" if rounding_mode is not None else None)
    if op is not None:
        raise NotImplementedError(f"Could not run 'aten::{op}' with arguments from the 'NestedTensorCPU' backend (a "
                                  "strided nested tensor in gt; layout=gt.jagged supports more ops)")
    if alpha != 1:
        return self._map(lambda p: number - alpha * p)
    if name[0] not in "asm":        # the division's function (one rounding; ``number / p`` is p.reciprocal() * number)
        return self._map(lambda p: call_number_first(name, number, (p,), {}))
    return self._map(lambda p: getattr(p, {"a": "__radd__", "s": "__rsub__", "m": "__rmul__"}[name[0]])(number))


def _pointwise(self, fn, op, *args):
    """torch 2.13's strided layout has no pointwise fallback (``gt.special``'s functions)."""
    raise _refusal(op)


def to_padded(self, padding, output_size=None):
    """The tensors padded with ``padding`` to the largest size in each dim (or ``output_size``,
    never smaller: torch refuses truncation on this layout), stacked: differentiable."""
    if not self.is_contiguous():
        raise RuntimeError("for now to_padded_tensor only supports contiguous nested tensor")
    sizes = [max(s) for s in zip(*(p.shape for p in self._nt_parts))]
    if output_size is not None:
        output_size = tuple(output_size)
        if len(output_size) != self.dim() or any(o < s for o, s in zip(output_size[1:], sizes)):
            raise RuntimeError("Value in output_size is less than NestedTensor padded size. Truncation is not "
                               "supported.")
        sizes = list(output_size[1:])
    out = []
    for p in self._nt_parts:
        pad = []
        for have, want in zip(reversed(p.shape), reversed(sizes)):
            pad += [0, want - have]
        out.append(F.pad(p, pad, value=padding))
    return stack(out)


def install():
    for name in UNARY:
        setattr(StridedNestedTensor, name, _unary(name))
    for name in BINARY:
        setattr(StridedNestedTensor, name, _binary(name))
    for name in INPLACE:
        setattr(StridedNestedTensor, name, _inplace(name))
    for name, method in AUGMENTED.items():
        setattr(StridedNestedTensor, name, _inplace(method))
    StridedNestedTensor.to_padded_tensor = to_padded
    StridedNestedTensor._number_first = _number_first
    StridedNestedTensor._pointwise = _pointwise
    StridedNestedTensor._reflected = _reflected
    StridedNestedTensor.isclose = isclose
    for name in ("maximum", "minimum"):         # (a dense tensor's op with this one: refused)
        setattr(StridedNestedTensor, f"__r{name}__", lambda self, other, name=name: self._reflected(name, other))
    StridedNestedTensor.__rsub__ = _reflected_dense("__rsub__", "rsub")
    StridedNestedTensor.__rtruediv__ = StridedNestedTensor.__rdiv__ = _reflected_dense("__rtruediv__", "reciprocal")
