"""The numpy and torch engines: chosen by GT_BACKEND or gt.set_backend, with clear errors, and
interchangeable: the same seed gives the same model, data and training losses on both."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gt
from gt.backend import B

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "tests", "engine_run.py")


def _python(args, **env_overrides):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.update(env_overrides)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _train(engine, **kw):
    done = _python([RUNNER, json.dumps(kw)], GT_BACKEND=engine)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["engine"] == engine
    return out


@pytest.mark.first_pass
def test_default_model_trains_the_same_on_numpy_and_torch():
    """Five SGD steps of the default PixelTransformer (13.4M parameters, 200x200 images)."""
    pytest.importorskip("torch")
    a, b = _train("numpy", steps=5), _train("torch", steps=5)
    np.testing.assert_allclose(b["losses"], a["losses"], rtol=1e-5)
    assert a["losses"][-1] < a["losses"][0]          # it trained
    for name, value in a["param_abs_sums"].items():
        np.testing.assert_allclose(b["param_abs_sums"][name], value, rtol=1e-5, err_msg=name)


def test_gt_backend_selects_the_engine():
    assert B.name == (os.environ.get("GT_BACKEND") or "numpy")
    assert gt.get_backend() == B.name


@pytest.mark.first_pass
def test_unknown_backend_is_a_clear_error():
    done = _python(["-c", "import gt; gt.zeros(1)"], GT_BACKEND="jax")
    assert done.returncode != 0
    assert "unknown gt backend 'jax': expected one of 'numpy', 'torch'" in done.stderr
    with pytest.raises(TypeError, match="expected a name"):
        gt.set_backend(3)


def test_set_backend_after_the_first_tensor_is_refused():
    other = "torch" if B.name == "numpy" else "numpy"
    pytest.importorskip("torch")
    gt.zeros(1)
    with pytest.raises(RuntimeError, match="before the first tensor"):
        gt.set_backend(other)


@pytest.mark.first_pass
def test_torch_engine_without_torch_says_how_to_install():
    # torch cannot be found: find_spec is made to say so
    code = ("import importlib.util, sys; real = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda n, *a: None if n == 'torch' else real(n, *a)\n"
            "import gt; gt.set_backend('torch')")
    done = _python(["-c", code], GT_BACKEND="numpy")
    assert done.returncode != 0
    assert "ImportError: gt's torch engine needs PyTorch, which is not installed: pip install 'lpm[torch]'" \
        in done.stderr


@pytest.mark.first_pass
def test_auto_shard_without_a_gpu_keeps_numpy_and_does_not_import_torch():
    code = "import sys, gt; gt.zeros(2); print(gt.get_backend(), 'torch' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GT_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(env, GT_AUTO_SHARD="1"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    if os.path.exists("/dev/nvidia0") or os.path.exists("/proc/driver/nvidia/gpus"):
        pytest.skip("this machine has an NVIDIA driver: GT_AUTO_SHARD=1 may pick torch here")
    assert done.stdout.split() == ["numpy", "False"]


@pytest.mark.first_pass
def test_import_and_a_first_tensor_leave_rarely_used_modules_unloaded():
    # start-up time (benchmarks/bench_startup.py): scipy.fft came with the numpy engine (half of a
    # first tensor's start-up), Python's multiprocessing (sockets, subprocess) with gt.multiprocessing
    # and the engine's shared memory, zipfile with gt.save's format, ctypes.util with gt.backend.memory
    code = ("import sys, gt; gt.randn(2, 2).numpy(); print([m for m in ('scipy', 'multiprocessing', "
            "'gt.multiprocessing', 'zipfile', 'ctypes.util', 'subprocess', 'socket', 'torch') if m in sys.modules])")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GT_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(env, GT_BACKEND="numpy"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]"]
    # each loads where it is used
    code = ("import sys, gt; gt.fft.fft(gt.ones(4)); gt.save(gt.ones(1), sys.argv[1]); "
            "print('zipfile' in sys.modules, 'gt.multiprocessing' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, os.devnull], cwd=ROOT, env=dict(env, GT_BACKEND="numpy"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


@pytest.mark.first_pass
def test_same_seed_same_numbers_on_both_engines():
    pytest.importorskip("torch")
    code = ("import gt, json; gt.manual_seed(7); "
            "print(json.dumps([gt.randn(3).tolist(), gt.rand(2).tolist(), gt.randint(0, 9, (4,)).tolist(), "
            "gt.randperm(5).tolist()]))")
    outs = [json.loads(_python(["-c", code], GT_BACKEND=e).stdout) for e in ("numpy", "torch")]
    assert outs[0] == outs[1]


@pytest.mark.skipif(gt.cuda.is_available(), reason="gt's tensors live on the GPU here: from_numpy copies")
def test_numpy_interop_shares_memory_on_the_cpu():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = gt.from_numpy(a)
    if t.placement != gt.sharding.Replicate():
        pytest.skip("sharded: each device holds a block")
    a[0, 0] = 42.0
    assert t[0, 0].item() == 42.0
    assert np.shares_memory(t.numpy(), a)


@pytest.mark.first_pass
def test_switching_engine_before_the_first_tensor_asks_for_the_mesh_again():
    pytest.importorskip("torch")
    code = ("import gt; first = gt.get_mesh(); gt.set_backend('torch'); "
            "print(gt.get_mesh() is not first, gt.get_backend(), gt.zeros(2).device)")
    done = _python(["-c", code], GT_BACKEND="numpy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "torch", "cpu"]
