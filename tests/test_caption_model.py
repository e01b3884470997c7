"""The Pixel LLM (lpm.caption.model): logits and the gradient of every parameter against a PyTorch
reference of the same architecture with the same weights (ViT encoder, a cross-attention width
projection, the LPM encoder), the cached decoder against the uncached one, the cross-attention
maps, and the checks on bad configurations and inputs."""

import math

import numpy as np
import pytest

import gt
from gt import nn
from lpm.caption.model import LanguageDecoder, PixelLLM, PixelLLMConfig, VisionEncoder, create_pixel_llm
from lpm.model import sinusoidal_encoding

# 8x12 images in 4x4 patches (6 patches), 11 tokens: small, every size distinct. The text width
# differs from the image width (a projection), and only the last of two blocks cross-attends.
TINY = dict(image_size=(8, 12), patch_size=4, vision_embed_dim=12, vision_num_layers=1, vision_num_heads=2,
            vocab_size=11, text_embed_dim=16, text_num_layers=2, text_num_heads=2, ff_mult=2, max_seq_len=7,
            num_cross_attention_layers=1)
LPM = dict(encoder="lpm", frame_size=6, seq_len=5, lpm_embed_dim=8, lpm_num_layers=1, lpm_num_heads=2,
           vocab_size=11, text_embed_dim=8, text_num_layers=1, text_num_heads=2, ff_mult=2, max_seq_len=7)


def tiny(seed=0, **overrides):
    gt.manual_seed(seed)
    return create_pixel_llm(**{**TINY, **overrides})


def inputs(n=3, length=6, shape=(8, 12), seed=1):
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape), dtype=np.float32), rng.integers(0, TINY["vocab_size"], (n, length))


# ---- the PyTorch reference ---------------------------------------------------------------------
def torch_reference(torch, cfg):
    """The same network as a PyTorch user writes it, with PixelLLM's state-dict names."""
    tnn, F = torch.nn, torch.nn.functional

    def attention(proj, x, src, H, causal):
        (B, L, D), S = x.shape, src.shape[1]
        q = proj["q_proj"](x).view(B, L, H, D // H).transpose(1, 2)
        k, v = (proj[n](src).view(B, S, H, D // H).transpose(1, 2) for n in ("k_proj", "v_proj"))
        scores = q @ k.transpose(-2, -1) / math.sqrt(D // H)
        if causal:
            scores = scores.masked_fill(torch.ones(L, S, dtype=torch.bool).triu(1), float("-inf"))
        return proj["out_proj"]((scores.softmax(-1) @ v).transpose(1, 2).reshape(B, L, D))

    class Block(tnn.Module):
        def __init__(self, D, H, F_, causal=False, cross=False):
            super().__init__()
            self.H, self.causal, self.cross = H, causal, cross
            names = ("q_proj", "k_proj", "v_proj", "out_proj")
            self.ln1, self.ln2 = tnn.LayerNorm(D), tnn.LayerNorm(D)
            self.attn = tnn.ModuleDict({n: tnn.Linear(D, D) for n in names})
            if cross:
                self.ln_cross = tnn.LayerNorm(D)
                self.cross_attn = tnn.ModuleDict({n: tnn.Linear(D, D) for n in names})
            self.ff = tnn.ModuleDict({"fc1": tnn.Linear(D, F_), "fc2": tnn.Linear(F_, D)})

        def forward(self, x, context=None):
            h = self.ln1(x)
            x = x + attention(self.attn, h, h, self.H, self.causal)
            if self.cross:
                x = x + attention(self.cross_attn, self.ln_cross(x), context, self.H, False)
            return x + self.ff["fc2"](F.gelu(self.ff["fc1"](self.ln2(x))))

    class Vit(tnn.Module):
        def __init__(self):
            super().__init__()
            (H, W), (ph, pw), D = cfg.image_size, cfg.patch_size, cfg.vision_embed_dim
            self.patch_embed = tnn.Linear(ph * pw, D)
            self.pos_embedding = tnn.Parameter(torch.zeros(H // ph * (W // pw), D))
            self.blocks = tnn.ModuleList([Block(D, cfg.vision_num_heads, cfg.ff_mult * D)
                                          for _ in range(cfg.vision_num_layers)])
            self.norm = tnn.LayerNorm(D)

        def forward(self, images):
            (H, W), (ph, pw) = cfg.image_size, cfg.patch_size
            x = images.unfold(1, ph, ph).unfold(2, pw, pw).reshape(len(images), -1, ph * pw)  # (B, P, ph*pw)
            x = self.patch_embed(x) + self.pos_embedding
            for block in self.blocks:
                x = block(x)
            return self.norm(x)

    class Lpm(tnn.Module):
        def __init__(self):
            super().__init__()
            D = cfg.lpm_embed_dim
            self.lpm = tnn.Module()
            self.lpm.embed = tnn.Linear(cfg.frame_size ** 2, D)
            self.lpm.blocks = tnn.ModuleList([Block(D, cfg.lpm_num_heads, cfg.ff_mult * D)
                                              for _ in range(cfg.lpm_num_layers)])
            self.lpm.norm = tnn.LayerNorm(D)
            self.pe = torch.from_numpy(sinusoidal_encoding(cfg.seq_len, D).numpy())

        def forward(self, frames):
            B, S = frames.shape[:2]
            x = self.lpm.embed(frames.reshape(B, S, -1)) + self.pe[:S]
            for block in self.lpm.blocks:
                x = block(x)
            return self.lpm.norm(x)

    class Decoder(tnn.Module):
        def __init__(self):
            super().__init__()
            D, n = cfg.text_embed_dim, cfg.text_num_layers
            self.tok_embedding = tnn.Embedding(cfg.vocab_size, D)
            self.pos_embedding = tnn.Embedding(cfg.max_seq_len, D)
            if cfg.cross_attention_dim != D:
                self.context_proj = tnn.Linear(cfg.cross_attention_dim, D)
            self.blocks = tnn.ModuleList([Block(D, cfg.text_num_heads, cfg.ff_mult * D, causal=True,
                                                cross=i >= n - cfg.num_cross_attention_layers) for i in range(n)])
            self.norm, self.head = tnn.LayerNorm(D), tnn.Linear(D, cfg.vocab_size)

        def forward(self, ids, context):
            if hasattr(self, "context_proj"):
                context = self.context_proj(context)
            x = self.tok_embedding(ids) + self.pos_embedding(torch.arange(ids.shape[1]))
            for block in self.blocks:
                x = block(x, context)
            return self.head(self.norm(x))

    class Reference(tnn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = (Vit() if cfg.encoder == "vit" else Lpm()), Decoder()

        def forward(self, images, ids):
            return self.decoder(ids, self.encoder(images))

    return Reference()


def compare_with_torch(model, images, ids):
    torch = pytest.importorskip("torch")
    ref = torch_reference(torch, model.config)
    ref.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    model.train()
    logits = model(images, ids)
    ref_logits = ref(torch.from_numpy(images), torch.from_numpy(ids))
    np.testing.assert_allclose(logits.numpy(), ref_logits.detach().numpy(), rtol=1e-4, atol=1e-5)
    V = model.config.vocab_size
    target = np.roll(ids, -1, axis=1)
    nn.functional.cross_entropy(logits.reshape(-1, V), gt.tensor(target.reshape(-1))).backward()
    torch.nn.functional.cross_entropy(ref_logits.reshape(-1, V), torch.from_numpy(target.reshape(-1))).backward()
    ref_grads = dict(ref.named_parameters())
    assert sorted(ref_grads) == sorted(n for n, _ in model.named_parameters())
    for name, p in model.named_parameters():
        want = ref_grads[name].grad
        want = np.zeros(p.shape, np.float32) if want is None else want.numpy()
        np.testing.assert_allclose(p.grad.numpy(), want, rtol=1e-4, atol=1e-6, err_msg=name)


def test_vit_model_logits_and_gradients_match_a_pytorch_reference():
    images, ids = inputs()
    compare_with_torch(tiny(), images, ids)


def test_lpm_encoder_model_matches_a_pytorch_reference():
    gt.manual_seed(0)
    model = create_pixel_llm(**LPM)
    rng = np.random.default_rng(2)
    frames = rng.random((2, 4, 6, 6), dtype=np.float32)
    compare_with_torch(model, frames, rng.integers(0, 11, (2, 5)))
    assert model.encode_images(frames).shape == (2, 4, 8)     # one feature per whole frame


# ---- behaviour ---------------------------------------------------------------------------------
def test_a_position_sees_only_earlier_tokens_and_the_image():
    model = tiny()
    images, ids = inputs()
    changed = ids.copy()
    changed[:, 3] = (changed[:, 3] + 1) % 11
    a, b = model(images, ids).numpy(), model(images, changed).numpy()
    np.testing.assert_array_equal(a[:, :3], b[:, :3])
    assert np.abs(a[:, 3:] - b[:, 3:]).max() > 1e-4
    other = images.copy()
    other[0] = 0.0
    assert np.abs(model(other, ids).numpy()[0, 0] - a[0, 0]).max() > 1e-4   # every position reads the image


def test_cached_decoding_gives_the_logits_of_the_whole_sequence():
    model = tiny()
    images, ids = inputs()
    with gt.no_grad():
        context = model.encode_images(images)
        full = model.decode(ids, context).numpy()
        cache = nn.KVCache()
        steps = [model.decode(ids[:, :2], context, cache)] + [model.decode(ids[:, i:i + 1], context, cache)
                                                             for i in range(2, ids.shape[1])]
    np.testing.assert_allclose(np.concatenate([s.numpy() for s in steps], axis=1), full, rtol=1e-5, atol=1e-5)


def test_padding_mask_leaves_token_rows_alone():
    model = tiny()
    images, ids = inputs()
    mask = np.ones(ids.shape, bool)
    mask[0, 4:] = False                       # right padding: rows 0..3 of item 0 are tokens
    a, b = model(images, ids).numpy(), model(images, ids, attention_mask=mask).numpy()
    np.testing.assert_allclose(b[0, :4], a[0, :4], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b[1:], a[1:], rtol=1e-5, atol=1e-6)
    assert np.abs(b[0, 5] - a[0, 5]).max() > 1e-5


def test_cross_attention_maps_are_the_last_cross_layers_weights():
    model = tiny()
    images, ids = inputs()
    maps = model.cross_attention_maps(images, ids)
    assert maps.shape == (3, 6, 6) and maps.dtype == np.float32           # (B, L, P): 2x3 patches
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-5)
    # by hand: block 1's cross-attention weights, averaged over its two heads
    dec = model.decoder
    with gt.no_grad():
        ctx = dec.context_proj(model.encode_images(images))
        x = dec.tok_embedding(gt.tensor(ids)) + dec.pos_embedding(gt.arange(6))
        x = dec.blocks[0](x)
        block = dec.blocks[1]
        x = x + block.attn(block.ln1(x))
        q, k = block.cross_attn.q_proj(block.ln_cross(x)).numpy(), block.cross_attn.k_proj(ctx).numpy()
    q, k = q.reshape(3, 6, 2, 8).transpose(0, 2, 1, 3), k.reshape(3, 6, 2, 8).transpose(0, 2, 1, 3)
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(8)
    w = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(maps, (w / w.sum(-1, keepdims=True)).mean(1), rtol=1e-4, atol=1e-6)


def test_image_layouts_and_config_round_trip():
    model = tiny()
    images, ids = inputs()
    np.testing.assert_array_equal(model(images, ids).numpy(), model(images[:, None], ids).numpy())
    cfg = model.config
    assert cfg.cross_attention_dim == 12 and cfg.image_size == (8, 12) and cfg.patch_size == (4, 4)
    assert PixelLLMConfig.from_dict(cfg.to_dict()) == cfg
    assert isinstance(cfg.to_dict()["image_size"], list)
    assert PixelLLM(cfg.to_dict()).state_dict().keys() == model.state_dict().keys()
    assert [b.cross_attention for b in model.decoder.blocks] == [False, True]
    rgb = create_pixel_llm(vocab_size=5, image_size=4, patch_size=2, in_channels=3, vision_embed_dim=8,
                           text_embed_dim=8, vision_num_layers=0, text_num_layers=1)
    assert rgb(np.zeros((2, 3, 4, 4), np.float32), np.ones((2, 3), np.int64)).shape == (2, 3, 5)


def test_parts_can_be_built_on_their_own():
    enc = VisionEncoder((8, 8), 4, embed_dim=8, num_layers=1, num_heads=2)
    dec = LanguageDecoder(vocab_size=6, embed_dim=8, num_layers=1, num_heads=2, cross_attention_dim=8)
    features = enc(np.zeros((2, 8, 8), np.float32))
    assert features.shape == (2, 4, 8) and dec(np.ones((2, 3), np.int64), features).shape == (2, 3, 6)


@pytest.mark.parametrize("overrides, message", [
    (dict(vocab_size=None), "vocab_size must be an int"), (dict(image_size=(8, 10)), "whole number of patches"),
    (dict(text_embed_dim=15), "divisible by text_num_heads"), (dict(encoder="cnn"), "encoder must be one of"),
    (dict(num_cross_attention_layers=3), "at most text_num_layers"), (dict(dropout=1.0), "dropout"),
    (dict(cross_attention_dim=16), "encoder's width"), (dict(eos_id=11), "distinct ids below"),
    (dict(patch_size=(4, 0)), "patch_size"), (dict(activation="tanh"), "activation")])
@pytest.mark.first_pass
def test_bad_configs_are_one_line_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        PixelLLMConfig(**{**TINY, **overrides})


def test_bad_inputs_name_the_shape_and_what_was_expected():
    model = tiny()
    images, ids = inputs()
    with pytest.raises(ValueError, match=r"expected images of shape \(batch, 8, 12\) .*got \(3, 8, 8\)"):
        model(images[:, :, :8], ids)
    with pytest.raises(TypeError, match="floating-point"):
        model((images * 255).astype(np.uint8), ids)
    with pytest.raises(ValueError, match="max_seq_len=7"):
        model(images, np.ones((3, 8), np.int64))
    with pytest.raises(ValueError, match="batch size 2"):
        model(images, ids[:2])
    with pytest.raises(ValueError, match=r"frame sequences of shape \(batch, S, 6, 6\)"):
        create_pixel_llm(**LPM)(np.zeros((2, 6, 6, 6), np.float32), ids[:2])
    with pytest.raises(ValueError, match="unknown field 'img_size'"):
        PixelLLMConfig.from_dict({"vocab_size": 5, "img_size": 8})
