"""torch.ao.nn.qat: the float layers quantization-aware training trains (``Linear``, ``Conv1d/2d/3d``,
``Embedding``, ``EmbeddingBag``; ``dynamic.Linear`` for dynamic quantization): each runs with its weight
through the qconfig's weight fake quantizer (``weight_fake_quant``), and ``gt.ao.quantization.convert``
makes the quantized layer of it."""

from gt.ao.nn.qat import dynamic
from gt.ao.nn.qat.embedding_ops import Embedding, EmbeddingBag
from gt.ao.nn.qat.modules import Conv1d, Conv2d, Conv3d, Linear

__all__ = ["Conv1d", "Conv2d", "Conv3d", "Embedding", "EmbeddingBag", "Linear", "dynamic"]
