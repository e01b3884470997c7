"""torch.ao.quantization's ``fuse_modules``: layers that quantized kernels run as one, put
together before ``prepare`` (eval mode: a BatchNorm folds into the conv before it)."""

import copy

from gt.ao.nn import intrinsic
from gt.nn import (BatchNorm1d, BatchNorm2d, BatchNorm3d, Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d,
                   ConvTranspose3d, Identity, Linear, ReLU)
from gt.nn.utils_extra import fuse_conv_bn_eval, fuse_linear_bn_eval


def _conv_bn(conv, bn, is_qat=False):
    if conv.training != bn.training:
        raise AssertionError("Conv and BN both must be in the same mode (train or eval).")
    if is_qat:      # kept apart: quantization-aware training folds the BatchNorm at each step (ConvBnNd)
        if bn.num_features != conv.out_channels:
            raise AssertionError("Output channel of Conv2d must match num_features of BatchNorm2d")
        if not bn.affine:
            raise AssertionError("Only support fusing BatchNorm2d with affine set to True")
        if not bn.track_running_stats:
            raise AssertionError("Only support fusing BatchNorm2d with tracking_running_stats set to True")
        return _CONV_BN[type(conv)](conv, bn)
    if conv.training:
        raise AssertionError("Fusion only for eval! (fuse_modules_qat keeps a training Conv2d and BatchNorm2d "
                             "together for quantization-aware training)")
    return fuse_conv_bn_eval(conv, bn)


_CONV_BN = {Conv1d: intrinsic.ConvBn1d, Conv2d: intrinsic.ConvBn2d, Conv3d: intrinsic.ConvBn3d}
_CONV_BN_RELU = {Conv1d: intrinsic.ConvBnReLU1d, Conv2d: intrinsic.ConvBnReLU2d, Conv3d: intrinsic.ConvBnReLU3d}


def _conv_bn_relu(conv, bn, relu, is_qat=False):
    fused = _conv_bn(conv, bn, is_qat)
    return _CONV_BN_RELU[type(conv)](conv, bn, relu) if is_qat else _conv_relu(fused, relu)


def _conv_relu(conv, relu, is_qat=False):
    return {Conv1d: intrinsic.ConvReLU1d, Conv2d: intrinsic.ConvReLU2d, Conv3d: intrinsic.ConvReLU3d}[type(conv)](
        conv, relu)


def _bn_relu(bn, relu, is_qat=False):
    return (intrinsic.BNReLU2d if isinstance(bn, BatchNorm2d) else intrinsic.BNReLU3d)(bn, relu)


def _linear_bn(linear, bn, is_qat=False):
    if linear.training != bn.training:
        raise AssertionError("Linear and BN both must be in the same mode (train or eval).")
    if is_qat:      # kept apart, as a convolution's (LinearBn1d)
        if bn.num_features != linear.out_features:
            raise AssertionError("Output features of Linear must match num_features of BatchNorm1d")
        if not bn.affine:
            raise AssertionError("Only support fusing BatchNorm1d with affine set to True")
        if not bn.track_running_stats:
            raise AssertionError("Only support fusing BatchNorm1d with tracking_running_stats set to True")
        return intrinsic.LinearBn1d(linear, bn)
    if linear.training:
        raise NotImplementedError("fuse_modules: gt fuses Linear and BatchNorm1d in eval mode only; call .eval()")
    return fuse_linear_bn_eval(linear, bn)


def _convtranspose_bn(convt, bn, is_qat=False):
    """torch's ``fuse_convtranspose_bn``: the BatchNorm folded into the transposed convolution's weight
    (scaled along its output-channel axis, 1) and bias; eval mode only, no QAT form."""
    if convt.training != bn.training:
        raise AssertionError("ConvTranspose and BN both must be in the same mode (train or eval).")
    if is_qat:
        raise Exception("Fusing ConvTranspose+BatchNorm not yet supported in QAT.")    # torch's type
    return fuse_conv_bn_eval(convt, bn, transpose=True)


_FUSERS = {
    (Conv2d, BatchNorm2d): _conv_bn,
    (Conv2d, BatchNorm2d, ReLU): _conv_bn_relu,
    (Conv2d, ReLU): _conv_relu,
    (Conv1d, BatchNorm1d): _conv_bn,
    (Conv1d, BatchNorm1d, ReLU): _conv_bn_relu,
    (Conv1d, ReLU): _conv_relu,
    (Conv3d, BatchNorm3d): _conv_bn,
    (Conv3d, BatchNorm3d, ReLU): _conv_bn_relu,
    (Conv3d, ReLU): _conv_relu,
    (BatchNorm2d, ReLU): _bn_relu,
    (BatchNorm3d, ReLU): _bn_relu,
    (Linear, ReLU): lambda linear, relu, is_qat=False: intrinsic.LinearReLU(linear, relu),
    (Linear, BatchNorm1d): _linear_bn,
    (ConvTranspose1d, BatchNorm1d): _convtranspose_bn,
    (ConvTranspose2d, BatchNorm2d): _convtranspose_bn,
    (ConvTranspose3d, BatchNorm3d): _convtranspose_bn,
}


def fuse_known_modules(mod_list, is_qat=False, additional_fuser_method_mapping=None):
    """The modules of ``mod_list`` fused: ``[fused, Identity(), ...]`` (torch's list form);
    ``is_qat``: a convolution or Linear and its BatchNorm kept apart in ``ConvBnNd``/``ConvBnReLUNd``/``LinearBn1d``."""
    types = tuple(type(m) for m in mod_list)
    fuser = _FUSERS.get(types)
    if fuser is None:
        raise NotImplementedError(f"Cannot fuse modules: {types}")
    fused = fuser(*mod_list, is_qat=is_qat)
    for hook in list(mod_list[0]._forward_pre_hooks.values()):
        fused.register_forward_pre_hook(hook)
    for hook in list(mod_list[-1]._forward_hooks.values()):
        fused.register_forward_hook(hook)
    for hooks in (mod_list[0]._forward_pre_hooks, mod_list[-1]._forward_hooks):
        if hooks:
            hooks.clear()
    rest = []
    for _ in mod_list[1:]:
        identity = Identity()
        identity.training = mod_list[0].training
        rest.append(identity)
    return [fused] + rest


def _get(model, name):
    for part in name.split("."):
        model = getattr(model, part)
    return model


def _set(model, name, value):
    *parents, last = name.split(".")
    for part in parents:
        model = getattr(model, part)
    setattr(model, last, value)


def fuse_modules(model, modules_to_fuse, inplace=False, fuser_func=fuse_known_modules, fuse_custom_config_dict=None):
    """``model`` (a copy unless ``inplace``) with each list of submodule names in ``modules_to_fuse``
    (or the one list) fused: the first name gets the fused module, the others ``Identity``. gt fuses
    (ConvNd, BatchNormNd), (ConvNd, BatchNormNd, ReLU), (ConvNd, ReLU), (ConvTransposeNd, BatchNormNd)
    for N = 1, 2, 3, (BatchNorm2d/3d, ReLU), (Linear, ReLU), (Linear, BatchNorm1d)."""
    return _fuse(model, modules_to_fuse, inplace, fuser_func, False)


def fuse_modules_qat(model, modules_to_fuse, inplace=False, fuser_func=fuse_known_modules,
                     fuse_custom_config_dict=None):
    """``fuse_modules`` for quantization-aware training (a model in training mode): a ConvNd and its
    BatchNormNd (and ReLU) become ``ConvBnNd``/``ConvBnReLUNd``, a Linear and its BatchNorm1d
    ``LinearBn1d``, which ``prepare_qat`` turns into the QAT layers that fold the BatchNorm at each step."""
    return _fuse(model, modules_to_fuse, inplace, fuser_func, True)


def _fuse(model, modules_to_fuse, inplace, fuser_func, is_qat):
    if not inplace:
        model = copy.deepcopy(model)
    groups = modules_to_fuse if all(isinstance(g, (list, tuple)) for g in modules_to_fuse) else [modules_to_fuse]
    for names in groups:
        new = fuser_func([_get(model, n) for n in names], is_qat)
        for name, module in zip(names, new):
            _set(model, name, module)
    return model
