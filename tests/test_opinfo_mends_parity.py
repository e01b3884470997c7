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


_INTS = torch.tensor([[[3, -7, 2, 9, -4, 5, 1, -2, 8, 0, -5, 6]], [[-1, 4, -8, 2, 7, -3, 5, 0, -6, 1, 3, -9]]])
_POOLS = [
    ("avg_pool1d", lambda x: x, dict(kernel_size=3)),
    ("avg_pool1d", lambda x: x, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg_pool1d", lambda x: x, dict(kernel_size=4, stride=3, padding=2)),
    ("avg_pool2d", lambda x: x.reshape(2, 1, 3, 4), dict(kernel_size=2, stride=1, padding=1)),
    ("avg_pool2d", lambda x: x.reshape(2, 1, 3, 4), dict(kernel_size=2, divisor_override=3)),
    ("avg_pool2d", lambda x: x.reshape(2, 1, 3, 4), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                                         count_include_pad=False)),
    ("avg_pool3d", lambda x: x.reshape(2, 1, 2, 3, 2), dict(kernel_size=2, stride=1, padding=1)),
    ("avg_pool3d", lambda x: x.reshape(1, 2, 2, 3, 2), dict(kernel_size=2, divisor_override=-3)),
]


@pytest.mark.parametrize("name,shape,kwargs", _POOLS)
def test_avg_pool_of_integers_truncates_in_their_dtype(name, shape, kwargs):
    x = shape(_INTS)
    want = getattr(torch.nn.functional, name)(x, **kwargs)
    got = getattr(gt.nn.functional, name)(_gt(x), **kwargs)
    assert got.dtype == gt.int64 and want.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("name", ["avg_pool1d", "avg_pool2d", "avg_pool3d", "local_response_norm"])
def test_avg_pool_and_local_response_norm_refuse_bools(name):
    shape = {"avg_pool2d": (2, 1, 3, 4), "avg_pool3d": (2, 1, 2, 3, 2)}.get(name, (2, 1, 12))
    x = _INTS.reshape(shape) > 0
    with pytest.raises(NotImplementedError):
        getattr(torch.nn.functional, name)(x, 2)
    with pytest.raises(NotImplementedError, match="bool"):
        getattr(gt.nn.functional, name)(_gt(x), 2)


@pytest.mark.parametrize("shape", [(2, 12), (2, 3, 4), (1, 2, 3, 2, 2)])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_local_response_norm_of_integers_truncates_the_mean_of_squares(shape, size):
    x = _INTS.reshape(1, *shape) if len(shape) == 2 else _INTS.reshape(shape)
    want = torch.nn.functional.local_response_norm(x, size, alpha=0.5, k=2.0)
    got = gt.nn.functional.local_response_norm(_gt(x), size, alpha=0.5, k=2.0)
    assert got.dtype == gt.float32 and want.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


_A, _B = _INTS.reshape(4, 6), (_INTS.reshape(4, 6) * 3) % 5
_Y = torch.tensor([1, -1, -1, 1])
_LOSSES = [
    ("margin_ranking_loss", lambda a, b: (a[0], b[0], _Y.repeat(2)[:6]), dict(margin=0.5)),
    ("margin_ranking_loss", lambda a, b: (a[1], b[1], _Y.repeat(2)[:6]), dict(reduction="none")),
    ("triplet_margin_loss", lambda a, b: (a, b, b.flip(0)), {}),
    ("triplet_margin_loss", lambda a, b: (a, b, a.flip(0)), dict(p=1, swap=True, reduction="sum")),
    ("triplet_margin_with_distance_loss", lambda a, b: (a, b, b.flip(0)), {}),
    ("cosine_embedding_loss", lambda a, b: (a, b, _Y), dict(margin=0.2)),
    ("cosine_embedding_loss", lambda a, b: (a > 0, b > 1, _Y > 0), {}),
    ("poisson_nll_loss", lambda a, b: (a % 3, b), {}),
    ("poisson_nll_loss", lambda a, b: (a.abs() + 1, b, False, True), dict(reduction="none")),
    ("pairwise_distance", lambda a, b: (a, b), {}),
    ("pairwise_distance", lambda a, b: (a, b, 1), dict(keepdim=True)),
    ("pairwise_distance", lambda a, b: (a, b.double()), {}),
]


@pytest.mark.parametrize("name,args,kwargs", _LOSSES)
def test_losses_and_distances_of_integers_compute_as_torch(name, args, kwargs):
    targs = args(_A, _B)
    want = getattr(torch.nn.functional, name)(*targs, **kwargs)
    got = getattr(gt.nn.functional, name)(*[_gt(t) if isinstance(t, torch.Tensor) else t for t in targs], **kwargs)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,args", [
    ("margin_ranking_loss", lambda a, b: (a[0] > 0, b[0] > 0, _Y.repeat(2)[:6])),
    ("triplet_margin_loss", lambda a, b: (a > 0, b > 0, b > 1)),
    ("triplet_margin_with_distance_loss", lambda a, b: (a > 0, b > 0, b > 1)),
    ("poisson_nll_loss", lambda a, b: (a > 0, b > 0)),
    ("pairwise_distance", lambda a, b: (a > 0, b > 0)),
])
def test_losses_of_bools_refuse_the_subtraction_as_torch(name, args):
    targs = args(_A, _B)
    with pytest.raises(RuntimeError, match="Subtraction"):
        getattr(torch.nn.functional, name)(*targs)
    with pytest.raises(RuntimeError, match="subtraction"):
        getattr(gt.nn.functional, name)(*[_gt(t) for t in targs])


@pytest.mark.parametrize("start,length,exc", [(True, 1, TypeError), (0, True, TypeError), (False, 2, TypeError)])
def test_narrow_refuses_bool_start_and_length(start, length, exc):
    x = torch.arange(6.0).reshape(2, 3)
    with pytest.raises(exc):
        x.narrow(1, start, length)
    with pytest.raises(exc, match="bool"):
        _gt(x).narrow(1, start, length)
    with pytest.raises(exc, match="bool"):
        gt.narrow(_gt(x), 1, start, length)


def test_narrow_takes_only_a_0d_integer_tensor_start():
    x = torch.arange(6.0)
    np.testing.assert_array_equal(_gt(x).narrow(0, gt.tensor(2), 3).numpy(), x.narrow(0, torch.tensor(2), 3).numpy())
    for start in (torch.tensor(True), torch.tensor(1.0), torch.tensor([1])):
        with pytest.raises(RuntimeError, match="0-dim integral"):
            x.narrow(0, start, 1)
        with pytest.raises(RuntimeError, match="0-dim integral"):
            _gt(x).narrow(0, _gt(start), 1)


@pytest.mark.parametrize("dtype", ["float64", "int64", "float16"])
def test_out_of_aminmax_and_gather_needs_the_result_dtype(dtype):
    x, i = torch.arange(6.0).reshape(2, 3), torch.tensor([[0, 2], [1, 0]])
    gx, gi = _gt(x), _gt(i)
    tdt, gdt = getattr(torch, dtype), getattr(gt, dtype)
    with pytest.raises(RuntimeError, match="Expected out tensor to have dtype"):
        torch.gather(x, 1, i, out=torch.empty(2, 2, dtype=tdt))
    with pytest.raises(RuntimeError, match="Expected out tensor to have dtype"):
        gt.gather(gx, 1, gi, out=gt.empty(2, 2, dtype=gdt))
    with pytest.raises(RuntimeError, match="Expected out tensor to have dtype"):
        torch.aminmax(x, dim=1, out=(torch.empty(2), torch.empty(2, dtype=tdt)))
    with pytest.raises(RuntimeError, match="Expected out tensor to have dtype"):
        gt.aminmax(gx, dim=1, out=(gt.empty(2), gt.empty(2, dtype=gdt)))
    out = gt.empty(2, 2)
    assert gt.gather(gx, 1, gi, out=out) is out
    np.testing.assert_array_equal(out.numpy(), torch.gather(x, 1, i).numpy())
    lo, hi = gt.empty(2), gt.empty(2)
    gt.aminmax(gx, dim=1, out=(lo, hi))
    want = torch.aminmax(x, dim=1)
    np.testing.assert_array_equal(np.stack([lo.numpy(), hi.numpy()]), np.stack([want.min.numpy(), want.max.numpy()]))


_M, _V = torch.tensor([[1, -2], [3, 4]]), torch.tensor([3, -1])
_B1, _B2 = torch.tensor([[[1, 2], [3, -4]], [[2, 0], [-1, 1]]]), torch.tensor([[[1, -1], [2, 3]], [[0, 1], [5, 2]]])


@pytest.mark.parametrize("beta,alpha", [(1.5, 1), (1, 1.5), (-1.5, -2.7), (0.5, 0.5), (0.0, 1.2), (2.9, -0.9)])
@pytest.mark.parametrize("name,args", [("addmv", (torch.tensor([5, -7]), _M, _V)), ("addbmm", (_M, _B1, _B2)),
                                       ("baddbmm", (_B1, _B1, _B2)), ("addmm", (_M, _M, _M))])
def test_integer_addmv_family_truncates_a_float_beta_and_alpha(name, args, beta, alpha):
    want = getattr(torch, name)(*args, beta=beta, alpha=alpha)
    got = getattr(gt, name)(*[_gt(a) for a in args], beta=beta, alpha=alpha)
    assert got.dtype == gt.int64 and want.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    method = getattr(_gt(args[0]), name)(*[_gt(a) for a in args[1:]], beta=beta, alpha=alpha)
    np.testing.assert_array_equal(method.numpy(), want.numpy())


def test_integer_addr_still_refuses_a_float_beta():
    with pytest.raises(RuntimeError, match="must not be a floating point"):
        torch.addr(_M, _V, _V, beta=1.5)
    with pytest.raises(TypeError, match="must be an int"):
        gt.addr(_gt(_M), _gt(_V), _gt(_V), beta=1.5)
