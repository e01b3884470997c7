"""torch's refusal of products of two dtypes: ``matmul`` and its family (``mm``, ``mv``, ``bmm``,
``dot``, ``addmm``, ``addmv``, ``baddbmm``, ``addbmm``, ``linear``, ``bilinear``, ``inner``,
``multi_dot``) keep one dtype where elementwise arithmetic promotes (``float32 @ float64``,
``float32 @ int64``, ``int32 @ int64`` are RuntimeErrors), and have no bool kernel. Each check is
called only once the operands' dtypes are known to differ (or to be bool), so that the common
product of one dtype reads nothing more; its message is torch's own, which names the kernel the
operands' dims pick (``dot``, ``addmv``, ``bmm``, ``mm``).

Under an open autocast block torch casts the float operands (float64 aside) of its autocast ops
(``matmul``, ``mm``, ``bmm``, ``addmm``, ``baddbmm``, ``addbmm``, ``linear``, ``linalg.vecdot``)
to the block's dtype first, so float32 meets bfloat16 there: ``autocast_casts`` lets those by.
"""

from gt import amp, dtypes
from gt.tensor.complex_checks import cpp_name

_CAST = frozenset((dtypes.float32, dtypes.float16, dtypes.bfloat16))   # the dtypes autocast lowers


def _word(t):
    return dtypes.torch_type_name(t.dtype.name)


def autocast_casts(*tensors):
    """Whether an open autocast block casts every one of ``tensors`` (None: absent) to its dtype."""
    return bool(amp._active) and amp._active[-1] is not None and all(t is None or t.dtype in _CAST for t in tensors)


def _kernel(a, b):
    """The kernel torch's matmul picks for operands of ``a``'s and ``b``'s dims."""
    if b.ndim == 1:
        return "dot" if a.ndim == 1 else "addmv_impl_cpu"
    return "bmm" if b.ndim > 2 else "addmm_impl_cpu_"


def refuse_matmul(a, b, autocast=True):
    """torch's error for ``a @ b`` (tensors of 1 or more dims) of two dtypes: its message by the
    kernel the dims pick (a vector's ``dot``, a matrix-vector ``addmv``, a batch ``bmm``, else
    ``mm``), after autocast's casts (``autocast=False``: ops that autocast leaves alone, ``dot``)."""
    if autocast and autocast_casts(a, b):
        return
    kernel = _kernel(a, b)
    if kernel == "dot":
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found {_word(a)} and {_word(b)}")
    if kernel == "addmv_impl_cpu":      # torch's result takes the vector's dtype, named first
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {_word(b)}, {_word(a)}, and "
                           f"{_word(b)}")
    if kernel == "bmm":
        raise RuntimeError(f"expected scalar type {_word(a)} but found {_word(b)}")
    raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {cpp_name(a.dtype)} != "
                       f"{cpp_name(b.dtype)}")


def refuse_bool_matmul(a, b):
    """torch's NotImplementedError for ``a @ b`` of two bool tensors: its products have no bool kernel."""
    raise NotImplementedError(f"\"{_kernel(a, b)}\" not implemented for 'Bool'")


def check_added_product(op, x, m1, m2):
    """torch's dtype checks of ``addmm``/``addbmm`` (``x`` beside ``m2``, then ``m1`` beside ``m2``),
    ``addmv`` (all three at once) and ``baddbmm`` (``x`` beside ``m1``, then ``m1`` beside ``m2``)."""
    dx, d1, d2 = x.dtype, m1.dtype, m2.dtype
    if dx is d1 and d1 is d2:
        if d1 is dtypes.bool_:
            kernel = {"addmm": "addmm_impl_cpu_", "addbmm": "addmm_impl_cpu_", "addmv": "addmv_impl_cpu"}.get(op, op)
            raise NotImplementedError(f"\"{kernel}\" not implemented for 'Bool'")
        return
    if op != "addmv" and autocast_casts(x, m1, m2):
        return
    if op == "addmv":
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {_word(x)}, {_word(m1)}, and "
                           f"{_word(m2)}")
    if op == "baddbmm":
        if dx is not d1:
            raise RuntimeError(f"Input dtypes must be the same, got: input {cpp_name(dx)}, batch1: {cpp_name(d1)}, "
                               f"batch2: {cpp_name(d2)}")
        raise RuntimeError(f"expected scalar type {_word(m1)} but found {_word(m2)}")
    if dx is not d2:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got {_word(x)} and {_word(m2)}")
    raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {_word(m1)} and {_word(m2)}")


def check_bilinear(x1, x2, weight, bias):
    """torch's RuntimeError for ``bilinear`` operands of more than one dtype."""
    named = [("input1", x1), ("input2", x2), ("weight", weight)] + ([("bias", bias)] if bias is not None else [])
    if x1.dtype is dtypes.bool_ and all(t.dtype is dtypes.bool_ for _, t in named):
        raise NotImplementedError("\"bmm\" not implemented for 'Bool'")
    if any(t.dtype is not x1.dtype for _, t in named):
        raise RuntimeError("All tensors must have the same dtype, got " +
                           ", ".join(f"{n}: {cpp_name(t.dtype)}" for n, t in named))


def check_multi_dot(tensors):
    """torch's RuntimeError for ``multi_dot``/``chain_matmul`` operands of more than one dtype."""
    first = tensors[0].dtype
    for i, t in enumerate(tensors):
        if t.dtype is not first:
            raise RuntimeError(f"multi_dot(): all tensors must have be the same dtype but tensor 0 is "
                               f"{cpp_name(first)} and tensor {i} {cpp_name(t.dtype)}")
