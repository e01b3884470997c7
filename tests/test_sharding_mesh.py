"""The device mesh and the placement API: how the mesh is chosen (GT_DEVICES, gpu_workers,
GT_AUTO_SHARD), what it reports (GT_VERBOSE), default placements, explicit shard()/replicate(),
in-place updates of sharded tensors, and train.py's sharding switch."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gt
from gt import nn
from gt.sharding import Partial, Replicate, Shard, count_collectives, get_mesh, use_mesh

ROOT = Path(__file__).resolve().parents[1]


def _python(code, **env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GT_")}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


# ---- choosing the mesh ------------------------------------------------------------------------
@pytest.mark.parametrize("env,expected", [
    ({}, 1),
    ({"GT_DEVICES": "4"}, 4),
    ({"GT_AUTO_SHARD": "1", "GT_DEVICES": "3"}, 3),
    ({"GT_AUTO_SHARD": "0", "GT_DEVICES": "4"}, 1),   # an explicit 0 wins
    ({"GT_AUTO_SHARD": "1"}, 1),                      # numpy engine: the CPU is the one local device
])
@pytest.mark.first_pass
def test_mesh_from_the_environment(env, expected):
    done = _python("import gt; print(gt.get_mesh().size, gt.randn(8, 2).placement)", **env)
    assert done.returncode == 0, done.stderr
    size, placement = done.stdout.split(maxsplit=1)
    assert int(size) == expected
    assert placement.strip() == ("Shard(0)" if expected > 1 else "Replicate()")


@pytest.mark.first_pass
def test_gpu_workers_before_the_first_tensor():
    done = _python("import gt; gt.gpu_workers(4); x = gt.randn(10, 3); "
                   "print(x.placement, [s.shape[0] for s in x._placed.shards])")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Shard(0) [3, 3, 2, 2]"


@pytest.mark.first_pass
def test_gpu_workers_after_the_first_tensor_is_a_clear_error():
    done = _python("import gt; gt.randn(2); gt.gpu_workers(4)")
    assert done.returncode != 0
    assert "gpu_workers(4) called after the mesh was fixed" in done.stderr
    assert "before creating any tensor" in done.stderr


@pytest.mark.first_pass
@pytest.mark.parametrize("bad", ["0", "-2", "four"])
def test_bad_gt_devices_names_the_value(bad):
    done = _python("import gt; gt.randn(2)", GT_DEVICES=bad)
    assert done.returncode != 0 and "GT_DEVICES must be a positive integer" in done.stderr
    assert repr(bad) in done.stderr


def test_gpu_workers_rejects_bad_counts():
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="gpu_workers"):
            gt.gpu_workers(bad)


@pytest.mark.first_pass
def test_verbose_reports_devices_and_engine():
    done = _python("import gt; gt.randn(4, 4)", GT_VERBOSE="1", GT_AUTO_SHARD="1", GT_DEVICES="4")
    assert done.returncode == 0, done.stderr
    assert "GT_AUTO_SHARD: Detected 4 device(s) (cpu, virtual), engine numpy, sharding batch axis" in done.stderr
    quiet = _python("import gt; gt.randn(4, 4)", GT_DEVICES="4")
    assert quiet.stderr == ""


# ---- placements -------------------------------------------------------------------------------
def test_default_placements():
    with use_mesh(4):
        assert get_mesh().size == 4
        assert gt.randn(8, 3).placement == Shard(0)
        assert gt.randn(5, 3).placement == Shard(0)                      # uneven: 2, 1, 1, 1
        assert [s.shape[0] for s in gt.randn(5, 3)._placed.shards] == [2, 1, 1, 1]
        assert gt.randn(3, 8).placement == Replicate()                   # axis 0 shorter than the mesh
        assert gt.randn(8, 3, requires_grad=True).placement == Replicate()   # parameters
        assert gt.from_numpy(np.zeros((4, 2))).placement == Shard(0)
        assert gt.arange(8).placement == Replicate()
        lin = nn.Linear(8, 4)
        assert all(p.placement == Replicate() for p in lin.parameters())
        m = nn.Module()
        m.register_buffer("table", gt.randn(16, 4))
        assert m.table.placement == Replicate()
        x = gt.randn(8, 3)
        assert gt.zeros_like(x).placement == Shard(0) and gt.zeros_like(lin.weight).placement == Replicate()
        s = x.sum(axis=0)
        assert s.placement == Partial()
        np.testing.assert_allclose(s.numpy(), x.numpy().sum(0), rtol=1e-6, atol=1e-6)  # sums near 0
        assert "placement=Shard(0)" in repr(x)


def test_shard_and_replicate_are_differentiable():
    with use_mesh(3):
        w = gt.randn(7, 4, requires_grad=True)
        s1 = w.shard(1)
        assert s1.placement == Shard(1) and [a.shape[1] for a in s1._placed.shards] == [2, 1, 1]
        np.testing.assert_array_equal(s1.numpy(), w.numpy())
        r = s1.replicate()
        assert r.placement == Replicate()
        (s1 * s1).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), 2 * w.numpy(), rtol=1e-6)
        with pytest.raises(ValueError, match="0-d"):
            gt.tensor(1.0).shard()
    with use_mesh(1):
        t = gt.randn(4, 2)
        assert t.shard(0) is t  # one device: nothing to split


def test_from_numpy_shards_share_memory():
    with use_mesh(4):
        arr = np.zeros((8, 3), np.float32)
        t = gt.from_numpy(arr)
        arr[5, 1] = 7.0
        assert t.numpy()[5, 1] == 7.0
        assert np.shares_memory(t.numpy(), arr)  # the shards are adjacent views: joined without a copy


def test_in_place_updates_of_sharded_tensors_keep_the_layout():
    with use_mesh(4):
        ref = np.arange(30, dtype=np.float32).reshape(6, 5)
        t = gt.tensor(ref)
        holder = t._placed
        t += 1.0
        t.mul_(2.0).add_(gt.ones(5), alpha=3.0)
        t.sub_(gt.tensor(np.ones((6, 5), np.float32)))
        expected = (ref + 1.0) * 2.0 + 3.0 - 1.0
        assert t._placed is holder and t.placement == Shard(0)
        np.testing.assert_array_equal(t.numpy(), expected)
        t.copy_(gt.tensor(ref.T.copy()).T)   # a source sharded along the other axis
        np.testing.assert_array_equal(t.numpy(), ref)
        t[2:4, 1] = -1.0
        ref2 = ref.copy()
        ref2[2:4, 1] = -1.0
        np.testing.assert_array_equal(t.numpy(), ref2)
        assert t.placement == Shard(0) and [s.shape[0] for s in t._placed.shards] == [2, 2, 1, 1]
        t.zero_()
        assert not t.numpy().any()


def test_optimizer_state_follows_its_parameter():
    with use_mesh(4):
        w = nn.Parameter(gt.randn(8, 4))
        opt = gt.optim.Adam([w], lr=0.1)
        (w * gt.randn(8, 4)).sum().backward()
        opt.step()
        assert opt.state[w]["exp_avg"].placement == Replicate()
        assert w.grad.placement == Replicate() and w.placement == Replicate()


def test_collectives_are_counted_with_their_sizes():
    with use_mesh(2):
        x = gt.randn(6, 5)
        with count_collectives() as c:
            y = (x * 2).relu()        # elementwise on one layout: nothing moves
        assert dict(c) == {}
        with count_collectives() as c:
            y.sum(axis=0).numpy()     # a partial sum is all-reduced once, when read
        assert dict(c) == {"all_reduce": 1} and c.elements_moved["all_reduce"] == 2 * 5


# ---- train.py ---------------------------------------------------------------------------------
_RUN = [sys.executable, "train.py", "--samples", "24", "--seq-len", "3", "--img-size", "16", "--embed-dim", "16",
        "--num-heads", "2", "--ff-dim", "32", "--epochs", "2", "--batch-size", "6", "--no-progress"]


def _losses(text):
    return [float(v) for v in re.findall(r"Loss = ([0-9.]+)", text)]


@pytest.mark.first_pass
def test_train_script_shards_by_default_and_matches_one_device():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GT_")}
    sharded = subprocess.run(_RUN, cwd=ROOT, env=dict(env, GT_DEVICES="4"), capture_output=True, text=True,
                             timeout=300)
    single = subprocess.run(_RUN + ["--no-shard"], cwd=ROOT, env=dict(env, GT_DEVICES="4"), capture_output=True,
                            text=True, timeout=300)
    off = subprocess.run(_RUN, cwd=ROOT, env=dict(env, GT_DEVICES="4", GT_AUTO_SHARD="0"), capture_output=True,
                         text=True, timeout=300)
    for done in (sharded, single, off):
        assert done.returncode == 0, done.stderr
    assert "Devices: 4 device(s) (cpu, virtual)" in sharded.stdout
    assert "Devices: 1 device(s) (cpu)" in single.stdout and "Devices: 1 device(s) (cpu)" in off.stdout
    assert len(_losses(sharded.stdout)) == 2
    np.testing.assert_allclose(_losses(sharded.stdout), _losses(single.stdout), atol=1.5e-4)  # printed to 4 places


def test_no_shard_inside_a_process_whose_mesh_is_fixed():
    from lpm.train import TrainConfig, train

    cfg = TrainConfig(samples=16, seq_len=3, img_size=8, embed_dim=8, num_heads=2, ff_dim=16, epochs=1,
                      batch_size=4, progress=False)
    lines = []
    with use_mesh(4):
        a = train(cfg, log=lines.append)
        b = train(TrainConfig(**{**cfg.__dict__, "shard": False}), log=lines.append)
    assert lines[0].startswith("Devices: 4 device(s)") and any(line.startswith("Devices: 1 device(s)") for line in lines)
    np.testing.assert_allclose(a["losses"], b["losses"], rtol=1e-5)


# ---- GPU machines (resolved from a GPU count: no GPU needed to test the choice) ------------------
@pytest.mark.parametrize("env,gpus,expected", [
    ({}, 4, "1 device(s) (cuda:0)"),                                   # torch on a GPU box: cuda:0
    ({"GT_AUTO_SHARD": "1"}, 4, "4 device(s) (cuda:0, cuda:1, cuda:2, cuda:3)"),
    ({"GT_AUTO_SHARD": "0"}, 4, "1 device(s) (cuda:0)"),
    ({"GT_AUTO_SHARD": "1", "GT_DEVICES": "2"}, 4, "2 device(s) (cpu, virtual)"),   # tests on a GPU box
    ({"GT_AUTO_SHARD": "1"}, 0, "1 device(s) (cpu)"),
    # torchrun with 2 processes on a 4-GPU machine: each process takes its half
    ({"GT_AUTO_SHARD": "1", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "1"}, 4, "2 device(s) (cuda:2, cuda:3)"),
    ({"LOCAL_WORLD_SIZE": "4", "LOCAL_RANK": "3"}, 4, "1 device(s) (cuda:3)"),
])
def test_mesh_on_a_gpu_machine(monkeypatch, env, gpus, expected):
    from gt.sharding import mesh

    for name in ("GT_AUTO_SHARD", "GT_DEVICES", "LOCAL_WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(mesh, "_requested", None)
    m = mesh._resolve(gpus)
    assert m.describe() == expected
    assert m.shared_memory == (m.kind == "cpu")
    assert m.home == m.devices[0]


def test_more_processes_than_gpus_is_a_clear_error(monkeypatch):
    from gt.sharding import mesh

    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.delenv("GT_DEVICES", raising=False)
    monkeypatch.setattr(mesh, "_requested", None)
    with pytest.raises(RuntimeError, match=r"4 processes on this machine \(LOCAL_WORLD_SIZE\) but only 2 GPU"):
        mesh._resolve(2)


@pytest.mark.parametrize("driver,cuda,expected", [(False, False, "numpy"), (True, False, "numpy"),
                                                  (True, True, "torch")])
def test_auto_shard_picks_torch_only_where_cuda_works(monkeypatch, driver, cuda, expected):
    torch = pytest.importorskip("torch")
    from gt import backend

    monkeypatch.setenv("GT_AUTO_SHARD", "1")
    monkeypatch.setattr(backend, "_nvidia_driver", lambda: driver)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert backend._automatic() == expected
    monkeypatch.setenv("GT_AUTO_SHARD", "0")
    assert backend._automatic() == "numpy"
