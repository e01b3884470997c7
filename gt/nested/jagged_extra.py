"""More of a jagged nested tensor's ops, as torch 2.13's: a dense tensor on the left of a binary op
(``p > nt``, ``gt.atan2(x, nt)``: ``_reflected``, which gt/tensor/nested_operands.py calls), the
binary pointwise ops beyond the arithmetic (``^``, ``bitwise_*``, ``hypot``, ``copysign``,
``isclose``...), every in-place pointwise op (``sin_``...), ``broadcast_to``, ``mT``, ``data``,
torch's cached sequence lengths (``_max_seqlen``/``_min_seqlen``: computed once, passed on by the
ops that keep the offsets) and the private attributes programs read (``_values``, ``_offsets``,
``_lengths``, ``_ragged_idx``). Installed on ``NestedTensor`` by ``install()``."""

from gt.nested.jagged_ops import TENSOR_OTHER, UNARY, _binary, _operand, to_padded_tensor as _padded
from gt.nested.jagged_tensor import NestedBase, NestedTensor, shape_text
from gt.nested.jagged_views import expand
from gt.tensor import Tensor

BINARY = ("bitwise_and", "bitwise_or", "bitwise_xor", "__xor__", "__rxor__", "logical_xor", "hypot", "copysign",
          "fmax", "fmin", "xlogy", "float_power", "logaddexp", "nextafter", "isclose", "arctan2", "greater", "less",
          "greater_equal", "less_equal", "not_equal", "multiply", "subtract", "logaddexp2", "ldexp", "igamma",
          "igammac", "heaviside", "gcd", "lcm", "bitwise_left_shift", "bitwise_right_shift", "__lshift__", "__rshift__")
INPLACE_BINARY = ("atan2_", "fmod_", "remainder_", "hypot_", "copysign_", "maximum_", "minimum_", "bitwise_and_",
                  "bitwise_or_", "bitwise_xor_", "logical_and_", "logical_or_", "logical_xor_", "true_divide_",
                  "lerp_", "xlogy_", "eq_", "ne_", "lt_", "le_", "gt_", "ge_", "float_power_")


def _reflected(self, op, other, *args, **kwargs):
    """``op`` with the dense tensor (or number) ``other`` on the left of this nested tensor:
    ``op`` a Tensor method's name (``other.op(values)``) or a dense function (``op(other, values)``;
    a number is its to take or refuse). ``other`` broadcasts as a binary op's operand (gathered
    per sequence where it has the batch dim)."""
    name = op if isinstance(op, str) else op.__name__
    if not isinstance(other, Tensor) and name in TENSOR_OTHER:      # torch parses its arguments first
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(other).__name__}")
    left = _operand(self, other, name)
    if isinstance(op, str):
        out = getattr(left, op)(self._nt_values, *args, **kwargs)
    else:
        out = op(left, self._nt_values, *args, **kwargs)
    return self._like(out)


def _refuse_reflected(self, op, other, *args, **kwargs):
    name = op if isinstance(op, str) else op.__name__
    raise NotImplementedError(f"Could not run 'aten::{name}' with arguments from the 'NestedTensorCPU' backend (a "
                              "strided nested tensor in gt; layout=gt.jagged supports more ops)")


def _inplace(name):
    def method(self, *args, **kwargs):
        args = [_operand(self, a, name.strip("_")) if isinstance(a, Tensor) else a for a in args]
        kwargs = {k: _operand(self, a, name.strip("_")) if isinstance(a, Tensor) else a for k, a in kwargs.items()}
        getattr(self._nt_values, name)(*args, **kwargs)
        return self

    method.__name__ = name
    method.__doc__ = f"``{name}`` of ``values`` in place (a tensor operand: as a binary op's); itself."
    return method


def clamp(self, min=None, max=None):
    """Each element limited to [``min``, ``max``]: numbers, or one tensor bound (a binary op's
    operand: dense, or nested of this structure) as torch's pointwise rule; two tensor bounds are
    refused, as torch 2.13's (``aten.clamp.Tensor``)."""
    if isinstance(min, Tensor) and isinstance(max, Tensor):
        raise NotImplementedError("aten.clamp.Tensor")
    low, high = (_operand(self, b, "clamp") if isinstance(b, Tensor) else b for b in (min, max))
    return self._like(self._nt_values.clamp(low, high))


def clamp_min(self, min):
    """``clamp(min=min)``."""
    return clamp(self, min=min)


def clamp_max(self, max):
    """``clamp(max=max)``."""
    return clamp(self, max=max)


def _clip_of(self, x, low, high):
    """``x.clamp(low, high)`` of the dense ``x`` with this nested tensor its bound (``gt.clamp(x,
    nt)``), as torch's pointwise rule: this one's op with ``x`` on its left (``_reflected``: the
    strided layout refuses it); two tensor bounds are refused, as torch's ``aten.clamp.Tensor``."""
    if isinstance(low, Tensor) and isinstance(high, Tensor):
        raise NotImplementedError("aten.clamp.Tensor")

    def clamp(left, values):
        return left.clamp(values, None) if self is low else left.clamp(None, values)

    return self._reflected(clamp, x)


def _pointwise(self, fn, op, *args):
    """``fn(*args)`` with this nested tensor among ``args`` (``gt.special``'s functions): torch's
    rule for a pointwise op, ``fn`` of ``values`` with the other tensor as a binary op's operand;
    three tensors are refused, as torch's."""
    if sum(isinstance(a, Tensor) for a in args) > 2:
        raise NotImplementedError(f"aten.{op}.default")
    return self._like(fn(*(self._nt_values if a is self else _operand(self, a, op) if isinstance(a, Tensor) else a
                           for a in args)))


def lerp(self, end, weight):
    """``self + weight * (end - self)``; ``end`` and a tensor ``weight`` as a binary op's operands."""
    weight = _operand(self, weight, "lerp") if isinstance(weight, Tensor) else weight
    return self._like(self._nt_values.lerp(_operand(self, end, "lerp"), weight))


# ``x += y`` & co.: the in-place methods (torch's; ``//=`` is refused, as torch 2.13's floor_divide_)
AUGMENTED = {"__iadd__": "add_", "__isub__": "sub_", "__imul__": "mul_", "__itruediv__": "div_", "__ipow__": "pow_",
             "__imod__": "remainder_", "__iand__": "bitwise_and_", "__ior__": "bitwise_or_",
             "__ixor__": "bitwise_xor_"}


# what torch 2.13 refuses on the jagged layout (its errors), though gt could compute it from the values
REFUSED = {"floor_divide": "aten.floor_divide.default", "__floordiv__": "aten.floor_divide.default",
           "__rfloordiv__": "aten.floor_divide.default", "floor_divide_": "aten.floor_divide_.Tensor",
           "__ifloordiv__": "aten.floor_divide_.Tensor", "abs_": "aten.abs_.default", "absolute_": "aten.abs_.default",
           "masked_fill_": "aten.masked_fill_.Scalar"}
# a number on the left of gt.<name>(number, nt): torch's op, which expects a nested tensor there
_NUMBER_FIRST = {"add": "add", "sub": "sub", "subtract": "sub", "mul": "mul", "multiply": "mul", "div": "div",
                 "divide": "div", "true_divide": "div"}


def _refused(name, message):
    def method(self, *args, **kwargs):
        raise NotImplementedError(message)

    method.__name__ = name
    method.__doc__ = f"Refused, as torch 2.13's jagged layout refuses it ({message})."
    return method


def _number_first(self, name, number, rounding_mode=None, **kwargs):
    """``gt.<name>(number, self)``, as torch 2.13's jagged layout: ``remainder`` and ``pow`` compute, the
    arithmetic raises its ValueError (it reads the number as a non-nested ``self``),
    ``floor_divide`` is refused."""
    if name in ("remainder", "pow"):     # (``pow(True, nt)`` too, where gt.pow(2, nt) reached __rpow__)
        return self.__rmod__(number) if name == "remainder" else self.__rpow__(number)
    if name == "floor_divide":
        raise NotImplementedError("aten.floor_divide.default")
    if name in _NUMBER_FIRST:
        op = _NUMBER_FIRST[name] + (".Tensor" if rounding_mode is None else ".Tensor_mode")
        raise ValueError(f"NestedTensor {op}(self: jt_all, ...): expected self to be a jagged layout NestedTensor")
    raise TypeError(f"gt.{name}(): argument 'input' must be a tensor or an array, not {type(number).__name__} "
                    f"({number!r}); use gt.tensor({number!r})")


# ---- torch's cached sequence lengths ---------------------------------------------------------------
def _seqlen(self, key):
    """The longest (``key`` "max_seqlen") or shortest sequence: cached, as torch's, the first time it
    is asked for (or given to ``nested_tensor_from_jagged``)."""
    value = self._nt_meta.get(key)
    if value is None:
        lengths = self._host()[1]
        value = self._nt_meta[key] = (max if key == "max_seqlen" else min)(lengths, default=0)
    return value


def fill_seqlens(t):
    """``t`` with both lengths cached (torch's constructors from a list of tensors do so)."""
    _seqlen(t, "max_seqlen")
    _seqlen(t, "min_seqlen")
    return t


def to_padded_tensor(self, padding, output_size=None):
    """A dense (B, ..., max length, ...) tensor: each sequence, then ``padding``, as torch 2.13's:
    as long as ``output_size``'s ragged dim where given (shorter cuts the sequences), else as the
    cached ``_max_seqlen`` where there is one (``nested_tensor_from_jagged(max_seqlen=)``, or asked
    for before: a given value that is too small cuts, too large pads), else as ``values``' ragged
    dim (every sequence's rows: torch 2.13 pads ``nested_tensor_from_jagged(values, offsets)``
    to its total length). Differentiable, one gather."""
    if output_size is None and self._nt_lengths is None:
        longest = self._nt_meta.get("max_seqlen", self._nt_values.shape[self._nt_ragged - 1])
        output_size = (*self.shape[:self._nt_ragged], longest, *self.shape[self._nt_ragged + 1:])
    return _padded(self, padding, output_size)


def broadcast_to(self, size):
    """``expand(size)``: the batch and ragged dims kept (-1 or their sizes), dims of size 1 after
    them broadcast (a view), as torch 2.13's."""
    size = tuple(size)
    if len(size) != self.dim():
        raise RuntimeError(f"expand(): cannot expand shape {shape_text(self)} -> {list(size)}")
    return expand(self, size)


def tolist(self):
    raise RuntimeError(".tolist() is not supported for tensor subclasses, got NestedTensor")


def install():
    """The methods above on ``NestedTensor``."""
    methods = {name: _binary(name) for name in BINARY}
    inplace = [*INPLACE_BINARY, *(name + "_" for name in UNARY if not name.startswith("_"))]
    methods.update({name: _inplace(name) for name in inplace if hasattr(Tensor, name)})
    methods.update({name: _inplace(method) for name, method in AUGMENTED.items()})
    methods.update({name: _refused(name, message) for name, message in REFUSED.items()})
    methods.update(_reflected=_reflected, _number_first=_number_first, lerp=lerp, broadcast_to=broadcast_to,
                   tolist=tolist, to_padded_tensor=to_padded_tensor, clamp=clamp, clip=clamp, clamp_min=clamp_min,
                   clamp_max=clamp_max, _pointwise=_pointwise)
    for name, method in methods.items():
        setattr(NestedTensor, name, method)
    NestedTensor._max_seqlen = property(lambda self: _seqlen(self, "max_seqlen"), doc="The longest sequence (cached).")
    NestedTensor._min_seqlen = property(lambda self: _seqlen(self, "min_seqlen"), doc="The shortest sequence (cached).")
    NestedTensor._get_max_seqlen = lambda self: _seqlen(self, "max_seqlen")
    NestedTensor._get_min_seqlen = lambda self: _seqlen(self, "min_seqlen")
    NestedTensor._maybe_max_seqlen = property(lambda self: self._nt_meta.get("max_seqlen"),
                                              doc="The cached longest sequence, or None (nothing computed).")
    NestedTensor._maybe_min_seqlen = property(lambda self: self._nt_meta.get("min_seqlen"),
                                              doc="The cached shortest sequence, or None (nothing computed).")
    # torch's private attributes that programs read: the tensors behind it, the ragged dim
    for name, attr in (("_values", "_nt_values"), ("_offsets", "_nt_offsets"), ("_lengths", "_nt_lengths"),
                       ("_ragged_idx", "_nt_ragged")):
        setattr(NestedTensor, name, property(lambda self, attr=attr: getattr(self, attr), doc=f"torch's ``{name}``."))
    NestedTensor.mT = property(lambda self: self.transpose(-2, -1), doc="``transpose(-2, -1)``.")
    NestedTensor.data = property(lambda self: self.detach(), doc="The same structure on detached ``values``.")
    NestedBase._reflected = _refuse_reflected
    NestedBase._clip_of = _clip_of
