"""torch's type promotion over gt's dtypes, below the Tensor class so that the operators
(arithmetic.py) and ``gt.result_type``/``gt.promote_types`` (dtype_functions.py) share one rule.

Operands are tensors (anything with ``dtype`` and ``ndim``) or Python numbers. torch ranks them in
three groups: tensors with dims, 0-d tensors, Python numbers; a lower group changes the result
only when its category (bool < integer < floating) is higher. numpy knows no such groups (a 0-d
float64 array widens a float32 array), so the numpy engine's ops are given operands already cast.
"""

from gt import dtypes

# the promotion lattice: a category, and within a category the dtype that holds both. float16
# with bfloat16 gives float32, as in torch.
_CATEGORY = {"bool": 0, "uint8": 1, "int8": 1, "int16": 1, "int32": 1, "int64": 1, "float16": 2, "bfloat16": 2,
             "float32": 2, "float64": 2, "complex64": 3, "complex128": 3, "uint16": 1, "uint32": 1, "uint64": 1}
_RANK = {"bool": 0, "uint8": 1, "int8": 1, "int16": 2, "int32": 3, "int64": 4, "float16": 5, "bfloat16": 5,
         "float32": 6, "float64": 7, "complex64": 8, "complex128": 9}


class Complex32Error(TypeError):
    """A float16 operand beside a complex one, whose common dtype is torch's complex32, which gt has not."""


def to_complex(dtype):
    """torch's ``toComplexType``: the complex dtype whose parts are ``dtype`` (float64 ->
    complex128); float16 would be torch's complex32, which gt lacks."""
    if dtype.is_complex:
        return dtype
    if dtype.name == "float16":
        raise Complex32Error(f"{dtype!r} with a complex operand gives torch's complex32 (chalf), which gt has not: "
                             f"cast to gt.float32 first")
    return dtypes.COMPLEX_OF[dtype.name]


def _floating(x, complex_ok=False):
    """``x``, or ``x`` in the default float dtype where it is an integer or bool tensor: torch's
    floating functions (``exp``, ``sigmoid``, ``softmax``...) give float32 there, where numpy's
    give float64, and gt's own kernels would keep the integers (``sigmoid`` of ints as 0 and 1).
    A complex ``x`` is refused (as torch's kernels refuse it) unless ``complex_ok``."""
    if x.dtype.is_floating_point:
        return x
    if x.dtype.is_complex:
        if complex_ok:
            return x
        raise NotImplementedError(f"this function is not implemented for complex tensors ("
                                  f"'{dtypes.torch_type_name(x.dtype.name)}'), as in torch")
    return x.to(dtypes.default_float)


def promote_types(type1, type2):
    """The smallest dtype both ``type1`` and ``type2`` convert to without losing their kind
    (torch's table: ``int32`` + ``float16`` -> ``float16``, ``float16`` + ``bfloat16`` -> ``float32``,
    ``uint8`` + ``int8`` -> ``int16``)."""
    a, b = dtypes.to_dtype(type1), dtypes.to_dtype(type2)
    if a == b:
        return a
    if not (a.is_floating_point or b.is_floating_point) and (a in dtypes.WIDE_UINTS or b in dtypes.WIDE_UINTS):
        _refuse_wide_uints(a, b)
    if a in dtypes.QUANTIZED_INT or b in dtypes.QUANTIZED_INT:
        raise RuntimeError("promoteTypes with quantized numbers is not handled yet; figure out what the correct rules "
                           f"should be, offending types: {dtypes.torch_type_name(a.name)} "
                           f"{dtypes.torch_type_name(b.name)}")
    if {a.name, b.name} == {"float16", "bfloat16"}:
        return dtypes.float32
    if {a.name, b.name} == {"uint8", "int8"}:   # the smallest signed dtype holding both ranges
        return dtypes.int16
    if a.is_complex != b.is_complex and (b if a.is_complex else a).name == "float64":
        return dtypes.complex128        # the parts keep float64's width
    if _CATEGORY[a.name] != _CATEGORY[b.name]:   # the higher category's dtype, whatever its width
        return a if _CATEGORY[a.name] > _CATEGORY[b.name] else b
    return a if _RANK[a.name] > _RANK[b.name] else b


def _refuse_wide_uints(a, b):
    """torch promotes uint16/32/64 with a floating dtype only (to that dtype, as the categories
    give): with any other, a complex one included, its RuntimeError."""
    raise RuntimeError(f"Promotion for uint16, uint32, uint64 types is not supported, attempted to promote "
                       f"{dtypes.torch_type_name(a.name)} and {dtypes.torch_type_name(b.name)}")


def _scalar_dtype(value, fn):
    if isinstance(value, bool):
        return dtypes.bool_
    if isinstance(value, int):
        return dtypes.int64
    if isinstance(value, float):
        return dtypes.default_float
    if isinstance(value, complex):
        return dtypes.COMPLEX_OF[dtypes.default_float.name]
    raise TypeError(f"{fn}(): expected tensors or Python numbers, got {type(value).__name__} ({value!r})")


def _combine_categories(higher, lower):
    """torch's rule: a lower-priority operand (0-d tensor, Python number) changes the result only
    when its category is higher; then the result is the lower group's dtype."""
    if higher is None:
        return lower
    if lower is None or higher.is_complex:
        return higher
    if lower.is_complex:       # a complex number keeps a floating operand's width (float64 * 1j: complex128)
        return to_complex(higher) if higher.is_floating_point else lower
    if higher.is_floating_point:
        return higher
    if higher == dtypes.bool_ or lower.is_floating_point:
        return promote_types(higher, lower)
    return higher


def result_dtype(*operands, fn="result_type"):
    """The dtype torch computes an elementwise op of ``operands`` (tensors, Python numbers) in."""
    groups = [None, None, None]     # tensors with dims, 0-d tensors, Python numbers
    for x in operands:
        dtype = getattr(x, "dtype", None)
        if isinstance(dtype, dtypes.DType):
            group = 0 if x.ndim else 1
        else:
            dtype, group = _scalar_dtype(x, fn), 2
        groups[group] = dtype if groups[group] is None else promote_types(groups[group], dtype)
    return _combine_categories(groups[0], _combine_categories(groups[1], groups[2]))
