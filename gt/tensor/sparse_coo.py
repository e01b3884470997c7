"""Sparse COO tensors (torch's ``torch.sparse_coo`` layout): ``gt.sparse_coo_tensor``,
``Tensor.to_sparse``, and the class of the result.

A sparse tensor is a ``Tensor`` whose layout is ``gt.sparse_coo``, holding ``indices`` (int64,
(sparse_dim, nnz)) and ``values`` ((nnz, *dense_dims)) as dense gt tensors. It supports the ops
listed in ``SUPPORTED`` (gt/tensor/sparse_methods.py, sparse_elementwise.py,
sparse_autograd.py); every other method of ``Tensor`` raises NotImplementedError naming the op,
and a dense op handed a sparse tensor raises when it reads the storage: a dense op never runs on
the sparse storage. Gradients reach the values through the ordinary tape; a sparse leaf's
``.grad`` is sparse (gt/tensor/sparse_autograd.py). Sparse tensors are refused on a mesh of several devices.
Sparse CSR tensors (gt/tensor/sparse_csr.py) are a subclass holding their entries in this form too.
"""

import sys

from gt import autograd, dtypes
from gt.ops._shapes import numel
from gt.sharding.mesh import get_mesh
from gt.tensor import creation
from gt.tensor.compat_methods import Layout
from gt.tensor.core import Tensor
from gt.tensor.sparse_autograd import (SparseProducts, SparseSeen, carries, dense_of, dense_source, derive, make_leaf,
                                       ordered_grad_leaf)
from gt.tensor.sparse_elementwise import ZERO_KEEPING, SparseElementwise
from gt.tensor.sparse_frames import frame_of, transposed
from gt.tensor.sparse_methods import SparseMethods, coalesced_parts
from gt.tensor.sparse_spgemm import sparse_sparse_mm

sparse_coo = Layout("sparse_coo")

SUPPORTED = ("to_dense", "indices", "values", "_indices", "_values", "coalesce", "is_coalesced", "_nnz",
             "sparse_dim", "dense_dim", "mm", "matmul", "@ (either side; by a COO tensor too)", "t", "transpose",
             "add", "+", "sub", "-",
             "mul", "* (by a number, a dense or a sparse tensor)", "div", "/ (by a number)", "neg", "pow", "**",
             *ZERO_KEEPING, "narrow_copy", "index_select", "sum", "size", "shape", "dtype", "layout",
             "requires_grad_", "detach", "clone", "zero_", "backward through values", "to_sparse",
             "gt.sparse.softmax/log_softmax")

# Tensor's attributes a sparse tensor keeps (its own or the autograd machinery's)
_KEEP = {"shape", "dtype", "ndim", "device", "requires_grad", "is_leaf", "grad_fn", "grad", "size", "dim", "numel",
         "layout", "is_sparse", "requires_grad_", "detach", "clone", "zero_", "id", "is_cuda", "is_cpu",
         "is_floating_point", "is_complex", "element_size", "type", "retain_grad", "retains_grad",
         "register_hook", "register_post_accumulate_grad_hook", "is_inference", "placement", "names",
         "is_quantized", "is_meta", "is_nested", "is_mkldnn", "is_mps", "is_xpu", "is_sparse_csr", "nelement",
         "get_device", "output_nr", "_version", "is_contiguous", "is_pinned", "is_shared", "ndimension"}
_DUNDER_KEEP = {"__init__", "__new__", "__hash__", "__repr__", "__str__", "__init_subclass__", "__getattribute__",
                "__setattr__", "__delattr__", "__reduce__", "__reduce_ex__", "__getstate__", "__setstate__",
                "__dir__", "__format__", "__sizeof__", "__class__", "__subclasshook__", "__slots__", "__weakref__",
                "__doc__", "__module__", "__dict__", "__annotations__", "__class_getitem__", "__copy__",
                "__len__"}


def refuse_on_mesh(kind):
    """Sparse tensors live on one device: refused on a mesh of several (GT_DEVICES/GT_AUTO_SHARD)."""
    if get_mesh().size > 1:
        raise NotImplementedError(f"sparse {kind} tensors are not supported on a mesh of {get_mesh().size} "
                                  "devices (GT_DEVICES/GT_AUTO_SHARD): use dense tensors there")


def _message(op):
    return (f"{op}: not supported on a sparse COO tensor: gt's sparse tensors support only "
            f"{', '.join(SUPPORTED)}; call .to_dense() first")


def _user_op():
    """The gt function the user called (the outermost gt frame that is no wrapper), to name it."""
    frame, name = sys._getframe(2), None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module == "gt" or module.startswith("gt."):
            if frame.f_code.co_name not in _WRAPPERS:
                name = frame.f_code.co_name
        elif name is not None:
            break
        frame = frame.f_back
    return name or "a dense op"


_WRAPPERS = {"call", "wrapper", "wrapped", "hooked", "inner", "decorate_context", "<lambda>", "<genexpr>",
             "<listcomp>"}


def _storage(self):
    raise NotImplementedError(self._refusal(_user_op()) + " (a dense op was handed a sparse tensor)")


class SparseTensor(SparseElementwise, SparseProducts, SparseMethods, Tensor):
    """A sparse COO tensor (torch's ``layout=torch.sparse_coo``); made by ``gt.sparse_coo_tensor``
    or ``Tensor.to_sparse()``."""

    __slots__ = ("_sp_indices", "_sp_values", "_sp_shape", "_sp_coalesced", "_sp_leaf", "_sp_dense", "_sp_frame")
    _placed = None
    _is_sparse_layout = True
    _array = _data = _value = property(_storage)
    layout = property(lambda self: sparse_coo, doc="``gt.sparse_coo``.")
    is_sparse = property(lambda self: True, doc="True: a sparse COO tensor.")
    __hash__ = Tensor.__hash__
    _kind = "COO"
    _refusal = staticmethod(_message)      # the text of a refusal: what this layout supports

    @classmethod
    def _make(cls, indices, values, shape, coalesced, leaf=False):
        refuse_on_mesh(cls._kind)
        SparseSeen.made = True
        t = object.__new__(cls)
        t._sp_indices, t._sp_values, t._sp_shape = indices, values, tuple(int(n) for n in shape)
        t._sp_coalesced, t._sp_leaf, t._sp_dense, t._sp_frame = bool(coalesced), leaf, None, None
        t._ctx = t._grad_value = t._grad_factors = None
        t._retains_grad, t._requires_grad = False, False
        return t

    def _new(self, indices, values, shape, coalesced):
        return SparseTensor._make(indices, values, shape, coalesced)

    # ---- what it is --------------------------------------------------------------------
    shape = property(lambda self: self._sp_shape)
    dtype = property(lambda self: self._sp_values.dtype)
    ndim = property(lambda self: len(self._sp_shape))
    device = property(lambda self: self._sp_values.device)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return numel(self._sp_shape)

    def __len__(self):
        if not self._sp_shape:
            raise TypeError("len() of a 0-d tensor")
        return self._sp_shape[0]

    def sparse_dim(self):
        return self._sp_indices.shape[0]

    def dense_dim(self):
        return self.ndim - self.sparse_dim()

    def _nnz(self):
        return self._sp_indices.shape[1]

    def is_coalesced(self):
        return self._sp_coalesced

    def _indices(self):
        return self._sp_indices

    def _values(self):
        return self._sp_values

    def indices(self):
        """The indices (sparse_dim, nnz) of a coalesced tensor (torch's error otherwise)."""
        if not self._sp_coalesced:
            raise RuntimeError("Cannot get indices on an uncoalesced tensor, please call .coalesce() first")
        return self._sp_indices

    def values(self):
        """The values (nnz, *dense dims) of a coalesced tensor (torch's error otherwise)."""
        if not self._sp_coalesced:
            raise RuntimeError("Cannot get values on an uncoalesced tensor, please call .coalesce() first")
        return self._sp_values

    # ---- autograd: the values carry the graph --------------------------------------------
    requires_grad = property(lambda self: self._sp_values.requires_grad,
                             lambda self, value: self._set_requires_grad(value))
    is_leaf = property(lambda self: self._sp_leaf or not self._sp_values.requires_grad)
    grad_fn = property(lambda self: None if self._sp_leaf else self._sp_values.grad_fn)

    def _set_requires_grad(self, requires_grad=True):
        if not self.is_leaf:
            if not requires_grad:
                raise RuntimeError("you can only change requires_grad flags of leaf variables.")
            return self
        if requires_grad and not self._sp_leaf:
            self._make_leaf()
        elif not requires_grad and self._sp_leaf:
            self._sp_values = self._sp_values.detach()
            self._sp_leaf = False
        return self

    _make_leaf = make_leaf
    _sparse_mm = staticmethod(sparse_sparse_mm)

    def _coo(self):
        """Itself (a sparse CSR tensor gives its entries as a COO tensor sharing the values)."""
        return self

    def _of_layout(self, coo):
        """A COO result in this tensor's layout: itself (CSR: converted, with int64 indices)."""
        return coo

    def sum(self, dim=None, keepdim=False, dtype=None):
        """The sum of every entry (a dense 0-d tensor; torch's dense gradient for a leaf or a tensor
        made by ``to_sparse``) or over ``dim`` (``gt.sparse.sum``'s rules)."""
        source = dense_source(self) if dim is None and not keepdim else None
        if source is not None:
            return source.sum(dtype=dtype)
        return SparseMethods.sum(self, dim, keepdim, dtype)

    def __radd__(self, other):
        """dense + sparse: dense; a leaf's gradient is dense, torch's."""
        source = dense_source(self) if isinstance(other, Tensor) and not other.is_sparse else None
        return other + source if source is not None else SparseMethods.__radd__(self, other)

    def add(self, other, *, alpha=1):
        """``SparseMethods.add``; a leaf's gradient is torch's: the sum's, sparse on the union of the
        two patterns (positions the leaf does not store too, each once, sorted); dense through products."""
        out = SparseMethods.add(self, other, alpha=alpha)
        if autograd.is_grad_enabled() and (carries(self) or carries(other)):
            out = _leaf_sum(self, other, alpha, out)
        return derive(out, lambda a, b: a + b * alpha, self, other)

    # ---- ops whose backward hands a dense gradient on dense (derive: torch's through products) ----
    def coalesce(self):
        out = SparseMethods.coalesce(self)
        return out if out is self else derive(out, lambda d: d, self)

    def transpose(self, dim0, dim1):
        out = SparseMethods.transpose(self, dim0, dim1)
        if out is self:
            return out
        order = list(range(self.sparse_dim()))
        order[dim0 % self.ndim], order[dim1 % self.ndim] = order[dim1 % self.ndim], order[dim0 % self.ndim]
        if self._sp_leaf and autograd.is_grad_enabled():     # torch lists the gradient in the transpose's order
            out = self._new(out._sp_indices, ordered_grad_leaf(self, order), out.shape, False)
            out._sp_frame = None if frame_of(self) is None else (frame_of(self)[0], tuple(order))
        else:       # (of a tensor made from a leaf's entries: in the frame of the leaf's dims swapped)
            out = transposed(self, out, dim0 % self.ndim, dim1 % self.ndim)
        return derive(out, lambda d: d.transpose(dim0, dim1), self, moves=lambda idx: idx[order])

    def div(self, other):
        return derive(SparseMethods.div(self, other), lambda d: d / other, self)

    def neg(self):
        return derive(SparseMethods.neg(self), lambda d: -d, self)

    negative = neg

    def detach(self):
        return self._new(self._sp_indices, self._sp_values.detach(), self.shape, self._sp_coalesced)

    def clone(self, *, memory_format=None):
        out = self._new(self._sp_indices.clone(), self._sp_values.clone(), self.shape, self._sp_coalesced)
        return derive(out, lambda d: d, self)

    def zero_(self):
        """No entries left (torch's: nnz becomes 0), in place."""
        self._sp_indices = creation.zeros((self.sparse_dim(), 0), dtype=dtypes.int64)
        self._sp_values = creation.zeros((0,) + tuple(self._sp_values.shape[1:]), dtype=self.dtype)
        self._sp_coalesced = True
        return self

    def mul_(self, other):
        """The values scaled in place (``clip_grad_norm_`` on a sparse gradient)."""
        self._sp_values.mul_(other)
        return self

    grad = property(lambda self: self._grad_value, lambda self, value: setattr(self, "_grad_value", value),
                    doc="The sparse (or, after ``S @ D``, dense) gradient of a sparse leaf, torch's.")

    def __deepcopy__(self, memo):
        out = self.detach().clone()
        if self.requires_grad and self.is_leaf:
            out._set_requires_grad(True)
        memo[id(self)] = out
        return out

    def __repr__(self):
        return sparse_repr(self)

    __str__ = __repr__


def _leaf_sum(a, b, alpha, out):
    """``out = a + alpha * b`` rebuilt so that a sparse leaf among them gets torch's gradient: the
    sum's at every position of the coalesced union (dense stand-ins sampled there; an operand with a
    dense source, ``x.to_sparse()`` say, hands it the sum's gradient there too, dense). An uncoalesced sum
    keeps its entries; the gradient reaches the stand-ins through the first entry of each position
    only (the others add their values without one), as torch's add hands on the sum's gradient once."""
    sizes = out.shape[:out.sparse_dim()]
    with autograd.no_grad():
        idx, _, inverse = (out._sp_indices, None, None) if out._sp_coalesced else coalesced_parts(
            out._sp_indices, out._sp_values, sizes)
    mine, theirs = dense_of(a, lambda: idx), dense_of(b, lambda: idx)
    total = mine + theirs * alpha
    if out._sp_coalesced:
        return a._new(idx, total[tuple(idx)].to(out.dtype), a.shape, True)
    with autograd.no_grad():
        n = out._nnz()
        first = creation.full((idx.shape[1],), n, dtype=dtypes.int64).index_reduce(
            0, inverse, creation.arange(n, dtype=dtypes.int64), "amin")
        once = creation.zeros(n, dtype=out.dtype).index_fill(0, first, 1)
        once = once.reshape((n,) + (1,) * (out._sp_values.ndim - 1))
    picked = total[tuple(out._sp_indices)].to(out.dtype)
    return a._new(out._sp_indices, out._sp_values.detach() + (picked - picked.detach()) * once, a.shape, False)


def sparse_repr(s):
    """torch's layout of a sparse tensor's repr."""
    ind = repr(s._sp_indices).replace(f", dtype={dtypes.int64})", ")").replace("\n", "\n" + " " * 15)
    val = repr(s._sp_values.detach()).replace(f", dtype={s.dtype})", ")").replace("\n", "\n" + " " * 14)
    tail = f"size={s.shape}, nnz={s._nnz()}"
    if s.dtype not in (dtypes.float32, dtypes.int64) or (s.dtype == dtypes.int64 and s._nnz() == 0):
        tail += f", dtype={s.dtype}"
    tail += f", layout={sparse_coo}"
    if s.requires_grad:
        tail += ", requires_grad=True" if s.is_leaf else f", grad_fn=<{type(s.grad_fn).__name__}>"
    return f"tensor(indices={ind},\n       values={val},\n       {tail})"


def _refuser(name, as_property, message):
    def refuse(self, *args, **kwargs):
        raise NotImplementedError(message(name))

    refuse.__name__ = name
    return property(refuse) if as_property else refuse


def refuse_the_rest(target, source, own, message):
    """Every public attribute (and dunder not kept) of ``source``'s classes that ``target`` does
    not define itself (``own``: names) raises NotImplementedError with ``message(name)`` on
    ``target``: a sparse layout refuses what it does not support by name instead of running a
    dense method on its placeholder array."""
    own = set(own)
    for klass in source.__mro__[:-1]:
        for name, attr in vars(klass).items():
            if name in own or name in _KEEP or name in _DUNDER_KEEP:
                continue
            if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                continue
            own.add(name)
            setattr(target, name, _refuser(name, isinstance(attr, property), message))


refuse_the_rest(SparseTensor, Tensor, set(vars(SparseTensor)) | set(vars(SparseMethods)) | set(vars(SparseProducts))
                | set(vars(SparseElementwise)), _message)
