"""Host work per training step: the Pixel Transformer's SGD step at tiny sizes (4x4 frames, width
16), where every kernel takes microseconds and what is timed is each framework's own work around
them, gt (the engine of GT_BACKEND, default numpy) beside PyTorch eager (on one thread), in one
process.

    python benchmarks/bench_overhead.py            # 5 rounds of 50 steps each
    GT_BACKEND=torch python benchmarks/bench_overhead.py
    python benchmarks/bench_overhead.py --quick --json
    GT_BACKEND=torch python benchmarks/bench_overhead.py --gpu-paths   # gt's GPU code paths, on the CPU

Why: on a GPU a step of the default model is a few milliseconds of kernels under this host work
(README, "On a GPU": gt's step on one H200 took 1.45-1.79x PyTorch's, while gt issues fewer
aten calls a step than PyTorch), so this CPU figure is the part of the GPU gap that can be
measured and worked on without a GPU. Same weights and batch for both (benchmarks/torch_reference.py).
Also counted: the aten calls of one step of each (torch's dispatch mode; on a GPU most of them
are kernel launches), on the torch engine.

``--gpu-paths`` (torch engine) runs gt's step on the code paths a CUDA machine takes, here on
the CPU: value checks queued instead of read at once (gt.checks), attention through torch's
``scaled_dot_product_attention`` and autograd (the torch engine's CUDA path), so that the host
work and the calls of a GPU step can be counted without a GPU (the kernels are the CPU's).
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import gt_train_step, torch_train_step  # noqa: E402
MODEL = dict(img_size=4, embed_dim=16, num_heads=4, num_layers=4, ff_dim=32)


def steps(batch=2, seq=4):
    """``(gt_step, torch_step)``: functions that each run one SGD step and read the loss back."""
    import torch

    import gt
    from lpm.model import PixelTransformer
    from torch_reference import TorchPixelTransformer

    rng = np.random.default_rng(0)
    gt.manual_seed(0)
    model = PixelTransformer(**MODEL)
    xs = rng.standard_normal((batch, seq, MODEL["img_size"], MODEL["img_size"]), dtype=np.float32)
    ys = rng.integers(0, 10, batch)
    ref = TorchPixelTransformer(**MODEL)
    ref.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    # the benchmarks' steps as a user writes them (timing.py), the batch handed over each step
    ours = gt_train_step(model, gt.optim.SGD(model.parameters(), lr=0.01))
    theirs = torch_train_step(ref, torch.optim.SGD(ref.parameters(), lr=0.01))
    return (lambda: ours(xs, ys).item()), (lambda: theirs(xs, ys).item())


def gpu_paths():
    """Put gt on the code paths of a CUDA machine (see the module docstring); the queued checks
    are read, as on a GPU, at the step's read of its loss."""
    from gt import checks
    from gt.backend import B, torch_kernels

    checks.deferred = lambda: True
    B.attention_fused = lambda q, k, v, scale, causal: torch_kernels._attention_by_autograd(q, k, v, scale, causal)


def aten_calls(fn):
    """How many aten ops one call of ``fn`` dispatches (None where torch is not the engine's)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return Count.n


def run(rounds, per_round, warmup, on_gpu_paths=False):
    import torch

    import gt

    torch.set_num_threads(1)       # gt's kernels at these sizes run on one thread too
    if on_gpu_paths:
        gpu_paths()
    gt_step, torch_step = steps()
    losses = [(gt_step(), torch_step()) for _ in range(warmup)]
    times = {"gt": [], "pytorch": []}
    for _ in range(rounds):            # alternated rounds: the machine's drift touches both alike
        for name, fn in (("gt", gt_step), ("pytorch", torch_step)):
            t0 = time.perf_counter()
            for _ in range(per_round):
                fn()
            times[name].append((time.perf_counter() - t0) / per_round * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    calls = {"gt": aten_calls(gt_step) if gt.get_backend() == "torch" else None, "pytorch": aten_calls(torch_step)}
    return dict(engine=gt.get_backend(), gpu_paths=on_gpu_paths, model=MODEL, rounds=rounds,
                steps_per_round=per_round, ms_per_step=times, median_ms=med, ratio=med["gt"] / med["pytorch"],
                aten_calls_per_step=calls, first_losses=[float(a) for a in losses[0]] if losses else None)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 round of 3 steps: proves the script runs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--gpu-paths", action="store_true",
                   help="gt on the code paths of a CUDA machine, on the CPU (torch engine only)")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.gpu_paths:      # before torch's import (seconds): a wrong engine is refused at once
        import gt

        if gt.get_backend() != "torch":
            p.error(f"--gpu-paths needs the torch engine, the engine of a GPU (this run's is {gt.get_backend()}): "
                    "run it with GT_BACKEND=torch")
    try:
        import torch  # noqa: F401
    except ImportError:
        p.error("PyTorch is not installed: this benchmark compares with it (pip install torch==2.13.0)")
    r = run(1, 3, 1, args.gpu_paths) if args.quick else run(args.rounds, 50, 20, args.gpu_paths)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    paths = ", on a GPU's code paths (on the CPU)" if r["gpu_paths"] else ""
    print(f"engine {r['engine']}{paths}, model {r['model']}, batch 2 x 4")
    for name, v in r["ms_per_step"].items():
        calls = r["aten_calls_per_step"][name]
        print(f"{name:<8} ms/step {[round(t, 2) for t in v]}  median {r['median_ms'][name]:.2f}"
              + ("" if calls is None else f"  aten calls/step {calls}"))
    print(f"gt / PyTorch: {r['ratio']:.2f}")


if __name__ == "__main__":
    main()
