"""gt's dtypes: plain named values that each engine maps to its own native dtype.

    >>> gt.zeros(2, dtype=gt.float64).dtype
    gt.float64
"""

import math
import operator
import struct


class DType:
    """A tensor element type. Compares equal to its name and to numpy/torch dtypes of that name."""

    __slots__ = ("name", "is_floating_point", "is_complex", "differentiable")

    def __init__(self, name, is_floating_point, is_complex=False):
        self.name = name
        self.is_floating_point = is_floating_point
        self.is_complex = is_complex
        # what can carry gradients (torch: floating point and complex dtypes)
        self.differentiable = is_floating_point or is_complex

    def __repr__(self):
        return f"gt.{self.name}"

    def __eq__(self, other):
        if isinstance(other, DType):
            return self.name == other.name
        try:
            return self.name == to_dtype(other).name
        except TypeError:
            return False

    def __hash__(self):
        return hash(self.name)

    @property
    def is_signed(self):
        """Whether the dtype holds negative numbers (torch's ``dtype.is_signed``: not bool, not uint8)."""
        if self.name in QUANTIZED_RANGES:
            raise RuntimeError("isSignedType not supported for quantized types")     # torch's error
        return self.name not in ("bool", "uint8", "uint16", "uint32", "uint64")

    @property
    def itemsize(self):
        """Bytes per element (torch's ``dtype.itemsize``: 1 for uint8, 4 for float32)."""
        return ITEMSIZE[self.name]

    @property
    def dtype(self):
        """The numpy dtype of this name, so numpy takes gt's dtypes where it takes its own
        (``np.zeros(3, dtype=gt.float32)``, as with the public gt, whose dtypes are names)."""
        if self.name == "bfloat16":
            raise TypeError("gt.bfloat16 has no numpy dtype (numpy has no bfloat16); use gt.float32")
        import numpy  # numpy is always installed; imported here only so the dtype table stays engine-free

        return numpy.dtype(self.name)


float32 = DType("float32", True)
float64 = DType("float64", True)
int64 = DType("int64", False)
int32 = DType("int32", False)
int16 = DType("int16", False)
int8 = DType("int8", False)
uint8 = DType("uint8", False)
# torch's "limited support" unsigned dtypes (torch 2.3): made, converted, compared for equality,
# multiplied, and/or/xor'd, summed, sorted and indexed, but with no add, order, max or shift
# kernels on the CPU and no promotion with another integer or bool dtype (WIDE_UINTS' callers)
uint16 = DType("uint16", False)
uint32 = DType("uint32", False)
uint64 = DType("uint64", False)
bool_ = DType("bool", False)
float16 = DType("float16", True)
bfloat16 = DType("bfloat16", True)
complex64 = DType("complex64", False, True)
complex128 = DType("complex128", False, True)
# torch's quantized dtypes: the element types of gt.quantize_per_tensor/_per_channel's results
# (gt/tensor/quantized.py), each stored as the integer dtype of QUANTIZED_INT
quint8 = DType("quint8", False)
qint8 = DType("qint8", False)
qint32 = DType("qint32", False)
quint4x2 = DType("quint4x2", False)

_BY_NAME = {d.name: d for d in (float32, float64, int64, int32, int16, int8, uint8, bool_, float16, bfloat16,
                                 complex64, complex128, uint16, uint32, uint64, quint8, qint8, qint32, quint4x2)}
_ALIASES = {"float": float32, "double": float64, "long": int64, "int": int64, "bool_": bool_, "short": int16,
            "cfloat": complex64, "cdouble": complex128}
# bytes per element, as torch's ``dtype.itemsize``
ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
            "uint8": 1, "bool": 1, "complex64": 8, "complex128": 16, "uint16": 2, "uint32": 4, "uint64": 8,
            "quint8": 1, "qint8": 1, "qint32": 4, "quint4x2": 1}
# the largest finite value of each float dtype (torch.finfo(dtype).max; complex64's parts are float32's)
FLOAT_MAX = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38, "float32": 3.4028234663852886e38,
             "float64": 1.7976931348623157e308}
# the integer dtypes narrower than int64, with their ranges: a Python int beside a tensor of one
# is cast to it, wrapping as torch's (``x_uint8 + 300`` adds 44)
INT_RANGES = {"int32": (-2 ** 31, 2 ** 31 - 1), "int16": (-2 ** 15, 2 ** 15 - 1), "int8": (-2 ** 7, 2 ** 7 - 1),
              "uint8": (0, 2 ** 8 - 1), "int64": (-2 ** 63, 2 ** 63 - 1),
              "uint16": (0, 2 ** 16 - 1), "uint32": (0, 2 ** 32 - 1), "uint64": (0, 2 ** 64 - 1)}
# a complex dtype's real counterpart and back (``abs``/``real`` of complex64 are float32)
REAL_OF = {"complex64": float32, "complex128": float64}
COMPLEX_OF = {"float32": complex64, "float64": complex128, "float16": complex64, "bfloat16": complex64}

default_float = float32

# the integer dtypes narrower than int32 (torch's Byte, Char, Short)
SMALL_INTS = frozenset((uint8, int8, int16))   # a set: membership is one hash, not three __eq__ calls

# torch's unsigned dtypes wider than uint8, which it promotes only with floating dtypes
WIDE_UINTS = frozenset((uint16, uint32, uint64))

# each quantized dtype's integer representation (``int_repr()``) and its range (quint4x2: 4 bits)
QUANTIZED_INT = {quint8: uint8, qint8: int8, qint32: int32, quint4x2: uint8}
QUANTIZED_RANGES = {"quint8": (0, 255), "qint8": (-128, 127), "qint32": (-2 ** 31, 2 ** 31 - 1), "quint4x2": (0, 15)}

# the half dtypes: torch's CPU kernels compute them in float32 and round the result once
HALVES = (float16, bfloat16)


def to_dtype(value):
    """Turn a gt dtype, a name ("float32"), a Python type, or a numpy/torch dtype into a gt DType."""
    if isinstance(value, DType):
        return value
    if value is float:
        return default_float
    if value is int:
        return int64
    if value is bool:
        return bool_
    if value is complex:
        return complex64 if default_float is float32 else complex128
    name = value if isinstance(value, str) else getattr(value, "name", None) or getattr(value, "__name__", None)
    if isinstance(value, str) is False and name is None:
        name = str(value)
    if isinstance(name, str):
        name = name.replace("torch.", "")
        if name in _BY_NAME:
            return _BY_NAME[name]
        if name in _ALIASES:
            return _ALIASES[name]
        if name in ("complex32", "chalf"):
            raise TypeError(f"unsupported dtype {value!r}: gt has no complex32 (chalf); use gt.complex64")
    raise TypeError(
        f"unsupported dtype {value!r}: expected one of gt.float32, gt.float64, gt.float16, gt.bfloat16, "
        f"gt.int64, gt.int32, gt.int16, gt.int8, gt.uint8, gt.uint16, gt.uint32, gt.uint64, gt.bool, gt.complex64, "
        f"gt.complex128"
    )


_TORCH_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
                "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool",
                "complex64": "ComplexFloat", "complex128": "ComplexDouble", "uint16": "UInt16", "uint32": "UInt32",
                "uint64": "UInt64", "quint8": "QUInt8", "qint8": "QInt8", "qint32": "QInt32", "quint4x2": "QUInt4x2"}


def written_int_range(name):
    """The Python ints torch's checked conversion writes into the integer dtype ``name`` (fills, item
    assignment, ``gt.tensor([...], dtype=)``): its range, and for an unsigned dtype the negative
    ints down to -max too, which wrap (c10's ``overflows`` lets ``a - b`` be ``a + 255 * b``: -1
    into uint8 is 255)."""
    low, high = INT_RANGES[name]
    return (-high, high) if low == 0 else (low, high)


def wrap_int(value, dtype):
    """The Python int ``value`` as an integer ``dtype`` holds it, wrapped into its range as torch
    casts a number beside a tensor (``x_uint8 + 300`` adds 44, ``x_int32 * 2**31`` multiplies by
    -2**31); int64 itself is not wrapped (the caller refuses what it cannot hold)."""
    low, high = INT_RANGES[dtype.name]
    if dtype.name == "int64" or low <= value <= high:
        return value
    span = high - low + 1
    return (value - low) % span + low


def as_index(value):
    """``value`` as a Python int where it is an integer as torch takes one (``operator.index``: an
    int, a numpy integer, a 0-d integer tensor), else None; a bool is not one here."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def round_float32(value):
    """The number ``value`` rounded to float32, as a Python float: what a torch float32 0-d tensor
    holds (the optimizers' scalar state, torch.utils.benchmark's statistics). Beyond float32's
    range it is inf of ``value``'s sign, as torch's float32 holds it."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def torch_type_name(name):
    """torch's word for a dtype in its messages ("Float" for float32, "Long" for int64), from a
    dtype's name (gt's or numpy's: ``"float32"``)."""
    return _TORCH_NAMES.get(name, name)
