"""The differentiable ops of ``gt.linalg``: one small Function per factorization or solve, forward
and backward side by side, with torch's backward formulas (torch's FunctionsManual.cpp; conjugate
transposes `_h` for complex matrices where det, inv and solve take them); eigh, svd and qr are in
gt/ops/linalg_spectral.py.
Matrices are the last two axes of every array; leading axes are batch axes of equal shape (the
tensor layer broadcasts them first).

An op with several results (eigh, svd, qr, complex slogdet) returns them packed into one array, each flattened
over its matrix axes and joined along the last axis; the tensor layer (gt/tensor/linalg_methods.py)
cuts them apart with differentiable slices, so the backward receives the gradients of all parts
at once (zero for a part that was not used, as torch treats an undefined gradient).
"""

import math

from gt.autograd import Function
from gt import dtypes
from gt.backend import B
from gt.backend.engine_linalg import LinAlgError
from gt.ops._shapes import numel
from gt.ops.complex_ops import Complex
from gt.ops.linalg_cofactors import Cofactors, cofactors as _cofactors


def _t(x):
    """``x`` with its last two axes swapped (a view)."""
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return B.transpose(x, axes)


def _h(x):
    """The conjugate transpose of ``x`` (``_t`` for a real ``x``: ``B.conj`` keeps it as it is). The
    backward formulas below take it where the real case transposes: torch's formulas for complex A."""
    return B.conj(_t(x))


def _offsets(n, m):
    rows = B.reshape(B.arange(0, n, 1, dtypes.int64), (n, 1))
    return rows - B.reshape(B.arange(0, m, 1, dtypes.int64), (1, m))


def _eye_like(x, n):
    return B.astype(_offsets(n, n) == 0, B.dtype_of(x))


def _tril(x, k=0):
    """The lower triangle of ``x`` (..., n, m) with the ``k`` diagonals above the main one."""
    return B.where(_offsets(x.shape[-2], x.shape[-1]) >= -k, x, 0)


def _diag_embed(v):
    """The vectors ``v`` (..., n) as diagonal matrices (..., n, n)."""
    return B.reshape(v, tuple(v.shape) + (1,)) * _eye_like(v, v.shape[-1])


def _scale_diagonal(x, factor):
    """``x`` (..., n, n) with its diagonal multiplied by ``factor``."""
    return x * (1 + (factor - 1) * _eye_like(x, x.shape[-1]))


def _pack(parts, batch):
    """``parts`` (each batch + its own axes) flattened to batch + (size,) and joined: batch + (total,)."""
    flat = [B.reshape(p, batch + (numel(p.shape[len(batch):]),)) for p in parts]   # no -1: batch may be empty
    return B.concatenate(flat, axis=-1)


def _unpack(g, shapes):
    """The gradient ``g`` of a packed result cut back into the parts' full ``shapes``."""
    out, start = [], 0
    for s in shapes:
        n = numel(s[g.ndim - 1:])
        out.append(B.reshape(B.getitem(g, (Ellipsis, slice(start, start + n))), tuple(s)))
        start += n
    return out


def _right_solve(x, a):
    """``x @ inv(a)`` as ``solve(a.T, x.T).T``."""
    return _t(B.solve(_t(a), _t(x)))


def _scalar_grad(g):
    return B.reshape(g, tuple(g.shape) + (1, 1))


class Det(Function):
    """``det(A)``; gradient ``g det(A) inv(A)^T``, the cofactors through the SVD where a
    determinant is 0 (the adjugate, as torch's ``create_graph=True`` backward gives; its plain
    backward gives zeros there)."""
    complex_graph = "holomorphic"

    def forward(self, a):
        out = B.det(a)
        self.save(a, out)
        return out

    def backward(self, g):
        a, out = self.saved
        if B.numel(out) and bool(B.any(out == 0)):
            return (_scalar_grad(g) * _cofactors(a),)
        inverse = _inverse_if_conditioned(a)
        if inverse is None:
            return (_scalar_grad(g) * _cofactors(a),)
        return (_scalar_grad(g * B.conj(out)) * _h(inverse),)

    def backward_graph(self, g):
        a = self.inputs[0]
        if not B.dtype_of(self.saved[0]).is_complex and _singular(*self.saved):
            # inv refuses an exactly singular A: the cofactors' own derivative (torch's SVD route
            # gives the same at rank n-1, NaN or rounding noise at lower ranks)
            return (g.unsqueeze(-1).unsqueeze(-1) * Cofactors.apply(a),)
        return ((g * Det.apply(a)).unsqueeze(-1).unsqueeze(-1) * Inv.apply(a).mT,)


def _inverse_if_conditioned(a):
    """``inv(a)``, or None where inv refuses a matrix (an LU meeting an exact zero pivot where det
    rounded off zero: MKL's det of [[1, 2, 3], [2, 4, 6], [1, 0, 1]] is -6.7e-16) or one is near
    singular (max |A| max |inv(A)| over 1e6): det(A) inv(A)^T then multiplies two values with few
    right digits (torch's det and inv, two LUs, gave 0.0058 for a cofactor of 0.166 at det 9e-21;
    torch's own backward reuses its forward's LU), and the derivative of that product cancels
    two large terms to noise (6e1 off at det 1e-15). The cofactors through the SVD are exact there."""
    try:
        inverse = B.inv(a)
    except LinAlgError:
        return None
    if B.numel(a) and float(B.item(B.max(B.abs(a)))) * float(B.item(B.max(B.abs(inverse)))) > 1e6:
        return None
    return inverse


def _singular(a, det):
    """Whether a determinant of the batch is 0 or ``_inverse_if_conditioned`` refuses a matrix."""
    if not B.numel(a) or not B.numel(det) or bool(B.any(det == 0)):
        return bool(B.numel(a) and B.numel(det))     # (a 0 x 0 matrix's det is 1: nothing to invert)
    return _inverse_if_conditioned(a) is None


class SlogdetSign(Function):
    """The sign of a real ``det(A)`` (slogdet's first result: -1, 0 or 1). On the tape, as torch's (it
    requires grad), with no gradient: torch's slogdet_backward leaves a real sign's out, so a loss
    of the sign alone gives ``.grad`` None, and ``autograd.grad`` says the input was not used."""

    def forward(self, a):
        return B.slogdet(a)[0]

    def backward(self, g):
        return (None,)

    def backward_graph(self, g):
        return (None,)

    def tangent(self, ta):
        """Forward AD: zeros (torch's tangent of the sign is a zero tensor)."""
        return B.zeros(tuple(ta.shape[:-2]), B.dtype_of(ta))


class ComplexSlogdet(Function):
    """Packed ``(sign (...), logabsdet (...))`` of a complex A (logabsdet's imaginary part 0); torch's
    slogdet_backward: ``gA = (g_logabsdet + i Im(g_sign conj(sign))) inv(A)^H`` (d sign = i sign
    Im tr(A^-1 dA))."""
    complex_graph = True

    def forward(self, a):
        sign, logabsdet = B.slogdet(a)
        self.save(a, sign)
        return _pack([sign, B.astype(logabsdet, B.dtype_of(sign))], tuple(a.shape[:-2]))

    def backward(self, g):
        a, sign = self.saved
        g_sign, g_log = _unpack(g, [sign.shape, sign.shape])
        coefficient = B.real(g_log) + 1j * B.imag(g_sign * B.conj(sign))
        return (_scalar_grad(B.astype(coefficient, B.dtype_of(a))) * _h(_inv_or_nan(a, sign)),)

    def backward_graph(self, g):
        a = self.inputs[0]
        sign = ComplexSlogdet.apply(a)[..., 0]      # (..., 2): sign, logabsdet
        g_sign, g_log = g[..., 0], g[..., 1]
        coefficient = Complex.apply(g_log.real, (g_sign * sign.conj()).imag)
        return (coefficient.unsqueeze(-1).unsqueeze(-1) * Inv.apply(a).mH,)


def _inv_or_nan(a, sign):
    """``inv(a)``, NaN for the singular matrices (``sign`` 0, slogdet's): torch's slogdet gradient
    there is non-finite without an error (inf or NaN from its LU solve, its signs rounding's)."""
    if not B.numel(sign) or not bool(B.any(sign == 0)):
        return B.inv(a)
    singular = B.reshape(sign == 0, tuple(sign.shape) + (1, 1))
    nan = complex(math.nan, math.nan) if B.dtype_of(a).is_complex else math.nan
    return B.where(singular, nan, B.inv(B.where(singular, _eye_like(a, a.shape[-1]), a)))


class LogAbsDet(Function):
    """``log |det(A)|`` (slogdet's second result); gradient ``g inv(A)^T``."""

    def forward(self, a):
        sign, logabsdet = B.slogdet(a)
        self.save(a, sign)
        return logabsdet

    def backward(self, g):
        return (_scalar_grad(g) * _t(_inv_or_nan(*self.saved)),)

    def backward_graph(self, g):
        return (g.unsqueeze(-1).unsqueeze(-1) * Inv.apply(self.inputs[0]).mT,)


class Inv(Function):
    """``inv(A)``; gradient ``-inv(A)^T G inv(A)^T``."""
    complex_graph = "holomorphic"

    def forward(self, a):
        out = B.inv(a)
        self.save(out)
        return out

    def backward(self, g):
        out_t = _h(self.saved[0])
        return (-B.matmul(B.matmul(out_t, g), out_t),)

    def backward_graph(self, g):
        out_t = Inv.apply(self.inputs[0]).mT
        return (-(out_t @ g @ out_t),)


class Solve(Function):
    """X with ``A X = B`` (B (..., n, k)); gradients ``gB = solve(A^T, G)``, ``gA = -gB X^T``."""
    complex_graph = "holomorphic"

    def forward(self, a, b):
        out = B.solve(a, b)
        self.save(a, out)
        return out

    def backward(self, g):
        a, out = self.saved
        gb = B.solve(_h(a), g)
        return (-B.matmul(gb, _h(out)) if self.needs_input_grad[0] else None), gb

    def backward_graph(self, g):
        a, b = self.inputs
        gb = Solve.apply(a.mT, g)
        return (-(gb @ Solve.apply(a, b).mT) if self.needs_input_grad[0] else None), gb


class Cholesky(Function):
    """The lower factor L of ``A = L L^H`` (``upper``: U = L^H); torch's cholesky_backward:
    ``gA = L^-H phi(L^H gL) L^-1`` with ``phi(X) = (tril(X) + tril(X, -1)^H) / 2``."""
    complex_graph = True

    def forward(self, a, upper=False):
        low = B.cholesky(_h(a) if upper else a)      # upper: A's upper triangle is read (torch's)
        self.save(low)
        self.upper = upper
        return _h(low) if upper else low

    def backward(self, g):
        low = self.saved[0]
        g = _h(g) if self.upper else g
        ga = _tril(B.matmul(_h(low), g))
        ga = 0.5 * (ga + _h(_tril(ga, -1)))
        ga = B.solve(_h(low), ga)              # L^-H gA
        return (_right_solve(ga, low),)        # ... L^-1

    def backward_graph(self, g):
        # mH: the conjugate transpose for complex tensors, the transpose (no node more) for real ones
        low = Cholesky.apply(self.inputs[0].mH if self.upper else self.inputs[0], False)
        g = g.mH if self.upper else g
        ga = (low.mH @ g).tril()
        ga = 0.5 * (ga + ga.tril(-1).mH)
        ga = Solve.apply(low.mH, ga)
        return (Solve.apply(low.mH, ga.mH).mH,)
