"""gt.optim beside torch, driven by torch's own optimizer table (``torch.testing._internal.
common_optimizers.optim_db``: 15 OptimizerInfos, 14 of them here; SparseAdam, which needs sparse
gradients, is tested in tests/test_sparse_coo_parity.py).

For every OptimizerInfo (ids: the class names): each of the table's CPU inputs (constructor
kwargs), float64 and float32, runs ``STEPS`` steps on the same parameters with the same loss in
torch and in gt (parameters compared after every step), then the state dicts (keys and values),
then torch's state dict is loaded into a fresh gt optimizer and both go on for ``MORE`` steps. The
default input also runs with each lr scheduler list of the table, and with each of torch's kernel
flags (``foreach``, ``fused``, ``differentiable``, ``capturable``) switched on: gt runs (and
matches) where torch runs on the CPU, and raises where torch raises. The table's error inputs: gt
raises where torch raises. Known differences: the table below, each an xfail(strict=True) case.
"""

import types
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")   # common_optimizers imports it
pytestmark = pytest.mark.table    # the GT_DEVICES passes run a spread of the table (tests/conftest.py)

import gt  # noqa: E402
import gt.optim as go  # noqa: E402
from gt.client import nn as gnn  # noqa: E402
from torch.testing._internal.common_optimizers import optim_db  # noqa: E402

STEPS, MORE = 5, 3

# Known differences, each a documented divergence (not a bug left), run as xfail(strict=True):
# - SGD without ``lr``: torch 2.13 defaults it to 1e-3; gt's SGD takes ``SGD(params, lr)`` (the
#   public gt API's signature; tests/test_optim.py). The runs below pass torch's 1e-3 to gt.
# - Muon: torch runs its Newton-Schulz iteration in bfloat16, gt in the parameter's dtype
#   (gt/optim/muon.py): compared here against torch's iteration without the cast (a fixture).
# - A parameter twice in one group: torch warns ("this will cause an error" in a future release);
#   gt refuses it already (ValueError, tests/test_optim.py).
KNOWN = {
    ("SGD", "default lr"): "gt's SGD(params, lr) needs lr (torch 2.13: 1e-3)",
    ("*", "duplicate parameters"): "gt refuses a parameter twice in a group (torch warns)",
}
# LBFGS's curvature pairs after it has converged (1 / (y.s) of steps near zero) are rounding noise
# in float32: its parameters are compared, its state only in float64 (to 1e-6)
NOISY_STATE = {"LBFGS"}
# Muon with a tensor lr: torch scales it by sqrt(rows / cols) in the tensor's float32 (a rounding of
# the step, 3e-8 relative), gt in float64
LOOSER = {("Muon", "Tensor lr", torch.float64): 1e-7}
# LBFGS's inputs with a small lr take hundreds of inner iterations each (seconds): run in float64
# only, beside the schedulers
SLOW = {"LBFGS": ("non-default lr", "Tensor lr")}
# torch's own kernel choices differ at rounding level (ASGD's foreach form: 1e-9 after 3 steps)
FLAG_RTOL = 1e-6


def _newton_schulz_in_dtype(grad, ns_coefficients, ns_steps, eps):
    """torch's Muon iteration without its cast to bfloat16 (gt's runs in the parameter's dtype,
    gt/optim/muon.py), so that the two are compared to rounding."""
    a, b, c = ns_coefficients
    x = grad.T if grad.size(0) > grad.size(1) else grad
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


@pytest.fixture(autouse=True)
def _muon_in_the_parameters_dtype(monkeypatch):
    monkeypatch.setattr(torch.optim._muon, "_zeropower_via_newtonschulz", _newton_schulz_in_dtype)


def _np_dtype(dtype):
    return str(dtype).split(".")[-1]


def make_params(name, dtype):
    """A weight (3, 2) and a bias; Muon takes only matrices: its bias is (1, 3)."""
    rng = np.random.default_rng(0)
    vals = [rng.standard_normal((3, 2)), rng.standard_normal((1, 3) if name == "Muon" else (3,))]
    return ([torch.nn.Parameter(torch.tensor(v, dtype=dtype)) for v in vals],
            [gnn.Parameter(gt.from_numpy(v.astype(_np_dtype(dtype)))) for v in vals])


def make_losses(dtype, linear):
    """The same loss on both sides: tanh regression, or linear least squares (LBFGS: one minimum)."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))

    def loss(lib, p):
        z = lib.from_numpy(x.astype(_np_dtype(dtype))) @ p[0].T + p[1]
        return ((z if linear else z.tanh()) - lib.from_numpy(y.astype(_np_dtype(dtype)))).pow(2).sum()
    return (lambda p: loss(torch, p)), (lambda p: loss(gt, p))


def to_gt(v):
    if isinstance(v, torch.Tensor):
        return gt.from_numpy(v.detach().numpy().copy())
    if isinstance(v, tuple):
        return tuple(to_gt(x) for x in v)
    return v


def gt_kwargs(name, kwargs):
    out = {k: to_gt(v) for k, v in kwargs.items()}
    if name == "SGD":
        out.setdefault("lr", 1e-3)      # torch 2.13's default (see KNOWN)
    return out


def numpy_of(v):
    if isinstance(v, torch.Tensor):
        return v.detach().numpy()
    return v.numpy() if isinstance(v, gt.Tensor) else v


def check_close(a, b, what, rtol):
    a, b = np.asarray(numpy_of(a), dtype=float), np.asarray(numpy_of(b), dtype=float)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    np.testing.assert_allclose(b, a, rtol, rtol * 1e-2, equal_nan=True, err_msg=what)


def check_state_dicts(theirs, ours, rtol, values=True):
    assert sorted(theirs["state"]) == sorted(ours["state"])
    for i, state in theirs["state"].items():
        assert sorted(state) == sorted(ours["state"][i]), f"state {i} keys"
        for k in state if values else ():
            check_close(state[k], ours["state"][i][k], f"state[{i}][{k}]", rtol)
    for j, (tg, gg) in enumerate(zip(theirs["param_groups"], ours["param_groups"], strict=True)):
        assert sorted(tg) == sorted(gg), f"group {j}: torch's keys {sorted(tg)}, gt's {sorted(gg)}"
        for k, a in tg.items():
            if isinstance(a, (torch.Tensor, float, int)) and not isinstance(a, bool):
                check_close(a, gg[k], f"group {j} {k}", rtol)
            elif isinstance(a, tuple):    # betas (floats or tensors), Adafactor's eps (None, 1e-3)
                assert [None if x is None else float(numpy_of(x)) for x in a] == \
                    [None if x is None else float(numpy_of(x)) for x in gg[k]], k
            else:
                assert a == gg[k], f"group {j} {k}: torch {a!r}, gt {gg[k]!r}"


def sched_twin(make):
    """The table's scheduler lambda, run against gt's schedulers of the same names."""
    names = {n: getattr(go.lr_scheduler, n) for n in make.__code__.co_names if hasattr(go.lr_scheduler, n)}
    return types.FunctionType(make.__code__, names)


class Run:
    """One optimizer on one side (lib: torch or gt) over the shared loss."""

    def __init__(self, opt, params, loss, closure_step):
        self.opt, self.params, self.loss, self.closure_step, self.scheds = opt, params, loss, closure_step, []

    def closure(self):
        self.opt.zero_grad()
        value = self.loss(self.params)
        value.backward()
        return value

    def step(self):
        if self.closure_step:
            value = self.opt.step(self.closure)
        else:
            value = self.closure()
            self.opt.step()
        for s in self.scheds:
            s.step(float(numpy_of(value))) if type(s).__name__ == "ReduceLROnPlateau" else s.step()


def run_pair(info, kwargs, dtype, scheds=(), steps=STEPS, state=None, rtol=None):
    """torch's and gt's optimizer (with ``state`` loaded, where given) stepped side by side."""
    name = info.optim_cls.__name__
    rtol = rtol or (1e-9 if dtype == torch.float64 else 1e-4)
    tp, gp = make_params(name, dtype)
    tloss, gloss = make_losses(dtype, linear=info.step_requires_closure)
    if state is not None:   # go on from torch's parameters and state
        with torch.no_grad():
            for a, b in zip(tp, state[0]):
                a.copy_(b)
        for a, b in zip(gp, state[0]):
            a.data = gt.from_numpy(b.detach().numpy().copy())
    theirs = Run(info.optim_cls(tp, **kwargs), tp, tloss, info.step_requires_closure)
    ours = Run(getattr(go, name)(gp, **gt_kwargs(name, kwargs)), gp, gloss, info.step_requires_closure)
    if state is not None:
        theirs.opt.load_state_dict(state[1])
        ours.opt.load_state_dict(_numpy_state(state[1]))
    for make in scheds:
        theirs.scheds.append(make(theirs.opt))
        ours.scheds.append(sched_twin(make)(ours.opt))
    for s in range(steps):
        theirs.step()
        ours.step()
        for i, (a, b) in enumerate(zip(tp, gp)):
            check_close(a, b, f"step {s}, parameter {i}", rtol)
    return theirs, ours, rtol


def _numpy_state(sd):
    if isinstance(sd, torch.Tensor):
        return sd.detach().numpy().copy()
    if isinstance(sd, dict):
        return {k: _numpy_state(v) for k, v in sd.items()}
    if isinstance(sd, list):
        return [_numpy_state(v) for v in sd]
    return sd


def run_input(info, kwargs, dtype, scheds=(), rtol=None):
    name = info.optim_cls.__name__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # torch's (and gt's) deprecation and scheduler-order warnings
        theirs, ours, rtol = run_pair(info, kwargs, dtype, scheds, rtol=rtol)
        noisy = name in NOISY_STATE
        saved = theirs.opt.state_dict()
        check_state_dicts(saved, ours.opt.state_dict(), 1e-6 if noisy else rtol,
                          values=not (noisy and dtype == torch.float32))
        run_pair(info, kwargs, dtype, steps=MORE, state=([p.detach().clone() for p in theirs.params], saved),
                 rtol=rtol)


# SparseAdam: the table's runs give dense gradients (torch refuses them too) and its error inputs
# hold sparse parameters this harness cannot convert; it is tested with sparse gradients beside
# torch in tests/test_sparse_coo_parity.py
INFOS = {info.optim_cls.__name__: info for info in optim_db
         if hasattr(go, info.optim_cls.__name__) and info.optim_cls.__name__ != "SparseAdam"}


def _inputs(info):
    return info.optim_inputs_func(device="cpu")


@pytest.mark.parametrize("name", sorted(INFOS))
def test_optimizer_matches_torch(name):
    info = INFOS[name]
    for dtype in (torch.float64, torch.float32):
        for oi in _inputs(info):
            if oi.params is None and oi.desc not in SLOW.get(name, ()):
                try:
                    run_input(info, oi.kwargs, dtype, rtol=LOOSER.get((name, oi.desc, dtype)))
                except AssertionError as exc:
                    raise AssertionError(f"{name} {oi.desc!r} {oi.kwargs} {dtype}: {exc}") from None



@pytest.mark.parametrize("name", sorted(INFOS))
def test_optimizer_with_schedulers_matches_torch(name):
    info = INFOS[name]
    default = _inputs(info)[0].kwargs
    for scheds in info.scheduler_inputs:
        run_input(info, default, torch.float64, scheds)
    for desc in SLOW.get(name, ()):
        run_input(info, next(oi.kwargs for oi in _inputs(info) if oi.desc == desc), torch.float64)


def _flags(info):
    flags = [f for f in info.supported_impls if f in ("foreach", "fused", "differentiable")]
    return flags + (["capturable"] if info.has_capturable_arg else [])


def _outcome(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - which exception is the answer
        return exc
    return None


@pytest.mark.parametrize("name", sorted(INFOS))
def test_kernel_flags_as_torch_on_the_cpu(name):
    """``foreach=True``/``fused=True`` run where torch runs them on the CPU (the same values); gt
    raises where torch raises (``capturable`` on the CPU, ``differentiable`` on leaf parameters)."""
    info = INFOS[name]
    default = _inputs(info)[0].kwargs
    for flag in _flags(info):
        kwargs = dict(default, **{flag: True})
        theirs = _outcome(lambda: _torch_steps(info, kwargs))
        if theirs is None:
            run_input(info, kwargs, torch.float64, rtol=FLAG_RTOL)
        else:
            ours = _outcome(lambda: run_pair(info, kwargs, torch.float64, steps=1))
            assert ours is not None and not isinstance(ours, AssertionError), f"{flag}=True: torch {theirs!r}, gt {ours!r}"


def _torch_steps(info, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tp, _ = make_params(info.optim_cls.__name__, torch.float64)
        Run(info.optim_cls(tp, **kwargs), tp, make_losses(torch.float64, info.step_requires_closure)[0],
            info.step_requires_closure).step()


def _gt_params(e, gp):
    """The error input's parameters as gt's (the same object where torch's repeats one)."""
    seen = {}

    def conv(v):
        if v is None:
            return gp
        if isinstance(v, torch.Tensor):
            return seen.setdefault(id(v), gnn.Parameter(gt.from_numpy(v.detach().numpy().copy())))
        if isinstance(v, (list, tuple)):
            return type(v)(conv(x) for x in v)
        if isinstance(v, dict):
            return {k: conv(x) if k == "params" else to_gt(x) for k, x in v.items()}
        return v
    return conv(e.params)


def error_difference(info, ei):
    """None where gt raises (or warns) as torch does for the table's error input."""
    name, e = info.optim_cls.__name__, ei.optimizer_error_input
    _, gp = make_params(name, torch.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            opt = getattr(go, name)(_gt_params(e, gp), **gt_kwargs(name, e.kwargs))
            if ei.error_on.name == "STEP_ERROR":
                for p in opt.param_groups[0]["params"]:
                    p.grad = gt.zeros_like(p)
                opt.step()
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, ei.error_type):
                return None
            return f"gt raised {exc!r}; torch {ei.error_type.__name__} ({ei.error_regex})"
    if issubclass(ei.error_type, Warning) and any(issubclass(w.category, ei.error_type) for w in caught):
        return None
    return f"gt did not raise; torch {ei.error_type.__name__} ({ei.error_regex})"


def _error_inputs(info, known):
    """The table's error inputs (complex parameters left out: gt's complex numbers are elsewhere),
    those of KNOWN (known=True) or the others."""
    for ei in info.optim_error_inputs_func(device="cpu", dtype=torch.float32):
        params = ei.optimizer_error_input.params
        if isinstance(params, list) and any(isinstance(p, torch.Tensor) and p.is_complex() for p in params):
            continue
        if ("duplicate parameters" in ei.error_regex) == known:
            yield ei


@pytest.mark.parametrize("name", sorted(INFOS))
def test_optimizer_errors_match_torch(name):
    info = INFOS[name]
    found = [f"{ei.error_regex!r}: {d}" for ei in _error_inputs(info, False) if (d := error_difference(info, ei))]
    assert not found, "\n".join(found)


@pytest.mark.xfail(strict=True, reason=KNOWN[("*", "duplicate parameters")])
def test_known_difference_duplicate_parameters_warn():
    info = INFOS["Adam"]
    found = [d for ei in _error_inputs(info, True) if (d := error_difference(info, ei))]
    assert not found, "\n".join(found)


@pytest.mark.xfail(strict=True, raises=TypeError, reason=KNOWN[("SGD", "default lr")])
def test_known_difference_sgd_default_lr():
    assert go.SGD([gnn.Parameter(gt.ones(2))]).param_groups[0]["lr"] == 1e-3
