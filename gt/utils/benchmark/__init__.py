"""torch.utils.benchmark's timing tools at torch's path: ``Timer`` (measure a Python statement),
``Measurement`` (its times and statistics) and ``Compare`` (tables of many measurements), with
torch's statistics, text and tables (gt/utils/benchmark/common.py, timer.py, compare.py).

    >>> from gt.utils import benchmark
    >>> t = benchmark.Timer("x @ x", globals={"x": gt.randn(64, 64)}, label="matmul", num_threads=1)
    >>> benchmark.Compare([t.blocked_autorange(min_run_time=0.1)]).print()

Not in gt: C++ statements (``language="c++"``) and Callgrind instruction counts
(``collect_callgrind``), which raise NotImplementedError, and torch's input fuzzers.
"""

from gt.utils.benchmark.common import (Measurement, TaskSpec, ordered_unique, select_unit,  # noqa: F401
                                       set_torch_threads, trim_sigfig, unit_to_english)
from gt.utils.benchmark.compare import Colorize, Compare  # noqa: F401
from gt.utils.benchmark.timer import Language, Timer, timer  # noqa: F401

__all__ = ["Colorize", "Compare", "Language", "Measurement", "TaskSpec", "Timer", "ordered_unique", "select_unit",
           "set_torch_threads", "timer", "trim_sigfig", "unit_to_english"]
