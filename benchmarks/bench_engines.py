"""The engines side by side: the default PixelTransformer's SGD training step on the numpy
engine, the torch engine on the CPU (float32 and ``gt.autocast("bfloat16")``), and on every
CUDA GPU present (1 GPU, then all of them with GT_AUTO_SHARD=1); beside them the same model and
training in plain PyTorch eager on the CPU and on one GPU (``vs pytorch``).

    python benchmarks/bench_engines.py                  # batches 2x4 and 16x8
    python benchmarks/bench_engines.py --quick --json

Each engine runs in its own fresh process (the engine is chosen once per process), one after
another, so they never share the cores. Times are per step: forward, backward and update, with
the loss read back (``.item()``) as a training loop does, which also waits for the GPU.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sgd_step(model, opt, x, y, autocast=None):
    """One training step: forward (under ``gt.autocast(autocast)`` when given), cross-entropy,
    backward, update. Returns the loss tensor (not read back: that is the caller's choice)."""
    import contextlib

    import gt
    from gt import nn

    with gt.autocast(autocast) if autocast else contextlib.nullcontext():
        loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def gt_step(batch, seq, model_kw, autocast=None):
    """A function running one SGD step of the PixelTransformer (``model_kw``; weights from seed 0)
    on a fixed random batch (seed 0) and reading its loss back."""
    import numpy as np

    import gt
    from lpm.model import PixelTransformer

    img = model_kw.get("img_size", 200)
    rng = np.random.default_rng(0)
    gt.manual_seed(0)
    model = PixelTransformer(**model_kw)
    x = gt.from_numpy(rng.standard_normal((batch, seq, img, img), dtype=np.float32))
    y = gt.from_numpy(rng.integers(0, 10, batch))
    opt = gt.optim.SGD(model.parameters(), lr=0.01)
    return lambda: sgd_step(model, opt, x, y, autocast).item()


def worker(batch, seq, steps, warmup, model_kw, autocast):
    import gt

    return dict(_timed(gt_step(batch, seq, model_kw, autocast), steps, warmup),
                mesh=gt.get_mesh().describe(), engine=gt.get_backend())


def _timed(step, steps, warmup):
    """``step()`` (one training step that reads its loss back, returned) ``warmup + steps`` times:
    the min and median of the timed steps in ms, and the last loss."""
    times, losses = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        losses.append(step())
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return dict(min_ms=min(times), median_ms=statistics.median(times), final_loss=losses[-1])


def pytorch_step(batch, seq, model_kw, device, autocast=None):
    """``gt_step``'s training in plain PyTorch eager (benchmarks/torch_reference.py) on ``device``,
    from the gt model's initial weights and the same batch: one SGD step, its loss read back;
    the forward under ``torch.autocast`` to ``autocast`` (a dtype name) when given."""
    import contextlib

    import numpy as np
    import torch

    import gt
    from lpm.model import PixelTransformer
    from torch_reference import TorchPixelTransformer

    img = model_kw.get("img_size", 200)
    rng = np.random.default_rng(0)
    gt.manual_seed(0)
    weights = PixelTransformer(**model_kw).state_dict()
    model = TorchPixelTransformer(**model_kw)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
    model.to(device)
    x = torch.from_numpy(rng.standard_normal((batch, seq, img, img), dtype=np.float32)).to(device)
    y = torch.from_numpy(rng.integers(0, 10, batch)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        with torch.autocast(device.split(":")[0], getattr(torch, autocast)) if autocast else contextlib.nullcontext():
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def pytorch_worker(batch, seq, steps, warmup, model_kw, device):
    """``pytorch_step`` timed: the reference each engine is judged by."""
    import torch

    return dict(_timed(pytorch_step(batch, seq, model_kw, device), steps, warmup),
                mesh=f"PyTorch {torch.__version__} eager ({device})", engine="pytorch")


def run(env, worker_name="worker", **kw):
    """``worker(**kw)`` (or ``pytorch_worker``) in a fresh process with ``env`` (GT_* variables of
    this one dropped)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GT_")}
    code = (f"import json, sys; sys.path.insert(0, {os.path.join(ROOT, 'benchmarks')!r}); "
            f"from bench_engines import {worker_name}; print(json.dumps({worker_name}(**{kw!r})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(base, **env), capture_output=True,
                          text=True, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"{env}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return json.loads(done.stdout)


def setups():
    """(name, environment, options) of each engine and device to time on this machine: gt's
    (``autocast``) and plain PyTorch's (``device``) on the CPU and on one GPU."""
    out = [("numpy", {"GT_BACKEND": "numpy"}, {"autocast": None})]
    try:
        import torch
    except ImportError:
        print("torch is not installed: only the numpy engine is timed (pip install torch==2.13.0)", file=sys.stderr)
        return out
    cpu = {"CUDA_VISIBLE_DEVICES": ""}
    out += [("torch cpu", {"GT_BACKEND": "torch", **cpu}, {"autocast": None}),
            ("torch cpu bf16", {"GT_BACKEND": "torch", **cpu}, {"autocast": "bfloat16"}),
            ("pytorch cpu", {"GT_BACKEND": "numpy", **cpu}, {"device": "cpu"})]
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus:
        out += [("1 gpu", {"GT_BACKEND": "torch"}, {"autocast": None}),
                ("1 gpu bf16", {"GT_BACKEND": "torch"}, {"autocast": "bfloat16"}),
                ("pytorch 1 gpu", {"GT_BACKEND": "numpy"}, {"device": "cuda"})]
    if gpus > 1:
        out += [(f"{gpus} gpus", {"GT_BACKEND": "torch", "GT_AUTO_SHARD": "1"}, {"autocast": None})]
    return out


def _reference(rows, r):
    """The plain-PyTorch row that ``r`` is judged by: the same batch, on a GPU if ``r`` ran on one."""
    want = "pytorch 1 gpu" if "cuda" in r["mesh"] else "pytorch cpu"
    return next((q for q in rows if q["setup"] == want and q["batch"] == r["batch"] and q["seq"] == r["seq"]), None)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small model and 2 steps: proves the script runs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args(argv)
    if args.quick:
        configs, steps, warmup, kw = [(8, 2)], 2, 1, dict(img_size=16, embed_dim=16, num_heads=2, num_layers=1, ff_dim=32)
    else:
        configs, steps, warmup, kw = [(2, 4), (16, 8)], args.steps, 3, {}
    rows = []
    for batch, seq in configs:
        for name, env, options in setups():
            worker_name = "pytorch_worker" if "device" in options else "worker"
            r = run(env, worker_name, batch=batch, seq=seq, steps=steps, warmup=warmup, model_kw=kw, **options)
            rows.append(dict(setup=name, batch=batch, seq=seq, **r))
    for r in rows:
        ref = next(q for q in rows if q["setup"] == "numpy" and q["batch"] == r["batch"] and q["seq"] == r["seq"])
        r["vs_numpy"] = r["median_ms"] / ref["median_ms"]
        torch_ref = _reference(rows, r)
        r["vs_pytorch"] = None if torch_ref is None else r["median_ms"] / torch_ref["median_ms"]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'setup':<16} {'batch x seq':>11} {'median ms':>10} {'min ms':>8} {'vs numpy':>9} {'vs pytorch':>11}"
          "  devices  (vs pytorch: against PyTorch eager on the same device, float32)")
    for r in rows:
        vs = "" if r["vs_pytorch"] is None else f"{r['vs_pytorch']:.2f}"
        print(f"{r['setup']:<16} {r['batch']:>5} x {r['seq']:<3} {r['median_ms']:>10.1f} {r['min_ms']:>8.1f} "
              f"{r['vs_numpy']:>9.2f} {vs:>11}  {r['mesh']}")


if __name__ == "__main__":
    main()
