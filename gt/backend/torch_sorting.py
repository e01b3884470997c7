"""Sorting, scans and sampling of the torch engine (mixed into ``TorchEngine``), with the numpy
engine's results: stable sorts (equal values keep the order of their positions), int64 sums of
integers, and multinomial draws from the shared host generator (the same samples for one seed
on every engine and device; the probabilities travel to the host and the indices back).
"""

import torch


class TorchSorting:
    def argsort(self, x, axis, descending=False):
        return torch.sort(x, dim=axis, descending=descending, stable=True).indices

    def cumsum(self, x, axis):
        # torch already sums bools and integers in int64
        return torch.cumsum(x, dim=axis)

    def take_along_axis(self, x, indices, axis):
        return torch.take_along_dim(x, indices.to(x.device), dim=axis)

    def put_along_axis(self, target, indices, values, axis):
        values = self._tensor(values, target).to(target.dtype)
        target.scatter_(axis, indices.to(target.device), torch.broadcast_to(values, indices.shape))
        return target

    def multinomial(self, probs, num_samples, replacement):
        host = self._host.multinomial(self.to_numpy(probs), num_samples, replacement)
        return self._drawn(host, None)
