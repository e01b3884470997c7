"""GT_BACKEND=auto: the faster engine for the machine, and the reason it gives."""

import importlib.util
import os
import subprocess
import sys

import pytest

import gt.backend as backend
from gt import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def machine(monkeypatch):
    def make(vendor, flags, torch=True, cuda=False):
        real = importlib.util.find_spec
        monkeypatch.setattr(backend.importlib.util, "find_spec",
                            lambda name, *a: (object() if torch else None) if name == "torch" else real(name, *a))
        monkeypatch.setattr(backend, "_cpu_flags", lambda: (set(flags), vendor))
        monkeypatch.setattr(backend, "_cuda_usable", lambda: cuda)
    return make


@pytest.mark.parametrize("vendor, flags, torch, cuda, expected", [
    ("GenuineIntel", {"avx2", "avx512f"}, True, False, "torch"),     # MKL/oneDNN beat OpenBLAS there
    ("AuthenticAMD", {"avx2", "avx512f"}, True, False, "numpy"),     # Zen 4 has AVX-512: numpy measured faster
    ("AuthenticAMD", {"avx2"}, True, False, "numpy"),
    ("GenuineIntel", {"avx2"}, True, False, "numpy"),
    ("GenuineIntel", {"avx512f"}, False, False, "numpy"),            # torch missing: numpy, whatever the CPU
    ("AuthenticAMD", {"avx2"}, True, True, "torch"),                 # GPUs
])
def test_auto_picks_the_faster_engine_and_says_why(machine, vendor, flags, torch, cuda, expected):
    machine(vendor, flags, torch, cuda)
    name, reason = backend.choose_automatic()
    assert name == expected and reason


def test_auto_is_an_accepted_backend_name(monkeypatch):
    monkeypatch.setenv("GT_BACKEND", "AUTO")
    assert config.backend_name() == "auto"


@pytest.mark.first_pass
def test_gt_verbose_tells_which_engine_auto_chose():
    env = dict(os.environ, GT_BACKEND="auto", GT_VERBOSE="1")
    env.pop("GT_DEVICES", None)
    done = subprocess.run([sys.executable, "-c", "import gt; gt.zeros(1); print(gt.get_backend())"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected, reason = backend.choose_automatic()
    assert done.stdout.strip() == expected
    assert f"gt backend auto: engine {expected} ({reason})" in done.stderr
