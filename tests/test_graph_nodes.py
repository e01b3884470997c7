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


def test_next_functions_after_backward_keeps_the_edges():
    x = gt.ones(3, requires_grad=True)
    y = (x * 2).sum()
    assert len(y.grad_fn.next_functions) == 1
    y.backward()
    # torch keeps the edges of a freed graph (only the saved values go)
    assert [n.name() for n, _ in y.grad_fn.next_functions] == ["MulBackward0"]
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    z = (x * 2).sum()
    z.backward(retain_graph=True)
    assert z.grad_fn.next_functions[0][0].name() == "MulBackward0"
    assert isinstance(nn.Linear(2, 2)(gt.ones(1, 2)).grad_fn.next_functions, tuple)


def _hooked_run(lib, create_graph):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    w = lib.tensor([3.0, 4.0], requires_grad=True)
    y = x * w
    seen = []

    def pre(grad_outputs):
        seen.append(("pre", [g.tolist() for g in grad_outputs]))
        return (grad_outputs[0] * 10,)

    def post(grad_inputs, grad_outputs):
        seen.append(("post", [None if g is None else g.tolist() for g in grad_inputs], [g.tolist() for g in grad_outputs]))
        return (grad_inputs[0], None)           # w gets nothing from this node

    handles = [y.grad_fn.register_prehook(pre), y.grad_fn.register_hook(post)]
    (y * y.detach()).sum().backward(create_graph=create_graph)
    got = (seen, x.grad.tolist(), None if w.grad is None else w.grad.tolist())
    for h in handles:
        h.remove()
    x.grad = None
    (x * w).sum().backward()
    return got, x.grad.tolist()


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")   # torch's advice
@pytest.mark.parametrize("create_graph", [False, True])
def test_node_hooks_see_and_replace_gradients_as_torch_s(create_graph):
    """``grad_fn.register_prehook`` and ``register_hook``: what they receive, their replacements
    (None for an input drops its gradient), ``remove()``; on the plain walk and the recorded one."""
    ours, theirs = _hooked_run(gt, create_graph), _hooked_run(torch, create_graph)
    assert ours == theirs
    assert ours[0][0] == [("pre", [[3.0, 8.0]]), ("post", [[90.0, 320.0], [30.0, 160.0]], [[30.0, 80.0]])]
    with pytest.raises(TypeError, match="expects a callable"):
        (gt.ones(1, requires_grad=True) * 2).grad_fn.register_hook(3)


_NAMED = {   # one gt op standing for several of torch's, each named as torch's node (on the mesh too)
    "t": lambda x: x.t(), "transpose": lambda x: x.transpose(0, 1), "mT": lambda x: x.mT,
    "unsqueeze": lambda x: x.unsqueeze(0), "squeeze": lambda x: x.unsqueeze(1).squeeze(1),
    "squeeze()": lambda x: x.unsqueeze(1).squeeze(), "floor division": lambda x: x.div(2, rounding_mode="floor"),
    "expand": lambda x: x[:, :1].expand(4, 6),
}


@pytest.mark.parametrize("case", list(_NAMED))
def test_node_named_apart_as_torch_s_on_sharded_tensors_too(case):
    # on the mesh such a node is a sharded op's (gt/tensor/dispatch.py), which kept the op's own name
    x = np.arange(1.0, 25.0).reshape(4, 6) / 10
    got = _NAMED[case](gt.tensor(x).requires_grad_()).grad_fn
    assert got.name() == _NAMED[case](torch.tensor(x, requires_grad=True)).grad_fn.name()


_PIECES = {  # ops giving several views, each named as torch's op (gt slices or selects each piece)
    "chunk": lambda x: x.chunk(2), "chunk(3, 1)": lambda x: x.chunk(3, 1), "split": lambda x: x.split(3),
    "split(list)": lambda x: x.split([1, 3]), "split_with_sizes": lambda x: x.split_with_sizes([2, 2]),
    "unbind": lambda x: x.unbind(1), "unsafe_chunk": lambda x: x.unsafe_chunk(2),
    "unsafe_split_with_sizes": lambda x: x.unsafe_split_with_sizes([2, 2]), "tensor_split": lambda x: x.tensor_split(2),
    "empty chunk": lambda x: x[:0].chunk(2),
    "split_copy": lambda x: torch_or_gt(x).split_copy(x, 3), "unbind_copy": lambda x: torch_or_gt(x).unbind_copy(x),
    "split_with_sizes_copy": lambda x: torch_or_gt(x).split_with_sizes_copy(x, [1, 5], 1),
    "diagonal_copy, select_copy": lambda x: (torch_or_gt(x).diagonal_copy(x), torch_or_gt(x).select_copy(x, 0, 1)),
}


@pytest.mark.parametrize("case", list(_PIECES))
def test_pieces_named_as_torch_s_op(case):
    x = np.arange(1.0, 25.0).reshape(4, 6) / 10
    got = [p.grad_fn.name() for p in _PIECES[case](gt.tensor(x).requires_grad_())]
    assert got == [p.grad_fn.name() for p in _PIECES[case](torch.tensor(x, requires_grad=True))]


_RULED = {   # on the mesh a rule computes these from other ops, whose nodes named the result
    "mean(0)": lambda x: x.mean(0), "mean()": lambda x: x.mean(), "mean(1)": lambda x: x.mean(1),
    "diagonal": lambda x: x[:, :4].diagonal(), "diagonal(1)": lambda x: x.diagonal(1),
}


@pytest.mark.parametrize("case", list(_RULED))
def test_node_of_a_rule_s_result_named_as_the_op_s(case):
    x = np.arange(1.0, 25.0).reshape(4, 6) / 10
    got = _RULED[case](gt.tensor(x).requires_grad_()).grad_fn.name()
    assert got == _RULED[case](torch.tensor(x, requires_grad=True)).grad_fn.name()


def test_a_layout_change_s_node_names_itself_as_torch_s_dtensor():
    # a gathered input's layout change (gt/tensor/dispatch.py's Redistribute): its name was a str, not callable
    node = gt.tensor(np.ones((4, 6))).requires_grad_().replicate().grad_fn
    if node is None:
        pytest.skip("one device: nothing to lay out")
    assert node.name() == "RedistributeBackward"


_COMPOSED = {   # gt composes these of other ops, whose nodes named the result
    "var": lambda x: x.var(0), "var()": lambda x: x.var(), "trace": lambda x: x[:, :4].trace(),
    "flip": lambda x: x.flip(0), "fliplr": lambda x: x.fliplr(), "roll": lambda x: x.roll(1, 0),
    "roll(flat)": lambda x: x.roll(2), "repeat": lambda x: x.repeat(2, 1), "tile": lambda x: x.tile(2),
    "tril": lambda x: x.tril(), "triu": lambda x: x.triu(1), "prod(0)": lambda x: x.prod(0),
    "logsumexp": lambda x: x.logsumexp(0), "index_select": lambda x: x.index_select(1, torch_or_gt(x).tensor([0, 2])),
    "gather": lambda x: x.gather(1, torch_or_gt(x).zeros(4, 2, dtype=torch_or_gt(x).int64)),
    "diag(2-D)": lambda x: x.diag(), "diag(1-D)": lambda x: x[0].diag(1), "diag_embed": lambda x: x.diag_embed(),
    "max(dim)": lambda x: x.max(dim=1).values, "min(dim, keepdim)": lambda x: x.min(0, keepdim=True)[0],
    "take": lambda x: x.take(torch_or_gt(x).tensor([0, 5])), "masked_select": lambda x: x.masked_select(x > 1),
    "take_along_dim": lambda x: torch_or_gt(x).take_along_dim(x, x[:, :1].argmax(1, keepdim=True), 1),
    "rot90": lambda x: x.rot90(), "rot90(k=0)": lambda x: x.rot90(0), "narrow_copy": lambda x: x.narrow_copy(0, 1, 2),
    "nansum": lambda x: x.nansum(0), "dot": lambda x: x[0].dot(x[1]), "dist": lambda x: x.dist(x * 2),
    "renorm": lambda x: x.renorm(2, 0, 1.0), "logcumsumexp": lambda x: x.logcumsumexp(0),
    "float16 var": lambda x: x.half().var(0), "float16 std": lambda x: x.half().std(),
}


def torch_or_gt(x):
    return torch if isinstance(x, torch.Tensor) else gt


@pytest.mark.parametrize("case", list(_COMPOSED))
def test_composed_op_s_node_named_as_torch_s(case):
    x = np.arange(1.0, 25.0).reshape(4, 6) / 10
    got = _COMPOSED[case](gt.tensor(x).requires_grad_()).grad_fn.name()
    assert got == _COMPOSED[case](torch.tensor(x, requires_grad=True)).grad_fn.name()


_ONE_NODE = {   # ops gt composes of others, named as torch's one node (each output of a several-output op)
    "median()": lambda x: x.median(), "median(0)": lambda x: x.median(0), "median(1, keepdim)": lambda x: x.median(1, True),
    "nanmedian()": lambda x: x.nanmedian(), "nanmedian(0)": lambda x: x.nanmedian(0), "mode": lambda x: x.mode(),
    "mode(0)": lambda x: x.mode(0), "kthvalue": lambda x: x.kthvalue(2), "kthvalue(2, 0)": lambda x: x.kthvalue(2, 0),
    "sort": lambda x: x.sort(), "sort(0, descending)": lambda x: x.sort(0, True), "msort": lambda x: x.msort(),
    "topk": lambda x: x.topk(2), "topk(2, 0)": lambda x: x.topk(2, 0),
    "cummax": lambda x: x.cummax(0), "cummin": lambda x: x.cummin(1), "aminmax": lambda x: x.aminmax(),
    "aminmax(dim)": lambda x: x.aminmax(dim=0), "var_mean": lambda x: torch_or_gt(x).var_mean(x, 0),
    "std_mean()": lambda x: torch_or_gt(x).std_mean(x), "nanmean": lambda x: x.nanmean(), "nanmean(0)": lambda x: x.nanmean(0),
    "addmm": lambda x: torch_or_gt(x).addmm(x[0], x[:, :4], x), "Tensor.addmm": lambda x: x[:, :2].addmm(x, x.t()[:, :2]),
    "bmm": lambda x: torch_or_gt(x).bmm(x.reshape(2, 2, 6), x.reshape(2, 6, 2)),
    "linalg.cross": lambda x: torch_or_gt(x).linalg.cross(x[:, :3], x[:, 3:]), "cross": lambda x: x[:, :3].cross(x[:, 3:], 1),
    "cdist": lambda x: torch_or_gt(x).cdist(x, x * 2), "cdist(p=1)": lambda x: torch_or_gt(x).cdist(x, x * 2, p=1.0),
    "unfold": lambda x: x.unfold(0, 2, 1), "unfold(1, 3, 2)": lambda x: x.unfold(1, 3, 2),
}


def _node_names(out):
    return [None if p.grad_fn is None else p.grad_fn.name() for p in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("case", list(_ONE_NODE))
def test_composed_op_s_outputs_named_as_torch_s_node(case):
    x = np.arange(1.0, 25.0).reshape(4, 6) / 10
    x[1, 2] = x[0, 0]                   # a tie
    got = _node_names(_ONE_NODE[case](gt.tensor(x).requires_grad_()))
    assert got == _node_names(_ONE_NODE[case](torch.tensor(x, requires_grad=True)))


_EQUATIONS = ["ij,jk->ik", "bij,bjk->bik", "ii->i", "i,i->", "ij->ji", "ij->j", "ii", "i,j->ij", "ij,ij->ij",
              "ij,j->i", "...ij,...jk->...ik", "ij,k->ik"]


@pytest.mark.parametrize("equation", _EQUATIONS)
def test_einsum_named_as_the_op_torch_s_einsum_ends_in(equation):
    # torch's einsum records the ops it decomposes into: a view of its bmm, a mul, a sum or a permute
    sizes = {"i": 4, "j": 4, "k": 6, "b": 2, ".": 2}
    terms = equation.split("->")[0].replace("...", ".").split(",")
    arrays = [np.arange(1.0, 1 + np.prod([sizes[c] for c in t])).reshape([sizes[c] for c in t]) / 10 for t in terms]
    got = gt.einsum(equation, *[gt.tensor(a).requires_grad_() for a in arrays]).grad_fn.name()
    assert got == torch.einsum(equation, *[torch.tensor(a, requires_grad=True) for a in arrays]).grad_fn.name()


_COPIES = {   # torch's *_copy functions: the view's node name with "_copy"
    "expand_copy": lambda m, x: m.expand_copy(x[:, :1], (4, 6)), "permute_copy": lambda m, x: m.permute_copy(x, (1, 0)),
    "t_copy": lambda m, x: m.t_copy(x), "transpose_copy": lambda m, x: m.transpose_copy(x, 0, 1),
    "view_copy": lambda m, x: m.view_copy(x, (6, 4)), "squeeze_copy": lambda m, x: m.squeeze_copy(x[:1]),
    "squeeze_copy(0)": lambda m, x: m.squeeze_copy(x[:1], 0), "squeeze_copy((0,))": lambda m, x: m.squeeze_copy(x[:1], (0,)),
    "unsqueeze_copy": lambda m, x: m.unsqueeze_copy(x, 0), "alias_copy": lambda m, x: m.alias_copy(x),
    "slice_copy": lambda m, x: m.slice_copy(x, 0, 1, 3), "unfold_copy": lambda m, x: m.unfold_copy(x, 0, 2, 1),
    "as_strided_copy": lambda m, x: m.as_strided_copy(x, (2, 2), (1, 2)),
    "view_as_real_copy": lambda m, x: m.view_as_real_copy(x.to(m.complex128)),
}


@pytest.mark.parametrize("case", list(_COPIES))
def test_copy_function_named_as_torch_s(case):
    x = np.arange(1.0, 25.0).reshape(4, 6) / 10
    got = _COPIES[case](gt, gt.tensor(x).requires_grad_()).grad_fn.name()
    assert got == _COPIES[case](torch, torch.tensor(x, requires_grad=True)).grad_fn.name()
