"""In-place changes inside gt.func's transforms beside torch 2.13, the leftovers of
tests/test_func_autograd_leftovers_parity.py: ``vmap`` makes the change of a captured tensor or
of an unmapped input once also where it is recorded for autograd, and a change of its shape
(values, gradients, shape and ``_version`` afterwards as torch's; a tensor captured for a
derivative transform around the vmap refused as torch's); ``jvp``/``vjp`` return an output that
is the input, or a view of it, as a view of the caller's primal (and its tangent as the caller's
tangent, or a view of it); ``linearize`` keeps the tangent through ``requires_grad_(False)``;
``detach_()`` of a forward transform's input is refused."""

import contextlib

import numpy as np
import pytest

import gt
from gt.backend import B
from helpers import torch_or_skip
from test_view_func_leftovers_parity import _outcome

X = np.arange(6.0).reshape(3, 2)
W = np.array([1.0, 2.0])


def _t(lib, a, requires_grad=False):
    return lib.tensor(a, dtype=lib.float64, requires_grad=requires_grad)


def _np(x):
    return None if x is None else np.asarray(x.detach().tolist())


# ---- 1. vmap: a captured tensor's change recorded for autograd, made once ----------------------
# each program: (w, x) -> (outputs of the vmap, the captured tensor, the loss to differentiate)
def _nonleaf(change, read=lambda c, x: x * c):
    def program(lib, w, xs):
        c = w * 1
        out = lib.func.vmap(lambda x: (change(c, w, x), read(c, x))[1])(xs)
        return out, c, out.sum() + (c * c).sum()
    return program


def _plain(change):
    def program(lib, w, xs):
        c = _t(lib, [0.5, 3.0])
        out = lib.func.vmap(lambda x: (change(c, w, x), x * c)[1])(xs)
        return out, c, out.sum() + c.sum()
    return program


def _outer_view(lib, w, xs):
    c = w * 1
    v = c[1:]
    out = lib.func.vmap(lambda x: (v.mul_(3), x * c)[1])(xs)
    return out, c, out.sum() + v.sum()


def _nested(lib, w, xs):
    c = w * 1
    out = lib.func.vmap(lib.func.vmap(lambda y: (c.mul_(2), y * c)[1]))(xs.reshape(3, 1, 2).expand(3, 2, 2))
    return out, c, out.sum() + c.sum()


def _read_before_and_after(lib, w, xs):
    c = w * 1
    out = lib.func.vmap(lambda x: (x * c, c.mul_(2), x * c))(xs)
    return out[2], c, 3 * out[0].sum() + out[2].sum()


def _hooked(lib, w, xs):
    c, seen = w * 1, []
    c.register_hook(lambda g: seen.append(g.detach().clone()))
    out = lib.func.vmap(lambda x: (c.mul_(2), x * c)[1])(xs)
    return out, c, out.sum() * 2 + seen.__len__()


def _no_grad_leaf(lib, w, xs):
    def f(x):
        with lib.no_grad():
            w.add_(1)
        return x * w
    out = lib.func.vmap(f)(xs)
    return out, w, out.sum()


def _unmapped(change, keyword=False):
    def program(lib, w, xs):
        c = w * 1
        f = lambda x, c: (change(c, w, x), x * c)[1]     # noqa: E731
        out = lib.func.vmap(lambda x, c=None: f(x, c))(xs, c=c) if keyword else \
            lib.func.vmap(f, in_dims=(0, None))(xs, c)
        return out, c, out.sum() + (c * c).sum()
    return program


VMAP_PROGRAMS = {
    "non-leaf mul_": _nonleaf(lambda c, w, x: c.mul_(2)),
    "non-leaf exp_": _nonleaf(lambda c, w, x: c.exp_()),
    "non-leaf add_ w": _nonleaf(lambda c, w, x: c.add_(w)),
    "non-leaf item assignment": _nonleaf(lambda c, w, x: c.__setitem__(0, 5.0)),
    "non-leaf view's mul_": _nonleaf(lambda c, w, x: c[0].mul_(3)),
    "non-leaf fill_": _nonleaf(lambda c, w, x: c.fill_(2.5)),
    "non-leaf two changes": _nonleaf(lambda c, w, x: (c.mul_(2), c.add_(w))),
    "non-leaf, x * c saved": _nonleaf(lambda c, w, x: c.mul_(2), lambda c, x: (x * c) * c),
    "plain mul_ w": _plain(lambda c, w, x: c.mul_(w)),
    "plain copy_ w": _plain(lambda c, w, x: c.copy_(w)),
    "plain add_ number": _plain(lambda c, w, x: c.add_(1)),
    "view taken outside": _outer_view,
    "nested vmap": _nested,
    "read before and after": _read_before_and_after,
    "hook on the captured": _hooked,
    "leaf under no_grad": _no_grad_leaf,
    "unmapped input mul_": _unmapped(lambda c, w, x: c.mul_(2)),
    "unmapped input's view mul_": _unmapped(lambda c, w, x: c[1:].mul_(3)),
    "keyword input fill_": _unmapped(lambda c, w, x: c.fill_(0.5), keyword=True),
    "keyword input mul_ under no_grad": _unmapped(lambda c, w, x: _under_no_grad(lib_of(c), lambda: c.mul_(3)), True),
    # refused by both: torch's leaf error; values batched inside func (gt's own message)
    "leaf add_": lambda lib, w, xs: (lib.func.vmap(lambda x: (w.add_(1), x * w)[1])(xs), w, None),
    "non-leaf add_ x": _nonleaf(lambda c, w, x: c.add_(x)),
    "non-leaf mul_ by values made inside": _nonleaf(lambda c, w, x: c.mul_(w * 2)),
    "plain add_ of values made inside, not batched": _plain(lambda c, w, x: c.add_(w.sum() + 1)),
    "plain add_ of values made inside, batched": _plain(lambda c, w, x: c.add_(x * 2)),
    "unmapped input add_ x": _unmapped(lambda c, w, x: c.add_(x)),
}


def lib_of(t):
    return gt if isinstance(t, gt.Tensor) else torch_or_skip()


def _under_no_grad(lib, fn):
    with lib.no_grad():
        return fn()


@pytest.mark.parametrize("name", list(VMAP_PROGRAMS))
def test_vmap_recorded_captured_change_made_once_as_torch(name):
    """torch's vmap changes a captured tensor once, also where the change goes on the tape (a
    tensor in the graph changed, or by values that require grad); gt refused those. gt runs func
    per element and puts the tensor back before each later one (values, history, version): the
    outputs, the tensor, its ``_version`` and the gradients of the mapped input and of ``w`` are
    torch's, also where an op saved the changed tensor for its backward. An unmapped input (in_dims
    None, a keyword argument) likewise: gt refused its change."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        w, xs = _t(lib, W, True), _t(lib, X, True)

        def run():
            out, c, loss = VMAP_PROGRAMS[name](lib, w, xs)
            # (a sharded tensor of the torch engine counts each shard's change: MISSING.md)
            version = c._version if getattr(c, "_placed", None) is None else "sharded"
            loss.backward()
            return _np(out), _np(c), version, _np(w.grad), _np(xs.grad)
        kind, res = _outcome(run)
        got.append((kind, res.split(" (")[0].split(": [")[0] if kind != "ok" else res, _np(w)))
    assert got[0][0] == got[1][0], got
    if got[1][0] != "ok":
        # the same words where the error is torch's own (the leaf; gt says which value changed in its own)
        assert got[0][1] == got[1][1] or got[0][1].startswith(("vmap(", "one of the variables")), got
        np.testing.assert_allclose(got[0][2], got[1][2], rtol=1e-12)
        return
    got = [(kind, *res) for kind, res, _ in got]
    (_, *ours), (_, *theirs) = got
    assert ours[2] in (theirs[2], "sharded"), (ours[2], theirs[2])
    for a, b in zip(ours[:2] + ours[3:], theirs[:2] + theirs[3:]):
        assert (a is None) == (b is None)
        if b is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


VERSIONS = {
    "add_ and mul_": lambda c, cv, x: (c.add_(1), c.mul_(2), x + c)[2],
    "fill_": lambda c, cv, x: (c.fill_(3.0), x + c)[1],
    "a view's add_": lambda c, cv, x: (cv.add_(1), x + c)[1],
    "nothing": lambda c, cv, x: x + c,
}


@pytest.mark.parametrize("name", list(VERSIONS))
def test_vmap_captured_version_counts_once_as_torch(name):
    """The captured tensor's ``_version`` (and its view's) after vmap counts the changes of one
    element's run, as torch's (gt counted each element's and each put-back), nested too; an op
    that saved the tensor after the change then backpropagates (gt refused: version moved)."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        c = _t(lib, [0.5, 1.0])
        cv = c[1:]
        xs = _t(lib, X, True)
        out = lib.func.vmap(lambda x: VERSIONS[name](c, cv, x) * c)(xs)
        out.sum().backward()
        versions = (c._version, cv._version) if getattr(c, "_placed", None) is None else None    # (as above)
        inner = lib.func.vmap(lambda y: VERSIONS[name](c, cv, y))
        nested = lib.func.vmap(inner)(_t(lib, np.arange(12.0).reshape(3, 2, 2)))
        got.append((versions, c._version if versions else None, _np(out), _np(xs.grad), _np(nested), _np(c)))
    assert got[0][:2] == got[1][:2] or got[0][0] is None, (got[0][:2], got[1][:2])
    for a, b in zip(got[0][2:], got[1][2:]):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_vmap_refuses_batched_values_made_inside_and_puts_the_tensor_back():
    """Values made inside func from the mapped input differ per element (torch refuses them as
    batched): gt refuses them in torch's words (its run of func on NaN slices moves them: tests/
    test_func_leftovers3_parity.py) and puts the tensor back (values, history, version: a later
    backward gives the gradient of before); a view of a mapped slice is refused at once (even where
    the elements are equal, as torch's)."""
    for change, xs in [(lambda c, x: c.add_(x * 2), X), (lambda c, x: c.mul_(x.exp()), X),
                       (lambda c, x: c.__setitem__(0, x[0]), np.ones((3, 2)))]:
        for plain in (True, False):
            w = gt.tensor(W, dtype=gt.float64, requires_grad=True)
            c = gt.tensor([0.5, 3.0], dtype=gt.float64) if plain else w * 3
            y = (c * c).sum()
            before, version = c.tolist(), c._version
            with pytest.raises(RuntimeError, match="batched|vmapped over|broadcast shape"):
                gt.func.vmap(lambda x: (change(c, x), x * c)[1])(gt.tensor(xs, dtype=gt.float64))
            assert c.tolist() == before and c._version == version and c.requires_grad is not plain
            if not plain:
                (y + c.sum()).backward()
                np.testing.assert_allclose(w.grad.tolist(), 18 * W + 3, rtol=1e-12)


SHAPES = {
    "t_ of a square, 2 elements": ((2, 2), 2, lambda c, x: (c.t_(), x[:2] @ c)[1]),
    "t_ of a square, 3 elements": ((2, 2), 3, lambda c, x: (c.t_(), x[:2] @ c)[1]),
    "t_ of a 2 x 3": ((2, 3), 2, lambda c, x: (c.t_(), c @ x[:2])[1]),
    "unsqueeze_": ((2, 3), 2, lambda c, x: (c.unsqueeze_(0), x + c.sum())[1]),
    "t_ of a vector": ((3,), 3, lambda c, x: (c.t_(), x[:3] + c)[1]),
    "transpose_ then mul_": ((2, 2), 3, lambda c, x: (c.transpose_(0, 1).mul_(2), x[:2] @ c)[1]),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_vmap_changes_a_captured_tensors_shape_once_as_torch(name):
    """A captured tensor's in-place change of shape was made once per element: a square's
    ``t_`` flipped back and forth (every other row of the output and the tensor after the call
    silently wrong, by the batch's parity), ``unsqueeze_`` stacked dims, a 2 x 3 ``t_`` failed.
    Made once now, as torch's: outputs, the tensor, its shape and ``_version``."""
    torch = torch_or_skip()
    shape, n, change = SHAPES[name]
    got = []
    for lib in (gt, torch):
        c = _t(lib, np.arange(float(np.prod(shape))).reshape(shape))
        out = lib.func.vmap(lambda x: change(c, x))(_t(lib, np.arange(4.0 * n).reshape(n, 4)))
        got.append((_np(out), _np(c), tuple(c.shape), c._version if getattr(c, "_placed", None) is None else None))
    np.testing.assert_allclose(got[0][0], got[1][0], rtol=1e-12)
    np.testing.assert_allclose(got[0][1], got[1][1], rtol=1e-12)
    assert got[0][2] == got[1][2] and got[0][3] in (got[1][3], None), (got[0][2:], got[1][2:])


AROUND = {
    "grad(vmap)": lambda lib, c, f: lib.func.grad(lambda x: lib.func.vmap(f)(x).sum())(_t(lib, X)),
    "jacrev(vmap)": lambda lib, c, f: lib.func.jacrev(lambda x: lib.func.vmap(f)(x))(_t(lib, X)),
    "vjp(vmap)": lambda lib, c, f: lib.func.vjp(lambda x: lib.func.vmap(f)(x), _t(lib, X))[0],
    "vmap(grad)": lambda lib, c, f: lib.func.vmap(lib.func.grad(lambda y: f(y).sum()))(_t(lib, X)),
}


@pytest.mark.parametrize("name", list(AROUND))
def test_vmap_inside_a_derivative_transform_refuses_its_captured_tensor(name):
    """A tensor captured for a ``grad``/``vjp``/``jacrev`` around the vmap stays captured for it:
    torch refuses its change (gt made it once); one made inside that transform is made once."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        c = _t(lib, [0.5, 1.0])
        kind, text = _outcome(lambda: AROUND[name](lib, c, lambda y: (c.add_(1), y * c)[1]))
        got.append((kind, text.replace("aten::add_.Tensor", "aten::add_") if kind != "ok" else None, _np(c)))

        def inner(x):
            d = x[0] * 1
            return lib.func.vmap(lambda y: (d.mul_(2), y * d)[1])(x).sum()
        got.append(("made inside", _np(lib.func.grad(inner)(_t(lib, X)))))
    assert got[0][:2] == got[2][:2] and got[0][0] is RuntimeError, got
    np.testing.assert_allclose(got[0][2], got[2][2], rtol=1e-12)
    np.testing.assert_allclose(got[1][1], got[3][1], rtol=1e-12)


# ---- 2. jvp/vjp: outputs lying in the input's memory -------------------------------------------
ALIASES = {
    "identity": lambda a: a,
    "t()": lambda a: a.t(),
    "a row": lambda a: a[1:],
    "a column": lambda a: a[:, 1],
    "reshape": lambda a: a.reshape(6),
    "detach()": lambda a: a.detach(),
    "detach().mul_": lambda a: a.detach().mul_(2),
    "detach().mul_, a returned": lambda a: (a.detach().mul_(2), a)[1],
    "mul_": lambda a: a.mul_(2),
    "sin_, then a view": lambda a: a.sin_().view(6),
    "a view's mul_": lambda a: a[1:].mul_(2),
    "transpose then mul_": lambda a: a.transpose(0, 1).mul_(2),
    "t_": lambda a: a.t_(),
    "a pair": lambda a: (a, a[0]),
    "not an alias": lambda a: a * 2,
}


def _where(o, x):
    """How ``o`` lies in ``x``'s memory: (is x, is a view of x, byte offset, strides) or None."""
    if o is x:
        return "itself"
    if isinstance(o, gt.Tensor):
        shares = B.memory_owner(o._array) is B.memory_owner(x._array)
    else:
        shares = o.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    return (o._base is x, o.data_ptr() - x.data_ptr(), o.stride()) if shares else None


@pytest.mark.own_mesh      # on one device: a sharded tensor's results are copies (MISSING.md)
@pytest.mark.parametrize("name", list(ALIASES))
def test_jvp_and_vjp_outputs_in_the_inputs_memory_as_torch(name):
    """torch's jvp returns an output lying in the input's memory (the input, changed in place or
    not, or a view of it) as a view of the caller's primal (a ``detach()``'s as no view of it), and
    its tangent as the caller's tangent itself or the same view of it; vjp returns the input
    itself, or a view. gt returned copies (and rewrote the caller's tangent after a change no
    tangent follows; ``t_`` of a non-square input raised)."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        with gt.sharding.use_mesh(1) if lib is gt else contextlib.nullcontext():
            got.append(_jvp_and_vjp_aliases(lib, name))
    for ours, theirs in zip(*got):
        if isinstance(theirs, tuple) and len(theirs) == 5:
            assert ours[0] == theirs[0] and ours[1] == theirs[1] and ours[4] == theirs[4], (ours, theirs)
            np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-12)
            np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-12)
        elif isinstance(theirs, tuple) and len(theirs) == 4:
            np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
            np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)
            assert ours[2:] == theirs[2:]
        else:
            assert ours == theirs


@pytest.mark.own_mesh
def test_jvp_aux_and_a_change_of_shape_alone_as_torch():
    """jvp's aux lying in the input's memory is a view of the caller's primal, as torch's (gt gave
    a copy); ``unsqueeze_``/``t_`` alone change the tangent's shape with one version, as
    torch's (gt counted two)."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        with gt.sharding.use_mesh(1) if lib is gt else contextlib.nullcontext():
            x, t = _t(lib, X.reshape(2, 3)), _t(lib, np.ones((2, 3)))
            aux = lib.func.jvp(lambda a: (a * 2, a), (x,), (t,), has_aux=True)[2]
            row = [_where(aux, x), _np(aux)]
            for change in (lambda a: a.unsqueeze_(0), lambda a: a.t_()):
                x, t = _t(lib, X.reshape(2, 3)), _t(lib, np.ones((2, 3)))
                out, tangent = lib.func.jvp(change, (x,), (t,))
                row.append((tuple(x.shape), tuple(t.shape), x._version, t._version, tangent is t, _where(out, x)))
            got.append(row)
    assert got[0][0] == got[1][0] and got[0][2:] == got[1][2:], got
    np.testing.assert_allclose(got[0][1], got[1][1], rtol=1e-12)


def _jvp_and_vjp_aliases(lib, name):
    x, t = _t(lib, X.reshape(2, 3)), _t(lib, np.ones((2, 3)) * 0.5)
    outs, tangents = lib.func.jvp(ALIASES[name], (x,), (t,))
    outs, tangents = (outs, tangents) if isinstance(outs, tuple) else ((outs,), (tangents,))
    row = [(_where(o, x), _where(tan, t), _np(o), _np(tan), tuple(o.shape)) for o, tan in zip(outs, tangents)]
    row.append((_np(x), _np(t), x._version, tuple(t.shape)))
    if "_" not in name:
        x2 = _t(lib, X.reshape(2, 3))
        o2 = lib.func.vjp(ALIASES[name], x2)[0]
        row += [_where(o, x2) for o in (o2 if isinstance(o2, tuple) else (o2,))]
    return row


# ---- 3. linearize's requires_grad_(False), detach_() of a forward transform's input -------------
CUTS = {
    "requires_grad_(False) of the input": lambda a: (a.requires_grad_(False), a * a)[1],
    "requires_grad_(False) of an intermediate": lambda a: (lambda b: (b.requires_grad_(False), b * a)[1])(a * 2),
    "detach_() of the input": lambda a: (a.detach_(), a * a)[1],
    "detach_() of an intermediate": lambda a: (lambda b: (b.detach_(), b * a)[1])(a * 2),
}
FORWARD = {
    "linearize": lambda lib, f: lib.func.linearize(f, _t(lib, W))[1](_t(lib, [1.0, 0.5])),
    "jvp": lambda lib, f: lib.func.jvp(f, (_t(lib, W),), (_t(lib, [1.0, 0.5]),))[1],
    "jacfwd": lambda lib, f: lib.func.jacfwd(f)(_t(lib, W)),
    "vjp": lambda lib, f: lib.func.vjp(f, _t(lib, W))[1](_t(lib, [1.0, 0.5]))[0],
}


@pytest.mark.parametrize("transform", list(FORWARD))
def test_forward_transforms_through_detaching_calls_as_torch(transform):
    """torch's linearize traces under forward AD, where ``requires_grad_(False)`` changes nothing
    (gt's tangent went to zeros, or it raised for an intermediate); ``detach_()`` of the input of
    jvp/jacfwd/linearize raises torch's error (its input there is a dual view; gt gave zeros),
    of an intermediate it cuts the tangent, as torch's."""
    torch = torch_or_skip()
    for call in CUTS:
        got = []
        for lib in (gt, torch):
            kind, out = _outcome(lambda: FORWARD[transform](lib, CUTS[call]))
            got.append((kind, _np(out) if kind == "ok" else out))
        assert got[0][0] == got[1][0], (call, got)
        if got[1][0] == "ok":
            np.testing.assert_allclose(got[0][1], got[1][1], rtol=1e-12, err_msg=call)
        else:
            assert got[0][1] == got[1][1], call
