"""The differences from torch 2.13 the twelfth pass (tests/test_opinfo_variants_parity.py) and the
storage work left, now as torch's, each beside torch: ``out=`` dtypes, tuple outs, errors and
grad_fns; scans and renorm written into overlapping windows; storage offsets of bfloat16 views."""

import numpy as np
import pytest

import gt
from gt.sharding import use_mesh

torch = pytest.importorskip("torch")

# memory layouts and out= of one device's tensors (a sharded tensor has no storage of its own)
pytestmark = pytest.mark.own_mesh

A = np.arange(12, dtype=np.float64).reshape(3, 4) / 7.0 - 0.6


def _outcome(fn, lib):
    """``fn(lib)``, or the type and message of what it raised."""
    try:
        return fn(lib)
    except Exception as error:      # noqa: BLE001 - compared with the other framework's
        return type(error), str(error)


def _same_error(fn, expected=RuntimeError):
    t, g = _outcome(fn, torch), _outcome(fn, gt)
    assert isinstance(t, tuple) and t[0] is expected, t
    assert isinstance(g, tuple) and issubclass(g[0], expected) and g[1] == t[1], (g, t)


def _dt(lib, name):
    return getattr(lib, name)


@pytest.mark.parametrize("out_dtype", ["float32", "int64", "complex128"])
def test_where_and_clamp_with_number_bounds_ask_out_for_the_results_dtype(out_dtype):
    """torch's where and its clamp kernels for number bounds refuse an out of another dtype, wider
    too (gt cast into it); clamp with tensor bounds casts as elementwise ops do."""
    with use_mesh(1):
        def x(lib):
            return lib.tensor(A)

        def out(lib):
            return lib.zeros(3, 4, dtype=_dt(lib, out_dtype))
        _same_error(lambda L: L.where(x(L) > 0, x(L), -x(L), out=out(L)))
        _same_error(lambda L: L.clamp(x(L), -0.2, 0.3, out=out(L)))
        _same_error(lambda L: L.clamp(x(L), min=-0.2, out=out(L)))
        _same_error(lambda L: L.clamp_max(x(L), 0.3, out=out(L)))
        _same_error(lambda L: L.clamp(x(L).to(_dt(L, "float32")), 0, 1, out=L.zeros(3, 4, dtype=L.float64)))
        if out_dtype != "int64":
            for lib in (torch, gt):
                got = lib.clamp(x(lib), x(lib) * 0 - 0.2, x(lib) * 0 + 0.3, out=out(lib))
                np.testing.assert_allclose(np.asarray(got.tolist()), np.clip(A, -0.2, 0.3), rtol=1e-6)


def _tuple_out(name, lib):
    x = lib.tensor(A)
    outs = (lib.zeros(0, dtype=lib.float64), lib.zeros(0, dtype=lib.float64 if name == "aminmax" else lib.int64))
    call = {"max": lambda: lib.max(x, 1, True, out=outs), "min": lambda: lib.min(x, 0, out=outs),
            "sort": lambda: lib.sort(x, 1, True, out=outs), "topk": lambda: lib.topk(x, 2, out=outs),
            "kthvalue": lambda: lib.kthvalue(x, 2, 0, out=outs), "mode": lambda: lib.mode(x.round(), 1, out=outs),
            "median": lambda: lib.median(x, 1, out=outs), "cummax": lambda: lib.cummax(x, 0, out=outs),
            "cummin": lambda: lib.cummin(x, 1, out=outs),
            "aminmax": lambda: lib.aminmax(x, dim=1, out=outs)}[name]
    back = call()
    fields = [f for f in ("values", "indices", "min", "max") if hasattr(back, f)]
    return fields, [(o.tolist(), str(o.dtype).split(".")[-1]) for o in back], all(b is o for b, o in zip(back, outs))


@pytest.mark.parametrize("name", ["max", "min", "sort", "topk", "kthvalue", "mode", "median", "cummax", "cummin",
                                  "aminmax"])
def test_tuple_out_functions(name):
    """Every function of two results takes a tuple out (``gt.max(x, 1, out=(values, indices))``
    raised TypeError: gt's ``max(x, 1)`` gives values only, numpy's reading); the outs are resized,
    filled and returned in torch's named tuple."""
    with use_mesh(1):
        t = _tuple_out(name, torch)
        g = _tuple_out(name, gt)
    assert g == t and g[2]


def test_max_with_a_dim_and_one_out_tensor_is_torchs_type_error():
    """(gt wrote the values of its numpy reading, ``x.max(1)``, there until 2026-12-06; torch takes
    only a (values, indices) out= with a dim.)"""
    with use_mesh(1):
        for lib in (gt, torch):
            with pytest.raises(TypeError, match=r"max\(\) received an invalid combination of arguments - got "
                                                 r"\(Tensor, int, out=Tensor\)"):
                lib.max(lib.tensor(A), 1, out=lib.zeros(3, dtype=lib.float64))


@pytest.mark.parametrize("name", ["cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack",
                                  "column_stack", "row_stack"])
def test_cat_into_an_uncastable_out_is_a_type_error(name):
    with use_mesh(1):
        _same_error(lambda L: getattr(L, name)([L.tensor(A), L.tensor(A)], out=L.zeros(0, dtype=L.int64)), TypeError)
        _same_error(lambda L: getattr(L, name)([L.tensor([[1, 2]]), L.tensor([[3, 4]])],
                                               out=L.zeros(0, dtype=L.bool)), TypeError)


_SHAPE_ERRORS = {
    "expand": lambda L: L.zeros(2, 3).expand(4, 3),
    "expand last axis": lambda L: L.zeros(2, 3).expand(2, 4),
    "expand -1": lambda L: L.zeros(2, 3).expand(4, -1),
    "expand fewer": lambda L: L.zeros(2, 3, dtype=L.int64).expand(3),
    "expand leading -1": lambda L: L.zeros(2, 3).expand(-1, -1, 3),
    "broadcast_to": lambda L: L.ones(3).broadcast_to((2, -2)),
    "addmm": lambda L: L.addmm(L.zeros(2, 2), L.zeros(2, 3), L.zeros(2, 2)),
    "addmm rank": lambda L: L.addmm(L.zeros(2, 2), L.zeros(2, 3, 1), L.zeros(3, 2)),
    "addmm self": lambda L: L.addmm(L.zeros(3, 3), L.zeros(2, 3), L.zeros(3, 2)),
    "addmv": lambda L: L.addmv(L.zeros(2), L.zeros(2, 3), L.zeros(2)),
    "addmv rank": lambda L: L.addmv(L.zeros(2), L.zeros(2, 3), L.zeros(3, 1)),
    "addr": lambda L: L.addr(L.zeros(3, 3), L.zeros(2), L.zeros(3)),
    "addr rank": lambda L: L.addr(L.zeros(2, 2), L.zeros(2, 2), L.zeros(2)),
    "addbmm": lambda L: L.addbmm(L.zeros(2, 2), L.zeros(2, 2, 3), L.zeros(2, 2, 2)),
    "addbmm batches": lambda L: L.addbmm(L.zeros(2, 2), L.zeros(3, 2, 3), L.zeros(2, 3, 2)),
    "addbmm rank": lambda L: L.addbmm(L.zeros(2, 2), L.zeros(2, 2), L.zeros(2, 3, 2)),
    "baddbmm": lambda L: L.baddbmm(L.zeros(2, 2, 2), L.zeros(2, 2, 3), L.zeros(2, 2, 2)),
    "baddbmm batches": lambda L: L.baddbmm(L.zeros(3, 2, 2), L.zeros(3, 2, 3), L.zeros(2, 3, 2)),
}


@pytest.mark.parametrize("case", list(_SHAPE_ERRORS))
def test_product_and_expand_shape_errors_are_torchs(case):
    """torch's RuntimeError in its words (gt raised ValueError in its own; the error is both, so
    code catching gt's ValueError still does)."""
    with use_mesh(1):
        _same_error(_SHAPE_ERRORS[case])
        assert issubclass(_outcome(_SHAPE_ERRORS[case], gt)[0], ValueError)


def _out_call(lib, name, x):
    fn = {"t_copy": lambda x, **o: lib.t_copy(x, **o), "diag": lambda x, **o: lib.diag(x[0] * 1, **o),
          "softmax": lambda x, **o: lib.softmax(x, 1, **o), "log_softmax": lambda x, **o: lib.log_softmax(x, 1, **o),
          "transpose_copy": lambda x, **o: lib.transpose_copy(x, 0, 1, **o),
          "diff n=0": lambda x, **o: lib.diff(x, 0, **o), "diff": lambda x, **o: lib.diff(x, **o),
          "matrix_power 0": lambda x, **o: lib.linalg.matrix_power(x, 0, **o),
          "matrix_power 1": lambda x, **o: lib.matrix_power(x, 1, **o),
          "matrix_power 2": lambda x, **o: lib.linalg.matrix_power(x, 2, **o),
          "quantile": lambda x, **o: lib.quantile(x, 0.5, **o)}[name]
    expected = fn(x.detach())
    out = lib.zeros(tuple(expected.shape), dtype=expected.dtype)
    try:
        got = fn(x, out=out)
    except RuntimeError:
        return "refused"
    result = [got is out, got.requires_grad, got.grad_fn is None, np.asarray(got.tolist()).round(12).tolist()]
    if got.requires_grad:
        try:
            got.sum().backward()
            result.append(np.asarray(x.grad.tolist()).round(10).tolist())
        except RuntimeError as error:
            result.append(str(error))
    return result


@pytest.mark.parametrize("name", ["t_copy", "diag", "softmax", "log_softmax", "transpose_copy", "diff n=0", "diff",
                                  "matrix_power 0", "matrix_power 1", "matrix_power 2", "quantile"])
def test_composite_out_with_an_input_that_requires_grad(name):
    """torch's composites with out= record the copy as torch does: a grad_fn whose backward raises
    ("derivative for aten::softmax is not implemented") where torch's out-variant has no derivative
    (gt differentiated it), a copy that differentiates (quantile, matrix_power(x, 1)), none
    (matrix_power(x, 0)), or a refusal (diff with n >= 1, matrix_power(x, 2): gt computed)."""
    with use_mesh(1):
        t = _out_call(torch, name, torch.tensor(A[:, :3], requires_grad=True))
        g = _out_call(gt, name, gt.tensor(A[:, :3], requires_grad=True))
    assert g == t


def _window_write(lib, make, method, args):
    base = lib.tensor(np.arange(1.0, 17.0) / 5.0)
    view = make(base)
    back = getattr(view, method)(*args)
    return back is view, base.tolist(), view._version


_WINDOWS = {"as_strided (3, 3), (1, 1)": lambda x: x.as_strided((3, 3), (1, 1)),
            "as_strided (4, 3), (2, 1), 1": lambda x: x.as_strided((4, 3), (2, 1), 1),
            "as_strided (2, 3, 2), (2, 1, 1)": lambda x: x.as_strided((2, 3, 2), (2, 1, 1)),
            "as_strided (3, 4), (1, 2)": lambda x: x.as_strided((3, 4), (1, 2)),
            "unfold(0, 4, 2)": lambda x: x.unfold(0, 4, 2)}


@pytest.mark.parametrize("window", list(_WINDOWS))
def test_scans_and_renorm_into_overlapping_windows_are_torchs(window):
    """cumsum_/cumprod_/renorm_ into windows that share memory: torch's kernels go line after line
    (a scan reads each element as the lines before left it; renorm takes the norms first, then
    multiplies element by element). gt computed from the old values and copied the result back."""
    make = _WINDOWS[window]
    with use_mesh(1):
        ndim = make(gt.zeros(16)).ndim
        for method, args in [(m, (d,)) for m in ("cumsum_", "cumprod_") for d in range(-1, ndim)] + \
                [("renorm_", (p, d, m)) for p, m in ((2, 1.0), (1, 2.5)) for d in range(ndim)]:
            t, g = _window_write(torch, make, method, args), _window_write(gt, make, method, args)
            assert g[0] and g[2] == t[2], (method, args)
            np.testing.assert_allclose(g[1], t[1], rtol=1e-12, err_msg=f"{method}{args}")


def test_cumsum_into_windows_with_dim_keyword_and_dtype():
    def write(lib, dtype):
        x = lib.arange(10.0, dtype=lib.float32)
        x.unfold(0, 4, 2).cumsum_(dim=0, dtype=getattr(lib, dtype))
        return x.tolist()
    with use_mesh(1):
        assert write(gt, "float32") == write(torch, "float32")
        _same_error(lambda L: write(L, "float64"))


def test_storage_offset_of_bfloat16_views():
    """gt reported 0 for every bfloat16 tensor; the torch engine (the numpy one has no bfloat16)
    now tells each view's element offset, as torch's."""
    with use_mesh(1):
        try:
            g = gt.arange(24.0).to(gt.bfloat16).reshape(4, 6)
        except TypeError:
            pytest.skip("the numpy engine has no bfloat16")
        t = torch.arange(24.0).to(torch.bfloat16).reshape(4, 6)
        for view in (lambda x: x[1:], lambda x: x[1:3, 2:], lambda x: x.t()[3], lambda x: x[:, 1::2], lambda x: x):
            assert view(g).storage_offset() == view(t).storage_offset()


@pytest.mark.parametrize("devices", [1, 2])
def test_vmap_takes_an_undone_t_of_an_unmapped_input_on_a_mesh(devices):
    """On a mesh ``t_`` re-lays the shards: vmap told a change by the object holding them, so an
    undone ``t_`` (which torch's vmap takes) was refused there; now by the placement and the shards'
    strides. A ``t_`` not undone, or a write, is made once, as torch's (they were refused:
    tests/test_func_inplace_leftovers_parity.py)."""
    x, v = A[:3, :3].copy(), A[:, :3].copy()

    def undone(v, w):
        w.t_()
        r = w @ v
        w.t_()
        return r
    expected = torch.func.vmap(undone, in_dims=(0, None))(torch.tensor(v), torch.tensor(x))
    with use_mesh(devices):
        w = gt.tensor(x)
        got = gt.func.vmap(undone, in_dims=(0, None))(gt.tensor(v), w)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12)
        np.testing.assert_array_equal(w.numpy(), x)
        for body in (lambda v, w: w.t_() @ v, lambda v, w: w.add_(1) @ v):
            w, tw = gt.tensor(x), torch.tensor(x)
            got = gt.func.vmap(body, in_dims=(0, None))(gt.tensor(v), w)
            expected = torch.func.vmap(body, in_dims=(0, None))(torch.tensor(v), tw)
            np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12)
            np.testing.assert_allclose(w.numpy(), tw.numpy(), rtol=1e-12)


def test_storage_offset_of_empty_slices():
    """torch tells where an empty slice begins (its data_ptr() is 0 there); so do both engines (the
    torch engine said 0; numpy keeps no place for an empty slice, the numpy engine's getitem does)."""
    views = (lambda x: x[2:2], lambda x: x[:, 3:3], lambda x: x[1:3, 2:2], lambda x: x[2:2].t(),
             lambda x: x.narrow(1, 4, 0), lambda x: x[4:])
    with use_mesh(1):
        t, g = torch.arange(24.0).reshape(4, 6), gt.arange(24.0).reshape(4, 6)
        for view in views:
            assert view(g).stride() == view(t).stride()
            assert view(g).storage_offset() == view(t).storage_offset()


def test_clone_keeps_the_order_of_the_axes_as_torchs():
    """torch's clone (preserve_format) of a permuted tensor is permuted, dense; of an expanded one,
    row-major. The numpy engine's was row-major always (and so resize_ of a clone read other
    elements than torch's)."""
    views = (lambda x: x.transpose(1, 2), lambda x: x.permute(2, 0, 1), lambda x: x[:, :, :2].mT,
             lambda x: x[:, ::2], lambda x: x[:1].expand(3, 3, 4), lambda x: x)
    with use_mesh(1):
        for view in views:
            t = view(torch.tensor(A.reshape(3, 4)[None].repeat(2, 0).reshape(2, 3, 4))).clone()
            for leaf in (False, True):
                g = view(gt.tensor(A.reshape(3, 4)[None].repeat(2, 0).reshape(2, 3, 4), requires_grad=leaf)).clone()
                assert (g.stride(), g.is_contiguous(), g.tolist()) == (t.stride(), t.is_contiguous(), t.tolist())
        t, g = torch.tensor(A).t().clone(), gt.tensor(A).t().clone()
        assert t.resize_(2, 6).tolist() == g.resize_(2, 6).tolist()
