"""einsum, scatters and index searches of the torch engine (mixed into ``TorchEngine``; the
interface is gt/backend/engine_scatter.py): torch's own kernels, each a call or two."""

import torch


class TorchScatter:
    def einsum(self, equation, *operands):
        if operands and operands[0].is_cuda and not operands[0].is_floating_point():
            # CUDA has no integer gemm (torch's einsum of int64 raises there): exact on the CPU
            return torch.einsum(equation, *(o.cpu() for o in operands)).to(operands[0].device)
        return torch.einsum(equation, *operands)

    def scatter_reduce_(self, target, dim, index, src, reduce):
        index = index.to(target.device)
        if reduce == "sum":
            return target.scatter_add_(dim, index, src)
        return target.scatter_reduce_(dim, index, src, reduce, include_self=True)

    def nonzero(self, x):
        return torch.nonzero(x)

    def unique(self, x, return_inverse, return_counts, dim=None):
        values, inverse, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True, dim=dim)
        return values, inverse if return_inverse else None, counts if return_counts else None

    def searchsorted(self, sorted_sequence, values, right):
        return torch.searchsorted(sorted_sequence.contiguous(), values.to(sorted_sequence.device).contiguous(),
                                  right=right)
