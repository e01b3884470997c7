"""LPM, the Large Pixel Model: a transformer whose tokens are whole images, built on gt.

    >>> from lpm import PixelTransformer
    >>> model = PixelTransformer(img_size=16, embed_dim=32, num_heads=4, num_layers=1,
    ...                          ff_dim=64, num_classes=4)

``lpm.model`` holds the model, ``lpm.train`` the training loop behind ``python train.py``
and ``lpm train``. Data: the package ``lpm.data`` (``load_data``; ``blobs``: synthetic
moving blobs, ``digits``: moving handwritten digits, ``files`` and ``frames``: the user's own
sequences, ``base``: what they share). Around training: ``lpm.checkpoint`` (safetensors checkpoints,
atomic writes, resume), ``lpm.plots`` (``--plot``), ``lpm.inference`` and ``lpm.cli`` (the
``lpm`` command: train, evaluate, predict), ``lpm.options`` (the checks every command line
shares) and ``lpm.memory`` (what a run needs, checked before it starts). ``lpm.ppt`` is the
Pixel Prediction Transformer (``PixelPredictionTransformer``: digits generated patch by patch),
``lpm.caption`` the Pixel LLM (``PixelLLM``: an image encoder and a text decoder that write captions).
"""

from lpm.model import PixelTransformer, PixelTransformerConfig
from lpm.caption.model import PixelLLM, PixelLLMConfig
from lpm.ppt.model import PixelPredictionTransformer

__all__ = ["PixelTransformer", "PixelTransformerConfig", "PixelPredictionTransformer", "PixelLLM", "PixelLLMConfig"]
