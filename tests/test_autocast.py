"""gt.autocast("bfloat16"): products in bfloat16, everything else float32; training converges."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gt
from gt import nn
from gt.backend import B

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
torch_engine = pytest.mark.skipif(B.name != "torch", reason="bfloat16 needs the torch engine: this runs in "
                                  "the GT_BACKEND=torch pass of the suite")


def bf16(a):
    """float32 values rounded to bfloat16 (round to nearest even), still stored as float32."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


@torch_engine
def test_matmul_runs_on_bfloat16_inputs_and_returns_float32():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 64)).astype(np.float32), rng.standard_normal((64, 3)).astype(np.float32)
    x, w = gt.tensor(a, requires_grad=True), gt.tensor(b, requires_grad=True)
    with gt.autocast("bfloat16"):
        assert gt.is_autocast_enabled()
        y = x @ w
    assert not gt.is_autocast_enabled()
    assert y.dtype == gt.float32
    exact = bf16(a).astype(np.float64) @ bf16(b).astype(np.float64)
    np.testing.assert_allclose(y.numpy(), bf16(exact.astype(np.float32)), rtol=1e-2, atol=1e-2)
    assert not np.allclose(y.numpy(), a @ b, rtol=1e-5, atol=0)     # the float32 product differs
    g = rng.standard_normal((5, 3)).astype(np.float32)
    y.backward(gt.tensor(g))                                         # backward outside the block
    assert x.grad.dtype == w.grad.dtype == gt.float32
    np.testing.assert_allclose(x.grad.numpy(), bf16(g).astype(np.float64) @ bf16(b).T.astype(np.float64),
                               rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(w.grad.numpy(), bf16(a).T.astype(np.float64) @ bf16(g).astype(np.float64),
                               rtol=2e-2, atol=2e-2)


@torch_engine
def test_linear_and_attention_match_torch_autocast():
    torch = pytest.importorskip("torch")
    gt.manual_seed(1)
    attn = nn.MultiHeadAttention(32, num_heads=4)
    x = gt.randn(2, 6, 32)
    with gt.autocast("bfloat16"):
        ours = attn(x).numpy()
    plain = attn(x).numpy()
    err_low, err_plain = np.abs(ours - plain).max(), 0.0
    assert 1e-4 < err_low < 5e-2        # rounded, but close
    assert err_plain == 0.0
    lin = nn.Linear(32, 8)
    with gt.autocast("bfloat16"):
        y = lin(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = torch.nn.functional.linear(torch.from_numpy(x.numpy()), torch.from_numpy(lin.weight.numpy()),
                                         torch.from_numpy(lin.bias.numpy()))
    np.testing.assert_allclose(y.numpy(), ref.float().numpy(), rtol=2e-2, atol=2e-2)


def _rounding_spy(monkeypatch):
    """Record what the products get: ``(casts, float32 inputs the products round themselves)``."""
    casts, unrounded = [], []
    astype, lowp = B.astype, B.matmul_lowp

    def spy_astype(arr, dtype):
        casts.append(tuple(arr.shape))
        return astype(arr, dtype)

    def spy_lowp(a, b, dtype, result=None):
        unrounded.extend(tuple(t.shape) for t in (a, b) if B.dtype_of(t) != gt.bfloat16)
        return lowp(a, b, dtype, result)

    monkeypatch.setattr(B, "astype", spy_astype)
    monkeypatch.setattr(B, "matmul_lowp", spy_lowp)
    return casts, unrounded


@torch_engine
@pytest.mark.parametrize("relu", [False, True])
def test_linear_rounds_each_input_once_and_gives_torchs_bfloat16_products(relu, monkeypatch):
    """x, the weight and the upstream gradient are each rounded once (torch.autocast's casts), the
    three products are torch's bfloat16 products to the bit, handed on in float32."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    gt.manual_seed(3)
    lin = nn.Linear(32, 8)
    a, up = rng.standard_normal((7, 5, 32)).astype(np.float32), rng.standard_normal((7, 5, 8)).astype(np.float32)
    x = gt.tensor(a, requires_grad=True)
    casts, unrounded = _rounding_spy(monkeypatch)
    with gt.autocast("bfloat16"):
        y = gt.nn.functional.relu(lin(x)) if relu else lin(x)
    y.backward(gt.tensor(up))
    assert sorted(casts) == [(8, 32), (35, 8), (35, 32)] and unrounded == []
    xb, wb, b = (torch.from_numpy(v).bfloat16() for v in (a.reshape(35, 32), lin.weight.numpy(), lin.bias.numpy()))
    want = (xb @ wb.T).float() + torch.from_numpy(lin.bias.numpy())
    g = torch.from_numpy(up.reshape(35, 8))
    if relu:
        want = want.relu()
        g = g * (want > 0)
    np.testing.assert_array_equal(y.detach().numpy().reshape(35, 8), want.numpy())
    gb = g.bfloat16()
    np.testing.assert_array_equal(x.grad.numpy().reshape(35, 32), (gb @ wb).float().numpy())
    np.testing.assert_array_equal(lin.weight.grad.numpy(), (gb.T @ xb).float().numpy())
    np.testing.assert_allclose(lin.bias.grad.numpy(), g.sum(0).numpy(), rtol=1e-6)   # a float32 sum (a GPU's order)


@torch_engine
def test_attention_rounds_q_k_v_and_the_gradients_once(monkeypatch):
    """Composed attention under autocast: q, k and v rounded once for all six products, the
    upstream gradient and the scores' gradient once each; only the softmax's weights (kept in
    float32 for the softmax's own gradient) are rounded by the two products that read them."""
    q, k, v = (gt.randn(2, 4, 6, 8, requires_grad=True) for _ in range(3))
    casts, unrounded = _rounding_spy(monkeypatch)
    with gt.autocast("bfloat16"):
        out = gt.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    out.backward(gt.ones_like(out))
    assert casts == [(2, 4, 6, 8)] * 4 + [(2, 4, 6, 6)] and unrounded == [(2, 4, 6, 6)] * 2
    assert q.grad.dtype == k.grad.dtype == v.grad.dtype == out.dtype == gt.float32


@torch_engine
def test_parameters_gradients_and_float64_stay_as_they_are():
    lin = nn.Linear(16, 4)
    x64 = gt.randn(3, 16, dtype=gt.float64)
    w64 = gt.randn(16, 4, dtype=gt.float64)
    plain = (x64 @ w64).numpy()
    with gt.autocast("bfloat16"):
        np.testing.assert_array_equal((x64 @ w64).numpy(), plain)   # never lowered
        lin(gt.randn(3, 16)).sum().backward()
        with gt.autocast(enabled=False):
            assert not gt.is_autocast_enabled()
            y = gt.randn(2, 16) @ gt.randn(16, 2)
        assert gt.is_autocast_enabled()
    assert lin.weight.dtype == lin.weight.grad.dtype == gt.float32
    assert y.dtype == gt.float32


@torch_engine
def test_autocast_is_a_decorator_too():
    @gt.autocast("bf16")
    def f(a, b):
        return a @ b, gt.is_autocast_enabled()

    a, b = gt.randn(4, 8), gt.randn(8, 2)
    out, inside = f(a, b)
    assert inside and not gt.is_autocast_enabled()
    assert not np.array_equal(out.numpy(), (a @ b).numpy())


@pytest.mark.parametrize("make", [
    lambda: gt.autocast("cpu", dtype=gt.bfloat16), lambda: gt.autocast("cpu"), lambda: gt.autocast("cuda", gt.bfloat16),
    lambda: gt.autocast(device_type="cpu", dtype=gt.bfloat16, cache_enabled=False), lambda: gt.amp.autocast("cpu"),
], ids=["device dtype", "device", "cuda positional", "keywords", "gt.amp"])
def test_torch_s_form_with_a_device_type(make):
    ctx = make()
    assert (ctx.dtype, ctx.enabled) == (gt.bfloat16, True)
    off = gt.autocast("cpu", gt.bfloat16, False)
    assert not off.enabled
    if B.supports_bfloat16:
        with ctx:
            assert gt.is_autocast_enabled()
        assert not gt.is_autocast_enabled()


def test_bad_dtype_is_a_clear_error():
    with pytest.raises(ValueError, match="unsupported dtype gt.float64; expected 'bfloat16' .* or 'float16'"):
        gt.autocast("cpu", dtype=gt.float64)
    with pytest.raises(TypeError, match="too many positional arguments .* torch's: autocast"):
        gt.autocast("cpu", gt.bfloat16, True, None, 5)
    with pytest.raises(ValueError, match="unsupported dtype 'float8'; expected 'bfloat16'"):
        gt.autocast("float8")
    with pytest.raises(TypeError, match="enabled must be True or False"):
        gt.autocast("bfloat16", enabled="yes")


@pytest.mark.skipif(B.name != "numpy", reason="the numpy engine's error")
def test_numpy_engine_says_to_use_torch():
    with pytest.raises(RuntimeError, match="the numpy engine has none. Use the torch engine: GT_BACKEND=torch"):
        with gt.autocast("bfloat16"):
            pass
    assert not gt.is_autocast_enabled()


@pytest.mark.first_pass
def test_training_with_bfloat16_converges_on_cpu():
    """The blob-direction task of ``python train.py``, small, trained with and without autocast
    on the torch engine (a fresh process, whatever engine this suite runs on)."""
    pytest.importorskip("torch")
    code = ("import json, sys; from lpm.train import TrainConfig, train; "
            "cfg = dict(samples=240, seq_len=6, img_size=32, embed_dim=32, num_heads=4, ff_dim=64, epochs=8, "
            "batch_size=16, optimizer='adam', lr=3e-3, progress=False); "
            "runs = [train(TrainConfig(**cfg, autocast=a), log=lambda line: None) for a in (None, 'bfloat16')]; "
            "print(json.dumps([[r['losses'], r['eval_acc']] for r in runs]))")
    env = dict(os.environ, GT_BACKEND="torch", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    (losses32, acc32), (losses16, acc16) = json.loads(done.stdout)
    assert losses16[-1] < 0.1 * losses16[0]          # it learns
    assert acc16 >= 0.8 and acc16 >= acc32 - 0.1      # about as well as float32
    assert losses16 != losses32                        # and it did run in bfloat16
