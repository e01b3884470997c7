"""gt.sort / argsort / topk / cumsum / multinomial and gt.nn.sampling: what the op table
(op_cases.py) cannot express. Positions against torch's where there are no ties and against the
documented rule where there are (stable: first position first), result types, dtypes, errors,
multinomial frequencies against the probabilities (chi-square), seeded draws, sharded blocks
that stay local; each sampling filter against a plain numpy reference."""

import numpy as np
import pytest

import gt
from gt.nn import sampling
from gt.sharding.collectives import count_collectives
from gt.sharding.mesh import use_mesh
from gt.sharding.placement import Shard
from helpers import distinct, randn


def _chi2_pvalue(counts, probs):
    """Pearson's chi-square test of observed ``counts`` against ``probs`` (scipy.special's chi-square
    survival function: a fraction of scipy.stats' import time)."""
    special = pytest.importorskip("scipy.special")
    counts, probs = np.asarray(counts, float), np.asarray(probs, float)
    expected = probs / probs.sum() * counts.sum()
    return float(special.chdtrc(len(counts) - 1, ((counts - expected) ** 2 / expected).sum()))


# ---- sort, argsort, topk ---------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_and_argsort_positions_match_torch_without_ties(dim, descending):
    torch = pytest.importorskip("torch")
    x = distinct(3, 4, 5, seed=1).astype(np.float32)
    values, indices = gt.tensor(x).sort(dim, descending=descending)
    want = torch.sort(torch.tensor(x), dim, descending=descending)
    np.testing.assert_array_equal(indices.numpy(), want.indices.numpy())
    np.testing.assert_array_equal(values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(gt.argsort(gt.tensor(x), dim=dim, descending=descending).numpy(),
                                  want.indices.numpy())


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_topk_matches_torch_without_ties(largest, k):
    torch = pytest.importorskip("torch")
    x = distinct(4, 5, seed=2).astype(np.float32)
    got = gt.topk(gt.tensor(x), k, dim=1, largest=largest)
    want = torch.topk(torch.tensor(x), k, dim=1, largest=largest)
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())


def test_ties_keep_the_order_of_their_positions_like_torchs_stable_sort():
    torch = pytest.importorskip("torch")
    x = np.array([[2.0, 1.0, 2.0, 3.0, 1.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
    for descending in (False, True):
        want = torch.sort(torch.tensor(x), dim=-1, descending=descending, stable=True).indices.numpy()
        for stable in (False, True):      # gt's sort is stable either way
            got = gt.tensor(x).sort(-1, descending=descending, stable=stable).indices.numpy()
            np.testing.assert_array_equal(got, want)
    # topk: among equal values the first positions, in order
    np.testing.assert_array_equal(gt.tensor(x).topk(3).indices.numpy(), [[3, 0, 2], [0, 1, 2]])
    np.testing.assert_array_equal(gt.tensor(x).topk(2, largest=False).indices.numpy(), [[1, 4], [0, 1]])
    ints = gt.tensor([3, 1, 3, -9223372036854775807 - 1])      # int64's smallest: no negation overflow
    np.testing.assert_array_equal(ints.sort(descending=True).indices.numpy(), [0, 2, 1, 3])


def test_nan_sorts_as_the_largest_value_like_torch():
    torch = pytest.importorskip("torch")
    x = np.array([1.0, np.nan, -2.0, 5.0], np.float32)
    for descending in (False, True):
        want = torch.sort(torch.tensor(x), descending=descending)
        got = gt.tensor(x).sort(descending=descending)
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    assert gt.tensor(x).topk(1).indices.tolist() == [1]


def _topk_data(kind, shape, seed):
    rng = np.random.default_rng(seed)
    if kind == "distinct":
        return rng.permutation(np.prod(shape)).reshape(shape).astype(np.float32) / 7
    if kind == "ties":                        # few values: many ties at the k-th one
        return rng.integers(0, 6, shape).astype(np.float32)
    if kind == "nan":                         # NaNs (the largest) and signed zeros, ties everywhere
        x = rng.integers(-1, 2, shape).astype(np.float64)
        x[rng.random(shape) < 0.2] = np.nan
        x[x == 0] *= rng.choice([-1.0, 1.0], size=int((x == 0).sum()))
        return x
    if kind == "ints":
        return rng.integers(-3, 3, shape)
    return rng.random(shape) < 0.3            # bools


# long rows and small k take the selection path (the k-th value found first, not a full sort;
# from 512 positions and k <= n/4 on numpy, 1024 and n/16 on torch): its positions must be the
# full stable sort's first k, ties and NaNs included, and torch's wherever there are no ties
@pytest.mark.parametrize("kind", ["distinct", "ties", "nan", "ints", "bools"])
@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_topk_of_long_rows_is_the_first_k_of_the_stable_sort(kind, largest, dim):
    shape = [3, 4, 3]
    shape[dim] = 2048
    x = gt.tensor(_topk_data(kind, shape, seed=len(kind) + dim))
    order = x.argsort(dim, descending=largest)
    for k in (1, 7, 100, 128, 700):
        got = x.topk(k, dim, largest)
        want = order.narrow(dim, 0, k)
        np.testing.assert_array_equal(got.indices.numpy(), want.numpy())
        np.testing.assert_array_equal(got.values.numpy(), np.take_along_axis(x.numpy(), want.numpy(), dim))
    if kind == "distinct":
        torch = pytest.importorskip("torch")
        want = torch.topk(torch.from_numpy(x.numpy()), 100, dim, largest)
        np.testing.assert_array_equal(x.topk(100, dim, largest).indices.numpy(), want.indices.numpy())


def test_topk_of_long_rows_every_tie_at_the_kth_value():
    x = np.zeros((2, 4000), np.float32)
    x[0, [5, 1500]] = 1.0                      # two ahead, then 3998 zeros tied for 48 places
    x[1] = np.nan                              # all NaN: the first positions
    got = gt.tensor(x).topk(50)
    np.testing.assert_array_equal(got.indices.numpy()[0], [5, 1500] + [i for i in range(49) if i != 5])
    np.testing.assert_array_equal(got.indices.numpy()[1], np.arange(50))
    smallest = gt.tensor(x).topk(3, largest=False).indices.numpy()
    np.testing.assert_array_equal(smallest, [[0, 1, 2], [0, 1, 2]])


def test_topk_of_long_rows_differentiable_and_sharded():
    x = gt.tensor(randn(4, 1200, seed=5), requires_grad=True)
    values, indices = x.topk(20)
    (values * 2).sum().backward()
    want = np.zeros((4, 1200), np.float32)
    np.put_along_axis(want, indices.numpy(), 2.0, 1)
    np.testing.assert_array_equal(x.grad.numpy(), want)
    with use_mesh(2):
        xs = gt.tensor(x.detach().numpy()).shard(0)
        with count_collectives() as seen:
            sharded = xs.topk(20)
        assert sum(seen.values()) == 0, seen   # each device its own rows
        assert sharded.indices.placement == Shard(0)
        np.testing.assert_array_equal(sharded.indices.numpy(), indices.numpy())


def test_sort_and_topk_results_are_named_tuples_of_values_and_int64_indices():
    x = gt.tensor([[3.0, 1.0, 2.0]])
    for result, name in ((x.sort(), "sort"), (gt.topk(x, 2), "topk")):
        values, indices = result
        assert isinstance(result, tuple) and len(result) == 2 and type(result).__name__ == name
        assert result[0] is result.values and result[1] is result.indices
        assert values is result.values and indices.dtype == gt.int64 and values.dtype == gt.float32
        assert repr(result).startswith(f"{name}(values=tensor(")
    assert x.argsort().dtype == gt.int64
    assert gt.topk(x, 0).values.shape == (1, 0)
    scalar = gt.tensor(7.0).sort()
    assert scalar.values.item() == 7.0 and scalar.indices.item() == 0 and scalar.indices.shape == ()


def test_sort_and_topk_gradients_go_to_the_chosen_positions():
    x = gt.tensor([[1.0, 4.0, 2.0, 4.0]], requires_grad=True)
    values, _ = x.topk(2)                                   # 4.0 at positions 1 and 3
    (values * gt.tensor([[10.0, 100.0]])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 10.0, 0.0, 100.0]])
    x.grad = None
    (x.sort(descending=True).values * gt.arange(4).float()).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[3.0, 0.0, 2.0, 1.0]])


def test_sort_topk_errors_name_the_value():
    x = gt.randn(2, 3)
    with pytest.raises(ValueError, match=r"topk: k must be an int in \[0, 3\].*got 4"):
        x.topk(4)
    with pytest.raises(ValueError, match="got -1"):
        x.topk(-1)
    with pytest.raises(IndexError, match="axis 2 is out of range"):
        x.sort(2)
    with pytest.raises(TypeError, match="descending must be True or False"):
        x.argsort(descending="yes")


# ---- cumsum --------------------------------------------------------------------------------------
def test_cumsum_dtypes_and_values_like_torch():
    torch = pytest.importorskip("torch")
    for arr in (np.array([[1, 2], [3, -4]], np.int32), np.array([True, False, True]),
                np.array([[5, 6, 7]], np.int64), randn(2, 3, seed=3).astype(np.float32)):
        for dim in range(arr.ndim):
            got, want = gt.tensor(arr).cumsum(dim), torch.cumsum(torch.tensor(arr), dim)
            assert got.dtype.name == str(want.dtype).replace("torch.", "")
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    assert gt.tensor([1, 2]).cumsum(0, dtype=gt.float64).dtype == gt.float64
    assert gt.tensor(2.5).cumsum(0).shape == ()
    with pytest.raises(TypeError, match="cumsum: dim is required"):
        gt.tensor([1.0]).cumsum()


# ---- multinomial ---------------------------------------------------------------------------
def test_multinomial_frequencies_follow_the_weights():
    weights = np.array([1.0, 0.0, 2.0, 3.0, 4.0], np.float32)        # rows need not sum to 1
    gt.manual_seed(11)
    with_replacement = gt.multinomial(gt.tensor(weights), 4000, replacement=True).numpy()
    counts = np.bincount(with_replacement, minlength=5)
    assert counts[1] == 0
    assert _chi2_pvalue(counts[[0, 2, 3, 4]], weights[[0, 2, 3, 4]]) > 1e-3
    # one draw per row without replacement: the same distribution
    rows = gt.tensor(np.tile(weights, (4000, 1)))
    first = gt.multinomial(rows, 1).numpy()[:, 0]
    counts = np.bincount(first, minlength=5)
    assert counts[1] == 0
    assert _chi2_pvalue(counts[[0, 2, 3, 4]], weights[[0, 2, 3, 4]]) > 1e-3


def test_multinomial_without_replacement_draws_distinct_categories():
    gt.manual_seed(3)
    probs = gt.tensor(np.random.default_rng(0).uniform(0.1, 1.0, (50, 6)).astype(np.float32))
    drawn = probs.multinomial(6).numpy()
    assert drawn.shape == (50, 6) and drawn.dtype == np.int64
    assert all(sorted(row) == list(range(6)) for row in drawn)
    # the second draw follows what is left: with weights (8, 1, 1), category 0 is drawn first most often
    two = gt.multinomial(gt.tensor(np.tile([8.0, 1.0, 1.0], (2000, 1))), 2).numpy()
    assert all(a != b for a, b in two)
    assert _chi2_pvalue(np.bincount(two[:, 0], minlength=3), [8.0, 1.0, 1.0]) > 1e-3


def test_multinomial_is_reproducible_from_the_seed():
    probs = gt.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    gt.manual_seed(5)
    a = probs.multinomial(2).numpy(), probs.multinomial(30, replacement=True).numpy()
    gt.manual_seed(5)
    b = probs.multinomial(2).numpy(), probs.multinomial(30, replacement=True).numpy()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    gt.manual_seed(6)
    assert not np.array_equal(probs.multinomial(30, replacement=True).numpy(), a[1])


@pytest.mark.parametrize("probs, kwargs, message", [
    ([0.5, -0.1], {}, "must be non-negative, got -0.1"),
    ([0.5, float("inf")], {}, "must be finite, got inf"),
    ([0.5, float("nan")], {}, "must be finite, got nan"),
    ([[1.0, 1.0], [0.0, 0.0]], {}, "a row of the probabilities sums to 0"),
    ([0.5, 0.5], {"num_samples": 3}, "cannot draw num_samples=3 without replacement from 2 categories"),
    ([0.5, 0.0, 0.5], {"num_samples": 3}, "a row has 2 non-zero probabilities, fewer than num_samples=3"),
    ([0.5, 0.5], {"num_samples": 0}, "num_samples must be a positive int, got 0"),
    ([[[0.5]]], {}, r"1-D \(V,\) or 2-D \(B, V\).*got shape \(1, 1, 1\)"),
])
def test_multinomial_errors_name_the_value(probs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gt.multinomial(gt.tensor(probs), kwargs.get("num_samples", 1))
    with pytest.raises(TypeError, match="must be a float tensor, got gt.int64"):
        gt.multinomial(gt.tensor([1, 2]), 1)


@pytest.mark.first_pass
def test_both_engines_draw_the_same_samples_from_one_seed():
    pytest.importorskip("torch")
    from gt.backend.numpy_engine import NumpyEngine
    from gt.backend.torch_engine import TorchEngine

    probs = np.random.default_rng(1).uniform(0.0, 1.0, (4, 7))
    host, other = NumpyEngine(), TorchEngine()
    for replacement, n in ((False, 3), (True, 9)):
        host.manual_seed(2)
        other.manual_seed(2)
        want = host.multinomial(probs.astype(np.float32), n, replacement)
        got = other.multinomial(other.asarray(probs.astype(np.float32)), n, replacement)
        np.testing.assert_array_equal(other.to_numpy(got), want)


# ---- sharded: a block along another axis stays on its device --------------------------------------
@pytest.mark.own_mesh
def test_sharded_rows_sort_sum_and_sample_locally_and_match_one_device():
    x = randn(6, 5, seed=4).astype(np.float32)
    gt.manual_seed(9)
    ref_sort, ref_top = gt.tensor(x).sort(-1), gt.tensor(x).topk(2)
    ref_cum, ref_draw = gt.tensor(x).cumsum(1), gt.tensor(np.exp(x)).multinomial(2).numpy()
    with use_mesh(4):
        xs = gt.tensor(x).shard(0)
        probs = gt.tensor(np.exp(x)).shard(0)
        gt.manual_seed(9)
        with count_collectives() as c:
            s, t, cum, draw = xs.sort(-1), xs.topk(2), xs.cumsum(1), probs.multinomial(2)
        assert sum(c.values()) == 0, c
        for out in (s.values, s.indices, t.values, t.indices, cum, draw):
            assert out.placement == Shard(0), out.placement
        np.testing.assert_array_equal(s.indices.numpy(), ref_sort.indices.numpy())
        np.testing.assert_array_equal(t.values.numpy(), ref_top.values.numpy())
        np.testing.assert_allclose(cum.numpy(), ref_cum.numpy(), rtol=1e-6)
        np.testing.assert_array_equal(draw.numpy(), ref_draw)      # blocks drawn in order: one device's draws
        # along the sharded axis: gathered, still right
        np.testing.assert_array_equal(xs.sort(0).values.numpy(), np.sort(x, axis=0))
        np.testing.assert_allclose(xs.cumsum(0).numpy(), np.cumsum(x, axis=0), rtol=1e-5)


# ---- gt.nn.sampling -------------------------------------------------------------------------------
def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _logits_with_ties(seed=0, shape=(4, 9)):
    x = np.round(np.random.default_rng(seed).standard_normal(shape), 1).astype(np.float32)
    x[:, 3] = x[:, 5]          # a tie in every row
    return x


def test_greedy_is_the_first_argmax_and_temperature_divides():
    x = _logits_with_ties(1)
    x[0, 2] = x[0, 7] = x[0].max() + 1.0
    np.testing.assert_array_equal(sampling.greedy(gt.tensor(x)).numpy(), x.argmax(-1))
    assert sampling.greedy(gt.tensor(x[1])).shape == ()
    np.testing.assert_allclose(sampling.apply_temperature(gt.tensor(x), 0.7).numpy(), x / np.float32(0.7),
                               rtol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 4, 9, 20])
def test_top_k_filter_keeps_the_k_largest_and_their_ties(k):
    x = _logits_with_ties(2)
    kth = np.sort(x, -1)[:, ::-1][:, min(k, 9) - 1:min(k, 9)]
    want = np.where(x >= kth, x, -np.inf)
    np.testing.assert_array_equal(sampling.top_k_filter(gt.tensor(x), k).numpy(), want)


def _top_p_reference(x, p):
    """The nucleus by hand: rows sorted by probability, the shortest prefix reaching p, then every
    token at least as probable as the prefix's last."""
    probs = gt.tensor(x).softmax(-1).numpy().astype(np.float64)
    out = np.full_like(x, -np.inf)
    for r in range(x.shape[0]):
        order = np.argsort(-probs[r], kind="stable")
        cum = np.cumsum(probs[r][order])
        last = order[min(int(np.searchsorted(cum, p)), len(cum) - 1)]
        keep = probs[r] >= probs[r][last]
        out[r][keep] = x[r][keep]
    return out, probs


@pytest.mark.parametrize("p", [0.05, 0.3, 0.55, 0.8, 0.97])
def test_top_p_filter_matches_a_numpy_reference(p):
    x = _logits_with_ties(3)
    want, probs = _top_p_reference(x, p)
    cum = np.cumsum(-np.sort(-probs, -1), -1)
    assert np.abs(cum - p).min() > 1e-5                      # the inputs keep clear of float32 rounding at p
    np.testing.assert_array_equal(sampling.top_p_filter(gt.tensor(x), p).numpy(), want)


@pytest.mark.parametrize("scale, top_k", [(0.3, None), (8.0, None), (1.0, 40)])
def test_top_p_filter_of_a_large_vocabulary_matches_the_reference(scale, top_k):
    # the nucleus found among the 64 most probable tokens (a peaked distribution, or after a
    # top-k filter) or, when longer, over the whole sorted row: the same tokens either way
    x = np.round(np.random.default_rng(6).standard_normal((3, 3000)) * scale, 2).astype(np.float32)
    if top_k is not None:
        x = sampling.top_k_filter(gt.tensor(x), top_k).numpy()
    for p in (0.3, 0.9):
        want, probs = _top_p_reference(x, p)
        cum = np.cumsum(-np.sort(-probs, -1), -1)
        assert np.abs(cum - p).min() > 1e-6 or top_k is not None   # clear of float32 rounding at p
        np.testing.assert_array_equal(sampling.top_p_filter(gt.tensor(x), p).numpy(), want)


def test_top_p_edge_cases():
    x = _logits_with_ties(4)
    np.testing.assert_array_equal(sampling.top_p_filter(gt.tensor(x), 1.0).numpy(), x)        # p = 1: all
    masked = x.copy()
    masked[:, 0] = -np.inf
    np.testing.assert_array_equal(sampling.top_p_filter(gt.tensor(masked), 1).numpy(), masked)
    tiny = sampling.top_p_filter(gt.tensor(distinct(3, 7, seed=5).astype(np.float32)), 1e-9).numpy()
    assert (np.isfinite(tiny).sum(-1) == 1).all()                                          # only the argmax
    np.testing.assert_array_equal(np.isfinite(tiny).argmax(-1), distinct(3, 7, seed=5).argmax(-1))
    # ties at the threshold are kept whole: probabilities (0.5, 0.2, 0.2, 0.1), p = 0.6 needs one 0.2
    logits = np.log(np.array([[0.5, 0.2, 0.1, 0.2]], np.float32))
    got = sampling.top_p_filter(gt.tensor(logits), 0.6).numpy()
    np.testing.assert_array_equal(np.isfinite(got), [[True, True, False, True]])
    # and a tie at the top with tiny p keeps both
    got = sampling.top_p_filter(gt.tensor([[1.0, 3.0, 3.0, 0.0]]), 1e-6).numpy()
    np.testing.assert_array_equal(np.isfinite(got), [[False, True, True, False]])


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_once():
    x = np.array([[2.0, -1.0, 0.0, 3.0, -4.0], [1.0, 1.0, -2.0, 5.0, 0.5]], np.float32)
    prev = np.array([[0, 1, 1, 2], [3, 3, 3, 3]])
    want = x.copy()
    for r in range(2):
        for v in set(prev[r]):                                 # each seen token once
            want[r, v] = x[r, v] / 1.5 if x[r, v] > 0 else x[r, v] * 1.5
    np.testing.assert_allclose(sampling.apply_repetition_penalty(gt.tensor(x), gt.tensor(prev), 1.5).numpy(),
                               want, rtol=1e-6)
    np.testing.assert_allclose(sampling.apply_repetition_penalty(gt.tensor(x[1]), [3, 0], 2.0).numpy(),
                               [0.5, 1.0, -2.0, 2.5, 0.5], rtol=1e-6)
    with pytest.raises(ValueError, match=r"token id 5, outside the vocabulary \[0, 5\)"):
        sampling.apply_repetition_penalty(gt.tensor(x), [[5], [0]], 1.5)
    with pytest.raises(ValueError, match=r"previous_tokens must be int token ids of shape \(2, T\)"):
        sampling.apply_repetition_penalty(gt.tensor(x), [0, 1], 1.5)
    with pytest.raises(ValueError, match="repetition_penalty must be a finite number > 0.*got 0"):
        sampling.apply_repetition_penalty(gt.tensor(x), prev, 0)


def test_sample_is_seeded_and_its_shortcuts_agree():
    x = gt.tensor(_logits_with_ties(5))
    gt.manual_seed(1)
    a = sampling.sample(x, temperature=0.9, top_k=5, top_p=0.9)
    gt.manual_seed(1)
    b = sampling.sample(x, temperature=0.9, top_k=5, top_p=0.9)
    assert a.dtype == gt.int64 and a.shape == (4,)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    unique = gt.tensor(distinct(4, 9, seed=5))
    np.testing.assert_array_equal(sampling.sample(unique, top_k=1).numpy(), unique.numpy().argmax(-1))
    prev = [[0, 1], [2, 2], [3, 4], [8, 0]]
    penalised = sampling.apply_repetition_penalty(x, prev, 3.0).numpy()
    np.testing.assert_array_equal(sampling.sample(x, repetition_penalty=3.0, previous_tokens=prev, greedy=True).numpy(),
                                  penalised.argmax(-1))
    assert sampling.sample(x[0]).shape == ()


def test_sample_frequencies_follow_the_filtered_softmax():
    logits = np.array([1.0, 0.5, 2.0, -1.0, 1.5, 0.0], np.float32)
    filtered = sampling.top_k_filter(sampling.apply_temperature(gt.tensor(logits), 0.7), 4).numpy()
    probs = _softmax(filtered.astype(np.float64))
    gt.manual_seed(4)
    drawn = sampling.sample(gt.tensor(np.tile(logits, (3000, 1))), temperature=0.7, top_k=4).numpy()
    counts = np.bincount(drawn, minlength=6)
    kept = np.isfinite(filtered)
    assert kept.sum() == 4 and counts[~kept].sum() == 0
    assert _chi2_pvalue(counts[kept], probs[kept]) > 1e-3


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": 0}, "temperature must be a finite number > 0, got 0"),
    ({"temperature": -1.0}, "got -1.0"),
    ({"top_p": 0.0}, r"top_p must be a number in \(0, 1\], got 0.0"),
    ({"top_p": 1.01}, "got 1.01"),
    ({"top_k": 0}, "top_k must be an int >= 1, got 0"),
    ({"repetition_penalty": 1.2}, "repetition_penalty needs previous_tokens"),
])
def test_sample_errors_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sampling.sample(gt.zeros(2, 3), **kwargs)


@pytest.mark.own_mesh
def test_sampling_a_sharded_batch_matches_one_device():
    x = _logits_with_ties(6, shape=(6, 9))
    gt.manual_seed(2)
    want = sampling.sample(gt.tensor(x), temperature=0.8, top_k=6, top_p=0.9, repetition_penalty=1.3,
                           previous_tokens=[[1]] * 6).numpy()
    with use_mesh(4):
        xs = gt.tensor(x).shard(0)
        gt.manual_seed(2)
        got = sampling.sample(xs, temperature=0.8, top_k=6, top_p=0.9, repetition_penalty=1.3,
                              previous_tokens=[[1]] * 6)
        np.testing.assert_array_equal(got.numpy(), want)
