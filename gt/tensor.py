"""``gt.Tensor``: the user-facing array with autograd.

A tensor holds an engine array (``_data``) and, when it was computed by a
recorded op, that op (``_ctx``, shown as ``grad_fn``). Math goes through the
ops in gt/ops; this class checks arguments, names axes (``axis``/``keepdims``,
or torch's ``dim``/``keepdim``) and turns Python values into op inputs.
"""

import numbers

from gt import autograd, dtypes
from gt.backend import B
from gt.ops import activations as act
from gt.ops import elementwise as ew
from gt.ops import linalg, reductions, shape as shape_ops
from gt.ops._shapes import broadcast_shape, normalize_axes, normalize_axis, numel


def _pick(axis, dim, name="axis", default=None):
    """The axis from ``axis`` (numpy's name) or ``dim`` (torch's); ``default`` when neither is given.

    Functions whose axis has a default must declare ``axis=None`` and pass the default here, so
    that ``x.softmax(dim=0)`` is not mistaken for passing both."""
    if dim is None:
        return default if axis is None else axis
    if axis is None or axis == dim or axis == default:
        return dim
    raise TypeError(f"pass {name} or dim, not both (got {name}={axis!r}, dim={dim!r})")


def _scalar(value):
    """Plain Python numbers stay Python numbers so they never widen a float32 tensor; numpy
    scalars (``np.float64(0.5)``, a subclass of float) become Python numbers too."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Number) and type(value) not in (int, float):
        return value.item() if hasattr(value, "item") else float(value)
    return value


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
    cast = [Tensor._wrap(B.astype(x._data, target)) if _is_int_tensor(x) else x for x in (a, b)]
    return cast[0], cast[1]


class Tensor:
    """An n-dimensional array that records differentiable ops for ``backward()``.

    Create tensors with ``gt.tensor``, ``gt.from_numpy``, ``gt.randn``, ``gt.zeros`` and friends.

        >>> w = gt.tensor([[1.0, 2.0]], requires_grad=True)
        >>> (w * w).sum().backward(); w.grad.numpy()
        array([[2., 4.]], dtype=float32)
    """

    __slots__ = ("_data", "_requires_grad", "grad", "_ctx", "_retains_grad", "__weakref__")
    __array_ufunc__ = None  # numpy defers `ndarray + tensor` to Tensor.__radd__

    def __init__(self, data, dtype=None, requires_grad=False):
        self._init(B.asarray(data._data if isinstance(data, Tensor) else data, dtype=dtype, copy=True),
                   requires_grad)

    def _init(self, arr, requires_grad=False):
        self._data = arr
        self._ctx = None
        self.grad = None
        self._retains_grad = False
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, arr, requires_grad=False):
        if not B.is_array(arr):  # engines may return scalars (a full sum); a tensor always holds an array
            arr = B.asarray(arr)
        t = object.__new__(cls)
        t._data, t._ctx, t.grad, t._retains_grad, t._requires_grad = arr, None, None, False, requires_grad
        return t

    # ---- attributes --------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self._data.shape)

    @property
    def dtype(self):
        return B.dtype_of(self._data)

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def device(self):
        return B.device

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
    def data(self):
        """The same values, detached from the graph (shares memory)."""
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value):
        new = value._data if isinstance(value, Tensor) else B.asarray(value)
        if tuple(new.shape) != self.shape:
            raise ValueError(f"data: new value has shape {tuple(new.shape)}, the tensor has {self.shape}")
        self._data = new

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

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

    # ---- conversion ---------------------------------------------------------------
    def numpy(self):
        """The values as a numpy array (shares memory with the tensor on the numpy engine)."""
        return B.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to a Python scalar, got shape {self.shape}")
        return B.item(self._data)

    def tolist(self):
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
        return Tensor._wrap(self._data)

    def clone(self):
        return self + 0 if self.requires_grad and autograd.is_grad_enabled() else Tensor._wrap(B.copy(self._data))

    def contiguous(self):
        return self

    # ---- in-place updates (outside the tape) ---------------------------------------------
    def _check_inplace(self, what):
        if autograd.is_grad_enabled() and self.requires_grad:
            raise RuntimeError(
                f"{what}: a tensor that requires grad cannot be modified in place while gradients are "
                "recorded; wrap the update in `with gt.no_grad():`"
            )

    def _inplace_value(self, other, op):
        value = _scalar(other)
        if isinstance(value, Tensor):
            value = value._data
        elif not isinstance(value, (int, float, bool)):
            value = B.asarray(value)
        if not isinstance(value, (int, float, bool)):
            out = broadcast_shape(op, self.shape, tuple(value.shape))
            if out != self.shape:
                raise ValueError(f"{op}: a value of shape {tuple(value.shape)} cannot be written into shape {self.shape}")
        return value

    def _iop(self, other, op, name):
        if autograd.is_grad_enabled() and (self.requires_grad or getattr(other, "requires_grad", False)):
            if self.is_leaf and self.requires_grad:
                self._check_inplace(f"`{name}`")
            # A non-leaf (or a non-grad tensor meeting a grad one) is rebound out of place, so the
            # tape stays correct: `x += y` then means `x = x + y`.
            return op(self, other)
        value = self._inplace_value(other, name)
        if name == "+=":
            self._data += value
        elif name == "-=":
            self._data -= value
        elif name == "*=":
            self._data *= value
        else:
            self._data /= value
        return self

    def __iadd__(self, other):
        return self._iop(other, Tensor.__add__, "+=")

    def __isub__(self, other):
        return self._iop(other, Tensor.__sub__, "-=")

    def __imul__(self, other):
        return self._iop(other, Tensor.__mul__, "*=")

    def __itruediv__(self, other):
        return self._iop(other, Tensor.__truediv__, "/=")

    def add_(self, other, alpha=1):
        self._check_inplace("add_")
        value = self._inplace_value(other, "add_")
        self._data += value if alpha == 1 else value * alpha
        return self

    def sub_(self, other, alpha=1):
        return self.add_(other, alpha=-alpha)

    def mul_(self, other):
        self._check_inplace("mul_")
        self._data *= self._inplace_value(other, "mul_")
        return self

    def div_(self, other):
        self._check_inplace("div_")
        self._data /= self._inplace_value(other, "div_")
        return self

    def addcmul_(self, t1, t2, value=1):
        """``self += value * t1 * t2``, in place."""
        self._check_inplace("addcmul_")
        self._data += self._inplace_value(t1, "addcmul_") * self._inplace_value(t2, "addcmul_") * value
        return self

    def addcdiv_(self, t1, t2, value=1):
        """``self += value * t1 / t2``, in place."""
        self._check_inplace("addcdiv_")
        self._data += self._inplace_value(t1, "addcdiv_") / self._inplace_value(t2, "addcdiv_") * value
        return self

    def copy_(self, src):
        self._check_inplace("copy_")
        self._data[...] = self._inplace_value(src, "copy_")
        return self

    def fill_(self, value):
        self._check_inplace("fill_")
        self._data[...] = value
        return self

    def zero_(self):
        """Set every element to 0, in place (e.g. ``param.grad.zero_()``)."""
        return self.fill_(0)

    def __setitem__(self, index, value):
        self._check_inplace("item assignment")
        value = value._data if isinstance(value, Tensor) else _scalar(value)
        try:
            self._data[_index(index)] = value
        except IndexError as exc:
            raise IndexError(f"{exc} (tensor of shape {self.shape})") from None

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
            other = other._data
        return Tensor._wrap(fn(self._data, other))

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
        return Tensor._wrap(B.logical_not(self._data))

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
    def _reduce(self, op_cls, name, axis, keepdims, dim, keepdim):
        axes = normalize_axes(_pick(axis, dim), self.ndim, name)
        keep = bool(keepdims or keepdim)
        return op_cls.apply(self, axes, keep)

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=False):
        return self._reduce(reductions.Sum, "sum", axis, keepdims, dim, keepdim)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=False):
        """Average over ``axis``; integer and bool tensors average in float32 (numpy would give float64)."""
        x = self if self.dtype.is_floating_point else self.to(dtypes.default_float)
        return x._reduce(reductions.Mean, "mean", axis, keepdims, dim, keepdim)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=False):
        """Largest values over ``axis`` (values only, as numpy; use ``argmax`` for positions)."""
        return self._reduce(reductions.Max, "max", axis, keepdims, dim, keepdim)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=False):
        return self._reduce(reductions.Min, "min", axis, keepdims, dim, keepdim)

    def var(self, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=False, unbiased=None, correction=None):
        """Variance over ``axis``; ``ddof=0`` (biased, numpy's default). torch's ``unbiased``/``correction`` work too."""
        if correction is not None:
            ddof = correction
        elif unbiased is not None:
            ddof = 1 if unbiased else 0
        axes = normalize_axes(_pick(axis, dim), self.ndim, "var")
        keep = bool(keepdims or keepdim)
        count = self.numel() if axes is None else numel(self.shape[a] for a in axes)
        centered = self - self.mean(axes, keepdims=True)
        return (centered * centered).sum(axes, keepdims=keep) / max(count - ddof, 0)

    def std(self, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=False, unbiased=None, correction=None):
        return self.var(axis, keepdims, ddof, dim=dim, keepdim=keepdim, unbiased=unbiased, correction=correction).sqrt()

    def _arg(self, fn, name, axis, keepdims, dim, keepdim):
        axis = _pick(axis, dim)
        if axis is not None:
            axis = normalize_axis(axis, self.ndim, name)
        return Tensor._wrap(fn(self._data, axis=axis, keepdims=bool(keepdims or keepdim)))

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=False):
        return self._arg(B.argmax, "argmax", axis, keepdims, dim, keepdim)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=False):
        return self._arg(B.argmin, "argmin", axis, keepdims, dim, keepdim)

    def all(self):
        return B.all(self._data)

    def any(self):
        return B.any(self._data)

    # ---- layout ----------------------------------------------------------------------
    def reshape(self, *shape):
        """A tensor with the same data in a new shape (a view where possible); one entry may be -1."""
        target = _infer_shape("reshape", self.shape, _shape_args(shape))
        return self if target == self.shape else shape_ops.Reshape.apply(self, target)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s = normalize_axis(start_dim, self.ndim, "flatten")
        e = normalize_axis(end_dim, self.ndim, "flatten")
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
        return self.reshape(self.shape[:s] + (-1,) + self.shape[e + 1:])

    def permute(self, *axes):
        axes = _shape_args(axes)
        if sorted(normalize_axis(a, self.ndim, "permute") for a in axes) != list(range(self.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {self.ndim} axes of shape {self.shape}")
        axes = tuple(normalize_axis(a, self.ndim, "permute") for a in axes)
        return shape_ops.Permute.apply(self, axes)

    def transpose(self, a=-2, b=-1):
        """Swap axes ``a`` and ``b`` (with no arguments: the last two)."""
        if self.ndim < 2 and (a, b) == (-2, -1):
            return self
        axes = list(range(self.ndim))
        a, b = normalize_axis(a, self.ndim, "transpose"), normalize_axis(b, self.ndim, "transpose")
        axes[a], axes[b] = axes[b], axes[a]
        return shape_ops.Permute.apply(self, tuple(axes))

    def unsqueeze(self, axis=None, *, dim=None):
        axis = _pick(axis, dim)
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise TypeError(f"unsqueeze: axis must be an int, got {axis!r}")
        if not -self.ndim - 1 <= axis <= self.ndim:
            raise IndexError(f"unsqueeze: axis {axis} is out of range for a tensor with {self.ndim} dimension(s)")
        axis = axis % (self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def squeeze(self, axis=None, *, dim=None):
        """Drop size-1 axes (all of them, or only ``axis``; an axis of another size is left as is, like torch)."""
        axes = normalize_axes(_pick(axis, dim), self.ndim, "squeeze")
        keep = [n for i, n in enumerate(self.shape) if n != 1 or (axes is not None and i not in axes)]
        return self.reshape(tuple(keep))

    def expand(self, *sizes):
        """Broadcast to a larger shape without copying; -1 keeps an axis's size."""
        sizes = _shape_args(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: cannot expand shape {self.shape} to {sizes} (fewer dimensions)")
        target = tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
        for i, n in enumerate(self.shape):
            if n != 1 and n != target[i + lead]:
                raise ValueError(f"expand: cannot expand shape {self.shape} to {sizes} (axis {i}: {n} vs {target[i + lead]})")
        return self if target == self.shape else shape_ops.Expand.apply(self, target)

    def expand_as(self, other):
        return self.expand(*other.shape)

    def split(self, split_size, axis=None, *, dim=None):
        """Pieces of ``split_size`` along ``axis`` (the last may be smaller), or of the sizes in a list."""
        axis = normalize_axis(_pick(axis, dim, default=0), self.ndim, "split")
        n = self.shape[axis]
        if isinstance(split_size, int):
            if split_size <= 0:
                raise ValueError(f"split: split_size must be positive, got {split_size}")
            sizes = [min(split_size, n - s) for s in range(0, n, split_size)]
        else:
            sizes = list(split_size)
            if sum(sizes) != n:
                raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but axis {axis} has size {n}")
        out, start = [], 0
        for size in sizes:
            index = (slice(None),) * axis + (slice(start, start + size),)
            out.append(self[index])
            start += size
        return tuple(out)

    def chunk(self, chunks, axis=None, *, dim=None):
        """Split into ``chunks`` pieces of ``ceil(size / chunks)`` (fewer if the axis is short), like torch."""
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        axis = normalize_axis(_pick(axis, dim, default=0), self.ndim, "chunk")
        n = self.shape[axis]
        return self.split(max(-(-n // chunks), 1), axis)

    def __getitem__(self, index):
        index = _index(index)
        try:
            return shape_ops.GetItem.apply(self, index)
        except IndexError as exc:
            raise IndexError(f"{exc} (tensor of shape {self.shape})") from None

    def matmul(self, other):
        return matmul(self, other)


def _index(index):
    """Tensors and lists inside an index become engine arrays (gathers and boolean masks)."""
    if isinstance(index, tuple):
        return tuple(_index_part(p) for p in index)
    return _index_part(index)


def _index_part(part):
    if isinstance(part, Tensor):
        return part._data
    if isinstance(part, list):
        return B.asarray(part) if part else B.zeros((0,), dtypes.int64)  # [] selects nothing, as numpy
    return part


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
        raise ValueError(f"{op}: only one dimension can be -1, got {target}")
    if any(s < -1 for s in target):
        raise ValueError(f"{op}: invalid shape {target}")
    if -1 in target:
        known = numel(s for s in target if s != -1)
        if known == 0 or total % known:
            raise ValueError(f"{op}: cannot reshape tensor of shape {current} ({total} elements) into {target}")
        target = tuple(total // known if s == -1 else s for s in target)
    if numel(target) != total:
        raise ValueError(
            f"{op}: cannot reshape tensor of shape {current} ({total} elements) into {target} ({numel(target)} elements)"
        )
    return target


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
