"""A user's arguments to the ``gt.nn`` functions as tensors, with errors that name the function:
any tensor input (``as_tensor``), class indices (``class_indices``, ``check_range``), the implicit
dim of the softmax family (``implicit_softmax_dim``); and ``in_float32``, torch's float32 "opmath"
for half inputs."""

import functools
import warnings

from gt import dtypes
from gt.backend import B
from gt.tensor import Tensor, checks


# the functions that are a method call on their input, which a nested tensor (gt.nested) has
_NESTED_METHODS = frozenset({"relu", "gelu", "softmax", "log_softmax", "sigmoid", "tanh"})


def nested_elementwise(fn):
    """``fn`` (an elementwise function of its first argument) handed a nested tensor (gt.nested):
    run by the nested tensor's class on its values (``__gt_function__``), its structure kept."""
    @functools.wraps(fn)
    def call(input, *args, **kwargs):
        if type(input) is not Tensor and getattr(input, "is_nested", False):
            return type(input).__gt_function__(call, (input, *args), kwargs)
        return fn(input, *args, **kwargs)
    call.nested_elementwise = True
    return call


def as_tensor(x, fn, what="input"):
    if isinstance(x, Tensor):
        if type(x) is not Tensor and getattr(x, "is_nested", False) and fn not in _NESTED_METHODS:
            raise NotImplementedError(f"aten.{fn}.default: not supported on a nested tensor ({what}) in gt; "
                                      "gt.nested has linear, layer_norm, softmax, dropout, the activations and "
                                      "scaled_dot_product_attention")
        return x
    try:
        return Tensor._wrap(B.asarray(x))
    except TypeError as exc:
        raise TypeError(f"{fn}: {what} must be a gt.Tensor or array-like, got {type(x).__name__}: {exc}") from None


def class_indices(indices, fn, what, small=dtypes.SMALL_INTS):
    """``indices`` as an integer tensor; ``small``: the uint8/int8/int16 dtypes ``fn`` takes, as
    torch's kernel (the others raise its RuntimeError: ``embedding`` and ``one_hot`` take none,
    the class losses uint8 targets of (N, C) inputs only)."""
    idx = as_tensor(indices, fn, what)
    if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == dtypes.bool_:
        # torch's RuntimeError, in its words, with gt's hint for the class losses
        hint = "" if fn in ("embedding", "one_hot") else f" ({what} must be integer class indices: int64 or int32" + (
            "; class probabilities are F.cross_entropy's)" if fn == "nll_loss" else ")")
        raise RuntimeError(_small_index_refusal(fn, what, dtypes.torch_type_name(idx.dtype.name), small) + hint)
    if idx.dtype in dtypes.SMALL_INTS and idx.dtype not in small:
        raise RuntimeError(_small_index_refusal(fn, what, dtypes.torch_type_name(idx.dtype.name), small))
    # uint8/int8/int16 indices as int64: compared with Python ints (a class count, ignore_index=-100)
    # they would be cast into their dtype, torch's rule for tensor-number ops (-100 into uint8 is 156)
    return idx.long() if idx.dtype in dtypes.SMALL_INTS else idx


def _small_index_refusal(fn, what, name, small):
    if fn == "embedding":
        return (f"Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; "
                f"but got torch.{name}Tensor instead (while checking arguments for embedding)")
    if fn == "one_hot":
        return f"one_hot is only applicable to index tensor of type LongTensor (got torch.{name}Tensor indices)."
    if small:
        return f"{fn}: expected target dtype to be Long or Byte, but got {name}"
    return f"{fn}: expected scalar type Long but found {name} (the {what} of a (N, C, d1, ...) input)"


def check_range(idx, n, fn, what, limit, exc):
    """Raise ``exc`` naming the first of ``idx`` outside ``[0, n)`` (on a GPU at the next host
    read); returns the indices to compute with (``checks.within``)."""
    return checks.require_within(idx, 0, n - 1, exc,
                                 lambda bad: f"{fn}: {what} {bad} is out of range for {limit} (valid: 0..{n - 1})")


def implicit_softmax_dim(fn, ndim, stacklevel):
    """torch's legacy dim for ``softmax``/``log_softmax``/``softmin`` called without one (its
    ``_get_softmax_dim``): 0 for 0-, 1- and 3-d inputs, else 1, with its deprecation warning."""
    warnings.warn(f"Implicit dimension choice for {fn} has been deprecated. Change the call to include "
                  "dim=X as an argument.", UserWarning, stacklevel=stacklevel + 1)
    return 0 if ndim in (0, 1, 3) else 1


def in_float32(fn):
    """``fn(x, *tensors)`` as torch's CPU kernels compute a float16/bfloat16 ``x``: ``x`` and the
    tensors (weights; None stays None) in float32, the result rounded once to ``x``'s dtype (in
    the half dtype each step rounds, and a bound given as a number is rounded before it is
    compared: ``threshold(x, 0.001, v)`` replaced 0.001). Other dtypes: ``fn`` as it is."""
    def call(x, *tensors):
        if x.dtype not in dtypes.HALVES:
            return fn(x, *tensors)
        return fn(x.float(), *(t if t is None else t.float() for t in tensors)).to(x.dtype)
    return call
