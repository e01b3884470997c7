"""``CTCLoss`` and ``F.ctc_loss``: the negative log-likelihood of a label sequence summed over all
its alignments to the input frames (Graves et al., 2006), as torch's.

The forward (alpha) recursion runs in log space over the extended labels ``blank, l1, blank, l2,
..., blank`` of every sequence at once: one step per time frame on (N, 2S+1) tensors, so the
gradient comes from gt's autograd through the composed ops. Impossible paths carry the finite
``_NEG`` instead of -inf, so no NaN reaches a gradient; a loss past ``-_NEG / 2`` is reported as inf."""

from gt import amp, dtypes
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.inputs import check_range as _check_range
from gt.nn.inputs import class_indices as _class_indices
from gt.nn.loss_dtypes import refuse_float_input
from gt.nn.module import Module
from gt.nn.padding import pad
from gt.tensor import arange, cat, full, stack, tensor, where

_NEG = -1e30          # log(0) of an unreachable state: finite, so exp() gives 0 and no inf - inf arises
_REDUCTIONS = ("none", "mean", "sum")


def _lse(*terms):
    """log(sum(exp(terms))) of same-shaped tensors, stably."""
    return stack(terms).logsumexp(0)


def _lengths(values, n, fn, what):
    """``values`` (a sequence or tensor of n ints >= 0) as a (n,) int64 tensor."""
    lengths = _class_indices(tensor(values) if isinstance(values, (list, tuple, int)) else values, fn, what)
    lengths = lengths.reshape(-1).to(dtypes.int64)
    if lengths.shape != (n,):
        raise ValueError(f"{fn}: {what} must have {n} entries (one per sequence), got shape {lengths.shape}")
    if n and int(lengths.min().item()) < 0:
        raise ValueError(f"{fn}: {what} must be >= 0, got {lengths.tolist()}")
    return lengths


def _padded_targets(targets, lengths, blank, fn):
    """(N, S) padded or 1-D concatenated ``targets`` -> (N, max(lengths)) labels, ``blank`` past each length."""
    n, longest = lengths.shape[0], int(lengths.max().item()) if lengths.shape[0] else 0
    steps = arange(longest).unsqueeze(0)                                   # (1, S)
    inside = steps < lengths.unsqueeze(1)                                  # (N, S)
    if targets.ndim == 2:
        if targets.shape[0] != n or targets.shape[1] < longest:
            raise ValueError(f"{fn}: padded targets must be (N, S) with N={n} and S >= max(target_lengths)="
                             f"{longest}, got shape {targets.shape}")
        picked = targets[:, :longest]
    else:
        if targets.shape[0] != int(lengths.sum().item()):
            raise ValueError(f"{fn}: concatenated targets must hold sum(target_lengths)={int(lengths.sum().item())} "
                             f"labels, got {targets.shape[0]}")
        starts = lengths.cumsum(0) - lengths                               # (N,)
        pos = (starts.unsqueeze(1) + steps).clamp(0, max(targets.shape[0] - 1, 0))
        picked = targets[pos] if targets.shape[0] else full((n, longest), blank, dtype=targets.dtype)
    return where(inside, picked, blank)


@amp.runs_in_float32      # torch.autocast's fp32 list
def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """The CTC loss of log-probabilities ``log_probs`` (T, N, C) or (T, C) (as from ``log_softmax``)
    against label sequences ``targets``: (N, S) padded or 1-D concatenated (or (S,) unbatched),
    ``input_lengths`` and ``target_lengths`` (N,) (sequences or tensors). ``blank`` is the blank class.
    ``reduction``: 'none' -> (N,), 'sum', or 'mean' (each loss divided by its target length, at least
    1, then averaged over the batch, as torch's). An impossible alignment (too few frames) gives inf,
    or 0 with a zero gradient when ``zero_infinity``.

    Where gt differs from torch: the gradient is the true derivative of the loss with respect to
    ``log_probs``; torch's kernel returns that plus ``exp(log_probs)`` (the gradient as if the input
    were logits, log_softmax included). Both agree on the gradient of anything feeding a
    ``log_softmax`` (the usual use), not on the gradient of raw ``log_probs``. Target labels outside
    [0, C) raise IndexError (torch reads them unchecked). An infinite loss (without ``zero_infinity``)
    sends a zero gradient back, where torch's is NaN. Unbatched 1-D ``targets`` may be longer than
    ``target_lengths`` (the rest is padding); torch wants exactly ``target_lengths`` labels there.

        >>> lp = gt.randn(50, 16, 20).log_softmax(2)
        >>> F.ctc_loss(lp, gt.randint(1, 20, (16, 30)), [50] * 16, [30] * 16).shape
        ()
    """
    fn = "ctc_loss"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    lp = _tensor(log_probs, fn, "log_probs")
    if lp.ndim in (2, 3) and not (lp.dtype.is_floating_point or lp.dtype.is_complex):
        refuse_float_input(fn, lp)
    if lp.ndim not in (2, 3) or not lp.dtype.is_floating_point:
        raise ValueError(f"{fn}: log_probs must be float (T, N, C) or (T, C), got shape {lp.shape} {lp.dtype!r}")
    targets = _class_indices(targets, fn, "targets")
    unbatched = lp.ndim == 2
    if unbatched:
        lp = lp.unsqueeze(1)
        targets = targets.unsqueeze(0) if targets.ndim == 1 else targets
    T, N, C = lp.shape
    if lp.numel() == 0:
        raise ValueError(f"{fn}: log_probs tensor must not be empty, got shape {tuple(log_probs.shape)}")
    if isinstance(blank, bool) or not isinstance(blank, int) or not 0 <= blank < C:
        raise ValueError(f"{fn}: blank must be in label range [0, {C}), got {blank!r}")
    if targets.ndim not in (1, 2):
        raise ValueError(f"{fn}: targets must be (N, S) padded or 1-D concatenated, got shape {targets.shape}")
    in_len = _lengths(input_lengths, N, fn, "input_lengths")
    tgt_len = _lengths(target_lengths, N, fn, "target_lengths")
    if N and int(in_len.max().item()) > T:
        raise ValueError(f"{fn}: input_lengths must be at most T={T}, got {in_len.tolist()}")
    labels = _padded_targets(targets, tgt_len, blank, fn)                   # (N, S)
    labels = _check_range(labels, C, fn, "target label", f"log_probs with C={C} classes", IndexError)
    loss = _nll(lp, labels, in_len, tgt_len, blank)                         # (N,)
    if zero_infinity:
        loss = where(loss.isinf(), 0.0, loss)
    if unbatched:
        loss = loss.reshape(())
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return (loss / tgt_len.clamp(min=1).to(loss.dtype).reshape(loss.shape)).mean()
    return loss


def _nll(lp, labels, in_len, tgt_len, blank):
    """-log p(labels | lp) per sequence: lp (T, N, C), labels (N, S), lengths (N,) -> (N,)."""
    T, N, _ = lp.shape
    if labels.shape[1] == 0:     # every target empty: one blank column (its states are never the end)
        labels = full((N, 1), blank, dtype=labels.dtype)
    S = labels.shape[1]
    blanks = full((N, S, 1), blank, dtype=labels.dtype)
    ext = cat([cat([blanks, labels.unsqueeze(-1)], -1).reshape(N, 2 * S), blanks[:, 0]], 1)   # (N, K = 2S+1)
    K = 2 * S + 1
    # a step s-2 -> s skips a blank: only onto a label that differs from the label before it
    skip = cat([full((N, 2), False), (ext[:, 2:] != ext[:, :-2]) & (arange(2, K) % 2 == 1)], 1)  # (N, K)
    emit = lp.gather(2, ext.unsqueeze(0).expand(T, N, K)).clamp(min=_NEG) if T else None     # (T, N, K)
    state = arange(K).unsqueeze(0)                                          # (1, K)
    live = (in_len > 0).unsqueeze(1)                                        # (N, 1)
    # no frame at all: only the empty path (state 0, log 1) exists
    alpha = where(live, where(state < 2, emit[0], _NEG), where(state == 0, 0.0, _NEG)) if T else \
        where(state == 0, 0.0, full((N, K), _NEG, dtype=lp.dtype))
    for t in range(1, T):
        one = pad(alpha[:, :-1], (1, 0), value=_NEG)                       # from state s - 1
        two = where(skip, pad(alpha[:, :-2], (2, 0), value=_NEG), _NEG)    # from s - 2, skipping a blank
        alpha = where((t < in_len).unsqueeze(1), _lse(alpha, one, two) + emit[t], alpha)
    last = alpha.gather(1, (2 * tgt_len).unsqueeze(1))                     # (N, 1): ends on the final blank
    before = where((tgt_len > 0).unsqueeze(1), alpha.gather(1, (2 * tgt_len - 1).clamp(min=0).unsqueeze(1)), _NEG)
    nll = -_lse(last, before).reshape(N)
    return where(nll > -_NEG / 2, float("inf"), nll)


class CTCLoss(Module):
    """The Connectionist Temporal Classification loss (see ``F.ctc_loss``):
    ``loss(log_probs, targets, input_lengths, target_lengths)``.

        >>> ctc = nn.CTCLoss()
        >>> lp = gt.randn(50, 16, 20).log_softmax(2)
        >>> ctc(lp, gt.randint(1, 20, (16, 30)), [50] * 16, [30] * 16).shape
        ()
    """

    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"CTCLoss: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
        self.blank, self.reduction, self.zero_infinity = blank, reduction, zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                        self.zero_infinity)
