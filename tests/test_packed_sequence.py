"""Packed sequences (``gt.nn.utils.rnn``: pack_padded_sequence, pad_packed_sequence,
pack_sequence) and the recurrent layers on them, beside torch: packed data, batch sizes and
orders, unpacked values and lengths, every layer's packed output, final states and all
gradients, and torch's errors."""

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import randn

torch = pytest.importorskip("torch")
R = torch.nn.utils.rnn
GR = gt.nn.utils.rnn
LENGTHS = [3, 5, 1, 3]


def _pack(lib, x, lengths, enforce_sorted, batch_first=False):
    mod = GR if lib is gt else R
    return mod.pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths, enforce_sorted", [(LENGTHS, False), ([5, 3, 3, 1], True), ([2, 2, 2, 2], False)])
def test_packing_and_unpacking_are_torchs_with_gradients(lengths, enforce_sorted, batch_first):
    got = []
    for lib, mod in ((gt, GR), (torch, R)):
        x = lib.tensor(randn(5, 4, 3) if not batch_first else randn(4, 5, 3), dtype=lib.float64, requires_grad=True)
        p = _pack(lib, x, lengths, enforce_sorted, batch_first)
        padded, lens = mod.pad_packed_sequence(p, batch_first=batch_first, padding_value=-7.0, total_length=6)
        ((padded * padded).sum() + (p.data ** 3).sum()).backward()
        got.append([p.data.detach().numpy(), p.batch_sizes.numpy(), padded.detach().numpy(), lens.numpy(),
                    x.grad.numpy()] + ([p.sorted_indices.numpy(), p.unsorted_indices.numpy()]
                                        if p.sorted_indices is not None else []))
    assert len(got[0]) == len(got[1])
    for a, b in zip(*got):
        np.testing.assert_array_equal(a, b)


def test_pack_sequence_of_a_list_is_torchs():
    seqs = [randn(4, 2), randn(2, 2, seed=1), randn(3, 2, seed=2)]
    g = GR.pack_sequence([gt.tensor(s) for s in seqs], enforce_sorted=False)
    t = R.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(g.data.numpy(), t.data.numpy())
    np.testing.assert_array_equal(g.batch_sizes.numpy(), t.batch_sizes.numpy())


@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_unpack_sequence_inverts_pack_sequence_with_gradients(enforce_sorted):
    seqs = [randn(4, 2), randn(3, 2, seed=1), randn(2, 2, seed=2)]
    outs = {}
    for lib, mod in ((gt, GR), (torch, R)):
        xs = [lib.tensor(s, requires_grad=True) for s in seqs]
        back = mod.unpack_sequence(mod.pack_sequence(xs, enforce_sorted=enforce_sorted))
        sum(((o * o).sum() * (i + 1) for i, o in enumerate(back)), lib.tensor(0.0)).backward()
        outs[lib.__name__] = ([o.detach().numpy() for o in back], [x.grad.numpy() for x in xs])
    for ours, theirs in zip(outs["gt"][0] + outs["gt"][1], outs["torch"][0] + outs["torch"][1]):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(TypeError, match="expected a PackedSequence, got list"):
        GR.unpack_sequence([gt.ones(2)])


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU", "LSTM projected"])
def test_recurrent_layers_on_packed_input_give_torchs_outputs_states_and_gradients(mode, bidirectional):
    cls, extra = mode.split()[0], {"proj_size": 3} if "projected" in mode else {}
    theirs = getattr(torch.nn, cls)(3, 5, num_layers=2, bidirectional=bidirectional, **extra).double()
    ours = getattr(gt.nn, cls)(3, 5, num_layers=2, bidirectional=bidirectional, **extra).to(gt.float64)
    ours.load_state_dict(theirs.state_dict())
    got = []
    for lib, net in ((gt, ours), (torch, theirs)):
        x = lib.tensor(randn(5, 4, 3), dtype=lib.float64, requires_grad=True)
        h0 = lib.tensor(randn(4 if bidirectional else 2, 4, 5, seed=3), dtype=lib.float64, requires_grad=True)
        hx = ((h0[..., :3] if extra else h0), h0 * 0.5) if cls == "LSTM" else h0
        out, h = net(_pack(lib, x, LENGTHS, enforce_sorted=False), hx)
        h = h if isinstance(h, tuple) else (h,)
        ((out.data ** 2).sum() + sum((s ** 3).sum() for s in h)).backward()
        assert type(out).__name__ == "PackedSequence"
        got.append([out.data.detach().numpy(), out.batch_sizes.numpy(), out.unsorted_indices.numpy()]
                   + [s.detach().numpy() for s in h] + [x.grad.numpy(), h0.grad.numpy()]
                   + [p.grad.numpy() for p in net.parameters()])
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_a_packed_batch_on_a_mesh_gives_the_single_device_results():
    got = []
    for devices in (1, 4):
        with use_mesh(devices):
            gt.manual_seed(0)
            net = gt.nn.GRU(3, 4, batch_first=True)
            x = gt.tensor(randn(4, 5, 3), dtype=gt.float32, requires_grad=True)
            out, h = net(GR.pack_padded_sequence(x.shard(0) if devices > 1 else x, LENGTHS, batch_first=True,
                                                 enforce_sorted=False))
            (out.data.sum() + h.sum()).backward()
            got.append((out.data.detach().numpy(), h.detach().numpy(), x.grad.numpy()))
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_errors_are_torchs():
    x = gt.zeros(5, 3, 2)
    with pytest.raises(RuntimeError, match="`lengths` array must be sorted in decreasing order when `enforce_sorted`"):
        GR.pack_padded_sequence(x, [2, 5, 1])
    with pytest.raises(RuntimeError, match="Length of all samples has to be greater than 0"):
        GR.pack_padded_sequence(x, [5, 2, 0])
    with pytest.raises(ValueError, match="expected 3 lengths"):
        GR.pack_padded_sequence(x, [5, 2])
    with pytest.raises(RuntimeError, match="a length of 6 exceeds the 5 steps"):
        GR.pack_padded_sequence(x, [6, 2, 1])
    packed = GR.pack_padded_sequence(x, [5, 2, 1])
    with pytest.raises(ValueError, match="Expected total_length to be at least the length of the longest sequence"):
        GR.pad_packed_sequence(packed, total_length=3)
    with pytest.raises(TypeError, match="this PackedSequence cannot be taken here"):
        gt.nn.GRUCell(2, 3)(packed)
