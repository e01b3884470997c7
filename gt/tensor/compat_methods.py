"""Tensor methods and properties a PyTorch program reads that mean little for gt's dense real
tensors, answered as torch answers them for such a tensor: the layout (``gt.strided``), the
feature flags (``is_sparse``, ``is_quantized``, ``is_meta``...: False), ``data_ptr()`` (the complex
numbers' methods, ``real``, ``imag``, ``conj()``, ``angle()``: complex_methods.py),
the legacy ``new(...)`` and the deprecated ``resize``/``resize_as``, ``set_`` (memory shared
with another tensor), ``dim_order()``, ``bfloat16()``, ``hardshrink()`` and ``prelu()`` (``cov()`` and
``corrcoef()`` are attached beside the functions, gt/tensor/numerics_functions.py).

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import math
import warnings

from gt import autograd, dtypes
from gt.autograd import inference_saved
from gt.backend import B
from gt.backend.dim_order import innermost_first
from gt.tensor import inplace_grad, mesh_row_follow
from gt.tensor.arithmetic import where
from gt.tensor.complex_methods import ComplexMethods
from gt.tensor.inplace import bump_versions

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py
# called by share_memory_ before it shares: gt/__init__.py's loads gt.multiprocessing, whose pickler
# sends a shared tensor to another process by handle (the upper layer registers, as with autograd's hooks)
SHARE_HOOKS = []


class Layout:
    """torch's ``torch.layout``: gt has one, ``gt.strided`` (dense tensors)."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"

    def __eq__(self, other):
        return isinstance(other, Layout) and other.name == self.name or str(other) == f"torch.{self.name}"

    def __hash__(self):
        return hash(self.name)


strided = Layout("strided")


class MemoryFormat(Layout):
    """torch's ``torch.memory_format`` values, accepted wherever torch takes ``memory_format=``
    (``clone``, ``contiguous``, ``to``, ``empty_like``...); gt tensors are row-major whatever
    they say."""

    def __eq__(self, other):
        return isinstance(other, MemoryFormat) and other.name == self.name or str(other) == f"torch.{self.name}"

    __hash__ = Layout.__hash__


preserve_format, contiguous_format = MemoryFormat("preserve_format"), MemoryFormat("contiguous_format")
channels_last, channels_last_3d = MemoryFormat("channels_last"), MemoryFormat("channels_last_3d")
_RANKS = {"preserve_format": None, "contiguous_format": None, "channels_last": 4, "channels_last_3d": 5}


def check_memory_format(memory_format, ndim, fn):
    """torch's checks of ``memory_format`` (a name, gt's or torch's object, or None) for a
    tensor of ``ndim`` dims; nothing else to do, gt tensors being row-major."""
    if memory_format is None:
        return
    name = str(memory_format).replace("torch.", "").replace("gt.", "")
    if name not in _RANKS:
        raise ValueError(f"{fn}: memory_format must be one of {tuple(_RANKS)} or None, got {memory_format!r}")
    rank = _RANKS[name]
    if rank is not None and ndim != rank:
        raise RuntimeError(f"{fn}: required rank {rank} tensor to use {name} format, got a tensor of {ndim} dims")


class CompatMethods(ComplexMethods):
    __slots__ = ()

    layout = property(lambda self: strided, doc="``gt.strided``: gt's tensors are dense.")
    is_sparse = is_sparse_csr = is_quantized = is_meta = is_nested = is_mkldnn = is_mps = is_xpu = property(
        lambda self: False, doc="False: gt has dense tensors on CPUs and CUDA GPUs only.")
    is_xla = is_ipu = is_maia = is_mtia = is_vulkan = is_mps

    def is_pinned(self):
        """False: gt's host memory is not pinned."""
        return False

    def is_shared(self):
        """Whether this tensor's memory is shared memory that other processes can map
        (``share_memory_``, or a shared tensor received from another process); a view of a shared
        tensor is shared too."""
        return self._placed is None and B.is_shared(self._array)

    def share_memory_(self):
        """torch's ``share_memory_``: moves this tensor's values into shared memory, in place, and
        returns it; sent to another process (``gt.multiprocessing``: a ``Queue``, a ``Process``
        argument), it is then the same memory there, under both 'fork' and 'spawn', so writes on
        either side are seen by the other (Hogwild-style training). The tensor keeps its identity,
        ``requires_grad`` and graph; views taken afterwards share too. A no-op where it is shared
        already. On the numpy engine the values move to a new segment: other tensors that viewed
        the old memory (views taken before) keep it; on the torch engine torch's storage moves,
        with its views, as torch's. Refused for a tensor sharded over the mesh (GT_DEVICES>1):
        its blocks live on the devices of this process."""
        if self._placed is not None:
            raise RuntimeError("share_memory_: this tensor is sharded over the mesh (each device holds a block of "
                               "it), and gt shares memory between processes only for whole tensors; gather it "
                               "first (x = x.full_tensor()) or train across processes with gt.distributed")
        for hook in SHARE_HOOKS:
            hook()
        self._array = B.share_memory(self._array)
        return self

    def dim_order(self, *, ambiguity_check=False):
        """The dims from outermost to innermost in memory, read from ``stride()`` as torch reads
        them (dims of stride 0 or size 1 keep their place; equal strides order by size). With
        ``ambiguity_check=True``, RuntimeError where neighbouring strides are equal or a dim has
        size 1 (more than one order fits)."""
        if not isinstance(ambiguity_check, bool):
            raise TypeError(f"dim_order: ambiguity_check must be True or False (gt has no memory formats to list), "
                            f"got {type(ambiguity_check).__name__}")
        shape, strides = tuple(self.shape), self.stride()
        if ambiguity_check and (any(a == b for a, b in zip(strides, strides[1:])) or 1 in shape):
            raise RuntimeError("The tensor does not have unique dim order, or cannot map to exact one of the given "
                               "memory formats.")
        n = self.ndim

        def dense(order):    # laid out in ``order``, innermost first, size-1 dims aside
            expected = 1
            for d in order:
                if shape[d] != 1:
                    if strides[d] != expected:
                        return False
                    expected *= shape[d]
            return True

        rowmajor = dense(reversed(range(n)))
        last = n == 4 and dense([1, 3, 2, 0])     # torch's channels_last (its check ignores channels_last_3d)
        # a tensor of no elements is contiguous in torch whatever its strides (its dim order is row-major)
        if n < 2 or 0 in shape or rowmajor and not last:
            return tuple(range(n))
        if last and not rowmajor:
            return (0, 2, 3, 1)

        perm = innermost_first(shape, [strides])     # torch's insertion sort, innermost first
        return tuple(reversed(perm))

    def set_(self, source=None):
        """This tensor made to hold ``source``'s memory (torch's ``set_(source)``): it takes its
        shape, and a write into either is seen by the other. ``set_()`` leaves it empty, (0,).
        Not differentiable: with grad mode on, refused where either requires grad (torch records
        a node that cannot go backward); a backward through ops that saved this tensor before
        raises, as torch's (its version changes). torch's storage forms are not supported: gt has no
        storage objects."""
        if inference_saved.made[0]:     # (torch refuses an inference tensor's, outside inference mode)
            inference_saved.refuse_inplace(self)
        inplace_grad.check_captured(self, "set_", shape=True)
        if mesh_row_follow.rows:      # a copy acting as a view of this sharded tensor lives
            mesh_row_follow.refuse_new_shape(self, "set_")
        if source is None:
            source = Tensor._wrap(B.empty((0,), self.dtype))
        elif not isinstance(source, Tensor):
            raise TypeError(f"set_(): argument 'source' must be Tensor or None (gt has no storage objects), not "
                            f"{type(source).__name__}")
        if source.dtype != self.dtype:
            raise RuntimeError(f"Could not set tensor of type {dtypes.torch_type_name(source.dtype.name).lower()} to "
                               f"a tensor of type {dtypes.torch_type_name(self.dtype.name).lower()}")
        if autograd.is_grad_enabled() and (self.requires_grad or source.requires_grad):
            raise RuntimeError("set_: not differentiable; call it under gt.no_grad() or on detached tensors")
        old = self._array
        self._array, self._placed = source._array, source._placed
        if old is not None:    # torch counts set_ as an in-place change: ops that saved the old memory refuse backward
            B.bump_version(old)
        return self

    def conj_physical_(self):
        """The conjugate in place (a real tensor is unchanged)."""
        if self.dtype.is_complex:
            self.imag.neg_()
            return self
        # unchanged, but torch counts the write: refused on a leaf (or a view of one) that requires
        # grad, and a new version, as torch's
        if autograd.is_grad_enabled() and self._requires_grad:
            if self._ctx is None:
                raise RuntimeError(f"{inplace_grad.LEAF} (conj_physical_: {inplace_grad.HINT})")
            inplace_grad.refuse_view_of_leaf(self, "conj_physical_")
        bump_versions([self])
        return self

    def resize(self, *sizes):
        """torch's deprecated out-of-place ``resize``: this tensor's elements in the shape ``sizes``
        (their count unchanged), a differentiable reshape, with torch's warning."""
        warnings.warn("non-inplace resize is deprecated", UserWarning, stacklevel=2)
        return self._resized(sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes)

    def resize_as(self, tensor):
        """torch's deprecated out-of-place ``resize_as``: ``resize(tensor.shape)``, with its warning."""
        warnings.warn("non-inplace resize_as is deprecated", UserWarning, stacklevel=2)
        if not isinstance(tensor, Tensor):
            raise TypeError(f"resize_as(): argument 'tensor' must be Tensor, not {type(tensor).__name__}")
        return self._resized(tuple(tensor.shape))

    def _resized(self, sizes):
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in sizes):
            raise TypeError(f"resize(): sizes must be non-negative ints, got {tuple(sizes)}")
        n = math.prod(sizes)
        if n != self.numel():
            raise RuntimeError(f"requested resize to {tuple(sizes)} ({n} elements in total), but the given tensor has "
                               f"a size of {tuple(self.shape)} ({self.numel()} elements). autograd's resize can only "
                               "change the shape of a given tensor, while preserving the number of elements.")
        return self.reshape(tuple(sizes))

    def data_ptr(self):
        """The address of the first element (two tensors sharing memory: compare these)."""
        if self._placed is not None:
            raise RuntimeError("data_ptr: this tensor is sharded over the mesh; each device holds a block of it "
                               "(gather it with x.full_tensor() first)")
        return B.data_address(self._array)

    const_data_ptr = data_ptr

    def is_set_to(self, tensor):
        """True where ``tensor`` is this tensor's memory seen the same way: the same address,
        shape and strides (torch's ``is_set_to``)."""
        if not isinstance(tensor, Tensor):
            raise TypeError(f"is_set_to(): argument 'tensor' must be Tensor, not {type(tensor).__name__}")
        return (self.data_ptr() == tensor.data_ptr() and self.shape == tensor.shape
                and self.stride() == tensor.stride())

    def new(self, *args):
        """torch's legacy ``x.new(...)``: sizes give an uninitialised tensor, data a copy, of this
        tensor's dtype; no argument, an empty one."""
        if all(isinstance(a, int) and not isinstance(a, bool) for a in args):     # sizes, or none
            return Tensor._wrap(B.empty(args or (0,), self.dtype))
        if len(args) != 1:
            raise TypeError(f"new(): expected sizes (ints) or one sequence of data, got {args!r}")
        data = args[0]
        return Tensor(data.detach() if isinstance(data, Tensor) else data, dtype=self.dtype)

    def bfloat16(self):
        """This tensor in bfloat16 (``to(gt.bfloat16)``; the torch engine has the dtype)."""
        return self.to(dtypes.bfloat16)

    def hardshrink(self, lambd=0.5):
        """``x`` where ``|x| > lambd``, else 0 (torch's ``Tensor.hardshrink``)."""
        return where(self.abs() > lambd, self, 0.0)

    def prelu(self, weight):
        """``x`` where ``x >= 0``, else ``weight * x``, ``weight`` one value or one per channel
        (dim 1), as torch's ``Tensor.prelu``."""
        if weight.numel() != 1:
            if self.ndim < 2 or weight.ndim != 1 or weight.numel() != self.shape[1]:
                raise RuntimeError(f"prelu: weight of {weight.numel()} values for input of shape {self.shape}: "
                                   "expected one value or one per channel (dim 1)")
            weight = weight.reshape((1, -1) + (1,) * (self.ndim - 2))
        return where(self >= 0, self, weight * self)

    def pin_memory(self, device=None):
        """torch's error on a machine without an accelerator (gt does not pin host memory)."""
        raise RuntimeError("Cannot access accelerator device when none is available. (gt does not pin host "
                           "memory: leave pin_memory off)")
