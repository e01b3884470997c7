"""torch's remaining losses (F forms and modules) and the distance layers, beside torch: values,
dtypes and gradients for each reduction in float32 and float64, edge cases and errors."""

import math
import warnings

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import check_grad, compare_with_torch, torch_or_skip

# torch warns about its own deprecated arguments and KLDivLoss's 'mean'; gt follows torch's values silently
pytestmark = pytest.mark.filterwarnings("ignore:.*(size_average|divides the total loss).*:UserWarning")

RNG = np.random.default_rng(7)
X, Y = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
SIGNS = np.array([1, -1, 1, -1])                                # int targets: +1 / -1 per row
SIGNS_2D = np.where(RNG.standard_normal((4, 3)) > 0, 1.0, -1.0)
COUNTS = RNG.integers(0, 5, (4, 3)).astype(np.float64)          # Poisson targets, some above 1
# full=True: torch's gradient with respect to a target of 0 is NaN (gt's is finite), so no zeros here
COUNTS_FULL = COUNTS + 0.5
LABELS = (RNG.standard_normal((4, 3)) > 0).astype(np.float64)   # multi-label 0 / 1
CLASSES = np.array([0, 2, 1, 2])
VAR = RNG.uniform(0.5, 2.0, (4, 3))


def _const(f, array, dtype):
    """``array`` as a constant tensor (no gradient) of the library ``f`` belongs to, in ``dtype``."""
    if f is F:
        return gt.tensor(array, dtype=dtype)
    return torch_or_skip().tensor(array, dtype=dtype)


def _both(make):
    """(gt function, torch function) from ``make(F)``, a function written once for both libraries."""
    return make(F), make(torch_or_skip().nn.functional)


# name -> (make(F, reduction) -> function of the arrays, arrays)
CASES = {
    "poisson": (lambda f, r: lambda x, t: f.poisson_nll_loss(x, t, reduction=r), (X, COUNTS)),
    "poisson full": (lambda f, r: lambda x, t: f.poisson_nll_loss(x, t, full=True, reduction=r), (X, COUNTS_FULL)),
    "poisson rates": (lambda f, r: lambda x, t: f.poisson_nll_loss(x, t, log_input=False, reduction=r),
                      (np.abs(X) + 0.1, COUNTS)),
    "gaussian": (lambda f, r: lambda x, t, v: f.gaussian_nll_loss(x, t, v, reduction=r), (X, Y, VAR)),
    "gaussian full rows": (lambda f, r: lambda x, t, v: f.gaussian_nll_loss(x, t, v, full=True, reduction=r),
                           (X, Y, VAR[:, 0])),
    "gaussian one column": (lambda f, r: lambda x, t, v: f.gaussian_nll_loss(x, t, v, reduction=r),
                            (X, Y, VAR[:, :1])),
    # var below eps: the value is clamped, the gradient passes through the clamp (torch's)
    "gaussian clamped": (lambda f, r: lambda x, t, v: f.gaussian_nll_loss(x, t, v, eps=0.3, reduction=r),
                         (X, Y, VAR * 0.3)),
    "margin ranking": (lambda f, r: lambda a, b, y: f.margin_ranking_loss(a, b, y, margin=0.3, reduction=r),
                       (X[:, 0], Y[:, 0], SIGNS)),
    "hinge": (lambda f, r: lambda x, y: f.hinge_embedding_loss(x, y, margin=0.5, reduction=r),
              (X, SIGNS_2D.astype(np.int64))),
    "cosine embedding": (lambda f, r: lambda a, b, y: f.cosine_embedding_loss(a, b, y, margin=0.1, reduction=r),
                         (X, Y, SIGNS)),
    "cosine embedding 1-D": (lambda f, r: lambda a, b, y: f.cosine_embedding_loss(a, b, y, reduction=r),
                             (X[0], Y[0], np.array(-1))),
    "soft margin": (lambda f, r: lambda x, y: f.soft_margin_loss(x, y, reduction=r), (X, SIGNS_2D.astype(np.int64))),
    "multilabel weight": (lambda f, r: lambda x, y, w: f.multilabel_soft_margin_loss(x, y, weight=w, reduction=r),
                          (X, LABELS, VAR[0])),
    "multi margin": (lambda f, r: lambda x, y: f.multi_margin_loss(x, y, reduction=r), (X, CLASSES)),
    "multi margin p2 weight": (lambda f, r: lambda x, y: f.multi_margin_loss(x, y, p=2, margin=0.7, weight=_const(
        f, VAR[0], x.dtype), reduction=r), (X, CLASSES)),
    "multi margin 1-D": (lambda f, r: lambda x, y: f.multi_margin_loss(x, y, reduction=r), (X[0], np.array(1))),
    "triplet": (lambda f, r: lambda a, p, n: f.triplet_margin_loss(a, p, n, margin=2.0, reduction=r),
                (X, Y, X[::-1].copy())),
    "triplet p1 swap": (lambda f, r: lambda a, p, n: f.triplet_margin_loss(a, p, n, margin=2.0, p=1, swap=True,
                                                                            reduction=r), (X, Y, X[::-1] + 0.5)),
    "smooth l1": (lambda f, r: lambda x, t: f.smooth_l1_loss(x, t, reduction=r, beta=0.5), (X, Y)),
    "huber": (lambda f, r: lambda x, t: f.huber_loss(x, t, reduction=r, delta=0.7), (X, Y)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_losses_are_torchs(name):
    make, arrays = CASES[name]
    for reduction, dtype in (("mean", "float64"), ("sum", "float64"), ("none", "float64"), ("mean", "float32")):
        ours, theirs = _both(lambda f: make(f, reduction))
        compare_with_torch(ours, theirs, *arrays, dtype=dtype)


@pytest.mark.parametrize("name", ["poisson full", "gaussian", "cosine embedding", "triplet p1 swap"])
def test_loss_gradients_match_finite_differences(name):
    make, arrays = CASES[name]
    check_grad(make(F, "sum"), *arrays)


# name -> (make(library, reduction) -> module, arrays)
MODULES = {
    "SmoothL1Loss": (lambda L, r: L.nn.SmoothL1Loss(reduction=r, beta=0.5), (X, Y)),
    "HuberLoss": (lambda L, r: L.nn.HuberLoss(reduction=r, delta=0.5), (X, Y)),
    "KLDivLoss": (lambda L, r: L.nn.KLDivLoss(reduction=r), (np.log(VAR / VAR.sum()), VAR / VAR.sum())),
    "KLDivLoss log_target": (lambda L, r: L.nn.KLDivLoss(reduction=r, log_target=True), (X, Y)),
    "PoissonNLLLoss": (lambda L, r: L.nn.PoissonNLLLoss(full=True, reduction=r), (X, COUNTS_FULL)),
    "GaussianNLLLoss": (lambda L, r: L.nn.GaussianNLLLoss(full=True, reduction=r), (X, Y, VAR)),
    "MarginRankingLoss": (lambda L, r: L.nn.MarginRankingLoss(0.2, reduction=r), (X[:, 0], Y[:, 0], SIGNS)),
    "HingeEmbeddingLoss": (lambda L, r: L.nn.HingeEmbeddingLoss(0.5, reduction=r), (X, SIGNS_2D.astype(np.int64))),
    "CosineEmbeddingLoss": (lambda L, r: L.nn.CosineEmbeddingLoss(0.1, reduction=r), (X, Y, SIGNS)),
    "SoftMarginLoss": (lambda L, r: L.nn.SoftMarginLoss(reduction=r), (X, SIGNS_2D.astype(np.int64))),
    "MultiLabelSoftMarginLoss": (lambda L, r: L.nn.MultiLabelSoftMarginLoss(reduction=r), (X, LABELS)),
    "MultiMarginLoss": (lambda L, r: L.nn.MultiMarginLoss(p=2, reduction=r), (X, CLASSES)),
    "TripletMarginLoss": (lambda L, r: L.nn.TripletMarginLoss(margin=2.0, swap=True, reduction=r),
                          (X, Y, X[::-1].copy())),
}


@pytest.mark.parametrize("name", list(MODULES))
def test_loss_modules_are_torchs(name):
    torch = torch_or_skip()
    make, arrays = MODULES[name]
    for reduction, dtype in (("mean", "float32"), ("sum", "float64"), ("none", "float32")):
        ours, theirs = make(gt, reduction), make(torch, reduction)
        compare_with_torch(lambda *a: ours(*a), lambda *a: theirs(*a), *arrays, dtype=dtype)
        assert repr(ours) == repr(theirs)


def test_batchmean_and_legacy_reduction_arguments():
    torch = torch_or_skip()
    compare_with_torch(lambda x, t: nn.KLDivLoss(reduction="batchmean")(x, t),
                       lambda x, t: torch.nn.KLDivLoss(reduction="batchmean")(x, t), X, np.abs(Y))
    for kwargs, expected in (({"reduce": False}, "none"), ({"size_average": False}, "sum"),
                             ({"size_average": True, "reduce": True}, "mean")):
        assert nn.SmoothL1Loss(**kwargs).reduction == torch.nn.SmoothL1Loss(**kwargs).reduction == expected


def test_weighted_losses_keep_weight_as_a_buffer_like_torch():
    torch = torch_or_skip()
    w = VAR[0].astype(np.float32)
    x = X.astype(np.float32)
    for name, target in (("MultiMarginLoss", CLASSES), ("MultiLabelSoftMarginLoss", LABELS.astype(np.float32))):
        theirs = getattr(torch.nn, name)(weight=torch.tensor(w))
        ours = getattr(nn, name)(weight=gt.ones(3))
        ours.load_state_dict({k: gt.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
        assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
        np.testing.assert_allclose(ours(gt.tensor(x), gt.tensor(target)).item(),
                                   theirs(torch.tensor(x), torch.tensor(target)).item(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("p, keepdim", [(2.0, False), (1, True), (3.5, False), (math.inf, False)])
def test_pairwise_distance_is_torchs(p, keepdim, dtype):
    ours, theirs = _both(lambda f: lambda a, b: f.pairwise_distance(a, b, p=p, keepdim=keepdim))
    compare_with_torch(ours, theirs, X, Y, dtype=dtype)
    compare_with_torch(ours, theirs, X, Y[0], dtype=dtype)           # broadcasting (N, D) with (D,)
    compare_with_torch(ours, theirs, X[0], Y[0], dtype=dtype)        # (D,) -> ()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_distance_modules_are_torchs(dtype):
    torch = torch_or_skip()
    for ours, theirs in ((nn.CosineSimilarity(dim=0, eps=1e-6), torch.nn.CosineSimilarity(dim=0, eps=1e-6)),
                         (nn.CosineSimilarity(), torch.nn.CosineSimilarity()),
                         (nn.PairwiseDistance(p=1.0, keepdim=True), torch.nn.PairwiseDistance(p=1.0, keepdim=True))):
        compare_with_torch(lambda a, b: ours(a, b), lambda a, b: theirs(a, b), X, Y, dtype=dtype)
        assert repr(ours) == repr(theirs)


def test_edge_cases_are_torchs():
    torch = torch_or_skip()
    empty = np.zeros((0, 3))
    for reduction in ("sum", "none"):
        ours, theirs = _both(lambda f: lambda x, t: f.soft_margin_loss(x, t, reduction=reduction))
        compare_with_torch(ours, theirs, empty, np.zeros((0, 3), np.int64))
        ours, theirs = _both(lambda f: lambda x, y: f.multi_margin_loss(x, y, reduction=reduction))
        compare_with_torch(ours, theirs, empty, np.zeros(0, np.int64))
    # the mean over nothing is NaN in both
    with warnings.catch_warnings():          # the numpy engine's mean of nothing warns (gt's Tensor.mean)
        warnings.simplefilter("ignore", RuntimeWarning)
        assert math.isnan(F.poisson_nll_loss(gt.zeros(0), gt.zeros(0)).item())
    assert math.isnan(torch.nn.functional.poisson_nll_loss(torch.zeros(0), torch.zeros(0)).item())
    # 0-d inputs
    ours, theirs = _both(lambda f: lambda x, t: f.poisson_nll_loss(x, t, full=True))
    compare_with_torch(ours, theirs, np.array(0.3), np.array(3.0))
    # a float var, and targets given as numbers
    compare_with_torch(lambda x, t: F.gaussian_nll_loss(x, t, 0.5),
                       lambda x, t: torch.nn.functional.gaussian_nll_loss(x, t, 0.5), X, Y)
    # large margins: torch's log1p(exp(z)) overflows to inf in float32, gt stays finite and exact
    big = F.soft_margin_loss(gt.tensor([-200.0]), gt.tensor([1.0]))
    assert big.item() == pytest.approx(200.0)


@pytest.mark.parametrize("name", ["poisson", "gaussian", "margin ranking", "hinge", "cosine embedding", "soft margin",
                                  "multilabel weight", "multi margin", "triplet"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # numpy's warnings on inf - inf, as gt's ops give them
def test_nan_and_inf_propagate_as_in_torch(name):
    make, arrays = CASES[name]
    x = arrays[0].copy()
    x.flat[0], x.flat[-1] = np.nan, np.inf
    ours, theirs = _both(lambda f: make(f, "none"))
    compare_with_torch(ours, theirs, x, *arrays[1:], grad=False)


def test_float32_inputs_give_float32_losses():
    x = gt.tensor(X, dtype=gt.float32)
    assert F.poisson_nll_loss(x, COUNTS).dtype == gt.float32       # a float64 array target does not widen
    assert F.gaussian_nll_loss(x, Y, VAR).dtype == gt.float32
    assert F.multi_margin_loss(x, CLASSES, weight=VAR[0]).dtype == gt.float32


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.poisson_nll_loss(gt.zeros(3), gt.zeros(2)), ValueError, r"target shape \(2,\) differs"),
    (lambda: F.poisson_nll_loss(gt.zeros(3), gt.zeros(3), reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: F.poisson_nll_loss(gt.tensor([True, False]), gt.zeros(2), log_input=False), RuntimeError,
     "input is bool"),
    (lambda: F.gaussian_nll_loss(gt.zeros(3), gt.zeros(3), gt.tensor([1.0, -1.0, 1.0])), ValueError,
     "var has negative entry"),
    (lambda: F.gaussian_nll_loss(gt.zeros(3), gt.zeros(3), -1.0), ValueError, "var has negative entry"),
    (lambda: F.gaussian_nll_loss(gt.zeros(2, 3), gt.zeros(2, 3), gt.ones(3, 2)), ValueError,
     r"var is of incorrect size: \(3, 2\)"),
    (lambda: F.gaussian_nll_loss(gt.zeros(3), gt.zeros(3), gt.ones(3), reduction="max"), ValueError,
     "'max' is not a valid value for reduction"),
    (lambda: F.margin_ranking_loss(gt.zeros(3), gt.zeros(3), gt.ones(1, 3)), ValueError,
     "same number of dimensions"),
    (lambda: F.cosine_embedding_loss(gt.zeros(2, 3), gt.zeros(2, 3), gt.ones(3)), ValueError,
     r"target \(N,\).*\(3,\)"),
    (lambda: F.soft_margin_loss(gt.zeros(3), gt.zeros(3, 1)), ValueError, "differs from input shape"),
    (lambda: F.multilabel_soft_margin_loss(gt.zeros(()), gt.zeros(())), ValueError,
     r"\(N, C\), \(C,\) or"),
    (lambda: F.multi_margin_loss(gt.zeros(2, 3), gt.tensor([0, 3])).item(), IndexError,
     r"target 3 is out of range for 3 classes \(valid: 0..2\)"),
    (lambda: F.multi_margin_loss(gt.zeros(3), gt.tensor(-1)).item(), IndexError, "target -1 is out of range"),
    (lambda: F.multi_margin_loss(gt.zeros(2, 3), gt.tensor([0, 1]), p=3), ValueError, "only p == 1 and p == 2"),
    (lambda: F.multi_margin_loss(gt.zeros(2, 3), gt.tensor([0.0, 1.0])), RuntimeError, "Long but found Float"),
    (lambda: F.multi_margin_loss(gt.zeros(2, 3), gt.tensor([0, 1]), weight=gt.ones(2)), ValueError,
     r"weight must have shape \(3,\)"),
    (lambda: F.triplet_margin_loss(gt.zeros(2, 3), gt.zeros(2, 3), gt.zeros(3)), ValueError, "one number of dimensions"),
    (lambda: F.triplet_margin_loss(gt.zeros(3), gt.zeros(3), gt.zeros(3), margin=0.0), ValueError,
     "margin must be greater than 0"),
    (lambda: F.pairwise_distance(gt.zeros(3), gt.zeros(3), p=float("nan")), ValueError, "p must be a number"),
    (lambda: F.pairwise_distance(gt.zeros(3), gt.zeros(4)), ValueError, r"\(3,\).*\(4,\)|broadcast"),
    (lambda: nn.MultiMarginLoss(p=3), ValueError, "only p == 1 and p == 2"),
    (lambda: nn.HuberLoss(delta=0.0)(gt.zeros(2), gt.zeros(2)), ValueError, "delta must be > 0"),
])
def test_errors_name_the_value(call, error, match):
    with pytest.raises(error, match=match):
        call()


LEGACY = [({"reduce": False}), ({"size_average": False}), ({"size_average": True, "reduce": True}),
          ({"reduce": True, "size_average": False})]
LEGACY_LOSSES = {
    "mse_loss": lambda L, kw: L.nn.functional.mse_loss(L.tensor([0.2, 0.7]), L.tensor([0.0, 1.0]), **kw),
    "l1_loss": lambda L, kw: L.nn.functional.l1_loss(L.tensor([0.2, 0.7]), L.tensor([0.0, 1.0]), **kw),
    "smooth_l1_loss": lambda L, kw: L.nn.functional.smooth_l1_loss(L.tensor([0.2, 3.0]), L.tensor([0.0, 1.0]), **kw),
    "binary_cross_entropy": lambda L, kw: L.nn.functional.binary_cross_entropy(L.tensor([0.2, 0.7]), L.tensor([0.0, 1.0]), **kw),
    "bce_with_logits": lambda L, kw: L.nn.functional.binary_cross_entropy_with_logits(L.tensor([0.2, -0.7]),
                                                                                      L.tensor([0.0, 1.0]), **kw),
    "kl_div": lambda L, kw: L.nn.functional.kl_div(L.tensor([-0.2, -0.7]), L.tensor([0.3, 0.7]), **kw),
    "soft_margin_loss": lambda L, kw: L.nn.functional.soft_margin_loss(L.tensor([0.2, -0.7]), L.tensor([1.0, -1.0]), **kw),
    "hinge_embedding_loss": lambda L, kw: L.nn.functional.hinge_embedding_loss(L.tensor([0.2, 0.7]), L.tensor([1.0, -1.0]), **kw),
    "margin_ranking_loss": lambda L, kw: L.nn.functional.margin_ranking_loss(L.tensor([0.2, 0.7]), L.tensor([0.5, 0.1]),
                                                                             L.tensor([1.0, -1.0]), **kw),
    "poisson_nll_loss": lambda L, kw: L.nn.functional.poisson_nll_loss(L.tensor([0.2, 0.7]), L.tensor([1.0, 2.0]), **kw),
    "multi_margin_loss": lambda L, kw: L.nn.functional.multi_margin_loss(L.tensor([[0.2, 0.7, 0.1]]), L.tensor([1]), **kw),
    "MSELoss": lambda L, kw: L.nn.MSELoss(**kw)(L.tensor([0.2, 0.7]), L.tensor([0.0, 1.0])),
    "L1Loss": lambda L, kw: L.nn.L1Loss(**kw)(L.tensor([0.2, 0.7]), L.tensor([0.0, 1.0])),
    "BCELoss": lambda L, kw: L.nn.BCELoss(**kw)(L.tensor([0.2, 0.7]), L.tensor([0.0, 1.0])),
    "BCEWithLogitsLoss": lambda L, kw: L.nn.BCEWithLogitsLoss(**kw)(L.tensor([0.2, -0.7]), L.tensor([0.0, 1.0])),
}


@pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated")
@pytest.mark.parametrize("name", list(LEGACY_LOSSES))
def test_legacy_size_average_and_reduce_are_torch_s(name):
    """torch's deprecated ``size_average``/``reduce`` keywords (old code passes ``reduce=False``):
    read into ``reduction`` as torch reads them, on the functions and the modules."""
    torch = torch_or_skip()
    for kw in LEGACY:
        ours, theirs = LEGACY_LOSSES[name](gt, kw), LEGACY_LOSSES[name](torch, kw)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-6, err_msg=str(kw))
    assert LEGACY_LOSSES[name](gt, {}).shape == ()


def test_legacy_keywords_warn_and_modules_keep_gt_s_positional_reduction():
    with pytest.warns(UserWarning, match="please use reduction='none' instead"):
        F.mse_loss(gt.ones(2), gt.zeros(2), reduce=False)
    assert nn.MSELoss("sum")(gt.ones(2), gt.zeros(2)).item() == 2.0        # gt's own order: reduction first
    assert nn.BCELoss(None, "sum")(gt.tensor([0.5]), gt.tensor([1.0])).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_elementwise_weight_of_the_regression_losses_is_torch_s(name, reduction):
    """torch 2.13's ``weight`` of mse/l1/huber: the mean is over the weights' sum for mse and l1
    and over the element count for huber, as torch's own code does."""
    torch = torch_or_skip()
    x, y, w = np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 1.0]), np.array([1.0, 2.0, 0.5])
    compare_with_torch(lambda a, b, c: getattr(F, name)(a, b, reduction=reduction, weight=c),
                       lambda a, b, c: getattr(torch.nn.functional, name)(a, b, reduction=reduction, weight=c), x, y, w)
    with pytest.raises(ValueError, match="Weights and input must have the same size"):
        getattr(F, name)(gt.tensor(x), gt.tensor(y), weight=gt.tensor([1.0, 2.0]))


def test_functional_first_argument_is_named_input_as_torch_s():
    torch = torch_or_skip()
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    calls = [("softmax", dict(dim=1)), ("log_softmax", dict(dim=1)), ("sigmoid", {}), ("tanh", {}),
             ("normalize", dict(dim=1)), ("layer_norm", dict(normalized_shape=(3,))), ("dropout", dict(training=False))]
    for name, kw in calls:
        ours = getattr(F, name)(input=gt.tensor(x), **kw)
        theirs = getattr(torch.nn.functional, name)(input=torch.tensor(x), **kw)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7, err_msg=name)
    t = np.array([0, 2])
    assert F.cross_entropy(input=gt.tensor(x), target=gt.tensor(t)).item() == pytest.approx(
        torch.nn.functional.cross_entropy(input=torch.tensor(x), target=torch.tensor(t)).item(), rel=1e-6)
    assert F.nll_loss(input=gt.tensor(x), target=gt.tensor(t)).item() == pytest.approx(
        torch.nn.functional.nll_loss(input=torch.tensor(x), target=torch.tensor(t)).item(), rel=1e-6)
    rows = F.embedding(input=gt.tensor([1, 0]), weight=gt.tensor(x.T.copy()))
    np.testing.assert_array_equal(rows.numpy(), x.T[[1, 0]])
    out, t_out = gt.zeros(2, 3), torch.zeros(2, 3)
    assert F.normalize(gt.tensor(x), out=out) is out
    torch.nn.functional.normalize(torch.tensor(x), out=t_out)
    np.testing.assert_allclose(out.numpy(), t_out.numpy(), rtol=1e-6)
