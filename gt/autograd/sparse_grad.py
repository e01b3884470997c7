"""A sparse COO gradient on its way through the backward walk (``Embedding(sparse=True)``'s
weight gradient, torch's ``EmbeddingBackward0`` with ``sparse=True``).

An op's ``backward`` may return a ``SparseGrad`` for an input: a sparse COO gt
tensor (gt/tensor/sparse_coo.py; the tensor layer makes it, this layer only passes it on) and
the sequence number of the op that made it. The walk keeps it sparse where torch does:

- two of them meeting at one tensor (a table looked up twice) add up as torch's engine adds
  them (gt/tensor/sparse_autograd.py's ``torch_add``: their entries merged when both value
  arrays are contiguous, else side by side), the later op's first, whatever order gt's walk met
  them in; a sparse and a dense gradient meeting give a dense one;
- a leaf's ``.grad`` takes it through the tensor layer's ``accumulate`` (torch's
  ``AccumulateGrad``), tensor hooks see (and may replace) the sparse tensor, and
  ``gt.autograd.grad`` returns it as it is;
- an op whose torch backward multiplies the gradient by a dense factor, element by element
  (``*``, ``+``, ``-``, ``exp``, ``sin``, ``clone``, ...: ``through``), passes it on sparse to its
  inputs of the output's shape, so a computed ``F.embedding(ids, w * 2, sparse=True)`` weight gives
  the leaf ``w`` torch's sparse gradient;
- anything else (an op's backward, a sharded dispatch) gets the dense array (``materialize``).
"""

from gt.autograd import function

# Registered by the tensor layer (gt/tensor/sparse_autograd.py): ``accumulate(leaf, sparse
# tensor)`` adds into ``leaf.grad`` as torch's AccumulateGrad; ``pass_on(op, sparse tensor)`` gives
# [(input, sparse tensor)] for an op whose torch backward takes a sparse gradient, else None.
accumulate = pass_on = None


def through(op, g):
    """The sparse gradients of ``op``'s inputs from its output's sparse gradient ``g`` (a ``SparseGrad``),
    as torch's backward of ``op`` gives them, numbered by ``op``; None where the op takes a dense one."""
    got = None if pass_on is None else pass_on(op, g.tensor)
    return None if got is None else [(p, SparseGrad(t, op.seq)) for p, t in got]


class SparseSeen:
    """Whether a sparse COO tensor was ever made in this process (``SparseTensor._make`` says so):
    until then no gradient can be sparse, and the gradient accumulation, ``zero_grad`` and the
    optimizers skip their ``is_sparse`` tests, one per parameter on every step."""

    made = False


class SparseGrad:
    """``tensor`` (a sparse COO gt tensor, outside any graph) made by the op numbered ``seq``."""

    __slots__ = ("tensor", "seq")

    def __init__(self, tensor, seq=0):
        self.tensor, self.seq = tensor, seq

    @property
    def shape(self):
        return self.tensor.shape

    @property
    def dtype(self):
        return self.tensor.dtype

    def materialize(self):
        """The dense gradient as an engine array."""
        with function.no_grad():
            return self.tensor.to_dense()._data

    def plus(self, other):
        """The sum of two sparse gradients of one tensor, torch's: its engine runs the later op
        first and adds each new gradient before the ones it holds, so the entries of the earlier
        op come first in the sum."""
        first, second = (self, other) if self.seq <= other.seq else (other, self)
        with function.no_grad():
            return SparseGrad(first.tensor.add(second.tensor), first.seq)    # torch's sparse sum
