"""Writing captions with a trained ``PixelLLM``: greedy, sampling (temperature, top-k, top-p),
beam search (``num_beams``, ``length_penalty``, ``early_stopping``, ``num_return_sequences``)
and beam sampling (``do_sample`` with ``num_beams > 1``), with ``no_repeat_ngram_size``,
``repetition_penalty``, ``bad_words_ids`` and ``min_length``/``min_new_tokens``, all with the
key/value cache: the image features' cross-attention keys and values are computed once per image.

    >>> config = GenerationConfig(max_length=10, num_beams=4)
    >>> generate_caption(model, images, config)          # token ids, one list per image
    [[9, 5, 12], [7, 7]]
    >>> beam_search_decode(model, images, num_beams=4, num_return_sequences=2)   # two per image, best first
    [[[9, 5, 12], [9, 5]], [[7, 7], [7, 4]]]

The options carry Hugging Face's names and rules (``GenerationConfig``); sampling draws from
gt's generator, so ``gt.manual_seed(n)`` first repeats a draw. The search itself is
``lpm.caption.search``; ``PixelLLM.generate`` returns the raw rows (``<bos>`` ... ``<eos>``,
padded).
"""

from dataclasses import asdict, dataclass

import numpy as np

from lpm.caption import search
from lpm.options import plain


@dataclass(frozen=True)
class GenerationConfig:
    """How to decode; checked on creation (a one-line ``ValueError`` names the bad option).

    ``max_length``: the longest sequence, its ``<bos>`` included (capped at the model's
    ``max_seq_len + 1``). ``min_length`` (whole sequence, ``<bos>`` included) or
    ``min_new_tokens`` (caption tokens; it wins when both are set): ``<eos>`` is banned until
    the caption is that long (a UserWarning where ``max_length`` comes first). ``do_sample``:
    draw from the (``temperature``, ``top_k``, ``top_p`` filtered) distribution instead of taking
    the most likely token. ``num_beams > 1``: beam search, whose finished beams score
    ``sum of log-probs / length ** length_penalty`` (length: generated tokens, ``<eos>``
    included; a penalty > 0 favours longer captions, < 0 shorter); ``early_stopping=True`` ends
    an image's search as soon as ``num_beams`` captions are finished, False when the best
    running beam at its current length would not beat them (Hugging Face's heuristic),
    ``"never"`` when no running beam could beat them at any length up to ``max_length`` (the
    canonical search). With ``do_sample`` too, beam sampling: each step's 2 * num_beams
    candidates drawn (Hugging Face's rule; top-k and top-p keep at least 2 tokens a beam).
    ``no_repeat_ngram_size=n`` never repeats an n-gram; ``repetition_penalty`` divides (or, when
    negative, multiplies) the logit of every token already written (1.0: off);
    ``bad_words_ids``: token sequences never written (lists of ids; a sequence's last token is
    banned after the others). ``num_return_sequences``: captions per image (beam search: the
    best ones, at most ``num_beams``; sampling: independent draws). ``use_cache=False`` reruns
    the whole sequence each step (the same captions, slower).

        >>> GenerationConfig(num_beams=0)
        Traceback (most recent call last):
        ...
        ValueError: num_beams must be an int >= 1, got 0
    """

    max_length: int = 100
    temperature: float = 1.0
    do_sample: bool = False
    top_k: int = None
    top_p: float = None
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: object = False          # True, False or "never"
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    num_return_sequences: int = 1
    use_cache: bool = True
    min_length: int = 0
    min_new_tokens: int = None
    bad_words_ids: list = None

    def __post_init__(self):
        for name, value in asdict(self).items():
            if isinstance(value, np.generic):    # numpy numbers as Python ones (the checks take only those)
                object.__setattr__(self, name, plain(value))
        search.check_options(**asdict(self))


def strip_specials(row, config):
    """One generated row -> its caption's token ids: the tokens after ``<bos>`` up to (without)
    the first ``<eos>``, ``<pad>`` and ``<bos>`` dropped. ``config``: the model's ``PixelLLMConfig``."""
    row = np.asarray(row)
    ends = np.flatnonzero(row == config.eos_id)
    row = row[:ends[0]] if len(ends) else row
    return [int(t) for t in row if t != config.bos_id and t != config.pad_id]


def generate_caption(model, images, config=None):
    """Caption ids of each image: ``list[list[int]]`` (no ``<bos>``/``<eos>``/``<pad>``); with
    ``num_return_sequences > 1``, a list of that many per image (beam search: best first)."""
    config = GenerationConfig() if config is None else config
    if not isinstance(config, GenerationConfig):
        raise TypeError(f"generate_caption: config must be a GenerationConfig, got {type(config).__name__}")
    rows = model.generate(images, **asdict(config))
    captions = [strip_specials(row, model.config) for row in rows]
    n = config.num_return_sequences
    return captions if n == 1 else [captions[i:i + n] for i in range(0, len(captions), n)]


def beam_search_decode(model, images, num_beams=5, **options):
    """``generate_caption`` with beam search: ``num_beams`` and any other ``GenerationConfig``
    option by keyword (an unknown one is a TypeError, as for the dataclass)."""
    return generate_caption(model, images, GenerationConfig(num_beams=num_beams, **options))
