"""torch.ao's quantization, as far as gt has it: dynamic quantization (``quantize_dynamic``),
eager-mode static post-training quantization (``QuantStub``/``DeQuantStub``, qconfigs and
observers, ``fuse_modules``, ``prepare``, calibration, ``convert``) with fbgemm's arithmetic, and
eager-mode quantization-aware training (fake quantizers, ``fuse_modules_qat``, ``prepare_qat``)."""

from gt.ao import nn, quantization

__all__ = ["nn", "quantization"]
