"""torch's fused arithmetic as tensor methods: ``addcmul``, ``addcdiv`` (``input + value * t1 op
t2``), ``addmm``, ``addmv``, ``addr``, ``baddbmm``, ``addbmm`` (``beta * input + alpha *
product``), and ``heaviside``. Composed from gt's differentiable ops, so their gradients are the
ops' own; as in torch, ``beta=0`` ignores ``input`` (its NaN and inf do not reach the result) and
``alpha=1``/``beta=1`` add no multiplication. ``heaviside`` records no gradient (torch has none).
The in-place ``addcmul_``/``addcdiv_`` are gt/tensor/inplace.py's.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

import math

from gt import amp, dtypes
from gt.autograd.sparse_grad import mark
from gt.backend import B
from gt.ops.lerp import Lerp
from gt.tensor.half_scalars import in_float32, is_half_triple
from gt.tensor._args import _scalar
from gt.tensor.arithmetic import _operand, where
from gt.tensor.complex_checks import check_lerp
from gt.tensor.extra_methods import _scaled as _scalar_factor
from gt.tensor.int_scalars import checked_scalar
from gt.tensor.linalg_base import ShapeError
from gt.tensor.nested_operands import is_nested
from gt.tensor.product_dtypes import check_added_product
from gt.tensor.promotion import result_dtype
from gt.tensor.shape import expand_error, torch_node_name

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py


def _tensor(value, op, what):
    value = _operand(value, op)
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {what} must be a tensor, got {type(value).__name__} ({value!r})")
    return value


def _scaled(x, factor):
    return x if factor == 1 else x * factor


def _number(value, op, name, *tensors):
    """``value`` checked: a number (a complex one only where a tensor is complex), and an int where
    every tensor is an integer one (torch's rule; complex tensors take floats, as float ones)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if not (isinstance(value, complex) and any(t.dtype.is_complex for t in tensors)):
            raise TypeError(f"{op}: {name} must be a number (complex only for complex tensors), got {value!r}")
    if not isinstance(value, int) and not any(t.dtype.differentiable for t in tensors):
        raise TypeError(f"{op}: {name} must be an int for integer tensors, got {value!r}")
    return value


# torch's kernels of these cast a float beta/alpha to an integer result's type (truncating it);
# addr and the others refuse it
_TRUNCATING = {"addmm", "addmv", "addbmm", "baddbmm"}


def _coefficient(value, op, name, x, product):
    if (op in _TRUNCATING and isinstance(value, float) and math.isfinite(value)
            and all(t.dtype != dtypes.bool_ and not (t.dtype.is_floating_point or t.dtype.is_complex)
                    for t in (x, product))):
        return math.trunc(value)
    return _number(value, op, name, x, product)


def _add_product(x, product, beta, alpha, op):
    """``beta * x + alpha * product``, with ``x`` ignored when ``beta`` is 0 (torch's rule)."""
    # (addmm, addmv, baddbmm and addbmm checked their operands' dtypes before the product,
    # check_added_product; torch's addr is elementwise: it promotes, a real side to complex too)
    x = _tensor(x, op, "input")
    beta, alpha = _coefficient(beta, op, "beta", x, product), _coefficient(alpha, op, "alpha", x, product)
    if x.shape != product.shape and (x.ndim > product.ndim or expand_error(x.shape, product.shape) is not None):
        raise expand_error(x.shape, product.shape) or ShapeError(
            f"{op}: input of shape {x.shape} does not broadcast to the product's shape {product.shape}")
    if x.dtype == dtypes.bool_ and product.dtype == dtypes.bool_:     # torch's logical form: stays bool
        return (x & bool(beta)) | (product & bool(alpha))
    product = _scaled(product, alpha)
    if beta == 0:
        # the product everywhere, and a zero gradient for x (torch's), whatever NaN x holds
        keep = Tensor._wrap(B.ones(product.shape, dtypes.bool_))
        return where(keep, product, x) if x.requires_grad else product
    return _scaled(x, beta) + product


def _sizes(t):
    return "x".join(str(n) for n in t.shape)


def _product_error(op, a, b, x=None):
    """torch's error (RuntimeError; a ShapeError, so gt's ValueError too) for operands ``a`` and
    ``b`` of ``op`` that do not multiply; ``x``: addmv's input, which its message names."""
    if op == "addmm":
        bad = next((f"{name} must be a matrix, got {t.ndim}-D tensor" for name, t in (("mat1", a), ("mat2", b))
                    if t.ndim != 2), None)
        return ShapeError(bad or f"mat1 and mat2 shapes cannot be multiplied ({_sizes(a)} and {_sizes(b)})")
    if op == "addmv":
        if a.ndim != 2 or b.ndim != 1:
            return ShapeError(f"vector + matrix @ vector expected, got {x.ndim}, {a.ndim}, {b.ndim}")
        return ShapeError(f"size mismatch, got input ({_sizes(x)}), mat ({_sizes(a)}), vec ({_sizes(b)})")
    if op == "addr":
        name, t = ("vec1", a) if a.ndim != 1 else ("vec2", b)
        return ShapeError(f"addr: Expected 1-D argument {name}, but got {t.ndim}-D")
    if a.ndim != 3 or b.ndim != 3:
        return ShapeError(f"{'batch1' if a.ndim != 3 else 'batch2'} must be a 3D tensor")
    if op == "addbmm" and a.shape[0] != b.shape[0]:
        return ShapeError(f"batch1 and batch2 must have same number of batches, got {a.shape[0]} and {b.shape[0]}")
    if op == "addbmm":
        return ShapeError(f"Incompatible matrix sizes for bmm ({a.shape[1]}x{a.shape[2]} and "
                          f"{b.shape[1]}x{b.shape[2]})")
    return ShapeError(f"Expected size for first two dimensions of batch2 tensor to be: [{a.shape[0]}, {a.shape[2]}] "
                      f"but got: [{b.shape[0]}, {b.shape[1]}].")


class FusedMethods:
    __slots__ = ()

    def addcmul(self, tensor1, tensor2, *, value=1):
        """``self + value * tensor1 * tensor2`` (broadcast)."""
        t1, t2 = _tensor(tensor1, "addcmul", "tensor1"), _tensor(tensor2, "addcmul", "tensor2")
        value = _number(value, "addcmul", "value", self, t1, t2)
        if type(value) is int and (dtype := result_dtype(self, t1, t2)).name in dtypes.INT_RANGES:
            # torch's checked cast into an integer result's dtype: uint8 refuses 300, takes -1 as 255
            # (a float16 result's value is checked in float32, which every int64 fits)
            value = checked_scalar(value, dtype, "addcmul's value")
        def in_dtype():
            return self + _scaled(t1 * t2, value)
        if is_half_triple(self, t1, t2):        # torch's float32 kernel, rounded once: (value * t1) * t2
            return in_float32(lambda x, a, b: x + value * a * b, (self, t1, t2), in_dtype)
        return in_dtype()

    def addcdiv(self, tensor1, tensor2, *, value=1):
        """``self + value * tensor1 / tensor2`` (broadcast); integer ``tensor1``/``tensor2`` are
        refused, as torch refuses their division here."""
        t1, t2 = _tensor(tensor1, "addcdiv", "tensor1"), _tensor(tensor2, "addcdiv", "tensor2")
        if not t1.dtype.differentiable and not t2.dtype.differentiable:
            raise TypeError(f"addcdiv: integer division of tensor1 ({t1.dtype!r}) by tensor2 ({t2.dtype!r}) is not "
                            "supported, as in torch; use floating point tensors (or t1 // t2)")
        value = _number(value, "addcdiv", "value", self, t1, t2)
        def in_dtype():
            return self + _scaled(mark(t1 / t2, "addcdiv"), value)
        if is_half_triple(self, t1, t2):        # torch's float32 kernel, rounded once
            return in_float32(lambda x, a, b: x + value * (a / b), (self, t1, t2), in_dtype)
        return in_dtype()

    @torch_node_name("AddmmBackward0")
    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        """``beta * self + alpha * (mat1 @ mat2)``: ``mat1`` (n, m), ``mat2`` (m, p), ``self``
        broadcastable to (n, p)."""
        m1, m2 = _tensor(mat1, "addmm", "mat1"), _tensor(mat2, "addmm", "mat2")
        if m1.ndim != 2 or m2.ndim != 2 or m1.shape[1] != m2.shape[0]:
            raise _product_error("addmm", m1, m2)
        check_added_product("addmm", _tensor(self, "addmm", "input"), m1, m2)
        return _add_product(self, m1 @ m2, beta, alpha, "addmm")

    def addmv(self, mat, vec, *, beta=1, alpha=1):
        """``beta * self + alpha * (mat @ vec)``: ``mat`` (n, m), ``vec`` (m,), ``self`` to (n,)."""
        m, v = _tensor(mat, "addmv", "mat"), _tensor(vec, "addmv", "vec")
        if m.ndim != 2 or v.ndim != 1 or m.shape[1] != v.shape[0]:
            raise _product_error("addmv", m, v, _tensor(self, "addmv", "input"))
        check_added_product("addmv", _tensor(self, "addmv", "input"), m, v)
        with amp.exact():           # torch.autocast leaves addmv in float32
            product = m @ v
        return _add_product(self, product, beta, alpha, "addmv")

    def mv(self, vec):
        vec = _tensor(vec, "mv", "vec")
        if self.ndim == 0:      # torch's mv sizes its result by self.size(0) first
            raise IndexError("Dimension specified as 0 but tensor has no dimensions (mv of a 0-d self: a matrix "
                             "expected)")
        if self.ndim != 2 or vec.ndim != 1:
            raise ShapeError(f"vector + matrix @ vector expected, got 1, {self.ndim}, {vec.ndim} (mv: a matrix and a "
                             f"vector, got shapes {self.shape} and {vec.shape})")
        if self.shape[1] != vec.shape[0]:
            raise ShapeError(f"size mismatch, got input ({self.shape[0]}), mat ({self.shape[0]}x{self.shape[1]}), "
                             f"vec ({vec.shape[0]}) (mv of shapes {self.shape} and {vec.shape})")
        with amp.exact():           # torch.autocast leaves mv in float32
            return self @ vec

    def lerp(self, end, weight):
        """``self + weight * (end - self)``, rounded once as torch's kernel (gt/ops/lerp.py) for real
        floating tensors of one dtype; ``weight`` a tensor or a number."""
        weight, end = _scalar(weight), _operand(end, "lerp")
        weight = check_lerp(self, end, weight)
        if self.dtype.is_floating_point and getattr(end, "dtype", None) is self.dtype and (
                getattr(weight, "dtype", None) is self.dtype or type(weight) in (int, float)):
            return Lerp.apply(self, end, float(weight) if type(weight) is int else weight)   # torch's kernel
        diff = end - self
        return self + (_scalar_factor(diff, weight) if isinstance(weight, (int, float)) else weight * diff)

    def addr(self, vec1, vec2, *, beta=1, alpha=1):
        """``beta * self + alpha * outer(vec1, vec2)``: ``vec1`` (n,), ``vec2`` (m,), ``self`` to (n, m)."""
        v1, v2 = _tensor(vec1, "addr", "vec1"), _tensor(vec2, "addr", "vec2")
        if v1.ndim != 1 or v2.ndim != 1:
            raise _product_error("addr", v1, v2)
        return _add_product(self, v1.reshape(-1, 1) * v2.reshape(1, -1), beta, alpha, "addr")

    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        """``beta * self + alpha * (batch1 @ batch2)``: ``batch1`` (b, n, m), ``batch2`` (b, m, p),
        ``self`` broadcastable to (b, n, p)."""
        b1, b2 = _tensor(batch1, "baddbmm", "batch1"), _tensor(batch2, "baddbmm", "batch2")
        if b1.ndim != 3 or b2.ndim != 3 or b1.shape[0] != b2.shape[0] or b1.shape[2] != b2.shape[1]:
            raise _product_error("baddbmm", b1, b2)
        check_added_product("baddbmm", _tensor(self, "baddbmm", "input"), b1, b2)
        return _add_product(self, b1 @ b2, beta, alpha, "baddbmm")

    def addbmm(self, batch1, batch2, *, beta=1, alpha=1):
        """``beta * self + alpha * sum_i(batch1[i] @ batch2[i])``: ``batch1`` (b, n, m), ``batch2``
        (b, m, p), ``self`` broadcastable to (n, p)."""
        b1, b2 = _tensor(batch1, "addbmm", "batch1"), _tensor(batch2, "addbmm", "batch2")
        if b1.ndim != 3 or b2.ndim != 3 or b1.shape[0] != b2.shape[0] or b1.shape[2] != b2.shape[1]:
            raise _product_error("addbmm", b1, b2)
        check_added_product("addbmm", _tensor(self, "addbmm", "input"), b1, b2)
        # (n, b*m) @ (b*m, p): the sum over the batch is one product
        n, p = b1.shape[1], b2.shape[2]
        product = b1.permute(1, 0, 2).reshape(n, -1) @ b2.reshape(-1, p)
        return _add_product(self, product, beta, alpha, "addbmm")

    def heaviside(self, values):
        """0 where ``self < 0``, 1 where ``self > 0``, ``values`` (broadcast) where ``self == 0``;
        ``values`` must have this tensor's dtype (torch's rule); no gradient, as torch."""
        if is_nested(values):
            return values._reflected("heaviside", self)     # gt.nested's op (its where takes no dense condition)
        values = _tensor(values, "heaviside", "values")
        if values.dtype != self.dtype:
            raise RuntimeError(f"heaviside is not yet implemented for tensors with different dtypes (input "
                               f"{self.dtype!r}, values {values.dtype!r}).")
        x, v = self.detach(), values.detach()
        return where(x == 0, v, (x > 0).to(self.dtype))
