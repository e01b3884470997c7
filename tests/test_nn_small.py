"""Small nn pieces beside torch (gt/nn/small_functions.py, gt/nn/small_modules.py):
``F.channel_shuffle``/``nn.ChannelShuffle``, ``nn.Softmax2d``, ``F.feature_alpha_dropout``/
``nn.FeatureAlphaDropout``, ``F.multilabel_margin_loss``/``nn.MultiLabelMarginLoss``,
``F.triplet_margin_with_distance_loss``/``nn.TripletMarginWithDistanceLoss``, ``F.gumbel_softmax``,
``F.pdist``, ``nn.Buffer`` and ``nn.SyncBatchNorm``: values, gradients, reprs, state dicts,
errors, and a sharded input giving the unsharded answer. The random ones (dropout, Gumbel noise)
are checked by their statistics under a fixed seed (gt's draws are not torch's).
"""

import math

import numpy as np
import pytest

import gt
import gt.nn as nn
import gt.nn.functional as F
from gt.sharding.mesh import use_mesh
from helpers import check_grad, compare_with_torch, torch_or_skip

RNG = np.random.default_rng(0)


def _repr_lines(module):
    return "\n".join(line.split("  #")[0] for line in repr(module).splitlines())


# ---- channel_shuffle / ChannelShuffle ----------------------------------------------------------
@pytest.mark.parametrize("shape,groups", [((2, 6, 3), 3), ((1, 4, 2, 3), 2), ((2, 6, 1, 2, 2), 6), ((2, 4, 3), 1)])
def test_channel_shuffle_beside_torch(shape, groups):
    torch = torch_or_skip()
    x = RNG.standard_normal(shape)
    compare_with_torch(lambda t: F.channel_shuffle(t, groups), lambda t: torch.nn.functional.channel_shuffle(t, groups),
                       x)
    compare_with_torch(lambda t: nn.ChannelShuffle(groups)(t), lambda t: torch.nn.ChannelShuffle(groups)(t), x,
                       dtype="float32")


def test_channel_shuffle_ints_noncontiguous_and_module():
    torch = torch_or_skip()
    x = np.arange(24).reshape(2, 3, 4)
    got = F.channel_shuffle(gt.tensor(x).transpose(1, 2), 2)           # (2, 4, 3), not contiguous
    want = torch.nn.functional.channel_shuffle(torch.tensor(x).transpose(1, 2), 2)
    assert got.dtype == gt.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    m = nn.ChannelShuffle(2)
    assert _repr_lines(m) == repr(torch.nn.ChannelShuffle(2)) == "ChannelShuffle(groups=2)"
    assert list(m.state_dict()) == []


@pytest.mark.first_pass
def test_channel_shuffle_errors():
    with pytest.raises(RuntimeError, match="> 2 dims"):
        F.channel_shuffle(gt.ones(2, 4), 2)
    with pytest.raises(RuntimeError, match="divisible by groups. Got 5 channels and 2 groups"):
        F.channel_shuffle(gt.ones(2, 5, 3), 2)
    with pytest.raises(RuntimeError, match="must be positive. Value of groups:0"):
        F.channel_shuffle(gt.ones(2, 4, 3), 0)
    with pytest.raises(TypeError, match="groups must be an int"):
        F.channel_shuffle(gt.ones(2, 4, 3), 2.0)


def test_channel_shuffle_sharded_batch():
    x = RNG.standard_normal((4, 6, 2))
    want = F.channel_shuffle(gt.tensor(x), 3).numpy()
    with use_mesh(2):
        got = F.channel_shuffle(gt.tensor(x).shard(0), 3)
        np.testing.assert_array_equal(got.numpy(), want)


# ---- Softmax2d ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 2, 2), (1, 1, 1, 1)])
def test_softmax2d_beside_torch(shape):
    torch = torch_or_skip()
    compare_with_torch(lambda t: nn.Softmax2d()(t), lambda t: torch.nn.Softmax2d()(t), RNG.standard_normal(shape) * 3)
    assert _repr_lines(nn.Softmax2d()) == repr(torch.nn.Softmax2d())


@pytest.mark.first_pass
def test_softmax2d_rank_error():
    with pytest.raises(ValueError, match="expected input to be 3D or 4D, got 2D instead"):
        nn.Softmax2d()(gt.ones(2, 3))


# ---- feature_alpha_dropout ------------------------------------------------------------------------
_ALPHA = 1.7580993408473766


def test_feature_alpha_dropout_statistics():
    p = 0.3
    gt.manual_seed(0)
    x = gt.randn(200, 50, 8)
    y = F.feature_alpha_dropout(x, p, training=True).numpy()
    xn = x.numpy()
    a = 1.0 / math.sqrt((_ALPHA ** 2 * p + 1) * (1 - p))
    kept_value = xn * a + _ALPHA * a * p
    dropped_value = -_ALPHA * a * (1 - p)
    kept = np.isclose(y, kept_value, rtol=1e-5, atol=1e-6)
    dropped = np.isclose(y, dropped_value, rtol=1e-5)
    assert (kept | dropped).all()
    # whole channels: one draw per (sample, channel)
    per_channel = dropped.mean(-1)
    assert set(np.unique(per_channel)) <= {0.0, 1.0}
    assert abs(per_channel.mean() - p) < 0.02                       # 10000 draws: sd 0.0046
    # SELU's self-normalization kept: zero mean, unit variance
    assert abs(y.mean()) < 0.03 and abs(y.std() - 1) < 0.03
    # the same seed, the same draw
    gt.manual_seed(3)
    first = F.feature_alpha_dropout(x, p, True).numpy()
    gt.manual_seed(3)
    np.testing.assert_array_equal(F.feature_alpha_dropout(x, p, True).numpy(), first)


def test_feature_alpha_dropout_edges_and_module():
    torch = torch_or_skip()
    x = gt.randn(3, 4, 2)
    assert F.feature_alpha_dropout(x, 0.5) is x                     # training defaults to False
    assert F.feature_alpha_dropout(x, 0.0, True) is x
    np.testing.assert_array_equal(F.feature_alpha_dropout(x, 1.0, True).numpy(), np.zeros((3, 4, 2)))
    np.testing.assert_array_equal(torch.nn.functional.feature_alpha_dropout(torch.ones(3, 4, 2), 1.0, True).numpy(),
                                  np.zeros((3, 4, 2)))
    # a 2-D input is (N, C), as torch reads it: one draw per element
    gt.manual_seed(0)
    flat = F.feature_alpha_dropout(gt.ones(40, 50), 0.5, True).numpy()
    assert len(np.unique(np.round(flat, 5))) == 2 and 0.4 < (flat < 0).mean() < 0.6
    m = nn.FeatureAlphaDropout(0.2)
    assert _repr_lines(m) == repr(torch.nn.FeatureAlphaDropout(0.2))
    assert list(m.state_dict()) == []
    m.eval()
    assert m(x) is x
    m.train()
    x.requires_grad_(True)
    gt.manual_seed(1)
    y = m(x)
    y.sum().backward()
    # the gradient is the kept mask times a: a constant per channel, 0 on dropped channels
    a = 1.0 / math.sqrt((_ALPHA ** 2 * 0.2 + 1) * 0.8)
    g = x.grad.numpy()
    assert (np.isclose(g, 0) | np.isclose(g, a, rtol=1e-6)).all() and np.isclose(g, a, rtol=1e-6).any()


@pytest.mark.first_pass
def test_feature_alpha_dropout_errors():
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        F.feature_alpha_dropout(gt.ones(3), 0.5, True)
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        F.feature_alpha_dropout(gt.ones(3, 4), 1.5, True)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.FeatureAlphaDropout(-0.1)


# ---- multilabel_margin_loss -----------------------------------------------------------------------
def _multilabel_target(n, c, seed=0):
    rng = np.random.default_rng(seed)
    target = np.full((n, c), -1, dtype=np.int64)
    for i in range(n):
        k = rng.integers(0, c + 1)
        target[i, :k] = rng.permutation(c)[:k]
        if k < c:
            target[i, k + 1:] = rng.integers(0, c, c - k - 1)      # after the first -1: ignored
    return target


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multilabel_margin_loss_beside_torch(reduction, dtype):
    torch = torch_or_skip()
    x = RNG.standard_normal((5, 4))
    y = _multilabel_target(5, 4)
    compare_with_torch(lambda a, t: F.multilabel_margin_loss(a, t, reduction=reduction),
                       lambda a, t: torch.nn.functional.multilabel_margin_loss(a, t, reduction=reduction), x, y,
                       dtype=dtype)
    compare_with_torch(lambda a, t: nn.MultiLabelMarginLoss(reduction=reduction)(a, t),
                       lambda a, t: torch.nn.MultiLabelMarginLoss(reduction=reduction)(a, t), x[0], y[0], dtype=dtype)


def test_multilabel_margin_loss_edges():
    torch = torch_or_skip()
    tf = torch.nn.functional
    # the docstring's example, 0-d, an empty batch, a sample without targets, duplicate targets
    cases = [(np.array([0.1, 0.2, 0.4, 0.8]), np.array([3, 0, -1, 1])),
             (np.array(0.5), np.array(0)),
             (np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)),
             (np.array([[0.3, -0.2, 0.9]]), np.array([[-1, 0, 1]])),
             (np.array([[0.3, -0.2, 0.9]]), np.array([[2, 2, -1]]))]
    for x, y in cases:
        for reduction in ("mean", "none") if x.size else ("none",):
            ours = F.multilabel_margin_loss(gt.tensor(x), gt.tensor(y), reduction=reduction)
            ref = tf.multilabel_margin_loss(torch.tensor(x), torch.tensor(y), reduction=reduction)
            assert ours.shape == tuple(ref.shape), (x, y, reduction)
            np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-12)
    # an empty batch's mean: gt 0, torch's kernel leaves it uninitialized (any value)
    assert F.multilabel_margin_loss(gt.zeros(0, 3), gt.zeros(0, 3, dtype=gt.int64)).item() == 0.0
    # the deprecated size_average / reduce
    x, y = gt.tensor(RNG.standard_normal((3, 4))), gt.tensor(_multilabel_target(3, 4, 1))
    with pytest.warns(UserWarning, match="deprecated"):
        legacy = torch.nn.MultiLabelMarginLoss(size_average=False)
    ref = legacy(torch.tensor(x.numpy()), torch.tensor(y.numpy()))
    with pytest.warns(UserWarning, match="deprecated"):     # torch's warning, from gt too
        mine = nn.MultiLabelMarginLoss(size_average=False)
    np.testing.assert_allclose(mine(x, y).numpy(), ref.numpy(), rtol=1e-12)
    assert _repr_lines(nn.MultiLabelMarginLoss()) == repr(torch.nn.MultiLabelMarginLoss())


@pytest.mark.first_pass
def test_multilabel_margin_loss_errors():
    x = gt.tensor([0.1, 0.2, 0.4, 0.8])
    with pytest.raises(RuntimeError, match="outside"):
        F.multilabel_margin_loss(x, gt.tensor([3, 4, -1, 1]))
    with pytest.raises(RuntimeError, match="inconsistent target size"):
        F.multilabel_margin_loss(x, gt.tensor([3, 0, -1]))
    with pytest.raises(RuntimeError, match="Long"):
        F.multilabel_margin_loss(x, gt.tensor([3.0, 0.0, -1.0, 1.0]))
    with pytest.raises(RuntimeError, match="non-empty vector or matrix"):
        F.multilabel_margin_loss(gt.ones(2, 3, 1), gt.ones(2, 3, 1, dtype=gt.int64))
    with pytest.raises(ValueError, match="reduction"):
        F.multilabel_margin_loss(x, gt.tensor([3, 0, -1, 1]), reduction="avg")


# ---- triplet_margin_with_distance_loss ------------------------------------------------------------
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_triplet_with_distance_beside_torch(swap, reduction):
    torch = torch_or_skip()
    a, p, n = (RNG.standard_normal((4, 3)) for _ in range(3))
    compare_with_torch(
        lambda x, y, z: F.triplet_margin_with_distance_loss(x, y, z, swap=swap, reduction=reduction, margin=2.0),
        lambda x, y, z: torch.nn.functional.triplet_margin_with_distance_loss(x, y, z, swap=swap, reduction=reduction,
                                                                              margin=2.0), a, p, n)

    def cosine_gt(u, v):
        return 1 - F.cosine_similarity(u, v)

    def cosine_torch(u, v):
        return 1 - torch.nn.functional.cosine_similarity(u, v)

    compare_with_torch(
        lambda x, y, z: nn.TripletMarginWithDistanceLoss(distance_function=cosine_gt, swap=swap,
                                                         reduction=reduction)(x, y, z),
        lambda x, y, z: torch.nn.TripletMarginWithDistanceLoss(distance_function=cosine_torch, swap=swap,
                                                               reduction=reduction)(x, y, z), a, p, n, dtype="float32")


def test_triplet_with_distance_module_state_and_unbatched():
    torch = torch_or_skip()
    m, ref = nn.TripletMarginWithDistanceLoss(margin=0.5), torch.nn.TripletMarginWithDistanceLoss(margin=0.5)
    assert _repr_lines(m) == repr(ref)
    assert list(m.state_dict()) == list(ref.state_dict()) == []
    compare_with_torch(lambda x, y, z: m(x, y, z), lambda x, y, z: ref(x, y, z), *(RNG.standard_normal(3) for _ in
                                                                                    range(3)))


@pytest.mark.first_pass
def test_triplet_with_distance_errors():
    ones = gt.ones(2, 3)
    with pytest.raises(ValueError, match="margin must be greater than 0, got 0"):
        F.triplet_margin_with_distance_loss(ones, ones, ones, margin=0)
    with pytest.raises(RuntimeError, match="same number of dimensions.*anchor 2D, positive 1D"):
        F.triplet_margin_with_distance_loss(ones, gt.ones(3), ones)
    with pytest.raises(ValueError, match="greater than 0"):
        nn.TripletMarginWithDistanceLoss(margin=-1.0)


# ---- gumbel_softmax -----------------------------------------------------------------------------
def test_gumbel_softmax_statistics():
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    gt.manual_seed(0)
    y = F.gumbel_softmax(gt.tensor(np.tile(logits, (4000, 1)), dtype=gt.float32), tau=0.5)
    yn = y.numpy()
    assert y.dtype == gt.float32 and yn.shape == (4000, 4)
    np.testing.assert_allclose(yn.sum(-1), 1, rtol=1e-5)
    assert (yn >= 0).all()
    # the argmax of logits + Gumbel noise is a sample of softmax(logits), whatever tau
    freq = np.bincount(yn.argmax(-1), minlength=4) / 4000
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.025)      # sd <= 0.008
    # a small tau is nearly one-hot, a large one nearly uniform
    gt.manual_seed(1)
    cold = F.gumbel_softmax(gt.tensor(np.tile(logits, (500, 1))), tau=0.01).numpy()
    assert np.median(cold.max(-1)) > 0.99
    gt.manual_seed(1)
    hot = F.gumbel_softmax(gt.tensor(np.tile(logits, (500, 1))), tau=100.0).numpy()
    assert np.abs(hot - 0.25).max() < 0.05


@pytest.mark.parametrize("dim", [-1, 0])
def test_gumbel_softmax_hard_is_straight_through(dim):
    x = RNG.standard_normal((5, 5))
    w = gt.tensor(RNG.standard_normal((5, 5)))
    soft_leaf, hard_leaf = gt.tensor(x, requires_grad=True), gt.tensor(x, requires_grad=True)
    gt.manual_seed(7)
    soft = F.gumbel_softmax(soft_leaf, tau=0.7, dim=dim)
    gt.manual_seed(7)
    hard = F.gumbel_softmax(hard_leaf, tau=0.7, hard=True, dim=dim)
    one_hot = np.eye(5)[soft.numpy().argmax(dim)]
    np.testing.assert_array_equal(hard.numpy(), one_hot if dim == -1 else one_hot.T)
    (soft * w).sum().backward()
    (hard * w).sum().backward()
    np.testing.assert_allclose(hard_leaf.grad.numpy(), soft_leaf.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert np.abs(hard_leaf.grad.numpy()).max() > 0


def test_gumbel_softmax_gradient_formula():
    """The soft sample's gradient is softmax's at (logits + g) / tau: sum-weighted, it is 0."""
    leaf = gt.tensor(RNG.standard_normal((3, 4)), requires_grad=True)
    gt.manual_seed(2)
    F.gumbel_softmax(leaf).sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), 0, atol=1e-12)


# ---- pdist --------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0, 0.5, 1, 2, 3, math.inf])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pdist_beside_torch(p, dtype):
    torch = torch_or_skip()
    x = RNG.standard_normal((5, 3))
    x[3] = x[1]                                   # a zero distance: torch's gradient there is 0
    x[4, 0] = x[0, 0]                             # a zero coordinate difference
    compare_with_torch(lambda t: F.pdist(t, p), lambda t: torch.nn.functional.pdist(t, p), x, dtype=dtype,
                       rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-6 if dtype == "float32" else 1e-12)


def test_pdist_inf_ties_and_shapes():
    torch = torch_or_skip()
    x = np.array([[0.0, 0.0, 1.0], [2.0, -2.0, 0.5]])          # |diff| = (2, 2, 0.5): a tie
    compare_with_torch(lambda t: F.pdist(t, math.inf), lambda t: torch.nn.functional.pdist(t, math.inf), x)
    for n in (0, 1):
        assert F.pdist(gt.zeros(n, 3)).shape == (0,) == tuple(torch.nn.functional.pdist(torch.zeros(n, 3)).shape)
    got = F.pdist(gt.tensor(RNG.standard_normal((3, 6))).t())     # non-contiguous (6, 3)
    assert got.shape == (15,)


@pytest.mark.first_pass
def test_pdist_errors():
    with pytest.raises(RuntimeError, match="only supports 2D tensors, got: 3D"):
        F.pdist(gt.ones(2, 3, 1))
    with pytest.raises(RuntimeError, match="non-negative p"):
        F.pdist(gt.ones(2, 3), p=-1)
    with pytest.raises(RuntimeError, match="floating-point"):
        F.pdist(gt.tensor([[1, 2], [3, 4]]))


def test_pdist_sharded_rows():
    x = RNG.standard_normal((8, 3))
    want = F.pdist(gt.tensor(x)).numpy()
    with use_mesh(2):
        got = F.pdist(gt.tensor(x).shard(0))
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_finite_differences():
    """float64 gradients of the composed losses and distances against central differences."""
    x = RNG.standard_normal((4, 3))
    check_grad(lambda t: F.pdist(t, 3), x)
    check_grad(lambda t: F.pdist(t, 0.7), x)
    check_grad(lambda t: F.multilabel_margin_loss(t, gt.tensor(_multilabel_target(4, 3, 2))), x * 0.3)
    check_grad(lambda a, b, c: F.triplet_margin_with_distance_loss(a, b, c, margin=3.0, swap=True), x, x[::-1] * 2,
               x * 0.5)
    check_grad(lambda t: F.channel_shuffle(t, 2).sin(), RNG.standard_normal((2, 4, 2)))
    check_grad(lambda t: nn.Softmax2d()(t), RNG.standard_normal((2, 3, 2)))


@pytest.mark.parametrize("devices", [2, 4])
def test_sharded_losses_and_softmax2d(devices):
    x = RNG.standard_normal((8, 4))
    y = _multilabel_target(8, 4, 3)
    img = RNG.standard_normal((4, 3, 2, 2))
    want_loss = F.multilabel_margin_loss(gt.tensor(x), gt.tensor(y), reduction="none").numpy()
    want_soft = nn.Softmax2d()(gt.tensor(img)).numpy()
    want_triplet = F.triplet_margin_with_distance_loss(gt.tensor(x), gt.tensor(x * 2), gt.tensor(-x)).item()
    with use_mesh(devices):
        got = F.multilabel_margin_loss(gt.tensor(x).shard(0), gt.tensor(y).shard(0), reduction="none")
        np.testing.assert_allclose(got.numpy(), want_loss, rtol=1e-12)
        np.testing.assert_allclose(nn.Softmax2d()(gt.tensor(img).shard(0)).numpy(), want_soft, rtol=1e-12)
        got = F.triplet_margin_with_distance_loss(gt.tensor(x).shard(0), gt.tensor(x * 2).shard(0),
                                                  gt.tensor(-x).shard(0))
        np.testing.assert_allclose(got.item(), want_triplet, rtol=1e-12)


# ---- nn.Buffer ----------------------------------------------------------------------------------
def test_buffer_registers_itself():
    torch = torch_or_skip()

    def build(lib):
        class Model(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = lib.nn.Buffer(lib.ones(2))
                self.cache = lib.nn.Buffer(lib.zeros(1), persistent=False)
                self.empty = lib.nn.Buffer()

        return Model()

    m, ref = build(gt), build(torch)
    assert list(dict(m.named_buffers())) == list(dict(ref.named_buffers())) == ["scale", "cache", "empty"]
    assert list(m.state_dict()) == list(ref.state_dict()) == ["scale", "empty"]
    assert m.empty.shape == tuple(ref.empty.shape) == (0,) and m.empty.dtype == gt.float32
    assert isinstance(m.scale, nn.Buffer) and not isinstance(gt.ones(1), nn.Buffer)
    assert isinstance(m.scale, gt.Tensor) and type(m.scale) is gt.Tensor
    m.load_state_dict({"scale": gt.tensor([3.0, 4.0]), "empty": gt.zeros(0)})
    np.testing.assert_array_equal(m.scale.numpy(), [3.0, 4.0])
    # re-assigning a plain tensor keeps it a buffer; a new nn.Buffer replaces an attribute
    m.scale = gt.tensor([5.0, 6.0])
    assert "scale" in dict(m.named_buffers())
    m.note = 1
    m.note = nn.Buffer(gt.ones(1))
    assert "note" in dict(m.named_buffers()) and "note" in m.state_dict()


def test_buffer_detaches_and_keeps_requires_grad():
    torch = torch_or_skip()
    leaf = gt.ones(2, requires_grad=True)
    b = nn.Buffer(leaf)
    tb = torch.nn.Buffer(torch.ones(2, requires_grad=True))
    assert b.requires_grad == tb.requires_grad is True
    assert b.grad_fn is None and b is not leaf
    assert b.persistent is True and nn.Buffer(gt.ones(1), persistent=False).persistent is False
    p = nn.Buffer(nn.Parameter(gt.ones(2)))
    assert not isinstance(p, nn.Parameter)


@pytest.mark.first_pass
def test_buffer_errors():
    with pytest.raises(TypeError, match="must be a gt.Tensor"):
        nn.Buffer([1.0, 2.0])


# ---- SyncBatchNorm ------------------------------------------------------------------------------
def test_sync_batchnorm_beside_torch_on_cpu():
    """torch's SyncBatchNorm without a process group on CPU runs as a batch norm: so does gt's."""
    torch = torch_or_skip()
    ref = torch.nn.SyncBatchNorm(3, momentum=0.2).double()
    m = nn.SyncBatchNorm(3, momentum=0.2, dtype=gt.float64)
    assert _repr_lines(m) == repr(ref)
    assert [(k, tuple(v.shape)) for k, v in ref.state_dict().items()] == \
           [(k, v.shape) for k, v in m.state_dict().items()]
    x = RNG.standard_normal((4, 3, 2, 2)) * 2 + 1
    for training in (True, True, False):
        m.train(training)
        ref.train(training)
        compare_with_torch(lambda t: m(t), lambda t: ref(t), x, rtol=1e-10, atol=1e-12)
    for k, v in ref.state_dict().items():
        np.testing.assert_allclose(np.asarray(m.state_dict()[k]), v.numpy(), rtol=1e-12, err_msg=k)
    # any rank >= 2 (torch's check)
    assert nn.SyncBatchNorm(3)(gt.randn(4, 3, 2, 1, 2, 1)).shape == (4, 3, 2, 1, 2, 1)


def test_sync_batchnorm_sharded_batch_uses_whole_batch_statistics():
    x = RNG.standard_normal((8, 3, 2))
    want = nn.SyncBatchNorm(3, dtype=gt.float64)(gt.tensor(x)).numpy()
    with use_mesh(2):
        m = nn.SyncBatchNorm(3, dtype=gt.float64)
        got = m(gt.tensor(x).shard(0))
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(m.running_mean.numpy(), 0.1 * x.mean((0, 2)), rtol=1e-10)


def test_convert_sync_batchnorm():
    torch = torch_or_skip()

    def build(lib):
        return lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3),
                                 lib.nn.Sequential(lib.nn.BatchNorm1d(3, affine=False, momentum=None)))

    model, ref = build(gt), build(torch)
    bn = model[1]
    model[2].eval()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ref_converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(ref)
    assert _repr_lines(converted) == repr(ref_converted)
    assert converted[1].weight is bn.weight and converted[1].running_mean is bn.running_mean
    assert converted[2][0].momentum is None and not converted[2][0].training
    assert isinstance(converted[0], nn.Linear)
    single = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm2d(4, eps=1e-3))
    assert isinstance(single, nn.SyncBatchNorm) and single.eps == 1e-3


@pytest.mark.first_pass
def test_sync_batchnorm_errors():
    with pytest.raises(ValueError, match="process_group=None"):
        nn.SyncBatchNorm(3, process_group=object())
    with pytest.raises(ValueError, match=r"expected at least 2D input \(got 1D input\)"):
        nn.SyncBatchNorm(3)(gt.ones(3))
