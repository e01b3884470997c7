"""Start-up cost: wall time of importing gt and making a first tensor, and of the seed workload.

    python benchmarks/bench_startup.py           # 5 runs of each, best and median
    python benchmarks/bench_startup.py --json
    python benchmarks/bench_startup.py --quick   # one run of each (CI: proves it runs)

Each figure is the wall time of a fresh ``python`` process, measured from outside (spawn to
exit), so it includes the interpreter's own start-up:

- ``import``: ``python -c "import gt; gt.randn(2, 2).numpy()"``
- ``seed_workload``: ``python train.py --samples 20 --epochs 5 --batch-size 2 --loss mse``
  (the seed project's workload, end to end: data generation, model, 5 epochs, evaluation)
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKLOADS = {
    "import": ([sys.executable, "-c", "import gt; gt.randn(2, 2).numpy()"], 0.3),
    "seed_workload": ([sys.executable, "train.py", "--samples", "20", "--epochs", "5", "--batch-size", "2",
                       "--loss", "mse"], 2.0),
}


def wall(cmd):
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with status {done.returncode}:\n{done.stderr}")
    return dt


def run(repeats):
    result = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
              "python": platform.python_version(), "repeats": repeats, "workloads": {}}
    for name, (cmd, target) in WORKLOADS.items():
        times = [wall(cmd) for _ in range(repeats)]
        shown = ["python"] + cmd[1:]
        result["workloads"][name] = {"command": " ".join(shown if name != "import" else
                                                         ["python", "-c", repr(cmd[2])]),
                                     "min_s": min(times), "median_s": statistics.median(times),
                                     "target_s": target, "met": statistics.median(times) < target}
    return result


def render(r):
    lines = [f"{r['date']}  {r['machine']}  python {r['python']}  ({r['repeats']} runs each)", "",
             "| workload | min s | median s | target | met |", "|---|---:|---:|---|---|"]
    for name, w in r["workloads"].items():
        lines.append(f"| `{w['command']}` | {w['min_s']:.3f} | {w['median_s']:.3f} | < {w['target_s']} s | "
                     f"{'yes' if w['met'] else 'NO'} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--quick", action="store_true", help="one run of each (CI: proves it runs)")
    p.add_argument("--repeats", type=int, default=None, help="runs of each workload (default 5; quick 1)")
    args = p.parse_args(argv)
    result = run(args.repeats or (1 if args.quick else 5))
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
