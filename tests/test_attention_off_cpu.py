"""The torch engine's attention off the CPU (CUDA): ``F.scaled_dot_product_attention`` with its
gradient from torch's autograd for that one op (gt/backend/torch_kernels.py,
``_attention_by_autograd``). The path is the same code on any device, so here it is forced onto
the CPU: values and every gradient against torch's own attention, against the CPU flash kernel
and against the composed ops; the packed gradient of self-attention; a second backward through
a retained graph; gt's error for an input changed in place; inference tensors composed; a
sharded batch; the kernel's backward node called directly, and torch's walk where torch composed
the op. One test runs only where CUDA is: the path as a GPU takes it, against the composed ops."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.backend import B
from gt.nn import functional as F
from helpers import randn, spy_engine, torch_or_skip

pytestmark = pytest.mark.skipif(B.name != "torch", reason="the torch engine's kernel")

# where gt computes on a GPU these tests run there (not forced onto the CPU), beside torch's CPU
# answers: CUDA's kernels sum in their own order, and a gradient that is 0 on the CPU (a query
# row that sees one key) comes out near 1e-6 there
ON_GPU = B.name == "torch" and B.device_of(B.zeros((1,), "float32")) != "cpu"
F32 = dict(rtol=1e-5, atol=1e-5 if ON_GPU else 1e-6)

# (q, k, v shapes (B, H, L/S, E), is_causal)
CASES = {
    "self": ((2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 4), False),
    "causal": ((2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 4), True),
    "cross_L3_S6": ((2, 2, 3, 4), (2, 2, 6, 4), (2, 2, 6, 4), False),
    "causal_L6_S3": ((2, 2, 6, 4), (2, 2, 3, 4), (2, 2, 3, 4), True),
    "causal_long": ((1, 2, 70, 16), (1, 2, 70, 16), (1, 2, 70, 16), True),
}


def _by_autograd(monkeypatch):
    """Make the engine answer attention as it does off the CPU; returns the list of answers."""
    from gt.backend import torch_kernels

    answers = []

    def fused(q, k, v, scale, causal):
        answers.append(torch_kernels._attention_by_autograd(q, k, v, scale, causal))
        return answers[-1]

    monkeypatch.setattr(B, "attention_fused", fused)
    return answers


def _run(fn, arrays, up, dtype="float32"):
    inputs = [gt.tensor(np.asarray(a, dtype=dtype), requires_grad=True) for a in arrays]
    out = fn(*inputs)
    out.backward(gt.tensor(np.asarray(up, dtype=dtype)))
    return [out.numpy()] + [t.grad.numpy() for t in inputs]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_attention_by_autograd_gives_torch_and_the_cpu_kernel(name, dtype, monkeypatch):
    torch = torch_or_skip()
    sq, sk, sv, causal = CASES[name]
    arrays = [randn(*sq, seed=1), randn(*sk, seed=2), randn(*sv, seed=3)]
    up = randn(*(sq[:-1] + sv[-1:]), seed=4)

    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    if not ON_GPU:
        kernel = _run(fn, arrays, up, dtype)             # the CPU flash kernel, before forcing
    else:
        kernel = None
    answers = _by_autograd(monkeypatch)
    got = _run(fn, arrays, up, dtype)
    assert len(answers) == 1 and answers[0] is not None
    t_in = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    t_out = torch.nn.functional.scaled_dot_product_attention(*t_in, is_causal=causal)
    t_out.backward(torch.tensor(up.astype(dtype)))
    want = [t_out.detach().numpy()] + [t.grad.numpy() for t in t_in]
    tol = F32 if dtype == "float32" else dict(rtol=1e-9, atol=1e-11)
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, err_msg=f"{name}: {'output' if i == 0 else f'grad {i - 1}'}", **tol)
    if kernel is not None:
        for g, w in zip(got, kernel):
            np.testing.assert_allclose(g, w, **tol)


@pytest.mark.parametrize("causal", [False, True])
def test_packed_self_attention_by_autograd_writes_the_composed_gradients(causal, monkeypatch):
    """Self-attention over enough rows packs q, k and v into one product; the gradient the
    autograd path answers for it, (B, L, 3D), must be the composed op's three side by side."""
    gt.manual_seed(0)
    attn = nn.MultiHeadAttention(16, 4, causal=causal)
    x, up = randn(4, 32, 16, seed=1), randn(4, 32, 16, seed=2)
    params = list(attn.parameters())

    def run():
        for p in params:
            p.grad = None
        return _run(attn, [x], up) + [p.grad.numpy() for p in params]

    answers = _by_autograd(monkeypatch)
    got = run()
    assert answers and all(a is not None for a in answers)
    monkeypatch.setattr(B, "attention_fused", lambda *args, **kwargs: None)
    composed = run()
    for g, w in zip(got, composed):
        np.testing.assert_allclose(g, w, **F32)


def test_a_retained_graph_is_walked_twice(monkeypatch):
    """backward(retain_graph=True), then backward again: twice the gradients, as torch."""
    _by_autograd(monkeypatch)
    q = gt.tensor(randn(1, 2, 5, 4, seed=1).astype(np.float32), requires_grad=True)
    out = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    loss = (out * out).sum()
    loss.backward(retain_graph=True)
    once = q.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(q.grad.numpy(), 2 * once, rtol=1e-6, atol=1e-7)


def test_an_input_changed_in_place_before_the_backward_raises_gts_error(monkeypatch):
    _by_autograd(monkeypatch)
    q = gt.tensor(randn(1, 2, 5, 4, seed=1).astype(np.float32), requires_grad=True)
    k = q * 1.0
    out = F.scaled_dot_product_attention(q, k, k)
    with gt.no_grad():
        k.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation: .* saved by ScaledDotProductAttentionBackward"):
        out.sum().backward()


def test_inference_tensors_take_the_composed_path():
    torch = torch_or_skip()
    from gt.backend import torch_kernels

    with torch.inference_mode():
        q = torch.randn(1, 2, 5, 4)
        assert torch_kernels._attention_by_autograd(q, q, q, 0.5, False) is None
    assert torch_kernels._attention_by_autograd(q, q, q, 0.5, False) is None   # an inference tensor outside too


@pytest.mark.gpu
@pytest.mark.skipif(not gt.cuda.is_available(), reason="needs CUDA: the path as a GPU takes it")
@pytest.mark.parametrize("causal", [False, True])
def test_on_a_gpu_attention_runs_torchs_kernel_with_the_composed_values(causal, monkeypatch):
    arrays = [randn(2, 4, 40, 16, seed=s) for s in (1, 2, 3)]
    up = randn(2, 4, 40, 16, seed=4)

    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    answered = spy_engine(monkeypatch, "attention_fused")
    got = _run(fn, arrays, up)
    assert answered and all(answered)
    monkeypatch.setattr(B, "attention_fused", lambda *args, **kwargs: None)
    composed = _run(fn, arrays, up)
    for g, w in zip(got, composed):     # TF32 and the kernels' own order of sums on a GPU
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("copies", [False, True])
def test_a_sharded_batch_gives_the_whole_batchs_values_and_gradients(copies, monkeypatch):
    """Each device's share builds and walks its own graph (as each GPU would)."""
    from gt.sharding import use_mesh

    gt.manual_seed(0)
    with use_mesh(1):       # the virtual devices are CPU ones, also where gt would compute on a GPU
        attn = nn.MultiHeadAttention(8, 2, causal=True)
    x, up = randn(4, 6, 8, seed=1).astype(np.float32), randn(4, 6, 8, seed=2).astype(np.float32)
    answers = _by_autograd(monkeypatch)

    def run(devices):
        for p in attn.parameters():
            p.grad = None
        with use_mesh(devices, copies=copies):
            xs = gt.tensor(x, requires_grad=True)
            out = attn(xs.shard(0) if devices > 1 else xs)
            out.backward(gt.tensor(up).shard(0) if devices > 1 else gt.tensor(up))
            return [out.numpy(), xs.grad.numpy()] + [p.grad.numpy() for p in attn.parameters()]

    whole = run(1)
    calls = len(answers)
    sharded = run(2)
    assert len(answers) == 3 * calls and all(a is not None for a in answers)   # one call per device's share
    for g, w in zip(sharded, whole):
        np.testing.assert_allclose(g, w, **F32)


@pytest.mark.parametrize("kernel", ["fused", "math"])
def test_the_kernels_backward_node_is_called_directly_and_a_composed_graph_is_walked(kernel, monkeypatch):
    """Where torch ran one fused kernel its backward node is called itself; where torch composed
    the op (its math path), torch's autograd walks the graph: the same values either way."""
    torch = torch_or_skip()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    _by_autograd(monkeypatch)
    walks = []
    real = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: walks.append(1) or real(*a, **k))
    arrays = [randn(2, 2, 5, 4, seed=s) for s in (1, 2, 3)]
    up = randn(2, 2, 5, 4, seed=4)
    inputs = [gt.tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    # CUDA's flash kernel takes half precision only: float32 takes its memory-efficient kernel
    fused = SDPBackend.EFFICIENT_ATTENTION if ON_GPU else SDPBackend.FLASH_ATTENTION
    with sdpa_kernel(fused if kernel == "fused" else SDPBackend.MATH):
        out = F.scaled_dot_product_attention(*inputs, is_causal=True)
        out.backward(gt.tensor(up.astype(np.float32)))
    assert len(walks) == (kernel == "math")
    # plain arrays: no torch graph rides on a gradient into the rest of gt's backward
    assert not any(t.grad._data.requires_grad for t in inputs)
    got = [out.numpy()] + [t.grad.numpy() for t in inputs]
    t_in = [torch.tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    t_out = torch.nn.functional.scaled_dot_product_attention(*t_in, is_causal=True)
    t_out.backward(torch.tensor(up.astype(np.float32)))
    for g, w in zip(got, [t_out.detach().numpy()] + [t.grad.numpy() for t in t_in]):
        np.testing.assert_allclose(g, w, **F32)
