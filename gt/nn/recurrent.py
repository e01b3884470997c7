"""torch's recurrent layers: ``RNN`` (tanh or relu), ``LSTM`` and ``GRU``, multi-layer and
bidirectional, with torch's arguments, parameter names, shapes and initialisation, so a torch
state dict loads with ``load_state_dict`` and gives torch's outputs.

Each layer and direction projects the whole sequence's input in one product
(``x @ weight_ih.T + bias_ih``: (L, N, G*H)); only the hidden-to-hidden product and the gates
run in a Python loop over the time steps (gt/nn/rnn_cells.py), never over batch or features.
A ``PackedSequence`` input (gt/nn/packed_sequence.py) runs on its padded form, each sequence's
state held once its steps are over, and gives a ``PackedSequence`` output and the states after
each sequence's own last step, as torch's. ``LSTM(proj_size=P)`` projects each step's hidden state
to P features with ``weight_hr_l{k}`` (P, hidden), as torch's: the output, h_0/h_n and the next
step's hidden-to-hidden product have P features, the cell state keeps ``hidden``. Where gt
differs from torch: wrong shapes raise ValueError and a dtype other than the weights' TypeError
(torch: RuntimeError), as elsewhere in gt's nn; ``device`` moves the new layer there (made on
the CPU first); dropout masks come from gt's generator, so they differ from torch's under the same seed.
"""

from gt import dtypes
from gt.nn import functional as F
from gt.nn.module import Module
from gt.nn.packed_sequence import PackedSequence, pack_padded_sequence, pad_packed_sequence, step_masks
from gt.nn.parameter import Parameter
from gt.nn.rnn_cells import (GATES, as_input, check_dtype, check_mode, check_sizes, gru_step, lstm_step,
                             reset_uniform, rnn_step, warn_dropout)
from gt.ops import linalg
from gt.tensor import cat, empty, stack, where, zeros


class RNNBase(Module):
    """Parameters ``weight_ih_l{k}`` (G*hidden, input_size for k = 0 else D*hidden),
    ``weight_hh_l{k}`` (G*hidden, hidden), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*hidden,), and the
    same with ``_reverse`` for the backward direction when bidirectional (D = 2), registered in
    torch's order and drawn from U(-1/sqrt(hidden), 1/sqrt(hidden))."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if mode not in GATES:
            raise ValueError(f"{name}: unrecognized RNN mode {mode!r}, expected one of {sorted(GATES)}")
        _check_arguments(name, input_size, hidden_size, num_layers, bias, batch_first)
        _check_proj_size(name, mode, proj_size, hidden_size)
        warn_dropout(dropout, num_layers)
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        dtype = dtypes.default_float if dtype is None else dtype
        rows, directions, out = GATES[mode] * hidden_size, 2 if bidirectional else 1, self._out_size
        for layer in range(num_layers):
            cols = input_size if layer == 0 else directions * out
            for suffix in self._suffixes(layer):     # registered in torch's order, as its state dicts
                setattr(self, f"weight_ih{suffix}", Parameter(empty(rows, cols, dtype=dtype)))
                setattr(self, f"weight_hh{suffix}", Parameter(empty(rows, out, dtype=dtype)))
                if bias:
                    setattr(self, f"bias_ih{suffix}", Parameter(empty(rows, dtype=dtype)))
                    setattr(self, f"bias_hh{suffix}", Parameter(empty(rows, dtype=dtype)))
                if proj_size:
                    setattr(self, f"weight_hr{suffix}", Parameter(empty(proj_size, hidden_size, dtype=dtype)))
        self.reset_parameters()
        if device is not None:         # torch's factory argument; gt's tensors are made on the CPU first
            self.to(device)

    @property
    def _flat_weights_names(self):
        """The parameters' names, layer by layer and direction by direction, in torch's order."""
        kinds = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if self.bias else [])
        kinds += ["weight_hr"] if self.proj_size else []
        return [f"{kind}{suffix}" for layer in range(self.num_layers) for suffix in self._suffixes(layer)
                for kind in kinds]

    @property
    def _all_weights(self):
        """torch's nested names: one list of parameter names per layer and direction."""
        names = self._flat_weights_names
        per = len(names) // (self.num_layers * (2 if self.bidirectional else 1))
        return [names[i:i + per] for i in range(0, len(names), per)]

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        """The parameters as torch's ``all_weights``: one list per layer and direction."""
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    @property
    def _out_size(self):
        """Features of each step's output and hidden state: ``proj_size`` when projecting."""
        return self.proj_size or self.hidden_size

    def _suffixes(self, layer):
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def reset_parameters(self):
        reset_uniform(self, self.hidden_size)

    def flatten_parameters(self):
        """Nothing to do in gt (torch packs the weights into one buffer for cuDNN); kept so that
        code written for torch runs unchanged."""

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        for key, default in (("proj_size", 0), ("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False)):
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)}"
        return s

    def forward(self, input, hx=None):
        """input (L, N, input_size), (N, L, input_size) when batch_first, or unbatched (L, input_size);
        hx (D*num_layers, N, hidden) or unbatched (D*num_layers, hidden), zeros when None (a tuple
        (h_0, c_0) for LSTM) -> (output (L, N, D*hidden) laid out as the input, h_n shaped as hx).
        With ``proj_size`` P, output and h_0/h_n have P features where they have ``hidden`` above."""
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        x = as_input(input, name)
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {x.ndim}D tensor instead")
        check_dtype(name, x, self.weight_ih_l0)
        unbatched = x.ndim == 2
        x = x.unsqueeze(1) if unbatched else x.transpose(0, 1) if self.batch_first else x   # (L, N, H_in)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                             f"got {x.shape[-1]}")
        if x.shape[0] == 0:
            raise ValueError(f"{name}: Expected sequence length to be larger than 0, got an empty sequence")
        states = self._states(x, hx, unbatched)
        out, finals = self._layers(x, states)
        out = out.squeeze(1) if unbatched else out.transpose(0, 1) if self.batch_first else out
        finals = [f.squeeze(1) if unbatched else f for f in finals]
        return (out, tuple(finals)) if self.mode == "LSTM" else (out, finals[0])

    def _forward_packed(self, packed, hx):
        name = type(self).__name__
        if packed.data.ndim != 2:
            raise ValueError(f"{name}: packed input must have 2 dimensions, got {packed.data.ndim}")
        if packed.data.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                             f"got {packed.data.shape[-1]}")
        padded, lengths = pad_packed_sequence(packed)           # (T, B, H_in) in the caller's order
        # torch's LSTM skips its dtype check for packed data (its matmul refuses); RNN and GRU keep it
        check_dtype(name, padded, self.weight_ih_l0, matmul=self.mode == "LSTM")
        masks = step_masks(lengths, padded.shape[0])
        out, finals = self._layers(padded, self._states(padded, hx, False), masks)
        out = pack_padded_sequence(out, lengths, enforce_sorted=packed.sorted_indices is None)
        out = PackedSequence(out.data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        return (out, tuple(finals)) if self.mode == "LSTM" else (out, finals[0])

    def _states(self, x, hx, unbatched):
        """The initial states as (D*num_layers, N, features) tensors, h's features ``_out_size``, c's
        ``hidden_size``; errors as torch's for wrong shapes."""
        name, lstm = type(self).__name__, self.mode == "LSTM"
        first = (2 if self.bidirectional else 1) * self.num_layers, x.shape[1]
        shapes = [first + (self._out_size,), first + (self.hidden_size,)][:2 if lstm else 1]
        if hx is None:
            return [zeros(*shape, dtype=x.dtype) for shape in shapes]
        if lstm and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTM: hx must be a tuple (h_0, c_0) or None, got {type(hx).__name__}")
        states = [as_input(h, name) for h in (hx if lstm else (hx,))]
        for i, (h, shape) in enumerate(zip(states, shapes)):
            want = 2 if unbatched else 3
            if h.ndim != want:
                raise ValueError(f"{name}: For {'unbatched 2-D' if unbatched else 'batched 3-D'} input, hx should "
                                 f"also be {want}-D but got {h.ndim}-D tensor")
            check_dtype(name, h, self.weight_hh_l0, matmul=True)
            h = h.unsqueeze(1) if unbatched else h
            if tuple(h.shape) != shape:
                got = tuple(h.shape[::2]) if unbatched else tuple(h.shape)
                expected = (shape[0], shape[2]) if unbatched else shape
                raise ValueError(f"{name}: Expected hidden{f'[{i}]' if lstm else ''} size {expected}, got {got}")
            states[i] = h
        return states

    def _layers(self, x, states, masks=None):
        """Runs every layer and direction: (L, N, H_in) -> ((L, N, D*hidden), final states);
        ``masks``: one (N, 1) mask per step, where a sequence's state may change (packed input)."""
        directions = 2 if self.bidirectional else 1
        finals = [[] for _ in states]
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                x = F.dropout(x, self.dropout, True)
            outs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                p = self._parameters
                gi = linalg.Linear.apply(x, p[f"weight_ih{suffix}"], p.get(f"bias_ih{suffix}"))   # (L, N, G*H)
                k = layer * directions + d
                seq, carry = self._direction(gi, [s[k] for s in states], p[f"weight_hh{suffix}"],
                                             p.get(f"bias_hh{suffix}"), reverse=d == 1, masks=masks,
                                             w_hr=p.get(f"weight_hr{suffix}"))
                outs.append(seq)
                for final, c in zip(finals, carry):
                    final.append(c)
            x = outs[0] if directions == 1 else cat(outs, dim=-1)
        return x, [stack(f, dim=0) for f in finals]

    def _direction(self, gi, carry, w_hh, b_hh, reverse, masks=None, w_hr=None):
        """One direction over time: gi (L, N, G*H) -> (outputs (L, N, H or P) in time order, last
        states). With ``masks``, a sequence whose steps are over keeps its state (going backwards:
        keeps the initial state until its last step comes); ``w_hr`` (P, H) projects LSTM's h."""
        steps = _time_steps(gi)
        outs = [None] * len(steps)
        for t in (reversed(range(len(steps))) if reverse else range(len(steps))):
            if self.mode == "LSTM":
                new = lstm_step(steps[t], carry[0], carry[1], w_hh, b_hh)
                if w_hr is not None:
                    new = (linalg.Linear.apply(new[0], w_hr, None), new[1])
            elif self.mode == "GRU":
                new = (gru_step(steps[t], carry[0], w_hh, b_hh),)
            else:
                new = (rnn_step(steps[t], carry[0], w_hh, b_hh, self.mode),)
            if masks is not None:
                new = tuple(where(masks[t], n, c) for n, c in zip(new, carry))
            carry = new
            outs[t] = carry[0]
        return stack(outs, dim=0), carry


def _check_arguments(name, input_size, hidden_size, num_layers, bias, batch_first):
    """torch's checks of the layers' sizes and flags (the cells take ``input_size`` 0, the layers
    do not; ``num_layers`` True is 1, as torch's)."""
    check_sizes(name, input_size, hidden_size)
    if input_size == 0:
        raise ValueError(f"{name}: input_size must be greater than zero")
    if not isinstance(num_layers, int):
        raise TypeError(f"{name}: num_layers should be of type int, got: {type(num_layers).__name__} "
                        f"({num_layers!r})")
    if num_layers <= 0:
        raise ValueError(f"{name}: num_layers must be an int greater than zero, got {num_layers!r}")
    for what, flag in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name}: {what} should be of type bool, got: {type(flag).__name__}")


def _check_proj_size(name, mode, proj_size, hidden_size):
    """torch's checks of ``proj_size``: an int, 0 <= proj_size < hidden_size, and LSTM only."""
    if isinstance(proj_size, bool) or not isinstance(proj_size, int):
        raise TypeError(f"{name}: proj_size should be of type int, got: {type(proj_size).__name__} ({proj_size!r})")
    if proj_size < 0:
        raise ValueError(f"{name}: proj_size should be a positive integer or zero to disable projections, "
                         f"got {proj_size}")
    if proj_size >= hidden_size:
        raise ValueError(f"{name}: proj_size has to be smaller than hidden_size, got proj_size={proj_size} "
                         f"and hidden_size={hidden_size}")
    if proj_size and mode != "LSTM":
        raise ValueError(f"{name}: proj_size argument is only supported for LSTM, not RNN or GRU")


def _refuse_proj_size(proj_size):
    """torch's RNN and GRU take ``proj_size=`` only to name the mistake (any value, 0 too)."""
    if proj_size is not None:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")


def _time_steps(seq):
    """The (N, G*H) slices of seq (L, N, G*H) in time order, taken by halving: each slice's
    backward fills a zero array the size of what it was sliced from, so L slices of the whole
    sequence would cost O(L^2) in the backward; halving costs O(L log L)."""
    if seq.shape[0] == 1:
        return (seq[0],)
    half = seq.shape[0] // 2
    return _time_steps(seq[:half]) + _time_steps(seq[half:])


class RNN(RNNBase):
    """Elman RNN, ``h_t = act(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh)``, act ``'tanh'`` or
    ``'relu'``; ``dropout`` between layers while training. Returns (output, h_n).

        >>> rnn = nn.RNN(10, 20, num_layers=2, batch_first=True)
        >>> out, h_n = rnn(gt.randn(3, 5, 10))
        >>> out.shape, h_n.shape
        ((3, 5, 20), (2, 3, 20))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, *, proj_size=None):
        _refuse_proj_size(proj_size)
        mode = check_mode(nonlinearity)
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """LSTM with torch's gates (i, f, g, o); returns (output, (h_n, c_n)). With ``proj_size`` P > 0
    each step's h is ``(o * tanh(c)) @ weight_hr.T``: output and h_n have P features, c_n ``hidden``.

        >>> out, (h_n, c_n) = nn.LSTM(10, 20, bidirectional=True)(gt.randn(5, 3, 10))
        >>> out.shape, c_n.shape
        ((5, 3, 40), (2, 3, 20))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    """GRU with torch's gates (r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))); returns
    (output, h_n).

        >>> out, h_n = nn.GRU(10, 20, num_layers=2)(gt.randn(5, 10))    # unbatched (L, H_in)
        >>> out.shape, h_n.shape
        ((5, 20), (2, 20))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, proj_size=None):
        _refuse_proj_size(proj_size)
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)
