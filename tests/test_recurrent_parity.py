"""Recurrent layers and packed sequences beside torch, the parts tests/test_recurrent.py and
tests/test_packed_sequence.py leave out: ``all_weights`` and torch's weight-name lists, the
``device=`` argument of the layers and cells, torch's argument checks, packed inputs of the wrong
width or rank, and ``PackedSequence``'s conversions and ``invert_permutation``."""

import numpy as np
import pytest

import gt
from gt import nn
from helpers import randn, torch_or_skip

GR = gt.nn.utils.rnn
CONFIGS = [("LSTM", dict(num_layers=2, bidirectional=True, proj_size=2)), ("GRU", dict(bias=False)),
           ("RNN", dict(num_layers=3, nonlinearity="relu")), ("LSTM", dict(bidirectional=True))]


@pytest.mark.parametrize("cls, kwargs", CONFIGS)
def test_all_weights_and_weight_names_are_torchs(cls, kwargs):
    torch = torch_or_skip()
    ref = getattr(torch.nn, cls)(3, 4, **kwargs)
    mine = getattr(nn, cls)(3, 4, **kwargs)
    assert mine._flat_weights_names == ref._flat_weights_names
    assert mine._all_weights == ref._all_weights
    params = dict(mine.named_parameters())
    assert [[tuple(w.shape) for w in ws] for ws in mine.all_weights] == \
           [[tuple(w.shape) for w in ws] for ws in ref.all_weights]
    for names, ws in zip(mine._all_weights, mine.all_weights):
        assert all(w is params[n] for n, w in zip(names, ws))       # the parameters themselves
    assert all(w is params[n] for n, w in zip(mine._flat_weights_names, mine._flat_weights))


@pytest.mark.parametrize("cls, kwargs", [("LSTM", dict(proj_size=2, num_layers=2)), ("GRU", {}), ("RNN", {}),
                                         ("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", dict(nonlinearity="relu"))])
def test_the_device_argument_is_taken_as_torchs(cls, kwargs):
    torch = torch_or_skip()
    torch.manual_seed(0)
    ref = getattr(torch.nn, cls)(3, 4, **kwargs, device="cpu", dtype=torch.float64)
    mine = getattr(nn, cls)(3, 4, **kwargs, device="cpu", dtype=gt.float64)
    gt.manual_seed(5)
    same = getattr(nn, cls)(3, 4, **kwargs, device=gt.device("cpu"), dtype=gt.float64)
    gt.manual_seed(5)
    plain = getattr(nn, cls)(3, 4, **kwargs, dtype=gt.float64)
    for a, b in zip(same.parameters(), plain.parameters()):     # the same draws as without device=
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    mine.load_state_dict(ref.state_dict(), strict=True)
    x = randn(2, 3, seed=1) if cls.endswith("Cell") else randn(5, 2, 3, seed=1)
    got, want = mine(gt.tensor(x)), ref(torch.tensor(x))
    got, want = (got[0], want[0]) if isinstance(got, tuple) else (got, want)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs, error", [(dict(input_size=0), ValueError), (dict(bias=1), TypeError),
                                           (dict(batch_first=1), TypeError), (dict(num_layers=2.0), TypeError)])
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_the_layers_refuse_what_torch_refuses(cls, kwargs, error):
    torch = torch_or_skip()
    args = dict(input_size=3, hidden_size=4) | kwargs
    with pytest.raises(error):
        getattr(torch.nn, cls)(**args)
    with pytest.raises(error):
        getattr(nn, cls)(**args)


@pytest.mark.parametrize("cls", ["RNN", "GRU"])
def test_proj_size_is_refused_by_name_outside_lstm(cls):
    torch = torch_or_skip()
    for proj_size in (0, 2):
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
            getattr(torch.nn, cls)(3, 4, proj_size=proj_size)
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
            getattr(nn, cls)(3, 4, proj_size=proj_size)


def test_the_layers_take_what_torch_takes():
    torch = torch_or_skip()
    ref, mine = torch.nn.GRU(3, 4, num_layers=True), nn.GRU(3, 4, num_layers=True)     # True is 1
    assert len(list(mine.parameters())) == len(list(ref.parameters())) == 4
    cell = nn.GRUCell(0, 4)                                  # the cells take no input features, as torch's
    assert tuple(cell(gt.zeros(2, 0)).shape) == tuple(torch.nn.GRUCell(0, 4)(torch.zeros(2, 0)).shape) == (2, 4)


def test_packed_input_of_the_wrong_width_or_rank_is_refused():
    torch = torch_or_skip()
    x = randn(4, 2, 2, seed=3).astype(np.float32)
    for module, packed in [(nn.GRU(3, 4), GR.pack_padded_sequence(gt.tensor(x), [4, 2])),
                           (nn.LSTM(1, 4), GR.pack_padded_sequence(gt.tensor(x.reshape(4, 2, 2, 1)), [4, 2])),
                           (nn.RNN(2, 4), GR.PackedSequence(gt.ones(5), gt.tensor([3, 2])))]:
        ref = getattr(torch.nn, type(module).__name__)(module.input_size, 4)
        tpacked = torch.nn.utils.rnn.PackedSequence(torch.tensor(packed.data.numpy()),
                                                    torch.tensor(packed.batch_sizes.numpy()))
        with pytest.raises(RuntimeError):
            ref(tpacked)
        with pytest.raises(ValueError, match="input.size\\(-1\\) must be equal to input_size|must have 2 dimensions"):
            module(packed)


def test_packed_sequence_conversions_and_invert_permutation_are_torchs():
    torch = torch_or_skip()
    x, lengths = randn(4, 3, 2, seed=4), [2, 4, 1]
    ref = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), lengths, enforce_sorted=False)
    mine = GR.pack_padded_sequence(gt.tensor(x), lengths, enforce_sorted=False)
    for method in ("half", "long", "int", "short", "char", "byte", "float", "double", "cpu"):
        got, want = getattr(mine, method)(), getattr(ref, method)()
        assert isinstance(got, GR.PackedSequence)
        assert str(got.data.dtype).split(".")[-1] == str(want.data.dtype).split(".")[-1], method
        np.testing.assert_array_equal(got.data.float().numpy(), want.data.float().numpy())
        np.testing.assert_array_equal(got.sorted_indices.numpy(), want.sorted_indices.numpy())
        np.testing.assert_array_equal(got.unsorted_indices.numpy(), want.unsorted_indices.numpy())
    assert mine.is_pinned() is ref.is_pinned() is False and mine.is_cuda is ref.is_cuda is False
    perm = [3, 0, 4, 1, 2]
    assert GR.invert_permutation(gt.tensor(perm)).tolist() == \
           torch.nn.utils.rnn.invert_permutation(torch.tensor(perm)).tolist()
    assert GR.invert_permutation(None) is None


DTYPE_MISMATCHES = [   # (class, which one is float32: the input or the initial state, packed input, error)
    ("GRU", "state", False, RuntimeError), ("LSTM", "state", False, RuntimeError),
    ("LSTM", "input", True, RuntimeError), ("RNN", "input", True, ValueError), ("GRU", "input", True, ValueError),
    ("GRU", "input", False, ValueError), ("GRUCell", "input", False, RuntimeError),
    ("LSTMCell", "state", False, RuntimeError), ("RNNCell", "input", False, RuntimeError),
]


@pytest.mark.parametrize("cls, which, packed, error", DTYPE_MISMATCHES)
def test_float32_into_float64_recurrent_layer_raises_torchs_class(cls, which, packed, error):
    """A float32 initial state, cell input or LSTM's packed input beside float64 weights: torch's
    matmul refuses it with RuntimeError; a layer's own input check (GRU/RNN packed too) raises ValueError."""
    torch = torch_or_skip()

    def call(lib):
        mod = getattr(lib.nn, cls)(2, 3).double()
        cell, lstm = cls.endswith("Cell"), cls.startswith("LSTM")
        x = lib.randn(*((1, 2) if cell else (2, 1, 2)), dtype=lib.float32 if which == "input" else lib.float64)
        h = lib.randn(*((1, 3) if cell else (1, 1, 3)), dtype=lib.float32 if which == "state" else lib.float64)
        if packed:
            x = lib.nn.utils.rnn.pack_padded_sequence(x, lib.tensor([2]))
        return mod(x, (h, h) if lstm else h)
    with pytest.raises(error):
        call(torch)
    with pytest.raises(error):
        call(gt)
