"""torch.nn.parallel's names: ``DataParallel`` (here) and ``DistributedDataParallel``
(gt.distributed's, attached to this module by the package face, gt/__init__.py, since
distributed sits a layer above nn).

``DataParallel(model)`` in torch copies the model to every GPU each step and splits the batch
between them. gt spreads a batch over the local devices itself (``GT_AUTO_SHARD=1``, DESIGN.md),
so the wrapper's forward is the wrapped module's: the same values, and the same spread that the
settings ask for, with torch's interface (``module``, ``device_ids``, ``output_device``, ``dim``,
state dict keys under ``module.``). As torch's, without CUDA it keeps the module on the CPU and
``device_ids`` is empty."""

from gt.backend import B
from gt.nn.module import Module


class DataParallel(Module):
    """``model = nn.DataParallel(model)``: torch's wrapper; gt's own sharding does the splitting
    (see the module docstring). ``dim`` must be 0 (gt splits batches along their first axis)."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel wraps a gt.nn.Module, got {type(module).__name__}")
        if dim != 0:
            raise ValueError(f"DataParallel: gt splits a batch along its first axis only (dim=0), got dim={dim!r}")
        self.module, self.dim = module, dim
        count = B.cuda_device_count()
        if count == 0:
            self.device_ids, self.output_device = [], None
            return
        ids = list(range(count)) if device_ids is None else [_index(d) for d in device_ids]
        for d in ids:
            if not 0 <= d < count:
                raise ValueError(f"DataParallel: device id {d} is not one of this process's {count} CUDA devices")
        self.device_ids = ids
        self.output_device = ids[0] if output_device is None else _index(output_device)

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def _index(d):
    """A device id, an int or a CUDA device (``"cuda:1"``, a gt or torch device), as an int."""
    if isinstance(d, int) and not isinstance(d, bool):
        return d
    index = getattr(d, "index", None)
    if index is None and isinstance(d, str) and ":" in d:
        index = int(d.rsplit(":", 1)[1])
    if not isinstance(index, int):
        raise TypeError(f"DataParallel: expected a CUDA device id (an int or 'cuda:i'), got {d!r}")
    return index
