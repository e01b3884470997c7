"""The differentiable ops of gt.linalg's LU factorization, triangular and Cholesky solves and
matrix exponential, with torch's backward formulas (FunctionsManual.cpp; conjugate transposes
``_h`` for complex matrices), recorded too for real inputs (``backward_graph``: ``create_graph=True``); the
conventions of gt/ops/linalg_ops.py hold (matrices on the last two axes, equal batch shapes,
several results packed into one array).
"""

from gt.autograd import Function
from gt import dtypes
from gt.backend import B
from gt.ops._graph import const
from gt.ops.linalg_ops import Cholesky, _h, _pack, _t, _tril, _unpack
from gt.ops.shape import Cat


def _triu(x, k=0):
    """The upper triangle of ``x`` (..., n, m) from the ``k``-th diagonal."""
    return x - _tril(x, k - 1)


def _cols(x, start, stop):
    return B.getitem(x, (Ellipsis, slice(start, stop)))


def _rows(x, start, stop):
    return B.getitem(x, (Ellipsis, slice(start, stop), slice(None)))


def permutation(pivots, m, dtype):
    """The permutation matrices P (..., m, m) of LAPACK's 1-based row swaps ``pivots`` (..., k):
    ``A = P @ L @ U`` (row i was swapped with row ``pivots[i] - 1``, for i = 0, 1, ...)."""
    batch = tuple(pivots.shape[:-1])
    perm = B.copy(B.broadcast_to(B.arange(0, m, 1, dtypes.int64), batch + (m,)))
    swap = B.astype(pivots, dtypes.int64) - 1
    for i in range(pivots.shape[-1]):
        j = _cols(swap, i, i + 1)
        moved = B.take_along_axis(perm, j, -1)
        B.put_along_axis(perm, j, B.copy(_cols(perm, i, i + 1)), -1)
        B.setitem(perm, (Ellipsis, slice(i, i + 1)), moved)
    rows = B.reshape(B.arange(0, m, 1, dtypes.int64), (m, 1))
    return B.astype(rows == B.reshape(perm, batch + (1, m)), dtype)


def unpack(lu, pivots):
    """``(P (..., m, m), L (..., m, k) unit lower, U (..., k, n) upper)`` of a packed LU."""
    m, n = lu.shape[-2:]
    k = min(m, n)
    low = _tril(_cols(lu, 0, k), -1) + B.astype(_offsets_eq(m, k), B.dtype_of(lu))
    return permutation(pivots, m, B.dtype_of(lu)), low, _triu(_rows(lu, 0, k))


def _offsets_eq(m, k):
    rows = B.reshape(B.arange(0, m, 1, dtypes.int64), (m, 1))
    return rows == B.reshape(B.arange(0, k, 1, dtypes.int64), (1, k))


def lu_backward(g_low, g_up, p, low, up):
    """torch's linalg_lu_backward: the gradient of A = P L U from those of L (..., m, k) and
    U (..., k, n) (square, wide m < n and tall m > n cases)."""
    m, n = low.shape[-2], up.shape[-1]
    k = min(m, n)
    tri = B.solve_triangular
    if m == n:
        ga = _tril(B.matmul(_h(low), g_low), -1) + _triu(B.matmul(g_up, _h(up)))
        ga = _h(tri(up, _h(ga), True, False))                     # ga U^-H
        ga = tri(_h(low), ga, True, True)                         # L^-H ga
    elif m < n:
        up1 = _cols(up, 0, k)
        ga = B.matmul(_h(low), g_low) - B.matmul(_triu(g_up), _h(up))
        ga = _h(tri(up1, _h(_tril(ga, -1)), True, False))
        ga = B.concatenate([ga + _triu(_cols(g_up, 0, k)), _cols(g_up, k, n)], axis=-1)
        ga = tri(_h(low), ga, True, True)
    else:
        low1 = _rows(low, 0, k)
        ga = B.matmul(g_up, _h(up)) - B.matmul(_h(low), _tril(g_low, -1))
        ga = tri(_h(low1), _triu(ga), True, True)
        ga = B.concatenate([ga + _tril(_rows(g_low, 0, k), -1), _rows(g_low, k, m)], axis=-2)
        ga = _h(tri(up, _h(ga), True, False))
    return B.matmul(p, ga)


def _lu_graph(g_low, g_up, p, low, up):
    """``lu_backward`` with recorded ops on tensors (``p`` a constant)."""
    m, n = low.shape[-2], up.shape[-1]
    k = min(m, n)
    tri = SolveTriangular.apply
    if m == n:
        ga = (low.mT @ g_low).tril(-1) + (g_up @ up.mT).triu()
        ga = tri(low.mT, tri(up, ga.mT, True, False).mT, True, True)
    elif m < n:
        ga = low.mT @ g_low - g_up.triu() @ up.mT
        ga = tri(up[..., :k], ga.tril(-1).mT, True, False).mT
        ga = tri(low.mT, Cat.apply(ga + g_up[..., :k].triu(), g_up[..., k:], axis=ga.ndim - 1), True, True)
    else:
        ga = g_up @ up.mT - low.mT @ g_low.tril(-1)
        ga = tri(low[..., :k, :].mT, ga.triu(), True, True)
        ga = Cat.apply(ga + g_low[..., :k, :].tril(-1), g_low[..., k:, :], axis=ga.ndim - 2)
        ga = tri(up, ga.mT, True, False).mT
    return p @ ga


def _lu_parts(lu, pivots):
    """``(P, L, U)`` of the recorded packed ``lu`` (..., m, n) and the engine's ``pivots``: P a constant."""
    m, n = lu.shape[-2:]
    k = min(m, n)
    p = const(permutation(pivots, m, lu.dtype))
    return p, lu[..., :k].tril(-1) + const(B.astype(_offsets_eq(m, k), lu.dtype)), lu[..., :k, :].triu()


class LuFactor(Function):
    """Packed ``(LU (..., m, n), pivots (..., k), info (...))`` of A (pivots and info as floats, exact;
    the tensor layer casts them to int32). Gradient: torch's lu_factor_ex_backward through L and U,
    recorded too for a real A (``backward_graph``: the same formula, P a constant)."""
    complex_graph = "holomorphic"

    def forward(self, a):
        lu, pivots, info = B.lu_factor(a)
        self.save(lu, pivots)
        dtype = B.dtype_of(a)
        return _pack([lu, B.astype(pivots, dtype), B.astype(info, dtype)], tuple(a.shape[:-2]))

    def backward(self, g):
        lu, pivots = self.saved
        g_lu = _unpack(g, [lu.shape])[0]
        p, low, up = unpack(lu, pivots)
        k = low.shape[-1]
        return (lu_backward(_tril(_cols(g_lu, 0, k), -1), _triu(_rows(g_lu, 0, k)), p, low, up),)

    def backward_graph(self, g):
        lu0, pivots = self.saved
        m, n = lu0.shape[-2:]
        k = min(m, n)
        lu = LuFactor.apply(self.inputs[0])[..., :m * n].reshape(tuple(lu0.shape))
        g_lu = g[..., :m * n].reshape(tuple(lu0.shape))
        return (_lu_graph(g_lu[..., :k].tril(-1), g_lu[..., :k, :].triu(), *_lu_parts(lu, pivots)),)

    def tangent(self, ta):
        """Forward AD (gt/autograd/forward_ad.py; torch's linalg_lu_jvp): for the square block
        ``X = L^-1 P^T dA U^-1``, ``dL = L tril(X, -1)``, ``dU = triu(X) U``; the rest of a wide U
        ``L^-1 (P^T dA_2 - dL U_2)``, of a tall L ``(P^T dA_2 - L_2 dU) U^-1``; packed as the LU."""
        lu, pivots = self.saved
        p, low, up = unpack(lu, pivots)
        m, n, k = low.shape[-2], up.shape[-1], low.shape[-1]
        tri, pda = B.solve_triangular, B.matmul(_t(p), ta)
        low1, up1, pda1 = _rows(low, 0, k), _cols(up, 0, k), _cols(_rows(pda, 0, k), 0, k)
        x = _t(tri(_t(up1), _t(tri(low1, pda1, False, True)), False, False))
        d_low, d_up = B.matmul(low1, _tril(x, -1)), B.matmul(_triu(x), up1)
        if n > k:
            rest = tri(low1, _cols(pda, k, n) - B.matmul(d_low, _cols(up, k, n)), False, True)
            d_up = B.concatenate([d_up, rest], axis=-1)
        if m > k:
            rest = _rows(pda, k, m) - B.matmul(_rows(low, k, m), d_up)
            d_low = B.concatenate([d_low, _t(tri(_t(up1), _t(rest), False, False))], axis=-2)
        d_lu = B.concatenate([_tril(d_low, -1), B.zeros(d_low.shape[:-1] + (n - k,), B.dtype_of(d_low))], axis=-1)
        d_lu = d_lu + B.concatenate([d_up, B.zeros(d_up.shape[:-2] + (m - k, n), B.dtype_of(d_up))], axis=-2)
        return _pack([d_lu, B.zeros(pivots.shape, B.dtype_of(d_lu)), B.zeros(pivots.shape[:-1], B.dtype_of(d_lu))],
                     tuple(ta.shape[:-2]))


def _lu_solve(lu, pivots, b, adjoint):
    """X with ``A X = b`` (``adjoint``: ``A^H X = b``) for A = P L U given as its packed LU."""
    p, low, up = unpack(lu, pivots)
    tri = B.solve_triangular
    if adjoint:                   # U^H L^H P^T X = b
        return B.matmul(p, tri(_h(low), tri(_h(up), b, False, False), True, True))
    return tri(up, tri(low, B.matmul(_t(p), b), False, True), True, False)


class LuSolve(Function):
    """X with ``A X = B`` (``adjoint``: ``A^T X = B``), A = P L U from ``lu_factor``. Gradients:
    ``gB`` the solve with the other ``adjoint``; ``gA = -gB X^T`` (``adjoint``: ``-X gB^T``) carried
    to the packed LU through A = P L U (``tril(P^T gA U^T, -1) + triu(L^T P^T gA)``); recorded too
    for real inputs (``backward_graph``)."""
    complex_graph = True       # the adjoint solve and mH: written for complex tensors

    def forward(self, lu, pivots, b, adjoint=False):
        x = _lu_solve(lu, pivots, b, adjoint)
        self.save(lu, pivots, x)
        self.save_for_graph(b)        # backward_graph solves again, from the inputs
        self.adjoint = adjoint
        return x

    def backward(self, g):
        lu, pivots, x = self.saved
        gb = _lu_solve(lu, pivots, g, not self.adjoint)
        g_lu = None
        if self.needs_input_grad[0]:
            ga = -B.matmul(x, _h(gb)) if self.adjoint else -B.matmul(gb, _h(x))
            p, low, up = unpack(lu, pivots)
            pga = B.matmul(_t(p), ga)
            g_lu = _tril(B.matmul(pga, _h(up)), -1) + _triu(B.matmul(_h(low), pga))
        return g_lu, None, (gb if self.needs_input_grad[2] else None)

    def backward_graph(self, g):
        lu, pivots, b = self.inputs[:3]
        gb = LuSolve.apply(lu, pivots, g, not self.adjoint)
        g_lu = None
        if self.needs_input_grad[0]:
            x = LuSolve.apply(lu, pivots, b, self.adjoint)
            ga = -(x @ gb.mH) if self.adjoint else -(gb @ x.mH)
            p, low, up = _lu_parts(lu, self.saved[1])
            pga = p.mT @ ga
            g_lu = (pga @ up.mH).tril(-1) + (low.mH @ pga).triu()
        return g_lu, None, (gb if self.needs_input_grad[2] else None)

    def tangent(self, t_lu, _pivots, t_b, _adjoint=None):
        """Forward AD (gt/autograd/forward_ad.py): ``dX = A^-1 (dB - dA X)``, ``dA = P (dL U + L dU)``
        from the LU's tangent (``adjoint``: with ``dA^H`` and the adjoint solve; a tangent None: none)."""
        lu, pivots, x = self.saved
        rhs = B.zeros(x.shape, B.dtype_of(x)) if t_b is None else t_b
        if t_lu is not None:
            p, low, up = unpack(lu, pivots)
            d_a = B.matmul(p, B.matmul(_tril(t_lu, -1), up) + B.matmul(low, _triu(t_lu)))
            rhs = rhs - B.matmul(_h(d_a) if self.adjoint else d_a, x)
        return _lu_solve(lu, pivots, rhs, self.adjoint)


class SolveTriangular(Function):
    """X with ``A X = B`` for the ``upper`` (or lower) triangular A (``unitriangular``: its diagonal
    read as ones). torch's gradients: ``gB = solve_triangular(A^T, G)``, ``gA = -gB X^T`` kept on
    the triangle that is read."""
    complex_graph = "holomorphic"

    def forward(self, a, b, upper=False, unitriangular=False):
        x = B.solve_triangular(a, b, upper, unitriangular)
        self.save(a, x)
        self.save_for_graph(b)        # backward_graph solves again, from the inputs
        self.upper, self.unit = upper, unitriangular
        return x

    def backward(self, g):
        a, x = self.saved
        gb = B.solve_triangular(_h(a), g, not self.upper, self.unit)
        ga = None
        if self.needs_input_grad[0]:
            ga = -B.matmul(gb, _h(x))
            k = 1 if self.unit else 0
            ga = _triu(ga, k) if self.upper else _tril(ga, -k)
        return ga, gb

    def backward_graph(self, g):
        a, b = self.inputs[:2]
        gb = SolveTriangular.apply(a.mT, g, not self.upper, self.unit)
        ga = None
        if self.needs_input_grad[0]:
            ga = -(gb @ SolveTriangular.apply(a, b, self.upper, self.unit).mT)
            k = 1 if self.unit else 0
            ga = ga.triu(k) if self.upper else ga.tril(-k)
        return ga, gb


def _cholesky_solve(b, factor, upper):
    tri = B.solve_triangular
    if upper:                     # A = U^H U
        return tri(factor, tri(_h(factor), b, False, False), True, False)
    return tri(_h(factor), tri(factor, b, False, False), True, False)


class CholeskySolve(Function):
    """X with ``A X = B`` for ``A = L L^H`` (``upper``: ``U^H U``) given its factor; torch's gradients:
    ``gB = cholesky_solve(G)``, ``gL = -(gB X^H + X gB^H) L`` (``upper``: ``-U (...)``), a full
    matrix as torch's."""
    complex_graph = True

    def forward(self, b, factor, upper=False):
        x = _cholesky_solve(b, factor, upper)
        self.save(factor, x)
        self.save_for_graph(b)        # backward_graph solves again, from the inputs
        self.upper = upper
        return x

    def backward(self, g):
        factor, x = self.saved
        gb = _cholesky_solve(g, factor, self.upper)
        gf = None
        if self.needs_input_grad[1]:
            common = B.matmul(gb, _h(x))
            common = common + _h(common)
            gf = -B.matmul(factor, common) if self.upper else -B.matmul(common, factor)
        return gb, gf

    def backward_graph(self, g):
        b, factor = self.inputs[:2]
        gb = CholeskySolve.apply(g, factor, self.upper)
        gf = None
        if self.needs_input_grad[1]:
            common = gb @ CholeskySolve.apply(b, factor, self.upper).mH
            common = common + common.mH
            gf = -(factor @ common) if self.upper else -(common @ factor)
        return gb, gf


class MatrixExp(Function):
    """exp(A) (..., n, n); gradient (torch's): the top-right block of exp([[A^T, G], [0, A^T]])."""
    complex_graph = "holomorphic"

    def forward(self, a):
        self.save(a)
        return B.matrix_exp(a)

    def backward(self, g):
        a = self.saved[0]
        n = a.shape[-1]
        at = _h(a)
        zero = B.zeros(tuple(a.shape), B.dtype_of(a))
        big = B.concatenate([B.concatenate([at, g], axis=-1), B.concatenate([zero, at], axis=-1)], axis=-2)
        return (B.getitem(B.matrix_exp(big), (Ellipsis, slice(0, n), slice(n, 2 * n))),)

    def backward_graph(self, g):
        a = self.inputs[0]
        n, last = a.shape[-1], a.ndim - 1
        at = a.mT                     # real only: the recorded walk refuses complex tensors
        big = Cat.apply(Cat.apply(at, g, axis=last), Cat.apply(const(B.zeros(tuple(a.shape), a.dtype)), at, axis=last),
                        axis=last - 1)
        return (MatrixExp.apply(big)[..., :n, n:],)



class Permutation(Function):
    """The permutation matrices (..., m, m) in ``dtype`` of LAPACK pivots (int, no gradient)."""

    def forward(self, pivots, m, dtype):
        return permutation(pivots, m, dtype)


class CholeskyEx(Cholesky):
    """Packed ``(L (or U), info)`` of ``cholesky_ex``, info as a float (exact); Cholesky's gradient."""

    def forward(self, a, upper=False):
        low, info = B.cholesky_ex(_h(a) if upper else a)      # upper: A's upper triangle (torch's)
        self.save(low)
        self.upper = upper
        return _pack([_h(low) if upper else low, B.astype(info, B.dtype_of(a))], tuple(a.shape[:-2]))

    def backward(self, g):
        return super().backward(_unpack(g, [self.saved[0].shape])[0])

    def backward_graph(self, g):
        shape = tuple(self.inputs[0].shape)          # L's part of the packed gradient; info has none
        return super().backward_graph(g[..., :shape[-1] * shape[-2]].reshape(shape))


class Geqrf(Function):
    """Packed ``(a, tau)`` of LAPACK's geqrf. torch gives it no derivative: its results are on the
    tape (``requires_grad`` as the input's), and a backward through them raises as torch's."""

    def forward(self, a):
        h, tau = B.geqrf(a)
        return _pack([h, tau], tuple(a.shape[:-2]))

    def backward(self, g):
        raise NotImplementedError("the derivative for 'geqrf' is not implemented.")

    def backward_graph(self, g):
        raise NotImplementedError("the derivative for 'geqrf' is not implemented.")
