"""Indexing, item assignment and linear algebra beside torch 2.13 where a sixth differential pass
found them apart: item assignment into a 0-d tensor in the graph, the error types of positions out
of range, negative slice steps, out-of-range dims of the index-like shape ops, ``index_select`` of a
0-d tensor, ``gather(sparse_grad=)``, shape mismatches of item assignment, float16
``index_reduce('prod', include_self=False)``, ``det``'s gradient at singular matrices, negative
vector norms over empty dims, tensor tolerances of ``pinv``/``matrix_rank``, ``dtype=`` of the
matrix norms, ``svd(driver=)`` and ``out=`` of gt.linalg's functions. On every engine."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")


def _np(t):
    return np.asarray(t.detach().numpy())


def _both(program):
    """``program(m)`` run with gt and with torch; each result as arrays (or the exception)."""
    out = []
    for m in (gt, torch):
        try:
            out.append([_np(r) if hasattr(r, "detach") else r for r in program(m)])
        except Exception as exc:      # compared by type below
            out.append(exc)
    return out


def test_item_assignment_into_a_0d_tensor_in_the_graph():
    # the backward copied a numpy scalar gradient and could not write into it (numpy engine)
    def program(m):
        x = m.tensor(1.5, dtype=m.float64, requires_grad=True)
        v = m.tensor(4.0, dtype=m.float64, requires_grad=True)
        y = x * 3
        y[()] = v * 2
        (y * 5 + x).backward()
        return y, x.grad, v.grad
    g, t = _both(program)
    for a, b in zip(g, t):
        np.testing.assert_array_equal(a, b)


OUT_OF_RANGE = {
    "scatter": lambda m, x, i: x.scatter(1, i.view(1, 1), 1.0),
    "scatter src": lambda m, x, i: x.scatter(1, i.view(1, 1), m.ones(1, 1)),
    "scatter_add": lambda m, x, i: x.scatter_add(1, i.view(1, 1), m.ones(1, 1)),
    "scatter_reduce": lambda m, x, i: x.scatter_reduce(1, i.view(1, 1), m.ones(1, 1), "sum"),
    "scatter_reduce amax": lambda m, x, i: x.scatter_reduce(0, i.view(1, 1), m.ones(1, 1), "amax"),
    "index_add dim 1": lambda m, x, i: x.index_add(1, i, m.ones(3, 1)),
    "index_add dim 0": lambda m, x, i: x.index_add(0, i, m.ones(1, 4)),
    "index_select dim 1": lambda m, x, i: x.index_select(1, i),
}


@pytest.mark.parametrize("position", [7, -7])
@pytest.mark.parametrize("name", list(OUT_OF_RANGE))
def test_positions_out_of_range_raise_torchs_error_type(name, position):
    # the scatters raised IndexError (torch: RuntimeError); index_add and index_select raise what
    # torch raises by dim, an error that is both
    def program(m):
        return [OUT_OF_RANGE[name](m, m.zeros(3, 4), m.tensor([position]))]
    g, t = _both(program)
    assert isinstance(t, RuntimeError) and isinstance(g, type(t)), (name, g, t)


@pytest.mark.parametrize("index", [
    (slice(None, None, -1),), (slice(None), slice(3, 0, -2)), (Ellipsis, slice(None, None, -1)),
])
def test_negative_slice_steps_are_refused_as_torch(index):
    for m in (gt, torch):
        x = m.arange(12.0).reshape(3, 4)
        with pytest.raises(ValueError, match="step must be greater than zero"):
            x[index]
        with pytest.raises(ValueError, match="step must be greater than zero"):
            x[index] = 1.0


DIM_OUT_OF_RANGE = {
    "index_select": lambda m, x: x.index_select(2, m.tensor([0])),
    "index_select negative": lambda m, x: x.index_select(-3, m.tensor([0])),
    "narrow": lambda m, x: x.narrow(2, 0, 1),
    "unbind": lambda m, x: x.unbind(-3),
    "movedim": lambda m, x: x.movedim(2, 0),
    "rot90": lambda m, x: x.rot90(1, (0, 2)),
}


@pytest.mark.parametrize("name", list(DIM_OUT_OF_RANGE))
def test_dims_out_of_range_raise_instead_of_wrapping(name):
    # index_select(2, ...) of a matrix read dim 0 (2 % 2): a silent wrong answer
    for m in (gt, torch):
        with pytest.raises(IndexError):
            DIM_OUT_OF_RANGE[name](m, m.arange(12.0).reshape(3, 4))


@pytest.mark.parametrize("dim, index", [(0, [0]), (-1, [0]), (0, 0), (0, [1]), (0, [-1]), (0, [0, 0]), (1, [0])])
def test_index_select_of_a_0d_tensor(dim, index):
    def program(m):
        x = m.tensor(3.0, dtype=m.float64, requires_grad=True)
        y = x.index_select(dim, m.tensor(index))
        (y * 2).sum().backward()
        return y, x.grad
    g, t = _both(program)
    if isinstance(t, Exception):
        assert isinstance(g, type(t)), (g, t)
    else:
        assert not isinstance(g, Exception), g
        for a, b in zip(g, t):
            assert a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def test_gather_takes_sparse_grad():
    def program(m):
        x = m.arange(6.0, dtype=m.float64).reshape(2, 3).requires_grad_()
        y = m.gather(x, 1, m.tensor([[2, 0], [1, 1]]), sparse_grad=False)
        z = x.gather(0, m.tensor([[1, 0, 1]]), sparse_grad=False)
        (y.sum() * 2 + z.sum()).backward()
        return y, z, x.grad
    g, t = _both(program)
    for a, b in zip(g, t):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(NotImplementedError, match="sparse_grad"):
        gt.ones(2, 3).gather(1, gt.tensor([[0]]), sparse_grad=True)


@pytest.mark.parametrize("write", [
    lambda m, x: x.__setitem__((m.tensor([0, 1]), slice(None), m.tensor([3, 0])), m.ones(3, 2)),
    lambda m, x: x.__setitem__(0, m.ones(2, 3)),
    lambda m, x: x.__setitem__(0, m.ones(1, 2, 3)),
    lambda m, x: x.__setitem__(m.tensor([False, False]), m.ones(5)),
])
def test_item_assignment_of_a_value_that_does_not_broadcast_is_a_runtime_error(write):
    # the numpy engine raised numpy's ValueError, the torch engine torch's RuntimeError
    for m in (gt, torch):
        with pytest.raises(RuntimeError):
            write(m, m.zeros(2, 3, 4))


SINGULAR = {
    "rank 1 of 2": [[1.0, 2.0], [2.0, 4.0]],
    "rank 2 of 3": [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]],
    "a zero pivot": [[1.0, 0.0], [0.0, 0.0]],
    "zeros": [[0.0] * 3] * 3,
    "a batch, one singular": [[[1.0, 2.0], [2.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]],
}


@pytest.mark.parametrize("name", list(SINGULAR))
def test_det_gradient_at_singular_matrices_is_the_adjugate(name):
    # gt raised LinAlgError; torch's backward with create_graph=True gives the cofactors (its
    # plain backward gives zeros there: an LU solve of a zero right-hand side)
    a = gt.tensor(SINGULAR[name], dtype=gt.float64, requires_grad=True)
    gt.linalg.det(a).sum().backward()
    t = torch.tensor(SINGULAR[name], dtype=torch.float64, requires_grad=True)
    want, = torch.autograd.grad(torch.linalg.det(t).sum(), t, create_graph=True)
    np.testing.assert_allclose(_np(a.grad), want.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape, dim", [((0, 3), 0), ((0, 3), None), ((3, 0), 1), ((0,), None), ((2, 0, 3), (0, 1))])
@pytest.mark.parametrize("order", [-1, -2.5])
def test_negative_vector_norms_over_an_empty_dim_raise(shape, dim, order):
    # gt gave inf (1 / 0 ** -p has no identity; torch refuses); over a dim that is not empty both compute
    for m in (gt, torch):
        with pytest.raises(RuntimeError, match="does not have an identity"):
            m.linalg.vector_norm(m.zeros(shape), ord=order, dim=dim)
        assert m.linalg.vector_norm(m.zeros(3, 0), ord=order, dim=0).shape == (0,)


@pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta")     # torch's own
def test_index_reduce_prod_without_self_of_float16_tensors():
    # the gradient's mask came out float32 (two numbers in `where`), so the float16 result was
    # float32 and its index_add refused the float16 source
    xs = np.array([[0.5, -1.25, 2.0], [1.5, 0.75, -0.5]])
    ss = np.array([[2.0, -0.5], [0.25, 3.0]])

    def program(m):
        x = m.tensor(xs.tolist(), dtype=m.float16, requires_grad=True)
        s = m.tensor(ss.tolist(), dtype=m.float16, requires_grad=True)
        y = x.index_reduce(1, m.tensor([0, 0]), s, "prod", include_self=False)
        (y.float() * m.arange(6.0).reshape(2, 3)).sum().backward()
        return [str(y.dtype).split(".")[-1]] + [t.float() for t in (y, x.grad, s.grad)]
    g, t = _both(program)
    assert g[0] == t[0] == "float16"
    for a, b in zip(g[1:], t[1:]):
        np.testing.assert_array_equal(a, b)


W = np.random.default_rng(1).standard_normal((2, 4, 3)) * np.array([1.0, 0.01])[:, None, None]
TOLERANCES = {
    "matrix_rank atol": lambda m, t: m.linalg.matrix_rank(m.tensor(W), atol=t),
    "matrix_rank atol rtol": lambda m, t: m.linalg.matrix_rank(m.tensor(W), atol=t, rtol=t * 3),
    "matrix_rank rtol": lambda m, t: m.linalg.matrix_rank(m.tensor(W), rtol=t),
    "matrix_rank tol": lambda m, t: m.linalg.matrix_rank(m.tensor(W), tol=t),
    "matrix_rank hermitian": lambda m, t: m.linalg.matrix_rank(m.tensor(W[:, :3] + W[:, :3].transpose(0, 2, 1)),
                                                               atol=t, hermitian=True),
    "pinv atol": lambda m, t: m.linalg.pinv(m.tensor(W), atol=t),
    "pinv rtol": lambda m, t: m.linalg.pinv(m.tensor(W), rtol=t),
    "pinv rcond": lambda m, t: m.linalg.pinv(m.tensor(W), t),
}


@pytest.mark.filterwarnings("ignore:An output with one or more elements was resized")     # torch's own
@pytest.mark.parametrize("tol", [[0.1, 5.0], [[0.1], [0.05]], [0.0, 0.03]])
@pytest.mark.parametrize("name", list(TOLERANCES))
def test_pinv_and_matrix_rank_take_tensor_tolerances(name, tol):
    # torch takes one tolerance per matrix, broadcast over the batch; gt refused tensors
    g, t = _both(lambda m: [TOLERANCES[name](m, m.tensor(tol, dtype=m.float64))])
    assert not isinstance(g, Exception), g
    assert g[0].shape == t[0].shape
    np.testing.assert_allclose(g[0], t[0], rtol=1e-10, atol=1e-12)


def test_pinv_gradient_with_tensor_tolerances():
    def program(m):
        a = m.tensor(W, requires_grad=True)
        # full rank after the cut (gt's pinv gradient is torch's there)
        m.linalg.pinv(a, atol=m.tensor([0.1, 1e-4], dtype=m.float64)).sum().backward()
        return [a.grad]
    g, t = _both(program)
    np.testing.assert_allclose(g[0], t[0], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("call", [
    lambda m, a: m.linalg.norm(a, dtype=m.float64),
    lambda m, a: m.linalg.norm(a, "nuc", (1, 2), dtype=m.float64),
    lambda m, a: m.linalg.matrix_norm(a, dtype=m.float64),
    lambda m, a: m.linalg.matrix_norm(a, ord=2, dtype=m.float64),
    lambda m, a: m.linalg.matrix_norm(a, ord=-1, keepdim=True, dtype=m.float64),
])
def test_matrix_norms_take_dtype(call):
    g, t = _both(lambda m: [call(m, m.tensor(W, dtype=m.float32))])
    assert not isinstance(g, Exception), g
    assert g[0].dtype == t[0].dtype == np.float64
    np.testing.assert_allclose(g[0], t[0], rtol=1e-12)


def test_svd_takes_driver_none_and_refuses_a_driver_on_the_cpu():
    for m in (gt, torch):
        a = m.tensor(W)
        np.testing.assert_allclose(_np(m.linalg.svd(a, driver=None).S), np.linalg.svd(W, compute_uv=False))
        np.testing.assert_allclose(_np(m.linalg.svdvals(a, driver=None)), np.linalg.svd(W, compute_uv=False))
        with pytest.raises(RuntimeError, match="only supported on CUDA inputs"):
            m.linalg.svd(a, driver="gesvd")


OUTS = {
    "solve": (lambda m, a, b, out: m.linalg.solve(a, b, out=out), lambda m: m.empty(2, 3, 3, dtype=m.float64)),
    "inv": (lambda m, a, b, out: m.linalg.inv(a, out=out), lambda m: m.empty(0, dtype=m.float64)),
    "det": (lambda m, a, b, out: m.linalg.det(a, out=out), lambda m: m.empty(2, dtype=m.float64)),
    "slogdet": (lambda m, a, b, out: m.linalg.slogdet(a, out=out),
                lambda m: (m.empty(2, dtype=m.float64), m.empty(2, dtype=m.float64))),
    "vector_norm": (lambda m, a, b, out: m.linalg.vector_norm(a, out=out), lambda m: m.empty((), dtype=m.float64)),
    "cross": (lambda m, a, b, out: m.linalg.cross(a, b, out=out), lambda m: m.empty(2, 3, 3, dtype=m.float64)),
    "matmul": (lambda m, a, b, out: m.linalg.matmul(a, b, out=out), lambda m: m.empty(2, 3, 3, dtype=m.float64)),
}


@pytest.mark.parametrize("name", list(OUTS))
def test_linalg_functions_take_out(name):
    call, make = OUTS[name]
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 3, 3))

    def program(m):
        out = make(m)
        result = call(m, m.tensor(a), m.tensor(b), out)
        outs = out if isinstance(out, tuple) else (out,)
        results = tuple(result) if isinstance(result, tuple) else (result,)
        assert all(r is o for r, o in zip(results, outs))
        return list(outs)
    g, t = _both(program)
    assert not isinstance(g, Exception), g
    for x, y in zip(g, t):
        np.testing.assert_allclose(x, y, rtol=1e-12)
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        gt.linalg.det(gt.tensor(a, requires_grad=True), out=gt.empty(2, dtype=gt.float64))
