"""The token search behind caption decoding: greedy, sampling, beam search and beam sampling over any decoder
``step(ids) -> next-token logits``, with Hugging Face's options and rules.

A ``step`` takes the token ids so far, numpy (N, t) starting with ``<bos>``, and returns the gt
logits (N, V) of the next token; it may keep a key/value cache (then it reads only the columns
it has not seen) and, for beam search, ``reorder(rows)`` tells it which earlier row each new row
continues. The model-side glue is ``PixelLLM.generate``; ``lpm.caption.decoding`` is the public
face (``GenerationConfig``, ``generate_caption``, ``beam_search_decode``).

Lengths count tokens as Hugging Face does: ``max_length`` is the whole sequence with its
``<bos>``; the length a beam's log-probability sum is divided by (``** length_penalty``) is the
number of tokens it generated, its ``<eos>`` included; ``min_length`` counts the whole sequence
(``<eos>`` is banned while a row is shorter), ``min_new_tokens`` the tokens after the prompt.
"""

import math
import warnings

import numpy as np

import gt
from gt.nn import sampling

__all__ = ["check_options", "min_length_of", "ngram_bans", "bad_word_bans", "sample_search", "beam_search"]


def _int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def check_options(max_length=100, temperature=1.0, do_sample=False, top_k=None, top_p=None, num_beams=1,
                  length_penalty=1.0, early_stopping=False, no_repeat_ngram_size=0, repetition_penalty=1.0,
                  num_return_sequences=1, use_cache=True, min_length=0, min_new_tokens=None, bad_words_ids=None):
    """A one-line ``ValueError`` for the first bad option (names as Hugging Face's GenerationConfig)."""
    _int("max_length", max_length, 2)
    _int("num_beams", num_beams, 1)
    _int("no_repeat_ngram_size", no_repeat_ngram_size, 0)
    _int("num_return_sequences", num_return_sequences, 1)
    _int("min_length", min_length, 0)
    if min_new_tokens is not None:
        _int("min_new_tokens", min_new_tokens, 0)
    _check_bad_words(bad_words_ids)
    for name, value in (("do_sample", do_sample), ("use_cache", use_cache)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
    if not (isinstance(early_stopping, bool) or (isinstance(early_stopping, str) and early_stopping == "never")):
        raise ValueError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
            or not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty must be a finite number, got {length_penalty!r}")
    # temperature, top_k, top_p and repetition_penalty: gt.nn.sampling's own checks and messages
    logits = gt.zeros(1, 2)
    try:
        sampling.sample(logits, temperature=temperature, top_k=top_k, top_p=top_p, greedy=True)
    except ValueError as exc:        # its hint (greedy=True) is sample's: here greedy is do_sample=False
        raise ValueError(str(exc).replace("pass greedy=True", "pass do_sample=False")) from None
    sampling.apply_repetition_penalty(logits, [[0]], repetition_penalty)
    if num_beams > 1 and num_return_sequences > num_beams:
        raise ValueError(f"num_return_sequences ({num_return_sequences}) must be at most num_beams ({num_beams})")
    if num_beams == 1 and not do_sample and num_return_sequences > 1:
        raise ValueError(f"num_return_sequences={num_return_sequences} with greedy decoding would repeat one "
                         f"caption; use do_sample=True or num_beams >= {num_return_sequences}")


def _check_bad_words(bad_words_ids):
    """Hugging Face's rule: a non-empty list of non-empty lists of token ids >= 0."""
    if bad_words_ids is None:
        return
    if not isinstance(bad_words_ids, list) or not bad_words_ids:
        raise ValueError(f"bad_words_ids must be a non-empty list of lists of token ids, got {bad_words_ids!r}")
    for words in bad_words_ids:
        if not isinstance(words, list) or not words or any(
                isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0 for t in words):
            raise ValueError(f"bad_words_ids must be a list of non-empty lists of token ids >= 0, got {words!r} "
                             f"in it")


def min_length_of(min_length, min_new_tokens, prompt_length, max_length):
    """The shortest whole sequence allowed (prompt included), Hugging Face's way: ``min_new_tokens``
    (when set) overrides ``min_length``; a UserWarning, as Hugging Face gives, when ``max_length``
    comes first (the sequences then stop there, without ``<eos>``)."""
    name, value = ("min_length", min_length) if min_new_tokens is None else ("min_new_tokens", min_new_tokens)
    length = _whole_length(min_length, min_new_tokens, prompt_length)
    if length > max_length:
        warnings.warn(f"{name}={value} asks for sequences of {length} tokens, longer than max_length={max_length} "
                      f"(the model's limit included): generation stops at max_length", UserWarning, stacklevel=3)
    return length


def _whole_length(min_length, min_new_tokens, prompt_length):
    """The shortest whole sequence: ``min_new_tokens`` after the prompt when set, else ``min_length``."""
    return min_length if min_new_tokens is None else prompt_length + min_new_tokens


def bad_word_bans(ids, bad_words_ids, vocab_size, eos_id):
    """Hugging Face's ``bad_words_ids``: a bool mask (N, V) of the tokens that would complete, at the
    end of each row of ``ids`` (N, T), one of the token sequences (a one-token sequence: always
    banned; ``[eos_id]`` alone is ignored, as Hugging Face does)."""
    N, T = ids.shape
    banned = np.zeros((N, vocab_size), bool)
    for words in bad_words_ids or ():
        prefix = list(words[:-1])
        if list(words) == [eos_id] or len(prefix) > T:
            continue
        banned[:, words[-1]] |= (ids[:, T - len(prefix):] == prefix).all(1) if prefix else True
    return banned


def ngram_bans(ids, n, vocab_size):
    """Hugging Face's ``no_repeat_ngram_size``: a bool mask (N, V) of the tokens that would
    complete, at the end of each row of ``ids`` (N, T), an n-gram the row already holds."""
    N, T = ids.shape
    banned = np.zeros((N, vocab_size), bool)
    if n < 1 or T < n:
        return banned
    grams = np.lib.stride_tricks.sliding_window_view(ids, n, axis=1)          # (N, T - n + 1, n)
    match = (grams[:, :, :-1] == ids[:, None, T - n + 1:]).all(-1)          # same first n-1 tokens as the end
    rows, starts = np.nonzero(match)
    banned[rows, grams[rows, starts, -1]] = True
    return banned


def _processed(logits, ids, rules):
    """The logits processors, in Hugging Face's order: repetition penalty, then the bans (repeated
    n-grams, bad words, ``<eos>`` before ``min_length``: -inf, so their order does not matter)."""
    if rules["repetition_penalty"] != 1.0:
        logits = sampling.apply_repetition_penalty(logits, gt.tensor(ids), rules["repetition_penalty"])
    V = logits.shape[-1]
    banned = ngram_bans(ids, rules["no_repeat_ngram_size"], V) if rules["no_repeat_ngram_size"] else None
    if rules["bad_words_ids"]:
        bad = bad_word_bans(ids, rules["bad_words_ids"], V, rules["eos_id"])
        banned = bad if banned is None else banned | bad
    if ids.shape[1] < rules["min_length"]:
        banned = np.zeros((len(ids), V), bool) if banned is None else banned
        banned[:, rules["eos_id"]] = True
    return logits if banned is None else logits.masked_fill(gt.tensor(banned), -math.inf)


def _rules(ids, eos_id, repetition_penalty=1.0, no_repeat_ngram_size=0, bad_words_ids=None, min_length=0,
           min_new_tokens=None):
    """The processors' settings; ``min_new_tokens`` (when set) becomes the ``min_length`` it means
    after the prompt ``ids``, overriding ``min_length`` as in Hugging Face's generate."""
    return dict(eos_id=eos_id, repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                bad_words_ids=bad_words_ids, min_length=_whole_length(min_length, min_new_tokens, ids.shape[1]))


def sample_search(step, ids, eos_id, pad_id, max_length, do_sample=False, temperature=1.0, top_k=None, top_p=None,
                  **processors):
    """Greedy decoding (``do_sample=False``) or sampling, one token per step for every row, until
    each row has its ``<eos>`` or ``max_length`` tokens: int64 (N, T), ``pad_id`` after ``<eos>``.
    ``processors``: ``repetition_penalty``, ``no_repeat_ngram_size``, ``bad_words_ids``,
    ``min_length``, ``min_new_tokens``."""
    rules = _rules(ids, eos_id, **processors)
    done = np.zeros(len(ids), bool)
    while ids.shape[1] < max_length and not done.all():
        logits = _processed(step(ids), ids, rules)
        nxt = sampling.sample(logits, temperature=temperature, top_k=top_k, top_p=top_p, greedy=not do_sample)
        nxt = np.where(done, pad_id, nxt.numpy())
        ids = np.concatenate([ids, nxt[:, None]], axis=1)
        done |= nxt == eos_id
    return ids


class _Hypotheses:
    """The best ``num_beams`` finished sequences of one image (Hugging Face's BeamHypotheses)."""

    def __init__(self, num_beams, length_penalty, early_stopping, max_new_tokens):
        self.num_beams, self.length_penalty, self.early_stopping = num_beams, length_penalty, early_stopping
        self.max_new_tokens = max_new_tokens
        self.items = []                                   # (score, token list), best first

    def add(self, tokens, sum_logprobs, length):
        score = sum_logprobs / length ** self.length_penalty
        if len(self.items) < self.num_beams or score > self.items[-1][0]:
            self.items.append((score, list(tokens)))
            self.items.sort(key=lambda item: -item[0])   # stable: an earlier one wins a tie
            del self.items[self.num_beams:]

    def is_done(self, best_running, length):
        """Whether no running beam can still do better (``early_stopping=True``: as soon as
        ``num_beams`` sequences are finished; False: Hugging Face's heuristic, the best running
        sum at the current length would not beat the worst finished one; ``"never"``: the
        canonical bound, that sum at the longest length it can reach when ``length_penalty > 0``
        (a longer sequence divides its negative sum by more), at the current one otherwise)."""
        if len(self.items) < self.num_beams:
            return False
        if self.early_stopping is True:
            return True
        if self.early_stopping == "never" and self.length_penalty > 0:
            length = self.max_new_tokens
        return self.items[-1][0] >= best_running / length ** self.length_penalty


def beam_search(step, reorder, ids, num_beams, eos_id, pad_id, max_length, length_penalty=1.0, early_stopping=False,
                num_return_sequences=1, do_sample=False, temperature=1.0, top_k=None, top_p=None, **processors):
    """Beam search over ``ids`` (B * num_beams, t): each image's beams in consecutive rows.
    Returns (sequences int64 (B * num_return_sequences, T) padded with ``pad_id``, their scores
    (B * num_return_sequences,) float: sum of log-probs / length ** length_penalty), each image's
    sequences best first. ``do_sample``: Hugging Face's beam sampling, the 2 * num_beams
    candidates of a step drawn from the softmax of the running sums (their log-probs processed,
    then warped by ``temperature``, ``top_k``, ``top_p``) instead of the best ones; the sums
    add the warped log-probs. ``processors``: as for ``sample_search``."""
    K = num_beams
    B = len(ids) // K
    rules = _rules(ids, eos_id, **processors)
    beam_scores = np.zeros((B, K))
    beam_scores[:, 1:] = -1e9              # all beams start equal: let the first step expand beam 0 only
    hyps = [_Hypotheses(K, length_penalty, early_stopping, max_length - ids.shape[1]) for _ in range(B)]
    done = np.zeros(B, bool)
    while ids.shape[1] < max_length and not done.all():
        logprobs = _processed(step(ids).log_softmax(-1), ids, rules)
        logprobs = (_warped(logprobs, temperature, top_k, top_p) if do_sample else logprobs).numpy()
        V = logprobs.shape[1]
        cand = (logprobs + beam_scores.reshape(-1, 1)).reshape(B, K * V)      # (B, K*V) running sums
        # 2K candidates: enough to keep K without <eos>
        top = _drawn(cand, 2 * K, ~done) if do_sample else np.argsort(-cand, axis=1, kind="stable")[:, :2 * K]
        rows = np.arange(B * K).reshape(B, K)                                  # done images keep their rows
        tokens = np.full((B, K), pad_id, np.int64)
        for b in np.flatnonzero(~done):
            rows[b], tokens[b], beam_scores[b] = _next_beams(hyps[b], cand[b], top[b], ids[b * K:(b + 1) * K],
                                                             V, eos_id, b * K)
            done[b] = hyps[b].is_done(cand[b, top[b, 0]], ids.shape[1])
        rows = rows.reshape(-1)
        reorder(rows)
        ids = np.concatenate([ids[rows], tokens.reshape(-1, 1)], axis=1)
    for b in np.flatnonzero(~done):        # out of length: the running beams compete as they are
        for k in range(K):
            hyps[b].add(ids[b * K + k], beam_scores[b, k], ids.shape[1] - 1)
    best = [item for h in hyps for item in h.items[:num_return_sequences]]
    out = np.full((len(best), max(len(t) for _, t in best)), pad_id, np.int64)
    for i, (_, tokens) in enumerate(best):
        out[i, :len(tokens)] = tokens
    return out, np.array([score for score, _ in best])


def _warped(logprobs, temperature, top_k, top_p):
    """Hugging Face's warpers for beam sampling, on the processed log-probs (N, V): temperature,
    top-k, top-p, the filters keeping at least 2 tokens a beam (so that 2 * num_beams
    candidates can be drawn)."""
    x = sampling.apply_temperature(logprobs, temperature)
    if top_k is not None:
        x = sampling.top_k_filter(x, max(top_k, 2))
    if top_p is not None:
        x = gt.maximum(sampling.top_p_filter(x, top_p), sampling.top_k_filter(x, 2))
    return x


def _drawn(cand, n, live):
    """Beam sampling's candidates: for each ``live`` row of the running sums ``cand`` (B, K*V), n
    indices drawn without replacement from its softmax (gt's generator), best sum first (equal
    sums in the order drawn). A row with fewer than n candidates of non-zero probability (at the
    first step only beam 0's have any) is completed with the best of the others, as torch's
    multinomial completes it with zero-probability ones."""
    top = np.zeros((len(cand), n), np.int64)
    rows = np.flatnonzero(live)
    probs = np.exp(cand[rows] - cand[rows].max(1, keepdims=True))   # weights: multinomial normalises
    if ((probs > 0).sum(1) >= n).all():
        top[rows] = gt.tensor(probs).multinomial(n).numpy()
    else:
        for r, p in zip(rows, probs):
            drawn = gt.tensor(p).multinomial(min(n, int((p > 0).sum()))).numpy()
            best = np.argsort(-cand[r], kind="stable")
            top[r] = np.concatenate([drawn, best[~np.isin(best, drawn)][:n - len(drawn)]])
    order = np.argsort(-np.take_along_axis(cand, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, order, 1)


def _next_beams(hyps, cand, top, ids, V, eos_id, first_row):
    """One image's step: the candidates ``top`` (best first) that end in ``<eos>`` among the
    first K become finished hypotheses, the K best others the next beams: (rows, tokens, sums)."""
    K = len(ids)
    rows, tokens, sums = [], [], []
    for rank, c in enumerate(top):
        beam, token = divmod(int(c), V)
        if token == eos_id:
            if rank < K:
                hyps.add(np.append(ids[beam], token), cand[c], ids.shape[1])
            continue
        rows.append(first_row + beam)
        tokens.append(token)
        sums.append(cand[c])
        if len(rows) == K:
            break
    return rows, tokens, sums
