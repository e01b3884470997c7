"""Forward AD with reverse mode on tensors sharded over the mesh (the passes that set GT_DEVICES),
beside torch 2.13: a dual tensor that requires grad (its tangent's and its primal's gradients by
``backward()`` and ``gt.autograd.grad``), and ``gt.func.grad`` inside a ``dual_level`` through a
sharded tensor made in the function. gt refused both ("a tensor sharded over the mesh that requires
grad"; the second also needs the gathered tensor to keep its tangent, or its tangent is half torch's)."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(5)
_X, _T, _W = _RNG.standard_normal((4, 3)), _RNG.standard_normal((4, 3)), _RNG.standard_normal((3, 2))

_FUNS = {   # views, layout changes over the mesh (a sum over the sharded dim, matmul) and in-place ops
    "reshape": lambda lib, x: (x.reshape(12) * 2).sin(),
    "transpose @": lambda lib, x: x.t() @ x,
    "slices": lambda lib, x: x[1:3] * x[0:2],
    "expand": lambda lib, x: x[:, :1].expand(4, 3) * x,
    "sum over dim 0": lambda lib, x: (x * x).sum(0),
    "@ w": lambda lib, x: x.exp() @ lib.tensor(_W.tolist(), dtype=lib.float64),
    "mean, norm": lambda lib, x: x.mean(1).exp() * x.norm(),
    "in place": lambda lib, x: (x * 1.0).mul_(x).add_(x[:, :1]),
}


def _np(t):
    return None if t is None else np.asarray(t.detach().tolist())


def _close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(_np(g), _np(w), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", list(_FUNS))
def test_dual_tensor_that_requires_grad(case):
    f = _FUNS[case]

    def run(lib):
        fa = lib.autograd.forward_ad
        x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_()
        with fa.dual_level():
            p, t = fa.unpack_dual(f(lib, fa.make_dual(x, lib.tensor(_T.tolist(), dtype=lib.float64))))
            g, = lib.autograd.grad((t * t).sum() + p.sum(), x, retain_graph=True)
            (p.sum() * 2 + (t * 1.5).sum()).backward()
        return p, t, g, x.grad

    _close(run(gt), run(torch))


def _copied(lib, z):
    y = lib.zeros(4, 3, dtype=z.dtype)
    y.copy_(z.exp())
    return (y ** 2).sum()


def _written(lib, z):
    y = lib.ones(4, 3, dtype=z.dtype)
    y[1] = z[2] * 3
    return (y * z).sin().sum()


@pytest.mark.parametrize("fn", [_copied, _written], ids=["copy_", "item assignment"])
def test_grad_in_dual_level_through_a_tensor_made_in_the_function(fn):
    def run(lib):
        fa = lib.autograd.forward_ad
        with fa.dual_level():
            d = fa.make_dual(lib.tensor(_X.tolist(), dtype=lib.float64), lib.tensor(_T.tolist(), dtype=lib.float64))
            out = lib.func.grad(lambda z: fn(lib, z))(d * 1.0)
            return fa.unpack_dual(out)

    _close(run(gt), run(torch))


# In-place changes of a make_dual/unpack_dual result whose primal is a sharded tensor in the graph:
# the dual is an alias over the mesh, which gt refused to write through ("a view of another tensor
# in the graph (made by <ReshapeBackward (sharded...)>)"); torch writes and regenerates its view.
_Y = _RNG.standard_normal((4, 3))


def _mul(fa, d, y):
    d.mul_(2)


def _add(fa, d, y):
    d.add_(y)


def _set_row(fa, d, y):
    d[0] = y[1] * 3


def _sin(fa, d, y):
    d.sin_()


def _several(fa, d, y):
    d.mul_(2)
    d.add_(y)
    d[1] = y[2].exp()
    d.sin_()


def _read_before(fa, d, y):      # an op recorded before the change reads the values of before
    q = d * 5
    d.mul_(y)
    return q


def _primal(fa, d, y):           # unpack_dual's primal (an alias of the dual) changed
    p = fa.unpack_dual(d).primal
    p.mul_(3)
    p.add_(y)


def _by_a_dual(fa, d, y):
    d.mul_(fa.make_dual(y * 1, y.flip(0) * 0.5))


_CHANGES = {"mul_": _mul, "add_": _add, "d[0] =": _set_row, "sin_": _sin, "several": _several,
            "read before": _read_before, "unpack_dual's primal": _primal, "mul_ by a dual": _by_a_dual}
_MORE = {"copy_": lambda fa, d, y: d.copy_(y.cos()), "d[1:3] =": lambda fa, d, y: d.__setitem__(slice(1, 3), y[:2]),
         "unpack_dual's primal, then the dual": lambda fa, d, y: (d.mul_(2), fa.unpack_dual(d).primal.sub_(y),
                                                                  d.add_(1.5))}


def _changed_dual(lib, change, base="mul", recorded=False):
    """make_dual of ``x * 1`` (or ``x.exp()``), ``change`` applied to the dual, then its primal, its
    tangent, the tensor it was made of, and gradients of all three with respect to x, y (and the
    tangent's leaf where the tangent requires grad)."""
    fa = lib.autograd.forward_ad
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_()
    y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
    w = lib.tensor(_T.tolist(), dtype=lib.float64).requires_grad_(recorded)
    with fa.dual_level():
        b = {"mul": x * 1, "sin": x.sin(), "exp": x.exp()}[base]
        d = fa.make_dual(b, w * 1 if recorded else w)
        before = change(fa, d, y)
        p, t = fa.unpack_dual(d)
        loss = (p * p).sum() + 2 * b.sum() + (t * 1.5).sum()
        if isinstance(before, lib.Tensor):
            loss = loss + (before * before).sum()
        grads = lib.autograd.grad(loss, [x, y, w] if recorded else [x, y], allow_unused=True)
        return (p, t, b, fa.unpack_dual(b).tangent, *grads)


def _same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if w is not None:
            np.testing.assert_allclose(_np(g), _np(w), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", list(_CHANGES))
def test_in_place_change_of_a_dual_tensor(case):
    _same(_changed_dual(gt, _CHANGES[case]), _changed_dual(torch, _CHANGES[case]))


@pytest.mark.parametrize("how", ["of sin", "recorded tangent"])
@pytest.mark.parametrize("case", list(_MORE))
def test_in_place_change_of_a_dual_tensor_more(case, how):
    kw = {"base": "sin"} if how == "of sin" else {"recorded": True}
    _same(_changed_dual(gt, _MORE[case], **kw), _changed_dual(torch, _MORE[case], **kw))


def _read_by_sin(fa, d, y):
    q = d.sin()         # sin keeps d for its backward
    d.mul_(2)
    return q


@pytest.mark.parametrize("change, base", [(_sin, "exp"), (lambda fa, d, y: d.add_(d * d), "mul"),
                                          (_read_by_sin, "mul")],
                         ids=["exp's result", "d.add_(d * d)", "d.sin(), then d.mul_"])
def test_in_place_change_of_a_saved_dual_tensor_is_refused_in_the_backward(change, base):
    for lib in (gt, torch):     # a value an op kept for its backward changed (gt's op kept a gathered copy)
        with pytest.raises(RuntimeError, match="one of the variables needed for gradient computation has been "
                                               "modified by an inplace operation"):
            _changed_dual(lib, change, base=base)


_VIEWS = {"d[1:3]": lambda d: d[1:3], "d.t()": lambda d: d.t(), "d.reshape(12)": lambda d: d.reshape(12),
          "d.expand(2, 4, 3)": lambda d: d.expand(2, 4, 3), "d[:, :1].expand(4, 3)": lambda d: d[:, :1].expand(4, 3)}


def _view_then_change(lib, view):
    """A view of a dual tensor taken before an in-place change of the dual: gt gathered the view of
    a sharded dual to the home device (a copy, which kept the values of before)."""
    fa = lib.autograd.forward_ad
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_()
    with fa.dual_level():
        b = x * 1
        d = fa.make_dual(b, lib.tensor(_T.tolist(), dtype=lib.float64))
        v = _VIEWS[view](d)
        d.mul_(2)
        p, t = fa.unpack_dual(v)
        g, = lib.autograd.grad((p * p).sum() + 2 * b.sum() + (t * t).sum(), x)
        return p, t, b, *fa.unpack_dual(d), g


@pytest.mark.parametrize("view", list(_VIEWS))
def test_view_of_a_dual_tensor_taken_before_a_change(view):
    _same(_view_then_change(gt, view), _view_then_change(torch, view))


def _base_changed(lib, twice):
    """The tensor a dual was made of changed in place between changes of the dual (and of its
    unpacked primal): the dual shows the new values, and its history follows them."""
    fa = lib.autograd.forward_ad
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_()
    y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
    with fa.dual_level():
        b = x * 1
        d = fa.make_dual(b, lib.tensor(_T.tolist(), dtype=lib.float64))
        q = d * 2
        d.mul_(y)
        b.add_(y)
        if twice:
            p = fa.unpack_dual(d).primal
            b.mul_(3)
            p.sub_(y * y)
        d.sin_()
        p, t = fa.unpack_dual(d)
        loss = (p * p).sum() + (t * 1.5).sum() + (b * b).sum() + (q * q).sum()
        return (p, t, b, *lib.autograd.grad(loss, [x, y]))


@pytest.mark.parametrize("twice", [False, True], ids=["once", "twice, the unpacked primal changed"])
def test_in_place_change_of_the_tensor_a_dual_was_made_of(twice):
    _same(_base_changed(gt, twice), _base_changed(torch, twice))


def _plain_alias(lib, twice):
    """Without forward AD: an alias of the whole tensor (``view`` to its own shape) changed in place."""
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_()
    y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
    b = x.sin()
    a = b.view(4, 3)
    c = a.reshape(4, 3) if twice else a
    q = a * 4
    c.mul_(y)
    c[1] = y[0] * 2
    loss = (a * a).sum() + b.sum() * 2 + (q * q).sum() + c.sin().sum()
    return (a, b, c, *lib.autograd.grad(loss, [x, y]))


@pytest.mark.parametrize("twice", [False, True], ids=["view", "reshape of a view"])
def test_in_place_change_of_an_alias_over_the_mesh(twice):
    _same(_plain_alias(gt, twice), _plain_alias(torch, twice))


# make_dual of a sharded tensor outside the graph (it requires no grad, or under no_grad): torch's
# dual is a view of the primal, so an in-place change of either shows in the other, with the
# tangent by the op's rule and torch's _version. gt gathered the dual to the home device (a copy:
# the primal stayed as it was, silently). ``x.exp()``: blocks of their own, not one host array.
_OUTSIDE = {"mul_": lambda fa, d, y, x: d.mul_(2),
            "d[1:3] =": lambda fa, d, y, x: d.__setitem__(slice(1, 3), y[:2]),
            "add_ of a dual": lambda fa, d, y, x: d.add_(fa.make_dual(y * 1, y.flip(0) * 0.5)),
            "sin_, then the primal changed": lambda fa, d, y, x: (d.sin_(), x.mul_(3)),
            "d[1:3].mul_": lambda fa, d, y, x: d[1:3].mul_(y[:2]),
            "unpack_dual's primal": lambda fa, d, y, x: fa.unpack_dual(d).primal.sub_(y),
            "a view taken before": lambda fa, d, y, x: (d.t(), d.mul_(y))[0]}


def _outside_graph(lib, change, under_no_grad):
    fa = lib.autograd.forward_ad
    x = lib.tensor(_X.tolist(), dtype=lib.float64).exp().requires_grad_(under_no_grad)
    t = lib.tensor(_T.tolist(), dtype=lib.float64)
    y = lib.tensor(_Y.tolist(), dtype=lib.float64)
    with fa.dual_level(), lib.set_grad_enabled(not under_no_grad):
        d = fa.make_dual(x, t)
        view = change(fa, d, y, x)
        got = [x, *fa.unpack_dual(d), t, fa.unpack_dual(x).tangent]
        if isinstance(view, tuple):
            view = None
        if view is not None:
            got += list(fa.unpack_dual(view))
        return got, [x._version, d._version]


@pytest.mark.parametrize("how", ["requires no grad", "under no_grad"])
@pytest.mark.parametrize("case", list(_OUTSIDE))
def test_in_place_change_of_a_dual_made_outside_the_graph(case, how):
    (got, got_versions), (want, want_versions) = (_outside_graph(lib, _OUTSIDE[case], how == "under no_grad")
                                                  for lib in (gt, torch))
    _same(got, want)
    assert got_versions == want_versions


_OF_VIEWS = {"a[1:3]": lambda a: a[1:3], "a.t()": lambda a: a.t(), "a[:, 1]": lambda a: a[:, 1]}


def _dual_of_a_view(lib, view, change_base):
    """make_dual, outside the graph, of a view over the mesh: torch's dual is a view of that view."""
    fa = lib.autograd.forward_ad
    a = lib.tensor(_X.tolist(), dtype=lib.float64).exp()
    with fa.dual_level():
        d = fa.make_dual(_OF_VIEWS[view](a), _OF_VIEWS[view](lib.tensor(_T.tolist(), dtype=lib.float64)) * 1)
        if change_base:
            a.add_(1)
        else:
            d.mul_(2)
            d[0] = 5.0
        return [a, *fa.unpack_dual(d)], a._version


@pytest.mark.parametrize("change_base", [False, True], ids=["the dual changed", "its base changed"])
@pytest.mark.parametrize("view", list(_OF_VIEWS))
def test_in_place_change_of_a_dual_of_a_view_made_outside_the_graph(view, change_base):
    (got, got_version), (want, want_version) = (_dual_of_a_view(lib, view, change_base) for lib in (gt, torch))
    _same(got, want)
    assert got_version == want_version


# as_strided/unfold of a sharded dual are copies in gt (it does not track a sharded tensor's storage),
# where torch's are views: an in-place change of that memory while the copy lives would leave the
# copy's primal and tangent as they were (gt did so, silently), so gt refuses it. On one device gt's
# are views, as torch's.
_STRIDED = {"unfold": lambda d: d.unfold(0, 2, 1), "as_strided": lambda d: d.as_strided((2, 3), (3, 1), 3)}
_WRITES = {"of the dual": lambda d, x: d.mul_(2), "of the primal": lambda d, x: x.add_(1),
           "through a view": lambda d, x: x[1:3].mul_(2)}


def _strided_then_change(lib, strided, write, in_graph, seen=None):
    fa = lib.autograd.forward_ad
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_(in_graph)
    with fa.dual_level():
        b = x * 1
        d = fa.make_dual(b, lib.tensor(_T.tolist(), dtype=lib.float64))
        v = _STRIDED[strided](d)
        read = d.clone().sum() + d.median()     # reads go on while v lives (clone, median ask dual_values)
        try:
            _WRITES[write](d, b)
        finally:
            if seen is not None:
                seen += [*fa.unpack_dual(d), *fa.unpack_dual(v)]
        return [*fa.unpack_dual(v), *fa.unpack_dual(d), b, *fa.unpack_dual(read)]


@pytest.mark.parametrize("in_graph", [False, True], ids=["no grad", "in the graph"])
@pytest.mark.parametrize("write", list(_WRITES))
@pytest.mark.parametrize("strided", list(_STRIDED))
def test_change_while_as_strided_of_a_sharded_dual_lives(strided, write, in_graph):
    want = _strided_then_change(torch, strided, write, in_graph)
    if gt.tensor(_X.tolist(), dtype=gt.float64)._placed is None:
        _same(_strided_then_change(gt, strided, write, in_graph), want)
        return
    match, seen = f"of which {strided}\\(\\.\\.\\.\\) is alive: gt made that {strided} as a copy", []
    with pytest.raises(RuntimeError, match=match):
        _strided_then_change(gt, strided, write, in_graph, seen)
    with torch.no_grad():       # refused before anything was written
        tx, tt = torch.tensor(_X.tolist(), dtype=torch.float64), torch.tensor(_T.tolist(), dtype=torch.float64)
        _same(seen, [tx, tt, _STRIDED[strided](tx), _STRIDED[strided](tt)])


def _strided_gone(lib, strided):
    """The copy not kept (``.sum()``), or cloned on purpose: the change goes on (to the primal too), as torch's."""
    fa = lib.autograd.forward_ad
    x = lib.tensor(_X.tolist(), dtype=lib.float64).exp()
    with fa.dual_level():
        d = fa.make_dual(x, lib.tensor(_T.tolist(), dtype=lib.float64))
        s = _STRIDED[strided](d).sum()
        kept = _STRIDED[strided](d).clone()
        d.mul_(3)
        return [*fa.unpack_dual(s), *fa.unpack_dual(kept), *fa.unpack_dual(d), *fa.unpack_dual(_STRIDED[strided](d)), x]


@pytest.mark.parametrize("strided", list(_STRIDED))
def test_change_once_as_strided_of_a_sharded_dual_is_gone(strided):
    _same(_strided_gone(gt, strided), _strided_gone(torch, strided))
