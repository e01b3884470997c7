"""torch import paths that PyTorch code uses, beside torch: torch.utils.hooks, the names of
torch.autograd.grad_mode, torch.nn.modules.lazy, torch.backends.opt_einsum and nn.Container."""

import collections
import importlib
import pickle
import warnings

import pytest

import gt

torch = pytest.importorskip("torch")
pytest.importorskip("torch.utils.benchmark")     # torch loads it on request only


def _path(root, dotted):
    for name in dotted.split("."):
        root = getattr(root, name)
    return root


@pytest.mark.parametrize("dotted", ["utils.hooks.RemovableHandle", "utils.hooks.unserializable_hook",
                                    "utils.benchmark.Timer", "utils.benchmark.Compare", "utils.benchmark.Measurement",
                                    "autograd.grad_mode.no_grad", "autograd.grad_mode.enable_grad",
                                    "autograd.grad_mode.set_grad_enabled", "autograd.grad_mode.inference_mode",
                                    "autograd.grad_mode.set_multithreading_enabled",
                                    "autograd.set_multithreading_enabled", "nn.modules.lazy.LazyModuleMixin",
                                    "backends.opt_einsum.is_available", "backends.opt_einsum.get_opt_einsum",
                                    "backends.opt_einsum.enabled", "backends.opt_einsum.strategy", "nn.Container"])
def test_torch_paths_exist_in_gt(dotted):
    _path(torch, dotted)
    _path(gt, dotted)


@pytest.mark.parametrize("module", ["gt.utils.hooks", "gt.utils.benchmark", "gt.autograd.grad_mode", "gt.nn.modules.lazy",
                                    "gt.backends.opt_einsum"])
def test_paths_import(module):
    assert importlib.import_module(module) is _path(gt, module[3:])


# ---- torch.utils.hooks.RemovableHandle ----------------------------------------------------------
def _handles(mod):
    hooks, extra = collections.OrderedDict(), collections.OrderedDict()
    h = mod.utils.hooks.RemovableHandle(hooks, extra_dict=extra)
    hooks[h.id] = extra[h.id] = "hook"
    return h, hooks, extra


def test_removable_handle_api_matches_torch():
    (th, thooks, textra), (gh, ghooks, gextra) = _handles(torch), _handles(gt)
    public = {n for n in dir(torch.utils.hooks.RemovableHandle) if not n.startswith("__")}
    assert public <= set(dir(gt.utils.hooks.RemovableHandle)) | {"id"}
    assert type(gh.id) is int and gh.id + 1 == gt.utils.hooks.RemovableHandle.next_id
    assert gh.hooks_dict_ref() is ghooks and [r() for r in gh.extra_dict_ref] == [gextra]
    for h, hooks, extra in ((th, thooks, textra), (gh, ghooks, gextra)):
        with h as entered:
            assert entered is h and hooks
        assert hooks == {} and extra == {}
        h.remove()                                   # a second remove does nothing
    state_t, state_g = th.__getstate__(), gh.__getstate__()
    assert len(state_g) == len(state_t) == 3 and state_g[1] == gh.id


def test_removable_handle_pickles_as_torch():
    for mod in (torch, gt):
        hooks = collections.OrderedDict()
        h = mod.utils.hooks.RemovableHandle(hooks)
        hooks[h.id] = "hook"
        back_hooks, back = pickle.loads(pickle.dumps((hooks, h)))   # pickled with its dict: bound to the copy
        assert back.id == h.id and back.hooks_dict_ref() is back_hooks
        back.remove()
        assert back_hooks == {} and hooks == {h.id: "hook"}
        alone = pickle.loads(pickle.dumps(h))                        # without it: a dead reference
        assert alone.id == h.id and alone.hooks_dict_ref() is None
        alone.remove()
        assert mod.utils.hooks.RemovableHandle.next_id > h.id
    old = gt.utils.hooks.RemovableHandle.__new__(gt.utils.hooks.RemovableHandle)
    old.__setstate__((None, 7))                      # torch's older two-field state
    assert old.id == 7 and old.hooks_dict_ref() is None and old.extra_dict_ref == ()
    old.remove()


def test_module_hooks_return_utils_hooks_handles():
    lin, tlin = gt.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    for module, mod in ((lin, gt), (tlin, torch)):
        handles = [module.register_forward_hook(lambda m, a, o: None), module.register_forward_pre_hook(lambda m, a: None),
                   module.register_full_backward_hook(lambda m, gi, go: None),
                   module.register_state_dict_pre_hook(lambda m, p, k: None),
                   mod.nn.modules.module.register_module_forward_hook(lambda m, a, o: None)]
        for h in handles:
            assert isinstance(h, mod.utils.hooks.RemovableHandle)
            h.remove()


def test_unserializable_hook_marks_the_function():
    def hook(grad):
        return grad

    assert gt.utils.hooks.unserializable_hook(hook) is hook and hook.__torch_unserializable__ is True


# ---- torch.autograd.grad_mode -------------------------------------------------------------------
def test_grad_mode_names_are_gt_modes():
    gm = gt.autograd.grad_mode
    assert gm.inference_mode is gt.inference_mode and gm.no_grad is gt.no_grad
    assert gm.enable_grad is gt.enable_grad and gm.set_grad_enabled is gt.set_grad_enabled
    x = gt.ones(2, requires_grad=True)
    with gm.inference_mode():
        y = x * 2
    assert y.is_inference() and not y.requires_grad


def test_set_multithreading_enabled_as_torch():
    gm, tm = gt.autograd.grad_mode, torch.autograd.grad_mode
    flag = {gm: lambda: gm.mode.multithreading, tm: torch._C._is_multithreading_enabled}
    for mod in (gm, tm):
        assert flag[mod]() is True
        with mod.set_multithreading_enabled(False) as entered:
            assert entered is None and flag[mod]() is False
        assert flag[mod]() is True
        switch = mod.set_multithreading_enabled(False)       # a call sets it at once
        assert flag[mod]() is False and switch.clone().mode is False
        mod.set_multithreading_enabled(True)

        @mod.set_multithreading_enabled(False)
        def inside():
            return flag[mod]()

        assert inside() is False
        mod.set_multithreading_enabled(True)
    x = gt.ones(2, requires_grad=True)
    with gt.autograd.set_multithreading_enabled(False):
        (x * 3).sum().backward()                     # gt's backward runs on this thread either way
    assert x.grad.tolist() == [3.0, 3.0]


# ---- torch.nn.modules.lazy ----------------------------------------------------------------------
def test_nn_modules_lazy():
    from gt.nn.modules.lazy import LazyModuleMixin

    assert LazyModuleMixin is gt.nn.lazy.LazyModuleMixin
    lazy = gt.nn.LazyLinear(3)
    assert isinstance(lazy, LazyModuleMixin) and lazy.has_uninitialized_params()
    assert isinstance(torch.nn.LazyLinear(3), torch.nn.modules.lazy.LazyModuleMixin)


# ---- torch.backends.opt_einsum ------------------------------------------------------------------
def test_opt_einsum_flags_as_torch():
    go, to = gt.backends.opt_einsum, torch.backends.opt_einsum
    assert go.is_available() == to.is_available()
    assert (go.get_opt_einsum() is None) == (to.get_opt_einsum() is None)
    assert (go.enabled, go.strategy) == (to.enabled, to.strategy)
    prior = (go.enabled, go.strategy, to.enabled, to.strategy)
    try:
        with go.flags(enabled=False):
            assert go.enabled is False
        assert go.set_flags() == (prior[0], prior[1] if go.is_available() else None)
        if not go.is_available():
            for mod in (go, to):
                with pytest.raises(ValueError, match="opt_einsum is not available"):
                    mod.set_flags(True)
                with pytest.raises(ValueError, match="opt_einsum is not available"):
                    mod.set_flags(None, "greedy")
        go.enabled = False                           # attribute sets store, as torch's
        assert go.enabled is False
        with pytest.raises(AttributeError, match="no flag 'enable'"):
            go.enable = True
        a, b, c = gt.randn(3, 4), gt.randn(4, 5), gt.randn(5, 2)
        expected = torch.einsum("ij,jk,kl->il", *(torch.tensor(t.numpy()) for t in (a, b, c)))
        assert gt.einsum("ij,jk,kl->il", a, b, c).numpy() == pytest.approx(expected.numpy(), rel=1e-5, abs=1e-6)
        if gt.backend.B.name == "torch":             # handed on to torch, whose einsum reads them
            assert to.enabled is False
    finally:
        object.__setattr__(go, "enabled", prior[0])
        object.__setattr__(go, "strategy", prior[1])
        to.enabled, to.strategy = prior[2], prior[3]


# ---- nn.Container -------------------------------------------------------------------------------
def test_container_as_torch():
    for mod in (gt, torch):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            c = mod.nn.Container(fc=mod.nn.Linear(2, 3))
        assert [w.category for w in caught] == [FutureWarning]
        assert "`nn.Container` is deprecated" in str(caught[0].message)
        assert list(c.state_dict()) == ["fc.weight", "fc.bias"] and isinstance(c, mod.nn.Module)
