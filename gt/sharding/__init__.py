"""Sharding tensors over the devices of one machine (``GT_AUTO_SHARD``, ``GT_DEVICES``).

    >>> import gt
    >>> gt.gpu_workers(4)                 # or GT_DEVICES=4; on GPUs: GT_AUTO_SHARD=1
    >>> x = gt.randn(16, 8)               # data: Shard(0), 4 rows per device
    >>> w = gt.randn(8, 3, requires_grad=True)   # a parameter: Replicate()
    >>> (x @ w).sum().backward()          # w.grad: one all-reduce, then replicated

Rooms: ``mesh`` (which devices), ``placement`` (Shard/Replicate/Partial), ``collectives``
(counted moves between devices) and ``layout`` (values spread over the mesh). How each op
propagates placements, and runs per device, sits above the ops, in the tensor layer
(gt/tensor/rules.py, gt/tensor/dispatch.py).
"""

from gt.sharding.collectives import count_collectives
from gt.sharding.mesh import Mesh, get_mesh, gpu_workers, use_mesh
from gt.sharding.placement import Partial, Replicate, Shard

__all__ = ["Mesh", "get_mesh", "gpu_workers", "use_mesh", "Shard", "Replicate", "Partial", "count_collectives"]
