"""The component checks the seed project's users relied on, as real tests.

Minimal ops, a training loop whose loss goes down, reshape/permute, a transformer block
forward and backward, LayerNorm and attention, ``gt.ones`` parameters, LayerNorm step by
step, module wrapping, nested modules, and the model without auto-sharding.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gt
from gt import nn
from lpm.model import LayerNorm, MultiHeadAttention, PixelTransformer, TransformerBlock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def arr(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_minimal_ops_values_and_gradients():
    a = gt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = gt.tensor([[0.5, -1.0], [2.0, 0.0]], requires_grad=True)
    c = (a * b + a @ b - a / 2).sum()
    expected = (np.array([[1, 2], [3, 4.]]) * np.array([[.5, -1], [2, 0.]])
                + np.array([[1, 2], [3, 4.]]) @ np.array([[.5, -1], [2, 0.]]) - np.array([[1, 2], [3, 4.]]) / 2)
    assert c.item() == pytest.approx(expected.sum())
    c.backward()
    # d/da of sum(a*b) = b; of sum(a@b) = 1 @ b.T; of sum(-a/2) = -1/2
    np.testing.assert_allclose(a.grad.numpy(), b.numpy() + np.ones((2, 2)) @ b.numpy().T - 0.5)
    np.testing.assert_allclose(b.grad.numpy(), a.numpy() + a.numpy().T @ np.ones((2, 2)))
    assert (a.relu() - a).abs().sum().item() == 0.0
    assert gt.tensor([1.0, 2.0, 3.0]).mean().item() == pytest.approx(2.0)


def test_training_loop_loss_decreases():
    # A linear classifier on separable data with a hand-written SGD step, as the seed did.
    gt.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    target = nn.functional.one_hot(gt.tensor(y), 2)
    losses = []
    for _ in range(40):
        loss = nn.mse_loss(model(x), target)
        loss.backward()
        with gt.no_grad():
            for p in model.parameters():
                p -= 0.5 * p.grad
                p.grad.zero_()
        losses.append(float(loss.data.numpy()))
    assert losses[-1] < 0.5 * losses[0]
    assert all(np.isfinite(losses))
    acc = (model(x).argmax(axis=-1).numpy() == y).mean()
    assert acc > 0.9


def test_reshape_and_permute_values_and_gradients():
    x_np = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = gt.tensor(x_np, requires_grad=True)
    r = x.reshape(6, 4)
    p = x.permute(2, 0, 1)
    assert r.shape == (6, 4) and p.shape == (4, 2, 3)
    np.testing.assert_array_equal(r.numpy(), x_np.reshape(6, 4))
    np.testing.assert_array_equal(p.numpy(), x_np.transpose(2, 0, 1))
    w = arr(4, 2, 3, seed=1)
    ((p * gt.tensor(w)).sum() + (r * 2).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), w.transpose(1, 2, 0) + 2)


def test_transformer_block_forward_and_backward():
    gt.manual_seed(0)
    block = TransformerBlock(32, num_heads=4, ff_dim=64)
    x = gt.tensor(arr(2, 5, 32), requires_grad=True)
    out = block(x)
    assert out.shape == (2, 5, 32)
    # pre-norm: the block is x + attn(ln1(x)), then + ff(ln2(.))
    h = x + block.attn(block.ln1(x))
    np.testing.assert_allclose(out.numpy(), (h + block.ff(block.ln2(h))).numpy(), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    assert x.grad.shape == (2, 5, 32) and np.all(np.isfinite(x.grad.numpy()))
    names = [n for n, _ in block.named_parameters()]
    assert len(names) == 16
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        if "k_proj.bias" not in name:   # softmax ignores a shift shared by all keys: its grad is ~0
            assert np.abs(p.grad.numpy()).max() > 0, name


def test_layernorm_normalises_each_token():
    ln = LayerNorm(16)
    out = ln(gt.tensor(arr(3, 4, 16) * 5 + 2)).numpy()
    np.testing.assert_allclose(out.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(-1), 1, atol=1e-3)
    assert ln.eps == 1e-5 and ln.weight.shape == (16,) and ln.bias.shape == (16,)


def test_attention_component():
    gt.manual_seed(0)
    attn = MultiHeadAttention(16, num_heads=2)
    x = gt.tensor(arr(2, 6, 16))
    out, weights = attn(x, need_weights=True)
    assert out.shape == (2, 6, 16) and weights.shape == (2, 2, 6, 6)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1, rtol=1e-5)
    assert np.all(weights.numpy() >= 0)
    # by hand, head 0
    xq = x.numpy() @ attn.q_proj.weight.numpy().T + attn.q_proj.bias.numpy()
    xk = x.numpy() @ attn.k_proj.weight.numpy().T + attn.k_proj.bias.numpy()
    s = xq[..., :8] @ xk[..., :8].transpose(0, 2, 1) / np.sqrt(8)
    e = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(weights.numpy()[:, 0], e / e.sum(-1, keepdims=True), rtol=1e-4, atol=1e-6)


def test_gt_ones_parameters():
    w = nn.Parameter(gt.ones(3, 4))
    assert w.requires_grad and w.is_leaf and w.shape == (3, 4)
    np.testing.assert_array_equal(w.numpy(), np.ones((3, 4), np.float32))
    x = gt.tensor(arr(2, 3))
    (x @ w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.repeat(x.numpy().sum(0)[:, None], 4, axis=1), rtol=1e-6)
    b = gt.ones(4, requires_grad=True)
    assert b.requires_grad and b.dtype == gt.float32


def test_layernorm_step_by_step_against_hand_computation():
    x_np = np.array([[1.0, 2.0, 3.0, 6.0], [-1.0, 0.0, 0.0, 5.0]], np.float32)
    ln = LayerNorm(4)
    with gt.no_grad():
        ln.weight.copy_(gt.tensor([1.0, 2.0, 0.5, -1.0]))
        ln.bias.copy_(gt.tensor([0.0, 0.1, -0.2, 0.3]))
    mean = x_np.mean(-1, keepdims=True)                 # [3, 1]
    var = ((x_np - mean) ** 2).mean(-1, keepdims=True)  # biased, as torch: [3.5, 5.5]
    assert mean.ravel().tolist() == [3.0, 1.0] and var.ravel().tolist() == [3.5, 5.5]
    xhat = (x_np - mean) / np.sqrt(var + 1e-5)
    expected = xhat * [1.0, 2.0, 0.5, -1.0] + [0.0, 0.1, -0.2, 0.3]
    np.testing.assert_allclose(ln(gt.tensor(x_np)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_module_wrapping():
    class Wrapper(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.scale = nn.Parameter(gt.ones(1))

        def forward(self, x):
            return self.inner(x) * self.scale

    gt.manual_seed(0)
    inner = nn.Linear(4, 3)
    model = Wrapper(inner)
    assert [n for n, _ in model.named_parameters()] == ["scale", "inner.weight", "inner.bias"]
    assert model.inner is inner and list(model.children()) == [inner]
    x = gt.tensor(arr(2, 4))
    np.testing.assert_allclose(model(x).numpy(), inner(x).numpy())
    model(x).sum().backward()
    assert inner.weight.grad is not None and model.scale.grad is not None


def test_nested_modules_find_parameters_at_every_depth():
    class Leaf(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(gt.ones(2))

    class Middle(nn.Module):
        def __init__(self):
            super().__init__()
            self.leaf = Leaf()
            self.layers = nn.ModuleList([Leaf(), Leaf()])

    class Top(nn.Module):
        def __init__(self):
            super().__init__()
            self.middle = Middle()
            self.bias = nn.Parameter(gt.zeros(2))

    top = Top()
    names = [n for n, _ in top.named_parameters()]
    assert names == ["bias", "middle.leaf.w", "middle.layers.0.w", "middle.layers.1.w"]
    assert list(top.state_dict()) == names
    assert len(list(top.modules())) == 6
    for p in top.parameters():
        p.grad = gt.ones(2)
    top.zero_grad()
    assert all(p.grad is None for p in top.parameters())   # children at every depth are cleared


_MODEL_SCRIPT = """
import json, numpy as np, gt
from lpm.model import PixelTransformer
gt.manual_seed(0)
model = PixelTransformer(img_size=8, embed_dim=16, num_heads=2, num_layers=1, ff_dim=32, num_classes=3)
x = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
logits = model(x)
logits.sum().backward()
print(json.dumps({"logits": logits.numpy().tolist(), "grad": model.embed.weight.grad.numpy().tolist()}))
"""


def _start_model_script(auto_shard):
    env = {k: v for k, v in os.environ.items() if k not in ("GT_AUTO_SHARD", "GT_DEVICES")}
    if auto_shard is not None:
        env["GT_AUTO_SHARD"] = auto_shard
    return subprocess.Popen([sys.executable, "-c", _MODEL_SCRIPT], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def model_scripts(request):
    """``_MODEL_SCRIPT``'s process for each GT_AUTO_SHARD of the test below, both started at the
    first one's request (a second of imports each, beside each other on CI's two cores) unless
    pytest-xdist may give the other to another process."""
    procs = {}

    def started(auto_shard):
        for value in ([auto_shard] if "PYTEST_XDIST_WORKER" in os.environ else [None, "0"]):
            if value not in procs:
                procs[value] = _start_model_script(value)
        return procs[auto_shard]

    yield started
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.commands
@pytest.mark.parametrize("auto_shard", [None, "0"], ids=["unset", "0"])
def test_model_without_auto_sharding(auto_shard, model_scripts):
    proc = model_scripts(auto_shard)
    stdout, stderr = proc.communicate(timeout=120)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # the same computation in this process gives the same numbers
    gt.manual_seed(0)
    model = PixelTransformer(img_size=8, embed_dim=16, num_heads=2, num_layers=1, ff_dim=32, num_classes=3)
    x = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    logits = model(x)
    assert logits.shape == (2, 3)
    np.testing.assert_allclose(np.array(result["logits"]), logits.numpy(), rtol=1e-6)
    logits.sum().backward()
    np.testing.assert_allclose(np.array(result["grad"]), model.embed.weight.grad.numpy(), rtol=1e-5, atol=1e-7)
