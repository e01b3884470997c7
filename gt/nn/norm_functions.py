"""torch's remaining normalisation functions: ``F.group_norm``, ``F.instance_norm``,
``F.rms_norm`` and ``F.local_response_norm``.

Group and instance norm are batch norm in disguise: viewed as (1, N * groups, rest), each
group (or instance) is one "channel" of a batch of one, so both go through the fused batch norm
op (gt/ops/batch_norm.py) and share its train-mode gradient. RMS and local response norm are
short compositions of differentiable tensor ops.

Where gt differs from torch: bad arguments raise ValueError (TypeError for an integer input)
where torch raises RuntimeError or NotImplementedError from its kernels, and ``size <= 0`` for
local response norm is refused up front; ``rms_norm`` also takes an int ``normalized_shape``
(torch's function wants a list, its module takes an int too).
"""

import functools
import inspect
import math

from gt import autograd, dtypes
from gt.errors import ShapeError
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.inputs import in_float32
from gt.nn.mixed_dtypes import check_norm_dtypes
from gt.nn.padding import pad
from gt.ops import batch_norm as bn_ops
from gt.tensor import Tensor
from gt.tensor.complex_checks import refuse_complex_parameter

# torch.finfo(dtype).eps: rms_norm's default eps (no numpy above the backend to ask)
_EPS = {"float64": 2.220446049250313e-16, "float32": 1.1920928955078125e-07}


# the order in which torch's kernels read a norm's parameters (their dtype messages follow it)
_PARAMETERS = ("weight", "bias", "running_mean", "running_var")


def half_stays_half(fn):
    """``fn`` (a norm of ``input``) computed as torch's mixed-dtype CPU kernels where a float16 or
    bfloat16 input meets float32 weights or statistics: in float32, rounded once to the input's
    dtype at the end (casts on the tape: the input's gradient comes back in its dtype, the
    weights' in theirs), autocast or not (torch 2.13's autocast leaves norms alone)."""
    names = tuple(inspect.signature(fn).parameters)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        x = args[0] if args else kwargs.get("input")
        dtype = getattr(x, "dtype", None)
        if dtype not in dtypes.HALVES or not any(
                isinstance(a, Tensor) and a.dtype != dtype for a in args[1:] + tuple(kwargs.values())):
            return fn(*args, **kwargs)
        given = dict(zip(names, args), **kwargs)
        check_norm_dtypes(dtype, *(t for t in map(given.get, _PARAMETERS) if isinstance(t, Tensor)))
        if args:
            args = (x.float(),) + args[1:]
        else:
            kwargs["input"] = x.float()
        return fn(*args, **kwargs).to(dtype)
    return call


def _float_input(input, fn, min_dims):
    x = _tensor(input, fn)
    if x.ndim < min_dims:
        raise ValueError(f"{fn}: expected an input (N, C, *) with at least {min_dims} dims, got shape {x.shape}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{fn}: expected a floating point input, got {x.dtype!r}")
    return x


def channel_vectors(fn, c, x, **tensors):
    """Each given tensor (weight, bias, running stats) as a gt tensor of shape (C,), C = dim 1 of x;
    a complex one for a real x refused, as torch's (instance_norm's running stats too, where torch
    drops their imaginary parts with a warning), and dtypes torch's kernels refuse beside x's."""
    out, mixed, dtype = [], False, x.dtype
    for name, t in tensors.items():
        t = None if t is None else _tensor(t, fn, name)
        if t is not None and t.shape != (c,):
            raise ShapeError(f"{fn}: {name} should have shape ({c},) (the channels, dim 1 of input of shape "
                             f"{x.shape}), got {t.shape}")
        if t is not None and t.dtype is not dtype:
            if t.dtype.is_complex:
                refuse_complex_parameter(dtype, t, name)
            mixed = True
        out.append(t)
    if mixed:       # torch's dtype rules, in its kernels' order of the parameters
        given = dict(zip(tensors, out))
        check_norm_dtypes(dtype, *(given[n] for n in _PARAMETERS if n in given))
    return out


def _standardize(x, rows, eps):
    """x normalised over each of ``rows`` equal slices of its values, through the batch norm op
    on the (1, rows, per_row) view; returns (out shaped as x, mean (rows,), biased var (rows,))."""
    per_row = x.numel() // rows if rows else 0
    view = x.reshape(1, rows, per_row)                                # (1, rows, per_row)
    with autograd.no_grad():
        mean, var = view.mean(dim=(0, 2)), view._plain_var((0, 2))    # float32 statistics, as torch's kernel
    return bn_ops.BatchNorm.apply(view, None, None, mean, var, eps=eps, training=True).reshape(x.shape), mean, var


def _scale_shift(out, weight, bias):
    shape = (1, out.shape[1]) + (1,) * (out.ndim - 2)                # (C,) broadcast over (N, C, *)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


@half_stays_half
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Split the C channels of input (N, C, *) into ``num_groups`` groups of consecutive channels
    and normalise each sample's group over its channels and positions (biased variance):
    ``(x - mean) / sqrt(var + eps) * weight + bias``, ``weight`` and ``bias`` (C,) or None.

        >>> F.group_norm(gt.randn(8, 6, 5, 5), 3).shape
        (8, 6, 5, 5)
    """
    fn = "group_norm"
    x = _float_input(input, fn, 2)
    n, c = x.shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups <= 0 or c % num_groups:
        raise ValueError(f"{fn}: expected the channels (dim 1 of input of shape {x.shape}) to be divisible by "
                         f"num_groups, a positive int, got num_groups={num_groups!r}")
    weight, bias = channel_vectors(fn, c, x, weight=weight, bias=bias)
    if n * (c // num_groups) * math.prod(x.shape[2:]) == 1:
        # torch's _verify_batch_size on (N * C // G, G, *rest): its product, without the groups
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
    if x.numel() == 0:                       # nothing to normalise (torch returns the empty shape too)
        return _scale_shift(x * 1, weight, bias)
    def normed(x, weight, bias):
        return _scale_shift(_standardize(x, n * num_groups, eps)[0], weight, bias)
    # torch's kernel computes halves in float32, rounded once (half_stays_half covers mixed dtypes only)
    return in_float32(normed)(x, weight, bias)      # autocast or not, as torch 2.13's


# gt.func.vmap runs func once per batch element, each time pushing the ids of that element's slices
# of the mapped inputs: batch norm then refuses, as torch's vmap does, to update running statistics
# that are not mapped themselves (each element would move them again)
VMAP_SLICES = []


def check_stats_pair(running_mean, running_var):
    """torch's ValueError for one running statistic given without the other."""
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")


def refuse_unbatched_stats(running_mean, running_var):
    """Inside ``gt.func.vmap``: torch's refusal of running statistics updated per batch element."""
    if VMAP_SLICES and not all(any(id(t) in level for level in VMAP_SLICES) for t in (running_mean, running_var)):
        raise RuntimeError("Batch norm got a batched tensor as input while the running_mean or running_var, which "
                           "will be updated in place, were not batched.\nIf you are using a module and do not need "
                           "eval mode, please set `track_running_stats` to be False.If you are using a prebuilt "
                           "module and do not need eval mode, please see the functorch website for resources on "
                           "how to patch your module to work with vmap")


@half_stays_half
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalise each channel of each sample of input (N, C, *) over its positions:
    ``(x - mean) / sqrt(var + eps) * weight + bias``; ``weight``, ``bias`` and the running
    statistics (C,) or None.

    ``use_input_stats``: the sample's own mean and (biased) variance, and ``running_mean`` /
    ``running_var`` (where given) move in place toward their averages over the batch
    (``running = (1 - momentum) * running + momentum * batch``, unbiased variance, as torch).
    Otherwise the running statistics normalise every sample.

        >>> F.instance_norm(gt.randn(8, 3, 16)).shape
        (8, 3, 16)
    """
    fn = "instance_norm"
    x = _float_input(input, fn, 2)
    n, c = x.shape[:2]
    running_mean, running_var, weight, bias = channel_vectors(fn, c, x, running_mean=running_mean,
                                                              running_var=running_var, weight=weight, bias=bias)
    check_stats_pair(running_mean, running_var)     # torch's instance_norm checks no eps
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(f"{fn}: running_mean and running_var must be given when use_input_stats is False")
        return bn_ops.BatchNorm.apply(x, weight, bias, running_mean, running_var, eps=eps, training=False)
    m = x.numel() // (n * c) if n * c else 0
    if m <= 1 and n * c:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size {x.shape}")
    if x.numel() == 0:
        return _scale_shift(x * 1, weight, bias)
    if running_mean is not None:
        refuse_unbatched_stats(running_mean, running_var)
    out, mean, var = _standardize(x, n * c, eps)
    with autograd.no_grad():
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(mean.reshape(n, c).mean(dim=0) * momentum)
        if running_var is not None:
            running_var.mul_(1 - momentum).add_(var.reshape(n, c).mean(dim=0) * (momentum * m / (m - 1)))
    return _scale_shift(out, weight, bias)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``x / sqrt(mean(x ** 2) + eps) * weight`` over the trailing ``normalized_shape`` dims;
    ``weight`` of shape ``normalized_shape`` or None; ``eps=None`` is the machine epsilon of the
    dtype it computes in (torch's: float32's for float16 and bfloat16 inputs). float16 and bfloat16 inputs are computed in float32 and
    rounded back once, as torch's; the result has the input's dtype whatever the weight's, as torch's.

        >>> F.rms_norm(gt.randn(4, 10, 64), (64,)).shape
        (4, 10, 64)
    """
    if type(input) is not Tensor and getattr(input, "is_nested", False):    # gt.nested's form
        return type(input).__gt_function__(rms_norm, (input, normalized_shape, weight, eps), {})
    fn = "rms_norm"
    x = _tensor(input, fn)
    if not x.dtype.is_complex:      # complex: torch's formula as it stands (x * x, not |x| ** 2)
        x = _float_input(x, fn, 0)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in shape):
        raise ValueError(f"{fn}: normalized_shape must be a positive int or a non-empty tuple of them, "
                         f"got {normalized_shape!r}")
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ShapeError(f"{fn}: expected input with trailing shape {shape} (normalized_shape), got input "
                         f"of shape {x.shape}")
    if weight is not None:
        weight = _tensor(weight, fn, "weight")
        if weight.shape != shape:
            raise ValueError(f"{fn}: weight must have shape {shape} (normalized_shape), got {weight.shape}")
    dtype = x.dtype
    if dtype in dtypes.HALVES:       # torch computes halves in float32, rounded back once
        x = x.float()
    eps = _EPS[dtypes.REAL_OF.get(x.dtype.name, x.dtype).name] if eps is None else eps   # the computing dtype's
    out = x * ((x * x).mean(dim=tuple(range(-len(shape), 0)), keepdim=True) + eps).rsqrt()
    out = out if weight is None else out * weight
    return out if out.dtype == dtype else out.to(dtype)     # the input's dtype whatever the weight's (torch's)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Divide each value of input (N, C, *) by ``(k + alpha * mean(x ** 2)) ** beta``, the mean
    taken over a window of ``size`` neighbouring channels (``size // 2`` before, ``(size - 1) // 2``
    after, zeros past the edges, always divided by ``size``), as torch's.

        >>> F.local_response_norm(gt.randn(2, 16, 8, 8), size=5).shape
        (2, 16, 8, 8)
    """
    fn = "local_response_norm"
    x = _tensor(input, fn)
    if x.ndim < 3:
        raise ValueError(f"{fn}: expected 3D or higher dimensionality input (got {x.ndim} dimensions, "
                         f"shape {x.shape})")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"{fn}: size must be a positive int (channels in the window), got {size!r}")
    if x.dtype == dtypes.bool_:
        raise NotImplementedError(f"{fn}: not implemented for {x.dtype!r} inputs (as torch's average pool)")
    if x.dtype.is_complex:
        raise TypeError(f"{fn}: expected a real input, got {x.dtype!r}")
    if x.numel() == 0:
        return x * 1
    c = x.shape[1]
    padded = pad(x * x, (0, 0) * (x.ndim - 2) + (size // 2, (size - 1) // 2))   # (N, C + size - 1, *)
    window = padded[:, 0:c]
    for j in range(1, size):                 # one slice per window offset: size ops, not per element
        window = window + padded[:, j:j + c]
    if not x.dtype.is_floating_point:        # torch's integer average pool truncates the mean of squares
        return x / ((window // size) * alpha + k) ** beta
    return x / (window * (alpha / size) + k) ** beta
