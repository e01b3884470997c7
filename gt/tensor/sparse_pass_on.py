"""A sparse COO gradient passed on through an op, as torch 2.13's backward passes it.

torch's backward formulas of the ops below multiply the output's gradient by a dense factor
(``grad * other``, ``grad * result``, ``grad * cos(self)``, ``grad`` itself): with a sparse
gradient (a computed weight looked up by ``F.embedding(..., sparse=True)``) that product is sparse
on the gradient's own entries, so the leaf behind ``w * 2``, ``w.clone()``, ``w.exp()`` gets a
sparse gradient. gt computes the factor as the op's backward of ones (one dense pass, as the dense
gradient did) and multiplies each entry's values by it (duplicates kept, each entry alone, as
torch's). Ops where torch 2.13's sparse backward raises or densifies (``tanh``, ``sqrt``, ``/`` by a
tensor, views, an input broadcast to the output) are left to the dense gradient (``None``).
"""

from gt import autograd
from gt.backend import B
from gt.ops.elementwise import Abs, Add, Div, Exp, Mul, Neg, Pow, Sub, _is_number
from gt.ops.lerp import Lerp
from gt.ops.shape import Contiguous
from gt.tensor.core import Tensor

# Clone is a Contiguous; Mul is also square, silu's product, addcmul's
_FACTOR_OPS = (Add, Sub, Mul, Neg, Abs, Exp, Pow, Lerp, Contiguous)
# the math functions whose torch 2.13 backward keeps a sparse gradient sparse (tanh, sigmoid, log,
# sqrt, atan, ...: raise there, and gt gives the dense gradient)
_FACTOR_MATH = frozenset(("SinBackward0", "CosBackward0", "SinhBackward0", "Expm1Backward0", "Log1PBackward0",
                          "Exp2Backward0", "ErfBackward0"))


def _passes(op):
    if isinstance(op, _FACTOR_OPS):
        return True
    if isinstance(op, Div):      # torch's sparse division takes a number or a 0-d divisor only
        a, b = op.inputs[:2]
        return _is_number(a) or _is_number(b) or not b.requires_grad and b.ndim == 0
    return getattr(op, "_torch_name", None) in _FACTOR_MATH


def pass_on(op, g):
    """``[(input, sparse gradient)]`` of ``op`` from its output's sparse COO gradient ``g``, or None
    where torch's backward of ``op`` would not keep it sparse."""
    if not _passes(op):
        return None
    shape = tuple(g.shape)
    inputs = [(i, p) for i, p in enumerate(op.inputs) if getattr(p, "requires_grad", False)]
    if not inputs or any(tuple(p.shape) != shape for _, p in inputs):
        return None
    with autograd.no_grad():
        factors = op.backward(B.ones(shape, g.dtype))
        factors = factors if isinstance(factors, tuple) else (factors,)
        idx = g._sp_indices
        at = tuple(idx[d] for d in range(g.sparse_dim()))
        out = []
        for i, p in inputs:
            if factors[i] is None:
                continue
            factor = Tensor._wrap(factors[i]).to(p.dtype)
            out.append((p, g._new(idx, g._sp_values.to(p.dtype) * factor[at], shape, g._sp_coalesced)))
    return out

