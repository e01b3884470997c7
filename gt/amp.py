"""Mixed precision: ``gt.autocast("bfloat16")`` runs matrix products in bfloat16.

    >>> with gt.autocast("bfloat16"):        # the torch engine (GT_BACKEND=torch)
    ...     loss = loss_fn(model(x), y)
    >>> loss.backward()                        # outside: the backward repeats the forward's choice

Inside the block, every ``matmul``, ``Linear`` and the attention's two products take float32
inputs in bfloat16 and accumulate in float32; their backward products do the same. Everything
else stays float32: parameters, gradients, the optimizer's state, reductions (softmax, layer
norm, losses, sums). float64 inputs are never lowered.

One difference from ``torch.autocast``: a product's *result* is handed on in float32, not
bfloat16. Tensors keep the dtype the user gave them, so the same model code works with and
without autocast, on every engine and every device; the price is that activations are stored in
float32 (no memory saving), while the products, where the time goes, run in bfloat16. ``Linear``
and the composed attention round each input once and keep those bfloat16 copies for their
backward (as torch.autocast keeps its casts: a weight's copy, half its bytes, lives until the
backward), so each of their products reads inputs rounded once.

The numpy engine has no bfloat16 arithmetic, so autocast there is a clear error rather than a
silent float32 run.
"""

import functools
import inspect

from gt import dtypes
from gt.backend import B

_LOW = {"bfloat16": dtypes.bfloat16, "bf16": dtypes.bfloat16}
_active = []          # the dtypes of the open autocast blocks, innermost last (None: disabled)


_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "meta")     # torch.autocast's first argument


def _form(*names):
    return inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d)
                              for n, d in names])


_GT_FORM = _form(("dtype", "bfloat16"), ("enabled", True))
_TORCH_FORM = _form(("device_type", inspect.Parameter.empty), ("dtype", None), ("enabled", True),
                    ("cache_enabled", None))


class autocast:
    """``with gt.autocast("bfloat16"): ...`` (also a decorator). ``enabled=False`` turns it off
    inside an enclosing block. The dtype may be ``"bfloat16"``, ``"bf16"`` or ``gt.bfloat16``.
    torch's form works too: ``gt.autocast("cpu", dtype=gt.bfloat16)`` (a device type first). The
    products run where gt's engine runs them, so the device type is accepted and unused, and the
    dtype defaults to bfloat16, the one gt has (torch's CUDA default is float16, which gt refuses
    by name); ``cache_enabled`` is accepted and unused."""

    def __init__(self, *args, **kwargs):
        torch_form = bool(args) and isinstance(args[0], str) and args[0].split(":")[0] in _DEVICE_TYPES
        try:
            bound = (_TORCH_FORM if torch_form or "device_type" in kwargs else _GT_FORM).bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"gt.autocast: {e} (gt's form: autocast(dtype='bfloat16', enabled=True); torch's: "
                            "autocast(device_type, dtype=None, enabled=True, cache_enabled=None))") from None
        bound.apply_defaults()
        dtype, enabled = bound.arguments["dtype"] or "bfloat16", bound.arguments["enabled"]
        name = dtype.name if isinstance(dtype, dtypes.DType) else dtype
        if not isinstance(name, str) or name.lower() not in _LOW:
            raise ValueError(f"gt.autocast: unsupported dtype {dtype!r}; expected 'bfloat16' (gt.bfloat16)")
        if not isinstance(enabled, bool):
            raise TypeError(f"gt.autocast: enabled must be True or False, got {enabled!r}")
        self.dtype, self.enabled = _LOW[name.lower()], enabled

    def __enter__(self):
        if self.enabled:
            if not B.supports_bfloat16:
                raise RuntimeError(
                    f"gt.autocast('bfloat16') needs an engine with bfloat16 arithmetic; the {B.name} engine "
                    "has none. Use the torch engine: GT_BACKEND=torch (pip install 'lpm[torch]')")
        _active.append(self.dtype if self.enabled else None)
        return self

    def __exit__(self, *exc):
        _active.pop()
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
    if device_type is not None and (not isinstance(device_type, str) or device_type not in _DEVICE_TYPES):
        raise RuntimeError(f"unsupported autocast device_type '{device_type}'")
    return bool(_active) and _active[-1] is not None


def get_autocast_dtype(device_type):
    """The dtype autocast lowers products to (torch's ``get_autocast_dtype``): gt's is bfloat16."""
    if not isinstance(device_type, str) or device_type not in _DEVICE_TYPES:
        raise RuntimeError(f"unsupported autocast device_type '{device_type}'")
    return dtypes.bfloat16


def matmul_dtype(*arrays):
    """The dtype a product of ``arrays`` runs in under the current autocast: bfloat16 when a
    block is open and every input is float32, else None (the inputs' own dtype)."""
    if not _active or _active[-1] is None:
        return None
    if all(a is None or B.dtype_of(a) == dtypes.float32 for a in arrays):
        return _active[-1]
    return None
