"""Arithmetic, comparisons and elementwise math of a tensor (``a + b``, ``a < b``, ``x.exp()``,
``x.softmax()``), and ``matmul`` and ``where``: Python values turned into op inputs, shapes checked,
integer tensors promoted as torch does, then the ops of gt/ops.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

from gt import dtypes
from gt.backend import B
from gt.errors import ArgumentError
from gt.ops import activations as act
from gt.ops import complex_ops as cx
from gt.ops import elementwise as ew
from gt.ops import linalg
from gt.ops._shapes import broadcast_shape, normalize_axis
from gt.tensor._args import _fill, _pick, _scalar
from gt.tensor.complex_checks import PLAIN_BOUNDS, check_clamp
from gt.tensor.linalg_base import ShapeError
from gt.tensor.bool_int_refusals import refuse_bool_subtraction
from gt.tensor.nested_operands import is_nested
from gt.tensor.half_scalars import half_rounded, in_float32, is_half_scalar_pair
from gt.tensor.int_scalars import _check_exponent, checked_scalar, refuse_uint64_promotion, wrap_scalar
from gt.tensor.product_dtypes import refuse_bool_matmul, refuse_matmul
from gt.tensor.promotion import Complex32Error, _floating, result_dtype, to_complex
from gt.tensor.dispatch import map_local
from gt.tensor.wide_uints import refuse, refuse_dtype, refuse_op

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py
_ALONE = object()  # where(condition) with neither a nor b given


def _operand(value, op):
    if isinstance(value, Tensor):
        return value
    value = _scalar(value)
    if isinstance(value, (int, float, bool, complex)):
        return value
    try:
        return Tensor._wrap(B.asarray(value))
    except TypeError as exc:
        raise TypeError(f"{op}: unsupported operand {type(value).__name__}: {exc}") from None


def _binary(op_cls, name, a, b):
    a, b = _operand(a, name), _operand(b, name)
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if type(b) is not Tensor and b.is_nested:   # the nested one's op (before its shape: a strided one has none)
            return getattr(b, f"__r{name}__")(a)
        sa, sb = a.shape, b.shape
        if sa != sb:
            broadcast_shape(name, sa, sb)
        da = a.dtype
        if da is b.dtype and da.differentiable:     # dtypes are singletons: ``is``, not DType.__eq__
            return op_cls.apply(a, b)   # the common case (two float tensors): no promotion to decide
    if (op_cls is ew.Mul or op_cls is ew.Div) and is_half_scalar_pair(a, b):     # torch's float32 kernel
        return in_float32(lambda x, y: _promoted(op_cls, name, x, y), (a, b), lambda: _promoted(op_cls, name, a, b))
    if op_cls is ew.Div and type(a) is complex and isinstance(b, Tensor) and not b.dtype.differentiable:
        b = b.to(dtypes.default_float)      # torch's c / x is x.reciprocal() (float) * c: 1j / 0 is inf+infj
    if op_cls is ew.Mul and type(a) in (int, float) and is_half_scalar_pair(b, a):    # ``0.3 * x``: mul(x, 0.3)
        return in_float32(lambda x, y: _promoted(op_cls, name, y, x), (b, a), lambda: _promoted(op_cls, name, a, b))
    return _promoted(op_cls, name, a, b)


def _compared_pair(a, b):
    """Two tensors of different dtypes in the dtype torch compares them in; a float16 tensor beside
    a complex 0-d one (torch's complex32) in complex64, the complex one's parts rounded to float16."""
    try:
        return _promote_ints(a, b)
    except Complex32Error:
        c, h = (a, b) if a.dtype.is_complex else (b, a)
        c = cx.Complex.apply(*(p.to(dtypes.float16).to(dtypes.float32) for p in (c.real, c.imag)))
        return (c, h.to(dtypes.complex64)) if a.dtype.is_complex else (h.to(dtypes.complex64), c)


def _promoted(op_cls, name, a, b):
    if op_cls is ew.Sub:
        refuse_bool_subtraction(a, b)
    a, b = _promote_ints(a, b, true_div=op_cls is ew.Div)
    refuse_op(name, a, b)
    if type(a) is int or type(b) is int:
        if op_cls is ew.Pow and type(b) is int:
            _check_exponent(a, b)
        else:
            a, b = wrap_scalar(a, b)
    return op_cls.apply(a, b)


def _no_order(a, b, name):
    if a.dtype.is_complex or (isinstance(b, Tensor) and b.dtype.is_complex) or isinstance(b, complex):
        raise RuntimeError(f"{name} not implemented for complex tensors.")      # torch's: no order


def _promote_ints(a, b, true_div=False):
    """``a`` and ``b`` (tensors or Python numbers, one a tensor) cast to torch's result dtype
    (promotion.py) where numpy's would differ: an int tensor meeting a float tensor or a Python
    float (or divided) gives float32, not float64, and a 0-d tensor does not widen a tensor with
    dims (``float32 vector + float64 0-d`` is float32, ``int32 vector + int64 0-d`` int32). Only
    the operands whose dtype changes are cast (a 0-d one costs nothing); the common case (equal
    dtypes, or a float tensor with a number, which numpy keeps weak) decides nothing."""
    a_t, b_t = isinstance(a, Tensor), isinstance(b, Tensor)
    if a_t and b_t and a.dtype == b.dtype:
        if not true_div or a.dtype.differentiable:
            return a, b
        target = dtypes.default_float
    elif a_t and b_t and a.ndim and b.ndim and a.dtype.is_floating_point and b.dtype.is_floating_point:
        return a, b     # two float tensors with dims: numpy's promotion is torch's, no copy needed
    elif not (a_t and b_t) and (a if a_t else b).dtype.differentiable:
        if type(b if a_t else a) is complex and (a if a_t else b).dtype is dtypes.float16:
            to_complex(dtypes.float16)      # torch's complex32: refused, as for two tensors
        return a, b
    else:
        target = result_dtype(a, b)
        if target is dtypes.int64:
            refuse_uint64_promotion(a, b)
        if true_div and not target.differentiable:
            target = dtypes.default_float
    cast = [x.to(target) if isinstance(x, Tensor) and x.dtype != target else x for x in (a, b)]
    return cast[0], cast[1]


def _number_beside(value, t):
    """The Python number ``value`` as a 0-d tensor of the dtype torch gives it beside the tensor
    ``t``: ``t``'s own where the number's kind (bool, int, float) is not above ``t``'s (``2 // x``
    of an int32 ``x`` is int32), else int64 or the default float."""
    if isinstance(value, Tensor):       # x.__rmod__(y) called with a tensor: keep its graph
        return value
    if not isinstance(value, (bool, int, float)):
        return Tensor._wrap(B.asarray(value))
    kind = 0 if isinstance(value, bool) else 1 if isinstance(value, int) else 2
    own = 2 if t.dtype.is_floating_point else 0 if t.dtype == dtypes.bool_ else 1
    dtype = t.dtype if kind <= own else (dtypes.int64 if kind == 1 else dtypes.default_float)
    if kind == 1 and dtype.name in dtypes.INT_RANGES:
        value = wrap_scalar(t, value)[1]        # cast into t's dtype, wrapping as torch's (300 into uint8: 44)
    return Tensor._wrap(B.asarray(value, dtype=dtype))


class ArithmeticMethods:
    __slots__ = ()

    def __add__(self, other):
        return _binary(ew.Add, "add", self, other)

    def __radd__(self, other):
        return _binary(ew.Add, "add", other, self)

    def __sub__(self, other):
        return _binary(ew.Sub, "sub", self, other)      # with a bool: torch's error (_binary)

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
        dt = self.dtype
        if dt == dtypes.bool_:
            raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
                               "invert a mask, use the `~` or `logical_not()` operator instead.")
        refuse_dtype("neg_cpu", dt)
        return ew.Neg.apply(self)

    def __abs__(self):
        return self.abs()

    def __pos__(self):
        return self

    # comparisons: no gradient, boolean results
    def _compare(self, other, fn, name):
        other = _operand(other, name)
        if type(other) is not Tensor and isinstance(other, Tensor) and other.is_nested:
            return other._reflected(name, self)     # ``p > nt``: the nested tensor's op (gt.nested)
        if name in ("lt", "le", "gt", "ge") and (self.dtype.is_complex or isinstance(other, complex) or (
                isinstance(other, Tensor) and other.dtype.is_complex)):
            raise NotImplementedError(f"\"{name}_cpu\" not implemented for complex tensors: complex numbers have no "
                                      f"order (compare .abs() or .real)")
        if isinstance(other, Tensor):
            broadcast_shape(name, self.shape, other.shape)
            if other.dtype is not self.dtype:   # compared in torch's result dtype (0.1 == float64 0-d 0.1 in float32)
                self, other = _compared_pair(self, other)
            refuse_op(name, self, other)     # torch orders uint16/32/64 only beside a float
            unplaced = self._placed is None and other._placed is None
            if not unplaced:
                return map_local(fn, (self, other))
            a, b = self._array, other._array
            return Tensor._wrap(B.iterator_layout(fn(a, b), a, b))      # torch's layout where a's and b's differ
        if isinstance(other, float) and not self.dtype.is_floating_point:
            self = self.to(dtypes.default_float)     # torch compares ints with a float in float32
        elif type(other) is complex and self.dtype is dtypes.float16:      # torch's complex32 number
            other = complex(half_rounded(other.real), half_rounded(other.imag))
        elif type(other) is int and not 0 <= other <= 127:      # (every integer dtype holds 0..127 as it is)
            other = wrap_scalar(self, other)[1]     # torch casts the int to the tensor's dtype: uint8 < -1 is < 255
        refuse_op(name, self, other)
        if self._placed is None:
            return Tensor._wrap(fn(self._array, other))
        return map_local(fn, (self, other))

    def __eq__(self, other):
        if other is None:
            return False        # as torch's (Python's answer for unrelated objects), not an error
        try:
            return self._compare(other, lambda a, b: a == b, "eq")
        except TypeError:       # torch's: an operand it cannot take (a string...) is unequal, not an error
            return NotImplemented

    def __ne__(self, other):
        if other is None:
            return True
        try:
            return self._compare(other, lambda a, b: a != b, "ne")
        except TypeError:
            return NotImplemented

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b, "lt")

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b, "le")

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b, "gt")

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b, "ge")

    def __invert__(self):
        if self.dtype != dtypes.bool_:      # integers flip their bits (gt/tensor/bitwise_methods.py)
            if self.dtype.is_floating_point:
                raise TypeError(f"~ (operator.invert) is only implemented on integer and Boolean-type tensors, "
                                f"got dtype {self.dtype!r}")
            return self.bitwise_not()
        if self._placed is None:
            return Tensor._wrap(B.logical_not(self._array))
        return map_local(B.logical_not, (self,))

    def __and__(self, other):
        return self.bitwise_and(other)      # torch's dtypes and errors: gt/tensor/bitwise_methods.py

    def __or__(self, other):
        return self.bitwise_or(other)

    def pow(self, exponent):
        return self ** exponent

    def exp(self):
        return ew.Exp.apply(_floating(self, True))

    def log(self):
        return ew.Log.apply(_floating(self, True))

    def sqrt(self):
        return ew.Sqrt.apply(_floating(self, True))

    def abs(self):
        if self.dtype == dtypes.bool_:
            raise NotImplementedError("\"abs_cpu\" not implemented for 'Bool'")
        refuse_dtype("abs_cpu", self.dtype)
        return ew.Abs.apply(self)

    def maximum(self, other):
        _no_order(self, other, "maximum")
        return _binary(ew.Maximum, "maximum", self, other)

    def minimum(self, other):
        _no_order(self, other, "minimum")
        return _binary(ew.Minimum, "minimum", self, other)

    def clip(self, min=None, max=None):
        """Limit values to ``[min, max]``; the gradient passes where ``min <= x <= max``."""
        if min is None and max is None:
            raise ArgumentError("clip: give at least one of min and max (torch.clamp: At least one of 'min' or 'max' "
                                "must not be None)")
        low, high = _scalar(min), _scalar(max)
        if self.dtype.is_complex or type(low) not in PLAIN_BOUNDS or type(high) not in PLAIN_BOUNDS:
            low, high = check_clamp(self, low, high)
        if self.dtype.is_floating_point and not isinstance(low, Tensor) and not isinstance(high, Tensor):
            return ew.Clip.apply(self, low, high)     # the common case: numbers keep the tensor's dtype
        given = [b for b in (low, high) if b is not None]
        if any(type(b) is not Tensor and is_nested(b) for b in given):    # gt.nested's op
            return (low if is_nested(low) else high)._clip_of(self, low, high)
        if any(isinstance(b, Tensor) and b.dtype != self.dtype for b in given) or \
                (not self.dtype.is_floating_point and any(isinstance(b, float) for b in given)):
            # torch's dtype (int clamped to float: float32; a float64 0-d bound keeps float32), not numpy's
            target = result_dtype(self, *given)
            low, high = (b.to(target) if isinstance(b, Tensor) and b.dtype != target else b for b in (low, high))
            return ew.Clip.apply(self.to(target), low, high)
        refuse("clamp_scalar_cpu", self)
        if self.dtype in dtypes.SMALL_INTS:   # torch's checked cast of the bounds (uint8 reads -1 as 255)
            low, high = (checked_scalar(b, self.dtype, "a clamp bound") if type(b) is int else b for b in (low, high))
        return ew.Clip.apply(self, low, high)

    clamp = clip

    def relu(self):
        dt = self.dtype
        if dt.is_complex:
            raise NotImplementedError("relu is not implemented for complex tensors (\"clamp\" has no order for them)")
        if dt == dtypes.bool_:
            raise RuntimeError("Boolean inputs not supported for relu")
        refuse_dtype("clamp_min_scalar_cpu", dt)
        return act.Relu.apply(self)

    def sigmoid(self):
        if self.dtype.is_complex:       # 1 / (1 + e**-z): the engines' kernels are real-valued
            return 1 / (1 + (-self).exp())
        return act.Sigmoid.apply(_floating(self))

    def tanh(self):
        return act.Tanh.apply(_floating(self, True))

    def gelu(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return act.Gelu.apply(_floating(self), approximate=approximate)

    def softmax(self, axis=None, dtype=None, *, dim=None):
        """exp(x) / sum(exp(x)) along ``axis`` (default -1), computed stably; in ``dtype`` when
        given (the input cast first, as torch's)."""
        x = _floating(self if dtype is None else self.to(dtype))
        if x.dtype in dtypes.HALVES:     # torch's CPU kernel computes halves in float32, rounded once
            return x.float().softmax(axis, dim=dim).to(x.dtype)
        # torch's result is row-major (its kernel reads a contiguous copy); the engines' keep x's layout
        return act.Softmax.apply(x.contiguous(), normalize_axis(_pick(axis, dim, default=-1), self.ndim, "softmax"))

    def log_softmax(self, axis=None, dtype=None, *, dim=None):
        """log(softmax(x)) along ``axis`` (default -1), without forming softmax (stable); in
        ``dtype`` when given."""
        x = _floating(self if dtype is None else self.to(dtype))
        if x.dtype in dtypes.HALVES:     # as softmax: in float32, rounded once
            return x.float().log_softmax(axis, dim=dim).to(x.dtype)
        return act.LogSoftmax.apply(x.contiguous(), normalize_axis(_pick(axis, dim, default=-1), self.ndim,
                                                                  "log_softmax"))

    def masked_fill(self, mask, value):
        """``value`` where ``mask`` is True, this tensor elsewhere (differentiable in this tensor).
        The result has this tensor's dtype, as in torch (0.5 into an int64 tensor is 0)."""
        if isinstance(mask, Tensor) and mask.dtype != dtypes.bool_:
            raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {mask.dtype}")
        value = _scalar(value)
        if isinstance(value, Tensor):
            if value.ndim:
                raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor "
                                   f"with {value.ndim} dimension(s).")
            if value.dtype.is_complex and not self.dtype.is_complex:   # torch's checked conversion
                checked_scalar(value.item(), self.dtype, "masked_fill's value")    # a non-zero imaginary part raises
                value = value.real
            if value.dtype != self.dtype:
                value = value.to(self.dtype)
            return _masked_fill(self, mask, value)
        value = checked_scalar(_fill(value), self.dtype, "masked_fill's value")   # uint8 takes -1 as 255
        if not self.dtype.is_floating_point:
            value = Tensor._wrap(B.asarray(value, dtype=self.dtype))
        return _masked_fill(self, mask, value)

    def matmul(self, other):
        return matmul(self, other)


def matmul(input, other):
    """Matrix product with numpy's rules: vectors, matrices, and batches of matrices (broadcast)."""
    a, b = _operand(input, "matmul"), _operand(other, "matmul")
    if (type(a) is not Tensor and is_nested(a)) or (type(b) is not Tensor and is_nested(b)):
        return a.matmul(b) if is_nested(a) else b.__rmatmul__(a)   # gt.nested's product
    if type(a) is not Tensor and getattr(a, "_is_sparse_layout", False):     # a sparse tensor's own product
        return a.matmul(b)
    if getattr(b, "_is_sparse_layout", False):
        return b.__rmatmul__(a)
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both operands must be tensors or arrays, not Python scalars")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"both arguments to matmul need to be at least 1D, but they are {a.shape} and {b.shape}")
    k_b = b.shape[-2] if b.ndim >= 2 else b.shape[0]
    if a.shape[-1] != k_b:
        raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: {a.shape[-1]} (last dim of the "
                         f"first) != {k_b} ({'second-to-last' if b.ndim >= 2 else 'only'} dim of the second)")
    da = a.dtype
    if da is not b.dtype:       # dtypes are singletons: the product of one dtype reads nothing more
        if isinstance(input, Tensor) and isinstance(other, Tensor):
            refuse_matmul(a, b)     # (but autocast's float operands: its engine products take them)
        a, b = _promote_ints(a, b)      # a numpy array beside a tensor promotes (gt's extension: torch refuses it)
    elif da is dtypes.bool_:
        refuse_bool_matmul(a, b)
    if a.ndim > 2 or b.ndim > 2:
        try:
            broadcast_shape("matmul", a.shape[:-2], b.shape[:-2])
        except ValueError as exc:
            raise ShapeError(f"matmul: shapes {a.shape} and {b.shape}: the batch dims {a.shape[:-2]} and "
                             f"{b.shape[:-2]} cannot be broadcast together ({exc})") from None
    return linalg.Matmul.apply(a, b)


def _masked_fill(x, mask, value):
    # torch fills a row-major clone of x: its result is row-major whatever x's layout (where's keeps it)
    return where(mask.contiguous() if isinstance(mask, Tensor) else mask, value, x.contiguous())


def where(condition, input=_ALONE, other=_ALONE):
    """Elements of ``input`` where ``condition`` is True, else of ``other`` (broadcasting;
    differentiable in both). ``where(condition)`` alone is ``condition.nonzero(as_tuple=True)``, as torch's."""
    a, b = input, other
    cond = condition if isinstance(condition, Tensor) else Tensor._wrap(B.asarray(condition))
    if a is _ALONE or b is _ALONE:
        if a is not b:
            raise TypeError("where: give both input and other, or neither (where(condition) is condition.nonzero(as_tuple=True))")
        return cond.nonzero(as_tuple=True)
    for x in (cond, a, b):      # gt.nested's form where one of them is a nested tensor
        if type(x) is not Tensor and is_nested(x):
            return x.__gt_function__(where, (cond, a, b), {})
    a, b = _operand(a, "where"), _operand(b, "where")
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        a, b = _promote_ints(a, b)    # an int tensor meeting a float: float32 or the tensor's dtype
        t = a if isinstance(a, Tensor) else b
        if t.dtype in dtypes.SMALL_INTS:     # torch's checked cast of a number into it (uint8 takes -1 as 255)
            a, b = (checked_scalar(x, t.dtype, "where's value") if type(x) is int else x for x in (a, b))
    else:
        # two numbers: torch's dtype (a float: the default float, not numpy's float64); the second a weak scalar
        kind = (dtypes.default_float if any(isinstance(x, float) for x in (a, b))
                else dtypes.bool_ if isinstance(a, bool) and isinstance(b, bool) else dtypes.int64)
        a = Tensor._wrap(B.asarray(a, dtype=kind))
    shape = cond.shape
    for x in (a, b):
        if isinstance(x, Tensor):
            shape = broadcast_shape("where", shape, x.shape)
    return ew.Where.apply(cond, a, b)
