"""Quantized edges beside torch 2.13: the dynamically quantized Linear on inputs holding NaN or
infinities (fbgemm's arithmetic, bit for bit), ``load_state_dict`` of torch's quantized state dict
passed directly, and views, strides and offsets of per-channel and per-tensor quantized tensors."""

import re

import numpy as np
import pytest

import gt
from gt.tensor.quantized import as_quantized
from helpers import torch_or_skip

torch = torch_or_skip()
pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated"),
              pytest.mark.filterwarnings("ignore:invalid value encountered")]    # numpy's, at inf * 0


def _pair(n, out, seed, bias=True):
    torch.manual_seed(seed)
    tl = torch.nn.Linear(n, out, bias=bias)
    gl = gt.nn.Linear(n, out, bias=bias)
    gl.load_state_dict({k: v.detach().numpy() for k, v in tl.state_dict().items()})
    return (torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(tl), dtype=torch.qint8)[0],
            gt.ao.quantization.quantize_dynamic(gt.nn.Sequential(gl), dtype=gt.qint8)[0])


def _same(x, tq, gq):
    try:
        want = tq(torch.from_numpy(x)).numpy()
    except RuntimeError as exc:
        with pytest.raises(RuntimeError, match=str(exc)):
            gq(gt.tensor(x))
        return "raised"
    got = gq(gt.tensor(x)).numpy()
    np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32), err_msg=repr(x))
    return "equal"


def test_dynamic_linear_of_nan_and_infinite_inputs_is_fbgemm_s():
    # numpy's engine gave NaN where torch gives +-inf (an infinite scale times the wrapped int32 sums'
    # signs) and raised at any NaN, which fbgemm's min and max skip (AVX lanes: one in the last 8
    # values hides its lane's other values) and quantizes to 255
    inf, nan = np.inf, np.nan
    tq, gq = _pair(4, 3, seed=0)
    for row in ([1, inf, 0.5, -0.2], [1, -inf, 0.5, -0.2], [inf, -inf, 0.5, -0.2], [nan, 1, 0.5, -0.2],
                [0.2, nan, 0.5, -0.2], [0, 0, 0, inf], [nan, inf, 1, 2], [1, nan, -inf, 2], [1, 2, 3, inf]):
        _same(np.array([row], np.float32), tq, gq)
    rng = np.random.default_rng(1)
    seen = set()
    for trial in range(40):
        n, rows = (int(rng.integers(1, 40)), int(rng.integers(1, 5))) if trial % 20 else (300, 9)
        tq, gq = _pair(n, int(rng.integers(1, 6)), seed=trial, bias=bool(trial % 3))
        x = rng.standard_normal((rows, n)).astype(np.float32)
        x.flat[rng.integers(0, x.size, int(rng.integers(1, 4)))] = rng.choice([nan, inf, -inf, nan], 3)[:1]
        seen.add(_same(x, tq, gq))
    lanes = np.full((1, 16), 0.5, np.float32)                      # -5 and the NaN share lane 3
    lanes[0, 0], lanes[0, 3], lanes[0, 11] = 0.1, -5.0, nan
    tq, gq = _pair(16, 3, seed=7)
    _same(lanes, tq, gq)
    assert seen == {"raised", "equal"}


def test_load_state_dict_reads_torch_s_quantized_state_dict_object():
    # torch's (qint8 torch tensor, torch bias) pair loaded as given and failed at forward with AttributeError
    tq, gq = _pair(6, 4, seed=3)
    fresh = gt.ao.quantization.quantize_dynamic(gt.nn.Sequential(gt.nn.Linear(6, 4)))
    fresh.load_state_dict(torch.nn.Sequential(tq).state_dict())
    x = np.random.default_rng(3).standard_normal((5, 6)).astype(np.float32)
    want = tq(torch.from_numpy(x)).numpy().view(np.int32)
    np.testing.assert_array_equal(fresh(gt.tensor(x)).numpy().view(np.int32), want)
    assert fresh[0].weight().equal(gq.weight())
    w = torch.quantize_per_channel(torch.randn(4, 6), torch.rand(4) + 0.1, torch.zeros(4, dtype=torch.long), 0,
                                   torch.qint8)
    affine = torch.quantize_per_channel(torch.randn(4, 6), torch.rand(4) + 0.1, torch.arange(4), 0, torch.qint8)
    for weight in (w, affine):      # per-channel weights, of zero points 0 and not (gt refused them): torch's outputs
        fresh.load_state_dict({**torch.nn.Sequential(tq).state_dict(), "0._packed_params._packed_params": (weight,
                                                                                                          None)})
        tq.set_weight_bias(weight, None)
        np.testing.assert_array_equal(fresh(gt.tensor(x)).numpy().view(np.int32),
                                      tq(torch.from_numpy(x)).numpy().view(np.int32))
    qc = as_quantized(w)      # what the load reads torch's tensors with
    assert (qc.q_per_channel_axis(), qc.dtype) == (0, gt.qint8)
    np.testing.assert_array_equal(qc.dequantize().numpy(), w.dequantize().numpy())


def _views():
    return {"reshape(2,12)": lambda q: q.reshape(2, 12), "reshape(6,4)": lambda q: q.reshape(6, 4),
            "view(2,3,2,2)": lambda q: q.view(2, 3, 2, 2), "flatten": lambda q: q.flatten(),
            "unsqueeze0": lambda q: q.unsqueeze(0), "unsqueeze-1": lambda q: q.unsqueeze(-1),
            "squeeze": lambda q: q.unsqueeze(1).squeeze(), "squeeze1": lambda q: q.unsqueeze(1).squeeze(1),
            "transpose": lambda q: q.transpose(1, 2), "permute": lambda q: q.permute(2, 0, 1),
            "[...,1:3]": lambda q: q[..., 1:3], "[:,::2]": lambda q: q[:, ::2], "[None]": lambda q: q[None],
            "[0]": lambda q: q[0], "[:,1]": lambda q: q[:, 1], "[1:]": lambda q: q[1:]}


# where torch's answer is a tensor whose axis, scales and values agree with the view's (torch 2.13
# keeps stale parameters, or raises an internal error, after picking or slicing on axis 0)
_TORCH_SANE = {(0, "[...,1:3]"), (0, "[:,::2]"), (1, "[0]"), (1, "[1:]"), (1, "[...,1:3]"), (1, "[:,::2]"),
               (2, "[0]"), (2, "[:,1]"), (2, "[1:]"), (2, "[...,1:3]"), (2, "[:,::2]")}


def test_per_channel_views_are_torch_s():
    x = np.random.default_rng(4).standard_normal((2, 3, 4)).astype(np.float32)
    for axis in (0, 1, 2):
        scales, zps = np.linspace(0.05, 0.2, x.shape[axis]), np.arange(x.shape[axis]) - 1
        t = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales), torch.from_numpy(zps), axis,
                                       torch.qint8)
        g = gt.quantize_per_channel(gt.tensor(x), gt.tensor(scales), gt.tensor(zps), axis, gt.qint8)
        assert (g.stride(), g.is_contiguous(), g.storage_offset()) == (t.stride(), t.is_contiguous(), 0)
        for name, f in _views().items():
            if name.startswith("[") and (axis, name) not in _TORCH_SANE:
                continue
            try:
                w = f(t)
                w = (w, w.q_per_channel_axis(), w.dequantize())
            except RuntimeError as exc:
                with pytest.raises(RuntimeError, match=re.escape(str(exc).split(" (")[0].split("\n")[0])):
                    f(g)
                continue
            v = f(g)
            assert (tuple(v.shape), v.q_per_channel_axis()) == (tuple(w[0].shape), w[1]), (axis, name)
            assert v.q_per_channel_scales().tolist() == w[0].q_per_channel_scales().tolist(), (axis, name)
            np.testing.assert_array_equal(v.dequantize().numpy(), w[2].numpy())
            np.testing.assert_array_equal(v.int_repr().numpy(), w[0].int_repr().numpy())
            assert _layout(v) == _layout(w[0], dense=(f(g.int_repr()), f(t.int_repr()))), (axis, name)
    with pytest.raises(RuntimeError, match="one channel"):
        g[:, :, 1]
    with pytest.raises(RuntimeError, match="advanced indexing"):
        g[[0, 1]]
    t1 = torch.quantize_per_channel(torch.ones(2, 1, 4), torch.ones(1), torch.zeros(1, dtype=torch.long), 1,
                                    torch.qint8)
    g1 = gt.quantize_per_channel(gt.ones(2, 1, 4), gt.ones(1), gt.zeros(1, dtype=gt.int64), 1, gt.qint8)
    for f in (lambda q: q.squeeze(), lambda q: q.squeeze(1)):
        with pytest.raises(RuntimeError, match="Squeeze is only possible on non-axis dimension"):
            f(t1)
        with pytest.raises(RuntimeError, match="Squeeze is only possible on non-axis dimension"):
            f(g1)


def _layout(t, dense=None):
    """(stride, is_contiguous, storage_offset) of ``t``: torch's quantized tensor's where gt's dense
    view has torch's dense layout, else gt's dense one (a slice of a tensor cut over devices is a
    copy of its own layout there, as any gt tensor's)."""
    if dense is not None and _layout(dense[0]) != _layout(dense[1]):
        return _layout(dense[0])
    return t.stride(), t.is_contiguous(), t.storage_offset()


def test_per_tensor_strides_offsets_and_contiguous_are_torch_s():
    x = np.random.default_rng(5).standard_normal((3, 4, 5)).astype(np.float32)
    t = torch.quantize_per_tensor(torch.from_numpy(x), 0.05, 3, torch.quint8)
    g = gt.quantize_per_tensor(gt.tensor(x), 0.05, 3, gt.quint8)
    for f in (lambda q: q, lambda q: q.transpose(0, 2), lambda q: q[1:, ::2], lambda q: q[:, 2],
              lambda q: q.permute(1, 2, 0),
              lambda q: q.transpose(0, 1).contiguous(), lambda q: q[2:].reshape(4, 5)):
        w, v = f(t), f(g)
        assert _layout(v) == _layout(w, dense=(f(g.int_repr()), f(t.int_repr())))
        np.testing.assert_array_equal(v.int_repr().numpy(), w.int_repr().numpy())


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")      # torch's, saving its quantized tensors
def test_float_qparams_per_channel_quantization_is_torch_s(tmp_path):
    # float zero points raised NotImplementedError; torch's kernel: lrintf(x * (1/scale) + zp) kept as an
    # int32 (3e9 wraps negative, inf and NaN become 0), a zero scale taken as 1
    rng = np.random.default_rng(6)
    for i in range(16):
        x = (rng.standard_normal((3, 7)) * 10.0 ** (i % 5 - 2)).astype(np.float32)
        x[0, :6] = [np.nan, np.inf, -np.inf, 3e9, -3e9, 1e20]
        scales = rng.random(3) * 10.0 ** (i % 4 - 3) + 1e-6
        scales[1] = 0.0 if i % 3 == 0 else scales[1]
        zps = (rng.standard_normal(3) * 3).astype(np.float32)
        for name in ("quint8", "qint8"):
            src = x if i % 2 == 0 else x.T.copy()
            t = torch.quantize_per_channel(torch.from_numpy(src), torch.from_numpy(scales), torch.from_numpy(zps),
                                           i % 2, getattr(torch, name))
            g = gt.quantize_per_channel(gt.tensor(src), gt.tensor(scales), gt.tensor(zps), i % 2, getattr(gt, name))
            np.testing.assert_array_equal(g.int_repr().numpy(), t.int_repr().numpy())
            np.testing.assert_array_equal(g.dequantize().numpy().view(np.int32), t.dequantize().numpy().view(np.int32))
            assert g.qscheme() == gt.per_channel_affine_float_qparams and g.qscheme() == t.qscheme()
            assert g.q_per_channel_scales().dtype == gt.float32 and g.q_per_channel_zero_points().dtype == gt.float32
            np.testing.assert_array_equal(g.q_per_channel_zero_points().numpy(), t.q_per_channel_zero_points().numpy())
    if "placement" not in repr(g):      # a mesh's parameter tensors name their placement
        assert repr(g).split() == repr(t).replace("torch.", "gt.").split()      # its line breaks aside
    torch.save(t, tmp_path / "t.pt")                      # torch writes it under per_channel_affine
    assert gt.load(tmp_path / "t.pt").equal(g)
    gt.save(g, tmp_path / "g.pt")
    assert torch.load(tmp_path / "g.pt").equal(t)


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_quantized_embedding_is_torch_s(tmp_path):
    # quantize_dynamic(model, {nn.Embedding}, dtype=quint8): float-qparams rows, looked up as
    # embedding_byte's fma(q, scale, -(zero_point * scale))
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Embedding(9, 6), torch.nn.Linear(6, 2))
    with torch.no_grad():
        tm[0].weight[3] = 0.25                       # a constant row: scale below eps becomes 1
        tm[0].weight[4] *= 1e-3
    gm = gt.nn.Sequential(gt.nn.Embedding(9, 6), gt.nn.Linear(6, 2))
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    tq = torch.ao.quantization.quantize_dynamic(tm, {torch.nn.Embedding}, dtype=torch.quint8)
    gq = gt.ao.quantization.quantize_dynamic(gm, {gt.nn.Embedding}, dtype=gt.quint8)
    assert repr(gq[0]) == repr(tq[0]).replace("torch.", "gt.")
    assert gq[0].weight().equal(as_quantized(tq[0].weight()))
    idx = np.array([[0, 3, 8], [4, 4, 1]])
    for ix in (idx, idx.astype(np.int32), idx[0]):
        want = tq[0](torch.from_numpy(ix)).numpy()
        np.testing.assert_array_equal(gq[0](gt.tensor(ix)).numpy().view(np.int32), want.view(np.int32))
    assert type(gt.ao.quantization.quantize_dynamic(gm, dtype=gt.quint8)[0]) is gt.ao.nn.quantized.Embedding
    for m, model in ((torch, tm), (gt, gm)):
        with pytest.raises(RuntimeError, match="Expect 32 or 64 bit indices, but found Float instead"):
            (tq if m is torch else gq)[0](m.tensor([1.0]))
        with pytest.raises(AssertionError, match="only supported with float_qparams_weight_only_qconfig"):
            m.ao.quantization.quantize_dynamic(model, {m.nn.Embedding}, dtype=m.qint8)
        with pytest.raises(AssertionError, match="dynamic quantized linear are qint8 and float16"):
            m.ao.quantization.quantize_dynamic(model, {m.nn.Linear}, dtype=m.quint8)
    sd = tq.state_dict()
    assert list(gq.state_dict()) == list(sd)
    fresh = gt.ao.quantization.quantize_dynamic(gt.nn.Sequential(gt.nn.Embedding(9, 6), gt.nn.Linear(6, 2)),
                                                dtype=gt.quint8)
    fresh.load_state_dict(sd)                                # torch's own objects, passed directly
    assert fresh[0].weight().equal(gq[0].weight())
    torch.save(sd, tmp_path / "t.pt")
    fresh.load_state_dict(gt.load(tmp_path / "t.pt"))
    assert fresh[0].weight().equal(gq[0].weight())
    gt.save(gq.state_dict(), tmp_path / "g.pt")
    tq.load_state_dict(torch.load(tmp_path / "g.pt"))
    assert tq[0].weight().equal(torch.load(tmp_path / "g.pt")["0._packed_params._packed_weight"])


def test_dynamic_linear_of_8_bit_inputs_is_fbgemm_s():
    # reduce_range=False (version-1 recurrent layers) quantizes to 8 bits: fbgemm's kernels without AVX-512
    # VNNI (vpmaddubsw) saturate each pair of uint8 x int8 products at int16, which gt missed (seen on an AMD
    # EPYC with AVX2: tens of quanta off); with VNNI torch's sums are exact, and so are gt's
    rng = np.random.default_rng(4)
    for trial in range(16):
        k, out = int(rng.integers(2, 40)), int(rng.integers(1, 5))
        w = rng.standard_normal((out, k)).astype(np.float32)
        w = torch.quantize_per_channel(torch.from_numpy(w), torch.rand(out) * 0.02 + 0.001,
                                       torch.zeros(out, dtype=torch.long), 0, torch.qint8) if trial % 2 else \
            torch.quantize_per_tensor(torch.from_numpy(w), 0.01, 0, torch.qint8)
        bias = torch.from_numpy(rng.standard_normal(out).astype(np.float32)) if trial % 3 else None
        x = (rng.standard_normal((5, k)) * rng.uniform(0.1, 10)).astype(np.float32)
        want = torch.ops.quantized.linear_dynamic(torch.from_numpy(x), torch.ops.quantized.linear_prepack(w, bias),
                                                  False).numpy()
        got = gt.ao.nn.quantized.dynamic_products.linear_dynamic(
            gt.tensor(x), as_quantized(w), None if bias is None else gt.tensor(bias.numpy()), tracked=False,
            reduce_range=False).numpy()
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32), err_msg=str(trial))
