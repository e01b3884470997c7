"""Bits per token of simple token models, the yardsticks a generative model of the same tokens must beat.

All four are estimated on the training tokens and scored on the held-out tokens of the same
codebook: the held-out negative log2-likelihood per token.

- ``uniform``: every code equally likely, log2(K) bits;
- ``unigram``: each code's frequency over all training tokens;
- ``position``: one unigram per token position (a patch at the border is nearly always blank);
- ``bigram``: the previous token of the same image predicts the next; the first token of an
  image, which has no previous one, uses the position-0 unigram.

The estimated models smooth their counts by adding ``alpha`` to every count of every code in
every context (so a code never seen in a context still has a finite cost). By default each
model's ``alpha`` is chosen by 5-fold cross-validation over the training images among
``ALPHAS`` (the held-out tokens are never looked at to choose it): a baseline as strong as its
family allows, not one weakened by a fixed add-one (add-one made the bigram 2.96 bits/token
here, the chosen alpha about 2.85). ``alpha=1.0`` gives Laplace's add-one.

    >>> baseline_bits(book.encode(train_images), book.encode(test_images), 256)
    {'uniform': 8.0, 'unigram': 3.67, 'position': 2.95, 'bigram': 2.83}   # 4x4/256 on MNIST, about
"""

import numpy as np

KEYS = ("uniform", "unigram", "position", "bigram")


ALPHAS = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
FOLDS = 5


def baseline_bits(train_tokens, heldout_tokens, num_codes, alpha=None):
    """A dict of held-out bits per token, keys ``uniform``, ``unigram``, ``position``, ``bigram``
    (both token arrays (N, T) ints in [0, num_codes)); ``alpha``: the additive smoothing of the
    counts of ``train_tokens``, or None (the default) to choose it per model by cross-validation
    on ``train_tokens`` (see the module docstring)."""
    if isinstance(num_codes, bool) or not isinstance(num_codes, (int, np.integer)) or num_codes < 2:
        raise ValueError(f"baseline_bits: num_codes must be an integer >= 2, got {num_codes!r}")
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0):
        raise ValueError(f"baseline_bits: alpha must be a positive number or None, got {alpha!r}")
    train = _check_tokens(train_tokens, num_codes, "train_tokens")
    heldout = _check_tokens(heldout_tokens, num_codes, "heldout_tokens")
    if train.shape[1] != heldout.shape[1]:
        raise ValueError(f"baseline_bits: train_tokens and heldout_tokens must have the same tokens per image, "
                         f"got {train.shape[1]} and {heldout.shape[1]}")
    bits = {"uniform": float(np.log2(num_codes))}
    for name in ("unigram", "position", "bigram"):
        a = alpha if alpha is not None else _cross_validated(name, train, num_codes)
        bits[name] = _bits(name, _model_counts(name, train, num_codes), heldout, a)
    return bits


def _model_counts(name, tokens, k):
    """The counts a model is estimated from: (K,) unigram, (T, K) per position, (K + 1, K) bigram
    (its last row: position 0's counts, the context of an image's first token)."""
    t = tokens.shape[1]
    if name == "unigram":
        return np.bincount(tokens.ravel(), minlength=k)
    position = _counts(np.broadcast_to(np.arange(t), tokens.shape), tokens, t, k)
    if name == "position":
        return position
    return np.concatenate([_counts(tokens[:, :-1], tokens[:, 1:], k, k), position[:1]])


def _bits(name, counts, tokens, alpha):
    """Mean negative log2-likelihood of ``tokens`` (N, T) under ``counts`` smoothed by ``alpha``."""
    logp = _log2_probs(counts, alpha)
    if name == "unigram":
        return float(-logp[tokens].mean())
    if name == "position":
        return float(-logp[np.arange(tokens.shape[1]), tokens].mean())
    first = logp[-1][tokens[:, 0]]                                          # position 0's unigram
    rest = logp[tokens[:, :-1], tokens[:, 1:]]
    return float(-(first.sum() + rest.sum()) / tokens.size)


def _cross_validated(name, train, k):
    """The alpha of ``ALPHAS`` with the lowest mean bits/token over ``FOLDS`` folds of the
    training images (image i in fold i mod FOLDS), each scored by counts of the others."""
    folds = np.arange(len(train)) % FOLDS
    if len(train) < FOLDS:
        return 1.0
    total = _model_counts(name, train, k)
    parts = [(total - _model_counts(name, train[folds == f], k), train[folds == f]) for f in range(FOLDS)]
    scores = [np.mean([_bits(name, counts, held, a) for counts, held in parts]) for a in ALPHAS]
    return ALPHAS[int(np.argmin(scores))]


def _counts(context, token, num_contexts, num_codes):
    """(num_contexts, num_codes) int64: how often each token follows each context value."""
    flat = np.asarray(context).ravel() * num_codes + np.asarray(token).ravel()
    return np.bincount(flat, minlength=num_contexts * num_codes).reshape(num_contexts, num_codes)


def _log2_probs(counts, alpha):
    """log2 of the frequencies along the last axis, each count plus ``alpha``."""
    smoothed = counts.astype(np.float64) + alpha
    return np.log2(smoothed) - np.log2(smoothed.sum(axis=-1, keepdims=True))


def _check_tokens(tokens, num_codes, name):
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[0] < 1 or tokens.shape[1] < 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"baseline_bits: {name} must be integers of shape (N >= 1, T >= 1), "
                         f"got {tokens.dtype} {tokens.shape}")
    if tokens.min() < 0 or tokens.max() >= num_codes:
        raise ValueError(f"baseline_bits: {name} must be in [0, {num_codes}), "
                         f"got values from {tokens.min()} to {tokens.max()}")
    return tokens.astype(np.int64, copy=False)
