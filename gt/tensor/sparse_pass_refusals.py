"""torch 2.13's errors where a sparse COO gradient reaches an op whose backward takes no sparse one.

A computed weight looked up by ``F.embedding(..., sparse=True)`` hands its op a sparse gradient
(gt/tensor/sparse_pass_on.py). torch's backward of many ops cannot run on it and raises: a
kernel with no SparseCPU version (``tanh_backward``, ``sigmoid_backward``, ``where``), a division
by a dense tensor (``sqrt``, ``log``, ``x / t``), a reshape or a transpose between the sparse and
the dense dimension (``view``, ``t()``). ``refusal`` gives the error torch raises there, or None.
"""

_NO_KERNEL = ("Could not run 'aten::{}' with arguments from the 'SparseCPU' backend. This could be because the "
              "operator doesn't exist for this backend, or was omitted during the selective/custom build process "
              "(if using custom build).")
_DIVISION = "Sparse division requires a scalar or zero-dim dense tensor divisor (got shape {} for divisor)"
_PERMUTE = ("permute(sparse_coo): transpositions between sparse and dense dimensions are not allowed.Only "
            "transpositions within sparse and dense dimensions are supported.")

# the kernel that torch's backward of each op runs on the gradient (gt's op, or its torch node name)
_KERNEL = {"Tanh": "tanh_backward", "Sigmoid": "sigmoid_backward", "Gelu": "gelu_backward", "Where": "where.self",
           "Maximum": "where.self", "Minimum": "where.self", "Clip": "where.self", "Cat": "as_strided",
           "Logit": "logit_backward", "SincBackward0": "where.self", "IndexBackward0": "_index_put_impl_",
           "SliceBackward0": "as_strided", "SelectBackward0": "as_strided"}
# ops whose torch backward divides the gradient by the input (its shape named)
_DIVIDES = frozenset(("Sqrt", "Log", "AtanBackward0", "AtanhBackward0", "Log2Backward0", "Log10Backward0"))


def _no_kernel(kernel):
    return NotImplementedError(_NO_KERNEL.format(kernel))


def _division(shape):
    return RuntimeError(_DIVISION.format(list(shape)))


def refused(key):
    """The error of a function marked ``("refuse", key)`` (gt/autograd/sparse_grad.py's ``mark``):
    ``key`` names the kernel torch's backward runs (``leaky_relu_backward``), or ``"relu"``/``"fmax"``."""
    if key == "relu":         # threshold_backward asks the sparse gradient's is_coalesced of a dense tensor
        return RuntimeError("is_coalesced expected sparse coordinate tensor layout but got Strided")
    if key == "fmax":
        return RuntimeError("unsupported memory format option Contiguous")
    return _no_kernel(key)


def _named(op):
    name = type(op).__name__
    if name in ("MathFunction", "GetItem", "Reshape"):
        return getattr(op, "_torch_name", None) or name
    if name == "BinaryMathFunction":
        return op.fn
    return name


def _permute(op, g):
    """torch's transpose or permute of a sparse gradient with dense dimensions: refused unless it
    moves no dimension (``permute(0, 1)``)."""
    inverse = op.inverse
    moved = [d for d, k in enumerate(inverse) if d != k]
    if not moved:
        return None
    name = getattr(op, "_torch_name", None)
    sparse_dim = g.sparse_dim()
    if name == "TBackward0":
        return RuntimeError(f"t() expects a tensor with <= 2 sparse and 0 dense dimensions, but got {sparse_dim} "
                            f"sparse and {g.dense_dim()} dense dimensions")
    if name == "TransposeBackward0" and len(moved) == 2:
        return RuntimeError(f"sparse transpose: transposed dimensions must be sparse Got sparse_dim: {sparse_dim}, "
                            f"d0: {moved[0]}, d1: {moved[1]}")
    if any(d < sparse_dim <= inverse[d] or inverse[d] < sparse_dim <= d for d in moved):
        return RuntimeError(_PERMUTE)
    return None


def _pow(op):
    # pow(x, t) (a tensor exponent): torch's gradient of x masks 0 ** 0 with ``where``
    a, b = op.inputs[:2]
    if getattr(a, "requires_grad", False) and getattr(b, "ndim", None) is not None:
        return _no_kernel("where.self")
    return None


def _div(op):
    # x / t: torch's gradient of x is the sparse gradient divided by t (a number or 0-d divisor only)
    a, b = op.inputs[:2]
    if getattr(a, "requires_grad", False) and getattr(b, "ndim", 0) > 0:
        if getattr(op, "_sparse_rule", ("",))[0] != "addcdiv":       # addcdiv's multiplies by value / tensor2
            return _division(b.shape)
    return None


def refusal(op, g, graph=False):
    """The error torch 2.13's backward of ``op`` raises on the sparse COO gradient ``g`` of its
    output, or None where it takes one (or gt does not know it to raise). ``graph``: under
    ``create_graph=True`` (torch's logit then divides instead of running ``logit_backward``)."""
    name = _named(op)
    if graph and name == "Logit":
        return _division(op.inputs[0].shape)
    kernel = _KERNEL.get(name)
    if kernel is not None:
        return _no_kernel(kernel)
    if name in _DIVIDES:
        return _division(op.inputs[0].shape)
    if name == "Relu":
        return refused("relu")
    if name == "ViewBackward0":
        return RuntimeError("reshape is not implemented for sparse tensors")
    if type(op).__name__ == "Permute":
        return _permute(op, g)
    if name == "Cast":
        return RuntimeError("to(options) doesn't support converting to a different layout, but got self.layout "
                            "being Sparse and options.layout set as Strided")
    if name == "xlogy":
        return _no_kernel("xlogy.Tensor")
    if name in ("hypot", "logaddexp", "logaddexp2"):     # the sparse gradient (times x) divided by a dense one
        return _division(g.shape)
    if name in ("SqueezeBackward0", "SqueezeBackward1", "SqueezeBackward2") and op.in_shape != tuple(g.shape):
        return _no_kernel("as_strided")        # unsqueezing the sparse gradient
    if name == "Pow":
        return _pow(op)
    if name == "Div":
        return _div(op)
    return None
