"""Random generators as objects (torch's ``torch.Generator``): ``gt.Generator()``, seeded with
``manual_seed``, passed as ``generator=`` to ``gt.randn``/``rand``/``randint``/``randperm``/
``multinomial``, the in-place fills (``normal_``, ``uniform_``...), ``nn.init``, the samplers,
``random_split`` and ``DataLoader``: draws from it leave gt's default generator
(``gt.manual_seed``) where it was, and two generators seeded alike give the same draws.

A generator holds the state of the engines' host generator (numpy's PCG64: both engines draw
from it, gt/backend/torch_engine.py); a call with ``generator=`` draws from that state in place
of the default one (``drawing``) and keeps where it ended. The draws are gt's, not torch's bits.
``gt.default_generator`` (gt/tensor/runtime.py) is the default generator itself, as torch's.
"""

import contextlib
import os

from gt.backend import B
from gt.devices import as_device

_TORCH_DEFAULT_SEED = 67280421310721   # what a fresh torch.Generator() reports as its initial seed


class Generator:
    """A random generator of its own (``torch.Generator``). A new one starts from torch's default
    seed (67280421310721), so two fresh generators give the same draws.

        >>> g = gt.Generator().manual_seed(0)
        >>> a = gt.randn(3, generator=g)
    """

    is_default = False    # gt.default_generator (gt/tensor/runtime.py) draws as no generator does

    def __init__(self, device="cpu"):
        dev = as_device(device, "Generator(device)")
        if dev.type != "cpu":
            # gt draws every random number on the host (both engines), then places it
            raise RuntimeError(f"Generator(device={str(dev)!r}): gt's generators live on the CPU (every draw is made "
                               "there, then placed); use Generator() or Generator('cpu')")
        self.device = dev
        self.manual_seed(_TORCH_DEFAULT_SEED)

    def manual_seed(self, seed):
        """Restart from ``seed`` (an int, as torch takes: negative ones are taken modulo 2**64); returns self."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise RuntimeError(f"manual_seed expected a long, but got {type(seed).__name__} ({seed!r})")
        if not -(2 ** 63) <= seed < 2 ** 64:
            raise ValueError(f"Overflow when unpacking long long: seed {seed} is outside [-2**63, 2**64)")
        seed %= 2 ** 64
        with _kept_default():
            B.manual_seed(seed)
            self._state = B.get_rng_state()
        self._seed = seed
        return self

    def seed(self):
        """Restart from a seed drawn from the operating system's entropy; returns that seed."""
        value = int.from_bytes(os.urandom(8), "little") >> 1
        self.manual_seed(value)
        return value

    def initial_seed(self):
        """The seed of the last ``manual_seed``/``seed``."""
        return self._seed

    def get_state(self):
        """The generator's state (a dict: gt's ``get_rng_state`` form, not torch's byte tensor)."""
        return with_seed(_copy(self._state), self._seed)

    def set_state(self, state):
        """Continue from a state ``get_state`` (or ``gt.get_rng_state``) gave; returns self.
        ``initial_seed()`` then gives the state's seed, as torch's."""
        with _kept_default():
            B.set_rng_state(state)          # checks it
            self._state = B.get_rng_state()
        self._seed = seed_of(state, self._seed)
        return self

    def clone_state(self):
        """A new generator in this one's state (torch 2.13's ``Generator.clone_state``)."""
        return Generator(self.device).set_state(self.get_state())

    def __repr__(self):
        return f"<gt.Generator(device='{self.device}') seed={self._seed}>"


def with_seed(state, seed):
    """``state`` holding its generator's seed too (torch's states carry theirs)."""
    if seed is not None:
        state["seed"] = seed
    return state


def seed_of(state, default):
    """The seed a ``with_seed`` state holds, or ``default`` (a state saved without one)."""
    seed = state.get("seed") if isinstance(state, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2 ** 64 else default


def _copy(state):
    return {k: (_copy(v) if isinstance(v, dict) else v) for k, v in state.items()}


@contextlib.contextmanager
def _kept_default():
    saved = B.get_rng_state()
    try:
        yield
    finally:
        B.set_rng_state(saved)


def check(generator, who):
    """``generator`` if it is None or a ``gt.Generator``, else a TypeError that says so."""
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"{who}: generator must be a gt.Generator or None, got {type(generator).__name__}")
    return generator


@contextlib.contextmanager
def drawing(generator, who="generator"):
    """Draws made inside come from ``generator`` (None: the default generator), which keeps where
    they ended; the default generator is left where it was."""
    check(generator, who)
    if generator is None or generator.is_default:
        yield
        return
    saved = B.get_rng_state()
    B.set_rng_state(generator._state)
    try:
        yield
    finally:
        generator._state = B.get_rng_state()
        B.set_rng_state(saved)


def accepts_generator(fn):
    """Give a drawing function torch's ``generator=`` keyword (see ``drawing``)."""
    import functools

    @functools.wraps(fn)
    def draw(*args, generator=None, **kwargs):
        with drawing(generator, f"{fn.__name__}()"):
            return fn(*args, **kwargs)
    return draw
