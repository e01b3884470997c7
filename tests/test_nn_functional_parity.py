"""nn layers, nn.functional and losses beside torch 2.13 where differential testing found gt
apart: the softmax family's implicit dim, loss weights as buffers, CELU with a negative alpha,
Linear on integer input and with a 1-d weight, the dtypes of losses and of norms on half input,
grouped-query attention and a mask with ``is_causal``, empty adaptive pools, ``pairwise_distance``
of any order, and buffer names that clash with parameters."""

import warnings

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import compare_with_torch, randn, torch_or_skip


@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 3, 4), (2, 3, 4, 5)])
@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
def test_softmax_family_without_dim_takes_torchs_implicit_dim(name, shape):
    torch = torch_or_skip()
    x = randn(*shape, seed=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = getattr(nn, name)()(gt.tensor(x)).numpy()
    assert any("Implicit dimension choice" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = getattr(torch.nn, name)()(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_functional_softmax_without_dim_matches_torch_with_gradients(fn):
    torch = torch_or_skip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare_with_torch(lambda x: getattr(F, fn)(x), lambda x: getattr(torch.nn.functional, fn)(x),
                           randn(2, 3, 4, seed=1))
        compare_with_torch(lambda x: getattr(F, fn)(x), lambda x: getattr(torch.nn.functional, fn)(x),
                           randn(2, 3, 4, 2, seed=2))
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {fn}"):
        getattr(F, fn)(gt.ones(2, 3))
    assert repr(nn.Softmax()) == "Softmax(dim=None)"


def test_bce_losses_keep_weight_and_pos_weight_as_buffers():
    torch = torch_or_skip()
    g = nn.BCEWithLogitsLoss(weight=gt.ones(2), pos_weight=gt.tensor([2.0, 3.0]))
    t = torch.nn.BCEWithLogitsLoss(weight=torch.ones(2), pos_weight=torch.tensor([2.0, 3.0]))
    assert list(g.state_dict()) == list(t.state_dict()) == ["weight", "pos_weight"]
    assert list(nn.BCELoss(weight=gt.ones(2)).state_dict()) == ["weight"]
    assert list(nn.BCEWithLogitsLoss().state_dict()) == list(torch.nn.BCEWithLogitsLoss().state_dict()) == []
    g.to(gt.float64)
    assert g.pos_weight.dtype == g.weight.dtype == gt.float64
    g.load_state_dict({k: gt.tensor(v.numpy() * 2) for k, v in t.state_dict().items()})
    np.testing.assert_array_equal(g.pos_weight.numpy(), [4.0, 6.0])


@pytest.mark.parametrize("alpha", [-0.5, -2.0])
def test_celu_matches_torch_for_any_alpha(alpha):
    torch = torch_or_skip()
    x = np.array([-2.0, -0.5, -1e-3, 0.3, 2.0])
    compare_with_torch(lambda t: F.celu(t, alpha=alpha), lambda t: torch.nn.functional.celu(t, alpha=alpha), x)
    np.testing.assert_allclose(nn.CELU(alpha)(gt.tensor(x)).numpy(),
                               torch.nn.CELU(alpha)(torch.tensor(x)).numpy(), rtol=1e-12)


def test_linear_refuses_integer_input_as_torch():
    # torch's products keep one dtype: an int64 input of a float32 layer is refused, not promoted
    xi = gt.tensor([[1, 2, 3, 4]])
    layer = nn.Linear(4, 3)
    for call in (lambda: layer(xi), lambda: F.linear(xi, layer.weight, layer.bias),
                 lambda: nn.MultiheadAttention(4, 2)(xi.unsqueeze(0), xi.unsqueeze(0), xi.unsqueeze(0))):
        with pytest.raises(RuntimeError, match="^mat1 and mat2 must have the same dtype, but got Long and Float$"):
            call()
    with pytest.raises(RuntimeError, match="^expected m1 and m2 to have the same dtype, but got: long int != float$"):
        xi @ layer.weight.T
    out = layer(xi.to(gt.float32))
    np.testing.assert_allclose(out.numpy(), (xi.to(gt.float32) @ layer.weight.T + layer.bias).numpy(), rtol=1e-6)


def test_linear_takes_a_1d_weight_as_torch():
    torch = torch_or_skip()
    compare_with_torch(lambda x, w: F.linear(x, w), lambda x, w: torch.nn.functional.linear(x, w),
                       randn(3, 5, seed=1), randn(5, seed=2))
    compare_with_torch(lambda x, w, b: F.linear(x, w, b), lambda x, w, b: torch.nn.functional.linear(x, w, b),
                       randn(2, 3, 5, seed=1), randn(5, seed=2), randn(seed=3))


def _loss_cases(F_, x, t, x2):
    return {
        "bce_with_logits": lambda: F_.binary_cross_entropy_with_logits(x, t),
        "cross_entropy_probs": lambda: F_.cross_entropy(x, t),
        "cross_entropy_smoothed": lambda: F_.cross_entropy(x, t, label_smoothing=0.1),
        "poisson_nll": lambda: F_.poisson_nll_loss(x, t),
        "gaussian_nll": lambda: F_.gaussian_nll_loss(x, t, x2.exp()),
        "multilabel_soft_margin": lambda: F_.multilabel_soft_margin_loss(x, t),
        "huber": lambda: F_.huber_loss(x, t),
        "huber_weighted": lambda: F_.huber_loss(x, t.float(), weight=t),
        "mse": lambda: F_.mse_loss(x, t),
        "kl_div": lambda: F_.kl_div(x, t, reduction="batchmean"),
        "kl_div_negative_target": lambda: F_.kl_div(x, t - 0.5, reduction="sum"),
    }


@pytest.mark.parametrize("case", list(_loss_cases(F, None, None, None)))
def test_losses_promote_a_float64_target_as_torch(case):
    torch = torch_or_skip()
    x, t = randn(3, 4, seed=1).astype(np.float32), np.random.default_rng(2).random((3, 4))
    gx = gt.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    got = _loss_cases(F, gx, gt.tensor(t), gt.tensor(x))[case]()
    want = _loss_cases(torch.nn.functional, tx, torch.tensor(t), torch.tensor(x))[case]()
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-6)
    if not np.isnan(want.detach().numpy()).any() and not case.startswith("huber"):   # torch's backward raises
        got.sum().backward(), want.sum().backward()
        assert gx.grad.dtype == gt.float32
        np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,args", [("LayerNorm", (3,)), ("BatchNorm1d", (4,)), ("GroupNorm", (2, 4)),
                                       ("InstanceNorm1d", (4,)), ("RMSNorm", (3,))])
@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")   # torch's own, on the reference
def test_norms_of_float16_input_with_float32_weights_answer_in_float16(name, args):
    torch = torch_or_skip()
    x = randn(2, 4, 3, seed=5).astype(np.float16)
    gx, tx = gt.tensor(x, dtype=gt.float16, requires_grad=True), torch.tensor(x, requires_grad=True)
    got, want = getattr(nn, name)(*args)(gx), getattr(torch.nn, name)(*args)(tx)
    assert got.dtype == gt.float16 and want.dtype == torch.float16
    np.testing.assert_allclose(got.numpy().astype(np.float32), want.detach().float().numpy(), atol=2e-3)
    got.float().sum().backward(), want.float().sum().backward()
    assert gx.grad.dtype == gt.float16
    np.testing.assert_allclose(gx.grad.numpy().astype(np.float32), tx.grad.float().numpy(), atol=2e-3)


def test_rms_norm_of_half_input_uses_float32_eps_as_torch():
    torch = torch_or_skip()
    x = np.full((1, 4), 0.01, np.float16)
    got = F.rms_norm(gt.tensor(x, dtype=gt.float16), (4,)).numpy().astype(np.float32)
    want = torch.nn.functional.rms_norm(torch.tensor(x), (4,)).float().numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shapes", [((1, 4, 3, 8), (1, 2, 5, 8), (1, 2, 5, 8)),
                                    ((2, 6, 3, 8), (2, 2, 5, 8), (2, 1, 5, 4)),
                                    ((4, 3, 8), (2, 5, 8), (2, 5, 8))])
def test_sdpa_grouped_query_attention_matches_torch(shapes):
    torch = torch_or_skip()
    arrays = [randn(*s, seed=i) for i, s in enumerate(shapes)]
    compare_with_torch(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                       lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                       *arrays)
    with pytest.raises(RuntimeError, match="must divide the number of heads"):
        F.scaled_dot_product_attention(gt.randn(1, 3, 4, 5), gt.randn(1, 2, 4, 5), gt.randn(1, 2, 4, 5),
                                       enable_gqa=True)


@pytest.mark.parametrize("mask", [np.random.default_rng(0).random((4, 6)) > 0.4, randn(4, 6, seed=9)])
def test_sdpa_mask_with_is_causal_applies_both_as_torch(mask):
    torch = torch_or_skip()
    if mask.dtype == bool:
        mask[:, 0] = True
    compare_with_torch(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=gt.tensor(mask), is_causal=True),
        lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor(mask),
                                                                         is_causal=True),
        randn(1, 2, 4, 5, seed=1), randn(1, 2, 6, 5, seed=2), randn(1, 2, 6, 5, seed=3))


def test_empty_adaptive_pools_and_area_interpolation_as_torch():
    torch = torch_or_skip()
    x = randn(1, 2, 3, 5, seed=0)
    tF = torch.nn.functional
    pairs = [(lambda m, a: m.nn.functional.interpolate(a, scale_factor=0.25, mode="area"), (1, 2, 0, 1)),
             (lambda m, a: m.nn.AdaptiveAvgPool2d((0, 2))(a), (1, 2, 0, 2)),
             (lambda m, a: m.nn.AdaptiveMaxPool2d((2, 0))(a), (1, 2, 2, 0)),
             (lambda m, a: m.nn.AdaptiveAvgPool1d(0)(a[0]), (2, 3, 0))]
    for fn, shape in pairs:
        assert tuple(fn(torch, torch.tensor(x)).shape) == fn(gt, gt.tensor(x)).shape == shape
    leaf = gt.tensor(x, requires_grad=True)
    F.adaptive_avg_pool2d(leaf, (0, 2)).sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), np.zeros_like(x))
    with pytest.raises(ValueError, match="greater than 0"):
        F.interpolate(gt.tensor(x), size=(0, 2), mode="bilinear")
    with pytest.raises(RuntimeError):
        tF.interpolate(torch.tensor(x), size=(0, 2), mode="bilinear")


@pytest.mark.parametrize("p", [0, -1, -2.5, float("-inf")])
def test_pairwise_distance_and_triplet_loss_of_any_order(p):
    torch = torch_or_skip()
    a, b, n = randn(4, 3, seed=1), randn(4, 3, seed=2), randn(4, 3, seed=3)
    compare_with_torch(lambda x, y: F.pairwise_distance(x, y, p=p),
                       lambda x, y: torch.nn.functional.pairwise_distance(x, y, p=p), a, b, grad=p != 0)
    compare_with_torch(lambda x, y, z: F.triplet_margin_loss(x, y, z, margin=2.0, p=p),
                       lambda x, y, z: torch.nn.functional.triplet_margin_loss(x, y, z, margin=2.0, p=p),
                       a, b, n, grad=p != 0)


def test_register_buffer_refuses_a_parameters_name_as_torch():
    torch = torch_or_skip()
    for m in (torch.nn, nn):
        layer = m.Linear(2, 2)
        with pytest.raises(KeyError, match="attribute 'weight' already exists"):
            layer.register_buffer("weight", torch.ones(1) if m is torch.nn else gt.ones(1))
        with pytest.raises(KeyError, match="attribute 'weight' already exists"):
            layer.register_module("weight", m.Linear(1, 1))
    layer = nn.Linear(2, 2)
    layer.register_buffer("scale", gt.ones(1))
    layer.register_buffer("scale", gt.zeros(1))          # its own registry: replaced, as torch
    assert [n for n, _ in layer.named_buffers()] == ["scale"]
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
