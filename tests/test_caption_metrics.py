"""lpm.caption.metrics against cases worked out by hand."""

import importlib.util
import math
import sys

import pytest

from lpm.caption.metrics import (bleu4, caption_metrics, cer, cider_d, exact_match, format_metrics, missing_packages,
                                 most_frequent_caption, wer)

pytestmark = pytest.mark.first_pass      # pure Python, sacrebleu and jiwer: no GT_* setting changes the answers


def test_exact_match_compares_words_in_any_case_against_any_reference():
    assert exact_match(["Seven  two", "one", "nine"], ["seven two", "one two", ["eight", "NINE"]]) == pytest.approx(2 / 3)
    assert exact_match(["a"], ["a"]) == 1.0


def test_wer_and_cer_over_the_corpus():
    # "one two" for "one three four": one substitution and one deletion out of 3 words; "five" exact
    assert wer(["one two", "five"], ["one three four", "five"]) == pytest.approx(2 / 4)
    # "tow" for "two": two substitutions out of 3 characters; "one" exact
    assert cer(["tow", "one"], ["two", "one"]) == pytest.approx(2 / 6)
    # an empty prediction deletes every reference character, the space included
    assert cer([""], ["ab c"]) == 1.0
    assert wer(["a b c"], [["a b", "a b c"]]) == pytest.approx(1 / 2)     # against the first reference


def test_bleu4_on_sacrebleus_scale():
    assert bleu4(["a b c d"], ["a b c d"]) == pytest.approx(100.0)
    # n-gram precisions 4/5, 3/4, 2/3, 1/2, same length: geometric mean 0.2 ** (1/4)
    assert bleu4(["a b c d e"], ["a b c d f"]) == pytest.approx(100 * 0.2 ** 0.25, abs=1e-9)
    # every n-gram right but one word short: brevity penalty exp(1 - 5/4)
    assert bleu4(["a b c d"], ["a b c d e"]) == pytest.approx(100 * math.exp(-0.25), abs=1e-9)
    # a second reference that matches wins
    assert bleu4(["a b c d"], [["x y z w", "a b c d"]]) == pytest.approx(100.0)


def test_cider_d_idf_zeroes_a_word_every_item_has():
    # N = 2 items. df: a 2, b 1, c 1, "a b" 1, "a c" 1, so idf(a) = log 2 - log 2 = 0, the rest log 2.
    # Item 1, "a b" for "a b": unigram cosine 1, bigram cosine 1, no 3- or 4-grams: (1 + 1) / 4 x 10 = 5.
    # Item 2, "a" for "a c": its only n-gram weighs 0: 0. Mean 2.5.
    assert cider_d(["a b", "a"], ["a b", "a c"]) == pytest.approx(2.5)


def test_cider_d_clips_counts_and_penalises_length():
    # Item 1, "b b b" for "a b": unigram vectors hyp {b: 3 log2}, ref {a: 0, b: log2}; clipped product
    # min(3 log2, log2) * log2 over norms 3 log2 * log2 = 1/3; bigram "b b" not in the reference: 0;
    # lengths 3 and 2: x exp(-1 / (2 * 6^2)). Item 2 as before: 0.
    expected = 10 * (1 / 3) * math.exp(-1 / 72) / 4 / 2
    assert cider_d(["b b b", "a"], ["a b", "a c"]) == pytest.approx(expected)


def test_cider_d_averages_over_several_references():
    # df counts an n-gram once per item: every n-gram has df 1, idf log 2.
    # Item 1, "a b" against "a b": (1 + 1) / 4; against "a c": unigram cosine 1/2, bigram 0: 0.5 / 4;
    # mean over the two references x 10 = 3.125. Item 2, "d" for "d": 1 / 4 x 10 = 2.5.
    assert cider_d(["a b", "d"], [["a b", "a c"], "d"]) == pytest.approx((3.125 + 2.5) / 2)


def test_cider_d_of_one_item_is_zero_and_perfect_captions_score_high():
    assert cider_d(["a b"], ["a b"]) == 0.0          # one item: every n-gram's idf is log 1 - log 1 = 0
    refs = ["one two three four", "five six", "seven", "eight nine one"]
    assert cider_d(refs, refs) > cider_d(refs[::-1], refs)


def test_caption_metrics_and_their_table():
    m = caption_metrics(["one two", "three"], ["one two", "four"])
    assert set(m) == {"exact_match", "cer", "wer", "bleu4", "cider_d"}
    assert m["exact_match"] == 0.5 and m["wer"] == pytest.approx(1 / 3)
    text = format_metrics({"model": m, "most frequent caption": caption_metrics(["one", "one"], ["one two", "four"])})
    lines = text.splitlines()
    assert lines[0].split() == ["system", "exact", "match", "CER", "WER", "BLEU-4", "CIDEr-D"]
    assert lines[1].startswith("model ") and "50.0%" in lines[1] and "33.3%" in lines[1]
    assert lines[2].startswith("most frequent caption ") and lines[2].split()[3] == "0.0%"


def test_most_frequent_caption():
    assert most_frequent_caption(["one two", "three", "One  two", "three", "one two"]) == "one two"
    assert most_frequent_caption(["b", "a", "b", "a"]) == "a"           # a tie: the first in sorted order


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        exact_match(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="item 1 has an empty reference"):
        wer(["a", "b"], ["a", " "])
    with pytest.raises(ValueError, match="no captions to score"):
        bleu4([], [])


def test_a_missing_metric_library_is_a_clear_error(monkeypatch):
    assert missing_packages() == []
    monkeypatch.setitem(sys.modules, "jiwer", None)          # what an uninstalled package looks like to import
    with pytest.raises(RuntimeError, match=r"caption metrics need jiwer: pip install 'lpm\[caption\]'"):
        wer(["a"], ["a"])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert missing_packages() == [f"caption metrics need {n}: pip install 'lpm[caption]' or pip install {n}"
                                  for n in ("sacrebleu", "jiwer")]
