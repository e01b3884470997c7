"""Caption decoding's Hugging Face rules beyond the basics (lpm.caption.search): ``min_length`` and
``min_new_tokens``, ``bad_words_ids``, ``early_stopping="never"`` and beam sampling (``do_sample``
with ``num_beams > 1``). Checked on hand-computed cases, against a reference written here from
transformers' algorithm (BeamSearchScorer with ``_beam_search``/``_beam_sample``, the logits
processors and warpers) on the same logits, with the key/value cache against without it, and
seeded sampling repeated."""

import math
import warnings

import numpy as np
import pytest

import gt
from lpm.caption import search
from lpm.caption.decoding import GenerationConfig, generate_caption
from test_caption_decoding import BOS, EOS, PAD, A, B, C, images, scripted, tiny

V = 8
START = dict(eos_id=EOS, pad_id=PAD)


def random_lm(seed, eos_bias=0.5):
    """A step whose logits (V,) are a fixed random function of the whole prefix."""
    def logits(ids):
        out = np.empty((len(ids), V), np.float32)
        for i, row in enumerate(ids):
            rng = np.random.default_rng([seed, *row.tolist()])
            out[i] = rng.normal(0, 1.5, V) + np.where(np.arange(V) == EOS, eos_bias, 0.0)
        return out
    return logits


# ---- the reference: transformers' beam search and beam sample, in float64 numpy -----------------
def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    with np.errstate(divide="ignore"):
        return x - np.log(np.exp(x).sum(-1, keepdims=True))


def hf_processors(ids, scores, o):
    """RepetitionPenalty, NoRepeatNGram, NoBadWords (sequences whose prefix is longer than the
    input skipped; ``[eos]`` dropped), MinLength: transformers' order and rules."""
    scores = scores.copy()
    cur_len = ids.shape[1]
    for i, row in enumerate(ids):
        if o.get("repetition_penalty", 1.0) != 1.0:
            seen = np.unique(row)
            s = scores[i, seen]
            scores[i, seen] = np.where(s < 0, s * o["repetition_penalty"], s / o["repetition_penalty"])
        n = o.get("no_repeat_ngram_size", 0)
        if n and cur_len + 1 >= n:
            grams = {}
            for j in range(cur_len - n + 1):
                grams.setdefault(tuple(row[j:j + n - 1]), []).append(row[j + n - 1])
            scores[i, grams.get(tuple(row[cur_len - n + 1:]), [])] = -np.inf
        for words in o.get("bad_words_ids") or []:
            if words == [EOS] or len(words) - 1 > cur_len:
                continue
            if len(words) == 1 or list(row[cur_len - len(words) + 1:]) == words[:-1]:
                scores[i, words[-1]] = -np.inf
    if cur_len < o.get("min_length", 0):
        scores[:, EOS] = -np.inf
    return scores


def hf_warpers(scores, o):
    """Temperature, TopK, TopP with min_tokens_to_keep=2 (num_beams > 1)."""
    scores = scores / o.get("temperature", 1.0)
    if o.get("top_k"):
        k = min(max(o["top_k"], 2), scores.shape[-1])
        kth = np.sort(scores, -1)[:, -k][:, None]
        scores = np.where(scores < kth, -np.inf, scores)
    if o.get("top_p") is not None:
        order = np.argsort(scores, -1, kind="stable")
        ordered = np.take_along_axis(scores, order, -1)
        probs = np.exp(log_softmax(ordered))
        remove = probs.cumsum(-1) <= 1 - o["top_p"]
        remove[:, -2:] = False
        out = np.empty_like(scores)
        np.put_along_axis(out, order, np.where(remove, -np.inf, ordered), -1)
        scores = out
    return scores


class HFHypotheses:
    def __init__(self, num_beams, length_penalty, early_stopping, max_length):
        self.beams, self.worst = [], 1e9
        self.n, self.lp, self.early, self.max_length = num_beams, length_penalty, early_stopping, max_length

    def add(self, hyp, sum_logprobs, generated_len):
        score = sum_logprobs / generated_len ** self.lp
        if len(self.beams) < self.n or score > self.worst:
            self.beams.append((score, hyp))
            if len(self.beams) > self.n:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst = ranked[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_sum_logprobs, cur_len, prompt_len=1):
        if len(self.beams) < self.n:
            return False
        if self.early is True:
            return True
        if self.early is False or self.lp <= 0:
            return self.worst >= best_sum_logprobs / (cur_len - prompt_len) ** self.lp
        return self.worst >= best_sum_logprobs / (self.max_length - prompt_len) ** self.lp


def hf_beam(logits_fn, batch, K, max_length, draw=None, num_return_sequences=1, length_penalty=1.0,
            early_stopping=False, do_sample=False, **o):
    ids = np.full((batch * K, 1), BOS)
    beam_scores = np.zeros((batch, K))
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.reshape(-1)
    hyps = [HFHypotheses(K, length_penalty, early_stopping, max_length) for _ in range(batch)]
    done = np.zeros(batch, bool)
    while True:
        scores = hf_processors(ids, log_softmax(logits_fn(ids).astype(np.float64)), o)
        if do_sample:
            scores = hf_warpers(scores, o)
        nxt = (scores + beam_scores[:, None]).reshape(batch, K * V)
        cand = draw(nxt, 2 * K) if do_sample else np.argsort(-nxt, -1, kind="stable")[:, :2 * K]
        cur_len = ids.shape[1] + 1
        rows, toks, new_scores = np.zeros(batch * K, int), np.full(batch * K, PAD), np.zeros(batch * K)
        for b in range(batch):
            if done[b]:
                rows[b * K:(b + 1) * K] = b * K
                continue
            kept = 0
            for rank, c in enumerate(cand[b]):
                beam, token = divmod(int(c), V)
                if token == EOS:
                    if rank < K:
                        hyps[b].add(list(ids[b * K + beam]) + [EOS], nxt[b, c], cur_len - 1)
                    continue
                i = b * K + kept
                rows[i], toks[i], new_scores[i] = b * K + beam, token, nxt[b, c]
                kept += 1
                if kept == K:
                    break
            done[b] = done[b] or hyps[b].is_done(nxt[b, cand[b]].max(), cur_len)
        ids = np.concatenate([ids[rows], toks[:, None]], 1)
        beam_scores = new_scores
        if done.all() or ids.shape[1] >= max_length:
            break
    for b in np.flatnonzero(~done):
        for k in range(K):
            hyps[b].add(list(ids[b * K + k]), beam_scores[b * K + k], ids.shape[1] - 1)
    best = [sorted(h.beams, key=lambda x: -x[0])[:num_return_sequences] for h in hyps]
    return [list(map(int, s)) for bs in best for _, s in bs], np.array([s for bs in best for s, _ in bs])


def gt_beam(logits_fn, batch, K, max_length, **options):
    step = lambda ids: gt.tensor(logits_fn(ids))        # noqa: E731
    out, scores = search.beam_search(step, lambda rows: None, np.full((batch * K, 1), BOS), K, max_length=max_length,
                                     **START, **options)
    return [r[:np.flatnonzero(r == EOS)[0] + 1].tolist() if EOS in r else r.tolist() for r in out], scores


# a draw both sides share: the categories of largest probability x a fixed weight (a fixed race,
# not random), the ones of probability 0 after them by running sum (the completion rule)
WEIGHTS = np.random.default_rng(7).exponential(size=4096)


def fixed_draw(probs, n):
    keys = np.where(probs > 0, probs / probs.max(-1, keepdims=True) * WEIGHTS[:probs.shape[-1]], -1.0)
    return np.argsort(-keys, -1, kind="stable")[..., :n]


def _with_completion(probs, sums, n):
    out = []
    for p, s in zip(probs, sums):
        m = min(n, int((p > 0).sum()))
        drawn = fixed_draw(p, m)
        best = np.argsort(-s, kind="stable")
        rest = best[~np.isin(best, drawn)][:n - m]
        picked = np.concatenate([drawn, rest])
        out.append(picked[np.argsort(-s[picked], kind="stable")])
    return np.array(out)


@pytest.fixture
def shared_draw(monkeypatch):
    def multinomial(self, num_samples, replacement=False):
        assert not replacement
        return gt.tensor(fixed_draw(self.numpy(), num_samples))
    monkeypatch.setattr(gt.Tensor, "multinomial", multinomial)
    return lambda nxt, n: _with_completion(np.exp(log_softmax(nxt)), nxt, n)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("options", [
    dict(), dict(early_stopping=True), dict(early_stopping="never"), dict(early_stopping="never", length_penalty=2.0),
    dict(early_stopping="never", length_penalty=-1.0), dict(min_length=4, length_penalty=0.5),
    dict(bad_words_ids=[[3], [4, 5], [EOS], [1, 6]], no_repeat_ngram_size=2, repetition_penalty=1.3),
    dict(num_return_sequences=3, early_stopping="never")])
def test_beam_search_matches_the_reference(seed, options):
    for lm, K, max_length in ((random_lm(seed), 3, 7), (random_lm(seed, eos_bias=2.0), 2, 8)):
        got, got_scores = gt_beam(lm, 2, K, max_length, **options)
        want, want_scores = hf_beam(lm, 2, K, max_length, **options)
        assert got == want
        np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5)


def test_never_searches_on_where_the_heuristic_stops():
    # length_penalty 2: the heuristic (early_stopping=False) bounds a running beam by its sum at the
    # current length; "never" by its sum at max_length, so it searches on and finds better captions
    better = 0
    for seed in range(8):
        lm = random_lm(seed, eos_bias=1.0)
        heuristic, h_scores = gt_beam(lm, 1, 2, 8, length_penalty=2.0)
        never, n_scores = gt_beam(lm, 1, 2, 8, length_penalty=2.0, early_stopping="never")
        assert n_scores[0] >= h_scores[0] - 1e-7
        better += n_scores[0] > h_scores[0] + 1e-6
    assert better >= 2


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("options", [
    dict(), dict(temperature=0.7), dict(top_k=1), dict(top_k=1, num_return_sequences=3), dict(top_p=0.2),
    dict(top_k=3, temperature=1.5), dict(top_p=0.6),
    dict(top_k=4, top_p=0.8, early_stopping="never", length_penalty=1.5), dict(min_length=5, early_stopping=True),
    dict(bad_words_ids=[[5], [3, 4]], repetition_penalty=1.2, num_return_sequences=2)])
def test_beam_sampling_matches_the_reference(shared_draw, seed, options):
    lm = random_lm(seed, eos_bias=1.0)
    got, got_scores = gt_beam(lm, 2, 3, 7, do_sample=True, **options)
    want, want_scores = hf_beam(lm, 2, 3, 7, draw=shared_draw, do_sample=True, **options)
    assert got == want
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5)


# ---- hand-computed cases -------------------------------------------------------------------------
# <eos> is the likeliest at once and after every caption token: greedy writes <bos> <eos>
SHORT = {(BOS,): {EOS: 0.6, A: 0.4}, (BOS, A): {EOS: 0.7, B: 0.3}, (BOS, A, B): {EOS: 0.9, C: 0.1}}


@pytest.mark.parametrize("options, want", [
    (dict(), [BOS, EOS]), (dict(min_new_tokens=1), [BOS, A, EOS]), (dict(min_new_tokens=2), [BOS, A, B, EOS]),
    (dict(min_length=2), [BOS, A, EOS]), (dict(min_length=3), [BOS, A, B, EOS]),
    (dict(min_length=1, min_new_tokens=2), [BOS, A, B, EOS]),       # min_new_tokens wins, as in transformers
    (dict(min_length=5, min_new_tokens=0), [BOS, EOS])])
def test_min_length_bans_eos_until_the_sequence_is_long_enough(options, want):
    step = scripted(SHORT, {EOS: 0.5, C: 0.5})
    assert search.sample_search(step, np.full((1, 1), BOS), EOS, PAD, 6, **options)[0].tolist() == want
    got, _ = search.beam_search(step, lambda rows: None, np.full((2, 1), BOS), 2, EOS, PAD, 6, **options)
    assert got[0][:len(want)].tolist() == want


def alternating(ids):
    """After a, b is likely; after anything else, a; c a little, the rest hardly."""
    probs = np.full((len(ids), 6), 0.02)
    probs[:, B] = np.where(ids[:, -1] == A, 0.8, 0.02)
    probs[:, A] = np.where(ids[:, -1] != A, 0.8, 0.02)
    probs[:, C] = 0.1
    return gt.tensor(np.log(probs).astype(np.float32))


@pytest.mark.parametrize("bad_words_ids, want", [
    (None, [BOS, A, B, A, B, A]), ([[A, B]], [BOS, A, C, A, C, A]), ([[B]], [BOS, A, C, A, C, A]),
    ([[BOS, A]], [BOS, C, A, B, A, B]),            # a prefix as long as the input counts
    ([[B, A, C, A]], [BOS, A, B, A, B, A]), ([[A, B, A]], [BOS, A, B, C, A, B])])
def test_bad_words_are_never_completed(bad_words_ids, want):
    got = search.sample_search(alternating, np.full((1, 1), BOS), EOS, PAD, 6, bad_words_ids=bad_words_ids)
    assert got[0].tolist() == want


def test_bad_word_bans_and_eos_alone_is_not_banned():
    ids = np.array([[BOS, A, B], [BOS, B, A]])
    bans = search.bad_word_bans(ids, [[A, B, C], [EOS], [BOS, B, A, C], [PAD]], 6, EOS)
    assert [np.flatnonzero(r).tolist() for r in bans] == [[PAD, C], [PAD, C]]
    step = scripted({}, {EOS: 0.9, A: 0.1})
    assert search.sample_search(step, np.full((1, 1), BOS), EOS, PAD, 4, bad_words_ids=[[EOS]])[0].tolist() == \
        [BOS, EOS]


# top_k=2 keeps two tokens a beam: the first step has 2 candidates of non-zero probability (the other
# beams start at -1e9), completed by beam 1's; the second step's 2 beams x 2 tokens are all 2K: every
# draw is forced, and the sums are of the log-probs / temperature
FORCED = {(BOS,): {A: 0.5, B: 0.3, C: 0.15, EOS: 0.05}, (BOS, A): {EOS: 0.6, C: 0.3, B: 0.1},
          (BOS, B): {A: 0.7, EOS: 0.2, C: 0.1}}


def test_beam_sampling_with_forced_draws_by_hand():
    gt.manual_seed(0)
    got, scores = search.beam_search(scripted(FORCED), lambda rows: None, np.full((2, 1), BOS), 2, EOS, PAD, 3,
                                     num_return_sequences=2, do_sample=True, top_k=1, temperature=2.0)
    assert got.tolist() == [[BOS, A, EOS], [BOS, B, A]]
    # <bos> a <eos>: (ln .5 + ln .6) / 2, over 2 tokens; <bos> b a, cut at max_length: (ln .3 + ln .7) / 2 / 2
    np.testing.assert_allclose(scores, [(math.log(0.5) + math.log(0.6)) / 4, (math.log(0.3) + math.log(0.7)) / 4],
                               rtol=1e-5)
    # three beams, one step: a and b drawn from beam 0, the third beam completed by beam 1's best (its
    # sum -1e9 + ln .5), as a top-2K selection would
    got, scores = search.beam_search(scripted(FORCED), lambda rows: None, np.full((3, 1), BOS), 3, EOS, PAD, 2,
                                     num_return_sequences=3, do_sample=True, top_k=1)
    assert got.tolist() == [[BOS, A], [BOS, B], [BOS, A]]
    np.testing.assert_allclose(scores, [math.log(0.5), math.log(0.3), -1e9 + math.log(0.5)], rtol=1e-6)


def test_beam_sampling_draws_vary_with_the_seed_and_repeat_with_it():
    lm = random_lm(3)
    runs = {}
    for seed in (0, 1, 2, 0):
        gt.manual_seed(seed)
        got, scores = gt_beam(lm, 4, 3, 7, do_sample=True, num_return_sequences=3, temperature=1.5)
        if seed in runs:
            assert (got, scores.tolist()) == runs[seed]
        runs[seed] = (got, scores.tolist())
    assert len({str(r) for r in runs.values()}) == 3
    greedy, _ = gt_beam(lm, 4, 3, 7, num_return_sequences=3)
    assert runs[0][0] != greedy


# ---- on the model: the cache, the config, the errors ---------------------------------------------
@pytest.mark.parametrize("options", [
    dict(num_beams=3, do_sample=True, num_return_sequences=2, top_k=4, top_p=0.9, temperature=1.3),
    dict(num_beams=2, do_sample=True, early_stopping="never", min_new_tokens=3, bad_words_ids=[[5, 6]]),
    dict(num_beams=3, early_stopping="never", length_penalty=2.0, min_length=3, bad_words_ids=[[4], [5, 6]]),
    dict(do_sample=True, min_new_tokens=2, bad_words_ids=[[3]], num_return_sequences=2)])
def test_new_rules_with_the_cache_equal_without_it_and_repeat_with_the_seed(options):
    model = tiny()
    gt.manual_seed(5)
    cached = model.generate(images(3), max_length=7, **options)
    gt.manual_seed(5)
    again = model.generate(images(3), max_length=7, **options)
    gt.manual_seed(5)
    uncached = model.generate(images(3), max_length=7, use_cache=False, **options)
    np.testing.assert_array_equal(cached, uncached)
    np.testing.assert_array_equal(cached, again)
    assert cached.shape[0] == 3 * options.get("num_return_sequences", 1)


def test_generation_config_carries_the_new_options():
    model = tiny()

    def captions(**options):
        gt.manual_seed(0)
        return generate_caption(model, images(4), GenerationConfig(max_length=7, num_beams=2, do_sample=True,
                                                                   **options))

    def repeats_six(c):
        return any(a == b == 6 for a, b in zip(c, c[1:]))
    plain = captions()
    assert any(len(c) < 4 for c in plain) and any(repeats_six(c) for c in plain)
    ruled = captions(min_new_tokens=4, bad_words_ids=[[6, 6]], early_stopping="never")
    assert all(len(c) >= 4 and not repeats_six(c) for c in ruled)


@pytest.mark.first_pass
@pytest.mark.parametrize("options, message", [
    (dict(min_length=-1), "min_length must be an int >= 0, got -1"),
    (dict(min_new_tokens=1.5), "min_new_tokens must be an int >= 0, got 1.5"),
    (dict(early_stopping="Never"), "early_stopping must be True, False or 'never', got 'Never'"),
    (dict(bad_words_ids=[]), r"bad_words_ids must be a non-empty list of lists of token ids, got \[\]"),
    (dict(bad_words_ids=[3, 4]), r"bad_words_ids must be a list of non-empty lists of token ids >= 0, got 3 in it"),
    (dict(bad_words_ids=[[3], []]), r"got \[\] in it"), (dict(bad_words_ids=[[3, -1]]), r"got \[3, -1\] in it"),
    (dict(bad_words_ids=((3,),)), "bad_words_ids must be a non-empty list")])
def test_bad_new_options_are_one_line_errors(options, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**options)


def test_generate_checks_bad_words_against_the_vocabulary_and_warns_of_unreachable_lengths():
    model = tiny()
    with pytest.raises(ValueError, match=r"bad_words_ids holds token id 9, outside the vocabulary \[0, 9\)"):
        model.generate(images(1), bad_words_ids=[[3, 9]])
    with pytest.warns(UserWarning, match="min_new_tokens=8 asks for sequences of 9 tokens, longer than max_length=7"):
        out = model.generate(images(2), max_length=20, min_new_tokens=8)      # capped at max_seq_len + 1 = 7
    assert out.shape == (2, 7) and not (out == EOS).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.generate(images(1), max_length=7, min_length=7)
