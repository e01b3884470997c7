"""torch's strided nested tensor (``gt.nested.nested_tensor``'s default layout): B tensors of one
rank whose sizes may differ in any dims, held as the list of them. Each op torch 2.13 supports on
this layout runs once per tensor (a Python loop over the batch: the jagged layout is the fast one,
computing on one dense tensor); the others raise NotImplementedError naming the op, as torch's
"Could not run 'aten::exp' with arguments from the 'NestedTensorCPU' backend"."""

from gt.nested.jagged_tensor import NestedBase
from gt.nn import functional as F
from gt.tensor import Tensor, cat, stack
from gt.tensor.compat_methods import strided

UNARY = ("sin", "cos", "tanh", "relu", "neg", "abs", "sqrt", "logical_not", "float", "double", "half", "isnan",
         "__neg__", "__abs__", "detach", "clone", "to", "gelu", "cpu", "sgn", "isinf", "bool", "int", "long")
# torch 2.13's in-place ops on this layout (sub_, div_, exp_, clamp_... it refuses)
INPLACE = ("add_", "mul_", "neg_", "abs_", "relu_", "tanh_", "zero_", "fill_", "copy_", "normal_")
AUGMENTED = {"__iadd__": "add_", "__imul__": "mul_"}
# gt.<name>(number, nt): torch's op name where it refuses
_NUMBER_FIRST = {"add": None, "sub": None, "subtract": None, "mul": None, "multiply": None, "div": None, "divide": None,
                 "true_divide": None, "remainder": "remainder.Scalar_Tensor", "floor_divide": "floor_divide",
                 "pow": "pow.Scalar", "float_power": "pow.Scalar"}
BINARY = ("add", "sub", "mul", "div", "__add__", "__sub__", "__mul__", "__truediv__", "gt", "ge", "lt", "le",
          "__gt__", "__ge__", "__lt__", "__le__", "__radd__", "__rmul__", "eq", "masked_fill")
_BY_NUMBER = ("mul", "div", "__mul__", "__truediv__", "__rmul__", "add", "__add__", "__radd__", "sub", "__sub__", "gt",
              "ge", "lt", "le", "__gt__", "__ge__", "__lt__", "__le__", "eq")


def _irregular(dim):
    return RuntimeError(f"Given dimension {dim} is irregular and does not have a size.")


class StridedNestedTensor(NestedBase):
    """A strided nested tensor (torch's default nested layout); made by ``gt.nested.nested_tensor``
    or ``as_nested_tensor`` without ``layout=gt.jagged``."""

    __slots__ = ("_nt_parts", "_nt_leaf", "_nt_retains")
    layout = property(lambda self: strided, doc="``gt.strided``.")

    @classmethod
    def _make(cls, parts, leaf=False):
        t = object.__new__(cls)
        t._nt_parts, t._nt_leaf, t._nt_retains = tuple(parts), leaf, False
        t._ctx = t._grad_value = t._grad_factors = None
        t._retains_grad, t._requires_grad = False, False
        return t

    def _map(self, fn):
        return StridedNestedTensor._make([fn(p) for p in self._nt_parts])

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
        raise RuntimeError("Internal error: NestedTensorImpl doesn't support sizes (a strided nested tensor has "
                           "no shape: use size(i) for its regular dims, or layout=gt.jagged)")

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

    def is_contiguous(self, memory_format=None):
        """Whether each of its tensors is contiguous."""
        return all(p.is_contiguous() for p in self._nt_parts)

    def values(self):
        """The tensors' elements, flattened one after the other (torch's buffer; differentiable)."""
        return cat([p.reshape(-1) for p in self._nt_parts])

    def unbind(self, dim=0):
        """Its tensors (dim 0 only)."""
        if dim != 0:
            raise RuntimeError("unbind(): only supported for NestedTensor on dim=0")
        return self._nt_parts

    def __getitem__(self, index):
        """``nt[i]``: the i-th tensor; ``nt[i, ...]``: indexing it."""
        if isinstance(index, int) and not isinstance(index, bool):
            return self._nt_parts[index]
        if isinstance(index, tuple) and index and isinstance(index[0], int) and not isinstance(index[0], bool):
            return self._nt_parts[index[0]][index[1:]]
        raise RuntimeError("Internal error: NestedTensorImpl doesn't support sizes (a strided nested tensor takes "
                           "an int index only)")

    requires_grad = property(lambda self: any(p.requires_grad for p in self._nt_parts),
                             lambda self, value: self.requires_grad_(value))
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

    def requires_grad_(self, requires_grad=True):
        """A leaf: its tensors become leaves that require grad (or not)."""
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables.")
        if self.is_leaf:
            self._nt_parts = tuple(p.detach().requires_grad_(requires_grad) for p in self._nt_parts)
            self._nt_leaf = requires_grad
        return self

    def contiguous(self, memory_format=None):
        """Itself where contiguous, else its tensors made contiguous."""
        return self if self.is_contiguous() else self._map(lambda p: p.contiguous())

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
        return self._map(lambda p: p.sum(-1, keepdim=True, dtype=dtype))

    def transpose(self, dim0, dim1):
        """Each tensor's dims ``dim0``, ``dim1`` swapped (not dim 0)."""
        d0, d1 = dim0 % self.dim(), dim1 % self.dim()
        if 0 in (d0, d1):
            raise RuntimeError("Nested tensor dimension 0 cannot be transposed")
        return self._map(lambda p: p.transpose(d0 - 1, d1 - 1))

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
        pieces = [p.chunk(chunks, -1) for p in self._nt_parts]
        return tuple(StridedNestedTensor._make(group) for group in zip(*pieces))

    def unsqueeze(self, dim):
        """A dim of size 1 inserted in each tensor (not at 0)."""
        d = dim % (self.dim() + 1)
        if d == 0:
            raise RuntimeError("unsqueeze(): not supported for NestedTensor on dim=0")
        return self._map(lambda p: p.unsqueeze(d - 1))

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


def _unary(name):
    def method(self, *args, **kwargs):
        return self._map(lambda p: getattr(p, name)(*args, **kwargs))

    method.__name__ = name
    method.__doc__ = f"``{name}`` of each tensor."
    return method


def _binary(name):
    def method(self, other, *args, **kwargs):
        if isinstance(other, StridedNestedTensor):
            parts = _same_batch(self, other)
            if any(a.shape != b.shape for a, b in zip(self._nt_parts, parts)):
                raise RuntimeError(f"{name}: the nested tensors' sizes differ")
            return StridedNestedTensor._make([getattr(a, name)(b, *args, **kwargs)
                                              for a, b in zip(self._nt_parts, parts)])
        if isinstance(other, Tensor) or name not in _BY_NUMBER:
            raise RuntimeError("Expected both self and other to be nested, but got a nested self and non-nested other")
        return self._map(lambda p: getattr(p, name)(other, *args, **kwargs))

    method.__name__ = name
    method.__doc__ = f"``{name}`` with a nested tensor of the same sizes (tensor by tensor) or a number."
    return method


def _inplace(name):
    def method(self, *args, **kwargs):
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
    reflected = {"a": "__radd__", "s": "__rsub__", "m": "__rmul__"}.get(name[0], "__rtruediv__")
    if alpha != 1:
        return self._map(lambda p: number - alpha * p)
    return self._map(lambda p: getattr(p, reflected)(number))


def to_padded(self, padding, output_size=None):
    """The tensors padded with ``padding`` to the largest size in each dim (or ``output_size``,
    never smaller: torch refuses truncation on this layout), stacked: differentiable."""
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
