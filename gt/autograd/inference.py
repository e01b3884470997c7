"""torch's inference mode: ``with gt.inference_mode(): ...``, ``@gt.inference_mode`` or
``@gt.inference_mode()``. Inside it nothing is recorded (as ``gt.no_grad``) and every tensor made
reports ``is_inference()`` True; ``gt.is_inference_mode_enabled()`` tells whether it is on.
``inference_mode(False)`` turns it off inside an enclosing one (recording again, as torch).

Where gt differs from torch: an inference tensor is an ordinary tensor otherwise (torch refuses to
save one for a later backward or to change it in place outside inference mode; gt allows both), so
inference mode is exactly ``no_grad`` plus the flag.
"""

import functools

from gt.autograd import function

enabled = False   # read by gt/tensor/core.py each time a tensor is made


def is_inference_mode_enabled():
    """Whether a ``gt.inference_mode()`` block (with mode True) is running."""
    return enabled


class inference_mode:
    """Context manager and decorator: no recording, and tensors made inside are inference
    tensors (``mode=True``); ``mode=False`` turns an enclosing inference mode off."""

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
        global enabled
        self._saved.append((enabled, function.is_grad_enabled()))
        if self.mode:
            function.set_grad_enabled(False)
        elif enabled:
            function.set_grad_enabled(True)
        enabled = self.mode
        return self

    def __exit__(self, *exc):
        global enabled
        enabled, grad = self._saved.pop()
        function.set_grad_enabled(grad)
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with inference_mode(self.mode):
                return func(*args, **kwargs)

        return wrapper
