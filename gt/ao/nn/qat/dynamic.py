"""torch.ao.nn.qat.dynamic: ``Linear``, the layer of dynamic quantization-aware training. It trains as
the QAT ``Linear`` does (its weight through the qconfig's weight fake quantizer), and its qconfig's
activation observer must be memoryless (``default_dynamic_qat_qconfig``'s: a moving average with
``averaging_constant`` 1), so that ``prepare_qat`` fake-quantizes each input with its own min and max,
as the dynamically quantized layer will quantize it:

    >>> model.qconfig = gt.ao.quantization.default_dynamic_qat_qconfig
    >>> model = gt.ao.quantization.prepare_qat(model.train(), mapping={gt.nn.Linear: gt.ao.nn.qat.dynamic.Linear})
    >>> ...                                                  # train
    >>> qmodel = gt.ao.quantization.convert(model.eval(),
    ...                                     mapping={gt.ao.nn.qat.dynamic.Linear: gt.ao.nn.quantized.dynamic.Linear})

``convert`` (or ``get_default_dynamic_quant_module_mappings()``) makes ``gt.ao.nn.quantized.dynamic.Linear``
of it, its weight quantized by a new weight observer of the qconfig, as torch's."""

from gt.ao.nn.qat import modules
from gt.ao.qconfig import _activation_is_memoryless

__all__ = ["Linear"]


class Linear(modules.Linear):
    """``y = x @ weight_fake_quant(weight).T + bias``: (..., in_features) -> (..., out_features), with a
    qconfig whose activation observer is memoryless (else torch's ValueError)."""

    def __init__(self, in_features, out_features, bias=True, qconfig=None, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, qconfig, device, dtype)
        if not _activation_is_memoryless(qconfig):
            raise ValueError("Dynamic QAT requires a memoryless observer.This means a MovingAverage observer with "
                             "averaging constant equal to 1")
