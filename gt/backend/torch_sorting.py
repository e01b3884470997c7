"""Sorting, scans and sampling of the torch engine (mixed into ``TorchEngine``), with the numpy
engine's results: stable sorts (equal values keep the order of their positions), int64 sums of
integers, and multinomial draws from the shared host generator (the same samples for one seed
on every engine and device; the probabilities travel to the host and the indices back).
"""

import torch

from gt.backend.dim_order import is_dense

# torch's unsigned dtypes wider than uint8, which its gather kernel has not, and the signed dtype of each width
_SIGNED = {torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}


class TorchSorting:
    # a full sort is the quicker below 1024 positions or above n/16 of them kept (2-core EPYC,
    # (8, n) float32: n=512 top-5 0.11 ms selected against 0.05 sorted, n=1024 0.15 against 0.16,
    # n=32000 top-5 2.7 against 10.0 ms; unmeasured on a GPU)
    TOPK_SELECT_MIN = 1024

    def argsort(self, x, axis, descending=False):
        return torch.sort(x, dim=axis, descending=descending, stable=True).indices

    def topk_indices(self, x, k, axis, largest=True):
        """The first ``k`` positions of ``argsort(x, axis, descending=largest)``, in that order.
        ``torch.topk`` finds the k-th value (its order among equal values is not specified); a
        second ``topk``, over keys that rank every position ahead of that value before every
        position equal to it and earlier positions first, picks the same ``k`` positions as the
        stable sort; only those are then sorted."""
        n = x.shape[axis]
        if k == 0 or n < self.TOPK_SELECT_MIN or 16 * k > n or x.dtype in (torch.bool, torch.complex64,
                                                                             torch.complex128):
            return self.argsort(x, axis, descending=largest).narrow(axis, 0, k).contiguous()   # torch's: row-major
        kth = torch.topk(x, k, dim=axis, largest=largest, sorted=True).values.narrow(axis, k - 1, 1)
        if x.is_floating_point():
            nan, kth_nan = torch.isnan(x), torch.isnan(kth)
            ahead = (x > kth) | (nan & ~kth_nan) if largest else (x < kth) | (~nan & kth_nan)
            tied = (x == kth) | (nan & kth_nan)
        else:
            ahead, tied = (x > kth) if largest else (x < kth), x == kth
        shape = [1] * x.ndim
        shape[axis] = n
        rank = n - torch.arange(n, device=x.device).view(shape)                 # earlier: larger
        keys = torch.where(ahead, rank + n, torch.where(tied, rank, 0))
        top = torch.topk(keys, k, dim=axis, sorted=True).values                  # unique keys: no ties
        picked = torch.where(top > n, 2 * n - top, n - top)
        order = self.argsort(torch.take_along_dim(x, picked, dim=axis), axis, descending=largest)
        return torch.take_along_dim(picked, order, dim=axis)

    def cumsum(self, x, axis):
        # torch already sums bools and integers in int64
        return torch.cumsum(x, dim=axis)

    def dense_like(self, out, x):
        # torch's own argsort lays its indices out so already; a gather at them (a sort's values) is
        # row-major: copied into the indices' (dense) layout
        if tuple(out.stride()) == tuple(x.stride()) or not is_dense(tuple(x.shape), tuple(x.stride())):
            return out
        return torch.empty_like(x, dtype=out.dtype).copy_(out)

    def take_along_axis(self, x, indices, axis):
        signed = _SIGNED.get(x.dtype)
        if signed is not None:      # torch gathers no uint16/32/64: their bits, as the signed dtype of their width
            return torch.take_along_dim(x.view(signed), indices.to(x.device), dim=axis).view(x.dtype)
        return torch.take_along_dim(x, indices.to(x.device), dim=axis)

    def put_along_axis(self, target, indices, values, axis):
        values = self._tensor(values, target).to(target.dtype)
        target.scatter_(axis, indices.to(target.device), torch.broadcast_to(values, indices.shape))
        return target

    def multinomial(self, probs, num_samples, replacement):
        host = self._host.multinomial(self.to_numpy(probs), num_samples, replacement)
        return self._drawn(host, None)
