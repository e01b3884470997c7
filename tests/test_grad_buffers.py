"""Gradient buffers reused across steps, and the fused SGD update: faster, and nothing a user
can observe changes. A dropped ``.grad`` is reused only when nobody holds it (the tensor, its
array, or a view); ``zero_grad()`` still leaves ``p.grad`` None, as in torch."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.backend import B
from gt.sharding import get_mesh

# the engine's pool of reused buffers holds CPU memory; on a GPU CUDA's caching allocator reuses it
cpu_pool = pytest.mark.skipif(gt.cuda.is_available(), reason="the pool of reused buffers is the CPU's; on a "
                                                              "GPU CUDA's caching allocator reuses memory")

# big enough for the engine's pool (1 MiB) and for the blocked, threaded update
IN, OUT = 2048, 256


def make(seed=0):
    gt.manual_seed(seed)
    fc = nn.Linear(IN, OUT)
    opt = gt.optim.SGD(fc.parameters(), lr=0.1)
    x = gt.randn(4, IN)
    return fc, opt, x


def _address(t):
    return t.numpy().__array_interface__["data"][0]


def step(fc, x):
    (fc(x) ** 2).sum().backward()


@cpu_pool
@pytest.mark.parametrize("zero", ["optimizer", "module"])
def test_a_dropped_gradient_buffer_is_reused(zero):
    fc, opt, x = make()
    step(fc, x)
    first = _address(fc.weight.grad)
    (opt if zero == "optimizer" else fc).zero_grad()
    assert fc.weight.grad is None
    step(fc, x)
    if get_mesh().size == 1:  # sharded data: several per-device gradients, one buffer to reuse
        assert _address(fc.weight.grad) == first
    B.clear_pool()


@cpu_pool
def test_the_torch_engine_reuses_small_weight_gradients_too():
    """On the torch engine gradients from 16 KiB go back to the pool (a small model's weight
    gradients, freed at the top of glibc's heap, would be given back to the kernel and fault in
    again every step); on numpy the pool starts at 1 MiB."""
    gt.manual_seed(0)
    fc = nn.Linear(128, 128)                  # a 64 KiB weight gradient
    opt = gt.optim.SGD(fc.parameters(), lr=0.1)
    x = gt.randn(64, 128)
    step(fc, x)
    first = _address(fc.weight.grad)
    opt.zero_grad()
    step(fc, x)
    if get_mesh().size == 1 and B.name == "torch":
        assert _address(fc.weight.grad) == first
    B.clear_pool()
    alone = B.zeros((128, 128), gt.float32)
    assert B.recycle(alone) is (B.name == "torch")
    small = B.zeros((64,), gt.float32)        # 256 bytes: from malloc's free lists either way
    assert B.recycle(small) is False
    B.clear_pool()


@pytest.mark.own_mesh     # engine arrays only (B): no mesh, so GT_DEVICES changes nothing
@pytest.mark.parametrize("k", [1, 8, 16, 32])
def test_a_weight_gradient_of_few_rows_is_the_whole_product(k):
    """The torch engine writes a big weight gradient of at most 16 rows in blocks of its output
    rows (MKL zeroes the whole output first, then adds into it); every block is written, also
    into a recycled buffer that held other numbers, and the values are the product's. On the
    numpy engine the same call is one product.

    10,000 columns rather than the default model's 40,000: the output (10 MiB) is still above the
    8 MiB from which blocks pay, in three blocks of 104 rows (the last one short), and each
    fresh page of the float64 checks cost a fault (about 2 of the 4 s the 40,000 took)."""
    rng = np.random.default_rng(k)
    g = B.asarray(rng.standard_normal((k, 256)).astype(np.float32))
    x = B.asarray(rng.standard_normal((k, 10000)).astype(np.float32))
    exact = B.to_numpy(g).astype(np.float64).T @ B.to_numpy(x).astype(np.float64)
    # assert_allclose's test (|got - exact| <= atol + rtol * |exact|, NaN failing) in a few passes over
    # the 2.5 million values: its own took seconds a call, most of the test's time
    bound = np.abs(exact)
    bound *= 1e-5
    bound += 1e-5 * np.sqrt(k)
    for _ in range(2):
        out = B.matmul_reused(B.transpose(g, (1, 0)), x)
        got = B.to_numpy(out)
        assert got.shape == (256, 10000)
        err = np.abs(got - exact)
        close = err <= bound
        assert close.all(), f"{close.size - np.count_nonzero(close)} values off, largest error {np.nanmax(err)}"
        B.to_numpy(out)[...] = np.nan           # what the next call gets from the pool, if parked
        B.recycle(out)
    if B.name == "torch" and not gt.cuda.is_available():     # blocks are the CPU's (MKL's zeroing)
        from gt.backend.torch_buffers import _blocks_pay

        assert _blocks_pay(B.transpose(g, (1, 0)), x) is (k <= 16)
    B.clear_pool()


@pytest.mark.parametrize("hold", ["tensor", "array", "view", "data"])
def test_a_gradient_the_user_holds_is_never_overwritten(hold):
    fc, opt, x = make()
    step(fc, x)
    g = fc.weight.grad
    kept = {"tensor": g, "array": g.numpy(), "view": g[1:3], "data": g.data}[hold]
    expected = np.array(kept.numpy() if hold != "array" else kept, copy=True)
    del g
    opt.zero_grad()
    with gt.no_grad():
        fc.weight.mul_(3.0)  # the next gradient differs
    step(fc, x)
    now = kept.numpy() if hold != "array" else kept
    np.testing.assert_array_equal(now, expected)
    assert not np.array_equal(fc.weight.grad.numpy()[1:3] if hold == "view" else fc.weight.grad.numpy(),
                              expected)
    B.clear_pool()


def test_reused_buffers_give_the_same_training_as_fresh_ones():
    def train(reuse):
        fc, opt, x = make(1)
        losses = []
        for _ in range(4):
            loss = (fc(x) ** 2).mean()
            loss.backward()
            opt.step()
            if reuse:
                opt.zero_grad()
            else:
                keep = [p.grad for p in fc.parameters()]  # held: never recycled
                opt.zero_grad()
                del keep
            losses.append(loss.item())
        B.clear_pool()
        return losses, fc.weight.numpy().copy()

    (l1, w1), (l2, w2) = train(True), train(False)
    assert l1 == l2
    np.testing.assert_array_equal(w1, w2)


def test_zero_grad_set_to_none_false_keeps_zeroed_buffers():
    fc, opt, x = make()
    step(fc, x)
    g = fc.weight.grad
    opt.zero_grad(set_to_none=False)
    assert fc.weight.grad is g and not g.numpy().any()


@cpu_pool
def test_recycle_refuses_arrays_held_elsewhere():
    a = B.zeros((512, 1024), gt.float32)
    other = a  # noqa: F841  (a second reference)
    assert B.recycle(a) is False
    v = B.zeros((512, 1024), gt.float32)[1:]
    assert B.recycle(v) is False  # a view
    base = B.zeros((512, 1024), gt.float32)
    view = base[1:]  # noqa: F841  (alive: base's memory is still in use)
    assert B.recycle(base) is False
    shared = B.zeros((512, 1024), gt.float32)
    host = B.to_numpy(shared)  # noqa: F841  (shares the memory on the CPU)
    assert B.recycle(shared) is False
    small = B.zeros((10,), gt.float32)
    assert B.recycle(small) is False
    alone = B.zeros((512, 1024), gt.float32)
    assert B.recycle(alone) is True     # and it is handed out again
    assert B.empty_reused((512, 1024), gt.float32) is not None
    B.clear_pool()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1000, 300_000, 1_000_003])
def test_add_scaled_is_the_update_rule_to_one_rounding(dtype, n):
    """Small arrays take ``t += v * alpha`` itself; large ones a fused multiply-add (the BLAS's
    axpy, torch's add_): the product is not rounded on its own, so the two differ by at most
    the rounding of the product, and the fused one is the closer to the exact sum."""
    rng = np.random.default_rng(0)
    t = rng.standard_normal(n).astype(dtype)
    v = rng.standard_normal(n).astype(dtype)
    expected = t + v * -0.01
    exact = t.astype(np.float64) + v.astype(np.float64) * np.float64(dtype(-0.01))
    out = B.add_scaled_(t, v, -0.01)
    assert out is t
    ulp = float(np.spacing(dtype(np.abs(expected).max())))
    np.testing.assert_allclose(t, expected, rtol=0, atol=ulp)
    if dtype == np.float32:   # float64 arithmetic holds float32's exact sum
        assert np.abs(t - exact).max() <= np.abs(expected - exact).max()
    if n == 1000 and B.name == "numpy":
        np.testing.assert_array_equal(t, expected)


def test_sgd_fast_path_matches_the_update_rule():
    fc, opt, x = make()
    step(fc, x)
    w, g = fc.weight.numpy().copy(), fc.weight.grad.numpy().copy()
    opt.step()
    # a fused multiply-add (numpy's BLAS axpy for large weights, torch's add_): one rounding of
    # the product apart from the two-step expression
    ulp = float(np.spacing(np.float32(np.abs(w).max() + 0.1 * np.abs(g).max())))
    np.testing.assert_allclose(fc.weight.numpy(), w + g * np.float32(-0.1), rtol=0, atol=ulp)


@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_is_the_composed_computation_to_the_bit(causal):
    """MultiHeadAttention runs one fused op when it can (no mask, no dropout, weights not asked
    for); need_weights=True takes the composed ops. Output and every gradient agree exactly,
    except where the engine runs the op as one attention kernel (the torch engine's flash
    attention sums in another order: float rounding apart)."""
    def run(fused):
        gt.manual_seed(3)
        attn = nn.MultiHeadAttention(16, num_heads=4, causal=causal)
        x = gt.randn(3, 5, 16, requires_grad=True)
        out = attn(x) if fused else attn(x, need_weights=True)[0]
        if get_mesh().size == 1:
            assert (out.grad_fn.inputs[0].grad_fn.name == "Attention") == fused
        (out * gt.randn(3, 5, 16)).sum().backward()
        return out.numpy(), x.grad.numpy(), {n: p.grad.numpy() for n, p in attn.named_parameters()}

    (o1, gx1, g1), (o2, gx2, g2) = run(True), run(False)
    q = B.asarray(np.ones((1, 1, 2, 4), np.float32))
    if B.attention_fused(q, q, q, 1.0, causal) is not None:
        close = dict(rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(o1, o2, **close)
        np.testing.assert_allclose(gx1, gx2, **close)
        for name in g1:
            np.testing.assert_allclose(g1[name], g2[name], err_msg=name, **close)
        return
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_allclose(gx1, gx2, rtol=1e-6, atol=1e-7)  # x's three contributions may add in another order
    for name in g1:
        np.testing.assert_array_equal(g1[name], g2[name], err_msg=name)


@pytest.mark.parametrize("kw", [dict(momentum=0.9), dict(momentum=0.9, dampening=0.3, weight_decay=0.01),
                                dict(momentum=0.8, nesterov=True, weight_decay=0.1), dict(weight_decay=0.05)])
def test_sgd_on_big_weights_follows_torchs_update_rule(kw):
    """Three steps on a weight large enough for the fused update, against the rule written out."""
    fc, _, x = make()
    opt = gt.optim.SGD(fc.parameters(), lr=0.1, **kw)
    w = fc.weight.numpy().astype(np.float64)
    m, d, wd, nesterov = kw.get("momentum", 0.0), kw.get("dampening", 0.0), kw.get("weight_decay", 0.0), \
        kw.get("nesterov", False)
    buf = None
    for _ in range(3):
        step(fc, x)
        g = fc.weight.grad.numpy().astype(np.float64) + wd * w
        if m:
            buf = g.copy() if buf is None else m * buf + (1 - d) * g
            g = g + m * buf if nesterov else buf
        w = w - 0.1 * g
        opt.step()
        opt.zero_grad()
        np.testing.assert_allclose(fc.weight.numpy(), w, rtol=1e-5, atol=1e-6)
    B.clear_pool()


@cpu_pool
@pytest.mark.own_mesh     # engine arrays only (B): no mesh, so GT_DEVICES changes nothing
def test_recycle_spare_parks_only_shapes_asked_for():
    """The backward walk offers every gradient it is done with (``B.recycle_spare``): only a shape
    that ``empty_reused`` asked for is kept, at most ``POOL_SPARES`` of them, and never one held
    elsewhere; the numpy engine keeps none."""
    B.clear_pool()
    unasked = B.zeros((96, 1000), gt.float32)
    assert B.recycle_spare(unasked) is False
    B.empty_reused((97, 1000), gt.float32)      # asked for (and none parked): now wanted
    held = B.zeros((97, 1000), gt.float32)
    others = [held]                             # a second reference
    assert B.recycle_spare(held) is False and others[0] is held
    taken = []
    for _ in range(4):
        alone = B.zeros((97, 1000), gt.float32)    # a local: its one reference, as the walk's
        taken.append(B.recycle_spare(alone))
    if B.name == "torch":
        assert taken == [True] * B.POOL_SPARES + [False] * (4 - B.POOL_SPARES)
    else:
        assert taken == [False] * 4
    B.clear_pool()


@cpu_pool
def test_recycled_input_gradients_give_the_same_gradients_as_fresh_ones():
    """Input gradients of Linear layers (and of the self-attention's projection) go into parked
    buffers that held other numbers, and come back to the pool once read: three backward passes
    of a transformer block give the gradients, bit for bit, of a run that parks nothing."""
    def grads(park):
        B.clear_pool()
        gt.manual_seed(0)
        block = nn.TransformerBlock(32, 4, 64, causal=True)   # 8 x 32 rows of D 32: the packed product
        x = gt.randn(8, 32, 32, requires_grad=True)
        out = []
        for i in range(3):
            ((block(x) * (i + 1)) ** 2).sum().backward()
            out.append([p.grad.numpy().copy() for p in block.parameters()] + [x.grad.numpy().copy()])
            block.zero_grad()
            x.grad = None
            if park and B.name == "torch" and get_mesh().size == 1:
                # the feed-forward's hidden gradient's buffer (the q/k/v gradient is not packed on
                # this engine: its three parts go to the products apart, gt/ops/self_attention.py)
                assert B._pool.get(((8, 32, 64), B.native_dtype(gt.float32)))
                assert not B._pool.get(((8, 32, 96), B.native_dtype(gt.float32)))
        return out

    fresh = grads(False) if B.name != "torch" else None
    if B.name == "torch":
        spare = B.recycle_spare
        B.recycle_spare = lambda arr: False
        try:
            fresh = grads(False)
        finally:
            del B.recycle_spare
        assert B.recycle_spare == spare
    parked = grads(True)
    for a, b in zip(fresh, parked):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    B.clear_pool()
