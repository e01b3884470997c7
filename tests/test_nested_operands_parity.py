"""gt.nested beside torch 2.13, a third pass: a dense tensor or a number on the left of a binary op
with a jagged nested tensor (``p > nt``, ``gt.atan2(x, nt)``), the binary pointwise ops beyond the
arithmetic, torch's cached sequence lengths (``_max_seqlen``/``_min_seqlen``) and the padded length
they give ``to_padded_tensor``, item assignment, ``broadcast_to``, convolutions of the values, and a
transformer block over sequences of several lengths end to end (embedding, layer norm, attention,
dropout, backward)."""

import operator

import numpy as np
import pytest

import gt
import gt.nn.functional as F
from test_nested_parity import _arrays, _np, _pair, _raises, _same

torch = pytest.importorskip("torch")
TF = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
OPS = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge, "eq": operator.eq,
       "ne": operator.ne, "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
       "pow": operator.pow, "mod": operator.mod}
LEFT = {"number": (), "parameter": (4,), "row": (1, 4), "per sequence": (3, 1, 4)}


def _left(kind, seed=9):
    if kind == "number":
        return 2.0, 2.0
    d = np.random.default_rng(seed).standard_normal(LEFT[kind]) + 3.0
    return gt.nn.Parameter(gt.tensor(d)), torch.nn.Parameter(torch.tensor(d))


def _grads_same(pairs):
    for a, b in pairs:
        if getattr(b, "is_nested", False):
            _same(a, b, rtol=1e-10, atol=1e-12)
        else:
            np.testing.assert_allclose(_np(a), b.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", list(LEFT))
def test_dense_or_number_on_the_left_of_every_binary_operator(kind):
    """``p > nt``, ``p % nt``, ``p & m`` with a Parameter ``p`` raised NotImplementedError (the
    dense operator ran on the nested tensor's storage); ``2 ^ m`` too. Values, dtypes and the
    gradients of both operands, as torch's."""
    arrays = [np.abs(a) + 0.5 for a in _arrays()]
    w = np.random.default_rng(5).standard_normal((3, 5, 4))
    for name, op in OPS.items():
        (lg, lt), (g, t, gl, tl) = _left(kind), _pair(arrays)
        og, ot = op(lg, g), op(lt, t)
        _same(og, ot, rtol=1e-10, atol=1e-12)
        assert str(og.dtype).split(".")[-1] == str(ot.dtype).split(".")[-1]
        if not og.dtype.is_floating_point or (name == "mod" and kind == "number"):   # torch: no backward there
            continue
        (og.to_padded_tensor(0.0) * gt.tensor(w)).sum().backward()
        (ot.to_padded_tensor(0.0) * torch.tensor(w)).sum().backward()
        _grads_same([(a.grad, b.grad) for a, b in zip(gl, tl)] + ([] if kind == "number" else [(lg.grad, lt.grad)]))
    g, t, _, _ = _pair(arrays, requires_grad=False)
    mg, mt = g > 1.0, t > 1.0
    d = np.random.default_rng(2).standard_normal(LEFT[kind] or (4,)) > 0
    for op in (operator.and_, operator.or_, operator.xor):
        _same(op(gt.tensor(d), mg), op(torch.tensor(d), mt))
        _same(op(True, mg), op(True, mt))
        _same(op(mg, gt.tensor(d)), op(mt, torch.tensor(d)))


def test_function_forms_with_a_nested_tensor_on_either_side():
    """``gt.atan2(x, nt)``, ``x.fmod(nt)``, ``gt.bitwise_and(m, nt)``... raised where torch computes;
    the methods ``hypot``, ``copysign``, ``xlogy``, ``isclose``, ``bitwise_*`` were refused on a
    nested tensor."""
    arrays = [np.abs(a) + 0.5 for a in _arrays()]
    d = np.random.default_rng(4).standard_normal((3, 1, 4)) + 3.0
    for name in ("atan2", "hypot", "fmod", "remainder", "copysign", "xlogy", "fmax", "fmin", "maximum",
                 "logaddexp", "float_power", "isclose", "nextafter"):
        for dense_first in (True, False):
            (g, t, gl, tl), xg, xt = _pair(arrays), gt.tensor(d, requires_grad=True), torch.tensor(d, requires_grad=True)
            args_g, args_t = ((xg, g), (xt, t)) if dense_first else ((g, xg), (t, xt))
            og, ot = getattr(gt, name)(*args_g), getattr(torch, name)(*args_t)
            _same(og, ot, rtol=1e-10, atol=1e-12)
            if name in ("atan2", "hypot", "xlogy", "logaddexp"):
                (og.to_padded_tensor(0.0) ** 2).sum().backward()
                (ot.to_padded_tensor(0.0) ** 2).sum().backward()
                _grads_same([(a.grad, b.grad) for a, b in zip(gl, tl)] + [(xg.grad, xt.grad)])
    ints = [np.arange(n * 4).reshape(n, 4) for n in (2, 5, 1)]
    ig = gt.nested.nested_tensor([gt.tensor(a) for a in ints], layout=gt.jagged)
    it = torch.nested.nested_tensor([torch.tensor(a) for a in ints], layout=torch.jagged)
    for name in ("bitwise_and", "bitwise_or", "bitwise_xor", "logical_xor", "logical_and"):
        _same(getattr(gt, name)(gt.tensor([3, 5, 6, 0]), ig), getattr(torch, name)(torch.tensor([3, 5, 6, 0]), it))
        _same(getattr(ig, name)(gt.tensor(6)), getattr(it, name)(torch.tensor(6)))
    _raises(TypeError, "Tensor", lambda: gt.fmod(2, ig), lambda: torch.fmod(2, it))


def test_function_forms_take_their_second_operand_by_keyword():
    """``gt.float_power(x, exponent=2)`` raised TypeError (the nested check's wrapper named the
    second parameter ``other``); dense, or a nested tensor either side, as torch's."""
    arrays = [np.abs(a) + 0.5 for a in _arrays()]
    d = np.random.default_rng(6).standard_normal((3, 1, 4)) + 3.0
    g, t, _, _ = _pair(arrays, requires_grad=False)
    for m, nt in ((gt, g), (torch, t)):
        x = m.tensor(d)
        got = [m.float_power(x, exponent=2), m.float_power(input=x, exponent=x), x.float_power(exponent=3),
               m.float_power(x, exponent=nt), m.float_power(nt, exponent=2), m.xlogy(x, other=nt),
               m.atan2(input=nt, other=x), m.fmod(x, other=2.0)]
        if m is gt:
            want = got
        else:
            for a, b in zip(want, got):
                _same(a, b, rtol=1e-12, atol=1e-12)


def test_dense_on_the_left_refused_as_torch():
    g, t, _, _ = _pair(_arrays(), requires_grad=False)
    for x, make in ((g, gt.tensor), (t, torch.tensor)):
        _raises((RuntimeError, ValueError), "5", lambda: make(np.ones(5)) > x, lambda: make(np.ones(5)) - x)
    other, tother, _, _ = _pair(_arrays(), requires_grad=False)      # other offsets: another nested int
    _raises(RuntimeError, "cannot call binary pointwise function", lambda: gt.atan2(g, other),
            lambda: torch.atan2(t, tother))
    s = gt.nested.nested_tensor([gt.tensor(a) for a in _arrays()])       # strided layout: refused
    ts = torch.nested.nested_tensor([torch.tensor(a) for a in _arrays()])
    _raises(NotImplementedError, "NestedTensorCPU", lambda: gt.nn.Parameter(gt.ones(4)) > s,
            lambda: torch.nn.Parameter(torch.ones(4)) > ts, lambda: gt.atan2(gt.ones(4), s))


CONSTRUCTORS = {
    "nested_tensor": lambda m, T, v, o: m.nested.nested_tensor([T(v[:3]), T(v[3:])], layout=m.jagged),
    "as_nested_tensor dense": lambda m, T, v, o: m.nested.as_nested_tensor(T(v.reshape(2, 4, 4)), layout=m.jagged),
    "narrow": lambda m, T, v, o: m.nested.narrow(T(v.reshape(2, 4, 4)), 1, T([0, 1]), T([3, 2]), layout=m.jagged),
    "from_jagged": lambda m, T, v, o: m.nested.nested_tensor_from_jagged(T(v), T(o)),
    "from_jagged max 9": lambda m, T, v, o: m.nested.nested_tensor_from_jagged(T(v), T(o), max_seqlen=9),
    "from_jagged max 3": lambda m, T, v, o: m.nested.nested_tensor_from_jagged(T(v), T(o), max_seqlen=3,
                                                                               min_seqlen=0),
    "masked_select": lambda m, T, v, o: m.nested.masked_select(T(v), T(v % 3 == 0)),
    "holes made contiguous": lambda m, T, v, o: m.nested.nested_tensor_from_jagged(
        T(v), T(o), lengths=T([2, 4]), max_seqlen=4).contiguous(),
    "chunk of the batch": lambda m, T, v, o: m.nested.nested_tensor([T(v[:3]), T(v[3:])], layout=m.jagged).chunk(2)[0],
    "linear of max 9": lambda m, T, v, o: m.nn.functional.linear(
        m.nested.nested_tensor_from_jagged(T(v), T(o), max_seqlen=9), T(np.ones((2, 4)))),
    "transpose of max 9": lambda m, T, v, o: m.nested.nested_tensor_from_jagged(T(v), T(o), max_seqlen=9).transpose(1, 2),
    "sum(-1) of max 9": lambda m, T, v, o: m.nested.nested_tensor_from_jagged(T(v), T(o), max_seqlen=9).sum(-1),
}


def test_cached_sequence_lengths_and_the_padded_length_they_give():
    """``_max_seqlen`` & co. were missing; ``to_padded_tensor()`` padded to the longest sequence
    where torch 2.13 pads to the cached ``max_seqlen`` (a hint given to ``nested_tensor_from_jagged``:
    longer pads, shorter cuts) or, with none cached, to ``values``' length (a silently other shape)."""
    v, o = np.arange(32.0).reshape(8, 4), np.array([0, 3, 8])
    for name, make in CONSTRUCTORS.items():
        g, t = make(gt, gt.tensor, v, o), make(torch, torch.tensor, v, o)
        assert (g._maybe_max_seqlen, g._maybe_min_seqlen) == (t._maybe_max_seqlen, t._maybe_min_seqlen), name
        if t._lengths is None:
            _same(g.to_padded_tensor(-1.0), t.to_padded_tensor(-1.0))
        else:
            _raises(RuntimeError, "holes", lambda: g.to_padded_tensor(-1.0), lambda: t.to_padded_tensor(-1.0))
        assert (g._max_seqlen, g._min_seqlen, g._get_max_seqlen()) == (t._max_seqlen, t._min_seqlen,
                                                                         t._get_max_seqlen()), name
        if t._lengths is None:
            _same(gt.nested.to_padded_tensor(g * 2, 0.0), torch.nested.to_padded_tensor(t * 2, 0.0))
    for g, t in ((make(gt, gt.tensor, v, o), make(torch, torch.tensor, v, o)) for make in CONSTRUCTORS.values()):
        assert g._ragged_idx == t._ragged_idx and (g._lengths is None) == (t._lengths is None)
        _same(g._values, t._values)
        assert g._offsets.tolist() == t._offsets.tolist()
    for m, T in ((gt, gt.tensor), (torch, torch.tensor)):      # one cache, shared by the ops' results
        a = m.nested.nested_tensor_from_jagged(T(v), T(o), max_seqlen=9)
        b = m.nested.nested_tensor_from_jagged(T(v), T(o))
        (a * 2)._min_seqlen, (b * 2)._min_seqlen
        assert (a._maybe_min_seqlen, b._maybe_min_seqlen) == (3, None)


def test_item_assignment_as_torch():
    """``nt[i] = v`` (and ``nt[i, ...] = v``) was refused; torch writes the i-th tensor in place
    (gradients as any in-place write into a view); its errors for the other forms."""
    rng = np.random.default_rng(0)
    v, o, w = rng.standard_normal((8, 4)), np.array([0, 3, 8]), np.arange(4.0)
    outs = []
    for m, T in ((gt, gt.tensor), (torch, torch.tensor)):
        leaf, wl = T(v, requires_grad=True), T(w, requires_grad=True)
        nt = m.nested.nested_tensor_from_jagged(leaf * 1, T(o))
        nt[0] = wl * 3
        nt[-1, 2] = 5.0
        nt[1, :, 1] = wl[1]
        (nt.values() * T(np.arange(32.0).reshape(8, 4))).sum().backward()
        outs.append((nt.values(), leaf.grad, wl.grad))
    for a, b in zip(*outs):
        np.testing.assert_allclose(_np(a), b.detach().numpy(), rtol=1e-12)
    g, t, _, _ = _pair(_arrays(), requires_grad=False)
    _raises(IndexError, "out of bounds", lambda: g.__setitem__(3, 0.0), lambda: t.__setitem__(3, 0.0))
    _raises(RuntimeError, "slice", lambda: g.__setitem__(slice(1, None), 0.0), lambda: t.__setitem__(slice(1, None), 0.0))
    _raises(ValueError, "index_put_", lambda: g.__setitem__(g > 0, 0.0), lambda: t.__setitem__(t > 0, 0.0))
    _raises(NotImplementedError, "fill_", lambda: g.__setitem__((Ellipsis, 0), 0.0),
            lambda: t.__setitem__((Ellipsis, 0), 0.0))
    _raises(RuntimeError, "ragged dim", lambda: g.__setitem__((gt.tensor([1]), slice(None)), 0.0),
            lambda: t.__setitem__((torch.tensor([1]), slice(None)), 0.0))
    _raises(RuntimeError, "out of bounds", lambda: g.__setitem__((gt.tensor([0, 1, 2]), gt.tensor([2, 5, 0])), 0.0),
            lambda: t.__setitem__((torch.tensor([0, 1, 2]), torch.tensor([2, 5, 0])), 0.0))


def test_item_assignment_by_index_tensors():
    """``nt[batch_ids] = v`` (whole sequences, through the padded form), ``nt[batch_ids, positions,
    ...] = v`` (rows of values) and a dense bool mask (its nonzero indices) were refused: torch's
    values; the gradients of the values written and of what stays beside torch's dense write of
    the same elements (torch 2.13 has no backward of a nested index_put_)."""
    v = np.random.default_rng(1).standard_normal((8, 4))
    w = np.random.default_rng(2).standard_normal((2, 4))
    later = list(range(3, 8))
    forms = [(lambda T, wl: ((T(np.array([1])),), -1.0), (later,)),      # the same elements of values
             (lambda T, wl: ((T(np.array([False, True])),), wl[0]), (later,)),
             (lambda T, wl: ((T(np.array([[1], [0]])),), wl[1] * 2), (list(range(8)),)),
             (lambda T, wl: ((T(np.array([0, 1])), T(np.array([2, 4]))), wl), ([2, 7],)),
             (lambda T, wl: ((T(np.array([0, 1])), T(np.array([2, 4])), T(np.array([1, 3]))), wl[0, :2]),
              ([2, 7], [1, 3])),
             (lambda T, wl: ((T(np.array([0, 1])), T(np.array([2, 4])), slice(1, 3)), wl[:, 1:3]),
              ([2, 7], slice(1, 3)))]
    for form, dense in forms:
        outs = []
        for m, T in ((gt, gt.tensor), (torch, torch.tensor)):
            leaf, wl = T(v, requires_grad=True), T(w, requires_grad=True)
            index, value = form(T, wl)
            if m is torch:
                with torch.no_grad():
                    t = torch.nested.nested_tensor_from_jagged(torch.tensor(v), torch.tensor([0, 3, 8]))
                    t[index] = value
                x = leaf * 1
                x[dense] = value
                np.testing.assert_array_equal(x.detach().numpy(), t.values().numpy())
            else:
                nt = m.nested.nested_tensor_from_jagged(leaf * 1, T(np.array([0, 3, 8])))
                nt[index] = value
                x = nt.values()
            (x * T(np.arange(32.0).reshape(8, 4))).sum().backward()
            outs.append((x, leaf.grad, wl.grad))
        for a, b in zip(*outs):
            assert (a is None) == (b is None)
            if b is not None:
                np.testing.assert_allclose(_np(a), b.detach().numpy(), rtol=1e-12)
    g = gt.nested.nested_tensor_from_jagged(gt.tensor(v), gt.tensor([0, 3, 8]))
    g[gt.tensor([0, 1]), gt.tensor([-1, 0])] = 7.0     # torch 2.13 writes rows 7 and 3 (offset - 1 wraps)
    np.testing.assert_array_equal(_np(g.values())[:, 0] == 7.0, [False, False, True, True] + [False] * 4)


def test_broadcast_to_mT_data_and_in_place_pointwise_ops():
    arrays = _arrays()
    for fn in (lambda x: x.broadcast_to((3, -1, 4)), lambda x: x.unsqueeze(-1).broadcast_to((3, -1, 4, 2)) * 1.5,
               lambda x: x.mT, lambda x: x.data * 2, lambda x: x.detach().clone().sin_().atan2_(x.detach()),
               lambda x: x.detach().clone().hypot_(x.detach()).clamp_(0.1, 0.9)):
        g, t, _, _ = _pair(arrays, requires_grad=False)
        _same(fn(g), fn(t), rtol=1e-12, atol=1e-12)
    g, t, _, _ = _pair(arrays, requires_grad=False)
    _raises(RuntimeError, "expand", lambda: g.broadcast_to((-1, 4)), lambda: t.broadcast_to((-1, 4)))
    _raises(RuntimeError, "tolist", lambda: g.tolist(), lambda: t.tolist())


def test_convolutions_run_on_the_values():
    """``F.conv*`` of a (B, j, C, *size) nested tensor: each row of the ragged dim one input of the
    batch (torch's; it was refused); a transposed (non-"jt") input or one without channels is
    refused as torch's. torch 2.13 has no nested convolution backward: the gradients are checked
    against its dense convolution of each sequence."""
    arrays = [np.random.default_rng(i).standard_normal((n, 4, 6)) for i, n in enumerate((2, 3))]
    w, wt = np.random.default_rng(7).standard_normal((2, 4, 3)), np.random.default_rng(8).standard_normal((4, 2, 3))
    for fn, weight in ((lambda f, x, k: f.conv1d(x, k, padding=1, stride=2), w),
                       (lambda f, x, k: f.conv_transpose1d(x, k), wt),
                       (lambda f, x, k: f.conv2d(x.unsqueeze(-2), k.unsqueeze(2)), w)):
        g, t, gl, tl = _pair(arrays)
        kg, kt = gt.tensor(weight, requires_grad=True), torch.tensor(weight, requires_grad=True)
        og = fn(F, g, kg)
        with torch.no_grad():
            ot = fn(TF, t, kt)
        _same(og, ot, rtol=1e-10, atol=1e-12)
        assert og._maybe_max_seqlen == ot._maybe_max_seqlen
        (og.values() ** 2).sum().backward()
        sum((fn(TF, x, kt) ** 2).sum() for x in tl).backward()
        _grads_same([(kg.grad, kt.grad)] + list(zip([a.grad for a in gl], [b.grad for b in tl])))
    g, t, _, _ = _pair(arrays, requires_grad=False)
    _raises(ValueError, "convolution_default", lambda: F.conv1d(g.transpose(1, 2), gt.tensor(w)),
            lambda: TF.conv1d(t.transpose(1, 2), torch.tensor(w)))
    g, t, _, _ = _pair(_arrays(), requires_grad=False)
    _raises(RuntimeError, "Expected 3-dimensional input", lambda: F.conv1d(g, gt.tensor(w)),
            lambda: TF.conv1d(t, torch.tensor(w)))


def _block(m, ids, weights, train):
    """A pre-norm transformer block over sequences of token ids of several lengths."""
    f = m.nn.functional
    emb, wq, wk, wv, wo, lw, lb, w1, w2 = weights
    x = f.embedding(m.nested.nested_tensor(ids, layout=m.jagged), emb)          # (B, j, 8)
    h = f.layer_norm(x, (8,), lw, lb)
    q, k, v = (f.linear(h, w).unflatten(-1, (2, 4)).transpose(1, 2) for w in (wq, wk, wv))
    x = x + f.linear(f.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(-2), wo)
    x = f.dropout(x, 0.3, training=train)
    x = x + f.linear(f.gelu(f.linear(f.layer_norm(x, (8,)), w1)), w2)
    pooled = m.stack([u.mean(0) for u in x.unbind()])
    return (pooled ** 2).sum() + x.to_padded_tensor(0.0).sin().sum()


def test_a_transformer_block_over_sequences_of_several_lengths():
    """Embedding of nested ids, layer norm, attention, dropout (eval; in training the mask and
    the scaled gradient), unbind, to_padded_tensor, backward: torch's loss and every gradient."""
    rng = np.random.default_rng(0)
    ids = [rng.integers(0, 11, n) for n in (3, 6, 1, 4)]
    shapes = ((11, 8), (8, 8), (8, 8), (8, 8), (8, 8), (8,), (8,), (16, 8), (8, 16))
    weights = [rng.standard_normal(s) * 0.5 for s in shapes]
    wg = [gt.tensor(a, requires_grad=True) for a in weights]
    wt = [torch.tensor(a, requires_grad=True) for a in weights]
    lg, lt = _block(gt, [gt.tensor(i) for i in ids], wg, False), _block(torch, [torch.tensor(i) for i in ids], wt, False)
    np.testing.assert_allclose(float(lg), float(lt), rtol=1e-12)
    lg.backward()
    lt.backward()
    _grads_same([(a.grad, b.grad) for a, b in zip(wg, wt)])
    xs = [rng.standard_normal((n, 8)) for n in (3, 6, 1, 4)]
    nt = gt.nested.nested_tensor([gt.tensor(a) for a in xs], layout=gt.jagged, requires_grad=True)
    y = F.dropout(nt, 0.5, training=True)
    (y.to_padded_tensor(0.0) * 2).sum().backward()
    kept = _np(y.values()) != 0
    np.testing.assert_allclose(_np(y.values())[kept], 2 * np.concatenate(xs)[kept], rtol=1e-12)
    np.testing.assert_array_equal(_np(nt.grad.values()), np.where(kept, 4.0, 0.0))


def test_augmented_assignment_and_lerp():
    """``x += p``, ``x *= p``, ``x -= 0.5``, ``x /= t``, ``x **= 2``, ``m &= m``... were refused on a
    jagged nested tensor (only ``add_`` & co. ran), ``lerp`` too; torch's values and gradients."""
    grads = []
    for m, T in ((gt, gt.tensor), (torch, torch.tensor)):
        leaves = [T(a, requires_grad=True) for a in _arrays()]
        p = T(np.arange(1.0, 5.0), requires_grad=True)
        x = m.nested.as_nested_tensor(leaves, layout=m.jagged) * 1
        x += p
        x *= p
        x -= 0.5
        x /= p + 1
        x **= 2
        x %= 7.0
        x = x.lerp(x.detach() * 0 + 1.0, 0.25)
        x.sin().to_padded_tensor(0.0).sum().backward()
        grads.append([p.grad] + [leaf.grad for leaf in leaves])
    _grads_same(zip(*grads))
    g, t, _, _ = _pair(_arrays(), requires_grad=False)
    mg, mt = g > 0, t > 0
    for mask in (mg, mt):       # in place: the same object, its values changed
        mask &= mask.logical_not().logical_not()
        mask |= (g if mask is mg else t) > 1
        mask ^= True
    _same(mg, mt)
    _raises(NotImplementedError, "floor", lambda: g.__ifloordiv__(2), lambda: t.__ifloordiv__(2))
