"""More of torch's top-level functional forms: the recurrent cells (``gt.lstm_cell``...), the
in-place and channel-wise dropouts (``gt.dropout_``, ``gt.feature_dropout``...), and torch's
aten spellings of ``nn.functional`` functions (``gt.grid_sampler``, ``gt.affine_grid_generator``,
``gt.native_channel_shuffle``, ``gt.conv_tbc``, ``gt.norm_except_dim``). Each builds on the
``nn.functional`` function or layer step of that name, so values, gradients and sharding are its.
"""

from gt import dtypes
from gt.nn import functional as F
from gt.nn.dropout_functions import _check, _feature_dropout
from gt.nn.embedding_options import renorm_
from gt.nn.inputs import as_tensor as _tensor
from gt.nn.rnn_cells import gru_step, lstm_step, rnn_step
from gt.ops import linalg
from gt.tensor import ones_like, rand
from gt.tensor.core import Tensor
from gt.tensor.number_first import tensors_only

__all__ = ["rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell", "dropout_", "alpha_dropout_", "feature_dropout",
           "feature_dropout_", "feature_alpha_dropout_", "native_channel_shuffle", "affine_grid_generator",
           "grid_sampler", "grid_sampler_2d", "grid_sampler_3d", "conv_tbc", "norm_except_dim", "convolution",
           "native_dropout", "embedding_renorm_"]


# ---- recurrent cells -------------------------------------------------------------------------------
def _cell_inputs(fn, input, hx, w_ih, w_hh, b_ih, b_hh, gates):
    """Check the cell's tensors as torch's ``_rnn_cell_checks`` (sizes named in the message) and
    give ``input @ w_ih.T + b_ih``; input is (N, input_size), each of ``hx`` (N, hidden_size)."""
    for name, t in (("input", input), ("w_ih", w_ih), ("w_hh", w_hh)) + tuple(("hx", h) for h in hx):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}(): argument '{name}' must be Tensor, not {type(t).__name__}")
    if w_ih.ndim != 2 or w_hh.ndim != 2 or w_ih.shape[0] != gates * w_hh.shape[1] or w_hh.shape[0] != w_ih.shape[0]:
        raise RuntimeError(f"{fn}: expected w_ih ({gates} * hidden_size, input_size) and w_hh ({gates} * hidden_size, "
                           f"hidden_size), got {list(w_ih.shape)} and {list(w_hh.shape)}")
    hidden = w_hh.shape[1]
    if input.ndim != 2:      # torch's functional cells take batches only (nn.RNNCell also takes one sample)
        raise IndexError(f"{fn}: expected input (N, input_size), got shape {list(input.shape)}")
    if input.shape[1] != w_ih.shape[1]:
        raise RuntimeError(f"{fn}: input has inconsistent input_size: got {input.shape[1]}, expected {w_ih.shape[1]}")
    for h in hx:
        if h.shape != input.shape[:-1] + (hidden,):
            raise RuntimeError(f"{fn}: hidden state has inconsistent size: got {list(h.shape)}, expected "
                               f"{list(input.shape[:-1] + (hidden,))}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):     # checked here, not met as a broadcast error in a kernel
        if b is not None and not isinstance(b, Tensor):
            raise TypeError(f"{fn}(): argument '{name}' must be Tensor, not {type(b).__name__}")
        target = (w_ih.shape[0], input.shape[0])       # b broadcasts to (N, gates * hidden_size), reversed
        if b is not None and (b.ndim > 2 or any(s not in (1, t) for s, t in zip(b.shape[::-1], target))):
            raise RuntimeError(f"{fn}: expected {name} of shape [{w_ih.shape[0]}] ({gates} * hidden_size; anything "
                               f"that broadcasts to {list(target[::-1])}), got {list(b.shape)}")
    return linalg.Linear.apply(input, w_ih, b_ih)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One Elman step ``tanh(input @ w_ih.T + b_ih + hx @ w_hh.T + b_hh)`` (``nn.RNNCell``'s math,
    with the weights given): input (N, I), hx (N, H) -> (N, H)."""
    gi = _cell_inputs("rnn_tanh_cell", input, (hx,), w_ih, w_hh, b_ih, b_hh, 1)
    return rnn_step(gi, hx, w_hh, b_hh, "RNN_TANH")


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """``rnn_tanh_cell`` with relu for tanh."""
    gi = _cell_inputs("rnn_relu_cell", input, (hx,), w_ih, w_hh, b_ih, b_hh, 1)
    return rnn_step(gi, hx, w_hh, b_hh, "RNN_RELU")


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step (gates i, f, g, o; ``nn.LSTMCell``'s math): ``hx`` is the pair ``(h, c)``
    (a tuple or list) -> the pair ``(h', c')``."""
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise RuntimeError(f"lstm_cell: expected hx to be a pair (h, c) of tensors, got {type(hx).__name__}"
                           + (f" of length {len(hx)}" if isinstance(hx, (tuple, list)) else ""))
    gi = _cell_inputs("lstm_cell", input, tuple(hx), w_ih, w_hh, b_ih, b_hh, 4)
    return lstm_step(gi, hx[0], hx[1], w_hh, b_hh)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step (gates r, z, n; ``nn.GRUCell``'s math)."""
    gi = _cell_inputs("gru_cell", input, (hx,), w_ih, w_hh, b_ih, b_hh, 3)
    return gru_step(gi, hx, w_hh, b_hh)


# ---- dropouts ----------------------------------------------------------------------------------------
def _in_place(input, result):
    """Write ``result`` into ``input`` (recorded on the tape, as any in-place op) unless it is
    ``input`` itself (not training, p == 0)."""
    return input if result is input else input.copy_(result)


def dropout_(input, p, train):
    """``dropout`` written into ``input``, which is returned (torch's in-place form)."""
    return F.dropout(_tensor(input, "dropout_"), p, training=train, inplace=True)


def alpha_dropout_(input, p, train):
    """``alpha_dropout`` written into ``input``, which is returned."""
    return _in_place(input, F.alpha_dropout(_tensor(input, "alpha_dropout_"), p, training=train))


def feature_dropout(input, p, train):
    """Zero whole channels of (N, C, *) with probability ``p`` and scale the kept ones by 1 / (1 - p):
    one draw per (sample, channel) (per element of a 2-D input); the identity when not ``train``."""
    fn = "feature_dropout"
    _check(fn, p, False)
    x = _tensor(input, fn)
    if not train or p == 0 or x.numel() == 0:
        return x
    if x.ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    return _feature_dropout(x, p, True, fn, (None, x.ndim), "")     # any rank read as batched (N, C, *)


def feature_dropout_(input, p, train):
    """``feature_dropout`` written into ``input``, which is returned."""
    return _in_place(input, feature_dropout(input, p, train))


def feature_alpha_dropout_(input, p, train):
    """``feature_alpha_dropout`` written into ``input``, which is returned."""
    return _in_place(input, F.feature_alpha_dropout(_tensor(input, "feature_alpha_dropout_"), p, training=train))


# ---- aten spellings ----------------------------------------------------------------------------------
def native_channel_shuffle(input, groups):
    """``nn.functional.channel_shuffle`` (torch's aten name)."""
    return F.channel_shuffle(input, groups)


def affine_grid_generator(theta, size, align_corners):
    """``nn.functional.affine_grid(theta, size, align_corners)``; ``align_corners`` has no default."""
    return F.affine_grid(theta, list(size), align_corners=align_corners)


_INTERPOLATIONS, _PADDINGS = ("bilinear", "nearest", "bicubic"), ("zeros", "border", "reflection")


def grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners):
    """``nn.functional.grid_sample`` with torch's enum ints: ``interpolation_mode`` 0 bilinear,
    1 nearest, 2 bicubic; ``padding_mode`` 0 zeros, 1 border, 2 reflection."""
    for name, value, names in (("interpolation_mode", interpolation_mode, _INTERPOLATIONS),
                               ("padding_mode", padding_mode, _PADDINGS)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(names):
            raise ValueError(f"grid_sampler: {name} must be an int in 0..{len(names) - 1} "
                             f"({', '.join(f'{i} {n}' for i, n in enumerate(names))}), got {value!r}")
    return F.grid_sample(input, grid, mode=_INTERPOLATIONS[interpolation_mode], padding_mode=_PADDINGS[padding_mode],
                         align_corners=align_corners)


def grid_sampler_2d(input, grid, interpolation_mode, padding_mode, align_corners):
    """``grid_sampler`` of a 4-D input (N, C, H, W)."""
    if getattr(input, "ndim", None) != 4:
        raise RuntimeError(f"grid_sampler_2d(): expected 4D input, got {getattr(input, 'ndim', None)}D input")
    return grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners)


def grid_sampler_3d(input, grid, interpolation_mode, padding_mode, align_corners):
    """``grid_sampler`` of a 5-D input (N, C, D, H, W)."""
    if getattr(input, "ndim", None) != 5:
        raise RuntimeError(f"grid_sampler_3d(): expected 5D input, got {getattr(input, 'ndim', None)}D input")
    return grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners)


_CONVS = {(False, 1): F.conv1d, (False, 2): F.conv2d, (False, 3): F.conv3d, (True, 1): F.conv_transpose1d,
          (True, 2): F.conv_transpose2d, (True, 3): F.conv_transpose3d}


def convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    """torch's one entry to every convolution: ``conv{1,2,3}d`` (``transposed=False``) or
    ``conv_transpose{1,2,3}d``, the dimension read from ``weight`` (2 + spatial dims)."""
    w = _tensor(weight, "convolution", "weight")
    conv = _CONVS.get((bool(transposed), w.ndim - 2))
    if conv is None:
        raise RuntimeError(f"convolution: expected a weight of 3, 4 or 5 dims (out, in / groups, *kernel), got "
                           f"shape {list(w.shape)}")
    if transposed:
        return conv(input, w, bias, stride, padding, output_padding, groups, dilation)
    if any(output_padding if isinstance(output_padding, (list, tuple)) else [output_padding]):
        raise RuntimeError(f"convolution: output_padding {output_padding!r} needs transposed=True")
    return conv(input, w, bias, stride, padding, dilation, groups)


def native_dropout(input, p, train):
    """``(output, mask)``: dropout's result and its keep mask (bool). ``train`` False: a copy of
    ``input`` and an all-True mask; None counts as True, as torch's."""
    x = _tensor(input, "native_dropout")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"native_dropout: dropout probability has to be between 0 and 1, but got {p!r}")
    if train is False:
        return x.clone(), ones_like(x, dtype=dtypes.bool_)
    keep = rand(*x.shape, dtype=x.dtype if x.dtype.is_floating_point else dtypes.default_float) >= p
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    return x * (keep.to(x.dtype) * scale), keep


def embedding_renorm_(input, indices, max_norm, norm_type):
    """Scale the rows of the table ``input`` picked by ``indices`` whose ``norm_type``-norm
    exceeds ``max_norm`` down to it, in place and outside the graph; ``input`` is returned."""
    weight = _tensor(input, "embedding_renorm_")
    if weight.ndim != 2:
        raise RuntimeError(f"embedding_renorm_: expected a 2-D table, got shape {list(weight.shape)}")
    renorm_(weight, _tensor(indices, "embedding_renorm_", "indices"), max_norm, norm_type)
    return weight


def conv_tbc(input, weight, bias, pad=0):
    """1-D convolution in time-batch-channel layout: input (T, B, C_in), weight (K, C_in, C_out),
    bias (C_out,), ``pad`` zeros at both ends of T -> (T + 2 * pad - K + 1, B, C_out)."""
    fn = "conv_tbc"
    x, w, b = _tensor(input, fn), _tensor(weight, fn), _tensor(bias, fn)
    if x.ndim != 3 or w.ndim != 3 or b.ndim != 1:
        raise RuntimeError(f"{fn}: expected a 3-D input (T, B, C_in), a 3-D weight (K, C_in, C_out) and a 1-D bias, "
                           f"got {list(x.shape)}, {list(w.shape)}, {list(b.shape)}")
    if x.shape[2] != w.shape[1] or w.shape[2] != b.shape[0]:
        raise RuntimeError(f"{fn}: input channels {x.shape[2]} must equal weight.shape[1] and weight.shape[2] "
                           f"must equal bias size; got input {list(x.shape)}, weight {list(w.shape)}, bias "
                           f"{list(b.shape)}")
    out = F.conv1d(x.permute(1, 2, 0), w.permute(2, 1, 0), b, padding=pad)    # (B, C_out, T_out)
    return out.permute(2, 0, 1)


def norm_except_dim(v, pow=2, dim=0):
    """The ``pow``-norm of ``v`` over every dim but ``dim``, kept as size-1 dims (weight norm's
    ``g``); ``dim=-1`` is the norm of all of ``v`` (0-d), as torch's."""
    tensors_only("norm_except_dim", ("v", v))
    v = _tensor(v, "norm_except_dim")
    if dim == -1:
        return v.norm(pow)
    if isinstance(dim, bool) or not isinstance(dim, int) or not -v.ndim <= dim < v.ndim:
        raise IndexError(f"norm_except_dim: dim must be -1 (all dims) or in [{-v.ndim}, {v.ndim}), got {dim!r}")
    dim %= v.ndim     # torch takes -2, -3, ... as counted from the end (only -1 means every dim)
    shape = [1] * v.ndim
    shape[dim] = v.shape[dim]
    return v.movedim(dim, 0).reshape(v.shape[dim], -1).norm(pow, dim=1).reshape(shape)
