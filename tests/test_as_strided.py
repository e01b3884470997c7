"""torch's strided reads and writes (gt/tensor/strided_methods.py, strided_functions.py) beside torch
2.13: ``as_strided`` on contiguous tensors, transposes, slices and expanded tensors, values and
gradients (overlapping windows add up; memory of the base outside the view is read and gets no
gradient); the view side of it is tests/test_strided_views.py; ``as_strided_scatter``; ``empty_strided``; ``gt.put``;
torch's errors; a sharded tensor gives the unsharded answer."""

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import randn, torch_or_skip

torch = torch_or_skip()


def _pair(arr, view=lambda t: t, grad=False):
    """The same array in gt and torch (float64), each passed through ``view``; the leaves too."""
    g = gt.tensor(arr, requires_grad=grad)
    t = torch.tensor(arr, requires_grad=grad)
    return (view(g), view(t)), (g, t)


VIEWS = {
    "contiguous": lambda t: t,
    "transposed": lambda t: t.reshape(6, 4).transpose(0, 1),
    "sliced": lambda t: t[5:],
    "row of a transpose": lambda t: t.reshape(6, 4).transpose(0, 1)[1:],
}
# (size, stride, storage_offset): windows that overlap, a diagonal, repeated reads, an empty one
LAYOUTS = [((5, 3), (2, 1), None), ((4,), (5,), None), ((3, 3), (0, 1), 2), ((2, 2, 2), (6, 2, 1), 1),
           ((0, 3), (1, 1), None), ((), (), 7)]


@pytest.mark.parametrize("view", VIEWS, ids=list(VIEWS))
@pytest.mark.parametrize("layout", LAYOUTS, ids=[str(layout) for layout in LAYOUTS])
def test_as_strided_values_and_gradients_match_torch(view, layout):
    size, stride, offset = layout
    (g, t), (g_leaf, t_leaf) = _pair(randn(24, seed=3), VIEWS[view], grad=True)
    try:
        expected = t.as_strided(size, stride, offset)
    except RuntimeError:
        pytest.skip("a layout torch itself refuses on this view")   # checked in test_as_strided_errors
    ours = g.as_strided(size, stride, offset)
    assert ours.shape == tuple(expected.shape)
    np.testing.assert_array_equal(ours.numpy(), expected.detach().numpy())
    upstream = randn(*size, seed=4) if size else randn(seed=4)
    (ours * gt.tensor(upstream)).sum().backward()
    (expected * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(g_leaf.grad.numpy(), t_leaf.grad.numpy(), rtol=1e-12, atol=0)


def test_as_strided_top_level_copy_and_expanded_input():
    x = gt.arange(12.0)
    np.testing.assert_array_equal(gt.as_strided(x, (3, 2), (4, 1), 1).numpy(),
                                  torch.as_strided(torch.arange(12.0), (3, 2), (4, 1), 1).numpy())
    np.testing.assert_array_equal(gt.as_strided_copy(x, (2,), (3,)).numpy(), [0.0, 3.0])
    # an expanded tensor reads its one row of memory: every copy holds the same values
    e, te = gt.arange(4.0).expand(2, 4), torch.arange(4.0).expand(2, 4)
    np.testing.assert_array_equal(e.as_strided((3,), (1,)).numpy(), te.as_strided((3,), (1,)).numpy())
    leaf, tleaf = gt.arange(4.0, requires_grad=True), torch.arange(4.0, requires_grad=True)
    leaf.expand(2, 4).as_strided((2, 2), (1, 1)).sum().backward()
    tleaf.expand(2, 4).as_strided((2, 2), (1, 1)).sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), tleaf.grad.numpy())


@pytest.mark.parametrize("view", ["contiguous", "transposed"])
def test_as_strided_scatter_matches_torch(view):
    (g, t), (g_leaf, t_leaf) = _pair(randn(24, seed=5), VIEWS[view], grad=True)
    src = randn(2, 3, seed=6)
    gs, ts = gt.tensor(src, requires_grad=True), torch.tensor(src, requires_grad=True)
    ours = gt.as_strided_scatter(g, gs, (2, 3), (1, 2), 1)
    expected = torch.as_strided_scatter(t.detach(), ts.detach(), (2, 3), (1, 2), 1)
    np.testing.assert_array_equal(ours.numpy(), expected.numpy())
    # torch 2.13 differentiates as_strided_scatter for contiguous inputs only, and misplaces the
    # input's gradient when the storage offset is not 0 (nonzero where src was written): the
    # gradients are compared with the same write as a clone and a strided copy_
    written = t.clone()
    written.as_strided((2, 3), (1, 2), written.storage_offset() + 1 - t.storage_offset()).copy_(ts)
    np.testing.assert_array_equal(written.detach().numpy(), expected.numpy())
    upstream = randn(*expected.shape, seed=7)
    (ours * gt.tensor(upstream)).sum().backward()
    (written * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(g_leaf.grad.numpy(), t_leaf.grad.numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(gs.grad.numpy(), ts.grad.numpy(), rtol=1e-12, atol=0)
    assert g_leaf.grad.numpy()[1:7].tolist() == [0.0] * 6 if view == "contiguous" else True


def test_as_strided_errors():
    x, tx = gt.arange(12.0), torch.arange(12.0)
    for args, match in [(((3,), (1, 2)), "mismatch in length of strides and shape"),
                        (((3,), (-1,)), "Negative strides are not supported"),
                        (((-1,), (1,)), "non-negative"),
                        (((3,), (2,), -1), "invalid storage offset -1"),
                        (((2, 2), (1, 1), 11), "out of bounds for the storage of 12 elements")]:
        with pytest.raises(RuntimeError, match=match):
            x.as_strided(*args)
        with pytest.raises(RuntimeError):
            tx.as_strided(*args)
    # memory of the base that the view does not cover: read, as torch's; as_strided_scatter (a copy
    # of the view) cannot write there, and says why
    assert x[2:].as_strided((3,), (1,), 0).tolist() == torch.arange(12.0)[2:].as_strided((3,), (1,), 0).tolist()
    with pytest.raises(NotImplementedError, match="not part of this tensor of shape \\[10\\]"):
        gt.as_strided_scatter(x[2:], gt.ones(3), (3,), (1,), 0)
    with pytest.raises(TypeError, match="must be Tensor, not list"):
        gt.as_strided([1.0, 2.0], (1,), (1,))
    with pytest.raises(RuntimeError, match="src size = \\[3\\], slice size = \\[2, 2\\]"):
        gt.as_strided_scatter(x, gt.ones(3), (2, 2), (1, 1))


def test_as_strided_of_a_sharded_tensor_reads_its_row_major_copy():
    arr = randn(8, 3, seed=8)
    plain = gt.tensor(arr).as_strided((6, 2), (3, 1), 1)
    leaf = gt.tensor(arr, requires_grad=True)
    (plain_g := leaf.as_strided((6, 2), (3, 1), 1)).sum().backward()
    with use_mesh(4):
        x = gt.tensor(arr)
        assert x._placed is not None
        out = x.as_strided((6, 2), (3, 1), 1)
        np.testing.assert_array_equal(out.numpy(), plain.numpy())
        sleaf = gt.tensor(arr, requires_grad=True)
        sleaf.as_strided((6, 2), (3, 1), 1).sum().backward()
        np.testing.assert_array_equal(sleaf.grad.numpy(), leaf.grad.numpy())
    np.testing.assert_array_equal(plain_g.numpy(), torch.tensor(arr).as_strided((6, 2), (3, 1), 1).numpy())


def test_empty_strided_and_put():
    e = gt.empty_strided((2, 3), (3, 1), dtype=gt.float64)
    assert e.shape == (2, 3) and e.dtype == gt.float64 and e.stride() == (3, 1)
    with pytest.raises(RuntimeError, match="mismatch in length"):
        gt.empty_strided((2, 3), (1,))
    src, idx = gt.tensor([1.0, 2.0]), gt.tensor([1, 3])
    np.testing.assert_array_equal(gt.put(gt.zeros(5), idx, src).numpy(),
                                  torch.put(torch.zeros(5), torch.tensor([1, 3]), torch.tensor([1.0, 2.0])).numpy())
    np.testing.assert_array_equal(gt.put(gt.ones(2, 2), gt.tensor([3, 3]), src, accumulate=True).numpy(),
                                  [[1.0, 1.0], [1.0, 4.0]])
