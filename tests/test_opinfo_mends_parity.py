"""Mended from the comparison with torch's OpInfo table (tests/test_opinfo_parity.py), each beside
torch: the cases that failed before, kept here without the table's machinery."""

import numpy as np
import pytest

import gt
import gt.linalg

torch = pytest.importorskip("torch")


def _gt(t, requires_grad=False):
    return gt.tensor(t.detach().numpy(), requires_grad=requires_grad)


def test_logspace_takes_device_and_refuses_float_steps():
    got = gt.logspace(-3, 0, 4, dtype=gt.float64, device="cpu")
    np.testing.assert_array_equal(got.numpy(), torch.logspace(-3, 0, 4, dtype=torch.float64, device="cpu").numpy())
    with pytest.raises(TypeError):
        torch.logspace(0, 3, 1.0)
    with pytest.raises(TypeError, match="steps"):
        gt.logspace(0, 3, 1.0)


def test_gradient_takes_torch_default_spacing_none():
    x = torch.tensor([1.0, 4.0, 9.0, 16.0, 30.0])
    want = torch.gradient(x, spacing=None, dim=None, edge_order=1)
    got = gt.gradient(_gt(x), spacing=None, dim=None, edge_order=1)
    assert len(got) == len(want)
    np.testing.assert_allclose(got[0].numpy(), want[0].numpy())


@pytest.mark.parametrize("kwargs", [{"dim1": 10000}, {"dim2": 10000}, {"dim1": -4}, {"dim2": 3}])
def test_diag_embed_refuses_dims_out_of_range(kwargs):
    x = torch.randn(10, 20)
    with pytest.raises(IndexError):
        torch.diag_embed(x, **kwargs)
    with pytest.raises(IndexError):
        gt.diag_embed(_gt(x), **kwargs)


def test_diag_embed_negative_dims_in_range():
    x = torch.randn(2, 3)
    np.testing.assert_array_equal(gt.diag_embed(_gt(x), dim1=-3, dim2=2).numpy(),
                                  torch.diag_embed(x, dim1=-3, dim2=2).numpy())


@pytest.mark.parametrize("a_shape, b_shape, dims", [((2, 3, 6), (2, 3), (0, 2)), ((2, 3, 6), (3, 2), None),
                                                    ((6, 2, 3), (6,), None)])
def test_tensorsolve_needs_only_matching_sizes(a_shape, b_shape, dims):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(*a_shape, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(*b_shape, dtype=torch.float64, generator=g)
    want = torch.linalg.tensorsolve(a, b, dims=dims)
    ga = _gt(a, True)
    got = gt.linalg.tensorsolve(ga, _gt(b), dims=dims)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10)
    want.sum().backward()
    got.sum().backward()
    np.testing.assert_allclose(ga.grad.numpy(), a.grad.numpy(), rtol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pinv_hermitian_reads_the_lower_triangle(dtype):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(5, 5, dtype=dtype, generator=g, requires_grad=True)     # not symmetric
    want = torch.linalg.pinv(a, hermitian=True)
    ga = _gt(a, True)
    got = gt.linalg.pinv(ga, hermitian=True)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=tol, atol=tol)
    # the gradient of a symmetric input: torch's whole-matrix formula (for a non-symmetric one its
    # gradient is its eigh's, not a derivative of what the forward reads)
    sym = (a + a.mT).detach().requires_grad_()
    gs = _gt(sym, True)
    c = torch.randn(5, 5, dtype=dtype, generator=g)
    (torch.linalg.pinv(sym, hermitian=True) * c).sum().backward()
    (gt.linalg.pinv(gs, hermitian=True) * _gt(c)).sum().backward()
    a, ga = sym, gs
    np.testing.assert_allclose(ga.grad.numpy(), a.grad.numpy(), rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("beta, alpha", [(3, 2), (0, 1), (1, 0), (0, 0)])
def test_addr_of_bools_stays_bool(beta, alpha):
    x = torch.tensor([[True, False, False], [False, False, True]])
    v, w = torch.tensor([True, False]), torch.tensor([False, True, True])
    want = torch.addr(x, v, w, beta=beta, alpha=alpha)
    got = gt.addr(_gt(x), _gt(v), _gt(w), beta=beta, alpha=alpha)
    assert got.dtype == gt.bool
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("value", [True, 2.5, 7])
def test_sum_to_size_of_empty_size_sums(value):
    want = torch.tensor(value).sum_to_size([])
    got = gt.tensor(value).sum_to_size([])
    assert str(got.dtype).replace("gt.", "") == str(want.dtype).replace("torch.", "")
    assert got.item() == want.item()


@pytest.mark.parametrize("name", ["__rmod__", "__rfloordiv__"])
def test_reflected_ops_called_with_a_tensor_keep_its_gradient(name):
    a = torch.tensor(5.0, requires_grad=True)
    b = torch.tensor([2.0, 3.0], requires_grad=True)
    ga, gb = _gt(a, True), _gt(b, True)
    want, got = getattr(b, name)(a), getattr(gb, name)(ga)
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    if name == "__rmod__":          # torch's floor_divide has no backward
        want.sum().backward()
        got.sum().backward()
        np.testing.assert_array_equal(ga.grad.numpy(), a.grad.numpy())
        np.testing.assert_array_equal(gb.grad.numpy(), b.grad.numpy())
    else:
        assert got.requires_grad


@pytest.mark.parametrize("shapes, dim", [(((1, 2, 3), (2, 1, 3)), 1), (((4, 1), (1, 4)), 0), (((3, 1, 5), (5,)), -1)])
def test_cosine_similarity_broadcasts_before_the_norms(shapes, dim):
    g = torch.Generator().manual_seed(2)
    a, b = (torch.randn(*s, dtype=torch.float64, generator=g, requires_grad=True) for s in shapes)
    want = torch.nn.functional.cosine_similarity(a, b, dim=dim)
    ga, gb = _gt(a, True), _gt(b, True)
    got = gt.nn.functional.cosine_similarity(ga, gb, dim=dim)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)
    want.sum().backward()
    got.sum().backward()
    np.testing.assert_allclose(ga.grad.numpy(), a.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("a_shape, b_shape", [((5, 5, 0), (0, 5)), ((2, 0, 3), (3, 4)), ((2, 3, 0), (0, 0))])
def test_batched_matmul_by_a_matrix_with_empty_axes_differentiates(a_shape, b_shape):
    a = torch.randn(*a_shape, requires_grad=True)
    b = torch.randn(*b_shape, requires_grad=True)
    ga, gb = _gt(a, True), _gt(b, True)
    (a @ b).sum().backward()
    (ga @ gb).sum().backward()
    np.testing.assert_array_equal(ga.grad.numpy(), a.grad.numpy())
    np.testing.assert_array_equal(gb.grad.numpy(), b.grad.numpy())


@pytest.mark.parametrize("name", ["cat", "stack"])
def test_cat_and_stack_refuse_a_tensor_for_the_sequence(name):
    x = torch.ones(2, 3)
    with pytest.raises(TypeError):
        getattr(torch, name)(x)
    with pytest.raises(TypeError, match="tuple of Tensors"):
        getattr(gt, name)(_gt(x))
    np.testing.assert_array_equal(getattr(gt, name)([_gt(x), _gt(x)]).numpy(), getattr(torch, name)([x, x]).numpy())
