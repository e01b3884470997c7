"""nn.init.orthogonal_ / trunc_normal_ / sparse_ / eye_ / dirac_, nn.utils.parameters_to_vector /
vector_to_parameters, and the channel-wise and alpha dropouts: results beside torch's where they
are deterministic; statistics, scaling, shapes and reproducibility where they are random."""

import math

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import torch_or_skip


# ---- init --------------------------------------------------------------------------------------
@pytest.mark.parametrize("rows, sparsity", [(10, 0.3), (1000, 0.1), (7, 0.0), (5, 1.0)])
def test_sparse_zeroes_as_many_entries_of_each_column_as_torchs(rows, sparsity):
    torch = torch_or_skip()
    ours = nn.init.sparse_(gt.empty(rows, 40, dtype=gt.float64), sparsity, std=0.5)
    theirs = torch.nn.init.sparse_(torch.empty(rows, 40, dtype=torch.float64), sparsity, std=0.5)
    zeros = (ours.numpy() == 0).sum(0)
    np.testing.assert_array_equal(zeros, (theirs.numpy() == 0).sum(0))      # ceil(sparsity * rows) each
    assert zeros.tolist() == [math.ceil(sparsity * rows)] * 40 and ours.dtype == gt.float64
    kept = ours.numpy()[ours.numpy() != 0]
    if kept.size > 1000:
        assert abs(kept.std() - 0.5) < 0.02 and abs(kept.mean()) < 0.02
    rows_zeroed = (ours.numpy() == 0).any(1).sum()
    assert sparsity in (0.0, 1.0) or rows_zeroed > math.ceil(sparsity * rows)   # not the same rows in each column
    first = nn.init.sparse_(gt.empty(6, 3), 0.5, generator=gt.Generator().manual_seed(3)).numpy()
    np.testing.assert_array_equal(first, nn.init.sparse_(gt.empty(6, 3), 0.5,
                                                         generator=gt.Generator().manual_seed(3)).numpy())
    with pytest.raises(ValueError, match="only tensors with 2 dimensions"):
        nn.init.sparse_(gt.empty(2, 3, 4), 0.5)
    with pytest.raises(ValueError, match="sparsity must be a fraction"):
        nn.init.sparse_(gt.empty(2, 3), 1.5)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 2, 3), (6, 6)])
@pytest.mark.parametrize("dtype", [gt.float32, gt.float64])
def test_orthogonal_is_torchs_qr_of_the_same_draw(shape, dtype):
    torch = torch_or_skip()
    rows, cols = shape[0], int(np.prod(shape[1:]))
    gt.manual_seed(3)
    draw = gt.randn(rows, cols, dtype=dtype).numpy()
    gt.manual_seed(3)
    w = nn.init.orthogonal_(gt.empty(*shape, dtype=dtype), gain=2.0)
    assert w.shape == shape and w.dtype == dtype
    a = torch.tensor(draw if rows >= cols else draw.T)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))                       # torch.nn.init.orthogonal_'s sign fix
    expected = (q if rows >= cols else q.T).reshape(shape).numpy() * 2.0
    tol = 1e-5 if dtype == gt.float32 else 1e-12
    np.testing.assert_allclose(w.numpy(), expected, rtol=tol, atol=tol)
    m = w.numpy().reshape(rows, cols) / 2.0
    gram = m.T @ m if rows >= cols else m @ m.T                 # Q^T Q = I (tall), Q Q^T = I (wide)
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=tol * 10)


def test_orthogonal_is_reproducible_and_in_place():
    p = nn.Parameter(gt.empty(4, 4))
    gt.manual_seed(0)
    out = nn.init.orthogonal_(p)
    first = p.numpy().copy()
    gt.manual_seed(0)
    nn.init.orthogonal_(p)
    assert out is p and p.requires_grad and np.array_equal(first, p.numpy())
    assert nn.init.orthogonal_(gt.empty(0, 3)).shape == (0, 3)


def test_trunc_normal_statistics_and_bounds():
    gt.manual_seed(1)
    w = nn.init.trunc_normal_(gt.empty(200, 100))
    v = w.numpy()
    assert v.dtype == np.float32 and v.min() >= -2 and v.max() <= 2
    # N(0, 1) truncated to [-2, 2]: mean 0, std 0.8796
    assert abs(v.mean()) < 0.02 and abs(v.std() - 0.8796) < 0.02
    gt.manual_seed(1)
    again = nn.init.trunc_normal_(gt.empty(200, 100, dtype=gt.float64))
    assert again.dtype == gt.float64
    narrow = nn.init.trunc_normal_(gt.empty(1000), mean=1.0, std=0.5, a=0.9, b=1.0).numpy()
    assert narrow.min() >= 0.9 and narrow.max() <= 1.0 and 0.94 < narrow.mean() < 0.96


def test_trunc_normal_is_reproducible():
    gt.manual_seed(5)
    a = nn.init.trunc_normal_(gt.empty(7), std=0.02, a=-0.04, b=0.04).numpy()
    gt.manual_seed(5)
    b = nn.init.trunc_normal_(gt.empty(7), std=0.02, a=-0.04, b=0.04).numpy()
    assert np.array_equal(a, b) and np.abs(a).max() <= 0.04


@pytest.mark.parametrize("shape, groups", [((4, 2, 3), 1), ((4, 2, 3), 2), ((6, 3, 3, 3), 3), ((2, 4, 1, 2, 3), 1),
                                           ((3, 5, 4), 1), ((6, 1, 2, 2), 2)])
def test_dirac_is_torchs(shape, groups):
    torch = torch_or_skip()
    ours = nn.init.dirac_(gt.ones(*shape), groups=groups)
    theirs = torch.nn.init.dirac_(torch.ones(*shape), groups=groups)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (4, 1)])
def test_eye_is_torchs(shape):
    torch = torch_or_skip()
    ours = nn.init.eye_(gt.full(shape, 7.0, dtype=gt.float64))
    assert ours.dtype == gt.float64
    np.testing.assert_array_equal(ours.numpy(), torch.nn.init.eye_(torch.empty(*shape)).numpy())


@pytest.mark.parametrize("call, error, match", [
    (lambda: nn.init.orthogonal_(gt.empty(3)), ValueError, r"2 or more dimensions.*\(3,\)"),
    (lambda: nn.init.orthogonal_(gt.zeros(2, 2, dtype=gt.int64)), TypeError, "floating point"),
    (lambda: nn.init.orthogonal_([[1.0]]), TypeError, "expected a gt.Tensor"),
    (lambda: nn.init.eye_(gt.empty(2, 2, 2)), ValueError, r"2 dimensions.*\(2, 2, 2\)"),
    (lambda: nn.init.dirac_(gt.empty(2, 2)), ValueError, "3, 4, or 5 dimensions"),
    (lambda: nn.init.dirac_(gt.empty(3, 2, 3), groups=2), ValueError, r"dim 0 \(3\) must be divisible by groups"),
    (lambda: nn.init.trunc_normal_(gt.empty(3), a=1.0, b=-1.0), ValueError, "expected a < b"),
    (lambda: nn.init.trunc_normal_(gt.empty(3), std=0.0), ValueError, "std must be positive"),
])
def test_init_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---- parameters_to_vector / vector_to_parameters -----------------------------------------------
def test_parameter_vectors_are_torchs():
    torch = torch_or_skip()
    ref = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model.load_state_dict({k: gt.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
    ours = nn.utils.parameters_to_vector(model.parameters())
    theirs = torch.nn.utils.parameters_to_vector(ref.parameters())
    np.testing.assert_array_equal(ours.numpy(), theirs.detach().numpy())
    # on the tape: a loss of the vector reaches every parameter, as in torch
    (ours * gt.arange(ours.shape[0]).to(ours.dtype)).sum().backward()
    (theirs * torch.arange(theirs.shape[0]).to(theirs.dtype)).sum().backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    new = np.linspace(-1, 1, ours.shape[0]).astype(np.float32)
    nn.utils.vector_to_parameters(gt.tensor(new), model.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), ref.parameters())
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.detach().numpy())
        assert p.requires_grad


@pytest.mark.parametrize("call, error, match", [
    (lambda m: nn.utils.vector_to_parameters([1.0] * 11, m.parameters()), TypeError, "expected vec to be a gt.Tensor"),
    (lambda m: nn.utils.vector_to_parameters(gt.zeros(10), m.parameters()), ValueError, r"11 elements.*\(10,\)"),
    (lambda m: nn.utils.vector_to_parameters(gt.zeros(11, 1), m.parameters()), ValueError, "must be 1-D"),
    (lambda m: nn.utils.parameters_to_vector([]), ValueError, "got no parameters"),
    (lambda m: nn.utils.parameters_to_vector([1.0]), TypeError, "iterable of gt.Tensor"),
])
def test_parameter_vector_errors(call, error, match):
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))                 # 8 + 3 = 11 values
    with pytest.raises(error, match=match):
        call(model)


# ---- dropout -----------------------------------------------------------------------------------
CHANNEL_DROPOUTS = [  # (F function, module, batched input shape, unbatched input shape or None)
    (F.dropout1d, nn.Dropout1d, (40, 50, 3), (50, 3)),
    (F.dropout2d, nn.Dropout2d, (40, 50, 2, 2), (40, 50, 3)),      # 3-D: (N, C, L), as torch
    (F.dropout3d, nn.Dropout3d, (40, 50, 1, 2, 2), (50, 1, 2, 2)),
]


@pytest.mark.parametrize("fn, module, shape, unbatched", CHANNEL_DROPOUTS, ids=["1d", "2d", "3d"])
def test_channel_dropout_zeroes_whole_channels(fn, module, shape, unbatched):
    for s in (shape, unbatched):
        lead = 2 if len(s) == len(shape) or fn is F.dropout2d else 1
        gt.manual_seed(0)
        x = gt.ones(*s, requires_grad=True)
        out = fn(x, 0.3)
        v = out.numpy().reshape(int(np.prod(s[:lead])), -1)                  # one row per channel
        assert out.shape == s and out.dtype == gt.float32
        assert np.all(v == v[:, :1])                                         # a channel is kept or dropped whole
        assert set(np.unique(v)) <= {0.0, np.float32(1 / 0.7)}
        if lead == 2:
            assert abs((v[:, 0] == 0).mean() - 0.3) < 0.03                   # 2000 channels
        out.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), out.numpy())          # d out / d x = the mask
        gt.manual_seed(0)
        np.testing.assert_array_equal(fn(gt.ones(*s), 0.3).numpy(), out.numpy())   # reproducible
    x = gt.randn(*shape, dtype=gt.float64)
    assert fn(x, 0.5, training=False) is x and fn(x, 0.0) is x
    assert not fn(x, 1.0).numpy().any() and fn(x, 0.5).dtype == gt.float64
    layer = module(0.25)
    assert layer(x).shape == shape and layer.eval()(x) is x


def test_channel_dropout_matches_torch_in_distribution_and_repr():
    torch = torch_or_skip()
    for ours, theirs, shape in ((nn.Dropout1d(0.2), torch.nn.Dropout1d(0.2), (100, 40, 2)),
                                (nn.Dropout2d(), torch.nn.Dropout2d(), (100, 40, 1, 2)),
                                (nn.Dropout3d(0.7), torch.nn.Dropout3d(0.7), (100, 40, 1, 1, 2))):
        assert repr(ours) == repr(theirs)
        a, b = ours(gt.ones(*shape)).numpy(), theirs(torch.ones(*shape)).numpy()
        assert set(np.unique(a)) == set(np.unique(b))                       # same scale 1 / (1 - p)
        assert abs(a.mean() - b.mean()) < 0.1                                 # both near 1


def test_alpha_dropout_keeps_mean_and_variance_as_torchs():
    torch = torch_or_skip()
    p, alpha = 0.2, 1.7580993408473766
    a = 1 / math.sqrt((alpha ** 2 * p + 1) * (1 - p))
    gt.manual_seed(0)
    x = gt.randn(40000, dtype=gt.float64, requires_grad=True)
    out = F.alpha_dropout(x, p, training=True)
    o, xv = out.numpy(), x.numpy()
    dropped = np.isclose(o, -alpha * a * (1 - p))
    assert abs(dropped.mean() - p) < 0.01
    np.testing.assert_allclose(o[~dropped], a * xv[~dropped] + alpha * a * p, rtol=1e-12)
    assert abs(o.mean()) < 0.02 and abs(o.std() - 1) < 0.02                 # SELU's fixed point kept
    t = torch.nn.functional.alpha_dropout(torch.tensor(xv), p, training=True).numpy()
    assert np.isclose(t, -alpha * a * (1 - p)).mean() == pytest.approx(p, abs=0.01)   # torch: the same values
    np.testing.assert_allclose(t[~np.isclose(t, -alpha * a * (1 - p))],
                               a * xv[~np.isclose(t, -alpha * a * (1 - p))] + alpha * a * p, rtol=1e-12)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(dropped, 0.0, a))
    assert F.alpha_dropout(x, p) is x                                       # training=False by default, as torch
    layer = nn.AlphaDropout(0.1)
    assert repr(layer) == repr(torch.nn.AlphaDropout(0.1)) and layer.eval()(x) is x
    gt.manual_seed(0)
    assert np.array_equal(F.alpha_dropout(gt.randn(40000, dtype=gt.float64), p, True).numpy(), o)
    assert not F.alpha_dropout(x, 1.0, True).numpy().any()


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.dropout1d(gt.ones(2, 3, 4, 5), 0.5), ValueError, r"2-D \(unbatched\) or 3-D.*4-D"),
    (lambda: F.dropout2d(gt.ones(2, 3), 0.5), ValueError, r"3-D \(unbatched\) or 4-D"),
    (lambda: F.dropout3d(gt.ones(2, 3, 4), 0.5), ValueError, r"4-D \(unbatched\) or 5-D"),
    (lambda: F.dropout2d(gt.ones(2, 3, 4, 4), 1.5), ValueError, "between 0 and 1, but got 1.5"),
    (lambda: F.alpha_dropout(gt.ones(3), -0.1, True), ValueError, "between 0 and 1, but got -0.1"),
    (lambda: nn.Dropout3d(2), ValueError, "Dropout3d: dropout probability"),
])
def test_dropout_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
