"""Data parallelism across processes and machines, on torch.distributed (NCCL or gloo).

One process per machine (or per GPU) runs the same script; each drives its local mesh (the
devices ``gt.get_mesh()`` names) and takes a contiguous slice of every global batch. After
``loss.backward()``, ``all_reduce_grads`` sums the gradients over the processes, so every
process holds the gradient of the whole batch and takes the same optimizer step: parameters
stay identical everywhere, as in PyTorch's DistributedDataParallel. The transport is
torch.distributed's (``init_process_group``): NCCL when gt's engine is torch on CUDA GPUs,
gloo otherwise. Launch with ``torchrun``, which sets the environment ``init()`` reads:

    torchrun --nproc_per_node=2 --master_addr=127.0.0.1 --master_port=29500 train.py ...
    # two machines, one process each: on machine 0 (HOST0) and machine 1, node_rank 0 and 1
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=1 --master_addr=HOST0 --master_port=29500 train.py ...

    import gt.distributed as dist

    dist.init()                                    # RANK, WORLD_SIZE, ... (a world of 1 without them)
    for batch in batches:                          # the same global batches in every process
        lo, hi = dist.split_range(len(batch))      # this process's contiguous slice of the batch
        optimizer.zero_grad()
        loss_fn(model(batch.x[lo:hi]), batch.y[lo:hi]).backward()   # the mean over the slice
        dist.all_reduce_grads(model.parameters(), weight=(hi - lo) / len(batch))  # the batch mean's
        optimizer.step()
    dist.destroy()

Without the torchrun environment (``WORLD_SIZE`` unset or 1) everything here is a cheap no-op on
a world of one process, and torch is never imported: ``import gt`` stays fast and torch optional.
"""

import contextlib
import datetime
import os
from collections import namedtuple

from gt import autograd
from gt.backend import TORCH_INSTALL, B
from gt.nn.module import Module
from gt.sharding.layout import Placed, materialize
from gt.sharding.placement import Partial
from gt.tensor import Tensor

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
BUCKET_CAP_MB = 25   # gradients are all-reduced in buckets of about this size (DDP's default)

World = namedtuple("World", "rank world_size local_rank backend")
World.__doc__ = """What ``init()`` set up: this process's ``rank`` in [0, world_size), ``world_size``
processes in all, ``local_rank`` (its index on this machine) and the torch.distributed
``backend`` ("nccl", "gloo"; None for a world of one process)."""

_world = None          # the World set up by init(); None before init() and after destroy()
_owns_group = False    # whether init() created torch's process group (destroy() then ends it)


# ---- set-up -------------------------------------------------------------------------------------
def _env_int(name, value, low):
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or n < low:
        raise ValueError(f"gt.distributed: {name}={value!r} in the environment: expected an integer >= {low}")
    return n


def read_env(environ=None):
    """``(rank, world_size, local_rank)`` from the torchrun environment (RANK, WORLD_SIZE,
    LOCAL_RANK); ``(0, 1, 0)`` when WORLD_SIZE is unset. Raises ValueError naming the variable
    and its value when the environment is inconsistent (RANK without WORLD_SIZE, RANK >=
    WORLD_SIZE, a non-integer, MASTER_ADDR or MASTER_PORT missing for more than one process)."""
    env = os.environ if environ is None else environ
    get = lambda name: (env.get(name) or "").strip() or None  # noqa: E731
    rank, world, local = get("RANK"), get("WORLD_SIZE"), get("LOCAL_RANK")
    if world is None:
        if rank is not None and rank != "0":
            raise ValueError(f"gt.distributed: RANK={rank!r} is set but WORLD_SIZE is not: launch with torchrun, "
                             "or set both (and MASTER_ADDR, MASTER_PORT)")
        return 0, 1, 0
    world = _env_int("WORLD_SIZE", world, 1)
    if rank is None:
        if world > 1:
            raise ValueError(f"gt.distributed: WORLD_SIZE={world} is set but RANK is not: launch with torchrun, "
                             "or give every process its RANK in [0, WORLD_SIZE)")
        rank = "0"
    rank = _env_int("RANK", rank, 0)
    if rank >= world:
        raise ValueError(f"gt.distributed: RANK={rank} is not below WORLD_SIZE={world} (ranks are 0..{world - 1})")
    local = rank if local is None else _env_int("LOCAL_RANK", local, 0)
    if world > 1:
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if get(name) is None:
                raise ValueError(f"gt.distributed: WORLD_SIZE={world} but {name} is not set: launch with torchrun "
                                 "--master_addr=HOST --master_port=PORT, or set it")
        port = _env_int("MASTER_PORT", get("MASTER_PORT"), 1)
        if port > 65535:
            raise ValueError(f"gt.distributed: MASTER_PORT={port} is not a port number (1..65535)")
    return rank, world, local


def _torch():
    # torch is optional: imported only for a world of more than one process
    try:
        import torch
        import torch.distributed as tdist
    except ImportError:
        raise ImportError("gt.distributed: more than one process (WORLD_SIZE > 1) runs on torch.distributed, "
                          f"and PyTorch is not installed: {TORCH_INSTALL}") from None
    if not tdist.is_available():
        raise ImportError("gt.distributed: this PyTorch build has no torch.distributed support")
    return torch, tdist


def default_backend():
    """"nccl" when gt's engine is torch and CUDA GPUs are present, else "gloo" (imports torch)."""
    torch, _ = _torch()
    return "nccl" if B.name == "torch" and torch.cuda.is_available() else "gloo"


def init(backend=None, timeout_s=None):
    """Join the process group the torchrun environment describes; returns the ``World``.

    With WORLD_SIZE unset or 1 this does nothing heavy (torch is not imported) and returns a
    world of one process. Otherwise it calls ``torch.distributed.init_process_group`` (env://:
    MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE) with ``backend`` (default: ``default_backend()``;
    with NCCL the process's GPU is ``LOCAL_RANK``) and ``timeout_s`` seconds for each collective
    (default: torch's). Idempotent: later calls return the same ``World``. A process group that
    the caller created already with torch.distributed is adopted as it is.
    Raises ValueError for an inconsistent environment, ImportError when torch is missing.
    """
    global _world, _owns_group
    if _world is not None:
        return _world
    rank, world, local = read_env()
    if world == 1:
        _world = World(0, 1, local, None)
        return _world
    torch, tdist = _torch()
    if tdist.is_initialized():
        _world = World(tdist.get_rank(), tdist.get_world_size(), local, tdist.get_backend())
        return _world
    backend = (backend or default_backend()).lower()
    if backend == "nccl":
        torch.cuda.set_device(local % max(1, torch.cuda.device_count()))
    kw = {"timeout": datetime.timedelta(seconds=timeout_s)} if timeout_s else {}
    tdist.init_process_group(backend, init_method="env://", rank=rank, world_size=world, **kw)
    _world, _owns_group = World(rank, world, local, backend), True
    return _world


def is_initialized():
    """Whether ``init()`` has run (in a world of one process too) and ``destroy()`` has not."""
    return _world is not None


def get_rank():
    """This process's rank in [0, world size): 0 before ``init()`` and in a one-process world."""
    return _world.rank if _world is not None else 0


def get_world_size():
    """The number of processes: 1 before ``init()`` and without the torchrun environment."""
    return _world.world_size if _world is not None else 1


def get_backend():
    """The torch.distributed backend in use ("nccl", "gloo"), or None in a one-process world."""
    return _world.backend if _world is not None else None


def is_main_process():
    """True on rank 0, the process that prints and writes files (True in a one-process world)."""
    return get_rank() == 0


def barrier():
    """Wait until every process gets here (no-op in a one-process world)."""
    if get_world_size() > 1:
        _torch()[1].barrier()


def destroy():
    """Leave the process group (``torch.distributed.destroy_process_group``); ``init()`` may run again."""
    global _world, _owns_group
    if _world is not None and _world.world_size > 1 and _owns_group:
        tdist = _torch()[1]
        if tdist.is_initialized():
            tdist.destroy_process_group()
    _world, _owns_group = None, False


# ---- splitting work ------------------------------------------------------------------------------
def split_range(n, rank=None, world=None):
    """``(start, stop)``: the contiguous part of ``n`` items that ``rank`` (default: this process)
    of ``world`` processes takes. Split as ``numpy.array_split`` does: the first ``n % world``
    ranks take one more item; a rank may get none (start == stop) when n < world.

        >>> [split_range(7, r, 2) for r in range(2)]
        [(0, 4), (4, 7)]
        >>> [split_range(2, r, 3) for r in range(3)]
        [(0, 1), (1, 2), (2, 2)]
    """
    world = get_world_size() if world is None else world
    rank = get_rank() if rank is None else rank
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"split_range(n): n must be an integer >= 0, got {n!r}")
    if not (isinstance(world, int) and world >= 1 and isinstance(rank, int) and 0 <= rank < world):
        raise ValueError(f"split_range: need 0 <= rank < world, got rank={rank!r}, world={world!r}")
    q, r = divmod(n, world)
    start = rank * q + min(rank, r)
    return start, start + q + (rank < r)


# ---- collectives -------------------------------------------------------------------------------
def _comm_device(torch):
    """Where collective buffers live: the process's GPU for NCCL, host memory otherwise."""
    if get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


_OPS = ("sum", "max", "min")


def all_reduce(values, op="sum"):
    """``values`` (a number or a sequence of numbers) reduced over all processes with ``op``
    ("sum", "max" or "min"), in float64, one collective: a float, or a list of floats. Every
    process must call it with the same number of values. In a one-process world: the values."""
    if op not in _OPS:
        raise ValueError(f"all_reduce(op={op!r}): expected one of {', '.join(map(repr, _OPS))}")
    scalar = not isinstance(values, (list, tuple))
    floats = [float(values)] if scalar else [float(v) for v in values]
    if get_world_size() > 1:
        torch, tdist = _torch()
        buf = torch.tensor(floats, dtype=torch.float64, device=_comm_device(torch))
        tdist.all_reduce(buf, op={"sum": tdist.ReduceOp.SUM, "max": tdist.ReduceOp.MAX,
                                  "min": tdist.ReduceOp.MIN}[op])
        floats = buf.cpu().tolist()
    return floats[0] if scalar else floats


def all_reduce_sum(value):
    """The sum of ``value`` (a number, e.g. a loss or a count of correct answers, or a sequence of
    numbers: one collective for all) over all processes, as float(s); ``value`` itself in a
    one-process world. ``all_reduce_sum(3) -> 6.0`` on each of 2 processes."""
    return all_reduce(value, "sum")


def _grad_arrays(p, create):
    """The engine arrays holding ``p.grad`` (one per shard of a sharded parameter); zeros are
    made for a missing gradient when ``create``, else None is returned for it."""
    g = p.grad
    if g is None:
        if not create:
            return None
        if p._placed is None:
            p.grad = Tensor._wrap(B.zeros(p.shape, p.dtype))
        else:
            shards = [B.zeros(tuple(s.shape), p.dtype) for s in p._placed.shards]
            p.grad = Tensor._from_value(Placed(shards, p._placed.placement, p.shape))
        g = p.grad
    if g._placed is not None and isinstance(g._placed.placement, Partial):
        g._data = materialize(g._placed)   # per-device partial sums: one array first
    return [g._array] if g._placed is None else list(g._placed.shards)


def _param_arrays(p):
    return [p._array] if p._placed is None else list(p._placed.shards)


def _buckets(params, cap_bytes):
    """Parameters grouped by dtype into buckets of at most ``cap_bytes`` (a larger parameter
    gets a bucket of its own), in parameter order: ``[(torch dtype, [(param, numels)])]``.
    Decided by the parameters alone (not by which have gradients), so every process makes the
    same buckets and issues the same collectives."""
    buckets, open_ = [], {}
    for p in params:
        views = [B.as_torch(a) for a in _param_arrays(p)]
        dtype = views[0].dtype
        numels = [v.numel() for v in views]
        size = sum(numels) * views[0].element_size()
        bucket = open_.get(dtype)
        if bucket is None or (bucket[2] and bucket[2] + size > cap_bytes):
            bucket = open_[dtype] = [dtype, [], 0]
            buckets.append(bucket)
        bucket[1].append((p, numels))
        bucket[2] += size
    return [(dtype, members) for dtype, members, _ in buckets]


def all_reduce_grads(params, weight=None, bucket_cap_mb=BUCKET_CAP_MB):
    """Sum ``weight * p.grad`` over all processes into ``p.grad``, in place, for every parameter
    in ``params`` that requires grad (what DistributedDataParallel does after backward).

    ``weight`` (default ``1 / world_size``: the mean of the processes' gradients) scales this
    process's gradient before the sum. Weighting each process by its share of the global batch,
    ``weight = local_batch / global_batch``, gives exactly the gradient of the global-batch mean
    loss, even when the batch does not split evenly. Gradients of one dtype travel flattened in
    buckets of about ``bucket_cap_mb`` MB, one all_reduce each. A parameter whose ``.grad`` is None
    here counts as zeros; it gets a gradient when any process has one, else stays None
    everywhere, so all processes end with the same gradients. In a one-process world: the
    gradients scaled by ``weight`` (nothing at all for the default weight 1).
    Every process must call it with the same parameters (the same model), in the same order.
    """
    params = list({id(p): p for p in params if p.requires_grad}.values())
    world = get_world_size()
    weight = 1.0 / world if weight is None else float(weight)
    if world == 1:
        if weight != 1.0:
            for p in params:
                for arr in _grad_arrays(p, create=False) or ():
                    arr *= weight
        return
    torch, tdist = _torch()
    device = _comm_device(torch)
    for dtype, members in _buckets(params, bucket_cap_mb * 2**20):
        total = sum(sum(numels) for _, numels in members)
        # the gradients, then one flag per parameter: 1 where this process has its gradient
        buf = torch.zeros(total + len(members), dtype=dtype, device=device)
        at = 0
        for i, (p, numels) in enumerate(members):
            arrays = _grad_arrays(p, create=False)
            if arrays is not None:
                for arr, k in zip(arrays, numels):
                    buf[at:at + k].copy_(B.as_torch(arr).reshape(-1))
                    at += k
                buf[total + i] = 1
            else:
                at += sum(numels)
        if weight != 1.0:
            buf[:total].mul_(weight)
        tdist.all_reduce(buf)
        flags = buf[total:].tolist()
        at = 0
        for (p, numels), flag in zip(members, flags):
            if flag > 0:   # some process had this gradient: all now hold the sum
                for arr, k in zip(_grad_arrays(p, create=True), numels):
                    view = B.as_torch(arr)
                    view.copy_(buf[at:at + k].view(view.shape))
                    at += k
            else:
                at += sum(numels)


# ---- the module wrapper -------------------------------------------------------------------------
class DistributedDataParallel(Module):
    """``model = DistributedDataParallel(model)``: data parallel training across processes, as
    ``torch.nn.parallel.DistributedDataParallel``. The forward is the wrapped module's; the
    ``backward()`` that follows it ends with the gradients of the module's parameters averaged
    over all processes (``all_reduce_grads``, in buckets), so every process takes the same
    optimizer step. Each process feeds its own part of the global batch (``split_range``).

    Each process weighs ``1 / world_size``, as in torch: that is exactly the global batch's mean
    loss when every process has as many samples; with uneven parts call
    ``all_reduce_grads(params, weight=local / global)`` after ``backward()`` instead (train.py
    does). ``no_sync()``: forwards inside it leave their gradients local (gradient
    accumulation); the next forward outside it syncs everything accumulated. ``module`` is the
    wrapped model and state_dict keys carry torch's ``module.`` prefix. In a one-process world it
    changes nothing.
    """

    def __init__(self, module, bucket_cap_mb=BUCKET_CAP_MB):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a gt.nn.Module, got {type(module).__name__}")
        self.module = module
        self.bucket_cap_mb = bucket_cap_mb
        self._sync = True

    def forward(self, *args, **kwargs):
        out = self.module(*args, **kwargs)
        if self._sync and autograd.is_grad_enabled():
            autograd.call_after_backward(self._reduce_grads)
        return out

    def _reduce_grads(self):
        all_reduce_grads(self.module.parameters(), bucket_cap_mb=self.bucket_cap_mb)

    @contextlib.contextmanager
    def no_sync(self):
        """Forwards inside the block keep their gradients in this process (no communication)."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous


DDP = DistributedDataParallel
