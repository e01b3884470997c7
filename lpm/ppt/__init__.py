"""The Pixel Prediction Transformer: MNIST digits as k-means codebook tokens of 4x4 patches,
generated token by token by a decoder-only transformer built from gt modules.

``model`` (``PixelPredictionTransformer``), ``codebook`` (``PatchCodebook``), ``data`` (the
digits as tokens), ``baselines`` (bits/token of simple models), ``judge`` (sample quality seen
by an independent classifier), ``evaluate``, ``store`` (checkpoints and exact resume),
``figures`` (sample grids, curves), ``generate`` (completion, writing samples), ``train`` (the
loop) and ``cli`` (``lpm ppt ...``).
"""
