"""torch.nn.utils' smaller helpers in gt (gt/nn/utils_extra.py, gt/nn/rnn_utils.py) beside torch:
get_total_norm, clip_grads_with_norm_, clip_grad_value_, BatchNorm fusion into conv and linear
layers, skip_init, rnn.pad_sequence and rnn.unpad_sequence: values, dtypes, gradients, in-place
effects and errors."""

import math

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn.utils.rnn import pad_sequence, unpad_sequence
from helpers import compare_with_torch, randn, torch_or_skip

DTYPES = ["float32", "float64"]
SHAPES = [(2, 3), (0,), (), (4,)]


def both(torch, arrays, dtype):
    return ([gt.tensor(a, dtype=getattr(gt, dtype)) for a in arrays],
            [torch.tensor(a, dtype=getattr(torch, dtype)) for a in arrays])


def close(ours, theirs, dtype, exact=False):
    want = theirs.detach().numpy()
    got = ours.detach().numpy()
    assert got.dtype == want.dtype and got.shape == want.shape
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        # float32 sums (a convolution's weight gradient) round to the tensor's scale, not each element's:
        # a small element beside large ones differs by more than rtol when the two libraries sum
        # in another order (torch on one thread or two)
        atol = 1e-6 * float(np.abs(want).max(initial=1.0)) if dtype == "float32" else 1e-7
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12, atol=atol)


# ---- get_total_norm, clip_grads_with_norm_, clip_grad_value_ -------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, -math.inf, 0, -2.0])
def test_get_total_norm_matches_torch(norm_type, dtype):
    torch = torch_or_skip()
    arrays = [randn(2, 3, seed=1), np.array([0.0, -3.0]), randn(seed=2)]
    if norm_type > 0 and norm_type != math.inf:
        arrays.append(np.zeros(0))              # an empty tensor has norm 0 (inf and negative orders: errors)
    ours, theirs = both(torch, arrays, dtype)
    close(gt.nn.utils.get_total_norm(ours, norm_type), torch.nn.utils.get_total_norm(theirs, norm_type), dtype)
    close(gt.nn.utils.get_total_norm(ours[0], norm_type), torch.nn.utils.get_total_norm(theirs[0], norm_type), dtype)


def test_get_total_norm_edge_cases_and_errors():
    torch = torch_or_skip()
    empty = gt.nn.utils.get_total_norm([])
    assert empty.dtype == gt.float32 and empty.shape == () and empty.item() == 0.0
    mixed = gt.nn.utils.get_total_norm([gt.ones(2), gt.ones(2, dtype=gt.float64)])
    assert mixed.dtype == torch.nn.utils.get_total_norm([torch.ones(2), torch.ones(2, dtype=torch.float64)]).dtype \
        == torch.float64 and mixed.dtype == gt.float64
    w = gt.ones(3, requires_grad=True)
    assert not gt.nn.utils.get_total_norm([w * 2]).requires_grad
    nan = [gt.tensor([1.0, math.nan])]
    assert math.isnan(gt.nn.utils.get_total_norm(nan).item())
    with pytest.raises(RuntimeError, match="total norm of order 2.0 .* is non-finite, so it cannot be clipped"):
        gt.nn.utils.get_total_norm(nan, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="cannot compute the inf norm of an empty tensor"):
        gt.nn.utils.get_total_norm([gt.zeros(0)], math.inf)
    with pytest.raises(TypeError, match="expected floating point tensors, got one of dtype .*int64"):
        gt.nn.utils.get_total_norm([gt.tensor([1, 2])])
    with pytest.raises(TypeError, match="expected a gt.Tensor or an iterable of them, got an element of type list"):
        gt.nn.utils.get_total_norm([[1.0]])


def params_with_grads(fw, dtype, scale):
    grads = [randn(3, 2, seed=3, scale=scale), randn(4, seed=4, scale=scale)]
    params = [fw.zeros(g.shape, dtype=getattr(fw, dtype), requires_grad=True) for g in grads] + \
             [fw.zeros(2, dtype=getattr(fw, dtype), requires_grad=True)]          # no grad: skipped
    for p, g in zip(params, grads):
        p.grad = fw.tensor(g, dtype=getattr(fw, dtype))
    return params


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [5.0, 0.01], ids=["clipped", "unchanged"])
def test_clip_grads_with_norm_matches_torch(scale, dtype):
    torch = torch_or_skip()
    ours, theirs = params_with_grads(gt, dtype, scale), params_with_grads(torch, dtype, scale)
    total = gt.nn.utils.get_total_norm([p.grad for p in ours if p.grad is not None])
    ttotal = torch.nn.utils.get_total_norm([p.grad for p in theirs if p.grad is not None])
    grad0 = ours[0].grad
    assert gt.nn.utils.clip_grads_with_norm_(ours, 1.5, total) is None
    torch.nn.utils.clip_grads_with_norm_(theirs, 1.5, ttotal)
    assert ours[0].grad is grad0 and ours[2].grad is None                # in place
    for p, t in zip(ours[:2], theirs[:2]):
        close(p.grad, t.grad, dtype)
    gt.nn.utils.clip_grads_with_norm_(ours[0], 0.5, float(total.item()))   # a single tensor, a float norm
    torch.nn.utils.clip_grads_with_norm_(theirs[0], 0.5, ttotal)
    close(ours[0].grad, theirs[0].grad, dtype)
    gt.nn.utils.clip_grads_with_norm_([gt.zeros(2, requires_grad=True)], 1.0, total)   # no grads: nothing


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_value_matches_torch(dtype):
    torch = torch_or_skip()
    ours, theirs = params_with_grads(gt, dtype, 2.0), params_with_grads(torch, dtype, 2.0)
    gt.nn.utils.clip_grad_value_(ours, 1)
    torch.nn.utils.clip_grad_value_(theirs, 1)
    for p, t in zip(ours[:2], theirs[:2]):
        close(p.grad, t.grad, dtype, exact=True)


# ---- fusion -------------------------------------------------------------------------------------
def bn_stats(torch, bn, seed):
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        bn.running_mean.copy_(torch.from_numpy(rng.standard_normal(bn.num_features)))
        bn.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, bn.num_features)))
        if bn.weight is not None:
            bn.weight.copy_(torch.from_numpy(rng.standard_normal(bn.num_features)))
            bn.bias.copy_(torch.from_numpy(rng.standard_normal(bn.num_features)))
    return bn.eval()


def mirror(torch, layer, gt_cls, *args, **kwargs):
    ours = gt_cls(*args, **kwargs)
    ours.load_state_dict(layer.state_dict())
    return ours.eval()


def fused_pair(torch, kind, dtype):
    """(gt fused, torch fused, input array) for a conv, transposed conv or linear with a BatchNorm."""
    torch.manual_seed(0)
    if kind == "linear":
        layer, bn, args = torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), (3, 4)
        ours_layer, x = mirror(torch, layer, nn.Linear, *args), randn(5, 3, seed=7)
    elif kind == "linear_bn1":
        layer, bn = torch.nn.Linear(3, 4, bias=False), torch.nn.BatchNorm1d(1)
        ours_layer, x = mirror(torch, layer, nn.Linear, 3, 4, bias=False), randn(5, 1, 3, seed=7)
    elif kind == "convT":
        # (torch's fusion of a grouped transposed conv fails: its weight is (C_in, C_out/g, *k))
        layer, bn = torch.nn.ConvTranspose2d(2, 4, 3), torch.nn.BatchNorm2d(4)
        ours_layer, x = mirror(torch, layer, nn.ConvTranspose2d, 2, 4, 3), randn(2, 2, 4, 4, seed=7)
    else:
        layer, bn = torch.nn.Conv2d(2, 4, 3, bias=kind == "conv"), torch.nn.BatchNorm2d(4, affine=kind == "conv")
        ours_layer = mirror(torch, layer, nn.Conv2d, 2, 4, 3, bias=kind == "conv")
        x = randn(2, 2, 5, 5, seed=7)
    bn = bn_stats(torch, bn, 8)
    ours_bn = mirror(torch, bn, getattr(nn, type(bn).__name__), bn.num_features, affine=bn.affine)
    layer = layer.eval()
    if dtype == "float64":
        layer, bn, ours_layer, ours_bn = layer.double(), bn.double(), ours_layer.double(), ours_bn.double()
    if kind.startswith("linear"):
        return (gt.nn.utils.fuse_linear_bn_eval(ours_layer, ours_bn),
                torch.nn.utils.fuse_linear_bn_eval(layer, bn), x, ours_layer)
    transpose = kind == "convT"
    return (gt.nn.utils.fuse_conv_bn_eval(ours_layer, ours_bn, transpose=transpose),
            torch.nn.utils.fuse_conv_bn_eval(layer, bn, transpose=transpose), x, ours_layer)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["conv", "conv_no_bias_no_affine", "convT", "linear", "linear_bn1"])
def test_fuse_bn_eval_matches_torch(kind, dtype):
    torch = torch_or_skip()
    ours, theirs, x, original = fused_pair(torch, kind, dtype)
    assert type(ours) is type(original) and ours is not original
    for name, param in theirs.named_parameters():
        mine = getattr(ours, name)
        assert isinstance(mine, nn.Parameter) and mine.requires_grad == param.requires_grad
        close(mine, param, dtype)
    compare_with_torch(lambda a: ours(a), lambda a: theirs(a), x, dtype=dtype)   # output, input gradient
    close(ours.weight.grad, theirs.weight.grad, dtype)      # the same upstream gradient reached both weights
    if theirs.bias.requires_grad:               # a layer without bias gets a fused bias that needs none, as torch's
        close(ours.bias.grad, theirs.bias.grad, dtype)
    assert (ours.bias.grad is None) == (theirs.bias.grad is None)
    assert original.weight.grad is None                     # the fused layer is a new module


def test_fuse_errors():
    conv, bn = nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        gt.nn.utils.fuse_conv_bn_eval(conv, bn.eval())
    with pytest.raises(AssertionError, match="bn.running_mean and bn.running_var must not be None"):
        gt.nn.utils.fuse_conv_bn_eval(conv.eval(), nn.BatchNorm2d(4, track_running_stats=False).eval())
    with pytest.raises(AssertionError, match="linear.out_features=4 and bn.num_features=3"):
        gt.nn.utils.fuse_linear_bn_eval(nn.Linear(2, 4).eval(), nn.BatchNorm1d(3).eval())


# ---- skip_init ----------------------------------------------------------------------------------
def test_skip_init_builds_the_module_and_leaves_the_generator_alone():
    gt.manual_seed(3)
    expected = gt.randn(4).tolist()
    gt.manual_seed(3)
    lin = gt.nn.utils.skip_init(nn.Linear, 5, out_features=2, bias=False)
    assert isinstance(lin, nn.Linear) and lin.weight.shape == (2, 5) and lin.bias is None
    assert gt.randn(4).tolist() == expected
    assert gt.nn.utils.skip_init(nn.Linear, 2, 1, device="cpu").weight.requires_grad
    with pytest.raises(RuntimeError, match="Expected a Module; got <class 'int'>"):
        gt.nn.utils.skip_init(int, 3)
    with pytest.raises(NotImplementedError, match="device='cuda:1'"):
        gt.nn.utils.skip_init(nn.Linear, 2, 1, device="cuda:1")


# ---- rnn.pad_sequence, rnn.unpad_sequence --------------------------------------------------------
PAD_CASES = [dict(), dict(batch_first=True), dict(padding_value=-1.5, padding_side="left"),
             dict(batch_first=True, padding_side="left", padding_value=2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", PAD_CASES, ids=str)
@pytest.mark.parametrize("trailing", [(), (2,)], ids=["1d", "2d"])
def test_pad_sequence_matches_torch(trailing, kwargs, dtype):
    torch = torch_or_skip()
    arrays = [randn(2, *trailing, seed=1), randn(4, *trailing, seed=2), randn(0, *trailing, seed=3)]
    compare_with_torch(lambda *s: pad_sequence(list(s), **kwargs),
                       lambda *s: torch.nn.utils.rnn.pad_sequence(list(s), **kwargs), *arrays, dtype=dtype)


def test_pad_sequence_dtypes_and_tensor_input():
    torch = torch_or_skip()
    seqs = [np.array([1.5, 2.5]), np.array([3, 4, 5])]
    for first, second in [("float32", "float64"), ("int64", "float32"), ("float64", "int32")]:
        ours = pad_sequence([gt.tensor(a, dtype=getattr(gt, d)) for a, d in zip(seqs, (first, second))],
                            padding_value=0.7)
        theirs = torch.nn.utils.rnn.pad_sequence([torch.tensor(a, dtype=getattr(torch, d))
                                                  for a, d in zip(seqs, (first, second))], padding_value=0.7)
        close(ours, theirs, "float32", exact=True)
    block = randn(3, 2, 4, seed=5)
    close(pad_sequence(gt.tensor(block)), torch.nn.utils.rnn.pad_sequence(torch.tensor(block)), "float64", exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_unpad_sequence_matches_torch(batch_first, dtype):
    torch = torch_or_skip()
    padded = randn(4, 3, 2, seed=6) if not batch_first else randn(3, 4, 2, seed=6)
    lengths = [4, 1, 0]

    def theirs(p):
        return torch.nn.utils.rnn.unpad_sequence(p.clone(), torch.tensor(lengths), batch_first=batch_first)
    compare_with_torch(lambda p: unpad_sequence(p, gt.tensor(lengths), batch_first=batch_first), theirs, padded,
                       dtype=dtype)
    x = gt.tensor(padded)
    out = unpad_sequence(x, lengths, batch_first=batch_first)          # a list of ints too
    assert [o.shape[0] for o in out] == lengths and x.shape == padded.shape   # the input is left as it was
    expected = (padded if batch_first else padded.transpose(1, 0, 2))[:2].copy()     # (B, T, 2)
    expected[1, 1:] = 0.0                                                            # past length 1
    again = pad_sequence(out[:2], batch_first=True)
    np.testing.assert_array_equal(again.numpy(), expected)


def test_rnn_padding_errors():
    with pytest.raises(RuntimeError, match="received an empty list of sequences"):
        pad_sequence([])
    with pytest.raises(RuntimeError, match=r"trailing shape of the first, \(3,\), but sequence 1 has shape \(3, 4\)"):
        pad_sequence([gt.ones(2, 3), gt.ones(3, 4)])
    with pytest.raises(RuntimeError, match="Expected padding_side to be one of left or right, but got 'mid'"):
        pad_sequence([gt.ones(2)], padding_side="mid")
    with pytest.raises(RuntimeError, match="sequence 0 is 0-d"):
        pad_sequence([gt.tensor(1.0)])
    with pytest.raises(TypeError, match="expected a list of gt.Tensor, got list at index 1"):
        pad_sequence([gt.ones(2), [1.0]])
    with pytest.raises(ValueError, match="got 3 lengths for a batch of 2 sequences"):
        unpad_sequence(gt.ones(4, 2), [1, 2, 3])
    with pytest.raises(ValueError, match="must be at least 2-D"):
        unpad_sequence(gt.ones(4), [1])
    with pytest.raises(TypeError, match="expected padded_sequences to be a gt.Tensor, got list"):
        unpad_sequence([[1.0]], [1])


def test_fusion_module_path_is_torchs():
    import gt.nn.utils.fusion as fusion
    from gt.nn.utils.fusion import fuse_linear_bn_weights  # noqa: F401  (torch's import line)

    for name in ("fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"):
        assert getattr(fusion, name) is getattr(gt.nn.utils, name)
