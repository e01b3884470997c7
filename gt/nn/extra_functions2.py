"""One import point for ``Bilinear``, ``EmbeddingBag``, ``LPPool1d/2d/3d`` and ``CTCLoss`` and their
``F.`` forms (each lives in its own module: bilinear.py, embedding_bag.py, lp_pool.py, ctc_loss.py)."""

from gt.nn.bilinear import Bilinear, bilinear  # noqa: F401
from gt.nn.ctc_loss import CTCLoss, ctc_loss  # noqa: F401
from gt.nn.embedding_bag import EmbeddingBag, embedding_bag  # noqa: F401
from gt.nn.lp_pool import LPPool1d, LPPool2d, LPPool3d, lp_pool1d, lp_pool2d, lp_pool3d  # noqa: F401

__all__ = ["Bilinear", "CTCLoss", "EmbeddingBag", "LPPool1d", "LPPool2d", "LPPool3d", "bilinear", "ctc_loss",
           "embedding_bag", "lp_pool1d", "lp_pool2d", "lp_pool3d"]
