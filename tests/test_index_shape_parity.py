"""Indexing and shape ops beside torch where they once differed: ops that torch always copies
(flip, roll, repeat, tile, repeat_interleave, diag, diff) give memory of their own, so a write
into the result leaves the input and its gradient alone; torch's placement of index arrays
around an empty ``...`` and of bools after integers; list indexes read as tuples; empty dims
in flatten, split and chunk; range checks of gather and index_select; masked_fill, scatter, cat
and masked_scatter edge cases. On every engine."""

import warnings

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")


def _np(t):
    return np.asarray(t.detach().numpy())


# name: (input shape, op); each op is run on gt and on torch alike
COPYING_OPS = {
    "flip(0)": ((2, 3), lambda m, x: x.flip(0)),
    "flip(())": ((2, 3), lambda m, x: x.flip(())),
    "flip(0) of one row": ((1, 3), lambda m, x: x.flip(0)),
    "fliplr": ((2, 3), lambda m, x: m.fliplr(x)),
    "flipud": ((2, 3), lambda m, x: m.flipud(x)),
    "rot90": ((2, 3), lambda m, x: x.rot90()),
    "rot90(2)": ((2, 3), lambda m, x: x.rot90(2)),
    "rot90(-1)": ((2, 3), lambda m, x: m.rot90(x, -1)),
    "roll(0, 0)": ((2, 3), lambda m, x: x.roll(0, 0)),
    "roll by the size": ((2, 3), lambda m, x: x.roll(3, 1)),
    "roll((0, 0), (0, 1))": ((2, 3), lambda m, x: x.roll((0, 0), (0, 1))),
    "roll(6) flat": ((2, 3), lambda m, x: x.roll(6)),
    "repeat(1, 1)": ((2, 3), lambda m, x: x.repeat(1, 1)),
    "repeat(2, 1) of one row": ((1, 3), lambda m, x: x.repeat(2, 1)),
    "tile((1,))": ((2, 3), lambda m, x: x.tile((1,))),
    "tile((1, 1))": ((2, 3), lambda m, x: m.tile(x, (1, 1))),
    "tile(())": ((2, 3), lambda m, x: x.tile(())),
    "repeat_interleave(1)": ((2, 3), lambda m, x: x.repeat_interleave(1)),
    "repeat_interleave(1, dim=0)": ((2, 3), lambda m, x: x.repeat_interleave(1, dim=0)),
    "repeat_interleave(2, 0) of one row": ((1, 3), lambda m, x: x.repeat_interleave(2, 0)),
    "diag of a matrix": ((2, 3), lambda m, x: m.diag(x)),
    "diff(n=0)": ((2, 3), lambda m, x: m.diff(x, n=0)),
}


@pytest.mark.parametrize("name", list(COPYING_OPS))
def test_ops_torch_copies_give_memory_of_their_own(name):
    shape, op = COPYING_OPS[name]
    results = []
    for m in (gt, torch):
        a = m.arange(float(np.prod(shape))).reshape(*shape).requires_grad_()
        x = a * 1
        y = op(m, x)
        y.mul_(2)                         # must not reach x
        loss = (x * m.arange(float(np.prod(shape))).reshape(*shape)).sum()
        loss.backward()
        results.append((_np(x), _np(y), _np(a.grad)))
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)


def test_flip_strides_are_torchs():
    for dims in (0, 1, (0, 1)):
        assert gt.arange(12.).reshape(3, 4).flip(dims).stride() == torch.arange(12.).reshape(3, 4).flip(dims).stride()


def _beside_torch(index_of, shape=(2, 3, 4)):
    """``x[index]``, its gradient and ``x[index] = -1`` on gt and torch: asserted equal."""
    a = np.arange(float(np.prod(shape))).reshape(shape)
    out = []
    for m, wrap in ((gt, gt.from_numpy), (torch, torch.from_numpy)):
        index = index_of(m)
        x = wrap(a.copy()).requires_grad_()
        y = x[index]
        (y * wrap(np.arange(float(np.prod(tuple(y.shape)))).reshape(tuple(y.shape)) + 1)).sum().backward()
        z = wrap(a.copy())
        z[index] = -1.0
        out.append((tuple(y.shape), _np(y), _np(x.grad), _np(z)))
    assert out[0][0] == out[1][0]
    for got, want in zip(out[0][1:], out[1][1:]):
        np.testing.assert_array_equal(got, want)
    return out[0][0]


@pytest.mark.parametrize("index_of", [
    lambda m: (slice(None), [0, 1], Ellipsis, [1, 2]),
    lambda m: ([0, 1], Ellipsis, slice(None), m.tensor([1, 2])),
    lambda m: (slice(None), m.tensor([[0], [2]]), Ellipsis, m.tensor([1, 3])),
    lambda m: ([1, 0], Ellipsis, [2, 1], [0, 3]),
], ids=["slice-list-...-list", "list-...-slice-tensor", "broadcast arrays", "... at the front of two"])
def test_an_ellipsis_of_no_axis_does_not_part_index_arrays(index_of):
    _beside_torch(index_of)


@pytest.mark.parametrize("index_of", [
    lambda m: (0, slice(None), True),
    lambda m: (0, slice(None), False),
    lambda m: (0, slice(None), m.tensor(True)),
    lambda m: (1, True, slice(None), 2),
    lambda m: (0, [1, 2], True),
    lambda m: (True, 1, [0, 2]),
    lambda m: (0, False, Ellipsis, [1]),
], ids=["int-slice-True", "int-slice-False", "int-slice-0d-True", "int-True-slice-int", "int-list-True",
        "True-int-list", "int-False-...-list"])
def test_a_bool_after_an_integer_is_placed_as_torch(index_of):
    _beside_torch(index_of)


@pytest.mark.parametrize("index", [
    [[0, 1], [2, 3]], [[0, 1]], [slice(None), 1], [None, 1], [Ellipsis, 1], [0, (1, 2)],
    [[True, False, True, True]], [[], []], [[]],
], ids=str)
def test_a_list_holding_sequences_slices_or_none_is_a_tuple_of_indices(index):
    a = np.arange(16.).reshape(4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.from_numpy(a)[index]
    with pytest.warns(UserWarning, match="non-tuple sequence"):
        got = gt.from_numpy(a)[index]
    assert got.shape == tuple(want.shape)
    np.testing.assert_array_equal(_np(got), want.numpy())
    x = gt.from_numpy(a.copy())
    with pytest.warns(UserWarning, match="non-tuple sequence"):
        x[index] = -1.0
    y = torch.from_numpy(a.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y[index] = -1.0
    np.testing.assert_array_equal(_np(x), y.numpy())


def test_a_list_holding_tensors_is_a_tuple_and_a_long_one_an_index_array():
    a = np.arange(16.).reshape(4, 4)
    with pytest.warns(UserWarning):
        got = gt.from_numpy(a)[[gt.tensor([0, 1]), gt.tensor([1, 2])]]
    np.testing.assert_array_equal(_np(got), [1.0, 6.0])
    long = [[0]] * 33                     # 32 and more: one index array, as torch
    assert gt.from_numpy(a)[long].shape == (33, 1, 4)
    assert gt.from_numpy(a)[[0, 1]].shape == (2, 4)


def test_an_empty_nested_list_in_an_index_selects_nothing():
    assert _beside_torch(lambda m: (1, [[], []]), shape=(2, 3)) == (2, 0)


def test_flatten_of_an_empty_batch():
    for m in (gt, torch):
        assert tuple(m.zeros(0, 3, 4).flatten(1).shape) == (0, 12)
        assert tuple(m.nn.Flatten()(m.zeros(0, 3, 4)).shape) == (0, 12)
        assert tuple(m.zeros(2, 0, 4).flatten().shape) == (0,)
        assert tuple(m.zeros(3, 0).flatten(0, 1).shape) == (0,)


@pytest.mark.parametrize("call", [
    lambda m: m.zeros(0, 2).split(3), lambda m: m.zeros(0, 2).split(0), lambda m: m.zeros(0, 2).chunk(3),
    lambda m: m.zeros(0, 2).chunk(1), lambda m: m.zeros(2, 0).split(1, 1), lambda m: m.zeros(2, 0).chunk(2, 1),
    lambda m: m.zeros(0, 2).tensor_split(3), lambda m: m.zeros(0, 2).split([0, 0]), lambda m: m.zeros(5, 2).chunk(3),
], ids=["split(3)", "split(0)", "chunk(3)", "chunk(1)", "split dim 1", "chunk dim 1", "tensor_split(3)",
        "split([0, 0])", "chunk of 5"])
def test_split_and_chunk_of_an_empty_dim(call):
    assert [tuple(t.shape) for t in call(gt)] == [tuple(t.shape) for t in call(torch)]
    with pytest.raises(ValueError, match="split_size"):
        gt.zeros(2, 2).split(0)           # 0 only for an empty dim, as torch


def test_gather_and_index_select_refuse_negative_and_too_large_positions():
    x = gt.arange(3.)
    for bad in (-1, 3):
        with pytest.raises(RuntimeError, match=f"index {bad} is out of bounds for dimension 0 with size 3"):
            x.gather(0, gt.tensor([0, bad]))
        with pytest.raises(IndexError, match=f"index {bad} is out of bounds for dimension 0 with size 3"):
            x.index_select(0, gt.tensor([bad]))
        with pytest.raises(RuntimeError, match=f"index {bad} is out of bounds"):
            gt.take_along_dim(x, gt.tensor([bad]))         # no dim: torch's gather of the flat tensor
    with pytest.raises(RuntimeError, match="index -2 is out of bounds for dimension 1 with size 3"):
        gt.zeros(2, 3).gather(1, gt.tensor([[0], [-2]]))
    # with a dim, torch's take_along_dim counts a negative position from the end
    a = np.arange(6.).reshape(2, 3)
    got = gt.take_along_dim(gt.from_numpy(a), gt.tensor([[-1], [-3]]), 1)
    want = torch.take_along_dim(torch.from_numpy(a), torch.tensor([[-1], [-3]]), 1)
    np.testing.assert_array_equal(_np(got), want.numpy())


def test_index_select_reads_a_0d_index_as_1d():
    a = np.arange(6.).reshape(2, 3)
    for dim in (0, 1):
        got = gt.from_numpy(a).index_select(dim, gt.tensor(1))
        want = torch.from_numpy(a).index_select(dim, torch.tensor(1))
        assert got.shape == tuple(want.shape)
        np.testing.assert_array_equal(_np(got), want.numpy())


def test_take_along_dim_broadcasts_a_zero_size_dim():
    got = gt.take_along_dim(gt.zeros(2, 3, 1), gt.zeros(1, 2, 0, dtype=gt.int64), 1)
    want = torch.take_along_dim(torch.zeros(2, 3, 1), torch.zeros(1, 2, 0, dtype=torch.int64), 1)
    assert got.shape == tuple(want.shape) == (2, 2, 0)


def test_masked_fill_refuses_an_integer_mask_and_a_value_with_dims():
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        gt.zeros(3).masked_fill(gt.tensor([1, 0, 1]), 1.0)
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        gt.zeros(3).masked_fill_(gt.tensor([1, 0, 1]), 1.0)
    with pytest.raises(RuntimeError, match="0-dimensional value tensor"):
        gt.zeros(3).masked_fill(gt.tensor([True, False, True]), gt.tensor([1.0]))
    got = gt.zeros(3).masked_fill(gt.tensor([True, False, True]), gt.tensor(2.0))
    np.testing.assert_array_equal(_np(got), [2.0, 0.0, 2.0])


def test_a_0d_src_of_scatter_is_one_element_as_torch():
    for m in (gt, torch):
        s = m.tensor(5.0, requires_grad=True)
        out = m.zeros(3).scatter(0, m.tensor([1]), s)
        out.sum().backward()
        np.testing.assert_array_equal(_np(out), [0.0, 5.0, 0.0])
        assert float(s.grad) == 1.0
        np.testing.assert_array_equal(_np(m.zeros(3).scatter_add(0, m.tensor([1]), m.tensor(5.0))), [0.0, 5.0, 0.0])
        np.testing.assert_array_equal(_np(m.zeros(2, 2).scatter(0, m.tensor([[1, 0]]), value=m.tensor(5.0))),
                                      [[0.0, 5.0], [5.0, 0.0]])
    with pytest.raises(ValueError):
        gt.zeros(3).scatter(0, gt.tensor([0, 1]), gt.tensor(5.0))      # more positions than src holds
    with pytest.raises(ValueError):
        gt.zeros(2, 3).scatter(0, gt.tensor([[0, 1]]), gt.tensor(5.0))


def test_cat_skips_legacy_empty_1d_tensors():
    calls = [lambda m: m.cat([m.ones(2, 2), m.zeros(0)]), lambda m: m.cat([m.zeros(0), m.ones(2, 2)], 1),
             lambda m: m.cat([m.zeros(0, dtype=m.float64), m.ones(2, 2)]), lambda m: m.cat([m.zeros(0)], 1),
             lambda m: m.cat([m.zeros(0), m.ones(3)])]
    for call in calls:
        got, want = call(gt), call(torch)
        assert got.shape == tuple(want.shape)
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        np.testing.assert_array_equal(_np(got), want.numpy())


def test_masked_scatter_with_no_true_value_gives_the_source_a_zero_gradient():
    grads = []
    for m in (gt, torch):
        source = m.arange(3.0).requires_grad_()
        m.zeros(3).masked_scatter(m.zeros(3, dtype=m.bool), source).sum().backward()
        grads.append(_np(source.grad))
    np.testing.assert_array_equal(grads[0], grads[1])


# 0-d tensors in split/chunk/narrow/unbind/movedim (found by tests/test_fuzz_torch_parity.py): gt read
# the shape's missing dim 0 (a bare "tuple index out of range" IndexError) or refused movedim
@pytest.mark.parametrize("call", [lambda m, x: x.split(1, 0), lambda m, x: x.split([1], -1),
                                  lambda m, x: x.chunk(2, 0), lambda m, x: x.narrow(0, 0, 0),
                                  lambda m, x: x.unbind(0)],
                         ids=["split", "split sizes", "chunk", "narrow", "unbind"])
def test_zero_dim_tensor_refused_by_split_chunk_narrow_unbind_as_torch(call):
    with pytest.raises(Exception) as want:
        call(torch, torch.tensor(1.0))
    with pytest.raises(type(want.value), match=str(want.value).split()[0]):
        call(gt, gt.tensor(1.0))


@pytest.mark.parametrize("source, destination", [(0, 0), (-1, 0), ((0,), (-1,))])
def test_movedim_of_a_zero_dim_tensor_as_torch(source, destination):
    for m in (gt, torch):
        x = m.tensor(2.0, requires_grad=True)
        y = m.movedim(x * 1, source, destination)
        assert tuple(y.shape) == ()
        y.backward()
        assert float(x.grad) == 1.0
    with pytest.raises(RuntimeError):       # repeated dims: torch's class too
        gt.ones(2, 3).movedim((0, 0), (1, 0))
