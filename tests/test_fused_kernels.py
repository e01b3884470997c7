"""The engines' fast paths: fused layer norm and attention (each engine's kernels) give the
values and gradients of the composed ops; attention with a mask or a causal offset other than 0
keeps the composed path and torch's answers; Adam/AdamW's one engine call per parameter
(``B.adam_step_``: torch's fused kernel on the torch engine) gives torch.optim's parameters, and
the engine's default is the optimizer's tensor arithmetic bit for bit; ReLU (``B.relu``,
``B.relu_backward``) against torch.

Both engines have the layer norm and attention kernels (numpy: gt/backend/numpy_kernels.py;
torch: torch's own); the tests check that the kernel was used, then compare it with the ops'
composed path (the kernel answering None)."""

import math

import numpy as np
import pytest

import gt
from gt import nn
from gt.backend import B
from gt.backend.engine import Engine
from gt.nn import functional as F
from gt.ops import attention
from gt.sharding import use_mesh
from helpers import randn, spy_engine as _spy, torch_or_skip

# fused against composed: the kernels sum in another order, so float rounding apart
CLOSE = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}
# the torch engine's fused attention here is torch's flash kernel for the CPU; on a GPU it is torch's
# scaled_dot_product_attention through autograd, tested by tests/test_attention_off_cpu.py
cpu_attention = pytest.mark.skipif(gt.cuda.is_available(), reason="the CPU's fused attention kernel; on a GPU "
                                                                   "tests/test_attention_off_cpu.py")


def _run(fn, arrays, up, dtype, grad=None):
    """``fn`` on gt tensors made from ``arrays`` (cast to ``dtype``; those flagged in ``grad``, by
    default all, require grad), backpropagating ``up``; returns the output and every input's
    gradient (None where it has none) as numpy arrays."""
    grad = [True] * len(arrays) if grad is None else grad
    inputs = [gt.tensor(np.asarray(a, dtype=dtype), requires_grad=g) for a, g in zip(arrays, grad)]
    out = fn(*inputs)
    out.backward(gt.tensor(np.asarray(up, dtype=dtype)))
    return [out.numpy()] + [None if t.grad is None else t.grad.numpy() for t in inputs]


def _assert_all_close(got, want, dtype, what):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        name = "output" if i == 0 else f"gradient of input {i - 1}"
        if w is None:
            assert g is None, f"{what}: {name} is not None"
            continue
        assert g is not None, f"{what}: {name} is None"
        assert g.shape == w.shape, f"{what}: {name} has shape {g.shape}, expected {w.shape}"
        np.testing.assert_allclose(g, w, err_msg=f"{what}: {name}", **CLOSE[dtype])


def _fused_and_composed(monkeypatch, kernel, fn, arrays, up, dtype, grad=None):
    """Run ``fn`` as the engine chooses (the kernel where it has one), then with ``B.<kernel>``
    answering None (the composed op); asserts that both agree, and that the kernel was asked and
    answered. Returns the first run's results."""
    answered = _spy(monkeypatch, kernel)
    fused = _run(fn, arrays, up, dtype, grad)
    assert answered, f"B.{kernel} was not called"
    assert all(answered), f"B.{kernel} answered {answered} on the {B.name} engine"
    monkeypatch.setattr(B, kernel, lambda *args, **kwargs: None)
    composed = _run(fn, arrays, up, dtype, grad)
    _assert_all_close(fused, composed, dtype, f"fused vs composed {kernel}")
    return fused


# ---- layer norm ------------------------------------------------------------------------------
# (input shape, normalized_shape, weight, bias, input transposed in and out, input requires grad)
LAYER_NORM_CASES = {
    "weight_and_bias": ((4, 6, 8), (8,), True, True, False, True),
    "weight_only": ((4, 6, 8), (8,), True, False, False, True),
    "no_affine": ((4, 6, 8), (8,), False, False, False, True),
    "two_axes": ((4, 6, 8), (6, 8), True, True, False, True),
    "strided_input_and_grad": ((4, 8, 6), (8,), True, True, True, True),
    "frozen_input": ((4, 6, 8), (8,), True, True, False, False),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(LAYER_NORM_CASES))
def test_layer_norm_kernel_matches_composed(name, dtype, monkeypatch):
    shape, normalized, has_w, has_b, strided, grad_x = LAYER_NORM_CASES[name]
    x = randn(*shape, seed=1, scale=2.0) + 0.5
    arrays, grad = [x], [grad_x]
    if has_w:
        arrays.append(randn(*normalized, seed=2) + 1.0)
        grad.append(True)
    if has_b:
        arrays.append(randn(*normalized, seed=3))
        grad.append(True)

    def fn(x, *wb):
        w = wb[0] if has_w else None
        b = wb[-1] if has_b else None
        if strided:    # a transposed view in, and the output transposed back: strided gradient too
            return F.layer_norm(x.transpose(-1, -2), normalized, w, b).transpose(-1, -2)
        return F.layer_norm(x, normalized, w, b)

    answered_backward = _spy(monkeypatch, "layer_norm_fused_backward")
    fused = _fused_and_composed(monkeypatch, "layer_norm_fused", fn, arrays, randn(*shape, seed=4), dtype, grad)
    assert answered_backward and all(answered_backward)
    if not grad_x:
        assert fused[1] is None


@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, False)])
def test_layer_norm_module_matches_torch_and_composed(affine, bias, monkeypatch):
    torch = torch_or_skip()
    gt.manual_seed(0)
    ln = nn.LayerNorm(8, elementwise_affine=affine, bias=bias)
    ref = torch.nn.LayerNorm(8, elementwise_affine=affine, bias=bias)
    with gt.no_grad():
        for i, p in enumerate(ln.parameters()):
            p.copy_(gt.tensor(randn(8, seed=10 + i).astype(np.float32)))
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in ln.state_dict().items()})
    x, up = randn(3, 5, 8, seed=1).astype(np.float32), randn(3, 5, 8, seed=2).astype(np.float32)

    def run():
        for p in ln.parameters():
            p.grad = None
        gx = gt.tensor(x, requires_grad=True)
        out = ln(gx)
        out.backward(gt.tensor(up))
        return [out.numpy(), gx.grad.numpy()] + [p.grad.numpy() for p in ln.parameters()]

    answered = _spy(monkeypatch, "layer_norm_fused")
    fused = run()
    assert answered and all(answered)
    tx = torch.tensor(x, requires_grad=True)
    expected = ref(tx)
    expected.backward(torch.from_numpy(up))
    want = [expected.detach().numpy(), tx.grad.numpy()] + [p.grad.numpy() for p in ref.parameters()]
    assert len(fused) == len(want) == 2 + affine + bias
    for got, w in zip(fused, want):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(B, "layer_norm_fused", lambda *args, **kwargs: None)
    _assert_all_close(run(), fused, "float32", "composed vs fused LayerNorm module")


@pytest.mark.parametrize("path", ["kernel", "composed"])
@pytest.mark.parametrize("width", [3, 36, 128, 1000])
def test_layer_norm_of_rows_of_equal_values_is_zero_as_torchs(width, path, monkeypatch):
    """A row whose float32 values are all equal: its rounded sum left x - mean a constant that
    1/sqrt(eps) scaled to 1e-4 (torch's output is 0); the gradient is torch's too."""
    torch = torch_or_skip()
    if path == "composed":
        monkeypatch.setattr(B, "layer_norm_fused", lambda *args, **kwargs: None)
    values = np.random.default_rng(width).standard_normal(16).astype(np.float32) * 10
    x = np.repeat(values[:, None], width, axis=1)
    up = randn(16, width, seed=3).astype(np.float32)
    gx, tx = gt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, want = F.layer_norm(gx, (width,)), torch.nn.functional.layer_norm(tx, (width,))
    out.backward(gt.tensor(up))
    want.backward(torch.tensor(up))
    np.testing.assert_array_equal(out.numpy(), want.detach().numpy())
    # rstd = 1/sqrt(eps) = 316 scales the rounding of torch's own mean of g * w (float32): 1e-4 off
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=2e-4)


# ---- attention -------------------------------------------------------------------------------
# (q, k, v shapes (B, H, L/S, E), is_causal, output transposed: a strided gradient into the op)
SDPA_CASES = {
    "self": ((2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 4), False, False),
    "causal_L_eq_S": ((2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 4), True, False),
    "cross_L3_S6": ((2, 2, 3, 4), (2, 2, 6, 4), (2, 2, 6, 4), False, False),
    "causal_L3_S6": ((2, 2, 3, 4), (2, 2, 6, 4), (2, 2, 6, 4), True, False),
    "causal_L6_S3": ((2, 2, 6, 4), (2, 2, 3, 4), (2, 2, 3, 4), True, False),
    "self_strided_grad": ((2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 4), False, True),
    "causal_strided_grad": ((1, 2, 7, 8), (1, 2, 7, 8), (1, 2, 7, 8), True, True),
    # longer than the kernel's blocks of queries (32 and more) and keys (512 and more)
    "causal_long": ((1, 2, 70, 16), (1, 2, 70, 16), (1, 2, 70, 16), True, False),
    "cross_long": ((1, 1, 40, 8), (1, 1, 600, 8), (1, 1, 600, 8), False, False),
    "causal_long_L40_S600": ((1, 1, 40, 8), (1, 1, 600, 8), (1, 1, 600, 8), True, False),
}


@cpu_attention
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(SDPA_CASES))
def test_sdpa_kernel_matches_composed_and_torch(name, dtype, monkeypatch):
    torch = torch_or_skip()
    sq, sk, sv, causal, transposed = SDPA_CASES[name]
    arrays = [randn(*sq, seed=1), randn(*sk, seed=2), randn(*sv, seed=3)]
    out_shape = sq[:-1] + sv[-1:]
    up = randn(*(out_shape[:-2] + out_shape[:-3:-1] if transposed else out_shape), seed=4)

    def fn(sdpa, q, k, v):
        out = sdpa(q, k, v, is_causal=causal)
        return out.transpose(-2, -1) if transposed else out

    fused = _fused_and_composed(monkeypatch, "attention_fused",
                                lambda *t: fn(F.scaled_dot_product_attention, *t), arrays, up, dtype)
    t_in = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    t_out = fn(torch.nn.functional.scaled_dot_product_attention, *t_in)
    t_out.backward(torch.tensor(up.astype(dtype)))
    want = [t_out.detach().numpy()] + [t.grad.numpy() for t in t_in]
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-9, atol=1e-11)
    for i, (g, w) in enumerate(zip(fused, want)):
        np.testing.assert_allclose(g, w, err_msg=f"{name}: {'output' if i == 0 else f'grad {i - 1}'} vs torch",
                                   **tol)


@cpu_attention
@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_kernel_matches_composed(causal, monkeypatch):
    """nn.MultiHeadAttention runs the Attention op on heads that are strided views of (B, L, D)."""
    gt.manual_seed(0)
    attn = nn.MultiHeadAttention(8, 2, causal=causal)
    x, c, up = randn(2, 5, 8, seed=1), randn(2, 7, 8, seed=2), randn(2, 5, 8, seed=3)
    params = list(attn.parameters())

    def fn(x, c):
        return attn(x) if causal else attn(x, context=c)

    def run():
        for p in params:
            p.grad = None
        res = _run(fn, [x, c], up, "float32")
        return res + [p.grad.numpy() for p in params]

    answered = _spy(monkeypatch, "attention_fused")
    fused = run()
    assert answered and all(answered)
    monkeypatch.setattr(B, "attention_fused", lambda *args, **kwargs: None)
    composed = run()
    if causal:   # self-attention: the context is not used
        assert fused[2] is None and composed[2] is None
    _assert_all_close(fused, composed, "float32", "MultiHeadAttention fused vs composed")


@cpu_attention
@pytest.mark.parametrize("causal", [False, True])
def test_packed_self_attention_kernel_answers_the_packed_gradient(causal, monkeypatch):
    """Self-attention over enough rows takes q, k and v from one packed product; the kernel's
    backward then answers that product's gradient itself (``packed=True``): one (B, L, 3D) array
    (the numpy engine writes it in place) or, where the caller allows it (``split_ok``) and the
    engine would have to copy, the three head gradients apart (torch on the CPU). The weights'
    and the input's gradients from either must be the composed op's."""
    gt.manual_seed(0)
    attn = nn.MultiHeadAttention(16, 4, causal=causal)
    x, up = randn(4, 32, 16, seed=1), randn(4, 32, 16, seed=2)      # 128 rows = PACK_ROWS x D: packed
    params = list(attn.parameters())

    def run():
        for p in params:
            p.grad = None
        return _run(attn, [x], up, "float32") + [p.grad.numpy() for p in params]

    shapes = []
    real = B.attention_fused_backward

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        shape = [tuple(a.shape) for a in out] if type(out) is tuple else tuple(out.shape)
        shapes.append((kwargs.get("packed", False), kwargs.get("split_ok", False), shape))
        return out

    monkeypatch.setattr(B, "attention_fused_backward", spy)
    fused = run()
    apart = B.name == "torch"
    assert shapes == [(True, True, [(4, 4, 32, 4)] * 3 if apart else (4, 32, 48))]
    monkeypatch.setattr(B, "attention_fused", lambda *args, **kwargs: None)
    composed = run()
    assert len(shapes) == 1                       # the composed path never asks the kernel
    _assert_all_close(fused, composed, "float32", "packed attention: kernel vs composed")


def _reference_attention(q, k, v, blocked, scale):
    """softmax(q k^T * scale, blocked -> -inf) v in float64 numpy; an all-blocked row gives 0."""
    s = np.einsum("...le,...se->...ls", q, k) * scale
    s = np.where(blocked, -np.inf, s)
    top = np.max(s, axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(top), top, 0.0))
    total = e.sum(-1, keepdims=True)
    return np.einsum("...ls,...se->...le", e / np.where(total == 0, 1.0, total), v)


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_causal_offset_takes_the_composed_path(offset, monkeypatch):
    """causal=n (n > 0: decoding with a cache; 2 = S - L aligns the last query with the last key)
    blocks key j for query i when j > i + n."""
    torch = torch_or_skip()
    answered = _spy(monkeypatch, "attention_fused")
    L, S, scale = 4, 6, 0.4
    q, k, v, up = randn(2, 2, L, 4, seed=1), randn(2, 2, S, 4, seed=2), randn(2, 2, S, 3, seed=3), \
        randn(2, 2, L, 3, seed=4)
    blocked = np.arange(L)[:, None] + offset < np.arange(S)[None, :]
    got = _run(lambda q, k, v: attention.ScaledDotProductAttention.apply(q, k, v, None, scale=scale, causal=offset),
               [q, k, v], up, "float64")
    assert answered == []      # a causal offset other than 0: the kernel is not even asked
    np.testing.assert_allclose(got[0], _reference_attention(q, k, v, blocked, scale), rtol=1e-10, atol=1e-12)
    t_in = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    t_out = torch.nn.functional.scaled_dot_product_attention(*t_in, attn_mask=torch.from_numpy(~blocked),
                                                             scale=scale)
    t_out.backward(torch.from_numpy(up))
    for i, (g, w) in enumerate(zip(got, [t_out.detach().numpy()] + [t.grad.numpy() for t in t_in])):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11, err_msg=f"{'output' if i == 0 else f'grad {i - 1}'}")


@cpu_attention
def test_decoding_with_a_cache_matches_the_whole_sequence(monkeypatch):
    """Causal self-attention over a cache (offset S - L > 0, composed) gives the outputs of the
    whole sequence at once (offset 0: the engine's kernel)."""
    gt.manual_seed(0)
    attn = nn.MultiHeadAttention(8, 2, causal=True)
    x = gt.tensor(randn(2, 6, 8, seed=1).astype(np.float32))
    answered = _spy(monkeypatch, "attention_fused")
    with gt.no_grad():
        whole = attn(x).numpy()
        assert answered and all(answered)
        cache = nn.KVCache()
        first = attn(x[:, :2], cache=cache).numpy()
        calls = len(answered)
        rest = attn(x[:, 2:], cache=cache).numpy()      # 4 queries over 6 keys: offset 2
        assert len(answered) == calls                   # not asked: the composed path
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), whole, rtol=1e-5, atol=1e-6)


MASKS = {
    "bool": np.array([[True, False, True, True, False], [False] * 4 + [True], [True] * 5]),
    "float": randn(2, 1, 3, 5, seed=9),
}


@pytest.mark.parametrize("name", list(MASKS))
def test_masked_attention_takes_the_composed_path_and_matches_torch(name, monkeypatch):
    torch = torch_or_skip()
    answered = _spy(monkeypatch, "attention_fused")
    mask = MASKS[name]
    arrays = [randn(2, 2, 3, 4, seed=1), randn(2, 2, 5, 4, seed=2), randn(2, 2, 5, 4, seed=3)]
    up = randn(2, 2, 3, 4, seed=4)
    got = _run(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), arrays, up, "float64")
    assert answered == []
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    t_out = torch.nn.functional.scaled_dot_product_attention(*t_in, attn_mask=torch.from_numpy(mask))
    t_out.backward(torch.from_numpy(up))
    for i, (g, w) in enumerate(zip(got, [t_out.detach().numpy()] + [t.grad.numpy() for t in t_in])):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11, err_msg=f"{'output' if i == 0 else f'grad {i - 1}'}")


@pytest.mark.skipif(B.name != "torch", reason="autocast needs the torch engine (bfloat16)")
def test_attention_under_autocast_takes_the_composed_path(monkeypatch):
    answered = _spy(monkeypatch, "attention_fused")
    q, k, v = (gt.tensor(randn(2, 2, 5, 4, seed=s).astype(np.float32)) for s in (1, 2, 3))
    with gt.autocast("bfloat16"):
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert answered == []
    blocked = np.arange(5)[:, None] < np.arange(5)[None, :]
    expected = _reference_attention(*(t.numpy().astype(np.float64) for t in (q, k, v)), blocked, 0.5)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0.05, atol=0.05)   # bfloat16 products


# ---- Adam / AdamW ----------------------------------------------------------------------------
ADAM_STEPS = 5
ADAM_CASES = [
    ("Adam", dict(lr=0.02, betas=(0.85, 0.995), eps=1e-8)),
    ("Adam", dict(lr=0.02, betas=(0.85, 0.995), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.02, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)),
    ("AdamW", dict(lr=0.02, betas=(0.85, 0.995), eps=1e-8, weight_decay=0.1)),
]
ADAM_TOL = {np.float32: dict(rtol=1e-6, atol=1e-7), np.float64: dict(rtol=1e-12, atol=1e-14)}


def _adam_data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(6, 5), (5,), (3, 4, 2)]
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(ADAM_STEPS)]
    return init, grads


def _adam_gt(name, kw, init, grads):
    """gt's optimizer ``name`` over ``grads``; returns the final parameters (numpy) and whether any
    step took the tensor path (a sharded gradient: data tensors on a mesh of several devices)
    instead of the engine's ``B.adam_step_``."""
    params = [gt.tensor(a.copy(), requires_grad=True) for a in init]
    opt = getattr(gt.optim, name)(params, **kw)
    tensor_path = False
    for step_grads in grads:
        given = [gt.tensor(g.copy()) for g in step_grads]
        for p, g in zip(params, given):
            p.grad = g
            tensor_path |= p._placed is not None or g._placed is not None
        opt.step()
        for g, want in zip(given, step_grads):   # the step leaves the gradient as it was
            np.testing.assert_array_equal(g.numpy(), want)
    assert all(opt.state[p]["step"] == len(grads) for p in params)
    return [p.numpy() for p in params], tensor_path


def _adam_torch(torch, name, kw, init, grads, **extra):
    dev = str(B.device) if B.name == "torch" else "cpu"    # where gt's parameters are (a GPU, there)
    params = [torch.tensor(a.copy(), requires_grad=True, device=dev) for a in init]
    opt = getattr(torch.optim, name)(params, **kw, **extra)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g.copy(), device=dev)
        opt.step()
    return [p.detach().cpu().numpy() for p in params]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", ADAM_CASES)
def test_adam_matches_torch_on_the_same_gradients(name, kw, dtype):
    torch = torch_or_skip()
    init, grads = _adam_data(dtype)
    ours, _ = _adam_gt(name, kw, init, grads)
    theirs = _adam_torch(torch, name, kw, init, grads)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, err_msg=f"parameter {i}", **ADAM_TOL[dtype])
        assert not np.allclose(a, init[i])


@pytest.mark.parametrize("name,kw", ADAM_CASES)
def test_adam_is_torch_fused_adam_bit_for_bit_on_the_torch_engine(name, kw):
    """gt/backend/torch_kernels.py: torch.optim's fused kernel, so its values exactly."""
    if B.name != "torch":
        pytest.skip("the fused Adam kernel is the torch engine's")
    torch = torch_or_skip()
    init, grads = _adam_data(np.float32, seed=1)
    ours, tensor_path = _adam_gt(name, kw, init, grads)
    if tensor_path:
        pytest.skip("gradients sharded over GT_DEVICES take the tensor path (tested above)")
    theirs = _adam_torch(torch, name, kw, init, grads, fused=True)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_array_equal(a, b, err_msg=f"parameter {i}")


@pytest.mark.parametrize("layout", ["gradient_of_a_transpose", "transposed_parameter"])
@pytest.mark.parametrize("name,kw", ADAM_CASES[::3])
def test_adam_on_strided_arrays_matches_torch(name, kw, layout):
    """A parameter used through ``w.T`` (tied weights) gets a transposed gradient on the torch
    engine; a parameter may itself be a transposed array (with a row-major gradient). The update
    is elementwise all the same."""
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    w0 = rng.standard_normal((5, 4)).astype(np.float32)
    x0 = rng.standard_normal((3, 4)).astype(np.float32)
    if layout == "transposed_parameter":
        w0 = w0.T        # (4, 5), column-major: gt.tensor keeps that layout on the torch engine

    def train(fw, w):
        opt = getattr(fw.optim, name)([w], **kw)
        x = fw.tensor(x0)
        for _ in range(ADAM_STEPS):
            opt.zero_grad()
            y = x @ w.T if layout == "gradient_of_a_transpose" else x @ w
            (y ** 2).sum().backward()
            opt.step()
        return w

    ours = train(gt, gt.tensor(w0, requires_grad=True)).numpy()
    theirs = train(torch, torch.tensor(w0, requires_grad=True)).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decoupled,weight_decay", [(False, 0.0), (False, 0.1), (True, 0.0), (True, 0.1)])
def test_engine_default_adam_step_is_the_tensor_arithmetic(decoupled, weight_decay, dtype):
    """``Engine.adam_step_`` (the default, whatever the engine overrides) on the engine's arrays
    against the tensor arithmetic of gt/optim/adam.py's sharded path, written out here: bit for bit."""
    lr, b1, b2, eps = 0.02, 0.85, 0.995, 1e-6
    init, grads = _adam_data(dtype, seed=2)
    p0, g_steps = init[0], [g[0] for g in grads]

    p, m, v = (B.asarray(a, copy=True) for a in (p0, np.zeros_like(p0), np.zeros_like(p0)))
    for step, g in enumerate(g_steps, 1):
        g_arr = B.asarray(g, copy=True)
        assert Engine.adam_step_(B, p, g_arr, m, v, step, lr, b1, b2, eps, weight_decay, decoupled) is p
        np.testing.assert_array_equal(B.to_numpy(g_arr), g)      # the gradient is left as it was

    tp, tm, tv = gt.tensor(p0.copy()), gt.tensor(np.zeros_like(p0)), gt.tensor(np.zeros_like(p0))
    for step, g in enumerate(g_steps, 1):
        grad = gt.tensor(g.copy())
        if weight_decay != 0:
            if decoupled:
                tp.mul_(1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * tp
        tm.mul_(b1).add_(grad, alpha=1 - b1)
        tv.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = tv.sqrt().div_(math.sqrt(1 - b2 ** step)).add_(eps)
        tp.addcdiv_(tm, denom, value=-lr / (1 - b1 ** step))

    for what, arr, t in (("param", p, tp), ("exp_avg", m, tm), ("exp_avg_sq", v, tv)):
        got = B.to_numpy(arr)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, t.numpy(), err_msg=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad,maximize", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("decoupled,weight_decay", [(False, 0.1), (True, 0.1)])
def test_engine_default_adam_step_takes_amsgrad_and_maximize(decoupled, weight_decay, amsgrad, maximize, dtype):
    """amsgrad and maximize in the engine's step (they took the tensor code one parameter at a
    time before): the default against gt/optim/adam.py's tensor arithmetic, bit for bit."""
    lr, b1, b2, eps = 0.02, 0.85, 0.995, 1e-6
    init, grads = _adam_data(dtype, seed=11)
    p0, g_steps = init[0], [g[0] for g in grads]
    p, m, v, vmax = (B.asarray(a, copy=True) for a in (p0,) + (np.zeros_like(p0),) * 3)
    tp, tm, tv, tmax = (gt.tensor(a.copy()) for a in (p0,) + (np.zeros_like(p0),) * 3)
    for step, g in enumerate(g_steps, 1):
        assert Engine.adam_step_(B, p, B.asarray(g, copy=True), m, v, step, lr, b1, b2, eps, weight_decay,
                                 decoupled, maximize, vmax if amsgrad else None) is p
        grad = -gt.tensor(g.copy()) if maximize else gt.tensor(g.copy())
        if decoupled:
            tp.mul_(1 - lr * weight_decay)
        else:
            grad = grad + weight_decay * tp
        tm.mul_(b1).add_(grad, alpha=1 - b1)
        tv.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom_of = tmax.copy_(tmax.maximum(tv)) if amsgrad else tv
        denom = denom_of.sqrt().div_(math.sqrt(1 - b2 ** step)).add_(eps)
        tp.addcdiv_(tm, denom, value=-lr / (1 - b1 ** step))
    for what, arr, t in (("param", p, tp), ("exp_avg", m, tm), ("exp_avg_sq", v, tv), ("max", vmax, tmax)):
        np.testing.assert_array_equal(B.to_numpy(arr), t.numpy(), err_msg=what)


def _numpy_engine_or_skip():
    if B.name != "numpy":
        pytest.skip("the numpy engine's Adam step in blocks (gt/backend/numpy_blas.py)")
    return object.__getattribute__(B, "_engine")


ADAM_BLOCK_OPTIONS = [(0.0, False), (0.05, False), (0.05, True), (1, False)]
ADAM_VARIANTS = [(False, False), (True, False), (False, True), (True, True)]    # (amsgrad, maximize)


@pytest.mark.own_mesh     # the engine's kernel on numpy arrays: no mesh, so GT_DEVICES changes nothing
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("amsgrad,maximize", ADAM_VARIANTS)
@pytest.mark.parametrize("weight_decay,decoupled", ADAM_BLOCK_OPTIONS)
@pytest.mark.parametrize("shape", [(2500,), (7, 301), (1000,), (3,), ()])
def test_numpy_adam_step_in_blocks_is_the_whole_array_arithmetic(shape, weight_decay, decoupled, amsgrad,
                                                                 maximize, dtype, monkeypatch):
    """The numpy engine runs the step block by block (blocks of 1000 here, so most shapes span
    several and end in a short one): the default's whole-array arithmetic to the bit, with
    zeros, tiny and large gradients, over several steps."""
    engine = _numpy_engine_or_skip()
    monkeypatch.setattr(type(engine), "ADAM_CHUNK", 1000)
    _compare_adam_blocks(engine, shape, dtype, (weight_decay, decoupled, maximize), amsgrad, seed=3)


@pytest.mark.own_mesh     # the engine's kernel on numpy arrays: no mesh
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad,maximize", ADAM_VARIANTS[::3])
@pytest.mark.parametrize("weight_decay,decoupled", ADAM_BLOCK_OPTIONS[:3])
def test_numpy_adam_step_in_blocks_keeps_axpy_on_large_arrays(weight_decay, decoupled, amsgrad, maximize, dtype):
    """Arrays large enough for ``add_scaled_``'s BLAS axpy (one rounding per element) get it
    block by block, so the first moment keeps those bits (two blocks and a short third)."""
    engine = _numpy_engine_or_skip()
    n = 2 * engine.ADAM_CHUNK + 1001
    assert n >= 2 * engine.UPDATE_CHUNK
    _compare_adam_blocks(engine, (n,), dtype, (weight_decay, decoupled, maximize), amsgrad, seed=4, steps=2)


def _compare_adam_blocks(engine, shape, dtype, options, amsgrad, seed, steps=4):
    rng = np.random.default_rng(seed)
    p0 = np.array(rng.standard_normal(shape) * (0.5 if dtype == np.float16 else 1.0), dtype)   # 0-d: an array
    ours = [p0.copy()] + [np.zeros(shape, dtype) for _ in range(3)]
    want = [p0.copy()] + [np.zeros(shape, dtype) for _ in range(3)]
    for step in range(1, steps + 1):
        g = np.array(rng.standard_normal(shape) * (1e-4, 1.0, 3.0, 1e-2)[step % 4], dtype)
        g.reshape(-1)[::5] = 0
        g_copy = g.copy()
        with np.errstate(all="ignore"):
            assert engine.adam_step_(ours[0], g, ours[1], ours[2], step, 0.02, 0.85, 0.995, 1e-6, *options,
                                     ours[3] if amsgrad else None) is ours[0]
            Engine.adam_step_(engine, want[0], g_copy, want[1], want[2], step, 0.02, 0.85, 0.995, 1e-6, *options,
                              want[3] if amsgrad else None)
        np.testing.assert_array_equal(g, g_copy)       # the gradient is left as it was
        for what, a, b in zip(("param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"), ours, want):
            assert a.dtype == dtype
            np.testing.assert_array_equal(a, b, err_msg=f"{what} at step {step}")


@pytest.mark.parametrize("amsgrad,maximize", [(True, True)])
@pytest.mark.parametrize("weight_decay,decoupled", [(0.05, True)])
def test_numpy_adam_amsgrad_maximize_step_makes_no_weight_sized_temporaries(weight_decay, decoupled, amsgrad,
                                                                            maximize):
    """Adam with amsgrad and maximize (the tensor code before, one temporary of the weight's
    size per operation) goes through the engine's step too: a warm optimizer step of a 4 MiB
    weight allocates less than a tenth of it."""
    import tracemalloc

    _numpy_engine_or_skip()
    rng = np.random.default_rng(10)
    p = gt.nn.Parameter(gt.tensor(rng.standard_normal(1 << 20).astype(np.float32)))
    opt = gt.optim.Adam([p], lr=1e-3, weight_decay=weight_decay, decoupled_weight_decay=decoupled,
                        amsgrad=amsgrad, maximize=maximize)
    p.grad = gt.tensor(rng.standard_normal(1 << 20).astype(np.float32))
    if p._placed is not None or p.grad._placed is not None:
        pytest.skip("tensors sharded over GT_DEVICES take the tensor path (one array per device)")
    opt.step()
    tracemalloc.start()
    try:
        opt.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < p.numel() * 4 / 10, f"the step allocated {peak} bytes at its peak"


@pytest.mark.parametrize("weight_decay,decoupled", ADAM_BLOCK_OPTIONS[:3])
def test_numpy_adam_step_makes_no_weight_sized_temporaries(weight_decay, decoupled):
    """The numpy engine's step writes its intermediates into scratch blocks it keeps (the
    whole-array arithmetic made five temporaries of the weight's size, each faulted in anew):
    a warm step of a 4 MiB weight allocates less than a tenth of it."""
    import tracemalloc

    _numpy_engine_or_skip()
    rng = np.random.default_rng(6)
    p, g = (rng.standard_normal(1 << 20).astype(np.float32) for _ in range(2))
    m, v = np.zeros_like(p), np.zeros_like(p)
    B.adam_steps_([p], [g], [m], [v], 1, 1e-3, 0.9, 0.999, 1e-8, weight_decay, decoupled)
    tracemalloc.start()
    try:
        B.adam_steps_([p], [g], [m], [v], 2, 1e-3, 0.9, 0.999, 1e-8, weight_decay, decoupled)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < p.nbytes / 10, f"the step allocated {peak} bytes at its peak"


SGD_OPTIONS = [dict(momentum=0.0, dampening=0.0, weight_decay=0.1, nesterov=False, maximize=True),
               dict(momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
               dict(momentum=0.9, dampening=0.25, weight_decay=0.01, nesterov=False, maximize=True),
               dict(momentum=0.8, dampening=0.0, weight_decay=0.01, nesterov=True, maximize=False)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opts", SGD_OPTIONS)
def test_engine_default_sgd_step_is_the_tensor_arithmetic(opts, dtype):
    """``Engine.sgd_step_`` (the default, whatever the engine overrides) against gt/optim/sgd.py's
    tensor arithmetic, written out here: bit for bit, the momentum buffer too."""
    lr = 0.05
    init, grads = _adam_data(dtype, seed=7)
    p0, g_steps = init[0], [g[0] for g in grads]
    p, buf = B.asarray(p0, copy=True), B.asarray(g_steps[0], copy=True)
    tp, tbuf = gt.tensor(p0.copy()), gt.tensor(g_steps[0].copy())
    for g in g_steps[1:]:
        g_arr = B.asarray(g, copy=True)
        assert Engine.sgd_step_(B, p, g_arr, buf if opts["momentum"] else None, lr, **opts) is p
        np.testing.assert_array_equal(B.to_numpy(g_arr), g)      # the gradient is left as it was
        grad = -gt.tensor(g.copy()) if opts["maximize"] else gt.tensor(g.copy())
        if opts["weight_decay"] != 0:
            grad = grad + opts["weight_decay"] * tp
        if opts["momentum"] != 0:
            tbuf.mul_(opts["momentum"]).add_(grad, alpha=1 - opts["dampening"])
            grad = grad + opts["momentum"] * tbuf if opts["nesterov"] else tbuf
        tp.add_(grad, alpha=-lr)
    np.testing.assert_array_equal(B.to_numpy(p), tp.numpy())
    np.testing.assert_array_equal(B.to_numpy(buf), tbuf.numpy())


@pytest.mark.own_mesh     # the engine's kernel on numpy arrays: no mesh
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("opts", SGD_OPTIONS)
@pytest.mark.parametrize("shape,chunk", [((2500,), 1000), ((7, 301), 1000), ((), 1000), ((1 << 19) + 7, None)])
def test_numpy_sgd_step_in_blocks_is_the_whole_array_arithmetic(shape, chunk, opts, dtype, monkeypatch):
    """The numpy engine's SGD step block by block (blocks of 1000, or its own over an array
    large enough for axpy) against the default's whole-array arithmetic: the same bits."""
    engine = _numpy_engine_or_skip()
    if chunk is not None:
        monkeypatch.setattr(type(engine), "ADAM_CHUNK", chunk)
    elif dtype == np.float16:
        pytest.skip("no BLAS kernel for float16: the small arrays cover its arithmetic")
    rng = np.random.default_rng(8)
    p0 = np.array(rng.standard_normal(shape), dtype)
    ours, want = [p0.copy(), np.zeros(shape, dtype)], [p0.copy(), np.zeros(shape, dtype)]
    for step in range(3):
        g = np.array(rng.standard_normal(shape) * (1e-3, 1.0, 4.0)[step], dtype)
        g_copy = g.copy()
        buffers = (ours[1], want[1]) if opts["momentum"] else (None, None)
        with np.errstate(all="ignore"):
            assert engine.sgd_step_(ours[0], g, buffers[0], 0.05, **opts) is ours[0]
            Engine.sgd_step_(engine, want[0], g_copy, buffers[1], 0.05, **opts)
        np.testing.assert_array_equal(g, g_copy)
        np.testing.assert_array_equal(ours[0], want[0], err_msg=f"param at step {step}")
        np.testing.assert_array_equal(ours[1], want[1], err_msg=f"momentum buffer at step {step}")


@pytest.mark.parametrize("opts", [SGD_OPTIONS[0]] + SGD_OPTIONS[2:])
def test_numpy_sgd_step_makes_no_weight_sized_temporaries(opts):
    """SGD with weight decay, Nesterov or maximize made temporaries of the weight's size on the
    tensor path (two for each); the numpy engine's step (``B.sgd_step_``) makes none: a warm step
    of a 4 MiB weight allocates less than a tenth of it."""
    import tracemalloc

    _numpy_engine_or_skip()
    rng = np.random.default_rng(9)
    p = gt.nn.Parameter(gt.tensor(rng.standard_normal(1 << 20).astype(np.float32)))
    opt = gt.optim.SGD([p], lr=0.01, **opts)
    p.grad = gt.tensor(rng.standard_normal(1 << 20).astype(np.float32))
    if p._placed is not None or p.grad._placed is not None:
        pytest.skip("tensors sharded over GT_DEVICES take the tensor path (one array per device)")
    opt.step()
    opt.step()
    tracemalloc.start()
    try:
        opt.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < p.numel() * 4 / 10, f"the step allocated {peak} bytes at its peak"


@pytest.mark.own_mesh
@pytest.mark.parametrize("name,kw", ADAM_CASES)
def test_optimizer_engine_call_equals_its_tensor_path(name, kw):
    """The optimizer on whole arrays (one ``B.adam_step_`` call) and with gradients sharded over
    two devices (the tensor path): bit for bit where the call is the engine default (numpy)."""
    init, grads = _adam_data(np.float64, seed=3)
    whole, tensor_path = _adam_gt(name, kw, init, grads)
    assert not tensor_path
    with use_mesh(2):
        placed, tensor_path = _adam_gt(name, kw, init, grads)
    assert tensor_path
    for i, (a, b) in enumerate(zip(whole, placed)):
        if B.name == "numpy":
            np.testing.assert_array_equal(a, b, err_msg=f"parameter {i}")
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"parameter {i}")


@pytest.mark.own_mesh
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", ADAM_CASES)
def test_one_call_for_all_parameters_equals_one_call_each(name, kw, dtype, monkeypatch):
    """``step()`` updates the parameters of one step count in one ``B.adam_steps_`` call; the
    values are those of one ``B.adam_step_`` per parameter, bit for bit, also when the
    parameters' step counts differ (one skips a step: no gradient) and the dtypes are mixed."""
    init, grads = _adam_data(dtype, seed=5)
    init.append(np.linspace(-1, 1, 7).astype(np.float32 if dtype == np.float64 else np.float64))
    for step_grads in grads:
        step_grads.append(np.cos(np.arange(7.0) + len(step_grads)).astype(init[-1].dtype))

    def run(batched):
        calls = []
        if not batched:   # the engine's list call, taken apart into one call per parameter
            monkeypatch.setattr(B, "adam_steps_", lambda ps, gs, ms, vs, *rest: [
                calls.append(B.adam_step_(p, g, m, v, *rest)) for p, g, m, v in zip(ps, gs, ms, vs)])
        params = [gt.tensor(a.copy(), requires_grad=True) for a in init]
        opt = getattr(gt.optim, name)(params, **kw)
        for i, step_grads in enumerate(grads):
            for j, (p, g) in enumerate(zip(params, step_grads)):
                p.grad = None if (i == 1 and j == 0) else gt.tensor(g.copy())
            opt.step()
        monkeypatch.undo()
        assert [opt.state[p]["step"] for p in params] == [len(grads) - 1] + [len(grads)] * (len(params) - 1)
        return [p.numpy() for p in params], calls

    with use_mesh(1):   # whole arrays: the engine calls (sharded ones take the tensor path)
        (batched, _), (one_by_one, calls) = run(True), run(False)
    assert calls    # the second run did go through one call per parameter
    for i, (a, b) in enumerate(zip(batched, one_by_one)):
        np.testing.assert_array_equal(a, b, err_msg=f"parameter {i}")


@pytest.mark.own_mesh
@pytest.mark.parametrize("lr", [0.1, 3e-3])
def test_sgd_one_call_for_all_parameters_equals_add_one_by_one(lr, monkeypatch):
    """Plain SGD's ``step()`` updates the whole parameters in one ``B.add_scaled_foreach_`` call,
    to the bits of ``p.add_(grad, alpha=-lr)`` per parameter (what it replaced), with float32 and
    float64 parameters (one large enough for the engines' fused update), one without a gradient
    and one whose gradient has another dtype (that one goes one by one); sharded parameters
    and momentum take the one-by-one path."""
    rng = np.random.default_rng(11)
    init = [rng.standard_normal(s).astype(d) for s, d in
            (((3, 4), np.float32), ((600, 1000), np.float32), ((5,), np.float64), ((2, 3), np.float32),
             ((4,), np.float32))]
    grads = [[rng.standard_normal(a.shape).astype(a.dtype) for a in init] for _ in range(3)]
    for step_grads in grads:
        step_grads[3] = step_grads[3].astype(np.float64)     # another dtype than its parameter

    def run(how, mesh=1, momentum=0.0):
        calls = []
        real = B.add_scaled_foreach_
        monkeypatch.setattr(B, "add_scaled_foreach_", lambda ts, vs, a: (calls.append(len(ts)), real(ts, vs, a)))
        with use_mesh(mesh):
            params = [gt.tensor(a.copy(), requires_grad=True) for a in init]
            opt = gt.optim.SGD(params, lr=lr, momentum=momentum)
            for i, step_grads in enumerate(grads):
                for j, (p, g) in enumerate(zip(params, step_grads)):
                    p.grad = None if (i == 1 and j == 0) else gt.tensor(g.copy())
                if how == "step":
                    opt.step()
                else:   # the update one parameter at a time, as a user writes it
                    with gt.no_grad():
                        for p in params:
                            if p.grad is not None:
                                p.add_(p.grad, alpha=-lr)
            out = [p.numpy() for p in params]
        monkeypatch.undo()
        return out, calls

    batched, calls = run("step")
    assert calls == [4, 3, 4]          # every whole parameter with a same-dtype gradient, one call a step
    one_by_one, no_calls = run("add_")
    assert no_calls == []
    for i, (a, b) in enumerate(zip(batched, one_by_one)):
        assert a.dtype == init[i].dtype
        np.testing.assert_array_equal(a, b, err_msg=f"parameter {i}")
    sharded, calls = run("step", mesh=2)
    assert calls == []
    for i, (a, b) in enumerate(zip(sharded, one_by_one)):
        np.testing.assert_array_equal(a, b, err_msg=f"parameter {i}, sharded")
    _, calls = run("step", momentum=0.9)
    assert calls == []


# ---- ReLU ------------------------------------------------------------------------------------
RELU_X = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0], [-0.0, 1e-30, -1e-30, 7.25, -7.25], [0.0, 0.0, 1.0, -1.0, 2.0]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("how", ["method", "functional", "module", "after_an_op"])
def test_relu_values_and_gradients_match_torch(how, dtype):
    torch = torch_or_skip()
    x, up = RELU_X.astype(dtype), randn(*RELU_X.shape, seed=1).astype(dtype)
    fns = {"method": lambda fw, t: t.relu(), "after_an_op": lambda fw, t: (t * 2 - 1).relu() * 3,
           "functional": lambda fw, t: fw.nn.functional.relu(t), "module": lambda fw, t: fw.nn.ReLU()(t)}
    gx = gt.tensor(x, requires_grad=True)
    out = fns[how](gt, gx)
    out.backward(gt.tensor(up))
    tx = torch.tensor(x, requires_grad=True)
    t_out = fns[how](torch, tx)
    t_out.backward(torch.from_numpy(up))
    assert out.dtype == getattr(gt, dtype) and gx.grad.dtype == getattr(gt, dtype)
    np.testing.assert_array_equal(out.numpy(), t_out.detach().numpy())
    np.testing.assert_array_equal(gx.grad.numpy(), tx.grad.numpy())
    if how == "method":   # zeros and negatives get no gradient; positives get the upstream one
        np.testing.assert_array_equal(gx.grad.numpy(), np.where(x > 0, up, 0))
        assert (out.numpy() >= 0).all()


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_relu_of_integers_keeps_the_dtype(dtype):
    torch = torch_or_skip()
    x = np.array([[-3, 0, 2], [5, -1, 0]], dtype=dtype)
    out = gt.tensor(x).relu()
    assert out.dtype == getattr(gt, dtype)
    expected = torch.relu(torch.from_numpy(x)).numpy()
    assert out.numpy().dtype == expected.dtype
    np.testing.assert_array_equal(out.numpy(), expected)
    np.testing.assert_array_equal(out.numpy(), np.maximum(x, 0))


def test_relu_keeps_nan_and_infinities():
    x = gt.tensor(np.array([np.nan, -np.inf, np.inf, -1.0, 1.0], np.float32))
    out = x.relu().numpy()
    assert np.isnan(out[0])
    np.testing.assert_array_equal(out[1:], [0.0, np.inf, 0.0, 1.0])


def test_relu_gradient_at_nan_is_torchs():
    """torch's ReLU passes the gradient on where its output is NaN (threshold_backward: out <= 0
    is False); gt does the same on every engine."""
    torch = torch_or_skip()
    x0 = np.array([np.nan, -1.0, 2.0], np.float32)
    x = gt.tensor(x0, requires_grad=True)
    x.relu().sum().backward()
    t = torch.tensor(x0, requires_grad=True)
    torch.relu(t).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 1.0])


def test_relu_engine_primitives():
    x = B.asarray(np.array([-1.5, 0.0, 2.0, -0.0, 3.5], np.float32))
    out = B.relu(x)
    np.testing.assert_array_equal(B.to_numpy(out), [0.0, 0.0, 2.0, 0.0, 3.5])
    np.testing.assert_array_equal(B.to_numpy(x), [-1.5, 0.0, 2.0, -0.0, 3.5])     # not in place
    g = B.asarray(np.array([1.0, 2.0, 3.0, 4.0, 5.0], np.float32))
    np.testing.assert_array_equal(B.to_numpy(B.relu_backward(g, out)), [0.0, 0.0, 3.0, 0.0, 5.0])
    np.testing.assert_array_equal(B.to_numpy(g), [1.0, 2.0, 3.0, 4.0, 5.0])


# ---- masking the scores in place (B.masked_fill_) ---------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_masked_fill_is_where_and_writes_over_its_input(dtype):
    """The engines fill in place (no second array as large as the scores); the values are those
    of ``where(mask, value, x)``, -0.0 and nan included, for a mask broadcast over leading axes."""
    x_np = randn(3, 2, 4, 5, seed=7).astype(dtype)
    x_np[0, 0, 0, :2] = [-0.0, np.nan]
    mask = np.arange(4)[:, None] < np.arange(5)[None, :]                 # (4, 5): causal-style
    for value in (float("-inf"), 0.0):
        expected = np.where(mask, value, x_np)
        x = B.asarray(x_np.copy())
        out = B.masked_fill_(x, B.asarray(mask), value)
        got = B.to_numpy(out)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, expected)
        assert np.array_equal(np.signbit(got), np.signbit(expected))     # -0.0 kept where not masked
        assert B.to_numpy(x) is got or np.array_equal(B.to_numpy(x), expected)   # written over x
        # the default of the interface (where, a new array) gives the same bits
        np.testing.assert_array_equal(B.to_numpy(Engine.masked_fill_(B, B.asarray(x_np.copy()), B.asarray(mask),
                                                                      value)), expected)


def test_masked_fill_with_a_mask_larger_than_its_input_broadcasts_both():
    """A mask with more leading axes than ``x`` cannot be written into ``x``: the result is
    ``where``'s, of the broadcast shape, and ``x`` is left as it was."""
    x_np = randn(4, 5, seed=8).astype(np.float32)
    mask = randn(2, 4, 5, seed=9) > 0
    x = B.asarray(x_np.copy())
    got = B.to_numpy(B.masked_fill_(x, B.asarray(mask), 0.0))
    np.testing.assert_array_equal(got, np.where(mask, np.float32(0.0), x_np))
    np.testing.assert_array_equal(B.to_numpy(x), x_np)


@pytest.mark.parametrize("case", ["causal", "bool_mask", "causal_offset"])
def test_composed_attention_gives_the_same_bits_with_the_in_place_fill(case, monkeypatch):
    """The composed attention (both engines' path with a mask or a causal offset other than 0,
    and without a kernel) masks its scores and their gradient in place: outputs and gradients are the
    bits of the same arithmetic with ``where``."""
    q, k, v, up = randn(2, 3, 6, 4, seed=1), randn(2, 3, 6, 4, seed=2), randn(2, 3, 6, 4, seed=3), \
        randn(2, 3, 6, 4, seed=4)
    mask = randn(1, 3, 6, 6, seed=5) > 0.5
    kwargs = {"causal": dict(causal=0), "bool_mask": dict(mask=mask), "causal_offset": dict(causal=1)}[case]
    monkeypatch.setattr(B, "attention_fused", lambda *args, **kw: None)   # the composed path on both engines

    def fn(q, k, v):
        m = kwargs.get("mask")
        return attention.ScaledDotProductAttention.apply(q, k, v, None if m is None else gt.tensor(m), scale=0.5,
                                                         causal=kwargs.get("causal"))

    calls = _spy(monkeypatch, "masked_fill_")
    filled = _run(fn, [q, k, v], up, "float32")
    assert len(calls) == 2                                               # the scores, then their gradient
    default = Engine.masked_fill_.__get__(object.__getattribute__(B, "_engine"))
    monkeypatch.setattr(B, "masked_fill_", default)                      # where: a new array each time
    composed = _run(fn, [q, k, v], up, "float32")
    for got, want in zip(filled, composed):
        np.testing.assert_array_equal(got, want)
    assert np.isfinite(filled[0]).all()


# ---- a Linear layer's forward (B.linear) ------------------------------------------------------
@pytest.mark.parametrize("rows,inputs,outputs", [(8, 512, 256), (3, 1000, 64), (1, 40, 300), (64, 128, 32)])
def test_linear_is_the_product_plus_bias_to_the_bit(rows, inputs, outputs):
    """Whatever way the engine asks its BLAS (the numpy engine swaps the product's sides for few
    rows where that was measured faster: OpenBLAS's SkylakeX kernels on Intel and AMD, the same bits, and
    its Haswell kernels on AMD, another order of the sums), the values are the bits of one of the
    two calls, ``x @ W.T + b`` or ``(W @ x.T).T + b``, on the numpy engine, and those of
    ``x @ W.T + b`` to rounding on both engines."""
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, inputs)).astype(np.float32)
    w = rng.standard_normal((outputs, inputs)).astype(np.float32)
    b = rng.standard_normal(outputs).astype(np.float32)
    got = B.to_numpy(B.linear(B.asarray(x), B.asarray(w), B.asarray(b)))
    expected = x @ w.T + b
    scale = float(np.abs(expected).max())     # sums of hundreds of products: rounding grows with them
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * scale)
    if B.name == "numpy":
        # the engine's own 2-D products (numpy's BLAS, or MKL where GT_BLAS picks it)
        plain, swapped = _engine_product(x, w.T), _engine_product(w, x.T).T
        assert np.array_equal(got, plain + b) or np.array_equal(got, swapped + b)
        no_bias = B.to_numpy(B.linear(B.asarray(x), B.asarray(w), None))
        assert np.array_equal(no_bias, plain) or np.array_equal(no_bias, swapped)
    # and through the layer, with a 3-D input whose reshape may copy a column-major product
    lin = nn.Linear(inputs, outputs)
    with gt.no_grad():
        lin.weight.copy_(gt.tensor(w))
        lin.bias.copy_(gt.tensor(b))
    out = lin(gt.tensor(x.reshape(1, rows, inputs))).numpy()
    np.testing.assert_allclose(out, expected.reshape(1, rows, outputs), rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("shape", [(40,), (6, 40), (2, 3, 40), (2, 3, 2, 40), (0, 40)])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_flattens_the_leading_axes_into_one_product(shape, layout, with_bias):
    """Any number of leading axes, contiguous or a strided view, with or without a bias: the
    values of one product over the flattened rows, to the bit (on torch: one addmm, or mm, of
    the rows, whichever way the engine reaches it)."""
    rng = np.random.default_rng(len(shape))
    full = rng.standard_normal(shape[:-1] + (2 * shape[-1],)).astype(np.float32)
    x_np = np.ascontiguousarray(full[..., :shape[-1]]) if layout == "contiguous" else full[..., ::2]
    w_np = rng.standard_normal((7, shape[-1])).astype(np.float32)
    b_np = rng.standard_normal(7).astype(np.float32) if with_bias else None
    x = B.asarray(x_np) if layout == "contiguous" else B.asarray(full)[..., ::2]
    w = B.asarray(w_np)
    b = None if b_np is None else B.asarray(b_np)
    got = B.to_numpy(B.linear(x, w, b))
    assert got.shape == shape[:-1] + (7,)
    rows = np.ascontiguousarray(x_np).reshape(-1, shape[-1])
    if B.name == "torch":
        import torch

        dev = str(B.device)                 # torch's product on the engine's device (a GPU's differs)
        t_rows, t_w = torch.from_numpy(rows).to(dev), torch.from_numpy(w_np).to(dev)
        ref = (torch.mm(t_rows, t_w.t()) if b_np is None
               else torch.addmm(torch.from_numpy(b_np).to(dev), t_rows, t_w.t()))
        expected = ref.cpu().numpy().reshape(shape[:-1] + (7,))
    else:
        expected = (_engine_product(rows, w_np.T) + (0 if b_np is None else b_np)).reshape(shape[:-1] + (7,))
    np.testing.assert_array_equal(got, expected)


def _engine_product(a, b):
    """``a @ b`` for 2-D arrays as the numpy engine computes it: in numpy's BLAS, or in MKL where
    ``GT_BLAS`` picks it (gt/backend/mkl.py; other bits than OpenBLAS's)."""
    return B.matmul(a, b) if a.size else a @ b


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_sums_of_a_big_matrix_are_the_sums(layout, dtype):
    """``B.sum(x, axis=0)`` of a big float matrix (a Linear's bias gradient) is the column sums,
    as close to the exact ones as numpy's; NaN and infinities propagate as in a sum; other
    shapes, axes and dtypes give numpy's own answer."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3136, 384)).astype(dtype)
    x = np.asfortranarray(x) if layout == "F" else x
    exact = x.astype(np.float64).sum(axis=0)
    got = B.to_numpy(B.sum(B.asarray(x), axis=0))
    assert got.shape == (384,) and got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, exact, rtol=0, atol=tol * np.abs(x).sum(axis=0).max())
    y = x.copy()
    y[5, 0], y[7, 1], y[9, 2], y[11, 2] = np.nan, np.inf, np.inf, -np.inf
    with np.errstate(invalid="ignore"):               # inf - inf, as numpy's own sum says
        sums = B.to_numpy(B.sum(B.asarray(y), axis=0))
    assert np.isnan(sums[0]) and sums[1] == np.inf and np.isnan(sums[2]) and np.isfinite(sums[3:]).all()
    for other in (x[:, :3], x.astype(np.int64) if dtype == np.float64 else x[::2]):
        np.testing.assert_allclose(B.to_numpy(B.sum(B.asarray(other), axis=0)), np.sum(other, axis=0), rtol=0,
                                   atol=tol * np.abs(other).sum(axis=0).max())
    kept = B.to_numpy(B.sum(B.asarray(x), axis=0, keepdims=True))
    if B.name == "numpy":                              # not a column sum by the product: numpy's bits
        np.testing.assert_array_equal(kept, np.sum(x, axis=0, keepdims=True))
    np.testing.assert_allclose(kept[0], got, rtol=0, atol=tol * np.abs(x).sum(axis=0).max())
