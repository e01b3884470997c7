"""The differentiable eigen, singular value and QR decompositions of ``gt.linalg`` (``eigh``, ``svd``,
``qr``), with torch's backward formulas (FunctionsManual.cpp: linalg_eig_backward, svd_backward,
linalg_qr_backward) and forward-mode tangents; the conventions of gt/ops/linalg_ops.py hold
(matrices on the last two axes, equal batch shapes, several results packed into one array).

Each ``backward_graph`` (``create_graph=True``, gt/autograd/graph_walk.py) is the same formula
written with recorded ops on tensors: the factors are the op applied again to its input, so their
derivatives are the op's own, and the second derivative is the derivative of the formula, as
torch's double backward; written with conjugate transposes (``mH``: the transpose of a real tensor),
they hold for complex inputs too (``complex_graph``), with torch's checks of the phases.
"""

from gt.autograd import Function, graph_walk
from gt.backend import B
from gt.ops._graph import const
from gt.ops.linalg_factor_ops import SolveTriangular
from gt.ops.linalg_ops import _diag_embed, _eye_like, _h, _pack, _right_solve, _scale_diagonal, _t, _tril, _unpack
from gt.ops.shape import Cat


def _split(packed, shapes):
    """The recorded gradient or result ``packed`` (batch + (total,)) cut into tensors of ``shapes``
    (``_unpack`` on tensors)."""
    out, start = [], 0
    for shape in shapes:
        n = 1
        for d in shape[packed.ndim - 1:]:
            n *= d
        out.append(packed[..., start:start + n].reshape(tuple(shape)))
        start += n
    return out


def _use(part, g):
    """How a recorded backward treats the terms of ``part`` of the packed gradient ``g``: None to
    leave them out (all zeros and ``g`` needs no gradient: torch's undefined gradient of a result
    not used, whose terms and their derivatives are 0); ``_ratio`` to divide in them where zeros
    are differentiated still (an unused part beside a used one in a recorded walk, or an ``hvp``'s
    zero upstream gradients); otherwise plain division (torch's: inf or NaN where values repeat)."""
    if bool((part != 0).any()):
        return _divide
    return _ratio if g.requires_grad else None


def _divide(num, den):
    return num / den


def _ratio(num, den):
    return ZeroOverZero.apply(num, den)


class ZeroOverZero(Function):
    """``num / den`` with 0 where both are 0: the finite value of a zero part of a gradient (svdvals'
    and eigvalsh's recorded gradients at ties, as torch's); its derivatives are the quotient's,
    inf or NaN there (as torch's second derivatives at ties, an ``hvp``'s too)."""
    complex_graph = "holomorphic"

    def forward(self, num, den):
        self.save(num, den)
        with B.quiet_float_errors():
            return B.where((num == 0) & (den == 0), 0, num / den)

    def backward(self, g):
        num, den = self.saved
        with B.quiet_float_errors():
            return g / den, -g * (num / den) / den

    def backward_graph(self, g):
        num, den = self.inputs
        return g / den, -g * (num / den) / den


def _factors(ctx, op):
    """The packed factors for ``ctx``'s recorded gradient: ``op`` applied again to its input (their
    derivatives are the op's own); for a complex input the output node itself, as torch's saved
    results: the second-order gradients reaching the factors' phases meet there (each share alone
    depends on the phases, and torch's check of them would refuse it)."""
    node = graph_walk.walking
    if B.dtype_of(ctx.saved[-1]).is_complex and node is not None and node._ctx is ctx:
        return node
    return op.apply(*ctx.inputs)


def _real(values):
    """Eigen- or singular ``values`` cut from a complex packed result as the real tensor they are: a
    gradient reaching them is then real too (an imaginary part would move them off the real line)."""
    return values.real if values.dtype.is_complex else values


def _gaps(values, eye):
    """``E_ij = f_j - f_i`` (..., k, k) of the recorded ``values`` (..., k), 1 on the diagonal (torch's)."""
    return values.unsqueeze(-2) - values.unsqueeze(-1) + eye


class Eigh(Function):
    """Packed ``(eigenvalues (..., n), eigenvectors (..., n, n))`` of a symmetric A; torch's
    backward: ``gA = V (skew(V^T gV) / E + diag(gL)) V^T``, ``E_ij = L_j - L_i`` (inf or NaN where
    eigenvalues repeat, as torch), recorded too (``backward_graph``)."""
    complex_graph = True

    def forward(self, a, lower=True):
        w, v = B.eigh(a, lower)
        self.save(w, v)
        return _pack([w, v], tuple(a.shape[:-2]))

    def backward(self, g):
        w, v = self.saved
        gw, gv = _unpack(g, [w.shape, v.shape])
        if not bool(B.any(gv)):       # torch's eigvalsh (gV undefined): no 1 / (L_j - L_i) terms, finite at ties
            return (B.matmul(v * B.reshape(gw, tuple(gw.shape[:-1]) + (1, gw.shape[-1])), _h(v)),)
        vt_gv = B.matmul(_h(v), gv)
        n = w.shape[-1]
        eye = _eye_like(w, n)
        if B.dtype_of(v).is_complex:
            _check_gauge(B.diagonal_view(vt_gv, 0, -2, -1))
        skew = 0.5 * (vt_gv - _h(vt_gv))
        if B.dtype_of(v).is_complex:      # its diagonal (imaginary) is replaced by gL's, as torch's
            skew = skew * (1 - eye)
        e = B.reshape(w, tuple(w.shape[:-1]) + (1, n)) - B.reshape(w, tuple(w.shape) + (1,))
        with B.quiet_float_errors():     # NaN or inf where eigenvalues repeat, as torch's (a 0 there is not the limit)
            inner = skew / (e + eye) + _diag_embed(gw)
        return (B.matmul(v, B.matmul(inner, _h(v))),)

    def backward_graph(self, g):
        w0, v0 = self.saved
        w, v = _split(_factors(self, Eigh), [w0.shape, v0.shape])
        w = _real(w)
        gw, gv = _split(g, [w0.shape, v0.shape])
        divide = _use(gv, g)
        if divide is None:
            return ((v * gw.unsqueeze(-2)) @ v.mH,)
        vt_gv = v.mH @ gv
        skew = 0.5 * (vt_gv - vt_gv.mH)
        if vt_gv.dtype.is_complex:      # its diagonal (imaginary) gives way to gL's, as torch's; the phases' check
            _check_gauge(B.diagonal_view(vt_gv._array, 0, -2, -1))
            skew = skew * const(1 - _eye_like(w0, w0.shape[-1]))
        inner = divide(skew, _gaps(w, const(_eye_like(w0, w0.shape[-1])))) + gw.diag_embed()
        return (v @ (inner @ v.mH),)

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
    """Packed ``(U, S, Vh)`` of A (..., m, n); torch's svd_backward, gradients of all three parts at
    once (a part not used has a zero gradient), recorded too for a real A (``backward_graph``)."""
    complex_graph = True

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
        if B.dtype_of(u).is_complex:
            _check_svd_gauge(B.imag(B.diagonal_view(uhgu, 0, -2, -1)), B.imag(B.diagonal_view(vhgv, 0, -2, -1)))
        row, col = B.reshape(s, tuple(s.shape[:-1]) + (1, k)), B.reshape(s, tuple(s.shape) + (1,))
        use_u, use_v = bool(B.any(gu)), bool(B.any(gvh))
        if not (use_u or use_v):      # torch's svdvals (gU, gVh undefined): no 1 / (S_j^2 - S_i^2) terms
            return (B.matmul(u * B.reshape(gs, tuple(gs.shape[:-1]) + (1, k)), vh),)
        s2 = s * s
        e = B.reshape(s2, tuple(s.shape[:-1]) + (1, k)) - B.reshape(s2, tuple(s.shape) + (1,))
        with B.quiet_float_errors():     # NaN or inf where singular values repeat (or are 0 for gU S^-1), as torch's
            ga = (uhgu * row + col * vhgv) / (e + _eye_like(s, k)) + _diag_embed(gs)
            if B.dtype_of(u).is_complex and use_u:      # torch's term of the phases: Im diag(U^H gU) / S
                ga = ga + _diag_embed(B.diagonal_view(uhgu, 0, -2, -1) / (2 * s))
            if m > k and use_u:
                gus = gu / row
                ga = B.matmul(u, ga) + gus - B.matmul(u, B.matmul(_h(u), gus))
                return (B.matmul(ga, vh),)
            if n > k and use_v:
                sgv = gvh / col
                ga = B.matmul(ga, vh) + sgv - B.matmul(B.matmul(sgv, v), vh)
                return (B.matmul(u, ga),)
        return (B.matmul(u, B.matmul(ga, vh)),)

    def backward_graph(self, g):
        shapes = [x.shape for x in self.saved]
        u, s, vh = _split(_factors(self, Svd), shapes)
        s = _real(s)
        gu, gs, gvh = _split(g, shapes)
        m, n, k = shapes[0][-2], shapes[2][-1], shapes[1][-1]
        u, gu, vh, gvh = u[..., :k], gu[..., :k], vh[..., :k, :], gvh[..., :k, :]
        div_u, div_v = _use(gu, g), _use(gvh, g)
        if div_u is None and div_v is None:     # torch's svdvals: no 1 / (S_j^2 - S_i^2) terms
            return ((u * gs.unsqueeze(-2)) @ vh,)
        uhgu, vhgv = u.mH @ gu, vh @ gvh.mH
        uhgu, vhgv = uhgu - uhgu.mH, vhgv - vhgv.mH
        complex_ = uhgu.dtype.is_complex
        if complex_:
            _check_svd_gauge(*(B.imag(B.diagonal_view(x._array, 0, -2, -1)) for x in (uhgu, vhgv)))
        ga = uhgu * s.unsqueeze(-2) + s.unsqueeze(-1) * vhgv
        divide = _divide if _divide in (div_u, div_v) else _ratio
        ga = divide(ga, _gaps(s * s, const(_eye_like(self.saved[1], k)))) + gs.diag_embed()
        if complex_ and div_u is not None:      # torch's term of the phases: Im diag(U^H gU) / S
            ga = ga + div_u(uhgu.diagonal(0, -2, -1), 2 * s).diag_embed()
        if m > k and div_u is not None:     # the columns of gU outside U's span: (I - U U^H) gU S^-1
            gus = div_u(gu, s.unsqueeze(-2))
            return ((u @ ga + gus - u @ (u.mH @ gus)) @ vh,)
        if n > k and div_v is not None:
            sgv = div_v(gvh, s.unsqueeze(-1))
            return (u @ (ga @ vh + sgv - (sgv @ vh.mH) @ vh),)
        return (u @ (ga @ vh),)

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


def _check_svd_gauge(im_u, im_v):
    """torch's check that a loss of complex singular vectors does not depend on their phases (u_i and
    v_i are defined up to one factor e^{i phi}): Im diag(skew(U^H gU)) = -Im diag(skew(V^H gV)) (its
    tolerances, 1e-2 for both)."""
    if B.numel(im_u) and bool(B.any(B.abs(im_u + im_v) > 1e-2 + 1e-2 * B.abs(im_v))):
        raise RuntimeError("svd_backward: The singular vectors in the complex case are specified up to multiplication "
                           "by e^{i phi}. The specified loss function depends on this phase term, making it "
                           "ill-defined.")


def _qr_backward(q, r, gq, gr):
    """torch's linalg_qr_backward for m >= n: ``gA = (gQ + Q copyltu(triu(gR R^T - Q^T gQ))) R^-T``."""
    ga = B.matmul(gr, _h(r)) - B.matmul(_h(q), gq)
    ga = ga - _tril(ga, -1)                          # triu
    ga = _scale_diagonal(ga + _h(ga), 0.5)
    return _right_solve(B.matmul(q, ga) + gq, _h(r))


def _qr_graph(q, r, gq, gr, halve):
    """``_qr_backward`` with recorded ops (R^-T by a triangular solve, as torch's); ``halve`` the
    constant (k, k) that halves a diagonal."""
    ga = (gr @ r.mH - q.mH @ gq).triu()
    ga = (ga + ga.mH) * halve
    return SolveTriangular.apply(r, (q @ ga + gq).mH, True, False).mH


class Qr(Function):
    """Packed ``(Q, R)`` of A (..., m, n), torch's gradient: ``_qr_backward`` for m >= n; for m < n
    A = [X Y] with X = Q U square and Y = Q V, so Y's gradient is Q gV and Q's grows by Y gV^T;
    recorded too for a real A (``backward_graph``)."""
    complex_graph = True

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

    def backward_graph(self, g):
        q0, r0 = self._differentiable()
        m, n = q0.shape[-2], r0.shape[-1]
        q, r = _split(Qr.apply(*self.inputs), [q0.shape, r0.shape])
        gq, gr = _split(g, [q0.shape, r0.shape])
        halve = const(1 - 0.5 * _eye_like(r0, r0.shape[-2]))      # R is (k, n), k = min(m, n) here
        if m >= n:
            return (_qr_graph(q, r, gq, gr, halve),)
        u, v, gu, gv = r[..., :m], r[..., m:], gr[..., :m], gr[..., m:]
        gx = _qr_graph(q, u, gq + (q @ v) @ gv.mH, gu, halve)
        return (Cat.apply(gx, q @ gv, axis=gx.ndim - 1),)

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
