"""``F.pad`` with its padding layers (gt/nn/padding.py) and torch's ``nn.MultiheadAttention``
(gt/nn/multihead_attention.py), run beside torch: values, dtypes and gradients, and state dicts
saved by torch loaded into gt."""

import math

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import check_grad, compare_with_torch, randn, torch_or_skip

MODES = ("constant", "reflect", "replicate", "circular")
# (input shape, pad): shapes torch's non-constant modes accept for that pad length
PADS = [((2, 3, 5), (-1, 3)), ((2, 5), (3, -2)), ((1, 2, 4, 5), (2, -1, -1, 1)), ((1, 1, 3, 4, 3), (1, 1, 2, 0, 0, 2))]


# ---- F.pad ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,pad", PADS)
def test_pad_matches_torch(mode, shape, pad):
    torch = torch_or_skip()
    compare_with_torch(lambda x: F.pad(x, pad, mode=mode), lambda x: torch.nn.functional.pad(x, pad, mode=mode),
                       randn(*shape, seed=len(pad)), dtype="float64")


@pytest.mark.parametrize("mode", MODES)
def test_pad_float32_and_the_pad_layers(mode):
    torch = torch_or_skip()
    x = randn(1, 2, 4, 5, seed=3)
    compare_with_torch(lambda t: F.pad(t, (2, 1, 1, 3), mode=mode),
                       lambda t: torch.nn.functional.pad(t, (2, 1, 1, 3), mode=mode), x, dtype="float32")
    name = {"constant": "ZeroPad", "reflect": "ReflectionPad", "replicate": "ReplicationPad",
            "circular": "CircularPad"}[mode]
    for dims, padding in ((1, (2, 1)), (2, (1, 0, 2, 1)), (2, 1), (3, (1, 1, 0, 1, 1, 0))):
        g_layer, t_layer = getattr(nn, f"{name}{dims}d")(padding), getattr(torch.nn, f"{name}{dims}d")(padding)
        shape = x.shape[:2] + (2, 3, 4)[3 - dims:] if dims < 3 else (1, 2, 2, 3, 4)
        a = randn(*shape, seed=dims)
        np.testing.assert_allclose(g_layer(gt.tensor(a)).numpy(), t_layer(torch.tensor(a)).numpy())
        assert g_layer.padding == t_layer.padding and repr(g_layer) == repr(t_layer), (repr(g_layer), repr(t_layer))


def test_constant_pad_layer_and_value():
    torch = torch_or_skip()
    a = randn(2, 3, 4)
    for g, t in ((nn.ConstantPad1d(2, 3.5), torch.nn.ConstantPad1d(2, 3.5)),
                 (nn.ConstantPad2d((1, 0, 2, 1), -1.0), torch.nn.ConstantPad2d((1, 0, 2, 1), -1.0))):
        np.testing.assert_array_equal(g(gt.tensor(a)).numpy(), t(torch.tensor(a)).numpy())
        assert repr(g) == repr(t)
    out = F.pad(gt.tensor(a, dtype=gt.float32), (1, 1), value=float("nan"))
    assert out.dtype == gt.float32 and np.isnan(out.numpy()[..., 0]).all()
    assert np.isinf(F.pad(gt.tensor(a), (0, 1), value=-math.inf).numpy()[..., -1]).all()


@pytest.mark.parametrize("mode", MODES)
def test_pad_finite_differences(mode):
    # every dim padded, the first too (sharded with GT_DEVICES=4): torch's modes pad only the last 3
    check_grad(lambda x: F.pad(x, (2, 1, 0, -1, 1, 1), mode=mode), randn(4, 2, 3, seed=5))


def test_pad_is_more_general_than_torch():
    """Any number of trailing dims, inputs of any rank, in every mode: the same as torch's pads of
    the dims one at a time on a reshaped input."""
    torch = torch_or_skip()
    tf = torch.nn.functional
    x = randn(4, 2, 3, 4, seed=7)
    for mode in ("reflect", "replicate", "circular"):
        g = F.pad(gt.tensor(x), (1, 2), mode=mode).numpy()                    # 4-D input, pad of 2
        t = tf.pad(torch.tensor(x).reshape(-1, 4), (1, 2), mode=mode).reshape(4, 2, 3, 7)
        np.testing.assert_array_equal(g, t.numpy())
        g = F.pad(gt.tensor(x), (1, 0, 0, 1, 1, 1, 1, 0), mode=mode).numpy()   # all four dims
        t = torch.tensor(x)
        for dim, (left, right) in zip((3, 2, 1, 0), ((1, 0), (0, 1), (1, 1), (1, 0))):
            moved = t.movedim(dim, -1)                                          # (..., n): a 2-D pad of the rows
            t = tf.pad(moved.reshape(-1, moved.shape[-1]), (left, right), mode=mode)
            t = t.reshape(moved.shape[:-1] + (-1,)).movedim(-1, dim)
        np.testing.assert_array_equal(g, t.numpy())
        v = F.pad(gt.arange(4.0), (2, 1), mode=mode).tolist()                  # 1-D: torch refuses
        assert v == {"reflect": [2, 1, 0, 1, 2, 3, 2], "replicate": [0, 0, 0, 1, 2, 3, 3],
                     "circular": [2, 3, 0, 1, 2, 3, 0]}[mode]


def test_pad_edge_cases():
    torch = torch_or_skip()
    tf = torch.nn.functional
    for dtype, value in (("int64", 7), ("int64", 1.5), ("bool", 1)):
        a = np.array([[1, 0, 2]]).astype(dtype)
        g, t = F.pad(gt.tensor(a), (1, 2), value=value), tf.pad(torch.tensor(a), (1, 2), value=value)
        assert g.dtype.name == str(t.dtype).replace("torch.", "") and g.tolist() == t.tolist()
    e = np.zeros((0, 3, 4))                                                     # empty batch
    for mode in MODES:
        assert F.pad(gt.tensor(e), (1, 1), mode=mode).shape == tuple(tf.pad(torch.tensor(e), (1, 1), mode=mode).shape)
    assert F.pad(gt.zeros(2, 0), (1, 2)).shape == (2, 3)                        # constant pads an empty dim
    s = gt.tensor(2.0, requires_grad=True)
    out = F.pad(s, ())                                                           # 0-d, nothing to pad: a copy
    assert out.shape == () and out is not s
    x = gt.tensor(randn(2, 4), requires_grad=True)
    y = F.pad(x, (0, 0))
    assert y is not x and np.array_equal(y.numpy(), x.numpy())
    z = F.pad(x, (-1, -2))                                                       # crop only
    assert z.shape == (2, 1)
    z.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0, 0.0]] * 2
    assert F.pad(x, [1, 1]).shape == (2, 6) and F.pad(x, (np.int64(1), 0)).shape == (2, 5)
    for mode in MODES:                                                           # a crop is a copy, not a view
        plain = gt.tensor(randn(2, 4))
        y = F.pad(plain, (-1, 0), mode=mode)
        y.add_(1.0)
        np.testing.assert_array_equal(plain.numpy(), randn(2, 4))
        ints = F.pad(gt.tensor([[1, 2, 3]]), (2, 1), mode=mode)                 # integer inputs, every mode
        want = {"constant": [0, 0, 1, 2, 3, 0], "reflect": [3, 2, 1, 2, 3, 2], "replicate": [1, 1, 1, 2, 3, 3],
                "circular": [2, 3, 1, 2, 3, 1]}[mode]
        assert ints.dtype == gt.int64 and ints.tolist() == [want]


def test_pad_keeps_the_shard_of_a_dim_it_does_not_pad():
    x = gt.randn(4, 3, 5)                                      # Shard(0) where GT_DEVICES gives a mesh
    for mode in MODES:
        assert F.pad(x, (1, 2, 1, 0), mode=mode).placement == x.placement
        np.testing.assert_array_equal(F.pad(x, (1, 0, 0, 0, 1, 1), mode=mode).numpy(),
                                      F.pad(gt.tensor(x.numpy()), (1, 0, 0, 0, 1, 1), mode=mode).numpy())
    assert F.pad([[1.0, 2.0]], (1, 0)).tolist() == [[0.0, 1.0, 2.0]]


def test_pad_errors():
    x = gt.randn(2, 3)
    with pytest.raises(ValueError, match="divisible by 2"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="padding length 6 is more than two times the 2 dimension"):
        F.pad(x, (1,) * 6)
    with pytest.raises(TypeError, match="expected a tuple of ints"):
        F.pad(x, (1.5, 1))
    with pytest.raises(TypeError, match="expected a tuple of ints"):
        F.pad(x, 2)
    with pytest.raises(NotImplementedError, match="unrecognised padding mode 'mirror'"):
        F.pad(x, (1, 1), mode="mirror")
    with pytest.raises(ValueError, match="mode 'reflect' doesn't take a value"):
        F.pad(x, (1, 1), mode="reflect", value=0.0)
    with pytest.raises(ValueError, match=r"reflect padding \(3, 0\) must be less than the size 3 of dim 1"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="wraps round the 2 element"):
        F.pad(x, (-1, 3), mode="circular")
    with pytest.raises(ValueError, match=r"negative pads \(-2, -2\) remove more than the 3 element"):
        F.pad(x, (-2, -2))
    with pytest.raises(ValueError, match="replicate padding needs a non-empty dim 1"):
        F.pad(gt.zeros(2, 0), (1, 0), mode="replicate")
    with pytest.raises(TypeError, match=r"ReflectionPad2d: padding must be an int or a tuple of 4 ints, got \(1, 2\)"):
        nn.ReflectionPad2d((1, 2))
    with pytest.raises(TypeError, match="ZeroPad1d: padding must be"):
        nn.ZeroPad1d(True)


# ---- nn.MultiheadAttention ---------------------------------------------------------------
E, H, L, S, N = 8, 2, 4, 5, 3


def _pair(torch, dtype="float64", **kwargs):
    """A torch MultiheadAttention (random biases, so they count) and a gt one loaded from its
    state dict."""
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(E, H, **kwargs).to(getattr(torch, dtype))
    with torch.no_grad():
        for name, p in tm.named_parameters():
            if "bias" in name:
                p.normal_()
    gm = nn.MultiheadAttention(E, H, dtype=getattr(gt, dtype), **kwargs)
    t_keys = [(k, tuple(v.shape)) for k, v in tm.state_dict().items()]
    assert [(k, v.shape) for k, v in gm.state_dict().items()] == t_keys
    gm.load_state_dict(tm.state_dict())
    return tm, gm


def _run_both(torch, tm, gm, arrays, masks=None, dtype="float64", tol=None, **kwargs):
    """forward on the same inputs, backward of the same upstream: outputs, weights, input and
    parameter gradients compared."""
    masks = masks or {}
    rtol, atol = tol or ((1e-9, 1e-12) if dtype == "float64" else (1e-5, 1e-6))
    t_in = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in arrays]
    g_in = [gt.tensor(a, dtype=getattr(gt, dtype), requires_grad=True) for a in arrays]
    if len(arrays) == 1:                      # self-attention: query is key is value
        t_in, g_in = t_in * 3, g_in * 3
    t_out, t_w = tm(*t_in, **{k: torch.tensor(v) for k, v in masks.items()}, **kwargs)
    g_out, g_w = gm(*g_in, **masks, **kwargs)
    assert g_out.dtype.name == dtype and g_out.shape == tuple(t_out.shape)
    np.testing.assert_allclose(g_out.numpy(), t_out.detach().numpy(), rtol=rtol, atol=atol)
    assert (g_w is None) == (t_w is None)
    if t_w is not None:
        assert g_w.shape == tuple(t_w.shape)
        np.testing.assert_allclose(g_w.numpy(), t_w.detach().numpy(), rtol=rtol, atol=atol)
    up = np.random.default_rng(1).standard_normal(g_out.shape)
    t_out.backward(torch.tensor(up, dtype=t_out.dtype))
    g_out.backward(gt.tensor(up, dtype=g_out.dtype))
    for i in range(len(arrays)):
        np.testing.assert_allclose(g_in[i].grad.numpy(), t_in[i].grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"input {i}")
    t_params = dict(tm.named_parameters())
    for name, p in gm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    return g_out, g_w


def _inputs(kdim=E, vdim=E, batch_first=False, batched=True):
    shapes = [(L, N, E), (S, N, kdim), (S, N, vdim)]
    if batch_first:
        shapes = [(s[1], s[0], s[2]) for s in shapes]
    if not batched:
        shapes = [(s[0], s[2]) for s in shapes]
    return [randn(*s, seed=i) for i, s in enumerate(shapes)]


CONFIGS = {
    "packed": {},
    "kdim and vdim": dict(kdim=3, vdim=5),
    "no bias": dict(bias=False),
    "bias_kv and zero_attn": dict(add_bias_kv=True, add_zero_attn=True),
    "batch_first": dict(batch_first=True),
}


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("config", CONFIGS)
def test_mha_state_dict_from_torch_same_outputs_and_gradients(config, need_weights):
    torch = torch_or_skip()
    kwargs = CONFIGS[config]
    tm, gm = _pair(torch, **kwargs)
    arrays = _inputs(kwargs.get("kdim", E), kwargs.get("vdim", E), kwargs.get("batch_first", False))
    rng = np.random.default_rng(2)
    kpm = rng.random((N, S)) < 0.4
    kpm[:, 0] = False                                   # every query keeps a key
    _run_both(torch, tm, gm, arrays, {"key_padding_mask": kpm}, need_weights=need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_self_attention_masks_float32(need_weights):
    torch = torch_or_skip()
    tm, gm = _pair(torch, "float32")
    x = [randn(L, N, E, seed=4)]
    rng = np.random.default_rng(3)
    bool_mask = np.triu(np.ones((L, L), dtype=bool), 1)                   # True = may NOT attend
    float_mask = rng.standard_normal((N * H, L, L))                        # 3-D: one per batch and head
    _run_both(torch, tm, gm, x, {"attn_mask": bool_mask}, "float32", need_weights=need_weights)
    _run_both(torch, tm, gm, x, {"attn_mask": float_mask.astype(np.float32),
                                 "key_padding_mask": rng.standard_normal((N, L)).astype(np.float32)},
              "float32", need_weights=need_weights, average_attn_weights=False)


def test_mha_unbatched_is_causal_and_cross_attention_key_is_value():
    torch = torch_or_skip()
    tm, gm = _pair(torch)
    causal = np.triu(np.ones((L, L), dtype=bool), 1)
    x = [randn(L, E, seed=5)]
    _run_both(torch, tm, gm, x, {"attn_mask": causal}, need_weights=False, is_causal=True)
    # the hint wins over the mask itself where torch lets it (no padding mask, no weights)
    _run_both(torch, tm, gm, x, {"attn_mask": np.zeros((L, L), dtype=bool)}, need_weights=False, is_causal=True)
    _run_both(torch, tm, gm, x, {"attn_mask": causal, "key_padding_mask": np.array([False, True, False, False])},
              is_causal=True)
    _, w = _run_both(torch, tm, gm, _inputs(batched=False), {"attn_mask": np.zeros((H, L, S))},
                     average_attn_weights=False)
    assert w.shape == (H, L, S)
    tb, gb = _pair(torch, batch_first=True)                 # unbatched inputs ignore batch_first, as torch's
    _run_both(torch, tb, gb, _inputs(batched=False), need_weights=False)
    q, kv = randn(L, N, E, seed=6), randn(S, N, E, seed=7)
    tq, tkv = torch.tensor(q, requires_grad=True), torch.tensor(kv, requires_grad=True)
    gq, gkv = gt.tensor(q, requires_grad=True), gt.tensor(kv, requires_grad=True)
    t_out, _ = tm(tq, tkv, tkv)                            # key is value: one product for both
    g_out, _ = gm(gq, gkv, gkv)
    np.testing.assert_allclose(g_out.numpy(), t_out.detach().numpy(), rtol=1e-9)
    t_out.sum().backward()
    g_out.sum().backward()
    np.testing.assert_allclose(gkv.grad.numpy(), tkv.grad.numpy(), rtol=1e-9)


@pytest.mark.filterwarnings("ignore:invalid value encountered")   # softmax over no key: NaN, as torch's
def test_mha_eval_dropout_and_fully_masked_queries():
    torch = torch_or_skip()
    tm, gm = _pair(torch, dropout=0.5)
    tm.eval(), gm.eval()                                   # dropout off: the same numbers
    arrays = _inputs()
    _run_both(torch, tm, gm, arrays)
    tm.train(), gm.train()
    kpm = np.zeros((N, S), dtype=bool)
    kpm[0] = True                                          # batch 0 has no key: torch's NaN / zeros
    g_out, _ = gm(*(gt.tensor(a) for a in arrays), key_padding_mask=kpm)
    assert np.isnan(g_out.numpy()[:, 0]).all() and np.isfinite(g_out.numpy()[:, 1:]).all()
    gm.dropout = 0.0
    g_out, _ = gm(*(gt.tensor(a) for a in arrays), key_padding_mask=kpm, need_weights=False)
    tm.dropout = 0.0
    t_out, _ = tm(*(torch.tensor(a) for a in arrays), key_padding_mask=torch.tensor(kpm), need_weights=False)
    np.testing.assert_allclose(g_out.numpy(), t_out.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_mha_dropout_in_training_drops_weights():
    gm = nn.MultiheadAttention(E, H, dropout=0.5, dtype=gt.float64)
    x = gt.tensor(randn(L, N, E))
    gt.manual_seed(0)
    _, dropped = gm(x, x, x, average_attn_weights=False)         # the weights after dropout, as torch's
    gm.eval()
    _, w = gm(x, x, x, average_attn_weights=False)
    np.testing.assert_allclose(w.numpy().sum(-1), 1.0)
    dropped, w = dropped.numpy(), w.numpy()
    kept = dropped != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(dropped[kept], 2 * w[kept])       # survivors scaled by 1 / (1 - p)
    assert gm(x, x, x, need_weights=False)[0].shape == (L, N, E)


def test_mha_initialisation_is_torchs():
    gm = nn.MultiheadAttention(16, 4)
    w = gm.in_proj_weight.numpy()
    bound = math.sqrt(6.0 / (16 + 48))                     # xavier_uniform_ of (3E, E)
    assert w.shape == (48, 16) and w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert not gm.in_proj_bias.numpy().any() and not gm.out_proj.bias.numpy().any()
    assert np.abs(gm.out_proj.weight.numpy()).max() <= 1 / math.sqrt(16)   # Linear's own
    sep = nn.MultiheadAttention(16, 4, kdim=8, vdim=4, bias=False, add_bias_kv=True)
    assert sep.in_proj_weight is None and sep.k_proj_weight.shape == (16, 8) and sep.v_proj_weight.shape == (16, 4)
    assert sep.in_proj_bias is None and sep.out_proj.bias is None and sep.bias_k.shape == (1, 1, 16)
    assert isinstance(sep.out_proj, nn.Linear) and "q_proj_weight" in dict(sep.named_parameters())
    assert "batch_first=False" in repr(sep)


def test_mha_errors():
    gm = nn.MultiheadAttention(E, H)
    x = gt.randn(L, N, E)
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="num_heads must be a positive int, got 0"):
        nn.MultiheadAttention(8, 0)
    with pytest.raises(ValueError, match="dropout has to be between 0 and 1"):
        nn.MultiheadAttention(8, 2, dropout=1.5)
    with pytest.raises(ValueError, match="query should be unbatched 2-D"):
        gm(gt.randn(1, L, N, E), x, x)
    with pytest.raises(ValueError, match="expected key and value to be 3-D"):
        gm(x, gt.randn(S, E), gt.randn(S, E))
    with pytest.raises(ValueError, match="end in 8, 6 and 8 features"):
        gm(x, gt.randn(S, N, 6), gt.randn(S, N, E))
    with pytest.raises(ValueError, match="must agree in batch size"):
        gm(x, gt.randn(S, N + 1, E), gt.randn(S, N + 1, E))
    with pytest.raises(RuntimeError, match=r"the shape of the 2D attn_mask is \(4, 4\), but should be \(4, 5\)"):
        gm(x, gt.randn(S, N, E), gt.randn(S, N, E), attn_mask=np.zeros((L, L), dtype=bool))
    with pytest.raises(RuntimeError, match=r"3D attn_mask .* should be \(6, 4, 4\)"):
        gm(x, x, x, attn_mask=np.zeros((N, L, L)))
    with pytest.raises(ValueError, match="expected key_padding_mask of shape"):
        gm(x, x, x, key_padding_mask=np.zeros((N, L + 1), dtype=bool))
    with pytest.raises(ValueError, match="expected key_padding_mask to be None or 2-D"):
        gm(x, x, x, key_padding_mask=np.zeros(L, dtype=bool))
    with pytest.raises(TypeError, match="only bool and floating types of attn_mask"):
        gm(x, x, x, attn_mask=np.zeros((L, L), dtype=np.int64))
    with pytest.raises(RuntimeError, match="need attn_mask if specifying the is_causal hint"):
        gm(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match=r"\(num_heads, L, S\) = \(2, 4, 4\)"):
        gm(gt.randn(L, E), gt.randn(L, E), gt.randn(L, E), attn_mask=np.zeros((3, L, L)))
