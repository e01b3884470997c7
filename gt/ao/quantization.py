"""torch.ao.quantization: dynamic quantization (``quantize_dynamic``, here), the static
post-training API (gt/ao/qconfig.py, observer.py, histogram_observer.py, fuse_modules.py, quantize.py)
and quantization-aware training (fake_quantize.py, ``prepare_qat``), re-exported here under torch's names.

    >>> qmodel = gt.ao.quantization.quantize_dynamic(model, {gt.nn.Linear}, dtype=gt.qint8)

puts a ``gt.ao.nn.quantized.dynamic.Linear`` (qint8 weight, a quarter of the float32 memory;
outputs equal to torch's bit for bit) in place of every ``nn.Linear`` below ``model``, and the dynamic
``LSTM``/``GRU``/``LSTMCell``/``GRUCell``/``RNNCell`` in place of the float ones (qint8, or with
``dtype=gt.float16`` float16 weights; a dict of qconfigs: per-channel qint8 too); with ``dtype=gt.quint8``, a
``gt.ao.nn.quantized.Embedding`` / ``EmbeddingBag`` (weight only) in place of every ``nn.Embedding`` /
``nn.EmbeddingBag``; with ``dtype=gt.quint4x2``, a 4-bit ``EmbeddingBag`` in place of every ``nn.EmbeddingBag``.
"""

import copy

from gt import dtypes
from gt.ao.nn.quantized import dynamic
from gt.ao.nn.quantized.embedding import Embedding as QuantizedEmbedding
from gt.ao.nn.quantized.embedding_bag import EmbeddingBag as QuantizedEmbeddingBag
from gt.nn.embedding import Embedding as FloatEmbedding
from gt.nn.embedding_bag import EmbeddingBag
from gt.nn.linear import Linear as FloatLinear
from gt.nn.recurrent import GRU, LSTM
from gt.nn.rnn_cells import GRUCell, LSTMCell, RNNCell
from gt.ao import _learnable_fake_quantize, fake_quantize, histogram_observer, observer  # noqa: F401 (torch's path)
from gt.ao.fake_quantize import (FakeQuantize, FakeQuantizeBase, FusedMovingAvgObsFakeQuantize,
                                 default_dynamic_fake_quant, default_fake_quant, default_fused_act_fake_quant,
                                 default_fused_per_channel_wt_fake_quant, default_fused_wt_fake_quant,
                                 default_histogram_fake_quant, default_per_channel_weight_fake_quant,
                                 default_weight_fake_quant, disable_fake_quant, disable_observer, enable_fake_quant,
                                 enable_observer)
from gt.ao.fake_quantize import (FixedQParamsFakeQuantize, default_affine_fixed_qparams_fake_quant,
                                 default_fixed_qparams_range_0to1_fake_quant,
                                 default_fixed_qparams_range_neg1to1_fake_quant,
                                 default_symmetric_fixed_qparams_fake_quant)
from gt.ao.fuse_modules import fuse_known_modules, fuse_modules, fuse_modules_qat
from gt.ao.histogram_observer import HistogramObserver
from gt.ao.observer import (FixedQParamsObserver, default_affine_fixed_qparams_observer,
                            default_fixed_qparams_range_0to1_observer, default_fixed_qparams_range_neg1to1_observer,
                            default_symmetric_fixed_qparams_observer)
from gt.ao.observer import (MinMaxObserver, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
                            ObserverBase, PerChannelMinMaxObserver, PlaceholderObserver,
                            UniformQuantizationObserverBase)
from gt.ao import quantize as _quantize
from gt.ao.nn import intrinsic
from gt.ao.nn.qat import dynamic as qat_dynamic
from gt.ao.nn.intrinsic.quantized import dynamic as intrinsic_dynamic
from gt.ao.qconfig import default_dynamic_qat_qconfig, float16_dynamic_qconfig, per_channel_dynamic_qconfig
from gt.ao.qconfig import (DeQuantStub, QConfig, QuantStub, QuantWrapper, default_dynamic_qconfig,
                           default_float_qparams_observer, default_histogram_observer, default_observer,
                           default_per_channel_qconfig, default_per_channel_weight_observer, default_qconfig,
                           default_weight_observer, float_qparams_weight_only_qconfig, get_default_qconfig)
from gt.ao.qconfig import default_qat_qconfig, default_qat_qconfig_v2, get_default_qat_qconfig
from gt.ao.qconfig import default_float_qparams_observer_4bit, float_qparams_weight_only_qconfig_4bit
from gt.ao.quantize import (convert, get_default_static_quant_module_mappings, prepare, propagate_qconfig_,
                            quantize)
from gt.ao.quantize import get_default_qat_module_mappings, prepare_qat, quantize_qat
from gt.ao.quantize import get_embedding_qat_module_mappings, get_embedding_static_quant_module_mappings
from gt.ao.observer import NoopObserver
from gt.ao.fake_quantize import default_embedding_fake_quant, default_embedding_fake_quant_4bit
from gt.ao.qconfig import default_embedding_qat_qconfig, default_embedding_qat_qconfig_4bit

__all__ = ["DeQuantStub", "HistogramObserver", "MinMaxObserver", "MovingAverageMinMaxObserver",
           "MovingAveragePerChannelMinMaxObserver", "ObserverBase", "PerChannelMinMaxObserver", "PlaceholderObserver",
           "QConfig", "QuantStub", "QuantWrapper", "UniformQuantizationObserverBase", "convert",
           "default_dynamic_qconfig", "default_float_qparams_observer", "default_histogram_observer",
           "default_observer", "default_per_channel_qconfig", "default_per_channel_weight_observer",
           "default_qconfig", "default_weight_observer", "float_qparams_weight_only_qconfig", "fuse_known_modules",
           "fuse_modules", "get_default_qconfig", "get_default_static_quant_module_mappings", "histogram_observer",
           "observer", "prepare", "propagate_qconfig_", "quantize", "quantize_dynamic"]
__all__ += ["FakeQuantize", "FakeQuantizeBase", "FusedMovingAvgObsFakeQuantize", "default_dynamic_fake_quant",
            "default_fake_quant", "default_histogram_fake_quant",
            "default_fused_act_fake_quant", "default_fused_per_channel_wt_fake_quant", "default_fused_wt_fake_quant",
            "default_per_channel_weight_fake_quant", "default_qat_qconfig", "default_qat_qconfig_v2",
            "default_weight_fake_quant", "disable_fake_quant", "disable_observer", "enable_fake_quant",
            "enable_observer", "fake_quantize", "fuse_modules_qat", "get_default_qat_module_mappings",
            "get_default_qat_qconfig", "prepare_qat", "quantize_qat"]
__all__ += ["FixedQParamsFakeQuantize", "FixedQParamsObserver", "default_affine_fixed_qparams_fake_quant",
            "default_affine_fixed_qparams_observer", "default_fixed_qparams_range_0to1_fake_quant",
            "default_fixed_qparams_range_0to1_observer", "default_fixed_qparams_range_neg1to1_fake_quant",
            "default_fixed_qparams_range_neg1to1_observer", "default_symmetric_fixed_qparams_fake_quant",
            "default_symmetric_fixed_qparams_observer"]
__all__ += ["NoopObserver", "default_embedding_fake_quant", "default_embedding_fake_quant_4bit",
            "default_embedding_qat_qconfig", "default_embedding_qat_qconfig_4bit", "get_embedding_qat_module_mappings",
            "get_embedding_static_quant_module_mappings"]
__all__ += ["default_float_qparams_observer_4bit", "float_qparams_weight_only_qconfig_4bit"]
__all__ += ["default_dynamic_qat_qconfig", "float16_dynamic_qconfig", "get_default_dynamic_quant_module_mappings",
            "per_channel_dynamic_qconfig"]


def get_default_dynamic_quant_module_mappings():
    """torch's: float class -> its dynamically (or weight-only) quantized class."""
    return dict(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS)


def quantize_dynamic(model, qconfig_spec=None, dtype=dtypes.qint8, mapping=None, inplace=False):
    """``model`` (a copy unless ``inplace``; put in eval mode) with its submodules replaced by their
    dynamically quantized forms, as torch's: ``qconfig_spec`` is a dict whose keys are module classes
    or submodule names (``"encoder.0"``) and whose values are qconfigs (None keeps a module float),
    handed down to each module's children unless their own name, their type, or a ``qconfig`` they
    already have, says otherwise (``propagate_qconfig_``; ``dtype`` is then unused); or a set of
    classes and names, each given ``dtype``'s qconfig (qint8: ``default_dynamic_qconfig``, float16:
    ``float16_dynamic_qconfig``, quint8 and quint4x2: ``float_qparams_weight_only_qconfig(_4bit)``);
    or None: ``dtype``'s default set (``nn.Linear``, ``nn.LSTM``, ``nn.GRU``, ``nn.LSTMCell``,
    ``nn.RNNCell``, ``nn.GRUCell`` for qint8 and float16, ``nn.Embedding`` and ``nn.EmbeddingBag``
    for quint8, ``nn.EmbeddingBag`` for quint4x2). Each module with a qconfig whose class ``mapping``
    (default ``get_default_dynamic_quant_module_mappings()``) names becomes that class's
    ``from_float`` of it, its forward hooks kept; ``model`` itself is never replaced, and the
    qconfigs are removed afterwards. A qconfig's weight observer picks the weights: qint8 per tensor
    or per output channel (``per_channel_dynamic_qconfig``; affine observers' zero points too),
    or float16."""
    if qconfig_spec is None:
        if dtype not in _DEFAULT_SPECS:
            raise ValueError(f"Don't know how to quantize with default settings for {dtype}. Provide full qconfig "
                             "please")
        qconfig, kinds = _DEFAULT_SPECS[dtype]
        qconfig_spec = dict.fromkeys(kinds, qconfig)
    elif isinstance(qconfig_spec, set):
        if dtype not in _DEFAULT_SPECS:
            raise RuntimeError("Unknown dtype specified for quantize_dynamic: ", str(dtype))
        qconfig_spec = dict.fromkeys(qconfig_spec, _DEFAULT_SPECS[dtype][0])
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    propagate_qconfig_(model, qconfig_spec)
    # torch's convert(model, mapping, inplace=True): a module not in the mapping stays as it is
    _quantize._convert(model, DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS if mapping is None else mapping, strict=False)
    _quantize._remove_qconfig(model)
    return model


_RECURRENT = (LSTM, GRU, LSTMCell, RNNCell, GRUCell)
_DEFAULT_SPECS = {dtypes.qint8: (default_dynamic_qconfig, (FloatLinear, *_RECURRENT)),
                  dtypes.float16: (float16_dynamic_qconfig, (FloatLinear, *_RECURRENT)),
                  dtypes.quint8: (float_qparams_weight_only_qconfig, (EmbeddingBag, FloatEmbedding)),
                  dtypes.quint4x2: (float_qparams_weight_only_qconfig_4bit, (EmbeddingBag,))}
DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS = {
    GRUCell: dynamic.GRUCell, FloatLinear: dynamic.Linear, _quantize.NonDynamicallyQuantizableLinear: dynamic.Linear,
    LSTM: dynamic.LSTM, GRU: dynamic.GRU, LSTMCell: dynamic.LSTMCell, RNNCell: dynamic.RNNCell,
    EmbeddingBag: QuantizedEmbeddingBag, FloatEmbedding: QuantizedEmbedding,
    intrinsic.LinearReLU: intrinsic_dynamic.LinearReLU, qat_dynamic.Linear: dynamic.Linear}
