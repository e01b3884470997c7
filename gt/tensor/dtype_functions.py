"""torch's top-level questions about dtypes and tensors: ``gt.promote_types``, ``gt.result_type``,
``gt.can_cast``, ``gt.is_complex``, ``gt.is_signed``, ``gt.is_nonzero``, ``gt.is_same_size``,
``gt.typename``, ``gt.is_storage``, ``gt.is_inference``, with torch's promotion categories.
"""


from gt import dtypes
from gt.tensor.core import Tensor
from gt.tensor.promotion import promote_types, result_dtype
from gt.tensor.toplevel_checks import _tensor_arg

__all__ = ["result_type", "promote_types", "can_cast", "is_complex", "is_signed", "is_nonzero", "is_same_size",
           "typename", "is_storage", "is_inference"]


# ---- dtypes -----------------------------------------------------------------------------------------
# torch's promotion lattice and groups live in promotion.py, shared with the operators
_result_type = result_dtype


def result_type(tensor, other):
    """The dtype an arithmetic op on ``tensor`` and ``other`` (tensors or Python numbers) gives:
    tensors with dims decide unless a 0-d tensor or a number is of a higher category
    (``result_type(int64 vector, 2.5)`` is the default float dtype; ``(float16 vector, float64
    0-d)`` stays ``float16``)."""
    return _result_type(tensor, other)


def can_cast(from_, to):
    """Whether torch's casting rules allow ``from_`` -> ``to`` where an op casts implicitly: not
    floating -> integer or bool, nor complex -> real, nor integer -> bool."""
    a, b = dtypes.to_dtype(from_), dtypes.to_dtype(to)
    if a.is_complex and not b.is_complex:
        return False
    if a.is_floating_point and not b.differentiable:
        return False
    return not (a != dtypes.bool_ and b == dtypes.bool_)


def is_complex(input):
    """Whether ``input`` has a complex dtype (``gt.complex64``, ``gt.complex128``)."""
    return _tensor_arg(input, "is_complex").dtype.is_complex


def is_signed(input):
    """Whether ``input``'s dtype is signed (every gt dtype but bool)."""
    return _tensor_arg(input, "is_signed").dtype.is_signed


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
