"""torch.nn.utils' smaller helpers: ``get_total_norm`` and ``clip_grads_with_norm_`` (the two halves
of ``clip_grad_norm_``), BatchNorm fusion into a preceding conv or linear layer for inference, and
``skip_init``. Re-exported by gt/nn/utils.py as ``gt.nn.utils.<name>``."""

import copy
import inspect
import math

from gt import autograd, dtypes
from gt.nn.module import Module
from gt.nn.parameter import Parameter
from gt.tensor import Tensor, get_rng_state, ones_like, set_rng_state, stack, tensor, zeros_like


def _tensor_list(tensors, fn):
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: expected a gt.Tensor or an iterable of them, got an element of type "
                            f"{type(t).__name__}")
    return tensors


def _vector_norm(x, ord):
    """torch.linalg.vector_norm(x, ord) of all of ``x``'s elements, as a 0-d tensor."""
    if not x.dtype.is_floating_point:
        raise TypeError(f"get_total_norm: expected floating point tensors, got one of dtype {x.dtype}")
    x = x.reshape(-1)
    if x.numel() == 0:
        if ord < 0 or ord == math.inf:      # a max or min over nothing
            raise RuntimeError(f"get_total_norm: cannot compute the {ord} norm of an empty tensor, because the "
                               "operation does not have an identity")
        return zeros_like(x.sum())
    if ord == 0:
        return (x != 0).sum().to(x.dtype)
    if ord in (2.0, 1.0, math.inf, -math.inf) or ord > 0:
        return x.norm(ord)
    if x.dtype in dtypes.HALVES:     # summed in float32 and rounded back, as torch does
        return ((x.float().abs() ** ord).sum() ** (1.0 / ord)).to(x.dtype)
    return (x.abs() ** ord).sum() ** (1.0 / ord)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The ``norm_type`` norm of ``tensors`` taken together, as if concatenated into one vector
    (the norm of their norms): a 0-d tensor, outside the tape. ``norm_type``: any number, or
    ``inf``/``-inf`` (max/min abs), 0 (the count of nonzeros), as ``torch.linalg.vector_norm``.
    No tensors: ``tensor(0.)``. ``error_if_nonfinite``: raise if the total is nan or inf.
    ``foreach`` is accepted for torch compatibility and ignored.

        >>> grads = [p.grad for p in model.parameters() if p.grad is not None]
        >>> norm = gt.nn.utils.get_total_norm(grads)
    """
    tensors = _tensor_list(tensors, "get_total_norm")
    norm_type = float(norm_type)
    if not tensors:
        return tensor(0.0)
    with autograd.no_grad():
        norms = [_vector_norm(t.detach(), norm_type) for t in tensors]
        total = _vector_norm(stack(norms), norm_type)
    if error_if_nonfinite and not bool(total.isfinite()):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot "
            "be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale every ``.grad`` of ``parameters`` in place by ``min(max_norm / (total_norm + 1e-6), 1)``
    (``total_norm``: from ``get_total_norm``; a tensor or a number). Parameters without a grad are
    skipped. ``clip_grad_norm_`` is ``get_total_norm`` followed by this. Returns None.

        >>> norm = gt.nn.utils.get_total_norm([p.grad for p in params])
        >>> gt.nn.utils.clip_grads_with_norm_(params, max_norm=1.0, total_norm=norm)
    """
    grads = [p.grad for p in _tensor_list(parameters, "clip_grads_with_norm_") if p.grad is not None]
    max_norm = float(max_norm)
    if not grads:
        return
    with autograd.no_grad():
        total = total_norm.detach() if isinstance(total_norm, Tensor) else tensor(float(total_norm))
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef)


def _check_eval(layer, bn):
    if layer.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("bn.running_mean and bn.running_var must not be None")


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """The (weight, bias) Parameters of a conv whose output is then BatchNorm'ed in eval mode, folded
    into one conv: ``w * (bn_w / sqrt(rv + eps))`` per output channel, ``(b - rm) * that + bn_b``.
    Weight (C_out, C_in/g, *k); with ``transpose=True`` a transposed conv's (C_in, C_out/g, *k).
    ``conv_b``, ``bn_w``, ``bn_b`` may be None (zeros, ones, zeros). Each keeps its dtype."""
    with autograd.no_grad():
        conv_b_dtype = conv_b.dtype if conv_b is not None else conv_w.dtype
        conv_b = zeros_like(bn_rm) if conv_b is None else conv_b
        bn_w = ones_like(bn_rm) if bn_w is None else bn_w
        bn_b = zeros_like(bn_rm) if bn_b is None else bn_b
        rsqrt = (bn_rv + bn_eps).rsqrt()
        shape = ((1, -1) if transpose else (-1, 1)) + (1,) * (conv_w.ndim - 2)
        fused_w = (conv_w * (bn_w * rsqrt).reshape(shape)).to(conv_w.dtype)
        fused_b = ((conv_b - bn_rm) * rsqrt * bn_w + bn_b).to(conv_b_dtype)
    return Parameter(fused_w, conv_w.requires_grad), Parameter(fused_b, conv_b.requires_grad)


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """A new conv layer (a deep copy of ``conv``) computing ``bn(conv(x))`` of the two layers in
    eval mode: BatchNorm folded into the conv's weight and bias. ``transpose=True`` for a
    ConvTranspose. Both must be in eval mode and ``bn`` must keep running statistics.

        >>> fused = gt.nn.utils.fuse_conv_bn_eval(conv.eval(), bn.eval())
    """
    _check_eval(conv, bn)
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """The (weight, bias) Parameters of a Linear followed by a BatchNorm in eval mode, folded into
    one Linear: weight (out, in) scaled per row by ``bn_w / sqrt(rv + eps)``. ``linear_b`` may be None."""
    with autograd.no_grad():
        bias_dtype = linear_b.dtype if linear_b is not None else linear_w.dtype
        linear_b = zeros_like(bn_rm) if linear_b is None else linear_b
        scale = bn_w * (bn_rv + bn_eps).rsqrt()
        fused_w = linear_w * scale.unsqueeze(-1).to(linear_w.dtype)
        fused_b = ((linear_b - bn_rm) * scale + bn_b).to(bias_dtype)
    return Parameter(fused_w, linear_w.requires_grad), Parameter(fused_b, linear_b.requires_grad)


def fuse_linear_bn_eval(linear, bn):
    """A new Linear (a deep copy of ``linear``) computing ``bn(linear(x))`` of the two layers in eval
    mode. ``bn.num_features`` must be ``linear.out_features`` or 1.

        >>> fused = gt.nn.utils.fuse_linear_bn_eval(linear.eval(), bn.eval())
    """
    _check_eval(linear, bn)
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise AssertionError("To fuse, linear.out_features == bn.num_features or bn.num_features == 1, got "
                             f"linear.out_features={linear.out_features} and bn.num_features={bn.num_features}")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused


def skip_init(module_cls, *args, **kwargs):
    """``module_cls(*args, **kwargs)`` whose parameter values are to be set by the caller (e.g.
    by ``load_state_dict`` or ``nn.init``): the random generator is left as it was, as torch's.

    Where gt differs from torch: torch builds the module on the meta device and allocates
    uninitialized memory (no init cost, and only for modules taking a ``device`` argument); gt
    builds it as usual, with its default values, and then restores the random generator's state,
    so any module class works and the values are defined. ``device`` may be None or ``"cpu"``.

        >>> m = gt.nn.utils.skip_init(gt.nn.Linear, 5, 1)
    """
    if not (inspect.isclass(module_cls) and issubclass(module_cls, Module)):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    device = kwargs.pop("device", None)
    if device is not None and str(device) != "cpu":
        raise NotImplementedError(f"skip_init: device={str(device)!r}; gt builds modules where its tensors live: "
                                  "pass device=None")
    state = get_rng_state()
    try:
        return module_cls(*args, **kwargs)
    finally:
        set_rng_state(state)
