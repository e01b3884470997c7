"""LPM, the Large Pixel Model: a transformer whose tokens are whole images, built on gt.

    >>> from lpm import PixelTransformer
    >>> model = PixelTransformer(img_size=16, embed_dim=32, num_heads=4, num_layers=1,
    ...                          ff_dim=64, num_classes=4)

``lpm.model`` holds the model, ``lpm.data`` the synthetic moving-blob sequences and
``lpm.train`` the training loop behind ``python train.py``.
"""

from lpm.model import PixelTransformer, PixelTransformerConfig

__all__ = ["PixelTransformer", "PixelTransformerConfig"]
