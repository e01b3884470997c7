"""gt.nn against torch on the same inputs and the same (copied) weights: forward values and
the gradient of the input and of every parameter, within 1e-5 relative in float64 and 1e-4
in float32. The torch references are built from torch primitives with gt's layer names,
so loading gt's state_dict into them also checks that names and shapes line up."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: the gt-vs-torch nn comparisons are skipped "
                                            "(pip install torch==2.13.0 to run them)")
import torch.nn as tnn  # noqa: E402
import torch.nn.functional as tF  # noqa: E402

import gt  # noqa: E402
from gt import nn  # noqa: E402
from gt.nn import functional as F  # noqa: E402
from helpers import TOLERANCES, compare_with_torch, randn  # noqa: E402

DTYPES = ["float64", "float32"]


# ---- torch references with gt's parameter names ------------------------------------------------
class TorchMHA(tnn.Module):
    def __init__(self, d, h, causal=False):
        super().__init__()
        self.h, self.causal = h, causal
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (tnn.Linear(d, d) for _ in range(4))

    def forward(self, x, attn_mask=None):
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.h, d // self.h).transpose(1, 2)  # (B, H, T, hd)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        # SDPA's bool mask means "may attend": the opposite of gt's (and nn.MultiheadAttention's)
        mask = None
        if self.causal:
            mask = torch.ones(t, t, dtype=torch.bool).tril()
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                mask = ~attn_mask if mask is None else mask & ~attn_mask
            else:
                mask = attn_mask if mask is None else attn_mask.masked_fill(~mask, float("-inf"))
        out = tF.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class TorchFF(tnn.Module):
    def __init__(self, d, f, activation):
        super().__init__()
        self.fc1, self.fc2 = tnn.Linear(d, f), tnn.Linear(f, d)
        self.act = tnn.ReLU() if activation == "relu" else tnn.GELU()

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class TorchBlock(tnn.Module):
    def __init__(self, d, h, f, causal, activation):
        super().__init__()
        self.ln1, self.ln2 = tnn.LayerNorm(d), tnn.LayerNorm(d)
        self.attn = TorchMHA(d, h, causal)
        self.ff = TorchFF(d, f, activation)

    def forward(self, x, attn_mask=None):
        x = x + self.attn(self.ln1(x), attn_mask)
        x = x + self.ff(self.ln2(x))
        return x


def _perturb(module, seed=0):
    """Non-trivial values for every parameter (LayerNorm's ones/zeros hide bugs)."""
    r = np.random.default_rng(seed)
    with gt.no_grad():
        for _, p in module.named_parameters():
            p.copy_(r.standard_normal(p.shape) * 0.5)


def compare_module(gt_mod, torch_mod, x, dtype, mask=None, seed=0):
    """Copy gt's weights into torch (strict: every name and shape must line up), run both on ``x``,
    backprop the same random upstream, and compare the output, d/dx and every d/dparam."""
    rtol, atol = TOLERANCES[dtype]
    _perturb(gt_mod, seed)
    gt_mod.to(dtype).eval()
    torch_mod.load_state_dict({k: torch.from_numpy(v) for k, v in gt_mod.state_dict().items()}, strict=True)
    torch_mod.to(getattr(torch, dtype))
    x = np.asarray(x, dtype=dtype)
    gx, tx = gt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    kwargs_gt = {} if mask is None else {"attn_mask": mask}
    kwargs_t = {} if mask is None else {"attn_mask": torch.from_numpy(np.asarray(mask))}
    gout, tout = gt_mod(gx, **kwargs_gt), torch_mod(tx, **kwargs_t)
    assert gout.dtype.name == dtype
    np.testing.assert_allclose(gout.numpy(), tout.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    up = np.random.default_rng(seed + 1).standard_normal(gout.shape).astype(dtype)
    gout.backward(gt.tensor(up))
    tout.backward(torch.from_numpy(up))
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=atol, err_msg="input grad")
    tparams = dict(torch_mod.named_parameters())
    gparams = dict(gt_mod.named_parameters())
    assert sorted(gparams) == sorted(tparams)
    for name, p in gparams.items():
        assert p.grad.dtype.name == dtype, name
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of {name}")


# ---- layers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(dtype, bias):
    compare_module(nn.Linear(5, 3, bias=bias), tnn.Linear(5, 3, bias=bias), randn(2, 4, 5), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [6, (3, 6)])
def test_layer_norm(dtype, shape):
    compare_module(nn.LayerNorm(shape), tnn.LayerNorm(shape), randn(2, 3, 6, scale=3.0), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention(dtype, causal):
    compare_module(nn.MultiHeadAttention(8, 2, causal=causal), TorchMHA(8, 2, causal), randn(2, 5, 8), dtype)


def _padding_mask(b, t):
    """(B, 1, 1, T) bool: the last keys of the second sequence are padding (True = may not attend)."""
    mask = np.zeros((b, 1, 1, t), bool)
    mask[1, ..., t - 2:] = True
    return mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask_kind", ["bool_tt", "bool_padding", "float"])
def test_multi_head_attention_with_masks(dtype, causal, mask_kind):
    if mask_kind == "bool_tt":
        mask = np.random.default_rng(3).random((5, 5)) < 0.3
        np.fill_diagonal(mask, False)  # every query keeps at least itself
    elif mask_kind == "bool_padding":
        mask = _padding_mask(2, 5)
    else:
        mask = randn(5, 5, seed=4).astype(dtype)
    compare_module(nn.MultiHeadAttention(8, 4, causal=causal), TorchMHA(8, 4, causal), randn(2, 5, 8), dtype,
                   mask=mask)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_feed_forward(dtype, activation):
    compare_module(nn.FeedForward(6, 10, activation=activation), TorchFF(6, 10, activation), randn(2, 3, 6), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("causal", [False, True])
def test_transformer_block(dtype, activation, causal):
    compare_module(nn.TransformerBlock(8, 2, 12, causal=causal, activation=activation),
                   TorchBlock(8, 2, 12, causal, activation), randn(2, 5, 8), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transformer_block_with_padding_mask(dtype):
    compare_module(nn.TransformerBlock(8, 2, 12, causal=True), TorchBlock(8, 2, 12, True, "relu"),
                   randn(2, 5, 8), dtype, mask=_padding_mask(2, 5))


def test_attention_matches_torch_multihead_attention():
    """Same weights in torch.nn.MultiheadAttention (q/k/v stacked into in_proj): same output,
    and its bool attn_mask convention (True = may not attend) is gt's."""
    gt.manual_seed(0)
    attn = nn.MultiHeadAttention(8, 2).double()
    ref = tnn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)
    sd = {k: torch.from_numpy(v) for k, v in attn.state_dict().items()}
    ref.load_state_dict({
        "in_proj_weight": torch.cat([sd["q_proj.weight"], sd["k_proj.weight"], sd["v_proj.weight"]]),
        "in_proj_bias": torch.cat([sd["q_proj.bias"], sd["k_proj.bias"], sd["v_proj.bias"]]),
        "out_proj.weight": sd["out_proj.weight"], "out_proj.bias": sd["out_proj.bias"]})
    x = randn(2, 4, 8)
    mask = np.triu(np.ones((4, 4), bool), k=1)
    tx = torch.from_numpy(x)
    expected, _ = ref(tx, tx, tx, attn_mask=torch.from_numpy(mask), need_weights=False)
    np.testing.assert_allclose(attn(gt.tensor(x), attn_mask=mask).numpy(), expected.detach().numpy(),
                               rtol=1e-10, atol=1e-12)


def test_state_dict_moves_between_gt_and_torch():
    gt.manual_seed(0)
    block = nn.TransformerBlock(8, 2, 12, causal=True, activation="gelu").eval()
    ref = TorchBlock(8, 2, 12, True, "gelu")
    result = ref.load_state_dict({k: torch.from_numpy(v) for k, v in block.state_dict().items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert {k: tuple(v.shape) for k, v in ref.state_dict().items()} == \
        {k: v.shape for k, v in block.state_dict().items()}
    # and back: a torch state dict (torch tensors) loads into gt
    torch.manual_seed(0)
    other = TorchBlock(8, 2, 12, True, "gelu")
    block.load_state_dict(other.state_dict())
    x = randn(2, 5, 8).astype(np.float32)
    np.testing.assert_allclose(block(gt.tensor(x)).numpy(), other(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


# ---- functional ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(dtype, reduction):
    target = np.array([0, 3, 1, 1, 2, 3])
    compare_with_torch(lambda z, t: F.cross_entropy(z, t, reduction=reduction),
                       lambda z, t: tF.cross_entropy(z, t, reduction=reduction),
                       randn(6, 4, scale=3.0), target, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(dtype, reduction):
    compare_with_torch(lambda a, b: F.mse_loss(a, b, reduction=reduction),
                       lambda a, b: tF.mse_loss(a, b, reduction=reduction),
                       randn(3, 4), randn(3, 4, seed=1), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax_and_log_softmax(dtype, dim):
    x = randn(3, 4, 5, scale=4.0)
    compare_with_torch(lambda z: F.softmax(z, dim=dim), lambda z: tF.softmax(z, dim=dim), x, dtype=dtype)
    compare_with_torch(lambda z: F.log_softmax(z, dim=dim), lambda z: tF.log_softmax(z, dim=dim), x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_linear_layer_norm_gelu(dtype):
    compare_with_torch(F.linear, tF.linear, randn(2, 3, 4), randn(5, 4, seed=1), randn(5, seed=2), dtype=dtype)
    compare_with_torch(lambda x, w, b: F.layer_norm(x, (4,), w, b), lambda x, w, b: tF.layer_norm(x, (4,), w, b),
                       randn(2, 3, 4, scale=2.0), randn(4, seed=1), randn(4, seed=2), dtype=dtype)
    for approximate in ("none", "tanh"):
        compare_with_torch(lambda x: F.gelu(x, approximate=approximate),
                           lambda x: tF.gelu(x, approximate=approximate), randn(3, 4, scale=2.0), dtype=dtype)


def test_one_hot_matches_torch_values():
    idx = np.array([[0, 3], [2, 2]])
    np.testing.assert_array_equal(F.one_hot(idx, 5).numpy(), tF.one_hot(torch.from_numpy(idx), 5).numpy())


def test_linear_init_matches_torch_bounds():
    """Same distribution family as torch.nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in))."""
    gt.manual_seed(0)
    torch.manual_seed(0)
    g, t = nn.Linear(256, 128), tnn.Linear(256, 128)
    for gp, tp in ((g.weight, t.weight), (g.bias, t.bias)):
        gv, tv = gp.numpy(), tp.detach().numpy()
        assert abs(np.abs(gv).max() - np.abs(tv).max()) < 1e-3
        assert abs(gv.std() - tv.std()) < 0.1 * tv.std()
