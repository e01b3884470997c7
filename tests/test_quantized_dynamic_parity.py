"""Dynamic quantization (gt/ao) beside torch 2.13's ``torch.ao.quantization.quantize_dynamic``:
the input's quantization parameters (torch's ChooseQuantizationParams), the qint8 weight and the
dynamically quantized Linear's outputs bit for bit, its weight memory, and the modules it swaps."""

import numpy as np
import pytest

import gt
from gt.tensor.quantize_math import choose_qparams
from helpers import torch_or_skip

torch = torch_or_skip()
# torch 2.13 deprecates its quantized tensors and torch.ao.quantization (warnings of its own)
pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated")]


def _bits(a):
    return np.ascontiguousarray(a).view(np.int32)


@pytest.mark.first_pass
def test_input_quantization_parameters_are_torch_s():
    rng = np.random.default_rng(0)
    for i in range(600):
        x = rng.standard_normal(int(rng.integers(1, 9))).astype(np.float32) * np.float32(10.0 ** rng.integers(-9, 5))
        x = [x, np.abs(x), -np.abs(x), 0 * x, np.round(x * 4) / 4][i % 5]
        for reduce_range in (True, False):
            scale, zero_point = torch._choose_qparams_per_tensor(torch.from_numpy(x), reduce_range)
            got = choose_qparams(float(x.min()), float(x.max()), reduce_range=reduce_range)
            assert got == (scale, zero_point), (x, reduce_range)


@pytest.mark.first_pass
@pytest.mark.filterwarnings("ignore:invalid value encountered")      # numpy's, at inf * 0
def test_quantization_parameters_of_infinite_and_nan_values_are_torch_s():
    # an infinite value made NaN of the zero point, and Python's round(nan) raised ValueError;
    # torch's C++ gives int32's least (then the quantization's own error, or a tensor with scale inf)
    inf = float("inf")
    for low, high in ((1.0, inf), (-inf, 2.0), (-inf, inf), (-inf, -inf)):
        for reduce_range in (True, False):
            want = torch._choose_qparams_per_tensor(torch.tensor([low, high]), reduce_range)
            assert choose_qparams(low, high, reduce_range=reduce_range) == want, (low, high)
    for values in ([-inf, 1.0, 2.0], [inf, 1.0]):
        for name in ("quint8", "qint8"):
            try:
                want = torch.quantize_per_tensor_dynamic(torch.tensor(values), getattr(torch, name), False)
            except RuntimeError as exc:
                with pytest.raises(RuntimeError, match=str(exc)):
                    gt.quantize_per_tensor_dynamic(gt.tensor(values), getattr(gt, name), False)
                continue
            got = gt.quantize_per_tensor_dynamic(gt.tensor(values), getattr(gt, name), False)
            assert got.int_repr().tolist() == want.int_repr().tolist()
            assert (got.q_scale(), got.q_zero_point()) == (want.q_scale(), want.q_zero_point())
    with pytest.raises(RuntimeError, match="min should be less than or equal to max"):
        torch.quantize_per_tensor_dynamic(torch.tensor([float("nan"), 1.0]), torch.quint8, False)
    with pytest.raises(RuntimeError, match="min should be less than or equal to max"):
        gt.quantize_per_tensor_dynamic(gt.tensor([float("nan"), 1.0]), gt.quint8, False)


def test_quantize_per_tensor_dynamic_is_torch_s():
    rng = np.random.default_rng(5)
    for i in range(24):
        x = (rng.standard_normal(int(rng.integers(1, 40))) * 10.0 ** rng.integers(-6, 4)).astype(np.float32)
        x = [x, np.abs(x), -np.abs(x)][i % 3]
        name, reduce_range = ("quint8", "qint8")[i % 2], i % 4 < 2
        want = torch.quantize_per_tensor_dynamic(torch.from_numpy(x), getattr(torch, name), reduce_range)
        got = gt.quantize_per_tensor_dynamic(gt.tensor(x), getattr(gt, name), reduce_range)
        assert (got.dtype, got.q_scale(), got.q_zero_point()) == (want.dtype, want.q_scale(), want.q_zero_point())
        np.testing.assert_array_equal(got.int_repr().numpy(), want.int_repr().numpy())
    half = gt.quantize_per_tensor_dynamic(gt.tensor([0.3, -1.0]), gt.float16, False)
    assert half.dtype == gt.float16 and half.tolist() == [0.300048828125, -1.0]
    for m in (torch, gt):
        with pytest.raises(RuntimeError, match="dtype QInt32not supported"):
            m.quantize_per_tensor_dynamic(m.ones(2), m.qint32, False)


def _pair(sizes, seed, bias=True):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(a, b, bias=bias) for a, b in zip(sizes, sizes[1:])]
    tm = torch.nn.Sequential(*[m for layer in layers for m in (layer, torch.nn.ReLU())][:-1])
    gm = gt.nn.Sequential(*[m for a, b in zip(sizes, sizes[1:])
                            for m in (gt.nn.Linear(a, b, bias=bias), gt.nn.ReLU())][:-1])
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return (torch.ao.quantization.quantize_dynamic(tm, {torch.nn.Linear}, dtype=torch.qint8),
            gt.ao.quantization.quantize_dynamic(gm, {gt.nn.Linear}, dtype=gt.qint8), gm)


def test_dynamically_quantized_linear_outputs_are_torch_s_bits():
    rng = np.random.default_rng(1)
    for i, (sizes, batch) in enumerate([((16, 8, 4), (5,)), ((64, 32), (3, 7)), ((300, 17), (4,)), ((5, 3), (0,)),
                                        ((33, 9, 2), (6,))]):
        tq, gq, _ = _pair(sizes, seed=i, bias=i != 1)
        for scale in (0.1, 1.0, 30.0, 1e-7):
            x = (rng.standard_normal(batch + (sizes[0],)) * scale).astype(np.float32)
            want, got = tq(torch.from_numpy(x)).detach().numpy(), gq(gt.tensor(x)).numpy()
            np.testing.assert_array_equal(_bits(got), _bits(want))
        for g, t in ((gq[0], tq[0]), (gq[-1], tq[-1])):
            np.testing.assert_array_equal(g.weight().int_repr().numpy(), t.weight().int_repr().numpy())
            assert g.weight().q_scale() == t.weight().q_scale() and g.weight().q_zero_point() == 0


def test_an_input_whose_max_rounds_to_128_is_torch_s():
    # reduce_range maps [min, max] onto [0, 127], but fbgemm clamps to quint8's 255: where the zero
    # point rounds up by a half (min == -max) max quantizes to 128; a clamp to 127 was 3% off
    rng = np.random.default_rng(6)
    tq, gq, _ = _pair((24, 5), seed=6)
    for i in range(6):
        x = (rng.standard_normal((3, 24)) * 10.0 ** (i - 3)).astype(np.float32)
        x[0, 0], x[2, 5] = np.abs(x).max(), -np.abs(x).max()
        for rows in (x, x[:1], np.array([[-1.0, 1.0] + [0.3] * 22], np.float32)):
            want, got = tq(torch.from_numpy(rows)).detach().numpy(), gq(gt.tensor(rows)).numpy()
            np.testing.assert_array_equal(_bits(got), _bits(want))


def test_weight_memory_is_a_quarter_and_outputs_are_the_dequantized_products():
    tq, gq, gm = _pair((256, 128), seed=9)
    weight = gq[0].weight()
    assert weight.dtype == gt.qint8 and weight.element_size() == 1 and gm[0].weight.element_size() == 4
    assert weight.numel() * weight.element_size() * 4 == gm[0].weight.numel() * gm[0].weight.element_size()
    x = np.random.default_rng(2).standard_normal((8, 256)).astype(np.float32)
    got = gq(gt.tensor(x)).numpy().astype(np.float64)
    # the same product from the dequantized input and weight in float64: only float32 rounding apart
    scale, zp = choose_qparams(float(x.min()), float(x.max()))
    xd = gt.quantize_per_tensor(gt.tensor(x), scale, zp, gt.quint8).dequantize().numpy().astype(np.float64)
    ref = xd @ weight.dequantize().numpy().astype(np.float64).T + gm[0].bias.detach().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    float_out = gm(gt.tensor(x)).detach().numpy()
    assert np.abs(got - float_out).max() < 0.05 * np.abs(float_out).max()      # quantization error, bounded


@pytest.mark.first_pass
def test_what_quantize_dynamic_swaps_and_refuses():
    tq, gq, gm = _pair((6, 4, 3), seed=3)
    assert repr(gq) == repr(tq).replace("torch.", "gt.")
    assert type(gm[0]) is gt.nn.Linear            # a copy was quantized
    named = gt.ao.quantization.quantize_dynamic(gm, {"2": gt.ao.quantization.default_dynamic_qconfig})
    assert type(named[0]) is gt.nn.Linear and type(named[2]) is gt.ao.nn.quantized.dynamic.Linear
    # a dict's None keeps the module float, as torch's (gt quantized it)
    assert type(gt.ao.quantization.quantize_dynamic(gm, {"2": None})[2]) is gt.nn.Linear
    float_torch = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    assert type(torch.ao.quantization.quantize_dynamic(float_torch, {"2": None})[2]) is torch.nn.Linear
    lone = gt.nn.Linear(3, 2)
    assert gt.ao.quantization.quantize_dynamic(lone) is not lone and type(
        gt.ao.quantization.quantize_dynamic(lone)) is gt.nn.Linear    # the root is never swapped, as torch's
    same = gt.ao.quantization.quantize_dynamic(gm, inplace=True)
    assert same is gm and type(gm[0]) is gt.ao.nn.quantized.dynamic.Linear
    half = gt.ao.quantization.quantize_dynamic(gt.nn.Sequential(gt.nn.Linear(6, 4)), dtype=gt.float16)
    assert repr(half[0]) == repr(torch.ao.quantization.quantize_dynamic(      # gt refused float16
        torch.nn.Sequential(torch.nn.Linear(6, 4)), dtype=torch.float16)[0]).replace("torch.", "gt.")
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
        gm[0](gt.ones(2, 6, dtype=gt.float64))
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
        tq[0](torch.ones(2, 6, dtype=torch.float64))


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")      # torch's, saving its quantized tensors
def test_state_dict_is_torch_s_and_loads_both_ways(tmp_path):
    # gt's quantized Linear kept its weight outside the state dict: state_dict() was empty, and
    # load_state_dict of it matched "all keys" and left the zero weights of a new model
    tq, gq, _ = _pair((6, 4, 3), seed=4, bias=False)
    sd = gq.state_dict()
    assert list(sd) == list(tq.state_dict())
    fresh = gt.ao.quantization.quantize_dynamic(gt.nn.Sequential(gt.nn.Linear(6, 4), gt.nn.ReLU(), gt.nn.Linear(4, 3)))
    fresh[2] = gt.ao.quantization.quantize_dynamic(gt.nn.Sequential(gt.nn.Linear(4, 3, bias=False)))[0]
    x = np.random.default_rng(3).standard_normal((5, 6)).astype(np.float32)
    want = _bits(tq(torch.from_numpy(x)).detach().numpy())
    fresh.load_state_dict(sd)
    np.testing.assert_array_equal(_bits(fresh(gt.tensor(x)).numpy()), want)
    torch.save(tq.state_dict(), tmp_path / "t.pt")          # torch's checkpoint, loaded by gt (weights_only)
    fresh[0]._qweight = fresh[2]._qweight = None
    fresh.load_state_dict(gt.load(tmp_path / "t.pt"))
    np.testing.assert_array_equal(_bits(fresh(gt.tensor(x)).numpy()), want)
    gt.save(gq.state_dict(), tmp_path / "g.pt")              # gt's, loaded by torch (its _metadata versions)
    tq2, _, _ = _pair((6, 4, 3), seed=5, bias=False)
    tq2.load_state_dict(torch.load(tmp_path / "g.pt"))
    np.testing.assert_array_equal(_bits(tq2(torch.from_numpy(x)).detach().numpy()), want)
    wrong = gt.ao.quantization.quantize_dynamic(gt.nn.Sequential(gt.nn.Linear(7, 4)))
    with pytest.raises(RuntimeError, match=r"shape \(4, 7\)"):
        wrong.load_state_dict({k: v for k, v in sd.items() if k.startswith("0.")})


@pytest.mark.first_pass
def test_multihead_attention_keeps_its_float_out_proj_as_torch_s():
    # torch's out_proj is a Linear subclass quantize_dynamic leaves alone; gt swapped it, and the
    # attention (which reads out_proj.weight itself) raised
    gt.manual_seed(0)
    layer = gt.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0).eval()
    tl = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0).eval()
    tl.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in layer.state_dict().items()})
    gq, tq = gt.ao.quantization.quantize_dynamic(layer), torch.ao.quantization.quantize_dynamic(tl)
    assert type(gq.self_attn.out_proj) is gt.nn.Linear and type(gq.linear1) is gt.ao.nn.quantized.dynamic.Linear
    x = np.random.default_rng(4).standard_normal((5, 3, 8)).astype(np.float32)
    with torch.no_grad():
        want = tq(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(gq(gt.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)
