"""torch's view of the recorded graph from ``grad_fn`` (gt/autograd/function.py): ``name()``,
``next_functions`` with ``AccumulateGrad`` nodes for leaves, ``metadata``, for gt's ops and for
torch-style custom Functions, walked as graph-drawing tools walk torch's, beside torch 2.13."""

import numpy as np
import pytest

import gt
from gt import nn
from helpers import torch_or_skip

torch = torch_or_skip()


def _leaves(root):
    """The leaves reached from ``root`` through ``next_functions`` (by id), as torchviz walks."""
    seen, found, stack = set(), {}, [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if hasattr(node, "variable"):
            found[id(node.variable)] = node.variable
        stack.extend(n for n, _ in node.next_functions)
    return found


def _mlp(m):
    m.manual_seed(0)
    return m.nn.Sequential(m.nn.Linear(3, 4), m.nn.Tanh(), m.nn.Linear(4, 2))


@pytest.mark.parametrize("frozen", [False, True])
def test_walking_next_functions_reaches_the_parameters_as_in_torch(frozen):
    found = {}
    for m in (torch, gt):
        model = _mlp(m)
        if frozen:
            model[0].weight.requires_grad_(False)
        x = m.ones(5, 3)
        loss = model(x).pow(2).mean()
        names = [n for n, p in model.named_parameters() if id(p) in _leaves(loss.grad_fn)]
        found[m.__name__] = names
    assert found["gt"] == found["torch"]
    assert ("0.weight" in found["gt"]) is not frozen and "2.bias" in found["gt"]


def test_node_names_edges_and_accumulate_grad():
    for m in (torch, gt):
        x, c = m.ones(2, requires_grad=True), m.ones(2)
        y = (x * c).exp()
        node = y.grad_fn
        assert node.name() == "ExpBackward0"
        (mul, _), = node.next_functions
        assert mul.name() == "MulBackward0"
        (acc, zero), (none, _) = mul.next_functions
        assert acc.name() == "torch::autograd::AccumulateGrad" and acc.variable is x and zero == 0
        assert none is None and acc.next_functions == ()
        # one AccumulateGrad per leaf while a graph refers to it
        assert (x + 1).grad_fn.next_functions[0][0] is acc
        node.metadata["tag"] = 7
        assert y.grad_fn.metadata == {"tag": 7}
    assert gt.ones(2, requires_grad=True).mul(2).grad_fn.name == "Mul"     # the public gt's spelling


def test_custom_function_nodes_list_their_tensor_inputs():
    results = {}
    for m in (torch, gt):
        class Scale(m.autograd.Function):
            @staticmethod
            def forward(ctx, a, k, b):
                return a * k + b

            @staticmethod
            def backward(ctx, g):
                return g * 3, None, g

        x, c = m.ones(2, requires_grad=True), m.ones(2)
        out = Scale.apply(x, 3, c)
        edges = out.grad_fn.next_functions
        results[m.__name__] = (out.grad_fn.name(), [None if n is None else n.name() for n, _ in edges])
        assert edges[0][0].variable is x
    assert results["gt"] == results["torch"] == ("ScaleBackward", ["torch::autograd::AccumulateGrad", None])


def test_next_functions_after_backward_frees_the_graph():
    x = gt.ones(3, requires_grad=True)
    y = (x * 2).sum()
    assert len(y.grad_fn.next_functions) == 1
    y.backward()
    assert y.grad_fn.next_functions == ()          # gt frees the edges with the graph
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    z = (x * 2).sum()
    z.backward(retain_graph=True)
    assert z.grad_fn.next_functions[0][0].name() == "MulBackward0"
    assert isinstance(nn.Linear(2, 2)(gt.ones(1, 2)).grad_fn.next_functions, tuple)
