"""gt/ao beside torch 2.13: ``quantize_dynamic`` of an ``LSTM(proj_size>0)`` (torch's layer without its
projection, whose forward raises fbgemm's error), ConvTranspose1d/2d/3d + BatchNorm fusion, the dynamic
layers' biases requiring grad as torch's (and ``quantize_dynamic`` inside a ``gt.func`` transform), the QAT
dynamic ``Linear`` (``prepare_qat``, training in lockstep, ``convert``), and torch's version-1 recurrent
layers (cells without reduce_range: 8-bit inputs), loaded and run as torch does. Quantized answers depend
on no GT_* variable but the engine (``own_mesh``); structure and errors on none (``first_pass``)."""

import re
import warnings

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

torch = torch_or_skip()
pytestmark = [pytest.mark.own_mesh, pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated"),
              pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")]
_EXACT = gt.backend.B.name == "torch"


def _same(got, want):
    """torch's bits on the torch engine; float32 rounding on numpy (its sigmoid and tanh differ in the last bit)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    if _EXACT:
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=3e-7)


def _copy(tm, gm):
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, gm


def _repr(m):
    return re.sub(r"  # [\d,]+ parameters", "", repr(m)).replace("gt.", "torch.")


def _error(call):
    """torch's error of ``call(torch)``, and gt's of ``call(gt)``: the same type and text."""
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(type(want.value), match=f"^{re.escape(str(want.value))}$"):
        call(gt)


@pytest.mark.first_pass
@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_lstm_with_projections_quantizes_as_torch_s_and_its_forward_raises_torch_s_error(dtype):
    # torch's from_float drops weight_hr and keeps the (4*hidden, proj) weight_hh, which fbgemm then refuses
    for layers, both in ((1, False), (2, True)):
        tm, gm = _copy(*(lib.nn.Sequential(lib.nn.LSTM(4, 6, layers, proj_size=3, bidirectional=both))
                         for lib in (torch, gt)))
        tq = torch.ao.quantization.quantize_dynamic(tm, {torch.nn.LSTM}, dtype=getattr(torch, dtype))
        gq = gt.ao.quantization.quantize_dynamic(gm, {gt.nn.LSTM}, dtype=getattr(gt, dtype))
        assert _repr(gq) == repr(tq)
        for (name, g), (tname, t) in zip(sorted(gq[0].get_weight().items()), sorted(tq[0].get_weight().items())):
            assert name == tname and tuple(g.shape) == tuple(t.shape)
            if dtype == "qint8":
                np.testing.assert_array_equal(g.int_repr().numpy(), t.int_repr().numpy())
        tsd = tq.state_dict()
        assert list(gq.state_dict()) == list(tsd) and dict(gq.state_dict()._metadata) == dict(tsd._metadata)
        gq.load_state_dict(tsd)
        n = layers * (2 if both else 1)
        x = np.ones((5, 2, 4), np.float32)
        for hx in (None, (np.zeros((n, 2, 3), np.float32),) * 2, (np.zeros((n, 2, 6), np.float32),) * 2):
            _error(lambda lib: (tq if lib is torch else gq)(
                lib.tensor(x), None if hx is None else tuple(lib.tensor(h) for h in hx)))
        _error(lambda lib: (tq if lib is torch else gq)(lib.nn.utils.rnn.pack_padded_sequence(lib.tensor(x), [5, 3])))
    # the same check of the products' width in the dynamic Linear
    _error(lambda lib: lib.ao.quantization.quantize_dynamic(lib.nn.Sequential(lib.nn.Linear(3, 2)),
                                                            dtype=getattr(lib, dtype))(lib.ones(4, 5)))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_convtranspose_bn_fusion_gives_torch_s_values(dims):
    def model(lib):
        lib.manual_seed(dims)
        conv = getattr(lib.nn, f"ConvTranspose{dims}d")(4, 6, 3, stride=2, padding=1, output_padding=1,
                                                       bias=dims != 2)
        return lib.nn.Sequential(conv, getattr(lib.nn, f"BatchNorm{dims}d")(6), lib.nn.ReLU())
    tm, gm = _copy(model(torch), model(gt))
    rng = np.random.default_rng(dims)
    stats = {"1.running_mean": rng.normal(size=6), "1.running_var": rng.uniform(0.5, 2, 6),
             "1.weight": rng.normal(size=6), "1.bias": rng.normal(size=6)}
    for m in (tm, gm):
        m.load_state_dict({k: torch.tensor(v, dtype=torch.float32) if m is tm else v.astype(np.float32)
                           for k, v in stats.items()}, strict=False)
        m.eval()
    tf = torch.ao.quantization.fuse_modules(tm, ["0", "1"])
    gf = gt.ao.quantization.fuse_modules(gm, ["0", "1"])
    assert _repr(gf) == repr(tf) and type(gf[1]) is gt.nn.Identity
    for name in ("weight", "bias"):
        np.testing.assert_allclose(getattr(gf[0], name).detach().numpy(), getattr(tf[0], name).detach().numpy(),
                                   rtol=1e-6, atol=1e-7)
        assert getattr(gf[0], name).requires_grad == getattr(tf[0], name).requires_grad     # (no bias: a new one)
    x = rng.standard_normal((2, 4) + (3,) * dims).astype(np.float32)
    with torch.no_grad():
        want = tf(torch.tensor(x)).numpy()
    with gt.no_grad():
        np.testing.assert_allclose(gf(gt.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(gm(gt.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)     # unfused


@pytest.mark.first_pass
def test_convtranspose_bn_fusion_refuses_as_torch_s():
    def model(lib, groups=1):
        lib.manual_seed(0)
        return lib.nn.Sequential(lib.nn.ConvTranspose2d(4, 4, 3, groups=groups), lib.nn.BatchNorm2d(4))
    _error(lambda lib: lib.ao.quantization.fuse_modules_qat(model(lib), ["0", "1"]))     # torch's plain Exception
    _error(lambda lib: lib.ao.quantization.fuse_modules(model(lib), ["0", "1"]))         # training
    _error(lambda lib: lib.ao.quantization.fuse_modules(model(lib)[:1].eval().append(model(lib)[1]), ["0", "1"]))
    for lib in (torch, gt):      # a grouped weight (in, out/groups, k, k) does not broadcast with the scales
        with pytest.raises(RuntimeError, match="4"):
            lib.ao.quantization.fuse_modules(model(lib, groups=2).eval(), ["0", "1"])


@pytest.mark.first_pass
@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_dynamic_biases_require_grad_as_torch_s(dtype):
    # torch's packed params keep the float layer's bias tensor (qint8's too), a fresh layer's does not
    def model(lib):
        lib.manual_seed(0)
        m = lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.Linear(3, 2), lib.nn.LSTM(3, 2), lib.nn.LSTMCell(3, 2))
        m[1].bias.requires_grad_(False)
        return m
    got = {}
    for lib in (torch, gt):
        q = lib.ao.quantization.quantize_dynamic(model(lib), dtype=getattr(lib, dtype))
        fresh = lib.ao.nn.quantized.dynamic.Linear(3, 2, dtype=getattr(lib, dtype))
        with lib.no_grad() if dtype == "qint8" else warnings.catch_warnings():
            out = q[0](lib.ones(4, 3))
        loaded = lib.ao.nn.quantized.dynamic.Linear(3, 2, dtype=getattr(lib, dtype))
        loaded.load_state_dict(q[0].state_dict(keep_vars=True))
        got[lib] = (q[0].bias().requires_grad, q[1].bias().requires_grad, fresh.bias().requires_grad,
                    out.requires_grad, q[2].get_bias()["bias_ih_l0"].requires_grad,
                    q[3].get_bias()["bias_hh"].requires_grad, loaded.bias().requires_grad)
    assert got[gt] == got[torch]


@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_quantize_dynamic_runs_inside_a_transform_as_torch_s(dtype):
    # gt's layers set their biases' flag privately: requires_grad_() is refused inside gt.func's transforms
    def model(lib):
        lib.manual_seed(1)
        return lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.LSTM(2, 3), lib.nn.LSTMCell(3, 2))
    tm, gm = _copy(model(torch), model(gt))
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)

    def loss(lib, m):
        def f(x):
            q = lib.ao.quantization.quantize_dynamic(m, {lib.nn.Linear, lib.nn.LSTM, lib.nn.LSTMCell},
                                                     dtype=getattr(lib, dtype))
            return (q[0](x) * x[:, :2]).sum() + q[1](x[None, :, :2])[0].sum() + q[2](x)[1].sum()
        return f
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # the products' missing autograd kernel
        tx = torch.tensor(x, requires_grad=True)        # (torch.func's first call costs seconds: its autograd)
        want = torch.autograd.grad(loss(torch, tm)(tx), tx)[0].numpy()
        got = gt.func.grad(loss(gt, gm))(gt.tensor(x)).detach().numpy()
    if dtype == "qint8":
        _same(got, want)
    else:       # fbgemm sums float16 products in its own order
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def _qat_model(lib):
    lib.manual_seed(3)
    m = lib.nn.Sequential(lib.nn.Linear(5, 4), lib.nn.ReLU(), lib.nn.Linear(4, 3))
    m.qconfig = lib.ao.quantization.default_dynamic_qat_qconfig
    return m


def test_dynamic_qat_linear_trains_and_converts_as_torch_s():
    tm, gm = _copy(_qat_model(torch), _qat_model(gt))
    tp, gp = (lib.ao.quantization.prepare_qat(m, mapping={lib.nn.Linear: lib.ao.nn.qat.dynamic.Linear})
              for lib, m in ((torch, tm), (gt, gm)))
    assert _repr(gp) == repr(tp) and type(gp[0]) is gt.ao.nn.qat.dynamic.Linear
    rng = np.random.default_rng(4)
    for _ in range(3):        # each input fake-quantized with its own min and max (a memoryless observer)
        x, y = (rng.standard_normal(s).astype(np.float32) * 2 for s in ((6, 5), (6, 3)))
        losses, grads = [], []
        for lib, m in ((torch, tp), (gt, gp)):
            loss = ((m(lib.tensor(x)) - lib.tensor(y)) ** 2).mean()
            loss.backward()
            with lib.no_grad():      # plain SGD (torch.optim's first step imports seconds of torch)
                for p in m.parameters():
                    p -= 0.1 * p.grad
            losses.append(loss.item())
            grads.append([p.grad.numpy().copy() for p in m.parameters()])
            for p in m.parameters():
                p.grad = None
        assert losses[1] == pytest.approx(losses[0], rel=1e-6)
        for g, t in zip(*grads, strict=True):
            np.testing.assert_allclose(g, t, rtol=1e-5, atol=1e-6)
    with gt.no_grad():       # the trained weights to the bit (their last bits differ after float32 training)
        for g, t in zip(gp.parameters(), tp.parameters(), strict=True):
            g.copy_(gt.tensor(t.detach().numpy()))
    tq = torch.ao.quantization.convert(tp.eval(), mapping={torch.ao.nn.qat.dynamic.Linear:
                                                           torch.ao.nn.quantized.dynamic.Linear})
    gq = gt.ao.quantization.convert(gp.eval(), mapping=gt.ao.quantization.get_default_dynamic_quant_module_mappings())
    assert _repr(gq) == repr(tq) and list(gq.state_dict()) == list(tq.state_dict())
    for i in (0, 2):
        np.testing.assert_array_equal(gq[i].weight().int_repr().numpy(), tq[i].weight().int_repr().numpy())
        assert gq[i].weight().q_scale() == tq[i].weight().q_scale() and gq[i].bias().requires_grad
    x = rng.standard_normal((6, 5)).astype(np.float32)
    with torch.no_grad():
        want = tq(torch.tensor(x)).numpy()
    _same(gq(gt.tensor(x)).numpy(), want)


@pytest.mark.first_pass
def test_dynamic_qat_refuses_what_torch_refuses():
    def with_memory(lib):
        m = _qat_model(lib)
        m.qconfig = lib.ao.quantization.default_qat_qconfig
        return lib.ao.quantization.prepare_qat(m, mapping={lib.nn.Linear: lib.ao.nn.qat.dynamic.Linear})
    _error(with_memory)
    _error(lambda lib: lib.ao.nn.qat.dynamic.Linear(2, 3))
    _error(lambda lib: lib.ao.nn.qat.dynamic.Linear.from_float(lib.nn.Conv1d(2, 3, 1)))


def _version_1(name):
    """torch's quantized ``name`` layer, and it as torch's layers of version 1 were made (cells without
    reduce_range) with the state dict such a layer saved. Weights quantized to at most 64 in magnitude:
    fbgemm's AVX2 kernels saturate pairs of 8-bit products past 32767, its VNNI ones do not (gt's
    exact sums are VNNI's), so the test holds on either."""
    torch.manual_seed(5)
    float_layer = getattr(torch.nn, name)(5, 8, num_layers=2)
    q = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(float_layer))[0]
    old = getattr(torch.ao.nn.quantized.dynamic, name)(5, 8, num_layers=2)
    old.version = 1
    weights = {k: torch.quantize_per_tensor(w.dequantize(), float(w.dequantize().abs().max()) / 64, 0, torch.qint8)
               for k, w in q.get_weight().items()}
    old.set_weight_bias({**weights, **q.get_bias()})
    state = old.state_dict()
    state._metadata[""]["version"] = 1
    return q, old, state


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_version_1_recurrent_layers_load_and_run_as_torch_s(name, tmp_path):
    # torch loads the cells as saved, reduce_range flag included ([0]: 8-bit inputs), and takes the version
    q, old, state = _version_1(name)
    loaded = getattr(torch.ao.nn.quantized.dynamic, name)(5, 8, num_layers=2)
    loaded.load_state_dict(state)
    gq = getattr(gt.ao.nn.quantized.dynamic, name)(5, 8, num_layers=2)
    gq.load_state_dict(state)
    assert gq.version == loaded.version == 1
    x = np.random.default_rng(6).standard_normal((4, 3, 5)).astype(np.float32) * 3
    with torch.no_grad():
        want = loaded(torch.tensor(x))[0].numpy()
        assert not np.array_equal(want, q(torch.tensor(x))[0].numpy())        # 8 bits, not 7
    _same(gq(gt.tensor(x))[0].numpy(), want)
    saved = gq.state_dict()      # the cells keep their flag, the metadata says the class's version, as torch's
    assert dict(saved._metadata) == dict(loaded.state_dict()._metadata)
    assert [v.__getstate__()[0][3] for v in saved.values()] == [[0]] * 2
    gt.save(saved, tmp_path / "g.pt")
    again = getattr(torch.ao.nn.quantized.dynamic, name)(5, 8, num_layers=2)
    again.load_state_dict(torch.load(tmp_path / "g.pt", weights_only=False))
    with torch.no_grad():
        np.testing.assert_array_equal(again(torch.tensor(x))[0].numpy(), want)
