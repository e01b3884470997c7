"""torch's elementwise activation functions beyond relu/gelu/softmax, and their in-place forms:
``F.relu6``, ``F.hardtanh``, ``F.selu``, ``F.logsigmoid``, ``F.prelu``, ``F.rrelu``, ... (re-exported
by gt/nn/functional.py).

Each is composed from differentiable tensor ops, so gradients come from the tape. Where torch's
function has a kink (0, a threshold, a clamp bound) the ``where`` conditions are chosen so that the
gradient there is torch's (e.g. 0 at hardtanh's bounds, where ``clamp``'s would be 1). An
``inplace=True`` call writes the result into the input with ``copy_`` (recorded on the tape, as
torch's in-place activations) and returns the input. Inputs of any shape; outputs have the input's
shape and dtype.
"""

import math

from gt import dtypes
from gt.autograd import no_grad
from gt.autograd.sparse_grad import mark
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.inputs import in_float32, nested_elementwise
from gt.nn.inputs import implicit_softmax_dim
from gt.ops.activations import ExpBranchClip
from gt.tensor import Tensor, overlap_writes, rand, where
from gt.tensor.complex_checks import refuse_complex, refuse_mixed
from gt.tensor.exact_values import needs_grad, with_grad
from gt.tensor.int_scalars import checked_scalar
from gt.tensor.inplace_grad import result_saved

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_HARDTANH = ("refuse", "hardtanh_backward")


def _apply(x, inplace, fn, reads_result=False, sparse=None):
    """``fn(x)``, or ``x`` overwritten with it when ``inplace`` (torch's in-place activations). The
    in-place result is computed from a copy of ``x`` when ``x`` is on the tape: the values its
    backward saved are then not the ones overwritten (gt saves no memory by ``inplace=True``).
    ``reads_result``: torch's backward reads the result from ``x``, so a later in-place change of
    ``x`` makes the backward raise torch's error, as there. ``sparse``: what torch's one node does
    with a sparse gradient (gt/autograd/sparse_grad.py's ``mark``), where ``fn`` records several."""
    if x.dtype in dtypes.HALVES:
        fn = in_float32(fn)
    if not inplace:
        return fn(x) if sparse is None else mark(fn(x), sparse, x)
    if not x.requires_grad and overlap_writes.overlapping(x):
        return overlap_writes.recompute(x, fn, (), {})     # windows sharing memory: element by element, as torch
    y = fn(x.clone() if x.requires_grad else x)
    out = x.copy_(y)
    if reads_result and out.requires_grad:
        result_saved(x, y)
    return out


def _tied(y):
    """``y`` (a ``where`` of its input) with its op marked ``grad_reads_input``: torch's backward of
    these piecewise-linear activations reads the input, so the gradient ``create_graph=True``
    records through them requires grad and differentiates again to zeros, as here
    (gt/autograd/graph_walk.py); gt's ``where`` alone would record a constant."""
    ctx = y._ctx
    if ctx is not None:     # an op run over the mesh: its first device's share, which the walk reads
        (ctx.ctxs[0] if getattr(ctx, "ctxs", None) else ctx).grad_reads_input = True
    return y


def _floating(x, fn):
    """TypeError unless ``x`` is floating point (torch has no integer kernel for ``fn``)."""
    if not x.dtype.is_floating_point:
        raise TypeError(f"{fn}: expected a floating-point input, got dtype {x.dtype!r} (torch: \"{fn}\" is not "
                        f"implemented for integer tensors)")
    return x


def _exp_neg_abs(x):
    """``exp(-|x|)``, in (0, 1]: no overflow, and (being a ``where`` of ``x`` and ``-x``) a gradient
    of ``-sign(x)`` that is -1 at x == 0, so the stable softplus forms below get torch's slope there."""
    return where(x < 0, x, -x).exp()


# ---- relu family --------------------------------------------------------------------------
def relu(input, inplace=False):
    """max(x, 0), elementwise (gradient 0 at x == 0, as torch)."""
    x = _tensor(input, "relu")
    if inplace and getattr(x, "is_quantized", False):     # torch's quantized relu_ (the integers clamped)
        return x.relu_()
    return _apply(x, inplace, lambda x: x.relu(), True)


@nested_elementwise
def leaky_relu(input, negative_slope=0.01, inplace=False):
    """``x`` where positive, ``negative_slope * x`` elsewhere (slope ``negative_slope`` at 0, as torch)."""
    x = _tensor(input, "leaky_relu")
    return _apply(x, inplace, lambda x: _tied(where(x > 0, x, x * negative_slope)), True,
                  ("refuse", "leaky_relu_backward"))


@nested_elementwise
def elu(input, alpha=1.0, inplace=False):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere (the exponential of the negative part
    only, so large inputs do not overflow where they are not used; ``expm1``: exact near 0)."""
    x = _tensor(input, "elu")
    # ``x <= 0`` picks the exponential: NaN takes the identity's gradient, as torch's elu_backward
    return _apply(x, inplace, lambda x: where(x <= 0, _exp_branch(x, 1.0, alpha), x), True,
                  ("refuse", "elu_backward"))


def _exp_branch(x, k, alpha):
    """``alpha * expm1(min(x, 0) / k)``: expm1's values (exact near 0), exp's gradient, as torch's
    backward (expm1's own, ``y + 1``, rounds to 0 far left of 0: at x = -501, not 1e-218)."""
    z = ExpBranchClip.apply(x, k) / k
    if not needs_grad(z):
        return z.expm1() * alpha
    with no_grad():
        value = z.expm1() * alpha
    return with_grad(value, (z.exp() - 1) * alpha)


def silu(input, inplace=False):
    """``x * sigmoid(x)`` (swish), elementwise."""
    if type(input) is not Tensor and getattr(input, "is_nested", False):    # gt.nested's form
        return type(input).__gt_function__(silu, (input, inplace), {})
    x = _tensor(input, "silu")
    return _apply(x, inplace, lambda x: x * x.sigmoid(), sparse=("derivative", "silu"))


@nested_elementwise
def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """``x`` clamped to ``[min_val, max_val]``; the gradient is 1 strictly inside and 0 at and beyond
    the bounds (torch's). Integer inputs stay integer (the bounds truncated to ints, as torch)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val cannot be greater than max_val, got min_val={min_val}, max_val={max_val}")
    x = _tensor(input, "hardtanh")
    if not x.dtype.is_floating_point:       # the bounds as floats through torch's checked cast (uint8 refuses -1)
        low, high = (int(checked_scalar(float(b), x.dtype, "hardtanh's bound")) for b in (min_val, max_val))
        return _apply(x, inplace, lambda x: x.clamp(low, high), sparse=_HARDTANH)
    lo, hi = float(min_val), float(max_val)
    if lo == 0 and math.copysign(1.0, lo) > 0:    # relu6's: relu keeps -0.0 and passes no gradient at or below 0
        return _apply(x, inplace, lambda x: _tied(where(x >= hi, _bound(x, hi), x.relu())), sparse=_HARDTANH)
    return _apply(x, inplace, lambda x: _tied(where(x <= lo, _bound(x, lo, True), where(x >= hi, _bound(x, hi), x))),
                  sparse=_HARDTANH)


def _bound(x, b, low=False):
    """``b`` where x is at or beyond it: a zero bound gives x's own zero on a tie (relu6(-0.0) is
    -0.0, as torch's clamp), with no gradient (torch's is 0 at the bounds): the detached x clamped at
    b, which keeps x on a tie."""
    if b != 0:
        return b
    return x.detach().clamp(min=b) if low else x.detach().clamp(max=b)    # b's own sign beyond it


@nested_elementwise
def relu6(input, inplace=False):
    """``min(max(x, 0), 6)``: ``hardtanh(x, 0, 6)`` (gradient 0 at 0 and 6, as torch)."""
    return hardtanh(input, 0.0, 6.0, inplace)


@nested_elementwise
def threshold(input, threshold, value, inplace=False):
    """``x`` where ``x > threshold``, else ``value`` (NaN stays NaN, as torch)."""
    x = _tensor(input, "threshold")
    # torch's checked cast into x's dtype (uint8 refuses -1.5), then its truncation
    fill = float(value) if x.dtype.is_floating_point else int(checked_scalar(value, x.dtype, "threshold's value"))
    return _apply(x, inplace, lambda x: _tied(where(x <= threshold, fill, x)), sparse=("refuse", "relu"))


_threshold = threshold   # for threshold_, whose argument has the function's name (as torch's)


def prelu(input, weight):
    """``x`` where positive, ``weight * x`` elsewhere, ``weight`` (num_parameters,) of size 1 or one
    slope per channel (dim 1 of ``input``; a 0-d or 1-d input has one channel). Both get gradients."""
    x, w = _tensor(input, "prelu"), _tensor(weight, "prelu", "weight")
    refuse_mixed(x, w, "prelu", "input and weight")
    refuse_complex(x, "prelu_cpu")
    if w.ndim > 1:
        raise ValueError(f"prelu: expected `weight` to be a scalar or 1D tensor, but got: ndim = {w.ndim}")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.numel() != 1 and w.numel() != channels:
        raise ValueError(f"prelu: mismatch of parameter numbers and input channel size. Found parameter numbers = "
                         f"{w.numel()} and channel size = {channels} (input of shape {x.shape})")
    # (C,) -> (C, 1, ..., 1): one slope per channel, broadcast over the axes after dim 1
    w = w.reshape(()) if w.numel() == 1 else w.reshape((channels,) + (1,) * (x.ndim - 2))
    return mark(_tied(where(x > 0, x, w * x)), ("refuse", "_prelu_kernel_backward"))


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomized leaky ReLU: while ``training``, each non-positive element gets its own slope drawn
    uniformly from ``[lower, upper)`` by gt's generator (``gt.manual_seed``; not torch's stream, so
    the draws differ from torch's); otherwise the fixed slope ``(lower + upper) / 2``, as torch."""
    if lower > upper:
        raise ValueError(f"rrelu: lower bound should be less than or equal to the upper bound, got lower={lower}, "
                         f"upper={upper}")
    x = _floating(_tensor(input, "rrelu"), "rrelu")
    if not training:
        return leaky_relu(x, (lower + upper) / 2, inplace)
    slopes = rand(*x.shape, dtype=x.dtype) * (upper - lower) + lower
    return _apply(x, inplace, lambda x: _tied(where(x > 0, x, x * slopes)), True)


# ---- smooth and exponential ---------------------------------------------------------------
@nested_elementwise
def selu(input, inplace=False):
    """``scale * elu(x, alpha)`` with torch's constants (alpha ~ 1.6733, scale ~ 1.0507)."""
    x = _floating(_tensor(input, "selu"), "selu")
    return _apply(x, inplace, lambda x: elu(x, _SELU_ALPHA) * _SELU_SCALE, True, ("refuse", "elu_backward"))


@nested_elementwise
def celu(input, alpha=1.0, inplace=False):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``; ``alpha`` must not be 0."""
    if alpha == 0:
        raise ValueError("celu: alpha cannot be 0 for CELU")
    x = _floating(_tensor(input, "celu"), "celu")
    # clamp x, not x / alpha: a negative alpha flips the sign (torch: alpha * (exp(x / alpha) - 1) for x <= 0)
    return _apply(x, inplace, lambda x: where(x <= 0, _exp_branch(x, alpha, alpha), x), True,
                  ("refuse", "elu_backward"))


@nested_elementwise
def logsigmoid(input):
    """``log(sigmoid(x)) = min(x, 0) - log(1 + exp(-|x|))``: finite for any finite ``x`` (no exp of
    a positive number), gradient ``sigmoid(-x)`` everywhere (0.5 at 0, as torch)."""
    x = _floating(_tensor(input, "logsigmoid"), "logsigmoid")
    out = in_float32(lambda x: where(x < 0, x, 0.0) - _exp_neg_abs(x).log1p())(x)
    return mark(out, ("refuse", "log_sigmoid_backward"))


@nested_elementwise
def mish(input, inplace=False):
    """``x * tanh(softplus(x))``, with softplus as ``max(x, 0) + log(1 + exp(-|x|))`` (no overflow)."""
    x = _floating(_tensor(input, "mish"), "mish")
    return _apply(x, inplace, lambda x: x * (where(x < 0, 0.0, x) + _exp_neg_abs(x).log1p()).tanh(),
                  sparse=("derivative", "mish"))


@nested_elementwise
def hardsigmoid(input, inplace=False):
    """``relu6(x + 3) / 6``: 0 for x <= -3, 1 for x >= 3 (gradient 1/6 strictly between, else 0)."""
    if getattr(input, "is_quantized", False):      # torch's quantized hardsigmoid (fixed output parameters)
        return input._hardsigmoid(inplace)
    x = _floating(_tensor(input, "hardsigmoid"), "hardsigmoid")
    # the clamp gives NaN a zero gradient, as torch's (which passes only -3 < x < 3)
    return _apply(x, inplace, lambda x: where(x <= -3, 0.0, where(x >= 3, 1.0, x.clamp(-3.0, 3.0) / 6 + 0.5)),
                  sparse=("refuse", "hardsigmoid_backward"))


@nested_elementwise
def hardswish(input, inplace=False):
    """``x * relu6(x + 3) / 6``; the gradient is torch's: 0 up to -3, ``x / 3 + 0.5`` strictly
    between -3 and 3, 1 from 3 on."""
    x = _floating(_tensor(input, "hardswish"), "hardswish")
    # ``x * 0`` below -3 rather than 0: -inf gives NaN there, as torch's ``x * relu6(x + 3) / 6``
    # the middle branch of a clamped x: at +-inf its unused gradient is then 0, not 0 * inf = NaN;
    # NaN takes the last branch (value NaN, gradient 1), as torch's hardswish_backward
    return _apply(x, inplace, lambda x: where(x <= -3, x * 0.0, where(x < 3, _mid_hardswish(x), x)),
                  sparse=("refuse", "hardswish_backward"))


def _mid_hardswish(x):
    c = x.clamp(-3.0, 3.0)
    return c * (c + 3) / 6


@nested_elementwise
def softsign(input):
    """``x / (1 + |x|)`` (float32 for an integer input, as torch)."""
    x = _tensor(input, "softsign")
    return x / (x.abs() + 1)


@nested_elementwise
def tanhshrink(input):
    """``x - tanh(x)``."""
    x = _tensor(input, "tanhshrink")
    return x - x.tanh()


def _lambd(lambd, fn):
    if not lambd >= 0:
        raise ValueError(f"{fn}: lambda must be greater or equal to 0, but found to be {lambd}")
    return float(lambd)


@nested_elementwise
def softshrink(input, lambd=0.5):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, 0 between (inclusive: the gradient
    is 0 at +-lambd, as torch); ``lambd >= 0``. NaN stays NaN."""
    lambd = _lambd(lambd, "softshrink")
    x = _floating(_tensor(input, "softshrink"), "softshrink")
    y = in_float32(lambda x: _tied(where((x >= -lambd) & (x <= lambd), 0.0,
                                          where(x > 0, x - lambd, x + lambd))))(x)
    if x.dtype not in dtypes.HALVES:
        return mark(y, ("refuse", "softshrink_backward"))
    # torch's backward compares in the half dtype (its forward in float32): no gradient where x
    # rounds onto +-lambd
    return where((x >= -lambd) & (x <= lambd), y.detach(), y)


@nested_elementwise
def hardshrink(input, lambd=0.5):
    """``x`` where ``|x| > lambd``, else 0 (gradient 0 at +-lambd, as torch). NaN stays NaN. torch
    accepts a negative ``lambd`` here (every element is kept) and so does gt."""
    x = _floating(_tensor(input, "hardshrink"), "hardshrink")
    return mark(_tied(where((x >= -lambd) & (x <= lambd), 0.0, x)), ("refuse", "hardshrink_backward"))


# ---- along a dim ----------------------------------------------------------------------------
def glu(input, dim=-1):
    """Gated linear unit: ``a * sigmoid(b)`` where ``a, b`` are the two halves of ``input`` along
    ``dim`` (..., 2n, ...) -> (..., n, ...)."""
    x = _floating(_tensor(input, "glu"), "glu")
    if x.ndim == 0:
        raise ValueError("glu does not support scalars because halving size must be even")
    if not -x.ndim <= dim < x.ndim:
        raise IndexError(f"glu: dim {dim} is out of range for a tensor of {x.ndim} dims "
                         f"(expected to be in range of [{-x.ndim}, {x.ndim - 1}])")
    d = dim % x.ndim
    if x.shape[d] % 2:
        raise ValueError(f"glu: halving dimension must be even, but dimension {d} is size {x.shape[d]}")
    a, b = x.split(x.shape[d] // 2, d)
    return mark(a * b.sigmoid(), ("refuse", "glu_backward"))


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """``softmax(-x)`` along ``dim``; ``dtype`` casts the input first. ``dim=None`` picks torch's
    implicit (deprecated) dim, with its warning: 0 for 0-, 1- and 3-d inputs, else 1."""
    x = _tensor(input, "softmin")
    if dtype is not None:
        x = x.to(dtype)
    if dim is None:
        dim = implicit_softmax_dim("softmin", x.ndim, _stacklevel)
    if x.ndim == 0:   # softmax of a 0-d tensor fails on the torch engine: go through shape (1,)
        if dim not in (0, -1):
            raise IndexError(f"softmin: dim {dim} is out of range for a 0-d tensor "
                             f"(expected to be in range of [-1, 0])")
        return (-x).reshape(1).softmax(0).reshape(())
    return (-x).softmax(dim)


# ---- in-place forms (torch's F.relu_ and the others) ------------------------------------------
def relu_(input):
    """``relu(input)``, written into ``input`` (returned)."""
    return relu(input, inplace=True)


def elu_(input, alpha=1.0):
    """``elu(input, alpha)``, written into ``input`` (returned)."""
    return elu(input, alpha, inplace=True)


def leaky_relu_(input, negative_slope=0.01):
    """``leaky_relu(input, negative_slope)``, written into ``input`` (returned)."""
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    """``hardtanh(input, min_val, max_val)``, written into ``input`` (returned)."""
    return hardtanh(input, min_val, max_val, inplace=True)


def threshold_(input, threshold, value):
    """``threshold(input, threshold, value)``, written into ``input`` (returned)."""
    return _threshold(input, threshold, value, inplace=True)


def selu_(input):
    """``selu(input)``, written into ``input`` (returned)."""
    return selu(input, inplace=True)


def celu_(input, alpha=1.0):
    """``celu(input, alpha)``, written into ``input`` (returned)."""
    return celu(input, alpha, inplace=True)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    """``rrelu(input, lower, upper, training)``, written into ``input`` (returned)."""
    return rrelu(input, lower, upper, training, inplace=True)
