"""gt/ao's statically quantized Conv1d/Conv3d, activations (ReLU6, Hardswish, ELU, LeakyReLU,
Sigmoid, Dropout; tanh and hardsigmoid of a quint8 tensor) and normalizations (BatchNorm2d/3d, LayerNorm,
GroupNorm, InstanceNorm1d/2d/3d) beside torch 2.13's fbgemm kernels: their integers bit for bit (exact .5
ties and torch's vectorised/scalar split included), scales and zero points, reprs, state dict keys and
errors, and prepare/calibrate/convert of small models holding them. Quantized answers depend on no GT_*
variable but the engine, so these tests run once per engine (``own_mesh``)."""

import io
import re

import numpy as np
import pytest

import gt
import gt.ao.quantization as gq
from gt.tensor.quantized import as_quantized
from helpers import fbgemm_engine, torch_or_skip  # noqa: F401 (a fixture)
import test_quantized_static_parity as static_parity

torch = torch_or_skip()
tq = torch.ao.quantization
# the fbgemm engine (its kernels are what gt follows) and torch's quantization warnings silenced, as there
pytestmark = [pytest.mark.own_mesh, *static_parity.pytestmark]
gnnq, tnnq = gt.ao.nn.quantized, torch.ao.nn.quantized


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # torch's quantized kernels take milliseconds a call to wake a second thread; one thread gives the
    # same integers (they split no tensor this small among threads)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _input(rng, shape, ties):
    """A quint8 torch tensor: on power-of-two grids (``ties``: requantized values land on .5) or random."""
    if ties:
        ints = rng.choice([0, 16, 32, 48, 64], size=shape).astype(np.uint8)
        return torch._make_per_tensor_quantized_tensor(torch.from_numpy(ints), 2.0 ** -int(rng.integers(3, 7)), 16)
    ints = rng.integers(0, 256, size=shape).astype(np.uint8)
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(ints), float(rng.uniform(0.005, 0.2)),
                                                   int(rng.integers(0, 256)))


def _out_qparams(rng, ties):
    scale = 2.0 ** -int(rng.integers(1, 6)) if ties else float(rng.uniform(0.005, 0.1))
    return scale, int(rng.integers(0, 256))


def _same(got, want, what):
    assert np.array_equal(got.int_repr().numpy(), want.int_repr().numpy()), what
    assert (got.q_scale(), got.q_zero_point()) == (want.q_scale(), want.q_zero_point()), what
    return want.numel()


def test_activation_integers_are_torch_s():
    # lengths on both sides of torch's 64-value vectorised steps: its head and scalar tail round differently
    rng = np.random.default_rng(0)
    compared = 0
    for trial in range(20):
        n = [5, 64, 100, 130, 191][trial % 5]
        x = _input(rng, (n,), trial % 2 == 0)
        scale, zp = _out_qparams(rng, trial % 2 == 0)
        pairs = [(gnnq.ReLU6(), tnnq.ReLU6()), (gnnq.Hardswish(scale, zp), tnnq.Hardswish(scale, zp)),
                 (gnnq.ELU(scale, zp, 0.7), tnnq.ELU(scale, zp, 0.7)),
                 (gnnq.LeakyReLU(scale, zp, 0.13), tnnq.LeakyReLU(scale, zp, 0.13)),
                 (gnnq.Sigmoid(scale, zp), tnnq.Sigmoid(scale, zp)), (gnnq.Dropout(0.2), tnnq.Dropout(0.2))]
        for g, t in pairs:
            compared += _same(g(as_quantized(x)), t(x), (trial, type(g).__name__))
    assert compared == 6 * 4 * (5 + 64 + 100 + 130 + 191)
    t = _input(rng, (70,), False)
    g = as_quantized(t.clone())
    assert gnnq.ReLU6(inplace=True)(g) is g and tnnq.ReLU6(inplace=True)(t) is t     # torch's: the input's integers
    assert np.array_equal(g.int_repr().numpy(), t.int_repr().numpy())
    with pytest.warns(UserWarning, match="inplace=True is not supported"):
        gnnq.LeakyReLU(0.1, 3, inplace=True)(g)


def test_tanh_and_hardsigmoid_of_quint8_are_torch_s():
    # every level (0 and 255 included) in torch's vectorised head and scalar tail; scales of 3/2^k put
    # hardsigmoid's requantized values on .5 ties
    rng = np.random.default_rng(5)
    for trial in range(24):
        scale = 3.0 * 2.0 ** -int(rng.integers(6, 10)) if trial % 3 == 0 else float(np.exp(rng.uniform(-7, -1.5)))
        ints = np.concatenate([np.arange(256), rng.permutation(256)[:63]]).astype(np.uint8)
        ints = np.roll(ints, 63 * (trial % 2))
        t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(ints), scale, int(rng.integers(0, 256)))
        g = as_quantized(t)
        _same(g.tanh(), torch.tanh(t), (trial, "tanh"))
        _same(gt.tanh(g), t.tanh(), (trial, "gt.tanh"))
        _same(gt.nn.functional.hardsigmoid(g), torch.nn.functional.hardsigmoid(t), (trial, "hardsigmoid"))
    assert (g.tanh().q_scale(), g.tanh().q_zero_point()) == (2 / 256, 128)
    v, gv = t[:5], g[:5]
    assert gt.nn.Hardsigmoid(inplace=True)(g) is g and torch.nn.Hardsigmoid(inplace=True)(t) is t
    _same(g, t, "hardsigmoid in place")        # the input's integers and parameters replaced, as torch's
    _same(gv, v, "a view of it: the new integers, its old parameters")
    q32 = gt.quantize_per_tensor(gt.tensor([0.5]), 0.1, 0, gt.qint32)   # qint8 works: the activation_more file
    with pytest.raises(RuntimeError, match="quantized::tanh: expected a quint8 or qint8 input"):
        q32.tanh()

def _affine(rng, n, ties):
    if ties:
        return (rng.integers(1, 8, n) / 4).astype(np.float32), (rng.integers(-8, 8, n) / 8).astype(np.float32)
    return rng.normal(size=n).astype(np.float32), rng.normal(size=n).astype(np.float32)


def _norm_pairs(rng, shape, ties):
    channels, dims = shape[1], len(shape)
    w, b = _affine(rng, channels, ties)
    scale, zp = _out_qparams(rng, ties)
    lw, lb = (np.resize(a, shape[2:]).astype(np.float32) for a in (w, b))
    built = []
    for q, lib in ((gnnq, gt), (tnnq, torch)):
        def p(a):
            return lib.nn.Parameter(lib.tensor(a))
        built.append([q.GroupNorm(channels // 2, channels, p(w), p(b), scale, zp),
                      getattr(q, f"InstanceNorm{dims - 2}d")(channels, p(w), p(b), scale, zp),
                      q.LayerNorm(shape[2:], p(lw), p(lb), scale, zp)])
    pairs = list(zip(*built))
    if dims > 3:
        t = getattr(tnnq, f"BatchNorm{dims - 2}d")(channels)
        with torch.no_grad():
            t.weight.copy_(torch.from_numpy(w))
            t.bias.copy_(torch.from_numpy(b))
            t.running_mean.uniform_(-1, 1)
            t.running_var.uniform_(0.3, 2)
        t.scale, t.zero_point = torch.tensor(scale), torch.tensor(zp)
        g = getattr(gnnq, f"BatchNorm{dims - 2}d")(channels)
        g.load_state_dict(t.state_dict())
        pairs.append((g, t))
    return pairs


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
                    reason="gt follows torch's AVX2/AVX-512 kernels; its scalar build rounds some group norm ties "
                           "otherwise")
def test_normalization_integers_are_torch_s():
    # rows of 33, 35 and 36 values: layer norm's 32-value vectorised steps and its scalar tails
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    compared = 0
    for trial in range(6):
        channels = [4, 6, 8][trial % 3]
        for spatial in [(33,), (5, 7), (2, 3, 6)]:
            x = _input(rng, (2, channels) + spatial, trial % 2 == 0)
            for g, t in _norm_pairs(rng, tuple(x.shape), trial % 2 == 0):
                compared += _same(g(as_quantized(x)), t(x), (trial, spatial, type(g).__name__))
    assert compared == 2 * (4 + 6 + 8) * 2 * (33 * 3 + 35 * 4 + 36 * 4)


@pytest.mark.parametrize("dims", [1, 3])
def test_conv1d_conv3d_integers_are_fbgemm_s(dims):
    rng = np.random.default_rng(2 + dims)
    compared = 0
    for trial, (stride, padding, dilation, groups) in enumerate([(1, 1, 1, 1), (2, 0, 1, 2), (1, 2, 2, 1),
                                                                 (2, 1, 1, 4)]):
        ties = trial % 2 == 0
        x_scale = 2.0 ** -6 if ties else float(np.float32(rng.uniform(0.001, 0.05)))
        w_scales = 2.0 ** -rng.integers(5, 9, size=8).astype(np.float64) if ties else rng.uniform(0.001, 0.02, 8)
        spatial = (9,) if dims == 1 else (5, 6, 5)
        x = torch._make_per_tensor_quantized_tensor(torch.from_numpy(
            rng.integers(0, 128, size=(2, 8) + spatial).astype(np.uint8)), x_scale, int(rng.integers(0, 128)))
        ints = torch.from_numpy(rng.integers(-128, 128, size=(8, 8 // groups) + (3,) * dims).astype(np.int8))
        w = torch._make_per_channel_quantized_tensor(ints, torch.from_numpy(w_scales), torch.zeros(8, dtype=torch.long),
                                                     0) if trial != 1 else \
            torch._make_per_tensor_quantized_tensor(ints, float(w_scales[0]), 0)
        bias = torch.from_numpy((rng.integers(-50, 50, size=8) * 2.0 ** -9).astype(np.float32))
        t = getattr(tnnq, f"Conv{dims}d")(8, 8, 3, stride, padding, dilation, groups)
        g = getattr(gnnq, f"Conv{dims}d")(8, 8, 3, stride, padding, dilation, groups)
        t.set_weight_bias(w, bias)
        g.set_weight_bias(w, gt.tensor(bias.numpy()))
        t.scale = g.scale = 2.0 ** -int(rng.integers(6, 10)) if ties else float(rng.uniform(0.05, 0.5))
        t.zero_point = g.zero_point = int(rng.integers(0, 256))
        compared += _same(g(as_quantized(x)), t(x), trial)
        assert repr(g) == repr(t)
    assert compared == 2 * 8 * (9 + 4 + 9 + 5 if dims == 1 else 150 + 8 + 150 + 27)


def test_reprs_and_state_dict_keys_are_torch_s():
    def params(n, lib):
        return lib.nn.Parameter(lib.ones(n)), lib.nn.Parameter(lib.zeros(n))
    for build in [lambda q, lib: q.ReLU6(), lambda q, lib: q.Hardswish(0.1, 3), lambda q, lib: q.ELU(0.1, 3, 0.5),
                  lambda q, lib: q.LeakyReLU(0.1, 3, 0.2), lambda q, lib: q.Sigmoid(0.1, 3),
                  lambda q, lib: q.Dropout(0.3), lambda q, lib: q.BatchNorm2d(4), lambda q, lib: q.BatchNorm3d(4),
                  lambda q, lib: q.Conv1d(4, 6, 3, padding=1, bias=False), lambda q, lib: q.Conv3d(4, 6, 2, groups=2),
                  lambda q, lib: q.LayerNorm([5], *params(5, lib), 0.1, 3),
                  lambda q, lib: q.GroupNorm(2, 4, *params(4, lib), 0.1, 3),
                  lambda q, lib: q.InstanceNorm1d(4, *params(4, lib), 0.1, 3, affine=True)]:
        g, t = build(gnnq, gt), build(tnnq, torch)
        assert repr(g) == repr(t)
        gs, ts = g.state_dict(), t.state_dict()
        assert list(gs) == list(ts)
        assert [tuple(getattr(v, "shape", ())) for v in gs.values()] == [tuple(getattr(v, "shape", ()))
                                                                        for v in ts.values()]


def _model_2d(lib, q):
    nn = lib.nn
    return nn.Sequential(q.QuantStub(), nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Hardswish(), nn.LeakyReLU(0.1),
                         nn.ELU(), nn.ReLU6(), nn.Dropout(0.2), nn.GroupNorm(2, 4), nn.InstanceNorm2d(4, affine=True),
                         nn.LayerNorm([4, 4]), nn.BatchNorm2d(4), nn.ReLU(), q.DeQuantStub())


def _model_1d_3d(lib, q):
    nn = lib.nn
    return nn.Sequential(q.QuantStub(), nn.Conv3d(2, 4, 2), nn.BatchNorm3d(4), nn.ReLU(), nn.BatchNorm3d(4),
                         nn.InstanceNorm3d(4), nn.Conv3d(4, 4, 1), nn.ReLU(), nn.BatchNorm3d(4), nn.ReLU(),
                         nn.Flatten(2), nn.Conv1d(4, 3, 2), nn.BatchNorm1d(3), nn.Conv1d(3, 3, 1), nn.ReLU(),
                         nn.InstanceNorm1d(3), q.DeQuantStub())


@pytest.mark.parametrize("build, fuse, shape", [
    (_model_2d, [["11", "12"]], (3, 3, 6, 6)),
    (_model_1d_3d, [["1", "2", "3"], ["6", "7"], ["8", "9"], ["11", "12"], ["13", "14"]], (2, 2, 4, 4, 4))],
    ids=["2d", "1d_3d"])
def test_models_convert_to_torch_s_integers(build, fuse, shape):
    # fuse_modules (ConvReLU1d/3d, BNReLU2d/3d, BatchNorm folded into Conv1d/3d), prepare, calibrate, convert
    torch.manual_seed(3)
    tm = build(torch, tq).eval()
    with torch.no_grad():
        for m in tm.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2)
    gm = build(gt, gq).eval()
    gm.load_state_dict(tm.state_dict())
    tm, gm = tq.fuse_modules(tm, fuse), gq.fuse_modules(gm, fuse)
    gm.load_state_dict(tm.state_dict())      # torch's folded weights (gt's fold agrees to the last bit or so)
    tm.qconfig, gm.qconfig = tq.default_qconfig, gq.default_qconfig
    tp, gp = tq.prepare(tm), gq.prepare(gm)
    assert sorted(gp.state_dict()) == sorted(tp.state_dict())
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    tp(torch.from_numpy(x))
    gp(gt.tensor(x))
    gp.load_state_dict(tp.state_dict())      # torch's observed ranges (the float forwards differ in their last bits)
    tc, gc = tq.convert(tp), gq.convert(gp)
    # gt's repr counts a module's parameters (the normalizations keep the float ones, as torch's)
    assert re.sub(r"  # [0-9,]+ parameters", "", repr(gc)).replace("gt.", "torch.") == repr(tc)
    gs, ts = gc.state_dict(), tc.state_dict()
    assert list(gs) == list(ts)
    assert all(tuple(getattr(gs[k], "shape", ())) == tuple(getattr(ts[k], "shape", ())) for k in ts)
    hidden = {}
    for name, model in (("t", tc), ("g", gc)):
        for i, layer in enumerate(model[1:-1]):
            layer.register_forward_hook(lambda m, inp, out, key=(name, i): hidden.__setitem__(key, out))
    want, got = tc(torch.from_numpy(x)), gc(gt.tensor(x))
    for i in range(len(tc) - 2):
        if hidden["t", i].is_quantized:
            _same(hidden["g", i], hidden["t", i], (i, type(gc[i + 1]).__name__))
    assert np.array_equal(got.numpy(), want.numpy())
    fresh, other = gq.convert(gp), gq.convert(gp)
    for model in (fresh, other):      # what the loads below must overwrite (ELU keeps its own: no state)
        for name, m in model.named_modules():
            if f"{name}.zero_point" in ts:
                m.scale, m.zero_point = m.scale * 2, m.zero_point * 0 + 1
    assert not np.array_equal(fresh(gt.tensor(x)).numpy(), want.numpy())
    buffer = io.BytesIO()
    gt.save(gc.state_dict(), buffer)
    buffer.seek(0)
    fresh.load_state_dict(gt.load(buffer))       # gt's own file
    other.load_state_dict(tc.state_dict())       # torch's quantized state dict
    for model in (fresh, other):
        assert np.array_equal(model(gt.tensor(x)).numpy(), want.numpy())


@pytest.mark.parametrize("bag", [False, True])
def test_embeddings_convert_with_float_qparams_as_torch_s(bag):
    def build(lib):
        layer = lib.nn.EmbeddingBag(12, 6, mode="sum") if bag else lib.nn.Embedding(12, 6)
        return lib.nn.Sequential(layer)
    torch.manual_seed(5)
    tm = build(torch).eval()
    gm = build(gt).eval()
    gm.load_state_dict(tm.state_dict())
    tm.qconfig, gm.qconfig = tq.float_qparams_weight_only_qconfig, gq.float_qparams_weight_only_qconfig
    tp, gp = tq.prepare(tm), gq.prepare(gm)
    assert sorted(gp.state_dict()) == sorted(tp.state_dict())
    tc, gc = tq.convert(tp), gq.convert(gp)
    assert repr(gc).replace("gt.", "torch.") == repr(tc)
    assert list(gc.state_dict()) == list(tc.state_dict())
    indices = np.random.default_rng(6).integers(0, 12, size=(4, 3))
    want = tc(torch.from_numpy(indices))
    assert np.array_equal(gc(gt.tensor(indices)).numpy(), want.numpy())
    for qconfig in (tq, gq):
        model = build(torch if qconfig is tq else gt).eval()
        model.qconfig = qconfig.default_qconfig
        with pytest.raises(AssertionError, match="only supported with float_qparams_weight_only_qconfig"):
            qconfig.convert(qconfig.prepare(model))


def test_misuse_raises_torch_s_errors():
    x = as_quantized(_input(np.random.default_rng(5), (2, 4, 3), False))
    with pytest.raises(RuntimeError, match="expected a quantized input"):
        gnnq.Hardswish(0.1, 3)(gt.randn(4))
    with pytest.raises(RuntimeError, match="Expecting the input tensor of rank 4."):
        gnnq.BatchNorm2d(4)(x)
    with pytest.raises(ValueError, match=r"Input shape must be `\(N, C, D, H, W\)`!"):
        gnnq.Conv3d(4, 4, 1)(x)
    with pytest.raises(RuntimeError, match="Expected channels to be divisible by groups"):
        gnnq.GroupNorm(3, 3, None, None, 0.1, 0)(x)
    with pytest.raises(RuntimeError, match="normalized_shape"):
        gnnq.LayerNorm([4], None, None, 0.1, 0)(x)
    with pytest.raises(NotImplementedError, match="padding_mode='zeros'"):
        gnnq.Conv1d(4, 4, 1, padding_mode="reflect")
    fused = gq.fuse_modules_qat(gt.nn.Sequential(gt.nn.Conv1d(3, 4, 1), gt.nn.BatchNorm1d(4)).train(), ["0", "1"])
    assert type(fused[0]) is gt.ao.nn.intrinsic.ConvBn1d       # trained in tests/test_quantized_qat_more_parity.py
    model = gt.nn.Sequential(gq.QuantStub(), gt.nn.PReLU(), gq.DeQuantStub())
    model.qconfig = gq.default_qconfig
    prepared = gq.prepare(model)
    prepared(gt.randn(2, 3))
    with pytest.warns(UserWarning, match="PReLU's weight observer should have dtype quint8"):
        assert type(gq.convert(prepared)[1]) is gnnq.PReLU       # tests/test_quantized_activation_more_parity.py
    model = gt.nn.Sequential(gt.nn.BatchNorm1d(3)).eval()      # not in torch's mapping: left float, as torch
    model.qconfig = gq.default_qconfig
    assert type(gq.convert(gq.prepare(model))[0]) is gt.nn.BatchNorm1d
