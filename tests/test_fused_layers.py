"""Ops that fuse two layers of a transformer into one without changing its values: the feed-
forward's ``Linear`` + ``ReLU`` (gt.ops.linalg.LinearRelu) and the self-attention's q, k and v
from one packed product (``MultiHeadAttention``, gt.ops.attention.Attention(packed=True))."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.ops import linalg


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_linear_relu_is_linear_then_relu_to_the_bit():
    x_np, w_np, b_np, g_np = _rand(3, 5, 8), _rand(6, 8, seed=1), _rand(6, seed=2), _rand(3, 5, 6, seed=3)
    got, ref = [], []
    for fused, into in ((True, got), (False, ref)):
        x, w, b = (gt.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        out = linalg.LinearRelu.apply(x, w, b) if fused else linalg.Linear.apply(x, w, b).relu()
        out.backward(gt.tensor(g_np))
        into += [out.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()]
    assert (got[0] == 0).any() and (got[0] > 0).any()          # both sides of the kink are exercised
    for a, r, what in zip(got, ref, ("out", "d/dx", "d/dweight", "d/dbias")):
        np.testing.assert_array_equal(a, r, err_msg=what)


def test_the_feed_forward_fuses_only_a_plain_linear_and_relu():
    gt.manual_seed(0)
    ff = nn.FeedForward(8, 16)
    x = gt.tensor(_rand(2, 3, 8))
    ref = ff.fc2(ff.fc1(x).relu()).numpy()
    np.testing.assert_array_equal(ff(x).numpy(), ref)

    class Shifted(nn.Linear):
        def forward(self, x):
            return super().forward(x) + 1.0

    shifted = Shifted(8, 16)
    shifted.load_state_dict(ff.fc1.state_dict())
    ff.fc1 = shifted
    np.testing.assert_array_equal(ff(x).numpy(), ff.fc2((ff.fc1(x)).relu()).numpy())
    with pytest.raises(ValueError, match=r"input of shape \(2, 3, 7\) does not end in in_features=8"):
        nn.FeedForward(8, 16)(gt.tensor(_rand(2, 3, 7)))


# ---- q, k and v from one packed product (MultiHeadAttention's self-attention path) ----------------
def _mha_pair(causal, seed=0):
    gt.manual_seed(seed)
    return nn.MultiHeadAttention(16, num_heads=4, causal=causal)


def _packed(mha, x, **kw):
    """Whether ``mha(x)`` took the packed path (its tape holds the weights' concatenation)."""
    out = mha(x, **kw)
    ops = [e["op"] for e in gt.debug.get_tape()]
    out.sum().backward()     # clears the tape
    return "Cat" in ops


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padding", [False, True])
def test_packed_self_attention_matches_separate_projections(causal, padding):
    # need_weights=True takes the composed path with three separate projections
    mha = _mha_pair(causal)
    x = gt.tensor(_rand(4, 32, 16, seed=1), requires_grad=True)    # 128 rows = PACK_ROWS x D: packed
    pad_np = np.zeros((4, 32), bool)
    pad_np[1, 20:], pad_np[3, 31:] = True, True
    pad = gt.tensor(pad_np) if padding else None
    assert _packed(mha, x, key_padding_mask=pad) and not _packed(mha, x[:, :31], key_padding_mask=None)
    results = []
    for need in (False, True):
        out = mha(x, key_padding_mask=pad, need_weights=need)
        out = out[0] if need else out
        x.grad = None
        mha.zero_grad()
        (out * out).sum().backward()
        grads = {n: p.grad.numpy().copy() for n, p in mha.named_parameters()}
        results.append((out.detach().numpy(), x.grad.numpy().copy(), grads))
    (o1, gx1, g1), (o2, gx2, g2) = results
    np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx1, gx2, rtol=1e-4, atol=1e-5)
    assert set(g1) == set(g2) and len(g1) == 8      # q, k, v, out: weight and bias each
    for name in g1:
        np.testing.assert_allclose(g1[name], g2[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_a_projection_that_computes_something_else_is_not_packed():
    class Doubled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2.0

    mha = _mha_pair(False)
    x = gt.tensor(_rand(4, 32, 16, seed=2))
    plain = mha(x).numpy()
    doubled = Doubled(16, 16)
    doubled.load_state_dict(mha.v_proj.state_dict())
    mha.v_proj = doubled
    # values doubled: the output projection's input doubles, so out - bias doubles
    got = mha(x).numpy() - mha.out_proj.bias.numpy()
    np.testing.assert_allclose(got, 2 * (plain - mha.out_proj.bias.numpy()), rtol=1e-5, atol=1e-6)


@pytest.mark.own_mesh
def test_a_sharded_batch_through_the_fused_layers_matches_one_device():
    from gt.sharding import use_mesh

    x_np, w_np = _rand(8, 16, 16, seed=5), _rand(8, 16, 16, seed=6)   # 128 rows = PACK_ROWS x D

    def run():
        gt.manual_seed(3)
        block = nn.TransformerBlock(16, 4, 32, causal=True)
        leaf = gt.tensor(x_np, requires_grad=True)
        x = leaf.shard(0) if gt.sharding.get_mesh().size > 1 else leaf
        out = block(x)
        (out * gt.tensor(w_np)).sum().backward()
        return out.numpy(), leaf.grad.numpy(), {n: p.grad.numpy() for n, p in block.named_parameters()}, out.placement

    with use_mesh(1):
        ref = run()
    with use_mesh(4):
        got = run()
    assert got[3] == gt.sharding.Shard(0)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-5, atol=1e-6)
    for n in ref[2]:     # sums over 4 shards instead of one gemm: rounding of the largest (about 5)
        np.testing.assert_allclose(got[2][n], ref[2][n], rtol=1e-5, atol=1e-5, err_msg=n)
