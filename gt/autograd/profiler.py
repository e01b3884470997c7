"""torch.autograd.profiler for gt: the older profiler API (``profile``, ``record_function``) and
what both profilers share (``Recording``: events, ``key_averages``, ``table``, the Chrome trace).
``gt.profiler`` (torch.profiler's API: activities, schedules, trace handlers) builds on it.

    with gt.autograd.profiler.profile(record_shapes=True) as prof:
        loss = model(x).sum()
        loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))

What is recorded, and how each op is named: gt/autograd/profiler_record.py. Times are wall-clock
on the CPU (``time.perf_counter_ns``). On the numpy engine, and on the torch engine on a CPU,
there is no device to profile: ``use_cuda=True`` (or ``use_device="cuda"``) records the same CPU
events and no device time. Where gt computes on a CUDA GPU (the torch engine on a machine with
one) gt's clock would see kernel launches, not kernels, so asking for CUDA there raises; profile
the GPU with torch.profiler itself around the same gt code (it records the torch kernels the
engine runs).
"""

import warnings

from gt.autograd import profiler_record
from gt.autograd.profiler_record import record_function  # noqa: F401  (torch's path)
from gt.autograd.profiler_util import EventList, FunctionEvent, FunctionEventAvg, write_chrome_trace  # noqa: F401

CUDA_REFUSED = ("gt's profiler times ops on the CPU side only; gt computes on a CUDA GPU here (its torch engine), "
                "where that clock sees kernel launches, not kernels. Profile the GPU with torch.profiler.profile("
                "activities=[torch.profiler.ProfilerActivity.CUDA]) around the same gt code (it records the torch "
                "kernels gt's engine runs), or leave CUDA out of gt's profile")


_FLAME = str.maketrans(" ;\t\n", "____")


def check_cuda(asked):
    """Refuse CUDA activity where gt computes on a GPU (see the module's docstring)."""
    if asked and profiler_record.gpu_in_use():
        raise NotImplementedError(CUDA_REFUSED)


class Recording:
    """What both profilers share: the options, the events of the last recording and their views.
    A subclass calls ``_options(...)`` in its constructor and ``_begin()``/``_end()`` around a
    recording."""

    def _options(self, record_shapes, profile_memory, with_stack, with_flops, with_modules, acc_events=False):
        self.acc_events = bool(acc_events)
        self.record_shapes, self.profile_memory, self.with_stack = bool(record_shapes), bool(profile_memory), \
            bool(with_stack)
        self.with_flops, self.with_modules = bool(with_flops), bool(with_modules)
        self._recorder, self._events = None, None

    def _begin(self):
        self._recorder = profiler_record.Recorder(self.record_shapes, self.profile_memory, self.with_stack,
                                                  self.with_flops, self.with_modules)
        self._recorder.start()

    def _end(self):
        rec, self._recorder = self._recorder, None
        if rec is not None:
            rec.stop()
            kept = list(self._events) if self.acc_events and self._events is not None else []    # every cycle's
            self._events = EventList(kept + rec.events, profile_memory=self.profile_memory, with_flops=self.with_flops)

    def _finished(self, what):
        if self._events is None:
            raise RuntimeError(f"Profiler didn't finish running: {what} needs a profile that recorded and stopped "
                               "(use it as `with profile() as prof:` and ask after the block)")
        return self._events

    def events(self):
        """Every recorded event (``FunctionEvent``), in the order they started."""
        return self._finished("events()")

    @property
    def function_events(self):
        return self._finished("function_events")

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0, group_by_overload_name=False):
        """The events averaged by name (and input shapes, or the top ``group_by_stack_n`` stack
        entries): an ``EventList`` of ``FunctionEventAvg`` with ``table()``."""
        return self._finished("key_averages()").key_averages(group_by_input_shape, group_by_stack_n,
                                                             group_by_overload_name)

    def total_average(self):
        """Every event summed into one ``FunctionEventAvg`` (key ``"Total"``)."""
        return self._finished("total_average()").total_average()

    @property
    def self_cpu_time_total(self):
        """The summed self times of every event, in microseconds (the table's last line)."""
        return self._finished("self_cpu_time_total").self_cpu_time_total

    def table(self, sort_by=None, row_limit=100, max_src_column_width=75, max_name_column_width=55,
              max_shapes_column_width=80, header=None, top_level_events_only=False, time_unit=None):
        """The table of the key averages (``EventList.table``)."""
        return self.key_averages().table(sort_by=sort_by, row_limit=row_limit,
                                         max_src_column_width=max_src_column_width,
                                         max_name_column_width=max_name_column_width,
                                         max_shapes_column_width=max_shapes_column_width, header=header,
                                         top_level_events_only=top_level_events_only, time_unit=time_unit)

    def export_chrome_trace(self, path):
        """Write the events to ``path`` as Chrome trace JSON: complete events (``"ph": "X"``) with
        ``ts``/``dur`` in microseconds, for chrome://tracing or Perfetto (``.gz``: compressed)."""
        write_chrome_trace(self._finished("export_chrome_trace()"), path, getattr(self, "_metadata", None))


    def export_stacks(self, path, metric="self_cpu_time_total"):
        """Write each event recorded ``with_stack=True`` as a flame graph line (torch's format:
        ``outer;...;inner value``, frames with spaces and semicolons as ``_``, the value ``metric``
        in microseconds)."""
        if metric not in ("self_cpu_time_total", "self_cuda_time_total", "self_device_time_total"):
            raise ValueError(f"export_stacks(metric={metric!r}): expected 'self_cpu_time_total' or "
                             "'self_cuda_time_total'")
        with open(path, "w", encoding="utf-8") as f:
            for evt in self._finished("export_stacks()"):
                value = int(getattr(evt, metric.replace("cuda", "device")))
                if evt.stack and value > 0:
                    f.write(";".join(e.translate(_FLAME) for e in reversed(evt.stack)) + f" {value}\n")


class profile(Recording):
    """torch.autograd.profiler.profile: records the gt ops, backward nodes and ``record_function``
    ranges run inside the ``with`` block (``enabled=False``: nothing). ``record_shapes``: input
    shapes; ``profile_memory``: bytes made and freed (gt/autograd/profiler_record.py); ``with_stack``: Python stack;
    ``with_flops``: floating point operations of products (Linear, matmul); ``with_modules``:
    a range per module call. ``use_cuda``/``use_device``: see the module's docstring. One profile
    at a time: starting one inside another raises."""

    def __init__(self, enabled=True, *, use_cuda=False, use_device=None, record_shapes=False, with_flops=False,
                 profile_memory=False, with_stack=False, with_modules=False, use_kineto=False, use_cpu=True,
                 experimental_config=None, acc_events=False, custom_trace_id_callback=None,
                 post_processing_timeout_s=None, activity_filters=None):
        if use_cuda:
            warnings.warn("The attribute `use_cuda` will be deprecated soon, please use ``use_device = 'cuda'`` "
                          "instead.", FutureWarning, stacklevel=2)
        if use_device is not None and str(use_device) not in ("cuda", "cpu"):
            raise ValueError(f"use_device={use_device!r}: gt profiles 'cpu' (and accepts 'cuda'), not that device")
        check_cuda(use_cuda or use_device == "cuda")
        self.enabled, self.entered = bool(enabled), False
        self._options(record_shapes, profile_memory, with_stack, with_flops, with_modules)

    def __enter__(self):
        if not self.enabled:
            return self
        if self.entered:
            raise RuntimeError("Profiler context manager is not reentrant")
        profiler_record.claim(self)
        self.entered = True
        self._begin()
        return self

    def __exit__(self, *exc):
        if not self.enabled:
            return False
        try:
            self._end()
        finally:
            profiler_record.release(self)
        return False

    def _finished(self, what):
        if not self.enabled:
            return EventList()
        return super()._finished(what)

    def __str__(self):
        return self.table()

    __repr__ = object.__repr__
