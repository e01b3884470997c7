"""The tensor layer: ``Tensor`` (the user API), its creation, and the running of ops on it.

Rooms:

- ``core``: the ``Tensor`` class and its attributes; its methods come from ``arithmetic``
  (operators, elementwise math, ``matmul``, ``where``), ``reductions``, ``shape`` (reshape,
  permute, indexing), ``inplace`` (``add_``, ``+=``, item assignment) and ``numpy_interop``
  (``np.asarray(t)``, numpy functions on tensors);
- ``creation``: ``tensor``, ``from_numpy``, ``zeros``, ``randn``, ... (placed on the mesh:
  data sharded, parameters replicated, as the open ``hints`` scopes of ``gt.signal`` say);
- ``functions``: ``cat``, ``stack`` and the function forms of tensor methods (``gt.exp(x)``);
- ``dispatch`` and ``rules``: an op of gt/ops run on tensors sharded over the mesh, device by
  device, as its propagation rule says; autograd reaches them through the hooks ``core``
  registers (autograd sits below this layer and never imports it);
- ``checks``: checks of values that never stall a GPU.

This layer sits above gt/ops and gt/autograd, and below gt/nn and gt/optim.
"""

from gt.tensor.core import Tensor  # first: it binds the class into the modules that need it
from gt.tensor.arithmetic import matmul as _matmul, where
from gt.tensor.creation import (arange, empty, empty_like, eye, from_dlpack, from_numpy, full, full_like, get_rng_state,
                                linspace, manual_seed, ones, ones_like, rand, rand_like, randint, randn, randn_like,
                                randperm, set_rng_state, tensor, zeros, zeros_like)
from gt.tensor.functions import cat, concatenate, stack
from gt.tensor import wide_uints

matmul = wide_uints.guard_matmul(_matmul)     # torch's error for uint16/32/64 operands (gt/tensor/wide_uints.py)
__all__ = ["Tensor", "matmul", "where", "tensor", "from_numpy", "zeros", "ones", "empty", "full",
           "zeros_like", "ones_like", "full_like", "empty_like", "randn_like", "rand_like", "arange", "linspace", "eye", "manual_seed",
           "get_rng_state", "set_rng_state", "randn", "rand", "randint", "randperm", "cat",
           "concatenate", "stack"]
