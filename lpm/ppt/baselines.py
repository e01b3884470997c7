"""Bits per token of simple token models, the yardsticks a generative model of the same tokens must beat.

All four are estimated on the training tokens and scored on the held-out tokens of the same
codebook: the held-out negative log2-likelihood per token.

- ``uniform``: every code equally likely, log2(K) bits;
- ``unigram``: each code's frequency over all training tokens;
- ``position``: one unigram per token position (a patch at the border is nearly always blank);
- ``bigram``: the previous token of the same image predicts the next; the first token of an
  image, which has no previous one, uses the position-0 unigram.

The estimated models use add-one (Laplace) smoothing: every count, of every code in every
context, starts at one, so a code never seen in a context still has a finite cost.

    >>> baseline_bits(book.encode(train_images), book.encode(test_images), 256)
    {'uniform': 8.0, 'unigram': 3.67, 'position': 2.95, 'bigram': 2.83}   # 4x4/256 on MNIST, about
"""

import numpy as np

KEYS = ("uniform", "unigram", "position", "bigram")


def baseline_bits(train_tokens, heldout_tokens, num_codes):
    """A dict of held-out bits per token, keys ``uniform``, ``unigram``, ``position``, ``bigram``
    (add-one smoothed counts of ``train_tokens``; both token arrays (N, T) ints in [0, num_codes))."""
    if isinstance(num_codes, bool) or not isinstance(num_codes, (int, np.integer)) or num_codes < 2:
        raise ValueError(f"baseline_bits: num_codes must be an integer >= 2, got {num_codes!r}")
    train = _check_tokens(train_tokens, num_codes, "train_tokens")
    heldout = _check_tokens(heldout_tokens, num_codes, "heldout_tokens")
    if train.shape[1] != heldout.shape[1]:
        raise ValueError(f"baseline_bits: train_tokens and heldout_tokens must have the same tokens per image, "
                         f"got {train.shape[1]} and {heldout.shape[1]}")
    k, t = num_codes, train.shape[1]
    unigram = _log2_probs(np.bincount(train.ravel(), minlength=k))                       # (K,)
    per_position = _log2_probs(_counts(np.broadcast_to(np.arange(t), train.shape), train, t, k))   # (T, K)
    bigram = _log2_probs(_counts(train[:, :-1], train[:, 1:], k, k))                    # (K prev, K next)
    position_cost = per_position[np.arange(t), heldout]                                 # (N, T)
    bigram_cost = np.concatenate([position_cost[:, :1], bigram[heldout[:, :-1], heldout[:, 1:]]], axis=1)
    return {"uniform": float(np.log2(k)),
            "unigram": float(-unigram[heldout].mean()),
            "position": float(-position_cost.mean()),
            "bigram": float(-bigram_cost.mean())}


def _counts(context, token, num_contexts, num_codes):
    """(num_contexts, num_codes) int64: how often each token follows each context value."""
    flat = np.asarray(context).ravel() * num_codes + np.asarray(token).ravel()
    return np.bincount(flat, minlength=num_contexts * num_codes).reshape(num_contexts, num_codes)


def _log2_probs(counts):
    """log2 of the add-one smoothed frequencies along the last axis."""
    smoothed = counts.astype(np.float64) + 1.0
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
