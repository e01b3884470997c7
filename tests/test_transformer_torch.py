"""torch's ``nn.Transformer`` family (gt/nn/transformer_torch.py) beside torch: torch's modules
built, their state dicts loaded into gt's (strict, same keys in the same order), and outputs and
the gradients of the inputs and of every parameter compared, with torch's masks; the errors."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import randn, torch_or_skip

E, H, FF, S, T, N = 8, 2, 12, 5, 3, 2
TOL = {"float64": (1e-10, 1e-10), "float32": (2e-5, 2e-5)}
# torch warns about a bool key padding mask beside a float attention mask (the pairing asked for
# here) and about its nested-tensor path (gt has none)
pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
              pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """torch runs on one thread in each test (the reference, and gt's torch engine): at these sizes
    its thread pool only costs time (ten times more on a busy machine); the count is restored."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _pair(torch, name, *args, dtype="float64", **kwargs):
    """torch's module ``name`` (every parameter random, so LayerNorm's ones and zeros count too)
    and gt's, built with the same arguments and loaded from torch's state dict."""
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(*args, **kwargs).to(getattr(torch, dtype))
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.randn(p.shape, dtype=p.dtype) * 0.5 + (1.0 if p.ndim == 1 else 0.0))
    gm = getattr(nn, name)(*args, **kwargs, dtype=getattr(gt, dtype))
    t_keys = [(k, tuple(v.shape)) for k, v in tm.state_dict().items()]
    assert [(k, v.shape) for k, v in gm.state_dict().items()] == t_keys
    gm.load_state_dict(tm.state_dict(), strict=True)
    return tm, gm


def _run_both(torch, tm, gm, arrays, masks=None, dtype="float64", **kwargs):
    """Forward on the same inputs (``masks``: name -> numpy array, given to both), backward of the
    same upstream: output, input gradients and every parameter's gradient compared."""
    rtol, atol = TOL[dtype]
    masks = masks or {}
    t_in = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in arrays]
    g_in = [gt.tensor(a, dtype=getattr(gt, dtype), requires_grad=True) for a in arrays]
    t_out = tm(*t_in, **{k: torch.tensor(v) for k, v in masks.items()}, **kwargs)
    g_out = gm(*g_in, **{k: gt.tensor(v) for k, v in masks.items()}, **kwargs)
    assert g_out.dtype.name == dtype and g_out.shape == tuple(t_out.shape)
    np.testing.assert_allclose(g_out.numpy(), t_out.detach().numpy(), rtol=rtol, atol=atol, err_msg="output")
    up = np.random.default_rng(1).standard_normal(g_out.shape)
    t_out.backward(torch.tensor(up, dtype=t_out.dtype))
    g_out.backward(gt.tensor(up, dtype=g_out.dtype))
    for i in range(len(arrays)):
        np.testing.assert_allclose(g_in[i].grad.numpy(), t_in[i].grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"input {i}")
    t_params = dict(tm.named_parameters())
    g_params = dict(gm.named_parameters())
    assert list(g_params) == list(t_params)
    for name, p in g_params.items():
        assert p.grad is not None and p.grad.dtype.name == dtype, name
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    return g_out, t_out


def _seq(length, batch_first, seed, batched=True):
    """A (length, N, E) input, (N, length, E) batch first, (length, E) unbatched."""
    shape = (length, E) if not batched else (N, length, E) if batch_first else (length, N, E)
    return randn(*shape, seed=seed)


def _padding(length):
    """(N, length) bool key padding mask: the last two keys of the second sequence are padding."""
    mask = np.zeros((N, length), dtype=bool)
    mask[1, -2:] = True
    return mask


def _causal(length):
    return np.triu(np.full((length, length), -np.inf), 1)


# every layout (batch_first, norm_first) with both activations in float64; each layout once in float32
CASES = ([(bf, nf, act, "float64") for bf in (False, True) for nf in (False, True) for act in ("relu", "gelu")]
         + [(False, False, "gelu", "float32"), (False, True, "relu", "float32"), (True, False, "relu", "float32"),
            (True, True, "gelu", "float32")])


@pytest.mark.parametrize("batch_first,norm_first,activation,dtype", CASES, ids=str)
def test_encoder_layer_matches_torch(batch_first, norm_first, activation, dtype):
    torch = torch_or_skip()
    tm, gm = _pair(torch, "TransformerEncoderLayer", E, H, FF, 0.0, activation, dtype=dtype,
                   batch_first=batch_first, norm_first=norm_first)
    masks = {"src_mask": _causal(S).astype(dtype), "src_key_padding_mask": _padding(S)}
    _run_both(torch, tm, gm, [_seq(S, batch_first, 1)], masks, dtype=dtype)


@pytest.mark.parametrize("batch_first,norm_first,activation,dtype", CASES, ids=str)
def test_decoder_layer_matches_torch(batch_first, norm_first, activation, dtype):
    torch = torch_or_skip()
    tm, gm = _pair(torch, "TransformerDecoderLayer", E, H, FF, 0.0, activation, dtype=dtype,
                   batch_first=batch_first, norm_first=norm_first)
    masks = {"tgt_mask": _causal(T).astype(dtype), "tgt_key_padding_mask": _padding(T),
             "memory_key_padding_mask": _padding(S)}
    _run_both(torch, tm, gm, [_seq(T, batch_first, 1), _seq(S, batch_first, 2)], masks, dtype=dtype)


def test_causal_hint_without_padding_and_a_float_memory_mask():
    # is_causal=True without a key padding mask: the causal attention is computed, not the mask read
    torch = torch_or_skip()
    tm, gm = _pair(torch, "TransformerEncoderLayer", E, H, FF, 0.0)
    _run_both(torch, tm, gm, [_seq(S, False, 3)], {"src_mask": _causal(S)}, is_causal=True)
    tm, gm = _pair(torch, "TransformerDecoderLayer", E, H, FF, 0.0, norm_first=True)
    memory_mask = randn(T, S, seed=4)
    _run_both(torch, tm, gm, [_seq(T, False, 1), _seq(S, False, 2)],
              {"tgt_mask": _causal(T) == -np.inf, "memory_mask": memory_mask}, tgt_is_causal=True)


def test_unbatched_inputs_and_a_callable_activation():
    torch = torch_or_skip()
    tm, gm = _pair(torch, "TransformerEncoderLayer", E, H, FF, 0.0, lambda x: x.tanh() * 2)
    _run_both(torch, tm, gm, [_seq(S, False, 5, batched=False)], {"src_key_padding_mask": _padding(S)[1]})
    tm, gm = _pair(torch, "TransformerDecoderLayer", E, H, FF, 0.0, batch_first=True)
    _run_both(torch, tm, gm, [_seq(T, True, 1, batched=False), _seq(S, True, 2, batched=False)],
              {"tgt_mask": _causal(T)})
    tm, gm = _pair(torch, "Transformer", E, H, 1, 1, FF, 0.0)
    _run_both(torch, tm, gm, [_seq(S, False, 3, batched=False), _seq(T, False, 4, batched=False)],
              {"tgt_mask": _causal(T), "src_key_padding_mask": _padding(S)[1]})


def _stack(torch, name, layer_args, num_layers, dtype, final_norm, batch_first):
    """torch's encoder or decoder stack of ``num_layers`` and gt's, loaded from torch's."""
    torch.manual_seed(0)
    t_layer = getattr(torch.nn, f"{name}Layer")(*layer_args, batch_first=batch_first)
    g_layer = getattr(nn, f"{name}Layer")(*layer_args, batch_first=batch_first, dtype=getattr(gt, dtype))
    t_norm = torch.nn.LayerNorm(E) if final_norm else None
    g_norm = nn.LayerNorm(E, dtype=getattr(gt, dtype)) if final_norm else None
    tm = getattr(torch.nn, name)(t_layer, num_layers, t_norm).to(getattr(torch, dtype))
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.randn(p.shape, dtype=p.dtype) * 0.5 + (1.0 if p.ndim == 1 else 0.0))
    gm = getattr(nn, name)(g_layer, num_layers, g_norm)
    assert [(k, v.shape) for k, v in gm.state_dict().items()] == [(k, tuple(v.shape)) for k, v in
                                                                   tm.state_dict().items()]
    gm.load_state_dict(tm.state_dict())
    return tm, gm


@pytest.mark.parametrize("batch_first,dtype", [(False, "float64"), (True, "float32")], ids=str)
def test_encoder_and_decoder_stacks_match_torch(batch_first, dtype):
    torch = torch_or_skip()
    args = (E, H, FF, 0.0, "gelu")
    tm, gm = _stack(torch, "TransformerEncoder", args, 2, dtype, True, batch_first)
    assert gm.layers[0] is not gm.layers[1] and gm.num_layers == 2 and gm.norm is not None
    # the causal mask given without a hint is detected (is_causal=None), as in torch
    _run_both(torch, tm, gm, [_seq(S, batch_first, 1)],
              {"mask": _causal(S).astype(dtype), "src_key_padding_mask": _padding(S)}, dtype=dtype)
    tm, gm = _stack(torch, "TransformerDecoder", args, 2, dtype, False, batch_first)
    assert gm.norm is None
    _run_both(torch, tm, gm, [_seq(T, batch_first, 1), _seq(S, batch_first, 2)],
              {"tgt_mask": _causal(T).astype(dtype), "memory_key_padding_mask": _padding(S)}, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_first,norm_first", [(False, False), (True, True)], ids=str)
def test_transformer_matches_torch(batch_first, norm_first, dtype):
    torch = torch_or_skip()
    tm, gm = _pair(torch, "Transformer", E, H, 2, 1, FF, 0.0, dtype=dtype, batch_first=batch_first,
                   norm_first=norm_first)
    assert (gm.d_model, gm.nhead, gm.batch_first) == (E, H, batch_first)
    masks = {"tgt_mask": nn.Transformer.generate_square_subsequent_mask(T, dtype=getattr(gt, dtype)).numpy(),
             "src_key_padding_mask": _padding(S), "memory_key_padding_mask": _padding(S),
             "tgt_key_padding_mask": _padding(T)}
    _run_both(torch, tm, gm, [_seq(S, batch_first, 1), _seq(T, batch_first, 2)], masks, dtype=dtype)


def test_transformer_initialisation_is_torchs():
    """Every matrix xavier_uniform_ (within its bound, not all equal), LayerNorms ones and zeros, and
    torch's defaults (d_model 512, 8 heads, 6 + 6 layers, 2048 features) in the structure."""
    gt.manual_seed(0)
    model = nn.Transformer(d_model=E, nhead=H, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=FF)
    scaled = []             # the matrices Linear would otherwise draw from its narrower default, / xavier's bound
    for name, p in model.named_parameters():
        v = p.numpy()
        if v.ndim > 1:
            bound = np.sqrt(6.0 / (v.shape[0] + v.shape[1]))
            assert np.abs(v).max() <= bound, name
            if "in_proj" not in name:
                scaled.append((v / bound).ravel())
        elif "norm" in name:
            assert (v == (1.0 if name.endswith("weight") else 0.0)).all(), name
    assert 0.5 < np.concatenate(scaled).std() < 0.65          # U(-1, 1): 0.577; Linear's default: about 0.36
    assert model.encoder.layers[0].linear1.weight.dtype == gt.float32
    layer = nn.TransformerEncoderLayer(E, H)
    assert layer.linear1.out_features == 2048 and layer.dropout.p == 0.1 and layer.activation is F.relu
    assert layer.norm1.eps == 1e-5 and not layer.self_attn.batch_first and not layer.norm_first
    assert nn.TransformerDecoderLayer(E, H, activation="gelu").activation is F.gelu
    assert nn.TransformerEncoderLayer(E, H, bias=False).state_dict().keys() == {
        "self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight", "linear2.weight",
        "norm1.weight", "norm2.weight"}


def test_dropout_in_training_and_eval_matches_torchs_fast_path():
    torch = torch_or_skip()
    tm, gm = _pair(torch, "TransformerEncoderLayer", E, H, FF, 0.5, batch_first=True)
    x = _seq(S, True, 1)
    a, b = gm(gt.tensor(x)).numpy(), gm(gt.tensor(x)).numpy()
    assert not np.allclose(a, b)                                    # dropout draws differ each call
    tm.eval(), gm.eval()
    with torch.no_grad():                                           # torch's fused inference kernels
        expected = tm(torch.tensor(x)).numpy()
    np.testing.assert_allclose(gm(gt.tensor(x)).numpy(), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gm(gt.tensor(x)).numpy(), gm(gt.tensor(x)).numpy())


def test_eval_with_padding_differs_from_torchs_nested_tensor_path_only_at_padded_positions():
    """The documented difference: in eval mode without autograd torch's encoder packs the unpadded
    positions into a nested tensor and returns zeros at the padded ones (then its final norm)."""
    torch = torch_or_skip()
    tm, gm = _stack(torch, "TransformerEncoder", (E, H, FF), 2, "float32", True, True)
    tm.eval(), gm.eval()
    x, pad = _seq(S, True, 1).astype(np.float32), _padding(S)
    with torch.no_grad():
        expected = tm(torch.tensor(x), src_key_padding_mask=torch.tensor(pad)).numpy()
    out = gm(gt.tensor(x), src_key_padding_mask=gt.tensor(pad)).numpy()
    np.testing.assert_allclose(out[~pad], expected[~pad], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(expected[pad], np.broadcast_to(tm.norm.bias.detach().numpy(), (2, E)), atol=1e-6)
    assert not np.allclose(out[pad], expected[pad])


def test_causal_mask_detection_is_torchs():
    """With ``is_causal=None`` the stacks call a mask causal exactly when torch does."""
    torch = torch_or_skip()
    from torch.nn.modules.transformer import _detect_is_causal_mask as torchs
    from gt.nn.transformer_torch import _detect_is_causal_mask as ours
    not_causal = _causal(4)
    not_causal[0, 1] = 0.0
    for mask in (_causal(4), _causal(4).astype(np.float32), _causal(4) == -np.inf, _causal(4) == 0, not_causal,
                 _causal(3), np.stack([_causal(4)] * 2)):
        for hint in (None, True, False):
            assert ours(gt.tensor(mask), hint, 4) == torchs(torch.tensor(mask), hint, 4), (mask, hint)
    assert ours(None, None, 4) is torchs(None, None, 4) is False


def test_generate_square_subsequent_mask_is_torchs():
    torch = torch_or_skip()
    for sz in (0, 1, 4):
        mask = nn.Transformer.generate_square_subsequent_mask(sz)
        assert mask.dtype == gt.float32 and mask.shape == (sz, sz)
        np.testing.assert_array_equal(mask.numpy(), torch.nn.Transformer.generate_square_subsequent_mask(sz).numpy())
    assert nn.Transformer.generate_square_subsequent_mask(2, dtype=gt.float64).dtype == gt.float64
    with pytest.raises(ValueError, match="sz must be a non-negative int, got -1"):
        nn.Transformer.generate_square_subsequent_mask(-1)


def test_bad_arguments_are_refused_with_clear_messages():
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        nn.TransformerEncoderLayer(10, 3)
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        nn.Transformer(d_model=10, nhead=4)
    with pytest.raises(RuntimeError, match="TransformerEncoderLayer: activation should be relu/gelu, not 'tanh'"):
        nn.TransformerEncoderLayer(E, H, activation="tanh")
    with pytest.raises(RuntimeError, match="TransformerDecoderLayer: activation should be relu/gelu, not 'swish'"):
        nn.TransformerDecoderLayer(E, H, activation="swish")
    with pytest.raises(TypeError, match="activation must be 'relu', 'gelu' or a callable, got int: 3"):
        nn.Transformer(E, H, activation=3)
    with pytest.raises(ValueError, match="TransformerEncoder: num_layers must be a non-negative int, got 1.5"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, FF), 1.5)
    layer = nn.TransformerEncoderLayer(E, H, FF)
    with pytest.raises(ValueError, match=r"src must be \(S, E\), .* d_model = 8, got shape \(5, 2, 6\)"):
        layer(gt.randn(5, 2, 6))
    with pytest.raises(RuntimeError, match="need attn_mask if specifying the is_causal hint"):
        layer(gt.randn(5, 2, E), is_causal=True)
    model = nn.Transformer(E, H, 1, 1, FF, batch_first=True)
    with pytest.raises(RuntimeError, match=r"batch number of src and tgt must be equal, got src of shape "
                                           r"\(2, 5, 8\) and tgt of shape \(3, 3, 8\)"):
        model(gt.randn(2, 5, E), gt.randn(3, 3, E))
    with pytest.raises(RuntimeError, match=r"feature number of src and tgt must be equal to d_model = 8"):
        model(gt.randn(2, 5, E), gt.randn(2, 3, 4))
