"""Shared memory for the torch engine (``Tensor.share_memory_``): torch's own. The array's
storage moves into shared memory in place (its views follow), and torch.multiprocessing's
reductions, which ``import torch`` registers with multiprocessing's pickler, send it to another
process as a handle on the same memory.
"""

import torch.multiprocessing


class TorchShared:
    """The engine's side of ``share_memory_``/``is_shared`` and of sending shared arrays."""

    def share_memory(self, arr):
        """``arr`` with its storage in shared memory (torch's ``share_memory_``, in place)."""
        return arr.share_memory_()

    def is_shared(self, arr):
        return arr.is_shared()

    def shared_reduce(self, arr):
        """None: torch's reductions already send a shared tensor as a handle on its memory."""
        return None

    def set_sharing_strategy(self, name):
        torch.multiprocessing.set_sharing_strategy(name)
