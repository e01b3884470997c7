"""gt.utils.benchmark beside torch.utils.benchmark: the same fields, the same statistics on the
same raw times, the same repr and Compare tables; Timer runs statements with gt in its globals
and gt's thread count fixed for the run, and refuses what gt lacks (C++, Callgrind)."""

import pickle
import random
import re
import timeit

import pytest

import gt
from gt.utils import benchmark as gb

torch = pytest.importorskip("torch")
tb = pytest.importorskip("torch.utils.benchmark")


def _pair(number, raw, **spec):
    spec.setdefault("stmt", "x + 1")
    spec.setdefault("setup", "pass")
    return (tb.Measurement(number, list(raw), tb.TaskSpec(**spec)),
            gb.Measurement(number, list(raw), gb.TaskSpec(**spec)))


def _plain(text):
    return re.sub(r"<[\w.]+\.Measurement object at 0x[0-9a-f]+>", "<Measurement>", text)


def _random_measurements(seed, count=200):
    rng = random.Random(seed)
    for _ in range(count):
        base = 10 ** rng.uniform(-9, 1)
        spread = rng.choice([0, 1e-3, 0.05, 0.2, 0.6])
        raw = [base * (1 + spread * rng.random()) for _ in range(rng.randint(1, 25))]
        spec = dict(stmt=rng.choice(["x + 1", "a = 1\nb = 2"]), setup=rng.choice(["pass", "x = 1", "x = 1\ny = 2"]),
                    label=rng.choice([None, "add"]), sub_label=rng.choice([None, "float"]),
                    description=rng.choice([None, "n=4"]), env=rng.choice([None, "A"]),
                    num_threads=rng.choice([1, 4]))
        yield rng.choice([1, 10, 1000]), raw, spec


def test_measurement_fields_and_properties_match_torch():
    assert [f.name for f in gb.Measurement.__dataclass_fields__.values()] == \
        [f.name for f in tb.Measurement.__dataclass_fields__.values()]
    assert list(gb.TaskSpec.__dataclass_fields__) == list(tb.TaskSpec.__dataclass_fields__)
    names = ("times", "number_per_run", "raw_times", "mean", "median", "iqr", "significant_figures",
             "has_warnings", "title", "env", "merge", "meets_confidence", "as_row_name", "metadata", "task_spec")
    t, g = _pair(100, [1e-4, 2e-4, 1.5e-4, 1.2e-4])
    for name in names:
        assert hasattr(t, name) and hasattr(g, name), name
    for name in ("stmt", "setup", "label", "sub_label", "description", "num_threads", "global_setup"):
        assert getattr(g, name) == getattr(t, name), name


def test_statistics_match_torch_on_the_same_raw_times():
    for number, raw, spec in _random_measurements(0):
        t, g = _pair(number, raw, **spec)
        assert g.times == t.times
        assert g.median == t.median and g.iqr == t.iqr
        assert g.mean == pytest.approx(t.mean, rel=1e-12)
        assert g.significant_figures == t.significant_figures
        assert g.has_warnings == t.has_warnings and g.meets_confidence(0.2) == t.meets_confidence(0.2)
        assert g.title == t.title and g.env == t.env and g.as_row_name == t.as_row_name
        assert _plain(repr(g)) == _plain(repr(t))


def test_repr_layout_matches_torch():
    t, g = _pair(100, [5.73e-4, 4.01e-4, 6.26e-4, 9e-4, 5e-4], label="Broadcasting add", sub_label="4x8",
                 description="d", setup="x = gt.ones(3)")
    assert _plain(repr(g)) == _plain(repr(t))
    assert repr(g).startswith("<gt.utils.benchmark.common.Measurement object at 0x")
    assert "WARNING: Interquartile range is" in repr(g)
    t, g = _pair(10, [3e-6])                       # one time: no median label, no IQR line
    assert _plain(repr(g)) == _plain(repr(t)) == "<Measurement>\nx + 1\n  300.00 ns\n  1 measurement, 10 runs , 1 thread"


def test_merge_and_helpers_match_torch():
    t1, g1 = _pair(10, [1e-5, 2e-5], label="a")
    t2, g2 = _pair(100, [1e-4, 3e-4], label="a")
    t3, g3 = _pair(10, [5e-5], label="b")
    tm, gm = tb.Measurement.merge([t1, t3, t2]), gb.Measurement.merge([g1, g3, g2])
    assert [m.raw_times for m in gm] == [m.raw_times for m in tm]
    assert [m.number_per_run for m in gm] == [1, 1] and [m.label for m in gm] == ["a", "b"]
    for x in (3.14159, 0.0123456, 98765.4321, 1e-7):
        for n in (1, 2, 3, 4):
            assert gb.trim_sigfig(x, n) == tb.trim_sigfig(x, n)
    for t in (3e-10, 1e-9, 4.2e-7, 1e-6, 0.5e-3, 0.9, 12.0):
        assert gb.select_unit(t) == tb.select_unit(t)
    assert gb.unit_to_english("us") == "microsecond"
    assert gb.ordered_unique([3, 1, 3, 2, 1]) == tb.ordered_unique([3, 1, 3, 2, 1]) == [3, 1, 2]


def test_measurement_pickles():
    _, g = _pair(10, [1e-5, 2e-5, 3e-5, 4e-5], label="p")
    back = pickle.loads(pickle.dumps(g))
    assert back.median == g.median and back.task_spec == g.task_spec


def _table_pair(seed, trim, colorize, rowwise, highlight, envs=(None,)):
    out = []
    for mod in (tb, gb):
        r, ms = random.Random(seed), []
        for label in ("A", "B"):
            for sub in ("float", "int", "a longer sub"):
                for desc in ("n=1", "n=1024"):
                    for threads in (1, 4):
                        if r.random() < 0.2:
                            continue
                        base = 10 ** r.uniform(-7, -3)
                        raw = [base * (1 + r.choice([0.01, 0.3]) * r.random()) for _ in range(r.randint(1, 9))]
                        ms.append(mod.Measurement(100, raw, mod.TaskSpec("x", "pass", label=label, sub_label=sub,
                                                                          description=desc, env=r.choice(envs),
                                                                          num_threads=threads)))
        c = mod.Compare(ms[:-3])
        c.extend_results(ms[-3:] + ms[:2])        # replicates merge
        if trim:
            c.trim_significant_figures()
        if colorize:
            c.colorize(rowwise=rowwise)
        if highlight:
            c.highlight_warnings()
        out.append(str(c))
    return out


@pytest.mark.parametrize("trim,colorize,rowwise,highlight", [(False, False, False, False), (True, False, False, False),
                                                             (True, True, False, True), (False, True, True, False),
                                                             (True, False, False, True)])
def test_compare_tables_match_torch(trim, colorize, rowwise, highlight):
    for seed in range(8):
        t, g = _table_pair(seed, trim, colorize, rowwise, highlight)
        assert g == t
    t, g = _table_pair(99, trim, colorize, rowwise, highlight, envs=("env A", "B"))
    assert g == t and "(env A)" in g


def test_compare_print_and_errors(capsys):
    _, g = _pair(1, [1e-5, 1.1e-5, 1.05e-5, 1.2e-5], label="add", description="n=4")
    gb.Compare([g]).print()
    printed = capsys.readouterr().out
    assert printed.startswith("[") and "Times are in microseconds (us)." in printed
    with pytest.raises(ValueError, match="Expected an instance of `Measurement`"):
        gb.Compare([1.0])
    # where torch's layout fails (a missing description; envs set on some only), gt's still lays out
    _, g2 = _pair(1, [2e-5], label="add", env="A")
    _, g3 = _pair(1, [1e-5], label="add")
    text = str(gb.Compare([g2, g3]))
    assert "(Unspecified env)" in text and "(A)" in text


def test_timer_runs_with_gt_in_its_globals():
    x = gt.ones(3)
    t = gb.Timer("y = x + 1", setup="z = gt.zeros(2)", globals={"x": x}, label="add", sub_label="f32",
                 description="n=3", env="test")
    m = t.blocked_autorange(min_run_time=0.02)
    assert isinstance(m, gb.Measurement) and m.number_per_run >= 1 and len(m.raw_times) >= 1
    assert sum(m.raw_times) >= 0.02 and m.median > 0
    assert (m.label, m.sub_label, m.description, m.env, m.stmt, m.setup) == ("add", "f32", "n=3", "test", "y = x + 1",
                                                                                "z = gt.zeros(2)")
    one = t.timeit(number=50)
    assert one.number_per_run == 50 and len(one.raw_times) == 1
    seen = []
    a = t.adaptive_autorange(threshold=0.5, min_run_time=0.01, max_run_time=0.2,
                             callback=lambda number, spent: seen.append(number))
    assert a.number_per_run == seen[0] and len(seen) == len(a.raw_times) >= 1
    assert t._globals["x"] is x and t._globals["gt"] is gt
    # with no GPU to wait for, the default timer is the plain clock (no device query per reading)
    assert gt.cuda.is_available() or t._timer.timer is timeit.default_timer
    # the dedent and strip of block strings, as torch's
    assert gb.Timer("\n    a = 1\n    b = a\n").timeit(10).stmt == tb.Timer("\n    a = 1\n    b = a\n").timeit(10).stmt


def test_timer_sets_and_restores_thread_count(monkeypatch):
    calls = []
    real_set = gb.common.set_num_threads
    monkeypatch.setattr(gb.common, "set_num_threads", lambda n: (calls.append(n), real_set(n)))
    before = gt.get_num_threads()
    restore = "auto" if gt.backend.threads_adapting() else before
    seen = []
    gb.Timer("seen.append(gt.get_num_threads())", globals={"seen": seen}, num_threads=1).timeit(3)
    assert set(seen) == {1} and calls == [1, restore]
    calls.clear()
    gb.Timer("pass", num_threads=2).blocked_autorange(min_run_time=0.001)
    assert calls == [2, restore] * 2          # the block-size estimate, then the measurement


def test_timer_refusals_name_the_bad_value():
    with pytest.raises(ValueError, match="only a `str` stmt"):
        gb.Timer(lambda: None)
    with pytest.raises(NotImplementedError, match="Python statements only"):
        gb.Timer("x", language="c++")
    with pytest.raises(ValueError, match="Invalid language `fortran`"):
        gb.Timer("x", language="fortran")
    with pytest.raises(ValueError, match="global_setup is C\\+\\+ only"):
        gb.Timer("x", global_setup="#include <x>")
    with pytest.raises(ValueError, match="num_threads.*got 0"):
        gb.Timer("x", num_threads=0)
    t = gb.Timer("pass")
    with pytest.raises(NotImplementedError, match="Callgrind"):
        t.collect_callgrind()
    for method in (t.repeat, t.autorange):                 # torch's: see blocked_autorange
        with pytest.raises(NotImplementedError, match="blocked_autorange"):
            method()
    with pytest.raises(ValueError, match="min_run_time.*got -1"):
        t.blocked_autorange(min_run_time=-1)
    with pytest.raises(ValueError, match="number.*got 0"):
        t.timeit(0)
    assert [n for n in dir(tb.Timer) if not n.startswith("_")] == [n for n in dir(gb.Timer) if not n.startswith("_")]
