"""gt.func's leftovers beside torch.func 2.13, each case computed by both libraries: ``gt.autograd.grad``
in the function of ``jvp``/``jacfwd`` on tensors made there or given to it (torch's level records no
reverse-mode graph of them and refuses; gt computed); ``jvp``, ``jacfwd``, ``hessian`` and ``linearize``
inside the user's ``forward_ad.dual_level()`` (torch refuses: forward AD levels do not nest; gt
computed); ``vmap``'s refusal of a captured tensor changed by a batched value in torch's words (gt named
``index_put_`` for ``c[0] = v``, ``add_`` for ``sub_``, and gave its own text for a mapped slice
written); the item assignment's op in a derivative transform's refusal (``aten::copy_`` for a
basic index, as torch's; gt said ``aten::index_put_``); and a custom ``autograd.Function`` whose forward
takes ``ctx`` inside a transform (torch refuses: it must override ``setup_context``; gt computed)."""

import numpy as np
import pytest
import torch

import gt

_RNG = np.random.default_rng(11)
_X, _T, _W = _RNG.standard_normal(3), _RNG.standard_normal(3), _RNG.standard_normal(3)


def _outcome(fn):
    """``("ok", value)`` or ``(exception type's name, message)``, for comparing the two libraries."""
    try:
        return "ok", fn()
    except Exception as exc:           # noqa: BLE001 (the type and the text are the comparison)
        return type(exc).__name__, str(exc)


def _np(t):
    return np.asarray(t.detach().tolist())


def _same(got, want):
    assert got[0] == want[0], (got, want)
    if got[0] != "ok":
        assert got[1] == want[1]
        return
    for g, w in zip(got[1], want[1]):
        np.testing.assert_allclose(_np(g), _np(w), rtol=1e-12, atol=1e-14)


# ---- 1. gt.autograd.grad in the function of a forward transform ---------------------------------------
_GRADS = {   # (w captured, requires grad; pre = (w * w).sum() made before the transform)
    "(w * x).sum() by w": lambda lib, w, pre, x: lib.autograd.grad((w * x).sum(), w)[0],
    "(w * w).sum() by w": lambda lib, w, pre, x: lib.autograd.grad((w * w).sum(), w)[0],
    "(w * x).sum() by x": lambda lib, w, pre, x: lib.autograd.grad((w * x).sum(), x)[0],
    "w[0] by w": lambda lib, w, pre, x: lib.autograd.grad(w[0], w)[0],
    "[pre, (w * w).sum()] by w": lambda lib, w, pre, x: lib.autograd.grad([pre, (w * w).sum()], w)[0],
    "pre by x": lambda lib, w, pre, x: lib.autograd.grad(pre, x)[0],
    "pre by x * 2": lambda lib, w, pre, x: lib.autograd.grad(pre, x * 2)[0],
    "pre by w": lambda lib, w, pre, x: lib.autograd.grad(pre, w, retain_graph=True)[0],
    "w by w": lambda lib, w, pre, x: lib.autograd.grad(w, w, lib.ones(3, dtype=lib.float64))[0],
}
_FORWARD = {
    "jvp": lambda lib, f, x, t: lib.func.jvp(f, (x,), (t,)),
    "jacfwd": lambda lib, f, x, t: (lib.func.jacfwd(f)(x),),
}


@pytest.mark.parametrize("transform", list(_FORWARD))
@pytest.mark.parametrize("case", list(_GRADS))
def test_autograd_grad_in_a_forward_transform(transform, case):
    # torch's jvp level records no reverse-mode graph of its inputs and of the tensors made at it (they
    # require no grad there); a tensor made outside it is differentiated as usual
    def run(lib):
        w = lib.tensor(_W.tolist(), dtype=lib.float64, requires_grad=True)
        pre = (w * w).sum()
        x, t = lib.tensor(_X.tolist(), dtype=lib.float64), lib.tensor(_T.tolist(), dtype=lib.float64)

        def f(x):
            return x * _GRADS[case](lib, w, pre, x).sum()
        return _outcome(lambda: _FORWARD[transform](lib, f, x, t))
    _same(run(gt), run(torch))


# ---- 2. a forward transform inside the user's forward AD level ---------------------------------------
_IN_DUAL = {
    "jvp": lambda lib, x, t: lib.func.jvp(lib.sin, (x,), (t,)),
    "jvp of a dual tensor": lambda lib, x, t: lib.func.jvp(
        lib.sin, (lib.autograd.forward_ad.make_dual(x, t),), (t,)),
    "jacfwd": lambda lib, x, t: (lib.func.jacfwd(lib.sin)(x),),
    "hessian": lambda lib, x, t: (lib.func.hessian(lambda y: y.sin().sum())(x),),
    "linearize": lambda lib, x, t: (lib.func.linearize(lib.sin, x)[1](t),),
    "vmap of jvp": lambda lib, x, t: lib.func.vmap(lambda y: lib.func.jvp(lib.sin, (y,), (y,)))(x.reshape(3, 1)),
    "grad of jvp": lambda lib, x, t: (lib.func.grad(lambda y: lib.func.jvp(lib.sin, (y,), (t,))[1].sum())(x),),
    "jvp with a bad tangent's shape": lambda lib, x, t: lib.func.jvp(lib.sin, (x,), (t[:2],)),
    "jacrev": lambda lib, x, t: (lib.func.jacrev(lib.sin)(x),),
    "vjp": lambda lib, x, t: (lib.func.vjp(lib.sin, x)[1](t)[0],),
}


@pytest.mark.parametrize("case", list(_IN_DUAL))
def test_forward_transform_inside_dual_level(case):
    # torch's forward transforms enter a forward AD level of their own (and after the checks of their
    # arguments' structure); the reverse ones run there

    def run(lib):
        x, t = lib.tensor(_X.tolist(), dtype=lib.float64), lib.tensor(_T.tolist(), dtype=lib.float64)
        with lib.autograd.forward_ad.dual_level():
            got = _outcome(lambda: _IN_DUAL[case](lib, x, t))
        after = lib.func.jvp(lib.sin, (x,), (t,))       # the level left: the transform runs again
        return got, after
    (got, got_after), (want, want_after) = run(gt), run(torch)
    _same(got, want)
    _same(("ok", got_after), ("ok", want_after))


def test_forward_transform_inside_dual_level_checks_structure_first():
    for lib in (gt, torch):
        x = lib.ones(2, dtype=lib.float64)
        with lib.autograd.forward_ad.dual_level():
            with pytest.raises(RuntimeError, match="Expected primals to be a tuple"):
                lib.func.jvp(lib.sin, [x], [x])


# ---- 3. vmap: a captured tensor changed by batched values, torch's words -----------------------------
_VMAP_WRITES = {
    "c[0] = x[0] * 0": lambda lib, c, x: c.__setitem__(0, x[0] * 0),
    "c[0] = x.sum()": lambda lib, c, x: c.__setitem__(0, x.sum()),
    "c[(0,)] = x.sum() * 0": lambda lib, c, x: c.__setitem__((0,), x.sum() * 0),
    "c[tensor(0)] = x.sum()": lambda lib, c, x: c.__setitem__(lib.tensor(0), x.sum()),
    "c[0] = x[0]": lambda lib, c, x: c.__setitem__(0, x[0]),
    "c[:] = x": lambda lib, c, x: c.__setitem__(slice(None), x),
    "c[...] = x": lambda lib, c, x: c.__setitem__(Ellipsis, x),
    "c[[0]] = x[:1]": lambda lib, c, x: c.__setitem__([0], x[:1]),
    "c[c > -1] = x[0]": lambda lib, c, x: c.__setitem__(c > -1, x[0]),
    "c[[0]] = x[:1] * 0": lambda lib, c, x: c.__setitem__([0], x[:1] * 0),
    "index_put_": lambda lib, c, x: c.index_put_((lib.tensor([0]),), x[:1]),
    "copy_(x)": lambda lib, c, x: c.copy_(x),
    "copy_(x * 2)": lambda lib, c, x: c.copy_(x * 2),
    "add_(x)": lambda lib, c, x: c.add_(x),
    "add_(x * 2)": lambda lib, c, x: c.add_(x * 2),
    "sub_(x)": lambda lib, c, x: c.sub_(x),
    "sub_(x * 0)": lambda lib, c, x: c.sub_(x * 0),
    "c[0].add_(x[0])": lambda lib, c, x: c[0].add_(x[0]),
    "fill_(x[0])": lambda lib, c, x: c.fill_(x[0]),
    "index_add_": lambda lib, c, x: c.index_add_(0, lib.tensor([0, 1]), x),
    # values that depend on the shape alone, not made from x: torch writes them once
    "copy_(ones(x.shape))": lambda lib, c, x: c.copy_(lib.ones(x.shape, dtype=lib.float64)),
}


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("case", list(_VMAP_WRITES))
def test_vmap_batched_write_into_captured_in_torchs_words(case, nested):
    if case.startswith("c[0].") and gt.zeros(2, dtype=gt.float64)._placed is not None:
        pytest.skip("gt refuses a change in place of x[i] of a sharded x first (a copy of a row, not a view)")

    def run(lib):
        c = lib.zeros(2, dtype=lib.float64)
        xs = lib.tensor(np.arange(6.0).reshape(3, 2).tolist(), dtype=lib.float64)

        def f(x):
            _VMAP_WRITES[case](lib, c, x)
            return x * 2
        vmapped = (lambda v: lib.func.vmap(lambda y: lib.func.vmap(f)(y))(v.reshape(3, 1, 2))) if nested else \
            lib.func.vmap(f)
        got = _outcome(lambda: (vmapped(xs), c))
        return got if got[0] != "ok" else ("ok", (got[1][0], c))
    _same(run(gt), run(torch))


_GRAD_WRITES = {
    "c[0] = x[0]": lambda lib, c, x: c.__setitem__(0, x[0]),
    "c[:] = x": lambda lib, c, x: c.__setitem__(slice(None), x),
    "c[None] = x": lambda lib, c, x: c.__setitem__(None, x),
    "c[True] = x": lambda lib, c, x: c.__setitem__(True, x),
    "c[0] = 1.0": lambda lib, c, x: c.__setitem__(0, 1.0),
    "c[tensor(0)] = x.sum()": lambda lib, c, x: c.__setitem__(lib.tensor(0), x.sum()),
    "c[[0]] = x[:1]": lambda lib, c, x: c.__setitem__([0], x[:1]),
    "c[tensor(True)] = x.sum()": lambda lib, c, x: c.__setitem__(lib.tensor(True), x.sum()),
    "c[c > -1] = x": lambda lib, c, x: c.__setitem__(c > -1, x),
}


@pytest.mark.parametrize("case", list(_GRAD_WRITES))
def test_item_assignment_into_captured_names_torchs_op(case):
    # torch writes a basic index through a view (aten::copy_), index tensors through aten::index_put_
    def run(lib):
        c = lib.zeros(3, dtype=lib.float64)

        def f(x):
            _GRAD_WRITES[case](lib, c, x)
            return (x * 2).sum()
        return _outcome(lambda: lib.func.grad(f)(lib.tensor(_X.tolist(), dtype=lib.float64)))
    _same(run(gt), run(torch))


# ---- 5. a custom autograd.Function whose forward takes ctx, inside a transform ------------------------
def _functions(lib):
    class WithCtx(lib.autograd.Function):      # torch's older style: refused by its transforms
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 2 * x * g

    class WithSetup(lib.autograd.Function):    # forward without ctx, and setup_context: accepted
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])
            ctx.save_for_forward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return 2 * x * g

        @staticmethod
        def jvp(ctx, t):
            x, = ctx.saved_tensors
            return 2 * x * t
    return {"forward(ctx, x)": WithCtx, "setup_context": WithSetup}


_CUSTOM = {
    "grad": lambda lib, f, x: (lib.func.grad(lambda y: f.apply(y).sum())(x),),
    "vjp": lambda lib, f, x: lib.func.vjp(f.apply, x)[1](x),
    "jacrev": lambda lib, f, x: (lib.func.jacrev(f.apply)(x),),
    "jvp": lambda lib, f, x: lib.func.jvp(f.apply, (x,), (x,)),
    "a constant in grad": lambda lib, f, x: (lib.func.grad(lambda y: (y * f.apply(x)).sum())(x),),
    "in a dual_level": lambda lib, f, x: _in_dual(lib, f, x),
}
_CUSTOM_WITH_CTX = {   # (the setup_context style there needs a vmap rule: tests/test_func_custom_vmap_parity.py)
    "vmap": lambda lib, f, x: (lib.func.vmap(f.apply)(x.reshape(3, 1)),),
    "jacfwd": lambda lib, f, x: (lib.func.jacfwd(f.apply)(x),),
    "hessian": lambda lib, f, x: (lib.func.hessian(lambda y: f.apply(y).sum())(x),),
}


def _in_dual(lib, f, x):
    fa = lib.autograd.forward_ad
    with fa.dual_level():
        return tuple(fa.unpack_dual(f.apply(fa.make_dual(x, x * 2)) * x))


@pytest.mark.parametrize("case, style", [(c, s) for c in _CUSTOM for s in ("forward(ctx, x)", "setup_context")]
                         + [(c, "forward(ctx, x)") for c in _CUSTOM_WITH_CTX])
def test_custom_function_in_a_transform(case, style):
    # torch's transforms refuse a Function whose forward takes ctx (its forward AD level does not)
    def run(lib):
        x = lib.tensor(_X.tolist(), dtype=lib.float64)
        return _outcome(lambda: {**_CUSTOM, **_CUSTOM_WITH_CTX}[case](lib, _functions(lib)[style], x))
    _same(run(gt), run(torch))
