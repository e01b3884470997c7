"""The one comparison helper behind gt's op tests.

Two checks, both driven by a plain function of tensors, so the same lambda can
be checked against finite differences and against torch:

``check_grad(fn, *arrays)``
    runs ``fn`` on float64 gt tensors that require grad, backpropagates a random
    upstream gradient (so non-scalar outputs are covered), and compares every
    input's ``.grad`` with central finite differences of
    ``sum(fn(*inputs) * upstream)``.

``compare_with_torch(gt_fn, torch_fn, *arrays, dtype="float64")``
    runs the computation in gt and in torch on the same values, and compares the
    forward result and every input gradient (rtol 1e-5 in float64, 1e-4 in
    float32). Skips the test with a clear reason when torch is not installed.

Inputs are numpy arrays (or anything ``np.asarray`` accepts). Floating arrays
become inputs that require grad; integer and boolean arrays (indices, masks,
conditions) become constant tensors, passed to ``fn`` in the same position.
``fn`` may return one tensor or a tuple/list of tensors (e.g. ``split``).

    from helpers import check_grad, compare_with_torch, randn

    a, b = randn(3, 4, seed=1), randn(4, seed=2)          # (3, 4) * (4,): broadcasting
    check_grad(lambda x, y: x * y, a, b)                  # raises AssertionError on a mismatch
    compare_with_torch(lambda x, y: x * y, None, a, b, dtype="float32")
    compare_with_torch(lambda x: x.sum(axis=0), lambda x: x.sum(dim=0), a)

tests/ has no ``__init__.py``: pytest puts this folder on ``sys.path``, so test
files import it as ``from helpers import ...``.
"""

import contextlib
import gc
import sys
import unittest
import warnings

import numpy as np
import pytest

import gt

__all__ = ["check_grad", "compare_with_torch", "randn", "positive", "nonzero", "distinct", "TOLERANCES",
           "torch_or_skip"]

# (rtol, atol) for compare_with_torch. atol only matters for values near zero.
TOLERANCES = {"float64": (1e-5, 1e-8), "float32": (1e-4, 1e-5)}


# ---- test inputs ---------------------------------------------------------------------------
def randn(*shape, seed=0, scale=1.0):
    """Reproducible float64 standard-normal array of ``shape`` (``randn()`` is a 0-d array)."""
    return np.random.default_rng(seed).standard_normal(shape) * scale


def positive(*shape, seed=0, low=0.5, high=2.0):
    """Reproducible float64 array with values in ``[low, high)`` (for log, sqrt, pow bases)."""
    return np.random.default_rng(seed).uniform(low, high, shape)


def nonzero(*shape, seed=0, low=0.5, high=2.0):
    """Values in ``[low, high)`` with random signs: away from 0 (divisors, abs, relu kinks)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(*shape, seed=0, gap=0.1):
    """A shuffled array whose values are pairwise at least ``gap`` apart (no ties for max/min)."""
    n = int(np.prod(shape, dtype=np.int64))
    rng = np.random.default_rng(seed)
    values = (np.arange(n) - n // 2) * gap  # multiples of gap: add gap / 2 to another array to avoid ties
    return rng.permutation(values).reshape(shape)


# ---- shared plumbing -----------------------------------------------------------------------
def _is_float(arr):
    return arr.dtype.kind == "f"


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _upstream(outputs, seed):
    """One random upstream gradient per output, float64, shaped like the output."""
    rng = np.random.default_rng(seed + 1000)
    return [rng.standard_normal(tuple(o.shape)) for o in outputs]


def _gt_inputs(arrays, dtype, requires_grad):
    out = []
    for arr in arrays:
        if _is_float(arr):
            out.append(gt.tensor(arr, dtype=dtype, requires_grad=requires_grad))
        else:
            out.append(gt.tensor(arr))
    return out


def _seed_backward_gt(outputs, ups):
    """Backpropagate ``ups`` into gt ``outputs``: ``backward(grad)`` for one output (the
    non-scalar path itself); a scalar ``sum(o * u)`` when ``fn`` returned several."""
    if len(outputs) == 1:
        outputs[0].backward(gt.tensor(ups[0], dtype=outputs[0].dtype))
        return
    total = None
    for o, u in zip(outputs, ups):
        if not o.requires_grad:
            continue
        term = (o * gt.tensor(u, dtype=o.dtype)).sum()
        total = term if total is None else total + term
    total.backward()


def _fail_context(what, i, arr):
    return f"{what} of input {i} (shape {arr.shape})"


# ---- meshes ------------------------------------------------------------------------------------
GATHERED_COPY_REFUSAL = "made from a copy gathered to one device"


def off_ci_meshes():
    """Whether this process runs on a mesh none of CI's passes uses (CI: one device, 4 devices on the
    numpy engine, 2 on torch's), whose blocks split the tests' tensors elsewhere."""
    return (gt.backend.B.name, gt.sharding.get_mesh().size) not in (("numpy", 1), ("torch", 1), ("numpy", 4),
                                                                    ("torch", 2))


def skip_a_gathered_copy_off_ci_meshes(exc):
    """Skips the calling test where gt refused (``exc``) to write into a view it gathers to one device
    (a reshape across the blocks: MISSING.md) on a mesh other than CI's, whose blocks split a tensor
    elsewhere (8 rows over 3 devices: 3, 3, 2), so more views cross them than the test expects."""
    if GATHERED_COPY_REFUSAL in str(exc) and off_ci_meshes():
        pytest.skip(f"a write into a view gathered to one device, on {gt.sharding.get_mesh().size} devices "
                    "(MISSING.md)")


# ---- finite differences --------------------------------------------------------------------
def check_grad(fn, *arrays, eps=1e-6, rtol=1e-5, atol=1e-7, seed=0, wrt=None):
    """Compare gt's gradients of ``fn`` with central finite differences, in float64.

    ``fn(*tensors)`` returns a tensor (or a tuple/list of tensors); the scalar
    differentiated is ``sum(output * upstream)`` for a random ``upstream`` of the
    output's shape. ``wrt`` (indices) limits which float inputs require grad; by
    default all of them do. Also checks each gradient's shape and dtype (float64).

    Keep inputs small (tens of elements) and away from kinks (relu at 0, ties in
    max, clip bounds): the numerical derivative is one Python loop per element.
    Returns the forward output (a tuple when ``fn`` returned several).
    """
    arrays = [np.asarray(a) for a in arrays]
    arrays = [a.astype(np.float64) if _is_float(a) else a for a in arrays]
    wrt = [i for i, a in enumerate(arrays) if _is_float(a)] if wrt is None else list(wrt)

    inputs = []
    for i, arr in enumerate(arrays):
        if i in wrt:
            inputs.append(gt.tensor(arr, dtype=gt.float64, requires_grad=True))
        else:
            inputs.append(gt.tensor(arr) if not _is_float(arr) else gt.tensor(arr, dtype=gt.float64))
    outputs = _as_tuple(fn(*inputs))
    ups = _upstream(outputs, seed)
    for o in outputs:
        assert o.dtype == gt.float64 or not o.dtype.is_floating_point, f"output dtype {o.dtype}, expected gt.float64"
    _seed_backward_gt(list(outputs), ups)

    def objective(values):
        with gt.no_grad():
            outs = _as_tuple(fn(*[gt.tensor(v) for v in values]))  # float64 arrays stay float64
        return sum(float(np.sum(np.asarray(o.numpy(), dtype=np.float64) * u)) for o, u in zip(outs, ups))

    for i in wrt:
        analytic = inputs[i].grad
        assert analytic is not None, f"input {i} requires grad but got no .grad"
        assert analytic.shape == arrays[i].shape, (
            f"{_fail_context('grad', i, arrays[i])} has shape {analytic.shape}")
        assert analytic.dtype == gt.float64, f"{_fail_context('grad', i, arrays[i])} has dtype {analytic.dtype}"
        numeric = np.zeros(arrays[i].shape)
        values = [a.copy() for a in arrays]
        flat, nflat = values[i].reshape(-1), numeric.reshape(-1)  # views: write through
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            f_plus = objective(values)
            flat[k] = orig - eps
            f_minus = objective(values)
            flat[k] = orig
            nflat[k] = (f_plus - f_minus) / (2 * eps)
        np.testing.assert_allclose(analytic.numpy(), numeric, rtol=rtol, atol=atol,
                                   err_msg=f"{_fail_context('gradient', i, arrays[i])} vs finite differences")
    return outputs if len(outputs) > 1 else outputs[0]


# ---- torch -----------------------------------------------------------------------------------
def torch_or_skip():
    """The torch module, or skip the calling test with a clear reason."""
    return pytest.importorskip("torch", reason="torch is not installed: the gt-vs-torch comparisons are skipped "
                                               "(pip install torch==2.13.0 to run them)")


@pytest.fixture
def fbgemm_engine():
    """torch's quantized engine set to fbgemm for a test, then back (``pytest.mark.usefixtures``):
    the x86 engine runs Conv2d through oneDNN on CPUs with AVX-512 VNNI, which rounds after adding
    the zero point; fbgemm's kernels are what gt follows (its Linear is x86's too)."""
    quantized = torch_or_skip().backends.quantized
    old, quantized.engine = quantized.engine, "fbgemm"
    yield
    quantized.engine = old


def beside_torch(fn):
    """``fn`` (given a module: gt or torch) on gt and on torch: (gt's, torch's)."""
    return fn(gt), fn(torch_or_skip())


def beside_torch_or_errors(fn):
    """``fn(m)`` for m gt and torch, warnings silenced: (gt's, torch's), each the result or the
    exception it raised, for tests that compare errors' classes as well as results."""
    out = []
    for m in (gt, torch_or_skip()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out.append(fn(m))
            except Exception as e:      # noqa: BLE001 (the type is what is compared)
                out.append(e)
    return out


def randn_pair(*shape, seed=0, dtype=np.float64, grad=True):
    """The same ``randn(*shape, seed=seed)`` values, cast to ``dtype``, as a gt tensor and a torch one."""
    a = randn(*shape, seed=seed).astype(dtype)
    return gt.tensor(a, requires_grad=grad), torch_or_skip().tensor(a, requires_grad=grad)


def assert_close_as_torch(g, t, rtol=1e-6, atol=1e-8):
    """gt's ``g`` and torch's ``t`` have the same shape and values within ``rtol``/``atol``."""
    assert tuple(g.shape) == tuple(t.shape)
    np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


def assert_results_as_torch(got, want, rtol=1e-10, atol=1e-12):
    """gt's results ``got`` beside torch's ``want``, one by one: ints equal, None for None, tensors of the
    same shape and values within ``rtol``/``atol`` (float64 programs' defaults)."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, int):
            assert g == w
        elif w is None:
            assert g is None
        else:
            assert_close_as_torch(g, w, rtol=rtol, atol=atol)


def assert_same_as_torch(a, b):
    """gt's ``a`` and torch's ``b`` hold the same dtype, shape and values (NaN equal)."""
    assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
    assert tuple(a.shape) == tuple(b.shape)
    np.testing.assert_array_equal(np.asarray(a.tolist(), dtype=float), np.asarray(b.tolist(), dtype=float))


def run_beside_torch(program, ints, exact=True):
    """Run ``program(library, tensor)`` with gt on ``gt.from_numpy(ints)`` and with torch on the same
    values; the results must have torch's dtype and shape, and its values (to the bit when
    ``exact``, else to 1e-6 relative). For programs of integer tensors, which have no gradient."""
    torch = torch_or_skip()
    ours = program(gt, gt.from_numpy(ints.copy()))
    theirs = program(torch, torch.from_numpy(ints.copy()))
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    assert ours.shape == tuple(theirs.shape)
    if exact:
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    else:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def torch_twin(name, kwargs):
    """``(torch's nn.<name>(**kwargs) in float64, gt's nn.<name>(**kwargs, dtype=gt.float64))``, after
    checking that their state dicts have the same keys and shapes and their reprs agree."""
    torch = torch_or_skip()
    ref = getattr(torch.nn, name)(**kwargs).double()
    module = getattr(gt.nn, name)(**kwargs, dtype=gt.float64)
    assert [(k, tuple(v.shape)) for k, v in ref.state_dict().items()] == \
           [(k, v.shape) for k, v in module.state_dict().items()]
    assert repr(module).split("  #")[0] == repr(ref)
    return ref, module


def compare_with_torch(gt_fn, torch_fn, *arrays, dtype="float64", rtol=None, atol=None, seed=0, grad=True):
    """Run ``gt_fn`` on gt tensors and ``torch_fn`` on torch tensors made from the same ``arrays``
    (float arrays cast to ``dtype``, requiring grad), and compare outputs and input gradients.

    ``torch_fn=None`` runs ``gt_fn`` on the torch tensors too (for code both APIs share, like
    ``lambda a, b: (a @ b).relu()``). Tolerances default to ``TOLERANCES[dtype]``. Also checks
    that output and gradient dtypes match torch's. ``grad=False`` compares the forward only.
    Returns ``(gt_outputs, torch_outputs)``.
    """
    torch = torch_or_skip()
    dtype = gt.float64.name if dtype in (gt.float64, "float64") else gt.float32.name if dtype in (
        gt.float32, "float32") else str(dtype)
    d_rtol, d_atol = TOLERANCES[dtype]
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    torch_fn = gt_fn if torch_fn is None else torch_fn
    np_dtype = np.dtype(dtype)
    arrays = [np.asarray(a) for a in arrays]
    arrays = [a.astype(np_dtype) if _is_float(a) else a for a in arrays]

    g_in = _gt_inputs(arrays, getattr(gt, dtype), requires_grad=grad)
    t_in = [torch.tensor(a, requires_grad=grad and _is_float(a)) for a in arrays]
    g_out = _as_tuple(gt_fn(*g_in))
    t_out = _as_tuple(torch_fn(*t_in))
    assert len(g_out) == len(t_out), f"gt returned {len(g_out)} outputs, torch {len(t_out)}"
    for k, (g, t) in enumerate(zip(g_out, t_out)):
        assert g.shape == tuple(t.shape), f"output {k}: gt shape {g.shape}, torch shape {tuple(t.shape)}"
        assert g.dtype.name == str(t.dtype).replace("torch.", ""), f"output {k}: gt {g.dtype}, torch {t.dtype}"
        np.testing.assert_allclose(g.numpy(), t.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"output {k}: gt vs torch forward ({dtype})")
    if not grad:
        return g_out, t_out

    ups = _upstream(g_out, seed)
    diff_t = [(t, u) for t, u in zip(t_out, ups) if t.requires_grad]
    if not diff_t:
        return g_out, t_out
    _seed_backward_gt(list(g_out), ups)
    torch.autograd.backward([t for t, _ in diff_t], [torch.tensor(u, dtype=t.dtype) for t, u in diff_t])
    for i, (arr, g, t) in enumerate(zip(arrays, g_in, t_in)):
        if not _is_float(arr):
            continue
        if t.grad is None:
            assert g.grad is None or not np.any(g.grad.numpy()), f"input {i}: gt has a gradient, torch none"
            continue
        assert g.grad is not None, f"{_fail_context('grad', i, arr)}: torch has a gradient, gt none"
        assert g.grad.dtype.name == dtype, f"{_fail_context('grad', i, arr)}: dtype {g.grad.dtype}, expected {dtype}"
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"{_fail_context('gradient', i, arr)}: gt vs torch ({dtype})")
    return g_out, t_out


def refused(capsys, main, argv):
    """``main(argv)``'s exit status and its stderr, which must be one line (a command that
    refuses its input, as ``lpm ppt`` and ``lpm caption`` do)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return exc.value.code, err


def assert_same_weights(model, reference):
    """Every entry of ``model``'s state dict equals ``reference``'s, bit for bit (named on failure)."""
    want = reference.state_dict()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, want[name], err_msg=name)


@contextlib.contextmanager
def deterministic():
    """``gt.use_deterministic_algorithms(True)`` for the block: bit-for-bit comparisons of two runs
    hold on a GPU too, where torch's scatter-adds (an embedding's gradient) sum with atomics
    unless told otherwise. Nothing changes on the CPU."""
    gt.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        gt.use_deterministic_algorithms(False)


def spy_engine(monkeypatch, name):
    """Wrap ``B.<name>``; returns a list that gets, per call, whether the engine answered (not None)."""
    from gt.backend import B

    answered = []
    real = getattr(B, name)

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        answered.append(out is not None)
        return out

    monkeypatch.setattr(B, name, spy)
    return answered


# ---- sharding --------------------------------------------------------------------------------
@contextlib.contextmanager
def collective_moves():
    """Every collective run inside, as (name, elements it carried), one entry per call."""
    from gt.sharding import collectives

    calls, count = [], collectives._count

    def spy(name, arrays):
        calls.append((name, sum(int(np.prod(tuple(a.shape))) for a in arrays)))
        count(name, arrays)
    collectives._count = spy
    try:
        yield calls
    finally:
        collectives._count = count


@contextlib.contextmanager
def collecting_only_its_own_garbage():
    """``gc.collect()`` inside the block looks only at the objects made inside it (``gc.freeze``):
    a whole collection of a full run's heap takes half a second or more; a reference cycle among
    the block's own objects is found and freed just the same. Where objects are frozen already
    (tests/conftest.py freezes the collection's), the block leaves everything frozen: unfreezing
    would hand the collection's million objects back to every later full collection."""
    outer = gc.get_freeze_count() > 0
    gc.freeze()
    try:
        yield
    finally:
        if not outer:
            gc.unfreeze()


def assert_same_bits(one, many):
    """Two lists of arrays (one device's results, a mesh's) hold the same dtypes, shapes and bits."""
    assert len(one) == len(many)
    for a, b in zip(one, many):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(b, a)
        if a.dtype.kind == "f":     # -0.0 and 0.0 apart too
            np.testing.assert_array_equal(np.signbit(b), np.signbit(a))


@pytest.fixture(scope="module")
def torch_test_fn_from_frames():
    """For tests that draw torch's OpInfo samples (``op.sample_inputs``, ``op.error_inputs``): torch's
    ``extract_test_fn`` (the unittest test on the stack, whose name seeds each sample) with the same
    answer, without ``inspect.stack``, which reads every frame's source: 50 ms a call under pytest's
    deep stack, twice per ``sample_inputs`` call (two thirds of tests/test_opinfo_parity.py's time)."""
    from torch.testing._internal import common_utils, opinfo

    torch_lookup = common_utils.extract_test_fn

    def from_frames():
        frame = sys._getframe(1)
        while frame is not None and not isinstance(frame.f_locals.get("self"), unittest.TestCase):
            frame = frame.f_back
        return None if frame is None else torch_lookup()     # a TestCase's frame: torch's own walk
    with pytest.MonkeyPatch.context() as patch:
        for module in (common_utils, opinfo.core):
            patch.setattr(module, "extract_test_fn", from_frames)
        yield


def save_tiny_ppt(folder):
    """Save an untrained, tiny Pixel Prediction Transformer (8 codes of 4x4 patches, a codebook) as a
    checkpoint in ``folder``, as lpm's commands read it; returns ``folder``."""
    from dataclasses import asdict

    from lpm.checkpoint import save_checkpoint
    from lpm.ppt.model import PixelPredictionTransformer

    model = PixelPredictionTransformer(num_codes=8, embed_dim=8, num_layers=1, num_heads=2, ff_dim=8,
                                       codebook=np.full((8, 16), 0.5, np.float32))
    save_checkpoint(folder, model, None, {"kind": "ppt", "model_config": asdict(model.config),
                                          "progress": {"epoch": 1, "step": 1}})
    return folder


def lpm_status(argv, capsys):
    """``(exit status, stderr)`` of ``lpm ARGV``, run in this process; a traceback on stderr fails."""
    from lpm import cli

    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err
