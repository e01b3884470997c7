"""The Pixel Prediction Transformer: MNIST digits tokenised by a k-means codebook of patches
(``codebook``), generated token by token by a decoder-only gt transformer, and measured against
the baselines of the same codebook (``baselines``) and an independent judge (``judge``)."""
