"""Where a training step's time goes, gt beside PyTorch eager: torch's profiler over a few SGD
steps of the same PixelTransformer from the same weights and batch, on gt's device (a CUDA GPU
where there is one, with the torch engine), in one process. For each framework: the step's
median wall time, the aten ops a step (nested ones included, as the profiler lists them) and
the host time inside them, the GPU kernels a step, their GPU time and the busiest of them
(on a GPU), and the ops that take the most host time; for gt also the Python functions that
take the most of its step (cProfile).

    GT_BACKEND=torch python benchmarks/profile_step.py           # the default model, batch 2 x 4
    GT_BACKEND=torch python benchmarks/profile_step.py --tiny    # bench_overhead.py's tiny model
    python benchmarks/profile_step.py --tiny --quick --json
    GT_BACKEND=torch python benchmarks/profile_step.py --batch 16 8 --autocast bfloat16

Why: on a GPU gt's step of the default model took 1.45-1.79x PyTorch eager's (README, "On a
GPU"), and where the time goes there had not been looked at on a GPU; this is the one command
that looks (benchmarks/gpu_check.sh runs it). On the numpy engine gt makes no aten calls: its
profile is the Python one alone.
"""

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_engines import gt_step, pytorch_step  # noqa: E402
from bench_overhead import MODEL as TINY  # noqa: E402

TOP = 12


def steps(model_kw, batch, seq, autocast=None):
    """``(gt_step, torch_step, device)``: functions that each run one SGD step and read the loss
    back (benchmarks/bench_engines.py's), PyTorch's on gt's device; both forwards under autocast
    to ``autocast`` when given."""
    import gt

    ours = gt_step(batch, seq, model_kw, autocast)
    device = str(gt.zeros(1).device)
    return ours, pytorch_step(batch, seq, model_kw, device, autocast), device


def profile(step, n, on_gpu):
    """Figures of ``n`` calls of ``step`` under torch's profiler (per step)."""
    import torch
    from torch.profiler import ProfilerActivity

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(n):
            step()
    averages = prof.key_averages()
    ops = [e for e in averages if e.key.startswith("aten::")]
    cuda = torch.autograd.DeviceType.CUDA
    kernels = sorted((e for e in averages if e.device_type == cuda), key=lambda e: -e.self_device_time_total)
    top = sorted(ops, key=lambda e: -e.self_cpu_time_total)[:TOP]
    return dict(aten_calls=sum(e.count for e in ops) / n,
                aten_host_ms=sum(e.self_cpu_time_total for e in ops) / n / 1e3,
                gpu_kernels=sum(e.count for e in kernels) / n if on_gpu else None,
                gpu_ms=sum(e.self_device_time_total for e in kernels) / n / 1e3 if on_gpu else None,
                top_kernels=[dict(kernel=e.key, calls=e.count / n, gpu_ms=e.self_device_time_total / n / 1e3)
                             for e in kernels[:TOP // 2]],
                top_ops=[dict(op=e.key, calls=e.count / n, host_ms=e.self_cpu_time_total / n / 1e3) for e in top])


def python_top(step, n):
    """The Python functions that take most of ``n`` calls of ``step`` (own time, per step)."""
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(n):
        step()
    pr.disable()
    stats = pstats.Stats(pr).stats
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:TOP]
    return [dict(function=f"{os.path.relpath(f, os.getcwd()) if f.startswith('/') else f}:{line}({name})",
                 calls=cc / n, own_ms=tt / n * 1e3) for (f, line, name), (cc, nc, tt, ct, callers) in rows]


def run(model_kw, batch, seq, warmup, n, autocast=None):
    import gt

    gt_step, torch_step, device = steps(model_kw, batch, seq, autocast)
    fns = {"gt": gt_step, "pytorch": torch_step}
    on_gpu = device.startswith("cuda")
    out = dict(engine=gt.get_backend(), device=device, batch=[batch, seq], model=model_kw, autocast=autocast)
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        out[name] = dict(median_ms=statistics.median(times), **profile(fn, n, on_gpu))
    out["gt"]["python_top"] = python_top(fns["gt"], n)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help=f"bench_overhead.py's tiny model {TINY} instead of the default")
    p.add_argument("--quick", action="store_true", help="1 warm-up step and 2 profiled: proves the script runs")
    p.add_argument("--batch", type=int, nargs=2, default=(2, 4), metavar=("B", "S"),
                   help="sequences and images per sequence (default: 2 4)")
    p.add_argument("--autocast", choices=("bfloat16",), help="both forwards under autocast to this dtype")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if min(args.batch) < 1:
        p.error(f"--batch: both numbers must be at least 1, got {args.batch[0]} {args.batch[1]}")
    try:
        import torch  # noqa: F401
    except ImportError:
        p.error("PyTorch is not installed: this profile compares with it (pip install torch==2.13.0)")
    r = run(TINY if args.tiny else {}, *args.batch, 1 if args.quick else 5, 2 if args.quick else 10, args.autocast)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"engine {r['engine']} on {r['device']}, batch {r['batch'][0]} x {r['batch'][1]}, model {r['model'] or 'default'}"
          + (f", autocast {r['autocast']}" if r["autocast"] else ""))
    for name in ("gt", "pytorch"):
        f = r[name]
        kernels = "" if f["gpu_kernels"] is None else \
            f", {f['gpu_kernels']:.0f} GPU kernels busy {f['gpu_ms']:.2f} ms"
        print(f"\n{name}: {f['median_ms']:.2f} ms a step; {f['aten_calls']:.0f} aten ops (nested included) taking "
              f"{f['aten_host_ms']:.2f} ms of host time{kernels}")
        for o in f["top_ops"]:
            print(f"  {o['op']:<58} {o['calls']:6.1f} calls  {o['host_ms']:7.3f} ms")
        for k in f["top_kernels"]:
            print(f"  GPU {k['kernel'][:54]:<54} {k['calls']:6.1f} calls  {k['gpu_ms']:7.3f} ms")
    print("\ngt's Python, own time a step:")
    for row in r["gt"]["python_top"]:
        print(f"  {row['function'][-70:]:<70} {row['calls']:7.1f} calls  {row['own_ms']:7.3f} ms")


if __name__ == "__main__":
    main()
