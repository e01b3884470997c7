"""gt.profiler and gt.autograd.profiler (torch.profiler's API): what a known program records
(counts and names beside torch's profiler on the same program), nesting and self times, ranges,
the schedule's steps beside torch's, Chrome traces, the TensorBoard handler, key averages and
their table, the older API, and the errors torch users meet."""

import json
import os
import warnings

import numpy as np
import pytest

import gt
import gt.nn as nn
from gt.autograd import function, profiler_record
from gt.profiler import ProfilerActivity, profile, record_function, schedule
from helpers import torch_or_skip


def _mlp(lib, seed=0):
    """A 2-layer MLP, its SGD and a batch, in ``lib`` (gt or torch), from the same numbers."""
    rng = np.random.default_rng(seed)
    model = lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.ReLU(), lib.nn.Linear(8, 2))
    for p in model.parameters():
        p.data = lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32))
    x = lib.tensor(rng.standard_normal((5, 4)).astype(np.float32))
    return model, lib.optim.SGD(model.parameters(), lr=0.1), x


def _train_step(lib, model, opt, x, rf):
    with rf("forward"):
        loss = (model(x) ** 2).sum()
    loss.backward()
    opt.step()
    opt.zero_grad()


def _counts(prof):
    return {avg.key: avg.count for avg in prof.key_averages()}


NAMES = ("forward", "aten::linear", "aten::relu", "AddmmBackward0", "ReluBackward0", "SumBackward0",
         "PowBackward0", "Optimizer.step#SGD.step", "Optimizer.zero_grad#SGD.zero_grad", "aten::add_")


def test_training_step_counts_and_names_match_torch():
    torch = torch_or_skip()
    model, opt, x = _mlp(gt)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _train_step(gt, model, opt, x, record_function)
    tmodel, topt, tx = _mlp(torch)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as tprof:
        _train_step(torch, tmodel, topt, tx, torch.profiler.record_function)
    ours, theirs = _counts(prof), _counts(tprof)
    assert {n: ours.get(n) for n in NAMES} == {n: theirs.get(n) for n in NAMES}
    assert ours["aten::linear"] == 2 and ours["AddmmBackward0"] == 2 and ours["Optimizer.step#SGD.step"] == 1
    names = [e.name for e in prof.events()]
    assert names.index("forward") < names.index("aten::linear") < names.index("AddmmBackward0") < \
        names.index("Optimizer.step#SGD.step") < names.index("Optimizer.zero_grad#SGD.zero_grad")


def test_nesting_and_self_times_are_consistent():
    model, opt, x = _mlp(gt)
    with profile(with_modules=True) as prof:
        _train_step(gt, model, opt, x, record_function)
    events = prof.events()
    assert len(events) > 10
    for e in events:
        assert 0 <= e.self_cpu_time_total <= e.cpu_time_total + 1e-9
        children = sum(c.cpu_time_total for c in e.cpu_children)
        assert e.self_cpu_time_total == pytest.approx(e.cpu_time_total - children, abs=1e-6)
        for c in e.cpu_children:
            assert c.cpu_parent is e
            assert e.time_range.start <= c.time_range.start <= c.time_range.end <= e.time_range.end
    total = prof.key_averages().total_average()
    assert total.count == len(events)
    top = sum(e.cpu_time_total for e in events if e.cpu_parent is None)
    assert sum(e.self_cpu_time_total for e in events) == pytest.approx(top, rel=1e-9)
    modules = [e for e in events if e.name.startswith("nn.Module: ")]
    assert sorted(e.name for e in modules) == ["nn.Module: Linear_0", "nn.Module: Linear_1", "nn.Module: ReLU_0",
                                               "nn.Module: Sequential_0"]
    linear0 = next(e for e in modules if e.name == "nn.Module: Linear_0")
    assert [c.name for c in linear0.cpu_children] == ["aten::linear"]


def test_record_function_contains_its_ops_and_decorates():
    a, b = gt.randn(8, 8), gt.randn(8, 8)

    @record_function("decorated")
    def f(x):
        return x * 2

    with record_function("before"):      # outside a profile: nothing, no error
        a + b
    with profile() as prof:
        with record_function("outer"):
            a + b
            with record_function("inner"):
                a @ b
                f(a)
        with gt.no_grad():
            a - b                        # ops under no_grad are recorded too
    by_name = {e.name: e for e in prof.events()}
    assert [e.name for e in prof.events()] == ["outer", "aten::add", "inner", "aten::matmul", "decorated",
                                               "aten::mul", "aten::sub"]
    outer, inner = by_name["outer"], by_name["inner"]
    assert [c.name for c in outer.cpu_children] == ["aten::add", "inner"]
    assert [c.name for c in inner.cpu_children] == ["aten::matmul", "decorated"]
    assert by_name["aten::mul"].cpu_parent is by_name["decorated"]
    assert by_name["aten::sub"].cpu_parent is None
    assert outer.time_range.start <= inner.time_range.start and inner.time_range.end <= outer.time_range.end


SCHEDULES = [dict(wait=1, warmup=1, active=2), dict(wait=1, warmup=1, active=2, repeat=1),
             dict(wait=0, warmup=0, active=1, repeat=2), dict(wait=2, warmup=1, active=3, repeat=2, skip_first=3),
             dict(wait=5, warmup=1, active=1, skip_first=2, skip_first_wait=1)]


@pytest.mark.parametrize("args", SCHEDULES)
def test_schedule_actions_and_trace_ready_match_torch(args):
    torch = torch_or_skip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = schedule(**args), torch.profiler.schedule(**args)
    assert [ours(i).name for i in range(30)] == [theirs(i).name for i in range(30)]

    def run(lib, sched):
        ready = []

        def on_ready(p):
            names = [e.name for e in p.events()]
            ready.append((p.step_num, names.count("ProfilerStep*"), names.count("aten::add")))

        a = lib.ones(2, 2)
        with lib.profiler.profile(schedule=sched, on_trace_ready=on_ready) as p:
            for _ in range(12):
                a + a
                p.step()
        return ready

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # torch's note that each cycle clears the last one's events
        assert run(gt, ours) == run(torch, theirs)


def test_schedule_argument_checks_match_torch():
    torch = torch_or_skip()
    for args in (dict(wait=0, warmup=0, active=0), dict(wait=-1, warmup=1, active=1),
                 dict(wait=1, warmup=-1, active=1), dict(wait=1, warmup=1, active=1, repeat=-1),
                 dict(wait=1, warmup=1, active=1, skip_first=-1)):
        with pytest.raises(AssertionError) as theirs:
            torch.profiler.schedule(**args)
        with pytest.raises(AssertionError) as ours:
            schedule(**args)
        assert str(ours.value) == str(theirs.value)
    with pytest.warns(UserWarning, match="warmup"):
        schedule(wait=0, warmup=0, active=1)
    with pytest.raises(AssertionError, match="non-negative"):
        schedule(wait=0, warmup=1, active=1)(-1)


def test_chrome_trace_parses_with_every_event(tmp_path):
    model, opt, x = _mlp(gt)
    with profile(record_shapes=True) as prof:
        _train_step(gt, model, opt, x, record_function)
    path = tmp_path / "trace.json"
    prof.add_metadata("run", "mlp")
    prof.export_chrome_trace(str(path))
    doc = json.loads(path.read_text())
    assert doc["metadata"] == {"run": "mlp"}
    trace = doc["traceEvents"]
    assert len(trace) == len(prof.events())
    assert {e["ph"] for e in trace} == {"X"}
    assert all(isinstance(e["ts"], float) and e["dur"] >= 0 for e in trace)
    linear = [e for e in trace if e["name"] == "aten::linear"]
    assert [e["args"]["Input Dims"] for e in linear] == [[[5, 4], [8, 4], [8]], [[5, 8], [2, 8], [2]]]
    ev = prof.events()[0]
    assert trace[0]["dur"] == pytest.approx(ev.cpu_time_total) and trace[0]["name"] == ev.name


def test_tensorboard_handler_writes_a_trace_per_cycle(tmp_path):
    logdir = tmp_path / "log" / "run1"            # made by the handler, as torch's
    handler = gt.profiler.tensorboard_trace_handler(str(logdir), worker_name="w")
    a = gt.ones(3, 3)
    with profile(schedule=schedule(wait=1, warmup=1, active=1, repeat=2), on_trace_ready=handler) as p:
        for _ in range(8):
            a * a
            p.step()
    files = sorted(os.listdir(logdir))
    assert len(files) == 2 and all(f.startswith("w.") and f.endswith(".pt.trace.json") for f in files)
    for f in files:
        names = [e["name"] for e in json.loads((logdir / f).read_text())["traceEvents"]]
        assert names.count("aten::mul") == 1 and sum(n.startswith("ProfilerStep#") for n in names) == 1
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RuntimeError, match="Can't create directory"):
        gt.profiler.tensorboard_trace_handler(str(blocker / "sub"))


def test_key_averages_table_and_memory():
    a, b = gt.randn(8, 8), gt.randn(4, 8)
    with profile(record_shapes=True, profile_memory=True) as prof:
        for _ in range(3):
            a + a
        b + b
        a.sum()
    avgs = prof.key_averages()
    assert {e.key: e.count for e in avgs} == {"aten::add": 4, "aten::sum": 1, "[memory]": 5}   # each result freed
    add = next(e for e in avgs if e.key == "aten::add")
    assert add.self_cpu_memory_usage == 3 * 8 * 8 * 4 + 4 * 8 * 4       # the outputs' bytes (float32)
    # the sum's 0-d result: one copy on each device of the mesh it is replicated over (GT_DEVICES)
    placed = getattr(a.sum(), "_placed", None)
    copies = 1 if placed is None else len(placed.shards)
    assert next(e for e in avgs if e.key == "[memory]").self_cpu_memory_usage == -(3 * 8 * 8 * 4 + 4 * 8 * 4 + 4 * copies)
    assert add.cpu_time_total == pytest.approx(sum(e.cpu_time_total for e in prof.events() if e.name == "aten::add"))
    shaped = prof.key_averages(group_by_input_shape=True)
    assert sorted((e.key, str(e.input_shapes), e.count) for e in shaped) == [
        ("[memory]", "[]", 5), ("aten::add", "[[4, 8], [4, 8]]", 1), ("aten::add", "[[8, 8], [8, 8]]", 3),
        ("aten::sum", "[[8, 8], [], []]", 1)]
    text = avgs.table(sort_by="count", row_limit=2, header="my header")     # [memory] (5), aten::add (4)
    for col in ("Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg", "# of Calls", "CPU Mem",
                "Self CPU Mem", "Self CPU time total:", "my header", "aten::add"):
        assert col in text
    assert "aten::sum" not in text                       # row_limit=2, the most called first
    assert "Input Shapes" in shaped.table(sort_by="cpu_time_total")
    assert "[[8, 8], [8, 8]]" in prof.key_averages(group_by_input_shape=True).table()
    for key in ("self_cpu_time_total", "cpu_time_total", "self_cpu_memory_usage", "self_cuda_time_total"):
        assert "aten::add" in avgs.table(sort_by=key)


def test_table_errors_like_torch():
    torch = torch_or_skip()
    with profile() as prof:
        gt.ones(2) + 1
    with torch.profiler.profile() as tprof:
        torch.ones(2) + 1
    with pytest.raises(AttributeError):
        tprof.key_averages().table(sort_by="bogus")
    with pytest.raises(AttributeError, match="'bogus'.*self_cpu_time_total"):
        prof.key_averages().table(sort_by="bogus")


def test_nested_profile_is_refused_and_state_restored():
    a = gt.ones(2)
    with profile() as outer:
        with pytest.raises(RuntimeError, match="already enabled"):
            with profile():
                pass
        with pytest.raises(RuntimeError, match="already enabled"):
            with gt.autograd.profiler.profile():
                pass
        a + a
    assert [e.name for e in outer.events()] == ["aten::add"]
    with pytest.raises(ValueError):
        with profile():
            raise ValueError("inside")
    assert function.profiling is None and profiler_record.active is None
    with pytest.raises(AssertionError, match="initialized"):
        profile().key_averages()
    with pytest.raises(AssertionError, match="initialized"):
        profile().stop()


def test_older_autograd_profiler_api(tmp_path):
    x = gt.randn(3, 4, requires_grad=True)
    with gt.autograd.profiler.profile(record_shapes=True, with_stack=True) as prof:
        with gt.autograd.profiler.record_function("block"):
            y = (x @ x.T).relu().sum()
        y.backward()
    names = [e.name for e in prof.function_events]
    assert names[:5] == ["block", "aten::permute", "aten::matmul", "aten::relu", "aten::sum"]
    assert {"SumBackward0", "ReluBackward0", "PermuteBackward0"} <= set(names) or "TBackward0" in names
    assert prof.key_averages()[0].key == "block" and "block" in prof.table()
    assert "Input Shapes" in prof.key_averages(group_by_input_shape=True).table()
    assert any(os.path.basename(__file__) in entry for entry in prof.function_events[1].stack)
    assert prof.total_average().count == len(names)
    prof.export_chrome_trace(str(tmp_path / "t.json"))
    assert len(json.loads((tmp_path / "t.json").read_text())["traceEvents"]) == len(names)
    with gt.autograd.profiler.profile(enabled=False) as off:
        x + x
    assert len(off.function_events) == 0
    with pytest.raises(RuntimeError, match="didn't finish"):
        gt.autograd.profiler.profile().key_averages()


def test_cuda_activity_on_the_cpu_engines_records_the_cpu_events():
    if gt.cuda.is_available():
        with pytest.raises(NotImplementedError, match="torch.profiler"):
            profile(activities=[ProfilerActivity.CUDA])
        return
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        gt.ones(2) * 3
    assert [e.name for e in prof.events()] == ["aten::ones", "aten::mul"]
    assert gt.profiler.supported_activities() == {ProfilerActivity.CPU}
    with pytest.raises(AssertionError, match="No valid profiler activities"):
        profile(activities=[])
    with pytest.raises(TypeError, match="ProfilerActivity"):
        profile(activities=["CPU"])


def test_sharded_op_is_one_event(mesh4):
    x = gt.randn(8, 4)
    w = gt.randn(4, 4, requires_grad=True)
    assert x._placed is not None
    with profile(profile_memory=True) as prof:
        y = (x @ w).relu()
        y.sum().backward()
    ops = [e for e in prof.events() if e.name.startswith("aten::")]
    assert [e.name for e in ops] == ["aten::matmul", "aten::relu", "aten::sum"]
    assert all(not e.cpu_children for e in ops)
    assert ops[0].self_cpu_memory_usage == 8 * 4 * 4
    assert {"ReluBackward0", "SumBackward0"} <= {e.name for e in prof.events()}


def test_op_names_are_torch_ops():
    torch = torch_or_skip()
    for name in profiler_record.TORCH_OPS:
        op = profiler_record._CAMEL.sub(r"_\1", name).lower()
        assert hasattr(torch.ops.aten, op), name


def test_flops_of_products():
    a, b = gt.randn(5, 3), gt.randn(3, 7)
    with profile(with_flops=True) as prof:
        a @ b
        a + 1
    assert [e.flops for e in prof.events()] == [2 * 5 * 7 * 3, 0]
    assert "Total FLOPs" in prof.key_averages().table()


def test_stacks_name_the_callers_frames(tmp_path):
    a = gt.randn(64, 64)
    with profile(with_stack=True) as prof:
        a @ a
    (ev,) = prof.events()
    assert ev.stack[0].startswith(__file__ + "(") and ev.stack[0].endswith(": test_stacks_name_the_callers_frames")
    assert "Source Location" in prof.key_averages(group_by_stack_n=1).table()
    prof.export_stacks(str(tmp_path / "stacks.txt"))
    lines = (tmp_path / "stacks.txt").read_text().splitlines()
    assert len(lines) <= 1 and all(line.rsplit(" ", 1)[1].isdigit() for line in lines)


def test_backward_events_are_named_as_grad_fn():
    x = gt.randn(3, 4, requires_grad=True)
    outs = [x.t(), x.sum(1), x.exp(), x.reshape(12), x[0], x @ x.t(), gt.nn.functional.linear(x, x), x.clamp(0, 1)]
    y = outs[0].sum()
    for o in outs[1:]:
        y = y + o.sum()
    nodes, todo = {}, [y.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and id(node) not in nodes and type(node).__name__ != "AccumulateGrad":
            nodes[id(node)] = node.name()
            todo += [n for n, _ in node.next_functions]
    with profile() as prof:
        y.backward()
    assert sorted(e.name for e in prof.events()) == sorted(nodes.values())
    assert {"TBackward0", "MmBackward0", "ExpBackward0", "ViewBackward0"} <= set(nodes.values())


def _double_function(lib):
    class Double(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    return Double


def test_a_custom_functions_backward_is_one_event_per_call_as_torch():
    """gt's custom call is a node plus a stand-in per output; only the node is an event."""
    torch = torch_or_skip()
    counts = []
    for lib, prof_of in ((gt, profile), (torch, torch.profiler.profile)):
        x = lib.ones(3, requires_grad=True)
        double = _double_function(lib)
        with prof_of() as prof:
            double.apply(double.apply(x).exp()).sum().backward()
        counts.append(_counts(prof).get("DoubleBackward"))
    assert counts == [2, 2]
