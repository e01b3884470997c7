"""torch.ao.nn.quantized: the statically quantized modules (``Quantize``, ``DeQuantize``, ``Linear``,
``Conv1d/2d/3d``, ``ConvTranspose1d/2d/3d``, ``FloatFunctional``/``QFunctional``, the activations ``ReLU6``,
``Hardswish``, ``ELU``, ``LeakyReLU``, ``PReLU``, ``Sigmoid``, ``Softmax``, ``Dropout`` and the normalizations
``BatchNorm2d/3d``,
``LayerNorm``, ``GroupNorm``, ``InstanceNorm1d/2d/3d``), the weight-only ``Embedding`` and
``EmbeddingBag``, and ``dynamic.Linear``."""

from gt.ao.nn.quantized import dynamic
from gt.ao.nn.quantized.activation import ELU, Dropout, Hardswish, LeakyReLU, PReLU, ReLU6, Sigmoid, Softmax
from gt.ao.nn.quantized.conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from gt.ao.nn.quantized.embedding import Embedding
from gt.ao.nn.quantized.embedding_bag import EmbeddingBag
from gt.ao.nn.quantized.functional_modules import FloatFunctional, QFunctional
from gt.ao.nn.quantized.normalization import (BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d,
                                              InstanceNorm3d, LayerNorm)
from gt.ao.nn.quantized.static import Conv1d, Conv2d, Conv3d, DeQuantize, Linear, Quantize

__all__ = ["BatchNorm2d", "BatchNorm3d", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d", "DeQuantize", "Dropout", "ELU", "Embedding",
           "EmbeddingBag", "FloatFunctional", "GroupNorm", "Hardswish", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "LayerNorm", "LeakyReLU", "Linear", "PReLU", "QFunctional", "Quantize", "ReLU6",
           "Sigmoid", "Softmax", "dynamic"]
