"""The Pixel LLM: an image encoder and a text decoder with cross-attention that writes captions.

``model`` (``PixelLLM``: a ViT-style ``VisionEncoder`` or LPM itself as ``LPMEncoder``, and a
``LanguageDecoder``), ``decoding`` (greedy, sampling, beam search, all with the key/value
cache), ``vocab`` (``SimpleVocabulary``), ``tasks`` (``digit-strings``, ``moving-digits``),
``dataset`` (``ImageTextDataset``: the user's own image-caption pairs), ``metrics`` (exact match,
CER, WER, BLEU-4, CIDEr-D and the baselines), ``presets`` (each task's training defaults),
``store`` (checkpoints and exact resume), ``trainer`` (``PixelLLMTrainer``), ``evaluate``,
``figures``, ``train`` (the run behind ``lpm caption train``) and ``cli`` (``lpm caption ...``).
"""
