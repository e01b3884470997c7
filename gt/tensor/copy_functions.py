"""torch's top-level in-place forms (``gt.exp_(x)`` is ``x.exp_()``) and the ``*_copy`` functions
(a view function's result as a new tensor); the complex-number functions are in complex_functions.py.
"""

import warnings

from gt import dtypes
from gt.tensor.product_dtypes import check_multi_dot
from gt.tensor.toplevel_checks import _no_out, _tensor_arg
from gt.tensor.complex_functions import view_as_complex, view_as_real
from gt.tensor.shape import _named
from gt.tensor.toplevel_functions import t

__all__ = []


# ---- torch's top-level in-place forms: gt.exp_(x) is x.exp_() -----------------------------------------
_INPLACE = ("abs_", "acos_", "acosh_", "arccos_", "arccosh_", "arcsin_", "arcsinh_", "arctan_", "arctanh_", "asin_",
            "asinh_", "atan_", "atanh_", "ceil_", "clamp_", "clamp_max_", "clamp_min_", "clip_", "cos_", "cosh_",
            "deg2rad_", "detach_", "erf_", "erfc_", "exp2_", "exp_", "expm1_", "fill_", "fix_", "floor_", "frac_",
            "i0_", "log10_", "log1p_", "log2_", "log_", "logit_", "nan_to_num_", "neg_", "negative_", "rad2deg_",
            "reciprocal_", "relu_", "round_", "rsqrt_", "sigmoid_", "sin_", "sinc_", "sinh_", "sqrt_", "square_",
            "tan_", "tanh_", "trunc_", "xlogy_", "zero_", "get_device")


def _method_form(name):
    def fn(input, *args, **kwargs):
        return getattr(_tensor_arg(input, name), name)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"``gt.{name}(input, ...)`` is ``input.{name}(...)``"
                  + (": it changes ``input`` in place and returns it." if name.endswith("_") else "."))
    return fn


for _name in _INPLACE:
    globals()[_name] = _method_form(_name)
__all__ += list(_INPLACE)


# ---- torch's *_copy functions: the view functions, returning a new tensor ------------------------------
def _copied(x, view=None):
    """A row-major copy of ``x``, as torch's ``*_copy`` functions give (its ``clone`` keeps a
    permuted layout: on the torch engine a copy of a transposed view would still be one), its
    node named as torch's: ``view`` is the name of the view's node (``"TBackward0"``), or True
    where ``x`` is a view just made whose node is named so (``SplitBackward0_copy``)."""
    y = x.clone()
    y = y if y.is_contiguous() else y.contiguous()
    if view is True:
        view = x.grad_fn.name() if x.grad_fn is not None else None
    return _named(y, x, view + "_copy") if view else y


def _shape(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def view_copy(input, size):
    """``input.view(size).clone()`` (a dtype: ``input.view(dtype).clone()``)."""
    # reshape, not view: torch's view_copy gives the copy of any layout, where a view of it would be refused
    x = _tensor_arg(input, "view_copy")
    if isinstance(size, dtypes.DType):
        return _copied(x.view(size))
    return _copied(x.reshape(*_shape((size,))), "ViewBackward0")


def permute_copy(input, dims):
    """``input.permute(dims).clone()``."""
    return _copied(_tensor_arg(input, "permute_copy").permute(*_shape((dims,))), "PermuteBackward0")


def t_copy(input):
    """``t(input).clone()``."""
    return _copied(t(input), "TBackward0")


def transpose_copy(input, dim0, dim1):
    """``input.transpose(dim0, dim1).clone()``."""
    return _copied(_tensor_arg(input, "transpose_copy").transpose(dim0, dim1), "TransposeBackward0")


def expand_copy(input, size, *, implicit=False):
    """``input.expand(size).clone()``: the broadcast values, materialised."""
    return _copied(_tensor_arg(input, "expand_copy").expand(*_shape((size,))), "ExpandBackward0")


def squeeze_copy(input, dim=None):
    """``input.squeeze(dim).clone()``."""
    form = 0 if dim is None else 2 if isinstance(dim, (tuple, list)) else 1      # torch's three squeezes
    return _copied(_tensor_arg(input, "squeeze_copy").squeeze(dim=dim), f"SqueezeBackward{form}")


def unsqueeze_copy(input, dim):
    """``input.unsqueeze(dim).clone()``."""
    return _copied(_tensor_arg(input, "unsqueeze_copy").unsqueeze(dim=dim), "UnsqueezeBackward0")


def diagonal_copy(input, offset=0, dim1=0, dim2=1):
    """``input.diagonal(offset, dim1, dim2).clone()``."""
    return _copied(_tensor_arg(input, "diagonal_copy").diagonal(offset, dim1, dim2), True)


def select_copy(input, dim, index):
    """``input.select(dim, index).clone()``."""
    return _copied(_tensor_arg(input, "select_copy").select(dim, index), True)


def slice_copy(input, dim=0, start=None, end=None, step=1):
    """``input[..., start:end:step, ...]`` along ``dim``, as a new tensor."""
    x = _tensor_arg(input, "slice_copy")
    if step <= 0:
        raise RuntimeError(f"slice_copy: slice step must be positive, got {step}")
    index = [slice(None)] * x.ndim
    index[dim] = slice(start, end, step)
    return _copied(x[tuple(index)], "SliceBackward0")


def unbind_copy(input, dim=0):
    """``input.unbind(dim)`` with each part a new tensor."""
    return tuple(_copied(part, True) for part in _tensor_arg(input, "unbind_copy").unbind(dim))


def split_copy(input, split_size, dim=0):
    """``input.split(split_size, dim)`` with each part a new tensor."""
    return tuple(_copied(part, True) for part in _tensor_arg(input, "split_copy").split(split_size, dim=dim))


def unfold_copy(input, dimension, size, step):
    """``input.unfold(dimension, size, step).clone()``."""
    return _copied(_tensor_arg(input, "unfold_copy").unfold(dimension, size, step), "UnfoldBackward0")


def detach_copy(input):
    """``input.detach().clone()``."""
    return _copied(_tensor_arg(input, "detach_copy").detach())


def alias_copy(input):
    """A copy of ``input`` (differentiable)."""
    return _copied(_tensor_arg(input, "alias_copy"), "AliasBackward0")


def chain_matmul(*matrices, out=None):
    """The product of 2-D matrices, left to right (torch's deprecated spelling of
    ``linalg.multi_dot``; it warns as torch does). One matrix is returned as a copy."""
    _no_out(out, "chain_matmul")
    warnings.warn("gt.chain_matmul is deprecated (as torch.chain_matmul is); use gt.linalg.multi_dot, which accepts "
                  "a list of two or more tensors", UserWarning, stacklevel=2)
    if not matrices:
        raise RuntimeError("chain_matmul(): Expected one or more matrices")
    for i, m in enumerate(matrices):
        if _tensor_arg(m, "chain_matmul", f"matrices[{i}]").ndim != 2:
            raise RuntimeError(f"chain_matmul(): Tensor dimension is {m.ndim}, expected 2 instead (matrix {i}, "
                               f"shape {m.shape})")
    check_multi_dot(matrices)
    result = matrices[0].clone()
    for m in matrices[1:]:
        result = result @ m
    return result


def view_as_real_copy(input):
    """``gt.view_as_real(input)`` as a new tensor (differentiable)."""
    return _copied(view_as_real(input), "ViewAsRealBackward0")


def view_as_complex_copy(input):
    """``gt.view_as_complex(input)`` as a new tensor (differentiable)."""
    return view_as_complex(input).clone()


__all__ += ["view_as_real_copy", "view_as_complex_copy"]
__all__ += ["view_copy", "permute_copy", "t_copy", "transpose_copy", "expand_copy", "squeeze_copy", "unsqueeze_copy",
            "diagonal_copy", "select_copy", "slice_copy", "unbind_copy", "split_copy", "unfold_copy", "detach_copy",
            "alias_copy", "chain_matmul"]
