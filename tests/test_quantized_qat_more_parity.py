"""More of eager-mode quantization-aware training beside torch 2.13: the fixed-parameter fake
quantizers prepare_qat puts after Sigmoid/Tanh/Hardsigmoid/Softmax, _LearnableFakeQuantize (values,
and the gradients of the input, scale and zero point), the QAT Embedding/EmbeddingBag, and the
BatchNorm-folding LinearBn1d and ConvBn1d/3d layers: each trained in lockstep with torch's and
converted."""

import re

import numpy as np
import pytest

import gt
import gt.ao.quantization as gq
from helpers import fbgemm_engine, torch_or_skip  # noqa: F401 (a fixture)
from test_quantized_qat_parity import _np, _same, _to_gt, pytestmark  # noqa: F401 (its warning filters and fixture)

torch = torch_or_skip()
tq = torch.ao.quantization


@pytest.fixture(autouse=True)
def _torch_seeded():
    """torch's modules start from the same random weights at each run (gt's load torch's)."""
    torch.manual_seed(0)


def _lockstep(tm, gm, make_batch, steps=2, lr=0.2):
    """SGD steps on the same batches, gt's model loaded with torch's state before each step: the
    outputs, the state (fake quantizers' parameters bit for bit) and the gradients compared."""
    assert list(gm.state_dict()) == list(tm.state_dict())
    assert [type(m).__name__ for m in gm.modules()] == [type(m).__name__ for m in tm.modules()]
    topt, gopt = torch.optim.SGD(tm.parameters(), lr=lr), gt.optim.SGD(gm.parameters(), lr=lr)
    rng = np.random.default_rng(1)
    for step in range(steps):
        gm.load_state_dict(_to_gt(tm.state_dict()))
        inputs = make_batch(rng)
        ty, gy = tm(*(torch.tensor(x) for x in inputs)), gm(*(gt.tensor(x) for x in inputs))
        np.testing.assert_allclose(_np(gy), _np(ty), rtol=1e-6, atol=1e-6)
        # the float Linears' and convolutions' sums run in another order: an activation's observed
        # range, and so its scale, may differ in the last bit (its zero point not here)
        gstate = gm.state_dict()
        for key, value in tm.state_dict().items():
            if "weight_fake_quant" in key or key.endswith(("zero_point", "_enabled")):
                _same(value, gstate[key], (step, key))
            else:
                np.testing.assert_allclose(_np(gstate[key]), _np(value), rtol=1e-6, atol=1e-7, err_msg=key)
        w = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
        topt.zero_grad(), gopt.zero_grad()
        (ty * torch.tensor(w)).sum().backward()
        (gy * gt.tensor(w)).sum().backward()
        # a training BatchNorm's backward subtracts batch means (float32 sums, in another order): a
        # gradient before it is torch's to float32 rounding of the largest gradient, not of itself
        # (a conv's bias there has gradient 0 but for that rounding)
        largest = max(float(p.grad.abs().max()) for p in tm.parameters() if p.grad is not None)
        for (name, tp), (gname, gp) in zip(tm.named_parameters(), gm.named_parameters()):
            assert name == gname
            np.testing.assert_allclose(_np(gp.grad), _np(tp.grad), rtol=1e-5, atol=2e-5 * largest,
                                       err_msg=f"{step} {name}")
        topt.step(), gopt.step()
    gm.load_state_dict(_to_gt(tm.state_dict()))


# ---- fixed-parameter fake quantizers ------------------------------------------------------------
@pytest.mark.parametrize("name", ["default_fixed_qparams_range_0to1_fake_quant",
                                  "default_fixed_qparams_range_neg1to1_fake_quant"])
def test_fixed_qparams_fake_quant_is_torch_s(name):
    t, g = getattr(tq, name)(), getattr(gq, name)()
    assert repr(g).replace("gt.", "torch.") == repr(t)
    x = np.random.default_rng(0).uniform(-1.5, 1.5, (5, 7)).astype(np.float32)
    for call in range(3):
        if call == 1:
            t.disable_observer(), g.disable_observer()
        if call == 2:
            t.disable_fake_quant(), g.disable_fake_quant()
        tx, gx = torch.tensor(x, requires_grad=True), gt.tensor(x, requires_grad=True)
        ty, gy = t(tx), g(gx)
        _same(ty, gy, (call, "values"))
        ty.sum().backward(), gy.sum().backward()
        _same(tx.grad, gx.grad, (call, "gradient"))
        for key, value in t.state_dict().items():
            _same(value, g.state_dict()[key], (call, key))
        for a, b in zip(t.calculate_qparams(), g.calculate_qparams()):
            _same(a, b, "calculate_qparams")
    assert g.scale is g.activation_post_process.scale
    with pytest.raises(AssertionError, match="must be a FixedQParamsObserver"):
        gq.FixedQParamsFakeQuantize(gq.MinMaxObserver)
    with pytest.raises(NotImplementedError, match="dynamic"):
        gq.FixedQParamsObserver(0.1, 0, is_dynamic=True)


def _activations_net(m, q):
    return m.nn.Sequential(q.QuantStub(), m.nn.Linear(4, 6), m.nn.Sigmoid(), m.nn.Linear(6, 6), m.nn.Tanh(),
                           m.nn.Linear(6, 6), m.nn.Hardsigmoid(), m.nn.Linear(6, 5), m.nn.Softmax(dim=1),
                           q.DeQuantStub(), m.nn.Sigmoid())


def test_prepare_qat_puts_fixed_qparams_after_bounded_activations_as_torch():
    tm, gm = _activations_net(torch, tq), _activations_net(gt, gq)
    gm.load_state_dict(_to_gt(tm.state_dict()))
    for m, q in ((tm, tq), (gm, gq)):
        m.qconfig = q.get_default_qat_qconfig("x86")
    tp, gp = tq.prepare_qat(tm.train()), gq.prepare_qat(gm.train())
    assert type(gp[2].activation_post_process) is gq.FixedQParamsFakeQuantize
    _lockstep(tp, gp, lambda rng: [rng.standard_normal((8, 4)).astype(np.float32) * 3])
    tc, gc = tq.convert(tp.eval()), gq.convert(gp.eval())
    assert [type(m).__name__ for m in gc.children()] == [type(m).__name__ for m in tc.children()]
    assert not hasattr(gc[2], "activation_post_process") and not gc[2]._forward_hooks
    # Sigmoid, Tanh and Hardsigmoid between quantized layers run on their quint8 outputs once converted
    # (torch's kernels, with their fixed output parameters)
    pair = [m.nn.Sequential(q.QuantStub(), m.nn.Linear(4, 6), m.nn.Sigmoid(), m.nn.Linear(6, 5), m.nn.Tanh(),
                            m.nn.Linear(5, 6), m.nn.Hardsigmoid(), m.nn.Linear(6, 3), q.DeQuantStub())
            for m, q in ((torch, tq), (gt, gq))]
    pair[1].load_state_dict(_to_gt(pair[0].state_dict()))
    x = np.random.default_rng(12).standard_normal((70, 4)).astype(np.float32) * 3     # a vectorised head and a tail
    converted = []
    for model, m, q in ((pair[0], torch, tq), (pair[1], gt, gq)):
        model.qconfig = q.get_default_qat_qconfig("x86")
        prepared = q.prepare_qat(model.train())
        prepared(m.tensor(x))
        converted.append(q.convert(prepared.eval()))
    assert [type(converted[1][i]) for i in (2, 4, 6)] == [gt.nn.Sigmoid, gt.nn.Tanh, gt.nn.Hardsigmoid]
    assert all(converted[1][i]._forward_hooks == {} for i in (2, 4, 6))
    _same(converted[0](torch.tensor(x)), converted[1](gt.tensor(x)), "converted output through the activations")
    for i in (3, 5, 7):         # each activation's output quint8 integers and parameters, as torch's
        t_in, g_in = converted[0][:i](torch.tensor(x)), converted[1][:i](gt.tensor(x))
        assert np.array_equal(g_in.int_repr().numpy(), t_in.int_repr().numpy()), i
        assert (g_in.q_scale(), g_in.q_zero_point()) == (t_in.q_scale(), t_in.q_zero_point()), i
    evaluated = _activations_net(gt, gq).eval()
    evaluated.qconfig = gq.default_qconfig
    evaluated = gq.prepare(evaluated)      # eval mode: no special case (torch's)
    assert type(evaluated[1].activation_post_process) is gq.MinMaxObserver
    assert not hasattr(evaluated[2], "activation_post_process")


# ---- learnable fake quantization -----------------------------------------------------------------
def _learnable_call(fn, x, scale, zero_point, w, *args):
    """(values, x's gradient, scale's, zero point's) of ``fn`` on torch's or gt's tensors."""
    lib = torch if fn is getattr(torch, fn.__name__, None) else gt
    tx, ts, tz = (lib.tensor(v, requires_grad=True) for v in (x, scale, zero_point))
    y = fn(tx, ts, tz, *args)
    (y * lib.tensor(w)).sum().backward()
    return y, tx.grad, ts.grad, tz.grad


def test_learnable_fake_quantize_functions_values_and_gradients_are_torch_s():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((40, 1)) * 3).astype(np.float32)
    x[::4] = np.round(x[::4] / 0.1) * np.float32(0.1)       # on the grid: rounding ties of x / scale
    w = rng.standard_normal(x.shape).astype(np.float32)
    # one channel per element: torch's per-element gradient terms, no sum, compared bit for bit
    scale = rng.uniform(0.01, 0.3, 40).astype(np.float32)
    scale[::4] = 0.1
    zero_point = rng.uniform(-5, 70, 40).astype(np.float32)
    zero_point[1::5] = np.floor(zero_point[1::5]) + 0.5     # half-way zero points: rounded to even
    for gf in (1.0, 0.37):
        t = _learnable_call(torch._fake_quantize_learnable_per_channel_affine, x, scale, zero_point, w, 0, 0, 63, gf)
        g = _learnable_call(gt._fake_quantize_learnable_per_channel_affine, x, scale, zero_point, w, 0, 0, 63, gf)
        for a, b, what in zip(t, g, ("values", "x", "scale", "zero_point")):
            _same(a, b, (gf, "per channel", what))
    for zp in (2.5, 3.5, -0.7, 10.2, 63.4, 130.0):       # per tensor: forward round(zp), backward trunc(zp + 0.5)
        for gf in (1.0, 0.37):
            args = (x.reshape(8, 5), np.float32([0.05]), np.float32([zp]), w.reshape(8, 5), 0, 63, gf)
            t = _learnable_call(torch._fake_quantize_learnable_per_tensor_affine, *args)
            g = _learnable_call(gt._fake_quantize_learnable_per_tensor_affine, *args)
            _same(t[0], g[0], (zp, gf, "values"))
            _same(t[1], g[1], (zp, gf, "x's gradient"))
            for a, b in zip(t[2:], g[2:]):      # sums of 40 terms, in another order
                np.testing.assert_allclose(_np(b), _np(a), rtol=1e-5, atol=1e-6, err_msg=f"{zp} {gf}")


def _learnable_pair(per_channel):
    from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize as TorchLearnable
    from gt.ao._learnable_fake_quantize import _LearnableFakeQuantize as GtLearnable
    if not per_channel:
        return TorchLearnable(tq.MovingAverageMinMaxObserver), GtLearnable(gq.MovingAverageMinMaxObserver)
    pair = []
    for cls, lib, q in ((TorchLearnable, torch, tq), (GtLearnable, gt, gq)):
        pair.append(cls(q.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127, dtype=lib.qint8,
                        qscheme=lib.per_channel_symmetric, channel_len=3, use_grad_scaling=True, ch_axis=1))
    return pair


@pytest.mark.parametrize("per_channel", [False, True])
def test_learnable_fake_quantize_module_learns_as_torch_s(per_channel):
    t, g = _learnable_pair(per_channel)
    assert re.sub(r"  # \d+ parameters?", "", repr(g)).replace("gt.", "torch.") == repr(t)
    assert list(g.state_dict()) == list(t.state_dict()) and g.bitwidth == t.bitwidth
    topt, gopt = torch.optim.SGD([t.scale, t.zero_point], lr=0.01), gt.optim.SGD([g.scale, g.zero_point], lr=0.01)
    rng = np.random.default_rng(4)
    for step in range(5):
        if step == 2:
            t.enable_param_learning(), g.enable_param_learning()
        if step == 4:
            t.enable_static_observation(), g.enable_static_observation()
        g.load_state_dict(_to_gt(t.state_dict()))
        x = (rng.standard_normal((4, 3, 2)) * 2).astype(np.float32)
        w = rng.standard_normal(x.shape).astype(np.float32)
        topt.zero_grad(), gopt.zero_grad()
        ty, tdx, tds, tdz = _learnable_module_call(t, torch, x, w)
        gy, gdx, gds, gdz = _learnable_module_call(g, gt, x, w)
        _same(ty, gy, (step, "values"))
        _same(tdx, gdx, (step, "x's gradient"))
        for a, b in ((tds, gds), (tdz, gdz)):       # none once learning is off (step 4)
            assert (a is None) == (b is None) == (step == 4)
            if a is not None:
                np.testing.assert_allclose(_np(b), _np(a), rtol=1e-5, atol=1e-7, err_msg=str(step))
        for key, value in t.state_dict().items():
            _same(value, g.state_dict()[key], (step, key))
        assert g.scale.requires_grad == t.scale.requires_grad
        topt.step(), gopt.step()
    for a, b in zip(t.calculate_qparams(), g.calculate_qparams()):
        _same(a, b, "calculate_qparams")
    with pytest.raises(AssertionError, match="strictly less"):
        type(g)(gq.MovingAverageMinMaxObserver, quant_min=5, quant_max=5)
    with pytest.raises(AssertionError, match="positive integer"):
        type(g)(gq.MovingAverageMinMaxObserver, channel_len=0)


def _learnable_module_call(module, lib, x, w):
    tx = lib.tensor(x, requires_grad=True)
    y = module(tx)
    (y * lib.tensor(w)).sum().backward()
    return y, tx.grad, module.scale.grad, module.zero_point.grad


# ---- QAT embeddings ------------------------------------------------------------------------------
def _embedding_net(m, q):
    class Net(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = m.nn.Embedding(10, 4)
            self.bag = m.nn.EmbeddingBag(12, 4, mode="sum")
            self.emb.qconfig = self.bag.qconfig = q.default_embedding_qat_qconfig
            self.quant, self.linear, self.dequant = q.QuantStub(), m.nn.Linear(8, 3), q.DeQuantStub()

        def forward(self, ids, bag_ids, offsets):
            x = m.cat([self.emb(ids).sum(1), self.bag(bag_ids, offsets)], 1)
            return self.dequant(self.linear(self.quant(x)))
    net = Net()
    with (torch.no_grad() if m is torch else gt.no_grad()):
        net.emb.weight[3] = net.emb.weight[3].abs() + 1     # a row all positive: its zero point below 0
    return net


def _embedding_batch(rng):
    return [rng.integers(0, 10, (5, 3)), rng.integers(0, 12, 9), np.array([0, 2, 2, 5, 8])]


def test_qat_embeddings_train_and_convert_as_torch_s():
    tm, gm = _embedding_net(torch, tq), _embedding_net(gt, gq)
    gm.load_state_dict(_to_gt(tm.state_dict()))
    pair = []
    for m, q in ((tm, tq), (gm, gq)):
        m.qconfig = q.get_default_qat_qconfig("qnnpack")
        pair.append(q.prepare_qat(m.train(), mapping=q.get_embedding_qat_module_mappings()))
    tp, gp = pair
    assert type(gp.bag) is gt.ao.nn.qat.EmbeddingBag and type(gp.emb.activation_post_process) is gq.NoopObserver
    _lockstep(tp, gp, _embedding_batch)
    tc = tq.convert(tp.eval(), mapping=tq.get_embedding_static_quant_module_mappings())
    gc = gq.convert(gp.eval(), mapping=gq.get_embedding_static_quant_module_mappings())
    assert [type(m).__name__ for m in gc.children()] == [type(m).__name__ for m in tc.children()]
    for name in ("emb", "bag"):
        tw, gw = getattr(tc, name).weight(), getattr(gc, name).weight()
        _same(tw.int_repr(), gw.int_repr(), name)
        _same(tw.q_per_channel_scales(), gw.q_per_channel_scales(), name)
        _same(tw.q_per_channel_zero_points(), gw.q_per_channel_zero_points(), name)
    inputs = _embedding_batch(np.random.default_rng(7))
    _same(tc(*(torch.tensor(x) for x in inputs)), gc(*(gt.tensor(x) for x in inputs)), "converted output")
    assert type(gp.emb.to_float()) is gt.nn.Embedding and type(gp.bag.to_float()) is gt.nn.EmbeddingBag
    bad = gt.nn.Embedding(3, 2)
    bad.qconfig = gq.get_default_qat_qconfig()
    with pytest.raises(AssertionError, match="per_channel_affine_float_qparams"):
        gt.ao.nn.qat.Embedding.from_float(bad)
    with pytest.raises(AssertionError, match="qconfig must be provided"):
        gt.ao.nn.qat.EmbeddingBag(3, 2)


def test_embedding_fake_quant_with_float_zero_points_is_torch_s():
    t, g = tq.default_embedding_fake_quant(), gq.default_embedding_fake_quant()
    assert repr(g).replace("gt.", "torch.") == repr(t)
    rng = np.random.default_rng(8)
    w = (rng.standard_normal((6, 5)) + np.array([[0], [3], [-4], [0], [0], [0]])).astype(np.float32)
    w[4] = 1.5                                                # a constant row: scale 1
    tx, gx = torch.tensor(w, requires_grad=True), gt.tensor(w, requires_grad=True)
    ty, gy = t(tx), g(gx)
    _same(ty, gy, "values")
    ty.sum().backward(), gy.sum().backward()
    _same(tx.grad, gx.grad, "gradient")
    for key, value in t.state_dict().items():
        _same(value, g.state_dict()[key], key)
    # on the rounding ties of x / scale + zero point (torch rounds their fused sum once)
    scale, zero_point = rng.uniform(0.01, 0.3, 64).astype(np.float32), rng.uniform(-3, 60, 64).astype(np.float32)
    k = rng.integers(0, 63, 64)
    x = ((k + 0.5 - zero_point.astype(np.float64)) * scale).astype(np.float32).reshape(64, 1)
    args = (0, 0, 63)
    _same(torch.fake_quantize_per_channel_affine(torch.tensor(x), torch.tensor(scale), torch.tensor(zero_point), *args),
          gt.fake_quantize_per_channel_affine(gt.tensor(x), gt.tensor(scale), gt.tensor(zero_point), *args), "ties")


# ---- BatchNorm folding: ConvBn1d/3d, ConvBnReLU1d/3d, LinearBn1d ----------------------------------
def _bn_net(m, q, dims):
    conv, bn = getattr(m.nn, f"Conv{dims}d"), getattr(m.nn, f"BatchNorm{dims}d")
    layers = [q.QuantStub(), conv(2, 3, 3 if dims == 1 else 2, padding=1), bn(3), m.nn.ReLU(),
              conv(3, 2, 1, bias=False), bn(2)]
    if dims == 1:
        layers += [m.nn.Flatten(), m.nn.Linear(2 * 6, 4), m.nn.BatchNorm1d(4)]
    return m.nn.Sequential(*layers, q.DeQuantStub())


@pytest.mark.parametrize("dims", [1, 3])
def test_conv_bn_and_linear_bn_qat_train_and_convert_as_torch_s(dims):
    groups = [["1", "2", "3"], ["4", "5"]] + ([["7", "8"]] if dims == 1 else [])
    tm, gm = _bn_net(torch, tq, dims), _bn_net(gt, gq, dims)
    gm.load_state_dict(_to_gt(tm.state_dict()))
    pair = []
    for m, q in ((tm, tq), (gm, gq)):
        m.qconfig = q.get_default_qat_qconfig("x86")
        pair.append(q.prepare_qat(q.fuse_modules_qat(m.train(), groups)))
    tp, gp = pair
    qat = gt.ao.nn.intrinsic.qat
    expected = [qat.ConvBnReLU1d, qat.ConvBn1d] if dims == 1 else [qat.ConvBnReLU3d, qat.ConvBn3d]
    assert [type(gp[1]), type(gp[4])] == expected and (dims == 3 or type(gp[7]) is qat.LinearBn1d)
    shape = (4, 2, 6) if dims == 1 else (2, 2, 3, 3, 3)
    _lockstep(tp, gp, lambda rng: [rng.standard_normal(shape).astype(np.float32)])
    for m in (tp, gp):
        m.apply(m is tp and torch.ao.nn.intrinsic.qat.freeze_bn_stats or qat.freeze_bn_stats)
    assert not gp[4].bn.training and (dims == 3 or gp[7].bn.training)      # torch's: LinearBn1d not frozen
    tc, gc = tq.convert(tp.eval()), gq.convert(gp.eval())
    assert [type(m).__name__ for m in gc.children()] == [type(m).__name__ for m in tc.children()]
    for i in (1, 4, 7)[:3 if dims == 1 else 2]:
        _same(tc[i].weight().int_repr(), gc[i].weight().int_repr(), i)
        assert (tc[i].scale, tc[i].zero_point) == (gc[i].scale, gc[i].zero_point), i
    x = np.random.default_rng(9).standard_normal(shape).astype(np.float32)
    _same(tc(torch.tensor(x)), gc(gt.tensor(x)), "converted output")
    if dims == 1:
        folded_t, folded_g = tp[7].to_float(), gp[7].to_float()
        np.testing.assert_allclose(_np(folded_g.weight), _np(folded_t.weight), rtol=1e-6, atol=1e-7)


def test_conv_relu1d_qat_and_fusion_errors_are_torch_s():
    layers = []
    for m, q, iqat in ((torch, tq, torch.ao.nn.intrinsic.qat), (gt, gq, gt.ao.nn.intrinsic.qat)):
        fused = m.ao.nn.intrinsic.ConvReLU1d(m.nn.Conv1d(2, 3, 3, padding=1), m.nn.ReLU())
        fused.qconfig = fused[0].qconfig = q.get_default_qat_qconfig("x86")     # as propagate_qconfig_ gives
        layers.append(iqat.ConvReLU1d.from_float(fused))
    layers[1].load_state_dict(_to_gt(layers[0].state_dict()))
    x = np.random.default_rng(10).standard_normal((2, 2, 7)).astype(np.float32)
    np.testing.assert_allclose(_np(layers[1](gt.tensor(x))), _np(layers[0](torch.tensor(x))), rtol=1e-6, atol=1e-6)
    _same(layers[0].weight_fake_quant.scale, layers[1].weight_fake_quant.scale, "ConvReLU1d weight scale")
    with pytest.raises(AssertionError, match="Output features of Linear"):
        gq.fuse_modules_qat(gt.nn.Sequential(gt.nn.Linear(3, 4), gt.nn.BatchNorm1d(5)), ["0", "1"])
    with pytest.raises(AssertionError, match="affine"):
        gq.fuse_modules_qat(gt.nn.Sequential(gt.nn.Conv3d(1, 2, 1), gt.nn.BatchNorm3d(2, affine=False)), ["0", "1"])
    with pytest.raises(AssertionError, match="same mode"):
        gq.fuse_modules_qat(gt.nn.Sequential(gt.nn.Linear(3, 4), gt.nn.BatchNorm1d(4).eval()), ["0", "1"])


def test_memoryless_activation_fake_quant_runs_before_the_layer_as_torch_s():
    """torch's prepare: an activation observer with averaging_constant 1 is a forward pre-hook (it
    fake-quantizes the layer's input, not its output)."""
    tm = torch.nn.Sequential(tq.QuantStub(), torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2),
                             tq.DeQuantStub())
    gm = gt.nn.Sequential(gq.QuantStub(), gt.nn.Linear(4, 3), gt.nn.ReLU(), gt.nn.Linear(3, 2), gq.DeQuantStub())
    gm.load_state_dict(_to_gt(tm.state_dict()))
    pair = []
    for m, q in ((tm, tq), (gm, gq)):
        m.qconfig = q.QConfig(activation=q.default_dynamic_fake_quant, weight=q.default_weight_fake_quant)
        pair.append(q.prepare_qat(m.train()))
    tp, gp = pair
    assert len(gp[1]._forward_pre_hooks) == 1 and not gp[1]._forward_hooks
    _lockstep(tp, gp, lambda rng: [(rng.standard_normal((6, 4)) * 3).astype(np.float32)])
    tc, gc = tq.convert(tp.eval()), gq.convert(gp.eval())
    assert not gc[1]._forward_pre_hooks and not hasattr(gc[1], "activation_post_process")
    x = np.random.default_rng(11).standard_normal((5, 4)).astype(np.float32)
    _same(tc(torch.tensor(x)), gc(gt.tensor(x)), "converted output")
