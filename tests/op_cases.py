"""The table of differentiable-op cases shared by test_ops_grad.py (finite differences)
and test_ops_torch.py (torch autograd).

Each ``Case`` is one op on one set of inputs: a gt function, the same computation
in torch (``None`` where the gt lambda runs on torch tensors unchanged), and the
input arrays (float arrays require grad; int/bool arrays are constants such as
indices, masks and conditions). ``op`` names the differentiable op it covers, so
the tests can assert that every op in gt/ops has cases.
"""

from dataclasses import dataclass, field

import numpy as np

import gt
from gt.ops import attention, elementwise, linalg
from gt.ops.conv import ConvInputGrad, ConvWeightGrad, PoolAdjoint, PoolRoute
from gt.ops.padding import PadGrad
from gt.ops.shape import AddAtIndex, DiagonalEmbed
from gt.ops.sorting import PutAlongAxis
from helpers import distinct, nonzero, positive, randn


class _LazyTorch:
    """``T.nn.functional.gelu`` imports torch on first use, so this table loads without torch."""

    def __getattr__(self, name):
        import torch

        return getattr(torch, name)


T = _LazyTorch()


@dataclass
class Case:
    id: str
    op: str
    gt_fn: object
    torch_fn: object
    inputs: tuple
    grad_kw: dict = field(default_factory=dict)   # extra check_grad arguments (eps, rtol)
    torch_kw: dict = field(default_factory=dict)  # extra compare_with_torch arguments


CASES = []


def case(id, op, gt_fn, *inputs, torch_fn=None, grad_kw=None, torch_kw=None):
    CASES.append(Case(f"{op}-{id}", op, gt_fn, torch_fn, tuple(inputs), grad_kw or {}, torch_kw or {}))


def _s(shape):
    return "x".join(map(str, shape)) or "scalar"


# ---- elementwise, broadcasting -----------------------------------------------------------
BROADCAST = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 3), (1, 4, 3)), ((), (2, 3)),
             ((2, 3), ()), ((4, 1), (1, 5))]

for sa, sb in BROADCAST:
    tag = f"{_s(sa)}_{_s(sb)}"
    case(tag, "Add", lambda a, b: a + b, randn(*sa, seed=1), randn(*sb, seed=2))
    case(tag, "Sub", lambda a, b: a - b, randn(*sa, seed=1), randn(*sb, seed=2))
    case(tag, "Mul", lambda a, b: a * b, randn(*sa, seed=1), randn(*sb, seed=2))
    case(tag, "Div", lambda a, b: a / b, randn(*sa, seed=1), nonzero(*sb, seed=2))
    case(tag, "Pow", lambda a, b: a ** b, positive(*sa, seed=1), randn(*sb, seed=2))
    case(tag, "Maximum", lambda a, b: gt.maximum(a, b), distinct(*sa, seed=1), distinct(*sb, seed=2) + 0.05,
         torch_fn=lambda a, b: T.maximum(a, b))
    case(tag, "Minimum", lambda a, b: a.minimum(b), distinct(*sa, seed=1), distinct(*sb, seed=2) + 0.05)

X = randn(3, 4, seed=3)
XP = positive(3, 4, seed=3)
XN = nonzero(3, 4, seed=3)
case("scalar_right", "Add", lambda a: a + 2.5, X)
case("scalar_left", "Add", lambda a: 2.5 + a, X)
case("scalar_right", "Sub", lambda a: a - 1.5, X)
case("scalar_left", "Sub", lambda a: 3.0 - a, X)
case("scalar_right", "Mul", lambda a: a * -2, X)
case("scalar_left", "Mul", lambda a: 0.5 * a, X)
case("self", "Mul", lambda a: a * a, X)
case("scalar_right", "Div", lambda a: a / 3, X)
case("scalar_left", "Div", lambda a: 2 / a, XN)
case("square", "Pow", lambda a: a ** 2, X)
case("cube", "Pow", lambda a: a ** 3, X)
case("zero", "Pow", lambda a: a ** 0, X)
case("sqrt", "Pow", lambda a: a ** 0.5, XP)
case("negative_float", "Pow", lambda a: a ** -1.5, XP)
case("method", "Pow", lambda a: a.pow(2.5), XP)
case("function", "Pow", lambda a, b: gt.pow(a, b), XP, randn(4, seed=4), torch_fn=lambda a, b: T.pow(a, b))
case("rpow", "Pow", lambda a: 2.0 ** a, X)
case("rpow_half", "Pow", lambda a: 0.5 ** a, X)
# a 0-d bound (torch's maximum takes no number: a.maximum(0.03) is its TypeError)
case("scalar", "Maximum", lambda a: a.maximum(a.new_tensor(0.03)), distinct(3, 4), torch_fn=lambda a: a.clamp(min=0.03))
case("scalar", "Minimum", lambda a: a.minimum(a.new_tensor(0.03)), distinct(3, 4), torch_fn=lambda a: a.clamp(max=0.03))

UNARY = [(), (5,), (3, 4), (2, 3, 4)]
for shape in UNARY:
    tag = _s(shape)
    case(tag, "Neg", lambda a: -a, randn(*shape, seed=5))
    case(tag, "Abs", lambda a: a.abs(), nonzero(*shape, seed=5))
    case(tag, "Exp", lambda a: a.exp(), randn(*shape, seed=5))
    case(tag, "Log", lambda a: a.log(), positive(*shape, seed=5))
    case(tag, "Sqrt", lambda a: a.sqrt(), positive(*shape, seed=5))
    case(tag, "Relu", lambda a: a.relu(), nonzero(*shape, seed=5))
    case(tag, "Sigmoid", lambda a: a.sigmoid(), randn(*shape, seed=5, scale=2))
    case(tag, "Tanh", lambda a: a.tanh(), randn(*shape, seed=5, scale=2))
    case(tag, "Gelu", lambda a: a.gelu(), randn(*shape, seed=5, scale=2),
         torch_fn=lambda a: T.nn.functional.gelu(a))
    case(f"tanh_{tag}", "Gelu", lambda a: a.gelu(approximate="tanh"), randn(*shape, seed=5, scale=2),
         torch_fn=lambda a: T.nn.functional.gelu(a, approximate="tanh"))
case("abs_function", "Abs", lambda a: gt.abs(a), XN, torch_fn=lambda a: T.abs(a))
case("builtin_abs", "Abs", lambda a: abs(a), XN)
case("functions", "Exp", lambda a: gt.log(gt.exp(a) + gt.sqrt(a * a + 1.0)), X,
     torch_fn=lambda a: T.log(T.exp(a) + T.sqrt(a * a + 1.0)))
case("wide_range", "Gelu", lambda a: a.gelu(), np.linspace(-6, 6, 25), torch_fn=lambda a: T.nn.functional.gelu(a))
case("wide_range", "Sigmoid", lambda a: a.sigmoid(), np.linspace(-30, 30, 25))

# binary cross-entropy of probabilities and, below, of logits: differentiable in both arguments
case("none", "BinaryCrossEntropy", lambda x, y: gt.nn.functional.binary_cross_entropy(x, y, reduction="none"),
     positive(4, 3, seed=11, low=0.05, high=0.95), positive(4, 3, seed=12, low=0.0, high=1.0),
     torch_fn=lambda x, y: T.nn.functional.binary_cross_entropy(x, y, reduction="none"))
case("mean", "BinaryCrossEntropy", lambda x, y: gt.nn.functional.binary_cross_entropy(x, y),
     positive(6, seed=13, low=0.01, high=0.99), positive(6, seed=14, low=0.0, high=1.0),
     torch_fn=lambda x, y: T.nn.functional.binary_cross_entropy(x, y))

# binary cross-entropy of logits: differentiable in the logits, the targets and pos_weight
_BCE = "BinaryCrossEntropyWithLogits"
_XB, _YB = randn(4, 3, seed=7, scale=3), positive(4, 3, seed=8, low=0.0, high=1.0)
_XB[0, 0] = 0.0   # the kink of |x| and max(-x, 0), where a composition of them gets the gradient wrong
case("none", _BCE, lambda x, y: gt.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none"),
     _XB, _YB, torch_fn=lambda x, y: T.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none"))
_PW = positive(3, seed=9)   # a constant, as torch has it
case("pos_weight", _BCE,
     lambda x, y: gt.nn.functional.binary_cross_entropy_with_logits(x, y, pos_weight=_PW, reduction="sum"),
     _XB, _YB, torch_fn=lambda x, y: T.nn.functional.binary_cross_entropy_with_logits(
         x, y, pos_weight=T.tensor(_PW, dtype=x.dtype), reduction="sum"))
case("weight_mean", _BCE,
     lambda x, y: gt.nn.functional.binary_cross_entropy_with_logits(x, y, weight=np.arange(3.0)),
     _XB, _YB, torch_fn=lambda x, y: T.nn.functional.binary_cross_entropy_with_logits(
         x, y, weight=T.arange(3.0, dtype=x.dtype)))
case("wide_range", _BCE, lambda x, y: gt.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none"),
     np.linspace(-30, 30, 25), positive(25, seed=10, low=0.0, high=1.0),
     torch_fn=lambda x, y: T.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="none"))

# clip: values are multiples of 0.1, bounds sit halfway between two of them (no kinks)
XC = distinct(3, 5, seed=6)
# rounding: values between two multiples of 0.1 and never on an integer or a half (no steps)
XR = XC * 7 + 0.05
for _how in ("floor", "ceil", "trunc", "round", "sign"):
    case(_how, "Rounding", lambda a, h=_how: getattr(a, h)() * a, XR)
# floor division: XR / 0.7 lies 0.07 above an integer (no steps); torch's own // has no
# derivative (gt's neither: tests/test_func_autograd_leftovers_parity.py), div(rounding_mode="floor") zeros
case("floor_divide", "FloorDivide", lambda a, b: a.div(b, rounding_mode="floor") * a, XR, np.full(5, 0.7),
     torch_fn=lambda a, b: T.div(a, b, rounding_mode="floor") * a)
case("norm", "Norm2", lambda a: a.norm(), XC)
case("norm_dim_keep", "Norm2", lambda a: a.norm(dim=1, keepdim=True), XC)
case("p3", "NormP", lambda a: a.norm(p=3), XC)
# no zero entry below: |x| ** p is not smooth there for p < 2 (its gradient cases are in test_math_parity.py)
case("p1.5_dim_keep", "NormP", lambda a: a.norm(p=1.5, dim=1, keepdim=True), XR)
case("p0.5_dim0", "NormP", lambda a: a.norm(p=0.5, dim=0), XR)
case("p_negative", "NormP", lambda a: a.norm(p=-1.5, dim=1), XR)
# the count of non-zeros has no gradient (torch's undefined one): only the product's other factor's flows
case("p0_times_sum", "NormCount", lambda a: a.norm(p=0, dim=1) * a.sum(), XR)
case("logsumexp_dim", "LogSumExp", lambda a: a.logsumexp(dim=1), XC)
case("logsumexp_keep", "LogSumExp", lambda a: a.logsumexp(dim=0, keepdim=True) * a, XC)
case("logsumexp_all", "LogSumExp", lambda a: gt.logsumexp(a, dim=(0, 1)), XC, torch_fn=lambda a: T.logsumexp(a, dim=(0, 1)))
case("both", "Clip", lambda a: a.clip(-0.25, 0.35), XC, torch_fn=lambda a: a.clamp(-0.25, 0.35))
case("min_only", "Clip", lambda a: a.clip(min=-0.15), XC, torch_fn=lambda a: a.clamp(min=-0.15))
case("max_only", "Clip", lambda a: a.clip(max=0.05), XC, torch_fn=lambda a: a.clamp(max=0.05))
case("tensor_bounds", "Clip", lambda a, lo, hi: a.clip(lo, hi), XC, np.full(5, -0.25), distinct(3, 1, seed=7) + 0.05,
     torch_fn=lambda a, lo, hi: a.clamp(lo, hi))
case("tensor_min", "Clip", lambda a, lo: a.clip(min=lo), XC, distinct(5, seed=8) * 0.5 + 0.025,
     torch_fn=lambda a, lo: a.clamp(min=lo))
case("clamp_function", "Clip", lambda a: gt.clamp(a, -0.45, 0.45), XC, torch_fn=lambda a: T.clamp(a, -0.45, 0.45))
case("elu", "ExpBranchClip", lambda a: gt.nn.functional.elu(a, 1.5), XR, torch_fn=lambda a: T.nn.functional.elu(a, 1.5))
case("celu", "ExpBranchClip", lambda a: gt.nn.functional.celu(a, 0.5), XR,
     torch_fn=lambda a: T.nn.functional.celu(a, 0.5))

COND = randn(3, 4, seed=7) > 0
case("same_shape", "Where", lambda c, a, b: gt.where(c, a, b), COND, randn(3, 4, seed=1), randn(3, 4, seed=2),
     torch_fn=lambda c, a, b: T.where(c, a, b))
case("broadcast", "Where", lambda c, a, b: gt.where(c, a, b), COND[0], randn(3, 4, seed=1), randn(3, 1, seed=2),
     torch_fn=lambda c, a, b: T.where(c, a, b))
case("scalar_other", "Where", lambda c, a: gt.where(c, a, 0.0), COND, randn(3, 4, seed=1),
     torch_fn=lambda c, a: T.where(c, a, 0.0))
case("masked_fill", "Where", lambda c, a: a.masked_fill(c, -1.0), COND, randn(3, 4, seed=1))

# ---- softmax family -----------------------------------------------------------------------
for shape, axis in [((5,), 0), ((3, 4), -1), ((2, 3, 4), -1), ((2, 3, 4), 0), ((2, 3, 4), 1)]:
    tag = f"{_s(shape)}_axis{axis}"
    case(tag, "Softmax", lambda a, ax=axis: a.softmax(ax), randn(*shape, seed=8, scale=2),
         torch_fn=lambda a, ax=axis: a.softmax(ax))
    case(tag, "LogSoftmax", lambda a, ax=axis: a.log_softmax(axis=ax), randn(*shape, seed=8, scale=2),
         torch_fn=lambda a, ax=axis: a.log_softmax(dim=ax))
case("dim_keyword", "Softmax", lambda a: gt.softmax(a, dim=0), randn(3, 4, seed=8),
     torch_fn=lambda a: T.softmax(a, dim=0))
case("huge", "Softmax", lambda a: a.softmax(-1), randn(3, 4, seed=8) + 1000.0, torch_fn=lambda a: a.softmax(-1))
case("huge", "LogSoftmax", lambda a: a.log_softmax(-1), randn(3, 4, seed=8) * 100 + 1000.0,
     torch_fn=lambda a: a.log_softmax(-1))

# softmax cross-entropy of logits and class indices (a constant): F.cross_entropy's one op
_TGT = np.array([2, 0, 3, 3, 1])
for red in ("mean", "sum", "none"):
    case(red, "SoftmaxCrossEntropy", lambda x, r=red: gt.nn.functional.cross_entropy(x, _TGT, reduction=r),
         randn(5, 4, seed=11, scale=2),
         torch_fn=lambda x, r=red: T.nn.functional.cross_entropy(x, T.tensor(_TGT), reduction=r))
case("huge", "SoftmaxCrossEntropy", lambda x: gt.nn.functional.cross_entropy(x, _TGT[:3]),
     randn(3, 4, seed=12) * 100 + 1000.0, torch_fn=lambda x: T.nn.functional.cross_entropy(x, T.tensor(_TGT[:3])))

# ---- reductions ---------------------------------------------------------------------------
XR = randn(2, 3, 4, seed=9)
XD = distinct(2, 3, 4, seed=9)
AXES = [None, 0, -1, 1, (0, 2), (-1, -3)]


def _dims(axis, ndim=3):
    return tuple(range(ndim)) if axis is None else axis


for axis in AXES:
    for keep in (False, True):
        tag = f"axis{axis}_keep{keep}".replace(" ", "")
        case(tag, "Sum", lambda a, ax=axis, k=keep: a.sum(axis=ax, keepdims=k), XR,
             torch_fn=lambda a, ax=axis, k=keep: a.sum(dim=ax, keepdim=k))
        case(tag, "Mean", lambda a, ax=axis, k=keep: a.mean(axis=ax, keepdims=k), XR,
             torch_fn=lambda a, ax=axis, k=keep: a.mean(dim=ax, keepdim=k))
        case(tag, "Max", lambda a, ax=axis, k=keep: a.max(axis=ax, keepdims=k), XD,
             torch_fn=lambda a, ax=axis, k=keep: T.amax(a, dim=_dims(ax), keepdim=k))
        case(tag, "Min", lambda a, ax=axis, k=keep: a.min(axis=ax, keepdims=k), XD,
             torch_fn=lambda a, ax=axis, k=keep: T.amin(a, dim=_dims(ax), keepdim=k))
        for ddof in (0, 1):
            case(f"{tag}_ddof{ddof}", "var", lambda a, ax=axis, k=keep, d=ddof: a.var(axis=ax, keepdims=k, ddof=d),
                 XR, torch_fn=lambda a, ax=axis, k=keep, d=ddof: a.var(dim=ax, keepdim=k, correction=d))
        case(tag, "StdFromVar", lambda a, ax=axis, k=keep: a.std(axis=ax, keepdims=k), XR,
             torch_fn=lambda a, ax=axis, k=keep: a.std(dim=ax, keepdim=k, correction=0))
case("dim_keepdim", "Sum", lambda a: a.sum(dim=-1, keepdim=True), XR)
case("function", "Sum", lambda a: gt.sum(a, 1), XR, torch_fn=lambda a: T.sum(a, 1))
case("function", "Mean", lambda a: gt.mean(a, axis=(0, 1)), XR, torch_fn=lambda a: T.mean(a, dim=(0, 1)))
case("scalar_input", "Sum", lambda a: a.sum(), randn(seed=9))
case("max_function", "Max", lambda a: gt.max(a), XD, torch_fn=lambda a: a.max())
# the inf-norms (|values| distinct: no ties)
case("inf_norm", "NormMax", lambda a: a.norm(float("inf"), dim=1), XD + 0.03,
     torch_fn=lambda a: T.linalg.vector_norm(a, float("inf"), dim=1))
case("neg_inf_norm", "NormMin", lambda a: gt.linalg.vector_norm(a, float("-inf"), dim=(0, 2), keepdim=True), XD + 0.03,
     torch_fn=lambda a: T.linalg.vector_norm(a, float("-inf"), dim=(0, 2), keepdim=True))
case("unbiased", "var", lambda a: a.var(1, unbiased=True), XR, torch_fn=lambda a: a.var(1, unbiased=True))

# ---- layout -------------------------------------------------------------------------------
X3 = randn(2, 3, 4, seed=10)
X1 = randn(2, 1, 3, 1, seed=10)
case("6x4", "Reshape", lambda a: a.reshape(6, 4), X3)
case("minus1", "Reshape", lambda a: a.reshape(-1), X3)
case("tuple_minus1", "Reshape", lambda a: a.reshape((4, -1)), X3)
case("inner_minus1", "Reshape", lambda a: a.reshape(2, -1, 2), X3)
case("scalar", "Reshape", lambda a: a.reshape(1, 1), randn(seed=10))
case("view", "Reshape", lambda a: a.view(3, 8), X3)
case("flatten", "Reshape", lambda a: a.flatten(), X3)
case("flatten1", "Reshape", lambda a: a.flatten(1), X3)
case("function", "Reshape", lambda a: gt.reshape(a, (12, 2)), X3, torch_fn=lambda a: T.reshape(a, (12, 2)))
case("unsqueeze0", "Reshape", lambda a: a.unsqueeze(0), X3)
case("unsqueeze-1", "Reshape", lambda a: a.unsqueeze(-1), X3)
case("unsqueeze2", "Reshape", lambda a: a.unsqueeze(dim=2), X3)
case("unsqueeze_scalar", "Reshape", lambda a: a.unsqueeze(0), randn(seed=10))
case("squeeze_all", "Reshape", lambda a: a.squeeze(), X1)
case("squeeze1", "Reshape", lambda a: a.squeeze(1), X1)
case("squeeze-1", "Reshape", lambda a: a.squeeze(axis=-1), X1)
case("squeeze_not_1", "Reshape", lambda a: a.squeeze(0) * 1.0, X1)
case("squeeze_tuple", "Reshape", lambda a: a.squeeze((1, 3)), X1)
case("201", "Permute", lambda a: a.permute(2, 0, 1), X3)
case("negative", "Permute", lambda a: a.permute(-1, 0, 1), X3)
case("tuple", "Permute", lambda a: a.permute((1, 2, 0)), X3)
case("transpose02", "Permute", lambda a: a.transpose(0, 2), X3)
case("transpose_negative", "Permute", lambda a: a.transpose(-1, -3), X3)
case("transpose_no_args", "Permute", lambda a: a.transpose(), X3, torch_fn=lambda a: a.transpose(-2, -1))
case("T", "Permute", lambda a: a.T, X3, torch_fn=lambda a: a.mT)   # gt's .T: the last two axes
case("T_2d", "Permute", lambda a: a.T, randn(3, 4))
case("mT", "Permute", lambda a: a.mT, X3)
case("last_two", "Diagonal", lambda a: a.diagonal(), randn(3, 4, seed=30))
case("dims02", "Diagonal", lambda a: a.diagonal(0, 0, 2), randn(3, 4, 5, seed=31))
case("offset_swapped", "Diagonal", lambda a: a.diagonal(1, 2, 1), randn(3, 4, 5, seed=32))
case("negative_offset", "Diagonal", lambda a: a.diagonal(-2, -1, 0), randn(3, 4, 5, seed=33))
case("dims02", "DiagonalEmbed", lambda g: DiagonalEmbed.apply(g, (3, 4, 5), g.dtype, (0, 0, 2)),
     randn(4, 3, seed=34), torch_fn=lambda g: T.diagonal_scatter(T.zeros(3, 4, 5, dtype=g.dtype), g, 0, 0, 2))
case("size1_axis", "Expand", lambda a: a.expand(2, 3, 4), randn(2, 1, 4, seed=11))
case("new_leading", "Expand", lambda a: a.expand(2, 3, 5), randn(3, 1, seed=11))
case("minus1", "Expand", lambda a: a.expand(-1, 3, -1), randn(2, 1, 4, seed=11))
case("from_scalar", "Expand", lambda a: a.expand(2, 3), randn(seed=11))
case("expand_as", "Expand", lambda a, b: a.expand_as(b) * b, randn(1, 4, seed=11), randn(3, 4, seed=12))

case("axis0", "Cat", lambda a, b, c: gt.cat([a, b, c]), randn(2, 3, seed=1), randn(1, 3, seed=2), randn(4, 3, seed=3),
     torch_fn=lambda a, b, c: T.cat([a, b, c]))
case("axis1", "Cat", lambda a, b: gt.cat((a, b), axis=1), randn(2, 1, seed=1), randn(2, 3, seed=2),
     torch_fn=lambda a, b: T.cat((a, b), dim=1))
case("axis-1", "Cat", lambda a, b: gt.cat([a, b], dim=-1), randn(2, 3, 1, seed=1), randn(2, 3, 2, seed=2),
     torch_fn=lambda a, b: T.cat([a, b], dim=-1))
case("concatenate", "Cat", lambda a, b: gt.concatenate([a, b]), randn(2, 3, seed=1), randn(2, 3, seed=2),
     torch_fn=lambda a, b: T.cat([a, b]))
for axis in (0, 1, -1):
    case(f"axis{axis}", "Stack", lambda a, b, c, ax=axis: gt.stack([a, b, c], axis=ax),
         randn(2, 3, seed=1), randn(2, 3, seed=2), randn(2, 3, seed=3),
         torch_fn=lambda a, b, c, ax=axis: T.stack([a, b, c], dim=ax))
case("scalars", "Stack", lambda a, b: gt.stack([a, b]), randn(seed=1), randn(seed=2),
     torch_fn=lambda a, b: T.stack([a, b]))
XS = randn(5, 4, seed=13)
case("size2_axis0", "GetItem", lambda a: a.split(2), XS, torch_fn=lambda a: a.split(2))
case("size3_axis-1", "GetItem", lambda a: a.split(3, axis=-1), XS, torch_fn=lambda a: a.split(3, dim=-1))
case("sizes_list", "GetItem", lambda a: a.split([1, 3], dim=1), XS, torch_fn=lambda a: a.split([1, 3], dim=1))
case("chunk3", "GetItem", lambda a: a.chunk(3), XS, torch_fn=lambda a: a.chunk(3))
case("chunk2_axis1", "GetItem", lambda a: gt.chunk(a, 2, axis=1), XS, torch_fn=lambda a: T.chunk(a, 2, dim=1))

# ---- indexing -----------------------------------------------------------------------------
XI = randn(4, 5, seed=14)
YI = randn(3, 4, 5, seed=15)
MASK = randn(4, 5, seed=16) > 0
case("int", "GetItem", lambda a: a[1], XI)
case("negative_int", "GetItem", lambda a: a[-1], XI)
case("int_int", "GetItem", lambda a: a[-1, -2], XI)
case("slice", "GetItem", lambda a: a[1:3], XI)
case("column", "GetItem", lambda a: a[:, -2], XI)
case("step_none", "GetItem", lambda a: a[None, 1:, ::2], XI)
case("negative_slice", "GetItem", lambda a: a[-3:-1, :-1], XI)
case("ellipsis", "GetItem", lambda a: a[..., 0], YI)
case("int_ellipsis_none", "GetItem", lambda a: a[1, ..., None], YI)
case("repeated_array", "GetItem", lambda a: a[[0, 2, 0, 0]], XI)
case("negative_array", "GetItem", lambda a: a[[-1, 0, -1]], XI)
case("slice_array", "GetItem", lambda a: a[:, [1, 1, 3]], XI)
case("two_arrays", "GetItem", lambda a: a[[0, 1, 3, 1], [2, 2, 0, 2]], XI)
case("2d_index", "GetItem", lambda a: a[np.array([[0, 1], [1, 1]])], XI,
     torch_fn=lambda a: a[T.tensor([[0, 1], [1, 1]])])
case("int_array", "GetItem", lambda a: a[1, [0, 0, 2]], XI)
case("split_arrays", "GetItem", lambda a: a[[0, 0, 2], :, [1, 2, 4]], YI)
# a convolution's gradients as ops of their own (what create_graph=True records for a convolution)
_GEOM = ((5, 4), (2, 1), ((1, 1), (0, 0)), (1, 2), 2)   # size, stride, padding, dilation, groups
case("input", "ConvInputGrad", lambda g, w: ConvInputGrad.apply(g, w, (2, 4, 5, 4), _GEOM),
     randn(2, 4, 3, 2, seed=19), randn(4, 2, 2, 2, seed=20),
     torch_fn=lambda g, w: T.nn.grad.conv2d_input((2, 4, 5, 4), w, g, (2, 1), (1, 0), (1, 2), 2))
case("weight", "ConvWeightGrad", lambda x, g: ConvWeightGrad.apply(x, g, (4, 2, 2, 2), _GEOM),
     randn(2, 4, 5, 4, seed=21), randn(2, 4, 3, 2, seed=22),
     torch_fn=lambda x, g: T.nn.grad.conv2d_weight(x, (4, 2, 2, 2), g, (2, 1), (1, 0), (1, 2), 2))
# a pooling's gradient and its transpose as ops of their own (what create_graph=True records)
_XP = randn(2, 2, 5, 4, seed=23)


def _pool(kind, dtype):
    """The recorded op of a max or average pooling of _XP in ``dtype`` (what PoolRoute reads)."""
    x = gt.tensor(_XP, dtype=dtype, requires_grad=True)
    with gt.enable_grad():      # finite differences evaluate the case under no_grad
        if kind == "max":
            return gt.nn.functional.max_pool2d(x, 2, stride=(2, 1), padding=1).grad_fn
        return gt.nn.functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False).grad_fn


def _torch_pool_grad(pool, g):
    x = T.tensor(_XP, dtype=g.dtype, requires_grad=True)
    y = pool(x)
    return T.autograd.grad(y, x, g, create_graph=True)[0]


_TMAX = lambda x: T.nn.functional.max_pool2d(x, 2, stride=(2, 1), padding=1)  # noqa: E731
_TAVG = lambda x: T.nn.functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)  # noqa: E731


def _torch_picked(h):
    """``h`` read where the max pooling of _XP took its maxima (the transpose of its backward)."""
    _, idx = T.nn.functional.max_pool2d(T.tensor(_XP, dtype=h.dtype), 2, stride=(2, 1), padding=1,
                                        return_indices=True)
    return h.flatten(2).gather(2, idx.flatten(2)).reshape(idx.shape)


case("max", "PoolRoute", lambda g: PoolRoute.apply(g, _pool("max", g.dtype)), randn(2, 2, 3, 5, seed=24),
     torch_fn=lambda g: _torch_pool_grad(_TMAX, g))
case("avg", "PoolRoute", lambda g: PoolRoute.apply(g, _pool("avg", g.dtype)), randn(2, 2, 3, 2, seed=25),
     torch_fn=lambda g: _torch_pool_grad(_TAVG, g))
case("max", "PoolAdjoint", lambda h: PoolAdjoint.apply(h, _pool("max", h.dtype)), randn(2, 2, 5, 4, seed=26),
     torch_fn=_torch_picked)
case("avg", "PoolAdjoint", lambda h: PoolAdjoint.apply(h, _pool("avg", h.dtype)), randn(2, 2, 5, 4, seed=27), torch_fn=_TAVG)




# padding's gradient as an op of its own (what create_graph=True records)
_XPAD = randn(2, 3, 4, seed=28)


def _padded(mode):
    with gt.enable_grad():
        return gt.nn.functional.pad(gt.tensor(_XPAD, requires_grad=True), _PADS[mode], mode=mode).grad_fn


def _torch_pad_grad(mode, g):
    x = T.tensor(_XPAD, dtype=g.dtype, requires_grad=True)
    return T.autograd.grad(T.nn.functional.pad(x, _PADS[mode], mode=mode), x, g, create_graph=True)[0]


_PADS = {"constant": (2, 1, -1, 1), "reflect": (2, 1, 1, 0), "replicate": (2, 1, 1, 0), "circular": (2, 1, 1, 0)}
for _mode, _shape in (("constant", (2, 3, 7)), ("reflect", (2, 4, 7)), ("replicate", (2, 4, 7)), ("circular", (2, 4, 7))):
    case(_mode, "PadGrad", lambda g, mode=_mode: PadGrad.apply(g, _padded(mode)), randn(*_shape, seed=29),
         torch_fn=lambda g, mode=_mode: _torch_pad_grad(mode, g))


# a sort's gradient as an op of its own (what create_graph=True records for sort and topk)
_ORDER = np.argsort(randn(3, 4, seed=30), axis=1)[:, :3]
case("rows", "PutAlongAxis", lambda g: PutAlongAxis.apply(g, gt.tensor(_ORDER), (3, 4), 1), randn(3, 3, seed=31),
     torch_fn=lambda g: T.zeros(3, 4, dtype=g.dtype).scatter(1, T.tensor(_ORDER), g))
# indexing's backward as an op of its own (what create_graph=True records for x[index])
case("rows", "AddAtIndex", lambda g: AddAtIndex.apply(g, (4, 3), g.dtype, (slice(1, 3),)),
     randn(2, 3, seed=17), torch_fn=lambda g: T.nn.functional.pad(g, (0, 0, 1, 1)))
case("element", "AddAtIndex", lambda g: AddAtIndex.apply(g, (2, 3), g.dtype, (1, 2)),
     randn(seed=18), torch_fn=lambda g: T.nn.functional.pad(g.reshape(1, 1), (2, 0, 1, 0)))
case("slice_array_slice", "GetItem", lambda a: a[:, [1, 1], 1:3], YI)
case("ellipsis_none_array", "GetItem", lambda a: a[..., None, [0, 0]], YI)
case("tensor_index", "GetItem", lambda a, i: a[i], XI, np.array([3, 3, 0]))
case("bool_mask", "GetItem", lambda a, m: a[m], XI, MASK)
case("bool_mask_rows", "GetItem", lambda a, m: a[m], YI, MASK[:3, :4])
case("slice_bool_mask", "GetItem", lambda a, m: a[:, m], YI, MASK[0, :4])
case("bool_list_mask", "GetItem", lambda a: a[[True, False, True, True]], XI)

# ---- linear algebra -----------------------------------------------------------------------
MATMUL = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)),
          ((5, 2, 3), (5, 3, 4)), ((3,), (2, 3, 4)), ((2, 4, 2, 3), (3,)), ((4, 1, 2, 3), (1, 5, 3, 2)),
          ((2, 3, 2, 3), (2, 3, 3, 4)), ((1, 2, 3), (4, 3, 2))]
for sa, sb in MATMUL:
    case(f"{_s(sa)}_{_s(sb)}", "Matmul", lambda a, b: a @ b, randn(*sa, seed=17), randn(*sb, seed=18))
case("function", "Matmul", lambda a, b: gt.matmul(a, b), randn(2, 3, seed=17), randn(3, 2, seed=18),
     torch_fn=lambda a, b: T.matmul(a, b))
case("method", "Matmul", lambda a, b: a.matmul(b), randn(2, 3, seed=17), randn(3, 2, seed=18))
case("issue_example", "Matmul", lambda x, w: (x @ w).relu().mean(axis=-1, keepdims=True),
     randn(4, 3, seed=17), randn(3, 5, seed=18), torch_fn=lambda x, w: (x @ w).relu().mean(dim=-1, keepdim=True))

for xs in [(5, 3), (2, 5, 3), (3,)]:
    case(_s(xs), "Linear", lambda x, w, b: linalg.Linear.apply(x, w, b), randn(*xs, seed=19), randn(4, 3, seed=20),
         randn(4, seed=21), torch_fn=lambda x, w, b: T.nn.functional.linear(x, w, b))
case("no_bias", "Linear", lambda x, w: linalg.Linear.apply(x, w), randn(2, 5, 3, seed=19), randn(4, 3, seed=20),
     torch_fn=lambda x, w: T.nn.functional.linear(x, w))
for xs in [(5, 3), (2, 5, 3)]:   # Linear then ReLU as one op
    case(_s(xs), "LinearRelu", lambda x, w, b: linalg.LinearRelu.apply(x, w, b), randn(*xs, seed=19),
         randn(4, 3, seed=20), randn(4, seed=21), torch_fn=lambda x, w, b: T.relu(T.nn.functional.linear(x, w, b)))
case("no_bias", "LinearRelu", lambda x, w: linalg.LinearRelu.apply(x, w), randn(2, 5, 3, seed=19),
     randn(4, 3, seed=20), torch_fn=lambda x, w: T.relu(T.nn.functional.linear(x, w)))
case("4x6", "LayerNorm", lambda x, w, b: linalg.LayerNorm.apply(x, w, b), randn(4, 6, seed=22),
     1 + randn(6, seed=23, scale=0.1), randn(6, seed=24),
     torch_fn=lambda x, w, b: T.nn.functional.layer_norm(x, (6,), w, b))
case("2x3x6", "LayerNorm", lambda x, w, b: linalg.LayerNorm.apply(x, w, b, eps=1e-3), randn(2, 3, 6, seed=22),
     1 + randn(6, seed=23, scale=0.1), randn(6, seed=24),
     torch_fn=lambda x, w, b: T.nn.functional.layer_norm(x, (6,), w, b, eps=1e-3))
case("two_axes", "LayerNorm", lambda x, w, b: linalg.LayerNorm.apply(x, w, b, n_axes=2), randn(2, 3, 6, seed=22),
     1 + randn(3, 6, seed=23, scale=0.1), randn(3, 6, seed=24),
     torch_fn=lambda x, w, b: T.nn.functional.layer_norm(x, (3, 6), w, b))
case("no_affine", "LayerNorm", lambda x: linalg.LayerNorm.apply(x, None, None), randn(3, 5, seed=22),
     torch_fn=lambda x: T.nn.functional.layer_norm(x, (5,)))


def _torch_attention(q, k, v, heads, causal):
    b, t, d = q.shape
    qh, kh, vh = (a.reshape(b, t, heads, d // heads).transpose(1, 2) for a in (q, k, v))
    scores = qh @ kh.transpose(-2, -1) * (1.0 / (d // heads) ** 0.5)
    if causal:
        scores = scores.masked_fill(T.ones(t, t, dtype=T.bool).triu(1), float("-inf"))
    return (scores.softmax(-1) @ vh).transpose(1, 2).reshape(b, t, d)


for (b, t, d, heads), causal in [((2, 3, 4, 2), False), ((2, 3, 4, 2), True), ((1, 4, 6, 3), True),
                                 ((3, 1, 2, 1), False)]:
    case(f"{b}x{t}x{d}_h{heads}{'_causal' if causal else ''}", "Attention",
         lambda q, k, v, h=heads, c=causal, s=1.0 / (d // heads) ** 0.5:
             attention.Attention.apply(q, k, v, num_heads=h, scale=s, causal=0 if c else None),
         randn(b, t, d, seed=26), randn(b, t, d, seed=27), randn(b, t, d, seed=28),
         torch_fn=lambda q, k, v, h=heads, c=causal: _torch_attention(q, k, v, h, c))

# ---- sorting and running sums -------------------------------------------------------------
# distinct values: no ties, so the chosen positions (and torch's) are unambiguous
XT = distinct(2, 3, 4, seed=29)
for axis, desc in ((-1, False), (0, True), (1, True)):
    case(f"sort_axis{axis}_desc{desc}", "TakeAlongAxis", lambda a, ax=axis, d=desc: a.sort(ax, descending=d), XT)
for axis in (-1, 1):
    case(f"topk2_axis{axis}", "TakeAlongAxis", lambda a, ax=axis: a.topk(2, dim=ax), XT)
case("smallest_function", "TakeAlongAxis", lambda a: gt.topk(a, 3, dim=1, largest=False), XT,
     torch_fn=lambda a: T.topk(a, 3, dim=1, largest=False))
case("sort_function_1d", "TakeAlongAxis", lambda a: gt.sort(a, descending=True), distinct(6, seed=30),
     torch_fn=lambda a: T.sort(a, descending=True))
for axis in (-1, 0):
    case(f"axis{axis}", "Cumsum", lambda a, ax=axis: a.cumsum(ax), XT)
case("function_1d", "Cumsum", lambda a: gt.cumsum(a, 0), randn(5, seed=32), torch_fn=lambda a: T.cumsum(a, 0))
case("then_mul", "Cumsum", lambda a, b: (a * b).cumsum(dim=-1), randn(3, 4, seed=33), randn(4, seed=34))


def _torch_sdpa(q, k, v, mask=None, causal=None, heads=None):
    """torch's math for attention.ScaledDotProductAttention (and Attention with ``heads``): a bool
    mask is True where blocked, ``causal`` the offset of the first query."""
    if heads is not None:
        q, k, v = (a.reshape(a.shape[0], a.shape[1], heads, -1).transpose(1, 2) for a in (q, k, v))
    scores = q @ k.transpose(-2, -1) * (1.0 / q.shape[-1] ** 0.5)
    blocked = None
    if causal is not None:
        i, j = T.arange(q.shape[-2]) + causal, T.arange(k.shape[-2])
        blocked = i[:, None] < j[None, :]
    if mask is not None and mask.dtype == T.bool:
        blocked = mask if blocked is None else blocked | mask
    elif mask is not None:
        scores = scores + mask
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))
    w = scores.softmax(-1).nan_to_num(0.0)                  # a query with no key: zeros, as torch's sdpa
    out = w @ v
    return out if heads is None else out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1)


MASK_BLOCKED = np.array([[False, True, False, True, False], [True] * 5, [False] * 4 + [True]])   # (3, 5)
case("cross_2x3x4_s5_h2", "Attention",
     lambda q, k, v: attention.Attention.apply(q, k, v, num_heads=2, scale=0.5 ** 0.5),
     randn(2, 3, 4, seed=26), randn(2, 5, 4, seed=27), randn(2, 5, 4, seed=28),
     torch_fn=lambda q, k, v: _torch_sdpa(q, k, v, heads=2))
case("float_mask_causal", "Attention",
     lambda q, k, v, m: attention.Attention.apply(q, k, v, m, num_heads=2, scale=0.5 ** 0.5, causal=2),
     randn(2, 3, 4, seed=26), randn(2, 5, 4, seed=27), randn(2, 5, 4, seed=28), randn(2, 1, 3, 5, seed=29),
     torch_fn=lambda q, k, v, m: _torch_sdpa(q, k, v, m, causal=2, heads=2))
case("bool_mask_empty_row", "ScaledDotProductAttention",
     lambda q, k, v, m: attention.ScaledDotProductAttention.apply(q, k, v, m, scale=0.5),
     randn(2, 2, 3, 4, seed=30), randn(2, 2, 5, 4, seed=31), randn(2, 2, 5, 3, seed=32), MASK_BLOCKED,
     torch_fn=lambda q, k, v, m: _torch_sdpa(q, k, v, m))
case("broadcast_causal", "ScaledDotProductAttention",
     lambda q, k, v: attention.ScaledDotProductAttention.apply(q, k, v, scale=0.5, causal=0),
     randn(2, 4, 4, seed=30), randn(1, 3, 4, seed=31), randn(3, 2, seed=32),
     torch_fn=lambda q, k, v: _torch_sdpa(q, k, v, causal=0))

case("2x3_repeats", "Embedding", lambda w, i: gt.nn.functional.embedding(i, w), randn(5, 3, seed=33),
     np.array([[1, 4, 1], [0, 2, 4]]), torch_fn=lambda w, i: T.nn.functional.embedding(i, w))
# scale_grad_by_freq with distinct ids: each scale 1, so the gradient is also the finite
# differences' (other scales are not a function's gradient: tests/test_embedding_options.py)
case("distinct_freq", "ScaleGradient",
     lambda w, i: gt.nn.functional.embedding(i, w, scale_grad_by_freq=True), randn(5, 3, seed=34),
     np.array([[1, 4], [0, 2]]), torch_fn=lambda w, i: T.nn.functional.embedding(i, w, scale_grad_by_freq=True))
# a transposed view laid out row-major: the gradient passes through
case("transposed", "Contiguous", lambda a: a.T.contiguous() * a.T, randn(3, 4, seed=35),
     torch_fn=lambda a: a.T.contiguous() * a.T)
# a recorded copy (Tensor.clone of a tensor that requires grad): the gradient passes through
case("recorded", "Clone", lambda a: a.clone() * a, randn(3, 4, seed=36), torch_fn=lambda a: a.clone() * a)
# views over the memory: overlapping windows (unfold) and explicit strides; gradients add up where
# windows share elements
case("overlapping_windows", "AsStrided", lambda a: a.unfold(0, 3, 2) ** 2, randn(7, seed=37),
     torch_fn=lambda a: a.unfold(0, 3, 2) ** 2)
case("strides", "AsStrided", lambda a: a.as_strided((3, 2), (1, 3), 1) * 3, randn(12, seed=38),
     torch_fn=lambda a: a.as_strided((3, 2), (1, 3), 1) * 3)

# ---- torch's math functions, prod, cumprod (gt/ops/math_functions.py) ---------------------
# XC: multiples of 0.1 in [-0.7, 0.7], one of them 0: inside every domain below, the logit clamp
# bounds (0.05, 0.95) between two values; the products and running products pass a zero
case("trig", "MathFunction", lambda a: a.sin() * a.cos() + a.tan() + a.asin() - a.acos() * a.atan(), XC)
case("hyperbolic", "MathFunction", lambda a: a.sinh() + a.cosh() * a.asinh() + a.atanh() + (a + 1.8).acosh(), XC)
case("exp_log_sinc", "MathFunction", lambda a: a.log1p() + a.expm1() * a.exp2() + a.sinc() * 3, XC)
case("erf", "MathFunction", lambda a: a.erf() + a.erfc() * a.erfinv(), XC)
case("eps", "Logit", lambda a: (a * 0.6 + 0.5).logit() + (a + 0.5).logit(eps=0.05), XC)
case("broadcast", "BinaryMathFunction", lambda a, b: a.atan2(b) + a.hypot(b) * a.logaddexp(b) + a.xlogy(b.abs()),
     randn(3, 4, seed=40), nonzero(4, seed=41))
case("dim_and_all", "Prod", lambda a: a.prod(1) * a[:, :2].prod(), XC * 2)
case("dims_kept", "Prod", lambda a: a.prod((0, 2), keepdim=True), XR + 1,
     torch_fn=lambda a: a.prod(2, keepdim=True).prod(0, keepdim=True))
case("dim1", "Cumprod", lambda a: a.cumprod(1), XC * 2)
case("dim0_negative", "Cumprod", lambda a: a.cumprod(-3), XR)

# ---- dtype cast ---------------------------------------------------------------------------
# float32 rounding limits finite differences: a linear function with a wide step is exact enough.
case("roundtrip", "Cast", lambda a: (a.to(gt.float32) * 3.0).to(gt.float64), randn(3, 4, seed=25),
     torch_fn=lambda a: (a.to(T.float32) * 3.0).to(T.float64), grad_kw={"eps": 1e-2, "rtol": 1e-4, "atol": 1e-5},
     torch_kw={"rtol": 1e-6, "atol": 1e-6})
case("double_float", "Cast", lambda a: a.float().double() * a, randn(3, seed=25),
     torch_fn=lambda a: a.float().double() * a, grad_kw={"eps": 1e-2, "rtol": 1e-4, "atol": 1e-4},
     torch_kw={"rtol": 1e-6, "atol": 1e-6})

# ---- device move: to the CPU and back to where ``a`` lives (on a CPU mesh both moves are to the
# CPU itself; on a GPU each is a copy); the op's gradient passes back through both
case("to_cpu", "ToDevice", lambda a: elementwise.ToDevice.apply(elementwise.ToDevice.apply(a * 2.0, "cpu"),
                                                                str(a.device)) * a, randn(3, 4, seed=26),
     torch_fn=lambda a: (a * 2.0).to("cpu").to(a.device) * a)

CASE_IDS = [c.id for c in CASES]
OPS_COVERED = sorted({c.op for c in CASES})
