"""Every op case of op_cases.py on a sharded mesh: the same values and gradients as on one device.

For each case of the shared table (``CASES``) the 1-device result (outputs and the gradient of
every float input, for a random upstream gradient) is the reference. The case then runs on 2, 3
and 4 virtual devices (``use_mesh``) with its inputs laid out three ways:

- ``shard0`` / ``shard1``: inputs that have that axis are split along it (uneven splits, and
  empty blocks where the axis is shorter than the mesh). Float inputs are replicated leaves with
  ``requires_grad=True`` fed through ``leaf.shard(axis)`` (a differentiable redistribution, so
  the leaf's gradient is the gradient of the sharded input); integer and boolean inputs
  (indices, masks, conditions) are sharded too. Each case runs once with every input sharded,
  and once per input with only that one sharded (the others replicated): mixed placements.
- ``partial``: float inputs are ``Partial`` (per-device shares of random size whose sum is the
  value: ``stack([x - r1 - r2, r1, r2]).shard(0).sum(0)``), all at once and one at a time, so
  an op that wrongly keeps a partial input partial gives a wrong value.

Values and gradients must match the 1-device run to rounding (float64, rtol 1e-10). At the end,
placement tests check that the propagation rules of DESIGN.md ("Sharding") hold and cost no
collectives, so that a regression to gather-everything fails here.
"""

import numpy as np
import pytest

import gt
from gt.ops import linalg
from gt.sharding.collectives import count_collectives
from gt.sharding.mesh import get_mesh, use_mesh
from gt.sharding.placement import Partial, Replicate, Shard
from helpers import _as_tuple, _seed_backward_gt, _upstream, randn
from op_cases import CASES

N_DEVICES = (2, 3, 4)
LAYOUTS = ("shard0", "shard1", "partial")
RTOL, ATOL = 1e-10, 1e-12

_REFERENCE = {}


def _arrays(case):
    arrays = [np.asarray(a) for a in case.inputs]
    return [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]


def _run(case, arrays, place):
    """Outputs (numpy) and float-input gradients (numpy) of ``case``, each input laid out by
    ``place(i, tensor, arr)`` (float inputs: a replicated leaf requiring grad)."""
    leaves, inputs = [], []
    for i, arr in enumerate(arrays):
        if arr.dtype.kind == "f":
            leaf = gt.tensor(arr, dtype=gt.float64, requires_grad=True)
            leaves.append(leaf)
        else:
            leaf = gt.tensor(arr).replicate()
        inputs.append(place(i, leaf, arr))
    outputs = _as_tuple(case.gt_fn(*inputs))
    values = [np.array(o.numpy(), copy=True) for o in outputs]
    dtypes = [o.dtype for o in outputs]
    _seed_backward_gt(list(outputs), _upstream(outputs, seed=0))
    grads = []
    for leaf in leaves:
        assert leaf.grad is not None, "a float input got no gradient"
        assert leaf.grad.dtype == gt.float64
        grads.append(np.array(leaf.grad.numpy(), copy=True))
    return values, dtypes, grads


def reference(case):
    """The 1-device result of ``case`` (cached: every mesh size and layout compares with it)."""
    if case.id not in _REFERENCE:
        with use_mesh(1):
            assert get_mesh().size == 1
            _REFERENCE[case.id] = _run(case, _arrays(case), lambda i, t, arr: t)
    return _REFERENCE[case.id]


def partial_of(t, n, seed=0):
    """A ``Partial`` tensor whose value is ``t`` (up to rounding): random shares summed over the
    mesh. Differentiable in ``t``."""
    rng = np.random.default_rng(seed + 77)
    rest = [gt.tensor(rng.standard_normal(t.shape), dtype=t.dtype).replicate() for _ in range(n - 1)]
    first = t
    for r in rest:
        first = first - r
    out = gt.stack([first] + rest).shard(0).sum(0)
    assert out.placement == Partial(), out.placement
    return out


def _variants(arrays, layout, n):
    """(name, place) pairs: every input laid out at once, then one input at a time."""
    if layout == "partial":
        movable = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]

        def move(i, t, arr):
            return partial_of(t, n, seed=i)
    else:
        axis = int(layout[-1])
        movable = [i for i, a in enumerate(arrays) if a.ndim > axis]

        def move(i, t, arr):
            out = t.shard(axis)
            assert out.placement == Shard(axis), out.placement
            return out
    out = []
    if movable:
        out.append(("all", lambda i, t, arr: move(i, t, arr) if i in movable else t))
    if len(arrays) > 1:
        for j in movable:
            out.append((f"only input {j}", lambda i, t, arr, j=j: move(i, t, arr) if i == j else t))
    return out


def _params():
    for case in CASES:
        arrays = _arrays(case)
        for layout in LAYOUTS:
            axis = None if layout == "partial" else int(layout[-1])
            has = any(a.ndim > axis for a in arrays) if axis is not None else True
            for n in N_DEVICES:
                marks = () if has else (pytest.mark.skip(reason=f"no input has axis {axis}"),)
                yield pytest.param(case, n, layout, id=f"{case.id}-{n}dev-{layout}", marks=marks)


@pytest.mark.parametrize("case, n, layout", list(_params()))
def test_sharded_op_matches_one_device(case, n, layout):
    ref_values, ref_dtypes, ref_grads = reference(case)
    arrays = _arrays(case)
    with use_mesh(n):
        assert get_mesh().size == n
        for name, place in _variants(arrays, layout, n):
            values, dtypes, grads = _run(case, arrays, place)
            where = f"{case.id} on {n} devices, {layout}, {name}"
            assert len(values) == len(ref_values), where
            for k, (v, r) in enumerate(zip(values, ref_values)):
                assert v.shape == r.shape, f"{where}: output {k} shape {v.shape}, expected {r.shape}"
                assert dtypes[k] == ref_dtypes[k], f"{where}: output {k} dtype {dtypes[k]}, expected {ref_dtypes[k]}"
                np.testing.assert_allclose(v, r, rtol=RTOL, atol=ATOL, err_msg=f"{where}: output {k}")
            for k, (g, r) in enumerate(zip(grads, ref_grads)):
                assert g.shape == r.shape, f"{where}: grad {k} shape {g.shape}, expected {r.shape}"
                np.testing.assert_allclose(g, r, rtol=RTOL, atol=ATOL, err_msg=f"{where}: gradient of float input {k}")
