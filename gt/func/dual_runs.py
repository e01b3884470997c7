"""``gt.func``'s runs of a function on gt's forward AD (gt/autograd/forward_ad.py), where the
reverse passes of ``jvp`` and ``jacfwd`` cannot compute (a gradient's gradient gt does not record; a
value the function changed in place after an op saved it); and torch's refusal of a forward transform
called inside the user's forward AD level."""

import contextlib

from gt.autograd import forward_ad
from gt.autograd.levels import transform_level
from gt.tensor import Tensor
from gt.tensor.creation import zeros


NESTED = "Nested forward mode AD is not supported at the moment"
_own = [0]      # how many forward AD levels of gt.func's own runs are entered (one at most)


@contextlib.contextmanager
def own_level():
    """``forward_ad.dual_level()`` for a run of gt.func's own: torch's forward transforms nest (an
    inner ``jvp`` inside the function run there is no nesting of the user's level)."""
    with forward_ad.dual_level():
        _own[0] += 1
        try:
            yield
        finally:
            _own[0] -= 1


def refuse_nested():
    """torch's error for ``jvp``, ``jacfwd`` (``hessian``) or ``linearize`` called inside the user's
    ``forward_ad.dual_level()``: torch's transform enters a forward AD level of its own, and
    forward AD levels do not nest."""
    if forward_ad.entered() and not _own[0]:
        raise RuntimeError(NESTED)


def sharded(leaves):
    """Whether a tensor among ``leaves`` is sharded over the mesh (forward AD gathers it: a copy, which
    the function's changes in place would not reach)."""
    return any(isinstance(x, Tensor) and x._placed is not None for x in leaves)


def columns(run, flat, n_out):
    """``[output][input]``: the outputs' tangents along each element of each input in ``flat``, one
    run per element: ``run(duals)`` calls the function on dual copies of ``flat``'s values (the
    element's tangent 1, every other 0) and returns the output leaves."""
    cols = [[[] for _ in flat] for _ in range(n_out)]
    for j, x in enumerate(flat):
        for e in range(x.numel()):
            with own_level():
                duals = [forward_ad.make_dual(y.detach().clone(), _one_hot(y, e if i == j else None))
                         for i, y in enumerate(flat)]
                with transform_level(duals, kind="forward"):
                    outs = run(duals)
                for k, o in enumerate(outs):
                    t = forward_ad.unpack_dual(o).tangent
                    cols[k][j].append(zeros(o.shape, dtype=o.dtype) if t is None else t.to(o.dtype))
    return cols


def _one_hot(x, e):
    """A tangent of ``x``'s shape: 1 at flat position ``e``, zeros elsewhere (all zeros for None)."""
    t = zeros(x.numel(), dtype=x.dtype)
    if e is not None:
        t[e] = 1
    return t.reshape(x.shape)
