"""torch.ao.quantization's ``fuse_modules``: layers that quantized kernels run as one, put
together before ``prepare`` (eval mode: a BatchNorm folds into the conv before it)."""

import copy

from gt.ao.nn import intrinsic
from gt.nn import BatchNorm1d, BatchNorm2d, Conv2d, Identity, Linear, ReLU
from gt.nn.utils_extra import fuse_conv_bn_eval, fuse_linear_bn_eval


def _conv_bn(conv, bn):
    if conv.training != bn.training:
        raise AssertionError("Conv and BN both must be in the same mode (train or eval).")
    if conv.training:
        raise NotImplementedError("fuse_modules: gt fuses Conv2d and BatchNorm2d in eval mode only (torch's training "
                                  "form, ConvBn2d for quantization-aware training, is not implemented); call .eval()")
    return fuse_conv_bn_eval(conv, bn)


def _linear_bn(linear, bn):
    if linear.training:
        raise NotImplementedError("fuse_modules: gt fuses Linear and BatchNorm1d in eval mode only; call .eval()")
    return fuse_linear_bn_eval(linear, bn)


_FUSERS = {
    (Conv2d, BatchNorm2d): _conv_bn,
    (Conv2d, BatchNorm2d, ReLU): lambda conv, bn, relu: intrinsic.ConvReLU2d(_conv_bn(conv, bn), relu),
    (Conv2d, ReLU): intrinsic.ConvReLU2d,
    (Linear, ReLU): intrinsic.LinearReLU,
    (Linear, BatchNorm1d): _linear_bn,
}


def fuse_known_modules(mod_list, is_qat=False, additional_fuser_method_mapping=None):
    """The modules of ``mod_list`` fused: ``[fused, Identity(), ...]`` (torch's list form)."""
    if is_qat:
        raise NotImplementedError("fuse_known_modules: gt has no quantization-aware training fusions")
    types = tuple(type(m) for m in mod_list)
    fuser = _FUSERS.get(types)
    if fuser is None:
        raise NotImplementedError(f"Cannot fuse modules: {types}")
    fused = fuser(*mod_list)
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
    (Conv2d, BatchNorm2d), (Conv2d, BatchNorm2d, ReLU), (Conv2d, ReLU), (Linear, ReLU), (Linear, BatchNorm1d)."""
    if not inplace:
        model = copy.deepcopy(model)
    groups = modules_to_fuse if all(isinstance(g, (list, tuple)) for g in modules_to_fuse) else [modules_to_fuse]
    for names in groups:
        new = fuser_func([_get(model, n) for n in names])
        for name, module in zip(names, new):
            _set(model, name, module)
    return model
