"""More of torch's top-level functions: ``frobenius_norm`` and ``set_default_tensor_type``
(deprecated there), ``empty_permuted``, ``split_with_sizes_copy`` and ``conj_physical_``, and the
top-level in-place forms ``addmv_``, ``gcd_``, ``lcm_``, ``ldexp_``, ``as_strided_`` (``gt.gcd_(x,
y)`` is ``x.gcd_(y)``)."""

import warnings

from gt import dtypes
from gt.tensor.copy_functions import _copied, _method_form
from gt.tensor.creation import empty
from gt.tensor.device_methods import accepts_device
from gt.tensor.runtime import set_default_dtype
from gt.tensor.toplevel_checks import _tensor_arg

__all__ = ["frobenius_norm", "empty_permuted", "split_with_sizes_copy", "conj_physical_", "addmv_", "gcd_", "lcm_",
           "ldexp_", "as_strided_", "set_default_tensor_type"]

addmv_, gcd_, lcm_, ldexp_, as_strided_ = (_method_form(n) for n in ("addmv_", "gcd_", "lcm_", "ldexp_", "as_strided_"))


def set_default_tensor_type(t, /):
    """torch's deprecated ``set_default_tensor_type``: ``gt.FloatTensor``/``gt.DoubleTensor`` (or
    their names, ``"torch.DoubleTensor"``) set the default float dtype, with torch's warning."""
    warnings.warn("torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
                  "torch.set_default_dtype() and torch.set_default_device() as alternatives.", UserWarning,
                  stacklevel=2)
    name = t if isinstance(t, str) else getattr(t, "__name__", repr(t))
    dtype = _DEFAULT_TYPES.get(name.rsplit(".", 1)[-1])
    if dtype is None:
        raise TypeError("only floating-point types are supported as the default type")
    set_default_dtype(dtype)


_DEFAULT_TYPES = {"FloatTensor": dtypes.float32, "DoubleTensor": dtypes.float64}


def frobenius_norm(input, dim, keepdim=False):
    """The 2-norm over ``dim`` (an int or up to two dims; ``()`` for all), as torch's deprecated
    ``frobenius_norm``, with its warning: ``linalg.vector_norm(input, 2, dim, keepdim)`` is the
    function to use."""
    x = _tensor_arg(input, "frobenius_norm")
    dims = (dim,) if isinstance(dim, int) and not isinstance(dim, bool) else tuple(dim)
    if len(dims) > 2:
        raise RuntimeError(f"frobenius_norm: expected at most 2 dimensions, but got {len(dims)} dimensions instead.")
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"norm(): input dtype should be either floating point or complex. Got {x.dtype} instead.")
    if len(dims) == 2 and dims[0] % max(x.ndim, 1) == dims[1] % max(x.ndim, 1):
        raise RuntimeError(f"dim {dims[0]} appears multiple times in the list of dims")
    warnings.warn("at::frobenius_norm is deprecated and it is just left for JIT compatibility. It will be removed in "
                  "a future PyTorch release. Please use `linalg.vector_norm(A, 2., dim, keepdim)` instead",
                  UserWarning, stacklevel=2)
    return x.norm(2, dim=dims if dims else None, keepdim=keepdim)


@accepts_device
def empty_permuted(size, physical_layout, *, dtype=None, requires_grad=False):
    """A new uninitialised tensor of ``size`` (torch's ``empty_permuted``). torch lays its memory
    out in the order ``physical_layout`` gives (a permutation of the dims, outermost first); gt
    makes it row-major, so only the memory order differs, never the values or shape.
    ``physical_layout`` is checked as torch checks it."""
    size, layout = tuple(size), tuple(physical_layout)
    if len(size) != len(layout):
        raise RuntimeError(f"Number of dimensions in size does not match the length of the physical_layout; i.e. "
                           f"len(size) = {len(size)} is not equal to len(physical_layout) = {len(layout)}")
    if len(set(layout)) != len(layout):
        raise RuntimeError("Duplicate dim not allowed")
    if sorted(layout) != list(range(len(layout))):
        raise IndexError(f"empty_permuted: physical_layout {list(layout)} must be a permutation of "
                         f"0..{len(layout) - 1}")
    return empty(*size, dtype=dtype, requires_grad=requires_grad)


def split_with_sizes_copy(input, split_sizes, dim=0):
    """``split_with_sizes``, each piece a new tensor rather than a view (differentiable)."""
    pieces = _tensor_arg(input, "split_with_sizes_copy").split_with_sizes(split_sizes, dim)
    return tuple(_copied(piece, True) for piece in pieces)


def conj_physical_(input):
    """The complex conjugate, in place: ``input`` itself, unchanged, for gt's real tensors."""
    return _tensor_arg(input, "conj_physical_").conj_physical_()
