"""Property-based differential testing of the ops training code uses, gt beside torch.

Each example draws an op (elementwise unary, broadcasting binary, reductions, matmul, shape and
indexing ops), its arguments, and inputs of 0 to 4 dims (size-1 and size-0 dims, 0-d tensors) in
float32/float64 (int64/bool where the op takes them), each made in both libraries the same way,
sometimes as a non-contiguous view (transposed, permuted, sliced with a step, expanded) of a leaf.
It asserts the same shape, dtype and values, the same exception class where torch raises, and the
same gradients (``autograd.grad`` of a weighted sum of the outputs) for the float leaves.

In CI the examples are few and derandomized (a few seconds a pass). To hunt, run it with many:
``GT_FUZZ_EXAMPLES=5000 GT_FUZZ_LOG=/tmp/fuzz.log pytest tests/test_fuzz_torch_parity.py
--hypothesis-seed=N``: every difference is appended to the log (op, arguments, inputs) instead of
failing the first one, so one run lists them all.
"""

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import fuzz_draw
import gt

torch = pytest.importorskip("torch")

_EXAMPLES = int(os.environ.get("GT_FUZZ_EXAMPLES", "0") or 0)
_LOG = os.environ.get("GT_FUZZ_LOG", "")
FLOATS = ("float32", "float64")
_TOL = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-12)}


class Draw(fuzz_draw.Draw):
    """The draws with the few shapes of choice the op builders need."""

    def coin(self, p_true=0.5):
        return self.data.draw(st.floats(0, 1)) < p_true

    def size(self):
        return self.pick((1, 2, 3, 4, 1, 2, 3, 5, 0, 6, 9))     # 6 and 9 rows: several per device, uneven

    def shape(self, min_dims=0, max_dims=4):
        return tuple(self.size() for _ in range(self.int(min_dims, max_dims)))


class Arg:
    """One tensor input: its shape, dtype, how it is made (layout) and what values it holds."""

    def __init__(self, shape, dtype, layout, values, seed):
        self.shape, self.dtype, self.layout, self.values, self.seed = tuple(shape), dtype, layout, values, seed

    def __repr__(self):
        return f"Arg({self.shape}, {self.dtype}, {self.layout}, {self.values})"

    def base(self):
        """The leaf's values (before the layout's view) and the view's parameter."""
        rng = np.random.default_rng(self.seed)
        kind, param = self.layout
        shape = list(self.shape)
        if kind == "transposed":
            shape[-1], shape[-2] = shape[-2], shape[-1]
        elif kind == "stepped":
            shape[param] = 2 * shape[param] + 1
        elif kind == "expanded":
            shape = [1 if d in param else s for d, s in enumerate(shape)]
        elif kind == "permuted":
            shape = [self.shape[p] for p in param]
        if self.dtype == "bool":
            return rng.random(shape) < 0.5
        if self.dtype == "int64":
            return rng.integers(-4, 5, shape).astype(np.int64)
        if self.values == "ties":
            arr = rng.integers(-2, 3, shape).astype(np.float64)
        else:
            arr = rng.standard_normal(shape) * 1.5
        if self.values == "positive":
            arr = np.abs(arr) + 0.1
        return arr.astype(self.dtype)

    def make(self, m, grad):
        """(leaf, input) in library ``m``: the input is the layout's view of the leaf."""
        leaf = m.tensor(self.base())
        if grad and self.dtype in FLOATS:
            leaf.requires_grad_()
        kind, param = self.layout
        if kind == "transposed":
            x = leaf.transpose(-1, -2)
        elif kind == "stepped":
            x = leaf[(slice(None),) * param + (slice(1, None, 2),)]
        elif kind == "expanded":
            x = leaf.expand(*self.shape)
        elif kind == "permuted":
            x = leaf.permute(*[param.index(d) for d in range(len(param))])
        else:
            x = leaf
        return leaf, x


def draw_arg(d, shape, dtypes=FLOATS, values=None):
    dtype = d.pick(dtypes)
    kinds = ["contiguous", "contiguous"]
    if len(shape) >= 1:
        kinds.append("stepped")
    if len(shape) >= 2:
        kinds += ["transposed", "expanded"]
    if len(shape) >= 3:
        kinds.append("permuted")
    kind = d.pick(kinds)
    param = None
    if kind == "stepped":
        param = d.int(0, len(shape) - 1)
    elif kind == "expanded":
        ones = [i for i, s in enumerate(shape) if s in (0, 1)]
        param = tuple(i for i in range(len(shape)) if d.coin(0.4) and i not in ones) or (0,)
        if any(shape[i] == 0 for i in param):
            kind, param = "contiguous", None
    elif kind == "permuted":
        param = tuple(d.data.draw(st.permutations(range(len(shape)))))
    vals = values or d.pick(("normal", "normal", "ties"))
    return Arg(shape, dtype, (kind, param), vals, d.int(0, 2**31))


def _dim(d, ndim, name="dim"):
    """An int dim in range, negative half the time (a 0-d tensor takes 0 and -1)."""
    n = max(ndim, 1)
    return d.int(-n, n - 1, name)


def _dims(d, ndim, name="dim"):
    """A dim argument for the reductions that take several: int, tuple, sometimes invalid."""
    form = d.pick(("int", "tuple", "tuple", "bad"))
    if form == "int" or ndim == 0:
        return _dim(d, ndim, name)
    if form == "bad":
        return d.pick(((0, 0), (ndim,), (-ndim - 1,), (0, -ndim)), name)
    dims = tuple(i - ndim if d.coin() else i for i in range(ndim) if d.coin())
    d.notes[name] = dims
    return dims


def broadcast_partner(d, shape):
    """A shape that broadcasts with ``shape`` (leading dims dropped or added, dims set to 1);
    one in twelve is one that does not."""
    out = list(shape[d.int(0, len(shape)):])
    out = [1 if d.coin(0.3) else s for s in out]
    out = [d.pick((1, 2)) for _ in range(d.int(0, 1))] + out
    if out and d.coin(1 / 12):
        i = d.int(0, len(out) - 1)
        out[i] = out[i] + 2
    return tuple(out) if d.coin() else tuple(out)


# ---- the ops ------------------------------------------------------------------------------------
# Each builder draws the op's arguments and returns (args, fn): fn(m, *inputs) runs the op in
# library m (gt or torch), with the inputs made from args by Arg.make.

def _unary(d):
    table = {
        "exp": lambda m, x: x.exp(), "log": lambda m, x: m.log(x), "sqrt": lambda m, x: x.sqrt(),
        "tanh": lambda m, x: m.tanh(x), "sigmoid": lambda m, x: x.sigmoid(), "relu": lambda m, x: m.relu(x),
        "abs": lambda m, x: x.abs(), "neg": lambda m, x: -x, "rsqrt": lambda m, x: x.rsqrt(),
        "square": lambda m, x: x.square(), "sign": lambda m, x: x.sign(), "log1p": lambda m, x: x.log1p(),
        "reciprocal": lambda m, x: x.reciprocal(), "silu": lambda m, x: m.nn.functional.silu(x),
        "softplus": lambda m, x: m.nn.functional.softplus(x),
        "leaky_relu": lambda m, x: m.nn.functional.leaky_relu(x, 0.1),
        "sin": lambda m, x: x.sin(), "floor": lambda m, x: x.floor(),
    }
    name = d.pick(sorted(table) + ["gelu", "clamp", "pow", "rpow"], "op")
    # F's activations compute for integer and bool inputs where torch's kernels refuse them
    # (MISSING.md, "ninth pass": "small-int activations ... compute where torch refuses"; int64 and bool alike)
    kinds = FLOATS if name in ("gelu", "silu", "softplus", "leaky_relu") else FLOATS * 4 + ("int64", "bool")
    x = draw_arg(d, d.shape(), kinds, d.pick(("normal", "ties", "positive")))
    if name == "gelu":
        approximate = d.pick(("none", "tanh"), "approximate")
        return [x], lambda m, t: m.nn.functional.gelu(t, approximate=approximate)
    if name == "clamp":
        lo = d.pick((None, -0.5, 0.0, 1.0, -1), "min")
        hi = d.pick((None, 0.5, 2.0, -1.0, 1), "max")
        if d.coin(0.3):
            return [x], lambda m, t: t.clamp(lo, hi)
        return [x], lambda m, t: m.clamp(t, min=lo, max=hi)
    if name in ("pow", "rpow"):
        e = d.pick((0.5, 2.0, 2, 3, -1.0, 0.0, 1.5, -0.5, 1, -2, 0), "exponent")
        if name == "rpow":
            base = abs(e) + d.pick((0, 0.5), "shift")
            return [x], lambda m, t: base ** t
        if d.coin():
            return [x], lambda m, t: t ** e
        return [x], lambda m, t: m.pow(t, e)
    return [x], table[name]


_BINARY = {
    "add": lambda m, a, b: a + b, "sub": lambda m, a, b: a - b, "mul": lambda m, a, b: a * b,
    "div": lambda m, a, b: a / b, "add_fn": lambda m, a, b: m.add(a, b), "mul_fn": lambda m, a, b: m.mul(a, b),
    "sub_alpha": lambda m, a, b: m.sub(a, b, alpha=2), "div_fn": lambda m, a, b: m.div(a, b),
    "div_floor": lambda m, a, b: m.div(a, b, rounding_mode="floor"),
    "div_trunc": lambda m, a, b: m.div(a, b, rounding_mode="trunc"),
    "floordiv": lambda m, a, b: a // b, "remainder": lambda m, a, b: a % b,
    "maximum": lambda m, a, b: m.maximum(a, b), "minimum": lambda m, a, b: m.minimum(a, b),
    "eq": lambda m, a, b: a == b, "ne": lambda m, a, b: a != b, "lt": lambda m, a, b: a < b,
    "le": lambda m, a, b: m.le(a, b), "gt": lambda m, a, b: a > b, "ge": lambda m, a, b: a >= b,
    "pow_tensor": lambda m, a, b: a ** b, "atan2": lambda m, a, b: m.atan2(a, b),
    "clamp_min_t": lambda m, a, b: m.clamp(a, min=b), "clamp_max_t": lambda m, a, b: a.clamp(max=b),
    "clamp_both_t": lambda m, a, b: a.clamp(b, b + 1), "lerp": lambda m, a, b: m.lerp(a, b, 0.3),
}


def _binary(d):
    name = d.pick(sorted(_BINARY) + ["where", "scalar"], "op")
    shape = d.shape()
    dtypes = FLOATS * 3 + ("int64", "bool")
    a = draw_arg(d, shape, dtypes)
    if name == "scalar":
        op = d.pick(("add", "sub", "mul", "div", "rsub", "rdiv", "maximum_0d", "lt", "pow_tensor", "floordiv"), "sop")
        s = d.pick((2, -1, 0.5, 0, True, 2.5, -3.0), "scalar")
        fns = {"add": lambda m, t: t + s, "sub": lambda m, t: t - s, "mul": lambda m, t: s * t,
               "div": lambda m, t: t / s, "rsub": lambda m, t: s - t, "rdiv": lambda m, t: s / t,
               "maximum_0d": lambda m, t: m.maximum(t, m.tensor(s)), "lt": lambda m, t: t < s,
               "pow_tensor": lambda m, t: t ** m.tensor(s), "floordiv": lambda m, t: t // s}
        return [a], fns[op]
    b = draw_arg(d, broadcast_partner(d, shape), dtypes)
    if d.coin(0.5):
        a, b = b, a
    if name == "where":
        c = draw_arg(d, broadcast_partner(d, shape), ("bool",))
        if d.coin(0.3):
            s = d.pick((0.0, 1, -2.5), "scalar")
            return [c, a], lambda m, cond, x: m.where(cond, x, s)
        if d.coin():
            return [c, a, b], lambda m, cond, x, y: x.where(cond, y)
        return [c, a, b], lambda m, cond, x, y: m.where(cond, x, y)
    return [a, b], _BINARY[name]


def _reduction(d):
    name = d.pick(("sum", "mean", "amax", "amin", "var", "std", "logsumexp", "softmax", "log_softmax",
                   "argmax", "argmin", "max_dim", "min_dim", "max_all", "prod", "cumsum", "sum_all",
                   "mean_all", "var_all"), "op")
    shape = d.shape()
    ndim = len(shape)
    # not mean: gt averages int64 and bool tensors in float32 (Tensor.mean's docstring, the public gt's
    # numpy-like convention) where torch refuses them
    dtypes = FLOATS * 4 + ("int64", "bool") if name in ("sum", "amax", "argmax", "prod", "max_dim", "cumsum",
                                                         "sum_all", "max_all") else FLOATS
    x = draw_arg(d, shape, dtypes)
    keepdim = d.pick((False, True), "keepdim")
    if name in ("sum", "mean", "amax", "amin", "logsumexp"):
        dim = _dims(d, ndim)
        if d.coin(0.3):
            return [x], lambda m, t: getattr(m, name)(t, dim, keepdim)
        return [x], lambda m, t: getattr(t, name)(dim=dim, keepdim=keepdim)
    if name in ("var", "std"):
        dim = _dims(d, ndim) if d.coin(0.8) else None
        # always with correction= or unbiased=: gt's var/std default to ddof=0 like numpy (README,
        # "Differences from PyTorch worth knowing"), torch's to the unbiased estimate
        form = d.pick(("correction", "unbiased"), "form")
        if dim == ():
            # torch 2.13 reads dim=() as every dim forward but as no dim in var/std's backward: its
            # gradients are n times too large (inf with correction=1); gt's agree with finite differences
            d.notes["torch_grad_wrong"] = True
        if form == "correction":
            c = d.pick((0, 1, 2), "correction")
            return [x], lambda m, t: getattr(t, name)(dim=dim, correction=c, keepdim=keepdim)
        if form == "unbiased":
            u = d.pick((False, True), "unbiased")
            return [x], lambda m, t: getattr(m, name)(t, dim, unbiased=u, keepdim=keepdim)
    if name in ("softmax", "log_softmax"):
        dim = _dim(d, ndim)
        if d.coin():
            return [x], lambda m, t: getattr(m.nn.functional, name)(t, dim=dim)
        return [x], lambda m, t: getattr(t, name)(dim)
    if name in ("argmax", "argmin"):
        dim = _dim(d, ndim) if d.coin(0.7) else None
        return [x], lambda m, t: getattr(t, name)(dim=dim, keepdim=keepdim)
    if name in ("max_dim", "min_dim"):
        dim = _dim(d, ndim)
        fn = name[:3]
        # dim= by name: `x.max(1)` gives values only in gt (MISSING.md, "max/min in torch's spellings")
        return [x], lambda m, t: tuple(getattr(m, fn)(t, dim=dim, keepdim=keepdim))
    if name == "max_all":
        return [x], lambda m, t: t.max()
    if name in ("prod", "cumsum"):
        dim = _dim(d, ndim)
        return [x], lambda m, t: getattr(t, name)(dim)
    if name == "var_all":
        c = d.pick((0, 1), "correction")
        return [x], lambda m, t: t.var(correction=c)
    return [x], lambda m, t: getattr(t, name[:-4])()


def _matmul(d):
    n, k, p = d.size(), d.size(), d.size()
    ra, rb = d.int(1, 4, "rank_a"), d.int(1, 4, "rank_b")
    batch = d.shape(0, 2)
    a_shape = (k,) if ra == 1 else tuple(1 if d.coin(0.3) else s for s in batch[len(batch) - (ra - 2):]) + (n, k) \
        if ra > 2 else (n, k)
    kb = k + 1 if d.coin(1 / 15) else k
    b_shape = (kb,) if rb == 1 else tuple(1 if d.coin(0.3) else s for s in batch[len(batch) - (rb - 2):]) + (kb, p) \
        if rb > 2 else (kb, p)
    a, b = draw_arg(d, a_shape), draw_arg(d, b_shape)
    if 0 in a_shape + b_shape:      # torch checks the two dtypes only where the product has terms
        b.dtype = a.dtype
    form = d.pick(("op", "fn", "method"), "form")
    return [a, b], {"op": lambda m, x, y: x @ y, "fn": lambda m, x, y: m.matmul(x, y),
                    "method": lambda m, x, y: x.matmul(y)}[form]


def _factor_shape(d, numel, ndim):
    """A shape of ``numel`` elements (one -1 sometimes), or a wrong one now and then."""
    out, left = [], numel
    for _ in range(ndim - 1):
        f = d.pick([f for f in range(1, 6) if left % f == 0] if left else [0, 1, 2])
        out.append(f)
        left = left // f if f else left
    out.append(left if numel else 0)
    if out and d.coin(0.3) and all(out):
        out[d.int(0, len(out) - 1)] = -1
    if d.coin(1 / 15):
        out.append(2 if numel else 3)
    return tuple(out)


def _shape_op(d):
    name = d.pick(("reshape", "view", "permute", "transpose", "flatten", "unsqueeze", "squeeze", "expand", "cat",
                   "stack", "split", "chunk", "unbind", "gather", "index_select", "select", "narrow", "repeat",
                   "flip", "movedim"), "op")
    shape = d.shape()
    ndim = len(shape)
    x = draw_arg(d, shape, FLOATS * 4 + ("int64", "bool"))
    if name in ("reshape", "view"):
        target = _factor_shape(d, int(np.prod(shape)), d.int(0, 4))
        d.notes["target"] = target
        if d.coin() and target:
            return [x], lambda m, t: getattr(t, name)(*target)
        return [x], lambda m, t: getattr(t, name)(target)
    if name == "permute":
        perm = [p - ndim if d.coin(0.3) else p for p in d.data.draw(st.permutations(range(ndim)))]
        d.notes["perm"] = perm
        return [x], lambda m, t: t.permute(*perm) if perm else t.permute(perm)
    if name in ("transpose", "movedim"):
        d0, d1 = _dim(d, ndim, "d0"), _dim(d, ndim, "d1")
        return [x], lambda m, t: getattr(m, name)(t, d0, d1)
    if name == "flatten":
        s, e = _dim(d, ndim, "start"), _dim(d, ndim, "end")
        return [x], lambda m, t: t.flatten(s, e)
    if name == "unsqueeze":
        dim = d.int(-ndim - 1, ndim, "dim")
        return [x], lambda m, t: t.unsqueeze(dim)
    if name == "squeeze":
        dim = _dims(d, ndim) if d.coin(0.8) else None
        return [x], lambda m, t: t.squeeze() if dim is None else t.squeeze(dim)
    if name == "expand":
        target = [d.pick((1, 2)) for _ in range(d.int(0, 2))] + [
            d.pick((-1, s, 3) if s == 1 else (-1, s)) for s in shape]
        d.notes["target"] = target
        return [x], lambda m, t: t.expand(*target) if target else t.expand(target)
    if name in ("cat", "stack"):
        dim = d.int(-ndim - (name == "stack"), -1 if ndim else 0, "dim")
        shape2 = list(shape)
        if name == "cat" and ndim:
            shape2[dim] = d.size()
        y = draw_arg(d, tuple(shape2), FLOATS + ("int64",))
        return [x, y], lambda m, a, b: getattr(m, name)([a, b], dim)
    if name in ("split", "chunk", "unbind"):
        dim = _dim(d, ndim)
        if name == "unbind":
            return [x], lambda m, t: tuple(t.unbind(dim))
        size = shape[dim] if ndim else 0
        arg = d.pick((1, 2, 3)) if name == "chunk" or d.coin() else _factor_list(d, size)
        d.notes["arg"] = arg
        return [x], lambda m, t: tuple(getattr(t, name)(arg, dim))
    if name in ("gather", "index_select", "select", "narrow"):
        return [x], _index_op(d, name, shape)
    if name == "repeat":
        reps = [d.pick((1, 2, 0)) for _ in range(ndim + d.int(0, 1))]
        d.notes["reps"] = reps
        return [x], lambda m, t: t.repeat(*reps) if reps else t.repeat(reps)
    dims = _dims(d, ndim)
    return [x], lambda m, t: t.flip(dims if isinstance(dims, tuple) else (dims,))


def _factor_list(d, size):
    parts, left = [], size
    while left > 0:
        parts.append(d.int(0, left))
        left -= parts[-1]
        if len(parts) > 4:
            parts.append(left)
            break
    return parts or [0]


def _index_op(d, name, shape):
    ndim = len(shape)
    dim = _dim(d, ndim)
    size = shape[dim] if ndim else 1
    rng = np.random.default_rng(d.int(0, 2**31))
    if name == "gather":
        ishape = tuple(min(s, d.size()) if i != dim or True else s for i, s in enumerate(shape))
        idx = rng.integers(0, max(size, 1), ishape) if size else np.zeros(ishape, np.int64)
        return lambda m, t: t.gather(dim, m.tensor(idx))
    if name == "index_select":
        idx = rng.integers(0, max(size, 1), d.int(0, 4)) if size else np.zeros(0, np.int64)
        return lambda m, t: m.index_select(t, dim, m.tensor(idx))
    if name == "select":
        i = d.int(-size, size - 1, "index") if size else 0
        return lambda m, t: t.select(dim, i)
    start = d.int(-size, size, "start") if size else 0
    length = d.int(0, max(size - (start % max(size, 1)), 0), "length")
    return lambda m, t: t.narrow(dim, start, length)


def _index_token(d, size, rng):
    """One index component for a dim of ``size`` (None and ... take none)."""
    kind = d.pick(("int", "slice", "slice", "list", "tensor", "bool", "none", "tensor2d", "int0d", "pybool"))
    if kind in ("int", "int0d") and size:
        return kind, int(rng.integers(-size, size))
    if kind == "tensor2d":
        return kind, rng.integers(-size, size, (2, d.int(0, 2))).tolist() if size else [[], []]
    if kind == "pybool":
        return kind, d.pick((True, False))
    if kind == "slice":
        start, stop = d.pick((None, 0, 1, -1, -2)), d.pick((None, 2, -1, 5))
        return kind, (start, stop, d.pick((None, 1, 2, 3)))
    if kind in ("list", "tensor"):
        n = d.int(0, 3)
        return kind, [int(v) for v in rng.integers(-size, size, n)] if size else []
    if kind == "bool":
        return kind, [bool(v) for v in rng.random(size) < 0.5]
    if kind == "none":
        return kind, None
    return "slice", (None, None, None)


def _realize(m, token):
    kind, v = token
    if kind == "slice":
        return slice(*v)
    if kind in ("tensor", "tensor2d", "int0d"):
        return m.tensor(v, dtype=m.int64)
    if kind == "bool":
        return m.tensor(v, dtype=m.bool)
    if kind == "ellipsis":
        return Ellipsis
    return v


def _getitem(d):
    shape = d.shape(1, 4)
    x = draw_arg(d, shape, FLOATS * 4 + ("int64",))
    rng = np.random.default_rng(d.int(0, 2**31))
    tokens, dim = [], 0
    ellipsis_at = d.int(0, len(shape) + 3) if d.coin(0.3) else -1
    n_tokens = d.int(1, len(shape) + 1)
    for i in range(n_tokens):
        if i == ellipsis_at:
            tokens.append(("ellipsis", None))
            dim = len(shape) - (n_tokens - i - 1)
            continue
        size = shape[dim] if 0 <= dim < len(shape) else 0
        token = _index_token(d, size, rng)
        if token[0] == "bool" and dim >= len(shape):
            token = ("none", None)
        elif token[0] == "bool" and dim + 1 < len(shape) and d.coin(0.3):     # a mask over two dims
            token = ("bool", (rng.random(shape[dim:dim + 2]) < 0.5).tolist())
            dim += 1
        tokens.append(token)
        dim += token[0] not in ("none", "pybool")
    d.notes["index"] = tokens
    return [x], lambda m, t: t[tuple(_realize(m, tok) for tok in tokens)]


def _int_array(d, high, shape):
    """Class indices (or embedding rows) in [0, high), made in each library from one array."""
    return np.random.default_rng(d.int(0, 2**31)).integers(0, max(high, 1), shape)


def _training(d):
    """The nn.functional calls of a training step: linear, losses, norms, embedding, masks."""
    name = d.pick(("linear", "cross_entropy", "nll_loss", "mse_loss", "bce_logits", "layer_norm", "embedding",
                   "masked_fill", "tril", "normalize", "pad", "einsum"), "op")
    fn_of = lambda m, attr: getattr(m.nn.functional, attr)
    if name == "linear":
        lead, n_in, n_out = d.shape(0, 2), d.size(), d.size()
        x, w = draw_arg(d, lead + (n_in,)), draw_arg(d, (n_out, n_in))
        if d.coin():
            b = draw_arg(d, (n_out,))
            b.dtype = w.dtype       # torch adds a bias of another dtype where out_features is 1, else refuses
            return [x, w, b], lambda m, a, wt, bias: fn_of(m, "linear")(a, wt, bias)
        return [x, w], lambda m, a, wt: fn_of(m, "linear")(a, wt)
    if name in ("cross_entropy", "nll_loss"):
        n, c = d.size(), d.pick((1, 2, 3, 5))
        extra = d.shape(0, 1)
        x = draw_arg(d, (n, c) + extra if d.coin(0.8) else (c,) + extra[:0])
        target = _int_array(d, c, (n,) + extra if x.shape[0] == n and len(x.shape) > 1 else ())
        kwargs = {"reduction": d.pick(("mean", "sum", "none"), "reduction")}
        if d.coin(0.3):
            kwargs["ignore_index"] = d.pick((0, -100, 1), "ignore_index")
        if name == "cross_entropy" and d.coin(0.3):
            kwargs["label_smoothing"] = d.pick((0.1, 0.0), "label_smoothing")
        d.notes["kwargs"] = kwargs
        if name == "nll_loss":
            return [x], lambda m, a: fn_of(m, "nll_loss")(a.log_softmax(1 if a.ndim > 1 else 0), m.tensor(target),
                                                           **kwargs)
        return [x], lambda m, a: fn_of(m, "cross_entropy")(a, m.tensor(target), **kwargs)
    if name in ("mse_loss", "bce_logits"):
        shape = d.shape()
        x, y = draw_arg(d, shape), draw_arg(d, shape, values="positive")
        reduction = d.pick(("mean", "sum", "none"), "reduction")
        attr = "mse_loss" if name == "mse_loss" else "binary_cross_entropy_with_logits"
        if name == "bce_logits":
            return [x, y], lambda m, a, b: fn_of(m, attr)(a, b.clamp(0, 1), reduction=reduction)
        return [x, y], lambda m, a, b: fn_of(m, attr)(a, b, reduction=reduction)
    if name == "layer_norm":
        # no empty normalized dim: gt refuses normalized_shape with a 0 (listed in the report), torch normalizes nothing
        shape = tuple(n or 1 for n in d.shape(1, 4))
        k = d.int(1, len(shape), "normalized_dims")
        x = draw_arg(d, shape)
        if d.coin():
            w, b = draw_arg(d, shape[-k:]), draw_arg(d, shape[-k:])
            return [x, w, b], lambda m, a, wt, bias: fn_of(m, "layer_norm")(a, shape[-k:], wt, bias, 1e-5)
        return [x], lambda m, a: fn_of(m, "layer_norm")(a, shape[-k:])
    if name == "embedding":
        rows, dim = d.pick((1, 3, 5)), d.size()
        w = draw_arg(d, (rows, dim))
        idx = _int_array(d, rows, d.shape(0, 2))
        pad = d.pick((None, 0, -1), "padding_idx")
        return [w], lambda m, wt: fn_of(m, "embedding")(m.tensor(idx), wt, padding_idx=pad)
    if name == "masked_fill":
        shape = d.shape()
        x, mask = draw_arg(d, shape, FLOATS + ("int64",)), draw_arg(d, broadcast_partner(d, shape), ("bool",))
        value = d.pick((0.0, -1e9, float("-inf"), 2), "value")
        return [x, mask], lambda m, a, mk: a.masked_fill(mk, value)
    if name == "tril":
        x = draw_arg(d, d.shape(2, 4))
        k = d.int(-2, 2, "diagonal")
        attr = d.pick(("tril", "triu"), "which")
        return [x], lambda m, a: getattr(m, attr)(a, k)
    if name == "normalize":
        shape = d.shape(1, 3)
        x, dim = draw_arg(d, shape), _dim(d, len(shape))
        p = d.pick((2, 1, float("inf")), "p")
        return [x], lambda m, a: fn_of(m, "normalize")(a, p=p, dim=dim)
    if name == "pad":
        shape = d.shape(1, 3)
        x = draw_arg(d, shape)
        pads = tuple(d.int(-1, 2) for _ in range(2 * d.int(1, len(shape))))
        d.notes["pads"] = pads
        return [x], lambda m, a: fn_of(m, "pad")(a, pads, value=0.5)
    n, k, p = d.size(), d.size(), d.size()
    eq = d.pick(("ij,jk->ik", "bij,bjk->bik", "ij->ji", "ii->i", "ij,ij->i", "i,j->ij", "bi,bi->b", "ij->"), "eq")
    shapes = {"ij,jk->ik": [(n, k), (k, p)], "bij,bjk->bik": [(p, n, k), (p, k, n)], "ij->ji": [(n, k)],
              "ii->i": [(n, n)], "ij,ij->i": [(n, k), (n, k)], "i,j->ij": [(n,), (k,)], "bi,bi->b": [(n, k), (n, k)],
              "ij->": [(n, k)]}[eq]
    args = [draw_arg(d, sh) for sh in shapes]
    for a in args[1:]:      # torch's einsum refuses two dtypes, but not where a contracted dim is 1 (it multiplies)
        a.dtype = args[0].dtype
    return args, lambda m, *ts: m.einsum(eq, *ts)


FAMILIES = {"unary": _unary, "binary": _binary, "reduction": _reduction, "matmul": _matmul, "shape": _shape_op,
            "getitem": _getitem,
            "training": _training}


# ---- running one example in both libraries -------------------------------------------------------
def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _dtype(t):
    return str(t.dtype).split(".")[-1]


def _run(m, args, fn, d):
    leaves, inputs = zip(*(a.make(m, True) for a in args)) if args else ((), ())
    try:
        out = fn(m, *inputs)
    except Exception as e:      # noqa: BLE001 - the class is what is compared
        return e, leaves, None
    return None, leaves, _outputs(out)


def _grads(m, leaves, outs, seed):
    grads_of = [leaf for leaf in leaves if leaf.requires_grad]
    floats = [o for o in outs if hasattr(o, "dtype") and _dtype(o) in FLOATS and o.requires_grad]
    if not grads_of or not floats:
        return None
    rng = np.random.default_rng(seed)
    loss = sum((o * m.tensor(rng.standard_normal(tuple(o.shape)).astype(_dtype(o)))).sum() for o in floats)
    try:
        grads = m.autograd.grad(loss, grads_of, allow_unused=True)
    except Exception as e:      # noqa: BLE001
        return e
    return [np.zeros(tuple(leaf.shape), _dtype(leaf)) if g is None else g.detach().numpy()
            for g, leaf in zip(grads, grads_of)]


def _same_error(gerr, terr, what):
    assert gerr is not None, f"{what}: torch raises {type(terr).__name__}: {terr}; gt gives a result"
    assert isinstance(gerr, type(terr)), \
        f"{what}: torch raises {type(terr).__name__}: {terr}; gt raises {type(gerr).__name__}: {gerr}"


def _compare_values(g, t, what, rtol_of):
    assert g.shape == t.shape, f"{what}: shape {g.shape}, torch {t.shape}"
    assert g.dtype == t.dtype, f"{what}: dtype {g.dtype}, torch {t.dtype}"
    rtol, atol = rtol_of(str(t.dtype))
    if t.dtype.kind == "f":
        np.testing.assert_allclose(g, t, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(g, t, err_msg=what)


# an op on each float output, sometimes: results of the op (sharded, partial, views) flowing into the next
_THEN = {
    "square": lambda m, o: o * o,
    "sum(-1)": lambda m, o: o.sum(-1) if o.ndim else o,
    "mean(0, keepdim)": lambda m, o: o.mean(0, keepdim=True) if o.ndim else o,
    "exp(-abs)": lambda m, o: (-o.abs()).exp(),
    "o @ o.mT": lambda m, o: o @ o.mT if o.ndim >= 2 else o,
    "softmax(0)": lambda m, o: o.softmax(0),
    "reshape(-1)[::2]": lambda m, o: o.reshape(-1)[::2],
    "+ o.sum()": lambda m, o: o + o.sum(),
}


def _then(d, fn):
    if d.notes.get("op") in ("var", "std", "var_all"):     # their outputs are checked for no spread below
        return fn
    name = d.pick(["none"] * 8 + sorted(_THEN), "then")
    if name == "none":
        return fn
    post = _THEN[name]

    def chained(m, *inputs):
        outs = _outputs(fn(m, *inputs))
        return tuple(post(m, o) if _dtype(o) in FLOATS else o for o in outs)
    return chained


def check_example(d, family):
    args, fn = FAMILIES[family](d)
    fn = _then(d, fn)
    d.notes["args"] = args
    seed = d.int(0, 2**31)
    terr, tleaves, touts = _run(torch, args, fn, d)
    gerr, gleaves, gouts = _run(gt, args, fn, d)
    if terr is not None:
        _same_error(gerr, terr, "forward")
        return
    if gerr is not None:
        raise AssertionError(f"forward: torch gives a result; gt raises {type(gerr).__name__}: {gerr}")
    assert len(gouts) == len(touts), f"{len(gouts)} outputs, torch {len(touts)}"
    # float64 inputs meeting float32 ones give float32 results, and torch sums their gradients in float32
    low = "float32" if any(a.dtype == "float32" for a in args) else None
    scale = 10 if family == "matmul" or d.notes.get("op") in ("var", "std", "logsumexp", "softmax", "log_softmax",
                                                              "var_all", "prod", "cumsum", "layer_norm", "normalize",
                                                              "cross_entropy", "nll_loss", "einsum") else 1

    def tol(dtype):
        rtol, atol = _TOL[low or dtype] if dtype in _TOL else (0, 0)
        return rtol * scale, atol * scale
    for i, (g, t) in enumerate(zip(gouts, touts)):
        assert _dtype(g) == _dtype(t), f"output {i}: dtype {g.dtype}, torch {t.dtype}"
        _compare_values(g.detach().numpy(), t.detach().numpy(), f"output {i}", tol)
    if d.notes.get("torch_grad_wrong"):
        return
    if d.notes.get("op") in ("var", "std", "var_all") and not all(
            np.all(np.isfinite(t.detach().numpy()) & (t.detach().numpy() > 1e-4)) for t in touts):
        # var/std at (next to) no spread, or with correction >= the count, have no derivative: torch's gradient
        # there follows its rounding of the mean (std of equal values) or its unclamped 1 / (count - correction)
        return
    tgrads, ggrads = _grads(torch, tleaves, touts, seed), _grads(gt, gleaves, gouts, seed)
    if isinstance(tgrads, Exception):
        if any(a.dtype == "bool" for a in args):
            return      # torch's backward formulas negate or subtract a bool input (atan2, pow): torch's own failure
        _same_error(ggrads if isinstance(ggrads, Exception) else None, tgrads, "backward")
        return
    if isinstance(ggrads, Exception):
        raise AssertionError(f"backward: torch gives gradients; gt raises {type(ggrads).__name__}: {ggrads}")
    assert (ggrads is None) == (tgrads is None), f"gradients: gt {ggrads is not None}, torch {tgrads is not None}"
    for i, (g, t) in enumerate(zip(ggrads or (), tgrads or ())):
        _compare_values(g, t, f"gradient of input {i}", tol)


# ---- the test ------------------------------------------------------------------------------------
_HUNT = _EXAMPLES > 0
_SETTINGS = settings(
    max_examples=_EXAMPLES or 30, deadline=None, derandomize=not _HUNT, database=None,
    phases=[Phase.generate] if _HUNT else [Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("family", sorted(FAMILIES))
@_SETTINGS
@given(data=st.data())
def test_op_matches_torch(family, data):
    d = Draw(data)
    try:
        check_example(d, family)
    except AssertionError as e:
        if not _LOG:
            raise
        with open(_LOG, "a") as f:
            f.write(json.dumps({"family": family, "notes": repr(d.notes), "error": str(e)[:600],
                                "env": {k: v for k, v in os.environ.items() if k.startswith("GT_")}}) + "\n")
