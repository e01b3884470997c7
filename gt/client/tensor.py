"""Compatibility path for code written against the public gt, whose tests and examples import
``from gt.client.tensor import from_numpy, randn, zeros``. The same objects as ``gt.*``."""

from gt.tensor import (Tensor, arange, empty, eye, from_numpy, full, full_like, linspace, ones,  # noqa: F401
                       ones_like, rand, randint, randn, randperm, tensor, zeros, zeros_like)
