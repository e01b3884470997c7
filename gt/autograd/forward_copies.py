"""``as_strided`` and ``unfold`` of a dual tensor sharded over the mesh, under forward AD.

torch's are views: a later in-place change of the memory they view (the dual's, that of the
tensor it was made of, of a view of either) shows in their primal and their tangent. gt makes
them as copies gathered from the blocks (gt/tensor/strided_methods.py: it does not track a sharded
tensor's storage, and as_strided's strides over the mesh are not torch's), which would keep the
values and the tangent of before, silently. So while such a copy lives and the level lasts, an
in-place change of a sharded tensor lying in the memory it was copied from is refused, naming
what to do instead; once the copy is gone (``del``, or never kept: ``d.unfold(0, 2, 2).sum()``)
the change goes on.

forward_ad.py's ``dual_write``, which every in-place change asks (gt/tensor/inplace_grad.py),
calls ``refuse_write`` while a level is entered and a copy is kept; outside a level nothing here runs.
"""

import weakref

from gt.backend import B

# (weak reference to the copy, the arrays it was copied from, the op that made it), while the level lasts
kept = []


def note(out, src, fn):
    """Keep ``out``, the copy ``fn`` (``"as_strided"``, ``"unfold"``) made of ``src``, a sharded tensor
    with a tangent at the current level."""
    kept[:] = [k for k in kept if k[0]() is not None]
    kept.append((weakref.ref(out), tuple(src._placed.shards), fn))


def refuse_write(t):
    """Raise before an in-place change of ``t`` (sharded) that would leave a kept copy stale."""
    kept[:] = [k for k in kept if k[0]() is not None]
    for _, sources, fn in kept:
        if any(_meets(a, s) for a in t._placed.shards for s in sources):
            raise RuntimeError(
                f"an in-place change of a sharded tensor in the memory of a dual tensor of which {fn}(...) is alive: "
                f"gt made that {fn} as a copy (torch: a view, whose primal and tangent would show this change), so "
                f"it would keep the values and the tangent of before; take {fn}(...) after the change, or drop it "
                f"first (del it), or, to keep the values of before on purpose, take {fn}(...).clone()")


def _meets(a, b):
    """Whether the memory spans of arrays ``a`` and ``b`` meet (conservative: the gaps count as theirs)."""
    spans = []
    for arr in (a, b):
        if not B.numel(arr):
            return False
        start = B.data_address(arr)
        last = sum((n - 1) * s for n, s in zip(arr.shape, B.element_strides(arr)))
        spans.append((start, start + (last + 1) * B.dtype_of(arr).itemsize))
    (a0, a1), (b0, b1) = spans
    return a0 < b1 and b0 < a1
