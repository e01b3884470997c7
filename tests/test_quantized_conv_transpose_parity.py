"""gt/ao's statically quantized ConvTranspose1d/2d/3d beside torch 2.13's fbgemm kernels: integers bit for
bit (exact .5 ties included) over strides, paddings, output paddings, dilations and groups, reprs, state
dict keys and metadata, prepare/calibrate/convert of float models, torch's refusals (a per-channel weight
observer or weight), and checkpoints saved by one library and loaded by the other. Quantized answers
depend on no GT_* variable but the engine, so these tests run once per engine (``own_mesh``)."""

import numpy as np
import pytest

import gt
import gt.ao.quantization as gq
from gt.tensor.quantized import as_quantized
from helpers import fbgemm_engine, torch_or_skip  # noqa: F401 (a fixture)
import test_quantized_static_parity as static_parity

torch = torch_or_skip()
tq = torch.ao.quantization
pytestmark = [pytest.mark.own_mesh, *static_parity.pytestmark,
              pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")]
gnnq, tnnq = gt.ao.nn.quantized, torch.ao.nn.quantized
# (stride, padding, output_padding, dilation, groups)
_SHAPES = [(1, 0, 0, 1, 1), (2, 1, 1, 1, 2), (3, 2, 2, 2, 1), (2, 0, 1, 3, 4)]


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_integers_are_fbgemm_s(dims):
    rng = np.random.default_rng(dims)
    compared = 0
    for trial, (stride, padding, output_padding, dilation, groups) in enumerate(_SHAPES):
        ties = trial % 2 == 0       # power-of-two scales: requantized values on exact .5 ties
        x_scale = 2.0 ** -6 if ties else float(np.float32(rng.uniform(0.001, 0.05)))
        spatial = (7,) if dims == 1 else (4, 5) if dims == 2 else (3, 2, 3)
        x = torch._make_per_tensor_quantized_tensor(torch.from_numpy(
            rng.integers(0, 256, size=(2, 8) + spatial).astype(np.uint8)), x_scale, int(rng.integers(0, 256)))
        ints = torch.from_numpy(rng.integers(-128, 128, size=(8, 8 // groups) + (3,) * dims).astype(np.int8))
        w = torch._make_per_tensor_quantized_tensor(ints, 2.0 ** -int(rng.integers(5, 9)) if ties else
                                                    float(rng.uniform(0.001, 0.02)), int(rng.integers(-3, 4)))
        bias = torch.from_numpy((rng.integers(-50, 50, size=8) * 2.0 ** -9).astype(np.float32)) if ties else \
            torch.from_numpy(rng.normal(size=8).astype(np.float32))
        bias = None if trial == 3 else bias
        args = (8, 8, 3, stride, padding, output_padding, groups, bias is not None, dilation)
        t, g = getattr(tnnq, f"ConvTranspose{dims}d")(*args), getattr(gnnq, f"ConvTranspose{dims}d")(*args)
        t.set_weight_bias(w, bias)
        g.set_weight_bias(w, None if bias is None else gt.tensor(bias.numpy()))
        t.scale = g.scale = 2.0 ** -int(rng.integers(6, 10)) if ties else float(rng.uniform(0.05, 0.5))
        t.zero_point = g.zero_point = int(rng.integers(0, 256))
        got, want = g(as_quantized(x)), t(x)
        assert np.array_equal(got.int_repr().numpy(), want.int_repr().numpy()), trial
        assert (got.q_scale(), got.q_zero_point()) == (want.q_scale(), want.q_zero_point())
        assert repr(g) == repr(t)
        assert g.weight().equal(as_quantized(t.weight()))
        compared += want.numel()
        # torch's output size: (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
        assert tuple(got.shape[2:]) == tuple((n - 1) * stride - 2 * padding + 2 * dilation + output_padding + 1
                                             for n in spatial)
    assert compared == {1: 1024, 2: 8416, 3: 34720}[dims]


def _model(lib, q, dims):
    conv = getattr(lib.nn, f"ConvTranspose{dims}d")
    return lib.nn.Sequential(q.QuantStub(), conv(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
                             lib.nn.ReLU(), conv(6, 3, 2, bias=False, dilation=2), q.DeQuantStub())


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_models_convert_to_torch_s_integers_and_checkpoints(dims, tmp_path):
    torch.manual_seed(dims)
    tm, gm = _model(torch, tq, dims).eval(), _model(gt, gq, dims).eval()
    gm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    tm.qconfig, gm.qconfig = tq.default_qconfig, gq.default_qconfig
    tp, gp = tq.prepare(tm), gq.prepare(gm)
    assert sorted(gp.state_dict()) == sorted(tp.state_dict())
    x = np.random.default_rng(dims).standard_normal((2, 4) + (4,) * dims).astype(np.float32)
    tp(torch.from_numpy(x))
    gp(gt.tensor(x))
    gp.load_state_dict(tp.state_dict())      # torch's observed ranges (the float forwards differ in their last bits)
    tc, gc = tq.convert(tp), gq.convert(gp)
    assert repr(gc).replace("gt.", "torch.") == repr(tc)
    gs, ts = gc.state_dict(), tc.state_dict()
    assert list(gs) == list(ts) and gs._metadata == ts._metadata
    assert all(tuple(getattr(gs[k], "shape", ())) == tuple(getattr(ts[k], "shape", ())) for k in ts)
    want = tc(torch.from_numpy(x))
    assert np.array_equal(gc(gt.tensor(x)).numpy(), want.numpy())
    if dims != 2:       # the checkpoints: one shape is enough
        return
    torch.save(ts, tmp_path / "t.pt")
    gt.save(gs, tmp_path / "g.pt")
    fresh, other = _model(gt, gq, dims).eval(), _model(torch, tq, dims).eval()
    fresh.qconfig, other.qconfig = gq.default_qconfig, tq.default_qconfig
    fresh, other = gq.prepare(fresh), tq.prepare(other)
    fresh(gt.tensor(x))
    other(torch.from_numpy(x))
    fresh, other = gq.convert(fresh), tq.convert(other)
    assert not np.array_equal(fresh(gt.tensor(x)).numpy(), want.numpy())
    fresh.load_state_dict(gt.load(tmp_path / "t.pt"))       # torch's checkpoint in gt
    other.load_state_dict(torch.load(tmp_path / "g.pt"))    # gt's in torch
    assert np.array_equal(fresh(gt.tensor(x)).numpy(), want.numpy())
    assert np.array_equal(other(torch.from_numpy(x)).numpy(), want.numpy())


def test_per_channel_weights_and_misuse_raise_torch_s_errors():
    for lib, q, nnq in ((torch, tq, tnnq), (gt, gq, gnnq)):
        model = _model(lib, q, 2).eval()
        model.qconfig = q.get_default_qconfig("x86")      # a per-channel weight observer
        with pytest.raises(AssertionError, match=r"Per channel weight observer is not supported yet for "
                                                 r"ConvTranspose\{n\}d"):
            q.prepare(model)
        layer = nnq.ConvTranspose2d(4, 6, 3)
        w = torch._make_per_channel_quantized_tensor(torch.zeros((4, 6, 3, 3), dtype=torch.int8),
                                                     torch.ones(6, dtype=torch.double),
                                                     torch.zeros(6, dtype=torch.long), 1)
        with pytest.raises(RuntimeError, match="Per Channel Quantization is currently disabled for transposed conv"):
            layer.set_weight_bias(w, None)
        with pytest.raises(ValueError, match='Only "zeros" padding mode is supported for ConvTranspose2d'):
            nnq.ConvTranspose2d(4, 6, 3, padding_mode="reflect")
        with pytest.raises(AssertionError, match="from_float only works for ConvTranspose2d"):
            nnq.ConvTranspose2d.from_float(lib.nn.Conv2d(4, 6, 3))
    x = as_quantized(torch.quantize_per_tensor(torch.zeros(2, 4, 3), 0.1, 0, torch.quint8))
    with pytest.raises(ValueError, match=r"Input shape must be `\(N, C, H, W\)`!"):
        gnnq.ConvTranspose2d(4, 6, 3)(x)
    with pytest.raises(RuntimeError, match="expected a quantized input"):
        gnnq.ConvTranspose1d(4, 6, 3)(gt.zeros(2, 4, 3))


def test_packed_weights_and_conv_metadata_are_torch_s():
    # fbgemm's packing keeps float32 scales: torch's weight() (and state dict) gives them back rounded, which
    # gt's did not; torch's quantized convolutions save version 1 (gt's said 3, its Linear's)
    scales = np.array([0.01669824358865214, 0.1, 1 / 3, 0.3])
    for t, g, shape in ((tnnq.Conv2d(4, 4, 2), gnnq.Conv2d(4, 4, 2), (4, 4, 2, 2)),
                        (tnnq.ConvTranspose1d(4, 4, 2), gnnq.ConvTranspose1d(4, 4, 2), (4, 4, 2)),
                        (tnnq.Linear(4, 4), gnnq.Linear(4, 4), (4, 4))):
        ints = torch.ones(shape, dtype=torch.int8)
        weights = [torch._make_per_tensor_quantized_tensor(ints, float(scales[0]), 2)]
        if not isinstance(t, tnnq.ConvTranspose1d):
            weights.append(torch._make_per_channel_quantized_tensor(ints, torch.from_numpy(scales),
                                                                    torch.zeros(4, dtype=torch.long), 0))
        for w in weights:
            t.set_weight_bias(w, None)
            g.set_weight_bias(as_quantized(w), None)
            assert g.weight().equal(as_quantized(t.weight())), type(g).__name__
        ts, gs = torch.nn.Sequential(t).state_dict(), gt.nn.Sequential(g).state_dict()
        assert gs._metadata == ts._metadata, type(g).__name__
