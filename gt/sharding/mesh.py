"""The device mesh: the devices gt computes on, chosen once, before the first tensor.

- Default: one device: the first GPU on the torch engine where CUDA is available, else the CPU
  (nothing is sharded).
- ``GT_AUTO_SHARD=1``: every local accelerator, ``cuda:0..n-1`` on the torch engine (which
  ``GT_AUTO_SHARD=1`` picks by itself on a machine with GPUs). The numpy engine has none, so it
  stays at one CPU device unless virtual devices are asked for. Under torchrun with several
  processes on one machine, the GPUs are divided between them (LOCAL_RANK, LOCAL_WORLD_SIZE).
- ``GT_DEVICES=N`` or ``gt.gpu_workers(N)``: N virtual CPU devices. Each holds its own arrays
  (its shards), so every sharding path runs, and is tested, on a machine without a GPU.
- ``GT_AUTO_SHARD=0`` wins over everything: one device.

Device handling lives here only; the rest of gt asks ``get_mesh()``.
"""

import contextlib
import os
import sys

from gt import backend, config
from gt.backend import B


class Mesh:
    """``size`` devices of one ``kind``: "cpu" (virtual devices sharing the host's memory, so a
    replicated tensor is stored once for all of them: ``shared_memory``), or "cuda" (GPUs
    ``cuda:first`` to ``cuda:first+size-1``, each holding its own copy of replicated tensors;
    device 0 of the mesh is the *home* device, where replicated tensors and parameters live)."""

    __slots__ = ("size", "kind", "virtual", "first", "copies")

    def __init__(self, size, kind="cpu", virtual=False, first=0, copies=False):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"a mesh needs a positive number of devices, got {size!r}")
        self.size, self.kind, self.virtual, self.first = size, kind, virtual, first
        self.copies = copies   # virtual CPU devices that move data as separate GPUs would (tests)

    @property
    def shared_memory(self):
        return self.kind == "cpu" and not self.copies

    @property
    def devices(self):
        """The engine's device names: ``"cpu"`` for every virtual device, ``"cuda:i"`` for GPUs."""
        if self.kind == "cpu":
            return ["cpu"] * self.size
        return [f"{self.kind}:{self.first + d}" for d in range(self.size)]

    @property
    def home(self):
        return self.devices[0]

    def describe(self):
        what = f"{self.kind}, virtual" if self.virtual else self.kind
        if self.kind != "cpu":
            what = ", ".join(self.devices)
        return f"{self.size} device(s) ({what})"

    def __repr__(self):
        return f"Mesh({self.describe()})"


_mesh = None          # the mesh in use, fixed by the first call of get_mesh()
_requested = None     # gt.gpu_workers(N) before that


def get_mesh():
    """The mesh in use; the first call decides it (from gpu_workers(), GT_DEVICES, GT_AUTO_SHARD)."""
    global _mesh
    if _mesh is None:
        _mesh = _resolve(B.cuda_device_count())
        B.device = _mesh.home          # where new arrays go, outside per-device work
        if config.verbose():
            doing = "sharding batch axis" if _mesh.size > 1 else "not sharding"
            print(f"GT_AUTO_SHARD: Detected {_mesh.describe()}, engine {B.name}, {doing}", file=sys.stderr)
    return _mesh


def _home_device():
    return get_mesh().home


def _forget():
    """The engine changed (``gt.set_backend``): the next ``get_mesh()`` decides again, for its devices."""
    global _mesh
    _mesh = None


# The backend asks the mesh where the first array goes, and tells it when the engine changes,
# through these hooks: the backend sits below the mesh and never imports it.
backend.set_device_hooks(home_device=_home_device, engine_changed=_forget)


def _resolve(gpus):
    auto = config.auto_shard()
    n = _requested if _requested is not None else config.devices()
    if n is not None and auto is not False:
        return Mesh(n, "cpu", virtual=True)
    if not gpus:
        return Mesh(1)  # no GPU (or the numpy engine): the CPU is the one local device
    first, count = _local_gpus(gpus)
    return Mesh(count if auto else 1, "cuda", first=first)


def _local_gpus(gpus):
    """(first GPU, how many) of this process: all of them, or its share when torchrun starts
    several processes on this machine."""
    procs = int(os.environ.get("LOCAL_WORLD_SIZE") or 1)
    rank = int(os.environ.get("LOCAL_RANK") or 0)
    if procs <= 1:
        return 0, gpus
    if procs > gpus:
        raise RuntimeError(f"{procs} processes on this machine (LOCAL_WORLD_SIZE) but only {gpus} GPU(s): "
                           f"start at most {gpus} per machine (torchrun --nproc_per_node={gpus})")
    share = gpus // procs
    return rank * share, share


def gpu_workers(n):
    """Shard over ``n`` devices: call before the first tensor is created. Without GPUs (the numpy
    engine) these are ``n`` virtual CPU devices, each holding its own shards.

        >>> import gt
        >>> gt.gpu_workers(4)
        >>> gt.randn(8, 3).placement
        Shard(0)
    """
    global _requested
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"gpu_workers(n): n must be a positive int, got {n!r}")
    if _mesh is not None:
        if _mesh.size == n:
            return
        raise RuntimeError(
            f"gt.gpu_workers({n}) called after the mesh was fixed at {_mesh.describe()} by the first tensor; "
            "call it before creating any tensor (or set GT_DEVICES before starting Python)"
        )
    _requested = n


@contextlib.contextmanager
def use_mesh(n, copies=False):
    """Run a block on ``n`` virtual CPU devices, then restore the previous mesh. For tests that
    compare 1, 2, 3 and 4 devices in one process; tensors made inside must not be used outside.
    ``copies=True``: the devices do not share memory, so data takes the paths it takes between
    GPUs (replicas broadcast, results brought to the home device, per-device allocation)."""
    global _mesh
    prev, prev_device = get_mesh(), B.device
    _mesh = Mesh(n, "cpu", virtual=n > 1, copies=copies)
    B.device = "cpu"
    try:
        yield _mesh
    finally:
        _mesh, B.device = prev, prev_device
