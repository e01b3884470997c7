"""Linear algebra and ordering ops beside torch where gt once differed: ``median()``'s gradient at
a NaN median, ``searchsorted`` over a sequence holding NaN and with a ``sorter`` of the wrong
size, ``bincount`` of an empty input with weights, ``matrix_power`` of integers and to the power
0, and ``matrix_norm``'s positive orders of empty matrices."""

import math

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

NAN = math.nan


def _both(torch, values, dtype="float64", requires_grad=False):
    """The same values as a gt and a torch tensor."""
    ours = gt.tensor(np.asarray(values), dtype=getattr(gt, dtype), requires_grad=requires_grad)
    theirs = torch.tensor(np.asarray(values), dtype=getattr(torch, dtype), requires_grad=requires_grad)
    return ours, theirs


@pytest.mark.parametrize("name", ["median", "nanmedian"])
@pytest.mark.parametrize("values", [[3.0, NAN, 1.0, NAN], [NAN, NAN, NAN], [[1.0, NAN], [2.0, 2.0]],
                                    [1.0, 2.0, 2.0, 5.0]])
def test_median_of_everything_shares_the_gradient_among_nans(name, values):
    torch = torch_or_skip()
    ours, theirs = _both(torch, values, requires_grad=True)
    a, b = getattr(ours, name)(), getattr(theirs, name)()
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    (a * 3.0).backward()
    (b * 3.0).backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("right", [False, True])
@pytest.mark.parametrize("sequence, values", [
    ([1.0, 2.0, NAN], [1.5, NAN, 3.0, 2.0, -1.0]),
    ([NAN, NAN], [0.0, NAN]),
    ([[1.0, 2.0, NAN, NAN, NAN], [0.0, 1.0, 1.0, 4.0, NAN]], [[2.0, NAN, 9.0], [1.0, 4.0, -3.0]]),
    ([0.0, 1.0, NAN, 3.0, NAN, 5.0, 6.0], [0.5, 2.0, 3.0, 5.5, NAN, 7.0]),
])
def test_searchsorted_over_a_sequence_holding_nan_follows_torch(sequence, values, right):
    torch = torch_or_skip()
    s, ts = _both(torch, sequence)
    v, tv = _both(torch, values)
    ours = gt.searchsorted(s, v, right=right)
    theirs = torch.searchsorted(ts, tv, right=right)
    assert ours.dtype == gt.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(gt.bucketize(v, s.reshape(-1)[:3], right=right).numpy(),
                                  torch.bucketize(tv, ts.reshape(-1)[:3], right=right).numpy())


def test_searchsorted_refuses_a_sorter_of_another_size():
    torch = torch_or_skip()
    with pytest.raises(RuntimeError):
        torch.searchsorted(torch.tensor([3.0, 1.0, 2.0, 5.0]), torch.tensor([2.0]), sorter=torch.tensor([1, 2, 0]))
    with pytest.raises(ValueError, match="sorter"):
        gt.searchsorted(gt.tensor([3.0, 1.0, 2.0, 5.0]), gt.tensor([2.0]), sorter=gt.tensor([1, 2, 0]))


@pytest.mark.parametrize("weights_dtype", ["float32", "float64", "int64"])
def test_bincount_of_an_empty_input_is_int64_whatever_the_weights(weights_dtype):
    torch = torch_or_skip()
    ours = gt.bincount(gt.tensor([], dtype=gt.int64), gt.tensor([], dtype=getattr(gt, weights_dtype)), minlength=3)
    theirs = torch.bincount(torch.tensor([], dtype=torch.int64), torch.tensor([], dtype=getattr(torch, weights_dtype)),
                            minlength=3)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1] == "int64"
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # a non-empty input keeps the weights' float dtype
    assert gt.bincount(gt.tensor([0, 2]), gt.tensor([1.0, 2.0], dtype=gt.float32)).dtype == gt.float32


@pytest.mark.parametrize("n", [0, 1, 2, 5])
@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_matrix_power_of_integer_matrices(n, dtype):
    torch = torch_or_skip()
    values = np.arange(12).reshape(3, 2, 2) - 4
    ours, theirs = _both(torch, values, dtype)
    for a, b in [(gt.linalg.matrix_power(ours, n), torch.linalg.matrix_power(theirs, n)),
                 (ours.matrix_power(n), theirs.matrix_power(n))]:
        assert a.dtype == getattr(gt, dtype)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(RuntimeError):
        torch.linalg.matrix_power(theirs, -1)
    with pytest.raises(TypeError):
        gt.linalg.matrix_power(ours, -1)


def test_matrix_power_zero_gives_a_zero_gradient():
    torch = torch_or_skip()
    values = np.random.default_rng(0).standard_normal((2, 3, 3))
    ours, theirs = _both(torch, values, requires_grad=True)
    a, b = gt.linalg.matrix_power(ours, 0), torch.linalg.matrix_power(theirs, 0)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert a.requires_grad
    a.sum().backward()
    b.sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


@pytest.mark.parametrize("shape", [(2, 0, 3), (2, 3, 0), (0, 0), (0, 2, 2)])
@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf])
def test_matrix_norm_of_empty_matrices(shape, ord):
    torch = torch_or_skip()
    ours, theirs = _both(torch, np.zeros(shape))
    try:
        expected = torch.linalg.matrix_norm(theirs, ord=ord)
    except (RuntimeError, IndexError):       # the smallest of no values: both raise
        with pytest.raises((RuntimeError, ValueError, IndexError)):
            gt.linalg.matrix_norm(ours, ord=ord)
        return
    got = gt.linalg.matrix_norm(ours, ord=ord)
    assert got.shape == tuple(expected.shape)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


@pytest.mark.parametrize("name", ["dot", "vdot"])
@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
def test_dot_keeps_the_dtype_of_its_inputs(name, dtype):
    torch = torch_or_skip()
    ours, theirs = _both(torch, np.arange(5) - 2, dtype)
    other, their_other = _both(torch, np.arange(5) * 3 + 1, dtype)
    a, b = getattr(gt, name)(ours, other), getattr(torch, name)(theirs, their_other)
    assert a.dtype == getattr(gt, dtype)
    assert a.shape == ()
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert getattr(ours, name)(other).dtype == getattr(gt, dtype)


def test_dot_refuses_bools_as_torch():
    torch = torch_or_skip()
    with pytest.raises(RuntimeError):
        torch.dot(torch.tensor([True, False]), torch.tensor([True, True]))
    with pytest.raises(NotImplementedError):
        gt.dot(gt.tensor([True, False]), gt.tensor([True, True]))


@pytest.mark.parametrize("p", [0.0, 1.0, 2.0, math.inf])
def test_cdist_gradient_on_grid_points_with_ties(p):
    torch = torch_or_skip()
    # integer coordinates: Chebyshev distances tie between coordinates, some points coincide
    x1 = np.array([[[0.0, 0.0], [1.0, 1.0], [2.0, -1.0]]])
    x2 = np.array([[[1.0, -1.0], [2.0, 2.0], [0.0, 0.0], [3.0, 0.0]]])
    a, ta = _both(torch, x1, requires_grad=True)
    b, tb = _both(torch, x2, requires_grad=True)
    upstream = np.random.default_rng(0).standard_normal((1, 3, 4))
    ours, theirs = gt.cdist(a, b, p=p), torch.cdist(ta, tb, p=p)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    assert ours.requires_grad
    (ours * gt.tensor(upstream)).sum().backward()
    (theirs * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, sequence_shape", [((0, 2), (0, 3)), ((2, 3), (2, 0)), ((2, 3, 1), (2, 3, 0)),
                                                   ((2, 0), (2, 2))])
@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_with_empty_rows_or_sequences(shape, sequence_shape, right):
    torch = torch_or_skip()
    s, ts = _both(torch, np.sort(np.random.default_rng(1).standard_normal(sequence_shape), -1))
    v, tv = _both(torch, np.ones(shape))
    ours, theirs = gt.searchsorted(s, v, right=right), torch.searchsorted(ts, tv, right=right)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("shape", [(2, 0, 0), (0, 0), (2, 0, 3), (2, 3, 0), (0, 2, 2)])
@pytest.mark.parametrize("p", [None, 2, -2, "fro", "nuc", 1, -1, math.inf, -math.inf])
def test_cond_of_empty_matrices_is_zero(shape, p):
    torch = torch_or_skip()
    ours, theirs = _both(torch, np.zeros(shape))
    try:
        expected = torch.linalg.cond(theirs, p)
    except RuntimeError:          # the norms through the inverse need square matrices
        with pytest.raises(RuntimeError):
            gt.linalg.cond(ours, p)
        return
    got = gt.linalg.cond(ours, p)
    assert got.shape == tuple(expected.shape)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
