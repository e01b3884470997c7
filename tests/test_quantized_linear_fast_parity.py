"""The dynamically quantized Linear's fast path (float32 gemms over blocks of the contracted axis,
gt/backend/engine_quantized.py) beside torch 2.13's fbgemm kernel: outputs bit for bit where the
integer sums pass float32's 2**24 (several blocks), for leading axes, without bias and for
inputs of one sign; and a quantized Pixel Transformer beside its float model and torch's."""

import sys
from pathlib import Path

import numpy as np
import pytest

import gt
from helpers import torch_or_skip
from lpm.model import PixelTransformer

torch = torch_or_skip()
pytestmark = [pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel"),
              pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated")]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from torch_reference import TorchPixelTransformer  # noqa: E402


def _bits(a):
    return np.ascontiguousarray(a).view(np.int32)


def _quantized_pair(tm, gm):
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return (torch.ao.quantization.quantize_dynamic(tm, {torch.nn.Linear}, dtype=torch.qint8),
            gt.ao.quantization.quantize_dynamic(gm, {gt.nn.Linear}, dtype=gt.qint8))


def test_integer_sums_past_float32_s_exact_range_are_torch_s_bits():
    rng = np.random.default_rng(0)
    k = 2600          # 2600 * 127 * 127 = 4.2e7 > 2**24: a single float32 gemm would round
    torch.manual_seed(0)
    tl = torch.nn.Linear(k, 6)
    with torch.no_grad():     # weights near +-max|w| (integers +-127), so the sums are large
        tl.weight.copy_(torch.from_numpy(np.sign(rng.standard_normal((6, k))) * rng.uniform(0.9, 1.0, (6, k))))
        tl.weight[0] = 1.0                       # one row all at the top: its sum is ~ k * 127 * x
    tq, gq = _quantized_pair(torch.nn.Sequential(tl), gt.nn.Sequential(gt.nn.Linear(k, 6)))
    for i, x in enumerate((rng.uniform(0.95, 1.0, (3, k)), rng.uniform(-1.0, -0.95, (2, 2, k)),
                           rng.standard_normal((4, k)), rng.uniform(0, 1, (5, k)) ** 8)):
        x = x.astype(np.float32)
        want, got = tq(torch.from_numpy(x)).numpy(), gq(gt.tensor(x)).numpy()
        assert got.shape == want.shape
        # fbgemm rounds its int32 sum to float32 before the scale: the exact sum would differ here
        np.testing.assert_array_equal(_bits(got), _bits(want))
        assert i > 1 or np.abs(want).max() > 2000     # the first row's sum: about k * 127 * 127 > 2**24


def test_without_bias_and_an_input_of_one_value_are_torch_s_bits():
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    tq, gq = _quantized_pair(torch.nn.Sequential(torch.nn.Linear(1100, 5, bias=False)),
                             gt.nn.Sequential(gt.nn.Linear(1100, 5, bias=False)))
    for x in (rng.standard_normal((4, 1100)), np.full((4, 1100), 0.5), np.zeros((4, 1100)), np.full((4, 1100), -3e4)):
        x = x.astype(np.float32)
        np.testing.assert_array_equal(_bits(gq(gt.tensor(x)).numpy()), _bits(tq(torch.from_numpy(x)).numpy()))


def test_a_loaded_state_dict_replaces_the_weights_an_earlier_call_read():
    # the torch engine's fbgemm kernel reads a packed copy of the weight and bias, made at the
    # first call: a load must not leave the old one in use
    pairs = []
    for seed in (6, 7):
        torch.manual_seed(seed)
        pairs.append(_quantized_pair(torch.nn.Sequential(torch.nn.Linear(40, 7)),
                                     gt.nn.Sequential(gt.nn.Linear(40, 7))))
    (_, gq), (tq2, gq2) = pairs
    x = np.random.default_rng(6).standard_normal((4, 40)).astype(np.float32)
    first = gq(gt.tensor(x)).numpy()
    gq.load_state_dict(gq2.state_dict())
    want = tq2(torch.from_numpy(x)).numpy()
    assert not np.array_equal(first, want)
    np.testing.assert_array_equal(_bits(gq(gt.tensor(x)).numpy()), _bits(want))


def test_output_requires_grad_as_torch_s_and_a_1d_input_is_refused_as_torch_s():
    # torch's output requires grad where the input does (its op has no autograd kernel: backward warns
    # and passes nothing back); gt's carried no gradient. tests/test_quantized_dynamic_spec_parity.py: backward
    gq = gt.ao.quantization.quantize_dynamic(gt.nn.Sequential(gt.nn.Linear(3, 2)))
    tq = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(3, 2)))
    for lib, m in ((gt, gq), (torch, tq)):
        assert m(lib.randn(4, 3, requires_grad=True)).requires_grad and not m(lib.randn(4, 3)).requires_grad
    for m, v in ((gq, gt.ones(3)), (tq, torch.ones(3))):      # gt's block gemms took it
        with pytest.raises(RuntimeError, match="dimension of input tensor should be larger than or equal to 2"):
            m(v)


def test_quantized_pixel_transformer_predicts_the_float_model_s_classes():
    cfg = dict(img_size=12, embed_dim=32, num_heads=4, num_layers=2, ff_dim=64, num_classes=10, max_seq_len=8)
    gt.manual_seed(3)
    model = PixelTransformer(**cfg).eval()
    ref = TorchPixelTransformer(**cfg, pos_encoding="sinusoidal").eval()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()}, strict=True)
    qmodel = gt.ao.quantization.quantize_dynamic(model, {gt.nn.Linear}, dtype=gt.qint8)
    tqmodel = torch.ao.quantization.quantize_dynamic(ref, {torch.nn.Linear}, dtype=torch.qint8)
    assert sum(type(m) is gt.ao.nn.quantized.dynamic.Linear for m in qmodel.modules()) == 14
    x = np.random.default_rng(3).random((64, 4, 12, 12), dtype=np.float32)
    with gt.no_grad(), torch.no_grad():
        logits, qlogits = model(gt.tensor(x)).numpy(), qmodel(gt.tensor(x)).numpy()
        tq_logits = tqmodel(torch.from_numpy(x)).numpy()
    # gt's quantized model is torch's: the same Linears to the bit, the float ops between them
    # to float32 rounding (which can move an input's integer by one, rarely)
    np.testing.assert_allclose(qlogits, tq_logits, rtol=0, atol=1e-3 * np.abs(tq_logits).max())
    error = np.abs(qlogits - logits).max()
    assert 0 < error < 0.05 * np.abs(logits).max()
    top2 = np.sort(logits, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * error      # the samples quantization cannot flip
    assert clear.sum() > len(x) // 2
    agree = qlogits.argmax(1) == logits.argmax(1)
    assert agree[clear].all()
    assert agree.mean() >= 0.9, agree.mean()
