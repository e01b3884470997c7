"""The shared-memory primitives of the Engine interface (``Tensor.share_memory_``,
``gt.multiprocessing``): an array moved into memory other processes can map, and what is pickled
for it when it is sent to one. The numpy engine's are in gt/backend/numpy_shared.py (POSIX
shared-memory segments), the torch engine's in gt/backend/torch_shared.py (torch's own).
"""

import abc


class SharedMemoryPrimitives(abc.ABC):
    @abc.abstractmethod
    def share_memory(self, arr):
        """``arr`` with its values in shared memory: ``arr`` itself where it is shared already or
        the engine moves storage in place (torch), else a shared copy the caller swaps in."""
        raise NotImplementedError

    @abc.abstractmethod
    def is_shared(self, arr):
        """Whether ``arr`` (or the array it views) lies in shared memory."""
        raise NotImplementedError

    @abc.abstractmethod
    def shared_reduce(self, arr):
        """What to pickle for ``arr`` sent to another process: a stand-in that maps the same memory
        there, or None to send its values (or where the engine's own pickling already does)."""
        raise NotImplementedError

    @abc.abstractmethod
    def set_sharing_strategy(self, name):
        """torch.multiprocessing's sharing strategy (``"file_descriptor"``, ``"file_system"``)."""
        raise NotImplementedError
