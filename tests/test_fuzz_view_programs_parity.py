"""Property-based differential testing of autograd programs mixing views and in-place changes, gt beside torch.

Each example draws a short program (3-8 steps) over a few float64 tensors (leaves that require grad, plain
tensors, non-leaf results ``x * 1``). A step takes a view (slices with steps, int / np.int64 / 0-d tensor
indices, ``t``/``transpose``/``permute``/``T``/``mT``, ``view``/``reshape`` to the same shape or with -1,
``view_as``, ``flatten``, ``unsqueeze``/``squeeze``, ``diagonal``, ``narrow``, ``select``, a piece of
``unbind``/``split``/``chunk``, ``expand``, ``detach``, ``.data``, ``contiguous()``: the tensor itself or a
copy), changes a tensor or view in place (``add_``, ``mul_``, ``copy_``, ``zero_``, ``fill_``, ``clamp_``,
``sin_``, item assignment, ``index_add_``, ``masked_fill_``, ``+=``), possibly under ``no_grad`` or through
``.data``, or computes a new tensor (``*``, ``sin``, ``sum(dim)``, matmul). The program is drawn while it runs
in torch and then replayed in gt; the test asserts that the same steps raise (the exception class), and at the
end the same values, ``requires_grad``, ``is_leaf``, ``is_contiguous()`` and ``_version`` changes of every
tensor, and the same gradients of a weighted sum of them with respect to the leaves.

In CI the examples are few and derandomized (a few seconds a pass). To hunt, run it with many:
``GT_FUZZ_EXAMPLES=3000 GT_FUZZ_LOG=/tmp/views.log pytest tests/test_fuzz_view_programs_parity.py
--hypothesis-seed=N``: every difference is appended to the log (with the program) instead of failing.
"""

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import gt
from gt.sharding.layout import logical_strides
from gt.sharding.placement import Shard

torch = pytest.importorskip("torch")

_EXAMPLES = int(os.environ.get("GT_FUZZ_EXAMPLES", "0") or 0)
_LOG = os.environ.get("GT_FUZZ_LOG", "")
_MESH = int(os.environ.get("GT_DEVICES", "1") or 1) > 1
_SHAPES = ((4, 6), (4, 4), (3, 4, 2), (6,), (2, 3), (5, 1))


def _index(lib, kind, k):
    if kind == "np":
        return np.int64(k)
    if kind == "t0d":
        return lib.tensor(k)
    return k


def _view(lib, t, other, kind, a):
    """Applies one view op; ``a`` holds its plain-data arguments, ``other`` a second pool tensor."""
    pre = (slice(None),) * a[0] if kind in ("slice", "int") else ()
    ops = {
        "slice": lambda: t[pre + (slice(a[1], a[2], a[3]),)],
        "int": lambda: t[pre + (_index(lib, a[2], a[1]),)],
        "col": lambda: t[:, a[0]],
        "t": lambda: t.t(), "T": lambda: t.T, "mT": lambda: t.mT,
        "transpose": lambda: t.transpose(a[0], a[1]),
        "permute": lambda: t.permute(*a[0]),
        "view": lambda: t.view(a[0]), "reshape": lambda: t.reshape(a[0]),
        "view_as": lambda: t.view_as(other),
        "flatten": lambda: t.flatten(a[0], a[1]),
        "unsqueeze": lambda: t.unsqueeze(a[0]),
        "squeeze": lambda: t.squeeze() if a[0] is None else t.squeeze(a[0]),
        "diagonal": lambda: t.diagonal(a[0], a[1], a[2]),
        "narrow": lambda: t.narrow(a[0], a[1], a[2]),
        "select": lambda: t.select(a[0], a[1]),
        "unbind": lambda: t.unbind(a[0])[a[1]],
        "split": lambda: t.split(a[1], a[0])[a[2]],
        "chunk": lambda: t.chunk(a[1], a[0])[a[2]],
        "expand": lambda: t.expand(2, *t.shape),
        "detach": lambda: t.detach(), "data": lambda: t.data,
        "contiguous": lambda: t.contiguous(),
    }
    return ops[kind]()


def _setitem(lib, t, value, a):
    kind = a[0]
    if kind == "int":
        t[a[1]] = value
    elif kind == "slice":
        t[a[1]:a[2]:a[3]] = value
    elif kind == "mask":
        t[lib.tensor(np.array(a[1], dtype=bool))] = value
    else:
        t[list(a[1])] = value


def _inplace(lib, t, other, kind, a):
    """Applies one in-place change to ``t``; ``other`` is a pool tensor broadcasting to it (or None)."""
    value = other if other is not None else a[-1] if a else None
    if kind == "add_":
        t.add_(value)
    elif kind == "mul_":
        t.mul_(value)
    elif kind == "iadd":
        t += value
    elif kind == "copy_":
        t.copy_(other)
    elif kind == "zero_":
        t.zero_()
    elif kind == "fill_":
        t.fill_(a[0])
    elif kind == "clamp_":
        t.clamp_(a[0], a[1])
    elif kind == "sin_":
        t.sin_()
    elif kind == "setitem":
        _setitem(lib, t, value, a)
    elif kind == "index_add_":
        t.index_add_(0, lib.tensor(np.array(a[0], dtype=np.int64)), other)
    elif kind == "masked_fill_":
        t.masked_fill_(lib.tensor(np.array(a[0], dtype=bool)), a[1])
    return t


def _outplace(lib, t, other, kind, a):
    if kind == "mul":
        return t * (other if other is not None else a[0])
    if kind == "sin":
        return t.sin()
    if kind == "sum":
        return t.sum(a[0])
    return t @ t.mT if t.dim() >= 2 else t @ t


def _run_step(lib, pool, step):
    kind, family, src, oth, args, mode = step
    t = pool[src]
    other = pool[oth] if oth is not None else None
    if mode == "data":
        t = t.data
    ctx = lib.no_grad() if mode == "no_grad" else _Null()
    with ctx:
        if family == "view":
            return _view(lib, t, other, kind, args)
        if family == "inplace":
            _inplace(lib, t, other, kind, args)
            return None
        return _outplace(lib, t, other, kind, args)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---- drawing a step from the shapes torch's pool has -------------------------------------------------------
def _draw_view(draw, shape, pool_shapes):
    n = len(shape)
    kinds = ["slice", "int", "view", "reshape", "view_as", "flatten", "unsqueeze", "squeeze", "narrow",
             "detach", "data", "expand", "unbind", "split", "chunk", "select", "permute", "contiguous"]
    if n >= 2:
        kinds += ["col", "transpose", "diagonal", "mT"]
    if n <= 2:
        kinds += ["t"]
    if n == 2:
        kinds += ["T"]
    kind = draw(st.sampled_from(kinds))
    dims = [d for d in range(n)]
    if n == 0 and kind in ("slice", "int", "narrow", "unbind", "split", "chunk", "select", "flatten", "permute"):
        kind = "view"
    if kind in ("int", "select", "narrow", "unbind", "split", "chunk", "slice"):
        dims = [d for d in range(n) if shape[d] > 0] or [0]
    d = draw(st.sampled_from(dims)) if dims else 0
    size = shape[d] if n else 1
    if (size == 0 and kind in ("int", "select")) or (kind == "col" and shape[1] == 0):
        kind = "view"
    if kind == "slice":
        lo = draw(st.integers(-size, size))
        return kind, (d, lo, draw(st.sampled_from([None, size, lo + 2, -1])), draw(st.sampled_from([1, 2, 3])))
    if kind in ("int", "select"):
        k = draw(st.integers(-size, size - 1))
        return kind, ((d, k, draw(st.sampled_from(["int", "np", "t0d"]))) if kind == "int" else (d, k))
    if kind == "col":
        return kind, (draw(st.integers(-shape[1], shape[1] - 1)),)
    if kind == "transpose":
        return kind, (draw(st.sampled_from(dims)), draw(st.sampled_from(dims)))
    if kind == "permute":
        return kind, (tuple(draw(st.permutations(list(range(n))))),)
    if kind in ("view", "reshape"):
        numel = int(np.prod(shape))
        choices = [tuple(shape), (-1,), (numel,), (1, numel), (numel, 1)]
        if numel % 2 == 0 and numel:
            choices += [(2, -1), (-1, 2)]
        return kind, (draw(st.sampled_from(choices)),)
    if kind == "view_as":
        same = [i for i, s in enumerate(pool_shapes) if int(np.prod(s)) == int(np.prod(shape))]
        return kind, ("other", draw(st.sampled_from(same)))
    if kind == "flatten":
        return kind, (d, draw(st.sampled_from(dims)) if dims else 0)
    if kind == "unsqueeze":
        return kind, (draw(st.integers(-n - 1, n)),)
    if kind == "squeeze":
        return kind, (draw(st.sampled_from([None] + dims)),)
    if kind == "diagonal":
        return kind, (draw(st.integers(-2, 2)), draw(st.sampled_from(dims)), draw(st.sampled_from(dims)))
    if kind == "narrow":
        start = draw(st.integers(0, size))
        return kind, (d, start, draw(st.integers(0, size - start)))
    if kind == "unbind":
        return kind, (d, draw(st.integers(0, max(size - 1, 0))))
    if kind in ("split", "chunk"):
        part = draw(st.integers(1, max(size, 1)))
        pieces = -(-size // part) if kind == "split" else len(range(0, size, -(-size // part))) if size else 1
        return kind, (d, part, draw(st.integers(0, max(pieces - 1, 0))))
    return kind, ()


def _draw_inplace(draw, shape):
    kinds = ["add_", "mul_", "iadd", "copy_", "zero_", "fill_", "clamp_", "sin_", "setitem", "masked_fill_"]
    if len(shape) >= 1 and shape[0] > 0:
        kinds.append("index_add_")
    kind = draw(st.sampled_from(kinds))
    if not shape and kind == "setitem":
        kind = "fill_"
    scalar = draw(st.sampled_from([2.0, -0.5, 1.5]))
    if kind in ("add_", "mul_", "iadd", "fill_"):
        return kind, (scalar,)
    if kind == "clamp_":
        return kind, (-0.3, 0.4)
    if kind == "masked_fill_":
        return kind, (draw(st.lists(st.booleans(), min_size=shape[-1], max_size=shape[-1])) if shape else True,
                      scalar)
    if kind == "index_add_":
        return kind, (draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=3)),)
    if kind == "setitem":
        if not shape or shape[0] == 0:
            return kind, ("slice", None, None, None, scalar)
        size = shape[0]
        how = draw(st.sampled_from(["int", "slice", "mask", "list"]))
        if how == "int":
            return kind, ("int", draw(st.integers(-size, size - 1)), scalar)
        if how == "slice":
            return kind, ("slice", draw(st.integers(0, size)), None, draw(st.sampled_from([1, 2])), scalar)
        if how == "mask":
            return kind, ("mask", draw(st.lists(st.booleans(), min_size=size, max_size=size)), scalar)
        return kind, ("list", draw(st.lists(st.integers(-size, size - 1), min_size=1, max_size=3, unique=True)),
                      scalar)
    return kind, ()


def _target_shape(kind, shape, args):
    """The shape a value written by this step must broadcast to (None: no tensor operand)."""
    if kind in ("add_", "mul_", "iadd", "copy_"):
        return tuple(shape)
    if kind == "index_add_":
        return (len(args[0]),) + tuple(shape[1:])
    if kind == "setitem":
        probe = np.zeros(shape)
        how = args[0]
        sel = (probe[args[1]] if how == "int" else probe[args[1]:args[2]:args[3]] if how == "slice"
               else probe[np.array(args[1], dtype=bool)] if how == "mask" else probe[list(args[1])])
        return sel.shape
    return None


def _broadcasts(src, dst):
    try:
        return np.broadcast_shapes(tuple(src), tuple(dst)) == tuple(dst)
    except ValueError:
        return False


def _draw_step(draw, shapes, readonly):
    family = draw(st.sampled_from(["view", "view", "inplace", "inplace", "outplace"]))
    src = draw(st.integers(0, len(shapes) - 1))
    shape = shapes[src]
    mode = draw(st.sampled_from([None, None, None, "no_grad", "data"]))
    oth = None
    if family == "view":
        kind, args = _draw_view(draw, shape, shapes)
        if args[:1] == ("other",):
            oth, args = args[1], ()
        return (kind, family, src, oth, args, mode)
    if family == "inplace":
        if src in readonly:
            src = draw(st.sampled_from([i for i in range(len(shapes)) if i not in readonly]))
            shape = shapes[src]
        kind, args = _draw_inplace(draw, shape)
        need = _target_shape(kind, shape, args)
        if need is not None:
            fits = [i for i, s in enumerate(shapes) if (s == need if kind == "index_add_" else _broadcasts(s, need))]
            if kind == "mul_":
                # y.mul_(y) gives the gradient in gt where torch's backward raises (MISSING.md, the row "Item
                # assignment and in-place methods on tensors in the graph": differs)
                fits = [i for i in fits if i != src]
            if fits and (kind in ("copy_", "index_add_") or draw(st.booleans())):
                oth = draw(st.sampled_from(fits))
            elif kind in ("copy_", "index_add_"):
                kind, args = "zero_", ()
        return (kind, family, src, oth, args, mode)
    kind = draw(st.sampled_from(["mul", "sin", "sum", "matmul"]))
    args = ()
    if kind == "sum":
        args = (draw(st.integers(-len(shape), len(shape) - 1)) if shape else None,)
    if kind == "mul" and draw(st.booleans()):
        fits = [i for i, s in enumerate(shapes) if _broadcasts(s, shape)]
        oth = draw(st.sampled_from(fits))
    elif kind == "mul":
        args = (draw(st.sampled_from([2.0, -1.5])),)
    return (kind, family, src, oth, args, mode)


# ---- running a program in one library ------------------------------------------------------------------------
def _start(lib, spec):
    """The pool a program starts from: (leaf requiring grad, plain tensor, leaf, leaf * 1)."""
    leaves, pool = [], []
    for i, (shape, role) in enumerate(spec):
        rng = np.random.default_rng(i + 7)
        t = lib.tensor(rng.standard_normal(shape), dtype=lib.float64, requires_grad=role != "plain")
        if role != "plain":
            leaves.append(t)
        pool.append(t * 1 if role == "nonleaf" else t)
    return leaves, pool


def _execute(lib, spec, steps):
    leaves, pool = _start(lib, spec)
    versions = [t._version for t in pool]
    # tensors from a view taken under no_grad: gt's requires_grad is False where torch's is True (MISSING.md,
    # the sixth differential pass's "Still different"; neither gives them a gradient)
    blind = [False] * len(pool)
    errors = []
    for step in steps:
        try:
            out = _run_step(lib, pool, step)
        except Exception as e:          # noqa: BLE001 - the class is what is compared
            errors.append(e)
            continue
        errors.append(None)
        kind, family, src, oth, _, mode = step
        if lib is torch and family == "inplace" and oth is not None and _reads_written(pool[src], pool[oth]):
            errors[-1] = _ReadsWritten()
        taint = blind[src] or (oth is not None and blind[oth]) or (family == "view" and mode == "no_grad")
        if out is not None:
            pool.append(out)
            versions.append(out._version)
            blind.append(taint)
        elif taint:
            blind[src] = True
    return leaves, pool, versions, errors, blind


def _grads(lib, leaves, pool, seed):
    rng = np.random.default_rng(seed)
    outs = [t for t in pool if t.requires_grad]
    weights = [rng.standard_normal(tuple(t.shape)) for t in pool]
    if not outs:
        return None
    try:
        loss = sum((t * lib.tensor(w, dtype=lib.float64)).sum() for t, w in zip(pool, weights) if t.requires_grad)
        grads = lib.autograd.grad(loss, leaves, allow_unused=True)
    except Exception as e:              # noqa: BLE001
        return e
    return [None if g is None else g.detach().numpy().copy() for g in grads]


def _layout_known(t):
    """Whether gt's ``is_contiguous()`` of ``t`` is torch's to compare: on one device, or over the mesh a
    sharded tensor whose blocks tell one device's strides (blocks of their own do not, and a copy gathered
    for a view across the blocks has a layout of its own: MISSING.md)."""
    if not _MESH:
        return True
    p = t._placed
    return p is not None and isinstance(p.placement, Shard) and logical_strides(p) is not None


def _numpy(t):
    return t.detach().numpy().copy()


def _draw_program(data):
    draw = data.draw
    roles = [draw(st.sampled_from(["leaf", "plain", "nonleaf"])) for _ in range(draw(st.integers(2, 3)))]
    roles[0] = "leaf"
    spec = [(draw(st.sampled_from(_SHAPES)), role) for role in roles]
    _, pool = _start(torch, spec)
    shapes = [tuple(t.shape) for t in pool]
    readonly = set()
    steps = []
    for _ in range(draw(st.integers(3, 8))):
        step = _draw_step(draw, shapes, readonly)
        steps.append(step)
        try:
            out = _run_step(torch, pool, step)
        except Exception:               # noqa: BLE001
            continue
        if out is not None:
            # writes through views of expand are refused in gt (MISSING.md, the row "Item assignment and
            # in-place methods...": "writes through views made by other ops")
            if step[0] == "expand" or step[1] == "view" and step[2] in readonly:
                readonly.add(len(pool))
            pool.append(out)
            shapes.append(tuple(out.shape))
    return spec, steps


class _ReadsWritten(Exception):
    """An in-place op whose operand lies in the written memory in another layout (``b.copy_(b[:, 2])``): torch's
    kernels read what they have written so far, gt the values of before (MISSING.md, the row "``as_strided``...":
    "an operand lying in the written memory in another layout ... is read as it was before the write")."""


def _reads_written(t, other):
    same = t.untyped_storage().data_ptr() == other.untyped_storage().data_ptr()
    return same and (t.shape, t.stride(), t.storage_offset()) != (other.shape, other.stride(), other.storage_offset())


def _MESH_REFUSAL(error):
    """gt's clear refusal of a write into a copy it makes of a view over the mesh (MISSING.md, the row "Item
    assignment and in-place methods...": "Refused with a clear error: over the mesh ...")."""
    return isinstance(error, RuntimeError) and "over the mesh" in str(error)


def _DOCUMENTED(message):
    return "returns multiple views" in message or "created in no_grad mode" in message


def _readable(t):
    """False for a piece of unbind/split/chunk whose base changed in place: torch refuses to read it, gt reads it
    (MISSING.md, the row "Item assignment and in-place methods...": in-place changes of split/chunk results are
    allowed in gt)."""
    try:
        t.requires_grad and t.grad_fn
    except RuntimeError as e:
        if _DOCUMENTED(str(e)):
            return False
        raise
    return True


def check_program(spec, steps, seed):
    tleaves, tpool, tver, terrs, blind = _execute(torch, spec, steps)
    documented = [i for i, e in enumerate(terrs)
                  if isinstance(e, _ReadsWritten) or e is not None and _DOCUMENTED(str(e))]
    if documented:
        # a documented difference at that step (torch refuses to read such a tensor, or reads what it wrote):
        # compare the program up to it
        steps = steps[:documented[0]]
        tleaves, tpool, tver, terrs, blind = _execute(torch, spec, steps)
    gleaves, gpool, gver, gerrs, _ = _execute(gt, spec, steps)
    refused = [i for i, (te, ge) in enumerate(zip(terrs, gerrs)) if te is None and _MESH_REFUSAL(ge)]
    if refused:
        steps = steps[:refused[0]]
        tleaves, tpool, tver, terrs, blind = _execute(torch, spec, steps)
        gleaves, gpool, gver, gerrs, _ = _execute(gt, spec, steps)
    for i, (te, ge) in enumerate(zip(terrs, gerrs)):
        te, ge = (None if e is None else type(e) for e in (te, ge))
        if te is None and ge is not None:
            raise AssertionError(f"step {i} {steps[i]}: torch computes; gt raises {ge.__name__}")
        if te is not None and ge is None:
            raise AssertionError(f"step {i} {steps[i]}: torch raises {te.__name__}; gt computes")
        if te is not None and not issubclass(ge, te):
            raise AssertionError(f"step {i} {steps[i]}: torch raises {te.__name__}; gt raises {ge.__name__}")
    assert len(gpool) == len(tpool)
    keep = [_readable(t) for t in tpool]
    tpool, gpool = [t for t, k in zip(tpool, keep) if k], [g for g, k in zip(gpool, keep) if k]
    tver, gver = [v for v, k in zip(tver, keep) if k], [v for v, k in zip(gver, keep) if k]
    blind = [b for b, k in zip(blind, keep) if k]
    for i, (g, t) in enumerate(zip(gpool, tpool)):
        what = f"tensor {i}"
        assert tuple(g.shape) == tuple(t.shape), f"{what}: shape {tuple(g.shape)}, torch {tuple(t.shape)}"
        np.testing.assert_allclose(_numpy(g), _numpy(t), rtol=1e-12, atol=1e-12, err_msg=what + " values")
        if not blind[i]:
            assert g.requires_grad == t.requires_grad, \
                f"{what}: requires_grad {g.requires_grad}, torch {t.requires_grad}"
            assert g.is_leaf == t.is_leaf, f"{what}: is_leaf {g.is_leaf}, torch {t.is_leaf}"
        if _layout_known(g):
            assert g.is_contiguous() == t.is_contiguous(), f"{what}: is_contiguous {g.is_contiguous()}, torch's not"
        if not _MESH:
            gd, td = g._version - gver[i], t._version - tver[i]
            assert (gd == 0) == (td == 0), f"{what}: _version changed by {gd}, torch {td}"
    tg, gg = _grads(torch, tleaves, tpool, seed), _grads(gt, gleaves, gpool, seed)
    if isinstance(tg, Exception) or isinstance(gg, Exception):
        assert type(tg) is not list and type(gg) is not list, f"backward: torch {tg!r}; gt {gg!r}"
        assert isinstance(gg, type(tg)), f"backward: torch {type(tg).__name__}: {tg}; gt {type(gg).__name__}: {gg}"
        return
    assert (tg is None) == (gg is None)
    for i, (g, t) in enumerate(zip(gg or (), tg or ())):
        assert (g is None) == (t is None), f"gradient of leaf {i}: gt {g is not None}, torch {t is not None}"
        if g is not None:
            np.testing.assert_allclose(g, t, rtol=1e-10, atol=1e-12, err_msg=f"gradient of leaf {i}")


_HUNT = _EXAMPLES > 0
_SETTINGS = settings(
    max_examples=_EXAMPLES or 200, deadline=None, derandomize=not _HUNT, database=None,
    phases=[Phase.generate] if _HUNT else [Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck))


@_SETTINGS
@given(data=st.data())
def test_view_program_matches_torch(data):
    spec, steps = _draw_program(data)
    seed = data.draw(st.integers(0, 2**31))
    try:
        check_program(spec, steps, seed)
    except AssertionError as e:
        if not _LOG:
            raise AssertionError(f"{e}\nprogram: start {spec}, steps {steps}") from None
        with open(_LOG, "a") as f:
            f.write(json.dumps({"spec": repr(spec), "steps": repr(steps), "seed": seed, "error": str(e)[:500],
                                "env": {k: v for k, v in os.environ.items() if k.startswith("GT_")}}) + "\n")
