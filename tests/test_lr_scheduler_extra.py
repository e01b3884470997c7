"""torch's other lr schedulers (gt/optim/lr_schedulers_extra.py, lr_schedulers_cyclic.py,
lr_scheduler_plateau.py) stepped beside torch's: every lr, momentum and beta1 the same to 1e-12."""

import copy
import math

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch", reason="torch not installed: pip install torch==2.13.0")
# No optimizer.step() between the scheduler steps (torch's first one imports its compiler, seconds):
# torch's reminder to call it first is silenced.
# learning rates are Python floats: no GT_* setting changes them, so the file runs in the first pass only
pytestmark = [pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before"),
              pytest.mark.first_pass]

STEPS = 40
RTOL = 1e-12


def make_opt(fw, kind):
    """Two groups with different lrs: SGD with momentum, or Adam."""
    w, b = fw.zeros(2, requires_grad=True), fw.zeros(1, requires_grad=True)
    groups = [{"params": [w]}, {"params": [b], "lr": 0.02}]
    if kind == "sgd":
        return fw.optim.SGD(groups, lr=0.1, momentum=0.9)
    return fw.optim.Adam(groups, lr=0.1, betas=(0.9, 0.999))


def row(sched, opt):
    """What a step leaves: get_last_lr(), each group's lr, and its momentum (Adam: beta1)."""
    momenta = [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]
    return list(sched.get_last_lr()) + [g["lr"] for g in opt.param_groups] + momenta


def resumed(fw, kind, build, opt, sched):
    """A fresh optimizer and scheduler that load the state dicts (copies, as from a checkpoint)."""
    opt_state, sched_state = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    opt2 = make_opt(fw, kind)
    sched2 = build(fw.optim.lr_scheduler, opt2)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    return opt2, sched2


def trace(fw, kind, build, steps=STEPS, metrics=None, resume_at=None):
    opt = make_opt(fw, kind)
    sched = build(fw.optim.lr_scheduler, opt)
    rows = []
    for i in range(steps):
        rows.append(row(sched, opt))
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[i])
        if i == resume_at:
            opt, sched = resumed(fw, kind, build, opt, sched)
    rows.append(row(sched, opt))
    return np.array(rows)


def assert_like_torch(kind, build, steps=STEPS, metrics=None, rtol=RTOL):
    expected = trace(torch, kind, build, steps, metrics)
    np.testing.assert_allclose(trace(gt, kind, build, steps, metrics), expected, rtol=rtol, atol=0)
    # a checkpoint mid-way, loaded into a fresh optimizer and scheduler, continues the same sequence
    np.testing.assert_allclose(trace(gt, kind, build, steps, metrics, resume_at=steps // 3), expected,
                               rtol=rtol, atol=0)


CASES = {
    "multistep": lambda S, o: S.MultiStepLR(o, milestones=[3, 7, 7, 12], gamma=0.5),
    "multistep-default": lambda S, o: S.MultiStepLR(o, milestones=(5, 20)),
    "exponential": lambda S, o: S.ExponentialLR(o, gamma=0.9),
    "multiplicative": lambda S, o: S.MultiplicativeLR(o, lambda e: 0.95),
    "multiplicative-per-group": lambda S, o: S.MultiplicativeLR(o, [lambda e: 0.9, lambda e: 1 - 0.01 * e]),
    "constant": lambda S, o: S.ConstantLR(o),
    "constant-0.5": lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=4),
    "linear": lambda S, o: S.LinearLR(o),
    "linear-warmup": lambda S, o: S.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=10),
    "linear-decay": lambda S, o: S.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=30),
    "polynomial": lambda S, o: S.PolynomialLR(o),
    "polynomial-2": lambda S, o: S.PolynomialLR(o, total_iters=30, power=2.0),
    "polynomial-0.5": lambda S, o: S.PolynomialLR(o, total_iters=10, power=0.5),
    "warm-restarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=5),
    "warm-restarts-mult": lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001),
    "sequential": lambda S, o: S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=5), S.ExponentialLR(o, 0.9)],
                                              milestones=[5]),
    "sequential-3": lambda S, o: S.SequentialLR(
        o, [S.ConstantLR(o, 0.5, total_iters=2), S.MultiStepLR(o, [3, 6]), S.PolynomialLR(o, 12, 2.0)], [4, 15]),
    "sequential-cosine": lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, 0.01, total_iters=5), S.CosineAnnealingLR(o, T_max=20, eta_min=1e-3)], milestones=[5]),
    "chained-lambda": lambda S, o: S.ChainedScheduler([S.ExponentialLR(o, 0.9), S.LambdaLR(o, lambda e: 0.5)]),
    "chained-single-step": lambda S, o: S.ChainedScheduler([S.StepLR(o, 3, 0.5)]),
    "sequential-step-lambda": lambda S, o: S.SequentialLR(
        o, [S.LambdaLR(o, lambda e: (e + 1) / 5), S.StepLR(o, 3, 0.5), S.ExponentialLR(o, 0.9)], [5, 12]),
    "chained": lambda S, o: S.ChainedScheduler([S.ConstantLR(o, 0.1, total_iters=2), S.ExponentialLR(o, 0.9)]),
    "chained-optimizer": lambda S, o: S.ChainedScheduler(
        [S.LinearLR(o, 0.2, total_iters=8), S.MultiStepLR(o, [10, 20], 0.5), S.PolynomialLR(o, 35)], optimizer=o),
    "onecycle": lambda S, o: S.OneCycleLR(o, max_lr=0.5, total_steps=STEPS),
    "onecycle-linear": lambda S, o: S.OneCycleLR(o, max_lr=[0.5, 0.1], epochs=4, steps_per_epoch=10,
                                                 anneal_strategy="linear", pct_start=0.25),
    "onecycle-3phase": lambda S, o: S.OneCycleLR(o, 0.3, total_steps=STEPS, three_phase=True, div_factor=10.0,
                                                 final_div_factor=100.0, base_momentum=0.8, max_momentum=0.92),
    "onecycle-no-momentum": lambda S, o: S.OneCycleLR(o, 0.3, total_steps=STEPS + 5, cycle_momentum=False),
    "cyclic": lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4),
    "cyclic-triangular2": lambda S, o: S.CyclicLR(o, [0.01, 0.001], [0.1, 0.05], step_size_up=3, step_size_down=6,
                                                  mode="triangular2", base_momentum=0.7, max_momentum=0.95),
    "cyclic-exp-range": lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=5, mode="exp_range", gamma=0.95),
    "cyclic-scale-fn": lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=5, scale_fn=lambda x: 0.5 ** x,
                                               scale_mode="iterations", cycle_momentum=False),
}


# momentum and beta1 only move with OneCycleLR and CyclicLR: Adam is stepped beside torch's for those
@pytest.mark.parametrize("name,kind", [(name, "sgd") for name in CASES]
                         + [(name, "adam") for name in CASES if name.startswith(("onecycle", "cyclic", "chained"))])
def test_schedulers_match_torch(name, kind):
    assert_like_torch(kind, CASES[name])


PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.95, 0.9, 0.9, 0.91, 0.85, 0.85, 0.8] * 4 + [0.1] * 5
PLATEAU = {
    "default": dict(),
    "min-rel": dict(factor=0.5, patience=1),
    "min-abs-cooldown": dict(factor=0.5, patience=0, threshold=0.02, threshold_mode="abs", cooldown=2),
    "max-rel-min-lr": dict(mode="max", factor=0.3, patience=2, min_lr=[0.004, 0.001]),
    "max-abs-eps": dict(mode="max", factor=0.9, patience=0, threshold_mode="abs", min_lr=0.015, eps=1e-3),
}


@pytest.mark.parametrize("name,kind", [(name, "sgd") for name in PLATEAU] + [("max-rel-min-lr", "adam")])
def test_reduce_on_plateau_matches_torch(name, kind):
    kw = PLATEAU[name]
    assert_like_torch(kind, lambda S, o: S.ReduceLROnPlateau(o, **kw), steps=len(PLATEAU_METRICS),
                      metrics=PLATEAU_METRICS)


def test_plateau_takes_a_one_element_tensor_and_keeps_its_counters():
    opt = make_opt(gt, "sgd")
    sched = gt.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, cooldown=1)
    sched.step(gt.tensor([2.0]))
    sched.step(gt.tensor(3.0))
    assert sched.get_last_lr() == pytest.approx([0.01, 0.002], rel=1e-12)
    assert sched.in_cooldown and sched.best == 2.0 and sched.last_epoch == 2


@pytest.mark.parametrize("T_mult", [1, 2])
def test_warm_restarts_fractional_epochs_match_torch(T_mult):
    def lrs(fw):
        opt = make_opt(fw, "sgd")
        sched = fw.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=4, T_mult=T_mult, eta_min=0.002)
        out = []
        for epoch in range(12):
            for batch in range(4):
                sched.step(epoch + batch / 4)
                out.append(sched.get_last_lr() + [sched.T_cur, sched.T_i, sched.last_epoch])
        return np.array(out)

    np.testing.assert_allclose(lrs(gt), lrs(torch), rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("build", [
    lambda S, o: S.ExponentialLR(o, 0.9), lambda S, o: S.MultiStepLR(o, [2, 5, 5], 0.5),
    lambda S, o: S.LinearLR(o, 0.2, 0.8, 6), lambda S, o: S.ConstantLR(o, 0.4, 3),
    lambda S, o: S.PolynomialLR(o, 6, 1.5), lambda S, o: S.MultiplicativeLR(o, lambda e: 0.9)])
def test_step_with_epoch_uses_the_closed_form_and_warns(build):
    def lrs(fw):
        opt = make_opt(fw, "sgd")
        sched = build(fw.optim.lr_scheduler, opt)
        out = []
        for epoch in [1, 4, 2, 7, 0, 9]:
            with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
                sched.step(epoch)
            out.append(sched.get_last_lr())
        return np.array(out)

    np.testing.assert_allclose(lrs(gt), lrs(torch), rtol=RTOL, atol=0)


@pytest.mark.parametrize("build", [
    lambda S, o: S.ExponentialLR(o, 0.9, last_epoch=7), lambda S, o: S.MultiStepLR(o, [9, 12], last_epoch=7),
    lambda S, o: S.LinearLR(o, 0.2, total_iters=12, last_epoch=7), lambda S, o: S.PolynomialLR(o, 20, last_epoch=7),
    lambda S, o: S.CosineAnnealingWarmRestarts(o, 5, 2, last_epoch=7),
    lambda S, o: S.CyclicLR(o, 0.01, 0.1, 4, last_epoch=7),
    lambda S, o: S.OneCycleLR(o, 0.3, total_steps=40, last_epoch=7)])
def test_last_epoch_resume_matches_torch(build):
    def lrs(fw):
        opt = make_opt(fw, "sgd")
        for group in opt.param_groups:
            group.update(initial_lr=group["lr"], max_lr=0.3, min_lr=1e-5, max_momentum=0.95, base_momentum=0.85)
        sched = build(fw.optim.lr_scheduler, opt)
        out = []
        for _ in range(20):
            out.append(row(sched, opt))
            sched.step()
        return np.array(out)

    np.testing.assert_allclose(lrs(gt), lrs(torch), rtol=RTOL, atol=0)


def test_onecycle_refuses_to_step_past_total_steps():
    opt = make_opt(gt, "sgd")
    sched = gt.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="tried to step 4 times. The specified number of total steps is 3"):
        sched.step()


def test_names_and_warnings():
    S = gt.optim.lr_scheduler
    assert issubclass(S._LRScheduler, S.LRScheduler) and S._LRScheduler.__name__ == "_LRScheduler"
    for name in ["MultiStepLR", "ReduceLROnPlateau", "SequentialLR", "ChainedScheduler", "OneCycleLR"]:
        assert issubclass(getattr(S, name), S.LRScheduler), name
    sched = S.ExponentialLR(make_opt(gt, "sgd"), 0.5)
    with pytest.warns(UserWarning, match="use `get_last_lr\\(\\)`"):
        assert sched.get_lr() == [0.05, 0.01]


def _bad(S, o):
    other = make_opt(gt, "sgd")
    return {
        "MultiStepLR: milestones must be an iterable": (TypeError, lambda: S.MultiStepLR(o, milestones=5)),
        "MultiplicativeLR: expected 2 lr_lambdas": (ValueError, lambda: S.MultiplicativeLR(o, [lambda e: 1.0])),
        "lr_lambda should be a function, but got float": (TypeError, lambda: S.MultiplicativeLR(o, 0.9)),
        "between 0 and 1, got 1.5": (ValueError, lambda: S.ConstantLR(o, factor=1.5)),
        "greater than 0 and less or equal to 1, got 0": (ValueError, lambda: S.LinearLR(o, start_factor=0)),
        "ending multiplicative factor .* got -0.1": (ValueError, lambda: S.LinearLR(o, end_factor=-0.1)),
        "needs a gt.optim.Optimizer, got list": (TypeError, lambda: S.ExponentialLR([o], 0.9)),
        "factor should be < 1.0, got 1.0": (ValueError, lambda: S.ReduceLROnPlateau(o, factor=1.0)),
        "mode 'lowest' is unknown": (ValueError, lambda: S.ReduceLROnPlateau(o, mode="lowest")),
        "threshold mode 'relative' is unknown": (ValueError, lambda: S.ReduceLROnPlateau(o, threshold_mode="relative")),
        "min_lr must have the same length .* min_lr has 3 values": (
            ValueError, lambda: S.ReduceLROnPlateau(o, min_lr=[0, 0, 0])),
        "metrics must be a number or a 1-element tensor, got 'x'": (
            ValueError, lambda: S.ReduceLROnPlateau(o).step("x")),     # torch's float("x") raises ValueError
        "expected positive integer T_0, but got 0": (ValueError, lambda: S.CosineAnnealingWarmRestarts(o, 0)),
        "integer T_mult >= 1, but got 1.5": (ValueError, lambda: S.CosineAnnealingWarmRestarts(o, 2, T_mult=1.5)),
        "float or int eta_min, but got '0'": (ValueError, lambda: S.CosineAnnealingWarmRestarts(o, 2, eta_min="0")),
        "non-negative epoch, but got -1": (ValueError, lambda: S.CosineAnnealingWarmRestarts(o, 2).step(-1)),
        "positive integer total_steps, but got 0": (ValueError, lambda: S.OneCycleLR(o, 0.1, total_steps=0)),
        "positive integer epochs, but got 2.0": (ValueError, lambda: S.OneCycleLR(o, 0.1, epochs=2.0, steps_per_epoch=3)),
        "positive integer steps_per_epoch": (ValueError, lambda: S.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=-1)),
        "either total_steps OR": (ValueError, lambda: S.OneCycleLR(o, 0.1, epochs=2)),
        "float between 0 and 1 pct_start, but got 1": (ValueError, lambda: S.OneCycleLR(o, 0.1, 10, pct_start=1)),
        "anneal_strategy must be one of 'cos' or 'linear', instead got 'exp'": (
            ValueError, lambda: S.OneCycleLR(o, 0.1, 10, anneal_strategy="exp")),
        "max_lr must have the same length .* max_lr has 1 values, param_groups has 2": (
            ValueError, lambda: S.OneCycleLR(o, [0.1], 10)),
        "mode 'square' is invalid and scale_fn is None": (ValueError, lambda: S.CyclicLR(o, 0.01, 0.1, mode="square")),
        "step_size_up \\+ step_size_down must be > 0, got 0.0": (ValueError, lambda: S.CyclicLR(o, 0.01, 0.1, 0)),
        "SequentialLR expects at least one scheduler": (ValueError, lambda: S.SequentialLR(o, [], [])),
        "number of schedulers 2 and the number of milestones to be equal to 2": (
            ValueError, lambda: S.SequentialLR(o, [S.ExponentialLR(o, 0.9)] * 2, [1, 2])),
        "SequentialLR does not support `ReduceLROnPlateau`": (
            ValueError, lambda: S.SequentialLR(o, [S.ReduceLROnPlateau(o)], [])),
        "ChainedScheduler expects all schedulers to belong to the same optimizer": (
            ValueError, lambda: S.ChainedScheduler([S.ExponentialLR(o, 0.9), S.ExponentialLR(other, 0.9)])),
        "ChainedScheduler at index 0 should have `optimizer`": (TypeError, lambda: S.ChainedScheduler([1], o)),
        "ChainedScheduler expects at least one scheduler to be chained": (
            ValueError, lambda: S.ChainedScheduler([])),
    }


@pytest.mark.parametrize("match", list(_bad(gt.optim.lr_scheduler, make_opt(gt, "sgd"))))
def test_bad_arguments_are_refused(match):
    exc, make = _bad(gt.optim.lr_scheduler, make_opt(gt, "sgd"))[match]
    with pytest.raises(exc, match=match):
        make()


def test_cycle_momentum_needs_momentum_or_betas():
    class Plain(gt.optim.Optimizer):
        def __init__(self, params, lr):
            super().__init__(params, dict(lr=lr))

    opt = Plain([gt.zeros(1, requires_grad=True)], lr=0.1)
    for make in (lambda: gt.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1),
                 lambda: gt.optim.lr_scheduler.OneCycleLR(opt, 0.1, 10)):
        with pytest.raises(ValueError, match="must support momentum or beta1 .* Plain has neither"):
            make()
    sched = gt.optim.lr_scheduler.OneCycleLR(opt, 0.1, 10, cycle_momentum=False)
    assert math.isclose(sched.get_last_lr()[0], 0.1 / 25, rel_tol=1e-12)
