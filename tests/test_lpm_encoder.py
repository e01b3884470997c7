"""PixelTransformer as an encoder: encode(x) (B, S, D), the pool= and head= options, and the
default model unchanged (forward == head(pool(encode(x))), same state-dict layout)."""

from dataclasses import asdict

import numpy as np
import pytest

import gt
from lpm import memory
from lpm.model import PixelTransformer, PixelTransformerConfig
from test_lpm_model import SMALL, expected_layout, images, small_model


def layout(model):
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def test_encode_is_the_features_forward_pools_and_classifies():
    model = small_model()
    x = images(3, 5, 8, 8)
    features = model.encode(x)
    assert features.shape == (3, 5, 16)
    # the final LayerNorm is in: every token's features have mean 0 (norm's bias starts at 0)
    np.testing.assert_allclose(features.numpy().mean(-1), 0, atol=1e-5)
    logits = model(x)
    np.testing.assert_array_equal(logits.numpy(), model.head(model.pool(features)).numpy())
    np.testing.assert_array_equal(model.pool(features).numpy(), features.mean(axis=1).numpy())
    np.testing.assert_array_equal(model.encode(x.reshape(3, 5, 64)).numpy(), features.numpy())


def test_encode_by_hand():
    model = small_model(pos_encoding="learned")
    x = gt.tensor(images(2, 4, 8, 8)).reshape(2, 4, 64)
    h = model.embed(x) + model.pos_embedding[:4]
    for block in model.blocks:
        h = block(h)
    np.testing.assert_allclose(model.encode(x).numpy(), model.norm(h).numpy(), rtol=1e-6, atol=1e-6)


def test_head_none_returns_pooled_features_and_has_no_head_weights():
    gt.manual_seed(0)
    full = PixelTransformer(**SMALL)
    encoder = PixelTransformer(**SMALL, head=None)
    assert encoder.head is None
    assert layout(full) == expected_layout(16, 64, 24, 3, 2)
    assert layout(encoder) == layout(full)[:-2]                    # all but head.weight, head.bias
    encoder.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith("head.")})
    x = images(2, 3, 8, 8)
    out = encoder(x)
    assert out.shape == (2, 16)
    np.testing.assert_array_equal(out.numpy(), full.encode(x).mean(axis=1).numpy())
    out.sum().backward()
    assert encoder.embed.weight.grad is not None and np.abs(encoder.embed.weight.grad.numpy()).sum() > 0


def test_pool_none_keeps_every_token():
    model = small_model(pool="none")
    x = images(2, 3, 8, 8)
    out = model(x)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.numpy(), model.head(model.encode(x)).numpy())
    bare = small_model(pool="none", head=None)
    np.testing.assert_array_equal(bare(x).numpy(), bare.encode(x).numpy())
    assert "pool='none'" in repr(bare) and "head=None" in repr(bare)


def test_default_options_are_the_classifier_and_old_configs_still_load():
    cfg = PixelTransformerConfig()
    assert (cfg.pool, cfg.head) == ("mean", "linear")
    saved = asdict(PixelTransformerConfig(**SMALL))
    old = {k: v for k, v in saved.items() if k not in ("pool", "head")}     # a checkpoint from before
    assert PixelTransformerConfig(**old) == PixelTransformerConfig(**saved)
    assert "pool" not in repr(small_model()) and "head=None" not in repr(small_model())


@pytest.mark.parametrize("bad, message", [
    (dict(pool="max"), r"pool must be one of \('mean', 'cls', 'none'\), got 'max'"),
    (dict(pool=None), r"pool must be one of \('mean', 'cls', 'none'\), got None"),
    (dict(pool="CLS"), r"pool must be one of \('mean', 'cls', 'none'\), got 'CLS'"),
    (dict(head="mlp"), r"head must be 'linear' or None, got 'mlp'"),
    (dict(head=False), r"head must be 'linear' or None, got False"),
])
def test_bad_options_are_one_line_errors(bad, message):
    with pytest.raises(ValueError, match=message) as info:
        PixelTransformer(**SMALL, **bad)
    assert "\n" not in str(info.value)


# ---- pool="cls": ViT's class token -------------------------------------------------------------
@pytest.mark.parametrize("pos_encoding", ["sinusoidal", "learned"])
def test_class_token_by_hand(pos_encoding):
    model = small_model(pool="cls", pos_encoding=pos_encoding)
    with gt.no_grad():                      # a token far from its N(0, 0.02^2) start, so that it counts
        model.cls_token.copy_(gt.randn(1, 1, 16))
    x = gt.tensor(images(2, 6, 8, 8)).reshape(2, 6, 64)      # S = max_seq_len: every position is used
    pos = model.pos_embedding if pos_encoding == "learned" else model.pos_encoding
    assert pos.shape == (7, 16)                               # max_seq_len + 1 rows: the token's is row 0
    h = gt.cat([model.cls_token.expand(2, 1, 16), model.embed(x)], dim=1) + pos
    for block in model.blocks:
        h = block(h)
    features = model.encode(x)
    assert features.shape == (2, 7, 16)                       # the token first, then the 6 frames
    np.testing.assert_allclose(features.numpy(), model.norm(h).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(model.pool(features).numpy(), features.numpy()[:, 0])
    logits = model(x)
    np.testing.assert_array_equal(logits.numpy(), model.head(model.pool(features)).numpy())
    logits.sum().backward()
    assert model.cls_token.grad.shape == (1, 1, 16) and np.abs(model.cls_token.grad.numpy()).sum() > 0


def test_class_token_state_dict_init_and_same_start_as_the_mean_model():
    mean, cls = small_model(), small_model(pool="cls")
    assert layout(cls) == [("cls_token", (1, 1, 16))] + layout(mean)       # own parameters first, as torch
    for name, value in mean.state_dict().items():     # the token is drawn last: the rest is the mean model's
        np.testing.assert_array_equal(cls.state_dict()[name], value, err_msg=name)
    learned = small_model(pool="cls", pos_encoding="learned")
    assert dict(layout(learned))["pos_embedding"] == (7, 16)
    for cfg in (dict(SMALL, pool="cls"), dict(SMALL, pool="cls", pos_encoding="learned")):
        assert memory.parameter_count(**cfg) == PixelTransformer(**cfg).num_parameters()
    gt.manual_seed(0)
    wide = PixelTransformer(**dict(SMALL, embed_dim=2048, num_layers=0, pool="cls")).cls_token.numpy()
    assert 0.018 < wide.std() < 0.022 and abs(wide.mean()) < 0.002       # trunc_normal_(std=0.02)
    assert "pool='cls'" in repr(cls) and "cls_token" not in mean.state_dict()
    with pytest.raises(RuntimeError, match="cls_token"):                  # a mean model's weights lack it
        cls.load_state_dict(mean.state_dict())


def test_class_token_model_sees_frame_order_and_works_as_an_encoder():
    model = small_model(pool="cls")
    x = images(1, 5, 8, 8)
    assert not np.allclose(model(x).numpy(), model(x[:, ::-1].copy()).numpy())
    encoder = small_model(pool="cls", head=None)
    out = encoder(x)
    assert out.shape == (1, 16)
    np.testing.assert_array_equal(out.numpy(), encoder.encode(x).numpy()[:, 0])
    with pytest.raises(ValueError, match="longer than max_seq_len=6"):    # the token does not count
        model(images(1, 7, 8, 8))
