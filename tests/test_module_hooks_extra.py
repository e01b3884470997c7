"""Hooks common to all modules (gt/nn/global_hooks.py, torch's ``torch.nn.modules.module.
register_module_*``), the state-dict hooks (gt/nn/state_dict_hooks.py) and the deprecated
``register_backward_hook``, run beside torch: the same program on the same tiny models records the
same calls, in the same order, with the same arguments and results."""

import contextlib

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn.modules import module as gt_module
from helpers import torch_or_skip

W = np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])   # (3, 2): the Linear's weight in every program
B_ = np.array([0.1, -0.2, 0.3])


def _lib(name):
    """(tensor library, its nn, its torch.nn.modules.module) for ``"gt"`` or ``"torch"``."""
    if name == "gt":
        return gt, nn, gt_module
    torch = torch_or_skip()
    import torch.nn.modules.module as torch_module
    return torch, torch.nn, torch_module


def _model(lib, mod):
    """Outer(inner=Scale, fc=Linear(2, 3)): ``fc(inner(x, factor))``, float64, fixed weights."""
    class Scale(mod.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    class Outer(mod.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.fc = Scale(), mod.Linear(2, 3).double()
            self.register_buffer("count", lib.zeros(1, dtype=lib.float64))

        def forward(self, x):
            return self.fc(self.inner(x, factor=2.0))
    model = Outer()
    model.load_state_dict({"fc.weight": lib.tensor(W), "fc.bias": lib.tensor(B_), "count": lib.zeros(1)})
    return model


def _x(lib):
    return lib.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=lib.float64, requires_grad=True)


def _name(m):
    return type(m).__name__


# ---- global forward hooks --------------------------------------------------------------------

def _forward_program(name):
    lib, mod, module = _lib(name)
    events, model = [], _model(lib, mod)
    model.fc.register_forward_pre_hook(lambda m, args: events.append(("own-pre", _name(m))))
    model.fc.register_forward_hook(lambda m, args, out: events.append(("own-post", _name(m))) or out + 1)
    handles = [
        module.register_module_forward_pre_hook(lambda m, args: events.append(("pre", _name(m), len(args)))),
        module.register_module_forward_pre_hook(lambda m, args: args[0] * 10 if _name(m) == "Scale" else None),
        module.register_module_forward_hook(lambda m, args, out: events.append(("post", _name(m)))),
        module.register_module_forward_hook(lambda m, args, kwargs, out: events.append(("post-kw", kwargs)),
                                            with_kwargs=True),
        module.register_module_forward_hook(lambda m, args, out: out * 2 if _name(m) == "Linear" else None),
    ]
    try:
        out = model(_x(lib))
    finally:
        for h in handles:
            h.remove()
    events.append("removed")
    model.inner(_x(lib))                                # no global hook left: nothing recorded
    return events, out.tolist()


def test_global_forward_hooks_run_before_the_modules_own_as_torchs():
    ours, theirs = _forward_program("gt"), _forward_program("torch")
    assert ours == theirs
    assert ours[0][:3] == [("pre", "Outer", 1), ("pre", "Scale", 1), ("post", "Scale")]
    assert gt.nn.hooks._global_call_hooks == {}    # removed: calls take the fast path again


def _always_program(name):
    lib, mod, module = _lib(name)
    seen = []

    class Boom(mod.Module):
        def forward(self, x):
            raise ValueError("boom")
    m = Boom()
    m.register_forward_hook(lambda m, args, out: seen.append(("own-always", out)), always_call=True)

    def failing(m, args, out):
        raise KeyError("hook failed")
    handles = [module.register_module_forward_hook(lambda m, args, out: seen.append(("plain", out))),
               module.register_module_forward_hook(lambda m, args, out: seen.append(("always", args[0].tolist())),
                                                   always_call=True),
               module.register_module_forward_hook(failing, always_call=True)]
    try:
        with pytest.warns(UserWarning, match="global module forward hook with ``always_call=True`` raised an "
                                             "exception .*hook failed"):
            with pytest.raises(ValueError, match="boom"):
                m(lib.tensor([1.0]))
    finally:
        for h in handles:
            h.remove()
    return seen


def test_global_always_call_hooks_run_first_when_forward_raises():
    assert _always_program("gt") == _always_program("torch") == [("always", [1.0]), ("own-always", None)]


def test_a_global_hook_sends_fused_layers_through_their_hooks():
    from gt.nn.hooks import has_hooks
    lin = nn.Linear(2, 2)
    assert not has_hooks(lin)
    with gt_module.register_module_forward_pre_hook(lambda m, args: None):
        assert has_hooks(lin)
    assert not has_hooks(lin)


# ---- global backward hooks -------------------------------------------------------------------

def _backward_program(name):
    lib, mod, module = _lib(name)
    events, model = [], _model(lib, mod)
    model.fc.register_full_backward_pre_hook(lambda m, go: events.append(("own-bpre", _name(m))))
    model.fc.register_full_backward_hook(lambda m, gi, go: events.append(("own-bwd", _name(m))))

    def gpre(m, go):
        events.append(("bpre", _name(m), [g.shape[-1] for g in go]))

    def ghook(m, gi, go):
        events.append(("bwd", _name(m), [None if g is None else g.tolist() for g in gi]))
        return (gi[0] * 3,) if _name(m) == "Scale" else None
    handles = [module.register_module_full_backward_pre_hook(gpre), module.register_module_full_backward_hook(ghook)]
    try:
        x = _x(lib)
        model(x).sum().backward()
    finally:
        for h in handles:
            h.remove()
    return events, x.grad.tolist()


def test_global_backward_hooks_run_before_the_modules_own_as_torchs():
    ours, theirs = _backward_program("gt"), _backward_program("torch")
    assert ours[0] == theirs[0]
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)
    assert [e[:2] for e in ours[0][:3]] == [("bpre", "Outer"), ("bpre", "Linear"), ("own-bpre", "Linear")]


# ---- registration hooks ----------------------------------------------------------------------

def _registration_program(name):
    lib, mod, module = _lib(name)
    events = []

    def on_param(m, n, p):
        events.append(("param", _name(m), n, tuple(p.shape)))
        return mod.Parameter(p.detach() * 2) if n == "w" else None

    def on_buffer(m, n, b):
        events.append(("buffer", _name(m), n, None if b is None else tuple(b.shape)))

    def on_module(m, n, c):
        events.append(("module", _name(m), n, None if c is None else _name(c)))

    class Net(mod.Module):
        def __init__(self):
            super().__init__()
            self.w = mod.Parameter(lib.ones(2, dtype=lib.float64))
            self.register_parameter("nothing", None)
            self.register_buffer("b", lib.zeros(3))
            self.b = lib.ones(3)                       # re-assigning a buffer registers it again
            self.add_module("act", mod.ReLU())
            self.child = mod.Identity()
            self.child = None
    handles = [module.register_module_parameter_registration_hook(on_param),
               module.register_module_buffer_registration_hook(on_buffer),
               module.register_module_module_registration_hook(on_module)]
    try:
        net = Net()
    finally:
        for h in handles:
            h.remove()
    Net()                                              # no hook left: nothing recorded
    return events, net.w.tolist(), type(net.w).__name__


def test_registration_hooks_as_torchs():
    ours = _registration_program("gt")
    assert ours == _registration_program("torch")
    assert ours[1] == [2.0, 2.0]                       # the parameter the hook returned was stored


# ---- deprecated backward hook and errors -----------------------------------------------------

def _guided_relu(name):
    """Guided backprop with the deprecated hook on a one-op module (where torch's grad_input is
    the module's own)."""
    lib, mod, _ = _lib(name)
    relu = mod.ReLU()
    with pytest.warns(FutureWarning, match="full backward hook") if name == "gt" else contextlib.nullcontext():
        relu.register_backward_hook(lambda m, gi, go: (gi[0].clamp(min=0) * 0.5,))
    x = lib.tensor([-1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
    (relu(x) * lib.tensor([1.0, -2.0, 4.0], dtype=lib.float64)).sum().backward()
    return x.grad.tolist()


@pytest.mark.filterwarnings("ignore:Using a non-full backward hook")
def test_deprecated_backward_hook_on_a_one_op_module_as_torchs():
    assert _guided_relu("gt") == _guided_relu("torch") == [0.0, 0.0, 2.0]


def test_deprecated_and_full_backward_hooks_do_not_mix(monkeypatch):
    torch = torch_or_skip()
    import torch.nn.modules.module as torch_module
    monkeypatch.setattr(torch_module, "_global_is_full_backward_hook", None)
    monkeypatch.setattr(gt.nn.global_hooks, "_is_full_backward_hook", None)
    for mod in (nn, torch.nn):
        lin = mod.Linear(2, 2)
        lin.register_full_backward_hook(lambda *a: None)
        with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks and full backward hooks "
                                               "on a single Module"):
            with pytest.warns(FutureWarning, match="register_full_backward_hook") if mod is nn \
                    else contextlib.nullcontext():
                lin.register_backward_hook(lambda *a: None)
    for module in (gt_module, torch_module):
        with pytest.warns(FutureWarning, match="register_module_full_backward_hook") if module is gt_module \
                else contextlib.nullcontext():
            module.register_module_backward_hook(lambda *a: None).remove()
        with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks and full backward hooks "
                                               "as a global Module hook"):
            module.register_module_full_backward_hook(lambda *a: None)


@pytest.mark.parametrize("register", ["register_module_forward_pre_hook", "register_module_forward_hook",
                                      "register_module_full_backward_pre_hook", "register_module_full_backward_hook",
                                      "register_module_parameter_registration_hook",
                                      "register_module_buffer_registration_hook",
                                      "register_module_module_registration_hook"])
def test_a_hook_that_is_not_callable_is_refused(register):
    with pytest.raises(TypeError, match=f"{register}: hook must be callable, got str"):
        getattr(gt_module, register)("not a hook")
    assert gt.nn.hooks._global_call_hooks == {}


# ---- state_dict hooks ------------------------------------------------------------------------

def _save_program(name):
    lib, mod, _ = _lib(name)
    events, model = [], _model(lib, mod)
    model.register_state_dict_pre_hook(lambda m, prefix, keep_vars: events.append(("pre", _name(m), prefix)))
    model.fc.register_state_dict_pre_hook(lambda m, prefix, keep_vars: events.append(("pre", _name(m), prefix,
                                                                                      keep_vars)))

    def post(m, sd, prefix, meta):
        events.append(("post", _name(m), prefix, list(sd), meta))
        sd.pop(prefix + "bias", None)
        sd[prefix + "extra"] = sd[prefix + "weight"] * 0 + 7
    model.fc.register_state_dict_post_hook(post)
    model.register_state_dict_post_hook(lambda m, sd, prefix, meta: events.append(("post", _name(m), list(sd))))
    sd = model.state_dict(prefix="top.")
    return events, list(sd), np.asarray(sd["top.fc.extra"]).tolist()


def test_state_dict_hooks_run_as_torchs():
    ours = _save_program("gt")
    assert ours == _save_program("torch")
    assert ours[0][-1] == ("post", "Outer", ["top.count", "top.fc.weight", "top.fc.extra"])


def test_a_state_dict_post_hook_must_return_none():
    for mod in (nn, torch_or_skip().nn):
        lin = mod.Linear(2, 2)
        h = lin.register_state_dict_post_hook(lambda m, sd, prefix, meta: sd)
        with pytest.raises(RuntimeError, match="state_dict post-hook must return None"):
            lin.state_dict()
        h.remove()
        assert list(lin.state_dict()) == ["weight", "bias"]


# ---- load_state_dict hooks -------------------------------------------------------------------

def _load_program(name, strict, source):
    """Load ``source`` (dict of numpy arrays, old names ``fc.w``/``fc.b``) with a renaming pre-hook on
    fc and recording post-hooks; returns what the hooks saw, the result and the loaded weight."""
    lib, mod, _ = _lib(name)
    events, model = [], _model(lib, mod)

    def rename(m, sd, prefix, meta, strict_, missing, unexpected, errors):
        events.append(("pre", _name(m), prefix, sorted(sd), meta, strict_))
        for old, new in (("w", "weight"), ("b", "bias")):
            if prefix + old in sd:
                sd[prefix + new] = sd.pop(prefix + old)
    model.fc.register_load_state_dict_pre_hook(rename)
    model.register_load_state_dict_pre_hook(lambda m, sd, prefix, *rest: events.append(("pre", _name(m), prefix)))
    model.fc.register_load_state_dict_post_hook(lambda m, keys: events.append(("post", _name(m), list(keys[0]),
                                                                               list(keys[1]))))
    model.register_load_state_dict_post_hook(lambda m, keys: events.append(("post", _name(m), list(keys[0]),
                                                                            list(keys[1]))))
    result = model.load_state_dict({k: lib.tensor(v) for k, v in source.items()}, strict=strict)
    return events, (list(result.missing_keys), list(result.unexpected_keys)), model.fc.weight.tolist()


def test_load_state_dict_hooks_run_as_torchs():
    source = {"fc.w": W * 3, "fc.b": B_, "zzz": np.ones(1), "inner.x": np.ones(1)}
    ours = _load_program("gt", False, source)
    assert ours == _load_program("torch", False, source)
    assert ours[1] == (["count"], ["zzz", "inner.x"]) and ours[2] == (W * 3).tolist()
    assert [e[:2] for e in ours[0]] == [("pre", "Outer"), ("pre", "Linear"), ("post", "Linear"), ("post", "Outer")]


def _strict_program(name, clear):
    lib, mod, _ = _lib(name)
    model = _model(lib, mod)

    def fix(m, keys):
        if clear:
            keys.missing_keys.clear()                  # a post-hook may forgive the missing keys...
        else:
            keys.unexpected_keys.append("invented")    # ...or add keys, which strict=True refuses
    h = model.register_load_state_dict_post_hook(fix)
    sd = {"fc.weight": lib.tensor(W * 2), "fc.bias": lib.tensor(B_)}
    try:
        result = model.load_state_dict(sd)
        return list(result.missing_keys), list(result.unexpected_keys), model.fc.weight.tolist()
    except RuntimeError as e:
        return str(e).split("\n")[1:], model.fc.weight.tolist()
    finally:
        h.remove()


def test_a_load_post_hook_changes_what_strict_refuses_as_torchs():
    assert _strict_program("gt", True) == _strict_program("torch", True) == ([], [], (W * 2).tolist())
    ours, theirs = _strict_program("gt", False), _strict_program("torch", False)
    assert ours[1] == theirs[1] == (W * 2).tolist()   # loaded, then refused, as torch
    assert ours[0][0].strip().rstrip(". ") == theirs[0][0].strip().rstrip(". ") == \
        'Missing key(s) in state_dict: "count"'
    assert ours[0][1].strip().rstrip(". ") == theirs[0][1].strip().rstrip(". ") == \
        'Unexpected key(s) in state_dict: "invented"'


def test_load_hooks_get_torchs_metadata_and_a_wrong_shape_loads_nothing():
    torch = torch_or_skip()
    metas = []
    for mod, lib in ((nn, gt), (torch.nn, torch)):
        model = _model(lib, mod)
        model.fc.register_load_state_dict_pre_hook(lambda m, sd, prefix, meta, *rest: metas.append(meta))
        model.load_state_dict(_model(torch, torch.nn).state_dict())     # a torch state dict: its _metadata
    assert metas[0] == metas[1] == {"version": 1}
    model = _model(gt, nn)
    model.fc.register_load_state_dict_post_hook(lambda m, keys: None)
    with pytest.raises(RuntimeError, match=r"(?s)nothing was loaded.*size mismatch for fc.bias: copying a value "
                                           r"of shape \(2,\)"):
        model.load_state_dict({"fc.weight": W * 5, "fc.bias": np.zeros(2), "count": np.zeros(1)})
    assert model.fc.weight.tolist() == W.tolist()
    model.register_load_state_dict_post_hook(lambda m, keys: keys)
    with pytest.raises(AssertionError, match="are not expected to return new values"):
        model.load_state_dict({"fc.weight": W, "fc.bias": B_, "count": np.zeros(1)})
    with pytest.raises(TypeError, match="register_load_state_dict_pre_hook: hook must be callable, got int"):
        model.register_load_state_dict_pre_hook(3)
    with pytest.raises(TypeError, match="load_state_dict expects a dict-like mapping, got list"):
        model.load_state_dict([1])


def test_state_dict_hook_handles_remove():
    model, calls = _model(gt, nn), []
    with model.register_state_dict_pre_hook(lambda *a: calls.append("save")):
        with model.register_load_state_dict_post_hook(lambda *a: calls.append("load")):
            model.load_state_dict(model.state_dict())
    model.load_state_dict(model.state_dict())
    assert calls == ["save", "load"] and not model._state_dict_pre_hooks and not model._load_state_dict_post_hooks
