"""gt.optim, its schedulers and gradient clipping against torch, on identical parameters and data."""

import math

import numpy as np
import pytest

import gt
import gt.nn.utils

torch = pytest.importorskip("torch", reason="torch not installed: pip install torch==2.13.0")

STEPS = 5
TOL = {np.float64: dict(rtol=1e-5, atol=1e-8), np.float32: dict(rtol=1e-4, atol=1e-6)}

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, betas=(0.85, 0.995), weight_decay=0.1)),
]


def arrays(dtype, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"w1": (4, 8), "b1": (8,), "w2": (8, 3), "b2": (3,), "unused": (2, 2)}
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    return params, rng.standard_normal((16, 4)).astype(dtype), rng.standard_normal((16, 3)).astype(dtype)


def run(fw, name, kw, dtype, groups=None, hook=None, skip_b2_on_odd_steps=False):
    """Train a small MLP for STEPS steps with framework ``fw`` (gt or torch: the same API).

    ``hook(opt)``, if given, returns a function called as ``f(opt, step)`` after every step.
    """
    init, x_arr, y_arr = arrays(dtype)
    p = {k: fw.tensor(v.copy(), requires_grad=True) for k, v in init.items()}
    x, y = fw.tensor(x_arr), fw.tensor(y_arr)
    opt = getattr(fw.optim, name)(groups(p) if groups else list(p.values()), **kw)
    between = hook(opt) if hook else None
    for step in range(STEPS):
        opt.zero_grad()
        out = (x @ p["w1"] + p["b1"]).relu() @ p["w2"]
        if not (skip_b2_on_odd_steps and step % 2):  # b2 gets no grad on odd steps: skipped, its step count lags
            out = out + p["b2"]
        ((out - y) ** 2).mean().backward()
        opt.step()
        if between:
            between(opt, step)
    return {k: (v.detach().numpy() if fw is torch else v.numpy()) for k, v in p.items()}


def assert_same(ours, theirs, dtype):
    for k in theirs:
        np.testing.assert_allclose(ours[k], theirs[k], err_msg=k, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kw", CASES)
def test_optimizer_matches_torch(name, kw, dtype):
    ours, theirs = run(gt, name, kw, dtype), run(torch, name, kw, dtype)
    assert_same(ours, theirs, dtype)
    np.testing.assert_array_equal(ours["unused"], arrays(dtype)[0]["unused"])  # no grad: untouched
    assert not np.allclose(ours["w1"], arrays(dtype)[0]["w1"])


@pytest.mark.parametrize("name,kw", [c for c in CASES if c[1].get("momentum") or c[0] != "SGD"])
def test_param_sometimes_without_grad_matches_torch(name, kw):
    ours = run(gt, name, kw, np.float64, skip_b2_on_odd_steps=True)
    theirs = run(torch, name, kw, np.float64, skip_b2_on_odd_steps=True)
    assert_same(ours, theirs, np.float64)


def groups(p):
    # nanoGPT's habit: weight decay on matrices only; a larger lr for the head.
    return [{"params": [p["w1"]]}, {"params": [p["b1"], p["b2"]], "weight_decay": 0.0},
            {"params": [p["w2"]], "lr": 0.05}]


def change_lr(opt, step):
    for i, group in enumerate(opt.param_groups):
        group["lr"] *= 0.5 + 0.1 * i


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
                                     ("Adam", dict(lr=0.01, weight_decay=0.1)),
                                     ("AdamW", dict(lr=0.01, weight_decay=0.1))])
def test_param_groups_and_lr_changes_match_torch(name, kw, dtype):
    ours = run(gt, name, kw, dtype, groups=groups, hook=lambda opt: change_lr)
    theirs = run(torch, name, kw, dtype, groups=groups, hook=lambda opt: change_lr)
    assert_same(ours, theirs, dtype)


SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("CosineAnnealingLR", dict(T_max=7)),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01)),
    ("LambdaLR", dict(lr_lambda=lambda e: 0.95 ** e)),
    ("LambdaLR", dict(lr_lambda=[lambda e: 1 / (1 + e), lambda e: min(1.0, (e + 1) / 4)])),
]


@pytest.mark.parametrize("name,kw", SCHEDULERS)
def test_schedulers_match_torch(name, kw):
    def lrs(fw):
        w, b = fw.zeros(3, requires_grad=True), fw.zeros(1, requires_grad=True)
        opt = fw.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.02}], lr=0.1)
        sched = getattr(fw.optim.lr_scheduler, name)(opt, **kw)
        out = []
        for _ in range(3 * 7):
            out.append(sched.get_last_lr() + [g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step()
        return np.array(out)

    np.testing.assert_allclose(lrs(gt), lrs(torch), rtol=1e-9, atol=1e-12)


def test_scheduler_drives_adamw_like_torch():
    def hook(fw):
        def make(opt):
            sched = fw.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS - 1, eta_min=1e-3)
            return lambda opt, step: sched.step()
        return make

    ours = run(gt, "AdamW", dict(lr=0.05, weight_decay=0.1), np.float64, hook=hook(gt))
    theirs = run(torch, "AdamW", dict(lr=0.05, weight_decay=0.1), np.float64, hook=hook(torch))
    assert_same(ours, theirs, np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.0])
@pytest.mark.parametrize("max_norm", [0.3, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    rng = np.random.default_rng(7)
    grads = [rng.standard_normal(s).astype(dtype) for s in [(5, 4), (7,), (1,)]]

    def clip(fw, clip_fn):
        params = [fw.zeros(g.shape, dtype=getattr(fw, np.dtype(dtype).name), requires_grad=True) for g in grads]
        params.append(fw.zeros(2, requires_grad=True))  # grad None: skipped
        for p, g in zip(params, grads):
            p.grad = fw.tensor(g.copy())
        total = clip_fn(params, max_norm, norm_type=norm_type)
        to_np = (lambda t: t.detach().numpy()) if fw is torch else (lambda t: t.numpy())
        return to_np(total), [to_np(p.grad) for p in params[:-1]], params[-1].grad

    ours_total, ours, ours_none = clip(gt, gt.nn.utils.clip_grad_norm_)
    theirs_total, theirs, _ = clip(torch, torch.nn.utils.clip_grad_norm_)
    np.testing.assert_allclose(ours_total, theirs_total, **TOL[dtype])
    assert ours_total.dtype == theirs_total.dtype
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, **TOL[dtype])
    assert ours_none is None


def test_clip_grad_norm_nonfinite_like_torch():
    for fw, fn in [(gt, gt.nn.utils.clip_grad_norm_), (torch, torch.nn.utils.clip_grad_norm_)]:
        w = fw.zeros(3, requires_grad=True)
        w.grad = fw.tensor([1.0, float("nan"), 2.0])
        with pytest.raises(RuntimeError, match="non-finite"):
            fn([w], 1.0, error_if_nonfinite=True)
        assert math.isnan(float(fn([w], 1.0)))
        assert np.isnan(np.asarray(w.grad.tolist())).all()  # nan scales every grad, as in torch


def test_clip_grad_value_matches_torch():
    g = np.random.default_rng(8).standard_normal((4, 5)) * 2
    ours = gt.zeros(4, 5, dtype=gt.float64, requires_grad=True)
    theirs = torch.zeros(4, 5, dtype=torch.float64, requires_grad=True)
    ours.grad, theirs.grad = gt.tensor(g), torch.tensor(g)
    gt.nn.utils.clip_grad_value_([ours], 0.7)
    torch.nn.utils.clip_grad_value_([theirs], 0.7)
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
