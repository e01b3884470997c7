"""gt: a small PyTorch-like tensor framework (eager tensors, tape autograd, nn, optim).

    >>> import gt
    >>> x = gt.randn(8, 16)
    >>> w = gt.randn(16, 4, requires_grad=True)
    >>> (x @ w).relu().mean().backward()
    >>> w.grad.shape
    (16, 4)

This module is the package face: it gathers the public names of every layer (README "Layout":
the layers, top to bottom, and who may import whom; `lint-imports` checks them), and no module
of gt imports it.
"""

from gt.dtypes import DType, float32, float64, float16, bfloat16, int64, int32, bool_ as bool  # noqa: A004
from gt.dtypes import int16, int8, uint8, uint16, uint32, uint64
from gt.dtypes import complex64, complex128
from gt.devices import device  # torch.device's parsing; also the string it prints
from gt.tensor.generator import Generator
from gt.autograd import no_grad, enable_grad, set_grad_enabled
from gt.autograd.grad_mode import grad_mode_enabled as is_grad_enabled    # torch's flag (recording: gt.autograd's)
from gt.autograd import is_anomaly_enabled, is_anomaly_check_nan_enabled, set_anomaly_enabled
from gt.backend import set_backend, get_backend, set_num_threads, get_num_threads
from gt.backend.memory import retain_freed_memory
from gt.amp import autocast, get_autocast_dtype, is_autocast_enabled
from gt.amp import (set_autocast_enabled, set_autocast_dtype, is_autocast_cpu_enabled, set_autocast_cpu_enabled,
                    get_autocast_cpu_dtype, set_autocast_cpu_dtype, get_autocast_gpu_dtype, set_autocast_gpu_dtype,
                    is_autocast_cache_enabled, set_autocast_cache_enabled, clear_autocast_cache,
                    autocast_increment_nesting, autocast_decrement_nesting)
from gt.tensor import Tensor, matmul, where
from gt.tensor import (tensor, from_dlpack, from_numpy, zeros, ones, empty, full, zeros_like, ones_like, full_like, empty_like,
                       randn_like, rand_like,
                       arange, linspace, eye, manual_seed, get_rng_state, set_rng_state, randn, rand,
                       randint, randperm)
from gt.tensor import cat, concatenate, stack
from gt.tensor.functions import (exp, log, sqrt, abs, relu, sigmoid, tanh, gelu, softmax, log_softmax,  # noqa: A004
                                 sum, mean, var, std, max, min, argmax, argmin, reshape, flatten, permute,
                                 transpose, unsqueeze, squeeze, expand, split, chunk, clip, clamp, maximum,
                                 minimum, pow)
from gt.tensor.functions import sort, argsort, topk, cumsum, multinomial
from gt.tensor.functions import (floor_divide, remainder, floor, ceil, trunc, round, sign, isnan, isinf,  # noqa: A004
                                 isfinite, logical_not, logical_and, logical_or, amax, amin, logsumexp, norm, tril,
                                 triu, flip, outer, bmm, square, reciprocal, rsqrt, clamp_min, clamp_max, lerp)
from gt.tensor.functions import (add, sub, mul, div, true_divide, neg, negative, mm, mv, dot, swapaxes, movedim,
                                 moveaxis, tile, broadcast_to, narrow, unbind, roll, index_select, gather,
                                 count_nonzero, nan_to_num, frac, log2, log10, allclose, equal)
from gt.tensor.functions import is_tensor, is_floating_point, numel, var_mean, std_mean
from gt.tensor.functions import (sin, cos, tan, asin, acos, atan, arcsin, arccos, arctan, sinh, cosh, asinh, acosh,
                                 atanh, arcsinh, arccosh, arctanh, sinc, deg2rad, rad2deg, log1p, expm1, exp2, erf,
                                 erfc, erfinv, logit, prod, cumprod)
from gt.tensor.functions import (eq, ne, lt, le, gt, ge, not_equal, greater, greater_equal, less, less_equal,
                                 logical_xor, absolute, fix, sgn)
from gt.tensor.math_methods import xlogy, atan2, arctan2, hypot, logaddexp
from gt.tensor.functions import lgamma, digamma, i0, mvlgamma, cummax, cummin
from gt.tensor.special_methods import polygamma, logaddexp2
from gt.tensor.special_methods import igamma, igammac
from gt.tensor.functions import (scatter, scatter_add, scatter_reduce, index_add, index_copy, index_fill,
                                 masked_select, masked_scatter, nonzero, argwhere, unique, unique_consecutive, bincount)
from gt.tensor.index_methods import einsum, searchsorted, bucketize
from gt.tensor.construct_functions import (hstack, vstack, row_stack, dstack, column_stack, atleast_1d, atleast_2d,
                                          atleast_3d, tensor_split, take, take_along_dim, diag, diagonal, diag_embed,
                                          diagflat, trace, fliplr, flipud, rot90, meshgrid, broadcast_tensors,
                                          broadcast_shapes, select, diff, tril_indices, triu_indices, logspace, isclose)
from gt.tensor.product_functions import (kron, tensordot, inner, cdist, block_diag, cartesian_prod, combinations,
                                         repeat_interleave)
from gt.tensor import checks  # gt.checks: value checks that never stall a GPU
from gt.tensor.compat_methods import strided  # torch.strided: the dense layout
from gt.tensor.sparse_make import sparse_coo, sparse_coo_tensor  # sparse COO tensors (gt/tensor/sparse_coo.py)
from gt.tensor.sparse_csr import sparse_csr  # sparse CSR tensors (gt/tensor/sparse_csr.py)
from gt.tensor.sparse_csr_make import sparse_csr_tensor, sparse_csc_tensor, sparse_bsr_tensor, sparse_bsc_tensor
from gt.tensor.sparse_compressed_make import sparse_csc, sparse_bsr, sparse_bsc  # gt/tensor/sparse_compressed.py
from gt.tensor.compat_methods import (channels_last, channels_last_3d, contiguous_format,  # noqa: F401
                                    preserve_format)
from gt.tensor.legacy_types import LEGACY_TYPES as _LEGACY_TYPES  # gt.FloatTensor, gt.LongTensor, ...
globals().update(_LEGACY_TYPES)
from gt.tensor.stats_functions import (median, nanmedian, mode, kthvalue, quantile, nanquantile, msort, histc,
                                      histogram, logcumsumexp, dist, renorm, aminmax, addcmul, addcdiv, addmm, addmv,
                                      addr, baddbmm, addbmm, heaviside, histogramdd)
from gt.tensor.runtime import set_default_dtype, get_default_dtype, finfo, iinfo, seed, initial_seed, default_generator
from gt.autograd.inference import inference_mode, is_inference_mode_enabled
from gt.serialization import save, load
from gt.tensor import autograd_functional as _autograd_functional
from gt.tensor import gradcheck as _gradcheck
from gt.sharding import Shard, Replicate, Partial, gpu_workers, get_mesh
from gt import debug, sharding, signal
from gt.config import ShardConfig, SignalConfig, get_config, get_signal_config, load_config, register_config
from gt import nn, optim
from gt.tensor.functions import det, logdet, slogdet, inverse, pinverse, cholesky, qr, svd, matrix_power, nuclear_norm
from gt import distributed  # torch.distributed is imported only for more than one process
from gt import cuda, backends  # torch.cuda's questions, torch.backends' switches
from gt import accelerator  # torch.accelerator: the same questions, device-agnostic
from gt.backends import set_float32_matmul_precision, get_float32_matmul_precision  # noqa: E402
from gt import func  # torch.func: grad, vjp, jvp, jacrev, jacfwd, hessian, vmap, functional_call
from gt import profiler  # torch.profiler: profile, record_function, schedule, tensorboard_trace_handler
# Imported on first use (__getattr__ below), as few programs need them and together they are a
# sixth of `import gt`: gt.distributions (torch.distributions' families, kl_divergence,
# constraints), gt.special (torch.special's functions), gt.linalg (torch.linalg's), gt.fft (torch.fft's), gt.utils
# (gt.utils.data: datasets, samplers, DataLoader), gt.testing (assert_close, make_tensor) and
# gt.multiprocessing (torch.multiprocessing's: shared tensors sent between processes; it loads Python's
# multiprocessing, sockets and subprocess with it: see _load_multiprocessing below)
_ON_FIRST_USE = ("distributions", "special", "linalg", "utils", "testing", "fft", "sparse", "multiprocessing",
                 "nested", "ao")   # gt.nested: torch.nested's ragged tensors (gt.jagged, their layout, loads it too);
# gt.ao: torch.ao's dynamic quantization (quantize_dynamic, the dynamically quantized Linear)
from gt import random, compiler  # torch.random's and torch.compiler's names
manual_seed = random.manual_seed   # torch's: returns the default generator; any 64-bit seed (negative ones wrap)
from gt.tensor.size import Size  # noqa: E402  (torch.Size)
from gt.compiler import compile  # noqa: A001  (gt.compile: no compilation, the same function back)
from gt import amp, grad_scaler  # amp sits below the tensors: its GradScaler lives a layer up
amp.GradScaler, amp.OptState = grad_scaler.GradScaler, grad_scaler.OptState
# torch's top-level aliases, functional forms, dtype questions, settings, in-place and *_copy forms
from gt.tensor.toplevel_functions import *  # noqa: F401,F403,E402,A001
from gt.tensor.dtype_functions import *  # noqa: F401,F403,E402
from gt.tensor.global_settings import *  # noqa: F401,F403,E402
from gt.tensor.copy_functions import *  # noqa: F401,F403,E402
from gt.tensor.complex_functions import *  # noqa: F401,F403,E402,A001
from gt.tensor.spectral_functions import stft, istft  # noqa: E402
from gt.nn.toplevel_functional import *  # noqa: F401,F403,E402
from gt.nn.toplevel_functional_more import *  # noqa: F401,F403,E402
from gt.tensor.random_functions import bernoulli, normal, poisson, binomial, randint_like  # noqa: E402
from gt.tensor.numerics_functions import (hann_window, hamming_window, blackman_window, bartlett_window,  # noqa: E402
                                          kaiser_window, trapezoid, trapz, cumulative_trapezoid, cov, corrcoef,
                                          vander, gradient)
from gt.tensor.remaining_functions import *  # noqa: F401,F403,E402
from gt.tensor.strided_functions import *  # noqa: F401,F403,E402
from gt.tensor.toplevel_more import *  # noqa: F401,F403,E402
from gt.tensor.control_flow import cond, while_loop  # noqa: E402
from gt.tensor.lowrank import svd_lowrank, pca_lowrank  # noqa: E402
from gt.tensor.lobpcg import lobpcg  # noqa: E402
from gt.tensor.segment_reduce import segment_reduce  # noqa: E402
from gt.tensor.bitwise_functions import (bitwise_and, bitwise_or, bitwise_xor, bitwise_not, bitwise_left_shift,  # noqa: E402
                                         bitwise_right_shift, gcd, lcm, fmod, fmax, fmin, float_power, copysign,
                                         signbit, ldexp, frexp, nextafter, isposinf, isneginf, isreal)
# torch's linear algebra at the top level (matrix_exp, lu, cholesky_solve, triangular_solve, ...)
from gt.tensor.linalg_factor import (matrix_exp, lu_unpack, triangular_solve, cholesky_solve,  # noqa: E402
                                     cholesky_inverse, lu_legacy as lu, lu_solve_legacy as lu_solve)
from gt.tensor.householder import geqrf, orgqr, ormqr  # noqa: E402
# quantized tensors (torch.quint8/qint8/qint32) and fake quantization (gt/tensor/quantized.py)
from gt.dtypes import quint8, qint8, qint32, quint4x2  # noqa: E402
from gt.tensor.quantized import (per_tensor_affine, per_channel_affine, per_tensor_symmetric,  # noqa: E402
                                 per_channel_symmetric, per_channel_affine_float_qparams)
from gt.tensor.quantized import QScheme as qscheme  # noqa: E402  (torch.qscheme: the class of the schemes)
from gt.tensor.quantize_functions import (quantize_per_tensor, quantize_per_channel, dequantize,  # noqa: E402
                                          fake_quantize_per_tensor_affine, fake_quantize_per_channel_affine,
                                          quantize_per_tensor_dynamic)
from gt.tensor.quantize_learnable import (_fake_quantize_learnable_per_tensor_affine,  # noqa: E402,F401
                                          _fake_quantize_learnable_per_channel_affine)

signal_tensor = signal.tensor   # the public gt's older spelling of gt.signal.tensor

# torch's path, torch.autograd.functional: the module makes tensors, so it lives in the tensor layer
import sys as _sys  # noqa: E402
import math as _math  # noqa: E402
from gt import autograd  # noqa: E402
autograd.functional = _autograd_functional
_sys.modules["gt.autograd.functional"] = _autograd_functional
autograd.gradcheck, autograd.gradgradcheck = _gradcheck.gradcheck, _gradcheck.gradgradcheck   # the same way
autograd.GradcheckError = _gradcheck.GradcheckError
# torch's path, torch.optim.swa_utils: AveragedModel and update_bn are modules, so it lives in gt.nn
from gt.nn import swa_utils as _swa_utils  # noqa: E402
optim.swa_utils = _swa_utils
_sys.modules["gt.optim.swa_utils"] = _swa_utils
# torch's autograd.Variable (a tensor) and autograd.inference_mode, at torch's paths
from gt.tensor.legacy_types import Variable as _Variable, frombuffer  # noqa: E402
autograd.Variable, autograd.inference_mode = _Variable, inference_mode
vmap = func.vmap    # torch.vmap is torch.func.vmap
# torch's path, torch.nn.parallel.DistributedDataParallel: distributed sits a layer above nn
nn.parallel.DistributedDataParallel = distributed.DistributedDataParallel

# torch's out= keyword on every top-level function that has none of its own (gt/tensor/out_argument.py)
from gt.tensor import out_argument as _out_argument  # noqa: E402
from gt.tensor import compat_methods as _compat_methods  # noqa: E402
from gt.client import tensor as _client_tensor  # noqa: E402
_out_argument.accept_out(globals(), also=(_client_tensor, func))


def __getattr__(name):
    if name in _ON_FIRST_USE:       # the import sets gt.<name> itself: called once per name
        import importlib
        return importlib.import_module(f"gt.{name}")
    if name == "jagged":            # torch.jagged: the layout of gt.nested's jagged tensors
        return __getattr__("nested").jagged
    raise AttributeError(f"module 'gt' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_ON_FIRST_USE) | {"jagged"})


def _load_multiprocessing():
    # gt.multiprocessing registers how multiprocessing's pickler sends gt tensors (a shared one by
    # handle, a non-leaf one that requires grad refused), as `import torch` registers torch's: loaded
    # before the first share_memory_, and at once where the program uses multiprocessing already
    # (a child process it started, say)
    __getattr__("multiprocessing")


_compat_methods.SHARE_HOOKS.append(_load_multiprocessing)
if "multiprocessing" in _sys.modules:
    _load_multiprocessing()


def connect(address=None):
    """The public gt's client connects to a server that drives worker processes. Here there is
    none to connect to: one process drives every local device (GT_AUTO_SHARD=1, GT_DEVICES=N),
    and torchrun with gt.distributed spans machines."""
    raise RuntimeError(
        f"gt.connect({address!r}): this gt has no server to connect to; one process drives every local "
        "device (GT_AUTO_SHARD=1 for all GPUs, GT_DEVICES=N for N virtual CPU devices), and several "
        "machines run under torchrun with gt.distributed (see the README's 'several machines'); "
        "remove the gt.connect call")


long = int64
short = int16
double = float64
float = float32
cfloat = complex64
cdouble = complex128
half = float16
int = int32  # noqa: A001  (torch.int; torch exports it too)
dtype = DType   # torch.dtype: the class of gt.float32, gt.int64, ...
# torch's constants (torch.pi is math.pi, torch.newaxis is None)
pi, e, inf, nan, newaxis = _math.pi, _math.e, _math.inf, _math.nan, None
GradScaler = grad_scaler.GradScaler     # torch.GradScaler: torch.amp's

__version__ = "0.1.0"
