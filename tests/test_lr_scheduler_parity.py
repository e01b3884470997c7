"""gt.optim.lr_scheduler beside torch's, where differential testing found gt apart: a subclass of
``LRScheduler`` written for torch, a group added after the scheduler, ReduceLROnPlateau's metric
errors, float ``step_size``/``T_max``, a checkpoint holding an lr rounded below zero, ``__all__``."""

import copy
import warnings

import pytest

import gt

torch = pytest.importorskip("torch", reason="torch not installed: pip install torch==2.13.0")
# No optimizer.step() between the scheduler steps: torch's reminder to call it first is silenced.
# learning rates are Python floats: no GT_* setting changes them, so the file runs in the first pass only
pytestmark = [pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before"),
              pytest.mark.first_pass]


def make_opt(fw, groups=2):
    params = [{"params": [fw.zeros(2, requires_grad=True)], "lr": 0.1 * (i + 1)} for i in range(groups)]
    return fw.optim.SGD(params, lr=0.1, momentum=0.9)


def torch_style_scheduler(fw):
    """What a torch user writes: a chainable ``get_lr`` that reads torch's private flags, and a closed
    form for ``step(epoch)``."""

    class Halving(fw.optim.lr_scheduler.LRScheduler):
        def __init__(self, optimizer, every, last_epoch=-1):
            self.every = every
            super().__init__(optimizer, last_epoch)

        def get_lr(self):
            if not self._get_lr_called_within_step:
                warnings.warn("outside step", UserWarning)
            if self._is_initial or self.last_epoch % self.every:
                return [group["lr"] for group in self.optimizer.param_groups]
            return [group["lr"] * 0.5 for group in self.optimizer.param_groups]

        def _get_closed_form_lr(self):
            return [base * 0.5 ** (self.last_epoch // self.every) for base in self.base_lrs]

    return Halving


def test_a_torch_style_subclass_of_lr_scheduler_steps_as_torchs():
    def run(fw):
        opt = make_opt(fw)
        sched = torch_style_scheduler(fw)(opt, 3)
        rows = [sched.get_last_lr()]
        for epoch in [None, None, None, 7, None, None, 2, None]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")       # the deprecation warning of step(epoch)
                sched.step(epoch)
            rows.append(sched.get_last_lr() + [sched.last_epoch, sched._step_count])
        seq = fw.optim.lr_scheduler.SequentialLR(
            opt, [fw.optim.lr_scheduler.ExponentialLR(opt, 0.9), torch_style_scheduler(fw)(opt, 2)], [4])
        for _ in range(9):
            seq.step()
            rows.append(seq.get_last_lr())
        return rows, sorted(sched.state_dict())

    assert run(gt) == run(torch)
    with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)`"):
        torch_style_scheduler(gt)(make_opt(gt), 3).step(2)


@pytest.mark.parametrize("build", [
    lambda S, o: S.LambdaLR(o, lambda e: 0.9 ** e),
    lambda S, o: S.CosineAnnealingWarmRestarts(o, 5),
    lambda S, o: S.CyclicLR(o, 0.01, 0.1, cycle_momentum=False)])
def test_a_group_added_after_the_scheduler_raises_as_torchs(build):
    for fw in (gt, torch):
        opt = make_opt(fw)
        sched = build(fw.optim.lr_scheduler, opt)
        opt.add_param_group({"params": [fw.zeros(1, requires_grad=True)], "lr": 0.3})
        with pytest.raises(ValueError):
            sched.step()


def test_plateau_metric_errors_are_torchs_types():
    for fw in (gt, torch):
        sched = fw.optim.lr_scheduler.ReduceLROnPlateau(make_opt(fw))
        with pytest.raises(ValueError):
            sched.step(fw.tensor([1.0, 2.0]))
        with pytest.raises(ValueError):
            sched.step("x")
        with pytest.raises(TypeError):
            sched.step(None)
        sched.step(fw.tensor([[2.5]]))
        assert sched.best == 2.5


@pytest.mark.parametrize("build", [
    lambda S, o: S.StepLR(o, 2.0, gamma=0.5), lambda S, o: S.StepLR(o, 2.5, gamma=0.5),
    lambda S, o: S.CosineAnnealingLR(o, T_max=7.5, eta_min=1e-3), lambda S, o: S.CosineAnnealingLR(o, 4.0)])
def test_float_step_size_and_t_max_are_taken_as_torchs(build):
    def run(fw):
        opt = make_opt(fw)
        sched = build(fw.optim.lr_scheduler, opt)
        rows = [sched.get_last_lr()]
        for i in range(25):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sched.step(i + 3 if i == 12 else None)     # one closed-form step among the chainable ones
            rows.append(sched.get_last_lr())
        return rows

    assert run(gt) == run(torch)


def test_a_checkpoint_with_an_lr_rounded_below_zero_resumes_as_torchs():
    # LinearLR down to 0 from 0.85 ends at -2.5e-18, not 0: torch saves and loads it
    def run(fw):
        opt = make_opt(fw)
        sched = fw.optim.lr_scheduler.LinearLR(opt, start_factor=0.85, end_factor=0.0, total_iters=15)
        for _ in range(17):
            sched.step()
        opt_state, sched_state = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
        opt2 = make_opt(fw)
        sched2 = fw.optim.lr_scheduler.LinearLR(opt2, start_factor=0.85, end_factor=0.0, total_iters=15)
        opt2.load_state_dict(opt_state)
        sched2.load_state_dict(sched_state)
        sched2.step()
        return [g["lr"] for g in opt2.param_groups]

    lrs = run(gt)
    assert lrs == run(torch) and lrs[0] < 0


def test_star_import_names_are_torchs():
    assert sorted(gt.optim.lr_scheduler.__all__) == sorted(torch.optim.lr_scheduler.__all__)
    for name in gt.optim.lr_scheduler.__all__:
        assert getattr(gt.optim.lr_scheduler, name).__name__ == name


SCHEDULES = {
    "StepLR": lambda S, o: S.StepLR(o, 2),
    "OneCycleLR": lambda S, o: S.OneCycleLR(o, 1.0, total_steps=10),
    "CyclicLR": lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=2),
    "CosineAnnealingWarmRestarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, 3),
    "SequentialLR": lambda S, o: S.SequentialLR(o, [S.ConstantLR(o, 0.5, total_iters=2), S.ExponentialLR(o, 0.9)], [2]),
    "ChainedScheduler": lambda S, o: S.ChainedScheduler([S.ConstantLR(o, 0.5, total_iters=2), S.ExponentialLR(o, 0.9)]),
    "ReduceLROnPlateau": lambda S, o: S.ReduceLROnPlateau(o),
}


@pytest.mark.parametrize("name", ["StepLR", "OneCycleLR", "CyclicLR", "SequentialLR", "ChainedScheduler"])
def test_scheduler_stepped_before_the_optimizer_warns_as_torch(name):
    """torch's reminder (once a scheduler) where ``scheduler.step()`` comes before any ``optimizer.step()``;
    none in the right order, nor from the schedules torch never warns for."""

    def run(fw, name, order):
        opt = make_opt(fw)
        sched = SCHEDULES[name](fw.optim.lr_scheduler, opt)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                if order == "optimizer first":
                    opt.step()
                sched.step(1.0) if name == "ReduceLROnPlateau" else sched.step()
                if order == "scheduler first":
                    opt.step()
        return [str(w.message) for w in caught if "before `optimizer.step()`" in str(w.message)]

    orders = ["scheduler first", "no optimizer step", "optimizer first"]
    seen = [run(gt, n, order) for n in (name, "CosineAnnealingWarmRestarts", "ReduceLROnPlateau") for order in orders]
    assert seen == [run(torch, n, order) for n in (name, "CosineAnnealingWarmRestarts", "ReduceLROnPlateau")
                    for order in orders]
    assert seen[0] and seen[1] and seen[0][0].startswith("Detected call of `lr_scheduler.step()`")
    assert not any(seen[2:])
