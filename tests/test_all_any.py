"""``Tensor.all()``/``any()`` over the whole tensor give a 0-d bool tensor, as torch's (not a
Python bool): ``.item()``, ``bool()``, ``if``, and the dim forms beside torch."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("values", [[1, 2, 3], [0, 1], [], [[True, False], [True, True]], [0.0, -0.0], [np.nan]])
@pytest.mark.parametrize("name", ["all", "any"])
def test_whole_tensor_all_any_are_0d_bool_tensors_as_torch(values, name):
    g = getattr(gt.tensor(values), name)()
    t = getattr(torch.tensor(values), name)()
    assert isinstance(g, gt.Tensor) and g.shape == () and g.dtype == gt.bool
    assert g.item() is t.item() and bool(g) is bool(t)
    assert (getattr(gt, name)(gt.tensor(values)).item()) is t.item()


@pytest.mark.parametrize("name", ["all", "any"])
def test_dim_forms_as_torch(name):
    x = np.array([[0, 1, 2], [3, 0, 0]])
    for kwargs in ({"dim": 0}, {"dim": 1, "keepdim": True}, {"dim": -1}):
        g = getattr(gt.tensor(x), name)(**kwargs)
        t = getattr(torch.tensor(x), name)(**kwargs)
        assert g.tolist() == t.tolist() and g.shape == tuple(t.shape)
