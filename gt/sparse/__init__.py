"""``gt.sparse``: torch.sparse's functions on sparse COO tensors (gt/tensor/sparse_coo.py):
``mm``, ``addmm``, ``sum``. Sparse tensors are made by ``gt.sparse_coo_tensor`` or
``Tensor.to_sparse()``."""

from gt.tensor.sparse_make import addmm, mm, sum  # noqa: A004

__all__ = ["addmm", "mm", "sum"]
