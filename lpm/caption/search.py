"""The token search behind caption decoding: greedy, sampling and beam search over any decoder
``step(ids) -> next-token logits``, with Hugging Face's options and rules.

A ``step`` takes the token ids so far, numpy (N, t) starting with ``<bos>``, and returns the gt
logits (N, V) of the next token; it may keep a key/value cache (then it reads only the columns
it has not seen) and, for beam search, ``reorder(rows)`` tells it which earlier row each new row
continues. The model-side glue is ``PixelLLM.generate``; ``lpm.caption.decoding`` is the public
face (``GenerationConfig``, ``generate_caption``, ``beam_search_decode``).

Lengths count tokens as Hugging Face does: ``max_length`` is the whole sequence with its
``<bos>``; the length a beam's log-probability sum is divided by (``** length_penalty``) is the
number of tokens it generated, its ``<eos>`` included.
"""

import math

import numpy as np

import gt
from gt.nn import sampling

__all__ = ["check_options", "ngram_bans", "sample_search", "beam_search"]


def _int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def check_options(max_length=100, temperature=1.0, do_sample=False, top_k=None, top_p=None, num_beams=1,
                  length_penalty=1.0, early_stopping=False, no_repeat_ngram_size=0, repetition_penalty=1.0,
                  num_return_sequences=1, use_cache=True):
    """A one-line ``ValueError`` for the first bad option (names as Hugging Face's GenerationConfig)."""
    _int("max_length", max_length, 2)
    _int("num_beams", num_beams, 1)
    _int("no_repeat_ngram_size", no_repeat_ngram_size, 0)
    _int("num_return_sequences", num_return_sequences, 1)
    for name, value in (("do_sample", do_sample), ("early_stopping", early_stopping), ("use_cache", use_cache)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
            or not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty must be a finite number, got {length_penalty!r}")
    # temperature, top_k, top_p and repetition_penalty: gt.nn.sampling's own checks and messages
    logits = gt.zeros(1, 2)
    sampling.sample(logits, temperature=temperature, top_k=top_k, top_p=top_p, greedy=True)
    sampling.apply_repetition_penalty(logits, [[0]], repetition_penalty)
    if do_sample and num_beams > 1:
        raise ValueError(f"do_sample=True with num_beams={num_beams}: beam sampling is not supported; "
                         f"sample with num_beams=1 or search beams without sampling")
    if num_beams > 1 and num_return_sequences > num_beams:
        raise ValueError(f"num_return_sequences ({num_return_sequences}) must be at most num_beams ({num_beams})")
    if num_beams == 1 and not do_sample and num_return_sequences > 1:
        raise ValueError(f"num_return_sequences={num_return_sequences} with greedy decoding would repeat one "
                         f"caption; use do_sample=True or num_beams >= {num_return_sequences}")


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


def _processed(logits, ids, repetition_penalty, no_repeat_ngram_size):
    """The logits processors, in Hugging Face's order: repetition penalty, then n-gram bans."""
    if repetition_penalty != 1.0:
        logits = sampling.apply_repetition_penalty(logits, gt.tensor(ids), repetition_penalty)
    if no_repeat_ngram_size:
        logits = logits.masked_fill(gt.tensor(ngram_bans(ids, no_repeat_ngram_size, logits.shape[-1])), -math.inf)
    return logits


def sample_search(step, ids, eos_id, pad_id, max_length, do_sample=False, temperature=1.0, top_k=None, top_p=None,
                  repetition_penalty=1.0, no_repeat_ngram_size=0):
    """Greedy decoding (``do_sample=False``) or sampling, one token per step for every row, until
    each row has its ``<eos>`` or ``max_length`` tokens: int64 (N, T), ``pad_id`` after ``<eos>``."""
    done = np.zeros(len(ids), bool)
    while ids.shape[1] < max_length and not done.all():
        logits = _processed(step(ids), ids, repetition_penalty, no_repeat_ngram_size)
        nxt = sampling.sample(logits, temperature=temperature, top_k=top_k, top_p=top_p, greedy=not do_sample)
        nxt = np.where(done, pad_id, nxt.numpy())
        ids = np.concatenate([ids, nxt[:, None]], axis=1)
        done |= nxt == eos_id
    return ids


class _Hypotheses:
    """The best ``num_beams`` finished sequences of one image (Hugging Face's BeamHypotheses)."""

    def __init__(self, num_beams, length_penalty, early_stopping):
        self.num_beams, self.length_penalty, self.early_stopping = num_beams, length_penalty, early_stopping
        self.items = []                                   # (score, token list), best first

    def add(self, tokens, sum_logprobs, length):
        score = sum_logprobs / length ** self.length_penalty
        if len(self.items) < self.num_beams or score > self.items[-1][0]:
            self.items.append((score, list(tokens)))
            self.items.sort(key=lambda item: -item[0])   # stable: an earlier one wins a tie
            del self.items[self.num_beams:]

    def is_done(self, best_running, length):
        """Whether no running beam can still do better (``early_stopping=True``: as soon as
        ``num_beams`` sequences are finished; else Hugging Face's heuristic: the best running
        sum at the current length would not beat the worst finished one)."""
        if len(self.items) < self.num_beams:
            return False
        return self.early_stopping or self.items[-1][0] >= best_running / length ** self.length_penalty


def beam_search(step, reorder, ids, num_beams, eos_id, pad_id, max_length, length_penalty=1.0, early_stopping=False,
                repetition_penalty=1.0, no_repeat_ngram_size=0, num_return_sequences=1):
    """Beam search over ``ids`` (B * num_beams, t): each image's beams in consecutive rows.
    Returns (sequences int64 (B * num_return_sequences, T) padded with ``pad_id``, their scores
    (B * num_return_sequences,) float: sum of log-probs / length ** length_penalty), each image's
    sequences best first."""
    K = num_beams
    B = len(ids) // K
    beam_scores = np.zeros((B, K))
    beam_scores[:, 1:] = -1e9              # all beams start equal: let the first step expand beam 0 only
    hyps = [_Hypotheses(K, length_penalty, early_stopping) for _ in range(B)]
    done = np.zeros(B, bool)
    while ids.shape[1] < max_length and not done.all():
        logprobs = _processed(step(ids).log_softmax(-1), ids, repetition_penalty, no_repeat_ngram_size).numpy()
        V = logprobs.shape[1]
        cand = (logprobs + beam_scores.reshape(-1, 1)).reshape(B, K * V)      # (B, K*V) running sums
        top = np.argsort(-cand, axis=1, kind="stable")[:, :2 * K]             # enough to keep K without <eos>
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
