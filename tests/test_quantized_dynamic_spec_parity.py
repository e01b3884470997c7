"""``quantize_dynamic``'s ``qconfig_spec``, ``mapping`` and ``inplace`` beside torch 2.13's: which
modules each spec swaps (a dict's qconfigs handed down by name prefix, types and names mixed, the most
specific winning; a set of types and names; None entries; a qconfig a module already has), the
qconfigs' weights (``default_dynamic_qconfig``, ``per_channel_dynamic_qconfig``,
``float16_dynamic_qconfig``) on Linear and LSTM with torch's outputs, the reprs, torch's errors, and
the dynamic Linear's output that requires grad, as torch's, with torch's backward warning."""

import re

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

torch = torch_or_skip()
pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated")]
GQ, TQ = gt.ao.quantization, torch.ao.quantization


def _model(lib, seed=0):
    """Linear, a block of (Linear, ReLU, LSTM), an LSTMCell and a block holding a Linear."""
    lib.manual_seed(seed)
    nn = lib.nn
    return nn.Sequential(nn.Linear(6, 5), nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.LSTM(4, 3)),
                         nn.LSTMCell(3, 4), nn.Sequential(nn.Sequential(nn.Linear(4, 2))))


def _pair(seed=0):
    tm, gm = _model(torch, seed), _model(gt, seed)
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, gm


def _repr(module):
    return re.sub(r"  # [\d,]+ parameters", "", repr(module))


def _spec(spec, lib):
    """A spec written with gt's names as ``lib``'s: classes and qconfigs by name, strings as they are."""
    def one(v):
        if isinstance(v, str):
            return getattr(lib.ao.quantization, v[1:]) if v.startswith("@") else v
        return v if v is None else getattr(lib.nn, v.__name__)
    if isinstance(spec, set):
        return {one(k) for k in spec}
    return {one(k): one(v) for k, v in spec.items()}


# qconfigs are written "@name"; the most specific of a module's name, its type and its parent's wins
_SPECS = [
    {gt.nn.Linear: "@per_channel_dynamic_qconfig", "1": "@float16_dynamic_qconfig"},
    {"1": "@float16_dynamic_qconfig"},
    {"1": "@per_channel_dynamic_qconfig", gt.nn.Linear: None, "1.2": "@default_dynamic_qconfig"},
    {"3": "@float16_dynamic_qconfig", "3.0.0": None, gt.nn.LSTMCell: "@per_channel_dynamic_qconfig"},
    {gt.nn.Sequential: "@default_dynamic_qconfig", "0": None},
    {"": "@float16_dynamic_qconfig", gt.nn.LSTM: "@default_dynamic_qconfig"},
    {"1.0", gt.nn.LSTMCell, "3.0"},
]


@pytest.mark.first_pass
@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_specs_swap_what_torch_s_swap(dtype):
    tm, gm = _pair()
    for spec in _SPECS:
        tq = TQ.quantize_dynamic(tm, _spec(spec, torch), dtype=getattr(torch, dtype))
        gq = GQ.quantize_dynamic(gm, _spec(spec, gt), dtype=getattr(gt, dtype))
        assert _repr(gq) == repr(tq).replace("torch.", "gt."), spec
        assert not any(hasattr(m, "qconfig") for m in gq.modules())      # torch's convert removes them
    assert type(gm[0]) is gt.nn.Linear and gm.training       # quantized a copy


def _outputs(tq, gq, x, h):
    """The models on ``x`` (seq, batch, 6): the LSTM's last step into the cell (state ``h``, ``h``)."""
    def run(lib, m):
        return m[3](m[2](m[1](m[0](lib.tensor(x)))[0][-1], (lib.tensor(h), lib.tensor(h)))[0])
    with torch.no_grad():
        want = run(torch, tq).numpy()
    return run(gt, gq).numpy(), want


@pytest.mark.parametrize("spec", _SPECS[:4], ids=["per-channel+half", "half", "per-channel", "cell"])
def test_qconfigs_give_torch_s_outputs(spec):
    # a dict's qconfigs used to be ignored by Linear and the recurrent layers (they followed dtype);
    # per-channel weights are torch's bits (gt's own product on both engines), float16 ones to fp32 rounding
    tm, gm = _pair(1)
    tq, gq = TQ.quantize_dynamic(tm, _spec(spec, torch)), GQ.quantize_dynamic(gm, _spec(spec, gt))
    rng = np.random.default_rng(len(spec))
    x, h = rng.standard_normal((2, 3, 6)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    got, want = _outputs(tq, gq, x, h)
    # the numpy engine's sigmoid and tanh differ from torch's in the last bit
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert _repr(gq) == repr(tq).replace("torch.", "gt.")
    for g, t in zip(gq.modules(), [m for m in tq.modules() if type(m).__name__ != "LinearPackedParams"]):
        if type(t).__name__ != "DynamicQuantizedLinear":
            continue
        v = rng.standard_normal((5, t.in_features)).astype(np.float32)
        with torch.no_grad():
            out = t(torch.from_numpy(v)).numpy()
        if t.weight().dtype == torch.float16:      # fbgemm sums the float16 products in its own order
            np.testing.assert_allclose(g(gt.tensor(v)).numpy(), out, rtol=1e-6, atol=1e-6)
            continue
        np.testing.assert_array_equal(g(gt.tensor(v)).numpy().view(np.int32), out.view(np.int32))
        w = t.weight()
        assert g.weight().qscheme() == getattr(gt, str(w.qscheme()).split(".")[1])
        np.testing.assert_array_equal(g.weight().int_repr().numpy(), w.int_repr().numpy())
        if w.qscheme() == torch.per_channel_affine:
            np.testing.assert_array_equal(g.weight().q_per_channel_scales().numpy(), w.q_per_channel_scales().numpy())


def test_per_channel_lstm_gives_torch_s_outputs_and_its_state_dict_loads():
    torch.manual_seed(2)
    tm = torch.nn.Sequential(torch.nn.LSTM(4, 5, num_layers=2, bidirectional=True))
    gm = gt.nn.Sequential(gt.nn.LSTM(4, 5, num_layers=2, bidirectional=True))
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    tq = TQ.quantize_dynamic(tm, {torch.nn.LSTM: TQ.per_channel_dynamic_qconfig})
    gq = GQ.quantize_dynamic(gm, {gt.nn.LSTM: GQ.per_channel_dynamic_qconfig})
    x = np.random.default_rng(2).standard_normal((3, 2, 4)).astype(np.float32)
    with torch.no_grad():
        want = tq(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(gq(gt.tensor(x))[0].numpy(), want, rtol=1e-6, atol=3e-7)
    w = gq[0].get_weight()["weight_ih_l1_reverse"]
    assert w.qscheme() == gt.per_channel_affine
    np.testing.assert_array_equal(w.int_repr().numpy(), tq[0].get_weight()["weight_ih_l1_reverse"].int_repr().numpy())
    fresh = GQ.quantize_dynamic(gt.nn.Sequential(gt.nn.LSTM(4, 5, num_layers=2, bidirectional=True)))
    fresh.load_state_dict(gq.state_dict())
    np.testing.assert_array_equal(fresh(gt.tensor(x))[0].numpy(), gq(gt.tensor(x))[0].numpy())


@pytest.mark.first_pass
def test_mapping_inplace_hooks_and_a_qconfig_already_there_as_torch_s():
    tm, gm = _pair()
    out = []
    for lib, m in ((torch, tm), (gt, gm)):
        m[0].qconfig = lib.ao.quantization.float16_dynamic_qconfig      # wins over the spec's, then removed
        m[3][0][0].register_forward_hook(lambda mod, i, o: o * 2)
        mapping = {lib.nn.Linear: lib.ao.nn.quantized.dynamic.Linear}    # no recurrent layers
        q = lib.ao.quantization.quantize_dynamic(m, {lib.nn.Linear, lib.nn.LSTM}, mapping=mapping, inplace=True)
        assert q is m and not m.training and not hasattr(m[0], "qconfig")
        assert len(m[3][0][0]._forward_hooks) == 1
        out.append(repr(q))
    assert _repr(gm) == out[0].replace("torch.", "gt.")
    x = np.ones((2, 4), np.float32)
    with torch.no_grad():
        np.testing.assert_array_equal(gm[3](gt.tensor(x)).numpy(), tm[3](torch.from_numpy(x)).numpy())

    class Mine(gt.nn.Module):
        @classmethod
        def from_float(cls, mod):
            new = cls()
            new.source = type(mod).__name__
            return new
    q = GQ.quantize_dynamic(_model(gt), {gt.nn.LSTMCell}, mapping={gt.nn.LSTMCell: Mine})
    assert type(q[2]) is Mine and q[2].source == "LSTMCell"


@pytest.mark.first_pass
def test_multihead_attention_s_out_proj_follows_torch_s_lookup():
    # torch's out_proj is a NonDynamicallyQuantizableLinear: {nn.Linear} leaves it; a qconfig of the
    # attention or of its name reaches it (torch's mapping has it, and its attention then fails)
    for spec in ({"Linear"}, {"MultiheadAttention"}, {"0.out_proj"}, {"0": "@default_dynamic_qconfig"}):
        kinds = []
        for lib in (torch, gt):
            s = {getattr(lib.nn, k) if k[0].isupper() else k for k in spec} if isinstance(spec, set) else \
                {k: getattr(lib.ao.quantization, v[1:]) for k, v in spec.items()}
            q = lib.ao.quantization.quantize_dynamic(lib.nn.Sequential(lib.nn.MultiheadAttention(4, 2)), s)
            kinds.append(re.sub(r"NonDynamicallyQuantizable|Dynamic", "", type(q[0].out_proj).__name__))
        assert kinds[0] == kinds[1], spec


@pytest.mark.first_pass
def test_unsupported_dtypes_and_qconfigs_raise_torch_s_errors():
    cases = [(None, "float32", ValueError, "Don't know how to quantize with default settings for"),
             (None, "qint32", ValueError, "Don't know how to quantize with default settings for"),
             ({"Linear"}, "float32", RuntimeError, "Unknown dtype specified for quantize_dynamic"),
             ({"Linear"}, "quint8", AssertionError, "only supported dtypes for dynamic quantized linear are qint8 and "
                                                    "float16, got: .*quint8"),
             ({"LSTM"}, "quint4x2", RuntimeError, "Unsupported dtype for dynamic RNN quantization: .*quint4x2"),
             ({"Embedding"}, "qint8", AssertionError, "Embedding quantization is only supported with "
                                                      "float_qparams_weight_only_qconfig"),
             ({"Embedding": "@float16_dynamic_qconfig"}, "qint8", AssertionError, "Embedding quantization is only")]
    for spec, dtype, error, words in cases:
        for lib in (torch, gt):
            m = lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.LSTM(2, 2), lib.nn.Embedding(3, 2))
            s = spec if spec is None else {getattr(lib.nn, k) for k in spec} if isinstance(spec, set) else \
                {getattr(lib.nn, k): getattr(lib.ao.quantization, v[1:]) for k, v in spec.items()}
            with pytest.raises(error, match=words):
                lib.ao.quantization.quantize_dynamic(m, s, dtype=getattr(lib, dtype))


@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_linear_output_requires_grad_and_backward_warns_as_torch_s(dtype):
    # torch's quantized::linear_dynamic(_fp16) has no autograd kernel: its output requires grad where
    # the input does, and backward warns and passes nothing back (gt's carried no gradient); its float16
    # form adds the bias (a parameter) apart, so the bias gets its gradient and the output requires grad
    tm, gm = _pair()
    half = dtype == "float16"
    x = np.random.default_rng(4).standard_normal((5, 6)).astype(np.float32)
    up = np.random.default_rng(5).standard_normal((5, 5)).astype(np.float32)
    grads = []
    for lib, m in ((torch, tm), (gt, gm)):
        q = lib.ao.quantization.quantize_dynamic(m, {lib.nn.Linear}, dtype=getattr(lib, dtype))[0]
        xs = lib.tensor(x, requires_grad=True)
        y = q(xs)
        assert y.requires_grad and q(lib.tensor(x)).requires_grad == half
        with pytest.warns(UserWarning, match=f"quantized::linear_dynamic{'_fp16' if half else ''}: an "
                                             "autograd kernel was not registered"):
            y.backward(lib.tensor(up))
        assert xs.grad is None
        grads.append(q.bias().grad)
        with lib.no_grad():
            assert not q(xs).requires_grad
        with pytest.raises(RuntimeError, match="Expected input.dim" if half else "dimension of input"):
            q(lib.ones(6))
        with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
            q(lib.ones(2, 6, dtype=lib.float64))
    if half:
        np.testing.assert_allclose(grads[1].numpy(), grads[0].numpy(), rtol=1e-6, atol=1e-6)
    else:
        assert grads == [None, None]


@pytest.mark.first_pass
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")      # torch's, saving its quantized tensors
def test_float16_state_dict_loads_both_ways_and_switches_the_dtype_as_torch_s(tmp_path):
    tm, gm = _pair(3)
    tq = TQ.quantize_dynamic(tm, {torch.nn.Linear}, dtype=torch.float16)
    gq = GQ.quantize_dynamic(gm, {gt.nn.Linear}, dtype=gt.float16)
    assert list(gq.state_dict()) == list(tq.state_dict()) and gq.state_dict()["0._packed_params.dtype"] == gt.float16
    x = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    fresh = GQ.quantize_dynamic(_model(gt, 5), {gt.nn.Linear})       # qint8: a float16 state dict makes it float16
    fresh.load_state_dict({k: v for k, v in tq.state_dict().items() if "packed_params" in k or k.endswith(
        ("scale", "zero_point"))}, strict=False)
    assert _repr(fresh[0]) == repr(tq[0]).replace("torch.", "gt.")
    with torch.no_grad():
        want = tq[0](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(fresh[0](gt.tensor(x)).numpy(), want, rtol=1e-6, atol=1e-6)
    gt.save(gq.state_dict(), tmp_path / "g.pt")       # gt's, loaded by torch (its qint8 modules become float16)
    back = TQ.quantize_dynamic(_model(torch, 6), {torch.nn.Linear})
    back.load_state_dict(torch.load(tmp_path / "g.pt"))
    assert repr(back) == repr(tq)
    with torch.no_grad():
        np.testing.assert_array_equal(back[0](torch.from_numpy(x)).numpy(), want)


# torch warns once per layer op (aten::quantized_lstm) or cell op where a state asks for a gradient;
# gt's products warn as linear_dynamic_fp16
@pytest.mark.filterwarnings("ignore:.*an autograd kernel was not registered")
def test_float16_recurrent_biases_get_torch_s_gradients():
    # torch's float16 layers and cells add their biases apart from linear_dynamic_fp16: their outputs
    # require grad for inputs that do not, and the biases get gradients through the gate math
    def stack(lib):
        lib.manual_seed(0)
        return lib.nn.Sequential(lib.nn.LSTM(3, 2, bidirectional=True), lib.nn.GRU(3, 2), lib.nn.LSTMCell(3, 2),
                                 lib.nn.GRUCell(3, 2), lib.nn.RNNCell(3, 2))
    tm, gm = stack(torch), stack(gt)
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(6).standard_normal((2, 3, 3)).astype(np.float32)
    grads = []
    for lib, m in ((torch, tm), (gt, gm)):
        q = lib.ao.quantization.quantize_dynamic(m, dtype=lib.float16)
        xs = lib.tensor(x)
        outs = [q[0](xs)[0], q[1](xs)[0], q[2](xs[0])[0], q[3](xs[0]), q[4](xs[0])]
        assert all(o.requires_grad for o in outs)
        sum((o * o).sum() for o in outs).backward()
        biases = [b for layer in q[:2] for _, b in sorted(layer.get_bias().items())]
        biases += [c._packed_weight_ih.__getstate__()[0][1] if lib is gt else c._packed_weight_ih.unpack()[1]
                   for c in q[2:]]
        grads.append([b.grad.numpy() for b in biases])
    for g, t in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(g, t, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_fused_linear_relu_becomes_torch_s_dynamic_linear_relu(dtype):
    # torch's dynamic mapping has nn.intrinsic.LinearReLU (gt left it float); not in the default set
    torch.manual_seed(7)
    tm = torch.nn.Sequential(torch.ao.nn.intrinsic.LinearReLU(torch.nn.Linear(6, 5), torch.nn.ReLU()))
    gm = gt.nn.Sequential(gt.ao.nn.intrinsic.LinearReLU(gt.nn.Linear(6, 5), gt.nn.ReLU()))
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    tq = TQ.quantize_dynamic(tm, {torch.ao.nn.intrinsic.LinearReLU}, dtype=getattr(torch, dtype))
    gq = GQ.quantize_dynamic(gm, {gt.ao.nn.intrinsic.LinearReLU}, dtype=getattr(gt, dtype))
    assert _repr(gq) == repr(tq).replace("torch.", "gt.")
    assert type(GQ.quantize_dynamic(gm)[0]) is gt.ao.nn.intrinsic.LinearReLU
    x = np.random.default_rng(7).standard_normal((6, 6)).astype(np.float32)
    with torch.no_grad():
        want = tq(torch.from_numpy(x)).numpy()
    got = gq(gt.tensor(x)).numpy()
    assert (want == 0).any()
    if dtype == "qint8":
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("observer", ["MinMaxObserver", "PerChannelMinMaxObserver"])
def test_affine_weight_observers_give_torch_s_outputs(observer):
    # an affine weight observer's zero points (gt refused them): fbgemm subtracts them exactly
    torch.manual_seed(8)
    tm = torch.nn.Sequential(torch.nn.Linear(40, 7), torch.nn.LSTM(7, 3))
    with torch.no_grad():
        tm[0].weight.add_(0.05)          # lopsided weights: nonzero zero points
    gm = gt.nn.Sequential(gt.nn.Linear(40, 7), gt.nn.LSTM(7, 3))
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    quantized = []
    for lib, m in ((torch, tm), (gt, gm)):
        aq = lib.ao.quantization
        qconfig = aq.QConfig(activation=aq.default_dynamic_qconfig.activation,
                             weight=getattr(aq, observer).with_args(dtype=lib.qint8))
        quantized.append(aq.quantize_dynamic(m, {lib.nn.Linear: qconfig, lib.nn.LSTM: qconfig}))
    tq, gq = quantized
    w = gq[0].weight()
    zero_points = [w.q_zero_point()] if w.qscheme() == gt.per_tensor_affine else w.q_per_channel_zero_points().tolist()
    assert any(zero_points) and _repr(gq) == repr(tq).replace("torch.", "gt.")
    x = (np.random.default_rng(8).standard_normal((2, 5, 40)) * 3).astype(np.float32)
    with torch.no_grad():
        want, want_lstm = tq[0](torch.from_numpy(x)).numpy(), tq(torch.from_numpy(x))[0].numpy()
    np.testing.assert_array_equal(gq[0](gt.tensor(x)).numpy().view(np.int32), want.view(np.int32))
    np.testing.assert_allclose(gq(gt.tensor(x))[0].numpy(), want_lstm, rtol=1e-6, atol=3e-7)
