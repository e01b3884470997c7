"""torch's top-level questions about dtypes and tensors: ``gt.promote_types``, ``gt.result_type``,
``gt.can_cast``, ``gt.is_complex``, ``gt.is_signed``, ``gt.is_nonzero``, ``gt.is_same_size``,
``gt.typename``, ``gt.is_storage``, ``gt.is_inference``, with torch's promotion categories.
"""


from gt import dtypes
from gt.tensor.core import Tensor
from gt.tensor.toplevel_checks import _tensor_arg

__all__ = ["result_type", "promote_types", "can_cast", "is_complex", "is_signed", "is_nonzero", "is_same_size",
           "typename", "is_storage", "is_inference"]


# ---- dtypes -----------------------------------------------------------------------------------------
# torch's promotion lattice over gt's dtypes: a category (bool < integer < floating), and within a
# category the dtype that holds both. float16 with bfloat16 gives float32, as in torch.
_CATEGORY = {"bool": 0, "int32": 1, "int64": 1, "float16": 2, "bfloat16": 2, "float32": 2, "float64": 2}
_RANK = {"bool": 0, "int32": 1, "int64": 2, "float16": 3, "bfloat16": 3, "float32": 4, "float64": 5}


def promote_types(type1, type2):
    """The smallest dtype both ``type1`` and ``type2`` convert to without losing their kind
    (torch's table: ``int32`` + ``float16`` -> ``float16``, ``float16`` + ``bfloat16`` -> ``float32``)."""
    a, b = dtypes.to_dtype(type1), dtypes.to_dtype(type2)
    if a == b:
        return a
    if {a.name, b.name} == {"float16", "bfloat16"}:
        return dtypes.float32
    if _CATEGORY[a.name] != _CATEGORY[b.name]:   # the higher category's dtype, whatever its width
        return a if _CATEGORY[a.name] > _CATEGORY[b.name] else b
    return a if _RANK[a.name] > _RANK[b.name] else b


def _scalar_dtype(value, fn):
    if isinstance(value, bool):
        return dtypes.bool_
    if isinstance(value, int):
        return dtypes.int64
    if isinstance(value, float):
        return dtypes.default_float
    raise TypeError(f"{fn}(): expected tensors or Python numbers, got {type(value).__name__} ({value!r})")


def _combine_categories(higher, lower):
    """torch's rule: a lower-priority operand (0-d tensor, Python number) changes the result only
    when its category is higher; then the result is the lower group's dtype."""
    if higher is None:
        return lower
    if lower is None or higher.is_floating_point:
        return higher
    if higher == dtypes.bool_ or lower.is_floating_point:
        return promote_types(higher, lower)
    return higher


def _result_type(*operands, fn="result_type"):
    groups = [None, None, None]     # tensors with dims, 0-d tensors, Python numbers
    for x in operands:
        if isinstance(x, Tensor):
            dtype, group = x.dtype, (0 if x.ndim else 1)
        else:
            dtype, group = _scalar_dtype(x, fn), 2
        groups[group] = dtype if groups[group] is None else promote_types(groups[group], dtype)
    return _combine_categories(groups[0], _combine_categories(groups[1], groups[2]))


def result_type(tensor, other):
    """The dtype an arithmetic op on ``tensor`` and ``other`` (tensors or Python numbers) gives:
    tensors with dims decide unless a 0-d tensor or a number is of a higher category
    (``result_type(int64 vector, 2.5)`` is the default float dtype; ``(float16 vector, float64
    0-d)`` stays ``float16``)."""
    return _result_type(tensor, other)


def can_cast(from_, to):
    """Whether torch's casting rules allow ``from_`` -> ``to`` where an op casts implicitly: not
    floating -> integer or bool, nor integer -> bool."""
    a, b = dtypes.to_dtype(from_), dtypes.to_dtype(to)
    if a.is_floating_point and not b.is_floating_point:
        return False
    return not (a != dtypes.bool_ and b == dtypes.bool_)


def is_complex(input):
    """Whether ``input`` has a complex dtype: gt has none, so always False for a tensor."""
    _tensor_arg(input, "is_complex")
    return False


def is_signed(input):
    """Whether ``input``'s dtype is signed (every gt dtype but bool)."""
    return _tensor_arg(input, "is_signed").dtype != dtypes.bool_


def is_nonzero(input):
    """Whether the one element of ``input`` is non-zero (NaN counts as non-zero);
    RuntimeError for a tensor of zero or several elements."""
    x = _tensor_arg(input, "is_nonzero")
    n = x.numel()
    if n != 1:
        what = "no values" if n == 0 else "more than one value"
        raise RuntimeError(f"Boolean value of Tensor with {what} is ambiguous (is_nonzero of a tensor of shape "
                           f"{x.shape})")
    return bool(x.detach().reshape(()).item() != 0)


def is_same_size(input, other):
    """Whether the two tensors have the same shape."""
    return _tensor_arg(input, "is_same_size").shape == _tensor_arg(other, "is_same_size", "other").shape


def is_inference(input):
    """Whether ``input`` was made inside ``gt.inference_mode()``."""
    return _tensor_arg(input, "is_inference").is_inference()


def typename(obj):
    """The type name of ``obj``: ``'gt.FloatTensor'`` for a tensor, ``module.QualName`` otherwise."""
    if isinstance(obj, Tensor):
        return obj.type()
    module, qualname = getattr(obj, "__module__", "") or "", ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module, qualname = obj.__class__.__module__ or "", obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"


def is_storage(obj):
    """Whether ``obj`` is a storage object. gt tensors expose no storages, so this is False."""
    return False
