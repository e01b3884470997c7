"""torch's names of arguments where gt had its own (so keyword calls written for torch failed),
beside torch 2.13; the public gt's names keep working where they differ."""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

torch = torch_or_skip()


def test_backward_gradient_keyword_and_other_torch_names():
    """torch's argument names where gt had others: ``backward(gradient=)`` (``grad=``, the public
    gt's, still works), ``norm(dtype=)``, ``ModuleDict(modules=)``, ``ParameterDict(parameters=)``,
    ``Hardtanh(min_value=, max_value=)`` (deprecated in torch, with its warning)."""
    for lib in (gt, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        (x * 2).backward(gradient=lib.tensor([1.0, 3.0]))
        assert x.grad.tolist() == [2.0, 6.0]
        assert lib.tensor([3.0, 4.0]).norm(dtype=lib.float64).dtype == lib.float64
        assert len(lib.nn.ModuleDict(modules={"a": lib.nn.Linear(1, 1)})) == 1
        assert len(lib.nn.ParameterDict(parameters={"w": lib.nn.Parameter(lib.ones(1))})) == 1
        with pytest.warns(FutureWarning, match="`max_value` is deprecated and renamed to `max_val`"):
            assert lib.nn.Hardtanh(max_value=2.0).max_val == 2.0
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).backward(grad=gt.ones(2))
    assert x.grad.tolist() == [2.0, 2.0]
    with pytest.raises(TypeError, match="both gradient= and grad="):
        (x * 2).backward(gradient=gt.ones(2), grad=gt.ones(2))


KEYWORD_CALLS = {
    "transpose": lambda m, t: t.transpose(dim0=0, dim1=1), "swapdims": lambda m, t: t.swapdims(dim0=0, dim1=1),
    "mm": lambda m, t: t.mm(mat2=t.t()), "outer": lambda m, t: t[0].outer(vec2=t[1]),
    "numpy": lambda m, t: m.tensor(t.numpy(force=True)), "arange": lambda m, t: m.arange(start=0, end=3, step=1),
    "arange_end": lambda m, t: m.arange(end=3), "linspace": lambda m, t: m.linspace(start=0, end=1, steps=3),
    "full": lambda m, t: m.full(size=(2,), fill_value=1.5), "where": lambda m, t: m.where(t > 1, input=t, other=-t),
    "matmul": lambda m, t: m.matmul(input=t, other=t.t()), "bmm": lambda m, t: t[None].bmm(mat2=t.t()[None]),
    "addcmul_": lambda m, t: t.clone().addcmul_(tensor1=t, tensor2=t, value=2),
    "addcdiv_": lambda m, t: t.clone().addcdiv_(tensor1=t, tensor2=t, value=2),
    "expand": lambda m, t: t[:1].expand(size=(2, 3)), "reshape": lambda m, t: t.reshape(shape=(3, 2)),
    "permute": lambda m, t: t.permute(dims=(1, 0)), "new_zeros": lambda m, t: t.new_zeros(size=(2,)),
    "new_ones": lambda m, t: t.new_ones(size=(2,)),
    "tile": lambda m, t: t.tile(dims=(2, 1)),
    "searchsorted": lambda m, t: m.searchsorted(sorted_sequence=m.tensor([2.0, 4.0]), input=t),
    "min_other": lambda m, t: m.min(t, other=t * 0 + 3), "max_other": lambda m, t: t.max(other=t * 0 + 3),
    "exp_input": lambda m, t: m.exp(input=t), "add_input": lambda m, t: m.add(input=t, other=t, alpha=2),
    "sum_input": lambda m, t: m.sum(input=t, dim=1), "mm_input": lambda m, t: m.mm(input=t, mat2=t.t()),
    "hsplit": lambda m, t: t.hsplit(sections=3)[0], "hsplit_indices": lambda m, t: t.hsplit(indices=[1])[1],
    "where_other": lambda m, t: t.where(condition=t > 2, other=0.0),
    "float_memory_format": lambda m, t: t.float(memory_format=m.preserve_format),
}


@pytest.mark.parametrize("name", list(KEYWORD_CALLS))
def test_torch_s_keyword_names_are_accepted(name):
    """torch's keyword names of these arguments (gt named them otherwise, so keyword calls failed)."""
    data = np.arange(1.0, 7.0).reshape(2, 3)
    ours, theirs = KEYWORD_CALLS[name](gt, gt.tensor(data)), KEYWORD_CALLS[name](torch, torch.tensor(data))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_the_public_gt_s_names_still_work():
    assert gt.arange(0, stop=3).tolist() == [0, 1, 2] and gt.linspace(0, stop=1, steps=3).tolist() == [0.0, 0.5, 1.0]
    assert gt.full(shape=(2,), fill_value=1).tolist() == [1, 1] and gt.ones(2, 3).transpose().shape == (3, 2)
    with pytest.raises(TypeError, match="both end= and stop="):
        gt.arange(0, 3, stop=3)


def test_layers_take_their_input_by_torch_s_keyword():
    """``layer(input=x)``: torch's layers name their first forward argument ``input`` (gt's
    ``x``); a layer whose forward has an ``input`` of its own, or none, is left as it is."""
    data = np.arange(1.0, 7.0).reshape(2, 3)
    for lib in (gt, torch):
        lib.manual_seed(0)
    layers = [lambda m: m.nn.Linear(3, 2), lambda m: m.nn.ReLU(), lambda m: m.nn.LayerNorm(3),
              lambda m: m.nn.Sequential(m.nn.Tanh(), m.nn.Softmax(dim=1))]
    for make in layers:
        ours = make(gt)
        theirs = make(torch)
        if hasattr(theirs, "weight"):
            theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
        got = ours(input=gt.tensor(data, dtype=gt.float32))
        np.testing.assert_allclose(got.detach().numpy(), theirs(input=torch.tensor(data, dtype=torch.float32)).detach().numpy(),
                                   rtol=1e-6)
    loss = gt.nn.CrossEntropyLoss()(input=gt.zeros(2, 3), target=gt.tensor([0, 1]))
    assert loss.item() == pytest.approx(float(np.log(3)))
    with pytest.raises(TypeError):
        gt.nn.Linear(3, 2)(gt.ones(1, 3), input=gt.ones(1, 3))     # the input twice, as torch refuses


def test_manual_seed_returns_the_default_generator_and_takes_any_64_bit_seed():
    for lib in (gt, torch):
        assert lib.manual_seed(3) is lib.default_generator
        assert lib.manual_seed(-1).initial_seed() == 2 ** 64 - 1       # negative seeds wrap, as torch's
    gt.manual_seed(7)
    first = gt.randn(3).tolist()
    gt.manual_seed(7)
    assert gt.randn(3).tolist() == first
