"""Choosing the next token from a model's logits: greedy, temperature, top-k, top-p (nucleus),
repetition penalty, and ``sample`` combining them, on logits ``(B, V)`` (a batch of rows) or
``(V,)``. The options carry Hugging Face's names and rules; every function works on gt tensors
with gt ops, records nothing for autograd, and draws from gt's generator (``gt.manual_seed``).

    >>> from gt.nn import sampling
    >>> gt.manual_seed(0)
    >>> ids = sampling.sample(logits, temperature=0.8, top_k=50, top_p=0.9)   # (B,) int64

Filters return new logits with the tokens they remove set to ``-inf`` (probability 0 after a
softmax); the tokens they keep keep their logits. Ties are kept whole, so a filter never depends
on the order of tokens: ``top_k_filter`` keeps every token whose logit equals the k-th largest
(more than k tokens when the k-th is tied, Hugging Face's rule), and ``top_p_filter`` keeps every
token whose probability equals that of the last token the nucleus needs.
"""

import math

from gt import dtypes
from gt.autograd import no_grad
from gt.tensor import Tensor, arange, tensor, where, zeros

__all__ = ["greedy", "apply_temperature", "top_k_filter", "top_p_filter", "apply_repetition_penalty", "sample"]


def _logits(logits, op):
    if not isinstance(logits, Tensor):
        raise TypeError(f"{op}: logits must be a gt tensor of shape (B, V) or (V,), got {type(logits).__name__}")
    if logits.ndim not in (1, 2) or logits.shape[-1] == 0:
        raise ValueError(f"{op}: logits must have shape (B, V) or (V,) with V >= 1, got {logits.shape}")
    if not logits.dtype.is_floating_point:
        raise TypeError(f"{op}: logits must be a float tensor, got {logits.dtype!r}")
    return logits


def _check_temperature(t):
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {t!r} (for greedy decoding pass greedy=True)")
    return float(t)


def _check_top_k(k):
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k must be an int >= 1, got {k!r}")
    return k


def _check_top_p(p):
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
        raise ValueError(f"top_p must be a number in (0, 1], got {p!r}")
    return float(p)


def _check_penalty(penalty):
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not math.isfinite(penalty) \
            or penalty <= 0:
        raise ValueError(f"repetition_penalty must be a finite number > 0 (1.0: no penalty), got {penalty!r}")
    return float(penalty)


@no_grad()
def greedy(logits):
    """The most likely token of each row (the first one among equal logits): ``(B,)`` int64, or a
    0-d tensor for logits ``(V,)``."""
    return _logits(logits, "greedy").argmax(-1)


@no_grad()
def apply_temperature(logits, t):
    """``logits / t``: ``t < 1`` sharpens the distribution, ``t > 1`` flattens it."""
    t = _check_temperature(t)
    logits = _logits(logits, "apply_temperature")
    return logits if t == 1.0 else logits / t


@no_grad()
def top_k_filter(logits, k):
    """Keep the ``k`` largest logits of each row (and every token tied with the k-th), set the
    rest to ``-inf``; ``k`` at least the vocabulary keeps everything."""
    k = _check_top_k(k)
    logits = _logits(logits, "top_k_filter")
    if k >= logits.shape[-1]:
        return logits
    kth = logits.topk(k, dim=-1).values[..., -1:]            # (B, 1): the k-th largest of each row
    return logits.masked_fill(logits < kth, -math.inf)


# how many of the most probable tokens top_p_filter looks at before it sorts the whole vocabulary:
# after a top-k filter, or for a peaked distribution, the nucleus is within them
_NUCLEUS_FIRST_TRY = 64


@no_grad()
def top_p_filter(logits, p):
    """Nucleus filtering: keep the smallest set of most probable tokens whose probabilities sum
    to at least ``p`` (always at least the most probable token; ``p=1`` keeps everything), and
    every token as probable as the last one of that set; set the rest to ``-inf``."""
    p = _check_top_p(p)
    logits = _logits(logits, "top_p_filter")
    if p == 1.0:
        return logits
    probs = logits.softmax(-1)
    # the most probable first (a selection, not a sort of the vocabulary); the whole row sorted
    # only where some nucleus is longer than that
    first = probs.shape[-1] > _NUCLEUS_FIRST_TRY
    ordered = probs.topk(_NUCLEUS_FIRST_TRY, dim=-1).values if first else probs.sort(dim=-1, descending=True).values
    needed = _nucleus(ordered, p)
    if first and bool(needed[..., -1].any()):
        ordered = probs.sort(dim=-1, descending=True).values
        needed = _nucleus(ordered, p)
    cutoff = ordered.masked_fill(~needed, math.inf).min(-1, keepdims=True)   # (B, 1): its last probability
    return logits.masked_fill(probs < cutoff, -math.inf)


def _nucleus(ordered, p):
    """Which of the probabilities ``ordered`` (most probable first) are needed to reach ``p``: a
    prefix, at least one token."""
    return ordered.cumsum(-1) - ordered < p         # the probability of the tokens ahead of each


@no_grad()
def apply_repetition_penalty(logits, previous_tokens, penalty):
    """Make the tokens in ``previous_tokens`` less likely (CTRL's rule, as Hugging Face has it):
    their positive logits are divided by ``penalty``, their negative ones multiplied, once per
    token however often it occurred. ``previous_tokens``: int ids ``(B, T)`` for logits ``(B, V)``,
    ``(T,)`` for ``(V,)``; a tensor, array or list."""
    penalty = _check_penalty(penalty)
    logits = _logits(logits, "apply_repetition_penalty")
    prev = _previous(previous_tokens, logits)
    if penalty == 1.0 or prev.shape[-1] == 0:
        return logits
    seen = zeros(*logits.shape, dtype=dtypes.bool_)
    if logits.ndim == 1:
        seen[prev] = True
    else:
        seen[arange(logits.shape[0]).reshape(-1, 1), prev] = True   # (B, T) positions; repeats count once
    return where(seen, where(logits < 0, logits * penalty, logits / penalty), logits)


def _previous(previous_tokens, logits):
    prev = previous_tokens if isinstance(previous_tokens, Tensor) else tensor(previous_tokens, dtype=dtypes.int64)
    want = "(T,)" if logits.ndim == 1 else f"({logits.shape[0]}, T)"
    if prev.dtype not in (dtypes.int64, dtypes.int32) or prev.ndim != logits.ndim or \
            (logits.ndim == 2 and prev.shape[0] != logits.shape[0]):
        raise ValueError(f"previous_tokens must be int token ids of shape {want} for logits of shape {logits.shape}, "
                         f"got {prev.dtype!r} of shape {prev.shape}")
    vocab = logits.shape[-1]
    if prev.numel() and (int(prev.min()) < 0 or int(prev.max()) >= vocab):
        bad = int(prev.min()) if int(prev.min()) < 0 else int(prev.max())
        raise ValueError(f"previous_tokens holds token id {bad}, outside the vocabulary [0, {vocab})")
    return prev


@no_grad()
def sample(logits, temperature=1.0, top_k=None, top_p=None, repetition_penalty=None, previous_tokens=None,
           greedy=False):
    """The next token of each row: int64 ids ``(B,)`` for logits ``(B, V)``, a 0-d tensor for
    ``(V,)``. In Hugging Face's order: the repetition penalty, then (unless ``greedy``, which
    takes the most likely token) temperature, top-k and top-p, and one draw from the softmax of
    what is left. Every option is checked before any work.

        >>> gt.manual_seed(0); sampling.sample(gt.tensor([[0.0, 9.0, 0.0]]), top_k=1).tolist()
        [1]
    """
    logits = _logits(logits, "sample")
    temperature = _check_temperature(temperature)
    top_k = None if top_k is None else _check_top_k(top_k)
    top_p = None if top_p is None else _check_top_p(top_p)
    if not isinstance(greedy, bool):
        raise TypeError(f"sample: greedy must be True or False, got {greedy!r}")
    if repetition_penalty is not None:
        if previous_tokens is None:
            raise ValueError("sample: repetition_penalty needs previous_tokens (the ids generated so far)")
        logits = apply_repetition_penalty(logits, previous_tokens, repetition_penalty)
    if greedy:
        return logits.argmax(-1)
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    ids = logits.softmax(-1).multinomial(1)
    return ids.reshape(()) if logits.ndim == 1 else ids.reshape(logits.shape[0])
