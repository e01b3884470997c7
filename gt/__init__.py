"""gt: a small PyTorch-like tensor framework (eager tensors, tape autograd, nn, optim).

    >>> import gt
    >>> x = gt.randn(8, 16)
    >>> w = gt.randn(16, 4, requires_grad=True)
    >>> (x @ w).relu().mean().backward()
    >>> w.grad.shape
    (16, 4)
"""

from gt.dtypes import DType, float32, float64, float16, bfloat16, int64, int32, bool_ as bool  # noqa: A004
from gt.autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from gt.backend import set_backend, get_backend
from gt.amp import autocast, is_autocast_enabled
from gt.tensor import Tensor, matmul, where
from gt.creation import (tensor, from_numpy, zeros, ones, empty, full, zeros_like, ones_like, full_like,
                         arange, linspace, eye, manual_seed, get_rng_state, set_rng_state, randn, rand,
                         randint, randperm)
from gt.functions import cat, concatenate, stack
from gt.functions import (exp, log, sqrt, abs, relu, sigmoid, tanh, gelu, softmax, log_softmax,  # noqa: A004
                          sum, mean, var, std, max, min, argmax, argmin, reshape, flatten, permute,
                          transpose, unsqueeze, squeeze, expand, split, chunk, clip, clamp, maximum,
                          minimum, pow)
from gt.sharding import Shard, Replicate, Partial, gpu_workers, get_mesh
from gt import checks, debug, sharding
from gt import nn, optim
from gt import distributed  # torch.distributed is imported only for more than one process

long = int64
double = float64
float = float32

__version__ = "0.1.0"
