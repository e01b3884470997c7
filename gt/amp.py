"""Mixed precision: ``gt.autocast("bfloat16")`` runs matrix products in bfloat16 (or float16).

    >>> with gt.autocast("bfloat16"):        # the torch engine (GT_BACKEND=torch)
    ...     loss = loss_fn(model(x), y)
    >>> loss.backward()                        # outside: the backward repeats the forward's choice

Inside the block, every ``matmul``, ``Linear``, ``einsum`` contraction, convolution (transposed
too) and the attention's two products take float32 inputs in bfloat16 and accumulate in float32;
their backward products do the same (torch.autocast's CPU list, less ``prelu`` and
``linalg.vecdot``: elementwise work that rounding would not speed up). Everything else stays
float32: parameters, gradients, the optimizer's state, reductions (softmax, layer norm, losses,
sums), and the products that torch.autocast leaves in float32 (``mv``, ``addmv``, and those gt
builds other ops from: adaptive average pooling, antialiased resizing). float64 inputs are never
lowered. Half-precision inputs of torch's "fp32" ops (the losses, ``prod``, ``cdist``...) are
computed in float32 (``runs_in_float32``); ``index_copy`` of float32 and the autocast dtype
answers float32. ``gt.autocast("float16")`` (torch 2.13 allows it on the CPU too) lowers to
float16. ``custom_fwd``/``custom_bwd`` are torch.amp's decorators for custom Functions.

One difference from ``torch.autocast``: a product's *result* is handed on in float32, not
bfloat16. Tensors keep the dtype the user gave them, so the same model code works with and
without autocast, on every engine and every device; the price is that activations are stored in
float32 (no memory saving), while the products, where the time goes, run in bfloat16. ``Linear``
and the composed attention round each input once and keep those bfloat16 copies for their
backward (as torch.autocast keeps its casts: a weight's copy, half its bytes, lives until the
backward), so each of their products reads inputs rounded once.

The numpy engine has no bfloat16 arithmetic (and no BLAS for float16), so autocast there is a
clear error rather than a silent float32 run.
"""

import functools
import inspect
import warnings

from gt import dtypes
from gt.backend import B

_LOW = {"bfloat16": dtypes.bfloat16, "bf16": dtypes.bfloat16, "float16": dtypes.float16, "fp16": dtypes.float16,
        "half": dtypes.float16}
_active = []          # the dtypes of the open autocast blocks, innermost last (None: disabled)
# torch's autocast state outside the blocks' own dtypes: the dtype set_autocast_dtype chose (read
# where no enabled block names one), whether casts are cached, and how deep the blocks nest
_state = {"dtype": dtypes.bfloat16, "cache": True, "nesting": 0}


def _check_engine(dtype):
    if not B.supports_bfloat16:
        # the numpy engine: no bfloat16 at all, and float16 products without BLAS
        raise RuntimeError(
            f"gt.autocast('{dtype.name}') needs an engine with fast {dtype.name} products; the {B.name} engine "
            "has none. Use the torch engine: GT_BACKEND=torch (pip install 'lpm[torch]')")


_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "meta")     # torch.autocast's first argument


def _form(*names):
    return inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d)
                              for n, d in names])


_GT_FORM = _form(("dtype", "bfloat16"), ("enabled", True))
_TORCH_FORM = _form(("device_type", inspect.Parameter.empty), ("dtype", None), ("enabled", True),
                    ("cache_enabled", None))


class autocast:
    """``with gt.autocast("bfloat16"): ...`` (also a decorator). ``enabled=False`` turns it off
    inside an enclosing block. The dtype may be ``"bfloat16"``, ``"bf16"``, ``gt.bfloat16``, or
    ``"float16"`` (``"fp16"``, ``"half"``, ``gt.float16``). torch's form works too:
    ``gt.autocast("cpu", dtype=gt.bfloat16)`` (a device type first). The products run where gt's
    engine runs them, so the device type is accepted and unused, and the dtype defaults to
    ``get_autocast_dtype`` (bfloat16 unless ``set_autocast_dtype`` changed it: torch's CPU default;
    its CUDA default is float16); ``cache_enabled`` is only recorded for ``is_autocast_cache_enabled``
    (each op rounds its inputs once; a weight read by two ops is rounded twice)."""

    def __init__(self, *args, **kwargs):
        torch_form = bool(args) and isinstance(args[0], str) and args[0].split(":")[0] in _DEVICE_TYPES
        try:
            bound = (_TORCH_FORM if torch_form or "device_type" in kwargs else _GT_FORM).bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"gt.autocast: {e} (gt's form: autocast(dtype='bfloat16', enabled=True); torch's: "
                            "autocast(device_type, dtype=None, enabled=True, cache_enabled=None))") from None
        bound.apply_defaults()
        # torch's form without a dtype takes the one set_autocast_dtype chose, read now as torch reads it
        dtype = bound.arguments["dtype"] or (_state["dtype"] if torch_form or "device_type" in kwargs else "bfloat16")
        enabled = bound.arguments["enabled"]
        name = dtype.name if isinstance(dtype, dtypes.DType) else dtype
        if not isinstance(name, str) or name.lower() not in _LOW:
            raise ValueError(f"gt.autocast: unsupported dtype {dtype!r}; expected 'bfloat16' (gt.bfloat16) or "
                             "'float16' (gt.float16)")
        if not isinstance(enabled, bool):
            raise TypeError(f"gt.autocast: enabled must be True or False, got {enabled!r}")
        self.dtype, self.enabled = _LOW[name.lower()], enabled
        cache = bound.arguments.get("cache_enabled")
        if cache is not None and not isinstance(cache, bool):
            raise TypeError(f"gt.autocast: cache_enabled must be True, False or None, got {cache!r}")
        self.cache_enabled = _state["cache"] if cache is None else cache

    def __enter__(self):
        if self.enabled:
            _check_engine(self.dtype)
        self._prev = _state["dtype"], _state["cache"]
        # torch's block sets the dtype state (a disabled one too) that set_autocast_enabled turns on with
        _state["dtype"], _state["cache"] = self.dtype, self.cache_enabled
        _active.append(self.dtype if self.enabled else None)
        _state["nesting"] += 1
        return self

    def __exit__(self, *exc):
        _active.pop()
        _state["nesting"] -= 1
        _state["dtype"], _state["cache"] = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with autocast(self.dtype, self.enabled):
                return fn(*args, **kwargs)
        return wrapped


def is_autocast_enabled(device_type=None):
    """Whether an autocast block is open and enabled. gt has one autocast state for every device,
    so ``device_type`` (torch's argument: ``"cpu"``, ``"cuda"``) is checked and unused."""
    if device_type is not None:
        _device(device_type)
    return bool(_active) and _active[-1] is not None


def get_autocast_dtype(device_type):
    """The dtype autocast lowers products to (torch's ``get_autocast_dtype``): the innermost
    block's (a disabled one's too, as torch's), else the one ``set_autocast_dtype`` chose
    (bfloat16 unless changed)."""
    _device(device_type)
    return _state["dtype"]


def _device(device_type):
    if not isinstance(device_type, str) or device_type not in _DEVICE_TYPES:
        raise RuntimeError(f"unsupported autocast device_type '{device_type}'")


def set_autocast_enabled(device_type, enabled=None):
    """Turn autocast on or off until the enclosing ``autocast`` block ends (or for good outside
    any), as torch's ``set_autocast_enabled(device_type, enabled)``; turning it on uses
    ``get_autocast_dtype``. The one-argument form ``set_autocast_enabled(enabled)`` is torch's
    older CUDA spelling; gt has one state for every device."""
    if enabled is None:
        device_type, enabled = "cuda", device_type
    _device(device_type)
    if not isinstance(enabled, bool):
        raise TypeError(f"set_autocast_enabled(): argument 'enabled' must be bool, not {type(enabled).__name__}")
    low = get_autocast_dtype(device_type)
    if enabled:
        _check_engine(low)
    if not _active:
        _active.append(None)   # the state outside every block: it stays at the bottom of the stack
    _active[-1] = low if enabled else None


def set_autocast_dtype(device_type, dtype):
    """The dtype autocast lowers products to from now on, until the enclosing block ends
    (torch's ``set_autocast_dtype``): ``gt.bfloat16`` or ``gt.float16``."""
    _device(device_type)
    name = dtype.name if isinstance(dtype, dtypes.DType) else getattr(dtype, "name", None) or str(dtype)
    low = _LOW.get(name.replace("torch.", "").lower())
    if low is None:
        raise ValueError(f"set_autocast_dtype: unsupported dtype {dtype!r}; gt's autocast lowers to gt.bfloat16 "
                         "or gt.float16")
    _state["dtype"] = low
    if _active and _active[-1] is not None:
        _active[-1] = low


def _deprecated(old, new):
    warnings.warn(f"torch.{old} is deprecated. Please use torch.{new} instead.", DeprecationWarning, stacklevel=3)


def is_autocast_cpu_enabled():
    """Deprecated in torch: ``is_autocast_enabled("cpu")``."""
    _deprecated("is_autocast_cpu_enabled()", "is_autocast_enabled('cpu')")
    return is_autocast_enabled("cpu")


def set_autocast_cpu_enabled(enabled):
    """Deprecated in torch: ``set_autocast_enabled("cpu", enabled)``."""
    _deprecated("set_autocast_cpu_enabled(enabled)", "set_autocast_enabled('cpu', enabled)")
    set_autocast_enabled("cpu", enabled)


def get_autocast_cpu_dtype():
    """Deprecated in torch: ``get_autocast_dtype("cpu")``."""
    _deprecated("get_autocast_cpu_dtype()", "get_autocast_dtype('cpu')")
    return get_autocast_dtype("cpu")


def set_autocast_cpu_dtype(dtype):
    """Deprecated in torch: ``set_autocast_dtype("cpu", dtype)``."""
    _deprecated("set_autocast_cpu_dtype(dtype)", "set_autocast_dtype('cpu', dtype)")
    set_autocast_dtype("cpu", dtype)


def get_autocast_gpu_dtype():
    """Deprecated in torch: ``get_autocast_dtype("cuda")`` (gt's one autocast dtype)."""
    _deprecated("get_autocast_gpu_dtype()", "get_autocast_dtype('cuda')")
    return get_autocast_dtype("cuda")


def set_autocast_gpu_dtype(dtype):
    """Deprecated in torch: ``set_autocast_dtype("cuda", dtype)``."""
    _deprecated("set_autocast_gpu_dtype(dtype)", "set_autocast_dtype('cuda', dtype)")
    set_autocast_dtype("cuda", dtype)


def is_autocast_cache_enabled():
    """Whether autocast may cache its casts (torch's flag; gt rounds each op's inputs once and
    keeps no cache, so the flag is recorded only)."""
    return _state["cache"]


def set_autocast_cache_enabled(enabled):
    """Record torch's cache flag (``is_autocast_cache_enabled`` reads it back)."""
    if not isinstance(enabled, bool):
        raise TypeError(f"set_autocast_cache_enabled(): argument must be bool, not {type(enabled).__name__}")
    _state["cache"] = enabled


def clear_autocast_cache():
    """torch empties its cache of casts here; gt keeps none, so there is nothing to clear."""


def autocast_increment_nesting():
    """One more level of autocast nesting (torch's counter, which each block moves); the new depth."""
    _state["nesting"] += 1
    return _state["nesting"]


def autocast_decrement_nesting():
    """One level less of autocast nesting; the new depth."""
    _state["nesting"] -= 1
    return _state["nesting"]


class exact:
    """``with amp.exact(): ...``: products inside run in their inputs' dtype, autocast or not. For
    ops that torch.autocast leaves in float32 and gt builds from products (``mv``, adaptive
    average pooling, antialiased resizing), so that their values stay torch's."""

    def __enter__(self):
        _active.append(None)
        return self

    def __exit__(self, *exc):
        _active.pop()
        return False


def _to_float32(value):
    return value.to(dtypes.float32) if getattr(value, "dtype", None) in dtypes.HALVES else value


def runs_in_float32(fn):
    """torch.autocast's "fp32" ops (the losses, ``prod``, ``trace``, ``cdist``, ``quantile``, the
    3-d pools, ``grid_sample``): inside an enabled block, their float16 and bfloat16 tensor
    arguments are cast to float32 first (differentiably), so that they compute and answer in
    float32 as torch's do."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        if _active and _active[-1] is not None:
            args = tuple(_to_float32(a) for a in args)
            kwargs = {k: _to_float32(v) for k, v in kwargs.items()}
        return fn(*args, **kwargs)
    return call


def promote_dtype(*tensors):
    """The dtype torch.autocast's "promote" ops (``index_copy``) cast to: float32 when a block is
    open and the operands are float32 and the autocast dtype, else None (their own rule)."""
    low = _active[-1] if _active else None
    if low is not None and {getattr(t, "dtype", None) for t in tensors} == {dtypes.float32, low}:
        return dtypes.float32
    return None


def cast_dtype(*arrays):
    """The dtype a convolution of ``arrays`` runs in under the current autocast: the autocast dtype
    when a block is open and every input is float32 or already in that dtype (torch casts each
    input of a convolution, so a float32 weight meets a bfloat16 input there), else None."""
    if not _active or _active[-1] is None:
        return None
    return cast_dtype_of(*(None if a is None else B.dtype_of(a) for a in arrays))


def cast_dtype_of(*kinds):
    """``cast_dtype`` for operands of the dtypes ``kinds`` (None: no operand)."""
    low = _active[-1] if _active else None
    if low is not None and all(k is None or k in (dtypes.float32, low) for k in kinds):
        return low
    return None


def matmul_dtype(*arrays):
    """The dtype a product of ``arrays`` runs in under the current autocast: bfloat16 when a
    block is open and every input is float32, else None (the inputs' own dtype)."""
    if not _active or _active[-1] is None:
        return None
    if all(a is None or B.dtype_of(a) == dtypes.float32 for a in arrays):
        return _active[-1]
    return None


def _cast(value, device_type, dtype):
    """``value`` with its float tensors on ``device_type`` (float64 aside) cast to ``dtype``,
    through lists, tuples and dicts (torch.amp's rule for ``custom_fwd(cast_inputs=)``)."""
    if hasattr(value, "is_floating_point") and hasattr(value, "dtype"):
        eligible = (value.is_floating_point() and value.dtype != dtypes.float64
                    and getattr(value.device, "type", None) == device_type)
        return value.to(dtype) if eligible else value
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, dict):
        return {_cast(k, device_type, dtype): _cast(v, device_type, dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, device_type, dtype) for v in value)
    return value


def _device_type(fn, device_type):
    if not isinstance(device_type, str):
        raise ValueError(f"{fn}: expected `device_type` of type `str`, got: `{type(device_type)}`")


def custom_fwd(fwd=None, *, device_type, cast_inputs=None):
    """torch.amp's decorator for a custom ``autograd.Function``'s ``forward``: it records whether
    autocast was on (``custom_bwd`` runs the backward the same way); with ``cast_inputs`` (a
    dtype) and autocast on, the forward runs with autocast off and its float inputs cast to it."""
    _device_type("custom_fwd", device_type)
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        args[0]._dtype = get_autocast_dtype(device_type)
        on = is_autocast_enabled(device_type)
        args[0]._fwd_used_autocast = on and cast_inputs is None
        if cast_inputs is None or not on:
            return fwd(*args, **kwargs)
        with autocast(device_type=device_type, enabled=False):
            return fwd(*_cast(args, device_type, cast_inputs), **_cast(kwargs, device_type, cast_inputs))
    return decorate_fwd


def custom_bwd(bwd=None, *, device_type):
    """torch.amp's decorator for a custom ``autograd.Function``'s ``backward``: it runs under the
    autocast state (on or off, and the dtype) that ``custom_fwd`` recorded for the forward."""
    _device_type("custom_bwd", device_type)
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        with autocast(device_type=device_type, enabled=args[0]._fwd_used_autocast, dtype=args[0]._dtype):
            return bwd(*args, **kwargs)
    return decorate_bwd
