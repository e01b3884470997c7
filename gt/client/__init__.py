"""Compatibility path for code written against the public gt: ``from gt.client import nn``."""

from gt import nn, optim  # noqa: F401
