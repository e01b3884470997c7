"""``gt.einsum`` beside torch's: values, dtypes and the gradient of every operand, for implicit and
explicit outputs, ``...`` with broadcasting, diagonals, sums and many operands; torch's dtype
rules for integers; each malformed equation refused with a message naming it."""

import numpy as np
import pytest

import gt
from gt.ops.einsum import parse
from helpers import check_grad, compare_with_torch, randn, torch_or_skip

# equation -> operand shapes
CASES = {
    "ij,jk->ik": [(2, 3), (3, 4)],
    "bij,bjk->bik": [(2, 2, 3), (2, 3, 2)],
    "ij->ji": [(2, 3)],
    "ij->": [(2, 3)],
    "ij->j": [(3, 4)],
    "ij,jk": [(2, 3), (3, 4)],                          # implicit: ik
    "ba": [(2, 3)],                                     # implicit: ab, a transpose
    "bA,Ac": [(2, 3), (3, 2)],                          # capitals sort first
    "i,j->ij": [(3,), (4,)],
    "i,i": [(4,), (4,)],
    "ii->i": [(3, 3)],
    "ii": [(3, 3)],
    "iij->j": [(2, 2, 3)],
    "iji->ij": [(3, 2, 3)],
    "ij,ij->ij": [(3, 4), (3, 4)],
    "ij,ij->i": [(1, 4), (3, 4)],                       # a size-1 subscript broadcasts
    "...ij,...jk->...ik": [(2, 1, 3, 4), (5, 4, 2)],   # ... broadcasts too
    "...ij->...": [(2, 3, 2)],
    "b...->b": [(2, 3, 2)],
    "...ij->j": [(4, 2, 3)],                             # ... missing from the output: summed
    "ij,jk,kl->il": [(2, 3), (3, 4), (4, 2)],
    "ij,k->i": [(2, 3), (4,)],                          # k summed in its operand alone
    "i,i,i->i": [(3,), (3,), (3,)],
    "ij,jk->ijk": [(2, 3), (3, 2)],
    " i j , j k -> i k ": [(2, 3), (3, 4)],
    "->": [()],
    ",ij->ij": [(), (2, 3)],
    "ij,jk->ik ": [(2, 0), (0, 3)],                     # empty: zeros
    "ii->": [(1, 1)],
}


def _arrays(shapes, seed=0):
    return [randn(*s, seed=seed + k) for k, s in enumerate(shapes)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("equation", list(CASES))
def test_values_and_gradients_are_torchs(equation, dtype):
    torch = torch_or_skip()
    compare_with_torch(lambda *xs: gt.einsum(equation, *xs), lambda *xs: torch.einsum(equation, *xs),
                       *_arrays(CASES[equation]), dtype=dtype)


@pytest.mark.parametrize("equation", ["ii->i", "iij->j", "ij,ij->i", "...ij,...jk->...ik", "ij,k->i", "bA,Ac"])
def test_gradients_against_finite_differences(equation):
    check_grad(lambda *xs: gt.einsum(equation, *xs), *_arrays(CASES[equation]))


def test_a_diagonal_gets_its_gradient_on_the_diagonal_only():
    x = gt.tensor(randn(3, 3), requires_grad=True)
    gt.einsum("ii->i", x).backward(gt.tensor([1.0, 2.0, 3.0], dtype=gt.float64))
    np.testing.assert_array_equal(x.grad.numpy(), np.diag([1.0, 2.0, 3.0]))


def test_the_same_tensor_twice_gets_both_gradients():
    torch = torch_or_skip()
    compare_with_torch(lambda a: gt.einsum("ij,ij->", a, a), lambda a: torch.einsum("ij,ij->", a, a), randn(2, 3))


def test_large_products_take_the_contraction_path_and_agree():
    # numpy searches a contraction order above ~1e5 loop steps: both sides of that line agree with torch
    torch = torch_or_skip()
    for n in (8, 24):
        compare_with_torch(lambda a, b, c: gt.einsum("ij,jk,kl->il", a, b, c),
                           lambda a, b, c: torch.einsum("ij,jk,kl->il", a, b, c),
                           *_arrays([(n, n), (n, n), (n, n)]), dtype="float32", rtol=1e-3, atol=1e-3)


def test_operands_as_a_list_and_as_sublists():
    torch = torch_or_skip()
    a, b = randn(2, 3), randn(3, 4, seed=1)
    want = torch.einsum("ij,jk->ik", torch.tensor(a), torch.tensor(b)).numpy()
    for got in (gt.einsum("ij,jk->ik", [gt.tensor(a), gt.tensor(b)]),
                gt.einsum(gt.tensor(a), [0, 1], gt.tensor(b), [1, 2], [0, 2]),
                gt.einsum(gt.tensor(a), [0, 1], gt.tensor(b), [1, 2])):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    x = randn(2, 3, 3)
    np.testing.assert_allclose(gt.einsum(gt.tensor(x), [Ellipsis, 1, 1]).numpy(),
                               torch.einsum(torch.tensor(x), [Ellipsis, 1, 1]).numpy(), rtol=1e-12)


INT_EQUATIONS = {"ij->ij": [(2, 3)], "ij->i": [(2, 3)], "ij->": [(2, 3)], "ii->i": [(3, 3)], "ii": [(3, 3)],
                 "ij,jk->ik": [(2, 3), (3, 4)], "ij,j->i": [(2, 3), (3,)], "ij,k->ik": [(2, 3), (4,)],
                 "i,i->i": [(3,), (3,)], "i,j->ij": [(3,), (2,)], "i,i": [(3,), (3,)],
                 "ij,jk,k->i": [(2, 3), (3, 4), (4,)]}


@pytest.mark.parametrize("equation", list(INT_EQUATIONS))
def test_integer_and_bool_dtypes_are_torchs(equation):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    for dtype in ("int64", "int32", "bool"):
        arrays = [rng.integers(-3, 4, s).astype(dtype) for s in INT_EQUATIONS[equation]]
        try:
            want = torch.einsum(equation, *[torch.from_numpy(a) for a in arrays])
        except (RuntimeError, NotImplementedError):
            # torch has no bool matrix product: gt refuses the same contractions, clearly
            with pytest.raises(NotImplementedError, match="\"bmm\" not implemented for 'Bool'"):
                gt.einsum(equation, *[gt.from_numpy(a) for a in arrays])
            continue
        got = gt.einsum(equation, *[gt.from_numpy(a) for a in arrays])
        assert got.dtype.name == str(want.dtype).split(".")[-1], dtype
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_operands_of_two_dtypes_are_refused_as_in_torch():
    # torch's bmm where a shared subscript is summed (its words); elementwise products promote (tests/
    # test_mixed_dtype_products_parity.py)
    with pytest.raises(RuntimeError, match=r"^expected scalar type Float but found Long$"):
        gt.einsum("ij,jk", gt.ones(2, 3), gt.ones(3, 2, dtype=gt.int64))
    with pytest.raises(RuntimeError, match="^expected scalar type Float but found Double$"):
        gt.einsum("i,i", gt.ones(2), gt.ones(2, dtype=gt.float64))
    with pytest.raises(TypeError, match="operand 0 must be a tensor, got 2.0"):
        gt.einsum("i", 2.0)


@pytest.mark.parametrize("equation, shapes, message", [
    ("ij,jk->ik", [(2, 3)], r"subscripts for 2 operand\(s\) but 1 were given \(equation 'ij,jk->ik'\)"),
    ("ij", [(2, 3), (3,)], r"subscripts for 1 operand\(s\) but 2 were given"),
    ("ijk,jk", [(2, 3), (3, 4)], r"operand 0 has 2 dims \(shape \(2, 3\)\) but its subscripts 'ijk' name 3"),
    ("...ij", [(3,)], r"operand 0 has 1 dims \(shape \(3,\)\) but its subscripts '...ij' name 2"),
    ("ij,jk", [(2, 3), (2, 4)], r"subscript j has size 2 in operand 1 \(shape \(2, 4\)\) but size 3"),
    ("ii", [(2, 3)], r"subscript i is repeated in operand 0 \(shape \(2, 3\)\) with different sizes, 2 and 3"),
    ("i1,jk", [(2, 3), (3, 4)], r"invalid subscript '1' in 'i1'"),
    ("ij->i.j", [(2, 3)], r"invalid subscript '\.' in 'i\.j'"),
    ("ij->ik", [(2, 3)], r"output subscript k appears in no input \(equation 'ij->ik'\)"),
    ("ij,jk->ii", [(2, 3), (3, 4)], "output subscript i appears more than once"),
    ("i...j...", [(2, 3, 4)], r"'\.\.\.' appears twice"),
    ("ij->->", [(2, 3)], "'->' must appear at most once"),
    ("ij-", [(2, 3)], "'->' must appear at most once"),
])
def test_bad_equations_are_named(equation, shapes, message):
    with pytest.raises(ValueError, match=message):
        gt.einsum(equation, *[gt.zeros(*s) for s in shapes])


def test_bad_calls_are_named():
    with pytest.raises(TypeError, match="expected an equation and at least one operand"):
        gt.einsum()
    with pytest.raises(ValueError, match="expected at least one operand"):
        gt.einsum("ij,jk")
    with pytest.raises(TypeError, match="the equation must be a string"):
        parse(3, [(2,)])
    with pytest.raises(ValueError, match=r"ints in \[0, 52\)"):
        gt.einsum(gt.ones(2), [60])


def test_the_normal_form_spells_out_the_ellipsis_and_the_output():
    spec = parse("...ij,jk", [(5, 2, 3), (3, 4)])
    assert spec.equation == "zij,jk->zik" and spec.sizes == {"z": 5, "i": 2, "j": 3, "k": 4}
    assert parse("ba", [(2, 3)]).equation == "ba->ab"


def test_sharded_operands_give_the_unsharded_answer():
    # on a mesh of several devices (GT_DEVICES=N) the operands are split over it; on one, shard() is a no-op
    a, b = randn(4, 3), randn(4, 3, 2, seed=1)
    x, y = gt.tensor(a, requires_grad=True), gt.tensor(b, requires_grad=True)
    assert gt.get_mesh().size == 1 or x.shard(0).placement == gt.Shard(0)
    out = gt.einsum("ij,ijk->jk", x.shard(0), y.shard(0))
    out.backward(gt.ones(3, 2, dtype=gt.float64))
    np.testing.assert_allclose(out.numpy(), np.einsum("ij,ijk->jk", a, b), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), b.sum(2), rtol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), np.broadcast_to(a[:, :, None], b.shape), rtol=1e-12)
