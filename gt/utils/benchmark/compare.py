"""torch.utils.benchmark's ``Compare``: many ``Measurement``s laid out as torch's tables, one
per label; a row per (threads, env, sub_label or stmt), a column per description, and the
median of each cell in one time unit per table.

Where torch fails, gt lays out a table: a measurement without a ``description`` heads its column
with nothing (torch's layout takes the length of None), and among measurements some with an
``env`` and some without (torch's sort of the rows compares None with a string) the latter show
``Unspecified env``.
"""

import collections
import enum
import itertools
import math

from gt.utils.benchmark import common

__all__ = ["Colorize", "Compare"]

BEST = "\033[92m"
GOOD = "\033[34m"
BAD = "\033[2m\033[91m"
VERY_BAD = "\033[31m"
BOLD = "\033[1m"
TERMINATE = "\033[0m"


class Colorize(enum.Enum):
    NONE = "none"
    COLUMNWISE = "columnwise"
    ROWWISE = "rowwise"


def _env(m):
    return "Unspecified env" if m.env is None else m.env


class _Column:
    """One column's number format: enough integer digits for its largest median, and decimals
    for its least precise one (one decimal unless significant figures are trimmed)."""

    def __init__(self, grouped_results, time_scale, trim_significant_figures, highlight_warnings):
        self._grouped_results = grouped_results
        flat = [*itertools.chain.from_iterable(grouped_results)]
        self._time_scale = time_scale
        self._trim = trim_significant_figures
        self._highlight = highlight_warnings and any(r.has_warnings for r in flat if r)
        leading = [math.ceil(common._log10_f32(r.median / time_scale)) if r else None for r in flat]
        unit_digits = max(d for d in leading if d is not None)
        decimals = min(max(m.significant_figures - d, 0) for d, m in zip(leading, flat)
                       if m is not None and d is not None) if self._trim else 1
        length = unit_digits + decimals + (1 if decimals else 0)
        self._template = f"{{:>{length}.{decimals}f}}{{:>{7 if self._highlight else 0}}}"

    def get_results_for(self, group):
        return self._grouped_results[group]

    def num_to_str(self, value, estimated_sigfigs, spread):
        if value is None:
            return " " * len(self.num_to_str(1, estimated_sigfigs, None))
        if self._trim:
            value = common.trim_sigfig(value, estimated_sigfigs)
        return self._template.format(value, f" (! {spread * 100:.0f}%)" if self._highlight and spread is not None
                                     else "")


class _Row:
    def __init__(self, results, row_group, render_env, env_str_len, time_scale, colorize, num_threads=None):
        self._results, self._row_group = results, row_group
        self._render_env, self._env_str_len = render_env, env_str_len
        self._time_scale, self._colorize, self._num_threads = time_scale, colorize, num_threads
        self._columns = ()

    def register_columns(self, columns):
        self._columns = columns

    def as_column_strings(self):
        first = next(r for r in self._results if r is not None)
        env = f"({_env(first)})" if self._render_env else ""
        output = ["  " + env.ljust(self._env_str_len + 4) + first.as_row_name]
        for m, col in zip(self._results, self._columns):
            if m is None:
                output.append(col.num_to_str(None, 1, None))
            else:
                output.append(col.num_to_str(m.median / self._time_scale, m.significant_figures,
                                             m.iqr / m.median if m.has_warnings else None))
        return output

    @staticmethod
    def color_segment(segment, value, best_value):
        if value <= best_value * 1.01 or value <= best_value + 100e-9:
            return BEST + BOLD + segment + TERMINATE * 2
        if value <= best_value * 1.1:
            return GOOD + BOLD + segment + TERMINATE * 2
        if value >= best_value * 5:
            return VERY_BAD + BOLD + segment + TERMINATE * 2
        if value >= best_value * 2:
            return BAD + segment + TERMINATE * 2
        return segment

    def row_separator(self, overall_width):
        return [f"{self._num_threads} threads: ".ljust(overall_width, "-")] if self._num_threads is not None else []

    def finalize_column_strings(self, column_strings, col_widths):
        best_values = [-1 for _ in column_strings]
        if self._colorize == Colorize.ROWWISE:
            row_min = min(r.median for r in self._results if r is not None)
            best_values = [row_min for _ in column_strings]
        elif self._colorize == Colorize.COLUMNWISE:
            best_values = [min((r.median for r in column.get_results_for(self._row_group) if r is not None),
                               default=None) for column in self._columns]
        row = [column_strings[0].ljust(col_widths[0])]
        for text, width, result, best in zip(column_strings[1:], col_widths[1:], self._results, best_values):
            text = text.center(width)
            if self._colorize != Colorize.NONE and result is not None and best is not None:
                text = self.color_segment(text, result.median, best)
            row.append(text)
        return row


class Table:
    """One label's measurements as rows and columns (``render()`` gives the text)."""

    def __init__(self, results, colorize, trim_significant_figures, highlight_warnings):
        if len({r.label for r in results}) != 1:
            raise AssertionError("All results must share the same label")
        self.results = results
        self._colorize, self._trim, self._highlight = colorize, trim_significant_figures, highlight_warnings
        self.label = results[0].label
        self.time_unit, self.time_scale = common.select_unit(min(r.median for r in results))
        self.row_keys = common.ordered_unique([self.row_fn(i) for i in results])
        self.row_keys.sort(key=lambda key: (key[0], "" if key[1] is None else key[1]))   # stmt order kept
        self.column_keys = common.ordered_unique([self.col_fn(i) for i in results])
        self.rows, self.columns = self.populate_rows_and_columns()

    @staticmethod
    def row_fn(m):
        return m.num_threads, m.env, m.as_row_name

    @staticmethod
    def col_fn(m):
        return m.description

    def populate_rows_and_columns(self):
        ordered = [[None for _ in self.column_keys] for _ in self.row_keys]
        row_position = {key: i for i, key in enumerate(self.row_keys)}
        col_position = {key: i for i, key in enumerate(self.column_keys)}
        for r in self.results:
            ordered[row_position[self.row_fn(r)]][col_position[self.col_fn(r)]] = r
        envs = {_env(r) for r in self.results}
        render_env = len(envs) > 1
        env_str_len = max(len(e) for e in envs) if render_env else 0
        rows, rows_by_group = [], []
        prior_threads, prior_env, group = -1, "", -1
        for (num_threads, env, _), row in zip(self.row_keys, ordered):
            transition = num_threads != prior_threads
            if transition:
                prior_threads, prior_env, group = num_threads, "", group + 1
                rows_by_group.append([])
            rows.append(_Row(row, group, render_env and env != prior_env, env_str_len, self.time_scale,
                             self._colorize, num_threads if transition else None))
            rows_by_group[-1].append(row)
            prior_env = env
        columns = tuple(_Column([tuple(row[i] for row in g) for g in rows_by_group], self.time_scale, self._trim,
                                self._highlight) for i in range(len(self.column_keys)))
        for row in rows:
            row.register_columns(columns)
        return tuple(rows), columns

    def render(self):
        string_rows = [[""] + ["" if key is None else key for key in self.column_keys]]
        string_rows.extend(r.as_column_strings() for r in self.rows)
        num_cols = max(len(i) for i in string_rows)
        for sr in string_rows:
            sr.extend("" for _ in range(num_cols - len(sr)))
        col_widths = [max(len(j) for j in i) for i in zip(*string_rows)]
        lines = ["  |  ".join(i.center(w) for i, w in zip(string_rows[0], col_widths))]
        overall_width = len(lines[0])
        for string_row, row in zip(string_rows[1:], self.rows):
            lines.extend(row.row_separator(overall_width))
            lines.append("  |  ".join(row.finalize_column_strings(string_row, col_widths)))
        has_warnings = self._highlight and any(r.has_warnings for r in self.results)
        title = (" " + (self.label or "") + " ").center(overall_width - 2, "-")
        note = "(! XX%) Measurement has high variance, where XX is the IQR / median * 100.\n" if has_warnings else ""
        body = "\n".join(lines)
        return (f"[{title}]\n{body}\n\nTimes are in {common.unit_to_english(self.time_unit)}s ({self.time_unit}).\n"
                f"{note}")


class Compare:
    """torch's table of many measurements: ``print()`` it or ``str()`` it. Replicates of one
    task are merged first (``Measurement.merge``); each label gets its own table.
    ``trim_significant_figures()``, ``colorize(rowwise=False)`` and ``highlight_warnings()``
    change how the next rendering looks; ``extend_results`` adds measurements."""

    def __init__(self, results):
        self._results = []
        self.extend_results(results)
        self._trim_significant_figures = False
        self._colorize = Colorize.NONE
        self._highlight_warnings = False

    def __str__(self):
        return "\n".join(self._render())

    def extend_results(self, results):
        """Append measurements (each must be a ``Measurement``)."""
        results = list(results)
        for r in results:
            if not isinstance(r, common.Measurement):
                raise ValueError(f"Expected an instance of `Measurement`, got {type(r)} instead.")
        self._results.extend(results)

    def trim_significant_figures(self):
        """Show each number with its estimated significant figures only."""
        self._trim_significant_figures = True

    def colorize(self, rowwise=False):
        """Colour each cell by how it compares with the best of its column (or row)."""
        self._colorize = Colorize.ROWWISE if rowwise else Colorize.COLUMNWISE

    def highlight_warnings(self):
        """Mark noisy cells with ``(! XX%)``, their IQR as a percentage of the median."""
        self._highlight_warnings = True

    def print(self):
        print(str(self))

    def _render(self):
        groups = collections.defaultdict(list)
        for r in common.Measurement.merge(self._results):
            groups[r.label].append(r)
        return [Table(group, self._colorize, self._trim_significant_figures, self._highlight_warnings).render()
                for group in groups.values()]
