"""Losses beside torch 2.13 where differential testing found gt apart: targets of another shape
broadcast (with torch's warning for mse/l1/smooth_l1/huber, silently for kl_div and
poisson_nll_loss, into the input's shape for soft_margin_loss), multilabel_soft_margin_loss and
triplet_margin_loss on inputs of more axes, a float64 ``var`` in gaussian_nll_loss, BCE weights that
would widen the loss, kl_div's warning for 'mean', and CTC with every target empty."""

import warnings

import numpy as np
import pytest

import gt
from helpers import compare_with_torch, randn, torch_or_skip

BROADCAST_WARNING = "Using a target size .* that is different to the input size"


def _pair(make):
    """``make(library)`` for gt and for torch: the two functions compare_with_torch runs."""
    return make(gt), make(torch_or_skip())


@pytest.mark.parametrize("name, kwargs", [("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}),
                                          ("smooth_l1_loss", {"beta": 0.0}), ("huber_loss", {"delta": 0.7})])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shapes", [((2, 3), (3,)), ((3, 1), (1, 4)), ((2, 1, 3), (2, 3))])
def test_elementwise_losses_broadcast_a_target_with_torchs_warning(name, kwargs, reduction, shapes):
    ours, theirs = _pair(lambda m: lambda x, y: getattr(m.nn.functional, name)(x, y, reduction=reduction, **kwargs))
    with pytest.warns(UserWarning, match=BROADCAST_WARNING):
        compare_with_torch(ours, theirs, randn(*shapes[0], seed=1), randn(*shapes[1], seed=2))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_weighted_losses_with_a_broadcast_target(name):
    ours, theirs = _pair(lambda m: lambda x, y, w: getattr(m.nn.functional, name)(x, y, weight=w))
    with pytest.warns(UserWarning, match=BROADCAST_WARNING):
        compare_with_torch(ours, theirs, randn(2, 3, seed=1), randn(3, seed=2), randn(2, 3, seed=3) ** 2)
    fn = getattr(gt.nn.functional, name)
    with pytest.raises(ValueError, match=r"input shape \(3,\) and target shape \(2,\) differ"):   # torch raises too
        fn(gt.zeros(3), gt.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                         # same shapes: no warning
        fn(gt.zeros(3), gt.zeros(3))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_broadcasts_silently(reduction, log_target):
    ours, theirs = _pair(lambda m: lambda x, y: m.nn.functional.kl_div(x, y if log_target else y.abs(),
                                                                        reduction=reduction, log_target=log_target))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "reduction: 'mean'")
        warnings.filterwarnings("error", BROADCAST_WARNING)
        compare_with_torch(ours, theirs, randn(1, 2, 3, seed=1), randn(2, 3, seed=2))


def test_kl_div_mean_warns_as_torchs():
    torch = torch_or_skip()
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size") as ours:
        gt.nn.functional.kl_div(gt.zeros(2), gt.ones(2))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size") as theirs:
        torch.nn.functional.kl_div(torch.zeros(2), torch.ones(2))
    assert str(ours[0].message) == str(theirs[0].message)
    with pytest.warns(UserWarning, match="'batchmean'"):
        gt.nn.KLDivLoss()(gt.zeros(2), gt.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gt.nn.functional.kl_div(gt.zeros(2), gt.ones(2), reduction="batchmean")
        assert gt.kl_div(gt.zeros(2), gt.ones(2), 1).item() == torch.kl_div(torch.zeros(2), torch.ones(2), 1).item()


@pytest.mark.parametrize("log_input, full", [(True, False), (True, True), (False, True)])
@pytest.mark.parametrize("shapes", [((3, 1), (1,)), ((2, 3), (3,)), ((3,), (2, 1))])
def test_poisson_nll_loss_broadcasts_silently(log_input, full, shapes):
    counts = np.round(np.abs(randn(*shapes[1], seed=2)) * 3)
    ours, theirs = _pair(lambda m: lambda x, t: m.nn.functional.poisson_nll_loss(
        x if log_input else x.abs(), t, log_input=log_input, full=full, reduction="none"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare_with_torch(ours, theirs, randn(*shapes[0], seed=1), counts)


def test_soft_margin_loss_broadcasts_the_target_into_the_input():
    ours, theirs = _pair(lambda m: lambda x, y: m.nn.functional.soft_margin_loss(x, y.detach(), reduction="none"))
    compare_with_torch(ours, theirs, randn(2, 3, seed=1), np.sign(randn(3, seed=2)))
    compare_with_torch(ours, theirs, randn(2, 3, seed=1), np.sign(randn(2, 1, seed=2)))
    with pytest.raises(ValueError, match="differs from input shape"):   # would widen the input: torch raises too
        gt.nn.functional.soft_margin_loss(gt.zeros(3), gt.zeros(3, 1))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 3, 4), (4,)), ((2, 3), (2, 1), (3,)), ((2, 3), (3,), (1, 3))])
def test_multilabel_soft_margin_loss_on_more_axes_and_broadcast_targets(reduction, shapes):
    target = (randn(*shapes[1], seed=2) > 0).astype(np.float64)
    ours, theirs = _pair(lambda m: lambda x, y, w: m.nn.functional.multilabel_soft_margin_loss(
        x, y, weight=w, reduction=reduction))
    compare_with_torch(ours, theirs, randn(*shapes[0], seed=1), target, randn(*shapes[2], seed=3) ** 2)


def test_multilabel_soft_margin_loss_of_no_classes_is_nan_as_torchs():
    torch = torch_or_skip()
    ours = gt.nn.functional.multilabel_soft_margin_loss(gt.zeros(2, 0), gt.ones(2, 0))
    theirs = torch.nn.functional.multilabel_soft_margin_loss(torch.zeros(2, 0), torch.ones(2, 0))
    assert np.isnan(ours.item()) and np.isnan(theirs.item())


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("shapes", [((2, 2, 3), (2, 2, 3), (2, 2, 3)), ((2, 2, 3), (2, 1, 3), (1, 2, 3))])
def test_triplet_margin_loss_on_more_axes(swap, p, shapes):
    ours, theirs = _pair(lambda m: lambda a, pos, neg: m.nn.functional.triplet_margin_loss(
        a, pos, neg, margin=2.0, p=p, swap=swap, reduction="none"))
    compare_with_torch(ours, theirs, *(randn(*s, seed=k) for k, s in enumerate(shapes)))
    module, ref = gt.nn.TripletMarginLoss(p=p, swap=swap), torch_or_skip().nn.TripletMarginLoss(p=p, swap=swap)
    compare_with_torch(module, ref, *(randn(*s, seed=k) for k, s in enumerate(shapes)))


def test_gaussian_nll_loss_answers_in_the_dtype_of_a_float64_var():
    torch = torch_or_skip()
    x, y, v = randn(2, 3, seed=1), randn(2, 3, seed=2), randn(2, 3, seed=3) ** 2 + 0.1
    for full in (False, True):
        gx = gt.tensor(x, dtype=gt.float32, requires_grad=True)
        tx = torch.tensor(x, dtype=torch.float32, requires_grad=True)
        ours = gt.nn.functional.gaussian_nll_loss(gx, gt.tensor(y, dtype=gt.float32), gt.tensor(v), full=full)
        theirs = torch.nn.functional.gaussian_nll_loss(tx, torch.tensor(y, dtype=torch.float32), torch.tensor(v),
                                                       full=full)
        assert ours.dtype == gt.float64 and theirs.dtype == torch.float64
        np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-6)
        ours.backward()
        theirs.backward()
        assert gx.grad.dtype == gt.float32
        np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("call", [
    lambda m: m.nn.functional.binary_cross_entropy(m.full((3,), 0.5), m.ones(3), weight=m.ones(2, 1)),
    lambda m: m.nn.functional.binary_cross_entropy(m.full((2, 3), 0.5), m.ones(2, 3), weight=m.ones(2, 2, 3)),
    lambda m: m.nn.functional.binary_cross_entropy_with_logits(m.zeros(3), m.ones(3), weight=m.ones(2, 3)),
    lambda m: m.nn.functional.binary_cross_entropy_with_logits(m.zeros(2, 3), m.ones(2, 3), pos_weight=m.ones(2, 2, 3)),
    lambda m: m.nn.BCEWithLogitsLoss(pos_weight=m.ones(2, 2, 3))(m.zeros(2, 3), m.ones(2, 3)),
    lambda m: m.nn.BCELoss(weight=m.ones(4, 1))(m.full((3,), 0.5), m.ones(3)),
])
def test_bce_weights_that_would_widen_the_loss_are_refused(call):
    torch = torch_or_skip()
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises(ValueError, match="does not broadcast to the input's shape"):
        call(gt)
    for kind, shape in (("weight", (3,)), ("weight", (2, 1)), ("pos_weight", (3,)), ("pos_weight", ())):  # these fit
        ours, theirs = _pair(lambda m: lambda x, y, w: m.nn.functional.binary_cross_entropy_with_logits(
            x, y, reduction="none", **{kind: w.detach()}))
        compare_with_torch(ours, theirs, randn(2, 3, seed=1), (randn(2, 3, seed=2) > 0) * 1.0,
                           np.abs(randn(*shape, seed=3)) + 0.5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", ["padded", "empty_padded", "concatenated"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc_loss_with_every_target_empty(reduction, layout, zero_infinity):
    torch = torch_or_skip()
    targets = {"padded": np.array([[1, 2], [2, 2], [1, 1]]), "empty_padded": np.zeros((3, 0), dtype=np.int64),
               "concatenated": np.zeros(0, dtype=np.int64)}[layout]
    lengths = np.array([5, 3, 4])

    def make(m):
        def ctc(logits):
            return m.nn.functional.ctc_loss(logits.log_softmax(2), m.tensor(targets), m.tensor(lengths),
                                            m.tensor([0, 0, 0]), blank=0, reduction=reduction,
                                            zero_infinity=zero_infinity)
        return ctc
    compare_with_torch(make(gt), make(torch), randn(5, 3, 4, seed=1))
    compare_with_torch(make(gt), make(torch), randn(5, 3, 4, seed=1), dtype="float32")


def test_ctc_loss_refuses_empty_log_probs():
    torch = torch_or_skip()
    for shape in ((0, 2, 4), (5, 0, 4)):
        n = shape[1]
        with pytest.raises(RuntimeError, match="log_probs tensor must not be empty"):
            torch.nn.functional.ctc_loss(torch.zeros(shape), torch.ones(n, 2, dtype=torch.int64),
                                         torch.zeros(n, dtype=torch.int64), torch.ones(n, dtype=torch.int64))
        with pytest.raises(ValueError, match="log_probs tensor must not be empty"):
            gt.nn.functional.ctc_loss(gt.zeros(*shape), gt.ones(n, 2, dtype=gt.int64), gt.zeros(n, dtype=gt.int64),
                                      gt.ones(n, dtype=gt.int64))


@pytest.mark.parametrize("shapes", [((1, 3), (2, 3), (2,)), ((2, 3), (2, 3), (1,)), ((2, 3), (2, 1), (2,))])
@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_cosine_embedding_loss_broadcasts_as_torchs(shapes, margin):
    target = np.where(randn(*shapes[2], seed=3) > 0, 1, -1)
    ours, theirs = _pair(lambda m: lambda a, b, y: m.nn.functional.cosine_embedding_loss(
        a, b, y, margin=margin, reduction="none"))
    compare_with_torch(ours, theirs, randn(*shapes[0], seed=1), randn(*shapes[1], seed=2), target)
    with pytest.raises(ValueError, match=r"target \(N,\).*\(3,\)"):
        gt.nn.functional.cosine_embedding_loss(gt.zeros(2, 3), gt.zeros(2, 3), gt.ones(3))


@pytest.mark.parametrize("call", [
    lambda m, a, b: m.nn.functional.margin_ranking_loss(a, b, m.ones(2, 3)),
    lambda m, a, b: m.nn.functional.margin_ranking_loss(a, a.detach() * 0, b.sign()),
    lambda m, a, b: m.nn.functional.multilabel_soft_margin_loss(a, (a > 0).float(), weight=b[0].abs()),
    lambda m, a, b: m.nn.functional.cosine_embedding_loss(a, b, m.tensor([1, -1])),
    lambda m, a, b: m.nn.functional.triplet_margin_loss(a, b, a.detach() * 2),
    lambda m, a, b: m.nn.functional.triplet_margin_loss(a, a.detach() * 2, b),
])
def test_a_float64_second_input_gives_a_float64_loss_as_torchs(call):
    torch = torch_or_skip()
    results = []
    for m in (gt, torch):
        a = m.tensor(randn(2, 3, seed=1), dtype=m.float32, requires_grad=True)
        loss = call(m, a, m.tensor(randn(2, 3, seed=2), dtype=m.float64))
        loss.backward()
        results.append((str(loss.dtype).split(".")[-1], loss.item(), str(a.grad.dtype).split(".")[-1], a.grad.numpy()))
    (dtype, value, gdtype, grad), (want_dtype, want, want_gdtype, want_grad) = results
    assert (dtype, gdtype) == (want_dtype, want_gdtype) == ("float64", "float32")
    np.testing.assert_allclose(value, want, rtol=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("target", [[1], [-100], [2]])
def test_unbatched_class_losses_take_a_one_element_target(reduction, target):
    torch = torch_or_skip()
    for name in ("cross_entropy", "nll_loss"):
        ours, theirs = _pair(lambda m: lambda x: getattr(m.nn.functional, name)(x, m.tensor(target),
                                                                                 reduction=reduction))
        compare_with_torch(ours, theirs, randn(3, seed=1), grad=False)     # torch's backward raises here (its bug)
        x, x0 = (gt.tensor(randn(3, seed=1), requires_grad=True) for _ in range(2))
        getattr(gt.nn.functional, name)(x, gt.tensor(target), reduction=reduction).backward()
        getattr(gt.nn.functional, name)(x0, gt.tensor(target[0]), reduction=reduction).backward()
        np.testing.assert_array_equal(x.grad.numpy(), x0.grad.numpy())    # the gradient of the 0-d class's form
    with pytest.raises(ValueError, match="1D target must have size 1"):
        torch.nn.functional.cross_entropy(torch.zeros(3), torch.tensor([1, 2]))
    with pytest.raises(ValueError):
        gt.nn.functional.cross_entropy(gt.zeros(3), gt.tensor([1, 2]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_loss_reads_a_one_element_target_as_a_batch_of_one(reduction, p):
    ours, theirs = _pair(lambda m: lambda x, w: m.nn.functional.multi_margin_loss(
        x, m.tensor([1]), p=p, weight=w.detach(), reduction=reduction))
    compare_with_torch(ours, theirs, randn(3, seed=1) * 0.3, np.array([0.5, 2.0, 1.0]))


@pytest.mark.parametrize("name", ["soft_margin_loss", "multilabel_soft_margin_loss", "SoftMarginLoss"])
def test_soft_margin_losses_have_torchs_slope_at_zero_input(name):
    """A zero input (a zero-initialised last layer) is where log(1 + exp(z)) has slope 1/2."""
    target = np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]])
    ours, theirs = _pair(lambda m: lambda x: (
        m.nn.SoftMarginLoss()(x, m.tensor(target)) if name == "SoftMarginLoss" else
        getattr(m.nn.functional, name)(x, m.tensor(target if name == "soft_margin_loss" else (target > 0) * 1.0))))
    compare_with_torch(ours, theirs, np.array([[0.0, 0.0, 0.5], [0.0, -0.5, 0.0]]))
    compare_with_torch(ours, theirs, np.zeros((2, 3)), dtype="float32")


def test_multilabel_margin_loss_has_no_slope_where_a_margin_is_exactly_zero():
    ours, theirs = _pair(lambda m: lambda x: m.nn.functional.multilabel_margin_loss(
        x, m.tensor([[1, -1, 0, 0], [0, 3, -1, 2]]), reduction="none"))
    compare_with_torch(ours, theirs, np.array([[0.0, 1.0, -1.0, 0.5], [0.25, 0.5, 0.5, -0.5]]))


@pytest.mark.parametrize("fn", ["nll_loss", "cross_entropy"])
@pytest.mark.parametrize("weight_dtype", ["float16", "float64"])
def test_a_class_weight_of_another_dtype_is_refused_as_torch(fn, weight_dtype):
    """torch's class-index kernels take a weight tensor of the input's dtype only; gt cast it
    (module_db's NLLLoss error input). Probability targets promote in both."""
    torch = torch_or_skip()
    x, t = randn(3, 4).astype(np.float32), np.array([0, 1, 3])
    for lib in (torch, gt):
        f = getattr(lib.nn.functional, fn)
        weight = lib.ones(4, dtype=getattr(lib, weight_dtype))
        with pytest.raises(RuntimeError, match="expected scalar type"):
            f(lib.tensor(x), lib.tensor(t), weight=weight)
    probs = np.full((3, 4), 0.25)
    ours = gt.nn.functional.cross_entropy(gt.tensor(x), gt.tensor(probs), weight=gt.ones(4))
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(probs), weight=torch.ones(4))
    assert ours.dtype == gt.float64 and abs(ours.item() - theirs.item()) < 1e-6


@pytest.mark.parametrize("extra", [{}, {"weight": "float64"}, {"pos_weight": "float64"}])
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("input_dtype, target_dtype", [("float64", "float32"), ("float32", "float64")])
def test_bce_with_logits_answers_in_the_target_dtype_as_torch(input_dtype, target_dtype, reduction, extra):
    """torch writes the loss into ``1 - target``, so a float64 input with a float32 target gives a
    float32 loss (gt gave float64; found by tests/test_fuzz_torch_parity.py); the input's gradient
    stays in its own dtype."""
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    x, y, w = rng.standard_normal((2, 3)), rng.random((2, 3)), rng.random(3) + 0.5
    out = []
    for m in (gt, torch):
        xt = m.tensor(x.astype(input_dtype)).requires_grad_()
        kwargs = {k: m.tensor(w.astype(v)) for k, v in extra.items()}
        loss = m.nn.functional.binary_cross_entropy_with_logits(xt, m.tensor(y.astype(target_dtype)),
                                                                 reduction=reduction, **kwargs)
        loss.sum().backward()
        out.append((str(loss.dtype).split(".")[-1], loss.detach().numpy(), str(xt.grad.dtype).split(".")[-1],
                    xt.grad.numpy()))
    (gd, gv, ggd, gg), (td, tv, tgd, tg) = out
    assert (gd, ggd) == (td, tgd)
    np.testing.assert_allclose(gv, tv, rtol=1e-6)
    np.testing.assert_allclose(gg, tg, rtol=1e-6, atol=1e-7)
