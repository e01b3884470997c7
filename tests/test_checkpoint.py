"""Checkpoints: exact round trips, refusing foreign, truncated and corrupted files without loading
anything, atomic saves, kill-and-resume equal to an uninterrupted run, and a NaN that keeps the
last good checkpoint."""

import importlib.util
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import gt
import lpm.checkpoint as ckpt_mod
import lpm.train as train_mod
from lpm.checkpoint import CheckpointError, find_checkpoint, load_into, read_checkpoint, save_checkpoint
from lpm.train import NonFiniteLoss, TrainConfig, train

pytestmark = pytest.mark.skipif(importlib.util.find_spec("safetensors") is None,
                                reason="safetensors is not installed (a dependency: pip install -e .)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The flags of a small run for subprocesses: 5 steps per epoch, a checkpoint every 2 steps.
RUN = ["--img-size", "16", "--samples", "48", "--seq-len", "4", "--embed-dim", "16", "--num-heads", "2",
       "--ff-dim", "32", "--batch-size", "8", "--epochs", "3", "--optimizer", "adam", "--save-every", "2"]


def quiet(*args):
    pass


def adam_after_steps(model, steps=2):
    opt = gt.optim.Adam(model.parameters(), lr=1e-2)
    x = np.random.default_rng(0).random((4, 3, 8, 8), dtype=np.float32)
    for _ in range(steps):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
    return opt


def state_equal(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def latest_arrays(root):
    from safetensors.numpy import load_file

    folder = find_checkpoint(str(root))
    return tuple(load_file(os.path.join(folder, name)) for name in ("model.safetensors", "optimizer.safetensors"))


# ---- gt's generator state -----------------------------------------------------------------------
def test_rng_state_round_trips_through_json():
    gt.manual_seed(5)
    state = json.loads(json.dumps(gt.get_rng_state()))
    first = gt.randn(4).numpy()
    gt.randn(7)
    gt.set_rng_state(state)
    np.testing.assert_array_equal(gt.randn(4).numpy(), first)
    with pytest.raises(ValueError, match="bit_generator"):
        gt.set_rng_state({"state": 1})
    with pytest.raises(ValueError, match="not a valid PCG64 state"):
        gt.set_rng_state({"bit_generator": "PCG64", "state": "x"})


# ---- round trip ---------------------------------------------------------------------------------
def test_round_trip_is_exact(small_model, tmp_path):
    model = small_model(0)
    opt = adam_after_steps(model)
    gt.manual_seed(9)
    rng = gt.get_rng_state()
    path = save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 1, "step": 2}, "rng": {"gt": rng}})
    assert os.path.basename(path) == "epoch0001-step00000002"
    assert json.load(open(tmp_path / "latest.json"))["checkpoint"] == "epoch0001-step00000002"

    other = small_model(1)
    other_opt = adam_after_steps(other, steps=1)
    ck = read_checkpoint(str(tmp_path))
    load_into(ck, other, other_opt)
    assert state_equal(other.state_dict(), model.state_dict())
    saved, loaded = opt.state_dict(), other_opt.state_dict()
    assert json.dumps(saved["param_groups"]) == json.dumps(loaded["param_groups"])    # betas: tuple vs list
    for i, entry in saved["state"].items():
        assert entry["step"] == loaded["state"][i]["step"] == 2
        for name in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_array_equal(entry[name], loaded["state"][i][name])
    assert ck.meta["rng"]["gt"] == rng
    # one more identical step on both: the same parameters, bit for bit
    adam_after_steps(model, 0)
    for m, o in ((model, opt), (other, other_opt)):
        o.zero_grad()
        (m(np.ones((2, 3, 8, 8), np.float32)) ** 2).mean().backward()
        o.step()
    assert state_equal(other.state_dict(), model.state_dict())


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_pytorch_reads_the_weights(small_model, tmp_path):
    from safetensors.torch import load_file

    model = small_model(0)
    path = save_checkpoint(tmp_path, model, gt.optim.SGD(model.parameters(), lr=0.1), {"progress": {}})
    weights = load_file(os.path.join(path, "model.safetensors"))
    assert set(weights) == set(model.state_dict())
    np.testing.assert_array_equal(weights["embed.weight"].numpy(), model.state_dict()["embed.weight"])


# ---- refusing bad checkpoints -------------------------------------------------------------------
def saved_run(tmp_path, small_model):
    model = small_model(0)
    opt = adam_after_steps(model)
    return save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 1, "step": 2}}), model, opt


def test_truncated_or_corrupted_checkpoint_is_refused_and_nothing_loads(small_model, tmp_path):
    path, model, opt = saved_run(tmp_path, small_model)
    weights = os.path.join(path, "model.safetensors")
    data = open(weights, "rb").read()
    target = small_model(3)
    target_opt = adam_after_steps(target, steps=1)
    before, before_opt = target.state_dict(), target_opt.state_dict()

    open(weights, "wb").write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: \d+ bytes, the checkpoint recorded \d+ "
                                              r"\(truncated\)"):
        read_checkpoint(str(tmp_path))
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    open(weights, "wb").write(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: contents do not match the SHA-256.*corrupted"):
        read_checkpoint(str(tmp_path))
    open(weights, "wb").write(data)
    meta_path = os.path.join(path, "checkpoint.json")
    meta = json.load(open(meta_path))
    json.dump({**meta, "progress": {"epoch": 7, "step": 2}}, open(meta_path, "w"))
    with pytest.raises(CheckpointError, match="do not match its checksum"):
        read_checkpoint(str(tmp_path))
    open(meta_path, "w").write(json.dumps(meta)[:100])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_checkpoint(str(tmp_path))
    json.dump({"format": "something-else"}, open(meta_path, "w"))
    with pytest.raises(CheckpointError, match="not an LPM checkpoint"):
        read_checkpoint(str(tmp_path))
    os.remove(meta_path)
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        read_checkpoint(str(tmp_path / "nowhere"))
    assert state_equal(target.state_dict(), before)
    assert state_equal(target_opt.state_dict()["state"][0], before_opt["state"][0])


def test_foreign_checkpoint_lists_every_mismatch_and_loads_nothing(small_model, tmp_path):
    saved_run(tmp_path, small_model)
    ck = read_checkpoint(str(tmp_path))
    wider = small_model(4, embed_dim=12, num_classes=4)
    before = wider.state_dict()
    with pytest.raises(CheckpointError) as err:
        load_into(ck, wider, gt.optim.Adam(wider.parameters(), lr=1e-3))
    message = str(err.value)
    assert "embed.weight: shape (8, 64) in the checkpoint, (12, 64) in the model" in message
    assert "head.weight: shape (3, 8) in the checkpoint, (4, 12) in the model" in message
    assert state_equal(wider.state_dict(), before)


def test_a_model_with_extra_state_is_refused_by_name_and_nothing_is_written(tmp_path):
    class Tagged(gt.nn.Linear):
        def get_extra_state(self):
            return {"vocab": ["a", "b"]}

        def set_extra_state(self, state):
            pass

    model = Tagged(2, 3)
    with pytest.raises(CheckpointError, match="holds dict under '_extra_state'.*checkpoints hold arrays only"):
        save_checkpoint(str(tmp_path / "run"), model, None, {"progress": {"epoch": 0, "step": 0}})
    assert not (tmp_path / "run").exists()
    with pytest.raises(CheckpointError, match="holds dict under '_extra_state'"):
        ckpt_mod.state_problems(model, {})


def test_resume_with_other_options_is_refused(small_run, tmp_path):
    cfg = TrainConfig(**small_run, epochs=1, checkpoint_dir=str(tmp_path))
    train(cfg, log=quiet)
    with pytest.raises(CheckpointError, match="already holds a run.*--resume"):
        train(cfg, log=quiet)
    other = TrainConfig(**{**small_run, "embed_dim": 16, "seed": 3}, epochs=2, checkpoint_dir=str(tmp_path),
                        resume=True)
    with pytest.raises(CheckpointError) as err:
        train(other, log=quiet)
    assert "--embed-dim: 8 in the checkpoint, 16 now" in str(err.value)
    assert "--seed: 0 in the checkpoint, 3 now" in str(err.value)
    lines = []
    fresh = TrainConfig(**small_run, epochs=1, checkpoint_dir=str(tmp_path / "new"), resume=True)
    train(fresh, log=lines.append)
    assert any(line.startswith("No checkpoint in") for line in lines)


# ---- atomic saves -------------------------------------------------------------------------------
def test_a_failed_save_keeps_the_previous_checkpoint(small_model, tmp_path, monkeypatch):
    first, model, opt = saved_run(tmp_path, small_model)
    real_write = ckpt_mod._write_synced
    calls = []

    def disk_full(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(ckpt_mod, "_write_synced", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 2, "step": 4}})
    monkeypatch.setattr(ckpt_mod, "_write_synced", real_write)
    assert find_checkpoint(str(tmp_path)) == first
    assert sorted(os.listdir(tmp_path)) == ["epoch0001-step00000002", "latest.json"]   # no temporary left
    read_checkpoint(str(tmp_path))

    # a crash after the new folder is in place but before the pointer moves: the pointer still
    # names the old one, and the next save removes the orphan
    monkeypatch.setattr(ckpt_mod, "_publish", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 2, "step": 4}})
    monkeypatch.undo()
    assert find_checkpoint(str(tmp_path)) == first and "epoch0002-step00000004" in os.listdir(tmp_path)
    third = save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 3, "step": 6}}, best=True)
    assert sorted(os.listdir(tmp_path)) == ["best.json", "epoch0003-step00000006", "latest.json"]
    assert find_checkpoint(str(tmp_path), "best") == third


def test_best_checkpoint_is_kept_beside_the_latest(small_run, tmp_path):
    result = train(TrainConfig(**small_run, epochs=4, lr=0.5, checkpoint_dir=str(tmp_path)), log=quiet)
    best_epoch = int(np.argmax(result["eval_accs"])) + 1
    best = read_checkpoint(str(tmp_path), "best")
    assert best.meta["progress"]["epoch"] == best_epoch
    assert read_checkpoint(str(tmp_path)).meta["progress"]["epoch"] == 4
    folders = [e for e in os.listdir(tmp_path) if e.startswith("epoch")]
    kept = {os.path.basename(find_checkpoint(str(tmp_path), which)) for which in ("latest", "best", "previous")}
    assert sorted(folders) == sorted(kept) and "epoch0003-step00000012" in kept      # previous: epoch 3


# ---- kill and resume ----------------------------------------------------------------------------
# Runs train.py's main in a child that SIGKILLs itself inside the 8th optimizer step: mid-epoch 2
# (5 steps per epoch), after the step-6 checkpoint (--save-every 2) and before the step-8 one.
KILLER = """
import os, signal, sys
import gt.optim
step, calls = gt.optim.Adam.step, [0]
def killing_step(self, *args, **kwargs):
    calls[0] += 1
    if calls[0] == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    return step(self, *args, **kwargs)
gt.optim.Adam.step = killing_step
from lpm.train import main
main(sys.argv[2:])
"""


def run(args, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.commands
def test_killed_mid_epoch_and_resumed_equals_an_uninterrupted_run(tmp_path):
    whole = run(["train.py", *RUN, "--checkpoint-dir", str(tmp_path / "whole")])
    assert whole.returncode == 0, whole.stderr
    killed = run(["-c", KILLER, "8", *RUN, "--checkpoint-dir", str(tmp_path / "killed")])
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "Epoch  2/3" not in killed.stdout and "Epoch  1/3" in killed.stdout     # died inside epoch 2
    meta = read_checkpoint(str(tmp_path / "killed")).meta["progress"]
    assert (meta["epoch"], meta["step_in_epoch"], meta["step"]) == (1, 1, 6)          # the mid-epoch checkpoint
    resumed = run(["train.py", *RUN, "--checkpoint-dir", str(tmp_path / "killed"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert "Resumed from" in resumed.stdout and "1 step(s) into epoch 2" in resumed.stdout
    (w_model, w_opt), (r_model, r_opt) = latest_arrays(tmp_path / "whole"), latest_arrays(tmp_path / "killed")
    assert state_equal(w_model, r_model) and state_equal(w_opt, r_opt)
    whole_meta, resumed_meta = (read_checkpoint(str(tmp_path / name)).meta for name in ("whole", "killed"))
    assert whole_meta["progress"] == resumed_meta["progress"]          # same losses and accuracies, every epoch
    assert whole_meta["rng"] == resumed_meta["rng"]
    last_epoch = [[line for line in out.stdout.splitlines() if line.startswith("Epoch  3/3")]
                  for out in (whole, resumed)]
    assert last_epoch[0] and last_epoch[0] == last_epoch[1]


# ---- non-finite loss ----------------------------------------------------------------------------
def test_nan_stops_training_and_the_last_good_checkpoint_stays(small_run, tmp_path, monkeypatch):
    real_loss, calls = train_mod.compute_loss, [0]

    def loss_going_nan(logits, targets, kind, num_classes):
        calls[0] += 1
        loss = real_loss(logits, targets, kind, num_classes)
        # 4 steps and one held-out batch per epoch: the 8th call is epoch 2's 3rd step
        return loss * float("nan") if calls[0] == 8 else loss

    monkeypatch.setattr(train_mod, "compute_loss", loss_going_nan)
    cfg = TrainConfig(**small_run, epochs=3, checkpoint_dir=str(tmp_path))
    with pytest.raises(NonFiniteLoss) as err:
        train(cfg, log=quiet)
    message = str(err.value)
    assert message.startswith("loss is nan at epoch 2, step 3/4: try a smaller --lr")
    assert message.endswith(f"the last good checkpoint stays: {tmp_path / 'epoch0001-step00000004'} (epoch 1, step 4)")
    ck = read_checkpoint(str(tmp_path))
    assert ck.meta["progress"]["epoch"] == 1 and all(np.isfinite(v).all() for v in ck.model_state.values())
