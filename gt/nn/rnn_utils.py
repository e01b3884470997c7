"""torch.nn.utils.rnn's padding helpers: ``pad_sequence`` and ``unpad_sequence`` (gt.nn.utils.rnn).

Sequences of different lengths, each (L_i, *), padded into one batch and cut back out. Both are
differentiable (built from pad, stack and slicing). The packed ones: packed_sequence.py.
"""

from gt.nn.padding import pad
from gt.tensor import Tensor, stack

__all__ = ["pad_sequence", "unpad_sequence"]


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack sequences of shapes (L_i, *) into (max L, B, *), or (B, max L, *) with
    ``batch_first``, filling with ``padding_value`` after each sequence (``padding_side="left"``:
    before). The output has the first sequence's dtype (the others, and the padding value, are
    cast to it, as torch's). A tensor (B, L, *) is taken as its B rows. Bad input raises
    RuntimeError, as torch's (TypeError for what is not a tensor).

        >>> pad_sequence([gt.ones(2), gt.ones(3)], batch_first=True).tolist()
        [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    """
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side!r}.")
    seqs = [sequences[i] for i in range(sequences.shape[0])] if isinstance(sequences, Tensor) else list(sequences)
    if not seqs:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    for i, seq in enumerate(seqs):
        if not isinstance(seq, Tensor):
            raise TypeError(f"pad_sequence: expected a list of gt.Tensor, got {type(seq).__name__} at index {i}")
        if seq.ndim == 0:
            raise RuntimeError(f"pad_sequence: sequence {i} is 0-d; each sequence must be (L, *), at least 1-D")
        if seq.shape[1:] != seqs[0].shape[1:]:
            raise RuntimeError(f"pad_sequence: every sequence must have the trailing shape of the first, "
                             f"{seqs[0].shape[1:]}, but sequence {i} has shape {seq.shape}")
    dtype = seqs[0].dtype
    longest = max(seq.shape[0] for seq in seqs)
    padded = []
    for seq in seqs:
        extra = longest - seq.shape[0]
        before, after = (extra, 0) if padding_side == "left" else (0, extra)
        seq = seq.to(dtype)
        padded.append(pad(seq, (0, 0) * (seq.ndim - 1) + (before, after), value=padding_value) if extra else seq)
    return stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of sequences that ``pad_sequence`` (right padding) made ``padded_sequences`` from:
    (T, B, *), or (B, T, *) with ``batch_first``, cut to ``lengths`` (B values: a 1-D tensor or a
    list of ints) along T. Each is a view of the input (torch's are copies).

    Where gt differs from torch: torch transposes a ``batch_first=False`` input in place (its
    caller's tensor is left transposed); gt leaves it as it was. gt takes lengths as a list too.

        >>> seqs = unpad_sequence(pad_sequence(seqs), gt.tensor([2, 3]))
    """
    if not isinstance(padded_sequences, Tensor):
        raise TypeError(f"unpad_sequence: expected padded_sequences to be a gt.Tensor, got "
                        f"{type(padded_sequences).__name__}")
    if padded_sequences.ndim < 2:
        raise ValueError(f"unpad_sequence: padded_sequences must be at least 2-D ((T, B, *) or (B, T, *)), got "
                         f"shape {padded_sequences.shape}")
    batch = padded_sequences if batch_first else padded_sequences.transpose(0, 1)       # (B, T, *)
    lengths = lengths.tolist() if isinstance(lengths, Tensor) else list(lengths)
    if len(lengths) != batch.shape[0]:
        raise ValueError(f"unpad_sequence: got {len(lengths)} lengths for a batch of {batch.shape[0]} sequences")
    longest = batch.shape[1]
    return [batch[i, :max(0, min(int(n), longest))] for i, n in enumerate(lengths)]
