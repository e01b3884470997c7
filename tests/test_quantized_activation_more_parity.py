"""gt/ao's quantized activations beside torch 2.13's x86 (fbgemm) kernels, continued: qint8 inputs of
sigmoid/tanh/hardsigmoid (torch's fixed output parameters) and of the requantizing activations,
``quantized::prelu`` with ``nn.quantized.PReLU`` (converted from ``nn.PReLU``, its weight quantized by the
qconfig's weight observer) and ``quantized::softmax`` with ``nn.quantized.Softmax``: integers bit for bit
(every level, exact .5 ties, torch's 64-value vectorised head and scalar tail; softmax's float32 kernel
replayed to the bit), scales, zero points, dtypes, reprs and errors. Quantized answers depend on no GT_*
variable but the engine (``own_mesh``)."""

import warnings

import numpy as np
import pytest

import gt
import gt.ao.quantization as gq
from gt.tensor.quantized import as_quantized
from helpers import fbgemm_engine, torch_or_skip  # noqa: F401 (a fixture)
import test_quantized_static_more_parity as static_more
import test_quantized_static_parity as static_parity

torch = torch_or_skip()
tq = torch.ao.quantization
pytestmark = [pytest.mark.own_mesh, *static_parity.pytestmark]
gnnq, tnnq = gt.ao.nn.quantized, torch.ao.nn.quantized


# torch on one thread, as the static modules' tests (the autouse fixture taken from there)
_one_torch_thread = static_more._one_torch_thread


def _same(got, want, what):
    assert np.array_equal(got.int_repr().numpy(), want.int_repr().numpy()), what
    assert (got.q_scale(), got.q_zero_point(), str(got.dtype)) == \
        (want.q_scale(), want.q_zero_point(), str(want.dtype).replace("torch.", "gt.")), what
    return want.numel()


def _qint8(ints, scale, zero_point):
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(np.asarray(ints, np.int8)), scale, zero_point)


def test_fixed_qparams_activations_of_qint8_are_torch_s():
    # every level in the head and in the tail (lengths on both sides of 64 and 128); scales of 3/2^k put
    # hardsigmoid's requantized values on .5 ties
    rng = np.random.default_rng(5)
    compared = 0
    for trial in range(16):
        scale = 3.0 * 2.0 ** -int(rng.integers(6, 10)) if trial % 3 == 0 else float(np.exp(rng.uniform(-7, -1.5)))
        n = [63, 64, 65, 127, 129, 191, 256, 319][trial % 8]
        ints = np.resize(np.concatenate([np.arange(-128, 128), rng.permutation(256)[:63] - 128]), n)
        t = _qint8(np.roll(ints, 63 * (trial % 2)), scale, int(rng.integers(-128, 128)))
        g = as_quantized(t)
        compared += _same(g.tanh(), torch.tanh(t), (trial, "tanh"))
        compared += _same(gt.sigmoid(g), t.sigmoid(), (trial, "sigmoid"))
        compared += _same(gt.nn.functional.hardsigmoid(g), torch.nn.functional.hardsigmoid(t), (trial, "hardsigmoid"))
    assert compared == 3 * 2 * (63 + 64 + 65 + 127 + 129 + 191 + 256 + 319)
    assert (g.tanh().q_scale(), g.tanh().q_zero_point(), g.sigmoid().q_zero_point()) == (2 / 256, 0, -128)
    assert gt.nn.Hardsigmoid(inplace=True)(g) is g and torch.nn.Hardsigmoid(inplace=True)(t) is t
    _same(g, t, "hardsigmoid in place")
    q32 = gt.quantize_per_tensor(gt.tensor([0.5]), 0.1, 0, gt.qint32)
    with pytest.raises(RuntimeError, match="quantized::tanh: expected a quint8 or qint8 input"):
        q32.tanh()


def test_requantizing_activations_of_qint8_are_torch_s():
    rng = np.random.default_rng(0)
    compared = 0
    for trial in range(10):
        n = [5, 64, 100, 130, 191][trial % 5]
        if trial % 2:      # power-of-two grids: requantized values on .5 ties
            t = _qint8(rng.choice([-64, -48, -32, -16, 0, 16, 32, 48, 64], n), 2.0 ** -int(rng.integers(3, 7)), 16)
            scale, zp = 2.0 ** -int(rng.integers(1, 6)), int(rng.integers(-128, 128))
        else:
            t = _qint8(rng.integers(-128, 128, n), float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)))
            scale, zp = float(rng.uniform(0.005, 0.1)), int(rng.integers(-128, 128))
        pairs = [(gnnq.ReLU6(), tnnq.ReLU6()), (gnnq.Hardswish(scale, zp), tnnq.Hardswish(scale, zp)),
                 (gnnq.ELU(scale, zp, 0.7), tnnq.ELU(scale, zp, 0.7)),
                 (gnnq.LeakyReLU(scale, zp, 0.13), tnnq.LeakyReLU(scale, zp, 0.13)),
                 (gnnq.Sigmoid(scale, zp), tnnq.Sigmoid(scale, zp))]
        for g, m in pairs:
            compared += _same(g(as_quantized(t)), m(t), (trial, type(g).__name__))
    assert compared == 5 * 2 * (5 + 64 + 100 + 130 + 191)


# (input scale, zero point, output scale, zero point) where gt's ELU gave an integer one off torch's at a
# tie: its exp(x) - 1 lost the bits torch's expm1 keeps, its 1 / scale rounded otherwise
_ELU_TIES = [(0.0010128375142812729, 244, 0.0015744329430162907, 243),
             (0.003325625555589795, 220, 0.0006675031618215144, 243),
             (0.0006020930013619363, 154, 0.00017347138782497495, 113),
             (0.0005424232804216444, 87, 0.0005136640975251794, 66),
             (0.00040615140460431576, 137, 0.0033252339344471693, 211),
             (0.0003701674286276102, 156, 0.0010882271453738213, 154)]


def test_elu_at_ties_is_torch_s():
    ints = torch.from_numpy(np.concatenate([np.arange(256), np.arange(63)]).astype(np.uint8))
    for in_scale, in_zp, scale, zp in _ELU_TIES:
        x = torch._make_per_tensor_quantized_tensor(ints, in_scale, in_zp)
        _same(gnnq.ELU(scale, zp)(as_quantized(x)), tnnq.ELU(scale, zp)(x), (in_scale, in_zp))


def _quantized(rng, shape, dtype, ties):
    low = 0 if dtype == torch.quint8 else -128
    if ties:
        ints = rng.choice([0, 8, 16, 24, 40, 64], size=shape) + low
        scale, zp = 2.0 ** -int(rng.integers(2, 6)), low + 24
    else:
        ints = rng.integers(low, low + 256, size=shape)
        scale, zp = float(rng.uniform(0.005, 0.2)), int(rng.integers(low, low + 256))
    ints = torch.from_numpy(ints.astype(np.uint8 if low == 0 else np.int8))
    return torch._make_per_tensor_quantized_tensor(ints, scale, zp)


def test_prelu_integers_are_torch_s():
    rng = np.random.default_rng(3)
    compared = 0
    for trial in range(24):
        shape = [(2, 3, 5, 4), (70,), (3, 4), (2, 5, 33), (1,)][trial % 5]
        dtype, ties = [torch.quint8, torch.qint8][trial % 2], trial % 3 == 0
        x = _quantized(rng, shape, dtype, ties)
        slopes = torch.from_numpy(rng.uniform(-1.5, 1.5, shape[1] if len(shape) > 1 else shape[0]).astype(np.float32))
        # a weight scale too small for 1.0 too: torch clamps its quantized one, and so does gt
        w_scale = [0.01, 2.0 ** -5, 0.003][trial % 3]
        w_zp = int(rng.integers(0, 256)) + (0 if dtype == torch.quint8 else -128)
        w = torch.quantize_per_tensor(slopes, w_scale, w_zp, dtype)
        scale, zp = (2.0 ** -int(rng.integers(1, 5)), 5) if ties else (float(rng.uniform(0.01, 0.1)), 100)
        zp -= 0 if dtype == torch.quint8 else 128
        want = torch.ops.quantized.prelu(x, w, scale, zp)
        compared += _same(gt.ao.nn.quantized.activation_kernels.prelu(as_quantized(x), as_quantized(w), scale, zp),
                          want, trial)
    assert compared == 24 // 5 * (120 + 70 + 12 + 330 + 1) + 120 + 70 + 12 + 330
    with pytest.raises(RuntimeError, match="zero-dim input tensor is not allowed"):
        gt.ao.nn.quantized.activation_kernels.prelu(gt.quantize_per_tensor(gt.tensor(0.5), 0.1, 0, gt.qint8),
                                                    as_quantized(w), 0.1, 0)
    with pytest.raises(RuntimeError, match="quint8 weight"):
        gt.ao.nn.quantized.activation_kernels.prelu(as_quantized(_quantized(rng, (4,), torch.quint8, False)),
                                                    as_quantized(w), 0.1, 0)
    m = gnnq.PReLU(0.1, 3, 2)
    assert repr(m) == repr(tnnq.PReLU(0.1, 3, 2)) == "QuantizedPReLU()" and list(m.state_dict()) == []
    assert m.weight.dtype == gt.quint8 and tuple(m.weight.shape) == (2,)


def _prelu_model(lib, q, slopes, weight_dtype):
    class M(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.prelu, self.dequant = q.QuantStub(), lib.nn.PReLU(3), q.DeQuantStub()

        def forward(self, x):
            return self.dequant(self.prelu(self.quant(x)))
    model = M().eval()
    with lib.no_grad():
        model.prelu.weight.copy_(lib.tensor(slopes))
    weight = q.MinMaxObserver.with_args(dtype=lib.quint8) if weight_dtype == "quint8" else q.default_weight_observer
    model.qconfig = q.QConfig(activation=q.default_observer, weight=weight)
    return model


@pytest.mark.parametrize("weight_dtype", ["quint8", "qint8"])
def test_prelu_converts_as_torch_s(weight_dtype):
    # a quint8 weight observer is what torch asks for; default_qconfig's symmetric qint8 one warns and (zero
    # point 0 in quint8) zeroes the negative slopes, in torch and in gt
    data = np.random.default_rng(4).normal(size=(2, 4, 3, 6)).astype(np.float32)
    slopes = np.array([0.3, -0.45, 1.7], np.float32)
    got = []
    for lib, q in ((gt, gq), (torch, tq)):
        prepared = q.prepare(_prelu_model(lib, q, slopes, weight_dtype))
        prepared(lib.tensor(data[0]))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            converted = q.convert(prepared)
        said = [str(w.message) for w in caught if "PReLU's weight observer should have dtype quint8" in str(w.message)]
        assert len(said) == (weight_dtype == "qint8"), said
        assert repr(converted.prelu) == "QuantizedPReLU()" and "prelu.weight" not in converted.state_dict()
        x = converted.quant(lib.tensor(data[1] * 1.3))
        got.append((converted.prelu.weight, converted.prelu(x), converted(lib.tensor(data[1])).numpy()))
    (gw, gy, gout), (tw, ty, tout) = got
    _same(gw, tw, "the quantized weight")
    assert (float(tw.dequantize()[1]) == 0) == (weight_dtype == "qint8")      # torch's zeroed negative slope
    _same(gy, ty, "converted PReLU")
    assert np.array_equal(gout, tout)


_AVX512 = pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() != "AVX512",
                             reason="gt follows torch's AVX-512 softmax (16 lanes); its AVX2 build sums in 8")


@_AVX512
def test_softmax_float_kernel_is_torch_s():
    # torch's float32 softmax to the bit: SLEEF's exp, 16-lane sums folded by halves along the last dim,
    # in-order sums and glibc's exp for positions past whole 16-steps along another (any spread of values)
    from gt.ao.nn.quantized import softmax_kernels as K
    rng = np.random.default_rng(3)
    compared = 0
    for trial in range(24):
        shape = [(5,), (17,), (3, 1), (4, 1, 1), (3, 5, 33), (2, 40, 3, 6), (2, 300), (6, 20, 17)][trial % 8]
        x = (rng.normal(size=shape) * np.exp(rng.uniform(-3, 5))).astype(np.float32)
        for dim in range(len(shape)):
            want = torch.softmax(torch.from_numpy(x), dim).numpy()
            v = gt.tensor(x)
            got = (K.softmax_lastdim(v) if dim == len(shape) - 1 else K.softmax_inner(v, dim)).numpy()
            assert np.array_equal(got.view(np.int32), want.view(np.int32)), (trial, shape, dim)
            compared += got.size
    assert compared == 3 * (5 + 17 + 2 * 3 + 3 * 4 + 3 * 495 + 4 * 1440 + 2 * 600 + 3 * 2040)


@_AVX512
def test_softmax_integers_are_torch_s():
    # torch's quantized::softmax: dequantize, its float softmax, quantize per tensor (every step to the bit)
    rng = np.random.default_rng(1)
    compared = 0
    for trial in range(30):
        shape = [(7, 33), (4, 5, 17), (3, 100), (2, 3, 4, 5), (64, 16), (5, 8)][trial % 6]
        dtype = [torch.quint8, torch.qint8][trial % 2]
        if trial % 3 == 0:       # few distinct levels on log-grid scales: equal rows, sums of powers of two
            ints = rng.choice(np.arange(4) * 16, size=shape) + (0 if dtype == torch.quint8 else -128)
            x = torch._make_per_tensor_quantized_tensor(
                torch.from_numpy(ints.astype(np.uint8 if dtype == torch.quint8 else np.int8)), float(np.log(2)) / 16,
                0 if dtype == torch.quint8 else -128)
        else:
            x = _quantized(rng, shape, dtype, False)
        dim = int(rng.integers(-len(shape), len(shape)))
        scale, zp = [(1 / 256, 0), (1 / 255, 0), (float(rng.uniform(1e-3, 1e-2)), 7)][trial % 3]
        zp -= 0 if dtype == torch.quint8 else 128
        m = gnnq.Softmax(dim, scale, zp)
        compared += _same(m(as_quantized(x)), torch.ops.quantized.softmax(x, dim, scale, zp), (trial, dim))
        assert repr(m) == repr(tnnq.Softmax(dim, scale, zp)) == f"QuantizedSoftmax(dim={dim})"
    assert compared == 5 * (7 * 33 + 4 * 5 * 17 + 300 + 120 + 64 * 16 + 40)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        implicit = gnnq.Softmax(None, 1 / 256, 0)(as_quantized(x))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        _same(implicit, tnnq.Softmax(None, 1 / 256, 0)(x), "implicit dim")
    with pytest.raises(IndexError, match="out of range"):
        gnnq.Softmax(2, 1 / 256, 0)(as_quantized(x))
    with pytest.raises(NotImplementedError):       # torch: no aten::_softmax on QuantizedCPU
        gt.softmax(as_quantized(x), 1)
    for t in (torch.quantize_per_tensor(torch.tensor(0.3), 0.1, 2, torch.quint8),       # 0-d and empty
              torch.quantize_per_tensor(torch.zeros(0, 3), 0.1, 2, torch.quint8)):
        _same(gnnq.Softmax(0, 1 / 256, 0)(as_quantized(t)), torch.ops.quantized.softmax(t, 0, 1 / 256, 0), "edge")


def test_softmax_converts_with_a_mapping_after_qat():
    # torch's default mapping leaves nn.Softmax float; prepare_qat gives it the fixed-parameter fake
    # quantizer (1/256, 0), and a mapping naming nnq.Softmax converts it
    data = np.random.default_rng(2).normal(size=(3, 5)).astype(np.float32)
    got = []
    for lib, q, nnq in ((gt, gq, gnnq), (torch, tq, tnnq)):
        model = lib.nn.Sequential(q.QuantStub(), lib.nn.Softmax(dim=1), q.DeQuantStub()).train()
        model.qconfig = q.get_default_qat_qconfig("x86")
        prepared = q.prepare_qat(model)
        prepared(lib.tensor(data))
        assert q.convert(prepared.eval())[1].__class__ is lib.nn.Softmax
        mapping = {**q.get_default_static_quant_module_mappings(), lib.nn.Softmax: nnq.Softmax}
        converted = q.convert(prepared, mapping=mapping)
        assert repr(converted[1]) == "QuantizedSoftmax(dim=1)"
        got.append((converted[1](converted[0](lib.tensor(data))), converted(lib.tensor(data)).numpy()))
    _same(got[0][0], got[1][0], "converted Softmax")
    assert got[0][0].q_scale() == 1 / 256 and np.array_equal(got[0][1], got[1][1])
