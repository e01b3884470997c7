"""gt.optim.LBFGS and gt.optim.Adafactor beside torch's: trajectories, state, state dicts (torch's
loading into gt), parameter groups, sharded parameters and the errors for bad hyperparameters."""

import math

import numpy as np
import pytest

import gt
from gt.sharding.mesh import get_mesh
from helpers import torch_or_skip

AF_TOL = {"float64": dict(rtol=1e-12, atol=1e-14), "float32": dict(rtol=1e-5, atol=1e-6)}
AF_SHAPES = {"v": (5,), "m": (4, 3), "t": (2, 3, 4), "z": ()}


def to_numpy(fw, t):
    return np.array(t.numpy() if fw is gt else t.detach().numpy())


def sharded_mesh():
    return gt.get_mesh().size > 1


# ---- Adafactor ---------------------------------------------------------------------------------
class AfRun:
    """Adafactor over parameters of 1, 2, 3 and 0 dims in gt or torch, stepped with the same
    gradients (noise plus a pull towards 0 that depends on the current values)."""

    def __init__(self, fw, kw, dtype, groups=None, shard=False):
        self.fw = fw
        rng = np.random.default_rng(0)
        self.p = {}
        for k, shape in AF_SHAPES.items():
            t = fw.tensor(rng.standard_normal(shape).astype(dtype))
            if shard and fw is gt and k == "m":
                t = t.shard(0)   # spread over the devices where GT_DEVICES > 1
            self.p[k] = t.requires_grad_()
        params = groups(self.p) if groups else list(self.p.values())
        self.opt = fw.optim.Adafactor(params, **kw)
        self.t = 0

    def values(self):
        return {k: to_numpy(self.fw, v) for k, v in self.p.items()}

    def step(self):
        for i, (k, p) in enumerate(self.p.items()):
            value = to_numpy(self.fw, p)
            g = np.random.default_rng(100 * self.t + i).standard_normal(value.shape).astype(value.dtype)
            grad = self.fw.tensor(g + value * value.dtype.type(0.5))
            if self.fw is gt:   # placed like its parameter, as backward leaves it
                grad = grad.shard(0) if p.placement == gt.Shard(0) else grad.replicate()
            p.grad = grad
        self.opt.step()
        self.t += 1
        return self.values()


def assert_af_close(ours, theirs, dtype, what=""):
    for k in theirs:
        np.testing.assert_allclose(ours[k], theirs[k], err_msg=f"{what} {k}", **AF_TOL[dtype])
        assert ours[k].dtype == theirs[k].dtype and ours[k].shape == theirs[k].shape


def assert_af_state_like_torch(ours, theirs, dtype):
    mine, saved = ours.state_dict(), theirs.state_dict()
    assert sorted(mine["state"]) == sorted(saved["state"])
    for i, entry in saved["state"].items():
        assert sorted(mine["state"][i]) == sorted(entry)
        for key, value in entry.items():
            if key == "step":
                assert float(mine["state"][i][key]) == float(value)
            else:
                assert mine["state"][i][key].shape == tuple(value.shape), key
                np.testing.assert_allclose(mine["state"][i][key], value.numpy(), err_msg=key, **AF_TOL[dtype])
    for a, b in zip(mine["param_groups"], saved["param_groups"]):
        assert a == b


AF_CASES = [
    dict(),
    dict(lr=0.05, weight_decay=0.1, maximize=True),
    dict(lr=0.5, eps=(1e-20, 1e-2), d=2.0, beta2_decay=-0.5),   # rho_t = 1/sqrt(t) from step 5 on
    dict(lr=0.02, eps=(1e-3, 1e-3), beta2_decay=0.0, weight_decay=0.5),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kw", AF_CASES, ids=lambda kw: "-".join(kw) or "defaults")
def test_adafactor_20_steps_match_torch(kw, dtype):
    torch = torch_or_skip()
    ours, theirs = AfRun(gt, kw, dtype, shard=True), AfRun(torch, kw, dtype)
    start = ours.values()
    for step in range(20):
        assert_af_close(ours.step(), theirs.step(), dtype, f"step {step}")
    assert not np.allclose(ours.values()["t"], start["t"])
    if sharded_mesh():
        assert ours.p["m"].placement == gt.Shard(0)
    assert_af_state_like_torch(ours.opt, theirs.opt, dtype)


def test_adafactor_foreach_and_groups_match_torch():
    torch = torch_or_skip()

    def groups(p):
        return [{"params": [p["m"], p["z"]], "lr": 0.03, "maximize": True},
                {"params": [p["v"], p["t"]], "weight_decay": 0.2}]

    ours = AfRun(gt, dict(foreach=True), "float64", groups)
    theirs = AfRun(torch, dict(foreach=True), "float64", groups)
    for step in range(5):
        assert_af_close(ours.step(), theirs.step(), "float64", f"step {step}")
    assert_af_state_like_torch(ours.opt, theirs.opt, "float64")


def test_adafactor_torch_state_dict_loads_and_continues():
    torch = torch_or_skip()
    kw = dict(lr=0.05, weight_decay=0.1)
    ours, theirs = AfRun(gt, kw, "float64", shard=True), AfRun(torch, kw, "float64")
    for _ in range(3):
        theirs.step()
    with gt.no_grad():
        for k, p in ours.p.items():
            p.copy_(gt.tensor(theirs.values()[k]))
    ours.opt.load_state_dict(theirs.opt.state_dict())
    ours.t = theirs.t
    assert ours.opt.state[ours.p["m"]]["step"] == 3
    for step in range(3):
        assert_af_close(ours.step(), theirs.step(), "float64", f"after load, step {step}")


def test_adafactor_state_dict_round_trip_is_a_copy():
    torch = torch_or_skip()
    ours, theirs = AfRun(gt, {}, "float64"), AfRun(torch, {}, "float64")
    for _ in range(3):
        ours.step(), theirs.step()
    saved = ours.opt.state_dict()
    resumed = AfRun(gt, {}, "float64")
    with gt.no_grad():
        for k, p in resumed.p.items():
            p.copy_(gt.tensor(ours.values()[k]))
    resumed.opt.load_state_dict(saved)
    resumed.t = ours.t
    for value in saved["state"][1].values():   # changing the saved dict changes nothing loaded
        if isinstance(value, np.ndarray):
            value.fill(np.nan)
    for step in range(3):
        assert_af_close(resumed.step(), theirs.step(), "float64", f"resumed step {step}")


def test_adafactor_load_state_dict_checks_factor_shapes():
    ours = AfRun(gt, {}, "float64")
    ours.step()
    saved = ours.opt.state_dict()
    before = ours.opt.state[ours.p["m"]]["row_var"].numpy().copy()
    bad = {"state": {k: dict(v) for k, v in saved["state"].items()}, "param_groups": saved["param_groups"]}
    bad["state"][1]["row_var"] = np.zeros((3, 1))
    with pytest.raises(ValueError, match=r"'row_var' of parameter 1 has shape \(3, 1\); .* needs \(4, 1\)"):
        ours.opt.load_state_dict(bad)
    bad["state"][1]["row_var"] = saved["state"][1]["row_var"]
    bad["state"][1]["col_var"] = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"'col_var' of parameter 1 has shape \(4, 3\); .* needs \(1, 3\)"):
        ours.opt.load_state_dict(bad)
    np.testing.assert_array_equal(ours.opt.state[ours.p["m"]]["row_var"].numpy(), before)   # nothing loaded


def test_adafactor_eps1_none_is_the_dtype_eps_and_frozen_params_stay():
    torch = torch_or_skip()
    results = []
    for fw in (gt, torch):
        w = fw.tensor(np.full((2, 2), 1e-3, dtype=np.float32)).requires_grad_()
        frozen = fw.ones(3, requires_grad=True)
        opt = fw.optim.Adafactor([w, frozen], lr=0.1, eps=(None, 0.0))
        w.grad = fw.tensor(np.array([[1e-9, 0.0], [2.0, -1e-5]], dtype=np.float32))
        opt.step()
        results.append(to_numpy(fw, w))
        np.testing.assert_array_equal(to_numpy(fw, frozen), np.ones(3))
        assert frozen not in opt.state
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


@pytest.mark.first_pass
def test_adafactor_empty_parameter_left_alone():
    e, w = gt.zeros(0, 3, requires_grad=True), gt.ones(2, requires_grad=True)
    opt = gt.optim.Adafactor([e, w])
    e.grad, w.grad = gt.zeros(0, 3), gt.ones(2)
    opt.step()
    assert e.shape == (0, 3) and opt.state[e]["step"] == 1 and opt.state[e]["row_var"].shape == (0, 1)
    np.testing.assert_allclose(w.numpy(), np.ones(2) - 1e-2, rtol=1e-6)   # rms(u) = 1: alpha = lr * rms(w)


AF_BAD = [
    (dict(lr=-1.0), "Learning rate should be >= 0 but is: -1.0"),
    (dict(beta2_decay=0.5), "beta2_decay should be <= 0 but is: 0.5"),
    (dict(eps=(-1.0, 1e-3)), "epsilon1 should be >= 0 but is: -1.0"),
    (dict(eps=(None, -1e-3)), "epsilon2 should be >= 0 but is: -0.001"),
    (dict(d=0.5), "Clipping threshold d should be >= 1 but is: 0.5"),
    (dict(weight_decay=-0.1), "weight_decay should be >= 0 but is: -0.1"),
]


@pytest.mark.first_pass
@pytest.mark.parametrize("kw,message", AF_BAD, ids=[next(iter(b[0])) for b in AF_BAD])
def test_adafactor_bad_hyperparameters_refused_as_torch(kw, message):
    torch = torch_or_skip()
    with pytest.raises(ValueError, match=f"^{message}$"):
        torch.optim.Adafactor([torch.ones(2, requires_grad=True)], **kw)
    with pytest.raises(ValueError, match=f"^{message}$"):
        gt.optim.Adafactor([gt.ones(2, requires_grad=True)], **kw)


@pytest.mark.first_pass
def test_adafactor_bad_types_refused():
    w = gt.ones(2, requires_grad=True)
    with pytest.raises(TypeError, match=r"eps must be a pair .* got 0.001"):
        gt.optim.Adafactor([w], eps=1e-3)
    with pytest.raises(TypeError, match="Adafactor: lr must be a number, got 'fast'"):
        gt.optim.Adafactor([w], lr="fast")
    with pytest.raises(TypeError, match="maximize must be True or False, got 1"):
        gt.optim.Adafactor([w], maximize=1)
    with pytest.raises(TypeError, match="foreach must be None, True or False, got 'yes'"):
        gt.optim.Adafactor([w], foreach="yes")
    opt = gt.optim.Adafactor([w])
    with pytest.raises(ValueError, match="Adafactor: invalid lr -0.5: it must be >= 0"):
        opt.add_param_group({"params": [gt.ones(1, requires_grad=True)], "lr": -0.5})


# ---- LBFGS -------------------------------------------------------------------------------------
def problem(fw, name, dtype, shard=False):
    """Parameters and a loss function: Rosenbrock, a small least-squares, a tiny tanh MLP."""
    rng = np.random.default_rng(0)
    if name == "rosenbrock":
        params = [fw.tensor(np.array([-1.5, 2.0], dtype=dtype))]

        def loss(ps):
            x = ps[0]
            return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    elif name == "lsq":
        a, b = fw.tensor(rng.standard_normal((10, 4)).astype(dtype)), fw.tensor(rng.standard_normal(10).astype(dtype))
        params = [fw.tensor(np.zeros(4, dtype=dtype))]

        def loss(ps):
            return ((a @ ps[0] - b) ** 2).mean()
    else:
        x = fw.tensor(rng.standard_normal((12, 4)).astype(dtype))
        y = fw.tensor(rng.standard_normal((12, 2)).astype(dtype))
        params = [fw.tensor(rng.standard_normal(s).astype(dtype) * 0.5) for s in [(4, 5), (5,), (5, 2), (2,)]]

        def loss(ps):
            return (((x @ ps[0] + ps[1]).tanh() @ ps[2] + ps[3] - y) ** 2).mean()
    if shard and fw is gt:
        params[0] = params[0].shard(0)   # spread over the devices where GT_DEVICES > 1
    return [p.requires_grad_() for p in params], loss


class LbRun:
    def __init__(self, fw, name, kw, dtype="float64", shard=False, extra=None):
        self.fw = fw
        self.params, self.loss = problem(fw, name, dtype, shard)
        self.opt = fw.optim.LBFGS(self.params + (extra or []), **kw)

    def closure(self):
        self.opt.zero_grad()
        loss = self.loss(self.params)
        loss.backward()
        return loss

    def step(self):
        first = self.opt.step(self.closure)
        first = float(first.detach() if self.fw is not gt else first)
        return first, np.concatenate([to_numpy(self.fw, p).ravel() for p in self.params])

    def state(self):
        return self.opt.state[self.params[0]]


def assert_lbfgs_state_like_torch(ours, theirs, atol, rtol=1e-8):
    mine, saved = ours.opt.state_dict(), theirs.opt.state_dict()
    assert sorted(mine["state"]) == sorted(saved["state"]) == [0]
    a, b = mine["state"][0], saved["state"][0]
    assert sorted(a) == sorted(b)
    assert a["func_evals"] == b["func_evals"] and a["n_iter"] == b["n_iter"]
    for key in ("d", "prev_flat_grad", "t", "H_diag", "prev_loss"):
        np.testing.assert_allclose(np.asarray(a[key], dtype=float), np.asarray(b[key], dtype=float),
                                   rtol=rtol, atol=atol, err_msg=key)
    for key in ("old_dirs", "old_stps", "ro", "al"):
        if key in b:
            assert len(a[key]) == len(b[key]), key
            for x, y in zip(a[key], b[key]):
                assert (x is None) == (y is None), key
                if y is not None:
                    np.testing.assert_allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float),
                                               rtol=rtol, atol=atol, err_msg=key)
    assert [{k: v for k, v in g.items()} for g in mine["param_groups"]] == saved["param_groups"]


LB_CASES = [
    ("rosenbrock", dict(line_search_fn="strong_wolfe")),
    ("rosenbrock", dict(lr=0.5, max_iter=7, history_size=3)),
    ("rosenbrock", dict(line_search_fn="strong_wolfe", history_size=2, max_iter=6)),
    ("lsq", dict()),
    ("lsq", dict(lr=0.5, max_iter=7, history_size=3, max_eval=6)),
    ("mlp", dict(max_iter=5)),
    ("mlp", dict(line_search_fn="strong_wolfe", max_iter=5, history_size=3)),
    ("mlp", dict(lr=0.3, max_iter=4, tolerance_change=1e-5)),
]


@pytest.mark.parametrize("name,kw", LB_CASES, ids=[f"{n}-{'-'.join(kw) or 'defaults'}" for n, kw in LB_CASES])
def test_lbfgs_trajectory_matches_torch_float64(name, kw):
    torch = torch_or_skip()
    ours, theirs = LbRun(gt, name, kw, shard=True), LbRun(torch, name, kw)
    # spread over several devices, the flat gradient stays sharded and its dot products are
    # per-device products summed across devices, where one device's BLAS dot may fuse them:
    # the last bits differ, and Rosenbrock's valley magnifies them to about 1e-9 in four steps
    tol = 1e-10 if get_mesh().size == 1 else 1e-8
    for step in range(4):
        (loss_a, a), (loss_b, b) = ours.step(), theirs.step()
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"step {step}")
        assert loss_a == pytest.approx(loss_b, rel=max(tol, 1e-9), abs=1e-14)
    assert ours.params[0].dtype == gt.float64
    if sharded_mesh():
        assert ours.params[0].placement == gt.Shard(0)
    # the gradients in the state magnify those last-bit differences by Rosenbrock's curvature
    assert_lbfgs_state_like_torch(ours, theirs, atol=1e-9 if tol < 1e-9 else 1e-7, rtol=tol * 100)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_float32_follows_torch(line_search_fn):
    # gt keeps the step's scalars as Python floats, torch as float32 0-d tensors: the paths part
    # by float32 rounding only
    torch = torch_or_skip()
    kw = dict(line_search_fn=line_search_fn, max_iter=5)
    ours, theirs = LbRun(gt, "mlp", kw, "float32"), LbRun(torch, "mlp", kw, "float32")
    for step in range(2):
        (_, a), (_, b) = ours.step(), theirs.step()
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4, err_msg=f"step {step}")
    assert ours.opt.state_dict()["state"][0]["d"].dtype == np.float32


def test_lbfgs_torch_state_dict_loads_and_continues():
    torch = torch_or_skip()
    kw = dict(line_search_fn="strong_wolfe", max_iter=4, history_size=3)
    ours, theirs = LbRun(gt, "mlp", kw), LbRun(torch, "mlp", kw)
    for _ in range(2):
        theirs.step()
    with gt.no_grad():
        for p, q in zip(ours.params, theirs.params):
            p.copy_(gt.tensor(q.detach().numpy()))
    ours.opt.load_state_dict(theirs.opt.state_dict())
    assert ours.state()["n_iter"] == theirs.state()["n_iter"] and isinstance(ours.state()["t"], (int, float))
    assert ours.state()["ro"][0].dtype == gt.float64 and isinstance(ours.state()["d"], gt.Tensor)
    for step in range(2):
        (_, a), (_, b) = ours.step(), theirs.step()
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=f"after load, step {step}")
    assert_lbfgs_state_like_torch(ours, theirs, atol=1e-9)


def test_lbfgs_state_dict_round_trip_is_a_copy():
    kw = dict(max_iter=3, history_size=2)
    ours, resumed = LbRun(gt, "lsq", kw), LbRun(gt, "lsq", kw)
    ours.step()
    saved = ours.opt.state_dict()
    with gt.no_grad():
        resumed.params[0].copy_(ours.params[0])
    resumed.opt.load_state_dict(saved)
    saved["state"][0]["d"].fill(np.nan)
    saved["state"][0]["old_dirs"][0].fill(np.nan)
    for _ in range(2):
        np.testing.assert_array_equal(resumed.step()[1], ours.step()[1])


def test_lbfgs_load_state_dict_errors_load_nothing():
    ours = LbRun(gt, "mlp", dict(max_iter=2))
    ours.step()
    saved = ours.opt.state_dict()
    before = ours.state()["d"].numpy().copy()
    bad = dict(saved, state={0: dict(saved["state"][0], d=np.zeros(3))})
    with pytest.raises(ValueError, match=r"'d' has shape \(3,\); the parameters have 37 elements"):
        ours.opt.load_state_dict(bad)
    bad = dict(saved, state={0: dict(saved["state"][0], old_dirs=[np.zeros((37, 1))])})
    with pytest.raises(ValueError, match="'old_dirs' has shape"):
        ours.opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="LBFGS has one"):
        ours.opt.load_state_dict(dict(saved, param_groups=saved["param_groups"] * 2))
    np.testing.assert_array_equal(ours.state()["d"].numpy(), before)


def test_lbfgs_parameter_without_grad_and_early_stop_match_torch():
    torch = torch_or_skip()
    results = []
    for fw in (gt, torch):
        unused = fw.ones(3, dtype=fw.float64, requires_grad=True)   # no grad: zeros in the flat gradient
        run = LbRun(fw, "lsq", dict(max_iter=6), extra=[unused])
        results.append((run.step(), to_numpy(fw, unused), run.state()["func_evals"], run.state()["n_iter"]))
        # at the minimum: max|g| <= tolerance_grad, one evaluation, no iteration
        run.opt.param_groups[0]["tolerance_grad"] = 1e3
        evals, iters = run.state()["func_evals"], run.state()["n_iter"]
        run.step()
        assert run.state()["func_evals"] == evals + 1 and run.state()["n_iter"] == iters
    (ours, unused_a, evals_a, iters_a), (theirs, unused_b, evals_b, iters_b) = results
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12, atol=1e-14)
    assert ours[0] == pytest.approx(theirs[0], rel=1e-12)
    np.testing.assert_array_equal(unused_a, np.ones(3))
    assert (evals_a, iters_a) == (evals_b, iters_b)


def test_lbfgs_step_returns_first_loss_and_closure_runs_with_grad():
    torch = torch_or_skip()
    counts = []
    for fw in (gt, torch):
        w = fw.tensor([1.0, -2.0], dtype=fw.float64, requires_grad=True)
        opt = fw.optim.LBFGS([w], max_iter=3)
        grad_modes = []

        def closure():
            grad_modes.append(fw.is_grad_enabled())
            opt.zero_grad()
            loss = (w * (w + 1)).sum()
            loss.backward()
            return loss

        with fw.no_grad():
            first = opt.step(closure)
        assert float(first.detach() if fw is torch else first) == 4.0 and all(grad_modes)
        counts.append((len(grad_modes), opt.state[w]["func_evals"], opt.state[w]["n_iter"], to_numpy(fw, w)))
    assert counts[0][:3] == counts[1][:3] and counts[0][0] > 1
    np.testing.assert_allclose(counts[0][3], counts[1][3], rtol=1e-12)


@pytest.mark.first_pass
def test_lbfgs_refuses_parameter_groups_as_torch():
    torch = torch_or_skip()
    message = r"^LBFGS doesn't support per-parameter options \(parameter groups\)$"
    for fw in (gt, torch):
        a, b = fw.ones(2, requires_grad=True), fw.ones(3, requires_grad=True)
        with pytest.raises(ValueError, match=message):
            fw.optim.LBFGS([{"params": [a]}, {"params": [b], "lr": 0.1}])
    opt = gt.optim.LBFGS([gt.ones(2, requires_grad=True)])
    with pytest.raises(ValueError, match=message):
        opt.add_param_group({"params": [gt.ones(1, requires_grad=True)]})
    assert len(opt.param_groups) == 1


@pytest.mark.first_pass
def test_lbfgs_defaults_and_bad_hyperparameters_as_torch():
    torch = torch_or_skip()
    ours = gt.optim.LBFGS([gt.ones(2, requires_grad=True)], max_iter=9).param_groups[0]
    theirs = torch.optim.LBFGS([torch.ones(2, requires_grad=True)], max_iter=9).param_groups[0]
    assert {k: v for k, v in ours.items() if k != "params"} == {k: v for k, v in theirs.items() if k != "params"}
    assert ours["max_eval"] == 11
    for fw in (gt, torch):
        with pytest.raises(ValueError, match="^Invalid learning rate: -1$"):
            fw.optim.LBFGS([fw.ones(2, requires_grad=True)], lr=-1)
    with pytest.raises(TypeError, match="LBFGS: max_iter must be a number, got '20'"):
        gt.optim.LBFGS([gt.ones(2, requires_grad=True)], max_iter="20")
    with pytest.raises(TypeError, match="line_search_fn must be None or 'strong_wolfe', got 1"):
        gt.optim.LBFGS([gt.ones(2, requires_grad=True)], line_search_fn=1)


def test_lbfgs_unknown_line_search_and_missing_closure():
    torch = torch_or_skip()
    for fw in (gt, torch):
        w = fw.ones(2, requires_grad=True)
        opt = fw.optim.LBFGS([w], line_search_fn="backtracking")

        def closure():
            opt.zero_grad()
            loss = (w * w).sum()
            loss.backward()
            return loss

        with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
            opt.step(closure)
        with pytest.raises(TypeError):
            opt.step()
    with pytest.raises(TypeError, match="LBFGS.step needs a closure"):
        gt.optim.LBFGS([gt.ones(2, requires_grad=True)]).step(None)


def test_lbfgs_solves_least_squares():
    run = LbRun(gt, "lsq", dict(line_search_fn="strong_wolfe", tolerance_change=1e-14, tolerance_grad=1e-12))
    run.step()
    rng = np.random.default_rng(0)   # problem()'s data
    a, b = rng.standard_normal((10, 4)), rng.standard_normal(10)
    np.testing.assert_allclose(run.params[0].numpy(), np.linalg.lstsq(a, b, rcond=None)[0], rtol=1e-6, atol=1e-8)
    assert math.isfinite(run.state()["prev_loss"])
