"""Shared-memory tensors (torch's ``share_memory_``/``is_shared``/``Module.share_memory`` and
torch.multiprocessing's sending of shared tensors), beside torch: in place, views, autograd kept,
Hogwild-style SGD by two child processes seen by the parent, writes by children under 'fork' and
'spawn', refusals; no /dev/shm segment left behind."""

import gc
import os
import pickle

from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest

import gt
from gt import multiprocessing as gmp
from gt.sharding import use_mesh

torch = pytest.importorskip("torch")

# one mesh device (the shared memory is a whole tensor's); processes' answers depend on the engine only
pytestmark = pytest.mark.own_mesh
NUMPY = gt.backend.B.name == "numpy"


def _segments():
    return {n for n in os.listdir("/dev/shm") if n.startswith("gt_")} if os.path.isdir("/dev/shm") else set()


@pytest.fixture(autouse=True)
def _no_leaked_segments():
    before = _segments()
    yield
    if not _segments() <= before:     # a tensor the test dropped may wait for the cycle collector
        gc.collect()
        assert _segments() <= before


def test_share_memory_in_place_views_and_autograd():
    with use_mesh(1):
        values = np.arange(6, dtype=np.float32).reshape(2, 3)
        a, ta = gt.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
        early = a[0]                                   # a view taken before (numpy: keeps the old memory)
        assert a.is_shared() == ta.is_shared() is False
        assert a.share_memory_() is a and ta.share_memory_() is ta
        assert a.is_shared() and ta.is_shared() and a.requires_grad and a.is_leaf
        assert a[1].is_shared() == ta[1].is_shared() is True and a.t().is_shared() == ta.t().is_shared()
        assert early.is_shared() == (not NUMPY)
        np.testing.assert_array_equal(a.detach().numpy(), values)
        ptr = a.data_ptr()
        assert a.share_memory_() is a and a.data_ptr() == ptr         # shared already: nothing moves
        (a * a).sum().backward()
        (ta * ta).sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
        with gt.no_grad():
            a[1].mul_(10)                               # a view taken after shares a's memory
            a.sub_(a.grad)                              # in-place updates stay in shared memory
        assert a.is_shared() and a.data_ptr() == ptr
        copy = pickle.loads(pickle.dumps(a))            # a plain pickle copies, as torch's
        tcopy = pickle.loads(pickle.dumps(ta))
        assert copy.is_shared() == tcopy.is_shared() is False
        np.testing.assert_array_equal(copy.detach().numpy(), [[0, -1, -2], [24, 32, 40]])


def test_module_share_memory_parameters_buffers_grads():
    with use_mesh(1):
        m, tm = gt.nn.Sequential(gt.nn.Linear(3, 2), gt.nn.BatchNorm1d(2)), torch.nn.Sequential(
            torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
        m(gt.randn(4, 3)).sum().backward()
        tm(torch.randn(4, 3)).sum().backward()
        m[1].weight.grad = None
        tm[1].weight.grad = None
        assert m.share_memory() is m and tm.share_memory() is tm
        for ours, theirs in ((m.parameters(), tm.parameters()), (m.buffers(), tm.buffers())):
            for t, tt in zip(ours, theirs, strict=True):
                assert t.is_shared() == tt.is_shared() is True
                assert (t.grad is None) == (tt.grad is None)
                assert t.grad is None or t.grad.is_shared() == tt.grad.is_shared() is True


def test_refusals():
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.UninitializedParameter().share_memory_()
    with pytest.raises(RuntimeError, match="Can't share memory on an uninitialized parameter") as ours:
        gt.nn.LazyLinear(2).share_memory()
    assert str(ours.value) == str(theirs.value)
    with use_mesh(2):
        x = gt.randn(4, 3)
        assert x._placed is not None and not x.is_shared()
        with pytest.raises(RuntimeError, match="sharded over the mesh"):
            x.share_memory_()
    with pytest.raises(ValueError, match="nprocs must be a positive int"):
        gmp.start_processes(print, nprocs=0, start_method="fork")
    with pytest.raises(ValueError):                     # an unknown start method, as torch's
        gmp.get_context("bogus")
    with pytest.raises(AssertionError):
        gmp.set_sharing_strategy("bogus")
    assert gmp.get_sharing_strategy() in gmp.get_all_sharing_strategies()
    with pytest.raises(RuntimeError) as theirs:         # a graph cannot cross processes
        ForkingPickler.dumps(torch.ones(2, requires_grad=True) * 2)
    with pytest.raises(RuntimeError, match="Cowardly refusing") as ours:
        ForkingPickler.dumps(gt.ones(2, requires_grad=True) * 2)
    assert str(ours.value) == str(theirs.value)
    ForkingPickler.dumps((gt.ones(2, requires_grad=True) * 2).detach())


def _sgd_steps(model, data, target, steps, lr=0.1):
    opt = (gt.optim.SGD if isinstance(model, gt.nn.Module) else torch.optim.SGD)(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        ((model(data) - target) ** 2).mean().backward()
        opt.step()


def _hogwild_child(model, seed, done):
    rng = np.random.default_rng(seed)
    _sgd_steps(model, gt.tensor(rng.standard_normal((8, 4), dtype=np.float32)),
               gt.tensor(rng.standard_normal((8, 1), dtype=np.float32)), 5)
    done.put(all(p.is_shared() for p in model.parameters()))


def test_hogwild_two_children_update_the_parents_model():
    """Two forked children train the shared model in turn (so that the result is exact); the
    parent's model holds both children's updates, equal to torch running the same steps."""
    with use_mesh(1):
        model = gt.nn.Linear(4, 1)
        tmodel = torch.nn.Linear(4, 1)
        with torch.no_grad():
            tmodel.weight.copy_(torch.from_numpy(model.weight.detach().numpy()))
            tmodel.bias.copy_(torch.from_numpy(model.bias.detach().numpy()))
        model.share_memory()
        ctx = gmp.get_context("fork")
        done = ctx.SimpleQueue()
        for seed in (1, 2):
            child = ctx.Process(target=_hogwild_child, args=(model, seed, done))
            child.start()
            child.join()
            assert child.exitcode == 0 and done.get() is True
            rng = np.random.default_rng(seed)
            _sgd_steps(tmodel, torch.from_numpy(rng.standard_normal((8, 4), dtype=np.float32)),
                       torch.from_numpy(rng.standard_normal((8, 1), dtype=np.float32)), 5)
        for p, tp in zip(model.parameters(), tmodel.parameters(), strict=True):
            np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def _write_child(queue, done):
    shared, plain, param = queue.get()
    with gt.no_grad():
        shared.add_(1)
        plain.add_(1)
        param.add_(1)
    done.put((shared.is_shared(), type(param).__name__, param.requires_grad, param.is_shared()))


def test_fork_queue_shared_attaches_plain_copies():
    """A shared tensor sent through a Queue is the parent's memory in the child; a plain one is
    copied on the numpy engine, moved into shared memory on the way by torch on the torch engine
    (as torch.multiprocessing does)."""
    with use_mesh(1):
        shared, plain = gt.zeros(2, 3).share_memory_(), gt.zeros(3)
        param = gt.nn.Parameter(gt.ones(2)).share_memory_()
        view = shared[1:]                                # a view of the shared tensor travels as itself
        ctx = gmp.get_context("fork")
        queue, done = ctx.Queue(), ctx.SimpleQueue()
        child = ctx.Process(target=_write_child, args=(queue, done))
        child.start()
        queue.put((view, plain, param))
        assert done.get() == (True, "Parameter", True, True)
        child.join()
        assert child.exitcode == 0
        np.testing.assert_array_equal(shared.numpy(), [[0, 0, 0], [1, 1, 1]])
        np.testing.assert_array_equal(plain.numpy(), np.zeros(3) if NUMPY else np.ones(3))
        np.testing.assert_array_equal(param.detach().numpy(), [2, 2])


def _rank_writes(rank, shared):
    if rank == 1:
        raise ValueError("rank 1 fails")
    with gt.no_grad():
        shared[rank].fill_(rank + 10)


def test_start_processes_writes_and_errors():
    with use_mesh(1):
        shared = gt.zeros(2, 2).share_memory_()
        gmp.start_processes(_rank_writes, args=(shared[:1],), nprocs=1, start_method="fork")
        np.testing.assert_array_equal(shared.numpy(), [[10, 10], [0, 0]])
        with pytest.raises(gmp.ProcessRaisedException, match="(?s)Process 1 terminated.*rank 1 fails") as info:
            gmp.start_processes(_rank_writes, args=(shared,), nprocs=2, start_method="fork")
        assert info.value.error_index == 1


def test_spawn_process_arguments_attach_to_the_same_memory():
    """Under 'spawn' the child maps the segment by name. The target is the shared view's own
    method, so that the child imports gt only (not this module and torch: a fast start)."""
    with use_mesh(1):
        shared = gt.zeros(2, 2).share_memory_()
        child = gmp.get_context("spawn").Process(target=shared[1].fill_, args=(7.0,))
        child.start()
        child.join()
        assert child.exitcode == 0
        np.testing.assert_array_equal(shared.numpy(), [[0, 0], [7, 7]])


@pytest.mark.first_pass     # its processes pick their own engine (GT_* dropped): the same in every pass
def test_gt_multiprocessing_loads_at_first_use_and_before_the_first_share():
    """gt.multiprocessing is imported on first use (start-up time), yet a shared tensor still goes
    through Python's multiprocessing by handle: ``share_memory_`` loads it first (it registers the
    pickler's reductions, as ``import torch`` does), and so does ``import gt`` in a process that
    uses multiprocessing already (a spawned child)."""
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith("GT_")}
    code = ("import sys, gt\n"
            "before = 'gt.multiprocessing' in sys.modules\n"
            "t = gt.ones(2).share_memory_()\n"
            "from multiprocessing.reduction import ForkingPickler\n"
            "ours = all(c in ForkingPickler._extra_reducers for c in (gt.Tensor, gt.nn.Parameter))\n"
            "print(before, 'gt.multiprocessing' in sys.modules, ours, 'multiprocessing' in dir(gt), "
            "gt.multiprocessing is sys.modules['gt.multiprocessing'])\n")
    for engine in ("numpy", "torch"):
        done = subprocess.run([sys.executable, "-c", code], env=dict(env, GT_BACKEND=engine), capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["False", "True", "True", "True", "True"]
    code = "import sys, multiprocessing, gt; print('gt.multiprocessing' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], env=dict(env, GT_BACKEND="numpy"), capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.split() == ["True"], done.stderr
