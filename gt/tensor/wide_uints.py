"""torch's limited support of uint16, uint32 and uint64 (torch 2.3 on): tensors of them are made,
converted, printed, indexed, joined, sorted, multiplied, and/or/xor'd, compared for equality and
summed (in int64), but torch has no CPU kernel of add, sub, order, max/min, shifts, neg/abs, and
more for them, and raises NotImplementedError naming the kernel (``"add_stub" not implemented for
'UInt16'``). numpy has all of these, so gt refuses them here, on both engines, as torch does:
``refuse`` from the ops' slower paths (the arithmetic operators' promotion step), and
``guard_methods`` wraps the methods that never meet these dtypes on a training path.
"""

import functools

from gt import dtypes
from gt.backend import B

# methods torch's CPU kernels lack for uint16/32/64, with the kernel its error names; a
# RuntimeError where torch's is one (mean, std and var check the dtype before any kernel)
_REFUSED = {
    "flip": "flip_cpu", "gather": "scatter_gather_tensor_cpu", "index_select": "index_select", "take": "take_cpu",
    "masked_fill": "masked_fill", "masked_fill_": "masked_fill", "masked_select": "masked_select",
    "index_put": "index_put", "index_put_": "index_put", "scatter": "scatter_gather_tensor_cpu",
    "scatter_": "scatter_gather_tensor_cpu", "tril": "tril", "triu": "triu", "topk": "topk_cpu",
    "kthvalue": "kthvalue_cpu", "median": "median_cpu", "cummax": "cummax_cpu", "cummin": "cummin_cpu",
    "bincount": "bincount_cpu", "nonzero": "nonzero_count_cpu", "count_nonzero": "nonzero_count_cpu",
    "argmax": "argmax_cpu", "argmin": "argmin_cpu", "amax": "max_values_cpu", "amin": "min_values_cpu",
    "max": "max_all", "min": "min_all", "aminmax": "aminmax_cpu", "sign": "sign_cpu", "sgn": "sign_cpu",
    "dot": "dot", "matmul": "dot", "__matmul__": "dot", "square": "pow", "clamp_min": "clamp_min_scalar_cpu",
    "fmod": "fmod_cpu", "logical_not": "logical_not_cpu", "logical_and": "logical_and_cpu",
    "logical_or": "logical_or_cpu", "logical_xor": "logical_xor_cpu", "trace": "trace", "histc": "aminmax_cpu",
    "logcumsumexp": "logcumsumexp_out_cpu", "logaddexp2": "logaddexp2_cpu", "heaviside": "heaviside_cpu",
}
# where torch's kernel runs only on some shapes: flip copies whole rows where the last dim keeps
# its order, index_select rows of a tensor with two dims or more; elsewhere its error
_ONLY_WHEN = {
    "flip": lambda x, *dims, **kw: x.ndim and (x.ndim - 1) in {d % x.ndim for d in _dims(dims, kw)},
    "index_select": lambda x, *args, **kw: x.ndim <= 1,
    "tril": lambda x, *args, **kw: x.ndim >= 2,      # (fewer dims: torch's RuntimeError about them first)
    "triu": lambda x, *args, **kw: x.ndim >= 2,
}
_ALONG = {"max_all": "max_cpu", "min_all": "min_cpu"}
_RUNTIME = {
    "mean": "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. "
            "Got: {}",
    "std": "std and var only support floating point and complex dtypes (got {})",
    "var": "std and var only support floating point and complex dtypes (got {})",
}


# the binary ops (the names gt/tensor/arithmetic.py and math_methods.py give them) with no torch
# kernel for them
_OPS = {"add": "add_stub", "sub": "add_stub", "pow": "pow", "maximum": "maximum_cpu", "minimum": "minimum_cpu",
        "lt": "lt_cpu", "le": "le_cpu", "gt": "gt_cpu", "ge": "ge_cpu", "hypot": "hypot_cpu",
        "logaddexp": "logaddexp_cpu"}


_NUMBERS = frozenset((int, float, complex, bool))


def refuse_op(name, a, b):
    """``refuse`` for the binary operator ``name`` of ``a`` and ``b`` (already promoted)."""
    kernel = _OPS.get(name)
    if kernel is not None:
        refuse(kernel, a, b)


def refuse(kernel, *operands):
    """torch's NotImplementedError where one of ``operands`` (tensors or numbers) is a uint16/32/64
    tensor: its CPU kernel ``kernel`` has none for them."""
    for x in operands:
        if type(x) not in _NUMBERS:     # (getattr with a default raises inside for these: slow)
            refuse_dtype(kernel, getattr(x, "dtype", None))


def refuse_dtype(kernel, dtype):
    """``refuse`` for an op computed in ``dtype``."""
    if type(dtype) is dtypes.DType and not dtype.differentiable and dtype in dtypes.WIDE_UINTS:
        raise NotImplementedError(f'"{kernel}" not implemented for \'{dtypes.torch_type_name(dtype.name)}\' '
                                  f"(torch's CPU kernels have none for it; cast with .long() or .double())")


def refuse_indexed_write(t, index, value):
    """torch's error for ``t[index] = value`` on a uint16/32/64 ``t`` where ``index`` (engine
    arrays already) holds an index array: its index_put kernel, or for a bool mask and a number
    its masked_fill one, has none for them."""
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [p for p in parts if B.is_array(p)]
    if arrays:
        masked = len(arrays) == 1 and B.dtype_of(arrays[0]) is dtypes.bool_ and getattr(value, "ndim", 0) == 0
        refuse("masked_fill" if masked else "index_put", t)


def ordered_keys(t):
    """int64 keys ordered as the values of the uint16/32/64 tensor ``t`` (uint64's top bit flipped),
    for the searches of torch's sorting paths (isin); any other tensor as it is."""
    if not t.dtype.differentiable and t.dtype in dtypes.WIDE_UINTS:
        return (t ^ 2 ** 63).view(dtypes.int64) if t.dtype is dtypes.uint64 else t.long()
    return t


def refuse_target(kernel, dtype):
    """torch's error for a ``dtype=`` argument naming uint16/32/64 (sum, prod, cumsum, cumprod, and
    softmax's): the input is cast to it, and the kernel has none for it."""
    if dtype is not None:
        refuse_dtype(kernel, dtypes.to_dtype(dtype))


def matmul_kernel(a, b):
    """The torch kernel a product ``a @ b`` runs (its error names it): by the operands' dims."""
    na, nb = getattr(a, "ndim", 2), getattr(b, "ndim", 2)
    return "dot" if na == nb == 1 else "addmv_impl_cpu" if nb == 1 else "addmm_impl_cpu_" if nb == 2 else "bmm"


def guard_matmul(fn):
    """``fn`` (gt.matmul) raising torch's error for a product of two uint16/32/64 operands (one
    beside a float is computed in the float, gt's rule for ints; another int: the promotion error)."""
    @functools.wraps(fn)
    def matmul(input, other):
        dtype = getattr(input, "dtype", None)     # one read (a property): the float case decides on it
        if type(dtype) is dtypes.DType and not dtype.differentiable and getattr(other, "dtype", None) is dtype:
            refuse(matmul_kernel(input, other), input)
        return fn(input, other)
    return matmul


def refuse_einsum(tensors, spec):
    """torch's einsum of uint16/32/64 operands: a subscript summed over two operands is a ``bmm``
    (no kernel); one summed within one operand is a ``sum`` (int64): alone, the result is int64,
    beside another operand its promotion error. Returns the operands to compute with."""
    if not tensors or tensors[0].dtype not in dtypes.WIDE_UINTS:
        return None
    seen = {}
    for letters in spec.inputs:
        for c in set(letters):
            seen[c] = seen.get(c, 0) + 1
    summed = [n for c, n in seen.items() if c not in spec.output]
    if any(n > 1 for n in summed):
        refuse("bmm", tensors[0])
    if summed and len(tensors) > 1:
        raise RuntimeError("Promotion for uint16, uint32, uint64 types is not supported, attempted to promote Long "
                           f"and {dtypes.torch_type_name(tensors[0].dtype.name)}")
    return [t.to(dtypes.int64) for t in tensors] if summed else tensors


def _softmax_guard(method):
    """softmax/log_softmax computing in uint16/32/64 (the input's dtype or ``dtype=``): torch's kernel
    error, its name by whether the dim is the last."""
    @functools.wraps(method)
    def guarded(self, axis=None, dtype=None, *, dim=None):
        target = self.dtype if dtype is None else dtypes.to_dtype(dtype)
        if target in dtypes.WIDE_UINTS:
            d = axis if dim is None else dim
            last = d is None or self.ndim <= 1 or d % self.ndim == self.ndim - 1
            refuse_dtype(f"{method.__name__}{'_lastdim' if last else ''}_kernel_impl", target)
        return method(self, axis, dtype, dim=dim)
    return guarded


def _guarded(method, kernel, message):
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        if self.dtype in dtypes.WIDE_UINTS:
            if message is not None:
                if kwargs.get("dtype") is not None:     # mean(dtype=float32): cast first, as torch
                    return method(self, *args, **kwargs)
                raise RuntimeError(message.format(dtypes.torch_type_name(self.dtype.name)))
            when = _ONLY_WHEN.get(method.__name__)
            if when is not None and not when(self, *args, **kwargs):
                return method(self, *args, **kwargs)
            along = kernel in _ALONG and (args or kwargs.keys() & {"dim", "axis"})
            name = matmul_kernel(self, args[0]) if kernel == "dot" and args else kernel   # mm, mv, @: by dims
            refuse(_ALONG[name] if along else name, self)    # max(dim): torch's kernel along a dim
        return method(self, *args, **kwargs)
    return guarded


def _dims(dims, kwargs):
    dims = kwargs.get("dims", dims)
    if len(dims) == 1 and not isinstance(dims[0], int):
        dims = dims[0]
    return (dims,) if isinstance(dims, int) else tuple(dims)


def refuse_isin(elements, test_elements):
    """torch's isin of uint16/32/64: its sorting path computes, its default one (taken where
    ``test_elements`` has fewer than ``10 * elements.numel() ** 0.145`` values) has no kernel."""
    n, m = (getattr(x, "numel", lambda: 1)() for x in (elements, test_elements))
    if m < 10 * n ** 0.145:
        refuse("isin_default_cpu", elements, test_elements)


def _in_double(method):
    @functools.wraps(method)
    def doubled(self, other, *args, **kwargs):
        if self.dtype in dtypes.WIDE_UINTS and getattr(other, "dtype", None) is self.dtype:
            self, other = self.double(), other.double()
        return method(self, other, *args, **kwargs)
    return doubled


def guard_methods(cls):
    """Make the methods of ``cls`` (``gt.Tensor``) that torch has no uint16/32/64 kernel for raise
    its error for them (gt.flip and the other functions call these methods), and ``allclose``
    compare them in float64, as torch's compares integers (with no subtraction of them)."""
    cls.allclose = _in_double(cls.allclose)
    for name, kernel in _REFUSED.items():
        setattr(cls, name, _guarded(getattr(cls, name), kernel, None))
    for name, message in _RUNTIME.items():
        setattr(cls, name, _guarded(getattr(cls, name), None, message))
    for name in ("softmax", "log_softmax"):
        setattr(cls, name, _softmax_guard(getattr(cls, name)))
