"""gt.optim and gt.nn.utils without torch: numpy references, in-place updates, checkpoints, errors."""

import ast
import math
import pathlib
import re

import numpy as np
import pytest

import gt
from gt.nn.utils import clip_grad_norm_, clip_grad_value_
from gt.optim import SGD, Adam, AdamW, Optimizer
from gt.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, StepLR

OPTIMIZERS = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (Adam, dict(lr=0.01, weight_decay=0.1)),
    (AdamW, dict(lr=0.01, weight_decay=0.1)),
]


def make_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    shapes = [(4, 6), (6,), (6, 2), (2,)]
    return [gt.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]


def make_data(seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return gt.tensor(rng.standard_normal((8, 4)).astype(dtype)), gt.tensor(rng.standard_normal((8, 2)).astype(dtype))


def loss_fn(params, x, y):
    w1, b1, w2, b2 = params
    out = (x @ w1 + b1).relu() @ w2 + b2
    return ((out - y) ** 2).mean()


def train(opt, params, steps, data=None):
    x, y = data or make_data()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(params, x, y).backward()
        opt.step()


def values(params):
    return [p.numpy().copy() for p in params]


# ---- the updates themselves, against numpy references ------------------------------------------
def test_sgd_plain_is_gradient_descent():
    p = gt.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    p.grad = gt.tensor(np.array([0.5, 0.25, -1.0]))
    SGD([p], lr=0.1).step()
    np.testing.assert_array_equal(p.numpy(), np.array([1.0, -2.0, 3.0]) - 0.1 * np.array([0.5, 0.25, -1.0]))


def test_sgd_momentum_matches_numpy_reference():
    rng = np.random.default_rng(3)
    p0, grads = rng.standard_normal(5), rng.standard_normal((4, 5))
    p = gt.tensor(p0, requires_grad=True)
    opt = SGD([p], lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.05)
    ref, buf = p0.copy(), None
    for g in grads:
        p.grad = gt.tensor(g)
        opt.step()
        d = g + 0.05 * ref
        buf = d.copy() if buf is None else 0.9 * buf + 0.8 * d  # torch: the buffer starts as the first grad
        ref = ref - 0.1 * buf
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_matches_numpy_reference(cls):
    rng = np.random.default_rng(4)
    p0, grads = rng.standard_normal(5), rng.standard_normal((4, 5))
    p = gt.tensor(p0, requires_grad=True)
    lr, b1, b2, eps, wd = 0.01, 0.8, 0.99, 1e-6, 0.1
    opt = cls([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    ref, m, v = p0.copy(), np.zeros(5), np.zeros(5)
    for t, g in enumerate(grads, 1):
        p.grad = gt.tensor(g)
        opt.step()
        if cls is AdamW:
            ref = ref * (1 - lr * wd)
        else:
            g = g + wd * ref
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        ref = ref - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-12)
    assert opt.state[p]["step"] == 4


@pytest.mark.parametrize("cls,kw", OPTIMIZERS)
def test_updates_are_in_place_and_keep_dtype(cls, kw):
    params = make_params(dtype=np.float32)
    arrays = [p._data for p in params]
    before = values(params)
    opt = cls(params, **kw)
    train(opt, params, 2, make_data(dtype=np.float32))
    state_arrays = {(id(p), k): v._data for p in params for k, v in opt.state[p].items() if isinstance(v, gt.Tensor)}
    train(opt, params, 1, make_data(dtype=np.float32))
    for p, arr, old in zip(params, arrays, before):
        assert p._data is arr
        assert p.dtype == gt.float32 and p.is_leaf and p.grad_fn is None
        assert not np.array_equal(p.numpy(), old)
    for (pid, key), arr in state_arrays.items():  # state buffers are updated in place too
        p = next(q for q in params if id(q) == pid)
        assert opt.state[p][key]._data is arr and opt.state[p][key].dtype == gt.float32


@pytest.mark.parametrize("cls,kw", OPTIMIZERS)
def test_params_without_grad_are_skipped(cls, kw):
    params = make_params()
    extra = gt.tensor(np.ones(3), requires_grad=True)
    opt = cls(params + [extra], **kw)
    train(opt, params, 2)
    np.testing.assert_array_equal(extra.numpy(), np.ones(3))
    assert extra not in opt.state


@pytest.mark.parametrize("cls,kw", OPTIMIZERS)
def test_step_leaves_grads_untouched(cls, kw):
    params = make_params()
    opt = cls(params, **kw)
    loss_fn(params, *make_data()).backward()
    grads = [p.grad.numpy().copy() for p in params]
    opt.step()
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(p.grad.numpy(), g)


def test_zero_grad():
    params = make_params()
    opt = SGD(params, lr=0.1)
    loss_fn(params, *make_data()).backward()
    grad_arrays = [p.grad._data for p in params]
    opt.zero_grad(set_to_none=False)
    for p, arr in zip(params, grad_arrays):
        assert p.grad._value is arr  # updated in place and not arr.any()
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_param_groups_and_lr_changes():
    params = make_params()
    opt = SGD([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9
    for p in params:
        p.grad = gt.ones_like(p, dtype=gt.float64)
    before = values(params)
    opt.step()
    np.testing.assert_allclose(params[0].numpy(), before[0] - 0.1)
    np.testing.assert_allclose(params[3].numpy(), before[3] - 0.5)
    opt.param_groups[0]["lr"] = 0.0  # a user or scheduler may change lr between steps
    before = values(params)
    opt.step()
    np.testing.assert_array_equal(params[0].numpy(), before[0])


def test_add_param_group():
    params = make_params()
    opt = Adam(params[:2], lr=0.01)
    opt.add_param_group({"params": params[2:], "lr": 0.1})
    assert opt.param_groups[1]["betas"] == (0.9, 0.999) and opt.param_groups[1]["lr"] == 0.1
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [params[0]]})
    with pytest.raises(ValueError, match="-1"):
        opt.add_param_group({"params": [gt.zeros(2, requires_grad=True)], "lr": -1})


def test_decay_groups_skip_1d_and_frozen():
    params = make_params()
    frozen = gt.zeros(3, 3)
    groups = gt.optim.decay_groups(params + [frozen], 0.5)
    assert [[id(p) for p in g["params"]] for g in groups] == [[id(params[0]), id(params[2])],
                                                             [id(params[1]), id(params[3])]]
    opt = AdamW(groups, lr=0.1)
    for p in params:
        p.grad = gt.zeros_like(p)
    before = values(params)
    opt.step()  # zero grads: only decoupled decay moves the parameters, and only the matrices
    np.testing.assert_allclose(params[0].numpy(), before[0] * (1 - 0.1 * 0.5))
    np.testing.assert_array_equal(params[1].numpy(), before[1])


def test_closure_and_repr():
    params = make_params()
    opt = SGD(params, lr=0.1)
    data = make_data()

    def closure():
        opt.zero_grad()
        loss = loss_fn(params, *data)
        loss.backward()
        return loss

    with gt.no_grad():  # the closure still records: step turns gradients on for it
        loss = opt.step(closure)
    assert isinstance(loss, gt.Tensor) and loss_fn(params, *data).item() < loss.item()
    assert "SGD (" in repr(opt) and "lr: 0.1" in repr(opt)


def test_subclass_writes_only_init_and_update():
    class CountingSGD(Optimizer):
        def __init__(self, params, lr):
            super().__init__(params, dict(lr=lr))

        def _init_state(self, p, state, group):
            state["inits"] = state.get("inits", 0) + 1
            state["updates"] = 0

        def _update(self, p, grad, state, group):
            state["updates"] += 1
            p.sub_(grad * group["lr"])

    params = make_params()
    opt = CountingSGD(params, lr=0.1)
    train(opt, params, 3)
    assert all(opt.state[p] == {"inits": 1, "updates": 3} for p in params)
    assert opt.state_dict()["state"][0] == {"inits": 1, "updates": 3}
    with pytest.raises(ValueError, match="CountingSGD: invalid lr -1"):
        CountingSGD(params, lr=-1)


# ---- checkpoints ------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,kw", OPTIMIZERS)
def test_state_dict_resume_is_exact(cls, kw):
    def groups(params):
        return [{"params": params[:2], "weight_decay": 0.0}, {"params": params[2:], "lr": 0.05}]

    ref_params = make_params()
    ref = cls(groups(ref_params), **kw)
    train(ref, ref_params, 6)

    params = make_params()
    opt = cls(groups(params), **kw)
    train(opt, params, 3)
    ckpt = opt.state_dict()
    saved = values(params)

    params2 = make_params(seed=9)  # different values: everything comes from the checkpoint
    with gt.no_grad():
        for p, v in zip(params2, saved):
            p.copy_(v)
    opt2 = cls(groups(params2), **dict(kw, lr=123.0))
    opt2.load_state_dict(ckpt)
    assert opt2.param_groups[1]["lr"] == 0.05 and opt2.param_groups[0]["lr"] == kw["lr"]
    train(opt2, params2, 3)
    for a, b in zip(params2, ref_params):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_state_dict_layout_and_copies():
    params = make_params()
    opt = Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.1}], lr=0.01)
    train(opt, params, 1)
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1, 2, 3]]
    assert sd["param_groups"][1]["lr"] == 0.1 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(sd["state"]) == [0, 1, 2, 3]
    s = sd["state"][2]
    assert s["step"] == 1 and isinstance(s["exp_avg"], np.ndarray) and s["exp_avg"].shape == (6, 2)
    kept = s["exp_avg"].copy()
    train(opt, params, 1)
    np.testing.assert_array_equal(s["exp_avg"], kept)  # a copy, not the live buffer
    opt.state_dict()["param_groups"][0]["lr"] = 5.0
    assert opt.param_groups[0]["lr"] == 0.01


def test_load_state_dict_errors_load_nothing():
    params = make_params()
    opt = Adam(params, lr=0.01)
    train(opt, params, 1)
    good = opt.state_dict()
    live = {id(p): opt.state[p]["exp_avg"].numpy().copy() for p in params}

    bad_groups = dict(good, param_groups=good["param_groups"] * 2)
    with pytest.raises(ValueError, match="2 parameter group"):
        opt.load_state_dict(bad_groups)
    short = dict(good, param_groups=[dict(good["param_groups"][0], params=[0, 1, 2])])
    with pytest.raises(ValueError, match="3 parameters, this optimizer has 4"):
        opt.load_state_dict(short)
    bad_state = {k: dict(v) for k, v in good["state"].items()}
    bad_state[0]["exp_avg"] = bad_state[0]["exp_avg"] * 0 + 7  # valid, would load first ...
    bad_state[3]["exp_avg_sq"] = np.zeros((5,))  # ... but this one is wrongly shaped
    message = "'exp_avg_sq' of parameter 3 has shape (5,), the parameter has (2,)"
    with pytest.raises(ValueError, match=re.escape(message)):
        opt.load_state_dict(dict(good, state=bad_state))
    bad_beta = dict(good, param_groups=[dict(good["param_groups"][0], betas=(1.5, 0.999))])
    with pytest.raises(ValueError, match="1.5"):
        opt.load_state_dict(bad_beta)
    for p in params:
        np.testing.assert_array_equal(opt.state[p]["exp_avg"].numpy(), live[id(p)])
    assert opt.param_groups[0]["lr"] == 0.01


# ---- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
                                  "RAdam", "Rprop", "ASGD"])
def test_frozen_parameters_are_accepted_and_left_alone_as_torch_does(name):
    # fine-tuning: model.parameters() holds frozen ones; torch takes them and skips them (no grad)
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    out = []
    for M in (gt, torch):
        w, frozen = M.tensor(a.copy(), requires_grad=True), M.tensor(b.copy())
        opt = getattr(M.optim, name)([w, frozen], lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            ((w * frozen).sum() ** 2).backward()
            opt.step()
        out.append((w.detach().numpy().copy(), frozen.numpy().copy(), sorted(opt.state_dict()["state"])))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[0][1], b)
    assert out[0][2] == out[1][2]


def test_a_frozen_parameter_beside_in_backward_sgd_is_skipped():
    w, frozen = gt.ones(3, requires_grad=True), gt.ones(3)
    opt = SGD([w, frozen], lr=0.5, in_backward=True)
    (w * frozen * 2).sum().backward()
    np.testing.assert_allclose(w.numpy(), 0.0)
    np.testing.assert_array_equal(frozen.numpy(), 1.0)
    assert opt.param_groups[0]["params"][1] is frozen


def test_param_validation():
    w = gt.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single tensor"):
        SGD(w, lr=0.1)
    with pytest.raises(TypeError, match="parameter 1 is a ndarray"):
        SGD([w, np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        SGD([w, w], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(TypeError, match="not a set"):
        SGD([{"params": {w}}], lr=0.1)
    with pytest.raises(TypeError, match="lr"):
        SGD([w])  # lr is required, as the SGD(params, lr) signature says


@pytest.mark.parametrize("make,value", [
    (lambda w: SGD([w], lr=-0.1), "-0.1"),
    (lambda w: SGD([w], lr=float("nan")), "nan"),
    (lambda w: SGD([w], lr=0.1, momentum=-0.5), "-0.5"),
    (lambda w: SGD([w], lr=0.1, weight_decay=-0.01), "-0.01"),
    (lambda w: SGD([w], lr=0.1, dampening=-2), "-2"),
    (lambda w: SGD([w], lr=0.1, nesterov=True), "momentum=0"),
    (lambda w: SGD([w], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
    (lambda w: Adam([w], lr=-1e-3), "-0.001"),
    (lambda w: Adam([w], betas=(1.0, 0.999)), "1.0"),
    (lambda w: Adam([w], betas=(0.9, -0.1)), "-0.1"),
    (lambda w: Adam([w], eps=-1e-8), "-1e-08"),
    (lambda w: AdamW([w], weight_decay=-0.1), "-0.1"),
])
def test_hyperparameter_errors_name_the_value(make, value):
    with pytest.raises(ValueError, match=re.escape(value)):
        make(gt.zeros(3, requires_grad=True))


@pytest.mark.parametrize("make", [
    lambda w: SGD([w], lr=None),
    lambda w: SGD([w], lr="0.1"),
    lambda w: Adam([w], betas=0.9),
])
def test_hyperparameter_type_errors(make):
    with pytest.raises(TypeError):
        make(gt.zeros(3, requires_grad=True))


def test_optim_does_not_import_nn():
    # gt.nn imports gt.optim.sgd, so the reverse import would be a cycle.
    for path in pathlib.Path(gt.optim.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
            module = getattr(node, "module", None) or ""
            assert not any(n.startswith("gt.nn") for n in names + [module]), path


# ---- schedulers ------------------------------------------------------------------------------
def _lrs(sched, opt, epochs):
    out = []
    for _ in range(epochs):
        out.append(sched.get_last_lr())
        assert out[-1] == [g["lr"] for g in opt.param_groups]
        opt.step()
        sched.step()
    return out


def test_step_lr():
    opt = SGD([gt.zeros(1, requires_grad=True)], lr=1.0)
    lrs = _lrs(StepLR(opt, step_size=2, gamma=0.5), opt, 6)
    assert [lr[0] for lr in lrs] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_cosine_and_lambda_lr():
    opt = SGD([{"params": [gt.zeros(1, requires_grad=True)]}, {"params": [gt.zeros(1, requires_grad=True)], "lr": 2.0}],
              lr=1.0)
    lrs = _lrs(CosineAnnealingLR(opt, T_max=4, eta_min=0.1), opt, 5)
    assert lrs[0] == [1.0, 2.0] and lrs[4] == [0.1, 0.1]
    assert math.isclose(lrs[2][1], 0.1 + 1.9 * 0.5)
    opt2 = SGD([gt.zeros(1, requires_grad=True)], lr=0.5)
    lrs = _lrs(LambdaLR(opt2, lambda e: 1 / (e + 1)), opt2, 3)
    assert [lr[0] for lr in lrs] == [0.5, 0.25, 0.5 / 3]


def test_scheduler_resume_and_errors():
    opt = SGD([gt.zeros(1, requires_grad=True)], lr=1.0)
    sched = StepLR(opt, step_size=3, gamma=0.1)
    opt.step()                      # a scheduler stepped before its optimizer warns (torch's order)
    for _ in range(4):
        sched.step()
    opt2 = SGD([gt.zeros(1, requires_grad=True)], lr=1.0)
    opt2.load_state_dict(opt.state_dict())
    sched2 = StepLR(opt2, step_size=3, gamma=0.1)
    sched2.load_state_dict(sched.state_dict())
    sched.step(), sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr() == [opt2.param_groups[0]["lr"]]
    with pytest.raises(ValueError, match="step_size must be a positive number, got 0"):
        StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max must be a positive number, got -1"):
        CosineAnnealingLR(opt, T_max=-1)
    with pytest.raises(ValueError, match="expected 1 lr_lambdas"):
        LambdaLR(opt, [lambda e: 1.0, lambda e: 1.0])
    with pytest.raises(TypeError, match="Optimizer"):
        StepLR([opt], step_size=1)


# ---- gradient clipping -----------------------------------------------------------------------
def _grads_params(seed=5, scale=1.0):
    rng = np.random.default_rng(seed)
    params = [gt.tensor(rng.standard_normal(s), requires_grad=True) for s in [(3, 4), (5,), (2, 2)]]
    for p in params[:2]:  # the last one has no grad and is skipped
        p.grad = gt.tensor(rng.standard_normal(p.shape) * scale)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_numpy(norm_type, max_norm):
    params = _grads_params()
    grads = [p.grad.numpy().copy() for p in params[:2]]
    arrays = [p.grad._value for p in params[:2]]  # the array, or the shards' holder
    flat = np.concatenate([g.ravel() for g in grads])
    expected = np.abs(flat).max() if norm_type == math.inf else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    assert isinstance(total, gt.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), expected, rtol=1e-12)
    coef = min(max_norm / (expected + 1e-6), 1.0)
    for p, g, arr in zip(params, grads, arrays):
        assert p.grad._value is arr  # updated in place
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)
    assert params[2].grad is None


def test_clip_grad_norm_edge_cases():
    w = gt.zeros(3, requires_grad=True)
    assert clip_grad_norm_([w], 1.0).item() == 0.0  # no grads at all
    w.grad = gt.tensor([3.0, 4.0, 0.0])
    assert math.isclose(clip_grad_norm_(w, 1.0).item(), 5.0, rel_tol=1e-6)  # a single tensor
    np.testing.assert_allclose(w.grad.numpy(), [0.6, 0.8, 0.0], rtol=1e-5)
    w.grad = gt.tensor([1.0, float("inf"), 0.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([w], 1.0, error_if_nonfinite=True)
    w.grad = gt.tensor([3.0, 4.0, 0.0])
    assert clip_grad_norm_([w], 10.0, norm_type=0).item() == 1.0   # torch's: the order-0 norm of the norms


def test_clip_grad_value():
    params = _grads_params(scale=3.0)
    grads = [p.grad.numpy().copy() for p in params[:2]]
    arrays = [p.grad._value for p in params[:2]]  # the array, or the shards' holder
    clip_grad_value_(params, 1.5)
    for p, g, arr in zip(params, grads, arrays):
        assert p.grad._value is arr  # updated in place
        np.testing.assert_array_equal(p.grad.numpy(), np.clip(g, -1.5, 1.5))
