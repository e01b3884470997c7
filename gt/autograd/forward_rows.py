"""Forward AD's slow path (gt/autograd/forward_ad.py): an op's tangent one output element at a
time, by plain backwards, for ops whose gradient gt cannot record (complex ones among them)."""

from gt.autograd import function
from gt.autograd.gradients import grad as _grad
from gt.backend import B


def by_rows(out, xs, ts):
    """The tangent of ``out`` along the tangents ``ts`` of ``xs``: element e's real part is
    ``sum Re(conj(g) t)``, g the gradient of Re(out_e) (torch's convention: ``dy/dRe x + i dy/dIm x``
    for a complex x), its imaginary part the same with Im(out_e). Costs one backward of the op per
    output element (two for a complex output)."""
    n = out.numel()
    units = (1, 1j) if out.dtype.is_complex else (1,)
    values = []
    for e in range(n):
        value = 0
        for unit in units:
            seed = B.zeros((n,), out.dtype)
            seed[e] = unit
            gs = _grad([out], xs, [function.Tensor._wrap(B.reshape(seed, out.shape))], retain_graph=True,
                       allow_unused=True, materialize_grads=True)
            value += unit * sum(_real_inner(g, t) for g, t in zip(gs, ts))
        values.append(value)
    return function.Tensor._wrap(B.reshape(B.asarray(values, dtype=out.dtype), out.shape))


def _real_inner(g, t):
    """``Re(sum(conj(g) * t))``, a Python float."""
    t = t.to(g.dtype) if t.dtype != g.dtype else t
    return float((g.conj() * t).real.sum().item()) if g.dtype.is_complex else float((g * t).sum().item())
