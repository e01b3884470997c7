"""What the profiler recorded, as torch.autograd.profiler_util gives it: ``FunctionEvent`` (one op,
backward node or ``record_function`` range), ``FunctionEventAvg`` (the events of one key summed),
``EventList`` (``key_averages``, ``total_average``, ``table``, ``export_chrome_trace``).

Times are wall-clock (``time.perf_counter_ns``) in microseconds, as torch's: ``cpu_time_total``
from an event's start to its end, ``self_cpu_time_total`` that less its children's. Memory
(``profile_memory=True``) is the bytes of the tensors an event made (its output, or a backward
node's gradients) less those of tensors made while profiling that were freed while it was the
innermost open event (torch's negative self memory); a free outside every event is a
``[memory]`` event of negative bytes, as torch's. gt watches tensors, not the allocator: an op's
temporaries and the frees of memory made before the profile are not counted.
"""

import collections
import json
import os

# the attributes table(sort_by=...) sorts by (torch's, with "cuda" or "xpu" read as "device")
SORT_KEYS = ("cpu_time", "cpu_time_total", "self_cpu_time_total", "device_time", "device_time_total",
             "self_device_time_total", "cpu_memory_usage", "self_cpu_memory_usage", "device_memory_usage",
             "self_device_memory_usage", "count", "flops")


class Interval:
    """An event's start and end in microseconds (torch's ``time_range``)."""

    __slots__ = ("start", "end")

    def __init__(self, start, end):
        self.start, self.end = start, end

    def elapsed_us(self):
        return self.end - self.start


class _Times:
    """The device columns, which gt's CPU-side profiler leaves at zero, and the formatted times."""

    __slots__ = ()

    device_time_total = self_device_time_total = device_memory_usage = self_device_memory_usage = 0
    cuda_time_total = self_cuda_time_total = 0
    node_id = -1
    is_async = is_remote = is_legacy = False
    overload_name = ""
    use_device = None

    @property
    def cpu_time(self):
        """The average time of one call, in microseconds."""
        return 0.0 if self.count == 0 else self.cpu_time_total / self.count

    @property
    def device_time(self):
        return 0.0

    cpu_time_str = property(lambda self: format_time(self.cpu_time))
    cpu_time_total_str = property(lambda self: format_time(self.cpu_time_total))
    self_cpu_time_total_str = property(lambda self: format_time(self.self_cpu_time_total))
    device_time_str = device_time_total_str = self_device_time_total_str = property(lambda self: format_time(0))


class FunctionEvent(_Times):
    """One recorded event: ``name``, ``time_range`` (microseconds), ``cpu_parent`` and
    ``cpu_children`` (the events it contains), ``input_shapes`` (``record_shapes=True``),
    ``stack`` (``with_stack=True``: innermost frame first), ``self_cpu_memory_usage`` (bytes of
    what it made less what was freed inside it, ``profile_memory=True``), ``flops``
    (``with_flops=True``: products only)."""

    __slots__ = ("id", "name", "trace_name", "cat", "thread", "start_ns", "end_ns", "cpu_parent", "cpu_children",
                 "input_shapes", "stack", "self_cpu_memory_usage", "flops", "sequence_nr", "self_cpu_percent",
                 "total_cpu_percent")
    count = 1

    def __init__(self, id, name, cat, thread, parent):
        self.id, self.cat, self.thread, self.cpu_parent = id, cat, thread, parent
        # torch's: the steps' ranges are one key, ProfilerStep*; the trace keeps each one's number
        self.name = "ProfilerStep*" if name.startswith("ProfilerStep#") else name
        self.trace_name = name
        self.cpu_children, self.input_shapes, self.stack = [], [], []
        self.self_cpu_memory_usage = self.flops = 0
        self.start_ns = self.end_ns = 0
        self.sequence_nr = -1

    key = property(lambda self: self.name)
    is_user_annotation = property(lambda self: self.cat == "user_annotation")
    time_range = property(lambda self: Interval(self.start_ns / 1e3, self.end_ns / 1e3))

    @property
    def cpu_time_total(self):
        return (self.end_ns - self.start_ns) / 1e3

    @property
    def self_cpu_time_total(self):
        return self.cpu_time_total - sum(c.cpu_time_total for c in self.cpu_children)

    @property
    def cpu_memory_usage(self):
        """Bytes made by this event and the events inside it."""
        return self.self_cpu_memory_usage + sum(c.cpu_memory_usage for c in self.cpu_children)

    def __repr__(self):
        return (f"<FunctionEvent id={self.id} name={self.name} cpu_time={self.cpu_time_total_str} "
                f"self_cpu_time={self.self_cpu_time_total_str} input_shapes={self.input_shapes} "
                f"cpu_memory_usage={self.cpu_memory_usage}>")


class FunctionEventAvg(_Times):
    """The events of one key (name; with its input shapes or stack where ``key_averages`` groups
    by them) summed: ``count`` calls, total and self times, memory."""

    def __init__(self):
        self.key, self.count = None, 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0
        self.cpu_memory_usage = self.self_cpu_memory_usage = self.flops = 0
        self.input_shapes, self.stack, self.cpu_parent, self.cpu_children = None, None, None, None
        self.is_user_annotation = False

    def add(self, other):
        if self.key is None:
            self.key, self.input_shapes, self.stack = other.key, other.input_shapes, other.stack
            self.cpu_parent, self.cpu_children = other.cpu_parent, other.cpu_children
            self.is_user_annotation = other.is_user_annotation
        self.cpu_time_total += other.cpu_time_total
        self.self_cpu_time_total += other.self_cpu_time_total
        self.cpu_memory_usage += other.cpu_memory_usage
        self.self_cpu_memory_usage += other.self_cpu_memory_usage
        self.flops += other.flops
        self.count += other.count
        return self

    __iadd__ = add

    def __repr__(self):
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={self.self_cpu_time_total_str} "
                f"cpu_time={self.cpu_time_str} input_shapes={self.input_shapes} "
                f"cpu_memory_usage={self.cpu_memory_usage}>")


class EventList(list):
    """A list of events (``FunctionEvent``, or ``FunctionEventAvg`` from ``key_averages``)."""

    def __init__(self, events=(), profile_memory=False, with_flops=False, **_):
        super().__init__(events)
        self._profile_memory, self._with_flops = profile_memory, with_flops

    def key_averages(self, group_by_input_shapes=False, group_by_stack_n=0, group_by_overload_name=False):
        """One ``FunctionEventAvg`` per event name (and input shapes, and top ``group_by_stack_n``
        stack entries, where asked), in the order each key was first seen."""
        stats = collections.defaultdict(FunctionEventAvg)
        for evt in self:
            key = (evt.key, evt.is_user_annotation)
            if group_by_input_shapes:
                key += (str(evt.input_shapes),)
            if group_by_stack_n > 0:
                key += tuple(evt.stack[:group_by_stack_n])
            stats[key].add(evt)
        out = EventList(stats.values(), self._profile_memory, self._with_flops)
        for avg in out:
            avg.stack = list(avg.stack or ())[:group_by_stack_n]
            if not group_by_input_shapes:
                avg.input_shapes = ""
        return out

    def total_average(self):
        """All events summed into one ``FunctionEventAvg`` whose key is ``"Total"``."""
        total = FunctionEventAvg()
        for evt in self:
            total.key = evt.key
            total.add(evt)
        total.key = "Total"
        return total

    @property
    def self_cpu_time_total(self):
        return sum(evt.self_cpu_time_total for evt in self)

    def table(self, sort_by=None, row_limit=100, max_src_column_width=75, max_name_column_width=55,
              max_shapes_column_width=80, header=None, top_level_events_only=False, time_unit=None):
        """torch's table of these events (see ``build_table``)."""
        return build_table(self, sort_by=sort_by, header=header, row_limit=row_limit,
                           max_src_column_width=max_src_column_width, max_name_column_width=max_name_column_width,
                           max_shapes_column_width=max_shapes_column_width, with_flops=self._with_flops,
                           profile_memory=self._profile_memory, top_level_events_only=top_level_events_only,
                           time_unit=time_unit)

    def __str__(self):
        return self.table()

    def export_chrome_trace(self, path):
        """Write these events to ``path`` as Chrome trace JSON (chrome://tracing, Perfetto)."""
        write_chrome_trace(self, path)


def format_time(time_us):
    """torch's formatting of a time in microseconds: ``12.345us``, ``1.234ms``, ``1.234s``."""
    if time_us >= 1e6:
        return f"{time_us / 1e6:.3f}s"
    if time_us >= 1e3:
        return f"{time_us / 1e3:.3f}ms"
    return f"{time_us:.3f}us"


def format_memory(nbytes):
    """torch's formatting of a size in bytes: ``96 B``, ``1.50 KB``, ``2.00 MB``, ``1.00 GB``."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if abs(nbytes) >= size:
            return f"{nbytes / size:.2f} {unit}"
    return f"{nbytes} B"


def _share(time_us, total_us):
    return "NaN" if total_us == 0 else f"{time_us * 100.0 / total_us:.2f}%"


def _in_unit(time_us, time_unit):
    scale = {"s": 1e6, "ms": 1e3, "us": 1.0}.get(time_unit)
    return format_time(time_us) if scale is None else f"{time_us / scale:.3f}{time_unit}"


def _sorted(events, sort_by):
    """``events`` by ``sort_by`` (an attribute of an event, largest first), refused by name."""
    attr = sort_by.replace("cuda", "device").replace("xpu", "device").replace("privateuse1", "device")
    if not events or not hasattr(events[0], attr):
        raise AttributeError(f"'{type(events[0]).__name__ if events else 'FunctionEventAvg'}' object has no "
                             f"attribute {attr!r}: table(sort_by={sort_by!r}) expects one of {', '.join(SORT_KEYS)}")
    return sorted(events, key=lambda evt: getattr(evt, attr), reverse=True)


def _columns(events, profile_memory, with_flops, widths):
    """The headers and widths of the table's columns, and the flops scale (None: no column)."""
    name_w, shapes_w, src_w = widths
    headers = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
    if profile_memory:
        headers += ["CPU Mem", "Self CPU Mem"]
    headers.append("# of Calls")
    cols = [(name_w, ">")] + [(12, ">")] * (len(headers) - 1)
    if any(evt.input_shapes for evt in events):
        headers.append("Input Shapes")
        cols.append((min(max(len(str(evt.input_shapes)) for evt in events) + 4, shapes_w), ">"))
    stacks = [evt.stack for evt in events if evt.stack]
    if stacks:
        headers.append("Source Location")
        cols.append((min(max(len(e) for s in stacks for e in s) + 4, src_w), "<"))
    scale = None
    flops = [evt.flops for evt in events if evt.flops > 0]
    if with_flops and flops:
        level = min(max(0, len(str(int(min(flops)))) - 1) // 3, 5)
        headers.append("Total " + ("FLOPs", "KFLOPs", "MFLOPs", "GFLOPs", "TFLOPs", "PFLOPs")[level])
        cols.append((12, ">"))
        scale = 10.0 ** (-3 * level)
    return headers, cols, scale


def _row(evt, total, columns, opts):
    """The cells of one event's row (its stack's further lines follow it in ``build_table``)."""
    headers, name_w, unit, profile_memory, scale = columns
    name = evt.key if len(evt.key) < name_w - 3 else evt.key[:name_w - 3] + "..."
    evt.self_cpu_percent = _share(evt.self_cpu_time_total, total)
    evt.total_cpu_percent = _share(evt.cpu_time_total, total)
    row = [name, evt.self_cpu_percent, _in_unit(evt.self_cpu_time_total, unit), evt.total_cpu_percent,
           _in_unit(evt.cpu_time_total, unit), _in_unit(evt.cpu_time, unit)]
    if profile_memory:
        row += [format_memory(evt.cpu_memory_usage), format_memory(evt.self_cpu_memory_usage)]
    row.append(evt.count)
    if "Input Shapes" in headers:
        row.append(str(evt.input_shapes)[:opts["shapes"]])
    if "Source Location" in headers:
        row.append(_trim(evt.stack[0], opts["src"]) if evt.stack else "")
    if scale is not None:
        row.append("--" if evt.flops <= 0 else f"{evt.flops * scale:8.3f}")
    return row


def _trim(path, width):
    if len(path) > width:
        path = path[len(path) - width:]
        if len(path) > 3:
            path = "..." + path[3:]
    return path


def build_table(events, sort_by=None, header=None, row_limit=100, max_src_column_width=75,
                max_name_column_width=55, max_shapes_column_width=80, with_flops=False, profile_memory=False,
                top_level_events_only=False, time_unit=None):
    """torch's summary table: Name, Self CPU %, Self CPU, CPU total %, CPU total, CPU time avg (CPU
    Mem and Self CPU Mem with ``profile_memory``), # of Calls, then Input Shapes, Source Location
    and Total FLOPs where the events have them; percentages of the summed self times; rows sorted
    by ``sort_by`` (largest first; ``None``: as recorded), at most ``row_limit`` (-1: all)."""
    if len(events) == 0:
        return ""
    if sort_by is not None:
        events = _sorted(events, sort_by)
    name_w = min(max(len(evt.key) for evt in events) + 4, max_name_column_width or 1 << 30)
    headers, cols, scale = _columns(events, profile_memory, with_flops,
                                    (name_w, max_shapes_column_width or 1 << 30, max_src_column_width or 1 << 30))
    fmt = "".join("{: " + way + str(w) + "}  " for w, way in cols)
    sep = "".join("-" * w + "  " for w, _ in cols)
    width = sum(w + 2 for w, _ in cols) - 2
    total = sum(evt.self_cpu_time_total for evt in events)
    opts = {"shapes": cols[headers.index("Input Shapes")][0] if "Input Shapes" in headers else 0,
            "src": cols[headers.index("Source Location")][0] if "Source Location" in headers else 0}
    lines = []
    if header is not None:
        lines += ["=" * width, header]
    if top_level_events_only:
        lines += ["=" * width, "This report only display top-level ops statistics"]
    lines += [sep, fmt.format(*headers), sep]
    shown = 0
    for evt in events:
        if shown == row_limit:
            break
        if top_level_events_only and evt.cpu_parent is not None:
            continue
        shown += 1
        lines.append(fmt.format(*_row(evt, total, (headers, max_name_column_width or 1 << 30, time_unit,
                                                   profile_memory, scale), opts)))
        if "Source Location" in headers:
            blank = [""] * (len(headers) - 1)
            lines += [fmt.format(*blank, _trim(entry, opts["src"])) for entry in (evt.stack or [])[1:]]
            lines.append(fmt.format(*blank, ""))
    lines += [sep, f"Self CPU time total: {_in_unit(total, time_unit)}"]
    return "\n".join(lines) + "\n"


def trace_events(events, pid=None):
    """``events`` as Chrome trace events: complete events (``"ph": "X"``), ``ts`` and ``dur`` in
    microseconds, one track per thread."""
    pid = os.getpid() if pid is None else pid
    out = []
    for evt in events:
        args = {"External id": evt.id}
        if evt.input_shapes:
            args["Input Dims"] = evt.input_shapes
        if evt.stack:
            args["Call stack"] = ";".join(evt.stack)
        if evt.self_cpu_memory_usage:
            args["Bytes"] = evt.self_cpu_memory_usage
        if evt.flops:
            args["flops"] = evt.flops
        out.append({"ph": "X", "cat": evt.cat, "name": evt.trace_name or evt.name, "pid": pid, "tid": evt.thread,
                    "ts": evt.start_ns / 1e3, "dur": (evt.end_ns - evt.start_ns) / 1e3, "args": args})
        if evt.cat == "cpu_instant_event":      # a [memory] event: torch writes an instant one
            del out[-1]["dur"]
            out[-1].update(ph="i", s="t")
    return out


def write_chrome_trace(events, path, metadata=None):
    """Write ``events`` to ``path`` as a Chrome trace JSON object (``.gz``: gzip-compressed)."""
    doc = {"schemaVersion": 1, "displayTimeUnit": "ms", "traceEvents": trace_events(events)}
    if metadata:
        doc["metadata"] = dict(metadata)
    text = json.dumps(doc)
    if str(path).endswith(".gz"):
        import gzip     # only for compressed traces: import gt stays quick
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
