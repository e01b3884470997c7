"""``gt.Tensor``: the user-facing array with autograd.

A tensor holds an engine array (``_data``; sharded over the mesh: a ``Placed`` value, see
gt/sharding) and, when it was computed by a
recorded op, that op (``_ctx``, shown as ``grad_fn``). Math goes through the
ops in gt/ops; this class checks arguments, names axes (``axis``/``keepdims``,
or torch's ``dim``/``keepdim``) and turns Python values into op inputs.
"""

import warnings

from gt import autograd, checks, dtypes
from gt.backend import B
from gt.ops import activations as act
from gt.ops import elementwise as ew
from gt.ops import linalg, reductions
from gt.ops._shapes import broadcast_shape, normalize_axes, normalize_axis, numel
from gt import tensor_inplace, tensor_layout, tensor_numpy
from gt._args import _pick, _scalar  # noqa: F401  (re-exported)
from gt.tensor_inplace import InplaceMethods
from gt.tensor_layout import LayoutMethods, _index, _infer_shape, _shape_args  # noqa: F401  (re-exported)
from gt.tensor_numpy import NumpyMethods, no_out
from gt.sharding import layout
from gt.sharding.dispatch import map_local, redistribute
from gt.sharding.layout import Placed
from gt.sharding.mesh import get_mesh
from gt.sharding.placement import Replicate, Shard


def _operand(value, op):
    if isinstance(value, Tensor):
        return value
    value = _scalar(value)
    if isinstance(value, (int, float, bool)):
        return value
    try:
        return Tensor._wrap(B.asarray(value))
    except TypeError as exc:
        raise TypeError(f"{op}: unsupported operand {type(value).__name__}: {exc}") from None


def _binary(op_cls, name, a, b):
    a, b = _operand(a, name), _operand(b, name)
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        broadcast_shape(name, a.shape, b.shape)
    a, b = _promote_ints(a, b, true_div=op_cls is ew.Div)
    return op_cls.apply(a, b)


def _is_int_tensor(x):
    return isinstance(x, Tensor) and not x.dtype.is_floating_point


def _promote_ints(a, b, true_div=False):
    """torch's promotion where it differs from numpy's: an integer or bool tensor meeting a float
    tensor takes that tensor's dtype, and meeting a Python float (or divided) the default float
    (float32). numpy would give float64, silently widening everything computed from it."""
    a_int, b_int = _is_int_tensor(a), _is_int_tensor(b)
    if not (a_int or b_int):
        return a, b
    if a_int and b_int:
        target = dtypes.default_float if true_div else None
    else:
        other = b if a_int else a
        if isinstance(other, Tensor):
            target = other.dtype
        elif isinstance(other, float) or (true_div and not isinstance(other, bool)):
            target = dtypes.default_float
        else:
            target = None  # int tensor with a Python int or bool: numpy's integer result is right
    if target is None:
        return a, b
    cast = [x.to(target) if _is_int_tensor(x) else x for x in (a, b)]
    return cast[0], cast[1]


_next_id = 0


class Tensor(InplaceMethods, LayoutMethods, NumpyMethods):
    """An n-dimensional array that records differentiable ops for ``backward()``.

    Create tensors with ``gt.tensor``, ``gt.from_numpy``, ``gt.randn``, ``gt.zeros`` and friends.

        >>> w = gt.tensor([[1.0, 2.0]], requires_grad=True)
        >>> (w * w).sum().backward(); w.grad.numpy()
        array([[2., 4.]], dtype=float32)
    """

    # A tensor holds one engine array (``_array``) or, when sharded or partial over the mesh, a
    # ``Placed`` (``_placed``: per-device arrays, placement, global shape); never both.
    __slots__ = ("_array", "_placed", "_requires_grad", "_grad", "_ctx", "_retains_grad", "_id", "__weakref__")

    def __init__(self, data, dtype=None, requires_grad=False):
        self._init(B.asarray(data._data if isinstance(data, Tensor) else data, dtype=dtype, copy=True),
                   requires_grad)

    def _init(self, arr, requires_grad=False):
        self._array, self._placed = arr, None
        self._ctx = None
        self._grad = None
        self._retains_grad = False
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, arr, requires_grad=False):
        if not B.is_array(arr):  # engines may return scalars (a full sum); a tensor always holds an array
            arr = B.asarray(arr)
        t = object.__new__(cls)
        t._array, t._placed, t._ctx, t._grad, t._retains_grad, t._requires_grad = \
            arr, None, None, None, False, requires_grad
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
        """Where the values live: ``"cpu"``, or ``"cuda:i"`` (a sharded tensor: its first block's device)."""
        p = self._placed
        return B.device_of(self._array if p is None else p.shards[0])

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def grad(self):
        """The gradient accumulated by ``backward()`` (a tensor of this shape), or None.

        Only leaves get one, as in torch; a computed tensor keeps its gradient only after
        ``retain_grad()``. (``_grad`` is the same attribute, the public gt's spelling.)"""
        if self._ctx is not None and not self._retains_grad and self._grad is None:
            warnings.warn("the .grad of a tensor computed by an op (not a leaf) is not kept by backward(), "
                          "so it is None: call t.retain_grad() before backward() to keep it, or read the "
                          ".grad of the leaf tensors (parameters, inputs with requires_grad=True)",
                          UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value):
        self._grad = value

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
        """The same values, detached from the graph (shares memory)."""
        return Tensor._from_value(self._value)

    @data.setter
    def data(self, value):
        new = value._data if isinstance(value, Tensor) else B.asarray(value)
        if tuple(new.shape) != self.shape:
            raise ValueError(f"data: new value has shape {tuple(new.shape)}, the tensor has {self.shape}")
        self._data = new

    @property
    def T(self):
        """The last two axes swapped (the same as ``mT``); a 0-d or 1-d tensor unchanged.

        This is the public gt's rule, which gt code relies on (``q @ k.T`` on (batch, seq, dim)
        tensors). On 2-d tensors it is also torch's and numpy's; on 3 or more dims torch
        deprecates ``.T`` and numpy reverses every axis: write ``permute`` for that."""
        return self.transpose(-2, -1) if self.ndim >= 2 else self

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

    # ---- conversion (numpy's side: gt/tensor_numpy.py) ------------------------------
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

    def __bool__(self):
        if self.numel() != 1:
            raise ValueError(f"the truth value of a tensor with shape {self.shape} is ambiguous; use .any() or .all()")
        return bool(self.item())

    def to(self, dtype):
        """A copy of this tensor with another dtype (differentiable between float dtypes)."""
        dtype = dtypes.to_dtype(dtype)
        return self if dtype == self.dtype else ew.Cast.apply(self, dtype)

    astype = to

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def long(self):
        return self.to(dtypes.int64)

    def __repr__(self):
        extra = ""
        if self._ctx is not None:
            extra = f", grad_fn=<{self._ctx.name}Backward>"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        if self._placed is not None:
            extra += f", placement={self.placement!r}"
        return f"tensor({B.format(self._data)}, shape={self.shape}, dtype={self.dtype!r}{extra})"

    # ---- autograd ------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate the gradient of this tensor into the ``.grad`` of every leaf it depends on.

        ``grad`` is required when the tensor is not a scalar (same shape as the tensor).
        The graph is freed afterwards unless ``retain_graph=True``.
        """
        autograd.backward(self, grad, retain_graph)

    def requires_grad_(self, requires_grad=True):
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError(f"only floating point tensors can require gradients, this one is {self.dtype!r}")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad can only be turned off on leaf tensors; use .detach()")
        self._requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        self._retains_grad = True
        return self

    def detach(self):
        """The same values (shared memory), cut from the graph."""
        return Tensor._from_value(self._value)

    def clone(self):
        if self.requires_grad and autograd.is_grad_enabled():
            return self + 0
        p = self._placed
        if p is None:
            return Tensor._wrap(B.copy(self._array))
        return Tensor._from_value(Placed([B.copy(s) for s in p.shards], p.placement, p.shape))

    def contiguous(self):
        return self

    # ---- arithmetic ----------------------------------------------------------------
    def __add__(self, other):
        return _binary(ew.Add, "add", self, other)

    def __radd__(self, other):
        return _binary(ew.Add, "add", other, self)

    def __sub__(self, other):
        return _binary(ew.Sub, "sub", self, other)

    def __rsub__(self, other):
        return _binary(ew.Sub, "sub", other, self)

    def __mul__(self, other):
        return _binary(ew.Mul, "mul", self, other)

    def __rmul__(self, other):
        return _binary(ew.Mul, "mul", other, self)

    def __truediv__(self, other):
        return _binary(ew.Div, "div", self, other)

    def __rtruediv__(self, other):
        return _binary(ew.Div, "div", other, self)

    def __pow__(self, other):
        return _binary(ew.Pow, "pow", self, other)

    def __rpow__(self, other):
        return _binary(ew.Pow, "pow", other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        return ew.Neg.apply(self)

    def __abs__(self):
        return ew.Abs.apply(self)

    def __pos__(self):
        return self

    # comparisons: no gradient, boolean results
    def _compare(self, other, fn, name):
        other = _operand(other, name)
        if isinstance(other, Tensor):
            broadcast_shape(name, self.shape, other.shape)
            if self._placed is None and other._placed is None:
                return Tensor._wrap(fn(self._array, other._array))
        elif self._placed is None:
            return Tensor._wrap(fn(self._array, other))
        return map_local(fn, (self, other))

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b, "eq")

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b, "ne")

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b, "lt")

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b, "le")

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b, "gt")

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b, "ge")

    def __invert__(self):
        if self._placed is None:
            return Tensor._wrap(B.logical_not(self._array))
        return map_local(B.logical_not, (self,))

    def __and__(self, other):
        return self._compare(other, lambda a, b: a & b, "and")

    def __or__(self, other):
        return self._compare(other, lambda a, b: a | b, "or")

    def pow(self, exponent):
        return self ** exponent

    def exp(self):
        return ew.Exp.apply(self)

    def log(self):
        return ew.Log.apply(self)

    def sqrt(self):
        return ew.Sqrt.apply(self)

    def abs(self):
        return ew.Abs.apply(self)

    def maximum(self, other):
        return _binary(ew.Maximum, "maximum", self, other)

    def minimum(self, other):
        return _binary(ew.Minimum, "minimum", self, other)

    def clip(self, min=None, max=None):
        """Limit values to ``[min, max]``; the gradient passes where ``min <= x <= max``."""
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        return ew.Clip.apply(self, _scalar(min), _scalar(max))

    clamp = clip

    def relu(self):
        return act.Relu.apply(self)

    def sigmoid(self):
        return act.Sigmoid.apply(self)

    def tanh(self):
        return act.Tanh.apply(self)

    def gelu(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return act.Gelu.apply(self, approximate=approximate)

    def softmax(self, axis=None, *, dim=None):
        """exp(x) / sum(exp(x)) along ``axis`` (default -1), computed stably."""
        return act.Softmax.apply(self, normalize_axis(_pick(axis, dim, default=-1), self.ndim, "softmax"))

    def log_softmax(self, axis=None, *, dim=None):
        """log(softmax(x)) along ``axis`` (default -1), without forming softmax (stable)."""
        return act.LogSoftmax.apply(self, normalize_axis(_pick(axis, dim, default=-1), self.ndim, "log_softmax"))

    def masked_fill(self, mask, value):
        """``value`` where ``mask`` is True, this tensor elsewhere (differentiable in this tensor)."""
        return where(mask, value, self)

    # ---- reductions ----------------------------------------------------------------
    # Reductions take numpy's names (axis, keepdims) and torch's (dim, keepdim), and numpy's
    # dtype= and out=None, which np.mean(t) / np.sum(t) pass on (see gt/tensor_numpy.py).
    def _reduce(self, op_cls, name, axis, keepdims, dim, keepdim, dtype=None, out=None):
        no_out(out, name)
        axes = normalize_axes(_pick(axis, dim), self.ndim, name)
        keep = bool(keepdims or keepdim)
        x = self if dtype is None else self.to(dtype)
        return op_cls.apply(x, axes, keep)

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=False, dtype=None, out=None):
        return self._reduce(reductions.Sum, "sum", axis, keepdims, dim, keepdim, dtype, out)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=False, dtype=None, out=None):
        """Average over ``axis``; integer and bool tensors average in float32 (numpy would give float64)."""
        x = self if self.dtype.is_floating_point or dtype is not None else self.to(dtypes.default_float)
        return x._reduce(reductions.Mean, "mean", axis, keepdims, dim, keepdim, dtype, out)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None):
        """Largest values over ``axis`` (values only, as numpy; use ``argmax`` for positions)."""
        return self._reduce(reductions.Max, "max", axis, keepdims, dim, keepdim, out=out)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None):
        return self._reduce(reductions.Min, "min", axis, keepdims, dim, keepdim, out=out)

    def var(self, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=False, unbiased=None, correction=None,
            dtype=None, out=None):
        """Variance over ``axis``; ``ddof=0`` (biased, numpy's default). torch's ``unbiased``/``correction`` work too."""
        no_out(out, "var")
        if dtype is not None:
            return self.to(dtype).var(axis, keepdims, ddof, dim=dim, keepdim=keepdim, unbiased=unbiased,
                                      correction=correction)
        if correction is not None:
            ddof = correction
        elif unbiased is not None:
            ddof = 1 if unbiased else 0
        axes = normalize_axes(_pick(axis, dim), self.ndim, "var")
        keep = bool(keepdims or keepdim)
        count = self.numel() if axes is None else numel(self.shape[a] for a in axes)
        centered = self - self.mean(axes, keepdims=True)
        return (centered * centered).sum(axes, keepdims=keep) / max(count - ddof, 0)

    def std(self, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=False, unbiased=None, correction=None,
            dtype=None, out=None):
        return self.var(axis, keepdims, ddof, dim=dim, keepdim=keepdim, unbiased=unbiased, correction=correction,
                        dtype=dtype, out=out).sqrt()

    def _arg(self, fn, name, axis, keepdims, dim, keepdim):
        axis = _pick(axis, dim)
        if axis is not None:
            axis = normalize_axis(axis, self.ndim, name)
        keep = bool(keepdims or keepdim)
        p = self._placed
        if p is not None and isinstance(p.placement, Shard) and axis is not None and axis != p.placement.axis:
            a = p.placement.axis
            out = [fn(s, axis=axis, keepdims=keep) for s in p.shards]
            kept = a if keep or a < axis else a - 1
            shape = list(out[0].shape)
            shape[kept] = self.shape[a]
            return Tensor._from_value(Placed(out, Shard(kept), tuple(shape)))
        return Tensor._wrap(fn(self._data, axis=axis, keepdims=keep))

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None):
        no_out(out, "argmax")
        return self._arg(B.argmax, "argmax", axis, keepdims, dim, keepdim)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None):
        no_out(out, "argmin")
        return self._arg(B.argmin, "argmin", axis, keepdims, dim, keepdim)

    def all(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None):
        """Whether every element is true (non-zero): a bool, or a bool tensor over ``axis``."""
        no_out(out, "all")
        axes, keep = normalize_axes(_pick(axis, dim), self.ndim, "all"), bool(keepdims or keepdim)
        if axes is None and not keep:
            return B.all(self._data)
        return ((self == 0).to(dtypes.int64).sum(axes, keepdims=keep)) == 0

    def any(self, axis=None, keepdims=False, *, dim=None, keepdim=False, out=None):
        """Whether some element is true (non-zero): a bool, or a bool tensor over ``axis``."""
        no_out(out, "any")
        axes, keep = normalize_axes(_pick(axis, dim), self.ndim, "any"), bool(keepdims or keepdim)
        if axes is None and not keep:
            return B.any(self._data)
        return ((self != 0).to(dtypes.int64).sum(axes, keepdims=keep)) > 0

    def matmul(self, other):
        return matmul(self, other)


def matmul(a, b):
    """Matrix product with numpy's rules: vectors, matrices, and batches of matrices (broadcast)."""
    a, b = _operand(a, "matmul"), _operand(b, "matmul")
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both operands must be tensors or arrays, not Python scalars")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape}: 0-d tensors cannot be multiplied with @")
    k_b = b.shape[-2] if b.ndim >= 2 else b.shape[0]
    if a.shape[-1] != k_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned: {a.shape[-1]} (last dim of the first) "
            f"!= {k_b} ({'second-to-last' if b.ndim >= 2 else 'only'} dim of the second)"
        )
    a, b = _promote_ints(a, b)
    if a.ndim > 2 or b.ndim > 2:
        try:
            broadcast_shape("matmul", a.shape[:-2], b.shape[:-2])
        except ValueError as exc:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape}: the batch dims {a.shape[:-2]} and "
                             f"{b.shape[:-2]} cannot be broadcast together ({exc})") from None
    return linalg.Matmul.apply(a, b)


def where(condition, a, b):
    """Elements of ``a`` where ``condition`` is True, else of ``b`` (broadcasting; differentiable in a and b)."""
    cond = condition if isinstance(condition, Tensor) else Tensor._wrap(B.asarray(condition))
    a, b = _operand(a, "where"), _operand(b, "where")
    shape = cond.shape
    for x in (a, b):
        if isinstance(x, Tensor):
            shape = broadcast_shape("where", shape, x.shape)
    return ew.Where.apply(cond, a, b)


tensor_inplace.Tensor = tensor_layout.Tensor = tensor_numpy.Tensor = Tensor
