"""How well a Pixel LLM captions held-out images, beside the baselines a reader needs.

Rows of the table (each scored by exact match, CER, WER, BLEU-4 and CIDEr-D against the
held-out references):

- the model, greedy and with ``num_beams`` beams;
- blind: the same architecture trained on the captions with the images zeroed (what the
  captions alone teach);
- most frequent: the training set's most frequent caption, written for every image;
- shuffled images: the model's greedy captions of the held-out images shuffled among
  themselves, scored against the unshuffled references. A model that reads the image scores
  far below its own row here; one that ignores the image scores the same.
"""

import numpy as np

import gt
from lpm.caption.dataset import require_float_images
from lpm.caption.decoding import GenerationConfig, generate_caption
from lpm.caption.metrics import caption_metrics, format_metrics, most_frequent_caption
from lpm.caption.model import PixelLLM, PixelLLMConfig
from lpm.caption.store import read_caption_checkpoint
from lpm.caption.vocab import SimpleVocabulary
from lpm.checkpoint import CheckpointError, load_into
from lpm.data.base import require_seed


def load_trained(path, which="latest"):
    """``(model, vocab, checkpoint)`` of the Pixel LLM checkpoint at ``path`` (a run's folder: its
    ``which`` checkpoint). Raises ``lpm.resume.WrongKind`` for another model's checkpoint."""
    ckpt = read_caption_checkpoint(path, which)
    try:
        model = PixelLLM(PixelLLMConfig.from_dict(ckpt.meta["model_config"]))
        vocab = SimpleVocabulary.from_json(ckpt.meta["vocab"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {ckpt.path}: malformed model configuration or vocabulary ({exc})") from None
    load_into(ckpt, model)
    model.eval()
    return model, vocab, ckpt


def caption_images(model, images, vocab, config=None, batch_size=250, blind=False):
    """Captions (strings) of ``images`` (N, ...) float32 by ``model``, ``config`` a ``GenerationConfig``
    (default: greedy); ``blind``: the images zeroed, as the blind baseline was trained."""
    config = config or GenerationConfig(max_length=model.config.max_seq_len)
    _check_caption_call(images, config, batch_size)
    out = []    # generate runs in eval mode without recording and puts the mode back
    for first in range(0, len(images), batch_size):
        chunk = np.asarray(images[first:first + batch_size], dtype=np.float32)
        if blind:
            chunk = np.zeros_like(chunk)
        out += [vocab.decode(ids) for ids in generate_caption(model, gt.tensor(chunk), config)]
    return out


def _check_caption_call(images, config, batch_size):
    """Refuses, before any captioning, what would fail late or give wrong captions: integer images
    (the float32 cast below would read uint8 0-255 as pixel values), several captions per image
    (one string each is returned) and a batch size that is not an int >= 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"caption_images: batch_size must be an int >= 1, got {batch_size!r}")
    if isinstance(config, GenerationConfig) and config.num_return_sequences != 1:
        raise ValueError(f"caption_images returns one caption per image, got num_return_sequences="
                         f"{config.num_return_sequences}: use generate_caption and vocab.batch_decode for several")
    require_float_images(images, "caption_images")


def held_out_images(batches, limit=None):
    """All images of a ``CaptionBatches`` set (the first ``limit``) and their references."""
    n = len(batches.data) if limit is None else min(limit, len(batches.data))
    images, _ = batches.batch(np.arange(n))
    return images, batches.references[:n]


def evaluate_captions(model, blind, vocab, batches, train_captions, num_beams=4, limit=None, seed=0,
                      model_is_blind=False, rules=None):
    """``{row name: metrics}`` on the held-out set ``batches`` (a ``CaptionBatches``); ``blind`` may
    be None (no row); ``model_is_blind``: ``model`` is itself a blind baseline (its images zeroed).
    ``rules``: more ``GenerationConfig`` options for every row a model writes (e.g.
    ``min_new_tokens``, ``early_stopping``). Each row's metrics as
    ``lpm.caption.metrics.caption_metrics`` gives them."""
    require_seed("evaluate_captions", seed, none=True)      # it orders the shuffled row, after all the captioning
    images, refs = held_out_images(batches, limit)
    max_length = model.config.max_seq_len
    greedy_config = GenerationConfig(max_length=max_length, **(rules or {}))
    greedy = caption_images(model, images, vocab, greedy_config, blind=model_is_blind)
    rows = {"model, greedy": greedy}
    if num_beams > 1:
        rows[f"model, {num_beams} beams"] = caption_images(model, images, vocab, GenerationConfig(
            max_length=max_length, num_beams=num_beams, **(rules or {})), blind=model_is_blind)
    if blind is not None:
        rows["blind (image zeroed)"] = caption_images(blind, images, vocab, greedy_config, blind=True)
    frequent = most_frequent_caption([vocab.decode(vocab.encode(c)) for c in train_captions])
    rows["most frequent caption"] = [frequent] * len(refs)
    perm = np.random.default_rng(seed).permutation(len(refs))
    rows["shuffled images"] = [greedy[i] for i in perm]
    return {name: caption_metrics(preds, refs) for name, preds in rows.items()}


def report_lines(table, n, num_beams):
    """The table's lines, with a heading that says what was measured."""
    return [f"Held-out captions ({n} images; exact match, CER, WER in %, BLEU-4 0-100, CIDEr-D):",
            *format_metrics(table).splitlines()]
