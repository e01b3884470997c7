"""Item assignment into a jagged nested tensor, as torch 2.13's: ``nt[i] = v`` and ``nt[i, ...] = v``
(the i-th tensor written in place), index tensors (``nt[batch_ids] = v``: whole sequences, through
the padded form as torch's; ``nt[batch_ids, positions, ...] = v``: rows of ``values``, a dense
bool mask as its nonzero indices), and torch's errors for the other forms. Every write is an
in-place change of ``values`` (recorded for autograd as any). Installed by ``install()``."""

from gt.nested.jagged_ops import _from_padded, to_padded_tensor
from gt.nested.jagged_tensor import NestedBase, NestedTensor
from gt.tensor import Tensor


def setitem(self, index, value):
    """``self[index] = value`` for the forms torch 2.13 takes (see the module)."""
    items = index if isinstance(index, tuple) else (index,)
    first = items[0] if items else None
    if isinstance(first, int) and not isinstance(first, bool):
        b = self.shape[0]
        if not -b <= first < b:
            raise IndexError(f"index {first} is out of bounds for dimension 0 with size {b}")
        part = self.unbind()[first]
        part[items[1:] if len(items) > 1 else ...] = value
        return
    if isinstance(first, slice):
        raise RuntimeError("slice(): not supported for NestedTensor on dim=0")
    if first is Ellipsis:
        raise NotImplementedError("aten.fill_.Tensor: gt writes into a jagged NestedTensor by nt[i] = v or index "
                                  "tensors, as torch 2.13 (or write into .values())")
    if not isinstance(first, Tensor) or isinstance(first, NestedBase):
        raise ValueError("NestedTensor index_put_(input: jt_all, indices: any, values: t, accumulate: any?): expected "
                         "input to be a jagged layout NestedTensor (gt writes by nt[i] = v, index tensors, or into "
                         ".values())")
    _index_put(self, _expanded(items), value)


def _expanded(items):
    """The index with each dense bool tensor replaced by its nonzero indices (torch's index_put_)."""
    out = []
    for item in items:
        if isinstance(item, Tensor) and item.dtype.name == "bool":
            out.extend(item.nonzero(as_tuple=True))
        else:
            out.append(item)
    return out


def _index_put(self, indices, value):
    """torch 2.13's jagged ``index_put_``: with the ragged dim indexed, ``values`` at each
    sequence's row (``offsets[batch] + position``); without, the padded form written and its
    rows copied back."""
    r = self._nt_ragged
    if len(indices) > self.dim():
        raise IndexError(f"too many indices for tensor of dimension {self.dim()} (got {len(indices)})")
    if any(not isinstance(i, Tensor) for i in indices[:r + 1]):
        raise RuntimeError("slice(): not supported for NestedTensor on ragged dim")
    if len(indices) <= r:
        if not self.is_contiguous():
            raise RuntimeError("index_put(): If ragged dimension is not part of indices, this only works on "
                               "contiguous NJTs")
        longest = self._nt_meta.get("max_seqlen", self._nt_values.shape[r - 1])
        padded = to_padded_tensor(self, 0.0, (*self.shape[:r], longest, *self.shape[r + 1:]))
        padded[tuple(indices)] = value
        self._nt_values.copy_(_from_padded(self, padded)._nt_values)
        return
    batch, position = indices[0].long(), indices[r].long()
    lengths = self._seq_lengths().index_select(0, batch.reshape(-1)).reshape(batch.shape)
    if bool(((position >= lengths) | (position < -lengths)).any()):
        raise RuntimeError("Some indices in the ragged dimension are out of bounds!")
    # a negative position counts from its sequence's end (torch 2.13 adds it to the sequence's
    # offset: it writes a row of the sequence before, or the last row of values for the first one)
    rows = self._nt_offsets.index_select(0, batch.reshape(-1)).reshape(batch.shape) + position
    rows = rows + (position < 0).long() * lengths
    self._nt_values[(*indices[1:r], rows, *indices[r + 1:])] = value


def install():
    """``__setitem__`` on ``NestedTensor``."""
    NestedTensor.__setitem__ = setitem
