"""Quantized tensors (gt/tensor/quantized.py, quantize_functions.py, quantize_math.py) beside
torch 2.13: ``quantize_per_tensor``/``quantize_per_channel``'s integers and ``dequantize``'s
floats to the bit on random inputs with exact .5 ties, NaN/inf, extreme scales and zero points;
fake quantization's values and straight-through gradients to the bit; the parameters, repr,
views, checkpoints both ways and torch's refusals."""

import copy
import io
import pickle

import numpy as np
import pytest

import gt
from gt.sharding import use_mesh
from helpers import torch_or_skip

torch = torch_or_skip()
# torch 2.13 deprecates its quantized tensors (a UserWarning); values beyond float32 overflow on purpose
pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel"),
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")]

_RANGES = {"quint8": (0, 255), "qint8": (-128, 127), "qint32": (-2 ** 31, 2 ** 31 - 1)}
_SCALES = (0.1, 0.05, 1 / 3, 2.0 ** -7, 1e-40, -0.1, 0.0, 3e38, 1.7)


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(f"i{a.itemsize}") if a.dtype.kind == "f" else a


def _equal(got, want):
    np.testing.assert_array_equal(_bits(np.asarray(got)), _bits(np.asarray(want)))


def _values(rng, n, scale, dtype=np.float32):
    """Normal values at a few magnitudes, 40% of them exact ties (k + 0.5) * scale, 5% NaN/inf."""
    x = (rng.standard_normal(n) * (abs(scale) or 1.0) * rng.choice([1, 10, 200, 1e9])).astype(dtype)
    ties = ((rng.integers(-300, 300, n) + 0.5) * np.float32(scale)).astype(dtype)
    x = np.where(rng.random(n) < 0.4, ties, x)
    x[rng.random(n) < 0.05] = rng.choice([np.nan, np.inf, -np.inf])
    return x


@pytest.mark.parametrize("name", ["quint8", "qint8", "qint32"])
def test_quantize_per_tensor_integers_and_dequantize_are_torch_s_bits(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    low, high = _RANGES[name]
    for i in range(30):
        scale = _SCALES[i % len(_SCALES)] if i < 18 else float(rng.uniform(1e-3, 2))
        zp = int(rng.integers(low, high + 1)) if name != "qint32" else int(rng.integers(-2 ** 31, 2 ** 31))
        x = _values(rng, 37, scale)
        want = torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, getattr(torch, name))
        got = gt.quantize_per_tensor(gt.tensor(x), scale, zp, getattr(gt, name))
        _equal(got.int_repr().numpy(), want.int_repr().numpy())
        _equal(got.dequantize().numpy(), want.dequantize().numpy())
        assert (got.q_scale(), got.q_zero_point(), got.dtype) == (want.q_scale(), want.q_zero_point(), want.dtype)


@pytest.mark.parametrize("name", ["quint8", "qint8", "qint32"])
def test_quantize_per_channel_integers_and_dequantize_are_torch_s_bits(name):
    rng = np.random.default_rng(7 + sum(map(ord, name)))
    low, high = _RANGES[name]
    for i in range(24):
        axis = i % 3
        x = (rng.standard_normal((3, 5, 4)) * rng.choice([1, 10, 200, 1e9])).astype(np.float32)
        c = x.shape[axis]
        scales = rng.uniform(0.01, 1, c)
        scales[::3] = 0.1
        ties = ((rng.integers(-100, 100, x.shape) + 0.5) * np.float32(0.1)).astype(np.float32)
        x = np.where(rng.random(x.shape) < 0.3, ties, x)
        x[rng.random(x.shape) < 0.05] = rng.choice([np.nan, np.inf, -np.inf])
        zps = rng.integers(low, high + 1, c) if name != "qint32" else rng.integers(-2 ** 31, 2 ** 31, c)
        want = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales), torch.from_numpy(zps), axis,
                                          getattr(torch, name))
        got = gt.quantize_per_channel(gt.tensor(x), gt.tensor(scales), gt.tensor(zps), axis, getattr(gt, name))
        _equal(got.int_repr().numpy(), want.int_repr().numpy())
        _equal(got.dequantize().numpy(), want.dequantize().numpy())
        _equal(got.q_per_channel_scales().numpy(), want.q_per_channel_scales().numpy())
        _equal(got.q_per_channel_zero_points().numpy(), want.q_per_channel_zero_points().numpy())
        assert got.q_per_channel_axis() == want.q_per_channel_axis() == axis


def test_tensor_and_list_forms_of_quantize_per_tensor_are_torch_s():
    x = np.array([0.25, -1.0, 3.0, 0.35, 0.45], np.float32)
    for scale, zp in ((np.float64(0.1), 3), (np.float32(1 / 3), 0), (np.float64(0.05), 7.0)):
        for dims in ((), (1,)):
            want = torch.quantize_per_tensor(torch.from_numpy(x), torch.tensor(scale).reshape(dims),
                                             torch.tensor(zp).reshape(dims), torch.quint8)
            got = gt.quantize_per_tensor(gt.tensor(x), gt.tensor(scale).reshape(dims), gt.tensor(zp).reshape(dims),
                                         gt.quint8)
            _equal(got.int_repr().numpy(), want.int_repr().numpy())
            assert (got.q_scale(), got.q_zero_point()) == (want.q_scale(), want.q_zero_point())
    want = torch.quantize_per_tensor([torch.from_numpy(x), torch.from_numpy(2 * x)], torch.tensor([0.1, 0.2]),
                                     torch.tensor([1, 2]), torch.qint8)
    got = gt.quantize_per_tensor([gt.tensor(x), gt.tensor(2 * x)], gt.tensor([0.1, 0.2]), gt.tensor([1, 2]), gt.qint8)
    assert isinstance(got, tuple) and len(got) == 2
    for g, w in zip(got, want):
        _equal(g.int_repr().numpy(), w.int_repr().numpy())
        assert g.q_scale() == w.q_scale()
    for g, w in zip(gt.dequantize(list(got)), torch.dequantize(list(want))):
        _equal(g.numpy(), w.numpy())
    _equal(gt.dequantize(got[0]).numpy(), torch.dequantize(want[0]).numpy())


def _fake_pair(x, fn_t, fn_g, weights):
    """(torch's, gt's) values and input gradients of a fake quantization, ``weights`` its upstream."""
    tx, gx = torch.tensor(x, requires_grad=True), gt.tensor(x, requires_grad=True)
    ty, gy = fn_t(tx), fn_g(gx)
    (ty * torch.tensor(weights)).sum().backward()
    (gy * gt.tensor(weights)).sum().backward()
    return (ty.detach().numpy(), tx.grad.numpy()), (gy.detach().numpy(), gx.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fake_quantize_per_tensor_values_and_straight_through_gradient_are_torch_s(dtype):
    rng = np.random.default_rng(11)
    for i in range(24):
        scale = float(rng.choice([0.1, 0.05, 1 / 3, rng.uniform(1e-3, 2)]))
        qmin, qmax = [(0, 255), (-128, 127), (0, 15), (-2 ** 31, 2 ** 31 - 1)][i % 4]
        zp = int(rng.integers(qmin, qmax + 1))
        x, w = _values(rng, 33, scale, dtype), rng.standard_normal(33).astype(dtype)
        as_tensor = i % 3 == 0       # torch's tensor-qparams form: a float32 scale, an int32 zero point
        ts = torch.tensor([scale], dtype=torch.float32) if as_tensor else scale
        tz = torch.tensor([zp], dtype=torch.int32) if as_tensor else zp
        gs = gt.tensor([scale], dtype=gt.float32) if as_tensor else scale
        gz = gt.tensor([zp], dtype=gt.int32) if as_tensor else zp
        want, got = _fake_pair(x, lambda t: torch.fake_quantize_per_tensor_affine(t, ts, tz, qmin, qmax),
                               lambda t: gt.fake_quantize_per_tensor_affine(t, gs, gz, qmin, qmax), w)
        for g, t in zip(got, want):
            _equal(g, t)
        assert got[0].dtype == want[0].dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fake_quantize_per_channel_values_and_straight_through_gradient_are_torch_s(dtype):
    rng = np.random.default_rng(12)
    for i in range(16):
        qmin, qmax = [(0, 255), (-128, 127), (0, 15), (-2 ** 31, 2 ** 31 - 1)][i % 4]
        axis = i % 2
        x = _values(rng, 24, 0.1, dtype).reshape(4, 6)
        c = x.shape[axis]
        scales = rng.uniform(0.01, 1, c).astype(np.float32)
        zps = rng.integers(qmin, qmax + 1, c).astype(np.int32)
        w = rng.standard_normal(x.shape).astype(dtype)
        want, got = _fake_pair(
            x, lambda t: torch.fake_quantize_per_channel_affine(t, torch.from_numpy(scales), torch.from_numpy(zps),
                                                                axis, qmin, qmax),
            lambda t: gt.fake_quantize_per_channel_affine(t, gt.tensor(scales), gt.tensor(zps), axis, qmin, qmax), w)
        for g, t in zip(got, want):
            _equal(g, t)


def test_fake_quantize_trains_through_its_gradient_in_a_model():
    """Quantization-aware training's step: the fake-quantized weight's gradient reaches the weight."""
    w0 = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)
    x = np.random.default_rng(4).standard_normal((5, 3)).astype(np.float32)
    grads = []
    for m in (torch, gt):
        w = m.tensor(w0, requires_grad=True)
        y = m.tensor(x) @ m.fake_quantize_per_tensor_affine(w, 0.05, 0, -128, 127).T
        (y ** 2).mean().backward()
        grads.append(w.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)
    assert (grads[0] != 0).any()


_VIEWS = [lambda q: q.reshape(6, 4), lambda q: q.view(2, 12), lambda q: q.transpose(0, 1), lambda q: q.permute(2, 0, 1),
          lambda q: q[0], lambda q: q[:, 1:], lambda q: q[1, 2, 3], lambda q: q.flatten(), lambda q: q.unsqueeze(1),
          lambda q: q.unsqueeze(0).squeeze(0), lambda q: q.clone(), lambda q: q.detach(), lambda q: q.relu(),
          lambda q: q[:, :, 0].t(), lambda q: q.contiguous()]


def test_per_tensor_views_relu_and_equal_are_torch_s():
    x = np.random.default_rng(5).standard_normal((2, 3, 4)).astype(np.float32)
    tq = torch.quantize_per_tensor(torch.from_numpy(x), 0.05, 130, torch.quint8)
    gq = gt.quantize_per_tensor(gt.tensor(x), 0.05, 130, gt.quint8)
    for view in _VIEWS:
        t, g = view(tq), view(gq)
        assert g.is_quantized and g.shape == tuple(t.shape) and g.q_scale() == t.q_scale()
        _equal(g.int_repr().numpy(), t.int_repr().numpy())
    assert gt.equal(gq, gq.clone()) and gq.equal(gq.clone())
    other = gt.quantize_per_tensor(gt.tensor(x), 0.05, 131, gt.quint8)
    assert not gt.equal(gq, other) and not torch.equal(tq, torch.quantize_per_tensor(torch.from_numpy(x), 0.05, 131,
                                                                                    torch.quint8))
    assert len(gq) == len(tq) and gq.numel() == tq.numel() and gq.dim() == tq.dim() and gq.size(1) == tq.size(1)
    assert gq.element_size() == tq.element_size() == 1 and gq.type() == tq.type().replace("torch.", "gt.")
    qc = gt.quantize_per_channel(gt.tensor(x), gt.tensor([0.1, 0.2]), gt.tensor([3, -4]), 0, gt.qint8)
    for q in (gq, qc):
        for back in (pickle.loads(pickle.dumps(q)), copy.deepcopy(q)):
            assert back.is_quantized and back.equal(q) and back.qscheme() is q.qscheme()
    for m, q in ((torch, tq), (gt, gq)):
        assert q.to("cpu") is q and q.cpu() is q and q.to(m.quint8) is q
        with pytest.raises(RuntimeError, match="Creation of quantized tensor requires quantized dtype"):
            q.to("cpu", m.float32)


@pytest.mark.own_mesh
def test_repr_is_torch_s():
    _suffix_break = __import__("re").compile(r",\n +(?=[a-z_]+=)")
    with use_mesh(1):
        x = np.array([[-1.0, 0.0, 0.26], [1.5, 100.0, -0.35]], np.float32)
        cases = [(lambda m: m.quantize_per_tensor(m.tensor(x), 0.1, 10, m.quint8)),
                 (lambda m: m.quantize_per_tensor(m.tensor(x), 1 / 3, -2, m.qint32)),
                 (lambda m: m.quantize_per_tensor(m.tensor(2.0), 0.1, 0, m.qint8)),
                 (lambda m: m.quantize_per_tensor(m.zeros(0, 3), 0.1, 0, m.quint8)),
                 (lambda m: m.quantize_per_tensor(m.tensor(np.linspace(-3, 3, 2000, dtype=np.float32)), 0.02, 5,
                                                  m.qint8)),
                 (lambda m: m.quantize_per_channel(m.tensor(x), m.tensor([0.1, 0.2]), m.tensor([0, 3]), 0, m.qint8)),
                 (lambda m: m.quantize_per_channel(m.tensor(x), m.tensor([0.1, 0.2, 1.0]), m.tensor([0, 3, 9]), 1,
                                                   m.quint8))]
        for make in cases:
            want = repr(make(torch)).replace("torch.", "gt.")
            got = repr(make(gt))
            assert _suffix_break.sub(", ", got) == _suffix_break.sub(", ", want)


@pytest.mark.first_pass
def test_dtypes_and_schemes_are_torch_s():
    for name in ("quint8", "qint8", "qint32", "quint4x2"):
        g, t = getattr(gt, name), getattr(torch, name)
        assert g == t and gt.dtypes.to_dtype(t) is g and repr(g) == f"gt.{name}"
        assert (g.is_floating_point, g.is_complex, g.itemsize) == (t.is_floating_point, t.is_complex, t.itemsize)
        for m in (g, t):
            with pytest.raises(RuntimeError, match="isSignedType not supported for quantized types"):
                m.is_signed
    for name in ("per_tensor_affine", "per_channel_affine", "per_tensor_symmetric", "per_channel_symmetric",
                 "per_channel_affine_float_qparams"):
        assert getattr(gt, name) == getattr(torch, name) and isinstance(getattr(gt, name), gt.qscheme)
    for m in (torch, gt):
        info = m.iinfo(m.qint8)
        assert (info.min, info.max, info.bits) == (-128, 127, 8) and m.iinfo(m.quint8).max == 255
        with pytest.raises(NotImplementedError, match="\"dtype\" not implemented for 'QInt8'"):
            info.dtype
        with pytest.raises(RuntimeError, match="promoteTypes with quantized numbers is not handled yet.*QInt8 Float"):
            m.promote_types(m.qint8, m.float32)
        assert m.promote_types(m.quint8, m.quint8) == m.quint8
    q = gt.quantize_per_tensor(gt.ones(2), 0.5, 1, gt.qint8)
    assert q.qscheme() == torch.per_tensor_affine and q.qscheme() is gt.per_tensor_affine
    assert q.is_quantized and not gt.ones(2).is_quantized and not q.requires_grad and q.grad_fn is None


@pytest.mark.first_pass
def test_refusals_are_torch_s():
    x = gt.tensor([0.25, -1.0, 3.0])
    q = gt.quantize_per_tensor(x, 0.1, 3, gt.quint8)
    qc = gt.quantize_per_channel(gt.ones(2, 3), gt.tensor([0.1, 0.2]), gt.tensor([0, 1]), 0, gt.qint8)
    for op in (lambda: q + q, lambda: q * 2, lambda: 1 - q, lambda: q.sum(), lambda: gt.exp(q), lambda: q @ q,
               lambda: q.abs(), lambda: q.neg(), lambda: gt.nn.functional.linear(q, q)):
        with pytest.raises(NotImplementedError, match="with arguments from the 'QuantizedCPU' backend"):
            op()
    with pytest.raises(NotImplementedError, match="'aten::add'"):
        q + q
    for m, qq, xx in ((torch, torch.quantize_per_tensor(torch.tensor([0.25]), 0.1, 3, torch.quint8), torch.ones(2)),
                      (gt, q, x)):
        with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
            qq.requires_grad_()
        for method in ("int_repr", "q_scale", "q_zero_point", "qscheme", "q_per_channel_scales"):
            with pytest.raises(NotImplementedError, match="with arguments from the 'CPU' backend"):
                getattr(xx, method)()
        for dtype in (m.float64, m.int64, m.float32):
            assert xx.to(dtype).dequantize().dtype == m.float32
            assert m.dequantize(xx.to(dtype)).tolist() == xx.to(dtype).float().tolist()
    with pytest.raises(RuntimeError, match="kPerChannelAffine"):
        q.q_per_channel_scales()
    with pytest.raises(RuntimeError, match="kPerTensorAffine"):
        qc.q_scale()
    tc = torch.quantize_per_channel(torch.ones(2, 3), torch.tensor([0.1, 0.2]), torch.tensor([0, 1]), 0, torch.qint8)
    for q in (qc, tc):
        with pytest.raises(RuntimeError, match="length of scales must equal to channel, expected 3 got, 2"):
            q.reshape(3, 2).dequantize()      # torch's raises at the first use, gt's at the view
        with pytest.raises(RuntimeError, match="Setting strides is possible only on uniformly quantized tensor"):
            q.transpose(0, 1)


@pytest.mark.first_pass
@pytest.mark.parametrize("call", [
    lambda m: m.quantize_per_tensor(m.ones(2), 0.1, 300, m.quint8),
    lambda m: m.quantize_per_tensor(m.ones(2), 0.1, -1, m.quint8),
    lambda m: m.quantize_per_tensor(m.ones(2, dtype=m.float64), 0.1, 0, m.quint8),
    lambda m: m.quantize_per_tensor(m.ones(2), 0.1, 0, m.float32),
    lambda m: m.quantize_per_tensor(m.ones(2), m.tensor([0.1, 0.2]), m.tensor([1, 1]), m.quint8),
    lambda m: m.quantize_per_channel(m.ones(2, 3), m.tensor([0.1, 0.2]), m.tensor([0, 0]), 2, m.quint8),
    lambda m: m.quantize_per_channel(m.ones(2, 3), m.tensor([0.1, 0.2, 0.3]), m.tensor([0, 0, 1]), 0, m.quint8),
    lambda m: m.quantize_per_channel(m.ones(2, 3), m.tensor([0.1, 0.2]), m.tensor([0, 0, 1]), 0, m.quint8),
    lambda m: m.quantize_per_channel(m.ones(2, 3), m.tensor([0.1, 0.2]), m.tensor([0, 300]), 0, m.quint8),
    lambda m: m.quantize_per_channel(m.ones(2, 3, dtype=m.float64), m.tensor([0.1, 0.2]), m.tensor([0, 1]), 0,
                                     m.quint8),
    lambda m: m.fake_quantize_per_tensor_affine(m.ones(2), 0.1, 3, 5, 2),
    lambda m: m.fake_quantize_per_tensor_affine(m.ones(2), 0.1, 300, 0, 255),
    lambda m: m.fake_quantize_per_channel_affine(m.ones(2, 3), m.tensor([0.1, 0.2]), m.tensor([0, 1]), 0, 0, 255),
    lambda m: m.fake_quantize_per_channel_affine(m.ones(2, 3), m.tensor([0.1, 0.2], dtype=m.float64),
                                                 m.tensor([0, 1], dtype=m.int32), 0, 0, 255),
    lambda m: m.fake_quantize_per_channel_affine(m.ones(2, 3), m.tensor([0.1, 0.2, 0.3]),
                                                 m.tensor([0, 1, 2], dtype=m.int32), 0, 0, 255),
    lambda m: m.fake_quantize_per_channel_affine(m.ones(2, 3), m.tensor([0.1, 0.2, 0.3]),
                                                 m.tensor([0, 1, 2], dtype=m.int32), -1, 0, 255),
])
def test_argument_errors_are_torch_s(call):
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(type(want.value)) as got:
        call(gt)
    def words(e):     # torch's quant_min message carries its source's indentation
        return " ".join(str(e.value).replace("torch.", "gt.").split("\n")[0].split())
    assert words(got).startswith(words(want).rstrip(".")[:60])


@pytest.mark.first_pass
def test_checkpoints_both_ways():
    x = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    made = {m: {"q": m.quantize_per_tensor(m.tensor(x), 0.05, 3, m.quint8),
                "c": m.quantize_per_channel(m.tensor(x), m.tensor([0.1, 0.2, 0.3]), m.tensor([0, 1, -2]), 0, m.qint8),
                "i": m.quantize_per_tensor(m.tensor(x), 1e-3, -7, m.qint32),
                "t": m.quantize_per_tensor(m.tensor(x), 0.05, 3, m.quint8)[1:, ::2]}
            for m in (torch, gt)}
    def legacy(obj, f):         # torch's format before 1.6
        torch.save(obj, f, _use_new_zipfile_serialization=False)

    for writer, reader in ((torch.save, gt.load), (legacy, gt.load), (gt.save, torch.load), (gt.save, gt.load)):
        for source in (torch, gt):
            if (writer in (torch.save, legacy)) != (source is torch):
                continue
            buf = io.BytesIO()
            writer(made[source], buf)
            buf.seek(0)
            back = reader(buf, weights_only=True)
            for key, want in made[torch].items():
                got = back[key]
                assert got.is_quantized and got.dtype == want.dtype and got.qscheme() == want.qscheme()
                _equal(got.int_repr().numpy(), want.int_repr().numpy())
                _equal(got.dequantize().numpy(), want.dequantize().numpy())
