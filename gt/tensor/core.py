"""``gt.Tensor``: the user-facing array with autograd.

A tensor holds an engine array (``_data``; sharded over the mesh: a ``Placed`` value, see
gt/sharding) and, when it was computed by a recorded op, that op (``_ctx``, shown as
``grad_fn``). Math goes through the ops in gt/ops; the methods check arguments, name axes
(``axis``/``keepdims``, or torch's ``dim``/``keepdim``) and turn Python values into op inputs.
This module holds the class and its attributes; its methods come from the mixins beside it:
arithmetic.py (operators, elementwise math), reductions.py, shape.py (reshape, permute,
indexing), sorting.py (``sort``, ``topk``, ``cumsum``, ``multinomial``), inplace.py (``add_``,
``+=``, item assignment), numpy_interop.py and extra_methods.py (``//``, ``%``, ``floor``,
``norm``, ``repeat``, ``tril``...), new_tensor_methods.py (``new_zeros``...), scatter_methods.py
(``scatter``, ``scatter_reduce``, ``index_add``, ``masked_scatter``...) and index_methods.py
(``nonzero``, ``unique``, ``bincount``; ``gt.einsum``, ``gt.searchsorted``); grad_methods.py
(``requires_grad_``, ``register_hook``); inplace_math.py (``exp_``, ``clamp_``, ``lt_``, ``normal_``..., and the
comparisons as methods); special_methods.py (``lgamma``, ``cummax``...), construct_methods.py and
diagonal_methods.py (``tensor_split``, ``unfold``, ``diagonal``, ``trace``...), stats_methods.py
(``median``, ``quantile``...), fused_methods.py (``addmm``, ``addcmul``...), info_methods.py
(``stride``, ``nbytes``...), linalg_methods.py (``det``, ``inverse``, ``svd``...); in-place changes
recorded on the tape live in inplace_grad.py.
"""

import warnings

from gt import autograd, dtypes
from gt.backend import B
from gt.devices import device
from gt.ops import elementwise as ew
from gt.ops import shape as shape_ops
from gt.ops._shapes import normalize_axis, numel
from gt.sharding import layout
from gt.sharding.layout import Placed
from gt.sharding.mesh import get_mesh
from gt.sharding.placement import Replicate, Shard
from gt.tensor import arithmetic, checks, dispatch, extra_methods, inplace, number_first, numpy_interop, reductions, rules
from gt.tensor import tensor_repr
from gt.tensor import shape as shape_methods
from gt.tensor._args import _alias
from gt.tensor.arithmetic import ArithmeticMethods
from gt.tensor.dispatch import redistribute
from gt.tensor.extra_methods import ExtraMethods
from gt.tensor import bool_int_refusals, new_tensor_methods
from gt.tensor.new_tensor_methods import NewTensorMethods
from gt.tensor.inplace import InplaceMethods
from gt.tensor.numpy_interop import NumpyMethods
from gt.tensor.reductions import ReductionMethods
from gt.tensor.shape import ShapeMethods
from gt.tensor import sorting
from gt.tensor.sorting import SortingMethods
from gt.tensor import index_methods, scatter_methods
from gt.tensor.index_methods import IndexMethods
from gt.tensor.scatter_methods import ScatterMethods
from gt.tensor import math_methods
from gt.tensor import wide_uints
from gt.tensor.math_methods import MathMethods
from gt.autograd import rebind
from gt.tensor import inplace_grad, mesh_alias_write, mesh_overlap, mesh_row_write, shared_input
from gt.tensor.grad_methods import GradMethods
from gt.tensor import inplace_math
from gt.tensor.inplace_math import InplaceMathMethods
from gt.tensor import special_methods
from gt.tensor.special_methods import SpecialMethods
from gt.tensor import construct_methods
from gt.tensor.construct_methods import ConstructMethods
from gt.tensor import diagonal_methods
from gt.tensor.diagonal_methods import DiagonalMethods
from gt.tensor.linalg_methods import LinalgMethods
from gt.autograd.grad_mode import mode as _inference_mode
from gt.autograd import levels as _levels
from gt.autograd import inference_saved as _inference_saved
from gt.tensor import fused_methods, info_methods, stats_methods
from gt.tensor.fused_methods import FusedMethods
from gt.tensor.info_methods import InfoMethods
from gt.tensor.stats_methods import StatsMethods
from gt.tensor import bitwise_methods, random_methods, remaining_methods
from gt.tensor.bitwise_methods import BitwiseMethods
from gt.tensor import device_methods
from gt.tensor.device_methods import DeviceMethods
from gt.tensor.random_methods import RandomMethods
from gt.tensor.remaining_methods import RemainingMethods
from gt.tensor import compat_methods, nested_operands, object_methods
from gt.tensor.compat_methods import CompatMethods
from gt.tensor import write_methods
from gt.tensor.write_methods import WriteMethods
from gt.tensor.strided_methods import StridedMethods

_next_id = 0


class Tensor(ArithmeticMethods, ReductionMethods, ShapeMethods, SortingMethods, InplaceMethods, NumpyMethods,
             ExtraMethods, NewTensorMethods, MathMethods, ScatterMethods, IndexMethods, GradMethods, InplaceMathMethods,
             SpecialMethods, ConstructMethods, StatsMethods, FusedMethods, InfoMethods, LinalgMethods,
             DiagonalMethods, BitwiseMethods, RandomMethods, RemainingMethods, WriteMethods,
             DeviceMethods, CompatMethods, StridedMethods, object_methods.ObjectMethods):
    """An n-dimensional array that records differentiable ops for ``backward()``.

    Create tensors with ``gt.tensor``, ``gt.from_numpy``, ``gt.randn``, ``gt.zeros`` and friends.

        >>> w = gt.tensor([[1.0, 2.0]], requires_grad=True)
        >>> (w * w).sum().backward(); w.grad.numpy()
        array([[2., 4.]], dtype=float32)
    """

    # A tensor holds one engine array (``_array``) or, when sharded or partial over the mesh, a
    # ``Placed`` (``_placed``: per-device arrays, placement, global shape); never both.
    # ``_grad_value`` is the ``.grad`` tensor; ``_grad_factors`` a weight gradient still held as its
    # two factors (gt/autograd/deferred.py), made into ``_grad_value`` when ``.grad`` is read.
    # ``_view``: set only on unrecorded views, to their base (gt/autograd/views.py). ``_forward_only``: made
    # under a no_grad inside a forward transform, recorded for its tangents only (gt/autograd/levels.py).
    __slots__ = ("_array", "_placed", "_requires_grad", "_grad_value", "_grad_factors", "_ctx", "_retains_grad",
                 "_id", "__weakref__", "_inference", "_view", "_level", "_forward_only", "_mesh_base")

    def __init__(self, data, dtype=None, requires_grad=False):
        if isinstance(dtype, int) and not isinstance(dtype, bool) and isinstance(data, int):
            raise TypeError(f"gt.Tensor(data, dtype=None, requires_grad=False) takes data, not sizes: for torch's "
                            f"legacy Tensor({data}, {dtype}, ...) write gt.empty({data}, {dtype}, ...) (or "
                            "gt.FloatTensor(...))")
        self._init(B.asarray(data._data if isinstance(data, Tensor) else data, dtype=dtype, copy=True),
                   requires_grad)

    def _init(self, arr, requires_grad=False):
        self._array, self._placed = arr, None
        self._ctx = None
        self._grad_value = self._grad_factors = None
        self._retains_grad = False
        self._requires_grad = False
        if _inference_mode.tags:       # made inside gt.inference_mode() or a gt.func transform
            _levels.tag(self)
        if requires_grad:
            self._set_requires_grad(True)

    @classmethod
    def _wrap(cls, arr, requires_grad=False):
        if not B.is_array(arr):  # engines may return scalars (a full sum); a tensor always holds an array
            arr = B.asarray(arr)
        t = object.__new__(cls)
        t._array, t._placed, t._ctx, t._grad_value, t._grad_factors, t._retains_grad, t._requires_grad = \
            arr, None, None, None, None, False, requires_grad
        if _inference_mode.tags:
            _levels.tag(t)
        return t

    @classmethod
    def _from_value(cls, value, requires_grad=False):
        """A tensor of a plain engine array or of a ``Placed`` (sharded or partial) value."""
        if not isinstance(value, Placed):
            return cls._wrap(value, requires_grad)
        t = cls._wrap(value.shards[0], requires_grad)
        t._array, t._placed = None, value
        return t

    # The whole array. For a sharded or partial tensor reading it gathers (a collective) and
    # writing it replaces the shards with one replicated array.
    @property
    def _data(self):
        p = self._placed
        return self._array if p is None else layout.materialize(p, view_ok=True)

    @_data.setter
    def _data(self, arr):
        self._array, self._placed = arr, None

    @property
    def _value(self):
        """The engine array, or the ``Placed`` value of a sharded tensor (no gather)."""
        p = self._placed
        return self._array if p is None else p

    # ---- placement over the device mesh (GT_AUTO_SHARD) -----------------------------------
    @property
    def placement(self):
        """``Shard(axis)``, ``Replicate()`` or ``Partial()``: how the values lie on the mesh."""
        p = self._placed
        return Replicate() if p is None else p.placement

    def shard(self, axis=0):
        """This tensor split along ``axis`` over the devices of the mesh (differentiable; uneven
        splits allowed). On a one-device mesh it is the tensor itself."""
        axis = normalize_axis(axis, self.ndim, "shard")
        if self.ndim == 0:
            raise ValueError("shard: a 0-d tensor has no axis to split")
        if get_mesh().size == 1 or self.placement == Shard(axis):
            return self
        return redistribute(self, Shard(axis))

    def replicate(self):
        """This tensor whole on every device (differentiable; gathers or sums as needed)."""
        return self if self._placed is None else redistribute(self, Replicate())

    # ---- attributes --------------------------------------------------------------
    @property
    def shape(self):
        p = self._placed
        return tuple(self._array.shape) if p is None else p.shape

    @property
    def dtype(self):
        p = self._placed
        return B.dtype_of(self._array if p is None else p.shards[0])

    @property
    def ndim(self):
        p = self._placed
        return self._array.ndim if p is None else len(p.shape)

    @property
    def device(self):
        """Where the values live, a ``gt.device``: ``"cpu"``, or ``"cuda:i"`` (a sharded tensor: its
        first block's device). It is also the string it prints (gt/devices.py)."""
        p = self._placed
        return device(B.device_of(self._array if p is None else p.shards[0]))

    requires_grad = property(lambda self: self._requires_grad, _inference_saved.set_flag)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        ctx = self._ctx       # an output of a custom Function: the call's one node, as torch's
        return ctx if ctx is None else getattr(ctx, "custom_node", ctx)

    @property
    def grad(self):
        """The gradient accumulated by ``backward()`` (a tensor of this shape), or None.

        Only leaves get one, as in torch; a computed tensor keeps its gradient only after
        ``retain_grad()``. (``_grad`` is the same attribute, the public gt's spelling.)
        A big weight gradient of few rows may be held as its two factors until it is first
        read here (gt/autograd/deferred.py): it is made then, and kept."""
        if self._grad_factors is not None:
            return self._grad
        if self._ctx is not None and not self._retains_grad and self._grad_value is None:
            warnings.warn("the .grad of a tensor computed by an op (not a leaf) is not kept by backward(), "
                          "so it is None: call t.retain_grad() before backward() to keep it, or read the "
                          ".grad of the leaf tensors (parameters, inputs with requires_grad=True)",
                          UserWarning, stacklevel=2)
        return self._grad_value

    @grad.setter
    def grad(self, value):
        if value is not None:
            _check_grad(self, value)
        self._grad_value, self._grad_factors = value, None

    @property
    def _grad(self):
        """``grad`` in the public gt's spelling (without the warning for a non-leaf)."""
        factors = self._grad_factors
        if factors is not None:
            self._grad_value, self._grad_factors = Tensor._wrap(factors.materialize()), None
        return self._grad_value

    @_grad.setter
    def _grad(self, value):
        self._grad_value, self._grad_factors = value, None

    @property
    def id(self):
        """A number that names this tensor for as long as the program runs (never reused, unlike
        Python's ``id()``); ``gt.debug.get_tape()`` lists ops by these numbers."""
        try:
            return self._id
        except AttributeError:
            global _next_id
            _next_id += 1
            self._id = _next_id
            return _next_id

    @property
    def data(self):
        """The same values, detached (shares memory; its in-place changes pass autograd unseen, as torch's)."""
        out = _levels.alias(Tensor._from_value(B.untracked_alias(self._array) if self._placed is None
                                               else self._placed), self)
        return mesh_row_write.alias(out, self) if inplace_grad.copies_of_shard_rows else out

    @data.setter
    def data(self, value):
        # another shape or dtype is taken, as torch's (``emb.weight.data = bigger``)
        old = self._array
        self._data = value._data if isinstance(value, Tensor) else B.asarray(value)
        if autograd.tape:      # ops recorded since the last backward that saved it read the new values
            autograd.release.data_replaced(self, old)

    @property
    def T(self):
        """The last two axes swapped (the same as ``mT``); of a 0-d or 1-d tensor an alias view, as torch's.

        This is the public gt's rule, which gt code relies on (``q @ k.T`` on (batch, seq, dim)
        tensors). On 2-d tensors it is also torch's and numpy's; on 3 or more dims torch
        deprecates ``.T`` and numpy reverses every axis: write ``permute`` for that."""
        view = self.view(self.shape) if self.ndim < 2 else self.transpose(-2, -1)    # an alias view, as torch's
        return shape_methods._named(view, self, "PermuteBackward0")   # torch's numpy_T

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def dim(self):
        return self.ndim

    def numel(self):
        return numel(self.shape)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[normalize_axis(dim, self.ndim, "size")]

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __hash__(self):
        return id(self)

    def __iter__(self):
        """Iterate over axis 0 (each item a differentiable slice), like torch."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    # ---- conversion (numpy's side: numpy_interop.py) ---------------------------------
    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to a Python scalar, got shape {self.shape}")
        checks.flush()
        return B.item(self._data)

    def tolist(self):
        checks.flush()
        return B.tolist(self._data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        """An integer (or bool) tensor of one element as a Python int: ``names[t.argmax()]``, ``range(t)``."""
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise ValueError(f"the truth value of a tensor with shape {self.shape} is ambiguous; use .any() or .all()")
        return bool(self.item())

    def float(self, memory_format=None):     # torch's memory_format: gt lays tensors out row-major
        return self.to(dtypes.float32)

    def double(self, memory_format=None):
        return self.to(dtypes.float64)

    def long(self, memory_format=None):
        return self.to(dtypes.int64)

    def int(self, memory_format=None):
        return self.to(dtypes.int32)

    def half(self, memory_format=None):
        return self.to(dtypes.float16)

    def bool(self, memory_format=None):
        return self.to(dtypes.bool_)

    def __repr__(self):
        return tensor_repr.tensor_repr(self)      # torch's layout (gt/tensor/tensor_repr.py)

    # ---- autograd ------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None, *, grad=None):
        """Accumulate the gradient of this tensor into the ``.grad`` of every leaf it depends on.

        ``gradient`` (torch's name; ``grad=``, the public gt's, too) is required when the tensor is
        not a scalar (same shape as the tensor). The graph is freed afterwards unless
        ``retain_graph=True`` (default: ``create_graph``). ``create_graph=True`` records the
        gradients, so each ``.grad`` has a ``grad_fn`` and can be differentiated again (see
        gt/autograd/graph_walk.py). ``inputs`` (tensors, as torch's): only their ``.grad`` gets it.
        """
        gradient = _alias(gradient, grad, "backward", "gradient", "grad")
        autograd.backward(self, gradient, retain_graph, create_graph, inputs)

    def register_post_accumulate_grad_hook(self, hook):
        """Run ``hook(self)`` during each ``backward()``, as soon as this leaf's ``.grad`` holds
        its whole gradient (torch's name and semantics). Returns a handle; ``handle.remove()``
        unregisters. An optimizer can step from here (``SGD(..., in_backward=True)`` does)."""
        return autograd.register_post_accumulate_grad_hook(self, hook)

    def detach(self):
        """The same values (shared memory), cut from the graph."""
        out = _levels.alias(Tensor._from_value(self._value), self)   # (captured where self is: levels.py)
        return mesh_row_write.alias(out, self) if inplace_grad.copies_of_shard_rows else out

    def clone(self, *, memory_format=None):
        """A copy (differentiable) whose axes keep the order of their strides, as torch's default
        ``preserve_format`` (a transposed tensor's clone is transposed; an expanded one's row-major);
        another ``memory_format`` is checked as torch checks it and changes nothing."""
        compat_methods.check_memory_format(memory_format, self.ndim, "clone")
        if (self.requires_grad and autograd.is_grad_enabled()) or autograd.forward_ad.dual_values(self, ()):
            return shape_ops.Clone.apply(self)      # recorded; forward AD copies the tangent too
        p = self._placed
        if p is None:
            return Tensor._wrap(B.clone(self._array))
        return Tensor._from_value(Placed([B.copy(s) for s in p.shards], p.placement, p.shape, memory=True))

    def contiguous(self, memory_format=None):
        """This tensor where its elements lie in row-major order (each block, for a sharded one),
        else a row-major copy, differentiable, as torch's. ``memory_format`` is accepted and
        changes nothing (gt lays tensors out row-major)."""
        if self.is_contiguous():
            return self
        return shape_ops.Contiguous.apply(self)


# The modules of this package that need the class, and cannot import this module (it imports
# them), get it here, once it exists.
for _module in (arithmetic, dispatch, extra_methods, inplace, numpy_interop, reductions, rules, shape_methods,
                sorting, math_methods, index_methods, scatter_methods, inplace_math, special_methods,
                construct_methods, stats_methods, fused_methods, info_methods, diagonal_methods, bitwise_methods,
                random_methods, remaining_methods, write_methods, device_methods, compat_methods, nested_operands,
                new_tensor_methods, bool_int_refusals, shared_input):
    _module.Tensor = Tensor
wide_uints.guard_methods(Tensor)
number_first.guard_tensor_arguments(Tensor)      # x.maximum(2): torch's TypeError
# Autograd sits below this layer: it makes result tensors, and runs ops on sharded inputs,
# through what is registered here (Function.apply runs on every op, so these are plain globals there).
autograd.set_tensor_hooks(Tensor, dispatch.dispatch, dispatch.backward_placed)
# In-place changes recorded on the tape (inplace_grad.py); the walk asks this layer what is a view.
inplace_grad.Tensor, inplace_grad.mesh_alias = Tensor, mesh_alias_write    # (mesh_alias_write imports it)
inplace_grad.mesh_row = mesh_row_write          # (it imports inplace_grad)
mesh_overlap.row_memory = mesh_row_write.row_memory     # (the same)
rebind.set_view_test(inplace_grad.view_base)


def _check_grad(t, value):
    """torch's checks of an assigned ``.grad``: a tensor of ``t``'s shape (a wrong shape would
    broadcast in an update). Another dtype is let through: the optimizers cast it (torch refuses
    it unless ``grad_dtype`` allows it)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}")
    if value is t:
        raise RuntimeError("can't assign Variable as its own grad")
    if value.shape != t.shape:
        raise RuntimeError(f"attempting to assign a gradient of size {list(value.shape)} to a tensor of size "
                           f"{list(t.shape)}. Please ensure that the gradient and the tensor are the same size")
