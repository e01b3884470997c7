"""A row ``r = h[3]`` follows later in-place changes of ``h`` made by any route (``h.mul_(2)``, ``h[3] = y``,
``h.add_(y)``, ``h.copy_(z)``, ``h[2:5].zero_()``, a change through another ``h[3]``, an optimizer's step),
beside torch 2.13, where ``r`` is a view: its values and those of its views, ``_version`` (a view shares its
base's counter), its new history (gradients through ``r`` reach what changed ``h``) and the error of a
backward that saved ``r``. In the passes that set GT_DEVICES ``h`` is sharded along dim 0 and gt's ``h[3]``
is a copy of one device's row: it kept the values of before, silently (gt/tensor/mesh_row_follow.py)."""

import numpy as np
import pytest

import gt
from helpers import assert_results_as_torch

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(5)
_X, _Y, _C = _RNG.standard_normal((8, 4)), _RNG.standard_normal(4), _RNG.standard_normal((8, 4))


def _sharded(lib, t):
    """The tensor is sharded wherever the mesh shards a new tensor (the passes that set GT_DEVICES)."""
    assert lib is torch or (t._placed is None) == (gt.tensor(_X.tolist(), dtype=gt.float64)._placed is None)


def _mul(lib, h, y):
    h.mul_(2)


def _setitem(lib, h, y):
    h[3] = y * 3


def _add(lib, h, y):
    h.add_(y)


def _copy(lib, h, y):
    h.copy_(lib.tensor(_C.tolist(), dtype=lib.float64) * y)


def _slice_zero(lib, h, y):
    h[2:5].zero_()


def _another_row(lib, h, y):
    h[3][1:3].mul_(y[:2])        # through another copy of the same row


def _other_row(lib, h, y):
    h[5].add_(1)                 # the row's values stay; torch counts the change of its base


def _twice(lib, h, y):
    h[-5] = y
    h.sub_(0.5)


_CASES = {f.__name__[1:]: f for f in (_mul, _setitem, _add, _copy, _slice_zero, _another_row, _other_row, _twice)}


def _run(lib, change, grad):
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_(grad)
    y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_(grad)
    h = x.sin() * 2
    _sharded(lib, h)
    r = h[3]
    v, last = r[1:3], h[-1]
    before = (r * 3).sum()           # recorded before the change: reads the values of then
    version = r._version
    change(lib, h, y)
    out = [r, v, last, r._version - version, v._version - version, h]
    if grad:
        c = lib.tensor(_C.tolist(), dtype=lib.float64)
        loss = (r * c[0]).sum() + v.cos().sum() + before + (last * c[1]).sum() + (h * c).sum()
        out += lib.autograd.grad(loss, [x, y], allow_unused=True)
    return out


_same = assert_results_as_torch


@pytest.mark.parametrize("case", list(_CASES))
def test_a_row_follows_a_change_of_its_tensor_in_the_graph(case):
    """torch's values of the row, of its view and of another row after the change, ``_version``, and the
    leaves' gradients through the row's new history."""
    _same(_run(gt, _CASES[case], True), _run(torch, _CASES[case], True))


@pytest.mark.parametrize("case", ["mul", "setitem", "add", "copy", "slice_zero", "another_row", "other_row"])
def test_a_row_follows_a_change_of_a_tensor_that_requires_no_grad(case):
    _same(_run(gt, _CASES[case], False), _run(torch, _CASES[case], False))


def _gradient_written(lib):
    h = lib.tensor(_X.tolist(), dtype=lib.float64) * 1
    y = lib.tensor(_Y.tolist(), dtype=lib.float64, requires_grad=True)
    _sharded(lib, h)
    r = h[3]
    h.add_(y * y)                # h, and r with it, now requires grad
    return [r, lib.tensor(r.requires_grad), *lib.autograd.grad((r * r).sum(), [y])]


def test_a_gradient_written_into_the_tensor_reaches_the_row():
    _same(_gradient_written(gt), _gradient_written(torch))


def _taken_under_no_grad(lib, base_grad):
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_(base_grad)
    y = lib.tensor(_Y.tolist(), dtype=lib.float64, requires_grad=True)
    h = x * 1
    _sharded(lib, h)
    with lib.no_grad():
        r = h[3]
    if base_grad:
        h.mul_(2)
    else:
        h.add_(y)
    return r


@pytest.mark.parametrize("base_grad", [False, True])
def test_a_row_taken_under_no_grad_refuses_to_be_differentiated_after_the_change(base_grad):
    """torch raises once the row (a view taken under no_grad) is used after a recorded change of its
    base; gt where it is differentiated, as for its other views (gt/autograd/views.py)."""
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode and its base"):
        (_taken_under_no_grad(torch, base_grad) * 2).sum().backward()
    r = _taken_under_no_grad(gt, base_grad)
    np.testing.assert_allclose(np.asarray(r.tolist()), _taken_under_no_grad(torch, base_grad).tolist())
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode and its base"):
        (r * 2).sum().backward()


def _saved(lib, under_no_grad):
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_()
    h = x * 1
    _sharded(lib, h)
    r = h[3]
    loss = (r * r).sum()         # saves r
    if under_no_grad:
        with lib.no_grad():
            h[6:].add_(1)
    else:
        h.mul_(2)
    with pytest.raises(RuntimeError) as err:
        loss.backward()
    return str(err.value)


@pytest.mark.parametrize("under_no_grad", [False, True])
def test_a_backward_that_saved_the_row_refuses_after_a_change_of_its_tensor(under_no_grad):
    got, want = _saved(gt, under_no_grad), _saved(torch, under_no_grad)
    assert got.split("[")[0] == want.split("[")[0]


def _step(lib):
    p = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_()      # a leaf: sharded over the mesh
    _sharded(lib, p)
    opt = lib.optim.SGD([p], lr=0.1, momentum=0.9)
    r = p[3]
    with lib.no_grad():
        w = p[2]
    version = (r._version, w._version, p._version)
    out = []
    for _ in range(2):
        opt.zero_grad()
        (p * lib.tensor(_C.tolist(), dtype=lib.float64)).pow(2).sum().backward()
        opt.step()
        out += [r, w, r[::2]]
    grads = lib.autograd.grad((r * r).sum(), [p])
    # torch's view shares its base's counter: the row counts each change of p as p does (gt's step may
    # count more than torch's on one device too)
    changes = p._version - version[2]
    return out + [r._version - version[0] - changes, w._version - version[1] - changes, *grads]


def test_a_row_of_a_parameter_follows_the_optimizer_step():
    _same(_step(gt), _step(torch))


_SHAPE_CHANGES = {   # the change, and the rows of the tensor it is made on
    "t_": (lambda h: h.t_(), 8),
    "square t_": (lambda h: h.t_(), 4),           # the shape stays: the row would read another row
    "transpose_": (lambda h: h.transpose_(0, 1), 8),
    "resize_": (lambda h: h.resize_(4, 8), 8),
}


def _to_change(lib, case):
    return lib.tensor(_X[:_SHAPE_CHANGES[case][1]].tolist(), dtype=lib.float64) * 1


def _new_shape(lib, case):
    h = _to_change(lib, case)
    r = h[3]
    _SHAPE_CHANGES[case][0](h)
    h[0].zero_()
    return [r, h]


@pytest.mark.parametrize("case", list(_SHAPE_CHANGES))
def test_a_change_of_shape_with_a_row_alive_is_refused_over_the_mesh(case):
    """Over the mesh the row cannot follow ``h``'s new layout: refused, loudly and before ``h`` changes,
    rather than left stale (or, for a square ``t_``, given the transposed tensor's row); on one device the
    row is a view, as torch's."""
    h = _to_change(gt, case)
    if h._placed is None:
        _same(_new_shape(gt, case), _new_shape(torch, case))
        return
    r, shape = h[3], tuple(h.shape)
    with pytest.raises(RuntimeError, match=r"an in-place change of shape \(\w+_"):
        _SHAPE_CHANGES[case][0](h)
    assert tuple(h.shape) == shape                    # refused before anything changed
    h.mul_(2)                                         # and the row still follows
    np.testing.assert_array_equal(np.asarray(r.tolist()), np.asarray(h[3].tolist()))


_COPIES = {
    "reshape": lambda h: h.reshape(2, 16)[0],       # across the blocks (4 devices: 2 rows each)
    "diagonal": lambda h: h.t().diagonal(),
    "unfold": lambda h: h.unfold(0, 3, 2),
    "as_strided": lambda h: h.as_strided((3, 3), (5, 1), 2),
}


def _copy_follows(lib, take, grad):
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_(grad)
    y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_(grad)
    h = x * 1
    _sharded(lib, h)
    r = take(h)
    before = (r * 3).sum()
    version = r._version
    h.add_(y)
    h[3, 0] = -1.0
    out = [r, r._version - version]
    if grad:
        out += lib.autograd.grad((r * r).sum() + before, [x, y])
    return out


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("case", list(_COPIES))
def test_the_other_copies_made_for_views_follow_a_change_of_their_tensor(case, grad):
    """Over the mesh a reshape or diagonal across the blocks, ``unfold`` and ``as_strided`` are copies
    gathered to one device too: they follow as the rows do (values, ``_version``, new history)."""
    _same(_copy_follows(gt, _COPIES[case], grad), _copy_follows(torch, _COPIES[case], grad))


@pytest.mark.own_mesh
@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("n", [2, 4, 8])
def test_a_diagonal_across_one_row_blocks_counts_each_change_once(n, grad):
    """Over 8 devices (one row of h each) the diagonal of ``h.t()`` is a slice of the planes gathered to one
    device, itself a copy that followed ``h``: each change of ``h`` was counted on both, twice on their
    shared version (``_version`` 4 after two changes, torch's 2)."""
    with gt.sharding.use_mesh(n):
        _same(_copy_follows(gt, _COPIES["diagonal"], grad), _copy_follows(torch, _COPIES["diagonal"], grad))


def _view_of_a_row_dropped(lib):
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_()
    y = lib.tensor(_Y.tolist(), dtype=lib.float64, requires_grad=True)
    h = x * 1
    _sharded(lib, h)
    v, w = h[3][1:3], h[5, 1:]        # the rows themselves are not kept
    before = (v * 3).sum() + (w * 3).sum()
    h.add_(y)
    h.mul_(2)
    return [v, w, v._version, *lib.autograd.grad((v * v).sum() + before + w.sum(), [x, y])]


def test_a_view_of_a_row_that_is_not_kept_follows():
    _same(_view_of_a_row_dropped(gt), _view_of_a_row_dropped(torch))


_ALIAS_WRITES = {
    "data add_": "h[1].data.add_(2.0)",
    "detach add_": "h[1].detach().add_(2.0)",
    "data setitem": "d = h[1].data; d[0] = 100.0",
    "row of a sum": "h.sum(-1)[1].data.add_(1)",     # a row of a result, not of the tensor itself
    "then the row": "r = h[2]; r.detach().mul_(3); r.add_(1)",
    "in the graph": "b = a * 1; b[1].data.add_(2.0); h = b.detach() + lib.autograd.grad(b.sum(), a)[0]",
}


@pytest.mark.parametrize("case", list(_ALIAS_WRITES))
def test_a_change_through_an_alias_of_a_row_reaches_the_tensor(case):
    """``h[1].data.add_(2)`` / ``h[1].detach().add_(2)`` change ``h``, as torch's (an alias of a view); over the
    mesh gt's row is a copy, and the alias of it changed the copy alone, silently."""
    def run(lib):
        a = lib.tensor(_X.tolist(), dtype=lib.float64, requires_grad=True)
        h = lib.tensor(_X.tolist(), dtype=lib.float64)
        scope = {"lib": lib, "a": a, "h": h}
        exec(_ALIAS_WRITES[case], scope)
        return np.asarray(scope["h"].tolist())
    np.testing.assert_allclose(run(gt), run(torch), rtol=1e-12)
