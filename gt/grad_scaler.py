"""``gt.amp.GradScaler``: torch.amp's loss scaling, step for step.

    >>> scaler = gt.amp.GradScaler("cpu")
    >>> for x, y in data:
    ...     optimizer.zero_grad()
    ...     scaler.scale(loss_fn(model(x), y)).backward()
    ...     scaler.unscale_(optimizer)                 # optional: clip the true gradients here
    ...     scaler.step(optimizer)                     # skipped when a gradient holds inf/NaN
    ...     scaler.update()                            # backoff after a skip, growth after a streak

The loss is multiplied by the scale (a float32 value, ``2.**16`` to start); the gradients are
multiplied by its float32 reciprocal before the step. A step whose scaled gradients hold an inf
or NaN is skipped and the scale multiplied by ``backoff_factor``; after ``growth_interval``
steps in a row without one it is multiplied by ``growth_factor`` (unless that overflows). The
scale, the growth tracker and the state dict follow ``torch.amp.GradScaler`` exactly.

As torch does, ``GradScaler("cuda")`` in a process without a CUDA device warns and disables
itself (then ``scale`` returns its input, ``step`` is the optimizer's own step, the rest does
nothing); ``GradScaler("cpu")`` is enabled.
"""

import warnings
from collections import abc, defaultdict
from enum import Enum

import numpy as np

from gt import autograd, dtypes
from gt.backend import B
from gt.tensor.core import Tensor

__all__ = ["GradScaler", "OptState"]


class OptState(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _refresh_per_optimizer_state():
    return {"stage": OptState.READY, "found_inf_per_device": {}}


def _f32(x):
    """``x`` rounded to float32, as torch keeps the scale in a float32 tensor."""
    return float(np.float32(x))


class GradScaler:
    """Dynamic loss scaling (torch.amp.GradScaler).

    Args:
        device (str): ``"cuda"`` (default; disabled with a warning when the process has no CUDA
            device) or ``"cpu"``.
        init_scale (float): the first scale, ``2.**16``.
        growth_factor (float): > 1, multiplies the scale after ``growth_interval`` good steps.
        backoff_factor (float): < 1, multiplies the scale after a step with inf/NaN gradients.
        growth_interval (int): the good steps in a row that grow the scale, 2000.
        enabled (bool): False makes every method a no-op (``step`` is the optimizer's step).
    """

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        self._device = device.type if hasattr(device, "type") and not isinstance(device, str) else device
        self._enabled = enabled
        if self._device == "cuda" and enabled and B.cuda_device_count() == 0:
            warnings.warn("gt.amp.GradScaler is enabled, but CUDA is not available.  Disabling.", stacklevel=2)
            self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
            self._init_scale = init_scale
            self._scale = None                # a float32 value once ``scale`` has run (torch: a 0-d tensor)
            self._growth_factor = growth_factor
            self._backoff_factor = backoff_factor
            self._growth_interval = growth_interval
            self._init_growth_tracker = 0
            self._growth_tracker = None
            self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    def _check_scale_growth_tracker(self, funcname):
        fix = "This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration."
        if self._scale is None:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  " + fix)
        if self._growth_tracker is None:
            raise AssertionError(f"Attempted {funcname} but _growth_tracker is None.  " + fix)

    def _lazy_init(self):
        self._scale = _f32(self._init_scale)
        self._growth_tracker = int(np.int32(self._init_growth_tracker))

    def scale(self, outputs):
        """``outputs`` (a tensor, or a list/tuple/iterable of them, nested) times the scale; the
        same structure back (a map object for other iterables, as torch). Unchanged when disabled."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._lazy_init()
            return outputs * self._scale

        def apply_scale(val):
            if isinstance(val, Tensor):
                if self._scale is None:
                    self._lazy_init()
                return val * self._scale
            if isinstance(val, abc.Iterable):
                iterable = map(apply_scale, val)
                if isinstance(val, (list, tuple)):
                    return type(val)(iterable)
                return iterable
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")

        return apply_scale(outputs)

    def _unscale_grads_(self, optimizer, inv_scale, allow_fp16):
        """Multiply every gradient of ``optimizer`` by ``inv_scale`` in place; whether any held an
        inf or NaN (checked before the product, as torch's kernel does)."""
        found_inf = 0.0
        with autograd.no_grad():
            for group in optimizer.param_groups:
                for param in group["params"]:
                    if not isinstance(param, Tensor):
                        raise AssertionError(f"expected param to be gt.Tensor, got {type(param).__name__}")
                    grad = param.grad
                    if grad is None:
                        continue
                    if not allow_fp16 and grad.dtype == dtypes.float16:
                        raise ValueError("Attempting to unscale FP16 gradients.")
                    if not bool(grad.isfinite().all().item()):
                        found_inf = 1.0
                    if inv_scale != 1.0:
                        grad.mul_(inv_scale)
        return {"cpu": found_inf}

    def unscale_(self, optimizer):
        """Divide ``optimizer``'s gradients by the scale, in place (once per step; ``step`` calls
        it when you have not). RuntimeError on a second call before ``update``."""
        if not self._enabled:
            return
        self._check_scale_growth_tracker("unscale_")
        optimizer_state = self._per_optimizer_states[id(optimizer)]
        if optimizer_state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        elif optimizer_state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv_scale = _f32(1.0 / self._scale)       # torch: scale.double().reciprocal().float()
        optimizer_state["found_inf_per_device"] = self._unscale_grads_(optimizer, inv_scale, False)
        optimizer_state["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale (unless ``unscale_`` ran) and run ``optimizer.step(*args, **kwargs)`` unless a
        gradient holds an inf or NaN; returns what the optimizer's step returned (None when skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale_growth_tracker("step")
        optimizer_state = self._per_optimizer_states[id(optimizer)]
        if optimizer_state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if optimizer_state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        if len(optimizer_state["found_inf_per_device"]) == 0:
            raise AssertionError("No inf checks were recorded for this optimizer.")
        retval = None
        if not sum(optimizer_state["found_inf_per_device"].values()):
            retval = optimizer.step(*args, **kwargs)
        optimizer_state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale=None):
        """Back off after a skipped step, grow after ``growth_interval`` good ones; or set the
        scale to ``new_scale`` (a float, or a 0-d tensor without grad)."""
        if not self._enabled:
            return
        self._check_scale_growth_tracker("update")
        if new_scale is not None:
            if isinstance(new_scale, float):
                self._scale = _f32(new_scale)
            else:
                reason = ("new_scale should be a float or a 1-element gt.Tensor (float32) "
                          "with requires_grad=False.")
                if not isinstance(new_scale, Tensor):
                    raise AssertionError(reason)
                if new_scale.device.type != self._device:
                    raise AssertionError(reason)
                if new_scale.numel() != 1:
                    raise AssertionError(reason)
                if new_scale.requires_grad is True:
                    raise AssertionError(reason)
                if new_scale.dim() != 0:       # torch copies it into its 0-d scale tensor
                    raise RuntimeError(f"output with shape [] doesn't match the broadcast shape "
                                       f"{list(new_scale.shape)}: new_scale must be a 0-d tensor")
                self._scale = _f32(new_scale.item())
        else:
            found_infs = [found_inf for state in self._per_optimizer_states.values()
                          for found_inf in state["found_inf_per_device"].values()]
            if len(found_infs) == 0:
                raise AssertionError("No inf checks were recorded prior to update.")
            # torch._amp_update_scale_: float32 scale, int32 tracker
            if sum(found_infs):
                self._scale = _f32(self._scale * self._backoff_factor)
                self._growth_tracker = 0
            else:
                successful = self._growth_tracker + 1
                if successful == self._growth_interval:
                    with np.errstate(over="ignore"):
                        grown = np.float32(self._scale * self._growth_factor)
                    if np.isfinite(grown):
                        self._scale = float(grown)
                    self._growth_tracker = 0
                else:
                    self._growth_tracker = successful
        self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    def get_scale(self):
        """The current scale as a Python float (1.0 when disabled)."""
        if self._enabled:
            return self._init_scale if self._scale is None else self._scale
        return 1.0

    def get_growth_factor(self):
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        self._growth_factor = new_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        self._backoff_factor = new_factor

    def get_growth_interval(self):
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        self._growth_interval = new_interval

    def _get_growth_tracker(self):
        if self._enabled:
            return self._init_growth_tracker if self._growth_tracker is None else self._growth_tracker
        return 0

    def is_enabled(self):
        return self._enabled

    def state_dict(self):
        """``scale``, ``growth_factor``, ``backoff_factor``, ``growth_interval``, ``_growth_tracker``
        (an empty dict when disabled), as torch."""
        if self._enabled:
            return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                    "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                    "_growth_tracker": self._get_growth_tracker()}
        return {}

    def load_state_dict(self, state_dict):
        """Restore a ``state_dict()``; RuntimeError on an empty one (saved from a disabled scaler)."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._init_scale = state_dict["scale"]
        if self._scale is not None:
            self._scale = _f32(state_dict["scale"])
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        self._init_growth_tracker = state_dict["_growth_tracker"]
        if self._growth_tracker is not None:
            self._growth_tracker = int(state_dict["_growth_tracker"])

    def __getstate__(self):
        state = self.__dict__.copy()
        if self._enabled:
            if len(self._per_optimizer_states) != 0:
                raise AssertionError("A GradScaler instance may only be pickled at the beginning "
                                     "of an iteration, or at the end after scaler.update().")
            state["_init_scale"] = self.get_scale()
            state["_init_growth_tracker"] = self._get_growth_tracker()
            state["_scale"] = None
            state["_growth_tracker"] = None
            state["_per_optimizer_states"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self._enabled:
            self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)


class CudaGradScaler(GradScaler):
    """``gt.cuda.amp.GradScaler``: torch's deprecated spelling of ``gt.amp.GradScaler("cuda", ...)``
    (the same arguments without ``device``; a FutureWarning, as torch)."""

    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                 enabled=True):
        warnings.warn("`gt.cuda.amp.GradScaler(args...)` is deprecated. "
                      "Please use `gt.amp.GradScaler('cuda', args...)` instead.", FutureWarning, stacklevel=2)
        super().__init__("cuda", init_scale=init_scale, growth_factor=growth_factor,
                         backoff_factor=backoff_factor, growth_interval=growth_interval, enabled=enabled)
