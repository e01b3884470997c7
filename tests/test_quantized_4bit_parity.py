"""gt.quint4x2 beside torch 2.13: 4-bit quantization per tensor and per channel with float qparams (the
integers, torch's packed ``int_repr``, dequantized values, NaN/infinity/out-of-range handling), the 4-bit
weight-only ``Embedding``/``EmbeddingBag`` (``float_qparams_weight_only_qconfig_4bit``) through
prepare/convert, quantization-aware training and ``quantize_dynamic``, their lookups bit for bit with
fbgemm's (sum and mean bags, offsets, empty bags, per-sample weights), and state dicts and checkpoints
passed between the two libraries. Quantized answers depend on no GT_* variable but the engine, so these
tests run once per engine (``own_mesh``)."""

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


def _values(rng, n):
    """Values on the quantization grids (exact .5 ties), random ones, and NaN, infinities and values past
    int32's and int64's range."""
    odd = np.array([np.nan, np.inf, -np.inf, 1e19, 9.2e18, -1e19, 3e9, 2.2e9, -3e9], np.float32)
    return np.concatenate([rng.integers(-40, 40, size=n) * np.float32(0.125), rng.standard_normal(n) * 5,
                           odd]).astype(np.float32)


def _same_quantized(g, t):
    assert g.dtype == gt.quint4x2 and np.array_equal(g.int_repr().numpy(), t.int_repr().numpy())
    assert np.array_equal(g.dequantize().numpy(), t.dequantize().numpy(), equal_nan=True)
    assert as_quantized(t).equal(g)


def test_quantize_to_quint4x2_is_torch_s():
    rng = np.random.default_rng(0)
    x = _values(rng, 200)
    for scale, zero_point in ((0.25, 3), (0.5, 8), (1 / 3, 0), (0.0, 2), (0.07, 15)):
        _same_quantized(gt.quantize_per_tensor(gt.tensor(x), scale, zero_point, gt.quint4x2),
                        torch.quantize_per_tensor(torch.from_numpy(x), scale, zero_point, torch.quint4x2))
    rows = _values(rng, 150)[:301].reshape(1, 301)
    rows = np.concatenate([rows, rows[:, ::-1], rng.standard_normal((1, 301)).astype(np.float32)])
    scales, zero_points = np.array([0.25, 0.3, 0.1], np.float32), np.array([3.5, 8.25, 0.0], np.float32)
    t = torch.quantize_per_channel(torch.from_numpy(rows), torch.from_numpy(scales), torch.from_numpy(zero_points),
                                   0, torch.quint4x2)
    g = gt.quantize_per_channel(gt.tensor(rows), gt.tensor(scales), gt.tensor(zero_points), 0, gt.quint4x2)
    _same_quantized(g, t)
    assert t.int_repr().shape == (452,)        # torch's int_repr: the packed bytes, two values a byte
    assert repr(g).replace("gt.", "torch.") == repr(t)
    for lib in (torch, gt):
        with pytest.raises(RuntimeError, match="\"quantize_tensor_per_channel_affine\" not implemented for "
                                               "'QUInt4x2'"):
            lib.quantize_per_channel(lib.zeros(2, 3), lib.tensor([0.1, 0.2]).double(), lib.tensor([1, 2]), 0,
                                     lib.quint4x2)


def _bag_pair(mode="sum", include_last_offset=False, bag=True, seed=1):
    """(torch's, gt's) float modules of one table, in a Sequential."""
    torch.manual_seed(seed)
    make = (lambda lib: lib.nn.EmbeddingBag(13, 6, mode=mode, include_last_offset=include_last_offset)) if bag \
        else (lambda lib: lib.nn.Embedding(13, 6))
    tm, gm = torch.nn.Sequential(make(torch)).eval(), gt.nn.Sequential(make(gt)).eval()
    with torch.no_grad():
        tm[0].weight[4] = 0.25          # a constant row: its scale (below float32's eps) becomes 1
        tm[0].weight[5] *= 1e-3
    gm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    return tm, gm


def _bits(a):
    return np.asarray(a).view(np.int32)


@pytest.mark.parametrize("mode, include_last_offset", [("sum", False), ("mean", True)])
def test_embedding_bag_4bit_converts_and_looks_up_as_torch_s(mode, include_last_offset):
    tm, gm = _bag_pair(mode, include_last_offset)
    tm.qconfig, gm.qconfig = tq.float_qparams_weight_only_qconfig_4bit, gq.float_qparams_weight_only_qconfig_4bit
    tc, gc = tq.convert(tq.prepare(tm)), gq.convert(gq.prepare(gm))
    assert repr(gc).replace("gt.", "torch.") == repr(tc)
    assert gc[0].weight().equal(as_quantized(tc[0].weight()))
    rng = np.random.default_rng(2)
    indices = rng.integers(0, 13, size=40)
    offsets = np.array([0, 5, 5, 17, 39] + ([40] if include_last_offset else []))     # an empty bag, a 1-row bag
    weights = rng.standard_normal(40).astype(np.float32)
    for index_dtype in (np.int64, np.int32):
        for w in (None, weights):
            args = [indices.astype(index_dtype), offsets.astype(index_dtype), w]
            want = tc[0](*[None if a is None else torch.from_numpy(a) for a in args]).numpy()
            got = gc[0](*[None if a is None else gt.tensor(a) for a in args]).numpy()
            assert np.array_equal(_bits(got), _bits(want)), (index_dtype, w is None)
    two_d = indices[:36].reshape(6, 6)
    if not include_last_offset:
        assert np.array_equal(_bits(gc[0](gt.tensor(two_d)).numpy()), _bits(tc[0](torch.from_numpy(two_d)).numpy()))
        return
    for lib, layer in ((torch, tc[0]), (gt, gc[0])):       # torch's 4-bit kernel: the last offset must end the indices
        with pytest.raises(RuntimeError, match="the last offset value should be the size of the indices tensor"):
            layer(lib.tensor(two_d))
        with pytest.raises(RuntimeError, match="the last offset value should be the size of the indices tensor"):
            layer(lib.tensor(indices), lib.tensor(offsets[:-1]))


def test_quint8_bags_of_2d_indices_with_include_last_offset_are_torch_s():
    # torch's byte kernel reads 2-d indices as offsets 0, length, ...: include_last_offset drops the last
    # row (gt summed every row, as the float EmbeddingBag does)
    tm, gm = _bag_pair(include_last_offset=True)
    tc = tq.quantize_dynamic(tm, {torch.nn.EmbeddingBag}, dtype=torch.quint8)
    gc = gq.quantize_dynamic(gm, {gt.nn.EmbeddingBag}, dtype=gt.quint8)
    two_d = np.random.default_rng(6).integers(0, 13, size=(4, 3))
    want = tc[0](torch.from_numpy(two_d)).numpy()
    assert want.shape == (3, 6)
    assert np.array_equal(_bits(gc[0](gt.tensor(two_d)).numpy()), _bits(want))


def test_embedding_4bit_looks_up_as_torch_s():
    tm, gm = _bag_pair(bag=False)
    gm.qconfig = gq.float_qparams_weight_only_qconfig_4bit
    gc = gq.convert(gq.prepare(gm))
    # torch's convert of an nn.Embedding with this qconfig makes a quint8 module over a 4-bit table, whose
    # lookups fail; its own quint4x2 module holding the same table is what gt's equals
    t = tnnq.Embedding(13, 6, dtype=torch.quint4x2)
    observer = tq.float_qparams_weight_only_qconfig_4bit.weight()
    observer(tm[0].weight)
    t.set_weight(torch.ao.nn.quantized.modules.utils._quantize_weight(tm[0].weight.detach(), observer))
    assert gc[0].weight().equal(as_quantized(t.weight()))
    assert repr(gc[0]).replace("gt.", "torch.") == repr(t)
    indices = np.random.default_rng(3).integers(0, 13, size=(4, 7))
    assert np.array_equal(_bits(gc[0](gt.tensor(indices)).numpy()), _bits(t(torch.from_numpy(indices)).numpy()))


def test_qat_4bit_embedding_bag_converts_as_torch_s():
    tm, gm = _bag_pair()
    tm.train()
    gm.train()
    tm.qconfig, gm.qconfig = tq.default_embedding_qat_qconfig_4bit, gq.default_embedding_qat_qconfig_4bit
    tp = tq.prepare_qat(tm, mapping=tq.quantization_mappings.get_embedding_qat_module_mappings())
    gp = gq.prepare_qat(gm, mapping=gq.get_embedding_qat_module_mappings())
    indices = np.random.default_rng(4).integers(0, 13, size=(5, 3))
    assert np.array_equal(gp(gt.tensor(indices)).detach().numpy(), tp(torch.from_numpy(indices)).detach().numpy())
    tc = tq.convert(tp.eval(), mapping=tq.quantization_mappings.get_embedding_static_quant_module_mappings())
    gc = gq.convert(gp.eval(), mapping=gq.get_embedding_static_quant_module_mappings())
    assert repr(gc).replace("gt.", "torch.") == repr(tc)
    assert gc[0].weight().equal(as_quantized(tc[0].weight()))
    assert np.array_equal(_bits(gc(gt.tensor(indices)).numpy()), _bits(tc(torch.from_numpy(indices)).numpy()))


def test_state_dicts_and_checkpoints_pass_both_ways(tmp_path):
    tm, gm = _bag_pair()
    tm.qconfig, gm.qconfig = tq.float_qparams_weight_only_qconfig_4bit, gq.float_qparams_weight_only_qconfig_4bit
    tc, gc = tq.convert(tq.prepare(tm)), gq.convert(gq.prepare(gm))
    ts, gs = tc.state_dict(), gc.state_dict()
    assert list(gs) == list(ts) and gs._metadata == ts._metadata and gs["0._packed_params.dtype"] == gt.quint4x2
    indices = gt.tensor(np.random.default_rng(5).integers(0, 13, size=(3, 4)))
    want = gc(indices).numpy()

    def fresh():
        model = gt.nn.Sequential(gnnq.EmbeddingBag(13, 6))       # a quint8 module: a load makes it 4-bit
        assert not np.array_equal(model(indices).numpy(), want)
        return model
    for state in (ts, gs):            # torch's own objects, passed directly, and gt's
        model = fresh()
        model.load_state_dict(state)
        assert model[0].dtype == gt.quint4x2 and np.array_equal(_bits(model(indices).numpy()), _bits(want))
    torch.save(ts, tmp_path / "t.pt")
    gt.save(gs, tmp_path / "g.pt")
    model = fresh()
    model.load_state_dict(gt.load(tmp_path / "t.pt"))        # torch's checkpoint in gt
    assert np.array_equal(_bits(model(indices).numpy()), _bits(want))
    other = torch.nn.Sequential(tnnq.EmbeddingBag(13, 6, dtype=torch.quint4x2))
    other.load_state_dict(torch.load(tmp_path / "g.pt"))     # gt's in torch
    assert torch.equal(other[0].weight().int_repr(), tc[0].weight().int_repr())
    assert np.array_equal(_bits(other(torch.from_numpy(indices.numpy())).numpy()), _bits(want))


def test_misuse_raises_clear_errors():
    with pytest.raises(NotImplementedError, match="even embedding_dim, got 5"):
        gnnq.EmbeddingBag(4, 5, dtype=gt.quint4x2)
    for lib, nnq in ((torch, tnnq), (gt, gnnq)):
        with pytest.raises(NotImplementedError, match="Unsupported dtype on quantized embedding! Supports quint8 "
                                                      "and quint4x2"):
            nnq.Embedding(4, 6, dtype=lib.qint8)
    q8 = gt.quantize_per_channel(gt.zeros(4, 6), gt.ones(4), gt.zeros(4), 0, gt.quint8)
    with pytest.raises(RuntimeError, match="expected a 2-d gt.quint4x2 weight"):
        gnnq.EmbeddingBag(4, 6, dtype=gt.quint4x2).set_weight(q8)


def test_quantize_dynamic_takes_quint4x2_and_dict_qconfigs_as_torch_s():
    def pair():
        torch.manual_seed(7)
        tm = torch.nn.Sequential(torch.nn.EmbeddingBag(13, 6), torch.nn.Embedding(13, 6))
        gm = gt.nn.Sequential(gt.nn.EmbeddingBag(13, 6), gt.nn.Embedding(13, 6))
        gm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
        return tm, gm
    tm, gm = pair()
    cases = [({"dtype": "quint4x2"}, "float"),            # torch's default: the bags only
             ({"qconfig_spec": {"EmbeddingBag"}, "dtype": "quint4x2"}, "float"),
             # a dict's qconfigs, whatever the dtype (gt used the dtype and refused: qint8 is no embedding's)
             ({"qconfig_spec": {"EmbeddingBag": "float_qparams_weight_only_qconfig_4bit",
                                "1": "float_qparams_weight_only_qconfig"}}, "quint8"),
             ({"qconfig_spec": {"EmbeddingBag": "float_qparams_weight_only_qconfig", "1": None}}, "float")]
    indices = np.random.default_rng(8).integers(0, 13, size=(3, 4))
    for kwargs, second in cases:
        def resolve(lib, q):
            out = {}
            for key, value in kwargs.items():
                if key == "dtype":
                    out[key] = getattr(lib, value)
                elif isinstance(value, set):
                    out[key] = {getattr(lib.nn, v) for v in value}
                else:
                    out[key] = {(getattr(lib.nn, k) if k[0].isupper() else k): (None if v is None else getattr(q, v))
                                for k, v in value.items()}
            return out
        tc = tq.quantize_dynamic(tm, **resolve(torch, tq))
        gc = gq.quantize_dynamic(gm, **resolve(gt, gq))
        assert repr(gc[0]).replace("gt.", "torch.") == repr(tc[0]), kwargs
        assert gc[0].weight().equal(as_quantized(tc[0].weight()))
        assert type(gc[1]) is (gt.nn.Embedding if second == "float" else gnnq.Embedding)
        got, want = gc[0](gt.tensor(indices)).numpy(), tc[0](torch.from_numpy(indices)).numpy()
        assert np.array_equal(_bits(got), _bits(want))
    for lib, model in ((torch, tm), (gt, gm)):
        for kind in ("Embedding", "EmbeddingBag"):
            with pytest.raises(AssertionError, match=f"^{kind} quantization is only supported with "
                                                     "float_qparams_weight_only_qconfig"):
                lib.ao.quantization.quantize_dynamic(model, {getattr(lib.nn, kind)}, dtype=lib.qint8)
