"""torch's other optimizers (RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam, Rprop, ASGD) beside
torch: the same parameters and gradients, parameters compared after every step, state dicts, round
trips through state_dict, parameter groups and the errors for bad hyperparameters."""

import functools
import inspect

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

STEPS = 5
SHAPES = {"w": (8, 3), "s": (5,)}
TOL = {"float64": dict(rtol=1e-12, atol=1e-14), "float32": dict(rtol=2e-6, atol=1e-6)}

CASES = [
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.9)),
    ("RMSprop", dict(lr=0.02, centered=True, maximize=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, eps=1e-3)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, maximize=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(betas=(0.9, 0.5))),   # rho_t > 5 from step 2 on: both branches run
    ("RAdam", dict(lr=0.01, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.6), weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.06), maximize=True)),
    ("ASGD", dict()),
    ("ASGD", dict(lr=0.05, t0=0)),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=2, weight_decay=0.1, maximize=True)),
]
IDS = [f"{name}-{'-'.join(kw) or 'defaults'}" for name, kw in CASES]


def with_dtypes(cases):
    """Every case in float64; in float32 the last (most options) case of each optimizer (CI time)."""
    last = {name: kw for name, kw in cases}
    runs = [(name, kw, "float64") for name, kw in cases] + [(name, kw, "float32") for name, kw in last.items()]
    return pytest.mark.parametrize("name,kw,dtype", runs,
                                   ids=[f"{n}-{'-'.join(kw) or 'defaults'}-{d}" for n, kw, d in runs])


def initial(dtype):
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


def gradient(k, step, value):
    """The gradient of parameter ``k`` at ``step``: fixed noise plus a pull towards 0 that depends
    on the current value (so both frameworks must keep the same parameters to agree)."""
    noise = np.random.default_rng(100 * step + len(k)).standard_normal(value.shape).astype(value.dtype)
    if k == "s" and step % 3 == 2:
        noise[:2] = 0  # some exact zeros: Rprop's "no sign" branch
    return noise + value * value.dtype.type(0.5)


class Run:
    """One optimizer over the same parameters in gt or torch, stepped with the same gradients."""

    def __init__(self, fw, name, kw, dtype, groups=None, shard=False):
        self.fw, self.dtype = fw, dtype
        self.p = {}
        for k, v in initial(dtype).items():
            t = fw.tensor(v.copy())
            if shard and fw is gt and k == "w":
                t = t.shard(0)  # a parameter spread over the devices (GT_DEVICES > 1)
            self.p[k] = t.requires_grad_()
        params = groups(self.p) if groups else list(self.p.values())
        self.opt = getattr(fw.optim, name)(params, **kw)
        self.t = 0

    def values(self):
        return {k: np.array(v.detach().numpy() if self.fw is not gt else v.numpy()) for k, v in self.p.items()}

    def step(self):
        values = self.values()
        for k, p in self.p.items():
            grad = self.fw.tensor(gradient(k, self.t, values[k]))
            if self.fw is gt:   # placed like its parameter, as backward leaves it
                grad = grad.shard(0) if p.placement == gt.Shard(0) else grad.replicate()
            p.grad = grad
        self.opt.step()
        self.t += 1
        return self.values()


def assert_close(ours, theirs, dtype, what=""):
    for k in theirs:
        np.testing.assert_allclose(ours[k], theirs[k], err_msg=f"{what} {k}", **TOL[dtype])
        assert ours[k].dtype == theirs[k].dtype


def assert_state_like_torch(gt_opt, torch_opt, dtype="float64"):
    ours, theirs = gt_opt.state_dict(), torch_opt.state_dict()
    assert sorted(ours["state"]) == sorted(theirs["state"])
    for i, saved in theirs["state"].items():
        assert sorted(ours["state"][i]) == sorted(saved)
        for key, value in saved.items():
            mine = ours["state"][i][key]
            if value.ndim == 0:   # step, mu_product, eta, mu: torch's float32 0-d tensors
                assert float(mine) == float(value), key
            else:
                np.testing.assert_allclose(mine, value.numpy(), err_msg=key, **TOL[dtype])
    for mine, saved in zip(ours["param_groups"], theirs["param_groups"]):
        assert sorted(mine) == sorted(saved)
        assert all(mine[k] == saved[k] for k in saved if k != "params")


@with_dtypes(CASES)
def test_steps_match_torch(name, kw, dtype):
    torch = torch_or_skip()
    ours, theirs = Run(gt, name, kw, dtype, shard=True), Run(torch, name, kw, dtype)
    start = ours.values()
    for step in range(STEPS):
        assert_close(ours.step(), theirs.step(), dtype, f"step {step}")
    assert not np.allclose(ours.values()["w"], start["w"])
    if gt.get_mesh().size > 1:   # updated shard by shard, state alike
        assert ours.p["w"].placement == gt.Shard(0)
    assert_state_like_torch(ours.opt, theirs.opt, dtype)


@pytest.mark.parametrize("name,kw", CASES[::2], ids=IDS[::2])
def test_state_dict_round_trip_continues_like_uninterrupted(name, kw):
    torch = torch_or_skip()
    ours, theirs = Run(gt, name, kw, "float64"), Run(torch, name, kw, "float64")
    for _ in range(3):
        ours.step(), theirs.step()
    saved = ours.opt.state_dict()
    resumed = Run(gt, name, kw, "float64")
    with gt.no_grad():
        for k, p in resumed.p.items():
            p.copy_(gt.tensor(ours.values()[k]))
    resumed.opt.load_state_dict(saved)
    resumed.t = ours.t
    for value in saved["state"][0].values():   # the loaded state is a copy: changing the dict changes nothing
        if isinstance(value, np.ndarray):
            value.fill(np.nan)
    for step in range(3):
        assert_close(resumed.step(), theirs.step(), "float64", f"resumed step {step}")


@pytest.mark.parametrize("name,kw", CASES[::3], ids=IDS[::3])
def test_torch_state_dict_loads(name, kw):
    torch = torch_or_skip()
    ours, theirs = Run(gt, name, kw, "float64"), Run(torch, name, kw, "float64")
    for _ in range(2):
        theirs.step()
    with gt.no_grad():
        for k, p in ours.p.items():
            p.copy_(gt.tensor(theirs.values()[k]))
    ours.opt.load_state_dict(theirs.opt.state_dict())
    ours.t = theirs.t
    for step in range(2):
        assert_close(ours.step(), theirs.step(), "float64", f"after load, step {step}")


# the options torch's SGD, Adam and AdamW have, added to gt's
EXISTING = [
    ("SGD", dict(lr=0.1, maximize=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.1, maximize=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, maximize=True)),
]


@with_dtypes(EXISTING)
def test_maximize_and_amsgrad_of_sgd_and_adam_match_torch(name, kw, dtype):
    torch = torch_or_skip()
    ours, theirs = Run(gt, name, kw, dtype, shard=True), Run(torch, name, kw, dtype)
    for step in range(STEPS):
        assert_close(ours.step(), theirs.step(), dtype, f"step {step}")
    assert ours.opt.param_groups[0]["maximize"] is True or ours.opt.param_groups[0]["amsgrad"] is True
    if name != "SGD":   # torch's SGD saves momentum_buffer=None without momentum; gt saves nothing
        mine, saved = ours.opt.state_dict()["state"], theirs.opt.state_dict()["state"]
        for i in saved:
            assert sorted(mine[i]) == sorted(saved[i])
            for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                if key in saved[i]:
                    np.testing.assert_allclose(mine[i][key], saved[i][key].numpy(), err_msg=key, **TOL[dtype])


def test_maximize_and_amsgrad_checked():
    w = gt.ones(2, requires_grad=True)
    with pytest.raises(TypeError, match="SGD: maximize must be True or False, got 'yes'"):
        gt.optim.SGD([w], lr=0.1, maximize="yes")
    with pytest.raises(TypeError, match="AdamW: amsgrad must be True or False, got 1"):
        gt.optim.AdamW([w], amsgrad=1)


def two_groups(p):
    return [{"params": [p["w"]], "lr": 0.03}, {"params": [p["s"]]}]


@pytest.mark.parametrize("name", sorted({c[0] for c in CASES}))
def test_param_groups_with_their_own_lr(name):
    torch = torch_or_skip()
    ours, theirs = Run(gt, name, {}, "float64", two_groups), Run(torch, name, {}, "float64", two_groups)
    for step in range(3):
        assert_close(ours.step(), theirs.step(), "float64", f"step {step}")
    assert ours.opt.param_groups[0]["lr"] == 0.03
    assert ours.opt.param_groups[1]["lr"] == theirs.opt.defaults["lr"]


def test_parameters_without_grad_are_left_alone():
    w, frozen = gt.ones(3, requires_grad=True), gt.ones(2, requires_grad=True)
    for name in sorted({c[0] for c in CASES}):
        opt = getattr(gt.optim, name)([w, frozen])
        w.grad = gt.ones(3)
        opt.step()
        np.testing.assert_array_equal(frozen.numpy(), np.ones(2))
        assert (name == "Adagrad") == (frozen in opt.state)   # torch's Adagrad makes all state up front


BAD = [
    ("RMSprop", dict(lr=-1), "Invalid learning rate: -1"),
    ("RMSprop", dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    ("RMSprop", dict(momentum=-0.1), "Invalid momentum value: -0.1"),
    ("RMSprop", dict(weight_decay=-1), "Invalid weight_decay value: -1"),
    ("RMSprop", dict(alpha=-0.5), "Invalid alpha value: -0.5"),
    ("Adagrad", dict(lr_decay=-1), "Invalid lr_decay value: -1"),
    ("Adagrad", dict(initial_accumulator_value=-1), "Invalid initial_accumulator_value value: -1"),
    ("Adagrad", dict(eps=-1), "Invalid epsilon value: -1"),
    ("Adadelta", dict(rho=1.5), "Invalid rho value: 1.5"),
    ("Adadelta", dict(lr=-0.1), "Invalid learning rate: -0.1"),
    ("Adamax", dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    ("Adamax", dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    ("NAdam", dict(momentum_decay=-1), "Invalid momentum_decay value: -1"),
    ("NAdam", dict(weight_decay=-1), "Invalid weight_decay value: -1"),
    ("RAdam", dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    ("RAdam", dict(eps=-1), "Invalid epsilon value: -1"),
    ("Rprop", dict(etas=(1.2, 0.5)), "Invalid eta values: 1.2, 0.5"),
    ("Rprop", dict(etas=(0.0, 1.2)), "Invalid eta values: 0.0, 1.2"),
    ("ASGD", dict(lr=-1), "Invalid learning rate: -1"),
    ("ASGD", dict(weight_decay=-1), "Invalid weight_decay value: -1"),
]


@pytest.mark.parametrize("name,kw,message", BAD, ids=[f"{b[0]}-{next(iter(b[1]))}" for b in BAD])
def test_bad_hyperparameters_refused_as_torch(name, kw, message):
    torch = torch_or_skip()
    with pytest.raises(ValueError, match=f"^{message}$"):
        getattr(torch.optim, name)([torch.ones(2, requires_grad=True)], **kw)
    with pytest.raises(ValueError, match=f"^{message}$"):
        getattr(gt.optim, name)([gt.ones(2, requires_grad=True)], **kw)


@pytest.mark.parametrize("name", sorted({c[0] for c in CASES + EXISTING}))
def test_unimplemented_options_refused_and_off_values_accepted(name):
    cls = getattr(gt.optim, name)
    if name == "SGD":
        cls = functools.partial(cls, lr=0.1)
    accepted = inspect.signature(getattr(gt.optim, name)).parameters
    options = [k for k in ("foreach", "fused", "capturable", "differentiable") if k in accepted]
    for key in options:
        cls([gt.ones(2, requires_grad=True)], **{key: None if key in ("foreach", "fused") else False})
        if key in ("foreach", "fused"):     # torch's kernel choices, taken on the CPU as torch does
            assert cls([gt.ones(2, requires_grad=True)], **{key: True}).param_groups[0][key] is True
            continue
        with pytest.raises(NotImplementedError, match=f"{name}: {key}=True is not implemented in gt"):
            cls([gt.ones(2, requires_grad=True)], **{key: True})
    with pytest.raises(TypeError, match="maximize must be True or False, got 1"):
        cls([gt.ones(2, requires_grad=True)], maximize=1)
    with pytest.raises(TypeError, match=f"{name}: lr must be a number, got 'fast'"):
        cls([gt.ones(2, requires_grad=True)], lr="fast")


def test_bad_group_hyperparameter_and_pairs_refused():
    w, b = gt.ones(2, requires_grad=True), gt.ones(1, requires_grad=True)
    opt = gt.optim.RMSprop([w])
    with pytest.raises(ValueError, match="RMSprop: invalid lr -0.5: it must be >= 0"):
        opt.add_param_group({"params": [b], "lr": -0.5})
    with pytest.raises(TypeError, match=r"etas must be a pair of numbers, got \(0.5,\)"):
        gt.optim.Rprop([w], etas=(0.5,))
    with pytest.raises(TypeError, match="betas must be a pair of numbers, got 0.9"):
        gt.optim.NAdam([w], betas=0.9)


def test_float32_scalar_state_saturates():
    assert gt.optim.options.float32(1e300) == float("inf") and gt.optim.options.float32(-1e300) == float("-inf")
    assert gt.optim.options.float32(0.1) == float(np.float32(0.1))


def test_empty_and_zero_dim_parameters():
    torch = torch_or_skip()
    for name in sorted({c[0] for c in CASES}):
        e, z = gt.zeros(0, 3, requires_grad=True), gt.tensor(1.5, requires_grad=True)
        te, tz = torch.zeros(0, 3, requires_grad=True), torch.tensor(1.5, dtype=torch.float32, requires_grad=True)
        ours, theirs = getattr(gt.optim, name)([e, z]), getattr(torch.optim, name)([te, tz])
        for g in (0.5, -0.25):
            e.grad, z.grad = gt.zeros(0, 3), gt.tensor(g)
            te.grad, tz.grad = torch.zeros(0, 3), torch.tensor(g)
            ours.step(), theirs.step()
        assert e.shape == (0, 3) and z.shape == ()
        np.testing.assert_allclose(z.numpy(), tz.detach().numpy(), rtol=2e-6, err_msg=name)


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, maximize=True)),
                                     ("SGD", dict(lr=0.1, momentum=0.5, maximize=True)),
                                     ("Adam", dict(lr=0.1, amsgrad=True, maximize=True))])
def test_maximize_and_amsgrad_in_backward_match_step(name, kw):
    results = []
    for in_backward in (False, True):
        w = gt.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
        x = gt.tensor([[1.0, 2.0], [3.0, 4.0]])
        opt = getattr(gt.optim, name)([w], in_backward=in_backward, **kw)
        for _ in range(3):
            (x @ w).pow(2).sum().backward()
            opt.step()
            opt.zero_grad()
        results.append(w.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6)
    assert not np.allclose(results[0], [[1.0, -2.0], [0.5, 3.0]])
