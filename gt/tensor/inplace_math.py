"""torch's in-place forms of the math methods (``x.exp_()``, ``x.clamp_(0, 1)``, ``x.pow_(2)``,
``x.lt_(y)``...), the comparison methods they need (``x.lt(y)``, ``x.eq(y)``...), the random fills
(``normal_``, ``uniform_``, ``bernoulli_``, ``exponential_``) and ``detach_``.

Each in-place form is its out-of-place method written back into the tensor's memory: under
``no_grad``, or on a tensor outside the graph, a plain write; on a tensor of the graph, recorded
as torch records it (``inplace_grad.rebase``: earlier uses keep the old values, views follow the
change, the gradient flows through the op). As in torch, the result must fit the tensor's dtype:
a float result is refused for an integer tensor (torch's message), and the comparisons and
logical ops write 0 and 1 in the tensor's own dtype.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import math
import numbers
import operator

from gt import autograd, dtypes
from gt.autograd import function, levels
from gt.autograd.grad_mode import mode
from gt.autograd.sparse_grad import mark
from gt.backend import B
from gt.errors import ShapeError
from gt.ops._shapes import normalize_axis
from gt.tensor import inplace_grad, overlap_writes
from gt.tensor._args import _scalar
from gt.tensor.complex_checks import cpp_name
from gt.tensor.generator import drawing
from gt.tensor.inplace_grad import _assign   # a[...] = v, the plain write of every in-place form
from gt.tensor.promotion import result_dtype

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

# each ``name_`` below is ``name`` written back in place
ARITHMETIC = ("abs", "absolute", "neg", "negative", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt",
              "rsqrt", "sin", "cos", "tan", "asin", "acos", "atan", "arcsin", "arccos", "arctan", "sinh", "cosh",
              "tanh", "asinh", "acosh", "atanh", "arcsinh", "arccosh", "arctanh", "sigmoid", "relu", "erf", "erfc",
              "erfinv", "floor", "ceil", "trunc", "fix", "round", "frac", "sign", "sgn", "reciprocal", "square",
              "sinc", "deg2rad", "rad2deg", "logit", "nan_to_num", "clamp", "clip", "clamp_min", "clamp_max", "pow",
              "lerp", "atan2", "arctan2", "hypot", "xlogy", "remainder", "true_divide", "divide", "multiply",
              "subtract", "floor_divide", "masked_fill", "tril", "triu", "cumsum", "cumprod")
# these write 0/1 in the tensor's dtype, whatever it is (torch's ``lt_`` and the others)
LOGICAL = ("eq", "ne", "lt", "le", "gt", "ge", "not_equal", "greater", "greater_equal", "less", "less_equal",
           "logical_not", "logical_and", "logical_or", "logical_xor")

# not elementwise: each element's value depends on where it is (computed once where elements share memory)
_BY_POSITION = frozenset(("tril", "triu", "cumsum", "cumprod"))

# these check a complex operand of a real tensor themselves (torch: "clamp is not supported for complex types",
# "value cannot be converted to type float without overflow")
_OWN_COMPLEX_CHECK = frozenset(("clamp", "clip", "clamp_min", "clamp_max", "lerp", "masked_fill", "nan_to_num"))

# torch's backwards of these read the result, which their in-place forms write into the tensor
READS_RESULT = frozenset(("exp", "sqrt", "rsqrt", "tanh", "sigmoid", "relu", "reciprocal"))


class InplaceMathMethods:
    __slots__ = ()

    # ---- the comparisons as methods (torch's names; the operators are arithmetic.py's) ----
    # (this tensor's operator, not ``==``: Python hands ``x == nt`` to a nested ``nt``'s ``__eq__``
    # first, a subclass's reflected comparison, where torch's ``x.eq(nt)`` is x's op)
    def eq(self, other):        # (not __eq__: an operand torch cannot take is its TypeError, not unequal)
        return self._compare(other, operator.eq, "eq")

    def ne(self, other):
        return self._compare(other, operator.ne, "ne")

    def lt(self, other):
        return self.__lt__(other)

    def le(self, other):
        return self.__le__(other)

    def gt(self, other):
        return self.__gt__(other)

    def ge(self, other):
        return self.__ge__(other)

    not_equal, greater, greater_equal, less, less_equal = ne, gt, ge, lt, le

    # ---- ``//=``, ``%=``, ``**=``: in place, as torch's (views see the change, the dtype stays) ----
    def __ifloordiv__(self, other):
        return self.floor_divide_(other)

    def __imod__(self, other):
        return self.remainder_(other)

    def __ipow__(self, other):
        return self.pow_(other)

    def logical_xor(self, other):
        return (self != 0) != (_scalar(other) != 0)

    # ---- aliases torch has ----
    def absolute(self):
        return self.abs()

    def fix(self):
        return self.trunc()

    def sgn(self):
        """``sign``; of a complex tensor ``z / |z|`` (0 at 0), torch's ``sgn``, with its gradient."""
        if not self.dtype.is_complex:
            return mark(self.sign(), "dense")     # torch's SgnBackward0 densifies a sparse gradient
        size = self.abs()
        zero = size == 0
        return (self / size.masked_fill(zero, 1)).masked_fill(zero, 0)

    # ---- random fills, in place ----
    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        """Fill with draws from N(``mean``, ``std``^2), from gt's generator (``gt.manual_seed``); a
        complex tensor's parts each from N(``mean``, ``std``^2 / 2) (torch's: ``E|z - mean|^2`` is std^2)."""
        mean, std = _number(mean, "normal_", "mean"), _number(std, "normal_", "std")
        if not std >= 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        cplx = self.dtype.is_complex
        if not cplx:
            _floats_only(self, '"normal_kernel_cpu" not implemented for', NotImplementedError)
        scale = std * math.sqrt(0.5) if cplx else std
        with drawing(generator, "normal_"):
            return _fill(self, "normal_", _in_parts(lambda shape, dt: B.randn(shape, dt) * scale + mean), not cplx)

    def uniform_(self, *args, generator=None, **kwargs):
        """Fill with draws from U(``from``, ``to``) (torch's names; defaults 0 and 1); a complex
        tensor's real and imaginary parts each so (torch's)."""
        if len(args) > 2:
            raise TypeError(f"uniform_() takes at most 2 positional arguments (from, to), got {len(args)}")
        a, b = (tuple(args) + (0.0, 1.0)[len(args):])
        if "from" in kwargs and len(args) >= 1 or "to" in kwargs and len(args) == 2:
            raise TypeError("uniform_() got multiple values for argument 'from' or 'to'")
        a, b = kwargs.pop("from", a), kwargs.pop("to", b)
        if kwargs:
            raise TypeError(f"uniform_() got an unexpected keyword argument {next(iter(kwargs))!r}")
        if not self.dtype.is_complex:
            _floats_only(self, '"check_uniform_bounds" not implemented for', NotImplementedError)
        a, b = _number(a, "uniform_", "from"), _number(b, "uniform_", "to")
        _uniform_bounds(a, b, dtypes.REAL_OF.get(self.dtype.name, self.dtype))
        if not a <= b:
            raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
        with drawing(generator, "uniform_"):
            return _fill(self, "uniform_", _in_parts(lambda shape, dt: B.rand(shape, dt) * (b - a) + a),
                         not self.dtype.is_complex)

    def bernoulli_(self, p=0.5, *, generator=None):
        """Fill with 1 with probability ``p`` (a number or a tensor that broadcasts), else 0."""
        if isinstance(p, Tensor):
            if p.requires_grad:
                raise ValueError("bernoulli_: p must not require grad (the draws have no gradient)")
            if p.ndim > self.ndim or any(n not in (1, m) for n, m in zip(p.shape[::-1], self.shape[::-1])):
                raise RuntimeError(f"bernoulli_: p of shape {list(p.shape)} cannot be expanded to this tensor's "
                                   f"shape {list(self.shape)} (torch's expand error)")
            lo, hi = (float(p.min()), float(p.max())) if p.numel() else (0.0, 1.0)
            prob = p._data
        else:
            lo = hi = prob = float(p)
        if not 0.0 <= lo <= hi <= 1.0:
            raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={lo if not 0.0 <= lo <= 1.0 else hi}"
                               + ("" if lo == hi else f" (p from {lo} to {hi})"))
        with drawing(generator, "bernoulli_"):
            return _fill(self, "bernoulli_", lambda shape, dt: B.astype(B.rand(shape, dtypes.float64) < prob, dt),
                         floats_only=False)

    def exponential_(self, lambd=1.0, *, generator=None):
        """Fill with draws from the exponential distribution of rate ``lambd``."""
        lambd = _number(lambd, "exponential_", "lambd")
        if not lambd > 0:
            raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
        _floats_only(self, "Exponential distribution is a continuous probability distribution. dtype must be a "
                           "floating point but you specified", RuntimeError)
        with drawing(generator, "exponential_"):
            return _fill(self, "exponential_",
                         lambda shape, dt: B.astype(-B.log(1.0 - B.rand(shape, dtypes.float64)) / lambd, dt))

    def detach_(self):
        """Make this tensor a leaf that does not require grad, in place (torch's ``detach_``):
        what it was computed from gets no gradient through it any more."""
        if mode.level:
            levels.refuse_detach_(self)
        if inplace_grad.view_base(self) is not None:
            raise RuntimeError("detach_: this tensor is a view of another tensor in the graph; use detach() "
                               "(out of place) instead, as torch asks")
        self._ctx = None
        self._requires_grad = False
        return self


def _inplace_method(name, logical, operands_fit=True):
    def method(self, *args, **kwargs):
        rec = function.profiling
        if rec is not None and rec.records_call():      # one event, torch's (aten::exp_)
            return rec.call(f"aten::{name}_", False, _write_back, (self, name, logical, args, kwargs, operands_fit), {})
        return _write_back(self, name, logical, args, kwargs, operands_fit)

    method.__name__ = method.__qualname__ = f"{name}_"
    method.__doc__ = (f"``{name}`` written into this tensor in place (torch's ``Tensor.{name}_``); returns it. "
                      + ("0 and 1 in the tensor's own dtype." if logical else "The result keeps the tensor's dtype."))
    return method


for _name in ARITHMETIC:
    setattr(InplaceMathMethods, f"{_name}_", _inplace_method(_name, False))
for _name in LOGICAL:
    setattr(InplaceMathMethods, f"{_name}_", _inplace_method(_name, True))
for _name in ("addmm", "addmv", "addr", "baddbmm", "addbmm"):     # the fused products' in-place forms:
    setattr(InplaceMathMethods, f"{_name}_", _inplace_method(_name, False, False))   # operands of other shapes


def _write_back(t, name, logical, args, kwargs, operands_fit=True):
    what = f"{name}_"
    asked = kwargs.get("dtype") if name in ("cumsum", "cumprod") else None
    if asked is not None and dtypes.to_dtype(asked) != t.dtype:
        raise RuntimeError(f"Bad in-place call: input tensor dtype {cpp_name(t.dtype)} and output tensor dtype "
                           f"{cpp_name(dtypes.to_dtype(asked))} should match")
    if name == "addbmm" and _resizes(t, args, kwargs):
        # torch's addbmm_ makes self the result (n, p), self broadcast into it, where its other in-place
        # ops refuse to change self's shape: a change of self as t_ is (a new version, on the tape)
        return t._reshaped_(what, lambda x: x.addbmm(*args, **kwargs))
    if operands_fit:         # torch's elementwise ops refuse an operand partly in the tensor's memory
        inplace_grad.refuse_shared_input(t, (*args, *kwargs.values()))
    if args and not (logical or t.dtype.is_complex or name in _OWN_COMPLEX_CHECK and
                     (t.dtype.is_floating_point or name not in ("clamp", "clip"))):   # an integer t's clamp_: the cast
        _refuse_complex_result(t, what, args)

    def compute(x, *values, **options):
        out = getattr(x, name)(*values, **(options or kwargs))
        if name == "floor_divide" and out.requires_grad:     # torch's error names the in-place op
            out.grad_fn.aten = "aten::floor_divide_"
        if out.dtype != t.dtype:
            if not (logical or _fits(out.dtype, t.dtype)):
                raise RuntimeError(f"{what}: result type {dtypes.torch_type_name(out.dtype.name)} can't be cast to "
                                   f"the desired output type {dtypes.torch_type_name(t.dtype.name)}")
            out = out.to(t.dtype)
        return out

    if inplace_grad.recorded(t, args, op=what):
        overlap_writes.refuse_recorded(t, name)     # masked_fill_ into an expanded tensor: torch's warning first
        if logical:       # 0/1 have no gradient: the new values are written as constants
            return inplace_grad.assign(t, Ellipsis, compute(t.detach(), *args), what)
        at = [i for i, a in enumerate(args) if isinstance(a, Tensor)]   # what the tape sees (x.pow_(x) too)

        def from_values(x, *tensors):
            full = list(args)
            for i, v in zip(at, tensors):
                full[i] = v
            return compute(x, *full)

        return inplace_grad.rebase(t, what, from_values, *[args[i] for i in at], reads_self=True,
                                   same_shape=operands_fit, saves_result=name in READS_RESULT)
    with autograd.no_grad():
        if operands_fit and name not in _BY_POSITION and overlap_writes.overlapping(t):
            return overlap_writes.recompute(t, compute, args, kwargs)    # windows: element by element, as torch
        if name in ("cumsum", "cumprod") and t.ndim and t.numel() and overlap_writes.overlapping(t):
            # windows: line after line, each reading what the lines before wrote, as torch's kernel
            dim = normalize_axis(kwargs.get("dim", args[0] if args else None), t.ndim, what)
            return overlap_writes.along_lines(t, dim, lambda x: compute(x, **{**kwargs, "dim": -1}))
        new = compute(t, *args)
        if name == "masked_fill" and new.shape == t.shape and overlap_writes.expanded(t, name):
            # torch fills the memory of every element the mask picks (with its deprecation warning)
            mask = kwargs.get("mask", args[0] if args else None).expand(*t.shape)
            return overlap_writes.in_memory(t, lambda mem, pos: mem.index_put_((pos[mask],), new[mask]))
        if name in ("tril", "triu") and overlap_writes.overlapping(t):
            # windows: torch's kernel writes the zeros only (a place zeroed through one element stays 0)
            return overlap_writes.in_memory(t, lambda mem, pos: mem.index_fill_(
                0, pos[getattr(pos + 1, name)(*args, **kwargs) == 0], 0))
    if new.shape != t.shape:
        raise ShapeError(f"{what}: the result has shape {new.shape}, which cannot be written into shape {t.shape}")
    return t._update(_assign, new._value)


def _refuse_complex_result(t, what, args):
    """torch's RuntimeError, raised before its kernel, where a complex operand would make the result
    of an in-place op on the real tensor ``t`` complex (``x.pow_(1j)``; gt's kernels would otherwise
    drop the imaginary part or fail on it)."""
    complex_args = [a for a in args if type(a) is complex or isinstance(a, Tensor) and a.dtype.is_complex]
    if complex_args:
        dt = result_dtype(t, *complex_args)
        raise RuntimeError(f"{what}: result type {dtypes.torch_type_name(dt.name)} can't be cast to the desired "
                           f"output type {dtypes.torch_type_name(t.dtype.name)}")


def _resizes(t, args, kwargs):
    b1, b2 = (args + (None, None))[:2] if args else (None, None)
    b1, b2 = kwargs.get("batch1", b1), kwargs.get("batch2", b2)
    return (isinstance(b1, Tensor) and isinstance(b2, Tensor) and b1.ndim == 3 and b2.ndim == 3
            and t.shape != (b1.shape[1], b2.shape[2]))


def _fits(result, target):
    """Whether an in-place op of ``result`` dtype may write into a ``target`` tensor (torch: an
    integer or bool result into a float tensor, bool into an integer one; not float into integer)."""
    if target.is_floating_point:
        return not result.is_complex
    return result == dtypes.bool_ or (not result.is_floating_point and target != dtypes.bool_)


def _in_parts(draw):
    """``draw(shape, dtype)`` that gives a complex dtype both parts drawn in its real dtype."""
    def run(shape, dt):
        return complex_parts(draw, shape, dt) if dt.is_complex else draw(shape, dt)
    return run


def complex_parts(draw, shape, dt, scale=1.0):
    """An array of the complex ``dt`` whose real and imaginary parts are ``draw(shape + (2,), the
    real dtype)``, times ``scale`` (gt's complex random draws: ``randn``, ``rand``, ``normal_``...)."""
    parts = draw(tuple(shape) + (2,), dtypes.REAL_OF[dt.name])
    parts = parts * scale if scale != 1.0 else parts
    out = B.view_as_complex(parts)      # None where the draw's strides allow no view (an empty shape)
    return out if out is not None else B.make_complex(parts[..., 0], parts[..., 1])


def _fill(t, what, draw, floats_only=True):
    if floats_only and not t.dtype.is_floating_point:
        raise TypeError(f"{what}: expects a floating point tensor, got dtype {t.dtype!r}")
    rec = function.profiling
    if rec is not None and rec.records_call():          # one event, torch's (aten::normal_)
        return rec.call("aten::" + what, False, _fill, (t, what, draw, floats_only), {})
    values = draw(t.shape, t.dtype)
    if inplace_grad.recorded(t, (), op=what):
        return inplace_grad.assign(t, Ellipsis, Tensor._wrap(values), what)
    return t._update(_assign, values)


def _number(value, what, name):
    """``value`` (an int or float, bools too, or a 0-d tensor outside the graph, as torch's), or
    torch's TypeError naming it."""
    if isinstance(value, Tensor) and value.ndim == 0 and not value.requires_grad:
        value = value.item()
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{what}(): argument '{name}' must be float, not {type(value).__name__}")
    return value


def _floats_only(t, words, error):
    """torch's ``error`` (its ``words`` then the dtype's name) unless ``t`` is a float tensor."""
    if not t.dtype.is_floating_point:
        name = dtypes.torch_type_name(t.dtype.name)
        raise error(f"{words} '{name}'" if words.endswith("for") else f"{words} {name}")


def _uniform_bounds(a, b, dt):
    """torch's checks of ``uniform_``'s ends: finite values of ``dt``, ``b - a`` within its range."""
    top = dtypes.FLOAT_MAX[dt.name]
    for name, v in (("from", a), ("to", b)):
        if not -top <= v <= top:
            raise RuntimeError(f"{name} is out of bounds for {cpp_name(dt)}")
    if b - a > top:
        raise RuntimeError(f"uniform_ expects to-from <= std::numeric_limits<{dtypes.torch_type_name(dt.name)}>"
                           f"::max(), but found to={b} and from={a} which result in to-from to exceed the limit")
