"""Elementwise ops, broadcasting like numpy. The autograd engine sums each
gradient back down to its input's shape, so backward here returns full-shape grads."""

from gt import dtypes
from gt.autograd import Function
from gt.backend import B
from gt.ops._graph import const, mask_like, recorded, result
from gt.ops.complex_slopes import exponent_slope, sgn_graph
from gt.ops.where import Where


class Add(Function):
    complex_graph = True       # real coefficients: its recorded gradient is right for complex tensors too

    def forward(self, a, b):
        return B.add(a, b)      # the engine may keep the memory (a residual sum is large)

    def backward(self, g):
        return g, g

    def backward_graph(self, g):
        return g, g


def _operand_is_number(node, i):
    """Whether operand ``i`` of a recorded binary op was a Python number (torch names such nodes
    apart: ``1 - x`` is RsubBackward1, ``2 ** x`` PowBackward2)."""
    inputs = getattr(node, "inputs", None) or ()
    return len(inputs) > i and isinstance(inputs[i], (int, float)) and not isinstance(inputs[i], bool)


class Sub(Function):
    _torch_name = property(lambda self: "RsubBackward1" if _operand_is_number(self, 0) else "SubBackward0")
    complex_graph = True

    def forward(self, a, b):
        return B.iterator_layout(a - b, a, b)      # torch's layout where a's and b's differ

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)

    def backward_graph(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    complex_graph = "holomorphic"

    def forward(self, a, b, scalar=False):
        # each factor is read only for the other's gradient, so only that is kept (as torch): a
        # tensor scaled by a constant may then be changed in place before the backward
        na, nb = self.needs_input_grad
        self.save(a if nb else None, b if na else None)
        if scalar:       # b: a composite's number (add's alpha, lerp's weight), kept by torch as no tensor
            self.keeps_scalar = True
        return B.multiply(a, b)

    def backward(self, g):
        a, b = self.saved
        na, nb = self.needs_input_grad
        # conj: torch's convention for complex operands (gt/ops/complex_ops.py); a real one is kept
        return (g * B.conj(b) if na else None), (g * B.conj(a) if nb else None)

    def backward_graph(self, g):
        a, b = self.inputs
        na, nb = self.needs_input_grad
        return (g * b if na else None), (g * a if nb else None)

    def tangent(self, ta, tb, _scalar=None):
        """Forward AD (gt/autograd/forward_ad.py): ``a' b + a b'`` (a tangent None: none)."""
        a, b = self.saved
        if ta is None or tb is None:
            return B.multiply(ta, b) if tb is None else B.multiply(a, tb)
        return B.multiply(ta, b) + B.multiply(a, tb)


def _times_number(r, a):
    """``r * a`` as torch's kernel does for a float16/bfloat16 ``r``: in float32, rounded once (35010 not 35008)."""
    dt = B.dtype_of(r)
    if dt is dtypes.float16 or dt is dtypes.bfloat16:
        return B.astype(B.multiply(B.astype(r, dtypes.float32), a), dt)
    return B.multiply(r, a)


class Div(Function):
    """``a / b``. ``reciprocal``: ``1 / b`` as torch's ``reciprocal`` (``rsqrt``), which saves its
    result, so changing the result in place before the backward raises (``1 / x`` does not)."""
    complex_graph = "holomorphic"

    def forward(self, a, b, reciprocal=False):
        if _is_number(a):
            # torch's c / x is x.reciprocal() * c: rounded twice (c / x rounded once differs from it
            # in about a quarter of the elements, by an ulp); its backward reads the reciprocal (a
            # tensor of its own, even for 1 / x), never x: x, and the result, may change in place after
            r = 1.0 / b
            # (``1 / z`` multiplies still where z is complex: torch's (inf+nanj) * 1 is nan+nanj)
            out = r if a == 1 and (reciprocal or not B.dtype_of(r).is_complex) else _times_number(r, a)
            if self.needs_input_grad[1]:
                self.save(a, None, out if reciprocal else B.copy(out) if a == 1 else r)
                self.reciprocal = reciprocal
            return out
        self.save(a if self.needs_input_grad[1] else None, b, None)   # a only for b's gradient, as torch
        return B.iterator_layout(a / b, a, b)

    def backward(self, g):
        a, b, r = self.saved
        na, nb = self.needs_input_grad
        if r is not None:                      # a number over x: -a / x**2 = -a r r
            return None, -(g if a == 1 else g * B.conj(a)) * B.conj(r * r)
        ga = g / B.conj(b) if na else None
        gb = -g * B.conj((a / b) / b) if nb else None      # torch's order: no underflow of b * b to 0
        return ga, gb

    def backward_graph(self, g):
        a, b = self.inputs
        na, nb = self.needs_input_grad
        if _is_number(a):
            r = self._graph_reciprocal()
            return None, -(g if a == 1 else g * a) * (r * r)
        return (g / b if na else None), (-g * ((a / b) / b) if nb else None)

    def _graph_reciprocal(self):
        """``1 / b`` for the recorded gradient of a number over ``b``: the reciprocal saved, as a
        tensor whose gradient is torch's reciprocal's (``b`` may change in place after the forward,
        as in torch). ``reciprocal()`` saves its result; torch's ``a / x`` is ``x.reciprocal() * a``,
        a node of its own here."""
        r = self.saved[2]
        if self.reciprocal:
            return result(self, r)
        op = Div()
        op.needs_input_grad, op.inputs, op.reciprocal = (False, True), (1.0, self.inputs[1]), True
        op.save(1.0, None, r)
        return recorded(op, r)


class Pow(Function):
    """``a ** b``; either side may be a Python number (``x ** 2``, ``2 ** x``)."""
    complex_graph = "holomorphic"

    _torch_name = property(lambda self: "PowBackward2" if _operand_is_number(self, 0) else
                           "PowBackward0" if _operand_is_number(self, 1) else "PowBackward1")

    def forward(self, a, b):
        # a negative base with a fractional exponent is NaN and 0 ** -1 inf, silently as torch
        with B.quiet_float_errors():
            out = B.power(a, b)
        # the result only for the exponent's gradient (none for a number), as torch saves it
        self.save(a, b, None if _is_number(b) else out)
        return out

    def backward(self, g):
        with B.quiet_float_errors():
            return self._grads(g)

    def _grads(self, g):
        a, b, out = self.saved
        na, nb = self.needs_input_grad
        ga = gb = None
        if na:
            if _is_number(b) and b == 0:
                ga = B.zeros(tuple(g.shape), B.dtype_of(g))  # x ** 0 is constant, also at x == 0
            else:
                # where an exponent array is 0 use a ** 0: the term is then 0 * 1, even at a == 0 (as torch)
                ga = g * B.conj(b * a ** ((b if _is_number(b) else B.where(b == 0, 1, b)) - 1))
        if nb:
            if _is_number(a):  # 2 ** x: compute log(2) in the output's dtype
                a = B.full((), a, B.dtype_of(out))
            # d(a**b)/db = a**b * log(a): 0 at a == 0 for b >= 0 (the limit), -inf there for b < 0
            # (inf * log(0)) and nan for a < 0, as torch
            b_real = B.real(b) if B.dtype_of(b).is_complex else b    # complex numbers have no order
            gb = g * B.conj(B.where((a == 0) & (b_real >= 0), 0, out * B.log(a)))
        return ga, gb

    def backward_graph(self, g):
        with B.quiet_float_errors():
            return self._graph_grads(g)

    def _graph_grads(self, g):
        # the same cases as backward, with the masks as constants
        a, b = self.inputs
        na, nb = self.needs_input_grad
        ga = gb = None
        if na:
            if _is_number(b):
                ga = g * 0.0 if b == 0 else g * b * a ** (b - 1)
            else:
                # where an exponent is 0 use a ** 0 (the term is then 0 * 1, even at a == 0), as backward
                ga = g * b * a ** (Where.apply(const(b._array == 0), 1.0, b) - 1)
        if nb:
            a_arr = B.full((), a, B.dtype_of(b._array)) if _is_number(a) else a._array
            out = Pow.apply(a, b)
            if B.dtype_of(out._array).is_complex:
                return ga, g * exponent_slope(a, b, a_arr, out)
            pos = a_arr > 0
            base = Where.apply(const(pos), a, 1.0) if not _is_number(a) else const(B.where(pos, a_arr, 1))
            # elsewhere the value alone (no gradient through it): NaN below 0, -inf at 0 ** (b < 0)
            dlog = Where.apply(const(pos), out * base.log(), const(out._array * B.log(a_arr)))
            b_arr = b._array if not _is_number(b) else b
            gb = g * Where.apply(const((a_arr == 0) & (b_arr >= 0)), 0.0, dlog)
        return ga, gb


def _is_number(value):
    return isinstance(value, (int, float, complex))


class Neg(Function):
    complex_graph = True

    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)

    def backward_graph(self, g):
        return (-g,)


class Abs(Function):
    grad_reads_input = True     # its recorded gradient requires grad, as torch's (gt/autograd/graph_walk.py)
    complex_graph = True

    def forward(self, a):
        self.save(a)
        return B.abs(a)

    def backward(self, g):
        return (g * _sgn(self.saved[0]),)

    def backward_graph(self, g):
        if B.dtype_of(self.saved[0]).is_complex:
            return (g * sgn_graph(self.inputs[0], self.saved[0]),)
        return (g * mask_like(g, _sgn(self.saved[0])),)


def _sgn(a):
    """torch's ``sgn``, the slope of ``abs``: 0 at NaN (numpy's sign gives NaN there); ``z / |z|``
    (0 at 0) for complex ``z``."""
    if B.dtype_of(a).is_complex:
        with B.quiet_float_errors():
            size = B.abs(a)
            return B.where(size == 0, 0, a / size)
    return B.where(a == a, B.sign(a), 0)


class Exp(Function):
    complex_graph = "holomorphic"

    def forward(self, a):
        out = B.exp(a)
        self.save(out)
        return out

    def backward(self, g):
        return (g * B.conj(self.saved[0]),)

    def backward_graph(self, g):
        return (g * result(self, self.saved[0]),)      # torch's: the result, so ``a`` may change after


class Log(Function):
    # log(0) = -inf and log(-1) = nan by definition, silently as torch (numpy would warn)
    complex_graph = "holomorphic"

    def forward(self, a):
        self.save(a)
        with B.quiet_float_errors():
            return B.log(a)

    def backward(self, g):
        with B.quiet_float_errors():
            return (g / B.conj(self.saved[0]),)

    def backward_graph(self, g):
        with B.quiet_float_errors():
            return (g / self.inputs[0],)


class Sqrt(Function):
    complex_graph = "holomorphic"

    def forward(self, a):
        with B.quiet_float_errors():
            out = B.sqrt(a)
        self.save(out)
        return out

    def backward(self, g):
        with B.quiet_float_errors():
            return (g / (2 * B.conj(self.saved[0])),)

    def backward_graph(self, g):
        out = result(self, self.saved[0])
        with B.quiet_float_errors():
            return (g / (2 * out),)


class Maximum(Function):
    """Ties split the gradient evenly between both inputs, as torch does."""

    def forward(self, a, b):
        self.save(a, b)
        return B.maximum(a, b)

    def backward(self, g):
        a, b = self.saved
        return _split_by_choice(g, a > b, a < b, a == b, self.needs_input_grad)

    def backward_graph(self, g):
        a, b = self.saved
        return _split_graph(g, a > b, a < b, a == b, self.needs_input_grad)


class Minimum(Function):
    """Ties split the gradient evenly between both inputs, as torch does."""

    def forward(self, a, b):
        self.save(a, b)
        return B.minimum(a, b)

    def backward(self, g):
        a, b = self.saved
        return _split_by_choice(g, a < b, a > b, a == b, self.needs_input_grad)

    def backward_graph(self, g):
        a, b = self.saved
        return _split_graph(g, a < b, a > b, a == b, self.needs_input_grad)


def _split_graph(g, first_wins, second_wins, tie, needs):
    shares = (B.where(second_wins, 0.0, B.where(tie, 0.5, 1.0)), B.where(first_wins, 0.0, B.where(tie, 0.5, 1.0)))
    return tuple(g * mask_like(g, share) if need else None for share, need in zip(shares, needs))


def _split_by_choice(g, first_wins, second_wins, tie, needs):
    """``g`` to the input that was chosen, half to each on a tie, and all of it to both where
    neither wins (a NaN), as torch; masks select, so the gradients stay in ``g``'s dtype (no
    float64 share array)."""
    half = g * 0.5
    ga = B.where(second_wins, 0, B.where(tie, half, g)) if needs[0] else None
    gb = B.where(first_wins, 0, B.where(tie, half, g)) if needs[1] else None
    return ga, gb


class Clip(Function):
    """``min(max(x, low), high)``; each bound is None, a number or an array. The gradient passes to
    x where ``low <= x <= high`` (inclusive) and to an array bound where it was taken, as torch.clamp."""

    # torch's clamp: ClampBackward1 with number bounds, ClampBackward0 with a tensor bound
    _torch_name = property(lambda self: "ClampBackward0" if any(
        not isinstance(b, (int, float, type(None))) for b in (getattr(self, "inputs", None) or ())[1:]) else "ClampBackward1")

    def forward(self, x, low=None, high=None):
        self.save(x, low, high)
        return B.clip(x, low, high)

    def backward(self, g):
        inside, low_wins, high_wins = self._masks()
        # select, not multiply: an infinite g outside the bounds gives 0, as torch's, not NaN
        return (None if inside is None else B.where(inside, g, 0),
                *(None if m is None else B.where(m, g, 0) for m in (low_wins, high_wins)))

    def backward_graph(self, g):
        return tuple(None if m is None else g * mask_like(g, B.asarray(m)) for m in self._masks())

    def _masks(self):
        """Where the gradient goes: to x where ``low <= x <= high`` (inclusive), to an array bound
        where it was taken; None for an input that needs no gradient."""
        x, low, high = self.saved
        nx, nlow, nhigh = self.needs_input_grad + (False,) * (3 - len(self.needs_input_grad))
        inside = True
        if low is not None:
            inside = x >= low
        if high is not None:
            inside = inside & (x <= high)
        low_wins = high_wins = None
        if nlow:  # low wins where x is below it, unless it is above high (then high wins)
            low_wins = (x < low) & (low < high) if high is not None else x < low
        if nhigh:
            high_wins = (x > high) | (high < low) if low is not None else x > high
        return (inside if nx else None), low_wins, high_wins


class Cast(Function):
    _torch_name = "ToCopyBackward0"
    complex_graph = True       # a real-linear map: its recorded gradient is right for complex tensors too

    def forward(self, x, dtype):
        self.save(B.dtype_of(x))
        return B.astype(x, dtype)

    def backward(self, g):
        dtype = self.saved[0]
        if not dtype.is_complex and B.dtype_of(g).is_complex:
            g = B.real(g)         # a real input cast to complex: the real part, as torch
        return (B.astype(g, dtype),)

    def backward_graph(self, g):
        dtype = self.saved[0]
        return (Cast.apply(g.real if g.dtype.is_complex and not dtype.is_complex else g, dtype),)


class Rounding(Function):
    """``floor``, ``ceil``, ``trunc``, ``round`` or ``sign`` (``how``): piecewise constant, so the
    gradient is zero wherever it is defined, as torch's (zeros, not no gradient at all)."""

    _torch_name = property(lambda self: (getattr(self, "inputs", None) or ("", "rounding"))[1].title() + "Backward0")

    def forward(self, x, how):
        out = getattr(B, how)(x)
        return B.where(x == x, out, 0) if how == "sign" else out     # torch's sign of NaN is 0

    def backward(self, g):
        return (B.zeros(tuple(g.shape), B.dtype_of(g)), None)

    def backward_graph(self, g):
        return (g * 0.0, None)


class FloorDivide(Function):
    """``floor(a / b)`` as torch's ``//`` computes it (numpy's and Python's algorithm, exact where
    ``(a / b).floor()`` is not: ``1 // 0.1`` is 9): piecewise constant, so zero gradients for
    both inputs, as torch's (a graph with zeros, not none)."""

    def forward(self, a, b):
        self.arrays = (B.is_array(a), B.is_array(b))
        with B.quiet_float_errors():              # x // 0 is inf or NaN, silently as torch's
            return B.iterator_layout(a // b, a, b)

    def backward(self, g):       # the walk sums each gradient back to its input's shape
        return tuple(B.zeros(tuple(g.shape), B.dtype_of(g)) if is_array else None for is_array in self.arrays)

    def backward_graph(self, g):
        return tuple(g * 0.0 if is_array else None for is_array in self.arrays)


class ToDevice(Function):
    """``x`` copied to another device (``Tensor.to(device)``); the gradient goes back to the
    device ``x`` came from."""

    def forward(self, x, device):
        self.source = B.device_of(x)
        return B.to_device(x, device)

    def backward(self, g):
        return (B.to_device(g, self.source), None)

    def backward_graph(self, g):
        return (ToDevice.apply(g, self.source), None)
