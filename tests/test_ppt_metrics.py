"""lpm.ppt.baselines (bits per token of simple token models) and lpm.ppt.judge (sample quality),
against cases computed by hand."""

import numpy as np
import pytest

from lpm.ppt.baselines import baseline_bits

pytestmark = pytest.mark.first_pass      # numpy and scikit-learn only: no GT_* setting changes the answers


def bits(*probabilities):
    """The mean cost in bits of tokens predicted with these probabilities."""
    return float(-np.mean(np.log2(probabilities)))


def test_baselines_of_a_tiny_case_by_hand():
    train = np.array([[0, 1, 2], [0, 1, 1], [2, 2, 2]])
    heldout = np.array([[0, 1, 2], [2, 2, 1]])
    got = baseline_bits(train, heldout, 3)
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
    got = baseline_bits(train, heldout, k)
    for key, probabilities in costs.items():
        assert got[key] == pytest.approx(bits(*probabilities), rel=1e-12), key


def test_a_predictable_sequence_costs_less_under_the_richer_models():
    # every image is 0, 1, 2, 3: positions and bigrams know it; the unigram does not
    train = np.tile(np.arange(4), (50, 1))
    got = baseline_bits(train, train[:5], 8)
    assert got["uniform"] == 3.0
    assert got["position"] == pytest.approx(bits(51 / 58), rel=1e-12)
    assert got["bigram"] == pytest.approx(bits(51 / 58), rel=1e-12)
    assert got["unigram"] == pytest.approx(bits(51 / 208), rel=1e-12)


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
