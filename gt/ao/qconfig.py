"""torch.ao.quantization's ``QConfig`` (which observers watch a module's output and its weight),
its ready-made ones, and the stubs that mark where a model's float input is quantized and its
output dequantized (``QuantStub``, ``DeQuantStub``, ``QuantWrapper``)."""

import collections

from gt import dtypes
from gt.ao import fake_quantize as fq, histogram_observer, observer
from gt.nn.module import Module
from gt.tensor.quantized import per_channel_affine_float_qparams, per_channel_symmetric, per_tensor_symmetric


class QConfig(collections.namedtuple("QConfig", ["activation", "weight"])):
    """``activation`` and ``weight``: observer classes or ``with_args`` partials (not instances:
    each module gets its own observers, torch's check)."""

    def __new__(cls, activation, weight):
        if isinstance(activation, Module) or isinstance(weight, Module):
            raise ValueError("QConfig received observer instance, please pass observer class instead. Use "
                             "MyObserver.with_args(x=1) to override arguments to constructor if needed")
        return super().__new__(cls, activation, weight)


default_observer = observer.MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_weight_observer = observer.MinMaxObserver.with_args(dtype=dtypes.qint8, qscheme=per_tensor_symmetric)
default_per_channel_weight_observer = observer.PerChannelMinMaxObserver.with_args(
    dtype=dtypes.qint8, qscheme=per_channel_symmetric)
default_histogram_observer = histogram_observer.HistogramObserver.with_args(quant_min=0, quant_max=127)
default_placeholder_observer = observer.PlaceholderObserver
default_dynamic_quant_observer = observer.PlaceholderObserver.with_args(dtype=dtypes.quint8, quant_min=0,
                                                                        quant_max=255, is_dynamic=True)
default_float_qparams_observer = observer.PerChannelMinMaxObserver.with_args(
    dtype=dtypes.quint8, qscheme=per_channel_affine_float_qparams, ch_axis=0)
default_float_qparams_observer_4bit = observer.PerChannelMinMaxObserver.with_args(
    dtype=dtypes.quint4x2, qscheme=per_channel_affine_float_qparams, ch_axis=0)

default_qconfig = QConfig(activation=default_observer, weight=default_weight_observer)
default_per_channel_qconfig = QConfig(activation=default_observer, weight=default_per_channel_weight_observer)
default_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer, weight=default_weight_observer)
float16_dynamic_qconfig = QConfig(activation=observer.PlaceholderObserver.with_args(dtype=dtypes.float16,
                                                                                   is_dynamic=True),
                                  weight=observer.PlaceholderObserver.with_args(dtype=dtypes.float16))
per_channel_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                      weight=default_per_channel_weight_observer)
float_qparams_weight_only_qconfig = QConfig(activation=default_placeholder_observer,
                                            weight=default_float_qparams_observer)
float_qparams_weight_only_qconfig_4bit = QConfig(activation=default_placeholder_observer,
                                                 weight=default_float_qparams_observer_4bit)


def get_default_qconfig(backend="x86", version=0):
    """torch's default post-training qconfig of ``backend``: for ``"x86"``/``"fbgemm"`` a
    ``HistogramObserver`` (7-bit quint8) on activations and per-channel symmetric qint8 weights."""
    if backend not in ("x86", "fbgemm", "qnnpack", "onednn"):
        raise AssertionError(f"backend: {backend} not supported. backend must be one of "
                             "['x86', 'fbgemm', 'qnnpack', 'onednn']")
    if version != 0:
        raise AssertionError(f"Version number: {version} in get_default_qconfig is not supported. Version number "
                             "must be 0")
    if backend in ("x86", "fbgemm"):
        return QConfig(activation=histogram_observer.HistogramObserver.with_args(reduce_range=True),
                       weight=default_per_channel_weight_observer)
    if backend == "qnnpack":
        return QConfig(activation=histogram_observer.HistogramObserver.with_args(reduce_range=False),
                       weight=default_weight_observer)
    return QConfig(activation=histogram_observer.HistogramObserver.with_args(reduce_range=False),
                   weight=default_per_channel_weight_observer)


default_embedding_qat_qconfig = QConfig(activation=observer.NoopObserver.with_args(dtype=dtypes.float32),
                                        weight=fq.default_embedding_fake_quant)
default_embedding_qat_qconfig_4bit = QConfig(activation=observer.NoopObserver.with_args(dtype=dtypes.float32),
                                             weight=fq.default_embedding_fake_quant_4bit)
default_qat_qconfig = QConfig(activation=fq.default_fake_quant, weight=fq.default_weight_fake_quant)
default_qat_qconfig_v2 = QConfig(activation=fq.default_fused_act_fake_quant, weight=fq.default_fused_wt_fake_quant)
default_dynamic_qat_qconfig = QConfig(activation=fq.default_dynamic_fake_quant, weight=fq.default_weight_fake_quant)


def _activation_is_memoryless(qconfig):
    """torch's: whether the qconfig's activation observer (a fake quantizer's own) keeps nothing between
    calls (a moving average with ``averaging_constant`` 1), as dynamic quantization-aware training asks."""
    act = qconfig.activation()
    act = getattr(act, "activation_post_process", act) if isinstance(act, fq.FakeQuantizeBase) else act
    return getattr(act, "averaging_constant", None) == 1


def get_default_qat_qconfig(backend="x86", version=1):
    """torch's default quantization-aware training qconfig of ``backend``: moving-average min/max
    fake quantizers, 7-bit quint8 activations for ``"x86"``/``"fbgemm"``, per-channel symmetric qint8
    weights (per tensor for ``"qnnpack"``); ``version=1`` (torch's default) the fused
    ``FusedMovingAvgObsFakeQuantize``, ``version=0`` ``FakeQuantize``."""
    if backend not in ("fbgemm", "x86", "qnnpack", "onednn"):
        raise AssertionError(f"backend: {backend} not supported. backend must be one of ['fbgemm', 'x86', 'qnnpack', "
                             "'onednn']")
    if version not in (0, 1):
        raise AssertionError(f"Version number: {version}in get_default_qat_qconfig is not supported. Version number "
                             "must be 0 or 1")
    kind = fq.FakeQuantize if version == 0 else fq.FusedMovingAvgObsFakeQuantize
    act = {"observer": observer.MovingAverageMinMaxObserver, "quant_min": 0, "quant_max": 255}
    if backend != "onednn":
        act["reduce_range"] = backend != "qnnpack"
    if backend == "qnnpack":
        weight = fq.default_weight_fake_quant if version == 0 else fq.default_fused_wt_fake_quant
    elif version == 0:
        weight = fq.default_per_channel_weight_fake_quant
    else:
        weight = fq.default_fused_per_channel_wt_fake_quant
    return QConfig(activation=kind.with_args(**act), weight=weight)

class QuantStub(Module):
    """Marks where a float tensor becomes quantized: an identity until ``convert`` turns it into
    ``gt.ao.nn.quantized.Quantize`` with the parameters its observer chose."""

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class DeQuantStub(Module):
    """Marks where a quantized tensor becomes float again (``convert`` makes it ``DeQuantize``)."""

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class QuantWrapper(Module):
    """``module`` between a ``QuantStub`` and a ``DeQuantStub`` (torch's ``QuantWrapper``)."""

    def __init__(self, module):
        super().__init__()
        qconfig = getattr(module, "qconfig", None)
        self.add_module("quant", QuantStub(qconfig))
        self.add_module("dequant", DeQuantStub(qconfig))
        self.add_module("module", module)
        self.train(module.training)

    def forward(self, X):
        return self.dequant(self.module(self.quant(X)))

