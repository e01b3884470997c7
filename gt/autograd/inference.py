"""torch's inference mode: ``with gt.inference_mode(): ...``, ``@gt.inference_mode`` or
``@gt.inference_mode()``. Inside it nothing is recorded (as ``gt.no_grad``) and every tensor made
reports ``is_inference()`` True; ``gt.is_inference_mode_enabled()`` tells whether it is on.
``inference_mode(False)`` turns it off inside an enclosing one (recording again, as torch).

As torch's, outside inference mode an op recorded for backward that saves an inference tensor (or a
view of one) raises, and so does an in-place change of one or ``requires_grad_()``
(gt/autograd/inference_saved.py); its ``clone()`` is an ordinary tensor. Differs: ``_version`` of an
inference tensor counts (torch raises), and an in-place change refused leaves the values as they
were (torch writes them, then raises).
"""

import functools
import inspect

from gt.autograd import grad_mode

# This thread's inference mode is grad_mode.mode.inference (read by gt/tensor/core.py each time a
# tensor is made): per thread, as torch's.


def is_inference_mode_enabled():
    """Whether a ``gt.inference_mode()`` block (with mode True) is running in this thread."""
    return grad_mode.mode.inference


class inference_mode:
    """Context manager and decorator: no recording, and tensors made inside are inference
    tensors (``mode=True``); ``mode=False`` turns an enclosing inference mode off (and grad mode
    on, as torch's)."""

    def __new__(cls, mode=True):
        self = super().__new__(cls)
        if callable(mode):                       # the bare decorator: @gt.inference_mode
            self.__init__()
            return self(mode)
        return self

    def __init__(self, mode=True):
        if callable(mode):
            mode = True
        if not isinstance(mode, bool):
            raise TypeError(f"inference_mode: mode must be True or False, got {mode!r}")
        self.mode = mode
        self._saved = []

    def __enter__(self):
        m = grad_mode.mode
        self._saved.append((m.grad, m.inference, m.record))
        grad_mode.set_modes(not self.mode, self.mode)   # torch's InferenceMode(enabled): grad mode off inside
        return self

    def __exit__(self, *exc):
        grad_mode.set_modes(*self._saved.pop())
        return False

    def __call__(self, func):
        on = self.mode
        if inspect.isgeneratorfunction(func):
            return grad_mode.wrap_generator(lambda: inference_mode(on), func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with inference_mode(on):
                return func(*args, **kwargs)

        return wrapper
