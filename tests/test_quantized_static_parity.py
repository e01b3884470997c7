"""Eager-mode static post-training quantization (gt/ao) beside torch 2.13's fbgemm engine: the
observers' parameters, the quantized Linear/Conv2d/add/mul/cat integers bit for bit (exact .5
ties included), fuse_modules, prepare/calibrate/convert of a small CNN (its state dict keys, its
repr, its outputs' integers), gt.save/gt.load and torch's quantized state dict loaded into gt's."""

import copy
import io
import warnings

import numpy as np
import pytest

import gt
import gt.ao.quantization as gq
from gt.tensor.quantized import as_quantized
from helpers import fbgemm_engine, torch_or_skip  # noqa: F401 (a fixture)

torch = torch_or_skip()
tq = torch.ao.quantization
pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated"),
              pytest.mark.filterwarnings("ignore:Please use quant_min and quant_max"),
              pytest.mark.usefixtures("fbgemm_engine")]


def _qparams(rng, ties):
    if ties:     # power-of-two scales: the requantized values land on exact .5 ties
        return 2.0 ** -6, 2.0 ** -rng.integers(5, 9, size=8).astype(np.float64), 2.0 ** -int(rng.integers(6, 10))
    return float(np.float32(rng.uniform(0.001, 0.05))), rng.uniform(0.001, 0.02, size=8), float(rng.uniform(0.05, 0.5))


def _torch_q(ints, scale, zero_point):
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(ints), scale, zero_point)


def _weight(rng, shape, scales, per_channel):
    w = torch.from_numpy(rng.integers(-128, 128, size=shape).astype(np.int8))
    if per_channel:
        return torch._make_per_channel_quantized_tensor(w, torch.from_numpy(scales), torch.zeros(shape[0],
                                                                                                dtype=torch.long), 0)
    return torch._make_per_tensor_quantized_tensor(w, float(scales[0]), 0)


@pytest.mark.parametrize("relu", [False, True])
def test_linear_integers_are_fbgemm_s(relu):
    rng = np.random.default_rng(int(relu))
    cls = gt.ao.nn.intrinsic.quantized.LinearReLU if relu else gt.ao.nn.quantized.Linear
    op = torch.ops.quantized.linear_relu if relu else torch.ops.quantized.linear
    for trial in range(8):
        x_scale, w_scales, out_scale = _qparams(rng, trial % 2 == 0)
        x = _torch_q(rng.integers(0, 128, size=(12, 40)).astype(np.uint8), x_scale, int(rng.integers(0, 128)))
        w = _weight(rng, (8, 40), w_scales, trial % 4 < 2)
        bias = torch.from_numpy(rng.normal(size=8).astype(np.float32) * 2)
        if trial % 2 == 0:       # on the ties' grid
            bias = torch.round(bias * 2 ** 5) / 2 ** 9
        bias = None if trial == 3 else bias
        out_zp = int(rng.integers(0, 256))
        want = op(x, torch.ops.quantized.linear_prepack(w, bias), out_scale, out_zp)
        layer = cls(40, 8)
        layer.set_weight_bias(w, None if bias is None else gt.tensor(bias.numpy()))
        layer.scale, layer.zero_point = out_scale, out_zp
        got = layer(as_quantized(x))
        assert np.array_equal(got.int_repr().numpy(), want.int_repr().numpy()), trial
        assert (got.q_scale(), got.q_zero_point()) == (want.q_scale(), want.q_zero_point())


@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_integers_are_fbgemm_s(relu):
    rng = np.random.default_rng(2 + int(relu))
    cls = gt.ao.nn.intrinsic.quantized.ConvReLU2d if relu else gt.ao.nn.quantized.Conv2d
    op = torch.ops.quantized.conv2d_relu if relu else torch.ops.quantized.conv2d
    for trial, (stride, padding, dilation, groups) in enumerate([(1, 1, 1, 1), (2, 0, 1, 2), (1, 2, 2, 1),
                                                                 (2, 1, 1, 4)]):
        x_scale, w_scales, out_scale = _qparams(rng, trial % 2 == 0)
        x = _torch_q(rng.integers(0, 128, size=(2, 8, 7, 7)).astype(np.uint8), x_scale, int(rng.integers(0, 128)))
        w = _weight(rng, (8, 8 // groups, 3, 3), w_scales, trial != 1)
        bias = torch.from_numpy((rng.integers(-50, 50, size=8) * 2.0 ** -9).astype(np.float32))
        out_zp = int(rng.integers(0, 256))
        packed = torch.ops.quantized.conv2d_prepack(w, bias, [stride] * 2, [padding] * 2, [dilation] * 2, groups)
        want = op(x, packed, out_scale, out_zp)
        layer = cls(8, 8, 3, stride, padding, dilation, groups)
        layer.set_weight_bias(w, gt.tensor(bias.numpy()))
        layer.scale, layer.zero_point = out_scale, out_zp
        got = layer(as_quantized(x))
        assert np.array_equal(got.int_repr().numpy(), want.int_repr().numpy()), trial


def test_long_sums_are_exact_and_rounded_as_fbgemm_s():
    # 1,100 and 1,152 products of up to 127 * 128 (7-bit activations, as reduce_range keeps them for
    # fbgemm's saturating AVX2 kernels): past float32's exact integers, so gt sums exact float32
    # blocks in float64 (Linear) or the whole in float64 (Conv2d), and rounds the int32 sum to
    # float32 as fbgemm does (some of these sums pass 2**24 and round)
    rng = np.random.default_rng(8)
    x = _torch_q(rng.choice([0, 127], size=(4, 1100), p=[0.02, 0.98]).astype(np.uint8), 0.01, 0)
    w = torch._make_per_tensor_quantized_tensor(torch.from_numpy(
        rng.choice([-128, 127], size=(8, 1100), p=[0.97, 0.03]).astype(np.int8)), 0.003, 0)
    want = torch.ops.quantized.linear(x, torch.ops.quantized.linear_prepack(w, None), 1000.0, 128)
    layer = gt.ao.nn.quantized.Linear(1100, 8, bias_=False)
    layer.set_weight_bias(w, None)
    layer.scale, layer.zero_point = 1000.0, 128
    assert np.array_equal(layer(as_quantized(x)).int_repr().numpy(), want.int_repr().numpy())
    xc = _torch_q(rng.choice([0, 127], size=(1, 128, 3, 3), p=[0.02, 0.98]).astype(np.uint8), 0.01, 0)
    wc = torch._make_per_tensor_quantized_tensor(torch.from_numpy(
        rng.choice([-128, 127], size=(4, 128, 3, 3), p=[0.97, 0.03]).astype(np.int8)), 0.003, 0)
    packed = torch.ops.quantized.conv2d_prepack(wc, None, [1, 1], [0, 0], [1, 1], 1)
    want = torch.ops.quantized.conv2d(xc, packed, 500.0, 128)
    conv = gt.ao.nn.quantized.Conv2d(128, 4, 3, bias=False)
    conv.set_weight_bias(wc, None)
    conv.scale, conv.zero_point = 500.0, 128
    assert np.array_equal(conv(as_quantized(xc)).int_repr().numpy(), want.int_repr().numpy())


def test_qfunctional_add_mul_cat_are_torch_s():
    rng = np.random.default_rng(4)
    for trial in range(12):
        n = [1, 63, 64, 100, 130, 200][trial % 6]
        ties = trial % 2 == 0

        def scale():
            return float(2.0 ** -int(rng.integers(3, 8))) if ties else float(rng.uniform(0.01, 0.2))
        a, b = (_torch_q(rng.integers(0, 256, size=(n,)).astype(np.uint8), scale(), int(rng.integers(0, 256)))
                for _ in range(2))
        qf = gt.ao.nn.quantized.QFunctional()
        qf.scale, qf.zero_point = scale(), int(rng.integers(0, 256))
        for name in ("add", "add_relu", "mul"):
            want = getattr(torch.ops.quantized, name)(a, b, qf.scale, qf.zero_point).int_repr().numpy()
            got = getattr(qf, name)(as_quantized(a), as_quantized(b))
            assert np.array_equal(got.int_repr().numpy(), want), (trial, name)
        want = torch.ops.quantized.cat([a, b], 0, qf.scale, qf.zero_point).int_repr().numpy()
        assert np.array_equal(qf.cat([as_quantized(a), as_quantized(b)]).int_repr().numpy(), want)


@pytest.mark.parametrize("name, kwargs", [
    ("MinMaxObserver", {}), ("MinMaxObserver", {"dtype": "qint8", "qscheme": "per_tensor_symmetric"}),
    ("MovingAverageMinMaxObserver", {"averaging_constant": 0.3, "quant_min": 0, "quant_max": 127}),
    ("PerChannelMinMaxObserver", {"dtype": "qint8", "qscheme": "per_channel_symmetric"}),
    ("MovingAveragePerChannelMinMaxObserver", {"ch_axis": 1}),
    ("HistogramObserver", {"reduce_range": True}), ("HistogramObserver", {"bins": 256})])
def test_observers_choose_torch_s_parameters(name, kwargs):
    rng = np.random.default_rng(5)
    t = getattr(tq, name)(**{k: getattr(torch, v) if isinstance(v, str) else v for k, v in kwargs.items()})
    g = getattr(gq, name)(**{k: getattr(gt, v) if isinstance(v, str) else v for k, v in kwargs.items()})
    for i in range(4):    # each batch wider than the last: the histogram is spread onto the new range
        x = (rng.standard_normal((8, 6)) * (1 + i) + 0.3 * i).astype(np.float32)
        t(torch.from_numpy(x))
        g(gt.tensor(x))
    (ts, tz), (gs, gz) = t.calculate_qparams(), g.calculate_qparams()
    assert np.array_equal(gs.numpy(), ts.numpy()) and np.array_equal(gz.numpy(), tz.numpy())
    if name == "HistogramObserver":       # the counts spread onto the widened ranges, as torch's
        assert np.array_equal(g.histogram.numpy(), t.histogram.numpy())
    assert sorted(g.state_dict()) == sorted(t.state_dict())


def _net(lib, q, functional):
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.dequant = q.QuantStub(), q.DeQuantStub()
            self.conv, self.bn, self.relu = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
            self.pool = nn.MaxPool2d(2)
            self.conv2, self.relu2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.ReLU()
            self.skip = functional.FloatFunctional()
            self.fc, self.relu3, self.fc2 = nn.Linear(8 * 4 * 4, 10), nn.ReLU(), nn.Linear(10, 5)

        def forward(self, x):
            x = self.pool(self.relu(self.bn(self.conv(self.quant(x)))))
            x = self.skip.add(x, self.relu2(self.conv2(x)))
            return self.dequant(self.fc2(self.relu3(self.fc(x.reshape(x.shape[0], -1)))))
    return Net()


_FUSE = [["conv", "bn", "relu"], ["conv2", "relu2"], ["fc", "relu3"]]


def _calibrated(qconfig):
    torch.manual_seed(0)
    tm = _net(torch, tq, torch.ao.nn.quantized)
    with torch.no_grad():
        tm.bn.running_mean.uniform_(-0.5, 0.5)
        tm.bn.running_var.uniform_(0.5, 2)
    gm = _net(gt, gq, gt.ao.nn.quantized)
    gm.load_state_dict(tm.state_dict())
    tm, gm = tq.fuse_modules(tm.eval(), _FUSE), gq.fuse_modules(gm.eval(), _FUSE)
    assert np.array_equal(gm.conv[0].weight.numpy(), tm.conv[0].weight.detach().numpy())     # BN folded as torch
    tm.qconfig, gm.qconfig = qconfig(tq), qconfig(gq)
    tp, gp = tq.prepare(tm), gq.prepare(gm)
    assert sorted(gp.state_dict()) == sorted(tp.state_dict())
    rng = np.random.default_rng(6)
    for i in range(2):
        x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32) * (1 + i)
        tp(torch.from_numpy(x))
        gp(gt.tensor(x))
    return tp, gp


def _zeroed(state):
    return {k: v * 0 if k.endswith(("weight", "bias")) and "post_process" not in k else v for k, v in state.items()}


@pytest.mark.parametrize("qconfig", [lambda q: q.get_default_qconfig("x86"), lambda q: q.default_qconfig],
                         ids=["x86", "default_qconfig"])
def test_small_cnn_converts_to_torch_s_integers(qconfig):
    tp, gp = _calibrated(qconfig)
    # the float forwards differ in their last bits (another summation order), and so may the observed
    # ranges; with torch's observer statistics loaded, every integer must be torch's
    gp.load_state_dict(tp.state_dict())
    tc, gc = tq.convert(tp), gq.convert(gp)
    gp.load_state_dict(_zeroed(tp.state_dict()))      # what the loads below must overwrite
    assert sorted(gc.state_dict()) == sorted(tc.state_dict())
    assert repr(gc).replace("gt.", "torch.") == repr(tc)
    x = np.random.default_rng(7).standard_normal((6, 3, 8, 8)).astype(np.float32) * 2
    t_hidden, g_hidden = [], []
    tc.fc.register_forward_hook(lambda m, i, o: t_hidden.append(o))
    gc.fc.register_forward_hook(lambda m, i, o: g_hidden.append(o))
    want, got = tc(torch.from_numpy(x)), gc(gt.tensor(x))
    assert np.array_equal(g_hidden[0].int_repr().numpy(), t_hidden[0].int_repr().numpy())
    assert np.array_equal(got.numpy(), want.numpy())
    buffer = io.BytesIO()
    gt.save(gc.state_dict(), buffer)
    buffer.seek(0)
    fresh = gq.convert(gp)
    other = copy.deepcopy(fresh)
    fresh.load_state_dict(gt.load(buffer))       # gt's own file
    assert np.array_equal(fresh(gt.tensor(x)).numpy(), want.numpy())
    other.load_state_dict(tc.state_dict())       # torch's quantized state dict
    assert np.array_equal(other(gt.tensor(x)).numpy(), want.numpy())


def test_quant_wrapper_and_quantize_are_torch_s():
    # weights and inputs of a few bits: the float forwards that calibrate are exact in any summation order
    rng = np.random.default_rng(10)
    t = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(inplace=True), torch.nn.Linear(5, 3))
    with torch.no_grad():
        for p in t.parameters():
            p.copy_(torch.from_numpy(rng.integers(-8, 8, size=tuple(p.shape)) / 16.0))
    g = gt.nn.Sequential(gt.nn.Linear(6, 5), gt.nn.ReLU(inplace=True), gt.nn.Linear(5, 3))
    g.load_state_dict(t.state_dict())
    t, g = tq.QuantWrapper(t), gq.QuantWrapper(g)
    t.qconfig, g.qconfig = tq.get_default_qconfig("fbgemm"), gq.get_default_qconfig("fbgemm")
    x = (rng.integers(-16, 16, size=(16, 6)) / 8.0).astype(np.float32)
    tc = tq.quantize(t, lambda m, x: m(x), [torch.from_numpy(x)])
    gc = gq.quantize(g, lambda m, x: m(x), [gt.tensor(x)])
    assert repr(gc).replace("gt.", "torch.") == repr(tc)
    assert np.array_equal(gc(gt.tensor(x)).numpy(), tc(torch.from_numpy(x)).numpy())


def test_quantized_pooling_is_torch_s():
    # torch's quantized convolutions output channels-last tensors: its pooling kernels' path for them
    rng = np.random.default_rng(12)
    for trial in range(12):
        h, w = (int(v) for v in rng.integers(1, 9, size=2))
        out = (int(rng.integers(1, h + 2)), int(rng.integers(1, w + 2)))
        x = _torch_q(rng.integers(0, 256, size=(2, 5, h, w)).astype(np.uint8), 0.1, int(rng.integers(0, 256)))
        x = x.contiguous(memory_format=torch.channels_last)
        want = torch.nn.functional.adaptive_avg_pool2d(x, out)
        got = gt.nn.AdaptiveAvgPool2d(out)(as_quantized(x))
        assert np.array_equal(got.int_repr().numpy(), want.int_repr().numpy()), trial
        assert (got.q_scale(), got.q_zero_point()) == (want.q_scale(), want.q_zero_point())
        if min(h, w) >= 2:
            want = torch.nn.functional.max_pool2d(x, 2, 1, 1)
            assert np.array_equal(gt.nn.functional.max_pool2d(as_quantized(x), 2, 1, 1).int_repr().numpy(),
                                  want.int_repr().numpy())


def test_misuse_raises_clear_errors():
    model = gt.nn.Sequential(gt.nn.Conv2d(3, 4, 3), gt.nn.MultiheadAttention(4, 2)).eval()
    model.qconfig = gq.default_qconfig
    prepared = gq.prepare(model)
    prepared[0](gt.randn(2, 3, 5, 5))
    with pytest.raises(NotImplementedError, match="no statically quantized MultiheadAttention"):
        gq.convert(prepared)
    with pytest.raises(AssertionError, match="Fusion only for eval"):       # torch's (fuse_modules_qat keeps them)
        gq.fuse_modules(gt.nn.Sequential(gt.nn.Conv2d(3, 4, 3), gt.nn.BatchNorm2d(4)), ["0", "1"])
    with pytest.raises(NotImplementedError, match="Cannot fuse modules"):
        gq.fuse_modules(gt.nn.Sequential(gt.nn.ReLU(), gt.nn.Linear(3, 4)).eval(), ["0", "1"])
    layer = gt.ao.nn.quantized.Linear(3, 4)
    with pytest.raises(RuntimeError, match="expected a quantized input"):
        layer(gt.randn(2, 3))
    with pytest.raises(ValueError, match="observer instance"):
        gq.QConfig(gq.MinMaxObserver(), gq.default_weight_observer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="None of the submodule got qconfig"):
            gq.prepare(gt.nn.Linear(2, 2))


def test_quantized_embedding_bag_sums_are_torch_s():
    rng = np.random.default_rng(9)
    for trial, (mode, last) in enumerate([("sum", False), ("mean", False), ("sum", True), ("max", False)]):
        t = torch.nn.EmbeddingBag(20, 12, mode=mode, include_last_offset=last)
        with torch.no_grad():
            t.weight.normal_(0, float(rng.uniform(0.1, 3)))
        g = gt.nn.EmbeddingBag(20, 12, mode=mode, include_last_offset=last)
        g.load_state_dict(t.state_dict())
        tq_, gq_ = (q.quantize_dynamic(gt.nn.Sequential(m) if q is gq else torch.nn.Sequential(m),
                                       {type(m)}, dtype=getattr(lib, "quint8"))[0]
                    for q, m, lib in ((tq, t, torch), (gq, g, gt)))
        assert repr(gq_).replace("gt.", "torch.") == repr(tq_)
        assert sorted(gq_.state_dict()) == sorted(tq_.state_dict())
        indices = rng.integers(0, 20, size=30)
        starts = np.sort(rng.choice(np.arange(1, 30), 5, replace=False))
        offsets = np.concatenate([[0], starts, [30] * last]).astype(int)
        weights = rng.normal(size=30).astype(np.float32) if mode == "sum" else None
        kw = {} if weights is None else {"per_sample_weights": weights}
        want = tq_(torch.from_numpy(indices), torch.from_numpy(offsets),
                   **{k: torch.from_numpy(v) for k, v in kw.items()}).numpy()
        got = gq_(gt.tensor(indices), gt.tensor(offsets), **{k: gt.tensor(v) for k, v in kw.items()})
        assert np.array_equal(got.numpy(), want), trial      # torch sums a "mean" or "max" bag too
    want = tq_(torch.from_numpy(indices[:24].reshape(4, 6))).numpy()       # 2-d indices: a bag per row
    assert np.array_equal(gq_(gt.tensor(indices[:24].reshape(4, 6))).numpy(), want)
    fresh = gq.quantize_dynamic(gt.nn.Sequential(gt.nn.EmbeddingBag(20, 12)), dtype=gt.quint8)[0]
    fresh.load_state_dict(tq_.state_dict())
    assert np.array_equal(fresh(gt.tensor(indices[:24].reshape(4, 6))).numpy(), want)
