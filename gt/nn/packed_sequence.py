"""torch's packed sequences (``torch.nn.utils.rnn``, which this module is): ``PackedSequence``,
``pack_padded_sequence``, ``pad_packed_sequence``, ``pack_sequence``, ``unpack_sequence`` and
``invert_permutation`` (with ``pad_sequence`` and
``unpad_sequence`` from rnn_utils.py), and what the recurrent layers need to run on one.

A packed sequence holds the steps of a batch of sequences of different lengths time step by time
step, the longest sequence first: ``data`` (sum(lengths), *) and ``batch_sizes[t]``, how many
sequences are still running at step t. Packing and unpacking are one differentiable gather each
(the rows of the padded (T, B, *) tensor that hold real steps), so gradients flow both ways.

The recurrent layers (gt/nn/recurrent.py) run a packed input on its padded form in the caller's
batch order, with each sequence's state frozen once its last step has passed (and, going
backwards, held at the initial state until its last step is reached), then pack the output
again: the same values and final states as torch's packed kernels.
"""

from collections import namedtuple

from gt import dtypes
from gt.nn.rnn_utils import pad_sequence, unpad_sequence  # noqa: F401  (torch.nn.utils.rnn has them too)
from gt.tensor import Tensor, arange, cat, full, tensor

_Fields = namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])


class PackedSequence(_Fields):
    """``data`` (sum(lengths), *), ``batch_sizes`` (int64, one per time step), ``sorted_indices``
    (the batch order by decreasing length, or None when the input was sorted) and
    ``unsorted_indices`` (its inverse). Made by ``pack_padded_sequence``/``pack_sequence``."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            raise TypeError("PackedSequence: build it with pack_padded_sequence or pack_sequence (batch_sizes is "
                            "required)")
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        """The same sequence with ``data`` converted as ``Tensor.to`` converts it."""
        data = self.data.to(*args, **kwargs)
        return self if data is self.data else type(self)(data, self.batch_sizes, self.sorted_indices,
                                                         self.unsorted_indices)

    def cpu(self, *args, **kwargs):
        return self.to("cpu", *args, **kwargs)

    def cuda(self, *args, **kwargs):
        return self.to("cuda", *args, **kwargs)

    def pin_memory(self):
        return type(self)(self.data.pin_memory(), self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    def is_pinned(self):
        return self.data.is_pinned()

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def half(self):
        return self.to(dtypes.float16)

    def long(self):
        return self.to(dtypes.int64)

    def int(self):
        return self.to(dtypes.int32)

    def short(self):
        return self.to(dtypes.int16)

    def char(self):
        return self.to(dtypes.int8)

    def byte(self):
        return self.to(dtypes.uint8)

    @property
    def is_cuda(self):
        return self.data.is_cuda


def invert_permutation(permutation):
    """The inverse of a permutation (B,) of the batch (torch's ``invert_permutation``); None for None."""
    if permutation is None:
        return None
    out = permutation.clone()
    out[permutation] = arange(permutation.shape[0])
    return out


def _lengths(lengths):
    values = lengths.tolist() if isinstance(lengths, Tensor) else [int(n) for n in lengths]
    if any(not float(n).is_integer() for n in values):
        raise TypeError(f"pack_padded_sequence: lengths must be integers, got {values}")
    return [int(n) for n in values]


def _batch_sizes(lengths):
    """How many sequences run at each step: (max(lengths),) int64."""
    lengths = tensor(lengths, dtype=dtypes.int64)
    return (lengths.reshape(1, -1) > arange(int(lengths.max())).reshape(-1, 1)).sum(1)


def _rows(batch_sizes, order):
    """The rows of a (T * B, *) padded tensor that packing takes, in packed order: at step t the
    first ``batch_sizes[t]`` sequences of ``order`` (B,)."""
    batch = order.shape[0]
    steps = batch_sizes.shape[0]
    flat = arange(steps).reshape(-1, 1) * batch + order.reshape(1, -1)            # (T, B)
    return flat[arange(batch).reshape(1, -1) < batch_sizes.reshape(-1, 1)]       # row-major: step by step


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack ``input`` (T, B, *) ((B, T, *) when ``batch_first``), whose sequence b has
    ``lengths[b]`` real steps. With ``enforce_sorted`` the lengths must decrease (torch's rule);
    otherwise they are sorted here and the order is kept in the result."""
    lengths = _lengths(lengths)
    x = input.transpose(0, 1) if batch_first else input
    if len(lengths) != x.shape[1]:
        raise ValueError(f"pack_padded_sequence: expected {x.shape[1]} lengths (one per sequence of the batch), got "
                         f"{len(lengths)}")
    if lengths and min(lengths) <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' that "
                           "is <= 0")
    if lengths and max(lengths) > x.shape[0]:
        raise RuntimeError(f"pack_padded_sequence: a length of {max(lengths)} exceeds the {x.shape[0]} steps of the "
                           "input")
    if enforce_sorted:
        if any(a < b for a, b in zip(lengths, lengths[1:])):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. "
                               "You can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to "
                               "sidestep this requirement if you do not need ONNX exportability.")
        order, sorted_indices = arange(len(lengths)), None
    else:
        order = sorted_indices = tensor(sorted(range(len(lengths)), key=lambda b: -lengths[b]), dtype=dtypes.int64)
    sizes = _batch_sizes(lengths)
    data = x.reshape((x.shape[0] * x.shape[1],) + tuple(x.shape[2:]))[_rows(sizes, order)]
    return PackedSequence(data, sizes, sorted_indices)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Undo ``pack_padded_sequence``: ``(padded (T, B, *) or (B, T, *), lengths (B,))`` in the
    batch order the sequences were given in; ``total_length`` pads T further."""
    sizes = sequence.batch_sizes
    steps = sizes.shape[0]
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"Expected total_length to be at least the length of the longest sequence in input, but "
                             f"got total_length={total_length} and max sequence length being {steps}")
        steps = total_length
    batch = int(sizes[0]) if sizes.shape[0] else 0
    order = sequence.sorted_indices if sequence.sorted_indices is not None else arange(batch)
    data = sequence.data
    rest = tuple(data.shape[1:])
    where = full((steps * batch,), data.shape[0], dtype=dtypes.int64)    # every position: the padding row
    where[_rows(sizes, order)] = arange(data.shape[0])
    padded = cat([data, full((1,) + rest, padding_value, dtype=data.dtype)])[where].reshape((steps, batch) + rest)
    lengths = (sizes.reshape(1, -1) > arange(batch).reshape(-1, 1)).sum(1)      # in the packed (sorted) order
    if sequence.unsorted_indices is not None:
        lengths = lengths[sequence.unsorted_indices]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, lengths


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of (L_i, *) tensors (torch's ``pack_sequence``)."""
    if not sequences:
        raise ValueError("pack_sequence: expected a non-empty list of tensors")
    return pack_padded_sequence(pad_sequence(sequences), [s.shape[0] for s in sequences], enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """The list of (L_i, *) tensors that ``packed_sequences`` holds, in the order they were
    packed (torch's ``unpack_sequence``, the inverse of ``pack_sequence``); differentiable."""
    if not isinstance(packed_sequences, PackedSequence):
        raise TypeError(f"unpack_sequence: expected a PackedSequence, got {type(packed_sequences).__name__}")
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


def step_masks(lengths, steps):
    """One (B, 1) boolean mask per time step, True where the sequence still runs (recurrent layers)."""
    lengths = tensor(lengths, dtype=dtypes.int64) if not isinstance(lengths, Tensor) else lengths
    running = (arange(steps).reshape(steps, 1) < lengths.reshape(1, -1))   # (T, B)
    return [running[t].reshape(-1, 1) for t in range(steps)]
