"""gt.autocast beside torch.autocast("cpu") (torch 2.13): which ops lower their products (convolutions,
einsum contractions), which stay in float32 (mv, the pools gt builds from products, the losses and
the other ops of torch's fp32 list given half inputs), norms of half inputs, index_copy's promotion,
float16 blocks and custom_fwd/custom_bwd. gt hands a lowered product on in float32 (gt/amp.py), so
values are compared after torch's result is widened to float32."""

import numpy as np
import pytest

import gt
from gt.backend import B

torch = pytest.importorskip("torch")
F = torch.nn.functional
GF = gt.nn.functional

torch_engine = pytest.mark.skipif(B.name != "torch", reason="autocast needs the torch engine: this runs in "
                                  "the GT_BACKEND=torch pass of the suite")
LOW = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def _arrays(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _both(fn_t, fn_g, arrays, low="bfloat16", grads=True, kinds=None):
    """``(torch's, gt's)`` outputs and input gradients (float32 numpy) under each autocast, the
    same upstream gradient for both; ``kinds`` gives each input's dtype name (float32 by default)."""
    kinds = kinds or ["float32"] * len(arrays)
    ts = [torch.tensor(a).to(getattr(torch, k)).requires_grad_(grads) for a, k in zip(arrays, kinds)]
    gs = [gt.tensor(a, dtype=getattr(gt, k), requires_grad=grads) for a, k in zip(arrays, kinds)]
    with torch.autocast("cpu", dtype=LOW[low]):
        to = fn_t(*ts)
    with gt.autocast("cpu", dtype=getattr(gt, low)):
        go = fn_g(*gs)
    out = [(to, go)]
    if grads:
        up = np.cos(np.arange(to.numel())).astype(np.float32).reshape(tuple(to.shape))
        to.backward(torch.tensor(up).to(to.dtype))
        go.backward(gt.tensor(up).to(go.dtype))
        out += [(t.grad, g.grad) for t, g in zip(ts, gs)]
    return out


def _np(t):
    return t.detach().float().numpy() if isinstance(t, torch.Tensor) else t.detach().float().numpy()


CONVS = {
    "conv1d": ((2, 8, 9), (4, 8, 3), dict(stride=2, padding=1)),
    "conv2d": ((2, 3, 8, 8), (4, 3, 3, 3), dict(padding=1)),
    "conv2d_groups": ((2, 4, 7, 7), (6, 2, 3, 3), dict(groups=2, dilation=2)),
    "conv3d": ((2, 3, 4, 6, 6), (4, 3, 2, 2, 2), dict(stride=(1, 2, 2))),
    "conv_transpose1d": ((2, 8, 5), (8, 3, 2), dict(stride=2)),
    "conv_transpose2d": ((2, 3, 5, 5), (3, 4, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    "conv_transpose3d": ((2, 3, 3, 4, 4), (3, 2, 2, 2, 2), dict()),
}


@torch_engine
@pytest.mark.parametrize("low", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", list(CONVS))
def test_convolutions_run_in_the_low_dtype_as_torchs(name, low):
    """torch.autocast lowers every convolution: gt's output and both gradients are torch's to the bit."""
    xs, ws, kw = CONVS[name]
    x, w = _arrays(1, xs, ws)
    fn = name.replace("_groups", "")
    pairs = _both(lambda a, b: getattr(F, fn)(a, b, **kw), lambda a, b: getattr(GF, fn)(a, b, **kw), [x, w], low)
    (to, go), (tgx, ggx), (tgw, ggw) = pairs
    assert to.dtype == LOW[low] and go.dtype == gt.float32 and ggx.dtype == ggw.dtype == gt.float32
    for t, g in pairs:
        np.testing.assert_array_equal(_np(g), _np(t))
    plain = getattr(GF, fn)(gt.tensor(x), gt.tensor(w), **kw).numpy()
    assert not np.array_equal(go.detach().numpy(), plain)         # it did round


@torch_engine
def test_transposed_convolution_with_output_padding_past_its_stride_rounds_too():
    """An output padding at or past the stride (dilated) takes gt's composed path: its products
    run on rounded inputs there too (they ran in float32), within rounding of torch's kernel."""
    x, w = _arrays(11, (2, 3, 5, 5), (3, 4, 3, 3))
    kw = dict(stride=1, output_padding=1, dilation=2)
    pairs = _both(lambda a, b: F.conv_transpose2d(a, b, **kw), lambda a, b: GF.conv_transpose2d(a, b, **kw), [x, w])
    for t, g in pairs:
        np.testing.assert_allclose(_np(g), _np(t), rtol=2e-2, atol=2e-2 * np.abs(_np(t)).max())
    plain = GF.conv_transpose2d(gt.tensor(x), gt.tensor(w), **kw).numpy()
    assert not np.allclose(pairs[0][1].detach().numpy(), plain, rtol=1e-5, atol=1e-5)    # it did round


@torch_engine
def test_conv_module_with_bias_and_a_bfloat16_input():
    """A Conv2d under autocast: the bias is added to the rounded product in float32 (as gt's Linear);
    a bfloat16 input meets the float32 weight, as torch's casts allow (gt raised)."""
    torch.manual_seed(0)
    tm = torch.nn.Conv2d(3, 4, 3, padding=1)
    gm = gt.nn.Conv2d(3, 4, 3, padding=1)
    gm.load_state_dict({k: gt.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    (x,) = _arrays(2, (2, 3, 6, 6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = tm(torch.tensor(x))
        nobias = F.conv2d(torch.tensor(x), tm.weight, padding=1)
    with gt.autocast("bfloat16"):
        got = gm(gt.tensor(x))
        mixed = gm(gt.tensor(x, dtype=gt.bfloat16))
    np.testing.assert_array_equal(got.detach().numpy(), nobias.float().detach().numpy() + tm.bias.detach().numpy()[:, None, None])
    np.testing.assert_allclose(got.detach().numpy(), want.float().detach().numpy(), rtol=2e-2, atol=2e-2)
    np.testing.assert_array_equal(mixed.detach().numpy(), got.detach().numpy())   # x was rounded either way
    assert mixed.dtype == gt.float32


@torch_engine
def test_einsum_contractions_lower_and_elementwise_ones_do_not():
    a, b, c = _arrays(3, (4, 8), (6, 8), (4, 8))
    for eq, args in (("ij,kj->ik", [a, b]), ("bij,bkj->bik", [a[None], b[None]]), ("ij,ij->i", [a, c])):
        for t, g in _both(lambda *o: torch.einsum(eq, *o), lambda *o: gt.einsum(eq, *o), args):
            np.testing.assert_array_equal(_np(g), _np(t))
    for eq, args in (("ij,ij->ij", [a, c]), ("i,j->ij", [a[0], b[0]]), ("ij->j", [a])):     # torch: float32
        for t, g in _both(lambda *o: torch.einsum(eq, *o), lambda *o: gt.einsum(eq, *o), args):
            np.testing.assert_allclose(_np(g), _np(t), rtol=1e-6, atol=1e-6)


EXACT = {   # torch.autocast leaves these in float32; gt builds them from products
    "mv": (lambda L, a, b: L.mv(a, b[0]), [(6, 8), (4, 8)]),
    "addmv": (lambda L, a, b: L.addmv(b[1, :6], a, b[0]), [(6, 8), (4, 8)]),
    "adaptive_avg_pool2d": (lambda L, a: L.nn.functional.adaptive_avg_pool2d(a, (3, 5)), [(2, 3, 8, 7)]),
    "adaptive_avg_pool3d": (lambda L, a: L.nn.functional.adaptive_avg_pool3d(a, 3), [(1, 2, 5, 7, 4)]),
    "interpolate_area": (lambda L, a: L.nn.functional.interpolate(a, size=(5, 3), mode="area"), [(2, 3, 8, 7)]),
    "interpolate_antialias": (lambda L, a: L.nn.functional.interpolate(a, size=(5, 3), mode="bilinear",
                                                                        antialias=True), [(2, 3, 8, 7)]),
}


@torch_engine
@pytest.mark.parametrize("name", list(EXACT))
def test_products_torch_keeps_in_float32_stay_float32(name):
    fn, shapes = EXACT[name]
    for t, g in _both(lambda *a: fn(torch, *a), lambda *a: fn(gt, *a), _arrays(4, *shapes)):
        assert t.dtype == torch.float32
        np.testing.assert_allclose(_np(g), _np(t), rtol=1e-5, atol=1e-6)


HALF_INPUTS = {   # torch.autocast's fp32 list: half inputs computed and answered in float32
    "mse_loss": (lambda L, a, b: L.nn.functional.mse_loss(a, b), 2),
    "l1_loss": (lambda L, a, b: L.nn.functional.l1_loss(a, b), 2),
    "huber_loss": (lambda L, a, b: L.nn.functional.huber_loss(a, b), 2),
    "kl_div": (lambda L, a, b: L.nn.functional.kl_div(a, b, reduction="batchmean", log_target=True), 2),
    "cross_entropy": (lambda L, a: L.nn.functional.cross_entropy(a, L.tensor([1, 2, 3, 0])), 1),
    "nll_loss": (lambda L, a: L.nn.functional.nll_loss(a, L.tensor([1, 2, 3, 0])), 1),
    "bce_with_logits": (lambda L, a, b: L.nn.functional.binary_cross_entropy_with_logits(a, b.sigmoid()), 2),
    "soft_margin_loss": (lambda L, a, b: L.nn.functional.soft_margin_loss(a, b.detach().sign()), 2),
    "triplet_margin_loss": (lambda L, a, b: L.nn.functional.triplet_margin_loss(a, b, a.flip(0)), 2),
    "prod": (lambda L, a: (a[0] / 2).prod(), 1),
    "trace": (lambda L, a: L.trace(a[:, :4]), 1),
    "cdist": (lambda L, a, b: L.cdist(a, b), 2),
    "quantile": (lambda L, a: L.quantile(a, 0.3), 1),
    "avg_pool3d": (lambda L, a: L.nn.functional.avg_pool3d(a.reshape(1, 1, 2, 4, 4), 2), 1),
    "grid_sample": (lambda L, a, b: L.nn.functional.grid_sample(a.reshape(1, 2, 4, 4), b.reshape(1, 2, 4, 4)
                                                                 .permute(0, 2, 3, 1).tanh(), align_corners=False), 2),
}


@torch_engine
@pytest.mark.parametrize("name", list(HALF_INPUTS))
def test_half_inputs_of_torchs_float32_ops_compute_in_float32(name):
    fn, n = HALF_INPUTS[name]
    arrays = _arrays(5, *[(4, 8)] * n)
    pairs = _both(lambda *a: fn(torch, *a), lambda *a: fn(gt, *a), arrays, kinds=["bfloat16"] * n)
    (to, go), *grads = pairs
    assert to.dtype == torch.float32 and go.dtype == gt.float32
    np.testing.assert_allclose(_np(go), _np(to), rtol=1e-5, atol=1e-6)
    for t, g in grads:
        assert (t is None) == (g is None)
        if g is not None:
            assert g.dtype == gt.bfloat16
            np.testing.assert_allclose(_np(g), _np(t), rtol=1e-2, atol=1e-3)


@torch_engine
@pytest.mark.parametrize("norm", ["layer_norm", "group_norm"])
def test_norms_of_half_inputs_are_the_same_inside_autocast(norm):
    """torch 2.13's autocast leaves norms alone: a bfloat16 input is normalised in float32 and
    answered in bfloat16, float32 weights or not (gt composed in bfloat16, or answered float32)."""
    x, w, b = _arrays(6, (2, 4, 6), (6,), (6,))
    if norm == "layer_norm":
        fn_t, fn_g = (lambda x, w, b: F.layer_norm(x, (6,), w, b)), (lambda x, w, b: GF.layer_norm(x, (6,), w, b))
    else:
        w, b = w[:4], b[:4]
        fn_t, fn_g = (lambda x, w, b: F.group_norm(x, 2, w, b)), (lambda x, w, b: GF.group_norm(x, 2, w, b))
    (to, go), *grads = _both(fn_t, fn_g, [x, w, b], kinds=["bfloat16", "float32", "float32"])
    assert to.dtype == torch.bfloat16 and go.dtype == gt.bfloat16
    np.testing.assert_array_equal(_np(go), _np(to))
    for t, g in grads:
        np.testing.assert_allclose(_np(g), _np(t), rtol=1e-2, atol=1e-2)


@torch_engine
def test_index_copy_promotes_float32_and_the_autocast_dtype():
    x, s = _arrays(7, (4, 3), (2, 3))
    (to, go), (tgx, ggx), (tgs, ggs) = _both(lambda a, b: a.index_copy(0, torch.tensor([0, 2]), b),
                                            lambda a, b: a.index_copy(0, gt.tensor([0, 2]), b), [x, s],
                                            kinds=["float32", "bfloat16"])
    assert to.dtype == torch.float32 and go.dtype == gt.float32 and ggs.dtype == gt.bfloat16
    for t, g in ((to, go), (tgx, ggx), (tgs, ggs)):
        np.testing.assert_array_equal(_np(g), _np(t))
    with pytest.raises(TypeError, match="must match"):           # outside autocast, as torch's RuntimeError
        gt.tensor(x).index_copy(0, gt.tensor([0, 2]), gt.tensor(s, dtype=gt.bfloat16))
    with gt.autocast("bfloat16"), pytest.raises(TypeError, match="must match"):   # in place: torch raises too
        gt.tensor(x).index_copy_(0, gt.tensor([0, 2]), gt.tensor(s, dtype=gt.bfloat16))


@torch_engine
def test_float16_blocks_give_torchs_float16_products():
    x, w, img, cw = _arrays(8, (7, 32), (8, 32), (2, 3, 6, 6), (4, 3, 3, 3))
    for fn_t, fn_g, args in ((F.linear, GF.linear, [x, w]), (F.conv2d, GF.conv2d, [img, cw]),
                             (torch.matmul, gt.matmul, [x, w.T.copy()])):
        for t, g in _both(fn_t, fn_g, args, low="float16"):
            np.testing.assert_array_equal(_np(g), _np(t))
    with gt.autocast("cpu", dtype=gt.float16):
        assert gt.get_autocast_dtype("cpu") == gt.float16
        with gt.autocast("bf16"):
            assert gt.get_autocast_dtype("cpu") == gt.bfloat16
        with gt.autocast("cpu", enabled=False):
            assert gt.get_autocast_dtype("cpu") == gt.float16 and not gt.is_autocast_enabled()
    assert gt.get_autocast_dtype("cpu") == gt.bfloat16


def _products(L):
    class Product(L.autograd.Function):
        @staticmethod
        @L.amp.custom_fwd(device_type="cpu")
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x @ y

        @staticmethod
        @L.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            return g @ y.mT, x.mT @ g

    class Float32Product(Product):
        forward = staticmethod(L.amp.custom_fwd(Product.forward.__wrapped__, device_type="cpu",
                                                cast_inputs=L.float32))
    return Product, Float32Product


@torch_engine
def test_custom_fwd_and_custom_bwd_as_torchs():
    """The backward runs under the forward's autocast state; ``cast_inputs`` runs the forward in
    float32 with autocast off."""
    x, y = _arrays(9, (4, 8), (8, 3))
    for k, (tf, gf) in enumerate(zip(_products(torch), _products(gt))):
        pairs = _both(tf.apply, gf.apply, [x, y])
        for t, g in pairs:
            np.testing.assert_array_equal(_np(g), _np(t))
        lowered = not np.allclose(_np(pairs[0][1]), x @ y, rtol=1e-5, atol=1e-5)
        assert lowered == (k == 0)
    with pytest.raises(ValueError, match="expected `device_type` of type `str`"):
        gt.amp.custom_fwd(device_type=None)


def test_custom_fwd_outside_autocast_runs_as_written():
    """On every engine (the numpy engine has no autocast): the forward and backward as written."""
    x, y = _arrays(10, (4, 8), (8, 3))
    Product, Float32Product = _products(gt)
    for fn in (Product, Float32Product):
        a, b = gt.tensor(x, requires_grad=True), gt.tensor(y, requires_grad=True)
        out = fn.apply(a, b)
        out.sum().backward()
        np.testing.assert_allclose(out.detach().numpy(), x @ y, rtol=1e-5)
        np.testing.assert_allclose(a.grad.numpy(), np.ones((4, 3), np.float32) @ y.T, rtol=1e-5)


@pytest.mark.skipif(B.name != "numpy", reason="the numpy engine's error")
@pytest.mark.parametrize("low", ["bfloat16", "float16"])
def test_numpy_engine_refuses_each_dtype_by_name(low):
    with pytest.raises(RuntimeError, match=f"gt.autocast\\('{low}'\\) needs an engine with fast {low} products; "
                                           "the numpy engine has none. Use the torch engine: GT_BACKEND=torch"):
        with gt.autocast("cpu", dtype=getattr(gt, low)):
            pass
    assert not gt.is_autocast_enabled()
