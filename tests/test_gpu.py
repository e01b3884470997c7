"""gt on CUDA GPUs (the torch engine): one GPU, every GPU of the machine, no host syncs inside a
training step, bfloat16. Skipped, with the reason, on a machine without a CUDA GPU; each test
starts fresh processes, so they run in every pass of the suite on a GPU machine."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the GPU path needs PyTorch (pip install 'lpm[torch]')")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "tests", "engine_run.py")
GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(GPUS == 0, reason="no CUDA GPU on this machine")]


def _run(env, **kw):
    base = {k: v for k, v in os.environ.items() if not k.startswith("GT_")}
    done = subprocess.run([sys.executable, RUNNER, json.dumps(kw)], cwd=ROOT, env=dict(base, **env),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_one_gpu_trains_the_default_model_as_the_cpu_does():
    gpu = _run({"GT_BACKEND": "torch"}, steps=5)
    cpu = _run({"GT_BACKEND": "numpy"}, steps=5)
    assert gpu["device"] == "cuda:0" and gpu["mesh"] == "1 device(s) (cuda:0)"
    np.testing.assert_allclose(gpu["losses"], cpu["losses"], rtol=1e-4)
    for name, value in cpu["param_abs_sums"].items():
        np.testing.assert_allclose(gpu["param_abs_sums"][name], value, rtol=1e-4, err_msg=name)


def test_auto_shard_picks_torch_and_every_gpu():
    out = _run({"GT_AUTO_SHARD": "1"}, steps=1, batch=2 * GPUS)
    assert out["engine"] == "torch"
    assert out["mesh"] == f"{GPUS} device(s) ({', '.join(f'cuda:{i}' for i in range(GPUS))})"


@pytest.mark.skipif(GPUS < 2, reason="needs at least 2 GPUs")
def test_all_gpus_train_as_one_gpu():
    batch = 4 * GPUS
    sharded = _run({"GT_AUTO_SHARD": "1"}, steps=5, batch=batch)
    single = _run({"GT_BACKEND": "torch"}, steps=5, batch=batch)
    np.testing.assert_allclose(sharded["losses"], single["losses"], rtol=1e-4)
    for name, value in single["param_abs_sums"].items():
        np.testing.assert_allclose(sharded["param_abs_sums"][name], value, rtol=1e-4, err_msg=name)


def test_a_training_step_never_waits_for_the_gpu():
    """torch's sync debug mode raises on .item(), .cpu(), a boolean mask, ...: none in a step."""
    out = _run({"GT_AUTO_SHARD": "1"}, steps=4, batch=2 * GPUS, no_sync=True)
    assert out["losses"][-1] < out["losses"][0]


def test_bfloat16_on_a_gpu():
    low = _run({"GT_BACKEND": "torch"}, steps=5, autocast="bfloat16")
    full = _run({"GT_BACKEND": "torch"}, steps=5)
    assert low["losses"][-1] < 0.5 * low["losses"][0]
    np.testing.assert_allclose(low["losses"][0], full["losses"][0], rtol=2e-2)


def test_train_py_on_every_gpu():
    base = {k: v for k, v in os.environ.items() if not k.startswith("GT_")}
    done = subprocess.run([sys.executable, "train.py", "--epochs", "2", "--samples", "120", "--no-progress"],
                          cwd=ROOT, env=base, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith(f"Devices: {GPUS} device(s) (cuda:0") and "engine torch" in first
