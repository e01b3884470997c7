"""gt.nn without torch: registration, modes, state dicts, layers against numpy, errors, and
gradients of whole layers against central finite differences (float64)."""

import collections
import math

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F

rng = np.random.default_rng(0)


class Tiny(nn.Module):
    """Two levels deep: a Linear, a ModuleList of Sequentials, a buffer of each kind."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3, 4)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.5)) for _ in range(2)])
        self.scale = nn.Parameter(gt.ones(4))
        self.register_buffer("running", gt.zeros(4))
        self.register_buffer("cache", gt.zeros(2), persistent=False)

    def forward(self, x):
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return x * self.scale


TINY_KEYS = ["scale", "embed.weight", "embed.bias", "blocks.0.0.weight", "blocks.0.0.bias",
             "blocks.1.0.weight", "blocks.1.0.bias"]


# ---- Parameter and registration ---------------------------------------------------------------
def test_parameter_is_a_leaf_that_requires_grad_and_shares_memory():
    t = gt.zeros(2, 3)
    p = nn.Parameter(t)
    assert isinstance(p, gt.Tensor) and p.requires_grad and p.is_leaf and p.shape == (2, 3)
    t.fill_(5.0)
    assert p.numpy()[0, 0] == 5.0  # built from a tensor it shares memory, as torch
    assert nn.Parameter(np.ones(3)).dtype == gt.float64
    assert nn.Parameter([1.0, 2.0]).dtype == gt.float32
    assert not nn.Parameter(gt.ones(2), requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:")
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(gt.tensor([1, 2]))


def test_registration_at_every_depth_and_dotted_names():
    m = Tiny()
    assert [n for n, _ in m.named_parameters()] == TINY_KEYS
    assert len(list(m.parameters())) == 7
    assert [n for n, _ in m.named_children()] == ["embed", "blocks"]
    assert [n for n, _ in m.named_modules()] == [
        "", "embed", "blocks", "blocks.0", "blocks.0.0", "blocks.0.1", "blocks.0.2",
        "blocks.1", "blocks.1.0", "blocks.1.1", "blocks.1.2"]
    assert [n for n, _ in m.named_buffers()] == ["running", "cache"]
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in m.blocks.named_parameters(prefix="blocks")][:1] == ["blocks.0.0.weight"]
    assert m.get_submodule("blocks.1.0") is m.blocks[1][0]
    assert m.num_parameters() == 3 * 4 + 4 + 2 * (16 + 4) + 4
    assert "blocks" in dir(m) and "scale" in dir(m)


def test_shared_parameters_are_yielded_once_but_saved_under_each_name():
    m = nn.Module()
    m.a = nn.Linear(3, 3)
    m.b = nn.Linear(3, 3)
    m.b.weight = m.a.weight  # tied
    assert [n for n, _ in m.named_parameters()] == ["a.weight", "a.bias", "b.bias"]
    assert m.num_parameters() == 9 + 3 + 3
    assert list(m.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]


def test_assignment_rules():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="gt.nn.Parameter or None expected"):
        m.weight = gt.ones(2, 2)  # a plain tensor cannot replace a parameter
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    assert "bias" not in m.state_dict()
    m.extra = 3  # plain attributes stay plain
    assert m.extra == 3 and "extra" not in m._parameters

    class Forgot(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Forgot()
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope
    with pytest.raises(TypeError, match="buffer"):
        m.register_buffer("buf", np.zeros(2))
    with pytest.raises(KeyError):
        m.register_parameter("a.b", None)
    del m.weight
    assert list(m.parameters()) == []


def test_zero_grad_reaches_every_child():
    m = Tiny()
    m.eval()
    m(gt.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in m.parameters())
    m(gt.randn(5, 3)).sum().backward()
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_train_and_eval_propagate_to_every_module():
    m = Tiny()
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    m.blocks.train(False)
    assert m.training and not m.blocks[1][2].training
    with pytest.raises(ValueError, match="boolean"):
        m.train("no")


def test_module_to_apply_and_requires_grad():
    m = Tiny()
    w = m.embed.weight
    m.double()
    assert m.embed.weight is w and w.dtype == gt.float64 and m.running.dtype == gt.float64
    m(gt.randn(2, 3, dtype=gt.float64)).sum().backward()
    assert w.grad.dtype == gt.float64
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen[-1] == "Tiny" and seen.count("Linear") == 3
    m.requires_grad_(False)
    assert m.num_parameters(trainable_only=True) == 0


# ---- containers ---------------------------------------------------------------------------------
def test_module_list_and_sequential():
    layers = nn.ModuleList([nn.Linear(2, 2)])
    layers.append(nn.ReLU())
    layers.extend([nn.Linear(2, 3), nn.Tanh()])
    layers.insert(0, nn.Identity())
    assert len(layers) == 5 and isinstance(layers[-1], nn.Tanh) and isinstance(layers[0], nn.Identity)
    assert [type(m).__name__ for m in layers] == ["Identity", "Linear", "ReLU", "Linear", "Tanh"]
    assert list(layers._modules) == ["0", "1", "2", "3", "4"]
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    del layers[0]
    assert list(layers._modules) == ["0", "1", "2", "3"] and isinstance(layers[0], nn.Linear)
    with pytest.raises(IndexError, match="out of range"):
        layers[7]
    with pytest.raises(TypeError, match="Module"):
        layers.append(lambda x: x)

    seq = nn.Sequential(*layers)
    x = gt.randn(4, 2)
    expected = layers[3](layers[2](layers[1](layers[0](x))))
    np.testing.assert_array_equal(seq(x).numpy(), expected.numpy())
    named = nn.Sequential(collections.OrderedDict(fc=nn.Linear(2, 2), act=nn.ReLU()))
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]
    assert isinstance(named[0], nn.Linear) and isinstance(named[:1], nn.Sequential)

    d = nn.ModuleDict({"enc": nn.Linear(2, 2)})
    d["dec"] = nn.Linear(2, 1)
    assert list(d.keys()) == ["enc", "dec"] and "dec" in d and len(d) == 2
    assert [n for n, _ in d.named_parameters()][-1] == "dec.bias"


# ---- state dict ----------------------------------------------------------------------------------
def test_state_dict_holds_numpy_copies_of_params_and_persistent_buffers():
    m = Tiny()
    sd = m.state_dict()
    assert isinstance(sd, collections.OrderedDict)
    # torch's order: own parameters, own buffers, then each child; "cache" is not persistent
    assert list(sd) == ["scale", "running"] + TINY_KEYS[1:]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["embed.weight"][...] = 123.0  # a copy: the model is untouched
    assert not np.any(m.embed.weight.numpy() == 123.0)
    assert m.state_dict(keep_vars=True)["scale"] is m.scale


def test_state_dict_round_trip_in_place():
    gt.manual_seed(1)
    m = Tiny()
    saved = m.state_dict()
    weight_array = m.embed.weight._data
    with gt.no_grad():
        for p in m.parameters():
            p += 1.0
    result = m.load_state_dict(saved)
    assert result.missing_keys == [] and result.unexpected_keys == [] and "matched" in repr(result)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, saved[k])
    assert m.embed.weight._data is weight_array  # copied into the same array, not rebound


def test_load_state_dict_accepts_tensors_and_casts_to_the_parameter_dtype():
    m = nn.Linear(3, 2)
    values = {"weight": gt.ones(2, 3, dtype=gt.float64), "bias": np.arange(2)}
    m.load_state_dict(values)
    assert m.weight.dtype == gt.float32 and m.bias.dtype == gt.float32
    np.testing.assert_array_equal(m.weight.numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(m.bias.numpy(), [0.0, 1.0])


def test_load_state_dict_lists_every_problem_and_loads_nothing():
    m = Tiny()
    before = m.state_dict()
    bad = m.state_dict()
    del bad["embed.bias"], bad["blocks.1.0.weight"]          # two missing
    bad["extra.weight"] = np.zeros(2)                         # two unexpected
    bad["blocks.9.bias"] = np.zeros(2)
    bad["embed.weight"] = np.zeros((3, 4))                    # two wrong shapes
    bad["scale"] = np.zeros((5,))
    bad["blocks.0.0.bias"] = bad["blocks.0.0.bias"] + 7.0     # a good entry that must not be applied
    with pytest.raises(RuntimeError) as info:
        m.load_state_dict(bad)
    msg = str(info.value)
    for key in ("embed.bias", "blocks.1.0.weight", "extra.weight", "blocks.9.bias"):
        assert f'"{key}"' in msg
    assert "Missing key(s)" in msg and "Unexpected key(s)" in msg
    assert "embed.weight" in msg and "(3, 4)" in msg and "(4, 3)" in msg
    assert "scale" in msg and "(5,)" in msg and "(4,)" in msg
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{k} was changed by a failed load")


def test_load_state_dict_non_strict():
    m = Tiny()
    partial = {"embed.weight": np.full((4, 3), 2.0), "other": np.zeros(1)}
    result = m.load_state_dict(partial, strict=False)
    assert result.unexpected_keys == ["other"]
    assert set(result.missing_keys) == set(TINY_KEYS + ["running"]) - {"embed.weight"}
    assert result == (result.missing_keys, result.unexpected_keys)
    np.testing.assert_array_equal(m.embed.weight.numpy(), np.full((4, 3), 2.0))
    with pytest.raises(RuntimeError, match="size mismatch for embed.weight"):
        m.load_state_dict({"embed.weight": np.zeros((2, 2))}, strict=False)
    with pytest.raises(TypeError, match="mapping"):
        m.load_state_dict([("embed.weight", np.zeros((4, 3)))])


def test_registries_and_attributes_stay_one_through_every_change():
    """A registered parameter, buffer or child is also a plain attribute (a forward reads it
    without ``__getattr__``); changing a registry directly, as torch code does, changes the
    attribute with it."""
    m = Tiny()
    assert m.embed is m._modules["embed"] and m.embed.weight is m.embed._parameters["weight"]
    assert m.running is m._buffers["running"]
    new = nn.Linear(3, 4)
    m._modules["embed"] = new
    assert m.embed is new
    w = nn.Parameter(gt.zeros(4, 3))
    new._parameters["weight"] = w
    assert new.weight is w and [p for p in new.parameters()][0] is w
    del new._parameters["bias"]
    with pytest.raises(AttributeError, match="no attribute 'bias'"):
        new.bias
    new._parameters.update(bias=nn.Parameter(gt.ones(4)))
    assert new.bias.numpy().tolist() == [1.0] * 4
    new._parameters.pop("bias")
    assert not hasattr(new, "bias")
    m._buffers.clear()
    assert not hasattr(m, "running") and "running" not in m.state_dict()
    m.embed = None
    assert m.embed is None and m._modules["embed"] is None


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_module_owns_its_registries(how):
    """copy.deepcopy and pickle give a module whose weights are its own: registering on the copy
    (the public gt's ``_parameters.append``) changes the copy, never the original."""
    import copy
    import pickle

    m = Tiny()
    c = copy.deepcopy(m) if how == "deepcopy" else pickle.loads(pickle.dumps(m))
    x = gt.randn(2, 3)
    np.testing.assert_array_equal(c.embed(x).numpy(), m.embed(x).numpy())
    assert c.embed.weight is not m.embed.weight and c.embed.weight is c.embed._parameters["weight"]
    with gt.no_grad():
        c.embed.weight.add_(1.0)
    assert not np.array_equal(c.embed.weight.numpy(), m.embed.weight.numpy())
    c.gamma = gt.ones(4, requires_grad=True)
    c._parameters.append(c.gamma)
    assert "gamma" in dict(c.named_parameters()) and "gamma" not in dict(m.named_parameters())


def test_a_shallow_copy_shares_its_registries_as_in_torch():
    """copy.copy shares the registries with the original (torch's modules do the same): a layer
    assigned on either is what both of them see."""
    import copy

    m = Tiny()
    c = copy.copy(m)
    assert c._modules is m._modules and c.embed is m.embed
    new = nn.Linear(3, 4)
    m.embed = new
    assert m.embed is new and c.embed is new
    other = nn.Linear(3, 4)
    c.embed = other
    assert m.embed is other and c.embed is other
    del m.scale
    assert not hasattr(m, "scale") and not hasattr(c, "scale")


def test_repr_shows_structure_and_parameter_counts():
    block = nn.TransformerBlock(16, 4, 32)
    text = repr(block)
    assert text.startswith(f"TransformerBlock(  # {block.num_parameters():,} parameters")
    assert "(q_proj): Linear(in_features=16, out_features=16, bias=True)  # 272 parameters" in text
    assert "(ln1): LayerNorm((16,), eps=1e-05, elementwise_affine=True, bias=True)  # 32 parameters" in text
    assert "(act): ReLU()\n" in text and "embed_dim=16, num_heads=4" in text
    assert repr(nn.Linear(40000, 256)) == \
        "Linear(in_features=40000, out_features=256, bias=True)  # 10,240,256 parameters"


# ---- layers against numpy ------------------------------------------------------------------
def test_linear_shapes_init_and_errors():
    gt.manual_seed(0)
    fc = nn.Linear(50, 20)
    assert fc.weight.shape == (20, 50) and fc.bias.shape == (20,)
    bound = 1 / math.sqrt(50)
    for p in (fc.weight, fc.bias):
        v = p.numpy()
        assert np.all(np.abs(v) <= bound) and np.abs(v).max() > 0.8 * bound
    assert abs(fc.weight.numpy().std() - bound / math.sqrt(3)) < 0.01  # U(-b, b) has std b / sqrt(3)
    gt.manual_seed(0)
    np.testing.assert_array_equal(nn.Linear(50, 20).weight.numpy(), fc.weight.numpy())  # reproducible
    x = gt.randn(2, 3, 50)
    np.testing.assert_allclose(fc(x).numpy(), x.numpy() @ fc.weight.numpy().T + fc.bias.numpy(), rtol=1e-5, atol=1e-6)
    assert nn.Linear(4, 2, bias=False).bias is None
    assert nn.Linear(4, 2, dtype=gt.float64).weight.dtype == gt.float64
    with pytest.raises(ValueError, match=r"in_features=50.*\(2, 49\)|\(2, 49\).*in_features=50"):
        fc(gt.randn(2, 49))


def test_layer_norm_step_by_step_against_numpy():
    ln = nn.LayerNorm(6)
    with gt.no_grad():
        ln.weight.copy_(rng.standard_normal(6).astype(np.float32))
        ln.bias.copy_(rng.standard_normal(6).astype(np.float32))
    x = rng.standard_normal((2, 3, 6)).astype(np.float32) * 3 + 1
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)  # biased, as torch
    expected = (x - mean) / np.sqrt(var + 1e-5) * ln.weight.numpy() + ln.bias.numpy()
    np.testing.assert_allclose(ln(gt.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)

    ln2 = nn.LayerNorm((3, 6), eps=1e-3, elementwise_affine=False)
    assert list(ln2.parameters()) == []
    mean = x.mean((-2, -1), keepdims=True)
    var = ((x - mean) ** 2).mean((-2, -1), keepdims=True)
    np.testing.assert_allclose(ln2(gt.tensor(x)).numpy(), (x - mean) / np.sqrt(var + 1e-3), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(2, 3, 5\).*\(6,\)"):
        ln(gt.randn(2, 3, 5))


def test_layer_norm_op_accepts_positional_n_axes_and_eps():
    from gt.ops.linalg import LayerNorm

    x, w, b = gt.randn(2, 3, requires_grad=True), gt.ones(3, requires_grad=True), gt.zeros(3, requires_grad=True)
    LayerNorm.apply(x, w, b, 1, 1e-5).sum().backward()
    assert x.grad.shape == (2, 3) and w.grad.shape == (3,)


def test_dropout_is_identity_in_eval_and_scales_in_train():
    x = gt.ones(200, 500)
    drop = nn.Dropout(0.25)
    assert drop.eval()(x) is x
    assert nn.Dropout(0.0)(x) is x
    gt.manual_seed(3)
    y = drop.train()(x).numpy()
    kept = y != 0
    assert abs(1 - kept.mean() - 0.25) < 0.01                  # about p of the elements are zeroed
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)    # survivors scaled by 1/(1-p)
    assert abs(y.mean() - 1.0) < 0.02                           # expectation preserved
    gt.manual_seed(3)
    np.testing.assert_array_equal(drop(x).numpy(), y)           # reproducible under manual_seed

    w = gt.ones(50, 50, requires_grad=True)
    out = drop(w)
    out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), out.numpy())     # the gradient is the same scaled mask
    assert not nn.Dropout(1.0)(x).numpy().any()
    for p in (-0.1, 1.5, "0.1"):
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(p)


def test_embedding_lookup_gradient_and_errors():
    gt.manual_seed(0)
    emb = nn.Embedding(10, 4)
    assert emb.weight.shape == (10, 4)
    ids = np.array([[1, 2, 1], [9, 0, 1]])
    out = emb(gt.tensor(ids))
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[ids])
    out.sum().backward()
    counts = np.bincount(ids.ravel(), minlength=10)[:, None] * np.ones(4)
    np.testing.assert_array_equal(emb.weight.grad.numpy(), counts)  # repeated ids add up
    np.testing.assert_array_equal(emb([3, 4]).numpy(), emb.weight.numpy()[[3, 4]])
    big = nn.Embedding(1000, 64).weight.numpy()
    assert abs(big.mean()) < 0.01 and abs(big.std() - 1) < 0.01  # N(0, 1) like torch
    with pytest.raises(IndexError, match="10"):
        emb(gt.tensor([3, 10]))
        gt.checks.flush()                   # on a GPU the check waits for a host read
    with pytest.raises(IndexError, match="-1"):
        emb([-1])
        gt.checks.flush()
    with pytest.raises(RuntimeError, match="Long, Int; but got torch.FloatTensor"):    # torch's words
        emb(gt.tensor([1.0]))


def test_activation_modules_and_module_level_aliases():
    x = gt.tensor([[-1.0, 0.5, 2.0]])
    np.testing.assert_array_equal(nn.ReLU()(x).numpy(), [[0.0, 0.5, 2.0]])
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp(-x.numpy())), rtol=1e-6)
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh(x.numpy()), rtol=1e-6)
    np.testing.assert_allclose(nn.Softmax(dim=-1)(x).numpy().sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(nn.GELU("tanh")(x).numpy(), F.gelu(x, approximate="tanh").numpy())
    np.testing.assert_allclose(nn.LogSoftmax(1)(x).numpy(), np.log(F.softmax(x, dim=1).numpy()), rtol=1e-5)
    for name in ("relu", "sigmoid", "tanh", "gelu", "softmax", "mse_loss", "cross_entropy"):
        assert getattr(nn, name) is getattr(F, name)
    from gt.client import nn as client_nn
    assert client_nn is nn and nn.SGD is gt.optim.SGD and callable(nn.utils.clip_grad_norm_)


# ---- attention -----------------------------------------------------------------------------
def test_attention_rejects_bad_sizes_and_inputs():
    with pytest.raises(ValueError, match=r"embed_dim \(10\).*num_heads \(3\)"):
        nn.MultiHeadAttention(10, 3)
    attn = nn.MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"\(2, 5, 6\)"):
        attn(gt.randn(2, 5, 6))
    with pytest.raises(ValueError, match=r"\(5, 8\)"):
        attn(gt.randn(5, 8))
    with pytest.raises(ValueError, match=r"attn_mask of shape \(4, 4\)"):
        attn(gt.randn(2, 5, 8), attn_mask=np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="every key"):
        attn(gt.randn(2, 5, 8), attn_mask=np.ones((5, 5), bool))
    with pytest.raises(TypeError, match="bool"):
        attn(gt.randn(2, 5, 8), attn_mask=np.zeros((5, 5), np.int64))


def test_causal_attention_never_looks_ahead():
    gt.manual_seed(0)
    attn = nn.MultiHeadAttention(8, 2, causal=True)
    x = rng.standard_normal((2, 6, 8)).astype(np.float32)
    out, weights = attn(gt.tensor(x), need_weights=True)
    assert weights.shape == (2, 2, 6, 6)
    assert not np.triu(weights.numpy(), k=1).any()                 # no weight on the future
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)
    x2 = x.copy()
    x2[:, 4:] += 10.0                                               # change the last two tokens
    for need_weights in (True, False):        # the weights' path, and the fused kernel where the engine has one
        before = attn(gt.tensor(x), need_weights=need_weights)
        after = attn(gt.tensor(x2), need_weights=need_weights)
        before, after = (before[0], after[0]) if need_weights else (before, after)
        np.testing.assert_array_equal(after.numpy()[:, :4], before.numpy()[:, :4])
        assert not np.allclose(after.numpy()[:, 4:], before.numpy()[:, 4:])
    # a bool mask with True above the diagonal (= may not attend) is the same as causal=True
    plain = nn.MultiHeadAttention(8, 2)
    plain.load_state_dict(attn.state_dict())
    future = np.triu(np.ones((6, 6), bool), k=1)
    # (the mask takes the composed path, causal=True the engine's fused kernel where it has one)
    np.testing.assert_allclose(plain(gt.tensor(x), attn_mask=future).numpy(), out.numpy(), rtol=1e-6, atol=1e-7)
    additive = np.where(future, -np.inf, 0.0).astype(np.float32)
    np.testing.assert_allclose(plain(gt.tensor(x), attn_mask=additive).numpy(), out.numpy(), rtol=1e-6, atol=1e-7)


def test_transformer_block_shapes_names_and_dropout_modes():
    block = nn.TransformerBlock(8, 2, 16, dropout=0.5, causal=True, activation="gelu")
    names = [n for n, _ in block.named_parameters()]
    assert names[:4] == ["ln1.weight", "ln1.bias", "attn.q_proj.weight", "attn.q_proj.bias"]
    assert names[-4:] == ["ff.fc1.weight", "ff.fc1.bias", "ff.fc2.weight", "ff.fc2.bias"]
    x = gt.randn(2, 5, 8)
    block.eval()
    np.testing.assert_array_equal(block(x).numpy(), block(x).numpy())  # deterministic in eval
    block.train()
    assert not np.allclose(block(x).numpy(), block(x).numpy())         # dropout active in train
    with pytest.raises(ValueError, match="activation"):
        nn.FeedForward(8, 16, activation="swish")


# ---- functional and losses ------------------------------------------------------------------
def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_cross_entropy_values_and_reductions():
    logits = rng.standard_normal((5, 4))
    target = np.array([0, 3, 1, 1, 2])
    per = -_log_softmax(logits)[np.arange(5), target]
    lt = gt.tensor(logits)
    np.testing.assert_allclose(F.cross_entropy(lt, target).item(), per.mean(), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(lt, gt.tensor(target), reduction="sum").item(), per.sum(), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(lt, target.tolist(), reduction="none").numpy(), per, rtol=1e-12)
    np.testing.assert_allclose(nn.CrossEntropyLoss()(lt, target).item(), per.mean(), rtol=1e-12)
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(lt, dim=1), target).item(), per.mean(), rtol=1e-12)


def test_cross_entropy_errors():
    logits = gt.randn(3, 4)
    with pytest.raises(IndexError, match="target 4 is out of range for 4 classes"):
        F.cross_entropy(logits, [0, 4, 1])
    with pytest.raises(IndexError, match="-1"):
        F.cross_entropy(logits, [0, -1, 1])
    with pytest.raises(ValueError, match=r"shape \(3,\).*\(2,\)"):
        F.cross_entropy(logits, [0, 1])
    with pytest.raises(RuntimeError, match="Long or Byte, but got Float .*class probabilities must have the logits' shape"):
        F.cross_entropy(logits, [0.0, 1.0, 2.0])     # a float target is class probabilities, as torch
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        F.cross_entropy(gt.randn(2, 3, 4), [0, 1])
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, [0, 1, 2], reduction="avg")


def test_mse_loss_and_one_hot():
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    np.testing.assert_allclose(F.mse_loss(gt.tensor(a), gt.tensor(b)).item(), ((a - b) ** 2).mean(), rtol=1e-12)
    np.testing.assert_allclose(nn.MSELoss("sum")(gt.tensor(a), b).item(), ((a - b) ** 2).sum(), rtol=1e-12)
    with pytest.warns(UserWarning, match="different to the input size"):      # broadcasts, as torch's
        np.testing.assert_allclose(F.mse_loss(gt.tensor(a), gt.tensor(b[:, :1])).item(), ((a - b[:, :1]) ** 2).mean())
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(3,\)"):
        F.mse_loss(gt.tensor(a), gt.tensor(b[:, 0]))
    oh = F.one_hot(gt.tensor([[0, 2], [1, 1]]), 3)
    assert oh.shape == (2, 2, 3) and oh.dtype == gt.float32 and not oh.requires_grad
    np.testing.assert_array_equal(oh.numpy(), np.eye(3)[[[0, 2], [1, 1]]])
    assert F.one_hot([1, 3]).shape == (2, 4)
    with pytest.raises(ValueError, match="out of range"):
        F.one_hot([0, 3], 3)


def test_functional_linear_and_layer_norm_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        F.linear(gt.randn(2, 3), gt.randn(4, 5))
    with pytest.raises(ValueError, match="bias"):
        F.linear(gt.randn(2, 5), gt.randn(4, 5), gt.randn(5))
    with pytest.raises(ValueError, match="weight"):
        F.layer_norm(gt.randn(2, 5), 5, weight=gt.ones(4))
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(0)


def test_init_functions():
    w = nn.Parameter(gt.empty(64, 32))
    assert nn.init.xavier_uniform_(w) is w
    a = math.sqrt(6 / (32 + 64))
    assert np.all(np.abs(w.numpy()) <= a) and np.abs(w.numpy()).max() > 0.9 * a
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / 32)
    assert np.all(np.abs(w.numpy()) <= bound) and np.abs(w.numpy()).max() > 0.9 * bound
    nn.init.zeros_(w)
    assert not w.numpy().any() and w.requires_grad and w.is_leaf
    nn.init.ones_(w)
    assert np.all(w.numpy() == 1)
    nn.init.normal_(w, mean=2.0, std=0.5)
    assert abs(w.numpy().mean() - 2.0) < 0.05 and abs(w.numpy().std() - 0.5) < 0.05
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(nn.Parameter(gt.empty(3)))


# ---- gradients of whole layers vs central finite differences (float64) ---------------------
def check_layer_grads(module, x, eps=1e-6, rtol=1e-5, atol=1e-7, **kwargs):
    """Backprop sum(module(x) * upstream) and compare d/dx and every d/dparam with central
    differences, perturbing each parameter's array in place."""
    module.double().eval()
    xt = gt.tensor(x, dtype=gt.float64, requires_grad=True)
    out = module(xt, **kwargs)
    up = np.random.default_rng(7).standard_normal(out.shape)
    out.backward(gt.tensor(up))

    def objective():
        with gt.no_grad():
            return float(np.sum(module(gt.tensor(x_arr), **kwargs).numpy() * up))

    def put(p):
        # on a GPU .numpy() is a copy: the perturbed values go back into the parameter
        def write(arr):
            with gt.no_grad():
                p.copy_(gt.tensor(arr))
        return write

    x_arr = np.array(x, dtype=np.float64)
    targets = [("input", x_arr, xt.grad, lambda arr: None)]
    targets += [(n, np.array(p.numpy()), p.grad, put(p)) for n, p in module.named_parameters()]
    for name, arr, grad, write in targets:
        assert grad is not None, f"{name} got no gradient"
        numeric = np.zeros(arr.shape)
        flat, nflat = arr.reshape(-1), numeric.reshape(-1)
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            write(arr)
            f_plus = objective()
            flat[k] = orig - eps
            write(arr)
            f_minus = objective()
            flat[k] = orig
            write(arr)
            nflat[k] = (f_plus - f_minus) / (2 * eps)
        np.testing.assert_allclose(grad.numpy(), numeric, rtol=rtol, atol=atol, err_msg=f"gradient of {name}")


def test_linear_gradients_match_finite_differences():
    gt.manual_seed(0)
    check_layer_grads(nn.Linear(4, 3), rng.standard_normal((2, 2, 4)))


def test_layer_norm_gradients_match_finite_differences():
    ln = nn.LayerNorm(5)
    with gt.no_grad():
        ln.weight.copy_(rng.standard_normal(5))
        ln.bias.copy_(rng.standard_normal(5))
    check_layer_grads(ln, rng.standard_normal((3, 5)))


@pytest.mark.parametrize("causal", [False, True])
def test_attention_gradients_match_finite_differences(causal):
    gt.manual_seed(0)
    mask = None if causal else np.array([[False, True, False], [False, False, True], [True, False, False]])
    check_layer_grads(nn.MultiHeadAttention(4, 2, causal=causal), rng.standard_normal((2, 3, 4)), attn_mask=mask)


def test_transformer_block_gradients_match_finite_differences():
    gt.manual_seed(0)
    block = nn.TransformerBlock(4, 2, 6, causal=True, activation="gelu")
    with gt.no_grad():
        block.ln1.weight.copy_(rng.standard_normal(4))
        block.ln2.bias.copy_(rng.standard_normal(4))
    check_layer_grads(block, rng.standard_normal((1, 3, 4)))


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op:UserWarning")   # torch's init
@pytest.mark.parametrize("shape", [(2, 0), (4, 2, 0)])
def test_linear_with_no_input_features_gives_the_bias_as_torch(shape):
    torch = pytest.importorskip("torch")
    got = []
    for lib in (gt, torch):
        m = lib.nn.Linear(0, 3)
        with lib.no_grad():
            m.bias.copy_(lib.tensor([1.0, -2.0, 0.5]))
        x = lib.zeros(*shape, requires_grad=True)
        y = m(x)
        (y * 2).sum().backward()
        got.append((y.detach().numpy(), m.bias.grad.numpy(), tuple(m.weight.grad.shape), tuple(x.grad.shape)))
    for a, b in zip(*got):
        np.testing.assert_array_equal(a, b)
