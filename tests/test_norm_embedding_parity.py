"""Normalization and embedding layers beside torch 2.13: the differences a differential fuzzer found
(embedding renormalisation in every norm order, ``EmbeddingBag``'s ``max_norm``, the misuse torch
refuses in the batch, instance and group norms, ``one_hot`` and ``embedding``, and the instance norms
left alone by ``convert_sync_batchnorm`` and ``replace_all_batch_norm_modules_``), in float32 and
float64, values, gradients and the tables changed in place."""

import warnings

import numpy as np
import pytest

import gt
from gt.nn import functional as F
from helpers import torch_or_skip

DTYPES = ["float32", "float64"]
TOL = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


def _pair(arr, dtype, requires_grad=False):
    torch = torch_or_skip()
    g = gt.tensor(np.array(arr), dtype=getattr(gt, dtype))
    t = torch.tensor(np.array(arr), dtype=getattr(torch, dtype))
    if requires_grad:
        g.requires_grad_(True)
        t.requires_grad_(True)
    return g, t


def _close(a, b, dtype):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **TOL[dtype])


# ---- embedding: max_norm in any norm order --------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", [float("inf"), -float("inf"), 0.0])
def test_embedding_max_norm_renormalises_in_every_norm_order(norm_type, dtype):
    torch = torch_or_skip()
    table = np.random.default_rng(0).standard_normal((5, 3)) * 2
    gw, tw = _pair(table, dtype, requires_grad=True)
    ids = [[1, 3, 1], [4, 0, 3]]
    out = F.embedding(gt.tensor(ids), gw, max_norm=0.7, norm_type=norm_type)
    ref = torch.nn.functional.embedding(torch.tensor(ids), tw, max_norm=0.7, norm_type=norm_type)
    _close(out, ref, dtype)
    _close(gw, tw, dtype)                  # the picked rows scaled down in place
    up = np.random.default_rng(1).standard_normal(tuple(ref.shape))
    (out * gt.tensor(up, dtype=out.dtype)).sum().backward()
    (ref * torch.tensor(up, dtype=ref.dtype)).sum().backward()
    _close(gw.grad, tw.grad, dtype)


def test_embedding_module_max_norm_inf_matches_torch():
    torch = torch_or_skip()
    table = np.random.default_rng(2).standard_normal((4, 2)) * 3
    g = gt.nn.Embedding.from_pretrained(gt.tensor(table), max_norm=1.0, norm_type=float("inf"))
    t = torch.nn.Embedding.from_pretrained(torch.tensor(table), max_norm=1.0, norm_type=float("inf"))
    _close(g(gt.tensor([0, 2])), t(torch.tensor([0, 2])), "float64")
    _close(g.weight, t.weight, "float64")


# ---- EmbeddingBag's max_norm ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_embedding_bag_max_norm_matches_torch(mode, norm_type, dtype):
    torch = torch_or_skip()
    table = np.random.default_rng(3).standard_normal((6, 3)) * 2
    ids, offsets = [1, 4, 4, 2, 0, 5, 1], [0, 3, 3, 5]
    gw, tw = _pair(table, dtype, requires_grad=True)
    out = F.embedding_bag(gt.tensor(ids), gw, gt.tensor(offsets), max_norm=0.9, norm_type=norm_type, mode=mode,
                          padding_idx=5)
    ref = torch.nn.functional.embedding_bag(torch.tensor(ids), tw, torch.tensor(offsets), max_norm=0.9,
                                            norm_type=norm_type, mode=mode, padding_idx=5)
    _close(out, ref, dtype)
    _close(gw, tw, dtype)                  # every id of the input renormalised, the padding one too
    up = np.random.default_rng(4).standard_normal(tuple(ref.shape))
    (out * gt.tensor(up, dtype=out.dtype)).sum().backward()
    (ref * torch.tensor(up, dtype=ref.dtype)).sum().backward()
    _close(gw.grad, tw.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_bag_module_max_norm_with_per_sample_weights(dtype):
    torch = torch_or_skip()
    table = np.random.default_rng(5).standard_normal((5, 4)) * 2
    g = gt.nn.EmbeddingBag(5, 4, max_norm=1.5, mode="sum").to(getattr(gt, dtype))
    t = torch.nn.EmbeddingBag(5, 4, max_norm=1.5, mode="sum").to(getattr(torch, dtype))
    g.load_state_dict({"weight": table})
    t.load_state_dict({"weight": torch.tensor(table)})
    ids = [[0, 3], [3, 4], [2, 2]]
    gp, tp = _pair(np.random.default_rng(6).standard_normal((3, 2)), dtype, requires_grad=True)
    out, ref = g(gt.tensor(ids), per_sample_weights=gp), t(torch.tensor(ids), per_sample_weights=tp)
    _close(out, ref, dtype)
    _close(g.weight, t.weight, dtype)
    out.sum().backward()
    ref.sum().backward()
    _close(g.weight.grad, t.weight.grad, dtype)
    _close(gp.grad, tp.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_bag_of_no_ids_gives_per_sample_weights_an_empty_gradient(dtype):
    torch = torch_or_skip()
    gw, tw = _pair(np.ones((4, 2)), dtype, requires_grad=True)
    gp, tp = _pair(np.zeros(0), dtype, requires_grad=True)
    out = F.embedding_bag(gt.tensor([], dtype=gt.int64), gw, gt.tensor([0, 0]), mode="sum", per_sample_weights=gp)
    ref = torch.nn.functional.embedding_bag(torch.tensor([], dtype=torch.int64), tw, torch.tensor([0, 0]),
                                            mode="sum", per_sample_weights=tp)
    _close(out, ref, dtype)
    out.sum().backward()
    ref.sum().backward()
    assert gp.grad is not None and gp.grad.shape == tuple(tp.grad.shape) == (0,)
    _close(gw.grad, tw.grad, dtype)


# ---- misuse torch refuses --------------------------------------------------------------------
def _both_raise(fn, gt_error=ValueError):
    """``fn(lib, F)`` raises with gt and with torch."""
    torch = torch_or_skip()
    with pytest.raises(gt_error):
        fn(gt, F)
    with pytest.raises((ValueError, RuntimeError, NotImplementedError)):
        fn(torch, torch.nn.functional)


def _x(lib, *shape):
    return lib.ones(*shape) + lib.arange(int(np.prod(shape))).reshape(shape) * 0.5


@pytest.mark.parametrize("case", [
    lambda L, f: f.batch_norm(_x(L, 3, 2), L.zeros(2), None, training=True),
    lambda L, f: f.batch_norm(_x(L, 3, 2), None, L.ones(2), training=True),
    lambda L, f: f.batch_norm(_x(L, 3, 2), None, None, training=True, eps=0.0),
    lambda L, f: f.batch_norm(_x(L, 3, 2), L.zeros(2), L.ones(2), training=False, eps=-1.0),
    lambda L, f: L.nn.BatchNorm1d(2, eps=0.0)(_x(L, 3, 2)),
    lambda L, f: f.instance_norm(_x(L, 2, 2, 3), L.zeros(2), None),
    lambda L, f: f.instance_norm(_x(L, 2, 2, 3), None, L.ones(2)),
    lambda L, f: f.embedding(L.tensor([1]), L.ones(3)),
    lambda L, f: f.one_hot(L.tensor([], dtype=L.int64)),
    lambda L, f: f.one_hot(L.tensor([], dtype=L.int64), 0),
], ids=["bn-mean-only", "bn-var-only", "bn-eps0-train", "bn-eps-neg-eval", "BatchNorm1d-eps0",
        "in-mean-only", "in-var-only", "embedding-1d-weight",
        "one_hot-empty", "one_hot-empty-0"])
def test_misuse_raises_as_torch(case):
    _both_raise(case)


@pytest.mark.filterwarnings("ignore")            # torch's deprecation of the old weight_norm
@pytest.mark.parametrize("old", [True, False])
@pytest.mark.parametrize("dim", [2, -3, 5])
def test_weight_norm_refuses_a_dim_out_of_range_as_torch(dim, old):
    torch = torch_or_skip()
    for lib in (gt, torch):
        norm = lib.nn.utils.weight_norm if old else lib.nn.utils.parametrizations.weight_norm
        with pytest.raises(IndexError):
            norm(lib.nn.Linear(3, 4), dim=dim)(lib.ones(2, 3))


@pytest.mark.parametrize("case", [
    lambda L, f: f.normalize(L.tensor([[1, 2]])),
    lambda L, f: f.layer_norm(L.tensor([[1, 2]]), [2]),
    lambda L, f: L.nn.LayerNorm(2)(L.tensor([[1, 2]])),
], ids=["normalize", "layer_norm", "LayerNorm"])
def test_integer_inputs_raise_as_torch(case):
    _both_raise(case, TypeError)


@pytest.mark.parametrize("dtype", DTYPES)
def test_group_norm_refuses_one_value_as_torch(dtype):
    torch = torch_or_skip()
    _both_raise(lambda L, f: f.group_norm(_x(L, 1, 3), 3))
    _both_raise(lambda L, f: f.group_norm(_x(L, 1, 2, 1, 1), 2))
    _both_raise(lambda L, f: L.nn.GroupNorm(1, 1)(_x(L, 1, 1)))
    # torch's check multiplies N * C // G by the positions: (1, 2) in 1 group and (2, 2) in 2 are fine
    for shape, groups in (((1, 2), 1), ((2, 2), 2), ((1, 4, 1), 2)):
        x = np.random.default_rng(7).standard_normal(shape)
        gx, tx = _pair(x, dtype)
        _close(F.group_norm(gx, groups), torch.nn.functional.group_norm(tx, groups), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_takes_eps_zero_as_torch(dtype):
    torch = torch_or_skip()
    x = np.random.default_rng(8).standard_normal((3, 4))
    gx, tx = _pair(x, dtype)
    _close(gt.nn.LayerNorm(4, eps=0.0).to(getattr(gt, dtype))(gx),
           torch.nn.LayerNorm(4, eps=0.0).to(getattr(torch, dtype))(tx), dtype)


def test_rms_norm_answers_in_the_input_dtype_whatever_the_weight():
    dtypes = ("float32", "float64")
    torch = torch_or_skip()
    rng = np.random.default_rng(9)
    gx, tx = _pair(rng.standard_normal((3, 4)), dtypes[0], requires_grad=True)
    gw, tw = _pair(rng.standard_normal(4), dtypes[1], requires_grad=True)
    out = F.rms_norm(gx, [4], gw)
    with warnings.catch_warnings():          # torch's "cannot dispatch to fused implementation"
        warnings.simplefilter("ignore")
        ref = torch.nn.functional.rms_norm(tx, [4], tw)
    assert out.dtype == getattr(gt, dtypes[0]) and str(ref.dtype) == f"torch.{dtypes[0]}"
    _close(out, ref, "float32")
    out.sum().backward()
    ref.sum().backward()
    assert (gx.grad.dtype, gw.grad.dtype) == (getattr(gt, dtypes[0]), getattr(gt, dtypes[1]))
    _close(gx.grad, tx.grad, "float32")
    _close(gw.grad, tw.grad, "float32")


# ---- instance norms are no batch norms ---------------------------------------------------------
def test_convert_sync_batchnorm_leaves_instance_norms():
    torch = torch_or_skip()
    for lib in (gt, torch):
        net = lib.nn.Sequential(lib.nn.InstanceNorm1d(3, track_running_stats=True), lib.nn.BatchNorm1d(3),
                                lib.nn.InstanceNorm2d(3, affine=True))
        out = lib.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        assert [type(m).__name__ for m in out] == ["InstanceNorm1d", "SyncBatchNorm", "InstanceNorm2d"], lib


def test_replace_all_batch_norm_modules_leaves_instance_norms():
    torch = torch_or_skip()
    import torch.func  # noqa: F401

    for lib in (gt, torch):
        net = lib.nn.Sequential(lib.nn.InstanceNorm1d(3, track_running_stats=True), lib.nn.BatchNorm1d(3))
        lib.func.replace_all_batch_norm_modules_(net)
        assert (net[0].track_running_stats, net[1].track_running_stats) == (True, False), lib
        assert net[0].running_mean is not None and net[1].running_mean is None


# ---- a per-channel tensor of the wrong length: torch's RuntimeError ----------------------------
WRONG_CHANNELS = [
    ("batch_norm", ((2, 1),), dict(running_mean=(2,), running_var=(2,))),
    ("batch_norm", ((2, 3),), dict(running_mean=None, running_var=None, weight=(2,), training=True)),
    ("batch_norm", ((2, 3),), dict(running_mean=None, running_var=None, bias=(2,), training=True)),
    ("instance_norm", ((2, 3, 4),), dict(weight=(2,))),
    ("instance_norm", ((2, 3, 4),), dict(running_mean=(2,), running_var=(2,))),
    ("group_norm", ((2, 4, 3), 2), dict(weight=(3,))),
]


@pytest.mark.parametrize("fn,args,kwargs", WRONG_CHANNELS)
def test_per_channel_tensor_of_wrong_length_raises_runtime_error(fn, args, kwargs):
    """BatchNorm1d(2) given an input of 1 channel, and the like: torch raises RuntimeError; gt's
    ShapeError is one (and still the ValueError it was)."""
    torch = torch_or_skip()

    def call(lib, functional):
        def make(v):
            return None if v is None else (lib.ones(v) if isinstance(v, tuple) else v)
        x = lib.randn(*args[0])
        return getattr(functional, fn)(x, *args[1:], **{k: make(v) for k, v in kwargs.items()})
    with pytest.raises(RuntimeError):
        call(torch, torch.nn.functional)
    with pytest.raises(RuntimeError):
        call(gt, F)


@pytest.mark.parametrize("shape,float32_input",
                         [((1, 0), False), ((1, 0, 1), False), ((1, 3), True), ((1, 2, 1), True)])
def test_batch_norm_of_one_value_per_channel_is_refused_first(shape, float32_input):
    """torch's batch_norm in training refuses N * prod(spatial) == 1 before anything else: with no
    channels (gt gave an empty result) and before the dtype check of float64 running stats."""
    torch = torch_or_skip()

    def call(lib):
        x = lib.zeros(*shape, dtype=lib.float32 if float32_input else lib.float64)
        if not shape[1]:
            return lib.nn.functional.batch_norm(x, None, None, training=True)
        return lib.nn.BatchNorm1d(shape[1]).double().train()(x)
    with pytest.raises(ValueError, match="more than 1 value per channel") as want:
        call(torch)
    with pytest.raises(ValueError, match="more than 1 value per channel") as got:
        call(gt)
    assert type(got.value) is type(want.value)
