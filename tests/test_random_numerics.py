"""Random sampling (``gt.bernoulli``, ``gt.normal``, ``gt.poisson``, ``gt.binomial``,
``gt.randint_like``, ``Tensor.bernoulli``, ``random_``, ``log_normal_``, ``geometric_``,
``cauchy_``), window functions and numerics (``trapezoid``, ``cumulative_trapezoid``, ``cov``,
``corrcoef``, ``vander``, ``gradient``, ``diff``), beside torch 2.13.

Draws cannot equal torch's (gt has its own generator), so the samplers are checked for what
torch promises: dtype, shape and ``requires_grad`` beside torch's on the same call, support,
repetition under ``gt.manual_seed``, torch's errors, and the distribution, by moments and
goodness-of-fit tests (scipy.stats) on large samples with a fixed seed: deterministic, and
with bounds many standard errors wide or p-values above 1e-4, so a correct sampler passes and a
wrong mean, variance or shape of distribution fails.
"""

import math

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import check_grad, compare_with_torch, torch_or_skip

stats = pytest.importorskip("scipy.stats")

N = 20_000        # draws per distribution test


def _np(t):
    return np.asarray(t.numpy())


def _both(program):
    """``program(lib)`` with gt and with torch: (gt result, torch result)."""
    torch = torch_or_skip()
    return program(gt), program(torch)


def _same_meta(g, t):
    assert g.shape == tuple(t.shape)
    assert g.dtype.name == str(t.dtype).replace("torch.", "")
    assert g.requires_grad == t.requires_grad


def _chi2_ok(samples, pmf, support):
    """Pearson's chi-square test of integer ``samples`` against ``pmf`` over ``support`` (the
    tail bins merged so that each expects >= 20); True when the p-value is above 1e-4."""
    counts = np.array([np.sum(samples == k) for k in support], dtype=float)
    expected = pmf(np.asarray(support)) * samples.size
    assert np.sum(counts) >= 0.995 * samples.size, "draws outside the support tested"
    keep = expected >= 20
    obs = np.append(counts[keep], samples.size - counts[keep].sum())
    exp = np.append(expected[keep], samples.size - expected[keep].sum())
    mask = exp > 0
    p = stats.chisquare(obs[mask], exp[mask] * obs[mask].sum() / exp[mask].sum()).pvalue
    return p > 1e-4


# ---- metadata beside torch ------------------------------------------------------------------
META = {
    "bernoulli": lambda L: L.bernoulli(L.full((2, 3), 0.5)),
    "bernoulli_f64_p": lambda L: L.bernoulli(L.zeros(4, dtype=L.float64), p=0.3),
    "bernoulli_grad": lambda L: L.bernoulli(L.full((3,), 0.5, requires_grad=True)),
    "bernoulli_method_int": lambda L: L.zeros(5, dtype=L.int64).bernoulli(0.2),
    "bernoulli_method_grad": lambda L: L.zeros(5, requires_grad=True).bernoulli(0.2),
    "normal_tt": lambda L: L.normal(L.zeros(2, 1), L.ones(3)),
    "normal_tf": lambda L: L.normal(L.zeros(3, dtype=L.float64), 2.0),
    "normal_ft": lambda L: L.normal(1.0, L.ones(2, 2)),
    "normal_mixed_dtypes": lambda L: L.normal(L.zeros(3), L.ones(3, dtype=L.float64)),
    "normal_grad": lambda L: L.normal(L.zeros(3, requires_grad=True), 1.0),
    "normal_std_grad": lambda L: L.normal(0.0, L.ones(3, requires_grad=True)),
    "normal_size": lambda L: L.normal(0.0, 1.0, (2, 3)),
    "normal_size_f64": lambda L: L.normal(2, 3, size=(4,), dtype=L.float64),
    "normal_size_rg": lambda L: L.normal(0.0, 1.0, (2,), requires_grad=True),
    "normal_empty": lambda L: L.normal(0.0, 1.0, (0,)),
    "normal_kw_mean": lambda L: L.normal(mean=L.zeros(3)),
    "poisson": lambda L: L.poisson(L.ones(2, 3)),
    "poisson_f64": lambda L: L.poisson(L.ones(3, dtype=L.float64)),
    "poisson_grad": lambda L: L.poisson(L.ones(3, requires_grad=True)),
    "poisson_empty": lambda L: L.poisson(L.ones(0, 2)),
    "binomial": lambda L: L.binomial(L.full((3, 2), 5.0), L.full((3, 2), 0.5)),
    "binomial_f64": lambda L: L.binomial(L.full((3,), 5.0, dtype=L.float64), L.full((3,), 0.5, dtype=L.float64)),
    "randint_like": lambda L: L.randint_like(L.zeros(3), 5),
    "randint_like_range": lambda L: L.randint_like(L.zeros(2, 2), 2, 5),
    "randint_like_int32": lambda L: L.randint_like(L.zeros(3, dtype=L.int32), 5),
    "randint_like_dtype": lambda L: L.randint_like(L.zeros(3), 5, dtype=L.int64),
    "randint_like_grad_input": lambda L: L.randint_like(L.zeros(3, requires_grad=True), 5),
    "randint_like_rg": lambda L: L.randint_like(L.zeros(3), 5, requires_grad=True),
    "randint_like_high_kw": lambda L: L.randint_like(L.zeros(3), high=4),
    "random_": lambda L: L.empty(3, 2).random_(),
    "random_int": lambda L: L.empty(3, dtype=L.int32).random_(5),
    "log_normal_": lambda L: L.empty(3, dtype=L.float64).log_normal_(),
    "geometric_": lambda L: L.empty(3, dtype=L.int64).geometric_(0.5),
    "cauchy_": lambda L: L.empty(2, 2).cauchy_(),
}


@pytest.mark.parametrize("name", list(META))
def test_dtype_shape_requires_grad_as_torch(name):
    g, t = _both(META[name])
    _same_meta(g, t)


def test_draws_have_zero_gradients_as_torch():
    torch = torch_or_skip()
    for L in (gt, torch):
        mean = L.ones(3, requires_grad=True)
        std = L.ones(3, requires_grad=True)
        rate = L.full((2, 3), 2.0, requires_grad=True)
        p = L.full((3,), 0.5, requires_grad=True)
        (L.normal(mean, std).sum() + L.poisson(rate).sum() + L.bernoulli(p).sum()).backward()
        for leaf in (mean, std, rate, p):
            assert leaf.grad is not None and leaf.grad.shape == tuple(leaf.shape)
            assert float(leaf.grad.abs().sum()) == 0.0
    with gt.no_grad():
        assert not gt.normal(gt.zeros(3, requires_grad=True), 1.0).requires_grad


# ---- repetition under a seed -------------------------------------------------------------------
DRAWS = {
    "bernoulli": lambda: gt.bernoulli(gt.full((50,), 0.4)),
    "bernoulli_p": lambda: gt.zeros(50).bernoulli(0.7),
    "normal_tt": lambda: gt.normal(gt.arange(6.0), gt.ones(6)),
    "normal_size": lambda: gt.normal(1.0, 2.0, (3, 4)),
    "poisson": lambda: gt.poisson(gt.tensor([0.5, 4.0, 30.0, 0.0, 1e3])),
    "binomial": lambda: gt.binomial(gt.tensor([3.0, 50.0, 1000.0]), gt.tensor([0.2, 0.5, 0.9])),
    "randint_like": lambda: gt.randint_like(gt.zeros(20), -3, 9),
    "random_": lambda: gt.empty(20, dtype=gt.int64).random_(),
    "log_normal_": lambda: gt.empty(20).log_normal_(0.0, 0.5),
    "geometric_": lambda: gt.empty(20).geometric_(0.3),
    "cauchy_": lambda: gt.empty(20, dtype=gt.float64).cauchy_(1.0, 2.0),
}


@pytest.mark.parametrize("name", list(DRAWS))
def test_same_seed_same_draws(name):
    gt.manual_seed(123)
    a = _np(DRAWS[name]())
    b = _np(DRAWS[name]())
    gt.manual_seed(123)
    c = _np(DRAWS[name]())
    np.testing.assert_array_equal(a, c)
    if name != "bernoulli_p":       # a second draw differs (all-equal 0/1 draws of 50 are unlikely)
        assert not np.array_equal(a, b)


# ---- supports and distributions ------------------------------------------------------------------
def test_bernoulli_distribution_and_edges():
    gt.manual_seed(0)
    probs = gt.tensor([0.0, 1.0, 0.25, 0.9]).reshape(4, 1).expand(4, N // 4)
    x = _np(gt.bernoulli(probs))
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert x[0].sum() == 0 and x[1].sum() == N // 4
    for row, p in ((2, 0.25), (3, 0.9)):
        se = math.sqrt(p * (1 - p) / (N // 4))
        assert abs(x[row].mean() - p) < 5 * se
    y = _np(gt.zeros(N, dtype=gt.int64).bernoulli(0.3))
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    assert abs(y.mean() - 0.3) < 5 * math.sqrt(0.21 / N)
    assert gt.bernoulli(gt.ones(0)).shape == (0,)
    assert float(gt.bernoulli(gt.tensor(1.0))) == 1.0


def test_bernoulli_tensor_p_of_bernoulli_():
    """gt's ``bernoulli_`` takes a tensor of probabilities too: the draws follow each one."""
    gt.manual_seed(1)
    x = _np(gt.zeros(2, N // 2).bernoulli_(gt.tensor([[0.1], [0.8]])))
    assert abs(x[0].mean() - 0.1) < 0.02 and abs(x[1].mean() - 0.8) < 0.02


@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (-3.0, 0.5), (10.0, 4.0)])
def test_normal_distribution(mean, std):
    gt.manual_seed(2)
    forms = [gt.normal(mean, std, (N,), dtype=gt.float64),
             gt.normal(gt.full((N,), mean, dtype=gt.float64), std),
             gt.normal(mean, gt.full((N,), std, dtype=gt.float64)),
             gt.normal(gt.full((N,), mean, dtype=gt.float64), gt.full((N,), std, dtype=gt.float64))]
    for x in forms:
        assert stats.kstest(_np(x), "norm", args=(mean, std)).pvalue > 1e-4


def test_normal_elementwise_means_and_zero_std():
    gt.manual_seed(3)
    mean = gt.tensor([[-5.0], [0.0], [7.0]]).expand(3, 4000)
    x = _np(gt.normal(mean, gt.tensor([0.1, 1.0, 0.0]).reshape(3, 1)))
    assert np.allclose(x.mean(1), [-5.0, 0.0, 7.0], atol=0.1)
    np.testing.assert_array_equal(x[2], np.full(4000, 7.0, np.float32))     # std 0: the mean itself
    inf = _np(gt.normal(0.0, math.inf, (4,)))
    assert np.all(np.isinf(inf))


@pytest.mark.parametrize("lam", [0.3, 4.0, 9.5, 10.0, 37.0, 2500.0])
def test_poisson_distribution(lam):
    gt.manual_seed(4)
    x = _np(gt.poisson(gt.full((N,), lam, dtype=gt.float64)))
    assert np.all(x == np.floor(x)) and x.min() >= 0
    se = math.sqrt(lam / N)
    assert abs(x.mean() - lam) < 5 * se
    assert abs(x.var() / lam - 1) < 5 * math.sqrt(2 / N) * (1 + 1 / lam)
    support = np.arange(0, int(lam + 12 * math.sqrt(lam) + 10))
    assert _chi2_ok(x, lambda k: stats.poisson.pmf(k, lam), support)


def test_poisson_mixed_rates_and_zero():
    gt.manual_seed(5)
    rates = gt.tensor([0.0, 2.0, 50.0]).reshape(3, 1).expand(3, 10000)
    x = _np(gt.poisson(rates))
    assert np.all(x[0] == 0)
    # an infinite rate gives inf here (torch's result is an undefined integer cast)
    assert _np(gt.poisson(gt.tensor([math.inf, 1.0])))[0] == math.inf
    assert abs(x[1].mean() - 2.0) < 5 * math.sqrt(2.0 / 10000)
    assert abs(x[2].mean() - 50.0) < 5 * math.sqrt(50.0 / 10000)


@pytest.mark.parametrize("n,p", [(1, 0.3), (12, 0.5), (40, 0.1), (60, 0.45), (500, 0.7), (3000, 0.98), (10**6, 0.01)])
def test_binomial_distribution(n, p):
    gt.manual_seed(6)
    x = _np(gt.binomial(gt.full((N,), float(n), dtype=gt.float64), gt.full((N,), p, dtype=gt.float64)))
    assert np.all(x == np.floor(x)) and x.min() >= 0 and x.max() <= n
    mu, var = n * p, n * p * (1 - p)
    assert abs(x.mean() - mu) < 5 * math.sqrt(var / N)
    sd = math.sqrt(var)
    support = np.arange(max(0, int(mu - 12 * sd) - 5), min(n, int(mu + 12 * sd) + 5) + 1)
    assert _chi2_ok(x, lambda k: stats.binom.pmf(k, n, p), support)


def test_binomial_edges_as_torch():
    """Out-of-range inputs give torch's results: count <= 0 gives 0, p clamped into [0, 1], NaN p NaN."""
    gt.manual_seed(7)
    x = _np(gt.binomial(gt.tensor([0.0, 5.0, 5.0, -5.0, 5.0, 5.0, 5.0]),
                        gt.tensor([0.5, 0.0, 1.0, 0.5, 1.5, -0.2, math.nan])))
    np.testing.assert_array_equal(x[:6], [0.0, 0.0, 5.0, 0.0, 5.0, 0.0])
    assert math.isnan(x[6])
    assert gt.binomial(gt.ones(0), gt.ones(0)).shape == (0,)
    # an infinite or NaN count gives NaN (torch's gives inf or NaN for inf, and does not return for NaN)
    assert np.isnan(_np(gt.binomial(gt.tensor([math.inf, math.nan]), gt.tensor([0.5, 0.5])))).all()
    big = _np(gt.binomial(gt.full((200,), 1e12, dtype=gt.float64), gt.full((200,), 0.5, dtype=gt.float64)))
    assert abs(big.mean() - 5e11) < 5 * math.sqrt(2.5e11 / 200)


@pytest.mark.parametrize("low,high", [(0, 2), (-7, 3), (5, 6), (-2**40, 2**40)])
def test_randint_like_support(low, high):
    gt.manual_seed(8)
    x = _np(gt.randint_like(gt.zeros(N, dtype=gt.int64), low, high))
    assert x.min() >= low and x.max() < high
    if high - low <= 10:
        assert set(np.unique(x)) == set(range(low, high))
        if high - low > 1:
            assert _chi2_ok(x, lambda k: np.full(len(k), 1.0 / (high - low)), range(low, high))
    else:
        assert abs(x.mean() - (low + high - 1) / 2) < 5 * (high - low) / math.sqrt(12 * N)


@pytest.mark.parametrize("dtype,top", [("float32", 2**24), ("float64", 2**53), ("int64", 2**63 - 1),
                                       ("int32", 2**31 - 1), ("bool", 1), ("float16", 2**11)])
def test_random_default_ranges(dtype, top):
    gt.manual_seed(9)
    x = gt.empty(20000, dtype=getattr(gt, dtype)).random_()
    assert x.dtype == getattr(gt, dtype)
    a = np.asarray(_np(x), dtype=np.float64 if dtype != "int64" else np.int64)
    assert a.min() >= 0 and a.max() <= top
    assert a.max() > top * 0.99 and a.min() < top * 0.01 + 1     # the whole range is reached
    if dtype == "bool":
        assert set(np.unique(a)) == {0, 1}


def test_random_ranges():
    gt.manual_seed(10)
    x = _np(gt.empty(N).random_(10))
    assert set(np.unique(x)) == set(range(10))
    x = _np(gt.empty(N, dtype=gt.int64).random_(-3, 4))
    assert set(np.unique(x)) == set(range(-3, 4))
    x = _np(gt.empty(N, dtype=gt.int64).random_(**{"from": 2, "to": 5}))
    assert set(np.unique(x)) == {2, 3, 4}
    x = _np(gt.empty(1000, dtype=gt.int32).random_(2**31 - 3, None))
    assert set(np.unique(x)) == {2**31 - 3, 2**31 - 2, 2**31 - 1}
    x = _np(gt.empty(1000, dtype=gt.int64).random_(-2**63, None))   # the whole of int64
    assert x.min() < -2**61 and x.max() > 2**61
    x = _np(gt.empty(1000, dtype=gt.bool).random_(0, 2))
    assert set(np.unique(x)) == {False, True}


def test_log_normal_geometric_cauchy_distributions():
    gt.manual_seed(11)
    x = _np(gt.empty(N, dtype=gt.float64).log_normal_(0.5, 0.75))
    assert x.min() > 0
    assert stats.kstest(np.log(x), "norm", args=(0.5, 0.75)).pvalue > 1e-4
    x = _np(gt.empty(N, dtype=gt.float64).log_normal_())        # torch's defaults: mean 1, std 2
    assert stats.kstest(np.log(x), "norm", args=(1.0, 2.0)).pvalue > 1e-4
    for p in (0.05, 0.5, 0.9):
        g = _np(gt.empty(N, dtype=gt.int64).geometric_(p))
        assert g.min() >= 1
        assert _chi2_ok(g, lambda k: stats.geom.pmf(k, p), np.arange(1, 400))
    c = _np(gt.empty(N, dtype=gt.float64).cauchy_(2.0, 0.5))
    assert stats.kstest(c, "cauchy", args=(2.0, 0.5)).pvalue > 1e-4
    assert _np(gt.empty(10).cauchy_()).dtype == np.float32


def test_random_fills_write_in_place():
    x = gt.zeros(4)
    for fill in (lambda t: t.random_(3), lambda t: t.log_normal_(), lambda t: t.geometric_(0.5),
                 lambda t: t.cauchy_()):
        assert fill(x) is x
    v = gt.zeros(1, 3, 4)
    v[0, 1].random_(1, 2)                 # a view: the base changes
    np.testing.assert_array_equal(_np(v)[0], [[0] * 4, [1] * 4, [0] * 4])


# ---- errors beside torch ----------------------------------------------------------------------------
ERRORS = [
    ("normal negative std", lambda L: L.normal(L.zeros(3), -1.0), RuntimeError, "std >= 0.0"),
    ("normal negative std tensor", lambda L: L.normal(L.zeros(3), L.tensor([1.0, -1.0, 1.0])), RuntimeError,
     "all elements of std >= 0.0"),
    ("normal nan std", lambda L: L.normal(0.0, math.nan, size=(2,)), RuntimeError, "std >= 0.0"),
    ("normal negative std size", lambda L: L.normal(0.0, -1.0, (2,)), RuntimeError, "std -1"),
    ("normal int mean", lambda L: L.normal(L.zeros(3, dtype=L.int64), 1.0), NotImplementedError, "Long"),
    ("normal shapes", lambda L: L.normal(L.zeros(2, 3), L.ones(6)), RuntimeError, "must match the size"),
    ("normal tensor with size", lambda L: L.normal(L.zeros(3), 1.0, (3,)), TypeError, None),
    ("bernoulli p > 1", lambda L: L.bernoulli(L.tensor([1.5])), RuntimeError, None),
    ("bernoulli p < 0", lambda L: L.bernoulli(L.tensor([-0.5])), RuntimeError, None),
    ("bernoulli number p", lambda L: L.bernoulli(L.tensor([0.5]), 1.3), RuntimeError, r"p=1\.3"),
    ("bernoulli int", lambda L: L.bernoulli(L.tensor([1, 0])), NotImplementedError, "Long"),
    ("poisson negative", lambda L: L.poisson(L.tensor([1.0, -1.0])), RuntimeError, "non-negative"),
    ("poisson nan", lambda L: L.poisson(L.tensor([math.nan])), RuntimeError, "non-negative"),
    ("poisson int", lambda L: L.poisson(L.tensor([1])), NotImplementedError, "Long"),
    ("binomial int", lambda L: L.binomial(L.tensor([5]), L.tensor([0.5])), ValueError, "floating-point"),
    ("binomial dtypes", lambda L: L.binomial(L.tensor([5.0]), L.tensor([0.5], dtype=L.float64)), RuntimeError, None),
    ("binomial float prob", lambda L: L.binomial(L.tensor([5.0]), 0.5), TypeError, "prob"),
    ("randint_like empty range", lambda L: L.randint_like(L.zeros(3), 5, 2), RuntimeError,
     "from=5 >= to=2"),
    ("randint_like zero high", lambda L: L.randint_like(L.zeros(3), 0), RuntimeError, "from=0 >= to=0"),
    ("random_ empty range", lambda L: L.empty(5).random_(3, 3), RuntimeError, "from=3 >= to=3"),
    ("random_ from below uint", lambda L: L.empty(5, dtype=L.int32).random_(-2**31 - 1, 3), RuntimeError,
     "from is out of bounds for int"),
    ("random_ to above int32", lambda L: L.empty(5, dtype=L.int32).random_(0, 2**31 + 1), RuntimeError,
     "to - 1 is out of bounds for int"),
    ("random_ bool range", lambda L: L.empty(5, dtype=L.bool).random_(0, 3), RuntimeError,
     "to - 1 is out of bounds for bool"),
    ("random_ float bound", lambda L: L.empty(5, dtype=L.int64).random_(2.5, 7), TypeError, None),
    ("log_normal_ std 0", lambda L: L.empty(3).log_normal_(1, 0), RuntimeError, "std > 0.0, but found std=0"),
    ("log_normal_ int", lambda L: L.empty(3, dtype=L.int64).log_normal_(), NotImplementedError, "Long"),
    ("geometric_ p 0", lambda L: L.empty(3).geometric_(0), RuntimeError, r"p to be in \(0, 1\), but got p=0"),
    ("geometric_ p 1", lambda L: L.empty(3).geometric_(1), RuntimeError, "but got p=1"),
    ("geometric_ bool", lambda L: L.empty(3, dtype=L.bool).geometric_(0.5), NotImplementedError, "Bool"),
    ("cauchy_ sigma", lambda L: L.empty(3).cauchy_(0, -1), RuntimeError, "sigma > 0.0, but found sigma=-1"),
    ("cauchy_ int", lambda L: L.empty(3, dtype=L.int64).cauchy_(), RuntimeError, "floating point"),
    ("hann negative", lambda L: L.hann_window(-1), RuntimeError, "window_length=-1"),
    ("hann int dtype", lambda L: L.hann_window(5, dtype=L.int64), RuntimeError, "floating point"),
    ("kaiser int dtype", lambda L: L.kaiser_window(5, dtype=L.int64), RuntimeError, "floating point"),
    ("trapezoid x points", lambda L: L.trapezoid(L.ones(2, 3), L.tensor([1.0, 2.0])), RuntimeError,
     "one `x` value for each sample point"),
    ("trapezoid x and dx", lambda L: L.trapezoid(L.ones(2, 3), L.ones(2, 3), dx=1), TypeError, None),
    ("trapezoid 0-d", lambda L: L.trapezoid(L.tensor(1.0)), IndexError, None),
    ("cov 3-d", lambda L: L.cov(L.ones(2, 2, 2)), RuntimeError, "two or fewer dimensions"),
    ("cov float fweights", lambda L: L.cov(L.ones(2, 3), fweights=L.tensor([1.0, 2, 3])), RuntimeError,
     "integral dtype"),
    ("cov negative fweights", lambda L: L.cov(L.ones(2, 3), fweights=L.tensor([1, -2, 3])), RuntimeError,
     "fweights cannot be negative"),
    ("cov int aweights", lambda L: L.cov(L.ones(2, 3), aweights=L.tensor([1, 2, 3])), RuntimeError,
     "floating point dtype"),
    ("cov negative aweights", lambda L: L.cov(L.ones(2, 3), aweights=L.tensor([1.0, -2, 3])), RuntimeError,
     "aweights cannot be negative"),
    ("cov aweights numel", lambda L: L.cov(L.ones(2, 3), aweights=L.tensor([1.0, 2])), RuntimeError,
     "2 != 3"),
    ("cov aweights 2-d", lambda L: L.cov(L.ones(2, 3), aweights=L.ones(1, 3)), RuntimeError,
     "one or fewer dimensions"),
    ("cov float correction", lambda L: L.cov(L.ones(2, 3), correction=0.5), TypeError, "correction"),
    ("vander N", lambda L: L.vander(L.tensor([1.0, 2.0]), N=-1), RuntimeError, "N must be non-negative"),
    ("vander 2-d", lambda L: L.vander(L.ones(2, 2)), RuntimeError, "one-dimensional"),
    ("vander 0-d", lambda L: L.vander(L.tensor(2.0)), RuntimeError, "one-dimensional"),
    ("gradient edge size", lambda L: L.gradient(L.tensor([1.0, 2.0]), edge_order=2), RuntimeError,
     "at least edge_order\\+1"),
    ("gradient edge order", lambda L: L.gradient(L.tensor([1.0, 2.0, 3.0]), edge_order=3), RuntimeError,
     "edge_order=1 and edge_order=2"),
    ("gradient spacing len", lambda L: L.gradient(L.ones(3, 4), spacing=[1.0, 2.0, 3.0]), RuntimeError,
     "list of length 3"),
    ("gradient spacing dim", lambda L: L.gradient(L.ones(3, 4), spacing=[1.0, 2.0], dim=1), RuntimeError,
     "same length"),
    ("gradient tensor spacing", lambda L: L.gradient(L.ones(4), spacing=L.ones(4)), TypeError, None),
]


@pytest.mark.first_pass
@pytest.mark.parametrize("name,program,exc,match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_as_torch(name, program, exc, match):
    torch = torch_or_skip()
    with pytest.raises(exc, match=match):
        program(torch)
    with pytest.raises(exc, match=match):
        program(gt)


GENERATED = {
    "bernoulli": lambda g: gt.bernoulli(gt.full((30,), 0.5), generator=g),
    "bernoulli_p": lambda g: gt.zeros(30).bernoulli(0.5, generator=g),
    "normal_tt": lambda g: gt.normal(gt.zeros(5), gt.ones(5), generator=g),
    "normal_size": lambda g: gt.normal(0.0, 1.0, (5,), generator=g),
    "poisson": lambda g: gt.poisson(gt.tensor([1.0, 20.0, 300.0]), generator=g),
    "binomial": lambda g: gt.binomial(gt.tensor([4.0, 400.0]), gt.tensor([0.3, 0.6]), generator=g),
    "randint_like": lambda g: gt.randint_like(gt.zeros(8), 100, generator=g),
    "random_": lambda g: gt.empty(8).random_(generator=g),
    "log_normal_": lambda g: gt.empty(8).log_normal_(generator=g),
    "geometric_": lambda g: gt.empty(8).geometric_(0.2, generator=g),
    "cauchy_": lambda g: gt.empty(8).cauchy_(generator=g),
}


@pytest.mark.parametrize("name", list(GENERATED))
def test_generator_objects(name):
    """A ``gt.Generator`` seeded alike gives the same draws and leaves the default generator alone."""
    draw = GENERATED[name]
    gt.manual_seed(0)
    default_next = _np(gt.rand(4))
    gt.manual_seed(0)
    a = _np(draw(gt.Generator().manual_seed(7)))
    assert np.array_equal(_np(gt.rand(4)), default_next)          # the default generator did not move
    b = _np(draw(gt.Generator().manual_seed(7)))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="generator"):
        draw(object())
# ---- windows ---------------------------------------------------------------------------------------
WINDOWS = [("hann_window", {}), ("hamming_window", {}), ("hamming_window", {"alpha": 0.5, "beta": 0.5}),
           ("blackman_window", {}), ("bartlett_window", {}), ("kaiser_window", {}),
           ("kaiser_window", {"beta": 3.0}), ("kaiser_window", {"beta": 0.0})]


@pytest.mark.parametrize("name,kwargs", WINDOWS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_windows_equal_torch(name, kwargs, dtype):
    torch = torch_or_skip()
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
    for n in (0, 1, 2, 3, 8, 17):
        for periodic in (True, False):
            g = getattr(gt, name)(n, periodic, dtype=getattr(gt, dtype), **kwargs)
            t = getattr(torch, name)(n, periodic, dtype=getattr(torch, dtype), **kwargs)
            _same_meta(g, t)
            np.testing.assert_allclose(_np(g), t.numpy(), err_msg=f"{name}({n}, {periodic})", **tol)


def test_windows_positional_parameters_and_defaults():
    torch = torch_or_skip()
    np.testing.assert_allclose(_np(gt.hamming_window(6, False, 0.6, 0.3)),
                               torch.hamming_window(6, False, 0.6, 0.3).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_np(gt.kaiser_window(6, False, 5.0)), torch.kaiser_window(6, False, 5.0).numpy(),
                               rtol=1e-6, atol=1e-7)
    g, t = gt.hann_window(4, requires_grad=True), torch.hann_window(4, requires_grad=True)
    _same_meta(g, t)
    assert g.is_leaf
    g = gt.blackman_window(5)
    assert g.dtype == gt.float32


def test_window_in_default_dtype():
    gt.set_default_dtype(gt.float64)
    try:
        assert gt.hann_window(4).dtype == gt.float64
    finally:
        gt.set_default_dtype(gt.float32)


# ---- numerics --------------------------------------------------------------------------------------
RNG = np.random.default_rng(0)
Y = RNG.standard_normal((3, 5))
X1 = np.cumsum(RNG.uniform(0.2, 1.0, 5))
X2 = np.cumsum(RNG.uniform(0.2, 1.0, (3, 5)), axis=1)


@pytest.mark.parametrize("fn", ["trapezoid", "trapz", "cumulative_trapezoid"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_trapezoid_beside_torch(fn, dtype):
    torch = torch_or_skip()
    gf, tf = getattr(gt, fn), getattr(torch, fn)
    compare_with_torch(lambda y: gf(y), lambda y: tf(y), Y, dtype=dtype)
    compare_with_torch(lambda y: gf(y, dx=0.5, dim=0), lambda y: tf(y, dx=0.5, dim=0), Y, dtype=dtype)
    compare_with_torch(lambda y, x: gf(y, x), lambda y, x: tf(y, x), Y, X1, dtype=dtype)
    compare_with_torch(lambda y, x: gf(y, x, dim=-1), lambda y, x: tf(y, x, dim=-1), Y, X2, dtype=dtype)
    compare_with_torch(lambda y, x: gf(y, x, dim=0), lambda y, x: tf(y, x, dim=0), Y, X1[:3], dtype=dtype)
    compare_with_torch(lambda y, x: gf(y, x), lambda y, x: tf(y, x), Y, X2[:1], dtype=dtype)   # broadcasting x
    compare_with_torch(lambda y: gf(y.t(), dim=0), lambda y: tf(y.t(), dim=0), Y, dtype=dtype)  # non-contiguous


@pytest.mark.parametrize("fn", ["trapezoid", "cumulative_trapezoid"])
def test_trapezoid_edges_and_ints(fn):
    for program in (lambda L: getattr(L, fn)(L.tensor([1, 2, 3])),
                    lambda L: getattr(L, fn)(L.tensor([1, 2, 3]), dx=2),
                    lambda L: getattr(L, fn)(L.tensor([1, 2, 3]), L.tensor([1, 2, 4])),
                    lambda L: getattr(L, fn)(L.ones(2, 0)),
                    lambda L: getattr(L, fn)(L.ones(2, 1)),
                    lambda L: getattr(L, fn)(L.ones(2, 3, dtype=L.float64), dim=-2)):
        g, t = _both(program)
        _same_meta(g, t)
        np.testing.assert_allclose(_np(g), t.numpy(), rtol=1e-6)


def test_trapezoid_finite_differences():
    check_grad(lambda y, x: gt.trapezoid(y, x), Y, X1)
    check_grad(lambda y, x: gt.cumulative_trapezoid(y, x, dim=1), Y, X2)


COV_IN = RNG.standard_normal((3, 6))
FW = np.array([1, 2, 0, 3, 1, 1])
AW = RNG.uniform(0.1, 2.0, 6)


@pytest.mark.parametrize("kwargs", [{}, {"correction": 0}, {"correction": 2}, {"fweights": True},
                                    {"aweights": True}, {"fweights": True, "aweights": True},
                                    {"fweights": True, "aweights": True, "correction": 0}])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cov_beside_torch(kwargs, dtype):
    torch = torch_or_skip()

    def run(L, x, aw):
        kw = {k: v for k, v in kwargs.items() if k == "correction"}
        if kwargs.get("fweights"):
            kw["fweights"] = L.tensor(FW)
        if kwargs.get("aweights"):
            kw["aweights"] = aw
        return L.cov(x, **kw)

    compare_with_torch(lambda x, aw: run(gt, x, aw), lambda x, aw: run(torch, x, aw), COV_IN, AW, dtype=dtype)
    compare_with_torch(lambda x, aw: run(gt, x[0], aw), lambda x, aw: run(torch, x[0], aw), COV_IN, AW,
                       dtype=dtype)


def test_cov_corrcoef_ints_edges_and_finite_differences():
    for program in (lambda L: L.cov(L.tensor([[1, 2, 3], [2, 5, 3]])),
                    lambda L: L.cov(L.tensor([1.0, 2, 3])),
                    lambda L: L.cov(L.ones(2, 3), aweights=L.ones(3, dtype=L.float64)),
                    lambda L: L.corrcoef(L.tensor([[1, 2, 3], [2, 5, 3]])),
                    lambda L: L.corrcoef(L.tensor([1.0, 2, 3])),
                    lambda L: L.corrcoef(L.tensor([[1.0, 1, 1], [2, 5, 3]]))):
        with np.errstate(all="ignore"):
            g, t = _both(program)
        _same_meta(g, t)
        np.testing.assert_allclose(_np(g), t.numpy(), rtol=1e-6, equal_nan=True)
    for program in (lambda L: L.cov(L.tensor([1.0])), lambda L: L.cov(L.ones(2, 0)),
                    lambda L: L.cov(L.ones(2, 3), correction=3)):
        with pytest.warns(UserWarning, match="degrees of freedom is <= 0"), np.errstate(all="ignore"):
            g, t = _both(program)     # both warn, then divide by zero
        _same_meta(g, t)
        np.testing.assert_allclose(_np(g), t.numpy(), equal_nan=True)
    check_grad(lambda x: gt.cov(x, aweights=gt.tensor(AW)), COV_IN)
    check_grad(lambda x: gt.corrcoef(x), COV_IN)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_corrcoef_beside_torch(dtype):
    torch = torch_or_skip()
    compare_with_torch(gt.corrcoef, torch.corrcoef, COV_IN, dtype=dtype)
    compare_with_torch(lambda x: gt.corrcoef(x.t()), lambda x: torch.corrcoef(x.t()), COV_IN[:, :3], dtype=dtype)


@pytest.mark.parametrize("N,increasing", [(None, False), (None, True), (5, False), (2, True), (1, False),
                                          (0, False)])
def test_vander_beside_torch(N, increasing):
    torch = torch_or_skip()
    x = np.array([0.0, -1.5, 2.0, 0.5])
    # values only: torch's vander cannot be differentiated (its backward finds a tensor changed in
    # place), so gt's gradient is checked against finite differences below
    compare_with_torch(lambda v: gt.vander(v, N=N, increasing=increasing),
                       lambda v: torch.vander(v, N=N, increasing=increasing), x, grad=False)
    for program in (lambda L: L.vander(L.tensor([1, 2, 3]), N, increasing),
                    lambda L: L.vander(L.tensor([1, 2, 3], dtype=L.int32), N, increasing),
                    lambda L: L.vander(L.tensor([True, False]), N, increasing),
                    lambda L: L.vander(L.ones(0), N, increasing)):
        g, t = _both(program)
        _same_meta(g, t)
        np.testing.assert_array_equal(_np(g), t.numpy())


@pytest.mark.parametrize("increasing", [False, True])
def test_vander_gradient_at_zero(increasing):
    check_grad(lambda v: gt.vander(v, 4, increasing), np.array([0.0, 1.3, -0.7]))
    leaf = gt.tensor([0.0, 2.0], dtype=gt.float64, requires_grad=True)
    gt.vander(leaf, 3, increasing).sum().backward()       # d/dx (1 + x + x**2) = 1 + 2x
    np.testing.assert_array_equal(_np(leaf.grad), [1.0, 5.0])


G1 = RNG.standard_normal(7)
G2 = RNG.standard_normal((4, 5))
C0, C1 = np.cumsum(RNG.uniform(0.3, 1.5, 4)), np.cumsum(RNG.uniform(0.3, 1.5, 5))


@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradient_beside_torch(edge_order, dtype):
    torch = torch_or_skip()
    for kw in ({}, {"spacing": 2.0}, {"spacing": [0.5]}, {"dim": 0}, {"dim": -1}):
        compare_with_torch(lambda f: gt.gradient(f, edge_order=edge_order, **kw),
                           lambda f: torch.gradient(f, edge_order=edge_order, **kw), G1, dtype=dtype)
    for kw in ({}, {"dim": 1}, {"dim": [1, 0]}, {"spacing": [0.5, 3.0]}, {"spacing": 0.25, "dim": 0}):
        compare_with_torch(lambda f: gt.gradient(f, edge_order=edge_order, **kw),
                           lambda f: torch.gradient(f, edge_order=edge_order, **kw), G2, dtype=dtype)
    compare_with_torch(lambda f, a, b: gt.gradient(f, spacing=(a, b), edge_order=edge_order),
                       lambda f, a, b: torch.gradient(f, spacing=(a, b), edge_order=edge_order), G2, C0, C1,
                       dtype=dtype)
    compare_with_torch(lambda f, b: gt.gradient(f, spacing=[b], dim=1, edge_order=edge_order),
                       lambda f, b: torch.gradient(f, spacing=[b], dim=1, edge_order=edge_order), G2, C1,
                       dtype=dtype)
    compare_with_torch(lambda f: gt.gradient(f.t(), edge_order=edge_order),
                       lambda f: torch.gradient(f.t(), edge_order=edge_order), G2, dtype=dtype)


def test_gradient_ints_0d_and_finite_differences():
    torch = torch_or_skip()
    for program in (lambda L: L.gradient(L.tensor([1, 2, 4, 8]))[0],
                    lambda L: L.gradient(L.tensor([1, 2, 4, 8]), spacing=(L.tensor([0, 1, 3, 4]),))[0],
                    lambda L: L.gradient(L.tensor([1, 2, 4, 8]), spacing=2, edge_order=2)[0]):
        g, t = _both(program)
        _same_meta(g, t)
        np.testing.assert_allclose(_np(g), t.numpy(), rtol=1e-6)
    assert gt.gradient(gt.tensor(1.0)) == () == torch.gradient(torch.tensor(1.0))
    check_grad(lambda f, c: gt.gradient(f, spacing=(c,), dim=0, edge_order=2), G2, C0)


@pytest.mark.parametrize("n,dim", [(1, -1), (2, -1), (1, 0), (3, 1)])
def test_diff_beside_torch(n, dim):
    torch = torch_or_skip()
    pre, app = (RNG.standard_normal((2, 5)), RNG.standard_normal((1, 5))) if dim == 0 else \
        (RNG.standard_normal((4, 2)), RNG.standard_normal((4, 1)))
    compare_with_torch(lambda x: x.diff(n, dim), lambda x: x.diff(n, dim), G2)
    compare_with_torch(lambda x, p, a: gt.diff(x, n, dim, p, a), lambda x, p, a: torch.diff(x, n, dim, p, a),
                       G2, pre, app)
    g, t = _both(lambda L: L.diff(L.tensor([[1, 5, 2], [3, 3, 9]]), n=1, dim=dim, append=L.tensor([[0, 0, 0]])
                                  if dim == 0 else L.tensor([[7], [8]])))
    _same_meta(g, t)
    np.testing.assert_array_equal(_np(g), t.numpy())


# ---- sharded inputs ----------------------------------------------------------------------------------
@pytest.mark.own_mesh
@pytest.mark.parametrize("n", [2, 4])
def test_sharded_inputs_give_the_unsharded_answers(n):
    data = RNG.standard_normal((8, 5))
    programs = {
        "trapezoid": lambda t: gt.trapezoid(t, dim=0),
        "cumulative_trapezoid": lambda t: gt.cumulative_trapezoid(t),
        "cov": lambda t: gt.cov(t),
        "corrcoef": lambda t: gt.corrcoef(t.t()),
        "gradient": lambda t: gt.gradient(t, edge_order=2)[0],
        "vander": lambda t: gt.vander(t[:, 0], 3),
    }
    for name, program in programs.items():
        with use_mesh(1):
            leaf = gt.tensor(data, dtype=gt.float64, requires_grad=True)
            want = program(leaf)
            want.sum().backward()
            want_grad = _np(leaf.grad)
        with use_mesh(n):
            leaf = gt.tensor(data, dtype=gt.float64, requires_grad=True)
            out = program(leaf.shard(0))
            out.sum().backward()
            np.testing.assert_allclose(_np(out), _np(want), rtol=1e-12, atol=1e-12, err_msg=name)
            np.testing.assert_allclose(_np(leaf.grad), want_grad, rtol=1e-12, atol=1e-12, err_msg=name)
    rates = np.abs(data) * 5
    for name, program in {"poisson": gt.poisson, "bernoulli": lambda t: gt.bernoulli(t / 20),
                          "normal": lambda t: gt.normal(t, 1.0), "randint_like": lambda t: gt.randint_like(t, 9)
                          }.items():
        with use_mesh(1):
            gt.manual_seed(5)
            want = _np(program(gt.tensor(rates)))
        with use_mesh(n):
            gt.manual_seed(5)
            got = program(gt.tensor(rates).shard(0))
            np.testing.assert_array_equal(_np(got), want, err_msg=name)
