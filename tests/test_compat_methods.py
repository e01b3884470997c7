"""Tensor methods a PyTorch program reads about dense real tensors (gt/tensor/compat_methods.py),
the fused products' in-place forms and Tensor.cov/corrcoef, beside torch's answers."""

import math

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

A = np.array([[1.0, -2.0, 0.5], [3.0, -4.0, 2.0]])


def test_flags_layout_and_complex_views_of_a_real_tensor_are_torch_s():
    torch = torch_or_skip()
    for m in (torch, gt):
        x = m.tensor(A)
        assert x.layout == m.strided and x.layout == torch.strided and repr(x.layout) == "torch.strided"
        assert not (x.is_sparse or x.is_quantized or x.is_meta or x.is_nested or x.is_mkldnn or x.is_mps or x.is_xpu)
        assert not (x.is_pinned() or x.is_shared() or x.is_conj() or x.is_neg())
        assert x.conj() is x and x.resolve_conj() is x and x.resolve_neg() is x and x.real is x
        with pytest.raises(RuntimeError, match="imag is not implemented for tensors with non-complex dtypes"):
            x.imag


def test_angle_new_hardshrink_prelu_cov_corrcoef_are_torch_s():
    torch = torch_or_skip()
    got = []
    for m in (torch, gt):
        x = m.tensor(A)
        v = m.tensor([-1.0, 0.0, 2.0, math.nan])
        weight = m.tensor([0.25, 0.5], dtype=m.float64)
        got.append([
            v.angle().tolist(), m.tensor([-3, 4]).angle().tolist(), str(x.new([1, 2]).dtype).split(".")[-1],
            tuple(x.new(2, 3).shape), tuple(x.new().shape), x.hardshrink(1.5).tolist(),
            x.T.prelu(m.tensor([0.1], dtype=m.float64)).tolist(), x.T.reshape(3, 2, 1).prelu(weight).tolist(),
            np.round(x.cov().numpy(), 12).tolist(), np.round(x.cov(correction=0).numpy(), 12).tolist(),
            np.round(x.corrcoef().numpy(), 12).tolist()])
    np.testing.assert_equal(got[1], got[0])


@pytest.mark.parametrize("name", ["addmm_", "addmv_", "addr_", "baddbmm_", "addbmm_"])
def test_fused_products_in_place_are_torch_s(name):
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    shapes = {"addmm_": ((2, 4), (2, 3), (3, 4)), "addmv_": ((2,), (2, 3), (3,)), "addr_": ((2, 3), (2,), (3,)),
              "baddbmm_": ((2, 2, 4), (2, 2, 3), (2, 3, 4)), "addbmm_": ((2, 4), (2, 2, 3), (2, 3, 4))}[name]
    arrays = [rng.normal(size=s) for s in shapes]
    results = []
    for m in (torch, gt):
        base = m.tensor(arrays[0], requires_grad=True)
        target = base * 1.0
        others = [m.tensor(a, requires_grad=True) for a in arrays[1:]]
        out = getattr(target, name)(*others, beta=0.5, alpha=2.0)
        assert out is target
        out.sum().backward()
        results.append([out.detach().numpy(), base.grad.numpy()] + [o.grad.numpy() for o in others])
    for g, t in zip(results[1], results[0]):
        np.testing.assert_allclose(g, t, rtol=1e-12)


@pytest.mark.first_pass      # one device: a tensor sharded over a mesh has no one address (refused by name)
def test_data_ptr_tells_shared_memory():
    x = gt.zeros(4)
    assert x.data_ptr() == x[0:2].data_ptr() and x.data_ptr() != x.clone().data_ptr()
    assert x[1:].data_ptr() - x.data_ptr() == x.element_size()


def test_pin_memory_is_torch_s_error_without_an_accelerator():
    torch = torch_or_skip()
    if torch.cuda.is_available():
        pytest.skip("a machine with CUDA")
    for m in (torch, gt):
        with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available"):
            m.zeros(2).pin_memory()


def test_randint_high_size_form_and_load_state_dict_assign():
    torch = torch_or_skip()
    draws = gt.randint(3, (50,))
    assert draws.shape == tuple(torch.randint(3, (50,)).shape) and 0 <= draws.min().item() and draws.max().item() < 3
    m = gt.nn.Linear(2, 2)
    assert m.load_state_dict(m.state_dict(), assign=False) is not None
    w = gt.ones(2, 2, dtype=gt.float64)       # assign=True: torch's (tests/test_module_api_parity.py)
    m.load_state_dict({"weight": w, "bias": gt.zeros(2)}, assign=True)
    assert m.weight.dtype == gt.float64 and isinstance(m.weight, gt.nn.Parameter)
