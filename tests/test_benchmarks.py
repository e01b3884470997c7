"""The benchmarks run and print what they promise. No timings are checked: a benchmark is not a test.

Each script runs once in its quick mode in a subprocess, and the structure of its JSON output
is checked (every figure present, of the right kind).
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
# The scripts run in their own processes and compare the engines themselves.
pytestmark = pytest.mark.first_pass


def run_json(script, *args):
    done = subprocess.run([sys.executable, os.path.join(BENCH, script), "--quick", "--json", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def test_flop_count_of_the_default_model():
    sys.path.insert(0, BENCH)
    try:
        from bench_train import matmul_flops, train_flops
    finally:
        sys.path.remove(BENCH)
    f = matmul_flops(16, 8)
    assert f["embed"] == 2 * 128 * 40000 * 256
    assert f["forward"] == f["embed"] + f["blocks"] + f["head"]
    assert train_flops(16, 8) == 3 * f["forward"] - f["embed"]


@pytest.mark.slow
def test_bench_train_quick_json():
    r = run_json("bench_train.py")
    torch_ok = r["torch"] is not None
    assert r["quick"] is True
    assert _is_number(r["sgemm_gflops"]["peak"]) and r["sgemm_gflops"]["peak"] > 0
    assert set(r["configs"]) == {"seed", "large"}
    for name, (batch, seq) in {"seed": (2, 4), "large": (16, 8)}.items():
        c = r["configs"][name]
        assert (c["batch"], c["seq"]) == (batch, seq)
        assert c["train_gflop"] > 0
        for k in ["gt"] + (["torch"] if torch_ok else []):
            s = c[k]
            assert s["steps"] >= 1
            assert 0 < s["min_ms"] <= s["median_ms"]
            assert _is_number(s["gflops"]) and _is_number(s["peak_share"])
        if torch_ok:
            assert _is_number(c["ratio"]) and _is_number(c["ratio_min"])
            assert c["loss_rel_diff"] < 1e-4  # both sides ran the same model on the same batch
    f = r["forward"]
    assert f["images"] == f["batch"] * f["seq"] == 128
    assert f["gt"]["images_per_s"] > 0
    m = r["memory"]
    assert m["gt"]["train_mib"] > 0 and m["method"]
    if torch_ok:
        assert f["torch"]["images_per_s"] > 0 and _is_number(f["ratio"])
        assert m["torch"]["train_mib"] > 0 and _is_number(m["ratio"])
        assert r["embed_weight_rel_diff"] < 1e-3
    keys = [t["key"] for t in r["targets"]]
    assert keys == ["seed_ratio", "large_ratio", "large_peak_share", "forward_ratio", "memory_ratio"]
    for t in r["targets"]:
        assert t["met"] in (True, False, None)


@pytest.mark.slow
def test_bench_train_without_torch_says_how_to_install(tmp_path):
    # a `torch` that fails to import shadows the real one
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('no torch here')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env["GT_BACKEND"] = "numpy"   # gt's own engine cannot be torch without torch
    done = subprocess.run([sys.executable, os.path.join(BENCH, "bench_train.py"), "--quick", "--json",
                           "--no-memory", "--steps", "1", "--warmup", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "pip install torch==2.13.0" in done.stderr
    r = json.loads(done.stdout)
    assert r["torch"] is None and "torch" not in r["configs"]["seed"]
    assert r["configs"]["large"]["gt"]["median_ms"] > 0


@pytest.mark.slow
def test_bench_startup_quick_json():
    r = run_json("bench_startup.py")
    assert set(r["workloads"]) == {"import", "seed_workload"}
    for w in r["workloads"].values():
        assert 0 < w["min_s"] <= w["median_s"]
        assert w["met"] in (True, False)
        assert w["command"].startswith("python")


@pytest.mark.slow
def test_bench_sharding_quick_json():
    (row,) = run_json("bench_sharding.py")
    assert row["devices"] == 4 and row["same_loss"] is True
    for side in ("one_device", "sharded"):
        assert 0 < row[side]["min_ms"] <= row[side]["median_ms"]
    assert row["one_device"]["collectives"] == {}
    assert row["sharded"]["collectives"]["all_reduce"] >= 1


@pytest.mark.slow
def test_bench_engines_quick_json():
    rows = run_json("bench_engines.py")
    setups = [r["setup"] for r in rows]
    assert setups[0] == "numpy" and rows[0]["vs_numpy"] == 1.0
    try:
        import torch  # noqa: F401
        assert {"torch cpu", "torch cpu bf16"} <= set(setups)
    except ImportError:
        assert setups == ["numpy"]
    for r in rows:
        assert 0 < r["min_ms"] <= r["median_ms"] and r["engine"] == ("numpy" if r["setup"] == "numpy" else "torch")
    cpu = {r["setup"]: r["final_loss"] for r in rows}
    if "torch cpu" in cpu:   # the same seed, the same training on both engines
        assert abs(cpu["torch cpu"] - cpu["numpy"]) <= 1e-5 * max(1.0, abs(cpu["numpy"]))


@pytest.mark.slow
def test_bench_kv_cache_quick_json():
    r = run_json("bench_kv_cache.py")
    assert r["quick"] is True and r["config"]["new_tokens"] >= 1
    for way in ("cache", "no_cache"):
        assert 0 < r[way]["min_s"] <= r[way]["median_s"] and r[way]["tokens_per_s"] > 0
    assert _is_number(r["speedup"]) and r["cpu"] and r["engine"] in ("numpy", "torch")
    # the cached and the uncached decoding agree (a figure of the benchmark, not a timing)
    assert r["same_tokens"] is True and r["max_logit_diff"] < 1e-4


def test_bench_kv_cache_rejects_bad_repeats():
    done = subprocess.run([sys.executable, os.path.join(BENCH, "bench_kv_cache.py"), "--repeats", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--repeats must be at least 1, got 0" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("script", ["bench_train.py", "bench_startup.py", "bench_sharding.py", "bench_engines.py",
                                    "bench_kv_cache.py"])
def test_help(script):
    done = subprocess.run([sys.executable, os.path.join(BENCH, script), "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--quick" in done.stdout and "--json" in done.stdout
