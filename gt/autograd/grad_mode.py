"""Grad mode and inference mode, per thread as in torch: ``no_grad``, ``enable_grad``,
``set_grad_enabled``, ``set_multithreading_enabled`` (gt/autograd/inference.py builds
``inference_mode`` on the same state; gt/autograd/__init__.py puts it at this path too, as torch's
``torch.autograd.grad_mode.inference_mode``).

A thread another one started in ``no_grad`` still records, and a new thread starts with grad
mode on and inference mode off (torch's thread-local autograd state). ``Function.apply`` reads
``mode.record`` on every op: one attribute of a ``threading.local``, kept up to date by every
change of the two modes, so that the hot path asks one question, not two.
"""

import functools
import inspect
import sys
import threading


class _Mode(threading.local):
    """This thread's modes; the class attributes are what a new thread starts with."""

    grad = True          # torch.is_grad_enabled()
    inference = False    # inside inference_mode(True)
    record = True        # grad and not inference: whether ops are recorded
    multithreading = True   # set_multithreading_enabled's flag (gt's backward never uses threads)
    level = 0            # the innermost gt.func transform's level (gt/autograd/levels.py), 0 outside
    level_inputs = frozenset()   # the ids of the tensors that level's function was called with
    # that level's refusal of a captured tensor changed in place by a mapped value (vmap's: a callable of the
    # tensor written, the op and the captured tensor, giving torch's text; None: the derivative transforms')
    level_refusal = None
    derivative = None    # under a vmap level: the innermost derivative transform's (level, ids of its inputs)
    level_kind = None    # "forward" (jvp, jacfwd), "linearize", or None (reverse mode, vmap): levels.py
    forwards = 0         # how many of the levels are forward ones (level_kind set), inner or outer
    level_callers = None     # linearize's level: {id of an input: the caller's tensor} (levels.caller_of)
    layers = 0           # how many of the levels are torch's functorch layers (refusing requires_grad_())
    tags = False         # inference or level: new tensors are stamped (gt/tensor/core.py)


mode = _Mode()


def set_modes(grad, inference, record=None):
    """Set this thread's grad and inference modes (the recording flag follows both, unless given:
    restoring one saved with them, gt/autograd/inference.py)."""
    m = mode
    m.grad, m.inference = grad, inference
    m.record = grad and not inference if record is None else record
    m.tags = inference or bool(m.level)


def is_grad_enabled():
    """Whether ops are recorded now, in this thread: the question gt's own ops and layers ask
    (``gt.autograd.is_grad_enabled``). False inside ``inference_mode``, also under an
    ``enable_grad`` there, where nothing is recorded; ``gt.is_grad_enabled`` is torch's flag."""
    return mode.record


def grad_mode_enabled():
    """``torch.is_grad_enabled()`` (``gt.is_grad_enabled``): this thread's grad mode, as
    ``no_grad``, ``enable_grad``, ``set_grad_enabled`` and ``inference_mode`` set it. True inside
    ``inference_mode`` under ``enable_grad``, as torch's, where nothing is recorded all the same."""
    return mode.grad


def wrap_generator(scope, func):
    """A generator function like ``func`` whose every step (start, ``send``, ``throw``,
    ``close``) runs inside a new ``scope()`` (a context manager), as torch wraps one that
    ``no_grad`` or ``inference_mode`` decorates: the mode holds wherever the caller iterates."""

    @functools.wraps(func)
    def generator_context(*args, **kwargs):
        gen = func(*args, **kwargs)
        try:
            with scope():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with scope():
                        gen.close()
                    raise
                except BaseException as exc:      # thrown in by the caller: passed on inside the mode
                    with scope():
                        response = gen.throw(exc)
                else:
                    with scope():
                        response = gen.send(request)
        except StopIteration as stop:
            return stop.value

    return generator_context


class set_grad_enabled:
    """Turn gradient recording on or off, as torch does: called on its own it takes effect at
    once (``gt.set_grad_enabled(False)``); as a context manager it restores the previous mode
    on exit; as a decorator it applies to each call of the function only (to each step of a
    generator function)."""

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self.prev = _grad()
        self._saved = []  # one entry per active `with`, so one instance may be entered re-entrantly
        self.prev_record = _record()
        if type(self) is set_grad_enabled:  # no_grad / enable_grad act only when entered
            _set_grad(self.mode, _caller_module())

    def __enter__(self):
        # set_grad_enabled captured the mode before switching it in __init__
        first = type(self) is set_grad_enabled and not self._saved
        self._saved.append((self.prev, self.prev_record) if first else (_grad(), mode.record))
        _set_grad(self.mode, _caller_module())
        return self

    def __exit__(self, *exc):
        mode.grad, mode.record = self._saved.pop()
        return False

    def __call__(self, func):
        if type(self) is set_grad_enabled:
            mode.grad, mode.record = self.prev, self.prev_record  # decorating a function does not switch the mode now
        on = self.mode
        where = getattr(func, "__module__", None)
        if inspect.isgeneratorfunction(func):     # (each step's mode is set for func's module, not this one)
            return wrap_generator(lambda: _GradScope(on, where), func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            m = mode
            prev = m.grad, m.record
            _set_grad(on, where)
            try:
                return func(*args, **kwargs)
            finally:
                m.grad, m.record = prev

        return wrapper


class _GradScope:
    """Grad mode ``on`` while inside, switched for the code of module ``where`` (``_set_grad``): a
    step of a generator function that ``no_grad`` or ``enable_grad`` decorates."""

    def __init__(self, on, where):
        self.on, self.where = on, where

    def __enter__(self):
        self.prev = mode.grad, mode.record
        _set_grad(self.on, self.where)

    def __exit__(self, *exc):
        mode.grad, mode.record = self.prev
        return False


def _grad():
    return mode.grad


def _record():
    return mode.record


def _set_grad(on, where=None):
    m = mode
    m.grad = on
    m.record = on and not m.inference
    # torch's forward mode ignores grad mode: inside jvp, jacfwd or linearize (at any depth: also in the
    # function of a grad nested in one) the tangents ride on the tape, so a no_grad of the user's function
    # still records; what it makes is a constant for the reverse transforms' walks (gt/func/constants.py).
    # gt's own code (``where``: the module that switched the mode) keeps no_grad's meaning: not differentiated.
    if not on and m.forwards and not m.inference and not _is_gt(where):
        m.record = True


def _caller_module():
    """The module of the code that called the caller (a ``with no_grad()`` or ``set_grad_enabled(False)``);
    looked up only inside a forward transform, where it matters (``_set_grad``)."""
    if not mode.forwards:
        return None
    return sys._getframe(2).f_globals.get("__name__")


def _is_gt(module):
    return module is None or module == "gt" or module.startswith("gt.")


class _BareDecorator:
    """Also usable as a bare decorator (``@gt.no_grad``, ``@gt.enable_grad``), as torch's."""

    def __new__(cls, func=None):
        self = super().__new__(cls)
        if callable(func):
            self.__init__()
            return self(func)
        return self


class no_grad(_BareDecorator, set_grad_enabled):
    """Record nothing on the tape: ``with gt.no_grad(): ...``, ``@gt.no_grad()`` or ``@gt.no_grad``."""

    def __init__(self, func=None):
        super().__init__(False)


class enable_grad(_BareDecorator, set_grad_enabled):
    """Turn recording back on inside a ``no_grad`` region (context manager or decorator, with or
    without parentheses). Inside ``inference_mode`` nothing is recorded all the same (torch's)."""

    def __init__(self, func=None):
        super().__init__(True)


class set_multithreading_enabled:
    """torch's switch for running backward on per-device worker threads (``mode=False``: on the
    calling thread). gt's backward always runs on the calling thread, so the switch changes
    nothing; it is kept per thread and restored as torch's: set on the call, put back on leaving
    a ``with`` block; as a decorator each call of the function runs inside a fresh one."""

    def __init__(self, mode):
        self.prev = _mode_multithreading()   # (the argument's name, torch's, hides the module's ``mode``)
        _set_mode_multithreading(bool(mode))
        self.mode = mode

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        _set_mode_multithreading(self.prev)

    def clone(self):
        return self.__class__(self.mode)

    def __call__(self, func):
        if inspect.isgeneratorfunction(func):
            return wrap_generator(self.clone, func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.clone():
                return func(*args, **kwargs)

        return wrapper


def _mode_multithreading():
    return mode.multithreading


def _set_mode_multithreading(on):
    mode.multithreading = on
