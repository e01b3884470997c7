"""torch.ao.quantization: dynamic quantization (``quantize_dynamic``, here), the static
post-training API (gt/ao/qconfig.py, observer.py, histogram_observer.py, fuse_modules.py, quantize.py)
and quantization-aware training (fake_quantize.py, ``prepare_qat``), re-exported here under torch's names.

    >>> qmodel = gt.ao.quantization.quantize_dynamic(model, {gt.nn.Linear}, dtype=gt.qint8)

puts a ``gt.ao.nn.quantized.dynamic.Linear`` (qint8 weight, a quarter of the float32 memory;
outputs equal to torch's bit for bit) in place of every ``nn.Linear`` below ``model``, and the dynamic
``LSTM``/``GRU``/``LSTMCell``/``GRUCell``/``RNNCell`` in place of the float ones (qint8, or with
``dtype=gt.float16`` float16 weights: recurrent layers only); with ``dtype=gt.quint8``, a
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
from gt.nn.multihead_attention import MultiheadAttention
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


def quantize_dynamic(model, qconfig_spec=None, dtype=dtypes.qint8, mapping=None, inplace=False):
    """``model`` (a copy unless ``inplace``) with each submodule of a type in ``qconfig_spec`` (a set
    of module classes, or a dict whose keys are classes or submodule names and whose values are
    qconfigs, None keeping the module float; default, as torch's: ``nn.Linear``, ``nn.LSTM``,
    ``nn.GRU``, ``nn.LSTMCell``, ``nn.RNNCell``, ``nn.GRUCell`` for qint8 and float16, ``nn.Embedding``
    and ``nn.EmbeddingBag`` for quint8, ``nn.EmbeddingBag`` for quint4x2) replaced by its quantized
    form. As torch's, ``model`` itself is never replaced, only modules below it. gt quantizes
    ``nn.Linear`` to qint8 (dynamic), the recurrent layers and cells to qint8 or float16 weights
    (dynamic) and ``nn.Embedding``/``nn.EmbeddingBag`` to quint8 or quint4x2 (weight only, float
    qparams: ``dtype``'s, or a dict's ``float_qparams_weight_only_qconfig(_4bit)``); ``mapping``
    (torch's table of float to quantized classes) may only name those pairs."""
    dtype = dtypes.to_dtype(dtype)
    if dtype not in (dtypes.qint8, dtypes.quint8, dtypes.float16, dtypes.quint4x2):
        raise NotImplementedError(f"quantize_dynamic: gt supports dtype gt.qint8, gt.float16 (recurrent layers), "
                                  f"gt.quint8 and gt.quint4x2, got {dtype!r}")
    if mapping is not None and any(_PAIRS.get(k) is not v for k, v in mapping.items()):
        raise NotImplementedError("quantize_dynamic: gt's mapping is {gt.nn.Linear: gt.ao.nn.quantized.dynamic.Linear,"
                                  " gt.nn.LSTM/GRU/LSTMCell/GRUCell/RNNCell: gt.ao.nn.quantized.dynamic's of the same "
                                  "name, gt.nn.Embedding: gt.ao.nn.quantized.Embedding, gt.nn.EmbeddingBag: "
                                  "gt.ao.nn.quantized.EmbeddingBag} only")
    default = {dtypes.quint8: {FloatEmbedding, EmbeddingBag}, dtypes.quint4x2: {EmbeddingBag}}.get(
        dtype, {FloatLinear, *_RECURRENT})
    # a set's modules take dtype's default qconfig (_OF_DTYPE), a dict's their own
    spec = dict(qconfig_spec) if isinstance(qconfig_spec, dict) else \
        dict.fromkeys(default if qconfig_spec is None else qconfig_spec, _OF_DTYPE)
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()          # torch's: the quantized copy infers (its dropout off), then the swapped modules come in
    _swap(model, spec, "", dtype)
    return model


def _swap(module, spec, prefix, dtype):
    for name, child in list(module.named_children()):
        path = f"{prefix}.{name}" if prefix else name
        # MultiheadAttention reads its out_proj's weight itself: torch makes it a Linear subclass that
        # quantize_dynamic leaves alone (NonDynamicallyQuantizableLinear)
        kept = isinstance(module, MultiheadAttention) and name == "out_proj"
        qconfig = spec.get(path, spec.get(type(child)))
        if type(child) in _PAIRS and not kept and qconfig is not None:
            setattr(module, name, _quantized(child, dtype, qconfig))
        else:
            _swap(child, spec, path, dtype)


def _quantized(child, dtype, qconfig=None):
    """torch's checks: a Linear is quantized to qint8 (gt has no float16 form), a recurrent layer to
    qint8 or float16, an Embedding to quint8 or quint4x2 (float qparams) only."""
    if type(child) is FloatLinear and dtype != dtypes.qint8:
        if dtype == dtypes.float16:
            raise NotImplementedError("quantize_dynamic: gt's dynamic quantized Linear supports dtype gt.qint8 only "
                                      "(torch's float16 form is not implemented); pass a qconfig_spec without "
                                      "nn.Linear to quantize only the recurrent layers to float16")
        raise AssertionError(f"The only supported dtypes for dynamic quantized linear are qint8 and float16, got: "
                             f"{dtype!r}")
    if type(child) in (FloatEmbedding, EmbeddingBag):
        if qconfig is _OF_DTYPE:
            if dtype not in (dtypes.quint8, dtypes.quint4x2):
                raise AssertionError(f"{type(child).__name__} quantization is only supported with "
                                     "float_qparams_weight_only_qconfig.")
            qconfig = float_qparams_weight_only_qconfig_4bit if dtype == dtypes.quint4x2 else \
                float_qparams_weight_only_qconfig
        child.qconfig = qconfig     # what from_float quantizes with (torch's propagate_qconfig_ sets it too)
        return _PAIRS[type(child)].from_float(child)
    if type(child) in _RECURRENT:
        if dtype not in (dtypes.qint8, dtypes.float16):
            raise RuntimeError(f"Unsupported dtype for dynamic RNN quantization: {dtype!r}")
        return _PAIRS[type(child)].from_float(child, dtype=dtype)
    return _PAIRS[type(child)].from_float(child)


_RECURRENT = (LSTM, GRU, LSTMCell, GRUCell, RNNCell)
_OF_DTYPE = object()       # a set's entry: the module's qconfig is quantize_dynamic's dtype's default
_PAIRS = {FloatLinear: dynamic.Linear, FloatEmbedding: QuantizedEmbedding, EmbeddingBag: QuantizedEmbeddingBag,
          LSTM: dynamic.LSTM, GRU: dynamic.GRU, LSTMCell: dynamic.LSTMCell, GRUCell: dynamic.GRUCell,
          RNNCell: dynamic.RNNCell}
