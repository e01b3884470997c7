"""gt.nested beside torch 2.13, a fourth pass: what torch refuses on nested tensors gt refuses with
torch's error types and messages (floor division with a nested tensor on either side, a number
before a jagged tensor in ``gt.div``/``mul``/``add``/``sub``, ``abs_``; the multi-head attention
modules and ``F.multi_head_attention_forward`` on nested inputs), and what torch computes gt
computes (``gt.remainder(2, nt)``, ``float_power_``, the strided layout's in-place ops,
``F.scaled_dot_product_attention`` on (B, j, H, D) jagged tensors, values and gradients)."""

import re

import numpy as np
import pytest

import gt
import gt.nn.functional as F
from test_nested_parity import _arrays, _pair, _same

torch = pytest.importorskip("torch")
TF = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")


def _text(e):
    """An error's message without what differs by design: the nested int's number, torch.Size."""
    return re.sub(r"torch\.Size\(\[(.*?)\]\)", r"(\1)", re.sub(r"j\d+", "j", str(e)))


def _same_error(call_g, call_t, exact=True):
    """Both raise, the same type and (``exact``) the same message."""
    with pytest.raises(Exception) as et:
        call_t()
    with pytest.raises(Exception) as eg:
        call_g()
    assert type(eg.value) is type(et.value), (eg.value, et.value)
    if exact:
        assert _text(eg.value) == _text(et.value)


def _both(lengths=(2, 5, 3), tail=(4,), positive=False, requires_grad=False):
    arrays = [np.abs(a) + 0.5 if positive else a for a in _arrays(lengths, tail)]
    g, t, _, _ = _pair(arrays, requires_grad=requires_grad)
    return g, t


def _inplace(x, stmt):
    ns = {"y": x.clone()}
    exec(stmt, {}, ns)
    return ns["y"]


@pytest.mark.first_pass
def test_floor_division_with_a_nested_operand_is_refused_as_torch():
    """gt computed ``nt // x``, ``x // nt``, ``floor_divide`` and ``//=`` from the values; torch 2.13
    has no floor division on the jagged layout (NotImplementedError ``aten.floor_divide...``)."""
    (g, t), (g2, t2) = _both(), _both(positive=True)
    xg, xt = gt.tensor(np.arange(1.0, 5.0)), torch.arange(1.0, 5.0, dtype=torch.float64)
    pg, pt = gt.nn.Parameter(gt.ones(4)), torch.nn.Parameter(torch.ones(4))
    forms = [lambda m, a, b, x, p: a // 2, lambda m, a, b, x, p: a // x, lambda m, a, b, x, p: x // a,
             lambda m, a, b, x, p: 2 // a, lambda m, a, b, x, p: a // b, lambda m, a, b, x, p: p // a,
             lambda m, a, b, x, p: m.floor_divide(a, 2), lambda m, a, b, x, p: m.floor_divide(x, a),
             lambda m, a, b, x, p: m.floor_divide(2, a), lambda m, a, b, x, p: a.floor_divide(2),
             lambda m, a, b, x, p: x.floor_divide(a), lambda m, a, b, x, p: a.clone().floor_divide_(2),
             lambda m, a, b, x, p: _inplace(a, "y //= 2")]
    for form in forms:
        _same_error(lambda: form(gt, g, g2, xg, pg), lambda: form(torch, t, t2, xt, pt))


@pytest.mark.first_pass
def test_a_number_before_a_jagged_tensor_in_the_arithmetic_functions():
    """``gt.div(2, nt)`` computed; torch 2.13 reads the number as the op's non-nested ``self`` and
    raises its ValueError (``mul``/``add``/``sub`` too, with a rounding mode ``div.Tensor_mode``);
    ``abs_`` and ``absolute_`` are refused (NotImplementedError ``aten.abs_.default``)."""
    g, t = _both(positive=True)
    for name in ("div", "divide", "true_divide", "mul", "multiply", "add", "sub", "subtract"):
        _same_error(lambda: getattr(gt, name)(2, g), lambda: getattr(torch, name)(2, t))
    for mode in ("floor", "trunc"):
        _same_error(lambda: gt.div(2, g, rounding_mode=mode), lambda: torch.div(2, t, rounding_mode=mode))
    for name in ("abs_", "absolute_"):
        _same_error(lambda: getattr(g.clone(), name)(), lambda: getattr(t.clone(), name)())
    _same_error(lambda: g.float().clone().float_power_(2), lambda: t.float().clone().float_power_(2))


def test_what_torch_computes_beside_the_refusals():
    """``gt.remainder(2, nt)`` raised TypeError (torch computes); ``float_power_`` of a float64
    tensor, ``x.remainder(nt)``/``gt.remainder(x, nt)``/``p % nt`` and ``p > nt`` through the
    operand checks of the dense methods (no wrappers), and ``nt.div(x, rounding_mode=)``."""
    g, t = _both(positive=True)
    x = np.random.default_rng(3).standard_normal(4) + 3.0
    xg, xt = gt.tensor(x), torch.tensor(x)
    pg, pt = gt.nn.Parameter(gt.tensor(x)), torch.nn.Parameter(torch.tensor(x))
    pairs = [(gt.remainder(2, g), torch.remainder(2, t)), (gt.remainder(2.5, g), torch.remainder(2.5, t)),
             (g.clone().float_power_(2), t.clone().float_power_(2)), (xg.remainder(g), xt.remainder(t)),
             (gt.remainder(xg, g), torch.remainder(xt, t)), (pg % g, pt % t), (pg > g, pt > t), (pg <= g, pt <= t),
             (xg.gt(g), xt.gt(t)), (gt.pow(2, g), torch.pow(2, t)), (gt.div(xg, g), torch.div(xt, t)),
             (g.div(xg, rounding_mode="floor"), t.div(xt, rounding_mode="floor")), (gt.fmod(xg, g), torch.fmod(xt, t))]
    for og, ot in pairs:
        _same(og, ot, rtol=1e-12, atol=1e-12)
        assert str(og.dtype).split(".")[-1] == str(ot.dtype).split(".")[-1]


def _strided(positive=False):
    arrays = [np.abs(a) + 0.5 if positive else a for a in _arrays((2, 3), (4,), seed=4)]
    arrays[1] = arrays[1][:, :3]        # the sizes differ in two dims: only the strided layout holds them
    return (gt.nested.nested_tensor([gt.tensor(a) for a in arrays]),
            torch.nested.nested_tensor([torch.tensor(a) for a in arrays]))


def test_the_strided_layouts_in_place_ops_and_number_first_arithmetic():
    """torch 2.13's strided layout takes ``add_``/``mul_`` (a number or a nested tensor),
    ``neg_``/``abs_``/``relu_``/``tanh_``/``zero_``/``fill_``/``copy_``,
    ``+=``/``*=``, ``sgn``/``isinf``/``eq``/``masked_fill`` and ``gt.add/sub/mul/div(2, nt)``; gt
    refused them. What it refuses stays refused (NotImplementedError)."""
    (g, t), (g2, t2) = _strided(), _strided(positive=True)
    results = [(g.clone().add_(2), t.clone().add_(2)), (g.clone().add_(g2), t.clone().add_(t2)),
               (g.clone().mul_(g2), t.clone().mul_(t2)), (g.clone().mul_(3), t.clone().mul_(3)),
               (_inplace(g, "y += 2"), _inplace(t, "y += 2")), (g.clone().__imul__(g2), t.clone().__imul__(t2)),
               (g.clone().fill_(1.5), t.clone().fill_(1.5)), (g.clone().copy_(g2), t.clone().copy_(t2)),
               (g.masked_fill(g2 > 1.0, -1.0), t.masked_fill(t2 > 1.0, -1.0)), (g.sgn(), t.sgn()),
               (g.isinf(), t.isinf()), (g.eq(0.5), t.eq(0.5))]
    results += [(getattr(g.clone(), n)(), getattr(t.clone(), n)()) for n in ("neg_", "abs_", "relu_", "tanh_",
                                                                               "zero_")]
    results += [(getattr(gt, n)(2, g2), getattr(torch, n)(2, t2)) for n in ("add", "sub", "mul", "div",
                                                                          "true_divide", "divide")]
    for og, ot in results:
        assert og.layout == gt.strided and len(og.unbind()) == len(ot.unbind())
        for a, b in zip(og.unbind(), ot.unbind()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)
    for call in (lambda m, a: a.clone().sub_(1), lambda m, a: a.clone().exp_(), lambda m, a: m.remainder(2, a),
                 lambda m, a: a.clone().masked_fill_(a > 1.0, 0.0),
                 lambda m, a: m.div(2, a, rounding_mode="floor"), lambda m, a: m.floor_divide(2, a)):
        _same_error(lambda: call(gt, g2), lambda: call(torch, t2), exact=False)


def _mha(**kwargs):
    torch.manual_seed(0)
    t = torch.nn.MultiheadAttention(8, kwargs.pop("heads", 2), dtype=torch.float64, **kwargs)
    g = gt.nn.MultiheadAttention(8, t.num_heads, dtype=gt.float64, **kwargs)
    return g, t


@pytest.mark.first_pass
def test_multihead_attention_modules_refuse_nested_input_as_torch():
    """``nn.MultiheadAttention`` and the transformer layers raised NotImplementedError for a nested
    input; torch 2.13 asserts (AssertionError) that a nested input takes its fast path only, naming
    the first reason it was not taken (a jagged tensor "has_torch_function"; a strided one
    reaching it is computed: test_the_inference_fast_path_of_a_strided_nested_tensor)."""
    g, t = _both((3, 5), (8,))
    gs, ts = (gt.nested.nested_tensor([gt.randn(n, 8, dtype=gt.float64) for n in (3, 5)]),
              torch.nested.nested_tensor([torch.randn(n, 8, dtype=torch.float64) for n in (3, 5)]))
    dg, dt = gt.zeros(2, 4, 8, dtype=gt.float64), torch.zeros(2, 4, 8, dtype=torch.float64)
    cases = [({"batch_first": True}, True, False), ({"batch_first": True}, False, False),
             ({"batch_first": True}, False, True), ({}, False, False),
             ({"batch_first": True, "heads": 1}, False, False),
             ({"batch_first": True, "add_bias_kv": True}, False, False),
             ({"batch_first": True, "add_zero_attn": True}, False, False),
             ({"batch_first": True, "kdim": 4, "vdim": 4}, False, False)]
    for kwargs, train, mask in cases:
        mg, mt = _mha(**kwargs)
        mg.train(train), mt.train(train)
        kg, kt = ({"key_padding_mask": gt.zeros(2, 5, dtype=gt.bool)},
                  {"key_padding_mask": torch.zeros(2, 5, dtype=torch.bool)}) if mask else ({}, {})
        with gt.no_grad(), torch.no_grad():
            _same_error(lambda: mg(g, g, g, **kg), lambda: mt(t, t, t, **kt))
        _same_error(lambda: mg(g, g, g), lambda: mt(t, t, t))
        _same_error(lambda: mg(g, g.clone(), g.clone()), lambda: mt(t, t.clone(), t.clone()))
        _same_error(lambda: mg(dg, g, g), lambda: mt(dt, t, t))
        _same_error(lambda: mg(gs, gs, gs), lambda: mt(ts, ts, ts))
    for train in (True, False):
        torch.manual_seed(1)
        layers = [(gt.nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=gt.float64),
                   torch.nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=torch.float64))]
        layers.append((gt.nn.TransformerEncoder(layers[0][0], 2, enable_nested_tensor=False),
                       torch.nn.TransformerEncoder(layers[0][1], 2, enable_nested_tensor=False)))
        for lg, lt in layers:
            lg.train(train), lt.train(train)
            _same_error(lambda: lg(g), lambda: lt(t))
        dec_g, dec_t = (gt.nn.TransformerDecoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=gt.float64),
                        torch.nn.TransformerDecoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=torch.float64))
        dec_g.train(train), dec_t.train(train)
        for a, b in ((g, g), (g, dg), (dg, g)):
            _same_error(lambda: dec_g(a, b), lambda: dec_t(*(t if x is g else dt for x in (a, b))))
        whole = (gt.nn.Transformer(8, 2, 1, 1, 16, 0.0, batch_first=True, dtype=gt.float64),
                 torch.nn.Transformer(8, 2, 1, 1, 16, 0.0, batch_first=True, dtype=torch.float64))
        whole[0].train(train), whole[1].train(train)
        _same_error(lambda: whole[0](g, g), lambda: whole[1](t, t))


@pytest.mark.first_pass
def test_functional_multi_head_attention_fails_on_nested_input_as_torch():
    """``F.multi_head_attention_forward`` raised NotImplementedError; torch 2.13 fails where its
    first dense-only step meets the nested tensor: key and value of other shapes (AssertionError),
    the packed in-projection (``unsqueeze(0)``) or the split into heads (``view``), RuntimeError."""
    g, t = _both((3, 5), (8,))
    g2, t2 = g.clone(), t.clone()
    dg, dt = gt.zeros(2, 4, 8, dtype=gt.float64), torch.zeros(2, 4, 8, dtype=torch.float64)
    mg, mt = _mha()
    forms = [(g, g, g), (g, g2, g2), (g, dg, dg), (dg, g, g), (dg, g, g2), (dg, g, dg), (dg, dg, g)]

    def call(f, m, qkv, separate):
        w, b = m.in_proj_weight, m.in_proj_bias
        kw = dict(use_separate_proj_weight=True, q_proj_weight=w[:8], k_proj_weight=w[8:16],
                  v_proj_weight=w[16:]) if separate else {}
        return f.multi_head_attention_forward(*qkv, 8, 2, None if separate else w, b, None, None, False, 0.0,
                                              m.out_proj.weight, m.out_proj.bias, need_weights=False, **kw)

    for qkv in forms:
        tq = tuple(t if x is g else t2 if x is g2 else dt for x in qkv)
        for separate in (False, True):
            _same_error(lambda: call(F, mg, qkv, separate), lambda: call(TF, mt, tq, separate))


def test_attention_over_the_heads_of_each_row_of_an_untransposed_jagged_tensor():
    """``F.scaled_dot_product_attention`` of (B, j, H, D) jagged tensors (not transposed to
    (B, H, j, D)): torch 2.13 attends over the H entries of each row; gt refused. Values and
    gradients of query, key and value; a dense key raises torch's ValueError."""
    arrays = _arrays((3, 5), (2, 4), seed=6)
    w = np.random.default_rng(7).standard_normal((8, 2, 4))
    for kwargs in ({}, {"scale": 0.3}, {"is_causal": True}):
        (gq, tq, gl, tl) = _pair(arrays)
        gk, tk = gq * 0.5 + 1.0, tq * 0.5 + 1.0
        og, ot = F.scaled_dot_product_attention(gq, gk, gq, **kwargs), TF.scaled_dot_product_attention(tq, tk, tq,
                                                                                                      **kwargs)
        _same(og, ot, rtol=1e-10, atol=1e-12)
        (og.values() * gt.tensor(w)).sum().backward()
        (ot.values() * torch.tensor(w)).sum().backward()
        for a, b in zip(gl, tl):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)
    g, t, _, _ = _pair(arrays, requires_grad=False)
    _same_error(lambda: F.scaled_dot_product_attention(g, gt.zeros(2, 5, 2, 4), g),
                lambda: TF.scaled_dot_product_attention(t, torch.zeros(2, 5, 2, 4), t))


def test_the_inference_fast_path_of_a_strided_nested_tensor():
    """torch 2.13 computes ``nn.MultiheadAttention`` (self-attention, batch first, in inference
    without grad) and ``nn.TransformerEncoderLayer``/``TransformerEncoder`` on a strided nested
    tensor, each sequence on its own; the weights a dense (B, L, L) (or (B, heads, L, L)) tensor,
    zero past each sequence's length. gt raised NotImplementedError. A decoder raises (its
    cross-attention is never self-attention)."""
    arrays = _arrays((3, 5), (8,), seed=8)
    gs, ts = (gt.nested.nested_tensor([gt.tensor(a) for a in arrays]),
              torch.nested.nested_tensor([torch.tensor(a) for a in arrays]))
    mg, mt = _mha(batch_first=True)
    mg.load_state_dict({k: gt.tensor(v.numpy()) for k, v in mt.state_dict().items()})
    torch.manual_seed(2)
    enc_t = torch.nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=torch.float64)
    enc_g = gt.nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=gt.float64)
    enc_g.load_state_dict({k: gt.tensor(v.numpy()) for k, v in enc_t.state_dict().items()})
    stack_g, stack_t = (gt.nn.TransformerEncoder(enc_g, 2, enable_nested_tensor=False),
                        torch.nn.TransformerEncoder(enc_t, 2, enable_nested_tensor=False))
    for m in (mg, mt, enc_g, enc_t, stack_g, stack_t):
        m.eval()
    with gt.no_grad(), torch.no_grad():
        results = [(mg(gs, gs, gs, need_weights=False)[0], mt(ts, ts, ts, need_weights=False)[0])]
        for average in (True, False):
            (og, wg), (ot, wt) = mg(gs, gs, gs, average_attn_weights=average), mt(ts, ts, ts,
                                                                                  average_attn_weights=average)
            results.append((og, ot))
            np.testing.assert_allclose(wg.numpy(), wt.numpy(), rtol=1e-10, atol=1e-12)
        assert mg(gs, gs, gs, need_weights=False)[1] is None
        results += [(enc_g(gs), enc_t(ts)), (stack_g(gs), stack_t(ts))]
        for og, ot in results:
            assert og.is_nested and og.layout == gt.strided
            for a, b in zip(og.unbind(), ot.unbind()):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
        dec_g, dec_t = (gt.nn.TransformerDecoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=gt.float64).eval(),
                        torch.nn.TransformerDecoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=torch.float64).eval())
        _same_error(lambda: dec_g(gs, gs), lambda: dec_t(ts, ts))
        _same_error(lambda: mg(gs, gs, gs, key_padding_mask=gt.zeros(2, 5, dtype=gt.bool)),
                    lambda: mt(ts, ts, ts, key_padding_mask=torch.zeros(2, 5, dtype=torch.bool)))


def test_reductions_found_by_the_differential_fuzz():
    """``amax``/``amin``/``any``/``all``/``argmax``/``argmin`` with ``keepdim=True`` and no dim gave a
    0-d tensor (torch's (1, 1, 1)); over the ragged dim an empty sequence raised ValueError (torch:
    the dtype's lowest value for a max, highest for a min, index 0); tuple dims of ``prod``/``max``/
    ``argmax``... and ``keepdim`` without a dim of ``sum``/``mean``/``max`` are torch's TypeError;
    ``mean`` over the ragged and an inner dim torch's AssertionError. Gradients of the non-empty
    sequences as torch's."""
    g, t, gl, tl = _pair(_arrays((3, 0, 2), (4,), seed=11))
    for name in ("amax", "amin", "any", "all", "argmax", "argmin"):
        a, b = (g > 0, t > 0) if name in ("any", "all") else (g, t)
        _same(getattr(a, name)(keepdim=True), getattr(b, name)(keepdim=True))
    for name in ("amax", "amin", "argmax", "argmin"):
        for keepdim in (False, True):
            _same(getattr(g, name)(1, keepdim=keepdim), getattr(t, name)(1, keepdim=keepdim))
    for name in ("max", "min"):
        og, ot = getattr(g, name)(dim=1), getattr(t, name)(dim=1)
        _same(og.values, ot.values)
        _same(og.indices, ot.indices)
    w = np.random.default_rng(12).standard_normal((3, 4))
    (g.amax(1).clamp(-9.0, 9.0) * gt.tensor(w)).sum().backward()      # the empty sequence's -max clamped
    (t.amax(1).clamp(-9.0, 9.0) * torch.tensor(w)).sum().backward()
    for a, b in zip(gl, tl):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-12)
    g, t = _both()
    for name, dim in (("prod", (1, 2)), ("max", (0, 1)), ("min", (1, 2)), ("argmax", (0, 1)), ("argmin", (1, 2))):
        _same_error(lambda: getattr(g, name)(dim), lambda: getattr(t, name)(dim), exact=name.startswith("arg"))
    for name in ("sum", "mean", "prod", "max", "min"):
        _same_error(lambda: getattr(g, name)(keepdim=True), lambda: getattr(t, name)(keepdim=True), exact=False)
    _same_error(lambda: g.mean(dim=(1, 2)), lambda: t.mean(dim=(1, 2)))


def test_unary_and_rsub_found_by_the_differential_fuzz():
    """``lgamma``, ``digamma``, ``signbit`` (method and function) raised NotImplementedError on a
    jagged tensor (torch computes); ``gt.rsub`` with a tensor beside a jagged one computed (torch:
    NotImplementedError ``aten.rsub.Tensor``), with a number it computes as torch's."""
    g, t = _both(positive=True)
    for og, ot in ((g.lgamma(), t.lgamma()), (gt.digamma(g), torch.digamma(t)), (g.signbit(), t.signbit()),
                   (gt.signbit(-g), torch.signbit(-t)), (gt.rsub(g, 2.0), torch.rsub(t, 2.0))):
        _same(og, ot, rtol=1e-12, atol=1e-12)
    x = gt.ones(4, dtype=gt.float64), torch.ones(4, dtype=torch.float64)
    _same_error(lambda: gt.rsub(g, x[0]), lambda: torch.rsub(t, x[1]))
    _same_error(lambda: gt.rsub(x[0], g), lambda: torch.rsub(x[1], t))
    _same_error(lambda: gt.rsub(g, g), lambda: torch.rsub(t, t))


@pytest.mark.first_pass
def test_in_place_masked_fill_and_select_with_holes_refused_as_torch():
    """``masked_fill_`` of a jagged tensor (torch 2.13: NotImplementedError ``aten.masked_fill_.Scalar``)
    and ``select`` after the ragged dim of one with holes (torch's ValueError) computed."""
    g, t = _both()
    _same_error(lambda: g.clone().masked_fill_(g > 0, 0.0), lambda: t.clone().masked_fill_(t > 0, 0.0))
    values = np.random.default_rng(13).standard_normal((9, 4))
    holes = [m.nested.nested_tensor_from_jagged(m.tensor(values), m.tensor([0, 3, 7]), m.tensor([2, 3]))
             for m in (gt, torch)]
    _same_error(lambda: holes[0].select(-1, 0), lambda: holes[1].select(-1, 0))
    _same(holes[0].select(0, 1), holes[1].select(0, 1))
