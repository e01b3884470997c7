"""gt.distributed: data parallelism over processes on torch.distributed (gloo on 127.0.0.1).

Multi-process runs of ``train.py`` must compute what one process computes: the same epoch losses
and final parameters (to float32 rounding), with one process printing and writing checkpoints.
The processes get the environment torchrun gives its workers (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT), which is all ``gt.distributed.init()`` reads; torchrun itself would add
an agent process (a second of start-up) and is left out. They inherit GT_BACKEND and GT_DEVICES,
so under GT_DEVICES=N each process drives N virtual devices. Each process imports torch (about a
second of CPU), so one pair of processes does all the multi-process work, next to the
one-process reference runs (one fixture), and a failing process stops its group instead of
leaving the other waiting in a collective.
"""

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import gt
import gt.distributed as dist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Not pytest.importorskip: importing torch here would cost a second for tests that do not need it.
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="multi-process runs use torch.distributed: pip install 'lpm[torch]'")
TINY = ["--seq-len", "3", "--img-size", "16", "--embed-dim", "16", "--num-heads", "2", "--ff-dim", "32",
        "--no-progress"]
EVEN = TINY + ["--samples", "48", "--epochs", "3", "--batch-size", "8"]   # 38 training sequences: 4+4 per step
# 36 training sequences in batches of 7 (4 + 3 per process) and a last batch of 1 (rank 1 gets none);
# 9 held out (5 + 4). In 2 processes it stops after 2 epochs and resumes for the third.
ODD = TINY + ["--samples", "45", "--epochs", "3", "--batch-size", "7"]
EPOCH_LINE = re.compile(r"^Epoch +(\d+)/(\d+): Loss = (\d+\.\d{4}), ")
DEVICES_LINE = re.compile(r"^Devices: \d+ device\(s\) \(cpu(, virtual)?\), engine (numpy|torch), 2 processes \(gloo\)")
TIMEOUT = 120


# ---- launching -----------------------------------------------------------------------------------
def free_port():
    return free_ports(1)[0]


def free_ports(n):
    """``n`` different ports free now (bound together, so never the same one twice)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def child_env(**extra):
    """This environment (GT_BACKEND, GT_DEVICES, ...) without any torchrun variables, plus ``extra``.
    The processes compute on the CPU (gloo, as the module says), also on a machine with GPUs."""
    env = {k: v for k, v in os.environ.items() if k not in dist.ENV_VARS and not k.startswith("TORCHELASTIC")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="", **extra)
    if os.path.exists("/sys/class/net/lo"):
        env["GLOO_SOCKET_IFNAME"] = "lo"
    return env


class Group:
    """Processes started together; ``wait()`` gives ``[(returncode, stdout, stderr)]``, stopping
    them all as soon as one fails (the others would wait for it in a collective)."""

    def __init__(self, folder, name, commands, envs):
        self.procs, self.files = [], []
        for i, (command, env) in enumerate(zip(commands, envs)):
            out, err = (open(os.path.join(folder, f"{name}.{i}.{kind}"), "w+") for kind in ("out", "err"))
            self.files.append((out, err))
            self.procs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err, text=True))

    def wait(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in self.procs):
            if time.monotonic() > deadline or any(p.returncode not in (None, 0) for p in self.procs):
                for p in self.procs:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
                break
            time.sleep(0.02)
        results = []
        for p, (out, err) in zip(self.procs, self.files):
            out.seek(0), err.seek(0)
            results.append((p.returncode, out.read(), err.read()))
            out.close(), err.close()
        return results


def by_hand(folder, name, args, port, world=2):
    """``world`` processes with the environment torchrun would give them."""
    envs = [child_env(RANK=str(r), WORLD_SIZE=str(world), LOCAL_RANK=str(r), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)) for r in range(world)]
    return Group(folder, name, [[sys.executable, *args]] * world, envs)


def one_process(folder, name, args):
    return Group(folder, name, [[sys.executable, *args]], [child_env()])


# The collectives one by one; then the same processes run train.py's main once per argument list in
# the JSON after -c (each run joins a new group and leaves it): cheaper than starting more processes.
WORKER = r"""
import json
import sys

import numpy as np
import torch.distributed as tdist

import gt
import gt.distributed as dist
from gt.sharding import get_mesh

world = dist.init()
r = world.rank
assert world.world_size == dist.get_world_size() == 2 and dist.get_backend() == "gloo", world
assert dist.is_initialized() and dist.is_main_process() == (r == 0) and dist.init() is world
assert dist.split_range(7) == [(0, 4), (4, 7)][r]
assert dist.all_reduce_sum(r + 1) == 3.0 and dist.all_reduce_sum([1, r]) == [2.0, 1.0]
assert dist.all_reduce([r, -r], op="max") == [1.0, 0.0] and dist.all_reduce(r, op="min") == 0.0

calls = []
all_reduce = tdist.all_reduce
tdist.all_reduce = lambda t, *a, **k: (calls.append(t.numel()), all_reduce(t, *a, **k))[1]

def give(p, value):      # p.grad = value, through backward
    (p * gt.tensor(value)).sum().backward()

rng = np.random.default_rng(0)   # the same draws in both processes: each knows the other's gradients
shapes = dict(a=((5, 3), np.float32), b=((4,), np.float64), c=((2, 2), np.float32), d=((3,), np.float32),
              e=((40, 8), np.float32))
p = {k: gt.zeros(*s, dtype=gt.float64 if t == np.float64 else gt.float32, requires_grad=True)
     for k, (s, t) in shapes.items()}
g = {k: [rng.standard_normal(s).astype(t) for _ in range(2)] for k, (s, t) in shapes.items()}
frozen = gt.zeros(3)
w = [0.25, 0.75]
for k in "abe":
    give(p[k], g[k][r])
if r == 0:
    give(p["c"], g["c"][0])      # a gradient in one process only; "d" has none anywhere
params = [p["a"], p["b"], p["c"], p["d"], p["e"], p["a"], frozen]
dist.all_reduce_grads(params, weight=w[r], bucket_cap_mb=200 / 2**20)   # 200-byte buckets
for k in "abe":
    np.testing.assert_allclose(p[k].grad.numpy(), w[0] * g[k][0] + w[1] * g[k][1], rtol=1e-6, err_msg=k)
    assert p[k].grad.dtype == p[k].dtype
np.testing.assert_allclose(p["c"].grad.numpy(), w[0] * g["c"][0], rtol=1e-6)
assert p["d"].grad is None and frozen.grad is None
# float32 a (60 B), c (16 B), d (12 B) in one bucket, e (1280 B) alone; float64 b in its own
assert sorted(calls) == sorted([15 + 4 + 3 + 3, 320 + 1, 4 + 1]), calls   # + a flag per parameter

calls.clear()                    # default: one bucket per dtype, the mean of the gradients
for k in "abe":
    p[k].grad = None
    give(p[k], g[k][r])
dist.all_reduce_grads(params)
assert len(calls) == 2, calls
for k in "abe":
    np.testing.assert_allclose(p[k].grad.numpy(), (g[k][0] + g[k][1]) / 2, rtol=1e-6, err_msg=k)

if get_mesh().size > 1:          # a parameter sharded over this process's devices keeps its shards
    s = gt.from_numpy(np.zeros((8, 3), np.float32)).requires_grad_()
    gs = [rng.standard_normal((8, 3)).astype(np.float32) for _ in range(2)]
    give(s, gs[r])
    dist.all_reduce_grads([s], weight=w[r])
    assert s.grad.placement == gt.Shard(0)
    np.testing.assert_allclose(s.grad.numpy(), w[0] * gs[0] + w[1] * gs[1], rtol=1e-6)

tdist.all_reduce = all_reduce

# the module wrapper: the backward after its forward averages the gradients over the processes
from gt import nn
gt.manual_seed(0)
net = nn.Linear(6, 2)
ddp = dist.DistributedDataParallel(net)
assert list(ddp.state_dict()) == ["module.weight", "module.bias"]
xs = [rng.standard_normal((4, 6)).astype(np.float32) for _ in range(2)]

def alone(x):                    # the gradient of the loss on x, computed in this process only
    ref = nn.Linear(6, 2)
    ref.load_state_dict(net.state_dict())
    (ref(gt.from_numpy(x)) ** 2).mean().backward()
    return ref.weight.grad.numpy()

g0, g1 = alone(xs[0]), alone(xs[1])
(ddp(gt.from_numpy(xs[r])) ** 2).mean().backward()
np.testing.assert_allclose(net.weight.grad.numpy(), (g0 + g1) / 2, rtol=1e-5)
net.zero_grad()
with ddp.no_sync():              # accumulate locally, then one synced backward
    (ddp(gt.from_numpy(xs[r])) ** 2).mean().backward()
np.testing.assert_allclose(net.weight.grad.numpy(), [g0, g1][r], rtol=1e-5)
(ddp(gt.from_numpy(xs[1 - r])) ** 2).mean().backward()
np.testing.assert_allclose(net.weight.grad.numpy(), g0 + g1, rtol=1e-5)

dist.barrier()
print("collectives ok", r, file=sys.stderr)

import os

from lpm.train import main
runs = json.loads(sys.argv[1])
for i, argv in enumerate(runs["argvs"]):
    if i:   # a new group on a fresh port: one being closed by the last group resets connections
        os.environ["MASTER_PORT"] = str(runs["ports"][i - 1])
    main(argv)                   # the first init() is a no-op: the group is up; main ends with destroy()
    assert not dist.is_initialized() and dist.get_world_size() == 1
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The runs of this file, started together: ``{name: [(returncode, stdout, stderr)]}`` and
    ``["dirs"]``, the checkpoint folders."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("multi-process runs use torch.distributed: pip install 'lpm[torch]'")
    tmp = str(tmp_path_factory.mktemp("distributed"))
    d = {name: os.path.join(tmp, name) for name in ("ref_even", "ref_odd", "dp_even", "dp_odd")}
    argvs = [EVEN + ["--checkpoint-dir", d["dp_even"]],
             # a save after every step by the clock: the processes' one verdict (a collective) each step
             ODD + ["--epochs", "2", "--save-every-minutes", "1e-9", "--checkpoint-dir", d["dp_odd"]],
             ODD + ["--resume", "--checkpoint-dir", d["dp_odd"]]]
    port, *ports = free_ports(len(argvs))
    groups = {
        "ref_even": one_process(tmp, "ref_even", ["train.py", *EVEN, "--checkpoint-dir", d["ref_even"]]),
        "ref_odd": one_process(tmp, "ref_odd", ["train.py", *ODD, "--checkpoint-dir", d["ref_odd"]]),
        "dp": by_hand(tmp, "dp", ["-c", WORKER, json.dumps({"argvs": argvs, "ports": ports})], port),
    }
    out = {name: group.wait() for name, group in groups.items()}
    out["dirs"] = d
    return out


def ok(results):
    for rc, stdout, stderr in results:
        assert rc == 0, f"exit status {rc}\n{stdout}\n{stderr}"
    return results


def epoch_lines(stdout):
    return [line for line in stdout.splitlines() if EPOCH_LINE.match(line)]


def assert_same_run(folder, reference):
    """The checkpoints of a multi-process run hold the reference run's losses and parameters."""
    from lpm.checkpoint import read_checkpoint

    got, want = read_checkpoint(folder), read_checkpoint(reference)
    losses, ref_losses = got.meta["progress"]["losses"], want.meta["progress"]["losses"]
    assert len(losses) == len(ref_losses) == 3
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    assert got.meta["progress"]["step"] == want.meta["progress"]["step"]
    assert got.model_state.keys() == want.model_state.keys()
    for name, ref in want.model_state.items():
        err = float(np.max(np.abs(got.model_state[name] - ref)))
        assert err <= 1e-5 * float(np.max(np.abs(ref))) + 1e-9, f"{name}: max difference {err}"


def assert_one_checkpoint_set(folder):
    """What one process writes: the pointer files and epoch folders, nothing half-written."""
    names = sorted(os.listdir(folder))
    assert {"latest.json", "best.json"} <= set(names), names
    assert all(re.match(r"^epoch\d{4}-step\d{8}$", n) for n in names if not n.endswith(".json")), names
    with open(os.path.join(folder, "latest.json")) as f:
        assert json.load(f)["checkpoint"].startswith("epoch0003"), names


# ---- training: the same run in 1 and 2 processes ---------------------------------------------
def printed_runs(stdout):
    """Rank 0's output, one string per run of main (each begins with its Devices line)."""
    return ["Devices:" + part for part in stdout.split("Devices:")[1:]]


@needs_torch
@pytest.mark.commands
def test_all_reduce_grads_and_scalars_between_two_processes(runs):
    results = ok(runs["dp"])
    assert [f"collectives ok {r}" in stderr for r, (_, _, stderr) in enumerate(results)] == [True, True]


@needs_torch
@pytest.mark.commands
def test_only_rank_0_prints(runs):
    (_, stdout, _), (_, stdout_1, stderr_1) = ok(runs["dp"])
    assert stdout_1 == "", "rank 1 printed"
    assert "error" not in stderr_1.lower(), stderr_1
    assert len(printed_runs(stdout)) == 3 and stdout.startswith("Devices:"), stdout
    for printed in printed_runs(stdout):
        assert DEVICES_LINE.match(printed), printed
        assert sum(line.startswith("Done in") for line in printed.splitlines()) == 1, printed


@needs_torch
@pytest.mark.commands
def test_two_processes_match_one(runs):
    (_, ref, _), = ok(runs["ref_even"])
    (_, stdout, _), _ = ok(runs["dp"])
    printed = printed_runs(stdout)[0]
    lines = epoch_lines(printed)
    assert [EPOCH_LINE.match(line).group(1) for line in lines] == ["1", "2", "3"], printed   # each once
    np.testing.assert_allclose([float(EPOCH_LINE.match(line).group(3)) for line in lines],
                               [float(EPOCH_LINE.match(line).group(3)) for line in epoch_lines(ref)], atol=1.5e-4)
    assert_same_run(runs["dirs"]["dp_even"], runs["dirs"]["ref_even"])
    assert_one_checkpoint_set(runs["dirs"]["dp_even"])
    assert sorted(os.listdir(runs["dirs"]["dp_even"])) == sorted(os.listdir(runs["dirs"]["ref_even"]))


@needs_torch
@pytest.mark.commands
def test_uneven_split_and_resume_match_one_process(runs):
    ok(runs["ref_odd"])
    (_, stdout, _), _ = ok(runs["dp"])
    first, second = printed_runs(stdout)[1:]
    assert [EPOCH_LINE.match(line).group(1) for line in epoch_lines(first)] == ["1", "2"]
    assert "Resumed from" in second and [EPOCH_LINE.match(line).group(1) for line in epoch_lines(second)] == ["3"]
    assert_same_run(runs["dirs"]["dp_odd"], runs["dirs"]["ref_odd"])
    assert_one_checkpoint_set(runs["dirs"]["dp_odd"])


# ---- one process: no torch, no-ops ----------------------------------------------------------------
@pytest.fixture
def fresh(monkeypatch):
    for name in dist.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    dist.destroy()
    yield monkeypatch
    dist.destroy()


@pytest.mark.first_pass
def test_init_without_environment_is_a_world_of_one_and_imports_no_torch():
    code = ("import sys, gt; w = gt.distributed.init(); assert w == gt.distributed.World(0, 1, 0, None), w; "
            "assert gt.distributed.init() is w and gt.distributed.get_world_size() == 1; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_world_of_one(fresh):
    assert (dist.get_rank(), dist.get_world_size(), dist.is_initialized()) == (0, 1, False)
    fresh.setenv("WORLD_SIZE", "1")
    fresh.setenv("RANK", "0")
    world = dist.init()
    assert world == (0, 1, 0, None) and dist.is_initialized() and dist.is_main_process()
    dist.barrier()
    assert dist.all_reduce_sum(2.5) == 2.5 and dist.all_reduce_sum([1, 2]) == [1.0, 2.0]
    assert dist.all_reduce([3], op="max") == [3.0]
    dist.destroy()
    assert not dist.is_initialized()


def test_all_reduce_grads_in_one_process_only_scales():
    a = gt.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    b = gt.tensor(np.ones(4, np.float32), requires_grad=True)
    (a * 3.0).sum().backward()
    before = a.grad
    dist.all_reduce_grads([a, b])                    # weight 1 (1 / world size): nothing changes
    assert a.grad is before and b.grad is None
    np.testing.assert_array_equal(a.grad.numpy(), np.full((3, 2), 3.0, np.float32))
    dist.all_reduce_grads([a, b, a], weight=0.5)     # a listed twice is scaled once
    np.testing.assert_array_equal(a.grad.numpy(), np.full((3, 2), 1.5, np.float32))
    assert b.grad is None


@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 33])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_split_range_is_numpy_array_split(n, world):
    parts = [dist.split_range(n, r, world) for r in range(world)]
    want = np.array_split(np.arange(n), world)
    assert [list(range(*p)) for p in parts] == [w.tolist() for w in want]


def test_split_range_defaults_and_errors():
    assert dist.split_range(5) == (0, 5)              # one process takes everything
    with pytest.raises(ValueError, match="rank"):
        dist.split_range(5, rank=2, world=2)
    with pytest.raises(ValueError, match="n must be"):
        dist.split_range(-1)


@pytest.mark.parametrize("env, message", [
    (dict(RANK="1"), "RANK='1' is set but WORLD_SIZE is not"),
    (dict(WORLD_SIZE="2", MASTER_ADDR="h", MASTER_PORT="1"), "WORLD_SIZE=2 is set but RANK is not"),
    (dict(RANK="2", WORLD_SIZE="2"), "RANK=2 is not below WORLD_SIZE=2"),
    (dict(RANK="0", WORLD_SIZE="two"), "WORLD_SIZE='two'"),
    (dict(RANK="-1", WORLD_SIZE="2"), "RANK='-1'"),
    (dict(RANK="0", WORLD_SIZE="2", LOCAL_RANK="x", MASTER_ADDR="h", MASTER_PORT="1"), "LOCAL_RANK='x'"),
    (dict(RANK="0", WORLD_SIZE="2", MASTER_PORT="1"), "MASTER_ADDR is not set"),
    (dict(RANK="0", WORLD_SIZE="2", MASTER_ADDR="h"), "MASTER_PORT is not set"),
    (dict(RANK="0", WORLD_SIZE="2", MASTER_ADDR="h", MASTER_PORT="70000"), "MASTER_PORT=70000"),
])
def test_inconsistent_environment_is_named(fresh, env, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        dist.read_env(env)
    for name, value in env.items():
        fresh.setenv(name, value)
    with pytest.raises(ValueError, match=re.escape(message)):
        dist.init()
    assert not dist.is_initialized()


def test_read_env():
    assert dist.read_env({}) == (0, 1, 0)
    assert dist.read_env(dict(RANK="0", WORLD_SIZE="1")) == (0, 1, 0)
    assert dist.read_env(dict(RANK="3", WORLD_SIZE="4", LOCAL_RANK="1", MASTER_ADDR="h", MASTER_PORT="29500")) \
        == (3, 4, 1)


def test_missing_torch_says_how_to_install(fresh):
    for name, value in dict(RANK="0", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT="29500").items():
        fresh.setenv(name, value)
    fresh.setitem(sys.modules, "torch", None)          # import torch now raises ImportError
    fresh.setitem(sys.modules, "torch.distributed", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'lpm[torch]'")):
        dist.init()
    assert not dist.is_initialized()


@pytest.mark.first_pass
def test_train_script_names_a_bad_environment():
    done = subprocess.run([sys.executable, "train.py", *EVEN], cwd=ROOT, env=child_env(RANK="1"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("train.py: error: gt.distributed: RANK='1' is set but WORLD_SIZE is not"), \
        done.stderr


@pytest.mark.first_pass
@needs_torch
def test_torchrun_itself_runs_train_py():
    """The launcher users run (``torchrun``, i.e. ``python -m torch.distributed.run``): its agent
    starts the two workers; rank 0 alone prints, once."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", "train.py", *TINY, "--samples", "24", "--epochs", "1",
               "--batch-size", "8"]
    done = subprocess.run(command, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sum(bool(DEVICES_LINE.match(line)) for line in lines) == 1, done.stdout
    assert [EPOCH_LINE.match(line).group(1) for line in lines if EPOCH_LINE.match(line)] == ["1"], done.stdout


def test_ddp_in_one_process_is_the_module(fresh):
    from gt import nn

    gt.manual_seed(0)
    net = nn.Linear(5, 3)
    ddp = dist.DistributedDataParallel(net)
    x = gt.randn(4, 5)
    (ddp(x) ** 2).sum().backward()
    expected = net.weight.grad.numpy().copy()
    net.zero_grad()
    (net(x) ** 2).sum().backward()
    np.testing.assert_array_equal(net.weight.grad.numpy(), expected)
    assert ddp.module is net and [n for n, _ in ddp.named_parameters()] == ["module.weight", "module.bias"]
    with ddp.no_sync():
        assert ddp._sync is False
    assert ddp._sync is True
    with pytest.raises(TypeError, match="wraps a gt.nn.Module, got function"):
        dist.DistributedDataParallel(lambda x: x)


def test_after_backward_callbacks_run_once_at_the_end_of_the_next_backward():
    from gt import autograd

    w = gt.ones(3, requires_grad=True)
    seen = []

    def hook():
        seen.append(None if w.grad is None else w.grad.numpy().copy())

    autograd.call_after_backward(hook)
    autograd.call_after_backward(hook)          # the same callable: once
    (w * 2).sum().backward()
    (w * 2).sum().backward()
    assert len(seen) == 1 and seen[0].tolist() == [2.0, 2.0, 2.0]   # grads were filled first
