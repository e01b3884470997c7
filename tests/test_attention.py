"""Attention over other sequences against torch: ``F.scaled_dot_product_attention`` (torch's
function), ``nn.MultiHeadAttention`` with a context and masks (torch.nn.MultiheadAttention,
batch_first=True, weights copied) and the cross-attention ``TransformerBlock``; values and the
gradients of every input and parameter, in float64 and float32; a batch-sharded query over a
replicated and over a sharded context on four devices."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from gt.sharding import use_mesh
from helpers import TOLERANCES, compare_with_torch, randn

torch = pytest.importorskip("torch", reason="torch is not installed: the gt-vs-torch attention comparisons are "
                                            "skipped (pip install torch==2.13.0 to run them)")
import torch.nn as tnn  # noqa: E402
import torch.nn.functional as tF  # noqa: E402

DTYPES = ["float64", "float32"]

# a bool (L, S) = (3, 5) mask in torch's SDPA convention (True = takes part); query 1 sees no key
KEEP = np.array([[True, False, True, False, True], [False] * 5, [True] * 4 + [False]])


# ---- F.scaled_dot_product_attention ----------------------------------------------------------
SDPA_CASES = {
    "cross_L3_S5": (dict(), (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3), None),
    "bool_mask_empty_row": (dict(), (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3), KEEP),
    "float_mask_with_grad": (dict(), (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3), randn(2, 1, 3, 5, seed=9)),
    "causal_L3_S5": (dict(is_causal=True), (2, 3, 4), (2, 5, 4), (2, 5, 2), None),
    "causal_L5_S3": (dict(is_causal=True), (2, 5, 4), (2, 3, 4), (2, 3, 2), None),
    "scale_broadcast_lead": (dict(scale=0.3), (2, 3, 4), (1, 5, 4), (5, 2), None),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(SDPA_CASES))
def test_sdpa_matches_torch(name, dtype):
    kw, sq, sk, sv, mask = SDPA_CASES[name]
    arrays = [randn(*sq, seed=1), randn(*sk, seed=2), randn(*sv, seed=3)] + ([] if mask is None else [mask])

    def run(F_, q, k, v, m=None):
        return F_.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw)

    compare_with_torch(lambda *a: run(F, *a), lambda *a: run(tF, *a), *arrays, dtype=dtype)


def test_sdpa_rejects_bad_inputs():
    q, kv = gt.randn(2, 3, 4), gt.randn(2, 5, 4)
    both = F.scaled_dot_product_attention(q, kv, kv, attn_mask=np.ones((3, 5), bool), is_causal=True)
    np.testing.assert_allclose(both.numpy(), F.scaled_dot_product_attention(q, kv, kv, is_causal=True).numpy(),
                               rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\), \(2, 5, 3\)"):
        F.scaled_dot_product_attention(q, gt.randn(2, 5, 3), kv)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(5, 3\)"):
        F.scaled_dot_product_attention(q, kv, kv, attn_mask=np.ones((5, 3), bool))
    with pytest.raises(RuntimeError, match="bool or float"):        # torch's error
        F.scaled_dot_product_attention(q, kv, kv, attn_mask=np.ones((3, 5), np.int64))
    with pytest.raises(ValueError, match="dropout_p"):
        F.scaled_dot_product_attention(q, kv, kv, dropout_p=1.5)


def test_sdpa_dropout_drops_weights_and_rescales():
    q, k, v = gt.randn(2, 3, 4), gt.randn(2, 5, 4), gt.randn(2, 5, 2)
    gt.manual_seed(5)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    gt.manual_seed(5)
    weights = ((q @ k.transpose(-2, -1)) * 0.5).softmax(-1)
    np.testing.assert_allclose(out.numpy(), (F.dropout(weights, 0.5) @ v).numpy(), rtol=1e-6, atol=1e-7)
    assert not np.allclose(out.numpy(), F.scaled_dot_product_attention(q, k, v).numpy())


# ---- nn.MultiHeadAttention against torch.nn.MultiheadAttention --------------------------------
def _torch_mha(attn, dtype):
    ref = tnn.MultiheadAttention(attn.embed_dim, attn.num_heads, batch_first=True, dtype=getattr(torch, dtype))
    sd = {k: torch.from_numpy(v) for k, v in attn.state_dict().items()}
    ref.load_state_dict({
        "in_proj_weight": torch.cat([sd["q_proj.weight"], sd["k_proj.weight"], sd["v_proj.weight"]]),
        "in_proj_bias": torch.cat([sd["q_proj.bias"], sd["k_proj.bias"], sd["v_proj.bias"]]),
        "out_proj.weight": sd["out_proj.weight"], "out_proj.bias": sd["out_proj.bias"]})
    return ref


def _torch_grads(ref):
    """torch's gradients under gt's parameter names (in_proj split into q, k, v)."""
    w, b = ref.in_proj_weight.grad.chunk(3), ref.in_proj_bias.grad.chunk(3)
    grads = {f"{n}_proj.weight": g for n, g in zip("qkv", w)}
    grads.update({f"{n}_proj.bias": g for n, g in zip("qkv", b)})
    grads.update({"out_proj.weight": ref.out_proj.weight.grad, "out_proj.bias": ref.out_proj.bias.grad})
    return grads


PAD = np.array([[False] * 5, [False, False, False, True, True]])     # (B, S): True = padding
BLOCK = ~KEEP.copy()
BLOCK[1, 0] = False                                                  # nn's convention, every query keeps a key

MHA_CASES = {
    "cross": {},
    "cross_padding": {"key_padding_mask": PAD},
    "cross_bool_mask_and_padding": {"attn_mask": BLOCK, "key_padding_mask": PAD},
    "cross_float_mask": {"attn_mask": randn(3, 5, seed=7)},
    "cross_float_padding_bool_mask": {"attn_mask": BLOCK, "key_padding_mask": np.where(PAD, -1.5, 0.0)},
    "self_padding": {"self": True, "key_padding_mask": PAD},
}


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")   # torch's, on the mixed case
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(MHA_CASES))
def test_multi_head_attention_matches_torch(name, dtype):
    kw = dict(MHA_CASES[name])
    self_attn = kw.pop("self", False)
    rtol, atol = TOLERANCES[dtype]
    gt.manual_seed(0)
    attn = nn.MultiHeadAttention(8, 2).to(dtype)
    ref = _torch_mha(attn, dtype)
    x = randn(2, 5 if self_attn else 3, 8, seed=1).astype(dtype)
    c = randn(2, 5, 8, seed=2).astype(dtype)
    gx, gc = gt.tensor(x, requires_grad=True), gt.tensor(c, requires_grad=True)
    tx, tc = torch.tensor(x, requires_grad=True), torch.tensor(c, requires_grad=True)
    masks = {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in kw.items()}
    out = attn(gx, **({} if self_attn else {"context": gc}), **masks)
    tkv = tx if self_attn else tc
    expected, _ = ref(tx, tkv, tkv, need_weights=False, **{k: torch.from_numpy(v) for k, v in masks.items()})
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    up = randn(*out.shape, seed=3).astype(dtype)
    out.backward(gt.tensor(up))
    expected.backward(torch.from_numpy(up))
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=atol, err_msg="d/dx")
    if not self_attn:
        np.testing.assert_allclose(gc.grad.numpy(), tc.grad.numpy(), rtol=rtol, atol=atol, err_msg="d/dcontext")
    for n, g in _torch_grads(ref).items():
        np.testing.assert_allclose(dict(attn.named_parameters())[n].grad.numpy(), g.numpy(), rtol=rtol, atol=atol,
                                   err_msg=n)


def test_need_weights_and_fused_path_agree_over_a_context():
    gt.manual_seed(1)
    attn = nn.MultiHeadAttention(8, 2)
    x, c = gt.randn(2, 3, 8), gt.randn(2, 5, 8)
    out, weights = attn(x, context=c, key_padding_mask=PAD, need_weights=True)
    assert weights.shape == (2, 2, 3, 5)
    assert not weights.numpy()[1, ..., 3:].any()                      # no weight on padding
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(attn(x, context=c, key_padding_mask=PAD).numpy(), out.numpy(), rtol=1e-6, atol=1e-7)


def test_multi_head_attention_rejects_bad_context_and_masks():
    attn = nn.MultiHeadAttention(8, 2)
    x = gt.randn(2, 3, 8)
    with pytest.raises(ValueError, match=r"context of shape \(batch, seq, 8\), got \(2, 5, 6\)"):
        attn(x, context=gt.randn(2, 5, 6))
    with pytest.raises(ValueError, match="batch size 3"):
        attn(x, context=gt.randn(3, 5, 8))
    with pytest.raises(ValueError, match=r"key_padding_mask of shape \(2, 4\)"):
        attn(x, context=gt.randn(2, 5, 8), key_padding_mask=np.zeros((2, 4), bool))
    with pytest.raises(ValueError, match="every key"):
        attn(x, context=gt.randn(2, 5, 8), key_padding_mask=np.ones((2, 5), bool))
    with pytest.raises(ValueError, match="causal=True"):
        nn.MultiHeadAttention(8, 2, causal=True)(x, context=gt.randn(2, 5, 8))
    with pytest.raises(TypeError, match="KVCache"):
        attn(x, cache={})


# ---- the cross-attention TransformerBlock --------------------------------------------------
class TorchAttn(tnn.Module):
    """Attention with gt's parameter names, from torch's SDPA (its bool mask: True = may attend)."""

    def __init__(self, d, h, causal=False):
        super().__init__()
        self.h, self.causal = h, causal
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (tnn.Linear(d, d) for _ in range(4))

    def forward(self, x, context=None, pad=None):
        c = x if context is None else context
        b, n_q, d = x.shape

        def heads(t):
            return t.view(b, t.shape[1], self.h, d // self.h).transpose(1, 2)   # (B, H, T, hd)

        mask = None if pad is None else ~torch.from_numpy(pad)[:, None, None, :]
        out = tF.scaled_dot_product_attention(heads(self.q_proj(x)), heads(self.k_proj(c)), heads(self.v_proj(c)),
                                              attn_mask=mask, is_causal=self.causal)
        return self.out_proj(out.transpose(1, 2).reshape(b, n_q, d))


class TorchDecoderBlock(tnn.Module):
    def __init__(self, d, h, f):
        super().__init__()
        self.ln1, self.attn = tnn.LayerNorm(d), TorchAttn(d, h, causal=True)
        self.ln_cross, self.cross_attn = tnn.LayerNorm(d), TorchAttn(d, h)
        self.ln2 = tnn.LayerNorm(d)
        self.ff = tnn.Module()
        self.ff.fc1, self.ff.fc2 = tnn.Linear(d, f), tnn.Linear(f, d)

    def forward(self, x, context, pad=None):
        x = x + self.attn(self.ln1(x))
        x = x + self.cross_attn(self.ln_cross(x), context, pad)
        return x + self.ff.fc2(torch.relu(self.ff.fc1(self.ln2(x))))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padded", [False, True])
def test_cross_attention_block_matches_torch(dtype, padded):
    rtol, atol = TOLERANCES[dtype]
    gt.manual_seed(2)
    block = nn.TransformerBlock(8, 2, 12, causal=True, cross_attention=True)
    r = np.random.default_rng(0)
    with gt.no_grad():
        for _, p in block.named_parameters():
            p.copy_(r.standard_normal(p.shape) * 0.5)
    block.to(dtype)
    ref = TorchDecoderBlock(8, 2, 12).to(getattr(torch, dtype))
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in block.state_dict().items()}, strict=True)
    pad = PAD if padded else None
    x, c = randn(2, 4, 8, seed=1).astype(dtype), randn(2, 5, 8, seed=2).astype(dtype)
    gx, gc = gt.tensor(x, requires_grad=True), gt.tensor(c, requires_grad=True)
    tx, tc = torch.tensor(x, requires_grad=True), torch.tensor(c, requires_grad=True)
    out, expected = block(gx, context=gc, context_key_padding_mask=pad), ref(tx, tc, pad)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    up = randn(2, 4, 8, seed=3).astype(dtype)
    out.backward(gt.tensor(up))
    expected.backward(torch.from_numpy(up))
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(gc.grad.numpy(), tc.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(ref.named_parameters())
    for n, p in block.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[n].grad.numpy(), rtol=rtol, atol=atol, err_msg=n)


def test_block_keys_unchanged_without_cross_attention_and_context_checked():
    plain = nn.TransformerBlock(8, 2, 12, causal=True)
    cross = nn.TransformerBlock(8, 2, 12, causal=True, cross_attention=True)
    keys = list(plain.state_dict())
    assert keys == ["ln1.weight", "ln1.bias"] + [f"attn.{p}_proj.{w}" for p in "qkvo" if p != "o"
                                                 for w in ("weight", "bias")] + \
        ["attn.out_proj.weight", "attn.out_proj.bias", "ln2.weight", "ln2.bias", "ff.fc1.weight", "ff.fc1.bias",
         "ff.fc2.weight", "ff.fc2.bias"]
    extra = sorted(set(cross.state_dict()) - set(keys))
    assert extra == sorted(["ln_cross.weight", "ln_cross.bias"] + [f"cross_attn.{p}.{w}" for p in
                            ("q_proj", "k_proj", "v_proj", "out_proj") for w in ("weight", "bias")])
    with pytest.raises(ValueError, match="needs context"):
        cross(gt.randn(2, 3, 8))
    with pytest.raises(ValueError, match="cross_attention=True"):
        plain(gt.randn(2, 3, 8), context=gt.randn(2, 5, 8))


# ---- sharded: a batch-sharded query over a replicated or a sharded context -------------------
@pytest.mark.own_mesh
@pytest.mark.parametrize("context_layout", ["replicated", "sharded"])
def test_sharded_cross_attention_matches_one_device(context_layout):
    x, c = randn(6, 3, 8, seed=1).astype(np.float32), randn(6, 5, 8, seed=2).astype(np.float32)
    pad = np.zeros((6, 5), bool)
    pad[::2, 3:] = True

    def run():
        gt.manual_seed(4)
        block = nn.TransformerBlock(8, 2, 12, causal=True, cross_attention=True)
        leaf_x, leaf_c = gt.tensor(x, requires_grad=True), gt.tensor(c, requires_grad=True)
        gx, gc = leaf_x, leaf_c
        if gt.sharding.get_mesh().size > 1:
            gx = gx.shard(0)
            gc = gc.shard(0) if context_layout == "sharded" else gc.replicate()
            assert gc.placement == (gt.sharding.Shard(0) if context_layout == "sharded" else gt.sharding.Replicate())
        out = block(gx, context=gc, context_key_padding_mask=pad)
        sdpa = F.scaled_dot_product_attention(gx.reshape(6, 3, 2, 4).permute(0, 2, 1, 3),
                                              gc.reshape(6, 5, 2, 4).permute(0, 2, 1, 3),
                                              gc.reshape(6, 5, 2, 4).permute(0, 2, 1, 3), attn_mask=~pad[:, None, None])
        ((out * gt.tensor(randn(6, 3, 8, seed=3))).sum() + sdpa.sum()).backward()
        grads = {n: p.grad.numpy() for n, p in block.named_parameters()}
        return out.numpy(), sdpa.numpy(), leaf_x.grad.numpy(), leaf_c.grad.numpy(), grads, out.placement

    with use_mesh(1):
        ref = run()
    with use_mesh(4):
        got = run()
    assert got[-1] == gt.sharding.Shard(0)
    for a, b, what in zip(got[:4], ref[:4], ("block", "sdpa", "d/dx", "d/dcontext")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=what)
    for n in ref[4]:
        np.testing.assert_allclose(got[4][n], ref[4][n], rtol=1e-5, atol=1e-6, err_msg=n)

