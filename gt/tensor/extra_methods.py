"""torch's tensor methods that gt makes from its own ops: ``//`` and ``%``, rounding, ``isnan``,
``amax``, ``norm``, ``repeat``, ``tril``, ``flip``, ``lerp``... (``new_zeros`` and the other
``new_*``: new_tensor_methods.py).
Their values, dtypes and gradients are torch's (tests/test_extra_methods.py runs each beside
torch); where torch has no gradient (``//``, the comparisons) none is recorded here either.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import math

from gt import autograd, dtypes
from gt.autograd.sparse_grad import mark
from gt.backend import B
from gt.ops import elementwise as ew
from gt.ops import reductions as reduction_ops
from gt.ops import shape as shape_ops
from gt.ops._shapes import broadcast_shape, normalize_axes, normalize_axis, reduction_axes
from gt.ops.rsqrt import Rsqrt
from gt.tensor._args import _pick, _varargs, narrow_bounds, narrow_check, norm_input
from gt.tensor.complex_checks import refuse_complex_bound, refuse_complex_extremum, refuse_complex_pair
from gt.tensor.product_dtypes import refuse_matmul
from gt.tensor.construct_methods import _own_memory
from gt.tensor.linalg_methods import nuclear_norm
from gt.tensor.rounded_division import float_remainder, floor_divide, no_derivative, rounded_quotient
from gt.tensor.shape import _named, torch_node_name
from gt.tensor.arithmetic import _floating, _number_beside, _operand, _promote_ints, where, ShapeError
from gt.tensor.bool_int_refusals import _refuse_bools, _refuse_integer_zero, refuse_bool_subtraction
from gt.tensor.int_scalars import checked_alpha, checked_scalar, int_wrapped
from gt.tensor.nested_operands import is_nested

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

def _sizes(size, name):
    """A shape from ``(2, 3)``, ``[2, 3]`` or the varargs ``2, 3`` (torch takes all three)."""
    if len(size) == 1 and not hasattr(size[0], "__index__"):
        size = tuple(size[0])
    if not all(hasattr(n, "__index__") and int(n) >= 0 for n in size):
        raise ValueError(f"{name}: expected sizes that are non-negative ints, got {size!r}")
    return tuple(int(n) for n in size)


class ExtraMethods:
    __slots__ = ()

    # ---- integer division and remainder ---------------------------------------------------------
    def __floordiv__(self, other):
        """``floor(self / other)`` (torch's ``floor_divide``; exact where ``(a / b).floor()`` is not)."""
        if type(other) is not Tensor and is_nested(other):
            return other.__rfloordiv__(self)        # gt.nested's (which refuses, as torch's)
        return floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _number_beside(other, self).__floordiv__(self)

    floor_divide = __floordiv__

    def __mod__(self, other):
        """The remainder with the divisor's sign (Python's and torch's ``remainder``), as torch's
        kernel computes it (rounded_division.py); gradients 1 and ``-(self // other)``, as torch's."""
        other = _operand(other, "%")
        if type(other) is not Tensor and is_nested(other):
            return other._reflected("remainder", self)      # ``x % nt``: the nested tensor's op (gt.nested)
        refuse_complex_pair(self, other, "remainder_cpu")
        if isinstance(other, Tensor):       # torch's RuntimeError (numpy's would be a ValueError)
            broadcast_shape("remainder", self.shape, other.shape)
        if not self.dtype.is_floating_point and not (isinstance(other, Tensor) and other.dtype.is_floating_point) \
                and not isinstance(other, float):
            # integers: exact, and nothing to differentiate
            a, b = int_wrapped(*_promote_ints(self, other))     # int32 % int64 0-d is int32, as torch
            _refuse_bools(a, b, "remainder_cpu")
            _refuse_integer_zero(a, b, "%")
            return Tensor._wrap(a._data % (b._data if isinstance(b, Tensor) else b))
        a, b = _promote_ints(self, other)
        return float_remainder(a, b)

    def __rmod__(self, other):
        if isinstance(other, Tensor):
            return other.__mod__(self)
        # torch's remainder with a number first has no derivative: its backward raises
        return no_derivative(_number_beside(other, self).__mod__(self), "aten::remainder")

    remainder = __mod__

    # ---- tests of values (bool tensors, no gradient) ----------------------------------------
    def isnan(self):
        return self != self

    def isinf(self):
        return self.abs() == math.inf if self.dtype.is_floating_point else self != self

    def isfinite(self):
        return Tensor._wrap(B.isfinite(self._data))

    def logical_not(self):
        return self == 0

    def logical_and(self, other):
        return (self != 0) & (_operand(other, "logical_and") != 0)

    def logical_or(self, other):
        return (self != 0) | (_operand(other, "logical_or") != 0)

    # ---- reductions ---------------------------------------------------------------------------
    def amax(self, dim=(), keepdim=False):
        """The largest values over ``dim`` (an int, a tuple; ``()``: all), the gradient split
        evenly among ties (torch's ``amax``; NaN over a slice whose largest value is NaN)."""
        try:
            return self.max(_all_dims(self) if dim == () else dim, keepdims=keepdim)
        except RuntimeError as error:   # max's refusal of a complex tensor (no check added on the way): amax's words
            if type(error) is not RuntimeError or not self.dtype.is_complex:
                raise
        refuse_complex_extremum(self, "amax", True)

    def amin(self, dim=(), keepdim=False):
        try:
            return self.min(_all_dims(self) if dim == () else dim, keepdims=keepdim)
        except RuntimeError as error:
            if type(error) is not RuntimeError or not self.dtype.is_complex:
                raise
        refuse_complex_extremum(self, "amin", True)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """The vector ``p``-norm over ``dim`` (None: every element): 2 (or ``"fro"``), 1, ``inf``,
        ``-inf``, 0 (the count of non-zero elements) or any other number, negative ones included;
        ``"nuc"``: a matrix's nuclear norm. A p-norm's gradient is 0 where it is 0 (torch's). A
        complex tensor's norm is real (of the moduli), as torch's. ``dtype``: computed in it (a cast first)."""
        if p is None:       # torch's default, spelled out (``torch.norm(x, None, dim)``)
            p = "fro"
        x = _floating(norm_input(self, dtype), True)
        if x.dtype.is_complex and p != "nuc":       # the moduli's norm: their gradient z / |z| is torch's
            return x.abs().norm(p, dim, keepdim)
        if x.dtype in dtypes.HALVES and p != math.inf and p != -math.inf:
            # summed in float32 and rounded back, as torch does (squares of half values overflow)
            return x.to(dtypes.float32).norm(p, dim, keepdim).to(x.dtype)
        if p == "nuc":
            return nuclear_norm(x, dim, keepdim)
        axes = reduction_axes(dim, x.ndim, "norm") if x.ndim else None    # a 0-d tensor's dim 0 or -1: itself
        if p in (2, "fro"):
            return reduction_ops.Norm2.apply(x, axes, bool(keepdim))
        if p == math.inf or p == -math.inf:
            a = x.abs()
            a._nonempty("norm", axes)
            op = reduction_ops.NormMax if p > 0 else reduction_ops.NormMin
            return a._reduce(op, "norm", axes, keepdim, None, False)
        if not isinstance(p, (int, float)) or isinstance(p, bool) or math.isnan(p):
            raise ValueError(f"norm: p must be 'fro', 'nuc', inf, -inf or a number, got {p!r}")
        if p == 0:                       # how many are not 0 (NaN counts), with torch's undefined gradient
            return reduction_ops.NormCount.apply(x, axes, bool(keepdim))
        if p == 1:
            return x.abs().sum(axes, keepdims=keepdim)
        # a negative p at a 0: 0 ** p is inf, and the norm 0, as torch; torch's gradient, 0 at a zero norm
        return reduction_ops.NormP.apply(x, p, axes, bool(keepdim))

    # ---- shapes -------------------------------------------------------------------------------
    def repeat(self, *sizes):
        """This tensor tiled ``sizes`` times along each axis (torch's ``repeat``: leading new axes
        where ``sizes`` is longer than the shape); differentiable."""
        sizes = _sizes(sizes, "repeat")
        if len(sizes) < self.ndim:
            raise ShapeError(f"repeat: {len(sizes)} repeat counts for a tensor of {self.ndim} dims "
                             f"(shape {self.shape}): give at least one count per dim")
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        interleaved = tuple(n for pair in zip((1,) * len(shape), shape) for n in pair)
        tiled = tuple(n for pair in zip(sizes, shape) for n in pair)
        out = self.reshape(interleaved).expand(tiled).reshape(tuple(r * n for r, n in zip(sizes, shape)))
        return _named(_own_memory(out, all(r == 1 for r in sizes)), self, "RepeatBackward0")

    def _triangle(self, diagonal, lower, name):
        if self.ndim < 2:
            raise ShapeError(f"{name}: expected a tensor of at least 2 dims, got shape {self.shape}")
        rows, cols = self.shape[-2:]
        offset = Tensor._wrap(B.arange(0, rows, 1, dtypes.int64)).reshape(rows, 1) - \
            Tensor._wrap(B.arange(0, cols, 1, dtypes.int64)).reshape(1, cols)
        keep = offset >= -diagonal if lower else offset <= -diagonal
        out = where(keep, self, False if self.dtype == dtypes.bool_ else 0)     # bools stay bools
        return _named(out, self, "TrilBackward0" if lower else "TriuBackward0")

    def tril(self, diagonal=0):
        """The lower triangle of the last two axes (``diagonal`` above the main one kept too)."""
        return self._triangle(diagonal, True, "tril")

    def triu(self, diagonal=0):
        return self._triangle(diagonal, False, "triu")

    def flip(self, *dims, **kwargs):
        """The elements in reverse order along ``dims``: ``flip(0)``, ``flip((0, 1))``, ``flip(0, 1)``
        or ``flip(dims=...)``, as torch."""
        if set(kwargs) - {"dims"} or (dims and kwargs):
            raise TypeError(f"flip(): expected the dims, one by one, as a tuple or as dims=, got {dims!r} {kwargs!r}")
        dims = kwargs["dims"] if kwargs else _varargs(dims, "flip")
        if dims is None:
            raise TypeError("flip() missing required argument 'dims'")
        axes = normalize_axes(dims, self.ndim, "flip")
        # the op itself: a tensor's own indexing refuses negative steps, as torch's
        out = shape_ops.GetItem.apply(self, tuple(slice(None, None, -1) if i in axes else slice(None)
                                                  for i in range(self.ndim)))
        # numpy's reversed slice is a view: a copy of it in this tensor's layout (torch's flip keeps the
        # input's order of dims, as a clone does); a 0-d tensor takes dim 0 or -1 (torch's wrap)
        return _named(mark(out.clone(), ("refuse", "flip")), self, "FlipBackward0")

    # ---- products and blends --------------------------------------------------------------------
    def outer(self, vec2):
        """``self[i] * vec2[j]`` for two 1-D tensors."""
        other = _operand(vec2, "outer")
        if self.ndim != 1 or not isinstance(other, Tensor) or other.ndim != 1:
            raise ShapeError(f"outer: Expected 1-D argument {'self' if self.ndim != 1 else 'vec2'}, got shapes "
                             f"{self.shape} and {getattr(other, 'shape', other)}")
        return self.reshape(-1, 1) * other.reshape(1, -1)

    @torch_node_name("BmmBackward0")
    def bmm(self, mat2):
        """Batched matrix product of (b, n, m) and (b, m, p) tensors (no broadcasting, as torch)."""
        other = _operand(mat2, "bmm")
        if self.ndim != 3 or not isinstance(other, Tensor) or other.ndim != 3 or self.shape[0] != other.shape[0]:
            raise ShapeError(f"bmm: expected two 3-D tensors with the same batch size, got shapes {self.shape} "
                             f"and {getattr(other, 'shape', other)}")
        return self @ other

    def square(self):
        x = self.to(dtypes.int64) if self.dtype == dtypes.bool_ else self     # torch squares bools as int64
        return x * x

    def reciprocal(self):
        return ew.Div.apply(1.0, _floating(self, True), reciprocal=True)   # torch's saves its result

    def rsqrt(self):
        x = _floating(self, True)
        return mark(Rsqrt.apply(x), ("derivative", "rsqrt"), x)

    def clamp_min(self, min):
        return self.clamp(min=refuse_complex_bound(min, "clamp_min"))

    def clamp_max(self, max):
        return self.clamp(max=refuse_complex_bound(max, "clamp_max"))

    def type_as(self, other):
        return self.to(other.dtype)

    # ---- torch's other spellings ------------------------------------------------------------
    def add(self, other, alpha=1):
        """``self + alpha * other``."""
        if type(alpha) is int and alpha == 1 and self.dtype is not dtypes.bool_:
            return self + other
        other = _operand(other, "add")
        if type(alpha) is not int or self.dtype is dtypes.bool_:
            alpha = checked_alpha(self, other, alpha, "add")
        return self + (other if alpha == 1 else _alpha_scaled(self, other, alpha))

    def sub(self, other, alpha=1):
        if type(alpha) is int and alpha == 1:
            return self - other
        other = _operand(other, "sub")
        alpha = checked_alpha(self, other, alpha, "sub") if type(alpha) is not int else alpha
        if alpha != 1:
            refuse_bool_subtraction(self, other)
        return self - (other if alpha == 1 else _alpha_scaled(self, other, alpha))

    def mul(self, other):
        return self * other

    def div(self, other, *, rounding_mode=None):
        """``self / other``; ``rounding_mode="trunc"`` rounds the quotient toward zero and
        ``"floor"`` down, keeping integer dtypes, with a zero gradient (torch's)."""
        if rounding_mode is None:
            return self / other
        return rounded_quotient(self, _operand(other, "div"), rounding_mode)

    divide = div

    def true_divide(self, other):
        return self / other
    multiply, subtract = mul, sub

    def neg(self):
        return -self

    negative = neg

    def mm(self, mat2):
        """The product of two 2-D tensors (no broadcasting, as torch)."""
        other = _operand(mat2, "mm")
        if self.ndim != 2 or not isinstance(other, Tensor) or other.ndim != 2:
            raise ShapeError(f"mm: self and mat2 must be matrices, got shapes {self.shape} and {other.shape}"
                             if isinstance(other, Tensor) else f"mm: mat2 must be a matrix, got {other!r}")
        return self @ other

    def dot(self, other):
        other = _operand(other, "dot")
        if self.ndim != 1 or not isinstance(other, Tensor) or other.shape != self.shape:
            raise ShapeError(f"dot: 1D tensors of one length expected: {self.shape}, {getattr(other, 'shape', other)}")
        if self.dtype is not other.dtype:
            refuse_matmul(self, other, autocast=False)     # dot is not one of autocast's ops
        if self.dtype == dtypes.bool_:
            raise NotImplementedError("\"dot\" not implemented for 'Bool'")
        product = self * other      # summed in its own dtype: torch's int32 dot is int32 (sum() gives int64)
        out = product.sum() if product.dtype.is_floating_point else product.sum(dtype=product.dtype)
        return _named(out, self, "DotBackward0")

    def t(self):
        """The transpose of a tensor of at most 2 dims (torch's ``t``)."""
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor of at most 2 dims, got shape {self.shape}; use transpose or mT")
        # of fewer dims: an alias view, as torch's (not the tensor itself: its own flags, shape and history)
        return _named(self.view(self.shape) if self.ndim < 2 else self.transpose(0, 1), self, "TBackward0")

    def expand_as(self, other):
        return self.expand(*other.shape)

    def broadcast_to(self, shape):
        return self.expand(*shape)        # expand's checks; -1 keeps a size, as torch

    def swapaxes(self, axis0, axis1):
        return self.transpose(axis0, axis1)

    def swapdims(self, dim0, dim1):
        return self.transpose(dim0, dim1)

    def movedim(self, source, destination):
        """Axis ``source`` moved to position ``destination`` (ints, or tuples of them)."""
        src = [normalize_axis(s, self.ndim, "movedim") for s in ((source,) if isinstance(source, int) else source)]
        dst = [normalize_axis(d, self.ndim, "movedim")
               for d in ((destination,) if isinstance(destination, int) else destination)]
        if len(src) != len(dst) or len(set(src)) != len(src) or len(set(dst)) != len(dst):
            raise ShapeError(f"movedim: source {source!r} and destination {destination!r} must be distinct axes, "
                             "as many of each")
        order = [a for a in range(self.ndim) if a not in src]
        for d, s in sorted(zip(dst, src)):
            order.insert(d, s)
        return self.permute(order[:self.ndim])      # a 0-d tensor's dim 0 (or -1) is no axis to move

    moveaxis = movedim

    def tile(self, *reps, dims=None):
        dims = _sizes(reps if dims is None else (dims,), "tile")
        return self.repeat(*((1,) * (self.ndim - len(dims)) + dims))

    def narrow(self, dim, start, length):
        """``length`` elements of axis ``dim`` from ``start`` (a view in torch; here a slice)."""
        start, length = narrow_bounds(start, length)
        if not self.ndim:
            raise ShapeError("narrow() cannot be applied to a 0-dim tensor.")
        dim = normalize_axis(dim, self.ndim, "narrow")
        start = narrow_check(start, length, self.shape[dim])
        return self[(slice(None),) * dim + (slice(start, start + length),)]

    def unbind(self, dim=0):
        """The slices along ``dim``, as a tuple (each without that axis)."""
        if not self.ndim:
            raise IndexError(f"unbind: Dimension specified as {dim} but tensor has no dimensions")
        dim = normalize_axis(dim, self.ndim, "unbind")
        return tuple(_named(self[(slice(None),) * dim + (i,)], self, "UnbindBackward0") for i in range(self.shape[dim]))

    @torch_node_name("RollBackward0")
    def roll(self, shifts, dims=None):
        """Elements shifted along ``dims`` (None: the flattened tensor) by ``shifts``, wrapping round."""
        if dims is None:
            return self.reshape(-1).roll(shifts, 0).reshape(self.shape)
        shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        if len(shifts) != len(dims):
            raise ShapeError(f"roll: {len(shifts)} shifts for {len(dims)} dims")
        out = self
        for shift, dim in zip(shifts, dims):
            n = self.shape[dim]
            k = shift % n if n else 0
            if k:
                head = (slice(None),) * (dim % self.ndim)
                out = shape_ops.Cat.apply(out[head + (slice(n - k, None),)], out[head + (slice(0, n - k),)],
                                          axis=dim % self.ndim)
        return _own_memory(out, out is self)

    def count_nonzero(self, *dims, dim=None):
        """How many elements are not 0, over ``dim`` (an int, a tuple, or ints one by one)."""
        return (self != 0).to(dtypes.int64).sum(_pick(_varargs(dims, "count_nonzero"), dim, "dims"))

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        """NaN, inf and -inf replaced (by default with 0 and the dtype's largest and smallest values)."""
        if not self.dtype.is_floating_point:
            return self.clone()
        big = dtypes.FLOAT_MAX[self.dtype.name]   # torch's default for inf and -inf: the largest finite value
        # each mask from the input: a NaN replaced by -inf (nan=-inf) stays -inf, as torch's
        out = where(self == math.inf, big if posinf is None else posinf, self)
        out = where(self == -math.inf, -big if neginf is None else neginf, out)
        return mark(where(self != self, nan, out), ("derivative", "nan_to_num"), self)

    def log2(self):
        """The base-2 logarithm (the engine's ``log2``, as torch's: ``log(x) / log(2)`` was an ulp
        away in a third of the elements)."""
        return _floating(self, True).log() / math.log(2.0) if self.dtype.is_complex else self._math("log2")

    def log10(self):
        """The base-10 logarithm (the engine's ``log10``)."""
        return _floating(self, True).log() / math.log(10.0) if self.dtype.is_complex else self._math("log10")

    def allclose(self, other, rtol=1e-5, atol=1e-8, equal_nan=False):
        """Whether every element is within ``atol + rtol * |other|`` of ``other`` (a Python bool; nested: refused)."""
        other = other.allclose(self) if is_nested(other) else _operand(other, "allclose")
        if other.dtype != self.dtype:       # (isclose promotes)
            raise RuntimeError(f"{dtypes.torch_type_name(self.dtype.name)} did not match "
                               f"{dtypes.torch_type_name(other.dtype.name)} (allclose takes one dtype, as torch's)")
        with autograd.no_grad():
            other = other if isinstance(other, Tensor) else Tensor._wrap(B.asarray(other))
            finite = self.isfinite() & other.isfinite()
            a, b = where(finite, self, 0), where(finite, other, 0)       # no inf - inf to warn about
            close = (finite & ((a - b).abs() <= atol + rtol * b.abs())) | (self == other)   # ==: equal infinities
            if equal_nan:
                close = close | (self.isnan() & (other != other))
            return bool(close.all())

    def equal(self, other):
        """Whether ``other`` has this shape and the same elements (a Python bool; nested: refused)."""
        other = other.equal(self) if is_nested(other) else _operand(other, "equal")
        return isinstance(other, Tensor) and other.shape == self.shape and bool((self == other).all())


def _all_dims(t):
    """Every dim spelled out: torch's amax/amin over ``()``, whose gradient is not max()'s."""
    return tuple(range(t.ndim))


def _alpha_scaled(x, other, alpha):
    """``alpha * other`` for ``x + alpha * other``: a bool ``other`` is scaled in ``x``'s dtype, so
    that the sum has torch's dtype (int32 plus a scaled bool tensor stays int32, not int64)."""
    if type(other) is bool and type(alpha) is bool:      # (Python's True * False is the int 0)
        return other and alpha
    if isinstance(other, Tensor) and other.dtype is dtypes.bool_ and x.dtype is not dtypes.bool_:
        other = other.to(x.dtype)
    if type(alpha) is int and x.dtype in dtypes.SMALL_INTS and getattr(other, "dtype", x.dtype) is x.dtype \
            and not isinstance(other, float):
        alpha = checked_scalar(alpha, x.dtype, "alpha")   # torch's checked cast (uint8: -1 is 255)
    return _scaled(other, alpha)


def _scaled(t, factor):
    """``t * factor`` for a number ``factor`` of a composite (``add``'s ``alpha``, ``lerp``'s
    ``weight``): torch keeps such a number as a Scalar, not a saved tensor, so a second backward
    through it works (gt/autograd/release.py)."""
    if not isinstance(t, Tensor) or not isinstance(factor, (int, float)) or isinstance(factor, bool):
        return t * factor
    a, b = _promote_ints(t, factor)
    return ew.Mul.apply(a, b, scalar=True)
