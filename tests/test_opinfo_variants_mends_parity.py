"""What the twelfth pass over torch's OpInfo table (variants and layouts: tests/test_opinfo_variants_parity.py)
found and gt now does as torch 2.13, each beside torch."""

import warnings

import numpy as np
import pytest

import gt
import gt.nn.functional
from gt.sharding import use_mesh

torch = pytest.importorskip("torch")
DTYPES = {getattr(torch, n): getattr(gt, n) for n in ("float64", "float32", "int64", "int32")}

# gt's data tensors are sharded over GT_DEVICES (a sharded tensor's reshape is logical): these
# compare one device's memory layouts with torch's, on every engine
pytestmark = pytest.mark.own_mesh

X = np.arange(60, dtype=np.float64).reshape(3, 4, 5) / 7.0


def _both(fn):
    """``fn(lib)`` for torch and gt: each result, or the exception type it raised."""
    got = []
    for lib in (torch, gt):
        try:
            got.append(fn(lib))
        except RuntimeError as error:
            got.append(type(error))
    return got


def test_view_refuses_a_layout_no_view_can_give():
    """gt's ``view`` reshaped (a copy) where no view exists: writes through the "view" then never
    reached the tensor. Now refused as torch's; ``reshape``/``reshape_as``/``view_copy`` copy."""
    with use_mesh(1):
        for lib in (torch, gt):
            x = lib.tensor(X).transpose(1, 2)           # (3, 5, 4), strides (20, 1, 5)
            with pytest.raises(RuntimeError, match="view size is not compatible"):
                x.view(3, 20)
            with pytest.raises(RuntimeError, match="view size is not compatible"):
                x.view_as(lib.zeros(15, 4))
            with pytest.raises(RuntimeError, match="view size is not compatible"):
                lib.tensor(X)[:1].expand(3, 4, 5).view(12, 5)
            assert lib.view_copy(x, (3, 20)).shape == (3, 20) and x.reshape_as(lib.zeros(60)).shape == (60,)
        # where a view exists it is one: the same strides as torch's, and a write through it reaches x
        t, g = (lib.tensor(X).transpose(1, 2) for lib in (torch, gt))
        for shape in ((3, 1, 5, 4), (3, 5, 2, 2), (3, 5, 4, 1)):
            assert tuple(g.view(*shape).stride()) == tuple(t.view(*shape).stride())
        g.view(3, 5, 2, 2).mul_(2)
        t.view(3, 5, 2, 2).mul_(2)
        np.testing.assert_array_equal(g.numpy(), t.numpy())


@pytest.mark.parametrize("change", ["t_", "transpose_", "swapdims_", "squeeze_", "unsqueeze_"])
def test_shape_changes_in_place_refuse_a_view_of_a_leaf(change):
    """gt's in-place shape changes took a view of a leaf that requires grad, which torch refuses
    (as it refuses writes into one); on the leaf itself, and outside autograd, as before."""
    args = {"t_": (), "transpose_": (0, 1), "swapdims_": (1, 0), "squeeze_": (), "unsqueeze_": (0,)}[change]
    with use_mesh(1):
        for lib in (torch, gt):
            x = lib.tensor(X[0, :, :1].copy(), requires_grad=True)      # (4, 1)
            with pytest.raises(RuntimeError, match="view of a leaf Variable"):
                getattr(x[:2], change)(*args)
            with pytest.raises(RuntimeError, match="a leaf Variable"):
                getattr(x, change)(*args)
            y = x.clone()[:2]                   # a view of a tensor of the graph: changed, and differentiable
            assert getattr(y, change)(*args) is y
            (y * y).sum().backward()
            np.testing.assert_allclose(x.grad.numpy()[:2], 2 * X[0, :2, :1])
            with lib.no_grad():
                assert getattr(x[:2], change)(*args).numel() == 2


def test_conj_physical_in_place_of_a_real_tensor_counts_as_a_write():
    """``conj_physical_`` of a real tensor changes nothing, but torch refuses it on a leaf that
    requires grad and counts a new version; gt did neither."""
    with use_mesh(1):
        for lib in (torch, gt):
            x = lib.tensor(X, requires_grad=True)
            with pytest.raises(RuntimeError, match="leaf Variable"):
                x.conj_physical_()
            y = x.clone()
            before = y._version
            assert y.conj_physical_() is y and y._version == before + 1
            np.testing.assert_array_equal(y.detach().numpy(), X)


def test_normalize_out_under_autograd_is_refused():
    """``F.normalize(x, out=o)`` wrote the values (no gradient) where an input or ``out`` requires
    grad; torch's refuses (its division with ``out=``), as gt's other ``out=`` functions do."""
    with use_mesh(1):
        for requires in ("input", "out"):
            got = _both(lambda lib: lib.nn.functional.normalize(
                lib.tensor(X, requires_grad=requires == "input"), dim=1,
                out=lib.zeros(3, 4, 5, dtype=lib.float64, requires_grad=requires == "out")))
            assert got == [RuntimeError, RuntimeError]
        t, g = (lib.zeros(3, 4, 5, dtype=lib.float64) for lib in (torch, gt))
        with gt.no_grad(), torch.no_grad():
            torch.nn.functional.normalize(torch.tensor(X, requires_grad=True), dim=1, out=t)
            gt.nn.functional.normalize(gt.tensor(X, requires_grad=True), dim=1, out=g)
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-12)


def test_complex_functions_take_out():
    """``gt.complex``/``polar``/``angle``/``conj_physical`` refused ``out=`` (TypeError); they take
    it as torch's: written and returned, resized from zero elements, an uncastable dtype refused,
    and (but ``angle``) an out of a narrower dtype too."""
    with use_mesh(1):
        got = []
        for lib in (torch, gt):
            a, b = lib.tensor(X[0, 0], dtype=lib.float64), lib.tensor(X[0, 1] - 1, dtype=lib.float64)
            outs = [lib.empty(0, dtype=lib.complex128), lib.empty(0, dtype=lib.complex128),
                    lib.empty(5, dtype=lib.float64), lib.empty(5, dtype=lib.float64)]
            calls = [lambda o: lib.complex(a, b, out=o), lambda o: lib.polar(a, b, out=o),
                     lambda o: lib.angle(b, out=o), lambda o: lib.conj_physical(b, out=o)]
            for call, out in zip(calls, outs):
                assert call(out) is out
            with pytest.raises(RuntimeError):
                lib.complex(a, b, out=lib.empty(5, dtype=lib.float64))
            for call, narrower in zip(calls, (lib.complex64, lib.complex64, None, lib.float32)):
                if narrower is not None:            # these kernels ask for out in the result's dtype
                    with pytest.raises(RuntimeError):
                        call(lib.empty(5, dtype=narrower))
            got.append([np.asarray(o.numpy()) for o in outs])
        for t, g in zip(*got):
            np.testing.assert_allclose(g, t, rtol=1e-12)


@pytest.mark.parametrize("name,args", [("permute_copy", ((2, 0, 1),)), ("transpose_copy", (0, 2)),
                                       ("diagonal_copy", (0, 0, 2)), ("unfold_copy", (1, 2, 1))])
def test_copy_functions_give_row_major_copies(name, args):
    """torch's ``*_copy`` functions give row-major tensors; gt's cloned the view, which on the torch
    engine kept a permuted layout (so ``.view(-1)`` of the copy, fine in torch, was refused)."""
    with use_mesh(1):
        t, g = (getattr(lib, name)(lib.tensor(X), *args) for lib in (torch, gt))
        assert g.is_contiguous() and tuple(g.stride()) == tuple(t.stride())
        np.testing.assert_array_equal(g.view(-1).numpy(), t.view(-1).numpy())


def test_strides_of_an_empty_tensor_are_torchs():
    """numpy gives a new array of no elements no steps (all 0); gt's ``stride()`` passed them on
    where torch's are row-major (each at least 1); a view of one takes any shape of no elements."""
    with use_mesh(1):
        for shape in ((1, 0, 3), (2, 0), (0, 2, 3), (0,)):
            t, g = torch.zeros(shape), gt.zeros(shape)
            assert tuple(g.stride()) == tuple(t.stride())
            assert tuple(g.view(0, 7).stride()) == tuple(t.view(0, 7).stride())


def _message(fn):
    """``fn(lib)``'s RuntimeError message for torch and gt (None where it computes)."""
    got = []
    for lib in (torch, gt):
        try:
            fn(lib)
            got.append(None)
        except RuntimeError as error:
            got.append(str(error).split("\n")[0])
    return got


def test_out_of_a_narrower_dtype_is_refused_where_torchs_kernel_asks_for_the_exact_one():
    """gt cast a float64 result into a float32 ``out`` for every op (torch's general rule); torch's
    structured, linalg and some other kernels refuse it, each with its message, as gt now does.
    The others (elementwise, torch.cholesky, a factory without dtype=) still cast."""
    a = X[0, :3, :3] @ X[0, :3, :3].T + np.eye(3)
    with use_mesh(1):
        refused = [lambda lib: lib.mm(lib.tensor(a), lib.tensor(a), out=lib.zeros(3, 3)),
                   lambda lib: lib.abs(lib.tensor(a), out=lib.zeros(3, 3)),
                   lambda lib: lib.dot(lib.tensor(a[0]), lib.tensor(a[0]), out=lib.zeros(())),
                   lambda lib: lib.linalg.cholesky(lib.tensor(a), out=lib.zeros(3, 3)),
                   lambda lib: lib.argmax(lib.tensor(a), out=lib.zeros((), dtype=lib.int32)),
                   lambda lib: lib.cummax(lib.tensor(a), 0, out=(lib.zeros(3, 3), lib.zeros(3, 3, dtype=lib.int64))),
                   lambda lib: lib.zeros(3, dtype=lib.float64, out=lib.zeros(3)),
                   # matmul meets the check of the product its ranks pick (mm, bmm, mv, dot), in its words
                   lambda lib: lib.matmul(lib.tensor(a), lib.tensor(a), out=lib.zeros(3, 3)),
                   lambda lib: lib.matmul(lib.tensor(a[None]), lib.tensor(a), out=lib.zeros(1, 3, 3)),
                   lambda lib: lib.matmul(lib.tensor(a[0]), lib.tensor(a), out=lib.zeros(3)),
                   lambda lib: lib.matmul(lib.tensor(a), lib.tensor(a[0]), out=lib.zeros(3)),
                   lambda lib: lib.matmul(lib.tensor(a[0]), lib.tensor(a[0]), out=lib.zeros(())),
                   lambda lib: lib.addbmm(lib.tensor(a), lib.tensor(a[None]), lib.tensor(a[None]), out=lib.zeros(3, 3))]
        for fn in refused:
            t, g = _message(fn)
            assert t is not None and g == t
        cast = [lambda lib: lib.add(lib.tensor(a), 1, out=lib.zeros(3, 3)),
                lambda lib: lib.cholesky(lib.tensor(a), out=lib.zeros(3, 3)),
                lambda lib: lib.zeros(3, out=lib.zeros(3, dtype=lib.float64)),
                lambda lib: lib.linspace(0, 1, 4, out=lib.zeros(4, dtype=lib.int32))]
        for fn in cast:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")         # torch.cholesky's deprecation
                t, g = fn(torch), fn(gt)
            assert g.dtype == DTYPES[t.dtype]
            np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-6)


def test_out_resized_silently_computed_in_its_dtype_and_written_by_composites():
    """torch's factories resize ``out`` without the elementwise ops' warning (gt warned); its
    ``cumsum``/``cumprod`` compute in an int64 ``out``'s dtype (gt refused the float result's
    cast); its composite functions write ``out`` where an input requires grad, as a copy autograd
    records (gt refused, as torch's kernels do)."""
    with use_mesh(1):
        for lib in (torch, gt):
            out = lib.zeros(7)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                assert lib.linspace(0, 1, 3, out=out) is out and out.shape == (3,)
                lib.eye(2, out=out)
            with pytest.warns(UserWarning, match="resized"):
                lib.add(lib.ones(2), 1, out=lib.zeros(5))
        got = []
        for lib in (torch, gt):
            x = lib.tensor(X[0] * 3)
            got.append([lib.cumsum(x, 1, out=lib.zeros(4, 5, dtype=lib.int64)).numpy(),
                        lib.cumprod(x, 0, out=lib.zeros(4, 5, dtype=lib.int64)).numpy()])
            x = lib.tensor(X[0], requires_grad=True)
            out = lib.zeros(4, 4, dtype=lib.float64)
            assert lib.inner(x, x, out=out) is out and out.requires_grad
            out.sum().backward()
            got.append([out.detach().numpy(), x.grad.numpy(),
                        lib.softmax(x, 0, out=lib.zeros(4, 5, dtype=lib.float64)).detach().numpy()])
            with pytest.raises(RuntimeError, match="out=... arguments don't support automatic differentiation"):
                lib.mm(x, x.T, out=lib.zeros(4, 4, dtype=lib.float64))
        for t, g in zip(got[0] + got[1], got[2] + got[3]):
            np.testing.assert_allclose(g, t, rtol=1e-12)


def test_sum_and_prod_compute_in_outs_dtype():
    """torch's sum and prod take out's dtype as the one to compute in (a float32 input summed into a
    float64 out is summed in float64; into an int32 out, its values truncated first); gt refused
    an integer out and summed a float64 one in float32."""
    y = np.random.default_rng(0).standard_normal(10000).astype(np.float32)
    got = []
    for lib in (torch, gt):
        x = lib.full((2, 3), 1.5)
        got.append([lib.sum(x, 0, out=lib.zeros(3, dtype=lib.int32)).numpy(),
                    lib.prod(x, 1, keepdim=True, out=lib.zeros(2, 1, dtype=lib.int64)).numpy(),
                    lib.sum(lib.tensor(y), 0, out=lib.zeros((), dtype=lib.float64)).numpy()])
        for fn in (lib.sum, lib.prod, lib.cumsum):     # a dtype= other than out's is refused
            with pytest.raises(RuntimeError, match="Expected out tensor to have dtype float, but got double instead"):
                fn(x, 0, dtype=lib.float32, out=lib.zeros(3, dtype=lib.float64))
    for t, g in zip(*got):
        assert g.dtype == t.dtype
        np.testing.assert_allclose(g, t, rtol=1e-12)


@pytest.mark.parametrize("change", ["t_", "transpose_", "swapdims_", "squeeze_", "unsqueeze_", "resize_"])
def test_shape_changes_in_place_count_a_version(change):
    """torch's in-place shape changes count a version (an op that saved the tensor then refuses
    backward); gt's counted none, and differentiated through the changed tensor."""
    args = {"t_": (), "transpose_": (0, 1), "swapdims_": (1, 0), "squeeze_": (), "unsqueeze_": (0,),
            "resize_": (1, 4)}[change]
    with use_mesh(1):
        for lib in (torch, gt):
            x = lib.tensor(X[0, :, :1].copy())
            before = x._version
            assert getattr(x, change)(*args) is x and x._version == before + 1
            if change == "resize_":
                continue
            w = lib.tensor(X[0, :, :1].copy(), requires_grad=True)
            y = w.clone()
            z = y.sin()                     # saves y
            getattr(y, change)(*args)
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                z.sum().backward()


def test_vmap_takes_an_undone_shape_change_of_an_unmapped_input():
    """gt's vmap tells a write into an unmapped input by its version: counted for ``t_`` now, an
    undone ``t_`` (as torch's vmap takes it) must not read as one; a write is made once, as
    torch's (it was refused)."""
    with use_mesh(1):
        got = []
        for lib, vmap in ((torch, torch.func.vmap), (gt, gt.func.vmap)):
            w = lib.tensor(X[0, :3, :3].copy())

            def f(v, w):
                w.t_()
                r = w @ v
                w.t_()
                return r
            got.append(vmap(f, in_dims=(0, None))(lib.tensor(X[1, :, :3].copy()), w).numpy())
            np.testing.assert_array_equal(w.numpy(), X[0, :3, :3])
        np.testing.assert_allclose(got[1], got[0], rtol=1e-12)
        got = []
        for lib in (torch, gt):
            w = lib.tensor(X[0, :3, :3].copy())
            out = lib.func.vmap(lambda v, w: w.t_().add_(1) @ v, in_dims=(0, None))(lib.tensor(X[1, :, :3]), w)
            got.append((out.numpy(), w.numpy(), w._version))
        for ours, theirs in zip(got[1], got[0]):
            np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_nested_vmap_takes_an_undone_shape_change_of_an_unmapped_input():
    """The inner vmap's count of shape changes was taken off the watch list by equality, which
    removed the outer's (an equal Counter) and failed at the outer's end (ValueError)."""
    with use_mesh(1):
        got = []
        for lib, vmap in ((torch, torch.func.vmap), (gt, gt.func.vmap)):
            w = lib.tensor(X[0, :3, :3].copy())

            def f(v):
                w.t_()
                r = w @ v
                w.t_()
                return r
            got.append(vmap(vmap(f))(lib.tensor(X[1:3, :, :3].copy())).numpy())
        np.testing.assert_allclose(got[1], got[0], rtol=1e-12)


@pytest.mark.parametrize("shape", [(1,), (), (1, 1), (5,)])
def test_addbmm_in_place_makes_self_the_products_shape(shape):
    """torch's ``addbmm_`` makes self of a shape that broadcasts to the product's (n, p) the
    result (resized, a new version, on the tape); gt refused it with numpy's broadcast message."""
    rng = np.random.default_rng(0)
    b1, b2, s = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5)), rng.standard_normal(shape)
    with use_mesh(1):
        got = []
        for lib in (torch, gt):
            m1, m2 = lib.tensor(b1, requires_grad=True), lib.tensor(b2, requires_grad=True)
            leaf = lib.tensor(s, requires_grad=True)
            x = leaf.clone()
            before = x._version
            assert x.addbmm_(m1, m2, beta=0.5, alpha=2) is x and x._version == before + 1
            assert tuple(x.shape) == (3, 5) and tuple(x.stride()) == (5, 1)
            (x * x).sum().backward()
            got.append([x.detach().numpy(), leaf.grad.numpy(), m1.grad.numpy(), m2.grad.numpy()])
        for t, g in zip(*got):
            np.testing.assert_allclose(g, t, rtol=1e-12)


@pytest.mark.parametrize("name,shape,kwargs", [
    ("dropout1d", (3, 6), {}), ("dropout1d", (2, 3, 6), {}), ("dropout2d", (2, 3, 2, 5), {}),
    ("dropout2d", (2, 3, 6), {}), ("dropout3d", (3, 2, 2, 2), {}), ("dropout3d", (2, 3, 2, 2, 2), {}),
    ("alpha_dropout", (4, 6), {"training": True}), ("feature_alpha_dropout", (2, 3, 4), {"training": True})])
def test_dropout_in_place(name, shape, kwargs):
    """``inplace=True`` was refused (ValueError) but for ``F.dropout``; now written into the input
    with the draws and values of the out-of-place call (the same seed), its gradient through the
    tape, and torch's count of versions (an unbatched input's unsqueeze_ and squeeze_ too)."""
    with use_mesh(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")             # torch's dropout2d of a 3-D input
        versions = []
        for lib in (torch, gt):
            x = lib.tensor(X.reshape(-1)[:int(np.prod(shape))].reshape(shape) - 4.05)
            before = x._version
            assert getattr(lib.nn.functional, name)(x, 0.5, inplace=True, **kwargs) is x
            versions.append(x._version - before)
        assert versions[1] == versions[0]
        fn = getattr(gt.nn.functional, name)
        leaf = gt.tensor(X.reshape(-1)[:int(np.prod(shape))].reshape(shape) - 4.05, requires_grad=True)
        gt.manual_seed(3)
        expected = fn(leaf, 0.5, **kwargs)
        expected.sum().backward()
        grad, leaf.grad = leaf.grad.numpy(), None
        x = leaf.clone()
        gt.manual_seed(3)
        fn(x, 0.5, inplace=True, **kwargs)
        x.sum().backward()
        np.testing.assert_array_equal(x.detach().numpy(), expected.detach().numpy())
        np.testing.assert_array_equal(leaf.grad.numpy(), grad)
        alpha = 1.7580993408473766 / np.sqrt((1.7580993408473766 ** 2 * 0.5 + 1) * 0.5)     # SELU's, scaled
        dropped = -alpha * 0.5 if "alpha" in name else 0.0
        assert 0 < np.isclose(expected.detach().numpy(), dropped, rtol=0, atol=1e-12).sum() < expected.numel()
        layer = {"dropout1d": gt.nn.Dropout1d, "dropout2d": gt.nn.Dropout2d, "dropout3d": gt.nn.Dropout3d,
                 "alpha_dropout": gt.nn.AlphaDropout, "feature_alpha_dropout": gt.nn.FeatureAlphaDropout}[name]
        y = leaf.detach().clone()
        gt.manual_seed(3)
        assert layer(0.5, inplace=True)(y) is y
        np.testing.assert_array_equal(y.numpy(), expected.detach().numpy())


def test_histc_and_split_with_sizes_copy_write_an_out_that_requires_grad():
    """torch's ``histc`` and ``split_with_sizes_copy`` kernels write an ``out`` that requires grad
    where no input does (it stays a leaf); gt refused, as torch's other functions do (``sin``)."""
    with use_mesh(1):
        got = []
        for lib in (torch, gt):
            x = lib.tensor(X[0, 0])
            hist = lib.zeros(4, dtype=lib.float64, requires_grad=True)
            parts = [lib.zeros(n, dtype=lib.float64, requires_grad=True) for n in (2, 3)]
            assert lib.histc(x, 4, out=hist) is hist and hist.is_leaf and hist.requires_grad
            lib.split_with_sizes_copy(x, [2, 3], out=parts)
            assert all(p.is_leaf and p.requires_grad for p in parts)
            with pytest.raises(RuntimeError, match="out=... arguments don't support automatic differentiation"):
                lib.sin(x, out=lib.zeros(5, dtype=lib.float64, requires_grad=True))
            got.append([hist.detach().numpy(), *(p.detach().numpy() for p in parts)])
            # an input that requires grad: out written, nothing recorded (gt refused histc, and made
            # split_with_sizes_copy's parts require grad, on the tape)
            x = lib.tensor(X[0, 0], requires_grad=True)
            hist, parts = lib.zeros(4, dtype=lib.float64), [lib.zeros(n, dtype=lib.float64) for n in (2, 3)]
            lib.histc(x, 4, out=hist)
            lib.split_with_sizes_copy(x, [2, 3], out=parts)
            assert not any(t.requires_grad or t.grad_fn is not None for t in (hist, *parts))
            got[-1] += [hist.numpy(), *(p.numpy() for p in parts)]
        for t, g in zip(*got):
            np.testing.assert_allclose(g, t, rtol=1e-12)
