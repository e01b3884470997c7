"""``nn.Bilinear``, ``nn.EmbeddingBag``, ``nn.LPPool1d/2d/3d``, ``nn.CTCLoss`` and their ``F.`` forms
beside torch: values, dtypes and every gradient in float32 and float64, each mode and option, torch
state dicts loaded into the modules, the edge cases (empty bags, empty targets, impossible
alignments) and the error messages."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import check_grad, compare_with_torch, positive, randn, torch_or_skip, torch_twin

DTYPES = ["float32", "float64"]


def _tf():
    return torch_or_skip().nn.functional


# ---- Bilinear ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lead, bias", [((4,), True), ((2, 3), False), ((0,), True), ((), True)],
                         ids=["2-D", "3-D", "empty", "1-D"])
def test_functional_bilinear_is_torchs(lead, bias, dtype):
    arrays = [randn(*lead, 3, seed=1), randn(*lead, 4, seed=2), randn(2, 3, 4, seed=3)] + ([randn(2, seed=4)] * bias)
    compare_with_torch(lambda *a: F.bilinear(*a), lambda *a: _tf().bilinear(*a), *arrays, dtype=dtype)


def test_bilinear_module_loads_torchs_state_dict_and_gives_its_outputs_and_grads():
    ref, module = torch_twin("Bilinear", dict(in1_features=3, in2_features=4, out_features=2))
    module.load_state_dict(ref.state_dict())
    compare_with_torch(lambda a, b: module(a, b), lambda a, b: ref(a, b), randn(5, 3, seed=5), randn(5, 4, seed=6))
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(getattr(module, name).grad.numpy(), p.grad.numpy(), rtol=1e-10, err_msg=name)
    check_grad(lambda a, b, w: F.bilinear(a, b, w), randn(2, 3, seed=7), randn(2, 2, seed=8), randn(2, 3, 2, seed=9))


def test_bilinear_init_is_torchs_uniform_bound():
    m = nn.Bilinear(16, 3, 50)
    for p in (m.weight, m.bias):
        values = p.numpy()
        assert p.dtype == gt.float32 and np.abs(values).max() <= 0.25 and np.abs(values).max() > 0.2
    assert nn.Bilinear(2, 3, 4, bias=False).bias is None


def test_bilinear_errors_name_the_shapes():
    w = gt.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"must end in in1_features=3 and in2_features=4"):
        F.bilinear(gt.zeros(5, 3), gt.zeros(5, 5), w)
    with pytest.raises(ValueError, match="same leading shape"):
        F.bilinear(gt.zeros(5, 3), gt.zeros(4, 4), w)
    with pytest.raises(ValueError, match=r"weight must be 3-D"):
        F.bilinear(gt.zeros(5, 3), gt.zeros(5, 4), gt.zeros(3, 4))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        F.bilinear(gt.zeros(5, 3), gt.zeros(5, 4), w, gt.zeros(3))
    with pytest.raises(ValueError, match="in1_features must be > 0"):
        nn.Bilinear(0, 2, 2)


# ---- EmbeddingBag -----------------------------------------------------------------------------
IDS = np.array([1, 2, 4, 5, 4, 3, 2, 0, 5])
OFFSETS = np.array([0, 3, 3, 7])                        # the second bag is empty


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx, dtype", [(None, "float32"), (2, "float64"), (-1, "float64")])
def test_embedding_bag_with_offsets_is_torchs(mode, padding_idx, dtype):
    compare_with_torch(lambda w, i, o: F.embedding_bag(i, w, o, mode=mode, padding_idx=padding_idx),
                       lambda w, i, o: _tf().embedding_bag(i, w, o, mode=mode, padding_idx=padding_idx),
                       randn(6, 3, seed=10), IDS, OFFSETS, dtype=dtype)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_of_2d_input_and_last_offset_is_torchs(mode):
    ids = IDS[:8].reshape(2, 4)
    compare_with_torch(lambda w, i: F.embedding_bag(i, w, mode=mode, padding_idx=4),
                       lambda w, i: _tf().embedding_bag(i, w, mode=mode, padding_idx=4),
                       randn(6, 3, seed=11), ids, dtype="float32")
    # the last offset is the end of the input (CSR): three bags, the second empty
    compare_with_torch(lambda w, i, o: F.embedding_bag(i, w, o, mode=mode, include_last_offset=True),
                       lambda w, i, o: _tf().embedding_bag(i, w, o, mode=mode, include_last_offset=True),
                       randn(6, 3, seed=12), IDS, np.array([0, 2, 2, 9]))


@pytest.mark.parametrize("two_d, padding_idx, dtype", [(False, None, "float32"), (True, None, "float64"),
                                                       (False, 4, "float64")], ids=["offsets", "2-D", "padding"])
def test_embedding_bag_per_sample_weights_are_torchs(two_d, padding_idx, dtype):
    ids, weights = (IDS[:8].reshape(2, 4), randn(2, 4, seed=14)) if two_d else (IDS, randn(9, seed=14))
    offsets = None if two_d else OFFSETS
    compare_with_torch(
        lambda w, i, s: F.embedding_bag(i, w, None if two_d else gt.tensor(offsets), mode="sum",
                                        per_sample_weights=s, padding_idx=padding_idx),
        lambda w, i, s: _tf().embedding_bag(i, w, None if two_d else __import__("torch").tensor(offsets), mode="sum",
                                            per_sample_weights=s, padding_idx=padding_idx),
        randn(6, 3, seed=13), ids, weights, dtype=dtype)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_of_no_ids_gives_zero_bags(mode):
    compare_with_torch(lambda w, i, o: F.embedding_bag(i, w, o, mode=mode),
                       lambda w, i, o: _tf().embedding_bag(i, w, o, mode=mode),
                       randn(4, 2, seed=15), np.zeros(0, dtype=np.int64), np.array([0, 0, 0]))


def test_embedding_bag_module_loads_torchs_state_dict_and_from_pretrained():
    torch = torch_or_skip()
    ref, module = torch_twin("EmbeddingBag", dict(num_embeddings=6, embedding_dim=3, mode="max", padding_idx=-2))
    assert module.padding_idx == 4 and not module.weight.numpy()[4].any()
    module.load_state_dict(ref.state_dict())
    compare_with_torch(lambda i, o: module(i, o), lambda i, o: ref(i, o), IDS, OFFSETS)
    ref(torch.tensor(IDS), torch.tensor(OFFSETS)).sum().backward()
    module(gt.tensor(IDS), gt.tensor(OFFSETS)).sum().backward()
    np.testing.assert_allclose(module.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-12)
    table = randn(5, 2, seed=16)
    frozen = nn.EmbeddingBag.from_pretrained(gt.tensor(table), mode="sum")
    theirs = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(table), mode="sum")
    assert not frozen.weight.requires_grad and repr(frozen).split("  #")[0] == repr(theirs)
    assert nn.EmbeddingBag.from_pretrained(gt.tensor(table), freeze=False).weight.requires_grad
    np.testing.assert_allclose(frozen(gt.tensor([[0, 4], [3, 3]])).numpy(),
                               theirs(torch.tensor([[0, 4], [3, 3]])).numpy())


def test_embedding_bag_errors_are_clear():
    w = gt.zeros(6, 3)
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got None"):
        F.embedding_bag(gt.tensor(IDS), w)
    with pytest.raises(ValueError, match="if input is 2D, then offsets has to be None"):
        F.embedding_bag(gt.tensor([[1, 2]]), w, gt.tensor([0]))
    with pytest.raises(ValueError, match=r"offsets\[0\] has to be 0"):
        F.embedding_bag(gt.tensor(IDS), w, gt.tensor([1, 3]))
    with pytest.raises(ValueError, match="non-decreasing and at most the input length 9"):
        F.embedding_bag(gt.tensor(IDS), w, gt.tensor([0, 4, 2]))
    with pytest.raises(ValueError, match="the last offset must be the input length 9, got 8"):
        F.embedding_bag(gt.tensor(IDS), w, gt.tensor([0, 2, 8]), include_last_offset=True)
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        F.embedding_bag(gt.tensor(IDS), w, gt.tensor([0]), per_sample_weights=gt.ones(9))
    with pytest.raises(ValueError, match=r"per_sample_weights \(\(3,\)\) .* same shape as the input \(\(9,\)\)"):
        F.embedding_bag(gt.tensor(IDS), w, gt.tensor([0]), mode="sum", per_sample_weights=gt.ones(3))
    with pytest.raises(TypeError, match="per_sample_weights must have the weight's dtype"):
        F.embedding_bag(gt.tensor(IDS), w, gt.tensor([0]), mode="sum", per_sample_weights=gt.ones(9, dtype=gt.float64))
    with pytest.raises(ValueError, match="mode has to be one of sum, mean or max, got 'min'"):
        F.embedding_bag(gt.tensor(IDS), w, gt.tensor([0]), mode="min")
    with pytest.raises(NotImplementedError, match="scale_grad_by_freq"):
        nn.EmbeddingBag(6, 3, scale_grad_by_freq=True)
    with pytest.raises(IndexError, match="index 6 is out of range"):
        F.embedding_bag(gt.tensor([6]), w, gt.tensor([0]))
    with pytest.raises(ValueError, match="input has to be 1D or 2D Tensor, but got Tensor of dimension 3"):
        F.embedding_bag(gt.zeros(1, 1, 1, dtype=gt.int64), w)
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings=6"):
        nn.EmbeddingBag(6, 3, padding_idx=6)


# ---- LPPool -----------------------------------------------------------------------------------
LP_CASES = [(1, (2, 3, 7), 3, 2, False, 2), (1, (3, 8), 2, None, True, 1.5), (2, (2, 2, 5, 6), (2, 3), None, False, 3),
            (2, (1, 5, 5), 3, 2, True, float("inf")), (3, (1, 2, 4, 4, 5), 2, (1, 2, 2), False, 2.5),
            (3, (1, 3, 3, 3), 2, 1, True, float("-inf"))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd, shape, kernel, stride, ceil_mode, norm_type", LP_CASES)
def test_lp_pool_is_torchs(nd, shape, kernel, stride, ceil_mode, norm_type, dtype):
    x = positive(*shape, seed=nd)                       # positive: x ** 1.5 is real, and no zero window sum
    compare_with_torch(lambda a: getattr(F, f"lp_pool{nd}d")(a, norm_type, kernel, stride, ceil_mode),
                       lambda a: getattr(_tf(), f"lp_pool{nd}d")(a, norm_type, kernel, stride, ceil_mode),
                       x, dtype=dtype)


def test_lp_pool_of_signed_input_is_torchs():
    x = randn(2, 3, 8, seed=20)                          # even p: signs do not matter; p=1: sums below 0 -> 0
    for p in (2, 1):
        compare_with_torch(lambda a: F.lp_pool1d(a, p, 2), lambda a: _tf().lp_pool1d(a, p, 2), x)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_modules_are_torchs(nd):
    torch = torch_or_skip()
    ours, theirs = getattr(nn, f"LPPool{nd}d")(2, 2, stride=1), getattr(torch.nn, f"LPPool{nd}d")(2, 2, stride=1)
    assert repr(ours) == repr(theirs)
    x = positive(1, 2, *(3,) * nd, seed=21)
    compare_with_torch(lambda a: ours(a), lambda a: theirs(a), x)


def test_lp_pool_refuses_a_zero_norm_type():
    with pytest.raises(ValueError, match="norm_type must be a non-zero number"):
        F.lp_pool2d(gt.ones(1, 4, 4), 0, 2)


# ---- CTCLoss ----------------------------------------------------------------------------------
LOGITS = randn(6, 3, 5, seed=30)                          # (T, N, C)
TARGETS = np.array([[1, 2, 2], [3, 1, 0], [4, 4, 4]])      # repeats need a blank between them
IN_LENS, TGT_LENS = np.array([6, 5, 3]), np.array([3, 2, 0])


def _ctc(F_, lib, logits, targets, in_lens, tgt_lens, **kw):
    return F_.ctc_loss(logits.log_softmax(2), targets, lib.tensor(in_lens), lib.tensor(tgt_lens), **kw)


@pytest.mark.parametrize("concatenated, reduction, dtype", [
    (False, "none", "float32"), (False, "none", "float64"), (True, "none", "float64"), (False, "mean", "float64"),
    (True, "mean", "float32"), (True, "sum", "float64")])
def test_ctc_loss_is_torchs(reduction, concatenated, dtype):
    torch = torch_or_skip()
    targets = np.concatenate([t[:n] for t, n in zip(TARGETS, TGT_LENS)]) if concatenated else TARGETS
    compare_with_torch(lambda x, t: _ctc(F, gt, x, t, IN_LENS, TGT_LENS, reduction=reduction),
                       lambda x, t: _ctc(_tf(), torch, x, t, IN_LENS, TGT_LENS, reduction=reduction),
                       LOGITS, targets, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_impossible_alignments_give_inf_or_zero_with_zero_infinity(dtype):
    reductions = ("none", "mean") if dtype == "float32" else ("sum",)
    torch = torch_or_skip()
    in_lens, tgt_lens = np.array([6, 2, 3]), np.array([3, 2, 3])   # 2 frames for 2 labels: fine; [4, 4, 4] in 3: not
    compare_with_torch(lambda x, t: _ctc(F, gt, x, t, in_lens, tgt_lens, reduction="none"),
                       lambda x, t: _ctc(_tf(), torch, x, t, in_lens, tgt_lens, reduction="none"),
                       LOGITS, TARGETS, dtype=dtype, grad=False)
    for reduction in reductions:
        compare_with_torch(lambda x, t: nn.CTCLoss(reduction=reduction, zero_infinity=True)(
                               x.log_softmax(2), t, list(in_lens), tuple(tgt_lens)),
                           lambda x, t: torch.nn.CTCLoss(reduction=reduction, zero_infinity=True)(
                               x.log_softmax(2), t, torch.tensor(in_lens), torch.tensor(tgt_lens)),
                           LOGITS, TARGETS, dtype=dtype)
    x = gt.zeros(2, 1, 3, requires_grad=True)
    loss = F.ctc_loss(x, gt.tensor([[1, 1]]), [2], [2], reduction="none")
    assert loss.shape == (1,) and np.isinf(loss.numpy()).all()
    loss.sum().backward()                               # torch's gradient here is NaN; gt's is 0 (documented)
    assert not x.grad.numpy().any()


def test_ctc_loss_unbatched_other_blank_and_no_frames_are_torchs():
    torch = torch_or_skip()
    compare_with_torch(lambda x, t: F.ctc_loss(x.log_softmax(1), t, 6, 3, blank=4),
                       lambda x, t: _tf().ctc_loss(x.log_softmax(1), t, torch.tensor(6), torch.tensor(3), blank=4),
                       LOGITS[:, 0], np.array([1, 1, 3]))
    # no frames and no labels: the empty alignment, loss 0; no frames and a label: impossible
    compare_with_torch(lambda x, t: _ctc(F, gt, x, t, [0, 0], [0, 1], reduction="none"),
                       lambda x, t: _ctc(_tf(), torch, x, t, [0, 0], [0, 1], reduction="none"),
                       LOGITS[:, :2], TARGETS[:2], grad=False)


def test_ctc_loss_gradient_is_the_true_derivative_of_log_probs():
    # torch's kernel adds exp(log_probs) to this gradient; through log_softmax both agree (tested above)
    check_grad(lambda lp, t: F.ctc_loss(lp, t, [3], [2], reduction="sum"), randn(3, 1, 3, seed=31), np.array([[1, 2]]))


def test_ctc_loss_errors_are_clear():
    lp, t = gt.zeros(6, 3, 5), gt.tensor(TARGETS)
    with pytest.raises(ValueError, match=r"blank must be in label range \[0, 5\), got 5"):
        F.ctc_loss(lp, t, IN_LENS, TGT_LENS, blank=5)
    with pytest.raises(ValueError, match=r"input_lengths must be at most T=6, got \[7, 5, 3\]"):
        F.ctc_loss(lp, t, [7, 5, 3], TGT_LENS)
    with pytest.raises(ValueError, match="input_lengths must have 3 entries"):
        F.ctc_loss(lp, t, [6, 5], TGT_LENS)
    with pytest.raises(ValueError, match=r"S >= max\(target_lengths\)=4"):
        F.ctc_loss(lp, t, IN_LENS, [4, 1, 1])
    with pytest.raises(ValueError, match=r"sum\(target_lengths\)=5 labels, got 4"):
        F.ctc_loss(lp, gt.tensor([1, 2, 3, 4]), IN_LENS, TGT_LENS)
    with pytest.raises(IndexError, match="target label 7 is out of range for log_probs with C=5"):
        F.ctc_loss(lp, gt.tensor([[7, 1, 1]] * 3), IN_LENS, TGT_LENS)
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum', got 'avg'"):
        nn.CTCLoss(reduction="avg")
    with pytest.raises(ValueError, match="target_lengths must be >= 0"):
        F.ctc_loss(lp, t, IN_LENS, [3, -1, 0])
