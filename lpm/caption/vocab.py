"""The word vocabulary of the captions: lowercase words split on whitespace, four special tokens.

Ids 0-3 are ``<pad>``, ``<bos>``, ``<eos>`` and ``<unk>``; the words follow, most frequent first
(ties in alphabetical order), so the same captions always give the same ids.

    >>> vocab = SimpleVocabulary(["seven two", "two nine"])
    >>> len(vocab), vocab.encode("Two seven")
    (7, [1, 4, 6, 2])
    >>> vocab.decode([1, 4, 6, 2, 0, 0]), vocab.decode([1, 4, 3, 2])
    ('two seven', 'two <unk>')
"""

import collections
import json

import numpy as np

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


def words_of(text, where="caption"):
    """The lowercase words of ``text``; ``ValueError`` naming ``where`` when there is none."""
    if not isinstance(text, str):
        raise ValueError(f"{where}: a caption must be a string, got {type(text).__name__} {text!r}")
    words = text.lower().split()
    if not words:
        raise ValueError(f"{where}: empty caption {text!r}; every caption needs at least one word")
    return words


def _check_texts(texts, where):
    """ValueError for one string where a list of captions is taken: iterating it would read each
    character as a caption (and fail on the first space, far from the cause)."""
    if isinstance(texts, str):
        raise ValueError(f"{where} takes a list of captions, got one string {texts!r}: wrap it in a list "
                         "(or use encode for one caption)")


def _token_ids(ids, where):
    """``ids`` as an int64 array; TypeError for text or non-integer ids (4.7 read as token 4, or a
    float array of logits or probabilities, would decode silently to wrong words)."""
    if isinstance(ids, str):
        raise TypeError(f"{where} takes token ids (ints), got the string {ids!r}")
    tokens = np.asarray(ids)
    if tokens.size and tokens.dtype.kind not in "iu":
        raise TypeError(f"{where} takes integer token ids, got {tokens.dtype} values (shape {tokens.shape})")
    return tokens.astype(np.int64)


class SimpleVocabulary:
    """The words of ``texts`` seen at least ``min_freq`` times, after the four special tokens.

    Attributes ``pad_id`` (0), ``bos_id`` (1), ``eos_id`` (2), ``unk_id`` (3) and ``words`` (every
    token, by id). An empty caption raises ``ValueError`` naming its index.
    """

    pad_id, bos_id, eos_id, unk_id = range(4)

    def __init__(self, texts, min_freq=1):
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"SimpleVocabulary: min_freq must be an integer >= 1, got {min_freq!r}")
        if isinstance(texts, str):
            raise ValueError("SimpleVocabulary: texts must be a list of captions, got one string")
        counts = collections.Counter(w for i, t in enumerate(texts) for w in words_of(t, f"caption {i}"))
        kept = sorted((w for w, n in counts.items() if n >= min_freq and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        self._set_words(list(SPECIALS) + kept)
        self.min_freq = min_freq

    def _set_words(self, words):
        self.words = list(words)
        self.word_to_id = {w: i for i, w in enumerate(self.words)}

    def __len__(self):
        return len(self.words)

    def __repr__(self):
        return f"SimpleVocabulary({len(self)} tokens: {len(self) - len(SPECIALS)} words + 4 specials)"

    def encode(self, text, add_special=True):
        """Token ids of ``text``: ``[bos, words..., eos]`` (or the words alone); unknown words are ``unk_id``."""
        ids = self._ids(words_of(text))
        return [self.bos_id, *ids, self.eos_id] if add_special else ids

    def _ids(self, words):
        return [self.word_to_id.get(w, self.unk_id) for w in words]

    def encode_batch(self, texts, max_len=None):
        """``(ids, mask)`` of ``texts``, each ``[bos, words..., eos]``: ids (N, L) int64 padded with
        ``pad_id``, mask (N, L) bool, True on real tokens. L is the longest caption's length, or
        ``max_len``; a caption longer than ``max_len`` raises ``ValueError`` (nothing is cut silently)."""
        _check_texts(texts, "encode_batch")
        if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer))):
            # int() would cut 5.9 to 5 silently
            raise ValueError(f"encode_batch: max_len must be an int or None, got {max_len!r}")
        rows = [[self.bos_id, *self._ids(words_of(t, f"caption {i}")), self.eos_id] for i, t in enumerate(texts)]
        longest = max((len(r) for r in rows), default=0)
        width = longest if max_len is None else int(max_len)
        if longest > width:
            i = next(i for i, r in enumerate(rows) if len(r) > width)
            raise ValueError(f"caption {i} ({texts[i]!r}) is {len(rows[i])} tokens with <bos> and <eos>; "
                             f"max_len is {width}")
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=bool)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = row
            mask[i, :len(row)] = True
        return ids, mask

    def decode(self, ids, skip_special=True):
        """The text of ``ids`` (one caption: a list or 1-D array), stopping at the first ``eos``. With
        ``skip_special`` ``<pad>`` and ``<bos>`` are dropped; ``<unk>`` always shows, as a word.
        Several captions (2-D): ``batch_decode``."""
        tokens = _token_ids(ids, "decode")
        if tokens.ndim > 1:
            # joining several captions into one string would be a silent wrong answer (beam search
            # hands back (num_return_sequences, L) per image)
            raise ValueError(f"decode takes the ids of one caption (a list or 1-D array), got an array of shape "
                             f"{tokens.shape}: use batch_decode for several captions")
        words = []
        for token in tokens.reshape(-1).tolist():
            if not 0 <= token < len(self.words):
                raise ValueError(f"token id {token} is outside the vocabulary of {len(self.words)} tokens")
            if token == self.eos_id:
                break
            if skip_special and token in (self.pad_id, self.bos_id):
                continue
            words.append(self.words[token])
        return " ".join(words)

    def batch_decode(self, ids, skip_special=True):
        """The texts of several captions: ``ids`` (N, L) array or a list of id lists (lengths may
        differ) -> N strings, each as ``decode`` gives it."""
        if isinstance(ids, (list, tuple)):
            return [self.decode(row, skip_special) for row in ids]
        rows = _token_ids(ids, "batch_decode")
        if rows.ndim != 2:
            raise ValueError(f"batch_decode takes ids of shape (N, L), got an array of shape {rows.shape}")
        return [self.decode(row, skip_special) for row in rows]

    def unknown_words(self, texts):
        """A ``Counter`` of the words of ``texts`` outside the vocabulary (they encode as ``<unk>``)."""
        _check_texts(texts, "unknown_words")
        return collections.Counter(w for i, t in enumerate(texts) for w in words_of(t, f"caption {i}")
                                   if w not in self.word_to_id)

    def to_json(self):
        """The vocabulary as a JSON string (stored with checkpoints); ``from_json`` reads it back."""
        return json.dumps({"words": self.words, "min_freq": self.min_freq})

    @classmethod
    def from_json(cls, text):
        """The vocabulary ``to_json`` wrote; ``ValueError`` when ``text`` is not one."""
        try:
            data = json.loads(text)
            words, min_freq = data["words"], data["min_freq"]
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"not a stored vocabulary (expected JSON with 'words' and 'min_freq'): {error}") from None
        if not isinstance(words, list) or tuple(words[:len(SPECIALS)]) != SPECIALS or len(set(words)) != len(words):
            raise ValueError(f"not a stored vocabulary: its words must start with {SPECIALS} and be distinct")
        vocab = cls.__new__(cls)
        vocab._set_words(words)
        vocab.min_freq = min_freq
        return vocab
