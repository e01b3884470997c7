"""gt.optim beside torch.optim, found by a differential fuzzer: the same parameters and gradients
stepped many times with random hyperparameters, several parameter groups (some added later),
gradients left None, state dicts reloaded between steps; parameters compared after every step.
Also the constructor arguments torch takes: Adam's positional amsgrad, a
group's own decoupled_weight_decay, nesterov in a group without momentum, named parameters,
torch's group keys, state-dict hooks, tensor betas, the caller's group dict."""

import copy

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

NAMES = ["SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop", "Rprop", "ASGD",
         "Adafactor"]


def _hyper(name, r):
    """Random hyperparameters for ``name`` (some left at their defaults)."""
    f, b = (lambda lo, hi: float(r.uniform(lo, hi))), (lambda: bool(r.integers(2)))
    adam = dict(lr=f(1e-4, 0.1), betas=(f(0, 0.99), f(0.5, 0.9999)), eps=f(1e-8, 1e-2), weight_decay=f(0, 0.1),
                maximize=b())
    options = {
        "SGD": dict(lr=f(1e-3, 0.3), momentum=f(0, 0.99) * b(), dampening=f(0, 0.9) * b(),
                    weight_decay=f(0, 0.1), maximize=b()),
        "Adam": dict(adam, amsgrad=b(), decoupled_weight_decay=b()),
        "AdamW": dict(adam, amsgrad=b()),
        "Adamax": adam,
        "NAdam": dict(adam, momentum_decay=f(0, 0.1), decoupled_weight_decay=b()),
        "RAdam": dict(adam, betas=(f(0, 0.99), f(0.3, 0.9999)), decoupled_weight_decay=b()),
        "Adagrad": dict(lr=f(1e-3, 0.3), lr_decay=f(0, 0.2), weight_decay=f(0, 0.1),
                        initial_accumulator_value=f(0, 1), eps=f(1e-10, 1e-3), maximize=b()),
        "Adadelta": dict(lr=f(0.1, 2), rho=f(0, 1), eps=f(1e-8, 1e-2), weight_decay=f(0, 0.1), maximize=b()),
        "RMSprop": dict(lr=f(1e-4, 0.05), alpha=f(0.5, 1), eps=f(1e-6, 1e-2), weight_decay=f(0, 0.1),
                        momentum=f(0, 0.99) * b(), centered=b(), maximize=b()),
        "Rprop": dict(lr=f(1e-3, 0.1), etas=(f(0.1, 0.9), f(1.01, 2)), step_sizes=(f(1e-7, 1e-3), f(0.05, 50)),
                      maximize=b()),
        "ASGD": dict(lr=f(1e-3, 0.1), lambd=f(0, 0.1), alpha=f(0.1, 1), t0=float(r.integers(0, 5)),
                     weight_decay=f(0, 0.1), maximize=b()),
        "Adafactor": dict(lr=f(1e-3, 0.1), beta2_decay=-f(0.1, 1), d=f(0.5, 2), weight_decay=f(0, 0.1),
                          maximize=b()),
    }[name]
    return {k: v for k, v in options.items() if r.random() < 0.8}


def _build(lib, name, params, layout):
    defaults, groups, late = layout
    made = [dict(params=params[lo:hi], **hyper) for (lo, hi), hyper in groups]
    opt = getattr(lib.optim, name)(made[:-1] if late else made, **defaults)
    if late:
        opt.add_param_group(made[-1])
    return opt


def _layout(name, r, n):
    """Defaults, groups ``((first, end), hyperparameters)`` over ``n`` parameters, and whether the
    last group is added by ``add_param_group``."""
    cuts = sorted(int(c) for c in r.choice(range(1, n), int(r.integers(0, min(2, n - 1) + 1)), replace=False))
    bounds = list(zip([0] + cuts, cuts + [n]))
    groups = [(span, _hyper(name, r) if r.random() < 0.5 else {}) for span in bounds]
    return _hyper(name, r), groups, len(groups) > 1 and r.random() < 0.4


def _reload(lib, name, params, layout, opt, source=None):
    """A new optimizer loading ``source``'s state dict (``opt``'s by default), as after a restart."""
    fresh = _build(lib, name, params, layout)
    fresh.load_state_dict(copy.deepcopy((source or opt).state_dict()))
    return fresh


def _compare_state(ours, theirs, tol):
    mine, saved = ours.state_dict(), theirs.state_dict()
    assert sorted(mine["state"]) == sorted(saved["state"])
    for i, entries in saved["state"].items():
        assert sorted(mine["state"][i]) == sorted(entries)
        for key, value in entries.items():
            np.testing.assert_allclose(np.asarray(mine["state"][i][key], dtype=float),
                                       np.asarray(value, dtype=float), err_msg=key, **tol)
    assert mine["param_groups"] == saved["param_groups"]


@pytest.mark.parametrize("seed", range(36))
def test_random_programs_step_as_torch(seed):
    torch = torch_or_skip()
    r = np.random.default_rng(seed)
    name = NAMES[seed % len(NAMES)]
    dtype = np.float64 if seed % 2 else np.float32
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    n = int(r.integers(2, 5))
    shapes = [tuple(int(s) for s in r.integers(1, 5, size=r.integers(0, 4))) for _ in range(n)]
    start = [r.standard_normal(s).astype(dtype) for s in shapes]
    ours = [gt.tensor(a.copy(), requires_grad=True) for a in start]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    layout = _layout(name, r, n)
    opt, ref = _build(gt, name, ours, layout), _build(torch, name, theirs, layout)
    for step in range(8):
        for i, (p, q) in enumerate(zip(ours, theirs)):
            if r.random() < 0.15:      # no gradient: the parameter is skipped
                p.grad = q.grad = None
            else:
                grad = (r.standard_normal(shapes[i]) * r.choice([1e-3, 1, 10])).astype(dtype)
                p.grad, q.grad = gt.tensor(grad.copy()), torch.tensor(grad.copy())
        opt.step()
        ref.step()
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), err_msg=f"step {step}", **tol)
        _compare_state(opt, ref, tol)
        roll = r.random()
        if roll < 0.3:     # both restart from a state dict: gt from its own or from torch's
            source = ref if roll < 0.1 else None
            opt = _reload(gt, name, ours, layout, opt, source)
            ref = _reload(torch, name, theirs, layout, ref)
        elif roll < 0.4:
            opt.zero_grad(set_to_none=False)
            ref.zero_grad(set_to_none=False)
            assert [p.grad is None for p in ours] == [q.grad is None for q in theirs]


def _run(lib, make, steps=3, shapes=((3,), (2, 2))):
    r = np.random.default_rng(0)
    params = [lib.tensor(r.standard_normal(s)) for s in shapes]
    for p in params:
        p.requires_grad_(True)
    opt = make(lib, params)
    for _ in range(steps):
        for p in params:
            p.grad = lib.tensor(r.standard_normal(tuple(p.shape)))
        opt.step()
    return [p.detach().numpy() for p in params], opt


def _same(make, **kw):
    torch = torch_or_skip()
    (ours, opt), (theirs, ref) = _run(gt, make, **kw), _run(torch, make, **kw)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    return opt, ref


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_sixth_positional_argument_is_amsgrad(name):
    # torch's Adam(params, lr, betas, eps, weight_decay, amsgrad): gt took it as in_backward
    opt, ref = _same(lambda lib, ps: getattr(lib.optim, name)(ps, 0.1, (0.5, 0.6), 1e-8, 0.1, True), steps=6)
    assert opt.param_groups[0]["amsgrad"] is True and not opt.in_backward
    assert sorted(opt.state_dict()["state"][0]) == sorted(ref.state_dict()["state"][0])


@pytest.mark.parametrize("name,own", [("Adam", True), ("AdamW", False)])
def test_a_groups_own_decoupled_weight_decay(name, own):
    opt, ref = _same(lambda lib, ps: getattr(lib.optim, name)(
        [{"params": ps[:1], "decoupled_weight_decay": own}, {"params": ps[1:]}], lr=0.1, weight_decay=0.5))
    assert [g["decoupled_weight_decay"] for g in opt.state_dict()["param_groups"]] == [own, not own] == \
           [g["decoupled_weight_decay"] for g in ref.state_dict()["param_groups"]]


def test_adam_loading_adamw_state_decays_as_torch():
    # torch's AdamW state dict says decoupled: torch's Adam loading it steps as AdamW
    torch = torch_or_skip()

    def make(lib, ps):
        saved = lib.optim.AdamW(ps, lr=0.1, weight_decay=0.5).state_dict()
        if lib is gt:
            saved = torch.optim.AdamW([torch.zeros(3, requires_grad=True), torch.zeros(2, 2, requires_grad=True)],
                                      lr=0.1, weight_decay=0.5).state_dict()
        opt = lib.optim.Adam(ps)
        opt.load_state_dict(saved)
        return opt

    opt, ref = _same(make)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True


def test_adamw_stays_decoupled_after_loading_adams_state():
    def make(lib, ps):
        opt = lib.optim.AdamW(ps, lr=0.1, weight_decay=0.5)
        opt.load_state_dict(lib.optim.Adam(ps, lr=0.1, weight_decay=0.5).state_dict())
        return opt

    opt, _ = _same(make)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True


def test_sgd_group_without_momentum_keeps_nesterov():
    # torch checks nesterov against the constructor's momentum only: a group may turn momentum off
    opt, ref = _same(lambda lib, ps: lib.optim.SGD(
        [{"params": ps[:1]}, {"params": ps[1:], "momentum": 0.0}], lr=0.1, momentum=0.9, nesterov=True))
    assert opt.param_groups[1]["nesterov"] is True
    with pytest.raises(ValueError, match="Nesterov"):
        gt.optim.SGD([gt.zeros(2, requires_grad=True)], lr=0.1, nesterov=True)


def test_named_parameters():
    torch = torch_or_skip()
    opt, ref = _same(lambda lib, ps: lib.optim.AdamW([("w", ps[0]), ("m", ps[1])], lr=0.1))
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "m"] == \
           ref.state_dict()["param_groups"][0]["param_names"]
    model = gt.nn.Linear(2, 3)
    sgd = gt.optim.SGD(model.named_parameters(), lr=0.1)
    assert sgd.param_groups[0]["param_names"] == ["weight", "bias"]
    assert all(a is b for a, b in zip(sgd.param_groups[0]["params"], [model.weight, model.bias], strict=True))
    plain = gt.optim.SGD(model.parameters(), lr=0.2)
    plain.load_state_dict(sgd.state_dict())
    assert plain.param_groups[0]["param_names"] == ["weight", "bias"]
    for lib, make in ((gt, gt.zeros), (torch, torch.zeros)):
        with pytest.raises(ValueError, match="with/without names"):
            lib.optim.SGD([("a", make(2, requires_grad=True)), make(2, requires_grad=True)], lr=0.1)
        with pytest.raises(ValueError, match="with/without names"):
            lib.optim.SGD([("a", make(2, requires_grad=True))], lr=0.1).add_param_group(
                {"params": [make(2, requires_grad=True)]})


@pytest.mark.parametrize("name", ["SGD", "Adam", "Adagrad", "LBFGS", "Adafactor"])
def test_state_dict_hooks(name):
    def program(lib):
        w, log = lib.ones(3, requires_grad=True), []
        opt = getattr(lib.optim, name)([w], lr=0.1)
        first = opt.register_state_dict_pre_hook(lambda o: log.append("pre"))
        opt.register_state_dict_pre_hook(lambda o: log.append("pre first"), prepend=True)
        opt.register_state_dict_post_hook(lambda o, saved: (log.append("post"), dict(saved, extra=1))[1])
        opt.register_load_state_dict_pre_hook(
            lambda o, saved: (log.append(sorted(saved)), {k: v for k, v in saved.items() if k != "extra"})[1])
        opt.register_load_state_dict_post_hook(lambda o: log.append("loaded"))
        saved = opt.state_dict()
        opt.load_state_dict(saved)
        first.remove()
        opt.state_dict()
        return log, sorted(saved)

    torch = torch_or_skip()
    assert program(gt) == program(torch)


# NAdam left out: with tensor betas torch computes its momentum schedule in tensors (other roundings);
# float64 tensors: torch's float32 ones round its scalar arithmetic in float32
@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "RAdam"])
def test_tensor_betas(name):
    # torch takes 1-element tensors for betas (as for lr); gt keeps their floats
    opt, _ = _same(lambda lib, ps: getattr(lib.optim, name)(
        ps, lr=lib.tensor(0.1, dtype=lib.float64),
        betas=(lib.tensor(0.5, dtype=lib.float64), lib.tensor(0.75, dtype=lib.float64))))
    assert opt.param_groups[0]["betas"] == (0.5, 0.75)
    with pytest.raises(ValueError, match=r"betas\[0\] must be 1-element"):
        getattr(gt.optim, name)([gt.zeros(2, requires_grad=True)], betas=(gt.tensor([0.5, 0.6]), 0.6))


def test_a_group_is_the_callers_dict():
    # torch's optimizer keeps the dict it was given: a schedule written into it is followed
    def make(lib, ps):
        group = {"params": ps[:1], "lr": 0.1}
        opt = lib.optim.SGD([group, {"params": ps[1:]}], lr=0.5, momentum=0.5)
        group["lr"] = 0.01
        return opt

    opt, ref = _same(make)
    assert opt.param_groups[0]["lr"] == ref.param_groups[0]["lr"] == 0.01


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_torchs_group_keys(name):
    opt, ref = _same(lambda lib, ps: getattr(lib.optim, name)(ps, lr=0.1))
    assert list(opt.state_dict()["param_groups"][0]) == list(ref.state_dict()["param_groups"][0])
    with pytest.raises(NotImplementedError, match="differentiable"):
        getattr(gt.optim, name)([{"params": [gt.zeros(2, requires_grad=True)], "differentiable": True}], lr=0.1)


def test_a_torch_state_dict_saved_with_fused_or_foreach_loads():
    torch = torch_or_skip()
    for option in ({"foreach": True}, {"fused": True}):
        model = torch.nn.Linear(3, 2)
        opt = torch.optim.Adam(model.parameters(), lr=0.01, **option)
        model(torch.ones(4, 3)).sum().backward()
        opt.step()
        saved = opt.state_dict()
        mine = gt.optim.Adam(gt.nn.Linear(3, 2).parameters(), lr=0.01)
        mine.load_state_dict({"state": {i: {k: gt.tensor(v.numpy()) for k, v in s.items()}
                                        for i, s in saved["state"].items()},
                              "param_groups": saved["param_groups"]})
        group = mine.param_groups[0]
        assert {k: group[k] for k in option} == option     # torch's kernel choice, kept as torch keeps it
        assert mine.state_dict()["state"][0]["exp_avg"].tolist() == saved["state"][0]["exp_avg"].tolist()
        built = gt.optim.Adam(gt.nn.Linear(3, 2).parameters(), **option)   # accepted when built, as torch
        assert {k: built.param_groups[0][k] for k in option} == option


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad"])
def test_fused_and_foreach_together_refused_as_torch(name):
    torch = torch_or_skip()
    for lib in (torch, gt):
        with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
            getattr(lib.optim, name)([lib.zeros(2, requires_grad=True)], lr=0.1, fused=True, foreach=True)
        one = getattr(lib.optim, name)([lib.zeros(2, requires_grad=True)], lr=0.1, fused=True, foreach=False)
        assert (one.param_groups[0]["fused"], one.param_groups[0]["foreach"]) == (True, False)
