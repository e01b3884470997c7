"""The differentiable ops of ``gt.linalg``: one small Function per factorization or solve, forward
and backward side by side, with torch's backward formulas (torch's FunctionsManual.cpp; conjugate
transposes `_h` for complex matrices where det, inv, solve, svd and qr take them).
Matrices are the last two axes of every array; leading axes are batch axes of equal shape (the
tensor layer broadcasts them first).

An op with several results (eigh, svd, qr) returns them packed into one array, each flattened
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
    """The sign of ``det(A)`` (slogdet's first result: -1, 0 or 1), outside the graph."""

    def forward(self, a):
        return B.slogdet(a)[0]


class ComplexSlogdet(Function):
    """Packed ``(sign (...), logabsdet (...))`` of a complex A (logabsdet's imaginary part 0); torch's
    slogdet_backward: ``gA = (g_logabsdet + i Im(g_sign conj(sign))) inv(A)^H`` (d sign = i sign
    Im tr(A^-1 dA))."""

    def forward(self, a):
        sign, logabsdet = B.slogdet(a)
        self.save(a, sign)
        return _pack([sign, B.astype(logabsdet, B.dtype_of(sign))], tuple(a.shape[:-2]))

    def backward(self, g):
        a, sign = self.saved
        g_sign, g_log = _unpack(g, [sign.shape, sign.shape])
        coefficient = B.real(g_log) + 1j * B.imag(g_sign * B.conj(sign))
        return (_scalar_grad(B.astype(coefficient, B.dtype_of(a))) * _h(_inv_or_nan(a, sign)),)


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
        low = Cholesky.apply(self.inputs[0].mT if self.upper else self.inputs[0], False)
        g = g.mT if self.upper else g
        ga = (low.mT @ g).tril()
        ga = 0.5 * (ga + ga.tril(-1).mT)
        ga = Solve.apply(low.mT, ga)
        return (Solve.apply(low.mT, ga.mT).mT,)


class Eigh(Function):
    """Packed ``(eigenvalues (..., n), eigenvectors (..., n, n))`` of a symmetric A; torch's
    backward: ``gA = V (skew(V^T gV) / E + diag(gL)) V^T``, ``E_ij = L_j - L_i`` (inf or NaN where
    eigenvalues repeat, as torch)."""

    def forward(self, a, lower=True):
        w, v = B.eigh(a, lower)
        self.save(w, v)
        return _pack([w, v], tuple(a.shape[:-2]))

    def backward(self, g):
        w, v = self.saved
        gw, gv = _unpack(g, [w.shape, v.shape])
        vt_gv = B.matmul(_h(v), gv)
        n = w.shape[-1]
        eye = _eye_like(w, n)
        if B.dtype_of(v).is_complex:
            _check_gauge(B.diagonal_view(vt_gv, 0, -2, -1))
        skew = 0.5 * (vt_gv - _h(vt_gv))
        if B.dtype_of(v).is_complex:      # its diagonal (imaginary) is replaced by gL's, as torch's
            skew = skew * (1 - eye)
        e = B.reshape(w, tuple(w.shape[:-1]) + (1, n)) - B.reshape(w, tuple(w.shape) + (1,))
        with B.quiet_float_errors():     # a zero numerator stays 0 (torch: no gV term when gV is undefined)
            inner = B.where(skew == 0, 0, skew / (e + eye)) + _diag_embed(gw)
        return (B.matmul(v, B.matmul(inner, _h(v))),)

    def tangent(self, ta, _lower=None):
        """Forward AD (torch's linalg_eig_jvp): ``dP = V^H dA V``, ``dL = Re diag(dP)``,
        ``dV = V (dP / E)`` off the diagonal (torch reads all of dA, not one triangle)."""
        w, v = self.saved
        dp = B.matmul(_h(v), B.matmul(ta, v))
        n = w.shape[-1]
        eye = _eye_like(w, n)
        e = B.reshape(w, tuple(w.shape[:-1]) + (1, n)) - B.reshape(w, tuple(w.shape) + (1,))
        with B.quiet_float_errors():
            dv = B.matmul(v, dp * (1 - eye) / (e + eye))
        dl = B.diagonal_view(dp, 0, -2, -1)
        dl = B.astype(B.real(dl), B.dtype_of(dv)) if B.dtype_of(dv).is_complex else B.copy(dl)
        return _pack([dl, dv], tuple(ta.shape[:-2]))


def _check_gauge(diag):
    """torch's check that a loss of complex eigenvectors does not depend on their phases (each is
    defined up to a factor e^{i phi}): Im diag(V^H gV) is 0 (its tolerances, 1e-2)."""
    im = B.imag(diag)
    if B.numel(im) and bool(B.any(B.abs(im) > 1e-2)):
        raise RuntimeError("linalg_eigh_backward: The eigenvectors in the complex case are specified up to "
                           "multiplication by e^{i phi}. The specified loss function depends on this quantity, "
                           "so it is ill-defined.")


class Svd(Function):
    """Packed ``(U, S, Vh)`` of A (..., m, n); torch's svd_backward (real case), gradients of all
    three parts at once (a part not used has a zero gradient)."""

    def forward(self, a, full_matrices=False):
        u, s, vh = B.svd(a, full_matrices, True)
        self.save(u, s, vh)
        return _pack([u, s, vh], tuple(a.shape[:-2]))

    def backward(self, g):
        u, s, vh = self.saved
        gu, gs, gvh = _unpack(g, [u.shape, s.shape, vh.shape])
        m, n, k = u.shape[-2], vh.shape[-1], s.shape[-1]
        u, gu = u[..., :k], gu[..., :k]                 # full_matrices: the extra columns carry no gradient
        vh, gvh = vh[..., :k, :], gvh[..., :k, :]
        v, gv = _h(vh), _h(gvh)
        uhgu, vhgv = B.matmul(_h(u), gu), B.matmul(vh, gv)
        uhgu, vhgv = uhgu - _h(uhgu), vhgv - _h(vhgv)
        row, col = B.reshape(s, tuple(s.shape[:-1]) + (1, k)), B.reshape(s, tuple(s.shape) + (1,))
        s2 = s * s
        e = B.reshape(s2, tuple(s.shape[:-1]) + (1, k)) - B.reshape(s2, tuple(s.shape) + (1,))
        with B.quiet_float_errors():
            # a zero numerator stays 0, and a zero gU or gVh adds nothing: torch skips undefined gradients,
            # so svdvals of a matrix with repeated or zero singular values has a finite gradient
            num = uhgu * row + col * vhgv
            ga = B.where(num == 0, 0, num / (e + _eye_like(s, k))) + _diag_embed(gs)
            if B.dtype_of(u).is_complex:        # torch's term of the phases: Im diag(U^H gU) / S
                phase = B.diagonal_view(uhgu, 0, -2, -1)
                ga = ga + _diag_embed(B.where(phase == 0, 0, phase / (2 * s)))
            if m > k and bool(B.any(gu)):
                gus = gu / row
                ga = B.matmul(u, ga) + gus - B.matmul(u, B.matmul(_h(u), gus))
                return (B.matmul(ga, vh),)
            if n > k and bool(B.any(gv)):
                sgv = gvh / col
                ga = B.matmul(ga, vh) + sgv - B.matmul(B.matmul(sgv, v), vh)
                return (B.matmul(u, ga),)
        return (B.matmul(u, B.matmul(ga, vh)),)

    def tangent(self, ta, _full=None):
        """Forward AD (torch's linalg_svd_jvp): ``dP = U^H dA V``, ``dS = Re diag(dP)``,
        ``dU = U sym(dP S) / E + (I - U U^H) dA V S^-1``, ``dV`` alike (``E_ij = S_j^2 - S_i^2``);
        for a complex A, torch's phases: ``i Im diag(dP) / 2S`` to U's columns, minus it to V's; the
        extra columns of full matrices get zeros, as torch's."""
        u_full, s, vh_full = self.saved
        m, n, k = u_full.shape[-2], vh_full.shape[-1], s.shape[-1]
        u, v = u_full[..., :k], _h(vh_full[..., :k, :])
        dp = B.matmul(_h(u), B.matmul(ta, v))
        eye = _eye_like(s, k)
        row, col = B.reshape(s, tuple(s.shape[:-1]) + (1, k)), B.reshape(s, tuple(s.shape) + (1,))
        e = row * row - col * col + eye
        with B.quiet_float_errors():
            du = B.matmul(u, (dp * row + _h(dp) * col) * (1 - eye) / e)
            dv = B.matmul(v, (dp * col + _h(dp) * row) * (1 - eye) / e)
            if B.dtype_of(dp).is_complex:
                phase = 1j * B.imag(B.diagonal_view(dp, 0, -2, -1)) / (2 * s)
                phase = B.reshape(phase, tuple(phase.shape[:-1]) + (1, k))
                du, dv = du + u * phase, dv - v * phase
            if m > k:
                extra = B.matmul(ta, v / row)
                du = du + extra - B.matmul(u, B.matmul(_h(u), extra))
            if n > k:
                extra = B.matmul(_h(ta), u / row)
                dv = dv + extra - B.matmul(v, B.matmul(_h(v), extra))
        du = B.concatenate([du, B.zeros(du.shape[:-1] + (u_full.shape[-1] - k,), B.dtype_of(du))], axis=-1)
        dvh = _h(B.concatenate([dv, B.zeros(dv.shape[:-1] + (vh_full.shape[-2] - k,), B.dtype_of(dv))], axis=-1))
        ds = B.astype(B.real(B.diagonal_view(dp, 0, -2, -1)), B.dtype_of(dp))   # packed beside dU, dV
        return _pack([du, ds, dvh], tuple(ta.shape[:-2]))


def _qr_backward(q, r, gq, gr):
    """torch's linalg_qr_backward for m >= n: ``gA = (gQ + Q copyltu(triu(gR R^T - Q^T gQ))) R^-T``."""
    ga = B.matmul(gr, _h(r)) - B.matmul(_h(q), gq)
    ga = ga - _tril(ga, -1)                          # triu
    ga = _scale_diagonal(ga + _h(ga), 0.5)
    return _right_solve(B.matmul(q, ga) + gq, _h(r))


class Qr(Function):
    """Packed ``(Q, R)`` of A (..., m, n), torch's gradient: ``_qr_backward`` for m >= n; for m < n
    A = [X Y] with X = Q U square and Y = Q V, so Y's gradient is Q gV and Q's grows by Y gV^T."""

    def forward(self, a, complete=False, r_only=False):
        q, r = B.qr(a, complete)
        self.save(q, r)
        self.r_only = r_only
        return _pack([q, r], tuple(a.shape[:-2]))

    def _differentiable(self):
        """``(Q, R)``, after torch's refusals of a derivative (its messages)."""
        q, r = self.saved
        if self.r_only:
            raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. "
                               "Use linalg.qr(A, mode='reduced') to differentiate through linalg.qr")
        if q.shape[-2] > r.shape[-1] and q.shape[-1] == q.shape[-2]:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
        return q, r

    def backward(self, g):
        q, r = self._differentiable()
        m, n = q.shape[-2], r.shape[-1]
        gq, gr = _unpack(g, [q.shape, r.shape])
        if m >= n:
            return (_qr_backward(q, r, gq, gr),)
        u, v, gu, gv = r[..., :m], r[..., m:], gr[..., :m], gr[..., m:]
        gx = _qr_backward(q, u, gq + B.matmul(B.matmul(q, v), _h(gv)), gu)
        return (B.concatenate([gx, B.matmul(q, gv)], axis=-1),)

    def tangent(self, ta, _complete=None, _r_only=None):
        """Forward AD (torch's linalg_qr_jvp; None for a complex A): for m >= n, ``C = Q^T dA R^-1``, ``O`` the
        skew matrix of C's strict lower triangle, ``dR = (C - O) R``, ``dQ = dA R^-1 - Q (C - O)``;
        for m < n (A = [X Y]) X's, and ``dV = Q^T (dY - dQ V)``."""
        q, r = self._differentiable()
        if B.dtype_of(q).is_complex:
            return None         # one element at a time (gt/autograd/forward_rows.py)
        m, n = q.shape[-2], r.shape[-1]
        x, y, dx, dy = (r, None, ta, None) if m >= n else (r[..., :m], r[..., m:], ta[..., :m], ta[..., m:])
        db = _right_solve(dx, x)
        c = B.matmul(_t(q), db)
        low = _tril(c, -1)
        c = c - (low - _t(low))
        dq, dr = db - B.matmul(q, c), B.matmul(c, x)
        if y is not None:
            dr = B.concatenate([dr, B.matmul(_t(q), dy - B.matmul(dq, y))], axis=-1)
        return _pack([dq, dr], tuple(ta.shape[:-2]))
