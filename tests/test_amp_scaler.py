"""gt.amp.GradScaler beside torch.amp.GradScaler: the same model, optimizer and losses (some with
inf/NaN gradients) give the same parameter trajectories, scale sequence, growth tracker, step
return values and state dicts; torch's errors; the disabled scaler; sharded parameters."""

import pickle
import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import torch_or_skip

W = np.random.default_rng(0).standard_normal((2, 3))
BIAS = np.random.default_rng(1).standard_normal(2)
X = np.random.default_rng(2).standard_normal((4, 3))
# the loss factor per step: inf and nan make every scaled gradient non-finite (a skipped step)
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
FACTORS = [1.0, 2.0, float("inf"), 1.0, 1.0, 0.5, float("nan"), 1.0, 3.0, 1.0, 1.0]


def _models(torch, dtype="float32"):
    g = gt.nn.Linear(3, 2, dtype=getattr(gt, dtype))
    t = torch.nn.Linear(3, 2, dtype=getattr(torch, dtype))
    with gt.no_grad():
        g.weight.copy_(gt.tensor(W, dtype=getattr(gt, dtype)))
        g.bias.copy_(gt.tensor(BIAS, dtype=getattr(gt, dtype)))
    with torch.no_grad():
        t.weight.copy_(torch.tensor(W))
        t.bias.copy_(torch.tensor(BIAS))
    return g, t


def _optimizers(kind, g, t, torch):
    if kind == "sgd":
        return (gt.optim.SGD(g.parameters(), lr=0.05, momentum=0.9),
                torch.optim.SGD(t.parameters(), lr=0.05, momentum=0.9))
    return gt.optim.Adam(g.parameters(), lr=0.01), torch.optim.Adam(t.parameters(), lr=0.01)


def _run(lib, model, opt, scaler, x, factors, unscale_first=False):
    """The training loop of torch's AMP recipe; the trajectory of (scale, tracker, step's return, params)."""
    record = []
    for f in factors:
        opt.zero_grad()
        loss = (model(x) ** 2).sum() * f
        scaler.scale(loss).backward()
        if unscale_first:
            scaler.unscale_(opt)
            lib.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        ret = scaler.step(opt)
        scaler.update()
        params = [p.detach().numpy().copy() for p in model.parameters()]
        record.append((scaler.get_scale(), scaler._get_growth_tracker(), ret, params))
    return record


def _assert_same(rec_g, rec_t, rtol=1e-5):
    for i, ((sg, tg, rg, pg), (st, tt, rt, pt)) in enumerate(zip(rec_g, rec_t)):
        assert sg == st and type(sg) is type(st), (i, sg, st)
        assert tg == tt, (i, tg, tt)
        assert rg == rt, (i, rg, rt)
        for a, b in zip(pg, pt):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6, err_msg=f"step {i}")


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("unscale_first", [False, True])
def test_trajectory_beside_torch(kind, unscale_first):
    torch = torch_or_skip()
    g, t = _models(torch)
    og, ot = _optimizers(kind, g, t, torch)
    kw = dict(init_scale=2.0 ** 10, growth_factor=2.0, backoff_factor=0.25, growth_interval=2)
    sg, st = gt.amp.GradScaler("cpu", **kw), torch.amp.GradScaler("cpu", **kw)
    rec_g = _run(gt, g, og, sg, gt.tensor(X, dtype=gt.float32), FACTORS, unscale_first)
    rec_t = _run(torch, t, ot, st, torch.tensor(X, dtype=torch.float32), FACTORS, unscale_first)
    _assert_same(rec_g, rec_t)
    # skipped steps left the parameters alone; the scale went down there and up after 2 good ones
    scales = [r[0] for r in rec_g]
    assert scales[2] < scales[1] and scales[6] < scales[5] and max(scales) > kw["init_scale"]
    assert sg.state_dict() == st.state_dict()


def test_float64_model_and_default_arguments():
    torch = torch_or_skip()
    g, t = _models(torch, "float64")
    og, ot = _optimizers("sgd", g, t, torch)
    sg, st = gt.amp.GradScaler("cpu"), torch.amp.GradScaler("cpu")
    assert sg.get_scale() == st.get_scale() == 65536.0 and sg.get_growth_interval() == 2000
    rec_g = _run(gt, g, og, sg, gt.tensor(X), FACTORS[:4])
    rec_t = _run(torch, t, ot, st, torch.tensor(X), FACTORS[:4])
    _assert_same(rec_g, rec_t, rtol=1e-10)
    assert sg.state_dict() == st.state_dict() == {
        "scale": 32768.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 1}


def test_unscale_divides_grads_in_place_and_flags_inf():
    torch = torch_or_skip()
    results = []
    for lib in (gt, torch):
        p = lib.nn.Parameter(lib.tensor([1.0, 2.0, 3.0]))
        q = lib.nn.Parameter(lib.tensor([1.0]))          # no grad: skipped
        opt = lib.optim.SGD([p, q], lr=1.0)
        scaler = lib.amp.GradScaler("cpu", init_scale=3.0)
        (scaler.scale((p * lib.tensor([1.0, 10.0, 100.0])).sum())).backward()
        grad = p.grad
        scaler.unscale_(opt)
        assert p.grad is grad                            # in place, as torch
        results.append((grad.detach().numpy().copy(), q.grad))
        # inf in one gradient: the step is skipped, the scale backs off
        ret = scaler.step(opt)
        scaler.update()
        results.append((p.detach().numpy().copy(), scaler.get_scale(), ret))
        opt.zero_grad()
        scaler.scale(p.sum() * float("inf")).backward()
        assert scaler.step(opt) is None
        scaler.update()
        results.append((p.detach().numpy().copy(), scaler.get_scale(), scaler._get_growth_tracker()))
    n = len(results) // 2
    for a, b in zip(results[:n], results[n:]):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
        assert a[1:] == b[1:]


def test_scale_structures():
    torch = torch_or_skip()
    out = {}
    for lib in (gt, torch):
        s = lib.amp.GradScaler("cpu", init_scale=4.0)
        a, b = lib.tensor([1.0, 2.0]), lib.tensor(3.0, dtype=lib.float64)
        nested = s.scale([a, (b, [a])])
        assert type(nested) is list and type(nested[1]) is tuple and type(nested[1][1]) is list
        gen = s.scale(x for x in [a, b])
        assert not isinstance(gen, (list, tuple))       # a map object, as torch
        ints = s.scale(lib.tensor([1, 2]))
        out[lib.__name__] = ([nested[0].numpy(), nested[1][0].numpy(), nested[1][1][0].numpy()],
                             [x.numpy() for x in gen], ints.numpy(), str(nested[1][0].dtype).split(".")[-1],
                             str(ints.dtype).split(".")[-1])
        with pytest.raises(ValueError, match="outputs must be a Tensor or an iterable of Tensors"):
            s.scale([a, 3.0])
    g, t = out["gt"], out["torch"]
    for x, y in zip(g[0] + g[1] + [g[2]], t[0] + t[1] + [t[2]]):
        np.testing.assert_array_equal(x, y)
    assert g[3:] == t[3:] == ("float64", "float32")


def test_update_new_scale_and_growth_overflow():
    torch = torch_or_skip()
    for lib in (gt, torch):
        # the scaler on the device of the library's tensors: gt's are on a GPU where it computes there
        s = lib.amp.GradScaler("cuda" if lib is gt and gt.cuda.is_available() else "cpu", init_scale=8.0)
        p = lib.nn.Parameter(lib.tensor([1.0]))
        opt = lib.optim.SGD([p], lr=0.1)
        s.scale(p.sum()).backward()
        s.step(opt)
        s.update(0.1)                    # rounded to float32, as torch's float32 scale tensor
        assert s.get_scale() == float(np.float32(0.1))
        s.scale(p.sum()).backward()
        s.step(opt)
        s.update(lib.tensor(5.0))
        assert s.get_scale() == 5.0
        s.scale(p.sum()).backward()
        s.step(opt)
        with pytest.raises(RuntimeError, match="output with shape \\[\\] doesn't match the broadcast shape \\[1\\]"):
            s.update(lib.tensor([5.0]))
        s.update()
        reason = "new_scale should be a float or a 1-element"
        for bad in (lib.tensor([1.0, 2.0]), lib.tensor(2.0, requires_grad=True)):
            s.scale(p.sum()).backward()
            s.step(opt)
            with pytest.raises(AssertionError, match=reason):
                s.update(bad)
            s.update()
        # growing past float32's range keeps the scale and still resets the tracker
        big = lib.amp.GradScaler("cpu", init_scale=2.0 ** 127, growth_interval=1)
        big.scale(p.sum()).backward()
        big.step(opt)
        big.update()
        assert big.get_scale() == 2.0 ** 127 and big._get_growth_tracker() == 0


@pytest.mark.first_pass
def test_errors_beside_torch():
    torch = torch_or_skip()
    for lib in (gt, torch):
        with pytest.raises(AssertionError, match="The growth factor must be > 1.0."):
            lib.amp.GradScaler("cpu", growth_factor=1.0)
        with pytest.raises(AssertionError, match="The backoff factor must be < 1.0."):
            lib.amp.GradScaler("cpu", backoff_factor=1.0)
        p = lib.nn.Parameter(lib.tensor([1.0, 2.0]))
        opt = lib.optim.SGD([p], lr=0.1)
        s = lib.amp.GradScaler("cpu")
        with pytest.raises(AssertionError, match="Attempted unscale_ but _scale is None"):
            s.unscale_(opt)
        with pytest.raises(AssertionError, match="Attempted step but _scale is None"):
            s.step(opt)
        with pytest.raises(AssertionError, match="Attempted update but _scale is None"):
            s.update()
        s.scale(p.sum()).backward()
        with pytest.raises(AssertionError, match="No inf checks were recorded prior to update."):
            s.update()
        with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
            s.step(opt, closure=lambda: None)
        s.unscale_(opt)
        with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called on this optimizer"):
            s.unscale_(opt)
        s.step(opt)
        with pytest.raises(RuntimeError, match="unscale_\\(\\) is being called after step\\(\\)."):
            s.unscale_(opt)
        with pytest.raises(RuntimeError, match="step\\(\\) has already been called since the last update\\(\\)."):
            s.step(opt)
        with pytest.raises(AssertionError, match="only be pickled at the beginning"):
            pickle.dumps(s)
        s.update()
        with pytest.raises(RuntimeError, match="The source state dict is empty"):
            s.load_state_dict({})
        h = lib.nn.Parameter(lib.tensor([1.0, 2.0], dtype=lib.float16))
        opt16 = lib.optim.SGD([h], lr=0.1)
        h.grad = lib.tensor([1.0, 1.0], dtype=lib.float16)
        with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients."):
            s.unscale_(opt16)


@pytest.mark.first_pass
def test_state_dict_round_trip_setters_and_pickle():
    torch = torch_or_skip()
    dicts = []
    for lib in (gt, torch):
        s = lib.amp.GradScaler("cpu", init_scale=16.0, growth_interval=3)
        assert s.state_dict()["scale"] == 16.0 and s._get_growth_tracker() == 0
        p = lib.nn.Parameter(lib.tensor([1.0, 2.0]))
        opt = lib.optim.SGD([p], lr=0.1)
        for f in (1.0, 1.0, float("inf"), 1.0):
            s.scale(p.sum() * f).backward()
            s.step(opt)
            s.update()
            opt.zero_grad()
        s.set_growth_factor(3.0)
        s.set_backoff_factor(0.125)
        s.set_growth_interval(7)
        assert (s.get_growth_factor(), s.get_backoff_factor(), s.get_growth_interval()) == (3.0, 0.125, 7)
        state = s.state_dict()
        fresh = lib.amp.GradScaler("cpu")
        fresh.load_state_dict(state)
        assert fresh.state_dict() == state and fresh.get_scale() == 8.0
        # a scaler that has scaled once loads into its live scale and tracker
        used = lib.amp.GradScaler("cpu")
        used.scale(p.sum())
        used.load_state_dict(state)
        assert used.state_dict() == state
        again = pickle.loads(pickle.dumps(s))
        assert again.state_dict() == state and again.is_enabled()
        dicts.append(state)
    assert dicts[0] == dicts[1] == {"scale": 8.0, "growth_factor": 3.0, "backoff_factor": 0.125,
                                    "growth_interval": 7, "_growth_tracker": 1}


@pytest.mark.first_pass
@pytest.mark.filterwarnings("ignore:.*CUDA is not available:UserWarning")
def test_disabled_scaler_and_cuda_without_a_device():
    torch = torch_or_skip()
    for lib in (gt, torch):
        s = lib.amp.GradScaler("cpu", enabled=False, growth_factor=0.5)   # no checks when disabled
        p = lib.nn.Parameter(lib.tensor([1.0, 2.0]))
        opt = lib.optim.SGD([p], lr=0.5)
        loss = p.sum()
        assert s.scale(loss) is loss and not s.is_enabled()
        loss.backward()
        s.unscale_(opt)
        assert s.step(opt) is None and s.get_scale() == 1.0 and s.state_dict() == {}
        s.update()
        s.load_state_dict({})
        np.testing.assert_allclose(p.detach().numpy(), [0.5, 1.5])
    if gt.cuda.is_available() or torch.cuda.is_available():
        pytest.skip("a CUDA device is present: GradScaler('cuda') stays enabled")
    for lib in (gt, torch):
        with pytest.warns(UserWarning, match="GradScaler is enabled, but CUDA is not available.  Disabling."):
            s = lib.amp.GradScaler()
        assert not s.is_enabled() and s.get_scale() == 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert not lib.amp.GradScaler("cuda", enabled=False).is_enabled()
        with pytest.warns(FutureWarning, match="GradScaler\\(args...\\)` is deprecated"):
            old = lib.cuda.amp.GradScaler(init_scale=4.0)
        assert not old.is_enabled()


def test_sharded_parameters_give_the_unsharded_trajectory():
    torch_or_skip()
    records = []
    for n in (1, 2):
        with use_mesh(n):
            p = gt.nn.Parameter(gt.tensor(X.ravel()[:8], dtype=gt.float32))
            if n > 1:
                p = gt.nn.Parameter(p.detach().shard(0))
            opt = gt.optim.Adam([p], lr=0.1)
            s = gt.amp.GradScaler("cpu", init_scale=64.0, growth_interval=2)
            rec = []
            for f in (1.0, float("inf"), 1.0, 1.0):
                opt.zero_grad()
                s.scale(((p * p).sum() * f)).backward()
                s.step(opt)
                s.update()
                rec.append((s.get_scale(), p.detach().numpy().copy()))
            records.append(rec)
    for (sa, pa), (sb, pb) in zip(*records):
        assert sa == sb
        np.testing.assert_allclose(pa, pb, rtol=1e-6)


def test_two_optimizers_share_one_update():
    """An inf in one optimizer's gradients skips that optimizer's step only; update backs off once."""
    torch = torch_or_skip()
    out = []
    for lib in (gt, torch):
        a, b = lib.nn.Parameter(lib.tensor([1.0, 2.0])), lib.nn.Parameter(lib.tensor([3.0]))
        oa, ob = lib.optim.SGD([a], lr=0.1), lib.optim.Adam([b], lr=0.1)
        s = lib.amp.GradScaler("cpu", init_scale=8.0, growth_interval=1)
        rec = []
        for fa, fb in ((1.0, 1.0), (float("inf"), 1.0), (1.0, 2.0), (1.0, float("nan"))):
            oa.zero_grad()
            ob.zero_grad()
            s.scale([(a * a).sum() * fa, (b * 3).sum() * fb])[0].backward(retain_graph=True)
            s.scale((b * 3).sum() * fb).backward()
            s.step(oa)
            s.step(ob)
            s.update()
            rec.append((s.get_scale(), s._get_growth_tracker(), a.detach().numpy().copy(), b.detach().numpy().copy()))
        out.append(rec)
    for (sg, tg, ag, bg), (st, tt, at, bt) in zip(*out):
        assert (sg, tg) == (st, tt)
        np.testing.assert_allclose(ag, at, rtol=1e-6)
        np.testing.assert_allclose(bg, bt, rtol=1e-6)
    assert [r[0] for r in out[0]] == [16.0, 8.0, 16.0, 8.0]
