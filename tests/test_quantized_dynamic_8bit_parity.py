"""The dynamically quantized Linear beside torch 2.13's fbgemm where its input is quantized to 8 bits
(``linear_dynamic`` without ``reduce_range``: torch's layers loaded from a state dict of version 2 or 3),
per-tensor weights with zero points 0 and not, per-channel weights: on CPUs without AVX-512 VNNI fbgemm
saturates pairs of products in int16 (gt/ao/nn/quantized/fbgemm_pairs.py), on VNNI ones both sum exactly.
An input that requires grad gets the same values, and an output torch's way (requires grad, backward
passes nothing back, with torch's warning). Weight observers narrower than qint8 (``reduce_range``, a
[-127, 127] range) clamp the weight's integers as torch's ``_clamp_weights`` does."""

import warnings

import numpy as np
import pytest

import gt
from gt.ao.nn.quantized import dynamic_products
from gt.tensor.quantized import as_quantized
from helpers import torch_or_skip

torch = torch_or_skip()
pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated"),
              pytest.mark.filterwarnings("ignore:Please use quant_min and quant_max")]


def _weight(rng, out, k, scheme):
    """A qint8 weight over the whole int8 range (so 8-bit inputs saturate fbgemm's AVX2 pairs): per
    tensor with zero point 0 or not, or per channel with zero points not 0."""
    ints = torch.from_numpy(rng.integers(-128, 128, (out, k)).astype(np.int8))
    if scheme == "channel":
        return torch._make_per_channel_quantized_tensor(
            ints, torch.from_numpy(rng.uniform(0.001, 0.02, out)), torch.from_numpy(rng.integers(-100, 100, out)), 0)
    return torch._make_per_tensor_quantized_tensor(ints, 0.0123, 0 if scheme == "zero" else int(rng.integers(-90, 90)))


def _bits_equal(got, want):
    np.testing.assert_array_equal(np.asarray(got).view(np.int32), np.asarray(want).view(np.int32))


@pytest.mark.parametrize("scheme", ["zero", "shifted", "channel"])
def test_8_bit_input_requiring_grad_gets_torch_s_values_and_grad(scheme):
    # gt summed the products exactly where the input required grad: on an AVX2 CPU (no VNNI) tens of
    # quanta off torch's saturated sums; and a NaN input's output did not require grad (torch's does)
    rng = np.random.default_rng({"zero": 1, "shifted": 2, "channel": 3}[scheme])
    w = _weight(rng, 5, 37, scheme)
    bias = torch.from_numpy(rng.standard_normal(5).astype(np.float32))
    gw, gbias = dynamic_products.packed_qint8(as_quantized(w)), gt.tensor(bias.numpy())
    for nan in (False, True):
        x = (rng.standard_normal((6, 37)) * 3 + 1).astype(np.float32)
        if nan:
            x[2, 11] = np.nan
        for reduce_range in (False, True):
            tx, gx = torch.from_numpy(x).requires_grad_(), gt.tensor(x, requires_grad=True)
            want = torch.ops.quantized.linear_dynamic(tx, torch.ops.quantized.linear_prepack(w, bias), reduce_range)
            got = dynamic_products.linear_dynamic(gx, gw, gbias, reduce_range=reduce_range)
            assert got.requires_grad == want.requires_grad is True
            _bits_equal(got.detach().numpy(), want.detach().numpy())
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                want.sum().backward()
                got.sum().backward()
            told = [str(m.message) for m in seen]     # gt's: torch's first sentences (its C++ source named apart)
            assert len(told) == 2 and told[0].startswith(told[1]) and "linear_dynamic" in told[1]
            assert tx.grad is None and gx.grad is None


def _pair(k, out, seed, qconfigs):
    torch.manual_seed(seed)
    tl = torch.nn.Linear(k, out)
    gl = gt.nn.Linear(k, out)
    gl.load_state_dict({name: v.detach().numpy() for name, v in tl.state_dict().items()})
    tq = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(tl), {torch.nn.Linear: qconfigs[0]})
    gq = gt.ao.quantization.quantize_dynamic(gt.nn.Sequential(gl), {gt.nn.Linear: qconfigs[1]})
    return tq, gq


def _qconfigs(scheme, reduce_range):
    """torch's and gt's dynamic qconfig with a per-tensor symmetric/affine or per-channel weight observer."""
    out = []
    for lib in (torch, gt):
        q = lib.ao.quantization
        if scheme == "channel":
            w = q.PerChannelMinMaxObserver.with_args(dtype=lib.qint8, qscheme=lib.per_channel_symmetric,
                                                     reduce_range=reduce_range)
        else:
            w = q.MinMaxObserver.with_args(dtype=lib.qint8, reduce_range=reduce_range, qscheme=lib.per_tensor_affine
                                           if scheme == "shifted" else lib.per_tensor_symmetric)
        out.append(q.QConfig(activation=q.PlaceholderObserver.with_args(dtype=lib.quint8, is_dynamic=True), weight=w))
    return out


@pytest.mark.parametrize("scheme", ["zero", "shifted", "channel"])
def test_state_dict_of_version_3_computes_8_bit_as_torch_s(scheme):
    # torch's Linear loaded from a state dict of version 2 or 3 calls linear_dynamic without reduce_range
    # (8-bit inputs); gt kept 7 bits; a saved state dict says version 4 again, and LinearReLU ignores it
    rng = np.random.default_rng(7)
    for seed in range(3):
        tq, gq = _pair(61, 9, seed, _qconfigs(scheme, False))
        for module in (tq, gq):
            sd = module.state_dict()
            sd._metadata["0"]["version"] = 3
            module.load_state_dict(sd)
        assert gq[0].version == tq[0].version == 3
        for shift in (0.0, 2.0):
            x = (rng.standard_normal((7, 61)) * 4 + shift).astype(np.float32)
            _bits_equal(gq(gt.tensor(x)).numpy(), tq(torch.from_numpy(x)).numpy())
        assert gq.state_dict()._metadata["0"]["version"] == tq.state_dict()._metadata["0"]["version"] == 4
    tr = torch.ao.nn.intrinsic.quantized.dynamic.LinearReLU(61, 9)
    gr = gt.ao.nn.intrinsic.quantized.dynamic.LinearReLU(61, 9)
    tr.set_weight_bias(_weight(rng, 9, 61, scheme), None)
    sd = tr.state_dict()
    sd._metadata[""]["version"] = 3
    tr.load_state_dict(sd)
    gr.load_state_dict(sd)
    assert gr.version == tr.version == 3
    x = (rng.standard_normal((7, 61)) * 4).astype(np.float32)
    _bits_equal(gr(gt.tensor(x)).numpy(), tr(torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("scheme", ["zero", "shifted", "channel"])
def test_weight_observer_narrower_than_qint8_clamps_as_torch_s(scheme):
    # reduce_range takes a qint8 weight observer to [-64, 63]; a value at the range's end rounds half a
    # step past it, which torch's _clamp_weights takes back (gt kept 64: outputs a few units off)
    rng = np.random.default_rng(11)
    for seed in range(6):
        tq, gq = _pair(int(rng.integers(5, 120)), int(rng.integers(2, 12)), seed, _qconfigs(scheme, True))
        np.testing.assert_array_equal(gq[0].weight().int_repr().numpy(), tq[0].weight().int_repr().numpy())
        x = (rng.standard_normal((5, tq[0].in_features)) * 2).astype(np.float32)
        _bits_equal(gq(gt.tensor(x)).numpy(), tq(torch.from_numpy(x)).numpy())


def test_static_weight_observer_with_reduce_range_clamps_as_torch_s():
    # the same clamp in the static convert: a symmetric reduce_range observer ([-64, 63]) maps the
    # weight's largest value to 63.5 steps, which rounds to 64 (gt kept it)
    models = []
    torch.manual_seed(1)
    for lib in (torch, gt):
        q = lib.ao.quantization
        model = q.QuantWrapper(lib.nn.Linear(40, 6))
        model.qconfig = q.QConfig(activation=q.MinMaxObserver.with_args(dtype=lib.quint8),
                                  weight=q.MinMaxObserver.with_args(dtype=lib.qint8, qscheme=lib.per_tensor_symmetric,
                                                                    reduce_range=True))
        models.append(model)
    with torch.no_grad():
        models[0].module.weight[0, 0] = models[0].module.weight.abs().max() * 1.001     # the largest value
    models[1].module.load_state_dict({k: v.numpy() for k, v in models[0].module.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((8, 40)).astype(np.float32)
    for model, lib, make in ((models[0], torch, torch.from_numpy), (models[1], gt, gt.tensor)):
        model.eval()
        lib.ao.quantization.prepare(model, inplace=True)
        model(make(x))
        lib.ao.quantization.convert(model, inplace=True)
    want = models[0].module.weight().int_repr().numpy()
    assert want.max() == 63
    np.testing.assert_array_equal(models[1].module.weight().int_repr().numpy(), want)
    assert models[1].module.weight().q_scale() == models[0].module.weight().q_scale()
