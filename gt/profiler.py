"""torch.profiler for gt: ``profile`` (a context manager, or ``start()``/``step()``/``stop()``),
``schedule``, ``tensorboard_trace_handler``, ``record_function``, ``ProfilerActivity``,
``ProfilerAction``.

    with gt.profiler.profile(activities=[gt.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        with gt.profiler.record_function("forward"):
            loss = model(x).sum()
        loss.backward()
        opt.step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")

Recorded (gt/autograd/profiler_record.py): every gt op (named ``aten::linear``, ``aten::add``...
where gt's op is torch's), the creation functions (``aten::zeros``, ``aten::randn``...), the
in-place methods (``aten::add_``, ``aten::mul_``...), every backward node (``AddmmBackward0``),
``record_function`` ranges, ``Optimizer.step#SGD.step`` with its updates inside (plain SGD: an
``aten::add_`` per parameter, as torch's; Adam: ``aten::_fused_adam_``, torch's fused kernel,
whose arithmetic gt's one engine call runs), ``Optimizer.zero_grad#SGD.zero_grad``,
``ProfilerStep#N`` with a schedule, and with ``with_modules=True`` a range per module call
(``nn.Module: Linear_0``). Times are wall-clock on the CPU; memory (``profile_memory``): the bytes
of the tensors each event made, less those freed while it ran, and ``[memory]`` events for frees
outside every event, as torch's (gt counts tensors, not the allocator: no temporaries inside an op).

Activities: ``CPU`` is what gt records. ``CUDA`` is accepted on the numpy engine and on the
torch engine on a CPU, where there is no device to record; where gt computes on a CUDA GPU, it
raises ``NotImplementedError``: profile the GPU with torch.profiler itself around the same gt
code (gt's torch engine runs torch's kernels, which torch's profiler records).
"""

import enum
import json
import os
import time
import warnings

from gt.autograd import profiler_record
from gt.autograd.profiler import Recording, check_cuda
from gt.autograd.profiler_record import record_function  # noqa: F401  (torch's path)
from gt.autograd.profiler_util import EventList, FunctionEvent, FunctionEventAvg  # noqa: F401
from gt.nn import global_hooks

__all__ = ["ProfilerAction", "ProfilerActivity", "profile", "record_function", "schedule", "supported_activities",
           "tensorboard_trace_handler"]


class ProfilerActivity(enum.Enum):
    """torch's activity groups. gt records ``CPU``; see the module's docstring for the others."""

    CPU = 0
    XPU = 1
    MTIA = 2
    CUDA = 3
    HPU = 4
    PrivateUse1 = 5


class ProfilerAction(enum.Enum):
    """What the profiler does at a step, as a ``schedule`` returns it."""

    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def supported_activities():
    """The activities gt's profiler records: ``{ProfilerActivity.CPU}``."""
    return {ProfilerActivity.CPU}


def schedule(*, wait, warmup, active, repeat=0, skip_first=0, skip_first_wait=0):
    """torch's schedule: skip the first ``skip_first`` steps, then cycles of ``wait`` steps doing
    nothing, ``warmup`` steps warming up and ``active`` steps recording (the last of them
    ``RECORD_AND_SAVE``: ``on_trace_ready`` runs when it ends), ``repeat`` cycles (0: no end).
    ``skip_first_wait``: the first cycle does not wait. Returns ``fn(step) -> ProfilerAction``."""

    def schedule_fn(step):
        if step < 0:
            raise AssertionError(f"Step must be non-negative. Got {step}.")
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait != 0:
            step += wait
        num_steps = wait + warmup + active
        if repeat > 0 and step / num_steps >= repeat:
            return ProfilerAction.NONE
        mod_step = step % num_steps
        if mod_step < wait:
            return ProfilerAction.NONE
        if mod_step < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if mod_step < num_steps - 1 else ProfilerAction.RECORD_AND_SAVE

    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise AssertionError(
            f"Invalid profiler schedule arguments. Got wait={wait} (need >= 0), warmup={warmup} (need >= 0), "
            f"active={active} (need > 0), repeat={repeat} (need >= 0), skip_first={skip_first} (need >= 0).")
    if warmup == 0:
        warnings.warn("Profiler won't be using warmup, this can skew profiler results", stacklevel=2)
    return schedule_fn


def _default_schedule_fn(_):
    return ProfilerAction.RECORD


def _check_writable(dir_name):
    """Refuse, before any profiling, a trace directory that cannot be made or written to."""
    path = os.path.abspath(os.fspath(dir_name))
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise RuntimeError(f"Can't create directory: {dir_name} ({probe} is a file, not a directory)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RuntimeError(f"Can't create directory: {dir_name} ({probe} is not writable)"
                           if probe != path else f"trace directory {dir_name} is not writable")


def tensorboard_trace_handler(dir_name, worker_name=None, use_gzip=False, use_python_export=False):
    """An ``on_trace_ready`` that writes each finished cycle to ``dir_name`` (made as needed) as
    ``{worker_name}.{time_ns}.pt.trace.json`` (``.gz`` with ``use_gzip``), Chrome trace JSON that
    TensorBoard, chrome://tracing and Perfetto load; ``worker_name`` defaults to
    ``{hostname}_{pid}``. The directory is checked when the handler is made."""
    _check_writable(dir_name)

    def handler_fn(prof):
        nonlocal worker_name
        if not os.path.isdir(dir_name):
            try:
                os.makedirs(dir_name, exist_ok=True)
            except Exception as e:
                raise RuntimeError("Can't create directory: " + str(dir_name)) from e
        if not worker_name:
            import socket       # only here: import gt stays quick
            worker_name = f"{socket.gethostname()}_{os.getpid()}"
        file_name = f"{worker_name}.{time.time_ns()}.pt.trace.json" + (".gz" if use_gzip else "")
        prof.export_chrome_trace(os.path.join(dir_name, file_name))

    return handler_fn


def _activities(activities, use_cuda):
    """The set of ``ProfilerActivity`` asked for (torch's enum accepted by name), checked."""
    if activities is None:
        found = supported_activities()
    else:
        found = set()
        for item in activities:
            for one in (item.keys() if isinstance(item, dict) else (item,)):
                name = getattr(one, "name", None)
                if name not in ProfilerActivity.__members__:
                    raise TypeError(f"activities: expected ProfilerActivity members (CPU, CUDA, ...), got {one!r}")
                found.add(ProfilerActivity[name])
    if use_cuda is not None:
        warnings.warn("`use_cuda` is deprecated, use `activities` argument instead", FutureWarning, stacklevel=3)
        (found.add if use_cuda else found.discard)(ProfilerActivity.CUDA)
    if not found:
        raise AssertionError("No valid profiler activities found")
    check_cuda(ProfilerActivity.CUDA in found)
    return found


def _module_hooks(recorder):
    """Global module hooks giving each module call a range (``with_modules=True``)."""
    handles = [global_hooks.register_module_forward_pre_hook(lambda m, args: recorder.module_enter(m)),
               global_hooks.register_module_forward_hook(lambda m, args, out: recorder.module_exit(m),
                                                         always_call=True)]
    return lambda: [h.remove() for h in handles]


profiler_record.module_hooks = _module_hooks


class profile(Recording):
    """torch.profiler.profile. Without ``schedule`` it records from ``start()`` (or entering the
    ``with`` block) to ``stop()``, then calls ``on_trace_ready(prof)``. With one, each ``step()``
    moves to the next step and the schedule's action for it: ``NONE`` and ``WARMUP`` record
    nothing, ``RECORD`` records, and the end of a ``RECORD_AND_SAVE`` step ends the cycle:
    ``on_trace_ready(prof)`` runs and ``events()``/``key_averages()`` give that cycle's events
    (each recorded step is a ``ProfilerStep#N`` range). Options: see gt.autograd.profiler.profile;
    activities: see this module's docstring. One profile at a time: starting one while another
    runs raises."""

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None, record_shapes=False,
                 profile_memory=False, with_stack=False, with_flops=False, with_modules=False,
                 experimental_config=None, execution_trace_observer=None, acc_events=False, use_cuda=None,
                 custom_trace_id_callback=None, post_processing_timeout_s=None):
        self.activities = _activities(activities, use_cuda)
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule must be callable (gt.profiler.schedule(...)), got {schedule!r}")
        if on_trace_ready is not None and not callable(on_trace_ready):
            raise TypeError(f"on_trace_ready must be callable, got {on_trace_ready!r}")
        self._options(record_shapes, profile_memory, with_stack, with_flops, with_modules, acc_events)
        self.schedule, self.record_steps = (schedule, True) if schedule else (_default_schedule_fn, False)
        self.on_trace_ready, self.step_num, self.step_rec_fn = on_trace_ready, 0, None
        self.current_action = self._action(0)

    def _action(self, step):
        action = self.schedule(step)
        name = getattr(action, "name", None)
        if name not in ProfilerAction.__members__:
            raise ValueError(f"schedule({step}) returned {action!r}; expected a ProfilerAction "
                             "(NONE, WARMUP, RECORD or RECORD_AND_SAVE)")
        return ProfilerAction[name]       # torch's ProfilerAction too, by name

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        """Start profiling (what the schedule says for the current step)."""
        profiler_record.claim(self)
        try:
            self._transit(ProfilerAction.NONE, self.current_action)
            self._open_step()
        except BaseException:
            profiler_record.release(self)
            raise

    def stop(self):
        """Stop profiling: a recording cycle in progress ends (``on_trace_ready`` runs)."""
        if profiler_record._owner is not self:
            raise AssertionError("Profiler must be initialized before stopping trace: call start() (or enter "
                                 "the `with` block) first")
        self._close_step()
        try:
            self._transit(self.current_action, None)
        finally:
            profiler_record.release(self)

    def step(self):
        """Signal that the next step (iteration) starts: its schedule action takes effect."""
        self._close_step()
        prev, action = self.current_action, self._action(self.step_num + 1)
        self.step_num += 1
        self.current_action = action
        self._transit(prev, action)
        self._open_step()

    def _open_step(self):
        if self.record_steps:
            self.step_rec_fn = record_function("ProfilerStep#" + str(self.step_num))
            self.step_rec_fn.__enter__()

    def _close_step(self):
        if self.record_steps and self.step_rec_fn is not None:
            self.step_rec_fn.__exit__(None, None, None)
            self.step_rec_fn = None

    def _transit(self, prev, now):
        """torch's profiler state machine, from the action of the previous step to this one's."""
        A = ProfilerAction
        recording = {A.RECORD, A.RECORD_AND_SAVE}
        if prev is A.WARMUP and now in (A.NONE, None):       # torch starts and stops: an empty cycle
            if now is A.NONE:
                warnings.warn("Incorrect schedule: WARMUP followed by NONE", stacklevel=3)
            self._begin()
            self._end()
        if prev is A.RECORD and now in (A.NONE, A.WARMUP):
            warnings.warn(f"Incorrect schedule: RECORD followed by {now.name}", stacklevel=3)
        if prev in recording and (now not in recording or prev is A.RECORD_AND_SAVE):
            self._end()
            if prev is A.RECORD_AND_SAVE or now is None:
                self._trace_ready()
        if now in recording and (prev not in recording or prev is A.RECORD_AND_SAVE):
            self._begin()

    def _trace_ready(self):
        if self.on_trace_ready:
            self.on_trace_ready(self)

    def _finished(self, what):
        if self._events is None:
            raise AssertionError(f"Profiler must be initialized before {what}: no recording cycle has ended yet "
                                 "(ask after the `with` block, after stop(), or in on_trace_ready)")
        return self._events

    def add_metadata(self, key, value):
        """Add ``key: value`` (strings) to the ``metadata`` of the Chrome traces written from now on."""
        self._metadata = {**getattr(self, "_metadata", {}), str(key): str(value)}

    def add_metadata_json(self, key, value):
        """Add ``key`` with ``value``, a JSON text, decoded, to the traces' ``metadata``."""
        self._metadata = {**getattr(self, "_metadata", {}), str(key): json.loads(value)}

    def prepare_trace(self):
        """torch's warm-up (gt has nothing to warm up)."""

    def start_trace(self):
        self._begin()

    def stop_trace(self):
        self._end()
