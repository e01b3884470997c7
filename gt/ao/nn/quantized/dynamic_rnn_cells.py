"""torch.ao.nn.quantized.dynamic's ``RNNCell``, ``LSTMCell`` and ``GRUCell``: one time step with
dynamically quantized products (fbgemm's ``linear_dynamic`` with reduce_range, qint8 weights, or its
float16-weight form) and torch's float gate math, in torch's order of operations:

    LSTM: gates = (h @ W_hh^T + b_hh) + (x @ W_ih^T + b_ih), chunks i, f, g, o;
          c' = sigmoid(f) * c + sigmoid(i) * tanh(g), h' = sigmoid(o) * tanh(c')
    GRU:  r = sigmoid(h_r + x_r), z = sigmoid(h_z + x_z), n = tanh(x_n + h_n * r), h' = (h - n) * z + n
    RNN:  h' = tanh or relu((h @ W_hh^T + b_hh) + (x @ W_ih^T + b_ih))

Each product quantizes its own input (x, h) from its min and max. Inference layers, as torch's: an
output requires grad where an input does, but no gradient passes back through a product (torch's
warning says so); the float gate math between them is recorded.
"""

from gt import dtypes
from gt.ao.nn.quantized import dynamic_rnn_state as rs
from gt.ao.nn.quantized.dynamic_products import (half_weight, linear_dynamic, linear_dynamic_fp16, observed_weight,
                                                 weight_observer)
from gt.nn.module import Module
from gt.tensor import creation

_NAMES = {"RNNCell": "DynamicQuantizedRNNCell", "LSTMCell": "DynamicQuantizedLSTMCell",
          "GRUCell": "DynamicQuantizedGRUCell"}


def check_weight_dtype(dtype):
    dtype = dtypes.to_dtype(dtype)
    if dtype not in (dtypes.qint8, dtypes.float16):
        raise RuntimeError(f"Unsupported dtype for dynamic RNN quantization: {dtype!r}")
    return dtype


def pack(weight, bias, dtype, make=None):
    """A float layer's (weight, bias) as the dynamic layers hold it: the weight quantized to qint8 by an
    observer of ``make`` (the qconfig's; None: torch's default dynamic one) or rounded to float16, the
    bias a float32 copy requiring grad as ``bias`` does (torch's packed params keep the float layer's
    bias; its float16 layers add it apart from their product, a parameter the gate math trains)."""
    w = observed_weight(weight, make) if dtype == dtypes.qint8 else half_weight(weight)
    if bias is None:
        return w, None
    # the private setter: torch's C++ sets the flag without requires_grad_, which a gt.func transform refuses
    return w, bias.detach().float().clone()._set_requires_grad(bias.requires_grad)


def product(x, pair, dtype, reduce_range=True):
    """One packed product of ``x`` (..., in) float32 -> (..., out), as torch's layers record it
    (``reduce_range`` False: 8-bit inputs, the cells of torch's version-1 layers)."""
    weight, bias = pair
    return linear_dynamic(x, weight, bias, tracked=True, reduce_range=reduce_range) if dtype == dtypes.qint8 else \
        linear_dynamic_fp16(x, weight, bias)


def check_float(*tensors):
    for x in tensors:
        if x.dtype != dtypes.float32:      # fbgemm's check
            raise RuntimeError(f"expected scalar type Float but found {dtypes.torch_type_name(x.dtype.name)}")


def lstm_cell(gi, state, pair_hh, dtype, reduce_range=True):
    h, c = state
    i, f, g, o = (product(h, pair_hh, dtype, reduce_range) + gi).chunk(4, dim=1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def gru_cell(gi, h, pair_hh, dtype, reduce_range=True):
    hidden = h.shape[1]
    gh = product(h, pair_hh, dtype, reduce_range)
    # torch's sigmoid_ runs on the gates' column views, a row of ``hidden`` at a time; on a contiguous
    # (N, hidden) sum the vectorized loop would span rows, and its exp differs from the scalar one in
    # the last bit where the CPU's vectors are shorter than the tensor (AVX2's 8 floats, not AVX-512's 16)
    r, z = (g.sigmoid() for g in (gh[:, :2 * hidden] + gi[:, :2 * hidden]).chunk(2, dim=1))
    n = (gi[:, 2 * hidden:] + gh[:, 2 * hidden:] * r).tanh()
    return (h - n) * z + n


def rnn_cell(gi, h, pair_hh, dtype, nonlinearity="tanh"):
    pre = product(h, pair_hh, dtype) + gi
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


class RNNCellBase(Module):
    """The two packed products of one cell: ``(weight_ih (G*hidden, input), bias_ih)`` and
    ``(weight_hh (G*hidden, hidden), bias_hh)``, G = ``num_chunks``; weights qint8 (``dtype=gt.qint8``)
    or float16 values (``gt.float16``). State dict: torch's ``_packed_weight_ih``/``_packed_weight_hh``."""

    def __init__(self, input_size, hidden_size, bias=True, num_chunks=4, dtype=dtypes.qint8):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_dtype = check_weight_dtype(dtype)
        rows = num_chunks * hidden_size
        zeros = (lambda *s: creation.zeros(s, dtype=dtypes.float32))
        self._ih = pack(zeros(rows, input_size), zeros(rows) if bias else None, self.weight_dtype)
        self._hh = pack(zeros(rows, hidden_size), zeros(rows) if bias else None, self.weight_dtype)

    @property
    def bias_ih(self):
        return self._ih[1]

    @property
    def bias_hh(self):
        return self._hh[1]

    @property
    def _packed_weight_ih(self):
        return rs.LinearPackedParams(*self._ih)

    @property
    def _packed_weight_hh(self):
        return rs.LinearPackedParams(*self._hh)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The dynamically quantized form of the float cell ``mod`` (``nn.RNNCell``/``LSTMCell``/``GRUCell``
        of the same name), its weights quantized (or rounded to float16) now, as ``mod.qconfig``'s weight
        observer asks (torch's; ``default_dynamic_qconfig``'s where the qconfig is None)."""
        if type(mod).__name__ != cls.__name__ or cls is RNNCellBase:
            raise AssertionError("nn.quantized.dynamic.RNNCellBase.from_float only works for nn.LSTMCell, "
                                 "nn.GRUCell and nn.RNNCell")
        make, dtype = weight_observer(mod)
        dtype = check_weight_dtype(dtype)
        extra = {"nonlinearity": mod.nonlinearity} if cls is RNNCell else {}
        new = cls(mod.input_size, mod.hidden_size, bias=mod.bias, dtype=dtype, **extra)
        if not mod.bias:
            raise AssertionError("mod.bias must be True")
        new._ih = pack(mod.weight_ih, mod.bias_ih, dtype, make)
        new._hh = pack(mod.weight_hh, mod.bias_hh, dtype, make)
        return new

    def _weight_bias(self):
        return {"weight": {"weight_ih": self._ih[0], "weight_hh": self._hh[0]},
                "bias": {"bias_ih": self._ih[1], "bias_hh": self._hh[1]}}

    def get_weight(self):
        return self._weight_bias()["weight"]

    def get_bias(self):
        return self._weight_bias()["bias"]

    def check_forward_input(self, input):
        if input.shape[1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[1]}, expected {self.input_size}")

    def check_forward_hidden(self, input, hx, hidden_label=""):
        if input.shape[0] != hx.shape[0]:
            raise RuntimeError(f"Input batch size {input.shape[0]} doesn't match hidden{hidden_label} batch size "
                               f"{hx.shape[0]}")
        if hx.shape[1] != self.hidden_size:
            raise RuntimeError(f"hidden{hidden_label} has inconsistent hidden_size: got {hx.shape[1]}, expected "
                               f"{self.hidden_size}")

    def _zeros(self, input):
        return creation.zeros((input.shape[0], self.hidden_size), dtype=input.dtype)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "_packed_weight_ih"] = rs.saved_pair(*self._ih, keep_vars)
        destination[prefix + "_packed_weight_hh"] = rs.saved_pair(*self._hh, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        own = {prefix + "_packed_weight_ih": self._ih, prefix + "_packed_weight_hh": self._hh}
        super()._load_from_state_dict({k: v for k, v in state_dict.items() if k not in own}, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys, error_msgs)
        pairs = []
        for key, (weight, _) in own.items():
            if key not in state_dict:
                missing_keys.append(key)
                continue
            try:
                pairs.append((key, rs.read_pair(state_dict[key], self.weight_dtype, weight.shape)))
            except ValueError as exc:
                error_msgs.append(f"{key}: {exc}")
        for key, pair in pairs:
            if not error_msgs:
                setattr(self, "_ih" if key.endswith("_ih") else "_hh", pair)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def __repr__(self):
        return f"{_NAMES.get(type(self).__name__, 'DynamicQuantizedRNNBase')}({self.extra_repr()})"


class RNNCell(RNNCellBase):
    """An Elman cell, ``h' = tanh or relu(x W_ih^T + b_ih + h W_hh^T + b_hh)``, dynamically quantized:
    input (N, input_size) float32, hx (N, hidden_size) or None (zeros) -> h' (N, hidden_size)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=dtypes.qint8):
        super().__init__(input_size, hidden_size, bias, num_chunks=1, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        self.check_forward_input(input)
        hx = self._zeros(input) if hx is None else hx
        self.check_forward_hidden(input, hx, "")
        check_float(input, hx)
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return rnn_cell(product(input, self._ih, self.weight_dtype), hx, self._hh, self.weight_dtype,
                        self.nonlinearity)


class LSTMCell(RNNCellBase):
    """An LSTM cell, dynamically quantized: input (N, input_size) float32, hx the pair (h, c) of
    (N, hidden_size) or None (zeros) -> (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=dtypes.qint8):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, dtype=dtype)

    def forward(self, input, hx=None):
        self.check_forward_input(input)
        hx = (self._zeros(input),) * 2 if hx is None else hx
        self.check_forward_hidden(input, hx[0], "[0]")
        self.check_forward_hidden(input, hx[1], "[1]")
        check_float(input, *hx)
        return lstm_cell(product(input, self._ih, self.weight_dtype), hx, self._hh, self.weight_dtype)


class GRUCell(RNNCellBase):
    """A GRU cell, dynamically quantized: input (N, input_size) float32, hx (N, hidden_size) or None
    (zeros) -> h' (N, hidden_size)."""

    def __init__(self, input_size, hidden_size, bias=True, dtype=dtypes.qint8):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, dtype=dtype)

    def forward(self, input, hx=None):
        self.check_forward_input(input)
        hx = self._zeros(input) if hx is None else hx
        self.check_forward_hidden(input, hx, "")
        check_float(input, hx)
        return gru_cell(product(input, self._ih, self.weight_dtype), hx, self._hh, self.weight_dtype)
