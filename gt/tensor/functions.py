"""Free functions over several tensors (``gt.cat``, ``gt.stack``) and function forms of tensor methods."""

from gt import dtypes
from gt.errors import ShapeError
from gt.ops import shape as shape_ops
from gt.ops._shapes import normalize_axis
from gt.tensor._args import _pick
from gt.tensor.arithmetic import _operand
from gt.tensor.construct_methods import promoted
from gt.tensor.core import Tensor
from gt.tensor.nested_operands import is_nested
from gt.tensor.shape import torch_node_name
from gt.tensor.number_first import NUMBERS, TENSOR_ARGUMENT, call_number_first, refuse_number, tensors_only


def _tensors(tensors, op):
    if isinstance(tensors, Tensor):     # torch's TypeError: a tensor is not read as the sequence of its rows
        raise TypeError(f"{op}(): argument 'tensors' (position 1) must be tuple of Tensors, not Tensor")
    tensors = [t if isinstance(t, Tensor) else _operand(t, op) for t in tensors]
    if not tensors:
        raise ShapeError(f"{op}: expected a non-empty sequence of tensors")
    if not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"{op}: expected tensors or arrays, got a Python scalar")
    return tensors


def _one_dtype(tensors):
    """The tensors in torch's promoted dtype of them all: the engines' own joins would promote
    int32 with float32 to float64 (numpy's rule)."""
    if all(t.dtype == tensors[0].dtype for t in tensors):
        return tensors
    return promoted(tensors)


def cat(tensors, axis=None, *, dim=None):
    """Join tensors along an existing axis; every other axis must match. Empty 1-D tensors are
    skipped, as torch's legacy rule has it (their dtype still counts)."""
    tensors = _tensors(tensors, "cat")
    if type(tensors[0]) is not Tensor and is_nested(tensors[0]):     # gt.nested's form
        return tensors[0].__gt_function__(cat, (tensors, _pick(axis, dim, default=0)), {})
    tensors = _one_dtype(tensors)
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ShapeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    kept = [t for t in tensors if t.shape != (0,)]
    if len(kept) < len(tensors):
        tensors = kept or tensors
        if not kept:                      # all of them: a (0,) tensor, whatever the dim, as torch
            axis, dim = None, 0
    first = tensors[0]
    axis = normalize_axis(_pick(axis, dim, default=0), first.ndim, "cat")
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != first.ndim or any(a != b for j, (a, b) in enumerate(zip(t.shape, first.shape)) if j != axis):
            raise ShapeError(
                f"cat: tensor {i} has shape {t.shape} but tensor 0 has {first.shape}; "
                f"all dims except axis {axis} must match"
            )
    return shape_ops.Cat.apply(*tensors, axis=axis)


concatenate = cat


def stack(tensors, axis=None, *, dim=None):
    """Join same-shape tensors along a new axis."""
    tensors = _tensors(tensors, "stack")
    if type(tensors[0]) is not Tensor and is_nested(tensors[0]):     # gt.nested's form
        return tensors[0].__gt_function__(stack, (tensors, _pick(axis, dim, default=0)), {})
    tensors = _one_dtype(tensors)
    first = tensors[0]
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != first.shape:
            raise ShapeError(f"stack: tensor {i} has shape {t.shape} but tensor 0 has {first.shape}; all must match")
    axis = _pick(axis, dim, default=0)
    if not -first.ndim - 1 <= axis <= first.ndim:
        raise IndexError(f"stack: axis {axis} is out of range for the {first.ndim + 1} dimension(s) of the result "
                         f"(inputs of shape {first.shape})")
    return shape_ops.Stack.apply(*tensors, axis=axis % (first.ndim + 1))


_NOT_GIVEN = object()
# the functions whose second argument torch takes only as a tensor, with its name in torch's TypeError: the
# function refuses a number itself, so that the error gives torch's position (2; the method's says 1)
_TENSOR_OTHER = {**TENSOR_ARGUMENT, "lerp": "end"}


def _method(name):
    tensor_other = _TENSOR_OTHER.get(name)

    def fn(x=_NOT_GIVEN, *args, **kwargs):
        if "input" in kwargs:                # torch's keyword for the tensor: gt.exp(input=t)
            if x is not _NOT_GIVEN:
                args = (x,) + args           # the first positional argument was the next one
            x = kwargs.pop("input")
        elif x is _NOT_GIVEN:
            raise TypeError(f"gt.{name}() missing 1 required argument: 'input'")
        if not isinstance(x, Tensor):
            x = _operand(x, name)
            if not isinstance(x, Tensor):   # a Python number: a tensor where torch takes one, else its TypeError
                other = args[0] if args else None
                if is_nested(other):
                    return other._number_first(name, x, **kwargs)     # a nested tensor has its rule
                return call_number_first(name, x, args, kwargs)
        if tensor_other and args and isinstance(args[0], NUMBERS):
            refuse_number(name, tensor_other, 2, args[0])
        return getattr(x, name)(*args, **kwargs)

    fn.__name__ = name
    fn.__doc__ = f"``gt.{name}(x, ...)`` is ``x.{name}(...)``."
    return fn


_METHODS = ("exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax", "sum",
            "mean", "var", "std", "max", "min", "argmax", "argmin", "reshape", "flatten", "permute", "transpose",
            "unsqueeze", "squeeze", "expand", "split", "chunk", "clip", "clamp", "maximum", "minimum",
            "sort", "argsort", "topk", "cumsum", "multinomial",
            # extra_methods.py
            "floor_divide", "remainder", "floor", "ceil", "trunc", "round", "sign", "isnan", "isinf", "isfinite",
            "logical_not", "logical_and", "logical_or", "amax", "amin", "logsumexp", "norm", "tril", "triu", "flip",
            "outer", "bmm", "square", "reciprocal", "rsqrt", "clamp_min", "clamp_max", "lerp", "add", "sub", "mul",
            "div", "true_divide", "neg", "negative", "mm", "mv", "dot", "swapaxes", "movedim", "moveaxis", "tile",
            "broadcast_to", "narrow", "unbind", "roll", "index_select", "gather", "count_nonzero", "nan_to_num",
            "frac", "log2", "log10", "allclose", "equal")
# math_methods.py (its binary functions, gt.atan2 and the others, are its own: a number may come first)
_METHODS += ("sin", "cos", "tan", "asin", "acos", "atan", "arcsin", "arccos", "arctan", "sinh", "cosh", "asinh",
             "acosh", "atanh", "arcsinh", "arccosh", "arctanh", "sinc", "deg2rad", "rad2deg", "log1p", "expm1",
             "exp2", "erf", "erfc", "erfinv", "logit", "prod", "cumprod")
# scatter_methods.py and index_methods.py (gt.einsum, gt.searchsorted, gt.bucketize are index_methods' own)
_METHODS += ("scatter", "scatter_add", "scatter_reduce", "index_add", "index_copy", "index_fill", "masked_select",
             "masked_scatter", "nonzero", "argwhere", "unique", "unique_consecutive", "bincount")
# inplace_math.py: the comparisons and aliases torch has as functions (torch.lt, torch.absolute...)
_METHODS += ("eq", "ne", "lt", "le", "gt", "ge", "not_equal", "greater", "greater_equal", "less", "less_equal",
             "logical_xor", "absolute", "fix", "sgn")
# special_methods.py (gt.polygamma, gt.logaddexp2 are its own: n first; a number may come first)
_METHODS += ("lgamma", "digamma", "i0", "mvlgamma", "cummax", "cummin")
# linalg_methods.py: torch's top-level linear algebra (torch.det, torch.svd...; gt.linalg has the rest)
_METHODS += ("det", "logdet", "slogdet", "inverse", "pinverse", "cholesky", "qr", "svd", "matrix_power")
for _name in _METHODS:
    globals()[_name] = _method(_name)

_tensor_pow = _method("pow")


def pow(input, exponent):
    """``input ** exponent``, as ``torch.pow``: a tensor raised to a tensor or a number, or a
    Python number raised to a tensor (``gt.pow(2, x)``, torch's other form)."""
    if isinstance(exponent, Tensor) and isinstance(input, (int, float)) and not isinstance(input, bool):
        return input ** exponent
    return _tensor_pow(input, exponent)


def is_tensor(obj):
    """Whether ``obj`` is a gt tensor."""
    return isinstance(obj, Tensor)


def is_floating_point(t):
    return t.dtype.is_floating_point


def numel(t):
    return t.numel()


@torch_node_name("VarMeanBackward0")
def var_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None, out=_NOT_GIVEN):
    """``(var, mean)`` over ``dim``, as ``torch.var_mean``: torch's default ``correction=1``
    (unbiased), and its older forms ``var_mean(x, unbiased)`` and ``var_mean(x, dim, unbiased)``.
    No ``out=`` (torch's has none: a TypeError, even for ``out=None``)."""
    if out is not _NOT_GIVEN:
        _refuse_out("var_mean", out)
    tensors_only("var_mean", ("input", x))
    dim, correction = _correction(dim, unbiased, correction)
    return _moments(x, dim, keepdim, correction, False)


@torch_node_name("StdMeanBackward0")
def std_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None, out=_NOT_GIVEN):
    """``(std, mean)`` over ``dim``, as ``torch.std_mean`` (the forms of ``var_mean``; no ``out=``)."""
    if out is not _NOT_GIVEN:
        _refuse_out("std_mean", out)
    tensors_only("std_mean", ("input", x))
    dim, correction = _correction(dim, unbiased, correction)
    return _moments(x, dim, keepdim, correction, True)


def _refuse_out(name, out):
    raise TypeError(f"{name}() received an invalid combination of arguments - got (..., out="
                    f"{type(out).__name__}), but expected one of: (Tensor input, tuple of ints dim, bool unbiased = "
                    "True, bool keepdim = False), (Tensor input, tuple of ints dim = None, *, Number correction = "
                    f"None, bool keepdim = False), (Tensor input, bool unbiased = True): torch's {name} has no out=")


def _moments(x, dim, keepdim, correction, root):
    """``(var or std, mean)``. torch's CPU kernel for float32 is Welford's in float64 for both: the
    mean of values near 3e38 is finite there, where the float32 mean's sum overflows."""
    if x.dtype != dtypes.float32:
        return (x.std if root else x.var)(dim, keepdim, correction=correction), x.mean(dim, keepdims=keepdim)
    spread = x._spread32(dim, keepdim, 0, None, False, None, correction, root, True)
    mean = x.mean(dim, keepdims=keepdim)
    if not bool(mean.isfinite().all()):
        mean = x.double().mean(dim, keepdims=keepdim).float()
    return spread, mean


def _correction(dim, unbiased, correction):
    if isinstance(dim, bool):               # var_mean(x, unbiased)
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError("var_mean/std_mean: give unbiased or correction, not both "
                        f"(got unbiased={unbiased!r}, correction={correction!r})")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return dim, correction


def nuclear_norm(input, dim=None, keepdim=False):
    """The sum of the singular values of each matrix in the last two dims of ``input`` (..., m, n),
    or over the two dims ``dim``, as ``torch.nuclear_norm``; ``nuclear_norm(x, True)`` keeps the
    dims (torch's other form). ``gt.linalg.matrix_norm(x, 'nuc')`` is the current spelling."""
    if isinstance(dim, bool):               # nuclear_norm(x, keepdim)
        dim, keepdim = None, dim
    if not isinstance(input, Tensor):
        input = _operand(input, "nuclear_norm")
    if input.ndim < 2:
        raise RuntimeError(f"nuclear_norm: the input tensor must have at least 2 dimensions, got shape {input.shape}")
    return input.norm("nuc", (-2, -1) if dim is None else dim, keepdim)
