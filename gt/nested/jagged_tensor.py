"""torch's jagged nested tensor (``layout=torch.jagged``, torch's NJT): a batch of B tensors that
differ in one dim, the ragged dim, held as one dense ``values`` tensor (the B tensors concatenated
along that dim, (sum of lengths, ...)) and ``offsets`` (int64, (B + 1,): where each begins and ends;
``lengths`` too where the tensors leave holes between them, as ``nested_tensor_from_jagged``
allows). Ops run on ``values`` as gt ops, so autograd and both engines need nothing of their own.

The ragged dim's size is a nested int (torch's ``j1``): one object per offsets tensor (made when
that offsets tensor first backs a nested tensor), so two nested tensors built on the same offsets
have the same size there and combine, and ones built on equal but different offsets do not,
as torch's. ``_ragged_idx`` is the ragged dim (1, or 2 after ``transpose(1, 2)``: (B, H, j, D)).
"""

import itertools
import sys
import weakref

from gt import dtypes
from gt.tensor import Tensor, arange, cat, creation
from gt.tensor.product_functions import repeat_interleave
from gt.tensor.compat_methods import Layout

jagged = Layout("jagged")

_COUNTER = itertools.count(1)
_BY_TENSOR = {}         # id(offsets or lengths tensor) -> its NestedInt, while that tensor lives


class NestedInt:
    """The size of a ragged dim (torch's nested int ``j1``): equal only to itself."""

    __slots__ = ("number", "cache", "__weakref__")

    def __init__(self):
        self.number, self.cache = next(_COUNTER), {}

    def __repr__(self):
        return f"j{self.number}"

    __str__ = __repr__

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)


def nested_int_of(key):
    """The nested int of the offsets (or lengths) tensor ``key``: the same object for as long as
    the tensor lives."""
    jint = _BY_TENSOR.get(id(key))
    if jint is None:
        jint = _BY_TENSOR[id(key)] = NestedInt()
        weakref.finalize(key, _BY_TENSOR.pop, id(key), None)
    return jint


def shape_text(t):
    """A nested tensor's sizes as torch prints them in errors: ``(3, j1, 4)``."""
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _storage(self):
    raise NotImplementedError(f"aten.{_caller()}.default: not supported on a nested tensor in gt "
                              "(a dense op was handed a nested tensor; gt.nested supports elementwise ops, "
                              "linear, layer_norm, softmax, scaled_dot_product_attention and the layout ops)")


_PLUMBING = {"apply", "forward", "call", "wrapper", "wrapped", "inner", "decorate_context", "__call__", "hooked",
             "__getattribute__", "__getattr__"}


def _caller():
    """The gt function the user called, to name it in the refusal (the outermost gt frame that
    is no plumbing; ``__add__`` names ``add``)."""
    frame, name = sys._getframe(2), None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        code = frame.f_code.co_name
        if module == "gt" or module.startswith("gt."):
            dunder = code.startswith("__") and code.endswith("__")
            if code not in _PLUMBING and not code.startswith("<") and (dunder or not code.startswith("_")):
                name = code.strip("_")
        elif name is not None:
            break
        frame = frame.f_back
    return name or "op"


class NestedBase(Tensor):
    """What the two nested layouts share: a gt ``Tensor`` whose dense storage is never read (a
    dense op handed one raises NotImplementedError naming the op)."""

    __slots__ = ()
    _placed = None
    _array = _data = _value = property(_storage)
    is_nested = property(lambda self: True, doc="True: a nested tensor.")
    __hash__ = Tensor.__hash__

    def dim(self):
        return len(self._nt_size())

    ndim = property(dim)
    ndimension = dim

    def __len__(self):
        return self._nt_size()[0]

    def is_floating_point(self):
        return self.dtype.is_floating_point

    def __iter__(self):
        return iter(self.unbind())

    def is_shared(self):
        return False

    _version = property(lambda self: self.unbind()[0]._version if self.unbind() else 0)


class NestedTensor(NestedBase):
    """A jagged nested tensor (torch's NJT); made by ``gt.nested.nested_tensor(...,
    layout=gt.jagged)``, ``as_nested_tensor``, ``nested_tensor_from_jagged`` or ``narrow``."""

    __slots__ = ("_nt_values", "_nt_offsets", "_nt_lengths", "_nt_ragged", "_nt_jint", "_nt_leaf", "_nt_transposed",
                 "_nt_meta")
    layout = property(lambda self: jagged, doc="``gt.jagged``.")

    @classmethod
    def _make(cls, values, offsets, lengths=None, ragged_idx=1, jint=None, leaf=False, meta=None):
        """``meta``: torch's ``_metadata_cache`` ({"max_seqlen": n, "min_seqlen": n}, what is known)."""
        t = object.__new__(cls)
        t._nt_meta = {} if meta is None else meta
        t._nt_values, t._nt_offsets, t._nt_lengths, t._nt_ragged = values, offsets, lengths, ragged_idx
        t._nt_jint = jint if jint is not None else nested_int_of(offsets if lengths is None else lengths)
        t._nt_leaf, t._nt_transposed = leaf, False
        t._ctx = t._grad_value = t._grad_factors = None
        t._retains_grad, t._requires_grad = False, False
        return t

    def _like(self, values, ragged_idx=None, transposed=None):
        """A nested tensor of ``values`` with this one's offsets, lengths and nested int.
        ``transposed``: its values are a transposed view (torch's contiguous=False; default: as
        this one's, as elementwise ops keep the layout; False for values made afresh)."""
        # torch's extract_kwargs: the same cache object where it holds something, a new one where empty
        out = NestedTensor._make(values, self._nt_offsets, self._nt_lengths,
                                 self._nt_ragged if ragged_idx is None else ragged_idx, self._nt_jint,
                                 meta=self._nt_meta or None)
        out._nt_transposed = self._nt_transposed if transposed is None else transposed
        return out

    # ---- what it is ----------------------------------------------------------------------
    def _nt_size(self):
        size = list(self._nt_values.shape)
        size[self._nt_ragged - 1] = self._nt_jint
        return (self._nt_offsets.shape[0] - 1, *size)

    shape = property(_nt_size, doc="(B, ..., j, ...): the ragged dim's size is a nested int (torch's ``j1``).")
    dtype = property(lambda self: self._nt_values.dtype)
    device = property(lambda self: self._nt_values.device)
    is_cuda = property(lambda self: self._nt_values.is_cuda)

    def size(self, dim=None):
        """The sizes, or one dim's (the ragged one's is its nested int)."""
        size = self._nt_size()
        if dim is None:
            return size
        if not -len(size) <= dim < len(size):
            raise IndexError(f"Dimension out of range (expected to be in range of [{-len(size)}, {len(size) - 1}], "
                             f"but got {dim})")
        return size[dim]

    def numel(self):
        """The elements of ``values``."""
        return self._nt_values.numel()

    nelement = numel

    def values(self):
        """The dense tensor behind it (the B tensors concatenated along the ragged dim); a view:
        gradients through it reach the nested tensor's inputs."""
        return self._nt_values

    def offsets(self):
        """int64 (B + 1,): where each tensor begins in ``values`` along the ragged dim."""
        return self._nt_offsets

    def lengths(self):
        """int64 (B,) where the tensors leave holes in ``values`` (``nested_tensor_from_jagged``
        with ``lengths=``), else None (torch's)."""
        return self._nt_lengths

    def _host(self):
        """(offsets, lengths) as Python lists, read from the device once per offsets tensor."""
        key = (id(self._nt_offsets), id(self._nt_lengths))
        host = self._nt_jint.cache.get(key)
        if host is None:
            host = self._nt_jint.cache[key] = (self._nt_offsets.tolist(), self._seq_lengths().tolist())
        return host

    def _batch_ids(self):
        """int64 (total,): the sequence of each row of ``values`` along the ragged dim (offsets from
        0 to the end of ``values``, no holes), made once per offsets tensor."""
        self._require_packed()      # per tensor: nested tensors on one offsets may differ in values
        key = ("ids", str(self._nt_offsets.device))
        ids = self._nt_jint.cache.get(key)
        if ids is None:
            ids = self._nt_jint.cache[key] = repeat_interleave(
                arange(len(self._host()[1])).to(self._nt_offsets.device), self._seq_lengths())
        return ids

    def _is_packed(self):
        """Its sequences one after the other from row 0 of ``values`` to the end (no holes)."""
        offsets, total = self._host()[0], self._nt_values.shape[self._nt_ragged - 1]
        return self._nt_lengths is None and offsets[0] == 0 and offsets[-1] == total

    def _require_packed(self):
        """NotImplementedError unless packed: for ops whose result is a packed values tensor (or
        that gather rows by sequence)."""
        if not self._is_packed():
            raise NotImplementedError("this op needs a nested tensor whose offsets cover its values from 0 "
                                      "without holes: call .contiguous() first")

    def _seq_lengths(self):
        return self._nt_offsets[1:] - self._nt_offsets[:-1] if self._nt_lengths is None else self._nt_lengths

    def is_contiguous(self, memory_format=None):
        """No holes, and values not a transposed view (torch's rule: ``transpose(1, 2)`` gives a
        non-contiguous nested tensor, transposed back it is contiguous again)."""
        return self._nt_lengths is None and not self._nt_transposed

    def contiguous(self, memory_format=None):
        """Itself where contiguous, else the tensors packed into new values without holes."""
        if self.is_contiguous():
            return self
        if self._nt_lengths is None:
            return self._like(self._nt_values.contiguous(), transposed=False)
        parts = self.unbind()
        offsets = creation.zeros(len(parts) + 1, dtype=dtypes.int64)
        offsets[1:] = self._nt_lengths.cumsum(0)
        out = NestedTensor._make(cat(parts, self._nt_ragged - 1), offsets, None, self._nt_ragged,
                                 meta=dict(self._nt_meta))
        out._nt_meta.setdefault("max_seqlen", max(self._host()[1], default=0))      # torch's: both known
        out._nt_meta.setdefault("min_seqlen", min(self._host()[1], default=0))
        return out

    def unbind(self, dim=0):
        """The B tensors (views of ``values``: gradients flow back)."""
        if dim != 0:
            raise RuntimeError("unbind(): only supported for NestedTensor on dim=0")
        starts, lengths = self._host()
        axis = self._nt_ragged - 1
        return tuple(self._nt_values.narrow(axis, s, n) for s, n in zip(starts, lengths))

    # ---- autograd: the values carry the graph --------------------------------------------
    requires_grad = property(lambda self: self._nt_values.requires_grad,
                             lambda self, value: self._set_requires_grad(value))
    is_leaf = property(lambda self: self._nt_leaf or not self._nt_values.requires_grad)
    grad_fn = property(lambda self: None if self._nt_leaf else self._nt_values.grad_fn)

    @property
    def grad(self):
        """The gradient of a nested leaf (or one that ``retain_grad()``): a nested tensor of the same
        structure (torch's)."""
        g = self._nt_values.grad if self._nt_leaf or self._nt_values.retains_grad else None
        return None if g is None else self._like(g)

    retains_grad = property(lambda self: not self._nt_leaf and self._nt_values.retains_grad)

    def retain_grad(self):
        """Keep the gradient of this computed nested tensor in ``.grad`` (its values' gradient)."""
        if not self._nt_leaf:
            self._nt_values.retain_grad()

    def _autograd_tensors(self):
        """The dense tensors its gradient is taken through (gt.autograd.grad, backward(inputs=))."""
        return (self._nt_values,)

    def _from_autograd_grads(self, grads):
        """The nested gradient of the gradients of ``_autograd_tensors()``."""
        return self._like(grads[0])

    @grad.setter
    def grad(self, value):
        if not self._nt_leaf:
            raise RuntimeError("grad: only a nested leaf (nested_tensor(..., requires_grad=True)) keeps a gradient")
        self._nt_values.grad = None if value is None else value.values()

    def _set_requires_grad(self, requires_grad=True):
        """A leaf: ``values`` become a new leaf that requires grad (or not)."""
        if not self.is_leaf:
            if not requires_grad:
                raise RuntimeError("you can only change requires_grad flags of leaf variables.")
            return self
        if requires_grad and not self._nt_leaf:
            self._nt_values = self._nt_values.detach()._set_requires_grad(True)
            self._nt_leaf = True
        elif not requires_grad and self._nt_leaf:
            self._nt_values = self._nt_values.detach()
            self._nt_leaf = False
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Backward from a nested tensor: ``gradient`` is a nested tensor of the same structure."""
        if not isinstance(gradient, NestedTensor):
            raise RuntimeError("grad can be implicitly created only for scalar outputs: pass a nested tensor of "
                               "the same structure as gradient")
        self._nt_values.backward(gradient.values(), retain_graph=retain_graph, create_graph=create_graph,
                                 inputs=inputs)

    def detach(self):
        """The same structure on detached ``values``."""
        return self._like(self._nt_values.detach())

    def clone(self, *, memory_format=None):
        """The same structure on a copy of ``values``."""
        return self._like(self._nt_values.clone())     # torch's preserve_format: a transposed layout stays

    def __deepcopy__(self, memo):
        out = NestedTensor._make(self._nt_values.detach().clone(), self._nt_offsets.clone(),
                                 None if self._nt_lengths is None else self._nt_lengths.clone(), self._nt_ragged,
                                 meta=dict(self._nt_meta))
        out._nt_transposed = self._nt_transposed
        if self._nt_leaf:
            out._set_requires_grad(True)
        memo[id(self)] = out
        return out

    def __repr__(self):
        size = ", ".join(str(s) for s in self._nt_size())
        parts = [f"size=({size})", f"offsets={self._nt_offsets!r}"]
        if self._nt_leaf:
            parts.append("requires_grad=True")
        elif self.grad_fn is not None:
            name = self.grad_fn.name
            parts.append(f"grad_fn=<{name() if callable(name) else name}>")
        parts.append(f"contiguous={self.is_contiguous()}")
        return f"NestedTensor({', '.join(parts)})"

    __str__ = __repr__
