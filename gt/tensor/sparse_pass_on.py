"""A sparse COO gradient passed on through an op, as torch 2.13's backward passes it.

torch's backward formulas of the ops below multiply the output's gradient by a dense factor
(``grad * other``, ``grad * result``, ``grad * cos(self)``, ``grad`` itself): with a sparse
gradient (a computed weight looked up by ``F.embedding(..., sparse=True)``) that product is sparse
on the gradient's own entries, so the leaf behind ``w * 2``, ``w.clone()``, ``w.exp()`` gets a
sparse gradient. gt computes the factor as the op's backward of ones (one dense pass, as the dense
gradient did) and multiplies each entry's values by it (duplicates kept, each entry alone, as
torch's). Piecewise constant ops (``floor``, ``sign``, ...) give torch's empty coalesced gradient.
Where torch 2.13's backward raises on a sparse gradient (``tanh``, ``sqrt``, ``/`` by a tensor,
views, transposes: gt/tensor/sparse_pass_refusals.py) gt raises its error; where it densifies
(an input broadcast to the output, ``sgn``) the walk goes on with the dense gradient (``None``).

Functions that gt builds from several ops and torch runs as one (``silu``, ``mish``, ``rsqrt``,
``nan_to_num``, ``addcdiv``) mark their result's op (``gt.autograd.sparse_grad.mark``) so that
the sparse gradient reaches their input as torch's one node passes it on.
"""

from gt import autograd, dtypes
from gt.autograd.function import fit_grad
from gt.backend import B
from gt.ops.elementwise import Abs, Add, Div, Exp, Mul, Neg, Pow, Rounding, Sub, _is_number
from gt.ops.exact_value import ExactValue
from gt.ops.lerp import Lerp
from gt.ops.math_functions import BinaryMathFunction
from gt.ops.shape import Contiguous, GetItem, Permute, Reshape
from gt.tensor.core import Tensor
from gt.tensor.sparse_pass_refusals import refusal, refused

# Clone is a Contiguous; Mul is also square, silu's product, addcmul's
_FACTOR_OPS = (Add, Sub, Mul, Neg, Abs, Exp, Lerp, Contiguous)
# the math functions whose torch 2.13 backward keeps a sparse gradient sparse (tanh, sigmoid, log,
# sqrt, atan, ...: raise there)
_FACTOR_MATH = frozenset(("SinBackward0", "CosBackward0", "SinhBackward0", "Expm1Backward0", "Log1PBackward0",
                          "Exp2Backward0", "ErfBackward0", "CoshBackward0", "TanBackward0", "AsinBackward0",
                          "AcosBackward0", "AsinhBackward0", "AcoshBackward0", "ErfcBackward0", "ErfinvBackward0",
                          "LgammaBackward0", "DigammaBackward0", "I0Backward0"))
# views that hand the gradient on unchanged: ``w[:, :]`` (torch's alias) and ``expand`` to the same shape
_IDENTITY_VIEWS = frozenset(("AliasBackward0", "ExpandBackward0"))


def _passes(op):
    if isinstance(op, _FACTOR_OPS):
        return True
    if isinstance(op, Div):      # a division by a tensor (not 0-d) of x raised (sparse_pass_refusals)
        return True
    if isinstance(op, (GetItem, Reshape)):
        return op._torch_name in _IDENTITY_VIEWS or op._torch_name.startswith("Squeeze")   # (of nothing)
    if isinstance(op, Permute):        # a permutation that moves nothing (one that does raised)
        return True
    if isinstance(op, Pow):      # x ** t raised (sparse_pass_refusals); x ** 0: torch's dense zeros
        return not (_is_number(op.inputs[1]) and op.inputs[1] == 0)
    if isinstance(op, ExactValue):       # fmod, remainder, copysign: expr's gradient, unchanged
        return not any(getattr(p, "requires_grad", False) for p in op.inputs[2:])
    if isinstance(op, BinaryMathFunction):
        return op.fn == "atan2"
    return getattr(op, "_torch_name", None) in _FACTOR_MATH


def _derivative(name, x):
    """The derivative of the function ``name`` (one of torch's nodes that gt builds from several
    ops) at ``x``, as torch's backward formula multiplies the gradient by it."""
    if name == "silu":
        s = x.sigmoid()
        return s * (1 + x * (1 - s))
    if name == "mish":
        t = _softplus(x).tanh()
        return t + x * x.sigmoid() * (1 - t * t)
    if name == "rsqrt":
        return -0.5 * x.rsqrt().pow(3)
    return x.isfinite().to(x.dtype)      # nan_to_num


def _softplus(x):
    # log(1 + exp(x)) without overflow
    return x.clamp(min=0) + (-x.abs()).exp().log1p()


def _entries(g, p, factor):
    idx = g._sp_indices
    at = tuple(idx[d] for d in range(g.sparse_dim()))
    factor = (factor if isinstance(factor, Tensor) else Tensor._wrap(factor)).to(p.dtype)
    return g._new(idx, g._sp_values.to(p.dtype) * factor[at], tuple(g.shape), g._sp_coalesced)


def _marked(marked, g, graph):
    rule, x = marked
    if rule == "dense":
        return None
    if rule[0] == "refuse":
        raise refused(rule[1])
    name = rule[1]
    if tuple(x.shape) != tuple(g.shape):
        return None
    if graph:
        return [(x, _entries(g, x, _derivative(name, x)))]
    with autograd.no_grad():
        return [(x, _entries(g, x, _derivative(name, x.detach())))]


def _zeros(op, g):
    """torch's gradient of a piecewise constant op: ``zeros_like`` of the sparse gradient (no
    entries, coalesced)."""
    out = []
    for p in op.inputs[:1]:
        if getattr(p, "requires_grad", False) and tuple(p.shape) == tuple(g.shape):
            with autograd.no_grad():
                idx = Tensor._wrap(B.zeros((g.sparse_dim(), 0), dtypes.int64))
                values = Tensor._wrap(B.zeros((0, *g.shape[g.sparse_dim():]), p.dtype))
                out.append((p, g._new(idx, values, tuple(g.shape), True)))
    return out or None


def pass_on(op, g, graph=False):
    """``[(input, sparse gradient)]`` of ``op`` from its output's sparse COO gradient ``g``, or None
    where torch's backward of ``op`` would not keep it sparse; raises torch's error where its
    backward refuses a sparse gradient. ``graph``: for ``create_graph=True``, the gradients
    recorded (``op``'s ``backward_graph``), as torch's sparse gradient then requires grad."""
    marked = getattr(op, "_sparse_rule", None)
    if marked is not None and marked[0] != "addcdiv":
        return _marked(marked, g, graph)
    error = refusal(op, g, graph)
    if error is not None:
        raise error
    if isinstance(op, Rounding):
        return _zeros(op, g)     # (no graph: torch's zeros_like of the gradient requires no grad)
    if not _passes(op):
        return None
    shape = tuple(g.shape)
    inputs = [(i, p) for i, p in enumerate(op.inputs) if getattr(p, "requires_grad", False)]
    if not inputs or not any(tuple(p.shape) == shape for _, p in inputs):
        return None
    if graph:
        return _passed(op, g, inputs, shape, True)
    with autograd.no_grad():
        return _passed(op, g, inputs, shape, False)


def _passed(op, g, inputs, shape, graph):
    ones = B.ones(shape, g.dtype)
    factors = op.backward_graph(Tensor._wrap(ones)) if graph else op.backward(ones)
    factors = factors if isinstance(factors, tuple) else (factors,)
    out = [(p, _entries(g, p, factors[i])) for i, p in inputs if factors[i] is not None and tuple(p.shape) == shape]
    if len(out) < len(inputs):
        out += _dense_others(op, g, inputs, shape, graph)
    return out


def _dense_others(op, g, inputs, shape, graph):
    """The dense gradients of ``op``'s inputs that the output broadcasts (``w * t`` for a 0-d ``t``
    that requires grad: torch sums the sparse product into ``t``'s shape, a dense tensor)."""
    dense = g.to_dense()
    grads = op.backward_graph(dense) if graph else op.backward(dense._data)
    grads = grads if isinstance(grads, tuple) else (grads,)
    fit = (lambda x, p: x) if graph else (lambda x, p: Tensor._wrap(fit_grad(x, p.shape, p.dtype)))
    return [(p, fit(grads[i], p)) for i, p in inputs if grads[i] is not None and tuple(p.shape) != shape]
