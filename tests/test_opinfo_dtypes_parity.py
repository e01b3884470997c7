"""gt against torch 2.13 over torch's op test table (``op_db``) in the dtypes the first table
(tests/test_opinfo_parity.py) leaves out: complex64, complex128, uint8, int8 and int16.

Each case is one OpInfo: its first sample in each of these dtypes that it takes (function and
method variants), run as the first table runs its own (the same conversion to gt, comparison of values,
dtypes, shapes and named-tuple fields; complex64 to float32's tolerance, complex128 to float64's)
and, for complex inputs that require grad, the gradients of the real loss
``Re(sum(outputs * fixed random complex cotangents))``: torch's conjugate convention, which gt
follows (``dL/dx + i dL/dy``).

A wider run (every sample of every mapped op in these dtypes, 37,700 per engine, on the numpy and
torch engines, and the first samples with GT_DEVICES=4) found, beyond the differences below and
those the first table lists (its SKIP reasons apply here too), only these on later samples:
``linalg.pinv.singular``'s gradient at rank-deficient inputs (MISSING.md gt.linalg: torch's for
full-rank inputs only); an ill-conditioned complex64 ``linalg.lstsq`` gradient (1e-3 apart: pinv
against QR); ``svd``'s singular vectors of complex inputs (each one's phase is not unique);
``cov`` with float32 aweights of a complex128 input (torch rounds its normalizer in float32, 4e-8
apart); places where torch 2.13 is wrong or imprecise and gt is not: its complex64 gradient of
``logsumexp`` of a 0-d input near 1e6 (0.9997+0.0226j where the exact answer is 1; gt 1+5e-9j),
NaN gradients of complex64 ``renorm(p=inf)`` (complex128 and gt: finite), no gradient for a
complex ``istft`` window (gt's agrees with finite differences of torch's forward), a zero
``ldexp`` gradient for negative integer exponents; gt's exact ``polygamma`` at non-positive
integers on the numpy engine (DIFFERS below) on later samples too; torch's wrapping intermediates (DIFFERS below) also in uint8 ``softmin(dtype=)``
(torch negates first: ``-x`` is ``256 - x``) and one int8 ``cumulative_trapezoid``; ``gather`` with an empty uint8 index (torch ignores its dtype, gt refuses a uint8
index); complex ``logcumsumexp`` whose imaginary part is 4*pi from torch's at one element (two
logarithms of one number).

CI's first pass runs every case; the later passes run a spread: every other op here, of which
tests/conftest.py's stride for torch's tables keeps every 3rd (torch engine) or 8th (each GT_DEVICES pass).
"""

import os
import warnings

import pytest

from helpers import torch_test_fn_from_frames  # noqa: F401 - the fixture, used by every test below
from test_opinfo_parity import SKIP, _full, _name, check_op, gt_function, gt_method, op_db, torch

# table: the later passes run a spread of it (tests/conftest.py)
pytestmark = [pytest.mark.table, pytest.mark.usefixtures("torch_test_fn_from_frames")]

NEW_DTYPES = (torch.complex64, torch.complex128, torch.uint8, torch.int8, torch.int16)
_FIRST_PASS = (os.environ.get("GT_DEVICES", "").strip() in ("", "1")
               and os.environ.get("GT_BACKEND", "").strip().lower() in ("", "numpy"))

# ---- known differences ------------------------------------------------------------------------
# The first table's SKIP reasons hold here too (its strict xfails are skipped here: their first
# samples in these dtypes may agree). Below, the dtypes of an op not compared, with why:
# op -> (dtypes, reason). Those of the ops in DIFFERS_STRICT differ on every engine and mesh, and
# the test fails if they come to agree with torch; the rest differ on one engine only.
_WRAPS = ("torch computes in uint8, whose intermediates wrap ({}); gt's values are exact (MISSING.md small "
          "int dtypes: gt gives exact values where torch's small-int intermediates overflow)")
DIFFERS = {
    "nn.functional.margin_ranking_loss": ({torch.uint8}, _WRAPS.format("-target * (x1 - x2) + margin")),
    "nn.functional.triplet_margin_loss": ({torch.uint8}, _WRAPS.format("the differences x1 - x2")),
    "nn.functional.triplet_margin_with_distance_loss": ({torch.uint8}, _WRAPS.format("the differences x1 - x2")),
    "nn.functional.pairwise_distance": ({torch.uint8}, _WRAPS.format("the differences x1 - x2")),
    "trapz": ({torch.uint8}, _WRAPS.format("the differences of x")),
    "trapezoid": ({torch.uint8}, _WRAPS.format("the differences of x")),
    "cumulative_trapezoid": ({torch.uint8}, _WRAPS.format("the differences of x")),
}
DIFFERS_STRICT = set(DIFFERS)
# numpy engine: scipy's exact values at the poles (MISSING.md gt.special); the torch engine gives torch's
for _name_ in ["polygamma.polygamma_n_" + str(n) for n in range(5)] + ["special.polygamma.special_polygamma_n_0"]:
    DIFFERS[_name_] = ({torch.int8, torch.int16}, "polygamma at non-positive integers: gt's numpy engine gives "
                                                  "scipy's inf (exact), torch 1e13-1e15 (MISSING.md gt.special)")


def _cases():
    cases = []
    for op in op_db:
        if (gt_function(op) is None and gt_method(op) is None) or not _dtypes(op):
            continue
        full = _full(op)
        reason = SKIP.get(full)
        cases.append(pytest.param(op, id=full, marks=[pytest.mark.skip(reason=reason)] if reason else []))
    # the later passes: every other op, before tests/conftest.py's stride
    return cases if _FIRST_PASS else cases[1::2]


def _dtypes(op):
    return [dtype for dtype in NEW_DTYPES if op.supports_dtype(dtype, "cpu")]


@pytest.mark.parametrize("op", _cases())
def test_samples_match_torch(op):
    """op's first sample in each new dtype it takes matches torch's, but for its known differences
    (DIFFERS), which must still differ where they are strict (DIFFERS_STRICT)."""
    full = _full(op)
    known = DIFFERS.get(full, ((), ""))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert check_op(op, samples=1, dtypes=[d for d in _dtypes(op) if d not in known]) == []
        for dtype in known if full in DIFFERS_STRICT else ():
            assert check_op(op, samples=1, dtypes=(dtype,)) != [], \
                f"{full} in {_name(dtype)} now agrees with torch: take it out of DIFFERS ({DIFFERS[full][1]})"
