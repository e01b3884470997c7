"""Eager-mode quantization-aware training (gt/ao) beside torch 2.13: the fake quantizers
(FakeQuantize, FusedMovingAvgObsFakeQuantize: values, straight-through gradients, scales and zero
points bit for bit, switches, reprs, state dicts), get_default_qat_qconfig, and a small CNN taken
through fuse_modules_qat, prepare_qat, SGD steps on the same batches and convert: its fake-quantized
outputs and fake quantizers' parameters bit for bit at each step, its gradients to float32 rounding,
and the converted model's integers bit for bit."""

import numpy as np
import pytest

import gt
import gt.ao.quantization as gq
from helpers import fbgemm_engine, torch_or_skip  # noqa: F401 (a fixture)

torch = torch_or_skip()
tq = torch.ao.quantization
pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated"),
              pytest.mark.filterwarnings("ignore:Please use quant_min and quant_max"),
              pytest.mark.filterwarnings("ignore:_aminmax is deprecated"), pytest.mark.usefixtures("fbgemm_engine")]

_FAKE_QUANTS = ["default_fake_quant", "default_weight_fake_quant", "default_per_channel_weight_fake_quant",
                "default_fused_act_fake_quant", "default_fused_wt_fake_quant",
                "default_fused_per_channel_wt_fake_quant", "default_histogram_fake_quant", "default_dynamic_fake_quant"]


def _np(t):
    if isinstance(t, torch.Tensor):     # a copy: .numpy() of a buffer would pin its storage (no resize_ then)
        return t.detach().clone().numpy()
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _same(a, b, what):
    a, b = _np(a), _np(b)
    assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b), (what, a, b)


def _to_gt(state):
    return {k: gt.tensor(_np(v)) for k, v in state.items()}


@pytest.mark.parametrize("name", _FAKE_QUANTS)
def test_fake_quantizers_values_gradients_and_parameters_are_torch_s(name):
    rng = np.random.default_rng(_FAKE_QUANTS.index(name))
    t, g = getattr(tq, name)(), getattr(gq, name)()
    assert repr(g) == repr(t).replace("torch.", "gt.")
    for call in range(9):
        spread, shift = rng.uniform(1e-3, 10), rng.uniform(-3, 3)
        x = (rng.standard_normal((4, 3, 2, 2) if call % 2 else (4, 6)) * spread + shift).astype(np.float32)
        x = np.abs(x) if call == 1 else -np.abs(x) if call == 2 else x * 1e-6 if call == 3 else x
        for m in (t, g):
            if call == 4:
                m.disable_observer()
            if call == 6:
                m.disable_fake_quant()
            if call == 7:
                m.enable_observer(), m.enable_fake_quant()
        tx, gx = torch.tensor(x, requires_grad=True), gt.tensor(x, requires_grad=True)
        ty, gy = t(tx), g(gx)
        _same(ty, gy, (call, "values"))
        w = rng.standard_normal(x.shape).astype(np.float32)
        (ty * torch.tensor(w)).sum().backward()
        (gy * gt.tensor(w)).sum().backward()
        _same(tx.grad, gx.grad, (call, "straight-through gradient"))
        for key, value in t.state_dict().items():
            _same(value, g.state_dict()[key], (call, key))
        for a, b in zip(t.calculate_qparams(), g.calculate_qparams()):
            _same(a, b, (call, "calculate_qparams"))
    assert list(g.state_dict()) == list(t.state_dict())
    assert repr(g) == repr(t).replace("torch.", "gt.")
    fresh = getattr(gq, name)()     # a per-channel state dict loads into fresh (1,) and (0,) buffers
    fresh.load_state_dict(_to_gt(t.state_dict()))
    _same(fresh(gt.tensor(x)), t(torch.tensor(x)), "loaded")


@pytest.mark.parametrize("backend", ["x86", "fbgemm", "qnnpack", "onednn"])
def test_get_default_qat_qconfig_is_torch_s(backend):
    for version in (0, 1):
        tc, gc = tq.get_default_qat_qconfig(backend, version), gq.get_default_qat_qconfig(backend, version)
        for part in ("activation", "weight"):
            assert repr(getattr(gc, part)()) == repr(getattr(tc, part)()).replace("torch.", "gt."), (version, part)
    for bad in ({"backend": "arm"}, {"version": 2}):
        with pytest.raises(AssertionError):
            tq.get_default_qat_qconfig(**bad)
        with pytest.raises(AssertionError):
            gq.get_default_qat_qconfig(**bad)


def test_reduce_range_halves_a_custom_range_as_torch_s():
    x = np.random.default_rng(0).standard_normal(50).astype(np.float32)
    for kwargs in ({"quant_min": 0, "quant_max": 255}, {"dtype": "qint8", "quant_min": -128, "quant_max": 127}):
        t = tq.MinMaxObserver(reduce_range=True, **{k: getattr(torch, v) if k == "dtype" else v
                                                    for k, v in kwargs.items()})
        g = gq.MinMaxObserver(reduce_range=True, **kwargs)
        assert (g.quant_min, g.quant_max) == (t.quant_min, t.quant_max)
        t(torch.tensor(x)), g(gt.tensor(x))
        for a, b in zip(t.calculate_qparams(), g.calculate_qparams()):
            _same(a, b, kwargs)


def _net(m, q):
    class Net(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = q.QuantStub()
            self.conv1, self.bn1, self.relu1 = m.nn.Conv2d(3, 4, 3, padding=1), m.nn.BatchNorm2d(4), m.nn.ReLU()
            self.conv2, self.relu2 = m.nn.Conv2d(4, 4, 3), m.nn.ReLU()
            self.conv3 = m.nn.Conv2d(4, 2, 1, bias=False)
            self.fc1, self.relu3 = m.nn.Linear(2 * 4 * 4, 8), m.nn.ReLU()
            self.fc2 = m.nn.Linear(8, 5)
            self.dequant = q.DeQuantStub()

        def forward(self, x):
            x = self.conv3(self.relu2(self.conv2(self.relu1(self.bn1(self.conv1(self.quant(x)))))))
            return self.dequant(self.fc2(self.relu3(self.fc1(x.reshape(x.shape[0], -1)))))
    return Net()


_FUSE = [["conv1", "bn1", "relu1"], ["conv2", "relu2"], ["fc1", "relu3"]]


def _qat_pair(backend):
    tm, gm = _net(torch, tq), _net(gt, gq)
    gm.load_state_dict(_to_gt(tm.state_dict()))
    pair = []
    for m, q in ((tm, tq), (gm, gq)):
        m.train()
        m.qconfig = q.get_default_qat_qconfig(backend)
        pair.append(q.prepare_qat(q.fuse_modules_qat(m, _FUSE)))
    return pair


def _train_in_lockstep(tm, gm, x_shape, out_features, steps=3):
    """SGD steps on the same batches, gt's model loaded with torch's state before each: the outputs,
    fake quantizers' parameters and observers' statistics, and gradients compared at each step."""
    assert list(gm.state_dict()) == list(tm.state_dict())
    assert [type(m).__name__ for m in gm.modules()] == [type(m).__name__ for m in tm.modules()]
    topt, gopt = torch.optim.SGD(tm.parameters(), lr=0.2), gt.optim.SGD(gm.parameters(), lr=0.2)
    rng = np.random.default_rng(1)
    for step in range(steps):
        # the same state each step: every difference below is this step's, not rounding carried over
        gm.load_state_dict(_to_gt(tm.state_dict()))
        x = rng.standard_normal(x_shape).astype(np.float32)
        target = rng.standard_normal((x_shape[0], out_features)).astype(np.float32)
        ty, gy = tm(torch.tensor(x)), gm(gt.tensor(x))
        # the float convolutions' and Linears' sums run in another order: their outputs, and so the
        # activations' observed min/max and scales, may differ in the last bit (never by a step here)
        np.testing.assert_allclose(_np(gy), _np(ty), rtol=1e-6, atol=1e-7)
        tstate, gstate = tm.state_dict(), gm.state_dict()
        for key, value in tstate.items():
            if "weight_fake_quant" in key or key.endswith(("zero_point", "_enabled")):
                _same(value, gstate[key], (step, key))
            else:
                np.testing.assert_allclose(_np(gstate[key]), _np(value), rtol=1e-6, atol=1e-7, err_msg=key)
        topt.zero_grad(), gopt.zero_grad()
        ((ty.reshape(x_shape[0], -1) - torch.tensor(target)) ** 2).mean().backward()
        ((gy.reshape(x_shape[0], -1) - gt.tensor(target)) ** 2).mean().backward()
        # a conv's bias before a training BatchNorm has gradient 0 but for rounding: tolerance from the largest
        largest = max(float(p.grad.abs().max()) for p in tm.parameters())
        for (name, tp), (gname, gp) in zip(tm.named_parameters(), gm.named_parameters()):
            assert name == gname
            np.testing.assert_allclose(_np(gp.grad), _np(tp.grad), rtol=1e-5, atol=1e-6 * largest,
                                       err_msg=f"{step} {name}")
        topt.step(), gopt.step()
    gm.load_state_dict(_to_gt(tm.state_dict()))


def _converted_integers_match(tm, gm, names, x):
    """``convert`` of both trained models: torch's repr, and every named layer's output integers."""
    tc, gc = tq.convert(tm.eval()), gq.convert(gm.eval())
    assert repr(gc).replace("gt.", "torch.") == repr(tc)
    seen = {}
    for name in names:
        for model, side in ((tc, "torch"), (gc, "gt")):
            getattr(model, name).register_forward_hook(lambda mod, i, out, k=(name, side): seen.__setitem__(k, out))
    _same(tc(torch.tensor(x)), gc(gt.tensor(x)), "converted output")
    for name in names:
        t, g = seen[name, "torch"], seen[name, "gt"]
        _same(t.int_repr(), g.int_repr(), name)
        assert (t.q_scale(), t.q_zero_point()) == (g.q_scale(), g.q_zero_point()), name


@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
def test_qat_steps_then_convert_match_torch(backend):
    tm, gm = _qat_pair(backend)
    _train_in_lockstep(tm, gm, (4, 3, 6, 6), 5)
    x = np.random.default_rng(3).standard_normal((3, 3, 6, 6)).astype(np.float32)
    _converted_integers_match(tm, gm, ("quant", "conv1", "conv2", "conv3", "fc1", "fc2"), x)


def test_conv3d_qat_and_conv1d_layer_match_torch():
    models = []
    for m, q in ((torch, tq), (gt, gq)):
        model = m.nn.Sequential(q.QuantStub(), m.nn.Conv3d(2, 3, 2, padding=1), m.nn.ReLU(), m.nn.Conv3d(3, 2, 1),
                                q.DeQuantStub())
        model.qconfig = q.get_default_qat_qconfig("x86")
        models.append(q.fuse_modules_qat(model.train(), ["1", "2"]))
    models[1].load_state_dict(_to_gt(models[0].state_dict()))
    tm, gm = (q.prepare_qat(model) for model, q in zip(models, (tq, gq)))
    assert (type(gm[1]), type(gm[3])) == (gt.ao.nn.intrinsic.qat.ConvReLU3d, gt.ao.nn.qat.Conv3d)
    _train_in_lockstep(tm, gm, (2, 2, 3, 3, 3), 2 * 4 * 4 * 4, steps=2)
    _converted_integers_match(tm, gm, ("0", "1", "3"), np.random.default_rng(4).standard_normal((2, 2, 3, 3, 3))
                              .astype(np.float32))
    layers = []
    for m, q, qat in ((torch, tq, torch.ao.nn.qat), (gt, gq, gt.ao.nn.qat)):
        conv = m.nn.Conv1d(2, 3, 3, padding=1)
        conv.qconfig = q.get_default_qat_qconfig("x86")
        layers.append(qat.Conv1d.from_float(conv))
    layers[1].load_state_dict(_to_gt(layers[0].state_dict()))
    x = np.random.default_rng(5).standard_normal((2, 2, 7)).astype(np.float32)
    np.testing.assert_allclose(_np(layers[1](gt.tensor(x))), _np(layers[0](torch.tensor(x))), rtol=1e-6, atol=1e-6)
    _same(layers[0].weight_fake_quant.scale, layers[1].weight_fake_quant.scale, "Conv1d weight scale")
    assert type(layers[1].to_float()) is gt.nn.Conv1d


def test_switches_bn_freezing_and_errors_are_torch_s():
    tm, gm = _qat_pair("x86")
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 6)).astype(np.float32)
    for m in (tm, gm):
        m.apply(m is tm and tq.disable_fake_quant or gq.disable_fake_quant)
        m.apply(m is tm and torch.ao.nn.intrinsic.qat.freeze_bn_stats or gt.ao.nn.intrinsic.qat.freeze_bn_stats)
    before = gm.conv1.bn.running_mean.numpy().copy()
    ty, gy = tm(torch.tensor(x)), gm(gt.tensor(x))
    np.testing.assert_allclose(_np(gy), _np(ty), rtol=1e-5, atol=1e-6)       # float convolutions: no rounding
    assert np.array_equal(gm.conv1.bn.running_mean.numpy(), before) and not gm.conv1.bn.training
    assert gm.fc2.weight_fake_quant.scale.shape == tm.fc2.weight_fake_quant.scale.shape == (5,)   # torch's unset
    with pytest.raises(AssertionError, match="training mode"):
        gq.prepare_qat(_net(gt, gq).eval())
    with pytest.raises(AssertionError, match="qconfig must be provided"):
        gt.ao.nn.qat.Linear(3, 2)
    with pytest.raises(AssertionError, match="only works for Linear"):
        lin = gt.nn.Conv2d(1, 1, 1)
        lin.qconfig = gq.get_default_qat_qconfig()
        gt.ao.nn.qat.Linear.from_float(lin)
    with pytest.raises(AssertionError, match="Fusion only for eval"):
        gq.fuse_modules(_net(gt, gq).train(), ["conv1", "bn1"])
    float_linear = gt.ao.nn.qat.Linear(3, 2, qconfig=gq.default_qat_qconfig).to_float()
    assert type(float_linear) is gt.nn.Linear
