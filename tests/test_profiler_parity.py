"""gt.profiler beside torch.profiler on the same programs: creation functions, in-place methods and
optimizer steps as events of torch's names and counts, memory with frees (``[memory]`` events,
negative self memory), and ``record_function`` as torch's context decorator."""

import contextlib
import json
import threading

import numpy as np
import pytest

import gt
from gt.autograd import profiler_record
from gt.profiler import profile, record_function
from helpers import torch_or_skip


def _top(prof):
    """The names of the events no other event contains, in order."""
    return [e.name for e in prof.events() if e.cpu_parent is None]


def _counts(prof):
    return {avg.key: avg.count for avg in prof.key_averages()}


def _beside(program, **options):
    """``program(lib)`` profiled in gt and in torch: (gt's profile, torch's)."""
    torch = torch_or_skip()
    with profile(**options) as ours:
        program(gt)
    with torch.profiler.profile(**options) as theirs:
        program(torch)
    return ours, theirs


CREATION = {
    "zeros": lambda lib, a: lib.zeros(3, 2), "ones": lambda lib, a: lib.ones(3), "empty": lambda lib, a: lib.empty(4),
    "full": lambda lib, a: lib.full((2,), 1.5), "randn": lambda lib, a: lib.randn(3),
    "rand": lambda lib, a: lib.rand(3),
    "randint": lambda lib, a: lib.randint(0, 5, (3,)), "randperm": lambda lib, a: lib.randperm(4),
    "arange": lambda lib, a: lib.arange(4), "linspace": lambda lib, a: lib.linspace(0, 1, 5),
    "logspace": lambda lib, a: lib.logspace(0, 1, 4), "eye": lambda lib, a: lib.eye(3),
    "zeros_like": lambda lib, a: lib.zeros_like(a), "ones_like": lambda lib, a: lib.ones_like(a),
    "empty_like": lambda lib, a: lib.empty_like(a), "full_like": lambda lib, a: lib.full_like(a, 2.0),
    "randn_like": lambda lib, a: lib.randn_like(a), "rand_like": lambda lib, a: lib.rand_like(a),
    "tril_indices": lambda lib, a: lib.tril_indices(3, 3),
    "empty_strided": lambda lib, a: lib.empty_strided((2,), (1,)),
    "new_zeros": lambda lib, a: a.new_zeros(3), "new_ones": lambda lib, a: a.new_ones(3),
    "new_empty": lambda lib, a: a.new_empty(3), "new_full": lambda lib, a: a.new_full((3,), 1.0),
}


@pytest.mark.parametrize("name", sorted(CREATION))
def test_creation_functions_are_events_named_as_torch(name):
    operands, made = {"gt": gt.ones(2, 3), "torch": torch_or_skip().ones(2, 3)}, []
    ours, theirs = _beside(lambda lib: made.append(CREATION[name](lib, operands[lib.__name__])), profile_memory=True)
    assert _top(ours) == _top(theirs) == ["aten::" + name]
    assert ours.events()[0].self_cpu_memory_usage == made[0].nbytes        # the new tensor's bytes
    with profile(profile_memory=True) as dropped:
        CREATION[name](gt, operands["gt"])
    assert [(e.name, e.self_cpu_memory_usage) for e in dropped.events()] == [("aten::" + name, made[0].nbytes),
                                                                              ("[memory]", -made[0].nbytes)]


def test_tensor_from_data_is_torchs_lift_fresh():
    operands = {"gt": gt.ones(2, 3), "torch": torch_or_skip().ones(2, 3)}
    ours, theirs = _beside(lambda lib: (lib.tensor([1.0, 2.0]), lib.from_numpy(np.ones(3)),
                                        operands[lib.__name__].new_tensor([3.0])))
    assert _top(ours) == ["aten::lift_fresh"] * 3
    # torch's tensor() is aten::empty, aten::to, aten::lift_fresh, aten::detach_: its last op is gt's one event
    assert [n for n in _top(theirs) if n == "aten::lift_fresh"] == _top(ours)


INPLACE = {
    "add_": lambda lib, a, b: a.add_(b, alpha=2), "sub_": lambda lib, a, b: a.sub_(b),
    "mul_": lambda lib, a, b: a.mul_(b), "div_": lambda lib, a, b: a.div_(b), "copy_": lambda lib, a, b: a.copy_(b),
    "fill_": lambda lib, a, b: a.fill_(1.0), "zero_": lambda lib, a, b: a.zero_(),
    "addcmul_": lambda lib, a, b: a.addcmul_(b, b, value=0.5), "addcdiv_": lambda lib, a, b: a.addcdiv_(b, b),
    "exp_": lambda lib, a, b: a.exp_(), "sqrt_": lambda lib, a, b: a.sqrt_(),
    "clamp_": lambda lib, a, b: a.clamp_(0, 1),
    "normal_": lambda lib, a, b: a.normal_(), "uniform_": lambda lib, a, b: a.uniform_(),
    "+=": lambda lib, a, b: a.__iadd__(b), "-=": lambda lib, a, b: a.__isub__(b),
    "*=": lambda lib, a, b: a.__imul__(b), "/=": lambda lib, a, b: a.__itruediv__(b),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_methods_are_events_named_as_torch(name):
    def program(lib):
        a, b = held[lib.__name__]
        INPLACE[name](lib, a, b)

    held = {lib.__name__: (lib.full((4, 3), 2.0), lib.full((4, 3), 3.0)) for lib in (gt, torch_or_skip())}
    ours, theirs = _beside(program, profile_memory=True)
    assert _top(ours) == _top(theirs)
    assert len(_top(ours)) == 1 and _top(ours)[0].startswith("aten::")
    assert ours.events()[-1].self_cpu_memory_usage == 0              # in place: no memory made
    if name not in ("normal_", "uniform_"):
        np.testing.assert_allclose(held["gt"][0].numpy(), held["torch"][0].numpy(), rtol=1e-6)


def _mlp_step(lib, opt_name, backwards=2, **options):
    """An MLP with the same numbers in ``lib``, its optimizer ``opt_name``, gradients of ``backwards``
    backward passes."""
    rng = np.random.default_rng(0)
    model = lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.ReLU(), lib.nn.Linear(8, 2))
    for p in model.parameters():
        p.data = lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32))
    x = lib.tensor(rng.standard_normal((5, 4)).astype(np.float32))
    opt = getattr(lib.optim, opt_name)(model.parameters(), lr=0.1, **options)
    for _ in range(backwards):
        (model(x) ** 2).sum().backward()
    return model, opt


@pytest.mark.parametrize("opt_name,ours_options,torch_options,update", [
    ("SGD", {}, {}, "aten::add_"),                                    # torch's default: one add_ a parameter
    ("Adam", {}, {"fused": True}, "aten::_fused_adam_"),               # gt's one engine call: torch's fused step
    ("AdamW", {}, {"fused": True}, "aten::_fused_adamw_"),
])
def test_optimizer_updates_are_events_as_torch(opt_name, ours_options, torch_options, update):
    torch = torch_or_skip()
    counts = []
    for lib, make_profile, options in ((gt, profile, ours_options), (torch, torch.profiler.profile, torch_options)):
        model, opt = _mlp_step(lib, opt_name, **options)
        opt.step()          # the state made; the second step is what is profiled
        opt.zero_grad()
        (model(lib.ones(5, 4)) ** 2).sum().backward()
        with make_profile() as prof:
            opt.step()
            opt.zero_grad()
        counts.append(_counts(prof))
        top = _top(prof)
        assert top == [f"Optimizer.step#{opt_name}.step", f"Optimizer.zero_grad#{opt_name}.zero_grad"]
        step = next(e for e in prof.events() if e.name == top[0])
        assert update in [c.name for c in step.cpu_children]
    ours, theirs = counts
    assert ours[update] == theirs[update] and ours[f"Optimizer.step#{opt_name}.step"] == 1


@pytest.mark.parametrize("opt_name,options,update", [
    ("SGD", {}, ["aten::add_"] * 4), ("SGD", {"momentum": 0.9, "nesterov": True}, ["aten::_fused_sgd_"] * 4),
    ("Adam", {}, ["aten::_fused_adam_"]), ("AdamW", {"amsgrad": True}, ["aten::_fused_adamw_"])])
def test_optimizer_values_are_the_same_while_profiling(opt_name, options, update):
    results = []
    for profiled in (False, True):
        model, opt = _mlp_step(gt, opt_name, backwards=1, **options)
        with profile() if profiled else contextlib.nullcontext() as prof:
            opt.step()
            opt.step()      # the second step: the state made, the engine's whole update
        results.append([p.detach().numpy().copy() for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    second = [e for e in prof.events() if e.cpu_parent is None][1]
    assert second.name == f"Optimizer.step#{opt_name}.step" and [c.name for c in second.cpu_children] == update


def test_memory_frees_are_negative_as_torch():
    def program(lib):
        a, b = ones[lib.__name__]
        c = a + b
        d = c * c
        del c
        with lib.profiler.record_function("block") if lib is not gt else record_function("block"):
            e = a + b
            del e
        f = lib.zeros(8, 8)
        del d, f

    torch = torch_or_skip()
    ones = {"gt": (gt.ones(8, 8), gt.ones(8, 8)), "torch": (torch.ones(8, 8), torch.ones(8, 8))}
    ours, theirs = _beside(program, profile_memory=True)

    def memory(prof):       # torch's aten::zeros holds its memory in its aten::empty: the totals
        return [(e.name, e.self_cpu_memory_usage if e.name != "aten::zeros" else None, e.cpu_memory_usage)
                for e in prof.events() if not e.name.startswith("aten::") or e.cpu_parent is None]

    assert memory(ours) == memory(theirs) == [
        ("aten::add", 256, 256), ("aten::mul", 256, 256), ("[memory]", -256, -256), ("block", -256, 0),
        ("aten::zeros", None, 256), ("[memory]", -256, -256), ("[memory]", -256, -256)]
    avg = {a.key: a for a in ours.key_averages()}
    assert avg["[memory]"].count == 3 and avg["[memory]"].self_cpu_memory_usage == -768
    with profile(profile_memory=True) as views:
        gt.ones(8, 8).reshape(64)           # a view makes no memory, as torch's aten::view
    assert [(e.name, e.self_cpu_memory_usage) for e in views.events()] == [
        ("aten::ones", 256), ("aten::reshape", 0), ("[memory]", -256)]


def test_frees_after_the_profile_are_not_counted():
    with profile(profile_memory=True) as prof:
        kept = gt.zeros(16)
    del kept
    assert [(e.name, e.self_cpu_memory_usage) for e in prof.events()] == [("aten::zeros", 64)]
    assert profiler_record.active is None


def test_record_function_is_torchs_context_decorator():
    torch = torch_or_skip()
    assert isinstance(record_function("x"), contextlib.ContextDecorator)
    assert isinstance(torch.profiler.record_function("x"), contextlib.ContextDecorator)

    def nested(lib, rf):
        @rf("level")
        def level(n, x):
            return x if n == 0 else level(n - 1, x + 1)
        return level(2, lib.ones(2))

    ours, theirs = _beside(lambda lib: nested(lib, record_function if lib is gt else lib.profiler.record_function))
    names = ("aten::ones", "level", "aten::add")
    assert [_counts(ours)[n] for n in names] == [_counts(theirs)[n] for n in names] == [1, 3, 2]
    # each call its own range, nested as the calls are (torch's one object per decorator ends its
    # recursive ranges side by side)
    levels = [e for e in ours.events() if e.name == "level"]
    assert [e.cpu_parent for e in levels] == [None, levels[0], levels[1]]
    ranged = record_function("threads")(lambda: gt.ones(1) + 1)
    with profile() as prof:         # another thread's calls are not recorded and leave no range open
        worker = threading.Thread(target=ranged)
        worker.start()
        worker.join()
        ranged()
    assert [e.name for e in prof.events()] == ["threads", "aten::ones", "aten::add"]


def test_memory_events_in_the_chrome_trace_as_torch(tmp_path):
    ones = {"gt": gt.ones(4), "torch": torch_or_skip().ones(4)}
    ours, theirs = _beside(lambda lib: ones[lib.__name__] * ones[lib.__name__], profile_memory=True)
    ours.export_chrome_trace(str(tmp_path / "ours.json"))
    theirs.export_chrome_trace(str(tmp_path / "theirs.json"))
    events = [json.loads((tmp_path / f"{who}.json").read_text())["traceEvents"] for who in ("ours", "theirs")]
    freed = [[(e["ph"], e["cat"], e["args"]["Bytes"]) for e in trace
              if e["name"] == "[memory]" and e["args"]["Bytes"] < 0] for trace in events]
    assert freed[0] == freed[1] == [("i", "cpu_instant_event", -16)]
