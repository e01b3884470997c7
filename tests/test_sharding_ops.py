"""Every op case of op_cases.py on a sharded mesh: the same values and gradients as on one device.

For each case of the shared table (``CASES``) the 1-device result (outputs and the gradient of
every float input, for a random upstream gradient) is the reference. The case then runs on 2, 3
and 4 virtual devices (``use_mesh``) with its inputs laid out as:

- ``shard0`` / ``shard1`` (and ``shard2`` for cases with a 3-d input): inputs that have that axis
  are split along it (uneven splits, and empty blocks where the axis is shorter than the mesh).
  Float inputs are replicated leaves with ``requires_grad=True`` fed through ``leaf.shard(axis)``
  (a differentiable redistribution, so the leaf's gradient is the gradient of the sharded
  input); integer and boolean inputs (indices, masks, conditions) are sharded too.
- ``partial``: float inputs are ``Partial`` (per-device shares of random size whose sum is the
  value: ``stack([x - r1 - r2, r1, r2]).shard(0).sum(0)``), so an op that wrongly keeps a
  partial input partial gives a wrong value.

Each layout runs with every input laid out at once; again with the laid-out tensors as leaves of
their own (their .grad takes their placement), backpropagated twice so gradients accumulate; and
once per input with only that input laid out (mixed placements). Values and gradients must match
the 1-device run to rounding (float64, rtol 1e-10). Then compositions the table does not reach
(mixed shard axes, uneven slices, an attention block), and placement tests: the propagation
rules of DESIGN.md ("Sharding") hold and run no collective, so that a regression to
gather-everything fails here.
"""

import numpy as np
import pytest

import gt
from gt.ops import attention, linalg
from gt.ops import shape as shape_ops
from gt.sharding.collectives import count_collectives
from gt.sharding.mesh import get_mesh, use_mesh
from gt.sharding.placement import Partial, Replicate, Shard
from helpers import _as_tuple, _upstream, randn
from op_cases import CASES

N_DEVICES = (2, 3, 4)
LAYOUTS = ("shard0", "shard1", "shard2", "partial")
RTOL, ATOL = 1e-10, 1e-12
# Casts round through float32, so the 1-device result itself is only float32-exact there: a
# Partial gradient cast down share by share (what every data-parallel engine does) differs
# from the cast of its sum by float32 rounding of the shares.
TOLERANCE = {"Cast": (1e-6, 1e-6)}

_REFERENCE = {}

pytestmark = pytest.mark.own_mesh   # every mesh chosen with use_mesh (tests/conftest.py)


def _assert_allclose(actual, desired, rtol, atol, err_msg):
    """np.testing.assert_allclose, with its own test first where both are float arrays of one
    shape and ``desired`` is finite: |actual - desired| <= atol + rtol * |desired| everywhere
    passes at once (assert_allclose would pass too), anything else (a NaN, an inf, a value off)
    goes to assert_allclose to decide and to say what is off. Its own took ~0.1 ms a call: some
    27,000 calls in this file."""
    if (actual.shape == desired.shape and actual.dtype.kind in "fc" and desired.dtype.kind in "fc"
            and np.isfinite(desired).all()      # an inf bound would pass any value
            and (np.abs(actual - desired) <= atol + rtol * np.abs(desired)).all()):
        return
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, err_msg=err_msg)


def _arrays(case):
    arrays = [np.asarray(a) for a in case.inputs]
    return [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]


def _backward(outputs, ups, retain_graph=False):
    """helpers._seed_backward_gt, with ``retain_graph`` (to backpropagate twice)."""
    if len(outputs) == 1:
        outputs[0].backward(gt.tensor(ups[0], dtype=outputs[0].dtype), retain_graph=retain_graph)
        return
    total = None
    for o, u in zip(outputs, ups):
        if o.requires_grad:
            term = (o * gt.tensor(u, dtype=o.dtype)).sum()
            total = term if total is None else total + term
    total.backward(retain_graph=retain_graph)


def _run(case, arrays, place, own_leaves=False, twice=False):
    """Outputs (numpy) and float-input gradients (numpy) of ``case``, each input laid out by
    ``place(i, tensor, arr)``. Float inputs are replicated leaves requiring grad, fed through
    ``place``; with ``own_leaves`` the laid-out tensor itself becomes the leaf (a sharded or
    partial leaf: its .grad takes its placement). ``twice``: backpropagate twice, so the
    gradients accumulate (and are halved before they are returned)."""
    leaves, inputs = [], []
    for i, arr in enumerate(arrays):
        if arr.dtype.kind == "f":
            leaf = gt.tensor(arr, dtype=gt.float64, requires_grad=not own_leaves)
            if own_leaves:
                leaf = place(i, leaf, arr).detach().requires_grad_(True)
                inputs.append(leaf)
            else:
                inputs.append(place(i, leaf, arr))
            leaves.append(leaf)
        else:
            inputs.append(place(i, gt.tensor(arr).replicate(), arr))
    outputs = _as_tuple(case.gt_fn(*inputs))
    values = [np.array(o.numpy(), copy=True) for o in outputs]
    dtypes = [o.dtype for o in outputs]
    ups = _upstream(outputs, seed=0)
    if twice:
        _backward(list(outputs), ups, retain_graph=True)
    _backward(list(outputs), ups)
    grads = []
    for leaf in leaves:
        assert leaf.grad is not None, "a float input got no gradient"
        assert leaf.grad.dtype == gt.float64
        assert leaf.grad.shape == leaf.shape
        if own_leaves:
            assert leaf.grad.placement == leaf.placement, (leaf.grad.placement, leaf.placement)
        grads.append(np.array(leaf.grad.numpy(), copy=True) / (2.0 if twice else 1.0))
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
    assert out.placement == (Partial() if n > 1 else Replicate()), out.placement
    return out


def _variants(arrays, layout, n):
    """(name, place, own_leaves, twice): every input laid out at once (through a replicated
    leaf, then as leaves of their own, backpropagated twice), then one input at a time."""
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
        def every(i, t, arr):
            return move(i, t, arr) if i in movable else t
        out.append(("all", every, False, False))
        out.append(("all, as leaves, backward twice", every, True, True))
    if len(arrays) > 1:
        for j in movable:
            out.append((f"only input {j}", lambda i, t, arr, j=j: move(i, t, arr) if i == j else t, False, False))
    return out


def _params():
    for case in CASES:
        arrays = _arrays(case)
        for layout in LAYOUTS:
            axis = None if layout == "partial" else int(layout[-1])
            has = any(a.ndim > axis for a in arrays) if axis is not None else True
            if layout == "shard2" and not has:
                continue  # axis 2 is an extra: only cases with a 3-d input get it
            for n in N_DEVICES:
                marks = () if has else (pytest.mark.skip(reason=f"no input has axis {axis}"),)
                yield pytest.param(case, n, layout, id=f"{case.id}-{n}dev-{layout}", marks=marks)


@pytest.mark.parametrize("case, n, layout", list(_params()))
def test_sharded_op_matches_one_device(case, n, layout):
    ref_values, ref_dtypes, ref_grads = reference(case)
    arrays = _arrays(case)
    rtol, atol = TOLERANCE.get(case.op, (RTOL, ATOL))
    with use_mesh(n):
        assert get_mesh().size == n
        for name, place, own_leaves, twice in _variants(arrays, layout, n):
            values, dtypes, grads = _run(case, arrays, place, own_leaves, twice)
            where = f"{case.id} on {n} devices, {layout}, {name}"
            assert len(values) == len(ref_values), where
            for k, (v, r) in enumerate(zip(values, ref_values)):
                assert v.shape == r.shape, f"{where}: output {k} shape {v.shape}, expected {r.shape}"
                assert dtypes[k] == ref_dtypes[k], f"{where}: output {k} dtype {dtypes[k]}, expected {ref_dtypes[k]}"
                _assert_allclose(v, r, rtol, atol, f"{where}: output {k}")
            for k, (g, r) in enumerate(zip(grads, ref_grads)):
                assert g.shape == r.shape, f"{where}: grad {k} shape {g.shape}, expected {r.shape}"
                _assert_allclose(g, r, rtol, atol, f"{where}: gradient of float input {k}")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sharded_float32_stays_float32(case):
    """float32 inputs sharded (axis 0, axis 1) or partial on 3 devices: float32 outputs and
    float32 gradients, as unsharded (no float64 share or block slips through the per-device
    backward)."""
    arrays = [np.asarray(a) for a in case.inputs]
    with use_mesh(3):
        for layout in LAYOUTS:
            place = _variants(arrays, layout, 3)
            if not place:
                continue
            leaves, inputs = [], []
            for i, a in enumerate(arrays):
                t = gt.tensor(a, dtype=gt.float32, requires_grad=True) if a.dtype.kind == "f" else gt.tensor(a)
                if a.dtype.kind == "f":
                    leaves.append(t)
                inputs.append(place[0][1](i, t, a))
            outputs = _as_tuple(case.gt_fn(*inputs))
            for o in outputs:
                # int64 outputs are positions (a sort's indices): their dtype is checked against
                # the 1-device run by test_sharded_op_matches_one_device
                if case.op != "Cast" and o.dtype != gt.int64:
                    assert o.dtype == gt.float32, f"{layout}: output dtype {o.dtype}"
            _backward(list(outputs), _upstream(outputs, seed=0))
            for leaf in leaves:
                assert leaf.grad is not None and leaf.grad.dtype == gt.float32, f"{layout}: grad {leaf.grad!r}"


# ---- compositions the table does not reach: mixed shard axes, a leaf used in several layouts ----
def _compare_chain(fn, arrays, place, n, rtol=RTOL, atol=ATOL):
    """``fn`` of tensors laid out by ``place(i, leaf)`` on ``n`` devices vs the plain 1-device run."""
    def run(layout):
        leaves = [gt.tensor(a, dtype=gt.float64, requires_grad=True) for a in arrays]
        out = fn(*[layout(i, t) for i, t in enumerate(leaves)])
        value = np.array(out.numpy(), copy=True)
        out.backward(gt.tensor(_upstream([out], seed=3)[0]))
        return value, [np.array(t.grad.numpy(), copy=True) for t in leaves]

    with use_mesh(1):
        ref_value, ref_grads = run(lambda i, t: t)
    with use_mesh(n):
        value, grads = run(lambda i, t: place(i, t, n))
    np.testing.assert_allclose(value, ref_value, rtol=rtol, atol=atol)
    for k, (g, r) in enumerate(zip(grads, ref_grads)):
        np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, err_msg=f"gradient of input {k}")


CHAINS = {
    # inputs sharded along different axes meet in one op
    "add_shard0_shard1": (lambda x, y: x + y, [(7, 5), (7, 5)], lambda i, t, n: t.shard(i)),
    "matmul_shard1_shard1": (lambda x, w: x @ w, [(7, 5), (5, 3)], lambda i, t, n: t.shard(1)),
    "matmul_shard0_shard0": (lambda x, w: x @ w, [(7, 5), (5, 3)], lambda i, t, n: t.shard(0)),
    "matmul_shard0_partial": (lambda x, w: x @ w, [(7, 5), (5, 3)],
                              lambda i, t, n: t.shard(0) if i == 0 else partial_of(t, n)),
    "partial_plus_shard": (lambda x, y: x + y * 2.0, [(7, 5), (7, 5)],
                           lambda i, t, n: partial_of(t, n) if i == 0 else t.shard(1)),
    "where_shard_cond": (lambda x, y: gt.where(x > y, x * y, y - x), [(7, 5), (7, 5)],
                         lambda i, t, n: t.shard(i)),
    # one leaf reaching the loss in every layout: its gradient sums Shard(0), Shard(1), Partial
    "leaf_in_every_layout": (lambda x: x.shard(0) * 2.0 + x.shard(1) * x + partial_of(x, get_mesh().size).exp(),
                             [(7, 5)], lambda i, t, n: t),
    # slices of different sizes (uneven blocks that do not line up) combined
    "uneven_slices": (lambda x: x[:5] * x[2:] + x[1:6].exp(), [(7, 4)], lambda i, t, n: t.shard(0)),
    "reshape_after_slice": (lambda x: x[1:].reshape(3, 2, 4).sum(1) @ x[:4].T, [(7, 4)], lambda i, t, n: t.shard(0)),
    # a small attention block on a batch sharded along axis 0
    "attention": (lambda x, wq, wk, wv, g, b: _attention(x, wq, wk, wv, g, b),
                  [(5, 3, 4), (4, 4), (4, 4), (4, 4), (4,), (4,)],
                  lambda i, t, n: t.shard(0) if i == 0 else t),
    "attention_seq_sharded": (lambda x, wq, wk, wv, g, b: _attention(x, wq, wk, wv, g, b),
                              [(2, 7, 4), (4, 4), (4, 4), (4, 4), (4,), (4,)],
                              lambda i, t, n: t.shard(1) if i == 0 else t),
}


def _attention(x, wq, wk, wv, g, b):
    h = linalg.LayerNorm.apply(x, g, b)
    q, k, v = h @ wq, h @ wk, linalg.Linear.apply(h, wv)
    att = (q @ k.transpose(-2, -1) * 0.5).softmax(-1)
    return (x + (att @ v).gelu()).mean(axis=1)


@pytest.mark.parametrize("n", N_DEVICES)
@pytest.mark.parametrize("name", list(CHAINS))
def test_composed_ops_match_one_device(name, n):
    fn, shapes, place = CHAINS[name]
    arrays = [randn(*s, seed=k) for k, s in enumerate(shapes)]
    _compare_chain(fn, arrays, place, n)


# ---- placements: the rules of DESIGN.md, without collectives --------------------------------
def _placed(fn, *args):
    """``fn(*args)`` and the collectives it ran."""
    with count_collectives() as c:
        out = fn(*args)
    return out, dict(c)


def _data(*shape, seed=0, axis=0):
    """Data sharded along ``axis`` (axis 0 is the default of gt.tensor; another axis is set up
    outside the counted region by the test)."""
    t = gt.tensor(randn(*shape, seed=seed))
    return t if axis == 0 else t.replicate().shard(axis)


def _param(*shape, seed=0):
    return gt.tensor(randn(*shape, seed=seed), requires_grad=True)  # parameters: Replicate


def _sum0(*shape, seed=0):
    """A Partial tensor: the sum of Shard(0) data over its sharded axis."""
    return _data(*shape, seed=seed).sum(0)


# name: (inputs (made before counting), op (counted), expected output placement)
PLACEMENT_CASES = {
    "default_data_is_shard0": (lambda: [_data(7, 5)], lambda x: x, Shard(0)),
    "default_param_is_replicate": (lambda: [_param(7, 5)], lambda x: x, Replicate()),
    # elementwise keeps the shard; inputs that broadcast along it are used whole
    "mul_add_same_shard": (lambda: [_data(7, 5), _data(7, 5, seed=1)], lambda x, y: x * y + 1.0, Shard(0)),
    "unary_chain": (lambda: [_data(7, 5)], lambda x: x.exp().relu().gelu().tanh().sigmoid().abs().sqrt().log(),
                    Shard(0)),
    "bias_broadcast": (lambda: [_data(7, 5), _param(5)], lambda x, b: x + b, Shard(0)),
    "column_broadcast": (lambda: [_data(7, 5), _param(7, 1)], lambda x, c: x * c, Shard(0)),
    "shard1_elementwise": (lambda: [_data(7, 5, axis=1), _param(5), _param(7, 5)], lambda x, b, y: x / b - y,
                           Shard(1)),
    "pow_maximum_clip": (lambda: [_data(7, 5), _param(5)],
                         lambda x, p: (x.abs() ** p).maximum(gt.tensor(0.1)).clip(-1.0, 1.0), Shard(0)),
    "where_sharded_condition": (lambda: [_data(7, 5), _data(7, 5, seed=1)], lambda x, y: gt.where(x > 0, y, 0.0),
                                Shard(0)),
    "masked_fill": (lambda: [_data(7, 5), _data(7, 5, seed=1)], lambda x, y: y.masked_fill(x > 0, -1.0), Shard(0)),
    "comparison": (lambda: [_data(7, 5), _param(5)], lambda x, b: (x > b) & (x < 1.0), Shard(0)),
    "cast": (lambda: [_data(7, 5)], lambda x: x.float(), Shard(0)),
    "softmax_other_axis": (lambda: [_data(7, 5)], lambda x: x.softmax(-1), Shard(0)),
    "log_softmax_other_axis": (lambda: [_data(4, 7, 5, axis=1)], lambda x: x.log_softmax(-1), Shard(1)),
    # matmul and the fused ops
    "matmul_shard0_by_replicate": (lambda: [_data(7, 5), _param(5, 3)], lambda x, w: x @ w, Shard(0)),
    "batched_matmul_shard0": (lambda: [_data(4, 7, 5), _param(5, 3)], lambda x, w: x @ w, Shard(0)),
    "batched_by_batched": (lambda: [_data(4, 7, 5), _data(4, 5, 3)], lambda x, y: x @ y, Shard(0)),
    "matmul_replicate_by_shard1": (lambda: [_param(7, 5), _data(5, 3, axis=1)], lambda x, w: x @ w, Shard(1)),
    "matmul_contract_sharded": (lambda: [_data(7, 5, axis=1), _data(5, 3)], lambda x, w: x @ w, Partial()),
    "linear": (lambda: [_data(4, 7, 5), _param(3, 5), _param(3)], lambda x, w, b: linalg.Linear.apply(x, w, b),
               Shard(0)),
    "layer_norm": (lambda: [_data(7, 5), _param(5), _param(5)], lambda x, w, b: linalg.LayerNorm.apply(x, w, b),
                   Shard(0)),
    "attention_replicated_context": (lambda: [_data(7, 3, 4), _param(7, 5, 4), _param(7, 5, 4, seed=1)],
                                     lambda q, k, v: attention.Attention.apply(q, k, v, num_heads=2, scale=0.5),
                                     Shard(0)),
    "attention_sharded_mask": (lambda: [_data(7, 3, 4), _data(7, 5, 4), _data(7, 5, 4, seed=1), _data(7, 1, 3, 5)],
                               lambda q, k, v, m: attention.Attention.apply(q, k, v, m, num_heads=2, scale=0.5),
                               Shard(0)),
    "sdpa_batch_broadcast_kv": (lambda: [_data(7, 2, 3, 4), _param(2, 5, 4), _param(5, 3), _param(3, 5)],
                                lambda q, k, v, m: attention.ScaledDotProductAttention.apply(q, k, v, m, causal=0),
                                Shard(0)),
    "sdpa_head_shard": (lambda: [_data(2, 7, 3, 4, axis=1), _data(2, 7, 5, 4, axis=1), _param(5, 3)],
                        lambda q, k, v: attention.ScaledDotProductAttention.apply(q, k, v), Shard(1)),
    "embedding_sharded_index": (lambda: [_param(10, 4), gt.tensor(np.arange(21).reshape(7, 3) % 10)],
                                # (F.embedding also checks the range: a few scalars gathered)
                                lambda w, i: shape_ops.Embedding.apply(w, i), Shard(0)),
    # reductions: over other axes keep the shard, over the sharded axis give Partial
    "sum_sharded_axis": (lambda: [_data(7, 5)], lambda x: x.sum(0), Partial()),
    "sum_all": (lambda: [_data(7, 5)], lambda x: x.sum(), Partial()),
    "mean_sharded_axis": (lambda: [_data(7, 5, 3)], lambda x: x.mean(axis=(0, 2)), Partial()),
    "sum_other_axis": (lambda: [_data(7, 5, 3)], lambda x: x.sum(1), Shard(0)),
    "sum_other_axes_keepdims": (lambda: [_data(7, 5, 3)], lambda x: x.sum((1, 2), keepdims=True), Shard(0)),
    "sum_before_shard_axis": (lambda: [_data(4, 7, 5, axis=1)], lambda x: x.sum(0), Shard(0)),
    "max_other_axis": (lambda: [_data(7, 5)], lambda x: x.max(-1), Shard(0)),
    "var_other_axis": (lambda: [_data(7, 5)], lambda x: x.var(1), Shard(0)),
    "argmax_other_axis": (lambda: [_data(7, 5)], lambda x: x.argmax(1), Shard(0)),
    # sorts and running sums along another axis keep the shard
    "sort_other_axis": (lambda: [_data(7, 5)], lambda x: x.sort(-1, descending=True).values, Shard(0)),
    "topk_indices_other_axis": (lambda: [_data(7, 5)], lambda x: x.topk(2).indices, Shard(0)),
    "argsort_before_shard_axis": (lambda: [_data(4, 7, 5, axis=1)], lambda x: x.argsort(0), Shard(1)),
    "cumsum_other_axis": (lambda: [_data(4, 7, 5, axis=1)], lambda x: x.cumsum(2), Shard(1)),
    # reshape, permute, expand, cat, stack, slicing follow the sharded axis
    "reshape_split_inner": (lambda: [_data(7, 6)], lambda x: x.reshape(7, 2, 3), Shard(0)),
    "flatten": (lambda: [_data(7, 2, 3)], lambda x: x.flatten(), Shard(0)),
    "flatten_inner": (lambda: [_data(7, 2, 3)], lambda x: x.flatten(1), Shard(0)),
    "unsqueeze_front": (lambda: [_data(7, 5)], lambda x: x.unsqueeze(0), Shard(1)),
    "squeeze": (lambda: [_data(7, 1, 5)], lambda x: x.squeeze(1), Shard(0)),
    "reshape_shard1": (lambda: [_data(4, 7, 5, axis=1)], lambda x: x.reshape(4, 7, 5, 1), Shard(1)),
    "permute": (lambda: [_data(4, 7, 5)], lambda x: x.permute(2, 0, 1), Shard(1)),
    "transpose_shard1": (lambda: [_data(4, 7, 5, axis=1)], lambda x: x.transpose(0, 1), Shard(0)),
    "T": (lambda: [_data(7, 5)], lambda x: x.T, Shard(1)),
    "expand": (lambda: [_data(7, 1, 3)], lambda x: x.expand(7, 4, 3), Shard(0)),
    "cat_other_axis": (lambda: [_data(7, 2), _data(7, 3)], lambda x, y: gt.cat([x, y], axis=1), Shard(0)),
    "stack": (lambda: [_data(7, 2), _data(7, 2, seed=1)], lambda x, y: gt.stack([x, y]), Shard(1)),
    "split_other_axis": (lambda: [_data(7, 5)], lambda x: x.split(2, axis=1)[1], Shard(0)),
    "getitem_rows": (lambda: [_data(7, 5)], lambda x: x[2:], Shard(0)),
    # Partial stays partial through linear ops
    "partial_add": (lambda: [_sum0(7, 5), _sum0(7, 5, seed=1)], lambda p, q: p + q - q, Partial()),
    "partial_scale_neg": (lambda: [_sum0(7, 5)], lambda p: -(p * 2.0) / 4.0, Partial()),
    "partial_times_replicate": (lambda: [_sum0(7, 5), _param(5)], lambda p, w: p * w / w, Partial()),
    "partial_reshape_permute": (lambda: [_sum0(7, 2, 3)], lambda p: p.reshape(3, 2).T.unsqueeze(0), Partial()),
    "partial_expand": (lambda: [_sum0(7, 1, 3)], lambda p: p.expand(4, 3), Partial()),
    "partial_sum_mean": (lambda: [_sum0(7, 5)], lambda p: p.sum() + p.mean(), Partial()),
    "partial_matmul": (lambda: [_sum0(7, 1, 5), _param(5, 3)], lambda p, w: p @ w, Partial()),
    "partial_getitem": (lambda: [_sum0(7, 5)], lambda p: p[1:4], Partial()),
}


@pytest.mark.parametrize("n", N_DEVICES)
@pytest.mark.parametrize("name", list(PLACEMENT_CASES))
def test_propagation_rule_needs_no_collective(name, n):
    make, op, expected = PLACEMENT_CASES[name]
    with use_mesh(n):
        inputs = make()
        out, counts = _placed(op, *inputs)
        assert out.placement == expected, f"{name}: {out.placement}, expected {expected}"
        assert counts == {}, f"{name}: the op ran collectives {counts} (gathered instead of following the rule)"
        if isinstance(expected, Shard):  # really split: every device holds its own block
            sizes = out._placed.sizes
            assert len(sizes) == n and sum(sizes) == out.shape[expected.axis]
        with use_mesh(1):
            ref = op(*[gt.tensor(t.numpy()) for t in inputs])
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("n", N_DEVICES)
def test_partial_costs_one_all_reduce_when_needed(n):
    with use_mesh(n):
        x = randn(7, 5)
        p, counts = _placed(lambda: gt.tensor(x).sum(0) * 2.0)
        assert p.placement == Partial() and counts == {}
        value, counts = _placed(p.numpy)
        assert counts == {"all_reduce": 1}
        np.testing.assert_allclose(value, x.sum(0) * 2.0, rtol=RTOL)
        out, counts = _placed(lambda: p.exp())  # not linear: the shares are summed first
        assert counts == {"all_reduce": 1} and out.placement == Replicate()
        np.testing.assert_allclose(out.numpy(), np.exp(x.sum(0) * 2.0), rtol=RTOL)


@pytest.mark.parametrize("n", N_DEVICES)
def test_data_parallel_step_reduces_each_gradient_once(n):
    """A two-layer MLP on a Shard(0) batch with replicated parameters: the forward runs no
    collective, the loss is one all-reduce, and the backward all-reduces each gradient once."""
    x, y = randn(9, 5, seed=1), randn(9, 2, seed=2)
    shapes = [(4, 5), (4,), (2, 4), (2,)]

    def step():
        params = [gt.tensor(randn(*s, seed=10 + k), requires_grad=True) for k, s in enumerate(shapes)]
        w1, b1, w2, b2 = params
        xb, yb = gt.tensor(x), gt.tensor(y)
        with count_collectives() as fwd:
            h = linalg.Linear.apply(xb, w1, b1).gelu()
            err = linalg.Linear.apply(h, w2, b2) - yb
            loss = (err * err).mean()
        with count_collectives() as bwd:
            loss.backward()
        return loss, params, dict(fwd), dict(bwd)

    with use_mesh(1):
        ref_loss, ref_params, _, _ = step()
        ref_loss, ref_grads = ref_loss.item(), [p.grad.numpy().copy() for p in ref_params]
    with use_mesh(n):
        loss, params, fwd, bwd = step()
        assert fwd == {}, f"forward ran collectives: {fwd}"
        assert loss.placement == Partial()
        assert bwd == {"all_reduce": len(params)}, f"backward ran {bwd}"
        for p, g in zip(params, ref_grads):
            assert p.grad.placement == Replicate()
            np.testing.assert_allclose(p.grad.numpy(), g, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(loss.item(), ref_loss, rtol=RTOL)


def test_one_device_mesh_is_really_one_device():
    """use_mesh(1) gives one device even when GT_DEVICES asks for more: the reference is unsharded."""
    with use_mesh(1):
        assert get_mesh().size == 1
        t = gt.tensor(randn(8, 3))
        assert t.placement == Replicate() and t._placed is None
        assert t.shard(0) is t
