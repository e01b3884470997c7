"""StepLR, CosineAnnealingLR and LambdaLR in torch's chainable form (gt/optim/lr_scheduler.py), and
every other schedule of gt, stepped beside torch's: the same floats to the bit (``==``), with lrs
changed by hand, chained (ChainedScheduler, SequentialLR), stepped with an epoch, resumed."""

import copy
import math

import pytest

import gt

torch = pytest.importorskip("torch", reason="torch not installed: pip install torch==2.13.0")
# No optimizer.step() between the scheduler steps: torch's reminder to call it first is silenced.
# learning rates are Python floats: no GT_* setting changes them, so the file runs in the first pass only
pytestmark = [pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before"),
              pytest.mark.first_pass]

STEPS = 120
BY_HAND = {40: lambda lr, i: lr * 0.5, 85: lambda lr, i: 0.07 if i == 0 else lr}   # step -> new lr of group i


def make_opt(fw):
    """Two groups with different lrs."""
    w, b = fw.zeros(2, requires_grad=True), fw.zeros(1, requires_grad=True)
    return fw.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.02}], lr=0.1, momentum=0.9)


def row(sched, opt):
    return list(sched.get_last_lr()) + [g["lr"] for g in opt.param_groups] + [getattr(sched, "last_epoch", None)]


def lrs(fw, build, steps=STEPS, by_hand=None, resume_at=None):
    """Every step's ``row``; ``by_hand``: lrs set between steps; ``resume_at``: a fresh optimizer and
    scheduler load (copies of) the state dicts there, as from a checkpoint."""
    opt = make_opt(fw)
    sched = build(fw.optim.lr_scheduler, opt)
    out = [row(sched, opt)]
    for i in range(steps):
        sched.step()
        if i in (by_hand or {}):
            for k, group in enumerate(opt.param_groups):
                group["lr"] = by_hand[i](group["lr"], k)
        if i == resume_at:
            opt_state, sched_state = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
            opt = make_opt(fw)
            sched = build(fw.optim.lr_scheduler, opt)
            opt.load_state_dict(opt_state)
            sched.load_state_dict(sched_state)
        out.append(row(sched, opt))
    return out


def warmup_cosine(epoch):
    return min(1.0, (epoch + 1) / 10) * 0.5 * (1 + math.cos(math.pi * epoch / STEPS))


CASES = {
    "step": lambda S, o: S.StepLR(o, step_size=3, gamma=0.5),
    "step-7": lambda S, o: S.StepLR(o, 7),
    "step-1": lambda S, o: S.StepLR(o, 1, gamma=0.97),
    "cosine": lambda S, o: S.CosineAnnealingLR(o, T_max=10),
    "cosine-eta": lambda S, o: S.CosineAnnealingLR(o, T_max=7, eta_min=1e-3),
    "cosine-1": lambda S, o: S.CosineAnnealingLR(o, T_max=1),
    "cosine-long": lambda S, o: S.CosineAnnealingLR(o, T_max=100, eta_min=0.005),
    "lambda": lambda S, o: S.LambdaLR(o, lambda e: 0.95 ** e),
    "lambda-groups": lambda S, o: S.LambdaLR(o, [lambda e: 1 / (1 + e), warmup_cosine]),
    "chained-step-exp": lambda S, o: S.ChainedScheduler([S.StepLR(o, 4, 0.5), S.ExponentialLR(o, 0.99)]),
    "chained-cosine-exp": lambda S, o: S.ChainedScheduler([S.CosineAnnealingLR(o, 9, 1e-3), S.ExponentialLR(o, 0.9)]),
    "chained-exp-cosine-step": lambda S, o: S.ChainedScheduler(
        [S.ExponentialLR(o, 0.98), S.CosineAnnealingLR(o, 25), S.StepLR(o, 10, 0.3)], optimizer=o),
    "chained-lambda-step": lambda S, o: S.ChainedScheduler([S.LambdaLR(o, lambda e: 0.9 ** e), S.StepLR(o, 5)]),
    "sequential-linear-cosine": lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, 0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=30, eta_min=1e-4)], milestones=[5]),
    "sequential-step-cosine-lambda": lambda S, o: S.SequentialLR(
        o, [S.StepLR(o, 3, 0.5), S.CosineAnnealingLR(o, 20), S.LambdaLR(o, lambda e: 0.9 ** e)], [10, 50]),
    # torch's other schedules, also to the bit
    "multistep": lambda S, o: S.MultiStepLR(o, milestones=[3, 7, 7, 30], gamma=0.5),
    "exponential": lambda S, o: S.ExponentialLR(o, gamma=0.97),
    "multiplicative": lambda S, o: S.MultiplicativeLR(o, lambda e: 0.99),
    "constant": lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=4),
    "linear": lambda S, o: S.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=50),
    "polynomial": lambda S, o: S.PolynomialLR(o, total_iters=60, power=2.0),
    "warm-restarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001),
    "cyclic": lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=7, mode="triangular2"),
    "onecycle": lambda S, o: S.OneCycleLR(o, max_lr=0.5, total_steps=STEPS + 1),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_lr_is_torchs_to_the_bit(name):
    assert lrs(gt, CASES[name]) == lrs(torch, CASES[name])


@pytest.mark.parametrize("name", [n for n in CASES if not n.startswith(("cyclic", "onecycle", "warm"))])
def test_lrs_changed_by_hand_carry_on_as_torchs(name):
    # CyclicLR, OneCycleLR, CosineAnnealingWarmRestarts set the lr from their own range: no carry-on
    assert lrs(gt, CASES[name], by_hand=BY_HAND) == lrs(torch, CASES[name], by_hand=BY_HAND)


@pytest.mark.parametrize("name", list(CASES))
def test_a_resumed_run_equals_the_uninterrupted_one(name):
    expected = lrs(torch, CASES[name], by_hand=BY_HAND)
    assert lrs(gt, CASES[name], by_hand=BY_HAND, resume_at=57) == expected


PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.95, 0.9, 0.9, 0.91, 0.85, 0.85, 0.8] * 4 + [0.1] * 5


@pytest.mark.parametrize("kw", [dict(), dict(factor=0.5, patience=1), dict(mode="max", factor=0.3, min_lr=[4e-3, 1e-3]),
                                dict(factor=0.5, patience=0, threshold=0.02, threshold_mode="abs", cooldown=2)])
def test_reduce_on_plateau_is_torchs_to_the_bit(kw):
    def run(fw):
        opt = make_opt(fw)
        sched = fw.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
        out = []
        for i, metric in enumerate(PLATEAU_METRICS):
            sched.step(metric)
            if i == 20:
                for group in opt.param_groups:
                    group["lr"] *= 0.7
            out.append(row(sched, opt))
        return out

    assert run(gt) == run(torch)


THREE = {"step": CASES["step"], "cosine": CASES["cosine-eta"], "lambda": CASES["lambda-groups"]}


@pytest.mark.parametrize("name", list(THREE) + ["step-7", "multistep", "exponential", "multiplicative", "constant",
                                                "linear", "polynomial", "cyclic", "onecycle"])
def test_step_with_an_epoch_warns_and_takes_the_closed_form_as_torchs(name):
    def run(fw):
        opt = make_opt(fw)
        sched = (THREE.get(name) or CASES[name])(fw.optim.lr_scheduler, opt)
        out = []
        for epoch in [1, 4, 2, 7, 0, 9, 30, 8]:
            if epoch == 30:
                sched.step()                # a plain step between two with an epoch
            else:
                with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)` was not necessary"):
                    sched.step(epoch)
            out.append(row(sched, opt))
        return out

    assert run(gt) == run(torch)


def stepped(fw, build, steps):
    opt = make_opt(fw)
    sched = build(fw.optim.lr_scheduler, opt)
    for _ in range(steps):
        sched.step()
    return sched, opt


def keys(state):
    """The keys of a state dict, and of the nested schedulers' (ChainedScheduler, SequentialLR)."""
    return sorted(state), [keys(s) for s in state.get("_schedulers", [])]


@pytest.mark.parametrize("name", list(THREE) + ["chained-cosine-exp", "sequential-step-cosine-lambda"])
def test_state_dict_has_torchs_keys_and_torchs_resumes_in_gt(name):
    build = CASES.get(name) or THREE[name]
    (ours, _), (theirs, torch_opt) = stepped(gt, build, 13), stepped(torch, build, 13)
    assert keys(ours.state_dict()) == keys(theirs.state_dict())
    sched, opt = stepped(gt, build, 0)
    for group, torch_group in zip(opt.param_groups, torch_opt.param_groups):
        group.update(lr=torch_group["lr"], initial_lr=torch_group["initial_lr"])
    sched.load_state_dict(copy.deepcopy(theirs.state_dict()))
    rows, expected = [row(sched, opt)], [row(theirs, torch_opt)]
    for _ in range(30):
        sched.step(), theirs.step()
        rows.append(row(sched, opt)), expected.append(row(theirs, torch_opt))
    assert rows == expected


# what gt's closed forms saved before they were chainable: no _step_count, _is_initial, lr_lambdas
OLD_STATES = {
    "step": {"step_size": 3, "gamma": 0.5, "base_lrs": [0.1, 0.02], "last_epoch": 13, "_last_lr": [0.00625, 0.00125]},
    "cosine": {"T_max": 7, "eta_min": 1e-3, "base_lrs": [0.1, 0.02], "last_epoch": 3,
               "_last_lr": [0.061514786230837566, 0.012613948872584987]},
    "lambda": {"base_lrs": [0.1, 0.02], "last_epoch": 4, "_last_lr": [0.020000000000000004, 0.009972609476841367]},
}


@pytest.mark.parametrize("name", list(THREE))
def test_a_state_dict_saved_by_the_closed_forms_still_loads(name):
    def resumed(fw, old):
        sched, opt = stepped(fw, THREE[name], 0)
        for group, lr in zip(opt.param_groups, old["_last_lr"]):
            group["lr"] = lr                        # as the optimizer's own state dict restores it
        if fw is torch and name == "lambda":
            old = dict(old, lr_lambdas=[None, None])    # torch's LambdaLR needs the key
        sched.load_state_dict(old)
        rows = [row(sched, opt)]
        for _ in range(20):
            sched.step()
            rows.append(row(sched, opt))
        return rows, sched

    (rows, sched), (expected, torch_sched) = resumed(gt, dict(OLD_STATES[name])), resumed(torch, OLD_STATES[name])
    assert rows == expected and rows[0][:2] == OLD_STATES[name]["_last_lr"]
    assert keys(sched.state_dict()) == keys(torch_sched.state_dict())


class Scaled:
    """A callable object: its ``__dict__`` is saved, as torch saves it."""

    def __init__(self, scale):
        self.scale = scale

    def __call__(self, epoch):
        return self.scale * 0.9 ** epoch


def test_lambda_state_dict_saves_callable_objects_as_torchs():
    states = []
    for fw in (gt, torch):
        sched = fw.optim.lr_scheduler.LambdaLR(make_opt(fw), [Scaled(0.5), lambda e: 1.0])
        sched.lr_lambdas[0].scale = 0.25
        state = sched.state_dict()
        fresh = fw.optim.lr_scheduler.LambdaLR(make_opt(fw), [Scaled(0.5), lambda e: 1.0])
        fresh.load_state_dict(state)
        fresh.step()
        states.append((state["lr_lambdas"], fresh.lr_lambdas[0].scale, fresh.get_last_lr(), sorted(state)))
    assert states[0] == states[1] and states[0][0] == [{"scale": 0.25}, None]


def test_an_older_chainable_state_with_in_step_loads_under_torchs_keys():
    sched = gt.optim.lr_scheduler.ExponentialLR(make_opt(gt), 0.9)
    old = dict(sched.state_dict(), _in_step=False)
    del old["_get_lr_called_within_step"]
    sched.load_state_dict(old)
    assert "_in_step" not in sched.state_dict() and sched.state_dict()["_get_lr_called_within_step"] is False


@pytest.mark.parametrize("build", [
    lambda S, o: S.StepLR(o, 4, 0.5, last_epoch=7), lambda S, o: S.StepLR(o, 3, last_epoch=7),
    lambda S, o: S.CosineAnnealingLR(o, 12, 1e-3, last_epoch=7), lambda S, o: S.LambdaLR(o, warmup_cosine, 7)])
def test_created_at_a_last_epoch_as_torchs(build):
    def run(fw):
        opt = make_opt(fw)
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"] * 2
        sched = build(fw.optim.lr_scheduler, opt)
        return [row(sched, opt)] + [(sched.step(), row(sched, opt))[1] for _ in range(30)]

    assert run(gt) == run(torch)


@pytest.mark.parametrize("name", list(THREE))
def test_get_lr_outside_step_warns_as_torchs(name):
    for fw in (gt, torch):
        sched, _ = stepped(fw, THREE[name], 3)
        with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
            sched.get_lr()
        assert isinstance(sched.get_last_lr(), list) and sched.last_epoch == 3


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "LambdaLR"])
def test_verbose_is_gone_as_in_torch_2_13(name):
    args = {"StepLR": (3,), "CosineAnnealingLR": (3,), "LambdaLR": (lambda e: 1.0,)}[name]
    for fw in (gt, torch):
        with pytest.raises(TypeError, match="unexpected keyword argument 'verbose'"):
            getattr(fw.optim.lr_scheduler, name)(make_opt(fw), *args, verbose=True)


def test_bad_arguments_are_refused():
    S, opt = gt.optim.lr_scheduler, make_opt(gt)
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive number, got -2.0"):
        S.StepLR(opt, -2.0)
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be a positive number, got 0"):
        S.CosineAnnealingLR(opt, 0)
    with pytest.raises(ValueError, match="LambdaLR: expected 2 lr_lambdas \\(one per param group\\), got 3"):
        S.LambdaLR(opt, [lambda e: 1.0] * 3)
    with pytest.raises(TypeError, match="LambdaLR: lr_lambda should be a function, but got float"):
        S.LambdaLR(opt, 0.5)
    with pytest.raises(TypeError, match="CosineAnnealingLR needs a gt.optim.Optimizer, got list"):
        S.CosineAnnealingLR([opt], 5)
    with pytest.raises(KeyError, match="param group 0 has no 'initial_lr'"):
        S.StepLR(opt, 3, last_epoch=4)
