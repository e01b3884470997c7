"""Attention and torch's transformer modules beside torch 2.13 where differential testing found gt
apart: ``F.scaled_dot_product_attention`` of views whose last axis is strided (the torch engine's
flash-attention call read them as contiguous), of no keys at all (S == 0), of a query whose
scores are all -inf without a mask (the numpy engine's kernel gave NaN and spread it through the
gradients), with dropout and a query whose keys are all masked (NaN, also in
``MultiheadAttention`` training), ``enable_gqa`` without a heads axis; torch's fast-path flags
``activation_relu_or_gelu`` and ``use_nested_tensor``; ``generate_square_subsequent_mask`` of a
numpy or tensor integer."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import randn, torch_or_skip


def _sdpa_both(torch, arrays, make, dtype="float64", **kwargs):
    """Output and the gradients of the leaves ``make`` builds (lib, arrays, dtype) -> (leaves, q, k, v),
    in gt and in torch, for one random upstream gradient: [(gt's, torch's), ...]."""
    pairs = []
    for lib, fn in ((gt, F.scaled_dot_product_attention), (torch, torch.nn.functional.scaled_dot_product_attention)):
        leaves, q, k, v = make(lib, arrays, getattr(lib, dtype))
        out = fn(q, k, v, **kwargs)
        up = np.random.default_rng(7).standard_normal(tuple(out.shape))
        out.backward(lib.tensor(up, dtype=getattr(lib, dtype)))
        pairs.append([out.detach().numpy()] + [t.grad.numpy() for t in leaves])
    return list(zip(*pairs))


def _transposed(lib, arrays, dtype):
    """q, k, v as ``x.transpose(-1, -2)`` of (..., E, T) leaves: the last axis strided."""
    leaves = [lib.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)), dtype=dtype, requires_grad=True)
              for a in arrays]
    return (leaves, *(t.transpose(-1, -2) for t in leaves))


def _heads_of_wide(lib, arrays, dtype):
    """q contiguous, k a slice of a wider last axis, v a transposed view."""
    q = lib.tensor(arrays[0], dtype=dtype, requires_grad=True)
    wide = lib.tensor(np.concatenate([arrays[1], np.ones(arrays[1].shape[:-1] + (3,))], -1), dtype=dtype,
                      requires_grad=True)
    vt = lib.tensor(np.ascontiguousarray(np.swapaxes(arrays[2], -1, -2)), dtype=dtype, requires_grad=True)
    return [q, wide, vt], q, wide[..., :arrays[1].shape[-1]], vt.transpose(-1, -2)


@pytest.mark.parametrize("make", [_transposed, _heads_of_wide])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sdpa_of_strided_views_is_torchs(make, causal, dtype):
    torch = torch_or_skip()
    arrays = [randn(2, 3, 5, 4, seed=1), randn(2, 3, 6, 4, seed=2), randn(2, 3, 6, 4, seed=3)]
    tol = 1e-10 if dtype == "float64" else 2e-5
    for name, (g, t) in zip(("out", "q", "k", "v"), _sdpa_both(torch, arrays, make, dtype, is_causal=causal)):
        np.testing.assert_allclose(g, t, rtol=tol, atol=tol, err_msg=name)


def _plain(lib, arrays, dtype):
    leaves = [lib.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    return (leaves, *leaves)


@pytest.mark.parametrize("kwargs", [{}, {"is_causal": True}, {"attn_mask": np.zeros((3, 0), bool)},
                                    {"attn_mask": np.zeros((3, 0))}])
def test_sdpa_without_keys_gives_zeros_as_torch(kwargs):
    torch = torch_or_skip()
    arrays = [randn(2, 2, 3, 4, seed=1), np.zeros((2, 2, 0, 4)), np.zeros((2, 2, 0, 5))]
    for lib in (gt, torch):
        mask = kwargs.get("attn_mask")
        kw = dict(kwargs, attn_mask=lib.tensor(mask)) if mask is not None else kwargs
        fn = F.scaled_dot_product_attention if lib is gt else torch.nn.functional.scaled_dot_product_attention
        leaves, q, k, v = _plain(lib, arrays, lib.float64)
        out = fn(q, k, v, **kw)
        out.sum().backward()
        assert tuple(out.shape) == (2, 2, 3, 5)
        assert not out.detach().numpy().any() and not leaves[0].grad.numpy().any()
        assert tuple(leaves[1].grad.shape) == (2, 2, 0, 4)


def test_mha_over_no_keys_is_torchs():
    torch = torch_or_skip()
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(4, 2, dtype=torch.float64)
    with torch.no_grad():
        tm.out_proj.bias.copy_(torch.arange(4.0))
    gm = nn.MultiheadAttention(4, 2, dtype=gt.float64)
    gm.load_state_dict(tm.state_dict())
    q, kv = randn(3, 2, 4, seed=1), np.zeros((0, 2, 4))
    t_out = tm(torch.tensor(q), torch.tensor(kv), torch.tensor(kv), need_weights=False)[0]
    g_out = gm(gt.tensor(q), gt.tensor(kv), gt.tensor(kv), need_weights=False)[0]
    np.testing.assert_allclose(g_out.numpy(), t_out.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_query_with_every_score_minus_inf_gets_zeros_as_torch(dtype, causal):
    """An infinite query whose scores are all -inf, without a mask: torch's kernels give that
    query zeros, and the values finite gradients (the numpy engine's kernel gave NaN there, and
    NaN in every key's and value's gradient)."""
    torch = torch_or_skip()
    q, k, v = randn(1, 2, 3, 4, seed=1), randn(1, 2, 3, 4, seed=2), randn(1, 2, 3, 4, seed=3)
    k[..., 0] = np.abs(k[..., 0]) + 0.5
    q[0, 0, 1, 0] = -np.inf
    tol = 1e-10 if dtype == "float64" else 2e-5
    with np.errstate(invalid="ignore"):
        pairs = _sdpa_both(torch, [q, k, v], _plain, dtype, is_causal=causal)
    for name, (g, t) in zip(("out", "q", "k", "v"), pairs):
        assert np.isfinite(t).all() or name in ("q", "k"), name   # -inf * 0 in q's and k's products: NaN
        np.testing.assert_allclose(g, t, rtol=tol, atol=tol, err_msg=name, equal_nan=True)


@pytest.mark.parametrize("activation, flag", [("relu", 1), ("gelu", 2), ("callable_relu", 1), ("module_gelu", 2),
                                              ("silu", 0)])
def test_encoder_layer_activation_flag_is_torchs(activation, flag):
    torch = torch_or_skip()

    def act(lib):
        return {"callable_relu": lib.nn.functional.relu, "module_gelu": lib.nn.GELU(),
                "silu": lib.nn.functional.silu}.get(activation, activation)
    t_layer = torch.nn.TransformerEncoderLayer(4, 2, 8, activation=act(torch))
    g_layer = nn.TransformerEncoderLayer(4, 2, 8, activation=act(gt))
    assert g_layer.activation_relu_or_gelu == t_layer.activation_relu_or_gelu == flag


def test_encoder_use_nested_tensor_is_false():
    """gt has no nested-tensor path: the flag torch sets where it would take one is False (as
    torch's where its conditions fail, here a sequence-first layer)."""
    torch = torch_or_skip()
    with pytest.warns(UserWarning):
        t_enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(4, 2, 8), 2)
    g_enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8), 2)
    assert g_enc.use_nested_tensor is t_enc.use_nested_tensor is False
    assert g_enc.enable_nested_tensor is t_enc.enable_nested_tensor is True


def test_sdpa_grouped_query_attention_needs_a_heads_axis_as_torch():
    torch = torch_or_skip()
    q, kv = randn(3, 4, seed=1), randn(5, 4, seed=2)
    with pytest.raises(IndexError):
        torch.nn.functional.scaled_dot_product_attention(torch.tensor(q), torch.tensor(kv), torch.tensor(kv),
                                                         enable_gqa=True)
    with pytest.raises(IndexError, match="heads axis"):
        F.scaled_dot_product_attention(gt.tensor(q), gt.tensor(kv), gt.tensor(kv), enable_gqa=True)
    # with one, 3-D inputs group as torch's
    q3, kv3 = randn(4, 3, 2, seed=3), randn(2, 5, 2, seed=4)
    t_out = torch.nn.functional.scaled_dot_product_attention(torch.tensor(q3), torch.tensor(kv3), torch.tensor(kv3),
                                                             enable_gqa=True)
    g_out = F.scaled_dot_product_attention(gt.tensor(q3), gt.tensor(kv3), gt.tensor(kv3), enable_gqa=True)
    np.testing.assert_allclose(g_out.numpy(), t_out.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bool_mask", [True, False])
def test_sdpa_with_dropout_and_a_query_without_keys_is_torchs(bool_mask):
    """The dropout path (separate ops) gave NaN for a query whose keys are all masked, and NaN
    gradients; torch gives zeros. A dropout probability of 1e-12 keeps every weight, so the
    values compare."""
    torch = torch_or_skip()
    mask = np.ones((3, 5), bool) if bool_mask else np.zeros((3, 5))
    mask[1] = False if bool_mask else -np.inf
    arrays = [randn(2, 2, 3, 4, seed=1), randn(2, 2, 5, 4, seed=2), randn(2, 2, 5, 3, seed=3)]
    results = []
    for lib in (gt, torch):
        fn = F.scaled_dot_product_attention if lib is gt else torch.nn.functional.scaled_dot_product_attention
        leaves, q, k, v = _plain(lib, arrays, lib.float64)
        out = fn(q, k, v, attn_mask=lib.tensor(mask), dropout_p=1e-12)
        out.backward(lib.tensor(randn(2, 2, 3, 3, seed=4)))
        results.append([out.detach().numpy()] + [t.grad.numpy() for t in leaves])
    for name, g, t in zip(("out", "q", "k", "v"), *results):
        assert np.isfinite(g).all(), name
        np.testing.assert_allclose(g, t, rtol=1e-10, atol=1e-10, err_msg=name)


def test_mha_training_dropout_over_a_fully_padded_sequence_is_torchs():
    torch = torch_or_skip()
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(4, 2, dropout=1e-12, batch_first=True, dtype=torch.float64)
    gm = nn.MultiheadAttention(4, 2, dropout=1e-12, batch_first=True, dtype=gt.float64)
    gm.load_state_dict(tm.state_dict())
    x, pad = randn(2, 3, 4, seed=1), np.zeros((2, 3), bool)
    pad[0] = True
    outs = []
    for lib, m in ((gt, gm), (torch, tm)):
        xt = lib.tensor(x, requires_grad=True)
        out = m(xt, xt, xt, key_padding_mask=lib.tensor(pad), need_weights=False)[0]
        (out * out).sum().backward()
        outs.append((out.detach().numpy(), xt.grad.numpy(), m.in_proj_weight.grad.numpy()))
    for name, g, t in zip(("out", "x", "in_proj_weight"), *outs):
        np.testing.assert_allclose(g, t, rtol=1e-10, atol=1e-10, err_msg=name)


def test_square_subsequent_mask_takes_any_integer_as_torch():
    torch = torch_or_skip()
    want = torch.nn.Transformer.generate_square_subsequent_mask(3).numpy()
    for sz in (np.int64(3), np.int32(3)):
        np.testing.assert_array_equal(nn.Transformer.generate_square_subsequent_mask(sz).numpy(), want)
    np.testing.assert_array_equal(torch.nn.Transformer.generate_square_subsequent_mask(torch.tensor(3)).numpy(), want)
    np.testing.assert_array_equal(nn.Transformer.generate_square_subsequent_mask(gt.tensor(3)).numpy(), want)
    for sz in (3.0, True):
        with pytest.raises(TypeError):
            torch.nn.Transformer.generate_square_subsequent_mask(sz)
        with pytest.raises(TypeError, match="sz must be an int"):
            nn.Transformer.generate_square_subsequent_mask(sz)
