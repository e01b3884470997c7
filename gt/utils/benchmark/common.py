"""torch.utils.benchmark's records: ``TaskSpec`` (what a ``Timer`` runs) and ``Measurement``
(what it measured), with torch's statistics and text.

The statistics are torch's, computed the same way on the same raw times: the median and the
quartiles interpolate linearly between sorted times (``torch.quantile``'s default), and the
figures that torch computes in float32 (the spread behind ``significant_figures``, the decimal
logarithms that pick a unit, ``trim_sigfig``'s rounding) are rounded to float32 here too, so that
``Compare`` trims and lays out the same digits as torch.
"""

import collections
import contextlib
import dataclasses
import math
import textwrap

from gt.backend import get_num_threads, set_num_threads, threads_adapting
from gt.dtypes import round_float32 as _f32

__all__ = ["TaskSpec", "Measurement", "select_unit", "unit_to_english", "trim_sigfig", "ordered_unique",
           "set_torch_threads"]

_MAX_SIGNIFICANT_FIGURES = 4
_MIN_CONFIDENCE_INTERVAL = 25e-9  # 25 ns
# a spread (IQR / median) above these adds a warning to a Measurement
_IQR_WARN_THRESHOLD = 0.1
_IQR_GROSS_WARN_THRESHOLD = 0.25


def _log10_f32(x):
    """torch's ``tensor(x).log10()`` in its default dtype (float32)."""
    x = _f32(x)
    return _f32(math.log10(x)) if x > 0 else (-math.inf if x == 0 else math.nan)


def _quantile(sorted_values, q):
    """``torch.quantile(values, q)`` (linear interpolation) of float64 values, bit for bit."""
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b, w = sorted_values[lo], sorted_values[hi], pos - lo
    return a + w * (b - a) if w < 0.5 else b - (b - a) * (1 - w)   # torch's lerp


@dataclasses.dataclass(init=True, repr=False, eq=True, frozen=True)
class TaskSpec:
    """What a ``Timer`` runs and how its results are labelled (all but its globals)."""

    stmt: str
    setup: str
    global_setup: str = ""
    label: str = None
    sub_label: str = None
    description: str = None
    env: str = None
    num_threads: int = 1

    @property
    def title(self):
        """Best-effort label: ``label`` (else ``stmt``), with ``sub_label`` after a colon."""
        if self.label is not None:
            return self.label + (f": {self.sub_label}" if self.sub_label else "")
        if "\n" not in self.stmt:
            return self.stmt + (f": {self.sub_label}" if self.sub_label else "")
        return f"stmt:{f' ({self.sub_label})' if self.sub_label else ''}\n{textwrap.indent(self.stmt, '  ')}"

    def setup_str(self):
        """The setup as a repr shows it (nothing for ``pass``)."""
        if self.setup == "pass" or not self.setup:
            return ""
        return f"setup:\n{textwrap.indent(self.setup, '  ')}" if "\n" in self.setup else f"setup: {self.setup}"

    def summarize(self):
        """The title, description and setup lines of a Measurement's repr."""
        sections = [self.title, self.description or "", self.setup_str()]
        return "\n".join(f"{i}\n" if "\n" in i else i for i in sections if i)


_TASKSPEC_FIELDS = tuple(f.name for f in dataclasses.fields(TaskSpec))


@dataclasses.dataclass(init=True, repr=False)
class Measurement:
    """The result of a ``Timer`` measurement: ``raw_times`` (seconds per block of
    ``number_per_run`` runs) and the statistics torch derives from them, per run (``times``,
    ``median``, ``mean``, ``iqr``, ``significant_figures``, ``has_warnings``). The task's fields
    (``stmt``, ``label``, ``num_threads``, ...) read through. ``env`` is the task's env, None when
    unset: torch's property means to say ``"Unspecified env"`` but reads a misspelt attribute and
    falls back to the task's field, so None is what torch answers."""

    number_per_run: int
    raw_times: list
    task_spec: TaskSpec
    metadata: dict = None  # reserved for user payloads

    def __post_init__(self):
        self._sorted_times = ()
        self._warnings = ()
        self._median = self._mean = self._p25 = self._p75 = -1.0

    def __getattr__(self, name):
        if name in _TASKSPEC_FIELDS:
            return getattr(self.task_spec, name)
        return super().__getattribute__(name)

    @property
    def times(self):
        """Seconds per run of each block."""
        return [t / self.number_per_run for t in self.raw_times]

    @property
    def median(self):
        self._lazy_init()
        return self._median

    @property
    def mean(self):
        self._lazy_init()
        return self._mean

    @property
    def iqr(self):
        """The interquartile range (75th minus 25th percentile), seconds per run."""
        self._lazy_init()
        return self._p75 - self._p25

    @property
    def significant_figures(self):
        """torch's rough estimate of the median's precision, from the spread of the interquartile
        times (z = 1.645), between 1 and 4; what ``Compare.trim_significant_figures`` keeps."""
        self._lazy_init()
        n_total = len(self._sorted_times)
        points = [_f32(t) for t in self._sorted_times[n_total // 4:math.ceil(3 * n_total / 4)]]
        mean = sum(points) / len(points)
        std = _f32(math.sqrt(sum((p - mean) ** 2 for p in points) / len(points)))
        ci = max(1.645 * std / _f32(math.sqrt(len(points))), _MIN_CONFIDENCE_INTERVAL)
        figures = math.floor(_log10_f32(self._median / ci))
        return min(max(figures, 1), _MAX_SIGNIFICANT_FIGURES)

    @property
    def has_warnings(self):
        """Whether the spread (IQR / median) is over 10%, a sign of noise (see the repr)."""
        self._lazy_init()
        return bool(self._warnings)

    def _lazy_init(self):
        if not self.raw_times or self._sorted_times:
            return
        self._sorted_times = tuple(sorted(self.times))
        values = [float(t) for t in self._sorted_times]
        self._median = _quantile(values, 0.5)
        self._mean = math.fsum(values) / len(values)
        self._p25, self._p75 = _quantile(values, 0.25), _quantile(values, 0.75)
        if not self.meets_confidence(_IQR_GROSS_WARN_THRESHOLD):
            self._add_warning("This suggests significant environmental influence.")
        elif not self.meets_confidence(_IQR_WARN_THRESHOLD):
            self._add_warning("This could indicate system fluctuation.")

    def _add_warning(self, msg):
        rel_iqr = self.iqr / self.median * 100
        self._warnings += (f"  WARNING: Interquartile range is {rel_iqr:.1f}% "
                           f"of the median measurement.\n           {msg}",)

    def meets_confidence(self, threshold=_IQR_WARN_THRESHOLD):
        """Whether IQR / median is under ``threshold``."""
        return self.iqr / self.median < threshold

    @property
    def title(self):
        return self.task_spec.title

    @property
    def env(self):
        return self.task_spec.env

    @property
    def as_row_name(self):
        return self.sub_label or self.stmt or "[Unknown]"

    def __repr__(self):
        self._lazy_init()
        skip = "MEASUREMENT_REPR_SKIP_LINE"
        n = len(self._sorted_times)
        unit, scale = select_unit(self._median)
        threads = self.num_threads
        lines = [
            super().__repr__(),
            self.task_spec.summarize(),
            f"  {'Median: ' if n > 1 else ''}{self._median / scale:.2f} {unit}",
            f"  {'' if n >= 4 else skip}IQR:    {self.iqr / scale:.2f} {unit} "
            f"({self._p25 / scale:.2f} to {self._p75 / scale:.2f})",
            f"  {n} measurement{'s' if n > 1 else ''}, {self.number_per_run} runs "
            f"{'per measurement,' if n > 1 else ','} {threads} thread{'s' if threads > 1 else ''}",
            "\n".join(self._warnings),
        ]
        text = "\n".join(lines).strip()
        return "\n".join(line for line in text.splitlines() if skip not in line)

    @staticmethod
    def merge(measurements):
        """Replicates of the same task (equal ``task_spec``) joined into one Measurement each, in
        first-seen order: times per run (``number_per_run=1``), metadata dropped."""
        groups = collections.defaultdict(list)
        for m in measurements:
            groups[m.task_spec].append(m)
        return [Measurement(number_per_run=1, raw_times=[t for m in group for t in m.times], task_spec=spec,
                            metadata=None) for spec, group in groups.items()]


def select_unit(t):
    """``(unit, seconds per unit)`` that show ``t`` seconds with a few leading digits."""
    unit = {-3: "ns", -2: "us", -1: "ms"}.get(int(_log10_f32(t) // 3), "s")
    return unit, {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1}[unit]


def unit_to_english(u):
    return {"ns": "nanosecond", "us": "microsecond", "ms": "millisecond", "s": "second"}[u]


def trim_sigfig(x, n):
    """``x`` rounded to ``n`` significant figures (3.14159, 2 -> 3.1), in float32 as torch's."""
    if n != int(n):
        raise AssertionError("Number of significant figures must be an integer")
    magnitude = math.ceil(_log10_f32(abs(x)))
    scale = 10 ** (magnitude - n)
    return _f32(round(_f32(x / scale)) * _f32(scale))


def ordered_unique(elements):
    """The distinct elements in first-seen order."""
    return list(dict.fromkeys(elements))


@contextlib.contextmanager
def set_torch_threads(n):
    """Run the block with gt's math library on ``n`` threads (``gt.set_num_threads``), then
    restore the count it had, or gt's load-following ``"auto"`` where that was on."""
    prior = get_num_threads()
    adapting = threads_adapting()
    try:
        set_num_threads(n)
        yield
    finally:
        set_num_threads("auto" if adapting else prior)
