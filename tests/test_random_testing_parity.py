"""The random-number API beside torch: dtypes, supports, keywords and errors of the samplers
(the draws themselves are gt's, not torch's bits)."""

import warnings

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")


def _both(fn):
    """``fn(gt)`` and ``fn(torch)``: each one's result or exception type."""
    out = []
    for m in (gt, torch):
        try:
            out.append(fn(m))
        except Exception as exc:  # noqa: BLE001  (compared below)
            out.append(type(exc))
    return out


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_rand_half_precision_stays_below_one(dtype):
    if dtype == "bfloat16" and not _bf16_ok():
        pytest.skip("bfloat16 needs the torch engine")
    gt.manual_seed(0)
    x = gt.rand(200_000, dtype=getattr(gt, dtype)).to(gt.float32).numpy()
    assert x.max() < 1.0 and x.min() >= 0.0
    assert abs(x.mean() - 0.5) < 0.01


def _bf16_ok():
    try:
        gt.zeros(1, dtype=gt.bfloat16)
        return True
    except TypeError:
        return False


@pytest.mark.parametrize("call", [
    lambda m: m.rand(2, dtype=m.int64), lambda m: m.rand(2, dtype=m.bool), lambda m: m.randn(2, dtype=m.int32)])
def test_rand_randn_refuse_integer_dtypes(call):
    g, t = _both(call)
    assert g is NotImplementedError and t is NotImplementedError


@pytest.mark.parametrize("code", [
    "m.randint(5, (3,), dtype=m.bool)", "m.randint(-1, 2, (3,), dtype=m.bool)", "m.randint(2**40, (3,), dtype=m.int32)",
    "m.randint(2**63, (3,))", "m.randint(5.5, (3,))", "m.randint(5)", "m.randint(5, (3,), requires_grad=True)",
    "m.randperm(-1)", "m.randperm(5, dtype=m.bool)", "m.randperm(3000, dtype=m.float16)",
    "m.randperm(5, requires_grad=True)"])
def test_randint_randperm_errors(code):
    g, t = _both(lambda m: eval(code, {"m": m}))
    assert isinstance(t, type) and issubclass(t, Exception)
    assert g is t, (code, g, t)


@pytest.mark.parametrize("code", [
    "m.randint(high=5, size=(300,))", "m.randint(2, 5, (300,), dtype=m.float32, requires_grad=True)",
    "m.randperm(300, dtype=m.int32)", "m.randperm(300, dtype=m.float64, requires_grad=True)"])
def test_randint_randperm_keywords(code):
    gt.manual_seed(0)
    g, t = _both(lambda m: eval(code, {"m": m}))
    assert tuple(g.shape) == tuple(t.shape) and g.dtype.name == str(t.dtype).split(".")[-1]
    assert g.requires_grad == t.requires_grad
    gv = g.detach().to(gt.float64).numpy()
    assert gv.min() >= 0 and gv.max() < 5 or "randperm" in code
    if "randperm" in code:
        assert sorted(gv.tolist()) == list(range(300))


def test_like_samplers_take_a_generator():
    for fn in (gt.rand_like, gt.randn_like):
        a = fn(gt.zeros(5), generator=gt.Generator().manual_seed(3))
        b = fn(gt.zeros(5), generator=gt.Generator().manual_seed(3))
        assert (a.numpy() == b.numpy()).all() and a.shape == (5,)


def test_normal_and_bernoulli_write_out():
    for m in (gt, torch):
        o = m.empty(4)
        r = m.normal(0.0, 1.0, (4,), out=o)
        assert r is o
        o = m.empty(3)
        assert m.normal(m.zeros(3), m.ones(3), out=o) is o
        o = m.empty(3)
        r = m.bernoulli(m.full((3,), 0.5), out=o)
        assert r is o and set(o.numpy().tolist()) <= {0.0, 1.0}
    o = gt.empty(4, dtype=gt.float64)
    gt.normal(2.0, 0.0, (4,), out=o)
    assert o.dtype == gt.float64 and (o.numpy() == 2.0).all()


@pytest.mark.parametrize("code", [
    "m.zeros(3).uniform_(0, float('inf'))", "m.zeros(3).uniform_(-float('inf'), 0)", "m.zeros(3).uniform_(-3e38, 3e38)",
    "m.zeros(3, dtype=m.float16).uniform_(0, 70000)", "m.zeros(3, dtype=m.int64).random_(2**63)",
    "m.zeros(3, dtype=m.int64).random_(-2**63, 2**63)", "m.zeros(3, dtype=m.float16).random_(70000)",
    "m.zeros(3, dtype=m.float16).random_(-70000, 0)"])
def test_fill_bounds_errors(code):
    g, t = _both(lambda m: eval(code, {"m": m}))
    assert isinstance(t, type) and g is t, (code, g, t)


def test_random_warns_past_exact_integers_as_torch():
    for m in (gt, torch):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            x = m.zeros(1000).random_(2 ** 25)
        assert any("to - 1 is out of bounds [-(2^24), 2^24]" in str(w.message) for w in seen), m
        assert float(x.max()) < 2 ** 25



@pytest.mark.parametrize("code", [
    "m.zeros(3).normal_(1, -2)", "m.zeros(3).normal_(0, float('nan'))", "m.zeros(3, dtype=m.int64).normal_()",
    "m.zeros(3).uniform_(5, 2)", "m.zeros(3, dtype=m.int64).uniform_()", "m.zeros(3).uniform_(a=1, b=2)",
    "m.zeros(3).bernoulli_(1.5)", "m.zeros(3).bernoulli_(m.full((3,), 1.5))", "m.zeros(3).bernoulli_(m.full((2,), 0.5))",
    "m.zeros(3).bernoulli_(m.full((2, 3), 0.5))", "m.zeros(3).exponential_(0.0)", "m.zeros(3).exponential_(-1.0)",
    "m.zeros(3, dtype=m.int64).exponential_()", "m.zeros(3).exponential_('a')",
    "m.rand_like(m.zeros(2, dtype=m.int64))", "m.randn_like(m.zeros(2), dtype=m.int64)"])
def test_inplace_fill_errors_as_torch(code):
    g, t = _both(lambda m: eval(code, {"m": m}))
    assert isinstance(t, type) and g is t, (code, g, t)


def test_set_state_restores_initial_seed_as_torch():
    import json
    for m in (gt, torch):
        m.manual_seed(5)
        state = m.get_rng_state()
        if m is gt:
            state = json.loads(json.dumps(state))
        m.manual_seed(7)
        m.set_rng_state(state)
        assert m.initial_seed() == 5
        g = m.Generator().manual_seed(9)
        s = g.get_state()
        g.manual_seed(3)
        assert g.set_state(s).initial_seed() == 9
        assert m.Generator().set_state(s).initial_seed() == 9
        with m.random.fork_rng():
            m.manual_seed(11)
        assert m.initial_seed() == 5


@pytest.mark.parametrize("code", [
    "m.randn(size=(2, 3))", "m.rand(size=[4])", "m.zeros(3).normal_(m.tensor(0.0), m.tensor(1.0))",
    "m.zeros(3).exponential_(m.tensor(2.0))",
    "m.zeros(3).geometric_(m.tensor(0.5))", "m.zeros(3).log_normal_(m.tensor(0.0), m.tensor(1.0))"])
def test_size_keyword_and_0d_tensor_arguments(code):
    g, t = _both(lambda m: eval(code, {"m": m}))
    assert not isinstance(t, type), t
    assert tuple(g.shape) == tuple(t.shape) and g.dtype.name == str(t.dtype).split(".")[-1]


@pytest.mark.parametrize("code", [
    "m.randint_like(m.zeros(3), 5, dtype=m.bool)", "m.randint_like(m.zeros(3, dtype=m.int32), 2**40)",
    "m.zeros(3).normal_(0, m.tensor([1.0]))", "m.zeros(3).uniform_(m.tensor(0.0, requires_grad=True), 1)"])
def test_sampler_argument_errors(code):
    g, t = _both(lambda m: eval(code, {"m": m}))
    assert isinstance(t, type) and g is t, (code, g, t)


def test_clone_state_continues_the_same_draws():
    for m in (gt, torch):
        g = m.Generator().manual_seed(4)
        m.rand(3, generator=g)
        h = g.clone_state()
        assert isinstance(h, m.Generator) and h is not g and h.initial_seed() == 4
        assert m.rand(5, generator=g).tolist() == m.rand(5, generator=h).tolist()
        d = m.default_generator.clone_state()
        assert m.rand(2, generator=d).tolist() == m.rand(2).tolist()
