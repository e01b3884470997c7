"""What torch 2.13 refuses and gt accepted, or refused with another error type: each case runs the
same call on torch and on gt; where torch raises, gt raises torch's error type (and torch's words,
where ``EXACT``). Covered: norms (layer, group, batch, instance; their modules) and
``scaled_dot_product_attention`` with tensors of several float dtypes (torch's mixed-dtype rule:
float32 weights of a half input only), writes of another dtype through index arrays, linear
algebra of integer, bool and half inputs, ``solve_triangular``/``triangular_solve`` of two dtypes,
transposed convolutions of integer dtypes other than int64, loss inputs and targets of dtypes
torch's kernels refuse, ``logsumexp(dim=())``, and shape misuses of common functions. Where torch
computes, gt computes the same dtype (and values)."""

import warnings

import numpy as np
import pytest

import gt
from gt.backend import B as ENGINE

torch = pytest.importorskip("torch")


def _x(m, *shape, dtype="float32"):
    values = (np.arange(int(np.prod(shape))).reshape(shape) % 7 + 1) / 8.0
    return m.tensor(values).to(getattr(m, dtype))


def _f(m):
    return m.nn.functional


X, W, B = (2, 4, 3), (4,), (3,)
# (name, call): ``m`` is torch or gt; every call here raises in torch 2.13
REFUSED = [
    # norms: torch's mixed-dtype CPU kernels take float32 parameters of a half input only
    ("LayerNorm f64 input", lambda m: m.nn.LayerNorm(3)(_x(m, *X, dtype="float64"))),
    ("GroupNorm f64 input", lambda m: m.nn.GroupNorm(2, 4)(_x(m, *X, dtype="float64"))),
    ("BatchNorm1d f64 input", lambda m: m.nn.BatchNorm1d(4)(_x(m, *X, dtype="float64"))),
    ("BatchNorm1d eval f64 input", lambda m: m.nn.BatchNorm1d(4).eval()(_x(m, *X, dtype="float64"))),
    ("BatchNorm2d f64 input", lambda m: m.nn.BatchNorm2d(4)(_x(m, 2, 4, 3, 3, dtype="float64"))),
    ("InstanceNorm1d f64 input", lambda m: m.nn.InstanceNorm1d(4, affine=True)(_x(m, *X, dtype="float64"))),
    ("layer_norm f64 weight", lambda m: _f(m).layer_norm(_x(m, *X), B, _x(m, *B, dtype="float64"))),
    ("layer_norm f64 bias", lambda m: _f(m).layer_norm(_x(m, *X), B, _x(m, *B), _x(m, *B, dtype="float64"))),
    ("layer_norm f64 input f64 weight f32 bias",
     lambda m: _f(m).layer_norm(_x(m, *X, dtype="float64"), B, _x(m, *B, dtype="float64"), _x(m, *B))),
    ("layer_norm f16 weight", lambda m: _f(m).layer_norm(_x(m, *X), B, _x(m, *B, dtype="float16"))),
    ("layer_norm f16 input f32 weight f16 bias",
     lambda m: _f(m).layer_norm(_x(m, *X, dtype="float16"), B, _x(m, *B), _x(m, *B, dtype="float16"))),
    ("group_norm f64 weight", lambda m: _f(m).group_norm(_x(m, *X), 2, _x(m, *W, dtype="float64"))),
    ("group_norm f16 input f16 weight f32 bias",
     lambda m: _f(m).group_norm(_x(m, *X, dtype="float16"), 2, _x(m, *W, dtype="float16"), _x(m, *W))),
    ("batch_norm f64 running stats", lambda m: _f(m).batch_norm(_x(m, *X), _x(m, *W, dtype="float64"),
                                                                 _x(m, *W, dtype="float64"))),
    ("batch_norm f32 weight f64 running var", lambda m: _f(m).batch_norm(
        _x(m, *X), _x(m, *W), _x(m, *W, dtype="float64"), _x(m, *W), _x(m, *W))),
    ("batch_norm training f64 weight", lambda m: _f(m).batch_norm(_x(m, *X), None, None, _x(m, *W, dtype="float64"),
                                                                   training=True)),
    ("batch_norm f16 input f16 stats f32 weight", lambda m: _f(m).batch_norm(
        _x(m, *X, dtype="float16"), _x(m, *W, dtype="float16"), _x(m, *W, dtype="float16"), _x(m, *W))),
    ("instance_norm f64 weight", lambda m: _f(m).instance_norm(_x(m, *X), weight=_x(m, *W, dtype="float64"))),
    # attention
    ("sdpa f64 query", lambda m: _f(m).scaled_dot_product_attention(_x(m, 1, 3, 4, dtype="float64"), _x(m, 1, 3, 4),
                                                                     _x(m, 1, 3, 4))),
    ("sdpa f64 value", lambda m: _f(m).scaled_dot_product_attention(_x(m, 1, 3, 4), _x(m, 1, 3, 4),
                                                                     _x(m, 1, 3, 4, dtype="float64"))),
    ("sdpa f16 key", lambda m: _f(m).scaled_dot_product_attention(_x(m, 1, 3, 4), _x(m, 1, 3, 4, dtype="float16"),
                                                                   _x(m, 1, 3, 4))),
    ("sdpa f64 mask", lambda m: _f(m).scaled_dot_product_attention(_x(m, 1, 3, 4), _x(m, 1, 3, 4), _x(m, 1, 3, 4),
                                                                    attn_mask=_x(m, 3, 3, dtype="float64"))),
    ("sdpa int mask", lambda m: _f(m).scaled_dot_product_attention(_x(m, 1, 3, 4), _x(m, 1, 3, 4), _x(m, 1, 3, 4),
                                                                    attn_mask=m.zeros(3, 3, dtype=m.int64))),
    ("MultiheadAttention f64 input", lambda m: m.nn.MultiheadAttention(4, 2)(*[_x(m, 3, 1, 4, dtype="float64")] * 3)),
    # writes of another dtype through index arrays
    ("setitem index tensor f64", lambda m: m.zeros(3, 3).__setitem__(m.tensor([0, 1]), m.ones(3, dtype=m.float64))),
    ("setitem index list i64", lambda m: m.zeros(3, 3).__setitem__([0, 2], m.ones(3, dtype=m.int64))),
    ("setitem (slice, index) f64",
     lambda m: m.zeros(3, 3).__setitem__((slice(None), m.tensor([0, 1])), m.tensor(1.0, dtype=m.float64))),
    ("setitem mask f64 rows", lambda m: m.zeros(3, 3).__setitem__(m.tensor([True, False, True]),
                                                                  m.ones(2, 3, dtype=m.float64))),
    ("index_put_ f64", lambda m: m.zeros(3).index_put_((m.tensor([0]),), m.ones(1, dtype=m.float64))),
    # linear algebra of integer, bool and half inputs
    ("linalg.inv int64", lambda m: m.linalg.inv(m.eye(2, dtype=m.int64))),
    ("linalg.inv_ex int32", lambda m: m.linalg.inv_ex(m.eye(2, dtype=m.int32))),
    ("linalg.det bool", lambda m: m.linalg.det(m.eye(2, dtype=m.bool))),
    ("linalg.solve int64", lambda m: m.linalg.solve(m.eye(2, dtype=m.int64), m.eye(2, dtype=m.int64))),
    ("linalg.svdvals int64", lambda m: m.linalg.svdvals(m.eye(2, dtype=m.int64))),
    ("linalg.cond int64", lambda m: m.linalg.cond(m.eye(2, dtype=m.int64))),
    ("linalg.cholesky_ex uint8", lambda m: m.linalg.cholesky_ex(m.eye(2, dtype=m.uint8))),
    ("linalg.eigh int64", lambda m: m.linalg.eigh(m.eye(2, dtype=m.int64))),
    ("linalg.lu_factor int64", lambda m: m.linalg.lu_factor(m.eye(2, dtype=m.int64))),
    ("linalg.householder_product int64",
     lambda m: m.linalg.householder_product(m.eye(2, dtype=m.int64), m.ones(2, dtype=m.int64))),
    ("linalg.solve_triangular int64",
     lambda m: m.linalg.solve_triangular(m.eye(2, dtype=m.int64), m.eye(2, dtype=m.int64), upper=True)),
    ("linalg.pinv int64", lambda m: m.linalg.pinv(m.eye(2, dtype=m.int64))),
    ("linalg.matrix_rank int64", lambda m: m.linalg.matrix_rank(m.eye(2, dtype=m.int64))),
    ("linalg.lstsq int64", lambda m: m.linalg.lstsq(m.eye(2, dtype=m.int64), m.eye(2, dtype=m.int64))),
    ("linalg.lu_solve int64", lambda m: m.linalg.lu_solve(m.eye(2, dtype=m.int64), m.tensor([1, 2], dtype=m.int32),
                                                          m.eye(2, dtype=m.int64))),
    ("cholesky_solve int64", lambda m: m.cholesky_solve(m.eye(2, dtype=m.int64), m.eye(2, dtype=m.int64))),
    ("linalg.inv f16", lambda m: m.linalg.inv(m.eye(2, dtype=m.float16))),
    ("linalg.slogdet f16", lambda m: m.linalg.slogdet(m.eye(2, dtype=m.float16))),
    ("linalg.qr f16", lambda m: m.linalg.qr(m.eye(2, dtype=m.float16))),
    ("triangular_solve f64 b f32 A", lambda m: m.triangular_solve(m.ones(2, 2, dtype=m.float64), m.eye(2))),
    # transposed convolutions: int64 is torch's only integer kernel
    ("conv_transpose1d int32", lambda m: _f(m).conv_transpose1d(m.ones(1, 1, 3, dtype=m.int32),
                                                                m.ones(1, 1, 2, dtype=m.int32))),
    ("conv_transpose2d bool", lambda m: _f(m).conv_transpose2d(m.ones(1, 1, 3, 3, dtype=m.bool),
                                                               m.ones(1, 1, 2, 2, dtype=m.bool))),
    ("conv_transpose3d int16", lambda m: _f(m).conv_transpose3d(m.ones(1, 1, 3, 3, 3, dtype=m.int16),
                                                                m.ones(1, 1, 2, 2, 2, dtype=m.int16))),
    ("ConvTranspose2d int8", lambda m: _f(m).conv_transpose2d(m.ones(1, 1, 3, 3, dtype=m.int8),
                                                              m.ones(1, 2, 2, 2, dtype=m.int8), stride=2)),
    # losses
    ("binary_cross_entropy int64 target", lambda m: _f(m).binary_cross_entropy(_x(m, 2, 3), m.ones(2, 3, dtype=m.int64))),
    ("binary_cross_entropy bool target", lambda m: _f(m).binary_cross_entropy(_x(m, 2, 3), m.ones(2, 3, dtype=m.bool))),
    ("binary_cross_entropy f64 target", lambda m: _f(m).binary_cross_entropy(_x(m, 2, 3), _x(m, 2, 3, dtype="float64"))),
    ("binary_cross_entropy int64 input", lambda m: _f(m).binary_cross_entropy(m.ones(2, 3, dtype=m.int64),
                                                                             m.ones(2, 3, dtype=m.int64))),
    ("bce_with_logits int64 target", lambda m: _f(m).binary_cross_entropy_with_logits(_x(m, 2, 3),
                                                                                      m.ones(2, 3, dtype=m.int64))),
    ("bce_with_logits bool target", lambda m: _f(m).binary_cross_entropy_with_logits(_x(m, 2, 3),
                                                                                     m.ones(2, 3, dtype=m.bool))),
    ("bce_with_logits int64 input", lambda m: _f(m).binary_cross_entropy_with_logits(m.ones(2, 3, dtype=m.int64),
                                                                                     _x(m, 2, 3))),
    ("bce_with_logits bool pos_weight", lambda m: _f(m).binary_cross_entropy_with_logits(
        _x(m, 2, 3), _x(m, 2, 3), pos_weight=m.ones(3, dtype=m.bool))),
    ("cross_entropy bool target", lambda m: _f(m).cross_entropy(_x(m, 2, 3), m.tensor([True, False]))),
    ("cross_entropy float index-shaped target", lambda m: _f(m).cross_entropy(_x(m, 2, 3), _x(m, 2))),
    ("cross_entropy int64 probabilities", lambda m: _f(m).cross_entropy(_x(m, 2, 3), m.ones(2, 3, dtype=m.int64))),
    ("cross_entropy int64 logits", lambda m: _f(m).cross_entropy(m.ones(2, 3, dtype=m.int64), m.tensor([0, 1]))),
    ("nll_loss bool target", lambda m: _f(m).nll_loss(_x(m, 2, 3), m.tensor([True, False]))),
    ("nll_loss float target", lambda m: _f(m).nll_loss(_x(m, 2, 3), _x(m, 2))),
    ("nll_loss int64 input", lambda m: _f(m).nll_loss(m.ones(2, 3, dtype=m.int64), m.tensor([0, 1]))),
    ("kl_div int64 target", lambda m: _f(m).kl_div(_x(m, 2, 3), m.ones(2, 3, dtype=m.int64), reduction="sum")),
    ("kl_div bool input", lambda m: _f(m).kl_div(m.ones(2, 3, dtype=m.bool), _x(m, 2, 3), reduction="sum")),
    ("mse_loss int64 int32", lambda m: _f(m).mse_loss(m.ones(3, dtype=m.int64), m.ones(3, dtype=m.int32))),
    ("mse_loss bool bool", lambda m: _f(m).mse_loss(m.ones(3, dtype=m.bool), m.ones(3, dtype=m.bool))),
    ("smooth_l1_loss int64 int64", lambda m: _f(m).smooth_l1_loss(m.ones(3, dtype=m.int64), m.ones(3, dtype=m.int64))),
    ("l1_loss int32 int32 mean", lambda m: _f(m).l1_loss(m.ones(3, dtype=m.int32), m.ones(3, dtype=m.int32))),
    ("huber_loss int64 input f32 target", lambda m: _f(m).huber_loss(m.ones(3, dtype=m.int64), _x(m, 3))),
    ("huber_loss int64 int32", lambda m: _f(m).huber_loss(m.ones(3, dtype=m.int64), m.ones(3, dtype=m.int32))),
    ("huber_loss bool input int64 target", lambda m: _f(m).huber_loss(m.ones(3, dtype=m.bool),
                                                                      m.ones(3, dtype=m.int64))),
    ("soft_margin_loss int64 input", lambda m: _f(m).soft_margin_loss(m.ones(3, dtype=m.int64), _x(m, 3))),
    ("soft_margin_loss bool input", lambda m: _f(m).soft_margin_loss(m.ones(3, dtype=m.bool), _x(m, 3))),
    ("multilabel_soft_margin_loss bool target",
     lambda m: _f(m).multilabel_soft_margin_loss(_x(m, 2, 3), m.ones(2, 3, dtype=m.bool))),
    ("multilabel_soft_margin_loss int64 input",
     lambda m: _f(m).multilabel_soft_margin_loss(m.ones(2, 3, dtype=m.int64), _x(m, 2, 3))),
    ("multi_margin_loss float target", lambda m: _f(m).multi_margin_loss(_x(m, 2, 3), _x(m, 2))),
    ("multi_margin_loss bool target", lambda m: _f(m).multi_margin_loss(_x(m, 2, 3), m.tensor([True, False]))),
    ("multi_margin_loss uint8 target", lambda m: _f(m).multi_margin_loss(_x(m, 2, 3), m.tensor([0, 1], dtype=m.uint8))),
    ("multi_margin_loss int64 input", lambda m: _f(m).multi_margin_loss(m.ones(2, 3, dtype=m.int64), m.tensor([0, 1]))),
    ("multilabel_margin_loss int64 input",
     lambda m: _f(m).multilabel_margin_loss(m.ones(2, 3, dtype=m.int64), m.zeros(2, 3, dtype=m.int64))),
    ("hinge_embedding_loss int64 input", lambda m: _f(m).hinge_embedding_loss(m.ones(3, dtype=m.int64), _x(m, 3))),
    ("gaussian_nll_loss bool target", lambda m: _f(m).gaussian_nll_loss(_x(m, 3), m.ones(3, dtype=m.bool), _x(m, 3))),
    ("gaussian_nll_loss int32 var", lambda m: _f(m).gaussian_nll_loss(_x(m, 3), _x(m, 3), m.ones(3, dtype=m.int32))),
    ("margin_ranking_loss bool target", lambda m: _f(m).margin_ranking_loss(_x(m, 3), _x(m, 3),
                                                                            m.ones(3, dtype=m.bool))),
    ("triplet_margin_loss bool negative", lambda m: _f(m).triplet_margin_loss(_x(m, 2, 3), _x(m, 2, 3),
                                                                              m.ones(2, 3, dtype=m.bool))),
    ("ctc_loss int64 log_probs", lambda m: _f(m).ctc_loss(m.ones(4, 1, 3, dtype=m.int64), m.tensor([[1, 2]]),
                                                          m.tensor([4]), m.tensor([2]))),
    # logsumexp over no dims: torch 2.13 fails to write its kept (1, 1) into a () result
    ("logsumexp dim=()", lambda m: m.logsumexp(_x(m, 2, 3), dim=())),
    ("logsumexp method dim=[]", lambda m: _x(m, 3).logsumexp(dim=[])),
]

# shape and dim misuses of common functions: torch's RuntimeError (gt's ShapeError is a ValueError too)
SHAPES = [
    ("reshape to another size", lambda m: m.ones(2, 3).reshape(4, 2)),
    ("reshape two -1", lambda m: m.ones(2, 3).reshape(-1, -1)),
    ("reshape -2", lambda m: m.ones(2, 3).reshape(-2, 3)),
    ("view to another size", lambda m: m.ones(2, 3).view(4, 2)),
    ("expand a non-singleton dim", lambda m: m.ones(2, 3).expand(4, 3)),
    ("cat of other shapes", lambda m: m.cat([m.ones(2, 3), m.ones(2, 4)])),
    ("cat of 0-d tensors", lambda m: m.cat([m.tensor(1.0), m.tensor(2.0)])),
    ("stack of other shapes", lambda m: m.stack([m.ones(2, 3), m.ones(2, 4)])),
    ("stack of nothing", lambda m: m.stack([])),
    ("matmul of unaligned shapes", lambda m: m.ones(2, 3) @ m.ones(2, 3)),
    ("bmm of other batches", lambda m: m.bmm(m.ones(2, 3, 4), m.ones(3, 4, 5))),
    ("index_select float index", lambda m: m.ones(2, 3).index_select(0, m.tensor([0.0]))),
    ("gather index of other ndim", lambda m: m.ones(2, 3).gather(1, m.zeros(2, dtype=m.int64))),
    ("gather index too large", lambda m: m.ones(2, 3).gather(1, m.zeros(3, 3, dtype=m.int64))),
    ("gather float index", lambda m: m.ones(2, 3).gather(1, m.zeros(2, 3))),
    ("scatter index of other ndim", lambda m: m.ones(2, 3).scatter(1, m.zeros(2, dtype=m.int64), m.ones(2))),
    ("scatter index larger than src", lambda m: m.ones(2, 3).scatter(1, m.zeros(2, 3, dtype=m.int64), m.ones(1, 1))),
    ("scatter float index", lambda m: m.ones(2, 3).scatter(1, m.zeros(2, 3), m.ones(2, 3))),
    ("scatter src of another dtype", lambda m: m.ones(2, 3).scatter(1, m.zeros(2, 3, dtype=m.int64),
                                                                    m.ones(2, 3, dtype=m.float64))),
    ("scatter_add index too large", lambda m: m.ones(2, 3).scatter_add(1, m.zeros(3, 3, dtype=m.int64),
                                                                       m.ones(3, 3))),
    ("index_add source shape", lambda m: m.ones(2, 3).index_add(0, m.tensor([0]), m.ones(1, 4))),
    ("permute with a repeated dim", lambda m: m.ones(2, 3).permute(0, 0)),
    ("split sizes of another sum", lambda m: m.ones(6).split([2, 2])),
    ("split_size 0", lambda m: m.ones(6).split(0)),
    ("chunk 0", lambda m: m.ones(6).chunk(0)),
    ("flatten start after end", lambda m: m.ones(2, 3).flatten(1, 0)),
    ("repeat with fewer counts", lambda m: m.ones(2, 3).repeat(2)),
    ("add of shapes that do not broadcast", lambda m: m.ones(2, 3) + m.ones(2, 4)),
    ("where of shapes that do not broadcast", lambda m: m.where(m.ones(2, 3) > 0, m.ones(2, 3), m.ones(2, 4))),
    ("masked_fill mask shape", lambda m: m.ones(2, 3).masked_fill(m.ones(2, 4, dtype=m.bool), 0.0)),
    ("einsum subscript sizes", lambda m: m.einsum("ij,jk->ik", m.ones(2, 3), m.ones(4, 5))),
    ("roll shifts and dims", lambda m: m.ones(2, 3).roll((1, 2), (0,))),
    ("tril of a vector", lambda m: m.ones(3).tril()),
    ("topk k too large", lambda m: m.ones(3).topk(5)),
    ("linear features", lambda m: _f(m).linear(m.ones(2, 3), m.ones(4, 5))),
    ("conv2d channels", lambda m: _f(m).conv2d(m.ones(1, 2, 5, 5), m.ones(3, 3, 2, 2))),
    ("pad of odd length", lambda m: _f(m).pad(m.ones(2, 3), (1, 2, 3))),
    ("layer_norm normalized_shape", lambda m: _f(m).layer_norm(m.ones(2, 3), (4,))),
    ("mse_loss shapes that do not broadcast", lambda m: _f(m).mse_loss(m.ones(2, 3), m.ones(2, 4))),
]


@pytest.mark.parametrize("name, call", SHAPES, ids=[name for name, _ in SHAPES])
def test_shape_misuse_raises_torch_type(name, call):
    theirs, ours = _raised(call, torch), _raised(call, gt)
    assert theirs is not None and ours is not None, (name, theirs, ours)
    assert isinstance(ours, type(theirs)), f"{name}: gt raises {type(ours).__name__}({ours}); torch {theirs!r}"


# cases whose message is torch's own, word for word (the others keep gt's words, or add a hint)
EXACT = {name for name, _ in REFUSED} - {
    "MultiheadAttention f64 input", "setitem (slice, index) f64", "setitem index list i64", "setitem mask f64 rows",
    "cross_entropy bool target", "cross_entropy float index-shaped target", "nll_loss bool target",
    "nll_loss float target", "multi_margin_loss bool target", "multi_margin_loss uint8 target",
    "gaussian_nll_loss int32 var", "multi_margin_loss float target"}


def _raised(call, module):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call(module)
        except Exception as e:      # noqa: BLE001 (the type is what is compared)
            return e
    return None


@pytest.mark.parametrize("name, call", REFUSED, ids=[name for name, _ in REFUSED])
def test_refused_as_torch(name, call):
    theirs = _raised(call, torch)
    assert theirs is not None, f"torch 2.13 computes {name}: the case is wrong"
    ours = _raised(call, gt)
    assert ours is not None, f"gt computes {name}; torch raises {type(theirs).__name__}: {theirs}"
    assert isinstance(ours, type(theirs)), f"{name}: gt raises {type(ours).__name__}({ours}); torch {theirs!r}"
    if name in EXACT:
        assert str(theirs).split("\n")[0] in str(ours), f"{name}: gt says {ours}; torch {theirs}"


# where torch computes, gt computes the same dtype and values
COMPUTED = [
    ("layer_norm f16 input f32 weight", lambda m: _f(m).layer_norm(_x(m, *X, dtype="float16"), B, _x(m, *B),
                                                                   _x(m, *B))),
    ("group_norm f16 input f32 weight", lambda m: _f(m).group_norm(_x(m, *X, dtype="float16"), 2, _x(m, *W))),
    ("batch_norm f16 input f32 stats", lambda m: _f(m).batch_norm(_x(m, *X, dtype="float16"), _x(m, *W), _x(m, *W))),
    ("batch_norm f16 input, stats and weight", lambda m: _f(m).batch_norm(
        _x(m, *X, dtype="float16"), _x(m, *W, dtype="float16"), _x(m, *W, dtype="float16"),
        _x(m, *W, dtype="float16"))),
    ("rms_norm f64 input f32 weight", lambda m: _f(m).rms_norm(_x(m, *X, dtype="float64"), B, _x(m, *B))),
    ("sdpa f64 query f32 mask", lambda m: _f(m).scaled_dot_product_attention(
        *[_x(m, 1, 3, 4, dtype="float64")] * 3, attn_mask=_x(m, 3, 3))),
    ("setitem int f64", lambda m: _set(m.zeros(3, 3), 1, m.ones(3, dtype=m.float64))),
    ("setitem slice f64", lambda m: _set(m.zeros(3, 3), slice(0, 2), m.ones(3, dtype=m.float64))),
    ("setitem index tensor number", lambda m: _set(m.zeros(3, 3), m.tensor([0, 2]), 2.5)),
    ("setitem mask 0-d f64", lambda m: _set(m.zeros(3), m.tensor([True, False, True]), m.tensor(2.0, dtype=m.float64))),
    ("solve_triangular f32 A f64 B", lambda m: m.linalg.solve_triangular(
        m.tensor([[2.0, 1.0], [0.0, 4.0]]), _x(m, 2, 3, dtype="float64"), upper=True)),
    ("solve_triangular f64 A f32 B", lambda m: m.linalg.solve_triangular(
        m.tensor([[2.0, 0.0], [1.0, 4.0]], dtype=m.float64), _x(m, 2, 3), upper=False)),
    ("conv_transpose2d int64", lambda m: _f(m).conv_transpose2d(m.ones(1, 1, 3, 3, dtype=m.int64),
                                                                m.ones(1, 1, 2, 2, dtype=m.int64))),
    ("logsumexp dim=() keepdim", lambda m: m.logsumexp(_x(m, 2, 3), dim=(), keepdim=True)),
    ("logsumexp 0-d dim=()", lambda m: m.logsumexp(m.tensor(0.5), dim=())),
    ("mse_loss bool input f32 target", lambda m: _f(m).mse_loss(m.tensor([True, False, True]), _x(m, 3))),
    ("smooth_l1_loss f32 input bool target", lambda m: _f(m).smooth_l1_loss(_x(m, 3), m.tensor([True, False, True]))),
    ("binary_cross_entropy f64 weight", lambda m: _f(m).binary_cross_entropy(_x(m, 2, 3), _x(m, 2, 3),
                                                                            weight=_x(m, 3, dtype="float64"))),
    ("bce_with_logits f64 target", lambda m: _f(m).binary_cross_entropy_with_logits(_x(m, 2, 3),
                                                                                    _x(m, 2, 3, dtype="float64"))),
]


def _set(x, index, value):
    x[index] = value
    return x


@pytest.mark.parametrize("name, call", COMPUTED, ids=[name for name, _ in COMPUTED])
def test_computed_as_torch(name, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, ours = call(torch), call(gt)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    tol = 2e-3 if theirs.dtype == torch.float16 else 1e-6
    np.testing.assert_allclose(ours.float().numpy(), theirs.float().numpy(), rtol=tol, atol=tol)


def test_solve_triangular_two_dtypes_gradients_as_torch():
    a = np.array([[2.0, 1.0], [0.0, 4.0]])
    b = np.arange(6.0).reshape(2, 3) / 5
    grads = []
    for m in (torch, gt):
        A = m.tensor(a, dtype=m.float32, requires_grad=True)
        Bm = m.tensor(b, dtype=m.float64, requires_grad=True)
        m.linalg.solve_triangular(A, Bm, upper=True).sum().backward()
        grads.append((A.grad, Bm.grad))
    (ta, tb), (ga, gb) = grads
    assert str(ga.dtype).endswith("float32") and str(gb.dtype).endswith("float64")
    np.testing.assert_allclose(ga.numpy(), ta.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gb.numpy(), tb.numpy(), rtol=1e-6)


def test_autocast_leaves_mixed_attention_alone():
    """Under an autocast block float32 meets bfloat16 in attention, as torch's casts let it (unchanged);
    float64 is not cast, so it is still refused."""
    if not ENGINE.supports_bfloat16:
        pytest.skip("gt.autocast needs the torch engine")
    q = _x(gt, 1, 3, 4)
    with gt.autocast("cpu", dtype=gt.bfloat16):
        assert gt.nn.functional.scaled_dot_product_attention(q, q.bfloat16(), q).shape == (1, 3, 4)
        with pytest.raises(RuntimeError, match="same dtype"):
            gt.nn.functional.scaled_dot_product_attention(q, q.double(), q)
