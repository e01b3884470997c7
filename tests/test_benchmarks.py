"""The benchmarks run and print what they promise. No timings are checked: a benchmark is not a test.

Each script runs once in its quick mode in a subprocess, and the structure of its JSON output
is checked (every figure present, of the right kind).
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
# The scripts run in their own processes and compare the engines themselves.
pytestmark = pytest.mark.first_pass


# The limit only stops a hung script: a quick run takes 10-40 s, but under -n auto beside the
# other worker on a loaded 2-core machine bench_train's quick run (its two busy processes
# included) was once seen past 120 s.
QUICK_LIMIT_S = 300


def run_json(script, *args, env=None):
    done = subprocess.run([sys.executable, os.path.join(BENCH, script), "--quick", "--json", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=QUICK_LIMIT_S,
                          env=None if env is None else {**os.environ, **env})
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
    # --tiny: the quick run's every step on a model of 16x16 images (the default model's took most
    # of this file's time: 200x200 images, 13.4M parameters, built three times and in two more processes)
    r = run_json("bench_train.py", "--tiny")
    torch_ok = r["torch"] is not None
    assert r["quick"] is True and r["model"]["img_size"] == 16
    assert r["allocator"] == "glibc's defaults"     # as a user's own process has it
    assert _is_number(r["sgemm_gflops"]["peak"]) and r["sgemm_gflops"]["peak"] > 0
    assert set(r["configs"]) == {"seed", "large"}
    for name, (batch, seq) in {"seed": (2, 4), "large": (16, 8)}.items():
        c = r["configs"][name]
        assert (c["batch"], c["seq"]) == (batch, seq)
        assert c["train_gflop"] > 0
        for k in ["gt", "gt in_backward"] + (["torch"] if torch_ok else []):
            s = c[k]
            assert s["steps"] >= 1
            assert 0 < s["min_ms"] <= s["median_ms"]
            assert _is_number(s["gflops"]) and _is_number(s["peak_share"])
        if torch_ok:
            assert _is_number(c["ratio"]) and _is_number(c["ratio_min"])
            assert c["loss_rel_diff"] < 1e-4  # both sides ran the same model on the same batch
            assert _is_number(c["ratio_in_backward"]) and c["in_backward_loss_rel_diff"] < 1e-4
    f = r["forward"]
    assert f["images"] == f["batch"] * f["seq"] == 128
    assert f["gt"]["images_per_s"] > 0
    m = r["memory"]
    assert m["gt"]["train_mib"] > 0 and m["method"]
    if torch_ok:
        assert f["torch"]["images_per_s"] > 0 and _is_number(f["ratio"])
        assert m["torch"]["train_mib"] > 0 and _is_number(m["ratio"])
        assert r["embed_weight_rel_diff"] < 1e-3
    _check_header_decoder_and_load(r, torch_ok)
    keys = [t["key"] for t in r["targets"]]
    assert keys == ["seed_ratio", "seed_ratio_in_backward", "large_ratio", "large_ratio_in_backward",
                    "forward_ratio", "decoder_ratio", "memory_ratio",
                    "load_seed_slowdown", "load_decoder_slowdown", "load_seed_vs_torch", "load_decoder_vs_torch",
                    "large_peak_share"]
    for t in r["targets"]:
        assert t["met"] in (True, False, None)
        if torch_ok:
            assert _is_number(t["value"]) and (t["met"] is None) == (t["target"] is None)
    info = next(t for t in r["targets"] if t["key"] == "large_peak_share")
    assert info["target"] is None and info["met"] is None
    goals = {t["key"]: t["target"] for t in r["targets"]}
    assert goals["seed_ratio"] == "<= 0.6" and goals["large_ratio"] == "<= 0.9" and goals["forward_ratio"] == ">= 1.0"
    assert goals["seed_ratio_in_backward"] == "<= 0.6" and goals["large_ratio_in_backward"] == "<= 0.9"
    assert goals["decoder_ratio"] == "<= 1.0" and goals["memory_ratio"] == "<= 1.2"
    assert goals["load_seed_slowdown"] == goals["load_decoder_slowdown"] == "<= 3.0"


def _check_header_decoder_and_load(r, torch_ok):
    assert isinstance(r["cpu"], str) and r["cpu"]
    assert r["busy_before"] is (r["loadavg"][0] > 0.5 * os.cpu_count())
    assert r["gt_engine"] in ("numpy", "torch")
    assert r["blas"]["numpy"].startswith("numpy ") and "threads" in r["blas"]["numpy"]
    if torch_ok:
        assert r["blas"]["torch"].startswith("torch ") and "intra-op threads" in r["blas"]["torch"]
    else:
        assert r["blas"]["torch"] is None
    d = r["decoder"]
    # token 256x128 + positions 49x128, 4 blocks of (2 LayerNorms, 4 projections 128x128, ff 128-512-128),
    # final LayerNorm, head 128 -> 256
    block = 2 * 2 * 128 + 4 * (128 * 128 + 128) + (128 * 512 + 512) + (512 * 128 + 128)
    assert d["parameters"] == 256 * 128 + 49 * 128 + 4 * block + 2 * 128 + (128 * 256 + 256) == 865408
    # --quick trains the same decoder on 8 sequences a batch instead of 64
    assert (d["batch"], d["seq"], d["vocab"], d["optimizer"], d["lr"]) == (8, 49, 256, "AdamW", 1e-3)
    for k in ["gt"] + (["torch"] if torch_ok else []):
        assert d[k]["steps"] >= 1 and 0 < d[k]["min_ms"] <= d[k]["median_ms"]
    if torch_ok:
        assert _is_number(d["ratio"])
        assert d["loss_rel_diff"] < 1e-4   # the same decoder, weights and batches on both sides
    load = r["under_load"]
    assert load["busy_processes"] == 2
    for figure in ("seed", "decoder"):
        f = load[figure]
        for k in ["gt"] + (["torch"] if torch_ok else []):
            assert f[k]["steps"] >= 1 and f[k]["quiet_ms"] > 0 and f[k]["loaded_ms"] > 0
            assert f[k]["slowdown"] == pytest.approx(f[k]["loaded_ms"] / f[k]["quiet_ms"])
        assert f["gt"]["quiet_ms"] == (r["configs"]["seed"] if figure == "seed" else d)["gt"]["median_ms"]
        if torch_ok:
            assert f["gt_vs_torch"] == pytest.approx(f["gt"]["slowdown"] / f["torch"]["slowdown"])


@pytest.mark.slow
def test_bench_train_without_torch_says_how_to_install(tmp_path):
    # a `torch` that fails to import shadows the real one
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('no torch here')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env["GT_BACKEND"] = "numpy"   # gt's own engine cannot be torch without torch
    done = subprocess.run([sys.executable, os.path.join(BENCH, "bench_train.py"), "--quick", "--json", "--tiny",
                           "--no-memory", "--steps", "1", "--warmup", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "pip install torch==2.13.0" in done.stderr
    r = json.loads(done.stdout)
    assert r["torch"] is None and "torch" not in r["configs"]["seed"]
    assert r["configs"]["large"]["gt"]["median_ms"] > 0
    _check_header_decoder_and_load(r, torch_ok=False)
    assert "torch" not in r["decoder"] and "gt_vs_torch" not in r["under_load"]["seed"]


@pytest.mark.slow
def test_bench_startup_quick_json():
    r = run_json("bench_startup.py")
    assert set(r["workloads"]) == {"import", "seed_workload"}
    assert r["caller_bytecode"] in ("PYTHONDONTWRITEBYTECODE=1", "bytecode written")
    for w in r["workloads"].values():
        assert 0 < w["min_s"] <= w["median_s"]
        assert 0 < w["from_source_min_s"] <= w["from_source_median_s"]
        assert w["met"] == (w["median_s"] < w["target_s"])
        assert w["command"].startswith("python")


def test_bench_startup_bytecode_lives_in_its_own_cache(monkeypatch, tmp_path):
    # the figures must not depend on the caller's PYTHONDONTWRITEBYTECODE or on this checkout's
    # __pycache__: both environments point Python at the benchmark's cache, one never writes it
    sys.path.insert(0, BENCH)
    try:
        import bench_startup
    finally:
        sys.path.remove(BENCH)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    cached, from_source = bench_startup.bytecode_envs(str(tmp_path))
    assert cached["PYTHONPYCACHEPREFIX"] == from_source["PYTHONPYCACHEPREFIX"] == str(tmp_path)
    assert "PYTHONDONTWRITEBYTECODE" not in cached and from_source["PYTHONDONTWRITEBYTECODE"] == "1"


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
        assert {"torch cpu", "torch cpu bf16", "pytorch cpu"} <= set(setups)
    except ImportError:
        assert setups == ["numpy"]
    for r in rows:
        engine = "numpy" if r["setup"] == "numpy" else "pytorch" if r["setup"].startswith("pytorch") else "torch"
        assert 0 < r["min_ms"] <= r["median_ms"] and r["engine"] == engine
    cpu = {r["setup"]: r["final_loss"] for r in rows}
    for other in ("torch cpu", "pytorch cpu"):   # the same seed, the same training on both engines and in PyTorch
        if other in cpu:
            assert abs(cpu[other] - cpu["numpy"]) <= 1e-5 * max(1.0, abs(cpu["numpy"]))
    ref = next((r for r in rows if r["setup"] == "pytorch cpu"), None)
    for r in rows:
        assert r["vs_pytorch"] == (None if ref is None else r["median_ms"] / ref["median_ms"])


@pytest.mark.slow
def test_bench_overhead_quick_json():
    pytest.importorskip("torch", reason="the benchmark compares with PyTorch")
    r = run_json("bench_overhead.py")
    assert r["engine"] in ("numpy", "torch") and r["rounds"] == 1 and r["steps_per_round"] == 3
    for name in ("gt", "pytorch"):
        assert len(r["ms_per_step"][name]) == 1 and r["median_ms"][name] > 0
    assert r["ratio"] == r["median_ms"]["gt"] / r["median_ms"]["pytorch"]
    gt_loss, torch_loss = r["first_losses"]          # the same weights and batch: the same first loss
    assert abs(gt_loss - torch_loss) <= 1e-5 * max(1.0, abs(torch_loss))


@pytest.mark.slow
def test_bench_overhead_on_the_gpu_paths_counts_the_calls_of_a_gpu_step():
    """gt's step on the code paths of a CUDA machine (checks queued, attention through torch's
    scaled_dot_product_attention and autograd), counted on the CPU: the same first loss as
    PyTorch's, fewer aten calls a step than PyTorch's (497 against 808 when written)."""
    pytest.importorskip("torch", reason="the benchmark compares with PyTorch")
    done = subprocess.run([sys.executable, os.path.join(BENCH, "bench_overhead.py"), "--quick", "--json",
                           "--gpu-paths"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GT_BACKEND": "torch"})
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["engine"] == "torch" and r["gpu_paths"] is True
    calls = r["aten_calls_per_step"]
    assert 0 < calls["gt"] < calls["pytorch"]
    gt_loss, torch_loss = r["first_losses"]
    assert abs(gt_loss - torch_loss) <= 1e-5 * max(1.0, abs(torch_loss))


@pytest.mark.slow
def test_profile_step_quick_json():
    """Where a step's time goes, gt beside PyTorch: the figures are there and add up (the top ops'
    host time within the aten total); on the CPU no GPU kernels are counted."""
    pytest.importorskip("torch", reason="the profile compares with PyTorch")
    r = run_json("profile_step.py", "--tiny", env={"GT_BACKEND": "torch"})
    assert r["engine"] == "torch" and r["batch"] == [2, 4] and r["model"]["img_size"] == 4
    for name in ("gt", "pytorch"):
        f = r[name]
        assert f["median_ms"] > 0 and (f["gpu_kernels"] is None) == (not r["device"].startswith("cuda"))
        assert sum(o["host_ms"] for o in f["top_ops"]) <= f["aten_host_ms"] + 1e-9
        assert all(o["op"].startswith("aten::") and o["calls"] > 0 for o in f["top_ops"])
    assert r["pytorch"]["aten_calls"] > 0 and r["gt"]["aten_calls"] > 0
    assert r["gt"]["python_top"] and all(row["own_ms"] >= 0 for row in r["gt"]["python_top"])


def test_bench_overhead_gpu_paths_need_the_torch_engine():
    done = subprocess.run([sys.executable, os.path.join(BENCH, "bench_overhead.py"), "--gpu-paths"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "GT_BACKEND": "numpy"})
    assert done.returncode == 2 and "--gpu-paths needs the torch engine" in done.stderr
    assert "Traceback" not in done.stderr


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
                                    "bench_kv_cache.py", "bench_overhead.py", "profile_step.py"])
def test_help(script):
    done = subprocess.run([sys.executable, os.path.join(BENCH, script), "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--quick" in done.stdout and "--json" in done.stdout


def _under_load():
    sys.path.insert(0, BENCH)
    try:
        import under_load
    finally:
        sys.path.remove(BENCH)
    return under_load


def test_pytorch_steps_run_with_pytorchs_own_thread_count():
    """gt's torch engine lowers torch's one thread count on a busy machine; the PyTorch steps
    beside it must run with the count PyTorch chose for itself, and leave gt's in place."""
    torch = pytest.importorskip("torch")
    sys.path.insert(0, BENCH)
    try:
        import timing
    finally:
        sys.path.remove(BENCH)
    before = torch.get_num_threads()
    try:
        own = timing.torch_threads()
        seen = []
        step = timing.with_torch_threads(lambda x: seen.append((x, torch.get_num_threads())) or x)
        torch.set_num_threads(max(1, own - 1) if own > 1 else 2)      # as gt's policy might have set it
        gts = torch.get_num_threads()
        assert step(7) == 7 and seen == [(7, own)]
        assert torch.get_num_threads() == gts                            # gt's count put back
        with pytest.raises(ZeroDivisionError):
            timing.with_torch_threads(lambda: 1 / 0)()
        assert torch.get_num_threads() == gts                            # also after an error
    finally:
        torch.set_num_threads(before)


def test_busy_processes_are_stopped_even_on_an_error():
    under_load = _under_load()
    with pytest.raises(RuntimeError, match="inside"):
        with under_load.busy_processes(2, settle_s=0) as pids:
            assert len(pids) == 2 and all(under_load.alive(p) for p in pids)
            raise RuntimeError("inside the block")
    assert not any(under_load.alive(p) for p in pids)


def test_busy_processes_leave_by_themselves_when_the_benchmark_is_killed():
    # the parent dies without cleaning up (as on SIGKILL): the spinners notice and exit
    under_load = _under_load()
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); from under_load import busy_processes\n"
            "with busy_processes(2, settle_s=0) as pids:\n    print(*pids, flush=True); os._exit(1)")
    done = subprocess.run([sys.executable, "-c", code, BENCH], capture_output=True, text=True, timeout=30)
    pids = [int(p) for p in done.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(under_load.alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(under_load.alive(p) for p in pids)


def test_gpu_check_script_is_valid_bash():
    done = subprocess.run(["bash", "-n", os.path.join(BENCH, "gpu_check.sh")], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi: the script would run")
def test_gpu_check_says_there_is_no_gpu():
    done = subprocess.run(["bash", os.path.join(BENCH, "gpu_check.sh")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == ("gpu_check: nvidia-smi not found: this machine has no NVIDIA driver, "
                                   "so no CUDA GPU to check")
