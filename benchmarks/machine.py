"""The machine a figure was measured on, as the benchmarks and TEST_RESULTS.md name it."""

import os
import platform
import re

import numpy as np


def cpu_name():
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numpy_blas():
    """One line on numpy's BLAS: library, version, threading layer and thread count. From
    threadpoolctl where it is installed (what is loaded in this process), else from numpy's
    build configuration (what numpy was built against; the thread count is then unknown)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"
                 and "numpy" in (p.get("filepath") or "")]
        pools = pools or [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            p = pools[0]
            extra = f", {p['threading_layer']} threading" if p.get("threading_layer") else ""
            arch = f", {p['architecture']}" if p.get("architecture") else ""
            return (f"numpy {np.__version__}: {p['internal_api']} {p.get('version')}{arch}{extra}, "
                    f"{p['num_threads']} threads")
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name, version = blas.get("name"), blas.get("version")
    except (TypeError, KeyError, ValueError):
        name, version = "unknown", None
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    return (f"numpy {np.__version__}: {name} {version} (build configuration), {threads} threads "
            f"(pip install threadpoolctl for the loaded library)")


def torch_parallel():
    """One line on torch's CPU kernels: BLAS, oneDNN, the parallel backend and its threads."""
    import torch

    config = torch.__config__.show()
    parallel = torch.__config__.parallel_info()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    parts = [f"torch {torch.__version__}: BLAS {blas.group(1) if blas else 'unknown'}"]
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", config)
    if mkl:
        parts[0] += f" (MKL {mkl.group(1)})"
    dnn = re.search(r"(?:MKL-DNN|oneDNN) (v[\w.]+)", config)
    if torch.backends.mkldnn.is_available():
        parts.append(f"oneDNN {dnn.group(1) if dnn else ''}".rstrip())
    backend = re.search(r"ATen parallel backend: (\w+)", parallel)
    parts.append(f"{backend.group(1) if backend else 'unknown'} parallel backend")
    parts.append(f"{torch.get_num_threads()} intra-op threads, {torch.get_num_interop_threads()} inter-op")
    return ", ".join(parts)


def gt_products():
    """Which library runs the numpy engine's products (``GT_BLAS``: numpy's own BLAS, or MKL on
    Intel CPUs where the ``mkl`` package is installed), in words; None on the torch engine."""
    import gt
    from gt.backend import B

    if gt.get_backend() != "numpy":
        return None
    lib = B._library()
    if lib is None:
        return "numpy's matmul (its BLAS cannot be called directly here)"
    return f"{lib.name} ({'MKL, GT_BLAS' if lib.products else 'numpy' + chr(39) + 's own BLAS'})"

