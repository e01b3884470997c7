"""nn.DataParallel and gt.nn.parallel (gt/nn/parallel.py) beside torch's: the wrapped module's
values and gradients, torch's state dict keys, torch's CPU behaviour (no device ids), the import
paths of torch.nn.parallel, and the errors."""

import numpy as np
import pytest

import gt
from helpers import torch_or_skip


def test_data_parallel_is_its_module_with_torch_s_interface():
    torch = torch_or_skip()
    gt.manual_seed(0)
    inner = gt.nn.Sequential(gt.nn.Linear(4, 8), gt.nn.ReLU(), gt.nn.Linear(8, 2))
    wrapped = gt.nn.DataParallel(inner)
    tmodel = torch.nn.DataParallel(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)))
    assert list(wrapped.state_dict()) == list(tmodel.state_dict())
    tmodel.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in wrapped.state_dict().items()})
    assert wrapped.module is inner and wrapped.device_ids == list(range(gt.cuda.device_count()))
    assert tmodel.device_ids == list(range(torch.cuda.device_count()))   # a GPU each, as torch's
    x = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    out, tout = wrapped(gt.tensor(x)), tmodel(torch.tensor(x))
    # with one GPU torch's DataParallel moves its module there: its answers are read back with cpu()
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().cpu().numpy(), rtol=1e-6, atol=1e-6)
    out.sum().backward()
    tout.sum().backward()
    for (name, p), tp in zip(wrapped.named_parameters(), tmodel.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.cpu().numpy(), rtol=1e-6, atol=1e-6, err_msg=name)
    # a checkpoint of the wrapper loads into a wrapper, its module's into the module (as torch's)
    again = gt.nn.DataParallel(gt.nn.Sequential(gt.nn.Linear(4, 8), gt.nn.ReLU(), gt.nn.Linear(8, 2)))
    again.load_state_dict(wrapped.state_dict())
    np.testing.assert_array_equal(again(gt.tensor(x)).detach().numpy(), out.detach().numpy())


def test_torch_nn_parallel_import_paths():
    from gt.nn.parallel import DataParallel, DistributedDataParallel

    assert DataParallel is gt.nn.DataParallel and DistributedDataParallel is gt.distributed.DistributedDataParallel


@pytest.mark.parametrize("call, error, match", [
    (lambda: gt.nn.DataParallel(lambda x: x), TypeError, "wraps a gt.nn.Module"),
    (lambda: gt.nn.DataParallel(gt.nn.Linear(2, 2), dim=1), ValueError, "dim=0"),
])
def test_data_parallel_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
