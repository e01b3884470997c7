"""Forward hooks on modules (gt/nn/hooks.py) and the lookups by name (gt/nn/lookup.py,
``get_submodule``, ``named_modules``, ``apply``), run beside torch: the same calls, in the same
order, with the same arguments and results."""

import copy
import pickle

import numpy as np
import pytest

import gt
from gt import nn
from helpers import randn, torch_or_skip


def _scale(mod):
    """A module of ``mod`` (gt.nn or torch.nn) that multiplies its input by ``factor`` (a keyword,
    so the kwargs hooks see it)."""
    class Scale(mod.Module):
        def forward(self, x, factor=1.0):
            return x * factor
    return Scale()


def _scenario(lib, mod):
    """Register a set of hooks on a ``Scale`` module of ``lib`` (gt or torch) and call it; returns
    the events in order and the output."""
    events = []
    m = _scale(mod)
    m.register_forward_pre_hook(lambda m, args: events.append(("pre", len(args))))
    m.register_forward_pre_hook(lambda m, args: (args[0] + 1,))                     # replaces args
    m.register_forward_pre_hook(lambda m, args, kwargs: events.append(("pre-kw", sorted(kwargs))) or
                                (args, {**kwargs, "factor": 3.0}), with_kwargs=True)
    m.register_forward_pre_hook(lambda m, args: events.append(("pre-first", None)), prepend=True)
    m.register_forward_hook(lambda m, args, out: out * 10)                             # replaces the output
    m.register_forward_hook(lambda m, args, kwargs, out: events.append(("post-kw", kwargs["factor"])),
                            with_kwargs=True)
    m.register_forward_hook(lambda m, args, out: events.append(("post-first", out.tolist())), prepend=True)
    h = m.register_forward_hook(lambda m, args, out: events.append(("removed", None)))
    h.remove()
    h.remove()                                                                          # twice: nothing
    out = m(lib.tensor([1.0, 2.0]), factor=2.0)
    return events, out.tolist()


def test_hooks_run_as_torchs():
    torch = torch_or_skip()
    assert _scenario(gt, nn) == _scenario(torch, torch.nn)
    events, out = _scenario(gt, nn)
    assert out == [60.0, 90.0] and events[0] == ("pre-first", None)


def _always_call_scenario(lib, mod):
    seen = []

    class Boom(mod.Module):
        def forward(self, x):
            raise ValueError("boom")
    m = Boom()
    m.register_forward_hook(lambda m, args, out: seen.append(("plain", out)))
    m.register_forward_hook(lambda m, args, out: seen.append(("always", args[0].tolist(), out)), always_call=True)
    m.register_forward_hook(lambda m, args, kwargs, out: seen.append(("always-kw", kwargs)), always_call=True,
                            with_kwargs=True)
    m.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    with pytest.raises(ValueError, match="boom"):
        m(lib.tensor([1.0]))
    return seen


def test_always_call_hooks_run_when_forward_raises():
    torch = torch_or_skip()
    assert _always_call_scenario(gt, nn) == _always_call_scenario(torch, torch.nn) == [
        ("always", [2.0], None), ("always-kw", {})]


def test_a_failing_always_call_hook_only_warns_and_the_error_propagates():
    class Boom(nn.Module):
        def forward(self, x):
            raise KeyError("forward failed")
    m = Boom()

    def bad(m, args, out):
        raise RuntimeError("hook failed")
    m.register_forward_hook(bad, always_call=True)
    with pytest.warns(UserWarning, match="always_call=True.* raised an exception .*hook failed"):
        with pytest.raises(KeyError, match="forward failed"):
            m(gt.ones(1))
    # an always_call hook that ran (forward succeeded) is not run again when a later hook raises
    calls = []
    lin = nn.Linear(2, 2)
    lin.register_forward_hook(lambda *a: calls.append("always"), always_call=True)
    lin.register_forward_hook(lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        lin(gt.ones(2))
    assert calls == ["always"]


def test_pre_hook_errors_and_non_tuple_results():
    m = _scale(nn)
    h = m.register_forward_pre_hook(lambda m, args: gt.tensor([5.0]))          # a non-tuple becomes (value,)
    assert m(gt.tensor([1.0])).tolist() == [5.0]
    h.remove()
    m.register_forward_pre_hook(lambda m, args, kwargs: args, with_kwargs=True)
    with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple of"):
        m(gt.tensor([1.0]))
    with pytest.raises(TypeError, match="register_forward_hook: hook must be callable, got int"):
        m.register_forward_hook(3)


def test_handles_remove_as_context_managers_and_after_copies():
    lin, calls = nn.Linear(2, 3), []
    with lin.register_forward_hook(lambda m, a, out: calls.append(out.shape)) as handle:
        lin(gt.ones(4, 2))
        assert isinstance(handle.id, int)
    lin(gt.ones(4, 2))
    assert calls == [(4, 3)] and not lin._forward_hooks
    h2 = nn.Linear(1, 1).register_forward_pre_hook(print)
    assert h2.id > handle.id
    h3 = pickle.loads(pickle.dumps(h2))                                   # torch's handles pickle too
    assert h3.id == h2.id
    h3.remove()


def test_hooks_survive_deepcopy_as_torchs_and_stay_out_of_the_state_dict():
    torch = torch_or_skip()
    for lib, mod in ((gt, nn), (torch, torch.nn)):
        calls = []
        lin = mod.Linear(2, 2)
        handle = lin.register_forward_hook(lambda m, a, out: calls.append(m))
        twin = copy.deepcopy(lin)
        twin(lib.ones(2))
        assert calls == [twin]
        handle.remove()                                                    # the original's hook only
        lin(lib.ones(2)), twin(lib.ones(2))
        assert calls == [twin, twin] and len(twin._forward_hooks) == 1 and not lin._forward_hooks
        assert list(lin.state_dict()) == ["weight", "bias"]
        shallow = copy.copy(lin)                                           # shares the hooks with lin
        lin.register_forward_hook(lambda m, a, out: calls.append("shared"))
        shallow(lib.ones(2))
        assert calls[-1] == "shared"


def test_nested_modules_and_fused_paths_run_the_hooks():
    """A hook on a layer inside a block runs even where gt would fuse the block (eval, no grad)."""
    block = nn.TransformerBlock(8, 2, 16).eval()
    x = gt.randn(2, 3, 8)
    with gt.no_grad():
        plain = block(x).numpy()
        seen = []
        handles = [block.attn.q_proj.register_forward_hook(lambda m, a, out: seen.append("q_proj")),
                   block.ff.fc1.register_forward_hook(lambda m, a, out: seen.append("fc1")),
                   block.ln1.register_forward_pre_hook(lambda m, a: seen.append("ln1"))]
        hooked = block(x).numpy()
    assert seen == ["ln1", "q_proj", "fc1"]
    np.testing.assert_allclose(hooked, plain, rtol=1e-5, atol=1e-6)
    for h in handles:
        h.remove()
    ff, out = nn.FeedForward(4, 8), []
    ff.act.register_forward_hook(lambda m, a, o: out.append(o.shape))      # ReLU is fused into fc1 otherwise
    ff(gt.randn(2, 4))
    attn = nn.MultiHeadAttention(8, 2)
    attn.k_proj.register_forward_hook(lambda m, a, o: out.append(o.shape))  # q, k, v packed in one product otherwise
    attn(gt.randn(2, 32, 8))
    assert out == [(2, 8), (2, 32, 8)]


def test_forward_hooks_give_the_same_gradients():
    torch = torch_or_skip()
    w = randn(3, 2)
    results = []
    for lib, mod in ((gt, nn), (torch, torch.nn)):
        lin = mod.Linear(2, 3, bias=False)
        lin.weight.data = lib.tensor(w) if lib is torch else gt.tensor(w)
        lin.register_forward_hook(lambda m, a, out: out * out)
        x = lib.tensor(randn(4, 2, seed=1), requires_grad=True)
        lin(x).sum().backward()
        results.append((x.grad.numpy(), lin.weight.grad.numpy()))
    for g, t in zip(*results):
        np.testing.assert_allclose(g, t, rtol=1e-6)


# ---- lookups --------------------------------------------------------------------------------
def _tree(lib, mod):
    """Sequential(Linear, Sequential(shared, ReLU, shared)) with a buffer, in gt or torch."""
    shared = mod.Linear(2, 2)
    net = mod.Sequential(mod.Linear(2, 2), mod.Sequential(shared, mod.ReLU(), shared))
    net.register_buffer("steps", None)
    net[0].register_buffer("scale", lib.ones(2))
    return net


def test_lookups_match_torch():
    torch = torch_or_skip()
    g, t = _tree(gt, nn), _tree(torch, torch.nn)
    for kwargs in ({}, {"prefix": "model"}, {"remove_duplicate": False}, {"prefix": "m", "remove_duplicate": False}):
        assert [n for n, _ in g.named_modules(**kwargs)] == [n for n, _ in t.named_modules(**kwargs)], kwargs
    assert g.get_submodule("1.0") is g[1][0] and g.get_submodule("") is g
    assert g.get_parameter("1.2.weight") is g[1][0].weight
    assert tuple(g.get_parameter("0.bias").shape) == tuple(t.get_parameter("0.bias").shape)
    assert g.get_buffer("0.scale").tolist() == t.get_buffer("0.scale").tolist()
    names = []
    assert g.apply(lambda m: names.append(type(m).__name__)) is g
    t_names = []
    t.apply(lambda m: t_names.append(type(m).__name__))
    assert names == t_names


def test_lookup_errors():
    g = _tree(gt, nn)
    with pytest.raises(AttributeError, match="Linear has no parameter `nope`"):
        g.get_parameter("0.nope")
    with pytest.raises(AttributeError, match="`scale` is a buffer, not an nn.Parameter"):
        g.get_parameter("0.scale")
    with pytest.raises(AttributeError, match="ReLU has no parameter `weight`"):
        g.get_parameter("1.1.weight")
    with pytest.raises(AttributeError, match="has no submodule '5'"):
        g.get_parameter("5.weight")
    with pytest.raises(AttributeError, match="Linear has no buffer `weight`"):
        g.get_buffer("0.weight")
    with pytest.raises(TypeError, match="expected a dotted name"):
        g.get_parameter(0)
