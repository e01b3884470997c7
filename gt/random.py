"""``gt.random``: torch.random's module over gt's default generator.

``manual_seed``, ``seed``, ``initial_seed``, ``get_rng_state``, ``set_rng_state``,
``default_generator`` are gt's own (``gt.manual_seed`` and so on); ``fork_rng`` saves the
generator's state and restores it when its block ends::

    with gt.random.fork_rng():
        noise = gt.randn(3)          # draws here do not change the draws after the block

The state is gt's generator state (``gt.get_rng_state()``: a dict), not torch's ByteTensor.
"""

import contextlib

from gt.tensor import creation
from gt.tensor.runtime import default_generator, initial_seed, seed

__all__ = ["manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state", "fork_rng",
           "default_generator"]

_MIN, _MAX = -2 ** 63, 2 ** 64 - 1     # torch's range: a signed or unsigned 64-bit int


def manual_seed(seed):
    """Seed gt's generator and return it (``gt.random.default_generator``), as torch does. Any value
    ``int()`` takes in ``[-2**63, 2**64)``; negative seeds wrap modulo ``2**64``."""
    seed = int(seed)
    if not _MIN <= seed <= _MAX:
        raise ValueError(f"manual_seed: seed {seed} is out of range: expected an int in [-2**63, 2**64)"
                         " (torch: 'Overflow when unpacking long long')")
    return default_generator.manual_seed(seed)


def get_rng_state():
    """The state of gt's default generator (a dict; see ``gt.get_rng_state``)."""
    return creation.get_rng_state()


def set_rng_state(new_state):
    """Restore gt's default generator from a ``get_rng_state()`` value."""
    creation.set_rng_state(new_state)


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices", device_type="cuda"):
    """A block whose random draws leave gt's generator as it found it: its state is saved on
    entry and restored on exit (also on an exception). ``enabled=False`` does nothing.
    ``devices`` is accepted for torch's signature: gt keeps one generator for every device."""
    if not enabled:
        yield
        return
    state = creation.get_rng_state()
    try:
        yield
    finally:
        creation.set_rng_state(state)
