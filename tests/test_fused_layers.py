"""Ops that fuse two layers of a transformer into one without changing its values: the feed-
forward's ``Linear`` + ``ReLU`` (gt.ops.linalg.LinearRelu) and the self-attention's q, k and v
from one packed product (``MultiHeadAttention``, gt.ops.attention.Attention(packed=True))."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.ops import linalg
from helpers import spy_engine


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
    """Whether ``mha(x)`` took the packed path (its tape holds the projection-and-attention op, or
    under autocast the weights' concatenation)."""
    out = mha(x, **kw)
    ops = [e["op"] for e in gt.debug.get_tape()]
    out.sum().backward()     # clears the tape
    return "PackedSelfAttention" in ops or "Cat" in ops


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


def _self_attention_inputs(dtype, bias, seed=20):
    """x (3, 8, 16) and the q, k, v weights (16, 16) and biases (16,) (None without ``bias``)."""
    arrays = [_rand(3, 8, 16, seed=seed)] + [0.3 * _rand(16, 16, seed=seed + i) for i in (1, 2, 3)]
    arrays += [0.1 * _rand(16, seed=seed + i) if bias else None for i in (4, 5, 6)]
    return [None if a is None else a.astype(dtype) for a in arrays]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("causal, bias, mask", [(False, True, False), (True, True, False), (True, False, False),
                                                (False, True, True)])
def test_projection_and_attention_in_one_op_match_torch(dtype, causal, bias, mask):
    """``PackedSelfAttention`` (MultiHeadAttention's training path) against torch autograd on
    F.linear of the stacked weights and F.scaled_dot_product_attention: the output and the
    gradients of x, the three weights and biases, and of a float mask (the composed path)."""
    import torch
    import torch.nn.functional as TF

    from gt.ops.self_attention import PackedSelfAttention

    arrays = _self_attention_inputs(dtype, bias)
    m_np = 0.5 * _rand(3, 1, 8, 8, seed=27).astype(dtype) if mask else None
    up = _rand(3, 8, 16, seed=28).astype(dtype)
    ours = [None if a is None else gt.tensor(a, requires_grad=True) for a in arrays + [m_np]]
    out = PackedSelfAttention.apply(*ours, num_heads=4, scale=0.5, causal=0 if causal else None)
    out.backward(gt.tensor(up))
    ts = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays + [m_np]]
    x, wq, wk, wv, bq, bk, bv, m = ts
    qkv = TF.linear(x, torch.cat([wq, wk, wv]), None if bq is None else torch.cat([bq, bk, bv]))
    q, k, v = (t.reshape(3, 8, 4, 4).transpose(1, 2) for t in qkv.split(16, -1))
    ref = TF.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=causal, scale=0.5)
    ref = ref.transpose(1, 2).reshape(3, 8, 16)
    ref.backward(torch.tensor(up))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), **tol)
    for name, a, t in zip(("x", "wq", "wk", "wv", "bq", "bk", "bv", "mask"), ours, ts):
        if a is not None:
            np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), err_msg=name, **tol)


@pytest.mark.parametrize("needs", ["all", "x", "weights"])
def test_projection_and_attention_in_one_op_match_the_two_ops_it_replaces(needs):
    """The same values as ``Linear`` of the stacked weights then ``Attention(packed=True)``: to
    the bit where the gradient stays packed (the numpy engine), to float rounding where its
    products are split (the torch engine); only the gradients asked for are made."""
    from gt.backend import B
    from gt.ops import attention, linalg
    from gt.ops.self_attention import PackedSelfAttention

    arrays, up = _self_attention_inputs("float32", True), gt.tensor(_rand(3, 8, 16, seed=29))
    results = []
    for fused in (True, False):
        ts = [gt.tensor(a, requires_grad=needs == "all" or (i == 0) == (needs == "x")) for i, a in enumerate(arrays)]
        if fused:
            out = PackedSelfAttention.apply(*ts, None, num_heads=4, scale=0.5, causal=0)
        else:
            qkv = linalg.Linear.apply(ts[0], gt.cat(ts[1:4]), gt.cat(ts[4:7]))
            out = attention.Attention.apply(qkv, None, None, None, num_heads=4, scale=0.5, causal=0, packed=True)
        out.backward(up)
        results.append([out.numpy()] + [None if t.grad is None else t.grad.numpy() for t in ts])
    for i, (a, r) in enumerate(zip(*results)):
        assert (a is None) == (r is None) == (i > 0 and not ts[i - 1].requires_grad)
        if a is None:
            continue
        if B.name == "torch" and i > 0:   # (the keys' bias has a zero gradient: rounding noise of 1e-7)
            np.testing.assert_allclose(a, r, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, r)


@pytest.mark.parametrize("causal", [False, True])
def test_projection_and_attention_in_one_op_second_derivatives_match_torch(causal):
    """``create_graph``: the gradients of x and a weight differentiated again, against torch
    autograd on the composed attention (torch's flash kernel has no second derivative)."""
    import torch
    import torch.nn.functional as TF

    from gt.ops.self_attention import PackedSelfAttention

    arrays = [a[:2, :6, :8] if i == 0 else a[:8, :8] if i < 4 else a[:8]
              for i, a in enumerate(_self_attention_inputs("float64", True))]
    ours = [gt.tensor(a, requires_grad=True) for a in arrays]
    out = PackedSelfAttention.apply(*ours, None, num_heads=2, scale=0.5, causal=0 if causal else None)
    gx, gw = gt.autograd.grad((out ** 2).sum(), [ours[0], ours[1]], create_graph=True)
    (gx.sum() + (gw ** 2).sum()).backward()
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    qkv = TF.linear(ts[0], torch.cat(ts[1:4]), torch.cat(ts[4:7]))
    q, k, v = (t.reshape(2, 6, 2, 4).transpose(1, 2) for t in qkv.split(8, -1))
    scores = q @ k.transpose(-1, -2) * 0.5
    if causal:
        scores = scores.masked_fill(torch.ones(6, 6, dtype=torch.bool).triu(1), float("-inf"))
    ref = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 6, 8)
    tx, tw = torch.autograd.grad((ref ** 2).sum(), [ts[0], ts[1]], create_graph=True)
    (tx.sum() + (tw ** 2).sum()).backward()
    np.testing.assert_allclose(gx.detach().numpy(), tx.detach().numpy(), rtol=1e-10, atol=1e-12)
    for name, a, t in zip(("x", "wq", "wk", "wv", "bq", "bk", "bv"), ours, ts):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-11, err_msg=name)


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


# ---- a whole block in one kernel, for inference ----------------------------------------------
def _op_by_op(block, x, monkeypatch):
    """The block's output through its ops (the engine's one-kernel layer switched off)."""
    from gt.backend import B

    with monkeypatch.context() as m:
        m.setattr(B, "encoder_layer_fused", lambda *a, **k: None)
        with gt.no_grad():
            return block(x).numpy()


@pytest.mark.own_mesh
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inference_block_in_one_kernel_matches_its_ops(activation, dtype, monkeypatch):
    """In eval mode under ``no_grad`` a ``TransformerBlock`` on one device runs as one engine
    kernel (the torch engine's native encoder layer; the numpy engine has none and runs the
    ops): the values of its ops to float rounding. (Sharded: the next test.)"""
    from gt.sharding import use_mesh

    with use_mesh(1):
        _inference_block_matches_its_ops(activation, dtype, monkeypatch)


def _inference_block_matches_its_ops(activation, dtype, monkeypatch):
    from gt.backend import B

    gt.manual_seed(4)
    block = nn.TransformerBlock(16, 4, 40, dropout=0.1, activation=activation, dtype=dtype).eval()
    with gt.no_grad():   # norms that are not the identity, so their weights are read
        for ln in (block.ln1, block.ln2):
            ln.weight.copy_(gt.tensor(1 + 0.3 * _rand(16, seed=7).astype(dtype)))
            ln.bias.copy_(gt.tensor(0.2 * _rand(16, seed=8).astype(dtype)))
    x = gt.tensor(_rand(3, 7, 16, seed=9).astype(dtype))
    ref = _op_by_op(block, x, monkeypatch)
    answered = spy_engine(monkeypatch, "encoder_layer_fused")
    with gt.no_grad():
        out = block(x)
    assert answered == [B.name == "torch"]
    assert out.dtype == getattr(gt, dtype) and out.shape == (3, 7, 16) and not out.requires_grad
    if B.name == "torch":
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(out.numpy(), ref, **tol)
    else:
        np.testing.assert_array_equal(out.numpy(), ref)
    # a whole model: the PixelTransformer's eval forward, one kernel per block
    from lpm import PixelTransformer

    gt.manual_seed(5)
    model = PixelTransformer(img_size=6, embed_dim=16, num_heads=4, num_layers=2, ff_dim=32, num_classes=3).eval()
    images = gt.tensor(_rand(2, 3, 6, 6, seed=10))
    ref = _op_by_op(model, images, monkeypatch)
    answered.clear()
    with gt.no_grad():
        got = model(images).numpy()
    assert answered == [B.name == "torch"] * 2
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.own_mesh
def test_inference_block_only_where_nothing_is_recorded_and_the_ops_are_plain(monkeypatch):
    """The one-kernel block is asked for only when its ops would record nothing and compute what
    the kernel computes: not while training with gradients or with active dropout, not for a
    causal or masked attention, tanh GELU, a swapped layer or instance forward, autocast or a
    sharded input."""
    from gt.backend import B
    from gt.sharding import use_mesh

    gt.manual_seed(6)
    x_np = _rand(4, 5, 16, seed=11)

    def calls(block, x=None, grad=False, **kw):
        answered = spy_engine(monkeypatch, "encoder_layer_fused")
        x = gt.tensor(x_np) if x is None else x
        if grad:
            out = block(x, **kw)
        else:
            with gt.no_grad():
                out = block(x, **kw)
        monkeypatch.undo()
        return len(answered), out

    block = nn.TransformerBlock(16, 4, 32)
    n, out = calls(block, grad=True)                  # training: the tape records the ops
    assert n == 0 and out.requires_grad
    assert calls(block)[0] == 1                       # train mode without dropout, nothing recorded
    frozen = nn.TransformerBlock(16, 4, 32).eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    assert calls(frozen, grad=True)[0] == 1           # frozen weights, plain input: nothing to record
    n, out = calls(frozen, x=gt.tensor(x_np, requires_grad=True), grad=True)
    assert n == 0 and out.requires_grad               # a gradient wanted for the input
    assert calls(nn.TransformerBlock(16, 4, 32, dropout=0.1))[0] == 0        # dropout active
    assert calls(nn.TransformerBlock(16, 4, 32, dropout=0.1).eval())[0] == 1
    assert calls(nn.TransformerBlock(16, 4, 32, causal=True).eval())[0] == 0
    mask = gt.tensor(np.triu(np.ones((5, 5), bool), 1))
    assert calls(block.eval(), attn_mask=mask)[0] == 0
    assert calls(block, key_padding_mask=gt.tensor(np.zeros((4, 5), bool)))[0] == 0
    tanh = nn.TransformerBlock(16, 4, 32, activation="gelu").eval()
    tanh.ff.act = nn.GELU(approximate="tanh")
    assert calls(tanh)[0] == 0

    class Shifted(nn.Linear):
        def forward(self, x):
            return super().forward(x) + 1.0

    swapped = nn.TransformerBlock(16, 4, 32).eval()
    shifted = Shifted(32, 16)
    shifted.load_state_dict(swapped.ff.fc2.state_dict())
    swapped.ff.fc2 = shifted
    n, out = calls(swapped)
    assert n == 0
    swapped.ff.fc2 = nn.Linear(32, 16)
    swapped.ff.fc2.load_state_dict(shifted.state_dict())
    np.testing.assert_allclose(out.numpy(), calls(swapped)[1].numpy() + 1.0, rtol=1e-5, atol=1e-5)
    peeked = nn.TransformerBlock(16, 4, 32).eval()   # a forward replaced on an instance, as lpm.plots does
    seen = []
    peeked.attn.forward = lambda *a, _f=peeked.attn.forward, **k: seen.append(1) or _f(*a, **k)
    assert calls(peeked)[0] == 0 and seen == [1]
    if B.supports_bfloat16:
        with gt.autocast("bfloat16"):
            assert calls(block)[0] == 0
    with use_mesh(2):
        gt.manual_seed(6)
        sharded = nn.TransformerBlock(16, 4, 32).eval()
        assert calls(sharded, x=gt.tensor(x_np).shard(0))[0] == 0


def test_linear_relu_hands_its_gradient_buffer_to_the_next_layer():
    """``LinearRelu``'s backward returns the ReLU's gradient (held by nobody after the products)
    to the engine's pool, and the next one of that shape is written into it: large gradients
    are not fresh pages at each layer. Values stay those of Linear then ReLU."""
    from gt.backend import B

    shape = (4, 128, 600)          # 1.2 MB of float32: above both engines' pool threshold
    B.clear_pool()
    for seed in (0, 1):
        x_np, w_np, b_np = _rand(4, 128, 64, seed=seed), _rand(600, 64, seed=seed + 2), _rand(600, seed=seed + 4)
        g_np = _rand(*shape, seed=seed + 6)
        got, ref = [], []
        for fused, into in ((True, got), (False, ref)):
            x, w, b = (gt.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
            out = linalg.LinearRelu.apply(x, w, b) if fused else linalg.Linear.apply(x, w, b).relu()
            out.backward(gt.tensor(g_np))
            into += [x.grad.numpy(), w.grad.numpy(), b.grad.numpy()]
            if fused and not gt.cuda.is_available():   # a GPU reuses memory through CUDA's allocator
                # (the plain ReLU's backward below takes the parked buffer out again)
                if B.name == "numpy":    # every large array's memory returns to the block cache
                    assert B.blocks.holds(int(np.prod(shape)) * 4), "parked"
                else:
                    assert any(tuple(k[0]) == shape and v for k, v in B._pool.items()), "parked"
        for a, r, what in zip(got, ref, ("d/dx", "d/dweight", "d/dbias")):
            np.testing.assert_array_equal(a, r, err_msg=f"{what}, call {seed}")
    B.clear_pool()
