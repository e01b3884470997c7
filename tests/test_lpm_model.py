"""PixelTransformer: state-dict layout, input forms, bad input, and the synthetic data."""

import math

import numpy as np
import pytest

import gt
import lpm
import lpm.model
from gt import nn
from lpm.data import DIRECTIONS, NUM_CLASSES, make_moving_blobs, train_eval_split
from lpm.model import PixelTransformer, PixelTransformerConfig, sinusoidal_encoding

SMALL = dict(img_size=8, embed_dim=16, num_heads=4, num_layers=2, ff_dim=24, num_classes=3, max_seq_len=6)


def small_model(**overrides):
    gt.manual_seed(0)
    return PixelTransformer(**{**SMALL, **overrides})


def images(*shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def expected_layout(D, P, F, C, L, max_seq_len=None):
    keys = [("embed.weight", (D, P)), ("embed.bias", (D,))]
    if max_seq_len is not None:
        keys.append(("pos_embedding", (max_seq_len, D)))
    for i in range(L):
        b = f"blocks.{i}."
        keys += [(b + "ln1.weight", (D,)), (b + "ln1.bias", (D,))]
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            keys += [(b + f"attn.{proj}.weight", (D, D)), (b + f"attn.{proj}.bias", (D,))]
        keys += [(b + "ln2.weight", (D,)), (b + "ln2.bias", (D,)),
                 (b + "ff.fc1.weight", (F, D)), (b + "ff.fc1.bias", (F,)),
                 (b + "ff.fc2.weight", (D, F)), (b + "ff.fc2.bias", (D,))]
    keys += [("norm.weight", (D,)), ("norm.bias", (D,)), ("head.weight", (C, D)), ("head.bias", (C,))]
    return keys


# ---- the public interface ---------------------------------------------------------------------
def test_package_exports_and_seed_building_blocks():
    assert lpm.PixelTransformer is PixelTransformer
    # code written against the seed imports its building blocks from the model module
    assert lpm.model.LayerNorm is nn.LayerNorm
    assert lpm.model.MultiHeadAttention is nn.MultiHeadAttention
    assert lpm.model.FeedForward is nn.FeedForward
    assert lpm.model.TransformerBlock is nn.TransformerBlock


@pytest.mark.parametrize("pos_encoding", ["sinusoidal", "learned"])
def test_state_dict_keys_and_shapes(pos_encoding):
    model = small_model(pos_encoding=pos_encoding)
    layout = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = expected_layout(16, 64, 24, 3, 2, max_seq_len=6 if pos_encoding == "learned" else None)
    assert layout == dict(expected)
    # torch's order: a module's own parameters (pos_embedding) first, then its children in order
    assert [k for k in layout if k != "pos_embedding"] == [k for k, _ in expected if k != "pos_embedding"]
    assert all(v.dtype == np.float32 for v in model.state_dict().values())


def test_default_config_state_dict_layout():
    model = PixelTransformer()  # img 200, D 256, 4 heads, 4 layers, F 1024, 10 classes
    layout = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert layout == expected_layout(256, 40000, 1024, 10, 4)
    assert model.num_parameters() == sum(math.prod(s) for _, s in layout)


def test_sinusoidal_table_is_the_original_transformers_and_not_saved():
    model = small_model()
    pe = model.pos_encoding.numpy()
    assert pe.shape == (6, 16)
    pos, i = np.arange(6)[:, None], np.arange(0, 16, 2)[None, :]
    np.testing.assert_allclose(pe[:, 0::2], np.sin(pos / 10000 ** (i / 16)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pe[:, 1::2], np.cos(pos / 10000 ** (i / 16)), rtol=1e-6, atol=1e-6)
    assert "pos_encoding" not in model.state_dict()
    assert all(p is not model.pos_encoding for p in model.parameters())
    # odd widths work too: the last column is a sin
    assert sinusoidal_encoding(3, 5).shape == (3, 5)


def test_learned_positions_are_trained_only_where_used():
    model = small_model(pos_encoding="learned")
    model(images(2, 4, 8, 8)).sum().backward()
    grad = model.pos_embedding.grad.numpy()
    assert grad.shape == (6, 16)
    assert np.all(grad[4:] == 0) and np.any(grad[:4] != 0)   # rows past the sequence get no gradient


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_learned_positions_start_as_the_sinusoidal_model(pool):
    # An N(0, 0.02^2) table was too faint beside the embedded frames for SGD to make the model
    # use frame order in the default budget (52% held out on the blobs, against 96%): the table
    # starts sinusoidal instead, with no random draw, so the whole model starts as the fixed one.
    fixed, learned = small_model(pool=pool), small_model(pool=pool, pos_encoding="learned")
    rows = 6 + (pool == "cls")
    assert learned.pos_embedding.shape == (rows, 16) and learned.pos_embedding.requires_grad
    np.testing.assert_array_equal(learned.pos_embedding.numpy(), sinusoidal_encoding(rows, 16).numpy())
    for name, value in fixed.state_dict().items():
        np.testing.assert_array_equal(learned.state_dict()[name], value, err_msg=name)
    x = images(2, 5, 8, 8)
    np.testing.assert_array_equal(learned(x).numpy(), fixed(x).numpy())
    assert not np.allclose(learned(x).numpy(), learned(x[:, ::-1].copy()).numpy(), atol=1e-3)  # order counts


def test_state_dict_round_trip():
    a, b = small_model(), small_model()
    gt.manual_seed(1)
    b = PixelTransformer(**SMALL)
    x = images(2, 3, 8, 8)
    assert not np.allclose(a(x).numpy(), b(x).numpy())
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


# ---- input forms ------------------------------------------------------------------------------
def test_numpy_gt_and_flattened_inputs_agree():
    model = small_model()
    x = images(3, 5, 8, 8)
    out = model(x)
    assert out.shape == (3, 3) and out.dtype == gt.float32
    np.testing.assert_array_equal(out.numpy(), model(gt.from_numpy(x)).numpy())
    np.testing.assert_array_equal(out.numpy(), model(x.reshape(3, 5, 64)).numpy())
    # float64 numpy input is converted to float32
    out64 = model(x.astype(np.float64))
    assert out64.dtype == gt.float32
    np.testing.assert_allclose(out64.numpy(), out.numpy(), rtol=1e-6)


def test_forward_matches_a_manual_pipeline():
    model = small_model()
    x = images(2, 4, 8, 8)
    sd = model.state_dict()
    h = x.reshape(2, 4, 64) @ sd["embed.weight"].T + sd["embed.bias"] + model.pos_encoding.numpy()[:4]
    h = gt.from_numpy(h.astype(np.float32))
    for block in model.blocks:
        h = block(h)
    expected = model.head(model.norm(h).mean(axis=1)).numpy()
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_mean_pooling_sees_order_through_positions():
    # Without positional encodings a mean-pooled transformer is blind to frame order;
    # with them, reversing the sequence changes the logits.
    model = small_model()
    x = images(1, 5, 8, 8)
    assert not np.allclose(model(x).numpy(), model(x[:, ::-1].copy()).numpy())


def test_seed_style_manual_update_loop():
    model = small_model()
    x, y = images(4, 3, 8, 8), np.array([0, 1, 2, 1])
    target = nn.functional.one_hot(gt.tensor(y), 3)
    losses = []
    for _ in range(15):
        loss = nn.mse_loss(model(x), target)
        loss.backward()
        with gt.no_grad():
            for param in model.parameters():
                param -= 0.05 * param.grad
                param.grad.zero_()
        losses.append(float(loss.data.numpy()))
    assert losses[-1] < 0.5 * losses[0]


# ---- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, match", [
    ((8, 8), "dimension"),
    ((2, 3, 8, 8, 1), "dimension"),
    ((2, 3, 7, 8), "8x8 pixels"),
    ((2, 3, 9, 9), "8x8 pixels"),
    ((2, 3, 63), "img_size\\*\\*2 = 64"),
    ((2, 7, 8, 8), "longer than max_seq_len=6"),
    ((0, 3, 8, 8), "empty batch"),
    ((2, 0, 8, 8), "empty image sequence"),
])
def test_bad_shapes_raise_before_any_compute(shape, match):
    model = small_model()

    def no_compute(*args, **kwargs):
        raise AssertionError("the model computed before rejecting its input")

    model.embed.forward = no_compute
    with pytest.raises(ValueError, match=match):
        model(np.zeros(shape, np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_raise(bad):
    model = small_model()
    assert model.check_input(images(2, 3, 8, 8)).shape == (2, 3, 64)
    x = images(2, 3, 8, 8)
    x[1, 2, 3, 4] = bad
    # The pixels are checked on the embedding's output (finite exactly when they are): on the CPU
    # nothing after the embedding runs, so any block would fail with a TypeError, not the ValueError
    # below; on a GPU the check waits for the next host read (gt/tensor/checks.py)
    if not gt.checks.deferred():
        for block in model.blocks:
            block.forward = None
    with pytest.raises(ValueError, match="non-finite"):
        model(x).sum().item()
    with pytest.raises(ValueError, match="non-finite"):
        model(gt.from_numpy(x)).sum().item()
    with pytest.raises(ValueError, match="non-finite"):
        model.check_input(x)                # on its own: before any compute


@pytest.mark.parametrize("kwargs, match", [
    (dict(embed_dim=30, num_heads=4), "divisible"),
    (dict(embed_dim=-16), "embed_dim"),
    (dict(img_size=0), "img_size"),
    (dict(num_layers=-1), "num_layers"),
    (dict(max_seq_len=0), "max_seq_len"),
    (dict(num_classes=2.5), "num_classes"),
    (dict(dropout=1.0), "dropout"),
    (dict(pos_encoding="rotary"), "pos_encoding"),
    (dict(activation="tanh"), "activation"),
])
def test_bad_construction_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PixelTransformer(**{**SMALL, **kwargs})


def test_config_round_trip_and_gelu():
    cfg = PixelTransformerConfig(**{**SMALL, "activation": "gelu"})
    model = PixelTransformer.from_config(cfg)
    assert model.config == cfg
    assert model(images(1, 2, 8, 8)).shape == (1, 3)
    assert PixelTransformer(**{**SMALL, "num_layers": 0})(images(1, 2, 8, 8)).shape == (1, 3)


# ---- the synthetic data -----------------------------------------------------------------------
def blob_centres(frames):
    """(N, S, H, W) -> (N, S, 2) intensity-weighted (y, x) centres above the noise floor."""
    w = np.clip(frames - 0.5, 0, None)
    grid = np.arange(frames.shape[-1])
    total = w.sum(axis=(-2, -1))
    return np.stack([(w.sum(-1) * grid).sum(-1) / total, (w.sum(-2) * grid).sum(-1) / total], axis=-1)


def test_data_shapes_range_balance_and_determinism():
    x, y = make_moving_blobs(40, seq_len=5, img_size=32, seed=3)
    assert x.shape == (40, 5, 32, 32) and x.dtype == np.float32
    assert y.shape == (40,) and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.bincount(y, minlength=NUM_CLASSES).tolist() == [10] * NUM_CLASSES
    x2, y2 = make_moving_blobs(40, seq_len=5, img_size=32, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = make_moving_blobs(40, seq_len=5, img_size=32, seed=4)
    assert not np.array_equal(x, x3)


def test_blob_moves_in_the_labelled_direction():
    x, y = make_moving_blobs(64, seq_len=6, img_size=64, seed=0, noise=0.2)
    c = blob_centres(x)                     # (N, S, 2) as (y, x)
    step = (c[:, -1] - c[:, 0])             # (N, 2) total displacement
    expected = {"right": (1, 1), "left": (1, -1), "down": (0, 1), "up": (0, -1)}
    for label, name in enumerate(DIRECTIONS):
        axis, sign = expected[name]
        moved = step[y == label]
        assert np.all(sign * moved[:, axis] > 3)                        # along the motion
        assert np.all(np.abs(moved[:, 1 - axis]) < 1.5)                 # and not across it


def test_one_frame_does_not_tell_the_direction():
    # Left- and right-moving blobs visit the same places: the frames, taken as an unordered
    # set, have the same distribution of positions; only their order tells them apart.
    x, y = make_moving_blobs(800, seq_len=6, img_size=48, seed=1, noise=0.0)
    cx = blob_centres(x)[..., 1]
    right, left = cx[y == DIRECTIONS.index("right")], cx[y == DIRECTIONS.index("left")]
    assert abs(right.mean() - left.mean()) < 1.5
    assert abs(right.std() - left.std()) < 1.5
    # ... while the first frame alone differs a lot on average (it needs the frame's position)
    assert right[:, 0].mean() < left[:, 0].mean() - 5


def test_train_eval_split():
    x, y = make_moving_blobs(10, seq_len=2, img_size=8, seed=0)
    (xt, yt), (xe, ye) = train_eval_split(x, y, eval_split=0.3, seed=0)
    assert (len(yt), len(ye)) == (7, 3)
    assert sorted(np.concatenate([yt, ye]).tolist()) == sorted(y.tolist())
    (xt2, _), _ = train_eval_split(x, y, eval_split=0.3, seed=0)
    np.testing.assert_array_equal(xt, xt2)
    (xt3, yt3), (xe3, ye3) = train_eval_split(x, y, eval_split=0.3, shuffle=False)
    assert np.shares_memory(xt3, x) and np.shares_memory(xe3, x)          # views, no copy
    np.testing.assert_array_equal(np.concatenate([yt3, ye3]), y)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="eval_split"):
            train_eval_split(x, y, eval_split=bad)


@pytest.mark.parametrize("kwargs", [dict(num_samples=0), dict(seq_len=0), dict(img_size=2), dict(noise=1.0)])
def test_data_rejects_bad_arguments(kwargs):
    args = {**dict(num_samples=4, seq_len=2, img_size=16), **kwargs}
    with pytest.raises(ValueError, match="make_moving_blobs"):
        make_moving_blobs(**args)


def test_dropout_is_active_in_training_only():
    model = small_model(dropout=0.5)
    x = images(2, 4, 8, 8)
    model.eval()
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    model.train()
    gt.manual_seed(1)
    first = model(x).numpy()
    assert not np.array_equal(first, model(x).numpy())
