"""In-place changes of tensors in the graph, recorded as torch records them: item assignment
(``y[i] = z``), ``copy_``, ``fill_``, ``zero_``, ``add_``... and ``+=`` on a tensor that requires
grad, or with a value that does. Each program runs in gt and in torch on the same values, and
the values and gradients are compared; then finite differences, the errors (torch's where torch
raises; gt's own where gt refuses what torch supports), and tensors on a mesh."""

import numpy as np
import pytest

import gt
from gt.sharding import Shard, use_mesh
from helpers import check_grad, torch_or_skip

RNG = np.random.default_rng(0)
ARRAYS = {"x": RNG.standard_normal((4, 3)), "z": RNG.standard_normal(3), "s": np.array(RNG.standard_normal()),
          "w": RNG.standard_normal((4, 3)), "p": RNG.uniform(0.5, 2.0, (4, 3))}
GRAD = ("x", "z", "s")            # these require grad; w and p are constants


def _tensors(lib, dtype):
    if lib is gt:
        return {k: gt.tensor(v.astype(dtype), requires_grad=k in GRAD) for k, v in ARRAYS.items()}
    return {k: lib.tensor(v, dtype=getattr(lib, dtype), requires_grad=k in GRAD) for k, v in ARRAYS.items()}


def _loss(y, t):
    return (y * t["w"]).sum()


# name -> program(L, t): changes in place, backpropagates, returns the changed tensor (its values)
def _setitem_row(L, t):
    y = t["x"] * 2
    y[1] = t["z"]
    _loss(y, t).backward()
    return y


def _setitem_negative_index_and_step(L, t):
    y = t["x"] * 2
    y[-1, ::2] = t["z"][:2] * 3
    _loss(y, t).backward()
    return y


def _setitem_column_from_a_0d_tensor(L, t):
    y = t["x"] * 2
    y[:, 1] = t["s"]                     # broadcast: z's gradient is the column's sum
    _loss(y, t).backward()
    return y


def _setitem_python_number(L, t):
    y = t["x"] * 3
    y[0, 0] = 5.0
    (y * y.detach()).sum().backward()
    return y


def _setitem_bool_mask(L, t):
    y = t["x"] * 2
    y[y > 0] = t["s"]
    _loss(y, t).backward()
    return y


def _setitem_repeated_indices(L, t):
    y = t["x"] * 2
    y[L.tensor([0, 2, 0])] = t["z"]       # every row index sends its gradient to z, as torch
    _loss(y, t).backward()
    return y


def _setitem_value_with_extra_leading_axis(L, t):
    y = t["x"] * 2
    y[2] = t["z"].reshape(1, 3)
    _loss(y, t).backward()
    return y


def _setitem_empty_slice(L, t):
    y = t["x"] * 2
    y[2:2] = t["z"]
    _loss(y, t).backward()
    return y


def _setitem_into_a_tensor_without_grad(L, t):
    y = L.zeros(4, 3, dtype=t["x"].dtype)
    y[1:3] = t["z"] * t["s"]
    _loss(y * y, t).backward()
    return y


def _setitem_constant_into_a_tensor_with_grad(L, t):
    y = t["x"] * 2
    y[0] = t["w"][0]
    _loss(y, t).backward()
    return y


def _earlier_uses_keep_the_old_values(L, t):
    y = t["x"] * t["s"]
    before = y * 3                       # read y before the change: its gradient goes to the old y
    y[1] = t["z"]
    y[2:] = t["z"] * 2                   # a second change of the same tensor
    _loss(before + y * y, t).backward()
    return y


def _two_writes_then_a_read(L, t):
    y = t["x"] + 1
    y[:, 0] = t["s"]
    y.mul_(t["p"])
    _loss(y.exp(), t).backward()
    return y


def _view_taken_before_the_change(L, t):
    """A view taken before the change reads the new values afterwards, as torch."""
    y = t["x"] * 2
    v = y.reshape(3, 4).transpose(0, 1)[1:]
    y[1] = t["z"]
    (v * t["w"].reshape(3, 4).T[1:]).sum().backward()
    return v


def _arithmetic_in_place(L, t):
    y = t["x"] * 1
    y.add_(t["p"], alpha=0.5)
    y.sub_(t["z"])
    y.mul_(t["s"])
    y.div_(t["p"])
    y.addcmul_(t["z"], t["p"], value=0.25)
    y.addcdiv_(t["w"], t["p"] + t["s"], value=2.0)
    _loss(y * y, t).backward()
    return y


def _augmented_assignment(L, t):
    y = t["x"] * 1
    y += t["z"]
    y -= t["s"]
    y *= t["p"]
    y /= t["z"].abs() + 1
    _loss(y * y, t).backward()
    return y


def _augmented_assignment_into_a_tensor_without_grad(L, t):
    y = L.zeros(4, 3) + t["w"]
    y += t["x"]
    y *= t["s"]
    _loss(y, t).backward()
    return y


def _copy_fill_zero(L, t):
    y = t["x"] * 2
    y.copy_(t["z"] * 3)                  # z broadcast over the rows: its gradient is summed
    _loss(y * t["x"], t).backward()
    u = t["x"] * 3
    u.fill_(t["s"])
    _loss(u, t).backward()
    q = t["x"] * 4
    q.zero_()
    _loss(q + t["x"], t).backward()
    return y


def _value_is_the_tensor_itself(L, t):
    y = t["x"] * 2
    y.add_(y, alpha=3)
    _loss(y * y, t).backward()
    return y


def _change_of_a_0d_tensor(L, t):
    y = (t["x"] * t["w"]).sum()
    y.add_(t["s"])
    y.mul_(2)
    (y * y).backward()
    return y


def _float64_value_into_float32(L, t):
    y = t["x"].float() * 2
    y[0] = t["z"].double() if hasattr(t["z"], "double") else t["z"]
    _loss(y, t).backward()
    return y


def _retained_grad_is_the_new_versions(L, t):
    y = t["x"] * 2
    y.retain_grad()
    early = y * 3
    y[0] = t["z"]
    _loss(early + y * 5, t).backward()
    return y.grad


def _augmented_assignment_on_an_index(L, t):
    y = t["x"] * 2
    y[0, ::2] += t["z"][:2] * t["x"][3, :2]      # a view changed in place, then written back
    y[1:3] *= t["s"]
    _loss(y * y, t).backward()
    return y


def _change_through_a_view(L, t):
    """The view's change is the base's too; a view taken before it reads the new values."""
    y = t["x"] * 2
    sibling = y[:, 1]
    v = y.reshape(3, 4).transpose(0, 1)[1:]
    v.mul_(t["p"].reshape(3, 4).T[1:])
    v.add_(t["s"])
    (_loss(y, t) + (sibling * sibling).sum() + (v * v).sum()).backward()
    return y


def _setitem_through_views(L, t):
    y = t["x"] * 2
    y.T[0] = t["w"][:, 0] * t["s"]
    y[1][1:] = t["z"][:2]
    _loss(y * y, t).backward()
    return y


def _views_of_views_and_views_taken_before(L, t):
    y = t["x"] * 2
    a, b = y.T, y[0]
    early = a * 1                        # read before any change
    b.add_(t["z"])                       # a was taken before: it follows, as in torch
    a[1] = t["z"][:1].expand(4) * 3
    y.T[2] *= t["z"][1]
    (early.sum() + (a * a).sum() + (y * b).sum()).backward()
    return y


def _no_grad_change_is_not_recorded(L, t):
    y = t["x"] * 2
    with L.no_grad():
        y[0] = 7.0
        y.add_(1)
    _loss(y, t).backward()
    return y


PROGRAMS = {f.__name__[1:]: f for f in (
    _setitem_row, _setitem_negative_index_and_step, _setitem_column_from_a_0d_tensor, _setitem_python_number,
    _setitem_bool_mask, _setitem_repeated_indices, _setitem_value_with_extra_leading_axis, _setitem_empty_slice,
    _setitem_into_a_tensor_without_grad, _setitem_constant_into_a_tensor_with_grad, _earlier_uses_keep_the_old_values,
    _two_writes_then_a_read, _view_taken_before_the_change, _arithmetic_in_place, _augmented_assignment,
    _augmented_assignment_into_a_tensor_without_grad, _copy_fill_zero, _value_is_the_tensor_itself,
    _change_of_a_0d_tensor, _float64_value_into_float32, _retained_grad_is_the_new_versions,
    _augmented_assignment_on_an_index, _change_through_a_view, _setitem_through_views,
    _views_of_views_and_views_taken_before, _no_grad_change_is_not_recorded)}


def _run(lib, program, dtype):
    t = _tensors(lib, dtype)
    out = program(lib, t)
    as_np = (lambda v: v.numpy()) if lib is gt else (lambda v: v.detach().numpy())
    grads = {k: None if t[k].grad is None else as_np(t[k].grad) for k in GRAD}
    return as_np(out), grads


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_in_place_changes_as_in_torch(name, dtype):
    torch = torch_or_skip()
    (ours, our_grads), (theirs, their_grads) = _run(gt, PROGRAMS[name], dtype), _run(torch, PROGRAMS[name], dtype)
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (1e-5, 1e-5)
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=f"{name}: values")
    for k in GRAD:
        assert (our_grads[k] is None) == (their_grads[k] is None), f"{name}: {k}.grad {our_grads[k]} vs torch's"
        if our_grads[k] is not None:
            assert our_grads[k].dtype == their_grads[k].dtype, k
            np.testing.assert_allclose(our_grads[k], their_grads[k], rtol=rtol, atol=atol, err_msg=f"{name}: {k}.grad")


def test_the_tensor_stays_the_same_object_with_a_new_grad_fn():
    x = gt.tensor(ARRAYS["x"], requires_grad=True)
    y = x * 2
    same = y
    y[0] = 1.0
    y += 1
    y.mul_(3)
    assert y is same and not y.is_leaf and y.grad_fn.name == "Mul"
    z = gt.zeros(2)
    z.copy_(x[0, :2])
    assert z.requires_grad and z.grad_fn.name == "IndexPut"


def _set_rows(x, z):
    y = x * x
    y[1:3] = z
    y[0, ::2] += z[:2] * x[3, :2]
    return y


def _through_views(x, z):
    y = x * x
    y.T[1] *= z[0]
    v = y[1:3]
    v.add_(z)
    return y * v.sum()


def test_item_assignment_against_finite_differences():
    check_grad(_set_rows, ARRAYS["x"], ARRAYS["z"])
    check_grad(_through_views, ARRAYS["x"], ARRAYS["z"])
    check_grad(lambda x, z: x.exp().clone().mul_(z).add_(x), ARRAYS["x"], ARRAYS["z"])


# ---- errors -------------------------------------------------------------------------------------
LEAF = "leaf Variable that requires grad is being used in an in-place operation"


@pytest.mark.parametrize("change", [
    lambda x: x.add_(1), lambda x: x.mul_(2), lambda x: x.zero_(), lambda x: x.copy_(x.detach()),
    lambda x: x.__setitem__(0, 1.0), lambda x: x.__iadd__(1), lambda x: x.__imul__(x),
    lambda x: x[0].add_(1), lambda x: x.reshape(12).__setitem__(0, 1.0),
], ids=["add_", "mul_", "zero_", "copy_", "setitem", "+=", "*=", "view add_", "view setitem"])
def test_a_leaf_that_requires_grad_refuses_as_in_torch(change):
    torch = torch_or_skip()
    for x in (gt.tensor(ARRAYS["x"], requires_grad=True), torch.tensor(ARRAYS["x"], requires_grad=True)):
        with pytest.raises(RuntimeError, match=LEAF):
            change(x)


def test_a_change_of_a_value_a_backward_saved_raises_as_in_torch():
    torch = torch_or_skip()
    programs = [
        lambda L, x, z: (y := x.exp(), y.__setitem__(0, 1.0), y.sum().backward()),    # exp saved its output
        lambda L, x, z: (y := x * 2, b := y * y, y.__setitem__(1, z), (b + y).sum().backward()),
        lambda L, x, z: (y := x.sigmoid(), y.add_(1), y.sum().backward()),
        lambda L, x, z: (y := x * 2, b := y * z, y.add_(1), b.sum().backward()),     # kept for z's gradient
    ]
    for program in programs:
        for lib in (gt, torch):
            x = lib.tensor(ARRAYS["x"], requires_grad=True)
            z = lib.tensor(ARRAYS["z"], requires_grad=True)
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                program(lib, x, z)


def test_an_expanded_view_is_refused_as_in_torch():
    """Its positions repeat: torch refuses to write it in place, and so does gt (torch's error)."""
    torch = torch_or_skip()
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        (torch.tensor(ARRAYS["x"], requires_grad=True) * 2)[0:1].expand(4, 3).add_(1)
    x, z = gt.tensor(ARRAYS["x"], requires_grad=True), gt.tensor(ARRAYS["z"], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        y[0:1].expand(4, 3).add_(1)
    np.testing.assert_array_equal(y.numpy(), ARRAYS["x"] * 2)       # nothing was written
    y[0:1].expand(4, 3).clone().add_(z)                              # a copy may change


def test_what_gt_cannot_write_is_refused_with_a_clear_error():
    z = gt.tensor(ARRAYS["z"], requires_grad=True)
    # (writes of values that require grad into views of tensors that do not, which torch follows,
    # are compared with torch in tests/test_inplace_views_parity.py)
    written = gt.zeros(3, dtype=gt.int64).copy_(z)      # torch's: a plain write, no gradient
    assert not written.requires_grad and written.tolist() == z.detach().to(gt.int64).tolist()
    y = z * 2
    with pytest.raises(ValueError, match=r"add_: shapes \(3,\) and \(4,\) cannot be broadcast"):
        y.add_(gt.ones(4))
    with pytest.raises(ValueError, match=r"add_: a value of shape \(2, 3\) cannot be written into shape \(3,\)"):
        y.add_(gt.ones(2, 3))
    with pytest.raises(IndexError, match=r"\(tensor of shape \(3,\)\)"):
        y[5] = 1.0


# ---- on a mesh: the same gradients as on one device ---------------------------------------------
SHARDED = {
    "item assignment": lambda x, z, w: (y := x * 2, y.__setitem__(1, z), y.__setitem__(slice(2, 6), z * 3), y),
    "add_ and mul_": lambda x, z, w: (y := x * 2, early := y * 3, y.add_(z), y.mul_(w), y + early),
    "copy_": lambda x, z, w: (y := x * 2, y.copy_(z), y * x),
    "a view taken before": lambda x, z, w: (y := x * 2, v := y[1:5], y.__setitem__(2, z), v),
}


@pytest.mark.own_mesh
@pytest.mark.parametrize("name", list(SHARDED))
def test_changes_of_sharded_tensors_match_one_device(name):
    x_np = RNG.standard_normal((8, 3)).astype(np.float32)
    w_np = RNG.uniform(0.5, 2, (8, 3)).astype(np.float32)
    results = {}
    for n in (1, 4):
        with use_mesh(n):
            x = gt.tensor(x_np, requires_grad=True)
            z = gt.tensor(ARRAYS["z"].astype(np.float32), requires_grad=True)
            w = gt.tensor(w_np)
            xs = x.shard(0) if n > 1 else x
            out = SHARDED[name](xs, z, w)[-1]
            if n > 1:
                assert xs.placement == Shard(0) and out.placement == Shard(0)
            (out * out).sum().backward()
            results[n] = out.numpy(), x.grad.numpy(), z.grad.numpy()
    for one, four in zip(results[1], results[4]):
        np.testing.assert_allclose(four, one, rtol=1e-5, atol=1e-6)


@pytest.mark.own_mesh
def test_a_sharded_saved_value_changed_in_place_raises():
    with use_mesh(4):
        x = gt.tensor(RNG.standard_normal((8, 3)).astype(np.float32), requires_grad=True)
        y = x.shard(0).exp()
        y[0] = 1.0
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
        shard_of_x = x.shard(0)                 # a view of x's memory over the mesh
        with pytest.raises(RuntimeError, match="a view of a leaf Variable"):
            shard_of_x.add_(1)
        x.grad = None
        y = x.shard(0) * 2
        z = gt.tensor(ARRAYS["z"].astype(np.float32), requires_grad=True)
        y[0:2] += z                             # written through the view over the mesh, as torch's
        y[0:2] = y[0:2] + z
        (y * y).sum().backward()
    torch = torch_or_skip()
    tx, tz = (torch.tensor(a.numpy(), requires_grad=True) for a in (x.detach(), z.detach()))
    ty = tx * 2
    ty[0:2] += tz
    ty[0:2] = ty[0:2] + tz
    (ty * ty).sum().backward()
    for got, want in ((y, ty), (x.grad, tx.grad), (z.grad, tz.grad)):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
