"""gt.optim.swa_utils (gt/nn/swa_utils.py, gt/optim/swa_lr.py) beside torch.optim.swa_utils:
AveragedModel after the same sequence of model states with each averaging (default, EMA, SWA; per
tensor and in place; buffers averaged or copied), its state dict both ways, update_bn's running
statistics on the same loader, SWALR's lrs to the bit, and the errors."""

import copy
import math

import numpy as np
import pytest

import gt
from gt import nn
from helpers import torch_or_skip

STEPS = 5
AVERAGING = {
    "default": lambda S: {},
    "ema_multi": lambda S: {"multi_avg_fn": S.get_ema_multi_avg_fn(0.7)},
    "ema_fn": lambda S: {"avg_fn": S.get_ema_avg_fn(0.7)},
    "swa_multi": lambda S: {"multi_avg_fn": S.get_swa_multi_avg_fn()},
    "swa_fn": lambda S: {"avg_fn": S.get_swa_avg_fn()},
}


def build(fw, dtype):
    """Linear -> BatchNorm1d -> Linear in ``fw`` (gt or torch), of ``dtype``."""
    model = fw.nn.Sequential(fw.nn.Linear(3, 4), fw.nn.BatchNorm1d(4), fw.nn.Linear(4, 2))
    return model.double() if dtype == "float64" else model


def states(model, dtype, steps=STEPS):
    """``steps`` full state dicts (numpy) of ``model``'s shapes: random floats, a growing counter."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(steps):
        state = {}
        for name, value in model.state_dict().items():
            value = np.asarray(value)
            if value.dtype.kind == "f":
                state[name] = rng.standard_normal(value.shape).astype(dtype)
                if name.endswith("running_var"):
                    state[name] = np.abs(state[name]) + 0.5
            else:
                state[name] = np.array(3 * k + 1 - 2 * (k % 2), dtype=value.dtype)   # 1, 2, 7, 8, 13
        out.append(state)
    return out


def averaged(fw, S, dtype, kwargs, use_buffers):
    model = build(fw, dtype)
    seq = states(build(gt, dtype), dtype)
    avg = S.AveragedModel(model, use_buffers=use_buffers, **kwargs)
    for state in seq:
        model.load_state_dict({k: (v if fw is gt else fw.from_numpy(v)) for k, v in state.items()})
        avg.update_parameters(model)
    return avg


def torch_swa_multi(torch):
    """torch's get_swa_multi_avg_fn, with get_swa_avg_fn for integer tensors (where torch's raises)."""
    multi, single = torch.optim.swa_utils.get_swa_multi_avg_fn(), torch.optim.swa_utils.get_swa_avg_fn()

    def fn(averaged, current, n):
        if averaged[0].is_floating_point():
            return multi(averaged, current, n)
        for a, c in zip(averaged, current):
            a.copy_(single(a, c, n))
    return fn


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("use_buffers", [False, True], ids=["copy_buffers", "average_buffers"])
@pytest.mark.parametrize("how", list(AVERAGING))
def test_averaged_model_matches_torch(how, use_buffers, dtype):
    torch = torch_or_skip()
    TS = torch.optim.swa_utils
    ours = averaged(gt, gt.optim.swa_utils, dtype, AVERAGING[how](gt.optim.swa_utils), use_buffers)
    kwargs = AVERAGING[how](TS)
    if how == "swa_multi" and use_buffers:      # torch raises on the int64 counter: gt truncates, as swa_fn
        kwargs = {"multi_avg_fn": torch_swa_multi(torch)}
    theirs = averaged(torch, TS, dtype, kwargs, use_buffers)
    mine, ref = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(ref)
    # the same formula in the same order; the multi forms are torch's CPU lerp_ kernel, bit for bit
    exact = (dtype == "float64" and how in ("default", "swa_fn")) or how in ("ema_multi", "swa_multi")
    for name in ref:
        want = ref[name].numpy()
        got = np.asarray(mine[name])
        assert got.dtype == want.dtype, name
        if exact or want.dtype.kind != "f":
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-14, atol=1e-7,
                                       err_msg=name)
    assert int(mine["n_averaged"]) == STEPS


def test_averaged_model_state_dict_loads_both_ways_and_forward_is_the_copy():
    torch = torch_or_skip()
    theirs = averaged(torch, torch.optim.swa_utils, "float32", {}, False)
    ours = gt.optim.swa_utils.AveragedModel(build(gt, "float32"))
    ours.load_state_dict(theirs.state_dict())
    assert int(ours.n_averaged.item()) == STEPS and ours.n_averaged.dtype == gt.int64
    x = np.random.default_rng(1).standard_normal((6, 3)).astype("float32")
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(gt.tensor(x)).numpy(), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(ours(gt.tensor(x)).numpy(), ours.module(gt.tensor(x)).numpy())
    back = torch.optim.swa_utils.AveragedModel(build(torch, "float32"))
    back.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in ours.state_dict().items()})
    assert int(back.n_averaged) == STEPS


def test_averaged_model_is_a_deep_copy_and_the_first_update_copies():
    model = build(gt, "float32")
    avg = gt.optim.swa_utils.AveragedModel(model, device=model[0].weight.device)
    assert all(a is not b for a, b in zip(avg.parameters(), model.parameters()))
    with gt.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    avg.update_parameters(model)
    for a, b in zip(avg.parameters(), model.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert avg.n_averaged.item() == 1 and avg.module[0].weight.requires_grad


def bn_model(fw):
    fw.manual_seed(0)
    return fw.nn.Sequential(fw.nn.Linear(3, 4), fw.nn.BatchNorm1d(4, momentum=0.3), fw.nn.ReLU(),
                            fw.nn.Linear(4, 2), fw.nn.BatchNorm1d(2, affine=False))


def test_update_bn_matches_torch():
    torch = torch_or_skip()
    theirs = bn_model(torch).eval()
    ours = bn_model(gt).eval()
    ours.load_state_dict(theirs.state_dict())
    rng = np.random.default_rng(2)
    batches = [rng.standard_normal((n, 3)).astype("float32") * 2 + 1 for n in (5, 3, 8)]
    def loader(tensor):                # a batch is a tensor, or a tuple/list whose first element is the input
        return [tensor(batches[0]), (tensor(batches[1]), tensor(batches[1][:, 0])), [tensor(batches[2])]]
    torch.optim.swa_utils.update_bn(loader(torch.from_numpy), theirs)
    gt.optim.swa_utils.update_bn(loader(gt.tensor), ours)
    assert not ours.training and ours[1].momentum == 0.3 and ours[4].momentum == 0.1
    for name, want in theirs.state_dict().items():
        if "running" in name or "batches" in name:
            np.testing.assert_allclose(np.asarray(ours.state_dict()[name]), want.numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=name)
    assert int(ours[1].num_batches_tracked.item()) == 3


def test_update_bn_keeps_training_mode_and_skips_models_without_batch_norm():
    model = bn_model(gt).train()
    gt.optim.swa_utils.update_bn([gt.ones(4, 3)], model, device=model[0].weight.device)   # where it already is
    assert model.training
    read = []

    def loader():
        read.append("a batch")
        yield gt.ones(2, 3)
    gt.optim.swa_utils.update_bn(loader(), nn.Sequential(nn.Linear(3, 2)))
    assert read == []                                           # no BatchNorm: the loader is not read
    norm = nn.InstanceNorm1d(3, track_running_stats=True)      # not a BatchNorm in torch: left alone
    with gt.no_grad():
        norm.running_mean.fill_(5.0)
    gt.optim.swa_utils.update_bn([gt.ones(2, 3, 4)], norm)
    assert norm.running_mean.tolist() == [5.0, 5.0, 5.0]


# ---- SWALR ---------------------------------------------------------------------------------------
def lr_rows(fw, swa_kwargs, steps=14, before=0, by_hand=None):
    """The lrs of two groups over ``steps`` SWALR steps, after ``before`` StepLR steps."""
    w, b = fw.zeros(2, requires_grad=True), fw.zeros(1, requires_grad=True)
    opt = fw.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.03}], lr=0.1)
    first = fw.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    opt.step()                      # no gradients: changes nothing, but schedulers may step after it
    for _ in range(before):
        first.step()
    sched = fw.optim.swa_utils.SWALR(opt, **swa_kwargs)
    rows = [sched.get_last_lr()]
    for i in range(steps):
        sched.step()
        if by_hand and i == 4:
            opt.param_groups[0]["lr"] = 0.2
        rows.append(sched.get_last_lr() + [g["lr"] for g in opt.param_groups])
    return rows, sched


SWALR_CASES = {
    "cos": dict(swa_lr=0.05),
    "linear-3": dict(swa_lr=0.05, anneal_epochs=3, anneal_strategy="linear"),
    "cos-1": dict(swa_lr=[0.01, 0.2], anneal_epochs=1),
    "cos-0": dict(swa_lr=0.05, anneal_epochs=0),
    "linear-0": dict(swa_lr=0.5, anneal_epochs=0, anneal_strategy="linear"),
}


@pytest.mark.first_pass
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
@pytest.mark.parametrize("case", list(SWALR_CASES))
@pytest.mark.parametrize("before, by_hand", [(0, False), (3, True)], ids=["fresh", "after_steplr_and_by_hand"])
def test_swalr_lrs_equal_torch_to_the_bit(case, before, by_hand):
    torch = torch_or_skip()
    ours, sched = lr_rows(gt, SWALR_CASES[case], before=before, by_hand=by_hand)
    theirs, tsched = lr_rows(torch, SWALR_CASES[case], before=before, by_hand=by_hand)
    assert ours == theirs
    assert sorted(sched.state_dict()) == sorted(tsched.state_dict())


@pytest.mark.first_pass
def test_swalr_state_dict_resumes_and_groups_hold_swa_lr():
    _, sched = lr_rows(gt, dict(swa_lr=0.05, anneal_epochs=6, anneal_strategy="linear"), steps=2)
    state = copy.deepcopy(sched.state_dict())
    assert "anneal_func" not in state and state["_anneal_strategy"] == "linear"
    assert [g["swa_lr"] for g in sched.optimizer.param_groups] == [0.05, 0.05]
    again = gt.optim.swa_utils.SWALR(sched.optimizer, swa_lr=0.05)            # cos...
    again.load_state_dict(state)                                              # ...until it loads linear
    assert again.anneal_func(0.25) == 0.25
    sched.step(), again.step()
    assert again.get_last_lr() != [] and math.isfinite(again.get_last_lr()[0])


# ---- imports and errors --------------------------------------------------------------------------
def test_torch_import_paths():
    import gt.optim.swa_utils as by_path
    from gt.optim.swa_utils import SWALR, AveragedModel, update_bn  # noqa: F401
    assert by_path is gt.optim.swa_utils is gt.nn.swa_utils
    assert set(by_path.__all__) == {"AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn",
                                    "get_swa_multi_avg_fn", "get_ema_avg_fn", "get_swa_avg_fn"}


def test_errors():
    S = gt.optim.swa_utils
    model = build(gt, "float32")
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        S.AveragedModel(model, avg_fn=S.get_swa_avg_fn(), multi_avg_fn=S.get_swa_multi_avg_fn())
    with pytest.raises(TypeError, match="expected model to be a gt.nn.Module, got Tensor"):
        S.AveragedModel(gt.ones(2))
    with pytest.raises(NotImplementedError, match="device='cuda:3'.*does not move"):
        S.AveragedModel(model, device="cuda:3")
    for fn in (S.get_ema_avg_fn, S.get_ema_multi_avg_fn):
        with pytest.raises(ValueError, match=r"Invalid decay value 1.5 .* \[0,1\] range"):
            fn(1.5)
    opt = gt.optim.SGD([gt.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear', instead got 'step'"):
        S.SWALR(opt, 0.05, anneal_strategy="step")
    with pytest.raises(ValueError, match="anneal_epochs must be an int equal or greater than 0, got -1"):
        S.SWALR(opt, 0.05, anneal_epochs=-1)
    with pytest.raises(ValueError, match="swa_lr must have the same length as optimizer.param_groups"):
        S.SWALR(opt, [0.1, 0.2])
    with pytest.raises(TypeError, match="SWALR needs a gt.optim.Optimizer, got list"):
        S.SWALR([], 0.05)
    avg = S.AveragedModel(model)
    with pytest.raises(NotImplementedError, match="update_bn: device='cuda:3'"):
        S.update_bn([gt.ones(2, 3)], bn_model(gt), device="cuda:3")
    with pytest.raises(ValueError, match="the model has 0 buffers, the averaged copy 3"):
        avg.update_parameters(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)))
