"""torch.ao's quantization, as far as gt has it: ``gt.ao.quantization.quantize_dynamic`` and the
dynamically quantized ``gt.ao.nn.quantized.dynamic.Linear`` it puts in a model's place."""

from gt.ao import nn, quantization

__all__ = ["nn", "quantization"]
