"""Training runs at their edges: a checkpoint folder full of the user's files, output folders that
cannot be written, diverging runs, Ctrl-C, and resuming (paths spelled differently, a damaged
latest checkpoint, a full disk). Each ends with a clear message on stderr (a few lines, no
traceback), the documented exit status, and every file of the user's still there."""

import errno
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

import lpm.checkpoint as ckpt_mod
import lpm.outputs as outputs_mod
import lpm.train as train_mod
from lpm.checkpoint import MARKER, find_checkpoint, read_checkpoint, save_checkpoint
from lpm.data import make_moving_blobs
from lpm.outputs import writable_problem
from lpm.train import NonFiniteLoss, TrainConfig, TrainingInterrupted, main, resume_command, train

pytestmark = pytest.mark.skipif(importlib.util.find_spec("safetensors") is None,
                                reason="safetensors is not installed (a dependency: pip install -e .)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--img-size", "8", "--samples", "40", "--seq-len", "3", "--embed-dim", "8", "--num-heads", "2",
        "--ff-dim", "16", "--batch-size", "8", "--no-progress"]
# One step per epoch (16 training sequences): at --lr 1e30 that step's loss is finite, the weights
# it leaves are not, so the held-out loss is the first to show it.
ONE_STEP = ["--img-size", "8", "--samples", "20", "--seq-len", "3", "--embed-dim", "8", "--num-heads", "2",
            "--ff-dim", "16", "--batch-size", "16", "--epochs", "3", "--no-progress"]
# Behaviour of the command line itself, which neither the engine nor sharding changes: the
# subprocess tests run in the plain pass of the suite only (tests/conftest.py).
cli_only = pytest.mark.first_pass


def quiet(*args):
    pass


def run_train(*args, cwd=ROOT, timeout=120):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def assert_clean(err, lines):
    """stderr: at most ``lines`` lines, no traceback, no warning."""
    assert "Traceback" not in err and "Warning" not in err, err
    assert 1 <= len(err.strip().splitlines()) <= lines, err


def user_files(root):
    """A folder as a user may hold it, with names close to a checkpoint folder's: ``{path: bytes}``."""
    files = {"epoch2024-step1/photo.txt": b"a photo", ".tmp-mycache/blob": b"cache", "notes.json.tmp-1": b"{}",
             "latest.json.tmp-x": b"mine", "epoch0001-step00000004/model.safetensors": b"not a checkpoint",
             ".tmp-epoch0001-step00000004-1-abcdef12/keep.txt": b"mine too", "report.txt": b"text"}
    for name, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(root, "epoch0009-step00000001"), exist_ok=True)     # an empty folder of theirs
    return files


def assert_files_kept(root, files):
    for name, data in files.items():
        with open(os.path.join(root, name), "rb") as f:
            assert f.read() == data, name
    assert os.path.isdir(os.path.join(root, "epoch0009-step00000001"))


@pytest.fixture
def as_cli(monkeypatch):
    """``main`` in this process as the command runs it: GT_AUTO_SHARD restored afterwards, and
    Python's own Ctrl-C handler in place (a test run started in the background ignores SIGINT)."""
    monkeypatch.setenv("GT_AUTO_SHARD", os.environ.get("GT_AUTO_SHARD", "1"))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def exit_status(argv):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    return stop.value.code


# ---- 1. the checkpoint folder removes only what it wrote -------------------------------------------
def test_saving_removes_only_the_checkpoints_it_wrote(small_model, tmp_path):
    files = user_files(tmp_path)
    model = small_model()
    opt = train_mod.gt.optim.SGD(model.parameters(), lr=0.1)
    first = save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 1, "step": 4}})
    assert os.path.basename(first) == "epoch0001-step00000004-1"      # the user's folder of that name stays
    # a checkpoint of this project's in which the user put a file of their own: kept whole
    (tmp_path / "epoch0001-step00000004-1" / "my-notes.txt").write_text("notes")
    # leftovers of an interrupted save, which carry the marker: removed
    leftover = tmp_path / ".tmp-epoch0002-step00000008-77-0123abcd"
    leftover.mkdir()
    (leftover / MARKER).write_text(json.dumps({"format": "lpm-checkpoint", "folder": "epoch0002-step00000008"}))
    (leftover / "model.safetensors").write_bytes(b"partial")
    (tmp_path / "latest.json.tmp-77").write_text(json.dumps({"checkpoint": "epoch0002-step00000008"}))
    second = save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 2, "step": 8}}, best=True)
    third = save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 3, "step": 12}})
    assert_files_kept(tmp_path, files)
    assert (tmp_path / "epoch0001-step00000004-1" / "my-notes.txt").read_text() == "notes"
    assert not leftover.exists() and not (tmp_path / "latest.json.tmp-77").exists()
    assert find_checkpoint(str(tmp_path)) == third and find_checkpoint(str(tmp_path), "best") == second
    third_save = save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 4, "step": 16}})
    assert not os.path.exists(third) and os.path.isdir(second) and os.path.isdir(third_save)   # its own, unnamed: gone
    assert sorted(os.listdir(third_save)) == sorted([MARKER, "checkpoint.json", "model.safetensors",
                                                     "optimizer.safetensors"])


def test_checkpoints_written_before_the_marker_are_read_and_never_removed(small_model, tmp_path):
    model = small_model()
    opt = train_mod.gt.optim.SGD(model.parameters(), lr=0.1)
    old = save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 1, "step": 4}})
    os.remove(os.path.join(old, MARKER))              # as the earlier format wrote it
    ck = read_checkpoint(str(tmp_path))
    assert ck.path == old and ck.meta["progress"]["step"] == 4
    save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 2, "step": 8}})
    assert os.path.isdir(old) and len(os.listdir(old)) == 3     # no pointer names it, but it may not be ours


def test_a_pointer_file_that_is_not_ours_is_not_replaced(tmp_path, as_cli, capsys):
    (tmp_path / "best.json").write_text("my best photos")
    assert exit_status([*TINY, "--epochs", "1", "--checkpoint-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert_clean(err, 1)
    assert "best.json is not a valid checkpoint pointer" in err and "not replacing it" in err
    assert (tmp_path / "best.json").read_text() == "my best photos" and os.listdir(tmp_path) == ["best.json"]


def test_a_run_in_a_folder_full_of_the_users_files_leaves_every_one(tmp_path, as_cli, capsys):
    files = user_files(tmp_path)
    main([*TINY, "--epochs", "3", "--save-every", "1", "--checkpoint-dir", str(tmp_path)])
    assert "Checkpoints: " in capsys.readouterr().out
    assert_files_kept(tmp_path, files)
    assert read_checkpoint(str(tmp_path)).meta["progress"]["epoch"] == 3


# ---- 2. output folders are checked before any work -------------------------------------------------
def no_data_loading(monkeypatch):
    monkeypatch.setattr(train_mod, "load_data", lambda *a, **k: pytest.fail("the data was loaded"))


@cli_only
@pytest.mark.parametrize("flag", ["--checkpoint-dir", "--plot"])
def test_an_output_under_a_regular_file_exits_2_before_training(tmp_path, flag):
    (tmp_path / "notes.txt").write_text("keep me")
    done = run_train(*TINY, flag, str(tmp_path / "notes.txt" / "run"))
    assert done.returncode == 2 and done.stdout == ""        # not even the "Devices:" line
    assert_clean(done.stderr, 1)
    assert done.stderr.startswith(f"train.py: error: {flag} {tmp_path / 'notes.txt' / 'run'}: ")
    assert f"{tmp_path / 'notes.txt'} is a file, not a folder" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes in any folder whatever its permissions")
def test_a_folder_without_write_permission_exits_2(tmp_path, monkeypatch, as_cli, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "photo.txt").write_text("keep me")
    locked.chmod(0o500)
    try:
        no_data_loading(monkeypatch)
        assert exit_status([*TINY, "--checkpoint-dir", str(locked / "run")]) == 2
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err
    assert_clean(err, 1)
    assert f"--checkpoint-dir {locked / 'run'}: cannot write in {locked} (Permission denied)" in err
    assert (locked / "photo.txt").read_text() == "keep me" and os.listdir(locked) == ["photo.txt"]


@pytest.mark.skipif(not os.path.isdir("/sys") or writable_problem("/sys") is None,
                    reason="needs a folder this user cannot write whatever the permissions (/sys on Linux)")
def test_a_folder_even_root_cannot_write_exits_2(monkeypatch, as_cli, capsys):
    no_data_loading(monkeypatch)
    assert exit_status([*TINY, "--plot", "/sys/lpm-plots"]) == 2
    err = capsys.readouterr().err
    assert_clean(err, 1)
    assert re.match(r"^train\.py: error: --plot /sys/lpm-plots: cannot write in /sys \(.+\)$", err.strip())


def test_a_read_only_file_system_is_named(small_run, tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(outputs_mod.tempfile, "mkstemp", read_only)
    assert writable_problem(str(tmp_path / "a" / "b")) == f"cannot write in {tmp_path} ({os.strerror(errno.EROFS)})"
    with pytest.raises(outputs_mod.OutputError, match=r"^--checkpoint-dir .*: cannot write in .*Read-only"):
        train(TrainConfig(**small_run, checkpoint_dir=str(tmp_path / "run")), log=quiet)
    assert os.listdir(tmp_path) == []


def test_writable_folders_pass_and_leave_nothing_behind(tmp_path):
    (tmp_path / "photo.txt").write_text("x")
    assert writable_problem(str(tmp_path)) is None and writable_problem(str(tmp_path / "new" / "deeper")) is None
    assert os.listdir(tmp_path) == ["photo.txt"]
    os.symlink(tmp_path / "gone", tmp_path / "link")
    assert writable_problem(str(tmp_path / "link" / "run")) == f"{tmp_path / 'link'} is a broken link"


# ---- 3. a diverging run ------------------------------------------------------------------------------
def no_nan_in_any_checkpoint(root):
    for folder in os.listdir(root):
        meta = os.path.join(root, folder, "checkpoint.json")
        if os.path.isfile(meta):
            text = open(meta).read()
            assert "NaN" not in text and "Infinity" not in text


@cli_only
@pytest.mark.parametrize("lr", ["1e30", "1e308"])
@pytest.mark.parametrize("with_checkpoints", [False, True])
def test_a_diverging_run_stops_with_one_line(tmp_path, lr, with_checkpoints):
    (tmp_path / "photo.txt").write_text("keep me")
    extra = ["--checkpoint-dir", str(tmp_path / "run")] if with_checkpoints else []
    done = run_train(*ONE_STEP, "--lr", lr, *extra)
    assert done.returncode == 1
    assert_clean(done.stderr, 1)
    ending = "; no checkpoint was saved yet$" if extra else "$"
    assert re.match(r"^train\.py: stopped: held-out loss is (nan|inf) at the end of epoch 1 \(step 1\): try a "
                    rf"smaller --lr \(now {re.escape(f'{float(lr):g}')}\)" + ending, done.stderr.strip()), done.stderr
    assert "Epoch " not in done.stdout       # no accuracy line computed from NaN logits
    assert (tmp_path / "photo.txt").read_text() == "keep me"
    if with_checkpoints:
        assert not (tmp_path / "run").exists() or find_checkpoint(str(tmp_path / "run")) is None


@cli_only
def test_a_run_diverging_after_a_checkpoint_keeps_it(tmp_path):
    done = run_train(*TINY, "--epochs", "3", "--lr", "1e30", "--save-every", "1",
                     "--checkpoint-dir", str(tmp_path))
    assert done.returncode == 1
    assert_clean(done.stderr, 1)
    ck = read_checkpoint(str(tmp_path))
    assert done.stderr.strip().endswith(f"the last good checkpoint stays: {ck.path} "
                                        f"(epoch {ck.meta['progress']['epoch']}, step {ck.meta['progress']['step']})")
    assert re.match(r"^train\.py: stopped: (loss is (nan|inf)|the weights are no longer finite) at epoch 1, "
                    r"step \d/4: try a smaller --lr \(now 1e\+30\)", done.stderr)
    assert all(np.isfinite(v).all() for v in ck.model_state.values())
    no_nan_in_any_checkpoint(tmp_path)


@pytest.mark.parametrize("lr", [1e30, 1e308])
def test_divergence_is_caught_without_numpy_warnings(small_run, tmp_path, lr):
    cfg = TrainConfig(**{**small_run, "samples": 20, "batch_size": 16}, epochs=3, lr=lr,
                      checkpoint_dir=str(tmp_path / "run"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(NonFiniteLoss, match=rf"^held-out loss is (nan|inf) at the end of epoch 1 \(step 1\): try "
                                                rf"a smaller --lr \(now {re.escape(f'{lr:g}')}\); no checkpoint was "
                                                rf"saved yet$"):
            train(cfg, log=quiet)
    assert [str(w.message) for w in caught] == []
    assert not (tmp_path / "run").exists() or os.listdir(tmp_path / "run") == []


def test_a_checkpoint_with_non_finite_values_is_never_written(small_model, tmp_path):
    model = small_model()
    opt = train_mod.gt.optim.SGD(model.parameters(), lr=0.1)
    good = save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 1, "step": 4}})
    with pytest.raises(ckpt_mod.CheckpointError, match="NaN or infinite numbers in its metadata"):
        save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 2, "step": 8},
                                               "metrics": {"eval_loss": float("nan")}})
    state = model.state_dict()
    state["head.bias"] = np.full_like(state["head.bias"], np.inf)
    model.load_state_dict(state)
    with pytest.raises(ckpt_mod.CheckpointError, match=r"non-finite values \(in head\.bias\)"):
        save_checkpoint(tmp_path, model, opt, {"progress": {"epoch": 2, "step": 8}})
    assert find_checkpoint(str(tmp_path)) == good and sorted(os.listdir(tmp_path)) == ["epoch0001-step00000004",
                                                                                     "latest.json"]


# ---- 4. Ctrl-C ---------------------------------------------------------------------------------------
def start_train(args, cwd):
    """train.py in a child whose SIGINT is Python's default (this test run may ignore it) and whose
    stdout is unbuffered, so each epoch line arrives as it is printed."""
    return subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def interrupt_after(proc, pattern):
    """SIGINT ``proc`` once a line of its stdout matches ``pattern``; (returncode, stdout, stderr)."""
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if re.match(pattern, line):
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, "".join(seen) + out, err


@cli_only
@pytest.mark.parametrize("command, unbuffered", [(["train.py"], "1"), (["train.py"], None),
                                                 (["-m", "lpm.cli", "train"], None)],
                         ids=["train.py-unbuffered", "train.py-buffered", "lpm-train-buffered"])
def test_a_reader_that_goes_away_stops_the_run_without_a_traceback(command, unbuffered):
    """``python train.py | head``: once the reader has gone, the next write of stdout fails; the
    run stops with status 1 and says nothing (no traceback, no "Exception ignored" at exit).
    Unbuffered, the first line meets the closed pipe; buffered, the flush at the end does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    proc = subprocess.Popen([sys.executable, *command, *TINY, "--epochs", "1"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()   # the reader is gone before the first line
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 1
    assert stderr == ""


@cli_only
def test_lpm_evaluate_stops_quietly_too_when_its_reader_goes_away(tmp_path):
    trained = subprocess.run([sys.executable, "train.py", *TINY, "--epochs", "1", "--checkpoint-dir",
                              str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert trained.returncode == 0, trained.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen([sys.executable, "-m", "lpm.cli", "evaluate", "--checkpoint", str(tmp_path)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 1
    assert stderr == ""


@cli_only
def test_ctrl_c_stops_cleanly_and_prints_the_resume_command_that_works(tmp_path):
    (tmp_path / "photo.txt").write_text("keep me")
    args = [os.path.join(ROOT, "train.py"), *TINY, "--epochs", "100000", "--checkpoint-dir", "my run"]
    code, out, err = interrupt_after(start_train(args, tmp_path), r"^Epoch +1/")
    assert code == 130
    assert_clean(err, 2)
    first, second = err.strip().splitlines()
    stopped = re.match(r"^train\.py: interrupted (?:after epoch (\d+)/100000|in epoch (\d+)/100000 after step \d/4) "
                       r"\(step (\d+) in all\); checkpoint: my run/epoch\d{4}-step(\d{8})$", first)
    assert stopped, first
    assert int(stopped.group(3)) == int(stopped.group(4))            # saved where it stopped
    assert second == "train.py: to continue: " + shlex.join(["python", *args, "--resume"])
    assert read_checkpoint(str(tmp_path / "my run")).meta["progress"]["step"] == int(stopped.group(3))

    command = shlex.split(second.split(": ", 2)[2])
    assert command[0] == "python"
    code, out, err = interrupt_after(start_train(command[1:], tmp_path), r"^Epoch +\d+/")
    assert code == 130, err
    assert_clean(err, 2)
    resumed = re.search(r"^Resumed from my run/epoch\d{4}-step\d{8}: epoch \d+/100000 done.*, step (\d+)$", out, re.M)
    assert resumed and int(resumed.group(1)) == int(stopped.group(3)), out
    assert re.search(r"^train\.py: interrupted .*\(step (\d+) in all\)", err).group(1) != stopped.group(3)
    assert (tmp_path / "photo.txt").read_text() == "keep me"


def sigint_at_steps(monkeypatch, *steps):
    """SIGINT this process inside the optimizer steps numbered ``steps`` (as Ctrl-C would; a number
    given twice: twice in that step)."""
    real_step, calls = train_mod.gt.optim.Adam.step, [0]

    def step(self, *args, **kwargs):
        calls[0] += 1
        for _ in range(steps.count(calls[0])):
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(train_mod.gt.optim.Adam, "step", step)


def test_ctrl_c_finishes_the_step_saves_it_and_resuming_equals_an_uninterrupted_run(small_run, tmp_path, monkeypatch, as_cli):
    cfg = TrainConfig(**small_run, epochs=3, optimizer="adam", lr=0.01)
    whole = train(cfg, log=quiet)
    sigint_at_steps(monkeypatch, 6)                # epoch 2, its 2nd step
    stopped = TrainConfig(**small_run, epochs=3, optimizer="adam", lr=0.01, checkpoint_dir=str(tmp_path))
    with pytest.raises(TrainingInterrupted) as info:
        train(stopped, log=quiet)
    path = str(tmp_path / "epoch0001-step00000006")
    assert str(info.value) == f"interrupted in epoch 2/3 after step 2/4 (step 6 in all); checkpoint: {path}"
    assert info.value.checkpoint == path and isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler      # the handler is put back
    monkeypatch.undo()
    lines = []
    resumed = train(TrainConfig(**{**stopped.__dict__, "resume": True}), log=lines.append)
    assert any(line.startswith(f"Resumed from {path}: epoch 1/3 done, 2 step(s) into epoch 2") for line in lines)
    assert resumed["losses"] == whole["losses"] and resumed["eval_accs"] == whole["eval_accs"]
    for (name, p), (_, q) in zip(whole["model"].named_parameters(), resumed["model"].named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(small_run, tmp_path, monkeypatch, as_cli):
    sigint_at_steps(monkeypatch, 6, 6)             # the second arrives inside the step the first lets finish
    cfg = TrainConfig(**small_run, epochs=3, optimizer="adam", lr=0.01, checkpoint_dir=str(tmp_path))
    with pytest.raises(TrainingInterrupted) as info:
        train(cfg, log=quiet)
    assert str(info.value) == ("interrupted in epoch 2/3 after step 1/4 (step 5 in all); the last good checkpoint "
                               f"stays: {tmp_path / 'epoch0001-step00000004'} (epoch 1, step 4)")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert read_checkpoint(str(tmp_path)).meta["progress"]["step"] == 4


def test_ctrl_c_without_a_checkpoint_folder_exits_130(monkeypatch, as_cli, capsys):
    sigint_at_steps(monkeypatch, 2)
    assert exit_status([*TINY, "--epochs", "3", "--optimizer", "adam"]) == 130
    err = capsys.readouterr().err
    assert_clean(err, 1)
    assert err == "train.py: interrupted in epoch 1/3 after step 2/4 (step 2 in all); nothing was saved " \
                  "(no --checkpoint-dir)\n"


def test_ctrl_c_while_the_data_loads_exits_130(monkeypatch, as_cli, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "load_data", interrupted)
    assert exit_status([*TINY]) == 130
    assert capsys.readouterr().err == "train.py: interrupted\n"


def test_the_resume_command_keeps_every_option_as_typed():
    assert resume_command(["--data", "my clips/", "--checkpoint-dir=runs/a"], "lpm train") == \
        "lpm train --data 'my clips/' --checkpoint-dir=runs/a --resume"
    assert resume_command(["--checkpoint-dir", "r", "--resume"], "lpm train") == "lpm train --checkpoint-dir r --resume"


# ---- 5. resume details ---------------------------------------------------------------------------
def test_data_paths_spelled_differently_are_the_same_data(small_run, tmp_path, monkeypatch):
    images, labels = make_moving_blobs(24, seq_len=3, img_size=8, seed=0)
    (tmp_path / "clips").mkdir()
    np.savez(tmp_path / "clips" / "data.npz", images=images, labels=labels)
    monkeypatch.chdir(tmp_path)
    cfg = dict(small_run, samples=24, data="clips/data.npz", checkpoint_dir="run")
    train(TrainConfig(**cfg, epochs=1), log=quiet)
    lines = []
    train(TrainConfig(**{**cfg, "data": "./clips/../clips/data.npz"}, epochs=2, resume=True), log=lines.append)
    assert any(line.startswith("Resumed from run/epoch0001") for line in lines)
    os.symlink(tmp_path / "clips", tmp_path / "same")     # through a link: the same file
    lines = []
    train(TrainConfig(**{**cfg, "data": str(tmp_path / "same" / "data.npz")}, epochs=3, resume=True), log=lines.append)
    assert any(line.startswith("Resumed from run/epoch0002") for line in lines)
    shutil.copy(tmp_path / "clips" / "data.npz", tmp_path / "copy.npz")
    with pytest.raises(ckpt_mod.CheckpointError,
                       match=r"--data: '\S+/same/data\.npz' in the checkpoint, 'copy\.npz' now"):
        train(TrainConfig(**{**cfg, "data": "copy.npz"}, epochs=4, resume=True), log=quiet)


def test_a_folder_given_with_a_trailing_slash_resumes(small_run, tmp_path, monkeypatch):
    images, labels = make_moving_blobs(24, seq_len=3, img_size=8, seed=0)
    for i, (seq, label) in enumerate(zip(images, labels)):
        os.makedirs(tmp_path / "seqs" / f"class{label}", exist_ok=True)
        np.save(tmp_path / "seqs" / f"class{label}" / f"s{i}.npy", seq)
    monkeypatch.chdir(tmp_path)
    cfg = dict(small_run, samples=24, checkpoint_dir="run")
    train(TrainConfig(**cfg, data="seqs", epochs=1), log=quiet)
    lines = []
    train(TrainConfig(**cfg, data="./seqs/", epochs=2, resume=True), log=lines.append)
    assert any(line.startswith("Resumed from run/epoch0001") for line in lines)


def damage(folder):
    weights = os.path.join(folder, "model.safetensors")
    data = bytearray(open(weights, "rb").read())
    data[-3] ^= 0xFF
    open(weights, "wb").write(bytes(data))


def test_a_damaged_latest_checkpoint_names_the_intact_best_and_how_to_resume(tmp_path, monkeypatch, as_cli, capsys):
    real_evaluate, accuracies = train_mod.evaluate, [0.75, 0.5]    # epoch 1 is the best, epoch 2 the latest

    def evaluate(*args, **kwargs):
        return real_evaluate(*args, **kwargs)[0], accuracies.pop(0) if accuracies else 0.25

    monkeypatch.setattr(train_mod, "evaluate", evaluate)
    run = str(tmp_path / "run")
    args = [*TINY, "--epochs", "2", "--checkpoint-dir", run]
    main(args)
    best, latest = find_checkpoint(run, "best"), find_checkpoint(run)
    assert best != latest and find_checkpoint(run, "previous") == best
    damage(latest)
    capsys.readouterr()
    assert exit_status([*args, "--epochs", "3", "--resume"]) == 1
    err = capsys.readouterr().err
    assert_clean(err, 4)
    lines = err.strip().splitlines()
    assert lines[0] == f"train.py: error: checkpoint {latest} is damaged:"
    assert "model.safetensors: contents do not match the SHA-256" in lines[1]
    assert lines[2] == (f"the previous and best checkpoint {best} (epoch 1, step 4) is intact: resume from it with "
                        f"--resume-from {best}")
    command = resume_command([*args, "--epochs", "3", "--resume"], resume_from=best)
    assert lines[3] == f"train.py: to resume from the previous and best checkpoint: {command}"
    assert command.endswith(f"--epochs 3 --resume-from {best}")
    main([*args, "--epochs", "3", "--resume-from", best])         # as the message says
    out = capsys.readouterr().out
    assert f"Resumed from {best}: epoch 1/3 done, step 4" in out
    assert read_checkpoint(run).meta["progress"]["epoch"] == 3
    assert not os.path.exists(latest)             # the damaged one was ours: removed once nothing names it


def test_a_damaged_only_checkpoint_says_none_is_left(tmp_path, as_cli, capsys):
    args = [*TINY, "--epochs", "1", "--checkpoint-dir", str(tmp_path)]
    main(args)
    damage(find_checkpoint(str(tmp_path)))
    capsys.readouterr()
    assert exit_status([*args, "--resume"]) == 1
    err = capsys.readouterr().err
    assert_clean(err, 3)
    assert err.strip().endswith(f"no other intact checkpoint in {tmp_path}: start a new run (without --resume, "
                                "or in another --checkpoint-dir)")


def test_a_full_disk_stops_with_the_last_checkpoint_and_the_resume_command(tmp_path, monkeypatch, as_cli, capsys):
    (tmp_path / "photo.txt").write_text("keep me")
    real_write, calls = ckpt_mod._write_synced, [0]

    def disk_fills(path, data):
        calls[0] += 1
        if calls[0] > 6:       # the first checkpoint's four files and two pointers fit; nothing more does
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, data)

    monkeypatch.setattr(ckpt_mod, "_write_synced", disk_fills)
    args = [*TINY, "--epochs", "3", "--checkpoint-dir", str(tmp_path)]
    assert exit_status(args) == 1
    err = capsys.readouterr().err
    assert_clean(err, 2)
    first = tmp_path / "epoch0001-step00000004"
    assert err.splitlines() == [
        f"train.py: error: cannot write a checkpoint in {tmp_path} ({os.strerror(errno.ENOSPC)}); the last good "
        f"checkpoint stays: {first} (epoch 1, step 4)",
        f"train.py: to continue once it can be written: {resume_command(args)}"]
    assert sorted(os.listdir(tmp_path)) == ["best.json", "epoch0001-step00000004", "latest.json", "photo.txt"]
    read_checkpoint(str(tmp_path))


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="--plot needs matplotlib")
def test_plots_that_cannot_be_written_at_the_end_keep_the_checkpoint(tmp_path, monkeypatch, as_cli, capsys):
    import lpm.plots

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(lpm.plots, "save_plots", disk_full)
    assert exit_status([*TINY, "--epochs", "1", "--checkpoint-dir", str(tmp_path / "run"),
                        "--plot", str(tmp_path / "plots")]) == 1
    err = capsys.readouterr().err
    assert_clean(err, 1)
    assert err == f"train.py: error: cannot write the plots in {tmp_path / 'plots'} ({os.strerror(errno.ENOSPC)})\n"
    assert read_checkpoint(str(tmp_path / "run")).meta["progress"]["epoch"] == 1


def test_an_lr_beyond_float32_overflows_to_inf_on_every_engine():
    # torch's add_(alpha=1e308) refuses the alpha outright; the engines agree on numpy's answer instead
    p = train_mod.gt.nn.Parameter(train_mod.gt.ones(3))
    (p * 2.0).sum().backward()
    with np.errstate(over="ignore"):
        train_mod.gt.optim.SGD([p], lr=1e308).step()
    assert p.numpy().tolist() == [-np.inf] * 3
