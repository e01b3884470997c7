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
- an op whose torch backward refuses a sparse gradient (``tanh``, ``sqrt``, views) raises torch's
  error there (the tensor layer's ``pass_on`` says so); with ``create_graph=True`` the graph walk
  (gt/autograd/graph_walk.py) does the same with recorded gradients (``through_graph``);
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
    # (an input that the output broadcasts gets a dense gradient: its engine array)
    return None if got is None else [(p, SparseGrad(t, op.seq) if t.is_sparse else t._data) for p, t in got]


def through_graph(op, g):
    """``through`` under ``create_graph=True``: ``[(input, gradient tensor)]`` recorded, sparse
    where torch's are (a dense tensor for an input the output broadcasts), from the sparse COO
    gradient tensor ``g``; None where the op takes a dense one."""
    return None if pass_on is None else pass_on(op, g, graph=True)


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


def mark(out, rule, x=None):
    """``out`` with its op marked for a sparse gradient (gt/tensor/sparse_pass_on.py), where gt
    builds one of torch's nodes from several ops. ``("derivative", name)`` and ``x``: torch's node
    passes the gradient times the derivative of ``name`` (``silu``, ``mish``, ``rsqrt``,
    ``nan_to_num``) at ``x`` on to ``x``; ``("refuse", kernel)``: its backward raises there
    (``leaky_relu_backward``); ``"addcdiv"`` on the division inside ``addcdiv``; ``"dense"``: it
    densifies (``sgn``). Nothing is done for a result off the tape."""
    ctx = out._ctx
    if ctx is not None:
        try:
            ctx._sparse_rule = (rule, x)
        except AttributeError:      # an op with slots only: none of the marked ones
            pass
    return out
