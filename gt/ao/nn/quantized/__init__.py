"""torch.ao.nn.quantized: the statically quantized modules (``Quantize``, ``DeQuantize``, ``Linear``,
``Conv2d``, ``FloatFunctional``/``QFunctional``), the weight-only ``Embedding`` and ``EmbeddingBag``,
and ``dynamic.Linear``."""

from gt.ao.nn.quantized import dynamic
from gt.ao.nn.quantized.embedding import Embedding
from gt.ao.nn.quantized.embedding_bag import EmbeddingBag
from gt.ao.nn.quantized.functional_modules import FloatFunctional, QFunctional
from gt.ao.nn.quantized.static import Conv2d, DeQuantize, Linear, Quantize

__all__ = ["Conv2d", "DeQuantize", "Embedding", "EmbeddingBag", "FloatFunctional", "Linear", "QFunctional", "Quantize",
           "dynamic"]
