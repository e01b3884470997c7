"""A tensor that is a sum over the sharded axis (``s = x.sum(0)``: in the passes that set
GT_DEVICES a partial sum, each device holding its share) and the tensors that share its memory
(``s.detach()``, ``s.data``, its views: ``s[1]``, ``s.t()``, ``s.view(2, 3)``...), changed in place
through any of them, beside torch 2.13. gt made the changed tensor alone hold the sum before the
change, so the others kept the old values, silently (``s.data.zero_()`` left ``s`` unchanged, a
write into ``s[1]`` was lost), and the change of a partial sum read by a recorded op was not
counted: the backward used the old values where torch refuses (gt/sharding/layout.py
``whole_in_place``). On one device these run as torch's too."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(48)
_X, _W = _RNG.standard_normal((8, 3)), _RNG.standard_normal(3)
_X3, _W3 = _RNG.standard_normal((8, 3, 2)), _RNG.standard_normal((3, 2))
_CHANGES = ("add_", "mul_", "zero_", "fill_", "copy_", "setitem", "+=")


def _mesh():
    return gt.sharding.get_mesh().size if hasattr(gt, "sharding") else 1


def _change(case, t, lib):
    if case == "add_":
        t.add_(2.5)
    elif case == "mul_":
        t.mul_(lib.tensor([1.0, -2.0, 3.0], dtype=lib.float64))
    elif case == "zero_":
        t.zero_()
    elif case == "fill_":
        t.fill_(4.0)
    elif case == "copy_":
        t.copy_(lib.tensor([7.0, 8.0, 9.0], dtype=lib.float64))
    elif case == "setitem":
        t[1] = -6.0
    else:
        t += 1.5


def _sum_and_alias(lib, alias):
    s = lib.tensor(_X.tolist(), dtype=lib.float64).sum(0)
    return s, (s.detach() if alias == "detach()" else s.data)


@pytest.mark.parametrize("through", ["alias", "tensor"])
@pytest.mark.parametrize("alias", ["detach()", ".data"])
@pytest.mark.parametrize("case", _CHANGES)
def test_a_change_reaches_every_tensor_sharing_the_partial_sum(case, alias, through):
    results = []
    for lib in (gt, torch):
        s, a = _sum_and_alias(lib, alias)
        _change(case, a if through == "alias" else s, lib)
        _change("add_", s if through == "alias" else a, lib)     # and back the other way
        results.append((s.tolist(), a.tolist(), s._version, a._version))
    got, want = results
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    if alias == "detach()":         # (.data has a counter of its own in torch; over the mesh gt's is shared)
        assert got[2:] == want[2:]


def test_the_partial_sum_is_partial_over_the_mesh():
    """What the cases above test: over the mesh ``x.sum(0)`` and its aliases are partial sums."""
    s, a = _sum_and_alias(gt, "detach()")
    if _mesh() > 1:
        assert str(s.placement) == str(a.placement) == "Partial()"
    s.add_(1)
    np.testing.assert_allclose(a.tolist(), _X.sum(0) + 1, rtol=1e-12)


def _saved_then_changed(lib, how, change):
    """A partial sum read by a recorded op, then changed in place before the backward."""
    x = lib.tensor(_X.tolist(), dtype=lib.float64)
    w = lib.tensor(_W.tolist(), dtype=lib.float64, requires_grad=True)
    if how == "times a weight":         # the op saves s for w's gradient
        s = x.sum(0)
        u = (s * w).sum()
    else:                               # s requires grad and the op saves it for its own
        s = (x * w).sum(0)
        u = (s * s).sum()
    if change is not None:
        _change(change, s.detach() if how == "squared" else s, lib)
    try:
        u.backward()
    except RuntimeError as exc:
        return "RuntimeError", str(exc).split(":")[0]
    return "gradient", w.grad.tolist()


@pytest.mark.parametrize("how", ["times a weight", "squared"])
@pytest.mark.parametrize("change", [None, "add_", "setitem", "copy_"])
def test_a_saved_partial_sum_changed_before_the_backward_is_refused_as_torch(how, change):
    got, want = (_saved_then_changed(lib, how, change) for lib in (gt, torch))
    assert got[0] == want[0], (got, want)
    if got[0] == "gradient":
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    else:
        assert got[1] == want[1] == "one of the variables needed for gradient computation has been modified by " \
                                    "an inplace operation"


@pytest.mark.parametrize("first", ["changed, then read", "read twice"])
def test_reading_a_partial_sum_leaves_it_and_its_readers_as_torch(first):
    """Reads that record keep the sum in the tensor's own memory (no copy): later reads, the
    gradients and the tensors computed from it stay torch's."""
    results = []
    for lib in (gt, torch):
        x = lib.tensor(_X.tolist(), dtype=lib.float64)
        w = lib.tensor(_W.tolist(), dtype=lib.float64, requires_grad=True)
        s = x.sum(0)
        if first == "changed, then read":
            s.detach().mul_(3)
        u = s * w
        v = s + 1                       # an unrecorded read after the recorded one
        ((u * u).sum() + (s.exp() * w).sum()).backward()
        s.add_(1)                       # after the backward: allowed, and u, v keep their values
        results.append((u.tolist(), v.tolist(), s.tolist(), w.grad.tolist()))
    for g, t in zip(*results):
        np.testing.assert_allclose(g, t, rtol=1e-12)


_VIEWS = {
    "row": lambda s: s[1], "column": lambda s: s[:, 0], "t": lambda s: s.t(), "reshape(-1)": lambda s: s.reshape(-1),
    "view": lambda s: s.view(2, 3), "diagonal": lambda s: s.diagonal(), "unsqueeze": lambda s: s.unsqueeze(0),
    "slice": lambda s: s[1:], "narrow": lambda s: s.narrow(0, 1, 2), "select": lambda s: s.select(1, 1),
    "movedim": lambda s: s.movedim(0, 1), "view of a view": lambda s: s.t()[1][1:],
}


@pytest.mark.parametrize("view", list(_VIEWS))
def test_views_of_a_partial_sum_follow_its_changes_and_write_into_it(view):
    """``s`` a (3, 2) partial sum: its views follow a change of ``s``, a change of a view reaches
    ``s`` (gt's views are per device views of the blocks), with and without gradients."""
    results = []
    for lib in (gt, torch):
        s = lib.tensor(_X3.tolist(), dtype=lib.float64).sum(0)
        v = _VIEWS[view](s)
        s.add_(1)
        followed = v.tolist()
        v.mul_(3)
        w = lib.tensor(_W3.tolist(), dtype=lib.float64, requires_grad=True)
        t = (lib.tensor(_X3.tolist(), dtype=lib.float64) * w).sum(0)
        _VIEWS[view](t).mul_(2)             # recorded: t's history takes the change
        (t * t).sum().backward()
        results.append((followed, s.tolist(), s._version, t.tolist(), w.grad.tolist()))
    got, want = results
    for g, t in zip(got, want):
        np.testing.assert_allclose(g, t, rtol=1e-12)


_FOLLOWERS = {      # views that gt makes over the mesh as copies gathered to one device, which follow changes
    "reshape across the blocks": lambda t: t.view(2, -1),
    "row": lambda t: t.view(3, 2)[1],
}


@pytest.mark.parametrize("view", list(_FOLLOWERS))
@pytest.mark.parametrize("of", ["the tensor", ".data"])
def test_views_of_data_and_of_its_tensor_follow_changes_through_the_other(of, view):
    """A view of ``a.data`` sees a change made through ``a``, and a view of ``a`` one made through
    ``a.data`` (one memory). Over the mesh gt makes these views as copies that follow the version
    counters of what they were taken of, which ``.data`` shares there (MISSING.md)."""
    results = []
    for lib in (gt, torch):
        a = lib.tensor(_X[:, 0][:6].tolist(), dtype=lib.float64)
        v = _FOLLOWERS[view](a.data if of == ".data" else a)
        (a if of == ".data" else a.data).masked_fill_(lib.tensor([True, False, True, True, False, True]), -0.5)
        after_one = v.tolist()
        (a if of == ".data" else a.data).mul_(3)
        results.append((after_one, v.tolist(), a.tolist()))
    got, want = results
    for g, t in zip(got, want):
        np.testing.assert_allclose(g, t, rtol=1e-12)
