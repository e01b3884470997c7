"""Indexes that mix integers with index arrays follow torch's rule (gt/tensor/index_order.py):
the integers are applied first, so they never send the arrays' axes to the front as numpy's rule
does. Reads, writes, gradients and sharded tensors against torch, on every engine."""

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from gt.sharding.placement import Shard

torch = pytest.importorskip("torch")

# (index as gt takes it, the same for torch): lists, tensors and masks beside ints, slices,
# None and Ellipsis; the comments give numpy's shape where it differs from torch's
CASES = {
    "int_slice_list": lambda T: (0, slice(None), [1, 3]),                  # numpy (2, 4)
    "int_ellipsis_tensor": lambda T: (1, Ellipsis, T([-1, 0])),             # numpy (2, 4, 3)
    "slice_int_list": lambda T: (slice(None), 2, [0, 0, 4]),               # numpy (3, 3): the same here
    "none_int_list": lambda T: (None, -1, Ellipsis, [1, 0]),               # numpy (2, 1, 4, 3)
    "int_step_mask": lambda T: (2, slice(None, None, 2), T([True, False, True, False, True])),  # numpy (3, 2)
    "int_between_arrays": lambda T: ([0, 2], 1, T([4, 0])),                # the same in both: (2,)
    "zero_d_tensor_as_int": lambda T: (T(1), slice(None), [1, 2]),         # a 0-d int tensor is an int
    "int_then_adjacent": lambda T: (1, [0, 3], [2, 2]),
    "mask_over_two_axes": lambda T: (0, T(np.arange(20).reshape(4, 5) % 3 == 0)),
}


def _data(seed=0):
    return np.random.default_rng(seed).standard_normal((3, 4, 5)).astype(np.float32)


def _gt_index(case):
    return CASES[case](lambda v: gt.tensor(np.asarray(v)))


def _torch_index(case):
    return CASES[case](lambda v: torch.tensor(np.asarray(v)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_reads_are_torchs(case):
    x = _data()
    got, want = gt.tensor(x)[_gt_index(case)], torch.from_numpy(x)[_torch_index(case)]
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("case", sorted(CASES))
def test_writes_are_torchs(case):
    x = _data()
    g, t = gt.tensor(x.copy()), torch.from_numpy(x.copy())
    g[_gt_index(case)] = 7.0
    t[_torch_index(case)] = 7.0
    np.testing.assert_array_equal(g.numpy(), t.numpy())
    shape = tuple(t[_torch_index(case)].shape)
    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    g[_gt_index(case)] = gt.tensor(values)
    t[_torch_index(case)] = torch.from_numpy(values)
    np.testing.assert_array_equal(g.numpy(), t.numpy())


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_of_reads_and_writes_are_torchs(case):
    x = _data()
    shape = tuple(torch.from_numpy(x)[_torch_index(case)].shape)
    v = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    w = np.random.default_rng(2).standard_normal((3, 4, 5)).astype(np.float32)
    gx, gv = gt.tensor(x, requires_grad=True), gt.tensor(v, requires_grad=True)
    tx, tv = torch.tensor(x, requires_grad=True), torch.tensor(v, requires_grad=True)
    for a, b, idx, T in ((gx, gv, _gt_index(case), gt.tensor), (tx, tv, _torch_index(case), torch.from_numpy)):
        y = a * 2.0                              # a non-leaf: written in place on the tape
        y[idx] = b * 3.0
        ((y * T(w)).sum() + (a[idx] ** 2).sum()).backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gv.grad.numpy(), tv.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("case", ["int_slice_list", "int_ellipsis_tensor", "int_step_mask"])
def test_a_sharded_tensor_reads_and_writes_as_an_unsharded_one(case):
    x = _data()
    want = torch.from_numpy(x)[_torch_index(case)].numpy()
    written = torch.from_numpy(x.copy())
    written[_torch_index(case)] = -1.0
    with use_mesh(2):
        for axis in (0, 1, 2):
            xs = gt.tensor(x).shard(axis)
            np.testing.assert_array_equal(xs[_gt_index(case)].numpy(), want)
            ws = gt.tensor(x.copy()).shard(axis)
            ws[_gt_index(case)] = -1.0
            assert ws.placement == Shard(axis)
            np.testing.assert_array_equal(ws.numpy(), written.numpy())


def test_out_of_range_errors_name_this_tensors_axis():
    g = gt.zeros(3, 4, 5)
    with pytest.raises(IndexError, match=r"index 7 is out of bounds for dimension 2 with size 5 \(tensor of shape "
                                         r"\(3, 4, 5\)\)"):
        g[0, :, [7]]
    with pytest.raises(IndexError, match=r"index -5 is out of bounds for dimension 1 with size 4"):
        g[1, [0, -5]] = 1.0
    assert g.abs().sum().item() == 0             # nothing written


# (shape, index with the mask as a numpy bool array): a mask axis of another size than the axis it covers;
# numpy lets a mask axis of size 0 stand for any axis (an empty result), torch refuses every one
MASK_MISMATCHES = {
    "empty_mask_axis_of_1": ((1, 3), (np.zeros((0, 3), bool),)),
    "empty_mask_axis_of_3": ((3, 1), (np.zeros((3, 0), bool),)),
    "after_a_slice": ((2, 1, 1, 3), (slice(None), np.zeros((1, 0), bool))),
    "after_ellipsis": ((2, 4, 1), (Ellipsis, np.zeros((0, 1), bool))),
    "after_an_int": ((2, 1, 3), (0, np.zeros((0, 3), bool))),
    "beside_an_empty_axis": ((0, 1, 1, 0), (np.zeros((0,), bool), np.zeros((1, 0), bool))),
    "one_too_long": ((2, 3), (np.ones((2, 4), bool),)),
}


@pytest.mark.parametrize("case", sorted(MASK_MISMATCHES))
def test_a_mask_of_another_shape_is_refused_as_torch_refuses(case):
    shape, index = MASK_MISMATCHES[case]
    data = np.zeros(shape, np.float32)
    errors = []
    for lib in (torch, gt):
        x = lib.tensor(data)
        parts = tuple(lib.tensor(p) if isinstance(p, np.ndarray) else p for p in index)
        with pytest.raises(IndexError) as read:
            x[parts]
        with pytest.raises(IndexError) as write:
            x[parts] = 1.0
        errors.append((str(read.value), str(write.value)))
    assert errors[1] == errors[0]
    np.testing.assert_array_equal(x.numpy(), data)      # the refused write changed nothing


# (shape, index with masks and positions as numpy arrays, the value's shape): values that do not fit x[index]
MISFITS = {
    "mask_three_for_two": ((3,), (np.array([True, False, True]),), (3,)),
    "mask_of_rows": ((8, 2), (np.array([True, False] * 4),), (3, 2)),
    "zero_d_mask": ((), (np.array(True),), (2,)),
    "zero_d_mask_two_dims": ((), (np.array(True),), (2, 3)),
    "positions": ((3,), (np.array([0, 2]),), (3,)),
}


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("case", sorted(MISFITS))
def test_a_value_that_does_not_fit_is_refused_as_torch_refuses(case, grad):
    """numpy's ValueError or TypeError with its own words for a mask (``cannot assign 3 input values to
    the 2 output values``); torch's RuntimeError and message now, recorded or not, over the mesh too."""
    shape, index, value = MISFITS[case]
    errors = []
    for lib in (torch, gt):
        x = lib.zeros(shape, requires_grad=grad) * 1 if grad else lib.zeros(shape)
        with pytest.raises(RuntimeError) as refused:
            x[tuple(lib.tensor(p) for p in index)] = lib.ones(value)
        errors.append(str(refused.value))
    assert errors[1] == errors[0]
