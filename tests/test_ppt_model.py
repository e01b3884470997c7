"""The Pixel Prediction Transformer (lpm.ppt.model): logits and every gradient against a PyTorch
reference of the same weights; generation with the key/value cache equal to generation without
it, token for token; guidance, top-k, top-p, prefixes and the checks on bad input."""

import math

import numpy as np
import pytest

import gt
from gt import nn
from lpm import PixelPredictionTransformer
from lpm.ppt.codebook import PatchCodebook

# K codes, a 3x3 grid of 2x2 patches (T = 9 tokens), 3 classes: small, every size distinct
TINY = dict(num_codes=11, tokens_per_image=9, embed_dim=16, num_layers=2, num_heads=2, ff_dim=24, num_classes=3,
            patch_size=2)


# generation runs a step per token: a 2x2 grid (4 tokens) keeps those tests cheap on every engine
GEN = dict(tokens_per_image=4)


def tiny(seed=0, **overrides):
    gt.manual_seed(seed)
    return PixelPredictionTransformer(**{**TINY, **overrides}).eval()


def batch(n=5, seed=1, length=9):
    rng = np.random.default_rng(seed)
    return rng.integers(0, TINY["num_codes"], (n, length)), rng.integers(0, TINY["num_classes"] + 1, n)


# ---- the PyTorch reference ---------------------------------------------------------------------
def torch_reference(torch):
    """The same network written as a PyTorch user writes it (causal pre-norm blocks)."""
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, D, H, F):
            super().__init__()
            self.H = H
            self.ln1, self.ln2 = tnn.LayerNorm(D), tnn.LayerNorm(D)
            self.attn = tnn.ModuleDict({n: tnn.Linear(D, D) for n in ("q_proj", "k_proj", "v_proj", "out_proj")})
            self.ff = tnn.ModuleDict({"fc1": tnn.Linear(D, F), "fc2": tnn.Linear(F, D)})

        def forward(self, x):
            B, T, D = x.shape
            h, hd = self.ln1(x), D // self.H
            q, k, v = (self.attn[n](h).view(B, T, self.H, hd).transpose(1, 2) for n in ("q_proj", "k_proj", "v_proj"))
            scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
            scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
            x = x + self.attn["out_proj"]((scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D))
            return x + self.ff["fc2"](torch.relu(self.ff["fc1"](self.ln2(x))))

    class Reference(tnn.Module):
        def __init__(self, K, T, D, L, H, F, C, P):
            super().__init__()
            self.tok_embedding, self.class_embedding = tnn.Embedding(K, D), tnn.Embedding(C + 1, D)
            self.pos_embedding = tnn.Embedding(T, D)
            self.blocks = tnn.ModuleList([Block(D, H, F) for _ in range(L)])
            self.norm, self.head = tnn.LayerNorm(D), tnn.Linear(D, K)
            self.register_buffer("codebook", torch.zeros(K, P * P))

        def forward(self, tokens, classes):
            x = torch.cat([self.class_embedding(classes)[:, None], self.tok_embedding(tokens[:, :-1])], dim=1)
            x = x + self.pos_embedding(torch.arange(x.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x))

    return Reference


@pytest.mark.parametrize("length", [9, 4])
def test_logits_and_gradients_match_a_pytorch_reference(length):
    torch = pytest.importorskip("torch")
    model = tiny().train()
    c = TINY
    ref = torch_reference(torch)(c["num_codes"], c["tokens_per_image"], c["embed_dim"], c["num_layers"],
                                 c["num_heads"], c["ff_dim"], c["num_classes"], c["patch_size"])
    ref.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    tokens, classes = batch(length=length)
    logits = model(tokens, classes)
    ref_logits = ref(torch.from_numpy(tokens), torch.from_numpy(classes))
    np.testing.assert_allclose(logits.numpy(), ref_logits.detach().numpy(), rtol=1e-4, atol=1e-5)
    target = np.roll(tokens, 1, axis=1)     # any targets: the gradient of a cross-entropy
    nn.functional.cross_entropy(logits.reshape(-1, c["num_codes"]), gt.tensor(target.reshape(-1))).backward()
    torch.nn.functional.cross_entropy(ref_logits.reshape(-1, c["num_codes"]),
                                      torch.from_numpy(target.reshape(-1))).backward()
    ref_grads = dict(ref.named_parameters())
    for name, p in model.named_parameters():
        want = ref_grads[name].grad
        want = np.zeros(p.shape, np.float32) if want is None else want.numpy()
        np.testing.assert_allclose(p.grad.numpy(), want, rtol=1e-4, atol=1e-6, err_msg=name)


def test_a_position_sees_only_earlier_tokens():
    model = tiny()
    tokens, classes = batch()
    changed = tokens.copy()
    changed[:, 5] = (changed[:, 5] + 1) % TINY["num_codes"]
    a, b = model(tokens, classes).numpy(), model(changed, classes).numpy()
    # row i predicts token i from tokens < i: rows 0..5 do not read token 5, rows 6.. do
    np.testing.assert_array_equal(a[:, :6], b[:, :6])
    assert np.abs(a[:, 6:] - b[:, 6:]).max() > 1e-4
    other = classes.copy()
    other[0] = (other[0] + 1) % (TINY["num_classes"] + 1)
    assert np.abs(model(tokens, other).numpy()[0, 0] - a[0, 0]).max() > 1e-4   # the start token carries the class


# ---- generation --------------------------------------------------------------------------------
@pytest.mark.parametrize("options", [dict(), dict(digit=1, top_k=4), dict(digit=[0, 1, 2, 0, 1, 2], top_p=0.8),
                                     dict(digit=2, guidance=2.5, temperature=0.7),
                                     dict(prefix=np.arange(12).reshape(6, 2) % 11)])
def test_generation_with_the_cache_equals_generation_without_it(options):
    model = tiny(**GEN)
    cached = model.generate_tokens(6, seed=3, use_cache=True, **options)
    uncached = model.generate_tokens(6, seed=3, use_cache=False, **options)
    assert cached.shape == (6, 4) and cached.dtype == np.int64
    np.testing.assert_array_equal(cached, uncached)
    if "prefix" in options:
        np.testing.assert_array_equal(cached[:, :2], options["prefix"])


def greedy_tokens(model, classes):
    """Greedy decoding the plain way: the whole prefix each step, argmax."""
    T = model.config.tokens_per_image
    tokens = np.zeros((len(classes), T), np.int64)
    for n in range(T):
        logits = model(np.concatenate([tokens[:, :n], tokens[:, :1]], axis=1), classes).numpy()
        tokens[:, n] = logits[:, n].argmax(-1)
    return tokens


def test_top_k_1_is_greedy_and_seeds_repeat():
    model = tiny(**GEN)
    classes = np.array([0, 1, 2, 0])
    np.testing.assert_array_equal(model.generate_tokens(4, digit=classes, top_k=1, seed=1),
                                  greedy_tokens(model, classes))
    a, b = model.generate_tokens(5, seed=7), model.generate_tokens(5, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.generate_tokens(5, seed=8))


def test_top_p_keeps_only_the_nucleus():
    model = tiny(**GEN)
    tokens = model.generate_tokens(8, digit=1, top_p=0.3, seed=0)
    for n in range(4):           # each drawn token lies in the nucleus of its position's distribution
        logits = model(np.concatenate([tokens[:, :n], tokens[:, :1]], axis=1), np.full(8, 1)).numpy()[:, n]
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        for row, tok in zip(probs, tokens[:, n]):
            order = np.argsort(-row)
            before = np.cumsum(row[order]) - row[order]
            assert tok in order[before < 0.3 + 1e-6]


def test_guidance_zero_is_unconditional_and_one_is_conditional():
    model = tiny(**GEN)
    np.testing.assert_array_equal(model.generate_tokens(6, digit=2, guidance=0.0, top_k=1, seed=0),
                                  model.generate_tokens(6, top_k=1, seed=0))
    np.testing.assert_array_equal(model.generate_tokens(6, digit=2, guidance=1.0, seed=4),
                                  model.generate_tokens(6, digit=2, seed=4))
    strong = model.generate_tokens(6, digit=2, guidance=5.0, top_k=1, seed=0)
    cond = model(np.concatenate([strong[:, :1], strong[:, :1]], 1), np.full(6, 2)).numpy()[:, 0]
    uncond = model(np.concatenate([strong[:, :1], strong[:, :1]], 1), np.full(6, 3)).numpy()[:, 0]
    np.testing.assert_array_equal(strong[:, 0], (uncond + 5.0 * (cond - uncond)).argmax(-1))


def test_generate_decodes_through_the_models_codebook():
    rng = np.random.default_rng(0)
    vectors = rng.random((11, 4)).astype(np.float32)
    model = tiny(codebook=vectors, **GEN)
    images = model.generate(4, digit=1, seed=0)
    tokens = model.generate_tokens(4, digit=1, seed=0)
    assert images.shape == (4, 4, 4) and images.dtype == np.float32      # a 2x2 grid of 2x2 patches
    np.testing.assert_array_equal(images[0, :2, :2], vectors[tokens[0, 0]].reshape(2, 2))
    np.testing.assert_array_equal(images[0, 2:, :2], vectors[tokens[0, 2]].reshape(2, 2))
    with pytest.raises(ValueError, match="holds no codebook"):
        tiny().generate(2)


def test_decode_matches_the_codebook_at_mnist_size():
    rng = np.random.default_rng(0)
    codebook = PatchCodebook(rng.random((16, 16)).astype(np.float32), 4)
    gt.manual_seed(0)
    model = PixelPredictionTransformer(num_codes=16, embed_dim=8, num_layers=1, num_heads=2, ff_dim=8,
                                       codebook=codebook.vectors)
    tokens = rng.integers(0, 16, (3, 49))
    np.testing.assert_array_equal(model.decode(tokens), codebook.decode(tokens))
    assert "codebook" in model.state_dict()


@pytest.mark.parametrize("patch_size", [3, 5, 6, 8])
def test_decode_crops_a_padded_grid_as_the_codebook_does(patch_size):
    """A grid of ceil(28/p) patches a side is a zero-padded 28x28 digit: cropped back to 28."""
    rng = np.random.default_rng(patch_size)
    codebook = PatchCodebook(rng.random((12, patch_size ** 2)).astype(np.float32), patch_size)
    gt.manual_seed(0)
    model = PixelPredictionTransformer(num_codes=12, tokens_per_image=codebook.tokens_per_image, embed_dim=8,
                                       num_layers=1, num_heads=2, ff_dim=8, patch_size=patch_size,
                                       codebook=codebook.vectors)
    assert model.config.image_size == 28
    tokens = rng.integers(0, 12, (3, codebook.tokens_per_image))
    np.testing.assert_array_equal(model.decode(tokens), codebook.decode(tokens))
    assert model.generate(2, digit=3, seed=0).shape == (2, 28, 28)
    # a grid that is not MNIST's padded one keeps its own side (2x2 patches of 5: 10 pixels)
    assert tiny(patch_size=5, tokens_per_image=4).config.image_size == 10


@pytest.mark.parametrize("kwargs, message", [
    (dict(digit=12), "digit must be"), (dict(top_p=0), "top_p"), (dict(top_k=0), "top_k"),
    (dict(temperature=0), "temperature"), (dict(guidance=2.0), "guidance needs a digit"),
    (dict(prefix=np.zeros((2, 10), np.int64)), "prefix must be"), (dict(prefix=np.full((3, 2), 11)), "prefix"),
    (dict(seed=-1), "seed")])
def test_bad_generation_options_are_refused_before_any_work(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny().generate_tokens(3, **kwargs)


def test_bad_forward_input():
    model = tiny()
    with pytest.raises(ValueError, match="classes must lie in"):
        model(np.zeros((2, 9), np.int64), np.array([0, 4]))
    with pytest.raises(ValueError, match="shape"):
        model(np.zeros((2, 10), np.int64), np.array([0, 1]))
    with pytest.raises(TypeError, match="integer token ids"):
        model(np.zeros((2, 9), np.float32), np.array([0, 1]))
    with pytest.raises(ValueError, match="divisible"):
        PixelPredictionTransformer(embed_dim=30, num_heads=4)


@pytest.mark.own_mesh
def test_a_batch_sharded_over_four_devices_matches_one_device():
    from gt.sharding import Shard, use_mesh

    tokens, classes = batch(n=8)
    results = {}
    for devices in (1, 4):
        with use_mesh(devices):
            model = tiny().train()
            t, c = gt.tensor(tokens), gt.tensor(classes)
            if devices > 1:
                t, c = t.shard(0), c.shard(0)
            logits = model(t, c)
            if devices > 1:
                assert logits.placement == Shard(0)
            loss = nn.functional.cross_entropy(logits.reshape(-1, TINY["num_codes"]), t.reshape(-1))
            loss.backward()
            results[devices] = (logits.numpy(), model.head.weight.grad.numpy(),
                                model.eval().generate_tokens(8, digit=np.arange(8) % 3, guidance=2.0, seed=5))
    np.testing.assert_allclose(results[4][0], results[1][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(results[4][1], results[1][1], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(results[4][2], results[1][2])
