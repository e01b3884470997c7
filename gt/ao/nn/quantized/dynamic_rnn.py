"""torch.ao.nn.quantized.dynamic's ``LSTM`` and ``GRU``: the layers of ``torch.quantized_lstm`` /
``quantized_gru`` (``use_dynamic=True``), which ``quantize_dynamic`` puts in place of ``nn.LSTM`` and
``nn.GRU``. Each layer and direction projects its whole input sequence in one dynamically quantized
product (one scale and zero point for all its steps), then steps through time with a product of the
hidden state per step (gt/ao/nn/quantized/dynamic_rnn_cells.py's gate math, torch's order); a
packed input steps over its packed rows, each step quantizing the hidden states of the sequences
still running, as torch's. State dict: torch's ``_all_weight_values.{k}.param``, one per layer and
direction (gt/ao/nn/quantized/dynamic_rnn_state.py).

On the torch engine the outputs are torch's bits. The numpy engine's sigmoid and tanh differ from
torch's in the last bit now and then; where such a bit of h moves one of the next step's integers
(a value at a rounding tie), outputs differ by one quantization step from there on (~1e-3; seen in 2
of 20 runs of 20 steps, 64 hidden units).
"""

import functools
import warnings

from gt import dtypes
from gt.ao.nn.quantized import dynamic_rnn_state as rs
from gt.ao.nn.quantized.dynamic_products import weight_observer
from gt.ao.nn.quantized.dynamic_rnn_cells import (check_float, check_weight_dtype, gru_cell, lstm_cell, pack,
                                                  product)
from gt.nn import functional as F
from gt.nn.containers import ModuleList
from gt.nn.module import Module
from gt.nn.packed_sequence import PackedSequence
from gt.tensor import cat, creation, stack

_KINDS = {dtypes.qint8: "quantized_dynamic", dtypes.float16: "quantized_fp16"}


class PackedParameter(Module):
    """One layer direction's ``CellParams`` (``param``), saved under ``param`` as torch's module of
    this name saves its TorchScript object; ``shapes``: its weights' (ih, hh), what a load checks."""

    def __init__(self, param, shapes, dtype):
        super().__init__()
        self.param, self._shapes, self._dtype = param, shapes, dtype

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        ih, hh = self.param.packed_ih, self.param.packed_hh
        destination[prefix + "param"] = rs.CellParams(self.param.kind, rs.saved_pair(ih.weight, ih.bias, keep_vars),
                                                      rs.saved_pair(hh.weight, hh.bias, keep_vars),
                                                      self.param.reduce_range)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + "param"
        super()._load_from_state_dict({k: v for k, v in state_dict.items() if k != key}, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys, error_msgs)
        if key not in state_dict:
            missing_keys.append(key)
            return
        try:
            (ih, hh), reduce_range = rs.read_cell(state_dict[key], self._dtype, self._shapes)
        except ValueError as exc:
            error_msgs.append(f"{key}: {exc}")
            return
        if not error_msgs:
            self.param = rs.CellParams(_KINDS[self._dtype], rs.LinearPackedParams(*ih), rs.LinearPackedParams(*hh),
                                       reduce_range)


class RNNBase(Module):
    """The layers and directions of a dynamically quantized LSTM or GRU, with torch's arguments;
    weights qint8 (``dtype=gt.qint8``) or float16 values (``gt.float16``), each layer direction one
    ``PackedParameter`` of ``_all_weight_values``."""

    _version = 2      # torch's: its layers compute with reduce_range from version 2

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=dtypes.qint8):
        super().__init__()
        if mode not in ("LSTM", "GRU"):
            raise ValueError("Unrecognized RNN mode: " + mode)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an element "
                             "being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                          f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        self.dtype, self.version, self.training = check_weight_dtype(dtype), 2, False
        rows = (4 if mode == "LSTM" else 3) * hidden_size
        zeros = (lambda *s: creation.zeros(s, dtype=dtypes.float32))
        cells = []
        for layer in range(num_layers):
            for _ in range(self._directions):
                width = input_size if layer == 0 else hidden_size * self._directions
                cells.append(self._cell((zeros(rows, width), zeros(rows)), (zeros(rows, hidden_size), zeros(rows))))
        self._all_weight_values = ModuleList(cells)

    @property
    def _directions(self):
        return 2 if self.bidirectional else 1

    def _cell(self, ih, hh, make=None):
        """A ``PackedParameter`` of float (weight, bias) pairs, packed as this layer's dtype wants (qint8:
        by observers of ``make``)."""
        ih, hh = pack(*ih, self.dtype, make), pack(*hh, self.dtype, make)
        param = rs.CellParams(_KINDS[self.dtype], rs.LinearPackedParams(*ih), rs.LinearPackedParams(*hh))
        return PackedParameter(param, (tuple(ih[0].shape), tuple(hh[0].shape)), self.dtype)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The dynamically quantized form of the float ``nn.LSTM``/``nn.GRU`` ``mod``, its weights
        quantized (or rounded to float16) now, as ``mod.qconfig``'s weight observer asks (torch's;
        ``default_dynamic_qconfig``'s where the qconfig is None). As torch's, an ``LSTM(proj_size>0)``
        becomes a layer without its projection (``weight_hr`` dropped, its (4*hidden, proj_size)
        ``weight_hh`` kept) whose forward raises fbgemm's error: the hidden state is wider than that weight."""
        if type(mod).__name__ not in ("LSTM", "GRU"):
            raise AssertionError("nn.quantized.dynamic.RNNBase.from_float only works for nn.LSTM and nn.GRU")
        make, dtype = weight_observer(mod)
        dtype = check_weight_dtype(dtype)
        new = (LSTM if mod.mode == "LSTM" else GRU)(mod.input_size, mod.hidden_size, mod.num_layers, mod.bias,
                                                    mod.batch_first, mod.dropout, mod.bidirectional, dtype)
        if not mod.bias:
            raise AssertionError("mod.bias must be True")
        cells = []
        for layer in range(new.num_layers):
            for suffix in ("", "_reverse")[:new._directions]:
                p = {name: getattr(mod, f"{name}_l{layer}{suffix}") for name in
                     ("weight_ih", "bias_ih", "weight_hh", "bias_hh")}
                cells.append(new._cell((p["weight_ih"], p["bias_ih"]), (p["weight_hh"], p["bias_hh"]), make))
        new._all_weight_values = ModuleList(cells)
        return new

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # torch's: the state dict's version (None where it has none) becomes the layer's; the cells
        # themselves say how they compute (reduce_range off in those of version 1)
        self.version = local_metadata.get("version", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _weight_bias(self):
        out = {"weight": {}, "bias": {}}
        for k, packed in enumerate(self._all_weight_values):
            name = f"l{k // self._directions}{'_reverse' if k % self._directions else ''}"
            for which, pair in (("ih", packed.param.packed_ih), ("hh", packed.param.packed_hh)):
                out["weight"][f"weight_{which}_{name}"], out["bias"][f"bias_{which}_{name}"] = pair.unpack()
        return out

    def get_weight(self):
        return self._weight_bias()["weight"]

    def get_bias(self):
        return self._weight_bias()["bias"]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        for key, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0),
                             ("bidirectional", False)):
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)}"
        return s

    def __repr__(self):      # torch's: the packed parameters are not shown
        return f"DynamicQuantized{self.mode}({self.extra_repr()})"

    def forward(self, input, hx=None):
        """input (L, N, input_size) float32 ((N, L, input_size) when batch_first) or a PackedSequence;
        hx (D*num_layers, N, hidden) or None (zeros; for LSTM the pair (h_0, c_0)) -> (output
        (L, N, D*hidden) laid out as the input, or packed as it; h_n shaped as hx)."""
        packed = isinstance(input, PackedSequence)
        x = input.data if packed else input
        if x.ndim != (2 if packed else 3):
            raise RuntimeError(f"input must have {2 if packed else 3} dimensions, got {x.ndim}")
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                               f"{x.shape[-1]}")
        sizes = [int(b) for b in input.batch_sizes.tolist()] if packed else None
        batch = sizes[0] if packed else x.shape[0 if self.batch_first else 1]
        expected = (self.num_layers * self._directions, batch, self.hidden_size)
        states = self._states(hx, expected, x, input.sorted_indices if packed else None)
        for t in [x, *states]:
            check_float(t)
        if not packed and self.batch_first:
            x = x.transpose(0, 1)
        out, finals = self._layers(x, states, sizes)
        if packed:
            out = PackedSequence(out, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
            if input.unsorted_indices is not None:
                finals = [f.index_select(1, input.unsorted_indices) for f in finals]
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, (tuple(finals) if self.mode == "LSTM" else finals[0])

    def _states(self, hx, expected, x, sorted_indices):
        """The initial states (one tensor, two for LSTM), in the packed order; torch's checks."""
        lstm = self.mode == "LSTM"
        if hx is None:
            return [creation.zeros(expected, dtype=x.dtype)] * (2 if lstm else 1)
        states = list(hx) if lstm else [hx]
        for i, h in enumerate(states):
            if sorted_indices is not None:
                states[i] = h = h.index_select(1, sorted_indices)
            if tuple(h.shape) != expected:
                label = f"hidden[{i}]" if lstm else "hidden"
                raise RuntimeError(f"Expected {label} size {expected}, got {list(h.shape)}")
        return states

    def _layers(self, x, states, sizes):
        """Every layer and direction: x (L, N, in) or packed rows (T, in) -> (output, final states)."""
        finals = [[] for _ in states]
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                x = F.dropout(x, self.dropout, True)
            outs = []
            for d in range(self._directions):
                k = layer * self._directions + d
                param = self._all_weight_values[k].param
                # the whole sequence's projection
                gi = product(x, param.packed_ih.unpack(), self.dtype, param.reduce_range)
                state = [s[k] for s in states]
                run = _packed if sizes is not None else _padded
                step = functools.partial(self._step, reduce_range=param.reduce_range)
                seq, state = run(step, gi, state, param.packed_hh.unpack(), d == 1, sizes)
                outs.append(seq)
                for final, s in zip(finals, state):
                    final.append(s)
            x = outs[0] if len(outs) == 1 else cat(outs, dim=-1)
        return x, [stack(f, dim=0) for f in finals]

    def _step(self, gi, state, pair_hh, reduce_range=True):
        if self.mode == "LSTM":
            return list(lstm_cell(gi, state, pair_hh, self.dtype, reduce_range))
        return [gru_cell(gi, state[0], pair_hh, self.dtype, reduce_range)]


def _padded(step, gi, state, pair_hh, reverse, sizes=None):
    """One direction over (L, N, G*H) projections: (outputs (L, N, H) in time order, last state)."""
    outs = [None] * gi.shape[0]
    for t in (reversed(range(gi.shape[0])) if reverse else range(gi.shape[0])):
        state = step(gi[t], state, pair_hh)
        outs[t] = state[0]
    return stack(outs, dim=0), state


def _packed(step, gi, initial, pair_hh, reverse, sizes):
    """One direction over packed projections (T, G*H), ``sizes`` the batch size of each step: the
    rows of the sequences still running step (torch's PackedLayer; going backwards, a sequence's
    initial state joins at its last step) -> (outputs (T, H), last states (N, H))."""
    starts = [0]
    for b in sizes:
        starts.append(starts[-1] + b)
    outs = [None] * len(sizes)
    if not reverse:
        state, done = list(initial), []
        for t, b in enumerate(sizes):
            if b < state[0].shape[0]:
                done.append([s[b:] for s in state])
                state = [s[:b] for s in state]
            state = step(gi[starts[t]:starts[t + 1]], state, pair_hh)
            outs[t] = state[0]
        pieces = [state] + done[::-1]
        state = [cat([p[i] for p in pieces], dim=0) for i in range(len(state))]
    else:
        state = [s[:sizes[-1]] for s in initial]
        for t in reversed(range(len(sizes))):
            b, have = sizes[t], state[0].shape[0]
            if b > have:
                state = [cat([s, s0[have:b]], dim=0) for s, s0 in zip(state, initial)]
            state = step(gi[starts[t]:starts[t + 1]], state, pair_hh)
            outs[t] = state[0]
    return cat(outs, dim=0), state


class LSTM(RNNBase):
    """A dynamically quantized ``nn.LSTM`` (torch's arguments; see ``RNNBase.forward``)."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """A dynamically quantized ``nn.GRU`` (torch's arguments; see ``RNNBase.forward``)."""

    def __init__(self, *args, **kwargs):
        super().__init__("GRU", *args, **kwargs)
