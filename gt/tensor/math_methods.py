"""torch's elementwise math functions, ``prod`` and ``cumprod`` as tensor methods: ``x.sin()``,
``x.atan2(y)``, ``x.logit(eps=1e-6)``, ``x.prod(dim=1)``... and the function forms of the binary
ones (``gt.atan2(y, x)``). The ops and their gradients are in gt/ops/math_functions.py.

Every function keeps the shape of its input (binary ones: the broadcast shape of both). Integer
and bool tensors become float32 first, as in torch; values outside a function's domain are NaN
(``asin(2)``), at its poles inf (``atanh(1)``), as in torch, without warnings.

Two integer (or bool) tensors: ``atan2`` and ``xlogy`` compute them in float32; ``hypot`` and
``logaddexp`` refuse them, as torch's (NotImplementedError: it has float kernels only). Where gt
differs from torch: ``prod`` takes ``dim=None`` (all elements, with ``keepdim`` too) and a
tuple of dims, where torch takes one int.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import math

from gt import amp, dtypes
from gt.backend import B
from gt.ops import elementwise as ew
from gt.ops import math_functions as mf
from gt.ops import reductions
from gt.ops._shapes import broadcast_shape, normalize_axes, normalize_axis, reduction_axes
from gt.tensor._args import _pick, _scalar
from gt.tensor.arithmetic import _floating, _operand, _promote_ints, where
from gt.tensor.complex_checks import is_complex_operand, refuse_complex_pair
from gt.tensor.complex_math import complex_logaddexp
from gt.tensor.nested_operands import nested_pair
from gt.tensor.promotion import result_dtype
from gt.tensor.shape import _named
from gt.tensor.number_first import tensors_only
from gt.tensor.wide_uints import refuse_op, refuse_target

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

_WIDTH = {"float16": 1, "bfloat16": 1, "float32": 2, "float64": 3}


def _same_float(a, b):
    """Two float tensors in torch's common dtype: the wider one's, where a 0-d tensor (a wrapped
    number) yields to a tensor with dims (float16 with bfloat16: float32)."""
    if a.dtype == b.dtype:
        return a, b
    if (a.ndim == 0) != (b.ndim == 0):
        target = b.dtype if a.ndim == 0 else a.dtype
    else:
        wa, wb = _WIDTH[a.dtype.name], _WIDTH[b.dtype.name]
        target = a.dtype if wa > wb else b.dtype if wb > wa else dtypes.float32
    return a.to(target), b.to(target)


def _in_dtype(out, x, dtype):
    """``out`` in ``x``'s dtype where ``dtype`` was given: integers multiply in int64, but torch's
    ``dtype=int32`` result is int32."""
    return out if dtype is None or out.dtype == x.dtype else out.to(x.dtype)


def _shifted_logsumexp(x, axes):
    """``log(sum(exp(x)))`` over ``axes`` (dims kept) from composed ops, shifted by the largest real
    part: a row of -inf (or inf) keeps torch's answer; over no element, -inf."""
    if x.numel() == 0:
        shift = x.detach().sum(axes, keepdims=True)
    else:
        shift = x.detach().real.amax(axes if axes is not None else (), keepdim=True)
        shift = where(shift.abs() == math.inf, 0.0, shift)
    return (x - shift).exp().sum(axes, keepdims=True).log() + shift


def binary_math(name, a, b):
    """``name`` (gt/backend/engine_math.BINARY) of ``a`` and ``b``: tensors, arrays or numbers
    (at least one tensor or array), broadcast together, in torch's float dtype."""
    return mf.BinaryMathFunction.apply(*float_pair(name, a, b), name)


def float_pair(name, a, b):
    """``a`` and ``b`` (tensors, arrays or numbers, at least one a tensor or an array) as two float
    tensors of torch's common dtype, checked to broadcast."""
    a, b = _operand(a, name), _operand(b, name)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}: expected at least one tensor, got {type(a).__name__} and {type(b).__name__}")
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        broadcast_shape(name, a.shape, b.shape)
    promoted = _promote_ints(a, b)
    refuse_op(name, *promoted)
    if not (isinstance(a, Tensor) and isinstance(b, Tensor) and not promoted[0].dtype.differentiable):
        a, b = promoted
    # two integer tensors go to float each from its own dtype, as torch's kernels read them: through
    # their common integer dtype a 0-d int64 -2 beside uint8 would be 254
    a, b = (_floating(x) if isinstance(x, Tensor) else x for x in (a, b))
    # a number takes the tensor's dtype (torch's "weak" scalar), as a 0-d tensor both engines take
    if not isinstance(a, Tensor):
        a = Tensor._wrap(B.full((), float(a), b.dtype))
    elif not isinstance(b, Tensor):
        b = Tensor._wrap(B.full((), float(b), a.dtype))
    return _same_float(a, b)


@nested_pair
def xlogy(input, other):
    """``input * log(other)``, 0 where ``input`` is 0 (unless ``other`` is NaN), as ``torch.xlogy``;
    either may be a number. Shapes broadcast.

        >>> gt.xlogy(gt.tensor([0.0, 2.0]), gt.tensor([0.0, 1.0])).tolist()
        [0.0, 0.0]
    """
    refuse_complex_pair(input, other, "xlogy_cpu")
    return binary_math("xlogy", input, other)


@nested_pair
def atan2(input, other):
    """The angle of the point ``(other, input)`` in radians, in [-pi, pi] (``torch.atan2``)."""
    tensors_only("atan2", ("input", input), ("other", other))
    return binary_math("atan2", input, other)


def refuse_integer_pair(name, a, b):
    """torch's NotImplementedError where the tensors ``a`` and ``b`` are both integer or bool: its
    kernel ``name`` (``hypot``, ``logaddexp``, ``igamma``...) has float ones only."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        dt = result_dtype(a, b)
        if not dt.differentiable:
            raise NotImplementedError(f"\"{name}_cpu\" not implemented for '{dtypes.torch_type_name(dt.name)}' "
                                      "(cast an operand to a float dtype)")


@nested_pair
def hypot(input, other):
    """``sqrt(input**2 + other**2)`` without overflow (``torch.hypot``)."""
    tensors_only("hypot", ("input", input), ("other", other))
    refuse_integer_pair("hypot", input, other)
    return binary_math("hypot", input, other)


@nested_pair
def logaddexp(input, other):
    """``log(exp(input) + exp(other))`` without overflow (``torch.logaddexp``; complex too)."""
    tensors_only("logaddexp", ("input", input), ("other", other))
    refuse_integer_pair("logaddexp", input, other)
    if is_complex_operand(input) or is_complex_operand(other):
        return complex_logaddexp(input, other)
    return binary_math("logaddexp", input, other)


arctan2 = atan2


# the functions of MathFunction that take complex tensors, as torch's do
_COMPLEX_MATH = frozenset(("sin", "cos", "tan", "sinh", "cosh", "asin", "acos", "atan", "asinh", "acosh", "atanh",
                           "log1p", "expm1"))

class MathMethods:
    __slots__ = ()

    def _math(self, name):
        return mf.MathFunction.apply(_floating(self, name in _COMPLEX_MATH), name)

    # ---- rounding: a zero gradient, as torch's ------------------------------------------------
    def _rounding(self, how):
        if self.dtype.is_complex:      # torch's kernels refuse complex numbers (numpy's keep them whole)
            if how == "sign":
                raise NotImplementedError("Unlike NumPy, torch.sign is not intended to support complex numbers. "
                                          "Please use torch.sgn instead.")
            if how == "round":
                raise NotImplementedError(f"\"round_vml_cpu\" not implemented for "
                                          f"'{dtypes.torch_type_name(self.dtype.name)}': round the parts")
            raise NotImplementedError(f"{how} is not supported for complex inputs")
        if not self.dtype.is_floating_point and (how != "sign" or self.dtype == dtypes.bool_):
            if self.dtype == dtypes.bool_ and how != "sign":     # torch has no rounding kernel for bools
                raise NotImplementedError(f"\"{how}_vml_cpu\" not implemented for 'Bool'")
            return self.clone()          # integers are already whole, a bool is its own sign (torch: a copy)
        return ew.Rounding.apply(self, how)

    def floor(self):
        return self._rounding("floor")

    def ceil(self):
        return self._rounding("ceil")

    def trunc(self):
        return self._rounding("trunc")

    def round(self, decimals=None):
        """Round to the nearest integer (halves to even, as torch), or to ``decimals`` places.
        Integer tensors round only without ``decimals`` (torch has no kernel for the other forms)."""
        if decimals is not None and not self.dtype.is_floating_point:
            kernel = "round_vml_cpu" if decimals == 0 else "round_cpu"
            raise NotImplementedError(f"\"{kernel}\" not implemented for '{dtypes.torch_type_name(self.dtype.name)}'")
        if not decimals:
            return self._rounding("round")
        if self.dtype in dtypes.HALVES:
            # computed in float32 and rounded back, as torch does (123.456 * 1000 overflows float16)
            return self.to(dtypes.float32).round(decimals).to(self.dtype)
        if decimals > 0:
            scale = 10.0 ** decimals
            return (self * scale)._rounding("round") / scale
        scale = 10.0 ** -decimals       # torch divides by 10 ** -decimals (x * 0.1 is not x / 10)
        return (self / scale)._rounding("round") * scale

    def sign(self):
        return self._rounding("sign")

    def frac(self):
        if not self.dtype.is_floating_point:
            raise NotImplementedError(f"\"frac_cpu\" not implemented for '{dtypes.torch_type_name(self.dtype.name)}'")
        return self - self.trunc().detach()

    # ---- trigonometric and hyperbolic ---------------------------------------------------------
    def sin(self):
        """Sine elementwise (radians).

            >>> gt.tensor([0.0, math.pi / 2]).sin().tolist()
            [0.0, 1.0]
        """
        return self._math("sin")

    def cos(self):
        """Cosine elementwise (radians)."""
        return self._math("cos")

    def tan(self):
        """Tangent elementwise (radians)."""
        return self._math("tan")

    def asin(self):
        """Arcsine elementwise, in [-pi/2, pi/2]; NaN outside [-1, 1]."""
        return self._math("asin")

    def acos(self):
        """Arccosine elementwise, in [0, pi]; NaN outside [-1, 1]."""
        return self._math("acos")

    def atan(self):
        """Arctangent elementwise, in (-pi/2, pi/2)."""
        return self._math("atan")

    def sinh(self):
        """Hyperbolic sine elementwise."""
        return self._math("sinh")

    def cosh(self):
        """Hyperbolic cosine elementwise."""
        return self._math("cosh")

    def asinh(self):
        """Inverse hyperbolic sine elementwise."""
        return self._math("asinh")

    def acosh(self):
        """Inverse hyperbolic cosine elementwise; NaN below 1."""
        return self._math("acosh")

    def atanh(self):
        """Inverse hyperbolic tangent elementwise; +-inf at +-1, NaN beyond."""
        return self._math("atanh")

    arcsin, arccos, arctan = asin, acos, atan
    arcsinh, arccosh, arctanh = asinh, acosh, atanh

    def sinc(self):
        """``sin(pi x) / (pi x)``, 1 at 0 (torch's normalised sinc); its gradient is 0 at 0."""
        if self.dtype.is_complex:       # composed (the kernel is real's), 0/0 kept off the graph at 0
            zero = self == 0
            pz = self.masked_fill(zero, 1) * math.pi
            return (pz.sin() / pz).masked_fill(zero, 1)
        return self._math("sinc")

    def deg2rad(self):
        """Degrees to radians: ``x * pi / 180``."""
        return _floating(self) * (math.pi / 180.0)

    def rad2deg(self):
        """Radians to degrees: ``x * 180 / pi``."""
        return _floating(self) * (180.0 / math.pi)

    # ---- exponentials, logarithms and error functions ---------------------------------------
    def log1p(self):
        """``log(1 + x)``, exact for small x; -inf at -1, NaN below."""
        return self._math("log1p")

    def expm1(self):
        """``exp(x) - 1``, exact for small x."""
        return self._math("expm1")

    def exp2(self):
        """``2 ** x`` elementwise (complex too, as torch's)."""
        return 2 ** self if self.dtype.is_complex else self._math("exp2")

    def erf(self):
        """The error function ``2 / sqrt(pi) * integral of exp(-t**2) from 0 to x``."""
        return self._math("erf")

    def erfc(self):
        """``1 - erf(x)``, without its cancellation for large x (``erfc(10)`` is 2.1e-45, not 0)."""
        return self._math("erfc")

    def erfinv(self):
        """The inverse of erf: +-inf at +-1, NaN outside [-1, 1]."""
        return self._math("erfinv")

    def logit(self, eps=None):
        """``log(p / (1 - p))``, the inverse of sigmoid, with ``p`` this tensor clamped to
        ``[eps, 1 - eps]`` when ``eps`` is given (a negative ``eps`` clamps nothing, as torch).
        Without ``eps``: +-inf at 1 and 0, NaN outside [0, 1]; with it the gradient is 0 where
        the clamp bites."""
        eps = _scalar(eps)
        if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float))):
            raise TypeError(f"logit: eps must be a number or None, got {eps!r}")
        return mf.Logit.apply(_floating(self), eps=None if eps is None or eps < 0 else float(eps))

    # ---- binary -------------------------------------------------------------------------------
    # the module functions (a nested ``other`` runs the nested tensor's op: nested_operands.py)
    xlogy, atan2, arctan2, hypot, logaddexp = xlogy, atan2, atan2, hypot, logaddexp

    def logsumexp(self, dim, keepdim=False):
        """``log(sum(exp(x)))`` over ``dim``, computed without overflow; its gradient is the softmax."""
        x = _floating(self, True)       # complex too (torch's): shifted by the largest real part
        axes = reduction_axes(dim, x.ndim, "logsumexp")
        if not keepdim and isinstance(dim, (tuple, list)) and not dim and x.ndim and x.numel():
            # torch 2.13 reduces every dim into a kept (1, ..., 1) and then fails to write it into its () output
            raise RuntimeError(f"output with shape [] doesn't match the broadcast shape {[1] * x.ndim}")
        if x._placed is None:     # one op, torch's backward (reads the input and the result)
            out = reductions.LogSumExp.apply(x, axes if x.ndim else None, True)     # a 0-d x: dim 0 is itself
        else:                     # over the mesh: composed ops, which run there
            out = _shifted_logsumexp(x, axes)
        if not keepdim:
            out = out.reshape(tuple(n for i, n in enumerate(x.shape) if axes is not None and i not in axes))
        return _named(out, self, "LogsumexpBackward0")

    # ---- products -------------------------------------------------------------------------------
    @amp.runs_in_float32      # torch.autocast's fp32 list
    def prod(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=False):
        """The product over ``dim`` (None: every element; an int or a tuple), keeping reduced dims
        with ``keepdim``; ``dtype`` casts first. Integers and bools multiply in int64, as torch.
        The gradient of each element is the product of the others (exact with zeros).

            >>> gt.tensor([[1.0, 2.0], [3.0, 4.0]]).prod(1).tolist()
            [2.0, 12.0]
        """
        refuse_target("prod_out_cpu", dtype)
        x = self if dtype is None else self.to(dtype)
        keep = bool(keepdim or keepdims)
        dim = _pick(axis, dim)
        if not (dim is None or hasattr(dim, "__index__") or isinstance(dim, (tuple, list))):
            raise TypeError(f"prod: dim must be an int, a tuple of ints or None, got {dim!r}")
        axes = normalize_axes(dim, x.ndim, "prod")
        if x.ndim == 0:                 # torch takes dim 0 or -1 of a 0-d tensor: the tensor itself
            out = x.reshape(1).prod(0).reshape(())
        else:
            out = mf.Prod.apply(x, axes, keep)
        return _in_dtype(out, x, dtype)

    def cumprod(self, dim=None, *, dtype=None, axis=None):
        """Running products along ``dim`` (required, as in torch): ``(x0, x0 x1, x0 x1 x2, ...)``.
        Integers and bools multiply in int64; ``dtype`` casts first. Exact gradients with zeros.

            >>> gt.tensor([1, 2, 3]).cumprod(0).tolist()
            [1, 2, 6]
        """
        if dim is None and axis is None:
            raise TypeError("cumprod: dim is required (the axis to multiply along), e.g. x.cumprod(dim=-1)")
        refuse_target("cumprod_out_cpu", dtype)
        x = self if dtype is None else self.to(dtype)
        dim = _pick(axis, dim)
        if x.ndim == 0:
            normalize_axis(dim, 0, "cumprod")
            return _in_dtype(x.reshape(1).cumprod(0).reshape(()), x, dtype)
        return _in_dtype(mf.Cumprod.apply(x, axis=normalize_axis(dim, x.ndim, "cumprod")), x, dtype)
