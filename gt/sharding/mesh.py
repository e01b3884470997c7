"""The device mesh: the devices gt computes on, chosen once, before the first tensor.

- Default: one device, the CPU (nothing is sharded).
- ``GT_AUTO_SHARD=1``: every local accelerator. The numpy engine has none, so it stays at one
  CPU device unless virtual devices are asked for.
- ``GT_DEVICES=N`` or ``gt.gpu_workers(N)``: N virtual CPU devices. Each holds its own arrays
  (its shards), so every sharding path runs, and is tested, on a machine without a GPU.
- ``GT_AUTO_SHARD=0`` wins over everything: one device.

Device handling lives here only; the rest of gt asks ``get_mesh()``.
"""

import contextlib
import sys

from gt import config


class Mesh:
    """``size`` devices of one ``kind`` ("cpu"). ``virtual`` devices share the host's memory, so
    a replicated tensor is stored once for all of them (``shared_memory``)."""

    __slots__ = ("size", "kind", "virtual")

    def __init__(self, size, kind="cpu", virtual=False):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"a mesh needs a positive number of devices, got {size!r}")
        self.size, self.kind, self.virtual = size, kind, virtual

    @property
    def shared_memory(self):
        return self.kind == "cpu"

    @property
    def devices(self):
        return [f"{self.kind}:{d}" for d in range(self.size)]

    def describe(self):
        what = f"{self.kind}, virtual" if self.virtual else self.kind
        return f"{self.size} device(s) ({what})"

    def __repr__(self):
        return f"Mesh({self.describe()})"


_mesh = None          # the mesh in use, fixed by the first call of get_mesh()
_requested = None     # gt.gpu_workers(N) before that


def get_mesh():
    """The mesh in use; the first call decides it (from gpu_workers(), GT_DEVICES, GT_AUTO_SHARD)."""
    global _mesh
    if _mesh is None:
        _mesh = _resolve()
        if config.verbose():
            from gt.backend import B

            doing = "sharding batch axis" if _mesh.size > 1 else "not sharding"
            print(f"GT_AUTO_SHARD: Detected {_mesh.describe()}, engine {B.name}, {doing}", file=sys.stderr)
    return _mesh


def _resolve():
    auto = config.auto_shard()
    if auto is False:
        return Mesh(1)
    n = _requested if _requested is not None else config.devices()
    if n is not None:
        return Mesh(n, "cpu", virtual=True)
    return Mesh(1)  # GT_AUTO_SHARD=1 on the numpy engine: the CPU is the one local device


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
def use_mesh(n):
    """Run a block on ``n`` virtual CPU devices, then restore the previous mesh. For tests that
    compare 1, 2, 3 and 4 devices in one process; tensors made inside must not be used outside."""
    global _mesh
    prev = get_mesh()
    _mesh = Mesh(n, "cpu", virtual=n > 1)
    try:
        yield _mesh
    finally:
        _mesh = prev
