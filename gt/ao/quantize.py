"""torch.ao.quantization's eager-mode post-training static quantization:

    >>> model.qconfig = gt.ao.quantization.get_default_qconfig("x86")
    >>> prepared = gt.ao.quantization.prepare(model.eval())     # observers after each quantizable layer
    >>> for x in calibration_batches:
    ...     prepared(x)
    >>> qmodel = gt.ao.quantization.convert(prepared)           # quint8 activations, qint8 weights

``prepare`` gives each module its ``qconfig`` (inherited from its parent, as torch's
``propagate_qconfig_``) and each quantizable leaf an ``activation_post_process`` observer run by a
forward hook; ``convert`` puts the quantized module (``from_float``) in place of each observed one.
gt converts ``QuantStub``, ``DeQuantStub``, ``nn.Linear``, ``nn.Conv1d/2d/3d``,
``nn.ConvTranspose1d/2d/3d`` (weights per tensor: ``prepare`` refuses a per-channel weight observer, as torch's),
the fused ``LinearReLU``/``ConvReLU1d/2d/3d``/``BNReLU2d/3d``, ``FloatFunctional``, ``BatchNorm2d/3d``,
``LayerNorm``, ``GroupNorm``, ``InstanceNorm1d/2d/3d``, ``ReLU6``, ``Hardswish``, ``ELU``, ``LeakyReLU``, ``PReLU``,
``Dropout`` and (with ``float_qparams_weight_only_qconfig``) ``Embedding``/``EmbeddingBag``; ``nn.ReLU``,
``nn.Sigmoid``, ``nn.MaxPool2d`` and ``flatten``/``reshape`` run on quantized tensors as they are. A module torch would
convert and gt cannot (MultiheadAttention) with a qconfig makes ``convert`` raise
NotImplementedError.

Quantization-aware training (``prepare_qat``) swaps in the QAT layers (gt/ao/nn/qat, gt/ao/nn/intrinsic/qat:
``Linear``, ``Conv2d/3d``, the fused ``LinearReLU``, ``ConvReLU2d/3d``, ``ConvBn1d/2d/3d``, ``ConvBnReLU1d/2d/3d``,
``LinearBn1d``; with ``get_embedding_qat_module_mappings()`` ``Embedding``/``EmbeddingBag``), puts torch's
fixed-parameter fake quantizers after training-mode ``Sigmoid``/``Hardsigmoid``/``Softmax``/``Tanh``, and
``convert`` makes the quantized layers of the trained ones.
"""

import copy
import warnings

from gt.ao import fake_quantize, observer, qconfig as qc
from gt.ao.nn import intrinsic, qat as nnqat
from gt.ao.nn.intrinsic import qat as iqat, quantized as iq
from gt.ao.nn.quantized import activation as qact, conv_transpose as qconvt, functional_modules, normalization as qnorm
from gt.ao.nn.quantized import static
from gt.ao.nn.quantized.embedding import Embedding as QuantizedEmbedding
from gt.ao.nn.quantized.embedding_bag import EmbeddingBag as QuantizedEmbeddingBag
from gt.nn import (BatchNorm2d, BatchNorm3d, Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d,
                   ConvTranspose3d, Dropout, ELU, Embedding, EmbeddingBag, GroupNorm, Hardsigmoid, Hardswish,
                   InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm, LeakyReLU, Linear, MultiheadAttention,
                   PReLU, ReLU6, Sequential, Sigmoid, Softmax, Tanh)

DEFAULT_STATIC_QUANT_MODULE_MAPPINGS = {
    qc.QuantStub: static.Quantize, qc.DeQuantStub: static.DeQuantize, Linear: static.Linear, Conv2d: static.Conv2d,
    intrinsic.LinearReLU: iq.LinearReLU, intrinsic.ConvReLU2d: iq.ConvReLU2d,
    functional_modules.FloatFunctional: functional_modules.QFunctional}
DEFAULT_STATIC_QUANT_MODULE_MAPPINGS.update({
    Conv1d: static.Conv1d, Conv3d: static.Conv3d, BatchNorm2d: qnorm.BatchNorm2d, BatchNorm3d: qnorm.BatchNorm3d,
    LayerNorm: qnorm.LayerNorm, GroupNorm: qnorm.GroupNorm, InstanceNorm1d: qnorm.InstanceNorm1d,
    InstanceNorm2d: qnorm.InstanceNorm2d, InstanceNorm3d: qnorm.InstanceNorm3d, ReLU6: qact.ReLU6,
    Hardswish: qact.Hardswish, ELU: qact.ELU, LeakyReLU: qact.LeakyReLU, Dropout: qact.Dropout, PReLU: qact.PReLU,
    intrinsic.ConvReLU1d: iq.ConvReLU1d, intrinsic.ConvReLU3d: iq.ConvReLU3d, intrinsic.BNReLU2d: iq.BNReLU2d,
    intrinsic.BNReLU3d: iq.BNReLU3d, Embedding: QuantizedEmbedding, EmbeddingBag: QuantizedEmbeddingBag,
    ConvTranspose1d: qconvt.ConvTranspose1d, ConvTranspose2d: qconvt.ConvTranspose2d,
    ConvTranspose3d: qconvt.ConvTranspose3d})
# the layers quantization-aware training trained (prepare_qat) become the same quantized ones
DEFAULT_STATIC_QUANT_MODULE_MAPPINGS.update({
    nnqat.Linear: static.Linear, nnqat.Conv2d: static.Conv2d, nnqat.Conv3d: static.Conv3d,
    iqat.LinearReLU: iq.LinearReLU, iqat.ConvReLU2d: iq.ConvReLU2d, iqat.ConvBn2d: static.Conv2d,
    iqat.ConvBnReLU2d: iq.ConvReLU2d, iqat.ConvReLU3d: iq.ConvReLU3d, iqat.ConvBn1d: static.Conv1d,
    iqat.ConvBn3d: static.Conv3d, iqat.ConvBnReLU1d: iq.ConvReLU1d, iqat.ConvBnReLU3d: iq.ConvReLU3d,
    iqat.LinearBn1d: static.Linear})
# torch's fused QAT layers are _FusedModules too: convert swaps them whole (a ConvBn2d's bn stays inside)
_SWAPPED_WHOLE = (intrinsic._FusedModule, iqat.LinearReLU, iqat.ConvReLU1d, iqat.ConvReLU2d, iqat.ConvReLU3d,
                  iqat.modules._ConvBnNd, iqat.LinearBn1d)
DEFAULT_QAT_MODULE_MAPPINGS = {
    Linear: nnqat.Linear, Conv2d: nnqat.Conv2d, Conv3d: nnqat.Conv3d, intrinsic.LinearReLU: iqat.LinearReLU,
    intrinsic.ConvReLU2d: iqat.ConvReLU2d, intrinsic.ConvReLU3d: iqat.ConvReLU3d, intrinsic.ConvBn1d: iqat.ConvBn1d,
    intrinsic.ConvBn2d: iqat.ConvBn2d, intrinsic.ConvBn3d: iqat.ConvBn3d, intrinsic.ConvBnReLU1d: iqat.ConvBnReLU1d,
    intrinsic.ConvBnReLU2d: iqat.ConvBnReLU2d, intrinsic.ConvBnReLU3d: iqat.ConvBnReLU3d,
    intrinsic.LinearBn1d: iqat.LinearBn1d}
# torch's: in training mode (prepare_qat) these outputs, of known range, get fixed parameters, not the qconfig's
DEFAULT_MODULE_TO_ACT_POST_PROCESS = {
    Hardsigmoid: fake_quantize.default_fixed_qparams_range_0to1_fake_quant,
    Sigmoid: fake_quantize.default_fixed_qparams_range_0to1_fake_quant,
    Softmax: fake_quantize.default_fixed_qparams_range_0to1_fake_quant,
    Tanh: fake_quantize.default_fixed_qparams_range_neg1to1_fake_quant}


class NonDynamicallyQuantizableLinear(Linear):
    """torch's type of ``MultiheadAttention.out_proj``, whose weight the attention reads itself. gt's
    out_proj is a plain ``Linear``: qconfig dicts and mappings look it up under this type, so that, as
    in torch, ``{nn.Linear: ...}`` leaves it alone while a qconfig of its name or of the attention
    reaches it."""


def _type_key(parent, name, child):
    """The type ``child`` (``parent``'s child ``name``) is looked up under in qconfig dicts and mappings."""
    if isinstance(parent, MultiheadAttention) and name == "out_proj" and type(child) is Linear:
        return NonDynamicallyQuantizableLinear
    return type(child)


# torch's static mapping has these too (they would receive quantized tensors); gt has no quantized form
_NOT_IN_GT = (MultiheadAttention,)


def get_default_static_quant_module_mappings():
    return dict(DEFAULT_STATIC_QUANT_MODULE_MAPPINGS)


def propagate_qconfig_(module, qconfig_dict=None, prepare_custom_config_dict=None):
    """Give every module below ``module`` a ``qconfig``: its own, else ``qconfig_dict``'s for its type
    or name, else its parent's (torch's rule)."""
    _propagate(module, qconfig_dict or {}, None, "")


def _propagate(module, qconfig_dict, parent, prefix, key=None):
    config = qconfig_dict.get(type(module) if key is None else key, parent)
    config = qconfig_dict.get(prefix, config)
    config = getattr(module, "qconfig", config)
    _assert_valid_qconfig(config, module)
    module.qconfig = config
    for name, child in module.named_children():
        path = prefix + "." + name if prefix else name
        _propagate(child, qconfig_dict, config, path, _type_key(module, name, child))


def _assert_valid_qconfig(qconfig, module):
    """torch's check: a transposed convolution's weight observer may not be a per-channel one (its fbgemm
    kernel takes per-tensor weights only)."""
    if qconfig is None or qconfig.weight is None or not isinstance(module, (ConvTranspose1d, ConvTranspose2d,
                                                                            ConvTranspose3d)):
        return
    if isinstance(qconfig.weight(), (observer.PerChannelMinMaxObserver,
                                     observer.MovingAveragePerChannelMinMaxObserver)):
        raise AssertionError("Per channel weight observer is not supported yet for ConvTranspose{n}d.")


def _observer_forward_hook(self, input, output):
    return self.activation_post_process(output)


def _observer_forward_pre_hook(self, input):
    return self.activation_post_process(input[0])


def _observe(module, special=None):
    """Give ``module`` its observer (``activation_post_process``: the qconfig's, or ``special()``),
    run by a forward hook on its output; torch's: by a pre-hook on its input where the qconfig's
    activation observer is memoryless."""
    if getattr(module, "qconfig", None) is None or isinstance(module, qc.DeQuantStub):
        return
    module.add_module("activation_post_process", (module.qconfig.activation if special is None else special)())
    if qc._activation_is_memoryless(module.qconfig):
        module.register_forward_pre_hook(_observer_forward_pre_hook, prepend=True)
    else:
        module.register_forward_hook(_observer_forward_hook, prepend=True)


def _add_observers(module, non_leaf=()):
    for child in module.children():
        if isinstance(child, Dropout):
            continue
        if type(child) in non_leaf:     # a QAT layer: observed as one, its weight fake quantizer left alone
            _observe(child)
            continue
        if isinstance(child, functional_modules.FloatFunctional):
            if getattr(child, "qconfig", None) is not None:
                child.activation_post_process = child.qconfig.activation()
        elif isinstance(child, _SWAPPED_WHOLE):
            _observe(child)
        elif child.training and type(child) in DEFAULT_MODULE_TO_ACT_POST_PROCESS:
            _observe(child, DEFAULT_MODULE_TO_ACT_POST_PROCESS[type(child)])
        else:
            _add_observers(child, non_leaf)
    leaf = not module._modules and not isinstance(module, Sequential)
    if leaf and type(module) in DEFAULT_STATIC_QUANT_MODULE_MAPPINGS:
        _observe(module)


def prepare(model, inplace=False, allow_list=None, observer_non_leaf_module_list=None,
            prepare_custom_config_dict=None):
    """``model`` (a copy unless ``inplace``) ready for calibration: observers after each module
    with a ``qconfig`` that ``convert`` will quantize, and after each ``QuantStub``."""
    if allow_list is not None or prepare_custom_config_dict:
        raise NotImplementedError("prepare: gt takes no allow_list or custom config (torch's defaults only)")
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    if not any(getattr(m, "qconfig", None) for m in model.modules()):
        warnings.warn("None of the submodule got qconfig applied. Make sure you passed correct configuration "
                      "through `qconfig_dict` or by assigning the `.qconfig` attribute directly on submodules",
                      stacklevel=2)
    _add_observers(model, frozenset(observer_non_leaf_module_list or ()))
    return model


def _swap(mod, mapping, strict=True, key=None):
    key = type(mod) if key is None else key
    if getattr(mod, "qconfig", None) is None:
        return mod
    if key not in mapping:
        if strict and key in _NOT_IN_GT:
            raise NotImplementedError(f"convert: gt has no statically quantized {type(mod).__name__} (torch's "
                                      "convert would replace it); give it qconfig None to keep it float")
        return mod
    new = mapping[key].from_float(mod)
    for hook in mod._forward_pre_hooks.values():
        if hook is not _observer_forward_pre_hook:
            new.register_forward_pre_hook(hook)
    for hook in mod._forward_hooks.values():
        if hook is not _observer_forward_hook:
            new.register_forward_hook(hook)
    return new


def _convert(module, mapping, strict=True):
    swapped = {}
    for name, child in module.named_children():
        if not isinstance(child, _SWAPPED_WHOLE):
            _convert(child, mapping, strict)
        swapped[name] = _swap(child, mapping, strict, _type_key(module, name, child))
    for name, new in swapped.items():
        if new is not module._modules[name]:
            setattr(module, name, new)


def _remove_qconfig(module):
    for child in module.children():
        _remove_qconfig(child)
    if "qconfig" in module.__dict__:
        del module.__dict__["qconfig"]
    if isinstance(getattr(module, "activation_post_process", None),
                  (observer.ObserverBase, fake_quantize.FakeQuantizeBase)):
        delattr(module, "activation_post_process")
    for hooks, observing in ((module._forward_pre_hooks, _observer_forward_pre_hook),
                             (module._forward_hooks, _observer_forward_hook)):
        for key in [k for k, h in hooks.items() if h is observing]:
            del hooks[key]


def convert(module, mapping=None, inplace=False, remove_qconfig=True, is_reference=False,
            convert_custom_config_dict=None, use_precomputed_fake_quant=False):
    """``module`` (a copy unless ``inplace``, calibrated after ``prepare``) with each observed module
    replaced by its quantized form (``mapping``: float class -> quantized class, default
    ``get_default_static_quant_module_mappings()``); observers and qconfigs removed."""
    if is_reference or convert_custom_config_dict:
        raise NotImplementedError("convert: gt has no reference quantized modules or custom module mappings")
    if not inplace:
        module = copy.deepcopy(module)
    _convert(module, DEFAULT_STATIC_QUANT_MODULE_MAPPINGS if mapping is None else mapping)
    if remove_qconfig:
        _remove_qconfig(module)
    return module


def quantize(model, run_fn, run_args, mapping=None, inplace=False):
    """torch's ``quantize``: ``prepare``, ``run_fn(model, *run_args)`` to calibrate, ``convert``."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    prepare(model, inplace=True)
    run_fn(model, *run_args)
    convert(model, mapping, inplace=True)
    return model


def get_default_qat_module_mappings():
    """torch's: float (and float fused) class -> its quantization-aware training class."""
    return dict(DEFAULT_QAT_MODULE_MAPPINGS)


def get_embedding_qat_module_mappings():
    """torch's: ``get_default_qat_module_mappings()`` with ``nn.Embedding``/``nn.EmbeddingBag`` -> their
    QAT forms (give them ``default_embedding_qat_qconfig``)."""
    return {**DEFAULT_QAT_MODULE_MAPPINGS, EmbeddingBag: nnqat.EmbeddingBag, Embedding: nnqat.Embedding}


def get_embedding_static_quant_module_mappings():
    """torch's: the static mapping with the QAT ``Embedding``/``EmbeddingBag`` -> the weight-only quantized ones."""
    return {**DEFAULT_STATIC_QUANT_MODULE_MAPPINGS, nnqat.EmbeddingBag: QuantizedEmbeddingBag,
            nnqat.Embedding: QuantizedEmbedding}


def prepare_qat(model, mapping=None, inplace=False):
    """``model`` (a copy unless ``inplace``; in training mode) ready for quantization-aware training:
    each layer with a ``qconfig`` that ``mapping`` (default ``get_default_qat_module_mappings()``)
    names replaced by its QAT form (``from_float``: same parameters, a weight fake quantizer), and
    the qconfig's activation fake quantizer after it and after each ``QuantStub``. Train it, then
    ``convert`` it (``model.eval()`` first) into the quantized model."""
    if not model.training:
        raise AssertionError("prepare_qat only works on models in training mode")
    mapping = DEFAULT_QAT_MODULE_MAPPINGS if mapping is None else mapping
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    _convert(model, mapping, strict=False)      # torch's convert(..., remove_qconfig=False) with this mapping
    prepare(model, observer_non_leaf_module_list=set(mapping.values()), inplace=True)
    return model


def quantize_qat(model, run_fn, run_args, inplace=False):
    """torch's ``quantize_qat``: ``prepare_qat``, ``run_fn(model, *run_args)`` to train, ``convert``."""
    if not inplace:
        model = copy.deepcopy(model)
    model.train()
    prepare_qat(model, inplace=True)
    run_fn(model, *run_args)
    convert(model, inplace=True)
    return model
