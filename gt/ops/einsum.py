"""Einstein summation: the equation read and checked (``parse``), and the op (``Einsum``).

``parse`` turns torch's equation language (implicit or explicit output, ``...``, spaces, a
subscript repeated within one operand for a diagonal) into the normal form every engine reads
(gt/backend/engine_scatter.py): letters only, ``...`` replaced by letters of its own, an
explicit output. Each operand's gradient is an einsum of the output gradient with the other
operands, put back into the operand's layout: a subscript the gradient cannot name (seen in
no other operand nor the output) is broadcast back, one that broadcast from size 1 is summed,
and a repeated subscript is written on the diagonal (zero elsewhere).
"""

import collections
import string

from gt import amp, dtypes
from gt.autograd import Function
from gt.backend import B
from gt.errors import ShapeError
from gt.ops.shape import AddAtIndex

# torch orders the implicit output as ASCII does: capitals first
LETTERS = string.ascii_uppercase + string.ascii_lowercase

Spec = collections.namedtuple("Spec", ["equation", "inputs", "output", "sizes"])


def _fail(equation, message):
    return ShapeError(f"einsum(): {message} (equation {equation!r})")


def _terms(equation):
    """``(input terms, output term or None)``: each term a list of letters and ``"..."``."""
    text = equation.replace(" ", "")
    if text.count("->") > 1 or text.replace("->", "").count("-") or text.replace("->", "").count(">"):
        raise _fail(equation, "'->' must appear at most once, between the inputs and the output")
    lhs, arrow, rhs = text.partition("->")
    terms = []
    for term in lhs.split(",") + ([rhs] if arrow else []):
        parts, rest = [], term
        while rest:
            if rest.startswith("..."):
                if "..." in parts:
                    raise _fail(equation, f"'...' appears twice in the subscripts {term!r}")
                parts.append("...")
                rest = rest[3:]
            elif rest[0] in LETTERS:
                parts.append(rest[0])
                rest = rest[1:]
            else:
                raise _fail(equation, f"invalid subscript {rest[0]!r} in {term!r}: subscripts are letters "
                                      "a-z and A-Z, with at most one '...'")
        terms.append(parts)
    return (terms[:-1], terms[-1]) if arrow else (terms, None)


def _expand(equation, terms, shapes, spare):
    """Each input term as a string of letters, ``...`` spelled with the last letters of ``spare``."""
    out = []
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        named = len(term) - ("..." in term)
        if named > len(shape) or ("..." not in term and named != len(shape)):
            raise _fail(equation, f"operand {k} has {len(shape)} dims (shape {shape}) but its subscripts "
                                  f"{''.join(term)!r} name {named}")
        dots = spare[len(spare) - (len(shape) - named):] if len(shape) > named else ""
        out.append("".join(dots if p == "..." else p for p in term))
    return out


def _sizes(equation, inputs, shapes):
    """Each letter's size over all operands: equal within one operand, broadcast (1 against n)
    between operands, as torch's einsum."""
    sizes = {}
    for k, (letters, shape) in enumerate(zip(inputs, shapes)):
        own = {}
        for letter, n in zip(letters, shape):
            if own.setdefault(letter, n) != n:
                raise _fail(equation, f"subscript {letter} is repeated in operand {k} (shape {shape}) with "
                                      f"different sizes, {own[letter]} and {n}")
        for letter, n in own.items():
            seen = sizes.setdefault(letter, n)
            if seen != n and 1 not in (seen, n):
                raise _fail(equation, f"subscript {letter} has size {n} in operand {k} (shape {shape}) but "
                                      f"size {seen} in an earlier operand; sizes must be equal or 1")
            sizes[letter] = n if seen == 1 else seen
    return sizes


def parse(equation, shapes):
    """The ``Spec`` of ``equation`` for operands of ``shapes``: its normal form, each operand's
    letters, the output's, and each letter's (broadcast) size. ValueError naming the equation
    and the operand for anything torch refuses.

        >>> parse("...ij,jk", [(5, 2, 3), (3, 4)]).equation
        'zij,jk->zik'
    """
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): the equation must be a string, got {type(equation).__name__}")
    terms, out_term = _terms(equation)
    if len(terms) != len(shapes):
        raise _fail(equation, f"the equation has subscripts for {len(terms)} operand(s) but {len(shapes)} "
                              "were given")
    used = {p for term in terms + [out_term or []] for p in term}
    spare = "".join(c for c in LETTERS if c not in used)
    # the dims '...' stands for: the most any operand leaves unnamed
    dots = max([len(s) - (len(t) - 1) for t, s in zip(terms, shapes) if "..." in t] + [0])
    if dots > len(spare):
        raise _fail(equation, f"'...' covers {dots} dims, more than the {len(spare)} letters left unused")
    spare = spare[len(spare) - dots:] if dots else ""
    inputs = _expand(equation, terms, shapes, spare)
    sizes = _sizes(equation, inputs, shapes)
    if out_term is None:
        counts = collections.Counter("".join(inputs))
        output = spare + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in spare))
    else:
        for p in out_term:
            if p != "..." and p not in sizes:
                raise _fail(equation, f"output subscript {p} appears in no input")
            if p != "..." and out_term.count(p) > 1:
                raise _fail(equation, f"output subscript {p} appears more than once in the output")
        output = "".join(spare if p == "..." else p for p in out_term)
    return Spec(",".join(inputs) + "->" + output, tuple(inputs), output, sizes)


class Einsum(Function):
    """The Einstein sum of the operands as ``spec`` (a ``parse`` result) says."""
    complex_graph = "holomorphic"

    def forward(self, *operands, spec):
        self.spec = spec
        # autocast: as torch's einsum, whose contractions are batched products (bmm), lowered there;
        # without a summed letter it multiplies, in float32
        low = amp.matmul_dtype(*operands)
        self.low = low if low is not None and _contracts(spec) else None
        if self.low is not None:
            operands = tuple(B.astype(a, self.low) for a in operands)
        # operand k is read only for the others' gradients (the sum is linear in each), as torch's
        # products save it: it may change in place after the forward where no other one needs a gradient
        needs = self.needs_input_grad
        self.metas = tuple((tuple(a.shape), B.dtype_of(a)) for a in operands)
        self.save(*(a if True in needs[:k] + needs[k + 1:] else None for k, a in enumerate(operands)))
        out = B.einsum(spec.equation, *operands)
        return out if self.low is None else B.astype(out, dtypes.float32)

    def backward(self, g):
        operands = self.saved
        if B.dtype_of(g).is_complex:     # torch's convention for complex operands (gt/ops/complex_ops.py)
            operands = tuple(None if a is None else B.conj(a) for a in operands)
        if self.low is not None:    # the upstream gradient rounded once; the gradients back in float32
            g = B.astype(g, self.low)
            return tuple(B.astype(_operand_grad(self.spec, k, g, operands, self.metas[k]), dtypes.float32)
                         if need else None for k, need in enumerate(self.needs_input_grad))
        return tuple(_operand_grad(self.spec, k, g, operands, self.metas[k]) if need else None
                     for k, need in enumerate(self.needs_input_grad))

    def backward_graph(self, g):
        return tuple(_operand_grad_graph(self.spec, k, g, self.inputs) if need else None
                     for k, need in enumerate(self.needs_input_grad))


def _contracts(spec):
    """Whether the equation sums a letter over two or more operands (a product torch lowers)."""
    return len(spec.inputs) > 1 and any(c not in spec.output for c in "".join(spec.inputs))


def _operand_grad_graph(spec, k, g, operands):
    """``_operand_grad`` with recorded ops on tensors (create_graph=True): the contraction is an
    ``Einsum`` itself, a diagonal's gradient an ``AddAtIndex``."""
    plan = _GradPlan(spec, k, operands[k].shape)
    others = [operands[j] for j in plan.others]
    grad = Einsum.apply(g, *others, spec=Spec(plan.equation, plan.inputs, plan.keep, spec.sizes))
    grad = grad.reshape(plan.kept_shape(grad.shape)).expand(plan.full)
    if plan.diagonal is None:
        return grad
    return AddAtIndex.apply(grad, tuple(operands[k].shape), operands[k].dtype, plan.diagonal)


def _operand_grad(spec, k, g, operands, meta):
    """The gradient of operand ``k`` (of shape and dtype ``meta``): the output gradient contracted
    with the other operands."""
    shape, dtype = meta
    plan = _GradPlan(spec, k, shape)
    grad = B.einsum(plan.equation, g, *(operands[j] for j in plan.others))
    grad = B.broadcast_to(B.reshape(grad, plan.kept_shape(grad.shape)), plan.full)
    if plan.diagonal is None:
        return B.copy(grad) if B.is_view(grad) else grad
    # a repeated letter read a diagonal: its gradient goes on that diagonal, zeros elsewhere
    full = B.zeros(shape, dtype)
    B.setitem(full, plan.diagonal, grad)
    return full


class _GradPlan:
    """How operand ``k``'s gradient is made: the contraction of the output gradient with the
    other operands (``equation``, naming the letters ``keep``), its axes back to the operand's
    distinct letters (the summed and the unnamed ones as size-1 axes, then each to its size:
    ``full``), and, where a letter repeats (a diagonal), the index that puts it there."""

    def __init__(self, spec, k, shape):
        letters = spec.inputs[k]
        own = dict(zip(letters, shape))
        self.distinct = distinct = "".join(dict.fromkeys(letters))
        self.others = [j for j in range(len(spec.inputs)) if j != k]
        named = set(spec.output).union(*(spec.inputs[j] for j in self.others))
        # a letter the gradient can name keeps its axis; one broadcast from size 1 here is summed
        self.keep = "".join(c for c in distinct if c in named and own[c] == spec.sizes[c])
        self.inputs = (spec.output,) + tuple(spec.inputs[j] for j in self.others)
        self.equation = ",".join(self.inputs) + "->" + self.keep
        self.full = tuple(own[c] for c in distinct)
        self.diagonal = None
        if len(distinct) != len(letters):
            index = []
            for c in letters:
                axes = [1] * len(distinct)
                axes[distinct.index(c)] = own[c]
                index.append(B.reshape(B.arange(0, own[c], 1, "int64"), tuple(axes)))
            self.diagonal = tuple(index)

    def kept_shape(self, shape):
        return tuple(shape[self.keep.index(c)] if c in self.keep else 1 for c in self.distinct)
