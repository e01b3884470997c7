"""``python train.py``: end to end in a subprocess, reproducibility, flags, and the helpers."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import gt
from lpm.config import ADAPTIVE_LR, check_config, default_lr
from lpm.data import NUM_CLASSES
from lpm.model import PixelTransformer
from lpm.outputs import progress_bar as _progress
from lpm.train import TrainConfig, build_parser, evaluate, get_batch, make_datasets, make_optimizer, parse_args, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small enough to run in a fraction of a second, large enough for plain SGD to learn: with
# smaller images each frame carries less signal and the embedding learns far more slowly.
TINY = ["--img-size", "64", "--samples", "96", "--seq-len", "4", "--embed-dim", "32", "--num-heads", "4",
        "--ff-dim", "64", "--epochs", "8", "--batch-size", "8"]
EPOCH_LINE = re.compile(r"^Epoch +(\d+)/(\d+): Loss = (\d+\.\d{4}), Acc = (\d+\.\d\d)%, "
                        r"Held-out Acc = (\d+\.\d\d)%$")


def run_train(*args, timeout=120):
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


# ``python train.py ARGS`` for several argument lists that each stop before any work (--help, bad
# flags), run one after the other in one process (a process each cost a second of start-up):
# the exit status, stdout and stderr of each, as the interpreter would give them.
_RUNS_IN_ONE_PROCESS = r"""
import contextlib, io, json, runpy, sys, traceback
results = []
for args in json.loads(sys.argv[1]):
    sys.argv = ["train.py", *args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path("train.py", run_name="__main__")
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
            if not isinstance(stop.code, (int, type(None))):
                print(stop.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def run_train_each(arg_lists):
    """``{tuple(args): (returncode, stdout, stderr)}`` of ``python train.py *args`` for each list."""
    done = subprocess.run([sys.executable, "-c", _RUNS_IN_ONE_PROCESS, json.dumps(arg_lists)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {tuple(args): tuple(result) for args, result in zip(arg_lists, json.loads(done.stdout))}


def epoch_losses(stdout):
    return [float(m.group(3)) for m in map(EPOCH_LINE.match, stdout.splitlines()) if m]


# ---- end to end -------------------------------------------------------------------------------
@pytest.mark.commands
def test_tiny_run_end_to_end_loss_goes_down():
    done = run_train(*TINY, "--lr", "0.3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    epochs = [m for m in map(EPOCH_LINE.match, lines) if m]
    assert [int(m.group(1)) for m in epochs] == list(range(1, 9))
    assert all(int(m.group(2)) == 8 for m in epochs)
    losses = epoch_losses(done.stdout)
    assert losses[-1] < 0.75 * losses[0]
    assert all(0 <= float(m.group(4)) <= 100 and 0 <= float(m.group(5)) <= 100 for m in epochs)
    assert re.match(r"^Devices: \d+ device\(s\) \((cpu(, virtual)?|cuda:0)\), engine (numpy|torch)", lines[0])
    assert lines[1].startswith("Data: 77 training + 19 held-out sequences of 4 64x64 images")
    assert re.match(r"^Done in \d+\.\d s \(setup \d+\.\d s, training \d+\.\d s, \d+\.\d samples/s\), "
                    r"[\d,]+ parameters\. "
                    r"Held-out accuracy: \d+\.\d\d% on 19 sequences$", lines[-1])
    assert "\r" not in done.stdout   # no progress bar when stdout is not a terminal


def test_same_seed_same_losses_bit_for_bit():
    cfg = dict(img_size=16, samples=48, seq_len=3, embed_dim=16, num_heads=2, ff_dim=32, epochs=3,
               batch_size=8, progress=False)
    a = train(TrainConfig(seed=3, **cfg), log=lambda line: None)
    b = train(TrainConfig(seed=3, **cfg), log=lambda line: None)
    c = train(TrainConfig(seed=4, **cfg), log=lambda line: None)
    assert a["losses"] == b["losses"] and a["eval_accs"] == b["eval_accs"]
    for (name, p), (_, q) in zip(a["model"].named_parameters(), b["model"].named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
    assert a["losses"] != c["losses"]


@pytest.mark.first_pass
def test_same_seed_same_output_from_the_script():
    args = TINY + ["--epochs", "2", "--seed", "7"]
    first, second = run_train(*args), run_train(*args)
    assert first.returncode == second.returncode == 0
    assert epoch_losses(first.stdout) == epoch_losses(second.stdout) != []


@pytest.mark.commands
def test_seed_workload_runs():
    # The seed project's exact command: 20 sequences of 200x200 images, batch 2, MSE loss.
    done = run_train("--samples", "20", "--epochs", "5", "--batch-size", "2", "--loss", "mse")
    assert done.returncode == 0, done.stderr
    losses = epoch_losses(done.stdout)
    assert len(losses) == 5 and losses[-1] < losses[0]
    assert "16 training + 4 held-out sequences of 8 200x200 images" in done.stdout


@pytest.mark.parametrize("extra", [["--optimizer", "adam", "--lr", "0.001"], ["--optimizer", "adamw"],
                                   ["--momentum", "0.9", "--lr", "0.01", "--weight-decay", "0.01"],
                                   ["--pos-encoding", "learned", "--num-layers", "2", "--loss", "mse"]])
def test_other_options_train(extra):
    cfg = parse_args(TINY + ["--epochs", "3"] + extra)
    result = train(cfg, log=lambda line: None)
    assert len(result["losses"]) == 3 and all(np.isfinite(result["losses"]))
    assert result["losses"][-1] < result["losses"][0]


@pytest.mark.first_pass
def test_help_documents_every_flag(stops_before_work):
    returncode, stdout, _ = stops_before_work[("--help",)]
    assert returncode == 0
    for flag in ("--epochs", "--batch-size", "--lr", "--optimizer", "--momentum", "--loss", "--samples",
                 "--seq-len", "--img-size", "--embed-dim", "--num-heads", "--num-layers", "--ff-dim",
                 "--pos-encoding", "--seed", "--eval-split", "--weight-decay", "--noise"):
        assert flag in stdout, flag


# ---- bad input ----------------------------------------------------------------------------------
INVALID_FLAGS = [
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--samples", "-5"], "--samples must be >= 2, got -5"),
    (["--img-size", "-200"], "--img-size must be >= 4"),
    (["--embed-dim", "-8"], "--embed-dim must be >= 1"),
    (["--seq-len", "0"], "--seq-len must be >= 1"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--num-layers", "-1"], "--num-layers must be >= 0"),
    (["--ff-dim", "0"], "--ff-dim must be >= 1"),
    (["--embed-dim", "30", "--num-heads", "4"], "--embed-dim (30) must be divisible by --num-heads (4)"),
    (["--eval-split", "0"], "--eval-split must be in (0, 1)"),
    (["--eval-split", "1.5"], "--eval-split must be in (0, 1)"),
    (["--lr", "-0.1"], "--lr must be a positive number"),
    (["--momentum", "1.5"], "--momentum must be in [0, 1)"),
    (["--noise", "2"], "--noise must be in [0, 1)"),
    (["--optimizer", "rmsprop"], "invalid choice"),
    (["--loss", "l1"], "invalid choice"),
    (["--epochs", "ten"], "invalid int value"),
]


@pytest.fixture(scope="module")
def stops_before_work():
    """The runs of ``train.py`` above and below that stop before any work, all in one process."""
    return run_train_each([["--help"]] + [args for args, _ in INVALID_FLAGS])


@pytest.mark.parametrize("args, message", INVALID_FLAGS)
@pytest.mark.first_pass
def test_invalid_flags_exit_2_with_one_line(stops_before_work, args, message):
    returncode, stdout, stderr = stops_before_work[tuple(args)]
    assert returncode == 2
    assert stdout == ""
    err = stderr.strip().splitlines()
    assert len(err) == 1, stderr
    assert err[0].startswith("train.py: error: ") and message in err[0]
    assert "Traceback" not in stderr


@pytest.mark.first_pass
def test_non_finite_loss_stops_with_the_step():
    done = run_train(*TINY, "--lr", "1e30", "--epochs", "2")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert re.match(r"^train\.py: stopped: loss is (nan|inf|-inf) at epoch 1, step \d+/10: ", last), last


def test_check_config_lists_every_problem():
    problems = check_config(TrainConfig(batch_size=0, samples=1, eval_split=1.0))
    assert problems == ["--samples must be >= 2, got 1", "--batch-size must be >= 1, got 0",
                        "--eval-split must be in (0, 1), got 1.0"]
    assert check_config(TrainConfig()) == []
    assert build_parser().parse_args([]).batch_size == TrainConfig().batch_size


# ---- helpers ------------------------------------------------------------------------------------
def test_datasets_are_centred_and_split():
    cfg = TrainConfig(img_size=16, samples=40, seq_len=3, eval_split=0.25)
    (xt, yt), (xe, ye) = make_datasets(cfg)
    assert xt.shape == (30, 3, 16, 16) and xe.shape == (10, 3, 16, 16)
    assert xt.dtype == xe.dtype == np.float32 and yt.dtype == np.int64
    assert abs(float(xt.mean(dtype=np.float64))) < 1e-5     # centred by the training mean


def test_get_batch_and_evaluate():
    x = np.random.default_rng(0).random((10, 3, 8, 8), dtype=np.float32)
    y = np.arange(10) % NUM_CLASSES
    xb, yb = get_batch(x, y, np.array([2, 5]))
    assert xb.shape == (2, 3, 8, 8) and xb.dtype == gt.float32 and yb.tolist() == [2, 1]
    np.testing.assert_array_equal(xb.numpy(), x[[2, 5]])
    gt.manual_seed(0)
    model = PixelTransformer(img_size=8, embed_dim=16, num_heads=2, num_layers=1, ff_dim=16,
                             num_classes=NUM_CLASSES)
    loss, acc = evaluate(model, x, y, batch_size=4)
    logits = model(x)
    assert acc == pytest.approx(float((logits.argmax(axis=-1).numpy() == y).mean()))
    assert loss == pytest.approx(gt.nn.functional.cross_entropy(logits, gt.tensor(y)).item(), rel=1e-5)
    assert model.training   # evaluate restores the mode


def test_optimizer_groups_and_default_lr():
    gt.manual_seed(0)
    model = PixelTransformer(img_size=8, embed_dim=16, num_heads=2, num_layers=1, ff_dim=16, num_classes=4)
    plain = make_optimizer(model, TrainConfig())
    assert type(plain).__name__ == "SGD" and len(plain.param_groups) == 1
    assert plain.param_groups[0]["lr"] == 0.1 and plain.param_groups[0]["momentum"] == 0.0
    decayed = make_optimizer(model, TrainConfig(weight_decay=0.1, optimizer="adamw"))
    matrices, vectors = decayed.param_groups
    assert matrices["weight_decay"] == 0.1 and vectors["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in matrices["params"]) and all(p.ndim < 2 for p in vectors["params"])
    assert len(matrices["params"]) + len(vectors["params"]) == len(list(model.parameters()))
    assert default_lr("sgd", 2) == 0.0125 and default_lr("adam", 64) == default_lr("adamw", 2) == ADAPTIVE_LR


def test_progress_bar_only_on_a_terminal(monkeypatch):
    class FakeStdout:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr(sys, "stdout", FakeStdout(False))
    assert _progress(5, "epoch 1", enabled=True) is None
    monkeypatch.setattr(sys, "stdout", FakeStdout(True))
    assert _progress(5, "epoch 1", enabled=False) is None
    if importlib.util.find_spec("tqdm") is not None:
        bar = _progress(5, "epoch 1", enabled=True)
        assert bar is not None and bar.total == 5
        bar.close()
    monkeypatch.setitem(sys.modules, "tqdm", None)          # tqdm not installed: no bar, no error
    assert _progress(5, "epoch 1", enabled=True) is None
