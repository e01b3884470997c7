"""The Pixel Transformer against a PyTorch reference of the same architecture.

The reference (benchmarks/torch_reference.py) is written from torch primitives (pre-norm blocks with separate
q/k/v/out projections, ReLU feed-forward, LayerNorm eps 1e-5, the original Transformer's
sinusoid). Loaded with the gt model's ``state_dict()`` it must give the same logits and
the same gradient for every parameter, within 1e-4 relative in float32.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

import gt
from gt import nn
from lpm.model import PixelTransformer

torch = pytest.importorskip("torch", reason="torch is not installed: the gt-vs-torch Pixel Transformer "
                                            "comparisons are skipped (pip install torch==2.13.0)")
tnn = torch.nn

# The benchmark's PyTorch reference model (one definition for both)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from torch_reference import TorchPixelTransformer  # noqa: E402

RTOL = 1e-4


def rel_err(a, b):
    """max |a - b| / max |b|: the error relative to the tensor's scale."""
    scale = float(np.max(np.abs(b)))
    return float(np.max(np.abs(a - b))) / (scale if scale > 0 else 1.0)


def compare(cfg, batch, seq, learned=False, seed=0):
    gt.manual_seed(seed)
    model = PixelTransformer(**cfg, pos_encoding="learned" if learned else "sinusoidal")
    if learned:  # a random table (the default start is the sinusoidal one) checks any values flow through
        with gt.no_grad():
            model.pos_embedding.copy_(gt.randn(*model.pos_embedding.shape))
    if cfg.get("pool") == "cls":     # likewise the class token's start
        with gt.no_grad():
            model.cls_token.copy_(gt.randn(*model.cls_token.shape))
    ref = TorchPixelTransformer(**cfg, pos_encoding="learned" if learned else "sinusoidal")
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()}, strict=True)

    rng = np.random.default_rng(seed)
    x = rng.random((batch, seq, cfg["img_size"], cfg["img_size"]), dtype=np.float32)
    y = rng.integers(0, cfg["num_classes"], size=batch)

    logits = model(x)
    nn.functional.cross_entropy(logits, gt.tensor(y)).backward()
    t_logits = ref(torch.from_numpy(x))
    tnn.functional.cross_entropy(t_logits, torch.from_numpy(y)).backward()

    assert rel_err(logits.numpy(), t_logits.detach().numpy()) < RTOL
    grads = {name: p.grad.numpy() for name, p in model.named_parameters()}
    t_grads = {name: p.grad.numpy() for name, p in ref.named_parameters()}
    assert set(grads) == set(t_grads)
    # The k_proj bias adds q . b_k to every score of a query, which softmax ignores: its true
    # gradient is exactly 0 and both frameworks return rounding noise (~1e-10). Such tensors
    # are compared against the scale of the whole model's gradient instead of their own.
    scale = max(float(np.max(np.abs(g))) for g in t_grads.values())
    worst = {}
    for name, g in grads.items():
        ref_g = t_grads[name]
        if np.max(np.abs(ref_g)) < 1e-6 * scale:
            assert "k_proj.bias" in name, f"unexpected zero gradient for {name}"
            worst[name] = float(np.max(np.abs(g - ref_g))) / scale
        else:
            worst[name] = rel_err(g, ref_g)
    bad = {k: v for k, v in worst.items() if not v < RTOL}
    assert not bad, f"gradients differ from torch beyond {RTOL} relative: {bad}"
    return worst


@pytest.mark.parametrize("learned", [False, True], ids=["sinusoidal", "learned"])
def test_small_config_matches_torch(small_model_config, learned):
    worst = compare(small_model_config, batch=3, seq=5, learned=learned)
    assert len(worst) == 2 + 16 * 2 + 4 + learned   # embed, 2 blocks of 16, norm and head (, pos)


def test_odd_embedding_width_matches_torch(small_model_config):
    compare(dict(small_model_config, embed_dim=30, num_heads=3), batch=2, seq=3)


def test_default_config_matches_torch():
    # The default model: 200x200 images, D 256, 4 layers, 4 heads, F 1024, batch 2.
    cfg = dict(img_size=200, embed_dim=256, num_heads=4, num_layers=4, ff_dim=1024, num_classes=10,
               max_seq_len=32)
    worst = compare(cfg, batch=2, seq=3)
    assert worst["embed.weight"] < RTOL and worst["head.weight"] < RTOL


@pytest.mark.parametrize("learned", [False, True], ids=["sinusoidal", "learned"])
def test_class_token_model_matches_torch(small_model_config, learned):
    # ViT's class token: prepended at position 0 (the frames at 1..S), classified from its final
    # state after the final LayerNorm; every parameter's gradient, the token's included. seq=8 is
    # max_seq_len: the last position-table row (max_seq_len + 1 rows) is used.
    worst = compare(dict(small_model_config, pool="cls"), batch=3, seq=8, learned=learned)
    assert "cls_token" in worst and len(worst) == 2 + 16 * 2 + 4 + learned + 1
