"""Views of a tensor that requires no grad (``v = h[:, 0]``, ``h.t()``, ``h.view(-1)``, chains of
them), taken before a value that requires grad is written in place into that tensor itself
(``h.copy_(y * 3)``, ``h.add_(y)``, ``h[2:5] = y[:3]``, ``h.mul_(y)``), beside torch 2.13: torch
rebases each view on the change, so it requires grad and ``y`` gets its gradient through it. In the
passes that set GT_DEVICES ``h`` is sharded over the mesh, where gt kept no record of such views:
they kept the new values but required no grad, the gradient through them silently lost
(gt/autograd/mesh_views.py). A value that requires grad written into such a view gives the tensor
the change as its history, as torch's (gt refused it over the mesh). Views taken under ``no_grad``
follow torch's rules: differentiating through one after such a change raises torch's error, and so
does writing a gradient into one."""

import copy
import pickle

import numpy as np
import pytest

import gt
from helpers import skip_a_gathered_copy_off_ci_meshes

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(47)
_X, _Y = _RNG.standard_normal((8, 4)), _RNG.standard_normal((8, 4))


def _views_taken(case, h):
    """The views of ``h`` a case takes, all before the change (each is checked)."""
    if case == "view of a view":
        a = h[1:]
        return [a, a[:, 2]]
    return {
        "slice": lambda: [h[2:6]],
        "column": lambda: [h[:, 0]],
        "t": lambda: [h.t()],
        "view(-1)": lambda: [h.view(-1)],
        "reshape": lambda: [h.reshape(4, 8)],
        "chain": lambda: [h.view(4, 8)[1:3].t()[2:6]],
        "several": lambda: [h[:, 0], h[3:], h.t()[1], h.view(-1)[5:11]],
    }[case]()


def _write(case, h, y):
    if case == "copy_":
        h.copy_(y * 3)
    elif case == "add_":
        h.add_(y)
    elif case == "setitem":
        h[2:5] = y[:3] * 2
    elif case == "mul_":
        h.mul_(y)
    else:
        h[:, 1] = y[:, 0].exp()


def _run(lib, view_case, write_case):
    x = lib.tensor(_X.tolist(), dtype=lib.float64)
    y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
    h = x * 1                      # requires no grad
    taken = _views_taken(view_case, h)
    _write(write_case, h, y)
    weights = [lib.tensor(np.linspace(-1, 2, v.numel()).reshape(tuple(v.shape)).tolist(), dtype=lib.float64)
               for v in taken]
    loss = sum(((v * w).sin()).sum() for v, w in zip(taken, weights))
    flags = [v.requires_grad for v in taken]
    return [v.detach() for v in taken], flags, lib.autograd.grad(loss, y)[0]


def _check(view_case, write_case):
    got_views, got_flags, got_grad = _run(gt, view_case, write_case)
    want_views, want_flags, want_grad = _run(torch, view_case, write_case)
    assert got_flags == want_flags == [True] * len(want_flags)
    for g, w in zip(got_views + [got_grad], want_views + [want_grad]):
        assert tuple(g.shape) == tuple(w.shape)
        np.testing.assert_allclose(np.asarray(g.tolist()), w.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("view_case", ["slice", "column", "t", "view(-1)", "reshape", "chain", "view of a view",
                                       "several"])
def test_views_of_a_tensor_follow_a_gradient_copied_into_it(view_case):
    _check(view_case, "copy_")


@pytest.mark.parametrize("write_case", ["add_", "setitem", "mul_", "setitem column"])
def test_views_of_a_tensor_follow_each_kind_of_write(write_case):
    _check("several", write_case)


def test_the_views_grad_fn_is_their_own_op_again():
    """torch names the regenerated node ``AsStridedBackward0``; gt, on one device and over the mesh,
    records the view's own op again on the changed tensor."""
    h = gt.tensor(_X.tolist(), dtype=gt.float64) * 1
    y = gt.tensor(_Y.tolist(), dtype=gt.float64).requires_grad_()
    v, w = h[:, 0], h[1:][2:4]
    h.copy_(y * 3)
    assert v.grad_fn.name() == "SelectBackward0" and w.grad_fn.name() == "SliceBackward0"
    assert v.grad_fn.next_functions[0][0] is h.grad_fn


def _no_grad_view(lib, base_grad, write_case):
    x = lib.tensor(_X.tolist(), dtype=lib.float64)
    y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
    h = x * y if base_grad else x * 1
    with lib.no_grad():
        v = h[:, 0]
    _write(write_case, h, y)
    return v


@pytest.mark.parametrize("write_case", ["copy_", "add_"])
@pytest.mark.parametrize("base_grad", [False, True])
def test_a_view_taken_under_no_grad_refuses_to_be_differentiated_after_the_change(base_grad, write_case):
    """torch refuses to differentiate through a view taken under ``no_grad`` once its base is changed in
    place in grad mode (gt: at the backward, torch at the first use); the values are the new ones."""
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode and its base"):
        (_no_grad_view(torch, base_grad, write_case) * 2).sum().backward()
    v = _no_grad_view(gt, base_grad, write_case)
    assert v.requires_grad
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode and its base"):
        (v * 2).sum().backward()
    h = gt.tensor(_X.tolist(), dtype=gt.float64) * gt.tensor(_Y.tolist(), dtype=gt.float64) if base_grad else \
        gt.tensor(_X.tolist(), dtype=gt.float64)
    y = gt.tensor(_Y.tolist(), dtype=gt.float64)
    want = (y * 3 if write_case == "copy_" else h + y)[:, 0]
    np.testing.assert_allclose(np.asarray(v.detach().tolist()), np.asarray(want.tolist()), rtol=1e-12)


@pytest.mark.parametrize("base_grad", [False, True])
def test_a_gradient_written_into_a_view_taken_under_no_grad_raises_torchs_error(base_grad):
    for lib in (torch, gt):
        x = lib.tensor(_X.tolist(), dtype=lib.float64)
        y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
        h = x * y if base_grad else x * 1
        with lib.no_grad():
            v = h[:, 0]
        with pytest.raises(RuntimeError, match="A view was created in no_grad mode and is being modified inplace"):
            v.copy_(y[:, 1] * 2)


def test_views_and_write_both_under_no_grad_stay_unrecorded():
    for lib in (torch, gt):
        h = lib.tensor(_X.tolist(), dtype=lib.float64) * 1
        y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
        v = h[:, 0]
        with lib.no_grad():
            h.copy_(y * 3)
        assert not v.requires_grad
        np.testing.assert_allclose(np.asarray(v.tolist()), _Y[:, 0] * 3, rtol=1e-12)


_INTO_VIEW = {   # a value that requires grad written into a view of ``h``, which requires none
    "column copy_": lambda h, y: h[:, 1].copy_(y[:, 0] * 3),
    "slice add_": lambda h, y: h[2:5].add_(y[:3]),
    "t mul_": lambda h, y: h.t().mul_(y.t()),
    "view(-1) slice copy_": lambda h, y: h.view(-1)[3:9].copy_(y.view(-1)[:6].exp()),
    "chain add_": lambda h, y: h.view(4, 8)[1:3].t()[2:6].add_(y[:4, :2]),
    "item assignment": lambda h, y: h[1:].__setitem__((slice(None), 2), y[1:, 0]),
    "diagonal copy_": lambda h, y: h[:4].diagonal().copy_(y[0]),
    "view of a view": lambda h, y: (lambda a: a[:, 2].copy_(y[1:, 0] * 2))(h[1:]),
}


def _write_into_view(lib, case):
    x = lib.tensor(_X.tolist(), dtype=lib.float64)
    y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
    h = x * 1
    others = [h[:, 0], h.t()[1:3]]      # unrecorded views of h taken before: they follow the change
    _INTO_VIEW[case](h, y)
    loss = (h * x).sin().sum() + sum((o * 2).cos().sum() for o in others)
    flags = [h.requires_grad] + [o.requires_grad for o in others]
    return [h.detach()] + [o.detach() for o in others], flags, lib.autograd.grad(loss, y)[0]


@pytest.mark.parametrize("case", list(_INTO_VIEW))
def test_a_gradient_written_into_a_view_gives_its_tensor_the_change(case):
    """torch gives the tensor viewed the change as its history (``CopySlices``) and its other views follow;
    over the mesh gt refused (it would have written the values alone, the gradient silently lost)."""
    try:
        got_values, got_flags, got_grad = _write_into_view(gt, case)
    except RuntimeError as exc:
        skip_a_gathered_copy_off_ci_meshes(exc)
        raise
    want_values, want_flags, want_grad = _write_into_view(torch, case)
    assert got_flags == want_flags == [True, True, True]
    for g, w in zip(got_values + [got_grad], want_values + [want_grad]):
        np.testing.assert_allclose(np.asarray(g.tolist()), w.numpy(), rtol=1e-10, atol=1e-12)


def test_a_gradient_written_into_a_view_gt_cannot_write_through_is_refused():
    """A view made by ``expand`` (torch writes through it): gt refuses, before anything is written."""
    h = gt.tensor(_X.tolist(), dtype=gt.float64) * 1
    y = gt.tensor(_Y[:, 0].tolist(), dtype=gt.float64).requires_grad_()
    v = h.unsqueeze(0).expand(2, 8, 4)[1, :, 1]
    with pytest.raises(RuntimeError, match="Expand"):
        v.copy_(y * 2)
    assert not h.requires_grad
    np.testing.assert_allclose(np.asarray(h.tolist()), _X, rtol=0, atol=0)


@pytest.mark.parametrize("make", ["deepcopy", "pickle"])
def test_a_copy_of_a_view_is_no_view(make):
    """A deep copy (or a pickled and loaded one) of such a view is a tensor of its own, as torch's: a
    gradient written into it leaves the tensor viewed alone (over the mesh gt kept the link to it)."""
    for lib in (torch, gt):
        h = lib.tensor(_X.tolist(), dtype=lib.float64) * 1
        y = lib.tensor(_Y[:, 0].tolist(), dtype=lib.float64).requires_grad_()
        v = h[:, 1]
        v = copy.deepcopy(v) if make == "deepcopy" else pickle.loads(pickle.dumps(v))
        v.copy_(y * 3)
        grad = lib.autograd.grad((v * v).sum(), y)[0]
        assert v.requires_grad and not h.requires_grad
        np.testing.assert_allclose(np.asarray(grad.tolist()), _Y[:, 0] * 18, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(h.tolist()), _X, rtol=0, atol=0)


_SAME_SHAPE = {   # views that keep the shape: gt's engines hand back the tensor's own array (or blocks)
    "view(shape)": lambda h: h.view(8, 4),
    "view_as": lambda h: h.view_as(h),
    "reshape": lambda h: h.reshape(8, 4),
    "squeeze of nothing": lambda h: h.squeeze(),
}


@pytest.mark.parametrize("case", list(_SAME_SHAPE))
def test_a_view_of_the_same_shape_follows_and_passes_on_a_gradient(case):
    """A view that keeps its tensor's shape is a view all the same: it follows a gradient copied into the
    tensor, and a gradient written into it gives the tensor the change. gt lost both, on one device as over
    the mesh (its array is the tensor's own, which the view check did not count as a view)."""
    def run(lib):
        x = lib.tensor(_X.tolist(), dtype=lib.float64)
        y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
        h, k = x * 1, x * 2
        v = _SAME_SHAPE[case](h)
        h.copy_(y * 3)                         # into the tensor: the view taken before follows
        _SAME_SHAPE[case](k).add_(y.exp())     # into the view: the tensor takes the change
        loss = (v * x).sin().sum() + (k * x).cos().sum()
        return [v.detach(), k.detach()], [v.requires_grad, k.requires_grad], lib.autograd.grad(loss, y)[0]
    got_values, got_flags, got_grad = run(gt)
    want_values, want_flags, want_grad = run(torch)
    assert got_flags == want_flags == [True, True]
    for g, w in zip(got_values + [got_grad], want_values + [want_grad]):
        np.testing.assert_allclose(np.asarray(g.tolist()), w.numpy(), rtol=1e-10, atol=1e-12)


def test_a_gradient_written_into_a_dual_reaches_the_primal():
    """``make_dual`` of a tensor that requires no grad is a view of it, as torch's: a value that requires
    grad written into the dual gives the primal the change as its history (on one device gt's dual was a
    bare alias and the gradient was lost; over the mesh this write is refused, MISSING.md)."""
    def run(lib):
        fwd = lib.autograd.forward_ad
        x = lib.tensor(_X.tolist(), dtype=lib.float64)
        y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
        h = x * 1
        with fwd.dual_level():
            d = fwd.make_dual(h, lib.ones(8, 4, dtype=lib.float64))
            d.mul_(y)
            tangent = fwd.unpack_dual(d).tangent
            return h.detach(), h.requires_grad, tangent, lib.autograd.grad((h * x).sin().sum(), y)[0]
    if gt.ones(8, 4, dtype=gt.float64)._placed is not None:
        h = gt.tensor(_X.tolist(), dtype=gt.float64) * 1
        y = gt.tensor(_Y.tolist(), dtype=gt.float64).requires_grad_()
        with gt.autograd.forward_ad.dual_level():
            d = gt.autograd.forward_ad.make_dual(h, gt.ones(8, 4, dtype=gt.float64))
            with pytest.raises(RuntimeError, match="inside a forward AD level"):
                d.mul_(y)
        return
    got, want = run(gt), run(torch)
    assert got[1] is want[1] is True
    for g, w in zip(got[:1] + got[2:], want[:1] + want[2:]):      # the tangent is y's now: it requires grad
        np.testing.assert_allclose(np.asarray(g.detach().tolist()), w.detach().numpy(), rtol=1e-10, atol=1e-12)
