"""Caption decoding (lpm.caption.decoding, lpm.caption.search): with the key/value cache equal to
without it (greedy, seeded sampling, beam search), beam search with one beam equal to greedy, and
each option's effect on a scripted language model whose next-token probabilities are set by hand."""

import math

import numpy as np
import pytest

import gt
from lpm.caption import search
from lpm.caption.decoding import GenerationConfig, beam_search_decode, generate_caption, strip_specials
from lpm.caption.model import create_pixel_llm

PAD, BOS, EOS, A, B, C = 0, 1, 2, 3, 4, 5
V = 6
TINY = dict(image_size=(8, 8), patch_size=4, vision_embed_dim=8, vision_num_layers=1, vision_num_heads=2,
            vocab_size=9, text_embed_dim=16, text_num_layers=2, text_num_heads=2, ff_mult=2, max_seq_len=6)


def tiny(seed=0):
    gt.manual_seed(seed)
    model = create_pixel_llm(**TINY)
    # a larger <eos> bias: some captions end before max_length, others not
    model.decoder.head.bias.data = gt.tensor(np.where(np.arange(9) == EOS, 1.0, 0.0).astype(np.float32))
    return model


def images(n=4, seed=1):
    return np.random.default_rng(seed).random((n, 8, 8), dtype=np.float32)


# ---- the cache and the equivalences, on a real model --------------------------------------------
@pytest.mark.parametrize("options", [
    dict(), dict(do_sample=True, temperature=0.8, top_k=5, top_p=0.9, num_return_sequences=2),
    dict(num_beams=3, num_return_sequences=2, length_penalty=0.5, no_repeat_ngram_size=2),
    dict(num_beams=2, early_stopping=True, repetition_penalty=1.5)])
def test_decoding_with_the_cache_equals_decoding_without_it(options):
    model = tiny()
    gt.manual_seed(5)
    cached = model.generate(images(2), max_length=6, **options)
    gt.manual_seed(5)
    uncached = model.generate(images(2), max_length=6, use_cache=False, **options)
    np.testing.assert_array_equal(cached, uncached)
    assert cached.shape[0] == 2 * options.get("num_return_sequences", 1) and (cached[:, 0] == BOS).all()


def test_one_beam_is_greedy_and_greedy_takes_the_argmax():
    model = tiny()
    greedy = model.generate(images(), max_length=7)
    np.testing.assert_array_equal(model.generate(images(), max_length=7, num_beams=1), greedy)
    np.testing.assert_array_equal(search.beam_search(*_beam_args(model), num_beams=1, eos_id=EOS, pad_id=PAD,
                                                     max_length=7)[0], greedy[:, :_beam_len(greedy)])
    assert (greedy == EOS).any(axis=1).any() and not (greedy == EOS).any(axis=1).all()  # both endings occur
    imgs = images()
    for img, row in zip(imgs, greedy):   # each token is the argmax after the tokens before it
        n = np.flatnonzero(row == EOS)[0] + 1 if EOS in row else len(row)
        logits = model(img[None], row[None, :n - 1]).numpy()[0]
        np.testing.assert_array_equal(logits.argmax(-1), row[1:n])


def _beam_args(model):
    step = _model_step(model, images())
    return step, lambda rows: None, np.full((4, 1), BOS)


def _beam_len(rows):
    return max(np.flatnonzero(r == EOS)[0] + 1 if EOS in r else len(r) for r in rows)


def _model_step(model, imgs):
    context = model.encode_images(imgs)
    return lambda ids: model.decode(gt.tensor(ids), context)[:, -1]


def test_generate_caption_strips_the_special_tokens_and_groups_sequences():
    model = tiny()
    assert strip_specials([BOS, A, B, EOS, A, PAD], model.config) == [A, B]
    beams = beam_search_decode(model, images(2), num_beams=3, num_return_sequences=3, max_length=7)
    assert len(beams) == 2 and all(len(b) == 3 for b in beams)
    out, scores = model.generate(images(2), max_length=7, num_beams=3, num_return_sequences=3, return_scores=True)
    assert [[strip_specials(r, model.config) for r in out[i:i + 3]] for i in (0, 3)] == beams
    assert all(scores[i] >= scores[i + 1] for i in (0, 1, 3, 4))                        # best first
    best = generate_caption(model, images(2), GenerationConfig(max_length=7, num_beams=3))
    assert best == [b[0] for b in beams]


# ---- each option, on a scripted language model ------------------------------------------------
def scripted(table, default=None):
    """A step whose next-token probabilities depend on the whole prefix: ``table[prefix]`` (a
    dict token -> probability), else ``default`` (uniform over A, B, C and <eos>)."""
    default = default or {A: 0.25, B: 0.25, C: 0.25, EOS: 0.25}

    def step(ids):
        probs = np.full((len(ids), V), 1e-12)
        for i, row in enumerate(ids):
            for token, p in table.get(tuple(row.tolist()), default).items():
                probs[i, token] = p
        return gt.tensor(np.log(probs).astype(np.float32))
    return step


def beams(table, num_beams=2, max_length=6, **options):
    out, scores = search.beam_search(scripted(table), lambda rows: None, np.full((num_beams, 1), BOS), num_beams,
                                     eos_id=EOS, pad_id=PAD, max_length=max_length, **options)
    return [r[:np.flatnonzero(r == EOS)[0] + 1].tolist() if EOS in r else r.tolist() for r in out], scores


# <bos> then <eos> at once: 0.5; <bos> a <eos>: 0.45 * 0.7. Summed log-probs favour the short caption,
# per-token averages the long one.
LENGTHS = {(BOS,): {EOS: 0.5, A: 0.45, B: 0.05}, (BOS, A): {EOS: 0.7, B: 0.3}, (BOS, B): {EOS: 0.01, C: 0.99}}


def test_length_penalty_divides_the_log_prob_sum_by_length_to_the_penalty():
    for penalty, best in ((0.0, [BOS, EOS]), (1.0, [BOS, A, EOS]), (2.0, [BOS, A, EOS])):
        got, scores = beams(LENGTHS, length_penalty=penalty)
        assert got[0] == best
        length = len(best) - 1                            # generated tokens, <eos> included
        want = math.log(0.5) if best == [BOS, EOS] else math.log(0.45) + math.log(0.7)
        assert scores[0] == pytest.approx(want / length ** penalty, rel=1e-5)


# Two beams. Step 1 finishes <bos><eos> (log 0.5); step 2 finishes <bos> a <eos> (log 0.3 + log 0.5),
# while <bos> b b runs on at log 0.2 + log 0.99 and ends next step, better than either per token.
EARLY = {(BOS,): {EOS: 0.5, A: 0.3, B: 0.2}, (BOS, A): {EOS: 0.5, B: 0.5}, (BOS, B): {B: 0.99, EOS: 0.01},
         (BOS, B, B): {EOS: 0.99, C: 0.01}}


def test_early_stopping_stops_once_num_beams_captions_are_finished():
    stopped, scores = beams(EARLY, early_stopping=True, num_return_sequences=2)
    assert stopped == [[BOS, EOS], [BOS, A, EOS]]
    np.testing.assert_allclose(scores, [math.log(0.5), (math.log(0.3) + math.log(0.5)) / 2], rtol=1e-5)
    searched, scores = beams(EARLY, early_stopping=False, num_return_sequences=2)
    assert searched == [[BOS, B, B, EOS], [BOS, EOS]]
    np.testing.assert_allclose(scores, [(math.log(0.2) + 2 * math.log(0.99)) / 3, math.log(0.5)], rtol=1e-5)


def test_num_return_sequences_are_the_best_beams_in_order_of_score():
    got, scores = beams(EARLY, num_beams=3, num_return_sequences=3)
    assert len(got) == 3 and list(scores) == sorted(scores, reverse=True)
    with pytest.raises(ValueError, match=r"num_return_sequences \(3\) must be at most num_beams \(2\)"):
        GenerationConfig(num_beams=2, num_return_sequences=3)


# After a, b always follows; after b, a: greedy writes a b a b ...
REPEAT = {(BOS,): {A: 0.6, B: 0.3, EOS: 0.1}}


def alternating(ids):
    probs = np.full((len(ids), V), 0.02)
    probs[:, B] = np.where(ids[:, -1] == A, 0.8, 0.02)
    probs[:, A] = np.where(ids[:, -1] != A, 0.8, 0.02)
    probs[:, C] = 0.1
    return gt.tensor(np.log(probs).astype(np.float32))


def test_no_repeat_ngram_size_bans_a_repeated_ngram():
    start = np.full((2, 1), BOS)
    plain = search.sample_search(alternating, start, EOS, PAD, max_length=6)
    assert plain[0].tolist() == [BOS, A, B, A, B, A]
    banned = search.sample_search(alternating, start, EOS, PAD, max_length=6, no_repeat_ngram_size=2)
    assert banned[0].tolist() == [BOS, A, B, A, C, A]     # after "a b a", b would repeat "a b": c instead
    ids = np.array([[BOS, A, B, A], [BOS, A, B, C]])
    bans = search.ngram_bans(ids, 2, V)
    assert np.flatnonzero(bans[0]).tolist() == [B] and np.flatnonzero(bans[1]).tolist() == []
    assert np.flatnonzero(search.ngram_bans(ids, 1, V)[1]).tolist() == [BOS, A, B, C]
    assert not search.ngram_bans(ids[:, :1], 3, V).any()


def test_repetition_penalty_makes_written_tokens_less_likely():
    start = np.full((1, 1), BOS)

    def sticky(ids):      # "a" again has logit 2, "b" 1.5: greedy repeats a, a penalty of 2 halves it
        return gt.tensor(np.array([[-9, -9, -9, 2.0, 1.5, -9]] * len(ids), np.float32))
    assert search.sample_search(sticky, start, EOS, PAD, 5)[0].tolist() == [BOS, A, A, A, A]
    # a written: a 2 -> 1 < b 1.5; then b written too: a 1 > b 0.75 (each penalised once, however often)
    got = search.sample_search(sticky, start, EOS, PAD, 5, repetition_penalty=2.0)
    assert got[0].tolist() == [BOS, A, B, A, A]


def test_top_k_and_top_p_draw_only_from_the_kept_tokens():
    probs = {A: 0.5, B: 0.3, C: 0.15, EOS: 0.05}
    start = np.full((300, 1), BOS)
    gt.manual_seed(0)
    k2 = search.sample_search(scripted({}, probs), start, EOS, PAD, 2, do_sample=True, top_k=2)[:, 1]
    assert set(k2.tolist()) == {A, B}
    p = search.sample_search(scripted({}, probs), start, EOS, PAD, 2, do_sample=True, top_p=0.85)[:, 1]
    assert set(p.tolist()) == {A, B, C}                   # 0.5 + 0.3 < 0.85: c is needed, <eos> is not
    free = search.sample_search(scripted({}, probs), start, EOS, PAD, 2, do_sample=True)[:, 1]
    assert set(free.tolist()) == {A, B, C, EOS}
    gt.manual_seed(3)
    again = search.sample_search(scripted({}, probs), start, EOS, PAD, 2, do_sample=True, top_k=2)[:, 1]
    gt.manual_seed(3)
    np.testing.assert_array_equal(again, search.sample_search(scripted({}, probs), start, EOS, PAD, 2,
                                                              do_sample=True, top_k=2)[:, 1])


def test_rows_stop_at_eos_and_are_padded():
    table = {(BOS,): {EOS: 0.9, A: 0.1}}
    out = search.sample_search(scripted(table, {A: 0.9, EOS: 0.1}), np.full((1, 1), BOS), EOS, PAD, 5)
    assert out.tolist() == [[BOS, EOS]]                    # all rows done: no further step


@pytest.mark.first_pass
@pytest.mark.parametrize("options, message", [
    (dict(num_beams=0), "num_beams must be an int >= 1, got 0"), (dict(max_length=1), "max_length"),
    (dict(temperature=0), "temperature"), (dict(top_p=1.5), "top_p"), (dict(top_k=0), "top_k"),
    (dict(repetition_penalty=0), "repetition_penalty"), (dict(length_penalty=float("nan")), "length_penalty"),
    (dict(early_stopping="yes"), "early_stopping must be True, False or 'never', got 'yes'"),
    (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size"),
    (dict(do_sample=True, num_beams=2, num_return_sequences=3), r"num_return_sequences \(3\) must be at most"),
    (dict(num_return_sequences=2), "greedy decoding would repeat")])
def test_bad_generation_options_are_one_line_errors(options, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**options)


def test_bad_calls():
    model = tiny()
    with pytest.raises(TypeError, match="unexpected keyword"):
        beam_search_decode(model, images(), num_beam=2)
    with pytest.raises(ValueError, match="return_scores needs beam search"):
        model.generate(images(), return_scores=True)
    with pytest.raises(ValueError, match=r"expected images of shape \(batch, 8, 8\)"):
        generate_caption(model, images()[:, :4])
    with pytest.raises(TypeError, match="GenerationConfig"):
        generate_caption(model, images(), dict(num_beams=2))


@pytest.mark.parametrize("num_beams", [1, 3])
def test_the_image_side_is_computed_once_per_generation(num_beams):
    model = tiny()
    calls = []
    block = model.decoder.blocks[-1]
    for name, layer in (("encoder", model.encoder), ("k_proj", block.cross_attn.k_proj),
                        ("v_proj", block.cross_attn.v_proj)):
        layer.forward = lambda x, _f=layer.forward, _n=name: calls.append((_n, x.shape[0])) or _f(x)
    model.generate(images(2), max_length=6, num_beams=num_beams)
    # the images encoded once, their keys and values projected once, for every beam's row at once
    assert calls == [("encoder", 2), ("k_proj", 2 * num_beams), ("v_proj", 2 * num_beams)]
