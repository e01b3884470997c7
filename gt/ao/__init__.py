"""torch.ao's quantization, as far as gt has it: dynamic quantization (``quantize_dynamic``) and
eager-mode static post-training quantization (``QuantStub``/``DeQuantStub``, qconfigs and
observers, ``fuse_modules``, ``prepare``, calibration, ``convert``) with fbgemm's arithmetic."""

from gt.ao import nn, quantization

__all__ = ["nn", "quantization"]
