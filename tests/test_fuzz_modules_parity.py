"""Property-based differential testing of the ``nn`` modules training code builds, gt beside torch.

Each example draws a module class and constructor options (Linear, Embedding, the norms, convs,
pools, Dropout in eval, MultiheadAttention, the transformer layers and stacks, the recurrent layers
on tensors and on packed sequences, and the losses), builds it in torch, builds gt's with the same
options and loads torch's ``state_dict()`` into it (strict), then runs both on the same inputs (batch 1, unbatched where torch takes them,
float32/float64; empty batches; some inputs a transposed view of a leaf, or of the other float dtype
than the module). It asserts the same output shapes, dtypes and values, the same exception class
where torch raises, the same gradients of a weighted sum of the outputs w.r.t. the float inputs and
every parameter, and the same buffers afterwards (BatchNorm's running statistics in train mode).

In CI the examples are few and derandomized. To hunt, run it with many:
``GT_FUZZ_EXAMPLES=3000 GT_FUZZ_LOG=/tmp/mods.log pytest tests/test_fuzz_modules_parity.py
--hypothesis-seed=N``: every difference is appended to the log instead of failing the first one.
"""

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import fuzz_draw
import gt

torch = pytest.importorskip("torch")

_EXAMPLES = int(os.environ.get("GT_FUZZ_EXAMPLES", "0") or 0)
_LOG = os.environ.get("GT_FUZZ_LOG", "")
# float32's atol covers torch's own rounding of a one-element group: (x - mean) is ~1e-7, not 0, and
# LayerNorm/GroupNorm scale it by 1/sqrt(eps), where gt's mean is exact
_TOL = {"float32": (2e-4, 1e-4), "float64": (1e-9, 1e-11)}


class Draw(fuzz_draw.Draw):
    """The draws, with a named coin."""

    def coin(self, name=None):
        return self.pick((False, True), name)


class Spec:
    """One module draw: the class name, constructor options, the forward's positional inputs and
    keyword inputs (numpy arrays, or plain values), whether it runs in train mode."""

    def __init__(self, name, kwargs, inputs, fwd=None, train=False, grad_inputs=None):
        inputs = [np.asarray(a) if isinstance(a, np.generic) else a for a in inputs]
        self.name, self.kwargs, self.inputs, self.fwd = name, kwargs, inputs, fwd or {}
        self.train, self.layout, self.warm, self.packed = train, {}, 0, None
        self.grad_inputs = grad_inputs if grad_inputs is not None else [
            i for i, a in enumerate(inputs) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]


def _randn(d, shape, scale=1.0):
    return np.asarray(np.random.default_rng(d.int(0, 2 ** 16)).standard_normal(shape) * scale)


def _ints(d, shape, lo, hi):
    return np.asarray(np.random.default_rng(d.int(0, 2 ** 16)).integers(lo, hi, shape), dtype=np.int64)


def _rand(d, shape, low=0.0):
    return np.asarray(np.random.default_rng(d.int(0, 2 ** 16)).random(shape) + low)


# ---- spec builders ------------------------------------------------------------------------------
def _linear(d):
    i, o = d.int(1, 4), d.int(1, 4)
    shape = d.pick(((i,), (1, i), (3, i), (2, 3, i), (0, i)), "shape")
    return Spec("Linear", dict(in_features=i, out_features=o, bias=d.coin("bias")), [_randn(d, shape)])


def _embedding(d):
    n, dim = d.int(2, 6), d.int(1, 4)
    kw = dict(num_embeddings=n, embedding_dim=dim)
    if d.coin("padding"):
        kw["padding_idx"] = d.int(-n, n - 1, "padding_idx")
    if d.coin("max_norm"):
        kw["max_norm"] = d.pick((0.5, 1.0, 2.0), "max_norm_v")
        kw["norm_type"] = d.pick((2.0, 1.0), "norm_type")
    kw["scale_grad_by_freq"] = d.coin("freq")
    shape = d.pick(((), (1,), (4,), (2, 3), (0,)), "shape")
    return Spec("Embedding", kw, [_ints(d, shape, 0, n)])


def _layernorm(d):
    norm = d.pick(((3,), (1,), (2, 3)), "norm")
    shape = d.pick(((), (1,), (2,), (2, 2), (0,)), "lead") + norm
    name = d.pick(("LayerNorm", "RMSNorm"), "cls")
    kw = dict(normalized_shape=list(norm) if d.coin() else norm, elementwise_affine=d.coin("affine"))
    if name == "LayerNorm":
        kw["bias"] = d.coin("bias")
        kw["eps"] = d.pick((1e-5, 0.1))
    else:
        kw["eps"] = d.pick((None, 1e-6, 0.1), "eps")
    return Spec(name, kw, [_randn(d, shape, 2.0)])


def _batchnorm(d):
    two = d.coin("2d")
    c = d.int(1, 3)
    kw = dict(num_features=c, momentum=d.pick((0.1, None, 0.5), "momentum"),
              affine=d.coin("affine"), track_running_stats=d.coin("track"))
    if two:
        shape = d.pick(((2, c, 2, 3), (1, c, 2, 2), (3, c, 1, 1)), "shape")
    else:
        shape = d.pick(((3, c), (2, c, 3), (1, c, 4), (1, c), (c, 1)), "shape")
    spec = Spec("BatchNorm2d" if two else "BatchNorm1d", kw, [_randn(d, shape, 2.0)], train=d.coin("train"))
    spec.warm = d.int(0, 2, "warm")
    return spec


def _groupnorm(d):
    g = d.int(1, 3)
    c = g * d.int(1, 2)
    shape = d.pick(((2, c), (1, c, 3), (2, c, 2, 2)), "shape")
    return Spec("GroupNorm", dict(num_groups=g, num_channels=c, affine=d.coin("affine")), [_randn(d, shape)])


def _conv(d):
    two = d.coin("2d")
    groups = d.pick((1, 1, 2), "groups")
    cin, cout = groups * d.int(1, 2), groups * d.int(1, 2)
    k = d.int(1, 3)
    padding = d.pick((0, 1, 2, "same", "valid"), "padding")
    stride = 1 if padding == "same" else d.int(1, 2)
    kw = dict(in_channels=cin, out_channels=cout, kernel_size=k, stride=stride, padding=padding,
              dilation=d.int(1, 2), groups=groups, bias=d.coin("bias"),
              padding_mode=d.pick(("zeros", "zeros", "reflect", "replicate", "circular"), "mode"))
    n = d.int(4, 6)
    spatial = (n, d.int(4, 6)) if two else (n,)
    lead = d.pick(((), (1,), (2,), (0,)), "lead")
    return Spec("Conv2d" if two else "Conv1d", kw, [_randn(d, lead + (cin,) + spatial)])


def _convt(d):
    groups = d.pick((1, 2), "groups")
    cin, cout = groups * d.int(1, 2), groups * d.int(1, 2)
    stride = d.int(1, 2)
    dil = d.int(1, 2)
    kw = dict(in_channels=cin, out_channels=cout, kernel_size=d.int(1, 3), stride=stride,
              padding=d.int(0, 1), output_padding=d.int(0, max(stride, dil) - 1), groups=groups,
              bias=d.coin("bias"), dilation=dil)
    lead = d.pick(((), (1,), (2,)), "lead")
    size = (d.int(2, 4), d.int(2, 4))
    # an output of size 0 is refused by torch, except by its float32 batched kernel (an empty result)
    assume(all((n - 1) * stride - 2 * kw["padding"] + dil * (kw["kernel_size"] - 1) + kw["output_padding"] >= 0
               for n in size))
    return Spec("ConvTranspose2d", kw, [_randn(d, lead + (cin,) + size)])


def _pool(d):
    name = d.pick(("MaxPool2d", "AvgPool2d"), "cls")
    k = d.int(1, 3)
    kw = dict(kernel_size=k, stride=d.pick((None, 1, 2), "stride"), padding=d.int(0, k // 2),
              ceil_mode=d.coin("ceil"))
    if name == "AvgPool2d":
        kw["count_include_pad"] = d.coin("cip")
        kw["divisor_override"] = d.pick((None, None, 2), "div")
    else:
        kw["dilation"] = d.int(1, 2)
        kw["return_indices"] = d.coin("indices")
    lead = d.pick(((), (1,), (2,)), "lead")
    # distinct values: a tie in max pooling may route the gradient to either element
    x = np.random.default_rng(d.int(0, 999)).permutation(200)[:np.prod(lead + (2, 5, 5), dtype=int)] / 7.0
    return Spec(name, kw, [x.reshape(lead + (2, 5, 5))])


def _dropout(d):
    return Spec("Dropout", dict(p=d.pick((0.0, 0.5, 0.9))), [_randn(d, (2, 3))])


def _bool_or_float_mask(d, shape, name):
    kind = d.pick(("bool", "float"), name)
    m = np.random.default_rng(d.int(0, 999)).random(shape) < 0.3
    m[..., 0] = False          # every query sees a key: a row masked whole is NaN in both
    return m if kind == "bool" else np.where(m, -np.inf, 0.0)


def _mha(d):
    e, h = d.pick(((4, 1), (4, 2), (6, 3)), "embed_heads")
    kdim, vdim = (d.pick((None, 3)), d.pick((None, 5))) if d.coin("kvdim") else (None, None)
    bf = d.coin("batch_first")
    kw = dict(embed_dim=e, num_heads=h, bias=d.coin("bias"), add_bias_kv=d.coin("bias_kv"),
              add_zero_attn=d.coin("zero_attn"), kdim=kdim, vdim=vdim, batch_first=bf)
    batched = d.pick((True, True, False), "batched")
    b, lq, lk = d.int(1, 2), d.int(1, 3), d.int(1, 3)

    def seq(length, dim):
        return (b, length, dim) if bf and batched else ((length, b, dim) if batched else (length, dim))
    q = _randn(d, seq(lq, e))
    k = _randn(d, seq(lk, kdim or e)) if kdim or vdim or d.coin("cross") else None
    v = _randn(d, seq(lk, vdim or e)) if k is not None else None
    if k is None:
        k = v = q
        lk = lq
    fwd = dict(need_weights=d.coin("need_weights"), average_attn_weights=d.coin("avg"))
    if d.coin("attn_mask"):
        fwd["attn_mask"] = _bool_or_float_mask(d, d.pick(((lq, lk), (b * h, lq, lk))) if batched else (lq, lk), "am")
    if d.coin("kpm"):
        fwd["key_padding_mask"] = _bool_or_float_mask(d, (b, lk) if batched else (lk,), "kpm_kind")
    if lq == lk and d.coin("causal"):
        fwd["is_causal"] = True           # torch asks for attn_mask beside it
    inputs = [q, k, v] if k is not q else [q, q, q]
    return Spec("MultiheadAttention", kw, inputs, fwd, grad_inputs=[0, 1, 2] if k is not q else [0])


def _transformer(d):
    dec = d.coin("decoder")
    e, h = d.pick(((4, 1), (4, 2)), "embed_heads")
    bf = d.coin("batch_first")
    train = d.coin("train")               # dropout 0 in train mode: torch's slow path, same values
    kw = dict(d_model=e, nhead=h, dim_feedforward=d.int(3, 8), dropout=0.0 if train else 0.1, batch_first=bf,
              norm_first=d.coin("norm_first"), activation=d.pick(("relu", "gelu"), "act"),
              bias=d.coin("bias"))
    b, ls, lt = d.int(1, 2), d.int(1, 3), d.int(1, 3)
    batched = d.pick((True, True, False), "batched")

    def seq(length):
        return (b, length, e) if bf and batched else ((length, b, e) if batched else (length, e))
    src = _randn(d, seq(ls))
    fwd = {}
    padding = (b, ls) if batched else (ls,)
    if not dec:
        _maybe_mask(d, fwd, "src_mask", (ls, ls), "mask", "mk")
        _maybe_mask(d, fwd, "src_key_padding_mask", padding, "kpm", "kpm_kind")
        if "src_mask" in fwd and d.coin("causal"):
            fwd["is_causal"] = True
        return Spec("TransformerEncoderLayer", kw, [src], fwd, train=train)
    tgt = _randn(d, seq(lt))
    _maybe_mask(d, fwd, "tgt_mask", (lt, lt), "tmask", "tmk")
    _maybe_mask(d, fwd, "memory_mask", (lt, ls), "mmask", "mmk")
    _maybe_mask(d, fwd, "memory_key_padding_mask", padding, "mkpm", "mkpm_kind")
    if "tgt_mask" in fwd and d.coin("tcausal"):
        fwd["tgt_is_causal"] = True
    return Spec("TransformerDecoderLayer", kw, [tgt, src], fwd, train=train)


def _maybe_mask(d, fwd, key, shape, coin, kind):
    """``fwd[key]``, a bool or float mask of ``shape``, where the draw ``coin`` says so."""
    if d.coin(coin):
        fwd[key] = _bool_or_float_mask(d, shape, kind)


def _rnn(d):
    name = d.pick(("GRU", "LSTM", "RNN"), "cls")
    i, hsz = d.int(1, 3), d.int(1, 3)
    layers, bidir, bf = d.int(1, 2), d.coin("bidir"), d.coin("batch_first")
    kw = dict(input_size=i, hidden_size=hsz, num_layers=layers, bias=d.coin("bias"), batch_first=bf,
              bidirectional=bidir)
    if name == "RNN":
        kw["nonlinearity"] = d.pick(("tanh", "relu"), "nl")
    if name == "LSTM" and d.coin("proj") and hsz > 1:
        kw["proj_size"] = hsz - 1
    b, t = d.int(1, 2), d.int(1, 3)
    batched = d.pick((True, True, False), "batched")
    x = _randn(d, ((b, t, i) if bf else (t, b, i)) if batched else (t, i))
    inputs = [x]
    if d.coin("h0"):
        lead = (layers * (2 if bidir else 1),)
        hb = lead + ((b,) if batched else ())
        h0 = _randn(d, hb + (kw.get("proj_size") or hsz,))
        inputs.append((h0, _randn(d, hb + (hsz,))) if name == "LSTM" else h0)
    return Spec(name, kw, inputs, train=d.coin("train"))


def _stack(d):
    """TransformerEncoder (torch's nested-tensor fast path in eval zeroes padded positions) and
    TransformerDecoder, of 1-2 layers, with a final norm or not."""
    dec = d.coin("decoder")
    e, h = d.pick(((4, 1), (4, 2)), "embed_heads")
    bf = d.coin("batch_first")
    layer = dict(d_model=e, nhead=h, dim_feedforward=d.int(3, 6), dropout=0.0, batch_first=bf,
                 norm_first=d.coin("norm_first"), activation=d.pick(("relu", "gelu"), "act"))
    kw = dict(layer=layer, num_layers=d.int(1, 2), norm=d.coin("final_norm"))
    b, ls, lt = d.int(1, 3), d.int(1, 4), d.int(1, 3)
    batched = d.pick((True, True, False), "batched")

    def seq(length):
        return (b, length, e) if bf and batched else ((length, b, e) if batched else (length, e))
    src, fwd = _randn(d, seq(ls)), {}
    if not dec:
        kw["enable_nested_tensor"] = d.coin("nested")
        if d.coin("kpm"):
            fwd["src_key_padding_mask"] = _bool_or_float_mask(d, (b, ls) if batched else (ls,), "kpm_kind")
        if d.coin("mask"):
            fwd["mask"] = _bool_or_float_mask(d, (ls, ls), "mk")
        return Spec("TransformerEncoder", kw, [src], fwd, train=d.coin("train"))
    if d.coin("tmask"):
        fwd["tgt_mask"] = _bool_or_float_mask(d, (lt, lt), "tmk")
    if d.coin("tkpm"):
        fwd["tgt_key_padding_mask"] = _bool_or_float_mask(d, (b, lt) if batched else (lt,), "tkpm_kind")
    if d.coin("mkpm"):
        fwd["memory_key_padding_mask"] = _bool_or_float_mask(d, (b, ls) if batched else (ls,), "mkpm_kind")
    return Spec("TransformerDecoder", kw, [_randn(d, seq(lt)), src], fwd, train=d.coin("train"))


def _packed(d):
    """A recurrent layer over pack_padded_sequence, unpacked by pad_packed_sequence."""
    name = d.pick(("GRU", "LSTM", "RNN"), "cls")
    i, hsz, bf = d.int(1, 3), d.int(1, 3), d.coin("batch_first")
    kw = dict(input_size=i, hidden_size=hsz, num_layers=d.int(1, 2), batch_first=bf, bidirectional=d.coin("bidir"))
    b, t = d.int(1, 3), d.int(1, 4)
    lengths = [d.int(1, t) for _ in range(b)]
    sort = d.coin("enforce_sorted")
    if sort:
        lengths = sorted(lengths, reverse=True)
    spec = Spec(name, kw, [_randn(d, (b, t, i) if bf else (t, b, i))], train=d.coin("train"))
    spec.packed = (lengths, sort)
    return spec


def _loss(d):
    name = d.pick(("CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss",
                   "SmoothL1Loss", "HuberLoss", "KLDivLoss"), "cls")
    red = d.pick(("mean", "sum", "none"), "reduction")
    kw = dict(reduction=red)
    if name in ("CrossEntropyLoss", "NLLLoss"):
        c = d.int(1, 4)
        shape = d.pick(((c,), (1, c), (3, c), (2, c, 3), (0, c)), "shape")
        tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
        if d.coin("weight"):
            kw["weight"] = _rand(d, c, 0.2)
        prob = name == "CrossEntropyLoss" and d.coin("prob")
        if name == "CrossEntropyLoss":
            kw["label_smoothing"] = d.pick((0.0, 0.0, 0.1, 0.5), "ls")
        if prob:
            p = _rand(d, shape)
            target = p / p.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
        else:
            target = _ints(d, tshape, 0, c)
            if d.coin("ignore"):
                kw["ignore_index"] = d.pick((-100, 0, c - 1), "ignore_index")
                if target.size and kw["ignore_index"] == -100:
                    target.flat[0] = -100
                if d.coin("all_ignored"):
                    target[...] = kw["ignore_index"]
        x = _randn(d, shape)
        if name == "NLLLoss":
            x = x - np.log(np.exp(x).sum(axis=0 if len(shape) == 1 else 1, keepdims=True))
        return Spec(name, kw, [x, target], grad_inputs=[0, 1] if prob else [0])
    shape = d.pick(((), (3,), (2, 3), (2, 1, 3)), "shape")
    x, y = _randn(d, shape), _randn(d, shape)
    if name == "BCEWithLogitsLoss":
        y = _rand(d, shape)
        if d.coin("pos_weight") and shape:
            kw["pos_weight"] = _rand(d, shape[-1:], 0.5)
        if d.coin("weight"):
            kw["weight"] = _rand(d, shape, 0.5)
    elif name == "SmoothL1Loss":
        kw["beta"] = d.pick((1.0, 0.5, 0.0), "beta")
    elif name == "HuberLoss":
        kw["delta"] = d.pick((1.0, 0.3), "delta")
    elif name == "KLDivLoss":
        kw["log_target"] = d.coin("log_target")
        x = np.log(_rand(d, shape, 0.1))
        y = np.log(_rand(d, shape, 0.1)) if kw["log_target"] else (
            _rand(d, shape))
        if red == "mean":
            kw["reduction"] = d.pick(("mean", "batchmean"), "reduction")
    return Spec(name, kw, [x, y], grad_inputs=[0, 1])


BUILDERS = {"linear": _linear, "embedding": _embedding, "layernorm": _layernorm, "batchnorm": _batchnorm,
            "groupnorm": _groupnorm, "conv": _conv, "convt": _convt, "pool": _pool, "dropout": _dropout,
            "mha": _mha, "transformer": _transformer, "rnn": _rnn, "loss": _loss, "stack": _stack,
            "packed": _packed}


# ---- building and running both -------------------------------------------------------------------
def _to(lib, value, dtype):
    """A numpy value as lib's tensor: floats in the drawn dtype, ints as int64, bools as bool."""
    if isinstance(value, tuple):
        return tuple(_to(lib, v, dtype) for v in value)
    if not isinstance(value, np.ndarray):
        return value
    if value.dtype.kind == "f":
        return lib.tensor(value, dtype=getattr(lib, dtype))
    return lib.tensor(value)


def _build(lib, spec, dtype):
    kw = {k: _to(lib, v, dtype) for k, v in spec.kwargs.items()}
    if spec.name in ("TransformerEncoder", "TransformerDecoder"):
        layer = getattr(lib.nn, spec.name + "Layer")(**kw.pop("layer"))
        kw["norm"] = lib.nn.LayerNorm(layer.linear1.in_features) if kw["norm"] else None
        mod = getattr(lib.nn, spec.name)(layer, **kw)
    else:
        mod = getattr(lib.nn, spec.name)(**kw)
    mod = mod.double() if dtype == "float64" else mod
    return mod.train() if spec.train else mod.eval()


def _leaves(lib, spec, dtype):
    """The forward's inputs and the leaves they are made from (a transposed input is a view of a
    leaf holding the transposed values; "other" is the other float dtype than the module's)."""
    seen, inputs, leaves = {}, [], []   # the same array given twice is the same tensor (self-attention)
    for i, a in enumerate(spec.inputs):
        layout = spec.layout.get(i)
        if layout == "T":
            leaf = _to(lib, np.ascontiguousarray(np.swapaxes(a, -1, -2)), dtype)
            x = leaf.transpose(-1, -2)
        else:
            other = {"float32": "float64", "float64": "float32"}[dtype]
            x = leaf = seen.setdefault(id(a), _to(lib, a, other if layout == "other" else dtype))
        inputs.append(x)
        leaves.append(leaf)
    for i in spec.grad_inputs:
        parts = leaves[i] if isinstance(leaves[i], tuple) else (leaves[i],)
        for p in parts:
            p.requires_grad_(True)
    return [x.transpose(-1, -2) if spec.layout.get(i) == "T" else x for i, x in enumerate(leaves)], leaves


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [] if out is None else [out]


def _forward(lib, mod, spec, inputs, fwd):
    if spec.packed is None:
        return mod(*inputs, **fwd)
    lengths, sort = spec.packed
    rnn = lib.nn.utils.rnn
    bf = spec.kwargs["batch_first"]
    out, state = mod(rnn.pack_padded_sequence(inputs[0], lib.tensor(lengths), bf, sort))
    return rnn.pad_packed_sequence(out, bf), state


class BackwardError(Exception):
    """A backward that raised (the forward did not)."""


def _run(lib, mod, spec, dtype):
    """Forward, then the gradients of a weighted sum of the float outputs. Returns (outputs,
    grads by name, buffers) as numpy, or the exception raised."""
    inputs, leaves = _leaves(lib, spec, dtype)
    fwd = {k: _to(lib, v, dtype) for k, v in spec.fwd.items()}
    try:
        for _ in range(spec.warm):      # a forward before: running statistics of two batches
            mod(*[x.detach() * 2 + 1 for x in inputs], **fwd)
        outs = _flat(_forward(lib, mod, spec, inputs, fwd))
    except Exception as exc:            # noqa: BLE001 - the class is compared with torch's
        return exc
    named = [(f"in{i}.{j}", p) for i in spec.grad_inputs
             for j, p in enumerate(leaves[i] if isinstance(leaves[i], tuple) else (leaves[i],))]
    named += [(n, p) for n, p in mod.named_parameters()]
    diff = [o for o in outs if o.dtype.is_floating_point and o.requires_grad]
    grads = {}
    if diff and named:
        rng = np.random.default_rng(7)
        total = sum((o * lib.tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype)).sum() for o in diff)
        try:
            got = lib.autograd.grad(total, [p for _, p in named], allow_unused=True)
        except RuntimeError as exc:
            return BackwardError(exc)
        grads = {n: (None if g is None else g.detach().numpy()) for (n, _), g in zip(named, got)}
    bufs = {n: b.detach().numpy() for n, b in mod.named_buffers()}
    bufs.update({n: p.detach().numpy() for n, p in mod.named_parameters()})     # changed in place?
    return [o.detach().numpy() for o in outs], [(tuple(o.shape), str(o.dtype)) for o in outs], grads, bufs


def _same(a, b, dtype, mixed=False):
    """a and b equal to dtype's tolerance (float32's where a float32 input took part: torch computes
    some float64 results of float32 inputs in float32)."""
    if a is None or b is None:      # unused (None) and a zero gradient are the same answer
        other = b if a is None else a
        return other is None or not np.any(other)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "biu" or b.dtype.kind in "biu":
        return np.array_equal(a, b)
    rtol, atol = _TOL["float32" if np.float32 in (a.dtype, b.dtype) or mixed else dtype]
    return np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def _compare(spec, dtype):
    """The first difference between gt and torch on spec, as a string; None where they agree."""
    tmod = _build(torch, spec, dtype)
    try:
        gmod = _build(gt, spec, dtype)
    except Exception as exc:            # noqa: BLE001
        return f"gt constructor raised {type(exc).__name__}: {exc}"
    state = {k: gt.tensor(v.detach().numpy()) for k, v in tmod.state_dict().items()}
    gmod.load_state_dict(state, strict=True)
    torch.manual_seed(0)
    want = _run(torch, tmod, spec, dtype)
    got = _run(gt, gmod, spec, dtype)
    if isinstance(want, BackwardError) and "other" in spec.layout.values():
        return None     # torch 2.13's huber/smooth_l1/mse backwards of mixed float dtypes raise
    if isinstance(want, Exception) or isinstance(got, Exception):
        if isinstance(want, Exception) and isinstance(got, Exception):
            if type(want).__name__ == type(got).__name__ or isinstance(got, type(want)):
                return None
        return f"torch: {want!r:.300}  gt: {got!r:.300}"
    (wv, wm, wg, wb), (gv, gm, gg, gb) = want, got
    mixed = "other" in spec.layout.values()
    wm = [(s, d.replace("torch.", "")) for s, d in wm]
    gm = [(s, d.replace("gt.", "")) for s, d in gm]
    if wm != gm:
        return f"outputs: torch {wm} gt {gm}"
    for i, (a, b) in enumerate(zip(wv, gv)):
        if not _same(a, b, dtype, mixed):
            return f"output {i}: torch {a.ravel()[:6]} gt {b.ravel()[:6]}"
    for key in sorted(set(wg) | set(gg)):
        if key not in wg or key not in gg:
            return f"grad names: torch {sorted(wg)} gt {sorted(gg)}"
        if not _same(wg[key], gg[key], dtype, mixed):
            return f"grad {key}: torch {wg[key] if wg[key] is None else wg[key].ravel()[:6]} gt " \
                   f"{gg[key] if gg[key] is None else gg[key].ravel()[:6]}"
    if sorted(wb) != sorted(gb):
        return f"buffer names: torch {sorted(wb)} gt {sorted(gb)}"
    for key in wb:
        if not _same(wb[key], gb[key], dtype, mixed):
            return f"buffer {key}: torch {wb[key].ravel()[:6]} gt {gb[key].ravel()[:6]}"
    return None


def _describe(spec, dtype, notes):
    def short(v):
        return f"array{v.shape}{v.dtype}" if isinstance(v, np.ndarray) else (
            [short(x) for x in v] if isinstance(v, tuple) else v)
    return json.dumps(dict(name=spec.name, dtype=dtype, train=spec.train, notes=notes,
                           kwargs={k: short(v) for k, v in spec.kwargs.items()},
                           inputs=[short(a) for a in spec.inputs],
                           fwd={k: short(v) for k, v in spec.fwd.items()}), default=str)


def _check(data, family):
    d = Draw(data)
    dtype = d.pick(("float32", "float64"), "dtype")
    spec = BUILDERS[family](d)
    for i, a in enumerate(spec.inputs):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.ndim >= 2 and d.pick(range(5)) == 0:
            spec.layout[i] = d.notes[f"layout{i}"] = "T"
    if spec.inputs and isinstance(spec.inputs[0], np.ndarray) and spec.inputs[0].dtype.kind == "f" and (
            0 not in spec.layout and spec.inputs[0].size and d.pick(range(12)) == 0):
        # (torch checks no dtypes for an empty batch: a conv of one takes any input dtype)
        spec.layout[0] = d.notes["layout0"] = "other"
    problem = _compare(spec, dtype)
    if problem is None:
        return
    line = f"{_describe(spec, dtype, d.notes)}\n    -> {problem}"
    if _LOG:
        with open(_LOG, "a") as fh:
            fh.write(line + "\n")
        return
    raise AssertionError(line)


@pytest.mark.filterwarnings("ignore::UserWarning")      # torch's about mixed mask kinds, oneDNN
@pytest.mark.parametrize("family", sorted(BUILDERS))
@settings(derandomize=not _EXAMPLES, deadline=None, max_examples=_EXAMPLES or 4,
          suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_module_matches_torch(family, data):
    _check(data, family)
