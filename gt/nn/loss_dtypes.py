"""torch's refusals of loss inputs and targets of dtypes its kernels do not take, in its words.

The elementwise losses compute in the promoted dtype of input and target and have no integer
kernel (``mse_cpu``, ``smooth_l1_cpu``, ``huber_cpu``; ``l1_loss``'s mean of integers has no
dtype); ``huber_loss`` computes in the input's dtype; ``binary_cross_entropy`` takes a target of
the input's dtype only; ``binary_cross_entropy_with_logits`` writes into a tensor of the
target's dtype (so an integer target refuses a float result) and subtracts the target from 1 (so
a bool one is refused); ``kl_div`` refuses integers and bools outright. Each check is called
once the dtypes are known to differ or not to be floating, so a loss of one float dtype reads
nothing more.
"""

from gt import dtypes
from gt.tensor.complex_checks import cpp_name
from gt.tensor import Tensor
from gt.tensor.promotion import promote_types

_TWO_BOOLS = ("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
              "`logical_xor()` operator instead.")
_ONE_BOOL = ("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a "
             "mask, use the `~` or `logical_not()` operator instead.")


_NEGATION = ("Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, "
             "use the `~` or `logical_not()` operator instead.")


def _word(dtype):
    return dtypes.torch_type_name(dtype.name)


def _real_float(dtype):
    return dtype.is_floating_point or dtype.is_complex


def elementwise_dtype(kernel, input, target):
    """The dtype ``mse_loss``/``smooth_l1_loss`` compute in (input and target promoted), or torch's
    NotImplementedError where that is an integer or bool dtype."""
    dtype = promote_types(input.dtype, target.dtype)
    if not _real_float(dtype):
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{_word(dtype)}'")
    return dtype


def check_huber(input, target):
    """torch's refusals of an integer ``huber_loss``: no integer kernel, and a float target's
    result does not fit the integer input's dtype."""
    dtype = promote_types(input.dtype, target.dtype)
    if dtype is not input.dtype and not _real_float(input.dtype):
        raise RuntimeError(f"result type {_word(dtype)} can't be cast to the desired output type {_word(input.dtype)}")
    if not _real_float(dtype):
        raise NotImplementedError(f"\"huber_cpu\" not implemented for '{_word(dtype)}'")


def refuse_integer_mean(dtype):
    """torch's RuntimeError for the mean of a loss of integer ``dtype`` (``l1_loss`` of two integer tensors)."""
    raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating point or "
                       f"complex dtype. Got: {_word(dtype)}")


def check_bce(input, target):
    """torch's ``binary_cross_entropy`` checks: the target in the input's dtype (a weight may
    differ), and a floating input."""
    if target.dtype is not input.dtype:
        raise RuntimeError(f"Found dtype {_word(target.dtype)} but expected {_word(input.dtype)}")
    if not _real_float(input.dtype):
        raise NotImplementedError(f"\"binary_cross_entropy\" not implemented for '{_word(input.dtype)}'")


def check_bce_logits(input, target, pos_weight):
    """torch's ``binary_cross_entropy_with_logits`` refusals: an integer or bool input (no
    ``log_sigmoid`` kernel), an integer target (the float loss is written in its dtype), a bool
    target or ``pos_weight`` (subtracted from 1)."""
    if not _real_float(input.dtype):
        raise NotImplementedError(f"\"log_sigmoid_cpu\" not implemented for '{_word(input.dtype)}'")
    if target is not None and target.dtype is dtypes.bool_:
        raise RuntimeError(_TWO_BOOLS)
    if target is not None and not _real_float(target.dtype):
        raise RuntimeError(f"result type {_word(promote_types(input.dtype, target.dtype))} can't be cast to the "
                           f"desired output type {_word(target.dtype)}")
    if pos_weight is not None and pos_weight.dtype is dtypes.bool_:
        raise RuntimeError(_ONE_BOOL)


def check_kl_div(input, target):
    """torch's ``kl_div`` refuses integer and bool operands."""
    if not (_real_float(input.dtype) and _real_float(target.dtype)):
        raise RuntimeError("kl_div: Integral inputs not supported.")


def refuse_class_input(kernel, input):
    """torch's NotImplementedError for integer or bool scores given to a class loss (``kernel``:
    the softmax's or ``nll_loss``'s, which has none for them)."""
    raise NotImplementedError(f"\"{kernel}\" not implemented for '{_word(input.dtype)}'")


def refuse_float_input(fn, x):
    """torch's error for an integer or bool ``x`` given as the scores of loss ``fn`` (None where
    gt keeps its own TypeError)."""
    word, is_bool = _word(x.dtype), x.dtype is dtypes.bool_
    if fn == "soft_margin_loss":
        raise RuntimeError(_NEGATION if is_bool else f"result type Float can't be cast to the desired output type {word}")
    if fn == "hinge_embedding_loss":       # torch's sum of an integer input stays integer; its mean has no dtype
        raise RuntimeError(_TWO_BOOLS if is_bool else "mean(): could not infer output dtype. Input dtype must be "
                           f"either a floating point or complex dtype. Got: {word}")
    kernel = {"multilabel_soft_margin_loss": "log_sigmoid_cpu", "multi_margin_loss": "multi_margin_loss_cpu_kernel",
              "multilabel_margin_loss": "multilabel_margin_loss_forward_out_frame", "ctc_loss": "ctc_loss_cpu"}.get(fn)
    if kernel is not None:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{word}'")


def bool_subtraction(both):
    """torch's words refusing a subtraction with a bool operand (``both``: two bool tensors)."""
    return _TWO_BOOLS if both else _ONE_BOOL


def refuse_bool_operand(fn, what, t):
    """torch's subtraction's (or negation's, for ``margin_ranking_loss``'s target) RuntimeError for
    a bool tensor ``t`` among a loss's operands."""
    if isinstance(t, Tensor) and t.dtype is dtypes.bool_:
        raise RuntimeError(_NEGATION if (fn, what) == ("margin_ranking_loss", "target") else _ONE_BOOL)


def check_class_target(t):
    """``multi_margin_loss``'s int64 targets (gt also takes int32, as its other class losses)."""
    if t.dtype is not dtypes.int64 and t.dtype is not dtypes.int32:
        raise RuntimeError(f"expected scalar type Long but found {_word(t.dtype)}")


def refuse_int_var(var):
    """torch clamps ``gaussian_nll_loss``'s var in place: an integer or bool one cannot take it."""
    raise RuntimeError(f"result type Float can't be cast to the desired output type {cpp_name(var.dtype)}")
