"""The ``lpm`` command (train, evaluate, predict) on a checkpoint trained here, the new train.py
options (--data, --dataset digits, --plot) and their errors."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gt
from lpm import cli
from lpm.checkpoint import read_checkpoint
from lpm.data import make_moving_blobs
from lpm.train import TrainConfig, build_parser, main, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs = {name: pytest.mark.skipif(importlib.util.find_spec(module) is None,
                                  reason=f"{name} is not installed (pip install 'lpm[{extra}]')")
         for name, module, extra in (("matplotlib", "matplotlib", "plot"), ("scikit-learn", "sklearn", "data"),
                                     ("Pillow", "PIL", "data"))}


def quiet(*args):
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small run on an .npz of moving blobs, trained through ``lpm train`` in a subprocess:
    ``(npz path, checkpoint dir, plot dir, stdout)``."""
    if importlib.util.find_spec("safetensors") is None:
        pytest.skip("safetensors is not installed")
    root = tmp_path_factory.mktemp("run")
    images, labels = make_moving_blobs(96, seq_len=4, img_size=16, seed=0)
    npz = root / "blobs.npz"
    np.savez(npz, images=images, labels=labels, class_names=np.array(["right", "left", "down", "up"]))
    args = [sys.executable, "-m", "lpm.cli", "train", "--data", str(npz), "--img-size", "16", "--seq-len", "4",
            "--embed-dim", "16", "--num-heads", "2", "--ff-dim", "32", "--epochs", "4", "--batch-size", "8",
            "--optimizer", "adam", "--lr", "0.01", "--checkpoint-dir", str(root / "ckpt")]
    if importlib.util.find_spec("matplotlib") is not None:
        args += ["--plot", str(root / "plots")]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return npz, root / "ckpt", root / "plots", done.stdout


@pytest.mark.commands
def test_lpm_train_writes_checkpoints_and_plots(trained):
    npz, ckpt, plots, stdout = trained
    assert "Data: 76 training + 20 held-out sequences of 4 16x16 images, 4 classes (labels from" in stdout
    assert "Checkpoints: " in stdout
    meta = read_checkpoint(str(ckpt)).meta
    assert meta["data"]["class_names"] == ["right", "left", "down", "up"] and meta["progress"]["epoch"] == 4
    if importlib.util.find_spec("matplotlib") is not None:
        for name in ("curves.png", "attention.png"):
            assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.commands
def test_lpm_evaluate_reproduces_the_held_out_accuracy(trained, capsys, tmp_path):
    npz, ckpt, _, _ = trained
    assert cli.main(["evaluate", "--checkpoint", str(ckpt)]) == 0
    out = capsys.readouterr().out
    recorded = read_checkpoint(str(ckpt)).meta["metrics"]["eval_acc"]
    assert f"Accuracy: {100 * recorded:.2f}% (" in out and "Data: 20 held-out sequences" in out
    lines = out.splitlines()
    matrix = lines[lines.index("Confusion matrix (rows: true class, columns: predicted class):") + 1:]
    assert matrix[0].split()[:4] == ["right", "left", "down", "up"] and len(matrix) == 5
    assert sum(int(v) for row in matrix[1:] for v in row.split()[1:]) == 20
    assert cli.main(["evaluate", "--checkpoint", str(ckpt), "--best", "--data", str(npz), "--all"]) == 0
    out = capsys.readouterr().out
    assert "Data: all 96 sequences" in out
    # a test set whose classes come in another order (or a subset): matched to the model's by name
    with np.load(npz) as f:
        images, labels = f["images"], f["labels"]
    keep = labels != 0
    np.savez(tmp_path / "reordered.npz", images=images[keep], labels=3 - labels[keep],
             class_names=np.array(["up", "down", "left"]))
    assert cli.main(["evaluate", "--checkpoint", str(ckpt), "--best", "--data", str(tmp_path / "reordered.npz"),
                     "--all"]) == 0
    reordered = capsys.readouterr().out
    def matrix_rows(text):
        return {line.split()[0]: line.split()[1:] for line in text.splitlines()
                if line.split()[:1] in (["left"], ["down"], ["up"])}

    assert matrix_rows(out) == matrix_rows(reordered)                  # the same counts, in the model's order
    assert reordered.splitlines()[4].split()[:4] == ["right", "left", "down", "up"]
    np.savez(tmp_path / "alien.npz", images=images[:4], labels=np.array([0, 1, 0, 1]),
             class_names=np.array(["up", "sideways"]))
    assert cli.main(["evaluate", "--checkpoint", str(ckpt), "--data", str(tmp_path / "alien.npz"), "--all"]) == 1
    assert "classes the model was not trained on: sideways" in capsys.readouterr().err


@needs["Pillow"]   # the inputs are 32x32 frames: resized with Pillow
@pytest.mark.commands
def test_lpm_predict_gives_probabilities_per_sequence(trained, capsys, tmp_path):
    npz, ckpt, _, _ = trained
    images, _ = make_moving_blobs(3, seq_len=6, img_size=32, seed=5)     # other sizes: resized and cut
    np.save(tmp_path / "a.npy", images[0])
    np.savez(tmp_path / "more.npz", images=images[1:])
    from PIL import Image

    (tmp_path / "frames").mkdir()
    for t, frame in enumerate(images[0]):
        Image.fromarray((frame * 255).astype(np.uint8)).save(tmp_path / "frames" / f"{t}.png")
    inputs = [str(tmp_path / "a.npy"), str(tmp_path / "more.npz"), str(tmp_path / "frames")]
    assert cli.main(["predict", "--checkpoint", str(ckpt), "--json", *inputs]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in rows] == [inputs[0], inputs[1] + "[0]", inputs[1] + "[1]", inputs[2]]
    for r in rows:
        assert set(r["probabilities"]) == {"right", "left", "down", "up"}
        assert sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert r["prediction"] == max(r["probabilities"], key=r["probabilities"].get)
    for name in ("right", "left", "down", "up"):       # the PNG frames (8-bit) give nearly the .npy's
        assert rows[3]["probabilities"][name] == pytest.approx(rows[0]["probabilities"][name], abs=0.05)
    assert cli.main(["predict", "--checkpoint", str(ckpt), "--top", "2", inputs[0]]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(inputs[0] + ": ") and line.count("%") == 2


@pytest.mark.commands
def test_lpm_command_errors(trained, capsys, tmp_path):
    _, ckpt, _, _ = trained
    assert cli.main([]) == 2 and "usage: lpm" in capsys.readouterr().out
    assert cli.main(["fly"]) == 2 and "unknown command 'fly'" in capsys.readouterr().err
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    assert cli.main(["predict", "--checkpoint", str(tmp_path), str(tmp_path / "bad.npy")]) == 1
    assert "no checkpoint in" in capsys.readouterr().err
    assert cli.main(["predict", "--checkpoint", str(ckpt), str(tmp_path / "bad.npy")]) == 1
    assert "bad.npy: cannot read the array" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["evaluate", "--checkpoint", str(ckpt), "--all"])
    assert exit_.value.code == 2 and "--all applies to --data only" in capsys.readouterr().err


def test_pyproject_declares_the_command_and_the_extras():
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["scripts"]["lpm"] == "lpm.cli:main"
    assert any(d.startswith("safetensors") for d in project["dependencies"])
    extras = project["optional-dependencies"]
    assert {d.split(">")[0] for d in extras["data"]} == {"scikit-learn", "pillow", "mlxtend"}
    assert [d.split(">")[0] for d in extras["plot"]] == ["matplotlib"]


# ---- train.py options -------------------------------------------------------------------------------
def test_defaults_are_the_original_run():
    args = build_parser().parse_args([])
    assert (args.dataset, args.data, args.checkpoint_dir, args.resume, args.plot,
            args.save_every) == ("blobs", None, None, False, None, 0)
    cfg = TrainConfig(**vars(args))
    assert cfg == TrainConfig() and cfg.lr_schedule == "constant"


def test_bad_options_and_data_exit_with_one_line(capsys, tmp_path, monkeypatch):
    for argv, message in ((["--resume"], "--resume needs --checkpoint-dir"),
                          (["--data", "x", "--dataset", "digits"], "--data and --dataset are alternatives"),
                          (["--dataset", "digits-majority", "--seq-len", "2"], "needs --seq-len >= 3"),
                          (["--skip-bad"], "--skip-bad applies to --data only")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and err.count("\n") == 1
    (tmp_path / "held").mkdir()
    (tmp_path / "data" / "a").mkdir(parents=True)
    for flags in ([], ["--eval-data", str(tmp_path / "held")]):     # a missing --data is told first, before any work
        with pytest.raises(SystemExit) as exit_:
            main(["--data", str(tmp_path / "nowhere.npz"), "--no-progress", *flags])
        err = capsys.readouterr().err
        assert exit_.value.code == 2
        assert err == f"train.py: error: --data {tmp_path / 'nowhere.npz'}: no such file or folder\n"
    with pytest.raises(SystemExit) as exit_:       # --eval-data missing: told before --data is read
        main(["--data", str(tmp_path / "data"), "--eval-data", str(tmp_path / "gone"), "--no-progress"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"train.py: error: --eval-data {tmp_path / 'gone'}: no such file or folder\n"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(SystemExit) as exit_:
        main(["--plot", str(tmp_path)])
    assert exit_.value.code == 2 and "--plot needs matplotlib: pip install 'lpm[plot]'" in capsys.readouterr().err


@needs["scikit-learn"]
def test_digits_runs_end_to_end():
    result = train(TrainConfig(dataset="digits", img_size=16, samples=60, seq_len=3, embed_dim=16, num_heads=2,
                               ff_dim=32, epochs=2, batch_size=8, lr_schedule="cosine", progress=False), log=quiet)
    assert len(result["eval_accs"]) == 2 and result["data"].class_names == tuple("0123456789")
    assert result["model"].config.num_classes == 10


@needs["matplotlib"]
def test_attention_weights_between_frames():
    from lpm.plots import attention_weights

    gt.manual_seed(0)
    from lpm.model import PixelTransformer

    model = PixelTransformer(img_size=8, embed_dim=8, num_heads=2, num_layers=2, ff_dim=16, num_classes=3)
    x = np.random.default_rng(0).random((2, 5, 8, 8), dtype=np.float32)
    logits, weights = attention_weights(model, x)
    assert logits.shape == (2, 3) and [w.shape for w in weights] == [(2, 2, 5, 5)] * 2
    np.testing.assert_allclose(weights[0].sum(-1), 1, rtol=1e-5)
    np.testing.assert_allclose(logits, model(x).numpy(), rtol=1e-5, atol=1e-6)   # the model is unchanged afterwards
    assert "forward" not in vars(model.blocks[0].attn) and model.training


# ---- --pool cls: the class-token model through train, checkpoints, evaluate and predict ---------
def test_pool_cls_round_trips_through_a_checkpoint_evaluate_and_predict(small_run, tmp_path, capsys):
    pytest.importorskip("safetensors")
    from lpm.inference import load_model

    folder = str(tmp_path / "run")
    out = train(TrainConfig(**small_run, pool="cls", epochs=2, checkpoint_dir=folder), log=quiet)
    meta = read_checkpoint(folder).meta
    assert meta["train_config"]["pool"] == "cls" and meta["model_config"]["pool"] == "cls"
    model, _ = load_model(folder)
    assert model.config.pool == "cls" and model.cls_token.shape == (1, 1, 8)
    assert cli.main(["evaluate", "--checkpoint", folder]) == 0
    assert f"Accuracy: {100 * out['eval_accs'][-1]:.2f}% (" in capsys.readouterr().out
    np.save(tmp_path / "seq.npy", make_moving_blobs(1, seq_len=3, img_size=8, seed=9)[0][0])
    assert cli.main(["predict", "--checkpoint", folder, "--json", str(tmp_path / "seq.npy")]) == 0
    row = json.loads(capsys.readouterr().out)
    probs = model(make_moving_blobs(1, seq_len=3, img_size=8, seed=9)[0] - meta["data"].get("pixel_offset", 0.0))
    assert max(row["probabilities"].values()) == pytest.approx(float(probs.softmax(-1).max().item()), abs=1e-5)


def test_old_checkpoints_resume_as_pool_mean_and_refuse_pool_cls(small_run, tmp_path):
    pytest.importorskip("safetensors")
    import lpm.checkpoint as ckpt_mod
    from lpm.checkpoint import CheckpointError, find_checkpoint

    folder = str(tmp_path / "run")
    train(TrainConfig(**small_run, epochs=1, checkpoint_dir=folder), log=quiet)
    meta_path = os.path.join(find_checkpoint(folder), "checkpoint.json")
    meta = json.load(open(meta_path))
    del meta["train_config"]["pool"], meta["model_config"]["pool"]        # written before --pool existed
    meta["checksum"] = ckpt_mod._checksum(meta)
    json.dump(meta, open(meta_path, "w"))
    with pytest.raises(CheckpointError, match="--pool: 'mean' in the checkpoint, 'cls' now"):
        train(TrainConfig(**small_run, pool="cls", epochs=2, checkpoint_dir=folder, resume=True), log=quiet)
    out = train(TrainConfig(**small_run, epochs=2, checkpoint_dir=folder, resume=True), log=quiet)
    assert len(out["eval_accs"]) == 2
    assert cli.main(["evaluate", "--checkpoint", folder]) == 0


@pytest.mark.parametrize("bad", ["max", "none", "CLS", ""])
def test_bad_pool_is_refused_up_front(bad, capsys, tmp_path):
    for run in (lambda: main(["--pool", bad, "--checkpoint-dir", str(tmp_path / "ck")]),
                lambda: cli.main(["train", "--pool", bad, "--checkpoint-dir", str(tmp_path / "ck")])):
        with pytest.raises(SystemExit) as exit_:
            run()
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and f"argument --pool: invalid choice: {bad!r} (choose from 'mean', 'cls')" in err
        assert err.count("\n") == 1 and not (tmp_path / "ck").exists()


@needs["matplotlib"]
def test_attention_plot_of_a_class_token_model(tmp_path):
    from lpm.model import PixelTransformer
    from lpm.plots import attention_weights, plot_attention

    gt.manual_seed(0)
    model = PixelTransformer(img_size=8, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3, pool="cls")
    x = np.random.default_rng(0).random((2, 5, 8, 8), dtype=np.float32)
    logits, weights = attention_weights(model, x)
    assert [w.shape for w in weights] == [(2, 2, 6, 6)]          # the token's row and column first
    np.testing.assert_allclose(logits, model(x).numpy(), rtol=1e-5, atol=1e-6)
    path = plot_attention(model, x, [0, 1], ["a", "b", "c"], str(tmp_path / "attention.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
