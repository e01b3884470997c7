"""Leftover differences from torch 2.13, mended or pinned: ``c / x`` rounded as torch's
``x.reciprocal() * c`` (dense and nested), a dense tensor or number left of a nested tensor in every
operator, ``max``/``min`` with a dim and one ``out`` tensor (torch's TypeError) and the ``out=`` of the
other (values, indices) functions, ``mv``'s errors, ``lerp`` rounded once as torch's kernel with its
gradients, and the deprecated writes into expanded tensors under autograd and on a mesh."""

import operator
import os
import warnings

import numpy as np
import pytest

import gt
from test_nested_leftovers_parity import _outcome

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")


def _bits(t):
    return np.asarray(t.detach().numpy()).tobytes()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_number_over_a_tensor_rounds_as_torchs_reciprocal_times_number(dtype):
    """torch's ``c / x`` is ``x.reciprocal() * c`` (rounded twice): gt divided once, an ulp apart
    in about a quarter of the elements; the gradient was already torch's."""
    a = (np.random.default_rng(0).standard_normal(400) * 10).astype(dtype)
    for c in (0.1, 3, 1.7, 1):
        ours, theirs = gt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        yo, yt = c / ours, c / theirs
        assert _bits(yo) == _bits(yt), (dtype, c)
        if dtype != "float16":
            g = np.linspace(-1, 1, a.size).astype(dtype)
            yo.backward(gt.tensor(g))
            yt.backward(torch.tensor(g))
            assert _bits(ours.grad) == _bits(theirs.grad), (dtype, c)
    ints = np.arange(1, 40)
    assert _bits(3 / gt.tensor(ints)) == _bits(3 / torch.tensor(ints))
    assert _bits(gt.div(3, gt.tensor(a))) == _bits(torch.div(3, torch.tensor(a)))     # the function: one rounding


def test_number_over_a_jagged_tensor_rounds_as_torch():
    parts = [np.arange(1.0, 7.0, dtype=np.float32).reshape(2, 3), np.arange(7.0, 10.0, dtype=np.float32).reshape(1, 3)]
    nts = [lib.nested.nested_tensor([lib.tensor(p) for p in parts], layout=lib.jagged) for lib in (gt, torch)]
    assert _bits((3 / nts[0]).values()) == _bits((3 / nts[1]).values())


def test_number_first_functions_with_nested_tensors_as_torch():
    """``gt.div(3, strided)`` divides once, as torch's (``3 / strided`` is its reciprocal times 3);
    ``gt.pow(True, jagged)`` computes as torch's (gt raised TypeError; ``gt.pow(2, jagged)`` computed)."""
    parts = [np.arange(1, 7).reshape(2, 3), np.arange(7, 10).reshape(1, 3)]
    got = []
    for lib in (gt, torch):
        strided = lib.nested.nested_tensor([lib.tensor(p) for p in parts])
        jagged = lib.nested.nested_tensor([lib.tensor(p) for p in parts], layout=lib.jagged)
        got.append([_bits(p) for p in lib.div(3, strided).unbind()] + [_bits(lib.pow(n, jagged).values())
                                                                        for n in (True, 2, 2.5)])
    assert got[0] == got[1]


def _operands(lib, kind):
    rng = np.random.default_rng(3)
    parts = [np.abs(rng.standard_normal((2, 3))) + 0.3, np.abs(rng.standard_normal((4, 3))) + 0.3]
    if kind == "int":
        parts = [(4 * p).astype(np.int64) for p in parts]
        lefts = {"0-d": lib.tensor(3), "1-d": lib.tensor([1, 2, 3]), "number": 3, "0-d float": lib.tensor(0.5),
                 "float": 0.5, "0-d bool": lib.tensor(True), "bool": True}
    else:
        lefts = {"0-d": lib.tensor(0.3, dtype=lib.float64), "0-d float32": lib.tensor(0.3),
                 "1-d": lib.tensor([0.5, -0.1, 0.3], dtype=lib.float64), "number": 0.3, "int": 3,
                 "0-d int": lib.tensor(3)}
    rights = {"jagged": lib.nested.nested_tensor([lib.tensor(p) for p in parts], layout=lib.jagged),
              "strided": lib.nested.nested_tensor([lib.tensor(p) for p in parts])}
    return lefts, rights


OPERATORS = (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge, operator.add, operator.sub,
             operator.mul, operator.truediv, operator.floordiv, operator.mod, operator.pow, operator.and_,
             operator.or_, operator.xor)


def _kind_and_dtype(out, op, x, y):
    if isinstance(out, tuple) and out and out[0] == "nested":
        return (*out[:2], out[3], repr(out[4]), str(op(x, y).dtype).split(".")[-1])   # (NaN != NaN in lists)
    return out


@pytest.mark.parametrize("kind", ["float", "int"])
def test_dense_and_numbers_left_of_nested_tensors_in_every_operator(kind):
    """A 0-d, 1-d tensor or a number left of a jagged or strided tensor in each of the 16 operators:
    torch's values, dtypes or error types, but for ``0-d == strided`` (next test)."""
    (lg, rg), (lt, rt) = _operands(gt, kind), _operands(torch, kind)
    for op in OPERATORS:
        for a in lg:
            for b in rg:
                if op is operator.eq and b == "strided" and a.startswith("0-d"):
                    continue
                ours = _kind_and_dtype(_outcome(lambda: op(lg[a], rg[b])), op, lg[a], rg[b])
                theirs = _kind_and_dtype(_outcome(lambda: op(lt[a], rt[b])), op, lt[a], rt[b])
                assert ours == theirs, (op.__name__, a, b, ours, theirs)


def test_zero_d_equal_to_a_strided_tensor_is_pythons_to_route():
    """Still different: ``x == nt`` of a 0-d ``x`` and a strided ``nt``. Python asks a subclass's
    reflected method first (``nt.__eq__(x)``, the same call as ``nt == x``, which torch computes);
    torch's strided tensors are no subclass, so its ``x.__eq__`` refuses. The function forms refuse
    as torch's."""
    (lg, rg), (lt, rt) = _operands(gt, "float"), _operands(torch, "float")
    assert (lg["0-d"] == rg["strided"]).is_nested and (rg["strided"] == lg["0-d"]).is_nested
    with pytest.raises(RuntimeError):
        lt["0-d"] == rt["strided"]     # noqa: B015
    for lib, (left, right) in ((gt, (lg, rg)), (torch, (lt, rt))):
        with pytest.raises(RuntimeError, match="eq does not support nested tensor as other value"):
            lib.eq(left["0-d"], right["strided"])


OUT_KINDS = {"tensor": lambda lib: lib.empty(0), "tuple of 1": lambda lib: (lib.empty(0),),
             "pair": lambda lib: [lib.empty(0), lib.empty(0, dtype=lib.int64)],
             "tuple of 3": lambda lib: (lib.empty(0),) * 3, "int": lambda lib: 3}
PAIRS = {"max": (2,), "min": (2,), "sort": (2,), "topk": (2, 2), "kthvalue": (2, 2), "mode": (2,), "median": (2,),
         "nanmedian": (2,), "cummax": (2,), "cummin": (2,), "aminmax": (), "frexp": ()}


@pytest.mark.first_pass
def test_out_kinds_of_the_functions_with_two_results_as_torch():
    """``out=`` of a tensor, a tuple of 1, 2 or 3 tensors, or a number for the functions that give
    (values, indices): torch's values or error types. ``gt.max(x, 2, out=t)`` computed (an
    IndexError with a dim out of range) where torch's TypeError says it takes a pair."""
    for name, args in PAIRS.items():
        for kind, make in OUT_KINDS.items():
            results = []
            for lib in (gt, torch):
                x = lib.arange(24.0).reshape(2, 3, 4)
                results.append(_outcome(lambda: getattr(lib, name)(x, *args, out=make(lib))))
            assert results[0] == results[1], (name, kind, *results)
    for lib in (gt, torch):
        for call in (lambda: lib.max(lib.ones(4), 2, out=lib.empty(0)), lambda: lib.min(lib.ones(2, 3), dim=1,
                     out=lib.empty(0)), lambda: lib.max(lib.ones(2, 3), 1, True, out=lib.empty(0))):
            with pytest.raises(TypeError, match="invalid combination of arguments|must be tuple of Tensors"):
                call()
    with pytest.raises(RuntimeError, match="expects exponent to have int dtype but got long int"):
        gt.frexp(gt.ones(3), out=(gt.empty(0), gt.empty(0, dtype=gt.int64)))


def _dtypes_outcome(call):
    try:
        r = call()
    except (RuntimeError, TypeError) as e:
        return type(e), str(e)
    r = r if isinstance(r, tuple) else (r,)
    return [(str(t.dtype).split(".")[-1], t.tolist()) for t in r]


@pytest.mark.first_pass
def test_out_dtypes_of_the_functions_with_two_results_as_torch():
    """(values, indices) ``out=`` of other dtypes: torch's errors in its words, or its values. gt cast
    into max/min's and median/nanmedian's (a float64 or int32 out written silently), worded kthvalue's
    and mode's wrong indices as wrong values, and took ``out=`` for median/nanmedian without a dim
    (torch's TypeError)."""
    pairs = [("float64", "int64"), ("int64", "int64"), ("float32", "int32"), ("float32", "float32"),
             ("float32", "int64"), ("float16", "int64"), ("float64", "float64")]
    for name, args in PAIRS.items():
        for values, indices in pairs:
            got = []
            for lib in (gt, torch):
                out = (lib.empty(0, dtype=getattr(lib, values)), lib.empty(0, dtype=getattr(lib, indices)))
                got.append(_dtypes_outcome(lambda: getattr(lib, name)(lib.arange(24.0).reshape(2, 3, 4), *args,
                                                                      out=out)))
            assert got[0] == got[1], (name, values, indices, *got)
    for name in ("median", "nanmedian"):
        for lib in (gt, torch):
            with pytest.raises(TypeError, match='missing 1 required positional arguments: "dim"'):
                getattr(lib, name)(lib.ones(3), out=lib.empty(0))


@pytest.mark.first_pass
def test_mv_errors_as_torchs():
    """A 0-d self: torch's IndexError (gt raised its RuntimeError); other ranks and sizes: its
    RuntimeErrors in its words."""
    shapes = [((), (3,)), ((), ()), ((2, 3), ()), ((3,), (3,)), ((2, 3, 4), (4,)), ((2, 3), (4,)), ((0, 3), (3,))]
    for a, b in shapes:
        results = []
        for lib in (gt, torch):
            try:
                results.append(("ok", tuple(lib.mv(lib.ones(a), lib.ones(b)).shape),
                                tuple(lib.ones(a).mv(lib.ones(b)).shape)))
            except (RuntimeError, IndexError) as e:    # (gt's ShapeError is a RuntimeError)
                results.append((isinstance(e, RuntimeError), isinstance(e, IndexError), str(e).split(" (")[0]))
        assert results[0] == results[1], (a, b, *results)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_lerp_rounds_once_and_differentiates_as_torchs_kernel(dtype):
    """torch's kernel: an fma in float32 (float64 for float64), rounded once; its gradients
    ``g (1 - w)`` with ``1 - w`` in the weight's dtype, ``g w``, ``g (end - start)``. gt's composite
    differed from it in about a third of the values and half the start gradients."""
    rng = np.random.default_rng(1)
    s, e, g = (rng.standard_normal(300).astype(dtype) for _ in range(3))
    s[:5] = [1e30, -3e-30, 7.0, 0.0, np.inf] if dtype == "float64" else s[:5]
    for w in (rng.uniform(-0.7, 2.5, 300).astype(dtype), 0.3, 0.75, 2):
        got = []
        for lib in (gt, torch):
            S, E = lib.tensor(s, requires_grad=True), lib.tensor(e, requires_grad=True)
            W = lib.tensor(w, requires_grad=True) if isinstance(w, np.ndarray) else w
            out = lib.lerp(S, E, W)
            out.backward(lib.tensor(g))
            got.append([_bits(out), _bits(S.grad), _bits(E.grad)] + ([_bits(W.grad)] if W is not w else []))
        assert got[0] == got[1], (dtype, w if not isinstance(w, np.ndarray) else "tensor")


def test_lerp_second_derivatives_as_torch():
    rng = np.random.default_rng(2)
    s, e, w = (rng.standard_normal(6) for _ in range(3))
    grads = []
    for lib in (gt, torch):
        S, E, W = (lib.tensor(a, requires_grad=True) for a in (s, e, w))
        out = (lib.lerp(S, E, W) ** 2).sum()
        first = lib.autograd.grad(out, (S, E, W), create_graph=True)
        second = lib.autograd.grad(sum(f.sum() for f in first), (S, E, W))
        grads.append([f.detach().numpy() for f in first + second])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def _expanded_write(lib, name, value):
    base = lib.tensor(np.arange(8.0).reshape(8, 1))         # sharded on a mesh of 2 or 4 devices
    e = (base * 1).expand(8, 3)
    if name == "masked_fill_":
        return e.masked_fill_(lib.tensor([[True, False, True]] * 8), value)
    if name == "index_fill_":
        return e.index_fill_(1, lib.tensor([0, 2]), value)
    return e.index_put_((lib.tensor([0, 5]), lib.tensor([1, 2])), value)


@pytest.mark.filterwarnings("ignore:Use of .* on expanded tensors is deprecated")
@pytest.mark.parametrize("name", ["masked_fill_", "index_fill_", "index_put_"])
def test_deprecated_writes_into_expanded_tensors_under_autograd(name):
    """Into an expanded tensor in the graph, torch warns, writes, and its backward then raises its
    "more than one element" RuntimeError; gt warns (it did not) and raises that error at the write.
    With only the written value requiring grad torch writes and differentiates through the shared
    memory, which gt refuses, saying so (as on a mesh, where it refuses every such write)."""
    for lib in (gt, torch):
        y = lib.tensor([1.0, 2.0, 3.0], requires_grad=True) * 2
        args = {"masked_fill_": (lib.tensor([[True, False, True]] * 2), 5.0),
                "index_fill_": (1, lib.tensor([0, 2]), 5.0),
                "index_put_": ((lib.tensor([0]), lib.tensor([1])), lib.tensor(5.0))}[name]
        with pytest.warns(UserWarning, match=f"Use of {name} on expanded tensors is deprecated"):
            with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
                getattr(y.unsqueeze(0).expand(2, 3), name)(*args)
                y.sum().backward()
    torch_out = _expanded_write(torch, name, torch.tensor(5.0, dtype=torch.float64, requires_grad=True))
    assert torch_out.requires_grad
    sharded = gt.tensor(np.zeros((8, 1))).placement.is_shard()
    refusal = "on one device only" if sharded else "gt cannot record"
    with pytest.warns(UserWarning, match="deprecated"), pytest.raises(RuntimeError, match=refusal):
        _expanded_write(gt, name, gt.tensor(5.0, dtype=gt.float64, requires_grad=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if sharded:
            with pytest.raises(RuntimeError, match="on one device only"):
                _expanded_write(gt, name, gt.tensor(5.0, dtype=gt.float64))
        else:
            assert _bits(_expanded_write(gt, name, gt.tensor(5.0, dtype=gt.float64))) == \
                _bits(_expanded_write(torch, name, torch.tensor(5.0, dtype=torch.float64)))


@pytest.mark.first_pass
def test_the_deprecation_warning_points_at_a_sibling_package_s_line():
    """The warning names the first frame outside gt's own folder: code in a sibling folder whose name
    starts as gt's (``.../gtts/``) is the caller, not gt (gt's folder was compared without its separator)."""
    sibling = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(gt.__file__))), "gtts", "writes.py")
    code = compile("gt.zeros(1).expand(2, 3).masked_fill_(gt.tensor([True, False, True]), 5.0)", sibling, "exec")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(code, {"gt": gt})
    assert [w.filename for w in caught if "deprecated" in str(w.message)] == [sibling]


@pytest.mark.filterwarnings("ignore:Use of .* on expanded tensors is deprecated")
def test_item_assignment_into_an_expanded_tensor_under_autograd():
    """``e[i, j] = v`` (torch's ``index_put_``) as the methods above: into a tensor in the graph torch
    warns, writes and its backward raises (gt raises at the write); a value that requires grad torch
    writes (gt raised torch's "more than one element" error, now its own, after torch's warning)."""
    where = (lambda lib: (lib.tensor([0]), lib.tensor([1])))
    for lib in (gt, torch):
        y = lib.tensor([1.0, 2.0, 3.0], requires_grad=True) * 2
        with pytest.warns(UserWarning, match="Use of index_put_ on expanded tensors is deprecated"):
            with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
                y.unsqueeze(0).expand(2, 3)[where(lib)] = lib.tensor(5.0)
                y.sum().backward()
    values = {lib: lib.tensor(5.0, requires_grad=True) for lib in (gt, torch)}
    e = torch.tensor([1.0, 2.0, 3.0]).expand(2, 3)
    e[where(torch)] = values[torch]
    assert e.requires_grad
    base = gt.tensor([1.0, 2.0, 3.0])
    refusal = "on one device only" if base.placement.is_shard() else "gt cannot record index_put_"
    e = base.expand(2, 3)
    with pytest.warns(UserWarning) as record, pytest.raises(RuntimeError, match=refusal):
        e[where(gt)] = values[gt]
    assert len(record) == 1
