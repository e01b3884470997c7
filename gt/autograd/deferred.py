"""A big weight gradient of few rows, kept as its two factors until someone reads it.

A Linear's weight gradient is one product, ``dY^T X``: (out, k) times (k, in), where k is the
number of rows of the batch. With few rows and a big weight (the Pixel Transformer's
(256, 40,000) embedding at a batch of 2 x 4 images: k = 8) the product is 41 MB written to
memory and read back by the optimizer, while its two factors are 1.3 MB. So the backward walk
may leave such a leaf holding the factors (a ``LowRank``) instead of the product:

- ``leaf.grad`` (and ``leaf._grad``) makes the product the first time it is read, with the same
  engine call the backward would have made (so the same bits), and keeps it from then on; the
  factors are dropped. Every reader of ``.grad`` (optimizers, clipping, hooks, user code) sees
  an ordinary tensor, as in torch.
- Plain gradient descent (``SGD`` without momentum or weight decay) applies ``W -= lr * dY^T X``
  as one gemm into the weight (``B.addmm_``, as ``SGD(in_backward=True)`` does inside the
  backward), so the gradient is never written; ``.grad`` still reads the gradient afterwards.
  The update is rounded once instead of twice: 1e-7 relative to the two-step update.
- ``zero_grad()`` drops the factors.

Only where it was measured to pay: on the CPU (on a GPU writing the product is microseconds of
memory time while the two copies are two kernel launches: the default model's step on an H200
made 50 of them, 0.9 ms of its host time, where the 25 products would be 25 launches), a leaf that is not
spread over the mesh, a gradient of at least
``MIN_ELEMENTS`` values whose factors are at most ``1 / RATIO`` of it (at most as large as it, for
a leaf that plain gradient descent steps: ``PLAIN_RATIO``), outside autocast, and only
in the walk's own call of an op's backward (``plain``), never in the sharded dispatch, which
needs arrays. A second gradient for the same leaf (a weight used twice, or a second backward
without ``zero_grad``) makes the product and adds as usual.
"""

import weakref

from gt.autograd.sparse_grad import SparseGrad
from gt.backend import B

# Measured on the default model's seed step (2-core AMD EPYC, paired rounds): deferring its
# 256 x 40,000 embedding saved 3.5 ms (numpy engine) and 4.2 ms (torch engine); deferring its
# blocks' 256 x 256 to 1024 x 256 weights as well, 5.6 ms and 2.0 ms more. Smaller weights were
# not measured, so they keep the gradient made in the backward.
MIN_ELEMENTS = 1 << 16     # values: a 256 x 256 weight
RATIO = 16                 # the factors at most 1/16 of the product: a 256 x 40,000 weight, k <= 15
# For a leaf that plain gradient descent steps (``expect_plain_steps``), which applies the factors
# as they are, up to the size of the product: copying the factors then costs less memory traffic
# than writing the product and reading it back. Measured on the default model's 16 x 8 step with
# plain SGD (k = 128: its embedding's factors are half the product), paired rounds against RATIO
# for every leaf: 5.8 ms less on the torch engine (faster in 23 of 30 rounds) and 2.5 ms less on
# numpy (26 of 30). For every leaf it would cost Adam, which makes the product anyway, 4.8 ms
# (torch engine) and 11 ms (numpy) a step: hence only where plain gradient descent steps the leaf.
PLAIN_RATIO = 1

# id(leaf) -> (weak reference to the leaf, asks()): asks() says whether an optimizer steps that
# leaf by plain gradient descent now (gt.optim.SGD registers its parameters; keyed by id, as
# gt/autograd/hooks.py, because a tensor's == is elementwise).
_plain_steps = {}

# True only while the backward walk runs an op's own backward on plain arrays (gt/autograd/backward.py).
plain = False


class LowRank:
    """``rows_g^T @ rows_x``: a weight gradient as its two factors, each (k, n) and owned here
    (copies: the arrays the backward had may be reused or changed before anyone reads them)."""

    __slots__ = ("rows_g", "rows_x")

    def __init__(self, rows_g, rows_x):
        self.rows_g, self.rows_x = B.copy(rows_g), B.copy(rows_x)

    @property
    def shape(self):
        return (self.rows_g.shape[1], self.rows_x.shape[1])

    @property
    def dtype(self):
        return self.rows_x.dtype

    def materialize(self):
        """The gradient as an engine array, made as the backward makes it (``Linear.backward``)."""
        return B.matmul_reused(B.swap_last(self.rows_g), self.rows_x)

    def add_to(self, target, alpha):
        """``target += alpha * gradient`` in place, in one gemm where the engine has one."""
        B.addmm_(target, B.swap_last(self.rows_g), self.rows_x, alpha)


def worth(rows, out_features, in_features, leaf=None):
    """Whether a weight gradient of ``rows`` rows for an (out, in) weight is kept as factors;
    ``leaf``, the weight: asked whether plain gradient descent steps it (``steps_plainly``) only
    when its factors are over ``1 / RATIO`` of the gradient."""
    size = out_features * in_features
    factors = rows * (out_features + in_features)
    if size < MIN_ELEMENTS or factors * PLAIN_RATIO > size:
        return False
    return factors * RATIO <= size or (leaf is not None and steps_plainly(leaf))


def expect_plain_steps(leaf, asks):
    """Record that ``asks()`` tells whether plain gradient descent steps ``leaf`` (the latest
    registration wins; dropped with the leaf). A hint for ``worth`` only: whoever reads the
    gradient instead gets the product all the same."""
    key = id(leaf)
    _plain_steps[key] = (weakref.ref(leaf, lambda _, key=key, table=_plain_steps: table.pop(key, None)), asks)


def steps_plainly(leaf):
    entry = _plain_steps.get(id(leaf))
    return entry is not None and entry[0]() is leaf and bool(entry[1]())


def materialized(g):
    """``g`` as an engine array (a ``LowRank`` made into its product, a sparse gradient
    (gt/autograd/sparse_grad.py) into its dense array)."""
    return g.materialize() if type(g) in _MADE_LATER else g


_MADE_LATER = (LowRank, SparseGrad)
