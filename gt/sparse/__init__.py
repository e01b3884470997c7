"""``gt.sparse``: torch.sparse's functions on sparse COO tensors (gt/tensor/sparse_coo.py):
``mm`` (either operand sparse, or both of one layout), ``addmm``, ``sum``, ``softmax``, ``log_softmax``;
``mm``/``addmm`` take sparse CSR tensors too (gt/tensor/sparse_csr.py). Sparse tensors are made by
``gt.sparse_coo_tensor``/``gt.sparse_csr_tensor`` or ``Tensor.to_sparse()``/``to_sparse_csr()``."""

from gt.tensor.sparse_make import addmm, log_softmax, mm, softmax, sum  # noqa: A004

__all__ = ["addmm", "log_softmax", "mm", "softmax", "sum"]
