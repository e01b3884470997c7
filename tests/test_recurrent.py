"""Recurrent layers (gt/nn/recurrent.py, gt/nn/rnn_cells.py) beside torch: with a torch module's
state dict loaded, outputs, final states and the gradients of the input, the initial states and
every parameter equal torch's (RNN tanh/relu, LSTM, GRU; 1 and 2 layers, bidirectional,
batch_first, unbatched, without bias; the cells alone); dropout between layers; a tiny sequence
task trains; the errors."""

import warnings

import numpy as np
import pytest

import gt
from gt import nn
from helpers import randn, torch_or_skip

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-5)}
L, N, H_IN, H = 4, 2, 3, 4
MODES = {"rnn_tanh": ("RNN", {}), "rnn_relu": ("RNN", {"nonlinearity": "relu"}), "lstm": ("LSTM", {}),
         "lstm projected": ("LSTM", {"proj_size": 2}), "gru": ("GRU", {})}
CONFIGS = {"1 layer": {}, "2 layers bidirectional": {"num_layers": 2, "bidirectional": True},
           "batch_first": {"batch_first": True}, "unbatched": {}, "no bias": {"bias": False, "num_layers": 2}}


@pytest.fixture(autouse=True, scope="module")
def _torch_without_onednn():
    """torch's float32 LSTM on CPU goes through oneDNN, which takes ~2 s per call on small shapes;
    its plain kernels give the same values at 1/100 of the time."""
    try:
        import torch
    except ImportError:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # a notice about Intel GPUs, irrelevant here
        flags = torch.backends.mkldnn.flags(enabled=False)
        flags.__enter__()
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        flags.__exit__(None, None, None)


def _pair(cls, dtype, *args, **kwargs):
    """A torch module (seeded) and a gt one with its state dict loaded strictly."""
    torch = torch_or_skip()
    torch.manual_seed(0)
    ref = getattr(torch.nn, cls)(*args, **kwargs).to(getattr(torch, dtype))
    mine = getattr(nn, cls)(*args, **kwargs, dtype=getattr(gt, dtype))
    assert [n for n, _ in mine.named_parameters()] == [n for n, _ in ref.named_parameters()]
    mine.load_state_dict(ref.state_dict(), strict=True)
    return mine, ref


def _close(mine, theirs, dtype, what):
    assert mine.dtype == getattr(gt, dtype), what
    assert tuple(mine.shape) == tuple(theirs.shape), what
    np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), **TOL[dtype], err_msg=what)


def _flat(out):
    """(output, h) or (output, (h, c)) or h or (h, c) as a flat list."""
    if not isinstance(out, (tuple, list)):
        return [out]
    return [t for o in out for t in _flat(o)]


def _compare(mine, ref, dtype, inputs, pack):
    """Runs both modules on the numpy ``inputs`` (``pack`` makes the call's arguments from the
    tensors), backpropagates the same random upstream gradients and compares everything."""
    torch = torch_or_skip()
    ours = [gt.tensor(a, dtype=getattr(gt, dtype), requires_grad=True) for a in inputs]
    theirs = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in inputs]
    out_g, out_t = _flat(mine(*pack(ours))), _flat(ref(*pack(theirs)))
    assert len(out_g) == len(out_t)
    ups = [randn(*o.shape, seed=20 + i) for i, o in enumerate(out_t)]
    sum((o * gt.tensor(u, dtype=o.dtype)).sum() for o, u in zip(out_g, ups)).backward()
    sum((o * torch.tensor(u, dtype=o.dtype)).sum() for o, u in zip(out_t, ups)).backward()
    for i, (a, b) in enumerate(zip(out_g, out_t)):
        _close(a, b, dtype, f"output {i}")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        _close(a.grad, b.grad, dtype, f"gradient of input {i}")
    for name, p in ref.named_parameters():
        _close(getattr(mine, name).grad, p.grad, dtype, f"gradient of {name}")


# every mode and configuration in float64; float32 on the configuration that runs every path
LAYER_CASES = [(m, c, "float64") for m in MODES for c in CONFIGS] + \
              [(m, "2 layers bidirectional", "float32") for m in MODES]


@pytest.mark.parametrize("mode, config, dtype", LAYER_CASES)
def test_layers_match_torch(mode, config, dtype):
    cls, kwargs = MODES[mode]
    kwargs = {**kwargs, **CONFIGS[config]}
    mine, ref = _pair(cls, dtype, H_IN, H, **kwargs)
    states = (2 if kwargs.get("bidirectional") else 1) * kwargs.get("num_layers", 1)
    unbatched, lstm = config == "unbatched", cls == "LSTM"
    x_shape = (L, H_IN) if unbatched else (N, L, H_IN) if kwargs.get("batch_first") else (L, N, H_IN)
    lead = (states,) if unbatched else (states, N)
    h_shape, c_shape = lead + (kwargs.get("proj_size") or H,), lead + (H,)    # projected: h has proj_size
    inputs = [randn(*x_shape, seed=1), randn(*h_shape, seed=2)] + ([randn(*c_shape, seed=3)] if lstm else [])
    _compare(mine, ref, dtype, inputs, lambda t: (t[0], (t[1], t[2]) if lstm else t[1]))


@pytest.mark.parametrize("mode", MODES)
def test_initial_states_default_to_zeros_as_torchs(mode):
    cls, kwargs = MODES[mode]
    mine, ref = _pair(cls, "float64", H_IN, H, num_layers=2, bidirectional=True, **kwargs)
    _compare(mine, ref, "float64", [randn(L, N, H_IN, seed=4)], lambda t: (t[0],))
    _compare(mine, ref, "float64", [randn(L, H_IN, seed=4)], lambda t: (t[0],))     # unbatched
    _compare(mine, ref, "float64", [randn(L, 0, H_IN, seed=4)], lambda t: (t[0],))  # an empty batch
    mine.flatten_parameters()   # a no-op, as on torch's CPU


CELLS = {"rnn_tanh": ("RNNCell", {}), "rnn_relu": ("RNNCell", {"nonlinearity": "relu"}), "lstm": ("LSTMCell", {}),
         "gru": ("GRUCell", {}), "gru no bias": ("GRUCell", {"bias": False})}


@pytest.mark.parametrize("cell, batched, dtype", [(c, b, "float64") for c in CELLS for b in (True, False)] +
                         [(c, True, "float32") for c in CELLS])
def test_cells_match_torch(cell, batched, dtype):
    cls, kwargs = CELLS[cell]
    mine, ref = _pair(cls, dtype, H_IN, H, **kwargs)
    lead, lstm = (N,) if batched else (), cls == "LSTMCell"
    inputs = [randn(*lead, H_IN, seed=5), randn(*lead, H, seed=6)] + ([randn(*lead, H, seed=7)] if lstm else [])
    _compare(mine, ref, dtype, inputs, lambda t: (t[0], (t[1], t[2]) if lstm else t[1]))
    _compare(mine, ref, dtype, inputs[:1], lambda t: (t[0],))   # hx None: zeros


def test_parameters_are_torchs_shapes_and_initialisation():
    torch = torch_or_skip()
    mine = nn.GRU(H_IN, 16, num_layers=2, bidirectional=True)
    ref = torch.nn.GRU(H_IN, 16, num_layers=2, bidirectional=True)
    assert {k: tuple(v.shape) for k, v in mine.state_dict().items()} == \
           {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    values = np.concatenate([p.numpy().ravel() for p in mine.parameters()])
    assert values.dtype == np.float32 and np.abs(values).max() <= 0.25 and values.std() > 0.1   # U(-1/4, 1/4)
    for m, r in [(mine, ref), (nn.RNN(3, 4, 2, "relu", False, True, 0.5, True), torch.nn.RNN(3, 4, 2, "relu", False,
                                                                                              True, 0.5, True)),
                 (nn.LSTMCell(3, 4, bias=False), torch.nn.LSTMCell(3, 4, bias=False)),
                 (nn.LSTM(3, 4, 2, proj_size=3, bidirectional=True), torch.nn.LSTM(3, 4, 2, proj_size=3,
                                                                                    bidirectional=True)),
                 (nn.RNNCell(3, 4, nonlinearity="relu"), torch.nn.RNNCell(3, 4, nonlinearity="relu"))]:
        assert m.extra_repr() == r.extra_repr()


def test_projected_lstm_has_torchs_parameters_in_torchs_order():
    torch = torch_or_skip()
    mine = nn.LSTM(3, 5, num_layers=2, proj_size=2, bidirectional=True, bias=False)
    ref = torch.nn.LSTM(3, 5, num_layers=2, proj_size=2, bidirectional=True, bias=False)
    assert [(k, tuple(v.shape)) for k, v in mine.named_parameters()] == \
           [(k, tuple(v.shape)) for k, v in ref.named_parameters()]
    assert mine.weight_hr_l1_reverse.shape == (2, 5) and mine.weight_ih_l1.shape == (20, 4)
    values = np.concatenate([p.numpy().ravel() for p in mine.parameters()])
    assert np.abs(values).max() <= 1 / np.sqrt(5) and values.std() > 0.2          # U(-1/sqrt(5), 1/sqrt(5))


def test_dropout_acts_between_layers_while_training_only():
    torch = torch_or_skip()
    mine, ref = _pair("LSTM", "float64", H_IN, H, num_layers=2, dropout=0.5)
    x = gt.tensor(randn(L, N, H_IN, seed=8))
    gt.manual_seed(0)
    a, b = mine(x)[0].numpy(), mine(x)[0].numpy()
    assert not np.allclose(a, b)                    # a fresh mask each call
    mine.eval(), ref.eval()
    np.testing.assert_allclose(mine(x)[0].numpy(), ref(torch.tensor(x.numpy()))[0].detach().numpy(), rtol=1e-10)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        one = nn.GRU(H_IN, H, dropout=0.5, dtype=gt.float64)
    np.testing.assert_allclose(one(x)[0].numpy(), one.eval()(x)[0].numpy())   # nothing after the last layer


def test_a_tiny_sequence_task_trains():
    gt.manual_seed(0)
    rnn, head = nn.GRU(1, 8, batch_first=True), nn.Linear(8, 1)
    opt = gt.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=0.05)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 4, 1))
    xs, target = gt.tensor(x, dtype=gt.float32), gt.tensor(x.sum(axis=1), dtype=gt.float32)   # the running sum
    losses = []
    for _ in range(6):
        out, h_n = rnn(xs)
        loss = ((head(h_n[0]) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_wrong_inputs_are_named():
    lstm, gru = nn.LSTM(H_IN, H, num_layers=2), nn.GRU(H_IN, H)
    with pytest.raises(ValueError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 5"):
        lstm(gt.zeros(L, N, 5))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        gru(gt.zeros(1, L, N, H_IN))
    with pytest.raises(ValueError, match=r"Expected hidden size \(1, 2, 4\), got \(1, 3, 4\)"):
        gru(gt.zeros(L, N, H_IN), gt.zeros(1, 3, H))
    with pytest.raises(ValueError, match=r"Expected hidden\[1\] size \(2, 2, 4\), got \(2, 2, 5\)"):
        lstm(gt.zeros(L, N, H_IN), (gt.zeros(2, N, H), gt.zeros(2, N, 5)))
    with pytest.raises(ValueError, match="For unbatched 2-D input, hx should also be 2-D but got 3-D"):
        gru(gt.zeros(L, H_IN), gt.zeros(1, 1, H))
    with pytest.raises(ValueError, match="For batched 3-D input, hx should also be 3-D but got 2-D"):
        gru(gt.zeros(L, N, H_IN), gt.zeros(1, H))
    with pytest.raises(TypeError, match="hx must be a tuple \\(h_0, c_0\\)"):
        lstm(gt.zeros(L, N, H_IN), gt.zeros(2, N, H))
    with pytest.raises(ValueError, match="sequence length to be larger than 0"):
        gru(gt.zeros(0, N, H_IN))
    with pytest.raises(TypeError, match="input must have the dtype gt.float32 of the weights, got gt.float64"):
        gru(gt.zeros(L, N, H_IN, dtype=gt.float64))


def test_cells_name_wrong_inputs():
    cell = nn.GRUCell(H_IN, H)
    with pytest.raises(ValueError, match="input has inconsistent input_size: got 5 expected 3"):
        cell(gt.zeros(N, 5))
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D, got 3D"):
        cell(gt.zeros(1, N, H_IN))
    with pytest.raises(ValueError, match="Input batch size 2 doesn't match hidden0 batch size 3"):
        cell(gt.zeros(N, H_IN), gt.zeros(3, H))
    with pytest.raises(ValueError, match="hidden1 has inconsistent hidden_size: got 5, expected 4"):
        nn.LSTMCell(H_IN, H)(gt.zeros(N, H_IN), (gt.zeros(N, H), gt.zeros(N, 5)))
    with pytest.raises(ValueError, match="hx should also be 1-D but got 2-D"):
        cell(gt.zeros(H_IN), gt.zeros(1, H))


def test_unsupported_options_and_bad_arguments():
    torch = torch_or_skip()
    for proj_size, error, words in [(-1, ValueError, "proj_size should be a positive integer or zero"),
                                    (H, ValueError, "proj_size has to be smaller than hidden_size, got proj_size=4"),
                                    (1.5, TypeError, "proj_size should be of type int, got: float"),
                                    (True, TypeError, "proj_size should be of type int, got: bool")]:
        with pytest.raises(error, match=words):
            nn.LSTM(H_IN, H, proj_size=proj_size)
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
        nn.RNNBase("GRU", H_IN, H, proj_size=2)
    with pytest.raises(ValueError, match=r"Expected hidden\[0\] size \(1, 2, 2\), got \(1, 2, 4\)"):
        nn.LSTM(H_IN, H, proj_size=2)(gt.zeros(L, N, H_IN), (gt.zeros(1, N, H), gt.zeros(1, N, H)))
    with pytest.raises(ValueError, match=r"Expected hidden\[1\] size \(1, 2, 4\), got \(1, 2, 2\)"):
        nn.LSTM(H_IN, H, proj_size=2)(gt.zeros(L, N, H_IN), (gt.zeros(1, N, 2), gt.zeros(1, N, 2)))
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.zeros(L, N, H_IN), [L, 2])
    with pytest.raises(TypeError, match="this PackedSequence cannot be taken here: the layers"):
        nn.LSTM(H_IN, H)(packed)              # torch's, not gt's
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        nn.RNN(H_IN, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        nn.RNNCell(H_IN, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size must be greater than zero, got 0"):
        nn.GRU(H_IN, 0)
    with pytest.raises(TypeError, match="hidden_size should be of type int, got: float"):
        nn.LSTMCell(H_IN, 4.0)
    with pytest.raises(ValueError, match="num_layers must be an int greater than zero, got 0"):
        nn.RNN(H_IN, H, num_layers=0)
    with pytest.raises(ValueError, match="dropout should be a number in range \\[0, 1\\]"):
        nn.GRU(H_IN, H, num_layers=2, dropout=1.5)


def test_the_base_classes_are_torchs():
    torch = torch_or_skip()
    mine, ref = _pair("GRU", "float64", H_IN, H, num_layers=2)
    base = nn.RNNBase("GRU", H_IN, H, num_layers=2, dtype=gt.float64)   # torch's RNNBase(mode, ...)
    base.load_state_dict(ref.state_dict(), strict=True)
    x = randn(L, N, H_IN, seed=9)
    np.testing.assert_allclose(base(gt.tensor(x))[0].numpy(), ref(torch.tensor(x))[0].detach().numpy(), rtol=1e-10)
    assert isinstance(mine, nn.RNNBase) and isinstance(nn.LSTM(1, 2), nn.RNNBase)
    assert all(isinstance(c(1, 2), nn.RNNCellBase) for c in (nn.RNNCell, nn.LSTMCell, nn.GRUCell))
    cell = nn.RNNCellBase(H_IN, H, True, 3)                          # torch's (input, hidden, bias, num_chunks)
    assert [tuple(p.shape) for p in cell.parameters()] == [(12, 3), (12, 4), (12,), (12,)]
    with pytest.raises(ValueError, match="unrecognized RNN mode 'LSTMX'"):
        nn.RNNBase("LSTMX", H_IN, H)
    with pytest.raises(TypeError, match="input must have the dtype gt.float32 of the weights, got gt.float64"):
        nn.GRUCell(H_IN, H)(gt.zeros(N, H_IN), gt.zeros(N, H, dtype=gt.float64))
