"""Start-up cost: wall time of importing gt and making a first tensor, and of the seed workload.

    python benchmarks/bench_startup.py           # 5 runs of each, best and median
    python benchmarks/bench_startup.py --json
    python benchmarks/bench_startup.py --quick   # one run of each (CI: proves it runs)

Each figure is the wall time of a fresh ``python`` process, measured from outside (spawn to
exit), so it includes the interpreter's own start-up:

- ``import``: ``python -c "import gt; gt.randn(2, 2).numpy()"``
- ``seed_workload``: ``python train.py --samples 20 --epochs 5 --batch-size 2 --loss mse``
  (the seed project's workload, end to end: data generation, model, 5 epochs, evaluation)

Python compiles a module's source only when it finds no cached bytecode for it, and most of
gt's start-up is that compilation when it happens (some 250 modules: 0.27 s of a 0.46 s import on
a 2-core EPYC, against 0.19 s cached). So the figures must not depend on whether this checkout
happens to hold ``__pycache__`` folders or on ``PYTHONDONTWRITEBYTECODE`` in the caller's
environment: every run reads and writes bytecode in a temporary ``PYTHONPYCACHEPREFIX`` of the
benchmark's own (the checkout is never written), and each workload is timed twice:

- cached (the target's figure): after one uncounted run wrote the cache, as every run after a
  user's first one;
- compiled from source: the project's own modules without their cache (and
  ``PYTHONDONTWRITEBYTECODE=1``, so each run compiles them again), the rest cached: a first run
  after ``pip install -e .``, or an environment that never writes bytecode.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKLOADS = {
    "import": ([sys.executable, "-c", "import gt; gt.randn(2, 2).numpy()"], 0.3),
    "seed_workload": ([sys.executable, "train.py", "--samples", "20", "--epochs", "5", "--batch-size", "2",
                       "--loss", "mse"], 2.0),
}


def wall(cmd, env):
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with status {done.returncode}:\n{done.stderr}")
    return dt


def bytecode_envs(cache):
    """(cached, from_source) environments whose bytecode lives in ``cache``."""
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base["PYTHONPYCACHEPREFIX"] = cache
    return base, dict(base, PYTHONDONTWRITEBYTECODE="1")


def run(repeats):
    caller = "PYTHONDONTWRITEBYTECODE=1" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "bytecode written"
    result = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
              "python": platform.python_version(), "repeats": repeats, "caller_bytecode": caller, "workloads": {}}
    with tempfile.TemporaryDirectory(prefix="gt-startup-") as cache:
        cached, from_source = bytecode_envs(cache)
        # where the prefix mirrors this checkout: only the project's own modules' bytecode
        own = os.path.join(cache, os.path.splitdrive(ROOT)[1].lstrip(os.sep))
        for name, (cmd, target) in WORKLOADS.items():
            wall(cmd, cached)                     # writes the cache; not counted
            times = [wall(cmd, cached) for _ in range(repeats)]
            shutil.rmtree(own, ignore_errors=True)
            compiled = [wall(cmd, from_source) for _ in range(repeats)]
            shown = ["python"] + cmd[1:]
            result["workloads"][name] = {"command": " ".join(shown if name != "import" else
                                                             ["python", "-c", repr(cmd[2])]),
                                         "min_s": min(times), "median_s": statistics.median(times),
                                         "target_s": target, "met": statistics.median(times) < target,
                                         "from_source_min_s": min(compiled),
                                         "from_source_median_s": statistics.median(compiled)}
    return result


def render(r):
    lines = [f"{r['date']}  {r['machine']}  python {r['python']}  ({r['repeats']} runs each; "
             f"bytecode in the benchmark's own cache, the caller's setting: {r['caller_bytecode']})", "",
             "| workload | min s | median s | target | met | compiled from source: min s | median s |",
             "|---|---:|---:|---|---|---:|---:|"]
    for name, w in r["workloads"].items():
        lines.append(f"| `{w['command']}` | {w['min_s']:.3f} | {w['median_s']:.3f} | < {w['target_s']} s | "
                     f"{'yes' if w['met'] else 'NO'} | {w['from_source_min_s']:.3f} | {w['from_source_median_s']:.3f} |")
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
