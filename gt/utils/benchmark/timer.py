"""torch.utils.benchmark's ``Timer``: ``timeit.Timer`` made tensor-aware (the GPU is synchronised
around each timed block, gt's thread count is fixed for the run) and returning ``Measurement``s.

Python statements only: torch's ``language="c++"`` compiles the statement against libtorch, and
``collect_callgrind`` counts instructions under Valgrind; gt has neither, and refuses both with
NotImplementedError.
"""

import enum
import sys
import textwrap
import timeit as _timeit

from gt.backend import B
from gt.utils.benchmark import common

__all__ = ["Timer", "timer", "Language"]


def timer():
    """``timeit.default_timer`` after waiting for queued GPU work (where gt computes on CUDA)."""
    if B.cuda_device_count():
        import torch   # only the torch engine computes on CUDA, and torch is loaded then

        torch.cuda.synchronize()
    return _timeit.default_timer()


_SYNCHRONIZED_TIMER = timer


class Language(enum.Enum):
    PYTHON = 0
    CPP = 1


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what}: expected a positive int, got {value!r}")


def _positive_number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{what}: expected a positive number of seconds, got {value!r}")


def _snippet(code):
    code = textwrap.dedent(code)
    return (code[1:] if code and code[0] == "\n" else code).rstrip()


class Timer:
    """Measure Python statements as torch's ``Timer`` does: ``stmt`` run after ``setup`` in
    ``globals`` (``gt`` is there unless given), with gt's math library on ``num_threads``
    threads during the measurement (restored after). ``label``, ``sub_label``, ``description``
    and ``env`` label the results for ``Compare`` (rows, columns and tables).

    ``timeit(number)`` runs one block of ``number`` runs (after a warm-up);
    ``blocked_autorange`` picks a block size whose timer overhead is negligible and repeats
    blocks for at least ``min_run_time`` seconds; ``adaptive_autorange`` repeats until the spread
    (IQR / median) is under ``threshold`` or ``max_run_time`` has passed. ``repeat`` and
    ``autorange`` raise NotImplementedError, as torch's (see ``blocked_autorange``).
    """

    _timer_cls = _timeit.Timer

    def __init__(self, stmt="pass", setup="pass", global_setup="", timer=timer, globals=None, label=None,
                 sub_label=None, description=None, env=None, num_threads=1, language=Language.PYTHON):
        if not isinstance(stmt, str):
            raise ValueError("Currently only a `str` stmt is supported.")
        if language in (Language.CPP, "cpp", "c++"):
            raise NotImplementedError(f"Timer(language={language!r}): gt times Python statements only (torch "
                                      "compiles C++ statements against libtorch, which gt does not have)")
        if language not in (Language.PYTHON, "py", "python"):
            raise ValueError(f"Invalid language `{language}`.")
        if global_setup:
            raise ValueError(f"global_setup is C++ only, got `{global_setup}`. Most likely this code can simply "
                             "be moved to `setup`.")
        _positive_int(num_threads, "Timer(num_threads=...)")
        if not callable(timer):
            raise TypeError(f"Timer(timer=...): expected a callable returning seconds, got {timer!r}")
        if timer is _SYNCHRONIZED_TIMER and not B.cuda_device_count():
            # nothing to wait for: the plain clock (asking torch for GPUs took ~0.4 ms a reading)
            timer = _timeit.default_timer
        # a copy: exec adds __builtins__, and the caller's dict stays as it was
        self._globals = dict(globals or {})
        # the package is loaded before any of its modules runs, so this is gt itself
        self._globals.setdefault("gt", sys.modules["gt"])
        self._language = Language.PYTHON
        stmt, setup = _snippet(stmt), _snippet(setup)
        self._timer = self._timer_cls(stmt=stmt, setup=setup, timer=timer, globals=self._globals)
        self._task_spec = common.TaskSpec(stmt=stmt, setup=setup, global_setup=global_setup, label=label,
                                          sub_label=sub_label, description=description, env=env,
                                          num_threads=num_threads)

    def _timeit(self, number):
        # no statement takes under a nanosecond; this also keeps a median from being 0
        return max(self._timer.timeit(number), 1e-9)

    def timeit(self, number=1000000):
        """One block of ``number`` runs (``timeit.Timer.timeit``), after a warm-up of
        ``number // 100`` runs (at least 2), as a ``Measurement`` of one time."""
        _positive_int(number, "Timer.timeit(number)")
        with common.set_torch_threads(self._task_spec.num_threads):
            self._timeit(number=max(number // 100, 2))
            return common.Measurement(number_per_run=number, raw_times=[self._timeit(number=number)],
                                      task_spec=self._task_spec)

    def repeat(self, repeat=-1, number=-1):
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def autorange(self, callback=None):
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def _measurement_loop(self, number, stop_hook, min_run_time, max_run_time=None, callback=None):
        total_time, can_stop, times = 0.0, False, []
        with common.set_torch_threads(self._task_spec.num_threads):
            while total_time < min_run_time or not can_stop:
                time_spent = self._timeit(number)
                times.append(time_spent)
                total_time += time_spent
                if callback:
                    callback(number, time_spent)
                can_stop = stop_hook(times)
                if max_run_time and total_time > max_run_time:
                    break
        return times

    def _estimate_block_size(self, min_run_time):
        """The smallest power of 10 of runs per block whose timer overhead is under 0.01% of the
        block and that lasts a thousandth of ``min_run_time`` (torch's rule; also the warm-up)."""
        with common.set_torch_threads(self._task_spec.num_threads):
            overhead = sorted(self._timeit(0) for _ in range(5))[2]
            number = 1
            while True:
                time_taken = self._timeit(number)
                if overhead / time_taken <= 1e-4 and time_taken >= min_run_time / 1000:
                    break
                if time_taken > min_run_time or number * 10 > 2147483647:
                    break
                number *= 10
        return number

    def blocked_autorange(self, callback=None, min_run_time=0.2):
        """Blocks of a size whose timer overhead is negligible, repeated for at least
        ``min_run_time`` seconds; ``callback(number, seconds)`` is called after each block."""
        _positive_number(min_run_time, "Timer.blocked_autorange(min_run_time=...)")
        number = self._estimate_block_size(min_run_time)
        times = self._measurement_loop(number, lambda times: True, min_run_time=min_run_time, callback=callback)
        return common.Measurement(number_per_run=number, raw_times=times, task_spec=self._task_spec)

    def adaptive_autorange(self, threshold=0.1, *, min_run_time=0.01, max_run_time=10.0, callback=None):
        """Like ``blocked_autorange``, but after ``min_run_time`` seconds and more than 3 blocks it
        stops only once IQR / median is under ``threshold``, or after ``max_run_time`` seconds."""
        _positive_number(threshold, "Timer.adaptive_autorange(threshold=...)")
        _positive_number(min_run_time, "Timer.adaptive_autorange(min_run_time=...)")
        _positive_number(max_run_time, "Timer.adaptive_autorange(max_run_time=...)")
        number = self._estimate_block_size(min_run_time=0.05)

        def stop_hook(times):
            return len(times) > 3 and common.Measurement(
                number_per_run=number, raw_times=times, task_spec=self._task_spec).meets_confidence(threshold)

        times = self._measurement_loop(number, stop_hook, min_run_time, max_run_time, callback=callback)
        return common.Measurement(number_per_run=number, raw_times=times, task_spec=self._task_spec)

    def collect_callgrind(self, number=100, *, repeats=None, collect_baseline=True, retain_out_file=False):
        """Not in gt: torch runs the statement under Valgrind's Callgrind in a child process."""
        raise NotImplementedError("Timer.collect_callgrind: gt has no Callgrind instruction counting (torch "
                                  "runs the statement under Valgrind in a separate process); time it with "
                                  "blocked_autorange() or adaptive_autorange() instead")
