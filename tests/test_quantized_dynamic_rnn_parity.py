"""Dynamically quantized recurrent layers (gt/ao/nn/quantized/dynamic_rnn*.py) beside torch 2.13's
``quantize_dynamic`` of ``nn.LSTM``/``GRU``/``LSTMCell``/``GRUCell``/``RNNCell``: outputs and final states
(torch's bits on the torch engine; on the numpy engine, whose sigmoid and tanh differ from torch's in
the last bit, to float32 rounding here: over longer sequences such a bit of h can move one integer of
the next step's quantization, a difference of one quantization step, ~1e-3), packed sequences, float16
weights, state dicts both ways, repr, what ``quantize_dynamic`` swaps, what requires grad, and torch's
errors."""

import re
import warnings

import numpy as np
import pytest

import gt
from gt.backend import B
from helpers import torch_or_skip

torch = torch_or_skip()
pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated")]
_EXACT = B.name == "torch"


def _same(got, want, half=False):
    """torch's bits where gt's engine is torch's and the weights qint8; else to float32 rounding
    (float16 weights: fbgemm sums its products in another order)."""
    got, want = np.asarray(got), np.asarray(want)
    if _EXACT and not half:
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 if half else 3e-7)


def _models(name, *args, dtype="qint8", seed=0, **kwargs):
    """torch's float ``nn.<name>`` quantized by torch, and the same weights quantized by gt."""
    torch.manual_seed(seed)
    tm = torch.nn.Sequential(getattr(torch.nn, name)(*args, **kwargs))
    gm = gt.nn.Sequential(getattr(gt.nn, name)(*args, **kwargs))
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # torch's float16 prepack warns of nothing it clips here
        tq = torch.ao.quantization.quantize_dynamic(tm, dtype=getattr(torch, dtype))
    return tq, gt.ao.quantization.quantize_dynamic(gm, {getattr(gt.nn, name)}, dtype=getattr(gt, dtype))


def _arrays(rng, *shapes):
    return [(rng.standard_normal(s) * 1.5).astype(np.float32) for s in shapes]


def _run(tq, gq, x, hx=None):
    """Both models on numpy input ``x`` and states ``hx`` (None, an array, or a pair of arrays)."""
    def call(m, lib):
        h = None if hx is None else tuple(lib.tensor(a) for a in hx) if isinstance(hx, tuple) else lib.tensor(hx)
        return m(lib.tensor(x), h)
    with torch.no_grad():
        want = call(tq, torch)
    return call(gq, gt), want


def _flat(out):
    return [out] if not isinstance(out, tuple) else [t for o in out for t in _flat(o)]


@pytest.mark.parametrize("name,kwargs,dtype", [
    ("LSTM", {}, "qint8"), ("LSTM", dict(num_layers=2, bidirectional=True), "qint8"),
    ("LSTM", dict(batch_first=True), "qint8"), ("GRU", dict(num_layers=2), "qint8"),
    ("GRU", dict(bidirectional=True, batch_first=True), "qint8"), ("LSTM", dict(num_layers=2, bidirectional=True),
                                                                   "float16"),
    ("GRU", dict(bidirectional=True, batch_first=True), "float16")])
def test_layers_give_torch_s_outputs_and_states(name, kwargs, dtype):
    rng = np.random.default_rng(len(name) + len(kwargs))
    tq, gq = _models(name, 5, 7, dtype=dtype, **kwargs)
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    batch = 4 if kwargs.get("batch_first") else 3
    x, h0, c0 = _arrays(rng, (4, 3, 5), (layers, batch, 7), (layers, batch, 7))
    for hx in (None, (h0, c0) if name == "LSTM" else h0):
        got, want = _run(tq[0], gq[0], x, hx)
        for g, w in zip(_flat(got), _flat(want), strict=True):
            assert tuple(g.shape) == tuple(w.shape)
            _same(g.numpy(), w.numpy(), half=dtype == "float16")


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell", "RNNCell-relu"])
@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_cells_give_torch_s_states(name, dtype):
    name, _, act = name.partition("-")
    tq, gq = _models(name, 6, 5, dtype=dtype, **({"nonlinearity": act} if act else {}))
    x, h, c = _arrays(np.random.default_rng(len(name)), (3, 6), (3, 5), (3, 5))
    for hx in (None, (h, c) if name == "LSTMCell" else h):
        got, want = _run(tq[0], gq[0], x, hx)
        for g, w in zip(_flat(got), _flat(want), strict=True):
            _same(g.numpy(), w.numpy(), half=dtype == "float16")


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_packed_sequences_give_torch_s_outputs(name):
    # torch steps over the packed rows: each step quantizes the hidden states of the sequences still
    # running (their min and max), so the padded form gt's float layers run would differ
    layers = 2 if name == "LSTM" else 1
    tq, gq = _models(name, 4, 5, num_layers=layers, bidirectional=True)
    rng = np.random.default_rng(7)
    x, h0, c0 = _arrays(rng, (5, 4, 4), (2 * layers, 4, 5), (2 * layers, 4, 5))
    hx = (h0, c0) if name == "LSTM" else h0
    for lengths, sort, h in (([5, 3, 3, 1], True, None), ([2, 5, 1, 4], False, hx)):
        packed = [lib.nn.utils.rnn.pack_padded_sequence(lib.tensor(x), lengths, enforce_sorted=sort)
                  for lib in (gt, torch)]
        with torch.no_grad():
            states = None if h is None else tuple(torch.tensor(a) for a in h) if name == "LSTM" else \
                torch.tensor(h)
            want = tq[0](packed[1], states)
        states = None if h is None else tuple(gt.tensor(a) for a in h) if name == "LSTM" else gt.tensor(h)
        got = gq[0](packed[0], states)
        assert got[0].batch_sizes.tolist() == want[0].batch_sizes.tolist()
        _same(got[0].data.numpy(), want[0].data.numpy())
        for g, w in zip(_flat(got[1]), _flat(want[1]), strict=True):
            _same(g.numpy(), w.numpy())


def _to_torch(value):
    """A gt state dict's packed entry as torch's TorchScript object (what its own state dict holds)."""
    state, kind = value.__getstate__()
    if kind.endswith("LinearPackedParamsBase"):
        w, b = state
        b = None if b is None else torch.from_numpy(np.asarray(b))
        if isinstance(w, np.ndarray):
            return torch.ops.quantized.linear_prepack_fp16(torch.from_numpy(w), b)
        tw = torch._make_per_tensor_quantized_tensor(torch.from_numpy(w.int_repr().numpy()), w.q_scale(),
                                                     w.q_zero_point())
        return torch.ops.quantized.linear_prepack(tw, b)
    name, _, _, _, packed = state
    ih, hh = (_to_torch(p) for p in packed)
    if name == "quantized_fp16":
        return torch.ops.quantized.make_quantized_cell_params_fp16(ih, hh)
    b_ih, b_hh = (torch.from_numpy(np.asarray(p.__getstate__()[0][1])) for p in packed)
    return torch.ops.quantized.make_quantized_cell_params_dynamic(ih, hh, b_ih, b_hh, True)


def _stack(lib, seed, dtype):
    lib.manual_seed(seed)
    m = lib.nn.Sequential(lib.nn.LSTM(4, 3, 2, bidirectional=True), lib.nn.GRU(6, 3), lib.nn.LSTMCell(3, 4),
                          lib.nn.GRUCell(3, 4), lib.nn.RNNCell(3, 4))
    spec = {lib.nn.LSTM, lib.nn.GRU, lib.nn.LSTMCell, lib.nn.GRUCell, lib.nn.RNNCell}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return m, lib.ao.quantization.quantize_dynamic(m, spec, dtype=getattr(lib, dtype))


def _outputs(q, lib, x, x1):
    with torch.no_grad():
        out = [q[0](lib.tensor(x))[0], q[2](lib.tensor(x1))[1], q[3](lib.tensor(x1)), q[4](lib.tensor(x1))]
        out.append(q[1](out[0])[1])
    return [o.numpy() for o in out]


@pytest.mark.parametrize("dtype", ["qint8", "float16"])
def test_state_dicts_are_torch_s_and_load_both_ways(dtype):
    # torch keeps TorchScript objects in these state dicts; gt reads them through __getstate__ and
    # its own entries hold the same structure, from which torch's objects are rebuilt
    _, tq = _stack(torch, 0, dtype)
    _, gq = _stack(gt, 1, dtype)
    x, x1 = _arrays(np.random.default_rng(8), (3, 2, 4), (2, 3))
    tsd, gsd = tq.state_dict(), gq.state_dict()
    assert list(gsd) == list(tsd) and dict(gsd._metadata) == dict(tsd._metadata)
    before = _outputs(gq, gt, x, x1)
    gq.load_state_dict(tsd)
    for g, w in zip(_outputs(gq, gt, x, x1), _outputs(tq, torch, x, x1)):
        _same(g, w, half=dtype == "float16")
    _, tq2 = _stack(torch, 2, dtype)
    tq2.load_state_dict({k: _to_torch(v) for k, v in gsd.items()})
    for g, w in zip(before, _outputs(tq2, torch, x, x1)):
        _same(g, w, half=dtype == "float16")
    _, fresh = _stack(gt, 3, dtype)
    fresh.load_state_dict(gsd)
    for g, w in zip(_outputs(fresh, gt, x, x1), before):
        _same(g, w, half=dtype == "float16")


@pytest.mark.first_pass
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")      # torch's, saving its quantized tensors
def test_checkpoints_of_either_load_in_the_other(tmp_path):
    # torch pickles its packed weights as TorchScript objects (torch.ScriptObject and their state); gt
    # reads them as their state (weights_only=False, as torch) and writes its own so that torch rebuilds them
    x, x1 = _arrays(np.random.default_rng(10), (3, 2, 4), (2, 3))
    for dtype in ("qint8", "float16"):
        _, tq = _stack(torch, 0, dtype)
        _, gq = _stack(gt, 1, dtype)
        torch.save(tq.state_dict(), tmp_path / "t.pt")
        with pytest.raises(Exception, match="weights_only"):
            gt.load(tmp_path / "t.pt")
        gq.load_state_dict(gt.load(tmp_path / "t.pt", weights_only=False))
        for g, w in zip(_outputs(gq, gt, x, x1), _outputs(tq, torch, x, x1)):
            _same(g, w, half=dtype == "float16")
        _, gq2 = _stack(gt, 2, dtype)
        gt.save(gq2.state_dict(), tmp_path / "g.pt")
        tq.load_state_dict(torch.load(tmp_path / "g.pt", weights_only=False))
        for g, w in zip(_outputs(gq2, gt, x, x1), _outputs(tq, torch, x, x1)):
            _same(g, w, half=dtype == "float16")


@pytest.mark.first_pass
def test_what_a_state_dict_load_refuses():
    _, tq = _stack(torch, 0, "qint8")
    _, gq = _stack(gt, 1, "qint8")
    _, half = _stack(gt, 1, "float16")
    before = gq.state_dict()
    with pytest.raises(RuntimeError, match=r"0._all_weight_values.0.param: expected 'quantized_dynamic' cell"):
        gq.load_state_dict(half.state_dict())
    small = gt.ao.quantization.quantize_dynamic(gt.nn.Sequential(gt.nn.LSTM(2, 3, 2, bidirectional=True)))
    with pytest.raises(RuntimeError, match=r"expected a weight of shape \(12, 4\), got shape \(12, 2\)"):
        gq[:1].load_state_dict(small.state_dict())
    for k, v in gq.state_dict().items():       # nothing was written by the refused loads
        for a, b in zip(v.__getstate__()[0][-1] if "param" in k else [v], before[k].__getstate__()[0][-1]
                        if "param" in k else [before[k]]):
            np.testing.assert_array_equal(a.weight.int_repr().numpy(), b.weight.int_repr().numpy())
    missing = gq.load_state_dict({k: v for k, v in tq.state_dict().items() if "_packed_weight_hh" not in k},
                                 strict=False)
    assert missing.missing_keys == ["2._packed_weight_hh", "3._packed_weight_hh", "4._packed_weight_hh"]


@pytest.mark.first_pass
def test_repr_and_what_quantize_dynamic_swaps_are_torch_s():
    def model(lib):
        lib.manual_seed(0)
        return lib.nn.Sequential(lib.nn.LSTM(3, 4, 2, batch_first=True, bidirectional=True, dropout=0.5),
                                 lib.nn.GRU(3, 4, bias=True), lib.nn.LSTMCell(3, 4), lib.nn.GRUCell(3, 4),
                                 lib.nn.RNNCell(3, 4, nonlinearity="relu"), lib.nn.Linear(3, 4), lib.nn.RNN(3, 4),
                                 lib.nn.Sequential(lib.nn.GRUCell(2, 2)))
    tm, gm = model(torch), model(gt)
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    tq = torch.ao.quantization.quantize_dynamic(tm)          # torch's default set of types
    gq = gt.ao.quantization.quantize_dynamic(gm)
    assert re.sub(r"  # [\d,]+ parameters", "", repr(gq)) == repr(tq).replace("torch.", "gt.")   # nn.RNN: float
    assert type(gq[6]) is gt.nn.RNN and type(gq[7][0]) is gt.ao.nn.quantized.dynamic.GRUCell   # as torch's
    # torch's quantize_dynamic puts the copy in eval mode (gt's left a float Dropout training), then swaps in
    # the new modules (its RNN layers set training False, its cells keep Module's default)
    assert [(type(m).__name__, m.training) for m in gq.modules()] == [(type(m).__name__, m.training)
                                                                      for m in tq.modules()
                                                                      if type(m).__name__ != "LinearPackedParams"]
    for g, t in zip(list(gq)[:5], list(tq)[:5]):
        assert type(g).__name__ == type(t).__name__ and type(g).__module__.startswith("gt.")
        for key in ("dtype", "weight_dtype", "version", "training", "bias", "dropout", "nonlinearity"):
            assert getattr(g, key, None) == (getattr(t, key, None) if not isinstance(getattr(t, key, None), torch.dtype)
                                             else getattr(gt, str(getattr(t, key)).split(".")[1])), key
    assert sorted(gq[0].get_weight()) == sorted(tq[0].get_weight()) and sorted(gq[0].get_bias()) == sorted(
        tq[0].get_bias())
    np.testing.assert_array_equal(gq[2].get_weight()["weight_ih"].int_repr().numpy(),
                                  tq[2].get_weight()["weight_ih"].int_repr().numpy())
    half = gt.ao.quantization.quantize_dynamic(model(gt), {gt.nn.LSTM, gt.nn.GRUCell}, dtype=gt.float16)
    assert half[0].dtype == gt.float16 and half[3].weight_dtype == gt.float16 and type(half[5]) is gt.nn.Linear
    half = gt.ao.quantization.quantize_dynamic(model(gt), dtype=gt.float16)      # gt refused the float16 Linear
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_half = torch.ao.quantization.quantize_dynamic(model(torch), dtype=torch.float16)
    assert re.sub(r"  # [\d,]+ parameters", "", repr(half)) == repr(torch_half).replace("torch.", "gt.")
    for lib in (gt, torch):
        with pytest.raises(AssertionError, match="mod.bias must be True"):
            lib.ao.quantization.quantize_dynamic(lib.nn.Sequential(lib.nn.GRU(3, 4, bias=False)))


def test_outputs_require_grad_as_torch_s_and_only_the_float_gate_math_passes_gradients():
    # torch's products have no autograd kernel: its outputs require grad where an input does, and
    # backward passes nothing through the products (with a warning) but differentiates the gates
    _, tq = _stack(torch, 0, "qint8")
    gq = _stack(gt, 0, "qint8")[1]
    gq.load_state_dict(tq.state_dict())
    x, h, c = _arrays(np.random.default_rng(9), (2, 3), (2, 4), (2, 4))
    for lib, q in ((torch, tq), (gt, gq)):
        xs, hs, cs = (lib.tensor(a, requires_grad=True) for a in (x, h, c))
        y = q[2](xs.detach(), (hs, cs))[1] + q[3](xs.detach(), hs) + q[4](xs, hs.detach())
        assert y.requires_grad and not q[3](xs.detach(), hs.detach()).requires_grad
        with pytest.warns(UserWarning, match="an autograd kernel was not registered"):
            y.sum().backward()
        assert xs.grad is None
        if lib is torch:
            want = hs.grad.numpy(), cs.grad.numpy()
        else:
            _same(hs.grad.numpy(), want[0])
            _same(cs.grad.numpy(), want[1])
    with gt.no_grad():
        assert not gq[0](gt.tensor(np.ones((2, 1, 4), np.float32), requires_grad=True))[0].requires_grad


@pytest.mark.first_pass
def test_errors_are_torch_s():
    _, tq = _stack(torch, 0, "qint8")
    _, gq = _stack(gt, 0, "qint8")
    calls = [lambda q, m: q[0](m.ones(2, 3)), lambda q, m: q[0](m.ones(2, 2, 5)),
             lambda q, m: q[0](m.ones(2, 2, 4), (m.ones(4, 3, 3), m.ones(4, 2, 3))),
             lambda q, m: q[0](m.ones(2, 2, 4), (m.ones(4, 2, 3), m.ones(2, 2, 3))),
             lambda q, m: q[1](m.ones(2, 2, 6), m.ones(1, 2, 3, dtype=m.float64)),
             lambda q, m: q[0](m.ones(2, 2, 4, dtype=m.float64)), lambda q, m: q[2](m.ones(2, 4)),
             lambda q, m: q[3](m.ones(2, 3), m.ones(3, 4)),
             lambda q, m: q[2](m.ones(2, 3), (m.ones(2, 4), m.ones(2, 5))),
             lambda q, m: q[4](m.ones(2, 3, dtype=m.float64))]
    for call in calls:
        with pytest.raises(RuntimeError) as want:
            call(tq, torch)
        with pytest.raises(RuntimeError, match=f"^{re.escape(str(want.value))}$"):
            call(gq, gt)
