"""In-place changes through views of a tensor in the graph (``h[2:5].mul_(2)``, ``h.t().add_(1)``,
``h.view(-1)[3:9].zero_()``, ``h.diagonal().copy_(y)``, ``h[2:6][1] = ...``...), beside torch 2.13:
the values of the tensor and of the view after the change, the leaves' gradients, ``_version``.
In the passes that set GT_DEVICES ``h`` is sharded over the mesh, where gt refused every such write
("this tensor is a view of another tensor in the graph (made by <GetItemBackward (sharded...)>)");
on one device they check the write through of gt/tensor/inplace_grad.py against torch too."""

import numpy as np
import pytest

import gt
from helpers import assert_results_as_torch, skip_a_gathered_copy_off_ci_meshes

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(11)
_X, _Y, _C = _RNG.standard_normal((8, 4)), _RNG.standard_normal((3, 4)), _RNG.standard_normal((8, 4))


def _slice_mul(lib, h, y):
    return h[2:5].mul_(2)


def _column_zero(lib, h, y):
    return h[:, 0].zero_()


def _t_add(lib, h, y):
    return h.t().add_(1)


def _flat_add(lib, h, y):
    return h.view(-1).add_(1)


def _transposed_row(lib, h, y):
    return h.transpose(0, 1)[0].mul_(2)


def _steps_sin(lib, h, y):
    return h[1:7:2].sin_()


def _clamp(lib, h, y):
    return h[::2, 1:].clamp_(-0.5, 0.5)


def _fill_ellipsis_none(lib, h, y):
    return h[..., None, 2].fill_(3.0)


def _copy_leaf(lib, h, y):
    return h[2:5].copy_(y)


def _mul_by_leaf(lib, h, y):
    return h[3:6, 1:3].mul_(y[:, :2])


def _setitem_on_view(lib, h, y):
    v = h[2:6]
    v[1] = y[0] * 2
    return v


def _diagonal(lib, h, y):
    return h.diagonal().add_(y[0])


def _diagonal_offset(lib, h, y):
    return h[1:].diagonal(-2).mul_(y[1])


def _chain(lib, h, y):
    return h.view(4, 8)[1:3].t()[2:6][1].mul_(3)


def _mT_int(lib, h, y):
    return h.mT[2].sub_(y[2].sum())


def _twice_and_stale(lib, h, y):
    a, b = h[:, 1], h[4:]     # b taken before the change through a: it shows the new values
    a.mul_(y[0, 0])
    b.add_(y[1:2, :])
    return b


def _read_before_the_change(lib, h, y):
    v = h[2:6]
    w = v[1:3] * 3 + y[:2]     # recorded before the change of v: its gradient is that of the values of then
    v.mul_(2)
    return w + v[:2]


_CASES = {f.__name__[1:]: f for f in (
    _slice_mul, _column_zero, _t_add, _flat_add, _transposed_row, _steps_sin, _clamp, _fill_ellipsis_none, _copy_leaf,
    _mul_by_leaf, _setitem_on_view, _diagonal, _diagonal_offset, _chain, _mT_int, _twice_and_stale,
    _read_before_the_change)}


def _run(lib, write):
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_()
    y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
    h = x.sin() * 2
    before = h[2:6] * 3 + h[:, :2].sum()     # recorded before the change: reads the values of before
    version = h._version
    v = write(lib, h, y)
    bumped = h._version > version
    loss = (h * lib.tensor(_C.tolist(), dtype=lib.float64)).sum() + v.cos().sum() + before.sum()
    return (h, v, *lib.autograd.grad(loss, [x, y], allow_unused=True)), bumped


@pytest.mark.parametrize("case", list(_CASES))
def test_in_place_change_through_a_view_of_a_tensor_in_the_graph(case):
    try:
        got, bumped = _run(gt, _CASES[case])
    except RuntimeError as exc:
        skip_a_gathered_copy_off_ci_meshes(exc)
        raise
    want, torch_bumped = _run(torch, _CASES[case])
    assert bumped == torch_bumped
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            assert tuple(g.shape) == tuple(w.shape)
            np.testing.assert_allclose(np.asarray(g.detach().tolist()), w.detach().numpy(), rtol=1e-10, atol=1e-12)



_COPIES = {   # views gt makes over the mesh (GT_DEVICES=4) as copies gathered to one device
    "diagonal across the blocks": lambda h: h.t().diagonal(1),
    "reshape across the blocks": lambda h: h.reshape(2, 4, 4),
}


def _change(v, how):
    if how == "mul_":
        v.mul_(3)
    else:               # Python's in-place operator on a name: no item assignment writes it back
        v *= 3


def _write_into(lib, case, how="mul_", grad=True):
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_(grad)
    h = x.sin() * 2
    v = _COPIES[case](h)
    _change(v, how)
    return (h, v, *lib.autograd.grad((h * h).sum() + v.sum(), x)) if grad else (h, v)


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("how", ["mul_", "*="])
@pytest.mark.parametrize("case", list(_COPIES))
def test_view_made_as_a_copy_over_the_mesh(case, how, grad):
    """Where gt makes the view as a copy gathered to one device, a change of it in place is refused (gt
    changed the copy alone, leaving the tensor as it was: silently not torch's, and so did ``v *= 3``
    until 2026-12-07); elsewhere torch's values."""
    try:
        got = _write_into(gt, case, how, grad)
    except RuntimeError as exc:
        assert gt.tensor(_X.tolist()).t()._placed is not None       # on the mesh only
        assert "over the mesh" in str(exc) and "leave that tensor unchanged" in str(exc)
        return
    for g, w in zip(got, _write_into(torch, case, how, grad)):
        np.testing.assert_allclose(np.asarray(g.detach().tolist()), w.detach().numpy(), rtol=1e-10, atol=1e-12)


_NOT_TRACKED = {   # torch's views that gt makes as copies of a sharded (GT_DEVICES) or bfloat16 tensor
    "unfold": lambda h: h.unfold(0, 2, 2),
    "as_strided": lambda h: h.as_strided((3, 2), (4, 1)),
}


def _write_windows(lib, case, dtype, how="mul_"):
    x = lib.tensor(_X.tolist(), dtype=getattr(lib, dtype)).requires_grad_()
    h = x.sin() * 2
    v = _NOT_TRACKED[case](h)
    _change(v, how)
    return (h, v, *lib.autograd.grad((h * h).sum() + v.sum(), x))


@pytest.mark.parametrize("how", ["mul_", "*="])
@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
@pytest.mark.parametrize("case", list(_NOT_TRACKED))
def test_unfold_and_as_strided_made_as_copies_refuse_in_place_changes(case, dtype, how):
    """``unfold``/``as_strided`` of a tensor whose storage gt does not track (sharded, bfloat16) are
    copies: a change of one in place is refused (it changed the copy alone, the tensor left as it was:
    silently not torch's); elsewhere they are views, with torch's values and gradients."""
    if dtype == "bfloat16":
        try:
            gt.zeros(1, dtype=gt.bfloat16)
        except TypeError:
            pytest.skip("this engine has no bfloat16")
    try:
        got = _write_windows(gt, case, dtype, how)
    except RuntimeError as exc:
        assert dtype == "bfloat16" or gt.tensor(_X.tolist())._placed is not None
        assert f"{case} of a sharded, bfloat16 or GPU tensor" in str(exc) and "unchanged" in str(exc)
        return
    assert dtype == "float64" and gt.tensor(_X.tolist())._placed is None
    for g, w in zip(got, _write_windows(torch, case, dtype, how)):
        np.testing.assert_allclose(np.asarray(g.detach().tolist()), w.detach().numpy(), rtol=1e-10, atol=1e-12)


def _gradient_into_view(lib):
    y = lib.tensor(_X[:, 0].tolist(), dtype=lib.float64).requires_grad_()
    h = lib.tensor(_X.tolist(), dtype=lib.float64) * 2          # requires no grad
    h[:, 1].copy_(y * 3)
    return h, *lib.autograd.grad((h * lib.tensor(_C.tolist(), dtype=lib.float64)).sum(), y)


def test_a_gradient_written_into_a_view_of_a_tensor_that_requires_none():
    """torch makes the tensor require grad, the change its history; so does gt, over the mesh too since
    2026-12-07 (it refused there: it wrote the values alone, the gradient silently lost, before that;
    tests/test_mesh_unrecorded_views_parity.py has more)."""
    for g, w in zip(_gradient_into_view(gt), _gradient_into_view(torch)):
        np.testing.assert_allclose(np.asarray(g.detach().tolist()), w.detach().numpy(), rtol=1e-10, atol=1e-12)


# x[i] along the dim a sharded x is cut on: gt makes it as a copy of the owner's row (no view), which
# it refused to change in place (changed alone, x would have stayed as it was); it is now written back.
def _row_mul(lib, h, y):
    return h[3].mul_(2)


def _row_zero(lib, h, y):
    return h[3].zero_()


def _last_row_copy(lib, h, y):
    return h[-1].copy_(y[0] * 3)


def _slice_of_row_add(lib, h, y):
    return h[3][1:3].add_(1)


def _item_of_row(lib, h, y):
    v = h[6]
    v[0] = y[1, 1] * 2
    return v


def _row_iadd(lib, h, y):
    h[3] += y[0]
    return h[3]


def _row_exp(lib, h, y):
    return h[5].exp_()


def _row_of_a_slice(lib, h, y):
    return h[2:6][1].mul_(3)


def _setitem(lib, h, y):
    h[4] = y[2]         # (over the mesh, unrecorded, gt wrote h into new memory: views taken before kept the old)
    return h[4]


def _row_then_row(lib, h, y):
    h[5].mul_(y[2])
    return h[4].sub_(h[5])


_ROWS = {f.__name__[1:]: f for f in (
    _row_mul, _row_zero, _last_row_copy, _slice_of_row_add, _item_of_row, _row_iadd, _row_exp, _row_then_row,
    _row_of_a_slice, _setitem)}


def _run_row(lib, write, grad):
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_(grad)
    y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_(grad)
    h = x.sin() * 2
    taken = h[2:7]      # a view taken before: it shows the change
    before = h[2:6] * 3 + h[:, :2].sum()
    version = h._version
    v = write(lib, h, y)
    out = [h, v, taken, h._version - version]
    if grad:
        loss = (h * lib.tensor(_C.tolist(), dtype=lib.float64)).sum() + v.cos().sum() + before.sum() + taken[1].sum()
        out += lib.autograd.grad(loss, [x, y], allow_unused=True)
    return out


_same = assert_results_as_torch


@pytest.mark.parametrize("case", [case for case in _ROWS if case not in ("row_zero", "setitem")])
def test_in_place_change_of_a_row_of_a_tensor_in_the_graph(case):
    """Over the mesh ``h[i]`` is a copy of one device's row, written back into ``h`` after the change:
    torch's values of ``h``, of the row and of a view taken before, ``_version``, the leaves' gradients."""
    _same(_run_row(gt, _ROWS[case], True), _run_row(torch, _ROWS[case], True))


@pytest.mark.parametrize("case", ["row_mul", "row_zero", "slice_of_row_add", "item_of_row", "row_iadd",
                                  "row_of_a_slice", "setitem"])
def test_in_place_change_of_a_row_that_requires_no_grad(case):
    """The same without gradients: the values must reach ``h`` and the views taken before (gt changed
    ``h[3][1:3]``'s copy alone, silently)."""
    _same(_run_row(gt, _ROWS[case], False), _run_row(torch, _ROWS[case], False))


def _row_alias_change(lib, alias, grad):
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_(grad)
    y = lib.tensor(_Y.tolist(), dtype=lib.float64).requires_grad_()
    h = x.sin() * 2
    row = h[3]
    a = row.data if alias == ".data" else row.detach()
    a.mul_(y[0])                # autograd does not see a change through an alias: h keeps its history
    out = [h, int(h.requires_grad), int(a.requires_grad)]
    loss = (h * lib.tensor(_C.tolist(), dtype=lib.float64)).sum() + a.sum()
    return out + list(lib.autograd.grad(loss, [x, y] if grad else [y], allow_unused=True))


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("alias", [".data", "detach()"])
def test_a_change_of_a_row_through_an_alias_is_no_history_of_the_tensor(alias, grad):
    """``h[3].data.mul_(y[0])`` with ``y`` requiring grad: the values reach ``h`` and the alias takes the
    history, as torch's; over the mesh the row written back made ``h`` require grad (a tensor that
    required none) and sent ``y`` a gradient through ``h`` (found by the view-program fuzzer)."""
    _same(_row_alias_change(gt, alias, grad), _row_alias_change(torch, alias, grad))


def _row_under_no_grad(lib):
    x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_()
    taken = x[1:5]
    with lib.no_grad():
        x[3].mul_(2)            # a leaf changed as an optimizer does
        x[-1][::2] = 1.5
    try:
        x[2].add_(1)
    except RuntimeError as exc:
        return x, taken, x._version, str(exc)


def test_in_place_change_of_a_row_of_a_leaf():
    """Under no_grad a row of a leaf is changed, the leaf with it; with gradients, torch's error for a
    view of a leaf (gt's said the row was a copy)."""
    got, want = _row_under_no_grad(gt), _row_under_no_grad(torch)
    _same(got[:3], want[:3])
    assert got[3].startswith(want[3])
