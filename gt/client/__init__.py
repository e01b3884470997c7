"""Compatibility path for code written against the public gt: ``from gt.client import nn`` and
``from gt.client.tensor import from_numpy, randn, zeros`` give gt's own modules and functions."""

from gt import nn, optim  # noqa: F401
from gt.client import tensor  # noqa: F401
