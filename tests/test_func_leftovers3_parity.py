"""gt.func's forward-mode leftovers beside torch.func 2.13, on random float64 inputs: a generator
function decorated with ``no_grad`` inside ``jvp``/``jacfwd`` (torch's forward mode ignores grad
mode: its tangents flow; gt's were zero); a write under ``inference_mode`` inside a
``forward_ad.dual_level`` (torch leaves the tangent as it was; gt's became zero); ``y.copy_(f(y))``
and ``y.add_(f(y))`` inside ``jvp``/``jacfwd`` (torch's forward mode computes; gt's reverse passes
raised the saved-value error); ``linearize``'s output after ``requires_grad_()`` inside its
function, or of an input that requires grad (torch's has a graph; gt's had none); a ``no_grad`` inside
a reverse transform nested in a forward one, or inside a forward one nested in a reverse one (torch's
tangents flow through it, its reverse levels do not record it; gt's one tape stopped both or neither);
``linearize``'s jvp_fn after a backward through the output (gt's raised the freed-graph error) and its
results' graph (torch's is recorded, to the tangent; gt's had none); an inference tensor made in a
reverse transform's function and saved for backward (torch refuses; gt computed)."""

from unittest import mock

import numpy as np
import pytest
import torch

import gt

_RNG = np.random.default_rng(7)
_X, _T, _W = _RNG.standard_normal(3), _RNG.standard_normal(3), _RNG.standard_normal(3)


def _pair(lib):
    return lib.tensor(_X.tolist(), dtype=lib.float64), lib.tensor(_T.tolist(), dtype=lib.float64)


def _np(t):
    return t.detach().numpy()


def _close(got, want):
    np.testing.assert_allclose(_np(got), _np(want), rtol=1e-10, atol=1e-12)


_DECORATORS = {"no_grad()": lambda lib: lib.no_grad(), "no_grad": lambda lib: lib.no_grad,
               "set_grad_enabled(False)": lambda lib: lib.set_grad_enabled(False)}


def _generator_user(lib, deco):
    @_DECORATORS[deco](lib)
    def steps(y):
        yield y.sin() * 3
        yield y * y

    def f(x):
        a, b = steps(x)
        return a + b
    return f


@pytest.mark.parametrize("how", ["jvp", "jacfwd"])
@pytest.mark.parametrize("deco", list(_DECORATORS))
def test_no_grad_generator_carries_tangents(how, deco):
    # each step of the generator runs under the decorator's mode, set for the user's module (it was
    # set for gt's own, whose no_grad means "not differentiated": zero tangents)
    def tangent(lib):
        x, t = _pair(lib)
        f = _generator_user(lib, deco)
        return lib.func.jvp(f, (x,), (t,))[1] if how == "jvp" else lib.func.jacfwd(f)(x)
    _close(tangent(gt), tangent(torch))


_WRITES = {"mul_": lambda y, x: y.mul_(3), "fill_": lambda y, x: y.fill_(2), "copy_": lambda y, x: y.copy_(x * x),
           "setitem": lambda y, x: y.__setitem__(slice(1, None), x[:2])}


@pytest.mark.parametrize("body", list(_WRITES))
def test_inference_mode_write_keeps_tangent(body):
    def run(lib):
        x, t = _pair(lib)
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            y = fwad.make_dual(x.clone(), t.clone()) * 1.5
            with lib.inference_mode():
                _WRITES[body](y, x)
            primal, tangent = fwad.unpack_dual(y * 2)
        return primal, tangent
    (gp, gtan), (tp, ttan) = run(gt), run(torch)
    _close(gp, tp)
    _close(gtan, ttan)


_SAVED_CHANGED = {
    "input.copy_(input.sin())": lambda x: x.copy_(x.sin()),
    "input.copy_(input.exp()) * 2": lambda x: x.copy_(x.exp()) * 2,
    "y.copy_(y.sin()) + y": lambda x: (lambda y: y.copy_(y.sin()) + y)(x * 1.5),
    "y[1:].copy_(y[:2].sin())": lambda x: (lambda y: (y[1:].copy_(y[:2].sin()), y * y)[1])(x * 1.0),
    "y.add_(y.tanh())": lambda x: (lambda y: y.add_(y.tanh()))(x * 2.0),
}


def _skip_on_mesh():
    # inputs sharded over the mesh: forward AD gathers copies, so jvp/jacfwd keep their reverse passes there
    # (which raise the saved-value error for some of these functions)
    if _pair(gt)[0]._placed is not None:
        pytest.skip("sharded inputs: forward AD gathers them")


@pytest.mark.parametrize("name", list(_SAVED_CHANGED))
def test_write_over_saved_value_in_jvp(name):
    # output, tangent, and the caller's primal and tangent after (a change of the input reaches both)
    def run(lib):
        x, t = _pair(lib)
        out, jv = lib.func.jvp(_SAVED_CHANGED[name], (x,), (t,))
        return out, jv, x, t
    _skip_on_mesh()
    for got, want in zip(run(gt), run(torch)):
        _close(got, want)


@pytest.mark.parametrize("name", list(_SAVED_CHANGED))
def test_write_over_saved_value_in_jacfwd(name):
    def run(lib):
        x, _ = _pair(lib)
        return lib.func.jacfwd(_SAVED_CHANGED[name])(x), x
    _skip_on_mesh()
    for got, want in zip(run(gt), run(torch)):
        _close(got, want)


def test_write_over_saved_value_in_jacrev_still_refused():
    # reverse mode cannot read the saved value: torch's jacrev refuses too
    for lib in (torch, gt):
        x, _ = _pair(lib)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            lib.func.jacrev(_SAVED_CHANGED["y.copy_(y.sin()) + y"])(x)


def _linearized(lib, inside):
    x, t = _pair(lib)
    if not inside:
        x.requires_grad_(True)

    def f(y):
        if inside:
            y.requires_grad_(True)
        return y.sin() * y
    out, jvp_fn = lib.func.linearize(f, x)
    return x, t, out, jvp_fn


@pytest.mark.parametrize("inside", [True, False], ids=["requires_grad_ inside", "input requires grad"])
def test_linearize_output_has_graph(inside):
    # (jvp_fn first: after a backward through the output gt's jvp_fn finds that graph freed, torch's not)
    got, want = _linearized(gt, inside), _linearized(torch, inside)
    _close(got[3](got[1]), want[3](want[1]))
    for x, t, out, jvp_fn in (got, want):
        assert x.requires_grad and out.requires_grad and out.grad_fn is not None
        (out * out).sum().backward()
    _close(got[2], want[2])
    _close(got[0].grad, want[0].grad)


@pytest.mark.parametrize("inside", [True, False], ids=["requires_grad_ inside", "input requires grad"])
def test_linearize_jvp_fn_after_backward_through_output(inside):
    # torch's jvp_fn runs its own trace: a backward through the output leaves it working (gt's raised the
    # freed-graph error), and its results are recorded without reaching the caller's tensor: a backward
    # through them leaves x.grad as the output's backward made it (gt's results had no graph)
    def run(lib):
        x, t, out, jvp_fn = _linearized(lib, inside)
        (out * out).sum().backward()
        grad = x.grad.clone()
        jv = jvp_fn(t)
        assert jv.requires_grad and jv.grad_fn is not None
        (jv * jv).sum().backward()
        return out, grad, jv, x.grad, jvp_fn(t * 2)
    for got, want in zip(run(gt), run(torch)):
        _close(got, want)


@pytest.mark.parametrize("outer", [True, False], ids=["input requires grad", "plain input"])
def test_linearize_gradient_through_tangent(outer):
    # jvp_fn is linear in its tangent, recorded as torch's: the gradient reaches a tangent that requires
    # grad (gt's result had no graph), twice over (the second call after the first's backward); under
    # no_grad, and for a plain input and tangent, the result requires no grad (as torch's)
    def run(lib):
        x, t = _pair(lib)
        x.requires_grad_(outer)
        t.requires_grad_(True)
        _, jvp_fn = lib.func.linearize(lambda y: y.sin() * y.exp(), x)
        first = jvp_fn(t)
        (first * first).sum().backward()
        grad = t.grad.clone()
        second = jvp_fn(t * 3)
        (second * second).sum().backward()
        with lib.no_grad():
            assert not jvp_fn(t).requires_grad
        assert jvp_fn(t.detach()).requires_grad == outer
        return first, grad, second, t.grad
    for got, want in zip(run(gt), run(torch)):
        _close(got, want)


_REVERSE_IN_DUAL = {
    "autograd.grad": lambda lib, d, w, v: lib.autograd.grad((v * d).sin().sum(), v)[0],
    "autograd.grad create_graph": lambda lib, d, w, v: lib.autograd.grad((v * d).sin().sum(), v, create_graph=True)[0],
    "autograd.grad relu": lambda lib, d, w, v: lib.autograd.grad((v * d.relu() * v).sum(), v)[0],
    "grad closure": lambda lib, d, w, v: lib.func.grad(lambda y: (y * d).sin().sum())(w),
    "grad of the dual": lambda lib, d, w, v: lib.func.grad(lambda y: (y * w).sin().sum())(d),
    "grad_and_value": lambda lib, d, w, v: lib.func.grad_and_value(lambda y: (y * d).exp().sum())(w),
    "grad has_aux": lambda lib, d, w, v: lib.func.grad(lambda y: ((y * d).sin().sum(), d * y), has_aux=True)(w),
    "vjp": lambda lib, d, w, v: lib.func.vjp(lambda y: (y * d).sin(), w)[1](d)[0],
    "vjp output": lambda lib, d, w, v: lib.func.vjp(lambda y: (y * d).sin(), w)[0],
    "jacrev": lambda lib, d, w, v: lib.func.jacrev(lambda y: (y * d).tanh())(w),
    "jacrev argnums": lambda lib, d, w, v: lib.func.jacrev(lambda a, b: a * b * d, argnums=(0, 1))(w, d)[1],
    "backward .grad": lambda lib, d, w, v: ((v * d).sin().sum().backward(), v.grad)[1],
}


def _flat(r):
    return [x for y in (r if isinstance(r, tuple) else (r,)) for x in _flat_one(y)]


def _flat_one(y):
    return list(y) if isinstance(y, tuple) else [y]


@pytest.mark.parametrize("name", list(_REVERSE_IN_DUAL))
def test_reverse_mode_inside_dual_level_carries_tangents(name):
    # torch's backward formulas run under forward AD: gradients (and the transforms' outputs) carry
    # tangents; gt's were cut from them (None); a plain backward's .grad has none in both
    _skip_on_mesh()     # (gt's forward AD refuses sharded tensors that require grad: MISSING.md)
    def run(lib):
        x, t = _pair(lib)
        w = lib.tensor(_W.tolist(), dtype=lib.float64)
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            d = fwad.make_dual(x, t)
            pairs = [fwad.unpack_dual(r) for r in _flat(_REVERSE_IN_DUAL[name](lib, d, w, w.clone().requires_grad_()))]
        return [(p, tangent) for p, tangent in pairs]
    got, want = run(gt), run(torch)
    assert len(got) == len(want)
    for (gp, gtan), (tp, ttan) in zip(got, want):
        _close(gp, tp)
        assert (gtan is None) == (ttan is None)
        if ttan is not None:
            _close(gtan, ttan)


_VMAP_WRITES = {   # a captured tensor changed by values made inside func: batched (torch refuses) or not
    "copy_(x * 0)": lambda lib, c, x: c.copy_(x * 0),
    "copy_(x - x)": lambda lib, c, x: c.copy_(x - x),
    "mul_(x.detach() * 0 + 2)": lambda lib, c, x: c.mul_(x.detach() * 0 + 2),
    "fill_((x * 0).sum())": lambda lib, c, x: c.fill_((x * 0).sum()),
    "add_((x * 0).sum())": lambda lib, c, x: c.add_((x * 0).sum()),
    "copy_(ones)": lambda lib, c, x: c.copy_(lib.ones(3, dtype=lib.float64)),
    "mul_(full of the slice's length)": lambda lib, c, x: c.mul_(lib.full((3,), float(x.shape[0]), dtype=lib.float64)),
}


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("name", list(_VMAP_WRITES))
def test_vmap_batched_values_equal_in_every_element(name, batch):
    # torch refuses a value computed from a mapped input even where every element's is the same (a
    # batch of one too); gt told batched values only by their differing, and made these changes
    def run(lib):
        c = lib.tensor([0.5, 1.0, 2.0], dtype=lib.float64)
        xs = lib.tensor(np.arange(3.0 * batch).reshape(batch, 3).tolist(), dtype=lib.float64)
        version = c._version
        try:
            out = lib.func.vmap(lambda x: (_VMAP_WRITES[name](lib, c, x), x * c)[1])(xs)
        except RuntimeError as e:
            return str(e), c, c._version - version
        return out, c, None
    (got, gc, gv), (want, tc, tv) = run(gt), run(torch)
    if isinstance(want, str):
        assert got == want and gv == 0 == tv      # torch's words; the tensor as it was
    else:
        _close(got, want)
    _close(gc, tc)


_BLOCKS = {    # a constant made inside the transformed function; torch's reverse levels do not record it
    "no_grad": lambda lib, f: _within(lib.no_grad(), f),
    "set_grad_enabled(False)": lambda lib, f: _within(lib.set_grad_enabled(False), f),
    "no_grad helper": lambda lib, f: lib.no_grad()(f)(),
    "detach": lambda lib, f: f().detach(),
}


def _within(ctx, f):
    with ctx:
        return f()


def _of_x(lib, block, x):      # a grad's function with a constant computed from the outer transform's input
    return lambda y: (y * _BLOCKS[block](lib, lambda: (x * 2).exp()) * x).sum()


def _of_y(lib, block, out=lambda r: r.sum()):       # ... from its own input
    return lambda y: out(y * _BLOCKS[block](lib, lambda: (y * 2).exp()) * y.sin())


_NESTED = {
    "jvp(grad)": lambda lib, b, x, t, w: lib.func.jvp(lambda x: lib.func.grad(_of_x(lib, b, x))(w), (x,), (t,)),
    "jvp(grad) own input": lambda lib, b, x, t, w: lib.func.jvp(lib.func.grad(_of_y(lib, b)), (x,), (t,)),
    "jacfwd(jacrev)": lambda lib, b, x, t, w: lib.func.jacfwd(lib.func.jacrev(_of_y(lib, b)))(x),
    "hessian": lambda lib, b, x, t, w: lib.func.hessian(_of_y(lib, b))(x),
    "jacfwd(vjp)": lambda lib, b, x, t, w: lib.func.jacfwd(
        lambda x: lib.func.vjp(_of_x(lib, b, x), w)[1](lib.tensor(1.0, dtype=lib.float64))[0])(x),
    "linearize(grad)": lambda lib, b, x, t, w: lib.func.linearize(lambda x: lib.func.grad(_of_x(lib, b, x))(w), x)[1](t),
    "vmap(hessian)": lambda lib, b, x, t, w: lib.func.vmap(lib.func.hessian(_of_y(lib, b)))(lib.stack([x, x * 0.5])),
    "grad(jvp)": lambda lib, b, x, t, w: lib.func.grad(
        lambda x: lib.func.jvp(_of_y(lib, b, lambda r: r), (x,), (t,))[1].sum())(x),
    "jacrev(jacfwd)": lambda lib, b, x, t, w: lib.func.jacrev(lib.func.jacfwd(_of_y(lib, b, lambda r: r)))(x),
    "jvp(vmap)": lambda lib, b, x, t, w: lib.func.jvp(
        lambda x: lib.func.vmap(_of_y(lib, b, lambda r: r))(x.reshape(3, 1)), (x,), (t,)),
    "jacrev(jacrev)": lambda lib, b, x, t, w: lib.func.jacrev(lib.func.jacrev(_of_y(lib, b)))(x),
    "grad(grad)": lambda lib, b, x, t, w: lib.func.grad(lambda x: lib.func.grad(_of_x(lib, b, x))(w).sum())(x),
}


@pytest.mark.parametrize("block", list(_BLOCKS))
@pytest.mark.parametrize("nest", list(_NESTED))
def test_no_grad_inside_nested_transforms(nest, block):
    # torch: a no_grad stops its reverse levels' recording only; forward mode's tangents flow through it
    # (gt's one tape for both levels dropped the constant's tangent, or differentiated an outer reverse
    # level through it); detach stops both, in both
    def run(lib):
        x, t = _pair(lib)
        return _flat(_NESTED[nest](lib, block, x, t, lib.tensor(_W.tolist(), dtype=lib.float64)))
    got, want = run(gt), run(torch)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        _close(g, w)


@pytest.mark.parametrize("block", ["no_grad", "detach"])
def test_no_grad_in_dual_level_reverse_constant(block):
    # autograd.grad inside a forward_ad.dual_level: the constant keeps its tangent, which the gradient carries
    _skip_on_mesh()
    def run(lib):
        x, t = _pair(lib)
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            d = fwad.make_dual(x, t)
            v = lib.tensor(_W.tolist(), dtype=lib.float64).requires_grad_()
            return fwad.unpack_dual(lib.autograd.grad(_of_x(lib, block, d)(v), v)[0])
    for g, w in zip(run(gt), run(torch)):
        _close(g, w)


_CALLER_GRAPH = {     # results of a forward transform, connected to the caller's graph
    "jvp tangent": lambda lib, f, x, t: lib.func.jvp(f, (x,), (t,))[1],
    "jvp output": lambda lib, f, x, t: lib.func.jvp(f, (x,), (t,))[0],
    "jacfwd": lambda lib, f, x, t: lib.func.jacfwd(f)(x),
    "hessian": lambda lib, f, x, t: lib.func.hessian(lambda y: f(y).sum())(x),
    "jvp(grad)": lambda lib, f, x, t: lib.func.jvp(lib.func.grad(lambda y: f(y).sum()), (x,), (t,))[1],
}


@pytest.mark.parametrize("how", list(_CALLER_GRAPH))
@pytest.mark.parametrize("by", ["backward", "autograd.grad"])
def test_no_grad_in_forward_transform_constant_for_caller(how, by):
    # the caller's graph does not record what a no_grad inside the function made (gt's backward
    # differentiated through it, the output's gradient too)
    def run(lib):
        x, t = _pair(lib)
        x.requires_grad_(True)
        r = _CALLER_GRAPH[how](lib, _of_y(lib, "no_grad", lambda r: r), x, t)
        loss = (r * r).sum()
        return lib.autograd.grad(loss, x)[0] if by == "autograd.grad" else (loss.backward(), x.grad)[1]
    _close(run(gt), run(torch))


def test_no_grad_in_linearize_constant_for_caller():
    # linearize's output is connected to the caller's graph; its jvp_fn still carries the constant's tangent
    def run(lib):
        x, t = _pair(lib)
        x.requires_grad_(True)
        out, jvp_fn = lib.func.linearize(_of_y(lib, "no_grad", lambda r: r), x)
        jv = jvp_fn(t)
        (out * out).sum().backward()
        return out, jv, x.grad
    for g, w in zip(run(gt), run(torch)):
        _close(g, w)


def _made_in_inference(lib, x):
    with lib.inference_mode():
        return (x * 2).exp()


_INFERENCE_USES = {    # (x, its tangent t, and c: made in inference mode outside the transforms)
    "grad": lambda lib, x, t, c: lib.func.grad(lambda y: (y * _made_in_inference(lib, x)).sum())(x),
    "grad of its input": lambda lib, x, t, c: lib.func.grad(lambda y: (y * _made_in_inference(lib, y)).sum())(x),
    "jvp(grad)": lambda lib, x, t, c: lib.func.jvp(
        lambda x: lib.func.grad(lambda y: (y * _made_in_inference(lib, x) * x).sum())(c * 0 + 1), (x,), (t,)),
    "jacrev": lambda lib, x, t, c: lib.func.jacrev(lambda y: y * _made_in_inference(lib, y))(x),
    "vjp": lambda lib, x, t, c: lib.func.vjp(lambda y: y * _made_in_inference(lib, x), x)[0],
    "grad, added": lambda lib, x, t, c: lib.func.grad(lambda y: (y + _made_in_inference(lib, y)).sum())(x),
    "grad, captured": lambda lib, x, t, c: lib.func.grad(lambda y: (y * c).sum())(x),
    "jvp": lambda lib, x, t, c: lib.func.jvp(lambda y: y * _made_in_inference(lib, y), (x,), (t,)),
    "vmap": lambda lib, x, t, c: lib.func.vmap(lambda y: y * _made_in_inference(lib, y))(x),
    "backward, outside transforms": lambda lib, x, t, c: (
        lambda w: ((w * _made_in_inference(lib, x) + c).sum().backward(), w.grad)[1])(x.clone().requires_grad_()),
}


@pytest.mark.parametrize("name", list(_INFERENCE_USES))
def test_inference_tensor_saved_in_reverse_transform(name):
    # torch refuses an op that saves for backward an inference tensor made inside a reverse transform's
    # function (grad, vjp, jacrev, also nested in jvp); gt computed as under no_grad. An addition saves
    # none, and one captured from outside or made in a forward transform or vmap is used as by torch.
    # Outside transforms torch refuses to save one too, as gt now does (it computed): the sharded
    # passes too (tests/test_inference_saved_parity.py).
    def run(lib, mode):
        x, t = _pair(lib)
        c = _made_in_inference(lib, t)
        with mock.patch.object(lib, "inference_mode", mode(lib)):
            try:
                return _flat(_INFERENCE_USES[name](lib, x, t, c))
            except RuntimeError as e:
                return str(e)
    got = run(gt, lambda lib: lib.inference_mode)
    want = run(torch, lambda lib: lib.inference_mode)
    assert isinstance(got, str) == isinstance(want, str), (got, want)
    if isinstance(want, str):
        assert got == want
        return
    for g, w in zip(got, want):
        _close(g, w)
