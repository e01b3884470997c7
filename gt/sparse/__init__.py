"""``gt.sparse``: torch.sparse's functions on sparse COO tensors (gt/tensor/sparse_coo.py):
``mm`` (either operand sparse), ``addmm``, ``sum``, ``softmax``, ``log_softmax``. Sparse tensors are made by ``gt.sparse_coo_tensor`` or
``Tensor.to_sparse()``."""

from gt.tensor.sparse_make import addmm, log_softmax, mm, softmax, sum  # noqa: A004

__all__ = ["addmm", "log_softmax", "mm", "softmax", "sum"]
