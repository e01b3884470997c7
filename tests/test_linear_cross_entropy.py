"""F.linear_cross_entropy, nn.LinearCrossEntropyLoss and nn.LinearCrossEntropyOptions beside
torch 2.13's: the reference path and the chunked one (values, gradients of the input, weight and
bias), their options, the module's state dict, and that a chunk never holds the whole logits.
Also the unbatched form of cross_entropy and nll_loss that the reference path relies on."""

import warnings

import numpy as np
import pytest

import gt
import gt.nn.functional as F
from gt.backend import B

torch = pytest.importorskip("torch")
TF = torch.nn.functional
if not hasattr(TF, "linear_cross_entropy"):
    pytest.skip("this torch has no linear_cross_entropy (torch >= 2.13)", allow_module_level=True)

N, K, C = 23, 6, 11


def _inputs(seed=0, ignored=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, K)).astype(np.float32)
    w = (rng.standard_normal((C, K)) * 0.5).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    t = rng.integers(0, C, N)
    if ignored:
        t[[2, 7]] = -100
    return x, w, b, t, rng.random(C).astype(np.float32) + 0.1


def _both(options_kw, reduction, with_bias, with_weight, seed=0):
    """The loss and the gradients of x, w (and b) from gt and from torch."""
    x, w, b, t, cw = _inputs(seed)
    up = np.random.default_rng(9).standard_normal(N).astype(np.float32) if reduction == "none" else np.float32(1.3)
    out = []
    for M, mk in ((gt, gt.tensor), (torch, torch.tensor)):
        xs, ws, bs = (mk(a, requires_grad=True) for a in (x, w, b))
        opts = None if options_kw is None else M.nn.LinearCrossEntropyOptions(**options_kw)
        fn = F.linear_cross_entropy if M is gt else TF.linear_cross_entropy
        loss = fn(xs, ws, mk(t), linear_bias=bs if with_bias else None, weight=mk(cw) if with_weight else None,
                  reduction=reduction, options=opts)
        (loss * mk(up)).sum().backward()
        grads = [xs.grad, ws.grad] + ([bs.grad] if with_bias else [])
        out.append([np.asarray(loss.detach().numpy())] + [g.numpy() for g in grads])
    return out


@pytest.mark.parametrize("options_kw", [None, {}, {"batch_chunk_size": 4, "chunking_method": None},
                                        {"chunking_method": "aspect_ratio:3"}])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("with_bias, with_weight", [(False, False), (True, True)])
def test_values_and_gradients_are_torchs(options_kw, reduction, with_bias, with_weight):
    got, want = _both(options_kw, reduction, with_bias, with_weight)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_the_chunked_path_never_holds_the_whole_logits(monkeypatch):
    # every product of the chunked op has at most batch_chunk_size rows of logits (or their
    # gradients); the reference path makes the (N, C) logits
    shapes, real = [], B.matmul

    def spy(a, b, *args, **kwargs):
        shapes.append(tuple(a.shape[:-1]) + (b.shape[-1],))
        return real(a, b, *args, **kwargs)

    object.__getattribute__(B, "__dict__").pop("matmul", None)
    monkeypatch.setattr(type(object.__getattribute__(B, "_engine")), "matmul", lambda self, a, b, *r, **k: spy(a, b, *r, **k))
    x, w, b, t, _ = _inputs()
    xs, ws = gt.tensor(x, requires_grad=True), gt.tensor(w, requires_grad=True)
    F.linear_cross_entropy(xs, ws, gt.tensor(t), options=gt.nn.LinearCrossEntropyOptions(batch_chunk_size=5)).backward()
    logits = [s for s in shapes if s[-1] == C]
    assert logits and max(s[0] for s in logits) <= 5
    object.__getattribute__(B, "__dict__").pop("matmul", None)


def test_under_no_grad_the_chunked_forward_makes_only_the_logits(monkeypatch):
    calls, real = [], type(object.__getattribute__(B, "_engine")).matmul
    object.__getattribute__(B, "__dict__").pop("matmul", None)
    monkeypatch.setattr(type(object.__getattribute__(B, "_engine")), "matmul",
                        lambda self, a, b, *r, **k: calls.append(1) or real(self, a, b, *r, **k))
    x, w, _, t, _ = _inputs()
    xs, ws = gt.tensor(x, requires_grad=True), gt.tensor(w, requires_grad=True)
    opts = gt.nn.LinearCrossEntropyOptions(batch_chunk_size=5)
    with gt.no_grad():
        F.linear_cross_entropy(xs, ws, gt.tensor(t), options=opts)
    assert len(calls) == -(-N // 5)            # one product a chunk: no gradient made
    object.__getattribute__(B, "__dict__").pop("matmul", None)


def test_every_target_ignored_gives_nan_and_zero_gradients():
    x, w, _, _, _ = _inputs()
    t = np.full(N, -100)
    for opts in (None, gt.nn.LinearCrossEntropyOptions()):
        xs = gt.tensor(x, requires_grad=True)
        loss = F.linear_cross_entropy(xs, gt.tensor(w), gt.tensor(t), options=opts)
        loss.backward()
        assert np.isnan(loss.item()) and not xs.grad.numpy().any()


def test_unbatched_input_k_dimensional_loss_and_probability_targets_as_torch():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((4, K)).astype(np.float32), rng.standard_normal((C, 2, K)).astype(np.float32)
    t, bias = rng.integers(0, C, (4, 2)), rng.standard_normal((C, 2)).astype(np.float32)
    got = F.linear_cross_entropy(gt.tensor(x), gt.tensor(w), gt.tensor(t), linear_bias=gt.tensor(bias), reduction="none")
    want = TF.linear_cross_entropy(torch.tensor(x), torch.tensor(w), torch.tensor(t), linear_bias=torch.tensor(bias),
                                   reduction="none")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)
    w2 = w[:, 0]
    for opts in (None, {}):
        g = F.linear_cross_entropy(gt.tensor(x[0]), gt.tensor(w2), gt.tensor(np.int64(3)), reduction="none",
                                   options=None if opts is None else gt.nn.LinearCrossEntropyOptions())
        assert g.shape == () and g.item() == pytest.approx(
            TF.linear_cross_entropy(torch.tensor(x[0]), torch.tensor(w2), torch.tensor(3), reduction="none").item(), rel=1e-5)
    probs = rng.random((4, C)).astype(np.float32)
    probs /= probs.sum(1, keepdims=True)
    got = F.linear_cross_entropy(gt.tensor(x), gt.tensor(w2), gt.tensor(probs), label_smoothing=0.1)
    want = TF.linear_cross_entropy(torch.tensor(x), torch.tensor(w2), torch.tensor(probs), label_smoothing=0.1)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


def test_options_the_chunked_path_cannot_take_fall_back_with_torchs_warning():
    x, w, _, t, _ = _inputs(ignored=False)
    with pytest.warns(UserWarning, match="options.*ignored"):
        got = F.linear_cross_entropy(gt.tensor(x), gt.tensor(w), gt.tensor(t), label_smoothing=0.2,
                                     options=gt.nn.LinearCrossEntropyOptions())
    want = TF.linear_cross_entropy(torch.tensor(x), torch.tensor(w), torch.tensor(t), label_smoothing=0.2)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


@pytest.mark.parametrize("kw", [{}, {"chunking_method": "aspect_ratio"}, {"chunking_method": "aspect_ratio:4"},
                                {"chunking_method": None, "batch_chunk_size": 5}, {"batch_chunk_size": 9},
                                {"chunking_method": None}])
@pytest.mark.parametrize("shape", [(100, 16, 50), (7, 3, 1000), (3136, 128, 256), (1, 5, 3), (64, 256, 32000)])
def test_chunk_sizes_are_torchs(kw, shape):
    got = gt.nn.LinearCrossEntropyOptions(**kw).chunk_rows(*shape)
    want = torch.nn.LinearCrossEntropyOptions(**kw)._adjust(*shape, torch.float32, torch.device("cpu"))
    assert got == want.batch_chunk_size


@pytest.mark.parametrize("kw, message", [({"acc_policy": "fast"}, "acc_policy"),
                                         ({"chunking_method": "rows"}, "chunking_method"),
                                         ({"chunking_method": "aspect_ratio:0"}, "chunking_method"),
                                         ({"batch_chunk_size": 0}, "batch_chunk_size"),
                                         ({"batch_chunk_size": 2.5}, "batch_chunk_size"),
                                         ({"acc_dtype": gt.int64}, "acc_dtype")])
def test_bad_options_are_refused_when_made(kw, message):
    with pytest.raises(ValueError, match=message):
        gt.nn.LinearCrossEntropyOptions(**kw)
    with pytest.raises(ValueError, match="give different chunk sizes"):
        gt.nn.LinearCrossEntropyOptions(batch_chunk_size=3, chunking_method="aspect_ratio").chunk_rows(100, 16, 50)


def test_bad_inputs_name_what_was_expected():
    x, w, _, t, _ = _inputs()
    with pytest.raises(RuntimeError, match="in_features"):
        F.linear_cross_entropy(gt.tensor(x), gt.tensor(w[:, :3]), gt.tensor(t))
    with pytest.raises(RuntimeError, match="linear_bias shape"):
        F.linear_cross_entropy(gt.tensor(x), gt.tensor(w), gt.tensor(t), linear_bias=gt.zeros(C + 1))
    bad = t.copy()
    bad[0] = C
    for opts in (None, gt.nn.LinearCrossEntropyOptions()):
        with pytest.raises(IndexError, match=f"target {C} is out of range"):
            F.linear_cross_entropy(gt.tensor(x), gt.tensor(w), gt.tensor(bad), options=opts).item()
    with pytest.raises(RuntimeError, match="weight shape"):
        F.linear_cross_entropy(gt.tensor(x), gt.tensor(w), gt.tensor(t), weight=gt.ones(3),
                               options=gt.nn.LinearCrossEntropyOptions())


def test_a_second_backward_with_retain_graph_adds_the_same_gradients():
    x, w, _, t, _ = _inputs()
    xs = gt.tensor(x, requires_grad=True)
    loss = F.linear_cross_entropy(xs, gt.tensor(w), gt.tensor(t), options=gt.nn.LinearCrossEntropyOptions())
    loss.backward(retain_graph=True)
    once = xs.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(xs.grad.numpy(), 2 * once, rtol=1e-6)


@pytest.mark.parametrize("options", [None, "chunked"])
def test_the_module_has_torchs_state_dict_and_loss(options):
    kw = dict(out_features=(2,) if options is None else (), bias=True, ignore_index=0, reduction="sum")
    g = gt.nn.LinearCrossEntropyLoss(K, C, **kw, options=None if options is None else gt.nn.LinearCrossEntropyOptions())
    t = torch.nn.LinearCrossEntropyLoss(K, C, **kw, options=None if options is None else torch.nn.LinearCrossEntropyOptions())
    assert {k: tuple(v.shape) for k, v in g.state_dict().items()} == {k: tuple(v.shape) for k, v in t.state_dict().items()}
    t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in g.state_dict().items()})
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((5, K)).astype(np.float32), rng.integers(0, C, (5, 2) if options is None else 5)
    assert g(gt.tensor(x), gt.tensor(y)).item() == pytest.approx(t(torch.tensor(x), torch.tensor(y)).item(), rel=1e-5)
    assert repr(g).splitlines()[1].strip() == repr(t).splitlines()[1].strip()
    with pytest.raises(RuntimeError, match="weight shape"):
        gt.nn.LinearCrossEntropyLoss(K, C, weight=gt.ones(C + 1))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_unbatched_cross_entropy_and_nll_loss_are_torchs(reduction):
    rng = np.random.default_rng(5)
    logits, probs = rng.standard_normal(C).astype(np.float32), rng.random(C).astype(np.float32)
    probs /= probs.sum()
    cw = rng.random(C).astype(np.float32)
    for target in (np.int64(4), probs):
        a, b = gt.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = F.cross_entropy(a, gt.tensor(target), weight=gt.tensor(cw), reduction=reduction, label_smoothing=0.1)
        want = TF.cross_entropy(b, torch.tensor(target), weight=torch.tensor(cw), reduction=reduction,
                                label_smoothing=0.1)
        got.backward()
        want.backward()
        assert got.shape == tuple(want.shape) == ()
        assert got.item() == pytest.approx(want.item(), rel=1e-5)
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-5, atol=1e-7)
    got = F.nll_loss(gt.tensor(logits), gt.tensor(np.int64(2)), reduction=reduction)
    assert got.shape == () and got.item() == pytest.approx(-logits[2])
