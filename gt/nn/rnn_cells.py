"""One time step of torch's recurrent layers (``RNNCell``, ``LSTMCell``, ``GRUCell``) and the step
functions that ``nn.RNN``/``LSTM``/``GRU`` (gt/nn/recurrent.py) run over a sequence.

Each step takes ``gi``, the input's projection ``x @ weight_ih.T + bias_ih`` already made (the
layers make it for the whole sequence in one product), so a step costs one (N, H) x (H, G*H)
product; gates are chunks of the last axis in torch's order (LSTM i, f, g, o; GRU r, z, n).
"""

import math
import warnings

from gt import dtypes
from gt.nn import init
from gt.nn.functional import _tensor
from gt.nn.module import Module
from gt.nn.parameter import Parameter
from gt.ops import linalg
from gt.tensor import Tensor, empty, zeros

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def rnn_step(gi, h, w_hh, b_hh, mode="RNN_TANH"):
    """h' = act(gi + h @ w_hh.T + b_hh), act tanh or relu: (N, H) -> (N, H)."""
    pre = gi + linalg.Linear.apply(h, w_hh, b_hh)
    return pre.tanh() if mode == "RNN_TANH" else pre.relu()


def lstm_step(gi, h, c, w_hh, b_hh):
    """(h', c') from gates i, f, g, o of gi + h @ w_hh.T + b_hh (each (N, H))."""
    i, f, g, o = (gi + linalg.Linear.apply(h, w_hh, b_hh)).chunk(4, dim=-1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def gru_step(gi, h, w_hh, b_hh):
    """h' = (1 - z) * n + z * h with torch's n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = linalg.Linear.apply(h, w_hh, b_hh).chunk(3, dim=-1)
    r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    return n + z * (h - n)


def check_sizes(name, input_size, hidden_size):
    """TypeError/ValueError as torch's for sizes that are not positive ints (input_size may be 0)."""
    for what, n, low in (("input_size", input_size, 0), ("hidden_size", hidden_size, 1)):
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"{name}: {what} should be of type int, got: {type(n).__name__} ({n!r})")
        if n < low:
            raise ValueError(f"{name}: {what} must be {'greater than zero' if low else 'non-negative'}, got {n}")


def check_mode(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu'.")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


def as_input(x, name):
    """``x`` as a gt tensor; a PackedSequence is refused here (the cells take none; the layers
    take one before they get here)."""
    if type(x).__name__ == "PackedSequence":
        raise TypeError(f"{name}: this PackedSequence cannot be taken here: the layers (nn.RNN/LSTM/GRU) take gt's "
                        "(gt.nn.utils.rnn.pack_padded_sequence makes one; not torch's), the cells take tensors only")
    return x if isinstance(x, Tensor) else _tensor(x, name)


class DtypeMismatchError(TypeError, ValueError):
    """An input whose dtype is not the weights': torch's recurrent layers raise ValueError for
    it, and gt raised TypeError before; both catch it."""


class MatmulDtypeError(DtypeMismatchError, RuntimeError):
    """A dtype mismatch torch finds only in its matmul (RuntimeError): a cell's input, any initial
    state, an LSTM's PackedSequence data."""


def check_dtype(name, x, weight, matmul=False):
    """Refuse ``x`` of another dtype than ``weight``: ValueError as torch's check of a layer's
    input, or with ``matmul`` also RuntimeError, where torch's check is its matmul's."""
    if x.dtype != weight.dtype:
        cls = MatmulDtypeError if matmul else DtypeMismatchError
        raise cls(f"{name}: input must have the dtype {weight.dtype} of the weights, got {x.dtype}")


def reset_uniform(module, hidden_size):
    """torch's init of every recurrent weight and bias: U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


def warn_dropout(dropout, num_layers):
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
        raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                         f"element being zeroed, got {dropout!r}")
    if dropout > 0 and num_layers == 1:
        warnings.warn(f"dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                      f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}")


class RNNCellBase(Module):
    """The parameters of one cell: ``weight_ih`` (G*hidden, input), ``weight_hh`` (G*hidden, hidden),
    ``bias_ih`` and ``bias_hh`` (G*hidden,), G = ``num_chunks`` gates, all U(-1/sqrt(hidden),
    1/sqrt(hidden)). The base of ``RNNCell``, ``LSTMCell`` and ``GRUCell``, with torch's arguments."""

    mode = "RNN_TANH"

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        check_sizes(name, input_size, hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        dtype = dtypes.default_float if dtype is None else dtype
        rows = num_chunks * hidden_size
        self.weight_ih = Parameter(empty(rows, input_size, dtype=dtype))
        self.weight_hh = Parameter(empty(rows, hidden_size, dtype=dtype))
        for b in ("bias_ih", "bias_hh"):
            self.register_parameter(b, Parameter(empty(rows, dtype=dtype)) if bias else None)
        self.reset_parameters()
        if device is not None:         # torch's factory argument; gt's tensors are made on the CPU first
            self.to(device)

    def reset_parameters(self):
        reset_uniform(self, self.hidden_size)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity=relu"
        return s

    def _inputs(self, x, states):
        """(x as (N, input), each state as (N, hidden) or zeros, unbatched); errors as torch's."""
        name = type(self).__name__
        x = as_input(x, name)
        if x.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {x.ndim}D instead")
        check_dtype(name, x, self.weight_ih, matmul=True)
        unbatched = x.ndim == 1
        x = x.unsqueeze(0) if unbatched else x
        if x.shape[1] != self.input_size:
            raise ValueError(f"{name}: input has inconsistent input_size: got {x.shape[1]} expected {self.input_size}")
        out = []
        for i, h in enumerate(states):
            if h is None:
                out.append(zeros(x.shape[0], self.hidden_size, dtype=x.dtype))
                continue
            h = as_input(h, name)
            if h.ndim != (1 if unbatched else 2):
                raise ValueError(f"{name}: for {'unbatched 1-D' if unbatched else 'batched 2-D'} input, hx "
                                 f"should also be {1 if unbatched else 2}-D but got {h.ndim}-D tensor")
            check_dtype(name, h, self.weight_hh, matmul=True)
            h = h.unsqueeze(0) if unbatched else h
            if h.shape[0] != x.shape[0]:
                raise ValueError(f"{name}: Input batch size {x.shape[0]} doesn't match hidden{i} batch size "
                                 f"{h.shape[0]}")
            if h.shape[1] != self.hidden_size:
                raise ValueError(f"{name}: hidden{i} has inconsistent hidden_size: got {h.shape[1]}, expected "
                                 f"{self.hidden_size}")
            out.append(h)
        return x, out, unbatched


class RNNCell(RNNCellBase):
    """One Elman step ``h' = act(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)``, act tanh
    or relu: input (N, input_size) or (input_size,), hx the same batch of (N, hidden_size) or
    (hidden_size,) (zeros when None) -> h' shaped as hx.

        >>> cell = nn.RNNCell(10, 20)
        >>> cell(gt.randn(3, 10)).shape
        (3, 20)
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        mode = check_mode(nonlinearity)
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.mode, self.nonlinearity = mode, nonlinearity

    def forward(self, input, hx=None):
        x, (h,), unbatched = self._inputs(input, (hx,))
        gi = linalg.Linear.apply(x, self.weight_ih, self.bias_ih)
        h = rnn_step(gi, h, self.weight_hh, self.bias_hh, self.mode)
        return h.squeeze(0) if unbatched else h


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o as torch's): input (N, input_size) or (input_size,),
    hx a tuple (h, c) of (N, hidden_size) or (hidden_size,) (zeros when None) -> (h', c').

        >>> h, c = nn.LSTMCell(10, 20)(gt.randn(3, 10))
        >>> c.shape
        (3, 20)
    """

    mode = "LSTM"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTMCell: hx must be a tuple (h_0, c_0) or None, got {type(hx).__name__}")
        x, (h, c), unbatched = self._inputs(input, (None, None) if hx is None else tuple(hx))
        gi = linalg.Linear.apply(x, self.weight_ih, self.bias_ih)
        h, c = lstm_step(gi, h, c, self.weight_hh, self.bias_hh)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n as torch's, n = tanh(W_in x + b_in + r * (W_hn h + b_hn))):
    input (N, input_size) or (input_size,), hx (N, hidden_size) or (hidden_size,) -> h'.

        >>> nn.GRUCell(10, 20)(gt.randn(10)).shape
        (20,)
    """

    mode = "GRU"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        x, (h,), unbatched = self._inputs(input, (hx,))
        gi = linalg.Linear.apply(x, self.weight_ih, self.bias_ih)
        h = gru_step(gi, h, self.weight_hh, self.bias_hh)
        return h.squeeze(0) if unbatched else h
