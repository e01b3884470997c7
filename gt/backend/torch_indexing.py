"""Indexing of the torch engine with numpy's rules (negative slice steps, an int beside an index
array, scatter-add with repeated indices). Mixed into ``TorchEngine``.
"""

import torch


class TorchIndexing:
    def is_bool(self, arr):
        return arr.dtype == torch.bool

    def getitem(self, x, index):
        """``x[index]`` with numpy's rules, negative slice steps included (torch has none: the
        axes they walk backwards are flipped first)."""
        flips, index = _numpy_index(x, index)
        return (torch.flip(x, flips) if flips else x)[index]

    def setitem(self, x, index, value):
        if type(value) is int and value >= 2 ** 63:     # torch reads a Python int through int64 (uint64's top half)
            value = torch.tensor(value, dtype=torch.uint64).to(x.dtype)
        flips, index = _numpy_index(x, index)
        if not flips:
            x[index] = value
            return
        flipped = torch.flip(x, flips)
        flipped[index] = value
        x.copy_(torch.flip(flipped, flips))

    def index_add(self, target, index, values):
        """``target[index] += values`` where repeated integer indices add up (a scatter-add)."""
        flips, index = _numpy_index(target, index)
        if flips:
            flipped = self.index_add(torch.flip(target, flips), index, values)
            target.copy_(torch.flip(flipped, flips))
            return target
        if not _has_int_array(index):
            target[index] += values
            return target
        values = self._tensor(values, target).to(target.dtype)
        if isinstance(index, torch.Tensor) and index.dtype in (torch.int64, torch.int32) and target.ndim >= 1:
            # rows picked by one integer array (an embedding's gradient): one index_add_ over rows
            rows = index.reshape(-1).to(torch.int64)
            rows = torch.where(rows < 0, rows + target.shape[0], rows)     # numpy's -1 is the last row
            shape = tuple(index.shape) + tuple(target.shape[1:])
            if tuple(values.shape) != shape:
                values = torch.broadcast_to(values, shape)
            target.index_add_(0, rows, values.reshape((rows.numel(),) + tuple(target.shape[1:])))
            return target
        # positions of the selected elements in target's flat storage, for any mix of index kinds
        flat = torch.arange(target.numel(), device=target.device).reshape(target.shape)[index]
        values = torch.broadcast_to(values, flat.shape)
        if target.is_contiguous():
            target.view(-1).index_add_(0, flat.reshape(-1), values.reshape(-1))
        else:
            dense = target.contiguous()
            dense.view(-1).index_add_(0, flat.reshape(-1), values.reshape(-1))
            target.copy_(dense)
        return target


def _numpy_index(x, index):
    """``index`` made to select what numpy would, as (axes to flip first, index for torch).

    - Negative slice steps (``x[::-1]``), which torch lacks: those axes are flipped and the
      slice walks the flipped axis forwards.
    - An int next to an index array counts as an array index in numpy (so ``x[1, :, [0, 2]]``
      puts the indexed axis first); torch treats it as a plain int. It becomes a 1-element
      array, which broadcasts against the others to numpy's shape.
    """
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(p, torch.Tensor) and p.device != x.device for p in parts):
        # an index array follows the array it indexes (one device's block of a sharded tensor
        # is indexed with the index its op was given, made on the home device)
        parts = tuple(p.to(x.device) if isinstance(p, torch.Tensor) else p for p in parts)
        index = parts if isinstance(index, tuple) else parts[0]
    if len(parts) > 1 and any(isinstance(p, torch.Tensor) and p.ndim >= 1 and p.dtype != torch.bool
                              for p in parts) and any(_is_int(p) for p in parts):
        dev = next(p.device for p in parts if isinstance(p, torch.Tensor))
        parts = tuple(torch.full((1,), p, dtype=torch.int64, device=dev) if _is_int(p) else p for p in parts)
        index = parts
    if not any(isinstance(p, slice) and p.step is not None and p.step < 0 for p in parts):
        return [], index
    used = sum(0 if p is None or p is Ellipsis else
               (p.ndim if isinstance(p, torch.Tensor) and p.dtype == torch.bool else 1) for p in parts)
    flips, out, dim = [], [], 0
    for p in parts:
        if p is Ellipsis:
            dim += x.ndim - used
        elif p is None:
            pass
        elif isinstance(p, slice) and p.step is not None and p.step < 0:
            n = x.shape[dim]
            start, stop, step = p.indices(n)
            count = len(range(start, stop, step))
            first = n - 1 - start                   # where `start` lands in the flipped axis
            p = slice(first, first + count * -step, -step) if count else slice(0, 0)
            flips.append(dim)
            dim += 1
        else:
            dim += p.ndim if isinstance(p, torch.Tensor) and p.dtype == torch.bool else 1
        out.append(p)
    return flips, tuple(out)


def _is_int(p):
    return isinstance(p, int) and not isinstance(p, bool)


def _has_int_array(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, torch.Tensor) and not p.is_floating_point() and p.dtype != torch.bool for p in parts)

